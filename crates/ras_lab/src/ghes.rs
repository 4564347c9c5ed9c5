// SPDX-License-Identifier: Apache-2.0
//! The lab's own reader of a Generic Error Status Block holding one memory
//! error section (ACPI 6.5 18.3.2.7.1, UEFI N.2.5): an independent check of
//! what the engine wrote, and the "decoded record" of the story.

use std::fmt;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// Memory error section GUID A5BC1114-6F64-4EDE-B863-3E83ED7C83B1.
pub const MEM_GUID: [u8; 16] = [
    0x14, 0x11, 0xbc, 0xa5, 0x64, 0x6f, 0xde, 0x4e, 0xb8, 0x63, 0x3e, 0x83, 0xed, 0x7c, 0x83, 0xb1,
];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub block_status: u32,
    pub data_length: u32,
    pub severity: u32,
    pub memory_section: bool,
    pub revision: u16,
    pub validation: u64,
    pub pa: u64,
    pub pa_mask: u64,
}

impl fmt::Display for Decoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "block_status {:#x}, severity {} ({}), {} rev {:#x}: validation {:#x}, physical_address {:#x}, mask {:#x}",
            self.block_status,
            self.severity,
            if self.severity == 0 {
                "recoverable"
            } else {
                "NOT recoverable"
            },
            if self.memory_section {
                "memory error section"
            } else {
                "OTHER section"
            },
            self.revision,
            self.validation,
            self.pa,
            self.pa_mask
        )
    }
}

/// Decode the block at `block` (block_status is 0 once the guest acked).
pub fn decode(mem: &GuestMemoryMmap, block: u64) -> Decoded {
    let r32 = |off: u64| mem.read_obj::<u32>(GuestAddress(block + off)).unwrap_or(0);
    let r64 = |off: u64| u64::from(r32(off)) | (u64::from(r32(off + 4)) << 32);
    let mut guid = [0u8; 16];
    let _ = mem.read_slice(&mut guid, GuestAddress(block + 20));
    let revision = mem
        .read_obj::<u16>(GuestAddress(block + 20 + 20))
        .unwrap_or(0);
    // Data entry header: 72 bytes from revision 0x300, 64 before.
    let sec = 20 + if revision >= 0x300 { 72 } else { 64 };
    Decoded {
        block_status: r32(0),
        data_length: r32(12),
        severity: r32(16),
        memory_section: guid == MEM_GUID,
        revision,
        validation: r64(sec),
        pa: r64(sec + 16),
        pa_mask: r64(sec + 24),
    }
}
