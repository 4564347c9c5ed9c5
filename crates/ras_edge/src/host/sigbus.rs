// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! Capture of `SIGBUS` memory-failure signals on behalf of the vCPU loops
//! and the VMM (`Documentation/mm/hwpoison.rst`, `sigaction(2)`).
//!
//! - `BUS_MCEERR_AR` (action required): the thread consumed poisoned memory.
//!   When KVM faults a guest access on a poisoned host page it sends this to
//!   the vCPU thread and `KVM_RUN` returns `EINTR`; every further `KVM_RUN`
//!   repeats it until an abort is injected. The handler records
//!   `(si_addr, si_addr_lsb)` in the thread's slot and returns; the vCPU loop
//!   calls [`VcpuSigbusGuard::take_pending`] after `EINTR`.
//! - `BUS_MCEERR_AO` (action optional): the host found a failed page
//!   without consumption; sent only to threads that opted into early kill
//!   ([`super::early_kill`]). Recorded into a process-wide bounded
//!   lock-free queue drained with [`drain_action_optional`], and announced
//!   on the eventfd registered with [`AoNotify::register`].
//!
//! The handler is installed by [`SigbusHandler::install`] and put back as
//! it was when the last [`SigbusHandler`] is dropped, so a process that
//! stops running VMs with RAS gets its previous `SIGBUS` behaviour back.
//!
//! Everything else keeps the crash behaviour: an `AR` on a thread that did
//! not register as a vCPU thread, an `AR` outside the guest RAM registered
//! in [`super::guest_ram`], an `AR` repeated before the vCPU loop took
//! the previous one (the access is being retried outside `KVM_RUN`: it
//! would loop forever), and any other `si_code`. The handler then writes a
//! message with `write(2)`, restores `SIG_DFL` and re-raises the signal with
//! its original `siginfo`, so the process dies of `SIGBUS` as it would
//! without this crate.
//!
//! The handler is async-signal-safe: it only uses atomics on static tables
//! (no allocation, no locks, no thread-local lazy initialisation) and the
//! `gettid`, `getpid`, `write`, `sigaction` and `rt_tgsigqueueinfo` system
//! calls, and it preserves `errno`.
//!
//! vCPU threads must not block `SIGBUS`: a kernel-forced `SIGBUS` that is
//! blocked kills the process ([`VcpuSigbusGuard::register`] refuses a
//! thread that blocks it). A real hwpoison `SIGBUS` needs a host with
//! `CONFIG_MEMORY_FAILURE` (the arm64 lab); unit tests send the same
//! `siginfo` with `rt_tgsigqueueinfo(2)`.

use std::marker::PhantomData;
use std::mem::{size_of, zeroed};
use std::os::fd::RawFd;
use std::os::raw::{c_int, c_void};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicU64, Ordering};
use std::{io, ptr};

use libc::{BUS_MCEERR_AO, BUS_MCEERR_AR, SIGBUS, siginfo_t};
use ras::report::{ErrorCause, ErrorReport, FoundBy, Origin};
use thiserror::Error;

use super::clock::ReportTime;
use super::guest_ram::{self, GuestRamError, Hva};

/// vCPU threads that can register at once.
pub const MAX_VCPU_THREADS: usize = 512;
/// Capacity of the `BUS_MCEERR_AO` queue (further signals are counted in
/// [`dropped_action_optional`]).
pub const AO_QUEUE_LEN: usize = 64;

/// Offset of the `_sigfault` member in the kernel's `siginfo_t`
/// (`include/uapi/asm-generic/siginfo.h`: three `int`s, then the union,
/// pointer aligned).
pub const SIFIELDS_OFFSET: usize = if size_of::<usize>() == 8 { 16 } else { 12 };
/// Offset of `_sigfault._addr_lsb` (a `short` right after `void *_addr` on
/// arm64 and x86; only alpha, mips and sparc have `__ARCH_SI_TRAPNO` in
/// between).
pub const SI_ADDR_LSB_OFFSET: usize = SIFIELDS_OFFSET + size_of::<*mut c_void>();

