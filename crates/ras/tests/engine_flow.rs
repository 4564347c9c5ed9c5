// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! The engine end to end on real guest memory (`GuestMemoryMmap`): error
//! reports become CPER bytes at the right guest-physical addresses, ack
//! register values, poison entries, and an `Outcome` telling the VMM what
//! to do.
//!
//! Expected addresses come from the region layout documented in
//! `error_source` (registers at `base + 16 * i`, blocks from
//! `base + round_up(16 * sources, 64)`), written out here; expected bytes
//! from ACPI 6.5 §18.3.2.7.1 and UEFI 2.10 N.2.5, written out like
//! `cper::status_block`'s known-bytes test. The guest side acknowledges a
//! record the way Linux's GHES driver does (`ghes_clear_estatus`, then
//! `ghes_ack_error`: `(ack & preserve) | write` with the HEST's
//! `0xfffffffe` / `1`).

mod common;

use common::*;
use ras::config::{AsyncMode, ConfigError, NoGpaPolicy, RasConfig, SeaSources};
use ras::cper::{DataEntry, EntryFlags, Guid, MemoryErrorSection, RawSection, Section, Severity};
use ras::engine::{Done, EngineError, Outcome, RasEngine};
use ras::error_source::{ErrorSourceError, SourceId, SourceTarget};
use ras::event::RasEvent;
use ras::policy::{IgnoreReason, StopReason, SyncDelivery};
use ras::report::{ErrorCause, FoundBy, Origin};
use vm_memory::{Bytes, GuestAddress};

#[test]
fn sigbus_consumption_writes_the_record_and_asks_for_the_abort() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 4, &mem);
    // A 4 KiB page inside a poisoned 2 MiB huge page: si_addr_lsb = 21.
    let lost = g(RAM + 0x20_1000, 21);
    let out = e.handle(&sigbus(2, lost, 10), &mem).unwrap();
    assert_eq!(
        out,
        Outcome {
            events: vec![
                consumed_event(2, lost),
                written(2, SourceTarget::Sync { vcpu: 2 }, lost),
                poisoned(lost),
            ],
            abort: Some(2),
            abort_page: None,
            notify_async: false,
            stop: None,
            // The other 511 pages of the 2 MiB wait to be told.
            queued: true,
        }
    );
    // 4 vCPUs + async = 5 sources: 80 bytes of registers, blocks from
    // REGION + 128; vCPU 2's at REGION + 128 + 2 * 1024.
    assert_eq!(block(5, 2), REGION + 0x880);
    assert_block(&mem, REGION + 0x880, &recoverable(RAM + 0x20_0000, MASK_2M));
    // Its source is busy; the others are free and empty.
    for i in 0..5 {
        assert_eq!(read_u64(&mem, esa_register(i)), block(5, i), "ESA {i}");
        let free = u64::from(i != 2);
        assert_eq!(read_u64(&mem, ack_register(i)), free, "ack {i}");
        if i != 2 {
            assert_empty_block(&mem, block(5, i));
        }
    }
    assert!(e.poison().contains(GuestAddress(RAM + 0x3f_ffff)));
    assert!(!e.poison().contains(GuestAddress(RAM + 0x40_0000)));
    assert!(!e.poison().contains(GuestAddress(RAM + 0x1f_ffff)));
}

