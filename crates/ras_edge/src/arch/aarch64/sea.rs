// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! Synchronous external aborts (SEA) on arm64, independent of the
//! hypervisor: what a `KVM_EXIT_ARM_SEA` says, which abort a guest must
//! take after it consumed poisoned memory, and how that abort is entered
//! when the VMM writes the registers itself.
//!
//! # The exit
//! Linux 6.19 forwards an SEA that host APEI did not claim to userspace
//! (`KVM_EXIT_ARM_SEA`, `include/uapi/linux/kvm.h`):
//! `{ flags, esr, gva, gpa }`, `gva` valid when `ESR.FnV == 0`, `gpa` valid
//! with `KVM_EXIT_ARM_SEA_FLAG_GPA_VALID`, `esr` sanitized to EC, IL, FnV,
//! EA, CM, WnR, FSC (and SET). [`SeaExit::new`] validates those fields.
//!
//! # The abort to inject: one rule for every path
//! [`SeaAbort`]: the exception class of the access when the exit says it
//! (an instruction fetch gets an instruction abort), a data abort
//! otherwise (the `SIGBUS` path and operator drills do not know it, as
//! QEMU always does); the fault address when the exit gives it, the one of
//! the vCPU's last exit when that exit was this very abort (the `SIGBUS`
//! path: KVM faulted on the poisoned page just before `KVM_RUN` returned),
//! and "FAR not valid" (`ESR.FnV = 1`) otherwise, never a stale one.
//! [`injection_method`] then picks the cheapest way that delivers exactly
//! that: KVM's `ext_dabt_pending` (one ioctl; KVM builds ESR with FSC 0x10
//! and takes FAR from the last exit) for a data abort whose address is the
//! last exit's, register-level exception entry ([`ExceptionEntry`], ARM
//! ARM D1.3 "Exception entry") for everything else.

use std::fmt;

use thiserror::Error;
use vm_memory::GuestAddress;

/// `KVM_EXIT_ARM_SEA_FLAG_GPA_VALID`: `gpa` is valid.
pub const SEA_FLAG_GPA_VALID: u64 = 1 << 0;

/// ESR_ELx.EC: instruction abort from a lower EL (ARM ARM D24.2.40).
pub const EC_IABT_LOW: u8 = 0x20;
/// ESR_ELx.EC: instruction abort taken without a change in EL.
pub const EC_IABT_CUR: u8 = 0x21;
/// ESR_ELx.EC: data abort from a lower EL.
pub const EC_DABT_LOW: u8 = 0x24;
/// ESR_ELx.EC: data abort taken without a change in EL.
pub const EC_DABT_CUR: u8 = 0x25;
/// DFSC/IFSC: synchronous external abort, not on a translation table walk.
pub const FSC_SEA: u8 = 0x10;
/// ESR_ELx.IL: 32-bit instruction.
pub const ESR_IL: u64 = 1 << 25;
/// ESR_ELx.ISS.FnV: FAR not valid (instruction and data aborts).
pub const ESR_FNV: u64 = 1 << 10;

// PSTATE / SPSR_EL1 bits (AArch64 view, ARM ARM C5.2.19 "SPSR_EL1").
/// N, Z, C, V condition flags.
pub const PSTATE_NZCV: u64 = 0xf << 28;
/// Tag check override (FEAT_MTE).
pub const PSTATE_TCO: u64 = 1 << 25;
/// Data independent timing (FEAT_DIT).
pub const PSTATE_DIT: u64 = 1 << 24;
/// User access override (FEAT_UAO).
pub const PSTATE_UAO: u64 = 1 << 23;
/// Privileged access never (FEAT_PAN).
pub const PSTATE_PAN: u64 = 1 << 22;
/// Software step.
pub const PSTATE_SS: u64 = 1 << 21;
/// Illegal execution state.
pub const PSTATE_IL: u64 = 1 << 20;
/// Speculative store bypass safe (FEAT_SSBS).
pub const PSTATE_SSBS: u64 = 1 << 12;
/// D, A, I, F exception masks.
pub const PSTATE_DAIF: u64 = 0xf << 6;
/// M\[4\]: execution state is AArch32.
pub const PSTATE_NRW: u64 = 1 << 4;
/// M\[3:0\] mask.
pub const PSTATE_MODE_MASK: u64 = 0xf;
/// M\[3:0\] = EL0t.
pub const PSTATE_MODE_EL0T: u64 = 0b0000;
/// M\[3:0\] = EL1t (SP_EL0 selected).
pub const PSTATE_MODE_EL1T: u64 = 0b0100;
/// M\[3:0\] = EL1h (SP_EL1 selected).
pub const PSTATE_MODE_EL1H: u64 = 0b0101;
/// AArch32 M\[4:0\] = User.
pub const PSTATE_MODE_A32_USR: u64 = 0b1_0000;
/// SCTLR_EL1.SPAN: 0 = set PSTATE.PAN on exception entry to EL1.
pub const SCTLR_EL1_SPAN: u64 = 1 << 23;
/// SCTLR_EL1.DSSBS: PSTATE.SSBS value on exception entry.
pub const SCTLR_EL1_DSSBS: u64 = 1 << 44;

