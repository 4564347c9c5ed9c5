// SPDX-License-Identifier: Apache-2.0
//! The lab scenarios. Each runs in its own process (see `main`), prints what
//! it saw and returns a verdict.

use std::io::{Read, Seek, SeekFrom, Write as _};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};
use std::{env, fs, io, ptr, thread};

use ras::event::EventKind;
use ras::inject::{InjectRequest, InjectSource, Pending, VcpuMode};
use ras_edge::arch::aarch64::sea::{InjectionMethod, SeaExit};
use ras_edge::host::clock::ReportTime;
use ras_edge::host::early_kill::EarlyKill;
use ras_edge::host::guest_ram::Hva;
use ras_edge::host::retire::{quarantine, retire};
use ras_edge::host::sigbus::{self, SigbusRecord, VcpuSigbusGuard};
use ras_edge::kvm::aarch64::sea::{self as kvm_sea, AbortInjector, KVM_CAP_ARM_SEA_TO_USER};
pub use ras_lab_runner::Verdict;
use ras_lab_runner::hwpoison::{
    CORRUPT_PFN, HELPER_ID, PAGE, kernel_release, pfn_of, poison_madvise, with_hugetlb,
};
use ras_lab_runner::{Checks, poll_until};
use vm_memory::{Address, Bytes, GuestAddress};

use crate::guest::{self, DATA};
use crate::vmm::{self, Handled, Lab, LabError, VcpuReport, edge};
use crate::{asm, ghes};

pub const ALL: &[(&str, &str)] = &[
    (
        "caps",
        "1 capabilities: KVM_CAP_ARM_SEA_TO_USER present on >= 6.19, absent before",
    ),
    (
        "sync",
        "2 synchronous consumption: SIGBUS -> record -> external data abort -> guest ack",
    ),
    (
        "nonram",
        "7 SIGBUS for a host address that is not guest RAM: VMM stops with a clear message",
    ),
    ("second", "3 a second error before the first ack"),
    ("twovcpu", "4 two vCPUs consume two poisoned pages at once"),
    (
        "ao",
        "6 action-optional notice (corrupt-pfn, early kill) -> async source + notify hook",
    ),
    (
        "iabt",
        "8 KVM_EXIT_ARM_SEA for an instruction fetch: the exit handler injects an instruction abort",
    ),
    (
        "drill",
        "9 synchronous drill: refused while the vCPU is not in user mode, delivered with vcpu_mode=any",
    ),
    (
        "huge",
        "5 hugetlb 2 MiB guest page: the 2 MiB loss is kept, the record names the accessed page",
    ),
    (
        "syncpfn",
        "2b scenario 2 with the page poisoned from outside (debugfs corrupt-pfn), as hardware would",
    ),
    (
        "retire",
        "10 host page behind an unclaimed abort: retired (the kernel isolates it) or quarantined (kept, out of guest memory)",
    ),
];

const LIMIT: Duration = Duration::from_secs(30);

pub fn run(name: &str) -> Verdict {
    let r = match name {
        "caps" => caps(),
        "sync" => sync(),
        "second" => second(),
        "twovcpu" => twovcpu(),
        "huge" => huge(),
        "syncpfn" => sync_pfn(),
        "ao" => ao(),
        "nonram" => nonram(),
        "iabt" => iabt(),
        "drill" => drill(),
        "retire" => retire_pages(),
        _ => return Verdict::Fail(format!("unknown scenario {name}")),
    };
    r.unwrap_or_else(|e| Verdict::Fail(e.to_string()))
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let rel = kernel_release();
    let mut it = rel
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse::<u32>().ok());
    let (a, b) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

fn caps() -> Result<Verdict, LabError> {
    let kvm = kvm_ioctls::Kvm::new().map_err(|e| LabError::Kvm("open /dev/kvm", e))?;
    let vm = kvm
        .create_vm()
        .map_err(|e| LabError::Kvm("KVM_CREATE_VM", e))?;
    let sea = vm.check_extension_raw(KVM_CAP_ARM_SEA_TO_USER.into());
    // The edge's own setup (what Cloud Hypervisor calls at VM creation).
    let enabled = kvm_sea::enable_sea_to_user(&vm);
    let injector = AbortInjector::probe(&vm);
    let expect = kernel_at_least(6, 19);
    println!(
        "    kernel {}: KVM_CAP_ARM_SEA_TO_USER(245) = {sea}; enable_sea_to_user -> {enabled:?}; {injector:?}",
        kernel_release(),
    );
    let mut c = Checks::new();
    if expect {
        c.check(sea == 1, "cap 245 reported (kernel >= 6.19)");
        c.check(matches!(enabled, Ok(true)), "enable_sea_to_user enables it");
    } else {
        c.check(sea == 0, "cap 245 absent (kernel < 6.19)");
        c.check(
            matches!(enabled, Ok(false)),
            "enable_sea_to_user says the host lacks it, no error",
        );
    }
    c.check(
        injector.ext_dabt,
        "AbortInjector::probe finds KVM_CAP_VCPU_EVENTS and KVM_CAP_ARM_INJECT_EXT_DABT",
    );
    println!(
        "    note: KVM_EXIT_ARM_SEA (exit 41) cannot be raised under TCG emulation (an emulated external"
    );
    println!(
        "    abort is taken at L2's EL1, never at EL2): scenario iabt writes one into kvm_run instead."
    );
    Ok(c.verdict(format!(
        "SEA_TO_USER {} on {}",
        if sea > 0 { "present+enabled" } else { "absent" },
        kernel_release()
    )))
}