/// A lost 2 MiB page: the consuming vCPU's record names the page it
/// touched; the other 511 pages are told on the asynchronous source, never
/// by `handle` (a vCPU's thread), only by `service`: 6 pages a block (a
/// 1 KiB block holds the 20-byte header and 6 entries of 72 + 80 bytes),
/// the next block once the guest acknowledged the last. Expected bytes
/// from ACPI 6.5 Table 18.19 (block status: entry count in bits 4..13,
/// bit 2 multiple uncorrectable, bit 0 uncorrectable; data length at 12)
/// and UEFI 2.10 N.2.5 (the physical address 16 bytes into the memory
/// section, the mask at 24), read raw.
#[test]
fn a_lost_huge_page_is_told_page_by_page_on_the_async_source() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 1, &mem);
    let lost = g(RAM + 0x20_0000, 21);
    let report = sigbus_page(0, lost, g(RAM + 0x20_5000, 12), 0);
    let out = e.handle(&report, &mem).unwrap();
    assert!(out.queued && !out.notify_async);
    assert_block(&mem, block(2, 0), &recoverable(RAM + 0x20_5000, MASK_4K));
    // The asynchronous source (index 1) is untouched by the vCPU's call.
    assert_empty_block(&mem, block(2, 1));
    assert_eq!(read_u64(&mem, ack_register(1)), 1);

    // Nothing before 300 ms after the loss (the consumer's own
    // memory_failure() in the guest goes first).
    let early = e.service(&mem, 299).unwrap();
    assert!(early.events.is_empty() && early.queued && !early.notify_async);
    assert_empty_block(&mem, block(2, 1));

    let mut told = Vec::new();
    let mut blocks = 0;
    let mut t = 300;
    loop {
        let out = e.service(&mem, t).unwrap();
        if out.events.is_empty() {
            assert!(!out.queued && !out.notify_async, "done: {out:?}");
            break;
        }
        blocks += 1;
        assert!(out.notify_async, "block {blocks}");
        let first = read_u64(&mem, block(2, 1) + 20 + 72 + 16);
        assert_eq!(
            out.events,
            vec![written(1, SourceTarget::Async, g(first, 12))],
            "block {blocks}"
        );
        // Nothing more until the guest acknowledges.
        let again = e.service(&mem, t + 100).unwrap();
        assert!(again.events.is_empty() && !again.notify_async, "{again:?}");
        // Pages wait for every block but the last.
        assert_eq!(again.queued, blocks < 86, "block {blocks}");
        let raw = read(&mem, block(2, 1), 1024);
        let u32_at = |o: usize| u32::from_le_bytes(raw[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(raw[o..o + 8].try_into().unwrap());
        let n = (u32_at(0) >> 4 & 0x3ff) as usize;
        let multiple = if n > 1 { 0x4 } else { 0 };
        assert_eq!(u32_at(0), (n as u32) << 4 | multiple | 0x1, "block status");
        assert_eq!(u32_at(12) as usize, n * 152, "data length");
        assert_eq!(u32_at(16), 0, "recoverable");
        for k in 0..n {
            let entry = 20 + k * 152;
            assert_eq!(u32_at(entry + 16), 0, "entry severity");
            assert_eq!(raw[entry + 23], u8::from(k == 0), "primary flag");
            assert_eq!(&raw[entry + 64..entry + 72], &TIMESTAMP);
            assert_eq!(u64_at(entry + 72 + 24), MASK_4K);
            told.push(u64_at(entry + 72 + 16));
        }
        guest_ack(&mem, 2, 1);
        // Acknowledged, the next block still waits 25 ms after this one.
        if blocks < 86 {
            let paced = e.service(&mem, t + 24).unwrap();
            assert!(paced.events.is_empty() && paced.queued, "{paced:?}");
        }
        t += 25;
    }
    // 511 pages: 85 blocks of 6 and one of 1, each page once, in order.
    assert_eq!(blocks, 86);
    let expected: Vec<u64> = (0..512)
        .map(|i| RAM + 0x20_0000 + i * 0x1000)
        .filter(|pa| *pa != RAM + 0x20_5000)
        .collect();
    assert_eq!(told, expected);
}

/// With `async=off` the guest hears of a page only when it consumes it:
/// nothing waits (a reset forgets what waits: `engine_state.rs`).
#[test]
fn the_rest_of_a_lost_page_waits_only_with_an_async_source() {
    let mem = memory();
    let lost = g(RAM + 0x20_0000, 21);
    let mut e = engine(config(|c| c.async_mode = AsyncMode::Off), 1, &mem);
    let out = e.handle(&sigbus(0, lost, 0), &mem).unwrap();
    assert!(!out.queued);
    assert!(e.service(&mem, 10_000).unwrap().events.is_empty());

    let mut e = engine(RasConfig::default(), 1, &mem);
    assert!(e.handle(&sigbus(0, lost, 0), &mem).unwrap().queued);
    // A 4 KiB loss is told by its record alone.
    let mut e = engine(RasConfig::default(), 1, &mem);
    let out = e.handle(&sigbus(0, g(RAM + 0x1000, 12), 0), &mem).unwrap();
    assert!(!out.queued);
}

#[test]
fn sea_exit_without_address_follows_no_gpa() {
    let report = at(
        ErrorCause::Consumed {
            vcpu: 1,
            origin: Origin::SeaExit,
            granule: None,
            page: None,
            gva: Some(0xffff_8000_1000_0000),
        },
        0,
    );
    let event = RasEvent::Consumed {
        vcpu: 1,
        origin: Origin::SeaExit,
        granule: None,
        gva: Some(0xffff_8000_1000_0000),
    };
    let mem = memory();
    let mut e = engine(RasConfig::default(), 2, &mem);
    assert_eq!(
        e.handle(&report, &mem).unwrap(),
        Outcome {
            events: vec![event.clone()],
            abort: Some(1),
            ..Outcome::default()
        }
    );
    let mem = memory();
    let cfg = config(|c| c.no_gpa = NoGpaPolicy::Stop);
    let mut e = engine(cfg, 2, &mem);
    assert_eq!(
        e.handle(&report, &mem).unwrap(),
        Outcome {
            events: vec![event],
            stop: Some(StopReason::NoGpa { vcpu: 1 }),
            ..Outcome::default()
        }
    );
    // No record anywhere, every source free, nothing poisoned.
    for i in 0..3 {
        assert_empty_block(&mem, block(3, i));
        assert_eq!(read_u64(&mem, ack_register(i)), 1);
    }
    assert!(e.poison().is_empty());
}

#[test]
fn records_queue_until_the_guest_acks() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 2, &mem);
    let a = g(RAM + 0x1000, 12);
    let b = g(RAM + 0x5000, 12);
    e.handle(&sigbus(0, a, 0), &mem).unwrap();
    let out = e.handle(&sigbus(0, b, 1), &mem).unwrap();
    // Still an abort: the vCPU must not run past the poisoned load.
    assert_eq!(
        out,
        Outcome {
            events: vec![
                consumed_event(0, b),
                RasEvent::RecordQueued {
                    source: SourceId(0),
                    target: SourceTarget::Sync { vcpu: 0 },
                    depth: 1,
                },
                poisoned(b),
            ],
            abort: Some(0),
            queued: true,
            ..Outcome::default()
        }
    );
    // 3 sources: blocks from REGION + 64.
    let blk = REGION + 64;
    assert_block(&mem, blk, &recoverable(RAM + 0x1000, MASK_4K));
    // Nothing moves until the guest acks.
    assert_eq!(
        e.service(&mem, 0).unwrap(),
        Outcome {
            queued: true,
            ..Outcome::default()
        }
    );
    assert_block(&mem, blk, &recoverable(RAM + 0x1000, MASK_4K));
    guest_ack(&mem, 3, 0);
    assert_eq!(read_u64(&mem, ack_register(0)), 1);
    assert_eq!(
        e.service(&mem, 0).unwrap(),
        Outcome {
            events: vec![RasEvent::QueuedRecordWritten {
                source: SourceId(0)
            }],
            ..Outcome::default()
        }
    );
    assert_block(&mem, blk, &recoverable(RAM + 0x5000, MASK_4K));
    assert_eq!(read_u64(&mem, ack_register(0)), 0);
    // vCPU 1's source was never touched.
    assert_empty_block(&mem, REGION + 64 + 1024);
    assert_eq!(read_u64(&mem, ack_register(1)), 1);
}

