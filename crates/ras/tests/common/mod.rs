// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! What the engine's integration tests share: the region layout, the
//! expected bytes, guest memory and a guest that acknowledges, engines and
//! reports. Each test file uses a part of it.

#![allow(dead_code)]

use ras::config::RasConfig;
use ras::cper::{DataEntry, Severity};
use ras::engine::RasEngine;
use ras::error_source::{SourceId, SourceTarget};
use ras::event::RasEvent;
use ras::granule::GpaGranule;
use ras::report::{ErrorCause, ErrorReport, FoundBy, Origin};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

pub const RAM: u64 = 0x4000_0000;
pub const RAM_LEN: usize = 4 << 20;
pub const REGION: u64 = 0x0900_0000;
pub const REGION_LEN: usize = 256 << 10;
/// 2026-11-24T18:33:20Z.
pub const UNIX: u64 = 1_795_545_200;
/// `UNIX` as a CPER timestamp (UEFI 2.10 N.2.1): BCD seconds, minutes,
/// hours, flags (precise), day, month, year, century.
pub const TIMESTAMP: [u8; 8] = [0x20, 0x33, 0x18, 0x01, 0x24, 0x11, 0x26, 0x20];

// ---------------------------------------------------------------------
// The region layout, from error_source's module documentation.

pub fn esa_register(i: u64) -> u64 {
    REGION + 16 * i
}

pub fn ack_register(i: u64) -> u64 {
    REGION + 16 * i + 8
}

/// Block of source `i` among `sources`, each `block_len` long.
pub fn block_at(sources: u64, i: u64, block_len: u64) -> u64 {
    REGION + (16 * sources).div_ceil(64) * 64 + block_len * i
}

/// With the default 1024-byte blocks.
pub fn block(sources: u64, i: u64) -> u64 {
    block_at(sources, i, 1024)
}

// ---------------------------------------------------------------------
// Expected bytes.

/// A Generic Error Status Block (ACPI 6.5 Table 18.19) with one Generic
/// Error Data Entry (Table 18.20, revision 0x300, timestamp valid) holding
/// a Platform Memory Error section (UEFI 2.10 N.2.5: physical address,
/// mask and error type valid; multi-bit ECC).
pub fn memory_block_bytes(pa: u64, mask: u64, severity: u32, flags: u8) -> Vec<u8> {
    // Block status: one entry (bits 4..13), and bit 0 (uncorrectable)
    // for recoverable (0) / fatal (1), bit 1 (correctable) for corrected
    // (2), neither for informational (3).
    let valid = [0x1, 0x1, 0x2, 0x0][severity as usize];
    let mut b = Vec::new();
    b.extend_from_slice(&(0x10u32 | valid).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // raw data offset
    b.extend_from_slice(&0u32.to_le_bytes()); // raw data length
    b.extend_from_slice(&152u32.to_le_bytes()); // data length: 72 + 80
    b.extend_from_slice(&severity.to_le_bytes());
    // Data entry: section type A5BC1114-6F64-4EDE-B863-3E83ED7C83B1.
    b.extend_from_slice(&[
        0x14, 0x11, 0xbc, 0xa5, 0x64, 0x6f, 0xde, 0x4e, 0xb8, 0x63, 0x3e, 0x83, 0xed, 0x7c, 0x83,
        0xb1,
    ]);
    b.extend_from_slice(&severity.to_le_bytes());
    b.extend_from_slice(&[0x00, 0x03, 0x04, flags]); // revision, valid: timestamp, flags
    b.extend_from_slice(&80u32.to_le_bytes());
    b.extend_from_slice(&[0u8; 36]); // FRU id + text
    b.extend_from_slice(&TIMESTAMP);
    // Memory error section.
    b.extend_from_slice(&0x4006u64.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes()); // error status
    b.extend_from_slice(&pa.to_le_bytes());
    b.extend_from_slice(&mask.to_le_bytes());
    b.extend_from_slice(&[0u8; 40]); // node .. target id
    b.push(3); // multi-bit ECC
    b.extend_from_slice(&[0u8; 7]);
    assert_eq!(b.len(), 172);
    b
}

/// What the engine writes for lost memory: recoverable, primary.
pub fn recoverable(pa: u64, mask: u64) -> Vec<u8> {
    memory_block_bytes(pa, mask, 0, 0x01)
}

pub const MASK_4K: u64 = 0xffff_ffff_ffff_f000;
pub const MASK_2M: u64 = 0xffff_ffff_ffe0_0000;

// ---------------------------------------------------------------------
// Guest memory and the guest.

pub fn memory() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[
        (GuestAddress(REGION), REGION_LEN),
        (GuestAddress(RAM), RAM_LEN),
    ])
    .unwrap()
}

pub fn read(mem: &GuestMemoryMmap, addr: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    mem.read_slice(&mut v, GuestAddress(addr)).unwrap();
    v
}

