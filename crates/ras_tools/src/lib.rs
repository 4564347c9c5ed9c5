// SPDX-License-Identifier: Apache-2.0
//! What this project's tools and independent checkers need beyond what a
//! VMM ships: the engine crate ([`ras`]) holds only the code Cloud
//! Hypervisor calls.
//!
//! - [`cper_record`]: a standard CPER record ("CPER" header + section
//!   descriptors, UEFI 2.10 N.2.1/N.2.2) wrapping a status block's entries,
//!   the form libcper and `rasctl record` read;
//! - [`hest_decode`]: reading a HEST back the way a Linux guest reads it,
//!   refusing what Linux refuses (`rasctl decode`).
//!
//! The examples write the sample tables and records `tests/iasl` and
//! `tests/libcper` check; the bench measures writing a record.

#![deny(missing_docs)]

pub mod cper_record;
pub mod guid_text;
pub mod hest_decode;
