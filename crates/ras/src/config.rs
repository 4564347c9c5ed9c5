// SPDX-License-Identifier: Apache-2.0
//! `--ras` option: [`RasConfig`] and its `key=value,key=value` parser.
//!
//! Syntax of [`crate::options`]. Keys and values are case-sensitive and
//! are not trimmed; numbers are decimal. See [`RasConfig::SYNTAX`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::options::{self, Keyword, SyntaxError};

/// How synchronous (SEA, ACPI notification type 8) error sources are laid
/// out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SeaSources {
    /// One SEA source (status block + ack register) per vCPU, so that
    /// several vCPUs can each have an error in flight.
    #[default]
    PerVcpu,
    /// One SEA source for all vCPUs (QEMU's layout); a second error before
    /// the ack is queued.
    Shared,
}

/// How the guest learns about asynchronous (action-optional) errors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AsyncMode {
    /// A GHESv2 source with GPIO notification (type 7): the platform GED
    /// interrupt runs `Notify(<PNP0C33>, 0x80)`.
    #[default]
    Gpio,
    /// A GHESv2 source with POLLED notification (type 0): the guest reads
    /// the block every `poll_interval_ms`.
    Polled,
    /// No asynchronous source: action-optional errors are only remembered
    /// (poison registry), the guest is not told until it consumes them.
    Off,
}

/// What to do with a synchronous consumption whose guest-physical address
/// is unknown (`KVM_EXIT_ARM_SEA` without `KVM_EXIT_ARM_SEA_FLAG_GPA_VALID`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NoGpaPolicy {
    /// Inject the abort with no CPER record. The guest's `do_sea` finds no
    /// record and falls back to `arm64_notify_die`: SIGBUS to the user
    /// process (from EL0) or a guest panic (from EL1) — what bare metal does
    /// with an unclaimed SEA. The default: it contains the loss to one guest
    /// process when possible; the storm limit stops a VM that loops.
    #[default]
    Inject,
    /// Stop the VM.
    Stop,
}

/// The `--ras` configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RasConfig {
    /// Layout of the synchronous sources.
    pub sea_sources: SeaSources,
    /// Asynchronous source notification.
    pub async_mode: AsyncMode,
    /// Poll interval of a polled asynchronous source, in milliseconds.
    pub poll_interval_ms: u32,
    /// Records queued per source while the guest has not acknowledged the
    /// previous one (0: drop when busy).
    pub queue_depth: u32,
    /// Size of each Generic Error Status Block, in bytes.
    pub block_size: u32,
    /// Synchronous consumption without a guest-physical address.
    pub no_gpa: NoGpaPolicy,
    /// Stop the VM when one granule is consumed more than this many times
    /// within `storm_window_ms` (0: no limit).
    pub storm_limit: u32,
    /// Window of the storm and rate limits, in milliseconds.
    pub storm_window_ms: u32,
    /// Stop the VM when more than this many errors of any kind arrive
    /// within `storm_window_ms` (0: no limit).
    pub rate_limit: u32,
    /// Ask the host for early action-optional notification
    /// (`PR_MCE_KILL_EARLY`), without which no `BUS_MCEERR_AO` arrives.
    pub early_kill: bool,
    /// Bound on the number of poisoned granules tracked.
    pub max_poisoned: u32,
}

impl Default for RasConfig {
    fn default() -> Self {
        Self {
            sea_sources: SeaSources::PerVcpu,
            async_mode: AsyncMode::Gpio,
            poll_interval_ms: 1000,
            queue_depth: 16,
            block_size: 1024,
            no_gpa: NoGpaPolicy::Inject,
            storm_limit: 16,
            storm_window_ms: 1000,
            rate_limit: 1024,
            early_kill: true,
            max_poisoned: 4096,
        }
    }
}

