// SPDX-License-Identifier: Apache-2.0
//! `--ras` parsing: every malformed input gets its own error, and every
//! valid configuration round-trips through its option string.

use proptest::prelude::*;
use ras::config::{AsyncMode, ConfigError, NoGpaPolicy, RasConfig, SeaSources};

#[test]
fn each_key_sets_its_field() {
    let c = RasConfig::parse(
        "sea_sources=shared,async=polled,poll_interval_ms=250,queue_depth=0,block_size=1024,\
         no_gpa=stop,storm_limit=3,storm_window_ms=5000,rate_limit=0,early_kill=off,\
         max_poisoned=7",
    )
    .unwrap();
    assert_eq!(
        c,
        RasConfig {
            sea_sources: SeaSources::Shared,
            async_mode: AsyncMode::Polled,
            poll_interval_ms: 250,
            queue_depth: 0,
            block_size: 1024,
            no_gpa: NoGpaPolicy::Stop,
            storm_limit: 3,
            storm_window_ms: 5000,
            rate_limit: 0,
            early_kill: false,
            max_poisoned: 7,
        }
    );
    // Unmentioned keys keep their defaults.
    let c = RasConfig::parse("async=off").unwrap();
    assert_eq!(
        c,
        RasConfig {
            async_mode: AsyncMode::Off,
            ..RasConfig::default()
        }
    );
}

#[test]
fn malformed_inputs_have_specific_errors() {
    use ConfigError::*;
    let cases: Vec<(&str, ConfigError)> = vec![
        (",", EmptyOption),
        ("async=off,", EmptyOption),
        (",async=off", EmptyOption),
        ("async=off,,queue_depth=1", EmptyOption),
        ("async", MissingValue("async".into())),
        ("off", MissingValue("off".into())),
        ("on,async=off", MissingValue("on".into())),
        ("async=", EmptyValue("async".into())),
        ("queue_depth=", EmptyValue("queue_depth".into())),
        ("bogus=1", UnknownKey("bogus".into())),
        ("bogus=", UnknownKey("bogus".into())),
        ("Async=gpio", UnknownKey("Async".into())),
        (" async=gpio", UnknownKey(" async".into())),
        ("async=off,async=off", DuplicateKey("async".into())),
        (
            "queue_depth=1,async=off,queue_depth=2",
            DuplicateKey("queue_depth".into()),
        ),
        (
            "queue_depth=x",
            InvalidNumber {
                key: "queue_depth",
                value: "x".into(),
            },
        ),
        (
            "queue_depth=-1",
            InvalidNumber {
                key: "queue_depth",
                value: "-1".into(),
            },
        ),
        (
            "queue_depth= 1",
            InvalidNumber {
                key: "queue_depth",
                value: " 1".into(),
            },
        ),
        (
            "queue_depth=0x10",
            InvalidNumber {
                key: "queue_depth",
                value: "0x10".into(),
            },
        ),
        (
            "queue_depth=1025",
            OutOfRange {
                key: "queue_depth",
                value: 1025,
                min: 0,
                max: 1024,
            },
        ),
        (
            "queue_depth=99999999999999999999999",
            OutOfRange {
                key: "queue_depth",
                value: u64::MAX,
                min: 0,
                max: 1024,
            },
        ),
        (
            "block_size=128",
            OutOfRange {
                key: "block_size",
                value: 128,
                min: 256,
                max: 65536,
            },
        ),
        (
            "block_size=1020",
            NotMultiple {
                key: "block_size",
                value: 1020,
                multiple: 8,
            },
        ),
        (
            "poll_interval_ms=0",
            OutOfRange {
                key: "poll_interval_ms",
                value: 0,
                min: 1,
                max: 3_600_000,
            },
        ),
        (
            "storm_window_ms=0",
            OutOfRange {
                key: "storm_window_ms",
                value: 0,
                min: 1,
                max: 3_600_000,
            },
        ),
        (
            "max_poisoned=0",
            OutOfRange {
                key: "max_poisoned",
                value: 0,
                min: 1,
                max: 1 << 20,
            },
        ),
        (
            "async=GPIO",
            InvalidEnum {
                key: "async",
                value: "GPIO".into(),
                allowed: "gpio|polled|off",
            },
        ),
        (
            "sea_sources=percpu",
            InvalidEnum {
                key: "sea_sources",
                value: "percpu".into(),
                allowed: "per_vcpu|shared",
            },
        ),
        (
            "no_gpa=kill",
            InvalidEnum {
                key: "no_gpa",
                value: "kill".into(),
                allowed: "inject|stop",
            },
        ),
        (
            "early_kill=true",
            InvalidEnum {
                key: "early_kill",
                value: "true".into(),
                allowed: "on|off",
            },
        ),
        (
            "storm_limit=10,rate_limit=5",
            Inconsistent("rate_limit must be 0 or at least storm_limit"),
        ),
    ];
    for (input, want) in cases {
        let got = RasConfig::parse(input);
        assert_eq!(got, Err(want), "input {input:?}");
        let msg = got.unwrap_err().to_string();
        assert!(msg.starts_with(char::is_uppercase), "{msg}");
    }
    // The enum error lists the allowed words for the user.
    let msg = RasConfig::parse("async=x").unwrap_err().to_string();
    assert!(msg.contains("gpio|polled|off"), "{msg}");
    // A value cannot contain a comma: the rest is another (bad) option.
    assert_eq!(
        RasConfig::parse("async=gpio,polled"),
        Err(ConfigError::MissingValue("polled".into()))
    );
}