/// Poison the VMM's own copy of guest memory found (a snapshot, a
/// migration, a device's I/O) is decided as the host's announcement, but
/// its event says who found it: `poison-found`, not `sigbus-ao`.
#[test]
fn poison_the_vmm_found_is_told_as_found_not_as_a_signal() {
    let a = g(RAM, 12);
    let outcome = |found_by| {
        let mem = memory();
        let mut e = engine(RasConfig::default(), 1, &mem);
        e.handle(
            &at(
                ErrorCause::Announced {
                    granule: a,
                    found_by,
                },
                0,
            ),
            &mem,
        )
        .unwrap()
    };
    let found = outcome(FoundBy::VmmCopy);
    let signalled = outcome(FoundBy::HostSignal);
    assert_eq!(
        found.events[0],
        RasEvent::Announced {
            granule: a,
            found_by: FoundBy::VmmCopy
        }
    );
    assert_eq!(found.events[0].kind().name(), "poison-found");
    assert_eq!(signalled.events[0].kind().name(), "sigbus-ao");
    // The rest is the same: the record on the async source, the page
    // poisoned, the source signalled.
    assert_eq!(found.events[1..], signalled.events[1..]);
    assert_eq!(
        found.events[1..],
        [written(1, SourceTarget::Async, a), poisoned(a)]
    );
    assert!(found.notify_async && signalled.notify_async);
}

