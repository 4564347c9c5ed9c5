// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! The set of guest-physical memory known to be poisoned.
//!
//! Memory is lost in naturally aligned power-of-two granules (a 4 KiB page,
//! a 2 MiB or 1 GiB huge page: `si_addr_lsb` in the host's SIGBUS). Two such
//! granules are either disjoint or one contains the other, so the registry
//! keeps a set of disjoint granules: a granule inside a known one is a
//! duplicate, a granule covering known ones absorbs them.
//!
//! The VMM uses the registry to repair memory at reset (QEMU remaps or
//! hole-punches poisoned pages at reset), and to skip poisoned memory while
//! it reads guest RAM for a snapshot or a migration (reading it would raise
//! SIGBUS in the VMM). It is serde-serializable so that it survives a
//! snapshot/restore, and bounded so that a failing host cannot grow it
//! without limit.

use std::collections::BTreeMap;
use std::mem;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use vm_memory::{Address, GuestAddress};

use crate::granule::GpaGranule;

/// Default bound on the number of disjoint poisoned granules.
pub const DEFAULT_MAX_POISONED: usize = 4096;

/// Errors from the poison registry.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PoisonError {
    /// Adding the granule would exceed the registry's bound.
    #[error("Poison registry full: {limit} granules tracked, cannot add {granule}")]
    Full {
        /// The bound.
        limit: usize,
        /// The granule that did not fit.
        granule: GpaGranule,
    },
    /// A restored list holds overlapping granules (it was not produced by
    /// this registry).
    #[error("Overlapping poisoned granules in restored state: {a} and {b}")]
    Overlap {
        /// The first granule.
        a: GpaGranule,
        /// The second granule.
        b: GpaGranule,
    },
    /// A restored list is longer than its own bound.
    #[error("Restored poison list holds {len} granules, more than its limit {limit}")]
    TooMany {
        /// Entries in the list.
        len: usize,
        /// The bound.
        limit: usize,
    },
}

/// What [`PoisonRegistry::insert`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Insertion {
    /// The granule was new. `absorbed` lists the smaller, previously known
    /// granules it covers (now replaced by it).
    New {
        /// Replaced granules, in address order.
        absorbed: Vec<GpaGranule>,
    },
    /// The granule lies inside an already known one (possibly equal).
    Duplicate {
        /// The known granule that covers it.
        existing: GpaGranule,
    },
}

/// A bounded set of disjoint poisoned guest-physical granules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PoisonList", into = "PoisonList")]
pub struct PoisonRegistry {
    /// Base -> granule. Granules are disjoint, so the one containing an
    /// address, if any, is the one with the greatest base <= the address.
    granules: BTreeMap<GuestAddress, GpaGranule>,
    limit: usize,
}

/// The serialized form of a [`PoisonRegistry`]: the bound and the granules
/// in address order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoisonList {
    /// Bound on the number of granules.
    pub limit: usize,
    /// Poisoned granules, disjoint, in address order.
    pub granules: Vec<GpaGranule>,
}

impl Default for PoisonRegistry {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_POISONED)
    }
}

impl From<PoisonRegistry> for PoisonList {
    fn from(r: PoisonRegistry) -> Self {
        PoisonList {
            limit: r.limit,
            granules: r.granules.into_values().collect(),
        }
    }
}

impl TryFrom<PoisonList> for PoisonRegistry {
    type Error = PoisonError;

    fn try_from(list: PoisonList) -> Result<Self, PoisonError> {
        if list.granules.len() > list.limit {
            return Err(PoisonError::TooMany {
                len: list.granules.len(),
                limit: list.limit,
            });
        }
        let mut r = PoisonRegistry::new(list.limit);
        for g in list.granules {
            match r.insert(g)? {
                Insertion::New { absorbed } if absorbed.is_empty() => {}
                Insertion::New { absorbed } => {
                    return Err(PoisonError::Overlap {
                        a: absorbed[0],
                        b: g,
                    });
                }
                Insertion::Duplicate { existing } => {
                    return Err(PoisonError::Overlap { a: existing, b: g });
                }
            }
        }
        Ok(r)
    }
}

impl PoisonRegistry {
    /// An empty registry holding at most `limit` disjoint granules.
    pub fn new(limit: usize) -> Self {
        Self {
            granules: BTreeMap::new(),
            limit,
        }
    }

    /// The bound on the number of granules.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Number of disjoint granules tracked.
    pub fn len(&self) -> usize {
        self.granules.len()
    }

    /// Whether nothing is poisoned.
    pub fn is_empty(&self) -> bool {
        self.granules.is_empty()
    }

    /// Total poisoned bytes.
    pub fn poisoned_bytes(&self) -> u64 {
        self.granules.values().map(|g| g.len()).sum()
    }

    /// The known granule containing `gpa`, if any.
    pub fn lookup(&self, gpa: GuestAddress) -> Option<GpaGranule> {
        self.granules
            .range(..=gpa)
            .next_back()
            .map(|(_, g)| *g)
            .filter(|g| g.contains(gpa))
    }

    /// Whether `gpa` is poisoned.
    pub fn contains(&self, gpa: GuestAddress) -> bool {
        self.lookup(gpa).is_some()
    }