/// Errors of this module (never raised inside the handler).
#[derive(Debug, Error)]
pub enum SigbusError {
    /// `sigaction(SIGBUS)` failed.
    #[error("Failed to install the SIGBUS handler")]
    Install(#[source] io::Error),
    /// No [`SigbusHandler`] is installed.
    #[error("The SIGBUS handler is not installed")]
    NotInstalled,
    /// The thread blocks `SIGBUS`: a forced SIGBUS would kill the process.
    #[error("SIGBUS is blocked on this thread; vCPU threads must not block it")]
    Blocked,
    /// `pthread_sigmask` failed.
    #[error("Failed to read the signal mask")]
    SigMask(#[source] io::Error),
    /// This thread is already registered.
    #[error("This thread is already registered as a vCPU thread")]
    AlreadyRegistered,
    /// No free vCPU slot.
    #[error("More than {MAX_VCPU_THREADS} vCPU threads registered")]
    TooManyVcpuThreads,
}

/// What a memory-failure `SIGBUS` told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigbusRecord {
    /// `BUS_MCEERR_AR` on a registered vCPU thread.
    ActionRequired {
        /// vCPU index given at registration.
        vcpu: u32,
        /// `si_addr`: host virtual address (not rounded).
        hva: Hva,
        /// `si_addr_lsb`: log2 of the lost granule.
        lsb: u8,
    },
    /// `BUS_MCEERR_AO` (early kill).
    ActionOptional {
        /// `si_addr`.
        hva: Hva,
        /// `si_addr_lsb`.
        lsb: u8,
    },
}

impl SigbusRecord {
    /// The engine report: `AR` -> a consumption by the vCPU of the lost
    /// granule, `AO` -> an announced loss. An address that is not
    /// registered guest RAM is refused (never a record at a made-up
    /// address).
    pub fn report(&self, time: ReportTime) -> Result<ErrorReport, GuestRamError> {
        Ok(time.report(match *self {
            SigbusRecord::ActionRequired { vcpu, hva, lsb } => {
                // si_addr is the accessed address where the kernel gives it
                // (KVM's stage-2 fault on arm64), the huge page's start
                // elsewhere: its page either way.
                let loss = guest_ram::loss(hva, lsb)?;
                ErrorCause::Consumed {
                    vcpu,
                    origin: Origin::Sigbus,
                    granule: Some(loss.granule),
                    page: Some(loss.page),
                    gva: None,
                }
            }
            SigbusRecord::ActionOptional { hva, lsb } => ErrorCause::Announced {
                granule: guest_ram::granule(hva, lsb)?,
                found_by: FoundBy::HostSignal,
            },
        }))
    }
}

/// The fields of a `SIGBUS` `siginfo_t` the handler uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigbusInfo {
    /// `si_code`.
    pub code: i32,
    /// `si_addr`.
    pub addr: u64,
    /// `si_addr_lsb`.
    pub lsb: i16,
}

/// Reads `si_code`, `si_addr` and `si_addr_lsb`.
///
/// # Safety
///
/// `info` must point to a readable `siginfo_t` (128 bytes) of a `SIGBUS`.
pub unsafe fn read_siginfo(info: *const siginfo_t) -> SigbusInfo {
    // SAFETY: the caller guarantees `info` points to a valid siginfo_t, for
    // which the libc accessor reads the `_sigfault._addr` member.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as u64) };
    // SAFETY: SI_ADDR_LSB_OFFSET + 2 <= 128 = size_of::<siginfo_t>(), the
    // memory is readable (caller), and read_unaligned has no alignment
    // requirement; any bit pattern is a valid i16.
    let lsb =
        unsafe { ptr::read_unaligned(info.cast::<u8>().add(SI_ADDR_LSB_OFFSET).cast::<i16>()) };
    SigbusInfo { code, addr, lsb }
}

// ---- Static tables (all access through atomics) ----

struct VcpuSlot {
    tid: AtomicI32,
    pending: AtomicBool,
    addr: AtomicU64,
    lsb: AtomicU8,
}

impl VcpuSlot {
    const fn new() -> Self {
        Self {
            tid: AtomicI32::new(0),
            pending: AtomicBool::new(false),
            addr: AtomicU64::new(0),
            lsb: AtomicU8::new(0),
        }
    }
}

const AO_EMPTY: u8 = 0;
const AO_BUSY: u8 = 1;
const AO_FULL: u8 = 2;

struct AoSlot {
    state: AtomicU8,
    seq: AtomicU64,
    addr: AtomicU64,
    lsb: AtomicU8,
}

static VCPUS: [VcpuSlot; MAX_VCPU_THREADS] = [const { VcpuSlot::new() }; MAX_VCPU_THREADS];
static AO: [AoSlot; AO_QUEUE_LEN] = [const {
    AoSlot {
        state: AtomicU8::new(AO_EMPTY),
        seq: AtomicU64::new(0),
        addr: AtomicU64::new(0),
        lsb: AtomicU8::new(0),
    }
}; AO_QUEUE_LEN];
static AO_SEQ: AtomicU64 = AtomicU64::new(0);
static AO_DROPPED: AtomicU64 = AtomicU64::new(0);
static AO_NOTIFY_FD: AtomicI32 = AtomicI32::new(-1);
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// Live [`SigbusHandler`]s, and the action they replaced.
static OWNERS: Mutex<(usize, Option<libc::sigaction>)> = Mutex::new((0, None));

