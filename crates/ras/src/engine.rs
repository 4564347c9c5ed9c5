// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! The engine of one VM: [`RasEngine::handle`] runs [`policy::decide`] on
//! an [`ErrorReport`] and applies the decision to the engine's own state:
//! records go into the guest's error status blocks ([`ErrorSources`]),
//! poison into the [`PoisonRegistry`], the error into the storm history.
//! What only the VMM can do (make a vCPU take the abort, signal the
//! asynchronous source, stop the VM) comes back in the [`Outcome`], with
//! the [`RasEvent`]s to publish: the VMM does it after releasing the lock
//! it keeps the engine under, so no ioctl, interrupt or event-monitor write
//! happens while other vCPUs wait for the engine.
//!
//! A lost granule larger than a page is told to the guest page by page
//! ([`crate::announce`]): the pages its first record did not name go into
//! a backlog that [`RasEngine::service`] (the VMM thread, never a vCPU's
//! [`RasEngine::handle`]) writes into the asynchronous source, a batch
//! when the guest acknowledged the previous one and the next is due (paced
//! for the guest's memory-failure queue); the [`Outcome`] says `queued`
//! until the backlog is empty.
//!
//! The engine keeps every guest-physical address it writes to (from the
//! [`RegionLayout`]) and never reads a pointer back from guest memory.

use thiserror::Error;
use vm_memory::{Bytes, GuestMemoryError};

use crate::announce::{ANNOUNCE_BATCH, AnnounceBacklog, PAGE_SHIFT};
use crate::config::{AsyncMode, ConfigError, RasConfig, SeaSources};
use crate::cper::{Severity, StatusBlock};
use crate::error_source::{
    Delivery, ErrorSourceError, ErrorSources, RegionLayout, SourceId, SourceNotifications,
    SourceTarget,
};
use crate::event::RasEvent;
use crate::granule::GpaGranule;
use crate::poison::{Insertion, PoisonError, PoisonRegistry};
use crate::policy::{self, Action, Decision, PolicyConfig, PolicyState, StopReason, SyncDelivery};
use crate::report::{ErrorCause, ErrorReport};
use crate::storm::StormTracker;

pub mod state;

pub use state::{RasSnapshot, Reset};

/// Errors of the engine.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The configuration is invalid.
    #[error("Invalid RAS configuration")]
    Config(#[from] ConfigError),
    /// The error-source region could not be laid out or used.
    #[error("Error source region")]
    ErrorSource(#[from] ErrorSourceError),
    /// A restored poison list is invalid.
    #[error("Restoring the poison list failed")]
    Poison(#[from] PoisonError),
    /// A VM has at least one vCPU: without one there is no synchronous
    /// source and no vCPU to take an abort.
    #[error("RAS engine needs at least one vCPU")]
    NoVcpus,
    /// [`RasEngine::init`] has not run.
    #[error("RAS engine used before init")]
    NotInitialized,
    /// A synchronous injection for a vCPU the VM does not have.
    #[error("vCPU {vcpu} does not exist (the VM has {num_vcpus} vCPUs)")]
    NoSuchVcpu {
        /// The vCPU asked for.
        vcpu: u32,
        /// vCPUs of the VM.
        num_vcpus: u32,
    },
    /// An injection for the asynchronous source with `async=off`.
    #[error("The asynchronous error source is disabled (--ras async=off)")]
    AsyncDisabled,
    /// A synchronous injection where the architecture has no synchronous
    /// error source ([`SyncDelivery::MachineCheck`]).
    #[error("This VM has no synchronous error source: inject into the asynchronous one")]
    NoSyncSource,
    /// An injection whose record does not fit an error status block.
    #[error(
        "The record takes {len} bytes, more than the {block_len}-byte error status block (--ras block_size)"
    )]
    RecordTooLarge {
        /// Encoded length.
        len: usize,
        /// Block length.
        block_len: u32,
    },
    /// A snapshot taken with another configuration.
    #[error("RAS snapshot taken with another configuration: {snapshot:?}, running {running:?}")]
    ConfigMismatch {
        /// Configuration in the snapshot.
        snapshot: Box<RasConfig>,
        /// Running configuration.
        running: Box<RasConfig>,
    },
}

