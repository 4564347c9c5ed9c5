#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Build the L2 guest of the full-stack lab:
#   $FS_DIR/rastest              static aarch64 test program (tests/fullstack)
#   $FS_DIR/guest/initrd.gz      busybox + rastest + /init (console agent)
#   $FS_DIR/esp.img              MBR disk, one FAT32 ESP (type 0xEF) at 1 MiB
#                                holding Image.efi, initrd.gz, startup.nsh
#   $FS_DIR/esp-rasd.img         the same, its initramfs with Debian's arm64
#                                rasdaemon and ras-mc-ctl added (perl, DBI,
#                                DBD::SQLite, sqlite3, libtraceevent: the
#                                package's dependency closure from the
#                                archive, scripts/lib/debian-rootfs.sh);
#                                full-stack scenario 18. FS_RASD=0 skips it;
#                                a failure only warns (scenario 18 SKIPs).
# No root and no loop device: the MBR is written by Python, the FAT by
# `mkfs.vfat --offset`, the files by mtools (`-i img@@1M`).
#
# Inputs (environment): GUEST_KERNEL (arm64 Image with EFI stub; default:
# the lab's Debian 7.3 kernel), BUSYBOX (static arm64 busybox),
# GUEST_CMDLINE (kernel arguments after initrd=).
set -euo pipefail
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/inputs.sh"

# efi=debug: the kernel prints the UEFI memory map (scenario 9 checks the
# entry of the RAS error-source region).
GUEST_CMDLINE=${GUEST_CMDLINE:-console=ttyAMA0 quiet efi=debug}
fs_need_host gcc-aarch64-linux-gnu libc6-dev-arm64-cross cpio dosfstools mtools gzip
fs_inputs_guest   # sets GUEST_KERNEL, BUSYBOX

G=$FS_DIR/guest
mkdir -p "$G"

# 1. The test program.
aarch64-linux-gnu-gcc -static -O2 -Wall -Wextra -o "$FS_DIR/rastest" "$FS_ROOT/tests/fullstack/rastest.c"
aarch64-linux-gnu-strip "$FS_DIR/rastest"

# virtio_blk is a module in Debian's kernel: scenario 15's data disk needs
# it (/lib/virtio_blk.ko in the guest; no dependencies). The lab's fetcher
# keeps it next to the kernel (<kernel dir>/modules/virtio_blk.ko).
VBLK=$(dirname "$GUEST_KERNEL")/modules/virtio_blk.ko
[ -s "$VBLK" ] || fs_log "warning: no $VBLK (scenario 15 will fail)"

# 2. The guest initramfs.
R=$G/root
rm -rf "$R" && mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc,root}
cp "$BUSYBOX" "$R/bin/busybox"
ln -s busybox "$R/bin/sh"
cp "$FS_DIR/rastest" "$R/bin/rastest"
cp "$(dirname "$0")/guest-init.sh" "$R/init"
mkdir -p "$R/lib"; [ -s "$VBLK" ] && cp "$VBLK" "$R/lib/virtio_blk.ko"
chmod 755 "$R/init" "$R/bin/busybox" "$R/bin/rastest"
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --quiet --owner 0:0) | gzip -9n >"$G/initrd.gz"

# 3. The kernel as an EFI application (the arm64 Image is a PE/COFF EFI
# stub; a gzip'ed vmlinuz is unpacked first).
if [ "$(head -c2 "$GUEST_KERNEL" | od -An -tx1 | tr -d ' ')" = 1f8b ]; then
    gzip -dc "$GUEST_KERNEL" >"$G/Image.efi"
else
    cp "$GUEST_KERNEL" "$G/Image.efi"
fi
[ "$(head -c2 "$G/Image.efi")" = MZ ] || fs_die "$GUEST_KERNEL is not an EFI stub Image (no MZ header)"
printf 'fs0:\r\n\\Image.efi initrd=\\initrd.gz %s\r\n' "$GUEST_CMDLINE" >"$G/startup.nsh"

