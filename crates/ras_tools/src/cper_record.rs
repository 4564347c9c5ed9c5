// SPDX-License-Identifier: Apache-2.0
//! A standard CPER record (UEFI 2.10 N.2.1 "Record Header", N.2.2 "Section
//! Descriptor"): a 128-byte header starting with "CPER", one 72-byte
//! descriptor per section, then the section bodies.
//!
//! A GHES status block is not a record; [`Record::from_status_block`] wraps
//! its data entries into one (type, severity, flags, FRU fields and length
//! map 1:1 onto the descriptors; the first entry timestamp becomes the
//! record timestamp), so that record-based tools (libcper, EFI/ERST style
//! consumers) can read what the guest is given.

use ras::cper::{
    CperError, DataEntry, EntryFlags, Guid, Section, Severity, StatusBlock, Timestamp, read_wire,
};
use serde::{Deserialize, Serialize};
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::guid_text::guid;

/// Size of the record header.
pub const RECORD_HEADER_LEN: usize = 128;
/// Size of one section descriptor.
pub const SECTION_DESCRIPTOR_LEN: usize = 72;
/// Record revision written (as Linux' `CPER_RECORD_REV`); any 0x01xx is
/// accepted when decoding.
pub const RECORD_REVISION: u16 = 0x0100;
/// Section descriptor revision written (as Linux' `CPER_SEC_REV`); any
/// 0x01xx is accepted when decoding.
pub const SECTION_REVISION: u16 = 0x0100;
/// "CPER".
pub const RECORD_SIGNATURE: [u8; 4] = *b"CPER";
/// Signature end marker.
pub const RECORD_SIGNATURE_END: u32 = 0xffff_ffff;

/// Record header validation bits (UEFI 2.10 Table N-1).
pub mod validation {
    /// Platform id valid.
    pub const PLATFORM_ID: u32 = 1 << 0;
    /// Timestamp valid.
    pub const TIMESTAMP: u32 = 1 << 1;
    /// Partition id valid.
    pub const PARTITION_ID: u32 = 1 << 2;
    /// All defined bits.
    pub const ALL: u32 = 0x7;
}

/// Section descriptor validation bits (UEFI 2.10 Table N-5).
pub mod section_validation {
    /// FRU id valid.
    pub const FRU_ID: u8 = 1 << 0;
    /// FRU string valid.
    pub const FRU_STRING: u8 = 1 << 1;
    /// All defined bits.
    pub const ALL: u8 = 0x3;
}

/// Record header flags (UEFI 2.10 Table N-1 "Flags").
pub mod record_flags {
    /// The error was recovered.
    pub const RECOVERED: u32 = 1 << 0;
    /// From a previous boot.
    pub const PREVERR: u32 = 1 << 1;
    /// Simulated (injected).
    pub const SIMULATED: u32 = 1 << 2;
}

/// Notification type GUIDs (UEFI 2.10 Table N-1 "Notification Type").
pub mod notification {
    use ras::cper::Guid;

    use super::guid;

    /// Corrected Machine Check.
    pub const CMC: Guid = guid("2DCE8BB1-BDD7-450E-B9AD-9CF4EBD4F890");
    /// Corrected Platform Error.
    pub const CPE: Guid = guid("4E292F96-D843-4A55-A8C2-D481F27EBEEE");
    /// Machine Check Exception.
    pub const MCE: Guid = guid("E8F56FFE-919C-4CC5-BA88-65ABE14913BB");
    /// ARM Synchronous External Abort.
    pub const SEA: Guid = guid("9A78788A-BBE8-11E4-809E-67611E5D46B0");
    /// ARM SError Interrupt.
    pub const SEI: Guid = guid("5C284C81-B0AE-4E87-A322-B04C85624323");
}

/// Creator id of records written by this crate (a random, fixed GUID).
pub const RAS_CREATOR_ID: Guid = guid("3D0B1C9E-5F27-4A1B-9A4E-7C2F6B8E1D05");

