// SPDX-License-Identifier: Apache-2.0
//! The engine end to end on real guest memory (`GuestMemoryMmap`): reports
//! become CPER bytes in the guest's error status blocks, ack-register
//! changes, poison entries and requests to the VMM. The VMM side is a
//! recording [`Platform`] (the boundary the engine defines).

use std::sync::atomic::Ordering;

use ras::config::{AsyncMode, RasConfig, SeaSources};
use ras::cper::arm::info_validation;
use ras::cper::{
    ArmErrorInfo, ArmErrorTypes, ArmProcessorSection, EntryFlags, Section, Severity, StatusBlock,
};
use ras::engine::{EngineError, Platform, RasEngine};
use ras::error_source::SourceId;
use ras::event::RasEvent;
use ras::policy::{SourceTarget, StopReason};
use ras::report::{
    AbortKind, ErrorCause, ErrorReport, GpaGranule, InjectPayload, InjectTarget, SyncOrigin,
};
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryMmap};

const RAM: u64 = 0x4000_0000;
const RAM_LEN: usize = 4 << 20;
const REGION: u64 = 0x0900_0000;
const REGION_LEN: usize = 256 << 10;
const UNIX: u64 = 1_763_000_000;

#[derive(Debug, PartialEq, Eq)]
enum Call {
    Inject(u32, AbortKind, Option<u64>),
    Notify,
    Stop(StopReason),
}

#[derive(Default)]
struct Recorder {
    calls: Vec<Call>,
    events: Vec<RasEvent>,
    fail_inject: bool,
}

impl Platform for Recorder {
    fn inject_abort(&mut self, vcpu: u32, kind: AbortKind, far: Option<u64>) -> Result<(), String> {
        if self.fail_inject {
            return Err("KVM_SET_VCPU_EVENTS: EINVAL".into());
        }
        self.calls.push(Call::Inject(vcpu, kind, far));
        Ok(())
    }
    fn notify_async(&mut self) -> Result<(), String> {
        self.calls.push(Call::Notify);
        Ok(())
    }
    fn stop_vm(&mut self, reason: &StopReason) {
        self.calls.push(Call::Stop(reason.clone()));
    }
    fn emit(&mut self, event: &RasEvent) {
        self.events.push(event.clone());
    }
}

fn memory() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[
        (GuestAddress(REGION), REGION_LEN),
        (GuestAddress(RAM), RAM_LEN),
    ])
    .unwrap()
}

fn engine(cfg: RasConfig, vcpus: u32, mem: &GuestMemoryMmap) -> RasEngine {
    let mut e = RasEngine::new(cfg, REGION, vcpus).unwrap();
    assert!(e.layout().total_len() <= REGION_LEN as u64);
    e.init(mem).unwrap();
    e
}

fn g(base: u64, shift: u8) -> GpaGranule {
    GpaGranule::containing(base, shift).unwrap()
}

fn sigbus(vcpu: u32, granule: GpaGranule, t: u64) -> ErrorReport {
    ErrorReport {
        cause: ErrorCause::SyncConsumption {
            vcpu,
            origin: SyncOrigin::Sigbus,
            abort: AbortKind::Unknown,
            granule: Some(granule),
            gva: None,
        },
        unix_time: UNIX,
        monotonic_ms: t,
    }
}

fn ao(granule: GpaGranule, t: u64) -> ErrorReport {
    ErrorReport {
        cause: ErrorCause::HostActionOptional { granule },
        unix_time: UNIX,
        monotonic_ms: t,
    }
}

fn ack_value(e: &RasEngine, mem: &GuestMemoryMmap, s: SourceId) -> u64 {
    let a = e.layout().ack_register(s).unwrap();
    mem.load(GuestAddress(a), Ordering::Acquire).unwrap()
}

/// The block bytes of source `s`, decoded.
fn block(e: &RasEngine, mem: &GuestMemoryMmap, s: SourceId) -> Option<StatusBlock> {
    let addr = e.layout().block(s).unwrap();
    let mut buf = vec![0u8; e.layout().block_len() as usize];
    mem.read_slice(&mut buf, GuestAddress(addr)).unwrap();
    if buf[..4] == [0; 4] {
        return None;
    }
    Some(StatusBlock::decode(&buf).unwrap())
}

