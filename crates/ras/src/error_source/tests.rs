// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! Tests of the error-source layout and the GHESv2 producer against real
//! (mmap) guest memory.

use std::cell::RefCell;

use vm_memory::{AtomicAccess, GuestMemoryMmap, ReadVolatile, WriteVolatile};
use zerocopy::FromBytes;

use super::*;
use crate::hest;

const MEM_LEN: usize = 0x10000;
const BASE: u64 = 0x4000;

fn guest() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_LEN)]).unwrap()
}

/// A well-formed Generic Error Status Block: status 1 (uncorrectable
/// valid), `data_len` data bytes all equal to `tag`.
fn rec(tag: u8, data_len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&(data_len as u32).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.resize(20 + data_len, tag);
    v
}

fn read(mem: &GuestMemoryMmap, addr: impl Into<Gpa>, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    mem.read_slice(&mut v, addr.into().0).unwrap();
    v
}

fn read_u64(mem: &GuestMemoryMmap, addr: impl Into<Gpa>) -> u64 {
    u64::from_le_bytes(read(mem, addr, 8).try_into().unwrap())
}

/// A guest-physical address from a test constant or the layout.
struct Gpa(GuestAddress);

impl From<u64> for Gpa {
    fn from(v: u64) -> Self {
        Gpa(GuestAddress(v))
    }
}

impl From<GuestAddress> for Gpa {
    fn from(v: GuestAddress) -> Self {
        Gpa(v)
    }
}

fn off(a: GuestAddress) -> usize {
    a.raw_value() as usize
}

fn guest_ack(mem: &GuestMemoryMmap, es: &ErrorSources, s: SourceId) {
    // What Linux does: clear block_status, then (ack & preserve) | write.
    let block = es.layout().block(s).unwrap();
    mem.write_slice(&[0; 4], block).unwrap();
    let ack = es.layout().ack_register(s).unwrap();
    let v = read_u64(mem, ack);
    let v = (v & hest::READ_ACK_PRESERVE) | hest::READ_ACK_WRITE;
    mem.write_slice(&v.to_le_bytes(), ack).unwrap();
}

fn setup(num_sync: u32, depth: usize) -> (GuestMemoryMmap, ErrorSources) {
    let mem = guest();
    let layout = RegionLayout::new(GuestAddress(BASE), num_sync, 1024).unwrap();
    let mut es = ErrorSources::new(layout, depth);
    es.init(&mem).unwrap();
    (mem, es)
}

