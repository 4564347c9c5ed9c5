// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! The Platform Memory Error section (UEFI 2.10 N.2.5, "Memory Error
//! Section"), 80 bytes.

use serde::{Deserialize, Serialize};
use zerocopy::little_endian::{U16, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::{CperError, Guid, read_wire};
use crate::granule::GpaGranule;

/// Section type GUID `A5BC1114-6F64-4EDE-B863-3E83ED7C83B1`.
pub const MEMORY_ERROR_SECTION_GUID: Guid = Guid::from_fields(
    0xA5BC_1114,
    0x6F64,
    0x4EDE,
    [0xB8, 0x63, 0x3E, 0x83, 0xED, 0x7C, 0x83, 0xB1],
);

/// Size of the section body.
pub const MEMORY_ERROR_SECTION_LEN: usize = 80;

/// Validation bits of the memory error section (UEFI 2.10 Table N-32).
pub mod validation {
    /// Error status valid.
    pub const ERROR_STATUS: u64 = 1 << 0;
    /// Physical address valid.
    pub const PHYSICAL_ADDRESS: u64 = 1 << 1;
    /// Physical address mask valid.
    pub const PHYSICAL_ADDRESS_MASK: u64 = 1 << 2;
    /// Node valid.
    pub const NODE: u64 = 1 << 3;
    /// Card valid.
    pub const CARD: u64 = 1 << 4;
    /// Module valid.
    pub const MODULE: u64 = 1 << 5;
    /// Bank valid.
    pub const BANK: u64 = 1 << 6;
    /// Device valid.
    pub const DEVICE: u64 = 1 << 7;
    /// Row valid.
    pub const ROW: u64 = 1 << 8;
    /// Column valid.
    pub const COLUMN: u64 = 1 << 9;
    /// Bit position valid.
    pub const BIT_POSITION: u64 = 1 << 10;
    /// Requestor id valid.
    pub const REQUESTOR_ID: u64 = 1 << 11;
    /// Responder id valid.
    pub const RESPONDER_ID: u64 = 1 << 12;
    /// Target id valid.
    pub const TARGET_ID: u64 = 1 << 13;
    /// Memory error type valid.
    pub const ERROR_TYPE: u64 = 1 << 14;
    /// Rank number valid.
    pub const RANK: u64 = 1 << 15;
    /// Card handle valid.
    pub const CARD_HANDLE: u64 = 1 << 16;
    /// Module handle valid.
    pub const MODULE_HANDLE: u64 = 1 << 17;
    /// Extended row bits (16, 17 in `extended`) valid.
    pub const EXTENDED_ROW: u64 = 1 << 18;
    /// Bank group (upper byte of `bank`) valid.
    pub const BANK_GROUP: u64 = 1 << 19;
    /// Bank address (lower byte of `bank`) valid.
    pub const BANK_ADDRESS: u64 = 1 << 20;
    /// Chip identification (bits 7:5 of `extended`) valid.
    pub const CHIP_ID: u64 = 1 << 21;
    /// All bits defined by UEFI 2.10; the others are reserved.
    pub const ALL: u64 = (1 << 22) - 1;
}

/// Memory error types (UEFI 2.10 N.2.5 "Memory Error Type").
pub mod error_type {
    /// Unknown.
    pub const UNKNOWN: u8 = 0;
    /// No error.
    pub const NO_ERROR: u8 = 1;
    /// Single-bit ECC.
    pub const SINGLE_BIT_ECC: u8 = 2;
    /// Multi-bit ECC (what a lost page is reported as).
    pub const MULTI_BIT_ECC: u8 = 3;
    /// Single-symbol chipkill ECC.
    pub const SINGLE_SYMBOL_CHIPKILL: u8 = 4;
    /// Multi-symbol chipkill ECC.
    pub const MULTI_SYMBOL_CHIPKILL: u8 = 5;
    /// Master abort.
    pub const MASTER_ABORT: u8 = 6;
    /// Target abort.
    pub const TARGET_ABORT: u8 = 7;
    /// Parity error.
    pub const PARITY: u8 = 8;
    /// Watchdog timeout.
    pub const WATCHDOG_TIMEOUT: u8 = 9;
    /// Invalid address.
    pub const INVALID_ADDRESS: u8 = 10;
    /// Mirror broken.
    pub const MIRROR_BROKEN: u8 = 11;
    /// Memory sparing.
    pub const MEMORY_SPARING: u8 = 12;
    /// Scrub corrected error.
    pub const SCRUB_CORRECTED: u8 = 13;
    /// Scrub uncorrected error.
    pub const SCRUB_UNCORRECTED: u8 = 14;
    /// Physical memory map-out event.
    pub const MAP_OUT: u8 = 15;
}

/// On-wire layout of the memory error section (UEFI 2.10 Table N-32).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, packed)]
pub struct MemoryErrorWire {
    /// Offset 0.
    pub validation_bits: U64,
    /// Offset 8.
    pub error_status: U64,
    /// Offset 16.
    pub physical_address: U64,
    /// Offset 24.
    pub physical_address_mask: U64,
    /// Offset 32.
    pub node: U16,
    /// Offset 34.
    pub card: U16,
    /// Offset 36.
    pub module: U16,
    /// Offset 38.
    pub bank: U16,
    /// Offset 40.
    pub device: U16,
    /// Offset 42.
    pub row: U16,
    /// Offset 44.
    pub column: U16,
    /// Offset 46.
    pub bit_position: U16,
    /// Offset 48.
    pub requestor_id: U64,
    /// Offset 56.
    pub responder_id: U64,
    /// Offset 64.
    pub target_id: U64,
    /// Offset 72.
    pub error_type: u8,
    /// Offset 73: extended row bits 16/17 (bits 1:0), chip id (bits 7:5).
    pub extended: u8,
    /// Offset 74.
    pub rank_number: U16,
    /// Offset 76.
    pub card_handle: U16,
    /// Offset 78.
    pub module_handle: U16,
}
crate::wire_layout!(MemoryErrorWire = MEMORY_ERROR_SECTION_LEN;
    validation_bits @ 0, error_status @ 8, physical_address @ 16, physical_address_mask @ 24,
    node @ 32, card @ 34, module @ 36, bank @ 38, device @ 40, row @ 42, column @ 44,
    bit_position @ 46, requestor_id @ 48, responder_id @ 56, target_id @ 64, error_type @ 72,
    extended @ 73, rank_number @ 74, card_handle @ 76, module_handle @ 78);

/// A Platform Memory Error section (UEFI 2.10 N.2.5). Every field of the
/// 80-byte body; a field is meaningful only when its bit (see
/// [`validation`]) is set in `validation_bits`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemoryErrorSection {
    /// Which fields are valid ([`validation`]).
    pub validation_bits: u64,
    /// Error status (UEFI N.2.5 "Error Status", bits 15:8 error type).
    pub error_status: u64,
    /// Physical address of the error.
    pub physical_address: u64,
    /// Which bits of `physical_address` identify the failed range.
    pub physical_address_mask: u64,
    /// Node.
    pub node: u16,
    /// Card.
    pub card: u16,
    /// Module.
    pub module: u16,
    /// Bank (bank group in the upper, bank address in the lower byte when
    /// those bits are valid).
    pub bank: u16,
    /// Device.
    pub device: u16,
    /// Row (bits 15:0).
    pub row: u16,
    /// Column.
    pub column: u16,
    /// Bit position.
    pub bit_position: u16,
    /// Requestor id.
    pub requestor_id: u64,
    /// Responder id.
    pub responder_id: u64,
    /// Target id.
    pub target_id: u64,
    /// Memory error type ([`error_type`]).
    pub error_type: u8,
    /// Extended row bits / chip id.
    pub extended: u8,
    /// Rank number.
    pub rank_number: u16,
    /// SMBIOS type 16 handle of the card.
    pub card_handle: u16,
    /// SMBIOS type 17 handle of the module.
    pub module_handle: u16,
}