/// What the guest's GHES driver does after reading a record: clear
/// block_status, then set bit 0 of the ack register (preserve ~1, write 1).
fn guest_ack(e: &RasEngine, mem: &GuestMemoryMmap, s: SourceId) {
    let b = e.layout().block(s).unwrap();
    mem.store(0u32, GuestAddress(b), Ordering::Release).unwrap();
    let a = e.layout().ack_register(s).unwrap();
    let v: u64 = mem.load(GuestAddress(a), Ordering::Acquire).unwrap();
    mem.store((v & !1) | 1, GuestAddress(a), Ordering::Release)
        .unwrap();
}

#[test]
fn sync_consumption_reaches_guest_memory_and_aborts() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 4, &mem);
    let mut p = Recorder::default();
    let lost = g(RAM + 0x20_0000, 21);
    // The host reports a 4K page inside a poisoned 2M huge page: the SIGBUS
    // carries si_addr_lsb = 21, the edge builds the 2M granule.
    let out = e.handle(&sigbus(2, lost, 10), &mem, &mut p).unwrap();

    // Bytes in vCPU 2's block: exactly the recoverable memory error for the
    // whole 2M, with the precise timestamp.
    let s = e.layout().sync_source(2).unwrap();
    let want = StatusBlock::memory_error(&lost, Severity::Recoverable, UNIX);
    let addr = e.layout().block(s).unwrap();
    let mut raw = vec![0u8; want.encoded_len()];
    mem.read_slice(&mut raw, GuestAddress(addr)).unwrap();
    assert_eq!(raw, want.encode());
    assert_eq!(block(&e, &mem, s), Some(want));
    // The source is now busy; the other vCPUs' sources are untouched.
    assert_eq!(ack_value(&e, &mem, s), 0);
    for v in [0, 1, 3] {
        let o = e.layout().sync_source(v).unwrap();
        assert_eq!(ack_value(&e, &mem, o), 1);
        assert_eq!(block(&e, &mem, o), None);
    }
    assert_eq!(block(&e, &mem, e.layout().async_source()), None);
    // The ESA register points at the block (written by init, kept).
    let esa: u64 = mem
        .load(
            GuestAddress(e.layout().esa_register(s).unwrap()),
            Ordering::Acquire,
        )
        .unwrap();
    assert_eq!(esa, addr);

    // The VMM was asked for a data abort on vCPU 2, after the record.
    assert_eq!(p.calls, vec![Call::Inject(2, AbortKind::Data, None)]);
    assert_eq!(out.stopped, None);
    assert_eq!(
        out.events,
        vec![
            RasEvent::SigbusAr {
                vcpu: 2,
                granule: Some(lost)
            },
            RasEvent::RecordWritten {
                source: SourceTarget::Sync { vcpu: 2 },
                granule: Some(lost),
                severity: Severity::Recoverable
            },
            RasEvent::PagePoisoned {
                granule: lost,
                absorbed: 0
            },
            RasEvent::AbortInjected {
                vcpu: 2,
                kind: AbortKind::Data,
                far: None
            },
        ]
    );
    assert_eq!(p.events, out.events);
    assert!(e.poison().contains(RAM + 0x3f_ffff));
    assert!(!e.poison().contains(RAM + 0x40_0000));
    let c = e.counters();
    assert_eq!(
        (
            c.sigbus_ar,
            c.records_written,
            c.pages_poisoned,
            c.aborts_injected
        ),
        (1, 1, 1, 1)
    );
}

