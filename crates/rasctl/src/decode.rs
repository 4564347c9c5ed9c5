// SPDX-License-Identifier: Apache-2.0
//! `rasctl decode`: recognises a HEST ("HEST" signature), a CPER record
//! ("CPER" signature) or, failing both, a Generic Error Status Block, and
//! prints it as text or JSON. Every input is decoded by the engine's own
//! strict decoders: bad input is an error with a named reason
//! ([`DecodeError`]), never a partial print.
//!
//! A HEST is refused where a Linux guest refuses it (`ras_tools::hest_decode::parse`,
//! whose `HestParseError` names the kernel function of each rule); what
//! Linux accepts but a reader should know is printed as `warning:` lines.
//! Severities are printed as the bytes say: a status block or record with
//! no entries shows its header's severity field, not one made up from the
//! (absent) entries.

use std::fmt::{self, Write};
use std::path::Path;

use clap::ValueEnum;
use ras::cper::{CperError, DataEntry, Section, Severity, StatusBlock};
use ras::hest;
use ras_tools::cper_record::Record;
use ras_tools::hest_decode::{self, HestEntry, HestParseError, ParsedHest};
use serde::Serialize;
use thiserror::Error;

use crate::CliError;
use crate::encode::read;

/// What a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// An ACPI HEST ("HEST" at offset 0).
    Hest,
    /// A CPER record ("CPER" at offset 0).
    Record,
    /// A Generic Error Status Block (anything else).
    StatusBlock,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Hest => "HEST",
            Kind::Record => "CPER record",
            Kind::StatusBlock => "Generic Error Status Block",
        })
    }
}

impl Kind {
    /// The kind the first bytes of `bytes` announce.
    pub fn detect(bytes: &[u8]) -> Kind {
        match bytes.get(..4) {
            Some(b"HEST") => Kind::Hest,
            Some(b"CPER") => Kind::Record,
            _ => Kind::StatusBlock,
        }
    }
}

/// Why `rasctl` refused to decode its input.
#[derive(Debug, Error)]
pub enum DecodeError {
    /// The file has no bytes.
    #[error("Empty file: nothing to decode")]
    Empty,
    /// The file's signature says it is something else than what was asked
    /// for (`--as`, or a status block given to `rasctl record`).
    #[error("Not a {expected}: the file starts with the signature of a {found}")]
    WrongKind {
        /// What was asked for.
        expected: Kind,
        /// What the signature says.
        found: Kind,
    },
    /// `rasctl record` was given a status block with no entries (block
    /// status 0): a record of it would have no section, and a severity no
    /// entry gives.
    #[error("Empty Generic Error Status Block (block status 0): no error to wrap in a record")]
    NothingToWrap,
    /// `ras_tools::hest_decode::parse` refused the table.
    #[error("HEST refused: {0}")]
    Hest(#[from] HestParseError),
    /// `Record::decode` refused the record.
    #[error("CPER record refused: {0}")]
    Record(CperError),
    /// `StatusBlock::decode` refused the block (entry count, data length,
    /// raw data offset or length, severity, ... inconsistent with the
    /// entries, ACPI 6.5 §18.3.2.7.1).
    #[error("Generic Error Status Block refused: {0}")]
    StatusBlock(CperError),
}

/// A generic error source entry (GHES or GHESv2), in plain fields.
#[derive(Serialize)]
struct HestEntryView {
    offset: usize,
    #[serde(rename = "type")]
    kind: u16,
    source_id: u16,
    related_source_id: u16,
    enabled: u8,
    notification_type: u8,
    poll_interval_ms: u32,
    error_status_address: u64,
    read_ack_register: Option<u64>,
    read_ack_preserve: Option<u64>,
    read_ack_write: Option<u64>,
    error_status_block_length: u32,
    records_to_preallocate: u32,
    max_sections_per_record: u32,
}

/// An entry that is not a generic error source.
#[derive(Serialize)]
struct OtherEntryView {
    offset: usize,
    #[serde(rename = "type")]
    kind: u16,
    source_id: u16,
    length: usize,
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
    other_entries: Vec<OtherEntryView>,
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct BlockView<'a> {
    kind: &'static str,
    block_status: u32,
    /// The header's error severity field (offset 16), by name.
    error_severity: &'static str,
    block: &'a StatusBlock,
}

#[derive(Serialize)]
struct RecordView<'a> {
    kind: &'static str,
    /// The header's error severity field (offset 12), by name.
    error_severity: &'static str,
    record: &'a Record,
}

