#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Fetch everything the arm64 lab needs from the Debian archive, through
# scripts/lib/lab-common.sh (the archive URI is the machine's own: no host
# name is written into any file of this repository).
#
#   - host tools: qemu-system-arm (and, in host-tools mode,
#     qemu-user-static) from bookworm-backports when missing, cpio, xz, the
#     aarch64 cross compiler and static libc
#   - the arm64 kernels of LAB_KERNELS (default "k73 k61": linux-image-arm64
#     of trixie-backports, 7.x, and of bookworm, 6.1) with the modules the
#     lab and the full stack load, and busybox-static:arm64
#
# Output: $LAB_DIR/<kernel>/{vmlinuz,version,modules/} (modules/ holds
#         hwpoison-inject.ko, virtio_blk.ko and modules.order),
#         $LAB_DIR/busybox
#
# `fetch.sh host-tools` only installs the host's tools: what building and
# checking Cloud Hypervisor for the lab needs (lab.sh --ch-src); nothing is
# installed when they are all there.
#
# Exit status: 0, 1 on a failure, 77 (`SKIP: <why>`) when the tools cannot
# be installed or the archive cannot be reached.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAB_DIR=${LAB_DIR:-$ROOT/.lab/lab}
LAB_KERNELS=${LAB_KERNELS:-k73 k61}
LAB_LOG_PREFIX=lab-fetch
. "$ROOT/scripts/lib/lab-common.sh"
# What L1 loads: hwpoison-inject (the lab), virtio_blk (the full stack's
# guest, scenario 15's data disk).
MODULES="hwpoison-inject virtio_blk"

install_host_tools() {
    local need=()
    command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
    # host-tools mode (lab.sh --ch-src): the static Cloud Hypervisor it
    # builds runs once under qemu-user before it is used (chs_smoke).
    if [ "$MODE" = host-tools ]; then
        command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
    fi
    command -v cpio >/dev/null || need+=(cpio)
    command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
    [ -e /usr/aarch64-linux-gnu/lib/libc.a ] || need+=(libc6-dev-arm64-cross)
    command -v xz >/dev/null || need+=(xz-utils)
    lab_install_missing "$LAB_DIR/apt-host" "${need[@]}"
}

# suite_of KERNEL: the suite whose linux-image-arm64 a lab kernel is.
suite_of() {
    case $1 in
        k73) echo trixie-backports ;;
        k61) echo bookworm ;;
        *) lab_die "unknown lab kernel '$1' in LAB_KERNELS (allowed: k73 k61)" ;;
    esac
}

MODE=${1:-all}
case $MODE in
    all | host-tools) ;;
    *) echo "usage: $0 [all|host-tools]" >&2; exit 2 ;;
esac
for k in $LAB_KERNELS; do suite_of "$k" >/dev/null; done
install_host_tools
[ "$MODE" = host-tools ] && exit 0
conf=$(lab_apt_config "$LAB_DIR/apt" "bookworm bookworm-backports trixie trixie-backports") ||
    lab_skip "no Debian archive URI in $DEBIAN_SOURCES"
if [ ! -s "$LAB_DIR/busybox" ]; then
    lab_apt_update "$conf" || lab_skip "cannot reach the Debian archive (apt-get update failed)"
    lab_busybox "$conf" "$LAB_DIR/debs" arm64 "$LAB_DIR/busybox" ||
        lab_fetch_failed $? "cannot fetch busybox-static (above)"
fi
for k in $LAB_KERNELS; do
    lab_kernel "$conf" "$LAB_DIR/debs" "$(suite_of "$k")" arm64 "$LAB_DIR/$k" $MODULES ||
        lab_fetch_failed $? "cannot fetch the $k kernel (above)"
done
lab_log "done: $(for k in $LAB_KERNELS; do printf '%s=%s ' "$k" "$(cat "$LAB_DIR/$k/version")"; done)"
