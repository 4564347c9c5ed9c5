#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# /init of the L1 initramfs of the full-stack lab (busybox): prepares the
# host side (proc, sysfs, devtmpfs, debugfs: lab_mount of
# scripts/lab/init-common.sh; hwpoison-inject), runs the
# scenarios (l1-orchestrate.sh) and powers off.
. /lib/lab-init.sh
lab_mount
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs -o size=90% tmpfs /tmp
insmod /fullstack/hwpoison-inject.ko || echo "FULLSTACK WARN: insmod hwpoison-inject failed"
[ -e /fullstack/run.env ] && . /fullstack/run.env
export ONLY FSD=/fullstack W=/tmp/fs
echo "FULLSTACK L1 up: $(uname -r) $(grep -c ^processor /proc/cpuinfo) CPUs, $(awk '/MemTotal/ {print $2}' /proc/meminfo) kB, kvm: $(ls /dev/kvm 2>&1)"
sh /fullstack/l1-orchestrate.sh
echo "FULLSTACK EXIT $?"
poweroff -f
