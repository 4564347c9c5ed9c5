// SPDX-License-Identifier: Apache-2.0
//! The engine under test, used as a VMM uses it: the HEST from
//! `ras::error_source::RegionLayout::hest_builder` (ras::hest), records from
//! `ras::cper`, written and acknowledged through the engine's own
//! `ras::error_source::ErrorSources` runtime over a `vm-memory` mapping of
//! the guest's RAM file.

use std::fs::File;
use std::time::{SystemTime, UNIX_EPOCH};

use ras::cper::{Severity, StatusBlock};
use ras::error_source::{
    Counters, DEFAULT_QUEUE_DEPTH, Delivery, ErrorSourceError, ErrorSources, RegionLayout,
    SourceId, SourceNotifications,
};
use ras::hest::{HestError, Notification};
use ras::policy::{CperRecord, RecordBody};
use ras::report::GpaGranule;
use thiserror::Error;
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryMmap};

use crate::guest::RAM_SIZE;

/// The guest-physical window reserved with `memmap=64K$0x1f000000`.
pub const WINDOW_BASE: u64 = 0x1f00_0000;
/// Its length.
pub const WINDOW_LEN: u64 = 0x1_0000;
/// Number of per-vCPU ("synchronous") sources: NMI-notified on x86.
pub const NUM_SYNC: u32 = 2;
/// Poll interval of the POLLED (asynchronous) source, ms.
pub const POLL_MS: u32 = 1000;

