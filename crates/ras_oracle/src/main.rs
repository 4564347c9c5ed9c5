// SPDX-License-Identifier: Apache-2.0
//! The guest oracle: a stock Debian amd64 Linux under QEMU TCG consumes the
//! HEST built by `ras::hest` and the records written by the engine's own
//! error-source runtime (`ras::error_source`) through a `vm-memory` mapping
//! of the guest's RAM file, and this program checks what the guest logs.
//!
//! Run through `scripts/oracle.sh`; see docs/oracle.md.

mod glue;
mod guest;
mod scenarios;

use std::env;
use std::io::Error as IoError;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use thiserror::Error;

/// Errors of the oracle driver itself (not scenario failures).
#[derive(Debug, Error)]
pub enum OracleError {
    /// Bad command line.
    #[error("usage: {0}")]
    Usage(String),
    /// Guest driving failed.
    #[error(transparent)]
    Guest(#[from] guest::GuestError),
    /// Engine glue failed.
    #[error(transparent)]
    Glue(#[from] glue::GlueError),
    /// I/O on a host file.
    #[error("{what}: {source}")]
    Io {
        /// What was done.
        what: String,
        /// The error.
        source: IoError,
    },
}

/// Command-line options.
#[derive(Clone, Debug)]
pub struct Options {
    /// qemu-system-x86_64.
    pub qemu: PathBuf,
    /// Guest kernel.
    pub kernel: PathBuf,
    /// Guest initramfs.
    pub initrd: PathBuf,
    /// Work directory (RAM file, HEST, console logs).
    pub work: PathBuf,
    /// Scenario numbers to run (empty: all).
    pub only: Vec<u32>,
}

fn parse_args() -> Result<Options, OracleError> {
    let usage = || {
        OracleError::Usage(
            "ras_oracle --qemu Q --kernel K --initrd I --work DIR [--only 1,2,...]".into(),
        )
    };
    let mut qemu = None;
    let mut kernel = None;
    let mut initrd = None;
    let mut work = None;
    let mut only = Vec::new();
    let mut args = env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(usage);
        match a.as_str() {
            "--qemu" => qemu = Some(PathBuf::from(val()?)),
            "--kernel" => kernel = Some(PathBuf::from(val()?)),
            "--initrd" => initrd = Some(PathBuf::from(val()?)),
            "--work" => work = Some(PathBuf::from(val()?)),
            "--only" => {
                for n in val()?.split(',') {
                    only.push(n.trim().parse().map_err(|_| usage())?);
                }
            }
            _ => return Err(usage()),
        }
    }
    Ok(Options {
        qemu: qemu.ok_or_else(usage)?,
        kernel: kernel.ok_or_else(usage)?,
        initrd: initrd.ok_or_else(usage)?,
        work: work.ok_or_else(usage)?,
        only,
    })
}

fn main() -> ExitCode {
    let start = Instant::now();
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ras_oracle: {e}");
            return ExitCode::from(2);
        }
    };
    let results = match scenarios::run_all(&opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ras_oracle: infrastructure failure: {e}");
            println!("0 passed, 1 failed (infrastructure)");
            return ExitCode::FAILURE;
        }
    };
    let passed = results
        .iter()
        .filter(|r| r.outcome == scenarios::Outcome::Pass)
        .count();
    let failed = results
        .iter()
        .filter(|r| r.outcome == scenarios::Outcome::Fail)
        .count();
    let skipped = results
        .iter()
        .filter(|r| r.outcome == scenarios::Outcome::Skip)
        .count();
    println!();
    println!("== summary ({:.1} s) ==", start.elapsed().as_secs_f64());
    for r in &results {
        println!("{:<4} {} {}", r.outcome.label(), r.number, r.name);
    }
    if skipped > 0 {
        println!("{skipped} skipped");
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
