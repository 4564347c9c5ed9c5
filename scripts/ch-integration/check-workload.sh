#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Check of the workload image without Cloud Hypervisor (CI-able): boot it
# under QEMU (TCG) with Debian's generic UEFI firmware (unpacked, not
# installed), a virtio-net NIC with the MAC of test guest 1 and QEMU's
# user network set to that guest's addresses, the seed as test_infra makes
# it (CH's test_data when --ch-src is given, otherwise our own seed of the
# same shape), and check the contract: `booted` reaches the host's
# listener, ssh cloud/cloud123 (password authentication), sudo, dmesg, the
# commands of the control and RAS tests, the power button (QEMU's
# system_powerdown) powers it off.
#   --arch arm64 (default): .lab/workload/ch-workload-arm64.raw under
#       qemu-system-aarch64 -M virt -cpu max, AAVMF (qemu-efi-aarch64)
#   --arch amd64: .lab/workload/ch-workload-amd64.raw under
#       qemu-system-x86_64 -M q35 -cpu max, OVMF (ovmf: OVMF_CODE_4M.fd +
#       a copy of OVMF_VARS_4M.fd as pflash); also checks that CH's x86
#       firmware .lab/fullstack/CLOUDHV.fd (build-firmware.sh --arch
#       x86_64), when built, has CloudHvX64's 4 MiB, and prints its sha256
#       (it runs only under Cloud Hypervisor, not under QEMU)
#
#   scripts/ch-integration/check-workload.sh [--arch arm64|amd64]
#                                            [--ch-src DIR] [--timeout S]
# The image is built (build-workload.sh --no-install) when missing.
# Exit: 0 pass, 1 fail, 77 skipped (QEMU, the ssh client or the firmware
# package missing).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WL_DIR=${WL_DIR:-$ROOT/.lab/workload}
. "$HERE/seed.sh"
CH_SRC= TIMEOUT=600 ARCH=${WORKLOAD_ARCH:-arm64}
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) ARCH=$2; shift ;;
        --arch=*) ARCH=${1#--arch=} ;;
        --ch-src) CH_SRC=$(cd "$2" && pwd); shift ;;
        --timeout) TIMEOUT=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
case "$ARCH" in
    arm64|aarch64) ARCH=arm64 QEMU=qemu-system-aarch64 FWPKG=qemu-efi-aarch64 FWDIR=$WL_DIR/qemu-efi
        fw=$FWDIR/usr/share/qemu-efi-aarch64/QEMU_EFI.fd W=$WL_DIR/check ;;
    amd64|x86_64) ARCH=amd64 QEMU=qemu-system-x86_64 FWPKG=ovmf FWDIR=$WL_DIR/ovmf
        fw=$FWDIR/usr/share/OVMF/OVMF_CODE_4M.fd W=$WL_DIR/check-amd64 ;;
    *) echo "--arch: arm64 or amd64, not $ARCH" >&2; exit 2 ;;
esac
command -v "$QEMU" >/dev/null || { echo "SKIP: $QEMU missing (scripts/lab/fetch.sh installs it)"; exit 77; }
command -v ssh >/dev/null || { echo "SKIP: ssh (openssh-client) missing"; exit 77; }
IMG=$WL_DIR/ch-workload-$ARCH.raw
[ -s "$IMG" ] || "$HERE/build-workload.sh" --arch "$ARCH" --no-install >/dev/null

# The firmware: Debian's package, unpacked (the private APT configuration
# build-workload.sh wrote).
if [ ! -s "$fw" ]; then
    mkdir -p "$FWDIR"
    (cd "$FWDIR" && APT_CONFIG="$WL_DIR/apt/apt.conf" apt-get -q download "$FWPKG" >&2) || true
    deb=$(ls "$FWDIR/${FWPKG}_"*.deb 2>/dev/null | head -n1 || true)
    [ -n "$deb" ] && dpkg-deb -x "$deb" "$FWDIR"
    [ -s "$fw" ] || { echo "SKIP: no $fw (Debian package $FWPKG not downloaded)"; exit 77; }
fi

rm -rf "$W" && mkdir -p "$W"
cp --sparse=always "$IMG" "$W/osdisk.img"
# A guest id whose listener port (8000 + id) is free on this machine.
id=
for i in $(seq 1 200 | shuf); do
    python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', 8000 + int(sys.argv[1])))" "$i" 2>/dev/null && { id=$i; break; }