#[test]
fn async_source_is_signalled_only_when_a_record_is_written() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 1, &mem);
    // 2 sources: the async one is source 1, block at REGION + 64 + 1024.
    let blk = REGION + 64 + 1024;
    let [a, b, c, d, x] = [0x1000, 0x2000, 0x3000, 0x4000, 0x5000].map(|o| g(RAM + o, 12));
    assert_eq!(
        e.handle(&ao(a, 0), &mem).unwrap(),
        Outcome {
            events: announced_and_written(a),
            notify_async: true,
            ..Outcome::default()
        }
    );
    assert_block(&mem, blk, &recoverable(RAM + 0x1000, MASK_4K));
    // Busy: queued, not signalled.
    assert_eq!(
        e.handle(&ao(b, 1), &mem).unwrap(),
        Outcome {
            events: vec![announced_event(b), queued_async(1), poisoned(b),],
            queued: true,
            ..Outcome::default()
        }
    );
    // Signalled when service writes it after the ack.
    guest_ack(&mem, 2, 1);
    assert_eq!(
        e.service(&mem, 0).unwrap(),
        Outcome {
            events: vec![queued_async_written()],
            notify_async: true,
            ..Outcome::default()
        }
    );
    assert_block(&mem, blk, &recoverable(RAM + 0x2000, MASK_4K));
    // c queued behind b; the guest acks b; the next report finds the
    // source free with c waiting: c is written (and signalled), the new
    // one queued.
    e.handle(&ao(c, 2), &mem).unwrap();
    guest_ack(&mem, 2, 1);
    assert_eq!(
        e.handle(&ao(d, 3), &mem).unwrap(),
        Outcome {
            events: vec![
                announced_event(d),
                queued_async_written(),
                queued_async(1),
                poisoned(d),
            ],
            notify_async: true,
            queued: true,
            ..Outcome::default()
        }
    );
    assert_block(&mem, blk, &recoverable(RAM + 0x3000, MASK_4K));
    // Already known poison: ignored, no record of its own; the service
    // that follows every report writes d, queued before, and signals it.
    guest_ack(&mem, 2, 1);
    assert_eq!(
        e.handle(&ao(a, 4), &mem).unwrap(),
        Outcome {
            events: vec![
                announced_event(a),
                RasEvent::Ignored {
                    reason: IgnoreReason::AlreadyPoisoned { granule: a }
                },
                queued_async_written(),
            ],
            notify_async: true,
            ..Outcome::default()
        }
    );
    assert_block(&mem, blk, &recoverable(RAM + 0x4000, MASK_4K));
    guest_ack(&mem, 2, 1);
    let out = e.handle(&ao(x, 5), &mem).unwrap();
    assert!(out.notify_async);
    assert_block(&mem, blk, &recoverable(RAM + 0x5000, MASK_4K));
}

#[test]
fn polled_and_disabled_async_sources_are_never_signalled() {
    let mem = memory();
    let cfg = config(|c| c.async_mode = AsyncMode::Polled);
    let mut e = engine(cfg, 1, &mem);
    let a = g(RAM, 12);
    assert_eq!(
        e.handle(&ao(a, 0), &mem).unwrap(),
        Outcome {
            events: announced_and_written(a),
            ..Outcome::default()
        }
    );
    assert_block(&mem, REGION + 64 + 1024, &recoverable(RAM, MASK_4K));
    e.handle(&ao(g(RAM + 0x1000, 12), 1), &mem).unwrap();
    guest_ack(&mem, 2, 1);
    let out = e.service(&mem, 0).unwrap();
    assert_eq!(out.events, [queued_async_written()]);
    assert!(!out.notify_async);

    let mem = memory();
    let cfg = config(|c| c.async_mode = AsyncMode::Off);
    let mut e = engine(cfg, 1, &mem);
    assert_eq!(
        e.handle(&ao(a, 0), &mem).unwrap(),
        Outcome {
            events: vec![announced_event(a), poisoned(a)],
            ..Outcome::default()
        }
    );
    assert_empty_block(&mem, REGION + 64 + 1024);
    assert_eq!(read_u64(&mem, ack_register(1)), 1);
    assert!(e.poison().contains(GuestAddress(RAM)));
}

#[test]
fn a_record_is_dropped_when_the_queue_is_full() {
    let mem = memory();
    let mut e = engine(config(|c| c.queue_depth = 1), 1, &mem);
    let [a, b, c] = [0, 0x1000, 0x2000].map(|o| g(RAM + o, 12));
    e.handle(&ao(a, 0), &mem).unwrap();
    e.handle(&ao(b, 1), &mem).unwrap();
    assert_eq!(
        e.handle(&ao(c, 2), &mem).unwrap(),
        Outcome {
            events: vec![
                announced_event(c),
                RasEvent::RecordDropped {
                    source: SourceId(1),
                    target: SourceTarget::Async,
                    granule: Some(c),
                },
                poisoned(c),
            ],
            queued: true,
            ..Outcome::default()
        }
    );
    // The guest still sees the first record; the lost one stays poisoned.
    assert_block(&mem, REGION + 64 + 1024, &recoverable(RAM, MASK_4K));
    assert!(e.poison().contains(GuestAddress(RAM + 0x2000)));
    // Only b comes after the ack.
    guest_ack(&mem, 2, 1);
    e.service(&mem, 0).unwrap();
    assert_block(
        &mem,
        REGION + 64 + 1024,
        &recoverable(RAM + 0x1000, MASK_4K),
    );
    guest_ack(&mem, 2, 1);
    assert_eq!(e.service(&mem, 0).unwrap(), Outcome::default());

    // queue_depth = 0: dropped whenever busy.
    let mem = memory();
    let mut e = engine(config(|c| c.queue_depth = 0), 1, &mem);
    e.handle(&sigbus(0, a, 0), &mem).unwrap();
    let out = e.handle(&sigbus(0, b, 1), &mem).unwrap();
    assert_eq!(
        out.events[1],
        RasEvent::RecordDropped {
            source: SourceId(0),
            target: SourceTarget::Sync { vcpu: 0 },
            granule: Some(b),
        }
    );
    assert_eq!((out.abort, out.queued), (Some(0), false));
}

