// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! Machine-check architecture (MCA) register values for a guest memory
//! error. Pure: no KVM, no `unsafe`.
//!
//! A VMM that learns a guest page is lost (a host `SIGBUS` `BUS_MCEERR_AR`
//! on a vCPU thread, or `BUS_MCEERR_AO`) tells an x86 guest the way the
//! hardware would: it fills one MCA bank (`IA32_MCi_STATUS`, `IA32_MCi_ADDR`,
//! `IA32_MCi_MISC`) and `IA32_MCG_STATUS`, and for an uncorrected error
//! raises a machine-check exception (#MC, vector 18). [`McaMemoryError`]
//! describes the error; [`McaMemoryError::bank_values`] gives the four
//! values ([`McaBankValues`]) for an Intel-flavoured or an AMD-flavoured
//! guest; [`McgCap::for_guest`] chooses the vCPU's `IA32_MCG_CAP`.
//!
//! Sources (section numbers of the Intel SDM editions where MCA is chapter
//! 16; older editions number it 15):
//! - Intel SDM Vol. 3B, chapter 16 "Machine-Check Architecture":
//!   16.3.1.1 `IA32_MCG_CAP`, 16.3.1.2 `IA32_MCG_STATUS`, 16.3.2.2
//!   `IA32_MCi_STATUS`, 16.3.2.3 `IA32_MCi_ADDR`, 16.3.2.4 `IA32_MCi_MISC`
//!   (address mode, recoverable address LSB), 16.6.3 "UCR Error
//!   Classification" (SRAR: `UC`=1 `PCC`=0 `S`=1 `AR`=1; SRAO: `S`=1
//!   `AR`=0), 16.9.3 "Architecturally Defined UCR Errors" (SRAO memory
//!   scrubbing `MCACOD` 0xC0-0xCF, SRAR data load 0x134, instruction fetch
//!   0x150), 16.9.2 "Compound Error Codes" (memory controller errors
//!   `0000 0000 1MMM CCCC`).
//! - AMD APM Vol. 2 (24593), chapter 9 "Machine Check Mechanism": the same
//!   `MCG_CAP`/`MCG_STATUS` bits and `MCi_STATUS` bits 63..57; bits 56..55
//!   are not `S`/`AR` on AMD, and the poison (43) and deferred (44) bits
//!   come from the processor's PPR (`MCA_STATUS`), named as Linux names
//!   them in `arch/x86/include/asm/mce.h`.
//!
//! What a Linux guest needs (`arch/x86/kernel/cpu/mce/core.c`,
//! `severity.c`, `intel.c`, `amd.c`):
//! - Intel flavour. `mce_severity_intel()` walks a table; an error in a
//!   user process is action-required ("data load error in a user process")
//!   for `MCI_STATUS` `UC|S|AR|ADDRV|MISCV`, not `OVER`, `MCACOD` 0x134, and
//!   only when the guest saw `MCG_SER_P` in `IA32_MCG_CAP` (`mca_cfg.ser`).
//!   `PCC` makes it a panic; `MCG_STATUS` without `MCIP`, or with neither
//!   `RIPV` nor `EIPV`, too; `RIPV`=1 with `EIPV`=0 makes it "unaffected
//!   thread is continuable" (nothing killed). The address is used only if
//!   `intel_mce_usable_address()` holds: `MISCV`, the `MCi_MISC` address
//!   mode is physical (`MCI_MISC_ADDR_PHYS` = 2) and the recoverable
//!   address LSB (`MCI_MISC_ADDR_LSB`) is at most `PAGE_SHIFT` (12): a
//!   granule above 4 KiB makes the guest ignore the address. Then
//!   `kill_me_maybe()` runs `memory_failure(addr >> PAGE_SHIFT,
//!   MF_ACTION_REQUIRED)` (`MF_MUST_KILL` too when `RIPV`=0). SRAO
//!   (`MCACOD` 0xC0 memory scrubbing, `UC|S`, no `AR`) is "Action optional:
//!   memory scrubbing error": `memory_failure(pfn, 0)` from the notifier.
//! - AMD flavour. `mce_severity_amd()` does not read `S`/`AR`/`MCACOD`: `PCC`
//!   panics, and so does every `UC` error unless the CPU reports SUCCOR
//!   (CPUID 0x8000_0007 EBX bit 1; "Uncorrected error without MCA
//!   Recovery": KVM never reports it, the VMM must) and, with `OVER`,
//!   `OverflowRecov` (bit 0); then `UC` in the kernel panics and `UC` in a
//!   user process is action-required: `kill_me_maybe()` runs
//!   `memory_failure()` on the address (`MF_MUST_KILL` too when `RIPV` is
//!   clear). Older kernels took a `UC` without
//!   `OverflowRecov` as `MCE_UC_SEVERITY` and acted only if `RIPV` was
//!   clear. The address is
//!   usable (`amd_mce_usable_address()`) when the `Poison` bit (43) is set
//!   (bank 4 is the legacy northbridge bank: avoid it). An action-optional
//!   error is a deferred error (`Deferred`, bit 44, no `UC`): no #MC, the
//!   guest finds it when it polls the banks. QEMU (`target/i386/kvm/kvm.c`,
//!   `kvm_mce_inject`) uses the same values, but with `RIPV` set for an
//!   AMD action-required error.

