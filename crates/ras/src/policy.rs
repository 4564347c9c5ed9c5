// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! What to do about an error report: [`decide`], a pure function from the
//! report, the engine's state and the configuration to a list of
//! [`Action`]s.
//!
//! Rules:
//! - **Consumption with a guest-physical address** (`SIGBUS`
//!   `BUS_MCEERR_AR`, or `KVM_EXIT_ARM_SEA` with the GPA-valid flag): record
//!   a *recoverable* platform-memory error for the whole granule on the
//!   vCPU's synchronous source, mark the granule poisoned, make the vCPU
//!   take the abort. With [`SyncDelivery::MachineCheck`] (x86: the machine
//!   check carries the address, and there are no synchronous sources) the
//!   same without the record. A granule inside a known poisoned one is reported as
//!   the known, larger one (a guest told about 4 KiB of a lost 2 MiB page
//!   touches the rest and loops: QEMU's kdump loops).
//! - **Consumption without an address**: [`NoGpaPolicy`]: the abort without
//!   a record (the guest's `do_sea` then falls back to `arm64_notify_die`:
//!   SIGBUS for EL0, panic for EL1), or stop the VM.
//! - **Announced** (`SIGBUS` `BUS_MCEERR_AO`): mark poisoned, and unless
//!   `async=off` record on the asynchronous source, notifying it unless it
//!   is polled. Poison already known is ignored.
//! - **Injected**: record what was asked on the source asked; a synchronous
//!   target also takes an abort. A simulation: nothing is marked poisoned.
//!   A synchronous target without synchronous sources
//!   ([`SyncDelivery::MachineCheck`]) is ignored.
//! - **Storms**: more than `storm_limit` consumptions of the same granule
//!   (or, without an address, on the same vCPU) within `storm_window_ms`,
//!   or more than `rate_limit` host-reported errors in that window, stop
//!   the VM with a [`StopReason`] instead of re-injecting forever.
//! - The policy never reports [`Severity::Fatal`] itself: a guest panics on
//!   a fatal block ("GHES: Fatal hardware error") although it could isolate
//!   the page. Only an explicit injection can carry a fatal severity.
//!
//! What an abort looks like (data or instruction, which fault address) is
//! the hypervisor edge's business: the policy only says which vCPU takes
//! one.

use std::fmt;

use serde::{Deserialize, Serialize};
use vm_memory::GuestAddress;

use crate::config::{AsyncMode, NoGpaPolicy, RasConfig};
use crate::cper::{DataEntry, Section, Severity, StatusBlock, Timestamp};
use crate::error_source::SourceTarget;
use crate::granule::GpaGranule;
use crate::poison::PoisonRegistry;
use crate::report::{ErrorCause, ErrorReport};
use crate::storm::{Observation, StormKey, StormTracker};

/// How a vCPU that consumed poison learns where: not an option, but what
/// the architecture offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SyncDelivery {
    /// A CPER record in the vCPU's synchronous error source, then the
    /// abort (arm64: a GHESv2 source with SEA notification per vCPU, ACPI
    /// 6.5 18.3.2.9).
    #[default]
    ErrorSource,
    /// The abort itself names the page (x86: a machine check whose
    /// `IA32_MCi_ADDR` holds it): no synchronous source, no record.
    MachineCheck,
}

/// The knobs of the policy (a subset of [`RasConfig`], and how the
/// architecture delivers synchronous errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Consumption without a guest-physical address.
    pub no_gpa: NoGpaPolicy,
    /// Asynchronous source mode.
    pub async_mode: AsyncMode,
    /// Per-granule (per-vCPU without address) consumption limit; 0 = none.
    pub storm_limit: u32,
    /// Window of both limits, in milliseconds.
    pub storm_window_ms: u32,
    /// Limit on host-reported errors of any kind in the window; 0 = none.
    pub rate_limit: u32,
    /// How a consuming vCPU learns the address.
    pub sync: SyncDelivery,
}

impl From<&RasConfig> for PolicyConfig {
    fn from(c: &RasConfig) -> Self {
        Self {
            no_gpa: c.no_gpa,
            async_mode: c.async_mode,
            storm_limit: c.storm_limit,
            storm_window_ms: c.storm_window_ms,
            rate_limit: c.rate_limit,
            sync: SyncDelivery::ErrorSource,
        }
    }
}

