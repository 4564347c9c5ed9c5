// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! Tests of injection requests (JSON form, checks, conversion into a
//! report), of the command-line number and word syntax, and of the queue
//! of synchronous injections waiting for their vCPUs.

use std::fmt::{Debug, Display};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::{hint, thread};

use super::*;
use crate::config::parse_number;
use crate::cper::MEMORY_ERROR_SECTION_GUID;
use crate::cper::arm::{info_validation, validation};

/// The ARM Processor Error section type (UEFI 2.10 N.2.4.4), as text.
const ARM_GUID_TEXT: &str = "e19e3d16-bc11-11e4-9caa-c2051d5d46b0";

fn json(text: &str) -> InjectRequest {
    serde_json::from_str(text).unwrap()
}

fn injected(report: &ErrorReport) -> (SourceTarget, &DataEntry) {
    match &report.cause {
        ErrorCause::Injected { target, entry } => (*target, entry),
        other => panic!("not an injection: {other:?}"),
    }
}

/// The Platform Memory Error section (UEFI 2.10 N.2.5) an injection of
/// `len` bytes at `base` must carry: physical address, mask and error type
/// valid (bits 1, 2, 14), multi-bit ECC (3).
fn memory_section(base: u64, mask: u64) -> Section {
    Section::Memory(MemoryErrorSection {
        validation_bits: 0x4006,
        physical_address: base,
        physical_address_mask: mask,
        error_type: 3,
        ..Default::default()
    })
}