use thiserror::Error;

/// `IA32_MCi_STATUS` bits (Intel SDM 16.3.2.2; AMD APM vol. 2, 9.3.2).
pub mod status {
    /// Bit 63: the register holds a valid error.
    pub const VAL: u64 = 1 << 63;
    /// Bit 62: an error was lost (overflow).
    pub const OVER: u64 = 1 << 62;
    /// Bit 61: uncorrected error.
    pub const UC: u64 = 1 << 61;
    /// Bit 60: error reporting was enabled (`IA32_MCi_CTL`) for this error.
    pub const EN: u64 = 1 << 60;
    /// Bit 59: `IA32_MCi_MISC` holds information about this error.
    pub const MISCV: u64 = 1 << 59;
    /// Bit 58: `IA32_MCi_ADDR` holds the address of this error.
    pub const ADDRV: u64 = 1 << 58;
    /// Bit 57: processor context corrupt (not recoverable).
    pub const PCC: u64 = 1 << 57;
    /// Bit 56 (Intel, with `MCG_SER_P`): signaled through #MC.
    pub const S: u64 = 1 << 56;
    /// Bit 55 (Intel, with `MCG_SER_P`): action required.
    pub const AR: u64 = 1 << 55;
    /// Bit 44 (AMD): deferred error (uncorrected, not yet consumed).
    pub const AMD_DEFERRED: u64 = 1 << 44;
    /// Bit 43 (AMD): the error is poisoned data (the address is usable).
    pub const AMD_POISON: u64 = 1 << 43;
    /// Bits 15:0: the MCA error code (`MCACOD`).
    pub const MCACOD_MASK: u64 = 0xffff;
}

/// MCA error codes (`MCACOD`, `IA32_MCi_STATUS` bits 15:0; Intel SDM
/// 16.9.2 and 16.9.3).
pub mod mcacod {
    /// SRAR data load: cache hierarchy error (`0000 0001 RRRR TTLL` with
    /// RRRR = 0011 data read, TT = 01 data, LL = 00 level 0).
    pub const DATA_LOAD: u64 = 0x0134;
    /// SRAR instruction fetch (RRRR = 0101 instruction read, TT = 00).
    pub const INSTRUCTION_FETCH: u64 = 0x0150;
    /// SRAO memory scrubbing: memory controller error (`0000 0000 1MMM
    /// CCCC`, MMM = 100 scrubbing, CCCC = 0000 channel 0). Linux matches
    /// 0xC0-0xCF (`MCACOD_SCRUBMSK`).
    pub const MEMORY_SCRUBBING: u64 = 0x00c0;
    /// Corrected memory read error, channel not specified (MMM = 001,
    /// CCCC = 1111).
    pub const MEMORY_READ: u64 = 0x009f;
}

/// `IA32_MCi_MISC` fields (Intel SDM 16.3.2.4).
pub mod misc {
    /// Bits 5:0: recoverable address LSB.
    pub const ADDR_LSB_MASK: u64 = 0x3f;
    /// Bits 8:6: address mode.
    pub const ADDR_MODE_SHIFT: u32 = 6;
    /// Address mode 010b: physical address.
    pub const ADDR_MODE_PHYSICAL: u64 = 2;
}

