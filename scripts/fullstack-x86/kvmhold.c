// SPDX-License-Identifier: Apache-2.0
/*
 * kvmhold: holds one empty KVM VM (KVM_CREATE_VM, no vCPU, no memory)
 * until killed. Run in L1 by l1-init.sh for the whole run.
 *
 * Why: every KVM_CREATE_VM and the last close of a VM turn the kernel's
 * preempt-notifier static key on and off (kvm_create_vm() ->
 * preempt_notifier_inc(), kvm_destroy_vm() -> preempt_notifier_dec()),
 * which rewrites __schedule() with int3-based text patching on a live
 * 2-CPU system. Under QEMU's multi-threaded TCG that once left a CPU on a
 * stale breakpoint between two of the scenarios' VMs ("Oops: int3" at
 * __schedule, "Fatal exception in interrupt": L1 died). With one VM held
 * open the key stays on and the scenarios' VMs never patch the scheduler.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	int vm;

	if (kvm < 0) {
		perror("kvmhold: /dev/kvm");
		return 1;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		perror("kvmhold: KVM_CREATE_VM");
		return 1;
	}
	printf("kvmhold: holding an empty VM (fd %d)\n", vm);
	fflush(stdout);
	for (;;)
		pause();
}
