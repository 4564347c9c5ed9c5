// SPDX-License-Identifier: Apache-2.0
//! The engine under an error storm at the rates issue 13 asks of the VMM
//! (10 000 errors per second and more, for 10 s), which nested emulation
//! cannot reach through Cloud Hypervisor (its full-stack scenario 17 sees
//! about 200 per second): this is the engine's share of that path.
//!
//! Each error goes through `RasEngine::handle` and then through what
//! Cloud Hypervisor's `VmRas` does with the outcome's events
//! (`Publisher::post`, `Publisher::flush`), the guest acknowledging every
//! record. Printed: the rate, the growth of the process's peak memory
//! (VmHWM), counted = published + left out (a closing stop carries the
//! last left-out count out, as a VM that stops does); then a poison storm
//! at full speed, which must stop the VM with an event (`rate_limit`), and
//! as many pages as the poison registry holds spread out below that rate,
//! which must not.
//!
//! `cargo bench -p ras_tools --bench storm [-- SECONDS]` (plain
//! `harness = false` program; default 10 s).

use std::sync::atomic::Ordering;
use std::time::Instant;
use std::{env, fs, process};

use ras::config::RasConfig;
use ras::cper::{DataEntry, MemoryErrorSection, Section, Severity};
use ras::engine::{Done, RasEngine};
use ras::error_source::SourceTarget;
use ras::event::{EventKind, Publisher, RasEvent};
use ras::granule::GpaGranule;
use ras::policy::StopReason;
use ras::report::{ErrorCause, ErrorReport, FoundBy};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const RAM: u64 = 0x4000_0000;
const RAM_LEN: usize = 64 << 20;
const REGION: u64 = 0x0900_0000;
const REGION_LEN: usize = 256 << 10;
const UNIX: u64 = 1_795_545_200;

/// The process's peak resident memory, kB.
fn vm_hwm_kb() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn page(i: u64) -> GpaGranule {
    GpaGranule::containing(GuestAddress(RAM + (i % (RAM_LEN as u64 >> 12)) * 4096), 12)
        .expect("a page of RAM")
}

/// Cloud Hypervisor's `VmRas` after the engine: [`Publisher::post`] on the
/// thread that handled the error, [`Publisher::flush`] on the VMM thread.
#[derive(Default)]
struct Published {
    publisher: Publisher,
    events: u64,
    left_out: u64,
}

impl Published {
    fn take(&mut self, events: &[RasEvent], now_ms: u64) {
        self.publisher.post(events, now_ms);
        let (published, left_out) = (&mut self.events, &mut self.left_out);
        self.publisher.flush(|p| {
            *published += p.events.len() as u64;
            *left_out += p.suppressed;
        });
    }

    fn counted(&self) -> u64 {
        self.publisher
            .counters()
            .named()
            .iter()
            .map(|(_, v)| v)
            .sum()
    }
}

/// One error: the engine decides and writes, the VMM publishes, the guest
/// takes the record (the asynchronous source is free again).
fn one_error(
    engine: &mut RasEngine,
    mem: &GuestMemoryMmap,
    published: &mut Published,
    report: &ErrorReport,
) -> Option<StopReason> {
    let outcome = engine.handle(report, mem).expect("handle");
    let done = if outcome.notify_async {
        vec![Done::Notified]
    } else {
        Vec::new()
    };
    let (events, stop) = outcome.finish(&done);
    published.take(&events, report.monotonic_ms);
    // Acknowledged at once: the next record finds the source free, and
    // nothing waits for the engine's service.
    let ack = engine
        .layout()
        .ack_register(engine.layout().async_source())
        .expect("async source");
    mem.store(1u64, ack, Ordering::Release).expect("ack");
    stop
}

