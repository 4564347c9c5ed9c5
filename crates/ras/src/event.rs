// SPDX-License-Identifier: Apache-2.0
//! What the engine reports: [`RasEvent`]s and the [`RasCounters`] they add
//! up to.
//!
//! An event maps onto Cloud Hypervisor's event monitor
//! (`event!(source, event, k, v, ...)` writes
//! `{"timestamp", "source", "event", "properties"}` JSON): source
//! [`EVENT_SOURCE`], event [`RasEvent::name`], properties
//! [`RasEvent::properties`]. The same pairs serve for log lines.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cper::Severity;
use crate::policy::{IgnoreReason, SourceTarget, StopReason};
use crate::report::{AbortKind, GpaGranule};

/// The event-monitor source of every RAS event.
pub const EVENT_SOURCE: &str = "ras";

/// Something the engine saw or did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RasEvent {
    /// `KVM_EXIT_ARM_SEA` on a vCPU.
    SeaExit {
        /// vCPU index.
        vcpu: u32,
        /// Poisoned granule, when the GPA was valid.
        granule: Option<GpaGranule>,
        /// Faulting guest virtual address, when valid.
        gva: Option<u64>,
    },
    /// SIGBUS `BUS_MCEERR_AR` on a vCPU thread.
    SigbusAr {
        /// vCPU index.
        vcpu: u32,
        /// Poisoned granule (`si_addr` translated, `si_addr_lsb`), if the
        /// address is guest memory.
        granule: Option<GpaGranule>,
    },
    /// SIGBUS `BUS_MCEERR_AO`.
    SigbusAo {
        /// Lost granule.
        granule: GpaGranule,
    },
    /// An operator or test asked for an error.
    InjectRequested {
        /// Target source.
        target: SourceTarget,
        /// Section kind (`memory`, `arm-processor`, `raw`).
        section: &'static str,
    },
    /// A record was written into a source's error status block.
    RecordWritten {
        /// The source.
        source: SourceTarget,
        /// Memory granule reported, if a memory error.
        granule: Option<GpaGranule>,
        /// Severity reported.
        severity: Severity,
    },
    /// The source was busy: the record waits for the guest's ack.
    RecordQueued {
        /// The source.
        source: SourceTarget,
        /// Position in the queue (1 = next).
        depth: usize,
    },
    /// The source was busy and its queue full: the record was lost.
    RecordDropped {
        /// The source.
        source: SourceTarget,
        /// Memory granule of the lost record, if any.
        granule: Option<GpaGranule>,
    },
    /// A record could not be written (not queued either).
    RecordFailed {
        /// The source.
        source: SourceTarget,
        /// Why.
        error: String,
    },
    /// A queued record was written after the guest acknowledged the
    /// previous one.
    QueuedRecordWritten {
        /// The source.
        source: SourceTarget,
    },
    /// An abort was injected into a vCPU.
    AbortInjected {
        /// vCPU index.
        vcpu: u32,
        /// Data or instruction abort.
        kind: AbortKind,
        /// Fault address requested.
        far: Option<u64>,
    },
    /// Injecting the abort failed.
    AbortFailed {
        /// vCPU index.
        vcpu: u32,
        /// Why.
        error: String,
    },
    /// The asynchronous source was signalled.
    AsyncNotified,
    /// Signalling the asynchronous source failed.
    NotifyFailed {
        /// Why.
        error: String,
    },
    /// A granule was added to the poison registry.
    PagePoisoned {
        /// The granule.
        granule: GpaGranule,
        /// Smaller known granules it replaced.
        absorbed: usize,
    },
    /// The poison registry is full: this granule is not tracked.
    PoisonListFull {
        /// The untracked granule.
        granule: GpaGranule,
        /// The bound.
        limit: usize,
    },
    /// A poisoned granule was handed back for repair (guest reset).
    PoisonRepaired {
        /// The granule.
        granule: GpaGranule,
    },
    /// The guest changed an Error Status Address register; it was
    /// restored.
    RegionTampered {
        /// Times seen so far, all sources.
        total: u64,
    },
    /// The report needed no action.
    Ignored {
        /// Why.
        reason: IgnoreReason,
    },
    /// The engine asked the VMM to stop the VM.
    VmStopped {
        /// Why.
        reason: StopReason,
    },
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

