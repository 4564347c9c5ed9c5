// SPDX-License-Identifier: Apache-2.0
//! Injecting a synchronous external abort into an arm64 guest, after it
//! consumed poisoned memory.
//!
//! Two ways, chosen by [`plan`]:
//!
//! - [`InjectMethod::ExtDabt`]: `KVM_SET_VCPU_EVENTS` with
//!   `exception.ext_dabt_pending = 1` (`Documentation/virt/kvm/api.rst`,
//!   4.32, needs `KVM_CAP_VCPU_EVENTS` and `KVM_CAP_ARM_INJECT_EXT_DABT`).
//!   KVM builds the ESR itself (EC 0x24/0x25, IL, FSC 0x10) and uses FAR_EL2
//!   of the last exit as FAR: userspace chooses neither, and there is no
//!   instruction-abort form in mainline.
//! - [`InjectMethod::Registers`]: emulate the exception entry on the
//!   registers (`KVM_GET_ONE_REG`/`KVM_SET_ONE_REG`), computed by the pure
//!   [`ExceptionEntry::compute`] following ARM ARM (DDI 0487) D1.3
//!   "Exception entry" / D1.10 "Exception vectors" and the ESR_EL1
//!   encoding (D24.2.40). Used for instruction aborts (`KVM_EXIT_ARM_SEA`
//!   with EC 0x20/0x21), for a chosen FAR/FnV, or without the caps above.
//!
//! On the SIGBUS path the host does not say whether the access was a fetch
//! or a load/store ([`AbortKind::Unknown`]): a data abort is injected, as
//! QEMU always does. With `KVM_EXIT_ARM_SEA` the ESR tells, and an
//! instruction abort is emulated when it was a fetch.

use ras::report::AbortKind;
use thiserror::Error;

use crate::caps::RasCaps;
use crate::sea_exit::{EC_DABT_CUR, EC_DABT_LOW, EC_IABT_CUR, EC_IABT_LOW, FSC_SEA};

/// Errors of this module.
#[derive(Debug, Error)]
pub enum AbortInjectError {
    /// The vCPU runs in a mode this emulation does not target (EL2 of a
    /// nested guest hypervisor, AArch32 EL1, reserved encodings).
    #[error(
        "Cannot emulate an abort from PSTATE {pstate:#x} (mode not EL0/EL1 AArch64 or EL0 AArch32)"
    )]
    UnsupportedMode {
        /// PSTATE as read.
        pstate: u64,
    },
    /// `KVM_GET_ONE_REG` failed.
    #[error("KVM_GET_ONE_REG({reg:#x}) failed: {source}")]
    GetReg {
        /// Register id.
        reg: u64,
        /// errno.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// `KVM_SET_ONE_REG` failed.
    #[error("KVM_SET_ONE_REG({reg:#x}) failed: {source}")]
    SetReg {
        /// Register id.
        reg: u64,
        /// errno.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// `KVM_SET_VCPU_EVENTS` failed.
    #[error("KVM_SET_VCPU_EVENTS (ext_dabt_pending) failed: {0}")]
    SetVcpuEvents(#[source] kvm_ioctls::Error),
}

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

/// ESR_ELx.IL.
pub const ESR_IL: u64 = 1 << 25;
/// ESR_ELx.ISS.FnV (instruction and data aborts).
pub const ESR_FNV: u64 = 1 << 10;

/// The registers the exception entry reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuState {
    /// PC of the instruction that faulted (KVM has not advanced it).
    pub pc: u64,
    /// PSTATE (the `pstate` core register, in SPSR format).
    pub pstate: u64,
    /// VBAR_EL1.
    pub vbar_el1: u64,
    /// SCTLR_EL1 (SPAN and DSSBS are used).
    pub sctlr_el1: u64,
    /// The guest has FEAT_MTE (then PSTATE.TCO is set on entry). Cloud
    /// Hypervisor does not enable MTE; the adapter reads it as false.
    pub mte: bool,
}

/// The registers the exception entry writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegWrites {
    /// Syndrome.
    pub esr_el1: u64,
    /// Fault address; `None` when FnV is set (FAR_EL1 is then UNKNOWN and
    /// left unchanged).
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

/// Which abort to emulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Data abort (EC 0x24/0x25).
    Data,
    /// Instruction abort (EC 0x20/0x21).
    Instruction,
}