/// Errors from parsing or validating a `--ras` string.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Two commas in a row, or a leading/trailing comma.
    #[error("Empty option in --ras (stray comma)")]
    EmptyOption,
    /// An option without `=value`.
    #[error("Missing value for --ras option '{0}' (expected {0}=<value>)")]
    MissingValue(String),
    /// `key=` with nothing after it.
    #[error("Empty value for --ras option '{0}'")]
    EmptyValue(String),
    /// A key this option does not know.
    #[error("Unknown --ras option '{0}' (known: {KNOWN_KEYS})")]
    UnknownKey(String),
    /// A key given twice.
    #[error("Duplicate --ras option '{0}'")]
    DuplicateKey(String),
    /// A value that is not a decimal number.
    #[error("Invalid number for --ras option '{key}': '{value}'")]
    InvalidNumber {
        /// Option name.
        key: &'static str,
        /// Offending value.
        value: String,
    },
    /// A number outside the allowed range.
    #[error("Value {value} for --ras option '{key}' out of range {min}..={max}")]
    OutOfRange {
        /// Option name.
        key: &'static str,
        /// Offending value.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A number that must be a multiple of something.
    #[error("Value {value} for --ras option '{key}' is not a multiple of {multiple}")]
    NotMultiple {
        /// Option name.
        key: &'static str,
        /// Offending value.
        value: u64,
        /// Required divisor.
        multiple: u64,
    },
    /// A value that is not one of the allowed words.
    #[error("Invalid value '{value}' for --ras option '{key}' (allowed: {allowed})")]
    InvalidEnum {
        /// Option name.
        key: &'static str,
        /// Offending value.
        value: String,
        /// The allowed words, `|`-separated.
        allowed: &'static str,
    },
    /// Fields that are valid alone but not together.
    #[error("Inconsistent --ras options: {0}")]
    Inconsistent(&'static str),
}

const KNOWN_KEYS: &str = "sea_sources, async, poll_interval_ms, queue_depth, block_size, no_gpa, \
     storm_limit, storm_window_ms, rate_limit, early_kill, max_poisoned";

/// Bounds of the numeric options (inclusive).
pub mod limits {
    /// `poll_interval_ms`.
    pub const POLL_INTERVAL_MS: (u64, u64) = (1, 3_600_000);
    /// `queue_depth`.
    pub const QUEUE_DEPTH: (u64, u64) = (0, 1024);
    /// `block_size`: large enough for one status block with a memory
    /// section (20 + 72 + 80 bytes), at most 64 KiB.
    pub const BLOCK_SIZE: (u64, u64) = (256, 65536);
    /// `block_size` must be a multiple of this (the block is read with
    /// qword accesses).
    pub const BLOCK_SIZE_MULTIPLE: u64 = 8;
    /// `storm_limit`.
    pub const STORM_LIMIT: (u64, u64) = (0, 1_000_000);
    /// `storm_window_ms`.
    pub const STORM_WINDOW_MS: (u64, u64) = (1, 3_600_000);
    /// `rate_limit`.
    pub const RATE_LIMIT: (u64, u64) = (0, 1_000_000);
    /// `max_poisoned`.
    pub const MAX_POISONED: (u64, u64) = (1, 1 << 20);
}

/// `value` as a keyword of option `key`.
fn keyword<T: Keyword>(key: &'static str, value: &str) -> Result<T, ConfigError> {
    T::from_word(value).ok_or_else(|| ConfigError::InvalidEnum {
        key,
        value: value.to_string(),
        allowed: T::ALLOWED,
    })
}

impl From<SyntaxError<'_>> for ConfigError {
    fn from(e: SyntaxError<'_>) -> Self {
        match e {
            SyntaxError::EmptyOption => ConfigError::EmptyOption,
            SyntaxError::MissingValue(option) => ConfigError::MissingValue(option.to_string()),
            SyntaxError::DuplicateKey(key) => ConfigError::DuplicateKey(key.to_string()),
        }
    }
}

impl Keyword for SeaSources {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("per_vcpu", SeaSources::PerVcpu),
        ("shared", SeaSources::Shared),
    ];
    const ALLOWED: &'static str = "per_vcpu|shared";
}

