// SPDX-License-Identifier: Apache-2.0
//! Property tests of the CPER codec (UEFI 2.10 Appendix N, ACPI 6.5
//! §18.3.2.7): random blocks and records round-trip, every truncation of a
//! valid encoding is rejected, a memory-error block has the spec's bytes
//! at the spec's offsets, and random or mutated bytes never make the
//! decoders panic while valid ones still decode to what was encoded.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use ras::cper::arm::{info_validation, validation as arm_validation};
use ras::cper::memory::validation as mem_validation;
use ras::cper::{
    ARM_PROCESSOR_SECTION_GUID, ArmContextInfo, ArmErrorInfo, ArmErrorTypes, ArmProcessorSection,
    DataEntry, EntryFlags, Guid, MEMORY_ERROR_SECTION_GUID, MemoryErrorSection, RawSection,
    Section, Severity, StatusBlock, Timestamp,
};
use ras::granule::GpaGranule;
use ras_tools::cper_record::{Record, notification};
use vm_memory::GuestAddress;

fn severity() -> impl Strategy<Value = Severity> {
    prop_oneof![
        Just(Severity::Recoverable),
        Just(Severity::Fatal),
        Just(Severity::Corrected),
        Just(Severity::Informational),
    ]
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (
        0u8..60,
        0u8..60,
        0u8..24,
        any::<bool>(),
        1u8..32,
        1u8..13,
        0u16..10_000,
    )
        .prop_map(
            |(seconds, minutes, hours, precise, day, month, year)| Timestamp {
                seconds,
                minutes,
                hours,
                precise,
                day,
                month,
                year,
            },
        )
}

fn memory() -> impl Strategy<Value = MemoryErrorSection> {
    (
        (any::<u64>(), any::<[u64; 3]>(), any::<[u16; 8]>()),
        (any::<[u64; 3]>(), any::<[u8; 2]>(), any::<[u16; 3]>()),
    )
        .prop_map(|((v, a, b), (c, d, e))| MemoryErrorSection {
            validation_bits: v & mem_validation::ALL,
            error_status: a[0],
            physical_address: a[1],
            physical_address_mask: a[2],
            node: b[0],
            card: b[1],
            module: b[2],
            bank: b[3],
            device: b[4],
            row: b[5],
            column: b[6],
            bit_position: b[7],
            requestor_id: c[0],
            responder_id: c[1],
            target_id: c[2],
            error_type: d[0],
            extended: d[1],
            rank_number: e[0],
            card_handle: e[1],
            module_handle: e[2],
        })
}

fn arm_error_info() -> impl Strategy<Value = ArmErrorInfo> {
    (
        any::<u8>(),
        any::<u16>(),
        (1u8..16).prop_map(|t| t << 1), // non-empty subsets of bits 1..=4
        any::<u16>(),
        any::<u8>(),
        any::<[u64; 3]>(),
    )
        .prop_map(|(version, v, t, multiple_error, flags, a)| ArmErrorInfo {
            version,
            validation_bits: v & info_validation::ALL,
            error_type: ArmErrorTypes::from_bits(t).unwrap(),
            multiple_error,
            flags,
            error_information: a[0],
            virtual_fault_address: a[1],
            physical_fault_address: a[2],
        })
}

fn arm() -> impl Strategy<Value = ArmProcessorSection> {
    (
        (
            any::<u32>(),
            any::<u8>(),
            any::<[u64; 2]>(),
            any::<[u32; 2]>(),
        ),
        vec(arm_error_info(), 0..4),
        vec(
            (any::<u16>(), any::<u16>(), vec(any::<u8>(), 0..64)).prop_map(|(v, t, r)| {
                ArmContextInfo {
                    version: v,
                    register_context_type: t,
                    registers: r,
                }
            }),
            0..3,
        ),
        vec(any::<u8>(), 0..16),
    )
        .prop_map(
            |((v, level, ids, states), error_info, context_info, vendor)| ArmProcessorSection {
                validation_bits: v & arm_validation::ALL,
                error_affinity_level: level,
                mpidr: ids[0],
                midr: ids[1],
                running_state: states[0],
                psci_state: states[1],
                error_info,
                context_info,
                vendor_specific: vendor,
            },
        )
}

fn raw() -> impl Strategy<Value = RawSection> {
    (
        any::<[u8; 16]>()
            .prop_map(Guid)
            .prop_filter("typed section GUID", |g| {
                *g != MEMORY_ERROR_SECTION_GUID && *g != ARM_PROCESSOR_SECTION_GUID
            }),
        vec(any::<u8>(), 0..96),
    )
        .prop_map(|(g, d)| RawSection::new(g, d))
}