impl From<AbortKind> for EntryKind {
    /// An unknown kind (the SIGBUS path) is injected as a data abort.
    fn from(kind: AbortKind) -> Self {
        match kind {
            AbortKind::Instruction => Self::Instruction,
            AbortKind::Data | AbortKind::Unknown => Self::Data,
        }
    }
}

/// The exception level the vCPU was at, as far as the entry cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FromMode {
    El0A64,
    El0A32,
    El1t,
    El1h,
}

fn from_mode(pstate: u64) -> Option<FromMode> {
    if pstate & PSTATE_NRW != 0 {
        // AArch32: only User mode (M[4:0] = 0b10000) can sit below an
        // AArch64 EL1.
        return (pstate & 0x1f == 0b1_0000).then_some(FromMode::El0A32);
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
    /// The ESR_EL1 of a synchronous external abort (FSC 0x10, IL = 1, WnR
    /// and EA 0, SET 0), with FnV set when there is no FAR.
    pub fn esr(kind: EntryKind, from_lower_el: bool, far_valid: bool) -> u64 {
        let ec = match (kind, from_lower_el) {
            (EntryKind::Data, true) => EC_DABT_LOW,
            (EntryKind::Data, false) => EC_DABT_CUR,
            (EntryKind::Instruction, true) => EC_IABT_LOW,
            (EntryKind::Instruction, false) => EC_IABT_CUR,
        };
        let fnv = if far_valid { 0 } else { ESR_FNV };
        (u64::from(ec) << 26) | ESR_IL | fnv | u64::from(FSC_SEA)
    }

    /// The register state after taking a synchronous external abort to
    /// EL1 from `current` (ARM ARM D1.3.1 "Exception entry"):
    ///
    /// - ESR_EL1: [`Self::esr`]; FAR_EL1 = `far` (FnV when `None`);
    /// - ELR_EL1 = PC of the faulting instruction; SPSR_EL1 = PSTATE;
    /// - PC = VBAR_EL1\[63:11\] + 0x0 (EL1t), 0x200 (EL1h), 0x400 (EL0
    ///   AArch64), 0x600 (EL0 AArch32);
    /// - PSTATE: EL1h, AArch64, D/A/I/F set; NZCV, DIT kept; PAN kept and
    ///   set if SCTLR_EL1.SPAN == 0; SSBS = SCTLR_EL1.DSSBS; TCO set with
    ///   MTE; SS, IL, UAO, BTYPE and everything else cleared.
    pub fn compute(
        current: &VcpuState,
        kind: EntryKind,
        far: Option<u64>,
    ) -> Result<RegWrites, AbortInjectError> {
        let mode = from_mode(current.pstate).ok_or(AbortInjectError::UnsupportedMode {
            pstate: current.pstate,
        })?;
        let (offset, lower) = match mode {
            FromMode::El1t => (VECTOR_CUR_SP0, false),
            FromMode::El1h => (VECTOR_CUR_SPX, false),
            FromMode::El0A64 => (VECTOR_LOWER_A64, true),
            FromMode::El0A32 => (VECTOR_LOWER_A32, true),
        };
        let old = current.pstate;
        let mut new = PSTATE_MODE_EL1H | PSTATE_DAIF;
        if mode == FromMode::El0A32 {
            // AArch32 CPSR: N, Z, C, V are at the same place; DIT is bit
            // 21 and PAN bit 22 in AArch32 views.
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
            esr_el1: Self::esr(kind, lower, far.is_some()),
            far_el1: far,
            elr_el1: current.pc,
            spsr_el1: old,
            pstate: new,
            pc: (current.vbar_el1 & !0x7ff) + offset,
        })
    }
}

/// How to inject the abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectMethod {
    /// `KVM_SET_VCPU_EVENTS` with `ext_dabt_pending` (FAR = FAR_EL2).
    ExtDabt,
    /// Emulated exception entry ([`ExceptionEntry::compute`]).
    Registers {
        /// Data or instruction abort.
        kind: EntryKind,
        /// FAR_EL1 to report (`None`: FnV).
        far: Option<u64>,
    },
}

/// Chooses how to inject an abort of `kind` (pure). A data abort (or an
/// unknown kind) goes through `ext_dabt_pending` when KVM supports it and
/// the caller does not need its own FAR; an instruction abort, or no KVM
/// support, is emulated on the registers.
pub fn plan(kind: AbortKind, far: Option<u64>, caps: &RasCaps, need_far: bool) -> InjectMethod {
    match EntryKind::from(kind) {
        EntryKind::Data if caps.can_inject_ext_dabt() && !need_far => InjectMethod::ExtDabt,
        kind => InjectMethod::Registers { kind, far },
    }
}

