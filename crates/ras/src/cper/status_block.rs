// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! The Generic Error Status Block (ACPI 6.5 §18.3.2.7.1, Table 18.12): a
//! 20-byte header, the Generic Error Data Entries, then optional raw data.
//! This is what a GHES / GHESv2 error source's Error Status Address points
//! at.

use core::slice;

use serde::{Deserialize, Serialize};
use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::data_entry::{DataEntry, EntryFlags, Section};
use super::memory::MemoryErrorSection;
use super::{CperError, Severity, Timestamp, read_wire};
use crate::granule::GpaGranule;

/// Size of the status block header.
pub const STATUS_BLOCK_HEADER_LEN: usize = 20;
/// Most data entries the 10-bit count of `block_status` can describe.
pub const MAX_ENTRIES: usize = 0x3ff;

/// `block_status` bits (ACPI 6.5 Table 18.12).
pub mod block_status {
    /// An uncorrectable (recoverable or fatal) entry is present.
    pub const UNCORRECTABLE_VALID: u32 = 1 << 0;
    /// A correctable entry is present.
    pub const CORRECTABLE_VALID: u32 = 1 << 1;
    /// More than one uncorrectable entry.
    pub const MULTIPLE_UNCORRECTABLE: u32 = 1 << 2;
    /// More than one correctable entry.
    pub const MULTIPLE_CORRECTABLE: u32 = 1 << 3;
    /// Shift of the error data entry count (bits 13:4).
    pub const ENTRY_COUNT_SHIFT: u32 = 4;
    /// Mask of the error data entry count, after shifting.
    pub const ENTRY_COUNT_MASK: u32 = 0x3ff;
    /// Bits 31:14 are reserved.
    pub const RESERVED: u32 = !((1 << 14) - 1);
}

/// On-wire status block header (ACPI 6.5 Table 18.12).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct StatusBlockHeaderWire {
    /// Offset 0.
    pub block_status: U32,
    /// Offset 4: from the start of the block.
    pub raw_data_offset: U32,
    /// Offset 8.
    pub raw_data_length: U32,
    /// Offset 12: length of all data entries.
    pub data_length: U32,
    /// Offset 16.
    pub error_severity: U32,
}
crate::wire_layout!(StatusBlockHeaderWire = STATUS_BLOCK_HEADER_LEN;
    block_status @ 0, raw_data_offset @ 4, raw_data_length @ 8, data_length @ 12,
    error_severity @ 16);

/// A Generic Error Status Block with its data entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusBlock {
    /// The Generic Error Data Entries, in order.
    pub entries: Vec<DataEntry>,
    /// Raw (vendor) data after the entries; usually empty.
    pub raw_data: Vec<u8>,
}

impl StatusBlock {
    /// An empty block (encodes as `block_status == 0`: nothing to report).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry.
    pub fn with_entry(mut self, entry: DataEntry) -> Self {
        self.entries.push(entry);
        self
    }

    /// Sets the raw data.
    pub fn with_raw_data(mut self, raw_data: Vec<u8>) -> Self {
        self.raw_data = raw_data;
        self
    }

    /// One platform-memory-error entry for `granule` (physical address,
    /// granule-sized mask, multi-bit ECC; see
    /// [`MemoryErrorSection::for_granule`]) with `severity`, the primary flag
    /// and a precise timestamp from `unix_time`.
    pub fn memory_error(granule: &GpaGranule, severity: Severity, unix_time: u64) -> Self {
        Self::memory_errors(slice::from_ref(granule), severity, unix_time)
    }

    /// One platform-memory-error entry per page of `pages` (as
    /// [`StatusBlock::memory_error`]; the first entry primary), each with
    /// `severity`: the block that tells the guest several lost pages at once.
    pub fn memory_errors(pages: &[GpaGranule], severity: Severity, unix_time: u64) -> Self {
        pages
            .iter()
            .enumerate()
            .fold(StatusBlock::new(), |block, (i, page)| {
                let entry = DataEntry::new(
                    Section::Memory(MemoryErrorSection::for_granule(page)),
                    severity,
                )
                .with_timestamp(Timestamp::from_unix(unix_time));
                block.with_entry(if i == 0 {
                    entry.with_flags(EntryFlags::PRIMARY)
                } else {
                    entry
                })
            })
    }

    /// The block severity: the most severe entry's, `None` when empty.
    pub fn error_severity(&self) -> Option<Severity> {
        Severity::most_severe_of(self.entries.iter().map(|e| e.severity))
    }