fn push_granule(p: &mut Vec<(&'static str, String)>, g: Option<&GpaGranule>) {
    if let Some(g) = g {
        p.push(("gpa", hex(g.base())));
        p.push(("shift", g.shift().to_string()));
    }
}

fn abort_name(k: AbortKind) -> &'static str {
    match k {
        AbortKind::Data => "data",
        AbortKind::Instruction => "instruction",
        AbortKind::Unknown => "unknown",
    }
}

impl RasEvent {
    /// The event name (kebab-case, stable: tests and tools match on it).
    pub fn name(&self) -> &'static str {
        match self {
            RasEvent::SeaExit { .. } => "sea-exit",
            RasEvent::SigbusAr { .. } => "sigbus-ar",
            RasEvent::SigbusAo { .. } => "sigbus-ao",
            RasEvent::InjectRequested { .. } => "inject-requested",
            RasEvent::RecordWritten { .. } => "record-written",
            RasEvent::RecordQueued { .. } => "record-queued",
            RasEvent::RecordDropped { .. } => "record-dropped",
            RasEvent::RecordFailed { .. } => "record-failed",
            RasEvent::QueuedRecordWritten { .. } => "queued-record-written",
            RasEvent::AbortInjected { .. } => "abort-injected",
            RasEvent::AbortFailed { .. } => "abort-failed",
            RasEvent::AsyncNotified => "async-notified",
            RasEvent::NotifyFailed { .. } => "notify-failed",
            RasEvent::PagePoisoned { .. } => "page-poisoned",
            RasEvent::PoisonListFull { .. } => "poison-list-full",
            RasEvent::PoisonRepaired { .. } => "poison-repaired",
            RasEvent::RegionTampered { .. } => "region-tampered",
            RasEvent::Ignored { .. } => "ignored",
            RasEvent::VmStopped { .. } => "vm-stopped",
        }
    }

    /// Key/value properties: addresses in hex, granules as `gpa` + `shift`.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        match self {
            RasEvent::SeaExit { vcpu, granule, gva } => {
                p.push(("vcpu", vcpu.to_string()));
                push_granule(&mut p, granule.as_ref());
                if let Some(gva) = gva {
                    p.push(("gva", hex(*gva)));
                }
            }
            RasEvent::SigbusAr { vcpu, granule } => {
                p.push(("vcpu", vcpu.to_string()));
                push_granule(&mut p, granule.as_ref());
            }
            RasEvent::SigbusAo { granule } => push_granule(&mut p, Some(granule)),
            RasEvent::InjectRequested { target, section } => {
                p.push(("source", target.to_string()));
                p.push(("section", (*section).to_string()));
            }
            RasEvent::RecordWritten {
                source,
                granule,
                severity,
            } => {
                p.push(("source", source.to_string()));
                push_granule(&mut p, granule.as_ref());
                p.push(("severity", severity.name().to_string()));
            }
            RasEvent::RecordQueued { source, depth } => {
                p.push(("source", source.to_string()));
                p.push(("depth", depth.to_string()));
            }
            RasEvent::RecordDropped { source, granule } => {
                p.push(("source", source.to_string()));
                push_granule(&mut p, granule.as_ref());
            }
            RasEvent::RecordFailed { source, error } => {
                p.push(("source", source.to_string()));
                p.push(("error", error.clone()));
            }
            RasEvent::QueuedRecordWritten { source } => p.push(("source", source.to_string())),
            RasEvent::AbortInjected { vcpu, kind, far } => {
                p.push(("vcpu", vcpu.to_string()));
                p.push(("kind", abort_name(*kind).to_string()));
                if let Some(far) = far {
                    p.push(("far", hex(*far)));
                }
            }
            RasEvent::AbortFailed { vcpu, error } => {
                p.push(("vcpu", vcpu.to_string()));
                p.push(("error", error.clone()));
            }
            RasEvent::AsyncNotified => {}
            RasEvent::NotifyFailed { error } => p.push(("error", error.clone())),
            RasEvent::PagePoisoned { granule, absorbed } => {
                push_granule(&mut p, Some(granule));
                p.push(("absorbed", absorbed.to_string()));
            }
            RasEvent::PoisonListFull { granule, limit } => {
                push_granule(&mut p, Some(granule));
                p.push(("limit", limit.to_string()));
            }
            RasEvent::PoisonRepaired { granule } => push_granule(&mut p, Some(granule)),
            RasEvent::RegionTampered { total } => p.push(("total", total.to_string())),
            RasEvent::Ignored { reason } => {
                p.push(("reason", reason.name().to_string()));
                if let IgnoreReason::AlreadyPoisoned { granule } = reason {
                    push_granule(&mut p, Some(granule));
                }
            }
            RasEvent::VmStopped { reason } => {
                p.push(("reason", reason.name().to_string()));
                p.push(("detail", reason.to_string()));
            }
        }
        p
    }
}

