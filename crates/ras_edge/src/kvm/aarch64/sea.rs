// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! The KVM side of synchronous external aborts on arm64: reading
//! `KVM_EXIT_ARM_SEA` out of `kvm_run`, enabling it, and making a vCPU take
//! the abort the VMM chose ([`crate::arch::aarch64::sea`]).
//!
//! uAPI (`include/uapi/linux/kvm.h`, Linux 6.19): exit reason 41,
//! `KVM_CAP_ARM_SEA_TO_USER` = 245 (a VM capability, enabled with
//! `KVM_ENABLE_CAP`), and in the `kvm_run` exit union
//! `struct { __u64 flags; __u64 esr; __u64 gva; __u64 gpa; } arm_sea`.
//! kvm-bindings 0.14 has neither number, and kvm-ioctls 0.25 returns
//! `VcpuExit::Unsupported(41)` for the exit and has no `KVM_ENABLE_CAP` on
//! arm64 VMs: both are done here.
//!
//! Injection (`Documentation/virt/kvm/api.rst`, `KVM_SET_VCPU_EVENTS`,
//! `KVM_SET_ONE_REG`): `ext_dabt_pending` needs `KVM_CAP_VCPU_EVENTS` and
//! `KVM_CAP_ARM_INJECT_EXT_DABT`, which [`AbortInjector::probe`] checks;
//! register-level entry needs only `KVM_GET/SET_ONE_REG`. Both must run on
//! the vCPU's thread between two `KVM_RUN`s.

use std::io;

use kvm_bindings::{KVM_CAP_ARM_INJECT_EXT_DABT, kvm_enable_cap, kvm_run, kvm_vcpu_events};
use kvm_ioctls::{Cap, VcpuFd, VmFd};
use thiserror::Error;
use vmm_sys_util::ioctl::ioctl_with_ref;

use crate::arch::aarch64::sea::{
    ExceptionEntry, Injected, InjectionMethod, SeaAbort, SeaError, SeaExit, VcpuState,
    injection_method, is_user_mode,
};

/// `KVM_EXIT_ARM_SEA` exit reason.
pub const KVM_EXIT_ARM_SEA: u32 = 41;
/// `KVM_CAP_ARM_SEA_TO_USER` VM capability.
pub const KVM_CAP_ARM_SEA_TO_USER: u32 = 245;

mod ioctl {
    //! `KVM_ENABLE_CAP` on a VM fd (kvm-ioctls offers no way to enable a
    //! capability it does not know on aarch64).
    use kvm_bindings::{KVMIO, kvm_enable_cap};
    use vmm_sys_util::ioctl_iow_nr;

    ioctl_iow_nr!(KVM_ENABLE_CAP, KVMIO, 0xa3, kvm_enable_cap);
}
use ioctl::KVM_ENABLE_CAP;