/// What the VMM must do after [`RasEngine::handle`] or
/// [`RasEngine::service`], once it released the engine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Events to publish, in order (the VMM adds those of its own steps).
    pub events: Vec<RasEvent>,
    /// The vCPU that must take the abort before it runs on (only ever the
    /// vCPU that reported the consumption, on its own thread).
    pub abort: Option<u32>,
    /// With [`SyncDelivery::MachineCheck`]: the 4 KiB page the abort must
    /// name (the page the vCPU accessed), when the report gave one.
    pub abort_page: Option<GpaGranule>,
    /// Signal the asynchronous source: a record was written there.
    pub notify_async: bool,
    /// Stop the VM.
    pub stop: Option<StopReason>,
    /// Records wait behind unacknowledged ones, or pages of a lost granule
    /// wait to be told: call [`RasEngine::service`] again later (a guest
    /// acknowledges without any exit).
    pub queued: bool,
}

/// The error of a request of an [`Outcome`] the VMM did not answer.
const NOT_ATTEMPTED: &str = "not attempted";

/// What the VMM did about an [`Outcome`]'s requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Done {
    /// The abort was injected; how, as the hypervisor describes it.
    Abort(String),
    /// Injecting the abort failed; why.
    AbortFailed(String),
    /// The asynchronous source was signalled.
    Notified,
    /// Signalling the asynchronous source failed; why.
    NotifyFailed(String),
}

impl Outcome {
    /// The events to publish, in order, and whether the VM must stop, once
    /// the VMM did what the outcome asked ([`Done`], in any order). A vCPU
    /// that must take an abort and did not stops the VM: it would repeat
    /// the access forever. Every request must be answered: an abort or a
    /// notification the VMM did not report is reported as failed.
    pub fn finish(self, done: &[Done]) -> (Vec<RasEvent>, Option<StopReason>) {
        let Outcome {
            mut events,
            abort,
            abort_page: _,
            notify_async,
            mut stop,
            queued: _,
        } = self;
        if let Some(vcpu) = abort {
            let injected = done
                .iter()
                .find_map(|d| match d {
                    Done::Abort(how) => Some(Ok(how.clone())),
                    Done::AbortFailed(why) => Some(Err(why.clone())),
                    _ => None,
                })
                .unwrap_or_else(|| Err(NOT_ATTEMPTED.to_string()));
            match injected {
                Ok(abort) => events.push(RasEvent::AbortInjected { vcpu, abort }),
                Err(error) => {
                    events.push(RasEvent::AbortFailed { vcpu, error });
                    stop.get_or_insert(StopReason::AbortFailed { vcpu });
                }
            }
        }
        if notify_async {
            let notified = done
                .iter()
                .find_map(|d| match d {
                    Done::Notified => Some(Ok(())),
                    Done::NotifyFailed(why) => Some(Err(why.clone())),
                    _ => None,
                })
                .unwrap_or_else(|| Err(NOT_ATTEMPTED.to_string()));
            events.push(match notified {
                Ok(()) => RasEvent::AsyncNotified,
                Err(error) => RasEvent::NotifyFailed { error },
            });
        }
        if let Some(reason) = &stop {
            events.push(RasEvent::VmStopped {
                reason: reason.clone(),
            });
        }
        (events, stop)
    }
}

/// The guest RAS engine of one VM.
#[derive(Debug)]
pub struct RasEngine {
    config: RasConfig,
    policy: PolicyConfig,
    sources: ErrorSources,
    poison: PoisonRegistry,
    storm: StormTracker,
    /// Pages of lost granules the guest was not told of yet.
    announce: AnnounceBacklog,
    /// How many pages one block of the asynchronous source holds.
    announce_batch: usize,
    num_vcpus: u32,
    initialized: bool,
}

impl RasEngine {
    /// An engine for a VM with up to `num_vcpus` vCPUs whose error-source
    /// region is at guest-physical `region_base` (4 KiB aligned, outside
    /// RAM; size [`RegionLayout::total_len`] of [`RasEngine::layout`]).
    /// With `sea_sources=per_vcpu` there is one synchronous source per
    /// vCPU, with `shared` a single one.
    pub fn new(
        config: RasConfig,
        region_base: vm_memory::GuestAddress,
        num_vcpus: u32,
    ) -> Result<Self, EngineError> {
        Self::with_sync_delivery(config, region_base, num_vcpus, SyncDelivery::ErrorSource)
    }