fn section() -> impl Strategy<Value = Section> {
    prop_oneof![
        memory().prop_map(Section::Memory),
        arm().prop_map(Section::ArmProcessor),
        raw().prop_map(Section::Raw),
    ]
}

fn entry() -> impl Strategy<Value = DataEntry> {
    (
        section(),
        severity(),
        any::<u8>(),
        option::of(any::<[u8; 16]>().prop_map(Guid)),
        option::of(any::<[u8; 20]>()),
        option::of(timestamp()),
    )
        .prop_map(
            |(section, severity, flags, fru_id, fru_text, timestamp)| DataEntry {
                section,
                severity,
                flags: EntryFlags(flags),
                fru_id,
                fru_text,
                timestamp,
            },
        )
}

fn block() -> impl Strategy<Value = StatusBlock> {
    (vec(entry(), 0..5), vec(any::<u8>(), 0..16))
        .prop_map(|(entries, raw_data)| StatusBlock { entries, raw_data })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn block_round_trips(b in block()) {
        let bytes = b.encode();
        prop_assert_eq!(bytes.len(), b.encoded_len());
        let mut buf = vec![0x5au8; bytes.len() + 7];
        prop_assert_eq!(b.encode_into(&mut buf), Ok(bytes.len()));
        prop_assert_eq!(&buf[..bytes.len()], &bytes[..]);
        // Bytes after the block (the rest of a guest region) are ignored.
        prop_assert_eq!(StatusBlock::decode(&buf), Ok(b.clone()));
        prop_assert_eq!(StatusBlock::decode(&bytes), Ok(b));
    }

    #[test]
    fn block_truncations_are_rejected(b in block()) {
        let bytes = b.encode();
        for n in 0..bytes.len() {
            prop_assert!(StatusBlock::decode(&bytes[..n]).is_err(), "prefix {}", n);
        }
        prop_assert!(b.encode_into(&mut vec![0u8; bytes.len() - 1]).is_err());
    }

    #[test]
    fn record_round_trips_and_truncations_are_rejected(b in block(), id in any::<u64>()) {
        let r = Record::from_status_block(&b, notification::SEA, id);
        let bytes = r.encode();
        prop_assert_eq!(bytes.len(), r.encoded_len());
        prop_assert_eq!(Record::decode(&bytes), Ok(r.clone()));
        let back = r.to_status_block();
        prop_assert_eq!(back.entries.len(), b.entries.len());
        for (x, y) in back.entries.iter().zip(&b.entries) {
            prop_assert_eq!(&x.section, &y.section);
            prop_assert_eq!(x.severity, y.severity);
            prop_assert_eq!(x.flags, y.flags);
        }
        for n in 0..bytes.len() {
            prop_assert!(Record::decode(&bytes[..n]).is_err(), "prefix {}", n);
        }
    }

    #[test]
    fn memory_granule_block_reports_granule(
        gpa in any::<u64>(), shift in 12u8..=34, sev in severity(), t in any::<u64>()
    ) {
        let g = GpaGranule::containing(GuestAddress(gpa), shift).unwrap();
        let bytes = StatusBlock::memory_error(&g, sev, t).encode();
        // ACPI 6.5 Table 18.19 header (20) + Table 18.20 entry (72) + UEFI
        // 2.10 N.2.5 section (80).
        prop_assert_eq!(bytes.len(), 20 + 72 + 80);
        let sev_value = match sev {
            Severity::Recoverable => 0u32,
            Severity::Fatal => 1,
            Severity::Corrected => 2,
            Severity::Informational => 3,
        };
        // One entry (bits 4..13); uncorrectable valid (bit 0) for
        // recoverable and fatal, correctable valid (bit 1) for corrected,
        // neither for informational.
        let status = 0x10u32 | [1, 1, 2, 0][sev_value as usize];
        prop_assert_eq!(&bytes[0..4], &status.to_le_bytes());
        prop_assert_eq!(&bytes[12..16], &152u32.to_le_bytes());
        prop_assert_eq!(&bytes[16..20], &sev_value.to_le_bytes());
        // The entry: memory section GUID, severity, 80-byte section.
        prop_assert_eq!(
            &bytes[20..36],
            &[
                0x14, 0x11, 0xbc, 0xa5, 0x64, 0x6f, 0xde, 0x4e, 0xb8, 0x63, 0x3e, 0x83, 0xed,
                0x7c, 0x83, 0xb1
            ]
        );
        prop_assert_eq!(&bytes[36..40], &sev_value.to_le_bytes());
        prop_assert_eq!(&bytes[44..48], &80u32.to_le_bytes());
        let body = &bytes[92..];
        // Physical address (granule base) and mask, error type.
        let mask = !((1u64 << shift) - 1);
        prop_assert_eq!(&body[0..8], &0x4006u64.to_le_bytes());
        prop_assert_eq!(&body[16..24], &(gpa & mask).to_le_bytes());
        prop_assert_eq!(&body[24..32], &mask.to_le_bytes());
        prop_assert_eq!(body[72], 3);
        let d = StatusBlock::decode(&bytes).unwrap();
        prop_assert_eq!(d.error_severity(), Some(sev));
    }

    /// Random bytes never make a decoder panic; whatever decodes
    /// re-encodes to the same value. And a valid encoding followed by the
    /// same random bytes still decodes to exactly what was encoded (a
    /// decoder that refused everything would fail here).
    #[test]
    fn random_bytes_never_panic_and_valid_prefixes_decode(
        bytes in vec(any::<u8>(), 0..512),
        b in block(),
        m in memory(),
    ) {
        if let Ok(d) = StatusBlock::decode(&bytes) {
            prop_assert_eq!(StatusBlock::decode(&d.encode()), Ok(d));
        }
        if let Ok(r) = Record::decode(&bytes) {
            prop_assert_eq!(Record::decode(&r.encode()), Ok(r));
        }
        if let Ok((e, used)) = DataEntry::decode_prefix(&bytes) {
            prop_assert!(used <= bytes.len());
            prop_assert_eq!(e.encoded_len(), used);
        }
        if let Ok(a) = ArmProcessorSection::decode(&bytes) {
            let mut buf = vec![0u8; a.encoded_len()];
            prop_assert_eq!(a.encode_into(&mut buf), Ok(buf.len()));
            prop_assert_eq!(ArmProcessorSection::decode(&buf), Ok(a));
        }
        if let Ok(s) = MemoryErrorSection::decode(&bytes) {
            prop_assert_eq!(bytes.len(), 80);
            let mut buf = [0u8; 80];
            prop_assert_eq!(s.encode_into(&mut buf), Ok(80));
            prop_assert_eq!(&buf[..], &bytes[..]);
        }

        let mut with_tail = b.encode();
        with_tail.extend_from_slice(&bytes);
        prop_assert_eq!(StatusBlock::decode(&with_tail), Ok(b.clone()));
        if let Some(first) = b.entries.first() {
            let (e, used) = DataEntry::decode_prefix(&with_tail[20..]).unwrap();
            prop_assert_eq!(&e, first);
            prop_assert_eq!(used, first.encoded_len());
        }
        let mut section = [0u8; 80];
        prop_assert_eq!(m.encode_into(&mut section), Ok(80));
        prop_assert_eq!(MemoryErrorSection::decode(&section), Ok(m));
    }

    /// Every 80-byte memory error section whose validation bits are the
    /// UEFI 2.10 N.2.5 ones (bits 0..21) decodes, and re-encodes to the
    /// same bytes; a reserved validation bit is refused.
    #[test]
    fn memory_section_bytes_round_trip(mut bytes in any::<[u8; 80]>(), reserved in 22u32..64) {
        let bits = u64::from_le_bytes(bytes[..8].try_into().unwrap()) & ((1 << 22) - 1);
        bytes[..8].copy_from_slice(&bits.to_le_bytes());
        let s = MemoryErrorSection::decode(&bytes).unwrap();
        prop_assert_eq!(s.validation_bits, bits);
        prop_assert_eq!(
            s.physical_address,
            u64::from_le_bytes(bytes[16..24].try_into().unwrap())
        );
        let mut buf = [0u8; 80];
        prop_assert_eq!(s.encode_into(&mut buf), Ok(80));
        prop_assert_eq!(buf, bytes);
        bytes[..8].copy_from_slice(&(bits | 1 << reserved).to_le_bytes());
        prop_assert!(MemoryErrorSection::decode(&bytes).is_err());
    }

    /// Mutated encodings never make the decoders panic; an unmutated one
    /// (every edit wrote the byte already there) decodes to the original.
    #[test]
    fn mutated_encodings_never_panic(
        b in block(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        record in any::<bool>(),
    ) {
        let original = if record {
            Record::from_status_block(&b, notification::CPE, 1).encode()
        } else {
            b.encode()
        };
        let mut bytes = original.clone();
        for (i, v) in edits {
            let i = i.index(bytes.len());
            bytes[i] = v;
        }
        if let Ok(d) = StatusBlock::decode(&bytes) {
            prop_assert_eq!(StatusBlock::decode(&d.encode()), Ok(d));
        }
        if let Ok(r) = Record::decode(&bytes) {
            prop_assert_eq!(Record::decode(&r.encode()), Ok(r));
        }
        if bytes == original {
            if record {
                let r = Record::from_status_block(&b, notification::CPE, 1);
                prop_assert_eq!(Record::decode(&bytes), Ok(r));
            } else {
                prop_assert_eq!(StatusBlock::decode(&bytes), Ok(b));
            }
        }
    }
}
