// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! What the engine and the VMM report: [`RasEvent`]s, and the [`Counters`]
//! they add up to.
//!
//! An event maps onto Cloud Hypervisor's event monitor
//! (`event!(source, event, k, v, ...)` writes
//! `{"timestamp", "source", "event", "properties"}` JSON): source
//! [`EVENT_SOURCE`], event [`RasEvent::name`], properties
//! [`RasEvent::properties`]. The same pairs serve for log lines.
//!
//! Events are counted where they are published (the VMM, after the
//! engine's lock is released): [`Counters::count`] takes `&self`, so the
//! counters can be read by the API without taking the engine's lock.
//!
//! Under an error storm the counters count every event, but the event
//! monitor and the log get at most [`PublishLimiter`]'s share: the events
//! of a bounded number of errors per window, then one line saying how many
//! were left out.
//!
//! A vCPU thread does not publish: writing the event monitor and the log
//! costs system calls on the thread the guest waits for. It counts the
//! events, leaves the admitted ones in an [`EventOutbox`] and wakes the VMM
//! thread once, which publishes them in the order they were left.
//! [`Publisher`] is that sequence, for every thread.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::{fmt, mem};

use serde::{Deserialize, Serialize};
use vm_memory::Address;

use crate::cper::Severity;
use crate::error_source::{SourceId, SourceTarget};
use crate::granule::GpaGranule;
use crate::policy::{IgnoreReason, StopReason};
use crate::report::{FoundBy, Origin};

/// The event-monitor source of every RAS event.
pub const EVENT_SOURCE: &str = "ras";

/// Something the engine saw or did, or the VMM did on its behalf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RasEvent {
    /// A vCPU consumed poisoned memory (`SIGBUS` `BUS_MCEERR_AR` or
    /// `KVM_EXIT_ARM_SEA`).
    Consumed {
        /// vCPU index.
        vcpu: u32,
        /// Where the VMM learnt it.
        origin: Origin,
        /// The lost granule, when the address is known.
        granule: Option<GpaGranule>,
        /// Faulting guest virtual address, when valid.
        gva: Option<u64>,
    },
    /// Memory lost before anyone consumed it: announced by the host
    /// (`SIGBUS` `BUS_MCEERR_AO`, event `sigbus-ao`) or found by the VMM's
    /// own copy of guest memory (event `poison-found`).
    Announced {
        /// The lost granule.
        granule: GpaGranule,
        /// Who found it.
        found_by: FoundBy,
    },
    /// An operator or a test asked for an error.
    InjectRequested {
        /// Target source.
        target: SourceTarget,
        /// Section type name ([`crate::cper::Section::name`]).
        section: &'static str,
    },
    /// A record was written into a source's error status block.
    RecordWritten {
        /// The HEST source id.
        source: SourceId,
        /// What the record was for.
        target: SourceTarget,
        /// Memory reported, if a memory error.
        granule: Option<GpaGranule>,
        /// Severity reported.
        severity: Severity,
    },
    /// The source was busy: the record waits for the guest's ack.
    RecordQueued {
        /// The HEST source id.
        source: SourceId,
        /// What the record was for.
        target: SourceTarget,
        /// Position in the queue (1 = next).
        depth: usize,
    },
    /// The source was busy and its queue full: the record was lost.
    RecordDropped {
        /// The HEST source id.
        source: SourceId,
        /// What the record was for.
        target: SourceTarget,
        /// Memory of the lost record, if a memory error.
        granule: Option<GpaGranule>,
    },
    /// A record could not be written (nor queued).
    RecordFailed {
        /// What the record was for.
        target: SourceTarget,
        /// Why.
        error: String,
    },
    /// A queued record was written after the guest acknowledged the
    /// previous one.
    QueuedRecordWritten {
        /// The HEST source id.
        source: SourceId,
    },
    /// A vCPU took the abort.
    AbortInjected {
        /// vCPU index.
        vcpu: u32,
        /// How, as the hypervisor edge describes it (exception class,
        /// fault address, mechanism).
        abort: String,
    },
    /// Making the vCPU take the abort failed (the VM is stopped).
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
    /// The host page behind a granule the host had not claimed
    /// (`KVM_EXIT_ARM_SEA`) was retired on the host (`MADV_HWPOISON`).
    HostPageRetired {
        /// The granule.
        granule: GpaGranule,
    },
    /// The host page behind a granule the host had not claimed could not be
    /// retired: the VMM keeps it (never repaired, never handed back).
    HostPageKept {
        /// The granule.
        granule: GpaGranule,
        /// Why it was not retired.
        error: String,
    },
    /// The guest changed Error Status Address registers; they were
    /// restored.
    RegionTampered {
        /// Registers restored this time.
        count: u64,
    },
    /// The report needed no action.
    Ignored {
        /// Why.
        reason: IgnoreReason,
    },
    /// The VM is being stopped.
    VmStopped {
        /// Why.
        reason: StopReason,
    },
}

