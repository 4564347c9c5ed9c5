// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! CPER error severity (UEFI 2.10 N.2.1 "Error Severity", also used by the
//! ACPI 6.5 §18.3.2.7 Generic Error Status Block and Generic Error Data
//! Entry).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::CperError;

/// CPER error severity (UEFI 2.10 N.2.1 / N.2.2). Serialized (and shown
/// in events and by `rasctl`) as its lowercase [`name`](Severity::name).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// 0: recoverable (uncorrected, the OS can contain it).
    #[default]
    Recoverable,
    /// 1: fatal.
    Fatal,
    /// 2: corrected.
    Corrected,
    /// 3: informational.
    Informational,
}

impl Severity {
    /// Every severity, in on-wire order.
    pub const ALL: [Severity; 4] = [
        Severity::Recoverable,
        Severity::Fatal,
        Severity::Corrected,
        Severity::Informational,
    ];

    /// The lowercase name: `recoverable`, `fatal`, `corrected`,
    /// `informational` (what [`FromStr`] parses).
    pub const fn name(self) -> &'static str {
        match self {
            Severity::Recoverable => "recoverable",
            Severity::Fatal => "fatal",
            Severity::Corrected => "corrected",
            Severity::Informational => "informational",
        }
    }

    /// The on-wire value (0 recoverable, 1 fatal, 2 corrected, 3 info).
    pub const fn to_u32(self) -> u32 {
        match self {
            Severity::Recoverable => 0,
            Severity::Fatal => 1,
            Severity::Corrected => 2,
            Severity::Informational => 3,
        }
    }

    /// The severity for an on-wire value, `None` for values above 3.
    pub const fn from_u32(value: u32) -> Option<Self> {
        match value {
            0 => Some(Severity::Recoverable),
            1 => Some(Severity::Fatal),
            2 => Some(Severity::Corrected),
            3 => Some(Severity::Informational),
            _ => None,
        }
    }

    /// How bad the severity is: fatal 3 > recoverable 2 > corrected 1 >
    /// informational 0 (the on-wire values are not ordered).
    pub const fn rank(self) -> u8 {
        match self {
            Severity::Fatal => 3,
            Severity::Recoverable => 2,
            Severity::Corrected => 1,
            Severity::Informational => 0,
        }
    }

    /// The more severe of `self` and `other` (see [`Severity::rank`]).
    pub const fn most_severe(self, other: Severity) -> Severity {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// The most severe of `items`, `None` if there are none.
    pub fn most_severe_of<I: IntoIterator<Item = Severity>>(items: I) -> Option<Severity> {
        items.into_iter().reduce(Severity::most_severe)
    }

    /// Whether this is an uncorrected severity (recoverable or fatal): sets
    /// the "uncorrectable error valid" bit of the block status.
    pub const fn is_uncorrected(self) -> bool {
        matches!(self, Severity::Recoverable | Severity::Fatal)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a [`Severity::name`].
impl FromStr for Severity {
    type Err = CperError;

    fn from_str(s: &str) -> Result<Self, CperError> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.name() == s)
            .ok_or_else(|| CperError::InvalidSeverityName {
                text: s.chars().take(32).collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Severity; 4] = Severity::ALL;

    #[test]
    fn names_parse_serialize_and_refuse() {
        for s in ALL {
            assert_eq!(s.name().parse::<Severity>().unwrap(), s);
            assert_eq!(s.to_string(), s.name());
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.name())
            );
        }
        assert!(matches!(
            "Recoverable".parse::<Severity>(),
            Err(CperError::InvalidSeverityName { .. })
        ));
        assert!(matches!(
            "info".parse::<Severity>(),
            Err(CperError::InvalidSeverityName { .. })
        ));
    }

    #[test]
    fn wire_values_round_trip() {
        for (i, s) in ALL.iter().enumerate() {
            assert_eq!(s.to_u32(), i as u32);
            assert_eq!(Severity::from_u32(i as u32), Some(*s));
        }
        assert_eq!(Severity::from_u32(4), None);
        assert_eq!(Severity::from_u32(u32::MAX), None);
    }

    #[test]
    fn ordering() {
        use Severity::*;
        assert_eq!(Corrected.most_severe(Recoverable), Recoverable);
        assert_eq!(Recoverable.most_severe(Fatal), Fatal);
        assert_eq!(Fatal.most_severe(Recoverable), Fatal);
        assert_eq!(Informational.most_severe(Corrected), Corrected);
        assert_eq!(
            Severity::most_severe_of([Informational, Recoverable, Corrected]),
            Some(Recoverable)
        );
        assert_eq!(Severity::most_severe_of([]), None);
        assert!(Recoverable.is_uncorrected() && Fatal.is_uncorrected());
        assert!(!Corrected.is_uncorrected() && !Informational.is_uncorrected());
    }
}