impl Keyword for AsyncMode {
    const WORDS: &'static [(&'static str, Self)] = &[
        ("gpio", AsyncMode::Gpio),
        ("polled", AsyncMode::Polled),
        ("off", AsyncMode::Off),
    ];
    const ALLOWED: &'static str = "gpio|polled|off";
}

impl Keyword for NoGpaPolicy {
    const WORDS: &'static [(&'static str, Self)] =
        &[("inject", NoGpaPolicy::Inject), ("stop", NoGpaPolicy::Stop)];
    const ALLOWED: &'static str = "inject|stop";
}

fn parse_number(
    key: &'static str,
    value: &str,
    (min, max): (u64, u64),
) -> Result<u64, ConfigError> {
    // Decimal digits only: no sign, no whitespace, no prefix.
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError::InvalidNumber {
            key,
            value: value.to_string(),
        });
    }
    let n = value.parse::<u64>().map_err(|_| ConfigError::OutOfRange {
        key,
        value: u64::MAX,
        min,
        max,
    })?;
    if !(min..=max).contains(&n) {
        return Err(ConfigError::OutOfRange {
            key,
            value: n,
            min,
            max,
        });
    }
    Ok(n)
}

fn parse_u32(key: &'static str, value: &str, range: (u64, u64)) -> Result<u32, ConfigError> {
    let n = parse_number(key, value, range)?;
    // The ranges above all fit in u32.
    u32::try_from(n).map_err(|_| ConfigError::OutOfRange {
        key,
        value: n,
        min: range.0,
        max: range.1,
    })
}

impl RasConfig {
    /// Syntax of the `--ras` option, for the command-line help.
    pub const SYNTAX: &'static str = "Guest memory-error recovery (arm64 ACPI GHESv2) parameters \
        \"sea_sources=per_vcpu|shared,async=gpio|polled|off,poll_interval_ms=<ms>,\
        queue_depth=<records>,block_size=<bytes, multiple of 8>,no_gpa=inject|stop,\
        storm_limit=<count, 0=off>,storm_window_ms=<ms>,rate_limit=<count, 0=off>,\
        early_kill=on|off,max_poisoned=<granules>\" \
        (\"on\" or an empty string: all defaults: sea_sources=per_vcpu,async=gpio,\
        poll_interval_ms=1000,queue_depth=16,block_size=1024,no_gpa=inject,\
        storm_limit=16,storm_window_ms=1000,rate_limit=1024,early_kill=on,\
        max_poisoned=4096)";

