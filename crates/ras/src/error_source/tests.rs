// SPDX-License-Identifier: Apache-2.0
//! Tests of the error-source layout and the GHESv2 producer against real
//! (mmap) guest memory.

use std::cell::RefCell;

use vm_memory::{GuestMemoryMmap, GuestRegionMmap, MemoryRegionAddress};

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

fn read(mem: &GuestMemoryMmap, addr: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    mem.read_slice(&mut v, GuestAddress(addr)).unwrap();
    v
}

fn read_u64(mem: &GuestMemoryMmap, addr: u64) -> u64 {
    u64::from_le_bytes(read(mem, addr, 8).try_into().unwrap())
}

fn guest_ack(mem: &GuestMemoryMmap, es: &ErrorSources, s: SourceId) {
    // What Linux does: clear block_status, then (ack & preserve) | write.
    let block = es.layout().block(s).unwrap();
    mem.write_slice(&[0; 4], GuestAddress(block)).unwrap();
    let ack = es.layout().ack_register(s).unwrap();
    let v = read_u64(mem, ack);
    let v = (v & hest::READ_ACK_PRESERVE) | hest::READ_ACK_WRITE;
    mem.write_slice(&v.to_le_bytes(), GuestAddress(ack))
        .unwrap();
}

fn setup(num_sync: u32, depth: usize) -> (GuestMemoryMmap, ErrorSources) {
    let mem = guest();
    let layout = RegionLayout::new(BASE, num_sync, 1024).unwrap();
    let mut es = ErrorSources::new(layout, depth);
    es.init(&mem).unwrap();
    (mem, es)
}

#[test]
fn layout_math() {
    let base = 0x1f00_0000;
    let l = RegionLayout::with_default_block(base, 4).unwrap();
    assert_eq!(l.num_sources(), 5);
    assert_eq!(l.esa_register(SourceId(0)).unwrap(), base);
    assert_eq!(l.ack_register(SourceId(0)).unwrap(), base + 8);
    assert_eq!(l.esa_register(SourceId(4)).unwrap(), base + 64);
    assert_eq!(l.ack_register(SourceId(4)).unwrap(), base + 72);
    // 5 * 16 = 80 bytes of registers, blocks from 128.
    assert_eq!(l.block(SourceId(0)).unwrap(), base + 128);
    assert_eq!(l.block(SourceId(4)).unwrap(), base + 128 + 4 * 1024);
    assert_eq!(l.total_len(), 8192);
    assert_eq!(l.len_per_source(), 1040);
    assert_eq!(l.async_source(), SourceId(4));
    assert_eq!(l.sync_source(3), Some(SourceId(3)));
    assert_eq!(l.sync_source(4), None);
    assert_eq!(l.kind(SourceId(2)), Some(SourceKind::Sync { vcpu: 2 }));
    assert_eq!(l.kind(SourceId(4)), Some(SourceKind::Async));
    assert_eq!(l.kind(SourceId(5)), None);
    assert!(matches!(
        l.block(SourceId(5)),
        Err(ErrorSourceError::UnknownSource(SourceId(5)))
    ));
    assert_eq!(l.sources().count(), 5);

    // 255 vCPUs: 256 sources, 4 KiB of registers + 256 KiB of blocks.
    let big = RegionLayout::with_default_block(base, 255).unwrap();
    assert_eq!(big.total_len(), 4096 + 256 * 1024);
    // Blocks and registers never overlap, blocks are 8-byte aligned.
    for l in [l, big, RegionLayout::new(base, 2, 24).unwrap()] {
        let regs_end = l.ack_register(l.async_source()).unwrap() + 8;
        let mut prev_end = regs_end;
        for s in l.sources() {
            let b = l.block(s).unwrap();
            assert!(b >= prev_end);
            assert_eq!(b % 8, 0);
            prev_end = b + u64::from(l.block_len());
        }
        assert!(prev_end <= l.base() + l.total_len());
        assert_eq!(l.total_len() % 4096, 0);
    }

    assert!(matches!(
        RegionLayout::new(0, 1, 1024),
        Err(ErrorSourceError::BadBase(0))
    ));
    assert!(matches!(
        RegionLayout::new(0x1800, 1, 1024),
        Err(ErrorSourceError::BadBase(0x1800))
    ));
    assert!(matches!(
        RegionLayout::new(0x1000, 1, 1020),
        Err(ErrorSourceError::BadBlockLen(1020))
    ));
    assert!(matches!(
        RegionLayout::new(0x1000, 1, 16),
        Err(ErrorSourceError::BadBlockLen(16))
    ));
    assert!(matches!(
        RegionLayout::new(0x1000, 0xffff, 1024),
        Err(ErrorSourceError::TooManySources(0xffff))
    ));
    assert!(matches!(
        RegionLayout::new(u64::MAX - 0xfff, 1, 1024),
        Err(ErrorSourceError::Overflow { .. })
    ));
}

