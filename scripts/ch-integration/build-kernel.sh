#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Build the x86_64 kernel that Cloud Hypervisor's integration tests boot
# directly (`--kernel $HOME/workloads/vmlinux-x86_64 --cmdline "root=/dev/vda1
# console=hvc0 rw ..."`, test_infra's direct_kernel_boot_path() and
# DIRECT_KERNEL_BOOT_CMDLINE): an uncompressed vmlinux with the PVH entry
# note, whose drivers for the workload's disk, network, console and file
# systems are built in (no initramfs), from Debian's linux-source package
# (the version of the workload's own kernel) fetched through the private
# APT configuration of build-workload.sh. Nothing of Linux is committed.
#
#   scripts/ch-integration/build-kernel.sh        # -> .lab/workload/vmlinux-x86_64
#
# Why a build: Debian's amd64 kernel has virtio_blk and ext4 as modules, so
# it cannot mount root=/dev/vda1 without an initramfs; CH's CI kernel has
# them built in. Configuration: x86_64_defconfig plus what the tests need
# (below; the RAS tests: APEI/GHES, memory failure, machine checks).
# Cached by the source version and the option list; ~15-25 min on 2 cores
# (niced), 150 MB download, ~1.5 GB of build tree (deleted after).
#
# Environment: WL_DIR (default .lab/workload), WORKLOAD_KERNEL_SUITE
# (default trixie-backports), KERNEL_JOBS (default nproc).
set -euo pipefail

. "$(dirname "$0")/workload-common.sh"
KSUITE=${WORKLOAD_KERNEL_SUITE:-trixie-backports}
ARCH=amd64
OUT=$WL_DIR/vmlinux-x86_64
log() { echo "build-kernel: $*" >&2; }
die() { echo "build-kernel: ERROR: $*" >&2; exit 1; }
[ $# -eq 0 ] || { echo "build-kernel: takes no arguments (see the environment above), not: $*" >&2; exit 2; }

# Built in on top of x86_64_defconfig. Each line: why.
OPTIONS=(
    PVH                       # CH loads an ELF vmlinux at its PVH entry
    VIRTIO_PCI VIRTIO_BLK     # root=/dev/vda1
    VIRTIO_NET                # the tests' tap network
    VIRTIO_CONSOLE            # console=hvc0
    EXT4_FS VFAT_FS NLS_CODEPAGE_437 NLS_ISO8859_1 # root, the CIDATA seed
    DEVTMPFS DEVTMPFS_MOUNT UNIX98_PTYS TMPFS      # busybox init, sshd
    ACPI_BUTTON               # power button -> acpid -> poweroff
    X86_MCE X86_MCE_AMD X86_MCE_INTEL              # machine checks (RAS)
    MEMORY_FAILURE            # the guest takes a poisoned page away
    ACPI_APEI ACPI_APEI_GHES ACPI_APEI_MEMORY_FAILURE # the HEST, GHES
)
KEY="linux-source-$KSUITE options=$(printf '%s ' "${OPTIONS[@]}" | sha256sum | cut -c1-16)"

mkdir -p "$WL_DIR"
exec 9>"$WL_DIR/.kernel.lock"
flock 9
wl_apt || die "no archive URI in $DEBIAN_SOURCES"
src=$(aptc apt-cache depends -t "$KSUITE" linux-source 2>/dev/null |
    awk '/Depends: linux-source-[0-9]/ { print $2; exit }')
[ -n "$src" ] || die "no linux-source in $KSUITE"
ver=$(aptc apt-cache policy -t "$KSUITE" "$src" | awk '/Candidate:/ { print $2 }')
KEY="$KEY $src=$ver"
if [ -s "$OUT" ] && [ "$(cat "$OUT.version" 2>/dev/null)" = "$KEY" ]; then
    log "cached: $OUT ($KEY)"
    echo "$OUT"
    exit 0
fi
need_host_packages make gcc bc bison flex libelf-dev libssl-dev xz-utils python3 ||
    die "cannot install the kernel build tools"

t0=$(date +%s)
deb=$(download "$src" "$KSUITE") && [ -s "$deb" ] || die "cannot download $src=$ver"
B=$WL_DIR/kernel-build
rm -rf "$B" && mkdir -p "$B"
log "unpacking $src $ver"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$B" --wildcards '*/linux-source-*.tar.xz'
tar -xJf "$B"/usr/src/linux-source-*.tar.xz -C "$B"
rm -rf "$B/usr"
S=$(echo "$B"/linux-source-*)
[ -d "$S" ] || die "no source tree in $B"
make -C "$S" -s x86_64_defconfig
for o in "${OPTIONS[@]}"; do "$S/scripts/config" --file "$S/.config" --enable "$o"; done
make -C "$S" -s olddefconfig
missing=
for o in "${OPTIONS[@]}"; do grep -q "^CONFIG_$o=y" "$S/.config" || missing="$missing $o"; done
[ -z "$missing" ] || die "not built in after olddefconfig:$missing"
log "building vmlinux ($src $ver, x86_64_defconfig + ${#OPTIONS[@]} options), ${KERNEL_JOBS:-$(nproc)} jobs"
nice make -C "$S" -s -j"${KERNEL_JOBS:-$(nproc)}" vmlinux >&2 || die "kernel build failed"
cp "$S/vmlinux" "$OUT.tmp"
strip --strip-debug "$OUT.tmp" 2>/dev/null || true
mv "$OUT.tmp" "$OUT"
echo "$KEY" >"$OUT.version"
krel=$(cat "$S/include/config/kernel.release")
rm -rf "$B"
log "built $OUT (Linux $krel, $(du -h "$OUT" | cut -f1)) in $(( $(date +%s) - t0 )) s"
echo "$OUT"
