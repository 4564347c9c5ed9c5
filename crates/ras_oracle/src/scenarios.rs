// SPDX-License-Identifier: Apache-2.0
//! The scenarios: each boots nothing of its own; one guest runs them in
//! order (the region-scribbling scenario last), printing the guest lines
//! that decided each result.

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{self, Command};
use std::time::{Duration, Instant};
use std::{env, fmt, fs, slice, thread};

use ras::cper::arm::{info_flags, info_validation, validation as arm_validation};
use ras::cper::{
    ArmErrorInfo, ArmErrorTypes, ArmProcessorSection, DataEntry, EntryFlags, Guid,
    MemoryErrorSection, RawSection, Section, Severity, StatusBlock, Timestamp,
};
use ras::error_source::{Delivery, SourceId};
use ras::granule::GpaGranule;
use vm_memory::{Address, GuestAddress};

use crate::glue::{
    Engine, GlueError, POLL_MS, Record, WINDOW_BASE, WINDOW_LEN, unix_now, utc_string,
};
use crate::guest::{Guest, GuestConfig, create_ram_file};
use crate::{Options, OracleError};

/// Result of one scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Passed.
    Pass,
    /// Failed.
    Fail,
    /// Could not run (not counted as passed).
    Skip,
}

impl Outcome {
    /// Label for the summary.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "SKIP",
        }
    }
}

/// One scenario's result.
#[derive(Clone, Debug)]
pub struct ScenarioResult {
    /// Number in the issue.
    pub number: u32,
    /// Name.
    pub name: &'static str,
    /// Outcome.
    pub outcome: Outcome,
}

/// Collects the checks and evidence of one scenario.
struct Check {
    number: u32,
    name: &'static str,
    failures: Vec<String>,
    skip: Option<String>,
}

impl Check {
    fn new(number: u32, name: &'static str) -> Self {
        println!();
        println!("== scenario {number}: {name} ==");
        Self {
            number,
            name,
            failures: Vec::new(),
            skip: None,
        }
    }

    fn ok(&mut self, cond: bool, what: impl AsRef<str>) -> bool {
        if cond {
            println!("  ok: {}", what.as_ref());
        } else {
            println!("  NOT OK: {}", what.as_ref());
            self.failures.push(what.as_ref().to_string());
        }
        cond
    }

    fn fail(&mut self, what: impl AsRef<str>) {
        self.ok(false, what);
    }

    fn note(&self, what: impl AsRef<str>) {
        println!("  note: {}", what.as_ref());
    }

    fn evidence(&self, lines: &[String]) {
        for l in lines {
            println!("  guest| {l}");
        }
    }

    /// Prints the guest's lines as evidence and checks that none of them
    /// is a complaint about the firmware's tables or records.
    fn evidence_without_complaint(&mut self, lines: &[String]) {
        self.evidence(lines);
        self.ok(
            firmware_complaints(lines).is_empty(),
            "no firmware complaint",
        );
    }

    fn finish(self) -> ScenarioResult {
        let outcome = if let Some(why) = &self.skip {
            println!("SKIP: {why}");
            Outcome::Skip
        } else if self.failures.is_empty() {
            println!("PASS: scenario {}", self.number);
            Outcome::Pass
        } else {
            println!(
                "FAIL: scenario {} ({} checks failed)",
                self.number,
                self.failures.len()
            );
            Outcome::Fail
        };
        ScenarioResult {
            number: self.number,
            name: self.name,
            outcome,
        }
    }
}

/// A page held by the guest workload.
#[derive(Clone, Copy, Debug)]
struct Page {
    pa: u64,
}

fn hex_field(line: &str, key: &str) -> Option<u64> {
    let i = line.find(key)? + key.len();
    let rest = &line[i..];
    let rest = rest.strip_prefix("0x").unwrap_or(rest);
    let end = rest
        .find(|c: char| !c.is_ascii_hexdigit())
        .unwrap_or(rest.len());
    u64::from_str_radix(&rest[..end], 16).ok()
}

