#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# /init of the x86 lab's L1 initramfs (busybox sh): loads KVM (the modules
# listed in /modules/modules.order: irqbypass, kvm, ccp, kvm-amd) and
# hwpoison-inject, runs the ras_lab_x86 harness, powers off.
# Kernel command line: lab.scenarios=<name,name|all>.
set -u
. /lib/lab-init.sh
lab_mount
t_init=$(cut -d' ' -f1 /proc/uptime)
for m in $(cat /modules/modules.order); do
    insmod "/modules/$m.ko" || echo "lab: insmod $m failed"
done
t_kvm=$(cut -d' ' -f1 /proc/uptime)
echo 4 > /proc/sys/vm/nr_hugepages || true
scen=$(lab_scenarios)
echo "LAB-BEGIN kernel $(uname -r) scenarios $scen hugepages $(cat /proc/sys/vm/nr_hugepages) cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "LAB-TIME init_uptime_s=$t_init modules_loaded_uptime_s=$t_kvm"
rc=0
if [ ! -c /dev/kvm ]; then
    echo "SKIP: /dev/kvm missing in L1 after loading $(cat /modules/modules.order | tr '\n' ' ')"
    dmesg | grep -i -E 'kvm|svm' | tail -n 5
    rc=77
else
    dmesg | grep -i -E 'kvm|svm|nested' | sed 's/^/dmesg: /' | tail -n 4
    /ras_lab_x86 all "$scen" || rc=$?
    dmesg | grep -i -E 'memory failure|hwpoison|mce' | sed 's/^/dmesg: /' | tail -n 20
fi
echo "LAB-TIME end_uptime_s=$(cut -d' ' -f1 /proc/uptime)"
echo "LAB-EXIT $rc"
poweroff -f
