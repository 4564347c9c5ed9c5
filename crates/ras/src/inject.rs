// SPDX-License-Identifier: Apache-2.0
//! Operator-requested errors: [`InjectRequest`], the body of a VMM's
//! `vm.inject-error` API request and the option string of
//! `ch-remote inject-error`, and its conversion into an [`ErrorReport`].
//!
//! The same field names are used in both forms, for instance
//! `type=memory,gpa=0x48000000,source=async` and
//! `{"type": "memory", "gpa": 1207959552, "source": "async"}`.
//! See [`InjectRequest::SYNTAX`]. Injected errors are drills: the engine
//! reports them to the guest exactly as asked and never marks memory
//! poisoned (see [`crate::policy`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::cper::{ArmErrorTypes, ArmProcessorSection, Guid, Severity};
use crate::options::{self, HexError, Keyword, SyntaxError};
use crate::report::{
    ErrorCause, ErrorReport, GpaGranule, InjectPayload, InjectTarget, MAX_GRANULE_SHIFT,
    MIN_GRANULE_SHIFT,
};

/// Largest raw section body accepted, in bytes (the engine further
/// refuses a record larger than the error status block).
pub const MAX_RAW_DATA: usize = 4096;

/// What kind of error section to report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InjectKind {
    /// A Platform Memory Error section (UEFI 2.10 N.2.5) at `gpa`.
    #[default]
    Memory,
    /// An ARM Processor Error section (UEFI 2.10 N.2.4.4).
    ArmProcessor,
    /// Any section: `section_type` and the hex-encoded body `data`.
    Raw,
}

/// Which error source reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InjectSource {
    /// The asynchronous source (GED notification or polled): the guest
    /// handles it as a deferred error, nothing is interrupted.
    #[default]
    Async,
    /// The synchronous (SEA) source of `vcpu`, which also takes an external
    /// data abort as if it had consumed the error.
    Sync,
}

/// ARM error-information type (one bit of the UEFI 2.10 N.2.4.4.1 bitmap).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
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
/// do not apply to `kind` must be absent ([`InjectRequest::to_report`]
/// refuses them rather than ignore them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectRequest {
    /// Section kind.
    #[serde(rename = "type")]
    pub kind: InjectKind,
    /// Error source.
    #[serde(default)]
    pub source: InjectSource,
    /// vCPU taking the abort (`source=sync` only; default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpu: Option<u32>,
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

/// Why an injection request is refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum InjectError {
    /// Two commas in a row, or a leading/trailing comma.
    #[error("Empty option in the inject-error request (stray comma)")]
    EmptyOption,
    /// An option without `=value`.
    #[error("Missing value for inject-error option '{0}' (expected {0}=<value>)")]
    MissingValue(String),
    /// `key=` with nothing after it.
    #[error("Empty value for inject-error option '{0}'")]
    EmptyValue(String),
    /// A key the request does not know.
    #[error("Unknown inject-error option '{0}' (known: {KNOWN_KEYS})")]
    UnknownKey(String),
    /// A key given twice.
    #[error("Duplicate inject-error option '{0}'")]
    DuplicateKey(String),
    /// `type` was not given.
    #[error("Missing inject-error option 'type' (memory|arm-processor|raw)")]
    MissingType,
    /// A value that is not a number (decimal or `0x` hex).
    #[error("Invalid number for inject-error option '{key}': '{value}'")]
    InvalidNumber {
        /// Option name.
        key: &'static str,
        /// Offending value.
        value: String,
    },
    /// A value that is not one of the allowed words.
    #[error("Invalid value '{value}' for inject-error option '{key}' (allowed: {allowed})")]
    InvalidWord {
        /// Option name.
        key: &'static str,
        /// Offending value.
        value: String,
        /// The allowed words, `|`-separated.
        allowed: &'static str,
    },
    /// A field required by the kind is missing.
    #[error("Inject-error type={kind} needs '{key}'")]
    Missing {
        /// Section kind.
        kind: InjectKind,
        /// Missing field.
        key: &'static str,
    },
    /// A field that does not apply to the kind or source.
    #[error("Inject-error option '{key}' does not apply to {context}")]
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
    /// The raw data is not an even number of hex digits, or too long.
    #[error("Invalid inject-error data: {0}")]
    BadData(String),
    /// The vCPU does not exist.
    #[error("Inject-error vcpu {vcpu} does not exist (the VM has {num_vcpus} vCPUs)")]
    NoSuchVcpu {
        /// Requested vCPU.
        vcpu: u32,
        /// vCPUs of the VM.
        num_vcpus: u32,
    },
}

