#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# /init of the L2 guest (busybox). Mounts the pseudo file systems, prints
# "RASGUEST ready", then runs a console agent: each input line is
# "<id> <shell command>"; the command runs in this shell (so `cmd &` keeps
# running) and "RASCMD-END <id> rc=<status>" follows it. The orchestrator in
# L1 writes these lines into the VMM's serial input.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox --install -s
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tmpfs tmpfs /tmp
stty -echo 2>/dev/null
# The guest's own choice: late kill (default). The kernel signals a process
# when it touches a page the guest offlined.
echo "RASGUEST ready uptime=$(cut -d' ' -f1 /proc/uptime) kernel=$(uname -r)"
while IFS= read -r line; do
    id=${line%% *}
    cmd=${line#* }
    [ -n "$id" ] || continue
    eval "$cmd"
    echo "RASCMD-END $id rc=$?"
done
echo "RASGUEST console closed"
poweroff -f
