// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! Machine-check injection into an x86_64 KVM guest.
//!
//! The kernel uAPI (`include/uapi/linux/kvm.h`,
//! `Documentation/virt/kvm/api.rst`):
//! - `KVM_CHECK_EXTENSION(KVM_CAP_MCE)` (31) on `/dev/kvm`: the largest bank
//!   count a vCPU can have (`KVM_MAX_MCE_BANKS`, 32), 0 without MCE support.
//! - `KVM_X86_GET_MCE_CAP_SUPPORTED` = `_IOR(KVMIO, 0x9d, __u64)` on
//!   `/dev/kvm`: the `IA32_MCG_CAP` bits KVM can emulate (`MCG_CTL_P`,
//!   `MCG_SER_P`; on Intel also `MCG_LMCE_P`, `MCG_CMCI_P`).
//! - `KVM_X86_SETUP_MCE` = `_IOW(KVMIO, 0x9c, __u64)` on a vCPU: sets its
//!   `IA32_MCG_CAP` (bank count in bits 7:0, only supported bits), and
//!   `IA32_MCG_CTL` and every `IA32_MCi_CTL` to all ones (reporting
//!   enabled). Without it a vCPU has 32 banks whose `MCi_CTL` is 0: KVM
//!   then drops every uncorrected error it is asked to inject, and
//!   `KVM_X86_SET_MCE` still returns 0.
//! - `KVM_X86_SET_MCE` = `_IOW(KVMIO, 0x9e, struct kvm_x86_mce)` on a vCPU,
//!   with `struct kvm_x86_mce { __u64 status, addr, misc, mcg_status; __u8
//!   bank; __u8 pad1[7]; __u64 pad2[3]; }` (64 bytes,
//!   `arch/x86/include/uapi/asm/kvm.h`): `EINVAL` when `bank` is not below
//!   the vCPU's bank count or `status` lacks `VAL`. For an uncorrected
//!   error (`UC`) KVM (`kvm_vcpu_ioctl_x86_set_mce()` in
//!   `arch/x86/kvm/x86.c`) writes the bank and `MCG_STATUS` and queues #MC
//!   (vector 18) for the next `KVM_RUN`; but when the guest has `CR4.MCE`
//!   clear or `MCG_STATUS.MCIP` still set from an earlier #MC it requests
//!   a triple fault instead (the guest shuts down, `KVM_EXIT_SHUTDOWN`) and
//!   returns 0. A corrected error only fills the bank (or sets `OVER`).
//!
//! kvm-ioctls 0.25.0 wraps none of these three ioctls (it only has
//! `Cap::Mce`), so this module issues them with `libc::ioctl` and the
//! numbers above; `struct kvm_x86_mce` comes from kvm-bindings 0.14.1.
//!
//! [`inject`] refuses what would kill the guest (`CR4.MCE` clear, `MCIP`
//! set): the caller keeps the error and retries after the guest's handler
//! cleared `MCIP` (or reports it another way). [`inject_unchecked`] is the
//! plain ioctl. Call both on the vCPU's own thread while it is out of
//! `KVM_RUN` (vCPU ioctls wait for `KVM_RUN` to return).

use std::io;
use std::os::fd::AsRawFd;
use std::os::raw::c_ulong;

use kvm_bindings::{CpuId, Msrs, kvm_msr_entry, kvm_x86_mce};
use kvm_ioctls::{Cap, Kvm, VcpuFd};
use thiserror::Error;

use crate::arch::x86::mce::{CpuVendor, McaBankValues, McaError, McgCap, mcg_status, msr};

/// `KVMIO`, the ioctl type of every KVM ioctl.
const KVMIO: c_ulong = 0xae;
/// `_IOC_WRITE`, `_IOC_READ` (asm-generic/ioctl.h).
const IOC_WRITE: c_ulong = 1;
const IOC_READ: c_ulong = 2;

const fn ioc(dir: c_ulong, nr: c_ulong, size: usize) -> c_ulong {
    (dir << 30) | ((size as c_ulong) << 16) | (KVMIO << 8) | nr
}

