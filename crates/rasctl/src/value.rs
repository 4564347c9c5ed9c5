// SPDX-License-Identifier: Apache-2.0
//! Parsers for command-line values: numbers, sizes, severities, hex bytes.

use std::str::FromStr;

use ras::config::{parse_number, parse_size};
use ras::cper::{Guid, Severity};
use ras::granule::{GpaGranule, MAX_GRANULE_SHIFT, MIN_GRANULE_SHIFT};
use ras::inject::{self, InjectArmError};
use vm_memory::GuestAddress;

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

/// Parses a granule size, written as `--ras block_size` and `inject-error
/// granule` are ([`parse_size`]: `4K`, `2M`, `0x200000`): a power of two
/// from 4 KiB to 16 GiB. Returns its shift.
pub fn parse_granule_shift(s: &str) -> Result<u8, String> {
    let len: u64 = parse_size("granule", s).map_err(|e| e.to_string())?;
    GpaGranule::from_range(GuestAddress(0), len)
        .map(|g| g.shift())
        .ok_or_else(|| {
            format!(
                "'{s}': a granule is a power of two from {} to {} bytes",
                1u64 << MIN_GRANULE_SHIFT,
                1u64 << MAX_GRANULE_SHIFT
            )
        })
}

/// Parses a severity word, as `inject-error severity` does
/// ([`inject::parse_severity`]).
pub fn parse_severity(s: &str) -> Result<Severity, String> {
    inject::parse_severity(s).map_err(|e| e.to_string())
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
        // parse_size's syntax; the shift of a power of two from 4K to 16G.
        for (text, shift) in [
            ("4K", 12),
            ("0x2000", 13),
            ("2M", 21),
            ("2097152", 21),
            ("1G", 30),
            ("16G", 34),
        ] {
            assert_eq!(parse_granule_shift(text), Ok(shift), "{text}");
        }
        for text in ["2K", "3M", "32G", "0", "2m", "shift=13", ""] {
            parse_granule_shift(text).unwrap_err();
        }
        assert!(
            parse_granule_shift("2k")
                .unwrap_err()
                .contains("Invalid number '2k' for 'granule'")
        );
        assert_eq!(
            parse_granule_shift("3M").unwrap_err(),
            "'3M': a granule is a power of two from 4096 to 17179869184 bytes"
        );
    }

    #[test]
    fn severity_errors_name_the_choices() {
        assert_eq!(parse_severity("fatal"), Ok(Severity::Fatal));
        assert_eq!(
            parse_severity("bad").unwrap_err(),
            "Invalid value 'bad' for 'severity' (allowed: recoverable|fatal|corrected|informational)"
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
