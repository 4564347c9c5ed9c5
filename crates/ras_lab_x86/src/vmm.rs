// SPDX-License-Identifier: Apache-2.0
//! The lab VMM: one VM with the bare-metal guest (see [`crate::guest`]) and
//! a vCPU run loop that turns the guest's port writes, `SIGBUS`es and
//! shutdowns into [`Event`]s for the scenario.
//!
//! Memory errors are captured with the edge's `SIGBUS` handler
//! (`ras_edge::host::sigbus`: a [`VcpuSigbusGuard`] per vCPU thread,
//! `KVM_RUN` returns `EINTR`), translated with the guest RAM table each
//! [`Vm`] registers (`ras_edge::host::guest_ram`), and turned into machine
//! checks by the x86 edge (`ras_edge::arch::x86::mce`), exactly as a VMM
//! would; the scenarios do that last step.

use std::time::{Duration, Instant};
use std::{fmt, mem};

use kvm_bindings::{CpuId, KVM_MAX_CPUID_ENTRIES, kvm_regs, kvm_segment};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use ras_edge::arch::x86::mce::CpuVendor;
use ras_edge::host::guest_ram::GuestRam;
use ras_edge::host::sigbus::{SigbusRecord, VcpuSigbusGuard};
use ras_edge::kvm::x86_64::mce as kvm_mce;
use ras_lab_runner::guest_ram::{self, RamSpec};
pub use ras_lab_runner::lab_error::{LabError, Result, edge, kvm_err};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use crate::guest::{self, Program};

/// What the vCPU did, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The guest set up and waits for nothing (`PORT_READY`).
    Ready,
    /// One turn of the guest's polling loop.
    Poll,
    /// A load finished with this value.
    Loaded(u32),
    /// The #MC handler finished (its report is the last of `Run::mcs`).
    McHandled,
    /// A memory-failure `SIGBUS` on this vCPU thread (`KVM_RUN` -> `EINTR`).
    Sigbus(SigbusRecord),
    /// The guest reported done.
    Done,
}

/// What the run loop should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// What the #MC handler reported.
#[derive(Clone, Debug, Default)]
pub struct McSeen {
    pub eip: u32,
    pub cs: u32,
    pub eflags: u32,
    /// (MSR, value) as the guest read them with `rdmsr`.
    pub msrs: Vec<(u32, u64)>,
}

impl McSeen {
    pub fn msr(&self, index: u32) -> Option<u64> {
        self.msrs.iter().find(|(i, _)| *i == index).map(|(_, v)| *v)
    }
}

/// Everything a vCPU run produced.
#[derive(Debug, Default)]
pub struct Run {
    pub tid: i32,
    pub cr4: Option<u32>,
    pub loaded: Vec<u32>,
    pub mcs: Vec<McSeen>,
    pub final_msrs: Vec<(u32, u64)>,
    pub sigbus: Vec<SigbusRecord>,
    pub eintr: u32,
    pub polls: u64,
    pub done: bool,
    /// `KVM_EXIT_SHUTDOWN` (triple fault).
    pub shutdown: bool,
    /// An exception vector other than #MC.
    pub unexpected: Option<u8>,
    pub error: Option<String>,
    pub elapsed: Duration,
}

impl Run {
    pub fn final_msr(&self, index: u32) -> Option<u64> {
        self.final_msrs
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, v)| *v)
    }
}

/// The VM. The process must hold a `SigbusHandler` (see `runner`).
pub struct Vm {
    pub kvm: Kvm,
    pub vm: VmFd,
    /// The guest RAM registered with the `SIGBUS` handler; declared before
    /// `mem` so that it is unregistered before the RAM is unmapped.
    _ram: GuestRam,
    pub mem: GuestMemoryMmap,
    pub prog: Program,
    pub cpuid: CpuId,
}

pub fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// CPUID leaf 0 vendor registers (EBX, EDX, ECX) of `vendor`.
fn vendor_regs(vendor: CpuVendor) -> (u32, u32, u32) {
    let s: &[u8; 12] = match vendor {
        CpuVendor::Intel => b"GenuineIntel",
        CpuVendor::Amd => b"AuthenticAMD",
    };
    let w = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    (w(0), w(4), w(8))
}