impl MemoryErrorSection {
    /// The section reporting the loss of `granule`: physical address = its
    /// base, physical address mask = [`GpaGranule::pa_mask`] (a 2 MiB loss
    /// is reported with a 2 MiB mask, never 4 KiB), error type multi-bit ECC;
    /// those three validation bits are set.
    pub fn for_granule(granule: &GpaGranule) -> Self {
        MemoryErrorSection {
            validation_bits: validation::PHYSICAL_ADDRESS
                | validation::PHYSICAL_ADDRESS_MASK
                | validation::ERROR_TYPE,
            physical_address: granule.base().0,
            physical_address_mask: granule.pa_mask(),
            error_type: error_type::MULTI_BIT_ECC,
            ..Default::default()
        }
    }

    /// The physical address, if valid.
    pub fn valid_physical_address(&self) -> Option<u64> {
        (self.validation_bits & validation::PHYSICAL_ADDRESS != 0).then_some(self.physical_address)
    }

    /// The physical address mask, if valid.
    pub fn valid_physical_address_mask(&self) -> Option<u64> {
        (self.validation_bits & validation::PHYSICAL_ADDRESS_MASK != 0)
            .then_some(self.physical_address_mask)
    }

    /// The on-wire structure.
    pub fn to_wire(&self) -> MemoryErrorWire {
        MemoryErrorWire {
            validation_bits: self.validation_bits.into(),
            error_status: self.error_status.into(),
            physical_address: self.physical_address.into(),
            physical_address_mask: self.physical_address_mask.into(),
            node: self.node.into(),
            card: self.card.into(),
            module: self.module.into(),
            bank: self.bank.into(),
            device: self.device.into(),
            row: self.row.into(),
            column: self.column.into(),
            bit_position: self.bit_position.into(),
            requestor_id: self.requestor_id.into(),
            responder_id: self.responder_id.into(),
            target_id: self.target_id.into(),
            error_type: self.error_type,
            extended: self.extended,
            rank_number: self.rank_number.into(),
            card_handle: self.card_handle.into(),
            module_handle: self.module_handle.into(),
        }
    }

