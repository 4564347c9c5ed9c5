// SPDX-License-Identifier: Apache-2.0
//! Host virtual (HVA) <-> guest physical (GPA) translation over the guest
//! RAM mappings, and the engine report for a captured `SIGBUS`.
//!
//! `si_addr` of a memory-failure `SIGBUS` is a host virtual address; the
//! guest must be told the guest-physical granule. With hugetlb-backed RAM
//! the whole huge page is lost (`si_addr_lsb` 21 or 30) and `si_addr` may be
//! the accessed address or the huge page start depending on the kernel:
//! the address is rounded down by `si_addr_lsb` before translation, and the
//! whole granule is reported.

use ras::report::{
    AbortKind, ErrorCause, ErrorReport, GpaGranule, MAX_GRANULE_SHIFT, MIN_GRANULE_SHIFT,
    SyncOrigin,
};
use thiserror::Error;
use vm_memory::{GuestMemory, GuestMemoryRegion, MemoryRegionAddress};

use crate::clock::ReportTime;
use crate::sigbus::{self, SigbusError, SigbusRecord};

/// Errors of this module.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum MemoryMapError {
    /// The address is not guest RAM (a VMM page, or RAM of a region that
    /// was removed).
    #[error("Host address {hva:#x} is not guest memory")]
    NotGuestMemory {
        /// `si_addr`.
        hva: u64,
    },
    /// `si_addr_lsb` larger than any granule the engine handles.
    #[error("si_addr_lsb {lsb} is out of range (at most {MAX_GRANULE_SHIFT})")]
    GranuleOutOfRange {
        /// `si_addr_lsb`.
        lsb: u8,
    },
}

/// One contiguous guest RAM mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamRange {
    /// First guest-physical address.
    pub gpa: u64,
    /// Host virtual address of `gpa`.
    pub hva: u64,
    /// Length in bytes (non-zero).
    pub len: u64,
}

impl RamRange {
    fn hva_to_gpa(&self, hva: u64) -> Option<u64> {
        let off = hva.checked_sub(self.hva)?;
        (off < self.len).then(|| self.gpa + off)
    }

    fn gpa_to_hva(&self, gpa: u64) -> Option<u64> {
        let off = gpa.checked_sub(self.gpa)?;
        (off < self.len).then(|| self.hva + off)
    }
}

/// A snapshot of the guest RAM mappings (rebuild it on memory hotplug).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestRamMap {
    ranges: Vec<RamRange>,
}

impl GuestRamMap {
    /// From explicit ranges (empty ones are skipped), e.g. a harness that
    /// mmaps its guest RAM itself.
    pub fn new(ranges: impl IntoIterator<Item = RamRange>) -> Self {
        Self {
            ranges: ranges.into_iter().filter(|r| r.len != 0).collect(),
        }
    }

    /// From the regions of a `vm_memory::GuestMemory` that have a host
    /// mapping (regions without one are skipped).
    pub fn from_guest_memory<M: GuestMemory>(mem: &M) -> Self {
        Self::new(mem.iter().filter_map(|r| {
            let hva = r.get_host_address(MemoryRegionAddress(0)).ok()?;
            Some(RamRange {
                gpa: r.start_addr().0,
                hva: hva as u64,
                len: r.len(),
            })
        }))
    }

    /// The ranges.
    pub fn ranges(&self) -> &[RamRange] {
        &self.ranges
    }

    /// HVA -> GPA; `None` outside guest RAM.
    pub fn hva_to_gpa(&self, hva: u64) -> Option<u64> {
        self.ranges.iter().find_map(|r| r.hva_to_gpa(hva))
    }

    /// GPA -> HVA; `None` outside guest RAM.
    pub fn gpa_to_hva(&self, gpa: u64) -> Option<u64> {
        self.ranges.iter().find_map(|r| r.gpa_to_hva(gpa))
    }

    /// Tells the `SIGBUS` handler which host addresses are guest RAM.
    pub fn register_for_sigbus(&self) -> Result<(), SigbusError> {
        for r in &self.ranges {
            sigbus::register_guest_ram(r.hva, r.len)?;
        }
        Ok(())
    }

    /// Undoes [`Self::register_for_sigbus`].
    pub fn unregister_for_sigbus(&self) {
        for r in &self.ranges {
            sigbus::unregister_guest_ram(r.hva);
        }
    }

