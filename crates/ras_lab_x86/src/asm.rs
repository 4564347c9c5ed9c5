// SPDX-License-Identifier: Apache-2.0
//! A tiny 32-bit x86 encoder: just the instructions the bare-metal guest
//! needs (Intel SDM Vol. 2). Each helper appends the bytes of one
//! instruction; jumps and calls take labels that [`Asm::finish`] resolves
//! (rel32). The unit tests compare against GNU as (`as --32`, objdump).

use std::collections::HashMap;

/// 32-bit general registers, by their ModRM number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    Eax = 0,
    Ecx = 1,
    Edx = 2,
    Ebx = 3,
    Esp = 4,
    Esi = 6,
    Edi = 7,
}

/// Machine code at a known guest address, with labels.
pub struct Asm {
    base: u32,
    bytes: Vec<u8>,
    labels: HashMap<&'static str, u32>,
    fixups: Vec<(usize, &'static str)>,
}

impl Asm {
    pub fn new(base: u32) -> Self {
        Asm {
            base,
            bytes: Vec::new(),
            labels: HashMap::new(),
            fixups: Vec::new(),
        }
    }

    /// Guest address of the next byte.
    pub fn here(&self) -> u32 {
        self.base + self.bytes.len() as u32
    }

    pub fn label(&mut self, name: &'static str) {
        let at = self.here();
        assert!(
            self.labels.insert(name, at).is_none(),
            "label {name} defined twice"
        );
    }

    pub fn addr_of(&self, name: &str) -> u32 {
        self.labels[name]
    }

