// SPDX-License-Identifier: Apache-2.0
//! Option strings: the `key=value,key=value` syntax of `--ras`
//! ([`crate::config`]) and of `inject-error` ([`crate::inject`]), in the
//! shape of Cloud Hypervisor's `OptionParser` (an unknown key is an error,
//! a repeated key is an error; no value of these options contains a comma,
//! so there is no bracket quoting), and the value syntaxes they share.
//! Each option keeps its own error type; the helpers here return what
//! went wrong and the caller names the option in its message.

/// What is wrong with the shape of an option string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyntaxError<'a> {
    /// Two commas in a row, or a leading/trailing comma.
    EmptyOption,
    /// An option without `=value` (the option).
    MissingValue(&'a str),
    /// A key given twice (the key).
    DuplicateKey(&'a str),
}

/// Splits `s` into its `(key, value)` pairs, in order. Values may be empty:
/// the caller checks the key first, so that `foo=` reports the unknown key.
pub fn split(s: &str) -> Result<Vec<(&str, &str)>, SyntaxError<'_>> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for option in s.split(',') {
        if option.is_empty() {
            return Err(SyntaxError::EmptyOption);
        }
        let (key, value) = option
            .split_once('=')
            .ok_or(SyntaxError::MissingValue(option))?;
        if pairs.iter().any(|(k, _)| *k == key) {
            return Err(SyntaxError::DuplicateKey(key));
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// A value written as one of a fixed set of words.
pub trait Keyword: Sized + Copy + PartialEq + 'static {
    /// The words and their values.
    const WORDS: &'static [(&'static str, Self)];
    /// The words, `|`-separated, for error messages.
    const ALLOWED: &'static str;

    /// The word for `self`.
    fn word(self) -> &'static str {
        Self::WORDS
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("?", |(w, _)| *w)
    }

    /// The value of `word`, `None` if it is not one of [`Self::WORDS`].
    fn from_word(word: &str) -> Option<Self> {
        Self::WORDS
            .iter()
            .find(|(w, _)| *w == word)
            .map(|(_, v)| *v)
    }
}

/// `on` / `off`.
impl Keyword for bool {
    const WORDS: &'static [(&'static str, Self)] = &[("on", true), ("off", false)];
    const ALLOWED: &'static str = "on|off";
}

/// A number in decimal or with a `0x` prefix in hexadecimal: digits only
/// (no sign, no spaces, no separators), `None` otherwise or on overflow.
pub fn parse_u64(value: &str) -> Option<u64> {
    let (digits, radix) = match value.strip_prefix("0x").or(value.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (value, 10),
    };
    // from_str_radix accepts a leading '+': check the digits first.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Why hex digits are not bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HexError {
    /// An odd number of digits (how many).
    OddLength(usize),
    /// A character that is not a hex digit, at this byte offset.
    NotHex(usize),
}

/// Hex digits (two per byte, either case) to bytes.
pub fn decode_hex(text: &str) -> Result<Vec<u8>, HexError> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(HexError::OddLength(digits.len()));
    }
    let nibble = |i: usize| {
        char::from(digits[i])
            .to_digit(16)
            .map(|d| d as u8)
            .ok_or(HexError::NotHex(i))
    };
    (0..digits.len())
        .step_by(2)
        .map(|i| Ok(nibble(i)? << 4 | nibble(i + 1)?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_order_and_refuses_bad_shapes() {
        assert_eq!(
            split("a=1,b=,c=x=y"),
            Ok(vec![("a", "1"), ("b", ""), ("c", "x=y")])
        );
        assert_eq!(split(""), Err(SyntaxError::EmptyOption));
        assert_eq!(split("a=1,"), Err(SyntaxError::EmptyOption));
        assert_eq!(split("a=1,,b=2"), Err(SyntaxError::EmptyOption));
        assert_eq!(split("a=1,b"), Err(SyntaxError::MissingValue("b")));
        assert_eq!(split("a=1,a=2"), Err(SyntaxError::DuplicateKey("a")));
    }

    #[test]
    fn keywords_round_trip() {
        for (word, value) in bool::WORDS {
            assert_eq!(bool::from_word(word), Some(*value));
            assert_eq!(value.word(), *word);
        }
        assert_eq!(bool::from_word("yes"), None);
        assert_eq!(bool::from_word("ON"), None);
    }

    #[test]
    fn numbers_are_decimal_or_0x_hex() {
        assert_eq!(parse_u64("4096"), Some(4096));
        assert_eq!(parse_u64("0x48000000"), Some(0x4800_0000));
        assert_eq!(parse_u64("0XfF"), Some(255));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "0x",
            "+5",
            "-1",
            " 1",
            "1_000",
            "12ab",
            "0xg",
            "18446744073709551616",
            "0x10000000000000000",
        ] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hex_decodes_or_says_where_it_fails() {
        assert_eq!(decode_hex(""), Ok(vec![]));
        assert_eq!(decode_hex("00ff10Ab"), Ok(vec![0x00, 0xff, 0x10, 0xab]));
        assert_eq!(decode_hex("abc"), Err(HexError::OddLength(3)));
        assert_eq!(decode_hex("00zz"), Err(HexError::NotHex(2)));
        assert_eq!(decode_hex("0+"), Err(HexError::NotHex(1)));
        // Multi-byte characters are not digits (and do not panic).
        assert_eq!(decode_hex("éé"), Err(HexError::NotHex(0)));
    }
}
