// SPDX-License-Identifier: Apache-2.0
//! The x86 lab scenarios. Each runs in its own process (see `runner`),
//! prints what it saw (`FACT <scenario> key=value` lines for the measured
//! facts) and returns a verdict.

use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::os::raw::{c_int, c_void};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use std::{fmt, fs, io, mem, ptr, thread};

use kvm_ioctls::{Cap, Kvm, VcpuFd};
use ras_edge::arch::x86::mce::{
    CpuVendor, DEFAULT_BANKS, DEFAULT_MEMORY_ERROR_BANK, McaBankValues, McaError, McaErrorKind,
    McaMemoryError, McgCap, msr,
};
use ras_edge::host::early_kill::EarlyKill;
use ras_edge::host::guest_ram::{self, Hva};
use ras_edge::host::sigbus::{self, SigbusRecord};
use ras_edge::kvm::x86_64::mce as kvm_mce;
use ras_edge::kvm::x86_64::mce::KvmMceError;
pub use ras_lab_runner::Verdict;
use ras_lab_runner::hwpoison::{
    CORRUPT_PFN, PAGE, kernel_release, pfn_of, poison_madvise, with_hugetlb,
};
use ras_lab_runner::{Checks, poll_until};

use crate::guest::{self, DATA};
use crate::vmm::{Event, Flow, LabError, McSeen, Run, Vm, edge, gettid};

pub const ALL: &[(&str, &str)] = &[
    (
        "caps",
        "KVM_CAP_MCE, KVM_X86_GET_MCE_CAP_SUPPORTED, the guest CPUID's MCA bits",
    ),
    (
        "sigbus-ar",
        "MADV_HWPOISON, guest load: SIGBUS BUS_MCEERR_AR on the vCPU thread (si_addr, lsb, EINTR)",
    ),
    (
        "sigbus-ar-pfn",
        "as sigbus-ar, page poisoned from outside (debugfs corrupt-pfn of its PFN)",
    ),
    (
        "sigbus-ar-huge",
        "as sigbus-ar on a 2 MiB hugetlb guest page: si_addr, lsb; what the edge does with them",
    ),
    (
        "sigbus-ao",
        "PR_MCE_KILL_EARLY on main, corrupt-pfn: which thread gets BUS_MCEERR_AO",
    ),
    (
        "mce-srar",
        "KVM_X86_SETUP_MCE + KVM_X86_SET_MCE (SRAR, Intel and AMD layout): the guest's #MC handler reads the bank",
    ),
    (
        "mce-srao",
        "action-optional: Intel SRAO (#MC) and AMD deferred error (no #MC, bank only)",
    ),
    ("mce-nosetup", "KVM_X86_SET_MCE without KVM_X86_SETUP_MCE"),
    (
        "mce-nocr4",
        "machine check while the guest has CR4.MCE clear",
    ),
    (
        "mce-mcip",
        "a second machine check while MCG_STATUS.MCIP is still set",
    ),
    (
        "chain-ar",
        "SIGBUS AR -> HVA->GPA -> SRAR for the guest's CPUID vendor -> the guest's #MC handler sees the GPA",
    ),
    (
        "chain-ar-intel",
        "chain-ar with a GenuineIntel guest CPUID, page poisoned with corrupt-pfn",
    ),
    (
        "chain-ao",
        "BUS_MCEERR_AO on main -> GPA -> Intel SRAO #MC / AMD deferred error on the vCPU thread",
    ),
];

const LIMIT: Duration = Duration::from_secs(20);
const BANK: u8 = DEFAULT_MEMORY_ERROR_BANK;
/// `KVM_MAX_MCE_BANKS` (arch/x86/include/asm/kvm_host.h).
const KVM_MAX_MCE_BANKS: u32 = 32;
/// Literal register values from the SDM/APM bit positions (see
/// `ras_edge::arch::x86::mce` tests): what the guest must read back.
const INTEL_SRAR_STATUS: u64 = 0xbd80_0000_0000_0134;
const INTEL_SRAO_STATUS: u64 = 0xbd00_0000_0000_00c0;
const AMD_AR_STATUS: u64 = 0xbc00_0800_0000_0000;
const AMD_DEFERRED_STATUS: u64 = 0x9c00_1800_0000_0000;
/// MISC: address mode physical (2 << 6) | LSB 12.
const MISC_PAGE: u64 = 0x8c;

fn fact(scenario: &str, kv: impl fmt::Display) {
    println!("FACT {scenario} {kv} kernel={}", kernel_release());
}

pub fn run(name: &str) -> Verdict {
    let r = match name {
        "caps" => caps(),
        "sigbus-ar" => sigbus_ar(false),
        "sigbus-ar-pfn" => sigbus_ar(true),
        "sigbus-ar-huge" => sigbus_ar_huge(),
        "sigbus-ao" => sigbus_ao(),
        "mce-srar" => mce_inject(McaErrorKind::ActionRequired),
        "mce-srao" => mce_inject(McaErrorKind::ActionOptional),
        "mce-nosetup" => mce_nosetup(),
        "mce-nocr4" => mce_nocr4(),
        "mce-mcip" => mce_mcip(),
        "chain-ar" => chain_ar(None, false),
        "chain-ar-intel" => chain_ar(Some(CpuVendor::Intel), true),
        "chain-ao" => chain_ao(),
        _ => return Verdict::Fail(format!("unknown scenario {name}")),
    };
    r.unwrap_or_else(|e| Verdict::Fail(e.to_string()))
}

fn vendor_name(v: Option<CpuVendor>) -> &'static str {
    match v {
        Some(CpuVendor::Intel) => "intel",
        Some(CpuVendor::Amd) => "amd",
        None => "unknown",
    }
}

/// The MSRs the guest reports: MCG_CAP, MCG_STATUS, bank CTL/STATUS/ADDR/MISC.
fn bank_msrs() -> [u32; 6] {
    [
        msr::IA32_MCG_CAP,
        msr::IA32_MCG_STATUS,
        msr::mci_ctl(BANK),
        msr::mci_status(BANK),
        msr::mci_addr(BANK),
        msr::mci_misc(BANK),
    ]
}

fn describe_mc(vm: &Vm, m: &McSeen) -> String {
    let g = |i| m.msr(i).map_or("-".to_string(), |v| format!("{v:#x}"));
    format!(
        "#MC at EIP {:#x} (CS {:#x}, EFLAGS {:#x}); guest rdmsr: MCG_CAP {} MCG_STATUS {} MC{BANK}_CTL {} MC{BANK}_STATUS {} MC{BANK}_ADDR {} MC{BANK}_MISC {} [load insn {:#x}, after it {:#x}, after READY {:#x}]",
        m.eip,
        m.cs,
        m.eflags,
        g(msr::IA32_MCG_CAP),
        g(msr::IA32_MCG_STATUS),
        g(msr::mci_ctl(BANK)),
        g(msr::mci_status(BANK)),
        g(msr::mci_addr(BANK)),
        g(msr::mci_misc(BANK)),
        vm.prog.load,
        vm.prog.after_load,
        vm.prog.after_ready,
    )
}

fn check_run(c: &mut Checks, run: &Run) {
    if let Some(e) = &run.error {
        println!("    vCPU error: {e}");
    }
    c.check(
        run.error.is_none() && run.done,
        "the guest ran to completion (PORT_DONE)",
    );
}

/// Writes `pfn` to debugfs corrupt-pfn from a helper thread; returns the
/// helper's tid and how long the write took.
fn corrupt_pfn(pfn: u64) -> Result<(i32, Duration), LabError> {
    thread::spawn(move || -> io::Result<(i32, Duration)> {
        let t = Instant::now();
        fs::OpenOptions::new()
            .write(true)
            .open(CORRUPT_PFN)?
            .write_all(format!("{pfn:#x}\n").as_bytes())?;
        Ok((gettid(), t.elapsed()))
    })
    .join()
    .map_err(|_| LabError::Guest("injector panicked".into()))?
    .map_err(|e| LabError::Io("write corrupt-pfn", e))
}

