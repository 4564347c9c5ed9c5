// SPDX-License-Identifier: Apache-2.0
//! Parsers for command-line values: numbers, sizes, severities, hex bytes.

use std::str::FromStr;

use ras::config::parse_number;
use ras::cper::{Guid, Severity};
use ras::granule::{MAX_GRANULE_SHIFT, MIN_GRANULE_SHIFT};
use ras::inject::{self, InjectArmError};

/// Parses a u64 written in decimal or with a `0x` prefix (the number
/// syntax of `--ras` and `inject-error`, [`parse_number`]), `_` separators
/// allowed.
pub fn parse_u64(s: &str) -> Result<u64, String> {
    parse_number("number", &s.replace('_', "")).map_err(|_| {
        format!("'{s}' is not a number (decimal, or hexadecimal after 0x; '_' separators allowed)")
    })
}

/// Parses an ARM error type: cache, tlb, bus, micro_arch.
pub fn parse_arm_error(s: &str) -> Result<InjectArmError, String> {
    s.parse().map_err(|e: inject::InjectError| e.to_string())
}

/// Parses a granule: `4K`, `2M`, `1G` or a shift written `shift=N`.
pub fn parse_granule_shift(s: &str) -> Result<u8, String> {
    let shift = match s.to_ascii_uppercase().as_str() {
        "4K" | "4KIB" => 12,
        "64K" | "64KIB" => 16,
        "2M" | "2MIB" => 21,
        "32M" | "32MIB" => 25,
        "512M" | "512MIB" => 29,
        "1G" | "1GIB" => 30,
        other => match other.strip_prefix("SHIFT=") {
            Some(n) => n
                .parse::<u8>()
                .map_err(|e| format!("'{s}': bad shift ({e})"))?,
            None => {
                return Err(format!(
                    "'{s}': expected 4K, 64K, 2M, 32M, 512M, 1G or shift=N"
                ));
            }
        },
    };
    if !(MIN_GRANULE_SHIFT..=MAX_GRANULE_SHIFT).contains(&shift) {
        return Err(format!(
            "'{s}': granule shift {shift} outside {MIN_GRANULE_SHIFT}..={MAX_GRANULE_SHIFT}"
        ));
    }
    Ok(shift)
}

/// Parses a CPER severity name ([`Severity::name`]).
pub fn parse_severity(s: &str) -> Result<Severity, String> {
    Severity::from_str(s).map_err(|e| e.to_string())
}

/// Parses a GUID `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn parse_guid(s: &str) -> Result<Guid, String> {
    Guid::from_str(s).map_err(|e| format!("'{s}': {e}"))
}

/// Bytes given on the command line (a newtype: clap reads a bare `Vec` as
/// several values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HexBytes(pub Vec<u8>);

/// Parses bytes written in hex (spaces and `:` ignored).
pub fn parse_hex_bytes(s: &str) -> Result<HexBytes, String> {
    let digits: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    inject::decode_hex(&digits)
        .map(HexBytes)
        .map_err(|e| format!("'{s}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("0x4000_1000"), Ok(0x4000_1000));
        assert_eq!(parse_u64("4096"), Ok(4096));
        parse_u64("0xg").unwrap_err();
        parse_u64("").unwrap_err();
    }

    #[test]
    fn granules() {
        assert_eq!(parse_granule_shift("4K"), Ok(12));
        assert_eq!(parse_granule_shift("2m"), Ok(21));
        assert_eq!(parse_granule_shift("1G"), Ok(30));
        assert_eq!(parse_granule_shift("shift=13"), Ok(13));
        parse_granule_shift("shift=11").unwrap_err();
        parse_granule_shift("3M").unwrap_err();
    }

    #[test]
    fn severity_errors_name_the_choices() {
        assert_eq!(parse_severity("fatal"), Ok(Severity::Fatal));
        assert!(
            parse_severity("bad")
                .unwrap_err()
                .contains("recoverable|fatal")
        );
    }

    #[test]
    fn hex() {
        assert_eq!(
            parse_hex_bytes("de:ad be ef"),
            Ok(HexBytes(vec![0xde, 0xad, 0xbe, 0xef]))
        );
        parse_hex_bytes("abc").unwrap_err();
        parse_hex_bytes("zz").unwrap_err();
    }
}