const KNOWN_KEYS: &str = "type, source, vcpu, severity, gpa, granule, threshold_exceeded, \
     arm_error, mpidr, pa, va, section_type, data";

impl fmt::Display for InjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InjectKind::Memory => "memory",
            InjectKind::ArmProcessor => "arm-processor",
            InjectKind::Raw => "raw",
        })
    }
}

/// `value` as a keyword of option `key`.
fn keyword<T: Keyword>(key: &'static str, value: &str) -> Result<T, InjectError> {
    T::from_word(value).ok_or_else(|| InjectError::InvalidWord {
        key,
        value: value.to_string(),
        allowed: T::ALLOWED,
    })
}

impl From<SyntaxError<'_>> for InjectError {
    fn from(e: SyntaxError<'_>) -> Self {
        match e {
            SyntaxError::EmptyOption => InjectError::EmptyOption,
            SyntaxError::MissingValue(option) => InjectError::MissingValue(option.to_string()),
            SyntaxError::DuplicateKey(key) => InjectError::DuplicateKey(key.to_string()),
        }
    }
}

/// The words are the serde names.
impl Keyword for InjectKind {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("memory", InjectKind::Memory),
        ("arm-processor", InjectKind::ArmProcessor),
        ("raw", InjectKind::Raw),
    ];
    const ALLOWED: &'static str = "memory|arm-processor|raw";
}

impl Keyword for InjectSource {
    const WORDS: &'static [(&'static str, Self)] =
        &[("async", InjectSource::Async), ("sync", InjectSource::Sync)];
    const ALLOWED: &'static str = "async|sync";
}

impl Keyword for InjectArmError {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("cache", InjectArmError::Cache),
        ("tlb", InjectArmError::Tlb),
        ("bus", InjectArmError::Bus),
        ("micro-arch", InjectArmError::MicroArch),
    ];
    const ALLOWED: &'static str = "cache|tlb|bus|micro-arch";
}

fn parse_u64(key: &'static str, value: &str) -> Result<u64, InjectError> {
    options::parse_u64(value).ok_or_else(|| InjectError::InvalidNumber {
        key,
        value: value.to_string(),
    })
}

fn parse_u32(key: &'static str, value: &str) -> Result<u32, InjectError> {
    u32::try_from(parse_u64(key, value)?).map_err(|_| InjectError::InvalidNumber {
        key,
        value: value.to_string(),
    })
}

/// The raw section body: hex digits, at most [`MAX_RAW_DATA`] bytes.
fn decode_data(text: &str) -> Result<Vec<u8>, InjectError> {
    if text.len() / 2 > MAX_RAW_DATA {
        return Err(InjectError::BadData(format!(
            "{} bytes (at most {MAX_RAW_DATA})",
            text.len() / 2
        )));
    }
    options::decode_hex(text).map_err(|e| {
        InjectError::BadData(match e {
            HexError::OddLength(n) => format!("{n} hex digits (two per byte)"),
            HexError::NotHex(at) => format!("not a hex digit at offset {at}"),
        })
    })
}

impl InjectRequest {
    /// Syntax of the option string, for command-line help.
    pub const SYNTAX: &'static str = "type=memory|arm-processor|raw[,source=async|sync]\
        [,vcpu=<index, source=sync only>][,severity=recoverable|corrected|fatal|informational]\
        [,gpa=<address>,granule=<bytes>,threshold_exceeded=on|off (memory)]\
        [,arm_error=cache|tlb|bus|micro-arch,mpidr=<value>,pa=<address>,va=<address> \
        (arm-processor)][,section_type=<GUID>,data=<hex bytes> (raw)] \
        (numbers decimal or 0x hex; defaults: source=async, severity=recoverable, \
        granule=4096, arm_error=cache, mpidr=0)";