    /// Writes the 80-byte body at the start of `buf`.
    pub fn encode_into(&self, buf: &mut [u8]) -> Result<usize, CperError> {
        let have = buf.len();
        self.to_wire()
            .write_to_prefix(buf)
            .map_err(|_| CperError::BufferTooSmall {
                need: MEMORY_ERROR_SECTION_LEN,
                have,
            })?;
        Ok(MEMORY_ERROR_SECTION_LEN)
    }

    /// Decodes a section body, which must be exactly 80 bytes long and have
    /// no reserved validation bit set.
    pub fn decode(body: &[u8]) -> Result<Self, CperError> {
        if body.len() != MEMORY_ERROR_SECTION_LEN {
            return Err(CperError::BadSectionLength {
                section: "memory error",
                expected: MEMORY_ERROR_SECTION_LEN,
                found: body.len(),
            });
        }
        let (w, _) = read_wire::<MemoryErrorWire>(body, "memory error section")?;
        let validation_bits = w.validation_bits.get();
        if validation_bits & !validation::ALL != 0 {
            return Err(CperError::ReservedBits {
                what: "memory error validation bits",
                value: validation_bits,
            });
        }
        Ok(MemoryErrorSection {
            validation_bits,
            error_status: w.error_status.get(),
            physical_address: w.physical_address.get(),
            physical_address_mask: w.physical_address_mask.get(),
            node: w.node.get(),
            card: w.card.get(),
            module: w.module.get(),
            bank: w.bank.get(),
            device: w.device.get(),
            row: w.row.get(),
            column: w.column.get(),
            bit_position: w.bit_position.get(),
            requestor_id: w.requestor_id.get(),
            responder_id: w.responder_id.get(),
            target_id: w.target_id.get(),
            error_type: w.error_type,
            extended: w.extended,
            rank_number: w.rank_number.get(),
            card_handle: w.card_handle.get(),
            module_handle: w.module_handle.get(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_text() {
        assert_eq!(
            MEMORY_ERROR_SECTION_GUID.to_string(),
            "a5bc1114-6f64-4ede-b863-3e83ed7c83b1"
        );
    }

    #[test]
    fn granule_masks() {
        // UEFI 2.10 N.2.5: the physical address of the granule and the mask
        // of the address bits that identify it.
        for (shift, base, mask) in [
            (12u8, 0x1_4020_1000u64, 0xffff_ffff_ffff_f000u64),
            (21, 0x1_4020_0000, 0xffff_ffff_ffe0_0000),
            (30, 0x1_4000_0000, 0xffff_ffff_c000_0000),
        ] {
            let g = GpaGranule::containing(vm_memory::GuestAddress(0x1_4020_1234), shift).unwrap();
            let s = MemoryErrorSection::for_granule(&g);
            assert_eq!(s.valid_physical_address(), Some(base));
            assert_eq!(s.valid_physical_address_mask(), Some(mask));
            assert_eq!(s.validation_bits, 0x4006);
            assert_eq!(s.error_type, 3);
        }
    }

    #[test]
    fn every_field_round_trips_at_its_offset() {
        let s = MemoryErrorSection {
            validation_bits: validation::ALL,
            error_status: 0x0102_0304_0506_0708,
            physical_address: 0x1111_2222_3333_4444,
            physical_address_mask: 0xffff_ffff_ffe0_0000,
            node: 0x0a0b,
            card: 2,
            module: 3,
            bank: 4,
            device: 5,
            row: 6,
            column: 7,
            bit_position: 8,
            requestor_id: 9,
            responder_id: 10,
            target_id: 11,
            error_type: 12,
            extended: 13,
            rank_number: 14,
            card_handle: 15,
            module_handle: 0xbeef,
        };
        let mut buf = [0u8; 80];
        assert_eq!(s.encode_into(&mut buf), Ok(80));
        assert_eq!(&buf[16..24], &0x1111_2222_3333_4444u64.to_le_bytes());
        assert_eq!(&buf[32..34], &[0x0b, 0x0a]);
        assert_eq!(buf[72], 12);
        assert_eq!(&buf[78..80], &[0xef, 0xbe]);
        assert_eq!(MemoryErrorSection::decode(&buf), Ok(s));
        assert!(matches!(
            s.encode_into(&mut [0u8; 79]),
            Err(CperError::BufferTooSmall { need: 80, have: 79 })
        ));
    }

    #[test]
    fn decode_rejects_bad_length_and_reserved_bits() {
        let buf = [0u8; 81];
        assert!(matches!(
            MemoryErrorSection::decode(&buf),
            Err(CperError::BadSectionLength { found: 81, .. })
        ));
        assert!(matches!(
            MemoryErrorSection::decode(&buf[..79]),
            Err(CperError::BadSectionLength { found: 79, .. })
        ));
        let mut buf = [0u8; 80];
        buf[2] = 0x40; // bit 22
        assert!(matches!(
            MemoryErrorSection::decode(&buf),
            Err(CperError::ReservedBits {
                value: 0x40_0000,
                ..
            })
        ));
    }
}