fn hest_view(p: &ParsedHest) -> HestView {
    let mut entries = Vec::new();
    let mut other_entries = Vec::new();
    for e in &p.all {
        if let Some(g) = e.entry.generic() {
            entries.push(HestEntryView {
                offset: e.offset,
                kind: g.kind,
                source_id: g.source_id,
                related_source_id: g.related_source_id,
                enabled: g.enabled,
                notification_type: g.notification.kind,
                poll_interval_ms: g.notification.poll_interval.get(),
                error_status_address: g.error_status_address.address.get(),
                read_ack_register: g.read_ack.map(|(r, _, _)| r.address.get()),
                read_ack_preserve: g.read_ack.map(|(_, p, _)| p),
                read_ack_write: g.read_ack.map(|(_, _, w)| w),
                error_status_block_length: g.error_status_block_length,
                records_to_preallocate: g.records_to_preallocate,
                max_sections_per_record: g.max_sections_per_record,
            });
        } else if let HestEntry::Other {
            kind,
            source_id,
            len,
        } = &e.entry
        {
            other_entries.push(OtherEntryView {
                offset: e.offset,
                kind: *kind,
                source_id: *source_id,
                length: *len,
            });
        }
    }
    HestView {
        kind: "hest",
        length: p.header.length.get(),
        revision: p.header.revision,
        oem_id: String::from_utf8_lossy(&p.header.oem_id).into_owned(),
        oem_table_id: String::from_utf8_lossy(&p.header.oem_table_id).into_owned(),
        error_source_count: p.error_source_count,
        entries,
        other_entries,
        warnings: p.warnings.iter().map(ToString::to_string).collect(),
    }
}