impl Vm {
    /// A VM with 1 MiB of RAM at GPA 0 (and, with `huge`, a 2 MiB hugetlb
    /// page at [`guest::HUGE_BASE`]), the guest loaded, the CPUID KVM
    /// supports (vendor changed to `vendor` if given).
    pub fn new(huge: bool, vendor: Option<CpuVendor>) -> Result<Vm> {
        let kvm = Kvm::new().map_err(kvm_err("open /dev/kvm"))?;
        let vm = kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?;
        vm.set_tss_address(0xfffb_d000)
            .map_err(kvm_err("KVM_SET_TSS_ADDR"))?;
        let mut ram = vec![RamSpec::pages(0, guest::RAM_SIZE)];
        ram.extend(huge.then(|| RamSpec::hugetlb(guest::HUGE_BASE, guest::HUGE_SIZE)));
        let (mem, ranges) = guest_ram::map(&vm, &ram)?;
        // Guest RAM known to the SIGBUS handler before the guest runs, as
        // a VMM registers it; unregistered when the Vm is dropped.
        let ram = GuestRam::register(&ranges).map_err(edge)?;
        let prog = guest::program();
        let w = |addr: u32, b: &[u8]| {
            mem.write_slice(b, GuestAddress(u64::from(addr)))
                .map_err(|e| LabError::Memory(e.to_string()))
        };
        w(guest::CODE, &prog.code)?;
        w(guest::GDT, &guest::gdt())?;
        w(guest::IDT, &guest::idt(&prog))?;
        w(guest::STUBS, &guest::stubs())?;
        let mut cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(kvm_err("KVM_GET_SUPPORTED_CPUID"))?;
        if let Some(v) = vendor {
            let (b, d, c) = vendor_regs(v);
            for e in cpuid.as_mut_slice() {
                if e.function == 0 {
                    e.ebx = b;
                    e.edx = d;
                    e.ecx = c;
                }
            }
        }
        Ok(Vm {
            kvm,
            vm,
            _ram: ram,
            mem,
            prog,
            cpuid,
        })
    }

    /// The guest's register layout, from its CPUID (what a VMM would use).
    pub fn vendor(&self) -> Option<CpuVendor> {
        kvm_mce::guest_vendor(&self.cpuid)
    }

    /// The guest's physical-address width from its CPUID.
    pub fn phys_bits(&self) -> u8 {
        kvm_mce::guest_phys_bits(&self.cpuid).unwrap_or(36)
    }

    pub fn say(&self, line: impl fmt::Display) {
        println!("    {line}");
    }

    /// Host virtual address of a guest-physical address (from the VM's
    /// own memory: the edge's table only goes HVA -> GPA).
    pub fn hva(&self, gpa: u64) -> Result<u64> {
        Ok(guest_ram::hva(&self.mem, gpa)?)
    }

    pub fn write_u32(&self, gpa: u64, v: u32) {
        self.mem
            .write_obj(v, GuestAddress(gpa))
            .expect("guest write");
    }
    pub fn param(&self, off: u32, v: u32) {
        self.write_u32(u64::from(guest::PARAMS + off), v);
    }
    /// The addresses the guest loads from, in order.
    pub fn set_loads(&self, loads: &[u32]) {
        assert!(loads.len() <= guest::MAX_LOADS);
        self.param(guest::P_NLOADS, loads.len() as u32);
        for (i, a) in loads.iter().enumerate() {
            self.param(guest::P_LOADS + 4 * i as u32, *a);
        }
    }
    /// The MSRs the guest reports (in its #MC handler and final dump).
    pub fn set_msrs(&self, msrs: &[u32]) {
        assert!(msrs.len() <= guest::MAX_MSRS);
        self.param(guest::P_NMSR, msrs.len() as u32);
        for (i, m) in msrs.iter().enumerate() {
            self.param(guest::P_MSRS + 4 * i as u32, *m);
        }
    }

    /// vCPU `id` in 32-bit protected mode at the guest's entry point.
    pub fn vcpu(&self, id: u64) -> Result<VcpuFd> {
        let vcpu = self
            .vm
            .create_vcpu(id)
            .map_err(kvm_err("KVM_CREATE_VCPU"))?;
        vcpu.set_cpuid2(&self.cpuid)
            .map_err(kvm_err("KVM_SET_CPUID2"))?;
        let mut s = vcpu.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?;
        let code = kvm_segment {
            base: 0,
            limit: 0xffff_ffff,
            selector: guest::SEL_CODE,
            type_: 0xb,
            present: 1,
            dpl: 0,
            db: 1,
            s: 1,
            l: 0,
            g: 1,
            avl: 0,
            unusable: 0,
            padding: 0,
        };
        let data = kvm_segment {
            selector: guest::SEL_DATA,
            type_: 0x3,
            ..code
        };
        s.cs = code;
        s.ds = data;
        s.es = data;
        s.fs = data;
        s.gs = data;
        s.ss = data;
        s.cr0 = 0x11; // PE | ET
        s.cr4 = 0;
        s.gdt.base = u64::from(guest::GDT);
        s.gdt.limit = 23;
        s.idt.base = u64::from(guest::IDT);
        s.idt.limit = (8 * guest::IDT_VECTORS - 1) as u16;
        vcpu.set_sregs(&s).map_err(kvm_err("KVM_SET_SREGS"))?;
        let regs = kvm_regs {
            rip: u64::from(guest::CODE),
            rsp: u64::from(guest::STACK_TOP),
            rflags: 2,
            ..Default::default()
        };
        vcpu.set_regs(&regs).map_err(kvm_err("KVM_SET_REGS"))?;
        Ok(vcpu)
    }