/// Vector offset: synchronous exception, current EL with SP_EL0.
pub const VECTOR_CUR_SP0: u64 = 0x000;
/// Vector offset: synchronous exception, current EL with SP_ELx.
pub const VECTOR_CUR_SPX: u64 = 0x200;
/// Vector offset: synchronous exception, lower EL using AArch64.
pub const VECTOR_LOWER_A64: u64 = 0x400;
/// Vector offset: synchronous exception, lower EL using AArch32.
pub const VECTOR_LOWER_A32: u64 = 0x600;

/// Errors of this module.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum SeaError {
    /// KVM only defines `KVM_EXIT_ARM_SEA_FLAG_GPA_VALID`.
    #[error("Unknown KVM_EXIT_ARM_SEA flags {0:#x}")]
    UnknownFlags(u64),
    /// KVM only forwards instruction and data aborts.
    #[error("ESR {esr:#x}: exception class {ec:#x} is not an instruction or data abort")]
    NotAnAbort {
        /// ESR.EC.
        ec: u8,
        /// Raw ESR.
        esr: u64,
    },
    /// KVM only forwards synchronous external aborts.
    #[error("ESR {esr:#x}: fault status code {fsc:#x} is not a synchronous external abort")]
    NotExternalAbort {
        /// DFSC/IFSC.
        fsc: u8,
        /// Raw ESR.
        esr: u64,
    },
    /// The vCPU runs in a mode this emulation does not target (EL2 of a
    /// nested guest hypervisor, AArch32 EL1, reserved encodings).
    #[error("Cannot enter an abort from PSTATE {0:#x} (not EL0/EL1 AArch64 or AArch32 User)")]
    UnsupportedMode(u64),
}

/// A typed view of an ESR_ELx value of an instruction or data abort (ARM
/// ARM D24.2.40, ISS encodings for EC 0x20/0x21 and 0x24/0x25).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Esr(pub u64);

impl Esr {
    /// EC, bits \[31:26\].
    pub fn ec(self) -> u8 {
        ((self.0 >> 26) & 0x3f) as u8
    }

    /// IL, bit 25.
    pub fn il(self) -> bool {
        self.0 & ESR_IL != 0
    }

    /// FnV, bit 10: FAR not valid.
    pub fn fnv(self) -> bool {
        self.0 & ESR_FNV != 0
    }

    /// WnR, bit 6 (data aborts only, else false).
    pub fn wnr(self) -> bool {
        matches!(self.ec(), EC_DABT_LOW | EC_DABT_CUR) && (self.0 >> 6) & 1 == 1
    }

    /// DFSC/IFSC, bits \[5:0\].
    pub fn fsc(self) -> u8 {
        (self.0 & 0x3f) as u8
    }
}

/// Whether a DFSC/IFSC is one of the synchronous external aborts KVM
/// forwards (`kvm_vcpu_abt_issea()`): 0x10 SEA; 0x12..=0x17 SEA on a
/// translation table walk; 0x18 parity/ECC; 0x1b..=0x1f parity/ECC on a
/// walk (ARM ARM D24.2.40, DFSC).
pub fn is_external_abort_fsc(fsc: u8) -> bool {
    matches!(fsc, 0x10 | 0x12..=0x18 | 0x1b..=0x1f)
}

/// Instruction fetch or data access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AbortClass {
    /// Data abort (EC 0x24/0x25).
    Data,
    /// Instruction abort (EC 0x20/0x21).
    Instruction,
}

