// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! Operator-requested errors (drills): [`InjectRequest`], the body of a
//! VMM's `vm.inject-error` API request, its conversion into an
//! [`ErrorReport`], and [`PendingInjections`], where a synchronous one waits
//! for the thread of its vCPU.
//!
//! The command-line form (`ch-remote inject-error type=memory,gpa=...`)
//! uses the same field names, words ([`FromStr`](std::str::FromStr) of
//! each field's type, [`parse_severity`]), numbers and sizes as `--ras`
//! ([`parse_number`](crate::config::parse_number): decimal or `0x`
//! hexadecimal; [`parse_size`](crate::config::parse_size) for `granule`:
//! such a number, then optionally `K`, `M` or `G`).
//!
//! Injected errors are simulations: the engine reports them to the guest
//! exactly as asked and never marks memory poisoned.
//!
//! # Synchronous drills do not crash a healthy guest
//! A synchronous injection makes its vCPU take an external abort, as if it
//! had consumed the error. Linux recovers from that only when the vCPU was
//! running user code (`do_sea()` lets APEI claim an abort from EL0 only; at
//! EL1 it calls `arm64_notify_die()` and the kernel dies), and an idle vCPU
//! sits in the kernel. So by default ([`VcpuMode::User`]) the injection
//! waits, up to a deadline, until its vCPU is interrupted in user mode;
//! until it is delivered nothing is written, and if the deadline passes it
//! is refused. [`VcpuMode::Any`] delivers wherever the vCPU is, for
//! testing the guest's kernel-mode handling (real hardware can do that to
//! it too).

use std::mem::take;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use vm_memory::GuestAddress;

use crate::config::{InvalidNumber, InvalidWord};
use crate::cper::{
    ArmErrorTypes, ArmProcessorSection, DataEntry, EntryFlags, Guid, MemoryErrorSection,
    RawSection, Section, Severity,
};
use crate::error_source::SourceTarget;
use crate::granule::{GpaGranule, MAX_GRANULE_SHIFT, MIN_GRANULE_SHIFT};
use crate::report::{ErrorCause, ErrorReport};

/// Largest raw section body accepted, in bytes (the engine further refuses
/// a record larger than the error status block).
pub const MAX_RAW_DATA: usize = 4096;

/// Default granule of a memory injection (4 KiB).
pub const DEFAULT_GRANULE: u64 = 1 << MIN_GRANULE_SHIFT;

/// What kind of error section to report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectKind {
    /// A Platform Memory Error section (UEFI 2.10 N.2.5) at `gpa`.
    #[default]
    Memory,
    /// An ARM Processor Error section (UEFI 2.10 N.2.4.4).
    ArmProcessor,
    /// Any section: `section_type` and the hex-encoded body `data`.
    Raw,
}
crate::option_words!(InjectKind, InjectError, "type", "memory|arm_processor|raw",
    "memory" => InjectKind::Memory, "arm_processor" => InjectKind::ArmProcessor, "raw" => InjectKind::Raw);

/// Which kind of error source reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectSource {
    /// The asynchronous source (GED notification or polled): the guest
    /// handles it as a deferred error, nothing is interrupted.
    #[default]
    Async,
    /// The synchronous (SEA) source of `vcpu`, which also takes an external
    /// data abort as if it had consumed the error.
    Sync,
}
crate::option_words!(InjectSource, InjectError, "source", "async|sync", "async" => InjectSource::Async, "sync" => InjectSource::Sync);

/// Where the vCPU of a synchronous injection may be when it takes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VcpuMode {
    /// Only while it runs user code (EL0): the guest recovers by killing
    /// the process; waits for that, up to a deadline (see the module
    /// documentation).
    #[default]
    User,
    /// Wherever it is: in the kernel the guest does what it does on real
    /// hardware (Linux dies).
    Any,
}
crate::option_words!(VcpuMode, InjectError, "vcpu_mode", "user|any", "user" => VcpuMode::User, "any" => VcpuMode::Any);

/// ARM error-information type (one bit of the UEFI 2.10 N.2.4.4.1 bitmap).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectArmError {
    /// Cache error.
    #[default]
    Cache,
    /// TLB error.
    Tlb,
    /// Bus error.
    Bus,
    /// Micro-architectural error.
    MicroArch,
}
crate::option_words!(InjectArmError, InjectError, "arm_error", "cache|tlb|bus|micro_arch",
    "cache" => InjectArmError::Cache, "tlb" => InjectArmError::Tlb,
    "bus" => InjectArmError::Bus, "micro_arch" => InjectArmError::MicroArch);

