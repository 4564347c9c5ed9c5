// SPDX-License-Identifier: Apache-2.0
//! Real hardware poison for the labs' scenarios, as both harnesses make it:
//! `madvise(MADV_HWPOISON)` from a helper thread whose own signal the edge
//! captures, or a page frame written to hwpoison-inject's `corrupt-pfn`
//! (found through `/proc/self/pagemap`), and the kernel release the facts
//! are printed with.

use std::io::{Read, Seek, SeekFrom};
use std::{fs, io, thread};

use ras_edge::host::sigbus::{SigbusRecord, VcpuSigbusGuard};

use crate::lab_error::{LabError, edge};

/// The page size poison is made in.
pub const PAGE: u64 = 4096;
/// SIGBUS-capture slot id of the poisoning helper threads.
pub const HELPER_ID: u32 = 900;
/// hwpoison-inject's file (debugfs): a page frame number written there is
/// poisoned as hardware would.
pub const CORRUPT_PFN: &str = "/sys/kernel/debug/hwpoison/corrupt-pfn";

/// The running kernel's release (`uname -r`), empty when unreadable.
pub fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The page frame behind host virtual address `hva` in this process (0 when
/// not present), from `/proc/self/pagemap` (bit 63 present, bits 0-54 PFN;
/// Documentation/admin-guide/mm/pagemap.rst).
pub fn pfn_of(hva: u64) -> io::Result<u64> {
    let mut f = fs::File::open("/proc/self/pagemap")?;
    f.seek(SeekFrom::Start(hva / PAGE * 8))?;
    let mut b = [0u8; 8];
    f.read_exact(&mut b)?;
    let e = u64::from_le_bytes(b);
    Ok(if e >> 63 == 1 { e & ((1 << 55) - 1) } else { 0 })
}

/// Poisons the page of `hva` with `madvise(MADV_HWPOISON)` from a helper
/// thread registered for SIGBUS capture; returns what that thread itself
/// was told (the kernel may signal the caller at once).
pub fn poison_madvise(hva: u64) -> Result<Option<SigbusRecord>, LabError> {
    thread::spawn(move || {
        let guard = VcpuSigbusGuard::register(HELPER_ID).map_err(edge)?;
        // SAFETY: madvise on a page of guest RAM we mapped; MADV_HWPOISON
        // only poisons it (a SIGBUS, if any, is captured by the handler).
        let r = unsafe {
            libc::madvise(
                (hva & !(PAGE - 1)) as *mut libc::c_void,
                PAGE as usize,
                libc::MADV_HWPOISON,
            )
        };
        if r != 0 {
            return Err(LabError::Io(
                "madvise(MADV_HWPOISON)",
                io::Error::last_os_error(),
            ));
        }
        Ok(guard.take_pending())
    })
    .join()
    .map_err(|_| LabError::Guest("poison thread panicked".into()))?
}

/// A scenario on hugetlb-backed guest RAM: runs `make` to map it, or says
/// why the scenario is skipped: no 2 MiB pages reserved
/// (`/proc/sys/vm/nr_hugepages` = 0), or the mapping failed for want of
/// one ([`LabError::Memory`]). Other errors are the scenario's.
pub fn with_hugetlb<T>(
    make: impl FnOnce() -> Result<T, LabError>,
) -> Result<Result<T, crate::Verdict>, LabError> {
    let nr = fs::read_to_string("/proc/sys/vm/nr_hugepages").unwrap_or_default();
    if nr.trim().parse::<u64>().unwrap_or(0) == 0 {
        return Ok(Err(crate::Verdict::Skip(
            "no hugetlb pages (/proc/sys/vm/nr_hugepages = 0)".into(),
        )));
    }
    match make() {
        Ok(t) => Ok(Ok(t)),
        Err(LabError::Memory(e)) => Ok(Err(crate::Verdict::Skip(format!(
            "cannot map a 2 MiB hugetlb page: {e}"
        )))),
        Err(e) => Err(e),
    }
}
