// SPDX-License-Identifier: Apache-2.0
//! The bare-metal L2 guest: memory layout and machine code.
//!
//! 32-bit protected mode, flat segments, no paging (GVA == GPA), set up by
//! the VMM through `KVM_SET_SREGS` (GDT at [`GDT`], IDT at [`IDT`]). It
//! talks to the VMM through I/O ports (each `out` is a `KVM_EXIT_IO`) and a
//! parameter block at [`PARAMS`] that the VMM fills before the first run.
//!
//! Main program:
//! 1. if `P_CR4_MCE`: set `CR4.MCE`; report CR4 (`PORT_CR4`);
//! 2. `PORT_READY` (the VMM may inject a machine check here);
//! 3. for each of the `P_NLOADS` addresses at `P_LOADS`: `mov eax, [ebx]`
//!    (label `load`: the access that may hit a poisoned page), then report
//!    the value (`PORT_LOADED`); label `after_load`;
//! 4. if `P_POLL`: loop `PORT_POLL` until `P_STOP` != 0;
//! 5. if `P_FINAL_DUMP`: report the MSRs listed at `P_MSRS` (context 2);
//! 6. `PORT_DONE`, `hlt`.
//!
//! Machine-check handler (IDT vector 18, an interrupt gate): reports the
//! EIP, CS and EFLAGS the #MC pushed, counts itself (`P_MC_COUNT`), reports
//! the MSRs listed at `P_MSRS` with `rdmsr` (context 1: `PORT_CTX` = 1,
//! then per MSR `PORT_MSR_SEL` = index, `PORT_MSR_LO`, `PORT_MSR_HI`); if
//! `P_MC_CLEAR`, writes 0 to the MSR at `P_CLEAR_MSR` (the bank's
//! `MCi_STATUS`) and to `IA32_MCG_STATUS` (clearing `MCIP`, as an OS
//! does); if `P_MC_SKIP`, resumes at `after_load` instead of the pushed
//! EIP (the consuming "process" is abandoned, as Linux kills it); if
//! `P_MC_STOP`, sets `P_STOP`; `PORT_MC_DONE`; `iretd`.
//!
//! Every other exception vector 0..31 reports its number on
//! `PORT_UNEXPECTED` and halts.

use ras_edge::arch::x86::mce::msr;

use crate::asm::{Asm, Reg};

/// Guest RAM, memslot 0 at GPA 0 (4 KiB host pages).
pub const RAM_SIZE: usize = 1 << 20;
/// Optional hugetlb-backed RAM (memslot 1): one 2 MiB page.
pub const HUGE_BASE: u64 = 0x4000_0000;
pub const HUGE_SIZE: usize = 2 << 20;

pub const GDT: u32 = 0x1000;
pub const IDT: u32 = 0x2000;
pub const PARAMS: u32 = 0x3000;
pub const STUBS: u32 = 0x4000;
pub const STACK_TOP: u32 = 0x9000;
pub const CODE: u32 = 0x1_0000;
/// Pages the scenarios poison: `DATA + n * 4096`.
pub const DATA: u32 = 0x4_0000;

pub const SEL_CODE: u16 = 0x08;
pub const SEL_DATA: u16 = 0x10;
pub const IDT_VECTORS: u32 = 32;
pub const MC_VECTOR: u32 = 18;

// I/O ports.
pub const PORT_READY: u16 = 0x10;
pub const PORT_POLL: u16 = 0x11;
pub const PORT_LOADED: u16 = 0x12;
pub const PORT_DONE: u16 = 0x13;
pub const PORT_CTX: u16 = 0x14;
pub const PORT_MSR_SEL: u16 = 0x18;
pub const PORT_MSR_LO: u16 = 0x1c;
pub const PORT_MSR_HI: u16 = 0x20;
pub const PORT_MC_EIP: u16 = 0x24;
pub const PORT_MC_CS: u16 = 0x28;
pub const PORT_MC_EFLAGS: u16 = 0x2c;
pub const PORT_MC_DONE: u16 = 0x30;
pub const PORT_UNEXPECTED: u16 = 0x34;
pub const PORT_CR4: u16 = 0x38;