#[test]
fn hest_from_layout() {
    let l = RegionLayout::with_default_block(0x1f00_0000, 2).unwrap();
    let t = l.hest(SourceNotifications::arm64_gpio()).unwrap();
    let p = hest::parse(&t).unwrap();
    assert_eq!(p.error_source_count, 3);
    let kinds: Vec<u8> = p.entries.iter().map(|e| e.notification.kind).collect();
    assert_eq!(kinds, [8, 8, 7]);
    for (e, s) in p.entries.iter().zip(l.sources()) {
        assert_eq!(e.source_id.get(), s.0);
        assert_eq!(
            e.error_status_address.address.get(),
            l.esa_register(s).unwrap()
        );
        assert_eq!(
            e.read_ack_register.address.get(),
            l.ack_register(s).unwrap()
        );
        assert_eq!(e.error_status_block_length.get(), 1024);
        assert_eq!(e.max_raw_data_length.get(), 1024);
    }
    let t = l.hest(SourceNotifications::arm64_polled(250)).unwrap();
    let p = hest::parse(&t).unwrap();
    assert_eq!(p.entries[2].notification.kind, 0);
    assert_eq!(p.entries[2].notification.poll_interval.get(), 250);
    let t = l.hest(SourceNotifications::x86_nmi()).unwrap();
    assert!(
        hest::parse(&t)
            .unwrap()
            .entries
            .iter()
            .all(|e| e.notification.kind == 4)
    );
    assert!(matches!(
        l.hest(SourceNotifications::polled(0)),
        Err(ErrorSourceError::Hest(hest::HestError::ZeroPollInterval(0)))
    ));
}

#[test]
fn init_writes_registers_and_zeroes_blocks() {
    let mem = guest();
    mem.write_slice(&[0xaa; MEM_LEN], GuestAddress(0)).unwrap();
    let layout = RegionLayout::new(BASE, 3, 1024).unwrap();
    let mut es = ErrorSources::new(layout, 4);
    let s0 = SourceId(0);
    assert!(matches!(
        es.submit_encoded(&mem, s0, &rec(1, 8)),
        Err(ErrorSourceError::NotInitialized)
    ));
    es.init(&mem).unwrap();
    for s in layout.sources() {
        assert_eq!(
            read_u64(&mem, layout.esa_register(s).unwrap()),
            layout.block(s).unwrap()
        );
        assert_eq!(read_u64(&mem, layout.ack_register(s).unwrap()), 1);
        assert!(
            read(&mem, layout.block(s).unwrap(), 1024)
                .iter()
                .all(|b| *b == 0)
        );
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
    let far = RegionLayout::new(0x10_0000, 3, 1024).unwrap();
    assert!(matches!(
        ErrorSources::new(far, 4).init(&mem),
        Err(ErrorSourceError::RegionNotInMemory { .. })
    ));
    let straddle = RegionLayout::new(MEM_LEN as u64 - 0x1000, 3, 1024).unwrap();
    assert!(matches!(
        ErrorSources::new(straddle, 4).init(&mem),
        Err(ErrorSourceError::RegionNotInMemory { .. })
    ));
}

/// Guest memory that logs the start address of every access.
struct Recorder<'a> {
    inner: &'a GuestMemoryMmap,
    log: RefCell<Vec<u64>>,
}

