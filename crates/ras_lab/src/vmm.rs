// SPDX-License-Identifier: Apache-2.0
//! The lab VMM: one VM with the bare-metal guest, vCPU run loops, SIGBUS
//! handling, abort injection.

use std::fmt::Write as _;
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use std::{io, result};

use kvm_bindings::{kvm_enable_cap, kvm_userspace_memory_region, kvm_vcpu_events, kvm_vcpu_init};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use vm_memory::{
    Bytes, GuestAddress, GuestMemory, GuestMemoryMmap, GuestMemoryRegion, GuestRegionMmap,
    MmapRegion,
};

use crate::ghes::Ghes;
use crate::guest::{self, Program};
use crate::sig::{self, BUS_MCEERR_AR, Sigbus};

/// KVM_CAP_ARM_SEA_TO_USER (Linux 6.19+, not in kvm-bindings 0.14.1).
pub const KVM_CAP_ARM_SEA_TO_USER: u32 = 245;
pub const KVM_CAP_VCPU_EVENTS: u32 = 41;
pub const KVM_CAP_ARM_INJECT_EXT_DABT: u32 = 178;
/// _IOW(KVMIO, 0xa3, struct kvm_enable_cap)
const KVM_ENABLE_CAP: libc::c_ulong = 0x4068_AEA3;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("KVM: {0}: {1}")]
    Kvm(&'static str, #[source] kvm_ioctls::Error),
    #[error("guest memory: {0}")]
    Memory(String),
    #[error("{0}")]
    Guest(String),
    #[error("I/O: {0}: {1}")]
    Io(&'static str, #[source] io::Error),
}

pub type Result<T> = result::Result<T, LabError>;

fn kvm_err(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> LabError {
    move |e| LabError::Kvm(what, e)
}

const CORE_BASE: u64 = 0x6030_0000_0010_0000;
/// Register id of a u64 in `struct kvm_regs` at byte offset `off`.
pub const fn core_reg(off: u64) -> u64 {
    CORE_BASE | (off / 4)
}
pub const REG_SP: u64 = core_reg(248);
pub const REG_PC: u64 = core_reg(256);
pub const REG_PSTATE: u64 = core_reg(264);
pub const REG_ELR_EL1: u64 = core_reg(280);
pub const REG_SPSR_EL1: u64 = core_reg(288);
pub const fn xreg(n: u64) -> u64 {
    core_reg(8 * n)
}
pub const fn sys_reg(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64) -> u64 {
    0x6030_0000_0013_0000 | (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2
}
pub const REG_ESR_EL1: u64 = sys_reg(3, 0, 5, 2, 0);
pub const REG_FAR_EL1: u64 = sys_reg(3, 0, 6, 0, 0);
pub const REG_VBAR_EL1: u64 = sys_reg(3, 0, 12, 0, 0);

pub fn get_reg(vcpu: &VcpuFd, id: u64) -> Result<u64> {
    let mut b = [0u8; 8];
    vcpu.get_one_reg(id, &mut b)
        .map_err(kvm_err("KVM_GET_ONE_REG"))?;
    Ok(u64::from_le_bytes(b))
}
pub fn set_reg(vcpu: &VcpuFd, id: u64, v: u64) -> Result<()> {
    vcpu.set_one_reg(id, &v.to_le_bytes())
        .map_err(kvm_err("KVM_SET_ONE_REG"))?;
    Ok(())
}

/// How an error was put into the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injected {
    /// KVM_SET_VCPU_EVENTS with ext_dabt_pending.
    DataAbort,
    /// Register-level instruction abort (ESR/FAR/ELR/SPSR_EL1, PSTATE, PC).
    InstructionAbort { esr: u64, vector: u64, spsr: u64 },
}

/// One memory error handled on a vCPU thread.
#[derive(Clone, Debug)]
pub struct Handled {
    pub vcpu: u64,
    pub sig: Sigbus,
    pub gpa: u64,
    pub granule_lsb: u16,
    pub source: u16,
    pub injected: Injected,
    /// KVM_RUN returned with the SIGBUS -> next KVM_RUN with the abort pending.
    pub handling: Duration,
}

/// What a vCPU did.
#[derive(Debug, Default)]
pub struct VcpuReport {
    pub done: bool,
    pub handled: Vec<Handled>,
    pub loads: u64,
    pub abort_reports: Vec<u64>,
    pub error: Option<String>,
}

/// The VM and its engine state.
pub struct Lab {
    /// Keeps /dev/kvm open for the VM's lifetime.
    #[allow(dead_code)]
    pub kvm: Kvm,
    pub vm: VmFd,
    pub mem: GuestMemoryMmap,
    pub prog: Program,
    pub sea_to_user: bool,
    pub ghes: Mutex<Ghes>,
    pub notified: AtomicU32,
    pub story: Mutex<Vec<String>>,
}

fn region(addr: u64, size: usize, huge: bool) -> Result<GuestRegionMmap> {
    let mut flags = libc::MAP_ANONYMOUS | libc::MAP_PRIVATE | libc::MAP_NORESERVE;
    if huge {
        flags |= libc::MAP_HUGETLB;
    }
    let r =
        MmapRegion::build(None, size, libc::PROT_READ | libc::PROT_WRITE, flags).map_err(|e| {
            LabError::Memory(format!(
                "mmap {size:#x} bytes{}: {e}",
                if huge { " (MAP_HUGETLB)" } else { "" }
            ))
        })?;
    if !huge {
        // Keep 4 KiB pages: a poisoned THP is split anyway, but this keeps
        // the granule predictable.
        // SAFETY: madvise on a mapping we own; advisory only.
        unsafe { libc::madvise(r.as_ptr().cast(), size, libc::MADV_NOHUGEPAGE) };
    }
    GuestRegionMmap::new(r, GuestAddress(addr)).ok_or_else(|| LabError::Memory("region".into()))
}

impl Lab {
    /// A VM with the guest program loaded, the HEST and GHES blocks in
    /// place; `huge` adds a 2 MiB hugetlb memslot at [`guest::HUGE_BASE`].
    pub fn new(huge: bool) -> Result<Lab> {
        let kvm = Kvm::new().map_err(kvm_err("open /dev/kvm"))?;
        let vm = kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?;
        let mut regions = vec![region(guest::RAM_BASE, guest::RAM_SIZE, false)?];
        if huge {
            regions.push(region(guest::HUGE_BASE, guest::HUGE_SIZE, true)?);
        }
        let mem =
            GuestMemoryMmap::from_regions(regions).map_err(|e| LabError::Memory(e.to_string()))?;
        sig::clear_guest_ram();
        for (slot, r) in mem.iter().enumerate() {
            let host = r.as_ptr() as u64;
            sig::add_guest_ram(host, r.len());
            let mr = kvm_userspace_memory_region {
                slot: slot as u32,
                flags: 0,
                guest_phys_addr: r.start_addr().0,
                memory_size: r.len(),
                userspace_addr: host,
            };
            // SAFETY: the region stays mapped as long as `mem` (owned by
            // the Lab, dropped after the VM fd).
            unsafe { vm.set_user_memory_region(mr) }
                .map_err(kvm_err("KVM_SET_USER_MEMORY_REGION"))?;
        }
        let sea_to_user = vm.check_extension_raw(KVM_CAP_ARM_SEA_TO_USER.into()) > 0;
        if sea_to_user {
            enable_cap(&vm, KVM_CAP_ARM_SEA_TO_USER)
                .map_err(|e| LabError::Io("KVM_ENABLE_CAP(ARM_SEA_TO_USER)", e))?;
        }
        let prog = guest::program();
        mem.write_slice(&guest::bytes(&prog.words), GuestAddress(guest::CODE))
            .map_err(|e| LabError::Memory(e.to_string()))?;
        let ghes = Ghes::install(&mem)?;
        Ok(Lab {
            kvm,
            vm,
            mem,
            prog,
            sea_to_user,
            ghes: Mutex::new(ghes),
            notified: AtomicU32::new(0),
            story: Mutex::new(Vec::new()),
        })
    }

    pub fn say(&self, line: String) {
        println!("    {line}");
        self.story.lock().unwrap().push(line);
    }

    /// Host virtual address of a guest-physical address.
    pub fn hva(&self, gpa: u64) -> Result<u64> {
        self.mem
            .get_host_address(GuestAddress(gpa))
            .map(|p| p as u64)
            .map_err(|e| LabError::Memory(format!("gpa {gpa:#x}: {e}")))
    }

    /// Guest-physical address of a host virtual address in guest RAM.
    pub fn gpa_of(&self, hva: u64) -> Option<u64> {
        self.mem.iter().find_map(|r| {
            let start = r.as_ptr() as u64;
            (hva >= start && hva - start < r.len()).then(|| r.start_addr().0 + (hva - start))
        })
    }

    pub fn read_u64(&self, gpa: u64) -> u64 {
        self.mem.read_obj(GuestAddress(gpa)).unwrap_or(u64::MAX)
    }
    pub fn write_u64(&self, gpa: u64, v: u64) {
        self.mem
            .write_obj(v, GuestAddress(gpa))
            .expect("guest write");
    }

    /// Per-vCPU control block address.
    pub fn cb(id: u64) -> u64 {
        guest::VCPU_BLOCK + id * 0x1000
    }

    /// Create vCPU `id` with its work list (see [`guest`]).
    pub fn vcpu(&self, id: u64, work: &[u64], defer: bool) -> Result<VcpuFd> {
        let vcpu = self
            .vm
            .create_vcpu(id)
            .map_err(kvm_err("KVM_CREATE_VCPU"))?;
        let mut kvi = kvm_vcpu_init::default();
        self.vm
            .get_preferred_target(&mut kvi)
            .map_err(kvm_err("KVM_ARM_PREFERRED_TARGET"))?;
        vcpu.vcpu_init(&kvi).map_err(kvm_err("KVM_ARM_VCPU_INIT"))?;
        let cb = Self::cb(id);
        assert!(work.len() <= guest::MAX_WORK);
        for off in (0..0x1000).step_by(8) {
            self.write_u64(cb + off, 0);
        }
        self.write_u64(cb + guest::CB_NWORK, work.len() as u64);
        self.write_u64(cb + guest::CB_DEFER, u64::from(defer));
        self.write_u64(cb + guest::CB_HEST, guest::HEST_ADDR);
        for (i, w) in work.iter().enumerate() {
            self.write_u64(cb + guest::CB_WORK + 8 * i as u64, *w);
        }
        set_reg(&vcpu, REG_PC, guest::CODE)?;
        set_reg(&vcpu, xreg(20), cb)?;
        set_reg(&vcpu, xreg(23), guest::MMIO_BASE)?;
        set_reg(&vcpu, REG_SP, cb + 0x1000)?;
        Ok(vcpu)
    }

    /// Run a vCPU until the guest reports done (or `limit` passes).
    pub fn run(&self, vcpu: &mut VcpuFd, id: u64, limit: Duration) -> VcpuReport {
        let mut rep = VcpuReport::default();
        if let Err(e) = self.run_inner(vcpu, id, limit, &mut rep) {
            rep.error = Some(e.to_string());
        }
        rep
    }

    fn run_inner(
        &self,
        vcpu: &mut VcpuFd,
        id: u64,
        limit: Duration,
        rep: &mut VcpuReport,
    ) -> Result<()> {
        let start = Instant::now();
        // Handling in progress: (signal, returned-from-KVM_RUN instant).
        let mut pending: Option<(Handled, Instant)> = None;
        loop {
            if start.elapsed() > limit {
                return Err(LabError::Guest(format!(
                    "vCPU{id}: guest did not finish within {limit:?}"
                )));
            }
            if let Some((mut h, t0)) = pending.take() {
                h.handling = t0.elapsed();
                rep.handled.push(h);
            }
            let exit = vcpu.run();
            match exit {
                Ok(VcpuExit::MmioWrite(addr, data)) => {
                    let mut b = [0u8; 8];
                    b[..data.len()].copy_from_slice(data);
                    let v = u64::from_le_bytes(b);
                    match addr.wrapping_sub(guest::MMIO_BASE) {
                        guest::MMIO_DONE => {
                            rep.done = true;
                            return Ok(());
                        }
                        guest::MMIO_LOADED => rep.loads += 1,
                        guest::MMIO_ABORT => {
                            rep.abort_reports.push(v);
                            for s in self.ghes.lock().unwrap().poll_acks(&self.mem) {
                                self.say(format!(
                                    "vCPU{id}: VMM saw the guest's read-ack of source {s}"
                                ));
                            }
                        }
                        guest::MMIO_UNEXPECTED => {
                            return Err(LabError::Guest(format!(
                                "vCPU{id}: unexpected exception at vector offset {v:#x}"
                            )));
                        }
                        o => {
                            return Err(LabError::Guest(format!(
                                "vCPU{id}: MMIO write to unknown offset {o:#x}"
                            )));
                        }
                    }
                }
                Ok(VcpuExit::MmioRead(_, data)) => data.fill(0),
                Ok(other) => {
                    return Err(LabError::Guest(format!(
                        "vCPU{id}: unexpected exit {other:?}"
                    )));
                }
                Err(e) if e.errno() == libc::EINTR => {
                    let t0 = Instant::now();
                    if let Some(s) = sig::take() {
                        let h = self.handle_sigbus(vcpu, id, s)?;
                        pending = Some((h, t0));
                    }
                }
                Err(e) => return Err(LabError::Kvm("KVM_RUN", e)),
            }
        }
    }

    /// The SIGBUS path: locate the granule, write the record, inject.
    fn handle_sigbus(&self, vcpu: &VcpuFd, id: u64, s: Sigbus) -> Result<Handled> {
        if s.code != BUS_MCEERR_AR {
            return Err(LabError::Guest(format!(
                "vCPU{id}: unexpected {} on a vCPU thread",
                s.code_name()
            )));
        }
        let lsb = if s.lsb == 0 { 12 } else { s.lsb };
        let gran = 1u64 << lsb;
        let hva = s.addr & !(gran - 1);
        let gpa = self.gpa_of(hva).ok_or_else(|| {
            LabError::Guest(format!("SIGBUS address {:#x} is not guest RAM", s.addr))
        })?;
        let source = self
            .ghes
            .lock()
            .unwrap()
            .write_sync(&self.mem, gpa, lsb)?
            .ok_or_else(|| {
                LabError::Guest(
                    "no free synchronous error source (all records unacknowledged)".into(),
                )
            })?;
        let pc = get_reg(vcpu, REG_PC)?;
        let injected = if pc & !(gran - 1) == gpa {
            inject_iabt(vcpu, pc)?
        } else {
            let mut ev = kvm_vcpu_events::default();
            ev.exception.ext_dabt_pending = 1;
            vcpu.set_vcpu_events(&ev)
                .map_err(kvm_err("KVM_SET_VCPU_EVENTS"))?;
            Injected::DataAbort
        };
        Ok(Handled {
            vcpu: id,
            sig: s,
            gpa,
            granule_lsb: lsb,
            source,
            injected,
            handling: Duration::ZERO,
        })
    }

    /// Median cost of a plain KVM_SET_VCPU_EVENTS (nothing pending).
    pub fn baseline_set_events(vcpu: &VcpuFd) -> Result<Duration> {
        let ev = kvm_vcpu_events::default();
        let mut v = Vec::new();
        for _ in 0..51 {
            let t = Instant::now();
            vcpu.set_vcpu_events(&ev)
                .map_err(kvm_err("KVM_SET_VCPU_EVENTS"))?;
            v.push(t.elapsed());
        }
        v.sort();
        Ok(v[v.len() / 2])
    }

    /// Describe a guest abort record (for the story).
    pub fn describe_record(&self, id: u64, n: u64) -> String {
        let r = Self::cb(id) + guest::CB_RECS + 64 * n;
        let mut s = String::new();
        let _ = write!(
            s,
            "ESR_EL1 {:#x} (EC {:#x}, FSC {:#x}) FAR_EL1 {:#x} ELR_EL1 {:#x} SPSR_EL1 {:#x}; record PA {:#x} mask {:#x}, matched {}, acked {}",
            self.read_u64(r + guest::R_ESR),
            (self.read_u64(r + guest::R_ESR) >> 26) & 0x3f,
            self.read_u64(r + guest::R_ESR) & 0x3f,
            self.read_u64(r + guest::R_FAR),
            self.read_u64(r + guest::R_ELR),
            self.read_u64(r + guest::R_SPSR),
            self.read_u64(r + guest::R_PA),
            self.read_u64(r + guest::R_MASK),
            self.read_u64(r + guest::R_MATCHED),
            self.read_u64(r + guest::R_ACKED),
        );
        s
    }
}

/// Inject a synchronous external instruction abort at register level (what
/// KVM_EXIT_ARM_SEA with an instruction-abort ESR needs: KVM has no
/// instruction-abort form of KVM_SET_VCPU_EVENTS).
pub fn inject_iabt(vcpu: &VcpuFd, pc: u64) -> Result<Injected> {
    let pstate = get_reg(vcpu, REG_PSTATE)?;
    let vbar = get_reg(vcpu, REG_VBAR_EL1)?;
    // Target EL1. From EL0: lower-EL vector, EC 0x20; from EL1t: +0x000;
    // from EL1h: +0x200, EC 0x21. IL = 1, FSC 0x10 (synchronous external).
    let (vector, ec) = match pstate & 0xf {
        0x0 => (0x400, 0x20),
        0x4 => (0x000, 0x21),
        _ => (0x200, 0x21),
    };
    let esr = (ec << 26) | (1 << 25) | 0x10;
    set_reg(vcpu, REG_ESR_EL1, esr)?;
    set_reg(vcpu, REG_FAR_EL1, pc)?;
    set_reg(vcpu, REG_ELR_EL1, pc)?;
    set_reg(vcpu, REG_SPSR_EL1, pstate)?;
    // EL1h with D, A, I, F masked.
    set_reg(vcpu, REG_PSTATE, 0x3c5)?;
    set_reg(vcpu, REG_PC, vbar + vector)?;
    Ok(Injected::InstructionAbort {
        esr,
        vector,
        spsr: pstate,
    })
}

pub fn enable_cap(vm: &VmFd, cap: u32) -> io::Result<()> {
    let c = kvm_enable_cap {
        cap,
        ..Default::default()
    };
    // SAFETY: KVM_ENABLE_CAP reads a kvm_enable_cap that lives across the call.
    let r = unsafe {
        libc::ioctl(
            vm.as_raw_fd(),
            KVM_ENABLE_CAP as _,
            &c as *const kvm_enable_cap,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Note for AO handling: notify hook counter.
pub fn bump(c: &AtomicU32) {
    c.fetch_add(1, Ordering::SeqCst);
}
