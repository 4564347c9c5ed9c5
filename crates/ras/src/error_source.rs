// SPDX-License-Identifier: Apache-2.0
//! GHESv2 error sources at run time: the guest-physical region that holds
//! each source's registers and error status block ([`RegionLayout`]), and the
//! producer side of the GHESv2 read-ack protocol ([`ErrorSources`]),
//! ACPI 6.5 §18.3.2.8 (GHESv2) and §18.3.2.7.1 (Generic Error Status Block).
//!
//! # Sources
//! `num_sync` synchronous sources, one per vCPU (source id = vCPU index,
//! notified by SEA on arm64), then one asynchronous source (source id =
//! `num_sync`, notified through the GED / PNP0C33 device (GPIO-signal), or
//! POLLED; NMI for the x86 oracle).
//!
//! # Region layout
//! ```text
//! base + 16 * i       Error Status Address register of source i (u64, holds block(i))
//! base + 16 * i + 8   read-ack register of source i (u64, non-zero = free)
//! base + B + L * i    error status block of source i (L = block length)
//! ```
//! where `B` is `16 * sources` rounded up to 64. The total is rounded up to
//! 4 KiB. With the default 1024-byte blocks a vCPU costs 1040 bytes; e.g. 4
//! vCPUs (5 sources) need 8 KiB.
//!
//! # Protocol (producer)
//! A source is free when its ack register reads non-zero (initially 1; the
//! guest sets bit 0 after consuming, with preserve `0xffff_fffe` and write 1,
//! see [`crate::hest`]). To write: ack := 0, block body, then `block_status`
//! last (release store). A busy source queues the record in a bounded FIFO;
//! when the queue is full the NEW record is dropped (tail drop): the caller
//! still holds it and knows exactly which one was lost (its poison registry
//! can report it again later), and the guest sees records in order. Nothing
//! here blocks, panics or exits.
//!
//! # Security
//! Every address is computed from the layout and kept here; no pointer is
//! ever read back from guest memory. The only guest-controlled value that
//! influences behaviour is the ack register (free or busy). The ESA
//! registers are read only to detect tampering: a changed one is re-written
//! and counted in [`Counters::tampered`].

use std::collections::VecDeque;
use std::mem::take;
use std::sync::atomic::Ordering;
use std::{fmt, result};

use thiserror::Error;
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryError};

use crate::cper::{CperError, StatusBlock};
use crate::hest::{
    GhesV2Source, HestBuilder, HestError, MAX_BLOCK_LEN, MIN_BLOCK_LEN, Notification,
};

/// Default error status block length in bytes.
pub const DEFAULT_BLOCK_LEN: u32 = 1024;
/// Default depth of each source's pending queue.
pub const DEFAULT_QUEUE_DEPTH: usize = 16;
/// Bytes of registers per source: the ESA register and the ack register.
pub const REGISTERS_LEN: u64 = 16;
/// Alignment of the first error status block.
pub const BLOCKS_ALIGN: u64 = 64;
/// Alignment of the region base and of its total size.
pub const REGION_ALIGN: u64 = 4096;
/// Largest number of synchronous sources (source ids are u16 and 0xFFFF
/// means "none", so the asynchronous source's id must stay below it).
pub const MAX_SYNC_SOURCES: u32 = 0xfffe;
/// Size of the Generic Error Status Block header (ACPI 6.5 Table 18.19).
const STATUS_HEADER_LEN: usize = 20;

/// An error source id, as in the HEST.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub u16);

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a source is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// The synchronous (SEA) source of a vCPU.
    Sync {
        /// vCPU index.
        vcpu: u32,
    },
    /// The asynchronous source.
    Async,
}

