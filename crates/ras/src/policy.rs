// SPDX-License-Identifier: Apache-2.0
//! What to do about an error report: a pure function from the report, the
//! engine's state and the configuration to a list of [`Action`]s.
//!
//! Rules (see [`decide`]):
//! - **Synchronous consumption with a GPA** (SIGBUS `BUS_MCEERR_AR`, or
//!   `KVM_EXIT_ARM_SEA` with `KVM_EXIT_ARM_SEA_FLAG_GPA_VALID`): record a
//!   *recoverable* platform-memory error for the whole granule on the
//!   vCPU's SEA source, mark the granule poisoned, inject the abort (a data
//!   abort when the kind is unknown). A granule inside a known poisoned one
//!   is reported as the known, larger one: a guest told about 4 KiB of a
//!   lost 2 MiB page touches the rest and loops (QEMU's kdump loops).
//! - **Synchronous consumption without a GPA**: [`NoGpaPolicy`]: inject the
//!   abort without a record (the guest's `do_sea` then falls back to
//!   `arm64_notify_die`: SIGBUS for EL0, panic for EL1), or stop the VM.
//! - **Action-optional** (SIGBUS `BUS_MCEERR_AO`): mark poisoned, and
//!   unless `async=off` record on the asynchronous source, notifying it
//!   unless it is polled. Already known poison is ignored.
//! - **Injected**: record what was asked on the source asked; a synchronous
//!   target also gets a data abort. Injected errors are simulations: the
//!   memory is not marked poisoned.
//! - **Storms**: more than `storm_limit` consumptions of the same granule
//!   (or, without a GPA, on the same vCPU) within `storm_window_ms`, or more
//!   than `rate_limit` host-reported errors in that window, stop the VM
//!   with a reason instead of livelocking.
//! - The policy itself never reports [`Severity::Fatal`]: a guest panics on
//!   a fatal block ("GHES: Fatal hardware error") although it could isolate
//!   the page. Only an explicit injection can carry a fatal severity.

use std::collections::VecDeque;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{AsyncMode, NoGpaPolicy, RasConfig};
use crate::cper::{
    ArmProcessorSection, DataEntry, EntryFlags, Guid, MemoryErrorSection, RawSection, Section,
    Severity, StatusBlock, Timestamp,
};
use crate::poison::PoisonRegistry;
use crate::report::{AbortKind, ErrorCause, ErrorReport, GpaGranule, InjectPayload, InjectTarget};

/// The knobs of the policy (a subset of [`RasConfig`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyConfig {
    /// Synchronous consumption without a GPA.
    pub no_gpa: NoGpaPolicy,
    /// Asynchronous source mode.
    pub async_mode: AsyncMode,
    /// Per-granule (per-vCPU without GPA) consumption limit; 0 = none.
    pub storm_limit: u32,
    /// Window of both limits, in milliseconds.
    pub storm_window_ms: u32,
    /// Limit on host-reported errors of any kind in the window; 0 = none.
    pub rate_limit: u32,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self::from(&RasConfig::default())
    }
}

impl From<&RasConfig> for PolicyConfig {
    fn from(c: &RasConfig) -> Self {
        Self {
            no_gpa: c.no_gpa,
            async_mode: c.async_mode,
            storm_limit: c.storm_limit,
            storm_window_ms: c.storm_window_ms,
            rate_limit: c.rate_limit,
        }
    }
}

/// Which error source a record goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceTarget {
    /// The synchronous (SEA) source of this vCPU (with `sea_sources=shared`
    /// the engine maps every vCPU to the one shared source).
    Sync {
        /// vCPU index.
        vcpu: u32,
    },
    /// The asynchronous source.
    Async,
}

impl fmt::Display for SourceTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceTarget::Sync { vcpu } => write!(f, "sync/{vcpu}"),
            SourceTarget::Async => f.write_str("async"),
        }
    }
}

/// The content of a CPER record to write, as plain data (built into a
/// [`StatusBlock`] by [`CperRecord::to_status_block`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordBody {
    /// A Platform Memory Error section (UEFI 2.10 N.2.5) for a granule:
    /// physical address and address mask of the whole granule.
    Memory {
        /// The lost range.
        granule: GpaGranule,
        /// Set the data entry's "threshold exceeded" flag.
        threshold_exceeded: bool,
    },
    /// An ARM Processor Error section (UEFI 2.10 N.2.4.4).
    ArmProcessor(ArmProcessorSection),
    /// Any section.
    Raw {
        /// Section type.
        section_type: Guid,
        /// Section body.
        data: Vec<u8>,
    },
}

