// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! CPER (UEFI Common Platform Error Record) codec, UEFI 2.10 Appendix N,
//! and the ACPI 6.5 §18.3.2.7 Generic Error Status Block that carries it.
//!
//! One module per spec structure:
//! - [`guid`]: `EFI_GUID` in on-wire byte order;
//! - [`severity`]: error severity (UEFI 2.10 N.2.1);
//! - [`timestamp`]: the BCD timestamp (UEFI 2.10 N.2.1);
//! - [`status_block`]: Generic Error Status Block (ACPI 6.5 §18.3.2.7.1);
//! - [`data_entry`]: Generic Error Data Entry (ACPI 6.5 Table 18.13) and the
//!   [`Section`] it carries;
//! - [`memory`]: Platform Memory Error section (UEFI 2.10 N.2.5);
//! - [`arm`]: ARM Processor Error section (UEFI 2.10 N.2.4.4; error-info
//!   `type` is the UEFI 2.10 bitmap the guest kernel reads, see [`arm`]);
//! - [`raw`]: any section type as raw bytes.
//!
//! Byte layouts are `#[repr(C, packed)]` zerocopy structs of little-endian
//! fields; decoding validates lengths, counts, revisions and reserved bits
//! and never panics.

pub mod arm;
pub mod data_entry;
pub mod guid;
pub mod memory;
pub mod raw;
pub mod severity;
pub mod status_block;
pub mod timestamp;

pub use arm::{
    ARM_PROCESSOR_SECTION_GUID, ArmContextInfo, ArmErrorInfo, ArmErrorTypes, ArmProcessorSection,
};
pub use data_entry::{DataEntry, EntryFlags, Section};
pub use guid::Guid;
pub use memory::{MEMORY_ERROR_SECTION_GUID, MemoryErrorSection};
pub use raw::RawSection;
pub use severity::Severity;
pub use status_block::StatusBlock;
use thiserror::Error;
pub use timestamp::Timestamp;
use zerocopy::{FromBytes, Immutable, KnownLayout};

