// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! The ACPI Hardware Error Source Table (HEST), ACPI 6.5 §18.3.2, with
//! Generic Hardware Error Source version 2 (GHESv2, type 10) entries,
//! ACPI 6.5 §18.3.2.8.
//!
//! [`HestBuilder`] produces the complete table bytes (header, checksum,
//! error source count, entries). The on-wire structures are our own
//! `#[repr(C, packed)]` zerocopy types whose offsets are pinned by unit tests
//! against the ACPI table. We do not use `acpi_tables::hest`: its header is
//! private (creator id fixed to "RVAT", no read-back), and its incremental
//! checksum adds 1 per entry for the error source count, which is wrong once
//! the count reaches 256 (a 255-vCPU guest plus the asynchronous source).
//! Here the checksum is computed over the final bytes.
//!
//! Table identity (documented choice, in Cloud Hypervisor's style):
//! OEM ID [`OEM_ID`] = `"CLOUDH"`, OEM table ID [`OEM_TABLE_ID`] =
//! `"CHHEST  "`, OEM revision 1, creator ID [`CREATOR_ID`] = `"RVAT"`
//! (as every other Cloud Hypervisor table built with `acpi_tables`), creator
//! revision 1. All are overridable with [`HestBuilder::oem`] and
//! [`HestBuilder::creator`].
//!
//! Read-ack protocol values (ACPI 6.5 §18.3.2.8, as QEMU's hw/acpi/ghes.c):
//! [`READ_ACK_PRESERVE`] = `0xffff_fffe` and [`READ_ACK_WRITE`] = 1. After
//! consuming a record the OS computes `(ack & preserve) | write`, i.e. it
//! sets bit 0; the producer treats a non-zero ack register as "free".

use std::collections::HashSet;

use thiserror::Error;
use zerocopy::byteorder::{LE, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// HEST signature (ACPI 6.5 §18.3.2, Table 18.3).
pub const HEST_SIGNATURE: [u8; 4] = *b"HEST";
/// HEST revision (ACPI 6.5 Table 18.3: 1).
pub const HEST_REVISION: u8 = 1;
/// Default OEM ID.
pub const OEM_ID: [u8; 6] = *b"CLOUDH";
/// Default OEM table ID.
pub const OEM_TABLE_ID: [u8; 8] = *b"CHHEST  ";
/// Default OEM revision.
pub const OEM_REVISION: u32 = 1;
/// Default creator ID (that of `acpi_tables`, used for all Cloud Hypervisor
/// tables).
pub const CREATOR_ID: [u8; 4] = *b"RVAT";
/// Default creator revision.
pub const CREATOR_REVISION: u32 = 1;

/// HEST error source structure type of GHESv2 (ACPI 6.5 Table 18.10).
pub const GHES_V2_TYPE: u16 = 10;
/// Size of the ACPI system description table header (ACPI 6.5 §5.2.6).
pub const HEADER_LEN: usize = 36;
/// Offset of the first error source entry (header + error source count).
pub const ENTRIES_OFFSET: usize = HEADER_LEN + 4;
/// Size of one GHES entry (ACPI 6.5 Table 18.16).
pub const GHES_LEN: usize = 64;
/// Size of one GHESv2 entry (ACPI 6.5 Table 18.17).
pub const GHES_V2_LEN: usize = 92;
/// Size of the Hardware Error Notification Structure (ACPI 6.5 Table 18.14).
pub const NOTIFICATION_LEN: u8 = 28;
/// Read-ack preserve mask (see the module documentation).
pub const READ_ACK_PRESERVE: u64 = 0xffff_fffe;
/// Read-ack write value (see the module documentation).
pub const READ_ACK_WRITE: u64 = 1;
/// Related source id meaning "none" (ACPI 6.5 Table 18.17).
pub const NO_RELATED_SOURCE: u16 = 0xffff;
/// Smallest error status block length Linux accepts: the 20-byte Generic
/// Error Status Block header (ACPI 6.5 Table 18.19).
pub const MIN_BLOCK_LEN: u32 = 20;
/// Largest error status block Linux uses in full (`GHES_ESTATUS_MAX_SIZE`).
pub const MAX_BLOCK_LEN: u32 = 65536;

/// Hardware error notification types (ACPI 6.5 Table 18.14).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NotificationType {
    /// 0: the OS polls the error status block.
    Polled = 0,
    /// 1: external interrupt.
    ExternalInterrupt = 1,
    /// 2: local interrupt.
    LocalInterrupt = 2,
    /// 3: SCI.
    Sci = 3,
    /// 4: NMI (x86).
    Nmi = 4,
    /// 5: CMCI (x86).
    Cmci = 5,
    /// 6: MCE (x86).
    Mce = 6,
    /// 7: GPIO-signal (serviced through the PNP0C33 hardware error device).
    GpioSignal = 7,
    /// 8: Armv8 Synchronous External Abort.
    Sea = 8,
    /// 9: Armv8 SError interrupt.
    Sei = 9,
    /// 10: external interrupt, GSIV.
    Gsiv = 10,
    /// 11: software delegated exception (SDEI).
    SoftwareDelegatedException = 11,
}

