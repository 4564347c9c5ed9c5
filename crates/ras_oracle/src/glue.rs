// SPDX-License-Identifier: Apache-2.0
//! The engine under test, used as a VMM uses it: the HEST from
//! `ras::error_source::RegionLayout::hest` (ras::hest), records from
//! `ras::cper`, written and acknowledged through the engine's own
//! `ras::error_source::ErrorSources` runtime over a `vm-memory` mapping of
//! the guest's RAM file.

use std::fs::File;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use ras::cper::{
    DataEntry, EntryFlags, MemoryErrorSection, Section, Severity, StatusBlock, Timestamp,
};
use ras::error_source::{
    DEFAULT_BLOCK_LEN, DEFAULT_QUEUE_DEPTH, Delivery, ErrorSourceError, ErrorSources, RegionLayout,
    SourceId, SourceNotifications,
};
use ras::granule::GpaGranule;
use ras::hest::{HestError, Notification};
use thiserror::Error;
use vm_memory::{Address, Bytes, FileOffset, GuestAddress, GuestMemoryMmap};

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
    /// One data entry built as the engine's injection path builds it
    /// (`ras::inject`: `DataEntry::new(section, severity).with_flags(flags)`)
    /// and time-stamped as its policy does (`ras::policy`:
    /// `with_timestamp(Timestamp::from_unix(unix_time))`, one entry per
    /// block).
    pub fn entry(
        desc: impl Into<String>,
        section: Section,
        severity: Severity,
        flags: EntryFlags,
    ) -> Self {
        let unix_time = unix_now();
        Record {
            desc: desc.into(),
            block: StatusBlock::new().with_entry(
                DataEntry::new(section, severity)
                    .with_flags(flags)
                    .with_timestamp(Timestamp::from_unix(unix_time)),
            ),
            unix_time,
        }
    }

    /// A memory error for `granule`: the policy's own record
    /// (`StatusBlock::memory_error`), or with `threshold_exceeded` the
    /// injection path's (primary + threshold-exceeded flags).
    pub fn memory(granule: GpaGranule, severity: Severity, threshold_exceeded: bool) -> Self {
        let desc = format!(
            "memory {severity:?}{} base={:#x} len={:#x} mask={:#x}",
            if threshold_exceeded {
                " threshold-exceeded"
            } else {
                ""
            },
            granule.base().raw_value(),
            granule.len(),
            granule.pa_mask()
        );
        if threshold_exceeded {
            Self::entry(
                desc,
                Section::Memory(MemoryErrorSection::for_granule(&granule)),
                severity,
                EntryFlags::PRIMARY | EntryFlags::THRESHOLD_EXCEEDED,
            )
        } else {
            let unix_time = unix_now();
            Record {
                desc,
                block: StatusBlock::memory_error(&granule, severity, unix_time),
                unix_time,
            }
        }
    }

    /// A recoverable 4 KiB memory error at `pa`.
    pub fn page(pa: u64) -> Option<Self> {
        Some(Self::memory(
            GpaGranule::containing(GuestAddress(pa), 12)?,
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

/// What the oracle counted for one source. The engine keeps no counters:
/// these come from what its API returns (`submit`'s [`Delivery`], the
/// sources `service` wrote) and from the source's ack register, read from
/// guest memory by the oracle itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Records the engine wrote into the block (`Written`,
    /// `WroteOlderQueued`, or returned by `service`).
    pub written: u64,
    /// Records the engine queued (`Queued`, `WroteOlderQueued`).
    pub queued: u64,
    /// Records the engine dropped (`Dropped`).
    pub dropped: u64,
    /// Written records the guest acknowledged: the ack register read
    /// non-zero while a written record was outstanding (see
    /// [`Tally::acked_at_write`] for the one case the oracle's own read
    /// cannot see).
    pub acked: u64,
    /// Of `acked`: the engine wrote a new record while the previous one was
    /// outstanding as far as the oracle's last read of the ack register
    /// went. The engine writes only after reading the register non-zero, so
    /// the guest acknowledged between the two reads; counted as an ack (as
    /// the engine's own counter used to), shown separately.
    pub acked_at_write: u64,
    /// Whether a written record is outstanding (not yet seen acknowledged).
    outstanding: bool,
}

/// The engine pieces a VMM would hold.
pub struct Engine {
    /// Guest RAM, the same file QEMU maps (shared).
    pub mem: GuestMemoryMmap,
    sources: ErrorSources,
    notifications: SourceNotifications,
    tallies: Vec<Tally>,
    tampered: u64,
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
        Self::with_memory(mem)
    }

    /// The engine over `mem`, which must hold the window.
    pub fn with_memory(mem: GuestMemoryMmap) -> Result<Self, GlueError> {
        let layout = RegionLayout::new(GuestAddress(WINDOW_BASE), NUM_SYNC, DEFAULT_BLOCK_LEN)?;
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
            tallies: vec![Tally::default(); layout.num_sources()],
            tampered: 0,
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
        self.sources.init(&self.mem)?;
        for t in &mut self.tallies {
            t.outstanding = false;
        }
        Ok(())
    }

    fn tally_mut(&mut self, s: SourceId) -> Result<&mut Tally, GlueError> {
        self.tallies
            .get_mut(usize::from(s.0))
            .ok_or(GlueError::Source(ErrorSourceError::UnknownSource(s)))
    }

    /// The value of `s`'s ack register, read from guest memory by the
    /// oracle (not through the engine).
    pub fn ack_value(&self, s: SourceId) -> Result<u64, GlueError> {
        let addr = self.layout().ack_register(s)?;
        let v: u64 = self
            .mem
            .load(addr, Ordering::Acquire)
            .map_err(|e| GlueError::Read {
                addr: addr.raw_value(),
                msg: e.to_string(),
            })?;
        Ok(u64::from_le(v))
    }

    /// Reads every ack register; counts the ack of each outstanding record.
    fn observe_acks(&mut self) -> Result<(), GlueError> {
        for s in self.all_sources() {
            let v = self.ack_value(s)?;
            let t = self.tally_mut(s)?;
            if v != 0 && t.outstanding {
                t.outstanding = false;
                t.acked += 1;
            }
        }
        Ok(())
    }

    /// The engine wrote a record into `s`'s block.
    fn wrote(&mut self, s: SourceId) -> Result<(), GlueError> {
        let t = self.tally_mut(s)?;
        if t.outstanding {
            t.acked += 1;
            t.acked_at_write += 1;
        }
        t.outstanding = true;
        t.written += 1;
        Ok(())
    }

    /// Submits a record to a source.
    pub fn submit(&mut self, s: SourceId, rec: &Record) -> Result<Delivery, GlueError> {
        self.observe_acks()?;
        let res = self.sources.submit(&self.mem, s, &rec.block);
        self.tampered += self.sources.take_tampered();
        let d = res?;
        match d {
            Delivery::Written => self.wrote(s)?,
            Delivery::WroteOlderQueued { .. } => {
                self.wrote(s)?;
                self.tally_mut(s)?.queued += 1;
            }
            Delivery::Queued { .. } => self.tally_mut(s)?.queued += 1,
            Delivery::Dropped => self.tally_mut(s)?.dropped += 1,
        }
        Ok(d)
    }

    /// Services all sources; returns those written.
    pub fn service(&mut self) -> Result<Vec<SourceId>, GlueError> {
        self.observe_acks()?;
        let res = self.sources.service(&self.mem);
        self.tampered += self.sources.take_tampered();
        let written = res?;
        for s in &written {
            self.wrote(*s)?;
        }
        Ok(written)
    }

    /// What the oracle counted for `s` so far.
    pub fn tally(&self, s: SourceId) -> Result<Tally, GlueError> {
        self.tallies
            .get(usize::from(s.0))
            .copied()
            .ok_or(GlueError::Source(ErrorSourceError::UnknownSource(s)))
    }

    /// Tallies summed over all sources.
    pub fn totals(&self) -> Tally {
        let mut sum = Tally::default();
        for t in &self.tallies {
            sum.written += t.written;
            sum.queued += t.queued;
            sum.dropped += t.dropped;
            sum.acked += t.acked;
            sum.acked_at_write += t.acked_at_write;
        }
        sum
    }

    /// Tampered ESA registers the engine reported (`take_tampered`) since
    /// the start, all sources.
    pub fn tampered(&self) -> u64 {
        self.tampered
    }

    /// Records waiting in the engine's queue of `s`.
    pub fn queue_len(&self, s: SourceId) -> Result<usize, GlueError> {
        Ok(self.sources.queue_len(s)?)
    }

    /// Whether the source is free (ack register non-zero, read by the
    /// oracle, and the engine agrees) with an empty queue. Counts the ack of
    /// an outstanding record.
    pub fn idle(&mut self, s: SourceId) -> Result<bool, GlueError> {
        self.observe_acks()?;
        let free = self.ack_value(s)? != 0;
        Ok(free && self.sources.is_free(&self.mem, s)? && self.sources.queue_len(s)? == 0)
    }

    /// Reads `len` bytes of guest memory.
    pub fn read(&self, addr: GuestAddress, len: usize) -> Result<Vec<u8>, GlueError> {
        let mut v = vec![0u8; len];
        self.mem
            .read_slice(&mut v, addr)
            .map_err(|e| GlueError::Read {
                addr: addr.raw_value(),
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
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    use super::{Delivery, Engine, Record, SourceId, Tally, WINDOW_BASE, WINDOW_LEN, utc_string};

    fn engine() -> Engine {
        let mem =
            GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(WINDOW_BASE), WINDOW_LEN as usize)])
                .unwrap();
        let mut eng = Engine::with_memory(mem).unwrap();
        eng.init().unwrap();
        eng
    }

    /// The guest's side of the protocol: set the ack register.
    fn guest_ack(eng: &Engine, s: SourceId) {
        let ack = eng.layout().ack_register(s).unwrap();
        eng.mem.write_obj(1u64.to_le(), ack).unwrap();
    }

    fn counts(t: Tally) -> [u64; 5] {
        [t.written, t.queued, t.dropped, t.acked, t.acked_at_write]
    }

    #[test]
    fn tally_follows_deliveries_and_the_ack_register() {
        let mut eng = engine();
        let s = eng.nmi();
        let rec = Record::page(0x1000).unwrap();
        assert_eq!(eng.submit(s, &rec).unwrap(), Delivery::Written);
        assert_eq!(eng.submit(s, &rec).unwrap(), Delivery::Queued { depth: 1 });
        // No ack from the guest: nothing is counted as acknowledged.
        assert!(eng.service().unwrap().is_empty());
        assert!(!eng.idle(s).unwrap());
        assert_eq!(counts(eng.tally(s).unwrap()), [1, 1, 0, 0, 0]);
        guest_ack(&eng, s);
        assert_eq!(eng.service().unwrap(), vec![s]);
        assert_eq!(counts(eng.tally(s).unwrap()), [2, 1, 0, 1, 0]);
        assert!(!eng.idle(s).unwrap());
        guest_ack(&eng, s);
        assert!(eng.idle(s).unwrap());
        // Seen once, counted once.
        assert!(eng.idle(s).unwrap());
        assert_eq!(counts(eng.tally(s).unwrap()), [2, 1, 0, 2, 0]);
        assert_eq!(counts(eng.tally(eng.polled()).unwrap()), [0; 5]);
        assert_eq!(eng.totals().written, 2);
        assert_eq!(eng.tampered(), 0);
    }

    #[test]
    fn tampered_esa_is_accumulated() {
        let mut eng = engine();
        let s = eng.polled();
        let esa = eng.layout().esa_register(s).unwrap();
        eng.mem.write_obj(0xdead_b000u64.to_le(), esa).unwrap();
        eng.service().unwrap();
        assert_eq!(eng.tampered(), 1);
        eng.service().unwrap();
        assert_eq!(eng.tampered(), 1);
    }

    #[test]
    fn utc() {
        assert_eq!(utc_string(0), "1970-01-01 00:00:00");
        assert_eq!(utc_string(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc_string(1_795_545_806), "2026-11-24 18:43:26");
    }
}
