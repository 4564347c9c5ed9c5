// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! The `--ras` configuration: [`RasConfig`], its bounds and its
//! validation.
//!
//! The VMM parses the option string with its own option parser; the words
//! of each enumerated option are the [`FromStr`](std::str::FromStr) and
//! [`Display`](std::fmt::Display) forms of its type here
//! (`per_vcpu|shared`, `gpio|polled|off`, `inject|stop`), so the command
//! line and the documentation spell them alike. The API's JSON (the `ras`
//! object of Cloud Hypervisor's `VmConfig`, also kept in snapshots) has the
//! serde forms instead, as every enumerated field of `VmConfig` does: the
//! variant names (`PerVcpu`, `Polled`, `Stop`) and `async_mode` for
//! `async`. The `inject-error` fields (the `inject` module) use the same
//! `option_words!` macro, so an unknown word reads the same there
//! ([`InvalidWord`]); its request body is new and uses the words.
//! Numbers, in both, are [`parse_number`]'s: decimal, or hexadecimal after
//! `0x` ([`InvalidNumber`] otherwise, naming the option); sizes (`--ras
//! block_size`, `inject-error granule`) are [`parse_size`]'s: such a number,
//! then optionally `K`, `M` or `G` (KiB, MiB, GiB), as Cloud Hypervisor's
//! other sizes are written (`size=512M`).

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// How synchronous (SEA, ACPI notification type 8) error sources are laid
/// out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SeaSources {
    /// One SEA source (status block + ack register) per vCPU, so that
    /// several vCPUs can each have an error in flight.
    #[default]
    PerVcpu,
    /// One SEA source for all vCPUs (QEMU's layout); a second error before
    /// the ack is queued.
    Shared,
}

/// How the guest learns about asynchronous (action-optional) errors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AsyncMode {
    /// A GHESv2 source with GPIO notification (type 7): the platform GED
    /// interrupt runs `Notify(<PNP0C33>, 0x80)`.
    #[default]
    Gpio,
    /// A GHESv2 source with POLLED notification (type 0): the guest reads
    /// the block every `poll_interval_ms`.
    Polled,
    /// No asynchronous source: action-optional errors are only remembered
    /// (poison registry), the guest is not told until it consumes them.
    Off,
}

/// What to do with a synchronous consumption whose guest-physical address
/// is unknown (`KVM_EXIT_ARM_SEA` without `KVM_EXIT_ARM_SEA_FLAG_GPA_VALID`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NoGpaPolicy {
    /// Inject the abort with no CPER record. The guest's `do_sea` finds no
    /// record and falls back to `arm64_notify_die`: SIGBUS to the user
    /// process (from EL0) or a guest panic (from EL1) — what bare metal does
    /// with an unclaimed SEA. The default: it contains the loss to one guest
    /// process when possible; the storm limit stops a VM that loops.
    #[default]
    Inject,
    /// Stop the VM.
    Stop,
}

/// The `--ras` configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RasConfig {
    /// Layout of the synchronous sources.
    pub sea_sources: SeaSources,
    /// Asynchronous source notification.
    pub async_mode: AsyncMode,
    /// Poll interval of a polled asynchronous source, in milliseconds.
    pub poll_interval_ms: u32,
    /// Records queued per source while the guest has not acknowledged the
    /// previous one (0: drop when busy).
    pub queue_depth: u32,
    /// Size of each Generic Error Status Block, in bytes.
    pub block_size: u32,
    /// Synchronous consumption without a guest-physical address.
    pub no_gpa: NoGpaPolicy,
    /// Stop the VM when one granule is consumed more than this many times
    /// within `storm_window_ms` (0: no limit).
    pub storm_limit: u32,
    /// Window of the storm and rate limits, in milliseconds.
    pub storm_window_ms: u32,
    /// Stop the VM when more than this many errors of any kind arrive
    /// within `storm_window_ms` (0: no limit).
    pub rate_limit: u32,
    /// Ask the host for early action-optional notification
    /// (`PR_MCE_KILL_EARLY`), without which no `BUS_MCEERR_AO` arrives.
    pub early_kill: bool,
    /// Bound on the number of poisoned granules tracked.
    pub max_poisoned: u32,
}