/// Why the VM is stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A consumption without a guest-physical address, with `no_gpa=stop`.
    NoGpa {
        /// vCPU index.
        vcpu: u32,
    },
    /// The same granule (or, without an address, the same vCPU) kept
    /// consuming poison: the guest does not contain it.
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
    /// A vCPU consumed poison and the VMM could not make it take the abort
    /// (it would fault again forever).
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
                granule: Some(g),
                count,
                window_ms,
            } => write!(
                f,
                "Poisoned memory at {g} consumed {count} times in {window_ms} ms (last by vCPU {vcpu})"
            ),
            StopReason::Storm {
                vcpu,
                granule: None,
                count,
                window_ms,
            } => write!(
                f,
                "vCPU {vcpu} consumed poisoned memory at an unknown address {count} times in {window_ms} ms"
            ),
            StopReason::RateLimit { count, window_ms } => {
                write!(f, "{count} memory errors in {window_ms} ms")
            }
            StopReason::PoisonLimit { limit } => {
                write!(f, "More than {limit} poisoned memory granules")
            }
            StopReason::AbortFailed { vcpu } => {
                write!(f, "Could not make vCPU {vcpu} take the abort")
            }
        }
    }
}

/// Why a report leads to nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IgnoreReason {
    /// Announced poison that is already known.
    AlreadyPoisoned {
        /// The known granule.
        granule: GpaGranule,
    },
    /// An injection for the asynchronous source with `async=off`.
    AsyncDisabled,
    /// An injection for a synchronous source the VM does not have
    /// ([`SyncDelivery::MachineCheck`]).
    NoSyncSource,
}

impl IgnoreReason {
    /// Short machine-readable name.
    pub fn name(&self) -> &'static str {
        match self {
            IgnoreReason::AlreadyPoisoned { .. } => "already-poisoned",
            IgnoreReason::AsyncDisabled => "async-disabled",
            IgnoreReason::NoSyncSource => "no-sync-source",
        }
    }
}

/// One step for the engine, applied in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Add the granule to the poison registry.
    MarkPoisoned(GpaGranule),
    /// Write a Generic Error Status Block into a source.
    Record {
        /// The source.
        target: SourceTarget,
        /// The block (one data entry, timestamped).
        block: StatusBlock,
        /// The memory it reports, when it is a memory error (for events).
        granule: Option<GpaGranule>,
    },
    /// The vCPU must take a synchronous external abort before it runs on.
    InjectAbort {
        /// vCPU index.
        vcpu: u32,
    },
    /// Signal the asynchronous source (GED interrupt -> PNP0C33 notify).
    NotifyAsync,
    /// Stop the VM.
    StopVm(StopReason),
    /// Nothing to do (reported as an event).
    Ignore(IgnoreReason),
}

/// What [`decide`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Steps, in order.
    pub actions: Vec<Action>,
    /// To record in the storm tracker (host-reported errors only).
    pub observe: Option<Observation>,
}

/// The state [`decide`] reads.
#[derive(Clone, Copy, Debug)]
pub struct PolicyState<'a> {
    /// Known poisoned memory.
    pub poison: &'a PoisonRegistry,
    /// Recent host-reported errors.
    pub storm: &'a StormTracker,
}

