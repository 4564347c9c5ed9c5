// SPDX-License-Identifier: Apache-2.0
//! The lab VMM: one VM with the bare-metal guest and its vCPU loops. A
//! memory error takes the path Cloud Hypervisor's takes, through the same
//! code: the edge (`ras_edge`: SIGBUS capture, the guest RAM table,
//! exit 41, abort injection) and the engine (`ras`: policy, CPER records in
//! the GHESv2 status blocks). Only the glue that applies an
//! [`ras::engine::Outcome`] is the lab's own, as it is Cloud Hypervisor's.

use std::mem::zeroed;
use std::os::raw::c_char;
use std::ptr::null_mut;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};
use std::{fmt, result};

use kvm_bindings::{kvm_vcpu_events, kvm_vcpu_init};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use ras::config::{AsyncMode, RasConfig, SeaSources};
use ras::engine::{Done, Outcome, RasEngine};
use ras::error_source::SourceId;
use ras::event::Counters;
use ras::granule::GpaGranule;
use ras::inject::{Pending, PendingInjections, VcpuMode};
use ras::report::{ErrorCause, ErrorReport, Origin};
use ras_edge::arch::aarch64::sea::{Esr, Injected, SeaAbort, SeaExit};
use ras_edge::host::clock::ReportTime;
use ras_edge::host::guest_ram::{GuestRam, Hva};
use ras_edge::host::sigbus::{SigbusRecord, VcpuSigbusGuard};
use ras_edge::kvm::aarch64::sea::{self as kvm_sea, AbortInjector, KVM_EXIT_ARM_SEA, reg_id};
use ras_lab_runner::guest_ram::{self, RamSpec};
pub use ras_lab_runner::lab_error::{LabError, Result, edge};
use ras_lab_runner::lab_error::{engine_err, kvm_err};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};

use crate::ghes;
use crate::guest::{self, Program};

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