done
[ -n "$id" ] || { echo "no free listener port in 8001-8200"; exit 1; }
make_seed "$W/cloudinit" "$id" "$CH_SRC"
echo "seed: ${CH_SRC:+CH test_data of $CH_SRC}${CH_SRC:+}$([ -n "$CH_SRC" ] || echo "our own seed"); guest $SEED_GUEST_IP mac $SEED_MAC, listener $SEED_HOST_IP:$SEED_PORT"

# The host's listener: QEMU's user network hands connections to the
# gateway address (the guest's notify_ip) to the host's loopback.
sport=$((30000 + RANDOM % 10000))
python3 - "$SEED_PORT" "$W/booted" <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4)
buf = b""
while b"booted" not in buf:
    c, _ = s.accept()
    while True:
        d = c.recv(64)
        if not d:
            break
        buf += d
        if b"booted" in buf:
            break
    c.close()
open(sys.argv[2], "w").write("%d %r\n" % (time.time() * 1000, buf))
PY
lpid=$!
sleep 0.5
if [ "$ARCH" = arm64 ]; then
    machine=(-M virt -cpu max -bios "$fw")
else
    # OVMF: the code read-only, a private copy of the variable store; the
    # OS disk first in the boot order (no PXE attempt on the NIC).
    cp "${fw%CODE_4M.fd}VARS_4M.fd" "$W/ovmf-vars.fd"
    machine=(-M q35 -cpu max
        -drive if=pflash,format=raw,unit=0,readonly=on,file="$fw"
        -drive if=pflash,format=raw,unit=1,file="$W/ovmf-vars.fd")
fi
t0=$(date +%s%3N)
"$QEMU" "${machine[@]}" -smp 1 -m 512M -nographic -no-reboot \
    -monitor unix:"$W/mon",server,nowait \
    -drive if=none,id=os,format=raw,file="$W/osdisk.img" -device virtio-blk-pci,drive=os,bootindex=0 \
    -drive if=none,id=ci,format=raw,file="$W/cloudinit" -device virtio-blk-pci,drive=ci \
    -netdev user,id=n0,net="${SEED_HOST_IP%.1}.0/24",host="$SEED_HOST_IP",hostfwd=tcp:127.0.0.1:"$sport"-"$SEED_GUEST_IP":22 \
    -device virtio-net-pci,netdev=n0,mac="$SEED_MAC",romfile= \
    </dev/null >"$W/serial.log" 2>&1 &
qpid=$!
cleanup() { kill "$qpid" "$lpid" 2>/dev/null || true; }
trap cleanup EXIT

rc=0
ok() { echo "  ok: $*"; }
bad() { echo "  FAIL: $*"; rc=1; }
n=0
while [ ! -s "$W/booted" ]; do
    kill -0 "$qpid" 2>/dev/null || break
    n=$((n + 1)); [ "$n" -le $((TIMEOUT * 5)) ] || break
    sleep 0.2
done
if [ -s "$W/booted" ]; then
    t1=$(cut -d' ' -f1 "$W/booted")
    ok "guest sent 'booted' to the host's listener $(( (t1 - t0) / 1000 )).$(( (t1 - t0) % 1000 / 100 )) s after QEMU started"
else
    bad "no 'booted' within ${TIMEOUT}s"
fi

