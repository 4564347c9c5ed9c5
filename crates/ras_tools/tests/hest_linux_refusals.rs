// SPDX-License-Identifier: Apache-2.0
//! `ras_tools::hest_decode::parse` refuses every HEST a Linux guest refuses, each with
//! its own reason, and accepts (with a warning) what Linux accepts.
//!
//! The good table is written out byte by byte from ACPI 6.5 §5.2.6 (table
//! header), §18.3.2 (HEST: error source count at offset 36, entries from
//! offset 40) and §18.3.2.8 (GHESv2, 92 bytes), not produced by
//! `HestBuilder`. Each refusal test damages exactly one field at its spec
//! offset, re-checksums the table (so that only that field is wrong) and
//! expects exactly that reason. The Linux function each rule mirrors is
//! named on the `HestParseError` variant.

use ras_tools::hest_decode::{HestParseError, HestWarning, Register, parse};

/// Offset of entry 0 and entry 1 (ACPI 6.5 §18.3.2: entries start at 40;
/// a GHESv2 entry is 92 bytes).
const E0: usize = 40;
const E1: usize = 132;

// GHESv2 field offsets inside an entry (ACPI 6.5 §18.3.2.8).
const TYPE: usize = 0;
const SOURCE_ID: usize = 2;
const ENABLED: usize = 7;
const RECORDS: usize = 8;
const SECTIONS: usize = 12;
const ESA_SPACE: usize = 20;
const ESA_BIT_WIDTH: usize = 21;
const ESA_BIT_OFFSET: usize = 22;
const ESA_ACCESS_SIZE: usize = 23;
const ESA_ADDRESS: usize = 24;
const NOTIFY_TYPE: usize = 32;
const POLL_INTERVAL: usize = 36;
const BLOCK_LEN: usize = 60;
const ACK_ACCESS_SIZE: usize = 67;
const ACK_ADDRESS: usize = 68;

/// One GHESv2 entry, field by field from ACPI 6.5 §18.3.2.8.
#[rustfmt::skip]
fn ghes_v2(id: u8, notify: u8, interval_ms: u16, esa: u32, ack: u32) -> Vec<u8> {
    let mut e = vec![
        10, 0,              // 0: type 10 (GHESv2)
        id, 0,              // 2: source id
        0xff, 0xff,         // 4: related source id: none
        0,                  // 6: flags
        1,                  // 7: enabled
        1, 0, 0, 0,         // 8: records to pre-allocate 1
        1, 0, 0, 0,         // 12: max sections per record 1
        0, 4, 0, 0,         // 16: max raw data length 1024
        0, 64, 0, 4,        // 20: ESA GAS: system memory, 64 bits, offset 0, qword
    ];
    e.extend_from_slice(&u64::from(esa).to_le_bytes()); // 24: ESA address
    e.extend_from_slice(&[notify, 28, 0, 0]);            // 32: type, length 28, cwe
    e.extend_from_slice(&u32::from(interval_ms).to_le_bytes()); // 36: poll interval
    e.extend_from_slice(&[0; 20]);                       // 40..60: vector, thresholds
    e.extend_from_slice(&[0, 4, 0, 0]);                  // 60: block length 1024
    e.extend_from_slice(&[0, 64, 0, 4]);                 // 64: read ack GAS
    e.extend_from_slice(&u64::from(ack).to_le_bytes());  // 68: read ack address
    e.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0, 0, 0, 0]); // 76: preserve
    e.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);      // 84: write
    assert_eq!(e.len(), 92);
    e
}

/// A table: ACPI header (§5.2.6), count, entries; checksummed.
fn table(count: u32, entries: &[Vec<u8>]) -> Vec<u8> {
    let len = 40 + entries.iter().map(Vec::len).sum::<usize>();
    let mut t = Vec::new();
    t.extend_from_slice(b"HEST"); // 0: signature
    t.extend_from_slice(&(len as u32).to_le_bytes()); // 4: length
    t.extend_from_slice(&[1, 0]); // 8: revision 1, 9: checksum
    t.extend_from_slice(b"OEMIDXTABLEID1"); // 10: OEM id, 16: OEM table id
    t.extend_from_slice(&[1, 0, 0, 0]); // 24: OEM revision
    t.extend_from_slice(b"TEST"); // 28: creator id
    t.extend_from_slice(&[1, 0, 0, 0]); // 32: creator revision
    t.extend_from_slice(&count.to_le_bytes()); // 36: error source count
    for e in entries {
        t.extend_from_slice(e);
    }
    fix_checksum(&mut t);
    t
}

/// ACPI 6.5 §5.2.6: the table's bytes sum to 0 (checksum at offset 9).
fn fix_checksum(t: &mut [u8]) {
    t[9] = 0;
    let sum = t.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    t[9] = 0u8.wrapping_sub(sum);
}