#[test]
fn repeated_consumption_stops_the_vm() {
    let mem = memory();
    let cfg = config(|c| {
        c.storm_limit = 3;
        c.storm_window_ms = 1000;
    });
    let mut e = engine(cfg, 1, &mem);
    let lost = g(RAM + 0x20_0000, 21);
    for t in 0..3 {
        let out = e.handle(&sigbus(0, lost, t), &mem).unwrap();
        assert_eq!((out.abort, out.stop.clone()), (Some(0), None), "t={t}");
        guest_ack(&mem, 2, 0);
    }
    let before = read(&mem, REGION, REGION_LEN);
    let out = e.handle(&sigbus(0, lost, 3), &mem).unwrap();
    assert_eq!(
        out,
        Outcome {
            events: vec![consumed_event(0, lost)],
            stop: Some(StopReason::Storm {
                vcpu: 0,
                granule: Some(lost),
                count: 4,
                window_ms: 1000,
            }),
            queued: true,
            ..Outcome::default()
        }
    );
    // No fourth record: the region is as the guest left it.
    assert_eq!(read(&mem, REGION, REGION_LEN), before);
}

#[test]
fn poison_limit_stops_the_vm_after_telling_the_guest() {
    let mem = memory();
    let mut e = engine(config(|c| c.max_poisoned = 1), 2, &mem);
    let a = g(RAM, 12);
    let b = g(RAM + 0x8000, 12);
    e.handle(&sigbus(0, a, 0), &mem).unwrap();
    assert_eq!(
        e.handle(&sigbus(1, b, 1), &mem).unwrap(),
        Outcome {
            events: vec![
                consumed_event(1, b),
                written(1, SourceTarget::Sync { vcpu: 1 }, b),
                RasEvent::PoisonListFull {
                    granule: b,
                    limit: 1
                },
            ],
            abort: Some(1),
            stop: Some(StopReason::PoisonLimit { limit: 1 }),
            ..Outcome::default()
        }
    );
    assert_block(
        &mem,
        REGION + 64 + 1024,
        &recoverable(RAM + 0x8000, MASK_4K),
    );
    assert_eq!(e.poison().iter().collect::<Vec<_>>(), [a]);
}

fn raw_entry(len: usize) -> DataEntry {
    DataEntry::new(
        Section::Raw(RawSection::new(
            Guid::from_fields(0x1234_5678, 0x9abc, 0xdef0, [1, 2, 3, 4, 5, 6, 7, 8]),
            vec![0x5a; len],
        )),
        Severity::Informational,
    )
}

#[test]
fn check_injection_refuses_what_cannot_be_delivered() {
    let mem = memory();
    let e = engine(RasConfig::default(), 4, &mem);
    let before = read(&mem, REGION, REGION_LEN);
    assert!(matches!(
        e.check_injection(&injected(SourceTarget::Sync { vcpu: 4 }, raw_entry(8))),
        Err(EngineError::NoSuchVcpu {
            vcpu: 4,
            num_vcpus: 4
        })
    ));
    e.check_injection(&injected(SourceTarget::Sync { vcpu: 3 }, raw_entry(8)))
        .unwrap();
    e.check_injection(&injected(SourceTarget::Async, raw_entry(8)))
        .unwrap();
    // Host reports are not injections: nothing to check.
    e.check_injection(&sigbus(9, g(RAM, 12), 0)).unwrap();

    // Checking writes nothing.
    assert_eq!(read(&mem, REGION, REGION_LEN), before);

    let off = RasEngine::new(
        config(|c| c.async_mode = AsyncMode::Off),
        GuestAddress(REGION),
        2,
    )
    .unwrap();
    assert!(matches!(
        off.check_injection(&injected(SourceTarget::Async, raw_entry(8))),
        Err(EngineError::AsyncDisabled)
    ));
    off.check_injection(&injected(SourceTarget::Sync { vcpu: 1 }, raw_entry(8)))
        .unwrap();

    // 256-byte blocks: header 20 + data entry header 72 + body. 164 bytes
    // of body fill it exactly, 165 are one too many.
    let small = RasEngine::new(config(|c| c.block_size = 256), GuestAddress(REGION), 1).unwrap();
    small
        .check_injection(&injected(SourceTarget::Async, raw_entry(164)))
        .unwrap();
    assert!(matches!(
        small.check_injection(&injected(SourceTarget::Sync { vcpu: 0 }, raw_entry(165))),
        Err(EngineError::RecordTooLarge {
            len: 257,
            block_len: 256
        })
    ));
}