/// How the OS learns that a source has a record (ACPI 6.5 §18.3.2.7,
/// Table 18.14): the notification structure of a GHESv2 entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Notification {
    /// POLLED (0): the OS polls every `interval_ms` milliseconds (Linux
    /// rounds to whole seconds; 0 disables the source, so it is rejected).
    Polled {
        /// Poll interval in milliseconds (> 0).
        interval_ms: u32,
    },
    /// NMI (4): x86 only (used by the x86 oracle test).
    Nmi,
    /// GPIO-signal (7): the VMM raises the GED event whose `_EVT` does
    /// `Notify(<PNP0C33 device>, 0x80)`.
    Gpio,
    /// SEA (8): Armv8 synchronous external abort; the VMM injects the abort.
    Sea,
    /// Any other type, with its vector and poll interval as given.
    Other {
        /// Notification type.
        kind: NotificationType,
        /// Vector field (interrupt vector / GSIV), 0 if unused.
        vector: u32,
        /// Poll interval field, 0 if unused.
        interval_ms: u32,
    },
}

impl Notification {
    /// The notification type byte.
    pub fn kind(&self) -> NotificationType {
        match self {
            Notification::Polled { .. } => NotificationType::Polled,
            Notification::Nmi => NotificationType::Nmi,
            Notification::Gpio => NotificationType::GpioSignal,
            Notification::Sea => NotificationType::Sea,
            Notification::Other { kind, .. } => *kind,
        }
    }

    fn to_raw(self) -> HardwareErrorNotification {
        let (interval, vector) = match self {
            Notification::Polled { interval_ms } => (interval_ms, 0),
            Notification::Other {
                vector,
                interval_ms,
                ..
            } => (interval_ms, vector),
            _ => (0, 0),
        };
        HardwareErrorNotification {
            kind: self.kind() as u8,
            length: NOTIFICATION_LEN,
            config_write_enable: U16::new(0),
            poll_interval: U32::new(interval),
            vector: U32::new(vector),
            switch_to_polling_threshold_value: U32::new(0),
            switch_to_polling_threshold_window: U32::new(0),
            error_threshold_value: U32::new(0),
            error_threshold_window: U32::new(0),
        }
    }
}

/// ACPI system description table header (ACPI 6.5 §5.2.6, Table 5.4).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct AcpiTableHeader {
    /// Table signature, `"HEST"`.
    pub signature: [u8; 4],
    /// Length of the whole table in bytes.
    pub length: U32<LE>,
    /// Table revision.
    pub revision: u8,
    /// Makes the bytes of the whole table sum to zero.
    pub checksum: u8,
    /// OEM ID.
    pub oem_id: [u8; 6],
    /// OEM table ID.
    pub oem_table_id: [u8; 8],
    /// OEM revision.
    pub oem_revision: U32<LE>,
    /// Creator (ASL compiler) ID.
    pub creator_id: [u8; 4],
    /// Creator revision.
    pub creator_revision: U32<LE>,
}
crate::wire_layout!(AcpiTableHeader = HEADER_LEN;
    signature @ 0, length @ 4, revision @ 8, checksum @ CHECKSUM_OFFSET, oem_id @ 10, oem_table_id @ 16,
    oem_revision @ 24, creator_id @ 28, creator_revision @ 32);

/// Generic Address Structure (ACPI 6.5 §5.2.3.2, Table 5.1).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct GenericAddress {
    /// Address space id (0 = system memory).
    pub address_space_id: u8,
    /// Register bit width.
    pub register_bit_width: u8,
    /// Register bit offset.
    pub register_bit_offset: u8,
    /// Access size (4 = qword).
    pub access_size: u8,
    /// Address.
    pub address: U64<LE>,
}
crate::wire_layout!(GenericAddress = 12;
    address_space_id @ 0, register_bit_width @ 1, register_bit_offset @ 2, access_size @ 3,
    address @ 4);

