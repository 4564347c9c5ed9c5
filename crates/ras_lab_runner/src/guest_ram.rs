// SPDX-License-Identifier: Apache-2.0
//! Guest RAM of a lab VM, as both labs lay it out: anonymous private
//! mappings (4 KiB pages, `MADV_NOHUGEPAGE`: a poisoned transparent huge
//! page would be split anyway) or hugetlb ones, each a KVM memslot, and
//! the [`RamRange`] list the edge's guest RAM table
//! (`ras_edge::host::guest_ram::GuestRam::register`) takes, as a VMM
//! registers its guest RAM before the guest runs.

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use ras_edge::host::guest_ram::{Hva, RamRange};
use thiserror::Error;
use vm_memory::{
    GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, GuestRegionMmap,
    MmapRegion,
};

/// One mapping of guest RAM to create.
#[derive(Clone, Copy, Debug)]
pub struct RamSpec {
    /// First guest-physical address.
    pub gpa: u64,
    /// Length in bytes.
    pub size: usize,
    /// Backed by hugetlb pages (`MAP_HUGETLB`, the default huge page size).
    pub huge: bool,
}

impl RamSpec {
    /// `size` bytes at `gpa` in 4 KiB pages.
    pub fn pages(gpa: u64, size: usize) -> Self {
        RamSpec {
            gpa,
            size,
            huge: false,
        }
    }

    /// `size` bytes at `gpa` in hugetlb pages.
    pub fn hugetlb(gpa: u64, size: usize) -> Self {
        RamSpec {
            gpa,
            size,
            huge: true,
        }
    }
}

/// Errors of this module.
#[derive(Debug, Error)]
pub enum GuestRamError {
    /// The mapping could not be made (for hugetlb: no huge pages reserved?).
    #[error("mmap {size:#x} bytes{}: {reason}", if *.huge { " (MAP_HUGETLB)" } else { "" })]
    Mmap {
        /// Length asked for.
        size: usize,
        /// Whether hugetlb pages were asked for.
        huge: bool,
        /// What vm-memory said.
        reason: String,
    },
    /// vm-memory refused the regions (overlapping or wrapping).
    #[error("guest memory layout: {0}")]
    Layout(String),
    /// A guest-physical address outside the guest's RAM.
    #[error("gpa {0:#x} is not RAM")]
    NotRam(u64),
    /// `KVM_SET_USER_MEMORY_REGION` failed.
    #[error("KVM_SET_USER_MEMORY_REGION: {0}")]
    Memslot(#[source] kvm_ioctls::Error),
}

/// log2 of the default hugetlb page size on the lab's kernels (x86_64, and
/// arm64 with 4 KiB pages): 2 MiB.
const HUGE_SHIFT: u8 = 21;

/// Maps `specs` and makes each mapping memslot `i` (its index) of `vm`.
/// The mappings live as long as the returned memory; the caller keeps it
/// together with `vm`.
pub fn map(
    vm: &VmFd,
    specs: &[RamSpec],
) -> Result<(GuestMemoryMmap, Vec<RamRange>), GuestRamError> {
    let regions = specs.iter().map(region).collect::<Result<Vec<_>, _>>()?;
    let mem =
        GuestMemoryMmap::from_regions(regions).map_err(|e| GuestRamError::Layout(e.to_string()))?;
    let mut ranges = Vec::new();
    for (slot, r) in mem.iter().enumerate() {
        let memslot = kvm_userspace_memory_region {
            slot: slot as u32,
            flags: 0,
            guest_phys_addr: r.start_addr().0,
            memory_size: r.len(),
            userspace_addr: r.as_ptr() as u64,
        };
        // SAFETY: the region stays mapped as long as `mem`, which the
        // caller keeps together with the VM fd.
        unsafe { vm.set_user_memory_region(memslot) }.map_err(GuestRamError::Memslot)?;
        ranges.push(RamRange {
            hva: Hva(r.as_ptr() as u64),
            len: r.len(),
            gpa: r.start_addr(),
            page_shift: if specs.iter().any(|s| s.gpa == r.start_addr().0 && s.huge) {
                HUGE_SHIFT
            } else {
                12
            },
        });
    }
    Ok((mem, ranges))
}

/// The host virtual address of guest-physical `gpa` (from the VM's own
/// memory: the edge's table only goes HVA -> GPA).
pub fn hva(mem: &GuestMemoryMmap, gpa: u64) -> Result<u64, GuestRamError> {
    mem.get_host_address(GuestAddress(gpa))
        .map(|p| p as u64)
        .map_err(|_| GuestRamError::NotRam(gpa))
}

fn region(spec: &RamSpec) -> Result<GuestRegionMmap, GuestRamError> {
    let RamSpec { gpa, size, huge } = *spec;
    let mut flags = libc::MAP_ANONYMOUS | libc::MAP_PRIVATE | libc::MAP_NORESERVE;
    if huge {
        flags |= libc::MAP_HUGETLB;
    }
    let mapping = MmapRegion::build(None, size, libc::PROT_READ | libc::PROT_WRITE, flags)
        .map_err(|e| GuestRamError::Mmap {
            size,
            huge,
            reason: e.to_string(),
        })?;
    if !huge {
        // SAFETY: madvise on a mapping this function owns; advisory only.
        unsafe { libc::madvise(mapping.as_ptr().cast(), size, libc::MADV_NOHUGEPAGE) };
    }
    GuestRegionMmap::new(mapping, GuestAddress(gpa))
        .ok_or_else(|| GuestRamError::Layout(format!("{size:#x} bytes at {gpa:#x} wrap")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_is_mapped_where_asked() {
        let r = region(&RamSpec::pages(0x4000_0000, 0x20_0000)).unwrap();
        assert_eq!(r.start_addr(), GuestAddress(0x4000_0000));
        assert_eq!(r.len(), 0x20_0000);
    }

    #[test]
    fn a_region_that_wraps_is_refused() {
        let e = region(&RamSpec::pages(u64::MAX - 0xfff, 0x2000)).unwrap_err();
        assert!(matches!(e, GuestRamError::Layout(_)), "{e}");
    }

    #[test]
    fn hva_is_in_the_mapping_and_refuses_holes() {
        let ram = region(&RamSpec::pages(0x1000_0000, 0x10_0000)).unwrap();
        let mem = GuestMemoryMmap::from_regions(vec![ram]).unwrap();
        let base = mem.iter().next().unwrap().as_ptr() as u64;
        assert_eq!(hva(&mem, 0x1000_0000).unwrap(), base);
        assert_eq!(hva(&mem, 0x100f_f123).unwrap(), base + 0xf_f123);
        assert!(matches!(
            hva(&mem, 0x1010_0000),
            Err(GuestRamError::NotRam(0x1010_0000))
        ));
        assert!(matches!(
            hva(&mem, 0xfff),
            Err(GuestRamError::NotRam(0xfff))
        ));
    }

    #[test]
    fn the_mmap_error_says_hugetlb() {
        let e = GuestRamError::Mmap {
            size: 0x20_0000,
            huge: true,
            reason: "Cannot allocate memory".into(),
        };
        assert_eq!(
            e.to_string(),
            "mmap 0x200000 bytes (MAP_HUGETLB): Cannot allocate memory"
        );
    }
}
