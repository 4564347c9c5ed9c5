// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! The ARM Processor Error section (UEFI 2.10 N.2.4.4): a 40-byte header,
//! `N` 32-byte error information entries (N.2.4.4.1), `M` processor context
//! entries (N.2.4.4.2) and optional vendor-specific bytes.
//!
//! # Error-info `type` encoding: UEFI 2.10 bitmap
//!
//! The encoding of the error information `type` byte changed between spec
//! revisions: UEFI 2.6..2.9 define an enumeration (0 cache, 1 TLB, 2 bus,
//! 3 micro-architectural), UEFI 2.9A and later (2.10 N.2.4.4.1, the error
//! information `Type` field) a bitmap: bit 1 cache, bit 2 TLB, bit 3 bus,
//! bit 4 micro-architectural, bit 0 and bits 5..7 reserved. This module
//! uses the **UEFI 2.10 bitmap** ([`ArmErrorTypes`]) because the reader that
//! acts on the record is the guest kernel, and Linux reads the bitmap
//! (`CPER_ARM_ERR_TYPE_MASK`, mainline and stable backports such as Debian's
//! 6.1): it calls memory_failure() on a recoverable error info only when the
//! cache bit is set and the physical fault address is valid. With the old
//! enumeration the guest warned `Unhandled processor error type 0x00` for a
//! cache error and took a "bus" error (2) for a cache error.
//!
//! libcper 0.0.4 (the independent decoder `tests/libcper` checks against)
//! still reads the old enumeration, so it names our types wrongly: cache (2) as
//! "Bus", TLB (4), bus (8) and micro-architectural (16) as an unknown type.
//! The test pins the raw bytes and that known disagreement.
//!
//! Decoding rejects a type with no bit set or with a reserved bit set
//! ([`CperError::EmptyArmErrorType`], [`CperError::BadArmErrorType`]).

use core::fmt;
use core::ops::BitOr;

use serde::{Deserialize, Serialize};
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{CperError, Guid, read_wire};

/// Section type GUID `E19E3D16-BC11-11E4-9CAA-C2051D5D46B0`.
pub const ARM_PROCESSOR_SECTION_GUID: Guid = Guid::from_fields(
    0xE19E_3D16,
    0xBC11,
    0x11E4,
    [0x9C, 0xAA, 0xC2, 0x05, 0x1D, 0x5D, 0x46, 0xB0],
);

/// The spec revision whose error-info `type` encoding this module uses.
///
/// UEFI 2.10 bitmap, because the guest kernel (Linux
/// `CPER_ARM_ERR_TYPE_MASK`) reads the bitmap; libcper 0.0.4 reads the older
/// UEFI 2.9 enumeration and names these values wrongly (see the module docs).
pub const ARM_ERROR_TYPE_ENCODING: &str = "UEFI 2.10 bitmap (bit 1 cache, bit 2 TLB, bit 3 bus, \
     bit 4 micro-arch; guest kernels read the bitmap, libcper 0.0.4 the 2.9 enum)";

/// Size of the section header.
pub const ARM_HEADER_LEN: usize = 40;
/// Size of one error information entry.
pub const ARM_ERROR_INFO_LEN: usize = 32;
/// Size of a context information header (the register array follows).
pub const ARM_CONTEXT_HEADER_LEN: usize = 8;

/// Section header validation bits (UEFI 2.10 Table N-17).
pub mod validation {
    /// MPIDR valid.
    pub const MPIDR: u32 = 1 << 0;
    /// Error affinity level valid.
    pub const AFFINITY_LEVEL: u32 = 1 << 1;
    /// Running state valid.
    pub const RUNNING_STATE: u32 = 1 << 2;
    /// Vendor-specific information valid.
    pub const VENDOR_SPECIFIC: u32 = 1 << 3;
    /// All defined bits.
    pub const ALL: u32 = 0xf;
}

/// Error information validation bits (UEFI 2.10 Table N-18).
pub mod info_validation {
    /// Multiple error (count) valid.
    pub const MULTIPLE_ERROR: u16 = 1 << 0;
    /// Flags valid.
    pub const FLAGS: u16 = 1 << 1;
    /// Error information valid.
    pub const ERROR_INFORMATION: u16 = 1 << 2;
    /// Virtual fault address valid.
    pub const VIRTUAL_FAULT_ADDRESS: u16 = 1 << 3;
    /// Physical fault address valid.
    pub const PHYSICAL_FAULT_ADDRESS: u16 = 1 << 4;
    /// All defined bits.
    pub const ALL: u16 = 0x1f;
}