/// Poisons the host page behind `gpa`, by MADV_HWPOISON or corrupt-pfn.
fn poison(vm: &Vm, gpa: u64, by_pfn: bool) -> Result<String, LabError> {
    let hva = vm.hva(gpa)?;
    if by_pfn {
        let pfn = pfn_of(hva).map_err(|e| LabError::Io("pagemap", e))?;
        if pfn == 0 {
            return Err(LabError::Guest(format!("no PFN for host page {hva:#x}")));
        }
        let (_, took) = corrupt_pfn(pfn)?;
        let s = format!(
            "poisoned GPA {gpa:#x} = host VA {hva:#x} = PFN {pfn:#x} via {CORRUPT_PFN} ({took:?})"
        );
        vm.say(&s);
        Ok("corrupt-pfn".into())
    } else {
        let own = poison_madvise(hva)?;
        let caller = match own {
            Some(SigbusRecord::ActionRequired { lsb, hva: a, .. }) => {
                format!("madvise caller got BUS_MCEERR_AR si_addr {a:#x} lsb {lsb} at once")
            }
            Some(r) => format!("madvise caller got {r:?}"),
            None => "no signal to the madvise caller".into(),
        };
        vm.say(format!(
            "poisoned GPA {gpa:#x} = host VA {hva:#x} via MADV_HWPOISON from a helper thread: {caller}"
        ));
        Ok(format!(
            "madvise(caller_signal={})",
            if own.is_some() { "AR" } else { "none" }
        ))
    }
}

fn corrupt_pfn_available() -> Option<Verdict> {
    (!Path::new(CORRUPT_PFN).exists()).then(|| {
        Verdict::Skip(format!(
            "{CORRUPT_PFN} missing (hwpoison-inject not loaded or debugfs not mounted)"
        ))
    })
}

// ---------------------------------------------------------------- caps

fn caps() -> Result<Verdict, LabError> {
    let kvm = Kvm::new().map_err(|e| LabError::Kvm("open /dev/kvm", e))?;
    let banks_raw = kvm.check_extension_raw(31); // KVM_CAP_MCE
    let banks_cap = kvm.check_extension_int(Cap::Mce);
    // KVM_X86_GET_MCE_CAP_SUPPORTED, numbered here by hand from
    // include/uapi/linux/kvm.h: _IOR(0xAE, 0x9d, __u64).
    let req: libc::c_ulong = 0x8008_ae9d;
    let mut raw_supported: u64 = 0;
    // SAFETY: the ioctl writes one u64 through a pointer to a live u64.
    let r = unsafe { libc::ioctl(kvm.as_raw_fd(), req, &mut raw_supported as *mut u64) };
    let support = kvm_mce::probe(&kvm);
    let vm = Vm::new(false, None)?;
    let leaf = |f: u32| {
        vm.cpuid
            .as_slice()
            .iter()
            .find(|e| e.function == f)
            .copied()
    };
    let l1 = leaf(1).unwrap_or_default();
    let l87 = leaf(0x8000_0007).unwrap_or_default();
    let vendor = vm.vendor();
    println!(
        "    KVM_CHECK_EXTENSION(KVM_CAP_MCE=31) = {banks_raw}; KVM_X86_GET_MCE_CAP_SUPPORTED -> {r}, {raw_supported:#x}; ras_edge probe: {support:?}"
    );
    println!(
        "    guest CPUID (KVM_GET_SUPPORTED_CPUID): vendor {}, leaf 1 EDX {:#x} (MCE bit 7 = {}, MCA bit 14 = {}), leaf 0x80000007 EBX {:#x} (OverflowRecov {}, SUCCOR {}, SMCA {}), phys bits {}",
        vendor_name(vendor),
        l1.edx,
        l1.edx >> 7 & 1,
        l1.edx >> 14 & 1,
        l87.ebx,
        l87.ebx & 1,
        l87.ebx >> 1 & 1,
        l87.ebx >> 3 & 1,
        vm.phys_bits()
    );
    let vcpu = vm.vcpu(0)?;
    let asked = McgCap::for_guest(raw_supported, banks_raw.max(0) as u32, DEFAULT_BANKS, true)
        .map_err(edge)?;
    let effective = support
        .as_ref()
        .map_err(edge)
        .and_then(|s| kvm_mce::setup_mce(&vcpu, s, DEFAULT_BANKS, true).map_err(edge))?;
    println!(
        "    KVM_X86_SETUP_MCE({:#x}) (10 banks, CTL_P|SER_P|LMCE_P as supported) -> MCG_CAP read back {:#x} (SER_P {})",
        asked.raw(),
        effective.raw(),
        effective.ser()
    );
    fact(
        "caps",
        format!(
            "setup_mce_asked={:#x} mcg_cap_effective={:#x} ser_p_kept={}",
            asked.raw(),
            effective.raw(),
            effective.ser()
        ),
    );
    let sup = McgCap::from_raw(raw_supported);
    fact(
        "caps",
        format!(
            "kvm_cap_mce={banks_raw} mce_cap_supported={raw_supported:#x} ctl_p={} ser_p={} lmce_p={} cmci_p={} guest_vendor={} cpuid1_mce={} cpuid1_mca={} cpuid80000007_ebx={:#x} phys_bits={}",
            raw_supported >> 8 & 1,
            u8::from(sup.ser()),
            raw_supported >> 27 & 1,
            raw_supported >> 10 & 1,
            vendor_name(vendor),
            l1.edx >> 7 & 1,
            l1.edx >> 14 & 1,
            l87.ebx,
            vm.phys_bits()
        ),
    );
    let mut c = Checks::new();
    c.check(
        banks_raw == KVM_MAX_MCE_BANKS as i32 && banks_cap == banks_raw,
        format!("KVM_CAP_MCE = KVM_MAX_MCE_BANKS (32) (got {banks_raw})"),
    );
    c.check(
        r == 0 && raw_supported & 0x0100_0100 == 0x0100_0100,
        "KVM supports MCG_CTL_P and MCG_SER_P",
    );
    c.check(
        matches!(support, Ok(s) if s.max_banks == banks_raw as u32 && s.mcg_cap_supported == raw_supported),
        "ras_edge::kvm::x86_64::mce::probe agrees with the raw ioctls",
    );
    c.check(
        l1.edx >> 7 & 1 == 1 && l1.edx >> 14 & 1 == 1,
        "the guest CPUID KVM offers has MCE and MCA",
    );
    c.check(vendor.is_some(), "the guest vendor is known to ras_edge");
    c.check(
        effective.banks() == DEFAULT_BANKS && effective.raw() & 0x100 != 0,
        "after SETUP_MCE the vCPU has 10 banks and MCG_CTL_P (read back with KVM_GET_MSRS)",
    );
    if vendor == Some(CpuVendor::Amd) {
        c.check(
            !effective.ser() && sup.ser(),
            "on AMD (SVM) KVM drops MCG_SER_P although KVM_X86_GET_MCE_CAP_SUPPORTED offers it (svm_setup_mce keeps bits 8:0)",
        );
    }
    Ok(c.verdict(format!(
        "{banks_raw} banks, MCG_CAP bits {raw_supported:#x}, vendor {}",
        vendor_name(vendor)
    )))
}

// ---------------------------------------------------------------- sigbus-ar