#[test]
fn layout_math() {
    let base = GuestAddress(0x1f00_0000);
    let at = |off: u64| base.unchecked_add(off);
    let l = RegionLayout::new(base, 4, 1024).unwrap();
    assert_eq!(l.num_sources(), 5);
    assert_eq!(l.esa_register(SourceId(0)).unwrap(), at(0));
    assert_eq!(l.ack_register(SourceId(0)).unwrap(), at(8));
    assert_eq!(l.esa_register(SourceId(4)).unwrap(), at(64));
    assert_eq!(l.ack_register(SourceId(4)).unwrap(), at(72));
    // 5 * 16 = 80 bytes of registers, blocks from 128.
    assert_eq!(l.block(SourceId(0)).unwrap(), at(128));
    assert_eq!(l.block(SourceId(4)).unwrap(), at(128 + 4 * 1024));
    assert_eq!(l.total_len(), 8192);
    assert_eq!(l.len_per_source(), 1040);
    assert_eq!(l.async_source(), SourceId(4));
    assert_eq!(l.sync_source(3), Some(SourceId(3)));
    assert_eq!(l.sync_source(4), None);
    assert!(matches!(
        l.block(SourceId(5)),
        Err(ErrorSourceError::UnknownSource(SourceId(5)))
    ));
    assert_eq!(l.sources().count(), 5);

    // 255 vCPUs: 256 sources, 4 KiB of registers + 256 KiB of blocks.
    let big = RegionLayout::new(base, 255, 1024).unwrap();
    assert_eq!(big.total_len(), 4096 + 256 * 1024);
    // Blocks and registers never overlap, blocks are 8-byte aligned.
    for l in [l, big, RegionLayout::new(base, 2, 24).unwrap()] {
        let regs_end = l.ack_register(l.async_source()).unwrap().unchecked_add(8);
        let mut prev_end = regs_end;
        for s in l.sources() {
            let b = l.block(s).unwrap();
            assert!(b >= prev_end);
            assert_eq!(b.raw_value() % 8, 0);
            prev_end = b.unchecked_add(u64::from(l.block_len()));
        }
        assert!(prev_end <= l.base().unchecked_add(l.total_len()));
        assert_eq!(l.total_len() % 4096, 0);
    }

    let bad = |base: u64, n: u32, len: u32| RegionLayout::new(GuestAddress(base), n, len);
    assert!(matches!(bad(0, 1, 1024), Err(ErrorSourceError::BadBase(0))));
    assert!(matches!(
        bad(0x1800, 1, 1024),
        Err(ErrorSourceError::BadBase(0x1800))
    ));
    assert!(matches!(
        bad(0x1000, 1, 1020),
        Err(ErrorSourceError::BadBlockLen(1020))
    ));
    assert!(matches!(
        bad(0x1000, 1, 16),
        Err(ErrorSourceError::BadBlockLen(16))
    ));
    assert!(matches!(
        bad(0x1000, 0xffff, 1024),
        Err(ErrorSourceError::TooManySources(0xffff))
    ));
    assert!(matches!(
        bad(u64::MAX - 0xfff, 1, 1024),
        Err(ErrorSourceError::Overflow { .. })
    ));
}

/// The error source count and the GHESv2 entries of a HEST, read at the
/// offsets ACPI 6.5 §18.3.2 gives: a 36-byte header, the count, then
/// 92-byte entries.
fn ghes_entries(t: &[u8]) -> (u32, Vec<hest::GhesV2>) {
    let count = u32::from_le_bytes(t[36..40].try_into().unwrap());
    let entries = t[40..]
        .chunks(92)
        .map(|c| hest::GhesV2::read_from_bytes(c).unwrap())
        .collect();
    (count, entries)
}

#[test]
fn hest_from_layout() {
    let l = RegionLayout::new(GuestAddress(0x1f00_0000), 2, 1024).unwrap();
    let t = l.hest(SourceNotifications::arm64_gpio()).unwrap();
    let (count, entries) = ghes_entries(&t);
    assert_eq!(count, 3);
    // ACPI 6.5 Table 18.37 notification types: 8 = SEA, 7 = GPIO-signal.
    let kinds: Vec<u8> = entries.iter().map(|e| e.ghes.notification.kind).collect();
    assert_eq!(kinds, [8, 8, 7]);
    // The module's layout: ESA register at base + 16 * i, read-ack at
    // base + 16 * i + 8.
    let expected: [(u16, u64, u64); 3] = [
        (0, 0x1f00_0000, 0x1f00_0008),
        (1, 0x1f00_0010, 0x1f00_0018),
        (2, 0x1f00_0020, 0x1f00_0028),
    ];
    assert_eq!(entries.len(), expected.len());
    for (e, (id, esa, ack)) in entries.iter().zip(expected) {
        assert_eq!(e.ghes.source_id.get(), id);
        assert_eq!(e.ghes.error_status_address.address.get(), esa);
        assert_eq!(e.read_ack_register.address.get(), ack);
        assert_eq!(e.ghes.error_status_block_length.get(), 1024);
        assert_eq!(e.ghes.max_raw_data_length.get(), 1024);
    }
    let t = l.hest(SourceNotifications::arm64_polled(250)).unwrap();
    let (_, entries) = ghes_entries(&t);
    let kinds: Vec<u8> = entries.iter().map(|e| e.ghes.notification.kind).collect();
    // 0 = polled, for the asynchronous source only.
    assert_eq!(kinds, [8, 8, 0]);
    assert_eq!(entries[2].ghes.notification.poll_interval.get(), 250);
    let t = l.hest(SourceNotifications::x86_nmi()).unwrap();
    let kinds: Vec<u8> = ghes_entries(&t)
        .1
        .iter()
        .map(|e| e.ghes.notification.kind)
        .collect();
    // 4 = NMI.
    assert_eq!(kinds, [4, 4, 4]);
    assert!(matches!(
        l.hest(SourceNotifications::polled(0)),
        Err(ErrorSourceError::Hest(hest::HestError::ZeroPollInterval(0)))
    ));
}