impl GenericAddress {
    /// A 64-bit system-memory register accessed as a qword.
    pub fn system_memory_u64(address: u64) -> Self {
        Self {
            address_space_id: 0,
            register_bit_width: 64,
            register_bit_offset: 0,
            access_size: 4,
            address: U64::new(address),
        }
    }
}

/// Hardware Error Notification Structure (ACPI 6.5 §18.3.2.9, Table 18.14).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct HardwareErrorNotification {
    /// Notification type ([`NotificationType`]).
    pub kind: u8,
    /// Length of this structure, 28.
    pub length: u8,
    /// Configuration write enable.
    pub config_write_enable: U16<LE>,
    /// Poll interval in milliseconds.
    pub poll_interval: U32<LE>,
    /// Interrupt vector.
    pub vector: U32<LE>,
    /// Switch-to-polling threshold value.
    pub switch_to_polling_threshold_value: U32<LE>,
    /// Switch-to-polling threshold window (ms).
    pub switch_to_polling_threshold_window: U32<LE>,
    /// Error threshold value.
    pub error_threshold_value: U32<LE>,
    /// Error threshold window (ms).
    pub error_threshold_window: U32<LE>,
}
crate::wire_layout!(HardwareErrorNotification = 28;
    kind @ 0, length @ 1, config_write_enable @ 2, poll_interval @ 4, vector @ 8,
    switch_to_polling_threshold_value @ 12, switch_to_polling_threshold_window @ 16,
    error_threshold_value @ 20, error_threshold_window @ 24);

/// Generic Hardware Error Source structure (ACPI 6.5 §18.3.2.7, Table
/// 18.16), HEST type 9, and the first 64 bytes of [`GhesV2`]: Linux reads
/// both types through this prefix (`struct acpi_hest_generic`), the
/// read-ack fields of type 10 only where it needs them.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct Ghes {
    /// Type: 9, or 10 as the prefix of [`GhesV2`].
    pub kind: U16<LE>,
    /// Source id (unique in the table).
    pub source_id: U16<LE>,
    /// Related source id, 0xFFFF for none.
    pub related_source_id: U16<LE>,
    /// Flags (reserved for GHES), 0.
    pub flags: u8,
    /// Enabled, 1.
    pub enabled: u8,
    /// Number of records to pre-allocate (>= 1).
    pub records_to_preallocate: U32<LE>,
    /// Max sections per record (>= 1).
    pub max_sections_per_record: U32<LE>,
    /// Max raw data length.
    pub max_raw_data_length: U32<LE>,
    /// Error Status Address: a register holding the error status block's
    /// address.
    pub error_status_address: GenericAddress,
    /// Notification structure.
    pub notification: HardwareErrorNotification,
    /// Error status block length.
    pub error_status_block_length: U32<LE>,
}
crate::wire_layout!(Ghes = GHES_LEN;
    kind @ 0, source_id @ 2, related_source_id @ 4, flags @ 6, enabled @ 7,
    records_to_preallocate @ 8, max_sections_per_record @ 12, max_raw_data_length @ 16,
    error_status_address @ 20, notification @ 32, error_status_block_length @ 60);

/// Generic Hardware Error Source version 2 structure (ACPI 6.5 §18.3.2.8,
/// Table 18.17), HEST type 10: the [`Ghes`] fields, then the Read Ack
/// Register and its preserve and write values.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct GhesV2 {
    /// The fields it shares with type 9 (offsets 0-63).
    pub ghes: Ghes,
    /// Read Ack Register.
    pub read_ack_register: GenericAddress,
    /// Read ack preserve mask.
    pub read_ack_preserve: U64<LE>,
    /// Read ack write value.
    pub read_ack_write: U64<LE>,
}
crate::wire_layout!(GhesV2 = GHES_V2_LEN;
    ghes @ 0, read_ack_register @ 64, read_ack_preserve @ 76, read_ack_write @ 84);

/// One GHESv2 error source to put into the HEST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GhesV2Source {
    /// Source id (unique).
    pub source_id: u16,
    /// How the OS is notified.
    pub notification: Notification,
    /// Guest-physical address of the Error Status Address register (a u64
    /// that holds the error status block's address).
    pub error_status_address: u64,
    /// Guest-physical address of the read-ack register (u64).
    pub read_ack_address: u64,
    /// Length of the error status block; also the max raw data length.
    pub block_len: u32,
    /// Records to pre-allocate (>= 1).
    pub records_to_preallocate: u32,
    /// Max sections per record (>= 1).
    pub max_sections_per_record: u32,
}