/// Error information flags (UEFI 2.10 Table N-18 "Flags").
pub mod info_flags {
    /// First error captured.
    pub const FIRST_ERROR: u8 = 1 << 0;
    /// Last error captured.
    pub const LAST_ERROR: u8 = 1 << 1;
    /// Propagated.
    pub const PROPAGATED: u8 = 1 << 2;
    /// Overflow.
    pub const OVERFLOW: u8 = 1 << 3;
}

/// On-wire section header (UEFI 2.10 Table N-17).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct ArmHeaderWire {
    /// Offset 0.
    pub validation_bits: U32,
    /// Offset 4.
    pub error_info_count: U16,
    /// Offset 6.
    pub context_info_count: U16,
    /// Offset 8: whole section, header included.
    pub section_length: U32,
    /// Offset 12.
    pub error_affinity_level: u8,
    /// Offset 13.
    pub reserved: [u8; 3],
    /// Offset 16.
    pub mpidr: U64,
    /// Offset 24.
    pub midr: U64,
    /// Offset 32.
    pub running_state: U32,
    /// Offset 36.
    pub psci_state: U32,
}
crate::wire_layout!(ArmHeaderWire = ARM_HEADER_LEN;
    validation_bits @ 0, error_info_count @ 4, context_info_count @ 6, section_length @ 8,
    error_affinity_level @ 12, reserved @ 13, mpidr @ 16, midr @ 24, running_state @ 32,
    psci_state @ 36);

/// On-wire error information entry (UEFI 2.10 Table N-18).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct ArmErrorInfoWire {
    /// Offset 0.
    pub version: u8,
    /// Offset 1: always 32.
    pub length: u8,
    /// Offset 2.
    pub validation_bits: U16,
    /// Offset 4.
    pub error_type: u8,
    /// Offset 5.
    pub multiple_error: U16,
    /// Offset 7.
    pub flags: u8,
    /// Offset 8.
    pub error_information: U64,
    /// Offset 16.
    pub virtual_fault_address: U64,
    /// Offset 24.
    pub physical_fault_address: U64,
}
crate::wire_layout!(ArmErrorInfoWire = ARM_ERROR_INFO_LEN;
    version @ 0, length @ 1, validation_bits @ 2, error_type @ 4, multiple_error @ 5, flags @ 7,
    error_information @ 8, virtual_fault_address @ 16, physical_fault_address @ 24);

/// On-wire context information header (UEFI 2.10 Table N-23).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct ArmContextHeaderWire {
    /// Offset 0.
    pub version: U16,
    /// Offset 2.
    pub register_context_type: U16,
    /// Offset 4: bytes of the register array that follows.
    pub register_array_size: U32,
}
crate::wire_layout!(ArmContextHeaderWire = ARM_CONTEXT_HEADER_LEN;
    version @ 0, register_context_type @ 2, register_array_size @ 4);

/// Error information `type`: the UEFI 2.10 bitmap (see the module docs).
///
/// A non-empty set of [`ArmErrorTypes::CACHE`], [`ArmErrorTypes::TLB`],
/// [`ArmErrorTypes::BUS`] and [`ArmErrorTypes::MICRO_ARCHITECTURAL`]; the
/// spec defines the field as a bitmap, so several may be set. The value
/// never holds a reserved bit or no bit at all: construct it from the
/// constants (combined with `|`) or with [`ArmErrorTypes::from_bits`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct ArmErrorTypes(u8);

impl ArmErrorTypes {
    /// Bit 1: cache error.
    pub const CACHE: Self = Self(1 << 1);
    /// Bit 2: TLB error.
    pub const TLB: Self = Self(1 << 2);
    /// Bit 3: bus error.
    pub const BUS: Self = Self(1 << 3);
    /// Bit 4: micro-architectural error.
    pub const MICRO_ARCHITECTURAL: Self = Self(1 << 4);
    /// Every defined bit; bit 0 and bits 5..7 are reserved.
    pub const DEFINED_BITS: u8 = 0x1e;

