// SPDX-License-Identifier: Apache-2.0
//! Runs the `rasctl` binary and checks its output files with the engine's
//! decoders, and its refusals of bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::{env, fs, process};

use ras::config::RasConfig;
use ras::cper::{ArmErrorTypes, Record, Section, Severity, StatusBlock};
use ras::engine::RasEngine;
use ras::hest;

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

#[test]
fn hest_defaults_match_the_engine_for_one_vcpu() {
    let out = tmp("default.aml");
    ok(&["hest", "--out", path(&out)]);
    let bytes = fs::read(&out).unwrap();
    let engine = RasEngine::new(RasConfig::default(), vm_memory::GuestAddress(0x0600_0000), 1).unwrap();
    assert_eq!(bytes, engine.hest().unwrap());
    let parsed = hest::parse(&bytes).unwrap();
    assert_eq!(parsed.error_source_count, 2);
    assert_eq!(parsed.entries[0].notification.kind, 8, "SEA");
    assert_eq!(parsed.entries[1].notification.kind, 7, "GPIO-signal");
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
    let parsed = hest::parse(&fs::read(&out).unwrap()).unwrap();
    assert_eq!(parsed.error_source_count, 5);
    let kinds: Vec<u8> = parsed.entries.iter().map(|e| e.notification.kind).collect();
    assert_eq!(kinds, [8, 8, 8, 8, 0]);
    assert_eq!(parsed.entries[4].notification.poll_interval.get(), 500);
    assert_eq!(
        parsed.entries[0].error_status_address.address.get(),
        0x0700_0000
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

#[test]
fn decode_refuses_bad_input_with_a_reason() {
    let good = tmp("good.bin");
    ok(&["cper", "memory", "--gpa", "0x1000", "--out", path(&good)]);
    let bytes = fs::read(&good).unwrap();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("trunc.bin", bytes[..30].to_vec(), "Truncated"),
        ("empty.bin", vec![0; 20], "empty"),
        ("hest.bin", b"HEST\x10\0\0\0".to_vec(), "Truncated HEST"),
        ("cper.bin", b"CPER\0\0\0\0".to_vec(), "CPER record"),
    ];
    for (name, content, expect) in cases {
        let p = tmp(name);
        fs::write(&p, content).unwrap();
        let out = rasctl(&["decode", path(&p)]);
        assert!(!out.status.success(), "{name} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{name}: {err}");
    }
    let out = rasctl(&["decode", "/nonexistent/file"]);
    assert!(!out.status.success());
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
