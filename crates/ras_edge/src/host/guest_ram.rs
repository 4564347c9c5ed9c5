// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! Guest RAM as the host's memory-failure signals see it: which host
//! virtual addresses (HVA) are guest RAM, and at which guest-physical
//! address (GPA).
//!
//! `si_addr` of a memory-failure `SIGBUS` is an HVA; the guest must be
//! told a GPA. One process-wide table of `(hva, len, gpa)` ranges serves
//! both the `SIGBUS` handler (is this guest RAM? async-signal-safe, lock
//! free) and the VMM threads (HVA -> GPA): nothing is rebuilt per error.
//!
//! A VMM registers its guest RAM with [`GuestRam::register`] and every
//! range it adds later (hotplug) with [`GuestRam::add`], *before* the guest
//! can use it. Hotplug reserves the slot with [`GuestRam::reserve`] before
//! it maps anything, so the registration after the mapping cannot fail for
//! want of a slot and leave a mapped range the guest is never told about.
//! The [`GuestRam`] handle unregisters its ranges when dropped
//! (VM shutdown, deletion, failed creation, migration out), so slots do
//! not leak. A range that overlaps a registered one is refused: two live
//! mappings cannot share host addresses, so an overlap is a bug, not
//! something to paper over.
//!
//! Each slot is claimed with a compare-and-swap on its state (free ->
//! writing), filled, then published (-> live, release); readers only
//! trust slots they saw live (acquire).

use std::fmt;
#[cfg(test)]
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use ras::granule::{GpaGranule, MAX_GRANULE_SHIFT, MIN_GRANULE_SHIFT};
use thiserror::Error;
use vm_memory::{Address, GuestAddress};

/// Guest RAM ranges the process can have registered at once.
pub const MAX_RANGES: usize = 256;

/// A host virtual address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hva(pub u64);

impl Hva {
    /// The raw value.
    pub fn raw_value(self) -> u64 {
        self.0
    }

    /// Rounded down to a multiple of `1 << shift`.
    pub fn align_down(self, shift: u8) -> Hva {
        Hva(self.0 & !((1u64 << shift) - 1))
    }
}

impl fmt::LowerHex for Hva {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

/// One contiguous guest RAM mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamRange {
    /// Host virtual address of `gpa`.
    pub hva: Hva,
    /// Length in bytes (non-zero).
    pub len: u64,
    /// First guest-physical address.
    pub gpa: GuestAddress,
    /// log2 of the host pages backing the range: 12, or a hugetlb huge
    /// page's shift. Host memory fails in whole host pages, so a loss in
    /// the range is at least this large, whatever `si_addr_lsb` says
    /// (x86 KVM reports 12 for a lost huge page).
    pub page_shift: u8,
}

/// Errors of this module.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum GuestRamError {
    /// Empty or wrapping range, or a host page size outside 4 KiB..16 GiB.
    #[error("Invalid guest RAM range {hva:#x}+{len:#x}")]
    InvalidRange {
        /// Start.
        hva: Hva,
        /// Length.
        len: u64,
    },
    /// The range overlaps one already registered.
    #[error("Guest RAM range {hva:#x}+{len:#x} overlaps a registered one")]
    Overlap {
        /// Start.
        hva: Hva,
        /// Length.
        len: u64,
    },
    /// No free slot.
    #[error("More than {MAX_RANGES} guest RAM ranges registered")]
    Full,
    /// The address is not registered guest RAM.
    #[error("Host address {0:#x} is not guest RAM")]
    NotGuestRam(Hva),
    /// `si_addr_lsb` larger than any granule the engine handles.
    #[error("si_addr_lsb {0} is out of range (at most {MAX_GRANULE_SHIFT})")]
    GranuleOutOfRange(u8),
}

const FREE: u8 = 0;
const WRITING: u8 = 1;
const LIVE: u8 = 2;
/// Claimed by a [`GuestRam`] for a range it will add (never matched).
const RESERVED: u8 = 3;

