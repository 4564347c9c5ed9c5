// SPDX-License-Identifier: Apache-2.0
//! The lab VMM: one VM with the bare-metal guest, vCPU run loops. Memory
//! errors go through the KVM layer (`ras_kvm`: SIGBUS capture, HVA -> GPA,
//! abort injection, capabilities) into the engine (`ras`: policy, CPER
//! records in the GHESv2 status blocks, HEST), exactly as a VMM would.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use std::{fmt, io, result};

use kvm_bindings::{kvm_userspace_memory_region, kvm_vcpu_events, kvm_vcpu_init};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use ras::config::{AsyncMode, RasConfig, SeaSources};
use ras::engine::{Platform, RasEngine};
use ras::error_source::SourceId;
use ras::event::RasEvent;
use ras::policy::StopReason;
use ras::report::{AbortKind, ErrorCause, ErrorReport};
use ras_kvm::abort_inject::{self, EntryKind, InjectMethod, reg_id};
use ras_kvm::caps::{self, RasCaps, SeaToUser};
use ras_kvm::clock::ReportTime;
use ras_kvm::memory_map::GuestRamMap;
use ras_kvm::sigbus::{SigbusRecord, VcpuSigbusGuard};
use vm_memory::{
    Bytes, GuestAddress, GuestMemory, GuestMemoryMmap, GuestMemoryRegion, GuestRegionMmap,
    MmapRegion,
};

use crate::ghes;
use crate::guest::{self, Program};

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("KVM: {0}: {1}")]
    Kvm(&'static str, #[source] kvm_ioctls::Error),
    #[error("guest memory: {0}")]
    Memory(String),
    #[error("{0}")]
    Guest(String),
    #[error("RAS engine: {0}")]
    Engine(String),
    #[error("KVM layer: {0}")]
    KvmLayer(String),
    #[error("I/O: {0}: {1}")]
    Io(&'static str, #[source] io::Error),
}

pub type Result<T> = result::Result<T, LabError>;

fn kvm_err(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> LabError {
    move |e| LabError::Kvm(what, e)
}
fn layer<E: fmt::Display>(e: E) -> LabError {
    LabError::KvmLayer(e.to_string())
}
fn engine_err<E: fmt::Display>(e: E) -> LabError {
    LabError::Engine(e.to_string())
}

/// Register id of general-purpose register `xn`.
pub const fn xreg(n: u64) -> u64 {
    reg_id::core_reg(8 * n)
}
/// SP (SP_EL0 in `struct user_pt_regs`).
const REG_SP: u64 = reg_id::core_reg(31 * 8);

pub fn set_reg(vcpu: &VcpuFd, id: u64, v: u64) -> Result<()> {
    vcpu.set_one_reg(id, &v.to_le_bytes())
        .map_err(kvm_err("KVM_SET_ONE_REG"))?;
    Ok(())
}

/// Guest-physical base of the engine's error-source region (registers +
/// status blocks), inside the RAM memslot, away from code and data.
pub const RAS_REGION: u64 = guest::RAM_BASE + 0x4_0000;

/// How an error was put into the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Injected {
    /// KVM_SET_VCPU_EVENTS with ext_dabt_pending.
    DataAbort,
    /// Register-level exception entry (ESR/FAR/ELR/SPSR_EL1, PSTATE, PC).
    Registers {
        kind: EntryKind,
        esr: u64,
        vector: u64,
        spsr: u64,
    },
}

/// One memory error handled on a vCPU thread.
#[derive(Clone, Debug)]
pub struct Handled {
    pub vcpu: u64,
    pub hva: u64,
    pub lsb: u8,
    pub gpa: u64,
    pub granule_lsb: u8,
    pub source: u16,
    pub injected: Option<Injected>,
    pub events: Vec<String>,
    /// The record as the lab's own decoder read it right after the engine wrote it.
    pub record: String,
    /// Read-ack register value right after the engine wrote the record.
    pub ack_at_write: u64,
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
    pub services: u64,
    pub error: Option<String>,
}

/// The engine's view of the VMM for one call.
pub struct LabPlatform<'a> {
    pub vcpu: Option<&'a VcpuFd>,
    pub caps: RasCaps,
    pub injected: Option<Injected>,
    pub events: Vec<String>,
    pub notified: &'a AtomicU32,
    pub stop: Option<String>,
}

