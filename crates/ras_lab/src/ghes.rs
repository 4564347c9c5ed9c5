// SPDX-License-Identifier: Apache-2.0
//! The guest-visible error sources: HEST (built by `ras::hest`), Error
//! Status Address registers, read-ack registers and status blocks, and
//! the record writer the VMM uses on a memory error.
//!
//! Layout: sources 0..SYNC_SOURCES are SEA (synchronous) sources, the last
//! one is the asynchronous (GPIO-notified) source. A source is free when
//! its read-ack register is non-zero (initial value 1, as QEMU): writing a
//! record sets it to 0, the guest's GHESv2 ack sets it back.

use ras::hest::{GhesV2Source, HestBuilder, Notification};
use std::fmt;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::guest;
use crate::vmm::{LabError, Result};

pub const SYNC_SOURCES: u16 = 4;
pub const ASYNC_SOURCE: u16 = SYNC_SOURCES;
pub const SOURCES: u16 = SYNC_SOURCES + 1;

/// Memory error section GUID A5BC1114-6F64-4EDE-B863-3E83ED7C83B1.
const MEM_GUID: [u8; 16] = [
    0x14, 0x11, 0xbc, 0xa5, 0x64, 0x6f, 0xde, 0x4e, 0xb8, 0x63, 0x3e, 0x83, 0xed, 0x7c, 0x83, 0xb1,
];

pub fn esa_reg(s: u16) -> u64 {
    guest::GHES_REGS + 16 * u64::from(s)
}
pub fn ack_reg(s: u16) -> u64 {
    guest::GHES_REGS + 16 * u64::from(s) + 8
}
pub fn block(s: u16) -> u64 {
    guest::GHES_BLOCKS + guest::BLOCK_LEN * u64::from(s)
}

/// A decoded record (what the VMM reads back for the story and checks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub block_status: u32,
    pub severity: u32,
    pub section_severity: u32,
    pub validation: u64,
    pub pa: u64,
    pub pa_mask: u64,
}

impl fmt::Display for Decoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "block_status {:#x}, severity {} ({}), memory error section: validation {:#x}, physical_address {:#x}, mask {:#x}",
            self.block_status,
            self.severity,
            if self.severity == 0 {
                "recoverable"
            } else {
                "other"
            },
            self.validation,
            self.pa,
            self.pa_mask
        )
    }
}

pub struct Ghes {
    busy: [bool; SOURCES as usize],
}

fn mem_err(e: impl fmt::Display) -> LabError {
    LabError::Memory(e.to_string())
}

impl Ghes {
    /// Write the HEST and the registers into guest memory.
    pub fn install(mem: &GuestMemoryMmap) -> Result<Ghes> {
        let mut b = HestBuilder::new();
        for s in 0..SOURCES {
            let n = if s == ASYNC_SOURCE {
                Notification::Gpio
            } else {
                Notification::Sea
            };
            b = b.add_ghes_v2(GhesV2Source::new(
                s,
                n,
                esa_reg(s),
                ack_reg(s),
                guest::BLOCK_LEN as u32,
            ));
        }
        let hest = b.build().map_err(mem_err)?;
        mem.write_slice(&hest, GuestAddress(guest::HEST_ADDR))
            .map_err(mem_err)?;
        for s in 0..SOURCES {
            mem.write_obj(block(s), GuestAddress(esa_reg(s)))
                .map_err(mem_err)?;
            mem.write_obj(1u64, GuestAddress(ack_reg(s)))
                .map_err(mem_err)?;
            mem.write_slice(&[0u8; guest::BLOCK_LEN as usize], GuestAddress(block(s)))
                .map_err(mem_err)?;
        }
        Ok(Ghes {
            busy: [false; SOURCES as usize],
        })
    }

    fn free(mem: &GuestMemoryMmap, s: u16) -> bool {
        mem.read_obj::<u64>(GuestAddress(ack_reg(s)))
            .map(|v| v != 0)
            .unwrap_or(false)
    }