/// Errors of the error-source layout and runtime.
#[derive(Debug, Error)]
pub enum ErrorSourceError {
    /// The region base is zero or not 4 KiB aligned.
    #[error("Region base {0:#x} is zero or not 4 KiB aligned")]
    BadBase(u64),
    /// The block length is out of range or not a multiple of 8.
    #[error("Error status block length {0} must be a multiple of 8 in 20..=65536")]
    BadBlockLen(u32),
    /// Too many synchronous sources.
    #[error("Too many synchronous error sources: {0} (max 65534)")]
    TooManySources(u32),
    /// The region wraps around the address space.
    #[error("Region at {base:#x} of {len:#x} bytes overflows the address space")]
    Overflow {
        /// Base.
        base: u64,
        /// Length.
        len: u64,
    },
    /// The source id is not in the layout.
    #[error("Unknown error source {0}")]
    UnknownSource(SourceId),
    /// [`ErrorSources::init`] has not run.
    #[error("Error sources are not initialized")]
    NotInitialized,
    /// The region is not entirely in guest memory.
    #[error("Error source region {base:#x}+{len:#x} is not in guest memory")]
    RegionNotInMemory {
        /// Base.
        base: u64,
        /// Length.
        len: u64,
    },
    /// The encoded record does not fit the error status block.
    #[error("Record of {len} bytes does not fit the {block_len}-byte error status block")]
    RecordTooLarge {
        /// Encoded length.
        len: usize,
        /// Block length.
        block_len: u32,
    },
    /// The encoded record is shorter than a status block header.
    #[error("Record of {0} bytes is shorter than a Generic Error Status Block header")]
    RecordTooShort(usize),
    /// The record's block status is 0: the guest would see an empty block and
    /// never acknowledge it.
    #[error("Record has an empty block status")]
    EmptyBlockStatus,
    /// CPER encoding failed.
    #[error("Encoding the record failed: {0}")]
    Encode(#[from] CperError),
    /// A guest memory access failed.
    #[error("Guest memory access at {addr:#x} failed: {source}")]
    Memory {
        /// Guest-physical address.
        addr: u64,
        /// The vm-memory error.
        source: GuestMemoryError,
    },
    /// Building the HEST failed.
    #[error("Building the HEST failed: {0}")]
    Hest(#[from] HestError),
}

type Result<T> = result::Result<T, ErrorSourceError>;

/// How each kind of source notifies the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceNotifications {
    /// Notification of the per-vCPU synchronous sources.
    pub sync: Notification,
    /// Notification of the asynchronous source.
    pub asynchronous: Notification,
}

impl SourceNotifications {
    /// arm64 with a GED: SEA + GPIO-signal.
    pub fn arm64_gpio() -> Self {
        Self {
            sync: Notification::Sea,
            asynchronous: Notification::Gpio,
        }
    }

    /// arm64 without a GED: SEA + POLLED.
    pub fn arm64_polled(interval_ms: u32) -> Self {
        Self {
            sync: Notification::Sea,
            asynchronous: Notification::Polled { interval_ms },
        }
    }

    /// All sources POLLED (guests or tests without interrupts).
    pub fn polled(interval_ms: u32) -> Self {
        Self {
            sync: Notification::Polled { interval_ms },
            asynchronous: Notification::Polled { interval_ms },
        }
    }

    /// x86 oracle: all sources NMI (x86 Linux rejects SEA).
    pub fn x86_nmi() -> Self {
        Self {
            sync: Notification::Nmi,
            asynchronous: Notification::Nmi,
        }
    }
}

/// Where the error sources live in guest-physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionLayout {
    base: u64,
    num_sync: u32,
    block_len: u32,
}

const fn align_up(v: u64, align: u64) -> u64 {
    v.div_ceil(align) * align
}

