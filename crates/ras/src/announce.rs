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
//! each), which the engine writes into the asynchronous source whenever
//! that source is free and nothing waits in its queue (ACPI 6.5 §18.3.2.8:
//! one block in flight per source). Each entry becomes one
//! `memory_failure_queue()` in the guest, whose per-CPU FIFO holds 16
//! (`MEMORY_FAILURE_FIFO_SIZE`): a batch fills at most half of it, and
//! the next batch is written only once the guest acknowledged this one.
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
}

impl AnnounceBacklog {
    /// Adds the pages of `granule` except those in `told`; nothing for a
    /// single page (its record told it all).
    pub fn push(&mut self, granule: GpaGranule, told: &[GpaGranule], unix_time: u64) {
        if granule.shift() <= PAGE_SHIFT {
            return;
        }
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
    /// those already told; `None` when nothing is left.
    pub fn next_batch(&mut self, max: usize) -> Option<Batch> {
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
    }
}

#[cfg(test)]
mod tests {
    use std::iter;

    use super::*;

    fn g(base: u64, shift: u8) -> GpaGranule {
        GpaGranule::containing(GuestAddress(base), shift).unwrap()
    }

    fn drain(b: &mut AnnounceBacklog, max: usize) -> Vec<Batch> {
        iter::from_fn(|| b.next_batch(max)).collect()
    }

    #[test]
    fn a_lost_2_mib_page_is_told_as_511_pages_besides_the_touched_one() {
        let mut b = AnnounceBacklog::default();
        let touched = g(0x4020_5000, 12);
        b.push(g(0x4020_0000, 21), &[touched], 77);
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
        assert_eq!(b.next_batch(6), None);
    }

    #[test]
    fn a_single_page_needs_nothing_more() {
        let mut b = AnnounceBacklog::default();
        b.push(g(0x5000_0000, 12), &[], 1);
        assert!(b.is_empty());
        assert_eq!(b.next_batch(8), None);
    }

    #[test]
    fn losses_are_told_oldest_first_and_a_batch_never_mixes_two() {
        let mut b = AnnounceBacklog::default();
        // 1 GiB: 262144 pages; told pages outside the granule are ignored.
        b.push(g(0x8000_0000, 30), &[g(0x1000, 12)], 5);
        b.push(g(0x4000_0000, 21), &[], 6);
        assert_eq!(b.pages_left(), 262_144 + 512);
        let first = b.next_batch(8).unwrap();
        assert_eq!(first.pages[0].base().0, 0x8000_0000);
        assert_eq!(first.pages.len(), 8);
        let mut n = 8;
        let mut last = first;
        while last.unix_time == 5 {
            last = b.next_batch(8).unwrap();
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
        b.push(g(0x4000_0000, 21), &[], 0);
        assert_eq!(b.next_batch(0).unwrap().pages.len(), 1);
    }
}