impl Default for RasConfig {
    fn default() -> Self {
        Self {
            sea_sources: SeaSources::PerVcpu,
            async_mode: AsyncMode::Gpio,
            poll_interval_ms: 1000,
            queue_depth: 16,
            block_size: 1024,
            no_gpa: NoGpaPolicy::Inject,
            storm_limit: 16,
            storm_window_ms: 1000,
            rate_limit: 1024,
            early_kill: true,
            max_poisoned: 4096,
        }
    }
}

/// Errors from validating a [`RasConfig`] or parsing one of its words.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A number outside the allowed range.
    #[error("Value {value} for --ras option '{key}' out of range {min}..={max}")]
    OutOfRange {
        /// Option name.
        key: &'static str,
        /// Offending value.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A number that must be a multiple of something.
    #[error("Value {value} for --ras option '{key}' is not a multiple of {multiple}")]
    NotMultiple {
        /// Option name.
        key: &'static str,
        /// Offending value.
        value: u64,
        /// Required divisor.
        multiple: u64,
    },
    /// A value that is not one of the allowed words.
    #[error(transparent)]
    InvalidWord(#[from] InvalidWord),
    /// A value that is not a number of its option.
    #[error(transparent)]
    InvalidNumber(#[from] InvalidNumber),
    /// Fields that are valid alone but not together.
    #[error("Inconsistent --ras options: {0}")]
    Inconsistent(&'static str),
}

/// Bounds of the numeric options (inclusive).
pub mod limits {
    /// `poll_interval_ms`.
    pub const POLL_INTERVAL_MS: (u64, u64) = (1, 3_600_000);
    /// `queue_depth`.
    pub const QUEUE_DEPTH: (u64, u64) = (0, 1024);
    /// `block_size`: large enough for one status block with a memory
    /// section (20 + 72 + 80 bytes), at most 64 KiB.
    pub const BLOCK_SIZE: (u64, u64) = (256, 65536);
    /// `block_size` must be a multiple of this (the block is read with
    /// qword accesses).
    pub const BLOCK_SIZE_MULTIPLE: u64 = 8;
    /// `storm_limit`.
    pub const STORM_LIMIT: (u64, u64) = (0, 1_000_000);
    /// `storm_window_ms`.
    pub const STORM_WINDOW_MS: (u64, u64) = (1, 3_600_000);
    /// `rate_limit`.
    pub const RATE_LIMIT: (u64, u64) = (0, 1_000_000);
    /// `max_poisoned`.
    pub const MAX_POISONED: (u64, u64) = (1, 1 << 20);
}

/// The syntax a number was expected in, named by its error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberSyntax {
    /// [`parse_number`]: a count, an address, a time.
    Number,
    /// [`parse_size`]: bytes, with an optional binary unit.
    Size,
}

impl fmt::Display for NumberSyntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NumberSyntax::Number => "decimal, or hexadecimal after 0x",
            NumberSyntax::Size => "decimal, or hexadecimal after 0x, then optionally K, M or G",
        })
    }
}

/// A value that is not a number of its option ([`parse_number`],
/// [`parse_size`]); `--ras` and `inject-error` report it alike.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("Invalid number '{value}' for '{key}' ({syntax}, of at most {bits} bits)")]
pub struct InvalidNumber {
    /// Option or field name.
    pub key: &'static str,
    /// Offending value, cut at 32 characters.
    pub value: String,
    /// Width of the option's type.
    pub bits: u32,
    /// What the option takes.
    pub syntax: NumberSyntax,
}

