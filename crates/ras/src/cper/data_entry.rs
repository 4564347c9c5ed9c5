// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! The Generic Error Data Entry (ACPI 6.5 §18.3.2.7.1, Table 18.13): a
//! 72-byte header (revision 0x300; 64 bytes for revision 0x201) followed by
//! one CPER section body (UEFI 2.10 N.2.4 / N.2.5).

use std::ops::{BitOr, BitOrAssign};

use serde::{Deserialize, Serialize};
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::arm::{ARM_PROCESSOR_SECTION_GUID, ArmProcessorSection};
use super::memory::{MEMORY_ERROR_SECTION_GUID, MEMORY_ERROR_SECTION_LEN, MemoryErrorSection};
use super::raw::RawSection;
use super::{CperError, Guid, Severity, Timestamp};

/// Data entry revision written (ACPI 6.1+: header with timestamp).
pub const DATA_ENTRY_REVISION: u16 = 0x0300;
/// Older revision without the timestamp field, accepted when decoding.
pub const DATA_ENTRY_REVISION_V2: u16 = 0x0201;
/// Header length for revision 0x300.
pub const DATA_ENTRY_HEADER_LEN: usize = 72;
/// Header length for revision 0x201.
pub const DATA_ENTRY_HEADER_LEN_V2: usize = 64;

/// Validation bits of the data entry header.
pub mod validation {
    /// FRU id valid.
    pub const FRU_ID: u8 = 1 << 0;
    /// FRU text valid.
    pub const FRU_TEXT: u8 = 1 << 1;
    /// Timestamp valid (revision 0x300).
    pub const TIMESTAMP: u8 = 1 << 2;
    /// All defined bits.
    pub const ALL: u8 = 0x7;
}

/// On-wire data entry header, revision 0x300 (ACPI 6.5 Table 18.13).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct DataEntryHeaderWire {
    /// Offset 0.
    pub section_type: [u8; 16],
    /// Offset 16.
    pub error_severity: U32,
    /// Offset 20.
    pub revision: U16,
    /// Offset 22.
    pub validation_bits: u8,
    /// Offset 23.
    pub flags: u8,
    /// Offset 24: length of the section body.
    pub error_data_length: U32,
    /// Offset 28.
    pub fru_id: [u8; 16],
    /// Offset 44.
    pub fru_text: [u8; 20],
    /// Offset 64 (revision 0x300 only).
    pub timestamp: U64,
}
crate::wire_layout!(DataEntryHeaderWire = DATA_ENTRY_HEADER_LEN;
    section_type @ 0, error_severity @ 16, revision @ 20, validation_bits @ 22, flags @ 23,
    error_data_length @ 24, fru_id @ 28, fru_text @ 44, timestamp @ 64);

/// Section / data entry flags (UEFI 2.10 N.2.2 "Flags", ACPI 6.5 Table
/// 18.13).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntryFlags(pub u8);

impl EntryFlags {
    /// No flag.
    pub const NONE: EntryFlags = EntryFlags(0);
    /// Primary: the section to report first.
    pub const PRIMARY: EntryFlags = EntryFlags(0x1);
    /// Containment warning: the error was not contained.
    pub const CONTAINMENT_WARNING: EntryFlags = EntryFlags(0x2);
    /// The component was reset.
    pub const RESET: EntryFlags = EntryFlags(0x4);
    /// Error threshold exceeded (Linux soft-offlines a corrected page).
    pub const THRESHOLD_EXCEEDED: EntryFlags = EntryFlags(0x8);
    /// Resource not accessible.
    pub const RESOURCE_NOT_ACCESSIBLE: EntryFlags = EntryFlags(0x10);
    /// Latent error.
    pub const LATENT_ERROR: EntryFlags = EntryFlags(0x20);
    /// Propagated.
    pub const PROPAGATED: EntryFlags = EntryFlags(0x40);
    /// Overflow.
    pub const OVERFLOW: EntryFlags = EntryFlags(0x80);

