// SPDX-License-Identifier: Apache-2.0
//! CPER (UEFI Common Platform Error Record) codec, UEFI 2.10 Appendix N,
//! and the ACPI 6.5 §18.3.2.7 Generic Error Status Block that carries it.
//!
//! CONTRACT STUB: the names and signatures below are fixed; bodies are being
//! implemented (submodules per structure: guid, severity, timestamp,
//! status_block, data_entry, memory, arm, raw, record).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::report::GpaGranule;

/// A GUID in its on-wire (mixed-endian, EFI_GUID) byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// Builds a GUID from its textual fields (`d1-d2-d3-d4[0..2]-d4[2..8]`).
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Self {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }
}

/// CPER error severity (UEFI 2.10 N.2.1 / N.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// 0: recoverable (uncorrected, the OS can contain it).
    Recoverable,
    /// 1: fatal.
    Fatal,
    /// 2: corrected.
    Corrected,
    /// 3: informational.
    Informational,
}

/// The ARM Processor Error section (UEFI 2.10 N.2.4.4). Fields: see the
/// implementation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmProcessorSection {}

/// Errors from decoding CPER bytes.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CperError {
    /// The input ends before a structure does.
    #[error("Truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        /// Structure being decoded.
        what: &'static str,
        /// Bytes it needs.
        need: usize,
        /// Bytes available.
        have: usize,
    },
}

/// A Generic Error Status Block with its data entries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusBlock {}

impl StatusBlock {
    /// One recoverable platform-memory-error entry for `granule`.
    pub fn memory_error(_granule: &GpaGranule, _severity: Severity, _unix_time: u64) -> Self {
        todo!()
    }
    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        todo!()
    }
    /// Encodes into `buf`, returning the bytes written.
    pub fn encode_into(&self, _buf: &mut [u8]) -> Result<usize, CperError> {
        todo!()
    }
    /// Encodes into a new vector.
    pub fn encode(&self) -> Vec<u8> {
        todo!()
    }
    /// Decodes and validates a status block.
    pub fn decode(_bytes: &[u8]) -> Result<Self, CperError> {
        todo!()
    }
}