/// `IA32_MCG_STATUS` bits (Intel SDM 16.3.1.2; AMD APM vol. 2, 9.3.1.2).
pub mod mcg_status {
    /// Bit 0: restart IP valid (the program can resume at the pushed IP).
    pub const RIPV: u64 = 1 << 0;
    /// Bit 1: error IP valid (the pushed IP is the instruction that erred).
    pub const EIPV: u64 = 1 << 1;
    /// Bit 2: machine check in progress (a second #MC while set shuts down).
    pub const MCIP: u64 = 1 << 2;
    /// Bit 3 (Intel): local machine check (only this logical processor).
    pub const LMCE_S: u64 = 1 << 3;
}

/// `IA32_MCG_CAP` bits (Intel SDM 16.3.1.1; AMD APM vol. 2, 9.3.1.1).
pub mod mcg_cap {
    /// Bits 7:0: number of banks.
    pub const COUNT_MASK: u64 = 0xff;
    /// Bit 8: `IA32_MCG_CTL` present.
    pub const CTL_P: u64 = 1 << 8;
    /// Bit 9: extended machine-check state registers present.
    pub const EXT_P: u64 = 1 << 9;
    /// Bit 10: corrected machine-check interrupt (CMCI) supported.
    pub const CMCI_P: u64 = 1 << 10;
    /// Bit 11: threshold-based error status present.
    pub const TES_P: u64 = 1 << 11;
    /// Bits 23:16: number of extended machine-check state registers.
    pub const EXT_CNT_MASK: u64 = 0xff << 16;
    /// Bit 24: software error recovery (UCR: `S`, `AR` in `MCi_STATUS`).
    pub const SER_P: u64 = 1 << 24;
    /// Bit 27: local machine check supported.
    pub const LMCE_P: u64 = 1 << 27;
}

/// MSR numbers (Intel SDM 16.3 and Vol. 4 "Model-Specific Registers").
pub mod msr {
    /// `IA32_MCG_CAP`.
    pub const IA32_MCG_CAP: u32 = 0x179;
    /// `IA32_MCG_STATUS`.
    pub const IA32_MCG_STATUS: u32 = 0x17a;
    /// `IA32_MCG_CTL` (only with `MCG_CTL_P`).
    pub const IA32_MCG_CTL: u32 = 0x17b;
    /// `IA32_MC0_CTL`; bank `i` has CTL, STATUS, ADDR, MISC at
    /// `0x400 + 4 i + 0..=3`.
    pub const IA32_MC0_CTL: u32 = 0x400;

    /// `IA32_MCi_CTL`.
    pub const fn mci_ctl(bank: u8) -> u32 {
        IA32_MC0_CTL + 4 * bank as u32
    }
    /// `IA32_MCi_STATUS`.
    pub const fn mci_status(bank: u8) -> u32 {
        mci_ctl(bank) + 1
    }
    /// `IA32_MCi_ADDR`.
    pub const fn mci_addr(bank: u8) -> u32 {
        mci_ctl(bank) + 2
    }
    /// `IA32_MCi_MISC`.
    pub const fn mci_misc(bank: u8) -> u32 {
        mci_ctl(bank) + 3
    }
}

/// Largest recoverable-address LSB a Linux guest accepts: `PAGE_SHIFT`
/// (`intel_mce_usable_address()` returns false above it, and the guest
/// then does not act on the address at all).
pub const MAX_ADDR_LSB: u8 = 12;
/// Smallest and largest physical-address width (CPUID 0x8000_0008
/// EAX[7:0]) this module accepts; 52 is the architectural maximum
/// (Intel SDM Vol. 3A 4.1.4, AMD APM vol. 2 5.1).
pub const MIN_PHYS_BITS: u8 = 32;
/// See [`MIN_PHYS_BITS`].
pub const MAX_PHYS_BITS: u8 = 52;
/// Banks a guest gets by default (QEMU's `MCE_BANKS_DEF`).
pub const DEFAULT_BANKS: u8 = 10;
/// The bank memory errors are reported in by default: the last of the
/// default ten, QEMU's choice; not bank 4, which a Linux guest on AMD
/// treats as the legacy northbridge bank (`amd_mce_usable_address()`).
pub const DEFAULT_MEMORY_ERROR_BANK: u8 = 9;

