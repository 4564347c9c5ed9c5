// SPDX-License-Identifier: Apache-2.0
//! Exhaustive check of `policy::decide`: every combination of cause kind x
//! origin x abort kind x GPA present/absent x GVA x poison state x storm
//! state x every configuration knob, each decision checked against the
//! rules (not against recorded output). The expected poison coverage and
//! storm counts are computed here independently of the engine's code.

use std::collections::HashSet;

use ras::config::{AsyncMode, NoGpaPolicy};
use ras::cper::{ArmProcessorSection, Guid, Severity};
use ras::poison::PoisonRegistry;
use ras::policy::{
    Action, CperRecord, IgnoreReason, Observation, PolicyConfig, PolicyState, RecordBody,
    SourceTarget, StopReason, StormKey, StormTracker, decide,
};
use ras::report::{
    AbortKind, ErrorCause, ErrorReport, GpaGranule, InjectPayload, InjectTarget, SyncOrigin,
};

const NOW: u64 = 100_000;
const UNIX: u64 = 1_700_000_000;

fn g(base: u64, shift: u8) -> GpaGranule {
    GpaGranule::containing(base, shift).unwrap()
}

/// Poison registry contents relative to the reported granule.
#[derive(Clone, Copy, Debug)]
enum PoisonState {
    Clean,
    Exact,
    /// A 1 GiB granule containing the reported one.
    Covering,
    /// A 4 KiB granule at reported base + 4 KiB (inside a 2 MiB report,
    /// a neighbour of a 4 KiB one).
    SmallAt4k,
    Unrelated,
}

const POISON_STATES: [PoisonState; 5] = [
    PoisonState::Clean,
    PoisonState::Exact,
    PoisonState::Covering,
    PoisonState::SmallAt4k,
    PoisonState::Unrelated,
];

fn registry(state: PoisonState, reported: GpaGranule) -> PoisonRegistry {
    let mut r = PoisonRegistry::new(64);
    let add = match state {
        PoisonState::Clean => None,
        PoisonState::Exact => Some(reported),
        PoisonState::Covering => Some(g(reported.base(), 30)),
        PoisonState::SmallAt4k => Some(g(reported.base() + 0x1000, 12)),
        PoisonState::Unrelated => Some(g(0x9_0000_0000, 12)),
    };
    if let Some(a) = add {
        r.insert(a).unwrap();
    }
    r
}

/// Independent oracle: the known granule covering all of `x`.
fn covering_brute(r: &PoisonRegistry, x: &GpaGranule) -> Option<GpaGranule> {
    r.iter()
        .find(|k| k.base() <= x.base() && k.last() >= x.last())
}

/// Storm tracker contents: `same` observations under the report's own key
/// at `NOW`, `other` under other keys at `NOW`, `stale` under the report's
/// key just outside the window.
#[derive(Clone, Copy, Debug)]
struct StormState {
    same: u32,
    other: u32,
    stale: u32,
}

fn tracker(s: StormState, key: StormKey, cfg: &PolicyConfig) -> StormTracker {
    let mut t = StormTracker::new();
    let w = u64::from(cfg.storm_window_ms);
    for _ in 0..s.stale {
        t.observe(
            &Observation {
                at_ms: NOW - w,
                key,
            },
            cfg,
        );
    }
    for i in 0..s.other {
        let k = StormKey::Granule(g(0x7_0000_0000 + u64::from(i) * 0x1000, 12));
        t.observe(&Observation { at_ms: NOW, key: k }, cfg);
    }
    for _ in 0..s.same {
        t.observe(&Observation { at_ms: NOW, key }, cfg);
    }
    t
}

fn configs() -> Vec<PolicyConfig> {
    let mut v = Vec::new();
    for no_gpa in [NoGpaPolicy::Inject, NoGpaPolicy::Stop] {
        for async_mode in [AsyncMode::Gpio, AsyncMode::Polled, AsyncMode::Off] {
            for storm_limit in [0, 1, 3] {
                for rate_limit in [0, 2, 6] {
                    for storm_window_ms in [1, 1000] {
                        v.push(PolicyConfig {
                            no_gpa,
                            async_mode,
                            storm_limit,
                            storm_window_ms,
                            rate_limit,
                        });
                    }
                }
            }
        }
    }
    v
}