pub fn read_u64(mem: &GuestMemoryMmap, addr: u64) -> u64 {
    u64::from_le_bytes(read(mem, addr, 8).try_into().unwrap())
}

/// The first `expected.len()` bytes of the block at `addr` are `expected`,
/// the rest of the `block_len`-byte block is zero.
pub fn assert_block(mem: &GuestMemoryMmap, addr: u64, expected: &[u8]) {
    let got = read(mem, addr, 1024);
    assert_eq!(got[..expected.len()], *expected, "block at {addr:#x}");
    assert!(
        got[expected.len()..].iter().all(|b| *b == 0),
        "bytes after the record at {addr:#x}"
    );
}

pub fn assert_empty_block(mem: &GuestMemoryMmap, addr: u64) {
    assert_eq!(read(mem, addr, 1024), vec![0; 1024], "block at {addr:#x}");
}

/// Linux's GHES driver after reading source `i`'s record: clear
/// block_status, then set the ack register to `(ack & 0xfffffffe) | 1`.
pub fn guest_ack(mem: &GuestMemoryMmap, sources: u64, i: u64) {
    mem.write_slice(&[0; 4], GuestAddress(block(sources, i)))
        .unwrap();
    let ack = read_u64(mem, ack_register(i));
    let v = (ack & 0xffff_fffe) | 1;
    mem.write_slice(&v.to_le_bytes(), GuestAddress(ack_register(i)))
        .unwrap();
}

// ---------------------------------------------------------------------
// Engines and reports.

pub fn engine(cfg: RasConfig, vcpus: u32, mem: &GuestMemoryMmap) -> RasEngine {
    let mut e = RasEngine::new(cfg, GuestAddress(REGION), vcpus).unwrap();
    e.init(mem).unwrap();
    e
}

pub fn g(base: u64, shift: u8) -> GpaGranule {
    GpaGranule::containing(GuestAddress(base), shift).unwrap()
}

pub fn at(cause: ErrorCause, t: u64) -> ErrorReport {
    ErrorReport {
        cause,
        unix_time: UNIX,
        monotonic_ms: t,
    }
}

pub fn sigbus(vcpu: u32, granule: GpaGranule, t: u64) -> ErrorReport {
    at(
        ErrorCause::Consumed {
            vcpu,
            origin: Origin::Sigbus,
            granule: Some(granule),
            page: None,
            gva: None,
        },
        t,
    )
}

/// A `SIGBUS` consumption of `granule` that names the 4 KiB `page` the
/// vCPU accessed (si_addr's page).
pub fn sigbus_page(vcpu: u32, granule: GpaGranule, page: GpaGranule, t: u64) -> ErrorReport {
    at(
        ErrorCause::Consumed {
            vcpu,
            origin: Origin::Sigbus,
            granule: Some(granule),
            page: Some(page),
            gva: None,
        },
        t,
    )
}

pub fn ao(granule: GpaGranule, t: u64) -> ErrorReport {
    at(
        ErrorCause::Announced {
            granule,
            found_by: FoundBy::HostSignal,
        },
        t,
    )
}

pub fn injected(target: SourceTarget, entry: DataEntry) -> ErrorReport {
    at(ErrorCause::Injected { target, entry }, 0)
}

/// The event of [`ao`]'s report.
pub fn announced_event(granule: GpaGranule) -> RasEvent {
    RasEvent::Announced {
        granule,
        found_by: FoundBy::HostSignal,
    }
}

pub fn consumed_event(vcpu: u32, granule: GpaGranule) -> RasEvent {
    RasEvent::Consumed {
        vcpu,
        origin: Origin::Sigbus,
        granule: Some(granule),
        gva: None,
    }
}

pub fn written(source: u16, target: SourceTarget, granule: GpaGranule) -> RasEvent {
    RasEvent::RecordWritten {
        source: SourceId(source),
        target,
        granule: Some(granule),
        severity: Severity::Recoverable,
    }
}

/// The events of [`ao`]'s report when the asynchronous source (source 1
/// of a one-vCPU VM) is free: announced, written there, marked poisoned.
pub fn announced_and_written(granule: GpaGranule) -> Vec<RasEvent> {
    vec![
        announced_event(granule),
        written(1, SourceTarget::Async, granule),
        poisoned(granule),
    ]
}

/// A record queued on the asynchronous source (source 1 of a one-vCPU VM).
pub fn queued_async(depth: usize) -> RasEvent {
    RasEvent::RecordQueued {
        source: SourceId(1),
        target: SourceTarget::Async,
        depth,
    }
}

/// The queued record of the asynchronous source written.
pub fn queued_async_written() -> RasEvent {
    RasEvent::QueuedRecordWritten {
        source: SourceId(1),
    }
}

pub fn poisoned(granule: GpaGranule) -> RasEvent {
    RasEvent::PagePoisoned {
        granule,
        absorbed: 0,
    }
}

pub fn config(f: impl FnOnce(&mut RasConfig)) -> RasConfig {
    let mut c = RasConfig::default();
    f(&mut c);
    c
}