/// A CPER record (one Generic Error Status Block with one data entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CperRecord {
    /// Block and entry severity.
    pub severity: Severity,
    /// Data entry timestamp, seconds since the Unix epoch.
    pub unix_time: u64,
    /// The section.
    pub body: RecordBody,
}

impl CperRecord {
    /// The guest-physical granule the record reports, if it is a memory
    /// error.
    pub fn granule(&self) -> Option<GpaGranule> {
        match &self.body {
            RecordBody::Memory { granule, .. } => Some(*granule),
            _ => None,
        }
    }

    /// Short name of the section kind, for events.
    pub fn section_name(&self) -> &'static str {
        match &self.body {
            RecordBody::Memory { .. } => "memory",
            RecordBody::ArmProcessor(_) => "arm-processor",
            RecordBody::Raw { .. } => "raw",
        }
    }

    /// The Generic Error Status Block to write: one data entry, flagged
    /// primary (plus threshold-exceeded when asked), with a precise
    /// timestamp (ACPI 6.5 Table 18.13, UEFI 2.10 N.2.2).
    pub fn to_status_block(&self) -> StatusBlock {
        let mut flags = EntryFlags::PRIMARY;
        let section = match &self.body {
            RecordBody::Memory {
                granule,
                threshold_exceeded,
            } => {
                if *threshold_exceeded {
                    flags |= EntryFlags::THRESHOLD_EXCEEDED;
                }
                Section::Memory(MemoryErrorSection::for_granule(granule))
            }
            RecordBody::ArmProcessor(s) => Section::ArmProcessor(s.clone()),
            RecordBody::Raw { section_type, data } => {
                Section::Raw(RawSection::new(*section_type, data.clone()))
            }
        };
        StatusBlock::new().with_entry(
            DataEntry::new(section, self.severity)
                .with_flags(flags)
                .with_timestamp(Timestamp::from_unix(self.unix_time)),
        )
    }
}

/// Why the VM is stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// A synchronous consumption without a GPA, with `no_gpa=stop`.
    NoGpa {
        /// vCPU index.
        vcpu: u32,
    },
    /// The same granule (or, without GPA, the same vCPU) kept consuming
    /// poison: the guest does not contain it.
    Storm {
        /// vCPU of the last consumption.
        vcpu: u32,
        /// The granule, if known.
        granule: Option<GpaGranule>,
        /// Consumptions in the window, this one included.
        count: u32,
        /// The window in milliseconds.
        window_ms: u32,
    },
    /// Too many host-reported errors in the window.
    RateLimit {
        /// Errors in the window, this one included.
        count: u32,
        /// The window in milliseconds.
        window_ms: u32,
    },
    /// More poisoned granules than the registry may hold.
    PoisonLimit {
        /// The bound.
        limit: usize,
    },
    /// A vCPU consumed poison and the engine could not tell the guest (the
    /// abort could not be injected).
    AbortFailed {
        /// vCPU index.
        vcpu: u32,
    },
}

impl StopReason {
    /// Short machine-readable name.
    pub fn name(&self) -> &'static str {
        match self {
            StopReason::NoGpa { .. } => "no-gpa",
            StopReason::Storm { .. } => "storm",
            StopReason::RateLimit { .. } => "rate-limit",
            StopReason::PoisonLimit { .. } => "poison-limit",
            StopReason::AbortFailed { .. } => "abort-failed",
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::NoGpa { vcpu } => write!(
                f,
                "vCPU {vcpu} consumed poisoned memory at an unknown guest-physical address"
            ),
            StopReason::Storm {
                vcpu,
                granule,
                count,
                window_ms,
            } => match granule {
                Some(g) => write!(
                    f,
                    "Poisoned memory at {:#x} (2^{} bytes) consumed {count} times in {window_ms} ms (last by vCPU {vcpu})",
                    g.base(),
                    g.shift()
                ),
                None => write!(
                    f,
                    "vCPU {vcpu} consumed poisoned memory at an unknown address {count} times in {window_ms} ms"
                ),
            },
            StopReason::RateLimit { count, window_ms } => {
                write!(f, "{count} memory errors in {window_ms} ms")
            }
            StopReason::PoisonLimit { limit } => {
                write!(f, "More than {limit} poisoned memory granules")
            }
            StopReason::AbortFailed { vcpu } => {
                write!(f, "Could not inject the abort into vCPU {vcpu}")
            }
        }
    }
}

