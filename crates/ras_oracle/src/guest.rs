// SPDX-License-Identifier: Apache-2.0
//! The guest: QEMU (TCG, never KVM) with a file-backed RAM, its serial
//! console read line by line, commands sent on the console, NMIs via QMP.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Error as IoError, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use thiserror::Error;

/// Guest RAM size (below 2.75 GiB: file offset == guest physical address).
pub const RAM_SIZE: usize = 512 << 20;

/// Errors from driving the guest.
#[derive(Debug, Error)]
pub enum GuestError {
    /// An I/O error on `what`.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: IoError,
    },
    /// The guest did not print what was expected in time.
    #[error("timeout waiting for {0}")]
    Timeout(String),
    /// QMP answered with an error.
    #[error("QMP: {0}")]
    Qmp(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(IoError) -> GuestError {
    let what = what.into();
    move |source| GuestError::Io { what, source }
}

/// How to start the guest.
#[derive(Clone, Debug)]
pub struct GuestConfig {
    /// qemu-system-x86_64 binary.
    pub qemu: PathBuf,
    /// Kernel (bzImage).
    pub kernel: PathBuf,
    /// Initramfs (busybox + workload + /init).
    pub initrd: PathBuf,
    /// The HEST file handed to `-acpitable`.
    pub hest: PathBuf,
    /// The guest RAM file (memory-backend-file, share=on).
    pub ram: PathBuf,
    /// QMP unix socket path.
    pub qmp: PathBuf,
    /// Console log file.
    pub log: PathBuf,
    /// Extra kernel command-line words.
    pub cmdline: String,
}

#[derive(Default)]
struct Console {
    lines: Vec<(Instant, String)>,
    closed: bool,
}

/// A running guest.
pub struct Guest {
    child: Child,
    stdin: ChildStdin,
    console: Arc<(Mutex<Console>, Condvar)>,
    qmp: Option<BufReader<UnixStream>>,
    qmp_path: PathBuf,
    tag: u32,
    started: Instant,
}

impl Guest {
    /// Starts QEMU. The RAM file must exist with [`RAM_SIZE`] bytes.
    pub fn start(cfg: &GuestConfig) -> Result<Self, GuestError> {
        let _ = fs::remove_file(&cfg.qmp);
        let append = format!("console=ttyS0 panic=-1 {}", cfg.cmdline);
        let mut child = Command::new(&cfg.qemu)
            .args([
                "-accel",
                "tcg",
                "-M",
                "q35,memory-backend=ram",
                "-m",
                "512M",
            ])
            .arg("-object")
            .arg(format!(
                "memory-backend-file,id=ram,size={RAM_SIZE},mem-path={},share=on",
                cfg.ram.display()
            ))
            .args([
                "-nodefaults",
                "-display",
                "none",
                "-serial",
                "stdio",
                "-no-reboot",
            ])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", cfg.qmp.display()))
            .arg("-acpitable")
            .arg(format!("file={}", cfg.hest.display()))
            .arg("-kernel")
            .arg(&cfg.kernel)
            .arg("-initrd")
            .arg(&cfg.initrd)
            .arg("-append")
            .arg(append)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io(format!("spawning {}", cfg.qemu.display())))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| GuestError::Qmp("no stdin".into()))?;
        let console = Arc::new((Mutex::new(Console::default()), Condvar::new()));
        let mut logf =
            File::create(&cfg.log).map_err(io(format!("creating {}", cfg.log.display())))?;
        let mut errlog = logf.try_clone().map_err(io("log clone"))?;
        if let Some(mut out) = child.stdout.take() {
            let console = Arc::clone(&console);
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut cur: Vec<u8> = Vec::new();
                loop {
                    let n = match out.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let _ = logf.write_all(&buf[..n]);
                    for &b in &buf[..n] {
                        if b == b'\n' {
                            let line = String::from_utf8_lossy(&cur).replace('\r', "");
                            cur.clear();
                            let (m, cv) = &*console;
                            if let Ok(mut c) = m.lock() {
                                c.lines.push((Instant::now(), line));
                            }
                            cv.notify_all();
                        } else {
                            cur.push(b);
                        }
                    }
                }
                let (m, cv) = &*console;
                if let Ok(mut c) = m.lock() {
                    if !cur.is_empty() {
                        c.lines
                            .push((Instant::now(), String::from_utf8_lossy(&cur).into_owned()));
                    }
                    c.closed = true;
                }
                cv.notify_all();
            });
        }
        if let Some(mut err) = child.stderr.take() {
            thread::spawn(move || {
                let mut s = String::new();
                let _ = err.read_to_string(&mut s);
                let _ = errlog.write_all(format!("\n[qemu stderr]\n{s}").as_bytes());
            });
        }
        Ok(Self {
            child,
            stdin,
            console,
            qmp: None,
            qmp_path: cfg.qmp.clone(),
            tag: 0,
            started: Instant::now(),
        })
    }

    /// Seconds since QEMU started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Index of the next console line (a mark for later searches).
    pub fn mark(&self) -> usize {
        let (m, _) = &*self.console;
        m.lock().map_or(0, |c| c.lines.len())
    }

    /// Console lines from `from` on.
    pub fn lines_since(&self, from: usize) -> Vec<String> {
        let (m, _) = &*self.console;
        m.lock()
            .map(|c| c.lines.iter().skip(from).map(|(_, l)| l.clone()).collect())
            .unwrap_or_default()
    }

    /// Waits until a line from `from` on satisfies `pred`; returns its index
    /// and text.
    pub fn wait_for(
        &self,
        from: usize,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> Result<(usize, String), GuestError> {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.console;
        let mut c = m.lock().map_err(|_| GuestError::Timeout(what.into()))?;
        let mut i = from;
        loop {
            while i < c.lines.len() {
                if pred(&c.lines[i].1) {
                    return Ok((i, c.lines[i].1.clone()));
                }
                i += 1;
            }
            let now = Instant::now();
            if c.closed || now >= deadline {
                return Err(GuestError::Timeout(what.into()));
            }
            c = cv
                .wait_timeout(c, deadline - now)
                .map_err(|_| GuestError::Timeout(what.into()))?
                .0;
        }
    }

    /// Sends one shell line to the guest's /init loop and waits for it to
    /// finish; returns the console lines printed meanwhile.
    pub fn run(&mut self, cmd: &str, timeout: Duration) -> Result<Vec<String>, GuestError> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        let from = self.mark();
        writeln!(self.stdin, "{tag} {cmd}").map_err(io("writing to the console"))?;
        self.stdin.flush().map_err(io("flushing the console"))?;
        let done = format!("ORACLE-DONE {tag} ");
        let (end, _) = self.wait_for(from, timeout, &format!("`{cmd}`"), |l| l.contains(&done))?;
        let mut out = self.lines_since(from);
        out.truncate(end - from + 1);
        Ok(out)
    }

    /// Sends a line without waiting (for background commands).
    pub fn send(&mut self, cmd: &str) -> Result<(), GuestError> {
        self.tag += 1;
        writeln!(self.stdin, "t{} {cmd}", self.tag).map_err(io("writing to the console"))?;
        self.stdin.flush().map_err(io("flushing the console"))
    }

    fn qmp_cmd(&mut self, cmd: &str) -> Result<String, GuestError> {
        if self.qmp.is_none() {
            let s = UnixStream::connect(&self.qmp_path).map_err(io("connecting to QMP"))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(io("QMP timeout"))?;
            let mut r = BufReader::new(s);
            let mut greeting = String::new();
            r.read_line(&mut greeting).map_err(io("QMP greeting"))?;
            self.qmp = Some(r);
            self.qmp_cmd(r#"{"execute":"qmp_capabilities"}"#)?;
        }
        let r = self
            .qmp
            .as_mut()
            .ok_or_else(|| GuestError::Qmp("not connected".into()))?;
        r.get_mut()
            .write_all(format!("{cmd}\n").as_bytes())
            .map_err(io("QMP write"))?;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).map_err(io("QMP read"))? == 0 {
                return Err(GuestError::Qmp("QMP closed".into()));
            }
            if line.contains("\"return\"") {
                return Ok(line);
            }
            if line.contains("\"error\"") {
                return Err(GuestError::Qmp(line.trim().into()));
            }
        }
    }

    /// Raises an NMI on every vCPU (QMP `inject-nmi`).
    pub fn inject_nmi(&mut self) -> Result<(), GuestError> {
        self.qmp_execute("inject-nmi")
    }

    /// Runs a QMP command without arguments (`stop`, `cont`, ...).
    pub fn qmp_execute(&mut self, name: &str) -> Result<(), GuestError> {
        self.qmp_cmd(&format!(r#"{{"execute":"{name}"}}"#))
            .map(|_| ())
    }

    /// Powers the guest off and reaps QEMU (kills it after `timeout`).
    pub fn stop(&mut self, timeout: Duration) {
        let _ = writeln!(self.stdin, "t0 poweroff -f");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        // Never leave a QEMU behind (e.g. after an infrastructure error).
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Creates (or truncates) the RAM file with [`RAM_SIZE`] bytes.
pub fn create_ram_file(path: &Path) -> Result<File, GuestError> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io(format!("creating {}", path.display())))?;
    f.set_len(RAM_SIZE as u64)
        .map_err(io(format!("sizing {}", path.display())))?;
    Ok(f)
}