/// Errors of this module.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum McaError {
    /// The granularity is coarser than a Linux guest uses.
    #[error(
        "Address LSB {lsb} is above {max}: a Linux guest ignores the address of a machine check whose granularity is coarser than a page"
    )]
    AddressLsbTooLarge {
        /// The rejected LSB.
        lsb: u8,
        /// [`MAX_ADDR_LSB`].
        max: u8,
    },
    /// The address has bits set below its granularity.
    #[error("Address {gpa:#x} has bits set below its granularity (LSB {lsb})")]
    AddressBitsBelowLsb {
        /// The rejected address.
        gpa: u64,
        /// Its LSB.
        lsb: u8,
    },
    /// The address does not fit the guest's physical-address width.
    #[error("Address {gpa:#x} is above the guest's {phys_bits}-bit physical address space")]
    AddressAboveLimit {
        /// The rejected address.
        gpa: u64,
        /// The guest's physical-address width.
        phys_bits: u8,
    },
    /// The physical-address width is not a valid MAXPHYADDR.
    #[error("Physical-address width {phys_bits} is outside {MIN_PHYS_BITS}..={MAX_PHYS_BITS} bits")]
    PhysBitsOutOfRange {
        /// The rejected width.
        phys_bits: u8,
    },
    /// No usable bank count.
    #[error("Cannot give a vCPU {banks} banks (KVM allows 1..={max})")]
    BankCount {
        /// Banks asked for.
        banks: u8,
        /// KVM's limit.
        max: u32,
    },
}

/// How the error affects the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum McaErrorKind {
    /// The guest consumed the page (host `BUS_MCEERR_AR` on its vCPU
    /// thread): SRAR, a #MC at the consuming instruction.
    ActionRequired,
    /// The page failed without being consumed (host `BUS_MCEERR_AO`):
    /// SRAO on Intel (a #MC), a deferred error on AMD (no #MC).
    ActionOptional,
    /// A corrected error: logged in the bank, no #MC.
    Corrected,
}

/// Which register layout the guest expects (from its CPUID vendor string).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CpuVendor {
    /// Intel's layout (`S`, `AR`, `MCACOD`, `MCi_MISC` address mode); also
    /// what Linux applies to Zhaoxin/Centaur.
    Intel,
    /// AMD's layout (`Poison`, `Deferred`); also Hygon.
    Amd,
}

impl CpuVendor {
    /// The vendor of a CPUID leaf 0 vendor string (EBX, EDX, ECX), or
    /// `None` for one this module does not know.
    pub fn from_cpuid_vendor(ebx: u32, edx: u32, ecx: u32) -> Option<Self> {
        let mut id = [0u8; 12];
        id[0..4].copy_from_slice(&ebx.to_le_bytes());
        id[4..8].copy_from_slice(&edx.to_le_bytes());
        id[8..12].copy_from_slice(&ecx.to_le_bytes());
        match &id {
            b"GenuineIntel" | b"CentaurHauls" | b"  Shanghai  " => Some(Self::Intel),
            b"AuthenticAMD" | b"HygonGenuine" => Some(Self::Amd),
            _ => None,
        }
    }
}

/// A guest memory error, validated for what a guest can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct McaMemoryError {
    kind: McaErrorKind,
    gpa: u64,
    lsb: u8,
}

impl McaMemoryError {
    /// An error of `kind` at guest-physical address `gpa` with granularity
    /// `2^lsb` bytes, for a guest with `phys_bits` bits of physical
    /// address.
    ///
    /// Refused: `lsb` above [`MAX_ADDR_LSB`] (a host granule of 2 MiB or
    /// 1 GiB must be reported page by page, or through another channel),
    /// bits of `gpa` below `lsb`, `gpa` at or above `2^phys_bits`, and a
    /// `phys_bits` outside [`MIN_PHYS_BITS`]..=[`MAX_PHYS_BITS`].
    pub fn new(kind: McaErrorKind, gpa: u64, lsb: u8, phys_bits: u8) -> Result<Self, McaError> {
        if !(MIN_PHYS_BITS..=MAX_PHYS_BITS).contains(&phys_bits) {
            return Err(McaError::PhysBitsOutOfRange { phys_bits });
        }
        if lsb > MAX_ADDR_LSB {
            return Err(McaError::AddressLsbTooLarge {
                lsb,
                max: MAX_ADDR_LSB,
            });
        }
        if gpa & ((1u64 << lsb) - 1) != 0 {
            return Err(McaError::AddressBitsBelowLsb { gpa, lsb });
        }
        if gpa >> phys_bits != 0 {
            return Err(McaError::AddressAboveLimit { gpa, phys_bits });
        }
        Ok(Self { kind, gpa, lsb })
    }