impl fmt::Display for RasEvent {
    /// `name key=value key=value`, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        for (k, v) in self.properties() {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

/// Running totals, for the API and for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RasCounters {
    /// `KVM_EXIT_ARM_SEA` exits.
    pub sea_exits: u64,
    /// SIGBUS `BUS_MCEERR_AR`.
    pub sigbus_ar: u64,
    /// SIGBUS `BUS_MCEERR_AO`.
    pub sigbus_ao: u64,
    /// Injection requests.
    pub injected: u64,
    /// Records written directly.
    pub records_written: u64,
    /// Records queued behind an unacknowledged one.
    pub records_queued: u64,
    /// Queued records written later.
    pub queued_records_written: u64,
    /// Records lost (queue full).
    pub records_dropped: u64,
    /// Records that could not be written at all.
    pub records_failed: u64,
    /// Aborts injected.
    pub aborts_injected: u64,
    /// Abort injections that failed.
    pub abort_failures: u64,
    /// Asynchronous notifications.
    pub async_notifications: u64,
    /// Asynchronous notifications that failed.
    pub notify_failures: u64,
    /// Granules added to the poison registry.
    pub pages_poisoned: u64,
    /// Granules not tracked because the registry was full.
    pub poison_list_full: u64,
    /// Granules handed back for repair.
    pub poison_repaired: u64,
    /// ESA register tampering detected.
    pub region_tampered: u64,
    /// Reports that needed nothing.
    pub ignored: u64,
    /// VM stops requested.
    pub vm_stops: u64,
}