/// One memory error handled on a vCPU thread.
#[derive(Clone, Debug)]
pub struct Handled {
    pub vcpu: u64,
    /// `si_addr` and `si_addr_lsb` (SIGBUS path), or zero (exit 41).
    pub hva: Hva,
    pub lsb: u8,
    pub granule: Option<GpaGranule>,
    pub source: u16,
    pub injected: Option<Injected>,
    pub events: Vec<String>,
    /// The record as the lab's own decoder read it right after the engine
    /// wrote it.
    pub record: String,
    /// Read-ack register value right after the engine wrote the record.
    pub ack_at_write: u64,
    /// KVM_RUN returned -> next KVM_RUN with the abort pending.
    pub handling: Duration,
    /// The report's monotonic time (the engine's clock, ms).
    pub at_ms: u64,
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

/// What answers a drill's requester in the lab.
pub type Respond = Sender<result::Result<String, String>>;

/// A hook run on the vCPU thread when `KVM_RUN` returns `EINTR`, before
/// the edge looks at it (a scenario turns the SIGBUS into the exit 41 a
/// Linux 6.19 host would have raised).
pub type InterruptHook<'a> = &'a (dyn Fn(&mut VcpuFd, &VcpuSigbusGuard) + Sync);

/// The VM and its engine.
pub struct Lab {
    /// Keeps /dev/kvm open for the VM's lifetime.
    _kvm: Kvm,
    pub vm: VmFd,
    pub mem: GuestMemoryMmap,
    /// The guest RAM registered with the edge (unregistered on drop).
    _ram: GuestRam,
    pub prog: Program,
    /// `KVM_CAP_ARM_SEA_TO_USER` enabled.
    pub sea_to_user: bool,
    pub injector: AbortInjector,
    pub engine: Mutex<RasEngine>,
    pub counters: Counters,
    pub drills: PendingInjections<Respond>,
    pub notified: AtomicU32,
}

impl Lab {
    /// A VM for `vcpus` vCPUs with the guest program loaded, the engine's
    /// HEST and error sources in place; `huge` adds a 2 MiB hugetlb memslot
    /// at [`guest::HUGE_BASE`]. The process must hold a `SigbusHandler`.
    pub fn new(vcpus: u32, huge: bool) -> Result<Lab> {
        let kvm = Kvm::new().map_err(kvm_err("open /dev/kvm"))?;
        let vm = kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?;
        let mut ram = vec![RamSpec::pages(guest::RAM_BASE, guest::RAM_SIZE)];
        ram.extend(huge.then(|| RamSpec::hugetlb(guest::HUGE_BASE, guest::HUGE_SIZE)));
        let (mem, ranges) = guest_ram::map(&vm, &ram)?;
        // The edge's setup, in Cloud Hypervisor's order: guest RAM known to
        // the SIGBUS handler, exit 41 enabled where the host has it.
        let ram = GuestRam::register(&ranges).map_err(edge)?;
        let sea_to_user = kvm_sea::enable_sea_to_user(&vm).map_err(edge)?;
        let injector = AbortInjector::probe(&vm);
        let prog = guest::program();
        mem.write_slice(&guest::bytes(&prog.words), GuestAddress(guest::CODE))
            .map_err(|e| LabError::Memory(e.to_string()))?;
        let config = RasConfig {
            sea_sources: SeaSources::PerVcpu,
            async_mode: AsyncMode::Gpio,
            ..RasConfig::default()
        };
        let mut engine =
            RasEngine::new(config, GuestAddress(RAS_REGION), vcpus).map_err(engine_err)?;
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
            _kvm: kvm,
            vm,
            mem,
            _ram: ram,
            prog,
            sea_to_user,
            injector,
            engine: Mutex::new(engine),
            counters: Counters::default(),
            drills: PendingInjections::new(),
            notified: AtomicU32::new(0),
        })
    }

    pub fn say(&self, line: impl fmt::Display) {
        println!("    {line}");
    }

    /// Host virtual address of a guest-physical address.
    pub fn hva(&self, gpa: u64) -> Result<u64> {
        Ok(guest_ram::hva(&self.mem, gpa)?)
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
        let engine = self.engine.lock().unwrap();
        engine.layout().block(SourceId(s)).map_or(0, |a| a.0)
    }
    /// Current value of the read-ack register of engine source `s`.
    pub fn ack_value(&self, s: u16) -> u64 {
        let reg = self
            .engine
            .lock()
            .unwrap()
            .layout()
            .ack_register(SourceId(s));
        reg.map_or(u64::MAX, |r| self.read_u64(r.raw_value()))
    }
    /// Synchronous source of a vCPU.
    pub fn sync_source(&self, vcpu: u32) -> u16 {
        let engine = self.engine.lock().unwrap();
        engine.layout().sync_source(vcpu).map_or(u16::MAX, |s| s.0)
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
        self.run_with(vcpu, id, limit, &|_, _| {})
    }

    /// [`Lab::run`] with a hook on `EINTR`.
    pub fn run_with(
        &self,
        vcpu: &mut VcpuFd,
        id: u64,
        limit: Duration,
        hook: InterruptHook<'_>,
    ) -> VcpuReport {
        let mut rep = VcpuReport::default();
        let r = VcpuSigbusGuard::register(id as u32)
            .map_err(edge)
            .and_then(|guard| self.run_inner(vcpu, &guard, id, limit, hook, None, &mut rep));
        if let Err(e) = r {
            rep.error = Some(e.to_string());
        }
        rep
    }

    /// Runs a vCPU that keeps spinning (at EL1) after its work until
    /// `stop` is set; `tid` gets its thread id, to interrupt it (Cloud
    /// Hypervisor kicks a vCPU with a signal; `kick` does the same here).
    pub fn run_spinning(
        &self,
        vcpu: &mut VcpuFd,
        id: u64,
        stop: &AtomicBool,
        tid: &AtomicI32,
    ) -> VcpuReport {
        // SAFETY: gettid has no arguments and cannot fail.
        tid.store(unsafe { libc::gettid() }, Ordering::SeqCst);
        let mut rep = VcpuReport::default();
        let r = VcpuSigbusGuard::register(id as u32)
            .map_err(edge)
            .and_then(|guard| {
                self.run_inner(
                    vcpu,
                    &guard,
                    id,
                    Duration::from_secs(60),
                    &|_, _| {},
                    Some(stop),
                    &mut rep,
                )
            });
        if let Err(e) = r {
            rep.error = Some(e.to_string());
        }
        rep
    }

    /// The VMM-thread service when the guest acknowledged: records the
    /// guest acknowledged free their source for queued ones.
    fn service(&self, id: u64) -> Result<()> {
        for e in self.service_now()? {
            self.say(format!("vCPU{id}: guest acked; engine service: {e}"));
        }
        Ok(())
    }

    /// The engine's service now, as Cloud Hypervisor's service timer runs
    /// it: queued records into freed sources, and the pages of a lost
    /// granule when they are due. The events it applied.
    pub fn service_now(&self) -> Result<Vec<String>> {
        self.service_at(ReportTime::now().monotonic_ms)
    }

    /// The engine's service as if the clock said `now_ms` (the engine's
    /// monotonic milliseconds): what is due then, whatever the time is.
    pub fn service_at(&self, now_ms: u64) -> Result<Vec<String>> {
        let outcome = self
            .engine
            .lock()
            .unwrap()
            .service(&self.mem, now_ms)
            .map_err(engine_err)?;
        Ok(self.apply(None, outcome)?.1)
    }

    #[allow(clippy::too_many_arguments)]
    fn run_inner(
        &self,
        vcpu: &mut VcpuFd,
        guard: &VcpuSigbusGuard,
        id: u64,
        limit: Duration,
        hook: InterruptHook<'_>,
        spin: Option<&AtomicBool>,
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
                            // A spinning run goes on until it is told to stop.
                            if spin.is_none() {
                                return Ok(());
                            }
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
                Ok(VcpuExit::Unsupported(KVM_EXIT_ARM_SEA)) => {
                    let t0 = Instant::now();
                    pending = Some((self.on_sea_exit(vcpu, id)?, t0));
                }
                Ok(other) => {
                    return Err(LabError::Guest(format!(
                        "vCPU{id}: unexpected exit {other:?}"
                    )));
                }
                Err(e) if e.errno() == libc::EINTR => {
                    let t0 = Instant::now();
                    if spin.is_some_and(|stop| stop.load(Ordering::SeqCst)) {
                        return Ok(());
                    }
                    self.take_drill(vcpu, id)?;
                    hook(vcpu, guard);
                    if vcpu.get_kvm_run().exit_reason == KVM_EXIT_ARM_SEA {
                        pending = Some((self.on_sea_exit(vcpu, id)?, t0));
                        continue;
                    }
                    if let Some(rec) = guard.take_pending() {
                        pending = Some((self.on_sigbus(vcpu, id, rec)?, t0));
                    }
                }
                Err(e) => return Err(LabError::Kvm("KVM_RUN", e)),
            }
        }
    }

    /// `KVM_EXIT_ARM_SEA`: decode, report, reflect the abort back.
    fn on_sea_exit(&self, vcpu: &mut VcpuFd, id: u64) -> Result<Handled> {
        let exit = kvm_sea::read_exit(vcpu.get_kvm_run()).map_err(edge)?;
        // Not a KVM exit of its own any more once handled.
        vcpu.get_kvm_run().exit_reason = 0;
        let report = ReportTime::now().report(ErrorCause::Consumed {
            vcpu: id as u32,
            origin: Origin::SeaExit,
            granule: exit.gpa.and_then(|g| GpaGranule::containing(g, 12)),
            page: exit.gpa.and_then(|g| GpaGranule::containing(g, 12)),
            gva: exit.gva,
        });
        self.handled(vcpu, id, Hva(0), 0, &report, SeaAbort::for_exit(&exit))
    }

    /// The SIGBUS path: the edge's record -> report -> engine -> abort.
    fn on_sigbus(&self, vcpu: &VcpuFd, id: u64, rec: SigbusRecord) -> Result<Handled> {
        let SigbusRecord::ActionRequired { hva, lsb, .. } = rec else {
            return Err(LabError::Guest(format!("vCPU{id}: unexpected {rec:?}")));
        };
        let report = rec.report(ReportTime::now()).map_err(edge)?;
        self.handled(vcpu, id, hva, lsb, &report, SeaAbort::for_sigbus())
    }

    fn handled(
        &self,
        vcpu: &VcpuFd,
        id: u64,
        hva: Hva,
        lsb: u8,
        report: &ErrorReport,
        abort: SeaAbort,
    ) -> Result<Handled> {
        let granule = match &report.cause {
            ErrorCause::Consumed { granule, .. } => *granule,
            _ => None,
        };
        let outcome = self
            .engine
            .lock()
            .unwrap()
            .handle(report, &self.mem)
            .map_err(engine_err)?;
        let (injected, events) = self.apply(Some((vcpu, abort)), outcome)?;
        let source = self.sync_source(id as u32);
        let record = ghes::decode(&self.mem, self.block(source)).to_string();
        let ack_at_write = self.ack_value(source);
        Ok(Handled {
            vcpu: id,
            hva,
            lsb,
            granule,
            source,
            injected,
            events,
            record,
            ack_at_write,
            handling: Duration::ZERO,
            at_ms: report.monotonic_ms,
        })
    }

    /// What Cloud Hypervisor's glue does with an outcome, after releasing
    /// the engine: the abort, the notification, the stop, then the events
    /// (counted as they are published).
    pub fn apply(
        &self,
        vcpu: Option<(&VcpuFd, SeaAbort)>,
        outcome: Outcome,
    ) -> Result<(Option<Injected>, Vec<String>)> {
        let mut injected = None;
        let mut done = Vec::new();
        if let Some(id) = outcome.abort {
            let (fd, abort) =
                vcpu.ok_or_else(|| LabError::Guest(format!("abort for vCPU {id} off its thread")))?;
            match self.injector.inject(fd, &abort) {
                Ok(i) => {
                    done.push(Done::Abort(i.to_string()));
                    injected = Some(i);
                }
                Err(e) => done.push(Done::AbortFailed(e.to_string())),
            }
        }
        if outcome.notify_async {
            // Cloud Hypervisor raises the GED event here.
            self.notified.fetch_add(1, Ordering::SeqCst);
            done.push(Done::Notified);
        }
        let (events, stop) = outcome.finish(&done);
        let mut lines = Vec::new();
        for e in &events {
            self.counters.count(e);
            lines.push(format!("event: {e}"));
        }
        if let Some(reason) = stop {
            return Err(LabError::Engine(format!("the VM is stopped: {reason}")));
        }
        Ok((injected, lines))
    }

    /// Hands a report to the engine off any vCPU thread (an action-optional
    /// notice, an asynchronous drill).
    pub fn handle_report(&self, report: &ErrorReport) -> Result<Vec<String>> {
        let outcome = self
            .engine
            .lock()
            .unwrap()
            .handle(report, &self.mem)
            .map_err(engine_err)?;
        Ok(self.apply(None, outcome)?.1)
    }

    /// A synchronous drill waiting for this vCPU: taken when the vCPU is
    /// where the drill may reach it ([`VcpuMode`]), with Cloud
    /// Hypervisor's checks and answer.
    fn take_drill(&self, vcpu: &VcpuFd, id: u64) -> Result<()> {
        let Some(mode) = self.drills.waiting(id as u32) else {
            return Ok(());
        };
        if mode == VcpuMode::User && !kvm_sea::in_user_mode(vcpu).map_err(edge)? {
            return Ok(());
        }
        let Some(Pending {
            report, respond, ..
        }) = self.drills.take(id as u32)
        else {
            return Ok(());
        };
        let answer = self
            .engine
            .lock()
            .unwrap()
            .handle(&report, &self.mem)
            .map_err(engine_err)
            .and_then(|o| self.apply(Some((vcpu, SeaAbort::for_drill())), o))
            .map(|(i, events)| {
                format!(
                    "{} ({})",
                    i.map_or("no abort".into(), |i| i.to_string()),
                    events.join("; ")
                )
            })
            .map_err(|e| e.to_string());
        let _ = respond.send(answer);
        Ok(())
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

    /// Abort record `n` of vCPU `id`, as its vector wrote it.
    pub fn abort_record(&self, id: u64, n: u64) -> guest::AbortRecord {
        let r = Self::cb(id) + guest::CB_RECS + guest::REC_LEN * n;
        guest::AbortRecord {
            esr: Esr(self.read_u64(r + guest::R_ESR)),
            far: self.read_u64(r + guest::R_FAR),
            elr: self.read_u64(r + guest::R_ELR),
            spsr: self.read_u64(r + guest::R_SPSR),
            pa: self.read_u64(r + guest::R_PA),
            mask: self.read_u64(r + guest::R_MASK),
            matched: self.read_u64(r + guest::R_MATCHED),
            acked: self.read_u64(r + guest::R_ACKED),
            esr_ok: self.read_u64(r + guest::R_ESR_OK),
        }
    }
}