struct Slot {
    state: AtomicU8,
    hva: AtomicU64,
    len: AtomicU64,
    gpa: AtomicU64,
    page_shift: AtomicU8,
}

impl Slot {
    /// The range in the slot (its state checked by the caller).
    fn range(&self) -> RamRange {
        RamRange {
            hva: Hva(self.hva.load(Ordering::Relaxed)),
            len: self.len.load(Ordering::Relaxed),
            gpa: GuestAddress(self.gpa.load(Ordering::Relaxed)),
            page_shift: self.page_shift.load(Ordering::Relaxed),
        }
    }
}

static SLOTS: [Slot; MAX_RANGES] = [const {
    Slot {
        state: AtomicU8::new(FREE),
        hva: AtomicU64::new(0),
        len: AtomicU64::new(0),
        gpa: AtomicU64::new(0),
        page_shift: AtomicU8::new(MIN_GRANULE_SHIFT),
    }
}; MAX_RANGES];

/// The live range containing `hva`, if any. Async-signal-safe.
fn find(hva: Hva) -> Option<RamRange> {
    SLOTS.iter().find_map(|s| {
        if s.state.load(Ordering::Acquire) != LIVE {
            return None;
        }
        let r = s.range();
        (hva.0 >= r.hva.0 && hva.0 - r.hva.0 < r.len).then_some(r)
    })
}

/// Whether `hva` is registered guest RAM. Async-signal-safe: what the
/// `SIGBUS` handler asks.
pub fn is_guest_ram(hva: Hva) -> bool {
    find(hva).is_some()
}

/// The guest-physical address of `hva`, if it is registered guest RAM.
pub fn translate(hva: Hva) -> Option<GuestAddress> {
    find(hva).map(|r| r.gpa.unchecked_add(hva.0 - r.hva.0))
}

/// What a memory-failure signal at `hva` lost and what it touched, from
/// one lookup of `hva`'s range (so the two cannot come from different
/// registrations of a range that hotplug changed in between).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loss {
    /// The lost granule: `si_addr_lsb` raised to the range's host page
    /// size ([`RamRange::page_shift`]: the kernel loses whole host pages,
    /// and x86 KVM says 12 for a huge one) and to 12 (the kernel reports
    /// at least a page).
    pub granule: GpaGranule,
    /// The guest-physical 4 KiB page of `hva` (the page a vCPU accessed).
    pub page: GpaGranule,
}

/// The [`Loss`] at `hva` with `si_addr_lsb` = `lsb`. `hva` lies inside the
/// lost granule (some kernels give the accessed address, others the huge
/// page's start), so its guest-physical address is rounded down. That is
/// the lost range as long as guest RAM is mapped at guest-physical
/// addresses aligned like its host mapping, as Cloud Hypervisor maps
/// hugetlb-backed RAM.
pub fn loss(hva: Hva, lsb: u8) -> Result<Loss, GuestRamError> {
    if lsb > MAX_GRANULE_SHIFT {
        return Err(GuestRamError::GranuleOutOfRange(lsb));
    }
    let r = find(hva).ok_or(GuestRamError::NotGuestRam(hva))?;
    let gpa = r.gpa.unchecked_add(hva.0 - r.hva.0);
    let within =
        |shift| GpaGranule::containing(gpa, shift).ok_or(GuestRamError::GranuleOutOfRange(shift));
    Ok(Loss {
        granule: within(lsb.max(r.page_shift).max(MIN_GRANULE_SHIFT))?,
        page: within(MIN_GRANULE_SHIFT)?,
    })
}

/// The lost granule of [`loss`] (an action-optional signal names no
/// accessed page).
pub fn granule(hva: Hva, lsb: u8) -> Result<GpaGranule, GuestRamError> {
    loss(hva, lsb).map(|l| l.granule)
}

fn validate(r: &RamRange) -> Result<(), GuestRamError> {
    let invalid = GuestRamError::InvalidRange {
        hva: r.hva,
        len: r.len,
    };
    if r.len == 0
        || r.hva.0.checked_add(r.len).is_none()
        || r.gpa.checked_add(r.len).is_none()
        || !(MIN_GRANULE_SHIFT..=MAX_GRANULE_SHIFT).contains(&r.page_shift)
    {
        return Err(invalid);
    }
    Ok(())
}