/// Notification type names (ACPI 6.5 §18.3.2.9).
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
        let _ = write!(
            s,
            "  {} source {}{}: notify {} ({}){}, status address reg {:#x}",
            if e.kind == hest::GHES_V2_TYPE {
                "GHESv2"
            } else {
                "GHES"
            },
            e.source_id,
            if e.enabled == 0 { " (disabled)" } else { "" },
            notification_name(e.notification_type),
            e.notification_type,
            if e.notification_type == 0 {
                format!(" every {} ms", e.poll_interval_ms)
            } else {
                String::new()
            },
            e.error_status_address,
        );
        if let (Some(reg), Some(preserve), Some(write)) =
            (e.read_ack_register, e.read_ack_preserve, e.read_ack_write)
        {
            let _ = write!(
                s,
                ", read-ack reg {reg:#x} (preserve {preserve:#x}, write {write:#x})"
            );
        }
        let _ = writeln!(s, ", block {} bytes", e.error_status_block_length);
    }
    for o in &v.other_entries {
        let _ = writeln!(
            s,
            "  type {} source {}: {} bytes at offset {}",
            o.kind, o.source_id, o.length, o.offset
        );
    }
    for w in &v.warnings {
        let _ = writeln!(s, "  warning: {w}");
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

/// The little-endian u32 at `off` (the caller's decoder has checked that
/// the header is there).
fn le_u32(bytes: &[u8], off: usize) -> u32 {
    bytes
        .get(off..off + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// The name of a header's severity field; the decoders refuse values above
/// 3, so "invalid" is never printed for decoded input.
fn severity_name(raw: u32) -> &'static str {
    Severity::from_u32(raw).map_or("invalid", Severity::name)
}

/// Block Status of a Generic Error Status Block header (ACPI 6.5
/// §18.3.2.7.1, offset 0).
const BLOCK_STATUS_OFFSET: usize = 0;
/// Error Severity of a Generic Error Status Block header (ACPI 6.5
/// §18.3.2.7.1, offset 16).
const BLOCK_SEVERITY_OFFSET: usize = 16;
/// Error Severity of a CPER record header (UEFI 2.10 N.2.1, offset 12).
const RECORD_SEVERITY_OFFSET: usize = 12;

fn block_text(b: &StatusBlock, status: u32, header_severity: u32) -> String {
    let mut s = String::new();
    if b.entries.is_empty() {
        let _ = writeln!(
            s,
            "Generic Error Status Block: status {:#x} (empty: no error to report), \
             header severity {} ({header_severity}), 0 entries",
            status,
            severity_name(header_severity),
        );
    } else {
        let _ = writeln!(
            s,
            "Generic Error Status Block: status {:#x}, severity {}, {} entr{}",
            status,
            severity_name(header_severity),
            b.entries.len(),
            if b.entries.len() == 1 { "y" } else { "ies" }
        );
    }
    for (i, e) in b.entries.iter().enumerate() {
        entry_text(&mut s, i, e);
    }
    if !b.raw_data.is_empty() {
        let _ = writeln!(s, "  raw data: {} bytes", b.raw_data.len());
    }
    s
}

fn record_text(r: &Record, header_severity: u32) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "CPER record {}: notification {}, creator {}, severity {}{}, {} section(s)",
        r.record_id,
        r.notification_type,
        r.creator_id,
        severity_name(header_severity),
        if r.sections.is_empty() {
            format!(" ({header_severity}, header field: no section)")
        } else {
            String::new()
        },
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

/// Decodes `path` (as `kind`, or as its signature says) and renders it.
pub fn decode_file(path: &Path, as_json: bool, kind: Option<Kind>) -> Result<String, CliError> {
    let bytes = read(path)?;
    decode_bytes(&bytes, as_json, kind).map_err(|reason| CliError::Decode {
        path: path.to_owned(),
        reason,
    })
}

/// Checks that `bytes` are of `expected` kind, as far as a signature tells.
pub fn expect_kind(bytes: &[u8], expected: Kind) -> Result<(), DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let found = Kind::detect(bytes);
    // A status block has no signature: only a HEST or CPER signature can
    // contradict the request.
    if found != expected && found != Kind::StatusBlock {
        return Err(DecodeError::WrongKind { expected, found });
    }
    Ok(())
}

/// Decodes `bytes` and renders it; the error says why the input was refused.
pub fn decode_bytes(
    bytes: &[u8],
    as_json: bool,
    kind: Option<Kind>,
) -> Result<String, DecodeError> {
    let kind = match kind {
        Some(k) => {
            expect_kind(bytes, k)?;
            k
        }
        None if bytes.is_empty() => return Err(DecodeError::Empty),
        None => Kind::detect(bytes),
    };
    match kind {
        Kind::Hest => {
            let parsed = hest_decode::parse(bytes)?;
            let v = hest_view(&parsed);
            Ok(if as_json { json(&v) } else { hest_text(&v) })
        }
        Kind::Record => {
            let r = Record::decode(bytes).map_err(DecodeError::Record)?;
            let sev = le_u32(bytes, RECORD_SEVERITY_OFFSET);
            Ok(if as_json {
                json(&RecordView {
                    kind: "record",
                    error_severity: severity_name(sev),
                    record: &r,
                })
            } else {
                record_text(&r, sev)
            })
        }
        Kind::StatusBlock => {
            let b = StatusBlock::decode(bytes).map_err(DecodeError::StatusBlock)?;
            let status = le_u32(bytes, BLOCK_STATUS_OFFSET);
            let sev = le_u32(bytes, BLOCK_SEVERITY_OFFSET);
            Ok(if as_json {
                json(&BlockView {
                    kind: "status-block",
                    block_status: status,
                    error_severity: severity_name(sev),
                    block: &b,
                })
            } else {
                block_text(&b, status, sev)
            })
        }
    }
}