#[test]
fn second_error_queues_until_the_guest_acks() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 2, &mem);
    let mut p = Recorder::default();
    let s = e.layout().sync_source(0).unwrap();
    let a = g(RAM + 0x1000, 12);
    let b = g(RAM + 0x5000, 12);
    e.handle(&sigbus(0, a, 0), &mem, &mut p).unwrap();
    let out = e.handle(&sigbus(0, b, 1), &mem, &mut p).unwrap();
    assert!(out.events.contains(&RasEvent::RecordQueued {
        source: SourceTarget::Sync { vcpu: 0 },
        depth: 1
    }));
    // Still aborted: the vCPU must not run past the poisoned load.
    assert_eq!(
        p.calls,
        vec![
            Call::Inject(0, AbortKind::Data, None),
            Call::Inject(0, AbortKind::Data, None)
        ]
    );
    assert_eq!(
        block(&e, &mem, s).unwrap(),
        StatusBlock::memory_error(&a, Severity::Recoverable, UNIX)
    );
    // Nothing changes until the ack.
    assert!(e.service(&mem, &mut p).unwrap().is_empty());
    guest_ack(&e, &mem, s);
    let ev = e.service(&mem, &mut p).unwrap();
    assert_eq!(
        ev,
        vec![RasEvent::QueuedRecordWritten {
            source: SourceTarget::Sync { vcpu: 0 }
        }]
    );
    assert_eq!(
        block(&e, &mem, s).unwrap(),
        StatusBlock::memory_error(&b, Severity::Recoverable, UNIX)
    );
    assert_eq!(ack_value(&e, &mem, s), 0);
}

#[test]
fn action_optional_goes_to_the_async_source() {
    for mode in [AsyncMode::Gpio, AsyncMode::Polled, AsyncMode::Off] {
        let mem = memory();
        let cfg = RasConfig {
            async_mode: mode,
            ..RasConfig::default()
        };
        let mut e = engine(cfg, 1, &mem);
        let mut p = Recorder::default();
        let lost = g(RAM + 0x3000, 12);
        e.handle(&ao(lost, 0), &mem, &mut p).unwrap();
        let s = e.layout().async_source();
        let want = (mode != AsyncMode::Off)
            .then(|| StatusBlock::memory_error(&lost, Severity::Recoverable, UNIX));
        assert_eq!(block(&e, &mem, s), want, "{mode:?}");
        let notified = usize::from(mode == AsyncMode::Gpio);
        assert_eq!(p.calls.len(), notified, "{mode:?}");
        assert!(e.poison().contains(lost.base()));
        // Already known: nothing more is written or signalled.
        guest_ack(&e, &mem, s);
        let out = e.handle(&ao(lost, 1), &mem, &mut p).unwrap();
        assert_eq!(out.events.len(), 2, "{:?}", out.events);
        assert!(matches!(out.events[1], RasEvent::Ignored { .. }));
        assert_eq!(block(&e, &mem, s), None);
        assert_eq!(p.calls.len(), notified);
    }
}

#[test]
fn queued_async_record_is_signalled_when_written() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 1, &mem);
    let mut p = Recorder::default();
    e.handle(&ao(g(RAM, 12), 0), &mem, &mut p).unwrap();
    e.handle(&ao(g(RAM + 0x1000, 12), 1), &mem, &mut p).unwrap();
    // One notification: the second record waits for the ack.
    assert_eq!(p.calls, vec![Call::Notify]);
    assert!(e.has_queued());
    guest_ack(&e, &mem, e.layout().async_source());
    e.service(&mem, &mut p).unwrap();
    assert_eq!(p.calls, vec![Call::Notify, Call::Notify]);
    assert!(!e.has_queued());
    assert_eq!(
        block(&e, &mem, e.layout().async_source()),
        Some(StatusBlock::memory_error(
            &g(RAM + 0x1000, 12),
            Severity::Recoverable,
            UNIX
        ))
    );
}

#[test]
fn repeated_consumption_stops_the_vm() {
    let mem = memory();
    let cfg = RasConfig::parse("storm_limit=3,storm_window_ms=1000").unwrap();
    let mut e = engine(cfg, 1, &mem);
    let mut p = Recorder::default();
    let lost = g(RAM + 0x20_0000, 21);
    let s = e.layout().sync_source(0).unwrap();
    for t in 0..3 {
        let out = e.handle(&sigbus(0, lost, t), &mem, &mut p).unwrap();
        assert_eq!(out.stopped, None);
        guest_ack(&e, &mem, s);
    }
    let out = e.handle(&sigbus(0, lost, 3), &mem, &mut p).unwrap();
    let reason = StopReason::Storm {
        vcpu: 0,
        granule: Some(lost),
        count: 4,
        window_ms: 1000,
    };
    assert_eq!(out.stopped, Some(reason.clone()));
    assert_eq!(p.calls.last(), Some(&Call::Stop(reason.clone())));
    assert_eq!(e.stopped(), Some(&reason));
    // No fourth record, no fourth abort.
    assert_eq!(e.counters().records_written, 3);
    assert_eq!(e.counters().aborts_injected, 3);
    assert_eq!(block(&e, &mem, s), None);
}