askpass=$W/askpass
printf '#!/bin/sh\necho cloud123\n' >"$askpass"; chmod 755 "$askpass"
gssh() {
    SSH_ASKPASS=$askpass SSH_ASKPASS_REQUIRE=force DISPLAY=none timeout 60 \
        ssh -p "$sport" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
        -o PreferredAuthentications=password -o PubkeyAuthentication=no -o ConnectTimeout=20 \
        cloud@127.0.0.1 "$@" </dev/null
}
if [ "$rc" = 0 ]; then
    check() { # description expected command
        local out
        out=$(gssh "$3" 2>&1) || { bad "$1: '$3' failed: $out"; return; }
        if [ -z "$2" ] || echo "$out" | grep -qE -- "$2"; then ok "$1: $(echo "$out" | head -n1)"; else bad "$1: '$3' gave: $out"; fi
    }
    check "ssh cloud/cloud123 (password)" '^cloud$' 'whoami'
    check "cpu count (test_simple_launch_acpi)" '^1$' 'grep -c processor /proc/cpuinfo'
    check "MemTotal > 400000 kB" '^(4[0-9]{5}|[5-9][0-9]{5})$' 'grep MemTotal /proc/meminfo | grep -o "[0-9]*"'
    check "PCI host bridge class" '^0x060000$' 'cat /sys/bus/pci/devices/0000:00:00.0/class'
    check "sudo without password" '^root$' 'sudo -n whoami'
    check "sudo dmesg" 'Linux version' 'sudo dmesg | grep -m1 "Linux version"'
    check "dmesg needs sudo (dmesg_restrict)" '' 'dmesg >/dev/null 2>&1 && echo readable || echo restricted'
    check "GHES driver directory readable (test_ras_ghes_probe_acpi; no HEST under QEMU)" '^[0-9]+$' 'ls /sys/bus/platform/drivers/GHES/ 2>/dev/null | grep -c GHES || true'
    check "network as configured" "$SEED_GUEST_IP/25" 'ip -o addr show'
    check "boot log" 'ready' 'cat /run/ch-workload/boot.log'
    check "notify unit (systemctl shim)" '^inactive$' 'systemctl is-active notify-booted.service || true'
    check "PATH of ssh sessions" 'sbin' 'echo $PATH'
    check "scp target (scp binary)" 'scp' 'command -v scp'
    gssh 'sudo cat /run/ch-workload/boot.log' >"$W/guest-boot.log" 2>&1 || true
    # The power button (ACPI): QEMU's system_powerdown; the guest powers off.
    python3 - "$W/mon" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(0.3)
s.sendall(b"system_powerdown\n"); time.sleep(0.5)
PY
    n=0
    while kill -0 "$qpid" 2>/dev/null && [ "$n" -lt 300 ]; do sleep 0.2; n=$((n + 1)); done
    if kill -0 "$qpid" 2>/dev/null; then bad "power button: guest still running after 60 s"; else ok "power button: guest powered off"; fi
fi
if [ "$ARCH" = amd64 ]; then
    # CH's own x86 firmware runs only under CH: here only its file.
    chfw=${FS_DIR:-$ROOT/.lab/fullstack}/CLOUDHV.fd
    if [ ! -e "$chfw" ]; then
        echo "  note: $chfw not built (scripts/fullstack/build-firmware.sh --arch x86_64)"
    elif [ "$(stat -c %s "$chfw")" != 4194304 ]; then
        bad "CLOUDHV.fd: $(stat -c %s "$chfw") bytes, CloudHvX64 is 4 MiB (4194304)"
    elif [ "$(head -c4 "$chfw" | od -An -tx1 | tr -d ' ')" != 7f454c46 ]; then
        bad "CLOUDHV.fd: no ELF header (CH loads CloudHvX64 as a PVH ELF image)"
    else
        # CloudHvElfHeader.fdf.inc: an ELF image with a Xen PVH entry note
        # (XEN_ELFNOTE_PHYS32_ENTRY, type 0x12), the way CH loads it.
        pvh=
        command -v readelf >/dev/null && readelf -nW "$chfw" 2>/dev/null | grep -Eq 'Xen .*0x0*12\b' && pvh=", PVH entry note"
        ok "CLOUDHV.fd (CloudHvX64): 4194304 bytes, ELF$pvh, sha256 $(sha256sum "$chfw" | cut -d' ' -f1)"
    fi
fi
echo "---- guest console (ch-workload lines) ----"
grep -a 'ch-workload' "$W/serial.log" | tr -d '\r' | sed 's/^/  /' || true
echo "---- not applied from the seed ----"
if [ -s "$W/guest-boot.log" ]; then
    grep -a 'not applied' "$W/guest-boot.log" | sed 's/^/  /' || echo "  (nothing)"
else
    echo "  (boot log not read)"
fi
echo "---- guest boot log (uptime) ----"
sed 's/^/  /' "$W/guest-boot.log" 2>/dev/null || true
echo "logs: $W/serial.log $W/guest-boot.log"
[ "$rc" = 0 ] && echo "check-workload: PASS" || echo "check-workload: FAIL"
exit "$rc"
