// SPDX-License-Identifier: Apache-2.0
//! The bare-metal L2 guest: memory layout and machine code.
//!
//! The guest runs at EL1 with the MMU off (VA == IPA, data accesses are
//! Device memory, so every access is naturally aligned). Each vCPU owns a
//! control block (`VCPU_BLOCK`): the VMM writes its work list there, the
//! guest writes what its exception vector saw.
//!
//! Main loop, per work item `a`:
//! - `a & 1 == 0`: `ldr x1, [a]` (the load that may hit poisoned memory),
//!   then report the value with an MMIO write to `MMIO_LOADED`;
//! - `a & 1 == 1`: `blr a-1` (call code at `a-1`, used to fetch
//!   instructions from a poisoned page).
//!
//! At the end: if deferred acks were requested, acknowledge every pending
//! status block; then an MMIO write to `MMIO_DONE`.
//!
//! The synchronous exception vector (VBAR_EL1 + 0x200, current EL with
//! SP_ELx) records ESR/FAR/ELR/SPSR_EL1 into the next abort record, checks
//! that ESR is a synchronous external abort (EC, FSC 0x10), walks
//! the HEST the VMM placed in memory (entry -> Error Status Address
//! register -> status block), finds a valid block whose memory-error
//! section covers FAR (`(FAR ^ PA) & mask == 0`), records PA and mask,
//! clears `block_status` and writes the GHESv2 read-ack register
//! (`ack = (ack & preserve) | write`), then resumes at ELR + 4 (data abort)
//! or at the caller (instruction abort: ELR is the unreadable target, so it
//! returns through x30). Every other vector reports `MMIO_UNEXPECTED`.

use std::fmt;

use ras_edge::arch::aarch64::sea::Esr;

use crate::asm::{self, Asm, EQ, XZR};

/// Guest RAM (memslot 0).
pub const RAM_BASE: u64 = 0x4000_0000;
pub const RAM_SIZE: usize = 4 << 20;
/// Optional hugetlb-backed RAM (memslot 1), one 2 MiB page.
pub const HUGE_BASE: u64 = 0x8000_0000;
pub const HUGE_SIZE: usize = 2 << 20;
/// Not backed by a memslot: accesses exit to the VMM.
pub const MMIO_BASE: u64 = 0x1000_0000;
pub const MMIO_DONE: u64 = 0x00;
pub const MMIO_LOADED: u64 = 0x08;
pub const MMIO_ABORT: u64 = 0x10;
pub const MMIO_UNEXPECTED: u64 = 0x18;
/// "I acknowledged records: service the sources" (queued records land).
pub const MMIO_SERVICE: u64 = 0x20;

pub const CODE: u64 = RAM_BASE;
pub const VECTORS_OFF: u64 = 0x800;
/// Per-vCPU control blocks, 4 KiB each.
pub const VCPU_BLOCK: u64 = RAM_BASE + 0x1_0000;
pub const HEST_ADDR: u64 = RAM_BASE + 0x2_0000;
/// Pages the scenarios poison.
pub const DATA: u64 = RAM_BASE + 0x10_0000;

// Control block fields (offsets).
pub const CB_NWORK: u64 = 0x00;
pub const CB_DEFER: u64 = 0x08;
pub const CB_HEST: u64 = 0x10;
pub const CB_NABORT: u64 = 0x18;
pub const CB_NLOADED: u64 = 0x20;
pub const CB_FINAL: u64 = 0x40; // a record used by the deferred-ack pass
pub const CB_WORK: u64 = 0x100; // u64 work items, up to 16
pub const CB_RECS: u64 = 0x200; // abort records, REC_LEN bytes each, up to 8
pub const REC_LEN: u64 = 128;
pub const MAX_WORK: usize = 16;
pub const MAX_RECS: u64 = 8;

