// SPDX-License-Identifier: Apache-2.0
use super::*;
use crate::config::RasConfig;
use crate::cper::ARM_PROCESSOR_SECTION_GUID;
use crate::cper::arm::{info_validation, validation};
use crate::engine::{EngineError, RasEngine};

const GPA: u64 = 0x4800_0123;

fn payload(report: &ErrorReport) -> (&InjectTarget, &InjectPayload) {
    match &report.cause {
        ErrorCause::Injected { target, payload } => (target, payload),
        other => panic!("not an injection: {other:?}"),
    }
}

#[test]
fn memory_option_string_becomes_a_memory_report() {
    let req = InjectRequest::parse("type=memory,gpa=0x48000123,granule=2097152").unwrap();
    assert_eq!(req.kind, InjectKind::Memory);
    assert_eq!(req.source, InjectSource::Async);
    let report = req.to_report(2, 1_700_000_000, 5).unwrap();
    assert_eq!(report.unix_time, 1_700_000_000);
    assert_eq!(report.monotonic_ms, 5);
    let (target, payload) = payload(&report);
    assert_eq!(*target, InjectTarget::Async);
    assert_eq!(
        *payload,
        InjectPayload::Memory {
            granule: GpaGranule::containing(0x4800_0000, 21).unwrap(),
            severity: Severity::Recoverable,
            threshold_exceeded: false,
        }
    );
    assert_eq!(req.memory_range(), Some((0x4800_0000, 2 << 20)));
}

#[test]
fn decimal_and_hex_numbers_are_the_same() {
    let hex = InjectRequest::parse(&format!("type=memory,gpa={GPA:#x}")).unwrap();
    let dec = InjectRequest::parse(&format!("type=memory,gpa={GPA}")).unwrap();
    assert_eq!(hex, dec);
    assert_eq!(hex.gpa, Some(GPA));
    assert_eq!(hex.memory_range(), Some((0x4800_0000, 4096)));
}

#[test]
fn sync_memory_report_targets_the_vcpu() {
    let req = InjectRequest::parse(&format!(
        "type=memory,gpa={GPA:#x},source=sync,vcpu=1,severity=corrected,threshold_exceeded=on"
    ))
    .unwrap();
    let report = req.to_report(2, 0, 0).unwrap();
    let (target, payload) = payload(&report);
    assert_eq!(*target, InjectTarget::Sync { vcpu: 1 });
    assert!(matches!(
        payload,
        InjectPayload::Memory {
            severity: Severity::Corrected,
            threshold_exceeded: true,
            ..
        }
    ));
}

#[test]
fn arm_processor_report_carries_type_mpidr_and_addresses() {
    let req = InjectRequest::parse(
        "type=arm-processor,arm_error=tlb,mpidr=0x80000001,pa=0x48000000,va=0xffff0000",
    )
    .unwrap();
    let report = req.to_report(1, 0, 0).unwrap();
    let InjectPayload::ArmProcessor { section, severity } = payload(&report).1 else {
        panic!("not an ARM processor payload");
    };
    assert_eq!(*severity, Severity::Recoverable);
    assert_eq!(section.mpidr, 0x8000_0001);
    assert_eq!(section.error_info.len(), 1);
    let info = section.error_info[0];
    assert_eq!(info.error_type, ArmErrorTypes::TLB);
    assert_eq!(info.physical_fault_address, 0x4800_0000);
    assert_eq!(info.virtual_fault_address, 0xffff_0000);
    assert_ne!(
        info.validation_bits & info_validation::PHYSICAL_FAULT_ADDRESS,
        0
    );
    assert_ne!(
        info.validation_bits & info_validation::VIRTUAL_FAULT_ADDRESS,
        0
    );
    assert_ne!(section.validation_bits & validation::MPIDR, 0);
}

#[test]
fn arm_processor_defaults_to_a_cache_error_without_addresses() {
    let report = InjectRequest::parse("type=arm-processor")
        .unwrap()
        .to_report(1, 0, 0)
        .unwrap();
    let InjectPayload::ArmProcessor { section, .. } = payload(&report).1 else {
        panic!("not an ARM processor payload");
    };
    assert_eq!(section.error_info[0].error_type, ArmErrorTypes::CACHE);
    assert_eq!(section.error_info[0].validation_bits, 0);
    assert_eq!(section.mpidr, 0);
}