    const NAMES: [(Self, &'static str); 4] = [
        (Self::CACHE, "cache"),
        (Self::TLB, "TLB"),
        (Self::BUS, "bus"),
        (Self::MICRO_ARCHITECTURAL, "micro-architectural"),
    ];

    /// On-wire value.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// From the on-wire value: at least one defined bit and no reserved bit.
    pub const fn from_bits(value: u8) -> Result<Self, CperError> {
        if value == 0 {
            Err(CperError::EmptyArmErrorType)
        } else if value & !Self::DEFINED_BITS != 0 {
            Err(CperError::BadArmErrorType {
                value,
                reserved: value & !Self::DEFINED_BITS,
            })
        } else {
            Ok(Self(value))
        }
    }

    /// Both sets of types.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every type in `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl Default for ArmErrorTypes {
    /// A cache error.
    fn default() -> Self {
        Self::CACHE
    }
}

impl BitOr for ArmErrorTypes {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl TryFrom<u8> for ArmErrorTypes {
    type Error = CperError;

    fn try_from(value: u8) -> Result<Self, CperError> {
        Self::from_bits(value)
    }
}

impl From<ArmErrorTypes> for u8 {
    fn from(t: ArmErrorTypes) -> u8 {
        t.bits()
    }
}

impl fmt::Display for ArmErrorTypes {
    /// The type names joined by `+`, e.g. `cache+TLB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (t, name) in Self::NAMES {
            if self.contains(t) {
                if !first {
                    f.write_str("+")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ArmErrorTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArmErrorTypes({:#04x}: {self})", self.0)
    }
}

/// One ARM error information entry (UEFI 2.10 N.2.4.4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArmErrorInfo {
    /// Structure version (0).
    pub version: u8,
    /// Which fields are valid ([`info_validation`]).
    pub validation_bits: u16,
    /// Error type bitmap (UEFI 2.10).
    pub error_type: ArmErrorTypes,
    /// Multiple error count.
    pub multiple_error: u16,
    /// Flags ([`info_flags`]).
    pub flags: u8,
    /// Type-specific error information (cache/TLB/bus check structure).
    pub error_information: u64,
    /// Virtual fault address.
    pub virtual_fault_address: u64,
    /// Physical fault address.
    pub physical_fault_address: u64,
}

/// One processor context entry (UEFI 2.10 N.2.4.4.2): a register context
/// type (UEFI 2.10 Table N-23, e.g. 4 = AArch64 GPRs, 5 = AArch64 EL1
/// context) and the raw register array.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArmContextInfo {
    /// Structure version (0).
    pub version: u16,
    /// Register context type (UEFI 2.10 Table N-23).
    pub register_context_type: u16,
    /// The raw register array.
    pub registers: Vec<u8>,
}

/// The ARM Processor Error section (UEFI 2.10 N.2.4.4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmProcessorSection {
    /// Which header fields are valid ([`validation`]).
    pub validation_bits: u32,
    /// Error affinity level.
    pub error_affinity_level: u8,
    /// MPIDR_EL1 of the affected PE.
    pub mpidr: u64,
    /// MIDR_EL1 of the affected PE.
    pub midr: u64,
    /// Running state (bit 0: the PE is running).
    pub running_state: u32,
    /// PSCI state, when not running.
    pub psci_state: u32,
    /// Error information entries.
    pub error_info: Vec<ArmErrorInfo>,
    /// Processor context entries.
    pub context_info: Vec<ArmContextInfo>,
    /// Vendor-specific bytes after the context entries.
    pub vendor_specific: Vec<u8>,
}

impl ArmProcessorSection {
    /// One error of `error_type` on the running PE identified by `mpidr`
    /// (and `midr`), with the virtual and physical fault addresses when
    /// known: the section an operator's drill or a test reports.
    pub fn single_error(
        mpidr: u64,
        midr: u64,
        error_type: ArmErrorTypes,
        va: Option<u64>,
        pa: Option<u64>,
    ) -> Self {
        let mut info = ArmErrorInfo {
            error_type,
            ..Default::default()
        };
        if let Some(va) = va {
            info.validation_bits |= info_validation::VIRTUAL_FAULT_ADDRESS;
            info.virtual_fault_address = va;
        }
        if let Some(pa) = pa {
            info.validation_bits |= info_validation::PHYSICAL_FAULT_ADDRESS;
            info.physical_fault_address = pa;
        }
        ArmProcessorSection {
            validation_bits: validation::MPIDR | validation::RUNNING_STATE,
            mpidr,
            midr,
            running_state: 1,
            error_info: vec![info],
            ..Default::default()
        }
    }

