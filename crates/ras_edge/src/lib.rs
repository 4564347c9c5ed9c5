// SPDX-License-Identifier: Apache-2.0
//! The x86 edge of guest memory-error recovery: what a VMM tells a guest
//! about a lost page through the machine-check architecture.
//!
//! - [`arch::x86::mce`]: pure. A memory error described by kind (action
//!   required, action optional, corrected), guest-physical address and
//!   granularity becomes the four register values a machine check carries
//!   (`IA32_MCi_STATUS`, `_ADDR`, `_MISC`, `IA32_MCG_STATUS`), in the Intel
//!   or the AMD flavour; the `IA32_MCG_CAP` a vCPU is given.
//! - [`kvm::x86_64::mce`]: KVM. `KVM_X86_GET_MCE_CAP_SUPPORTED`,
//!   `KVM_X86_SETUP_MCE` at vCPU creation, `KVM_X86_SET_MCE` to inject,
//!   with the checks that keep an injection from triple-faulting the guest.

pub mod arch {
    //! Architecture definitions (no KVM, no `unsafe`).
    pub mod x86 {
        //! x86 (Intel 64 and AMD64).
        pub mod mce;
    }
}

#[cfg(target_arch = "x86_64")]
pub mod kvm {
    //! KVM adapters.
    pub mod x86_64 {
        //! KVM on x86_64.
        pub mod mce;
    }
}