impl GhesV2Source {
    /// Default records to pre-allocate (as QEMU).
    pub const DEFAULT_RECORDS_TO_PREALLOCATE: u32 = 1;
    /// Default max sections per record: an upper bound for the records the
    /// engine writes (Linux does not enforce it).
    pub const DEFAULT_MAX_SECTIONS_PER_RECORD: u32 = 4;

    /// A source with default record counts.
    pub fn new(
        source_id: u16,
        notification: Notification,
        error_status_address: u64,
        read_ack_address: u64,
        block_len: u32,
    ) -> Self {
        Self {
            source_id,
            notification,
            error_status_address,
            read_ack_address,
            block_len,
            records_to_preallocate: Self::DEFAULT_RECORDS_TO_PREALLOCATE,
            max_sections_per_record: Self::DEFAULT_MAX_SECTIONS_PER_RECORD,
        }
    }

    /// The on-wire entry.
    pub fn to_raw(&self) -> GhesV2 {
        GhesV2 {
            ghes: Ghes {
                kind: U16::new(GHES_V2_TYPE),
                source_id: U16::new(self.source_id),
                related_source_id: U16::new(NO_RELATED_SOURCE),
                flags: 0,
                enabled: 1,
                records_to_preallocate: U32::new(self.records_to_preallocate),
                max_sections_per_record: U32::new(self.max_sections_per_record),
                max_raw_data_length: U32::new(self.block_len),
                error_status_address: GenericAddress::system_memory_u64(self.error_status_address),
                notification: self.notification.to_raw(),
                error_status_block_length: U32::new(self.block_len),
            },
            read_ack_register: GenericAddress::system_memory_u64(self.read_ack_address),
            read_ack_preserve: U64::new(READ_ACK_PRESERVE),
            read_ack_write: U64::new(READ_ACK_WRITE),
        }
    }
}

/// Errors from building a HEST.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum HestError {
    /// Two entries share a source id (Linux then disables HEST).
    #[error("Duplicate error source id {0}")]
    DuplicateSourceId(u16),
    /// An address is zero (Linux: "Invalid physical address in GAR").
    #[error("Source {0}: zero error status or read-ack address")]
    ZeroAddress(u16),
    /// The block length is outside [`MIN_BLOCK_LEN`]..=[`MAX_BLOCK_LEN`].
    #[error("Source {source_id}: error status block length {len} out of range")]
    BlockLen {
        /// Source id.
        source_id: u16,
        /// Length asked for.
        len: u32,
    },
    /// A POLLED source with a zero interval (Linux disables it).
    #[error("Source {0}: polled notification with a zero interval")]
    ZeroPollInterval(u16),
    /// Records to pre-allocate or max sections per record is zero.
    #[error("Source {0}: records to pre-allocate and max sections must be at least 1")]
    ZeroRecords(u16),
    /// The table would exceed 4 GiB.
    #[error("HEST too large: {0} entries")]
    TooLarge(usize),
}

/// Builds a HEST (ACPI 6.5 §18.3.2) of GHESv2 entries.
#[derive(Clone, Debug)]
pub struct HestBuilder {
    oem_id: [u8; 6],
    oem_table_id: [u8; 8],
    oem_revision: u32,
    creator_id: [u8; 4],
    creator_revision: u32,
    sources: Vec<GhesV2Source>,
}

impl Default for HestBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl HestBuilder {
    /// An empty table with the default identity ([`OEM_ID`], ...).
    pub fn new() -> Self {
        Self {
            oem_id: OEM_ID,
            oem_table_id: OEM_TABLE_ID,
            oem_revision: OEM_REVISION,
            creator_id: CREATOR_ID,
            creator_revision: CREATOR_REVISION,
            sources: Vec::new(),
        }
    }

    /// Sets the OEM ID, OEM table ID and OEM revision.
    pub fn oem(mut self, oem_id: [u8; 6], oem_table_id: [u8; 8], oem_revision: u32) -> Self {
        self.oem_id = oem_id;
        self.oem_table_id = oem_table_id;
        self.oem_revision = oem_revision;
        self
    }

    /// Sets the creator ID and revision.
    pub fn creator(mut self, creator_id: [u8; 4], creator_revision: u32) -> Self {
        self.creator_id = creator_id;
        self.creator_revision = creator_revision;
        self
    }

