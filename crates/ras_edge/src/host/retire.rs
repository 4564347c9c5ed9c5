// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! Host pages the host kernel does not know are bad.
//!
//! `KVM_EXIT_ARM_SEA` reports an abort the host did not claim: the host
//! still takes the physical page behind it for good and would hand it out
//! again once the VMM unmaps it. The VMM retires such a page
//! ([`retire`]: `madvise(MADV_HWPOISON)`, which needs `CAP_SYS_ADMIN` and
//! `CONFIG_MEMORY_FAILURE`; the kernel then isolates the page and signals
//! the calling thread `BUS_MCEERR_AR`), and, where it may not, keeps it out
//! of service for as long as it runs ([`quarantine`]: the page is moved to
//! a mapping that is never unmapped, so that neither the next VM nor the
//! host's allocator gets it).

use std::sync::Mutex;
use std::{io, ptr};

use super::guest_ram::Hva;

/// Pages moved out of guest memory, never unmapped.
static QUARANTINE: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

/// The host page size.
pub fn page_size() -> u64 {
    // SAFETY: FFI call. Trivially safe.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as u64 }
}

/// `(hva, len)` widened to whole host pages.
fn pages(hva: Hva, len: u64) -> (u64, u64) {
    let page = page_size();
    let start = hva.raw_value() - hva.raw_value() % page;
    let end = (hva.raw_value() + len.max(1)).next_multiple_of(page);
    (start, end - start)
}

/// Poisons the host pages of `[hva, hva + len)` (`MADV_HWPOISON`): the
/// kernel stops using them. The calling thread gets `SIGBUS`
/// `BUS_MCEERR_AR` for them (a registered vCPU thread: take it with
/// `VcpuSigbusGuard::take_pending` and drop it).
pub fn retire(hva: Hva, len: u64) -> io::Result<()> {
    let (start, len) = pages(hva, len);
    // SAFETY: madvise on a mapping of this process; it only changes the
    // state of those pages, which the caller stopped using.
    let ret = unsafe {
        libc::madvise(
            start as *mut libc::c_void,
            len as usize,
            libc::MADV_HWPOISON,
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Moves the host pages of `[hva, hva + len)` out of their mapping into one
/// this process never unmaps; the old range is left unmapped. Returns
/// where they went. For a shared file mapping the page stays in the file.
pub fn quarantine(hva: Hva, len: u64) -> io::Result<Hva> {
    let (start, len) = pages(hva, len);
    // A place of our own to move them to (mremap of an unchanged size
    // would leave them where they are).
    // SAFETY: a fresh reservation, no access, chosen by the kernel.
    let place = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len as usize,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if place == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: moves pages of a mapping of this process that nothing uses
    // any more (its VM is shut down) onto the reservation made above.
    let moved = unsafe {
        libc::mremap(
            start as *mut libc::c_void,
            len as usize,
            len as usize,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            place,
        )
    };
    if moved == libc::MAP_FAILED {
        let e = io::Error::last_os_error();
        // SAFETY: giving back the reservation made above.
        unsafe { libc::munmap(place, len as usize) };
        return Err(e);
    }
    QUARANTINE.lock().unwrap().push((moved as u64, len));
    Ok(Hva(moved as u64))
}

/// Host memory in quarantine, in bytes.
pub fn quarantined_bytes() -> u64 {
    QUARANTINE.lock().unwrap().iter().map(|&(_, len)| len).sum()
}

#[cfg(test)]
mod tests {
    use std::slice;

    use super::*;

    /// Whether `addr` is mapped in this process (`msync` fails with ENOMEM
    /// on an unmapped page).
    fn mapped(addr: u64) -> bool {
        // SAFETY: msync only inspects the mapping at a page-aligned address.
        unsafe { libc::msync(addr as *mut libc::c_void, 1, libc::MS_ASYNC) == 0 }
    }

    #[test]
    fn quarantined_pages_keep_their_content_and_leave_the_mapping() {
        let page = page_size();
        // SAFETY: a fresh anonymous mapping of three pages, ours.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                3 * page as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let base = base as u64;
        // SAFETY: writing within the mapping made above.
        unsafe { ptr::write_bytes((base + page) as *mut u8, 0x5a, page as usize) };
        let before = quarantined_bytes();

        // An address inside the middle page moves that whole page.
        let moved = quarantine(Hva(base + page + 12), 8).unwrap();

        // The very same page, content and all, now lives elsewhere...
        // SAFETY: reading the page quarantine() returned, which it keeps mapped.
        let content =
            unsafe { slice::from_raw_parts(moved.raw_value() as *const u8, page as usize) };
        assert!(content.iter().all(|&b| b == 0x5a));
        assert_eq!(quarantined_bytes() - before, page);
        // ...and is gone from guest memory; its neighbours stay.
        assert!(!mapped(base + page));
        assert!(mapped(base));
        assert!(mapped(base + 2 * page));

        // Nothing to move: an error, nothing changes.
        quarantine(Hva(base + page), page).unwrap_err();
        assert_eq!(quarantined_bytes() - before, page);
    }

    #[test]
    fn pages_are_whole_host_pages() {
        let page = page_size();
        assert_eq!(pages(Hva(3 * page + 5), 1), (3 * page, page));
        assert_eq!(pages(Hva(3 * page), page), (3 * page, page));
        assert_eq!(pages(Hva(3 * page - 1), 2), (2 * page, 2 * page));
        // A zero length still names the page of the address.
        assert_eq!(pages(Hva(3 * page), 0), (3 * page, page));
    }
}