#[test]
fn raw_report_decodes_guid_and_hex() {
    let guid = ARM_PROCESSOR_SECTION_GUID.to_string();
    let req = InjectRequest::parse(&format!("type=raw,section_type={guid},data=00ff10Ab")).unwrap();
    let report = req.to_report(1, 0, 0).unwrap();
    assert_eq!(
        *payload(&report).1,
        InjectPayload::Raw {
            section_type: ARM_PROCESSOR_SECTION_GUID,
            severity: Severity::Recoverable,
            data: vec![0x00, 0xff, 0x10, 0xab],
        }
    );
    assert_eq!(req.memory_range(), None);
}

#[test]
fn json_body_matches_the_option_string() {
    let from_str =
        InjectRequest::parse(&format!("type=memory,gpa={GPA},source=sync,vcpu=0")).unwrap();
    let from_json: InjectRequest = serde_json::from_str(&format!(
        r#"{{"type":"memory","gpa":{GPA},"source":"sync","vcpu":0}}"#
    ))
    .unwrap();
    assert_eq!(from_str, from_json);
    let round: InjectRequest =
        serde_json::from_str(&serde_json::to_string(&from_json).unwrap()).unwrap();
    assert_eq!(round, from_json);
    let arm: InjectRequest = serde_json::from_str(
        r#"{"type":"arm-processor","arm_error":"micro-arch","severity":"fatal"}"#,
    )
    .unwrap();
    assert_eq!(arm.arm_error, Some(InjectArmError::MicroArch));
    assert_eq!(arm.severity, Severity::Fatal);
}