    /// The `block_status` value: valid / multiple bits and the entry count
    /// (saturated at [`MAX_ENTRIES`]; encoding rejects more).
    pub fn block_status(&self) -> u32 {
        let uncorrected = self
            .entries
            .iter()
            .filter(|e| e.severity.is_uncorrected())
            .count();
        let corrected = self
            .entries
            .iter()
            .filter(|e| e.severity == Severity::Corrected)
            .count();
        let mut v = (self.entries.len().min(MAX_ENTRIES) as u32) << block_status::ENTRY_COUNT_SHIFT;
        if uncorrected > 0 {
            v |= block_status::UNCORRECTABLE_VALID;
        }
        if uncorrected > 1 {
            v |= block_status::MULTIPLE_UNCORRECTABLE;
        }
        if corrected > 0 {
            v |= block_status::CORRECTABLE_VALID;
        }
        if corrected > 1 {
            v |= block_status::MULTIPLE_CORRECTABLE;
        }
        v
    }

    fn data_length(&self) -> usize {
        self.entries.iter().map(DataEntry::encoded_len).sum()
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        STATUS_BLOCK_HEADER_LEN + self.data_length() + self.raw_data.len()
    }

    /// Encodes into `buf`, returning the bytes written. Does not allocate.
    /// Fails if `buf` is too small, there are more than [`MAX_ENTRIES`]
    /// entries or a length does not fit in 32 bits.
    pub fn encode_into(&self, buf: &mut [u8]) -> Result<usize, CperError> {
        if self.entries.len() > MAX_ENTRIES {
            return Err(CperError::TooManyEntries {
                what: "error data entries",
                count: self.entries.len(),
            });
        }
        let data_length = self.data_length();
        let len = STATUS_BLOCK_HEADER_LEN + data_length + self.raw_data.len();
        let have = buf.len();
        if have < len {
            return Err(CperError::BufferTooSmall { need: len, have });
        }
        let too_long = |what| CperError::TooLong { what, len };
        let header = StatusBlockHeaderWire {
            block_status: self.block_status().into(),
            raw_data_offset: if self.raw_data.is_empty() {
                0
            } else {
                u32::try_from(STATUS_BLOCK_HEADER_LEN + data_length)
                    .map_err(|_| too_long("error status block"))?
            }
            .into(),
            raw_data_length: u32::try_from(self.raw_data.len())
                .map_err(|_| too_long("raw data"))?
                .into(),
            data_length: u32::try_from(data_length)
                .map_err(|_| too_long("error data entries"))?
                .into(),
            error_severity: self.error_severity().map_or(0, Severity::to_u32).into(),
        };
        header
            .write_to_prefix(buf)
            .map_err(|_| CperError::BufferTooSmall { need: len, have })?;
        let mut off = STATUS_BLOCK_HEADER_LEN;
        for e in &self.entries {
            off += e.encode_into(&mut buf[off..len])?;
        }
        buf[off..len].copy_from_slice(&self.raw_data);
        Ok(len)
    }

    /// Like [`StatusBlock::encode_into`], into a new vector.
    pub fn try_encode(&self) -> Result<Vec<u8>, CperError> {
        let mut v = vec![0u8; self.encoded_len()];
        self.encode_into(&mut v)?;
        Ok(v)
    }

    /// Encodes into a new vector.
    ///
    /// # Panics
    ///
    /// If the block cannot be encoded at all: more than [`MAX_ENTRIES`]
    /// entries or more than 4 GiB of data (use [`StatusBlock::try_encode`]
    /// when that can happen).
    pub fn encode(&self) -> Vec<u8> {
        match self.try_encode() {
            Ok(v) => v,
            Err(e) => panic!("Cannot encode a CPER status block: {e}"),
        }
    }