    /// The guest-physical granule lost at `hva` with `si_addr_lsb` = `lsb`
    /// (raised to 12 if smaller: the kernel reports at least a page).
    /// `hva` is rounded down by `lsb` first; if that start is not guest RAM
    /// (a granule larger than its mapping) the exact address is translated
    /// and its GPA rounded instead.
    pub fn granule(&self, hva: u64, lsb: u8) -> Result<GpaGranule, MemoryMapError> {
        let lsb = lsb.max(MIN_GRANULE_SHIFT);
        if lsb > MAX_GRANULE_SHIFT {
            return Err(MemoryMapError::GranuleOutOfRange { lsb });
        }
        let rounded = hva & !((1u64 << lsb) - 1);
        let gpa = self
            .hva_to_gpa(rounded)
            .or_else(|| self.hva_to_gpa(hva))
            .ok_or(MemoryMapError::NotGuestMemory { hva })?;
        GpaGranule::containing(gpa, lsb).ok_or(MemoryMapError::GranuleOutOfRange { lsb })
    }

    /// The engine report for a captured `SIGBUS`: `AR` -> a synchronous
    /// consumption of unknown abort kind (injected as a data abort), `AO`
    /// -> a host action-optional failure.
    pub fn to_report(
        &self,
        record: &SigbusRecord,
        time: ReportTime,
    ) -> Result<ErrorReport, MemoryMapError> {
        let cause = match *record {
            SigbusRecord::ActionRequired { vcpu, hva, lsb } => ErrorCause::SyncConsumption {
                vcpu,
                origin: SyncOrigin::Sigbus,
                abort: AbortKind::Unknown,
                granule: Some(self.granule(hva, lsb)?),
                gva: None,
            },
            SigbusRecord::ActionOptional { hva, lsb } => ErrorCause::HostActionOptional {
                granule: self.granule(hva, lsb)?,
            },
        };
        Ok(ErrorReport {
            cause,
            unix_time: time.unix_time,
            monotonic_ms: time.monotonic_ms,
        })
    }
}

/// HVA -> GPA directly over a `GuestMemory`.
pub fn hva_to_gpa<M: GuestMemory>(mem: &M, hva: u64) -> Option<u64> {
    mem.iter().find_map(|r| {
        let base = r.get_host_address(MemoryRegionAddress(0)).ok()? as u64;
        let off = hva.checked_sub(base)?;
        (off < r.len()).then(|| r.start_addr().0 + off)
    })
}

/// GPA -> HVA directly over a `GuestMemory`.
pub fn gpa_to_hva<M: GuestMemory>(mem: &M, gpa: u64) -> Option<u64> {
    let r = mem.find_region(vm_memory::GuestAddress(gpa))?;
    let off = gpa - r.start_addr().0;
    r.get_host_address(MemoryRegionAddress(off))
        .ok()
        .map(|p| p as u64)
}

/// See [`GuestRamMap::to_report`].
pub fn sigbus_to_report(
    map: &GuestRamMap,
    record: &SigbusRecord,
    time: ReportTime,
) -> Result<ErrorReport, MemoryMapError> {
    map.to_report(record, time)
}

#[cfg(test)]
mod tests {
    use vm_memory::{GuestAddress, GuestMemoryMmap};

    use super::*;

    const T: ReportTime = ReportTime {
        unix_time: 10,
        monotonic_ms: 20,
    };

    fn map() -> GuestRamMap {
        GuestRamMap::new([
            RamRange {
                gpa: 0x4000_0000,
                hva: 0x7f00_0000_0000,
                len: 0x4000_0000,
            },
            RamRange {
                gpa: 0x1_0000_0000,
                hva: 0x7e00_0010_0000, // only 1 MiB aligned
                len: 0x10_0000,
            },
            RamRange {
                gpa: 0,
                hva: 0,
                len: 0,
            },
        ])
    }