/// On-wire record header (UEFI 2.10 Table N-1).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct RecordHeaderWire {
    /// Offset 0: "CPER".
    pub signature_start: [u8; 4],
    /// Offset 4.
    pub revision: U16,
    /// Offset 6: 0xFFFFFFFF.
    pub signature_end: U32,
    /// Offset 10.
    pub section_count: U16,
    /// Offset 12.
    pub error_severity: U32,
    /// Offset 16.
    pub validation_bits: U32,
    /// Offset 20: whole record.
    pub record_length: U32,
    /// Offset 24.
    pub timestamp: U64,
    /// Offset 32.
    pub platform_id: [u8; 16],
    /// Offset 48.
    pub partition_id: [u8; 16],
    /// Offset 64.
    pub creator_id: [u8; 16],
    /// Offset 80.
    pub notification_type: [u8; 16],
    /// Offset 96.
    pub record_id: U64,
    /// Offset 104.
    pub flags: U32,
    /// Offset 108.
    pub persistence_info: U64,
    /// Offset 116.
    pub reserved: [u8; 12],
}
ras::wire_layout!(RecordHeaderWire = RECORD_HEADER_LEN;
    signature_start @ 0, revision @ 4, signature_end @ 6, section_count @ 10, error_severity @ 12, validation_bits @ 16,
    record_length @ 20, timestamp @ 24, platform_id @ 32, partition_id @ 48, creator_id @ 64,
    notification_type @ 80, record_id @ 96, flags @ 104, persistence_info @ 108, reserved @ 116);

/// On-wire section descriptor (UEFI 2.10 Table N-5).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct SectionDescriptorWire {
    /// Offset 0: from the start of the record.
    pub section_offset: U32,
    /// Offset 4.
    pub section_length: U32,
    /// Offset 8.
    pub revision: U16,
    /// Offset 10.
    pub validation_bits: u8,
    /// Offset 11.
    pub reserved: u8,
    /// Offset 12.
    pub flags: U32,
    /// Offset 16.
    pub section_type: [u8; 16],
    /// Offset 32.
    pub fru_id: [u8; 16],
    /// Offset 48.
    pub section_severity: U32,
    /// Offset 52.
    pub fru_text: [u8; 20],
}
ras::wire_layout!(SectionDescriptorWire = SECTION_DESCRIPTOR_LEN;
    section_offset @ 0, section_length @ 4, revision @ 8, validation_bits @ 10, reserved @ 11,
    flags @ 12, section_type @ 16, fru_id @ 32, section_severity @ 48, fru_text @ 52);

/// A CPER record. Its sections are [`DataEntry`]s whose `timestamp` is not
/// used (a record has one timestamp, [`Record::timestamp`]): encoding ignores
/// it and decoding leaves it `None`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Notification type ([`notification`]).
    pub notification_type: Guid,
    /// Creator id.
    pub creator_id: Guid,
    /// Record id.
    pub record_id: u64,
    /// Flags ([`record_flags`]).
    pub flags: u32,
    /// Timestamp, when valid.
    pub timestamp: Option<Timestamp>,
    /// Platform id, when valid.
    pub platform_id: Option<Guid>,
    /// Partition id, when valid.
    pub partition_id: Option<Guid>,
    /// The sections, in order.
    pub sections: Vec<DataEntry>,
}

impl Record {
    /// Wraps the entries of `block` (its raw data is dropped: records have
    /// none). The first entry timestamp becomes the record timestamp.
    pub fn from_status_block(block: &StatusBlock, notification_type: Guid, record_id: u64) -> Self {
        Record {
            notification_type,
            creator_id: RAS_CREATOR_ID,
            record_id,
            flags: 0,
            timestamp: block.entries.iter().find_map(|e| e.timestamp),
            platform_id: None,
            partition_id: None,
            sections: block
                .entries
                .iter()
                .map(|e| DataEntry {
                    timestamp: None,
                    ..e.clone()
                })
                .collect(),
        }
    }

    /// The data entries of a status block: the sections, each with the
    /// record timestamp.
    pub fn to_status_block(&self) -> StatusBlock {
        StatusBlock {
            entries: self
                .sections
                .iter()
                .map(|e| DataEntry {
                    timestamp: self.timestamp,
                    ..e.clone()
                })
                .collect(),
            raw_data: Vec::new(),
        }
    }

    /// The record severity: the most severe section's (informational when
    /// there is none).
    pub fn error_severity(&self) -> Severity {
        Severity::most_severe_of(self.sections.iter().map(|e| e.severity))
            .unwrap_or(Severity::Informational)
    }

    fn validation_bits(&self) -> u32 {
        (if self.platform_id.is_some() {
            validation::PLATFORM_ID
        } else {
            0
        }) | (if self.timestamp.is_some() {
            validation::TIMESTAMP
        } else {
            0
        }) | (if self.partition_id.is_some() {
            validation::PARTITION_ID
        } else {
            0
        })
    }