    /// The raw byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: EntryFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for EntryFlags {
    type Output = EntryFlags;
    fn bitor(self, rhs: EntryFlags) -> EntryFlags {
        EntryFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for EntryFlags {
    fn bitor_assign(&mut self, rhs: EntryFlags) {
        self.0 |= rhs.0;
    }
}

/// A CPER section body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Section {
    /// Platform Memory Error (UEFI 2.10 N.2.5).
    Memory(MemoryErrorSection),
    /// ARM Processor Error (UEFI 2.10 N.2.4.4).
    ArmProcessor(ArmProcessorSection),
    /// Any other type, or a known type kept verbatim.
    Raw(RawSection),
}

impl Section {
    /// Short name of the section type, as events and the injection API
    /// spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Section::Memory(_) => "memory",
            Section::ArmProcessor(_) => "arm_processor",
            Section::Raw(_) => "raw",
        }
    }

    /// The section type GUID.
    pub fn section_type(&self) -> Guid {
        match self {
            Section::Memory(_) => MEMORY_ERROR_SECTION_GUID,
            Section::ArmProcessor(_) => ARM_PROCESSOR_SECTION_GUID,
            Section::Raw(r) => r.section_type,
        }
    }

    /// Body length in bytes.
    pub fn encoded_len(&self) -> usize {
        match self {
            Section::Memory(_) => MEMORY_ERROR_SECTION_LEN,
            Section::ArmProcessor(a) => a.encoded_len(),
            Section::Raw(r) => r.data.len(),
        }
    }

    /// Writes the body at the start of `buf`.
    pub fn encode_into(&self, buf: &mut [u8]) -> Result<usize, CperError> {
        match self {
            Section::Memory(m) => m.encode_into(buf),
            Section::ArmProcessor(a) => a.encode_into(buf),
            Section::Raw(r) => r.encode_into(buf),
        }
    }

    /// Decodes a body of type `section_type`: memory and ARM processor
    /// sections are parsed and validated, any other type is kept raw.
    pub fn decode(section_type: Guid, body: &[u8]) -> Result<Self, CperError> {
        Ok(match section_type {
            MEMORY_ERROR_SECTION_GUID => Section::Memory(MemoryErrorSection::decode(body)?),
            ARM_PROCESSOR_SECTION_GUID => Section::ArmProcessor(ArmProcessorSection::decode(body)?),
            _ => Section::Raw(RawSection::new(section_type, body.to_vec())),
        })
    }
}

/// One Generic Error Data Entry: a section with its severity, flags and
/// optional FRU and timestamp fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataEntry {
    /// The section.
    pub section: Section,
    /// Severity of this section.
    pub severity: Severity,
    /// Flags.
    pub flags: EntryFlags,
    /// FRU id, when valid.
    pub fru_id: Option<Guid>,
    /// FRU text (ASCII, NUL padded), when valid.
    pub fru_text: Option<[u8; 20]>,
    /// Timestamp, when valid.
    pub timestamp: Option<Timestamp>,
}

impl DataEntry {
    /// An entry with no flag, FRU or timestamp.
    pub fn new(section: Section, severity: Severity) -> Self {
        DataEntry {
            section,
            severity,
            flags: EntryFlags::NONE,
            fru_id: None,
            fru_text: None,
            timestamp: None,
        }
    }

