// SPDX-License-Identifier: Apache-2.0
//! Writes sample CPER records (UEFI 2.10 N.2.1) built from GHES status blocks,
//! for cross-checking with independent decoders (tests/libcper).
//!
//! Usage: `cargo run -p ras --example cper_samples -- <out-dir>`. Writes
//! `<name>.cper` (a whole CPER record) and `<name>.block` (the ACPI 6.5
//! §18.3.2.7 Generic Error Status Block) for each sample, and
//! `manifest.json` describing what each record must decode to.

use std::path::PathBuf;
use std::{env, fs};

use ras::cper::arm::{info_flags, info_validation, validation as arm_validation};
use ras::cper::{
    ArmContextInfo, ArmErrorInfo, ArmErrorTypes, ArmProcessorSection, DataEntry, EntryFlags, Guid,
    RawSection, Section, Severity, StatusBlock, Timestamp,
};
use ras::granule::GpaGranule;
use ras_tools::cper_record::{Record, notification};
use ras_tools::guid_text::guid;
use vm_memory::GuestAddress;

/// 2026-11-24T18:33:20Z.
const NOW: u64 = 1_795_545_200;

fn memory(gpa: u64, shift: u8, severity: Severity) -> StatusBlock {
    let granule = GpaGranule::containing(GuestAddress(gpa), shift).expect("valid granule shift");
    StatusBlock::memory_error(&granule, severity, NOW)
}

fn arm_section() -> ArmProcessorSection {
    ArmProcessorSection {
        validation_bits: arm_validation::MPIDR | arm_validation::RUNNING_STATE,
        error_affinity_level: 0,
        mpidr: 0x8000_0003,
        midr: 0x410f_d0c0,
        running_state: 1,
        psci_state: 0,
        error_info: vec![
            ArmErrorInfo {
                validation_bits: info_validation::FLAGS | info_validation::PHYSICAL_FAULT_ADDRESS,
                error_type: ArmErrorTypes::CACHE,
                flags: info_flags::FIRST_ERROR | info_flags::LAST_ERROR,
                physical_fault_address: 0x4020_0000,
                ..Default::default()
            },
            ArmErrorInfo {
                validation_bits: info_validation::VIRTUAL_FAULT_ADDRESS,
                error_type: ArmErrorTypes::TLB,
                virtual_fault_address: 0xffff_8000_1234_5000,
                ..Default::default()
            },
            ArmErrorInfo {
                error_type: ArmErrorTypes::BUS,
                ..Default::default()
            },
            ArmErrorInfo {
                error_type: ArmErrorTypes::MICRO_ARCHITECTURAL,
                ..Default::default()
            },
        ],
        context_info: vec![ArmContextInfo {
            version: 0,
            // AArch64 general-purpose registers: X0..X30 and SP.
            register_context_type: 4,
            registers: (0..32u64)
                .flat_map(|r| (r * 0x1111).to_le_bytes())
                .collect(),
        }],
        vendor_specific: Vec::new(),
    }
}

/// A vendor-defined section type, for the raw sample.
const RAW_GUID: Guid = guid("12345678-9ABC-DEF0-1122-334455667788");

fn samples() -> Vec<(&'static str, StatusBlock, Guid)> {
    let ts = Timestamp::from_unix(NOW);
    let arm = StatusBlock::new().with_entry(
        DataEntry::new(Section::ArmProcessor(arm_section()), Severity::Recoverable)
            .with_flags(EntryFlags::PRIMARY)
            .with_timestamp(ts),
    );
    let raw = StatusBlock::new().with_entry(
        DataEntry::new(
            Section::Raw(RawSection::new(RAW_GUID, b"raw section body".to_vec())),
            Severity::Informational,
        )
        .with_timestamp(ts),
    );
    let mut corrected = memory(0x8000_1000, 12, Severity::Corrected);
    corrected.entries[0].flags |= EntryFlags::THRESHOLD_EXCEEDED;
    let multi = memory(0x4020_0000, 21, Severity::Recoverable)
        .with_entry(corrected.entries[0].clone())
        .with_entry(DataEntry::new(
            Section::ArmProcessor(arm_section()),
            Severity::Recoverable,
        ))
        .with_entry(DataEntry::new(
            Section::Raw(RawSection::new(RAW_GUID, vec![0xa5; 8])),
            Severity::Informational,
        ));
    vec![
        (
            "memory_4k",
            memory(0x1_2345_6789, 12, Severity::Recoverable),
            notification::SEA,
        ),
        (
            "memory_2m",
            memory(0x4020_1234, 21, Severity::Recoverable),
            notification::SEA,
        ),
        (
            "memory_1g",
            memory(0x1_4000_0000, 30, Severity::Recoverable),
            notification::SEA,
        ),
        ("memory_corrected", corrected, notification::CPE),
        ("arm_processor", arm, notification::SEA),
        ("raw", raw, notification::CPE),
        ("multi_entry", multi, notification::SEA),
    ]
}

fn main() {
    let out = PathBuf::from(
        env::args()
            .nth(1)
            .unwrap_or_else(|| "cper-samples".to_string()),
    );
    fs::create_dir_all(&out).expect("create output directory");
    let mut manifest = Vec::new();
    for (i, (name, block, notify)) in samples().into_iter().enumerate() {
        let block_bytes = block.encode();
        assert_eq!(StatusBlock::decode(&block_bytes).as_ref(), Ok(&block));
        let record = Record::from_status_block(&block, notify, i as u64 + 1);
        let bytes = record.encode();
        assert_eq!(Record::decode(&bytes).as_ref(), Ok(&record));
        fs::write(out.join(format!("{name}.cper")), &bytes).expect("write record");
        fs::write(out.join(format!("{name}.block")), &block_bytes).expect("write block");
        manifest.push(serde_json::json!({
            "name": name,
            "record": format!("{name}.cper"),
            "block": format!("{name}.block"),
            "notification_type": notify.to_string(),
            "severity": record.error_severity().to_u32(),
            "sections": record.sections.iter().map(|s| serde_json::json!({
                "section_type": s.section.section_type().to_string(),
                "severity": s.severity.to_u32(),
                "flags": s.flags.bits(),
                "length": s.section.encoded_len(),
                "body": s.section.clone(),
            })).collect::<Vec<_>>(),
        }));
    }
    fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).expect("serialize manifest"),
    )
    .expect("write manifest");
    println!("{}", out.display());
}