fn poison(lab: &Lab, gpa: u64, what: &str) -> Result<(), LabError> {
    let hva = lab.hva(gpa)?;
    let own = poison_madvise(hva)?;
    lab.say(format!(
        "poisoned {what}: GPA {gpa:#x} = host VA {hva:#x} via MADV_HWPOISON from a helper thread ({})",
        match own {
            Some(SigbusRecord::ActionRequired { lsb, .. }) => format!("which got its own BUS_MCEERR_AR lsb {lsb} at once"),
            Some(r) => format!("which got {r:?}"),
            None => "no signal to the caller".into(),
        }
    ));
    Ok(())
}

fn describe_handled(lab: &Lab, h: &Handled, base: Duration) {
    let inj = h
        .injected
        .map_or_else(|| "nothing".to_string(), |i| i.to_string());
    let granule = h
        .granule
        .map_or_else(|| "unknown".to_string(), |g| g.to_string());
    lab.say(format!(
        "story: vCPU{}: KVM_RUN returned; SIGBUS si_addr {:#x} lsb {} -> GPA granule {granule}",
        h.vcpu, h.hva, h.lsb
    ));
    for e in &h.events {
        lab.say(format!("story:   engine {e}"));
    }
    lab.say(format!(
        "story:   record in GHESv2 source {} (block {:#x}) as written: {}",
        h.source,
        lab.block(h.source),
        h.record
    ));
    lab.say(format!(
        "story:   injected {inj}; KVM_RUN returned -> next KVM_RUN {:.1} us = {:.1} x a plain KVM_SET_VCPU_EVENTS ({:.1} us)",
        h.handling.as_secs_f64() * 1e6,
        h.handling.as_secs_f64() / base.as_secs_f64().max(1e-9),
        base.as_secs_f64() * 1e6
    ));
    println!(
        "MEASURE handling_us={:.1} set_vcpu_events_us={:.1} ratio={:.1}",
        h.handling.as_secs_f64() * 1e6,
        base.as_secs_f64() * 1e6,
        h.handling.as_secs_f64() / base.as_secs_f64().max(1e-9)
    );
}

fn check_run(c: &mut Checks, id: u64, rep: &VcpuReport) {
    if let Some(e) = &rep.error {
        println!("    vCPU{id} error: {e}");
    }
    c.check(
        rep.error.is_none() && rep.done,
        format!("vCPU{id}: guest ran to completion (continued after the abort)"),
    );
}

/// Runs vCPU 0 over `loads` (`defer`: the guest acks its records at the
/// end) and makes the checks every such scenario makes: the guest ran to
/// completion and `errors` memory errors were handled on the vCPU thread,
/// each told as a story.
fn run_vcpu0(
    lab: &Lab,
    loads: &[u64],
    defer: bool,
    errors: usize,
) -> Result<(VcpuReport, Checks), LabError> {
    let mut vcpu = lab.vcpu(0, loads, defer)?;
    let base = Lab::baseline_set_events(&vcpu)?;
    let rep = lab.run(&mut vcpu, 0, LIMIT);
    let mut c = Checks::new();
    check_run(&mut c, 0, &rep);
    c.check(
        rep.handled.len() == errors,
        format!(
            "{errors} memory error(s) handled on the vCPU thread (got {})",
            rep.handled.len()
        ),
    );
    for h in &rep.handled {
        describe_handled(lab, h, base);
    }
    Ok((rep, c))
}

/// One vCPU data load from a poisoned page; the common checks.
#[allow(clippy::too_many_arguments)]
fn check_dabt(
    c: &mut Checks,
    lab: &Lab,
    id: u64,
    n: u64,
    load: u64,
    page: u64,
    mask: u64,
    ack: bool,
) {
    let r = lab.abort_record(id, n);
    println!("    guest vCPU{id} abort #{n}: {r}");
    c.check(
        r.esr.ec() == 0x25 && r.esr.fsc() == 0x10 && r.esr_ok == 1,
        format!("vCPU{id}#{n}: ESR is a sync external data abort from EL1 (EC 0x25, FSC 0x10; the guest's vector agrees)"),
    );
    c.check(
        r.far == load,
        format!(
            "vCPU{id}#{n}: FAR_EL1 {:#x} == the loaded address {load:#x}",
            r.far
        ),
    );
    c.check(
        r.elr == lab.prog.load_insn,
        format!(
            "vCPU{id}#{n}: ELR_EL1 = the faulting load {:#x}",
            lab.prog.load_insn
        ),
    );
    c.check(r.matched == 1 && r.pa == page && r.mask == mask, format!("vCPU{id}#{n}: guest found a status block through the HEST with PA {page:#x} mask {mask:#x} covering FAR"));
    if ack {
        c.check(
            r.acked == 1,
            format!("vCPU{id}#{n}: guest cleared block_status and wrote the read-ack register"),
        );
    }
}