impl From<InjectArmError> for ArmErrorTypes {
    fn from(e: InjectArmError) -> Self {
        match e {
            InjectArmError::Cache => ArmErrorTypes::CACHE,
            InjectArmError::Tlb => ArmErrorTypes::TLB,
            InjectArmError::Bus => ArmErrorTypes::BUS,
            InjectArmError::MicroArch => ArmErrorTypes::MICRO_ARCHITECTURAL,
        }
    }
}

/// An error to inject, as an operator or a test asks for it. Fields that
/// do not apply to `type` or `source` must be absent
/// ([`InjectRequest::to_report`] refuses them rather than ignore them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectRequest {
    /// Section kind.
    #[serde(rename = "type")]
    pub kind: InjectKind,
    /// Error source (default async).
    #[serde(default)]
    pub source: InjectSource,
    /// vCPU taking the abort (`source=sync` only; default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpu: Option<u32>,
    /// Where that vCPU may take it (`source=sync` only; default user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpu_mode: Option<VcpuMode>,
    /// CPER severity (default recoverable).
    #[serde(default)]
    pub severity: Severity,
    /// Memory: the guest-physical address in error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpa: Option<u64>,
    /// Memory: bytes lost around `gpa` (a power of two, 4 KiB..16 GiB;
    /// default 4 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granule: Option<u64>,
    /// Memory: set the "threshold exceeded" flag (with `corrected`, a Linux
    /// guest soft-offlines the page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_exceeded: Option<bool>,
    /// ARM processor: error type (default cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm_error: Option<InjectArmError>,
    /// ARM processor: MPIDR of the failing processor (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mpidr: Option<u64>,
    /// ARM processor: physical fault address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pa: Option<u64>,
    /// ARM processor: virtual fault address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub va: Option<u64>,
    /// Raw: section type GUID (`8-4-4-4-12`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_type: Option<String>,
    /// Raw: section body, hex digits (two per byte).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// The words of the `severity` field: [`Severity`]'s names.
pub const SEVERITY_WORDS: &str = "recoverable|fatal|corrected|informational";

/// The `severity` field's word, refused like the other fields' words
/// ([`InvalidWord`] naming the field; [`Severity`]'s own error, from the
/// CPER module, does not know the field).
pub fn parse_severity(text: &str) -> Result<Severity, InjectError> {
    text.parse().map_err(|_| {
        InvalidWord {
            key: "severity",
            value: text.chars().take(32).collect(),
            allowed: SEVERITY_WORDS,
        }
        .into()
    })
}

/// Why an injection request is refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum InjectError {
    /// A value that is not a number of its field.
    #[error(transparent)]
    InvalidNumber(#[from] InvalidNumber),
    /// A value that is not one of the allowed words.
    #[error(transparent)]
    InvalidWord(#[from] InvalidWord),
    /// A field required by the kind is missing.
    #[error("Inject-error type={kind} needs '{key}'")]
    Missing {
        /// Section kind.
        kind: InjectKind,
        /// Missing field.
        key: &'static str,
    },
    /// A field that does not apply to the kind or source.
    #[error("Inject-error field '{key}' does not apply to {context}")]
    NotApplicable {
        /// Offending field.
        key: &'static str,
        /// What it does not apply to.
        context: String,
    },
    /// The granule is not a power of two in range.
    #[error(
        "Invalid inject-error granule {0:#x} (a power of two, {min:#x}..={max:#x})",
        min = 1u64 << MIN_GRANULE_SHIFT,
        max = 1u64 << MAX_GRANULE_SHIFT
    )]
    BadGranule(u64),
    /// The section type is not a GUID.
    #[error("Invalid inject-error section_type '{0}' (expected 8-4-4-4-12 hex digits)")]
    BadGuid(String),
    /// The raw data has an odd number of digits.
    #[error("Invalid inject-error data: {0} hex digits (two per byte)")]
    OddHexLength(usize),
    /// The raw data holds something that is not a hex digit.
    #[error("Invalid inject-error data: not a hex digit at offset {0}")]
    NotHex(usize),
    /// The raw data is too long.
    #[error("Invalid inject-error data: {0} bytes (at most {MAX_RAW_DATA})")]
    DataTooLong(usize),
}