/// `KVM_X86_SETUP_MCE` = `_IOW(KVMIO, 0x9c, __u64)` = 0x4008_ae9c.
pub const KVM_X86_SETUP_MCE: c_ulong = ioc(IOC_WRITE, 0x9c, 8);
/// `KVM_X86_GET_MCE_CAP_SUPPORTED` = `_IOR(KVMIO, 0x9d, __u64)` = 0x8008_ae9d.
pub const KVM_X86_GET_MCE_CAP_SUPPORTED: c_ulong = ioc(IOC_READ, 0x9d, 8);
/// `KVM_X86_SET_MCE` = `_IOW(KVMIO, 0x9e, struct kvm_x86_mce)` = 0x4040_ae9e.
pub const KVM_X86_SET_MCE: c_ulong = ioc(IOC_WRITE, 0x9e, size_of::<kvm_x86_mce>());

/// `CR4.MCE` (bit 6): machine-check exceptions enabled.
pub const CR4_MCE: u64 = 1 << 6;

/// Errors of this module.
#[derive(Debug, Error)]
pub enum KvmMceError {
    /// `KVM_CAP_MCE` is 0.
    #[error("KVM does not support machine-check emulation (KVM_CAP_MCE is 0)")]
    NotSupported,
    /// `KVM_X86_GET_MCE_CAP_SUPPORTED` failed.
    #[error("KVM_X86_GET_MCE_CAP_SUPPORTED failed: {0}")]
    GetCapSupported(#[source] io::Error),
    /// The `IA32_MCG_CAP` could not be chosen.
    #[error("Cannot choose IA32_MCG_CAP: {0}")]
    McgCap(#[source] McaError),
    /// `KVM_X86_SETUP_MCE` failed.
    #[error("KVM_X86_SETUP_MCE({mcg_cap:#x}) failed: {source}")]
    Setup {
        /// The value passed.
        mcg_cap: u64,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// `KVM_X86_SET_MCE` failed (`EINVAL`: bank not below the bank count,
    /// or `status` without `VAL`).
    #[error("KVM_X86_SET_MCE(bank {bank}, status {status:#x}) failed: {source}")]
    Inject {
        /// The bank.
        bank: u8,
        /// The status value.
        status: u64,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Reading the vCPU state failed.
    #[error("Cannot read the vCPU's {what}: {source}")]
    VcpuState {
        /// `KVM_GET_SREGS` or `KVM_GET_MSRS`.
        what: &'static str,
        /// The error.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// The guest has not enabled machine checks (`CR4.MCE` = 0): a #MC
    /// would shut it down.
    #[error("The guest has CR4.MCE clear: a machine check would shut it down")]
    MachineCheckDisabled,
    /// The guest is still handling a machine check (`MCG_STATUS.MCIP`): a
    /// second #MC would shut it down.
    #[error("The guest is still handling a machine check (MCG_STATUS.MCIP set)")]
    MachineCheckInProgress,
}

/// What KVM offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MceSupport {
    /// `KVM_CHECK_EXTENSION(KVM_CAP_MCE)`: the largest bank count.
    pub max_banks: u32,
    /// `KVM_X86_GET_MCE_CAP_SUPPORTED`: `IA32_MCG_CAP` bits KVM emulates.
    pub mcg_cap_supported: u64,
}

/// `KVM_CHECK_EXTENSION(KVM_CAP_MCE)` and `KVM_X86_GET_MCE_CAP_SUPPORTED`
/// on `/dev/kvm`.
pub fn probe(kvm: &Kvm) -> Result<MceSupport, KvmMceError> {
    let banks = kvm.check_extension_int(Cap::Mce);
    if banks <= 0 {
        return Err(KvmMceError::NotSupported);
    }
    let mut supported: u64 = 0;
    // SAFETY: KVM_X86_GET_MCE_CAP_SUPPORTED writes one __u64 through the
    // pointer, which points to a live, writable u64; the fd is /dev/kvm.
    let ret = unsafe {
        libc::ioctl(
            kvm.as_raw_fd(),
            KVM_X86_GET_MCE_CAP_SUPPORTED as _,
            &mut supported as *mut u64,
        )
    };
    if ret < 0 {
        return Err(KvmMceError::GetCapSupported(io::Error::last_os_error()));
    }
    Ok(MceSupport {
        max_banks: banks as u32,
        mcg_cap_supported: supported,
    })
}

/// `KVM_X86_SETUP_MCE` with an explicit `IA32_MCG_CAP`.
pub fn setup_mce_raw(vcpu: &VcpuFd, mcg_cap: McgCap) -> Result<(), KvmMceError> {
    let raw = mcg_cap.raw();
    // SAFETY: KVM_X86_SETUP_MCE reads one __u64 from the pointer, which
    // points to a live u64; the fd is a vCPU fd.
    let ret = unsafe { libc::ioctl(vcpu.as_raw_fd(), KVM_X86_SETUP_MCE as _, &raw as *const u64) };
    if ret < 0 {
        return Err(KvmMceError::Setup {
            mcg_cap: raw,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Gives the vCPU `banks` MCA banks and the recovery capabilities KVM
/// supports ([`McgCap::for_guest`]: `MCG_CTL_P`, `MCG_SER_P`, and
/// `MCG_LMCE_P` when `lmce`); call once, after creating the vCPU and
/// before its first `KVM_RUN`.
///
/// Returns the `IA32_MCG_CAP` the guest will read, read back with
/// `KVM_GET_MSRS`: it can have fewer bits than asked for and than
/// `KVM_X86_GET_MCE_CAP_SUPPORTED` promised. On AMD hosts KVM keeps only
/// bits 8:0 (`svm_setup_mce()` in `arch/x86/kvm/svm/svm.c`: "[63:9] are
/// reserved"), so the guest never sees `MCG_SER_P` there.
pub fn setup_mce(
    vcpu: &VcpuFd,
    support: &MceSupport,
    banks: u8,
    lmce: bool,
) -> Result<McgCap, KvmMceError> {
    let cap = McgCap::for_guest(support.mcg_cap_supported, support.max_banks, banks, lmce)
        .map_err(KvmMceError::McgCap)?;
    setup_mce_raw(vcpu, cap)?;
    Ok(McgCap::from_raw(read_msr(vcpu, msr::IA32_MCG_CAP)?))
}

/// The `struct kvm_x86_mce` for `values` in `bank`.
pub fn to_kvm(values: &McaBankValues, bank: u8) -> kvm_x86_mce {
    kvm_x86_mce {
        status: values.status,
        addr: values.addr,
        misc: values.misc,
        mcg_status: values.mcg_status,
        bank,
        ..Default::default()
    }
}

/// `KVM_X86_SET_MCE` as it is: see the module documentation for what KVM
/// does with a guest that cannot take the #MC.
pub fn inject_unchecked(
    vcpu: &VcpuFd,
    values: &McaBankValues,
    bank: u8,
) -> Result<(), KvmMceError> {
    let mce = to_kvm(values, bank);
    // SAFETY: KVM_X86_SET_MCE reads one struct kvm_x86_mce (64 bytes, the
    // size encoded in the ioctl number) from the pointer, which points to
    // a live value of that type; the fd is a vCPU fd.
    let ret = unsafe {
        libc::ioctl(
            vcpu.as_raw_fd(),
            KVM_X86_SET_MCE as _,
            &mce as *const kvm_x86_mce,
        )
    };
    if ret < 0 {
        return Err(KvmMceError::Inject {
            bank,
            status: values.status,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Whether the guest can take a machine check now: `CR4.MCE` set and
/// `MCG_STATUS.MCIP` clear.
pub fn check_guest_ready(vcpu: &VcpuFd) -> Result<(), KvmMceError> {
    let sregs = vcpu.get_sregs().map_err(|source| KvmMceError::VcpuState {
        what: "special registers (KVM_GET_SREGS)",
        source,
    })?;
    if sregs.cr4 & CR4_MCE == 0 {
        return Err(KvmMceError::MachineCheckDisabled);
    }
    if machine_check_in_progress(vcpu)? {
        return Err(KvmMceError::MachineCheckInProgress);
    }
    Ok(())
}

/// `IA32_MCG_STATUS.MCIP` of the vCPU (`KVM_GET_MSRS`).
pub fn machine_check_in_progress(vcpu: &VcpuFd) -> Result<bool, KvmMceError> {
    Ok(read_msr(vcpu, msr::IA32_MCG_STATUS)? & mcg_status::MCIP != 0)
}

/// One MSR of the vCPU as the guest would read it (`KVM_GET_MSRS`).
pub fn read_msr(vcpu: &VcpuFd, index: u32) -> Result<u64, KvmMceError> {
    let state = |source| KvmMceError::VcpuState {
        what: "MSRs (KVM_GET_MSRS)",
        source,
    };
    let mut msrs = Msrs::from_entries(&[kvm_msr_entry {
        index,
        ..Default::default()
    }])
    .map_err(|_| state(kvm_ioctls::Error::new(libc::ENOMEM)))?;
    let n = vcpu.get_msrs(&mut msrs).map_err(state)?;
    if n != 1 {
        return Err(state(kvm_ioctls::Error::new(libc::EINVAL)));
    }
    Ok(msrs.as_slice()[0].data)
}

/// Injects the error into `bank` if the guest can take it: for values
/// that raise #MC, refuses with [`KvmMceError::MachineCheckDisabled`] or
/// [`KvmMceError::MachineCheckInProgress`] rather than letting KVM shut
/// the guest down. The #MC is delivered at the next `KVM_RUN`.
pub fn inject(vcpu: &VcpuFd, values: &McaBankValues, bank: u8) -> Result<(), KvmMceError> {
    if values.raises_machine_check() {
        check_guest_ready(vcpu)?;
    }
    inject_unchecked(vcpu, values, bank)
}

/// The register layout the guest expects, from the vendor string of its
/// CPUID leaf 0 (as given to `KVM_SET_CPUID2`).
pub fn guest_vendor(cpuid: &CpuId) -> Option<CpuVendor> {
    cpuid
        .as_slice()
        .iter()
        .find(|e| e.function == 0)
        .and_then(|e| CpuVendor::from_cpuid_vendor(e.ebx, e.edx, e.ecx))
}

/// The guest's physical-address width: CPUID 0x8000_0008 EAX[7:0].
pub fn guest_phys_bits(cpuid: &CpuId) -> Option<u8> {
    cpuid
        .as_slice()
        .iter()
        .find(|e| e.function == 0x8000_0008)
        .map(|e| (e.eax & 0xff) as u8)
}

#[cfg(test)]
mod tests {
    use kvm_bindings::kvm_cpuid_entry2;

    use super::*;
    use crate::arch::x86::mce::{McaErrorKind, McaMemoryError};

    #[test]
    fn ioctl_numbers() {
        // include/uapi/linux/kvm.h, expanded by hand:
        // _IOW(0xAE, 0x9c, __u64): dir 1 << 30, size 8 << 16.
        assert_eq!(KVM_X86_SETUP_MCE, 0x4008_ae9c);
        // _IOR(0xAE, 0x9d, __u64): dir 2 << 30.
        assert_eq!(KVM_X86_GET_MCE_CAP_SUPPORTED, 0x8008_ae9d);
        // _IOW(0xAE, 0x9e, struct kvm_x86_mce): size 64 = 0x40.
        assert_eq!(KVM_X86_SET_MCE, 0x4040_ae9e);
        assert_eq!(size_of::<kvm_x86_mce>(), 64);
    }

    #[test]
    fn kvm_struct() {
        let v = McaMemoryError::new(McaErrorKind::ActionRequired, 0x5000, 12, 40)
            .unwrap()
            .bank_values(CpuVendor::Intel);
        let m = to_kvm(&v, 9);
        assert_eq!(m.status, 0xbd80_0000_0000_0134);
        assert_eq!(m.addr, 0x5000);
        assert_eq!(m.misc, 0x8c);
        assert_eq!(m.mcg_status, 7);
        assert_eq!(m.bank, 9);
        assert_eq!(m.pad1, [0; 7]);
        assert_eq!(m.pad2, [0; 3]);
    }

    #[test]
    fn cpuid_helpers() {
        let leaf = |function, eax, ebx, ecx, edx| kvm_cpuid_entry2 {
            function,
            eax,
            ebx,
            ecx,
            edx,
            ..Default::default()
        };
        let cpuid = CpuId::from_entries(&[
            // "AuthenticAMD"
            leaf(0, 0x10, 0x6874_7541, 0x444d_4163, 0x6974_6e65),
            leaf(0x8000_0008, 0x3028, 0, 0, 0),
        ])
        .unwrap();
        assert_eq!(guest_vendor(&cpuid), Some(CpuVendor::Amd));
        assert_eq!(guest_phys_bits(&cpuid), Some(0x28));
        let empty = CpuId::new(0).unwrap();
        assert_eq!(guest_vendor(&empty), None);
        assert_eq!(guest_phys_bits(&empty), None);
    }
}