fn sync() -> Result<Verdict, LabError> {
    sync_with(false)
}

fn sync_pfn() -> Result<Verdict, LabError> {
    if !Path::new(CORRUPT_PFN).exists() {
        return Ok(Verdict::Skip(format!(
            "{CORRUPT_PFN} missing (hwpoison-inject not loaded or debugfs not mounted)"
        )));
    }
    sync_with(true)
}

/// Poison the host page behind `gpa` from outside: debugfs corrupt-pfn
/// with the PFN from /proc/self/pagemap (a background memory failure: no
/// signal now, the kernel unmaps the page everywhere).
fn poison_pfn(lab: &Lab, gpa: u64) -> Result<(), LabError> {
    let hva = lab.hva(gpa)?;
    let pfn = pfn_of(hva).map_err(|e| LabError::Io("pagemap", e))?;
    if pfn == 0 {
        return Err(LabError::Guest(format!("no PFN for host page {hva:#x}")));
    }
    fs::OpenOptions::new()
        .write(true)
        .open(CORRUPT_PFN)
        .and_then(|mut f| f.write_all(format!("{pfn:#x}\n").as_bytes()))
        .map_err(|e| LabError::Io("write corrupt-pfn", e))?;
    lab.say(format!(
        "poisoned GPA {gpa:#x} = host VA {hva:#x} = PFN {pfn:#x} via {CORRUPT_PFN}"
    ));
    Ok(())
}

fn sync_with(by_pfn: bool) -> Result<Verdict, LabError> {
    let lab = Lab::new(1, false)?;
    lab.say(format!(
        "KVM_CAP_ARM_SEA_TO_USER enabled: {}; {:?}",
        lab.sea_to_user, lab.injector
    ));
    lab.write_u64(DATA, 0x5afe);
    let load = DATA + 0x80;
    if by_pfn {
        poison_pfn(&lab, DATA)?;
    } else {
        poison(&lab, DATA, "one guest page")?;
    }
    let (rep, mut c) = run_vcpu0(&lab, &[load], false, 1)?;
    if let Some(h) = rep.handled.first() {
        let hva = lab.hva(DATA)?;
        c.check(
            h.hva == Hva(hva) && h.lsb == 12,
            "SIGBUS BUS_MCEERR_AR on the vCPU thread, si_addr = the host page, lsb 12",
        );
        c.check(
            h.injected.map(|i| i.method) == Some(InjectionMethod::VcpuEvents),
            "external data abort injected with KVM_SET_VCPU_EVENTS (FAR of the stage-2 fault)",
        );
        let d = ghes::decode(&lab.mem, lab.block(h.source));
        c.check(
            d.memory_section && d.pa == DATA && d.severity == 0 && d.validation & 6 == 6,
            "record: recoverable memory error section, PA = the guest page",
        );
        c.check(d.block_status == 0, "block_status cleared by the guest");
        check_dabt(&mut c, &lab, 0, 0, load, DATA, !0xfff, true);
        let ack_now = lab.ack_value(h.source);
        lab.say(format!(
            "story:   VMM reads the read-ack register of source {}: {:#x} after the record was written, {ack_now:#x} after the guest's ack",
            h.source, h.ack_at_write
        ));
        c.check(
            ack_now != h.ack_at_write && ack_now & 1 == 1,
            "VMM sees the guest's GHESv2 read-ack (register changed, write bit set)",
        );
        c.check(
            h.events
                .iter()
                .any(|e| e.starts_with("event: abort-injected vcpu=0")),
            "abort-injected event published for vCPU 0",
        );
    }
    c.check(
        rep.abort_reports.len() == 1,
        "guest reported exactly one handled abort",
    );
    Ok(c.verdict("abort delivered, record read through the HEST, acked, guest continued"))
}

