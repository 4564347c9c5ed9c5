// SPDX-License-Identifier: Apache-2.0
//! Writes sample HEST tables for an independent check with `iasl -d`
//! (tests/iasl/check_hest.sh).
//!
//! Usage: `hest_samples <out-dir>`. For each sample it writes
//! `<name>.aml` (the table) and `<name>.expect`, the fields the table must
//! decode to: a line `count <n>`, then one line per entry
//! `<source id> <notification type> <ESA address> <read-ack address>
//! <block length> <poll interval>` (addresses in hex, `0x`-prefixed, the
//! rest decimal).
//!
//! It also writes `<out-dir>/negative/<name>.{aml,expect}`: tables damaged
//! on purpose (bad checksum, truncated entry, error source count off by
//! one, a changed notification type, an unknown subtable type) with the
//! expectations of the undamaged table. The check must reject every one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs, process};

use ras::error_source::{RegionLayout, SourceNotifications};
use ras::hest;
use vm_memory::GuestAddress;

struct Sample {
    name: &'static str,
    base: u64,
    num_sync: u32,
    block_len: u32,
    notifications: SourceNotifications,
}

fn samples() -> Vec<Sample> {
    vec![
        Sample {
            name: "arm64_gpio_1vcpu",
            base: 0x4000_0000,
            num_sync: 1,
            block_len: 1024,
            notifications: SourceNotifications::arm64_gpio(),
        },
        Sample {
            name: "arm64_gpio_8vcpu_4k",
            base: 0x8_0000_0000,
            num_sync: 8,
            block_len: 4096,
            notifications: SourceNotifications::arm64_gpio(),
        },
        Sample {
            name: "arm64_polled_4vcpu",
            base: 0x4010_0000,
            num_sync: 4,
            block_len: 1024,
            notifications: SourceNotifications::arm64_polled(100),
        },
        Sample {
            name: "polled_async_only",
            base: 0x1000,
            num_sync: 0,
            block_len: 24,
            notifications: SourceNotifications::polled(5000),
        },
        Sample {
            name: "x86_nmi_oracle",
            base: 0x1f00_0000,
            num_sync: 2,
            block_len: 1024,
            notifications: SourceNotifications::x86_nmi(),
        },
        Sample {
            name: "arm64_gpio_300vcpu",
            base: 0x4000_0000,
            num_sync: 300,
            block_len: 512,
            notifications: SourceNotifications::arm64_gpio(),
        },
    ]
}

fn fix_checksum(t: &mut [u8]) {
    t[9] = 0;
    let sum = t.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    t[9] = 0u8.wrapping_sub(sum);
}

/// Damaged copies of sample tables: (name, table, expectations of the
/// undamaged sample).
fn negatives(good: &[(String, Vec<u8>, String)]) -> Vec<(String, Vec<u8>, String)> {
    let find = |name: &str| good.iter().find(|g| g.0 == name).cloned();
    let mut out = Vec::new();
    if let Some((_, mut t, e)) = find("x86_nmi_oracle") {
        t[9] = t[9].wrapping_add(1);
        out.push(("bad_checksum".to_string(), t, e));
    }
    if let Some((_, mut t, e)) = find("arm64_gpio_1vcpu") {
        let len = t.len() - 8;
        t.truncate(len);
        t[4..8].copy_from_slice(&(len as u32).to_le_bytes());
        fix_checksum(&mut t);
        out.push(("truncated_entry".to_string(), t, e));
    }
    if let Some((_, mut t, e)) = find("arm64_polled_4vcpu") {
        t[36] += 1;
        fix_checksum(&mut t);
        out.push(("count_plus_one".to_string(), t.clone(), e.clone()));
        t[36] -= 1;
        // Entry 0's notification type: SEA -> GPIO.
        t[hest::ENTRIES_OFFSET + 32] = 7;
        fix_checksum(&mut t);
        out.push(("changed_notification".to_string(), t, e));
    }
    if let Some((_, mut t, e)) = find("arm64_gpio_8vcpu_4k") {
        let last = t.len() - hest::GHES_V2_LEN;
        t[last] = 99;
        fix_checksum(&mut t);
        out.push(("unknown_subtable".to_string(), t, e));
    }
    out
}

fn write_all(dir: &Path, set: &[(String, Vec<u8>, String)]) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, table, expect) in set {
        for (ext, bytes) in [("aml", table.as_slice()), ("expect", expect.as_bytes())] {
            let path = dir.join(format!("{name}.{ext}"));
            fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

fn run(out: &Path) -> Result<(), String> {
    let mut good = Vec::new();
    for s in samples() {
        let layout = RegionLayout::new(GuestAddress(s.base), s.num_sync, s.block_len)
            .map_err(|e| format!("{}: {e}", s.name))?;
        let table = layout
            .hest(s.notifications)
            .map_err(|e| format!("{}: {e}", s.name))?;
        let mut expect = format!("count {}\n", layout.num_sources());
        for id in layout.sources() {
            let e = layout
                .ghes_v2_source(id, s.notifications)
                .map_err(|e| format!("{}: {e}", s.name))?;
            let poll = match e.notification {
                hest::Notification::Polled { interval_ms } => interval_ms,
                _ => 0,
            };
            // Writing to a String cannot fail.
            let _ = writeln!(
                expect,
                "{} {} {:#x} {:#x} {} {}",
                e.source_id,
                e.notification.kind() as u8,
                e.error_status_address,
                e.read_ack_address,
                e.block_len,
                poll
            );
        }
        good.push((s.name.to_string(), table, expect));
    }
    write_all(out, &good)?;
    write_all(&out.join("negative"), &negatives(&good))
}

fn main() {
    let Some(out) = env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: hest_samples <out-dir>");
        process::exit(2);
    };
    if let Err(e) = run(&out) {
        eprintln!("hest_samples: {e}");
        process::exit(1);
    }
}
