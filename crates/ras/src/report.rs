// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! Error reports: what the edges of a VMM (the `SIGBUS` handler, the
//! `KVM_EXIT_ARM_SEA` exit, the injection API) tell the engine. Plain data.

use serde::{Deserialize, Serialize};

use crate::cper::DataEntry;
use crate::error_source::SourceTarget;
use crate::granule::GpaGranule;

/// Where a consumption was learnt from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Origin {
    /// `SIGBUS` `BUS_MCEERR_AR` on the vCPU thread: the host's own error
    /// handling claimed the error (or the page was already poisoned).
    Sigbus,
    /// `KVM_EXIT_ARM_SEA` (Linux 6.19+): a synchronous external abort the
    /// host did not claim.
    SeaExit,
}

/// Who found memory lost before anyone consumed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FoundBy {
    /// The host kernel: `SIGBUS` `BUS_MCEERR_AO` (early kill).
    HostSignal,
    /// The VMM: the kernel refused its copy of guest memory (a snapshot,
    /// a migration, a device's I/O: `EFAULT`, no signal) and the VMM found
    /// the page poisoned.
    VmmCopy,
}

/// The cause of an error report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCause {
    /// A vCPU consumed poisoned memory: it must not continue past the
    /// faulting instruction without taking an abort.
    Consumed {
        /// vCPU index.
        vcpu: u32,
        /// `SIGBUS` or exit 41.
        origin: Origin,
        /// The lost guest-physical granule, when known (always on the
        /// `SIGBUS` path; on exit 41 only with the GPA-valid flag).
        granule: Option<GpaGranule>,
        /// The 4 KiB page the vCPU accessed, inside `granule`, when the
        /// host said which (a `SIGBUS`'s `si_addr`, an exit's address): the
        /// record names it, since that is the page a guest acts on.
        page: Option<GpaGranule>,
        /// Faulting guest virtual address, when valid (exit 41 with
        /// `ESR_ELx.FnV == 0`), for events only.
        gva: Option<u64>,
    },
    /// Guest memory failed before anyone consumed it: the host announced
    /// it (`SIGBUS` `BUS_MCEERR_AO` after the early-kill opt-in), or the
    /// VMM found it when the kernel refused a copy of guest memory.
    Announced {
        /// The lost granule.
        granule: GpaGranule,
        /// Who found it (the decision is the same; the event differs).
        found_by: FoundBy,
    },
    /// An operator or a test asked for an error to be reported
    /// ([`crate::inject::InjectRequest`]). A simulation: nothing is marked
    /// poisoned.
    Injected {
        /// The source that reports it; a synchronous one also makes its
        /// vCPU take an abort.
        target: SourceTarget,
        /// The data entry to report (its timestamp is set when written).
        entry: DataEntry,
    },
}

/// One error report, as handed to [`crate::engine::RasEngine::handle`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    /// What happened.
    pub cause: ErrorCause,
    /// Wall-clock time, seconds since the Unix epoch (the engine has no
    /// clock; the edge supplies it). Written into the CPER data entry's
    /// timestamp.
    pub unix_time: u64,
    /// Monotonic time in milliseconds, used only for the storm and rate
    /// limits.
    pub monotonic_ms: u64,
}