fn sigbus_ar(by_pfn: bool) -> Result<Verdict, LabError> {
    if by_pfn && let Some(v) = corrupt_pfn_available() {
        return Ok(v);
    }
    let name = if by_pfn { "sigbus-ar-pfn" } else { "sigbus-ar" };
    let vm = Vm::new(false, None)?;
    let page = u64::from(DATA);
    let load = DATA + 0x80;
    vm.write_u32(u64::from(load), 0x5afe);
    let how = poison(&vm, page, by_pfn)?;
    let hva = vm.hva(page)?;
    vm.set_loads(&[load]);
    let mut vcpu = vm.vcpu(0)?;
    let main_tid = gettid();
    // Two SIGBUS: the second shows that KVM_RUN repeats it until something
    // is injected.
    let run = thread::scope(|s| {
        s.spawn(|| {
            vm.run(&mut vcpu, 0, LIMIT, |_, ev, run| {
                Ok(match ev {
                    Event::Sigbus(_) if run.sigbus.len() >= 2 => Flow::Stop,
                    _ => Flow::Continue,
                })
            })
        })
        .join()
        .unwrap_or_default()
    });
    if let Some(e) = &run.error {
        vm.say(format!("vCPU error: {e}"));
    }
    let mut c = Checks::new();
    vm.say(format!(
        "vCPU thread tid {} (main {main_tid}): KVM_RUN returned EINTR {} times, SIGBUS records {:?}, loads completed {:?}",
        run.tid, run.eintr, run.sigbus, run.loaded
    ));
    c.check(
        run.error.is_none(),
        "the run loop saw only the expected exits",
    );
    c.check(
        run.sigbus.len() == 2 && run.eintr >= 2,
        format!(
            "KVM_RUN -> EINTR with SIGBUS BUS_MCEERR_AR captured on the vCPU thread, twice (the second KVM_RUN repeats it): {} records, {} EINTR",
            run.sigbus.len(),
            run.eintr
        ),
    );
    c.check(
        run.loaded.is_empty(),
        "the load never completed (no stale data)",
    );
    if let Some(SigbusRecord::ActionRequired {
        hva: Hva(si), lsb, ..
    }) = run.sigbus.first().copied()
    {
        let accessed = hva + 0x80;
        fact(
            name,
            format!(
                "poison={how} si_code=BUS_MCEERR_AR thread=vcpu si_addr={si:#x} page_hva={hva:#x} accessed_hva={accessed:#x} si_addr_is={} si_addr_lsb={lsb} kvm_run=EINTR repeats={}",
                if si == hva {
                    "page-start"
                } else if si == accessed {
                    "accessed-address"
                } else {
                    "other"
                },
                run.sigbus.len() > 1
            ),
        );
        c.check(
            si == hva,
            format!("si_addr {si:#x} = the page's HVA {hva:#x}"),
        );
        c.check(lsb == 12, format!("si_addr_lsb = 12 (got {lsb})"));
        c.check(
            run.sigbus.iter().all(|r| *r == run.sigbus[0]),
            "the repeated SIGBUS is identical",
        );
    }
    Ok(c.verdict("BUS_MCEERR_AR on the vCPU thread, si_addr = page, lsb 12, EINTR"))
}

fn sigbus_ar_huge() -> Result<Verdict, LabError> {
    let vm = match with_hugetlb(|| Vm::new(true, None))? {
        Ok(v) => v,
        Err(skip) => return Ok(skip),
    };
    // One 4 KiB piece of the huge page is poisoned; the guest then loads
    // from it, from the next 4 KiB of the same huge page, and from a page
    // of ordinary RAM.
    let piece = guest::HUGE_BASE + 0x1_2000;
    let next = piece + PAGE;
    let plain = u64::from(DATA) + 3 * PAGE;
    vm.write_u32(piece + 0x340, 0x5afe);
    vm.write_u32(next + 0x340, 0x600d);
    vm.write_u32(plain + 0x340, 0x900d);
    let how = poison(&vm, piece, false)?;
    let huge_hva = vm.hva(guest::HUGE_BASE)?;
    vm.set_loads(&[
        (piece + 0x340) as u32,
        (next + 0x340) as u32,
        (plain + 0x340) as u32,
    ]);
    vm.param(guest::P_CR4_MCE, 1);
    vm.param(guest::P_MC_SKIP, 1);
    vm.param(guest::P_MC_CLEAR, 1);
    vm.set_msrs(&bank_msrs());
    vm.param(guest::P_CLEAR_MSR, msr::mci_status(BANK));
    let mut vcpu = vm.vcpu(0)?;
    let support = kvm_mce::probe(&vm.kvm).map_err(edge)?;
    kvm_mce::setup_mce(&vcpu, &support, DEFAULT_BANKS, false).map_err(edge)?;
    let vendor = vm.vendor().unwrap_or(CpuVendor::Intel);
    let phys = vm.phys_bits();
    let refused: Mutex<Vec<McaError>> = Mutex::new(Vec::new());
    let reported: Mutex<Vec<u64>> = Mutex::new(Vec::new());
    let lost: Mutex<Vec<(u64, u8)>> = Mutex::new(Vec::new());
    let run = thread::scope(|s| {
        s.spawn(|| {
            vm.run(&mut vcpu, 0, LIMIT, |vcpu, ev, _| {
                if let Event::Sigbus(SigbusRecord::ActionRequired { hva, lsb, .. }) = ev {
                    // The edge's HVA -> GPA granule (the guest RAM table):
                    // the whole host page is lost, whatever lsb says.
                    let loss = guest_ram::loss(*hva, *lsb).map_err(edge)?;
                    let g = loss.granule;
                    lost.lock().unwrap().push((g.base().0, g.shift()));
                    // A granule above a page cannot be told by #MC (a
                    // Linux guest would ignore the address): the product
                    // names the 4 KiB page si_addr is in (the engine's
                    // abort_page).
                    if let Err(e) = McaMemoryError::new(
                        McaErrorKind::ActionRequired,
                        g.base().0,
                        g.shift(),
                        phys,
                    ) {
                        refused.lock().unwrap().push(e);
                    }
                    let p = loss.page;
                    let e = McaMemoryError::new(
                        McaErrorKind::ActionRequired,
                        p.base().0,
                        p.shift(),
                        phys,
                    )
                    .map_err(edge)?;
                    reported.lock().unwrap().push(e.gpa());
                    kvm_mce::inject(vcpu, &e.bank_values(vendor), BANK).map_err(edge)?;
                }
                Ok(Flow::Continue)
            })
        })
        .join()
        .unwrap_or_default()
    });
    let mut c = Checks::new();
    check_run(&mut c, &run);
    let reported = reported.into_inner().unwrap();
    let refused = refused.into_inner().unwrap();
    let lost = lost.into_inner().unwrap();
    let hvas: Vec<String> = run
        .sigbus
        .iter()
        .map(|r| match r {
            SigbusRecord::ActionRequired { hva, lsb, .. } => {
                let off = hva.raw_value().wrapping_sub(huge_hva);
                format!("huge+{off:#x}/lsb{lsb}")
            }
            r => format!("{r:?}"),
        })
        .collect();
    vm.say(format!(
        "huge page HVA {huge_hva:#x}; SIGBUS on the vCPU thread: [{}]; edge refused {refused:?}; GPAs told to the guest {:x?}",
        hvas.join(", "),
        reported
    ));
    let lsbs: Vec<u8> = run
        .sigbus
        .iter()
        .filter_map(|r| match r {
            SigbusRecord::ActionRequired { lsb, .. } => Some(*lsb),
            _ => None,
        })
        .collect();
    fact(
        "sigbus-ar-huge",
        format!(
            "poison={how} pages_touched_in_lost_huge_page=2 sigbus_count={} si_addr=[{}] si_addr_lsb={lsbs:?} edge_refused={} reported_gpas={reported:x?}",
            run.sigbus.len(),
            hvas.join(","),
            refused.len()
        ),
    );
    c.check(
        run.sigbus.len() == 2,
        format!(
            "one SIGBUS per 4 KiB page of the lost huge page the guest touched (2, got {})",
            run.sigbus.len()
        ),
    );
    let first_ok = matches!(run.sigbus.first(), Some(SigbusRecord::ActionRequired { hva, .. }) if hva.align_down(12) == Hva(huge_hva + 0x1_2000) || *hva == Hva(huge_hva));
    c.check(
        first_ok,
        "the first si_addr is the poisoned 4 KiB page (or the huge page's start)",
    );
    c.check(
        !lost.is_empty() && lost.iter().all(|&(base, shift)| base == guest::HUGE_BASE && shift == 21),
        format!("the edge records the whole 2 MiB host page as lost, whatever si_addr_lsb says ({lost:x?})"),
    );
    c.check(
        refused.len() == lost.len()
            && refused
                .iter()
                .all(|e| matches!(e, McaError::AddressLsbTooLarge { .. })),
        "a 2 MiB granule is refused for a machine check (a Linux guest would ignore the address)",
    );
    c.check(
        reported == [piece, next],
        format!("the guest was told each 4 KiB page it consumed ({piece:#x}, {next:#x})"),
    );
    c.check(
        run.mcs.len() == 2,
        format!("two #MC delivered (got {})", run.mcs.len()),
    );
    for m in &run.mcs {
        vm.say(describe_mc(&vm, m));
    }
    c.check(
        run.loaded == [0x900d],
        format!(
            "both loads from the lost huge page were abandoned, the plain page read fine ({:x?})",
            run.loaded
        ),
    );
    Ok(c.verdict(
        "hugetlb: the whole 2 MiB is lost; each consumed 4 KiB page reaches the guest by #MC",
    ))
}

