// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! Telling the guest every page of a lost granule larger than a page.
//!
//! Why: Linux acts on a memory-error record's physical address only
//! (`ghes_do_memory_failure` queues `memory_failure()` for
//! `physical_addr >> PAGE_SHIFT`; the mask is printed, not used), so one
//! record takes one 4 KiB page out of the guest's use. When the host loses
//! a 2 MiB or 1 GiB page of guest RAM, the engine's first record names the
//! page the guest touched (or, for an announced loss, the granule's first
//! page); the other pages of the granule would stay in the guest's free
//! lists until its kernel consumes one of them itself (`clear_page` of a
//! page it hands out), an abort at EL1 it cannot recover from.
//!
//! What: [`AnnounceBacklog`] holds the rest of each such granule and hands
//! it out in batches, one Generic Error Status Block of up to
//! [`ANNOUNCE_BATCH`] recoverable memory-error entries (one 4 KiB page
//! each), which the engine writes into the asynchronous source when that
//! source is free, nothing waits in its queue (ACPI 6.5 §18.3.2.8: one
//! block in flight per source) and the batch is due (below).
//!
//! Pacing: each entry becomes one `memory_failure_queue()` in the guest,
//! which puts it in a per-CPU FIFO of 16 (`MEMORY_FAILURE_FIFO_SIZE`) for a
//! worker and *drops it* when the FIFO is full ("buffer overflow when
//! queuing memory failure"): a dropped page stays in the guest's free
//! lists. The guest acknowledges a block once its entries are queued, not
//! once they are handled, so the acknowledgement is no back-pressure, and
//! the worker stalls while another `memory_failure()` holds the kernel's
//! `mf_mutex`: at first, the consuming process's own (it splits the huge
//! page and unmaps it; the full stack measured 70-100 ms from the touch to
//! the process's signal under emulation, and lost page 18 of a 2 MiB loss,
//! the first entry past a full FIFO, when batches came every 12 ms). So a
//! granule's first batch is due [`ANNOUNCE_HOLDOFF_MS`] after the loss was
//! reported, and each further batch [`ANNOUNCE_GAP_MS`] after the previous
//! one: a batch fills at most half of the FIFO, so nothing is dropped when
//! the worker, stalled, starts before the third batch (350 ms after the
//! loss, three times the stall measured) and then handles an entry in 3 ms
//! or less (Linux takes well under 0.1 ms a free or LRU page in the full
//! stack). A 2 MiB loss takes about 2.5 s.
//!
//! Bounds: one entry per newly poisoned granule (the poison registry's
//! limit bounds them), each a cursor, not a list of pages. The backlog is
//! forgotten at a guest reset (the granules are repaired) and not carried
//! by a snapshot: the poison registry still covers the pages not yet
//! announced, so the restored VMM never reads them, and a guest access is
//! a consumption handled as any other.

use std::collections::VecDeque;

use vm_memory::{Address, GuestAddress};

use crate::granule::GpaGranule;

/// The smallest granule, and the size of the page each entry names.
pub const PAGE_SHIFT: u8 = 12;

/// At most this many pages in one block: half of Linux's per-CPU
/// memory-failure FIFO (`MEMORY_FAILURE_FIFO_SIZE` = 16 in
/// `mm/memory-failure.c`). The block length may allow fewer
/// ([`AnnounceBacklog::next_batch`] takes the limit).
pub const ANNOUNCE_BATCH: usize = 8;

/// A lost granule's first batch is due this long after the loss was
/// reported: the consumer's own `memory_failure()` (which holds
/// `mf_mutex`, stalling the guest's memory-failure worker) ends first.
pub const ANNOUNCE_HOLDOFF_MS: u64 = 300;

/// Each further batch is due this long after the previous one.
pub const ANNOUNCE_GAP_MS: u64 = 25;

/// The rest of one lost granule.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Announcement {
    granule: GpaGranule,
    /// The next page to announce, as an index into the granule.
    next: u64,
    /// Pages already told (by the record that reported the loss).
    told: Vec<GuestAddress>,
    /// The wall-clock time of the report that lost the granule (the
    /// records' timestamp).
    unix_time: u64,
}

impl Announcement {
    fn pages(&self) -> u64 {
        self.granule.len() >> PAGE_SHIFT
    }
}

/// One batch of pages to announce, and the time of the loss.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// 4 KiB pages, in address order, all of one granule.
    pub pages: Vec<GpaGranule>,
    /// Wall-clock time of the report of the loss (seconds since the epoch).
    pub unix_time: u64,
}

/// Pages of lost granules the guest was not told of yet, oldest loss
/// first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnnounceBacklog {
    pending: VecDeque<Announcement>,
    /// Monotonic time (ms) before which no batch is due.
    not_before_ms: u64,
}