impl RegionLayout {
    /// A layout at `base` (non-zero, 4 KiB aligned) with `num_sync`
    /// synchronous sources plus the asynchronous one, each with a
    /// `block_len`-byte error status block (multiple of 8, 20..=65536).
    pub fn new(base: u64, num_sync: u32, block_len: u32) -> Result<Self> {
        if base == 0 || !base.is_multiple_of(REGION_ALIGN) {
            return Err(ErrorSourceError::BadBase(base));
        }
        if !(MIN_BLOCK_LEN..=MAX_BLOCK_LEN).contains(&block_len) || !block_len.is_multiple_of(8) {
            return Err(ErrorSourceError::BadBlockLen(block_len));
        }
        if num_sync > MAX_SYNC_SOURCES {
            return Err(ErrorSourceError::TooManySources(num_sync));
        }
        let layout = Self {
            base,
            num_sync,
            block_len,
        };
        let len = layout.total_len();
        if base.checked_add(len).is_none() {
            return Err(ErrorSourceError::Overflow { base, len });
        }
        Ok(layout)
    }

    /// [`RegionLayout::new`] with [`DEFAULT_BLOCK_LEN`].
    pub fn with_default_block(base: u64, num_sync: u32) -> Result<Self> {
        Self::new(base, num_sync, DEFAULT_BLOCK_LEN)
    }

    /// Guest-physical base of the region.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Number of synchronous sources (vCPUs).
    pub fn num_sync(&self) -> u32 {
        self.num_sync
    }

    /// Number of sources: `num_sync + 1`.
    pub fn num_sources(&self) -> usize {
        self.num_sync as usize + 1
    }

    /// Error status block length.
    pub fn block_len(&self) -> u32 {
        self.block_len
    }

    /// All source ids, synchronous first.
    pub fn sources(&self) -> impl Iterator<Item = SourceId> + use<> {
        // num_sync <= 0xfffe, so every id fits.
        (0..=self.num_sync).map(|i| SourceId(i as u16))
    }

    /// The synchronous source of `vcpu`.
    pub fn sync_source(&self, vcpu: u32) -> Option<SourceId> {
        (vcpu < self.num_sync).then_some(SourceId(vcpu as u16))
    }

    /// The asynchronous source.
    pub fn async_source(&self) -> SourceId {
        SourceId(self.num_sync as u16)
    }

    /// What `source` is for.
    pub fn kind(&self, source: SourceId) -> Option<SourceKind> {
        let i = u32::from(source.0);
        if i < self.num_sync {
            Some(SourceKind::Sync { vcpu: i })
        } else if i == self.num_sync {
            Some(SourceKind::Async)
        } else {
            None
        }
    }

    fn index(&self, source: SourceId) -> Result<u64> {
        if u32::from(source.0) <= self.num_sync {
            Ok(u64::from(source.0))
        } else {
            Err(ErrorSourceError::UnknownSource(source))
        }
    }

    fn blocks_offset(&self) -> u64 {
        align_up(REGISTERS_LEN * self.num_sources() as u64, BLOCKS_ALIGN)
    }

    /// Address of the Error Status Address register of `source`.
    pub fn esa_register(&self, source: SourceId) -> Result<u64> {
        Ok(self.base + REGISTERS_LEN * self.index(source)?)
    }

    /// Address of the read-ack register of `source`.
    pub fn ack_register(&self, source: SourceId) -> Result<u64> {
        Ok(self.base + REGISTERS_LEN * self.index(source)? + 8)
    }

    /// Address of the error status block of `source`.
    pub fn block(&self, source: SourceId) -> Result<u64> {
        Ok(self.base + self.blocks_offset() + u64::from(self.block_len) * self.index(source)?)
    }

    /// Bytes of the region, a multiple of 4 KiB.
    pub fn total_len(&self) -> u64 {
        align_up(
            self.blocks_offset() + u64::from(self.block_len) * self.num_sources() as u64,
            REGION_ALIGN,
        )
    }

    /// Bytes each source needs (registers + block), before padding.
    pub fn len_per_source(&self) -> u64 {
        REGISTERS_LEN + u64::from(self.block_len)
    }

    /// The GHESv2 entry of `source`.
    pub fn ghes_v2_source(
        &self,
        source: SourceId,
        notifications: SourceNotifications,
    ) -> Result<GhesV2Source> {
        let notification = match self.kind(source) {
            Some(SourceKind::Sync { .. }) => notifications.sync,
            Some(SourceKind::Async) => notifications.asynchronous,
            None => return Err(ErrorSourceError::UnknownSource(source)),
        };
        Ok(GhesV2Source::new(
            source.0,
            notification,
            self.esa_register(source)?,
            self.ack_register(source)?,
            self.block_len,
        ))
    }

