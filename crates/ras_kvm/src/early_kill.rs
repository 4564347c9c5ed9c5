// SPDX-License-Identifier: Apache-2.0
//! Opt-in to early kill (`prctl(2)` `PR_MCE_KILL`): the kernel then sends
//! `SIGBUS` `BUS_MCEERR_AO` when it finds a failed page mapped by this
//! process, before anybody consumes it (`Documentation/mm/hwpoison.rst`,
//! `vm.memory_failure_early_kill`).
//!
//! The setting is per thread and inherited by threads created afterwards;
//! the kernel signals the first flagged thread of the process. Call
//! [`enable`] on the main thread before spawning the vCPU threads, so the
//! `AO` arrives there and not on a vCPU thread; the [`crate::sigbus`]
//! handler queues it for [`crate::sigbus::drain_action_optional`].

use std::io;

use thiserror::Error;

/// Errors of this module.
#[derive(Debug, Error)]
pub enum EarlyKillError {
    /// `prctl(PR_MCE_KILL, ...)` failed.
    #[error("prctl(PR_MCE_KILL) failed: {0}")]
    Prctl(#[source] io::Error),
}

/// The calling thread's memory-failure kill policy (`PR_MCE_KILL_GET`).
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
    /// Decodes a `PR_MCE_KILL_GET` result.
    pub fn from_raw(raw: i32) -> Option<Self> {
        match raw {
            libc::PR_MCE_KILL_DEFAULT => Some(Self::Default),
            libc::PR_MCE_KILL_EARLY => Some(Self::Early),
            libc::PR_MCE_KILL_LATE => Some(Self::Late),
            _ => None,
        }
    }
}

/// `prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0)` on the
/// calling thread.
pub fn enable() -> Result<(), EarlyKillError> {
    // SAFETY: prctl with integer arguments only; no memory is passed.
    let ret = unsafe {
        libc::prctl(
            libc::PR_MCE_KILL,
            libc::PR_MCE_KILL_SET,
            libc::PR_MCE_KILL_EARLY,
            0,
            0,
        )
    };
    if ret != 0 {
        return Err(EarlyKillError::Prctl(io::Error::last_os_error()));
    }
    Ok(())
}

/// The calling thread's policy (`PR_MCE_KILL_GET`).
pub fn policy() -> Result<McePolicy, EarlyKillError> {
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_MCE_KILL_GET, 0, 0, 0, 0) };
    if ret < 0 {
        return Err(EarlyKillError::Prctl(io::Error::last_os_error()));
    }
    McePolicy::from_raw(ret)
        .ok_or_else(|| EarlyKillError::Prctl(io::Error::from_raw_os_error(libc::EINVAL)))
}

#[cfg(test)]
mod tests {
    use std::thread;

    use super::*;

    #[test]
    fn enable_is_per_thread_and_inherited() {
        // prctl(PR_MCE_KILL) works without CONFIG_MEMORY_FAILURE.
        thread::spawn(|| {
            enable().unwrap();
            assert_eq!(policy().unwrap(), McePolicy::Early);
            let child = thread::spawn(|| policy().unwrap()).join().unwrap();
            assert_eq!(child, McePolicy::Early);
        })
        .join()
        .unwrap();
        assert_eq!(McePolicy::from_raw(2), Some(McePolicy::Default));
        assert_eq!(McePolicy::from_raw(7), None);
    }
}