/// KVM register ids (`Documentation/virt/kvm/api.rst` 4.68
/// `KVM_SET_ONE_REG`, arm64 section; `arch/arm64/include/uapi/asm/kvm.h`).
pub mod reg_id {
    /// `KVM_REG_ARM64`.
    pub const KVM_REG_ARM64: u64 = 0x6000_0000_0000_0000;
    /// `KVM_REG_SIZE_U64`.
    pub const KVM_REG_SIZE_U64: u64 = 0x0030_0000_0000_0000;
    /// `KVM_REG_ARM_CORE` (0x0010 << `KVM_REG_ARM_COPROC_SHIFT`).
    pub const KVM_REG_ARM_CORE: u64 = 0x0010_0000;
    /// `KVM_REG_ARM64_SYSREG` (0x0013 << `KVM_REG_ARM_COPROC_SHIFT`).
    pub const KVM_REG_ARM64_SYSREG: u64 = 0x0013_0000;

    /// `KVM_REG_ARM_CORE_REG(name)` of a 64-bit field at `offset` bytes
    /// into `struct kvm_regs`.
    pub const fn core_reg(offset: u64) -> u64 {
        KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (offset / 4)
    }

    /// `ARM64_SYS_REG(op0, op1, crn, crm, op2)`.
    pub const fn sys_reg(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64) -> u64 {
        KVM_REG_ARM64
            | KVM_REG_SIZE_U64
            | KVM_REG_ARM64_SYSREG
            | ((op0 & 0x3) << 14)
            | ((op1 & 0x7) << 11)
            | ((crn & 0xf) << 7)
            | ((crm & 0xf) << 3)
            | (op2 & 0x7)
    }

    /// Offsets in `struct kvm_regs { struct user_pt_regs regs { u64
    /// regs[31]; u64 sp; u64 pc; u64 pstate; }; u64 sp_el1; u64 elr_el1;
    /// u64 spsr[KVM_NR_SPSR]; ... }`.
    pub const OFFSET_PC: u64 = 32 * 8;
    /// See [`OFFSET_PC`].
    pub const OFFSET_PSTATE: u64 = 33 * 8;
    /// See [`OFFSET_PC`].
    pub const OFFSET_SP_EL1: u64 = 34 * 8;
    /// See [`OFFSET_PC`].
    pub const OFFSET_ELR_EL1: u64 = 35 * 8;
    /// `spsr[KVM_SPSR_EL1]` (`KVM_SPSR_EL1` = 0). See [`OFFSET_PC`].
    pub const OFFSET_SPSR_EL1: u64 = 36 * 8;

    /// PC.
    pub const PC: u64 = core_reg(OFFSET_PC);
    /// PSTATE.
    pub const PSTATE: u64 = core_reg(OFFSET_PSTATE);
    /// SP_EL1.
    pub const SP_EL1: u64 = core_reg(OFFSET_SP_EL1);
    /// ELR_EL1.
    pub const ELR_EL1: u64 = core_reg(OFFSET_ELR_EL1);
    /// SPSR_EL1.
    pub const SPSR_EL1: u64 = core_reg(OFFSET_SPSR_EL1);
    /// SCTLR_EL1 (op0 3, op1 0, CRn 1, CRm 0, op2 0).
    pub const SCTLR_EL1: u64 = sys_reg(3, 0, 1, 0, 0);
    /// ESR_EL1 (3, 0, 5, 2, 0).
    pub const ESR_EL1: u64 = sys_reg(3, 0, 5, 2, 0);
    /// FAR_EL1 (3, 0, 6, 0, 0).
    pub const FAR_EL1: u64 = sys_reg(3, 0, 6, 0, 0);
    /// VBAR_EL1 (3, 0, 12, 0, 0).
    pub const VBAR_EL1: u64 = sys_reg(3, 0, 12, 0, 0);
}

#[cfg(target_arch = "aarch64")]
pub use self::kvm::*;

/// The KVM adapters (arm64 only).
#[cfg(target_arch = "aarch64")]
mod kvm {
    use kvm_bindings::kvm_vcpu_events;
    use kvm_ioctls::VcpuFd;