/// A validated `KVM_EXIT_ARM_SEA`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeaExit {
    /// The sanitized ESR_EL2 of the abort.
    pub esr: Esr,
    /// Fetch or data access.
    pub class: AbortClass,
    /// Faulting guest virtual address, when `ESR.FnV == 0`.
    pub gva: Option<u64>,
    /// Faulting guest physical address, when the GPA-valid flag is set.
    pub gpa: Option<GuestAddress>,
}

impl SeaExit {
    /// Validates the four fields of the exit (as laid out in `kvm_run`).
    pub fn new(flags: u64, esr: u64, gva: u64, gpa: u64) -> Result<Self, SeaError> {
        if flags & !SEA_FLAG_GPA_VALID != 0 {
            return Err(SeaError::UnknownFlags(flags));
        }
        let e = Esr(esr);
        let class = match e.ec() {
            EC_IABT_LOW | EC_IABT_CUR => AbortClass::Instruction,
            EC_DABT_LOW | EC_DABT_CUR => AbortClass::Data,
            ec => return Err(SeaError::NotAnAbort { ec, esr }),
        };
        if !is_external_abort_fsc(e.fsc()) {
            return Err(SeaError::NotExternalAbort { fsc: e.fsc(), esr });
        }
        Ok(Self {
            esr: e,
            class,
            gva: (!e.fnv()).then_some(gva),
            gpa: (flags & SEA_FLAG_GPA_VALID != 0).then_some(GuestAddress(gpa)),
        })
    }
}

/// The fault address an injected abort reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultAddress {
    /// This address (FnV = 0).
    Given(u64),
    /// The address of the vCPU's last exit, which was this very abort:
    /// known to the hypervisor, not to the VMM.
    OfLastExit,
    /// Not known: `ESR.FnV = 1`.
    NotValid,
}

/// The synchronous external abort a vCPU must take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeaAbort {
    /// Data or instruction abort.
    pub class: AbortClass,
    /// Its fault address.
    pub far: FaultAddress,
}

impl SeaAbort {
    /// The abort that reflects a `KVM_EXIT_ARM_SEA` back into the guest:
    /// same class, its address when valid.
    pub fn for_exit(exit: &SeaExit) -> Self {
        Self {
            class: exit.class,
            far: exit.gva.map_or(FaultAddress::NotValid, FaultAddress::Given),
        }
    }

    /// The abort for a `SIGBUS` `BUS_MCEERR_AR` taken in `KVM_RUN`: the
    /// host does not say whether it was a fetch (a data abort, as QEMU),
    /// but its last exit was the stage-2 fault on the poisoned page.
    pub fn for_sigbus() -> Self {
        Self {
            class: AbortClass::Data,
            far: FaultAddress::OfLastExit,
        }
    }

    /// The abort of an operator's drill: a data abort with no address
    /// (the vCPU's last exit was unrelated).
    pub fn for_drill() -> Self {
        Self {
            class: AbortClass::Data,
            far: FaultAddress::NotValid,
        }
    }
}

/// How the VMM delivers a [`SeaAbort`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InjectionMethod {
    /// The hypervisor's "external data abort pending" (KVM:
    /// `KVM_SET_VCPU_EVENTS` with `ext_dabt_pending`): FAR of the last exit.
    VcpuEvents,
    /// Register-level exception entry ([`ExceptionEntry::compute`]).
    Registers {
        /// Data or instruction abort.
        class: AbortClass,
        /// FAR_EL1 to set, `None` for FnV = 1.
        far: Option<u64>,
    },
}

/// Chooses how to deliver `abort` (pure). `vcpu_events`: the hypervisor
/// can inject an external data abort itself (KVM:
/// `KVM_CAP_ARM_INJECT_EXT_DABT`). The hypervisor's data abort reports
/// the last exit's address, so it is used only when that is the address
/// to report.
pub fn injection_method(abort: &SeaAbort, vcpu_events: bool) -> InjectionMethod {
    match (abort.class, abort.far, vcpu_events) {
        (AbortClass::Data, FaultAddress::OfLastExit, true)
        | (AbortClass::Data, FaultAddress::Given(_), true) => InjectionMethod::VcpuEvents,
        (class, FaultAddress::Given(far), _) => InjectionMethod::Registers {
            class,
            far: Some(far),
        },
        (class, FaultAddress::OfLastExit | FaultAddress::NotValid, _) => {
            InjectionMethod::Registers { class, far: None }
        }
    }
}