fn second() -> Result<Verdict, LabError> {
    let lab = Lab::new(1, false)?;
    let (a, b) = (DATA, DATA + PAGE);
    lab.write_u64(a, 1);
    lab.write_u64(b, 2);
    poison(&lab, a, "page A")?;
    poison(&lab, b, "page B")?;
    // defer: the guest records the first abort but acks only at the end,
    // so the second error arrives while A's record is unacknowledged. The
    // engine queues B's record behind it and writes it once A is acked.
    let (rep, mut c) = run_vcpu0(&lab, &[a + 0x80, b + 0x80], true, 2)?;
    check_dabt(&mut c, &lab, 0, 0, a + 0x80, a, !0xfff, false);
    let r1 = lab.abort_record(0, 1);
    println!("    guest vCPU0 abort #1: {r1}");
    c.check(
        r1.esr.ec() == 0x25 && r1.far == b + 0x80,
        "second abort: data abort with FAR in page B",
    );
    let queued = rep
        .handled
        .get(1)
        .is_some_and(|h| h.events.iter().any(|e| e.to_lowercase().contains("queue")));
    let direct = r1.matched == 1;
    c.check(queued || direct, format!("second record queued behind the unacked one (queued {queued}) or delivered at once (matched {direct})"));
    let fin = lab.read_u64(Lab::cb(0) + guest::CB_FINAL + guest::R_ACKED);
    c.check(
        fin == 2,
        format!(
            "guest acknowledged two records in the end (acks {fin}, service requests {})",
            rep.services
        ),
    );
    let d = ghes::decode(&lab.mem, lab.block(lab.sync_source(0)));
    c.check(
        d.pa == b || direct,
        format!("the last record the guest acked is page B's ({:#x})", d.pa),
    );
    Ok(c.verdict("both errors reported and acknowledged, VM survived"))
}

fn twovcpu() -> Result<Verdict, LabError> {
    let lab = Lab::new(2, false)?;
    let (a, b) = (DATA, DATA + 2 * PAGE);
    lab.write_u64(a, 1);
    lab.write_u64(b, 2);
    poison(&lab, a, "page A (vCPU0)")?;
    poison(&lab, b, "page B (vCPU1)")?;
    let mut v0 = lab.vcpu(0, &[a + 0x80], false)?;
    let mut v1 = lab.vcpu(1, &[b + 0x80], false)?;
    let base = Lab::baseline_set_events(&v0)?;
    let t = Instant::now();
    let (r0, r1) = thread::scope(|s| {
        let h0 = s.spawn(|| lab.run(&mut v0, 0, LIMIT));
        let h1 = s.spawn(|| lab.run(&mut v1, 1, LIMIT));
        (h0.join().unwrap_or_default(), h1.join().unwrap_or_default())
    });
    lab.say(format!("both vCPUs finished after {:?}", t.elapsed()));
    let mut c = Checks::new();
    for (id, rep, page) in [(0, &r0, a), (1, &r1, b)] {
        check_run(&mut c, id, rep);
        c.check(
            rep.handled.len() == 1,
            format!("vCPU{id}: one error handled (got {})", rep.handled.len()),
        );
        for h in &rep.handled {
            describe_handled(&lab, h, base);
            c.check(
                h.granule.map(|g| g.base().raw_value()) == Some(page),
                format!("vCPU{id}: error at its own page {page:#x}"),
            );
        }
        check_dabt(&mut c, &lab, id, 0, page + 0x80, page, !0xfff, true);
    }
    Ok(c.verdict("both vCPUs got their own record and abort, VM survived"))
}

fn huge() -> Result<Verdict, LabError> {
    let lab = match with_hugetlb(|| Lab::new(1, true))? {
        Ok(l) => l,
        Err(skip) => return Ok(skip),
    };
    // The guest loads from another 4 KiB page of the huge page than the
    // one poisoned: what the host reports (si_addr) and what the record
    // names is then the accessed page, not the poisoned one.
    let load = guest::HUGE_BASE + 0x3_4340;
    lab.write_u64(load, 0x5afe);
    poison(
        &lab,
        guest::HUGE_BASE + 0x1_2000,
        "one 4 KiB piece of a 2 MiB hugetlb guest page",
    )?;
    let (rep, mut c) = run_vcpu0(&lab, &[load], false, 1)?;
    if let Some(h) = rep.handled.first() {
        c.check(h.lsb == 21, format!("SIGBUS lsb 21 (got {})", h.lsb));
        let accessed = lab.hva(load & !0xfff)?;
        c.check(
            h.hva.raw_value() & !0xfff == accessed,
            format!(
                "si_addr {:#x} is the accessed page (HVA {accessed:#x}), not the poisoned one",
                h.hva
            ),
        );
        c.check(
            h.granule.map(|g| (g.base().raw_value(), g.shift())) == Some((guest::HUGE_BASE, 21)),
            "granule = the whole huge page",
        );
        // Linux acts on a record's address only: the record names the
        // accessed 4 KiB page; the 2 MiB loss stays in the poison registry.
        let d = ghes::decode(&lab.mem, lab.block(h.source));
        c.check(
            d.pa == load & !0xfff && d.pa_mask | 0xfff0_0000_0000_0000 == !0xfff,
            format!(
                "record names the accessed page inside the 2 MiB loss (PA {:#x} mask {:#x})",
                d.pa, d.pa_mask
            ),
        );
    }
    let r = lab.abort_record(0, 0);
    println!("    guest vCPU0 abort #0: {r}");
    c.check(
        r.esr.ec() == 0x25 && r.far == load && r.elr == lab.prog.load_insn,
        "guest saw the data abort at the load, FAR inside the huge page",
    );
    c.check(
        r.matched == 1 && r.pa == load & !0xfff && r.acked == 1,
        "guest's status block names FAR's page and was acked",
    );
    // The other pages of the lost 2 MiB: not at once (the guest's
    // memory-failure queue is paced), but 300 ms after the loss the VMM's
    // service writes the first block of them into the asynchronous source:
    // 6 recoverable 4 KiB entries from the huge page's base (block status:
    // entry count in bits 4..13).
    let async_block = || ghes::decode(&lab.mem, lab.block(lab.async_source()));
    let loss_ms = rep.handled.first().map_or(0, |h| h.at_ms);
    let since_loss = || ReportTime::now().monotonic_ms.saturating_sub(loss_ms);
    let first_look = since_loss();
    let early = async_block().block_status != 0;
    // Not due 1 ms before the hold-off ends, however late this runs.
    let at_299 = lab.service_at(loss_ms + 299)?;
    let not_due = at_299.is_empty() && async_block().block_status == 0;
    let t = Instant::now();
    let mut written_at = None;
    while written_at.is_none() && t.elapsed() < Duration::from_secs(3) {
        for e in lab.service_now()? {
            lab.say(format!("VMM service timer: {e}"));
        }
        if async_block().block_status != 0 {
            written_at = Some(since_loss());
        }
        thread::sleep(Duration::from_millis(10));
    }
    c.check(
        !early && not_due,
        format!(
            "the rest not written by the error's handling nor by a service 299 ms after the loss (empty at {first_look} ms: {}; service at +299 ms: {at_299:?})",
            !early
        ),
    );
    // In real time, where the vCPU left enough of the hold-off to see it.
    c.check(
        first_look >= 300 || written_at.is_some_and(|w| w >= 300),
        format!("first written by the service timer at {written_at:?} ms after the loss (due at 300; first look at {first_look} ms)"),
    );
    let a = async_block();
    println!("    async source: {a}");
    c.check(
        a.memory_section
            && a.severity == 0
            && a.pa == guest::HUGE_BASE
            && a.pa_mask | 0xfff0_0000_0000_0000 == !0xfff
            && (a.block_status >> 4) & 0x3ff == 6,
        format!(
            "the rest of the 2 MiB told on the asynchronous source, 6 pages a block (status {:#x}, first PA {:#x})",
            a.block_status, a.pa
        ),
    );
    Ok(c.verdict(
        "2 MiB lost (lsb 21), the accessed page reported, the rest announced, guest continued",
    ))
}