impl RasCounters {
    /// Every counter with its name (the serde field name), for a VMM's
    /// counters API.
    pub fn named(&self) -> [(&'static str, u64); 19] {
        [
            ("sea_exits", self.sea_exits),
            ("sigbus_ar", self.sigbus_ar),
            ("sigbus_ao", self.sigbus_ao),
            ("injected", self.injected),
            ("records_written", self.records_written),
            ("records_queued", self.records_queued),
            ("queued_records_written", self.queued_records_written),
            ("records_dropped", self.records_dropped),
            ("records_failed", self.records_failed),
            ("aborts_injected", self.aborts_injected),
            ("abort_failures", self.abort_failures),
            ("async_notifications", self.async_notifications),
            ("notify_failures", self.notify_failures),
            ("pages_poisoned", self.pages_poisoned),
            ("poison_list_full", self.poison_list_full),
            ("poison_repaired", self.poison_repaired),
            ("region_tampered", self.region_tampered),
            ("ignored", self.ignored),
            ("vm_stops", self.vm_stops),
        ]
    }

    /// Counts one event.
    pub fn count(&mut self, event: &RasEvent) {
        let c = match event {
            RasEvent::SeaExit { .. } => &mut self.sea_exits,
            RasEvent::SigbusAr { .. } => &mut self.sigbus_ar,
            RasEvent::SigbusAo { .. } => &mut self.sigbus_ao,
            RasEvent::InjectRequested { .. } => &mut self.injected,
            RasEvent::RecordWritten { .. } => &mut self.records_written,
            RasEvent::RecordQueued { .. } => &mut self.records_queued,
            RasEvent::RecordDropped { .. } => &mut self.records_dropped,
            RasEvent::RecordFailed { .. } => &mut self.records_failed,
            RasEvent::QueuedRecordWritten { .. } => &mut self.queued_records_written,
            RasEvent::AbortInjected { .. } => &mut self.aborts_injected,
            RasEvent::AbortFailed { .. } => &mut self.abort_failures,
            RasEvent::AsyncNotified => &mut self.async_notifications,
            RasEvent::NotifyFailed { .. } => &mut self.notify_failures,
            RasEvent::PagePoisoned { .. } => &mut self.pages_poisoned,
            RasEvent::PoisonListFull { .. } => &mut self.poison_list_full,
            RasEvent::PoisonRepaired { .. } => &mut self.poison_repaired,
            RasEvent::RegionTampered { .. } => &mut self.region_tampered,
            RasEvent::Ignored { .. } => &mut self.ignored,
            RasEvent::VmStopped { .. } => &mut self.vm_stops,
        };
        *c = c.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_events() -> Vec<RasEvent> {
        let g = GpaGranule::containing(0x4020_0000, 21).unwrap();
        let s = SourceTarget::Sync { vcpu: 2 };
        vec![
            RasEvent::SeaExit {
                vcpu: 1,
                granule: Some(g),
                gva: Some(0x1000),
            },
            RasEvent::SigbusAr {
                vcpu: 1,
                granule: Some(g),
            },
            RasEvent::SigbusAo { granule: g },
            RasEvent::InjectRequested {
                target: SourceTarget::Async,
                section: "memory",
            },
            RasEvent::RecordWritten {
                source: s,
                granule: Some(g),
                severity: Severity::Recoverable,
            },
            RasEvent::RecordQueued {
                source: s,
                depth: 1,
            },
            RasEvent::RecordDropped {
                source: s,
                granule: None,
            },
            RasEvent::RecordFailed {
                source: s,
                error: "E".into(),
            },
            RasEvent::QueuedRecordWritten { source: s },
            RasEvent::AbortInjected {
                vcpu: 1,
                kind: AbortKind::Data,
                far: None,
            },
            RasEvent::AbortFailed {
                vcpu: 1,
                error: "E".into(),
            },
            RasEvent::AsyncNotified,
            RasEvent::NotifyFailed { error: "E".into() },
            RasEvent::PagePoisoned {
                granule: g,
                absorbed: 0,
            },
            RasEvent::PoisonListFull {
                granule: g,
                limit: 1,
            },
            RasEvent::PoisonRepaired { granule: g },
            RasEvent::RegionTampered { total: 1 },
            RasEvent::Ignored {
                reason: IgnoreReason::AsyncDisabled,
            },
            RasEvent::VmStopped {
                reason: StopReason::NoGpa { vcpu: 1 },
            },
        ]
    }

    #[test]
    fn names_unique_and_each_event_counted_once() {
        let events = all_events();
        let mut names: Vec<_> = events.iter().map(RasEvent::name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), events.len());
        let mut seen = serde_json::Map::new();
        for e in &events {
            let mut c = RasCounters::default();
            c.count(e);
            let v = serde_json::to_value(c).unwrap();
            let nonzero: Vec<_> = v
                .as_object()
                .unwrap()
                .iter()
                .filter(|(_, v)| v.as_u64() != Some(0))
                .collect();
            assert_eq!(nonzero.len(), 1, "{e:?}");
            assert!(
                seen.insert(nonzero[0].0.clone(), serde_json::Value::Null)
                    .is_none()
            );
        }
    }

    #[test]
    fn properties_format() {
        let g = GpaGranule::containing(0x4020_0000, 21).unwrap();
        let e = RasEvent::RecordWritten {
            source: SourceTarget::Sync { vcpu: 2 },
            granule: Some(g),
            severity: Severity::Recoverable,
        };
        assert_eq!(
            e.properties(),
            vec![
                ("source", "sync/2".to_string()),
                ("gpa", "0x40200000".to_string()),
                ("shift", "21".to_string()),
                ("severity", "recoverable".to_string()),
            ]
        );
        assert_eq!(
            e.to_string(),
            "record-written source=sync/2 gpa=0x40200000 shift=21 severity=recoverable"
        );
    }

    #[test]
    fn named_counters_match_the_serialized_fields() {
        let mut c = RasCounters::default();
        for (i, e) in all_events().iter().enumerate() {
            for _ in 0..=i {
                c.count(e);
            }
        }
        let json = serde_json::to_value(c).unwrap();
        let fields = json.as_object().unwrap();
        let named = c.named();
        assert_eq!(named.len(), fields.len());
        for (name, value) in named {
            assert_eq!(fields[name].as_u64(), Some(value), "{name}");
        }
    }
}