// Parameter block fields (u32, offsets from PARAMS).
pub const P_CR4_MCE: u32 = 0x00;
pub const P_NLOADS: u32 = 0x04;
pub const P_LOADS: u32 = 0x08;
pub const MAX_LOADS: usize = 8;
pub const P_POLL: u32 = 0x28;
pub const P_STOP: u32 = 0x2c;
pub const P_MC_SKIP: u32 = 0x30;
pub const P_MC_CLEAR: u32 = 0x34;
pub const P_MC_STOP: u32 = 0x38;
pub const P_NMSR: u32 = 0x3c;
pub const P_MSRS: u32 = 0x40;
pub const MAX_MSRS: usize = 16;
pub const P_CLEAR_MSR: u32 = 0x80;
pub const P_MC_COUNT: u32 = 0x84;
pub const P_FINAL_DUMP: u32 = 0x88;

/// The assembled guest.
pub struct Program {
    pub code: Vec<u8>,
    /// The instruction after `out PORT_READY` (where a #MC injected at
    /// that exit is taken).
    pub after_ready: u32,
    /// The consuming load (`mov eax, [ebx]`).
    pub load: u32,
    pub after_load: u32,
    pub mc_handler: u32,
}

fn p(off: u32) -> u32 {
    PARAMS + off
}

/// Assembles the guest at [`CODE`].
pub fn program() -> Program {
    let mut a = Asm::new(CODE);
    // ---- main ----
    a.label("start");
    a.mov_imm(Reg::Esp, STACK_TOP);
    a.cmp_abs_imm8(p(P_CR4_MCE), 0);
    a.je("no_mce");
    a.mov_eax_cr4();
    a.or_imm8(Reg::Eax, 0x40);
    a.mov_cr4_eax();
    a.label("no_mce");
    a.mov_eax_cr4();
    a.out_eax(PORT_CR4 as u8);
    a.out_al(PORT_READY as u8);
    a.label("after_ready");
    a.mov_imm(Reg::Esi, p(P_LOADS));
    a.load_abs(Reg::Edi, p(P_NLOADS));
    a.label("loop");
    a.test(Reg::Edi);
    a.je("loads_done");
    a.load_ind(Reg::Ebx, Reg::Esi);
    a.label("load");
    a.load_ind(Reg::Eax, Reg::Ebx);
    a.out_eax(PORT_LOADED as u8);
    a.label("after_load");
    a.add_imm8(Reg::Esi, 4);
    a.dec(Reg::Edi);
    a.jmp("loop");
    a.label("loads_done");
    a.cmp_abs_imm8(p(P_POLL), 0);
    a.je("fin");
    a.label("poll");
    a.out_al(PORT_POLL as u8);
    a.cmp_abs_imm8(p(P_STOP), 0);
    a.je("poll");
    a.label("fin");
    a.cmp_abs_imm8(p(P_FINAL_DUMP), 0);
    a.je("done");
    a.mov_al(2);
    a.out_al(PORT_CTX as u8);
    a.call("dump");
    a.label("done");
    a.out_al(PORT_DONE as u8);
    a.hlt();
    a.jmp("done");

    // ---- #MC handler ----
    // After pushad (32 bytes): [esp+32] EIP, [esp+36] CS, [esp+40] EFLAGS.
    let after_load = a.addr_of("after_load");
    a.label("mc");
    a.pushad();
    a.load_esp(32);
    a.out_eax(PORT_MC_EIP as u8);
    a.load_esp(36);
    a.out_eax(PORT_MC_CS as u8);
    a.load_esp(40);
    a.out_eax(PORT_MC_EFLAGS as u8);
    a.inc_abs(p(P_MC_COUNT));
    a.mov_al(1);
    a.out_al(PORT_CTX as u8);
    a.call("dump");
    a.cmp_abs_imm8(p(P_MC_CLEAR), 0);
    a.je("mc_noclear");
    a.load_abs(Reg::Ecx, p(P_CLEAR_MSR));
    a.zero(Reg::Eax);
    a.zero(Reg::Edx);
    a.wrmsr();
    a.mov_imm(Reg::Ecx, msr::IA32_MCG_STATUS);
    a.wrmsr();
    a.label("mc_noclear");
    a.cmp_abs_imm8(p(P_MC_SKIP), 0);
    a.je("mc_noskip");
    a.store_esp_imm(32, after_load);
    a.label("mc_noskip");
    a.cmp_abs_imm8(p(P_MC_STOP), 0);
    a.je("mc_nostop");
    a.store_abs_imm(p(P_STOP), 1);
    a.label("mc_nostop");
    a.out_al(PORT_MC_DONE as u8);
    a.popad();
    a.iretd();

    // ---- dump: report the MSRs listed at P_MSRS ----
    a.label("dump");
    a.mov_imm(Reg::Esi, p(P_MSRS));
    a.load_abs(Reg::Edi, p(P_NMSR));
    a.label("dump_loop");
    a.test(Reg::Edi);
    a.je("dump_end");
    a.load_ind(Reg::Ecx, Reg::Esi);
    a.mov(Reg::Eax, Reg::Ecx);
    a.out_eax(PORT_MSR_SEL as u8);
    a.rdmsr();
    a.out_eax(PORT_MSR_LO as u8);
    a.mov(Reg::Eax, Reg::Edx);
    a.out_eax(PORT_MSR_HI as u8);
    a.add_imm8(Reg::Esi, 4);
    a.dec(Reg::Edi);
    a.jmp("dump_loop");
    a.label("dump_end");
    a.ret();

    let (code, labels) = a.finish();
    assert!(CODE as usize + code.len() < DATA as usize);
    Program {
        code,
        after_ready: labels["after_ready"],
        load: labels["load"],
        after_load: labels["after_load"],
        mc_handler: labels["mc"],
    }
}

