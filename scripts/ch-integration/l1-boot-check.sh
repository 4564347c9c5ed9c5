#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# /init of the L1 machine of scripts/ch-integration/boot-workload.sh
# (busybox, as root, KVM available): boots the workload image with Cloud
# Hypervisor the way CH's aarch64 ACPI integration tests do and checks the
# contract with test_infra's own functions (the `probe` binary):
#   A  test_simple_launch_acpi's command line: --cpus boot=1 --memory
#      size=512M --kernel CLOUDHV_EFI.fd --disk <os> --disk <cloudinit>
#      --net tap=,mac=,ip=,mask= --serial tty --console off -v; then
#      wait_vm_boot (booted), and its ssh commands, sudo dmesg
#   B  the RAS tests' command line without --ras (2 vCPUs, --api-socket,
#      --event-monitor): their guest commands, then test_power_button_acpi's
#      `ch-remote power-button`: the guest powers off, the VMM exits with 0
#   C  only when the binary has --ras: whether it accepts --ras with the
#      firmware as --kernel (R1), then a --firmware --ras boot and the
#      RAS tests' guest side: HEST parsed, GHES bound to 3 sources, two
#      injected corrected errors logged by the guest
# Prints "BOOTCHECK ..." lines; powers off at the end.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox --install -s
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs -o size=90% tmpfs /tmp
for m in /wl/modules/*.ko; do insmod "$m" || echo "BOOTCHECK insmod $m failed"; done
. /wl/env
say() { echo "BOOTCHECK $*"; }
up_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
say "L1 up: $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPUs, kvm: $(ls /dev/kvm 2>&1), tun: $(ls /dev/net/tun 2>&1)"

W=/tmp/ch
mkdir -p "$W"
PASSED=0 FAILED=0
result() { # name PASS|FAIL why
    if [ "$2" = PASS ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
    say "RESULT $1 $2${3:+ ($3)}"
}
# As test_infra's prepare_files: a fresh copy of the OS image per guest.
fresh_disks() {
    n=0; while [ ! -b /dev/vda ] && [ "$n" -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
    t=$(up_ms)
    cat /dev/vda >"$W/osdisk.img"
    cp /wl/cloudinit "$W/cloudinit"
    say "copied the OS image ($(stat -c %s "$W/osdisk.img") bytes) in $(( $(up_ms) - t )) ms"
}
# ssh CMD: test_infra's ssh_command_ip (cloud/cloud123, libssh2)
gssh() { /wl/probe ssh "$GUEST_IP" "$1"; }
check() { # name expected-regex command
    out=$(gssh "$3" 2>&1)
    st=$?
    if [ "$st" -eq 0 ] && echo "$out" | grep -qE -- "$2"; then
        say "  ok: $1: $(echo "$out" | head -n1)"
        return 0
    fi
    say "  FAIL: $1: '$3' -> status $st: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
    return 1
}
# launch TAG ARG...: fresh disks, then cloud-hypervisor ARG... in the
# background ($ch, started at $t0 ms), its output in $W/TAG.{out,err};
# status 0 when the guest said "booted" within BOOT_TIMEOUT ($W/TAG.boot).
launch() {
    tag=$1; shift
    fresh_disks
    say "$(echo "$tag" | tr a-z A-Z): cloud-hypervisor $*"
    t0=$(up_ms)
    /wl/cloud-hypervisor "$@" >"$W/$tag.out" 2>"$W/$tag.err" </dev/null &
    ch=$!
    /wl/probe wait-boot "$PORT" "$GUEST_IP" "$BOOT_TIMEOUT" >"$W/$tag.boot" 2>&1
}
dump() { # on failure: the VMM's output
    say "  serial/stdout (last 30 lines):"; tail -n 30 "$W/$1.out" | tr -d '\r' | sed 's/^/    | /'
    say "  VMM stderr (last 15 lines):"; tail -n 15 "$W/$1.err" | sed 's/^/    | /'
}
NET="tap=,mac=$GUEST_MAC,ip=$HOST_IP,mask=255.255.255.128"

# ---- A: test_simple_launch_acpi ---------------------------------------------
if launch a --cpus boot=1 --memory size=512M --kernel /wl/CLOUDHV_EFI.fd \
    --disk "path=$W/osdisk.img,image_type=raw" --disk "path=$W/cloudinit,image_type=raw" \
    --net "$NET" --serial tty --console off -v; then
    t1=$(up_ms)
    say "FIGURE boot_ms=$((t1 - t0)) (VMM start, firmware, kernel, init -> 'booted' at the listener; $(cat "$W/a.boot"))"
    ok=1
    ts=$(up_ms)
    check "ssh cloud/cloud123" '^cloud$' 'whoami' || ok=0
    say "FIGURE first_ssh_ms=$(( $(up_ms) - ts )) (booted -> first ssh command done)"
    check "get_cpu_count == 1" '^1$' 'grep -c processor /proc/cpuinfo' || ok=0
    check "get_total_memory > 400000" '^(4[0-9]{5}|[5-9][0-9]{5})$' 'grep MemTotal /proc/meminfo | grep -o "[0-9]*"' || ok=0
    check "get_pci_bridge_class == 0x060000" '^0x060000$' 'cat /sys/bus/pci/devices/0000:00:00.0/class' || ok=0
    check "sudo dmesg" 'Linux version' 'sudo dmesg | head -n 3' || ok=0
    check "guest boot log" 'ready' 'cat /run/ch-workload/boot.log' || ok=0
    # scp_to_guest (how a test ships a helper program), then run it there
    if /wl/probe scp "$GUEST_IP" /wl/probe /home/cloud/probe; then
        check "scp_to_guest + run the copy" 'usage: probe' '/home/cloud/probe 2>&1 || true' || ok=0
    else
        say "  FAIL: scp_to_guest"; ok=0
    fi
    gssh 'cat /run/ch-workload/boot.log' >"$W/a.bootlog" 2>&1
    sed 's/^/    guest: /' "$W/a.bootlog"
    # the guest's clock starts with its kernel: the rest is VMM + firmware
    k=$(sed -n 's/.*ready (uptime \([0-9.]*\) s)/\1/p' "$W/a.bootlog" | awk '{ printf "%d", $1 * 1000 }')
    [ -n "$k" ] && say "FIGURE kernel_to_ready_ms=$k vmm_firmware_ms~$((t1 - t0 - k)) (guest uptime at 'ready'; the rest of boot_ms)"
    gssh 'sudo dmesg' 2>&1 | sed 's/^/DMESG /'
    if [ "$ok" = 1 ]; then result A-simple-launch PASS "boot_ms=$((t1 - t0))"; else result A-simple-launch FAIL; dump a; fi
else
    say "  $(cat "$W/a.boot" | tr '\n' ' ')"
    result A-simple-launch FAIL "no booted within ${BOOT_TIMEOUT}s"
    dump a
fi
kill "$ch" 2>/dev/null; wait "$ch" 2>/dev/null
say "  console lines: $(grep -ac 'ch-workload' "$W/a.out") 'ch-workload:' lines, firmware banner: $(grep -ac 'Cloud Hypervisor' "$W/a.out" || true)"

# ---- B: the RAS tests' shape (without --ras), then the power button --------
if launch b --cpus boot=2 --memory size=512M --kernel /wl/CLOUDHV_EFI.fd \
    --disk "path=$W/osdisk.img,image_type=raw" --disk "path=$W/cloudinit,image_type=raw" \
    --net "$NET" --serial tty --console off --api-socket "$W/api.sock" \
    --event-monitor "path=$W/events.json" -v; then
    t1=$(up_ms)
    say "FIGURE boot_ms_2vcpu=$((t1 - t0))"
    ok=1
    check "get_cpu_count == 2" '^2$' 'grep -c processor /proc/cpuinfo' || ok=0
    # test_ras_ghes_probe_acpi's commands: without --ras the counts are 0
    # and `grep -c` exits 1, which ssh_command would report (after its
    # retries) as a failure: here the command gets "|| true".
    check "RAS probe commands (no --ras: HEST 0)" '^0$' "sudo dmesg | grep -c 'HEST: Table parsing has been initialized' || true" || ok=0
    check "RAS probe commands (no --ras: GHES 0)" '^0$' 'ls /sys/bus/platform/drivers/GHES/ | grep -c GHES || true' || ok=0
    check "sudo dmesg (the inject test reads it)" 'Linux version' 'sudo dmesg' || ok=0
    # test_power_button_acpi: ch-remote power-button, the VMM exits with 0
    /wl/ch-remote --api-socket="$W/api.sock" power-button && say "  ok: ch-remote power-button accepted" || ok=0
    n=0
    while kill -0 "$ch" 2>/dev/null && [ "$n" -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
    if kill -0 "$ch" 2>/dev/null; then
        say "  FAIL: the VMM still runs 60 s after power-button"; ok=0
        kill "$ch"; wait "$ch"
    else
        wait "$ch"; st=$?
        if [ "$st" -eq 0 ]; then say "  ok: guest powered off, VMM exit status 0 after $((n / 10)).$((n % 10)) s"
        else say "  FAIL: VMM exit status $st"; ok=0; fi
    fi
    if [ "$ok" = 1 ]; then result B-two-vcpus-power-button PASS; else result B-two-vcpus-power-button FAIL; dump b; fi
else
    say "  $(cat "$W/b.boot" | tr '\n' ' ')"
    result B-two-vcpus-power-button FAIL "no booted within ${BOOT_TIMEOUT}s"
    dump b
    kill "$ch" 2>/dev/null; wait "$ch" 2>/dev/null
fi

# ---- C: with --ras (a patched binary): the RAS tests' guest side ----------
if /wl/cloud-hypervisor --help 2>&1 | grep -q -- '--ras'; then
    # The tests of patch 0010 pass the firmware as --kernel; say whether
    # this binary accepts --ras that way (issue 12, R1).
    timeout 20 /wl/cloud-hypervisor --cpus boot=2 --memory size=512M --kernel /wl/CLOUDHV_EFI.fd \
        --ras --api-socket "$W/r1.sock" >"$W/r1.out" 2>&1 </dev/null &
    r1=$!
    sleep 3
    if kill -0 "$r1" 2>/dev/null; then
        say "NOTE --kernel CLOUDHV_EFI.fd --ras: accepted"; kill "$r1"
    else
        say "NOTE --kernel CLOUDHV_EFI.fd --ras: refused: $(grep -a -i -m1 'ras\|error' "$W/r1.out")"
    fi
    wait "$r1" 2>/dev/null
    if launch c --cpus boot=2 --memory size=512M --firmware /wl/CLOUDHV_EFI.fd \
        --disk "path=$W/osdisk.img,image_type=raw" --disk "path=$W/cloudinit,image_type=raw" \
        --net "$NET" --serial tty --console off --ras --api-socket "$W/api.sock" \
        --event-monitor "path=$W/events.json" -v; then
        say "FIGURE boot_ms_2vcpu_ras=$(( $(up_ms) - t0 ))"
        ok=1
        # test_ras_ghes_probe_acpi, exactly
        check "HEST parsed (== 1)" '^1$' "sudo dmesg | grep -c 'HEST: Table parsing has been initialized'" || ok=0
        check "GHES bound to every source (== 3)" '^3$' 'ls /sys/bus/platform/drivers/GHES/ | grep -c GHES' || ok=0
        # test_ras_inject_error_acpi's guest side
        gpa=0x48000000
        /wl/ch-remote --api-socket="$W/api.sock" inject-error "type=memory,gpa=$gpa,severity=corrected" &&
            /wl/ch-remote --api-socket="$W/api.sock" inject-error "type=arm_processor,arm_error=cache,severity=corrected" &&
            say "  ok: two corrected errors injected" || { say "  FAIL: inject-error refused"; ok=0; }
        n=0
        while [ "$n" -lt 10 ]; do
            gssh 'sudo dmesg' >"$W/c.dmesg" 2>&1
            grep -q 'section_type: memory error' "$W/c.dmesg" && grep -q 'physical_address: 0x0000000048000000' "$W/c.dmesg" &&
                grep -q 'section_type: ARM processor error' "$W/c.dmesg" && break
            n=$((n + 1)); sleep 1
        done
        if [ "$n" -lt 10 ]; then say "  ok: the guest logged both sections and the physical address"
        else say "  FAIL: sections not in the guest's dmesg"; ok=0; fi
        grep -E 'section_type|physical_address|event severity' "$W/c.dmesg" | head -n 6 | sed 's/^/    guest dmesg: /'
        if [ "$ok" = 1 ]; then result C-ras-guest-side PASS; else result C-ras-guest-side FAIL; dump c; fi
    else
        say "  $(cat "$W/c.boot" | tr '\n' ' ')"
        result C-ras-guest-side FAIL "no booted within ${BOOT_TIMEOUT}s"
        dump c
    fi
    kill "$ch" 2>/dev/null; wait "$ch" 2>/dev/null
fi
say "SUMMARY $PASSED passed, $FAILED failed"
poweroff -f