fn storm_states() -> Vec<StormState> {
    let mut v = Vec::new();
    for same in 0..=4 {
        for other in [0, 3] {
            for stale in [0, 5] {
                v.push(StormState { same, other, stale });
            }
        }
    }
    v
}

fn records(actions: &[Action]) -> Vec<(SourceTarget, &CperRecord)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Record { source, record } => Some((*source, record)),
            _ => None,
        })
        .collect()
}

fn count(actions: &[Action], f: impl Fn(&Action) -> bool) -> usize {
    actions.iter().filter(|a| f(a)).count()
}

fn position(actions: &[Action], f: impl Fn(&Action) -> bool) -> Option<usize> {
    actions.iter().position(f)
}

fn is_record(a: &Action) -> bool {
    matches!(a, Action::Record { .. })
}
fn is_inject(a: &Action) -> bool {
    matches!(a, Action::InjectAbort { .. })
}
fn is_notify(a: &Action) -> bool {
    matches!(a, Action::NotifyAsync)
}
fn is_stop(a: &Action) -> bool {
    matches!(a, Action::StopVm { .. })
}
fn is_mark(a: &Action) -> bool {
    matches!(a, Action::MarkPoisoned(_))
}

/// Rules that hold for every decision.
fn check_invariants(actions: &[Action], ctx: &str) {
    // A stop is the last action, and nothing tells the guest anything
    // alongside it.
    if let Some(p) = position(actions, is_stop) {
        assert_eq!(p, actions.len() - 1, "{ctx}: {actions:?}");
        assert_eq!(count(actions, is_stop), 1, "{ctx}");
        assert_eq!(count(actions, is_record), 0, "{ctx}: {actions:?}");
        assert_eq!(count(actions, is_inject), 0, "{ctx}: {actions:?}");
        assert_eq!(count(actions, is_notify), 0, "{ctx}: {actions:?}");
    }
    // Records come before the abort and the notification that announce
    // them.
    if let (Some(r), Some(i)) = (position(actions, is_record), position(actions, is_inject)) {
        assert!(r < i, "{ctx}: {actions:?}");
    }
    if let Some(n) = position(actions, is_notify) {
        let r = position(actions, |a| {
            matches!(
                a,
                Action::Record {
                    source: SourceTarget::Async,
                    ..
                }
            )
        });
        assert!(r.is_some_and(|r| r < n), "{ctx}: {actions:?}");
    }
    for a in actions {
        if let Action::InjectAbort { kind, .. } = a {
            assert_ne!(*kind, AbortKind::Unknown, "{ctx}");
        }
    }
    // Ignore is alone.
    if actions.iter().any(|a| matches!(a, Action::Ignore { .. })) {
        assert_eq!(actions.len(), 1, "{ctx}: {actions:?}");
    }
    assert!(count(actions, is_record) <= 1, "{ctx}");
    assert!(count(actions, is_inject) <= 1, "{ctx}");
    assert!(count(actions, is_notify) <= 1, "{ctx}");
    assert!(count(actions, is_mark) <= 1, "{ctx}");
}

/// The stop expected from the storm and rate limits for a host report
/// counted under its own key (`per_key` false for action-optional).
fn expected_storm(
    cfg: &PolicyConfig,
    s: StormState,
    per_key: bool,
    vcpu: u32,
    granule: Option<GpaGranule>,
) -> Option<StopReason> {
    let same = s.same + 1;
    let all = s.same + s.other + 1;
    if per_key && cfg.storm_limit != 0 && same > cfg.storm_limit {
        return Some(StopReason::Storm {
            vcpu,
            granule,
            count: same,
            window_ms: cfg.storm_window_ms,
        });
    }
    if cfg.rate_limit != 0 && all > cfg.rate_limit {
        return Some(StopReason::RateLimit {
            count: all,
            window_ms: cfg.storm_window_ms,
        });
    }
    None
}

