// SPDX-License-Identifier: Apache-2.0
//! What both lab harnesses (`ras_lab` on arm64, `ras_lab_x86`) share: their
//! guest RAM set-up ([`guest_ram`]), their error ([`lab_error`]), real
//! hardware poison ([`hwpoison`]), their
//! scenario checks ([`Checks`]) and their
//! command line: each scenario runs in a child process of its own, so a crash or
//! a hang fails that scenario only; the parent prints one `RESULT <name>
//! PASS|FAIL|SKIP (<seconds> s)` line per scenario, `TIME
//! scenarios_total_s=<seconds>` and the closing `N passed, M failed` that
//! `scripts/lab.sh` and `scripts/lab-x86.sh` parse. A skipped scenario
//! prints `SKIP: <why>`, exits 77 and counts neither as passed nor failed.
//!
//! Commands: `list`; `scenario NAME` (one, in this process); `all
//! [NAME,NAME...]` or no command (every scenario, or those named); any
//! other first word is offered to [`Harness::extra`] first (e.g. the arm64
//! lab's `child-nonram`), then taken as a comma-separated list.

#![deny(missing_docs)]

pub mod guest_ram;
pub mod hwpoison;
pub mod lab_error;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use std::{env, thread};

use ras_edge::host::sigbus::SigbusHandler;

const EXIT_PASS: i32 = 0;
const EXIT_FAIL: i32 = 1;
const EXIT_SKIP: i32 = 77;
/// How long one scenario's child may run before it is killed and failed.
const CHILD_LIMIT: Duration = Duration::from_secs(90);

