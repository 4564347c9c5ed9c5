// SPDX-License-Identifier: Apache-2.0
//! The error both lab VMMs return, named after the layer that failed.

use std::{fmt, io, result};

use thiserror::Error;

use crate::guest_ram::GuestRamError;

/// What stopped a lab VMM.
#[derive(Debug, Error)]
pub enum LabError {
    /// A KVM ioctl (named) failed.
    #[error("KVM: {0}: {1}")]
    Kvm(&'static str, #[source] kvm_ioctls::Error),
    /// Guest memory could not be read or written.
    #[error("guest memory: {0}")]
    Memory(String),
    /// Guest RAM could not be set up.
    #[error("guest RAM: {0}")]
    Ram(#[from] GuestRamError),
    /// The guest did what the scenario did not expect.
    #[error("{0}")]
    Guest(String),
    /// The RAS engine (`ras`) refused.
    #[error("RAS engine: {0}")]
    Engine(String),
    /// The edge (`ras_edge`: SIGBUS capture, guest RAM table, KVM calls)
    /// refused.
    #[error("RAS edge: {0}")]
    Edge(String),
    /// A host file or system call (named) failed.
    #[error("I/O: {0}: {1}")]
    Io(&'static str, #[source] io::Error),
}

/// A lab VMM's result.
pub type Result<T> = result::Result<T, LabError>;

/// `map_err` for a KVM call named `what`.
pub fn kvm_err(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> LabError {
    move |e| LabError::Kvm(what, e)
}

/// `map_err` for the edge's errors.
pub fn edge<E: fmt::Display>(e: E) -> LabError {
    LabError::Edge(e.to_string())
}

/// `map_err` for the engine's errors.
pub fn engine_err<E: fmt::Display>(e: E) -> LabError {
    LabError::Engine(e.to_string())
}