/// Errors of the glue.
#[derive(Debug, Error)]
pub enum GlueError {
    /// The engine's error-source runtime.
    #[error("engine error source: {0}")]
    Source(#[from] ErrorSourceError),
    /// The engine's HEST builder.
    #[error("engine HEST: {0}")]
    Hest(#[from] HestError),
    /// vm-memory mapping of the RAM file.
    #[error("mapping guest RAM: {0}")]
    Map(String),
    /// A record could not be built.
    #[error("record: {0}")]
    Record(String),
    /// Reading guest memory.
    #[error("reading guest memory at {addr:#x}: {msg}")]
    Read {
        /// Address.
        addr: u64,
        /// Error text.
        msg: String,
    },
}

/// A record built by the engine's CPER code, with a description.
#[derive(Clone, Debug)]
pub struct Record {
    /// Human-readable shape.
    pub desc: String,
    /// The engine's status block.
    pub block: StatusBlock,
    /// The time stamp given to the engine (seconds since the Unix epoch).
    pub unix_time: u64,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Record {
    /// A record as the engine's policy emits it (`CperRecord::to_status_block`).
    pub fn policy(desc: impl Into<String>, severity: Severity, body: RecordBody) -> Self {
        let unix_time = unix_now();
        let rec = CperRecord {
            severity,
            unix_time,
            body,
        };
        Record {
            desc: desc.into(),
            block: rec.to_status_block(),
            unix_time,
        }
    }

    /// A memory error for `granule` through the policy's record path.
    pub fn memory(granule: GpaGranule, severity: Severity, threshold_exceeded: bool) -> Self {
        Self::policy(
            format!(
                "memory {severity:?}{} base={:#x} len={:#x} mask={:#x}",
                if threshold_exceeded {
                    " threshold-exceeded"
                } else {
                    ""
                },
                granule.base(),
                granule.len(),
                granule.pa_mask()
            ),
            severity,
            RecordBody::Memory {
                granule,
                threshold_exceeded,
            },
        )
    }

    /// A recoverable 4 KiB memory error at `pa`.
    pub fn page(pa: u64) -> Option<Self> {
        Some(Self::memory(
            GpaGranule::containing(pa, 12)?,
            Severity::Recoverable,
            false,
        ))
    }

    /// A block built directly with the engine's CPER builder.
    pub fn block(desc: impl Into<String>, block: StatusBlock) -> Self {
        Record {
            desc: desc.into(),
            block,
            unix_time: unix_now(),
        }
    }

    /// Short description.
    pub fn describe(&self) -> String {
        format!("[{}] ({} bytes)", self.desc, self.block.encoded_len())
    }
}

/// The engine pieces a VMM would hold.
pub struct Engine {
    /// Guest RAM, the same file QEMU maps (shared).
    pub mem: GuestMemoryMmap,
    /// The engine's error-source runtime.
    pub sources: ErrorSources,
    notifications: SourceNotifications,
}

impl Engine {
    /// Maps the RAM file and lays the sources out in the window.
    pub fn new(ram: File) -> Result<Self, GlueError> {
        let mem = GuestMemoryMmap::<()>::from_ranges_with_files([(
            GuestAddress(0),
            RAM_SIZE,
            Some(FileOffset::new(ram, 0)),
        )])
        .map_err(|e| GlueError::Map(e.to_string()))?;
        let layout = RegionLayout::with_default_block(WINDOW_BASE, NUM_SYNC)?;
        let notifications = SourceNotifications {
            sync: Notification::Nmi,
            asynchronous: Notification::Polled {
                interval_ms: POLL_MS,
            },
        };
        Ok(Self {
            mem,
            sources: ErrorSources::new(layout, DEFAULT_QUEUE_DEPTH),
            notifications,
        })
    }

    /// The HEST bytes (engine's builder).
    pub fn hest(&self) -> Result<Vec<u8>, GlueError> {
        Ok(self.sources.layout().hest(self.notifications)?)
    }

    /// The layout.
    pub fn layout(&self) -> RegionLayout {
        *self.sources.layout()
    }

    /// All sources.
    pub fn all_sources(&self) -> Vec<SourceId> {
        self.layout().sources().collect()
    }

    /// The POLLED source.
    pub fn polled(&self) -> SourceId {
        self.layout().async_source()
    }

    /// The first NMI source.
    pub fn nmi(&self) -> SourceId {
        SourceId(0)
    }

    /// Whether `s` is notified by NMI.
    pub fn is_nmi(&self, s: SourceId) -> bool {
        s != self.polled()
    }

    /// Initializes the region.
    pub fn init(&mut self) -> Result<(), GlueError> {
        Ok(self.sources.init(&self.mem)?)
    }

    /// Submits a record to a source.
    pub fn submit(&mut self, s: SourceId, rec: &Record) -> Result<Delivery, GlueError> {
        Ok(self.sources.submit(&self.mem, s, &rec.block)?)
    }

    /// Services all sources; returns those written.
    pub fn service(&mut self) -> Result<Vec<SourceId>, GlueError> {
        Ok(self
            .sources
            .service(&self.mem)?
            .into_iter()
            .map(|(s, _)| s)
            .collect())
    }

    /// Counters of a source.
    pub fn counters(&self, s: SourceId) -> Result<Counters, GlueError> {
        Ok(self.sources.counters(s)?)
    }

    /// Whether the source is free (ack register non-zero) with an empty queue.
    pub fn idle(&self, s: SourceId) -> Result<bool, GlueError> {
        Ok(self.sources.is_free(&self.mem, s)? && self.sources.queue_len(s)? == 0)
    }

    /// Reads `len` bytes of guest memory.
    pub fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, GlueError> {
        let mut v = vec![0u8; len];
        self.mem
            .read_slice(&mut v, GuestAddress(addr))
            .map_err(|e| GlueError::Read {
                addr,
                msg: e.to_string(),
            })?;
        Ok(v)
    }
}

/// `YYYY-MM-DD hh:mm:ss` (UTC) of a Unix time, as Linux prints a CPER
/// timestamp (`precise tstamp: ...`).
pub fn utc_string(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc_string;

    #[test]
    fn utc() {
        assert_eq!(utc_string(0), "1970-01-01 00:00:00");
        assert_eq!(utc_string(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc_string(1_795_545_806), "2026-11-24 18:43:26");
    }
}