    /// Runs the vCPU on this thread (registered as vCPU `id` with the
    /// `SIGBUS` capture) until the guest is done, `on` says stop, the guest
    /// shuts down, or `limit`.
    pub fn run<F>(&self, vcpu: &mut VcpuFd, id: u32, limit: Duration, mut on: F) -> Run
    where
        F: FnMut(&VcpuFd, &Event, &Run) -> Result<Flow>,
    {
        let mut run = Run {
            tid: gettid(),
            ..Run::default()
        };
        let t0 = Instant::now();
        let r = VcpuSigbusGuard::register(id)
            .map_err(edge)
            .and_then(|guard| Self::run_inner(vcpu, &guard, limit, &mut run, &mut on));
        if let Err(e) = r {
            run.error = Some(e.to_string());
        }
        run.elapsed = t0.elapsed();
        run
    }

    fn run_inner<F>(
        vcpu: &mut VcpuFd,
        guard: &VcpuSigbusGuard,
        limit: Duration,
        run: &mut Run,
        on: &mut F,
    ) -> Result<()>
    where
        F: FnMut(&VcpuFd, &Event, &Run) -> Result<Flow>,
    {
        let start = Instant::now();
        let mut ctx = 0u8;
        let mut sel = 0u32;
        let mut lo = 0u32;
        let mut mc = McSeen::default();
        loop {
            if start.elapsed() > limit {
                return Err(LabError::Guest(format!(
                    "the guest did not finish within {limit:?}"
                )));
            }
            // Copy what the exit says, so that `vcpu` is free for `on`.
            enum Exit {
                Out(u16, u32),
                In,
                Hlt,
                Shutdown,
                Eintr,
                Other(String),
            }
            let exit = match vcpu.run() {
                Ok(VcpuExit::IoOut(port, data)) => {
                    let mut b = [0u8; 4];
                    let n = data.len().min(4);
                    b[..n].copy_from_slice(&data[..n]);
                    Exit::Out(port, u32::from_le_bytes(b))
                }
                Ok(VcpuExit::IoIn(_, data)) => {
                    data.fill(0);
                    Exit::In
                }
                Ok(VcpuExit::Hlt) => Exit::Hlt,
                Ok(VcpuExit::Shutdown) => Exit::Shutdown,
                Ok(other) => Exit::Other(format!("{other:?}")),
                Err(e) if e.errno() == libc::EINTR => Exit::Eintr,
                Err(e) => return Err(LabError::Kvm("KVM_RUN", e)),
            };
            let event = match exit {
                Exit::In => None,
                Exit::Other(s) => {
                    return Err(LabError::Guest(format!("unexpected exit {s}")));
                }
                Exit::Hlt => {
                    return Err(LabError::Guest(
                        "the guest halted without reporting done".into(),
                    ));
                }
                Exit::Shutdown => {
                    run.shutdown = true;
                    return Ok(());
                }
                Exit::Eintr => {
                    run.eintr += 1;
                    guard.take_pending().map(|rec| {
                        run.sigbus.push(rec);
                        Event::Sigbus(rec)
                    })
                }
                Exit::Out(port, v) => match port {
                    guest::PORT_CR4 => {
                        run.cr4 = Some(v);
                        None
                    }
                    guest::PORT_READY => Some(Event::Ready),
                    guest::PORT_POLL => {
                        run.polls += 1;
                        Some(Event::Poll)
                    }
                    guest::PORT_LOADED => {
                        run.loaded.push(v);
                        Some(Event::Loaded(v))
                    }
                    guest::PORT_DONE => {
                        run.done = true;
                        Some(Event::Done)
                    }
                    guest::PORT_CTX => {
                        ctx = v as u8;
                        None
                    }
                    guest::PORT_MSR_SEL => {
                        sel = v;
                        None
                    }
                    guest::PORT_MSR_LO => {
                        lo = v;
                        None
                    }
                    guest::PORT_MSR_HI => {
                        let val = (u64::from(v) << 32) | u64::from(lo);
                        if ctx == 1 {
                            mc.msrs.push((sel, val));
                        } else {
                            run.final_msrs.push((sel, val));
                        }
                        None
                    }
                    guest::PORT_MC_EIP => {
                        mc = McSeen {
                            eip: v,
                            ..McSeen::default()
                        };
                        None
                    }
                    guest::PORT_MC_CS => {
                        mc.cs = v;
                        None
                    }
                    guest::PORT_MC_EFLAGS => {
                        mc.eflags = v;
                        None
                    }
                    guest::PORT_MC_DONE => {
                        run.mcs.push(mem::take(&mut mc));
                        Some(Event::McHandled)
                    }
                    guest::PORT_UNEXPECTED => {
                        run.unexpected = Some(v as u8);
                        return Err(LabError::Guest(format!(
                            "the guest took unexpected exception vector {v}"
                        )));
                    }
                    p => {
                        return Err(LabError::Guest(format!("write to unknown port {p:#x}")));
                    }
                },
            };
            if let Some(ev) = event {
                let done = ev == Event::Done;
                if on(vcpu, &ev, run)? == Flow::Stop || done {
                    return Ok(());
                }
            }
        }
    }
}
