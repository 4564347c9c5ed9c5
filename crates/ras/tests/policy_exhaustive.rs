// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! `policy::decide` against the rules of its module documentation.
//!
//! The exhaustive tests enumerate every combination of cause x origin x
//! granule known/unknown x poison state x storm state x every knob of
//! `PolicyConfig`, and compare each decision with the one a small table of
//! the rules, written here, expects. The expected records are built field
//! by field from UEFI 2.10 N.2.5 (never by the code under test), the
//! expected poison coverage and storm counts from how the test set up the
//! registry and the tracker. Then one literal test per rule, and the storm
//! and rate limits exactly at the limit and one over.

use ras::config::{AsyncMode, NoGpaPolicy};
use ras::cper::{
    ArmProcessorSection, DataEntry, EntryFlags, Guid, MemoryErrorSection, RawSection, Section,
    Severity, StatusBlock, Timestamp,
};
use ras::error_source::SourceTarget;
use ras::granule::GpaGranule;
use ras::poison::PoisonRegistry;
use ras::policy::{
    Action, Decision, IgnoreReason, PolicyConfig, PolicyState, StopReason, SyncDelivery, decide,
};
use ras::report::{ErrorCause, ErrorReport, FoundBy, Origin};
use ras::storm::{Observation, StormKey, StormTracker};
use vm_memory::GuestAddress;

const NOW: u64 = 100_000;
/// 2026-11-24T18:33:20Z.
const UNIX: u64 = 1_795_545_200;

fn g(base: u64, shift: u8) -> GpaGranule {
    GpaGranule::containing(GuestAddress(base), shift).unwrap()
}

/// `UNIX` as a CPER timestamp (UEFI 2.10 N.2.1), precise.
fn timestamp() -> Timestamp {
    Timestamp {
        seconds: 20,
        minutes: 33,
        hours: 18,
        precise: true,
        day: 24,
        month: 11,
        year: 2026,
    }
}

/// The block the rules ask for when memory is lost: one primary,
/// timestamped data entry with a Platform Memory Error section (UEFI 2.10
/// N.2.5: physical address, mask and error type valid = bits 1, 2, 14;
/// mask = the bits above the granule; multi-bit ECC = 3), recoverable.
fn memory_block(lost: GpaGranule) -> StatusBlock {
    StatusBlock {
        entries: vec![DataEntry {
            section: Section::Memory(MemoryErrorSection {
                validation_bits: 0x4006,
                physical_address: lost.base().0,
                physical_address_mask: !((1u64 << lost.shift()) - 1),
                error_type: 3,
                ..Default::default()
            }),
            severity: Severity::Recoverable,
            flags: EntryFlags::PRIMARY,
            fru_id: None,
            fru_text: None,
            timestamp: Some(timestamp()),
        }],
        raw_data: Vec::new(),
    }
}

fn memory_record(target: SourceTarget, lost: GpaGranule) -> Action {
    Action::Record {
        target,
        block: memory_block(lost),
        granule: Some(lost),
    }
}

fn report(cause: ErrorCause) -> ErrorReport {
    ErrorReport {
        cause,
        unix_time: UNIX,
        monotonic_ms: NOW,
    }
}

fn consumed(vcpu: u32, granule: Option<GpaGranule>) -> ErrorCause {
    ErrorCause::Consumed {
        vcpu,
        origin: Origin::Sigbus,
        granule,
        page: None,
        gva: None,
    }
}

/// The wrong decisions of an exhaustive walk, reported together.
#[derive(Default)]
struct Wrong(Vec<String>);

impl Wrong {
    /// Notes `got` unless it is `want`; `case` names the combination.
    fn compare(&mut self, got: &Decision, want: &Decision, case: impl FnOnce() -> String) {
        if got != want {
            self.0
                .push(format!("{}\n  got  {got:?}\n  want {want:?}", case()));
        }
    }

    fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "{} wrong decisions, first: {}",
            self.0.len(),
            self.0[0]
        );
    }
}

fn run(
    report: &ErrorReport,
    poison: &PoisonRegistry,
    storm: &StormTracker,
    cfg: &PolicyConfig,
) -> Decision {
    decide(report, &PolicyState { poison, storm }, cfg)
}

/// [`run`] with no storm history and the default limits (16 per granule,
/// 1024 per window): where only the poison registry matters.
fn run_calm(report: &ErrorReport, poison: &PoisonRegistry) -> Decision {
    run(report, poison, &StormTracker::new(), &config(16, 1024))
}

fn config(storm_limit: u32, rate_limit: u32) -> PolicyConfig {
    PolicyConfig {
        no_gpa: NoGpaPolicy::Inject,
        async_mode: AsyncMode::Gpio,
        storm_limit,
        storm_window_ms: 1000,
        rate_limit,
        sync: SyncDelivery::ErrorSource,
    }
}