#[test]
fn init_writes_registers_and_zeroes_blocks() {
    let mem = guest();
    mem.write_slice(&[0xaa; MEM_LEN], GuestAddress(0)).unwrap();
    let layout = RegionLayout::new(GuestAddress(BASE), 3, 1024).unwrap();
    let mut es = ErrorSources::new(layout, 4);
    let s0 = SourceId(0);
    assert!(matches!(
        es.submit_encoded(&mem, s0, &rec(1, 8)),
        Err(ErrorSourceError::NotInitialized)
    ));
    es.init(&mem).unwrap();
    // 4 sources: 64 bytes of registers, blocks from BASE + 64.
    for i in 0..4u64 {
        let block = BASE + 64 + 1024 * i;
        assert_eq!(read_u64(&mem, BASE + 16 * i), block, "ESA {i}");
        assert_eq!(read_u64(&mem, BASE + 16 * i + 8), 1, "ack {i}");
        assert_eq!(read(&mem, block, 1024), vec![0; 1024], "block {i}");
    }
    // Outside the region: untouched.
    assert!(read(&mem, 0, BASE as usize).iter().all(|b| *b == 0xaa));
    let end = BASE + layout.total_len();
    assert!(
        read(&mem, end, MEM_LEN - end as usize)
            .iter()
            .all(|b| *b == 0xaa)
    );

    // A region outside guest memory is an error, not a panic.
    let far = RegionLayout::new(GuestAddress(0x10_0000), 3, 1024).unwrap();
    assert!(matches!(
        ErrorSources::new(far, 4).init(&mem),
        Err(ErrorSourceError::RegionNotInMemory { .. })
    ));
    let straddle = RegionLayout::new(GuestAddress(MEM_LEN as u64 - 0x1000), 3, 1024).unwrap();
    assert!(matches!(
        ErrorSources::new(straddle, 4).init(&mem),
        Err(ErrorSourceError::RegionNotInMemory { .. })
    ));
    // Nothing was written by the refused inits.
    assert!(
        read(&mem, MEM_LEN as u64 - 0x1000, 0x1000)
            .iter()
            .all(|b| *b == 0xaa)
    );
}

/// Guest memory that logs the start address of every access.
struct Recorder<'a> {
    inner: &'a GuestMemoryMmap,
    log: RefCell<Vec<GuestAddress>>,
}

impl Recorder<'_> {
    fn at(&self, addr: GuestAddress) -> GuestAddress {
        self.log.borrow_mut().push(addr);
        addr
    }
}