/// Errors from encoding or decoding CPER bytes.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
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
    /// The output buffer is too small.
    #[error("Buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A section body has the wrong fixed size.
    #[error("Bad {section} length: expected {expected} bytes, found {found}")]
    BadSectionLength {
        /// Section or sub-structure.
        section: &'static str,
        /// Size the spec defines.
        expected: usize,
        /// Size found.
        found: usize,
    },
    /// A length field disagrees with the bytes it describes.
    #[error("Inconsistent {what}: declared {declared} bytes, actual {actual}")]
    LengthMismatch {
        /// The length field.
        what: &'static str,
        /// Value of the field.
        declared: usize,
        /// Bytes actually there.
        actual: usize,
    },
    /// A count field disagrees with the structures found.
    #[error("Inconsistent count of {what}: declared {declared}, found {actual}")]
    InconsistentCount {
        /// What is counted.
        what: &'static str,
        /// Value of the count field.
        declared: usize,
        /// Number found.
        actual: usize,
    },
    /// A count field needs more bytes than the enclosing length allows.
    #[error("Count of {what} ({count}) does not fit in {length} bytes")]
    CountExceedsLength {
        /// What is counted.
        what: &'static str,
        /// Value of the count field.
        count: usize,
        /// Length available.
        length: usize,
    },
    /// A revision this codec does not know.
    #[error("Bad {what} revision {revision:#06x}")]
    BadRevision {
        /// Structure.
        what: &'static str,
        /// Revision found.
        revision: u16,
    },
    /// A severity value above 3.
    #[error("Bad {what} severity {value}")]
    BadSeverity {
        /// Structure.
        what: &'static str,
        /// Value found.
        value: u32,
    },
    /// Reserved bits are set.
    #[error("Reserved bits set in {what}: {value:#x}")]
    ReservedBits {
        /// Field.
        what: &'static str,
        /// Its whole value.
        value: u64,
    },
    /// The block status bits do not match the entries.
    #[error("Block status {found:#x} does not match the entries (expected {expected:#x})")]
    BlockStatusMismatch {
        /// Value the entries imply.
        expected: u32,
        /// Value found.
        found: u32,
    },
    /// The block or record severity is not the most severe entry's.
    #[error("Severity {found} is not the most severe entry's ({expected})")]
    SeverityMismatch {
        /// Value the entries imply.
        expected: u32,
        /// Value found.
        found: u32,
    },
    /// Raw data does not start right after the data entries.
    #[error("Bad raw data offset {found}: expected {expected}")]
    BadRawDataOffset {
        /// Offset right after the data entries.
        expected: usize,
        /// Offset found.
        found: usize,
    },
    /// A timestamp with a non-BCD byte or reserved flag bits.
    #[error("Bad timestamp {raw:#018x}")]
    BadTimestamp {
        /// The 8 on-wire bytes, little-endian.
        raw: u64,
    },
    /// An ARM error information type with a reserved bit set (UEFI 2.10
    /// bitmap: bit 1 cache, bit 2 TLB, bit 3 bus, bit 4 micro-architectural;
    /// bit 0 and bits 5..7 reserved).
    #[error(
        "Bad ARM error info type {value:#04x}: reserved bit(s) {reserved:#04x} set (UEFI 2.10 bitmap: bit 1 cache, bit 2 TLB, bit 3 bus, bit 4 micro-arch)"
    )]
    BadArmErrorType {
        /// Value found.
        value: u8,
        /// The reserved bits of `value` that are set.
        reserved: u8,
    },
    /// An ARM error information type with no bit set (UEFI 2.10 bitmap).
    #[error("Bad ARM error info type 0: no error type bit set (UEFI 2.10 bitmap)")]
    EmptyArmErrorType,
    /// A record signature is wrong.
    #[error("Bad {what}: {found:#010x}")]
    BadSignature {
        /// Which signature.
        what: &'static str,
        /// Value found (little-endian).
        found: u32,
    },
    /// A record section lies outside the record body.
    #[error(
        "Section {index} at offset {offset} length {length} is outside the record body (record length {record_length})"
    )]
    SectionOutOfBounds {
        /// Section index.
        index: usize,
        /// Its offset.
        offset: usize,
        /// Its length.
        length: usize,
        /// The record length.
        record_length: usize,
    },
    /// More entries than the format can count.
    #[error("Too many {what}: {count}")]
    TooManyEntries {
        /// What is counted.
        what: &'static str,
        /// Number given.
        count: usize,
    },
    /// A length does not fit its 32-bit field.
    #[error("Too long {what}: {len} bytes")]
    TooLong {
        /// Structure.
        what: &'static str,
        /// Length.
        len: usize,
    },
    /// Not a severity name.
    #[error("Invalid severity {text:?} (recoverable|fatal|corrected|informational)")]
    InvalidSeverityName {
        /// The text (first 32 characters).
        text: String,
    },
    /// Not a GUID in `8-4-4-4-12` form.
    #[error("Invalid GUID text {text:?}")]
    InvalidGuid {
        /// The text (first 64 characters).
        text: String,
    },
}

/// Reads the wire struct `T` from the start of `bytes` and returns it with
/// the bytes after it; [`CperError::Truncated`] naming `what` when `bytes`
/// is shorter than `T` (whose size its `wire_layout!` pins).
pub fn read_wire<'a, T: FromBytes + KnownLayout + Immutable>(
    bytes: &'a [u8],
    what: &'static str,
) -> Result<(T, &'a [u8]), CperError> {
    T::read_from_prefix(bytes).map_err(|_| CperError::Truncated {
        what,
        need: size_of::<T>(),
        have: bytes.len(),
    })
}

#[cfg(test)]
mod tests {
    use zerocopy::little_endian::{U16, U32};

    use super::*;

    /// Six bytes: a word, then a dword (no padding: packed).
    #[derive(Debug, FromBytes, KnownLayout, Immutable)]
    #[repr(C, packed)]
    struct Pair {
        a: U16,
        b: U32,
    }
    crate::wire_layout!(Pair = 6; a @ 0, b @ 2);

    #[test]
    fn read_wire_needs_the_whole_struct_and_returns_the_rest() {
        let bytes = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
        let (p, rest) = read_wire::<Pair>(&bytes, "pair").unwrap();
        assert_eq!((p.a.get(), p.b.get()), (0x2211, 0x6655_4433));
        assert_eq!(rest, [0x77, 0x88]);
        assert_eq!(
            read_wire::<Pair>(&bytes[..5], "pair").unwrap_err(),
            CperError::Truncated {
                what: "pair",
                need: 6,
                have: 5,
            }
        );
    }
}