impl Platform for LabPlatform<'_> {
    fn inject_abort(
        &mut self,
        _vcpu: u32,
        kind: AbortKind,
        far: Option<u64>,
    ) -> result::Result<(), String> {
        let vcpu = self.vcpu.ok_or("no vCPU on this thread")?;
        let mut far = far;
        if kind == AbortKind::Instruction && far.is_none() {
            // The faulting address of an instruction abort is the PC.
            far = abort_inject::get_reg(vcpu, reg_id::PC).ok();
        }
        let method = abort_inject::plan(kind, far, &self.caps, false);
        let w = abort_inject::inject(vcpu, method).map_err(|e| e.to_string())?;
        self.injected = Some(match (method, w) {
            (InjectMethod::Registers { kind, .. }, Some(w)) => {
                let vbar = abort_inject::get_reg(vcpu, reg_id::VBAR_EL1).unwrap_or(0) & !0x7ff;
                Injected::Registers {
                    kind,
                    esr: w.esr_el1,
                    vector: w.pc.wrapping_sub(vbar),
                    spsr: w.spsr_el1,
                }
            }
            _ => Injected::DataAbort,
        });
        Ok(())
    }
    fn notify_async(&mut self) -> result::Result<(), String> {
        // The notify hook: Cloud Hypervisor raises the GED event here.
        self.notified.fetch_add(1, Ordering::SeqCst);
        self.events
            .push("notify hook fired (asynchronous source)".into());
        Ok(())
    }
    fn stop_vm(&mut self, reason: &StopReason) {
        self.stop = Some(format!("{reason:?}"));
    }
    fn emit(&mut self, event: &RasEvent) {
        self.events.push(format!("event: {event}"));
    }
}

/// The VM and its engine.
pub struct Lab {
    /// Keeps /dev/kvm open for the VM's lifetime.
    #[allow(dead_code)]
    pub kvm: Kvm,
    pub vm: VmFd,
    pub mem: GuestMemoryMmap,
    pub ram: GuestRamMap,
    pub prog: Program,
    pub sea_to_user: SeaToUser,
    pub caps: RasCaps,
    pub engine: Mutex<RasEngine>,
    pub notified: AtomicU32,
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
        // Keep 4 KiB pages (a poisoned THP would be split anyway).
        // SAFETY: madvise on a mapping we own; advisory only.
        unsafe { libc::madvise(r.as_ptr().cast(), size, libc::MADV_NOHUGEPAGE) };
    }
    GuestRegionMmap::new(r, GuestAddress(addr)).ok_or_else(|| LabError::Memory("region".into()))
}

impl Lab {
    /// A VM for `vcpus` vCPUs with the guest program loaded, the engine's
    /// HEST and error sources in place; `huge` adds a 2 MiB hugetlb memslot
    /// at [`guest::HUGE_BASE`].
    pub fn new(vcpus: u32, huge: bool) -> Result<Lab> {
        let kvm = Kvm::new().map_err(kvm_err("open /dev/kvm"))?;
        let vm = kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?;
        let mut regions = vec![region(guest::RAM_BASE, guest::RAM_SIZE, false)?];
        if huge {
            regions.push(region(guest::HUGE_BASE, guest::HUGE_SIZE, true)?);
        }
        let mem =
            GuestMemoryMmap::from_regions(regions).map_err(|e| LabError::Memory(e.to_string()))?;
        for (slot, r) in mem.iter().enumerate() {
            let mr = kvm_userspace_memory_region {
                slot: slot as u32,
                flags: 0,
                guest_phys_addr: r.start_addr().0,
                memory_size: r.len(),
                userspace_addr: r.as_ptr() as u64,
            };
            // SAFETY: the region stays mapped as long as `mem`, which the
            // Lab owns together with the VM fd.
            unsafe { vm.set_user_memory_region(mr) }
                .map_err(kvm_err("KVM_SET_USER_MEMORY_REGION"))?;
        }
        let ram = GuestRamMap::from_guest_memory(&mem);
        ram.register_for_sigbus().map_err(layer)?;
        let sea_to_user = caps::enable_sea_to_user(&vm).map_err(layer)?;
        let caps = caps::probe(&vm);
        let prog = guest::program();
        mem.write_slice(&guest::bytes(&prog.words), GuestAddress(guest::CODE))
            .map_err(|e| LabError::Memory(e.to_string()))?;
        let config = RasConfig {
            sea_sources: SeaSources::PerVcpu,
            async_mode: AsyncMode::Gpio,
            ..RasConfig::default()
        };
        let mut engine = RasEngine::new(config, RAS_REGION, vcpus).map_err(engine_err)?;
        assert!(
            RAS_REGION + engine.layout().total_len() <= guest::DATA,
            "error-source region too large"
        );
        engine.init(&mem).map_err(engine_err)?;
        let hest = engine.hest().map_err(engine_err)?;
        assert!(hest.len() <= 0x1000);
        mem.write_slice(&hest, GuestAddress(guest::HEST_ADDR))
            .map_err(|e| LabError::Memory(e.to_string()))?;
        Ok(Lab {
            kvm,
            vm,
            mem,
            ram,
            prog,
            sea_to_user,
            caps,
            engine: Mutex::new(engine),
            notified: AtomicU32::new(0),
        })
    }