impl Bytes<GuestAddress> for Recorder<'_> {
    type E = GuestMemoryError;

    fn write(&self, buf: &[u8], addr: GuestAddress) -> result::Result<usize, Self::E> {
        self.inner.write(buf, self.at(addr))
    }

    fn read(&self, buf: &mut [u8], addr: GuestAddress) -> result::Result<usize, Self::E> {
        self.inner.read(buf, self.at(addr))
    }

    fn write_slice(&self, buf: &[u8], addr: GuestAddress) -> result::Result<(), Self::E> {
        self.inner.write_slice(buf, self.at(addr))
    }

    fn read_slice(&self, buf: &mut [u8], addr: GuestAddress) -> result::Result<(), Self::E> {
        self.inner.read_slice(buf, self.at(addr))
    }

    fn read_volatile_from<F: ReadVolatile>(
        &self,
        addr: GuestAddress,
        src: &mut F,
        count: usize,
    ) -> result::Result<usize, Self::E> {
        self.inner.read_volatile_from(self.at(addr), src, count)
    }

    fn read_exact_volatile_from<F: ReadVolatile>(
        &self,
        addr: GuestAddress,
        src: &mut F,
        count: usize,
    ) -> result::Result<(), Self::E> {
        self.inner
            .read_exact_volatile_from(self.at(addr), src, count)
    }

    fn write_volatile_to<F: WriteVolatile>(
        &self,
        addr: GuestAddress,
        dst: &mut F,
        count: usize,
    ) -> result::Result<usize, Self::E> {
        self.inner.write_volatile_to(self.at(addr), dst, count)
    }

    fn write_all_volatile_to<F: WriteVolatile>(
        &self,
        addr: GuestAddress,
        dst: &mut F,
        count: usize,
    ) -> result::Result<(), Self::E> {
        self.inner.write_all_volatile_to(self.at(addr), dst, count)
    }

    fn store<T: AtomicAccess>(
        &self,
        val: T,
        addr: GuestAddress,
        order: Ordering,
    ) -> result::Result<(), Self::E> {
        self.inner.store(val, self.at(addr), order)
    }

    fn load<T: AtomicAccess>(
        &self,
        addr: GuestAddress,
        order: Ordering,
    ) -> result::Result<T, Self::E> {
        self.inner.load(self.at(addr), order)
    }
}

#[test]
fn protocol_order_ack_body_status() {
    let (mem, mut es) = setup(2, 4);
    let s = SourceId(1);
    let r = rec(0x5a, 100);
    let rm = Recorder {
        inner: &mem,
        log: RefCell::new(Vec::new()),
    };
    assert_eq!(es.submit_encoded(&rm, s, &r).unwrap(), Delivery::Written);
    // 3 sources: 48 bytes of registers, blocks from BASE + 64; source 1's
    // ack register at BASE + 24, its block at BASE + 64 + 1024.
    let ack = GuestAddress(BASE + 24);
    let block = GuestAddress(BASE + 64 + 1024);
    let log = rm.log.into_inner();
    // Last three accesses: ack := 0, body, block_status.
    assert_eq!(log[log.len() - 3..], [ack, block.unchecked_add(4), block]);
    // Nothing was written before the ack register was read.
    assert_eq!(log.iter().position(|a| *a == block), Some(log.len() - 1));
    assert_eq!(read_u64(&mem, ack), 0);
    assert_eq!(read(&mem, block, r.len()), r);
}

