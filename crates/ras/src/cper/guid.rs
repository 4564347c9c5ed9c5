// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! `EFI_GUID` (UEFI 2.10 Appendix A): the identifiers of CPER section types,
//! notification types and creators.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::CperError;

/// A GUID in its on-wire (mixed-endian, EFI_GUID) byte order: the first three
/// fields are little-endian, the last 8 bytes are in textual order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The all-zero GUID (means "none" in FRU-id style fields).
    pub const NIL: Guid = Guid([0; 16]);

    /// Builds a GUID from its textual fields (`d1-d2-d3-d4[0..2]-d4[2..8]`).
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Self {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }

    /// The on-wire bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Whether this is the all-zero GUID.
    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }

    fn d1(&self) -> u32 {
        u32::from_le_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    fn d2(&self) -> u16 {
        u16::from_le_bytes([self.0[4], self.0[5]])
    }

    fn d3(&self) -> u16 {
        u16::from_le_bytes([self.0[6], self.0[7]])
    }
}

/// Lower-case `8-4-4-4-12` form, e.g.
/// `a5bc1114-6f64-4ede-b863-3e83ed7c83b1`.
impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            self.d1(),
            self.d2(),
            self.d3(),
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses the `8-4-4-4-12` form (either case, no braces).
impl FromStr for Guid {
    type Err = CperError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CperError::InvalidGuid {
            text: s.chars().take(64).collect(),
        };
        let t = s.as_bytes();
        if t.len() != 36 {
            return Err(bad());
        }
        // Textual nibbles, in textual order.
        let mut text = [0u8; 16];
        let mut n = 0usize;
        for (i, &c) in t.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err(bad());
                }
                continue;
            }
            let v = hex_digit(c).ok_or_else(bad)?;
            text[n / 2] |= if n.is_multiple_of(2) { v << 4 } else { v };
            n += 1;
        }
        let d1 = u32::from_be_bytes([text[0], text[1], text[2], text[3]]);
        let d2 = u16::from_be_bytes([text[4], text[5]]);
        let d3 = u16::from_be_bytes([text[6], text[7]]);
        let mut d4 = [0u8; 8];
        d4.copy_from_slice(&text[8..]);
        Ok(Guid::from_fields(d1, d2, d3, d4))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEM: Guid = Guid::from_fields(
        0xA5BC_1114,
        0x6F64,
        0x4EDE,
        [0xB8, 0x63, 0x3E, 0x83, 0xED, 0x7C, 0x83, 0xB1],
    );

    #[test]
    fn on_wire_order_is_mixed_endian() {
        assert_eq!(
            MEM.0,
            [
                0x14, 0x11, 0xBC, 0xA5, 0x64, 0x6F, 0xDE, 0x4E, 0xB8, 0x63, 0x3E, 0x83, 0xED, 0x7C,
                0x83, 0xB1
            ]
        );
    }

    #[test]
    fn display_and_parse_round_trip() {
        let text = MEM.to_string();
        assert_eq!(text, "a5bc1114-6f64-4ede-b863-3e83ed7c83b1");
        assert_eq!(text.parse::<Guid>().unwrap(), MEM);
        assert_eq!(
            "A5BC1114-6F64-4EDE-B863-3E83ED7C83B1"
                .parse::<Guid>()
                .unwrap(),
            MEM
        );
    }

    #[test]
    fn parse_rejects_malformed_text() {
        for s in [
            "",
            "a5bc1114-6f64-4edf-b863-3e83ed7c83b",
            "a5bc1114-6f64-4edf-b863-3e83ed7c83b1f",
            "a5bc1114x6f64-4edf-b863-3e83ed7c83b1",
            "g5bc1114-6f64-4edf-b863-3e83ed7c83b1",
            "{5bc1114-6f64-4edf-b863-3e83ed7c83b}",
            "a5bc1114-6f64-4edf-b863-3e83ed7c83\u{e9}",
        ] {
            assert!(
                matches!(s.parse::<Guid>(), Err(CperError::InvalidGuid { .. })),
                "{s:?}"
            );
        }
    }
}