fn overlaps_live(r: &RamRange) -> bool {
    SLOTS.iter().any(|s| {
        matches!(s.state.load(Ordering::Acquire), WRITING | LIVE) && {
            let start = s.hva.load(Ordering::Relaxed);
            let len = s.len.load(Ordering::Relaxed);
            r.hva.0 < start.saturating_add(len) && start < r.hva.0 + r.len
        }
    })
}

/// Moves a free slot to `state`.
fn take_free(state: u8) -> Result<usize, GuestRamError> {
    SLOTS
        .iter()
        .position(|s| {
            s.state
                .compare_exchange(FREE, state, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
        .ok_or(GuestRamError::Full)
}

/// Fills `slot` (writing, or reserved by the caller) and publishes it.
fn publish(slot: usize, r: &RamRange) {
    let s = &SLOTS[slot];
    s.state.store(WRITING, Ordering::Release);
    s.hva.store(r.hva.0, Ordering::Relaxed);
    s.len.store(r.len, Ordering::Relaxed);
    s.gpa.store(r.gpa.raw_value(), Ordering::Relaxed);
    s.page_shift.store(r.page_shift, Ordering::Relaxed);
    s.state.store(LIVE, Ordering::Release);
}

fn release(slot: usize) {
    SLOTS[slot].state.store(FREE, Ordering::Release);
}

/// The guest RAM of one VM, registered; dropping it unregisters it.
#[derive(Debug, Default)]
pub struct GuestRam {
    slots: Vec<usize>,
    reserved: Vec<usize>,
}

impl GuestRam {
    /// Registers `ranges`, all or nothing.
    pub fn register(ranges: &[RamRange]) -> Result<Self, GuestRamError> {
        let mut ram = Self::default();
        for r in ranges {
            // On error `ram` is dropped and releases what it took.
            ram.add(r)?;
        }
        Ok(ram)
    }

    /// Registers one more range (memory hotplug): call it before the guest
    /// can touch the range; on error nothing changed. Uses a slot taken by
    /// [`GuestRam::reserve`] if there is one.
    pub fn add(&mut self, range: &RamRange) -> Result<(), GuestRamError> {
        validate(range)?;
        if overlaps_live(range) {
            return Err(GuestRamError::Overlap {
                hva: range.hva,
                len: range.len,
            });
        }
        let slot = match self.reserved.pop() {
            Some(slot) => slot,
            None => take_free(WRITING)?,
        };
        publish(slot, range);
        self.slots.push(slot);
        Ok(())
    }

    /// Keeps a slot for the next range to [`GuestRam::add`] (before memory
    /// hotplug maps it), so that adding it cannot fail with
    /// [`GuestRamError::Full`]. One slot at most is kept (a hotplug adds one
    /// range), until it is used or the handle dropped.
    pub fn reserve(&mut self) -> Result<(), GuestRamError> {
        if self.reserved.is_empty() {
            self.reserved.push(take_free(RESERVED)?);
        }
        Ok(())
    }

    /// The ranges registered through this handle.
    pub fn ranges(&self) -> Vec<RamRange> {
        self.slots.iter().map(|&i| SLOTS[i].range()).collect()
    }
}

impl Drop for GuestRam {
    fn drop(&mut self) {
        for &slot in self.slots.iter().chain(&self.reserved) {
            release(slot);
        }
    }
}

/// Serializes the tests of this module and of its users that register
/// ranges: the table is process-wide.
#[cfg(test)]
pub(super) static TEST_SERIAL: Mutex<()> = Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    /// Addresses no real mapping of the test process uses.
    const BASE: u64 = 0x7e00_0000_0000;

    fn range(hva: u64, len: u64, gpa: u64) -> RamRange {
        RamRange {
            hva: Hva(BASE + hva),
            len,
            gpa: GuestAddress(gpa),
            page_shift: 12,
        }
    }

    #[test]
    fn translate_and_granules() {
        let _s = TEST_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let ram = GuestRam::register(&[
            range(0, 0x40_0000, 0x4000_0000),
            range(0x100_0000, 0x20_0000, 0x1_0000_0000),
        ])
        .unwrap();
        assert_eq!(
            translate(Hva(BASE + 0x12_3456)),
            Some(GuestAddress(0x4012_3456))
        );
        assert_eq!(
            translate(Hva(BASE + 0x101_0000)),
            Some(GuestAddress(0x1_0001_0000))
        );
        assert_eq!(translate(Hva(BASE + 0x40_0000)), None);
        assert!(is_guest_ram(Hva(BASE + 0x3f_ffff)));
        assert!(!is_guest_ram(Hva(BASE - 1)));
        // 4 KiB: the page of si_addr.
        let g = granule(Hva(BASE + 0x12_3456), 12).unwrap();
        assert_eq!((g.base(), g.shift()), (GuestAddress(0x4012_3000), 12));
        // lsb below 12 is raised to a page.
        assert_eq!(granule(Hva(BASE + 0x12_3456), 0).unwrap().shift(), 12);
        // 2 MiB: si_addr inside the huge page, rounded down.
        let g = granule(Hva(BASE + 0x32_1000), 21).unwrap();
        assert_eq!(g.base(), GuestAddress(0x4020_0000));
        // A granule larger than its mapping: the GPA is rounded, not the
        // HVA (rounding the HVA would land in the other range).
        let g = granule(Hva(BASE + 0x101_0000), 30).unwrap();
        assert_eq!(g.base(), GuestAddress(0x1_0000_0000));
        assert_eq!(
            granule(Hva(BASE + 0x12_3456), 35),
            Err(GuestRamError::GranuleOutOfRange(35))
        );
        assert_eq!(
            granule(Hva(BASE + 0x80_0000), 12),
            Err(GuestRamError::NotGuestRam(Hva(BASE + 0x80_0000)))
        );
        assert_eq!(ram.ranges().len(), 2);
        drop(ram);
        // Dropped: no longer guest RAM.
        assert_eq!(translate(Hva(BASE + 0x12_3456)), None);
        assert!(!is_guest_ram(Hva(BASE + 0x101_0000)));
    }

    #[test]
    fn huge_host_pages_widen_the_granule_not_the_page() {
        let _s = TEST_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // 4 MiB of guest RAM on 2 MiB hugetlb pages at GPA 0x4000_0000.
        let _ram = GuestRam::register(&[RamRange {
            page_shift: 21,
            ..range(0x20_0000, 0x40_0000, 0x4000_0000)
        }])
        .unwrap();
        let accessed = Hva(BASE + 0x20_0000 + 0x21_5678);
        // x86 KVM reports lsb 12 for a lost huge page: the whole 2 MiB
        // host page is lost, the second one of the range.
        let g = granule(accessed, 12).unwrap();
        assert_eq!((g.base(), g.shift()), (GuestAddress(0x4020_0000), 21));
        // arm64 KVM already says 21; an lsb above the page size is kept.
        assert_eq!(granule(accessed, 21).unwrap(), g);
        assert_eq!(granule(accessed, 30).unwrap().shift(), 30);
        // The accessed page is still the 4 KiB one, whatever lsb says.
        for lsb in [0, 12, 21, 30] {
            let l = loss(accessed, lsb).unwrap();
            assert_eq!(l.granule, granule(accessed, lsb).unwrap());
            assert_eq!(
                (l.page.base(), l.page.shift()),
                (GuestAddress(0x4021_5000), 12)
            );
        }
        assert_eq!(
            loss(Hva(BASE), 12),
            Err(GuestRamError::NotGuestRam(Hva(BASE)))
        );
        // ranges() gives the page size back.
        assert_eq!(_ram.ranges()[0].page_shift, 21);
    }

    #[test]
    fn overlap_is_refused_and_changes_nothing() {
        let _s = TEST_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut ram = GuestRam::register(&[range(0, 0x1000, 0x1000)]).unwrap();
        assert_eq!(
            GuestRam::register(&[range(0x2000, 0x1000, 0x9000), range(0xfff, 2, 0)]).unwrap_err(),
            GuestRamError::Overlap {
                hva: Hva(BASE + 0xfff),
                len: 2
            }
        );
        // The first range of the refused registration was released.
        assert_eq!(translate(Hva(BASE + 0x2000)), None);
        assert_eq!(
            ram.add(&range(0x800, 0x1000, 0)),
            Err(GuestRamError::Overlap {
                hva: Hva(BASE + 0x800),
                len: 0x1000
            })
        );
        // Adjacent is fine (hotplug next to boot RAM).
        ram.add(&range(0x1000, 0x1000, 0x2000)).unwrap();
        assert_eq!(translate(Hva(BASE + 0x1800)), Some(GuestAddress(0x2800)));
        for bad in [
            range(0, 0, 0),
            RamRange {
                hva: Hva(u64::MAX),
                len: 2,
                gpa: GuestAddress(0),
                page_shift: 12,
            },
            // Host pages below 4 KiB or above 16 GiB do not exist.
            RamRange {
                page_shift: 11,
                ..range(0x4000, 0x1000, 0)
            },
            RamRange {
                page_shift: 35,
                ..range(0x4000, 0x1000, 0)
            },
        ] {
            assert!(matches!(
                ram.add(&bad),
                Err(GuestRamError::InvalidRange { .. })
            ));
        }
    }

    #[test]
    fn slots_do_not_leak() {
        let _s = TEST_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // Far more registrations than slots: each drop gives its slots back.
        for i in 0..(MAX_RANGES as u64 * 3) {
            let r = GuestRam::register(&[range(i * 0x1000, 0x1000, 0)]).unwrap();
            assert_eq!(translate(Hva(BASE + i * 0x1000)), Some(GuestAddress(0)));
            drop(r);
        }
        // And a full table says so, changing nothing.
        let mut all = GuestRam::default();
        let mut n = 0u64;
        let err = loop {
            match all.add(&range(n * 0x1000, 0x1000, n * 0x1000)) {
                Ok(()) => n += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err, GuestRamError::Full);
        assert_eq!(n as usize, MAX_RANGES);
        drop(all);
        GuestRam::register(&[range(0, 0x1000, 0)]).unwrap();
    }

    #[test]
    fn a_reserved_slot_makes_hotplug_registration_infallible() {
        let _s = TEST_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut vm = GuestRam::register(&[range(0, 0x1000, 0)]).unwrap();
        // A resize that adds nothing reserves again: still one slot.
        vm.reserve().unwrap();
        vm.reserve().unwrap();
        // Everything else takes the rest of the table.
        let mut others = GuestRam::default();
        let mut n = 1u64;
        while others.add(&range(n * 0x1000, 0x1000, 0)).is_ok() {
            n += 1;
        }
        assert_eq!(n as usize, MAX_RANGES - 1);
        // A reserved slot matches no address.
        assert_eq!(translate(Hva(BASE - 0x1000)), None);
        // The hotplugged range gets the reserved slot.
        let hotplug = range(0x1000_0000, 0x2000, 0x8000_0000);
        vm.add(&hotplug).unwrap();
        assert_eq!(
            translate(Hva(BASE + 0x1000_1000)),
            Some(GuestAddress(0x8000_1000))
        );
        // Without a reservation, a full table refuses.
        assert_eq!(
            vm.add(&range(0x2000_0000, 0x1000, 0)),
            Err(GuestRamError::Full)
        );
        // An unused reservation is given back with its handle.
        drop(others);
        vm.reserve().unwrap();
        drop(vm);
        let mut all = GuestRam::default();
        for i in 0..MAX_RANGES as u64 {
            all.add(&range(i * 0x1000, 0x1000, 0)).unwrap();
        }
    }
}
