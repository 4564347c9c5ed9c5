// SPDX-License-Identifier: Apache-2.0
//! The poison registry against a byte-set model: after any sequence of
//! inserts, every query (contains, lookup, iter, overlapping, clean ranges,
//! serde) agrees with the set of poisoned 4 KiB pages.

use std::collections::BTreeSet;

use proptest::prelude::*;
use ras::granule::GpaGranule;
use ras::poison::{Insertion, PoisonError, PoisonRegistry};
use vm_memory::GuestAddress;

const PAGE: u64 = 0x1000;
/// A small address space: 64 pages of 4 KiB.
const SPACE: u64 = 64 * PAGE;

fn arb_granule() -> impl Strategy<Value = GpaGranule> {
    (
        0..SPACE,
        prop_oneof![Just(12u8), Just(13), Just(15), Just(16)],
    )
        .prop_map(|(a, s)| GpaGranule::containing(GuestAddress(a), s).unwrap())
}

fn pages(g: &GpaGranule) -> impl Iterator<Item = u64> {
    (g.base().0..=g.last().0).step_by(PAGE as usize)
}

fn a(v: u64) -> GuestAddress {
    GuestAddress(v)
}

proptest! {
    #[test]
    fn registry_matches_page_set(
        ops in prop::collection::vec(arb_granule(), 0..40),
        limit in 1usize..12,
        start in 0..SPACE,
        len in 0..SPACE,
    ) {
        let mut r = PoisonRegistry::new(limit);
        let mut model: BTreeSet<u64> = BTreeSet::new();
        for g in &ops {
            let before = r.clone();
            let covered = pages(g).all(|p| model.contains(&p));
            match r.insert(*g) {
                Ok(Insertion::Duplicate { existing }) => {
                    prop_assert!(covered);
                    prop_assert!(existing.contains(g.base()) && existing.contains(g.last()));
                    prop_assert_eq!(&r, &before);
                }
                Ok(Insertion::New { absorbed }) => {
                    // Covered only by smaller granules: it absorbs them.
                    prop_assert!(!covered || !absorbed.is_empty());
                    for a in &absorbed {
                        prop_assert!(a.shift() < g.shift());
                        prop_assert!(g.contains(a.base()) && g.contains(a.last()));
                    }
                    model.extend(pages(g));
                }
                Err(PoisonError::Full { limit: l, .. }) => {
                    prop_assert_eq!(l, limit);
                    prop_assert_eq!(&r, &before);
                }
                Err(e) => return Err(TestCaseError::fail(format!("unexpected {e}"))),
            }
            prop_assert!(r.len() <= limit);
        }
        // Queries agree with the model.
        for p in (0..SPACE).step_by(PAGE as usize) {
            prop_assert_eq!(r.contains(a(p + 7)), model.contains(&p));
            match r.lookup(a(p)) {
                Some(g) => prop_assert!(g.contains(a(p)) && model.contains(&p)),
                None => prop_assert!(!model.contains(&p)),
            }
        }
        let listed: Vec<_> = r.iter().collect();
        prop_assert!(listed.windows(2).all(|w| w[0].last() < w[1].base()));
        // Disjoint granules in address order: each page once.
        let from_list: BTreeSet<u64> = listed.iter().flat_map(pages).collect();
        prop_assert_eq!(&from_list, &model);
        prop_assert_eq!(r.poisoned_bytes(), model.len() as u64 * PAGE);

        // Clean ranges: disjoint, ordered, inside the range, and together
        // with the poisoned pages they cover the range exactly.
        let clean: Vec<(u64, u64)> = r
            .clean_ranges(a(start), len)
            .into_iter()
            .map(|(s, n)| (s.0, s.0 + n))
            .collect();
        prop_assert!(clean.windows(2).all(|w| w[0].1 < w[1].0));
        for byte in (start..start + len).step_by(509) {
            let in_clean = clean.iter().any(|(s, e)| (*s..*e).contains(&byte));
            let poisoned = model.contains(&(byte & !(PAGE - 1)));
            prop_assert_eq!(in_clean, !poisoned, "byte {:#x}", byte);
        }
        for (s, e) in &clean {
            prop_assert!(*s >= start && *e <= start + len && s < e);
        }
        // Clean bytes + poisoned bytes of the range = the range.
        let clean_bytes: u64 = clean.iter().map(|(s, e)| e - s).sum();
        let poisoned_bytes: u64 = model
            .iter()
            .map(|p| (p + PAGE).min(start + len).saturating_sub((*p).max(start)))
            .sum();
        prop_assert_eq!(clean_bytes + poisoned_bytes, len);
        let overlaps = |g: &GpaGranule| len > 0 && g.base().0 < start + len && g.last().0 >= start;
        for g in r.overlapping(a(start), len) {
            prop_assert!(overlaps(&g));
        }
        let overlapping: Vec<_> = r.overlapping(a(start), len).collect();
        let expected: Vec<_> = listed.iter().copied().filter(overlaps).collect();
        prop_assert_eq!(overlapping, expected);

        // Survives serde, then drains in order.
        let json = serde_json::to_string(&r).unwrap();
        let mut back: PoisonRegistry = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &r);
        prop_assert_eq!(back.take_all(), listed);
        prop_assert!(back.is_empty());
    }
}