    /// A HEST builder with one GHESv2 entry per source (ids 0..=num_sync),
    /// to which the caller may still set the OEM identity.
    pub fn hest_builder(&self, notifications: SourceNotifications) -> HestBuilder {
        self.sources().fold(HestBuilder::new(), |b, s| {
            // Every id from sources() is in the layout.
            match self.ghes_v2_source(s, notifications) {
                Ok(entry) => b.add_ghes_v2(entry),
                Err(_) => b,
            }
        })
    }

    /// The HEST bytes for this layout.
    pub fn hest(&self, notifications: SourceNotifications) -> Result<Vec<u8>> {
        Ok(self.hest_builder(notifications).build()?)
    }
}

/// What happened to a submitted record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The record is in the source's block: notify the guest (or inject the
    /// SEA).
    Written,
    /// The source was free but older records were waiting: the oldest one
    /// was written (notify the guest) and this record was queued at
    /// position `depth` (1 = next).
    WroteOlderQueued {
        /// Queue position of this record.
        depth: usize,
    },
    /// The source is busy (the guest has not acknowledged the previous
    /// record): queued at position `depth` (1 = next).
    Queued {
        /// Queue position of this record.
        depth: usize,
    },
    /// The source is busy and its queue is full: this record was dropped.
    Dropped,
}

impl Delivery {
    /// Whether a record was written, so the guest must be notified.
    pub fn must_notify(&self) -> bool {
        matches!(self, Delivery::Written | Delivery::WroteOlderQueued { .. })
    }
}

/// Per-source (or total) event counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records written into a block.
    pub written: u64,
    /// Records queued because the source was busy.
    pub queued: u64,
    /// Records dropped because the queue was full.
    pub dropped: u64,
    /// Written records the guest acknowledged (seen by the engine).
    pub acked: u64,
    /// Times the ESA register was found changed and re-written.
    pub tampered: u64,
}

impl Counters {
    fn add(&mut self, o: &Counters) {
        self.written += o.written;
        self.queued += o.queued;
        self.dropped += o.dropped;
        self.acked += o.acked;
        self.tampered += o.tampered;
    }
}

#[derive(Debug, Default)]
struct SourceState {
    queue: VecDeque<Vec<u8>>,
    in_flight: bool,
    counters: Counters,
}

/// The GHESv2 producer over a [`RegionLayout`], for any
/// [`vm_memory::GuestMemory`].
#[derive(Debug)]
pub struct ErrorSources {
    layout: RegionLayout,
    queue_depth: usize,
    initialized: bool,
    states: Vec<SourceState>,
    scratch: Vec<u8>,
}

fn mem_err(addr: u64) -> impl FnOnce(GuestMemoryError) -> ErrorSourceError {
    move |source| ErrorSourceError::Memory { addr, source }
}

impl ErrorSources {
    /// Error sources over `layout`; each source queues up to `queue_depth`
    /// records while busy (0: drop whenever busy). Call
    /// [`ErrorSources::init`] before use.
    pub fn new(layout: RegionLayout, queue_depth: usize) -> Self {
        Self {
            layout,
            queue_depth,
            initialized: false,
            states: (0..layout.num_sources())
                .map(|_| SourceState::default())
                .collect(),
            scratch: vec![0; layout.block_len as usize],
        }
    }

    /// The layout.
    pub fn layout(&self) -> &RegionLayout {
        &self.layout
    }

    /// Queue depth per source.
    pub fn queue_depth(&self) -> usize {
        self.queue_depth
    }