/// Source 0: GPIO-signal (7); source 1: POLLED (0) every 1000 ms. Neither
/// notification depends on the guest kernel's configuration, so the table
/// has no warning.
fn good() -> Vec<u8> {
    table(
        2,
        &[
            ghes_v2(0, 7, 0, 0x4000_0000, 0x4000_0008),
            ghes_v2(1, 0, 1000, 0x4000_0010, 0x4000_0018),
        ],
    )
}

/// The good table with one change, re-checksummed.
fn damaged(change: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut t = good();
    change(&mut t);
    fix_checksum(&mut t);
    t
}

fn put(t: &mut [u8], off: usize, bytes: &[u8]) {
    t[off..off + bytes.len()].copy_from_slice(bytes);
}

/// The good table with `change` is refused with exactly `expected`.
fn refuses(change: impl FnOnce(&mut Vec<u8>), expected: &HestParseError) {
    assert_eq!(&refused(&damaged(change)), expected);
}

/// The refusal, after checking its message reads as a sentence.
fn refused(t: &[u8]) -> HestParseError {
    let e = parse(t).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with(char::is_uppercase), "{msg}");
    e
}

fn warnings(t: &[u8]) -> Vec<HestWarning> {
    parse(t).unwrap().warnings
}

#[test]
fn the_good_table_is_accepted_without_warnings() {
    let t = good();
    assert_eq!(t.len(), 224);
    let p = parse(&t).unwrap();
    assert_eq!(p.error_source_count, 2);
    assert_eq!(p.entries.len(), 2);
    assert_eq!(p.all.len(), 2);
    assert_eq!((p.all[0].offset, p.all[1].offset), (E0, E1));
    assert_eq!(p.entries[1].ghes.notification.poll_interval.get(), 1000);
    assert_eq!(
        p.entries[1].ghes.error_status_address.address.get(),
        0x4000_0010
    );
    assert_eq!(p.warnings, []);
}

// ---- Table-level refusals: Linux disables the whole HEST. ----

#[test]
fn header_damage() {
    let t = good();
    assert_eq!(refused(&t[..35]), HestParseError::Truncated { len: 35 });
    let mut b = t.clone();
    b[0] = b'X';
    assert_eq!(
        refused(&b),
        HestParseError::BadSignature { found: *b"XEST" }
    );
    assert_eq!(
        refused(&t[..220]),
        HestParseError::LengthMismatch {
            header: 224,
            actual: 220
        }
    );
    let mut b = t;
    b[9] = b[9].wrapping_add(1);
    assert_eq!(refused(&b), HestParseError::BadChecksum { sum: 1 });
}

#[test]
fn duplicate_source_id() {
    refuses(
        |t| t[E1 + SOURCE_ID] = 0,
        &HestParseError::DuplicateSourceId {
            source_id: 0,
            first: E0,
            second: E1,
        },
    );
}

#[test]
fn count_larger_than_the_entries_present() {
    refuses(
        |t| t[36] = 3,
        &HestParseError::CountExceedsEntries {
            count: 3,
            present: 2,
        },
    );
}

#[test]
fn count_smaller_than_the_entries_present() {
    refuses(
        |t| t[36] = 1,
        &HestParseError::TrailingBytes {
            count: 1,
            offset: E1,
            len: 92,
        },
    );
}

#[test]
fn truncated_entry() {
    // Drop the last 10 bytes and fix the header length (offset 4).
    refuses(
        |t| {
            t.truncate(214);
            put(t, 4, &214u32.to_le_bytes());
        },
        &HestParseError::TruncatedEntry {
            index: 1,
            offset: E1,
            need: 92,
            have: 82,
        },
    );
    // Not even the 4-byte entry header left.
    refuses(
        |t| {
            t.truncate(E1 + 3);
            put(t, 4, &((E1 + 3) as u32).to_le_bytes());
        },
        &HestParseError::TruncatedEntry {
            index: 1,
            offset: E1,
            need: 4,
            have: 3,
        },
    );
}

#[test]
fn unknown_and_unused_entry_types() {
    for kind in [3u16, 4, 5, 12, 0xffff] {
        refuses(
            |t| put(t, E1 + TYPE, &kind.to_le_bytes()),
            &HestParseError::UnknownType {
                index: 1,
                offset: E1,
                kind,
                source_id: 1,
            },
        );
    }
}

// ---- Source-level refusals: Linux does not bind the source. ----

#[test]
fn zero_error_status_address() {
    refuses(
        |t| put(t, E0 + ESA_ADDRESS, &[0; 8]),
        &HestParseError::ZeroAddress {
            source_id: 0,
            register: Register::ErrorStatusAddress,
        },
    );
}