/// Why a report leads to nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IgnoreReason {
    /// Action-optional report of memory already known to be poisoned.
    AlreadyPoisoned {
        /// The known granule.
        granule: GpaGranule,
    },
    /// An injection for the asynchronous source with `async=off`.
    AsyncDisabled,
}

impl IgnoreReason {
    /// Short machine-readable name.
    pub fn name(&self) -> &'static str {
        match self {
            IgnoreReason::AlreadyPoisoned { .. } => "already-poisoned",
            IgnoreReason::AsyncDisabled => "async-disabled",
        }
    }
}

/// One step for the engine, applied in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Add the granule to the poison registry.
    MarkPoisoned(GpaGranule),
    /// Write a CPER record into a source's error status block.
    Record {
        /// The source.
        source: SourceTarget,
        /// The record.
        record: CperRecord,
    },
    /// Make the vCPU take a synchronous external abort.
    InjectAbort {
        /// vCPU index.
        vcpu: u32,
        /// [`AbortKind::Data`] or [`AbortKind::Instruction`], never
        /// `Unknown`.
        kind: AbortKind,
        /// Fault address to report, when known (otherwise FnV = 1 or the
        /// hypervisor's own FAR).
        far: Option<u64>,
    },
    /// Signal the asynchronous source (GED interrupt -> PNP0C33 notify).
    NotifyAsync,
    /// Stop the VM.
    StopVm {
        /// Why.
        reason: StopReason,
    },
    /// Nothing to do (reported as an event).
    Ignore {
        /// Why.
        reason: IgnoreReason,
    },
}

/// What the storm tracker counts a report under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StormKey {
    /// Consumptions of a granule (the known poisoned granule containing the
    /// reported one, else the reported one).
    Granule(GpaGranule),
    /// Consumptions without a GPA on a vCPU.
    NoGpa {
        /// vCPU index.
        vcpu: u32,
    },
    /// Counted only towards the rate limit.
    RateOnly,
}

/// A report the engine must feed to [`StormTracker::observe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Monotonic time of the report.
    pub at_ms: u64,
    /// What it counts under.
    pub key: StormKey,
}

/// The engine's result of [`decide`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Steps, in order.
    pub actions: Vec<Action>,
    /// To be recorded in the storm tracker (host-reported errors only).
    pub observe: Option<Observation>,
}

/// Bound on the entries a [`StormTracker`] keeps (oldest dropped first).
pub const STORM_TRACKER_CAPACITY: usize = 65536;

/// Recent host-reported errors, for the storm and rate limits. Updated by
/// the engine with [`StormTracker::observe`]; read by [`decide`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StormTracker {
    recent: VecDeque<Observation>,
}

impl StormTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one observation and forgets those older than the window.
    pub fn observe(&mut self, obs: &Observation, cfg: &PolicyConfig) {
        self.recent.push_back(*obs);
        let window = u64::from(cfg.storm_window_ms);
        while let Some(first) = self.recent.front() {
            if !in_window(first.at_ms, obs.at_ms, window)
                || self.recent.len() > STORM_TRACKER_CAPACITY
            {
                self.recent.pop_front();
            } else {
                break;
            }
        }
    }

    /// Observations in the window ending at `now_ms`, matching `key` if
    /// given.
    pub fn count(&self, key: Option<&StormKey>, now_ms: u64, window_ms: u32) -> u32 {
        let n = self
            .recent
            .iter()
            .filter(|o| in_window(o.at_ms, now_ms, window_ms.into()))
            .filter(|o| key.is_none_or(|k| o.key == *k))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Forgets everything (guest reset).
    pub fn clear(&mut self) {
        self.recent.clear();
    }
}

/// Whether an event at `at` is within `window` ms before `now` (events
/// "from the future", a clock going back, count as in the window).
fn in_window(at: u64, now: u64, window: u64) -> bool {
    now.saturating_sub(at) < window
}

/// The state [`decide`] reads.
#[derive(Clone, Copy, Debug)]
pub struct PolicyState<'a> {
    /// Known poisoned memory.
    pub poison: &'a PoisonRegistry,
    /// Recent errors.
    pub storm: &'a StormTracker,
}