#[test]
fn injected_memory_error_is_written_as_asked_and_not_poisoned() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 2, &mem);
    let page = g(RAM + 0x4000, 12);
    let entry = DataEntry::new(
        Section::Memory(MemoryErrorSection::for_granule(&page)),
        Severity::Corrected,
    )
    .with_flags(EntryFlags(0x09));
    assert_eq!(
        e.handle(
            &injected(SourceTarget::Sync { vcpu: 1 }, entry.clone()),
            &mem
        )
        .unwrap(),
        Outcome {
            events: vec![
                RasEvent::InjectRequested {
                    target: SourceTarget::Sync { vcpu: 1 },
                    section: "memory",
                },
                RasEvent::RecordWritten {
                    source: SourceId(1),
                    target: SourceTarget::Sync { vcpu: 1 },
                    granule: Some(page),
                    severity: Severity::Corrected,
                },
            ],
            abort: Some(1),
            ..Outcome::default()
        }
    );
    // Corrected (2): block status bit 1, flags primary + threshold
    // exceeded, timestamp set when written.
    assert_block(
        &mem,
        REGION + 64 + 1024,
        &memory_block_bytes(RAM + 0x4000, MASK_4K, 2, 0x09),
    );
    assert!(e.poison().is_empty());

    // The asynchronous source: signalled (GED), no abort.
    let out = e
        .handle(&injected(SourceTarget::Async, entry), &mem)
        .unwrap();
    assert_eq!((out.abort, out.notify_async, out.stop), (None, true, None));
    assert_block(
        &mem,
        REGION + 64 + 2048,
        &memory_block_bytes(RAM + 0x4000, MASK_4K, 2, 0x09),
    );
}

#[test]
fn shared_sea_source_serves_every_vcpu() {
    let mem = memory();
    let mut e = engine(config(|c| c.sea_sources = SeaSources::Shared), 4, &mem);
    assert_eq!(e.layout().num_sync(), 1);
    let a = g(RAM, 12);
    let b = g(RAM + 0x1000, 12);
    let out = e.handle(&sigbus(3, a, 0), &mem).unwrap();
    assert_eq!(out.events[1], written(0, SourceTarget::Sync { vcpu: 3 }, a));
    let out = e.handle(&sigbus(1, b, 1), &mem).unwrap();
    assert_eq!(
        out.events[1],
        RasEvent::RecordQueued {
            source: SourceId(0),
            target: SourceTarget::Sync { vcpu: 1 },
            depth: 1,
        }
    );
    assert_eq!(out.abort, Some(1));
    // 2 sources: the shared block at REGION + 64.
    assert_block(&mem, REGION + 64, &recoverable(RAM, MASK_4K));
    let hest = e.hest().unwrap();
    assert_eq!(u32::from_le_bytes(hest[36..40].try_into().unwrap()), 2);
}

#[test]
fn consumption_on_a_vcpu_without_a_source_fails_the_record_only() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 2, &mem);
    let before = read(&mem, REGION, REGION_LEN);
    let out = e.handle(&sigbus(9, g(RAM, 12), 0), &mem).unwrap();
    assert_eq!(
        out.events[1],
        RasEvent::RecordFailed {
            target: SourceTarget::Sync { vcpu: 9 },
            error: "No error source for sync/9".to_string(),
        }
    );
    assert_eq!(read(&mem, REGION, REGION_LEN), before);
}

#[test]
fn tampered_esa_register_is_restored_and_reported() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 1, &mem);
    // The guest points source 0's ESA register into its RAM.
    mem.write_slice(&RAM.to_le_bytes(), GuestAddress(esa_register(0)))
        .unwrap();
    let page = g(RAM + 0x1000, 12);
    let out = e.handle(&sigbus(0, page, 0), &mem).unwrap();
    assert_eq!(
        out.events,
        vec![
            consumed_event(0, page),
            written(0, SourceTarget::Sync { vcpu: 0 }, page),
            poisoned(page),
            RasEvent::RegionTampered { count: 1 },
        ]
    );
    assert_eq!(read_u64(&mem, esa_register(0)), REGION + 64);
    assert_block(&mem, REGION + 64, &recoverable(RAM + 0x1000, MASK_4K));
    // Nothing was written where the guest pointed.
    assert_eq!(read(&mem, RAM, 4096), vec![0; 4096]);
}

