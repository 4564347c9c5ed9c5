// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! The unit in which guest memory is lost: a naturally aligned,
//! power-of-two sized range of guest-physical addresses (a 4 KiB page, a
//! 2 MiB or 1 GiB huge page).
//!
//! The host tells a VMM how much was lost in `si_addr_lsb` of its
//! `SIGBUS` (`include/uapi/asm-generic/siginfo.h`: "LSB of the reported
//! address"), so a granule is kept as a base and a shift, exactly that
//! lsb. Addresses are [`vm_memory::GuestAddress`], the guest-physical
//! address type of the VMM.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use vm_memory::{Address, GuestAddress};

/// Smallest granule (4 KiB, the smallest page on every host).
pub const MIN_GRANULE_SHIFT: u8 = 12;
/// Largest granule (16 GiB, the largest arm64 hugetlb page).
pub const MAX_GRANULE_SHIFT: u8 = 34;

/// A naturally aligned, power-of-two sized range of guest-physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "GranuleFields", try_from = "GranuleFields")]
pub struct GpaGranule {
    base: GuestAddress,
    shift: u8,
}

impl Hash for GpaGranule {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.base.raw_value().hash(state);
        self.shift.hash(state);
    }
}

/// The serialized form: `{"base": <gpa>, "shift": <lsb>}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GranuleFields {
    base: u64,
    shift: u8,
}

impl From<GpaGranule> for GranuleFields {
    fn from(g: GpaGranule) -> Self {
        GranuleFields {
            base: g.base.raw_value(),
            shift: g.shift,
        }
    }
}

/// A serialized granule that is not one: a size outside
/// [`MIN_GRANULE_SHIFT`]..=[`MAX_GRANULE_SHIFT`] or a base not aligned to it.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("{base:#x} is not a granule of 2^{shift} bytes")]
pub struct NotAGranule {
    /// The base read.
    pub base: u64,
    /// The size read, as a power of two.
    pub shift: u8,
}

impl TryFrom<GranuleFields> for GpaGranule {
    type Error = NotAGranule;

    fn try_from(f: GranuleFields) -> Result<Self, NotAGranule> {
        GpaGranule::from_range(
            GuestAddress(f.base),
            1u64.checked_shl(f.shift.into()).unwrap_or(0),
        )
        .ok_or(NotAGranule {
            base: f.base,
            shift: f.shift,
        })
    }
}

impl GpaGranule {
    /// The granule of size `1 << shift` that contains `gpa` (the address is
    /// rounded down, as `si_addr` must be). `None` if `shift` is outside
    /// [`MIN_GRANULE_SHIFT`]..=[`MAX_GRANULE_SHIFT`].
    pub fn containing(gpa: GuestAddress, shift: u8) -> Option<Self> {
        if !(MIN_GRANULE_SHIFT..=MAX_GRANULE_SHIFT).contains(&shift) {
            return None;
        }
        Some(Self {
            base: GuestAddress(gpa.raw_value() & !((1u64 << shift) - 1)),
            shift,
        })
    }

    /// The granule `[base, base + len)`: `len` must be a power of two in
    /// range and `base` aligned to it.
    pub fn from_range(base: GuestAddress, len: u64) -> Option<Self> {
        let shift = u8::try_from(len.trailing_zeros()).ok()?;
        let g = Self::containing(base, shift)?;
        (len.is_power_of_two() && g.base == base).then_some(g)
    }

    /// First guest-physical address of the granule.
    pub fn base(&self) -> GuestAddress {
        self.base
    }

    /// log2 of the size (`si_addr_lsb`).
    pub fn shift(&self) -> u8 {
        self.shift
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        1u64 << self.shift
    }

    /// Always false: a granule is never empty (kept for clippy's
    /// `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Last guest-physical address of the granule (inclusive).
    pub fn last(&self) -> GuestAddress {
        self.base.unchecked_add(self.len() - 1)
    }

    /// Whether `gpa` lies inside the granule.
    pub fn contains(&self, gpa: GuestAddress) -> bool {
        gpa >= self.base && gpa <= self.last()
    }

    /// The CPER Platform Memory Error "physical address mask" for this
    /// granule (UEFI 2.10 N.2.5): the address bits that identify the lost
    /// range.
    pub fn pa_mask(&self) -> u64 {
        !(self.len() - 1)
    }
}

impl fmt::Display for GpaGranule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}+2^{}", self.base.raw_value(), self.shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containing_rounds_down_and_masks() {
        let g = GpaGranule::containing(GuestAddress(0x4020_1234), 21).unwrap();
        assert_eq!(g.base(), GuestAddress(0x4020_0000));
        assert_eq!(g.len(), 0x20_0000);
        assert_eq!(g.last(), GuestAddress(0x403f_ffff));
        // UEFI 2.10 N.2.5: the mask keeps the bits above the granule.
        assert_eq!(g.pa_mask(), 0xffff_ffff_ffe0_0000);
        assert!(g.contains(GuestAddress(0x403f_ffff)));
        assert!(!g.contains(GuestAddress(0x4040_0000)));
        assert!(!g.contains(GuestAddress(0x401f_ffff)));
        assert_eq!(g.to_string(), "0x40200000+2^21");
    }

    #[test]
    fn shift_bounds() {
        assert_eq!(GpaGranule::containing(GuestAddress(0x1000), 11), None);
        assert!(GpaGranule::containing(GuestAddress(0x1000), 12).is_some());
        assert!(GpaGranule::containing(GuestAddress(0), 34).is_some());
        assert_eq!(GpaGranule::containing(GuestAddress(0x1000), 35), None);
        // The top of the address space: last() does not overflow.
        let top = GpaGranule::containing(GuestAddress(u64::MAX), 34).unwrap();
        assert_eq!(top.last(), GuestAddress(u64::MAX));
    }

    #[test]
    fn serde_form_is_checked() {
        let g = GpaGranule::containing(GuestAddress(0x4020_0000), 21).unwrap();
        let json = serde_json::to_string(&g).unwrap();
        assert_eq!(json, r#"{"base":1075838976,"shift":21}"#);
        assert_eq!(serde_json::from_str::<GpaGranule>(&json).unwrap(), g);
        // Unaligned base, shift out of range: refused, not rounded.
        for bad in [
            r#"{"base":1075843072,"shift":21}"#,
            r#"{"base":4096,"shift":11}"#,
            r#"{"base":0,"shift":64}"#,
            r#"{"base":0,"shift":35}"#,
        ] {
            assert!(serde_json::from_str::<GpaGranule>(bad).is_err(), "{bad}");
        }
        let e = serde_json::from_str::<GpaGranule>(r#"{"base":4096,"shift":21}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("0x1000 is not a granule of 2^21 bytes"),
            "{e}"
        );
    }

    #[test]
    fn from_range_needs_alignment_and_power_of_two() {
        let g = GpaGranule::from_range(GuestAddress(0x20_0000), 0x20_0000).unwrap();
        assert_eq!((g.base(), g.shift()), (GuestAddress(0x20_0000), 21));
        assert_eq!(
            GpaGranule::from_range(GuestAddress(0x1000), 0x20_0000),
            None
        );
        assert_eq!(GpaGranule::from_range(GuestAddress(0), 0x3000), None);
        assert_eq!(GpaGranule::from_range(GuestAddress(0), 0x800), None);
        assert_eq!(GpaGranule::from_range(GuestAddress(0), 0), None);
    }
}