/// Hex digits (two per byte, either case) to bytes, at most
/// [`MAX_RAW_DATA`].
pub fn decode_hex(text: &str) -> Result<Vec<u8>, InjectError> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(InjectError::OddHexLength(digits.len()));
    }
    if digits.len() / 2 > MAX_RAW_DATA {
        return Err(InjectError::DataTooLong(digits.len() / 2));
    }
    let nibble = |i: usize| {
        char::from(digits[i])
            .to_digit(16)
            .map(|d| d as u8)
            .ok_or(InjectError::NotHex(i))
    };
    (0..digits.len())
        .step_by(2)
        .map(|i| Ok(nibble(i)? << 4 | nibble(i + 1)?))
        .collect()
}

impl InjectRequest {
    /// The fields given, by name (for "does not apply" checks).
    fn given(&self) -> [(&'static str, bool); 11] {
        [
            ("gpa", self.gpa.is_some()),
            ("granule", self.granule.is_some()),
            ("threshold_exceeded", self.threshold_exceeded.is_some()),
            ("arm_error", self.arm_error.is_some()),
            ("mpidr", self.mpidr.is_some()),
            ("pa", self.pa.is_some()),
            ("va", self.va.is_some()),
            ("section_type", self.section_type.is_some()),
            ("data", self.data.is_some()),
            ("vcpu", self.vcpu.is_some()),
            ("vcpu_mode", self.vcpu_mode.is_some()),
        ]
    }

    /// The fields `kind` takes.
    fn applicable(kind: InjectKind) -> &'static [&'static str] {
        match kind {
            InjectKind::Memory => &["gpa", "granule", "threshold_exceeded"],
            InjectKind::ArmProcessor => &["arm_error", "mpidr", "pa", "va"],
            InjectKind::Raw => &["section_type", "data"],
        }
    }

    /// The guest-physical range a memory injection names (for the VMM to
    /// check it is guest RAM), `None` for other kinds or a bad granule.
    pub fn memory_granule(&self) -> Option<GpaGranule> {
        let gpa = self.gpa.filter(|_| self.kind == InjectKind::Memory)?;
        granule(gpa, self.granule.unwrap_or(DEFAULT_GRANULE)).ok()
    }

    /// Where the vCPU of a synchronous injection may take it.
    pub fn vcpu_mode(&self) -> VcpuMode {
        self.vcpu_mode.unwrap_or_default()
    }

    /// Checks the request against itself and builds the report for
    /// [`crate::engine::RasEngine::handle`]. Whether the vCPU exists and
    /// the record fits is the engine's check
    /// ([`crate::engine::RasEngine::check_injection`]).
    pub fn to_report(&self, unix_time: u64, monotonic_ms: u64) -> Result<ErrorReport, InjectError> {
        for (key, given) in self.given() {
            if !given {
                continue;
            }
            if key == "vcpu" || key == "vcpu_mode" {
                if self.source != InjectSource::Sync {
                    return Err(InjectError::NotApplicable {
                        key,
                        context: "source=async".to_string(),
                    });
                }
            } else if !Self::applicable(self.kind).contains(&key) {
                return Err(InjectError::NotApplicable {
                    key,
                    context: format!("type={}", self.kind),
                });
            }
        }
        let target = match self.source {
            InjectSource::Async => SourceTarget::Async,
            InjectSource::Sync => SourceTarget::Sync {
                vcpu: self.vcpu.unwrap_or(0),
            },
        };
        let missing = |key| InjectError::Missing {
            kind: self.kind,
            key,
        };
        let mut flags = EntryFlags::PRIMARY;
        let section = match self.kind {
            InjectKind::Memory => {
                let gpa = self.gpa.ok_or_else(|| missing("gpa"))?;
                let g = granule(gpa, self.granule.unwrap_or(DEFAULT_GRANULE))?;
                if self.threshold_exceeded == Some(true) {
                    flags |= EntryFlags::THRESHOLD_EXCEEDED;
                }
                Section::Memory(MemoryErrorSection::for_granule(&g))
            }
            InjectKind::ArmProcessor => Section::ArmProcessor(ArmProcessorSection::single_error(
                self.mpidr.unwrap_or(0),
                0,
                self.arm_error.unwrap_or_default().into(),
                self.va,
                self.pa,
            )),
            InjectKind::Raw => {
                let text = self
                    .section_type
                    .as_deref()
                    .ok_or_else(|| missing("section_type"))?;
                let section_type: Guid = text
                    .parse()
                    .map_err(|_| InjectError::BadGuid(text.chars().take(64).collect()))?;
                let data = decode_hex(self.data.as_deref().ok_or_else(|| missing("data"))?)?;
                Section::Raw(RawSection::new(section_type, data))
            }
        };
        Ok(ErrorReport {
            cause: ErrorCause::Injected {
                target,
                entry: DataEntry::new(section, self.severity).with_flags(flags),
            },
            unix_time,
            monotonic_ms,
        })
    }
}