// Abort record fields.
pub const R_ESR: u64 = 0;
pub const R_FAR: u64 = 8;
pub const R_ELR: u64 = 16;
pub const R_SPSR: u64 = 24;
pub const R_PA: u64 = 32;
pub const R_MASK: u64 = 40;
pub const R_MATCHED: u64 = 48;
pub const R_ACKED: u64 = 56;
/// The guest's own verdict on the syndrome: 1 when ESR_EL1 is a
/// synchronous external abort (EC 0x20/0x21/0x24/0x25, FSC 0x10).
pub const R_ESR_OK: u64 = 64;

/// One abort record as the guest's vector wrote it (the `R_*` fields).
#[derive(Clone, Copy, Debug)]
pub struct AbortRecord {
    /// ESR_EL1 as the guest read it (decoded by the edge's [`Esr`]; the
    /// scenarios compare its fields with the ARM ARM's values).
    pub esr: Esr,
    pub far: u64,
    pub elr: u64,
    pub spsr: u64,
    pub pa: u64,
    pub mask: u64,
    pub matched: u64,
    pub acked: u64,
    pub esr_ok: u64,
}

impl fmt::Display for AbortRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ESR_EL1 {:#x} (EC {:#x}, FSC {:#x}) FAR_EL1 {:#x} ELR_EL1 {:#x} SPSR_EL1 {:#x}; status block PA {:#x} mask {:#x}, matched {}, acked {}, guest ESR check {}",
            self.esr.0,
            self.esr.ec(),
            self.esr.fsc(),
            self.far,
            self.elr,
            self.spsr,
            self.pa,
            self.mask,
            self.matched,
            self.acked,
            if self.esr_ok == 1 { "ok" } else { "FAILED" },
        )
    }
}

// HEST / GHESv2 / CPER offsets the guest code follows.
const HEST_COUNT: u32 = 36;
const HEST_FIRST: u32 = 40;
const GHESV2_LEN: u32 = 92;
const GHES_ESA_ADDR: u32 = 20 + 4;
const GHES_ACK_ADDR: u32 = 64 + 4;
const GHES_ACK_PRESERVE: u32 = 76;
const GHES_ACK_WRITE: u32 = 84;
/// Status block (20) + data entry header rev 0x300 (72) + PA field (16).
const BLOCK_PA: u32 = 20 + 72 + 16;
const BLOCK_PA_MASK: u32 = BLOCK_PA + 8;

/// The assembled guest and the addresses the checks need.
pub struct Program {
    pub words: Vec<u32>,
    /// Address of the `ldr x1, [x0]` that may fault.
    pub load_insn: u64,
    /// VBAR_EL1 the guest installs.
    #[allow(dead_code)]
    pub vbar: u64,
}