    /// The kind.
    pub fn kind(&self) -> McaErrorKind {
        self.kind
    }

    /// The guest-physical address (aligned to the granularity).
    pub fn gpa(&self) -> u64 {
        self.gpa
    }

    /// log2 of the granularity.
    pub fn lsb(&self) -> u8 {
        self.lsb
    }

    /// The register values for a guest that expects `vendor`'s layout.
    ///
    /// Intel: SRAR `VAL|UC|EN|MISCV|ADDRV|S|AR`, `MCACOD` 0x134, `MCG_STATUS`
    /// `MCIP|EIPV|RIPV`; SRAO `VAL|UC|EN|MISCV|ADDRV|S`, `MCACOD` 0xC0,
    /// `MCIP|RIPV`; corrected `VAL|EN|MISCV|ADDRV`, `MCACOD` 0x9F, no #MC.
    /// `RIPV` is set for SRAR although the SDM's SRAR table leaves it clear
    /// on hardware: the vCPU has not executed the consuming instruction
    /// and can restart it once the guest has dealt with the page; with
    /// `RIPV`=0 a Linux guest panics for a consumption in a recoverable
    /// kernel copy ("In kernel and no restart IP") and always kills the
    /// task (`MF_MUST_KILL`). QEMU sets it too.
    ///
    /// AMD: action required `VAL|UC|EN|MISCV|ADDRV|Poison`, `MCIP|EIPV`
    /// with `RIPV` clear; action optional `VAL|EN|MISCV|ADDRV|Deferred|Poison`
    /// (no `UC`: no #MC, the guest finds it by polling); corrected
    /// `VAL|EN|MISCV|ADDRV`. Unlike QEMU (`RIPV|EIPV`), `RIPV` is clear for
    /// AMD: a Linux guest whose CPUID lacks `OverflowRecov` (0x8000_0007
    /// EBX bit 0; KVM offered none on the 6.1 and 7.3 hosts of the lab)
    /// grades a user-mode `UC` error `MCE_UC_SEVERITY` and acts only when
    /// `RIPV` is clear (`kill_current_task` -> `kill_me_maybe()` ->
    /// `memory_failure(pfn, MF_ACTION_REQUIRED | MF_MUST_KILL)`); with
    /// `RIPV` set it would return to the consuming instruction and consume
    /// again. With `OverflowRecov` it grades it `MCE_AR_SEVERITY` either way.
    ///
    /// `MCi_MISC` (both): address mode physical, LSB = the granularity.
    pub fn bank_values(&self, vendor: CpuVendor) -> McaBankValues {
        use self::mcg_status::{EIPV, MCIP, RIPV};
        use self::status::{ADDRV, AMD_DEFERRED, AMD_POISON, AR, EN, MISCV, S, UC, VAL};
        let base = VAL | EN | MISCV | ADDRV;
        let (status, mcg_status) = match (vendor, self.kind) {
            (CpuVendor::Intel, McaErrorKind::ActionRequired) => {
                (base | UC | S | AR | mcacod::DATA_LOAD, MCIP | EIPV | RIPV)
            }
            (CpuVendor::Intel, McaErrorKind::ActionOptional) => {
                (base | UC | S | mcacod::MEMORY_SCRUBBING, MCIP | RIPV)
            }
            (CpuVendor::Intel, McaErrorKind::Corrected) => (base | mcacod::MEMORY_READ, 0),
            (CpuVendor::Amd, McaErrorKind::ActionRequired) => (base | UC | AMD_POISON, MCIP | EIPV),
            (CpuVendor::Amd, McaErrorKind::ActionOptional) => (base | AMD_DEFERRED | AMD_POISON, 0),
            (CpuVendor::Amd, McaErrorKind::Corrected) => (base, 0),
        };
        McaBankValues {
            status,
            addr: self.gpa,
            misc: (misc::ADDR_MODE_PHYSICAL << misc::ADDR_MODE_SHIFT) | u64::from(self.lsb),
            mcg_status,
        }
    }
}