# 4. The ESP images.
# make_esp OUT INITRD: Image.efi + INITRD (as initrd.gz) + startup.nsh.
make_esp() {
    local out=$1 initrd=$2 kib mib img
    kib=$(( ( $(stat -c %s "$G/Image.efi") + $(stat -c %s "$initrd") ) / 1024 ))
    mib=$(( kib / 1024 + 16 ))
    [ "$mib" -ge 64 ] || mib=64     # FAT32 needs >= 65525 clusters
    img=$out.tmp
    rm -f "$img"
    truncate -s "${mib}M" "$img"
    python3 - "$img" "$mib" <<'PY'
import struct, sys
path, mib = sys.argv[1], int(sys.argv[2])
start = 2048                       # 1 MiB in 512-byte sectors
count = mib * 2048 - start
mbr = bytearray(512)
struct.pack_into("<I", mbr, 440, 0x52415321)   # disk signature
# status, CHS first (unused: 0xFFFFFE), type 0xEF (EFI system), CHS last,
# LBA of first sector, number of sectors
mbr[446:462] = struct.pack("<B3sB3sII", 0x80, b"\xfe\xff\xff", 0xEF, b"\xfe\xff\xff", start, count)
mbr[510:512] = b"\x55\xaa"
with open(path, "r+b") as f:
    f.write(mbr)
PY
    mkfs.vfat -F 32 -n ESP --offset 2048 "$img" $(( (mib - 1) * 1024 )) >/dev/null
    mcopy -i "$img@@1M" "$G/Image.efi" "$G/startup.nsh" ::/
    mcopy -i "$img@@1M" "$initrd" ::/initrd.gz
    mv "$img" "$out"
    echo "$mib"
}
mib=$(make_esp "$FS_DIR/esp.img" "$G/initrd.gz")
fs_log "guest ready: $FS_DIR/esp.img (${mib} MiB), kernel $(basename "$GUEST_KERNEL"), cmdline: $GUEST_CMDLINE"

# 5. Scenario 18's guest: the initramfs above plus rasdaemon's closure
# (Debian trixie, arm64), unpacked without maintainer scripts, /usr merged.
build_rasd() {
    local RR=$G/rasd-root debs
    fs_apt_config
    fs_apt_update
    debs=$(rootfs_download "$FS_APT" arm64 trixie rasdaemon) || return 1
    rm -rf "$RR"
    # shellcheck disable=SC2086 # one path a line, no spaces
    rootfs_unpack "$RR" $debs
    rootfs_merge_usr "$RR"
    rootfs_check_libs "$RR" || fs_log "warning: the rasdaemon tree misses libraries (above)"
    cp "$BUSYBOX" "$RR/usr/bin/busybox"
    ln -sf busybox "$RR/usr/bin/sh"
    cp "$FS_DIR/rastest" "$RR/usr/bin/rastest"
    cp "$(dirname "$0")/guest-init.sh" "$RR/init"
    mkdir -p "$RR"/{proc,sys,dev,tmp,root,run,var/lib/rasdaemon,usr/sbin}
    chmod 755 "$RR/init" "$RR/usr/bin/busybox" "$RR/usr/bin/rastest"
    (cd "$RR" && find . | LC_ALL=C sort | cpio -o -H newc --quiet --owner 0:0) | gzip -6n >"$G/initrd-rasd.gz"
    make_esp "$FS_DIR/esp-rasd.img" "$G/initrd-rasd.gz" >/dev/null
    fs_log "rasdaemon guest ready: $FS_DIR/esp-rasd.img ($(du -h "$G/initrd-rasd.gz" | cut -f1) initramfs, $(echo "$debs" | grep -c .) packages)"
}
if [ "${FS_RASD:-1}" = 1 ]; then
    # Rebuilt only when the kernel, rastest, /init, busybox or the startup
    # line changed (the packages are those of the archive's trixie).
    key=$(cat "$G/Image.efi" "$FS_DIR/rastest" "$(dirname "$0")/guest-init.sh" "$BUSYBOX" "$G/startup.nsh" | sha256sum | cut -c1-16)
    if [ -s "$FS_DIR/esp-rasd.img" ] && [ "$(cat "$FS_DIR/esp-rasd.key" 2>/dev/null)" = "$key" ]; then
        fs_log "rasdaemon guest up to date: $FS_DIR/esp-rasd.img"
    elif build_rasd; then
        echo "$key" >"$FS_DIR/esp-rasd.key"
    else
        rm -f "$FS_DIR/esp-rasd.img"; fs_log "warning: no rasdaemon guest (scenario 18 will SKIP)"
    fi
fi
