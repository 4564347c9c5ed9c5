// SPDX-License-Identifier: Apache-2.0
//! Produces the bytes `rasctl` writes, through the engine's own builders.

use std::fs;
use std::path::Path;

use ras::config::RasConfig;
use ras::cper::{
    ArmProcessorSection, DataEntry, EntryFlags, Guid, MemoryErrorSection, RawSection, Section,
    Severity, StatusBlock, Timestamp,
};
use ras::engine::RasEngine;
use ras::error_source::SourceNotifications;
use ras::granule::GpaGranule;
use ras::hest::Notification;
use ras::inject::InjectArmError;
use ras_tools::cper_record::{Record, notification};
use vm_memory::GuestAddress;

use crate::decode::{DecodeError, Kind, expect_kind};
use crate::{CliError, SyncNotification};

/// Writes `bytes` to `path`.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    fs::write(path, bytes).map_err(|source| CliError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads `path`.
pub fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    fs::read(path).map_err(|source| CliError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Encodes `block` and writes it.
pub fn write_block(path: &Path, block: &StatusBlock) -> Result<(), CliError> {
    let bytes = block
        .try_encode()
        .map_err(|e| CliError::Engine(e.to_string()))?;
    write(path, &bytes)
}

/// The HEST the engine gives a guest with `vcpus` vCPUs, configured by
/// `ras` (the API's JSON form of the configuration; empty: defaults), with
/// its error region at `base`.
pub fn hest(ras: &str, vcpus: u32, base: u64, sync: SyncNotification) -> Result<Vec<u8>, CliError> {
    let config = if ras.is_empty() {
        RasConfig::default()
    } else {
        serde_json::from_str::<RasConfig>(ras)
            .map_err(|e| CliError::Engine(format!("--ras: {e}")))?
    };
    let engine = RasEngine::new(config, GuestAddress(base), vcpus)
        .map_err(|e| CliError::Engine(e.to_string()))?;
    let mut notifications = engine.notifications();
    notifications.sync = match sync {
        SyncNotification::Sea => notifications.sync,
        SyncNotification::Polled => Notification::Polled {
            interval_ms: config.poll_interval_ms,
        },
        SyncNotification::Nmi => SourceNotifications::x86_nmi().sync,
    };
    engine
        .layout()
        .hest(notifications)
        .map_err(|e| CliError::Engine(e.to_string()))
}

fn entry(section: Section, severity: Severity, time: Option<u64>) -> DataEntry {
    let entry = DataEntry::new(section, severity).with_flags(EntryFlags::PRIMARY);
    match time {
        Some(t) => entry.with_timestamp(Timestamp::from_unix(t)),
        None => entry,
    }
}

/// A status block with one Platform Memory Error entry for the granule of
/// size `1 << shift` holding `gpa`.
pub fn memory(
    gpa: u64,
    shift: u8,
    severity: Severity,
    threshold_exceeded: bool,
    time: Option<u64>,
) -> Result<StatusBlock, CliError> {
    let granule = GpaGranule::containing(GuestAddress(gpa), shift)
        .ok_or_else(|| CliError::Engine(format!("Granule shift {shift} out of range")))?;
    let mut e = entry(
        Section::Memory(MemoryErrorSection::for_granule(&granule)),
        severity,
        time,
    );
    if threshold_exceeded {
        e.flags |= EntryFlags::THRESHOLD_EXCEEDED;
    }
    Ok(StatusBlock::new().with_entry(e))
}

/// A status block with one ARM Processor Error entry.
pub fn arm(
    mpidr: u64,
    midr: u64,
    error_type: InjectArmError,
    va: Option<u64>,
    pa: Option<u64>,
    severity: Severity,
    time: Option<u64>,
) -> StatusBlock {
    let section = ArmProcessorSection::single_error(mpidr, midr, error_type.into(), va, pa);
    StatusBlock::new().with_entry(entry(Section::ArmProcessor(section), severity, time))
}

/// A status block with one raw section.
pub fn raw(guid: Guid, data: Vec<u8>, severity: Severity, time: Option<u64>) -> StatusBlock {
    StatusBlock::new().with_entry(entry(
        Section::Raw(RawSection::new(guid, data)),
        severity,
        time,
    ))
}

/// Wraps the status block in `input` as a CPER record.
pub fn record(input: &Path, record_id: u64) -> Result<Vec<u8>, CliError> {
    let bytes = read(input)?;
    let refused = |reason| CliError::Decode {
        path: input.to_owned(),
        reason,
    };
    expect_kind(&bytes, Kind::StatusBlock).map_err(refused)?;
    let block = StatusBlock::decode(&bytes).map_err(|e| refused(DecodeError::StatusBlock(e)))?;
    if block.entries.is_empty() {
        return Err(refused(DecodeError::NothingToWrap));
    }
    Record::from_status_block(&block, notification::SEA, record_id)
        .try_encode()
        .map_err(|e| CliError::Engine(e.to_string()))
}