    fn b(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    fn imm32(&mut self, v: u32) {
        self.b(&v.to_le_bytes());
    }

    fn rel32(&mut self, opcode: &[u8], target: &'static str) {
        self.b(opcode);
        self.fixups.push((self.bytes.len(), target));
        self.imm32(0);
    }

    /// `jmp target`
    pub fn jmp(&mut self, target: &'static str) {
        self.rel32(&[0xe9], target);
    }
    /// `je target` (ZF = 1)
    pub fn je(&mut self, target: &'static str) {
        self.rel32(&[0x0f, 0x84], target);
    }
    /// `call target`
    pub fn call(&mut self, target: &'static str) {
        self.rel32(&[0xe8], target);
    }
    /// `ret`
    pub fn ret(&mut self) {
        self.b(&[0xc3]);
    }
    /// `mov reg, imm32`
    pub fn mov_imm(&mut self, r: Reg, v: u32) {
        self.b(&[0xb8 + r as u8]);
        self.imm32(v);
    }
    /// `mov reg, [abs32]`
    pub fn load_abs(&mut self, r: Reg, addr: u32) {
        self.b(&[0x8b, 0x05 | ((r as u8) << 3)]);
        self.imm32(addr);
    }
    /// `mov dst, [src]` (src is not ESP/EBP)
    pub fn load_ind(&mut self, dst: Reg, src: Reg) {
        assert!(src != Reg::Esp);
        self.b(&[0x8b, ((dst as u8) << 3) | src as u8]);
    }
    /// `mov dst, src`
    pub fn mov(&mut self, dst: Reg, src: Reg) {
        self.b(&[0x89, 0xc0 | ((src as u8) << 3) | dst as u8]);
    }
    /// `mov eax, [esp + disp8]`
    pub fn load_esp(&mut self, disp: u8) {
        self.b(&[0x8b, 0x44, 0x24, disp]);
    }
    /// `mov dword [esp + disp8], imm32`
    pub fn store_esp_imm(&mut self, disp: u8, v: u32) {
        self.b(&[0xc7, 0x44, 0x24, disp]);
        self.imm32(v);
    }
    /// `mov dword [abs32], imm32`
    pub fn store_abs_imm(&mut self, addr: u32, v: u32) {
        self.b(&[0xc7, 0x05]);
        self.imm32(addr);
        self.imm32(v);
    }
    /// `cmp dword [abs32], imm8`
    pub fn cmp_abs_imm8(&mut self, addr: u32, v: u8) {
        self.b(&[0x83, 0x3d]);
        self.imm32(addr);
        self.b(&[v]);
    }
    /// `inc dword [abs32]`
    pub fn inc_abs(&mut self, addr: u32) {
        self.b(&[0xff, 0x05]);
        self.imm32(addr);
    }
    /// `test r, r`
    pub fn test(&mut self, r: Reg) {
        self.b(&[0x85, 0xc0 | ((r as u8) << 3) | r as u8]);
    }
    /// `xor r, r`
    pub fn zero(&mut self, r: Reg) {
        self.b(&[0x31, 0xc0 | ((r as u8) << 3) | r as u8]);
    }
    /// `add r, imm8`
    pub fn add_imm8(&mut self, r: Reg, v: u8) {
        self.b(&[0x83, 0xc0 | r as u8, v]);
    }
    /// `or r, imm8` (sign-extended)
    pub fn or_imm8(&mut self, r: Reg, v: u8) {
        self.b(&[0x83, 0xc8 | r as u8, v]);
    }
    /// `dec r`
    pub fn dec(&mut self, r: Reg) {
        self.b(&[0x48 + r as u8]);
    }
    /// `mov al, imm8`
    pub fn mov_al(&mut self, v: u8) {
        self.b(&[0xb0, v]);
    }
    /// `out imm8, al`
    pub fn out_al(&mut self, port: u8) {
        self.b(&[0xe6, port]);
    }
    /// `out imm8, eax`
    pub fn out_eax(&mut self, port: u8) {
        self.b(&[0xe7, port]);
    }
    /// `mov eax, cr4`
    pub fn mov_eax_cr4(&mut self) {
        self.b(&[0x0f, 0x20, 0xe0]);
    }
    /// `mov cr4, eax`
    pub fn mov_cr4_eax(&mut self) {
        self.b(&[0x0f, 0x22, 0xe0]);
    }
    /// `rdmsr`
    pub fn rdmsr(&mut self) {
        self.b(&[0x0f, 0x32]);
    }
    /// `wrmsr`
    pub fn wrmsr(&mut self) {
        self.b(&[0x0f, 0x30]);
    }
    /// `pushad`
    pub fn pushad(&mut self) {
        self.b(&[0x60]);
    }
    /// `popad`
    pub fn popad(&mut self) {
        self.b(&[0x61]);
    }
    /// `iretd`
    pub fn iretd(&mut self) {
        self.b(&[0xcf]);
    }
    /// `hlt`
    pub fn hlt(&mut self) {
        self.b(&[0xf4]);
    }

    /// The bytes, with every label reference resolved.
    pub fn finish(mut self) -> (Vec<u8>, HashMap<&'static str, u32>) {
        for (at, name) in &self.fixups {
            let target = *self
                .labels
                .get(name)
                .unwrap_or_else(|| panic!("undefined label {name}"));
            let next = self.base + *at as u32 + 4;
            let rel = target.wrapping_sub(next);
            self.bytes[*at..*at + 4].copy_from_slice(&rel.to_le_bytes());
        }
        (self.bytes, self.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference bytes from GNU as 2.40 (`as --32`, `objdump -d`).
    #[test]
    fn encodings() {
        let mut a = Asm::new(0);
        a.mov_imm(Reg::Esp, 0x9000); // bc 00 90 00 00
        a.cmp_abs_imm8(0x3000, 0); // 83 3d 00 30 00 00 00
        a.mov_eax_cr4(); // 0f 20 e0
        a.mov_cr4_eax(); // 0f 22 e0
        a.or_imm8(Reg::Eax, 0x40); // 83 c8 40
        a.out_eax(0x38); // e7 38
        a.out_al(0x10); // e6 10
        a.mov_imm(Reg::Esi, 0x3008); // be 08 30 00 00
        a.load_abs(Reg::Edi, 0x3004); // 8b 3d 04 30 00 00
        a.test(Reg::Edi); // 85 ff
        a.load_ind(Reg::Ebx, Reg::Esi); // 8b 1e
        a.load_ind(Reg::Eax, Reg::Ebx); // 8b 03
        a.add_imm8(Reg::Esi, 4); // 83 c6 04
        a.dec(Reg::Edi); // 4f
        a.mov_al(2); // b0 02
        a.ret(); // c3
        a.load_ind(Reg::Ecx, Reg::Esi); // 8b 0e
        a.mov(Reg::Eax, Reg::Ecx); // 89 c8
        a.rdmsr(); // 0f 32
        a.wrmsr(); // 0f 30
        a.mov(Reg::Eax, Reg::Edx); // 89 d0
        a.pushad(); // 60
        a.popad(); // 61
        a.iretd(); // cf
        a.hlt(); // f4
        a.load_esp(0x20); // 8b 44 24 20
        a.inc_abs(0x3084); // ff 05 84 30 00 00
        a.load_abs(Reg::Ecx, 0x3080); // 8b 0d 80 30 00 00
        a.zero(Reg::Eax); // 31 c0
        a.zero(Reg::Edx); // 31 d2
        a.mov_imm(Reg::Ecx, 0x17a); // b9 7a 01 00 00
        a.store_esp_imm(0x20, 0x10020); // c7 44 24 20 20 00 01 00
        a.store_abs_imm(0x302c, 1); // c7 05 2c 30 00 00 01 00 00 00
        let (b, _) = a.finish();
        let want: &[u8] = &[
            0xbc, 0x00, 0x90, 0x00, 0x00, 0x83, 0x3d, 0x00, 0x30, 0x00, 0x00, 0x00, 0x0f, 0x20,
            0xe0, 0x0f, 0x22, 0xe0, 0x83, 0xc8, 0x40, 0xe7, 0x38, 0xe6, 0x10, 0xbe, 0x08, 0x30,
            0x00, 0x00, 0x8b, 0x3d, 0x04, 0x30, 0x00, 0x00, 0x85, 0xff, 0x8b, 0x1e, 0x8b, 0x03,
            0x83, 0xc6, 0x04, 0x4f, 0xb0, 0x02, 0xc3, 0x8b, 0x0e, 0x89, 0xc8, 0x0f, 0x32, 0x0f,
            0x30, 0x89, 0xd0, 0x60, 0x61, 0xcf, 0xf4, 0x8b, 0x44, 0x24, 0x20, 0xff, 0x05, 0x84,
            0x30, 0x00, 0x00, 0x8b, 0x0d, 0x80, 0x30, 0x00, 0x00, 0x31, 0xc0, 0x31, 0xd2, 0xb9,
            0x7a, 0x01, 0x00, 0x00, 0xc7, 0x44, 0x24, 0x20, 0x20, 0x00, 0x01, 0x00, 0xc7, 0x05,
            0x2c, 0x30, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        ];
        assert_eq!(b, want);
    }

    #[test]
    fn branches() {
        // From GNU as: `je .+0x100` at 0xc = 0f 84 fa 00 00 00; `jmp
        // .+0x100` at 0x12 = e9 fb 00 00 00; `call .+0x100` at 0x17 = e8
        // fb 00 00 00.
        let mut a = Asm::new(0xc);
        a.je("t1");
        a.jmp("t3");
        a.call("t4");
        // Place each target 0x100 past its instruction's start.
        for (label, at) in [("t1", 0x10c), ("t3", 0x112), ("t4", 0x117)] {
            while a.here() < at {
                a.hlt();
            }
            a.label(label);
        }
        let (mut b, labels) = a.finish();
        assert_eq!(labels["t4"], 0x117);
        b.truncate(16);
        assert_eq!(
            b,
            [
                0x0f, 0x84, 0xfa, 0x00, 0x00, 0x00, 0xe9, 0xfb, 0x00, 0x00, 0x00, 0xe8, 0xfb, 0x00,
                0x00, 0x00
            ]
        );
    }
}
