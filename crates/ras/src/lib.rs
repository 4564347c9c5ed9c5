// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! A hypervisor-neutral engine for guest memory-error recovery (RAS).
//!
//! A VMM hands the engine an [`report::ErrorReport`]: a vCPU consumed
//! poisoned memory, the host announced a failed page, an operator injected
//! an error. [`engine::RasEngine::handle`] asks [`policy::decide`] (pure)
//! what to do and does the engine's part: it writes CPER records
//! ([`cper`]) into the guest's error status blocks ([`error_source`]), which
//! the ACPI HEST ([`hest`]) describes, and tracks poisoned memory
//! ([`poison`], [`granule`]) and error storms ([`storm`]). It returns an
//! [`engine::Outcome`]: the [`event::RasEvent`]s to publish and what only
//! the VMM can do (make the vCPU take the abort, signal the asynchronous
//! source, stop the VM).
//!
//! The engine performs no I/O: no KVM, no signals, no clocks, no locks
//! held across calls into the VMM. It works on `vm-memory` guest memory
//! and plain values, and has no `unsafe` code.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod announce;
pub mod config;
pub mod cper;
pub mod engine;
pub mod error_source;
pub mod event;
pub mod granule;
pub mod hest;
pub mod inject;
pub mod layout;
pub mod poison;
pub mod policy;
pub mod report;
pub mod storm;