/// Every kind of event, one counter each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// [`RasEvent::Consumed`] from `KVM_EXIT_ARM_SEA`.
    SeaExit,
    /// [`RasEvent::Consumed`] from `SIGBUS` `BUS_MCEERR_AR`.
    SigbusAr,
    /// [`RasEvent::Announced`] by the host's `SIGBUS` `BUS_MCEERR_AO`.
    SigbusAo,
    /// [`RasEvent::Announced`] by the VMM's own copy of guest memory.
    PoisonFound,
    /// [`RasEvent::InjectRequested`].
    InjectRequested,
    /// [`RasEvent::RecordWritten`].
    RecordWritten,
    /// [`RasEvent::RecordQueued`].
    RecordQueued,
    /// [`RasEvent::RecordDropped`].
    RecordDropped,
    /// [`RasEvent::RecordFailed`].
    RecordFailed,
    /// [`RasEvent::QueuedRecordWritten`].
    QueuedRecordWritten,
    /// [`RasEvent::AbortInjected`].
    AbortInjected,
    /// [`RasEvent::AbortFailed`].
    AbortFailed,
    /// [`RasEvent::AsyncNotified`].
    AsyncNotified,
    /// [`RasEvent::NotifyFailed`].
    NotifyFailed,
    /// [`RasEvent::PagePoisoned`].
    PagePoisoned,
    /// [`RasEvent::PoisonListFull`].
    PoisonListFull,
    /// [`RasEvent::PoisonRepaired`].
    PoisonRepaired,
    /// [`RasEvent::HostPageRetired`].
    HostPageRetired,
    /// [`RasEvent::HostPageKept`].
    HostPageKept,
    /// [`RasEvent::RegionTampered`].
    RegionTampered,
    /// [`RasEvent::Ignored`].
    Ignored,
    /// [`RasEvent::VmStopped`].
    VmStopped,
}

impl EventKind {
    /// Every kind, in counter order.
    pub const ALL: [EventKind; 22] = [
        EventKind::SeaExit,
        EventKind::SigbusAr,
        EventKind::SigbusAo,
        EventKind::PoisonFound,
        EventKind::InjectRequested,
        EventKind::RecordWritten,
        EventKind::RecordQueued,
        EventKind::RecordDropped,
        EventKind::RecordFailed,
        EventKind::QueuedRecordWritten,
        EventKind::AbortInjected,
        EventKind::AbortFailed,
        EventKind::AsyncNotified,
        EventKind::NotifyFailed,
        EventKind::PagePoisoned,
        EventKind::PoisonListFull,
        EventKind::PoisonRepaired,
        EventKind::HostPageRetired,
        EventKind::HostPageKept,
        EventKind::RegionTampered,
        EventKind::Ignored,
        EventKind::VmStopped,
    ];