    use super::*;

    /// The `kvm_vcpu_events` that asks KVM to inject a synchronous external
    /// data abort (all other fields zero: KVM rejects non-zero padding).
    pub fn ext_dabt_events() -> kvm_vcpu_events {
        let mut events = kvm_vcpu_events::default();
        events.exception.ext_dabt_pending = 1;
        events
    }

    /// `KVM_SET_VCPU_EVENTS(ext_dabt_pending = 1)`: KVM injects a data abort
    /// (ESR 0x92000010 from EL0 / 0x96000010 from EL1, FAR = FAR_EL2 of the
    /// last exit) when the vCPU next runs. Call on the vCPU thread, between
    /// `KVM_RUN`s (after `EINTR` for a SIGBUS, after exit 41).
    pub fn inject_ext_dabt(vcpu: &VcpuFd) -> Result<(), AbortInjectError> {
        vcpu.set_vcpu_events(&ext_dabt_events())
            .map_err(AbortInjectError::SetVcpuEvents)
    }

    /// Reads one 64-bit register.
    pub fn get_reg(vcpu: &VcpuFd, reg: u64) -> Result<u64, AbortInjectError> {
        let mut buf = [0u8; 8];
        vcpu.get_one_reg(reg, &mut buf)
            .map_err(|source| AbortInjectError::GetReg { reg, source })?;
        Ok(u64::from_ne_bytes(buf))
    }

    /// Writes one 64-bit register.
    pub fn set_reg(vcpu: &VcpuFd, reg: u64, value: u64) -> Result<(), AbortInjectError> {
        vcpu.set_one_reg(reg, &value.to_ne_bytes())
            .map_err(|source| AbortInjectError::SetReg { reg, source })?;
        Ok(())
    }

    /// Reads what [`ExceptionEntry::compute`] needs (`mte` = false).
    pub fn read_vcpu_state(vcpu: &VcpuFd) -> Result<VcpuState, AbortInjectError> {
        Ok(VcpuState {
            pc: get_reg(vcpu, reg_id::PC)?,
            pstate: get_reg(vcpu, reg_id::PSTATE)?,
            vbar_el1: get_reg(vcpu, reg_id::VBAR_EL1)?,
            sctlr_el1: get_reg(vcpu, reg_id::SCTLR_EL1)?,
            mte: false,
        })
    }

    /// Writes the result of [`ExceptionEntry::compute`] (FAR_EL1 only when
    /// given; PC last).
    pub fn write_reg_writes(vcpu: &VcpuFd, w: &RegWrites) -> Result<(), AbortInjectError> {
        set_reg(vcpu, reg_id::ESR_EL1, w.esr_el1)?;
        if let Some(far) = w.far_el1 {
            set_reg(vcpu, reg_id::FAR_EL1, far)?;
        }
        set_reg(vcpu, reg_id::ELR_EL1, w.elr_el1)?;
        set_reg(vcpu, reg_id::SPSR_EL1, w.spsr_el1)?;
        set_reg(vcpu, reg_id::PSTATE, w.pstate)?;
        set_reg(vcpu, reg_id::PC, w.pc)
    }

    /// Emulates a synchronous external abort entry to EL1 on `vcpu`: read,
    /// [`ExceptionEntry::compute`], write. Returns what was written.
    pub fn inject_abort_regs(
        vcpu: &VcpuFd,
        kind: EntryKind,
        far: Option<u64>,
    ) -> Result<RegWrites, AbortInjectError> {
        let state = read_vcpu_state(vcpu)?;
        let writes = ExceptionEntry::compute(&state, kind, far)?;
        write_reg_writes(vcpu, &writes)?;
        Ok(writes)
    }