    /// Parses a `--ras` value, then [`validate`](Self::validate)s it.
    /// Keys not given keep their default. `""` and `"on"` give the defaults.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let mut cfg = RasConfig::default();
        if s.is_empty() || s == "on" {
            return Ok(cfg);
        }
        for (key, value) in options::split(s)? {
            cfg.set(key, value)?;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        // Unknown keys first, so that `foo=` reports the key, not the value.
        let key: &'static str = match key {
            "sea_sources" => "sea_sources",
            "async" => "async",
            "poll_interval_ms" => "poll_interval_ms",
            "queue_depth" => "queue_depth",
            "block_size" => "block_size",
            "no_gpa" => "no_gpa",
            "storm_limit" => "storm_limit",
            "storm_window_ms" => "storm_window_ms",
            "rate_limit" => "rate_limit",
            "early_kill" => "early_kill",
            "max_poisoned" => "max_poisoned",
            other => return Err(ConfigError::UnknownKey(other.to_string())),
        };
        if value.is_empty() {
            return Err(ConfigError::EmptyValue(key.to_string()));
        }
        match key {
            "sea_sources" => self.sea_sources = keyword(key, value)?,
            "async" => self.async_mode = keyword(key, value)?,
            "poll_interval_ms" => {
                self.poll_interval_ms = parse_u32(key, value, limits::POLL_INTERVAL_MS)?;
            }
            "queue_depth" => self.queue_depth = parse_u32(key, value, limits::QUEUE_DEPTH)?,
            "block_size" => {
                let n = parse_u32(key, value, limits::BLOCK_SIZE)?;
                if u64::from(n) % limits::BLOCK_SIZE_MULTIPLE != 0 {
                    return Err(ConfigError::NotMultiple {
                        key,
                        value: n.into(),
                        multiple: limits::BLOCK_SIZE_MULTIPLE,
                    });
                }
                self.block_size = n;
            }
            "no_gpa" => self.no_gpa = keyword(key, value)?,
            "storm_limit" => self.storm_limit = parse_u32(key, value, limits::STORM_LIMIT)?,
            "storm_window_ms" => {
                self.storm_window_ms = parse_u32(key, value, limits::STORM_WINDOW_MS)?;
            }
            "rate_limit" => self.rate_limit = parse_u32(key, value, limits::RATE_LIMIT)?,
            "early_kill" => self.early_kill = keyword(key, value)?,
            _ => self.max_poisoned = parse_u32(key, value, limits::MAX_POISONED)?,
        }
        Ok(())
    }

    /// Checks ranges (for a config built in code or deserialized) and
    /// cross-field rules:
    /// - with both limits on, `rate_limit >= storm_limit` (a smaller overall
    ///   limit would make the per-granule one meaningless).
    ///
    /// Keys that only matter in some modes (`poll_interval_ms` without
    /// `async=polled`, `early_kill` with `async=off`) are accepted: the
    /// async source also carries injected errors, and
    /// [`to_option_string`](Self::to_option_string) spells out every key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |key: &'static str, v: u32, (min, max): (u64, u64)| {
            let v = u64::from(v);
            if (min..=max).contains(&v) {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange {
                    key,
                    value: v,
                    min,
                    max,
                })
            }
        };
        check(
            "poll_interval_ms",
            self.poll_interval_ms,
            limits::POLL_INTERVAL_MS,
        )?;
        check("queue_depth", self.queue_depth, limits::QUEUE_DEPTH)?;
        check("block_size", self.block_size, limits::BLOCK_SIZE)?;
        if u64::from(self.block_size) % limits::BLOCK_SIZE_MULTIPLE != 0 {
            return Err(ConfigError::NotMultiple {
                key: "block_size",
                value: self.block_size.into(),
                multiple: limits::BLOCK_SIZE_MULTIPLE,
            });
        }
        check("storm_limit", self.storm_limit, limits::STORM_LIMIT)?;
        check(
            "storm_window_ms",
            self.storm_window_ms,
            limits::STORM_WINDOW_MS,
        )?;
        check("rate_limit", self.rate_limit, limits::RATE_LIMIT)?;
        check("max_poisoned", self.max_poisoned, limits::MAX_POISONED)?;
        if self.storm_limit != 0 && self.rate_limit != 0 && self.rate_limit < self.storm_limit {
            return Err(ConfigError::Inconsistent(
                "rate_limit must be 0 or at least storm_limit",
            ));
        }
        Ok(())
    }

    /// The option string for this configuration, every key spelled out, in
    /// [`SYNTAX`](Self::SYNTAX) order. [`parse`](Self::parse) gives back the
    /// same configuration.
    pub fn to_option_string(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for RasConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sea_sources={},async={},poll_interval_ms={},queue_depth={},block_size={},\
             no_gpa={},storm_limit={},storm_window_ms={},rate_limit={},early_kill={},\
             max_poisoned={}",
            self.sea_sources.word(),
            self.async_mode.word(),
            self.poll_interval_ms,
            self.queue_depth,
            self.block_size,
            self.no_gpa.word(),
            self.storm_limit,
            self.storm_window_ms,
            self.rate_limit,
            self.early_kill.word(),
            self.max_poisoned,
        )
    }
}

impl FromStr for RasConfig {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let d = RasConfig::default();
        d.validate().unwrap();
        assert_eq!(RasConfig::parse(""), Ok(d));
        assert_eq!(RasConfig::parse("on"), Ok(d));
        assert_eq!(RasConfig::parse(&d.to_option_string()), Ok(d));
        // SYNTAX documents the real defaults.
        assert!(RasConfig::SYNTAX.contains(&d.to_option_string()));
    }
}