#[test]
fn busy_queue_drop_and_drain() {
    let (mem, mut es) = setup(2, 2);
    let s = SourceId(0);
    let block = es.layout().block(s).unwrap();
    assert_eq!(
        es.submit_encoded(&mem, s, &rec(1, 40)).unwrap(),
        Delivery::Written
    );
    assert!(!es.is_free(&mem, s).unwrap());
    assert_eq!(
        es.submit_encoded(&mem, s, &rec(2, 40)).unwrap(),
        Delivery::Queued { depth: 1 }
    );
    assert_eq!(
        es.submit_encoded(&mem, s, &rec(3, 40)).unwrap(),
        Delivery::Queued { depth: 2 }
    );
    // Queue full: the new record is dropped, the block still holds record 1.
    assert_eq!(
        es.submit_encoded(&mem, s, &rec(4, 40)).unwrap(),
        Delivery::Dropped
    );
    assert_eq!(read(&mem, block.unchecked_add(20), 40), vec![1; 40]);
    // Not acked: service writes nothing.
    assert_eq!(es.service(&mem).unwrap(), vec![]);
    assert_eq!(read(&mem, block.unchecked_add(20), 40), vec![1; 40]);

    guest_ack(&mem, &es, s);
    assert_eq!(es.service(&mem).unwrap(), vec![s]);
    assert_eq!(read(&mem, block, 60), rec(2, 40));
    assert_eq!(es.queue_len(s).unwrap(), 1);
    // Ack, then a new submit: the older queued record goes first.
    guest_ack(&mem, &es, s);
    assert_eq!(
        es.submit_encoded(&mem, s, &rec(5, 40)).unwrap(),
        Delivery::WroteOlderQueued { depth: 1 }
    );
    assert!(Delivery::WroteOlderQueued { depth: 1 }.must_notify());
    assert_eq!(read(&mem, block, 60), rec(3, 40));
    guest_ack(&mem, &es, s);
    assert_eq!(es.service(&mem).unwrap(), vec![s]);
    assert_eq!(read(&mem, block, 60), rec(5, 40));
    guest_ack(&mem, &es, s);
    assert_eq!(es.service(&mem).unwrap(), vec![]);
    assert!(!es.has_queued());
    assert_eq!(es.take_tampered(), 0);
}

#[test]
fn zero_depth_drops_when_busy() {
    let (mem, mut es) = setup(1, 0);
    let s = SourceId(0);
    assert_eq!(
        es.submit_encoded(&mem, s, &rec(1, 8)).unwrap(),
        Delivery::Written
    );
    assert_eq!(
        es.submit_encoded(&mem, s, &rec(2, 8)).unwrap(),
        Delivery::Dropped
    );
}

#[test]
fn two_sources_concurrently() {
    let (mem, mut es) = setup(2, 4);
    let (a, b) = (SourceId(0), es.layout().async_source());
    assert_eq!(
        es.submit_encoded(&mem, a, &rec(0xa1, 64)).unwrap(),
        Delivery::Written
    );
    assert_eq!(
        es.submit_encoded(&mem, b, &rec(0xb1, 64)).unwrap(),
        Delivery::Written
    );
    assert_eq!(
        es.submit_encoded(&mem, a, &rec(0xa2, 64)).unwrap(),
        Delivery::Queued { depth: 1 }
    );
    assert_eq!(
        es.submit_encoded(&mem, b, &rec(0xb2, 64)).unwrap(),
        Delivery::Queued { depth: 1 }
    );
    let ba = es.layout().block(a).unwrap();
    let bb = es.layout().block(b).unwrap();
    assert_eq!(read(&mem, ba, 84), rec(0xa1, 64));
    assert_eq!(read(&mem, bb, 84), rec(0xb1, 64));
    // Only b acks: only b advances.
    guest_ack(&mem, &es, b);
    assert_eq!(es.service(&mem).unwrap(), vec![b]);
    assert_eq!(read(&mem, ba, 84), rec(0xa1, 64));
    assert_eq!(read(&mem, bb, 84), rec(0xb2, 64));
    guest_ack(&mem, &es, a);
    guest_ack(&mem, &es, b);
    assert_eq!(es.service(&mem).unwrap(), vec![a]);
    assert_eq!(read(&mem, ba, 84), rec(0xa2, 64));
    // The other synchronous source was never written.
    let b1 = es.layout().block(SourceId(1)).unwrap();
    assert_eq!(read(&mem, b1, 84), vec![0; 84]);
}

