// SPDX-License-Identifier: Apache-2.0
//! The poison registry against a byte-set model: after any sequence of
//! inserts, every query (contains, lookup, iter, overlapping, clean ranges,
//! serde) agrees with the set of poisoned 4 KiB pages.

use std::collections::BTreeSet;

use proptest::prelude::*;
use ras::poison::{Insertion, PoisonError, PoisonRegistry};
use ras::report::GpaGranule;

const PAGE: u64 = 0x1000;
/// A small address space: 64 pages of 4 KiB.
const SPACE: u64 = 64 * PAGE;

fn arb_granule() -> impl Strategy<Value = GpaGranule> {
    (
        0..SPACE,
        prop_oneof![Just(12u8), Just(13), Just(15), Just(16)],
    )
        .prop_map(|(a, s)| GpaGranule::containing(a, s).unwrap())
}

fn pages(g: &GpaGranule) -> impl Iterator<Item = u64> {
    (g.base()..=g.last()).step_by(PAGE as usize)
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
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
            prop_assert!(r.len() <= limit);
        }
        // Queries agree with the model.
        for p in (0..SPACE).step_by(PAGE as usize) {
            prop_assert_eq!(r.contains(p + 7), model.contains(&p));
            if let Some(g) = r.lookup(p) {
                prop_assert!(g.contains(p));
            }
        }
        let listed: Vec<_> = r.iter().collect();
        prop_assert!(listed.windows(2).all(|w| w[0].last() < w[1].base()));
        let from_list: BTreeSet<u64> = listed.iter().flat_map(pages).collect();
        prop_assert_eq!(&from_list, &model);
        prop_assert_eq!(r.poisoned_bytes(), model.len() as u64 * PAGE);

        // Clean ranges: disjoint, ordered, inside the range, and together
        // with the poisoned pages they cover the range exactly.
        let clean = r.clean_ranges(start, len);
        prop_assert!(clean.windows(2).all(|w| w[0].end < w[1].start));
        for byte in (start..start + len).step_by(509) {
            let in_clean = clean.iter().any(|c| c.contains(&byte));
            let poisoned = model.contains(&(byte & !(PAGE - 1)));
            prop_assert_eq!(in_clean, !poisoned, "byte {:#x}", byte);
        }
        for c in &clean {
            prop_assert!(c.start >= start && c.end <= start + len && c.start < c.end);
        }
        for g in r.overlapping(start, len) {
            prop_assert!(len > 0 && g.base() < start + len && g.last() >= start);
        }
        let overlapping = r.overlapping(start, len).count();
        let expected = listed
            .iter()
            .filter(|g| len > 0 && g.base() < start + len && g.last() >= start)
            .count();
        prop_assert_eq!(overlapping, expected);

        // Survives serde, then drains in order.
        let json = serde_json::to_string(&r).unwrap();
        let mut back: PoisonRegistry = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &r);
        prop_assert_eq!(back.take_all(), listed);
        prop_assert!(back.is_empty());
    }
}