    /// Encoded size in bytes (the `section_length` field).
    pub fn encoded_len(&self) -> usize {
        ARM_HEADER_LEN
            + ARM_ERROR_INFO_LEN * self.error_info.len()
            + self
                .context_info
                .iter()
                .map(|c| ARM_CONTEXT_HEADER_LEN + c.registers.len())
                .sum::<usize>()
            + self.vendor_specific.len()
    }

    /// Writes the section at the start of `buf`, returning its length.
    pub fn encode_into(&self, buf: &mut [u8]) -> Result<usize, CperError> {
        let len = self.encoded_len();
        if buf.len() < len {
            return Err(CperError::BufferTooSmall {
                need: len,
                have: buf.len(),
            });
        }
        let too_many = |what, count| CperError::TooManyEntries { what, count };
        let header = ArmHeaderWire {
            validation_bits: self.validation_bits.into(),
            error_info_count: u16::try_from(self.error_info.len())
                .map_err(|_| too_many("ARM error info", self.error_info.len()))?
                .into(),
            context_info_count: u16::try_from(self.context_info.len())
                .map_err(|_| too_many("ARM context info", self.context_info.len()))?
                .into(),
            section_length: u32::try_from(len)
                .map_err(|_| CperError::TooLong {
                    what: "ARM section",
                    len,
                })?
                .into(),
            error_affinity_level: self.error_affinity_level,
            reserved: [0; 3],
            mpidr: self.mpidr.into(),
            midr: self.midr.into(),
            running_state: self.running_state.into(),
            psci_state: self.psci_state.into(),
        };
        let mut rest = &mut buf[..len];
        header
            .write_to_prefix(rest)
            .map_err(|_| CperError::BufferTooSmall { need: len, have: 0 })?;
        rest = &mut rest[ARM_HEADER_LEN..];
        for info in &self.error_info {
            let wire = ArmErrorInfoWire {
                version: info.version,
                length: ARM_ERROR_INFO_LEN as u8,
                validation_bits: info.validation_bits.into(),
                error_type: info.error_type.bits(),
                multiple_error: info.multiple_error.into(),
                flags: info.flags,
                error_information: info.error_information.into(),
                virtual_fault_address: info.virtual_fault_address.into(),
                physical_fault_address: info.physical_fault_address.into(),
            };
            wire.write_to_prefix(rest)
                .map_err(|_| CperError::BufferTooSmall { need: len, have: 0 })?;
            rest = &mut rest[ARM_ERROR_INFO_LEN..];
        }
        for ctx in &self.context_info {
            let wire = ArmContextHeaderWire {
                version: ctx.version.into(),
                register_context_type: ctx.register_context_type.into(),
                register_array_size: u32::try_from(ctx.registers.len())
                    .map_err(|_| CperError::TooLong {
                        what: "ARM register array",
                        len: ctx.registers.len(),
                    })?
                    .into(),
            };
            wire.write_to_prefix(rest)
                .map_err(|_| CperError::BufferTooSmall { need: len, have: 0 })?;
            rest = &mut rest[ARM_CONTEXT_HEADER_LEN..];
            rest[..ctx.registers.len()].copy_from_slice(&ctx.registers);
            rest = &mut rest[ctx.registers.len()..];
        }
        rest.copy_from_slice(&self.vendor_specific);
        Ok(len)
    }