    /// Sets the flags.
    pub fn with_flags(mut self, flags: EntryFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Sets the timestamp.
    pub fn with_timestamp(mut self, timestamp: Timestamp) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Sets the FRU id.
    pub fn with_fru_id(mut self, fru_id: Guid) -> Self {
        self.fru_id = Some(fru_id);
        self
    }

    /// Sets the FRU text (truncated to 20 bytes, NUL padded).
    pub fn with_fru_text(mut self, text: &str) -> Self {
        let mut t = [0u8; 20];
        let n = text.len().min(20);
        t[..n].copy_from_slice(&text.as_bytes()[..n]);
        self.fru_text = Some(t);
        self
    }

    /// The validation bits the header gets.
    pub fn validation_bits(&self) -> u8 {
        (if self.fru_id.is_some() {
            validation::FRU_ID
        } else {
            0
        }) | (if self.fru_text.is_some() {
            validation::FRU_TEXT
        } else {
            0
        }) | (if self.timestamp.is_some() {
            validation::TIMESTAMP
        } else {
            0
        })
    }

    /// Encoded size: header (72) + body.
    pub fn encoded_len(&self) -> usize {
        DATA_ENTRY_HEADER_LEN + self.section.encoded_len()
    }

    /// Writes the entry (revision 0x300) at the start of `buf`.
    pub fn encode_into(&self, buf: &mut [u8]) -> Result<usize, CperError> {
        let len = self.encoded_len();
        let have = buf.len();
        if have < len {
            return Err(CperError::BufferTooSmall { need: len, have });
        }
        let body_len = self.section.encoded_len();
        let header = DataEntryHeaderWire {
            section_type: self.section.section_type().0,
            error_severity: self.severity.to_u32().into(),
            revision: DATA_ENTRY_REVISION.into(),
            validation_bits: self.validation_bits(),
            flags: self.flags.0,
            error_data_length: u32::try_from(body_len)
                .map_err(|_| CperError::TooLong {
                    what: "section body",
                    len: body_len,
                })?
                .into(),
            fru_id: self.fru_id.unwrap_or_default().0,
            fru_text: self.fru_text.unwrap_or_default(),
            timestamp: self.timestamp.map_or(0, |t| t.to_u64()).into(),
        };
        header
            .write_to_prefix(buf)
            .map_err(|_| CperError::BufferTooSmall { need: len, have })?;
        let n = self
            .section
            .encode_into(&mut buf[DATA_ENTRY_HEADER_LEN..len])?;
        Ok(DATA_ENTRY_HEADER_LEN + n)
    }

    /// Decodes one entry at the start of `bytes`, returning it and the bytes
    /// it used. Accepts revisions 0x300 (72-byte header) and 0x201 (64
    /// bytes, no timestamp).
    pub fn decode_prefix(bytes: &[u8]) -> Result<(Self, usize), CperError> {
        let truncated = |need| CperError::Truncated {
            what: "generic error data entry header",
            need,
            have: bytes.len(),
        };
        if bytes.len() < DATA_ENTRY_HEADER_LEN_V2 {
            return Err(truncated(DATA_ENTRY_HEADER_LEN_V2));
        }
        let revision = u16::from_le_bytes([bytes[20], bytes[21]]);
        let header_len = match revision {
            DATA_ENTRY_REVISION => DATA_ENTRY_HEADER_LEN,
            DATA_ENTRY_REVISION_V2 => DATA_ENTRY_HEADER_LEN_V2,
            _ => {
                return Err(CperError::BadRevision {
                    what: "generic error data entry",
                    revision,
                });
            }
        };
        let mut h = DataEntryHeaderWire::default();
        h.as_mut_bytes()[..header_len].copy_from_slice(
            bytes
                .get(..header_len)
                .ok_or_else(|| truncated(header_len))?,
        );
        let raw_sev = h.error_severity.get();
        let severity = Severity::from_u32(raw_sev).ok_or(CperError::BadSeverity {
            what: "generic error data entry",
            value: raw_sev,
        })?;
        let v = h.validation_bits;
        let allowed = if header_len == DATA_ENTRY_HEADER_LEN {
            validation::ALL
        } else {
            validation::FRU_ID | validation::FRU_TEXT
        };
        if v & !allowed != 0 {
            return Err(CperError::ReservedBits {
                what: "generic error data entry validation bits",
                value: v.into(),
            });
        }
        let body_len = h.error_data_length.get() as usize;
        let body = bytes
            .get(header_len..)
            .and_then(|b| b.get(..body_len))
            .ok_or(CperError::Truncated {
                what: "generic error data entry body",
                need: body_len,
                have: bytes.len() - header_len,
            })?;
        let timestamp = if v & validation::TIMESTAMP != 0 {
            Some(Timestamp::from_u64(h.timestamp.get())?)
        } else {
            None
        };
        let section = Section::decode(Guid(h.section_type), body)?;
        Ok((
            DataEntry {
                section,
                severity,
                flags: EntryFlags(h.flags),
                fru_id: (v & validation::FRU_ID != 0).then_some(Guid(h.fru_id)),
                fru_text: (v & validation::FRU_TEXT != 0).then_some(h.fru_text),
                timestamp,
            },
            header_len + body_len,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::granule::GpaGranule;

    fn mem_entry() -> DataEntry {
        let g = GpaGranule::containing(vm_memory::GuestAddress(0x4020_0000), 21).unwrap();
        DataEntry::new(
            Section::Memory(MemoryErrorSection::for_granule(&g)),
            Severity::Recoverable,
        )
        .with_flags(EntryFlags::PRIMARY | EntryFlags::THRESHOLD_EXCEEDED)
        .with_fru_id(Guid::from_fields(1, 2, 3, [4; 8]))
        .with_fru_text("DIMM A1")
        .with_timestamp(Timestamp::from_unix(1_795_545_200))
    }

    #[test]
    fn round_trip_with_all_optional_fields() {
        let e = mem_entry();
        let mut buf = vec![0u8; e.encoded_len() + 3];
        assert_eq!(e.encode_into(&mut buf), Ok(152));
        assert_eq!(buf[22], 0x7);
        assert_eq!(buf[23], 0x9);
        assert_eq!(&buf[44..51], b"DIMM A1");
        assert_eq!(DataEntry::decode_prefix(&buf), Ok((e, 152)));
    }

    #[test]
    fn revision_0x201_has_no_timestamp() {
        let e = DataEntry::new(
            Section::Raw(RawSection::new(
                Guid::from_fields(9, 9, 9, [9; 8]),
                vec![7; 5],
            )),
            Severity::Corrected,
        );
        let mut buf = vec![0u8; e.encoded_len()];
        e.encode_into(&mut buf).unwrap();
        // Re-pack as a 0x201 entry: drop the 8 timestamp bytes.
        let mut old = buf[..64].to_vec();
        old[20..22].copy_from_slice(&0x0201u16.to_le_bytes());
        old.extend_from_slice(&buf[72..]);
        assert_eq!(DataEntry::decode_prefix(&old), Ok((e, 69)));
        old[22] = validation::TIMESTAMP;
        assert!(matches!(
            DataEntry::decode_prefix(&old),
            Err(CperError::ReservedBits { .. })
        ));
    }

    #[test]
    fn decode_rejects_bad_fields() {
        let e = mem_entry();
        let mut buf = vec![0u8; e.encoded_len()];
        e.encode_into(&mut buf).unwrap();
        let mut b = buf.clone();
        b[20] = 0x01;
        assert_eq!(
            DataEntry::decode_prefix(&b),
            Err(CperError::BadRevision {
                what: "generic error data entry",
                revision: 0x0301
            })
        );
        let mut b = buf.clone();
        b[16] = 4;
        assert!(matches!(
            DataEntry::decode_prefix(&b),
            Err(CperError::BadSeverity { value: 4, .. })
        ));
        let mut b = buf.clone();
        b[22] = 0x8;
        assert!(matches!(
            DataEntry::decode_prefix(&b),
            Err(CperError::ReservedBits { value: 8, .. })
        ));
        let mut b = buf.clone();
        b[24] = 81;
        assert!(matches!(
            DataEntry::decode_prefix(&b),
            Err(CperError::Truncated {
                need: 81,
                have: 80,
                ..
            })
        ));
        let mut b = buf.clone();
        b[24] = 79;
        assert!(matches!(
            DataEntry::decode_prefix(&b),
            Err(CperError::BadSectionLength { found: 79, .. })
        ));
        let mut b = buf;
        b[64] = 0xff;
        assert!(matches!(
            DataEntry::decode_prefix(&b),
            Err(CperError::BadTimestamp { .. })
        ));
    }
}