    /// Appends a GHESv2 entry.
    pub fn add_ghes_v2(mut self, source: GhesV2Source) -> Self {
        self.sources.push(source);
        self
    }

    /// The entries added so far.
    pub fn sources(&self) -> &[GhesV2Source] {
        &self.sources
    }

    /// Length of the table [`HestBuilder::build`] produces.
    pub fn len(&self) -> usize {
        ENTRIES_OFFSET + self.sources.len() * GHES_V2_LEN
    }

    /// Whether no entry was added.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    fn validate(&self) -> Result<(), HestError> {
        let mut ids = HashSet::with_capacity(self.sources.len());
        for s in &self.sources {
            let id = s.source_id;
            if !ids.insert(id) {
                return Err(HestError::DuplicateSourceId(id));
            }
            if s.error_status_address == 0 || s.read_ack_address == 0 {
                return Err(HestError::ZeroAddress(id));
            }
            if !(MIN_BLOCK_LEN..=MAX_BLOCK_LEN).contains(&s.block_len) {
                return Err(HestError::BlockLen {
                    source_id: id,
                    len: s.block_len,
                });
            }
            if s.notification.kind() == NotificationType::Polled {
                let interval = match s.notification {
                    Notification::Polled { interval_ms } => interval_ms,
                    Notification::Other { interval_ms, .. } => interval_ms,
                    _ => 0,
                };
                if interval == 0 {
                    return Err(HestError::ZeroPollInterval(id));
                }
            }
            if s.records_to_preallocate == 0 || s.max_sections_per_record == 0 {
                return Err(HestError::ZeroRecords(id));
            }
        }
        if u32::try_from(self.len()).is_err() {
            return Err(HestError::TooLarge(self.sources.len()));
        }
        Ok(())
    }

    /// Validates the entries and returns the table bytes, checksummed.
    pub fn build(&self) -> Result<Vec<u8>, HestError> {
        self.validate()?;
        let len = self.len();
        let header = AcpiTableHeader {
            signature: HEST_SIGNATURE,
            // validate() checked that the length fits.
            length: U32::new(len as u32),
            revision: HEST_REVISION,
            checksum: 0,
            oem_id: self.oem_id,
            oem_table_id: self.oem_table_id,
            oem_revision: U32::new(self.oem_revision),
            creator_id: self.creator_id,
            creator_revision: U32::new(self.creator_revision),
        };
        let mut bytes = Vec::with_capacity(len);
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&(self.sources.len() as u32).to_le_bytes());
        for s in &self.sources {
            bytes.extend_from_slice(s.to_raw().as_bytes());
        }
        debug_assert_eq!(bytes.len(), len);
        let sum = bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b));
        bytes[CHECKSUM_OFFSET] = 0u8.wrapping_sub(sum);
        Ok(bytes)
    }
}

const CHECKSUM_OFFSET: usize = 9;

#[cfg(test)]
mod tests {
    use super::*;

    fn two_sources() -> HestBuilder {
        HestBuilder::new()
            .add_ghes_v2(GhesV2Source::new(
                0,
                Notification::Sea,
                0x1f00_0000,
                0x1f00_0008,
                1024,
            ))
            .add_ghes_v2(GhesV2Source::new(
                1,
                Notification::Polled { interval_ms: 100 },
                0x1f00_0010,
                0x1f00_0018,
                1024,
            ))
    }

    /// Independent of the packed types: every byte of a two-entry table.
    #[test]
    fn bytes_pinned() {
        let t = two_sources().build().unwrap();
        assert_eq!(t.len(), 40 + 2 * 92);
        assert_eq!(&t[0..4], b"HEST");
        assert_eq!(&t[4..8], &(224u32).to_le_bytes());
        assert_eq!(t[8], 1);
        assert_eq!(&t[10..16], b"CLOUDH");
        assert_eq!(&t[16..24], b"CHHEST  ");
        assert_eq!(&t[24..28], &1u32.to_le_bytes());
        assert_eq!(&t[28..32], b"RVAT");
        assert_eq!(&t[32..36], &1u32.to_le_bytes());
        assert_eq!(&t[36..40], &2u32.to_le_bytes());
        assert_eq!(t.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);

        #[rustfmt::skip]
        let e1: [u8; 92] = [
            10, 0, 1, 0, 0xff, 0xff, 0, 1,          // type, id 1, related none, flags, enabled
            1, 0, 0, 0, 4, 0, 0, 0, 0, 4, 0, 0,      // records 1, sections 4, raw 1024
            0, 64, 0, 4, 0x10, 0, 0, 0x1f, 0, 0, 0, 0, // ESA GAS
            0, 28, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0,   // polled, len 28, interval 100
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 4, 0, 0,                              // block length 1024
            0, 64, 0, 4, 0x18, 0, 0, 0x1f, 0, 0, 0, 0, // read ack GAS
            0xfe, 0xff, 0xff, 0xff, 0, 0, 0, 0,      // preserve
            1, 0, 0, 0, 0, 0, 0, 0,                  // write
        ];
        assert_eq!(&t[40 + 92..], &e1[..]);
        // Entry 0 differs in id, notification type 8, interval 0, addresses.
        let e0 = &t[40..40 + 92];
        assert_eq!(&e0[0..4], &[10, 0, 0, 0]);
        assert_eq!(e0[32], 8);
        assert_eq!(&e0[36..40], &[0, 0, 0, 0]);
        assert_eq!(&e0[24..32], &0x1f00_0000u64.to_le_bytes());
        assert_eq!(&e0[68..76], &0x1f00_0008u64.to_le_bytes());
    }