#[test]
fn rejects_bad_records_without_writing() {
    let (mem, mut es) = setup(1, 4);
    let s = SourceId(0);
    let before = read(&mem, 0, MEM_LEN);
    assert!(matches!(
        es.submit_encoded(&mem, s, &rec(1, 1005)),
        Err(ErrorSourceError::RecordTooLarge {
            len: 1025,
            block_len: 1024
        })
    ));
    assert!(matches!(
        es.submit_encoded(&mem, s, &[1, 0, 0, 0]),
        Err(ErrorSourceError::RecordTooShort(4))
    ));
    let mut empty = rec(1, 8);
    empty[0] = 0;
    assert!(matches!(
        es.submit_encoded(&mem, s, &empty),
        Err(ErrorSourceError::EmptyBlockStatus)
    ));
    assert!(matches!(
        es.submit_encoded(&mem, SourceId(2), &rec(1, 8)),
        Err(ErrorSourceError::UnknownSource(SourceId(2)))
    ));
    assert_eq!(read(&mem, 0, MEM_LEN), before);
    // Exactly the block length fits.
    assert_eq!(
        es.submit_encoded(&mem, s, &rec(1, 1004)).unwrap(),
        Delivery::Written
    );
}

#[test]
fn redirected_esa_is_restored_and_never_followed() {
    let (mem, mut es) = setup(2, 4);
    let s = SourceId(1);
    let esa = es.layout().esa_register(s).unwrap();
    // The guest points the ESA register at other memory.
    mem.write_slice(&0x100u64.to_le_bytes(), esa).unwrap();
    let low = read(&mem, 0, BASE as usize);
    assert_eq!(
        es.submit_encoded(&mem, s, &rec(7, 200)).unwrap(),
        Delivery::Written
    );
    assert_eq!(read(&mem, 0, BASE as usize), low);
    assert_eq!(
        read_u64(&mem, esa),
        es.layout().block(s).unwrap().raw_value()
    );
    assert_eq!(read(&mem, es.layout().block(s).unwrap(), 220), rec(7, 200));
    assert_eq!(es.take_tampered(), 1);
    assert_eq!(es.take_tampered(), 0);
    // service() checks all sources.
    let esa0 = es.layout().esa_register(SourceId(0)).unwrap();
    mem.write_slice(&[0xff; 8], esa0).unwrap();
    assert_eq!(es.service(&mem).unwrap(), vec![]);
    assert_eq!(es.take_tampered(), 1);
    assert_eq!(
        read_u64(&mem, esa0),
        es.layout().block(SourceId(0)).unwrap().raw_value()
    );
}

/// xorshift64*: deterministic bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }
}

#[test]
fn scribbling_guest_cannot_redirect_or_crash() {
    for seed in 1..=64u64 {
        let (mem, mut es) = setup(3, 2);
        let layout = *es.layout();
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        // Some records in flight / queued first, then the guest scribbles
        // over the whole region (ESA, ack registers, blocks, padding).
        for s in layout.sources() {
            if rng.next().is_multiple_of(2) {
                es.submit_encoded(&mem, s, &rec(0x11, 30)).unwrap();
            }
        }
        let mut junk = vec![0u8; layout.total_len() as usize];
        rng.fill(&mut junk);
        // Some seeds: ack registers forced to zero (busy) or ESA to low RAM.
        for s in layout.sources() {
            let off = off(layout.ack_register(s).unwrap()) - BASE as usize;
            match rng.next() % 4 {
                0 => junk[off..off + 8].fill(0),
                1 => junk[off - 8..off].copy_from_slice(&0x200u64.to_le_bytes()),
                _ => {}
            }
        }
        mem.write_slice(&junk, GuestAddress(BASE)).unwrap();
        let before = read(&mem, 0, MEM_LEN);

        let mut written = Vec::new();
        for round in 0..6u8 {
            for s in layout.sources() {
                let len = (rng.next() % 1005) as usize;
                let d = es.submit_encoded(&mem, s, &rec(round, len)).unwrap();
                if d.must_notify() {
                    written.push(s);
                }
            }
            written.extend(es.service(&mem).unwrap());
            // The guest sometimes acks, sometimes scribbles a register.
            let s = SourceId((rng.next() % layout.num_sources() as u64) as u16);
            match rng.next() % 3 {
                0 => guest_ack(&mem, &es, s),
                1 => mem
                    .write_slice(&rng.next().to_le_bytes(), layout.esa_register(s).unwrap())
                    .unwrap(),
                _ => {}
            }
        }
        es.service(&mem).unwrap();

        let after = read(&mem, 0, MEM_LEN);
        // Bytes the engine may change: blocks (of any source: queued
        // records may drain), ESA and ack registers. The guest's own
        // scribbles above also touch only registers and blocks.
        let mut allowed = vec![false; MEM_LEN];
        for s in layout.sources() {
            let esa = off(layout.esa_register(s).unwrap());
            allowed[esa..esa + 16].fill(true);
            let b = off(layout.block(s).unwrap());
            allowed[b..b + layout.block_len() as usize].fill(true);
        }
        for (i, (x, y)) in before.iter().zip(after.iter()).enumerate() {
            assert!(
                x == y || allowed[i],
                "seed {seed}: byte at {i:#x} changed outside registers and blocks"
            );
        }
        // Every ESA register holds the engine's block address.
        for s in layout.sources() {
            assert_eq!(
                read_u64(&mem, layout.esa_register(s).unwrap()),
                layout.block(s).unwrap().raw_value(),
                "seed {seed}"
            );
        }
        assert!(!written.is_empty(), "seed {seed}");
        // Each written source's block starts with a record we wrote.
        for s in written {
            let b = layout.block(s).unwrap();
            let hdr = read(&mem, b, 20);
            assert!(
                hdr[0..4] == [0; 4] || hdr[0..4] == [1, 0, 0, 0],
                "seed {seed}"
            );
        }
    }
}

