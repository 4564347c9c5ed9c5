// SPDX-License-Identifier: Apache-2.0
//! Command line, one child process per scenario, summary with timings.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use std::{env, thread};

use ras_edge::host::sigbus::SigbusHandler;

use crate::scenarios::{self, ALL, Verdict};

const EXIT_PASS: i32 = 0;
const EXIT_FAIL: i32 = 1;
const EXIT_SKIP: i32 = 77;
const CHILD_LIMIT: Duration = Duration::from_secs(90);

pub fn main() -> i32 {
    let args: Vec<String> = env::args().skip(1).collect();
    // Held for the life of the process, as a VMM holds it while it runs a
    // VM with RAS.
    let _handler = match SigbusHandler::install() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("ras_lab_x86: cannot install the SIGBUS handler: {e}");
            return 2;
        }
    };
    match args.first().map(String::as_str) {
        Some("list") => {
            for (n, d) in ALL {
                println!("{n:15} {d}");
            }
            0
        }
        Some("scenario") => match args.get(1) {
            Some(n) => one(n),
            None => {
                eprintln!("usage: ras_lab_x86 scenario NAME");
                2
            }
        },
        Some("all") => all(args.get(1).map(String::as_str)),
        None => all(None),
        Some(list) => all(Some(list)),
    }
}

fn one(name: &str) -> i32 {
    match scenarios::run(name) {
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

fn all(list: Option<&str>) -> i32 {
    let names: Vec<&str> = match list {
        None | Some("all") => ALL.iter().map(|(n, _)| *n).collect(),
        Some(l) => l.split(',').filter(|s| !s.is_empty()).collect(),
    };
    let exe = match env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ras_lab_x86: current_exe: {e}");
            return 2;
        }
    };
    let t_all = Instant::now();
    let (mut pass, mut fail, mut skip) = (0, 0, 0);
    let mut lines = Vec::new();
    for n in names {
        let desc = ALL.iter().find(|(k, _)| *k == n).map_or("?", |(_, d)| *d);
        println!("=== scenario {n}: {desc}");
        let t = Instant::now();
        let status = match Command::new(&exe)
            .args(["scenario", n])
            .stdin(Stdio::null())
            .spawn()
        {
            Ok(mut child) => loop {
                match child.try_wait() {
                    Ok(Some(st)) => break st.code(),
                    Ok(None) if t.elapsed() > CHILD_LIMIT => {
                        let _ = child.kill();
                        let _ = child.wait();
                        println!("  FAIL {n}: timed out after {CHILD_LIMIT:?}");
                        break None;
                    }
                    Ok(None) => thread::sleep(Duration::from_millis(10)),
                    Err(e) => {
                        println!("  FAIL {n}: wait: {e}");
                        break None;
                    }
                }
            },
            Err(e) => {
                println!("  FAIL {n}: spawn: {e}");
                None
            }
        };
        let verdict = match status {
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
            "RESULT {n} {verdict} ({:.2} s)",
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
    if skip > 0 {
        println!("{skip} skipped (not counted as passed)");
    }
    println!("{pass} passed, {fail} failed");
    if fail > 0 { 1 } else { 0 }
}