    /// (Re)initializes the region (at boot and at every guest reset): zeroes
    /// it, writes each ESA register (the block address), sets every ack
    /// register to 1 ("free") and empties the queues. Counters are kept.
    pub fn init<M: GuestMemory>(&mut self, mem: &M) -> Result<()> {
        let base = self.layout.base;
        let len = self.layout.total_len();
        let region_err = ErrorSourceError::RegionNotInMemory { base, len };
        let ulen = usize::try_from(len).map_err(|_| ErrorSourceError::Overflow { base, len })?;
        if !mem.check_range(GuestAddress(base), ulen) {
            return Err(region_err);
        }
        let zeroes = [0u8; 4096];
        let mut off = 0;
        while off < len {
            let n = (len - off).min(zeroes.len() as u64);
            mem.write_slice(&zeroes[..n as usize], GuestAddress(base + off))
                .map_err(mem_err(base + off))?;
            off += n;
        }
        for s in self.layout.sources() {
            let esa = self.layout.esa_register(s)?;
            let ack = self.layout.ack_register(s)?;
            let block = self.layout.block(s)?;
            mem.store(block.to_le(), GuestAddress(esa), Ordering::Release)
                .map_err(mem_err(esa))?;
            mem.store(1u64.to_le(), GuestAddress(ack), Ordering::Release)
                .map_err(mem_err(ack))?;
        }
        for st in &mut self.states {
            st.queue.clear();
            st.in_flight = false;
        }
        self.initialized = true;
        Ok(())
    }

    /// Encodes `record` and delivers it to `source` (see [`Delivery`]).
    /// A record larger than the block is an error and nothing is written.
    pub fn submit<M: GuestMemory>(
        &mut self,
        mem: &M,
        source: SourceId,
        record: &StatusBlock,
    ) -> Result<Delivery> {
        self.layout.index(source)?;
        let len = record.encoded_len();
        let block_len = self.layout.block_len;
        if len > block_len as usize {
            return Err(ErrorSourceError::RecordTooLarge { len, block_len });
        }
        let mut scratch = take(&mut self.scratch);
        let res = record
            .encode_into(&mut scratch[..len])
            .map_err(ErrorSourceError::from)
            .and_then(|n| self.submit_encoded(mem, source, &scratch[..n]));
        self.scratch = scratch;
        res
    }

    /// Delivers an already encoded Generic Error Status Block (ACPI 6.5
    /// §18.3.2.7.1) to `source`, as [`ErrorSources::submit`].
    pub fn submit_encoded<M: GuestMemory>(
        &mut self,
        mem: &M,
        source: SourceId,
        bytes: &[u8],
    ) -> Result<Delivery> {
        let idx = self.layout.index(source)? as usize;
        let block_len = self.layout.block_len;
        if bytes.len() > block_len as usize {
            return Err(ErrorSourceError::RecordTooLarge {
                len: bytes.len(),
                block_len,
            });
        }
        if bytes.len() < STATUS_HEADER_LEN {
            return Err(ErrorSourceError::RecordTooShort(bytes.len()));
        }
        if bytes[..4] == [0; 4] {
            return Err(ErrorSourceError::EmptyBlockStatus);
        }
        if !self.initialized {
            return Err(ErrorSourceError::NotInitialized);
        }
        self.check_esa(mem, source)?;
        let free = self.poll_ack(mem, source)?;
        let depth_max = self.queue_depth;
        let st = &mut self.states[idx];
        if free {
            match st.queue.pop_front() {
                None => {
                    self.write_record(mem, source, bytes)?;
                    Ok(Delivery::Written)
                }
                Some(older) => {
                    // The queue had room for `older`, so it has room now.
                    st.queue.push_back(bytes.to_vec());
                    st.counters.queued += 1;
                    let depth = st.queue.len();
                    self.write_record(mem, source, &older)?;
                    Ok(Delivery::WroteOlderQueued { depth })
                }
            }
        } else if st.queue.len() < depth_max {
            st.queue.push_back(bytes.to_vec());
            st.counters.queued += 1;
            Ok(Delivery::Queued {
                depth: st.queue.len(),
            })
        } else {
            st.counters.dropped += 1;
            Ok(Delivery::Dropped)
        }
    }