    pub fn say(&self, line: impl fmt::Display) {
        println!("    {line}");
    }

    /// Host virtual address of a guest-physical address.
    pub fn hva(&self, gpa: u64) -> Result<u64> {
        self.ram
            .gpa_to_hva(gpa)
            .ok_or_else(|| LabError::Memory(format!("gpa {gpa:#x} is not RAM")))
    }

    pub fn read_u64(&self, gpa: u64) -> u64 {
        self.mem.read_obj(GuestAddress(gpa)).unwrap_or(u64::MAX)
    }
    pub fn write_u64(&self, gpa: u64, v: u64) {
        self.mem
            .write_obj(v, GuestAddress(gpa))
            .expect("guest write");
    }

    /// Status block address of engine source `s`.
    pub fn block(&self, s: u16) -> u64 {
        self.engine
            .lock()
            .unwrap()
            .layout()
            .block(SourceId(s))
            .unwrap_or(0)
    }
    /// Current value of the read-ack register of engine source `s`.
    pub fn ack_value(&self, s: u16) -> u64 {
        let reg = self
            .engine
            .lock()
            .unwrap()
            .layout()
            .ack_register(SourceId(s));
        reg.map_or(u64::MAX, |r| self.read_u64(r))
    }
    /// Synchronous source of a vCPU.
    pub fn sync_source(&self, vcpu: u32) -> u16 {
        self.engine
            .lock()
            .unwrap()
            .layout()
            .sync_source(vcpu)
            .map_or(u16::MAX, |s| s.0)
    }
    pub fn async_source(&self) -> u16 {
        self.engine.lock().unwrap().layout().async_source().0
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
        set_reg(&vcpu, reg_id::PC, guest::CODE)?;
        set_reg(&vcpu, xreg(20), cb)?;
        set_reg(&vcpu, xreg(23), guest::MMIO_BASE)?;
        set_reg(&vcpu, REG_SP, cb + 0x1000)?;
        Ok(vcpu)
    }

    /// Run a vCPU on this thread until the guest reports done (or `limit`).
    pub fn run(&self, vcpu: &mut VcpuFd, id: u64, limit: Duration) -> VcpuReport {
        let mut rep = VcpuReport::default();
        let r = VcpuSigbusGuard::register(id as u32)
            .map_err(layer)
            .and_then(|guard| self.run_inner(vcpu, &guard, id, limit, &mut rep));
        if let Err(e) = r {
            rep.error = Some(e.to_string());
        }
        rep
    }

    fn service(&self, id: u64) -> Result<()> {
        let mut p = LabPlatform {
            vcpu: None,
            caps: self.caps,
            injected: None,
            events: Vec::new(),
            notified: &self.notified,
            stop: None,
        };
        let ev = self
            .engine
            .lock()
            .unwrap()
            .service(&self.mem, &mut p)
            .map_err(engine_err)?;
        for e in ev {
            self.say(format!("vCPU{id}: guest acked; engine service: {e}"));
        }
        Ok(())
    }