// ---------------------------------------------------------------- sigbus-ao

/// A SIGBUS handler that records (si_code, si_addr, si_addr_lsb, tid).
mod ao_probe {
    use super::*;

    pub const N: usize = 8;
    pub static COUNT: AtomicU32 = AtomicU32::new(0);
    pub static CODE: [AtomicI32; N] = [const { AtomicI32::new(0) }; N];
    pub static ADDR: [AtomicU64; N] = [const { AtomicU64::new(0) }; N];
    pub static LSB: [AtomicI32; N] = [const { AtomicI32::new(0) }; N];
    pub static TID: [AtomicI32; N] = [const { AtomicI32::new(0) }; N];

    extern "C" fn handler(_sig: c_int, info: *mut libc::siginfo_t, _ctx: *mut c_void) {
        // SAFETY: the kernel passes a valid siginfo_t for SIGBUS (SA_SIGINFO).
        let i = unsafe { sigbus::read_siginfo(info) };
        let n = COUNT.fetch_add(1, Ordering::SeqCst) as usize;
        if n < N {
            CODE[n].store(i.code, Ordering::SeqCst);
            ADDR[n].store(i.addr, Ordering::SeqCst);
            LSB[n].store(i32::from(i.lsb), Ordering::SeqCst);
            TID[n].store(gettid(), Ordering::SeqCst);
        }
    }