#[test]
fn engine_refuses_work_before_init_and_bad_setups() {
    let mem = memory();
    let mut e = RasEngine::new(RasConfig::default(), GuestAddress(REGION), 1).unwrap();
    assert!(matches!(
        e.handle(&sigbus(0, g(RAM, 12), 0), &mem),
        Err(EngineError::NotInitialized)
    ));
    assert!(matches!(
        e.service(&mem, 0),
        Err(EngineError::NotInitialized)
    ));
    assert!(matches!(
        RasEngine::new(RasConfig::default(), GuestAddress(REGION + 0x800), 1),
        Err(EngineError::ErrorSource(ErrorSourceError::BadBase(
            0x0900_0800
        )))
    ));
    for sea_sources in [SeaSources::PerVcpu, SeaSources::Shared] {
        let cfg = config(|c| c.sea_sources = sea_sources);
        assert!(matches!(
            RasEngine::new(cfg, GuestAddress(REGION), 0),
            Err(EngineError::NoVcpus)
        ));
    }
    assert!(matches!(
        RasEngine::new(config(|c| c.block_size = 7), GuestAddress(REGION), 1),
        Err(EngineError::Config(ConfigError::OutOfRange {
            key: "block_size",
            value: 7,
            ..
        }))
    ));
    // A region outside guest memory.
    let mut far = RasEngine::new(RasConfig::default(), GuestAddress(0x1_0000_0000), 1).unwrap();
    assert!(matches!(
        far.init(&mem),
        Err(EngineError::ErrorSource(
            ErrorSourceError::RegionNotInMemory { .. }
        ))
    ));
}