// ---------------------------------------------------------------------
// The exhaustive enumeration.

/// Poison registry contents relative to the reported granule.
#[derive(Clone, Copy, Debug)]
enum PoisonState {
    Clean,
    /// The reported granule itself.
    Exact,
    /// The 1 GiB granule containing it.
    Covering,
    /// A 4 KiB page at reported base + 4 KiB: inside a reported 2 MiB
    /// (which absorbs it), next to a reported 4 KiB page.
    SmallInside,
    /// A page far away.
    Unrelated,
}

const POISON_STATES: [PoisonState; 5] = [
    PoisonState::Clean,
    PoisonState::Exact,
    PoisonState::Covering,
    PoisonState::SmallInside,
    PoisonState::Unrelated,
];

/// The registry for a state, and the known granule covering all of
/// `reported` in it (the rule: a granule inside a known poisoned one is
/// reported as the known one).
fn registry(state: PoisonState, reported: GpaGranule) -> (PoisonRegistry, Option<GpaGranule>) {
    let base = reported.base().0;
    let giga = g(base & !((1 << 30) - 1), 30);
    let (add, known) = match state {
        PoisonState::Clean => (None, None),
        PoisonState::Exact => (Some(reported), Some(reported)),
        PoisonState::Covering => (Some(giga), Some(giga)),
        PoisonState::SmallInside => (Some(g(base + 0x1000, 12)), None),
        PoisonState::Unrelated => (Some(g(0x9_0000_0000, 12)), None),
    };
    let mut r = PoisonRegistry::new(64);
    if let Some(a) = add {
        r.insert(a).unwrap();
    }
    (r, known)
}

/// Storm tracker contents: `same` observations under the report's own key
/// inside the window (alternately at its first millisecond and at `NOW`),
/// `other` under other keys at `NOW`, `stale` under the report's key one
/// millisecond before the window.
#[derive(Clone, Copy, Debug)]
struct StormState {
    same: u32,
    other: u32,
    stale: u32,
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

fn tracker(s: StormState, key: StormKey, window_ms: u32) -> StormTracker {
    let w = u64::from(window_ms);
    let mut t = StormTracker::new();
    for _ in 0..s.stale {
        t.observe(
            Observation {
                at_ms: NOW - w,
                key,
            },
            window_ms,
        );
    }
    for i in 0..s.same {
        let at_ms = if i % 2 == 0 { NOW - w + 1 } else { NOW };
        t.observe(Observation { at_ms, key }, window_ms);
    }
    let others = [
        StormKey::Granule(g(0x7_0000_0000, 12)),
        StormKey::NoGpa { vcpu: 9 },
        StormKey::RateOnly,
    ];
    for i in 0..s.other {
        let mut k = others[i as usize % others.len()];
        if k == key {
            k = StormKey::Granule(g(0x7_1000_0000, 12));
        }
        t.observe(Observation { at_ms: NOW, key: k }, window_ms);
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
                        for sync in [SyncDelivery::ErrorSource, SyncDelivery::MachineCheck] {
                            v.push(PolicyConfig {
                                no_gpa,
                                async_mode,
                                storm_limit,
                                storm_window_ms,
                                rate_limit,
                                sync,
                            });
                        }
                    }
                }
            }
        }
    }
    v
}