/// The values of one bank and `IA32_MCG_STATUS` for one error
/// (the fields of `struct kvm_x86_mce` but the bank number).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct McaBankValues {
    /// `IA32_MCi_STATUS`.
    pub status: u64,
    /// `IA32_MCi_ADDR`.
    pub addr: u64,
    /// `IA32_MCi_MISC`.
    pub misc: u64,
    /// `IA32_MCG_STATUS` (written by KVM only for an uncorrected error).
    pub mcg_status: u64,
}

impl McaBankValues {
    /// Whether KVM raises #MC for these values (`UC` set): the guest must
    /// have `CR4.MCE` set and `MCG_STATUS.MCIP` clear, or it shuts down.
    pub fn raises_machine_check(&self) -> bool {
        self.status & status::UC != 0
    }

    /// The same values marked local to the vCPU (`MCG_STATUS.LMCE_S`), for
    /// a guest that enabled local machine checks (`MCG_LMCE_P` offered,
    /// `IA32_MCG_EXT_CTL.LMCE_EN` set by the guest); an Intel guest without
    /// it expects the #MC on every vCPU.
    pub fn local(self) -> Self {
        Self {
            mcg_status: self.mcg_status | mcg_status::LMCE_S,
            ..self
        }
    }
}

/// A vCPU's `IA32_MCG_CAP` (the argument of `KVM_X86_SETUP_MCE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct McgCap(u64);

impl McgCap {
    /// `banks` banks and the capabilities a recovering guest needs that
    /// the host supports: `MCG_CTL_P` and `MCG_SER_P` (without `SER_P` an
    /// Intel guest cannot classify SRAR/SRAO), plus `MCG_LMCE_P` when
    /// `lmce`. `supported` is `KVM_X86_GET_MCE_CAP_SUPPORTED`, `max_banks`
    /// `KVM_CHECK_EXTENSION(KVM_CAP_MCE)`.
    pub fn for_guest(
        supported: u64,
        max_banks: u32,
        banks: u8,
        lmce: bool,
    ) -> Result<Self, McaError> {
        if banks == 0 || u32::from(banks) > max_banks {
            return Err(McaError::BankCount {
                banks,
                max: max_banks,
            });
        }
        let mut want = mcg_cap::CTL_P | mcg_cap::SER_P;
        if lmce {
            want |= mcg_cap::LMCE_P;
        }
        Ok(Self((supported & want) | u64::from(banks)))
    }