    fn run_inner(
        &self,
        vcpu: &mut VcpuFd,
        guard: &VcpuSigbusGuard,
        id: u64,
        limit: Duration,
        rep: &mut VcpuReport,
    ) -> Result<()> {
        let start = Instant::now();
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
            match vcpu.run() {
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
                            self.service(id)?;
                        }
                        guest::MMIO_SERVICE => {
                            rep.services += 1;
                            self.service(id)?;
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
                    if let Some(rec) = guard.take_pending() {
                        pending = Some((self.handle_sigbus(vcpu, id, rec)?, t0));
                    }
                }
                Err(e) => return Err(LabError::Kvm("KVM_RUN", e)),
            }
        }
    }

    /// The SIGBUS path: report -> engine (record + abort via the platform).
    fn handle_sigbus(&self, vcpu: &VcpuFd, id: u64, rec: SigbusRecord) -> Result<Handled> {
        let SigbusRecord::ActionRequired { hva, lsb, .. } = rec else {
            return Err(LabError::Guest(format!("vCPU{id}: unexpected {rec:?}")));
        };
        let mut report = self.ram.to_report(&rec, ReportTime::now()).map_err(layer)?;
        let pc = abort_inject::get_reg(vcpu, reg_id::PC).map_err(layer)?;
        let mut gpa = 0;
        let mut glsb = 0;
        if let ErrorCause::SyncConsumption {
            abort,
            granule: Some(g),
            ..
        } = &mut report.cause
        {
            // The host does not say which access failed: if the vCPU's PC
            // (MMU off: VA == IPA) is in the lost granule, it was a fetch.
            *abort = if g.contains(pc) {
                AbortKind::Instruction
            } else {
                AbortKind::Data
            };
            gpa = g.base();
            glsb = g.shift();
        }
        let (injected, events) = self.handle_report(Some(vcpu), &report)?;
        let source = self.sync_source(id as u32);
        let record = ghes::decode(&self.mem, self.block(source)).to_string();
        let ack_at_write = self.ack_value(source);
        Ok(Handled {
            vcpu: id,
            hva,
            lsb,
            gpa,
            granule_lsb: glsb,
            source,
            injected,
            events,
            record,
            ack_at_write,
            handling: Duration::ZERO,
        })
    }

    /// Hand a report to the engine; returns what was injected and the events.
    pub fn handle_report(
        &self,
        vcpu: Option<&VcpuFd>,
        report: &ErrorReport,
    ) -> Result<(Option<Injected>, Vec<String>)> {
        let mut p = LabPlatform {
            vcpu,
            caps: self.caps,
            injected: None,
            events: Vec::new(),
            notified: &self.notified,
            stop: None,
        };
        self.engine
            .lock()
            .unwrap()
            .handle(report, &self.mem, &mut p)
            .map_err(engine_err)?;
        if let Some(s) = p.stop {
            return Err(LabError::Engine(format!("the engine stopped the VM: {s}")));
        }
        Ok((p.injected, p.events))
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

    /// Describe a guest abort record.
    pub fn describe_record(&self, id: u64, n: u64) -> String {
        let r = Self::cb(id) + guest::CB_RECS + guest::REC_LEN * n;
        let esr = self.read_u64(r + guest::R_ESR);
        let mut s = String::new();
        let _ = write!(
            s,
            "ESR_EL1 {esr:#x} (EC {:#x}, FSC {:#x}) FAR_EL1 {:#x} ELR_EL1 {:#x} SPSR_EL1 {:#x}; status block PA {:#x} mask {:#x}, matched {}, acked {}, guest ESR check {}",
            (esr >> 26) & 0x3f,
            esr & 0x3f,
            self.read_u64(r + guest::R_FAR),
            self.read_u64(r + guest::R_ELR),
            self.read_u64(r + guest::R_SPSR),
            self.read_u64(r + guest::R_PA),
            self.read_u64(r + guest::R_MASK),
            self.read_u64(r + guest::R_MATCHED),
            self.read_u64(r + guest::R_ACKED),
            if self.read_u64(r + guest::R_ESR_OK) == 1 {
                "ok"
            } else {
                "FAILED"
            },
        );
        s
    }
}

pub use ras_kvm::caps::enable_cap_raw;
pub use ras_kvm::sea_exit::KVM_CAP_ARM_SEA_TO_USER;
pub const KVM_CAP_VCPU_EVENTS: u32 = 41;
pub const KVM_CAP_ARM_INJECT_EXT_DABT: u32 = 178;