    /// Record a recoverable memory error for the granule at `gpa` (2^lsb
    /// bytes) in a free synchronous source; `None` if all are unacked.
    pub fn write_sync(&mut self, mem: &GuestMemoryMmap, gpa: u64, lsb: u16) -> Result<Option<u16>> {
        for s in 0..SYNC_SOURCES {
            if Self::free(mem, s) {
                self.write(mem, s, gpa, lsb)?;
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// Record in the asynchronous source (`false` if it is still unacked).
    pub fn write_async(&mut self, mem: &GuestMemoryMmap, gpa: u64, lsb: u16) -> Result<bool> {
        if !Self::free(mem, ASYNC_SOURCE) {
            return Ok(false);
        }
        self.write(mem, ASYNC_SOURCE, gpa, lsb)?;
        Ok(true)
    }

    fn write(&mut self, mem: &GuestMemoryMmap, s: u16, gpa: u64, lsb: u16) -> Result<()> {
        let rec = memory_record(gpa, lsb);
        let b = block(s);
        // Body first, block_status last: the guest keys on block_status.
        mem.write_slice(&rec[4..], GuestAddress(b + 4))
            .map_err(mem_err)?;
        mem.write_slice(&rec[..4], GuestAddress(b))
            .map_err(mem_err)?;
        mem.write_obj(0u64, GuestAddress(ack_reg(s)))
            .map_err(mem_err)?;
        self.busy[s as usize] = true;
        Ok(())
    }

    /// Sources whose record the guest has acknowledged since the last call.
    pub fn poll_acks(&mut self, mem: &GuestMemoryMmap) -> Vec<u16> {
        let mut v = Vec::new();
        for s in 0..SOURCES {
            if self.busy[s as usize] && Self::free(mem, s) {
                self.busy[s as usize] = false;
                v.push(s);
            }
        }
        v
    }

    pub fn busy(&self, s: u16) -> bool {
        self.busy[s as usize]
    }

    /// Decode the record currently in source `s` (the lab's own reader).
    pub fn decode(mem: &GuestMemoryMmap, s: u16) -> Decoded {
        let b = block(s);
        let r32 = |off: u64| mem.read_obj::<u32>(GuestAddress(b + off)).unwrap_or(0);
        let r64 = |off: u64| u64::from(r32(off)) | (u64::from(r32(off + 4)) << 32);
        Decoded {
            block_status: r32(0),
            severity: r32(16),
            section_severity: r32(20 + 16),
            validation: r64(92),
            pa: r64(92 + 16),
            pa_mask: r64(92 + 24),
        }
    }
}

/// Generic Error Status Block (20 bytes) + one Generic Error Data Entry
/// (revision 0x300, 72 bytes) + Platform Memory Error section (80 bytes),
/// severity recoverable, PA and PA-mask valid.
pub fn memory_record(gpa: u64, lsb: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(172);
    let entry_count = 1u32;
    v.extend_from_slice(&(1u32 | (entry_count << 4)).to_le_bytes()); // uncorrectable valid
    v.extend_from_slice(&0u32.to_le_bytes()); // raw data offset
    v.extend_from_slice(&0u32.to_le_bytes()); // raw data length
    v.extend_from_slice(&(72u32 + 80).to_le_bytes()); // data length
    v.extend_from_slice(&0u32.to_le_bytes()); // severity: recoverable
    // Generic Error Data Entry.
    v.extend_from_slice(&MEM_GUID);
    v.extend_from_slice(&0u32.to_le_bytes()); // severity recoverable
    v.extend_from_slice(&0x300u16.to_le_bytes()); // revision
    v.push(0); // validation bits
    v.push(1); // flags: primary
    v.extend_from_slice(&80u32.to_le_bytes()); // error data length
    v.extend_from_slice(&[0u8; 16]); // FRU id
    v.extend_from_slice(&[0u8; 20]); // FRU text
    v.extend_from_slice(&0u64.to_le_bytes()); // timestamp
    // Memory error section.
    let mut sec = [0u8; 80];
    sec[0..8].copy_from_slice(&0x6u64.to_le_bytes()); // PA | PA mask
    sec[16..24].copy_from_slice(&gpa.to_le_bytes());
    sec[24..32].copy_from_slice(&(!((1u64 << lsb) - 1)).to_le_bytes());
    v.extend_from_slice(&sec);
    v
}
