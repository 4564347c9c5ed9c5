// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
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
//! and reported by [`ErrorSources::take_tampered`].

use std::collections::VecDeque;
use std::mem::take;
use std::sync::atomic::Ordering;
use std::{fmt, result};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryError};

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

/// An error source id, as in the HEST (and in the guest's log line
/// "Hardware error from APEI Generic Hardware Error Source: N").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SourceId(pub u16);

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which error source a record is for, as the policy and the injection
/// API name it: a vCPU's synchronous (SEA) source, or the asynchronous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceTarget {
    /// The synchronous source of this vCPU (the single shared one with
    /// `sea_sources=shared`); the vCPU also takes an abort.
    Sync {
        /// vCPU index.
        vcpu: u32,
    },
    /// The asynchronous source (GED / PNP0C33 notification, or polled).
    Async,
}

impl fmt::Display for SourceTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceTarget::Sync { vcpu } => write!(f, "sync/{vcpu}"),
            SourceTarget::Async => f.write_str("async"),
        }
    }
}

/// Errors of the error-source layout and runtime.
#[derive(Debug, Error)]
pub enum ErrorSourceError {
    /// The region base is zero or not 4 KiB aligned.
    #[error("Error source region base {0:#x} is zero or not 4 KiB aligned")]
    BadBase(u64),
    /// The block length is out of range or not a multiple of 8.
    #[error("Error status block length {0} must be a multiple of 8 in 20..=65536")]
    BadBlockLen(u32),
    /// Too many synchronous sources.
    #[error("Too many synchronous error sources: {0} (max 65534)")]
    TooManySources(u32),
    /// The region wraps around the address space.
    #[error("Error source region at {base:#x} of {len:#x} bytes overflows the address space")]
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
    #[error("Encoding the record failed")]
    Encode(#[from] CperError),
    /// A guest memory access failed.
    #[error("Guest memory access at {addr:#x} failed")]
    Memory {
        /// Guest-physical address.
        addr: u64,
        /// The vm-memory error.
        #[source]
        source: GuestMemoryError,
    },
    /// Building the HEST failed.
    #[error("Building the HEST failed")]
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
    base: GuestAddress,
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
    pub fn new(base: GuestAddress, num_sync: u32, block_len: u32) -> Result<Self> {
        if base.raw_value() == 0 || !base.raw_value().is_multiple_of(REGION_ALIGN) {
            return Err(ErrorSourceError::BadBase(base.raw_value()));
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
            return Err(ErrorSourceError::Overflow {
                base: base.raw_value(),
                len,
            });
        }
        Ok(layout)
    }

    /// Guest-physical base of the region.
    pub fn base(&self) -> GuestAddress {
        self.base
    }

    /// Number of synchronous sources.
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

    /// The `index`-th synchronous source.
    pub fn sync_source(&self, index: u32) -> Option<SourceId> {
        (index < self.num_sync).then_some(SourceId(index as u16))
    }

    /// The asynchronous source.
    pub fn async_source(&self) -> SourceId {
        SourceId(self.num_sync as u16)
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
    pub fn esa_register(&self, source: SourceId) -> Result<GuestAddress> {
        Ok(self.base.unchecked_add(REGISTERS_LEN * self.index(source)?))
    }

    /// Address of the read-ack register of `source`.
    pub fn ack_register(&self, source: SourceId) -> Result<GuestAddress> {
        Ok(self
            .base
            .unchecked_add(REGISTERS_LEN * self.index(source)? + 8))
    }

    /// Address of the error status block of `source`.
    pub fn block(&self, source: SourceId) -> Result<GuestAddress> {
        Ok(self
            .base
            .unchecked_add(self.blocks_offset() + u64::from(self.block_len) * self.index(source)?))
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
        let notification = if source == self.async_source() {
            notifications.asynchronous
        } else {
            notifications.sync
        };
        Ok(GhesV2Source::new(
            source.0,
            notification,
            self.esa_register(source)?.raw_value(),
            self.ack_register(source)?.raw_value(),
            self.block_len,
        ))
    }

    /// The HEST bytes for this layout: one GHESv2 entry per source (ids
    /// 0..=num_sync).
    pub fn hest(&self, notifications: SourceNotifications) -> Result<Vec<u8>> {
        let mut builder = HestBuilder::new();
        for source in self.sources() {
            builder = builder.add_ghes_v2(self.ghes_v2_source(source, notifications)?);
        }
        Ok(builder.build()?)
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

#[derive(Debug, Default)]
struct SourceState {
    queue: VecDeque<Vec<u8>>,
}

/// The GHESv2 producer over a [`RegionLayout`], for any guest memory
/// ([`vm_memory::Bytes`] at guest-physical addresses).
#[derive(Debug)]
pub struct ErrorSources {
    layout: RegionLayout,
    queue_depth: usize,
    initialized: bool,
    states: Vec<SourceState>,
    scratch: Vec<u8>,
    tampered: u64,
}

fn mem_err(addr: GuestAddress) -> impl FnOnce(GuestMemoryError) -> ErrorSourceError {
    move |source| ErrorSourceError::Memory {
        addr: addr.raw_value(),
        source,
    }
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
            tampered: 0,
        }
    }

    /// The layout.
    pub fn layout(&self) -> &RegionLayout {
        &self.layout
    }

    /// (Re)initializes the region (at boot and at every guest reset): zeroes
    /// it, writes each ESA register (the block address), sets every ack
    /// register to 1 ("free") and empties the queues.
    pub fn init<M>(&mut self, mem: &M) -> Result<()>
    where
        M: Bytes<GuestAddress, E = GuestMemoryError> + ?Sized,
    {
        let base = self.layout.base;
        let len = self.layout.total_len();
        let not_in_memory = || ErrorSourceError::RegionNotInMemory {
            base: base.raw_value(),
            len,
        };
        // The whole region must be guest memory before anything is written.
        let ulen = usize::try_from(len).map_err(|_| not_in_memory())?;
        let mut zeroes = vec![0u8; ulen];
        mem.read_slice(&mut zeroes, base)
            .map_err(|_| not_in_memory())?;
        zeroes.fill(0);
        mem.write_slice(&zeroes, base).map_err(mem_err(base))?;
        for s in self.layout.sources() {
            let esa = self.layout.esa_register(s)?;
            let ack = self.layout.ack_register(s)?;
            let block = self.layout.block(s)?;
            mem.store(block.raw_value().to_le(), esa, Ordering::Release)
                .map_err(mem_err(esa))?;
            mem.store(1u64.to_le(), ack, Ordering::Release)
                .map_err(mem_err(ack))?;
        }
        for st in &mut self.states {
            st.queue.clear();
        }
        self.initialized = true;
        Ok(())
    }

    /// Encodes `record` and delivers it to `source` (see [`Delivery`]).
    /// A record larger than the block is an error and nothing is written.
    pub fn submit<M>(&mut self, mem: &M, source: SourceId, record: &StatusBlock) -> Result<Delivery>
    where
        M: Bytes<GuestAddress, E = GuestMemoryError> + ?Sized,
    {
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
    pub fn submit_encoded<M>(&mut self, mem: &M, source: SourceId, bytes: &[u8]) -> Result<Delivery>
    where
        M: Bytes<GuestAddress, E = GuestMemoryError> + ?Sized,
    {
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
        let free = self.is_free(mem, source)?;
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
                    let depth = st.queue.len();
                    self.write_record(mem, source, &older)?;
                    Ok(Delivery::WroteOlderQueued { depth })
                }
            }
        } else if st.queue.len() < depth_max {
            st.queue.push_back(bytes.to_vec());
            Ok(Delivery::Queued {
                depth: st.queue.len(),
            })
        } else {
            Ok(Delivery::Dropped)
        }
    }