/// Polls `done` every millisecond until it holds or `limit` has passed;
/// returns whether it held and how long that took. For the host side of a
/// scenario waiting on its vCPU thread, the kernel or the engine.
pub fn poll_until(limit: Duration, mut done: impl FnMut() -> bool) -> (bool, Duration) {
    let t = Instant::now();
    loop {
        if done() {
            return (true, t.elapsed());
        }
        if t.elapsed() >= limit {
            return (false, t.elapsed());
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// What a scenario concluded, with the evidence printed after it.
#[derive(Debug)]
pub enum Verdict {
    /// Every check held.
    Pass(String),
    /// A check failed (the evidence names which).
    Fail(String),
    /// Something the scenario needs is absent (printed as `SKIP: <why>`).
    Skip(String),
}

/// The checks of one scenario: each printed as `[ok]` or `[FAILED]` with
/// its evidence, the failed ones collected for the verdict.
#[derive(Debug, Default)]
pub struct Checks(Vec<String>);

impl Checks {
    /// No checks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Prints `what` as held (`ok`) or not, and keeps it when not.
    pub fn check(&mut self, ok: bool, what: impl Into<String>) {
        let what = what.into();
        println!("    [{}] {what}", if ok { "ok" } else { "FAILED" });
        if !ok {
            self.0.push(what);
        }
    }

    /// [`Verdict::Pass`] with `pass` when every check held, else
    /// [`Verdict::Fail`] naming the failed ones.
    pub fn verdict(self, pass: impl Into<String>) -> Verdict {
        if self.0.is_empty() {
            Verdict::Pass(pass.into())
        } else {
            Verdict::Fail(self.0.join("; "))
        }
    }
}

/// One lab harness: its scenarios and how to run one.
pub struct Harness {
    /// The binary's name, for messages.
    pub name: &'static str,
    /// `(name, description)` of every scenario, in the order `all` runs them.
    pub scenarios: &'static [(&'static str, &'static str)],
    /// Runs one scenario in this process.
    pub run: fn(&str) -> Verdict,
    /// A command of the harness's own (its exit status), or `None`.
    pub extra: fn(&str) -> Option<i32>,
    /// Lines printed after the summary.
    pub notes: &'static [&'static str],
}

impl Harness {
    /// Runs the command line; returns the process's exit status.
    pub fn main(&self) -> i32 {
        let args: Vec<String> = env::args().skip(1).collect();
        // Held for the life of the process, as a VMM holds it while it runs
        // a VM with RAS.
        let _handler = match SigbusHandler::install() {
            Ok(h) => h,
            Err(e) => {
                eprintln!("{}: cannot install the SIGBUS handler: {e}", self.name);
                return 2;
            }
        };
        match args.first().map(String::as_str) {
            Some("list") => {
                for (n, d) in self.scenarios {
                    println!("{n:15} {d}");
                }
                0
            }
            Some("scenario") => match args.get(1) {
                Some(n) => self.one(n),
                None => {
                    eprintln!("usage: {} scenario NAME", self.name);
                    2
                }
            },
            Some("all") => self.all(args.get(1).map(String::as_str)),
            None => self.all(None),
            Some(cmd) => (self.extra)(cmd).unwrap_or_else(|| self.all(Some(cmd))),
        }
    }

    fn one(&self, name: &str) -> i32 {
        match (self.run)(name) {
            Verdict::Pass(s) => {
                println!("  PASS {name}: {s}");
                EXIT_PASS
            }
            Verdict::Fail(s) => {
                println!("  FAIL {name}: {s}");
                EXIT_FAIL
            }
            Verdict::Skip(s) => {
                println!("  SKIP: {name}: {s}");
                EXIT_SKIP
            }
        }
    }

    fn all(&self, list: Option<&str>) -> i32 {
        let names: Vec<&str> = match list {
            None | Some("all") => self.scenarios.iter().map(|(n, _)| *n).collect(),
            Some(l) => l.split(',').filter(|s| !s.is_empty()).collect(),
        };
        let exe = match env::current_exe() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("{}: current_exe: {e}", self.name);
                return 2;
            }
        };
        let t_all = Instant::now();
        let (mut pass, mut fail, mut skip) = (0, 0, 0);
        let mut lines = Vec::new();
        for n in names {
            let desc = self
                .scenarios
                .iter()
                .find(|(k, _)| *k == n)
                .map_or("?", |(_, d)| *d);
            println!("=== scenario {n}: {desc}");
            let t = Instant::now();
            let verdict = match child_status(&exe, n) {
                Some(EXIT_PASS) => {
                    pass += 1;
                    "PASS"
                }
                Some(EXIT_SKIP) => {
                    skip += 1;
                    "SKIP"
                }
                _ => {
                    fail += 1;
                    "FAIL"
                }
            };
            lines.push(format!(
                "RESULT {n} {verdict} ({:.1} s)",
                t.elapsed().as_secs_f64()
            ));
        }
        println!("=== summary");
        for l in &lines {
            println!("{l}");
        }
        println!(
            "TIME scenarios_total_s={:.2}",
            t_all.elapsed().as_secs_f64()
        );
        for note in self.notes {
            println!("note: {note}");
        }
        if skip > 0 {
            println!("{skip} skipped (not counted as passed)");
        }
        println!("{pass} passed, {fail} failed");
        if fail > 0 { 1 } else { 0 }
    }
}

/// Runs `exe scenario NAME` and returns its exit status; `None` (a
/// failure, said on stdout) when it could not run, died of a signal or
/// outlived [`CHILD_LIMIT`].
fn child_status(exe: &Path, n: &str) -> Option<i32> {
    let t = Instant::now();
    let mut child = match Command::new(exe)
        .args(["scenario", n])
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            println!("  FAIL {n}: spawn: {e}");
            return None;
        }
    };
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return st.code(),
            Ok(None) if t.elapsed() > CHILD_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                println!("  FAIL {n}: timed out after {CHILD_LIMIT:?}");
                return None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                println!("  FAIL {n}: wait: {e}");
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_until_stops_when_done_or_at_the_limit() {
        let mut calls = 0;
        let (held, _) = poll_until(Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        });
        assert!(held);
        assert_eq!(calls, 3);
        let (held, waited) = poll_until(Duration::from_millis(20), || false);
        assert!(!held);
        assert!(waited >= Duration::from_millis(20), "{waited:?}");
    }
}