fn ao() -> Result<Verdict, LabError> {
    if !Path::new(CORRUPT_PFN).exists() {
        return Ok(Verdict::Skip(format!(
            "{CORRUPT_PFN} missing (hwpoison-inject not loaded or debugfs not mounted)"
        )));
    }
    // Early kill on the main thread, before any vCPU thread exists.
    let _early_kill = EarlyKill::enable().map_err(edge)?;
    let lab = Lab::new(1, false)?;
    lab.write_u64(DATA, 0xdead);
    let mut vcpu = lab.vcpu(0, &[DATA + 0x100], false)?;
    let rep = thread::scope(|s| {
        s.spawn(|| lab.run(&mut vcpu, 0, LIMIT))
            .join()
            .unwrap_or_default()
    });
    let hva = lab.hva(DATA)?;
    let pfn = pfn_of(hva).map_err(|e| LabError::Io("pagemap", e))?;
    let mut c = Checks::new();
    check_run(&mut c, 0, &rep);
    c.check(
        pfn != 0,
        format!("PFN of host page {hva:#x} from /proc/self/pagemap: {pfn:#x}"),
    );
    let t = Instant::now();
    thread::spawn(move || -> io::Result<()> {
        fs::OpenOptions::new()
            .write(true)
            .open(CORRUPT_PFN)?
            .write_all(format!("{pfn:#x}\n").as_bytes())
    })
    .join()
    .map_err(|_| LabError::Guest("injector panicked".into()))?
    .map_err(|e| LabError::Io("write corrupt-pfn", e))?;
    lab.say(format!(
        "story: wrote {pfn:#x} to {CORRUPT_PFN} (host page of GPA {DATA:#x}) in {:?}",
        t.elapsed()
    ));
    let mut got = Vec::new();
    poll_until(Duration::from_secs(3), || {
        got = sigbus::drain_action_optional();
        !got.is_empty()
    });
    c.check(
        got.len() == 1,
        format!("one action-optional SIGBUS captured (got {got:?})"),
    );
    if let Some(r) = got.first() {
        lab.say(format!("story: captured {r:?} after {:?}", t.elapsed()));
        c.check(
            matches!(r, SigbusRecord::ActionOptional { hva: h, .. } if h.align_down(12) == Hva(hva)),
            "BUS_MCEERR_AO for the host page",
        );
        let report = r.report(ReportTime::now()).map_err(edge)?;
        let events = lab.handle_report(&report)?;
        for e in &events {
            lab.say(format!("story:   engine {e}"));
        }
        let d = ghes::decode(&lab.mem, lab.block(lab.async_source()));
        lab.say(format!("story:   async source {}: {d}", lab.async_source()));
        c.check(
            d.memory_section && d.pa == DATA && d.block_status & 1 == 1,
            "asynchronous source holds the record for the page",
        );
        c.check(
            lab.notified.load(Ordering::SeqCst) == 1,
            "notify hook fired once",
        );
    }
    Ok(c.verdict("AO reached the early-kill main thread, async record written, notify hook fired"))
}

