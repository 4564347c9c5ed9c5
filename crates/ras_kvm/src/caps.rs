// SPDX-License-Identifier: Apache-2.0
//! VM capabilities the RAS path needs (`Documentation/virt/kvm/api.rst`,
//! section 7 "Capabilities that can be enabled on VMs").
//!
//! kvm-ioctls 0.25.0 compiles `VmFd::enable_cap` only for x86, s390 and
//! powerpc (0.25.1 adds aarch64), so `KVM_ENABLE_CAP` is issued raw here.

use std::os::raw::c_ulong;

use kvm_bindings::kvm_enable_cap;
use kvm_ioctls::VmFd;
use thiserror::Error;
use vmm_sys_util::errno;
use vmm_sys_util::ioctl::ioctl_with_ref;

pub use crate::sea_exit::KVM_CAP_ARM_SEA_TO_USER;

/// `KVM_ENABLE_CAP` = `_IOW(KVMIO, 0xa3, struct kvm_enable_cap)`.
pub const KVM_ENABLE_CAP: c_ulong = 0x4068_AEA3;
/// `KVM_CAP_VCPU_EVENTS`.
pub const KVM_CAP_VCPU_EVENTS: u32 = 41;
/// `KVM_CAP_ARM_INJECT_SERROR_ESR`.
pub const KVM_CAP_ARM_INJECT_SERROR_ESR: u32 = 158;
/// `KVM_CAP_ARM_INJECT_EXT_DABT`.
pub const KVM_CAP_ARM_INJECT_EXT_DABT: u32 = 178;

/// Errors of this module.
#[derive(Debug, Error)]
pub enum CapsError {
    /// The kernel advertised the capability but refused to enable it.
    #[error("KVM_ENABLE_CAP({cap}) failed: {source}")]
    EnableCap {
        /// Capability number.
        cap: u32,
        /// errno.
        #[source]
        source: errno::Error,
    },
}

/// Outcome of [`enable_sea_to_user`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeaToUser {
    /// Unclaimed SEAs now exit with `KVM_EXIT_ARM_SEA`.
    Enabled,
    /// The kernel (before 6.19, or not arm64) does not have it: unclaimed
    /// SEAs are turned into an SError by KVM; the SIGBUS path still works.
    Unsupported,
}

/// What the kernel offers for guest RAS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RasCaps {
    /// `KVM_CAP_ARM_SEA_TO_USER` is advertised.
    pub sea_to_user: bool,
    /// `KVM_CAP_VCPU_EVENTS` (needed by `KVM_SET_VCPU_EVENTS`).
    pub vcpu_events: bool,
    /// `KVM_CAP_ARM_INJECT_EXT_DABT` (`ext_dabt_pending` is honoured).
    pub inject_ext_dabt: bool,
    /// `KVM_CAP_ARM_INJECT_SERROR_ESR`.
    pub inject_serror_esr: bool,
}

impl RasCaps {
    /// Whether `abort_inject::inject_ext_dabt` (arm64) can work.
    pub fn can_inject_ext_dabt(&self) -> bool {
        self.vcpu_events && self.inject_ext_dabt
    }
}

/// Something that answers `KVM_CHECK_EXTENSION` (a `VmFd`, or a fake).
pub trait CheckExtension {
    /// The raw `KVM_CHECK_EXTENSION` result (0 = not supported).
    fn check_extension_raw(&self, cap: u32) -> i32;
}

impl CheckExtension for VmFd {
    fn check_extension_raw(&self, cap: u32) -> i32 {
        VmFd::check_extension_raw(self, c_ulong::from(cap))
    }
}

/// Probes the RAS-related capabilities on a VM (VM-level checks reflect
/// the VM's configuration better than the system fd).
pub fn probe(vm: &impl CheckExtension) -> RasCaps {
    let has = |cap| vm.check_extension_raw(cap) > 0;
    RasCaps {
        sea_to_user: has(KVM_CAP_ARM_SEA_TO_USER),
        vcpu_events: has(KVM_CAP_VCPU_EVENTS),
        inject_ext_dabt: has(KVM_CAP_ARM_INJECT_EXT_DABT),
        inject_serror_esr: has(KVM_CAP_ARM_INJECT_SERROR_ESR),
    }
}

/// The `kvm_enable_cap` argument for `KVM_CAP_ARM_SEA_TO_USER` (no flags,
/// no args).
pub fn sea_to_user_cap() -> kvm_enable_cap {
    kvm_enable_cap {
        cap: KVM_CAP_ARM_SEA_TO_USER,
        ..Default::default()
    }
}

/// Enables `KVM_CAP_ARM_SEA_TO_USER` on `vm` if the kernel advertises it.
/// Call it once, before the vCPUs run.
pub fn enable_sea_to_user(vm: &VmFd) -> Result<SeaToUser, CapsError> {
    if CheckExtension::check_extension_raw(vm, KVM_CAP_ARM_SEA_TO_USER) <= 0 {
        return Ok(SeaToUser::Unsupported);
    }
    enable_cap_raw(vm, &sea_to_user_cap())?;
    Ok(SeaToUser::Enabled)
}

/// Raw `KVM_ENABLE_CAP` on a VM fd.
pub fn enable_cap_raw(vm: &VmFd, cap: &kvm_enable_cap) -> Result<(), CapsError> {
    // SAFETY: `vm` is an open KVM VM fd; `cap` is a valid, initialized
    // `struct kvm_enable_cap` that the kernel only reads (_IOW), and it
    // outlives the call.
    let ret = unsafe { ioctl_with_ref(vm, KVM_ENABLE_CAP, cap) };
    if ret != 0 {
        return Err(CapsError::EnableCap {
            cap: cap.cap,
            source: errno::Error::last(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::mem::size_of;

    use vmm_sys_util::ioctl_iow_nr;

    use super::*;

    const KVMIO: u32 = 0xAE;
    ioctl_iow_nr!(KVM_ENABLE_CAP_NR, KVMIO, 0xa3, kvm_enable_cap);

    #[test]
    fn enable_cap_number() {
        assert_eq!(size_of::<kvm_enable_cap>(), 0x68);
        assert_eq!(KVM_ENABLE_CAP_NR(), KVM_ENABLE_CAP);
        let cap = sea_to_user_cap();
        assert_eq!((cap.cap, cap.flags, cap.args), (245, 0, [0; 4]));
    }

    struct Fake(HashMap<u32, i32>);
    impl CheckExtension for Fake {
        fn check_extension_raw(&self, cap: u32) -> i32 {
            self.0.get(&cap).copied().unwrap_or(0)
        }
    }

    #[test]
    fn probe_reads_each_cap() {
        let caps = probe(&Fake(HashMap::from([(245, 1), (41, 1), (178, 1)])));
        assert!(caps.sea_to_user && caps.vcpu_events && caps.inject_ext_dabt);
        assert!(!caps.inject_serror_esr);
        assert!(caps.can_inject_ext_dabt());
        let caps = probe(&Fake(HashMap::from([(41, 1)])));
        assert_eq!(
            caps,
            RasCaps {
                vcpu_events: true,
                ..Default::default()
            }
        );
        assert!(!caps.can_inject_ext_dabt());
    }
}
