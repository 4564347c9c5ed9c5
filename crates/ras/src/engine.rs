// SPDX-License-Identifier: Apache-2.0
//! The engine at run time: [`RasEngine`] runs [`policy::decide`] on each
//! [`ErrorReport`] and applies the resulting actions: records go into the
//! guest's error status blocks ([`ErrorSources`]), poison into the
//! [`PoisonRegistry`], and everything the VMM must do (inject an abort,
//! signal the asynchronous source, stop the VM, publish an event) goes
//! through the [`Platform`] trait it implements.
//!
//! The engine keeps every guest-physical address it writes to (from the
//! [`RegionLayout`]) and never reads a pointer back from guest memory.

use serde::{Deserialize, Serialize};
use thiserror::Error;
use vm_memory::{Bytes, GuestAddress, GuestMemory};

use crate::config::{AsyncMode, ConfigError, RasConfig, SeaSources};
use crate::cper::StatusBlock;
use crate::error_source::{
    Delivery, ErrorSourceError, ErrorSources, RegionLayout, SourceId, SourceKind,
    SourceNotifications,
};
use crate::event::{RasCounters, RasEvent};
use crate::poison::{Insertion, PoisonError, PoisonRegistry};
use crate::policy::{
    self, Action, CperRecord, Decision, PolicyConfig, PolicyState, SourceTarget, StopReason,
    StormTracker,
};
use crate::report::{
    AbortKind, ErrorCause, ErrorReport, GpaGranule, InjectPayload, InjectTarget, SyncOrigin,
};

/// What the engine needs from the VMM. Implemented by the VMM glue (KVM
/// layer, Cloud Hypervisor, the lab harness); the engine calls it
/// synchronously from [`RasEngine::handle`] and [`RasEngine::service`].
pub trait Platform {
    /// Makes `vcpu` take a synchronous external abort of `kind` (data or
    /// instruction, never unknown) with fault address `far` when given.
    /// Called on the vCPU's own thread for consumption reports.
    fn inject_abort(&mut self, vcpu: u32, kind: AbortKind, far: Option<u64>) -> Result<(), String>;
    /// Signals the asynchronous error source (GED event -> PNP0C33 notify).
    fn notify_async(&mut self) -> Result<(), String>;
    /// Stops the VM cleanly (reported to the user with `reason`).
    fn stop_vm(&mut self, reason: &StopReason);
    /// Publishes an event (event monitor source [`crate::event::EVENT_SOURCE`],
    /// logs).
    fn emit(&mut self, event: &RasEvent);
}

/// Errors of the engine.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The configuration is invalid.
    #[error("Invalid RAS configuration: {0}")]
    Config(#[from] ConfigError),
    /// The error-source region could not be laid out or initialized.
    #[error("Error source region: {0}")]
    ErrorSource(#[from] ErrorSourceError),
    /// A restored poison list is invalid.
    #[error("Restoring the poison list failed: {0}")]
    Poison(#[from] PoisonError),
    /// A VM has at least one vCPU: without one there is no synchronous
    /// source and no vCPU to inject into.
    #[error("RAS engine needs at least one vCPU")]
    NoVcpus,
    /// [`RasEngine::init`] has not run.
    #[error("RAS engine used before init")]
    NotInitialized,
    /// An injection that this configuration cannot deliver as asked.
    #[error("Cannot inject the error: {0}")]
    Injection(String),
    /// A snapshot was taken with a different configuration.
    #[error("RAS snapshot configuration differs: snapshot '{snapshot}', running '{running}'")]
    ConfigMismatch {
        /// Configuration in the snapshot.
        snapshot: String,
        /// Running configuration.
        running: String,
    },
}

/// What [`RasEngine::handle`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The policy's actions, in the order applied.
    pub actions: Vec<Action>,
    /// Events emitted while handling, in order.
    pub events: Vec<RasEvent>,
    /// Set when the VM was asked to stop.
    pub stopped: Option<StopReason>,
}

/// The engine state that must survive a snapshot/restore or a migration:
/// the poison list and the counters. Records queued behind an
/// unacknowledged one are not kept (the record in flight is in guest
/// memory, which the snapshot holds); storm history restarts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RasSnapshot {
    /// Configuration, as an option string (checked on restore).
    pub config: String,
    /// Poisoned memory.
    pub poison: PoisonRegistry,
    /// Counters.
    pub counters: RasCounters,
}