#[test]
fn failed_abort_injection_stops_the_vm() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 1, &mem);
    let mut p = Recorder {
        fail_inject: true,
        ..Recorder::default()
    };
    let out = e.handle(&sigbus(0, g(RAM, 12), 0), &mem, &mut p).unwrap();
    assert_eq!(out.stopped, Some(StopReason::AbortFailed { vcpu: 0 }));
    assert_eq!(e.counters().abort_failures, 1);
    assert_eq!(
        p.calls,
        vec![Call::Stop(StopReason::AbortFailed { vcpu: 0 })]
    );
}

#[test]
fn poison_limit_stops_the_vm_after_telling_the_guest() {
    let mem = memory();
    let cfg = RasConfig::parse("max_poisoned=1").unwrap();
    let mut e = engine(cfg, 2, &mem);
    let mut p = Recorder::default();
    e.handle(&sigbus(0, g(RAM, 12), 0), &mem, &mut p).unwrap();
    let out = e
        .handle(&sigbus(1, g(RAM + 0x8000, 12), 1), &mem, &mut p)
        .unwrap();
    assert_eq!(out.stopped, Some(StopReason::PoisonLimit { limit: 1 }));
    assert_eq!(
        p.calls,
        vec![
            Call::Inject(0, AbortKind::Data, None),
            Call::Inject(1, AbortKind::Data, None),
            Call::Stop(StopReason::PoisonLimit { limit: 1 })
        ]
    );
    assert_eq!(e.counters().poison_list_full, 1);
}

#[test]
fn shared_sea_source_serves_every_vcpu() {
    let mem = memory();
    let cfg = RasConfig {
        sea_sources: SeaSources::Shared,
        ..RasConfig::default()
    };
    let mut e = engine(cfg, 4, &mem);
    assert_eq!(e.layout().num_sync(), 1);
    let mut p = Recorder::default();
    e.handle(&sigbus(3, g(RAM, 12), 0), &mem, &mut p).unwrap();
    let out = e
        .handle(&sigbus(1, g(RAM + 0x1000, 12), 1), &mem, &mut p)
        .unwrap();
    assert!(matches!(
        out.events[1],
        RasEvent::RecordQueued { depth: 1, .. }
    ));
    assert_eq!(
        block(&e, &mem, SourceId(0)),
        Some(StatusBlock::memory_error(
            &g(RAM, 12),
            Severity::Recoverable,
            UNIX
        ))
    );
    // A vCPU the VM does not have gets no record, but still its abort.
    let out = e
        .handle(&sigbus(9, g(RAM + 0x2000, 12), 2), &mem, &mut p)
        .unwrap();
    assert!(matches!(out.events[1], RasEvent::RecordFailed { .. }));
    assert_eq!(
        p.calls.last(),
        Some(&Call::Inject(9, AbortKind::Data, None))
    );
}

#[test]
fn injected_error_is_written_as_asked() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 2, &mem);
    let mut p = Recorder::default();
    let granule = g(RAM + 0x4000, 12);
    let report = ErrorReport {
        cause: ErrorCause::Injected {
            target: InjectTarget::Sync { vcpu: 1 },
            payload: InjectPayload::Memory {
                granule,
                severity: Severity::Corrected,
                threshold_exceeded: true,
            },
        },
        unix_time: UNIX,
        monotonic_ms: 0,
    };
    e.handle(&report, &mem, &mut p).unwrap();
    let b = block(&e, &mem, e.layout().sync_source(1).unwrap()).unwrap();
    assert_eq!(b.error_severity(), Some(Severity::Corrected));
    assert_eq!(b.entries.len(), 1);
    assert!(b.entries[0].flags.contains(EntryFlags::THRESHOLD_EXCEEDED));
    assert_eq!(p.calls, vec![Call::Inject(1, AbortKind::Data, None)]);
    // Simulated: not poisoned.
    assert!(e.poison().is_empty());
    assert_eq!(e.counters().injected, 1);
}

