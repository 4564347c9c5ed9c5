// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! The times every [`ErrorReport`] carries: the engine has no clock, the
//! edge reads wall-clock time (for CPER timestamps) and monotonic time
//! (for the storm and rate limits).

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ras::report::{ErrorCause, ErrorReport};

/// The two times of a report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportTime {
    /// Seconds since the Unix epoch.
    pub unix_time: u64,
    /// Milliseconds since the first reading in this process.
    pub monotonic_ms: u64,
}

impl ReportTime {
    /// Reads the clocks. Not async-signal-safe: call it from the vCPU loop
    /// or the VMM thread, never from a signal handler.
    pub fn now() -> Self {
        static START: OnceLock<Instant> = OnceLock::new();
        let start = *START.get_or_init(Instant::now);
        Self {
            unix_time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            monotonic_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The report of `cause` at this time.
    pub fn report(self, cause: ErrorCause) -> ErrorReport {
        ErrorReport {
            cause,
            unix_time: self.unix_time,
            monotonic_ms: self.monotonic_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::thread::sleep;
    use std::time::Duration;

    use super::*;

    #[test]
    fn clocks_follow_real_time() {
        let a = ReportTime::now();
        sleep(Duration::from_millis(30));
        let b = ReportTime::now();
        // Monotonic time moved by at least the sleep (a frozen clock fails).
        assert!(b.monotonic_ms - a.monotonic_ms >= 30, "{a:?} {b:?}");
        // Wall-clock time is the system's, to the second.
        let sys = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(sys.abs_diff(b.unix_time) <= 1, "{sys} {b:?}");
    }
}