    /// Carries out a [`plan`]. Returns the register writes when the
    /// registers were used.
    pub fn inject(
        vcpu: &VcpuFd,
        method: InjectMethod,
    ) -> Result<Option<RegWrites>, AbortInjectError> {
        match method {
            InjectMethod::ExtDabt => inject_ext_dabt(vcpu).map(|()| None),
            InjectMethod::Registers { kind, far } => inject_abort_regs(vcpu, kind, far).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sea_exit::Esr;

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
    fn esr_values_match_kvm_and_qemu() {
        // KVM ext_dabt from EL0 / EL1 (observed in the lab: 0x96000010).
        assert_eq!(
            ExceptionEntry::esr(EntryKind::Data, true, true),
            0x9200_0010
        );
        assert_eq!(
            ExceptionEntry::esr(EntryKind::Data, false, true),
            0x9600_0010
        );
        // QEMU's syn_data_abort_no_iss(same_el, FnV=1, 0x10).
        assert_eq!(
            ExceptionEntry::esr(EntryKind::Data, true, false),
            0x9200_0410
        );
        assert_eq!(
            ExceptionEntry::esr(EntryKind::Data, false, false),
            0x9600_0410
        );
        assert_eq!(
            ExceptionEntry::esr(EntryKind::Instruction, true, true),
            0x8200_0010
        );
        assert_eq!(
            ExceptionEntry::esr(EntryKind::Instruction, false, true),
            0x8600_0010
        );
        assert_eq!(
            ExceptionEntry::esr(EntryKind::Instruction, false, false),
            0x8600_0410
        );
        // Round trip through the decoder.
        let esr = Esr(ExceptionEntry::esr(EntryKind::Instruction, true, false));
        assert!(esr.is_instruction_abort() && esr.il() && esr.fnv());
        assert_eq!(esr.fsc(), FSC_SEA);
    }

    #[test]
    fn entry_exhaustive_modes_kinds_far() {
        // (pstate mode bits, vector offset, from lower EL)
        let modes = [
            (PSTATE_MODE_EL0T, VECTOR_LOWER_A64, true),
            (PSTATE_MODE_EL1T, VECTOR_CUR_SP0, false),
            (PSTATE_MODE_EL1H, VECTOR_CUR_SPX, false),
            (PSTATE_NRW, VECTOR_LOWER_A32, true),
        ];
        for (mode, offset, lower) in modes {
            for kind in [EntryKind::Data, EntryKind::Instruction] {
                for far in [None, Some(0x1234_5678)] {
                    let cur = state(mode | 0x6000_0000); // Z and C set
                    let w = ExceptionEntry::compute(&cur, kind, far).unwrap();
                    assert_eq!(w.pc, 0xffff_8000_1000_0800 + offset, "{mode:#x}");
                    assert_eq!(w.elr_el1, cur.pc);
                    assert_eq!(w.spsr_el1, cur.pstate);
                    assert_eq!(w.pstate, 0x6000_0000 | PSTATE_DAIF | PSTATE_MODE_EL1H);
                    assert_eq!(w.far_el1, far);
                    assert_eq!(w.esr_el1, ExceptionEntry::esr(kind, lower, far.is_some()));
                    let esr = Esr(w.esr_el1);
                    assert_eq!(esr.fnv(), far.is_none());
                    let ec = esr.ec();
                    match (kind, lower) {
                        (EntryKind::Data, true) => assert_eq!(ec, 0x24),
                        (EntryKind::Data, false) => assert_eq!(ec, 0x25),
                        (EntryKind::Instruction, true) => assert_eq!(ec, 0x20),
                        (EntryKind::Instruction, false) => assert_eq!(ec, 0x21),
                    }
                }
            }
        }
    }

    #[test]
    fn entry_pstate_bits() {
        // Everything set in the old PSTATE, EL1h.
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
        let w = ExceptionEntry::compute(&cur, EntryKind::Data, None).unwrap();
        assert_eq!(
            w.pstate,
            PSTATE_NZCV | PSTATE_DIT | PSTATE_PAN | PSTATE_DAIF | PSTATE_MODE_EL1H
        );
        assert_eq!(w.spsr_el1, old);
        // SPAN = 0 sets PAN even if it was clear; DSSBS sets SSBS; MTE: TCO.
        cur.pstate = PSTATE_MODE_EL0T;
        cur.sctlr_el1 = SCTLR_EL1_DSSBS;
        cur.mte = true;
        let w = ExceptionEntry::compute(&cur, EntryKind::Data, None).unwrap();
        assert_eq!(
            w.pstate,
            PSTATE_PAN | PSTATE_SSBS | PSTATE_TCO | PSTATE_DAIF | PSTATE_MODE_EL1H
        );
        // Masks already set stay set; VBAR low bits are ignored.
        cur.pstate = PSTATE_DAIF | PSTATE_MODE_EL1T;
        cur.vbar_el1 = 0x8000_07ff;
        let w = ExceptionEntry::compute(&cur, EntryKind::Instruction, Some(0x10)).unwrap();
        assert_eq!(w.pc, 0x8000_0000);
    }

    #[test]
    fn entry_rejects_el2_and_aarch32_el1() {
        for pstate in [
            0b1000,
            0b1001,
            0b0110,
            PSTATE_NRW | 0b0011,
            PSTATE_NRW | 0b1111,
        ] {
            assert!(matches!(
                ExceptionEntry::compute(&state(pstate), EntryKind::Data, None),
                Err(AbortInjectError::UnsupportedMode { pstate: p }) if p == pstate
            ));
        }
    }

    #[test]
    fn plan_choice() {
        let full = RasCaps {
            vcpu_events: true,
            inject_ext_dabt: true,
            ..Default::default()
        };
        let none = RasCaps::default();
        assert_eq!(
            plan(AbortKind::Data, Some(1), &full, false),
            InjectMethod::ExtDabt
        );
        assert_eq!(
            plan(AbortKind::Unknown, None, &full, false),
            InjectMethod::ExtDabt
        );
        assert_eq!(
            plan(AbortKind::Data, Some(1), &full, true),
            InjectMethod::Registers {
                kind: EntryKind::Data,
                far: Some(1)
            }
        );
        assert_eq!(
            plan(AbortKind::Unknown, None, &none, false),
            InjectMethod::Registers {
                kind: EntryKind::Data,
                far: None
            }
        );
        assert_eq!(
            plan(AbortKind::Instruction, Some(8), &full, false),
            InjectMethod::Registers {
                kind: EntryKind::Instruction,
                far: Some(8)
            }
        );
    }

    #[test]
    fn register_ids() {
        assert_eq!(reg_id::PC, 0x6030_0000_0010_0040);
        assert_eq!(reg_id::PSTATE, 0x6030_0000_0010_0042);
        assert_eq!(reg_id::SP_EL1, 0x6030_0000_0010_0044);
        assert_eq!(reg_id::ELR_EL1, 0x6030_0000_0010_0046);
        assert_eq!(reg_id::SPSR_EL1, 0x6030_0000_0010_0048);
        assert_eq!(reg_id::SCTLR_EL1, 0x6030_0000_0013_c080);
        assert_eq!(reg_id::ESR_EL1, 0x6030_0000_0013_c290);
        assert_eq!(reg_id::FAR_EL1, 0x6030_0000_0013_c300);
        assert_eq!(reg_id::VBAR_EL1, 0x6030_0000_0013_c600);
    }

    /// On arm64, pin the ids against kvm-bindings' own layout and constants.
    #[cfg(target_arch = "aarch64")]
    #[test]
    fn register_ids_match_kvm_bindings() {
        use std::mem::{offset_of, size_of_val};

        use kvm_bindings::{
            KVM_REG_ARM_CORE, KVM_REG_ARM64, KVM_REG_ARM64_SYSREG, KVM_REG_SIZE_U64, KVM_SPSR_EL1,
            kvm_regs, user_pt_regs,
        };
        assert_eq!(reg_id::KVM_REG_ARM64, KVM_REG_ARM64);
        assert_eq!(reg_id::KVM_REG_SIZE_U64, KVM_REG_SIZE_U64);
        assert_eq!(reg_id::KVM_REG_ARM_CORE, u64::from(KVM_REG_ARM_CORE));
        assert_eq!(
            reg_id::KVM_REG_ARM64_SYSREG,
            u64::from(KVM_REG_ARM64_SYSREG)
        );
        let regs = offset_of!(kvm_regs, regs);
        assert_eq!(
            reg_id::OFFSET_PC as usize,
            regs + offset_of!(user_pt_regs, pc)
        );
        assert_eq!(
            reg_id::OFFSET_PSTATE as usize,
            regs + offset_of!(user_pt_regs, pstate)
        );
        assert_eq!(reg_id::OFFSET_SP_EL1 as usize, offset_of!(kvm_regs, sp_el1));
        assert_eq!(
            reg_id::OFFSET_ELR_EL1 as usize,
            offset_of!(kvm_regs, elr_el1)
        );
        assert_eq!(
            reg_id::OFFSET_SPSR_EL1 as usize,
            offset_of!(kvm_regs, spsr) + KVM_SPSR_EL1 as usize * 8
        );
        let ev = ext_dabt_events();
        assert_eq!(size_of_val(&ev), 64);
        assert_eq!(ev.exception.ext_dabt_pending, 1);
        assert_eq!(ev.exception.serror_pending, 0);
    }
}