    /// The known granule that covers all of `granule`, if any (then
    /// reporting `granule` again tells nothing new).
    pub fn covering(&self, granule: &GpaGranule) -> Option<GpaGranule> {
        self.lookup(granule.base())
            .filter(|g| g.shift() >= granule.shift())
    }

    /// Adds `granule`. A granule inside a known one is a
    /// [`Insertion::Duplicate`]; one that covers known granules replaces
    /// them. Fails, changing nothing, if the registry would exceed its bound.
    pub fn insert(&mut self, granule: GpaGranule) -> Result<Insertion, PoisonError> {
        if let Some(existing) = self.covering(&granule) {
            return Ok(Insertion::Duplicate { existing });
        }
        // Aligned power-of-two ranges nest or are disjoint: everything that
        // overlaps `granule` now lies inside it.
        let absorbed: Vec<GpaGranule> = self
            .granules
            .range(granule.base()..=granule.last())
            .map(|(_, g)| *g)
            .collect();
        if self.granules.len() - absorbed.len() + 1 > self.limit {
            return Err(PoisonError::Full {
                limit: self.limit,
                granule,
            });
        }
        for g in &absorbed {
            self.granules.remove(&g.base());
        }
        self.granules.insert(granule.base(), granule);
        Ok(Insertion::New { absorbed })
    }

    /// Removes one granule exactly as stored (after it has been repaired).
    /// Returns whether it was present.
    pub fn remove(&mut self, granule: &GpaGranule) -> bool {
        if self.granules.get(&granule.base()) == Some(granule) {
            self.granules.remove(&granule.base());
            true
        } else {
            false
        }
    }

    /// The poisoned granules, in address order.
    pub fn iter(&self) -> impl Iterator<Item = GpaGranule> + '_ {
        self.granules.values().copied()
    }

    /// Empties the registry and returns what it held, in address order: the
    /// granules the VMM must repair (remap or hole-punch) at reset.
    pub fn take_all(&mut self) -> Vec<GpaGranule> {
        mem::take(&mut self.granules).into_values().collect()
    }

    /// The poisoned granules that overlap `[start, start + len)`, in address
    /// order. The range is clipped at the top of the address space.
    pub fn overlapping(
        &self,
        start: GuestAddress,
        len: u64,
    ) -> impl Iterator<Item = GpaGranule> + '_ {
        let last = inclusive_last(start, len);
        // The first overlapping granule may start below `start`.
        let first = last.and_then(|_| self.lookup(start));
        let rest = last.into_iter().flat_map(move |last| {
            self.granules
                .range(start..=last)
                .map(|(_, g)| *g)
                .filter(move |g| Some(*g) != first)
        });
        first.into_iter().chain(rest)
    }

    /// Splits `[start, start + len)` into the sub-ranges that hold no
    /// poisoned memory, as `(start, length)` in address order: what a
    /// snapshot or migration may read. The range is clipped at the top of
    /// the address space.
    pub fn clean_ranges(&self, start: GuestAddress, len: u64) -> Vec<(GuestAddress, u64)> {
        let Some(last) = inclusive_last(start, len) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        // Next address not yet accounted for; `None` once past `last`.
        let mut cursor = Some(start);
        for g in self.overlapping(start, len) {
            let Some(c) = cursor else { break };
            if g.base() > c {
                out.push((c, g.base().unchecked_offset_from(c)));
            }
            cursor = g.last().checked_add(1).filter(|n| *n <= last);
        }
        if let Some(c) = cursor {
            let span = last.unchecked_offset_from(c);
            // Only the whole address space has a length u64 cannot hold:
            // its very last byte (never guest RAM) is then dropped.
            out.push((c, span.checked_add(1).unwrap_or(span)));
        }
        out.retain(|(_, n)| *n > 0);
        out
    }
}