#[test]
fn cross_field_rules() {
    // Either limit off: any value of the other is fine.
    RasConfig::parse("storm_limit=0,rate_limit=1").unwrap();
    RasConfig::parse("storm_limit=100,rate_limit=0").unwrap();
    RasConfig::parse("storm_limit=100,rate_limit=100").unwrap();
    // validate() checks configs built in code too.
    let bad = RasConfig {
        block_size: 4095,
        ..RasConfig::default()
    };
    assert!(matches!(
        bad.validate(),
        Err(ConfigError::OutOfRange { .. }) | Err(ConfigError::NotMultiple { .. })
    ));
    let bad = RasConfig {
        max_poisoned: 0,
        ..RasConfig::default()
    };
    assert!(bad.validate().is_err());
}

#[test]
fn serde_defaults_missing_fields() {
    let c: RasConfig = serde_json::from_str(r#"{"queue_depth": 3}"#).unwrap();
    assert_eq!(
        c,
        RasConfig {
            queue_depth: 3,
            ..RasConfig::default()
        }
    );
    serde_json::from_str::<RasConfig>(r#"{"bogus": 3}"#).unwrap_err();
    let d = RasConfig::default();
    let back: RasConfig = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
    assert_eq!(back, d);
}

fn arb_config() -> impl Strategy<Value = RasConfig> {
    (
        (
            prop_oneof![Just(SeaSources::PerVcpu), Just(SeaSources::Shared)],
            prop_oneof![
                Just(AsyncMode::Gpio),
                Just(AsyncMode::Polled),
                Just(AsyncMode::Off)
            ],
            1u32..=3_600_000,
            0u32..=1024,
            (32u32..=8192).prop_map(|n| n * 8),
            prop_oneof![Just(NoGpaPolicy::Inject), Just(NoGpaPolicy::Stop)],
        ),
        (
            0u32..=1_000_000,
            1u32..=3_600_000,
            0u32..=1_000_000,
            any::<bool>(),
            1u32..=(1 << 20),
        ),
    )
        .prop_map(|((s, a, p, q, b, n), (sl, sw, rl, ek, mp))| RasConfig {
            sea_sources: s,
            async_mode: a,
            poll_interval_ms: p,
            queue_depth: q,
            block_size: b,
            no_gpa: n,
            storm_limit: sl,
            storm_window_ms: sw,
            // Keep the cross-field rule satisfied.
            rate_limit: if rl != 0 && sl != 0 { rl.max(sl) } else { rl },
            early_kill: ek,
            max_poisoned: mp,
        })
}

proptest! {
    #[test]
    fn option_string_round_trips(c in arb_config()) {
        prop_assert_eq!(c.validate(), Ok(()));
        let s = c.to_option_string();
        prop_assert_eq!(RasConfig::parse(&s), Ok(c));
        prop_assert_eq!(s.parse::<RasConfig>(), Ok(c));
    }

    #[test]
    fn any_subset_of_keys_in_any_order_round_trips(c in arb_config(), order in Just((0..11usize).collect::<Vec<_>>()).prop_shuffle(), keep in 0usize..=11) {
        let s = c.to_option_string();
        let pairs: Vec<&str> = s.split(',').collect();
        let chosen: Vec<&str> = order.iter().take(keep).map(|i| pairs[*i]).collect();
        let parsed = RasConfig::parse(&chosen.join(","));
        // Dropping keys may only break the cross-field rule (a default
        // limit against a chosen one).
        match parsed {
            Ok(p) => {
                for pair in &chosen {
                    prop_assert!(p.to_option_string().split(',').any(|q| q == *pair));
                }
            }
            Err(e) => prop_assert!(matches!(e, ConfigError::Inconsistent(_)), "{e}"),
        }
    }

    #[test]
    fn parse_never_panics(s in "[a-z_=,0-9]{0,64}") {
        let _ = RasConfig::parse(&s);
    }
}
