// SPDX-License-Identifier: Apache-2.0
//! Timestamps attached to every [`ras::report::ErrorReport`]: the engine has
//! no clock, the edge supplies wall-clock and monotonic time.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The two times an [`ras::report::ErrorReport`] carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportTime {
    /// Seconds since the Unix epoch (written into CPER timestamps).
    pub unix_time: u64,
    /// Monotonic milliseconds (used only for rate limits).
    pub monotonic_ms: u64,
}

impl ReportTime {
    /// Reads the clocks now. `monotonic_ms` counts from the first call in
    /// the process. Not async-signal-safe: call it from the vCPU loop or the
    /// VMM thread, never from a signal handler.
    pub fn now() -> Self {
        static START: OnceLock<Instant> = OnceLock::new();
        let start = *START.get_or_init(Instant::now);
        let unix_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let monotonic_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        Self {
            unix_time,
            monotonic_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_plausible_and_monotonic() {
        let a = ReportTime::now();
        let b = ReportTime::now();
        assert!(a.unix_time > 1_600_000_000);
        assert!(b.monotonic_ms >= a.monotonic_ms);
    }
}