#[test]
fn zero_read_ack_address() {
    refuses(
        |t| put(t, E1 + ACK_ADDRESS, &[0; 8]),
        &HestParseError::ZeroAddress {
            source_id: 1,
            register: Register::ReadAck,
        },
    );
}

#[test]
fn access_size_outside_byte_to_qword() {
    for size in [0u8, 5, 0xff] {
        refuses(
            |t| t[E0 + ESA_ACCESS_SIZE] = size,
            &HestParseError::BadAccessSize {
                source_id: 0,
                register: Register::ErrorStatusAddress,
                access_size: size,
            },
        );
    }
    refuses(
        |t| t[E1 + ACK_ACCESS_SIZE] = 0,
        &HestParseError::BadAccessSize {
            source_id: 1,
            register: Register::ReadAck,
            access_size: 0,
        },
    );
}

#[test]
fn address_space_other_than_memory_or_port_io() {
    // 2: PCI configuration space (ACPI 6.5 Table 5.1).
    refuses(
        |t| t[E0 + ESA_SPACE] = 2,
        &HestParseError::BadAddressSpace {
            source_id: 0,
            register: Register::ErrorStatusAddress,
            space_id: 2,
        },
    );
}

#[test]
fn bit_width_plus_offset_beyond_the_access() {
    // 64 bits at bit offset 8 in a qword access: 72 > 64.
    refuses(
        |t| t[E0 + ESA_BIT_OFFSET] = 8,
        &HestParseError::BitWidthOverflow {
            source_id: 0,
            register: Register::ErrorStatusAddress,
            bit_width: 64,
            bit_offset: 8,
            access_bits: 64,
        },
    );
    // 64 bits with byte access at an address that is not 8-byte aligned:
    // no fix-up, 64 > 8.
    let t = damaged(|t| {
        t[E0 + ESA_ACCESS_SIZE] = 1;
        t[E0 + ESA_ADDRESS] = 0x04;
    });
    assert_eq!(
        refused(&t),
        HestParseError::BitWidthOverflow {
            source_id: 0,
            register: Register::ErrorStatusAddress,
            bit_width: 64,
            bit_offset: 0,
            access_bits: 8
        }
    );
}

#[test]
fn zero_bit_width_in_system_memory() {
    refuses(
        |t| t[E0 + ESA_BIT_WIDTH] = 0,
        &HestParseError::ZeroBitWidth {
            source_id: 0,
            register: Register::ErrorStatusAddress,
        },
    );
}

#[test]
fn block_length_below_the_block_header() {
    refuses(
        |t| put(t, E0 + BLOCK_LEN, &19u32.to_le_bytes()),
        &HestParseError::BlockTooShort {
            source_id: 0,
            len: 19,
        },
    );
    // 20 bytes, the header alone, is the smallest Linux accepts.
    let t = damaged(|t| put(t, E0 + BLOCK_LEN, &20u32.to_le_bytes()));
    parse(&t).unwrap();
}

#[test]
fn notification_types_outside_the_spec() {
    for kind in [12u8, 13, 0xff] {
        refuses(
            |t| t[E0 + NOTIFY_TYPE] = kind,
            &HestParseError::ReservedNotification { source_id: 0, kind },
        );
    }
}

#[test]
fn notification_types_linux_never_binds() {
    // 2 local interrupt, 5 CMCI, 6 MCE, 9 SEI.
    for kind in [2u8, 5, 6, 9] {
        refuses(
            |t| t[E0 + NOTIFY_TYPE] = kind,
            &HestParseError::UnsupportedNotification { source_id: 0, kind },
        );
    }
}

#[test]
fn polled_with_interval_zero() {
    refuses(
        |t| put(t, E1 + POLL_INTERVAL, &[0; 4]),
        &HestParseError::ZeroPollInterval { source_id: 1 },
    );
    // The same zero interval on a GPIO source is not used: accepted.
    let t = damaged(|t| t[E1 + NOTIFY_TYPE] = 7);
    let t = {
        let mut t = t;
        put(&mut t, E1 + POLL_INTERVAL, &[0; 4]);
        fix_checksum(&mut t);
        t
    };
    parse(&t).unwrap();
}

#[test]
fn records_to_preallocate_zero() {
    refuses(
        |t| put(t, E0 + RECORDS, &[0; 4]),
        &HestParseError::ZeroRecordsToPreallocate { source_id: 0 },
    );
}

#[test]
fn max_sections_per_record_zero() {
    refuses(
        |t| put(t, E1 + SECTIONS, &[0; 4]),
        &HestParseError::ZeroMaxSections { source_id: 1 },
    );
}

// ---- What Linux accepts: warnings, never refusals. ----