/// Scenario 7, parent side: run the child and check how it stopped.
fn nonram() -> Result<Verdict, LabError> {
    let exe = env::current_exe().map_err(|e| LabError::Io("current_exe", e))?;
    let out = Command::new(exe)
        .arg("child-nonram")
        .output()
        .map_err(|e| LabError::Io("spawn child", e))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    for l in String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(stderr.lines())
    {
        println!("    child: {l}");
    }
    let mut c = Checks::new();
    c.check(
        out.status.signal() == Some(libc::SIGBUS),
        format!(
            "child VMM stopped by SIGBUS, not left running ({:?})",
            out.status
        ),
    );
    c.check(
        stderr.contains("outside guest RAM"),
        "its message says the failure is outside guest RAM",
    );
    Ok(c.verdict("VMM stopped with a clear message"))
}

/// Scenario 7, child side: a vCPU thread takes a memory-failure SIGBUS for
/// VMM memory that is not guest RAM.
pub fn child_nonram() -> i32 {
    let setup = Lab::new(1, false).and_then(|lab| lab.vcpu(0, &[], false).map(|v| (lab, v)));
    let (lab, mut vcpu) = match setup {
        Ok(x) => x,
        Err(e) => {
            eprintln!("setup: {e}");
            return 1;
        }
    };
    thread::scope(|s| {
        s.spawn(|| {
            let rep = lab.run(&mut vcpu, 0, LIMIT);
            println!(
                "vCPU0 ran the guest (done {}); now a VMM-private page goes bad",
                rep.done
            );
            let _guard = VcpuSigbusGuard::register(0);
            // SAFETY: a fresh anonymous private page owned by this thread.
            let p = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    PAGE as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            // SAFETY: p is a writable page (touch it so it is present), then
            // poison it and read it: the SIGBUS handler must stop us.
            unsafe {
                p.cast::<u64>().write_volatile(7);
                libc::madvise(p, PAGE as usize, libc::MADV_HWPOISON);
                let _ = p.cast::<u64>().read_volatile();
            }
            println!("still running after touching a poisoned VMM page");
        });
    });
    0
}

/// Scenario 8: a vCPU fetches from a poisoned page. A Linux 6.19 host
/// whose firmware does not claim the error exits with `KVM_EXIT_ARM_SEA`
/// (EC 0x21, instruction abort, FAR and GPA valid); emulation raises the
/// SIGBUS instead, so the scenario takes the SIGBUS and writes that exit
/// into the real `kvm_run` of the vCPU, and the lab VMM's exit handler
/// (the edge's `read_exit`, `SeaAbort::for_exit`, `AbortInjector`) does
/// the rest on real KVM.
fn iabt() -> Result<Verdict, LabError> {
    let lab = Lab::new(1, false)?;
    let code = DATA + 3 * PAGE;
    // The function the guest calls: a single RET.
    lab.mem
        .write_obj(asm::RET, GuestAddress(code))
        .map_err(|e| LabError::Memory(e.to_string()))?;
    poison(&lab, code, "a guest code page")?;
    let mut vcpu = lab.vcpu(0, &[code | 1], false)?;
    let base = Lab::baseline_set_events(&vcpu)?;
    let taken = Mutex::new(None);
    let hook = |vcpu: &mut kvm_ioctls::VcpuFd, guard: &VcpuSigbusGuard| {
        if let Some(rec) = guard.take_pending() {
            // IABT_CUR (EL1 fetch), IL, FSC 0x10; FAR = GPA (MMU off).
            let exit = SeaExit::new(1, 0x8600_0010, code, code).expect("valid exit");
            vmm::write_sea_exit(vcpu, &exit, 1);
            *taken.lock().unwrap() = Some(rec);
        }
    };
    let rep = lab.run_with(&mut vcpu, 0, LIMIT, &hook);
    let mut c = Checks::new();
    check_run(&mut c, 0, &rep);
    c.check(
        taken.lock().unwrap().is_some(),
        "the fetch raised a SIGBUS, turned into the exit 41 a 6.19 host raises",
    );
    c.check(
        rep.handled.len() == 1,
        format!("one error handled (got {})", rep.handled.len()),
    );
    let mut want_spsr = u64::MAX;
    if let Some(h) = rep.handled.first() {
        describe_handled(&lab, h, base);
        if let Some(w) = h.injected.and_then(|i| i.writes) {
            want_spsr = w.spsr_el1;
        }
        c.check(
            matches!(
                h.injected.map(|i| i.method),
                Some(InjectionMethod::Registers { far: Some(f), .. }) if f == code
            ),
            "instruction abort entered at register level with the exit's FAR",
        );
        c.check(
            h.events
                .iter()
                .any(|e| e.starts_with("event: sea-exit vcpu=0")),
            "sea-exit event published",
        );
    }
    let r = lab.abort_record(0, 0);
    println!("    guest abort: {r}");
    c.check(
        r.esr.ec() == 0x21 && r.esr.fsc() == 0x10 && !r.esr.fnv() && r.esr_ok == 1,
        "guest saw EC 0x21 (instruction abort, current EL), FSC 0x10, FnV 0 (its vector agrees)",
    );
    c.check(
        r.far == code,
        format!("FAR_EL1 = the poisoned target {code:#x}"),
    );
    c.check(
        r.elr == code,
        format!("ELR_EL1 = the poisoned target {code:#x}"),
    );
    c.check(
        r.spsr == want_spsr && r.spsr & 0x3ff == 0x3c5,
        format!(
            "SPSR_EL1 {:#x} = the PSTATE at the fault (EL1h, DAIF set)",
            r.spsr
        ),
    );
    c.check(
        r.matched == 1 && r.pa == code && r.acked == 1,
        "guest found and acked the record for the code page",
    );
    Ok(c.verdict(
        "exit 41 decoded, instruction abort with the right EC/FAR/ELR/SPSR, guest continued",
    ))
}