fn abort_kind(kind: AbortKind) -> AbortKind {
    match kind {
        AbortKind::Instruction => AbortKind::Instruction,
        AbortKind::Data | AbortKind::Unknown => AbortKind::Data,
    }
}

/// The storm or rate stop for a host-reported error at `now` counted under
/// `key`, if a limit is exceeded (this report included).
fn storm_stop(
    state: &PolicyState<'_>,
    cfg: &PolicyConfig,
    now: u64,
    key: &StormKey,
    vcpu: Option<u32>,
) -> Option<StopReason> {
    let window_ms = cfg.storm_window_ms;
    if cfg.storm_limit != 0
        && let (Some(vcpu), StormKey::Granule(_) | StormKey::NoGpa { .. }) = (vcpu, key)
    {
        let count = state
            .storm
            .count(Some(key), now, window_ms)
            .saturating_add(1);
        if count > cfg.storm_limit {
            return Some(StopReason::Storm {
                vcpu,
                granule: match key {
                    StormKey::Granule(g) => Some(*g),
                    _ => None,
                },
                count,
                window_ms,
            });
        }
    }
    if cfg.rate_limit != 0 {
        let count = state.storm.count(None, now, window_ms).saturating_add(1);
        if count > cfg.rate_limit {
            return Some(StopReason::RateLimit { count, window_ms });
        }
    }
    None
}

/// Decides what to do about `report`. Pure: the same inputs give the same
/// decision. See the module documentation for the rules.
pub fn decide(report: &ErrorReport, state: &PolicyState<'_>, cfg: &PolicyConfig) -> Decision {
    let now = report.monotonic_ms;
    match &report.cause {
        ErrorCause::SyncConsumption {
            vcpu,
            abort,
            granule,
            gva,
            origin: _,
        } => {
            let vcpu = *vcpu;
            let known = granule.and_then(|g| state.poison.covering(&g));
            let key = match (known, granule) {
                (Some(k), _) => StormKey::Granule(k),
                (None, Some(g)) => StormKey::Granule(*g),
                (None, None) => StormKey::NoGpa { vcpu },
            };
            let observe = Some(Observation { at_ms: now, key });
            let mut actions = Vec::new();
            if let Some(reason) = storm_stop(state, cfg, now, &key, Some(vcpu)) {
                if let (Some(g), None) = (granule, known) {
                    actions.push(Action::MarkPoisoned(*g));
                }
                actions.push(Action::StopVm { reason });
                return Decision { actions, observe };
            }
            let inject = Action::InjectAbort {
                vcpu,
                kind: abort_kind(*abort),
                far: *gva,
            };
            match granule {
                Some(g) => {
                    actions.push(Action::Record {
                        source: SourceTarget::Sync { vcpu },
                        record: CperRecord {
                            severity: Severity::Recoverable,
                            unix_time: report.unix_time,
                            body: RecordBody::Memory {
                                granule: known.unwrap_or(*g),
                                threshold_exceeded: false,
                            },
                        },
                    });
                    if known.is_none() {
                        actions.push(Action::MarkPoisoned(*g));
                    }
                    actions.push(inject);
                }
                None => match cfg.no_gpa {
                    NoGpaPolicy::Inject => actions.push(inject),
                    NoGpaPolicy::Stop => actions.push(Action::StopVm {
                        reason: StopReason::NoGpa { vcpu },
                    }),
                },
            }
            Decision { actions, observe }
        }
        ErrorCause::HostActionOptional { granule } => {
            let observe = Some(Observation {
                at_ms: now,
                key: StormKey::RateOnly,
            });
            let known = state.poison.covering(granule);
            let mut actions = Vec::new();
            if let Some(reason) = storm_stop(state, cfg, now, &StormKey::RateOnly, None) {
                if known.is_none() {
                    actions.push(Action::MarkPoisoned(*granule));
                }
                actions.push(Action::StopVm { reason });
                return Decision { actions, observe };
            }
            if let Some(existing) = known {
                actions.push(Action::Ignore {
                    reason: IgnoreReason::AlreadyPoisoned { granule: existing },
                });
                return Decision { actions, observe };
            }
            if cfg.async_mode != AsyncMode::Off {
                actions.push(Action::Record {
                    source: SourceTarget::Async,
                    record: CperRecord {
                        severity: Severity::Recoverable,
                        unix_time: report.unix_time,
                        body: RecordBody::Memory {
                            granule: *granule,
                            threshold_exceeded: false,
                        },
                    },
                });
            }
            actions.push(Action::MarkPoisoned(*granule));
            if cfg.async_mode == AsyncMode::Gpio {
                actions.push(Action::NotifyAsync);
            }
            Decision { actions, observe }
        }
        ErrorCause::Injected { target, payload } => {
            let record = injected_record(payload, report.unix_time);
            let mut actions = Vec::new();
            match target {
                InjectTarget::Sync { vcpu } => {
                    actions.push(Action::Record {
                        source: SourceTarget::Sync { vcpu: *vcpu },
                        record,
                    });
                    actions.push(Action::InjectAbort {
                        vcpu: *vcpu,
                        kind: AbortKind::Data,
                        far: None,
                    });
                }
                InjectTarget::Async => match cfg.async_mode {
                    AsyncMode::Off => actions.push(Action::Ignore {
                        reason: IgnoreReason::AsyncDisabled,
                    }),
                    AsyncMode::Polled => actions.push(Action::Record {
                        source: SourceTarget::Async,
                        record,
                    }),
                    AsyncMode::Gpio => {
                        actions.push(Action::Record {
                            source: SourceTarget::Async,
                            record,
                        });
                        actions.push(Action::NotifyAsync);
                    }
                },
            }
            Decision {
                actions,
                observe: None,
            }
        }
    }
}

