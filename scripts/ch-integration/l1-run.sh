#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# L1's init for scripts/ch-integration.sh (after the initramfs switched to
# the ext4 root it built): prepares what Cloud Hypervisor's integration
# tests expect of their host (scripts/run_integration_tests_{aarch64,x86_64}.sh
# and test_infra), then runs them with cargo-nextest from the extracted archive,
# and powers off. Lines for the host start with "CHINT ".
# Debian tools first (mkdosfs -C is not busybox's), busybox applets last.
PATH=/usr/bin:/usr/sbin:/bin:/sbin:/usr/local/bin
export PATH
busybox mount -t proc proc /proc
busybox mount -t sysfs sysfs /sys
busybox mkdir -p /dev/pts /usr/local/bin
busybox mount -t devpts devpts /dev/pts
busybox --install -s /usr/local/bin
# test_infra's rate_limited_copy waits while /tmp has less than 6 GiB free:
# a tmpfs reports its size limit, not the memory it uses.
mount -t tmpfs -o size=12G tmpfs /tmp
mount -t tmpfs tmpfs /run
# The RAS tests poison host pages through debugfs (hwpoison_inject is
# loaded by the initramfs), as run_integration_tests_aarch64.sh sets up.
mount -t debugfs debugfs /sys/kernel/debug
ip link set lo up
hostname l1
. /chint/env
echo "CHINT L1 up: Linux $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPUs, $(awk '/MemTotal/ { print int($2 / 1024) " MiB" }' /proc/meminfo), kvm: $(ls /dev/kvm 2>&1), tun: $(ls /dev/net/tun 2>&1), corrupt-pfn: $(ls /sys/kernel/debug/hwpoison/corrupt-pfn 2>&1)"

# x86_64: one empty VM held for the whole run (scripts/fullstack-x86/kvmhold.c).
[ -x /chint/kvmhold ] && { /chint/kvmhold & }

export HOME=/root USER=root BUILD_TARGET="$TARGET" RUST_BACKTRACE=1 NO_COLOR=1
# The console is a terminal: no progress bar in the log.
export NEXTEST_HIDE_PROGRESS_BAR=1
cd "$WORKSPACE" || { echo "CHINT no workspace $WORKSPACE"; poweroff -f; }
A=/chint/archive
# nextest recorded the build machine's paths: map the workspace and the
# target directory onto L1's.
t0=$(awk '{ print int($1) }' /proc/uptime)
/chint/cargo-nextest nextest run \
    --binaries-metadata "$A/target/nextest/binaries-metadata.json" \
    --cargo-metadata "$A/target/nextest/cargo-metadata.json" \
    --workspace-remap "$WORKSPACE" --target-dir-remap "$A/target" \
    --profile common_tests --no-fail-fast --retries "$RETRIES" --test-threads "$JOBS" \
    --color never --final-status-level all -E "$FILTER" 2>&1
rc=$?
echo "CHINT NEXTEST-EXIT $rc after $(( $(awk '{ print int($1) }' /proc/uptime) - t0 )) s"
sync
poweroff -f
