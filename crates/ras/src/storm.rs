// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! Recent host-reported errors, for the storm and rate limits of
//! [`crate::policy::decide`].
//!
//! A guest that does not contain an error (a kernel that touches the lost
//! page again and again, a loop re-faulting after every abort) would make
//! the VMM re-inject the same abort forever. The engine records every
//! host-reported error here ([`StormTracker::observe`]); the policy reads
//! how many fell in the window ([`StormTracker::count`]) and stops the VM
//! when a limit is passed. The tracker is bounded
//! ([`STORM_TRACKER_CAPACITY`] entries, oldest dropped first), so a storm
//! cannot grow the VMM's memory.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::granule::GpaGranule;

/// Bound on the entries a [`StormTracker`] keeps.
pub const STORM_TRACKER_CAPACITY: usize = 65536;

/// What a host-reported error counts under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StormKey {
    /// Consumptions of a granule (the known poisoned granule containing the
    /// reported one, else the reported one).
    Granule(GpaGranule),
    /// Consumptions without a guest-physical address on a vCPU.
    NoGpa {
        /// vCPU index.
        vcpu: u32,
    },
    /// Counted only towards the rate limit (action-optional errors).
    RateOnly,
}

/// One host-reported error, as the policy asks the engine to remember it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Monotonic time of the report, in milliseconds.
    pub at_ms: u64,
    /// What it counts under.
    pub key: StormKey,
}

/// Recent host-reported errors within the window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StormTracker {
    recent: VecDeque<Observation>,
}

impl StormTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one observation and forgets those older than `window_ms`
    /// before it, and the oldest beyond the capacity.
    pub fn observe(&mut self, obs: Observation, window_ms: u32) {
        self.recent.push_back(obs);
        while let Some(first) = self.recent.front() {
            if !in_window(first.at_ms, obs.at_ms, window_ms)
                || self.recent.len() > STORM_TRACKER_CAPACITY
            {
                self.recent.pop_front();
            } else {
                break;
            }
        }
    }

    /// Observations in the `window_ms` ending at `now_ms`, under `key` if
    /// given, else all of them.
    pub fn count(&self, key: Option<&StormKey>, now_ms: u64, window_ms: u32) -> u32 {
        let n = self
            .recent
            .iter()
            .filter(|o| in_window(o.at_ms, now_ms, window_ms))
            .filter(|o| key.is_none_or(|k| o.key == *k))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Number of observations held (bounded by [`STORM_TRACKER_CAPACITY`]).
    pub fn len(&self) -> usize {
        self.recent.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.recent.is_empty()
    }

    /// Forgets everything (guest reset, restore).
    pub fn clear(&mut self) {
        self.recent.clear();
    }
}

/// Whether an error at `at` is within `window` ms before `now`. An error
/// "from the future" (the edge's clock went back) counts as in the window.
fn in_window(at: u64, now: u64, window_ms: u32) -> bool {
    now.saturating_sub(at) < u64::from(window_ms)
}

#[cfg(test)]
mod tests {
    use vm_memory::GuestAddress;

    use super::*;

    fn obs(at_ms: u64, key: StormKey) -> Observation {
        Observation { at_ms, key }
    }

    #[test]
    fn counts_within_the_window_only() {
        let g = GpaGranule::containing(GuestAddress(0x1000), 12).unwrap();
        let mut t = StormTracker::new();
        t.observe(obs(1000, StormKey::Granule(g)), 100);
        t.observe(obs(1050, StormKey::RateOnly), 100);
        t.observe(obs(1099, StormKey::Granule(g)), 100);
        // Window (999, 1099]: all three.
        assert_eq!(t.count(None, 1099, 100), 3);
        assert_eq!(t.count(Some(&StormKey::Granule(g)), 1099, 100), 2);
        // At 1100 the first one (1000) is exactly 100 ms old: out.
        assert_eq!(t.count(Some(&StormKey::Granule(g)), 1100, 100), 1);
        assert_eq!(t.count(Some(&StormKey::NoGpa { vcpu: 0 }), 1099, 100), 0);
        // A new observation forgets what fell out of its window.
        t.observe(obs(1200, StormKey::RateOnly), 100);
        assert_eq!(t.len(), 1);
        // A clock that went back: counted, not lost.
        assert_eq!(t.count(None, 1150, 100), 1);
        t.clear();
        assert!(t.is_empty());
    }

    #[test]
    fn capacity_bounds_memory() {
        let mut t = StormTracker::new();
        for i in 0..(STORM_TRACKER_CAPACITY as u64 + 10) {
            // All in one millisecond: nothing ages out, the capacity bites.
            t.observe(obs(5, StormKey::RateOnly), 1000);
            assert!(t.len() <= STORM_TRACKER_CAPACITY, "after {i}");
        }
        assert_eq!(t.len(), STORM_TRACKER_CAPACITY);
    }
}