    /// A raw `IA32_MCG_CAP` value.
    pub fn from_raw(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw value.
    pub fn raw(&self) -> u64 {
        self.0
    }

    /// Number of banks.
    pub fn banks(&self) -> u8 {
        (self.0 & mcg_cap::COUNT_MASK) as u8
    }

    /// Whether the guest is told about software error recovery.
    pub fn ser(&self) -> bool {
        self.0 & mcg_cap::SER_P != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values are written out from the SDM/APM bit positions by
    // hand (bit 63 VAL, 61 UC, 60 EN, 59 MISCV, 58 ADDRV, 56 S, 55 AR,
    // 44 Deferred, 43 Poison; MISC[8:6] = 010b physical, MISC[5:0] = LSB;
    // MCG_STATUS bit 0 RIPV, 1 EIPV, 2 MCIP), never from the constants
    // above.

    fn err(kind: McaErrorKind, gpa: u64) -> McaMemoryError {
        McaMemoryError::new(kind, gpa, 12, 46).unwrap()
    }

    #[test]
    fn bit_positions() {
        assert_eq!(status::VAL, 0x8000_0000_0000_0000);
        assert_eq!(status::OVER, 0x4000_0000_0000_0000);
        assert_eq!(status::UC, 0x2000_0000_0000_0000);
        assert_eq!(status::EN, 0x1000_0000_0000_0000);
        assert_eq!(status::MISCV, 0x0800_0000_0000_0000);
        assert_eq!(status::ADDRV, 0x0400_0000_0000_0000);
        assert_eq!(status::PCC, 0x0200_0000_0000_0000);
        assert_eq!(status::S, 0x0100_0000_0000_0000);
        assert_eq!(status::AR, 0x0080_0000_0000_0000);
        assert_eq!(status::AMD_DEFERRED, 0x0000_1000_0000_0000);
        assert_eq!(status::AMD_POISON, 0x0000_0800_0000_0000);
        assert_eq!(mcg_cap::CTL_P, 0x100);
        assert_eq!(mcg_cap::SER_P, 0x0100_0000);
        assert_eq!(mcg_cap::LMCE_P, 0x0800_0000);
        assert_eq!(mcg_cap::CMCI_P, 0x400);
        assert_eq!(mcg_status::MCIP, 4);
        assert_eq!(msr::mci_status(9), 0x425);
        assert_eq!(msr::mci_addr(9), 0x426);
        assert_eq!(msr::mci_misc(9), 0x427);
        assert_eq!(msr::mci_ctl(1), 0x404);
    }

    #[test]
    fn intel_srar_data_load() {
        let v = err(McaErrorKind::ActionRequired, 0x1234_5000).bank_values(CpuVendor::Intel);
        assert_eq!(
            v,
            McaBankValues {
                status: 0xbd80_0000_0000_0134,
                addr: 0x1234_5000,
                misc: 0x8c,
                mcg_status: 0x7,
            }
        );
        assert!(v.raises_machine_check());
        // PCC clear, OVER clear: what Linux's table needs for "data load
        // error in a user process".
        assert_eq!(v.status & (1 << 57), 0);
        assert_eq!(v.status & (1 << 62), 0);
    }

    #[test]
    fn intel_srao_scrub() {
        let v = err(McaErrorKind::ActionOptional, 0x8_0000).bank_values(CpuVendor::Intel);
        assert_eq!(
            v,
            McaBankValues {
                status: 0xbd00_0000_0000_00c0,
                addr: 0x8_0000,
                misc: 0x8c,
                mcg_status: 0x5,
            }
        );
        assert!(v.raises_machine_check());
    }

    #[test]
    fn intel_corrected() {
        let v = err(McaErrorKind::Corrected, 0x8_0000).bank_values(CpuVendor::Intel);
        assert_eq!(v.status, 0x9c00_0000_0000_009f);
        assert_eq!(v.mcg_status, 0);
        assert!(!v.raises_machine_check());
    }

    #[test]
    fn amd_flavour() {
        let ar = err(McaErrorKind::ActionRequired, 0x7000).bank_values(CpuVendor::Amd);
        assert_eq!(
            ar,
            McaBankValues {
                status: 0xbc00_0800_0000_0000,
                addr: 0x7000,
                misc: 0x8c,
                mcg_status: 0x6,
            }
        );
        let ao = err(McaErrorKind::ActionOptional, 0x7000).bank_values(CpuVendor::Amd);
        assert_eq!(ao.status, 0x9c00_1800_0000_0000);
        assert_eq!(ao.mcg_status, 0);
        assert!(!ao.raises_machine_check());
        let ce = err(McaErrorKind::Corrected, 0x7000).bank_values(CpuVendor::Amd);
        assert_eq!(ce.status, 0x9c00_0000_0000_0000);
    }

    #[test]
    fn misc_carries_the_lsb() {
        let v = McaMemoryError::new(McaErrorKind::ActionRequired, 0x40, 6, 46)
            .unwrap()
            .bank_values(CpuVendor::Intel);
        assert_eq!(v.misc, 0x86);
        let v = McaMemoryError::new(McaErrorKind::ActionRequired, 0x41, 0, 46)
            .unwrap()
            .bank_values(CpuVendor::Intel);
        assert_eq!(v.misc, 0x80);
        assert_eq!(v.addr, 0x41);
    }

    #[test]
    fn local() {
        let v = err(McaErrorKind::ActionRequired, 0x1000)
            .bank_values(CpuVendor::Intel)
            .local();
        assert_eq!(v.mcg_status, 0xf);
    }

    #[test]
    fn lsb_out_of_range_is_refused() {
        for lsb in [13, 21, 30, 63, 64, 255] {
            assert_eq!(
                McaMemoryError::new(McaErrorKind::ActionRequired, 0, lsb, 46),
                Err(McaError::AddressLsbTooLarge { lsb, max: 12 })
            );
        }
        assert_eq!(
            McaMemoryError::new(McaErrorKind::ActionRequired, 0, 12, 46)
                .unwrap()
                .gpa(),
            0
        );
    }

    #[test]
    fn address_limits() {
        // Above: 2^46 does not fit 46 bits, 2^46 - 4096 does.
        assert_eq!(
            McaMemoryError::new(McaErrorKind::ActionRequired, 0x4000_0000_0000, 12, 46),
            Err(McaError::AddressAboveLimit {
                gpa: 0x4000_0000_0000,
                phys_bits: 46
            })
        );
        let top = McaMemoryError::new(McaErrorKind::ActionRequired, 0x3fff_ffff_f000, 12, 46);
        assert_eq!(top.map(|e| e.gpa()), Ok(0x3fff_ffff_f000));
        assert_eq!(
            McaMemoryError::new(McaErrorKind::ActionOptional, !0xfff, 12, 52),
            Err(McaError::AddressAboveLimit {
                gpa: 0xffff_ffff_ffff_f000,
                phys_bits: 52
            })
        );
        // Below: bits under the granularity.
        assert_eq!(
            McaMemoryError::new(McaErrorKind::ActionRequired, 0x1080, 12, 46),
            Err(McaError::AddressBitsBelowLsb {
                gpa: 0x1080,
                lsb: 12
            })
        );
        assert_eq!(
            McaMemoryError::new(McaErrorKind::ActionRequired, 0x1001, 6, 46),
            Err(McaError::AddressBitsBelowLsb {
                gpa: 0x1001,
                lsb: 6
            })
        );
        // Zero is a page like any other.
        assert_eq!(
            McaMemoryError::new(McaErrorKind::ActionRequired, 0, 12, 46)
                .unwrap()
                .gpa(),
            0
        );
    }

    #[test]
    fn phys_bits_limits() {
        for phys_bits in [0, 31, 53, 64] {
            assert_eq!(
                McaMemoryError::new(McaErrorKind::Corrected, 0, 12, phys_bits),
                Err(McaError::PhysBitsOutOfRange { phys_bits })
            );
        }
        assert_eq!(
            McaMemoryError::new(McaErrorKind::Corrected, 0xffff_f000, 12, 32)
                .unwrap()
                .gpa(),
            0xffff_f000
        );
    }

    #[test]
    fn mcg_cap_for_guest() {
        // KVM on AMD supports CTL_P|SER_P (0x0100_0100); on Intel also
        // LMCE_P and CMCI_P (0x0900_0500).
        let amd = McgCap::for_guest(0x0100_0100, 32, 10, true).unwrap();
        assert_eq!(amd.raw(), 0x0100_010a);
        assert_eq!(amd.banks(), 10);
        assert!(amd.ser());
        let intel = McgCap::for_guest(0x0900_0500, 32, 10, true).unwrap();
        assert_eq!(intel.raw(), 0x0900_010a);
        let no_lmce = McgCap::for_guest(0x0900_0500, 32, 10, false).unwrap();
        assert_eq!(no_lmce.raw(), 0x0100_010a);
        let bare = McgCap::for_guest(0, 32, 1, false).unwrap();
        assert_eq!(bare.raw(), 1);
        assert!(!bare.ser());
        assert_eq!(
            McgCap::for_guest(0x0100_0100, 32, 0, false),
            Err(McaError::BankCount { banks: 0, max: 32 })
        );
        assert_eq!(
            McgCap::for_guest(0x0100_0100, 32, 33, false),
            Err(McaError::BankCount { banks: 33, max: 32 })
        );
    }

    #[test]
    fn vendor_strings() {
        // "GenuineIntel", four bytes per register, in EBX, EDX, ECX order.
        assert_eq!(
            CpuVendor::from_cpuid_vendor(0x756e_6547, 0x4965_6e69, 0x6c65_746e),
            Some(CpuVendor::Intel)
        );
        // "AuthenticAMD": EBX "Auth", EDX "enti", ECX "cAMD".
        assert_eq!(
            CpuVendor::from_cpuid_vendor(0x6874_7541, 0x6974_6e65, 0x444d_4163),
            Some(CpuVendor::Amd)
        );
        assert_eq!(CpuVendor::from_cpuid_vendor(0, 0, 0), None);
    }
}
