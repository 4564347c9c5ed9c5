#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# /init of the x86 full stack's L1 initramfs (busybox sh): the file systems
# (lab_mount of scripts/lab/init-common.sh: proc, sysfs, devtmpfs, debugfs),
# the modules of scripts/lab-x86.sh's fetch in /modules/modules.order
# (irqbypass, kvm, ccp, kvm-amd, hwpoison-inject), then the scenarios
# (l1-orchestrate.sh) with kvmhold holding one empty VM, then power off.
. /lib/lab-init.sh
lab_mount
t_init=$(cut -d' ' -f1 /proc/uptime)
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs -o size=90% tmpfs /tmp
for m in $(cat /modules/modules.order); do
    insmod "/modules/$m.ko" || echo "FULLSTACK-X86 WARN: insmod $m failed"
done
[ -e /fullstack/run.env ] && . /fullstack/run.env
export ONLY FSD=/fullstack W=/tmp/fs
echo "FULLSTACK-X86 L1 up: $(uname -r) $(grep -c ^processor /proc/cpuinfo) CPUs, $(awk '/MemTotal/ {print $2}' /proc/meminfo) kB, kvm: $(ls /dev/kvm 2>&1), $(dmesg | grep -a -m1 -oE 'kvm_amd: Nested Virtualization enabled|Nested Virtualization enabled')"
echo "FULLSTACK-X86 TIME l1_uptime_at_init_s=$t_init l1_uptime_modules_loaded_s=$(cut -d' ' -f1 /proc/uptime)"
# One empty VM held for the whole run (kvmhold.c says why).
/fullstack/kvmhold &
kh=$!
sh /fullstack/l1-orchestrate.sh
echo "FULLSTACK-X86 EXIT $?"
kill "$kh" 2>/dev/null
echo "FULLSTACK-X86 TIME l1_uptime_end_s=$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