    /// Decodes and validates a status block at the start of `bytes` (bytes
    /// after the block, e.g. the rest of a fixed-size guest region, are
    /// ignored). Rejects: a truncated header, entry or raw data; reserved
    /// `block_status` bits; an entry count or valid/multiple bits that do
    /// not match the entries; a block severity that is not the most severe
    /// entry's; entries that do not exactly fill `data_length`; raw data not
    /// directly after the entries; and any invalid entry.
    pub fn decode(bytes: &[u8]) -> Result<Self, CperError> {
        let (h, _) =
            read_wire::<StatusBlockHeaderWire>(bytes, "generic error status block header")?;
        let status = h.block_status.get();
        if status & block_status::RESERVED != 0 {
            return Err(CperError::ReservedBits {
                what: "block status",
                value: status.into(),
            });
        }
        let raw_sev = h.error_severity.get();
        let block_severity = Severity::from_u32(raw_sev).ok_or(CperError::BadSeverity {
            what: "generic error status block",
            value: raw_sev,
        })?;
        let data_length = h.data_length.get() as usize;
        let data = bytes
            .get(STATUS_BLOCK_HEADER_LEN..)
            .and_then(|b| b.get(..data_length))
            .ok_or(CperError::Truncated {
                what: "generic error status block data",
                need: STATUS_BLOCK_HEADER_LEN.saturating_add(data_length),
                have: bytes.len(),
            })?;
        let declared =
            ((status >> block_status::ENTRY_COUNT_SHIFT) & block_status::ENTRY_COUNT_MASK) as usize;
        let mut entries = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            if entries.len() == declared {
                return Err(CperError::InconsistentCount {
                    what: "error data entries",
                    declared,
                    actual: declared + 1,
                });
            }
            let (e, used) = DataEntry::decode_prefix(rest)?;
            entries.push(e);
            rest = &rest[used..];
        }
        if entries.len() != declared {
            return Err(CperError::InconsistentCount {
                what: "error data entries",
                declared,
                actual: entries.len(),
            });
        }
        let raw_offset = h.raw_data_offset.get() as usize;
        let raw_length = h.raw_data_length.get() as usize;
        let expected_offset = STATUS_BLOCK_HEADER_LEN + data_length;
        let raw_data = if raw_length == 0 {
            if raw_offset != 0 && raw_offset != expected_offset {
                return Err(CperError::BadRawDataOffset {
                    expected: expected_offset,
                    found: raw_offset,
                });
            }
            Vec::new()
        } else {
            if raw_offset != expected_offset {
                return Err(CperError::BadRawDataOffset {
                    expected: expected_offset,
                    found: raw_offset,
                });
            }
            bytes
                .get(raw_offset..)
                .and_then(|b| b.get(..raw_length))
                .ok_or(CperError::Truncated {
                    what: "generic error status block raw data",
                    need: raw_offset.saturating_add(raw_length),
                    have: bytes.len(),
                })?
                .to_vec()
        };
        let block = StatusBlock { entries, raw_data };
        if let Some(expected) = block.error_severity()
            && expected != block_severity
        {
            return Err(CperError::SeverityMismatch {
                expected: expected.to_u32(),
                found: raw_sev,
            });
        }
        let expected_status = block.block_status();
        if expected_status != status {
            return Err(CperError::BlockStatusMismatch {
                expected: expected_status,
                found: status,
            });
        }
        Ok(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cper::Guid;
    use crate::cper::arm::ArmProcessorSection;
    use crate::cper::memory::MEMORY_ERROR_SECTION_GUID;
    use crate::cper::raw::RawSection;

    /// The whole 172-byte block for a recoverable 2 MiB loss at 0x4020_0000,
    /// 2026-11-24T18:33:20Z, written out from the ACPI / UEFI tables.
    #[test]
    fn known_bytes_memory_2m() {
        let g = GpaGranule::containing(vm_memory::GuestAddress(0x4020_1234), 21).unwrap();
        let block = StatusBlock::memory_error(&g, Severity::Recoverable, 1_795_545_200);
        let mut expected = Vec::new();
        // Block header: status = 1 entry << 4 | uncorrectable valid.
        expected.extend_from_slice(&0x11u32.to_le_bytes());
        expected.extend_from_slice(&0u32.to_le_bytes()); // raw data offset
        expected.extend_from_slice(&0u32.to_le_bytes()); // raw data length
        expected.extend_from_slice(&152u32.to_le_bytes()); // data length
        expected.extend_from_slice(&0u32.to_le_bytes()); // recoverable
        // Data entry header.
        expected.extend_from_slice(&[
            0x14, 0x11, 0xbc, 0xa5, 0x64, 0x6f, 0xde, 0x4e, 0xb8, 0x63, 0x3e, 0x83, 0xed, 0x7c,
            0x83, 0xb1,
        ]);
        expected.extend_from_slice(&0u32.to_le_bytes()); // severity
        expected.extend_from_slice(&[0x00, 0x03, 0x04, 0x01]); // rev, valid (ts), primary
        expected.extend_from_slice(&80u32.to_le_bytes());
        expected.extend_from_slice(&[0u8; 36]); // FRU id + text
        expected.extend_from_slice(&[0x20, 0x33, 0x18, 0x01, 0x24, 0x11, 0x26, 0x20]);
        // Memory error section.
        expected.extend_from_slice(&0x4006u64.to_le_bytes());
        expected.extend_from_slice(&0u64.to_le_bytes());
        expected.extend_from_slice(&0x4020_0000u64.to_le_bytes());
        expected.extend_from_slice(&0xffff_ffff_ffe0_0000u64.to_le_bytes());
        expected.extend_from_slice(&[0u8; 40]);
        expected.push(3); // multi-bit ECC
        expected.extend_from_slice(&[0u8; 7]);
        assert_eq!(expected.len(), 172);

        assert_eq!(block.encoded_len(), 172);
        assert_eq!(block.encode(), expected);
        let mut buf = [0xaau8; 200];
        assert_eq!(block.encode_into(&mut buf), Ok(172));
        assert_eq!(&buf[..172], &expected[..]);
        assert_eq!(StatusBlock::decode(&buf), Ok(block));
    }

    /// Two recoverable 4 KiB pages in one block (how the rest of a lost
    /// huge page is told), written out from the ACPI / UEFI tables: the
    /// block status counts 2 entries and sets "multiple uncorrectable";
    /// only the first entry is primary.
    #[test]
    fn known_bytes_two_pages() {
        let page = |a| GpaGranule::containing(vm_memory::GuestAddress(a), 12).unwrap();
        let block = StatusBlock::memory_errors(
            &[page(0x4020_0000), page(0x4020_1000)],
            Severity::Recoverable,
            1_795_545_200,
        );
        let mut expected = Vec::new();
        // Block header: 2 entries << 4 | multiple uncorrectable (bit 2) |
        // uncorrectable valid (bit 0).
        expected.extend_from_slice(&0x25u32.to_le_bytes());
        expected.extend_from_slice(&0u32.to_le_bytes()); // raw data offset
        expected.extend_from_slice(&0u32.to_le_bytes()); // raw data length
        expected.extend_from_slice(&304u32.to_le_bytes()); // 2 x (72 + 80)
        expected.extend_from_slice(&0u32.to_le_bytes()); // recoverable
        for (pa, flags) in [(0x4020_0000u64, 0x01u8), (0x4020_1000, 0x00)] {
            expected.extend_from_slice(&[
                0x14, 0x11, 0xbc, 0xa5, 0x64, 0x6f, 0xde, 0x4e, 0xb8, 0x63, 0x3e, 0x83, 0xed, 0x7c,
                0x83, 0xb1,
            ]);
            expected.extend_from_slice(&0u32.to_le_bytes()); // severity
            // Revision 0x300, valid bits: timestamp, flags: primary or not.
            expected.extend_from_slice(&[0x00, 0x03, 0x04, flags]);
            expected.extend_from_slice(&80u32.to_le_bytes());
            expected.extend_from_slice(&[0u8; 36]); // FRU id + text
            expected.extend_from_slice(&[0x20, 0x33, 0x18, 0x01, 0x24, 0x11, 0x26, 0x20]);
            // Memory error section: PA, PA mask, error type valid.
            expected.extend_from_slice(&0x4006u64.to_le_bytes());
            expected.extend_from_slice(&0u64.to_le_bytes());
            expected.extend_from_slice(&pa.to_le_bytes());
            expected.extend_from_slice(&0xffff_ffff_ffff_f000u64.to_le_bytes());
            expected.extend_from_slice(&[0u8; 40]);
            expected.push(3); // multi-bit ECC
            expected.extend_from_slice(&[0u8; 7]);
        }
        assert_eq!(expected.len(), 324);
        assert_eq!(block.encode(), expected);
        assert_eq!(StatusBlock::decode(&expected), Ok(block));
    }

    fn mixed() -> StatusBlock {
        let g = GpaGranule::containing(vm_memory::GuestAddress(0x8000_0000), 12).unwrap();
        StatusBlock::new()
            .with_entry(DataEntry::new(
                Section::Memory(MemoryErrorSection::for_granule(&g)),
                Severity::Corrected,
            ))
            .with_entry(DataEntry::new(
                Section::ArmProcessor(ArmProcessorSection::default()),
                Severity::Recoverable,
            ))
            .with_entry(DataEntry::new(
                Section::Raw(RawSection::new(
                    Guid::from_fields(1, 2, 3, [4; 8]),
                    vec![5; 7],
                )),
                Severity::Corrected,
            ))
            .with_raw_data(vec![1, 2, 3])
    }

    #[test]
    fn status_bits_and_severity() {
        let b = mixed();
        assert_eq!(b.error_severity(), Some(Severity::Recoverable));
        assert_eq!(b.block_status(), (3 << 4) | 0b1011);
        let b = b.with_entry(DataEntry::new(
            Section::Memory(MemoryErrorSection::default()),
            Severity::Fatal,
        ));
        assert_eq!(b.error_severity(), Some(Severity::Fatal));
        assert_eq!(b.block_status(), (4 << 4) | 0b1111);
        assert_eq!(StatusBlock::new().block_status(), 0);
        assert_eq!(StatusBlock::new().error_severity(), None);
    }

    #[test]
    fn round_trip_multi_entry_with_raw_data() {
        let b = mixed();
        let bytes = b.encode();
        let data_length = 72 * 3 + 80 + 40 + 7;
        assert_eq!(bytes.len(), 20 + data_length + 3);
        assert_eq!(
            u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize,
            20 + data_length
        );
        assert_eq!(StatusBlock::decode(&bytes), Ok(b));
    }

    #[test]
    fn empty_block_is_all_zero() {
        let bytes = StatusBlock::new().encode();
        assert_eq!(bytes, [0u8; 20]);
        assert_eq!(StatusBlock::decode(&bytes), Ok(StatusBlock::new()));
    }

    fn set_u32(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn decode_rejects_inconsistent_headers() {
        let good = mixed().encode();
        let mut b = good.clone();
        set_u32(&mut b, 0, (2 << 4) | 0b1011);
        assert_eq!(
            StatusBlock::decode(&b),
            Err(CperError::InconsistentCount {
                what: "error data entries",
                declared: 2,
                actual: 3
            })
        );
        let mut b = good.clone();
        set_u32(&mut b, 0, (4 << 4) | 0b1011);
        assert!(matches!(
            StatusBlock::decode(&b),
            Err(CperError::InconsistentCount {
                declared: 4,
                actual: 3,
                ..
            })
        ));
        let mut b = good.clone();
        set_u32(&mut b, 0, (3 << 4) | 0b0011);
        assert_eq!(
            StatusBlock::decode(&b),
            Err(CperError::BlockStatusMismatch {
                expected: 0x3b,
                found: 0x33
            })
        );
        let mut b = good.clone();
        set_u32(&mut b, 0, 0x4000 | 0x3b);
        assert!(matches!(
            StatusBlock::decode(&b),
            Err(CperError::ReservedBits { .. })
        ));
        let mut b = good.clone();
        set_u32(&mut b, 16, 2);
        assert_eq!(
            StatusBlock::decode(&b),
            Err(CperError::SeverityMismatch {
                expected: 0,
                found: 2
            })
        );
        let mut b = good.clone();
        set_u32(&mut b, 16, 7);
        assert!(matches!(
            StatusBlock::decode(&b),
            Err(CperError::BadSeverity { value: 7, .. })
        ));
        let mut b = good.clone();
        set_u32(&mut b, 4, 21);
        assert!(matches!(
            StatusBlock::decode(&b),
            Err(CperError::BadRawDataOffset { found: 21, .. })
        ));
        // data_length one byte short: the last entry no longer fits.
        let mut b = good.clone();
        let dl = u32::from_le_bytes(b[12..16].try_into().unwrap());
        set_u32(&mut b, 12, dl - 1);
        assert!(matches!(
            StatusBlock::decode(&b),
            Err(CperError::Truncated { .. })
        ));
        let mut b = good;
        set_u32(&mut b, 12, u32::MAX);
        assert!(matches!(
            StatusBlock::decode(&b),
            Err(CperError::Truncated { .. })
        ));
    }

    #[test]
    fn every_truncation_is_rejected() {
        let good = mixed().encode();
        for n in 0..good.len() {
            assert!(StatusBlock::decode(&good[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn encode_into_checks_space_and_count() {
        let b = mixed();
        let mut buf = vec![0u8; b.encoded_len() - 1];
        assert_eq!(
            b.encode_into(&mut buf),
            Err(CperError::BufferTooSmall {
                need: b.encoded_len(),
                have: b.encoded_len() - 1
            })
        );
        let mut many = StatusBlock::new();
        let e = DataEntry::new(
            Section::Raw(RawSection::new(MEMORY_ERROR_SECTION_GUID, Vec::new())),
            Severity::Informational,
        );
        many.entries = vec![e; MAX_ENTRIES + 1];
        assert_eq!(
            many.try_encode(),
            Err(CperError::TooManyEntries {
                what: "error data entries",
                count: MAX_ENTRIES + 1
            })
        );
    }
}