/// The storm rule: more than `storm_limit` consumptions under the same
/// key (only for consumptions, `vcpu` given), else more than `rate_limit`
/// host-reported errors, in the window, this one included, stop the VM.
fn storm_rule(
    cfg: &PolicyConfig,
    s: StormState,
    vcpu: Option<u32>,
    key: StormKey,
) -> Option<StopReason> {
    let same = s.same + 1;
    let all = s.same + s.other + 1;
    if let Some(vcpu) = vcpu
        && cfg.storm_limit != 0
        && same > cfg.storm_limit
    {
        return Some(StopReason::Storm {
            vcpu,
            granule: match key {
                StormKey::Granule(k) => Some(k),
                _ => None,
            },
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

/// The consumption rules.
fn expected_consumption(
    cfg: &PolicyConfig,
    vcpu: u32,
    granule: Option<GpaGranule>,
    page: Option<GpaGranule>,
    known: Option<GpaGranule>,
    s: StormState,
) -> Decision {
    let key = match (known, granule) {
        (Some(k), _) => StormKey::Granule(k),
        (None, Some(r)) => StormKey::Granule(r),
        (None, None) => StormKey::NoGpa { vcpu },
    };
    // New poison is remembered even when the VM stops.
    let mark = granule
        .filter(|_| known.is_none())
        .map(Action::MarkPoisoned);
    let actions = match (storm_rule(cfg, s, Some(vcpu), key), known.or(granule)) {
        (Some(reason), _) => mark.into_iter().chain([Action::StopVm(reason)]).collect(),
        // The record names the accessed page when it lies inside a larger
        // loss, the loss otherwise; a machine check carries the address
        // itself and there is no synchronous source to record in.
        (None, Some(lost)) => [memory_record(
            SourceTarget::Sync { vcpu },
            match page {
                Some(p) if lost.contains(p.base()) && p.len() < lost.len() => p,
                _ => lost,
            },
        )]
        .into_iter()
        .filter(|_| cfg.sync == SyncDelivery::ErrorSource)
        .chain(mark)
        .chain([Action::InjectAbort { vcpu }])
        .collect(),
        (None, None) => match cfg.no_gpa {
            NoGpaPolicy::Inject => vec![Action::InjectAbort { vcpu }],
            NoGpaPolicy::Stop => vec![Action::StopVm(StopReason::NoGpa { vcpu })],
        },
    };
    Decision {
        actions,
        observe: Some(Observation { at_ms: NOW, key }),
    }
}

/// The action-optional rules.
fn expected_announced(
    cfg: &PolicyConfig,
    granule: GpaGranule,
    known: Option<GpaGranule>,
    s: StormState,
) -> Decision {
    let actions = match (storm_rule(cfg, s, None, StormKey::RateOnly), known) {
        (Some(reason), None) => vec![Action::MarkPoisoned(granule), Action::StopVm(reason)],
        (Some(reason), Some(_)) => vec![Action::StopVm(reason)],
        (None, Some(k)) => vec![Action::Ignore(IgnoreReason::AlreadyPoisoned { granule: k })],
        (None, None) => match cfg.async_mode {
            AsyncMode::Gpio => vec![
                memory_record(SourceTarget::Async, granule),
                Action::MarkPoisoned(granule),
                Action::NotifyAsync,
            ],
            AsyncMode::Polled => vec![
                memory_record(SourceTarget::Async, granule),
                Action::MarkPoisoned(granule),
            ],
            AsyncMode::Off => vec![Action::MarkPoisoned(granule)],
        },
    };
    Decision {
        actions,
        observe: Some(Observation {
            at_ms: NOW,
            key: StormKey::RateOnly,
        }),
    }
}

/// The injection rules: `granule` is the memory range the entry reports.
fn expected_injected(
    cfg: &PolicyConfig,
    target: SourceTarget,
    entry: &DataEntry,
    granule: Option<GpaGranule>,
) -> Decision {
    let mut timestamped = entry.clone();
    timestamped.timestamp = Some(timestamp());
    let record = Action::Record {
        target,
        block: StatusBlock {
            entries: vec![timestamped],
            raw_data: Vec::new(),
        },
        granule,
    };
    let actions = match (target, cfg.async_mode) {
        (SourceTarget::Sync { .. }, _) if cfg.sync == SyncDelivery::MachineCheck => {
            vec![Action::Ignore(IgnoreReason::NoSyncSource)]
        }
        (SourceTarget::Sync { vcpu }, _) => vec![record, Action::InjectAbort { vcpu }],
        (SourceTarget::Async, AsyncMode::Gpio) => vec![record, Action::NotifyAsync],
        (SourceTarget::Async, AsyncMode::Polled) => vec![record],
        (SourceTarget::Async, AsyncMode::Off) => {
            vec![Action::Ignore(IgnoreReason::AsyncDisabled)]
        }
    };
    Decision {
        actions,
        observe: None,
    }
}

#[test]
fn consumption_all_combinations() {
    let granules = [None, Some(g(0x4020_3000, 12)), Some(g(0x4020_0000, 21))];
    // The accessed page: none, inside the granules above, outside them.
    let pages = [None, Some(g(0x4020_3000, 12)), Some(g(0x4080_0000, 12))];
    let mut wrong = Wrong::default();
    for cfg in configs() {
        for origin in [Origin::Sigbus, Origin::SeaExit] {
            for gva in [None, Some(0xffff_0000_1234_5000)] {
                for (granule, page) in granules
                    .into_iter()
                    .flat_map(|g| pages.into_iter().map(move |p| (g, p)))
                {
                    for ps in POISON_STATES {
                        let (poison, known) = registry(ps, granule.unwrap_or(g(0x4020_0000, 21)));
                        let known = known.filter(|_| granule.is_some());
                        for ss in storm_states() {
                            let vcpu = 3;
                            let want = expected_consumption(&cfg, vcpu, granule, page, known, ss);
                            let key = want.observe.unwrap().key;
                            let storm = tracker(ss, key, cfg.storm_window_ms);
                            let r = report(ErrorCause::Consumed {
                                vcpu,
                                origin,
                                granule,
                                page,
                                gva,
                            });
                            wrong.compare(&run(&r, &poison, &storm, &cfg), &want, || {
                                format!(
                                    "{cfg:?} {origin:?} {gva:?} {granule:?} {page:?} {ps:?} {ss:?}"
                                )
                            });
                        }
                    }
                }
            }
        }
    }
    wrong.assert_none();
}

#[test]
fn announced_all_combinations() {
    let mut wrong = Wrong::default();
    for cfg in configs() {
        for granule in [g(0x4020_3000, 12), g(0x4020_0000, 21), g(0x8000_0000, 30)] {
            for ps in POISON_STATES {
                let (poison, known) = registry(ps, granule);
                for ss in storm_states() {
                    let want = expected_announced(&cfg, granule, known, ss);
                    let storm = tracker(ss, StormKey::RateOnly, cfg.storm_window_ms);
                    // Who found the loss changes the event, never the
                    // decision.
                    for found_by in [FoundBy::HostSignal, FoundBy::VmmCopy] {
                        let r = report(ErrorCause::Announced { granule, found_by });
                        wrong.compare(&run(&r, &poison, &storm, &cfg), &want, || {
                            format!("{cfg:?} {granule:?} {found_by:?} {ps:?} {ss:?}")
                        });
                    }
                }
            }
        }
    }
    wrong.assert_none();
}

/// Injected entries, each with the memory range it reports (by UEFI 2.10
/// N.2.5: physical address & mask, length !mask + 1, when both are valid
/// and form a granule).
fn payloads() -> Vec<(DataEntry, Option<GpaGranule>)> {
    let mem = |validation_bits: u64, pa: u64, mask: u64| {
        Section::Memory(MemoryErrorSection {
            validation_bits,
            physical_address: pa,
            physical_address_mask: mask,
            error_type: 3,
            ..Default::default()
        })
    };
    let mut v = Vec::new();
    for severity in Severity::ALL {
        for flags in [EntryFlags::PRIMARY, EntryFlags(0x09)] {
            v.push((
                DataEntry::new(mem(0x4006, 0x4000_0000, 0xffff_ffff_ffff_f000), severity)
                    .with_flags(flags),
                Some(g(0x4000_0000, 12)),
            ));
        }
        // An address inside the range: the range is address & mask.
        v.push((
            DataEntry::new(mem(0x4006, 0x4020_1234, 0xffff_ffff_ffe0_0000), severity),
            Some(g(0x4020_0000, 21)),
        ));
        // Address without the mask bit, mask without the address bit, a
        // mask that is not a power-of-two range, a zero mask: no range.
        for (bits, mask) in [
            (0x4002, 0xffff_ffff_ffff_f000),
            (0x4004, 0xffff_ffff_ffff_f000),
            (0x4006, 0xffff_ffff_ffff_0fff),
            (0x4006, 0),
        ] {
            v.push((DataEntry::new(mem(bits, 0x4000_0000, mask), severity), None));
        }
        v.push((
            DataEntry::new(
                Section::ArmProcessor(ArmProcessorSection::default()),
                severity,
            ),
            None,
        ));
        v.push((
            DataEntry::new(
                Section::Raw(RawSection::new(
                    Guid::from_fields(1, 2, 3, [4; 8]),
                    vec![1, 2, 3],
                )),
                severity,
            ),
            None,
        ));
    }
    v
}

#[test]
fn injected_all_combinations() {
    let mut wrong = Wrong::default();
    for cfg in configs() {
        for target in [
            SourceTarget::Sync { vcpu: 0 },
            SourceTarget::Sync { vcpu: 7 },
            SourceTarget::Async,
        ] {
            for (entry, granule) in payloads() {
                for ps in POISON_STATES {
                    let (poison, _) = registry(ps, g(0x4000_0000, 12));
                    for ss in storm_states() {
                        // Storm and poison state do not matter: an
                        // injection is not a host error.
                        let want = expected_injected(&cfg, target, &entry, granule);
                        let storm = tracker(
                            ss,
                            StormKey::Granule(g(0x4000_0000, 12)),
                            cfg.storm_window_ms,
                        );
                        let r = report(ErrorCause::Injected {
                            target,
                            entry: entry.clone(),
                        });
                        wrong.compare(&run(&r, &poison, &storm, &cfg), &want, || {
                            format!("{cfg:?} {target:?} {entry:?} {ps:?} {ss:?}")
                        });
                    }
                }
            }
        }
    }
    wrong.assert_none();
}

// ---------------------------------------------------------------------
// One literal case per rule of the module documentation.

/// Rule 1: a consumption with an address records a recoverable memory
/// error for the granule on the vCPU's source, marks it, aborts the vCPU.
#[test]
fn rule_consumption_with_address() {
    let lost = g(0x4020_3000, 12);
    let d = run_calm(&report(consumed(1, Some(lost))), &PoisonRegistry::new(8));
    assert_eq!(
        d.actions,
        vec![
            memory_record(SourceTarget::Sync { vcpu: 1 }, g(0x4020_3000, 12)),
            Action::MarkPoisoned(g(0x4020_3000, 12)),
            Action::InjectAbort { vcpu: 1 },
        ]
    );
    assert_eq!(
        d.observe,
        Some(Observation {
            at_ms: NOW,
            key: StormKey::Granule(g(0x4020_3000, 12))
        })
    );
    // The block's bytes: what memory_block describes, as in the spec.
    let Action::Record { block, .. } = &d.actions[0] else {
        panic!("not a record");
    };
    let bytes = block.encode();
    assert_eq!(bytes[0..4], 0x11u32.to_le_bytes());
    assert_eq!(bytes[92 + 16..92 + 24], 0x4020_3000u64.to_le_bytes());
    assert_eq!(
        bytes[92 + 24..92 + 32],
        0xffff_ffff_ffff_f000u64.to_le_bytes()
    );
}

/// Rule 1, second sentence: a granule inside a known poisoned one is
/// reported as the known, larger one (and not marked again).
#[test]
fn rule_consumption_inside_known_poison_reports_the_known_granule() {
    let mut poison = PoisonRegistry::new(8);
    poison.insert(g(0x4020_0000, 21)).unwrap();
    let d = run_calm(&report(consumed(1, Some(g(0x4020_5000, 12)))), &poison);
    assert_eq!(
        d.actions,
        vec![
            memory_record(SourceTarget::Sync { vcpu: 1 }, g(0x4020_0000, 21)),
            Action::InjectAbort { vcpu: 1 },
        ]
    );
    assert_eq!(
        d.observe.map(|o| o.key),
        Some(StormKey::Granule(g(0x4020_0000, 21)))
    );
    // A larger granule than the known one is new poison (it absorbs it).
    let d = run_calm(&report(consumed(1, Some(g(0x4000_0000, 30)))), &poison);
    assert_eq!(
        d.actions,
        vec![
            memory_record(SourceTarget::Sync { vcpu: 1 }, g(0x4000_0000, 30)),
            Action::MarkPoisoned(g(0x4000_0000, 30)),
            Action::InjectAbort { vcpu: 1 },
        ]
    );
}

/// Rule 2: a consumption without an address: the abort alone
/// (`no_gpa=inject`) or a stop (`no_gpa=stop`).
#[test]
fn rule_consumption_without_address() {
    let sea = report(ErrorCause::Consumed {
        vcpu: 2,
        origin: Origin::SeaExit,
        granule: None,
        page: None,
        gva: Some(0x1234),
    });
    let mut cfg = config(16, 1024);
    let d = run(&sea, &PoisonRegistry::new(8), &StormTracker::new(), &cfg);
    assert_eq!(d.actions, vec![Action::InjectAbort { vcpu: 2 }]);
    assert_eq!(d.observe.map(|o| o.key), Some(StormKey::NoGpa { vcpu: 2 }));
    cfg.no_gpa = NoGpaPolicy::Stop;
    let d = run(&sea, &PoisonRegistry::new(8), &StormTracker::new(), &cfg);
    assert_eq!(
        d.actions,
        vec![Action::StopVm(StopReason::NoGpa { vcpu: 2 })]
    );
}

/// Rule 3: announced poison is marked, and unless `async=off` recorded on
/// the asynchronous source, notified unless polled; known poison ignored.
#[test]
fn rule_announced() {
    let lost = g(0x8000_0000, 21);
    let r = report(ErrorCause::Announced {
        granule: lost,
        found_by: FoundBy::HostSignal,
    });
    let mut cfg = config(16, 1024);
    let empty = PoisonRegistry::new(8);
    let storm = StormTracker::new();
    assert_eq!(
        run(&r, &empty, &storm, &cfg).actions,
        vec![
            memory_record(SourceTarget::Async, g(0x8000_0000, 21)),
            Action::MarkPoisoned(g(0x8000_0000, 21)),
            Action::NotifyAsync,
        ]
    );
    cfg.async_mode = AsyncMode::Polled;
    assert_eq!(
        run(&r, &empty, &storm, &cfg).actions,
        vec![
            memory_record(SourceTarget::Async, g(0x8000_0000, 21)),
            Action::MarkPoisoned(g(0x8000_0000, 21)),
        ]
    );
    cfg.async_mode = AsyncMode::Off;
    assert_eq!(
        run(&r, &empty, &storm, &cfg).actions,
        vec![Action::MarkPoisoned(g(0x8000_0000, 21))]
    );
    let mut known = PoisonRegistry::new(8);
    known.insert(g(0x8000_0000, 30)).unwrap();
    cfg.async_mode = AsyncMode::Gpio;
    assert_eq!(
        run(&r, &known, &storm, &cfg).actions,
        vec![Action::Ignore(IgnoreReason::AlreadyPoisoned {
            granule: g(0x8000_0000, 30)
        })]
    );
}

/// Rule 4: an injection is recorded as asked on the source asked, a
/// synchronous one also aborts; nothing is marked poisoned, nothing
/// counted, whatever the storm history.
#[test]
fn rule_injected() {
    let entry = DataEntry::new(
        Section::Memory(MemoryErrorSection {
            validation_bits: 0x4006,
            physical_address: 0x4000_0000,
            physical_address_mask: 0xffff_ffff_ffff_f000,
            error_type: 3,
            ..Default::default()
        }),
        Severity::Fatal,
    )
    .with_flags(EntryFlags::PRIMARY);
    let mut stamped = entry.clone();
    stamped.timestamp = Some(timestamp());
    let record = |target| Action::Record {
        target,
        block: StatusBlock {
            entries: vec![stamped.clone()],
            raw_data: Vec::new(),
        },
        granule: Some(g(0x4000_0000, 12)),
    };
    // A tracker far over every limit.
    let mut storm = StormTracker::new();
    for _ in 0..100 {
        storm.observe(
            Observation {
                at_ms: NOW,
                key: StormKey::Granule(g(0x4000_0000, 12)),
            },
            1000,
        );
    }
    let mut cfg = config(1, 1);
    let sync = report(ErrorCause::Injected {
        target: SourceTarget::Sync { vcpu: 5 },
        entry: entry.clone(),
    });
    let d = run(&sync, &PoisonRegistry::new(8), &storm, &cfg);
    assert_eq!(
        d,
        Decision {
            actions: vec![
                record(SourceTarget::Sync { vcpu: 5 }),
                Action::InjectAbort { vcpu: 5 }
            ],
            observe: None,
        }
    );
    let asynchronous = report(ErrorCause::Injected {
        target: SourceTarget::Async,
        entry,
    });
    let d = run(&asynchronous, &PoisonRegistry::new(8), &storm, &cfg);
    assert_eq!(
        d.actions,
        vec![record(SourceTarget::Async), Action::NotifyAsync]
    );
    cfg.async_mode = AsyncMode::Polled;
    let d = run(&asynchronous, &PoisonRegistry::new(8), &storm, &cfg);
    assert_eq!(d.actions, vec![record(SourceTarget::Async)]);
    cfg.async_mode = AsyncMode::Off;
    let d = run(&asynchronous, &PoisonRegistry::new(8), &storm, &cfg);
    assert_eq!(d.actions, vec![Action::Ignore(IgnoreReason::AsyncDisabled)]);
}

/// Rule 6: host errors are never reported fatal (only an injection can
/// carry a fatal severity, see `rule_injected`).
#[test]
fn rule_host_errors_are_recoverable() {
    let empty = PoisonRegistry::new(8);
    let storm = StormTracker::new();
    let cfg = config(16, 1024);
    for cause in [
        consumed(0, Some(g(0x1000, 12))),
        ErrorCause::Announced {
            granule: g(0x1000, 12),
            found_by: FoundBy::HostSignal,
        },
        ErrorCause::Announced {
            granule: g(0x1000, 12),
            found_by: FoundBy::VmmCopy,
        },
    ] {
        let d = run(&report(cause), &empty, &storm, &cfg);
        let Action::Record { block, .. } = &d.actions[0] else {
            panic!("no record: {:?}", d.actions);
        };
        assert_eq!(block.entries[0].severity, Severity::Recoverable);
        // ACPI 6.5 Table 18.19 error severity field: 0 = recoverable.
        assert_eq!(block.encode()[16..20], [0, 0, 0, 0]);
    }
}

// ---------------------------------------------------------------------
// Rule 5: the storm and rate limits at their boundaries.

fn tracker_with(observations: &[(u64, StormKey)], window_ms: u32) -> StormTracker {
    let mut t = StormTracker::new();
    for (at_ms, key) in observations {
        t.observe(
            Observation {
                at_ms: *at_ms,
                key: *key,
            },
            window_ms,
        );
    }
    t
}

#[test]
fn storm_limit_exactly_at_the_limit_and_one_over() {
    let lost = g(0x4020_0000, 21);
    let key = StormKey::Granule(lost);
    let r = report(consumed(4, Some(lost)));
    let poison = PoisonRegistry::new(8);
    let cfg = config(3, 0);
    // Two earlier consumptions + this one = 3 = the limit: not more.
    let at_limit = tracker_with(&[(NOW - 10, key), (NOW - 5, key)], 1000);
    assert_eq!(
        run(&r, &poison, &at_limit, &cfg).actions,
        vec![
            memory_record(SourceTarget::Sync { vcpu: 4 }, lost),
            Action::MarkPoisoned(lost),
            Action::InjectAbort { vcpu: 4 },
        ]
    );
    // Three earlier + this one = 4 > 3: stop, after remembering the poison.
    let over = tracker_with(&[(NOW - 10, key), (NOW - 5, key), (NOW, key)], 1000);
    assert_eq!(
        run(&r, &poison, &over, &cfg).actions,
        vec![
            Action::MarkPoisoned(lost),
            Action::StopVm(StopReason::Storm {
                vcpu: 4,
                granule: Some(lost),
                count: 4,
                window_ms: 1000
            }),
        ]
    );
    // storm_limit = 0: no limit.
    assert_eq!(
        run(&r, &poison, &over, &config(0, 0)).actions.last(),
        Some(&Action::InjectAbort { vcpu: 4 })
    );
}

#[test]
fn storm_window_edges() {
    let lost = g(0x4020_0000, 21);
    let key = StormKey::Granule(lost);
    let r = report(consumed(0, Some(lost)));
    let poison = PoisonRegistry::new(8);
    let cfg = config(1, 0);
    // One earlier consumption exactly `window` ago: outside (the window is
    // the last 1000 ms, NOW - 999 ..= NOW).
    let outside = tracker_with(&[(NOW - 1000, key)], 1000);
    assert_eq!(
        run(&r, &poison, &outside, &cfg).actions.last(),
        Some(&Action::InjectAbort { vcpu: 0 })
    );
    let inside = tracker_with(&[(NOW - 999, key)], 1000);
    assert_eq!(
        run(&r, &poison, &inside, &cfg).actions.last(),
        Some(&Action::StopVm(StopReason::Storm {
            vcpu: 0,
            granule: Some(lost),
            count: 2,
            window_ms: 1000
        }))
    );
    // Another granule, another vCPU without address: not the same storm.
    let others = tracker_with(
        &[
            (NOW, StormKey::Granule(g(0x4040_0000, 21))),
            (NOW, StormKey::NoGpa { vcpu: 0 }),
            (NOW, StormKey::RateOnly),
        ],
        1000,
    );
    assert_eq!(
        run(&r, &poison, &others, &cfg).actions.last(),
        Some(&Action::InjectAbort { vcpu: 0 })
    );
}

#[test]
fn storm_without_address_is_per_vcpu() {
    let cfg = config(2, 0);
    let poison = PoisonRegistry::new(8);
    let t = tracker_with(
        &[
            (NOW, StormKey::NoGpa { vcpu: 1 }),
            (NOW, StormKey::NoGpa { vcpu: 1 }),
        ],
        1000,
    );
    assert_eq!(
        run(&report(consumed(1, None)), &poison, &t, &cfg).actions,
        vec![Action::StopVm(StopReason::Storm {
            vcpu: 1,
            granule: None,
            count: 3,
            window_ms: 1000
        })]
    );
    assert_eq!(
        run(&report(consumed(2, None)), &poison, &t, &cfg).actions,
        vec![Action::InjectAbort { vcpu: 2 }]
    );
}

#[test]
fn rate_limit_exactly_at_the_limit_and_one_over() {
    let cfg = config(0, 5);
    let poison = PoisonRegistry::new(8);
    let keys = [
        StormKey::Granule(g(0x1000, 12)),
        StormKey::Granule(g(0x2000, 12)),
        StormKey::NoGpa { vcpu: 3 },
        StormKey::RateOnly,
        StormKey::RateOnly,
    ];
    let four = tracker_with(
        &keys[..4].iter().map(|k| (NOW, *k)).collect::<Vec<_>>(),
        1000,
    );
    let five = tracker_with(&keys.iter().map(|k| (NOW, *k)).collect::<Vec<_>>(), 1000);
    let lost = g(0x9000, 12);
    for cause in [
        consumed(0, Some(lost)),
        ErrorCause::Announced {
            granule: lost,
            found_by: FoundBy::HostSignal,
        },
    ] {
        let r = report(cause.clone());
        // Four earlier + this one = 5 = the limit.
        let d = run(&r, &poison, &four, &cfg);
        assert!(
            !d.actions.iter().any(|a| matches!(a, Action::StopVm(_))),
            "{cause:?}: {:?}",
            d.actions
        );
        // Five earlier + this one = 6 > 5.
        assert_eq!(
            run(&r, &poison, &five, &cfg).actions,
            vec![
                Action::MarkPoisoned(lost),
                Action::StopVm(StopReason::RateLimit {
                    count: 6,
                    window_ms: 1000
                }),
            ],
            "{cause:?}"
        );
    }
}

#[test]
fn storm_limit_does_not_apply_to_announced_errors() {
    let lost = g(0x9000, 12);
    let t = tracker_with(&[(NOW, StormKey::RateOnly); 5], 1000);
    let d = run(
        &report(ErrorCause::Announced {
            granule: lost,
            found_by: FoundBy::HostSignal,
        }),
        &PoisonRegistry::new(8),
        &t,
        &config(1, 0),
    );
    assert_eq!(
        d.actions,
        vec![
            memory_record(SourceTarget::Async, lost),
            Action::MarkPoisoned(lost),
            Action::NotifyAsync,
        ]
    );
}

#[test]
fn stop_and_ignore_reasons_read_well() {
    let cases = [
        (
            StopReason::NoGpa { vcpu: 1 },
            "no-gpa",
            "vCPU 1 consumed poisoned memory at an unknown guest-physical address",
        ),
        (
            StopReason::Storm {
                vcpu: 1,
                granule: Some(g(0x4020_0000, 21)),
                count: 5,
                window_ms: 1000,
            },
            "storm",
            "Poisoned memory at 0x40200000+2^21 consumed 5 times in 1000 ms (last by vCPU 1)",
        ),
        (
            StopReason::Storm {
                vcpu: 2,
                granule: None,
                count: 5,
                window_ms: 1000,
            },
            "storm",
            "vCPU 2 consumed poisoned memory at an unknown address 5 times in 1000 ms",
        ),
        (
            StopReason::RateLimit {
                count: 9,
                window_ms: 1000,
            },
            "rate-limit",
            "9 memory errors in 1000 ms",
        ),
        (
            StopReason::PoisonLimit { limit: 4 },
            "poison-limit",
            "More than 4 poisoned memory granules",
        ),
        (
            StopReason::AbortFailed { vcpu: 2 },
            "abort-failed",
            "Could not make vCPU 2 take the abort",
        ),
    ];
    for (reason, name, text) in cases {
        assert_eq!(reason.name(), name);
        assert_eq!(reason.to_string(), text);
    }
    assert_eq!(
        IgnoreReason::AlreadyPoisoned {
            granule: g(0x1000, 12)
        }
        .name(),
        "already-poisoned"
    );
    assert_eq!(IgnoreReason::AsyncDisabled.name(), "async-disabled");
    // The serialized form (snapshots, API) is snake_case.
    assert_eq!(
        serde_json::to_string(&StopReason::PoisonLimit { limit: 4 }).unwrap(),
        r#"{"poison_limit":{"limit":4}}"#
    );
}

/// Rule 1b: in a huge page lost whole, the record names the page the vCPU
/// accessed (Linux acts on the record's address only: the process that
/// touched it is the one to kill), the registry remembers the whole loss.
#[test]
fn rule_consumption_names_the_accessed_page() {
    let lost = g(0x4020_0000, 21);
    let touched = g(0x4027_5000, 12);
    let r = report(ErrorCause::Consumed {
        vcpu: 1,
        origin: Origin::Sigbus,
        granule: Some(lost),
        page: Some(touched),
        gva: None,
    });
    let d = run_calm(&r, &PoisonRegistry::new(8));
    assert_eq!(
        d.actions,
        vec![
            Action::Record {
                target: SourceTarget::Sync { vcpu: 1 },
                block: memory_block(touched),
                granule: Some(touched),
            },
            Action::MarkPoisoned(lost),
            Action::InjectAbort { vcpu: 1 },
        ]
    );
    // The storm is counted on the loss, not on the page.
    assert_eq!(d.observe.map(|o| o.key), Some(StormKey::Granule(lost)));
    // A page outside the loss (a confused edge) is not trusted: the loss.
    let r = report(ErrorCause::Consumed {
        vcpu: 1,
        origin: Origin::Sigbus,
        granule: Some(lost),
        page: Some(g(0x4060_0000, 12)),
        gva: None,
    });
    let d = run_calm(&r, &PoisonRegistry::new(8));
    assert_eq!(
        d.actions[0],
        memory_record(SourceTarget::Sync { vcpu: 1 }, lost)
    );
}
