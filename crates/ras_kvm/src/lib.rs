// SPDX-License-Identifier: Apache-2.0
//! The arm64 KVM edge of the guest RAS engine.
//!
//! This crate holds every `unsafe` block of the project. It turns what the
//! host tells a VMM about a memory error into [`ras::report::ErrorReport`]s,
//! and carries the engine's answer (an abort) back into the guest:
//!
//! - [`sea_exit`]: decode `KVM_EXIT_ARM_SEA` (exit reason 41) from `kvm_run`.
//! - [`caps`]: enable `KVM_CAP_ARM_SEA_TO_USER`, probe injection support.
//! - [`abort_inject`]: inject a synchronous external abort, either through
//!   `KVM_SET_VCPU_EVENTS` or by emulating exception entry on the registers.
//! - [`sigbus`]: async-signal-safe capture of `SIGBUS` `BUS_MCEERR_AR/AO`.
//! - [`memory_map`]: host virtual <-> guest physical translation, and the
//!   report for a captured `SIGBUS`.
//! - [`early_kill`]: opt into `BUS_MCEERR_AO` (`PR_MCE_KILL_EARLY`).
//! - [`clock`]: the two timestamps every report carries.
//!
//! Pure decoders and decisions build and are unit-tested on every
//! architecture; the thin KVM adapters that only make sense on arm64 are
//! behind `#[cfg(target_arch = "aarch64")]`.

pub mod abort_inject;
pub mod caps;
pub mod clock;
pub mod early_kill;
pub mod memory_map;
pub mod sea_exit;
pub mod sigbus;