/// Decides what to do about `report`. Pure: the same inputs give the same
/// decision. See the module documentation for the rules.
pub fn decide(report: &ErrorReport, state: &PolicyState<'_>, cfg: &PolicyConfig) -> Decision {
    let now = report.monotonic_ms;
    match &report.cause {
        ErrorCause::Consumed {
            vcpu,
            granule,
            page,
            ..
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
            let new_poison = granule.filter(|_| known.is_none());
            if let Some(reason) = storm_stop(state, cfg, now, key, Some(vcpu)) {
                actions.extend(new_poison.map(Action::MarkPoisoned));
                actions.push(Action::StopVm(reason));
                return Decision { actions, observe };
            }
            match known.or(*granule) {
                Some(g) => {
                    // The record names the accessed page inside a larger
                    // loss: Linux acts on the record's address only.
                    let named = page.filter(|p| g.contains(p.base()) && p.len() < g.len());
                    let record = named.unwrap_or(g);
                    if cfg.sync == SyncDelivery::ErrorSource {
                        actions.push(memory_record(SourceTarget::Sync { vcpu }, record, report));
                    }
                    actions.extend(new_poison.map(Action::MarkPoisoned));
                    actions.push(Action::InjectAbort { vcpu });
                }
                None => actions.push(match cfg.no_gpa {
                    NoGpaPolicy::Inject => Action::InjectAbort { vcpu },
                    NoGpaPolicy::Stop => Action::StopVm(StopReason::NoGpa { vcpu }),
                }),
            }
            Decision { actions, observe }
        }
        ErrorCause::Announced { granule, .. } => {
            let key = StormKey::RateOnly;
            let observe = Some(Observation { at_ms: now, key });
            let known = state.poison.covering(granule);
            let mut actions = Vec::new();
            if let Some(reason) = storm_stop(state, cfg, now, key, None) {
                if known.is_none() {
                    actions.push(Action::MarkPoisoned(*granule));
                }
                actions.push(Action::StopVm(reason));
            } else if let Some(existing) = known {
                actions.push(Action::Ignore(IgnoreReason::AlreadyPoisoned {
                    granule: existing,
                }));
            } else {
                if cfg.async_mode != AsyncMode::Off {
                    actions.push(memory_record(SourceTarget::Async, *granule, report));
                }
                actions.push(Action::MarkPoisoned(*granule));
                if cfg.async_mode == AsyncMode::Gpio {
                    actions.push(Action::NotifyAsync);
                }
            }
            Decision { actions, observe }
        }
        ErrorCause::Injected { target, entry } => {
            let record = Action::Record {
                target: *target,
                block: StatusBlock::new().with_entry(
                    entry
                        .clone()
                        .with_timestamp(Timestamp::from_unix(report.unix_time)),
                ),
                granule: reported_granule(entry),
            };
            let actions = match (target, cfg.async_mode) {
                (SourceTarget::Sync { .. }, _) if cfg.sync == SyncDelivery::MachineCheck => {
                    vec![Action::Ignore(IgnoreReason::NoSyncSource)]
                }
                (SourceTarget::Sync { vcpu }, _) => {
                    vec![record, Action::InjectAbort { vcpu: *vcpu }]
                }
                (SourceTarget::Async, AsyncMode::Off) => {
                    vec![Action::Ignore(IgnoreReason::AsyncDisabled)]
                }
                (SourceTarget::Async, AsyncMode::Polled) => vec![record],
                (SourceTarget::Async, AsyncMode::Gpio) => vec![record, Action::NotifyAsync],
            };
            Decision {
                actions,
                observe: None,
            }
        }
    }
}

/// A recoverable platform-memory error for `granule` on `target`.
fn memory_record(target: SourceTarget, granule: GpaGranule, report: &ErrorReport) -> Action {
    Action::Record {
        target,
        block: StatusBlock::memory_error(&granule, Severity::Recoverable, report.unix_time),
        granule: Some(granule),
    }
}

/// The memory range a memory-error entry reports (physical address and
/// mask), when it is one granule.
fn reported_granule(entry: &DataEntry) -> Option<GpaGranule> {
    let Section::Memory(m) = &entry.section else {
        return None;
    };
    let pa = m.valid_physical_address()?;
    let mask = m.valid_physical_address_mask()?;
    GpaGranule::from_range(GuestAddress(pa & mask), (!mask).checked_add(1)?)
}

/// The storm or rate stop for a host-reported error at `now` counted under
/// `key`, if a limit is passed (this report included).
fn storm_stop(
    state: &PolicyState<'_>,
    cfg: &PolicyConfig,
    now: u64,
    key: StormKey,
    vcpu: Option<u32>,
) -> Option<StopReason> {
    let window_ms = cfg.storm_window_ms;
    if cfg.storm_limit != 0
        && let Some(vcpu) = vcpu
    {
        let count = state
            .storm
            .count(Some(&key), now, window_ms)
            .saturating_add(1);
        if count > cfg.storm_limit {
            return Some(StopReason::Storm {
                vcpu,
                granule: match key {
                    StormKey::Granule(g) => Some(g),
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
