// SPDX-License-Identifier: Apache-2.0
//! SIGBUS capture for the lab VMM.
//!
//! The handler is async-signal-safe: for a memory-failure SIGBUS
//! (BUS_MCEERR_AR / BUS_MCEERR_AO) whose address lies in guest RAM it stores
//! (code, address, lsb) in a per-thread slot and returns; the thread (a vCPU
//! after KVM_RUN -> EINTR, the main thread for early-kill notices) picks it
//! up. Any other SIGBUS (not a memory failure, or an address that is not
//! guest RAM) cannot be recovered: the handler writes a clear message to
//! stderr and exits with [`EXIT_NOT_GUEST_RAM`].

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::{io, mem, ptr};

pub const BUS_MCEERR_AR: i32 = 4;
pub const BUS_MCEERR_AO: i32 = 5;
/// Exit status of the VMM when a SIGBUS cannot be attributed to guest RAM.
pub const EXIT_NOT_GUEST_RAM: i32 = 75;

/// One captured SIGBUS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sigbus {
    pub code: i32,
    pub addr: u64,
    pub lsb: u16,
}

impl Sigbus {
    pub fn code_name(&self) -> &'static str {
        match self.code {
            BUS_MCEERR_AR => "BUS_MCEERR_AR",
            BUS_MCEERR_AO => "BUS_MCEERR_AO",
            _ => "other",
        }
    }
}

thread_local! {
    static PENDING: Cell<Option<Sigbus>> = const { Cell::new(None) };
}

const MAX_RANGES: usize = 8;
static RANGES: [(AtomicU64, AtomicU64); MAX_RANGES] =
    [const { (AtomicU64::new(0), AtomicU64::new(0)) }; MAX_RANGES];

/// Declare `[start, start+len)` (host virtual addresses) as guest RAM.
pub fn add_guest_ram(start: u64, len: u64) {
    for (s, l) in &RANGES {
        if l.load(Ordering::Acquire) == 0 {
            s.store(start, Ordering::Release);
            l.store(len, Ordering::Release);
            return;
        }
    }
    panic!("too many guest RAM ranges");
}

/// Forget every guest RAM range (between scenarios).
pub fn clear_guest_ram() {
    for (s, l) in &RANGES {
        l.store(0, Ordering::Release);
        s.store(0, Ordering::Release);
    }
}

fn in_guest_ram(addr: u64) -> bool {
    RANGES.iter().any(|(s, l)| {
        let (s, l) = (s.load(Ordering::Acquire), l.load(Ordering::Acquire));
        l != 0 && addr >= s && addr - s < l
    })
}

/// Take this thread's captured SIGBUS, if any.
pub fn take() -> Option<Sigbus> {
    PENDING.with(Cell::take)
}

fn write_stderr(b: &[u8]) {
    // SAFETY: write(2) on fd 2 with a valid buffer; async-signal-safe.
    unsafe { libc::write(2, b.as_ptr().cast(), b.len()) };
}

fn hex(mut v: u64, out: &mut [u8; 18]) -> &[u8] {
    out[0] = b'0';
    out[1] = b'x';
    for i in (2..18).rev() {
        let d = (v & 0xf) as u8;
        out[i] = if d < 10 { b'0' + d } else { b'a' + d - 10 };
        v >>= 4;
    }
    &out[..]
}

extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers;
    // si_addr_lsb is the short that follows si_addr in the _sigfault union
    // member (offset 24 on 64-bit Linux).
    let (code, addr, lsb) = unsafe {
        let code = (*info).si_code;
        let addr = (*info).si_addr() as u64;
        let lsb = *(info.cast::<u8>().add(24).cast::<i16>());
        (code, addr, lsb as u16)
    };
    if (code == BUS_MCEERR_AR || code == BUS_MCEERR_AO) && in_guest_ram(addr) {
        PENDING.with(|p| p.set(Some(Sigbus { code, addr, lsb })));
        return;
    }
    let mut buf = [0u8; 18];
    write_stderr(b"ras_lab: fatal: SIGBUS (si_code ");
    write_stderr(hex(code as u64, &mut buf));
    write_stderr(b") at host address ");
    write_stderr(hex(addr, &mut buf));
    write_stderr(b", which is not guest RAM: this memory error cannot be reported to the guest; stopping the VMM\n");
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(EXIT_NOT_GUEST_RAM) };
}

/// Install the process-wide SIGBUS handler.
pub fn install() -> io::Result<()> {
    // SAFETY: a zeroed sigaction is valid; we set the handler and flags.
    let mut sa: libc::sigaction = unsafe { mem::zeroed() };
    sa.sa_sigaction = on_sigbus as *const () as usize;
    sa.sa_flags = libc::SA_SIGINFO;
    // SAFETY: sa is a valid sigaction; the old action is not needed.
    let r = unsafe {
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGBUS, &sa, ptr::null_mut())
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