    pub fn install() -> io::Result<()> {
        // SAFETY: a zeroed sigaction is a valid starting point; we set the
        // handler, SA_SIGINFO, an empty mask, then install it for SIGBUS.
        // The handler only touches atomics and calls gettid.
        unsafe {
            let mut sa: libc::sigaction = mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(libc::SIGBUS, &sa, ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

fn sigbus_ao() -> Result<Verdict, LabError> {
    if let Some(v) = corrupt_pfn_available() {
        return Ok(v);
    }
    ao_probe::install().map_err(|e| LabError::Io("sigaction", e))?;
    // Early kill on the main thread, before any other thread exists (kept
    // until the scenario returns).
    let _early_kill = EarlyKill::enable().map_err(edge)?;
    let main_tid = gettid();
    let vm = Vm::new(false, None)?;
    let page = u64::from(DATA);
    vm.write_u32(page, 0xdead);
    vm.param(guest::P_POLL, 1);
    let mut vcpu = vm.vcpu(0)?;
    let polling = AtomicBool::new(false);
    let vcpu_tid = AtomicI32::new(0);
    let hva = vm.hva(page)?;
    let pfn = pfn_of(hva).map_err(|e| LabError::Io("pagemap", e))?;
    let mut helper = 0;
    let mut wrote = Duration::ZERO;
    let mut waited = Duration::ZERO;
    let run = thread::scope(|s| -> Result<Run, LabError> {
        let h = s.spawn(|| {
            vcpu_tid.store(gettid(), Ordering::SeqCst);
            vm.run(&mut vcpu, 0, LIMIT, |_, ev, _| {
                if *ev == Event::Poll {
                    polling.store(true, Ordering::SeqCst);
                }
                Ok(Flow::Continue)
            })
        });
        poll_until(LIMIT, || polling.load(Ordering::SeqCst));
        let r = corrupt_pfn(pfn);
        waited = poll_until(Duration::from_secs(3), || {
            ao_probe::COUNT.load(Ordering::SeqCst) != 0
        })
        .1;
        vm.param(guest::P_STOP, 1);
        let run = h.join().unwrap_or_default();
        (helper, wrote) = r?;
        Ok(run)
    })?;
    let n = (ao_probe::COUNT.load(Ordering::SeqCst) as usize).min(ao_probe::N);
    let mut c = Checks::new();
    check_run(&mut c, &run);
    let vt = vcpu_tid.load(Ordering::SeqCst);
    vm.say(format!(
        "threads: main {main_tid} (PR_MCE_KILL_EARLY set here first), vCPU {vt}, corrupt-pfn writer {helper}; wrote PFN {pfn:#x} in {wrote:?}; {n} SIGBUS within {waited:?}"
    ));
    c.check(n == 1, format!("exactly one SIGBUS ({n})"));
    for i in 0..n {
        let code = ao_probe::CODE[i].load(Ordering::SeqCst);
        let addr = ao_probe::ADDR[i].load(Ordering::SeqCst);
        let lsb = ao_probe::LSB[i].load(Ordering::SeqCst);
        let tid = ao_probe::TID[i].load(Ordering::SeqCst);
        let who = if tid == main_tid {
            "main"
        } else if tid == vt {
            "vcpu"
        } else if tid == helper {
            "corrupt-pfn-writer"
        } else {
            "other"
        };
        fact(
            "sigbus-ao",
            format!(
                "si_code={} thread={who} si_addr={addr:#x} page_hva={hva:#x} si_addr_lsb={lsb} delay_ms={}",
                if code == libc::BUS_MCEERR_AO {
                    "BUS_MCEERR_AO"
                } else if code == libc::BUS_MCEERR_AR {
                    "BUS_MCEERR_AR"
                } else {
                    "other"
                },
                waited.as_millis()
            ),
        );
        c.check(
            code == libc::BUS_MCEERR_AO,
            format!("si_code BUS_MCEERR_AO (got {code})"),
        );
        c.check(
            who == "main",
            format!(
                "delivered to the main thread, the first early-kill thread (got {who}, tid {tid})"
            ),
        );
        c.check(
            addr == hva && lsb == 12,
            format!("si_addr = the page {hva:#x} (got {addr:#x}), lsb 12 (got {lsb})"),
        );
    }
    Ok(c.verdict("BUS_MCEERR_AO to the main thread"))
}

// ---------------------------------------------------------------- mce-*

/// A VM with one vCPU, `KVM_X86_SETUP_MCE` done through the edge (unless
/// `setup` is false), the guest's #MC handler reporting the bank.
fn mce_vm(
    vendor: Option<CpuVendor>,
    setup: bool,
) -> Result<(Vm, VcpuFd, Option<McgCap>), LabError> {
    let vm = Vm::new(false, vendor)?;
    vm.set_msrs(&bank_msrs());
    vm.param(guest::P_CLEAR_MSR, msr::mci_status(BANK));
    let vcpu = vm.vcpu(0)?;
    let cap = if setup {
        let support = kvm_mce::probe(&vm.kvm).map_err(edge)?;
        let asked = McgCap::for_guest(
            support.mcg_cap_supported,
            support.max_banks,
            DEFAULT_BANKS,
            false,
        )
        .map_err(edge)?;
        let cap = kvm_mce::setup_mce(&vcpu, &support, DEFAULT_BANKS, false).map_err(edge)?;
        vm.say(format!(
            "KVM_X86_SETUP_MCE({:#x}) -> the vCPU's MCG_CAP is {:#x}: {} banks, SER_P {}",
            asked.raw(),
            cap.raw(),
            cap.banks(),
            cap.ser()
        ));
        Some(cap)
    } else {
        None
    };
    Ok((vm, vcpu, cap))
}

/// Injects `values` at the guest's READY exit through the edge; returns
/// the run and the injection result.
fn run_inject_at_ready(
    vm: &Vm,
    vcpu: &mut VcpuFd,
    values: McaBankValues,
    bank: u8,
    checked: bool,
) -> (Run, Option<Result<(), KvmMceError>>) {
    let result = Mutex::new(None);
    let run = thread::scope(|s| {
        s.spawn(|| {
            vm.run(vcpu, 0, LIMIT, |vcpu, ev, _| {
                if *ev == Event::Ready {
                    let r = if checked {
                        kvm_mce::inject(vcpu, &values, bank)
                    } else {
                        kvm_mce::inject_unchecked(vcpu, &values, bank)
                    };
                    *result.lock().unwrap() = Some(r);
                }
                Ok(Flow::Continue)
            })
        })
        .join()
        .unwrap_or_default()
    });
    (run, result.into_inner().unwrap())
}

fn mce_inject(kind: McaErrorKind) -> Result<Verdict, LabError> {
    let name = if kind == McaErrorKind::ActionRequired {
        "mce-srar"
    } else {
        "mce-srao"
    };
    let mut c = Checks::new();
    for vendor in [CpuVendor::Intel, CpuVendor::Amd] {
        let (vm, mut vcpu, cap) = mce_vm(None, true)?;
        let cap = cap.expect("setup");
        vm.param(guest::P_CR4_MCE, 1);
        vm.param(guest::P_MC_CLEAR, 1);
        vm.param(guest::P_FINAL_DUMP, 1);
        let gpa = u64::from(DATA) + 5 * PAGE;
        let err = McaMemoryError::new(kind, gpa, 12, vm.phys_bits()).map_err(edge)?;
        let values = err.bank_values(vendor);
        let want_status = match (vendor, kind) {
            (CpuVendor::Intel, McaErrorKind::ActionRequired) => INTEL_SRAR_STATUS,
            (CpuVendor::Intel, _) => INTEL_SRAO_STATUS,
            (CpuVendor::Amd, McaErrorKind::ActionRequired) => AMD_AR_STATUS,
            (CpuVendor::Amd, _) => AMD_DEFERRED_STATUS,
        };
        // MCIP|EIPV|RIPV (Intel SRAR), MCIP|EIPV (AMD, RIPV clear), MCIP|RIPV (SRAO).
        let want_mcg = match (vendor, kind) {
            (CpuVendor::Intel, McaErrorKind::ActionRequired) => 7,
            (CpuVendor::Amd, McaErrorKind::ActionRequired) => 6,
            _ => 5,
        };
        vm.say(format!(
            "{vendor:?} layout: injecting {values:x?} into bank {BANK} at the guest's READY exit"
        ));
        let t = Instant::now();
        let (run, res) = run_inject_at_ready(&vm, &mut vcpu, values, BANK, true);
        let took = t.elapsed();
        check_run(&mut c, &run);
        c.check(
            matches!(res, Some(Ok(()))),
            format!("{vendor:?}: ras_edge inject (KVM_X86_SET_MCE) succeeded: {res:?}"),
        );
        c.check(
            values.status == want_status,
            format!(
                "{vendor:?}: the edge's MCi_STATUS {:#x} = the SDM/APM value {want_status:#x}",
                values.status
            ),
        );
        if values.raises_machine_check() {
            c.check(
                run.mcs.len() == 1,
                format!(
                    "{vendor:?}: one #MC taken by the guest (got {})",
                    run.mcs.len()
                ),
            );
            if let Some(m) = run.mcs.first() {
                vm.say(describe_mc(&vm, m));
                c.check(
                    m.msr(msr::mci_status(BANK)) == Some(want_status)
                        && m.msr(msr::mci_addr(BANK)) == Some(gpa)
                        && m.msr(msr::mci_misc(BANK)) == Some(MISC_PAGE),
                    format!("{vendor:?}: the guest read MC{BANK}_STATUS {want_status:#x}, ADDR {gpa:#x}, MISC {MISC_PAGE:#x}"),
                );
                c.check(
                    m.msr(msr::IA32_MCG_STATUS) == Some(want_mcg),
                    format!("{vendor:?}: the guest read MCG_STATUS {want_mcg:#x}"),
                );
                c.check(
                    m.msr(msr::IA32_MCG_CAP) == Some(cap.raw())
                        && m.msr(msr::mci_ctl(BANK)) == Some(u64::MAX),
                    format!("{vendor:?}: MCG_CAP = what ras_edge's setup_mce returned ({:#x}), MC{BANK}_CTL all ones", cap.raw()),
                );
                c.check(
                    m.eip == vm.prog.after_ready && m.cs == u32::from(guest::SEL_CODE),
                    format!("{vendor:?}: #MC taken at the next instruction boundary after the exit ({:#x})", vm.prog.after_ready),
                );
                fact(
                    name,
                    format!(
                        "layout={} injected_status={:#x} guest_status={:#x} guest_addr={:#x} guest_misc={:#x} guest_mcg_status={:#x} guest_mcg_cap={:#x} eip={:#x} delivered=yes",
                        vendor_name(Some(vendor)),
                        values.status,
                        m.msr(msr::mci_status(BANK)).unwrap_or(0),
                        m.msr(msr::mci_addr(BANK)).unwrap_or(0),
                        m.msr(msr::mci_misc(BANK)).unwrap_or(0),
                        m.msr(msr::IA32_MCG_STATUS).unwrap_or(0),
                        m.msr(msr::IA32_MCG_CAP).unwrap_or(0),
                        m.eip
                    ),
                );
            }
            c.check(
                run.final_msr(msr::IA32_MCG_STATUS) == Some(0)
                    && run.final_msr(msr::mci_status(BANK)) == Some(0),
                format!("{vendor:?}: the handler's wrmsr cleared MCG_STATUS and MC{BANK}_STATUS"),
            );
        } else {
            c.check(
                run.mcs.is_empty(),
                format!("{vendor:?}: no #MC for an error without UC"),
            );
            let st = run.final_msr(msr::mci_status(BANK));
            let ad = run.final_msr(msr::mci_addr(BANK));
            vm.say(format!("final dump (the guest polling its banks): MC{BANK}_STATUS {st:x?} ADDR {ad:x?} MCG_STATUS {:x?}", run.final_msr(msr::IA32_MCG_STATUS)));
            c.check(
                st == Some(want_status) && ad == Some(gpa),
                format!("{vendor:?}: a guest polling bank {BANK} finds STATUS {want_status:#x} and ADDR {gpa:#x}"),
            );
            fact(
                name,
                format!(
                    "layout={} injected_status={:#x} guest_polled_status={:#x} guest_polled_addr={:#x} delivered=no-#MC(bank-only)",
                    vendor_name(Some(vendor)),
                    values.status,
                    st.unwrap_or(0),
                    ad.unwrap_or(0)
                ),
            );
        }
        println!(
            "MEASURE {name} {vendor:?} vm_run_ms={:.1}",
            took.as_secs_f64() * 1e3
        );
    }
    Ok(c.verdict(format!(
        "{name}: what the guest read = what the edge injected (Intel and AMD layouts)"
    )))
}

fn mce_nosetup() -> Result<Verdict, LabError> {
    let (vm, mut vcpu, _) = mce_vm(None, false)?;
    vm.param(guest::P_CR4_MCE, 1);
    vm.param(guest::P_FINAL_DUMP, 1);
    let gpa = u64::from(DATA);
    let values = intel_srar(&vm, gpa)?;
    let before = kvm_mce::read_msr(&vcpu, msr::IA32_MCG_CAP).map_err(edge)?;
    let bank32 = kvm_mce::inject_unchecked(&vcpu, &values, 32);
    let (run, res) = run_inject_at_ready(&vm, &mut vcpu, values, BANK, true);
    let mut c = Checks::new();
    check_run(&mut c, &run);
    let cap = run.final_msr(msr::IA32_MCG_CAP);
    let ctl = run.final_msr(msr::mci_ctl(BANK));
    let st = run.final_msr(msr::mci_status(BANK));
    vm.say(format!(
        "no KVM_X86_SETUP_MCE: MCG_CAP (KVM_GET_MSRS) {before:#x}; SET_MCE bank 32 -> {bank32:?}; SET_MCE bank {BANK} -> {res:?}; #MC taken {}; guest then read MCG_CAP {cap:x?} MC{BANK}_CTL {ctl:x?} MC{BANK}_STATUS {st:x?}",
        run.mcs.len()
    ));
    fact(
        "mce-nosetup",
        format!(
            "default_mcg_cap={before:#x} set_mce_bank32={} set_mce_bank9={} mc_delivered={} guest_mci_ctl={:#x} guest_mci_status={:#x}",
            match &bank32 {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("error({})", e.to_string().replace(' ', "_")),
            },
            match &res {
                Some(Ok(())) => "ok".to_string(),
                Some(Err(e)) => format!("error({})", e.to_string().replace(' ', "_")),
                None => "not-called".into(),
            },
            run.mcs.len(),
            ctl.unwrap_or(u64::MAX),
            st.unwrap_or(u64::MAX)
        ),
    );
    c.check(
        before == u64::from(KVM_MAX_MCE_BANKS),
        format!(
            "a vCPU without SETUP_MCE has MCG_CAP = 32 banks and no capability bits ({before:#x})"
        ),
    );
    c.check(
        bank32.is_err(),
        "SET_MCE into bank 32 (>= bank count) fails (EINVAL)",
    );
    c.check(
        matches!(res, Some(Ok(()))),
        "SET_MCE into bank 9 returns success",
    );
    c.check(
        run.mcs.is_empty() && ctl == Some(0) && st == Some(0),
        "but the error is dropped: MCi_CTL is 0, no #MC, the bank stays empty (SETUP_MCE is required)",
    );
    Ok(c.verdict("without SETUP_MCE an uncorrected error is silently dropped"))
}

/// The fact words of an injection the edge refused (`refused`: the
/// expected refusal's name, when it was that one), forced anyway with the
/// raw `KVM_X86_SET_MCE` (`forced_ok`), then `KVM_RUN`.
fn forced_injection(refused: Option<&str>, forced_ok: bool, shutdown: bool) -> String {
    format!(
        "edge_inject={} set_mce={} next_kvm_run={}",
        refused.map_or_else(|| "other".to_string(), |r| format!("refused({r})")),
        if forced_ok { "ok" } else { "error" },
        if shutdown {
            "KVM_EXIT_SHUTDOWN(triple-fault)"
        } else {
            "other"
        }
    )
}

/// Intel's layout of an action-required error on the 4 KiB page at `gpa`.
fn intel_srar(vm: &Vm, gpa: u64) -> Result<McaBankValues, LabError> {
    Ok(
        McaMemoryError::new(McaErrorKind::ActionRequired, gpa, 12, vm.phys_bits())
            .map_err(edge)?
            .bank_values(CpuVendor::Intel),
    )
}

fn mce_nocr4() -> Result<Verdict, LabError> {
    let (vm, mut vcpu, _) = mce_vm(None, true)?;
    let values = intel_srar(&vm, u64::from(DATA))?;
    // The edge refuses (checked); then the raw ioctl shows why.
    let kvm_cr4 = Mutex::new(None);
    let refused = Mutex::new(None);
    let raw = Mutex::new(None);
    let run = thread::scope(|s| {
        s.spawn(|| {
            vm.run(&mut vcpu, 0, LIMIT, |vcpu, ev, _| {
                if *ev == Event::Ready {
                    *kvm_cr4.lock().unwrap() = vcpu.get_sregs().ok().map(|s| s.cr4);
                    *refused.lock().unwrap() = Some(kvm_mce::inject(vcpu, &values, BANK));
                    *raw.lock().unwrap() = Some(kvm_mce::inject_unchecked(vcpu, &values, BANK));
                }
                Ok(Flow::Continue)
            })
        })
        .join()
        .unwrap_or_default()
    });
    let refused = refused.into_inner().unwrap();
    let raw = raw.into_inner().unwrap();
    let kvm_cr4 = kvm_cr4.into_inner().unwrap();
    let mut c = Checks::new();
    vm.say(format!(
        "CR4 as the guest reads it {:x?}, as KVM has it (KVM_GET_SREGS) {kvm_cr4:x?}; edge inject -> {refused:?}; KVM_X86_SET_MCE anyway -> {raw:?}; then KVM_RUN: shutdown {}, #MC {}, done {}, error {:?}",
        run.cr4, run.shutdown, run.mcs.len(), run.done, run.error
    ));
    fact(
        "mce-nocr4",
        format!(
            "guest_read_cr4={:#x} kvm_sregs_cr4={:#x} {}",
            run.cr4.unwrap_or(0),
            kvm_cr4.unwrap_or(u64::MAX),
            forced_injection(
                matches!(refused, Some(Err(KvmMceError::MachineCheckDisabled)))
                    .then_some("MachineCheckDisabled"),
                matches!(raw, Some(Ok(()))),
                run.shutdown
            )
        ),
    );
    c.check(
        kvm_cr4.is_some_and(|v| v & 0x40 == 0),
        "the guest never set CR4.MCE: KVM's CR4 (KVM_GET_SREGS) has it clear",
    );
    if run.cr4.is_some_and(|v| v & 0x40 != 0) {
        println!(
            "    note: the guest's own mov from CR4 shows MCE set (svm_set_cr4 ORs the host's CR4.MCE into the VMCB's CR4); KVM_X86_SET_MCE checks KVM's own copy, which is clear"
        );
    }
    c.check(
        matches!(refused, Some(Err(KvmMceError::MachineCheckDisabled))),
        "ras_edge refuses to inject (MachineCheckDisabled)",
    );
    c.check(
        matches!(raw, Some(Ok(()))),
        "the raw KVM_X86_SET_MCE returns success",
    );
    c.check(
        run.shutdown && run.mcs.is_empty(),
        "and the next KVM_RUN ends in KVM_EXIT_SHUTDOWN (KVM turned the #MC into a triple fault)",
    );
    Ok(c.verdict("CR4.MCE clear: KVM shuts the guest down; the edge refuses first"))
}

fn mce_mcip() -> Result<Verdict, LabError> {
    let (vm, mut vcpu, _) = mce_vm(None, true)?;
    vm.param(guest::P_CR4_MCE, 1);
    vm.param(guest::P_POLL, 1);
    // The handler leaves MCG_STATUS.MCIP set (P_MC_CLEAR = 0).
    let values = intel_srar(&vm, u64::from(DATA))?;
    let first = Mutex::new(None);
    let mcip = Mutex::new(None);
    let refused = Mutex::new(None);
    let raw = Mutex::new(None);
    let run = thread::scope(|s| {
        s.spawn(|| {
            vm.run(&mut vcpu, 0, LIMIT, |vcpu, ev, run| {
                match ev {
                    Event::Ready => {
                        *first.lock().unwrap() = Some(kvm_mce::inject(vcpu, &values, BANK));
                    }
                    Event::Poll if run.mcs.len() == 1 && raw.lock().unwrap().is_none() => {
                        *mcip.lock().unwrap() = Some(kvm_mce::machine_check_in_progress(vcpu));
                        *refused.lock().unwrap() = Some(kvm_mce::inject(vcpu, &values, BANK));
                        *raw.lock().unwrap() = Some(kvm_mce::inject_unchecked(vcpu, &values, BANK));
                    }
                    _ => {}
                }
                Ok(Flow::Continue)
            })
        })
        .join()
        .unwrap_or_default()
    });
    let (first, mcip, refused, raw) = (
        first.into_inner().unwrap(),
        mcip.into_inner().unwrap(),
        refused.into_inner().unwrap(),
        raw.into_inner().unwrap(),
    );
    let mut c = Checks::new();
    vm.say(format!(
        "first inject {first:?}; #MC handled {} (MCIP left set); MCIP via KVM_GET_MSRS {mcip:?}; edge inject #2 {refused:?}; raw SET_MCE #2 {raw:?}; shutdown {}",
        run.mcs.len(),
        run.shutdown
    ));
    fact(
        "mce-mcip",
        format!(
            "mcip_seen_by_edge={} {}",
            matches!(mcip, Some(Ok(true))),
            forced_injection(
                matches!(refused, Some(Err(KvmMceError::MachineCheckInProgress)))
                    .then_some("MachineCheckInProgress"),
                matches!(raw, Some(Ok(()))),
                run.shutdown
            )
        ),
    );
    c.check(
        matches!(first, Some(Ok(()))) && run.mcs.len() == 1,
        "the first #MC was delivered",
    );
    c.check(
        matches!(mcip, Some(Ok(true))),
        "ras_edge reads MCG_STATUS.MCIP = 1 (KVM_GET_MSRS)",
    );
    c.check(
        matches!(refused, Some(Err(KvmMceError::MachineCheckInProgress))),
        "ras_edge refuses a second injection (MachineCheckInProgress)",
    );
    c.check(
        matches!(raw, Some(Ok(()))) && run.shutdown,
        "the raw second KVM_X86_SET_MCE succeeds and the guest shuts down (triple fault)",
    );
    Ok(c.verdict("MCIP set: KVM shuts the guest down; the edge refuses first"))
}

// ---------------------------------------------------------------- chains

fn chain_ar(vendor_override: Option<CpuVendor>, by_pfn: bool) -> Result<Verdict, LabError> {
    if by_pfn && let Some(v) = corrupt_pfn_available() {
        return Ok(v);
    }
    let name = if vendor_override.is_some() {
        "chain-ar-intel"
    } else {
        "chain-ar"
    };
    let (vm, mut vcpu, _) = mce_vm(vendor_override, true)?;
    let vendor = vm.vendor().unwrap_or(CpuVendor::Intel);
    let phys = vm.phys_bits();
    let page = u64::from(DATA) + 2 * PAGE;
    let clean = page + PAGE;
    vm.write_u32(page + 0x80, 0x5afe);
    vm.write_u32(clean + 0x80, 0x600d);
    let how = poison(&vm, page, by_pfn)?;
    vm.set_loads(&[(page + 0x80) as u32, (clean + 0x80) as u32]);
    vm.param(guest::P_CR4_MCE, 1);
    vm.param(guest::P_MC_SKIP, 1);
    vm.param(guest::P_MC_CLEAR, 1);
    vm.param(guest::P_FINAL_DUMP, 1);
    let injected: Mutex<Option<(McaBankValues, u64)>> = Mutex::new(None);
    let t_sigbus: Mutex<Option<Instant>> = Mutex::new(None);
    let handling = Mutex::new(Duration::ZERO);
    let to_guest = Mutex::new(Duration::ZERO);
    let run = thread::scope(|s| {
        s.spawn(|| {
            vm.run(&mut vcpu, 0, LIMIT, |vcpu, ev, _| {
                match ev {
                    Event::Sigbus(rec @ SigbusRecord::ActionRequired { hva, lsb, .. }) => {
                        let t0 = Instant::now();
                        *t_sigbus.lock().unwrap() = Some(t0);
                        // The product path: HVA -> GPA granule (the edge's
                        // guest RAM table), MCA values for the guest's
                        // vendor, SET_MCE (x86 edge).
                        let g = guest_ram::granule(*hva, *lsb).map_err(edge)?;
                        let err = McaMemoryError::new(McaErrorKind::ActionRequired, g.base().0, g.shift(), phys)
                            .map_err(edge)?;
                        let values = err.bank_values(vendor);
                        kvm_mce::inject(vcpu, &values, BANK).map_err(edge)?;
                        *handling.lock().unwrap() = t0.elapsed();
                        *injected.lock().unwrap() = Some((values, err.gpa()));
                        println!("    story: vCPU0 {rec:?} -> GPA {:#x} (2^{}) -> {vendor:?} {values:x?} -> KVM_X86_SET_MCE bank {BANK}", g.base().0, g.shift());
                    }
                    Event::McHandled => {
                        if let Some(t0) = *t_sigbus.lock().unwrap() {
                            *to_guest.lock().unwrap() = t0.elapsed();
                        }
                    }
                    _ => {}
                }
                Ok(Flow::Continue)
            })
        })
        .join()
        .unwrap_or_default()
    });
    let mut c = Checks::new();
    check_run(&mut c, &run);
    let injected = *injected.lock().unwrap();
    c.check(
        run.sigbus.len() == 1 && run.eintr >= 1,
        format!(
            "one SIGBUS BUS_MCEERR_AR on the vCPU thread, KVM_RUN -> EINTR (got {:?})",
            run.sigbus
        ),
    );
    c.check(
        injected.is_some_and(|(_, g)| g == page),
        format!("the edge translated it to GPA {page:#x}"),
    );
    let (want_status, want_mcg) = match vendor {
        CpuVendor::Intel => (INTEL_SRAR_STATUS, 7),
        CpuVendor::Amd => (AMD_AR_STATUS, 6),
    };
    c.check(
        run.mcs.len() == 1,
        format!("one #MC taken by the guest (got {})", run.mcs.len()),
    );
    if let Some(m) = run.mcs.first() {
        vm.say(describe_mc(&vm, m));
        c.check(
            m.msr(msr::mci_addr(BANK)) == Some(page),
            format!("the guest's handler read MC{BANK}_ADDR = {page:#x}, the page it consumed"),
        );
        c.check(
            m.msr(msr::mci_status(BANK)) == Some(want_status)
                && m.msr(msr::mci_misc(BANK)) == Some(MISC_PAGE)
                && m.msr(msr::IA32_MCG_STATUS) == Some(want_mcg),
            format!("{vendor:?} layout: STATUS {want_status:#x}, MISC {MISC_PAGE:#x}, MCG_STATUS {want_mcg:#x}"),
        );
        c.check(
            m.eip == vm.prog.load,
            format!(
                "the pushed EIP {:#x} is the consuming load {:#x} (EIPV)",
                m.eip, vm.prog.load
            ),
        );
        fact(
            name,
            format!(
                "poison={how} guest_vendor={} si_addr_lsb={} gpa={page:#x} guest_addr={:#x} guest_status={:#x} guest_mcg_status={:#x} guest_eip_is_load={}",
                vendor_name(Some(vendor)),
                match run.sigbus.first() {
                    Some(SigbusRecord::ActionRequired { lsb, .. }) => *lsb,
                    _ => 0,
                },
                m.msr(msr::mci_addr(BANK)).unwrap_or(0),
                m.msr(msr::mci_status(BANK)).unwrap_or(0),
                m.msr(msr::IA32_MCG_STATUS).unwrap_or(0),
                m.eip == vm.prog.load
            ),
        );
    }
    c.check(
        run.loaded == [0x600d],
        format!(
            "the guest abandoned the lost load and went on (loads {:x?})",
            run.loaded
        ),
    );
    let h = *handling.lock().unwrap();
    let g = *to_guest.lock().unwrap();
    vm.say(format!(
        "story: SIGBUS -> SET_MCE done {:.1} us; SIGBUS -> guest handler done {:.1} us",
        h.as_secs_f64() * 1e6,
        g.as_secs_f64() * 1e6
    ));
    println!(
        "MEASURE {name} sigbus_to_inject_us={:.1} sigbus_to_guest_handler_us={:.1}",
        h.as_secs_f64() * 1e6,
        g.as_secs_f64() * 1e6
    );
    Ok(c.verdict(format!(
        "{vendor:?} guest told the consumed GPA by #MC, went on"
    )))
}

fn chain_ao() -> Result<Verdict, LabError> {
    if let Some(v) = corrupt_pfn_available() {
        return Ok(v);
    }
    // Early kill on the main thread (the VMM thread), before the vCPU
    // threads exist; kept until the scenario returns.
    let _early_kill = EarlyKill::enable().map_err(edge)?;
    let mut c = Checks::new();
    for (i, vendor) in [CpuVendor::Intel, CpuVendor::Amd].into_iter().enumerate() {
        let (vm, mut vcpu, _) = mce_vm(Some(vendor), true)?;
        let page = u64::from(DATA) + (7 + i as u64) * PAGE;
        vm.write_u32(page, 0xdead);
        vm.param(guest::P_CR4_MCE, 1);
        vm.param(guest::P_POLL, 1);
        vm.param(guest::P_MC_STOP, 1);
        vm.param(guest::P_MC_CLEAR, 1);
        vm.param(guest::P_FINAL_DUMP, 1);
        let hva = vm.hva(page)?;
        let pfn = pfn_of(hva).map_err(|e| LabError::Io("pagemap", e))?;
        let pending: Mutex<Option<McaBankValues>> = Mutex::new(None);
        let injected = AtomicBool::new(false);
        let polling = AtomicBool::new(false);
        let inject_err = Mutex::new(None);
        let mut captured = Vec::new();
        let run = thread::scope(|s| -> Result<Run, LabError> {
            let h = s.spawn(|| {
                vm.run(&mut vcpu, 0, LIMIT, |vcpu, ev, _| {
                    if *ev == Event::Poll {
                        polling.store(true, Ordering::SeqCst);
                        // The vCPU thread injects what the VMM thread queued.
                        if let Some(v) = pending.lock().unwrap().take() {
                            if let Err(e) = kvm_mce::inject(vcpu, &v, BANK) {
                                *inject_err.lock().unwrap() = Some(e.to_string());
                            }
                            injected.store(true, Ordering::SeqCst);
                        }
                    }
                    Ok(Flow::Continue)
                })
            });
            poll_until(LIMIT, || polling.load(Ordering::SeqCst));
            let r = corrupt_pfn(pfn);
            poll_until(Duration::from_secs(3), || {
                captured = sigbus::drain_action_optional();
                !captured.is_empty()
            });
            // The VMM thread: AO -> GPA -> values for the guest's vendor.
            let mut err = None;
            if let Some(rec @ SigbusRecord::ActionOptional { hva, lsb }) = captured.first().copied()
            {
                match guest_ram::granule(hva, lsb).map_err(edge).and_then(|g| {
                    McaMemoryError::new(
                        McaErrorKind::ActionOptional,
                        g.base().0,
                        g.shift(),
                        vm.phys_bits(),
                    )
                    .map_err(edge)
                }) {
                    Ok(e) => {
                        let v = e.bank_values(vm.vendor().unwrap_or(CpuVendor::Intel));
                        println!(
                            "    story: main thread {rec:?} -> GPA {:#x} -> {vendor:?} {v:x?} queued for vCPU0",
                            e.gpa()
                        );
                        *pending.lock().unwrap() = Some(v);
                    }
                    Err(e) => err = Some(e),
                }
            }
            poll_until(Duration::from_secs(3), || injected.load(Ordering::SeqCst));
            // An AMD deferred error raises no #MC: stop the guest's loop so
            // it dumps its banks (what its poller would find).
            thread::sleep(Duration::from_millis(20));
            vm.param(guest::P_STOP, 1);
            let run = h.join().unwrap_or_default();
            r?;
            if let Some(e) = err {
                return Err(e);
            }
            Ok(run)
        })?;
        check_run(&mut c, &run);
        c.check(
            matches!(captured.first(), Some(SigbusRecord::ActionOptional { hva: h, lsb: 12 }) if *h == Hva(hva)),
            format!("{vendor:?}: BUS_MCEERR_AO for the page captured by the edge's SIGBUS handler on the VMM thread ({captured:?})"),
        );
        c.check(
            injected.load(Ordering::SeqCst) && inject_err.lock().unwrap().is_none(),
            format!(
                "{vendor:?}: the vCPU thread injected it ({:?})",
                inject_err.lock().unwrap()
            ),
        );
        match vendor {
            CpuVendor::Intel => {
                c.check(
                    run.mcs.len() == 1,
                    format!("Intel: one SRAO #MC (got {})", run.mcs.len()),
                );
                if let Some(m) = run.mcs.first() {
                    vm.say(describe_mc(&vm, m));
                    c.check(
                        m.msr(msr::mci_status(BANK)) == Some(INTEL_SRAO_STATUS)
                            && m.msr(msr::mci_addr(BANK)) == Some(page)
                            && m.msr(msr::IA32_MCG_STATUS) == Some(5),
                        format!("Intel: the guest read STATUS {INTEL_SRAO_STATUS:#x}, ADDR {page:#x}, MCG_STATUS MCIP|RIPV"),
                    );
                    fact(
                        "chain-ao",
                        format!(
                            "layout=intel delivered=#MC guest_status={:#x} guest_addr={:#x} gpa={page:#x}",
                            m.msr(msr::mci_status(BANK)).unwrap_or(0),
                            m.msr(msr::mci_addr(BANK)).unwrap_or(0)
                        ),
                    );
                }
            }
            CpuVendor::Amd => {
                let st = run.final_msr(msr::mci_status(BANK));
                let ad = run.final_msr(msr::mci_addr(BANK));
                vm.say(format!(
                    "AMD: #MC {}; the guest's bank {BANK} afterwards: STATUS {st:x?} ADDR {ad:x?}",
                    run.mcs.len()
                ));
                c.check(
                    run.mcs.is_empty() && st == Some(AMD_DEFERRED_STATUS) && ad == Some(page),
                    format!("AMD: no #MC; a polling guest finds the deferred error ({AMD_DEFERRED_STATUS:#x}) at {page:#x}"),
                );
                fact(
                    "chain-ao",
                    format!(
                        "layout=amd delivered=bank-only(no-#MC) guest_polled_status={:#x} guest_polled_addr={:#x} gpa={page:#x}",
                        st.unwrap_or(0),
                        ad.unwrap_or(0)
                    ),
                );
            }
        }
    }
    Ok(c.verdict("AO -> SRAO #MC (Intel) / deferred error in the bank (AMD)"))
}
