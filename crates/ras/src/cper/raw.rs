// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! A section of any type: its GUID and body bytes, copied verbatim (UEFI
//! 2.10 N.2.2 allows any section type; Linux prints unknown ones as
//! `section type: unknown, <guid>` and hex-dumps them).

use serde::{Deserialize, Serialize};

use super::{CperError, Guid};

/// A section of any type, kept as raw bytes. Decoding yields a typed
/// [`Section`](super::Section) for the memory and ARM processor GUIDs, so a
/// raw section of those types round-trips only if its body is valid.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RawSection {
    /// Section type GUID.
    pub section_type: Guid,
    /// Section body.
    pub data: Vec<u8>,
}

impl RawSection {
    /// A raw section of type `section_type`.
    pub fn new(section_type: Guid, data: Vec<u8>) -> Self {
        RawSection { section_type, data }
    }

    /// Copies the body to the start of `buf`.
    pub fn encode_into(&self, buf: &mut [u8]) -> Result<usize, CperError> {
        let n = self.data.len();
        let have = buf.len();
        buf.get_mut(..n)
            .ok_or(CperError::BufferTooSmall { need: n, have })?
            .copy_from_slice(&self.data);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_body() {
        let s = RawSection::new(Guid::from_fields(1, 2, 3, [4; 8]), vec![1, 2, 3]);
        let mut buf = [0u8; 4];
        assert_eq!(s.encode_into(&mut buf), Ok(3));
        assert_eq!(buf, [1, 2, 3, 0]);
        assert_eq!(
            s.encode_into(&mut buf[..2]),
            Err(CperError::BufferTooSmall { need: 3, have: 2 })
        );
    }
}