#[test]
fn injected_arm_error_keeps_its_severity_and_type_bitmap() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 2, &mem);
    let mut p = Recorder::default();
    let section = ArmProcessorSection {
        error_info: vec![ArmErrorInfo {
            validation_bits: info_validation::PHYSICAL_FAULT_ADDRESS,
            error_type: ArmErrorTypes::BUS,
            physical_fault_address: RAM + 0x4000,
            ..Default::default()
        }],
        ..Default::default()
    };
    let report = ErrorReport {
        cause: ErrorCause::Injected {
            target: InjectTarget::Sync { vcpu: 0 },
            payload: InjectPayload::ArmProcessor {
                section: section.clone(),
                severity: Severity::Fatal,
            },
        },
        unix_time: UNIX,
        monotonic_ms: 0,
    };
    e.handle(&report, &mem, &mut p).unwrap();
    let b = block(&e, &mem, e.layout().sync_source(0).unwrap()).unwrap();
    assert_eq!(b.error_severity(), Some(Severity::Fatal));
    assert_eq!(b.entries.len(), 1);
    assert_eq!(b.entries[0].severity, Severity::Fatal);
    assert_eq!(b.entries[0].section, Section::ArmProcessor(section));
    // The error-info type byte (section offset 40 + 4) is the UEFI 2.10
    // bitmap: bus = bit 3.
    let mut raw = vec![0u8; b.entries[0].section.encoded_len()];
    b.entries[0].section.encode_into(&mut raw).unwrap();
    assert_eq!(raw[44], 0x08);
    assert_eq!(p.calls, vec![Call::Inject(0, AbortKind::Data, None)]);
    assert!(e.poison().is_empty());
    assert_eq!(e.counters().injected, 1);
}

#[test]
fn tampered_esa_register_is_restored_and_reported() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 1, &mem);
    let mut p = Recorder::default();
    let s = e.layout().sync_source(0).unwrap();
    let esa = e.layout().esa_register(s).unwrap();
    // A guest redirects the ESA register into its RAM.
    mem.store(RAM, GuestAddress(esa), Ordering::Release)
        .unwrap();
    e.handle(&sigbus(0, g(RAM + 0x1000, 12), 0), &mem, &mut p)
        .unwrap();
    let v: u64 = mem.load(GuestAddress(esa), Ordering::Acquire).unwrap();
    assert_eq!(v, e.layout().block(s).unwrap());
    assert_eq!(e.counters().region_tampered, 1);
    // Nothing was written into the guest's chosen address.
    let mut ram = [0u8; 64];
    mem.read_slice(&mut ram, GuestAddress(RAM)).unwrap();
    assert_eq!(ram, [0u8; 64]);
}

#[test]
fn reset_returns_poison_and_reinitializes() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 1, &mem);
    let mut p = Recorder::default();
    e.handle(&sigbus(0, g(RAM + 0x20_0000, 21), 0), &mem, &mut p)
        .unwrap();
    e.handle(&ao(g(RAM + 0x1000, 12), 1), &mem, &mut p).unwrap();
    let repaired = e.reset(&mem, &mut p).unwrap();
    assert_eq!(repaired, vec![g(RAM + 0x1000, 12), g(RAM + 0x20_0000, 21)]);
    assert!(e.poison().is_empty());
    assert_eq!(e.counters().poison_repaired, 2);
    for s in e.layout().sources() {
        assert_eq!(ack_value(&e, &mem, s), 1);
        assert_eq!(block(&e, &mem, s), None);
    }
}