    /// [`RasEngine::new`], for an architecture whose synchronous errors
    /// are delivered as `sync` says: with [`SyncDelivery::MachineCheck`]
    /// there is no synchronous source (`sea_sources` is not used), only the
    /// asynchronous one, and a consumption's [`Outcome`] names the page the
    /// abort must carry.
    pub fn with_sync_delivery(
        config: RasConfig,
        region_base: vm_memory::GuestAddress,
        num_vcpus: u32,
        sync: SyncDelivery,
    ) -> Result<Self, EngineError> {
        config.validate()?;
        if num_vcpus == 0 {
            return Err(EngineError::NoVcpus);
        }
        let num_sync = match (sync, config.sea_sources) {
            (SyncDelivery::MachineCheck, _) => 0,
            (SyncDelivery::ErrorSource, SeaSources::PerVcpu) => num_vcpus,
            (SyncDelivery::ErrorSource, SeaSources::Shared) => 1,
        };
        let layout = RegionLayout::new(region_base, num_sync, config.block_size)?;
        // A page's entry (data entry header and memory section): 152 bytes.
        let page = GpaGranule::containing(vm_memory::GuestAddress(0), PAGE_SHIFT)
            .expect("address 0 starts a page");
        let header = StatusBlock::new().encoded_len();
        let entry =
            StatusBlock::memory_errors(&[page], Severity::Recoverable, 0).encoded_len() - header;
        let fit = (layout.block_len() as usize).saturating_sub(header) / entry;
        Ok(Self {
            policy: PolicyConfig {
                sync,
                ..PolicyConfig::from(&config)
            },
            sources: ErrorSources::new(layout, config.queue_depth as usize),
            poison: PoisonRegistry::new(config.max_poisoned as usize),
            storm: StormTracker::new(),
            announce: AnnounceBacklog::default(),
            announce_batch: fit.clamp(1, ANNOUNCE_BATCH),
            num_vcpus,
            initialized: false,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RasConfig {
        &self.config
    }

    /// Where the error sources live (for the VMM's memory map and ACPI).
    pub fn layout(&self) -> &RegionLayout {
        self.sources.layout()
    }

    /// How the guest is notified: SEA for the synchronous sources; GPIO
    /// (the GED) or POLLED for the asynchronous one. With `async=off` the
    /// source is still described, as GPIO, but never written.
    pub fn notifications(&self) -> SourceNotifications {
        match self.config.async_mode {
            AsyncMode::Gpio | AsyncMode::Off => SourceNotifications::arm64_gpio(),
            AsyncMode::Polled => SourceNotifications::arm64_polled(self.config.poll_interval_ms),
        }
    }

    /// The ACPI HEST for this engine's sources.
    pub fn hest(&self) -> Result<Vec<u8>, EngineError> {
        Ok(self.layout().hest(self.notifications())?)
    }

    /// Initializes the error-source region in guest memory (at boot).
    pub fn init<M>(&mut self, mem: &M) -> Result<(), EngineError>
    where
        M: Bytes<vm_memory::GuestAddress, E = GuestMemoryError> + ?Sized,
    {
        self.sources.init(mem)?;
        self.initialized = true;
        Ok(())
    }

    /// Known poisoned memory (to keep out of reads of guest RAM).
    pub fn poison(&self) -> &PoisonRegistry {
        &self.poison
    }

    /// Checks, before anything is written or queued, that an injection
    /// report can be delivered as asked: its vCPU exists, its source is
    /// enabled, its record fits a block.
    pub fn check_injection(&self, report: &ErrorReport) -> Result<(), EngineError> {
        let ErrorCause::Injected { target, .. } = &report.cause else {
            return Ok(());
        };
        match target {
            SourceTarget::Sync { .. } if self.policy.sync == SyncDelivery::MachineCheck => {
                return Err(EngineError::NoSyncSource);
            }
            SourceTarget::Sync { vcpu } if *vcpu >= self.num_vcpus => {
                return Err(EngineError::NoSuchVcpu {
                    vcpu: *vcpu,
                    num_vcpus: self.num_vcpus,
                });
            }
            SourceTarget::Async if self.config.async_mode == AsyncMode::Off => {
                return Err(EngineError::AsyncDisabled);
            }
            _ => {}
        }
        let block_len = self.layout().block_len();
        for action in self.decide(report).actions {
            if let Action::Record { block, .. } = action
                && block.encoded_len() > block_len as usize
            {
                return Err(EngineError::RecordTooLarge {
                    len: block.encoded_len(),
                    block_len,
                });
            }
        }
        Ok(())
    }

    /// Handles one error report: decides, applies the decision, then
    /// services the sources (records the guest acknowledged since free
    /// their source for queued ones). A failed record write is an event,
    /// not an error: the rest of the decision still applies.
    pub fn handle<M>(&mut self, report: &ErrorReport, mem: &M) -> Result<Outcome, EngineError>
    where
        M: Bytes<vm_memory::GuestAddress, E = GuestMemoryError> + ?Sized,
    {
        if !self.initialized {
            return Err(EngineError::NotInitialized);
        }
        let mut out = Outcome::default();
        out.events.push(report_event(report));
        let decision = self.decide(report);
        if let Some(observation) = decision.observe {
            self.storm.observe(observation, self.policy.storm_window_ms);
        }
        let mut async_written = false;
        // The page a machine check names (the page the vCPU accessed).
        let abort_page = match (&report.cause, self.policy.sync) {
            (ErrorCause::Consumed { page, granule, .. }, SyncDelivery::MachineCheck) => {
                page.or(granule.filter(|g| g.shift() == PAGE_SHIFT))
            }
            _ => None,
        };
        // The pages this decision's records or abort name: told already.
        let told: Vec<GpaGranule> = decision
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Record { granule, .. } => *granule,
                Action::InjectAbort { .. } => abort_page,
                _ => None,
            })
            .collect();
        for action in decision.actions {
            match action {
                Action::MarkPoisoned(g) => {
                    if self.mark_poisoned(g, &mut out) && self.config.async_mode != AsyncMode::Off {
                        self.announce
                            .push(g, &told, report.unix_time, report.monotonic_ms);
                    }
                }
                Action::Record {
                    target,
                    block,
                    granule,
                } => {
                    let written = self.record(mem, target, &block, granule, &mut out);
                    async_written |= written && target == SourceTarget::Async;
                }
                Action::InjectAbort { vcpu } => {
                    out.abort = Some(vcpu);
                    out.abort_page = abort_page;
                }
                // Signal only a record now in the block: a queued one is
                // signalled when `service` writes it, a dropped one never.
                Action::NotifyAsync => out.notify_async |= async_written,
                Action::StopVm(reason) => {
                    out.stop.get_or_insert(reason);
                }
                Action::Ignore(reason) => out.events.push(RasEvent::Ignored { reason }),
            }
        }
        self.service_into(mem, &mut out, None)?;
        Ok(out)
    }

    /// Services the error sources (periodically while records are queued,
    /// or when the guest acknowledged) at monotonic time `now_ms` (the
    /// clock of [`ErrorReport::monotonic_ms`]): restores tampered registers,
    /// writes the next queued record into each source that became free,
    /// and the next pages of lost granules when they are due
    /// ([`crate::announce`]).
    pub fn service<M>(&mut self, mem: &M, now_ms: u64) -> Result<Outcome, EngineError>
    where
        M: Bytes<vm_memory::GuestAddress, E = GuestMemoryError> + ?Sized,
    {
        if !self.initialized {
            return Err(EngineError::NotInitialized);
        }
        let mut out = Outcome::default();
        self.service_into(mem, &mut out, Some(now_ms))?;
        Ok(out)
    }

    fn decide(&self, report: &ErrorReport) -> Decision {
        policy::decide(
            report,
            &PolicyState {
                poison: &self.poison,
                storm: &self.storm,
            },
            &self.policy,
        )
    }

    /// Adds `granule` to the poison registry; `true` when it is new there.
    fn mark_poisoned(&mut self, granule: GpaGranule, out: &mut Outcome) -> bool {
        match self.poison.insert(granule) {
            Ok(Insertion::New { absorbed }) => {
                out.events.push(RasEvent::PagePoisoned {
                    granule,
                    absorbed: absorbed.len(),
                });
                true
            }
            Ok(Insertion::Duplicate { .. }) => false,
            Err(_) => {
                let limit = self.poison.limit();
                out.events.push(RasEvent::PoisonListFull { granule, limit });
                // Untracked poison would be read by a snapshot or a
                // migration and not repaired at reset.
                out.stop.get_or_insert(StopReason::PoisonLimit { limit });
                false
            }
        }
    }

    fn source_of(&self, target: SourceTarget) -> Option<SourceId> {
        let layout = self.sources.layout();
        match target {
            SourceTarget::Async => Some(layout.async_source()),
            SourceTarget::Sync { vcpu } if vcpu < self.num_vcpus => match self.config.sea_sources {
                SeaSources::PerVcpu => layout.sync_source(vcpu),
                SeaSources::Shared => layout.sync_source(0),
            },
            SourceTarget::Sync { .. } => None,
        }
    }

    /// Writes or queues one record; returns whether a record (this one or
    /// an older queued one) is now in the block.
    fn record<M>(
        &mut self,
        mem: &M,
        target: SourceTarget,
        block: &StatusBlock,
        granule: Option<GpaGranule>,
        out: &mut Outcome,
    ) -> bool
    where
        M: Bytes<vm_memory::GuestAddress, E = GuestMemoryError> + ?Sized,
    {
        let Some(source) = self.source_of(target) else {
            out.events.push(RasEvent::RecordFailed {
                target,
                error: format!("No error source for {target}"),
            });
            return false;
        };
        let delivery = match self.sources.submit(mem, source, block) {
            Ok(d) => d,
            Err(e) => {
                out.events.push(RasEvent::RecordFailed {
                    target,
                    error: e.to_string(),
                });
                return false;
            }
        };
        if let Delivery::WroteOlderQueued { .. } = delivery {
            out.events.push(RasEvent::QueuedRecordWritten { source });
        }
        out.events.push(match delivery {
            Delivery::Written => RasEvent::RecordWritten {
                source,
                target,
                granule,
                severity: block.error_severity().unwrap_or_default(),
            },
            Delivery::WroteOlderQueued { depth } => RasEvent::RecordQueued {
                source,
                target,
                depth,
            },
            Delivery::Queued { depth } => RasEvent::RecordQueued {
                source,
                target,
                depth,
            },
            Delivery::Dropped => RasEvent::RecordDropped {
                source,
                target,
                granule,
            },
        });
        delivery.must_notify()
    }

    /// Writes queued records into sources the guest freed, and, with
    /// `announce_at` (the time), the next pages of lost granules into the
    /// asynchronous source when it is free, nothing waits in its queue and
    /// they are due.
    fn service_into<M>(
        &mut self,
        mem: &M,
        out: &mut Outcome,
        announce_at: Option<u64>,
    ) -> Result<(), EngineError>
    where
        M: Bytes<vm_memory::GuestAddress, E = GuestMemoryError> + ?Sized,
    {
        let async_source = self.sources.layout().async_source();
        let gpio = self.config.async_mode == AsyncMode::Gpio;
        for source in self.sources.service(mem)? {
            out.events.push(RasEvent::QueuedRecordWritten { source });
            out.notify_async |= source == async_source && gpio;
        }
        if let Some(now_ms) = announce_at
            && !self.announce.is_empty()
            && self.sources.queue_len(async_source)? == 0
            && self.sources.is_free(mem, async_source)?
            && let Some(batch) = self.announce.next_batch(self.announce_batch, now_ms)
        {
            let block =
                StatusBlock::memory_errors(&batch.pages, Severity::Recoverable, batch.unix_time);
            let target = SourceTarget::Async;
            match self.sources.submit(mem, async_source, &block) {
                Ok(delivery) => {
                    out.events.push(RasEvent::RecordWritten {
                        source: async_source,
                        target,
                        granule: batch.pages.first().copied(),
                        severity: Severity::Recoverable,
                    });
                    out.notify_async |= gpio && delivery.must_notify();
                }
                Err(e) => out.events.push(RasEvent::RecordFailed {
                    target,
                    error: e.to_string(),
                }),
            }
        }
        let tampered = self.sources.take_tampered();
        if tampered > 0 {
            out.events
                .push(RasEvent::RegionTampered { count: tampered });
        }
        out.queued = self.sources.has_queued() || !self.announce.is_empty();
        Ok(())
    }
}

/// The event that announces a report.
fn report_event(report: &ErrorReport) -> RasEvent {
    match &report.cause {
        ErrorCause::Consumed {
            vcpu,
            origin,
            granule,
            gva,
            ..
        } => RasEvent::Consumed {
            vcpu: *vcpu,
            origin: *origin,
            granule: *granule,
            gva: *gva,
        },
        ErrorCause::Announced { granule, found_by } => RasEvent::Announced {
            granule: *granule,
            found_by: *found_by,
        },
        ErrorCause::Injected { target, entry } => RasEvent::InjectRequested {
            target: *target,
            section: entry.section.name(),
        },
    }
}
