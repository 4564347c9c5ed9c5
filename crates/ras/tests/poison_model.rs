// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! The poison registry against a page-set model: after a sequence of
//! inserts, every query (contains, lookup, iter, overlapping, clean ranges,
//! serde) agrees with the set of poisoned 4 KiB pages. 2000 sequences from
//! a seeded generator, so a failure reproduces.

use std::collections::BTreeSet;

use ras::granule::GpaGranule;
use ras::poison::{Insertion, PoisonError, PoisonRegistry};
use vm_memory::GuestAddress;

const PAGE: u64 = 0x1000;
/// A small address space: 64 pages of 4 KiB.
const SPACE: u64 = 64 * PAGE;

/// xorshift64*: deterministic values without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn granule(&mut self) -> GpaGranule {
        let shift = [12u8, 13, 15, 16][self.below(4) as usize];
        GpaGranule::containing(GuestAddress(self.below(SPACE)), shift).unwrap()
    }
}

fn pages(g: &GpaGranule) -> impl Iterator<Item = u64> {
    (g.base().0..=g.last().0).step_by(PAGE as usize)
}

fn a(v: u64) -> GuestAddress {
    GuestAddress(v)
}

#[test]
fn registry_matches_page_set() {
    for seed in 1..=2000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let ops: Vec<GpaGranule> = (0..rng.below(40)).map(|_| rng.granule()).collect();
        let limit = 1 + rng.below(11) as usize;
        let start = rng.below(SPACE);
        let len = rng.below(SPACE);
        check(seed, &ops, limit, start, len);
    }
}

fn check(seed: u64, ops: &[GpaGranule], limit: usize, start: u64, len: u64) {
    {
        let mut r = PoisonRegistry::new(limit);
        let mut model: BTreeSet<u64> = BTreeSet::new();
        for g in ops {
            let before = r.clone();
            let covered = pages(g).all(|p| model.contains(&p));
            match r.insert(*g) {
                Ok(Insertion::Duplicate { existing }) => {
                    assert!(covered);
                    assert!(existing.contains(g.base()) && existing.contains(g.last()));
                    assert_eq!(&r, &before);
                }
                Ok(Insertion::New { absorbed }) => {
                    // Covered only by smaller granules: it absorbs them.
                    assert!(!covered || !absorbed.is_empty());
                    for a in &absorbed {
                        assert!(a.shift() < g.shift());
                        assert!(g.contains(a.base()) && g.contains(a.last()));
                    }
                    model.extend(pages(g));
                }
                Err(PoisonError::Full { limit: l, .. }) => {
                    assert_eq!(l, limit);
                    assert_eq!(&r, &before);
                }
                Err(e) => panic!("seed {seed}: unexpected {e}"),
            }
            assert!(r.len() <= limit);
        }
        // Queries agree with the model.
        for p in (0..SPACE).step_by(PAGE as usize) {
            assert_eq!(r.contains(a(p + 7)), model.contains(&p));
            match r.lookup(a(p)) {
                Some(g) => assert!(g.contains(a(p)) && model.contains(&p)),
                None => assert!(!model.contains(&p)),
            }
        }
        let listed: Vec<_> = r.iter().collect();
        assert!(listed.windows(2).all(|w| w[0].last() < w[1].base()));
        // Disjoint granules in address order: each page once.
        let from_list: BTreeSet<u64> = listed.iter().flat_map(pages).collect();
        assert_eq!(&from_list, &model);
        assert_eq!(r.poisoned_bytes(), model.len() as u64 * PAGE);

        // Clean ranges: disjoint, ordered, inside the range, and together
        // with the poisoned pages they cover the range exactly.
        let clean: Vec<(u64, u64)> = r
            .clean_ranges(a(start), len)
            .into_iter()
            .map(|(s, n)| (s.0, s.0 + n))
            .collect();
        assert!(clean.windows(2).all(|w| w[0].1 < w[1].0));
        for byte in (start..start + len).step_by(509) {
            let in_clean = clean.iter().any(|(s, e)| (*s..*e).contains(&byte));
            let poisoned = model.contains(&(byte & !(PAGE - 1)));
            assert_eq!(in_clean, !poisoned, "seed {seed}: byte {byte:#x}");
        }
        for (s, e) in &clean {
            assert!(*s >= start && *e <= start + len && s < e);
        }
        // Clean bytes + poisoned bytes of the range = the range.
        let clean_bytes: u64 = clean.iter().map(|(s, e)| e - s).sum();
        let poisoned_bytes: u64 = model
            .iter()
            .map(|p| (p + PAGE).min(start + len).saturating_sub((*p).max(start)))
            .sum();
        assert_eq!(clean_bytes + poisoned_bytes, len);
        let overlaps = |g: &GpaGranule| len > 0 && g.base().0 < start + len && g.last().0 >= start;
        for g in r.overlapping(a(start), len) {
            assert!(overlaps(&g));
        }
        let overlapping: Vec<_> = r.overlapping(a(start), len).collect();
        let expected: Vec<_> = listed.iter().copied().filter(overlaps).collect();
        assert_eq!(overlapping, expected);

        // Survives serde, then drains in order.
        let json = serde_json::to_string(&r).unwrap();
        let mut back: PoisonRegistry = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, &r);
        assert_eq!(back.take_all(), listed);
        assert!(back.is_empty());
    }
}