#[test]
fn memory_json_becomes_a_memory_report() {
    let req = json(r#"{"type":"memory","gpa":1207959843,"granule":2097152}"#);
    assert_eq!(req.kind, InjectKind::Memory);
    assert_eq!(req.source, InjectSource::Async);
    assert_eq!(req.severity, Severity::Recoverable);
    let report = req.to_report(1_700_000_000, 5).unwrap();
    assert_eq!(report.unix_time, 1_700_000_000);
    assert_eq!(report.monotonic_ms, 5);
    let (target, entry) = injected(&report);
    assert_eq!(target, SourceTarget::Async);
    // 1207959843 = 0x4800_0123, in the 2 MiB page at 0x4800_0000.
    assert_eq!(
        *entry,
        DataEntry {
            section: memory_section(0x4800_0000, 0xffff_ffff_ffe0_0000),
            severity: Severity::Recoverable,
            flags: EntryFlags::PRIMARY,
            fru_id: None,
            fru_text: None,
            // Set when the record is written.
            timestamp: None,
        }
    );
}

#[test]
fn memory_defaults_to_4k_and_takes_severity_and_threshold() {
    let req = json(
        r#"{"type":"memory","gpa":4660,"source":"sync","vcpu":3,"vcpu_mode":"any",
            "severity":"corrected","threshold_exceeded":true}"#,
    );
    assert_eq!(req.vcpu_mode(), VcpuMode::Any);
    let report = req.to_report(0, 0).unwrap();
    let (target, entry) = injected(&report);
    assert_eq!(target, SourceTarget::Sync { vcpu: 3 });
    // 4660 = 0x1234: the 4 KiB page at 0x1000.
    assert_eq!(entry.section, memory_section(0x1000, 0xffff_ffff_ffff_f000));
    assert_eq!(entry.severity, Severity::Corrected);
    // UEFI 2.10 N.2.2 section flags: primary (bit 0) + threshold exceeded
    // (bit 3).
    assert_eq!(entry.flags.bits(), 0x09);
    // threshold_exceeded=false is the same as absent.
    let report = json(r#"{"type":"memory","gpa":4096,"threshold_exceeded":false}"#)
        .to_report(0, 0)
        .unwrap();
    assert_eq!(injected(&report).1.flags.bits(), 0x01);
    // Sync without a vCPU: vCPU 0; mode defaults to user.
    let req = json(r#"{"type":"memory","gpa":4096,"source":"sync"}"#);
    assert_eq!(req.vcpu_mode(), VcpuMode::User);
    let report = req.to_report(0, 0).unwrap();
    assert_eq!(injected(&report).0, SourceTarget::Sync { vcpu: 0 });
}

#[test]
fn largest_and_smallest_granules() {
    // 16 GiB (2^34) is the largest; the mask keeps bits 34..63.
    let report = json(r#"{"type":"memory","gpa":34359738368,"granule":17179869184}"#)
        .to_report(0, 0)
        .unwrap();
    assert_eq!(
        injected(&report).1.section,
        memory_section(0x8_0000_0000, 0xffff_fffc_0000_0000)
    );
    let report = json(r#"{"type":"memory","gpa":18446744073709551615,"granule":4096}"#)
        .to_report(0, 0)
        .unwrap();
    assert_eq!(
        injected(&report).1.section,
        memory_section(0xffff_ffff_ffff_f000, 0xffff_ffff_ffff_f000)
    );
}

#[test]
fn arm_processor_report_carries_type_mpidr_and_addresses() {
    let req = json(
        r#"{"type":"arm_processor","arm_error":"tlb","mpidr":2147483649,
            "pa":1207959552,"va":4294901760,"severity":"fatal"}"#,
    );
    let report = req.to_report(0, 0).unwrap();
    let (target, entry) = injected(&report);
    assert_eq!(target, SourceTarget::Async);
    assert_eq!(entry.severity, Severity::Fatal);
    assert_eq!(entry.flags, EntryFlags::PRIMARY);
    let Section::ArmProcessor(section) = &entry.section else {
        panic!("not an ARM processor section: {:?}", entry.section);
    };
    // UEFI 2.10 N.2.4.4: MPIDR valid (bit 0) and running state valid
    // (bit 2), running.
    assert_eq!(section.validation_bits, 0b101);
    assert_eq!(section.mpidr, 0x8000_0001);
    assert_eq!(section.running_state, 1);
    assert_eq!(section.error_info.len(), 1);
    let info = section.error_info[0];
    // TLB = bit 2 of the UEFI 2.10 error type bitmap.
    assert_eq!(info.error_type.bits(), 0x04);
    // Virtual (bit 3) and physical (bit 4) fault address valid.
    assert_eq!(info.validation_bits, 0x18);
    assert_eq!(info.physical_fault_address, 0x4800_0000);
    assert_eq!(info.virtual_fault_address, 0xffff_0000);
    assert!(section.context_info.is_empty());
}

#[test]
fn arm_processor_defaults_to_a_cache_error_without_addresses() {
    let report = json(r#"{"type":"arm_processor"}"#).to_report(0, 0).unwrap();
    let Section::ArmProcessor(section) = &injected(&report).1.section else {
        panic!("not an ARM processor section");
    };
    // Cache = bit 1.
    assert_eq!(section.error_info[0].error_type.bits(), 0x02);
    assert_eq!(section.error_info[0].validation_bits, 0);
    assert_eq!(section.mpidr, 0);
    assert_eq!(
        section.validation_bits & validation::MPIDR,
        validation::MPIDR
    );
    // Each arm_error word selects its bit.
    for (word, bit) in [
        ("cache", 0x02),
        ("tlb", 0x04),
        ("bus", 0x08),
        ("micro_arch", 0x10),
    ] {
        let report = json(&format!(
            r#"{{"type":"arm_processor","arm_error":"{word}"}}"#
        ))
        .to_report(0, 0)
        .unwrap();
        let Section::ArmProcessor(s) = &injected(&report).1.section else {
            panic!("not an ARM processor section");
        };
        assert_eq!(s.error_info[0].error_type.bits(), bit, "{word}");
    }
    // Only pa: only the physical address is valid.
    let report = json(r#"{"type":"arm_processor","pa":4096}"#)
        .to_report(0, 0)
        .unwrap();
    let Section::ArmProcessor(s) = &injected(&report).1.section else {
        panic!("not an ARM processor section");
    };
    assert_eq!(
        s.error_info[0].validation_bits,
        info_validation::PHYSICAL_FAULT_ADDRESS
    );
    assert_eq!(info_validation::PHYSICAL_FAULT_ADDRESS, 0x10);
}

#[test]
fn raw_report_decodes_guid_and_hex() {
    let req = json(&format!(
        r#"{{"type":"raw","section_type":"{ARM_GUID_TEXT}","data":"00ff10Ab","severity":"informational"}}"#
    ));
    let report = req.to_report(0, 0).unwrap();
    let (_, entry) = injected(&report);
    assert_eq!(entry.severity, Severity::Informational);
    let Section::Raw(raw) = &entry.section else {
        panic!("not a raw section: {:?}", entry.section);
    };
    // The GUID in on-wire (mixed-endian) order.
    assert_eq!(
        raw.section_type.0,
        [
            0x16, 0x3d, 0x9e, 0xe1, 0x11, 0xbc, 0xe4, 0x11, 0x9c, 0xaa, 0xc2, 0x05, 0x1d, 0x5d,
            0x46, 0xb0
        ]
    );
    assert_eq!(raw.data, [0x00, 0xff, 0x10, 0xab]);
    assert_eq!(req.memory_granule(), None);
    // Empty data is a valid (empty) body.
    let req = json(&format!(
        r#"{{"type":"raw","section_type":"{ARM_GUID_TEXT}","data":""}}"#
    ));
    let report = req.to_report(0, 0).unwrap();
    let Section::Raw(raw) = &injected(&report).1.section else {
        panic!("not a raw section");
    };
    assert!(raw.data.is_empty());
}

#[test]
fn json_round_trips_and_refuses_unknown_fields_and_words() {
    let req = json(r#"{"type":"memory","gpa":4096,"source":"sync","vcpu":1}"#);
    let text = serde_json::to_string(&req).unwrap();
    assert_eq!(
        text,
        r#"{"type":"memory","source":"sync","vcpu":1,"severity":"recoverable","gpa":4096}"#
    );
    assert_eq!(json(&text), req);

    let refused = |text: &str| {
        serde_json::from_str::<InjectRequest>(text)
            .unwrap_err()
            .to_string()
    };
    assert!(refused(r#"{"type":"memory","gpa":1,"addr":2}"#).contains("unknown field `addr`"));
    assert!(refused(r#"{"type":"disk"}"#).contains("unknown variant `disk`"));
    assert!(refused(r#"{"gpa":1}"#).contains("missing field `type`"));
    assert!(refused(r#"{"type":"memory","source":"nmi"}"#).contains("unknown variant `nmi`"));
    assert!(refused(r#"{"type":"memory","severity":"bad"}"#).contains("unknown variant `bad`"));
    assert!(refused(r#"{"type":"memory","gpa":-1}"#).contains("invalid value"));
    assert!(refused(r#"{"type":"memory","vcpu":4294967296}"#).contains("invalid value"));
    // Old spellings are gone.
    assert!(refused(r#"{"type":"arm-processor"}"#).contains("unknown variant"));
    assert!(
        refused(r#"{"type":"arm_processor","arm_error":"micro-arch"}"#).contains("unknown variant")
    );
}

/// Sets field `key` of `req` to a valid value.
fn set(req: &mut InjectRequest, key: &str) {
    match key {
        "gpa" => req.gpa = Some(0x1000),
        "granule" => req.granule = Some(0x1000),
        "threshold_exceeded" => req.threshold_exceeded = Some(true),
        "arm_error" => req.arm_error = Some(InjectArmError::Bus),
        "mpidr" => req.mpidr = Some(1),
        "pa" => req.pa = Some(0x1000),
        "va" => req.va = Some(0x2000),
        "section_type" => req.section_type = Some(ARM_GUID_TEXT.to_string()),
        "data" => req.data = Some("00".to_string()),
        "vcpu" => req.vcpu = Some(0),
        "vcpu_mode" => req.vcpu_mode = Some(VcpuMode::Any),
        _ => panic!("no field {key}"),
    }
}

/// The smallest valid request of `kind`.
fn minimal(kind: InjectKind) -> InjectRequest {
    let mut req = InjectRequest {
        kind,
        ..InjectRequest::default()
    };
    match kind {
        InjectKind::Memory => set(&mut req, "gpa"),
        InjectKind::ArmProcessor => {}
        InjectKind::Raw => {
            set(&mut req, "section_type");
            set(&mut req, "data");
        }
    }
    req
}

#[test]
fn fields_that_do_not_apply_are_refused() {
    // The documented fields of each type (InjectRequest's field docs).
    let table: [(InjectKind, &str, &[&str]); 3] = [
        (
            InjectKind::Memory,
            "type=memory",
            &["gpa", "granule", "threshold_exceeded"],
        ),
        (
            InjectKind::ArmProcessor,
            "type=arm_processor",
            &["arm_error", "mpidr", "pa", "va"],
        ),
        (InjectKind::Raw, "type=raw", &["section_type", "data"]),
    ];
    let all = [
        "gpa",
        "granule",
        "threshold_exceeded",
        "arm_error",
        "mpidr",
        "pa",
        "va",
        "section_type",
        "data",
    ];
    for (kind, context, applicable) in table {
        minimal(kind).to_report(0, 0).unwrap();
        for key in all {
            let mut req = minimal(kind);
            set(&mut req, key);
            let res = req.to_report(0, 0);
            if applicable.contains(&key) {
                assert!(res.is_ok(), "{key} with {context}: {res:?}");
            } else {
                assert_eq!(
                    res,
                    Err(InjectError::NotApplicable {
                        key,
                        context: context.to_string()
                    }),
                    "{key} with {context}"
                );
            }
        }
        // vcpu and vcpu_mode: only with source=sync, whatever the type.
        for key in ["vcpu", "vcpu_mode"] {
            let mut req = minimal(kind);
            set(&mut req, key);
            assert_eq!(
                req.to_report(0, 0),
                Err(InjectError::NotApplicable {
                    key,
                    context: "source=async".to_string()
                }),
                "{key} with {context}"
            );
            req.source = InjectSource::Sync;
            assert!(req.to_report(0, 0).is_ok(), "{key} with {context}, sync");
        }
    }
    let err = InjectError::NotApplicable {
        key: "pa",
        context: "type=memory".to_string(),
    };
    assert_eq!(
        err.to_string(),
        "Inject-error field 'pa' does not apply to type=memory"
    );
}

#[test]
fn missing_fields_are_named() {
    let cases = [
        (r#"{"type":"memory"}"#, InjectKind::Memory, "gpa"),
        (
            r#"{"type":"memory","granule":4096}"#,
            InjectKind::Memory,
            "gpa",
        ),
        (
            r#"{"type":"raw","data":"00"}"#,
            InjectKind::Raw,
            "section_type",
        ),
        (
            r#"{"type":"raw","section_type":"e19e3d16-bc11-11e4-9caa-c2051d5d46b0"}"#,
            InjectKind::Raw,
            "data",
        ),
    ];
    for (text, kind, key) in cases {
        assert_eq!(
            json(text).to_report(0, 0),
            Err(InjectError::Missing { kind, key }),
            "{text}"
        );
    }
    assert_eq!(
        InjectError::Missing {
            kind: InjectKind::Raw,
            key: "data"
        }
        .to_string(),
        "Inject-error type=raw needs 'data'"
    );
}

#[test]
fn bad_granules_are_refused() {
    for len in [
        0u64,
        1,
        0x800,
        0xfff,
        3000,
        0x3000,
        0x1001,
        1 << 35,
        1 << 63,
        u64::MAX,
    ] {
        let mut req = minimal(InjectKind::Memory);
        req.granule = Some(len);
        assert_eq!(
            req.to_report(0, 0),
            Err(InjectError::BadGranule(len)),
            "{len:#x}"
        );
        assert_eq!(req.memory_granule(), None, "{len:#x}");
    }
    for shift in 12..=34u8 {
        let mut req = minimal(InjectKind::Memory);
        req.granule = Some(1 << shift);
        assert!(req.to_report(0, 0).is_ok(), "2^{shift}");
    }
    assert_eq!(
        InjectError::BadGranule(3000).to_string(),
        "Invalid inject-error granule 0xbb8 (a power of two, 0x1000..=0x400000000)"
    );
}

#[test]
fn bad_section_types_and_data_are_refused() {
    let raw = |section_type: &str, data: &str| InjectRequest {
        kind: InjectKind::Raw,
        section_type: Some(section_type.to_string()),
        data: Some(data.to_string()),
        ..InjectRequest::default()
    };
    for bad in [
        "not-a-guid",
        "",
        "e19e3d16-bc11-11e4-9caa-c2051d5d46b",
        "e19e3d16-bc11-11e4-9caa-c2051d5d46b00",
        "e19e3d16bc11-11e4-9caa-c2051d5d46b0-",
        "g19e3d16-bc11-11e4-9caa-c2051d5d46b0",
    ] {
        assert_eq!(
            raw(bad, "00").to_report(0, 0),
            Err(InjectError::BadGuid(bad.to_string())),
            "{bad}"
        );
    }
    // Long text is cut at 64 characters in the error.
    let long = "a".repeat(100);
    assert_eq!(
        raw(&long, "00").to_report(0, 0),
        Err(InjectError::BadGuid("a".repeat(64)))
    );
    // Upper case GUIDs are GUIDs.
    let upper = raw(&ARM_GUID_TEXT.to_uppercase(), "00")
        .to_report(0, 0)
        .unwrap();
    let Section::Raw(r) = &injected(&upper).1.section else {
        panic!("not raw");
    };
    assert_eq!(r.section_type.to_string(), ARM_GUID_TEXT);

    let cases = [
        ("abc", InjectError::OddHexLength(3)),
        ("0", InjectError::OddHexLength(1)),
        ("zz", InjectError::NotHex(0)),
        ("0g", InjectError::NotHex(1)),
        ("00 1", InjectError::NotHex(2)),
        ("+1", InjectError::NotHex(0)),
    ];
    for (data, err) in cases {
        assert_eq!(raw(ARM_GUID_TEXT, data).to_report(0, 0), Err(err), "{data}");
    }
    let too_long = "00".repeat(MAX_RAW_DATA + 1);
    assert_eq!(
        raw(ARM_GUID_TEXT, &too_long).to_report(0, 0),
        Err(InjectError::DataTooLong(MAX_RAW_DATA + 1))
    );
    assert_eq!(MAX_RAW_DATA, 4096);
    let max = "a5".repeat(MAX_RAW_DATA);
    assert_eq!(decode_hex(&max), Ok(vec![0xa5; 4096]));
    assert_eq!(decode_hex("DEADbeef"), Ok(vec![0xde, 0xad, 0xbe, 0xef]));
    assert_eq!(decode_hex(""), Ok(vec![]));
}

#[test]
fn words_parse_and_print_both_ways() {
    fn check<T>(field: &'static str, allowed: &'static str, words: &[(&str, T)])
    where
        T: FromStr<Err = InjectError> + Display + Debug + PartialEq + Copy,
    {
        for (word, value) in words {
            assert_eq!(word.parse::<T>(), Ok(*value), "{word}");
            assert_eq!(value.to_string(), *word);
        }
        assert_eq!(allowed.split('|').count(), words.len());
        for bad in ["", "x", "Memory", "ANY"] {
            assert_eq!(
                bad.parse::<T>(),
                Err(InjectError::InvalidWord(InvalidWord {
                    key: field,
                    value: bad.to_string(),
                    allowed,
                })),
                "{bad}"
            );
        }
    }
    check(
        "type",
        "memory|arm_processor|raw",
        &[
            ("memory", InjectKind::Memory),
            ("arm_processor", InjectKind::ArmProcessor),
            ("raw", InjectKind::Raw),
        ],
    );
    check(
        "source",
        "async|sync",
        &[("async", InjectSource::Async), ("sync", InjectSource::Sync)],
    );
    check(
        "vcpu_mode",
        "user|any",
        &[("user", VcpuMode::User), ("any", VcpuMode::Any)],
    );
    check(
        "arm_error",
        "cache|tlb|bus|micro_arch",
        &[
            ("cache", InjectArmError::Cache),
            ("tlb", InjectArmError::Tlb),
            ("bus", InjectArmError::Bus),
            ("micro_arch", InjectArmError::MicroArch),
        ],
    );
    // The JSON words are the command-line words.
    assert_eq!(
        serde_json::to_string(&InjectKind::ArmProcessor).unwrap(),
        r#""arm_processor""#
    );
    assert_eq!(
        serde_json::to_string(&InjectArmError::MicroArch).unwrap(),
        r#""micro_arch""#
    );
    // The value in the error is cut at 32 characters.
    let long = "z".repeat(50);
    assert_eq!(
        long.parse::<InjectKind>(),
        Err(InjectError::InvalidWord(InvalidWord {
            key: "type",
            value: "z".repeat(32),
            allowed: "memory|arm_processor|raw",
        }))
    );
    assert_eq!(
        "disk".parse::<InjectKind>().unwrap_err().to_string(),
        "Invalid value 'disk' for 'type' (allowed: memory|arm_processor|raw)"
    );
    // A field's number error reads as --ras's (crate::config::parse_number).
    assert_eq!(
        InjectError::from(parse_number::<u32>("vcpu", "-1").unwrap_err()).to_string(),
        "Invalid number '-1' for 'vcpu' (decimal, or hexadecimal after 0x, of at most 32 bits)"
    );
}

#[test]
fn severity_words_are_the_cper_names_refused_like_a_field() {
    // UEFI 2.10 N.2.1: 0 recoverable, 1 fatal, 2 corrected, 3 informational.
    for (word, severity) in [
        ("recoverable", Severity::Recoverable),
        ("fatal", Severity::Fatal),
        ("corrected", Severity::Corrected),
        ("informational", Severity::Informational),
    ] {
        assert_eq!(parse_severity(word), Ok(severity), "{word}");
        assert!(SEVERITY_WORDS.split('|').any(|w| w == word), "{word}");
    }
    assert_eq!(SEVERITY_WORDS.split('|').count(), Severity::ALL.len());
    for bad in ["", "Fatal", "uncorrected", "fatal "] {
        assert_eq!(
            parse_severity(bad),
            Err(InjectError::InvalidWord(InvalidWord {
                key: "severity",
                value: bad.to_string(),
                allowed: SEVERITY_WORDS,
            })),
            "{bad:?}"
        );
    }
    assert_eq!(
        parse_severity("bad").unwrap_err().to_string(),
        "Invalid value 'bad' for 'severity' (allowed: recoverable|fatal|corrected|informational)"
    );
}

#[test]
fn memory_granule_is_the_range_to_check() {
    let g = |base: u64, shift: u8| GpaGranule::containing(GuestAddress(base), shift);
    let req = json(r#"{"type":"memory","gpa":1207959843}"#);
    assert_eq!(req.memory_granule(), g(0x4800_0000, 12));
    let req = json(r#"{"type":"memory","gpa":1207959843,"granule":1073741824}"#);
    assert_eq!(req.memory_granule(), g(0x4000_0000, 30));
    // No address, another type, a bad granule: nothing to check.
    assert_eq!(json(r#"{"type":"memory"}"#).memory_granule(), None);
    assert_eq!(
        json(r#"{"type":"arm_processor","pa":4096}"#).memory_granule(),
        None
    );
    let mut req = minimal(InjectKind::ArmProcessor);
    req.gpa = Some(0x1000);
    assert_eq!(req.memory_granule(), None);
    assert_eq!(
        json(r#"{"type":"memory","gpa":4096,"granule":12288}"#).memory_granule(),
        None
    );
    assert_eq!(DEFAULT_GRANULE, 4096);
    // The section GUID of a memory injection.
    let report = minimal(InjectKind::Memory).to_report(0, 0).unwrap();
    assert_eq!(
        injected(&report).1.section.section_type(),
        MEMORY_ERROR_SECTION_GUID
    );
}

fn pending<R>(vcpu: u32, deadline_ms: u64, respond: R) -> Pending<R> {
    Pending {
        vcpu,
        report: minimal(InjectKind::Memory).to_report(0, 0).unwrap(),
        mode: VcpuMode::User,
        deadline_ms,
        respond,
    }
}

#[test]
fn one_pending_injection_per_vcpu() {
    let q = PendingInjections::new();
    assert!(q.is_empty());
    q.push(pending(0, 100, "a")).unwrap();
    // vCPU 0 is busy: the refused entry comes back whole.
    let back = q.push(pending(0, 200, "b")).unwrap_err();
    assert_eq!((back.vcpu, back.deadline_ms, back.respond), (0, 200, "b"));
    q.push(pending(1, 50, "c")).unwrap();
    let mut vcpus = q.vcpus();
    vcpus.sort_unstable();
    assert_eq!(vcpus, [0, 1]);
    assert_eq!(q.waiting(0), Some(VcpuMode::User));
    assert_eq!(q.waiting(2), None);
    // take: only the vCPU's own entry.
    assert!(q.take(2).is_none());
    assert_eq!(q.take(1).map(|p| p.respond), Some("c"));
    assert!(q.take(1).is_none());
    assert_eq!(q.vcpus(), [0]);
    // Now vCPU 1 can have another one.
    q.push(pending(1, 300, "d")).unwrap();
    assert!(!q.is_empty());
}

#[test]
fn expire_takes_only_what_is_due_and_drain_takes_all() {
    let q = PendingInjections::new();
    q.push(pending(0, 10, "a")).unwrap();
    q.push(pending(1, 20, "b")).unwrap();
    q.push(pending(2, 30, "c")).unwrap();
    assert!(q.expire(9).is_empty());
    // The deadline is the last millisecond it may wait: due at 10.
    let due: Vec<_> = q.expire(10).into_iter().map(|p| p.respond).collect();
    assert_eq!(due, ["a"]);
    let mut rest = q.vcpus();
    rest.sort_unstable();
    assert_eq!(rest, [1, 2]);
    let mut due: Vec<_> = q.expire(1000).into_iter().map(|p| p.respond).collect();
    due.sort_unstable();
    assert_eq!(due, ["b", "c"]);
    assert!(q.is_empty());
    q.push(pending(4, 10, "d")).unwrap();
    q.push(pending(5, 10, "e")).unwrap();
    let mut all: Vec<_> = q.drain().into_iter().map(|p| p.respond).collect();
    all.sort_unstable();
    assert_eq!(all, ["d", "e"]);
    assert!(q.is_empty());
    assert!(q.drain().is_empty());
}

/// Answers one requester: counts its answers.
struct Responder {
    id: usize,
    answers: Arc<Vec<AtomicU32>>,
}

impl Responder {
    fn respond(self) {
        self.answers[self.id].fetch_add(1, Ordering::SeqCst);
    }
}

/// The vCPU threads take their entries while the VMM thread expires them
/// or drains them: every requester is answered exactly once, by whichever
/// side took its entry out, and a vCPU only ever gets its own entry.
#[test]
fn take_and_expire_race_answers_each_requester_once() {
    const VCPUS: u32 = 4;
    const PER_VCPU: usize = 20_000;
    let total = VCPUS as usize * PER_VCPU;
    let answers: Arc<Vec<AtomicU32>> = Arc::new((0..total).map(|_| AtomicU32::new(0)).collect());
    let q = Arc::new(PendingInjections::<Responder>::new());
    let done = Arc::new(AtomicBool::new(false));

    let vcpu_threads: Vec<_> = (0..VCPUS)
        .map(|vcpu| {
            let q = Arc::clone(&q);
            let done = Arc::clone(&done);
            thread::spawn(move || {
                let mut taken = 0u64;
                while !done.load(Ordering::SeqCst) {
                    match q.take(vcpu) {
                        Some(p) => {
                            assert_eq!(p.vcpu, vcpu, "vCPU {vcpu} got another vCPU's entry");
                            p.respond.respond();
                            taken += 1;
                        }
                        None => hint::spin_loop(),
                    }
                }
                taken
            })
        })
        .collect();

    let mut expired = 0u64;
    let mut next = [0usize; VCPUS as usize];
    let mut now = 0u64;
    while next.iter().any(|n| *n < PER_VCPU) {
        for vcpu in 0..VCPUS {
            let i = next[vcpu as usize];
            if i == PER_VCPU {
                continue;
            }
            let id = vcpu as usize * PER_VCPU + i;
            let r = Responder {
                id,
                answers: Arc::clone(&answers),
            };
            // Due now or in one or two rounds: expire races with take on
            // entries of every age.
            match q.push(pending(vcpu, now + (id % 3) as u64, r)) {
                Ok(()) => next[vcpu as usize] += 1,
                // Busy: not queued, so not answered here; pushed again
                // later under the same id.
                Err(p) => assert_eq!(p.vcpu, vcpu),
            }
        }
        for p in q.expire(now) {
            p.respond.respond();
            expired += 1;
        }
        now += 1;
    }
    done.store(true, Ordering::SeqCst);
    let taken: u64 = vcpu_threads.into_iter().map(|t| t.join().unwrap()).sum();
    for p in q.drain() {
        p.respond.respond();
        expired += 1;
    }
    assert_eq!(taken + expired, total as u64);
    let wrong: Vec<_> = answers
        .iter()
        .enumerate()
        .map(|(i, a)| (i, a.load(Ordering::SeqCst)))
        .filter(|(_, n)| *n != 1)
        .collect();
    assert!(wrong.is_empty(), "answered not exactly once: {wrong:?}");
}