/// The granule of `len` bytes around `gpa`.
fn granule(gpa: u64, len: u64) -> Result<GpaGranule, InjectError> {
    u8::try_from(len.trailing_zeros())
        .ok()
        .filter(|_| len.is_power_of_two())
        .and_then(|shift| GpaGranule::containing(GuestAddress(gpa), shift))
        .ok_or(InjectError::BadGranule(len))
}

/// A synchronous injection waiting for the thread of its vCPU, with what
/// answers the requester (`R`: a channel, a callback).
#[derive(Debug)]
pub struct Pending<R> {
    /// The vCPU that must take it.
    pub vcpu: u32,
    /// The report to handle on that vCPU's thread.
    pub report: ErrorReport,
    /// Where the vCPU may be when it takes it.
    pub mode: VcpuMode,
    /// Monotonic time (ms) after which it is refused.
    pub deadline_ms: u64,
    /// Answers the requester, exactly once: whoever takes the entry out
    /// (the vCPU thread that delivers it, or the VMM thread that expires
    /// or cancels it) owns it.
    pub respond: R,
}

/// Synchronous injections waiting for their vCPUs, at most one per vCPU.
///
/// Each entry leaves the queue exactly once, under the queue's lock:
/// [`PendingInjections::take`] on the vCPU's thread, or
/// [`PendingInjections::expire`] / [`PendingInjections::drain`] on the VMM
/// thread. So a requester is answered exactly once even when its deadline
/// passes while the vCPU is taking it.
///
/// A vCPU thread asks [`PendingInjections::waiting`] after every return
/// from `KVM_RUN`: with nothing queued that is one atomic load, no lock.
#[derive(Debug)]
pub struct PendingInjections<R> {
    entries: Mutex<Vec<Pending<R>>>,
    /// Entries queued (updated under the lock, read without it).
    len: AtomicUsize,
}

impl<R> Default for PendingInjections<R> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
            len: AtomicUsize::new(0),
        }
    }
}

impl<R> PendingInjections<R> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `pending`; gives it back if its vCPU already has one
    /// waiting (the caller answers its requester).
    pub fn push(&self, pending: Pending<R>) -> Result<(), Box<Pending<R>>> {
        let mut entries = self.entries.lock().unwrap();
        if entries.iter().any(|p| p.vcpu == pending.vcpu) {
            return Err(Box::new(pending));
        }
        entries.push(pending);
        self.len.store(entries.len(), Ordering::Release);
        Ok(())
    }

    /// The mode of the injection waiting for `vcpu`, if any (a cheap check
    /// before the vCPU thread looks at where it is).
    pub fn waiting(&self, vcpu: u32) -> Option<VcpuMode> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let entries = self.entries.lock().unwrap();
        entries.iter().find(|p| p.vcpu == vcpu).map(|p| p.mode)
    }

    /// Takes the injection waiting for `vcpu` (on that vCPU's thread).
    pub fn take(&self, vcpu: u32) -> Option<Pending<R>> {
        let mut entries = self.entries.lock().unwrap();
        let i = entries.iter().position(|p| p.vcpu == vcpu)?;
        let taken = entries.swap_remove(i);
        self.len.store(entries.len(), Ordering::Release);
        Some(taken)
    }

    /// The vCPUs with an injection waiting (to interrupt them again).
    pub fn vcpus(&self) -> Vec<u32> {
        let entries = self.entries.lock().unwrap();
        entries.iter().map(|p| p.vcpu).collect()
    }

    /// Takes out the injections whose deadline passed at `now_ms`.
    pub fn expire(&self, now_ms: u64) -> Vec<Pending<R>> {
        let mut entries = self.entries.lock().unwrap();
        let (expired, waiting) = entries.drain(..).partition(|p| p.deadline_ms <= now_ms);
        *entries = waiting;
        self.len.store(entries.len(), Ordering::Release);
        expired
    }

    /// Takes out every injection (the VM stops or pauses).
    pub fn drain(&self) -> Vec<Pending<R>> {
        let mut entries = self.entries.lock().unwrap();
        self.len.store(0, Ordering::Release);
        take(&mut *entries)
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }
}

#[cfg(test)]
mod tests;