/// Scenario 9: an operator's synchronous drill. The bare-metal guest runs
/// only at EL1, so a drill that may reach it only in user mode (the
/// default) is refused at its deadline with nothing written; with
/// `vcpu_mode=any` it is delivered: a record and a data abort with FnV
/// set (the vCPU's last exit was unrelated).
fn drill() -> Result<Verdict, LabError> {
    let lab = Lab::new(1, false)?;
    lab.write_u64(DATA, 7);
    // The guest loads DATA a few times, so the vCPU keeps running.
    let work: Vec<u64> = (0..12).map(|i| DATA + 8 * i).collect();
    let source = lab.sync_source(0);
    let block = lab.block(source);
    let mut c = Checks::new();
    let gpa = DATA + 0x20_0000 - 0x1000;
    let mut outcomes = Vec::new();
    for (round, mode) in [VcpuMode::User, VcpuMode::Any].into_iter().enumerate() {
        // A fresh vCPU each round (its own control block for the records).
        let mut vcpu = lab.vcpu(round as u64, &work, false)?;
        let request = InjectRequest {
            source: InjectSource::Sync,
            vcpu: Some(0),
            vcpu_mode: Some(mode),
            gpa: Some(gpa),
            ..InjectRequest::default()
        };
        let time = ReportTime::now();
        let report = request
            .to_report(time.unix_time, time.monotonic_ms)
            .map_err(vmm::edge)?;
        lab.engine
            .lock()
            .unwrap()
            .check_injection(&report)
            .map_err(vmm::edge)?;
        let (tx, rx) = mpsc::channel();
        let deadline = time.monotonic_ms + 300;
        lab.drills
            .push(Pending {
                vcpu: 0,
                report,
                mode,
                deadline_ms: deadline,
                respond: tx,
            })
            .map_err(|_| LabError::Guest("a drill already waits".into()))?;
        let before = lab.read_u64(block);
        // The vCPU loop takes a waiting drill when it is interrupted; the
        // VMM thread kicks it and answers the drills whose deadline passed.
        let stop = AtomicBool::new(false);
        let tid = AtomicI32::new(0);
        let answer = thread::scope(|s| {
            let runner = s.spawn(|| lab.run_spinning(&mut vcpu, 0, &stop, &tid));
            let answer = loop {
                if let Ok(a) = rx.try_recv() {
                    break Some(a);
                }
                let now = ReportTime::now().monotonic_ms;
                for p in lab.drills.expire(now) {
                    let _ = p.respond.send(Err(format!(
                        "vCPU {} was not in user mode within the deadline; nothing was written",
                        p.vcpu
                    )));
                }
                if now > deadline + 5000 || runner.is_finished() {
                    break None;
                }
                vmm::kick(tid.load(Ordering::SeqCst));
                thread::sleep(Duration::from_millis(5));
            };
            // A delivered drill is answered before the vCPU runs its
            // handler: let it run until the guest has recorded the abort.
            if matches!(answer, Some(Ok(_))) {
                poll_until(Duration::from_secs(5), || {
                    lab.abort_record(round as u64, 0).esr.0 != 0 || runner.is_finished()
                });
            }
            stop.store(true, Ordering::SeqCst);
            while !runner.is_finished() {
                vmm::kick(tid.load(Ordering::SeqCst));
                thread::sleep(Duration::from_millis(5));
            }
            (answer, runner.join().unwrap_or_default())
        });
        lab.say(format!("drill vcpu_mode={mode}: {:?}", answer.0));
        outcomes.push((mode, answer, before, lab.read_u64(block)));
    }
    for (mode, (answer, rep), before, after) in outcomes {
        match mode {
            VcpuMode::User => {
                c.check(
                    matches!(&answer, Some(Err(e)) if e.contains("not in user mode")),
                    "vcpu_mode=user: refused at the deadline (the guest never ran user code)",
                );
                c.check(
                    before == after && after == 0,
                    "vcpu_mode=user: nothing written into the vCPU's status block",
                );
                check_run(&mut c, 0, &rep);
            }
            VcpuMode::Any => {
                c.check(
                    matches!(&answer, Some(Ok(a)) if a.contains("far=not-valid")),
                    format!("vcpu_mode=any: delivered, data abort with FnV (answer {answer:?})"),
                );
                let r = lab.abort_record(1, 0);
                println!("    guest abort: {r}");
                c.check(
                    r.esr.ec() == 0x25 && r.esr.fnv() && r.esr.fsc() == 0x10,
                    "guest saw a data abort from EL1 with FnV set (no stale FAR)",
                );
                c.check(
                    lab.counters.get(EventKind::InjectRequested) == 1
                        && lab.counters.get(EventKind::AbortInjected) == 1,
                    "one inject-requested and one abort-injected event counted",
                );
                let _ = rep;
            }
        }
    }
    Ok(c.verdict("drills refused at EL1 by default, delivered with vcpu_mode=any"))
}