#[test]
fn hest_describes_the_layout() {
    let e = RasEngine::new(RasConfig::default(), GuestAddress(REGION), 3).unwrap();
    assert_eq!(e.layout().total_len(), 8192);
    let hest = e.hest().unwrap();
    assert_eq!(&hest[..4], b"HEST");
    // Error source count at offset 36: 3 SEA + 1 asynchronous.
    assert_eq!(u32::from_le_bytes(hest[36..40].try_into().unwrap()), 4);
    let u16_at = |o: usize| u16::from_le_bytes(hest[o..o + 2].try_into().unwrap());
    let u32_at = |o: usize| u32::from_le_bytes(hest[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(hest[o..o + 8].try_into().unwrap());
    // GHESv2 entries of 92 bytes from offset 40 (ACPI 6.5 Table 18.38).
    for (i, notification) in [(0u64, 8u8), (1, 8), (2, 8), (3, 7)] {
        let entry = 40 + 92 * i as usize;
        assert_eq!(u16_at(entry), 10, "type");
        assert_eq!(u64::from(u16_at(entry + 2)), i, "source id");
        assert_eq!(u64_at(entry + 24), esa_register(i));
        assert_eq!(hest[entry + 32], notification);
        assert_eq!(u32_at(entry + 60), 1024);
        assert_eq!(u64_at(entry + 68), ack_register(i));
        assert_eq!(u64_at(entry + 76), 0xffff_fffe);
        assert_eq!(u64_at(entry + 84), 1);
    }
    assert_eq!(hest.len(), 40 + 4 * 92);
    // Polled: the asynchronous source's notification is type 0 with the
    // interval.
    let cfg = config(|c| {
        c.async_mode = AsyncMode::Polled;
        c.poll_interval_ms = 250;
    });
    let e = RasEngine::new(cfg, GuestAddress(REGION), 1).unwrap();
    let hest = e.hest().unwrap();
    let entry = 40 + 92;
    assert_eq!(hest[entry + 32], 0);
    assert_eq!(
        u32::from_le_bytes(hest[entry + 36..entry + 40].try_into().unwrap()),
        250
    );
}

#[test]
fn finishing_an_outcome_orders_the_events_and_stops_on_a_missed_abort() {
    let consumed = consumed_event(1, g(0x4000_3000, 12));
    let outcome = |abort: Option<u32>, notify_async: bool, stop: Option<StopReason>| Outcome {
        events: vec![consumed.clone()],
        abort,
        abort_page: None,
        notify_async,
        stop,
        queued: false,
    };
    let injected = |vcpu| RasEvent::AbortInjected {
        vcpu,
        abort: "data abort".to_string(),
    };
    let failed = |vcpu, error: &str| RasEvent::AbortFailed {
        vcpu,
        error: error.to_string(),
    };
    let stopped = |reason: StopReason| RasEvent::VmStopped { reason };

    // Nothing asked: the engine's events as they are.
    assert_eq!(
        outcome(None, false, None).finish(&[]),
        (vec![consumed.clone()], None)
    );
    // The abort taken, the source signalled: in that order, whatever the
    // order of the answers.
    assert_eq!(
        outcome(Some(1), true, None)
            .finish(&[Done::Notified, Done::Abort("data abort".to_string())]),
        (
            vec![consumed.clone(), injected(1), RasEvent::AsyncNotified],
            None
        )
    );
    // An abort that failed, or that nobody tried, stops the VM.
    let abort_failed = StopReason::AbortFailed { vcpu: 1 };
    assert_eq!(
        outcome(Some(1), false, None).finish(&[Done::AbortFailed("EINVAL".to_string())]),
        (
            vec![
                consumed.clone(),
                failed(1, "EINVAL"),
                stopped(abort_failed.clone())
            ],
            Some(abort_failed.clone())
        )
    );
    assert_eq!(
        outcome(Some(1), false, None).finish(&[Done::Notified]),
        (
            vec![
                consumed.clone(),
                failed(1, "not attempted"),
                stopped(abort_failed.clone())
            ],
            Some(abort_failed)
        )
    );
    // A failed notification is reported; the guest still finds the record
    // when it polls or takes the next one, so the VM runs on.
    assert_eq!(
        outcome(None, true, None).finish(&[Done::NotifyFailed("EBADF".to_string())]),
        (
            vec![
                consumed.clone(),
                RasEvent::NotifyFailed {
                    error: "EBADF".to_string()
                }
            ],
            None
        )
    );
    // The engine's own stop comes last and is kept over an abort failure.
    let storm = StopReason::Storm {
        vcpu: 1,
        granule: Some(g(0x4000_3000, 12)),
        count: 17,
        window_ms: 1000,
    };
    assert_eq!(
        outcome(Some(1), false, Some(storm.clone())).finish(&[]),
        (
            vec![consumed, failed(1, "not attempted"), stopped(storm.clone())],
            Some(storm)
        )
    );
}

/// An engine whose vCPUs learn the address from the abort itself (x86
/// machine checks): only the asynchronous source exists.
fn machine_check_engine(vcpus: u32, mem: &vm_memory::GuestMemoryMmap) -> RasEngine {
    let mut e = RasEngine::with_sync_delivery(
        RasConfig::default(),
        GuestAddress(REGION),
        vcpus,
        SyncDelivery::MachineCheck,
    )
    .unwrap();
    e.init(mem).unwrap();
    e
}

#[test]
fn machine_check_consumption_names_the_page_and_writes_no_record() {
    let mem = memory();
    let mut e = machine_check_engine(4, &mem);
    // One source, the asynchronous one: its registers at REGION, its block
    // at REGION + 64 (ACPI 6.5 18.3.2.8: one GHESv2 entry, GPIO notification
    // = 7, ACPI 6.5 Table 18.14, at byte 32 of the entry, after the
    // 36-byte header and the count).
    assert_eq!(e.layout().num_sources(), 1);
    let hest = e.hest().unwrap();
    assert_eq!(hest.len(), 40 + 92);
    assert_eq!(u32::from_le_bytes(hest[36..40].try_into().unwrap()), 1);
    assert_eq!(hest[40 + 32], 7);
    let page = g(RAM + 0x3000, 12);
    let report = sigbus_page(1, page, page, 10);
    assert_eq!(
        e.handle(&report, &mem).unwrap(),
        Outcome {
            events: vec![consumed_event(1, page), poisoned(page)],
            abort: Some(1),
            abort_page: Some(page),
            ..Outcome::default()
        }
    );
    assert_empty_block(&mem, REGION + 64);
    assert_eq!(read_u64(&mem, ack_register(0)), 1);
    assert!(e.poison().covering(&page).is_some());
}

#[test]
fn machine_check_in_a_lost_huge_page_names_the_accessed_page() {
    let mem = memory();
    let mut e = machine_check_engine(2, &mem);
    let lost = g(RAM + 0x20_0000, 21);
    let page = g(RAM + 0x20_5000, 12);
    let report = sigbus_page(0, lost, page, 10);
    let out = e.handle(&report, &mem).unwrap();
    assert_eq!(out.abort, Some(0));
    assert_eq!(out.abort_page, Some(page));
    // The other 511 pages are told through the asynchronous source later.
    assert!(out.queued);
    // Without the accessed page, a huge granule names no page: the VMM
    // cannot make a machine check for it.
    let mut e = machine_check_engine(2, &mem);
    let out = e.handle(&sigbus(0, lost, 10), &mem).unwrap();
    assert_eq!(out.abort, Some(0));
    assert_eq!(out.abort_page, None);
}

#[test]
fn machine_check_vms_refuse_synchronous_injections() {
    let mem = memory();
    let mut e = machine_check_engine(2, &mem);
    let entry = DataEntry::new(
        Section::Memory(MemoryErrorSection {
            validation_bits: 0x4006,
            physical_address: RAM,
            physical_address_mask: MASK_4K,
            error_type: 3,
            ..Default::default()
        }),
        Severity::Recoverable,
    );
    let sync = injected(SourceTarget::Sync { vcpu: 0 }, entry.clone());
    assert!(matches!(
        e.check_injection(&sync),
        Err(EngineError::NoSyncSource)
    ));
    let out = e.handle(&sync, &mem).unwrap();
    assert!(out.events.contains(&RasEvent::Ignored {
        reason: IgnoreReason::NoSyncSource
    }));
    assert_eq!(out.abort, None);
    // The asynchronous source takes it.
    let asynchronous = injected(SourceTarget::Async, entry);
    e.check_injection(&asynchronous).unwrap();
    let out = e.handle(&asynchronous, &mem).unwrap();
    assert!(out.notify_async);
}