#[test]
fn json_refuses_unknown_fields_and_words() {
    let refused = |json: &str| {
        serde_json::from_str::<InjectRequest>(json)
            .unwrap_err()
            .to_string()
    };
    assert!(refused(r#"{"type":"memory","gpa":1,"addr":2}"#).contains("addr"));
    assert!(refused(r#"{"type":"disk"}"#).contains("disk"));
    assert!(refused(r#"{"gpa":1}"#).contains("type"));
    assert!(refused(r#"{"type":"memory","source":"nmi"}"#).contains("nmi"));
}

#[test]
fn syntax_errors_name_the_problem() {
    let cases: &[(&str, InjectError)] = &[
        ("", InjectError::EmptyOption),
        ("type=memory,,gpa=1", InjectError::EmptyOption),
        ("type=memory,gpa", InjectError::MissingValue("gpa".into())),
        ("type=memory,gpa=", InjectError::EmptyValue("gpa".into())),
        ("type=memory,addr=1", InjectError::UnknownKey("addr".into())),
        (
            "type=memory,type=raw",
            InjectError::DuplicateKey("type".into()),
        ),
        ("gpa=0x1000", InjectError::MissingType),
        (
            "type=memory,gpa=0xg",
            InjectError::InvalidNumber {
                key: "gpa",
                value: "0xg".into(),
            },
        ),
        (
            "type=memory,gpa=+5",
            InjectError::InvalidNumber {
                key: "gpa",
                value: "+5".into(),
            },
        ),
        (
            "type=memory,gpa=0x",
            InjectError::InvalidNumber {
                key: "gpa",
                value: "0x".into(),
            },
        ),
        (
            "type=memory,gpa=99999999999999999999999",
            InjectError::InvalidNumber {
                key: "gpa",
                value: "99999999999999999999999".into(),
            },
        ),
        (
            "type=memory,vcpu=4294967296",
            InjectError::InvalidNumber {
                key: "vcpu",
                value: "4294967296".into(),
            },
        ),
        (
            "type=disk",
            InjectError::InvalidWord {
                key: "type",
                value: "disk".into(),
                allowed: "memory|arm-processor|raw",
            },
        ),
        (
            "type=memory,severity=bad",
            InjectError::InvalidWord {
                key: "severity",
                value: "bad".into(),
                allowed: "recoverable|fatal|corrected|informational",
            },
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(
            InjectRequest::parse(input).unwrap_err(),
            *expected,
            "{input}"
        );
        // Every message is a sentence naming something.
        assert!(expected.to_string().chars().next().unwrap().is_uppercase());
    }
}

#[test]
fn inconsistent_requests_are_refused() {
    let guid = ARM_PROCESSOR_SECTION_GUID.to_string();
    let cases: Vec<(String, InjectError)> = vec![
        (
            "type=memory".into(),
            InjectError::Missing {
                kind: InjectKind::Memory,
                key: "gpa",
            },
        ),
        (
            "type=raw,data=00".into(),
            InjectError::Missing {
                kind: InjectKind::Raw,
                key: "section_type",
            },
        ),
        (
            format!("type=raw,section_type={guid}"),
            InjectError::Missing {
                kind: InjectKind::Raw,
                key: "data",
            },
        ),
        (
            "type=arm-processor,gpa=0x1000".into(),
            InjectError::NotApplicable {
                key: "gpa",
                context: "type=arm-processor".into(),
            },
        ),
        (
            "type=memory,gpa=0x1000,pa=0x1000".into(),
            InjectError::NotApplicable {
                key: "pa",
                context: "type=memory".into(),
            },
        ),
        (
            "type=memory,gpa=0x1000,vcpu=0".into(),
            InjectError::NotApplicable {
                key: "vcpu",
                context: "source=async".into(),
            },
        ),
        (
            "type=memory,gpa=0x1000,granule=3000".into(),
            InjectError::BadGranule(3000),
        ),
        (
            "type=memory,gpa=0x1000,granule=2048".into(),
            InjectError::BadGranule(2048),
        ),
        (
            "type=memory,gpa=0x1000,granule=0x800000000".into(),
            InjectError::BadGranule(0x8_0000_0000),
        ),
        (
            "type=memory,gpa=0x1000,granule=0".into(),
            InjectError::BadGranule(0),
        ),
        (
            "type=raw,section_type=not-a-guid,data=00".into(),
            InjectError::BadGuid("not-a-guid".into()),
        ),
        (
            format!("type=raw,section_type={guid},data=abc"),
            InjectError::BadData("3 hex digits (two per byte)".into()),
        ),
        (
            format!("type=raw,section_type={guid},data=zz"),
            InjectError::BadData("not a hex digit at offset 0".into()),
        ),
        (
            format!(
                "type=raw,section_type={guid},data={}",
                "00".repeat(MAX_RAW_DATA + 1)
            ),
            InjectError::BadData(format!(
                "{} bytes (at most {MAX_RAW_DATA})",
                MAX_RAW_DATA + 1
            )),
        ),
        (
            "type=memory,gpa=0x1000,source=sync,vcpu=2".into(),
            InjectError::NoSuchVcpu {
                vcpu: 2,
                num_vcpus: 2,
            },
        ),
    ];
    for (input, expected) in cases {
        let req = InjectRequest::parse(&input).unwrap();
        assert_eq!(req.to_report(2, 0, 0).unwrap_err(), expected, "{input}");
    }
}

#[test]
fn engine_refuses_what_the_configuration_cannot_deliver() {
    let engine = |opts: &str, vcpus| {
        RasEngine::new(RasConfig::parse(opts).unwrap(), 0x40_0000, vcpus).unwrap()
    };
    let memory = InjectRequest::parse(&format!("type=memory,gpa={GPA}")).unwrap();

    let on = engine("on", 2);
    on.check_injection(&memory.to_report(2, 0, 0).unwrap())
        .unwrap();

    let off = engine("async=off", 2);
    let err = off
        .check_injection(&memory.to_report(2, 0, 0).unwrap())
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Injection(ref m) if m.contains("async=off")),
        "{err}"
    );
    // The synchronous source still works with async=off.
    let sync = InjectRequest::parse(&format!("type=memory,gpa={GPA},source=sync,vcpu=1")).unwrap();
    off.check_injection(&sync.to_report(2, 0, 0).unwrap())
        .unwrap();

    // A report built for a bigger VM than the engine's.
    let one = engine("on", 1);
    let err = one
        .check_injection(&sync.to_report(2, 0, 0).unwrap())
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Injection(ref m) if m.contains("vCPU 1")),
        "{err}"
    );

    // 256-byte blocks: a 300-byte raw section does not fit, 100 bytes do.
    let small = engine("block_size=256", 1);
    let guid = ARM_PROCESSOR_SECTION_GUID.to_string();
    let big = InjectRequest::parse(&format!(
        "type=raw,section_type={guid},data={}",
        "00".repeat(300)
    ))
    .unwrap();
    let err = small
        .check_injection(&big.to_report(1, 0, 0).unwrap())
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Injection(ref m) if m.contains("256-byte")),
        "{err}"
    );
    let fits = InjectRequest::parse(&format!(
        "type=raw,section_type={guid},data={}",
        "00".repeat(100)
    ))
    .unwrap();
    small
        .check_injection(&fits.to_report(1, 0, 0).unwrap())
        .unwrap();
}

#[test]
fn syntax_names_every_key() {
    for key in KNOWN_KEYS.split(", ") {
        assert!(InjectRequest::SYNTAX.contains(key), "{key}");
    }
}
