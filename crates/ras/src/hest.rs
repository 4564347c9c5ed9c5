// SPDX-License-Identifier: Apache-2.0
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

/// Generic Hardware Error Source version 2 structure (ACPI 6.5 §18.3.2.8,
/// Table 18.17), HEST type 10.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct GhesV2 {
    /// Type, 10.
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
    /// Read Ack Register.
    pub read_ack_register: GenericAddress,
    /// Read ack preserve mask.
    pub read_ack_preserve: U64<LE>,
    /// Read ack write value.
    pub read_ack_write: U64<LE>,
}

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

pub use decode::{
    Ghes, HestEntry, HestParseError, HestWarning, ParsedEntry, ParsedHest, Register, parse,
    source_type,
};

/// Reading a HEST back the way a Linux guest reads it, and refusing what
/// Linux refuses.
///
/// [`parse`] walks the table as `apei_hest_parse` (drivers/acpi/apei/hest.c)
/// does, then checks every enabled generic error source (types 9 and 10) as
/// `hest_parse_ghes` (hest.c), `ghes_probe`, `ghes_new`, `map_gen_v2` and
/// `ghes_add_timer` (drivers/acpi/apei/ghes.c) and `apei_check_gar`
/// (drivers/acpi/apei/apei-base.c) with `acpi_os_map_generic_address`
/// (drivers/acpi/osl.c) do. The kernel sources read are Debian's
/// linux-source-6.1 (6.1.192) and linux-source-7.3 (7.3.4, the newest
/// Linux on the archive, used as "mainline"); every rule below holds in
/// both unless it says otherwise.
///
/// Each refusal is one [`HestParseError`] variant whose documentation names
/// the kernel function it mirrors and what Linux then does: either the whole
/// HEST is disabled (`acpi_hest_init` sets `hest_disable`), or the one
/// source is not bound (its `ghes_probe` fails; the others still work).
/// A few refusals are rules of the ACPI 6.5 text that Linux does not
/// enforce (file integrity, counts, "must be >= 1"): their documentation
/// says so. What Linux accepts but a reader should know (count 0, disabled
/// sources, non-generic entries, a block longer than Linux reads, port I/O,
/// config-dependent notifications) is a [`HestWarning`], never a refusal.
pub mod decode {
    use std::collections::HashMap;
    use std::fmt;

    use thiserror::Error;
    use zerocopy::byteorder::{LE, U16, U32};
    use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

    use super::{
        AcpiTableHeader, ENTRIES_OFFSET, GHES_V2_LEN, GenericAddress, GhesV2, HEADER_LEN,
        HEST_SIGNATURE, HardwareErrorNotification, MAX_BLOCK_LEN, MIN_BLOCK_LEN, NotificationType,
    };

    /// HEST error source structure types (ACPI 6.5 §18.3.2; Linux
    /// `enum acpi_hest_types` in include/acpi/actbl1.h). Types 3, 4 and 5
    /// "are reserved for legacy reasons and must not be used"; 12 and above
    /// are reserved.
    pub mod source_type {
        /// IA-32 Architecture Machine Check Exception (§18.3.2.1).
        pub const IA32_MACHINE_CHECK: u16 = 0;
        /// IA-32 Architecture Corrected Machine Check (§18.3.2.2).
        pub const IA32_CORRECTED_MACHINE_CHECK: u16 = 1;
        /// IA-32 Architecture NMI Error Source (§18.3.2.2.1).
        pub const IA32_NMI: u16 = 2;
        /// PCI Express Root Port AER (§18.3.2.3).
        pub const PCIE_ROOT_PORT_AER: u16 = 6;
        /// PCI Express Device AER (§18.3.2.4).
        pub const PCIE_DEVICE_AER: u16 = 7;
        /// PCI Express/PCI-X Bridge AER (§18.3.2.5).
        pub const PCIE_BRIDGE_AER: u16 = 8;
        /// Generic Hardware Error Source (§18.3.2.7).
        pub const GHES: u16 = 9;
        /// Generic Hardware Error Source version 2 (§18.3.2.8).
        pub const GHES_V2: u16 = 10;
        /// IA-32 Architecture Deferred Machine Check (§18.3.2.9).
        pub const IA32_DEFERRED_MACHINE_CHECK: u16 = 11;
    }

    /// Length of one IA-32 Machine Check Error Bank structure (ACPI 6.5
    /// §18.3.2.1.1; Linux `struct acpi_hest_ia_error_bank`).
    const IA32_BANK_LEN: usize = 28;
    /// Length of a GHES (type 9) entry (ACPI 6.5 §18.3.2.7).
    pub const GHES_LEN: usize = 64;

