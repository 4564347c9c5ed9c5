#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Build the L2 guest of the full-stack lab:
#   $FS_DIR/rastest              static aarch64 test program (tests/fullstack)
#   $FS_DIR/guest/initrd.gz      busybox + rastest + /init (console agent)
#   $FS_DIR/esp.img              MBR disk, one FAT32 ESP (type 0xEF) at 1 MiB
#                                holding Image.efi, initrd.gz, startup.nsh
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

# 2. The guest initramfs.
R=$G/root
rm -rf "$R" && mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc,root}
cp "$BUSYBOX" "$R/bin/busybox"
ln -s busybox "$R/bin/sh"
cp "$FS_DIR/rastest" "$R/bin/rastest"
cp "$(dirname "$0")/guest-init.sh" "$R/init"
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

# 4. The ESP image.
kib=$(( ( $(stat -c %s "$G/Image.efi") + $(stat -c %s "$G/initrd.gz") ) / 1024 ))
mib=$(( kib / 1024 + 16 ))
[ "$mib" -ge 64 ] || mib=64     # FAT32 needs >= 65525 clusters
IMG=$FS_DIR/esp.img.tmp
rm -f "$IMG"
truncate -s "${mib}M" "$IMG"
python3 - "$IMG" "$mib" <<'PY'
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
mkfs.vfat -F 32 -n ESP --offset 2048 "$IMG" $(( (mib - 1) * 1024 )) >/dev/null
mcopy -i "$IMG@@1M" "$G/Image.efi" "$G/initrd.gz" "$G/startup.nsh" ::/
mv "$IMG" "$FS_DIR/esp.img"
fs_log "guest ready: $FS_DIR/esp.img (${mib} MiB), kernel $(basename "$GUEST_KERNEL"), cmdline: $GUEST_CMDLINE"