/// The guest RAS engine of one VM.
#[derive(Debug)]
pub struct RasEngine {
    config: RasConfig,
    policy: PolicyConfig,
    sources: ErrorSources,
    poison: PoisonRegistry,
    storm: StormTracker,
    counters: RasCounters,
    num_vcpus: u32,
    initialized: bool,
    stopped: Option<StopReason>,
    tampered_seen: u64,
}

impl RasEngine {
    /// An engine for a VM with `num_vcpus` vCPUs whose error-source region
    /// is at guest-physical `region_base` (4 KiB aligned, outside RAM; size
    /// [`RegionLayout::total_len`] of [`RasEngine::layout`]). With
    /// `sea_sources=per_vcpu` there is one synchronous source per vCPU,
    /// with `shared` a single one.
    pub fn new(config: RasConfig, region_base: u64, num_vcpus: u32) -> Result<Self, EngineError> {
        config.validate()?;
        if num_vcpus == 0 {
            return Err(EngineError::NoVcpus);
        }
        let num_sync = match config.sea_sources {
            SeaSources::PerVcpu => num_vcpus,
            SeaSources::Shared => 1,
        };
        let layout = RegionLayout::new(region_base, num_sync, config.block_size)?;
        Ok(Self {
            policy: PolicyConfig::from(&config),
            sources: ErrorSources::new(layout, config.queue_depth as usize),
            poison: PoisonRegistry::new(config.max_poisoned as usize),
            storm: StormTracker::new(),
            counters: RasCounters::default(),
            num_vcpus,
            initialized: false,
            stopped: None,
            tampered_seen: 0,
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

    /// Number of vCPUs the engine was built for.
    pub fn num_vcpus(&self) -> u32 {
        self.num_vcpus
    }

    /// How the guest is notified, per the configuration: SEA for the
    /// synchronous sources; GPIO or POLLED for the asynchronous one (with
    /// `async=off` the source is still described, as GPIO, but never
    /// written or signalled).
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
    pub fn init<M: GuestMemory>(&mut self, mem: &M) -> Result<(), EngineError> {
        self.sources.init(mem)?;
        self.initialized = true;
        Ok(())
    }

    /// Known poisoned memory (to skip when reading guest RAM).
    pub fn poison(&self) -> &PoisonRegistry {
        &self.poison
    }

    /// Whether records wait behind unacknowledged ones: the VMM should
    /// then call [`RasEngine::service`] again later (periodically), since
    /// a guest acknowledges without any exit.
    pub fn has_queued(&self) -> bool {
        self.sources
            .layout()
            .sources()
            .any(|s| self.sources.queue_len(s).is_ok_and(|n| n > 0))
    }

    /// Running totals.
    pub fn counters(&self) -> RasCounters {
        self.counters
    }

    /// The reason the engine last asked the VMM to stop the VM, if any
    /// (cleared by [`RasEngine::reset`]).
    pub fn stopped(&self) -> Option<&StopReason> {
        self.stopped.as_ref()
    }

    /// The decision the policy would take for `report` now, without
    /// applying it.
    pub fn decide(&self, report: &ErrorReport) -> Decision {
        policy::decide(
            report,
            &PolicyState {
                poison: &self.poison,
                storm: &self.storm,
            },
            &self.policy,
        )
    }

    /// Checks, before [`RasEngine::handle`], that an injected report can be
    /// delivered as asked: its vCPU exists, its source is enabled and its
    /// record fits the error status block. A request that fails here must
    /// change nothing, so an operator's typo is refused instead of
    /// becoming a `record-failed` event.
    pub fn check_injection(&self, report: &ErrorReport) -> Result<(), EngineError> {
        let ErrorCause::Injected { target, .. } = &report.cause else {
            return Err(EngineError::Injection("not an injected error".to_string()));
        };
        match target {
            InjectTarget::Sync { vcpu } if *vcpu >= self.num_vcpus => {
                return Err(EngineError::Injection(format!(
                    "vCPU {vcpu} does not exist (the VM has {} vCPUs)",
                    self.num_vcpus
                )));
            }
            InjectTarget::Async if self.config.async_mode == AsyncMode::Off => {
                return Err(EngineError::Injection(
                    "the asynchronous error source is disabled (--ras async=off)".to_string(),
                ));
            }
            _ => {}
        }
        let block_len = self.layout().block_len() as usize;
        for action in self.decide(report).actions {
            if let Action::Record { record, .. } = action {
                let len = record.to_status_block().encoded_len();
                if len > block_len {
                    return Err(EngineError::Injection(format!(
                        "the record takes {len} bytes, more than the {block_len}-byte error \
                         status block (--ras block_size)"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Handles one error report: decides, then applies each action in
    /// order. Failures of individual actions (a record that cannot be
    /// written, an abort that cannot be injected) are reported as events
    /// and do not stop the remaining actions; an abort that cannot be
    /// injected stops the VM (the vCPU would fault again forever).
    pub fn handle<M: GuestMemory>(
        &mut self,
        report: &ErrorReport,
        mem: &M,
        platform: &mut dyn Platform,
    ) -> Result<Outcome, EngineError> {
        if !self.initialized {
            return Err(EngineError::NotInitialized);
        }
        let mut out = Outcome::default();
        self.emit(platform, &mut out, report_event(report));
        let decision = self.decide(report);
        if let Some(o) = &decision.observe {
            self.storm.observe(o, &self.policy);
        }
        let mut last_async: Option<Delivery> = None;
        let mut pending_stop: Option<StopReason> = None;
        for action in &decision.actions {
            match action {
                Action::MarkPoisoned(g) => {
                    if let Some(stop) = self.mark_poisoned(*g, platform, &mut out) {
                        pending_stop.get_or_insert(stop);
                    }
                }
                Action::Record { source, record } => {
                    let d = self.record(mem, *source, record, platform, &mut out);
                    if *source == SourceTarget::Async {
                        last_async = d;
                    }
                }
                Action::InjectAbort { vcpu, kind, far } => {
                    match platform.inject_abort(*vcpu, *kind, *far) {
                        Ok(()) => self.emit(
                            platform,
                            &mut out,
                            RasEvent::AbortInjected {
                                vcpu: *vcpu,
                                kind: *kind,
                                far: *far,
                            },
                        ),
                        Err(error) => {
                            self.emit(
                                platform,
                                &mut out,
                                RasEvent::AbortFailed { vcpu: *vcpu, error },
                            );
                            pending_stop.get_or_insert(StopReason::AbortFailed { vcpu: *vcpu });
                        }
                    }
                }
                Action::NotifyAsync => {
                    // Signal only a record now in the block: one that waits
                    // in the queue is signalled when `service` writes it; a
                    // dropped or failed one never is.
                    if last_async.is_some_and(|d| d.must_notify()) {
                        self.notify(platform, &mut out);
                    }
                }
                Action::StopVm { reason } => {
                    pending_stop.get_or_insert(reason.clone());
                }
                Action::Ignore { reason } => {
                    self.emit(platform, &mut out, RasEvent::Ignored { reason: *reason });
                }
            }
        }
        if let Some(reason) = pending_stop {
            self.stop(reason, platform, &mut out);
        }
        self.check_tampered(platform, &mut out);
        out.actions = decision.actions;
        Ok(out)
    }

    /// Services the error sources after the guest acknowledged records
    /// (call it when the guest writes a read-ack register, or
    /// periodically): restores tampered registers, writes the next queued
    /// record into each source that became free, and signals the
    /// asynchronous source for each one written there. Returns the events.
    pub fn service<M: GuestMemory>(
        &mut self,
        mem: &M,
        platform: &mut dyn Platform,
    ) -> Result<Vec<RasEvent>, EngineError> {
        if !self.initialized {
            return Err(EngineError::NotInitialized);
        }
        let mut out = Outcome::default();
        for (source, delivery) in self.sources.service(mem)? {
            if !delivery.must_notify() {
                continue;
            }
            let target = self.target_of(source);
            self.emit(
                platform,
                &mut out,
                RasEvent::QueuedRecordWritten { source: target },
            );
            if target == SourceTarget::Async && self.config.async_mode == AsyncMode::Gpio {
                self.notify(platform, &mut out);
            }
        }
        self.check_tampered(platform, &mut out);
        Ok(out.events)
    }

    /// Guest reset: empties the poison registry and returns its granules,
    /// which the VMM must repair (remap anonymous memory, hole-punch file
    /// memory) before the guest runs again; re-initializes the error-source
    /// region and forgets the storm history.
    pub fn reset<M: GuestMemory>(
        &mut self,
        mem: &M,
        platform: &mut dyn Platform,
    ) -> Result<Vec<GpaGranule>, EngineError> {
        let repaired = self.poison.take_all();
        let mut out = Outcome::default();
        for g in &repaired {
            self.emit(platform, &mut out, RasEvent::PoisonRepaired { granule: *g });
        }
        self.storm.clear();
        self.stopped = None;
        self.init(mem)?;
        Ok(repaired)
    }

    /// The state to save in a snapshot.
    pub fn snapshot(&self) -> RasSnapshot {
        RasSnapshot {
            config: self.config.to_option_string(),
            poison: self.poison.clone(),
            counters: self.counters,
        }
    }

    /// Restores a snapshot taken by an engine with the same configuration,
    /// on the restored guest memory (which holds the error-source region).
    /// Records the guest had not yet acknowledged (ack register 0 and a
    /// valid status block) are re-delivered after the region is
    /// re-initialized; anything else in the region is reset. Do not call
    /// [`RasEngine::init`] after a restore.
    pub fn restore<M: GuestMemory>(
        &mut self,
        snapshot: RasSnapshot,
        mem: &M,
    ) -> Result<(), EngineError> {
        let running = self.config.to_option_string();
        if snapshot.config != running {
            return Err(EngineError::ConfigMismatch {
                snapshot: snapshot.config,
                running,
            });
        }
        if snapshot.poison.limit() != self.config.max_poisoned as usize {
            return Err(EngineError::ConfigMismatch {
                snapshot: format!("max_poisoned={}", snapshot.poison.limit()),
                running,
            });
        }
        let in_flight = self.in_flight_records(mem)?;
        self.sources.init(mem)?;
        for (source, block) in in_flight {
            self.sources.submit(mem, source, &block)?;
        }
        self.poison = snapshot.poison;
        self.counters = snapshot.counters;
        self.storm.clear();
        self.stopped = None;
        self.initialized = true;
        Ok(())
    }

    /// Valid records written but not acknowledged, per source. The block
    /// contents are guest-writable: they are decoded and re-encoded, never
    /// used as addresses.
    fn in_flight_records<M: GuestMemory>(
        &self,
        mem: &M,
    ) -> Result<Vec<(SourceId, StatusBlock)>, EngineError> {
        let layout = *self.sources.layout();
        let mut buf = vec![0u8; layout.block_len() as usize];
        let mut out = Vec::new();
        for s in layout.sources() {
            if self.sources.is_free(mem, s)? {
                continue;
            }
            let addr = layout.block(s)?;
            mem.read_slice(&mut buf, GuestAddress(addr))
                .map_err(|source| ErrorSourceError::Memory { addr, source })?;
            if let Ok(block) = StatusBlock::decode(&buf)
                && !block.entries.is_empty()
            {
                out.push((s, block));
            }
        }
        Ok(out)
    }

    fn emit(&mut self, platform: &mut dyn Platform, out: &mut Outcome, event: RasEvent) {
        self.counters.count(&event);
        platform.emit(&event);
        out.events.push(event);
    }

    fn notify(&mut self, platform: &mut dyn Platform, out: &mut Outcome) {
        let event = match platform.notify_async() {
            Ok(()) => RasEvent::AsyncNotified,
            Err(error) => RasEvent::NotifyFailed { error },
        };
        self.emit(platform, out, event);
    }

    fn stop(&mut self, reason: StopReason, platform: &mut dyn Platform, out: &mut Outcome) {
        platform.stop_vm(&reason);
        self.stopped = Some(reason.clone());
        out.stopped = Some(reason.clone());
        self.emit(platform, out, RasEvent::VmStopped { reason });
    }

    /// Adds poison; returns a stop reason when the registry is full.
    fn mark_poisoned(
        &mut self,
        granule: GpaGranule,
        platform: &mut dyn Platform,
        out: &mut Outcome,
    ) -> Option<StopReason> {
        match self.poison.insert(granule) {
            Ok(Insertion::New { absorbed }) => {
                let event = RasEvent::PagePoisoned {
                    granule,
                    absorbed: absorbed.len(),
                };
                self.emit(platform, out, event);
                None
            }
            Ok(Insertion::Duplicate { .. }) => None,
            Err(_) => {
                let limit = self.poison.limit();
                self.emit(platform, out, RasEvent::PoisonListFull { granule, limit });
                // Untracked poison would be read by a snapshot or migration
                // (SIGBUS in the VMM) and not repaired at reset.
                Some(StopReason::PoisonLimit { limit })
            }
        }
    }

    fn source_of(&self, target: SourceTarget) -> Option<SourceId> {
        let layout = self.sources.layout();
        match target {
            SourceTarget::Async => Some(layout.async_source()),
            SourceTarget::Sync { vcpu } => match self.config.sea_sources {
                SeaSources::PerVcpu => layout.sync_source(vcpu),
                SeaSources::Shared => (vcpu < self.num_vcpus)
                    .then(|| layout.sync_source(0))
                    .flatten(),
            },
        }
    }

    fn target_of(&self, source: SourceId) -> SourceTarget {
        match self.sources.layout().kind(source) {
            Some(SourceKind::Sync { vcpu }) => SourceTarget::Sync { vcpu },
            _ => SourceTarget::Async,
        }
    }

    fn record<M: GuestMemory>(
        &mut self,
        mem: &M,
        target: SourceTarget,
        record: &CperRecord,
        platform: &mut dyn Platform,
        out: &mut Outcome,
    ) -> Option<Delivery> {
        let delivery = match self.source_of(target) {
            Some(source) => self
                .sources
                .submit(mem, source, &record.to_status_block())
                .map_err(|e| e.to_string()),
            None => Err(format!("No error source for {target}")),
        };
        let d = match delivery {
            Ok(d) => d,
            Err(error) => {
                let event = RasEvent::RecordFailed {
                    source: target,
                    error,
                };
                self.emit(platform, out, event);
                return None;
            }
        };
        if matches!(d, Delivery::WroteOlderQueued { .. }) {
            let event = RasEvent::QueuedRecordWritten { source: target };
            self.emit(platform, out, event);
        }
        let event = match d {
            Delivery::Written => RasEvent::RecordWritten {
                source: target,
                granule: record.granule(),
                severity: record.severity,
            },
            Delivery::WroteOlderQueued { depth } | Delivery::Queued { depth } => {
                RasEvent::RecordQueued {
                    source: target,
                    depth,
                }
            }
            Delivery::Dropped => RasEvent::RecordDropped {
                source: target,
                granule: record.granule(),
            },
        };
        self.emit(platform, out, event);
        Some(d)
    }

    fn check_tampered(&mut self, platform: &mut dyn Platform, out: &mut Outcome) {
        let total = self.sources.totals().tampered;
        if total > self.tampered_seen {
            self.tampered_seen = total;
            self.emit(platform, out, RasEvent::RegionTampered { total });
        }
    }
}

/// The event that announces a report.
fn report_event(report: &ErrorReport) -> RasEvent {
    match &report.cause {
        ErrorCause::SyncConsumption {
            vcpu,
            origin: SyncOrigin::ArmSeaExit,
            granule,
            gva,
            ..
        } => RasEvent::SeaExit {
            vcpu: *vcpu,
            granule: *granule,
            gva: *gva,
        },
        ErrorCause::SyncConsumption {
            vcpu,
            origin: SyncOrigin::Sigbus,
            granule,
            ..
        } => RasEvent::SigbusAr {
            vcpu: *vcpu,
            granule: *granule,
        },
        ErrorCause::HostActionOptional { granule } => RasEvent::SigbusAo { granule: *granule },
        ErrorCause::Injected { target, payload } => RasEvent::InjectRequested {
            target: match target {
                InjectTarget::Sync { vcpu } => SourceTarget::Sync { vcpu: *vcpu },
                InjectTarget::Async => SourceTarget::Async,
            },
            section: match payload {
                InjectPayload::Memory { .. } => "memory",
                InjectPayload::ArmProcessor { .. } => "arm-processor",
                InjectPayload::Raw { .. } => "raw",
            },
        },
    }
}
