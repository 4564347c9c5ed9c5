// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! The edge between a VMM and the RAS engine ([`ras`]): what runs between
//! a host signal or a KVM exit and the guest.
//!
//! Cloud Hypervisor carries these files verbatim, at the paths the module
//! tree here mirrors, and the lab harness (`ras_lab`) calls them, so a lab
//! result is about the code the VMM ships:
//!
//! | module | in Cloud Hypervisor | what |
//! |---|---|---|
//! | [`arch::aarch64::sea`] | `hypervisor/src/arch/aarch64/sea.rs` | exit 41's fields, the abort to inject, register-level exception entry (pure) |
//! | `kvm::aarch64::sea` | `hypervisor/src/kvm/aarch64/sea.rs` | `KVM_EXIT_ARM_SEA` from `kvm_run`, `KVM_CAP_ARM_SEA_TO_USER`, injection (arm64 only) |
//! | [`arch::x86::mce`] | `hypervisor/src/arch/x86/mce.rs` | the machine-check bank values of a memory error, Intel and AMD (pure) |
//! | `kvm::x86_64::mce` | `hypervisor/src/kvm/x86_64/mce.rs` | `KVM_X86_SETUP_MCE`, `KVM_X86_SET_MCE` (x86_64 only) |
//! | [`host::sigbus`] | `vmm/src/ras/sigbus.rs` | the `SIGBUS` handler: `BUS_MCEERR_AR` per vCPU thread, `BUS_MCEERR_AO` queue |
//! | [`host::guest_ram`] | `vmm/src/ras/guest_ram.rs` | the one table of guest RAM (HVA -> GPA) the handler and the VMM read |
//! | [`host::early_kill`] | `vmm/src/ras/early_kill.rs` | `PR_MCE_KILL_EARLY` for the VMM thread |
//! | [`host::clock`] | `vmm/src/ras/clock.rs` | report timestamps |
//! | [`host::retire`] | `vmm/src/ras/retire.rs` | retiring or keeping host pages the host did not claim |
//!
//! Files refer to each other with `crate::arch::...` (hypervisor files)
//! or `super::...` (host files) only, so they compile in both places.

#![deny(missing_docs)]

pub mod arch {
    //! Architecture definitions (Cloud Hypervisor: `hypervisor::arch`).
    pub mod aarch64 {
        //! arm64.
        pub mod sea;
    }
    pub mod x86 {
        //! x86 (Intel 64 and AMD64).
        pub mod mce;
    }
}

#[cfg(any(target_arch = "aarch64", target_arch = "x86_64"))]
pub mod kvm {
    //! KVM (Cloud Hypervisor: `hypervisor::kvm`).
    #[cfg(target_arch = "aarch64")]
    pub mod aarch64 {
        //! arm64.
        pub mod sea;
    }
    #[cfg(target_arch = "x86_64")]
    pub mod x86_64 {
        //! x86_64.
        pub mod mce;
    }
}

pub mod host {
    //! The host side of the VMM (Cloud Hypervisor: `vmm::ras`).
    pub mod clock;
    pub mod early_kill;
    pub mod guest_ram;
    pub mod retire;
    pub mod sigbus;
}
