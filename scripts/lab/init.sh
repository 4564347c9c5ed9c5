#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# /init of the lab's L1 initramfs (busybox sh). Runs the ras_lab harness and
# powers off. Kernel command line: lab.scenarios=<name,name|all>.
set -eu
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
mount -t debugfs debugfs /sys/kernel/debug
insmod /hwpoison-inject.ko || echo "lab: insmod hwpoison-inject.ko failed"
echo 4 > /proc/sys/vm/nr_hugepages || true
scen=all
for w in $(cat /proc/cmdline); do
    case "$w" in lab.scenarios=*) scen=${w#lab.scenarios=} ;; esac
done
echo "LAB-BEGIN kernel $(uname -r) scenarios $scen hugepages $(cat /proc/sys/vm/nr_hugepages)"
rc=0
/ras_lab all "$scen" || rc=$?
echo "LAB-EXIT $rc"
poweroff -f
