// SPDX-License-Identifier: Apache-2.0
//! A tiny AArch64 encoder: just the instructions the bare-metal guest needs.
//!
//! Every helper returns one 32-bit instruction word (A64 encodings from the
//! Arm ARM, section C6). Branches take labels that [`Asm::finish`] resolves.
//! Registers are plain numbers 0..=30; 31 is XZR (or SP where the encoding
//! says so: only `add_imm` with rn = 31 would mean SP, and the guest never
//! uses it).

use std::collections::HashMap;

/// The zero register.
pub const XZR: u32 = 31;

/// A system register operand (op0, op1, CRn, CRm, op2).
#[derive(Clone, Copy, Debug)]
pub struct SysReg(pub u32, pub u32, pub u32, pub u32, pub u32);

impl SysReg {
    /// The register's fields in an MRS/MSR (register) word: o0 = op0 - 2
    /// at bit 19, op1 at 16, CRn at 12, CRm at 8, op2 at 5 (Arm ARM C5.2).
    fn fields(self) -> u32 {
        let SysReg(op0, op1, crn, crm, op2) = self;
        ((op0 - 2) << 19) | (op1 << 16) | (crn << 12) | (crm << 8) | (op2 << 5)
    }
}

pub const ESR_EL1: SysReg = SysReg(3, 0, 5, 2, 0);
pub const FAR_EL1: SysReg = SysReg(3, 0, 6, 0, 0);
pub const ELR_EL1: SysReg = SysReg(3, 0, 4, 0, 1);
pub const SPSR_EL1: SysReg = SysReg(3, 0, 4, 0, 0);
pub const VBAR_EL1: SysReg = SysReg(3, 0, 12, 0, 0);

#[derive(Clone, Copy, Debug)]
enum Fix {
    /// B / BL: imm26 at bits 25:0.
    Imm26,
    /// CBZ / CBNZ / B.cond: imm19 at bits 23:5.
    Imm19,
    /// TBZ / TBNZ: imm14 at bits 18:5.
    Imm14,
}

/// Condition codes used by `b_cond`.
pub const EQ: u32 = 0;
pub const NE: u32 = 1;
pub const LO: u32 = 3;

/// An instruction stream with labels, placed at a known guest address.
pub struct Asm {
    base: u64,
    words: Vec<u32>,
    labels: HashMap<&'static str, usize>,
    fixups: Vec<(usize, &'static str, Fix)>,
}

impl Asm {
    pub fn new(base: u64) -> Self {
        Asm {
            base,
            words: Vec::new(),
            labels: HashMap::new(),
            fixups: Vec::new(),
        }
    }

    /// Guest address of the next instruction.
    pub fn here(&self) -> u64 {
        self.base + 4 * self.words.len() as u64
    }

    pub fn label(&mut self, name: &'static str) {
        let old = self.labels.insert(name, self.words.len());
        assert!(old.is_none(), "label {name} defined twice");
    }

    /// Guest address of a label (after `finish`, or once it is defined).
    pub fn addr_of(&self, name: &str) -> u64 {
        self.base + 4 * self.labels[name] as u64
    }

    pub fn emit(&mut self, w: u32) {
        self.words.push(w);
    }

    /// Pad with NOPs up to `align` bytes (relative to address 0).
    pub fn align(&mut self, align: u64) {
        while !self.here().is_multiple_of(align) {
            self.emit(NOP);
        }
    }

    fn branch(&mut self, w: u32, target: &'static str, fix: Fix) {
        self.fixups.push((self.words.len(), target, fix));
        self.words.push(w);
    }

    /// `b label`
    pub fn b(&mut self, l: &'static str) {
        self.branch(0x1400_0000, l, Fix::Imm26);
    }
    /// `bl label`
    pub fn bl(&mut self, l: &'static str) {
        self.branch(0x9400_0000, l, Fix::Imm26);
    }
    /// `cbz xt, label`
    pub fn cbz(&mut self, rt: u32, l: &'static str) {
        self.branch(0xB400_0000 | rt, l, Fix::Imm19);
    }
    /// `cbnz xt, label`
    pub fn cbnz(&mut self, rt: u32, l: &'static str) {
        self.branch(0xB500_0000 | rt, l, Fix::Imm19);
    }
    /// `b.<cond> label`
    pub fn b_cond(&mut self, cond: u32, l: &'static str) {
        self.branch(0x5400_0000 | cond, l, Fix::Imm19);
    }
    /// `tbnz xt, #bit, label` (bit < 32)
    pub fn tbnz(&mut self, rt: u32, bit: u32, l: &'static str) {
        assert!(bit < 32);
        self.branch(0x3700_0000 | (bit << 19) | rt, l, Fix::Imm14);
    }

