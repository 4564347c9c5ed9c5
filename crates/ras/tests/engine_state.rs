// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! The engine's state across a reboot, a snapshot and a restore, on real
//! guest memory (see `engine_flow.rs` for the conventions: addresses from
//! the region layout of `error_source`, bytes from the specifications).

mod common;

use common::*;
use ras::config::{AsyncMode, RasConfig};
use ras::engine::{EngineError, RasEngine, RasSnapshot, Reset};
use ras::error_source::{SourceId, SourceTarget};
use ras::event::RasEvent;
use ras::poison::PoisonError;
use vm_memory::{Bytes, GuestAddress};

#[test]
fn reset_returns_the_poison_and_reinitializes_the_region() {
    let mem = memory();
    let mut e = engine(config(|c| c.storm_limit = 1), 1, &mem);
    let huge = g(RAM + 0x20_0000, 21);
    let page = g(RAM + 0x1000, 12);
    e.handle(&sigbus(0, huge, 0), &mem).unwrap();
    e.handle(&ao(page, 1), &mem).unwrap();
    assert_eq!(
        e.reset(&mem).unwrap(),
        Reset {
            // Address order.
            repair: vec![page, huge],
            events: vec![
                RasEvent::PoisonRepaired { granule: page },
                RasEvent::PoisonRepaired { granule: huge },
            ],
        }
    );
    assert!(e.poison().is_empty());
    for i in 0..2 {
        assert_eq!(read_u64(&mem, esa_register(i)), block(2, i));
        assert_eq!(read_u64(&mem, ack_register(i)), 1);
        assert_empty_block(&mem, block(2, i));
    }
    // The storm history is gone: the same granule again (storm_limit = 1,
    // within the window) is a first consumption, not a storm.
    let out = e.handle(&sigbus(0, huge, 2), &mem).unwrap();
    assert_eq!((out.abort, out.stop), (Some(0), None));
    assert_block(&mem, block(2, 0), &recoverable(RAM + 0x20_0000, MASK_2M));
}

/// The rest of a lost huge page waits for the guest's memory-failure
/// queue (`engine_flow.rs`); a reset forgets it: the rebooted guest hears
/// of the page when it consumes it.
#[test]
fn reset_forgets_the_rest_of_a_lost_page() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 1, &mem);
    assert!(
        e.handle(&sigbus(0, g(RAM + 0x20_0000, 21), 0), &mem)
            .unwrap()
            .queued
    );
    e.reset(&mem).unwrap();
    let out = e.service(&mem, 10_000).unwrap();
    assert!(out.events.is_empty() && !out.queued, "{out:?}");
}

#[test]
fn snapshot_restore_redelivers_the_unacknowledged_record() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 2, &mem);
    let huge = g(RAM + 0x20_0000, 21);
    let page = g(RAM, 12);
    // vCPU 1's record stays in flight; vCPU 0's is read and acked.
    e.handle(&sigbus(1, huge, 0), &mem).unwrap();
    e.handle(&sigbus(0, page, 0), &mem).unwrap();
    guest_ack(&mem, 3, 0);
    let json = serde_json::to_string(&e.snapshot()).unwrap();

    // The restored guest's memory: a copy, with the guest's leftovers in
    // the acked block.
    let mem2 = memory();
    mem2.write_slice(&read(&mem, REGION, REGION_LEN), GuestAddress(REGION))
        .unwrap();
    let mut r = RasEngine::new(RasConfig::default(), GuestAddress(REGION), 2).unwrap();
    r.restore(serde_json::from_str(&json).unwrap(), &mem2)
        .unwrap();
    assert_eq!(r.poison().iter().collect::<Vec<_>>(), [page, huge]);
    // 3 sources: vCPU 1's block at REGION + 64 + 1024, same bytes, busy.
    assert_block(&mem2, REGION + 1088, &recoverable(RAM + 0x20_0000, MASK_2M));
    assert_eq!(read_u64(&mem2, ack_register(1)), 0);
    // The acked one: reset, free.
    assert_empty_block(&mem2, REGION + 64);
    assert_eq!(read_u64(&mem2, ack_register(0)), 1);
    assert_empty_block(&mem2, REGION + 2112);
    for i in 0..3 {
        assert_eq!(read_u64(&mem2, esa_register(i)), block(3, i));
    }
    // It works without init: vCPU 0 is written, vCPU 1 queued behind the
    // re-delivered record.
    let next = g(RAM + 0x1_0000, 12);
    let out = r.handle(&sigbus(0, next, 5), &mem2).unwrap();
    assert_eq!(
        out.events[1],
        written(0, SourceTarget::Sync { vcpu: 0 }, next)
    );
    assert_block(&mem2, REGION + 64, &recoverable(RAM + 0x1_0000, MASK_4K));
    let out = r
        .handle(&sigbus(1, g(RAM + 0x2_0000, 12), 6), &mem2)
        .unwrap();
    assert!(
        matches!(
            out.events[1],
            RasEvent::RecordQueued {
                source: SourceId(1),
                depth: 1,
                ..
            }
        ),
        "{:?}",
        out.events
    );
}

#[test]
fn restore_refuses_another_configuration_and_a_raised_poison_bound() {
    let mem = memory();
    let mut e = engine(config(|c| c.max_poisoned = 1), 2, &mem);
    e.handle(&sigbus(1, g(RAM, 12), 0), &mem).unwrap();
    let snapshot = e.snapshot();
    let before = read(&mem, REGION, REGION_LEN);

    let other = config(|c| c.async_mode = AsyncMode::Off);
    let mut r = RasEngine::new(other, GuestAddress(REGION), 2).unwrap();
    let err = r.restore(snapshot.clone(), &mem).unwrap_err();
    assert!(
        matches!(
            &err,
            EngineError::ConfigMismatch { snapshot: s, running }
                if s.async_mode == AsyncMode::Gpio && running.async_mode == AsyncMode::Off
        ),
        "{err:?}"
    );
    // Refused before touching guest memory.
    assert_eq!(read(&mem, REGION, REGION_LEN), before);

    // A snapshot cannot raise the poison bound: a list of two under a
    // limit of 5 is refused by an engine whose max_poisoned is 1.
    let mut v = serde_json::to_value(&snapshot).unwrap();
    v["poison"] = serde_json::json!({
        "limit": 5,
        "granules": [{"base": RAM, "shift": 12}, {"base": RAM + 0x1000, "shift": 12}],
    });
    let raised: RasSnapshot = serde_json::from_value(v).unwrap();
    let mut r = RasEngine::new(config(|c| c.max_poisoned = 1), GuestAddress(REGION), 2).unwrap();
    assert!(matches!(
        r.restore(raised, &mem),
        Err(EngineError::Poison(PoisonError::TooMany {
            len: 2,
            limit: 1
        }))
    ));
}