    #[test]
    fn translation_both_ways() {
        let m = map();
        assert_eq!(m.ranges().len(), 2);
        assert_eq!(m.hva_to_gpa(0x7f00_0000_0000), Some(0x4000_0000));
        assert_eq!(m.hva_to_gpa(0x7f00_3fff_ffff), Some(0x7fff_ffff));
        assert_eq!(m.hva_to_gpa(0x7f00_4000_0000), None);
        assert_eq!(m.hva_to_gpa(0x7eff_ffff_ffff), None);
        assert_eq!(m.gpa_to_hva(0x4000_1234), Some(0x7f00_0000_1234));
        assert_eq!(m.gpa_to_hva(0x1_0000_0010), Some(0x7e00_0010_0010));
        assert_eq!(m.gpa_to_hva(0x3fff_ffff), None);
        assert_eq!(m.gpa_to_hva(0x1_0010_0000), None);
    }

    #[test]
    fn ar_report_rounds_by_lsb() {
        let m = map();
        let rec = SigbusRecord::ActionRequired {
            vcpu: 2,
            hva: 0x7f00_0123_4567,
            lsb: 21,
        };
        let r = m.to_report(&rec, T).unwrap();
        assert_eq!(
            r.cause,
            ErrorCause::SyncConsumption {
                vcpu: 2,
                origin: SyncOrigin::Sigbus,
                abort: AbortKind::Unknown,
                granule: GpaGranule::containing(0x4120_0000, 21),
                gva: None,
            }
        );
        assert_eq!((r.unix_time, r.monotonic_ms), (10, 20));
        // 4 KiB, and lsb 0 treated as a page.
        for lsb in [0, 12] {
            let rec = SigbusRecord::ActionRequired {
                vcpu: 0,
                hva: 0x7f00_0000_1fff,
                lsb,
            };
            let ErrorCause::SyncConsumption { granule, .. } = m.to_report(&rec, T).unwrap().cause
            else {
                panic!("wrong cause");
            };
            assert_eq!(granule, GpaGranule::containing(0x4000_1000, 12));
        }
    }

    #[test]
    fn ao_report_and_granule_larger_than_mapping() {
        let m = map();
        // 2 MiB granule whose rounded start lies before the 1 MiB-aligned
        // mapping: translate the exact address, round the GPA.
        let rec = SigbusRecord::ActionOptional {
            hva: 0x7e00_0010_8000,
            lsb: 21,
        };
        assert_eq!(
            m.to_report(&rec, T).unwrap().cause,
            ErrorCause::HostActionOptional {
                granule: GpaGranule::containing(0x1_0000_0000, 21).unwrap()
            }
        );
    }

    #[test]
    fn errors() {
        let m = map();
        let rec = SigbusRecord::ActionOptional {
            hva: 0x1000,
            lsb: 12,
        };
        assert_eq!(
            m.to_report(&rec, T),
            Err(MemoryMapError::NotGuestMemory { hva: 0x1000 })
        );
        let rec = SigbusRecord::ActionOptional {
            hva: 0x7f00_0000_0000,
            lsb: 40,
        };
        assert_eq!(
            m.to_report(&rec, T),
            Err(MemoryMapError::GranuleOutOfRange { lsb: 40 })
        );
        assert_eq!(
            MemoryMapError::NotGuestMemory { hva: 0x1000 }.to_string(),
            "Host address 0x1000 is not guest memory"
        );
    }

    #[test]
    fn from_vm_memory() {
        let mem: GuestMemoryMmap = GuestMemoryMmap::from_ranges(&[
            (GuestAddress(0x4000_0000), 0x10_0000),
            (GuestAddress(0x8000_0000), 0x2000),
        ])
        .unwrap();
        let m = GuestRamMap::from_guest_memory(&mem);
        assert_eq!(m.ranges().len(), 2);
        for gpa in [0x4000_0000u64, 0x400f_ffff, 0x8000_1000] {
            let hva = gpa_to_hva(&mem, gpa).unwrap();
            assert_eq!(m.gpa_to_hva(gpa), Some(hva));
            assert_eq!(hva_to_gpa(&mem, hva), Some(gpa));
            assert_eq!(m.hva_to_gpa(hva), Some(gpa));
        }
        assert_eq!(gpa_to_hva(&mem, 0x4010_0000), None);
        assert_eq!(hva_to_gpa(&mem, 0x10), None);
        // The handler learns the ranges.
        m.register_for_sigbus().unwrap();
        let hva = m.gpa_to_hva(0x4000_8000).unwrap();
        assert!(sigbus::is_guest_ram(hva));
        m.unregister_for_sigbus();
        assert!(!sigbus::is_guest_ram(hva));
    }
}
