// SPDX-License-Identifier: Apache-2.0
//! Error reports: what the edges of a VMM (signal handler, KVM exit, API)
//! tell the engine. Plain data, no behaviour beyond validation helpers.

use serde::{Deserialize, Serialize};

use crate::cper::{ArmProcessorSection, Guid, Severity};

/// A naturally aligned, power-of-two sized range of guest-physical memory:
/// the unit in which memory is lost (a 4 KiB page, a 2 MiB or 1 GiB huge
/// page). `shift` is log2 of the size, as in `si_addr_lsb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GpaGranule {
    base: u64,
    shift: u8,
}

/// Smallest and largest granule the engine accepts (4 KiB .. 16 GiB).
pub const MIN_GRANULE_SHIFT: u8 = 12;
/// See [`MIN_GRANULE_SHIFT`].
pub const MAX_GRANULE_SHIFT: u8 = 34;

impl GpaGranule {
    /// The granule of size `1 << shift` that contains `gpa` (the address is
    /// rounded down, as `si_addr` must be). `None` if `shift` is out of range.
    pub fn containing(gpa: u64, shift: u8) -> Option<Self> {
        if !(MIN_GRANULE_SHIFT..=MAX_GRANULE_SHIFT).contains(&shift) {
            return None;
        }
        Some(Self {
            base: gpa & !((1u64 << shift) - 1),
            shift,
        })
    }

    /// First guest-physical address of the granule.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// log2 of the size.
    pub fn shift(&self) -> u8 {
        self.shift
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        1u64 << self.shift
    }

    /// Always false: a granule is never empty (kept for clippy's
    /// `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Last guest-physical address of the granule (inclusive).
    pub fn last(&self) -> u64 {
        self.base + (self.len() - 1)
    }

    /// Whether `gpa` lies inside the granule.
    pub fn contains(&self, gpa: u64) -> bool {
        gpa >= self.base && gpa <= self.last()
    }

    /// The CPER Platform Memory Error "physical address mask" for this
    /// granule (UEFI 2.10 N.2.5): the bits that identify the lost range.
    pub fn pa_mask(&self) -> u64 {
        !(self.len() - 1)
    }
}

/// Which kind of synchronous abort the guest took (ESR_ELx.EC class).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AbortKind {
    /// Data abort (EC 0x24/0x25).
    Data,
    /// Instruction abort (EC 0x20/0x21).
    Instruction,
    /// Not known (the SIGBUS path: the host does not say); injected as a
    /// data abort.
    Unknown,
}

/// Where a synchronous consumption was learnt from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncOrigin {
    /// SIGBUS `BUS_MCEERR_AR` on the vCPU thread (host firmware/APEI claimed
    /// the error, or the page was already poisoned).
    Sigbus,
    /// `KVM_EXIT_ARM_SEA` (Linux 6.19+): an SEA the host did not claim.
    ArmSeaExit,
}

/// What an operator or a test asks to inject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InjectPayload {
    /// A platform memory error at `granule`.
    Memory {
        /// The range to report.
        granule: GpaGranule,
        /// CPER severity to report.
        severity: Severity,
        /// Also set the "threshold exceeded" data-entry flag (with a
        /// corrected severity, Linux soft-offlines the page).
        threshold_exceeded: bool,
    },
    /// An ARM processor error section.
    ArmProcessor {
        /// The section.
        section: ArmProcessorSection,
        /// CPER severity to report (the section has no severity field of
        /// its own; Linux acts on a cache error with a physical address
        /// only when it is recoverable).
        severity: Severity,
    },
    /// A raw section: any section-type GUID and body bytes.
    Raw {
        /// Section type.
        section_type: Guid,
        /// CPER severity to report.
        severity: Severity,
        /// Section body.
        data: Vec<u8>,
    },
}

/// Which error source an injected error goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InjectTarget {
    /// The synchronous (SEA) source of this vCPU, with an abort injected
    /// into it, as if it had consumed the error.
    Sync {
        /// vCPU index.
        vcpu: u32,
    },
    /// The asynchronous source (GED/GPIO or polled).
    Async,
}

/// The cause of an error report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCause {
    /// A vCPU consumed poisoned memory and must not continue past the
    /// faulting instruction without an abort.
    SyncConsumption {
        /// vCPU index.
        vcpu: u32,
        /// SIGBUS or KVM exit.
        origin: SyncOrigin,
        /// Data or instruction abort, if known.
        abort: AbortKind,
        /// The poisoned guest-physical granule, when known (always on the
        /// SIGBUS path; on exit 41 only when the GPA-valid flag is set).
        granule: Option<GpaGranule>,
        /// Faulting guest virtual address, when valid (exit 41 with
        /// ESR.FnV == 0).
        gva: Option<u64>,
    },
    /// The host announced, without consumption, that guest memory failed
    /// (SIGBUS `BUS_MCEERR_AO` after early-kill opt-in).
    HostActionOptional {
        /// The lost granule.
        granule: GpaGranule,
    },
    /// An operator or test asked for an error to be reported.
    Injected {
        /// Where to report it.
        target: InjectTarget,
        /// What to report.
        payload: InjectPayload,
    },
}

/// One error report, as handed to [`crate::engine::RasEngine::handle`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    /// What happened.
    pub cause: ErrorCause,
    /// Wall-clock time of the report, seconds since the Unix epoch (the
    /// engine has no clock; the edge supplies it). Written into the CPER
    /// data entry timestamp.
    pub unix_time: u64,
    /// Monotonic time in milliseconds, used only for rate (storm) limits.
    pub monotonic_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granule_rounds_down_and_masks() {
        let g = GpaGranule::containing(0x4020_1234, 21).unwrap();
        assert_eq!(g.base(), 0x4020_0000);
        assert_eq!(g.len(), 2 << 20);
        assert_eq!(g.pa_mask(), 0xffff_ffff_ffe0_0000);
        assert!(g.contains(0x403f_ffff));
        assert!(!g.contains(0x4040_0000));
        assert_eq!(GpaGranule::containing(0x1000, 11), None);
        assert_eq!(GpaGranule::containing(0x1000, 35), None);
    }
}