fn gettid() -> i32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

// ---- Handler installation ----

/// The process-wide `SIGBUS` handler, installed while at least one of
/// these lives (one per VM with RAS).
#[derive(Debug)]
pub struct SigbusHandler {
    _private: (),
}

impl SigbusHandler {
    /// Installs the handler (`SA_SIGINFO | SA_ONSTACK | SA_RESTART`;
    /// `KVM_RUN` still returns `EINTR`) unless it is already installed.
    /// Call it before the vCPU threads run. It replaces any earlier
    /// `SIGBUS` handler (Rust's std installs one for stack overflows on
    /// some targets: a stack-overflow `SIGBUS` then takes the crash path);
    /// the earlier one is put back when the last handle is dropped.
    pub fn install() -> Result<Self, SigbusError> {
        let mut owners = OWNERS.lock().unwrap();
        if owners.0 == 0 {
            // SAFETY: an all-zero sigaction is a valid value (empty mask,
            // no flags).
            let mut action: libc::sigaction = unsafe { zeroed() };
            action.sa_sigaction = handle_sigbus as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
            // SAFETY: an all-zero sigaction is valid storage for the old one.
            let mut old: libc::sigaction = unsafe { zeroed() };
            // SAFETY: `action` is fully initialised, the handler has the
            // SA_SIGINFO signature and is async-signal-safe; `old` is ours.
            let ret = unsafe { libc::sigaction(SIGBUS, &action, &mut old) };
            if ret != 0 {
                return Err(SigbusError::Install(io::Error::last_os_error()));
            }
            owners.1 = Some(old);
            INSTALLED.store(true, Ordering::Release);
        }
        owners.0 += 1;
        Ok(Self { _private: () })
    }
}

impl Drop for SigbusHandler {
    fn drop(&mut self) {
        let mut owners = OWNERS.lock().unwrap();
        owners.0 -= 1;
        if owners.0 == 0
            && let Some(old) = owners.1.take()
        {
            INSTALLED.store(false, Ordering::Release);
            // SAFETY: `old` is the action sigaction gave back at install.
            unsafe { libc::sigaction(SIGBUS, &old, ptr::null_mut()) };
        }
    }
}

fn sigbus_blocked() -> Result<bool, SigbusError> {
    // SAFETY: an all-zero sigset_t is valid storage for pthread_sigmask.
    let mut set: libc::sigset_t = unsafe { zeroed() };
    // SAFETY: SIG_BLOCK with a null new set only reads the current mask
    // into `set`, which we own.
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, ptr::null(), &mut set) };
    if ret != 0 {
        return Err(SigbusError::SigMask(io::Error::from_raw_os_error(ret)));
    }
    // SAFETY: `set` was filled in by pthread_sigmask.
    Ok(unsafe { libc::sigismember(&set, SIGBUS) } == 1)
}

// ---- vCPU registration ----

/// Registration of the current thread as a vCPU thread; dropping it ends
/// the registration. Not `Send`: it belongs to the thread that created it.
#[derive(Debug)]
pub struct VcpuSigbusGuard {
    slot: usize,
    vcpu: u32,
    _not_send: PhantomData<*const ()>,
}

impl VcpuSigbusGuard {
    /// Registers the calling thread as the thread of vCPU `vcpu`. Requires
    /// an installed [`SigbusHandler`] and an unblocked `SIGBUS`.
    ///
    /// A test thread that poisons guest RAM with `madvise(MADV_HWPOISON)`
    /// gets an immediate `BUS_MCEERR_AR` itself on Linux 7.x: register it
    /// too (any index, e.g. `u32::MAX`) and [`Self::take_pending`] after the
    /// call, or it takes the crash path.
    pub fn register(vcpu: u32) -> Result<Self, SigbusError> {
        if !INSTALLED.load(Ordering::Acquire) {
            return Err(SigbusError::NotInstalled);
        }
        if sigbus_blocked()? {
            return Err(SigbusError::Blocked);
        }
        let tid = gettid();
        if VCPUS.iter().any(|s| s.tid.load(Ordering::Acquire) == tid) {
            return Err(SigbusError::AlreadyRegistered);
        }
        for (i, s) in VCPUS.iter().enumerate() {
            if s.tid
                .compare_exchange(0, tid, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                s.pending.store(false, Ordering::Release);
                return Ok(Self {
                    slot: i,
                    vcpu,
                    _not_send: PhantomData,
                });
            }
        }
        Err(SigbusError::TooManyVcpuThreads)
    }