    /// Decodes a section body. `section_length` must equal the body length,
    /// the counts must fit in it, every error info must be 32 bytes long and
    /// have a valid type bitmap, and no reserved validation bit may be set.
    pub fn decode(body: &[u8]) -> Result<Self, CperError> {
        let (h, mut rest) = read_wire::<ArmHeaderWire>(body, "ARM processor section header")?;
        let declared = h.section_length.get() as usize;
        if declared != body.len() {
            return Err(CperError::LengthMismatch {
                what: "ARM processor section length",
                declared,
                actual: body.len(),
            });
        }
        let validation_bits = h.validation_bits.get();
        if validation_bits & !validation::ALL != 0 {
            return Err(CperError::ReservedBits {
                what: "ARM processor validation bits",
                value: validation_bits.into(),
            });
        }
        let n_info = usize::from(h.error_info_count.get());
        let n_ctx = usize::from(h.context_info_count.get());
        if n_info * ARM_ERROR_INFO_LEN + n_ctx * ARM_CONTEXT_HEADER_LEN > rest.len() {
            return Err(CperError::CountExceedsLength {
                what: "ARM error/context info entries",
                count: n_info + n_ctx,
                length: rest.len(),
            });
        }
        let mut error_info = Vec::with_capacity(n_info);
        for _ in 0..n_info {
            let (w, r) = read_wire::<ArmErrorInfoWire>(rest, "ARM error info")?;
            rest = r;
            if usize::from(w.length) != ARM_ERROR_INFO_LEN {
                return Err(CperError::BadSectionLength {
                    section: "ARM error info",
                    expected: ARM_ERROR_INFO_LEN,
                    found: w.length.into(),
                });
            }
            let v = w.validation_bits.get();
            if v & !info_validation::ALL != 0 {
                return Err(CperError::ReservedBits {
                    what: "ARM error info validation bits",
                    value: v.into(),
                });
            }
            let error_type = ArmErrorTypes::from_bits(w.error_type)?;
            error_info.push(ArmErrorInfo {
                version: w.version,
                validation_bits: v,
                error_type,
                multiple_error: w.multiple_error.get(),
                flags: w.flags,
                error_information: w.error_information.get(),
                virtual_fault_address: w.virtual_fault_address.get(),
                physical_fault_address: w.physical_fault_address.get(),
            });
        }
        let mut context_info = Vec::with_capacity(n_ctx);
        for _ in 0..n_ctx {
            let (w, r) = read_wire::<ArmContextHeaderWire>(rest, "ARM context info header")?;
            let size = w.register_array_size.get() as usize;
            if size > r.len() {
                return Err(CperError::Truncated {
                    what: "ARM register array",
                    need: size,
                    have: r.len(),
                });
            }
            context_info.push(ArmContextInfo {
                version: w.version.get(),
                register_context_type: w.register_context_type.get(),
                registers: r[..size].to_vec(),
            });
            rest = &r[size..];
        }
        Ok(ArmProcessorSection {
            validation_bits,
            error_affinity_level: h.error_affinity_level,
            mpidr: h.mpidr.get(),
            midr: h.midr.get(),
            running_state: h.running_state.get(),
            psci_state: h.psci_state.get(),
            error_info,
            context_info,
            vendor_specific: rest.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> ArmProcessorSection {
        ArmProcessorSection {
            validation_bits: validation::MPIDR | validation::RUNNING_STATE,
            error_affinity_level: 0,
            mpidr: 0x8000_0001,
            midr: 0x410f_d0c0,
            running_state: 1,
            psci_state: 0,
            error_info: vec![
                ArmErrorInfo {
                    validation_bits: info_validation::FLAGS
                        | info_validation::PHYSICAL_FAULT_ADDRESS,
                    error_type: ArmErrorTypes::CACHE,
                    flags: info_flags::FIRST_ERROR,
                    physical_fault_address: 0x4020_0000,
                    ..Default::default()
                },
                ArmErrorInfo {
                    error_type: ArmErrorTypes::MICRO_ARCHITECTURAL | ArmErrorTypes::BUS,
                    ..Default::default()
                },
            ],
            context_info: vec![ArmContextInfo {
                version: 0,
                register_context_type: 4,
                registers: (0..=255u8).collect(),
            }],
            vendor_specific: vec![0xde, 0xad],
        }
    }

    #[test]
    fn round_trip_and_known_bytes() {
        let s = sample();
        let len = s.encoded_len();
        assert_eq!(len, 40 + 64 + 8 + 256 + 2);
        let mut buf = vec![0u8; len];
        assert_eq!(s.encode_into(&mut buf), Ok(len));
        assert_eq!(&buf[4..12], &[2, 0, 1, 0, 0x72, 0x01, 0, 0]);
        assert_eq!(buf[40 + 1], 32);
        assert_eq!(buf[40 + 4], 0x02); // cache: bit 1, UEFI 2.10 bitmap
        assert_eq!(buf[72 + 4], 0x18); // micro-arch (bit 4) + bus (bit 3)
        assert_eq!(&buf[104..112], &[0, 0, 4, 0, 0, 1, 0, 0]);
        assert_eq!(ArmProcessorSection::decode(&buf), Ok(s));
    }

    #[test]
    fn decode_rejects_inconsistencies() {
        let mut buf = vec![0u8; sample().encoded_len()];
        sample().encode_into(&mut buf).unwrap();
        let len = buf.len();
        assert!(matches!(
            ArmProcessorSection::decode(&buf[..len - 1]),
            Err(CperError::LengthMismatch { .. })
        ));
        for (value, reserved) in [(0x01, 0x01), (0x03, 0x01), (0x20, 0x20), (0xff, 0xe1)] {
            let mut b = buf.clone();
            b[40 + 4] = value;
            assert_eq!(
                ArmProcessorSection::decode(&b),
                Err(CperError::BadArmErrorType { value, reserved })
            );
        }
        let mut b = buf.clone();
        b[72 + 4] = 0;
        assert_eq!(
            ArmProcessorSection::decode(&b),
            Err(CperError::EmptyArmErrorType)
        );
        let mut b = buf.clone();
        b[40 + 1] = 31;
        assert!(matches!(
            ArmProcessorSection::decode(&b),
            Err(CperError::BadSectionLength { found: 31, .. })
        ));
        let mut b = buf.clone();
        b[4] = 0xff; // 255 error infos
        assert!(matches!(
            ArmProcessorSection::decode(&b),
            Err(CperError::CountExceedsLength { .. })
        ));
        let mut b = buf.clone();
        b[104 + 5] = 2; // register array of 512 bytes
        assert!(matches!(
            ArmProcessorSection::decode(&b),
            Err(CperError::Truncated {
                what: "ARM register array",
                ..
            })
        ));
        let mut b = buf;
        b[0] = 0x10;
        assert!(matches!(
            ArmProcessorSection::decode(&b),
            Err(CperError::ReservedBits { .. })
        ));
        assert!(matches!(
            ArmProcessorSection::decode(&[0u8; 39]),
            Err(CperError::Truncated {
                need: 40,
                have: 39,
                ..
            })
        ));
    }

    #[test]
    fn error_type_bitmap_values() {
        assert_eq!(ArmErrorTypes::CACHE.bits(), 0x02);
        assert_eq!(ArmErrorTypes::TLB.bits(), 0x04);
        assert_eq!(ArmErrorTypes::BUS.bits(), 0x08);
        assert_eq!(ArmErrorTypes::MICRO_ARCHITECTURAL.bits(), 0x10);
        assert_eq!(ArmErrorTypes::default(), ArmErrorTypes::CACHE);
        for v in 0..=u8::MAX {
            let ok = v != 0 && v & !0x1e == 0;
            assert_eq!(ArmErrorTypes::from_bits(v).is_ok(), ok, "{v:#04x}");
            if ok {
                assert_eq!(ArmErrorTypes::from_bits(v).unwrap().bits(), v);
            }
        }
        let t = ArmErrorTypes::CACHE | ArmErrorTypes::TLB;
        assert!(t.contains(ArmErrorTypes::CACHE) && t.contains(ArmErrorTypes::TLB));
        assert!(!t.contains(ArmErrorTypes::BUS));
        assert_eq!(t.to_string(), "cache+TLB");
        assert_eq!(
            ArmErrorTypes::MICRO_ARCHITECTURAL.to_string(),
            "micro-architectural"
        );
        assert_eq!(serde_json::to_string(&t).unwrap(), "6");
        assert_eq!(serde_json::from_str::<ArmErrorTypes>("6").unwrap(), t);
        serde_json::from_str::<ArmErrorTypes>("1").unwrap_err();
        serde_json::from_str::<ArmErrorTypes>("0").unwrap_err();
    }

    #[test]
    fn default_section_is_a_bare_header() {
        let s = ArmProcessorSection::default();
        let mut buf = [0u8; 40];
        assert_eq!(s.encode_into(&mut buf), Ok(40));
        assert_eq!(ArmProcessorSection::decode(&buf), Ok(s));
    }
}