/// Errors of this module.
#[derive(Debug, Error)]
pub enum KvmSeaError {
    /// The `kvm_run` does not hold a `KVM_EXIT_ARM_SEA`.
    #[error("Exit reason {0} is not KVM_EXIT_ARM_SEA")]
    WrongExitReason(u32),
    /// The exit or the vCPU state is not one this code handles.
    #[error("Invalid synchronous external abort")]
    Sea(#[from] SeaError),
    /// `KVM_ENABLE_CAP(KVM_CAP_ARM_SEA_TO_USER)` failed.
    #[error("Failed to enable KVM_CAP_ARM_SEA_TO_USER")]
    EnableCap(#[source] io::Error),
    /// `KVM_GET_ONE_REG` failed.
    #[error("Failed to read vCPU register {0:#x}")]
    GetReg(u64, #[source] kvm_ioctls::Error),
    /// `KVM_SET_ONE_REG` failed.
    #[error("Failed to write vCPU register {0:#x}")]
    SetReg(u64, #[source] kvm_ioctls::Error),
    /// `KVM_SET_VCPU_EVENTS` failed.
    #[error("Failed to set ext_dabt_pending")]
    SetVcpuEvents(#[source] kvm_ioctls::Error),
}

/// KVM register ids (`arch/arm64/include/uapi/asm/kvm.h`,
/// `Documentation/virt/kvm/api.rst` `KVM_SET_ONE_REG`).
pub mod reg_id {
    use kvm_bindings::{KVM_REG_ARM_CORE, KVM_REG_ARM64, KVM_REG_ARM64_SYSREG, KVM_REG_SIZE_U64};

    /// `KVM_REG_ARM_CORE_REG(name)` of the 64-bit field at `offset` bytes
    /// into `struct kvm_regs`.
    pub const fn core_reg(offset: u64) -> u64 {
        KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE as u64 | (offset / 4)
    }

    /// `ARM64_SYS_REG(op0, op1, crn, crm, op2)`.
    pub const fn sys_reg(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64) -> u64 {
        KVM_REG_ARM64
            | KVM_REG_SIZE_U64
            | KVM_REG_ARM64_SYSREG as u64
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
    pub const OFFSET_ELR_EL1: u64 = 35 * 8;
    /// `spsr[KVM_SPSR_EL1]` (`KVM_SPSR_EL1` = 0). See [`OFFSET_PC`].
    pub const OFFSET_SPSR_EL1: u64 = 36 * 8;

    /// PC.
    pub const PC: u64 = core_reg(OFFSET_PC);
    /// PSTATE.
    pub const PSTATE: u64 = core_reg(OFFSET_PSTATE);
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

/// Reads and validates the `KVM_EXIT_ARM_SEA` in `run`.
pub fn read_exit(run: &kvm_run) -> Result<SeaExit, KvmSeaError> {
    if run.exit_reason != KVM_EXIT_ARM_SEA {
        return Err(KvmSeaError::WrongExitReason(run.exit_reason));
    }
    // SAFETY: every member of the exit union is plain old data and
    // `padding` spans the whole union, so any bit pattern is a valid
    // `[c_char; 256]`; `arm_sea` is its first 32 bytes.
    let bytes = unsafe { run.__bindgen_anon_1.padding };
    let word = |i: usize| {
        let mut w = [0u8; 8];
        for (dst, src) in w.iter_mut().zip(&bytes[i * 8..i * 8 + 8]) {
            *dst = src.to_ne_bytes()[0];
        }
        u64::from_ne_bytes(w)
    };
    Ok(SeaExit::new(word(0), word(1), word(2), word(3))?)
}

/// Enables `KVM_EXIT_ARM_SEA` on `vm` if the host has it; returns whether
/// it did (`false`: the host predates Linux 6.19, errors come as `SIGBUS`
/// only).
pub fn enable_sea_to_user(vm: &VmFd) -> Result<bool, KvmSeaError> {
    if vm.check_extension_raw(KVM_CAP_ARM_SEA_TO_USER.into()) <= 0 {
        return Ok(false);
    }
    let cap = kvm_enable_cap {
        cap: KVM_CAP_ARM_SEA_TO_USER,
        ..Default::default()
    };
    // SAFETY: KVM_ENABLE_CAP on a VM fd we own, with a kvm_enable_cap we
    // own that the kernel only reads.
    let ret = unsafe { ioctl_with_ref(vm, KVM_ENABLE_CAP(), &cap) };
    if ret != 0 {
        return Err(KvmSeaError::EnableCap(io::Error::last_os_error()));
    }
    Ok(true)
}

/// Makes vCPUs take synchronous external aborts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortInjector {
    /// KVM can inject an external data abort itself (`ext_dabt_pending`).
    pub ext_dabt: bool,
}

impl AbortInjector {
    /// What the host can do for `vm`.
    pub fn probe(vm: &VmFd) -> Self {
        Self {
            ext_dabt: vm.check_extension(Cap::VcpuEvents)
                && vm.check_extension_raw(KVM_CAP_ARM_INJECT_EXT_DABT.into()) > 0,
        }
    }

    /// Makes `vcpu` take `abort` when it next runs. Call on its thread,
    /// between two `KVM_RUN`s.
    pub fn inject(&self, vcpu: &VcpuFd, abort: &SeaAbort) -> Result<Injected, KvmSeaError> {
        let method = injection_method(abort, self.ext_dabt);
        let writes = match method {
            InjectionMethod::VcpuEvents => {
                let mut events = kvm_vcpu_events::default();
                events.exception.ext_dabt_pending = 1;
                vcpu.set_vcpu_events(&events)
                    .map_err(KvmSeaError::SetVcpuEvents)?;
                None
            }
            InjectionMethod::Registers { class, far } => {
                let state = VcpuState {
                    pc: get_reg(vcpu, reg_id::PC)?,
                    pstate: get_reg(vcpu, reg_id::PSTATE)?,
                    vbar_el1: get_reg(vcpu, reg_id::VBAR_EL1)?,
                    sctlr_el1: get_reg(vcpu, reg_id::SCTLR_EL1)?,
                    // Cloud Hypervisor does not give guests MTE.
                    mte: false,
                };
                let w = ExceptionEntry::compute(&state, class, far)?;
                set_reg(vcpu, reg_id::ESR_EL1, w.esr_el1)?;
                if let Some(far) = w.far_el1 {
                    set_reg(vcpu, reg_id::FAR_EL1, far)?;
                }
                set_reg(vcpu, reg_id::ELR_EL1, w.elr_el1)?;
                set_reg(vcpu, reg_id::SPSR_EL1, w.spsr_el1)?;
                set_reg(vcpu, reg_id::PSTATE, w.pstate)?;
                set_reg(vcpu, reg_id::PC, w.pc)?;
                Some(w)
            }
        };
        Ok(Injected { method, writes })
    }
}

/// Whether `vcpu` was running user code when it last left the guest.
pub fn in_user_mode(vcpu: &VcpuFd) -> Result<bool, KvmSeaError> {
    Ok(is_user_mode(get_reg(vcpu, reg_id::PSTATE)?))
}

fn get_reg(vcpu: &VcpuFd, reg: u64) -> Result<u64, KvmSeaError> {
    let mut buf = [0u8; 8];
    vcpu.get_one_reg(reg, &mut buf)
        .map_err(|e| KvmSeaError::GetReg(reg, e))?;
    Ok(u64::from_ne_bytes(buf))
}

fn set_reg(vcpu: &VcpuFd, reg: u64, value: u64) -> Result<(), KvmSeaError> {
    vcpu.set_one_reg(reg, &value.to_ne_bytes())
        .map_err(|e| KvmSeaError::SetReg(reg, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of_val};
    use std::os::raw::c_char;

    use kvm_bindings::{KVM_SPSR_EL1, kvm_regs, user_pt_regs};
    use vm_memory::GuestAddress;

    use super::*;
    use crate::arch::aarch64::sea::AbortClass;

    fn run_with(exit_reason: u32, words: [u64; 4]) -> kvm_run {
        let mut run = kvm_run {
            exit_reason,
            ..Default::default()
        };
        let mut pad = [0 as c_char; 256];
        for (i, w) in words.iter().enumerate() {
            for (j, b) in w.to_ne_bytes().iter().enumerate() {
                pad[i * 8 + j] = c_char::from_ne_bytes([*b]);
            }
        }
        // Garbage after the struct, as an earlier exit leaves it.
        pad[32] = 0x55;
        run.__bindgen_anon_1.padding = pad;
        run
    }

    #[test]
    fn exit_is_read_where_the_kernel_writes_it() {
        // struct kvm_run: exit_reason at 8, the exit union at 32.
        assert_eq!(offset_of!(kvm_run, exit_reason), 8);
        assert_eq!(offset_of!(kvm_run, __bindgen_anon_1), 32);
        let run = run_with(41, [1, 0x9200_0010, 0x1234_5000, 0x8012_3000]);
        let exit = read_exit(&run).unwrap();
        assert_eq!(exit.class, AbortClass::Data);
        assert_eq!(exit.gva, Some(0x1234_5000));
        assert_eq!(exit.gpa, Some(GuestAddress(0x8012_3000)));
        // Unknown flags are refused, not ignored.
        let run = run_with(41, [3, 0x9200_0010, 0, 0]);
        assert!(matches!(
            read_exit(&run),
            Err(KvmSeaError::Sea(SeaError::UnknownFlags(3)))
        ));
        let run = run_with(6, [1, 0x9200_0010, 0, 0]);
        assert!(matches!(
            read_exit(&run),
            Err(KvmSeaError::WrongExitReason(6))
        ));
    }

    #[test]
    fn register_ids_are_the_kernels() {
        // Values of KVM_REG_ARM_CORE_REG()/ARM64_SYS_REG() from the uAPI.
        assert_eq!(reg_id::PC, 0x6030_0000_0010_0040);
        assert_eq!(reg_id::PSTATE, 0x6030_0000_0010_0042);
        assert_eq!(reg_id::ELR_EL1, 0x6030_0000_0010_0046);
        assert_eq!(reg_id::SPSR_EL1, 0x6030_0000_0010_0048);
        assert_eq!(reg_id::SCTLR_EL1, 0x6030_0000_0013_c080);
        assert_eq!(reg_id::ESR_EL1, 0x6030_0000_0013_c290);
        assert_eq!(reg_id::FAR_EL1, 0x6030_0000_0013_c300);
        assert_eq!(reg_id::VBAR_EL1, 0x6030_0000_0013_c600);
        // And the offsets against kvm-bindings' own layout.
        let regs = offset_of!(kvm_regs, regs);
        assert_eq!(
            reg_id::OFFSET_PC as usize,
            regs + offset_of!(user_pt_regs, pc)
        );
        assert_eq!(
            reg_id::OFFSET_PSTATE as usize,
            regs + offset_of!(user_pt_regs, pstate)
        );
        assert_eq!(
            reg_id::OFFSET_ELR_EL1 as usize,
            offset_of!(kvm_regs, elr_el1)
        );
        assert_eq!(
            reg_id::OFFSET_SPSR_EL1 as usize,
            offset_of!(kvm_regs, spsr) + KVM_SPSR_EL1 as usize * 8
        );
        // The events struct KVM_SET_VCPU_EVENTS takes is 64 bytes.
        assert_eq!(size_of_val(&kvm_vcpu_events::default()), 64);
    }
}