    /// Parses the `key=value,...` form. Only the syntax is checked here;
    /// [`to_report`](Self::to_report) checks that the fields fit together.
    pub fn parse(s: &str) -> Result<Self, InjectError> {
        let mut req = InjectRequest::default();
        let pairs = options::split(s)?;
        for &(key, value) in &pairs {
            req.set(key, value)?;
        }
        if !pairs.iter().any(|(key, _)| *key == "type") {
            return Err(InjectError::MissingType);
        }
        Ok(req)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), InjectError> {
        let key: &'static str = match key {
            "type" => "type",
            "source" => "source",
            "vcpu" => "vcpu",
            "severity" => "severity",
            "gpa" => "gpa",
            "granule" => "granule",
            "threshold_exceeded" => "threshold_exceeded",
            "arm_error" => "arm_error",
            "mpidr" => "mpidr",
            "pa" => "pa",
            "va" => "va",
            "section_type" => "section_type",
            "data" => "data",
            other => return Err(InjectError::UnknownKey(other.to_string())),
        };
        if value.is_empty() {
            return Err(InjectError::EmptyValue(key.to_string()));
        }
        match key {
            "type" => self.kind = keyword(key, value)?,
            "source" => self.source = keyword(key, value)?,
            "vcpu" => self.vcpu = Some(parse_u32(key, value)?),
            "severity" => {
                self.severity = value.parse().map_err(|_| InjectError::InvalidWord {
                    key,
                    value: value.to_string(),
                    allowed: "recoverable|fatal|corrected|informational",
                })?;
            }
            "gpa" => self.gpa = Some(parse_u64(key, value)?),
            "granule" => self.granule = Some(parse_u64(key, value)?),
            "threshold_exceeded" => self.threshold_exceeded = Some(keyword(key, value)?),
            "arm_error" => self.arm_error = Some(keyword(key, value)?),
            "mpidr" => self.mpidr = Some(parse_u64(key, value)?),
            "pa" => self.pa = Some(parse_u64(key, value)?),
            "va" => self.va = Some(parse_u64(key, value)?),
            "section_type" => self.section_type = Some(value.to_string()),
            _ => self.data = Some(value.to_string()),
        }
        Ok(())
    }

    /// The fields given, by name (for "does not apply" checks).
    fn given(&self) -> [(&'static str, bool); 10] {
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
    /// check it is guest RAM), `None` for other kinds.
    pub fn memory_range(&self) -> Option<(u64, u64)> {
        let gpa = self.gpa?;
        (self.kind == InjectKind::Memory).then(|| {
            let len = self.granule.unwrap_or(1 << MIN_GRANULE_SHIFT);
            (gpa & !(len.wrapping_sub(1)), len)
        })
    }

    /// Checks the request against itself and a VM of `num_vcpus` vCPUs and
    /// builds the report for [`crate::engine::RasEngine::handle`].
    pub fn to_report(
        &self,
        num_vcpus: u32,
        unix_time: u64,
        monotonic_ms: u64,
    ) -> Result<ErrorReport, InjectError> {
        for (key, given) in self.given() {
            if !given {
                continue;
            }
            if key == "vcpu" {
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
            InjectSource::Async => InjectTarget::Async,
            InjectSource::Sync => {
                let vcpu = self.vcpu.unwrap_or(0);
                if vcpu >= num_vcpus {
                    return Err(InjectError::NoSuchVcpu { vcpu, num_vcpus });
                }
                InjectTarget::Sync { vcpu }
            }
        };
        let severity = self.severity;
        let payload = match self.kind {
            InjectKind::Memory => {
                let gpa = self.gpa.ok_or(InjectError::Missing {
                    kind: self.kind,
                    key: "gpa",
                })?;
                let len = self.granule.unwrap_or(1 << MIN_GRANULE_SHIFT);
                let granule = u8::try_from(len.trailing_zeros())
                    .ok()
                    .filter(|_| len.is_power_of_two())
                    .and_then(|shift| GpaGranule::containing(gpa, shift))
                    .ok_or(InjectError::BadGranule(len))?;
                InjectPayload::Memory {
                    granule,
                    severity,
                    threshold_exceeded: self.threshold_exceeded.unwrap_or(false),
                }
            }
            InjectKind::ArmProcessor => InjectPayload::ArmProcessor {
                section: self.arm_section(),
                severity,
            },
            InjectKind::Raw => {
                let text = self.section_type.as_deref().ok_or(InjectError::Missing {
                    kind: self.kind,
                    key: "section_type",
                })?;
                let section_type: Guid = text
                    .parse()
                    .map_err(|_| InjectError::BadGuid(text.chars().take(64).collect()))?;
                let data = decode_data(self.data.as_deref().ok_or(InjectError::Missing {
                    kind: self.kind,
                    key: "data",
                })?)?;
                InjectPayload::Raw {
                    section_type,
                    severity,
                    data,
                }
            }
        };
        Ok(ErrorReport {
            cause: ErrorCause::Injected { target, payload },
            unix_time,
            monotonic_ms,
        })
    }

    /// One error-information entry of the requested type, on a running
    /// processor identified by its MPIDR.
    fn arm_section(&self) -> ArmProcessorSection {
        ArmProcessorSection::single_error(
            self.mpidr.unwrap_or(0),
            0,
            self.arm_error.unwrap_or_default().into(),
            self.va,
            self.pa,
        )
    }
}

#[cfg(test)]
mod tests;