fn dec_field(line: &str, key: &str) -> Option<u64> {
    let i = line.find(key)? + key.len();
    let rest = line[i..].trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Kernel lines that reveal a producer bug.
fn firmware_complaints(lines: &[String]) -> Vec<String> {
    /// What Linux prints when it finds fault with the firmware's HEST or
    /// records (drivers/acpi/apei/ghes.c, hest.c).
    const COMPLAINTS: [&str; 6] = [
        "[Firmware Warn]",
        "[Firmware Bug]",
        "Invalid error status block",
        "Failed to read error status block",
        "Invalid CPER header",
        "error section length is too small",
    ];
    lines
        .iter()
        .filter(|l| COMPLAINTS.iter().any(|c| l.contains(c)))
        .cloned()
        .collect()
}

fn is_ghes_line(l: &str) -> bool {
    const MARKS: [&str; 6] = [
        "[Hardware Error]",
        "Memory failure",
        "GHES",
        "Firmware",
        "soft offline",
        "ORACLE SIGBUS",
    ];
    MARKS.iter().any(|m| l.contains(m))
}

struct Ctx {
    guest: Guest,
    hest_path: PathBuf,
    eng: Engine,
    /// When the last uncorrected / corrected records were consumed (GHES
    /// prints at most 2 per 5 s per class).
    recent: Vec<Instant>,
    workloads: Vec<u32>,
}

/// What [`Ctx::deliver`] saw.
struct Delivered {
    /// The guest log's mark before the submission.
    from: usize,
    /// The engine's answer to the submission.
    delivery: Delivery,
    /// The source went idle (acknowledged, queue empty) in time.
    idle: bool,
    /// Acknowledgements the guest gave meanwhile.
    acked: u64,
    /// From the submission to the source's going idle.
    took: Duration,
}

impl Ctx {
    /// Waits so that the next record's lines are not rate-limited.
    fn space(&mut self) {
        self.recent
            .retain(|t| t.elapsed() < Duration::from_millis(5200));
        while self.recent.len() >= 2 {
            let oldest = self.recent[0];
            let wait = Duration::from_millis(5200).saturating_sub(oldest.elapsed());
            thread::sleep(wait);
            self.recent
                .retain(|t| t.elapsed() < Duration::from_millis(5200));
        }
    }

    fn notify(&mut self, s: SourceId) -> Result<(), OracleError> {
        if self.eng.is_nmi(s) {
            self.guest.inject_nmi()?;
        }
        Ok(())
    }

    /// Submits and notifies if written.
    fn submit(&mut self, s: SourceId, rec: &Record) -> Result<Delivery, OracleError> {
        let d = self.eng.submit(s, rec)?;
        println!(
            "  engine: submit {} to source {} -> {:?}",
            rec.describe(),
            s.0,
            d
        );
        if d.must_notify() {
            self.notify(s)?;
        }
        Ok(d)
    }

    /// One record through one source, as firmware sends it: waits out
    /// the guest's rate limit, submits (notifying the guest), then services
    /// the engine until the source is idle again (10 s at most). The
    /// inner error is the submission's (the engine or the notification
    /// refused the record: nothing was delivered); the outer one, a failure
    /// of the engine's bookkeeping or of servicing it.
    fn deliver(
        &mut self,
        src: SourceId,
        rec: &Record,
    ) -> Result<Result<Delivered, OracleError>, OracleError> {
        self.space();
        let acked0 = self.eng.tally(src)?.acked;
        let from = self.guest.mark();
        let t0 = Instant::now();
        let delivery = match self.submit(src, rec) {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        let idle = self.pump(&[src], Duration::from_secs(10))?;
        let took = t0.elapsed();
        self.recent.push(Instant::now());
        Ok(Ok(Delivered {
            from,
            delivery,
            idle,
            acked: self.eng.tally(src)?.acked - acked0,
            took,
        }))
    }

    /// Services the engine until every source in `srcs` is idle (acked, queue
    /// empty) or `timeout`; notifies the guest for each record written.
    fn pump(&mut self, srcs: &[SourceId], timeout: Duration) -> Result<bool, OracleError> {
        let deadline = Instant::now() + timeout;
        loop {
            for s in self.eng.service()? {
                println!("  engine: service wrote a queued record to source {}", s.0);
                self.notify(s)?;
            }
            let mut all = true;
            for s in srcs {
                all &= self.eng.idle(*s)?;
            }
            if all {
                // `idle` counted the acks; one more service pass checks the
                // ESA registers.
                self.eng.service()?;
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts `workload hold n` and returns its pid and pages.
    fn hold(&mut self, n: usize) -> Result<(u32, Vec<Page>), OracleError> {
        let from = self.guest.mark();
        self.guest
            .run(&format!("workload hold {n} &"), Duration::from_secs(20))?;
        let (_, hold) = self
            .guest
            .wait_for(from, Duration::from_secs(20), "ORACLE HOLD", |l| {
                l.contains("ORACLE HOLD")
            })?;
        let pid = dec_field(&hold, "pid=").unwrap_or(0) as u32;
        let pages: Vec<Page> = self
            .guest
            .lines_since(from)
            .iter()
            .filter(|l| l.contains("ORACLE PAGE") && l.contains(&format!("pid={pid} ")))
            .filter_map(|l| hex_field(l, "pa=").map(|pa| Page { pa }))
            .collect();
        self.workloads.push(pid);
        Ok((pid, pages))
    }

    fn hardware_corrupted_kb(&mut self) -> Result<u64, OracleError> {
        let out = self.guest.run(
            "grep HardwareCorrupted /proc/meminfo",
            Duration::from_secs(10),
        )?;
        Ok(out
            .iter()
            .find_map(|l| dec_field(l, "HardwareCorrupted:"))
            .unwrap_or(u64::MAX))
    }

    /// Checks that the guest's `HardwareCorrupted` grew by one 4 KiB page
    /// since it read `hc0` kB.
    fn one_more_corrupted_page(
        &mut self,
        c: &mut Check,
        hc0: u64,
        what: &str,
    ) -> Result<(), OracleError> {
        let hc1 = self.hardware_corrupted_kb()?;
        c.ok(
            hc1 == hc0 + 4,
            format!("HardwareCorrupted {hc0} kB -> {hc1} kB{what}"),
        );
        Ok(())
    }

    /// One check per wanted line: printed by the guest since `from`
    /// (waits up to 5 s).
    fn expect_seen(&self, c: &mut Check, from: usize, want: &[String]) {
        let missing = self.expect_lines(from, Duration::from_secs(5), want);
        for w in want {
            c.ok(!missing.contains(w), format!("guest: `{w}`"));
        }
    }

    /// Sends `signal` (USR1, USR2) to the workload `pid` and waits up to
    /// `timeout` for its answer, the first line `pred` accepts. Returns the
    /// guest log's mark before the signal and the answer.
    fn ask_workload(
        &mut self,
        signal: &str,
        pid: impl fmt::Display,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Result<(usize, Option<String>), OracleError> {
        let m = self.guest.mark();
        self.guest
            .run(&format!("kill -{signal} {pid}"), Duration::from_secs(5))?;
        let answer = self.guest.wait_for(m, timeout, what, pred).ok();
        Ok((m, answer.map(|(_, l)| l)))
    }

    /// Waits until for each pattern some line from `from` contains it.
    fn expect_lines(&self, from: usize, timeout: Duration, patterns: &[String]) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut missing: Vec<String> = patterns.to_vec();
        while !missing.is_empty() {
            let lines = self.guest.lines_since(from);
            missing.retain(|p| !lines.iter().any(|l| l.contains(p.as_str())));
            if missing.is_empty() || Instant::now() >= deadline {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        missing
    }

    fn ghes_lines_since(&self, from: usize) -> Vec<String> {
        self.guest
            .lines_since(from)
            .into_iter()
            .filter(|l| is_ghes_line(l))
            .collect()
    }
}

fn mf_prefix(pa: u64) -> String {
    format!("Memory failure: {:#x}:", pa >> 12)
}

/// The line Linux's GHES driver starts a record's report with.
fn ghes_header(src: SourceId) -> String {
    format!(
        "Hardware error from APEI Generic Hardware Error Source: {}",
        src.0
    )
}

fn pa_line(pa: u64) -> String {
    format!("physical_address: 0x{pa:016x}")
}

/// Runs every scenario on one guest.
pub fn run_all(opts: &Options) -> Result<Vec<ScenarioResult>, OracleError> {
    fs::create_dir_all(&opts.work).map_err(|source| OracleError::Io {
        what: format!("creating {}", opts.work.display()),
        source,
    })?;
    let ram = opts.work.join("guest-ram");
    let hest_path = opts.work.join("hest.aml");
    let ram_file = create_ram_file(&ram)?;
    let mut eng = Engine::new(ram_file)?;
    let hest = eng.hest()?;
    fs::write(&hest_path, &hest).map_err(|source| OracleError::Io {
        what: format!("writing {}", hest_path.display()),
        source,
    })?;
    eng.init()?;
    let layout = eng.layout();
    println!(
        "oracle: HEST {} bytes, {} sources at {:#x} (+{:#x}), NMI sources {:?}, POLLED source {}",
        hest.len(),
        layout.num_sources(),
        layout.base().raw_value(),
        layout.total_len(),
        (0..layout.num_sync()).collect::<Vec<_>>(),
        eng.polled().0
    );
    let cfg = GuestConfig {
        qemu: opts.qemu.clone(),
        kernel: opts.kernel.clone(),
        initrd: opts.initrd.clone(),
        hest: hest_path,
        ram,
        qmp: opts.work.join("qmp.sock"),
        log: opts.work.join("console.log"),
        cmdline: format!(
            "memmap={}K${WINDOW_BASE:#x} iomem=relaxed",
            WINDOW_LEN >> 10
        ),
    };
    let guest = Guest::start(&cfg)?;
    println!("oracle: guest console log: {}", cfg.log.display());
    let (_, ready) = guest.wait_for(0, Duration::from_secs(120), "ORACLE-READY", |l| {
        l.contains("ORACLE-READY")
    })?;
    println!(
        "oracle: guest ready after {:.1} s: {ready}",
        guest.elapsed()
    );
    let mut ctx = Ctx {
        guest,
        hest_path: cfg.hest.clone(),
        eng,
        recent: Vec::new(),
        workloads: Vec::new(),
    };
    // The first line the guest reads may lose characters: send a no-op.
    ctx.guest.send("true")?;
    ctx.guest.run("true", Duration::from_secs(10))?;

    let want = |n: u32| opts.only.is_empty() || opts.only.contains(&n);
    let mut results = Vec::new();
    type Scenario = fn(&mut Ctx) -> Result<ScenarioResult, OracleError>;
    let order: [(u32, &'static str, Scenario); 8] = [
        (1, "boot: HEST parsed, every GHES source bound", s1_boot),
        (
            2,
            "recoverable memory error on a process page",
            s2_recoverable,
        ),
        (
            4,
            "second error while the first is unacknowledged",
            s4_queue,
        ),
        (5, "burst across the sources", s5_burst),
        (
            6,
            "corrected error with threshold exceeded",
            s6_soft_offline,
        ),
        (3, "huge-page-sized loss (PA mask)", s3_huge),
        (
            8,
            "every record shape: no unexpected firmware warning",
            s8_shapes,
        ),
        (7, "guest scribbles over its error region", s7_scribble),
    ];
    for (n, name, f) in order {
        if !want(n) {
            continue;
        }
        match f(&mut ctx) {
            Ok(r) => results.push(r),
            Err(e) => {
                println!("  NOT OK: scenario {n} aborted: {e}");
                println!("FAIL: scenario {n}");
                results.push(ScenarioResult {
                    number: n,
                    name,
                    outcome: Outcome::Fail,
                });
            }
        }
    }
    let all = ctx.guest.lines_since(0);
    let complaints = firmware_complaints(&all);
    println!();
    println!(
        "oracle: firmware complaints over the whole run: {}",
        complaints.len()
    );
    for l in &complaints {
        println!("  guest| {l}");
    }
    ctx.guest.stop(Duration::from_secs(10));
    results.sort_by_key(|r| r.number);
    Ok(results)
}

fn s1_boot(ctx: &mut Ctx) -> Result<ScenarioResult, OracleError> {
    let mut c = Check::new(1, "boot: HEST parsed, every GHES source bound");
    let boot = ctx.guest.lines_since(0);
    let hest: Vec<String> = boot
        .iter()
        .filter(|l| l.contains("HEST") || l.contains("GHES") || l.contains("APEI"))
        .cloned()
        .collect();
    c.evidence(&hest);
    c.ok(
        boot.iter().any(|l| l.contains("ACPI: HEST 0x")),
        "ACPI lists the HEST table",
    );
    c.ok(
        boot.iter()
            .any(|l| l.contains("HEST: Table parsing has been initialized")),
        "HEST: Table parsing has been initialized",
    );
    let out = ctx.guest.run(
        "ls /sys/bus/platform/drivers/GHES/; for d in /sys/bus/platform/devices/GHES.*; do echo BOUND $d $(readlink $d/driver); done",
        Duration::from_secs(10),
    )?;
    c.evidence(&out);
    for s in ctx.eng.all_sources() {
        let dev = format!("GHES.{}", s.0);
        c.ok(
            out.iter().any(|l| {
                l.contains(&format!("BOUND /sys/bus/platform/devices/{dev} "))
                    && l.contains("drivers/GHES")
            }),
            format!("{dev} (source {}) bound to the GHES driver", s.0),
        );
    }
    let complaints = firmware_complaints(&boot);
    c.evidence(&complaints);
    c.ok(
        complaints.is_empty(),
        "no [Firmware Warn]/[Firmware Bug] at boot",
    );
    iasl_check(&mut c, &ctx.hest_path);
    c.note("expected and harmless: 'GHES: Failed to enable APEI firmware first mode' (QEMU's DSDT has no WHEA _OSC)");
    Ok(c.finish())
}

/// Host-side check of the HEST bytes with iasl (QEMU rewrites the checksum
/// of `-acpitable` tables, so the guest cannot check it).
fn iasl_check(c: &mut Check, hest: &Path) {
    let dir = env::temp_dir().join(format!("ras-oracle-iasl-{}", process::id()));
    if fs::create_dir_all(&dir).is_err() {
        c.note("iasl check: no temporary directory");
        return;
    }
    let aml = dir.join("hest.aml");
    let out = fs::copy(hest, &aml)
        .ok()
        .and_then(|_| Command::new("iasl").arg("-d").arg(&aml).output().ok());
    let Some(out) = out else {
        c.note("iasl not installed: host-side HEST checksum check not run");
        let _ = fs::remove_dir_all(&dir);
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let dsl = fs::read_to_string(dir.join("hest.dsl")).unwrap_or_default();
    let entries = dsl.matches("Subtable Type : 000A").count();
    c.ok(
        out.status.success()
            && !stderr.contains("Incorrect checksum")
            && !dsl.contains("****")
            && !dsl.contains("Unknown"),
        format!(
            "iasl -d: {}, no checksum warning, no unknown/truncated subtable",
            out.status
        ),
    );
    println!("  note: iasl decoded {entries} GHESv2 (type 0x0A) subtables");
    let _ = fs::remove_dir_all(&dir);
}

fn s2_recoverable(ctx: &mut Ctx) -> Result<ScenarioResult, OracleError> {
    let mut c = Check::new(2, "recoverable memory error on a process page");
    let (pid, pages) = ctx.hold(4)?;
    let Some(page) = pages.get(1).copied() else {
        c.fail("workload printed no page");
        return Ok(c.finish());
    };
    c.note(format!("workload pid {pid} page pa {:#x}", page.pa));
    let hc0 = ctx.hardware_corrupted_kb()?;
    let src = ctx.eng.polled();
    let Some(rec) = Record::page(page.pa) else {
        c.fail("no granule");
        return Ok(c.finish());
    };
    let Delivered {
        from,
        delivery: d,
        idle,
        acked,
        took,
    } = ctx.deliver(src, &rec)??;
    c.ok(
        d == Delivery::Written,
        format!("engine wrote the record ({d:?})"),
    );
    c.ok(
        idle && acked == 1,
        format!(
            "guest acked, ack register read non-zero again ({acked} ack, {:.2} s, POLLED {} ms)",
            took.as_secs_f64(),
            POLL_MS
        ),
    );
    let want = vec![
        ghes_header(src),
        "event severity: recoverable".to_string(),
        "section_type: memory error".to_string(),
        pa_line(page.pa),
        format!("precise tstamp: {}", utc_string(rec.unix_time)),
        format!(
            "{} recovery action for dirty LRU page: Recovered",
            mf_prefix(page.pa)
        ),
    ];
    ctx.expect_seen(&mut c, from, &want);
    ctx.one_more_corrupted_page(&mut c, hc0, "")?;
    // The owner reads the page again: the poisoned page is gone, SIGBUS.
    let (_, sig) = ctx.ask_workload("USR1", pid, Duration::from_secs(5), "SIGBUS", |l| {
        l.contains("ORACLE SIGBUS") || l.contains("ORACLE TOUCHED")
    })?;
    match sig {
        Some(l) => c.ok(
            l.contains("ORACLE SIGBUS") && l.contains("lsb=12"),
            format!("owner touching the page again: `{l}`"),
        ),
        None => c.ok(false, "owner touching the page again reported nothing"),
    };
    let lines = ctx.ghes_lines_since(from);
    c.evidence_without_complaint(&lines);
    Ok(c.finish())
}

fn s4_queue(ctx: &mut Ctx) -> Result<ScenarioResult, OracleError> {
    let mut c = Check::new(4, "second error while the first is unacknowledged");
    let (_, pages) = ctx.hold(2)?;
    if pages.len() < 2 {
        c.fail("workload printed fewer than 2 pages");
        return Ok(c.finish());
    }
    ctx.space();
    let src = ctx.eng.nmi();
    let before = ctx.eng.tally(src)?;
    let from = ctx.guest.mark();
    let (Some(r1), Some(r2)) = (Record::page(pages[0].pa), Record::page(pages[1].pa)) else {
        c.fail("no granule");
        return Ok(c.finish());
    };
    // Written, but the NMI is held back: the guest has not consumed it.
    let d1 = ctx.eng.submit(src, &r1)?;
    println!(
        "  engine: submit {} to source {} -> {d1:?} (NMI held back)",
        r1.describe(),
        src.0
    );
    c.ok(
        d1 == Delivery::Written,
        format!("first record written ({d1:?})"),
    );
    thread::sleep(Duration::from_millis(300));
    c.ok(
        !ctx.eng.idle(src)?,
        "source busy: no ack before the notification",
    );
    let d2 = ctx.eng.submit(src, &r2)?;
    println!(
        "  engine: submit {} to source {} -> {d2:?}",
        r2.describe(),
        src.0
    );
    c.ok(
        d2 == Delivery::Queued { depth: 1 },
        format!("second record queued ({d2:?})"),
    );
    ctx.guest.inject_nmi()?;
    let idle = ctx.pump(&[src], Duration::from_secs(10))?;
    ctx.recent.push(Instant::now());
    ctx.recent.push(Instant::now());
    let after = ctx.eng.tally(src)?;
    c.ok(idle, "both consumed, queue empty, source free");
    c.ok(
        after.written - before.written == 2
            && after.acked - before.acked == 2
            && after.dropped == before.dropped,
        format!(
            "engine wrote +{} (submit/service), guest acked +{} (ack register; {} seen only by the engine's write), dropped +{}",
            after.written - before.written,
            after.acked - before.acked,
            after.acked_at_write - before.acked_at_write,
            after.dropped - before.dropped
        ),
    );
    let want: Vec<String> = pages[..2].iter().map(|p| mf_prefix(p.pa)).collect();
    let missing = ctx.expect_lines(from, Duration::from_secs(5), &want);
    let lines = ctx.ghes_lines_since(from);
    for (i, w) in want.iter().enumerate() {
        let n = lines.iter().filter(|l| l.contains(w.as_str())).count();
        c.ok(
            !missing.contains(w) && n == 1,
            format!("record {}: `{w}` seen {n} time(s)", i + 1),
        );
    }
    let order: Vec<usize> = want
        .iter()
        .filter_map(|w| lines.iter().position(|l| l.contains(w.as_str())))
        .collect();
    c.ok(
        order.len() == 2 && order[0] < order[1],
        "in submission order",
    );
    c.evidence_without_complaint(&lines);
    Ok(c.finish())
}

fn s5_burst(ctx: &mut Ctx) -> Result<ScenarioResult, OracleError> {
    let mut c = Check::new(5, "burst across the sources");
    let srcs = ctx.eng.all_sources();
    let per = 3usize;
    let (_, pages) = ctx.hold(srcs.len() * per)?;
    if pages.len() < srcs.len() * per {
        c.fail("workload printed too few pages");
        return Ok(c.finish());
    }
    ctx.space();
    let before: Vec<_> = srcs
        .iter()
        .map(|s| ctx.eng.tally(*s))
        .collect::<Result<_, _>>()?;
    let from = ctx.guest.mark();
    let t0 = Instant::now();
    let mut i = 0;
    for _ in 0..per {
        for s in &srcs {
            let Some(r) = Record::page(pages[i].pa) else {
                c.fail("no granule");
                return Ok(c.finish());
            };
            let d = ctx.submit(*s, &r)?;
            c.ok(
                !matches!(d, Delivery::Dropped),
                format!("record {i} not dropped ({d:?})"),
            );
            i += 1;
        }
    }
    let idle = ctx.pump(&srcs, Duration::from_secs(30))?;
    for _ in 0..(srcs.len() * per).min(2) {
        ctx.recent.push(Instant::now());
    }
    c.ok(
        idle,
        format!("all sources idle after {:.2} s", t0.elapsed().as_secs_f64()),
    );
    for (k, s) in srcs.iter().enumerate() {
        let a = ctx.eng.tally(*s)?;
        let w = a.written - before[k].written;
        let ak = a.acked - before[k].acked;
        let aw = a.acked_at_write - before[k].acked_at_write;
        c.ok(
            w == per as u64 && ak == per as u64 && a.dropped == before[k].dropped,
            format!(
                "source {}: written {w}, acked {ak} ({aw} seen only by the engine's write), dropped {}",
                s.0,
                a.dropped - before[k].dropped
            ),
        );
    }
    let want: Vec<String> = pages[..srcs.len() * per]
        .iter()
        .map(|p| mf_prefix(p.pa))
        .collect();
    let missing = ctx.expect_lines(from, Duration::from_secs(5), &want);
    let lines = ctx.ghes_lines_since(from);
    let mut seen = BTreeMap::new();
    for w in &want {
        seen.insert(
            w.clone(),
            lines.iter().filter(|l| l.contains(w.as_str())).count(),
        );
    }
    c.ok(
        missing.is_empty() && seen.values().all(|n| *n == 1),
        format!("every page's `Memory failure` line exactly once: {seen:?}"),
    );
    c.note("GHES prints at most 2 records per 5 s: the `[Hardware Error]` blocks are rate-limited, the `Memory failure` lines are not");
    c.evidence_without_complaint(&lines);
    Ok(c.finish())
}

fn s6_soft_offline(ctx: &mut Ctx) -> Result<ScenarioResult, OracleError> {
    let mut c = Check::new(6, "corrected error with threshold exceeded");
    let (pid, pages) = ctx.hold(2)?;
    let Some(page) = pages.first().copied() else {
        c.fail("workload printed no page");
        return Ok(c.finish());
    };
    let Some(granule) = GpaGranule::containing(GuestAddress(page.pa), 12) else {
        c.fail("no granule");
        return Ok(c.finish());
    };
    let hc0 = ctx.hardware_corrupted_kb()?;
    let src = ctx.eng.polled();
    let rec = Record::memory(granule, Severity::Corrected, true);
    let Delivered {
        from, idle, acked, ..
    } = ctx.deliver(src, &rec)??;
    c.ok(idle && acked == 1, "guest consumed and acked the record");
    let want = vec![
        ghes_header(src),
        "event severity: corrected".to_string(),
        pa_line(page.pa),
    ];
    ctx.expect_seen(&mut c, from, &want);
    thread::sleep(Duration::from_millis(1000));
    ctx.one_more_corrupted_page(&mut c, hc0, " (page soft-offlined)")?;
    let (m, _) = ctx.ask_workload("USR2", pid, Duration::from_secs(5), "REPAGE", |l| {
        l.contains("ORACLE REPAGE") && l.contains("idx=1")
    })?;
    let re = ctx
        .guest
        .lines_since(m)
        .into_iter()
        .find(|l| l.contains("ORACLE REPAGE") && l.contains("idx=0 "));
    match re {
        Some(l) => {
            let new = hex_field(&l, "pa=");
            c.ok(
                new.is_some() && new != Some(page.pa) && l.contains("byte=0x40"),
                format!(
                    "the process's page moved to another frame with its data: `{l}` (was {:#x})",
                    page.pa
                ),
            );
        }
        None => c.fail("workload did not re-print its pages"),
    }
    let lines = ctx.ghes_lines_since(from);
    c.evidence_without_complaint(&lines);
    Ok(c.finish())
}

fn s3_huge(ctx: &mut Ctx) -> Result<ScenarioResult, OracleError> {
    let mut c = Check::new(3, "huge-page-sized loss (PA mask)");
    let from0 = ctx.guest.mark();
    ctx.guest.run("workload thp &", Duration::from_secs(20))?;
    let (_, thp) = ctx
        .guest
        .wait_for(from0, Duration::from_secs(20), "ORACLE THP", |l| {
            l.contains("ORACLE THP")
        })?;
    c.evidence(slice::from_ref(&thp));
    let Some(pa) = hex_field(&thp, "pa=") else {
        c.fail("workload printed no THP address");
        return Ok(c.finish());
    };
    if !thp.contains("thp=1") {
        c.note("the workload's 2 MiB range is not a THP in the guest: the test still sends a 2 MiB loss");
    }
    let Some(granule) = GpaGranule::containing(GuestAddress(pa), 21) else {
        c.fail("no granule");
        return Ok(c.finish());
    };
    let hc0 = ctx.hardware_corrupted_kb()?;
    let src = SourceId(1);
    let rec = Record::memory(granule, Severity::Recoverable, false);
    let Delivered {
        from, idle, acked, ..
    } = ctx.deliver(src, &rec)??;
    c.ok(idle && acked == 1, "guest consumed and acked the record");
    let want = vec![
        pa_line(granule.base().raw_value()),
        format!("physical_address_mask: 0x{:016x}", granule.pa_mask()),
    ];
    ctx.expect_seen(&mut c, from, &want);
    // Let memory_failure() finish (it runs from a workqueue).
    thread::sleep(Duration::from_millis(1500));
    let lines = ctx.ghes_lines_since(from);
    let pfns: Vec<u64> = lines
        .iter()
        .filter(|l| l.contains("Memory failure: 0x"))
        .filter_map(|l| hex_field(l, "Memory failure: "))
        .collect();
    let hc1 = ctx.hardware_corrupted_kb()?;
    c.evidence(&lines);
    let mut pfns = pfns;
    pfns.dedup();
    let thp_pid = dec_field(&thp, "pid=").unwrap_or(0);
    let (_, touch) =
        ctx.ask_workload("USR1", thp_pid, Duration::from_secs(10), "THPTOUCH", |l| {
            l.contains("ORACLE THPTOUCH")
        })?;
    let touch = touch.unwrap_or_else(|| "(the workload did not answer)".into());
    c.evidence(slice::from_ref(&touch));
    c.ok(
        pfns.contains(&(granule.base().raw_value() >> 12)),
        format!(
            "guest ran memory_failure() on the first pfn of the range ({:#x})",
            granule.base().raw_value() >> 12
        ),
    );
    let whole = hc1.saturating_sub(hc0) >= granule.len() >> 10;
    println!(
        "  FINDING: a {} KiB loss (mask {:#x}) made Linux act on {} pfn(s) {:x?}; HardwareCorrupted {} kB -> {} kB ({}); owner reading the {} KiB range: {}",
        granule.len() >> 10,
        granule.pa_mask(),
        pfns.len(),
        pfns,
        hc0,
        hc1,
        if whole {
            "the whole range"
        } else {
            "NOT the whole range: the PA mask is printed, not used"
        },
        granule.len() >> 10,
        touch.trim()
    );
    c.ok(
        firmware_complaints(&lines).is_empty(),
        "no firmware complaint",
    );
    Ok(c.finish())
}

/// What the guest must print for one shape, besides the source line.
struct Shape {
    rec: Record,
    want: Vec<String>,
}

fn s8_shapes(ctx: &mut Ctx) -> Result<ScenarioResult, OracleError> {
    let mut c = Check::new(8, "every record shape: no unexpected firmware warning");
    let (_, pages) = ctx.hold(6)?;
    if pages.len() < 6 {
        c.fail("workload printed too few pages");
        return Ok(c.finish());
    }
    let g4k = |i: usize| GpaGranule::containing(GuestAddress(pages[i].pa), 12);
    let (Some(ga), Some(gb), Some(gc), Some(g2m), Some(g1g)) = (
        g4k(0),
        g4k(1),
        g4k(2),
        GpaGranule::containing(GuestAddress(pages[3].pa), 21),
        GpaGranule::containing(GuestAddress(pages[3].pa), 30),
    ) else {
        c.fail("no granule");
        return Ok(c.finish());
    };
    let vendor = Guid::from_fields(
        0x8b6e_2f4c,
        0x1d2a,
        0x4f5e,
        [0x9a, 0x11, 0x3c, 0x7d, 0x52, 0x60, 0xa1, 0x0b],
    );
    let raw_data: Vec<u8> = (0u8..32).collect();
    let arm = |pa: u64, ty: ArmErrorTypes| ArmProcessorSection {
        validation_bits: arm_validation::MPIDR | arm_validation::RUNNING_STATE,
        error_affinity_level: 0,
        mpidr: 0x8000_0000,
        midr: 0x410f_d0c0,
        running_state: 1,
        psci_state: 0,
        error_info: vec![ArmErrorInfo {
            version: 0,
            validation_bits: info_validation::FLAGS | info_validation::PHYSICAL_FAULT_ADDRESS,
            error_type: ty,
            multiple_error: 0,
            flags: info_flags::FIRST_ERROR | info_flags::LAST_ERROR,
            error_information: 0,
            virtual_fault_address: 0,
            physical_fault_address: pa,
        }],
        context_info: Vec::new(),
        vendor_specific: Vec::new(),
    };
    let shapes = vec![
        Shape {
            rec: Record::memory(ga, Severity::Recoverable, false),
            want: vec![
                pa_line(ga.base().raw_value()),
                "event severity: recoverable".into(),
                format!("{} recovery action", mf_prefix(ga.base().raw_value())),
            ],
        },
        Shape {
            rec: Record::memory(g2m, Severity::Corrected, false),
            want: vec![
                pa_line(g2m.base().raw_value()),
                format!("physical_address_mask: 0x{:016x}", g2m.pa_mask()),
                "event severity: corrected".into(),
            ],
        },
        Shape {
            rec: Record::memory(g1g, Severity::Corrected, false),
            want: vec![
                pa_line(g1g.base().raw_value()),
                format!("physical_address_mask: 0x{:016x}", g1g.pa_mask()),
            ],
        },
        Shape {
            rec: Record::memory(gb, Severity::Corrected, false),
            want: vec![
                pa_line(gb.base().raw_value()),
                "event severity: corrected".into(),
            ],
        },
        Shape {
            rec: Record::entry(
                "ARM processor, cache error with PA, recoverable",
                Section::ArmProcessor(arm(gc.base().raw_value(), ArmErrorTypes::CACHE)),
                Severity::Recoverable,
                EntryFlags::PRIMARY,
            ),
            want: vec![
                "e19e3d16-bc11-11e4-9caa-c2051d5d46b0".into(),
                format!("{} recovery action", mf_prefix(gc.base().raw_value())),
            ],
        },
        Shape {
            rec: Record::entry(
                "ARM processor, TLB error, corrected",
                Section::ArmProcessor(arm(pages[4].pa, ArmErrorTypes::TLB)),
                Severity::Corrected,
                EntryFlags::PRIMARY,
            ),
            want: vec![
                "e19e3d16-bc11-11e4-9caa-c2051d5d46b0".into(),
                "event severity: corrected".into(),
            ],
        },
        Shape {
            rec: Record::entry(
                "raw vendor section, recoverable",
                Section::Raw(RawSection::new(vendor, raw_data.clone())),
                Severity::Recoverable,
                EntryFlags::PRIMARY,
            ),
            want: vec![
                "8b6e2f4c-1d2a-4f5e-9a11-3c7d5260a10b".into(),
                "03020100 07060504".into(),
            ],
        },
        Shape {
            rec: Record::block(
                "multi-entry: memory recoverable + raw corrected, block raw data",
                StatusBlock::new()
                    .with_entry(
                        DataEntry::new(
                            Section::Memory(MemoryErrorSection::for_granule(
                                &GpaGranule::containing(GuestAddress(pages[5].pa), 12)
                                    .unwrap_or(ga),
                            )),
                            Severity::Recoverable,
                        )
                        .with_flags(EntryFlags::PRIMARY)
                        .with_timestamp(Timestamp::from_unix(unix_now())),
                    )
                    .with_entry(DataEntry::new(
                        Section::Raw(RawSection::new(vendor, raw_data)),
                        Severity::Corrected,
                    ))
                    .with_raw_data(vec![0xee; 16]),
            ),
            want: vec![
                "Error 0, type: recoverable".into(),
                "Error 1, type: corrected".into(),
                pa_line(pages[5].pa),
                format!("{} recovery action", mf_prefix(pages[5].pa)),
            ],
        },
    ];
    let src = SourceId(1);
    for sh in shapes {
        let Delivered {
            from,
            delivery: d,
            idle,
            acked,
            ..
        } = match ctx.deliver(src, &sh.rec)? {
            Ok(d) => d,
            Err(e) => {
                c.fail(format!("{}: engine refused: {e}", sh.rec.desc));
                continue;
            }
        };
        let mut want = sh.want.clone();
        want.insert(0, ghes_header(src));
        let missing = ctx.expect_lines(from, Duration::from_secs(4), &want);
        thread::sleep(Duration::from_millis(300));
        let lines: Vec<String> = ctx
            .guest
            .lines_since(from)
            .into_iter()
            .filter(|l| l.contains("Hardware Error") || is_ghes_line(l) || l.contains("GHES"))
            .collect();
        let fw = firmware_complaints(&ctx.guest.lines_since(from));
        c.evidence(&lines);
        c.ok(
            d.must_notify() && idle && acked == 1 && missing.is_empty() && fw.is_empty(),
            format!(
                "{}: acked {acked}, missing {:?}, firmware complaints {:?}",
                sh.rec.desc, missing, fw
            ),
        );
    }
    // The type byte is the UEFI 2.10 bitmap. A recoverable bus error
    // (bit 3) with a valid PA must be decoded and acknowledged but must not
    // reach memory_failure(): Linux acts only on the cache bit. With the old
    // UEFI 2.9 enumeration the engine wrote bus as 2 = the bitmap's cache
    // bit, and the guest ran memory_failure() on it. The kernel names the
    // type it read in its warning (`Unhandled processor error type 0x08:
    // bus error` on 6.1.176): that warning is expected and required here.
    let bus = Record::entry(
        "ARM processor, bus error with PA (type 0x08), recoverable",
        Section::ArmProcessor(arm(pages[4].pa, ArmErrorTypes::BUS)),
        Severity::Recoverable,
        EntryFlags::PRIMARY,
    );
    let Delivered {
        from,
        delivery: d,
        idle,
        acked,
        ..
    } = ctx.deliver(src, &bus)??;
    let missing = ctx.expect_lines(
        from,
        Duration::from_secs(4),
        &[
            ghes_header(src),
            "e19e3d16-bc11-11e4-9caa-c2051d5d46b0".into(),
            "Unhandled processor error type 0x08: bus error".into(),
        ],
    );
    thread::sleep(Duration::from_millis(1500));
    let all = ctx.guest.lines_since(from);
    let lines = ctx.ghes_lines_since(from);
    let acted = all.iter().any(|l| l.contains(&mf_prefix(pages[4].pa)));
    c.evidence(&lines);
    c.ok(
        d.must_notify() && idle && acked == 1 && missing.is_empty() && !acted,
        format!(
            "{}: acked {acked}, missing {:?}, memory_failure() {}",
            bus.desc,
            missing,
            if acted {
                "RAN (type read as cache)"
            } else {
                "not run"
            }
        ),
    );
    let unexpected: Vec<String> = firmware_complaints(&all)
        .into_iter()
        .filter(|l| !l.contains("Unhandled processor error type 0x08: bus error"))
        .collect();
    c.ok(
        unexpected.is_empty(),
        format!("bus error: no other firmware complaint {unexpected:?}"),
    );
    Ok(c.finish())
}

fn s7_scribble(ctx: &mut Ctx) -> Result<ScenarioResult, OracleError> {
    let mut c = Check::new(7, "guest scribbles over its error region");
    let layout = ctx.eng.layout();
    let (base, len) = (layout.base(), layout.total_len());
    let (_, pages) = ctx.hold(1)?;
    let Some(page) = pages.first().copied() else {
        c.fail("workload printed no page");
        return Ok(c.finish());
    };
    // Every register and block now holds this qword: the ESA registers point
    // elsewhere in the reserved window, the ack registers read "free".
    let junk = WINDOW_BASE + 0xf000;
    let from = ctx.guest.mark();
    let out = ctx.guest.run(
        &format!(
            "workload scribble8 {:#x} {len:#x} {junk:#x}",
            base.raw_value()
        ),
        Duration::from_secs(10),
    )?;
    c.evidence(&out);
    if !out.iter().any(|l| l.contains("ORACLE SCRIBBLED")) {
        c.skip = Some("the guest kernel refused /dev/mem writes to the region".into());
        return Ok(c.finish());
    }
    let src = ctx.eng.polled();
    let Some(rec) = Record::page(page.pa) else {
        c.fail("no granule");
        return Ok(c.finish());
    };
    // Freeze the guest so that every byte that changes is the engine's.
    ctx.guest.qmp_execute("stop")?;
    let before = ctx.eng.read(base, len as usize);
    let (t0, tampered0) = (ctx.eng.totals(), ctx.eng.tampered());
    let encoded_len = rec.block.encoded_len() as u64;
    let res = panic::catch_unwind(AssertUnwindSafe(|| ctx.eng.submit(src, &rec)));
    let after = ctx.eng.read(base, len as usize);
    ctx.guest.qmp_execute("cont")?;
    let (before, after) = (before?, after?);
    let delivery = match res {
        Err(_) => {
            c.fail("engine panicked on a scribbled region");
            return Ok(c.finish());
        }
        Ok(Err(e)) => {
            c.note(format!("engine returned an error: {e}"));
            None
        }
        Ok(Ok(d)) => Some(d),
    };
    c.ok(
        true,
        format!("engine did not crash; submit -> {delivery:?}"),
    );
    let (t1, tampered1) = (ctx.eng.totals(), ctx.eng.tampered());
    println!(
        "  engine found: {} tampered ESA register(s) re-written (take_tampered); written +{}, queued +{}, dropped +{}",
        tampered1 - tampered0,
        t1.written - t0.written,
        t1.queued - t0.queued,
        t1.dropped - t0.dropped
    );
    let mut allowed: Vec<(u64, u64)> = Vec::new();
    for s in layout.sources() {
        allowed.push((
            layout.esa_register(s).map_err(GlueError::from)?.raw_value(),
            8,
        ));
        allowed.push((
            layout.ack_register(s).map_err(GlueError::from)?.raw_value(),
            8,
        ));
    }
    allowed.push((
        layout.block(src).map_err(GlueError::from)?.raw_value(),
        encoded_len,
    ));
    let mut stray = Vec::new();
    let mut changed = 0usize;
    for (i, (a, b)) in before.iter().zip(after.iter()).enumerate() {
        if a != b {
            changed += 1;
            let gpa = base.raw_value() + i as u64;
            if !allowed.iter().any(|(s, l)| gpa >= *s && gpa < s + l) {
                stray.push(gpa);
            }
        }
    }
    c.ok(
        stray.is_empty(),
        format!(
            "{changed} byte(s) changed, all inside the ESA/ack registers and source {}'s block [..+{encoded_len}] (stray: {:x?})",
            src.0,
            &stray[..stray.len().min(8)]
        ),
    );
    c.ok(
        tampered1 > tampered0,
        "engine detected the changed ESA registers",
    );
    let idle = ctx.pump(&[src], Duration::from_secs(10))?;
    ctx.recent.push(Instant::now());
    c.ok(
        idle,
        "the guest consumed and acked the record after the engine restored the region",
    );
    println!(
        "  engine found (after its service passes): {} tampered ESA register(s) re-written in all",
        ctx.eng.tampered() - tampered0
    );
    let want = vec![mf_prefix(page.pa)];
    let missing = ctx.expect_lines(from, Duration::from_secs(5), &want);
    c.ok(missing.is_empty(), format!("guest: `{}`", want[0]));
    // Second scribble: the guest zeroes its POLLED source's ack register,
    // i.e. claims it never consumed the last record.
    let ack = layout.ack_register(src).map_err(GlueError::from)?;
    let blk = layout.block(src).map_err(GlueError::from)?;
    let out = ctx.guest.run(
        &format!("workload scribble8 {:#x} 8 0", ack.raw_value()),
        Duration::from_secs(10),
    )?;
    c.evidence(&out);
    let block_before = ctx.eng.read(blk, 64)?;
    let (_, more) = ctx.hold(1)?;
    if !out.iter().any(|l| l.contains("ORACLE SCRIBBLED")) {
        c.fail("the guest could not zero its ack register");
    } else if let Some(rec) = more.first().and_then(|p| Record::page(p.pa)) {
        let res = panic::catch_unwind(AssertUnwindSafe(|| ctx.eng.submit(src, &rec)));
        match res {
            Err(_) => c.fail("engine panicked on a zeroed ack register"),
            Ok(r) => {
                let block_after = ctx.eng.read(blk, 64)?;
                let ack_after = ctx.eng.ack_value(src)?;
                c.ok(
                    matches!(r, Ok(Delivery::Queued { .. }))
                        && block_before == block_after
                        && ack_after == 0,
                    format!(
                        "ack register zeroed by the guest: submit -> {r:?}, block untouched, ack register still {ack_after:#x} (the record waits in the engine's queue, queue length {})",
                        ctx.eng.queue_len(src)?
                    ),
                );
            }
        }
    }
    let lines = ctx.ghes_lines_since(from);
    c.evidence(&lines);
    Ok(c.finish())
}