impl InvalidNumber {
    fn new<T>(key: &'static str, text: &str, syntax: NumberSyntax) -> Self {
        InvalidNumber {
            key,
            value: text.chars().take(32).collect(),
            bits: u32::try_from(size_of::<T>() * 8).unwrap_or(u32::MAX),
            syntax,
        }
    }
}

/// Decimal digits, or hexadecimal digits (either case) after `0x` or `0X`;
/// no sign, no separator, no space.
fn digits(text: &str) -> Option<u64> {
    let (digits, radix) = match text.strip_prefix("0x").or(text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    // from_str_radix accepts a leading '+': check the digits first.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// The number `text` of option `key`: decimal digits, or hexadecimal
/// digits (either case) after `0x` or `0X`; no sign, no separator, no
/// space; the value must fit `T`.
pub fn parse_number<T: TryFrom<u64>>(key: &'static str, text: &str) -> Result<T, InvalidNumber> {
    digits(text)
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| InvalidNumber::new::<T>(key, text, NumberSyntax::Number))
}

/// The size in bytes `text` of option `key`: a [`parse_number`] number,
/// then optionally `K`, `M` or `G` (times 2^10, 2^20, 2^30; upper case, as
/// Cloud Hypervisor's `ByteSized`); the bytes must fit `T`.
pub fn parse_size<T: TryFrom<u64>>(key: &'static str, text: &str) -> Result<T, InvalidNumber> {
    let (number, shift) = match text.as_bytes().last() {
        Some(b'K') => (&text[..text.len() - 1], 10),
        Some(b'M') => (&text[..text.len() - 1], 20),
        Some(b'G') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    digits(number)
        .and_then(|v| v.checked_mul(1 << shift))
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| InvalidNumber::new::<T>(key, text, NumberSyntax::Size))
}

/// A value that is not one of an enumerated option's words; `--ras` and
/// `inject-error` report it alike.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("Invalid value '{value}' for '{key}' (allowed: {allowed})")]
pub struct InvalidWord {
    /// Option or field name.
    pub key: &'static str,
    /// Offending value, cut at 32 characters.
    pub value: String,
    /// The allowed words, `|`-separated.
    pub allowed: &'static str,
}

/// `FromStr` and `Display` of an enumerated option from its words:
/// `option_words!(Type, Error, "key", "a|b", "a" => Type::A, "b" => Type::B)`.
/// An unknown word is an [`InvalidWord`], converted into `Error`. Used by
/// this module and `inject` only (exported so that the engine's
/// modules reach it by path; not an interface of the crate).
#[doc(hidden)]
#[macro_export]
macro_rules! option_words {
    ($ty:ty, $err:ty, $key:literal, $allowed:literal, $($word:literal => $variant:expr),+ $(,)?) => {
        impl ::std::str::FromStr for $ty {
            type Err = $err;

            fn from_str(s: &str) -> Result<Self, $err> {
                match s {
                    $($word => Ok($variant),)+
                    _ => Err($crate::config::InvalidWord {
                        key: $key,
                        value: s.chars().take(32).collect(),
                        allowed: $allowed,
                    }
                    .into()),
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                $(if *self == $variant {
                    return f.write_str($word);
                })+
                Ok(())
            }
        }
    };
}

crate::option_words!(SeaSources, ConfigError, "sea_sources", "per_vcpu|shared", "per_vcpu" => SeaSources::PerVcpu, "shared" => SeaSources::Shared);
crate::option_words!(AsyncMode, ConfigError, "async", "gpio|polled|off", "gpio" => AsyncMode::Gpio, "polled" => AsyncMode::Polled, "off" => AsyncMode::Off);
crate::option_words!(NoGpaPolicy, ConfigError, "no_gpa", "inject|stop", "inject" => NoGpaPolicy::Inject, "stop" => NoGpaPolicy::Stop);

impl RasConfig {
    /// Checks ranges and cross-field rules (for a configuration parsed by
    /// the VMM, built in code or deserialized from the API):
    /// - every number within its [`limits`];
    /// - `block_size` a multiple of 8;
    /// - with both limits on, `rate_limit >= storm_limit` (a smaller
    ///   overall limit would make the per-granule one meaningless).
    ///
    /// Options that only matter in some modes (`poll_interval_ms` without
    /// `async=polled`, `early_kill` with `async=off`) are accepted: the
    /// asynchronous source also carries injected errors.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value, (min, max)) in [
            (
                "poll_interval_ms",
                self.poll_interval_ms,
                limits::POLL_INTERVAL_MS,
            ),
            ("queue_depth", self.queue_depth, limits::QUEUE_DEPTH),
            ("block_size", self.block_size, limits::BLOCK_SIZE),
            ("storm_limit", self.storm_limit, limits::STORM_LIMIT),
            (
                "storm_window_ms",
                self.storm_window_ms,
                limits::STORM_WINDOW_MS,
            ),
            ("rate_limit", self.rate_limit, limits::RATE_LIMIT),
            ("max_poisoned", self.max_poisoned, limits::MAX_POISONED),
        ] {
            let value = u64::from(value);
            if !(min..=max).contains(&value) {
                return Err(ConfigError::OutOfRange {
                    key,
                    value,
                    min,
                    max,
                });
            }
        }
        if !u64::from(self.block_size).is_multiple_of(limits::BLOCK_SIZE_MULTIPLE) {
            return Err(ConfigError::NotMultiple {
                key: "block_size",
                value: self.block_size.into(),
                multiple: limits::BLOCK_SIZE_MULTIPLE,
            });
        }
        if self.storm_limit != 0 && self.rate_limit != 0 && self.rate_limit < self.storm_limit {
            return Err(ConfigError::Inconsistent(
                "rate_limit must be 0 or at least storm_limit",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones_and_valid() {
        let d = RasConfig::default();
        d.validate().unwrap();
        // docs/ras.md: sea_sources=per_vcpu,async=gpio,poll_interval_ms=1000,
        // queue_depth=16,block_size=1024,no_gpa=inject,storm_limit=16,
        // storm_window_ms=1000,rate_limit=1024,early_kill=on,max_poisoned=4096;
        // here as the API's JSON body spells them, every field given (so
        // none comes from `#[serde(default)]`).
        let documented: RasConfig = serde_json::from_str(
            r#"{"sea_sources": "PerVcpu", "async_mode": "Gpio", "poll_interval_ms": 1000,
                "queue_depth": 16, "block_size": 1024, "no_gpa": "Inject",
                "storm_limit": 16, "storm_window_ms": 1000, "rate_limit": 1024,
                "early_kill": true, "max_poisoned": 4096}"#,
        )
        .unwrap();
        assert_eq!(d, documented);
    }

    #[test]
    fn words_parse_and_print_both_ways() {
        for (word, v) in [
            ("per_vcpu", SeaSources::PerVcpu),
            ("shared", SeaSources::Shared),
        ] {
            assert_eq!(word.parse::<SeaSources>(), Ok(v));
            assert_eq!(v.to_string(), word);
        }
        for (word, v) in [
            ("gpio", AsyncMode::Gpio),
            ("polled", AsyncMode::Polled),
            ("off", AsyncMode::Off),
        ] {
            assert_eq!(word.parse::<AsyncMode>(), Ok(v));
            assert_eq!(v.to_string(), word);
        }
        for (word, v) in [("inject", NoGpaPolicy::Inject), ("stop", NoGpaPolicy::Stop)] {
            assert_eq!(word.parse::<NoGpaPolicy>(), Ok(v));
            assert_eq!(v.to_string(), word);
        }
        fn invalid(key: &'static str, value: &str, allowed: &'static str) -> ConfigError {
            let value = value.to_string();
            ConfigError::InvalidWord(InvalidWord {
                key,
                value,
                allowed,
            })
        }
        assert_eq!(
            "Gpio".parse::<AsyncMode>(),
            Err(invalid("async", "Gpio", "gpio|polled|off"))
        );
        assert_eq!(
            "".parse::<NoGpaPolicy>(),
            Err(invalid("no_gpa", "", "inject|stop"))
        );
        // The words use '_', never '-'.
        assert_eq!(
            "per-vcpu".parse::<SeaSources>(),
            Err(invalid("sea_sources", "per-vcpu", "per_vcpu|shared"))
        );
        assert_eq!(
            invalid("async", "x", "gpio|polled|off").to_string(),
            "Invalid value 'x' for 'async' (allowed: gpio|polled|off)"
        );
    }

    /// The error of `value` for option `key`, `bits` wide, in `syntax`.
    fn invalid_number(
        key: &'static str,
        value: &str,
        bits: u32,
        syntax: NumberSyntax,
    ) -> InvalidNumber {
        InvalidNumber {
            key,
            value: value.to_string(),
            bits,
            syntax,
        }
    }

    #[test]
    fn numbers_are_decimal_or_0x_hex_and_fit_their_type() {
        for (text, value) in [
            ("0", 0u64),
            ("4096", 4096),
            ("0x1000", 0x1000),
            ("0X1000", 0x1000),
            ("0xDEADbeef", 0xdead_beef),
            ("007", 7),
            ("0x0", 0),
            ("18446744073709551615", u64::MAX),
            ("0xffffffffffffffff", u64::MAX),
        ] {
            assert_eq!(parse_number::<u64>("gpa", text), Ok(value), "{text}");
        }
        let invalid =
            |key, value: &str, bits| invalid_number(key, value, bits, NumberSyntax::Number);
        for text in [
            "",
            "0x",
            "0X",
            "+5",
            "-1",
            " 1",
            "1 ",
            "1_000",
            "0x+5",
            "0x-1",
            "0x 1",
            "1e3",
            "0b101",
            "0o7",
            "ff",
            "0xg",
            "18446744073709551616",
            "0x10000000000000000",
        ] {
            assert_eq!(
                parse_number::<u64>("gpa", text),
                Err(invalid("gpa", text, 64)),
                "{text:?}"
            );
        }
        // The type's width: 2^32 - 1 fits a u32, 2^32 does not.
        assert_eq!(
            parse_number::<u32>("queue_depth", "4294967295"),
            Ok(u32::MAX)
        );
        assert_eq!(
            parse_number::<u32>("queue_depth", "0xffffffff"),
            Ok(u32::MAX)
        );
        for text in ["4294967296", "0x100000000"] {
            assert_eq!(
                parse_number::<u32>("queue_depth", text),
                Err(invalid("queue_depth", text, 32)),
                "{text}"
            );
        }
        let long = "9".repeat(40);
        assert_eq!(
            parse_number::<u64>("va", &long),
            Err(invalid("va", &"9".repeat(32), 64))
        );
        assert_eq!(
            ConfigError::from(invalid("rate_limit", "0x", 32)).to_string(),
            "Invalid number '0x' for 'rate_limit' (decimal, or hexadecimal after 0x, of at most 32 bits)"
        );
    }

    #[test]
    fn sizes_are_numbers_with_an_optional_binary_unit() {
        // K, M, G: 2^10, 2^20, 2^30 bytes (Cloud Hypervisor's ByteSized).
        for (text, value) in [
            ("0", 0u64),
            ("1024", 1024),
            ("0x400", 1024),
            ("4K", 4096),
            ("0x10K", 16 * 1024),
            ("2M", 0x20_0000),
            ("1G", 0x4000_0000),
            ("16G", 0x4_0000_0000),
            ("0K", 0),
            ("17179869183G", 0xffff_ffff_c000_0000),
        ] {
            assert_eq!(parse_size::<u64>("granule", text), Ok(value), "{text}");
        }
        let invalid = |key, value: &str, bits| invalid_number(key, value, bits, NumberSyntax::Size);
        let wrong = [
            "",
            "K",
            "0xK",
            "1k",
            "1m",
            "1KB",
            "1KiB",
            "1T",
            " 1K",
            "1K ",
            "1 K",
            "-1K",
            "+1K",
            "1.5M",
            "KM",
            "1KK",
            "M1",
            "0x",
            "17179869184G",
        ]
        .into_iter()
        .filter(|text| parse_size::<u64>("granule", text) != Err(invalid("granule", text, 64)))
        .collect::<Vec<_>>();
        assert!(wrong.is_empty(), "not refused as expected: {wrong:?}");
        // The type's width: 4G - 1 fits a u32, 4G does not.
        assert_eq!(parse_size::<u32>("block_size", "4294967295"), Ok(u32::MAX));
        assert_eq!(
            parse_size::<u32>("block_size", "4G"),
            Err(invalid("block_size", "4G", 32))
        );
        assert_eq!(
            ConfigError::from(invalid("block_size", "4k", 32)).to_string(),
            "Invalid number '4k' for 'block_size' (decimal, or hexadecimal after 0x, then \
             optionally K, M or G, of at most 32 bits)"
        );
    }

    #[test]
    fn each_bound_is_enforced() {
        type Set = fn(&mut RasConfig, u32);
        let cases: [(&str, Set, (u64, u64)); 7] = [
            (
                "poll_interval_ms",
                |c, v| c.poll_interval_ms = v,
                (1, 3_600_000),
            ),
            ("queue_depth", |c, v| c.queue_depth = v, (0, 1024)),
            ("block_size", |c, v| c.block_size = v, (256, 65536)),
            ("storm_limit", |c, v| c.storm_limit = v, (0, 1_000_000)),
            (
                "storm_window_ms",
                |c, v| c.storm_window_ms = v,
                (1, 3_600_000),
            ),
            ("rate_limit", |c, v| c.rate_limit = v, (0, 1_000_000)),
            ("max_poisoned", |c, v| c.max_poisoned = v, (1, 1 << 20)),
        ];
        for (key, set, (min, max)) in cases {
            // Keep the cross-field rule (rate_limit >= storm_limit) out of
            // the way: both limits off, each bound checked alone.
            let base = RasConfig {
                storm_limit: 0,
                rate_limit: 0,
                ..RasConfig::default()
            };
            for ok in [min, max] {
                let mut c = base;
                set(&mut c, ok as u32);
                assert_eq!(c.validate(), Ok(()), "{key}={ok}");
            }
            let mut outside = vec![max + 1];
            if min > 0 {
                outside.push(min - 1);
            }
            for bad in outside {
                let mut c = base;
                set(&mut c, bad as u32);
                assert_eq!(
                    c.validate(),
                    Err(ConfigError::OutOfRange {
                        key,
                        value: bad,
                        min,
                        max
                    }),
                    "{key}={bad}"
                );
            }
        }
    }

    #[test]
    fn block_size_multiple_and_rate_versus_storm() {
        let c = RasConfig {
            block_size: 1020,
            ..RasConfig::default()
        };
        assert_eq!(
            c.validate(),
            Err(ConfigError::NotMultiple {
                key: "block_size",
                value: 1020,
                multiple: 8
            })
        );
        let c = RasConfig {
            storm_limit: 10,
            rate_limit: 9,
            ..RasConfig::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::Inconsistent(_))));
        // Either limit off: no cross rule.
        for (storm_limit, rate_limit) in [(10, 0), (0, 9), (10, 10)] {
            let c = RasConfig {
                storm_limit,
                rate_limit,
                ..RasConfig::default()
            };
            assert_eq!(c.validate(), Ok(()));
        }
    }
}
