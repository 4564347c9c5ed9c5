// SPDX-License-Identifier: Apache-2.0
//! `ras_lab_x86`: the x86 lab harness. A small VMM that runs a bare-metal
//! 32-bit L2 guest under the real x86 KVM of the L1 Linux the lab boots in
//! QEMU (TCG, AMD SVM nested), poisons host pages behind guest pages and
//! checks what the x86 edge (`ras_edge`) needs: the `SIGBUS` facts, and
//! machine-check injection with `KVM_X86_SETUP_MCE` / `KVM_X86_SET_MCE`
//! down to the guest's #MC handler.
//!
//! Usage (in L1, as root):
//!   ras_lab_x86 [all] [NAME,NAME,...]   run scenarios, each in a child process
//!   ras_lab_x86 scenario NAME           run one scenario in this process
//!   ras_lab_x86 list
//! Exit status: 0 when every scenario that ran passed.

mod asm;
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
mod guest;
#[cfg(target_arch = "x86_64")]
mod scenarios;
#[cfg(target_arch = "x86_64")]
mod vmm;

use std::process;

#[cfg(target_arch = "x86_64")]
fn main() {
    let harness = ras_lab_runner::Harness {
        name: "ras_lab_x86",
        scenarios: scenarios::ALL,
        run: scenarios::run,
        extra: |_| None,
        notes: &[],
    };
    process::exit(harness.main());
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    let bytes = guest::program().code.len();
    eprintln!(
        "ras_lab_x86 needs x86_64 (KVM on x86, {bytes}-byte guest): run it in the x86 lab (scripts/lab-x86.sh)"
    );
    process::exit(2);
}