    /// Length of an entry of `kind` before its machine check banks, and the
    /// offset of its bank count, as Linux's `hest_esrc_len_tab` and
    /// `hest_esrc_len` (hest.c) compute them. `None`: a type Linux does not
    /// know ("Unknown or unused hardware error source type").
    fn entry_shape(kind: u16) -> Option<(usize, Option<usize>)> {
        match kind {
            source_type::IA32_MACHINE_CHECK => Some((40, Some(32))),
            source_type::IA32_CORRECTED_MACHINE_CHECK => Some((48, Some(44))),
            source_type::IA32_NMI => Some((20, None)),
            source_type::PCIE_ROOT_PORT_AER => Some((48, None)),
            source_type::PCIE_DEVICE_AER => Some((44, None)),
            source_type::PCIE_BRIDGE_AER => Some((56, None)),
            source_type::GHES => Some((GHES_LEN, None)),
            source_type::GHES_V2 => Some((GHES_V2_LEN, None)),
            source_type::IA32_DEFERRED_MACHINE_CHECK => Some((48, Some(44))),
            _ => None,
        }
    }

    /// Generic Hardware Error Source structure (ACPI 6.5 §18.3.2.7), HEST
    /// type 9: the first 64 bytes of [`GhesV2`], without the read-ack
    /// fields.
    #[repr(C, packed)]
    #[derive(
        Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned,
    )]
    pub struct Ghes {
        /// Type, 9.
        pub kind: U16<LE>,
        /// Source id.
        pub source_id: U16<LE>,
        /// Related source id.
        pub related_source_id: U16<LE>,
        /// Flags (reserved).
        pub flags: u8,
        /// Enabled.
        pub enabled: u8,
        /// Number of records to pre-allocate.
        pub records_to_preallocate: U32<LE>,
        /// Max sections per record.
        pub max_sections_per_record: U32<LE>,
        /// Max raw data length.
        pub max_raw_data_length: U32<LE>,
        /// Error Status Address.
        pub error_status_address: GenericAddress,
        /// Notification structure.
        pub notification: HardwareErrorNotification,
        /// Error status block length.
        pub error_status_block_length: U32<LE>,
    }

    /// One error source entry, as Linux's `apei_hest_parse` walks it.
    #[derive(Clone, Debug)]
    pub enum HestEntry {
        /// A GHESv2 entry (type 10).
        GhesV2(GhesV2),
        /// A GHES entry (type 9).
        Ghes(Ghes),
        /// An entry of another type Linux knows (0, 1, 2, 6, 7, 8, 11): not
        /// a generic error source, so Linux's GHES driver skips it.
        Other {
            /// Its type.
            kind: u16,
            /// Its source id.
            source_id: u16,
            /// Its length in bytes (banks included).
            len: usize,
        },
    }

    impl HestEntry {
        /// The entry's type.
        pub fn kind(&self) -> u16 {
            match self {
                HestEntry::GhesV2(_) => source_type::GHES_V2,
                HestEntry::Ghes(_) => source_type::GHES,
                HestEntry::Other { kind, .. } => *kind,
            }
        }

        /// The entry's source id.
        pub fn source_id(&self) -> u16 {
            match self {
                HestEntry::GhesV2(e) => e.source_id.get(),
                HestEntry::Ghes(e) => e.source_id.get(),
                HestEntry::Other { source_id, .. } => *source_id,
            }
        }
    }

    /// An entry and where it starts in the table.
    #[derive(Clone, Debug)]
    pub struct ParsedEntry {
        /// Byte offset of the entry in the table.
        pub offset: usize,
        /// The entry.
        pub entry: HestEntry,
    }

    /// A decoded HEST that a Linux guest accepts.
    #[derive(Clone, Debug)]
    pub struct ParsedHest {
        /// The table header.
        pub header: AcpiTableHeader,
        /// The error source count field.
        pub error_source_count: u32,
        /// The GHESv2 entries, in table order (all of what
        /// [`super::HestBuilder`] emits).
        pub entries: Vec<GhesV2>,
        /// Every entry, in table order.
        pub all: Vec<ParsedEntry>,
        /// What Linux accepts but a reader should know.
        pub warnings: Vec<HestWarning>,
    }

    /// A Generic Address Structure of a generic error source.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Register {
        /// The Error Status Address (GHES and GHESv2, offset 20).
        ErrorStatusAddress,
        /// The Read Ack Register (GHESv2 only, offset 64).
        ReadAck,
    }

    impl fmt::Display for Register {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(match self {
                Register::ErrorStatusAddress => "error status address",
                Register::ReadAck => "read ack register",
            })
        }
    }

    /// Why [`parse`] refused a table. Messages start with a capital letter
    /// and name the source id where there is one.
    #[derive(Clone, Debug, Error, PartialEq, Eq)]
    pub enum HestParseError {
        /// Shorter than the 36-byte ACPI header and the error source count
        /// (ACPI 6.5 §18.3.2: the first entry is at offset 40). Linux cannot
        /// read such a table at all.
        #[error("Truncated HEST: {len} bytes, the header needs {ENTRIES_OFFSET}")]
        Truncated {
            /// Bytes given.
            len: usize,
        },
        /// The signature at offset 0 is not "HEST" (ACPI 6.5 §5.2.6): Linux
        /// finds the table by its signature (`acpi_get_table`).
        #[error("Not a HEST: signature \"{}\"", found.escape_ascii())]
        BadSignature {
            /// The signature found.
            found: [u8; 4],
        },
        /// The length at offset 4 is not the number of bytes given.
        /// ACPI 6.5 §5.2.6; file integrity, Linux never sees a file.
        #[error("HEST header length {header} but the table has {actual} bytes")]
        LengthMismatch {
            /// Length in the header.
            header: u32,
            /// Bytes given.
            actual: usize,
        },
        /// The bytes do not sum to zero (ACPI 6.5 §5.2.6: "the entire
        /// table, including the checksum field, must add to zero"). Not a
        /// Linux rule: ACPICA's `acpi_ut_verify_checksum` only warns
        /// "Incorrect checksum in table [HEST]" and Linux uses the table
        /// (`ACPI_CHECKSUM_ABORT` is FALSE in 6.1 and 7.3); refused here
        /// because the bytes are not what their producer wrote.
        #[error("Bad HEST checksum: the bytes sum to {sum:#04x}, not 0")]
        BadChecksum {
            /// Sum of all bytes.
            sum: u8,
        },
        /// The error source count (offset 36) names more entries than the
        /// table holds. Linux's `apei_hest_parse` reads the next entry
        /// header past the end of the table and fails ("Table contents
        /// overflow" or "Unknown or unused hardware error source type"):
        /// HEST disabled.
        #[error("HEST error source count {count} but the table holds only {present} entries")]
        CountExceedsEntries {
            /// The count field.
            count: u32,
            /// Complete entries present.
            present: u32,
        },
        /// An entry runs past the end of the table. Linux's
        /// `apei_hest_parse`: "Table contents overflow for hardware error
        /// source", -EINVAL, HEST disabled.
        #[error(
            "Truncated HEST entry {index} at offset {offset}: it needs {need} bytes, {have} are left"
        )]
        TruncatedEntry {
            /// Entry index.
            index: u32,
            /// Offset of the entry.
            offset: usize,
            /// Bytes the entry needs (its type's length, or the 4-byte
            /// entry header when the type cannot be read).
            need: usize,
            /// Bytes left in the table.
            have: usize,
        },
        /// An entry type Linux does not know: 3, 4, 5 (ACPI 6.5 §18.3.2:
        /// "must not be used") or 12 and above (reserved). Linux's
        /// `apei_hest_parse` via `hest_esrc_len`: "Unknown or unused
        /// hardware error source type", -EINVAL, HEST disabled (it does not
        /// skip the entry: it cannot know its length).
        #[error(
            "HEST entry {index} at offset {offset} (source {source_id}) has type {kind}, which Linux does not know (3-5 unused, 12+ reserved)"
        )]
        UnknownType {
            /// Entry index.
            index: u32,
            /// Offset of the entry.
            offset: usize,
            /// Its type.
            kind: u16,
            /// Its source id.
            source_id: u16,
        },
        /// Bytes after the last entry the error source count names
        /// (ACPI 6.5 §18.3.2: the count is "the number of error source
        /// descriptors"). Not a Linux rule: `apei_hest_parse` reads `count`
        /// entries and ignores the rest; refused here because the table
        /// contradicts itself (a count one too low hides a source).
        #[error(
            "HEST error source count {count} ends at offset {offset}, but {len} more bytes follow"
        )]
        TrailingBytes {
            /// The count field.
            count: u32,
            /// Where the counted entries end.
            offset: usize,
            /// Bytes after them.
            len: usize,
        },
        /// Two enabled generic error sources (types 9 and 10) share a
        /// source id. Linux's `hest_parse_ghes`: "Duplicated hardware error
        /// source ID", -EIO, HEST disabled. Disabled sources and
        /// non-generic entries are not compared (Linux skips them). 7.3
        /// also skips GHES_ASSIST entries (a generic source whose related
        /// source is an IA-32 machine check source with flag bit 2,
        /// `is_ghes_assist_struct`); 6.1 does not, and neither does this
        /// check.
        #[error("Duplicate error source id {source_id} (entries at offsets {first} and {second})")]
        DuplicateSourceId {
            /// The source id.
            source_id: u16,
            /// Offset of the first entry with it.
            first: usize,
            /// Offset of the second.
            second: usize,
        },
        /// A notification type (offset 32) in ACPI 6.5 §18.3.2.9 that
        /// Linux's GHES driver never binds: 2 (local interrupt, `ghes_probe`
        /// "notified via local interrupt is not supported"), 5 (CMCI), 6
        /// (MCE) and 9 (SEI) (`ghes_probe` "Unknown notification type").
        /// The source is not bound.
        #[error(
            "Source {source_id}: notification type {kind} is not supported by Linux's GHES driver"
        )]
        UnsupportedNotification {
            /// The source id.
            source_id: u16,
            /// The notification type.
            kind: u8,
        },
        /// A notification type (offset 32) outside ACPI 6.5 §18.3.2.9
        /// (0..=11). Linux's `ghes_probe`: "Unknown notification type",
        /// -EINVAL, the source is not bound.
        #[error(
            "Source {source_id}: notification type {kind} is reserved (ACPI 6.5 defines 0..=11)"
        )]
        ReservedNotification {
            /// The source id.
            source_id: u16,
            /// The notification type.
            kind: u8,
        },
        /// The error status block length (offset 60) is below the 20-byte
        /// Generic Error Status Block header. Linux's `ghes_probe`: "Invalid
        /// error block length" when `error_block_length < sizeof(struct
        /// acpi_hest_generic_status)`, -EIO, the source is not bound.
        #[error(
            "Source {source_id}: error status block length {len} is below the {MIN_BLOCK_LEN}-byte block header"
        )]
        BlockTooShort {
            /// The source id.
            source_id: u16,
            /// The length field.
            len: u32,
        },
        /// A register address is 0. Linux's `apei_check_gar` (via
        /// `apei_map_generic_address` from `ghes_new`, and `map_gen_v2` for
        /// the read ack register): "Invalid physical address in GAR",
        /// -EINVAL, the source is not bound.
        #[error("Source {source_id}: {register} is 0")]
        ZeroAddress {
            /// The source id.
            source_id: u16,
            /// Which register.
            register: Register,
        },
        /// A register's access size (GAS offset 3) is not 1..=4 (byte to
        /// qword; ACPI 6.5 §5.2.3.2). Linux's `apei_check_gar`: "Invalid
        /// access size code in GAR", -EINVAL, the source is not bound.
        #[error("Source {source_id}: {register} access size {access_size} is not 1..=4")]
        BadAccessSize {
            /// The source id.
            source_id: u16,
            /// Which register.
            register: Register,
            /// The access size code.
            access_size: u8,
        },
        /// A register's bit width plus bit offset exceeds its access width.
        /// Linux's `apei_check_gar` (after its fix-up that widens the access
        /// to 32/64 bits for an aligned 32/64-bit register at offset 0):
        /// "Invalid bit width + offset in GAR", -EINVAL, the source is not
        /// bound.
        #[error(
            "Source {source_id}: {register} bit width {bit_width} + offset {bit_offset} exceeds its {access_bits}-bit access"
        )]
        BitWidthOverflow {
            /// The source id.
            source_id: u16,
            /// Which register.
            register: Register,
            /// The bit width.
            bit_width: u8,
            /// The bit offset.
            bit_offset: u8,
            /// The access width Linux uses, in bits.
            access_bits: u32,
        },
        /// A register's address space (GAS offset 0) is neither system
        /// memory (0) nor system I/O (1). Linux's `apei_check_gar`:
        /// "Invalid address space type in GAR", -EINVAL, the source is not
        /// bound.
        #[error(
            "Source {source_id}: {register} address space {space_id} is neither system memory (0) nor system I/O (1)"
        )]
        BadAddressSpace {
            /// The source id.
            source_id: u16,
            /// Which register.
            register: Register,
            /// The address space id.
            space_id: u8,
        },
        /// A system-memory register has bit width 0. Linux's
        /// `acpi_os_map_generic_address` (osl.c) maps nothing for it, so
        /// `apei_map_generic_address` fails with -ENXIO: the source is not
        /// bound.
        #[error("Source {source_id}: {register} has bit width 0")]
        ZeroBitWidth {
            /// The source id.
            source_id: u16,
            /// Which register.
            register: Register,
        },
        /// A POLLED source (notification type 0) with poll interval 0
        /// (notification offset 4, entry offset 36). Linux's
        /// `ghes_add_timer`: "Poll interval is 0 for generic hardware error
        /// source, disabled": the source is bound but never polled.
        #[error(
            "Source {source_id}: polled notification with a zero interval (Linux never polls it)"
        )]
        ZeroPollInterval {
            /// The source id.
            source_id: u16,
        },
        /// Number of records to pre-allocate (offset 8) is 0; ACPI 6.5
        /// §18.3.2.7/§18.3.2.8: "Must be >= 1". Not a Linux rule: Linux
        /// 6.1 and 7.3 never read this field.
        #[error("Source {source_id}: records to pre-allocate is 0 (ACPI 6.5: must be >= 1)")]
        ZeroRecordsToPreallocate {
            /// The source id.
            source_id: u16,
        },
        /// Max sections per record (offset 12) is 0; ACPI 6.5
        /// §18.3.2.7/§18.3.2.8: "Must be >= 1". Not a Linux rule: Linux
        /// 6.1 and 7.3 never read this field.
        #[error("Source {source_id}: max sections per record is 0 (ACPI 6.5: must be >= 1)")]
        ZeroMaxSections {
            /// The source id.
            source_id: u16,
        },
    }

    /// What Linux accepts in a HEST but a reader should know. Never a
    /// refusal.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum HestWarning {
        /// Error source count 0: Linux registers no GHES device (`acpi_hest_init`
        /// skips `hest_ghes_dev_register`), so the guest learns of no error.
        NoErrorSources,
        /// A generic source with enabled = 0 (offset 7): Linux's
        /// `hest_parse_ghes` skips it, so none of its fields are checked.
        Disabled {
            /// The source id.
            source_id: u16,
        },
        /// An entry of a known type that is not a generic error source:
        /// Linux's GHES driver skips it (`hest_parse_ghes`).
        NotGeneric {
            /// Its type.
            kind: u16,
            /// Its source id.
            source_id: u16,
        },
        /// A notification Linux binds only with some kernel configurations
        /// (`ghes_probe`): NMI (4) needs CONFIG_HAVE_ACPI_APEI_NMI (x86),
        /// SEA (8) needs CONFIG_ACPI_APEI_SEA (arm64), SDEI (11) needs
        /// CONFIG_ARM_SDE_INTERFACE. 7.3 also reads the error status
        /// address register at probe for SEA and NMI sources
        /// (`ghes_map_error_status`), so that register must already hold
        /// the block's address.
        ConfigDependentNotification {
            /// The source id.
            source_id: u16,
            /// The notification type.
            kind: u8,
        },
        /// A block longer than `GHES_ESTATUS_MAX_SIZE` (64 KiB): Linux's
        /// `ghes_new` warns "Error status block length is too long" and
        /// reads only the first 64 KiB.
        BlockLengthTruncated {
            /// The source id.
            source_id: u16,
            /// The length field.
            len: u32,
        },
        /// A register in system I/O space (1): `apei_check_gar` accepts it
        /// (x86 port I/O); there is no port I/O on arm64.
        SystemIo {
            /// The source id.
            source_id: u16,
            /// Which register.
            register: Register,
        },
        /// The error status address register is read with fewer than 64
        /// bits (`apei_read` reads the access width `apei_check_gar`
        /// computes), so the block must lie below 2^bits.
        NarrowStatusAddress {
            /// The source id.
            source_id: u16,
            /// The access width Linux uses, in bits.
            access_bits: u32,
        },
    }

    impl fmt::Display for HestWarning {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                HestWarning::NoErrorSources => {
                    write!(f, "No error sources: the guest learns of no error")
                }
                HestWarning::Disabled { source_id } => write!(
                    f,
                    "Source {source_id} is disabled: Linux skips it without checking it"
                ),
                HestWarning::NotGeneric { kind, source_id } => write!(
                    f,
                    "Source {source_id} has type {kind}, not a generic error source: Linux's GHES driver skips it"
                ),
                HestWarning::ConfigDependentNotification { source_id, kind } => write!(
                    f,
                    "Source {source_id}: notification type {kind} is bound only by some guest kernels ({})",
                    match *kind {
                        4 => "NMI: x86, CONFIG_HAVE_ACPI_APEI_NMI",
                        8 => "SEA: arm64, CONFIG_ACPI_APEI_SEA",
                        _ => "SDEI: CONFIG_ARM_SDE_INTERFACE",
                    }
                ),
                HestWarning::BlockLengthTruncated { source_id, len } => write!(
                    f,
                    "Source {source_id}: error status block length {len} is above {MAX_BLOCK_LEN}: Linux reads only the first {MAX_BLOCK_LEN} bytes"
                ),
                HestWarning::SystemIo {
                    source_id,
                    register,
                } => write!(
                    f,
                    "Source {source_id}: {register} is in system I/O space (x86 port I/O only)"
                ),
                HestWarning::NarrowStatusAddress {
                    source_id,
                    access_bits,
                } => write!(
                    f,
                    "Source {source_id}: error status address is read with {access_bits} bits: the block must lie below 2^{access_bits}"
                ),
            }
        }
    }

    /// The fields Linux checks, common to GHES and GHESv2 (their first 64
    /// bytes share one layout).
    struct Generic<'a> {
        source_id: u16,
        enabled: u8,
        records_to_preallocate: u32,
        max_sections_per_record: u32,
        error_status_address: &'a GenericAddress,
        notification: &'a HardwareErrorNotification,
        error_status_block_length: u32,
        read_ack_register: Option<&'a GenericAddress>,
    }

    impl<'a> Generic<'a> {
        fn of(entry: &'a HestEntry) -> Option<Self> {
            match entry {
                HestEntry::GhesV2(e) => Some(Generic {
                    source_id: e.source_id.get(),
                    enabled: e.enabled,
                    records_to_preallocate: e.records_to_preallocate.get(),
                    max_sections_per_record: e.max_sections_per_record.get(),
                    error_status_address: &e.error_status_address,
                    notification: &e.notification,
                    error_status_block_length: e.error_status_block_length.get(),
                    read_ack_register: Some(&e.read_ack_register),
                }),
                HestEntry::Ghes(e) => Some(Generic {
                    source_id: e.source_id.get(),
                    enabled: e.enabled,
                    records_to_preallocate: e.records_to_preallocate.get(),
                    max_sections_per_record: e.max_sections_per_record.get(),
                    error_status_address: &e.error_status_address,
                    notification: &e.notification,
                    error_status_block_length: e.error_status_block_length.get(),
                    read_ack_register: None,
                }),
                HestEntry::Other { .. } => None,
            }
        }
    }

    /// Address space ids Linux's `apei_check_gar` accepts (ACPI 6.5 Table
    /// 5.1, "Address Space ID").
    const SPACE_SYSTEM_MEMORY: u8 = 0;
    const SPACE_SYSTEM_IO: u8 = 1;

    /// Linux's `apei_check_gar` and `acpi_os_map_generic_address` for one
    /// register: returns the access width Linux uses, in bits.
    fn check_gar(
        source_id: u16,
        register: Register,
        gas: &GenericAddress,
        warnings: &mut Vec<HestWarning>,
    ) -> Result<u32, HestParseError> {
        let address = gas.address.get();
        if address == 0 {
            return Err(HestParseError::ZeroAddress {
                source_id,
                register,
            });
        }
        let code = gas.access_size;
        if !(1..=4).contains(&code) {
            return Err(HestParseError::BadAccessSize {
                source_id,
                register,
                access_size: code,
            });
        }
        let mut access_bits = 1u32 << (code + 2);
        let (width, offset) = (gas.register_bit_width, gas.register_bit_offset);
        // apei_check_gar's "Fixup common BIOS bug".
        if width == 32 && offset == 0 && address & 0x3 == 0 && access_bits < 32 {
            access_bits = 32;
        } else if width == 64 && offset == 0 && address & 0x7 == 0 && access_bits < 64 {
            access_bits = 64;
        }
        if u32::from(width) + u32::from(offset) > access_bits {
            return Err(HestParseError::BitWidthOverflow {
                source_id,
                register,
                bit_width: width,
                bit_offset: offset,
                access_bits,
            });
        }
        match gas.address_space_id {
            SPACE_SYSTEM_MEMORY => {
                if width == 0 {
                    return Err(HestParseError::ZeroBitWidth {
                        source_id,
                        register,
                    });
                }
            }
            SPACE_SYSTEM_IO => warnings.push(HestWarning::SystemIo {
                source_id,
                register,
            }),
            space_id => {
                return Err(HestParseError::BadAddressSpace {
                    source_id,
                    register,
                    space_id,
                });
            }
        }
        Ok(access_bits)
    }

    /// The checks of `ghes_probe`, `ghes_new`, `map_gen_v2` and
    /// `ghes_add_timer` (ghes.c), in their order, for one enabled generic
    /// source; then the ACPI 6.5 "must be >= 1" rules.
    fn check_generic(
        g: &Generic<'_>,
        warnings: &mut Vec<HestWarning>,
    ) -> Result<(), HestParseError> {
        let source_id = g.source_id;
        let kind = g.notification.kind;
        match kind {
            k if k == NotificationType::Polled as u8
                || k == NotificationType::ExternalInterrupt as u8
                || k == NotificationType::Sci as u8
                || k == NotificationType::GpioSignal as u8
                || k == NotificationType::Gsiv as u8 => {}
            k if k == NotificationType::Nmi as u8
                || k == NotificationType::Sea as u8
                || k == NotificationType::SoftwareDelegatedException as u8 =>
            {
                warnings.push(HestWarning::ConfigDependentNotification { source_id, kind });
            }
            k if k == NotificationType::LocalInterrupt as u8
                || k == NotificationType::Cmci as u8
                || k == NotificationType::Mce as u8
                || k == NotificationType::Sei as u8 =>
            {
                return Err(HestParseError::UnsupportedNotification { source_id, kind });
            }
            _ => return Err(HestParseError::ReservedNotification { source_id, kind }),
        }
        let len = g.error_status_block_length;
        if len < MIN_BLOCK_LEN {
            return Err(HestParseError::BlockTooShort { source_id, len });
        }
        // ghes_new: map_gen_v2 (read ack) first, then the status address.
        if let Some(ack) = g.read_ack_register {
            check_gar(source_id, Register::ReadAck, ack, warnings)?;
        }
        let bits = check_gar(
            source_id,
            Register::ErrorStatusAddress,
            g.error_status_address,
            warnings,
        )?;
        if bits < 64 {
            warnings.push(HestWarning::NarrowStatusAddress {
                source_id,
                access_bits: bits,
            });
        }
        if len > MAX_BLOCK_LEN {
            warnings.push(HestWarning::BlockLengthTruncated { source_id, len });
        }
        if kind == NotificationType::Polled as u8 && g.notification.poll_interval.get() == 0 {
            return Err(HestParseError::ZeroPollInterval { source_id });
        }
        if g.records_to_preallocate == 0 {
            return Err(HestParseError::ZeroRecordsToPreallocate { source_id });
        }
        if g.max_sections_per_record == 0 {
            return Err(HestParseError::ZeroMaxSections { source_id });
        }
        Ok(())
    }

    /// Reads the entry at `offset` (entry number `index`), as
    /// `apei_hest_parse` with `hest_esrc_len` does.
    fn read_entry(bytes: &[u8], index: u32, offset: usize) -> Result<HestEntry, HestParseError> {
        let rest = &bytes[offset..];
        let truncated = |need: usize| HestParseError::TruncatedEntry {
            index,
            offset,
            need,
            have: rest.len(),
        };
        let (Some(kind), Some(source_id)) = (
            rest.get(0..2).map(|b| u16::from_le_bytes([b[0], b[1]])),
            rest.get(2..4).map(|b| u16::from_le_bytes([b[0], b[1]])),
        ) else {
            return Err(truncated(4));
        };
        let Some((base, banks_at)) = entry_shape(kind) else {
            return Err(HestParseError::UnknownType {
                index,
                offset,
                kind,
                source_id,
            });
        };
        let len = match banks_at {
            Some(at) => {
                let banks = *rest.get(at).ok_or_else(|| truncated(base))?;
                base + usize::from(banks) * IA32_BANK_LEN
            }
            None => base,
        };
        let body = rest.get(..len).ok_or_else(|| truncated(len))?;
        Ok(match kind {
            source_type::GHES_V2 => {
                HestEntry::GhesV2(GhesV2::read_from_bytes(body).map_err(|_| truncated(len))?)
            }
            source_type::GHES => {
                HestEntry::Ghes(Ghes::read_from_bytes(body).map_err(|_| truncated(len))?)
            }
            _ => HestEntry::Other {
                kind,
                source_id,
                len,
            },
        })
    }

    /// Parses a HEST and refuses it, with the reason, where a Linux guest
    /// would refuse it (the whole table, or one of its generic error
    /// sources) or where it breaks an ACPI 6.5 rule (see [`HestParseError`]);
    /// what Linux accepts comes back with [`ParsedHest::warnings`].
    pub fn parse(bytes: &[u8]) -> Result<ParsedHest, HestParseError> {
        let (header, rest) = AcpiTableHeader::read_from_prefix(bytes)
            .map_err(|_| HestParseError::Truncated { len: bytes.len() })?;
        if header.signature != HEST_SIGNATURE {
            return Err(HestParseError::BadSignature {
                found: header.signature,
            });
        }
        if header.length.get() as usize != bytes.len() {
            return Err(HestParseError::LengthMismatch {
                header: header.length.get(),
                actual: bytes.len(),
            });
        }
        let sum = bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b));
        if sum != 0 {
            return Err(HestParseError::BadChecksum { sum });
        }
        let (count, _) = U32::<LE>::read_from_prefix(rest)
            .map_err(|_| HestParseError::Truncated { len: bytes.len() })?;
        let count = count.get();
        debug_assert_eq!(HEADER_LEN + 4, ENTRIES_OFFSET);

        // apei_hest_parse: exactly `count` entries, each within the table.
        let mut all = Vec::new();
        let mut offset = ENTRIES_OFFSET;
        for index in 0..count {
            if offset == bytes.len() {
                return Err(HestParseError::CountExceedsEntries {
                    count,
                    present: index,
                });
            }
            let entry = read_entry(bytes, index, offset)?;
            let len = match &entry {
                HestEntry::GhesV2(_) => GHES_V2_LEN,
                HestEntry::Ghes(_) => GHES_LEN,
                HestEntry::Other { len, .. } => *len,
            };
            all.push(ParsedEntry { offset, entry });
            offset += len;
        }
        if offset != bytes.len() {
            return Err(HestParseError::TrailingBytes {
                count,
                offset,
                len: bytes.len() - offset,
            });
        }

        let mut warnings = Vec::new();
        if count == 0 {
            warnings.push(HestWarning::NoErrorSources);
        }
        // hest_parse_ghes: enabled generic sources only, ids unique.
        let mut seen: HashMap<u16, usize> = HashMap::new();
        for p in &all {
            let Some(g) = Generic::of(&p.entry) else {
                warnings.push(HestWarning::NotGeneric {
                    kind: p.entry.kind(),
                    source_id: p.entry.source_id(),
                });
                continue;
            };
            if g.enabled == 0 {
                warnings.push(HestWarning::Disabled {
                    source_id: g.source_id,
                });
                continue;
            }
            if let Some(&first) = seen.get(&g.source_id) {
                return Err(HestParseError::DuplicateSourceId {
                    source_id: g.source_id,
                    first,
                    second: p.offset,
                });
            }
            seen.insert(g.source_id, p.offset);
        }
        // ghes_probe for each enabled generic source, in table order.
        for p in &all {
            if let Some(g) = Generic::of(&p.entry)
                && g.enabled != 0
            {
                check_generic(&g, &mut warnings)?;
            }
        }
        let entries = all
            .iter()
            .filter_map(|p| match &p.entry {
                HestEntry::GhesV2(e) => Some(*e),
                _ => None,
            })
            .collect();
        Ok(ParsedHest {
            header,
            error_source_count: count,
            entries,
            all,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use super::*;

    #[test]
    fn offsets_match_acpi_6_5() {
        assert_eq!(size_of::<AcpiTableHeader>(), HEADER_LEN);
        assert_eq!(offset_of!(AcpiTableHeader, length), 4);
        assert_eq!(offset_of!(AcpiTableHeader, revision), 8);
        assert_eq!(offset_of!(AcpiTableHeader, checksum), CHECKSUM_OFFSET);
        assert_eq!(offset_of!(AcpiTableHeader, oem_id), 10);
        assert_eq!(offset_of!(AcpiTableHeader, oem_table_id), 16);
        assert_eq!(offset_of!(AcpiTableHeader, oem_revision), 24);
        assert_eq!(offset_of!(AcpiTableHeader, creator_id), 28);
        assert_eq!(offset_of!(AcpiTableHeader, creator_revision), 32);

        assert_eq!(size_of::<GenericAddress>(), 12);
        assert_eq!(offset_of!(GenericAddress, address), 4);

        assert_eq!(size_of::<HardwareErrorNotification>(), 28);
        assert_eq!(offset_of!(HardwareErrorNotification, length), 1);
        assert_eq!(
            offset_of!(HardwareErrorNotification, config_write_enable),
            2
        );
        assert_eq!(offset_of!(HardwareErrorNotification, poll_interval), 4);
        assert_eq!(offset_of!(HardwareErrorNotification, vector), 8);
        assert_eq!(
            offset_of!(HardwareErrorNotification, switch_to_polling_threshold_value),
            12
        );
        assert_eq!(
            offset_of!(
                HardwareErrorNotification,
                switch_to_polling_threshold_window
            ),
            16
        );
        assert_eq!(
            offset_of!(HardwareErrorNotification, error_threshold_value),
            20
        );
        assert_eq!(
            offset_of!(HardwareErrorNotification, error_threshold_window),
            24
        );

        assert_eq!(size_of::<GhesV2>(), GHES_V2_LEN);
        assert_eq!(offset_of!(GhesV2, kind), 0);
        assert_eq!(offset_of!(GhesV2, source_id), 2);
        assert_eq!(offset_of!(GhesV2, related_source_id), 4);
        assert_eq!(offset_of!(GhesV2, flags), 6);
        assert_eq!(offset_of!(GhesV2, enabled), 7);
        assert_eq!(offset_of!(GhesV2, records_to_preallocate), 8);
        assert_eq!(offset_of!(GhesV2, max_sections_per_record), 12);
        assert_eq!(offset_of!(GhesV2, max_raw_data_length), 16);
        assert_eq!(offset_of!(GhesV2, error_status_address), 20);
        assert_eq!(offset_of!(GhesV2, notification), 32);
        assert_eq!(offset_of!(GhesV2, error_status_block_length), 60);
        assert_eq!(offset_of!(GhesV2, read_ack_register), 64);
        assert_eq!(offset_of!(GhesV2, read_ack_preserve), 76);
        assert_eq!(offset_of!(GhesV2, read_ack_write), 84);
    }

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

    #[test]
    fn parse_roundtrip_and_checksum() {
        let b = two_sources().build().unwrap();
        let p = parse(&b).unwrap();
        assert_eq!(p.error_source_count, 2);
        assert_eq!(p.entries.len(), 2);
        assert_eq!(p.entries[1].notification.poll_interval.get(), 100);
    }

    /// Re-checksums `b` after a deliberate change, so that only the change
    /// itself is under test.
    fn fix_checksum(b: &mut [u8]) {
        b[CHECKSUM_OFFSET] = 0;
        let sum = b.iter().fold(0u8, |acc, x| acc.wrapping_add(*x));
        b[CHECKSUM_OFFSET] = 0u8.wrapping_sub(sum);
    }

    #[test]
    fn parse_refuses_damage_with_the_reason() {
        let good = two_sources().build().unwrap();

        assert_eq!(
            parse(&good[..20]).unwrap_err(),
            HestParseError::Truncated { len: 20 }
        );

        let mut b = good.clone();
        b[0] = b'X';
        assert!(matches!(
            parse(&b).unwrap_err(),
            HestParseError::BadSignature { found } if &found == b"XEST"
        ));

        assert_eq!(
            parse(&good[..good.len() - 4]).unwrap_err(),
            HestParseError::LengthMismatch {
                header: good.len() as u32,
                actual: good.len() - 4,
            }
        );

        let mut b = good.clone();
        b[50] ^= 1;
        assert!(matches!(
            parse(&b).unwrap_err(),
            HestParseError::BadChecksum { .. }
        ));

        // Entry 1's type (ACPI 6.5 §18.3.2.8 offset 0) set to 4: a type
        // ACPI 6.5 says must not be used, which Linux does not know.
        let mut b = good.clone();
        b[40 + 92] = 4;
        fix_checksum(&mut b);
        assert_eq!(
            parse(&b).unwrap_err(),
            HestParseError::UnknownType {
                index: 1,
                offset: 132,
                kind: 4,
                source_id: 1,
            }
        );

        // Error source count (HEST offset 36) 3 for 2 entries.
        let mut b = good.clone();
        b[36] = 3;
        fix_checksum(&mut b);
        assert_eq!(
            parse(&b).unwrap_err(),
            HestParseError::CountExceedsEntries {
                count: 3,
                present: 2,
            }
        );

        // The last 4 bytes cut off, header length fixed: entry 1 (at 132)
        // needs 92 bytes, 88 are left.
        let mut b = good[..good.len() - 4].to_vec();
        b[4..8].copy_from_slice(&220u32.to_le_bytes());
        fix_checksum(&mut b);
        assert_eq!(
            parse(&b).unwrap_err(),
            HestParseError::TruncatedEntry {
                index: 1,
                offset: 132,
                need: 92,
                have: 88,
            }
        );
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
        assert_eq!(parse(&t).unwrap().error_source_count, 300);
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
        assert_eq!(parse(&t).unwrap().error_source_count, 0);
    }
}