impl GuestMemory for Recorder<'_> {
    type R = GuestRegionMmap;

    fn num_regions(&self) -> usize {
        self.inner.num_regions()
    }

    fn iter(&self) -> impl Iterator<Item = &Self::R> {
        self.inner.iter()
    }

    fn to_region_addr(&self, addr: GuestAddress) -> Option<(&Self::R, MemoryRegionAddress)> {
        self.log.borrow_mut().push(addr.0);
        self.inner.to_region_addr(addr)
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
    let ack = es.layout().ack_register(s).unwrap();
    let block = es.layout().block(s).unwrap();
    let log = rm.log.into_inner();
    // Last three accesses: ack := 0, body, block_status.
    assert_eq!(log[log.len() - 3..], [ack, block + 4, block]);
    // Nothing was written before the ack register was read.
    assert_eq!(log.iter().position(|a| *a == block), Some(log.len() - 1));
    assert_eq!(read_u64(&mem, ack), 0);
    assert_eq!(read(&mem, block, r.len()), r);
    assert_eq!(es.counters(s).unwrap().written, 1);
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
    assert_eq!(read(&mem, block + 20, 40), vec![1; 40]);
    // Not acked: service writes nothing.
    assert_eq!(es.service(&mem).unwrap(), vec![]);
    assert_eq!(read(&mem, block + 20, 40), vec![1; 40]);

    guest_ack(&mem, &es, s);
    assert_eq!(es.service(&mem).unwrap(), vec![(s, Delivery::Written)]);
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
    assert_eq!(es.service(&mem).unwrap(), vec![(s, Delivery::Written)]);
    assert_eq!(read(&mem, block, 60), rec(5, 40));
    guest_ack(&mem, &es, s);
    assert_eq!(es.service(&mem).unwrap(), vec![]);
    assert_eq!(
        es.counters(s).unwrap(),
        Counters {
            written: 4,
            queued: 3,
            dropped: 1,
            acked: 4,
            tampered: 0
        }
    );
    assert_eq!(es.totals(), es.counters(s).unwrap());
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
    assert_eq!(es.service(&mem).unwrap(), vec![(b, Delivery::Written)]);
    assert_eq!(read(&mem, ba, 84), rec(0xa1, 64));
    assert_eq!(read(&mem, bb, 84), rec(0xb2, 64));
    guest_ack(&mem, &es, a);
    guest_ack(&mem, &es, b);
    assert_eq!(es.service(&mem).unwrap(), vec![(a, Delivery::Written)]);
    assert_eq!(read(&mem, ba, 84), rec(0xa2, 64));
    assert_eq!(es.counters(SourceId(1)).unwrap(), Counters::default());
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
    assert_eq!(es.totals(), Counters::default());
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
    mem.write_slice(&0x100u64.to_le_bytes(), GuestAddress(esa))
        .unwrap();
    let low = read(&mem, 0, BASE as usize);
    assert_eq!(
        es.submit_encoded(&mem, s, &rec(7, 200)).unwrap(),
        Delivery::Written
    );
    assert_eq!(read(&mem, 0, BASE as usize), low);
    assert_eq!(read_u64(&mem, esa), es.layout().block(s).unwrap());
    assert_eq!(read(&mem, es.layout().block(s).unwrap(), 220), rec(7, 200));
    assert_eq!(es.counters(s).unwrap().tampered, 1);
    // service() checks all sources.
    let esa0 = es.layout().esa_register(SourceId(0)).unwrap();
    mem.write_slice(&[0xff; 8], GuestAddress(esa0)).unwrap();
    assert_eq!(es.service(&mem).unwrap(), vec![]);
    assert_eq!(es.counters(SourceId(0)).unwrap().tampered, 1);
    assert_eq!(
        read_u64(&mem, esa0),
        es.layout().block(SourceId(0)).unwrap()
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
            let off = (layout.ack_register(s).unwrap() - BASE) as usize;
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
            for (s, _) in es.service(&mem).unwrap() {
                written.push(s);
            }
            // The guest sometimes acks, sometimes scribbles a register.
            let s = SourceId((rng.next() % layout.num_sources() as u64) as u16);
            match rng.next() % 3 {
                0 => guest_ack(&mem, &es, s),
                1 => mem
                    .write_slice(
                        &rng.next().to_le_bytes(),
                        GuestAddress(layout.esa_register(s).unwrap()),
                    )
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
            let esa = layout.esa_register(s).unwrap() as usize;
            allowed[esa..esa + 16].fill(true);
            let b = layout.block(s).unwrap() as usize;
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
                layout.block(s).unwrap(),
                "seed {seed}"
            );
        }
        // Each written source's block starts with a record we wrote.
        for s in written {
            let b = layout.block(s).unwrap();
            let hdr = read(&mem, b, 20);
            assert!(
                hdr[0..4] == [0; 4] || hdr[0..4] == [1, 0, 0, 0],
                "seed {seed}"
            );
        }
        let t = es.totals();
        assert!(t.written >= 1, "seed {seed}");
    }
}

#[test]
fn status_block_is_encoded_into_the_block() {
    use crate::cper::Severity;
    use crate::report::GpaGranule;

    let (mem, mut es) = setup(2, 4);
    let s = SourceId(0);
    let g = GpaGranule::containing(0x4020_1234, 12).unwrap();
    let sb = StatusBlock::memory_error(&g, Severity::Recoverable, 1_700_000_000);
    let enc = sb.encode();
    assert_eq!(es.submit(&mem, s, &sb).unwrap(), Delivery::Written);
    let block = es.layout().block(s).unwrap();
    let got = read(&mem, block, enc.len());
    assert_eq!(got, enc);
    assert_eq!(StatusBlock::decode(&got).unwrap(), sb);
}

#[test]
fn status_block_larger_than_the_block_is_rejected() {
    use crate::cper::Severity;
    use crate::report::GpaGranule;

    let mem = guest();
    let layout = RegionLayout::new(BASE, 1, 64).unwrap();
    let mut es = ErrorSources::new(layout, 4);
    es.init(&mem).unwrap();
    let g = GpaGranule::containing(0x4020_0000, 21).unwrap();
    let sb = StatusBlock::memory_error(&g, Severity::Recoverable, 0);
    assert!(sb.encoded_len() > 64);
    let before = read(&mem, 0, MEM_LEN);
    assert!(matches!(
        es.submit(&mem, SourceId(0), &sb),
        Err(ErrorSourceError::RecordTooLarge { block_len: 64, .. })
    ));
    assert_eq!(read(&mem, 0, MEM_LEN), before);
    assert_eq!(es.totals(), Counters::default());
}