    /// The vCPU index given at registration.
    pub fn vcpu(&self) -> u32 {
        self.vcpu
    }

    /// Takes the `BUS_MCEERR_AR` recorded on this thread, if any. Call it
    /// when `KVM_RUN` returned `EINTR`; then report it and inject an abort
    /// before the next `KVM_RUN`.
    pub fn take_pending(&self) -> Option<SigbusRecord> {
        let s = &VCPUS[self.slot];
        // Clear first: a signal arriving after this overwrites the fields
        // and sets `pending` again (at worst the record is returned twice).
        if !s.pending.swap(false, Ordering::AcqRel) {
            return None;
        }
        Some(SigbusRecord::ActionRequired {
            vcpu: self.vcpu,
            hva: Hva(s.addr.load(Ordering::Acquire)),
            lsb: s.lsb.load(Ordering::Acquire),
        })
    }
}

impl Drop for VcpuSigbusGuard {
    fn drop(&mut self) {
        let s = &VCPUS[self.slot];
        s.pending.store(false, Ordering::Release);
        s.tid.store(0, Ordering::Release);
    }
}

// ---- BUS_MCEERR_AO queue ----

/// The eventfd the handler increments after queueing an `AO`, so the VMM
/// can poll for it; registered until dropped. A newer registration
/// replaces an older one, and dropping the older one then leaves the newer
/// in place (a VM created before the previous one is gone).
#[derive(Debug)]
pub struct AoNotify {
    fd: RawFd,
}

impl AoNotify {
    /// Registers `fd`, which must stay open while the registration lives.
    pub fn register(fd: RawFd) -> Self {
        AO_NOTIFY_FD.store(fd, Ordering::Release);
        Self { fd }
    }
}

impl Drop for AoNotify {
    fn drop(&mut self) {
        let _ = AO_NOTIFY_FD.compare_exchange(self.fd, -1, Ordering::AcqRel, Ordering::Relaxed);
    }
}

fn push_ao(addr: u64, lsb: u8) -> bool {
    let seq = AO_SEQ.fetch_add(1, Ordering::AcqRel);
    for s in &AO {
        if s.state
            .compare_exchange(AO_EMPTY, AO_BUSY, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            s.seq.store(seq, Ordering::Relaxed);
            s.addr.store(addr, Ordering::Relaxed);
            s.lsb.store(lsb, Ordering::Relaxed);
            s.state.store(AO_FULL, Ordering::Release);
            return true;
        }
    }
    AO_DROPPED.fetch_add(1, Ordering::AcqRel);
    false
}

/// Takes every queued `BUS_MCEERR_AO`, oldest first. Not for signal
/// context (it allocates).
pub fn drain_action_optional() -> Vec<SigbusRecord> {
    let mut out = Vec::new();
    for s in &AO {
        if s.state
            .compare_exchange(AO_FULL, AO_BUSY, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            let seq = s.seq.load(Ordering::Relaxed);
            let hva = s.addr.load(Ordering::Relaxed);
            let lsb = s.lsb.load(Ordering::Relaxed);
            s.state.store(AO_EMPTY, Ordering::Release);
            out.push((seq, SigbusRecord::ActionOptional { hva: Hva(hva), lsb }));
        }
    }
    out.sort_by_key(|(seq, _)| *seq);
    out.into_iter().map(|(_, r)| r).collect()
}

/// `AO` signals lost because the queue was full (since start).
pub fn dropped_action_optional() -> u64 {
    AO_DROPPED.load(Ordering::Acquire)
}

// ---- The handler ----

/// A fixed buffer for a message, formatted without allocation.
struct Msg {
    buf: [u8; 256],
    len: usize,
}