    fn body_start(&self) -> usize {
        RECORD_HEADER_LEN + SECTION_DESCRIPTOR_LEN * self.sections.len()
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        self.body_start()
            + self
                .sections
                .iter()
                .map(|s| s.section.encoded_len())
                .sum::<usize>()
    }

    /// Encodes into `buf`, returning the bytes written. Does not allocate.
    pub fn encode_into(&self, buf: &mut [u8]) -> Result<usize, CperError> {
        let len = self.encoded_len();
        let have = buf.len();
        if have < len {
            return Err(CperError::BufferTooSmall { need: len, have });
        }
        let too_long = |what| CperError::TooLong { what, len };
        let header = RecordHeaderWire {
            signature_start: RECORD_SIGNATURE,
            revision: RECORD_REVISION.into(),
            signature_end: RECORD_SIGNATURE_END.into(),
            section_count: u16::try_from(self.sections.len())
                .map_err(|_| CperError::TooManyEntries {
                    what: "CPER sections",
                    count: self.sections.len(),
                })?
                .into(),
            error_severity: self.error_severity().to_u32().into(),
            validation_bits: self.validation_bits().into(),
            record_length: u32::try_from(len)
                .map_err(|_| too_long("CPER record"))?
                .into(),
            timestamp: self.timestamp.map_or(0, |t| t.to_u64()).into(),
            platform_id: self.platform_id.unwrap_or_default().0,
            partition_id: self.partition_id.unwrap_or_default().0,
            creator_id: self.creator_id.0,
            notification_type: self.notification_type.0,
            record_id: self.record_id.into(),
            flags: self.flags.into(),
            persistence_info: 0.into(),
            reserved: [0; 12],
        };
        header
            .write_to_prefix(buf)
            .map_err(|_| CperError::BufferTooSmall { need: len, have })?;
        let mut body_off = self.body_start();
        for (i, e) in self.sections.iter().enumerate() {
            let body_len = e.section.encoded_len();
            let desc = SectionDescriptorWire {
                section_offset: u32::try_from(body_off)
                    .map_err(|_| too_long("CPER record"))?
                    .into(),
                section_length: u32::try_from(body_len)
                    .map_err(|_| too_long("CPER section"))?
                    .into(),
                revision: SECTION_REVISION.into(),
                validation_bits: (if e.fru_id.is_some() {
                    section_validation::FRU_ID
                } else {
                    0
                }) | (if e.fru_text.is_some() {
                    section_validation::FRU_STRING
                } else {
                    0
                }),
                reserved: 0,
                flags: u32::from(e.flags.0).into(),
                section_type: e.section.section_type().0,
                fru_id: e.fru_id.unwrap_or_default().0,
                section_severity: e.severity.to_u32().into(),
                fru_text: e.fru_text.unwrap_or_default(),
            };
            let d = RECORD_HEADER_LEN + SECTION_DESCRIPTOR_LEN * i;
            desc.write_to_prefix(&mut buf[d..])
                .map_err(|_| CperError::BufferTooSmall { need: len, have })?;
            let n = e
                .section
                .encode_into(&mut buf[body_off..body_off + body_len])?;
            body_off += n;
        }
        Ok(len)
    }

    /// Encodes into a new vector.
    pub fn try_encode(&self) -> Result<Vec<u8>, CperError> {
        let mut v = vec![0u8; self.encoded_len()];
        self.encode_into(&mut v)?;
        Ok(v)
    }

    /// Encodes into a new vector.
    ///
    /// # Panics
    ///
    /// With more than 65535 sections or more than 4 GiB of data (use
    /// [`Record::try_encode`] when that can happen).
    pub fn encode(&self) -> Vec<u8> {
        match self.try_encode() {
            Ok(v) => v,
            Err(e) => panic!("Cannot encode a CPER record: {e}"),
        }
    }

