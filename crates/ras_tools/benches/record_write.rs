// SPDX-License-Identifier: Apache-2.0
//! How long it takes to build one memory-error record and write it into
//! guest memory through the GHESv2 protocol, and how much guest memory the
//! error-source region needs per vCPU.
//!
//! `cargo bench -p ras_tools --bench record_write` (plain `harness = false`
//! program; prints numbers, target: well under 2 µs per record).

use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ras::cper::{Severity, StatusBlock};
use ras::error_source::{DEFAULT_BLOCK_LEN, Delivery, ErrorSources, RegionLayout, SourceId};
use ras::granule::GpaGranule;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const RAM_BASE: u64 = 0x4000_0000;
const RAM_LEN: usize = 16 << 20;
const ITERS: u32 = 200_000;
const RUNS: usize = 7;

/// Median over `RUNS` runs of the mean time per iteration of `f`.
fn measure(mut f: impl FnMut(u32)) -> Duration {
    for i in 0..ITERS / 10 {
        f(i);
    }
    let mut runs: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            for i in 0..ITERS {
                f(i);
            }
            t.elapsed() / ITERS
        })
        .collect();
    runs.sort();
    runs[RUNS / 2]
}

fn granule(i: u32) -> GpaGranule {
    // Always Some: shift 12 is in range.
    GpaGranule::containing(GuestAddress(RAM_BASE + (u64::from(i) << 12)), 12).unwrap()
}

/// Deliveries seen, by kind.
#[derive(Default)]
struct Totals {
    written: u64,
    queued: u64,
    dropped: u64,
}

impl Totals {
    fn add(&mut self, d: Delivery) {
        match d {
            Delivery::Written => self.written += 1,
            Delivery::WroteOlderQueued { .. } => {
                self.written += 1;
                self.queued += 1;
            }
            Delivery::Queued { .. } => self.queued += 1,
            Delivery::Dropped => self.dropped += 1,
        }
    }
}

fn main() {
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(RAM_BASE), RAM_LEN)])
        .expect("guest memory");
    let layout = RegionLayout::new(GuestAddress(RAM_BASE + 0x80_0000), 8, DEFAULT_BLOCK_LEN)
        .expect("layout");
    let mut es = ErrorSources::new(layout, 16);
    es.init(&mem).expect("init");
    let s = SourceId(3);
    let ack = layout.ack_register(s).expect("source");
    // The guest's acknowledgement, so that every submit finds the source free.
    let guest_ack = |mem: &GuestMemoryMmap| mem.store(1u64, ack, Ordering::Release).unwrap();
    let mut totals = Totals::default();

    println!("record_write: {ITERS} iterations x {RUNS} runs, median of per-iteration means");

    // Baseline without the CPER codec: a pre-encoded 172-byte block
    // (20-byte header + 72-byte data entry + 80-byte memory section).
    let mut raw = vec![0u8; 172];
    raw[0] = 1;
    raw[12..16].copy_from_slice(&152u32.to_le_bytes());
    let t = measure(|_| {
        totals.add(es.submit_encoded(&mem, s, black_box(&raw)).unwrap());
        guest_ack(&mem);
    });
    println!(
        "  write pre-encoded 172-byte block (protocol + copy): {:>7.1} ns",
        ns(t)
    );

    let t = measure(|i| {
        let b = StatusBlock::memory_error(&granule(i), Severity::Recoverable, 1_700_000_000);
        black_box(b.encoded_len());
    });
    println!(
        "  build StatusBlock::memory_error:                   {:>7.1} ns",
        ns(t)
    );
    let t = measure(|i| {
        let b = StatusBlock::memory_error(&granule(i), Severity::Recoverable, 1_700_000_000);
        totals.add(es.submit(&mem, s, black_box(&b)).unwrap());
        guest_ack(&mem);
    });
    println!(
        "  build + encode + write one memory-error record:    {:>7.1} ns  (target < 2000 ns)",
        ns(t)
    );
    println!(
        "  counters: written {} queued {} dropped {}",
        totals.written, totals.queued, totals.dropped
    );

    println!(
        "region: {} bytes per vCPU (16 bytes of registers + {}-byte block), plus one asynchronous source; total rounded up to 4 KiB",
        layout.len_per_source(),
        DEFAULT_BLOCK_LEN
    );
    for vcpus in [1u32, 2, 4, 8, 64, 256, 1024] {
        let l =
            RegionLayout::new(GuestAddress(RAM_BASE), vcpus, DEFAULT_BLOCK_LEN).expect("layout");
        println!(
            "  {vcpus:>5} vCPUs: {:>8} bytes ({:>4} KiB)",
            l.total_len(),
            l.total_len() / 1024
        );
    }
}

fn ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}