impl AnnounceBacklog {
    /// Adds the pages of `granule` except those in `told`, reported at
    /// monotonic time `now_ms`; nothing for a single page (its record told
    /// it all). No batch is due before [`ANNOUNCE_HOLDOFF_MS`] from now.
    pub fn push(&mut self, granule: GpaGranule, told: &[GpaGranule], unix_time: u64, now_ms: u64) {
        if granule.shift() <= PAGE_SHIFT {
            return;
        }
        self.not_before_ms = self
            .not_before_ms
            .max(now_ms.saturating_add(ANNOUNCE_HOLDOFF_MS));
        self.pending.push_back(Announcement {
            granule,
            next: 0,
            told: told
                .iter()
                .filter(|t| granule.contains(t.base()))
                .map(|t| t.base())
                .collect(),
            unix_time,
        });
    }

    /// The next `max` (at least 1) pages of the oldest granule, skipping
    /// those already told, when a batch is due at monotonic time `now_ms`;
    /// the next one is then due [`ANNOUNCE_GAP_MS`] later. `None` when
    /// nothing is left or nothing is due yet.
    pub fn next_batch(&mut self, max: usize, now_ms: u64) -> Option<Batch> {
        if now_ms < self.not_before_ms {
            return None;
        }
        let max = max.max(1);
        while let Some(a) = self.pending.front_mut() {
            let mut pages = Vec::new();
            while a.next < a.pages() && pages.len() < max {
                let base = a.granule.base().unchecked_add(a.next << PAGE_SHIFT);
                a.next += 1;
                if !a.told.contains(&base) {
                    // A 4 KiB-aligned address inside the granule.
                    pages.extend(GpaGranule::containing(base, PAGE_SHIFT));
                }
            }
            let unix_time = a.unix_time;
            if a.next >= a.pages() {
                self.pending.pop_front();
            }
            if !pages.is_empty() {
                self.not_before_ms = now_ms.saturating_add(ANNOUNCE_GAP_MS);
                return Some(Batch { pages, unix_time });
            }
        }
        None
    }

    /// Whether pages wait.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Pages still to announce (told pages not subtracted).
    pub fn pages_left(&self) -> u64 {
        self.pending.iter().map(|a| a.pages() - a.next).sum()
    }

    /// Forgets everything (guest reset, restore).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.not_before_ms = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::iter;

    use super::*;

    fn g(base: u64, shift: u8) -> GpaGranule {
        GpaGranule::containing(GuestAddress(base), shift).unwrap()
    }

    /// Every batch, each taken as soon as it is due (losses pushed at 0).
    fn drain(b: &mut AnnounceBacklog, max: usize) -> Vec<Batch> {
        let mut t = 300;
        iter::from_fn(|| {
            let batch = b.next_batch(max, t);
            t += 25;
            batch
        })
        .collect()
    }

    #[test]
    fn a_lost_2_mib_page_is_told_as_511_pages_besides_the_touched_one() {
        let mut b = AnnounceBacklog::default();
        let touched = g(0x4020_5000, 12);
        b.push(g(0x4020_0000, 21), &[touched], 77, 0);
        assert_eq!(b.pages_left(), 512);
        let batches = drain(&mut b, 6);
        // 511 pages in batches of 6: 85 full ones and one of 1.
        assert_eq!(batches.len(), 86);
        assert!(batches[..85].iter().all(|x| x.pages.len() == 6));
        assert_eq!(batches[85].pages.len(), 1);
        let pages: Vec<u64> = batches
            .iter()
            .flat_map(|x| x.pages.iter().map(|p| p.base().0))
            .collect();
        let expected: Vec<u64> = (0..512u64)
            .map(|i| 0x4020_0000 + i * 0x1000)
            .filter(|a| *a != 0x4020_5000)
            .collect();
        assert_eq!(pages, expected);
        assert!(batches.iter().all(|x| x.unix_time == 77));
        assert!(
            batches
                .iter()
                .flat_map(|x| &x.pages)
                .all(|p| p.shift() == PAGE_SHIFT)
        );
        assert!(b.is_empty());
        assert_eq!(b.next_batch(6, u64::MAX), None);
    }

    #[test]
    fn a_single_page_needs_nothing_more() {
        let mut b = AnnounceBacklog::default();
        b.push(g(0x5000_0000, 12), &[], 1, 0);
        assert!(b.is_empty());
        assert_eq!(b.next_batch(8, u64::MAX), None);
    }