    /// Decodes and validates a record at the start of `bytes` (bytes after
    /// `record_length` are ignored). Rejects a bad signature or revision,
    /// reserved bits, descriptors or sections outside the record, a record
    /// severity that is not the most severe section's, and invalid sections.
    pub fn decode(bytes: &[u8]) -> Result<Self, CperError> {
        let (h, _) = read_wire::<RecordHeaderWire>(bytes, "CPER record header")?;
        if h.signature_start != RECORD_SIGNATURE {
            return Err(CperError::BadSignature {
                what: "CPER record signature",
                found: u32::from_le_bytes(h.signature_start),
            });
        }
        if h.signature_end.get() != RECORD_SIGNATURE_END {
            return Err(CperError::BadSignature {
                what: "CPER record signature end",
                found: h.signature_end.get(),
            });
        }
        let revision = h.revision.get();
        if revision >> 8 != 1 {
            return Err(CperError::BadRevision {
                what: "CPER record",
                revision,
            });
        }
        let v = h.validation_bits.get();
        if v & !validation::ALL != 0 {
            return Err(CperError::ReservedBits {
                what: "CPER record validation bits",
                value: v.into(),
            });
        }
        let record_length = h.record_length.get() as usize;
        if record_length > bytes.len() {
            return Err(CperError::Truncated {
                what: "CPER record",
                need: record_length,
                have: bytes.len(),
            });
        }
        let count = usize::from(h.section_count.get());
        let body_start = RECORD_HEADER_LEN + SECTION_DESCRIPTOR_LEN * count;
        if body_start > record_length {
            return Err(CperError::CountExceedsLength {
                what: "CPER section descriptors",
                count,
                length: record_length,
            });
        }
        let record = &bytes[..record_length];
        let mut sections = Vec::with_capacity(count);
        for i in 0..count {
            let d = RECORD_HEADER_LEN + SECTION_DESCRIPTOR_LEN * i;
            let (desc, _) =
                SectionDescriptorWire::read_from_prefix(&record[d..]).map_err(|_| {
                    CperError::Truncated {
                        what: "CPER section descriptor",
                        need: d + SECTION_DESCRIPTOR_LEN,
                        have: record_length,
                    }
                })?;
            let rev = desc.revision.get();
            if rev >> 8 != 1 {
                return Err(CperError::BadRevision {
                    what: "CPER section descriptor",
                    revision: rev,
                });
            }
            let sv = desc.validation_bits;
            if sv & !section_validation::ALL != 0 {
                return Err(CperError::ReservedBits {
                    what: "CPER section validation bits",
                    value: sv.into(),
                });
            }
            let flags = desc.flags.get();
            let flags = u8::try_from(flags).map_err(|_| CperError::ReservedBits {
                what: "CPER section flags",
                value: flags.into(),
            })?;
            let raw_sev = desc.section_severity.get();
            let severity = Severity::from_u32(raw_sev).ok_or(CperError::BadSeverity {
                what: "CPER section",
                value: raw_sev,
            })?;
            let offset = desc.section_offset.get() as usize;
            let length = desc.section_length.get() as usize;
            if offset < body_start || offset.saturating_add(length) > record_length {
                return Err(CperError::SectionOutOfBounds {
                    index: i,
                    offset,
                    length,
                    record_length,
                });
            }
            let section =
                Section::decode(Guid(desc.section_type), &record[offset..offset + length])?;
            sections.push(DataEntry {
                section,
                severity,
                flags: EntryFlags(flags),
                fru_id: (sv & section_validation::FRU_ID != 0).then_some(Guid(desc.fru_id)),
                fru_text: (sv & section_validation::FRU_STRING != 0).then_some(desc.fru_text),
                timestamp: None,
            });
        }
        let raw_sev = h.error_severity.get();
        let found = Severity::from_u32(raw_sev).ok_or(CperError::BadSeverity {
            what: "CPER record",
            value: raw_sev,
        })?;
        let timestamp = if v & validation::TIMESTAMP != 0 {
            Some(Timestamp::from_u64(h.timestamp.get())?)
        } else {
            None
        };
        let rec = Record {
            notification_type: Guid(h.notification_type),
            creator_id: Guid(h.creator_id),
            record_id: h.record_id.get(),
            flags: h.flags.get(),
            timestamp,
            platform_id: (v & validation::PLATFORM_ID != 0).then_some(Guid(h.platform_id)),
            partition_id: (v & validation::PARTITION_ID != 0).then_some(Guid(h.partition_id)),
            sections,
        };
        if !rec.sections.is_empty() && rec.error_severity() != found {
            return Err(CperError::SeverityMismatch {
                expected: rec.error_severity().to_u32(),
                found: raw_sev,
            });
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use ras::cper::arm::{ArmErrorInfo, ArmProcessorSection};
    use ras::cper::raw::RawSection;
    use ras::granule::GpaGranule;

    use super::*;

    fn block() -> StatusBlock {
        let g = GpaGranule::containing(vm_memory::GuestAddress(0x4020_0000), 21).unwrap();
        let mut b = StatusBlock::memory_error(&g, Severity::Recoverable, 1_795_545_200);
        b.entries[0].fru_text = Some(*b"DIMM 0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        b.with_entry(DataEntry::new(
            Section::ArmProcessor(ArmProcessorSection {
                error_info: vec![ArmErrorInfo::default()],
                ..Default::default()
            }),
            Severity::Corrected,
        ))
        .with_entry(DataEntry::new(
            Section::Raw(RawSection::new(
                Guid::from_fields(1, 2, 3, [4; 8]),
                vec![9; 3],
            )),
            Severity::Informational,
        ))
    }

    #[test]
    fn memory_record_known_bytes() {
        let g = GpaGranule::containing(vm_memory::GuestAddress(0x4020_0000), 21).unwrap();
        let b = StatusBlock::memory_error(&g, Severity::Recoverable, 1_795_545_200);
        let r = Record::from_status_block(&b, notification::SEA, 7);
        let bytes = r.encode();
        assert_eq!(bytes.len(), 128 + 72 + 80);
        assert_eq!(&bytes[0..4], b"CPER");
        assert_eq!(
            &bytes[4..16],
            &[0, 1, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0]
        );
        assert_eq!(&bytes[16..24], &[2, 0, 0, 0, 0x18, 0x01, 0, 0]);
        assert_eq!(
            &bytes[24..32],
            &[0x20, 0x33, 0x18, 0x01, 0x24, 0x11, 0x26, 0x20]
        );
        assert_eq!(&bytes[80..96], notification::SEA.as_bytes());
        assert_eq!(&bytes[96..104], &7u64.to_le_bytes());
        // Descriptor.
        assert_eq!(&bytes[128..140], &[200, 0, 0, 0, 80, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(&bytes[140..144], &1u32.to_le_bytes()); // primary
        assert_eq!(
            &bytes[144..160],
            b.entries[0].section.section_type().as_bytes()
        );
        assert_eq!(&bytes[176..180], &0u32.to_le_bytes()); // recoverable
        // Body = the status block's section body.
        assert_eq!(&bytes[200..], &b.encode()[92..]);
        assert_eq!(Record::decode(&bytes), Ok(r.clone()));
        assert_eq!(r.to_status_block(), b);
    }

    #[test]
    fn multi_section_round_trip_and_truncations() {
        let b = block();
        let r = Record::from_status_block(&b, notification::CPE, 1);
        let bytes = r.encode();
        assert_eq!(Record::decode(&bytes), Ok(r.clone()));
        assert_eq!(r.to_status_block().entries.len(), 3);
        for n in 0..bytes.len() {
            assert!(Record::decode(&bytes[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn decode_rejects_bad_headers() {
        let bytes = Record::from_status_block(&block(), notification::CPE, 1).encode();
        let mut b = bytes.clone();
        b[0] = b'X';
        assert!(matches!(
            Record::decode(&b),
            Err(CperError::BadSignature { .. })
        ));
        let mut b = bytes.clone();
        b[9] = 0;
        assert!(matches!(
            Record::decode(&b),
            Err(CperError::BadSignature { .. })
        ));
        let mut b = bytes.clone();
        b[5] = 2;
        assert!(matches!(
            Record::decode(&b),
            Err(CperError::BadRevision { .. })
        ));
        let mut b = bytes.clone();
        b[12] = 2;
        assert_eq!(
            Record::decode(&b),
            Err(CperError::SeverityMismatch {
                expected: 0,
                found: 2
            })
        );
        let mut b = bytes.clone();
        b[10] = 40; // 40 sections
        assert!(matches!(
            Record::decode(&b),
            Err(CperError::CountExceedsLength { .. })
        ));
        let mut b = bytes.clone();
        b[128] = 0; // first section offset 0: inside the header
        assert!(matches!(
            Record::decode(&b),
            Err(CperError::SectionOutOfBounds { index: 0, .. })
        ));
        let mut b = bytes;
        b[128 + 13] = 1; // flags 0x100
        assert!(matches!(
            Record::decode(&b),
            Err(CperError::ReservedBits { .. })
        ));
    }
}
