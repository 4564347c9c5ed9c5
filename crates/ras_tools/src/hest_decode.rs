// SPDX-License-Identifier: Apache-2.0
//! Reading a HEST back the way a Linux guest reads it, and refusing what
//! Linux refuses.
//!
//! [`parse`] walks the table as `apei_hest_parse` (drivers/acpi/apei/hest.c)
//! does, then checks every enabled generic error source (types 9 and 10) as
//! `hest_parse_ghes` (hest.c), `ghes_probe`, `ghes_new`, `map_gen_v2` and
//! `ghes_add_timer` (drivers/acpi/apei/ghes.c) and `apei_check_gar`
//! (drivers/acpi/apei/apei-base.c) with `acpi_os_map_generic_address`
//! (drivers/acpi/osl.c) do. The kernel sources read are Debian's
//! linux-source-6.1 (6.1.192) and linux-source-7.3 (7.3.4, the newest
//! Linux on the archive, used as "mainline"); every rule below holds in
//! both unless it says otherwise.
//!
//! Each refusal is one [`HestParseError`] variant whose documentation names
//! the kernel function it mirrors and what Linux then does: either the whole
//! HEST is disabled (`acpi_hest_init` sets `hest_disable`), or the one
//! source is not bound (its `ghes_probe` fails; the others still work).
//! A few refusals are rules of the ACPI 6.5 text that Linux does not
//! enforce (file integrity, counts, "must be >= 1"): their documentation
//! says so. What Linux accepts but a reader should know (count 0, disabled
//! sources, non-generic entries, a block longer than Linux reads, port I/O,
//! config-dependent notifications) is a [`HestWarning`], never a refusal.
//!
//! Tested in `tests/hest_linux_refusals.rs` (a table written byte by byte
//! from the spec, damaged one field at a time, one test per refusal and
//! warning) and by `rasctl`'s tests, which read back the tables the engine
//! builds.

use std::collections::HashMap;
use std::fmt;

use ras::hest::{
    AcpiTableHeader, ENTRIES_OFFSET, GHES_LEN, GHES_V2_LEN, GenericAddress, Ghes, GhesV2,
    HEADER_LEN, HEST_SIGNATURE, HardwareErrorNotification, MAX_BLOCK_LEN, MIN_BLOCK_LEN,
    NotificationType,
};
use thiserror::Error;
use zerocopy::FromBytes;
use zerocopy::byteorder::{LE, U32};

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
            HestEntry::GhesV2(e) => e.ghes.source_id.get(),
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
    /// [`ras::hest::HestBuilder`] emits).
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
    #[error("HEST error source count {count} ends at offset {offset}, but {len} more bytes follow")]
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
    #[error("Source {source_id}: notification type {kind} is not supported by Linux's GHES driver")]
    UnsupportedNotification {
        /// The source id.
        source_id: u16,
        /// The notification type.
        kind: u8,
    },
    /// A notification type (offset 32) outside ACPI 6.5 §18.3.2.9
    /// (0..=11). Linux's `ghes_probe`: "Unknown notification type",
    /// -EINVAL, the source is not bound.
    #[error("Source {source_id}: notification type {kind} is reserved (ACPI 6.5 defines 0..=11)")]
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
    #[error("Source {source_id}: polled notification with a zero interval (Linux never polls it)")]
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

/// A generic error source's fields, common to GHES and GHESv2 (their first
/// 64 bytes share one layout, ACPI 6.5 §18.3.2.7 and §18.3.2.8), plus
/// GHESv2's read-ack triple: what Linux checks and what `rasctl decode`
/// prints. [`HestEntry::generic`] gives it.
#[derive(Clone, Copy, Debug)]
pub struct GenericSource<'a> {
    /// Type: 9 (GHES) or 10 (GHESv2).
    pub kind: u16,
    /// Source id.
    pub source_id: u16,
    /// Related source id (0xFFFF: none).
    pub related_source_id: u16,
    /// Enabled.
    pub enabled: u8,
    /// Records to pre-allocate.
    pub records_to_preallocate: u32,
    /// Max sections per record.
    pub max_sections_per_record: u32,
    /// Error Status Address register.
    pub error_status_address: &'a GenericAddress,
    /// Notification structure.
    pub notification: &'a HardwareErrorNotification,
    /// Error status block length.
    pub error_status_block_length: u32,
    /// GHESv2 only: the Read Ack Register, its preserve mask and write
    /// value.
    pub read_ack: Option<(&'a GenericAddress, u64, u64)>,
}

impl HestEntry {
    /// The generic error source fields of a GHES or GHESv2 entry; `None`
    /// for any other type.
    pub fn generic(&self) -> Option<GenericSource<'_>> {
        let (g, read_ack) = match self {
            HestEntry::GhesV2(e) => (
                &e.ghes,
                Some((
                    &e.read_ack_register,
                    e.read_ack_preserve.get(),
                    e.read_ack_write.get(),
                )),
            ),
            HestEntry::Ghes(e) => (e, None),
            HestEntry::Other { .. } => return None,
        };
        Some(GenericSource {
            kind: g.kind.get(),
            source_id: g.source_id.get(),
            related_source_id: g.related_source_id.get(),
            enabled: g.enabled,
            records_to_preallocate: g.records_to_preallocate.get(),
            max_sections_per_record: g.max_sections_per_record.get(),
            error_status_address: &g.error_status_address,
            notification: &g.notification,
            error_status_block_length: g.error_status_block_length.get(),
            read_ack,
        })
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
    g: &GenericSource<'_>,
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
    if let Some((ack, _, _)) = g.read_ack {
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
        let Some(g) = p.entry.generic() else {
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
        if let Some(g) = p.entry.generic()
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