/// Last address of `[start, start + len)`, clipped to `u64::MAX`; `None`
/// for an empty range.
fn inclusive_last(start: GuestAddress, len: u64) -> Option<GuestAddress> {
    (len != 0).then(|| GuestAddress(start.raw_value().saturating_add(len - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(base: u64, shift: u8) -> GpaGranule {
        GpaGranule::containing(GuestAddress(base), shift).unwrap()
    }

    fn a(v: u64) -> GuestAddress {
        GuestAddress(v)
    }

    #[test]
    fn small_inside_large_is_duplicate() {
        let mut r = PoisonRegistry::new(8);
        assert_eq!(
            r.insert(g(0x20_0000, 21)),
            Ok(Insertion::New { absorbed: vec![] })
        );
        assert_eq!(
            r.insert(g(0x20_3000, 12)),
            Ok(Insertion::Duplicate {
                existing: g(0x20_0000, 21)
            })
        );
        assert_eq!(
            r.insert(g(0x20_0000, 21)),
            Ok(Insertion::Duplicate {
                existing: g(0x20_0000, 21)
            })
        );
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn large_absorbs_small() {
        let mut r = PoisonRegistry::new(8);
        r.insert(g(0x20_1000, 12)).unwrap();
        r.insert(g(0x3f_f000, 12)).unwrap();
        r.insert(g(0x40_0000, 12)).unwrap();
        assert_eq!(
            r.insert(g(0x20_0000, 21)),
            Ok(Insertion::New {
                absorbed: vec![g(0x20_1000, 12), g(0x3f_f000, 12)]
            })
        );
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            vec![g(0x20_0000, 21), g(0x40_0000, 12)]
        );
    }

    #[test]
    fn lookup_and_contains() {
        let mut r = PoisonRegistry::new(8);
        r.insert(g(0x20_0000, 21)).unwrap();
        r.insert(g(0x1000, 12)).unwrap();
        assert_eq!(r.lookup(a(0x3f_ffff)), Some(g(0x20_0000, 21)));
        assert_eq!(r.lookup(a(0x40_0000)), None);
        assert_eq!(r.lookup(a(0x1fff)), Some(g(0x1000, 12)));
        assert!(!r.contains(a(0x2000)));
        assert!(!r.contains(a(0xfff)));
        assert!(!r.contains(a(0)));
    }

    #[test]
    fn bound_is_enforced_without_change() {
        let mut r = PoisonRegistry::new(2);
        r.insert(g(0x1000, 12)).unwrap();
        r.insert(g(0x3000, 12)).unwrap();
        let before = r.clone();
        let err = r.insert(g(0x8000, 12)).unwrap_err();
        assert_eq!(
            err,
            PoisonError::Full {
                limit: 2,
                granule: g(0x8000, 12)
            }
        );
        assert!(err.to_string().starts_with("Poison registry full"));
        assert_eq!(r, before);
        // A duplicate is still fine, and so is a granule absorbing others.
        assert!(matches!(
            r.insert(g(0x1000, 12)),
            Ok(Insertion::Duplicate { .. })
        ));
        assert!(matches!(r.insert(g(0, 21)), Ok(Insertion::New { .. })));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn take_all_and_remove() {
        let mut r = PoisonRegistry::new(8);
        r.insert(g(0x5000, 12)).unwrap();
        r.insert(g(0x1000, 12)).unwrap();
        assert!(!r.remove(&g(0, 21)));
        assert_eq!(r.take_all(), vec![g(0x1000, 12), g(0x5000, 12)]);
        assert!(r.is_empty());
        assert_eq!(r.limit(), 8);
    }

    #[test]
    fn clean_ranges_split_around_poison() {
        let mut r = PoisonRegistry::new(8);
        r.insert(g(0x1000, 12)).unwrap();
        r.insert(g(0x20_0000, 21)).unwrap();
        assert_eq!(
            r.clean_ranges(a(0), 0x50_0000),
            vec![
                (a(0), 0x1000),
                (a(0x2000), 0x1f_e000),
                (a(0x40_0000), 0x10_0000)
            ]
        );
        // Range starting inside a poisoned granule.
        assert_eq!(
            r.clean_ranges(a(0x30_0000), 0x20_0000),
            vec![(a(0x40_0000), 0x10_0000)]
        );
        assert_eq!(
            r.overlapping(a(0x30_0000), 0x20_0000).collect::<Vec<_>>(),
            vec![g(0x20_0000, 21)]
        );
        // Entirely poisoned, and empty.
        assert!(r.clean_ranges(a(0x1000), 0x1000).is_empty());
        assert!(r.clean_ranges(a(0x1000), 0).is_empty());
        assert_eq!(r.overlapping(a(0x1000), 0).count(), 0);
        // Clipped at the top of the address space: the last 4 KiB
        // (0xffff_ffff_ffff_f000..=u64::MAX) are 0x1000 bytes, a length a
        // (start, length) pair can hold.
        assert_eq!(
            r.clean_ranges(a(u64::MAX - 0xfff), 0x2000),
            vec![(a(u64::MAX - 0xfff), 0x1000)]
        );
        // Poison in the last page leaves nothing of it.
        r.insert(g(u64::MAX - 0xfff, 12)).unwrap();
        assert_eq!(
            r.clean_ranges(a(u64::MAX - 0x1fff), 0x3000),
            vec![(a(u64::MAX - 0x1fff), 0x1000)]
        );
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let mut r = PoisonRegistry::new(4);
        r.insert(g(0x1000, 12)).unwrap();
        r.insert(g(0x4000_0000, 30)).unwrap();
        let json = serde_json::to_string(&r).unwrap();
        let back: PoisonRegistry = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);

        let overlapping = PoisonList {
            limit: 4,
            granules: vec![g(0x1000, 12), g(0, 21)],
        };
        let json = serde_json::to_string(&overlapping).unwrap();
        serde_json::from_str::<PoisonRegistry>(&json).unwrap_err();
        assert_eq!(
            PoisonRegistry::try_from(overlapping),
            Err(PoisonError::Overlap {
                a: g(0x1000, 12),
                b: g(0, 21)
            })
        );
        let too_many = PoisonList {
            limit: 1,
            granules: vec![g(0x1000, 12), g(0x3000, 12)],
        };
        assert_eq!(
            PoisonRegistry::try_from(too_many),
            Err(PoisonError::TooMany { len: 2, limit: 1 })
        );
    }
}
