// SPDX-License-Identifier: Apache-2.0
//! A hypervisor-neutral engine for guest memory-error recovery (RAS).
//!
//! A VMM hands the engine an [`report::ErrorReport`] (a vCPU consumed poisoned
//! memory, the host announced a failed page, an operator injected an error).
//! [`policy::decide`] turns it into [`policy::Action`]s; [`engine::RasEngine`]
//! applies them: it writes CPER records ([`cper`]) into the guest's error
//! status blocks ([`error_source`]) described by the ACPI HEST ([`hest`]),
//! tracks poisoned memory ([`poison`]), and asks the VMM, through the
//! [`engine::Platform`] trait, to inject an abort, notify the guest or stop.
//! Everything it does is reported as [`event::RasEvent`]s.
//!
//! The engine performs no I/O of its own: no KVM, no signals, no clocks. It
//! works on `vm-memory` guest memory and plain values.

pub mod config;
pub mod cper;
pub mod engine;
pub mod error_source;
pub mod event;
pub mod hest;
pub mod inject;
pub mod options;
pub mod poison;
pub mod policy;
pub mod report;