/// Writes a `KVM_EXIT_ARM_SEA` into `vcpu`'s `kvm_run`, as a Linux 6.19
/// host whose firmware did not claim the error would (emulation cannot
/// raise it): exit reason 41 and `{flags, esr, gva, gpa}` at the start of
/// the exit union.
pub fn write_sea_exit(vcpu: &mut VcpuFd, exit: &SeaExit, flags: u64) {
    let run = vcpu.get_kvm_run();
    run.exit_reason = KVM_EXIT_ARM_SEA;
    let words = [
        flags,
        exit.esr.0,
        exit.gva.unwrap_or(0),
        exit.gpa.map_or(0, |g| g.raw_value()),
    ];
    let mut pad = [0 as c_char; 256];
    for (i, w) in words.iter().enumerate() {
        for (j, b) in w.to_ne_bytes().iter().enumerate() {
            pad[i * 8 + j] = c_char::from_ne_bytes([*b]);
        }
    }
    run.__bindgen_anon_1.padding = pad;
}

extern "C" fn kick_handler(_: libc::c_int) {}

/// Interrupts the vCPU thread `tid` out of `KVM_RUN` (`EINTR`): SIGUSR1
/// with an empty handler installed without `SA_RESTART`.
pub fn kick(tid: i32) {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if !INSTALLED.swap(true, Ordering::SeqCst) {
        // SAFETY: an all-zero sigaction is valid; the handler does nothing.
        let mut action: libc::sigaction = unsafe { zeroed() };
        action.sa_sigaction = kick_handler as *const () as libc::sighandler_t;
        // SAFETY: a fully initialised action for SIGUSR1.
        unsafe { libc::sigaction(libc::SIGUSR1, &action, null_mut()) };
    }
    if tid > 0 {
        // SAFETY: tgkill to a thread of this process.
        unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR1) };
    }
}