    #[test]
    fn losses_are_told_oldest_first_and_a_batch_never_mixes_two() {
        let mut b = AnnounceBacklog::default();
        // 1 GiB: 262144 pages; told pages outside the granule are ignored.
        b.push(g(0x8000_0000, 30), &[g(0x1000, 12)], 5, 0);
        b.push(g(0x4000_0000, 21), &[], 6, 0);
        assert_eq!(b.pages_left(), 262_144 + 512);
        let mut t = 300;
        let mut next = |b: &mut AnnounceBacklog| {
            let batch = b.next_batch(8, t);
            t += 25;
            batch
        };
        let first = next(&mut b).unwrap();
        assert_eq!(first.pages[0].base().0, 0x8000_0000);
        assert_eq!(first.pages.len(), 8);
        let mut n = 8;
        let mut last = first;
        while last.unix_time == 5 {
            last = next(&mut b).unwrap();
            if last.unix_time == 5 {
                n += last.pages.len();
            }
        }
        assert_eq!(n, 262_144);
        // The first batch of the second loss starts at its base.
        assert_eq!(last.pages[0].base().0, 0x4000_0000);
        assert_eq!(last.unix_time, 6);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.pages_left(), 0);
    }

    #[test]
    fn a_batch_has_at_least_one_page() {
        let mut b = AnnounceBacklog::default();
        b.push(g(0x4000_0000, 21), &[], 0, 0);
        assert_eq!(b.next_batch(0, 300).unwrap().pages.len(), 1);
    }

    #[test]
    fn batches_are_due_300_ms_after_a_loss_then_every_25_ms() {
        let mut b = AnnounceBacklog::default();
        b.push(g(0x4000_0000, 21), &[], 0, 1000);
        assert_eq!(b.next_batch(8, 1000), None);
        assert_eq!(b.next_batch(8, 1299), None);
        let first = b.next_batch(8, 1300).unwrap();
        assert_eq!(first.pages[0].base().0, 0x4000_0000);
        // Not again at once, nor before 25 ms.
        assert_eq!(b.next_batch(8, 1300), None);
        assert_eq!(b.next_batch(8, 1324), None);
        assert_eq!(
            b.next_batch(8, 1325).unwrap().pages[0].base().0,
            0x4000_8000
        );
        // A batch taken late: the next is due 25 ms after it.
        assert_eq!(
            b.next_batch(8, 1400).unwrap().pages[0].base().0,
            0x4001_0000
        );
        assert_eq!(b.next_batch(8, 1424), None);
        // A new loss holds the backlog off again (its consumer's own
        // memory_failure() comes first), even where the gap had passed.
        b.push(g(0x8000_0000, 21), &[], 0, 1430);
        assert_eq!(b.next_batch(8, 1729), None);
        assert_eq!(
            b.next_batch(8, 1730).unwrap().pages[0].base().0,
            0x4001_8000
        );
        // A reset forgets the timing with the pages.
        b.clear();
        b.push(g(0x4000_0000, 21), &[], 0, 5);
        assert_eq!(b.next_batch(8, 304), None);
        assert!(b.next_batch(8, 305).is_some());
    }

    /// Linux's memory-failure FIFO as `mm/memory-failure.c` has it: 16
    /// entries per CPU, an entry put in a full FIFO dropped, a worker that
    /// takes one entry at a time and handles it; stalled (another
    /// `memory_failure()` holds `mf_mutex`) until `stall_ms` after the
    /// loss, then handling one entry each `per_entry_ms`. Returns the
    /// entries dropped when batches of 8 are written as soon as they are
    /// due and acknowledged 1 ms later.
    fn dropped_by_guest_fifo(stall_ms: u64, per_entry_ms: u64) -> usize {
        let mut b = AnnounceBacklog::default();
        b.push(g(0x4000_0000, 21), &[], 0, 0);
        let (mut fifo, mut dropped) = (0usize, 0usize);
        let mut busy_until = stall_ms;
        for t in 0..60_000u64 {
            if t >= busy_until && fifo > 0 {
                fifo -= 1;
                busy_until = t + per_entry_ms;
            }
            if let Some(batch) = b.next_batch(ANNOUNCE_BATCH, t) {
                for _ in &batch.pages {
                    if fifo == 16 {
                        dropped += 1;
                    } else {
                        fifo += 1;
                    }
                }
            }
        }
        assert!(b.is_empty());
        dropped
    }

    #[test]
    fn the_guest_fifo_survives_the_stalls_the_full_stack_saw() {
        // The consumer's memory_failure() of a huge page: 70-100 ms from
        // the touch to the signal in the full stack; three times that.
        assert_eq!(dropped_by_guest_fifo(300, 1), 0);
        // No stall, a worker as slow as 3 ms an entry.
        assert_eq!(dropped_by_guest_fifo(0, 3), 0);
        // Past those, entries are lost: the model can fail.
        assert!(dropped_by_guest_fifo(0, 4) > 0);
        assert!(dropped_by_guest_fifo(400, 1) > 0);
    }
}