#[test]
fn count_zero_is_accepted() {
    let t = table(0, &[]);
    assert_eq!(t.len(), 40);
    let p = parse(&t).unwrap();
    assert_eq!(p.error_source_count, 0);
    assert_eq!(p.warnings, [HestWarning::NoErrorSources]);
}

#[test]
fn disabled_sources_are_skipped_unchecked() {
    // Entry 0 disabled, with a zero status address and entry 1's id:
    // Linux's hest_parse_ghes never looks at it.
    let t = damaged(|t| {
        t[E0 + ENABLED] = 0;
        put(t, E0 + ESA_ADDRESS, &[0; 8]);
        t[E0 + SOURCE_ID] = 1;
    });
    assert_eq!(warnings(&t), [HestWarning::Disabled { source_id: 1 }]);
}

#[test]
fn config_dependent_notifications_warn() {
    for kind in [4u8, 8, 11] {
        let t = damaged(|t| t[E0 + NOTIFY_TYPE] = kind);
        assert_eq!(
            warnings(&t),
            [HestWarning::ConfigDependentNotification { source_id: 0, kind }]
        );
    }
}

#[test]
fn port_io_and_narrow_registers_warn() {
    let t = damaged(|t| t[E0 + ESA_SPACE] = 1);
    assert_eq!(
        warnings(&t),
        [HestWarning::SystemIo {
            source_id: 0,
            register: Register::ErrorStatusAddress
        }]
    );
    // A 32-bit register read as a dword (access size 3).
    let t = damaged(|t| {
        t[E0 + ESA_BIT_WIDTH] = 32;
        t[E0 + ESA_ACCESS_SIZE] = 3;
    });
    assert_eq!(
        warnings(&t),
        [HestWarning::NarrowStatusAddress {
            source_id: 0,
            access_bits: 32
        }]
    );
    // 64 bits with byte access at an 8-byte aligned address: Linux widens
    // the access to 64 bits (apei_check_gar's fix-up): no warning.
    let t = damaged(|t| t[E0 + ESA_ACCESS_SIZE] = 1);
    assert_eq!(warnings(&t), []);
}

#[test]
fn block_longer_than_linux_reads_warns() {
    let t = damaged(|t| put(t, E0 + BLOCK_LEN, &65537u32.to_le_bytes()));
    assert_eq!(
        warnings(&t),
        [HestWarning::BlockLengthTruncated {
            source_id: 0,
            len: 65537
        }]
    );
}

#[test]
fn ghes_v1_and_non_generic_entries_are_walked() {
    // A GHES (type 9, ACPI 6.5 §18.3.2.7): GHESv2's first 64 bytes.
    let mut ghes = ghes_v2(2, 3, 0, 0x4000_0020, 0);
    ghes.truncate(64);
    ghes[0] = 9;
    // A PCI Express Root Port AER structure (type 6, §18.3.2.3): 48 bytes.
    let mut aer = vec![0u8; 48];
    aer[0] = 6;
    aer[2] = 7;
    // An IA-32 Machine Check Exception structure (type 0, §18.3.2.1) with
    // two banks (bank count at offset 32): 40 + 2 * 28 bytes.
    let mut mce = vec![0u8; 96];
    mce[2] = 8;
    mce[32] = 2;
    let t = table(
        5,
        &[
            ghes_v2(0, 7, 0, 0x4000_0000, 0x4000_0008),
            ghes,
            aer,
            mce,
            ghes_v2(1, 0, 1000, 0x4000_0010, 0x4000_0018),
        ],
    );
    let p = parse(&t).unwrap();
    let offsets: Vec<usize> = p.all.iter().map(|e| e.offset).collect();
    assert_eq!(offsets, [40, 132, 196, 244, 340]);
    assert_eq!(p.entries.len(), 2);
    assert_eq!(
        p.warnings,
        [
            HestWarning::NotGeneric {
                kind: 6,
                source_id: 7
            },
            HestWarning::NotGeneric {
                kind: 0,
                source_id: 8
            },
        ]
    );
    // The GHES entry is checked like a GHESv2 one.
    let mut bad = t.clone();
    bad[132 + BLOCK_LEN..132 + BLOCK_LEN + 4].copy_from_slice(&0u32.to_le_bytes());
    fix_checksum(&mut bad);
    assert_eq!(
        refused(&bad),
        HestParseError::BlockTooShort {
            source_id: 2,
            len: 0
        }
    );
    // Its id counts for duplicates; the AER entry's does not.
    let mut bad = t.clone();
    bad[132 + SOURCE_ID] = 1;
    fix_checksum(&mut bad);
    assert_eq!(
        refused(&bad),
        HestParseError::DuplicateSourceId {
            source_id: 1,
            first: 132,
            second: 340
        }
    );
    let mut ok = t;
    ok[196 + SOURCE_ID] = 1;
    fix_checksum(&mut ok);
    parse(&ok).unwrap();
}