/// Registers on entry: x20 = control block, x23 = MMIO base.
pub fn program() -> Program {
    // Register use: x20 control block, x21 items left, x22 next item,
    // x23 MMIO base, x24 final-pass count (all preserved by the handler);
    // x0..x19 scratch;
    // x30 link (saved in x8 by the handler).
    let mut a = Asm::new(CODE);
    a.label("entry");
    a.mov64(0, CODE + VECTORS_OFF);
    a.emit(asm::msr(asm::VBAR_EL1, 0));
    a.emit(asm::ISB);
    a.emit(asm::ldr_x(21, 20, CB_NWORK as u32));
    a.emit(asm::add_imm(22, 20, CB_WORK as u32));
    a.label("loop");
    a.cbz(21, "done");
    a.emit(asm::ldr_x(0, 22, 0));
    a.emit(asm::add_imm(22, 22, 8));
    a.emit(asm::sub_imm(21, 21, 1));
    a.tbnz(0, 0, "call");
    a.label("load");
    a.emit(asm::ldr_x(1, 0, 0));
    a.emit(asm::str_x(1, 23, MMIO_LOADED as u32));
    a.emit(asm::ldr_x(2, 20, CB_NLOADED as u32));
    a.emit(asm::add_imm(2, 2, 1));
    a.emit(asm::str_x(2, 20, CB_NLOADED as u32));
    a.b("loop");
    a.label("call");
    a.emit(asm::sub_imm(0, 0, 1));
    a.emit(asm::blr(0));
    a.b("loop");
    a.label("done");
    // Deferred acks (mode 2): acknowledge everything pending, ask the VMM
    // to service the sources (a queued record may land), repeat until a
    // pass acknowledges nothing new. x24 = acks counted so far.
    a.emit(asm::ldr_x(10, 20, CB_DEFER as u32));
    a.cbz(10, "finish");
    a.emit(asm::mov(24, XZR));
    a.label("final_pass");
    a.mov64(10, 2);
    a.emit(asm::add_imm(12, 20, CB_FINAL as u32));
    a.emit(asm::mov(3, XZR));
    a.bl("scan");
    a.emit(asm::str_x(20, 23, MMIO_SERVICE as u32));
    a.emit(asm::ldr_x(9, 20, (CB_FINAL + R_ACKED) as u32));
    a.emit(asm::cmp(9, 24));
    a.b_cond(EQ, "finish");
    a.emit(asm::mov(24, 9));
    a.b("final_pass");
    a.label("finish");
    a.emit(asm::str_x(20, 23, MMIO_DONE as u32));
    a.label("halt");
    a.b("halt");

    // Vector table: 16 slots of 0x80 bytes.
    a.align(0x800);
    let vbar = a.here();
    assert_eq!(vbar, CODE + VECTORS_OFF);
    for slot in 0..16u32 {
        let start = a.here();
        if slot == 4 {
            a.b("sync");
        } else {
            a.mov64(0, u64::from(slot) * 0x80);
            a.emit(asm::str_x(0, 23, MMIO_UNEXPECTED as u32));
            a.label_unique_halt();
        }
        while a.here() < start + 0x80 {
            a.emit(asm::NOP);
        }
    }

    // Synchronous exception handler.
    a.label("sync");
    a.emit(asm::mov(8, 30));
    a.emit(asm::ldr_x(9, 20, CB_NABORT as u32));
    a.emit(asm::cmp_imm(9, (MAX_RECS - 1) as u32));
    a.b_cond(asm::LO, "slot_ok");
    a.mov64(9, MAX_RECS - 1); // keep writing the last record
    a.label("slot_ok");
    a.emit(asm::add_imm(12, 20, CB_RECS as u32));
    a.emit(asm::add_lsl(12, 12, 9, 7)); // * REC_LEN
    a.emit(asm::mrs(2, asm::ESR_EL1));
    a.emit(asm::str_x(2, 12, R_ESR as u32));
    a.emit(asm::mrs(3, asm::FAR_EL1));
    a.emit(asm::str_x(3, 12, R_FAR as u32));
    a.emit(asm::mrs(4, asm::ELR_EL1));
    a.emit(asm::str_x(4, 12, R_ELR as u32));
    a.emit(asm::mrs(5, asm::SPSR_EL1));
    a.emit(asm::str_x(5, 12, R_SPSR as u32));
    // Check the syndrome: FSC 0x10 and EC one of the abort classes.
    a.emit(asm::str_x(XZR, 12, R_ESR_OK as u32));
    a.emit(asm::ubfx(6, 2, 26, 6));
    a.emit(asm::ubfx(7, 2, 0, 6));
    a.emit(asm::cmp_imm(7, 0x10));
    a.b_cond(asm::NE, "esr_done");
    for ec in [0x20, 0x21, 0x24, 0x25] {
        a.emit(asm::cmp_imm(6, ec));
        a.b_cond(EQ, "esr_ok");
    }
    a.b("esr_done");
    a.label("esr_ok");
    a.mov64(7, 1);
    a.emit(asm::str_x(7, 12, R_ESR_OK as u32));
    a.label("esr_done");
    a.emit(asm::str_x(XZR, 12, R_MATCHED as u32));
    a.emit(asm::str_x(XZR, 12, R_ACKED as u32));
    a.emit(asm::ldr_x(10, 20, CB_DEFER as u32)); // mode 0 (ack) or 1 (defer)
    a.bl("scan");
    // nabort += 1, tell the VMM.
    a.emit(asm::ldr_x(9, 20, CB_NABORT as u32));
    a.emit(asm::add_imm(9, 9, 1));
    a.emit(asm::str_x(9, 20, CB_NABORT as u32));
    a.emit(asm::str_x(9, 23, MMIO_ABORT as u32));
    // Resume: instruction abort (EC 0x21) returns to the caller.
    a.emit(asm::mrs(2, asm::ESR_EL1));
    a.emit(asm::ubfx(6, 2, 26, 6));
    a.emit(asm::cmp_imm(6, 0x21));
    a.b_cond(EQ, "iabt");
    a.emit(asm::mrs(4, asm::ELR_EL1));
    a.emit(asm::add_imm(4, 4, 4));
    a.b("resume");
    a.label("iabt");
    a.emit(asm::mov(4, 8));
    a.label("resume");
    a.emit(asm::msr(asm::ELR_EL1, 4));
    a.emit(asm::mov(30, 8));
    a.emit(asm::ERET);

    // scan(x3 = FAR, x10 = mode, x12 = record): walk the HEST entries.
    // mode 0: record + ack the block covering FAR; 1: record only;
    // 2: ack every valid block (count in record.acked).
    a.label("scan");
    a.emit(asm::ldr_x(11, 20, CB_HEST as u32));
    a.emit(asm::ldr_w(13, 11, HEST_COUNT));
    a.emit(asm::add_imm(14, 11, HEST_FIRST));
    a.label("scan_loop");
    a.cbz(13, "scan_end");
    a.ld64_a4(15, 16, 14, GHES_ESA_ADDR); // x15 = ESA register address
    a.emit(asm::ldr_x(15, 15, 0)); // x15 = status block address
    a.emit(asm::ldr_w(16, 15, 0)); // block_status
    a.cbz(16, "scan_next");
    a.emit(asm::cmp_imm(10, 2));
    a.b_cond(EQ, "scan_ack");
    a.ld64_a4(17, 18, 15, BLOCK_PA);
    a.ld64_a4(18, 19, 15, BLOCK_PA_MASK);
    a.emit(asm::eor(19, 3, 17));
    a.emit(asm::and(19, 19, 18));
    a.cbnz(19, "scan_next");
    a.emit(asm::str_x(17, 12, R_PA as u32));
    a.emit(asm::str_x(18, 12, R_MASK as u32));
    a.emit(asm::ldr_x(19, 12, R_MATCHED as u32));
    a.emit(asm::add_imm(19, 19, 1));
    a.emit(asm::str_x(19, 12, R_MATCHED as u32));
    a.cbnz(10, "scan_next"); // mode 1: leave it pending
    a.label("scan_ack");
    a.emit(asm::str_w(XZR, 15, 0)); // block_status = 0
    a.ld64_a4(15, 16, 14, GHES_ACK_ADDR); // x15 = read-ack register address
    a.emit(asm::ldr_x(16, 15, 0));
    a.ld64_a4(17, 18, 14, GHES_ACK_PRESERVE);
    a.emit(asm::and(16, 16, 17));
    a.ld64_a4(17, 18, 14, GHES_ACK_WRITE);
    a.emit(asm::orr_lsl(16, 16, 17, 0));
    a.emit(asm::str_x(16, 15, 0));
    a.emit(asm::ldr_x(19, 12, R_ACKED as u32));
    a.emit(asm::add_imm(19, 19, 1));
    a.emit(asm::str_x(19, 12, R_ACKED as u32));
    a.label("scan_next");
    a.emit(asm::add_imm(14, 14, GHESV2_LEN));
    a.emit(asm::sub_imm(13, 13, 1));
    a.b("scan_loop");
    a.label("scan_end");
    a.emit(asm::RET);

    let load_insn = a.addr_of("load");
    let words = a.finish();
    Program {
        words,
        load_insn,
        vbar,
    }
}

/// Bytes of the program, little-endian.
pub fn bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_fits() {
        let p = program();
        assert!(p.words.len() * 4 < 0x1_0000);
        assert_eq!(p.vbar % 0x800, 0);
        assert!(p.load_insn > CODE && p.load_insn < p.vbar);
    }
}
