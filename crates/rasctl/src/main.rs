// SPDX-License-Identifier: Apache-2.0
//! `rasctl`: writes the bytes the RAS engine gives a guest (HEST tables,
//! Generic Error Status Blocks) and standard CPER records, and decodes them.
//!
//! Every command goes through the engine's own builders and codec, so what
//! `rasctl` writes is exactly what a VMM using the engine writes.

mod decode;
mod encode;
mod value;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ras::cper::{Guid, Severity};
use ras::inject::InjectArmError;
use thiserror::Error;

use crate::decode::{DecodeError, Kind};
use crate::value::{
    parse_arm_error, parse_granule_shift, parse_guid, parse_hex_bytes, parse_severity, parse_u64,
};

/// Errors of the `rasctl` commands.
#[derive(Debug, Error)]
pub enum CliError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The engine refused the request.
    #[error("{0}")]
    Engine(String),
    /// The input is not a HEST, status block or record we can read.
    #[error("{path}: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// Why it was refused.
        reason: DecodeError,
    },
}

#[derive(Parser)]
#[command(
    name = "rasctl",
    version,
    about = "Write and decode guest RAS tables and CPER records"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a HEST for a set of error sources at a base address.
    Hest(HestArgs),
    /// Write a Generic Error Status Block, as the VMM writes it.
    #[command(subcommand)]
    Cper(CperCommand),
    /// Wrap a status block as a standard CPER record.
    Record(RecordArgs),
    /// Decode a HEST, a status block or a CPER record.
    Decode(DecodeArgs),
}

/// How the synchronous sources notify the guest.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SyncNotification {
    /// Synchronous External Abort (arm64).
    Sea,
    /// Polled (tests, guests without SEA).
    Polled,
    /// NMI (x86 guests, e.g. the oracle).
    Nmi,
}

#[derive(Args)]
struct HestArgs {
    /// Output file.
    #[arg(long)]
    out: PathBuf,
    /// The RAS configuration as the API's JSON (e.g.
    /// `{"async_mode":"Polled"}`); defaults if absent.
    #[arg(long, default_value = "")]
    ras: String,
    /// Number of vCPUs (one SEA source each with `sea_sources=per_vcpu`).
    #[arg(long, default_value_t = 1)]
    vcpus: u32,
    /// Guest-physical base of the error region.
    #[arg(long, value_parser = parse_u64, default_value = "0x0600_0000")]
    base: u64,
    /// Notification of the synchronous sources.
    #[arg(long, value_enum, default_value = "sea")]
    sync_notification: SyncNotification,
}

#[derive(Subcommand)]
enum CperCommand {
    /// A Platform Memory Error section.
    Memory(MemoryArgs),
    /// An ARM Processor Error section.
    Arm(ArmArgs),
    /// A raw section (any GUID and bytes).
    Raw(RawArgs),
}

#[derive(Args)]
struct Common {
    /// Output file.
    #[arg(long)]
    out: PathBuf,
    /// CPER severity: recoverable, fatal, corrected, informational.
    #[arg(long, value_parser = parse_severity, default_value = "recoverable")]
    severity: Severity,
    /// Timestamp, seconds since the Unix epoch (none if absent).
    #[arg(long)]
    time: Option<u64>,
}

#[derive(Args)]
struct MemoryArgs {
    #[command(flatten)]
    common: Common,
    /// Guest-physical address of the lost memory (rounded down to the granule).
    #[arg(long, value_parser = parse_u64)]
    gpa: u64,
    /// Size of the lost range: 4K, 2M, 1G, 0x200000, ... (a power of two,
    /// 4K..16G; the syntax of `--ras block_size` and `inject-error granule`).
    #[arg(long, value_parser = parse_granule_shift, default_value = "4K")]
    granule: u8,
    /// Set the threshold-exceeded flag (corrected: Linux soft-offlines).
    #[arg(long)]
    threshold_exceeded: bool,
}

#[derive(Args)]
struct ArmArgs {
    #[command(flatten)]
    common: Common,
    /// MPIDR_EL1 of the affected PE.
    #[arg(long, value_parser = parse_u64, default_value = "0x80000000")]
    mpidr: u64,
    /// MIDR_EL1 of the affected PE.
    #[arg(long, value_parser = parse_u64, default_value = "0")]
    midr: u64,
    /// Error type of the error-information entry: cache, tlb, bus,
    /// micro-arch.
    #[arg(long, value_parser = parse_arm_error, default_value = "cache")]
    error_type: InjectArmError,
    /// Virtual fault address.
    #[arg(long, value_parser = parse_u64)]
    va: Option<u64>,
    /// Physical fault address.
    #[arg(long, value_parser = parse_u64)]
    pa: Option<u64>,
}

#[derive(Args)]
struct RawArgs {
    #[command(flatten)]
    common: Common,
    /// Section type GUID.
    #[arg(long, value_parser = parse_guid)]
    guid: Guid,
    /// Section body as hex bytes.
    #[arg(long, value_parser = parse_hex_bytes, conflicts_with = "data_file")]
    hex: Option<value::HexBytes>,
    /// Section body from a file.
    #[arg(long)]
    data_file: Option<PathBuf>,
}

#[derive(Args)]
struct RecordArgs {
    /// A status block written by `rasctl cper`.
    #[arg(long = "in")]
    input: PathBuf,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
    /// Record id.
    #[arg(long, value_parser = parse_u64, default_value = "1")]
    record_id: u64,
}

#[derive(Args)]
struct DecodeArgs {
    /// File to decode.
    file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Decode as this kind (refused if the file's signature says
    /// otherwise); by default the signature decides.
    #[arg(long = "as", value_enum)]
    kind: Option<Kind>,
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Hest(a) => {
            let bytes = encode::hest(&a.ras, a.vcpus, a.base, a.sync_notification)?;
            encode::write(&a.out, &bytes)
        }
        Command::Cper(CperCommand::Memory(a)) => {
            let block = encode::memory(
                a.gpa,
                a.granule,
                a.common.severity,
                a.threshold_exceeded,
                a.common.time,
            )?;
            encode::write_block(&a.common.out, &block)
        }
        Command::Cper(CperCommand::Arm(a)) => {
            let block = encode::arm(
                a.mpidr,
                a.midr,
                a.error_type,
                a.va,
                a.pa,
                a.common.severity,
                a.common.time,
            );
            encode::write_block(&a.common.out, &block)
        }
        Command::Cper(CperCommand::Raw(a)) => {
            let data = match (a.hex, a.data_file) {
                (Some(d), _) => d.0,
                (None, Some(p)) => encode::read(&p)?,
                (None, None) => Vec::new(),
            };
            let block = encode::raw(a.guid, data, a.common.severity, a.common.time);
            encode::write_block(&a.common.out, &block)
        }
        Command::Record(a) => {
            let bytes = encode::record(&a.input, a.record_id)?;
            encode::write(&a.out, &bytes)
        }
        Command::Decode(a) => {
            let text = decode::decode_file(&a.file, a.json, a.kind)?;
            print!("{text}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rasctl: {e}");
            ExitCode::FAILURE
        }
    }
}