#[test]
fn sync_consumption_all_combinations() {
    let reported_granules = [None, Some(g(0x4020_3000, 12)), Some(g(0x4020_0000, 21))];
    let mut checked = 0u64;
    for cfg in configs() {
        for origin in [SyncOrigin::Sigbus, SyncOrigin::ArmSeaExit] {
            for abort in [AbortKind::Data, AbortKind::Instruction, AbortKind::Unknown] {
                for granule in reported_granules {
                    for gva in [None, Some(0xffff_0000_1234_5000)] {
                        for ps in POISON_STATES {
                            for ss in storm_states() {
                                check_sync(&cfg, origin, abort, granule, gva, ps, ss);
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 108 * 2 * 3 * 3 * 2 * 5 * 20);
}

fn check_sync(
    cfg: &PolicyConfig,
    origin: SyncOrigin,
    abort: AbortKind,
    granule: Option<GpaGranule>,
    gva: Option<u64>,
    ps: PoisonState,
    ss: StormState,
) {
    let vcpu = 3;
    let reported_for_poison = granule.unwrap_or(g(0x4020_0000, 21));
    let poison = registry(ps, reported_for_poison);
    let known = granule.and_then(|x| covering_brute(&poison, &x));
    let key = match (known, granule) {
        (Some(k), _) => StormKey::Granule(k),
        (None, Some(x)) => StormKey::Granule(x),
        (None, None) => StormKey::NoGpa { vcpu },
    };
    let storm = tracker(ss, key, cfg);
    let report = ErrorReport {
        cause: ErrorCause::SyncConsumption {
            vcpu,
            origin,
            abort,
            granule,
            gva,
        },
        unix_time: UNIX,
        monotonic_ms: NOW,
    };
    let state = PolicyState {
        poison: &poison,
        storm: &storm,
    };
    let d = decide(&report, &state, cfg);
    let ctx = format!("{cfg:?} {origin:?} {abort:?} {granule:?} {gva:?} {ps:?} {ss:?}");
    let a = &d.actions;
    check_invariants(a, &ctx);
    assert_eq!(d, decide(&report, &state, cfg), "{ctx}: not deterministic");

    // Every consumption is observed under its key at the report's time.
    assert_eq!(d.observe, Some(Observation { at_ms: NOW, key }), "{ctx}");

    // New poison is always remembered, even when stopping; known poison
    // never twice.
    let marks: Vec<_> = a
        .iter()
        .filter_map(|x| match x {
            Action::MarkPoisoned(m) => Some(*m),
            _ => None,
        })
        .collect();
    match (granule, known) {
        (Some(x), None) => assert_eq!(marks, vec![x], "{ctx}"),
        _ => assert!(marks.is_empty(), "{ctx}"),
    }

    let storm_stop = expected_storm(cfg, ss, true, vcpu, key_granule(&key));
    if let Some(reason) = storm_stop {
        assert_eq!(a.last(), Some(&Action::StopVm { reason }), "{ctx}");
        return;
    }
    // No storm: the stale observations never count.
    let kind = if abort == AbortKind::Instruction {
        AbortKind::Instruction
    } else {
        AbortKind::Data
    };
    let inject = Action::InjectAbort {
        vcpu,
        kind,
        far: gva,
    };
    match granule {
        Some(x) => {
            let recs = records(a);
            assert_eq!(recs.len(), 1, "{ctx}");
            let (source, rec) = recs[0];
            assert_eq!(source, SourceTarget::Sync { vcpu }, "{ctx}");
            // Recoverable, never fatal: the guest can isolate the page.
            assert_eq!(rec.severity, Severity::Recoverable, "{ctx}");
            assert_eq!(rec.unix_time, UNIX, "{ctx}");
            let reported = rec.granule().unwrap();
            // The whole lost granule, never less than what was reported.
            assert!(reported.shift() >= x.shift(), "{ctx}");
            assert!(
                reported.contains(x.base()) && reported.contains(x.last()),
                "{ctx}"
            );
            assert_eq!(reported, known.unwrap_or(x), "{ctx}");
            assert_eq!(
                rec.body,
                RecordBody::Memory {
                    granule: reported,
                    threshold_exceeded: false
                },
                "{ctx}"
            );
            assert_eq!(a.last(), Some(&inject), "{ctx}");
            assert!(!a.iter().any(is_notify), "{ctx}");
        }
        None => match cfg.no_gpa {
            NoGpaPolicy::Inject => assert_eq!(a, &vec![inject], "{ctx}"),
            NoGpaPolicy::Stop => assert_eq!(
                a,
                &vec![Action::StopVm {
                    reason: StopReason::NoGpa { vcpu }
                }],
                "{ctx}"
            ),
        },
    }
}

fn key_granule(k: &StormKey) -> Option<GpaGranule> {
    match k {
        StormKey::Granule(x) => Some(*x),
        _ => None,
    }
}

#[test]
fn action_optional_all_combinations() {
    let mut checked = 0u64;
    for cfg in configs() {
        for granule in [g(0x4020_3000, 12), g(0x4020_0000, 21), g(0x8000_0000, 30)] {
            for ps in POISON_STATES {
                for ss in storm_states() {
                    check_ao(&cfg, granule, ps, ss);
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 108 * 3 * 5 * 20);
}

fn check_ao(cfg: &PolicyConfig, granule: GpaGranule, ps: PoisonState, ss: StormState) {
    let poison = registry(ps, granule);
    let known = covering_brute(&poison, &granule);
    let storm = tracker(ss, StormKey::RateOnly, cfg);
    let report = ErrorReport {
        cause: ErrorCause::HostActionOptional { granule },
        unix_time: UNIX,
        monotonic_ms: NOW,
    };
    let state = PolicyState {
        poison: &poison,
        storm: &storm,
    };
    let d = decide(&report, &state, cfg);
    let ctx = format!("{cfg:?} {granule:?} {ps:?} {ss:?}");
    let a = &d.actions;
    check_invariants(a, &ctx);
    assert_eq!(
        d.observe,
        Some(Observation {
            at_ms: NOW,
            key: StormKey::RateOnly
        }),
        "{ctx}"
    );
    // Action-optional never touches a vCPU.
    assert_eq!(count(a, is_inject), 0, "{ctx}");
    let mark = Action::MarkPoisoned(granule);
    if let Some(reason) = expected_storm(cfg, ss, false, 0, None) {
        let mut want = Vec::new();
        if known.is_none() {
            want.push(mark);
        }
        want.push(Action::StopVm { reason });
        assert_eq!(a, &want, "{ctx}");
        return;
    }
    if let Some(k) = known {
        assert_eq!(
            a,
            &vec![Action::Ignore {
                reason: IgnoreReason::AlreadyPoisoned { granule: k }
            }],
            "{ctx}"
        );
        return;
    }
    assert_eq!(count(a, |x| *x == mark), 1, "{ctx}");
    let recs = records(a);
    match cfg.async_mode {
        AsyncMode::Off => {
            assert!(recs.is_empty(), "{ctx}");
            assert_eq!(count(a, is_notify), 0, "{ctx}");
        }
        AsyncMode::Polled | AsyncMode::Gpio => {
            assert_eq!(recs.len(), 1, "{ctx}");
            assert_eq!(recs[0].0, SourceTarget::Async, "{ctx}");
            assert_eq!(recs[0].1.severity, Severity::Recoverable, "{ctx}");
            assert_eq!(recs[0].1.granule(), Some(granule), "{ctx}");
            let want = usize::from(cfg.async_mode == AsyncMode::Gpio);
            assert_eq!(count(a, is_notify), want, "{ctx}");
        }
    }
}

fn payloads() -> Vec<InjectPayload> {
    let mut v = Vec::new();
    for severity in [
        Severity::Recoverable,
        Severity::Fatal,
        Severity::Corrected,
        Severity::Informational,
    ] {
        for threshold_exceeded in [false, true] {
            v.push(InjectPayload::Memory {
                granule: g(0x4000_0000, 12),
                severity,
                threshold_exceeded,
            });
        }
        v.push(InjectPayload::Raw {
            section_type: Guid::from_fields(1, 2, 3, [4; 8]),
            severity,
            data: vec![1, 2, 3],
        });
        v.push(InjectPayload::ArmProcessor {
            section: ArmProcessorSection::default(),
            severity,
        });
    }
    v
}

#[test]
fn injected_all_combinations() {
    let mut checked = 0u64;
    for cfg in configs() {
        for target in [
            InjectTarget::Sync { vcpu: 0 },
            InjectTarget::Sync { vcpu: 7 },
            InjectTarget::Async,
        ] {
            for payload in payloads() {
                for ps in POISON_STATES {
                    for ss in storm_states() {
                        check_injected(&cfg, target, &payload, ps, ss);
                        checked += 1;
                    }
                }
            }
        }
    }
    // 16 payloads: per severity (4), two memory, one raw, one ARM.
    assert_eq!(checked, 108 * 3 * 16 * 5 * 20);
}

fn check_injected(
    cfg: &PolicyConfig,
    target: InjectTarget,
    payload: &InjectPayload,
    ps: PoisonState,
    ss: StormState,
) {
    let poison = registry(ps, g(0x4000_0000, 12));
    let storm = tracker(ss, StormKey::Granule(g(0x4000_0000, 12)), cfg);
    let report = ErrorReport {
        cause: ErrorCause::Injected {
            target,
            payload: payload.clone(),
        },
        unix_time: UNIX,
        monotonic_ms: NOW,
    };
    let state = PolicyState {
        poison: &poison,
        storm: &storm,
    };
    let d = decide(&report, &state, cfg);
    let ctx = format!("{cfg:?} {target:?} {payload:?} {ps:?} {ss:?}");
    let a = &d.actions;
    check_invariants(a, &ctx);
    // Operator requests are not host errors: no storm accounting, never a
    // stop, and the memory is not really lost.
    assert_eq!(d.observe, None, "{ctx}");
    assert_eq!(count(a, is_stop), 0, "{ctx}");
    assert_eq!(count(a, is_mark), 0, "{ctx}");
    let recs = records(a);
    let check_record = |rec: &CperRecord| {
        assert_eq!(rec.unix_time, UNIX, "{ctx}");
        match payload {
            InjectPayload::Memory {
                granule,
                severity,
                threshold_exceeded,
            } => {
                assert_eq!(rec.severity, *severity, "{ctx}");
                assert_eq!(
                    rec.body,
                    RecordBody::Memory {
                        granule: *granule,
                        threshold_exceeded: *threshold_exceeded
                    },
                    "{ctx}"
                );
            }
            InjectPayload::Raw {
                section_type,
                severity,
                data,
            } => {
                assert_eq!(rec.severity, *severity, "{ctx}");
                assert_eq!(
                    rec.body,
                    RecordBody::Raw {
                        section_type: *section_type,
                        data: data.clone()
                    },
                    "{ctx}"
                );
            }
            InjectPayload::ArmProcessor { section, severity } => {
                assert_eq!(rec.severity, *severity, "{ctx}");
                assert_eq!(
                    rec.to_status_block().error_severity(),
                    Some(*severity),
                    "{ctx}"
                );
                assert_eq!(rec.body, RecordBody::ArmProcessor(section.clone()), "{ctx}");
            }
        }
    };
    match target {
        InjectTarget::Sync { vcpu } => {
            assert_eq!(recs.len(), 1, "{ctx}");
            assert_eq!(recs[0].0, SourceTarget::Sync { vcpu }, "{ctx}");
            check_record(recs[0].1);
            assert_eq!(
                a.last(),
                Some(&Action::InjectAbort {
                    vcpu,
                    kind: AbortKind::Data,
                    far: None
                }),
                "{ctx}"
            );
            assert_eq!(count(a, is_notify), 0, "{ctx}");
        }
        InjectTarget::Async => {
            assert_eq!(count(a, is_inject), 0, "{ctx}");
            match cfg.async_mode {
                AsyncMode::Off => assert_eq!(
                    a,
                    &vec![Action::Ignore {
                        reason: IgnoreReason::AsyncDisabled
                    }],
                    "{ctx}"
                ),
                mode => {
                    assert_eq!(recs.len(), 1, "{ctx}");
                    assert_eq!(recs[0].0, SourceTarget::Async, "{ctx}");
                    check_record(recs[0].1);
                    let want = usize::from(mode == AsyncMode::Gpio);
                    assert_eq!(count(a, is_notify), want, "{ctx}");
                }
            }
        }
    }
}

/// Drives decide + observe as the engine does: repeated consumption of one
/// granule stops the VM exactly at consumption `storm_limit + 1` within the
/// window, and never when the consumptions are spread out.
#[test]
fn storm_stops_a_loop_and_only_a_loop() {
    for storm_limit in 1..=5u32 {
        for window in [10u32, 1000] {
            let cfg = PolicyConfig {
                storm_limit,
                storm_window_ms: window,
                rate_limit: 0,
                ..PolicyConfig::default()
            };
            let x = g(0x4020_0000, 21);
            let run = |step: u64| -> Option<u32> {
                let mut poison = PoisonRegistry::new(16);
                let mut storm = StormTracker::new();
                for i in 0..20u32 {
                    let report = ErrorReport {
                        cause: ErrorCause::SyncConsumption {
                            vcpu: i % 2,
                            origin: SyncOrigin::Sigbus,
                            abort: AbortKind::Unknown,
                            // A 4K inside the 2M: the same storm key once the
                            // 2M is known.
                            granule: Some(if i == 0 { x } else { g(x.base() + 0x5000, 12) }),
                            gva: None,
                        },
                        unix_time: UNIX,
                        monotonic_ms: NOW + u64::from(i) * step,
                    };
                    let d = decide(
                        &report,
                        &PolicyState {
                            poison: &poison,
                            storm: &storm,
                        },
                        &cfg,
                    );
                    if let Some(o) = &d.observe {
                        storm.observe(o, &cfg);
                    }
                    for a in &d.actions {
                        match a {
                            Action::MarkPoisoned(m) => {
                                poison.insert(*m).unwrap();
                            }
                            Action::StopVm { reason } => {
                                assert!(
                                    matches!(reason, StopReason::Storm { granule: Some(s), count, .. } if *s == x && *count == storm_limit + 1)
                                );
                                return Some(i + 1);
                            }
                            _ => {}
                        }
                    }
                }
                None
            };
            assert_eq!(
                run(0),
                Some(storm_limit + 1),
                "limit {storm_limit} window {window}"
            );
            assert_eq!(
                run(u64::from(window)),
                None,
                "limit {storm_limit} window {window}"
            );
        }
    }
}

#[test]
fn stop_reasons_read_well() {
    let reasons = [
        StopReason::NoGpa { vcpu: 1 },
        StopReason::Storm {
            vcpu: 1,
            granule: Some(g(0x4020_0000, 21)),
            count: 5,
            window_ms: 1000,
        },
        StopReason::Storm {
            vcpu: 1,
            granule: None,
            count: 5,
            window_ms: 1000,
        },
        StopReason::RateLimit {
            count: 9,
            window_ms: 1000,
        },
        StopReason::PoisonLimit { limit: 4 },
        StopReason::AbortFailed { vcpu: 2 },
    ];
    let mut names = HashSet::new();
    for r in &reasons {
        let s = r.to_string();
        assert!(
            s.starts_with(char::is_uppercase)
                || s.starts_with(char::is_numeric)
                || s.starts_with('v'),
            "{s}"
        );
        assert!(names.insert(r.name()) || matches!(r, StopReason::Storm { granule: None, .. }));
    }
    assert!(reasons[1].to_string().contains("0x40200000"));
}