#[test]
fn snapshot_restores_poison_counters_and_records_in_flight() {
    let mem = memory();
    let mut e = engine(RasConfig::default(), 2, &mem);
    let mut p = Recorder::default();
    let first = g(RAM + 0x20_0000, 21);
    e.handle(&sigbus(1, first, 0), &mem, &mut p).unwrap();
    // vCPU 0's record was consumed and acked; vCPU 1's is still in flight.
    e.handle(&sigbus(0, g(RAM, 12), 0), &mem, &mut p).unwrap();
    guest_ack(&e, &mem, SourceId(0));
    let json = serde_json::to_string(&e.snapshot()).unwrap();

    let mut restored = RasEngine::new(RasConfig::default(), REGION, 2).unwrap();
    restored
        .restore(serde_json::from_str(&json).unwrap(), &mem)
        .unwrap();
    assert_eq!(restored.poison(), e.poison());
    assert_eq!(restored.counters(), e.counters());
    // The unacknowledged record is still there for the guest, the source
    // still busy; the acked one stays free and empty.
    let want = StatusBlock::memory_error(&first, Severity::Recoverable, UNIX);
    assert_eq!(block(&restored, &mem, SourceId(1)), Some(want));
    assert_eq!(ack_value(&restored, &mem, SourceId(1)), 0);
    assert_eq!(block(&restored, &mem, SourceId(0)), None);
    assert_eq!(ack_value(&restored, &mem, SourceId(0)), 1);
    // And it keeps working without init.
    let next = g(RAM + 0x1_0000, 12);
    let out = restored.handle(&sigbus(0, next, 5), &mem, &mut p).unwrap();
    assert!(matches!(out.events[1], RasEvent::RecordWritten { .. }));
    assert_eq!(
        block(&restored, &mem, SourceId(0)),
        Some(StatusBlock::memory_error(
            &next,
            Severity::Recoverable,
            UNIX
        ))
    );

    let mut other = RasEngine::new(RasConfig::parse("async=off").unwrap(), REGION, 2).unwrap();
    assert!(matches!(
        other.restore(e.snapshot(), &mem),
        Err(EngineError::ConfigMismatch { .. })
    ));
}

#[test]
fn engine_refuses_work_before_init_and_bad_layouts() {
    let mem = memory();
    let mut e = RasEngine::new(RasConfig::default(), REGION, 1).unwrap();
    let mut p = Recorder::default();
    assert!(matches!(
        e.handle(&sigbus(0, g(RAM, 12), 0), &mem, &mut p),
        Err(EngineError::NotInitialized)
    ));
    assert!(matches!(
        RasEngine::new(RasConfig::default(), REGION + 1, 1),
        Err(EngineError::ErrorSource(_))
    ));
    for sea_sources in [SeaSources::PerVcpu, SeaSources::Shared] {
        let config = RasConfig {
            sea_sources,
            ..RasConfig::default()
        };
        assert!(matches!(
            RasEngine::new(config, REGION, 0),
            Err(EngineError::NoVcpus)
        ));
    }
    let bad = RasConfig {
        block_size: 7,
        ..RasConfig::default()
    };
    assert!(matches!(
        RasEngine::new(bad, REGION, 1),
        Err(EngineError::Config(_))
    ));
    // A region outside guest memory.
    let mut e = RasEngine::new(RasConfig::default(), 0x1_0000_0000, 1).unwrap();
    assert!(matches!(e.init(&mem), Err(EngineError::ErrorSource(_))));
    assert!(mem.address_in_range(GuestAddress(REGION)));
}

#[test]
fn hest_describes_the_layout() {
    let e = RasEngine::new(RasConfig::default(), REGION, 3).unwrap();
    let hest = e.hest().unwrap();
    assert_eq!(&hest[..4], b"HEST");
    // Error source count at offset 36: 3 SEA + 1 async.
    assert_eq!(u32::from_le_bytes(hest[36..40].try_into().unwrap()), 4);
}

#[test]
fn dropped_async_record_is_not_signalled_but_poison_is_kept() {
    let mem = memory();
    let mut e = engine(RasConfig::parse("queue_depth=0").unwrap(), 1, &mem);
    let mut p = Recorder::default();
    e.handle(&ao(g(RAM, 12), 0), &mem, &mut p).unwrap();
    let out = e.handle(&ao(g(RAM + 0x1000, 12), 1), &mem, &mut p).unwrap();
    assert!(out.events.contains(&RasEvent::RecordDropped {
        source: SourceTarget::Async,
        granule: Some(g(RAM + 0x1000, 12)),
    }));
    assert_eq!(p.calls, vec![Call::Notify]);
    assert!(e.poison().contains(RAM + 0x1000));
    assert_eq!(e.counters().records_dropped, 1);
    // The guest still sees only the first record.
    assert_eq!(
        block(&e, &mem, e.layout().async_source()),
        Some(StatusBlock::memory_error(
            &g(RAM, 12),
            Severity::Recoverable,
            UNIX
        ))
    );
}