impl Msg {
    const fn new() -> Self {
        Self {
            buf: [0; 256],
            len: 0,
        }
    }
    fn str(&mut self, s: &str) -> &mut Self {
        for &b in s.as_bytes() {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        self
    }
    fn num(&mut self, mut v: u64, hex: bool) -> &mut Self {
        let base = if hex { 16 } else { 10 };
        let mut digits = [0u8; 20];
        let mut n = 0;
        loop {
            digits[n] = b"0123456789abcdef"[(v % base) as usize];
            n += 1;
            v /= base;
            if v == 0 {
                break;
            }
        }
        if hex {
            self.str("0x");
        }
        while n > 0 {
            n -= 1;
            if self.len < self.buf.len() {
                self.buf[self.len] = digits[n];
                self.len += 1;
            }
        }
        self
    }
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Why a `SIGBUS` takes the crash path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fatal {
    NotVcpuThread,
    NotGuestRam,
    Repeated,
    OtherCode,
}

fn fatal_message(why: Fatal, si: &SigbusInfo, tid: i32) -> Msg {
    let mut m = Msg::new();
    m.str("Fatal SIGBUS: ").str(match why {
        Fatal::NotVcpuThread => {
            "memory failure (BUS_MCEERR_AR) on a thread that is not a vCPU thread"
        }
        Fatal::NotGuestRam => "memory failure (BUS_MCEERR_AR) outside guest RAM",
        Fatal::Repeated => {
            "memory failure (BUS_MCEERR_AR) repeated before the vCPU loop handled it"
        }
        Fatal::OtherCode => "not a memory failure",
    });
    m.str(" (si_code ")
        .num(si.code as u64, false)
        .str(", si_addr ")
        .num(si.addr, true)
        .str(", si_addr_lsb ")
        .num(si.lsb as u64, false)
        .str(", tid ")
        .num(tid as u64, false)
        .str(")\n");
    m
}

/// Writes the message, restores `SIG_DFL` and re-queues the signal with
/// its original siginfo: it is delivered, and kills the process, as soon
/// as the handler returns (SIGBUS is blocked while the handler runs).
fn crash(why: Fatal, si: &SigbusInfo, tid: i32, info: *const siginfo_t) {
    let m = fatal_message(why, si, tid);
    let bytes = m.bytes();
    // SAFETY: write(2) on stderr of a buffer we own; async-signal-safe.
    let _ = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
    // SAFETY: an all-zero sigaction with SIG_DFL (0) is valid.
    let mut dfl: libc::sigaction = unsafe { zeroed() };
    dfl.sa_sigaction = libc::SIG_DFL;
    // SAFETY: `dfl` is initialised; sigaction is async-signal-safe.
    unsafe { libc::sigaction(SIGBUS, &dfl, ptr::null_mut()) };
    // SAFETY: getpid is async-signal-safe and cannot fail.
    let pid = unsafe { libc::getpid() };
    // SAFETY: re-queue to this very thread the siginfo the kernel gave us
    // (valid for the duration of the handler); queueing a positive si_code
    // to one's own thread group is allowed.
    let ret = unsafe { libc::syscall(libc::SYS_rt_tgsigqueueinfo, pid, tid, SIGBUS, info) };
    if ret != 0 {
        // SAFETY: tgkill to ourselves; async-signal-safe.
        unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, SIGBUS) };
    }
}

fn errno_location() -> *mut c_int {
    // SAFETY: returns the calling thread's errno location; no preconditions.
    unsafe { libc::__errno_location() }
}

extern "C" fn handle_sigbus(_signo: c_int, info: *mut siginfo_t, _ctx: *mut c_void) {
    let errno = errno_location();
    // SAFETY: `errno` points to this thread's errno.
    let saved_errno = unsafe { *errno };
    // SAFETY: the kernel passes a valid siginfo_t with SA_SIGINFO.
    let si = unsafe { read_siginfo(info) };
    let lsb = u8::try_from(si.lsb).unwrap_or(0);
    let tid = gettid();
    match si.code {
        BUS_MCEERR_AR => match VCPUS.iter().find(|s| s.tid.load(Ordering::Acquire) == tid) {
            None => crash(Fatal::NotVcpuThread, &si, tid, info),
            Some(_) if !guest_ram::is_guest_ram(Hva(si.addr)) => {
                crash(Fatal::NotGuestRam, &si, tid, info);
            }
            Some(s)
                if s.pending.load(Ordering::Acquire)
                    && s.addr.load(Ordering::Relaxed) == si.addr =>
            {
                crash(Fatal::Repeated, &si, tid, info);
            }
            Some(s) => {
                s.addr.store(si.addr, Ordering::Relaxed);
                s.lsb.store(lsb, Ordering::Relaxed);
                s.pending.store(true, Ordering::Release);
            }
        },
        BUS_MCEERR_AO => {
            if push_ao(si.addr, lsb) {
                let fd = AO_NOTIFY_FD.load(Ordering::Acquire);
                if fd >= 0 {
                    let one = 1u64.to_ne_bytes();
                    // SAFETY: write(2) of 8 bytes we own; async-signal-safe.
                    let _ = unsafe { libc::write(fd, one.as_ptr().cast(), one.len()) };
                }
            }
        }
        _ => crash(Fatal::OtherCode, &si, tid, info),
    }
    // SAFETY: restore this thread's errno.
    unsafe { *errno = saved_errno };
}

