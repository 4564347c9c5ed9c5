// SPDX-License-Identifier: Apache-2.0
//! `rasctl decode`: recognises a HEST ("HEST" signature), a CPER record
//! ("CPER" signature) or, failing both, a Generic Error Status Block, and
//! prints it as text or JSON. Every input is decoded by the engine's own
//! strict decoders: bad input is an error, never a partial print.

use std::fmt::Write;
use std::path::Path;

use ras::cper::{DataEntry, Record, Section, Severity, StatusBlock};
use ras::hest::{self, ParsedHest};
use serde::Serialize;

use crate::CliError;
use crate::encode::read;

/// A HEST GHESv2 entry, in plain fields (for JSON and text).
#[derive(Serialize)]
struct HestEntryView {
    source_id: u16,
    related_source_id: u16,
    enabled: u8,
    notification_type: u8,
    poll_interval_ms: u32,
    error_status_address: u64,
    read_ack_register: u64,
    read_ack_preserve: u64,
    read_ack_write: u64,
    error_status_block_length: u32,
    records_to_preallocate: u32,
    max_sections_per_record: u32,
}

#[derive(Serialize)]
struct HestView {
    kind: &'static str,
    length: u32,
    revision: u8,
    oem_id: String,
    oem_table_id: String,
    error_source_count: u32,
    entries: Vec<HestEntryView>,
}

#[derive(Serialize)]
struct BlockView<'a> {
    kind: &'static str,
    block_status: u32,
    error_severity: Option<&'static str>,
    block: &'a StatusBlock,
}

#[derive(Serialize)]
struct RecordView<'a> {
    kind: &'static str,
    record: &'a Record,
}

fn hest_view(p: &ParsedHest) -> HestView {
    HestView {
        kind: "hest",
        length: p.header.length.get(),
        revision: p.header.revision,
        oem_id: String::from_utf8_lossy(&p.header.oem_id).into_owned(),
        oem_table_id: String::from_utf8_lossy(&p.header.oem_table_id).into_owned(),
        error_source_count: p.error_source_count,
        entries: p
            .entries
            .iter()
            .map(|e| HestEntryView {
                source_id: e.source_id.get(),
                related_source_id: e.related_source_id.get(),
                enabled: e.enabled,
                notification_type: e.notification.kind,
                poll_interval_ms: e.notification.poll_interval.get(),
                error_status_address: e.error_status_address.address.get(),
                read_ack_register: e.read_ack_register.address.get(),
                read_ack_preserve: e.read_ack_preserve.get(),
                read_ack_write: e.read_ack_write.get(),
                error_status_block_length: e.error_status_block_length.get(),
                records_to_preallocate: e.records_to_preallocate.get(),
                max_sections_per_record: e.max_sections_per_record.get(),
            })
            .collect(),
    }
}

fn notification_name(kind: u8) -> &'static str {
    match kind {
        0 => "polled",
        1 => "external",
        2 => "local",
        3 => "sci",
        4 => "nmi",
        5 => "cmci",
        6 => "mce",
        7 => "gpio-signal",
        8 => "sea",
        9 => "sei",
        10 => "gsiv",
        11 => "sdei",
        _ => "reserved",
    }
}

fn hest_text(v: &HestView) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "HEST: length {}, revision {}, OEM '{}' '{}', {} error source(s)",
        v.length, v.revision, v.oem_id, v.oem_table_id, v.error_source_count
    );
    for e in &v.entries {
        let _ = writeln!(
            s,
            "  GHESv2 source {}: notify {} ({}){}, status address reg {:#x}, \
             read-ack reg {:#x} (preserve {:#x}, write {:#x}), block {} bytes",
            e.source_id,
            notification_name(e.notification_type),
            e.notification_type,
            if e.notification_type == 0 {
                format!(" every {} ms", e.poll_interval_ms)
            } else {
                String::new()
            },
            e.error_status_address,
            e.read_ack_register,
            e.read_ack_preserve,
            e.read_ack_write,
            e.error_status_block_length,
        );
    }
    s
}