    /// acpi_tables 0.2.1 keeps its HEST checksum up to date incrementally
    /// and counts each new structure as +1 in the byte sum of the error
    /// source count (`HEST::update_header`). When the count goes from 255
    /// to 256 its low byte wraps while the next byte grows: the sum changes
    /// by 2, not 1, and the table's checksum is wrong from then on. A guest
    /// with 255 vCPUs already has 256 sources; this module computes the
    /// checksum over the final bytes instead.
    #[test]
    fn acpi_tables_hest_checksum_is_wrong_from_256_entries() {
        use acpi_tables::Aml;
        use acpi_tables::hest::{EnabledStatus, GenericHardwareSourceV2, HEST};

        for (entries, sums_to_zero) in [(255u16, true), (256, false), (300, false)] {
            let mut hest = HEST::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION);
            for id in 0..entries {
                hest.add_structure(GenericHardwareSourceV2::new(id, EnabledStatus::Enabled));
            }
            let mut bytes = Vec::new();
            hest.to_aml_bytes(&mut bytes);
            let sum = bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b));
            assert_eq!(sum == 0, sums_to_zero, "{entries} entries: sum {sum:#x}");
        }
    }

    #[test]
    fn checksum_with_256_entries() {
        let mut b = HestBuilder::new();
        for i in 0..300u16 {
            let base = 0x1000_0000 + u64::from(i) * 16;
            b = b.add_ghes_v2(GhesV2Source::new(
                i,
                Notification::Sea,
                base,
                base + 8,
                1024,
            ));
        }
        let t = b.build().unwrap();
        assert_eq!(t.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        // Error source count (offset 36): 300, not truncated to a byte.
        assert_eq!(&t[36..40], &300u32.to_le_bytes());
        assert_eq!(t.len(), 40 + 300 * 92);
    }

    #[test]
    fn rejects_what_linux_rejects() {
        let dup = two_sources().add_ghes_v2(GhesV2Source::new(1, Notification::Gpio, 8, 16, 64));
        assert_eq!(dup.build(), Err(HestError::DuplicateSourceId(1)));
        let zero =
            HestBuilder::new().add_ghes_v2(GhesV2Source::new(3, Notification::Nmi, 0, 8, 64));
        assert_eq!(zero.build(), Err(HestError::ZeroAddress(3)));
        let small =
            HestBuilder::new().add_ghes_v2(GhesV2Source::new(3, Notification::Nmi, 8, 16, 16));
        assert_eq!(
            small.build(),
            Err(HestError::BlockLen {
                source_id: 3,
                len: 16
            })
        );
        let poll0 = HestBuilder::new().add_ghes_v2(GhesV2Source::new(
            4,
            Notification::Polled { interval_ms: 0 },
            8,
            16,
            64,
        ));
        assert_eq!(poll0.build(), Err(HestError::ZeroPollInterval(4)));
        let mut rec0 = GhesV2Source::new(5, Notification::Gpio, 8, 16, 64);
        rec0.records_to_preallocate = 0;
        assert_eq!(
            HestBuilder::new().add_ghes_v2(rec0).build(),
            Err(HestError::ZeroRecords(5))
        );
    }

    #[test]
    fn empty_table() {
        let t = HestBuilder::new().build().unwrap();
        assert_eq!(t.len(), 40);
        assert_eq!(&t[36..40], &[0, 0, 0, 0]);
    }
}
