// Copyright © 2026 The guest RAS authors
//
// SPDX-License-Identifier: Apache-2.0
//
//! Opt-in to early kill (`prctl(2)` `PR_MCE_KILL`): the kernel then sends
//! `SIGBUS` `BUS_MCEERR_AO` when it finds a failed page mapped by this
//! process, before anybody consumes it (`Documentation/mm/hwpoison.rst`,
//! `vm.memory_failure_early_kill`).
//!
//! The setting is per thread and inherited by threads created afterwards;
//! the kernel signals the first flagged thread of the process. Enable it
//! on the VMM thread before spawning the vCPU threads, so the `AO` arrives
//! there and not on a vCPU thread; [`super::sigbus`] queues it.
//! [`EarlyKill`] puts the thread's previous policy back when it is
//! dropped on that thread, so a VMM that stops running a VM with RAS stops
//! asking for early signals (dropped on another thread, it leaves the
//! policies as they are: the setting is not that thread's to change).

use std::io;

use thiserror::Error;

/// Errors of this module.
#[derive(Debug, Error)]
pub enum EarlyKillError {
    /// `prctl(PR_MCE_KILL*)` failed.
    #[error("prctl(PR_MCE_KILL) failed")]
    Prctl(#[source] io::Error),
    /// `PR_MCE_KILL_GET` returned a policy this code does not know.
    #[error("Unknown memory-failure kill policy {0}")]
    UnknownPolicy(i32),
}

/// A thread's memory-failure kill policy (`PR_MCE_KILL_GET`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum McePolicy {
    /// `PR_MCE_KILL_DEFAULT`: follow `vm.memory_failure_early_kill`.
    Default,
    /// `PR_MCE_KILL_EARLY`.
    Early,
    /// `PR_MCE_KILL_LATE`.
    Late,
}

impl McePolicy {
    /// The calling thread's policy.
    pub fn current() -> Result<Self, EarlyKillError> {
        // SAFETY: prctl with integer arguments only.
        let ret = unsafe { libc::prctl(libc::PR_MCE_KILL_GET, 0, 0, 0, 0) };
        match ret {
            libc::PR_MCE_KILL_DEFAULT => Ok(Self::Default),
            libc::PR_MCE_KILL_EARLY => Ok(Self::Early),
            libc::PR_MCE_KILL_LATE => Ok(Self::Late),
            r if r < 0 => Err(EarlyKillError::Prctl(io::Error::last_os_error())),
            r => Err(EarlyKillError::UnknownPolicy(r)),
        }
    }

    /// Makes this the calling thread's policy.
    pub fn set(self) -> Result<(), EarlyKillError> {
        let (op, policy) = match self {
            Self::Default => (libc::PR_MCE_KILL_CLEAR, 0),
            Self::Early => (libc::PR_MCE_KILL_SET, libc::PR_MCE_KILL_EARLY),
            Self::Late => (libc::PR_MCE_KILL_SET, libc::PR_MCE_KILL_LATE),
        };
        // SAFETY: prctl with integer arguments only.
        let ret = unsafe { libc::prctl(libc::PR_MCE_KILL, op, policy, 0, 0) };
        if ret != 0 {
            return Err(EarlyKillError::Prctl(io::Error::last_os_error()));
        }
        Ok(())
    }
}

/// Early kill on the thread that enabled it, until dropped.
#[derive(Debug)]
pub struct EarlyKill {
    previous: McePolicy,
    tid: libc::pid_t,
}

impl EarlyKill {
    /// `PR_MCE_KILL_EARLY` on the calling thread.
    pub fn enable() -> Result<Self, EarlyKillError> {
        let previous = McePolicy::current()?;
        McePolicy::Early.set()?;
        Ok(Self {
            previous,
            // SAFETY: gettid has no arguments and cannot fail.
            tid: unsafe { libc::gettid() },
        })
    }
}

impl Drop for EarlyKill {
    fn drop(&mut self) {
        // SAFETY: gettid has no arguments and cannot fail.
        if unsafe { libc::gettid() } == self.tid {
            // Nothing to report to: the thread keeps early kill at worst.
            let _ = self.previous.set();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    #[test]
    fn per_thread_inherited_and_restored() {
        // prctl(PR_MCE_KILL) works without CONFIG_MEMORY_FAILURE.
        thread::spawn(|| {
            McePolicy::Late.set().unwrap();
            let guard = EarlyKill::enable().unwrap();
            assert_eq!(McePolicy::current().unwrap(), McePolicy::Early);
            // Threads created now inherit it.
            let child = thread::spawn(|| McePolicy::current().unwrap())
                .join()
                .unwrap();
            assert_eq!(child, McePolicy::Early);
            drop(guard);
            assert_eq!(McePolicy::current().unwrap(), McePolicy::Late);
            McePolicy::Default.set().unwrap();
            assert_eq!(McePolicy::current().unwrap(), McePolicy::Default);
        })
        .join()
        .unwrap();
        // Another thread was never touched.
        assert_eq!(McePolicy::current().unwrap(), McePolicy::Default);
    }

    #[test]
    fn dropped_on_another_thread_changes_nothing() {
        thread::spawn(|| {
            let guard = EarlyKill::enable().unwrap();
            // Dropped by a thread that never enabled it: neither its own
            // policy nor the enabling thread's changes.
            thread::spawn(move || {
                let before = McePolicy::current().unwrap();
                drop(guard);
                assert_eq!(McePolicy::current().unwrap(), before);
            })
            .join()
            .unwrap();
            assert_eq!(McePolicy::current().unwrap(), McePolicy::Early);
        })
        .join()
        .unwrap();
    }
}