    /// Load a 64-bit constant with MOVZ + up to three MOVK.
    pub fn mov64(&mut self, rd: u32, v: u64) {
        self.emit(movz(rd, (v & 0xffff) as u32, 0));
        for hw in 1..4 {
            let part = ((v >> (16 * hw)) & 0xffff) as u32;
            if part != 0 {
                self.emit(movk(rd, part, hw));
            }
        }
    }

    /// Load a u64 from a 4-byte aligned address: `ldr wt,[xn,#off]`,
    /// `ldr wtmp,[xn,#off+4]`, `orr xt,xt,xtmp,lsl #32`. With the MMU off
    /// data accesses are Device memory and must be naturally aligned; HEST
    /// fields are only 4-byte aligned.
    pub fn ld64_a4(&mut self, rt: u32, tmp: u32, rn: u32, off: u32) {
        self.emit(ldr_w(rt, rn, off));
        self.emit(ldr_w(tmp, rn, off + 4));
        self.emit(orr_lsl(rt, rt, tmp, 32));
    }

    /// `b .` (an anonymous infinite loop).
    pub fn label_unique_halt(&mut self) {
        self.emit(0x1400_0000);
    }

    /// Resolve branches; returns the instruction words.
    pub fn finish(self) -> Vec<u32> {
        let mut words = self.words;
        for (at, name, fix) in self.fixups {
            let target = *self
                .labels
                .get(name)
                .unwrap_or_else(|| panic!("undefined label {name}"));
            let delta = target as i64 - at as i64;
            let w = &mut words[at];
            match fix {
                Fix::Imm26 => *w |= (delta as u32) & 0x03ff_ffff,
                Fix::Imm19 => *w |= ((delta as u32) & 0x7ffff) << 5,
                Fix::Imm14 => *w |= ((delta as u32) & 0x3fff) << 5,
            }
        }
        words
    }
}

pub const NOP: u32 = 0xD503_201F;
pub const ISB: u32 = 0xD503_3FDF;
pub const ERET: u32 = 0xD69F_03E0;
pub const RET: u32 = 0xD65F_03C0;

/// `movz xd, #imm16, lsl #(16*hw)`
pub fn movz(rd: u32, imm16: u32, hw: u32) -> u32 {
    0xD280_0000 | (hw << 21) | (imm16 << 5) | rd
}
/// `movk xd, #imm16, lsl #(16*hw)`
pub fn movk(rd: u32, imm16: u32, hw: u32) -> u32 {
    0xF280_0000 | (hw << 21) | (imm16 << 5) | rd
}
/// A load or store with an unsigned, scaled 12-bit offset (Arm ARM C6.2,
/// "LDR (immediate)", unsigned offset form): `op` the opcode, `scale` the
/// access size in bytes; `off` must be a multiple of it, below 4096 * it.
fn ldst_uimm(op: u32, scale: u32, rt: u32, rn: u32, off: u32) -> u32 {
    assert!(off.is_multiple_of(scale) && off / scale < 4096);
    op | ((off / scale) << 10) | (rn << 5) | rt
}
/// `ldr xt, [xn, #off]`
pub fn ldr_x(rt: u32, rn: u32, off: u32) -> u32 {
    ldst_uimm(0xF940_0000, 8, rt, rn, off)
}
/// `str xt, [xn, #off]`
pub fn str_x(rt: u32, rn: u32, off: u32) -> u32 {
    ldst_uimm(0xF900_0000, 8, rt, rn, off)
}
/// `ldr wt, [xn, #off]`
pub fn ldr_w(rt: u32, rn: u32, off: u32) -> u32 {
    ldst_uimm(0xB940_0000, 4, rt, rn, off)
}
/// `str wt, [xn, #off]`
pub fn str_w(rt: u32, rn: u32, off: u32) -> u32 {
    ldst_uimm(0xB900_0000, 4, rt, rn, off)
}
/// `add xd, xn, #imm12`
pub fn add_imm(rd: u32, rn: u32, imm: u32) -> u32 {
    assert!(imm < 4096);
    0x9100_0000 | (imm << 10) | (rn << 5) | rd
}
/// `sub xd, xn, #imm12`
pub fn sub_imm(rd: u32, rn: u32, imm: u32) -> u32 {
    assert!(imm < 4096);
    0xD100_0000 | (imm << 10) | (rn << 5) | rd
}
/// `cmp xn, #imm12` (`subs xzr, xn, #imm`)
pub fn cmp_imm(rn: u32, imm: u32) -> u32 {
    assert!(imm < 4096);
    0xF100_0000 | (imm << 10) | (rn << 5) | XZR
}
/// `cmp xn, xm` (`subs xzr, xn, xm`)
pub fn cmp(rn: u32, rm: u32) -> u32 {
    0xEB00_0000 | (rm << 16) | (rn << 5) | XZR
}
/// `add xd, xn, xm, lsl #s`
pub fn add_lsl(rd: u32, rn: u32, rm: u32, s: u32) -> u32 {
    0x8B00_0000 | (rm << 16) | (s << 10) | (rn << 5) | rd
}
/// `orr xd, xn, xm, lsl #s`
pub fn orr_lsl(rd: u32, rn: u32, rm: u32, s: u32) -> u32 {
    0xAA00_0000 | (rm << 16) | (s << 10) | (rn << 5) | rd
}
/// `mov xd, xm`
pub fn mov(rd: u32, rm: u32) -> u32 {
    orr_lsl(rd, XZR, rm, 0)
}
/// `and xd, xn, xm`
pub fn and(rd: u32, rn: u32, rm: u32) -> u32 {
    0x8A00_0000 | (rm << 16) | (rn << 5) | rd
}
/// `eor xd, xn, xm`
pub fn eor(rd: u32, rn: u32, rm: u32) -> u32 {
    0xCA00_0000 | (rm << 16) | (rn << 5) | rd
}
/// `ubfx xd, xn, #lsb, #width` (`ubfm xd, xn, #lsb, #lsb+width-1`)
pub fn ubfx(rd: u32, rn: u32, lsb: u32, width: u32) -> u32 {
    0xD340_0000 | (lsb << 16) | ((lsb + width - 1) << 10) | (rn << 5) | rd
}
/// `blr xn`
pub fn blr(rn: u32) -> u32 {
    0xD63F_0000 | (rn << 5)
}
/// `mrs xt, <sysreg>` (L = 1).
pub fn mrs(rt: u32, r: SysReg) -> u32 {
    0xD530_0000 | r.fields() | rt
}
/// `msr <sysreg>, xt` (L = 0).
pub fn msr(r: SysReg, rt: u32) -> u32 {
    0xD510_0000 | r.fields() | rt
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference words from GNU as (aarch64-linux-gnu-as + objdump).
    #[test]
    fn encodings() {
        assert_eq!(mrs(0, ESR_EL1), 0xd538_5200);
        assert_eq!(mrs(1, FAR_EL1), 0xd538_6001);
        assert_eq!(mrs(2, ELR_EL1), 0xd538_4022);
        assert_eq!(mrs(3, SPSR_EL1), 0xd538_4003);
        assert_eq!(msr(VBAR_EL1, 0), 0xd518_c000);
        assert_eq!(msr(ELR_EL1, 4), 0xd518_4024);
        assert_eq!(ldr_x(1, 0, 0), 0xf940_0001);
        assert_eq!(str_x(1, 23, 8), 0xf900_06e1);
        assert_eq!(ldr_w(15, 14, 24), 0xb940_19cf);
        assert_eq!(str_w(XZR, 15, 0), 0xb900_01ff);
        assert_eq!(add_imm(4, 4, 4), 0x9100_1084);
        assert_eq!(sub_imm(21, 21, 1), 0xd100_06b5);
        assert_eq!(cmp_imm(2, 0x21), 0xf100_845f);
        assert_eq!(orr_lsl(15, 15, 16, 32), 0xaa10_81ef);
        assert_eq!(add_lsl(12, 12, 9, 6), 0x8b09_198c);
        assert_eq!(ubfx(6, 2, 26, 6), 0xd35a_7c46);
        assert_eq!(blr(0), 0xd63f_0000);
        assert_eq!(movz(0, 0x1234, 0), 0xd282_4680);
        assert_eq!(movk(0, 0x4000, 1), 0xf2a8_0000);
        assert_eq!(eor(19, 3, 17), 0xca11_0073);
        assert_eq!(cmp(9, 24), 0xeb18_013f);
        assert_eq!(and(19, 19, 18), 0x8a12_0273);
    }

    #[test]
    fn branches() {
        let mut a = Asm::new(0x1000);
        a.label("top");
        a.emit(NOP);
        a.cbz(1, "end");
        a.b("top");
        a.label("end");
        a.tbnz(0, 0, "top");
        let w = a.finish();
        assert_eq!(w[1], 0xb400_0041); // cbz x1, +8
        assert_eq!(w[2], 0x17ff_fffe); // b -8
        assert_eq!(w[3], 0x3707_ffa0); // tbnz x0, #0, -12
    }
}
