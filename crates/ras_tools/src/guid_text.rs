// SPDX-License-Identifier: Apache-2.0
//! GUIDs written as the specs print them (UEFI 2.10 Appendix A, "registry
//! format" `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`), turned into
//! [`ras::cper::Guid`] at compile time, so a constant reads as the table
//! it comes from.

use ras::cper::Guid;

/// The value of one hex digit; panics (at compile time in a `const`) on
/// anything else.
const fn hex_digit(c: u8) -> u64 {
    match c {
        b'0'..=b'9' => (c - b'0') as u64,
        b'a'..=b'f' => (c - b'a' + 10) as u64,
        b'A'..=b'F' => (c - b'A' + 10) as u64,
        _ => panic!("a GUID digit must be hexadecimal"),
    }
}

/// The number written by the hex digits `s[from..to]`.
const fn hex(s: &[u8], from: usize, to: usize) -> u64 {
    let mut v = 0;
    let mut i = from;
    while i < to {
        v = (v << 4) | hex_digit(s[i]);
        i += 1;
    }
    v
}

/// The GUID written `text` in registry format (36 characters, dashes after
/// digits 8, 12, 16 and 20). In a `const`, a malformed text is a compile
/// error; elsewhere it panics.
pub const fn guid(text: &str) -> Guid {
    let s = text.as_bytes();
    assert!(
        s.len() == 36 && s[8] == b'-' && s[13] == b'-' && s[18] == b'-' && s[23] == b'-',
        "a GUID is written xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
    );
    let mut d4 = [0u8; 8];
    d4[0] = hex(s, 19, 21) as u8;
    d4[1] = hex(s, 21, 23) as u8;
    let mut i = 0;
    while i < 6 {
        d4[2 + i] = hex(s, 24 + 2 * i, 26 + 2 * i) as u8;
        i += 1;
    }
    Guid::from_fields(
        hex(s, 0, 8) as u32,
        hex(s, 9, 13) as u16,
        hex(s, 14, 18) as u16,
        d4,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memory error section type (UEFI 2.10 N.2.5, `{0xA5BC1114,
    /// 0x6F64, 0x4EDE, {0xB8, 0x63, 0x3E, 0x83, 0xED, 0x7C, 0x83, 0xB1}}`),
    /// whose on-wire bytes are the first three fields little-endian, then
    /// the last eight as written.
    #[test]
    fn registry_text_gives_the_wire_bytes() {
        assert_eq!(
            guid("A5BC1114-6F64-4EDE-B863-3E83ED7C83B1").0,
            [
                0x14, 0x11, 0xBC, 0xA5, 0x64, 0x6F, 0xDE, 0x4E, 0xB8, 0x63, 0x3E, 0x83, 0xED, 0x7C,
                0x83, 0xB1
            ]
        );
        assert_eq!(
            guid("a5bc1114-6f64-4ede-b863-3e83ed7c83b1"),
            guid("A5BC1114-6F64-4EDE-B863-3E83ED7C83B1")
        );
    }

    #[test]
    #[should_panic(expected = "xxxxxxxx-xxxx")]
    fn a_missing_dash_is_refused() {
        let _ = guid("A5BC1114-6F64-4EDE-B8633E83ED7C83B1X");
    }

    #[test]
    #[should_panic(expected = "hexadecimal")]
    fn a_non_hex_digit_is_refused() {
        let _ = guid("A5BC1114-6F64-4EDE-B863-3E83ED7C83BG");
    }
}