fn entry_text(s: &mut String, i: usize, e: &DataEntry) {
    let _ = writeln!(
        s,
        "  entry {i}: section {} severity {} flags {:#04x}{}",
        e.section.section_type(),
        e.severity.name(),
        e.flags.bits(),
        e.timestamp
            .and_then(|t| t.to_unix())
            .map(|t| format!(" time {t}"))
            .unwrap_or_default(),
    );
    match &e.section {
        Section::Memory(m) => {
            let _ = writeln!(
                s,
                "    memory error: physical address {}, mask {}, error type {}",
                m.valid_physical_address()
                    .map_or("(not valid)".into(), |a| format!("{a:#x}")),
                m.valid_physical_address_mask()
                    .map_or("(not valid)".into(), |a| format!("{a:#x}")),
                m.error_type,
            );
        }
        Section::ArmProcessor(a) => {
            let _ = writeln!(
                s,
                "    ARM processor error: MPIDR {:#x}, MIDR {:#x}, {} error info, {} context",
                a.mpidr,
                a.midr,
                a.error_info.len(),
                a.context_info.len()
            );
            for info in &a.error_info {
                let _ = writeln!(
                    s,
                    "      {} (type {:#04x}): VA {:#x}, PA {:#x} (validation {:#x})",
                    info.error_type,
                    info.error_type.bits(),
                    info.virtual_fault_address,
                    info.physical_fault_address,
                    info.validation_bits
                );
            }
        }
        Section::Raw(r) => {
            let _ = writeln!(s, "    raw: {} bytes", r.data.len());
        }
    }
}

fn block_text(b: &StatusBlock) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Generic Error Status Block: status {:#x}, severity {}, {} entr{}",
        b.block_status(),
        b.error_severity().map_or("none", Severity::name),
        b.entries.len(),
        if b.entries.len() == 1 { "y" } else { "ies" }
    );
    for (i, e) in b.entries.iter().enumerate() {
        entry_text(&mut s, i, e);
    }
    s
}

fn record_text(r: &Record) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "CPER record {}: notification {}, creator {}, severity {}, {} section(s)",
        r.record_id,
        r.notification_type,
        r.creator_id,
        r.error_severity().name(),
        r.sections.len()
    );
    for (i, e) in r.sections.iter().enumerate() {
        entry_text(&mut s, i, e);
    }
    s
}

fn json<T: Serialize>(v: &T) -> String {
    // Serialising these plain structs cannot fail.
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

/// Decodes `path` and renders it.
pub fn decode_file(path: &Path, as_json: bool) -> Result<String, CliError> {
    let bytes = read(path)?;
    decode_bytes(&bytes, as_json).map_err(|reason| CliError::Decode {
        path: path.to_owned(),
        reason,
    })
}

/// Decodes `bytes` and renders it; the error says why the input was refused.
pub fn decode_bytes(bytes: &[u8], as_json: bool) -> Result<String, String> {
    match bytes.get(..4) {
        Some(b"HEST") => {
            let parsed = hest::parse(bytes).map_err(|e| e.to_string())?;
            let v = hest_view(&parsed);
            Ok(if as_json { json(&v) } else { hest_text(&v) })
        }
        Some(b"CPER") => {
            let r = Record::decode(bytes).map_err(|e| format!("CPER record: {e}"))?;
            Ok(if as_json {
                json(&RecordView {
                    kind: "record",
                    record: &r,
                })
            } else {
                record_text(&r)
            })
        }
        _ => {
            let b = StatusBlock::decode(bytes).map_err(|e| format!("status block: {e}"))?;
            if b.entries.is_empty() {
                return Err("status block: empty (block_status is 0)".into());
            }
            Ok(if as_json {
                json(&BlockView {
                    kind: "status-block",
                    block_status: b.block_status(),
                    error_severity: b.error_severity().map(Severity::name),
                    block: &b,
                })
            } else {
                block_text(&b)
            })
        }
    }
}