fn main() {
    // cargo passes its own flags (`--bench`); anything else is SECONDS.
    let seconds = match env::args().skip(1).find(|a| !a.starts_with("--")) {
        None => 10,
        Some(a) => match a.parse::<u64>() {
            Ok(s) if s > 0 => s,
            _ => {
                eprintln!("storm: SECONDS must be a whole number above 0, not {a:?}");
                process::exit(2);
            }
        },
    };
    let mem = GuestMemoryMmap::<()>::from_ranges(&[
        (GuestAddress(REGION), REGION_LEN),
        (GuestAddress(RAM), RAM_LEN),
    ])
    .expect("guest memory");

    // Injected memory errors on the asynchronous source, as fast as the
    // engine takes them, for `seconds`.
    let mut engine = RasEngine::new(RasConfig::default(), GuestAddress(REGION), 2).expect("engine");
    engine.init(&mem).expect("init");
    let mut publisher = Published::default();
    let hwm0 = vm_hwm_kb();
    let start = Instant::now();
    let mut n = 0u64;
    let mut stopped = None;
    while start.elapsed().as_secs() < seconds {
        let now_ms = start.elapsed().as_millis() as u64;
        let lost = page(n);
        let entry = DataEntry::new(
            Section::Memory(MemoryErrorSection {
                validation_bits: 0x4006,
                physical_address: lost.base().0,
                physical_address_mask: !0xfff,
                error_type: 3,
                ..Default::default()
            }),
            Severity::Recoverable,
        );
        let report = ErrorReport {
            cause: ErrorCause::Injected {
                target: SourceTarget::Async,
                entry,
            },
            unix_time: UNIX,
            monotonic_ms: now_ms,
        };
        let stop = one_error(&mut engine, &mem, &mut publisher, &report);
        n += 1;
        if stop.is_some() {
            stopped = stop;
            break;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let hwm1 = vm_hwm_kb();
    let closing = [RasEvent::VmStopped {
        reason: StopReason::PoisonLimit { limit: 0 },
    }];
    publisher.take(&closing, start.elapsed().as_millis() as u64);
    println!(
        "storm_injection errors={n} rate_per_s={:.0} over {elapsed:.1} s; events counted={} published={} left_out={} (with a closing stop) sum_ok={}; VmHWM {hwm0} -> {hwm1} kB (+{} kB); stopped={stopped:?}",
        n as f64 / elapsed,
        publisher.counted(),
        publisher.events,
        publisher.left_out,
        publisher.counted() == publisher.events + publisher.left_out,
        hwm1.saturating_sub(hwm0),
    );

    // A poison storm: distinct pages announced as fast as the engine
    // takes them; the default rate_limit stops the VM within a window.
    for (what, spacing_ms) in [("full speed", None), ("spread out", Some(2u64))] {
        let config = RasConfig::default();
        let limit = config.rate_limit;
        let config_max_poisoned = config.max_poisoned;
        let mut engine = RasEngine::new(config, GuestAddress(REGION), 2).expect("engine");
        engine.init(&mem).expect("init");
        let mut publisher = Published::default();
        // Spread out: as many pages as the poison registry holds (one
        // more stops the VM too: `max_poisoned`, its memory bound).
        let errors = match spacing_ms {
            None => 20 * u64::from(limit),
            Some(_) => u64::from(config_max_poisoned),
        };
        let start = Instant::now();
        let mut outcome_stop = None;
        let mut handled = 0;
        for i in 0..errors {
            // Spread out: one error every `spacing_ms` (a clock the test
            // gives the engine, as Cloud Hypervisor gives its own).
            let now_ms = spacing_ms.map_or(start.elapsed().as_millis() as u64, |s| i * s);
            let report = ErrorReport {
                cause: ErrorCause::Announced {
                    granule: page(i),
                    found_by: FoundBy::HostSignal,
                },
                unix_time: UNIX,
                monotonic_ms: now_ms,
            };
            let stop = one_error(&mut engine, &mem, &mut publisher, &report);
            handled += 1;
            if let Some(stop) = stop {
                outcome_stop = Some(stop);
                break;
            }
        }
        println!(
            "storm_poison {what}: {handled} of {errors} distinct pages announced (rate_limit {limit} per window) in {:.1} ms; stopped={outcome_stop:?}; vm-stopped events counted={}",
            start.elapsed().as_secs_f64() * 1e3,
            publisher.publisher.counters().get(EventKind::VmStopped)
        );
    }
}
