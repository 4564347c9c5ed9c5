#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# /init of the lab's L1 initramfs (busybox sh). Runs the ras_lab harness and
# powers off. Kernel command line: lab.scenarios=<name,name|all>.
set -eu
. /lib/lab-init.sh
lab_mount
insmod /hwpoison-inject.ko || echo "lab: insmod hwpoison-inject.ko failed"
echo 4 > /proc/sys/vm/nr_hugepages || true
scen=$(lab_scenarios)
echo "LAB-BEGIN kernel $(uname -r) scenarios $scen hugepages $(cat /proc/sys/vm/nr_hugepages)"
rc=0
/ras_lab all "$scen" || rc=$?
echo "LAB-EXIT $rc"
poweroff -f