/// What a vCPU was made to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Injected {
    /// How.
    pub method: InjectionMethod,
    /// The registers written, with [`InjectionMethod::Registers`].
    pub writes: Option<RegWrites>,
}

impl fmt::Display for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.method, self.writes) {
            (InjectionMethod::VcpuEvents, _) => f.write_str("data far=last-exit via=vcpu-events"),
            (InjectionMethod::Registers { class, far }, writes) => {
                let class = match class {
                    AbortClass::Data => "data",
                    AbortClass::Instruction => "instruction",
                };
                match far {
                    Some(far) => write!(f, "{class} far={far:#x}")?,
                    None => write!(f, "{class} far=not-valid")?,
                }
                if let Some(w) = writes {
                    write!(f, " esr={:#x} vector={:#x}", w.esr_el1, w.pc)?;
                }
                f.write_str(" via=registers")
            }
        }
    }
}

/// Whether a vCPU with this PSTATE runs user code (EL0, AArch64 or
/// AArch32): where Linux recovers from an SEA by killing the process.
pub fn is_user_mode(pstate: u64) -> bool {
    if pstate & PSTATE_NRW != 0 {
        pstate & 0x1f == PSTATE_MODE_A32_USR
    } else {
        pstate & PSTATE_MODE_MASK == PSTATE_MODE_EL0T
    }
}

/// The registers the exception entry reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuState {
    /// PC of the instruction that faulted (not advanced).
    pub pc: u64,
    /// PSTATE (in SPSR format).
    pub pstate: u64,
    /// VBAR_EL1.
    pub vbar_el1: u64,
    /// SCTLR_EL1 (SPAN and DSSBS are used).
    pub sctlr_el1: u64,
    /// The guest has FEAT_MTE (PSTATE.TCO is then set on entry).
    pub mte: bool,
}

/// The registers the exception entry writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegWrites {
    /// Syndrome.
    pub esr_el1: u64,
    /// Fault address; `None` with FnV (FAR_EL1 is then UNKNOWN and left
    /// as it is).
    pub far_el1: Option<u64>,
    /// Return address: the faulting instruction.
    pub elr_el1: u64,
    /// Saved PSTATE.
    pub spsr_el1: u64,
    /// New PSTATE: EL1h, DAIF masked.
    pub pstate: u64,
    /// New PC: VBAR_EL1 + vector offset.
    pub pc: u64,
}

/// The exception level the vCPU is at, as far as the entry cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FromMode {
    El0A64,
    El0A32,
    El1t,
    El1h,
}

fn from_mode(pstate: u64) -> Option<FromMode> {
    if pstate & PSTATE_NRW != 0 {
        // Below an AArch64 EL1 only AArch32 User mode can run.
        return (pstate & 0x1f == PSTATE_MODE_A32_USR).then_some(FromMode::El0A32);
    }
    match pstate & PSTATE_MODE_MASK {
        PSTATE_MODE_EL0T => Some(FromMode::El0A64),
        PSTATE_MODE_EL1T => Some(FromMode::El1t),
        PSTATE_MODE_EL1H => Some(FromMode::El1h),
        _ => None,
    }
}

/// Synchronous external abort entry to EL1 (pure).
pub struct ExceptionEntry;

impl ExceptionEntry {
    /// The ESR_EL1 of a synchronous external abort: EC by class and EL,
    /// IL = 1, FnV when there is no address, FSC 0x10 (ISS otherwise 0).
    pub fn esr(class: AbortClass, from_lower_el: bool, far_valid: bool) -> u64 {
        let ec = match (class, from_lower_el) {
            (AbortClass::Data, true) => EC_DABT_LOW,
            (AbortClass::Data, false) => EC_DABT_CUR,
            (AbortClass::Instruction, true) => EC_IABT_LOW,
            (AbortClass::Instruction, false) => EC_IABT_CUR,
        };
        let fnv = if far_valid { 0 } else { ESR_FNV };
        (u64::from(ec) << 26) | ESR_IL | fnv | u64::from(FSC_SEA)
    }