    /// Checks every source: re-writes tampered ESA registers, counts acks,
    /// and writes the next queued record into each source that became
    /// free. Returns the sources written (notify the guest for each).
    pub fn service<M: GuestMemory>(&mut self, mem: &M) -> Result<Vec<(SourceId, Delivery)>> {
        if !self.initialized {
            return Err(ErrorSourceError::NotInitialized);
        }
        let mut out = Vec::new();
        for s in self.layout.sources() {
            self.check_esa(mem, s)?;
            let idx = usize::from(s.0);
            if self.states[idx].queue.is_empty() {
                // Only to count the ack.
                self.poll_ack(mem, s)?;
                continue;
            }
            if self.poll_ack(mem, s)?
                && let Some(rec) = self.states[idx].queue.pop_front()
            {
                self.write_record(mem, s, &rec)?;
                out.push((s, Delivery::Written));
            }
        }
        Ok(out)
    }

    /// Whether `source`'s ack register reads "free" (does not change state).
    pub fn is_free<M: GuestMemory>(&self, mem: &M, source: SourceId) -> Result<bool> {
        let ack = self.layout.ack_register(source)?;
        let v: u64 = mem
            .load(GuestAddress(ack), Ordering::Acquire)
            .map_err(mem_err(ack))?;
        Ok(v != 0)
    }

    /// Records waiting in `source`'s queue.
    pub fn queue_len(&self, source: SourceId) -> Result<usize> {
        Ok(self.states[self.layout.index(source)? as usize].queue.len())
    }

    /// Counters of `source`.
    pub fn counters(&self, source: SourceId) -> Result<Counters> {
        Ok(self.states[self.layout.index(source)? as usize].counters)
    }

    /// Counters summed over all sources.
    pub fn totals(&self) -> Counters {
        let mut t = Counters::default();
        for st in &self.states {
            t.add(&st.counters);
        }
        t
    }

    /// Re-writes the ESA register of `source` if the guest changed it. The
    /// value read is only compared, never used as an address.
    fn check_esa<M: GuestMemory>(&mut self, mem: &M, source: SourceId) -> Result<bool> {
        let esa = self.layout.esa_register(source)?;
        let block = self.layout.block(source)?;
        let v: u64 = mem
            .load(GuestAddress(esa), Ordering::Acquire)
            .map_err(mem_err(esa))?;
        if u64::from_le(v) == block {
            return Ok(false);
        }
        mem.store(block.to_le(), GuestAddress(esa), Ordering::Release)
            .map_err(mem_err(esa))?;
        self.states[usize::from(source.0)].counters.tampered += 1;
        Ok(true)
    }

    /// Reads the ack register; counts an ack of the record in flight.
    fn poll_ack<M: GuestMemory>(&mut self, mem: &M, source: SourceId) -> Result<bool> {
        let free = self.is_free(mem, source)?;
        let st = &mut self.states[usize::from(source.0)];
        if free && st.in_flight {
            st.in_flight = false;
            st.counters.acked += 1;
        }
        Ok(free)
    }

    /// ack := 0, body, then block_status last. `bytes` was validated.
    fn write_record<M: GuestMemory>(
        &mut self,
        mem: &M,
        source: SourceId,
        bytes: &[u8],
    ) -> Result<()> {
        let ack = self.layout.ack_register(source)?;
        let block = self.layout.block(source)?;
        mem.store(0u64, GuestAddress(ack), Ordering::Release)
            .map_err(mem_err(ack))?;
        mem.write_slice(&bytes[4..], GuestAddress(block + 4))
            .map_err(mem_err(block + 4))?;
        // Native-endian load of the encoded bytes: stored back byte for byte.
        let status = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        mem.store(status, GuestAddress(block), Ordering::Release)
            .map_err(mem_err(block))?;
        let st = &mut self.states[usize::from(source.0)];
        st.in_flight = true;
        st.counters.written += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