/// GDT: null, flat 32-bit code (0x08), flat data (0x10).
pub fn gdt() -> Vec<u8> {
    [0u64, 0x00cf_9a00_0000_ffff, 0x00cf_9200_0000_ffff]
        .iter()
        .flat_map(|d| d.to_le_bytes())
        .collect()
}

/// A 32-bit interrupt gate (present, DPL 0, type 0xE) to `offset`.
pub fn gate(offset: u32) -> u64 {
    let lo = (u64::from(SEL_CODE) << 16) | u64::from(offset & 0xffff);
    let hi = u64::from(offset & 0xffff_0000) | 0x8e00;
    (hi << 32) | lo
}

/// Stub for unexpected vector `v`: `mov al, v; out PORT_UNEXPECTED, al;
/// hlt` (8 bytes each at `STUBS + 8 v`).
pub fn stubs() -> Vec<u8> {
    let mut a = Asm::new(STUBS);
    for v in 0..IDT_VECTORS {
        a.mov_al(v as u8);
        a.out_al(PORT_UNEXPECTED as u8);
        a.hlt();
        a.hlt();
        a.hlt();
        a.hlt();
    }
    a.finish().0
}

/// IDT: vector 18 -> the #MC handler, every other vector -> its stub.
pub fn idt(prog: &Program) -> Vec<u8> {
    (0..IDT_VECTORS)
        .flat_map(|v| {
            let target = if v == MC_VECTOR {
                prog.mc_handler
            } else {
                STUBS + 8 * v
            };
            gate(target).to_le_bytes()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let prog = program();
        assert!(prog.load > CODE && prog.after_load == prog.load + 4);
        // The load is `mov eax, [ebx]` (8b 03), then `out 0x12, eax`.
        let off = (prog.load - CODE) as usize;
        assert_eq!(&prog.code[off..off + 4], &[0x8b, 0x03, 0xe7, 0x12]);
        // The handler starts with pushad.
        assert_eq!(prog.code[(prog.mc_handler - CODE) as usize], 0x60);
        assert_eq!(stubs().len(), 8 * IDT_VECTORS as usize);
        assert_eq!(idt(&prog).len(), 8 * IDT_VECTORS as usize);
    }

    #[test]
    fn descriptors() {
        // Intel SDM Vol. 3A 6.11, Figure 6-2: offset 15:0, selector,
        // 0x8e (P, DPL 0, 32-bit interrupt gate), offset 31:16.
        assert_eq!(gate(0x0001_2345), 0x0001_8e00_0008_2345);
        let g = gdt();
        assert_eq!(&g[8..16], &[0xff, 0xff, 0, 0, 0, 0x9a, 0xcf, 0]);
        assert_eq!(&g[16..24], &[0xff, 0xff, 0, 0, 0, 0x92, 0xcf, 0]);
    }
}