    /// The event name (kebab-case, stable: tests and tools match on it).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::SeaExit => "sea-exit",
            EventKind::SigbusAr => "sigbus-ar",
            EventKind::SigbusAo => "sigbus-ao",
            EventKind::PoisonFound => "poison-found",
            EventKind::InjectRequested => "inject-requested",
            EventKind::RecordWritten => "record-written",
            EventKind::RecordQueued => "record-queued",
            EventKind::RecordDropped => "record-dropped",
            EventKind::RecordFailed => "record-failed",
            EventKind::QueuedRecordWritten => "queued-record-written",
            EventKind::AbortInjected => "abort-injected",
            EventKind::AbortFailed => "abort-failed",
            EventKind::AsyncNotified => "async-notified",
            EventKind::NotifyFailed => "notify-failed",
            EventKind::PagePoisoned => "page-poisoned",
            EventKind::PoisonListFull => "poison-list-full",
            EventKind::PoisonRepaired => "poison-repaired",
            EventKind::HostPageRetired => "host-page-retired",
            EventKind::HostPageKept => "host-page-kept",
            EventKind::RegionTampered => "region-tampered",
            EventKind::Ignored => "ignored",
            EventKind::VmStopped => "vm-stopped",
        }
    }

    /// The counter name (snake_case, as the `vm.counters` API shows it):
    /// the event name with `_` for `-`.
    pub fn counter_name(self) -> &'static str {
        match self {
            EventKind::SeaExit => "sea_exit",
            EventKind::SigbusAr => "sigbus_ar",
            EventKind::SigbusAo => "sigbus_ao",
            EventKind::PoisonFound => "poison_found",
            EventKind::InjectRequested => "inject_requested",
            EventKind::RecordWritten => "record_written",
            EventKind::RecordQueued => "record_queued",
            EventKind::RecordDropped => "record_dropped",
            EventKind::RecordFailed => "record_failed",
            EventKind::QueuedRecordWritten => "queued_record_written",
            EventKind::AbortInjected => "abort_injected",
            EventKind::AbortFailed => "abort_failed",
            EventKind::AsyncNotified => "async_notified",
            EventKind::NotifyFailed => "notify_failed",
            EventKind::PagePoisoned => "page_poisoned",
            EventKind::PoisonListFull => "poison_list_full",
            EventKind::PoisonRepaired => "poison_repaired",
            EventKind::HostPageRetired => "host_page_retired",
            EventKind::HostPageKept => "host_page_kept",
            EventKind::RegionTampered => "region_tampered",
            EventKind::Ignored => "ignored",
            EventKind::VmStopped => "vm_stopped",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

fn push_granule(p: &mut Vec<(&'static str, String)>, g: Option<&GpaGranule>) {
    if let Some(g) = g {
        p.push(("gpa", hex(g.base().raw_value())));
        p.push(("shift", g.shift().to_string()));
    }
}

impl RasEvent {
    /// The kind of this event.
    pub fn kind(&self) -> EventKind {
        match self {
            RasEvent::Consumed {
                origin: Origin::SeaExit,
                ..
            } => EventKind::SeaExit,
            RasEvent::Consumed {
                origin: Origin::Sigbus,
                ..
            } => EventKind::SigbusAr,
            RasEvent::Announced { found_by, .. } => match found_by {
                FoundBy::HostSignal => EventKind::SigbusAo,
                FoundBy::VmmCopy => EventKind::PoisonFound,
            },
            RasEvent::InjectRequested { .. } => EventKind::InjectRequested,
            RasEvent::RecordWritten { .. } => EventKind::RecordWritten,
            RasEvent::RecordQueued { .. } => EventKind::RecordQueued,
            RasEvent::RecordDropped { .. } => EventKind::RecordDropped,
            RasEvent::RecordFailed { .. } => EventKind::RecordFailed,
            RasEvent::QueuedRecordWritten { .. } => EventKind::QueuedRecordWritten,
            RasEvent::AbortInjected { .. } => EventKind::AbortInjected,
            RasEvent::AbortFailed { .. } => EventKind::AbortFailed,
            RasEvent::AsyncNotified => EventKind::AsyncNotified,
            RasEvent::NotifyFailed { .. } => EventKind::NotifyFailed,
            RasEvent::PagePoisoned { .. } => EventKind::PagePoisoned,
            RasEvent::PoisonListFull { .. } => EventKind::PoisonListFull,
            RasEvent::PoisonRepaired { .. } => EventKind::PoisonRepaired,
            RasEvent::HostPageRetired { .. } => EventKind::HostPageRetired,
            RasEvent::HostPageKept { .. } => EventKind::HostPageKept,
            RasEvent::RegionTampered { .. } => EventKind::RegionTampered,
            RasEvent::Ignored { .. } => EventKind::Ignored,
            RasEvent::VmStopped { .. } => EventKind::VmStopped,
        }
    }

    /// The event name ([`EventKind::name`]).
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Key/value properties: addresses in hex, granules as `gpa` + `shift`.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        match self {
            RasEvent::Consumed {
                vcpu, granule, gva, ..
            } => {
                p.push(("vcpu", vcpu.to_string()));
                push_granule(&mut p, granule.as_ref());
                if let Some(gva) = gva {
                    p.push(("gva", hex(*gva)));
                }
            }
            RasEvent::Announced { granule, .. } => push_granule(&mut p, Some(granule)),
            RasEvent::InjectRequested { target, section } => {
                p.push(("target", target.to_string()));
                p.push(("section", (*section).to_string()));
            }
            RasEvent::RecordWritten {
                source,
                target,
                granule,
                severity,
            } => {
                p.push(("source", source.to_string()));
                p.push(("target", target.to_string()));
                push_granule(&mut p, granule.as_ref());
                p.push(("severity", severity.name().to_string()));
            }
            RasEvent::RecordQueued {
                source,
                target,
                depth,
            } => {
                p.push(("source", source.to_string()));
                p.push(("target", target.to_string()));
                p.push(("depth", depth.to_string()));
            }
            RasEvent::RecordDropped {
                source,
                target,
                granule,
            } => {
                p.push(("source", source.to_string()));
                p.push(("target", target.to_string()));
                push_granule(&mut p, granule.as_ref());
            }
            RasEvent::RecordFailed { target, error } => {
                p.push(("target", target.to_string()));
                p.push(("error", error.clone()));
            }
            RasEvent::QueuedRecordWritten { source } => p.push(("source", source.to_string())),
            RasEvent::AbortInjected { vcpu, abort } => {
                p.push(("vcpu", vcpu.to_string()));
                p.push(("abort", abort.clone()));
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
            RasEvent::PoisonRepaired { granule } | RasEvent::HostPageRetired { granule } => {
                push_granule(&mut p, Some(granule));
            }
            RasEvent::HostPageKept { granule, error } => {
                push_granule(&mut p, Some(granule));
                p.push(("error", error.clone()));
            }
            RasEvent::RegionTampered { count } => p.push(("count", count.to_string())),
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

/// How many errors' events reach the event monitor and the log per
/// window, by default.
pub const PUBLISH_LIMIT: u32 = 32;

/// The window of [`PUBLISH_LIMIT`], in milliseconds.
pub const PUBLISH_WINDOW_MS: u64 = 1000;

/// Whether the events of one error are published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Publish them, after saying that `suppressed` events were left out
    /// since the last published ones (when non-zero).
    Publish {
        /// Events left out before these.
        suppressed: u64,
    },
    /// Count them only.
    Suppress,
}

/// Bounds what the event monitor and the log receive under an error storm
/// (the counters always count everything): at most `limit` errors' events
/// per window of `window_ms` milliseconds; the events of the others are
/// left out and their number reported with the next published ones.
/// Pure: the caller gives the time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishLimiter {
    limit: u32,
    window_ms: u64,
    window_start_ms: u64,
    published: u32,
    suppressed: u64,
}

impl Default for PublishLimiter {
    fn default() -> Self {
        Self::new(PUBLISH_LIMIT, PUBLISH_WINDOW_MS)
    }
}

impl PublishLimiter {
    /// At most `limit` (at least 1) errors per `window_ms` (at least 1).
    pub fn new(limit: u32, window_ms: u64) -> Self {
        Self {
            limit: limit.max(1),
            window_ms: window_ms.max(1),
            window_start_ms: 0,
            published: 0,
            suppressed: 0,
        }
    }

    /// The decision for the `events` events of one error at `now_ms`
    /// (monotonic).
    pub fn admit(&mut self, now_ms: u64, events: usize) -> Admission {
        if now_ms.saturating_sub(self.window_start_ms) >= self.window_ms {
            self.window_start_ms = now_ms;
            self.published = 0;
        }
        if self.published < self.limit {
            self.published += 1;
            Admission::Publish {
                suppressed: mem::take(&mut self.suppressed),
            }
        } else {
            self.suppressed += events as u64;
            Admission::Suppress
        }
    }

    /// The decision for the events of an error that stops the VM: always
    /// published, with what was left out before them (the last chance to
    /// say it), and not counted against the window.
    pub fn admit_stop(&mut self) -> Admission {
        Admission::Publish {
            suppressed: mem::take(&mut self.suppressed),
        }
    }
}

/// The events of one error admitted by the [`PublishLimiter`], as they go
/// to the event monitor and the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    /// Events left out before these (a line of their own when non-zero).
    pub suppressed: u64,
    /// The events, in the order they happened.
    pub events: Vec<RasEvent>,
}

/// Publications left by threads that must not publish (vCPU threads) for
/// the thread that does (the VMM thread), in order.
///
/// Protocol: [`EventOutbox::post`] says whether the outbox was empty, and
/// only then does the poster wake the publisher: one wake-up per batch,
/// however many errors are posted before the publisher runs.
/// [`EventOutbox::flush`] takes the whole batch under the outbox's lock, so
/// a post either lands in the batch being taken or finds the outbox empty
/// and wakes the publisher again: no publication waits without a wake-up.
/// Flushes are serialised, so publications leave in the order they were
/// posted even with several publishing threads. The outbox holds at most
/// what the [`PublishLimiter`] admits between two flushes.
#[derive(Debug, Default)]
pub struct EventOutbox {
    pending: Mutex<Vec<Publication>>,
    /// Held while a batch is published.
    publishing: Mutex<()>,
}

impl EventOutbox {
    /// Leaves `publication`; `true` when the outbox was empty, i.e. the
    /// publisher must be woken.
    pub fn post(&self, publication: Publication) -> bool {
        let mut pending = self.pending.lock().unwrap();
        pending.push(publication);
        pending.len() == 1
    }

    /// Publishes everything posted so far with `publish`, oldest first,
    /// without holding the lock posters take.
    pub fn flush(&self, mut publish: impl FnMut(Publication)) {
        let _publishing = self.publishing.lock().unwrap();
        let batch = mem::take(&mut *self.pending.lock().unwrap());
        for publication in batch {
            publish(publication);
        }
    }
}

/// The events of errors on their way out: every event counted
/// ([`Counters`]), the events of a share of the errors admitted under a
/// storm ([`PublishLimiter`]; a stop is always told, with what was left out
/// before it), the admitted ones left for the publishing thread
/// ([`EventOutbox`]). Any thread posts; one thread publishes.
#[derive(Debug, Default)]
pub struct Publisher {
    counters: Counters,
    limiter: Mutex<PublishLimiter>,
    outbox: EventOutbox,
}

impl Publisher {
    /// The counters of every event posted.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Counts the events of one error at `now_ms` (monotonic) and leaves
    /// those admitted for [`Publisher::flush`]. `true` when they are the
    /// first waiting: the publishing thread must be woken.
    pub fn post(&self, events: &[RasEvent], now_ms: u64) -> bool {
        if events.is_empty() {
            return false;
        }
        for event in events {
            self.counters.count(event);
        }
        let stopping = events
            .iter()
            .any(|e| matches!(e, RasEvent::VmStopped { .. }));
        let admission = {
            let mut limiter = self.limiter.lock().unwrap();
            if stopping {
                limiter.admit_stop()
            } else {
                limiter.admit(now_ms, events.len())
            }
        };
        match admission {
            Admission::Publish { suppressed } => self.outbox.post(Publication {
                suppressed,
                events: events.to_vec(),
            }),
            Admission::Suppress => false,
        }
    }

    /// Publishes everything posted so far with `publish`, oldest first
    /// ([`EventOutbox::flush`]).
    pub fn flush(&self, publish: impl FnMut(Publication)) {
        self.outbox.flush(publish);
    }
}

/// One counter per [`EventKind`], shared by the threads that publish
/// events and read by the counters API without a lock.
#[derive(Debug, Default)]
pub struct Counters {
    values: [AtomicU64; EventKind::ALL.len()],
}

/// The counters as plain values, by [`EventKind::counter_name`]: what a
/// snapshot carries and the API shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CounterValues(pub BTreeMap<String, u64>);

impl Counters {
    /// Counts one event.
    pub fn count(&self, event: &RasEvent) {
        self.values[event.kind().index()].fetch_add(1, Ordering::Relaxed);
    }

    /// The value of one counter.
    pub fn get(&self, kind: EventKind) -> u64 {
        self.values[kind.index()].load(Ordering::Relaxed)
    }

    /// Every counter with its name, in [`EventKind::ALL`] order.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        EventKind::ALL
            .iter()
            .map(|k| (k.counter_name(), self.get(*k)))
            .collect()
    }

    /// The values, for a snapshot.
    pub fn values(&self) -> CounterValues {
        CounterValues(
            self.named()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    /// Sets the counters from a snapshot; names it does not hold start at
    /// zero, names it does not know are ignored (a newer snapshot).
    pub fn restore(&self, values: &CounterValues) {
        for k in EventKind::ALL {
            let v = values.0.get(k.counter_name()).copied().unwrap_or(0);
            self.values[k.index()].store(v, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use vm_memory::GuestAddress;

    use super::*;

    /// The 22 event names, in counter order, as docs/ras.md and the tools
    /// spell them.
    const NAMES: [&str; 22] = [
        "sea-exit",
        "sigbus-ar",
        "sigbus-ao",
        "poison-found",
        "inject-requested",
        "record-written",
        "record-queued",
        "record-dropped",
        "record-failed",
        "queued-record-written",
        "abort-injected",
        "abort-failed",
        "async-notified",
        "notify-failed",
        "page-poisoned",
        "poison-list-full",
        "poison-repaired",
        "host-page-retired",
        "host-page-kept",
        "region-tampered",
        "ignored",
        "vm-stopped",
    ];

    fn g2m() -> GpaGranule {
        GpaGranule::containing(GuestAddress(0x4020_0000), 21).unwrap()
    }

    /// One event of each kind, in [`NAMES`] order.
    fn one_of_each() -> Vec<RasEvent> {
        let g = g2m();
        let sync = SourceTarget::Sync { vcpu: 1 };
        vec![
            RasEvent::Consumed {
                vcpu: 1,
                origin: Origin::SeaExit,
                granule: None,
                gva: None,
            },
            RasEvent::Consumed {
                vcpu: 1,
                origin: Origin::Sigbus,
                granule: Some(g),
                gva: None,
            },
            RasEvent::Announced {
                granule: g,
                found_by: FoundBy::HostSignal,
            },
            RasEvent::Announced {
                granule: g,
                found_by: FoundBy::VmmCopy,
            },
            RasEvent::InjectRequested {
                target: SourceTarget::Async,
                section: "raw",
            },
            RasEvent::RecordWritten {
                source: SourceId(1),
                target: sync,
                granule: Some(g),
                severity: Severity::Recoverable,
            },
            RasEvent::RecordQueued {
                source: SourceId(1),
                target: sync,
                depth: 2,
            },
            RasEvent::RecordDropped {
                source: SourceId(1),
                target: sync,
                granule: None,
            },
            RasEvent::RecordFailed {
                target: sync,
                error: "x".to_string(),
            },
            RasEvent::QueuedRecordWritten {
                source: SourceId(4),
            },
            RasEvent::AbortInjected {
                vcpu: 1,
                abort: "data".to_string(),
            },
            RasEvent::AbortFailed {
                vcpu: 1,
                error: "EINVAL".to_string(),
            },
            RasEvent::AsyncNotified,
            RasEvent::NotifyFailed {
                error: "EBADF".to_string(),
            },
            RasEvent::PagePoisoned {
                granule: g,
                absorbed: 0,
            },
            RasEvent::PoisonListFull {
                granule: g,
                limit: 1,
            },
            RasEvent::PoisonRepaired { granule: g },
            RasEvent::HostPageRetired { granule: g },
            RasEvent::HostPageKept {
                granule: g,
                error: "EPERM".to_string(),
            },
            RasEvent::RegionTampered { count: 1 },
            RasEvent::Ignored {
                reason: IgnoreReason::AsyncDisabled,
            },
            RasEvent::VmStopped {
                reason: StopReason::PoisonLimit { limit: 1 },
            },
        ]
    }

    #[test]
    fn kinds_are_indexed_named_and_unique() {
        assert_eq!(EventKind::ALL.len(), NAMES.len());
        for (i, k) in EventKind::ALL.into_iter().enumerate() {
            // The discriminant is the counter index.
            assert_eq!(k as usize, i, "{k:?}");
            assert_eq!(k.name(), NAMES[i], "{k:?}");
            assert_eq!(k.counter_name(), NAMES[i].replace('-', "_"), "{k:?}");
        }
        let names: HashSet<_> = EventKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), 22);
        let counters: HashSet<_> = EventKind::ALL.iter().map(|k| k.counter_name()).collect();
        assert_eq!(counters.len(), 22);
    }

    #[test]
    fn every_event_has_its_kind_and_name() {
        let events = one_of_each();
        assert_eq!(events.len(), NAMES.len());
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.kind(), EventKind::ALL[i], "{e:?}");
            assert_eq!(e.name(), NAMES[i], "{e:?}");
        }
    }

    #[test]
    fn properties_format() {
        let g = g2m();
        let consumed = RasEvent::Consumed {
            vcpu: 2,
            origin: Origin::SeaExit,
            granule: Some(g),
            gva: Some(0xffff_0000_1234_5000),
        };
        assert_eq!(
            consumed.properties(),
            vec![
                ("vcpu", "2".to_string()),
                ("gpa", "0x40200000".to_string()),
                ("shift", "21".to_string()),
                ("gva", "0xffff000012345000".to_string()),
            ]
        );
        assert_eq!(
            consumed.to_string(),
            "sea-exit vcpu=2 gpa=0x40200000 shift=21 gva=0xffff000012345000"
        );
        // No address: no gpa/shift/gva keys at all.
        let bare = RasEvent::Consumed {
            vcpu: 0,
            origin: Origin::Sigbus,
            granule: None,
            gva: None,
        };
        assert_eq!(bare.to_string(), "sigbus-ar vcpu=0");
        let written = RasEvent::RecordWritten {
            source: SourceId(2),
            target: SourceTarget::Sync { vcpu: 2 },
            granule: Some(g),
            severity: Severity::Corrected,
        };
        assert_eq!(
            written.to_string(),
            "record-written source=2 target=sync/2 gpa=0x40200000 shift=21 severity=corrected"
        );
        let queued = RasEvent::RecordQueued {
            source: SourceId(4),
            target: SourceTarget::Async,
            depth: 3,
        };
        assert_eq!(
            queued.to_string(),
            "record-queued source=4 target=async depth=3"
        );
        let ignored = RasEvent::Ignored {
            reason: IgnoreReason::AlreadyPoisoned { granule: g },
        };
        assert_eq!(
            ignored.properties(),
            vec![
                ("reason", "already-poisoned".to_string()),
                ("gpa", "0x40200000".to_string()),
                ("shift", "21".to_string()),
            ]
        );
        let stopped = RasEvent::VmStopped {
            reason: StopReason::Storm {
                vcpu: 3,
                granule: Some(g),
                count: 17,
                window_ms: 1000,
            },
        };
        assert_eq!(
            stopped.properties(),
            vec![
                ("reason", "storm".to_string()),
                (
                    "detail",
                    "Poisoned memory at 0x40200000+2^21 consumed 17 times in 1000 ms (last by vCPU 3)"
                        .to_string()
                ),
            ]
        );
        assert_eq!(
            RasEvent::InjectRequested {
                target: SourceTarget::Sync { vcpu: 0 },
                section: "arm_processor",
            }
            .to_string(),
            "inject-requested target=sync/0 section=arm_processor"
        );
        assert_eq!(RasEvent::AsyncNotified.to_string(), "async-notified");
        assert_eq!(
            RasEvent::PagePoisoned {
                granule: g,
                absorbed: 5
            }
            .to_string(),
            "page-poisoned gpa=0x40200000 shift=21 absorbed=5"
        );
    }

    #[test]
    fn counters_count_get_values_and_restore() {
        let c = Counters::default();
        let events = one_of_each();
        // sigbus-ar twice, poison-found once, record-written once,
        // vm-stopped once.
        c.count(&events[1]);
        c.count(&events[1]);
        c.count(&events[3]);
        c.count(&events[5]);
        c.count(&events[21]);
        assert_eq!(c.get(EventKind::SigbusAr), 2);
        assert_eq!(c.get(EventKind::PoisonFound), 1);
        assert_eq!(c.get(EventKind::SigbusAo), 0);
        assert_eq!(c.get(EventKind::RecordWritten), 1);
        assert_eq!(c.get(EventKind::VmStopped), 1);
        assert_eq!(c.get(EventKind::SeaExit), 0);

        let values = c.values();
        assert_eq!(values.0.len(), 22);
        let mut want: BTreeMap<String, u64> =
            NAMES.iter().map(|n| (n.replace('-', "_"), 0)).collect();
        want.insert("sigbus_ar".to_string(), 2);
        want.insert("poison_found".to_string(), 1);
        want.insert("record_written".to_string(), 1);
        want.insert("vm_stopped".to_string(), 1);
        assert_eq!(values.0, want);
        // The API / snapshot form: a flat JSON object.
        let json = serde_json::to_string(&values).unwrap();
        assert!(
            json.starts_with(r#"{"abort_failed":0,"abort_injected":0,"#),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<CounterValues>(&json).unwrap(),
            values
        );

        // Restore: known names set, missing ones start at zero, unknown
        // ones (a newer snapshot) are ignored.
        let mut snap = BTreeMap::new();
        snap.insert("page_poisoned".to_string(), 7);
        snap.insert("sigbus_ao".to_string(), 3);
        snap.insert("from_the_future".to_string(), 99);
        c.restore(&CounterValues(snap));
        assert_eq!(c.get(EventKind::PagePoisoned), 7);
        assert_eq!(c.get(EventKind::SigbusAo), 3);
        // Was 2, absent from the snapshot: now 0.
        assert_eq!(c.get(EventKind::SigbusAr), 0);
        let named = c.named();
        assert_eq!(named.len(), 22);
        assert_eq!(named.iter().map(|(_, v)| *v).sum::<u64>(), 10);
        assert_eq!(named[14], ("page_poisoned", 7));
        assert!(!named.iter().any(|(k, _)| *k == "from_the_future"));
    }

    #[test]
    fn the_limiter_bounds_each_window_and_reports_what_it_left_out() {
        let mut l = PublishLimiter::new(2, 1000);
        let publish = |suppressed| Admission::Publish { suppressed };
        // Two errors per window pass, the third and fourth are counted.
        assert_eq!(l.admit(5_000, 3), publish(0));
        assert_eq!(l.admit(5_010, 3), publish(0));
        assert_eq!(l.admit(5_020, 3), Admission::Suppress);
        assert_eq!(l.admit(5_999, 4), Admission::Suppress);
        // The next window: published again, with the 7 events left out.
        assert_eq!(l.admit(6_000, 1), publish(7));
        assert_eq!(l.admit(6_001, 1), publish(0));
        assert_eq!(l.admit(6_002, 1), Admission::Suppress);
        // Errors spread out in time are never left out.
        let mut l = PublishLimiter::new(2, 1000);
        for t in 0..100 {
            assert_eq!(l.admit(t * 600, 5), publish(0));
        }
        // A zero limit or window would silence everything: at least one.
        let mut l = PublishLimiter::new(0, 0);
        assert_eq!(l.admit(1, 1), publish(0));
        assert_eq!(l.admit(1, 1), Admission::Suppress);
        assert_eq!(l.admit(2, 1), publish(1));
        // The default: 32 errors a second.
        let mut l = PublishLimiter::default();
        for i in 0..32 {
            assert_eq!(l.admit(100 + i, 1), publish(0), "{i}");
        }
        assert_eq!(l.admit(200, 1), Admission::Suppress);
    }

    #[test]
    fn a_stop_is_published_with_what_was_left_out() {
        let publish = |suppressed| Admission::Publish { suppressed };
        let mut l = PublishLimiter::new(1, 1000);
        assert_eq!(l.admit(0, 2), publish(0));
        assert_eq!(l.admit(1, 3), Admission::Suppress);
        assert_eq!(l.admit(2, 4), Admission::Suppress);
        // The window is full: a stop is published all the same, with the 7
        // events left out, and its own are not counted as left out.
        assert_eq!(l.admit_stop(), publish(7));
        assert_eq!(l.admit_stop(), publish(0));
        // It took nothing from the window: still full, then a new one.
        assert_eq!(l.admit(3, 1), Admission::Suppress);
        assert_eq!(l.admit(1000, 1), publish(1));
    }

    #[test]
    fn the_publisher_counts_all_admits_a_share_and_always_tells_a_stop() {
        let p = Publisher::default();
        let error = [
            RasEvent::Announced {
                granule: g2m(),
                found_by: FoundBy::HostSignal,
            },
            RasEvent::PagePoisoned {
                granule: g2m(),
                absorbed: 0,
            },
        ];
        // Nothing to post: nothing counted, no wake-up.
        assert!(!p.post(&[], 0));
        // 40 errors within one second: the first asks for a wake-up, the
        // others find events waiting; the default limiter admits 32.
        assert!(p.post(&error, 0));
        for t in 1..40 {
            assert!(!p.post(&error, t));
        }
        assert_eq!(p.counters().get(EventKind::SigbusAo), 40);
        assert_eq!(p.counters().get(EventKind::PagePoisoned), 40);
        let mut published = Vec::new();
        p.flush(|publication| published.push(publication));
        assert_eq!(published.len(), 32);
        let whole = |x: &Publication| x.suppressed == 0 && x.events == error;
        assert!(published.iter().all(whole));
        // A stop in the same second is published all the same, with the
        // 16 events of the 8 errors left out; it asks for a wake-up again.
        let stop = [RasEvent::VmStopped {
            reason: StopReason::PoisonLimit { limit: 1 },
        }];
        assert!(p.post(&stop, 50));
        let mut published = Vec::new();
        p.flush(|publication| published.push(publication));
        assert_eq!(
            published,
            [Publication {
                suppressed: 16,
                events: stop.to_vec()
            }]
        );
        assert_eq!(p.counters().get(EventKind::VmStopped), 1);
    }

    fn publication(n: u64) -> Publication {
        Publication {
            suppressed: n,
            events: Vec::new(),
        }
    }

    #[test]
    fn the_outbox_asks_for_one_wake_up_per_batch_and_keeps_the_order() {
        let outbox = EventOutbox::default();
        assert!(outbox.post(publication(1)), "into an empty outbox: wake");
        assert!(
            !outbox.post(publication(2)),
            "the publisher is woken already"
        );
        assert!(!outbox.post(publication(3)));
        let mut published = Vec::new();
        outbox.flush(|p| published.push(p.suppressed));
        assert_eq!(published, [1, 2, 3]);
        // Taken: the next post wakes again, and nothing is published twice.
        assert!(outbox.post(publication(4)));
        published.clear();
        outbox.flush(|p| published.push(p.suppressed));
        assert_eq!(published, [4]);
        published.clear();
        outbox.flush(|p| published.push(p.suppressed));
        assert!(published.is_empty());
    }

    #[test]
    fn no_publication_waits_without_a_wake_up() {
        use std::sync::mpsc;
        use std::thread;

        // Four posters race one publisher that flushes only when woken (as
        // the VMM thread on its eventfd): every publication arrives once,
        // each poster's in its order.
        const POSTERS: u64 = 4;
        const EACH: u64 = 2000;
        let outbox = EventOutbox::default();
        let (wake, woken) = mpsc::channel::<()>();
        let published = thread::scope(|s| {
            let publisher = s.spawn(|| {
                let mut published = Vec::new();
                for () in woken {
                    outbox.flush(|p| published.push(p.suppressed));
                }
                published
            });
            for t in 0..POSTERS {
                let wake = wake.clone();
                let outbox = &outbox;
                s.spawn(move || {
                    for i in 0..EACH {
                        if outbox.post(publication(t * 1_000_000 + i)) {
                            wake.send(()).unwrap();
                        }
                    }
                });
            }
            drop(wake);
            publisher.join().unwrap()
        });
        assert_eq!(published.len() as u64, POSTERS * EACH);
        for t in 0..POSTERS {
            let mine: Vec<u64> = published
                .iter()
                .filter(|n| *n / 1_000_000 == t)
                .map(|n| n % 1_000_000)
                .collect();
            assert_eq!(mine, (0..EACH).collect::<Vec<_>>(), "poster {t}");
        }
    }
}
