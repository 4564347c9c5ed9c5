#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Shared by the /init of both labs' L1 initramfs (busybox sh), installed as
# /lib/lab-init.sh by initramfs_skeleton (scripts/lib/lab-common.sh): the
# file systems every scenario needs and the scenarios the kernel command
# line names.

# lab_mount: /proc, /sys, /dev, the busybox applets, and debugfs (where
# hwpoison-inject's corrupt-pfn lives).
lab_mount() {
    /bin/busybox mkdir -p /proc /sys /dev /tmp
    /bin/busybox mount -t proc proc /proc
    /bin/busybox mount -t sysfs sysfs /sys
    /bin/busybox mount -t devtmpfs devtmpfs /dev
    /bin/busybox --install -s /bin
    mount -t debugfs debugfs /sys/kernel/debug
}

# lab_scenarios: the value of lab.scenarios=<name,name|all> on the kernel
# command line, all when absent.
lab_scenarios() {
    scen=all
    for w in $(cat /proc/cmdline); do
        case "$w" in lab.scenarios=*) scen=${w#lab.scenarios=} ;; esac
    done
    echo "$scen"
}