#[cfg(test)]
mod tests {
    use std::mem::transmute;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{self, Command};
    use std::{env, str, thread};

    use ras::granule::GpaGranule;
    use vm_memory::GuestAddress;

    use super::super::guest_ram::{GuestRam, RamRange, TEST_SERIAL};
    use super::*;

    /// Registers `[hva, hva + len)` as guest RAM for a test.
    fn guest_ram(hva: u64, len: u64) -> GuestRam {
        GuestRam::register(&[RamRange {
            hva: Hva(hva),
            len,
            gpa: GuestAddress(0x4000_0000),
            page_shift: 12,
        }])
        .unwrap()
    }

    /// `include/uapi/asm-generic/siginfo.h` for SIGBUS on 64-bit: a
    /// mirror written from the header, independent of the reader.
    #[repr(C)]
    struct KernelSigbusInfo {
        si_signo: i32,
        si_errno: i32,
        si_code: i32,
        _pad0: i32,
        addr: u64,
        addr_lsb: i16,
        _rest: [u8; 128 - 26],
    }

    fn kernel_info(code: i32, addr: u64, lsb: i16) -> siginfo_t {
        assert_eq!(size_of::<siginfo_t>(), 128);
        assert_eq!(size_of::<KernelSigbusInfo>(), 128);
        let k = KernelSigbusInfo {
            si_signo: SIGBUS,
            si_errno: 0,
            si_code: code,
            _pad0: 0,
            addr,
            addr_lsb: lsb,
            _rest: [0; 128 - 26],
        };
        // SAFETY: both types are 128-byte plain-old-data.
        unsafe { transmute::<KernelSigbusInfo, siginfo_t>(k) }
    }

