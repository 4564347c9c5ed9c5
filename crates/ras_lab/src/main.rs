// SPDX-License-Identifier: Apache-2.0
//! `ras_lab`: the arm64 lab harness. A small VMM that runs a bare-metal L2
//! guest under KVM inside the L1 Linux the lab boots in QEMU, poisons host
//! pages behind guest pages and checks the whole recovery path.
//!
//! Usage (in L1, as root):
//!   ras_lab [all] [NAME,NAME,...]   run scenarios, each in a child process
//!   ras_lab scenario NAME           run one scenario in this process
//!   ras_lab list
//! Exit status: 0 when every scenario that ran passed.

#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
mod asm;
#[cfg(target_arch = "aarch64")]
mod ghes;
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
mod guest;
#[cfg(target_arch = "aarch64")]
mod scenarios;
#[cfg(target_arch = "aarch64")]
mod vmm;

use std::process;

#[cfg(target_arch = "aarch64")]
fn main() {
    let harness = ras_lab_runner::Harness {
        name: "ras_lab",
        scenarios: scenarios::ALL,
        run: scenarios::run,
        extra: |cmd| (cmd == "child-nonram").then(scenarios::child_nonram),
        notes: &[
            "KVM_EXIT_ARM_SEA (exit 41) cannot be raised under emulation; scenario iabt writes one into kvm_run",
        ],
    };
    process::exit(harness.main());
}

#[cfg(not(target_arch = "aarch64"))]
fn main() {
    // The guest program still assembles here (and is unit-tested).
    let words = guest::program().words.len();
    eprintln!(
        "ras_lab needs aarch64 (KVM on arm64, {words}-instruction guest): build it with \
         --target aarch64-unknown-linux-gnu and run it in the lab (scripts/lab.sh)"
    );
    process::exit(2);
}
