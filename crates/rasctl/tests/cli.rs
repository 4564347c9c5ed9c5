// SPDX-License-Identifier: Apache-2.0
//! Runs the `rasctl` binary and checks its output files with the engine's
//! decoders, and its refusals of bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::{env, fs, process};

use ras::cper::{ArmErrorTypes, Section, Severity, StatusBlock};
use ras_tools::cper_record::Record;
use ras_tools::hest_decode;

fn rasctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rasctl"))
        .args(args)
        .output()
        .expect("run rasctl")
}

fn tmp(name: &str) -> PathBuf {
    let dir = env::temp_dir().join(format!("rasctl-test-{}", process::id()));
    fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn ok(args: &[&str]) -> String {
    let out = rasctl(args);
    assert!(
        out.status.success(),
        "rasctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// One GHESv2 entry as the engine documents it (ACPI 6.5 §18.3.2.8 field
/// by field): enabled, no related source, 1 record, 4 sections, 1024-byte
/// block, 64-bit qword system-memory registers, preserve 0xFFFFFFFE, write 1.
#[rustfmt::skip]
fn documented_entry(id: u8, notify: u8, esa: u32) -> Vec<u8> {
    let mut e = vec![10, 0, id, 0, 0xff, 0xff, 0, 1, 1, 0, 0, 0, 4, 0, 0, 0, 0, 4, 0, 0];
    e.extend_from_slice(&[0, 64, 0, 4]);
    e.extend_from_slice(&u64::from(esa).to_le_bytes());
    e.extend_from_slice(&[notify, 28, 0, 0]);
    e.extend_from_slice(&[0; 24]);
    e.extend_from_slice(&[0, 4, 0, 0, 0, 64, 0, 4]);
    e.extend_from_slice(&u64::from(esa + 8).to_le_bytes());
    e.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(e.len(), 92);
    e
}

/// `rasctl hest` with no options, written out by hand: the default
/// identity (README / `ras::hest` docs), one SEA source per vCPU (id 0)
/// and the GPIO-signal asynchronous source (id 1); registers at
/// base + 16 * id (ESA) and + 8 (read ack), base 0x0600_0000. The checksum
/// 0x28 was computed by hand from these bytes.
fn documented_default_hest() -> Vec<u8> {
    let mut t = b"HEST".to_vec();
    t.extend_from_slice(&224u32.to_le_bytes());
    t.extend_from_slice(&[1, 0x28]);
    t.extend_from_slice(b"CLOUDHCHHEST  ");
    t.extend_from_slice(&[1, 0, 0, 0]);
    t.extend_from_slice(b"RVAT");
    t.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0]);
    t.extend_from_slice(&documented_entry(0, 8, 0x0600_0000));
    t.extend_from_slice(&documented_entry(1, 7, 0x0600_0010));
    t
}

/// ACPI 6.5 §5.2.6: the bytes sum to 0 (checksum at offset 9).
fn fix_checksum(t: &mut [u8]) {
    t[9] = 0;
    let sum = t.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    t[9] = 0u8.wrapping_sub(sum);
}

#[test]
fn hest_defaults_are_the_documented_table() {
    let out = tmp("default.aml");
    ok(&["hest", "--out", path(&out)]);
    assert_eq!(fs::read(&out).unwrap(), documented_default_hest());
    let text = ok(&["decode", path(&out)]);
    assert!(
        text.contains(
            "GHESv2 source 0: notify sea (8), status address reg 0x6000000, read-ack reg 0x6000008"
        ),
        "{text}"
    );
    assert!(
        text.contains("GHESv2 source 1: notify gpio-signal (7)"),
        "{text}"
    );
    // SEA is bound only by arm64 kernels with CONFIG_ACPI_APEI_SEA.
    assert!(
        text.contains("warning: Source 0: notification type 8 is bound only by some guest kernels"),
        "{text}"
    );
}

#[test]
fn hest_for_several_vcpus_and_polled_async() {
    let out = tmp("four.aml");
    ok(&[
        "hest",
        "--out",
        path(&out),
        "--vcpus",
        "4",
        "--base",
        "0x0700_0000",
        "--ras",
        r#"{"async_mode":"Polled","poll_interval_ms":500}"#,
    ]);
    let parsed = hest_decode::parse(&fs::read(&out).unwrap()).unwrap();
    assert_eq!(parsed.error_source_count, 5);
    let kinds: Vec<u8> = parsed
        .entries
        .iter()
        .map(|e| e.ghes.notification.kind)
        .collect();
    assert_eq!(kinds, [8, 8, 8, 8, 0]);
    assert_eq!(parsed.entries[4].ghes.notification.poll_interval.get(), 500);
    // Registers at base + 16 * id (ESA) and + 8 (read ack).
    assert_eq!(
        parsed.entries[0].ghes.error_status_address.address.get(),
        0x0700_0000
    );
    assert_eq!(
        parsed.entries[4].ghes.error_status_address.address.get(),
        0x0700_0040
    );
    assert_eq!(
        parsed.entries[4].read_ack_register.address.get(),
        0x0700_0048
    );
    let text = ok(&["decode", path(&out)]);
    assert!(text.contains("5 error source(s)"), "{text}");
}

#[test]
fn hest_refuses_a_bad_ras_string() {
    let out = rasctl(&[
        "hest",
        "--out",
        path(&tmp("bad.aml")),
        "--ras",
        r#"{"queue_depth":"x"}"#,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--ras") && err.contains("invalid type"),
        "{err}"
    );
}

#[test]
fn hest_refuses_zero_vcpus() {
    let out = rasctl(&["hest", "--out", path(&tmp("zero.aml")), "--vcpus", "0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least one vCPU"), "{err}");
}

#[test]
fn memory_block_covers_the_whole_huge_page() {
    let out = tmp("mem2m.bin");
    ok(&[
        "cper",
        "memory",
        "--gpa",
        "0x40234567",
        "--granule",
        "2M",
        "--time",
        "1764000000",
        "--out",
        path(&out),
    ]);
    let block = StatusBlock::decode(&fs::read(&out).unwrap()).unwrap();
    assert_eq!(block.entries.len(), 1);
    let Section::Memory(m) = &block.entries[0].section else {
        panic!("not a memory section: {block:?}");
    };
    assert_eq!(m.valid_physical_address(), Some(0x4020_0000));
    assert_eq!(m.valid_physical_address_mask(), Some(!((2u64 << 20) - 1)));
    assert_eq!(block.entries[0].severity, Severity::Recoverable);
    let text = ok(&["decode", path(&out)]);
    assert!(text.contains("physical address 0x40200000"), "{text}");
    assert!(text.contains("time 1764000000"), "{text}");
}

#[test]
fn record_wraps_the_block_for_other_readers() {
    let block = tmp("arm.bin");
    let record = tmp("arm.cper");
    ok(&[
        "cper",
        "arm",
        "--pa",
        "0x8000_1000",
        "--error-type",
        "tlb",
        "--severity",
        "corrected",
        "--out",
        path(&block),
    ]);
    ok(&[
        "record",
        "--in",
        path(&block),
        "--out",
        path(&record),
        "--record-id",
        "7",
    ]);
    let bytes = fs::read(&record).unwrap();
    assert_eq!(&bytes[..4], b"CPER");
    let r = Record::decode(&bytes).unwrap();
    assert_eq!(r.record_id, 7);
    assert_eq!(r.sections.len(), 1);
    let Section::ArmProcessor(a) = &r.sections[0].section else {
        panic!("not an ARM section: {r:?}");
    };
    assert_eq!(a.error_info[0].physical_fault_address, 0x8000_1000);
    assert_eq!(a.error_info[0].error_type, ArmErrorTypes::TLB);
    // `--error-type tlb` is bit 2 of the UEFI 2.10 bitmap on the wire: the
    // record ends with this section (40-byte header, then the error info,
    // whose type byte is at offset 4).
    let info = bytes.len() - a.encoded_len() + 40;
    assert_eq!(bytes[info + 4], 0x04);
    assert_eq!(r.sections[0].severity, Severity::Corrected);
    let text = ok(&["decode", path(&record)]);
    assert!(text.contains("TLB (type 0x04)"), "{text}");
    let json = ok(&["decode", "--json", path(&record)]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["kind"], "record");
}

#[test]
fn raw_section_keeps_its_guid_and_bytes() {
    let out = tmp("raw.bin");
    let guid = "12345678-9abc-def0-1234-56789abcdef0";
    ok(&[
        "cper",
        "raw",
        "--guid",
        guid,
        "--hex",
        "de ad be ef",
        "--out",
        path(&out),
    ]);
    let block = StatusBlock::decode(&fs::read(&out).unwrap()).unwrap();
    let Section::Raw(r) = &block.entries[0].section else {
        panic!("not raw: {block:?}");
    };
    assert_eq!(r.section_type.to_string(), guid);
    assert_eq!(r.data, [0xde, 0xad, 0xbe, 0xef]);
}

/// Runs `rasctl decode [extra...] <file with content>`, expects a refusal
/// and returns stderr.
fn refusal(name: &str, content: &[u8], extra: &[&str]) -> String {
    let p = tmp(name);
    fs::write(&p, content).unwrap();
    let mut args = vec!["decode"];
    args.extend_from_slice(extra);
    args.push(path(&p));
    let out = rasctl(&args);
    assert_eq!(out.status.code(), Some(1), "{name} accepted");
    assert!(out.stdout.is_empty(), "{name}: partial print");
    assert_eq!(fs::read(&p).unwrap(), content, "{name} changed");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn decode_refuses_bad_input_with_a_reason() {
    let good = tmp("good.bin");
    ok(&["cper", "memory", "--gpa", "0x1000", "--out", path(&good)]);
    let bytes = fs::read(&good).unwrap();
    let record = tmp("good.cper");
    ok(&["record", "--in", path(&good), "--out", path(&record)]);
    let record = fs::read(&record).unwrap();
    let hest = documented_default_hest();
    let cases: [(&str, &[u8], &[&str], &str); 9] = [
        ("empty.bin", b"", &[], "Empty file: nothing to decode"),
        (
            "trunc.bin",
            &bytes[..30],
            &[],
            "Generic Error Status Block refused: Truncated generic error status block data",
        ),
        (
            "hest.bin",
            b"HEST\x10\0\0\0",
            &[],
            "HEST refused: Truncated HEST: 8 bytes, the header needs 40",
        ),
        (
            "cper.bin",
            b"CPER\0\0\0\0",
            &[],
            "CPER record refused: Truncated CPER record header",
        ),
        (
            "record-as-hest.cper",
            &record,
            &["--as", "hest"],
            "Not a HEST: the file starts with the signature of a CPER record",
        ),
        (
            "hest-as-block.aml",
            &hest,
            &["--as", "status-block"],
            "Not a Generic Error Status Block: the file starts with the signature of a HEST",
        ),
        (
            "block-as-hest.bin",
            &bytes,
            &["--as", "hest"],
            "HEST refused: Not a HEST: signature \"\\x11\\x00\\x00\\x00\"",
        ),
        (
            "block-as-record.bin",
            &bytes,
            &["--as", "record"],
            "CPER record refused: Bad CPER record signature: 0x00000011",
        ),
        (
            "text.txt",
            b"This is not a table, it is a sentence.",
            &[],
            "Generic Error Status Block refused: Reserved bits set in block status",
        ),
    ];
    for (name, content, extra, expect) in cases {
        let err = refusal(name, content, extra);
        assert!(err.starts_with("rasctl: "), "{name}: {err}");
        assert!(err.contains(expect), "{name}: {err}");
    }
    let out = rasctl(&["decode", "/nonexistent/file"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/file"));
}

/// Every HEST refusal Linux makes, through the CLI: the documented default
/// table with one field changed at its ACPI 6.5 offset (entry 0 at 40,
/// entry 1 at 132; GHESv2 fields per §18.3.2.8), re-checksummed.
#[test]
fn decode_refuses_every_hest_linux_refuses() {
    const E0: usize = 40;
    const E1: usize = 132;
    let cases: [(&str, usize, &[u8], &str); 14] = [
        (
            "dup",
            E1 + 2,
            &[0],
            "Duplicate error source id 0 (entries at offsets 40 and 132)",
        ),
        (
            "esa0",
            E0 + 24,
            &[0; 8],
            "Source 0: error status address is 0",
        ),
        ("ack0", E1 + 68, &[0; 8], "Source 1: read ack register is 0"),
        (
            "access0",
            E0 + 23,
            &[0],
            "Source 0: error status address access size 0 is not 1..=4",
        ),
        (
            "ackaccess0",
            E0 + 67,
            &[0],
            "Source 0: read ack register access size 0 is not 1..=4",
        ),
        (
            "space2",
            E0 + 20,
            &[2],
            "Source 0: error status address address space 2 is neither system memory (0) nor system I/O (1)",
        ),
        (
            "width0",
            E0 + 21,
            &[0],
            "Source 0: error status address has bit width 0",
        ),
        (
            "offset8",
            E0 + 22,
            &[8],
            "Source 0: error status address bit width 64 + offset 8 exceeds its 64-bit access",
        ),
        (
            "block19",
            E0 + 60,
            &[19, 0, 0, 0],
            "Source 0: error status block length 19 is below the 20-byte block header",
        ),
        (
            "notify12",
            E1 + 32,
            &[12],
            "Source 1: notification type 12 is reserved (ACPI 6.5 defines 0..=11)",
        ),
        (
            "notify2",
            E1 + 32,
            &[2],
            "Source 1: notification type 2 is not supported by Linux's GHES driver",
        ),
        (
            "records0",
            E0 + 8,
            &[0; 4],
            "Source 0: records to pre-allocate is 0 (ACPI 6.5: must be >= 1)",
        ),
        (
            "sections0",
            E1 + 12,
            &[0; 4],
            "Source 1: max sections per record is 0 (ACPI 6.5: must be >= 1)",
        ),
        (
            "count3",
            36,
            &[3],
            "HEST error source count 3 but the table holds only 2 entries",
        ),
    ];
    for (name, offset, bytes, expect) in cases {
        let mut t = documented_default_hest();
        t[offset..offset + bytes.len()].copy_from_slice(bytes);
        fix_checksum(&mut t);
        let err = refusal(&format!("{name}.aml"), &t, &[]);
        assert!(
            err.contains(&format!("HEST refused: {expect}")),
            "{name}: {err}"
        );
    }
    // Polled with interval 0: source 1 made POLLED (type 0 at 132 + 32),
    // its interval (132 + 36) left at 0.
    let mut t = documented_default_hest();
    t[E1 + 32] = 0;
    fix_checksum(&mut t);
    let err = refusal("poll0.aml", &t, &[]);
    assert!(
        err.contains("Source 1: polled notification with a zero interval"),
        "{err}"
    );
    // Unknown entry type 12 at entry 1, and a truncated entry.
    let mut t = documented_default_hest();
    t[E1] = 12;
    fix_checksum(&mut t);
    let err = refusal("type12.aml", &t, &[]);
    assert!(
        err.contains("has type 12, which Linux does not know"),
        "{err}"
    );
    let mut t = documented_default_hest();
    t.truncate(200);
    t[4] = 200;
    fix_checksum(&mut t);
    let err = refusal("trunc.aml", &t, &[]);
    assert!(
        err.contains("Truncated HEST entry 1 at offset 132: it needs 92 bytes, 68 are left"),
        "{err}"
    );
}

/// What Linux accepts is printed, with a warning, and exits 0.
#[test]
fn decode_warns_where_linux_accepts() {
    // Count 0: a bare 40-byte table.
    let mut t = documented_default_hest();
    t.truncate(40);
    t[4] = 40;
    t[36] = 0;
    fix_checksum(&mut t);
    let p = tmp("count0.aml");
    fs::write(&p, &t).unwrap();
    let text = ok(&["decode", path(&p)]);
    assert!(text.contains("0 error source(s)"), "{text}");
    assert!(text.contains("warning: No error sources"), "{text}");
    // Source 1 disabled (offset 132 + 7) with a zero status address.
    let mut t = documented_default_hest();
    t[132 + 7] = 0;
    t[132 + 24..132 + 32].fill(0);
    fix_checksum(&mut t);
    let p = tmp("disabled.aml");
    fs::write(&p, &t).unwrap();
    let text = ok(&["decode", path(&p)]);
    assert!(text.contains("GHESv2 source 1 (disabled)"), "{text}");
    assert!(
        text.contains("warning: Source 1 is disabled: Linux skips it without checking it"),
        "{text}"
    );
    let json = ok(&["decode", "--json", path(&p)]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["entries"][1]["enabled"], 0);
    assert_eq!(v["warnings"].as_array().unwrap().len(), 2);
}

/// Status block inconsistencies, each at its ACPI 6.5 §18.3.2.7.1 header
/// offset (0 block status, 4 raw data offset, 8 raw data length, 12 data
/// length, 16 error severity), on a one-entry 172-byte memory block.
#[test]
fn decode_refuses_inconsistent_status_blocks() {
    let good = tmp("block.bin");
    ok(&["cper", "memory", "--gpa", "0x1000", "--out", path(&good)]);
    let good = fs::read(&good).unwrap();
    assert_eq!(good.len(), 172);
    assert_eq!(&good[0..4], &0x11u32.to_le_bytes());
    let cases: [(&str, usize, u32, &str); 7] = [
        (
            "count2",
            0,
            0x21,
            "Inconsistent count of error data entries: declared 2, found 1",
        ),
        (
            "count0",
            0,
            0x01,
            "Inconsistent count of error data entries: declared 0, found 1",
        ),
        ("rawoff", 4, 21, "Bad raw data offset 21: expected 172"),
        ("rawlen", 8, 16, "Bad raw data offset 0: expected 172"),
        ("datalen-short", 12, 151, "Truncated"),
        (
            "datalen-long",
            12,
            153,
            "Truncated generic error status block data: need 173 bytes, have 172",
        ),
        (
            "severity",
            16,
            1,
            "Severity 1 is not the most severe entry's (0)",
        ),
    ];
    for (name, offset, value, expect) in cases {
        let mut b = good.clone();
        b[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
        let err = refusal(&format!("{name}.bin"), &b, &[]);
        assert!(
            err.contains(&format!("Generic Error Status Block refused: {expect}")),
            "{name}: {err}"
        );
    }
    // Raw data placed right after the entry but running past the block.
    let mut b = good;
    b[4..8].copy_from_slice(&172u32.to_le_bytes());
    b[8..12].copy_from_slice(&4u32.to_le_bytes());
    let err = refusal("rawpast.bin", &b, &[]);
    assert!(
        err.contains("Truncated generic error status block raw data: need 176 bytes, have 172"),
        "{err}"
    );
}

/// A block with no entries shows the severity its header holds (offset
/// 16), not one made up from the absent entries.
#[test]
fn empty_block_shows_its_header_severity() {
    for (raw, name) in [(0u32, "recoverable"), (1, "fatal"), (3, "informational")] {
        let mut b = [0u8; 20];
        b[16..20].copy_from_slice(&raw.to_le_bytes());
        let p = tmp(&format!("empty-{raw}.bin"));
        fs::write(&p, b).unwrap();
        let text = ok(&["decode", path(&p)]);
        assert_eq!(
            text,
            format!(
                "Generic Error Status Block: status 0x0 (empty: no error to report), \
                 header severity {name} ({raw}), 0 entries\n"
            )
        );
        let json = ok(&["decode", "--json", path(&p)]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["error_severity"], name);
        assert_eq!(v["block_status"], 0);
    }
}

/// A record with no section (UEFI 2.10 N.2.1 header, written by hand:
/// section count 0 at offset 10, severity fatal (1) at 12, length 128 at
/// 20) shows the header's severity.
#[test]
fn record_without_sections_shows_its_header_severity() {
    let mut r = vec![0u8; 128];
    r[0..4].copy_from_slice(b"CPER");
    r[4..6].copy_from_slice(&0x0100u16.to_le_bytes());
    r[6..10].copy_from_slice(&[0xff; 4]);
    r[12..16].copy_from_slice(&1u32.to_le_bytes());
    r[20..24].copy_from_slice(&128u32.to_le_bytes());
    let p = tmp("nosection.cper");
    fs::write(&p, &r).unwrap();
    let text = ok(&["decode", path(&p)]);
    assert!(
        text.contains("severity fatal (1, header field: no section), 0 section(s)"),
        "{text}"
    );
    assert!(!text.contains("informational"), "{text}");
    let json = ok(&["decode", "--json", path(&p)]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["error_severity"], "fatal");
}

/// Bad input leaves the output file as it was and exits non-zero.
#[test]
fn bad_input_changes_nothing() {
    let out = tmp("keep.out");
    let before = b"left alone".to_vec();
    let empty_block = tmp("empty-block.bin");
    fs::write(&empty_block, [0u8; 20]).unwrap();
    let hest = tmp("as-input.aml");
    fs::write(&hest, documented_default_hest()).unwrap();
    let garbage = tmp("garbage.bin");
    fs::write(&garbage, b"garbage garbage garbage garbage").unwrap();
    let empty = tmp("zero-bytes.bin");
    fs::write(&empty, b"").unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["record", "--in", path(&empty_block), "--out", path(&out)],
            "no error to wrap in a record",
        ),
        (
            &["record", "--in", path(&hest), "--out", path(&out)],
            "Not a Generic Error Status Block: the file starts with the signature of a HEST",
        ),
        (
            &["record", "--in", path(&garbage), "--out", path(&out)],
            "Generic Error Status Block refused",
        ),
        (
            &["record", "--in", path(&empty), "--out", path(&out)],
            "Empty file",
        ),
        (
            &["hest", "--out", path(&out), "--ras", "queue_depth=x"],
            "--ras",
        ),
        (
            &["hest", "--out", path(&out), "--vcpus", "0"],
            "at least one vCPU",
        ),
    ];
    for (args, expect) in cases {
        fs::write(&out, &before).unwrap();
        let o = rasctl(args);
        assert_eq!(o.status.code(), Some(1), "{args:?} accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
        assert_eq!(fs::read(&out).unwrap(), before, "{args:?} wrote its output");
    }
}

#[test]
fn bad_arguments_are_refused() {
    for args in [
        &[
            "cper",
            "memory",
            "--gpa",
            "0x1000",
            "--granule",
            "3M",
            "--out",
            "/dev/null",
        ][..],
        &["cper", "memory", "--gpa", "zz", "--out", "/dev/null"][..],
        &[
            "cper",
            "memory",
            "--gpa",
            "0x1000",
            "--severity",
            "bad",
            "--out",
            "/dev/null",
        ][..],
        &["cper", "raw", "--guid", "not-a-guid", "--out", "/dev/null"][..],
        &[
            "cper",
            "raw",
            "--guid",
            "12345678-9abc-def0-1234-56789abcdef0",
            "--hex",
            "abc",
            "--out",
            "/dev/null",
        ][..],
    ] {
        let out = rasctl(args);
        assert_eq!(out.status.code(), Some(2), "{args:?} accepted");
    }
}
