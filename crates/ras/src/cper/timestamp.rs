// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! The CPER timestamp (UEFI 2.10 N.2.1, "Error Record Header" Timestamp, also
//! used by the ACPI 6.5 §18.3.2.7.1 Generic Error Data Entry revision 0x300):
//! eight bytes, BCD coded.
//!
//! | byte | field |
//! |---|---|
//! | 0 | seconds (BCD) |
//! | 1 | minutes (BCD) |
//! | 2 | hours (BCD) |
//! | 3 | flags: bit 0 = precise, bits 7:1 reserved |
//! | 4 | day (BCD) |
//! | 5 | month (BCD) |
//! | 6 | year (BCD, 0..99) |
//! | 7 | century (BCD) |

use serde::{Deserialize, Serialize};

use super::CperError;

/// A CPER timestamp, kept as decimal values. `year` is the full year
/// (century * 100 + year of century), 0..=9999.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timestamp {
    /// 0..=59 (60 for a leap second).
    pub seconds: u8,
    /// 0..=59.
    pub minutes: u8,
    /// 0..=23.
    pub hours: u8,
    /// The time was taken when the error occurred (flag bit 0).
    pub precise: bool,
    /// 1..=31.
    pub day: u8,
    /// 1..=12.
    pub month: u8,
    /// Full year, 0..=9999.
    pub year: u16,
}

/// Flag bit 0 of byte 3: the timestamp is precise.
pub const TIMESTAMP_PRECISE: u8 = 0x1;

const fn to_bcd(v: u8) -> u8 {
    let v = v % 100;
    ((v / 10) << 4) | (v % 10)
}

const fn from_bcd(b: u8) -> Option<u8> {
    let hi = b >> 4;
    let lo = b & 0xf;
    if hi > 9 || lo > 9 {
        None
    } else {
        Some(hi * 10 + lo)
    }
}

// Howard Hinnant's days-from-civil algorithms (proleptic Gregorian).
const fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m as u8, d as u8)
}

const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Last second representable (9999-12-31T23:59:59Z).
const MAX_UNIX: u64 = 253_402_300_799;

impl Timestamp {
    /// The UTC date and time `secs` seconds after the Unix epoch, marked
    /// precise. Pure arithmetic (no clock); times after 9999-12-31T23:59:59
    /// saturate to that value.
    pub const fn from_unix(secs: u64) -> Self {
        let secs = if secs > MAX_UNIX { MAX_UNIX } else { secs };
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        Timestamp {
            seconds: (rem % 60) as u8,
            minutes: ((rem / 60) % 60) as u8,
            hours: (rem / 3600) as u8,
            precise: true,
            day: d,
            month: m,
            year: y as u16,
        }
    }

    /// Seconds since the Unix epoch, `None` when the date is not a valid
    /// calendar date at or after 1970-01-01.
    pub fn to_unix(&self) -> Option<u64> {
        if !(1..=12).contains(&self.month)
            || self.day == 0
            || self.day > 31
            || self.hours > 23
            || self.minutes > 59
            || self.seconds > 60
        {
            return None;
        }
        let days = days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        let secs = days * 86_400
            + i64::from(self.hours) * 3600
            + i64::from(self.minutes) * 60
            + i64::from(self.seconds);
        u64::try_from(secs).ok()
    }

    /// The eight on-wire bytes as a little-endian `u64`. Fields out of range
    /// are reduced modulo 100 (year modulo 10000).
    pub const fn to_u64(&self) -> u64 {
        let year = self.year % 10_000;
        u64::from_le_bytes([
            to_bcd(self.seconds),
            to_bcd(self.minutes),
            to_bcd(self.hours),
            if self.precise { TIMESTAMP_PRECISE } else { 0 },
            to_bcd(self.day),
            to_bcd(self.month),
            to_bcd((year % 100) as u8),
            to_bcd((year / 100) as u8),
        ])
    }

    /// Decodes the on-wire value: every byte but the flags must be BCD and
    /// the reserved flag bits 7:1 must be clear.
    pub const fn from_u64(raw: u64) -> Result<Self, CperError> {
        let b = raw.to_le_bytes();
        if b[3] & !TIMESTAMP_PRECISE != 0 {
            return Err(CperError::BadTimestamp { raw });
        }
        let (
            Some(seconds),
            Some(minutes),
            Some(hours),
            Some(day),
            Some(month),
            Some(year),
            Some(century),
        ) = (
            from_bcd(b[0]),
            from_bcd(b[1]),
            from_bcd(b[2]),
            from_bcd(b[4]),
            from_bcd(b[5]),
            from_bcd(b[6]),
            from_bcd(b[7]),
        )
        else {
            return Err(CperError::BadTimestamp { raw });
        };
        Ok(Timestamp {
            seconds,
            minutes,
            hours,
            precise: b[3] & TIMESTAMP_PRECISE != 0,
            day,
            month,
            year: century as u16 * 100 + year as u16,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        let t = Timestamp::from_unix(0);
        assert_eq!((t.year, t.month, t.day, t.hours), (1970, 1, 1, 0));
        // 2026-11-24T18:33:20Z
        let t = Timestamp::from_unix(1_795_545_200);
        assert_eq!(
            (t.year, t.month, t.day, t.hours, t.minutes, t.seconds),
            (2026, 11, 24, 18, 33, 20)
        );
        assert!(t.precise);
        assert_eq!(
            t.to_u64().to_le_bytes(),
            [0x20, 0x33, 0x18, 0x01, 0x24, 0x11, 0x26, 0x20]
        );
        // Leap day.
        let t = Timestamp::from_unix(951_782_400); // 2000-02-29T00:00:00Z
        assert_eq!((t.year, t.month, t.day), (2000, 2, 29));
        let t = Timestamp::from_unix(u64::MAX);
        assert_eq!((t.year, t.month, t.day, t.seconds), (9999, 12, 31, 59));
    }

    #[test]
    fn unix_round_trip() {
        for secs in [
            0u64,
            59,
            86_399,
            86_400,
            951_782_400,
            1_795_545_200,
            MAX_UNIX,
        ] {
            let t = Timestamp::from_unix(secs);
            assert_eq!(t.to_unix(), Some(secs));
            assert_eq!(Timestamp::from_u64(t.to_u64()), Ok(t));
        }
    }

    #[test]
    fn rejects_non_bcd_and_reserved_flags() {
        let good = Timestamp::from_unix(1_795_545_200).to_u64();
        Timestamp::from_u64(good).unwrap();
        for (byte, val) in [
            (0usize, 0x0a_u8),
            (1, 0xa0),
            (7, 0xff),
            (3, 0x02),
            (3, 0x80),
        ] {
            let mut b = good.to_le_bytes();
            b[byte] = val;
            let raw = u64::from_le_bytes(b);
            assert_eq!(
                Timestamp::from_u64(raw),
                Err(CperError::BadTimestamp { raw })
            );
        }
    }
}