    /// Checks every source: re-writes tampered ESA registers, and writes
    /// the next queued record into each source that became free. Returns
    /// the sources written (notify the guest for each).
    pub fn service<M>(&mut self, mem: &M) -> Result<Vec<SourceId>>
    where
        M: Bytes<GuestAddress, E = GuestMemoryError> + ?Sized,
    {
        if !self.initialized {
            return Err(ErrorSourceError::NotInitialized);
        }
        let mut written = Vec::new();
        for s in self.layout.sources() {
            self.check_esa(mem, s)?;
            let idx = usize::from(s.0);
            if !self.states[idx].queue.is_empty()
                && self.is_free(mem, s)?
                && let Some(rec) = self.states[idx].queue.pop_front()
            {
                self.write_record(mem, s, &rec)?;
                written.push(s);
            }
        }
        Ok(written)
    }

    /// Whether `source`'s ack register reads "free" (does not change state).
    pub fn is_free<M>(&self, mem: &M, source: SourceId) -> Result<bool>
    where
        M: Bytes<GuestAddress, E = GuestMemoryError> + ?Sized,
    {
        let ack = self.layout.ack_register(source)?;
        let v: u64 = mem.load(ack, Ordering::Acquire).map_err(mem_err(ack))?;
        Ok(v != 0)
    }

    /// Records waiting in `source`'s queue.
    pub fn queue_len(&self, source: SourceId) -> Result<usize> {
        Ok(self.states[self.layout.index(source)? as usize].queue.len())
    }

    /// Whether any source has records waiting behind an unacknowledged one.
    pub fn has_queued(&self) -> bool {
        self.states.iter().any(|st| !st.queue.is_empty())
    }

    /// ESA registers found changed and re-written since the last call.
    pub fn take_tampered(&mut self) -> u64 {
        take(&mut self.tampered)
    }

    /// Re-writes the ESA register of `source` if the guest changed it. The
    /// value read is only compared, never used as an address.
    fn check_esa<M>(&mut self, mem: &M, source: SourceId) -> Result<()>
    where
        M: Bytes<GuestAddress, E = GuestMemoryError> + ?Sized,
    {
        let esa = self.layout.esa_register(source)?;
        let block = self.layout.block(source)?;
        let v: u64 = mem.load(esa, Ordering::Acquire).map_err(mem_err(esa))?;
        if u64::from_le(v) != block.raw_value() {
            mem.store(block.raw_value().to_le(), esa, Ordering::Release)
                .map_err(mem_err(esa))?;
            self.tampered += 1;
        }
        Ok(())
    }

    /// ack := 0, body, then block_status last. `bytes` was validated.
    fn write_record<M>(&mut self, mem: &M, source: SourceId, bytes: &[u8]) -> Result<()>
    where
        M: Bytes<GuestAddress, E = GuestMemoryError> + ?Sized,
    {
        let ack = self.layout.ack_register(source)?;
        let block = self.layout.block(source)?;
        mem.store(0u64, ack, Ordering::Release)
            .map_err(mem_err(ack))?;
        let body = block.unchecked_add(4);
        mem.write_slice(&bytes[4..], body).map_err(mem_err(body))?;
        // Native-endian load of the encoded bytes: stored back byte for byte.
        let status = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        mem.store(status, block, Ordering::Release)
            .map_err(mem_err(block))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