    /// The register state after taking a synchronous external abort to
    /// EL1 from `current` (ARM ARM D1.3.1 "Exception entry", D1.10
    /// "Exception vectors"):
    ///
    /// - ESR_EL1: [`Self::esr`]; FAR_EL1 = `far` (FnV when `None`);
    /// - ELR_EL1 = PC of the faulting instruction; SPSR_EL1 = PSTATE;
    /// - PC = VBAR_EL1\[63:11\] + 0x0 (from EL1t), 0x200 (EL1h), 0x400 (EL0
    ///   AArch64), 0x600 (EL0 AArch32);
    /// - PSTATE: EL1h, AArch64, D/A/I/F set; NZCV, DIT kept; PAN kept and
    ///   set if SCTLR_EL1.SPAN == 0; SSBS = SCTLR_EL1.DSSBS; TCO set with
    ///   MTE; SS, IL, UAO, BTYPE and everything else cleared.
    pub fn compute(
        current: &VcpuState,
        class: AbortClass,
        far: Option<u64>,
    ) -> Result<RegWrites, SeaError> {
        let mode = from_mode(current.pstate).ok_or(SeaError::UnsupportedMode(current.pstate))?;
        let (offset, lower) = match mode {
            FromMode::El1t => (VECTOR_CUR_SP0, false),
            FromMode::El1h => (VECTOR_CUR_SPX, false),
            FromMode::El0A64 => (VECTOR_LOWER_A64, true),
            FromMode::El0A32 => (VECTOR_LOWER_A32, true),
        };
        let old = current.pstate;
        let mut new = PSTATE_MODE_EL1H | PSTATE_DAIF;
        if mode == FromMode::El0A32 {
            // AArch32 CPSR: N, Z, C, V at the same place; its DIT and PAN
            // bits are elsewhere and do not carry over.
            new |= old & PSTATE_NZCV;
        } else {
            new |= old & (PSTATE_NZCV | PSTATE_DIT | PSTATE_PAN);
        }
        if current.sctlr_el1 & SCTLR_EL1_SPAN == 0 {
            new |= PSTATE_PAN;
        }
        if current.sctlr_el1 & SCTLR_EL1_DSSBS != 0 {
            new |= PSTATE_SSBS;
        }
        if current.mte {
            new |= PSTATE_TCO;
        }
        Ok(RegWrites {
            esr_el1: Self::esr(class, lower, far.is_some()),
            far_el1: far,
            elr_el1: current.pc,
            spsr_el1: old,
            pstate: new,
            pc: (current.vbar_el1 & !0x7ff) + offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_fields_are_validated() {
        // The kernel selftest's data abort: DABT_LOW, IL, FSC 0x10.
        let exit = SeaExit::new(1, 0x9200_0010, 0xffff_0000_1234_5678, 0x8012_3678).unwrap();
        assert_eq!(exit.class, AbortClass::Data);
        assert_eq!(exit.gva, Some(0xffff_0000_1234_5678));
        assert_eq!(exit.gpa, Some(GuestAddress(0x8012_3678)));
        assert!(exit.esr.il() && !exit.esr.wnr());
        // FnV set: no gva; flag clear: no gpa.
        let exit = SeaExit::new(0, 0x8200_0410, 0xdead, 0xbeef).unwrap();
        assert_eq!(exit.class, AbortClass::Instruction);
        assert_eq!((exit.gva, exit.gpa), (None, None));
        // A write (WnR) data abort taken at the same EL.
        assert!(SeaExit::new(0, 0x9600_0050, 0, 0).unwrap().esr.wnr());
        assert_eq!(
            SeaExit::new(2, 0x9200_0010, 0, 0),
            Err(SeaError::UnknownFlags(2))
        );
        assert_eq!(
            SeaExit::new(0, 0x5600_0000, 0, 0),
            Err(SeaError::NotAnAbort {
                ec: 0x15,
                esr: 0x5600_0000
            })
        );
        // A translation fault (0x07) is not an external abort.
        assert_eq!(
            SeaExit::new(0, 0x9200_0007, 0, 0),
            Err(SeaError::NotExternalAbort {
                fsc: 0x07,
                esr: 0x9200_0007
            })
        );
    }

    #[test]
    fn external_abort_codes_are_the_kernels() {
        // kvm_vcpu_abt_issea(): ESR_ELx_FSC_EXTABT, ESR_ELx_FSC_SEA_TTW(-1..3)
        // (0x13..0x17 and 0x12 for level -2), ESR_ELx_FSC_SECC,
        // ESR_ELx_FSC_SECC_TTW(-1..3) (0x1b, 0x1c..0x1f).
        let issea: Vec<u8> = (0u8..64).filter(|f| is_external_abort_fsc(*f)).collect();
        assert_eq!(
            issea,
            [
                0x10, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f
            ]
        );
    }

    #[test]
    fn esr_values_match_kvm_and_qemu() {
        use AbortClass::{Data, Instruction};
        // (class, from a lower EL, FAR valid, ESR_EL1).
        let known = [
            // KVM's ext_dabt from EL0 / EL1 (seen in the lab: 0x96000010).
            (Data, true, true, 0x9200_0010),
            (Data, false, true, 0x9600_0010),
            // QEMU's syn_data_abort_no_iss(same_el, FnV=1, fsc=0x10).
            (Data, true, false, 0x9200_0410),
            (Data, false, false, 0x9600_0410),
            // EC 0x20/0x21 << 26 | IL | FSC (| FnV).
            (Instruction, true, true, 0x8200_0010),
            (Instruction, false, true, 0x8600_0010),
            (Instruction, true, false, 0x8200_0410),
            (Instruction, false, false, 0x8600_0410),
        ];
        for (class, lower, far_valid, esr) in known {
            assert_eq!(
                ExceptionEntry::esr(class, lower, far_valid),
                esr,
                "{class:?} lower={lower} far_valid={far_valid}"
            );
        }
    }

    #[test]
    fn abort_for_each_path() {
        let iabt = SeaExit::new(1, 0x8200_0010, 0x4000, 0x8000_4000).unwrap();
        assert_eq!(
            SeaAbort::for_exit(&iabt),
            SeaAbort {
                class: AbortClass::Instruction,
                far: FaultAddress::Given(0x4000)
            }
        );
        let no_far = SeaExit::new(0, 0x9200_0410, 0x4000, 0).unwrap();
        assert_eq!(
            SeaAbort::for_exit(&no_far),
            SeaAbort {
                class: AbortClass::Data,
                far: FaultAddress::NotValid
            }
        );
        assert_eq!(SeaAbort::for_sigbus().far, FaultAddress::OfLastExit);
        assert_eq!(SeaAbort::for_drill().far, FaultAddress::NotValid);
        assert_eq!(SeaAbort::for_drill().class, AbortClass::Data);
    }

    #[test]
    fn injection_method_table() {
        use AbortClass::{Data, Instruction};
        use FaultAddress::{Given, NotValid, OfLastExit};
        let regs = |class, far| InjectionMethod::Registers { class, far };
        // (class, far, vcpu events available) -> method, every combination.
        let table = [
            (Data, OfLastExit, true, InjectionMethod::VcpuEvents),
            (Data, Given(0x10), true, InjectionMethod::VcpuEvents),
            (Data, NotValid, true, regs(Data, None)),
            (Data, OfLastExit, false, regs(Data, None)),
            (Data, Given(0x10), false, regs(Data, Some(0x10))),
            (Data, NotValid, false, regs(Data, None)),
            (Instruction, OfLastExit, true, regs(Instruction, None)),
            (
                Instruction,
                Given(0x10),
                true,
                regs(Instruction, Some(0x10)),
            ),
            (Instruction, NotValid, true, regs(Instruction, None)),
            (Instruction, OfLastExit, false, regs(Instruction, None)),
            (
                Instruction,
                Given(0x10),
                false,
                regs(Instruction, Some(0x10)),
            ),
            (Instruction, NotValid, false, regs(Instruction, None)),
        ];
        for (class, far, events, want) in table {
            assert_eq!(
                injection_method(&SeaAbort { class, far }, events),
                want,
                "{class:?} {far:?} {events}"
            );
        }
    }

    #[test]
    fn user_mode_is_el0_only() {
        assert!(is_user_mode(0x0)); // EL0t
        assert!(is_user_mode(0x6000_0000)); // EL0t with flags
        assert!(is_user_mode(0x10)); // AArch32 User
        for kernel in [0x4, 0x5, 0x3c5, 0x8, 0x9, 0x13, 0x1f] {
            assert!(!is_user_mode(kernel), "{kernel:#x}");
        }
    }

    const VBAR: u64 = 0xffff_8000_1000_0800;

    fn state(pstate: u64) -> VcpuState {
        VcpuState {
            pc: 0xffff_8000_0000_1234,
            pstate,
            vbar_el1: VBAR,
            // SPAN = 1: PAN unchanged; DSSBS = 0.
            sctlr_el1: SCTLR_EL1_SPAN,
            mte: false,
        }
    }

    #[test]
    fn entry_for_every_mode_class_and_address() {
        // (PSTATE mode bits, PC offset from VBAR, ESR EC for data / instruction)
        let modes = [
            (0b0000, 0x400, 0x24, 0x20),   // EL0t: lower EL, AArch64
            (0b0100, 0x000, 0x25, 0x21),   // EL1t: current EL, SP_EL0
            (0b0101, 0x200, 0x25, 0x21),   // EL1h: current EL, SP_EL1
            (0b1_0000, 0x600, 0x24, 0x20), // AArch32 User: lower EL, AArch32
        ];
        for (mode, offset, ec_data, ec_inst) in modes {
            for (class, ec) in [
                (AbortClass::Data, ec_data),
                (AbortClass::Instruction, ec_inst),
            ] {
                for far in [None, Some(0x1234_5678)] {
                    let cur = state(mode | 0x6000_0000); // Z and C set
                    let w = ExceptionEntry::compute(&cur, class, far).unwrap();
                    assert_eq!(w.pc, 0xffff_8000_1000_0800 + offset, "{mode:#x}");
                    assert_eq!(w.elr_el1, 0xffff_8000_0000_1234);
                    assert_eq!(w.spsr_el1, mode | 0x6000_0000);
                    // EL1h with D, A, I, F masked and Z, C kept.
                    assert_eq!(w.pstate, 0x6000_03c5);
                    assert_eq!(w.far_el1, far);
                    let fnv = if far.is_some() { 0 } else { 0x400 };
                    assert_eq!(w.esr_el1, (ec << 26) | 0x0200_0000 | fnv | 0x10);
                }
            }
        }
    }

    #[test]
    fn entry_pstate_bits() {
        // Everything set in the old PSTATE, at EL1h.
        let old = PSTATE_NZCV
            | PSTATE_TCO
            | PSTATE_DIT
            | PSTATE_UAO
            | PSTATE_PAN
            | PSTATE_SS
            | PSTATE_IL
            | PSTATE_SSBS
            | (0b11 << 10)
            | PSTATE_MODE_EL1H;
        let mut cur = state(old);
        let w = ExceptionEntry::compute(&cur, AbortClass::Data, None).unwrap();
        // NZCV, DIT, PAN kept; DAIF set; EL1h; everything else cleared.
        assert_eq!(w.pstate, 0xf000_0000 | (1 << 24) | (1 << 22) | 0x3c5);
        assert_eq!(w.spsr_el1, old);
        // SPAN = 0 sets PAN; DSSBS sets SSBS; MTE sets TCO.
        cur.pstate = PSTATE_MODE_EL0T;
        cur.sctlr_el1 = SCTLR_EL1_DSSBS;
        cur.mte = true;
        let w = ExceptionEntry::compute(&cur, AbortClass::Data, None).unwrap();
        assert_eq!(w.pstate, (1 << 22) | (1 << 12) | (1 << 25) | 0x3c5);
        // VBAR bits [10:0] are ignored.
        cur.pstate = PSTATE_DAIF | PSTATE_MODE_EL1T;
        cur.vbar_el1 = 0x8000_07ff;
        let w = ExceptionEntry::compute(&cur, AbortClass::Instruction, Some(0x10)).unwrap();
        assert_eq!(w.pc, 0x8000_0000);
    }

    #[test]
    fn entry_refuses_el2_and_aarch32_kernel_modes() {
        for pstate in [0b1000, 0b1001, 0b0110, 0b1_0011, 0b1_1111] {
            assert_eq!(
                ExceptionEntry::compute(&state(pstate), AbortClass::Data, None),
                Err(SeaError::UnsupportedMode(pstate))
            );
        }
    }

    #[test]
    fn injected_reads_well() {
        let i = Injected {
            method: InjectionMethod::VcpuEvents,
            writes: None,
        };
        assert_eq!(i.to_string(), "data far=last-exit via=vcpu-events");
        let i = Injected {
            method: InjectionMethod::Registers {
                class: AbortClass::Instruction,
                far: None,
            },
            writes: Some(RegWrites {
                esr_el1: 0x8200_0410,
                pc: 0x8000_0400,
                ..Default::default()
            }),
        };
        assert_eq!(
            i.to_string(),
            "instruction far=not-valid esr=0x82000410 vector=0x80000400 via=registers"
        );
    }
}