fn injected_record(payload: &InjectPayload, unix_time: u64) -> CperRecord {
    match payload {
        InjectPayload::Memory {
            granule,
            severity,
            threshold_exceeded,
        } => CperRecord {
            severity: *severity,
            unix_time,
            body: RecordBody::Memory {
                granule: *granule,
                threshold_exceeded: *threshold_exceeded,
            },
        },
        InjectPayload::ArmProcessor { section, severity } => CperRecord {
            severity: *severity,
            unix_time,
            body: RecordBody::ArmProcessor(section.clone()),
        },
        InjectPayload::Raw {
            section_type,
            severity,
            data,
        } => CperRecord {
            severity: *severity,
            unix_time,
            body: RecordBody::Raw {
                section_type: *section_type,
                data: data.clone(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(body: RecordBody, severity: Severity) -> CperRecord {
        CperRecord {
            severity,
            unix_time: 1_763_000_000,
            body,
        }
    }

    #[test]
    fn memory_record_is_the_standard_memory_error_block() {
        let g = GpaGranule::containing(0x4020_0000, 21).unwrap();
        let r = record(
            RecordBody::Memory {
                granule: g,
                threshold_exceeded: false,
            },
            Severity::Recoverable,
        );
        let b = r.to_status_block();
        assert_eq!(
            b,
            StatusBlock::memory_error(&g, Severity::Recoverable, 1_763_000_000)
        );
        assert_eq!(StatusBlock::decode(&b.encode()), Ok(b));
        assert_eq!(r.granule(), Some(g));
        assert_eq!(r.section_name(), "memory");
    }

    #[test]
    fn every_body_encodes_and_decodes() {
        let g = GpaGranule::containing(0x1000, 12).unwrap();
        let bodies = [
            RecordBody::Memory {
                granule: g,
                threshold_exceeded: true,
            },
            RecordBody::ArmProcessor(ArmProcessorSection::default()),
            RecordBody::Raw {
                section_type: Guid::from_fields(1, 2, 3, [4; 8]),
                data: vec![9; 24],
            },
        ];
        for body in bodies {
            for sev in [Severity::Corrected, Severity::Fatal] {
                let r = record(body.clone(), sev);
                let b = r.to_status_block();
                assert_eq!(b.error_severity(), Some(sev));
                let e = &b.entries[0];
                assert!(e.flags.contains(EntryFlags::PRIMARY));
                assert_eq!(
                    e.flags.contains(EntryFlags::THRESHOLD_EXCEEDED),
                    matches!(
                        body,
                        RecordBody::Memory {
                            threshold_exceeded: true,
                            ..
                        }
                    )
                );
                assert_eq!(e.timestamp, Some(Timestamp::from_unix(1_763_000_000)));
                assert_eq!(StatusBlock::decode(&b.encode()), Ok(b), "{body:?}");
            }
        }
    }
}