    /// Queues `info` as SIGBUS to the calling thread; the handler has run
    /// when this returns.
    fn send_to_self(info: &siginfo_t) {
        // SAFETY: getpid/gettid; `info` is a valid siginfo_t that the
        // kernel copies.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_rt_tgsigqueueinfo,
                libc::getpid(),
                gettid(),
                SIGBUS,
                info as *const siginfo_t,
            )
        };
        assert_eq!(ret, 0, "{}", io::Error::last_os_error());
    }

    #[test]
    fn lsb_offset_pinned() {
        assert_eq!(SIFIELDS_OFFSET, 16);
        assert_eq!(SI_ADDR_LSB_OFFSET, 24);
        let info = kernel_info(BUS_MCEERR_AR, 0x7f00_dead_b000, 21);
        // SAFETY: `info` is a valid siginfo_t.
        let si = unsafe { read_siginfo(&info) };
        assert_eq!(
            si,
            SigbusInfo {
                code: 4,
                addr: 0x7f00_dead_b000,
                lsb: 21
            }
        );
        // SAFETY: `info` is a valid siginfo_t; the accessor reads _addr.
        assert_eq!(unsafe { info.si_addr() } as u64, 0x7f00_dead_b000);
    }

    #[test]
    fn message_formatting() {
        let si = SigbusInfo {
            code: 4,
            addr: 0x7f12_3400_0000,
            lsb: 12,
        };
        let m = fatal_message(Fatal::NotGuestRam, &si, 4242);
        assert_eq!(
            str::from_utf8(m.bytes()).unwrap(),
            "Fatal SIGBUS: memory failure (BUS_MCEERR_AR) outside guest RAM \
             (si_code 4, si_addr 0x7f1234000000, si_addr_lsb 12, tid 4242)\n"
        );
        let mut m = Msg::new();
        for _ in 0..50 {
            m.str("0123456789");
        }
        assert_eq!(m.bytes().len(), 256);
    }

    #[test]
    fn ao_queue_is_bounded_and_ordered() {
        // Only this test uses the queue in this process.
        let before = dropped_action_optional();
        for i in 0..AO_QUEUE_LEN as u64 + 3 {
            push_ao(0x1000 * i, 12);
        }
        assert_eq!(dropped_action_optional() - before, 3);
        let drained = drain_action_optional();
        assert_eq!(drained.len(), AO_QUEUE_LEN);
        assert_eq!(
            drained[0],
            SigbusRecord::ActionOptional {
                hva: Hva(0),
                lsb: 12
            }
        );
        assert_eq!(
            drained[5],
            SigbusRecord::ActionOptional {
                hva: Hva(0x5000),
                lsb: 12
            }
        );
        assert!(drain_action_optional().is_empty());

        // A real AO signal, on a thread that is not a vCPU thread.
        let _serial = TEST_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let _handler = SigbusHandler::install().unwrap();
        let (rfd, wfd) = eventfd_pair();
        // An older registration dropped after a newer one leaves it.
        let older = AoNotify::register(-7);
        let notify = AoNotify::register(wfd);
        drop(older);
        thread::spawn(|| send_to_self(&kernel_info(BUS_MCEERR_AO, 0x6666_0020_0000, 21)))
            .join()
            .unwrap();
        drop(notify);
        assert_eq!(AO_NOTIFY_FD.load(Ordering::Acquire), -1);
        assert_eq!(
            drain_action_optional(),
            vec![SigbusRecord::ActionOptional {
                hva: Hva(0x6666_0020_0000),
                lsb: 21
            }]
        );
        let mut buf = [0u8; 8];
        // SAFETY: read 8 bytes from our eventfd into our buffer.
        assert_eq!(unsafe { libc::read(rfd, buf.as_mut_ptr().cast(), 8) }, 8);
        assert_eq!(u64::from_ne_bytes(buf), 1);
        // SAFETY: closing the fd we created.
        unsafe { libc::close(rfd) };
    }

    fn eventfd_pair() -> (RawFd, RawFd) {
        // SAFETY: plain eventfd creation.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(fd >= 0);
        (fd, fd)
    }

    #[test]
    fn ar_on_registered_vcpu_thread_is_recorded() {
        let _serial = TEST_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let _handler = SigbusHandler::install().unwrap();
        let ram = 0x7777_0000_0000u64;
        let _ram = guest_ram(ram, 1 << 30);
        thread::spawn(move || {
            let guard = VcpuSigbusGuard::register(7).unwrap();
            assert!(matches!(
                VcpuSigbusGuard::register(8),
                Err(SigbusError::AlreadyRegistered)
            ));
            assert_eq!(guard.take_pending(), None);
            send_to_self(&kernel_info(BUS_MCEERR_AR, ram + 0x20_1234, 12));
            assert_eq!(
                guard.take_pending(),
                Some(SigbusRecord::ActionRequired {
                    vcpu: 7,
                    hva: Hva(ram + 0x20_1234),
                    lsb: 12
                })
            );
            assert_eq!(guard.take_pending(), None);
            // The same address again after it was taken: recorded again.
            send_to_self(&kernel_info(BUS_MCEERR_AR, ram + 0x20_1234, 12));
            assert!(guard.take_pending().is_some());
            // errno survives the handler.
            // SAFETY: this thread's errno.
            unsafe { *libc::__errno_location() = libc::EINTR };
            send_to_self(&kernel_info(BUS_MCEERR_AR, ram, 21));
            // SAFETY: this thread's errno.
            assert_eq!(unsafe { *libc::__errno_location() }, libc::EINTR);
            drop(guard);
            // Registration ended: a new one works on the same thread.
            let again = VcpuSigbusGuard::register(9).unwrap();
            assert_eq!(again.vcpu(), 9);
            assert_eq!(again.take_pending(), None);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn records_report_the_lost_granule_and_the_accessed_page() {
        let _serial = TEST_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let ram = 0x7778_0000_0000u64;
        let _ram = guest_ram(ram, 1 << 30);
        let time = ReportTime {
            unix_time: 7,
            monotonic_ms: 9,
        };
        let gpa_of = |off: u64| GuestAddress(0x4000_0000 + off);
        let gr = |off, shift| GpaGranule::containing(gpa_of(off), shift).unwrap();
        // A 2 MiB loss, si_addr inside it: the whole granule is lost, the
        // record will name the accessed page.
        let ar = SigbusRecord::ActionRequired {
            vcpu: 3,
            hva: Hva(ram + 0x27_5123),
            lsb: 21,
        };
        assert_eq!(
            ar.report(time).unwrap(),
            ErrorReport {
                cause: ErrorCause::Consumed {
                    vcpu: 3,
                    origin: Origin::Sigbus,
                    granule: Some(gr(0x20_0000, 21)),
                    page: Some(gr(0x27_5000, 12)),
                    gva: None,
                },
                unix_time: 7,
                monotonic_ms: 9,
            }
        );
        // An announced loss: the granule only.
        let ao = SigbusRecord::ActionOptional {
            hva: Hva(ram + 0x20_0000),
            lsb: 21,
        };
        assert_eq!(
            ao.report(time).unwrap().cause,
            ErrorCause::Announced {
                granule: gr(0x20_0000, 21),
                found_by: FoundBy::HostSignal,
            }
        );
        // Not guest RAM: refused, never a made-up address.
        let outside = SigbusRecord::ActionRequired {
            vcpu: 0,
            hva: Hva(ram - 0x1000),
            lsb: 12,
        };
        assert_eq!(
            outside.report(time),
            Err(GuestRamError::NotGuestRam(Hva(ram - 0x1000)))
        );
    }

    #[test]
    fn blocked_sigbus_refused() {
        let _serial = TEST_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let _handler = SigbusHandler::install().unwrap();
        thread::spawn(|| {
            // SAFETY: sigset manipulation on local storage; blocks SIGBUS
            // on this short-lived thread only.
            unsafe {
                let mut set: libc::sigset_t = zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, SIGBUS);
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, ptr::null_mut());
            }
            assert!(matches!(
                VcpuSigbusGuard::register(0),
                Err(SigbusError::Blocked)
            ));
        })
        .join()
        .unwrap();
    }

    /// Child-process side of the crash tests, run by
    /// [`crash_behaviour_kept`] only (ignored otherwise: it is not a test
    /// of its own): does one thing that must kill the process.
    #[test]
    #[ignore = "run in a child process by crash_behaviour_kept"]
    fn crash_child() {
        let case = env::var("RAS_SIGBUS_CRASH_CASE").expect("run by crash_behaviour_kept");
        let _handler = SigbusHandler::install().unwrap();
        let ram = 0x7777_0000_0000u64;
        let _ram = guest_ram(ram, 1 << 20);
        match case.as_str() {
            "not-vcpu" => send_to_self(&kernel_info(BUS_MCEERR_AR, ram, 12)),
            "not-ram" => {
                let _g = VcpuSigbusGuard::register(0).unwrap();
                send_to_self(&kernel_info(BUS_MCEERR_AR, 0x1000, 12));
            }
            "repeated" => {
                let _g = VcpuSigbusGuard::register(0).unwrap();
                send_to_self(&kernel_info(BUS_MCEERR_AR, ram, 12));
                send_to_self(&kernel_info(BUS_MCEERR_AR, ram, 12));
            }
            "other-code" => {
                let _g = VcpuSigbusGuard::register(0).unwrap();
                send_to_self(&kernel_info(libc::BUS_ADRERR, ram, 0));
            }
            other => panic!("unknown case {other}"),
        }
        // Still alive: exit with a distinctive status.
        process::exit(3);
    }

    fn run_crash_case(case: &str) -> (Option<i32>, String) {
        // The test's path without the crate name, wherever the file is.
        let module = module_path!().split_once("::").unwrap().1;
        let out = Command::new(env::current_exe().unwrap())
            .args([
                "--exact",
                &format!("{module}::crash_child"),
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("RAS_SIGBUS_CRASH_CASE", case)
            .output()
            .unwrap();
        (
            out.status.signal(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn crash_behaviour_kept() {
        for (case, text) in [
            (
                "not-vcpu",
                "on a thread that is not a vCPU thread (si_code 4, si_addr 0x777700000000",
            ),
            (
                "not-ram",
                "outside guest RAM (si_code 4, si_addr 0x1000, si_addr_lsb 12",
            ),
            ("repeated", "repeated before the vCPU loop handled it"),
            ("other-code", "not a memory failure (si_code 2"),
        ] {
            let (signal, stderr) = run_crash_case(case);
            assert_eq!(signal, Some(SIGBUS), "{case}: {stderr}");
            assert!(stderr.contains(text), "{case}: {stderr}");
        }
    }

    #[test]
    fn previous_handler_is_restored() {
        let _serial = TEST_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let current = || {
            // SAFETY: all-zero storage for the old action; a null new
            // action only reads.
            let mut old: libc::sigaction = unsafe { zeroed() };
            // SAFETY: see above.
            unsafe { libc::sigaction(SIGBUS, ptr::null(), &mut old) };
            old.sa_sigaction
        };
        let before = current();
        let a = SigbusHandler::install().unwrap();
        let b = SigbusHandler::install().unwrap();
        assert_eq!(current(), handle_sigbus as *const () as libc::sighandler_t);
        drop(a);
        // One VM with RAS still runs: still ours.
        assert_eq!(current(), handle_sigbus as *const () as libc::sighandler_t);
        drop(b);
        assert_eq!(current(), before);
        assert!(matches!(
            thread::spawn(|| VcpuSigbusGuard::register(0).map(|_| ()))
                .join()
                .unwrap(),
            Err(SigbusError::NotInstalled)
        ));
    }
}
