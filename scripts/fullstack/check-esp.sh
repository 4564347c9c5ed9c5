#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Check of the ESP image and of the guest program, without Cloud Hypervisor:
# boot esp.img under qemu-system-aarch64 (TCG) with Debian's generic arm64
# UEFI firmware (package qemu-efi-aarch64, unpacked, not installed) and
# confirm that startup.nsh boots the kernel with the initrd, the console
# agent answers, and rastest reads GPAs from /proc/self/pagemap and the
# kernel's kpageflags. (The guest sees no HEST here: QEMU's virt machine
# has none without its own RAS option.)
#
#   scripts/fullstack/check-esp.sh      # exit 0 = pass
set -euo pipefail
. "$(dirname "$0")/common.sh"
TIMEOUT=${TIMEOUT:-600}

[ -s "$FS_DIR/esp.img" ] || "$(dirname "$0")/build-guest.sh"
fw=$FS_DIR/qemu-efi/usr/share/qemu-efi-aarch64/QEMU_EFI.fd
if [ ! -s "$fw" ]; then
    fs_apt_config
    fs_apt_update
    mkdir -p "$FS_DIR/debs"
    (cd "$FS_DIR/debs" && fs_apt apt-get -q download qemu-efi-aarch64 >&2)
    dpkg -x "$(ls "$FS_DIR"/debs/qemu-efi-aarch64_*.deb | head -n1)" "$FS_DIR/qemu-efi"
fi
[ -s "$fw" ] || fs_die "no QEMU_EFI.fd in qemu-efi-aarch64"

W=$FS_DIR/check-esp
rm -rf "$W" && mkdir -p "$W"
cp "$FS_DIR/esp.img" "$W/esp.img"
mkfifo "$W/in"
log=$W/serial.log
: >"$log"
t0=$(date +%s%N)
timeout "$TIMEOUT" qemu-system-aarch64 -M virt -cpu max -smp 2 -m 1G -nographic -no-reboot \
    -bios "$fw" -net none \
    -drive if=none,id=esp,format=raw,file="$W/esp.img" -device virtio-blk-pci,drive=esp \
    <"$W/in" >"$log" 2>&1 &
qpid=$!
exec 3>"$W/in"

wait_for() { # pattern seconds
    local i=0
    while ! grep -qa -- "$1" "$log"; do
        kill -0 "$qpid" 2>/dev/null || return 1
        i=$((i + 1)); [ "$i" -le $(( $2 * 5 )) ] || return 1
        sleep 0.2
    done
}
rc=0
if wait_for "RASGUEST ready" "$TIMEOUT"; then
    t1=$(date +%s%N)
    echo "1 rastest hold esp 2 1 &" >&3
    wait_for "RASTEST ready tag=esp" 60 || rc=1
    echo "2 rastest spin w 2" >&3
    echo "3 kill -USR1 \$(pidof rastest | cut -d' ' -f1); sleep 1; rastest kpf 0x40000; rastest hest; grep -c . /proc/iomem" >&3
    echo "4 poweroff -f" >&3
    wait_for "RASCMD-END 3" 120 || rc=1
else
    rc=1
fi
exec 3>&-
wait "$qpid" 2>/dev/null || true
echo "---- serial (RAS lines) ----"
grep -a -E 'RASGUEST|RASTEST|RASCMD|startup.nsh|EFI stub' "$log" | tr -d '\r' || true
ok() { grep -qa -- "$1" "$log" && echo "  ok: $2" || { echo "  FAIL: $2"; rc=1; }; }
echo "---- checks ----"
ok 'FS0:.*Image.efi initrd=' "UEFI shell ran startup.nsh from the ESP"
ok "RASGUEST ready" "kernel booted with the initrd from the ESP (its /init is the agent)"
ok "RASGUEST ready" "guest /init and console agent"
ok "RASTEST page tag=esp .*gpa=0x" "rastest read GPAs from /proc/self/pagemap"
ok "RASTEST read-ok tag=esp" "rastest consumed its page on SIGUSR1"
ok "RASTEST alive tag=w" "second workload runs"
ok "RASTEST kpf pfn=0x40000 flags=" "kpageflags readable"
[ -n "${t1:-}" ] && echo "boot to agent: $(( (t1 - t0) / 1000000 )) ms (QEMU TCG, generic UEFI)"
echo "log: $log"
[ "$rc" -eq 0 ] && echo "check-esp: PASS" || echo "check-esp: FAIL"
exit "$rc"