/// Whether the kernel marks `pfn` hardware-poisoned (/proc/kpageflags bit
/// 19, KPF_HWPOISON).
fn hwpoisoned(pfn: u64) -> io::Result<bool> {
    let mut f = fs::File::open("/proc/kpageflags")?;
    f.seek(SeekFrom::Start(pfn * 8))?;
    let mut b = [0u8; 8];
    f.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b) >> 19 & 1 == 1)
}

/// Scenario 10: the host page behind an error the host did not claim
/// (`KVM_EXIT_ARM_SEA`). Cloud Hypervisor retires it with the edge's
/// `retire` on the vCPU thread: the kernel isolates the physical page and
/// signals that thread, which takes its own signal; where it may not, the
/// edge's `quarantine` moves the page out of guest memory into a mapping
/// the VMM keeps, content and physical page unchanged.
fn retire_pages() -> Result<Verdict, LabError> {
    let lab = Lab::new(1, false)?;
    let mut c = Checks::new();

    let gpa = DATA + 5 * PAGE;
    lab.write_u64(gpa, 0xfeed_f00d);
    let hva = lab.hva(gpa)?;
    let pfn = pfn_of(hva).map_err(|e| LabError::Io("pagemap", e))?;
    c.check(
        pfn != 0,
        format!("guest page {gpa:#x} is host PFN {pfn:#x}"),
    );
    c.check(
        !hwpoisoned(pfn).map_err(|e| LabError::Io("kpageflags", e))?,
        "not poisoned before",
    );
    // On a thread registered like a vCPU thread, as in Cloud Hypervisor.
    let own = thread::spawn(move || -> Result<Option<SigbusRecord>, LabError> {
        let guard = VcpuSigbusGuard::register(HELPER_ID).map_err(edge)?;
        retire(Hva(hva), PAGE).map_err(|e| LabError::Io("retire", e))?;
        Ok(guard.take_pending())
    })
    .join()
    .map_err(|_| LabError::Guest("retire thread panicked".into()))??;
    c.check(
        hwpoisoned(pfn).map_err(|e| LabError::Io("kpageflags", e))?,
        format!("retired: the kernel marks PFN {pfn:#x} hardware-poisoned"),
    );
    // Since Linux 6.x `MADV_HWPOISON` signals the caller (BUS_MCEERR_AR);
    // older kernels (6.1) do not. Either way the thread lives on: a signal
    // it did not take would have killed the process.
    c.check(
        match own {
            None => true,
            Some(SigbusRecord::ActionRequired { hva: h, .. }) => {
                h.raw_value() & !(PAGE - 1) == hva & !(PAGE - 1)
            }
            Some(_) => false,
        },
        format!(
            "the retiring thread lived; a signal it got is its own BUS_MCEERR_AR for the page (taken: {own:?})"
        ),
    );

    let gpa = DATA + 6 * PAGE;
    lab.write_u64(gpa, 0x5eed_cafe);
    let hva = lab.hva(gpa)?;
    let pfn = pfn_of(hva).map_err(|e| LabError::Io("pagemap", e))?;
    let moved = quarantine(Hva(hva), PAGE).map_err(|e| LabError::Io("quarantine", e))?;
    let moved_pfn = pfn_of(moved.raw_value()).map_err(|e| LabError::Io("pagemap", e))?;
    c.check(
        moved_pfn == pfn && pfn != 0,
        format!(
            "quarantined: PFN {pfn:#x} now mapped at {moved:#x} (PFN {moved_pfn:#x}), not freed"
        ),
    );
    // SAFETY: reading the quarantined page, which the edge keeps mapped.
    let kept = unsafe { ptr::read_volatile(moved.raw_value() as *const u64) };
    c.check(kept == 0x5eed_cafe, format!("content kept ({kept:#x})"));
    c.check(
        pfn_of(hva).map_err(|e| LabError::Io("pagemap", e))? == 0,
        "gone from guest memory",
    );
    Ok(c.verdict("unclaimed page retired on the host; unretirable page kept out of service"))
}