#[test]
fn status_block_is_encoded_into_the_block() {
    use crate::cper::Severity;
    use crate::granule::GpaGranule;

    let (mem, mut es) = setup(2, 4);
    let s = SourceId(0);
    let g = GpaGranule::containing(GuestAddress(0x4020_1234), 12).unwrap();
    let sb = StatusBlock::memory_error(&g, Severity::Recoverable, 1_700_000_000);
    assert_eq!(es.submit(&mem, s, &sb).unwrap(), Delivery::Written);
    // Source 0's block: BASE + 64 (3 sources, 48 bytes of registers).
    let got = read(&mem, BASE + 64, 172);
    // ACPI 6.5 Table 18.19: one entry, uncorrectable valid; 152 data bytes.
    assert_eq!(got[0..4], 0x11u32.to_le_bytes());
    assert_eq!(got[12..16], 152u32.to_le_bytes());
    // UEFI 2.10 N.2.5: physical address and mask of the 4 KiB page.
    let section = 20 + 72;
    assert_eq!(
        got[section + 16..section + 24],
        0x4020_1000u64.to_le_bytes()
    );
    assert_eq!(
        got[section + 24..section + 32],
        0xffff_ffff_ffff_f000u64.to_le_bytes()
    );
    // Nothing after the record.
    assert_eq!(read(&mem, BASE + 64 + 172, 1024 - 172), vec![0; 1024 - 172]);
    assert_eq!(StatusBlock::decode(&got).unwrap(), sb);
}

#[test]
fn status_block_larger_than_the_block_is_rejected() {
    use crate::cper::Severity;
    use crate::granule::GpaGranule;

    let mem = guest();
    let layout = RegionLayout::new(GuestAddress(BASE), 1, 64).unwrap();
    let mut es = ErrorSources::new(layout, 4);
    es.init(&mem).unwrap();
    let g = GpaGranule::containing(GuestAddress(0x4020_0000), 21).unwrap();
    let sb = StatusBlock::memory_error(&g, Severity::Recoverable, 0);
    assert!(sb.encoded_len() > 64);
    let before = read(&mem, 0, MEM_LEN);
    assert!(matches!(
        es.submit(&mem, SourceId(0), &sb),
        Err(ErrorSourceError::RecordTooLarge { block_len: 64, .. })
    ));
    assert_eq!(read(&mem, 0, MEM_LEN), before);
}
