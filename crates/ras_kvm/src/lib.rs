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
//!
//! # Use from a VMM
//!
//! ```no_run
//! use kvm_ioctls::{Kvm, VcpuExit};
//! use ras_kvm::caps::{self, SeaToUser};
//! use ras_kvm::clock::ReportTime;
//! use ras_kvm::memory_map::{GuestRamMap, RamRange};
//! use ras_kvm::sea_exit::{KVM_EXIT_ARM_SEA, SeaExit};
//! use ras_kvm::sigbus::{self, VcpuSigbusGuard};
//! use ras_kvm::early_kill;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Main thread, before any vCPU thread exists.
//! sigbus::install_handler()?;
//! early_kill::enable()?; // BUS_MCEERR_AO will come to this thread
//! let kvm = Kvm::new()?;
//! let vm = kvm.create_vm()?;
//! let _sea: SeaToUser = caps::enable_sea_to_user(&vm)?;
//! let ras_caps = caps::probe(&vm);
//! let ram = GuestRamMap::new([RamRange { gpa: 0x4000_0000, hva: 0x7f00_0000_0000, len: 1 << 30 }]);
//! ram.register_for_sigbus()?;
//!
//! // vCPU thread (SIGBUS must not be blocked here).
//! let mut vcpu = vm.create_vcpu(0)?;
//! let guard = VcpuSigbusGuard::register(0)?;
//! loop {
//!     match vcpu.run() {
//!         Ok(VcpuExit::Unsupported(KVM_EXIT_ARM_SEA)) => {
//!             let exit = SeaExit::from_vcpu(&mut vcpu)?;
//!             let report = exit.to_report(0, ReportTime::now());
//!             // engine.handle(report) ...; contain exit.gpa; then inject:
//!             let method =
//!                 ras_kvm::abort_inject::plan(exit.class.kind(), exit.gva, &ras_caps, false);
//!             #[cfg(target_arch = "aarch64")]
//!             ras_kvm::abort_inject::inject(&vcpu, method)?;
//!             # let _ = (report, method);
//!         }
//!         Err(e) if e.errno() == libc::EINTR => {
//!             if let Some(record) = guard.take_pending() {
//!                 let report = ram.to_report(&record, ReportTime::now())?;
//!                 // engine.handle(report) ...; then a data abort:
//!                 let method = ras_kvm::abort_inject::plan(
//!                     ras::report::AbortKind::Unknown, None, &ras_caps, false);
//!                 #[cfg(target_arch = "aarch64")]
//!                 ras_kvm::abort_inject::inject(&vcpu, method)?;
//!                 # let _ = (report, method);
//!             }
//!         }
//!         _ => break,
//!     }
//! }
//!
//! // VMM thread, when the eventfd set with
//! // `sigbus::set_action_optional_notify_fd` fires:
//! for record in sigbus::drain_action_optional() {
//!     if let Ok(report) = ram.to_report(&record, ReportTime::now()) {
//!         // engine.handle(report) ...
//!         # let _ = report;
//!     }
//! }
//! # Ok(())
//! # }
//! ```

pub mod abort_inject;
pub mod caps;
pub mod clock;
pub mod early_kill;
pub mod memory_map;
pub mod sea_exit;
pub mod sigbus;
