#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Fetch everything the arm64 lab needs from the Debian archive, reusing the
# URIs of the machine's own /etc/apt/sources.list.d/debian.sources (no host
# name is written into any file of this repository).
#
#   - qemu-system-arm (and, in host-tools mode, qemu-user-static) (amd64,
#     installed) from <codename>-backports
#   - linux-image-arm64 (7.x) from trixie-backports and bookworm's 6.1 arm64
#     kernel, busybox-static:arm64: downloaded and unpacked with dpkg -x
#
# Output: $LAB_DIR/{k73,k61}/vmlinuz, .../hwpoison-inject.ko,
#         $LAB_DIR/busybox
#
# `fetch.sh host-tools` only installs the host's tools (QEMU system and
# user, the aarch64 cross compiler and static libc, cpio, xz): what
# building and checking Cloud Hypervisor for the lab needs (lab.sh
# --ch-src); nothing is installed when they are all there.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAB_DIR=${LAB_DIR:-$ROOT/.lab/lab}
APT_DIR=$LAB_DIR/apt
log() { echo "lab-fetch: $*" >&2; }

mkdir -p "$APT_DIR"/{lists/partial,archives/partial} "$LAB_DIR/debs"

. "$ROOT/scripts/lib/debian-archive.sh"

write_apt_config() {
    log "archive URI (from $DEBIAN_SOURCES): $(archive_uri)"
    # arm64 downloads (kernels, busybox) and the amd64 QEMU.
    private_apt "$APT_DIR" "bookworm bookworm-backports trixie trixie-backports" || exit 1
}
apt_arm64() { APT_CONFIG="$APT_DIR/apt.conf" "$@"; }

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
    [ ${#need[@]} -eq 0 ] && return 0
    log "installing ${need[*]} (QEMU from bookworm-backports)"
    local conf
    conf=$(host_backports_apt "$APT_DIR/host") || return 1
    install_from_backports "$conf" "${need[@]}"
}

# download <pkg>:arm64 [suite] -> path of the .deb in $LAB_DIR/debs
download() {
    local pkg=$1 suite=${2:-} d
    d=$(ls "$LAB_DIR/debs/${pkg}_"*_arm64.deb 2>/dev/null | head -n1 || true)
    if [ -z "$d" ]; then
        (cd "$LAB_DIR/debs" && apt_arm64 apt-get -q download ${suite:+-t "$suite"} "$pkg:arm64" >&2)
        d=$(ls "$LAB_DIR/debs/${pkg}_"*_arm64.deb | head -n1)
    fi
    echo "$d"
}

# The versioned image package a meta package depends on.
image_of() {
    local meta=$1 suite=$2
    apt_arm64 apt-cache depends -t "$suite" "$meta:arm64" 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { sub(/:arm64$/, "", $2); print $2; exit }'
}

fetch_kernel() {
    local name=$1 meta=$2 suite=$3 out=$LAB_DIR/$1
    if [ -s "$out/vmlinuz" ] && [ -s "$out/hwpoison-inject.ko" ]; then return 0; fi
    local img ver x
    img=$(image_of "$meta" "$suite")
    [ -n "$img" ] || { log "cannot resolve $meta in $suite"; exit 1; }
    ver=${img#linux-image-}
    ver=${ver%-unsigned}
    log "$name: $img ($ver)"
    x=$LAB_DIR/x-$name
    rm -rf "$x" && mkdir -p "$x" "$out"
    dpkg -x "$(download "$img" "$suite")" "$x"
    # 7.x splits the image: vmlinuz + config live in linux-binary-<ver>.
    if [ -z "$(find "$x" \( -path '*/boot/vmlinuz-*' -o -path '*/modules/*/vmlinuz' \) -print -quit)" ]; then
        dpkg -x "$(download "linux-binary-$ver" "$suite")" "$x"
    fi
    if [ -z "$(find "$x" -name 'hwpoison-inject.ko*' -print -quit)" ]; then
        dpkg -x "$(download "linux-modules-$ver" "$suite")" "$x"
    fi
    local vm
    vm=$(find "$x" \( -path '*/boot/vmlinuz-*' -o -path '*/modules/*/vmlinuz' \) -print -quit)
    cp "$vm" "$out/vmlinuz"
    local ko
    ko=$(find "$x" -name 'hwpoison-inject.ko*' -print -quit)
    case "$ko" in
        *.xz) xz -dc "$ko" >"$out/hwpoison-inject.ko" ;;
        *.zst) zstd -dc "$ko" >"$out/hwpoison-inject.ko" ;;
        *) cp "$ko" "$out/hwpoison-inject.ko" ;;
    esac
    echo "$ver" >"$out/version"
    rm -rf "$x"
    # The .debs are large (the modules package is ~100 MB): keep only what
    # the lab uses.
    rm -f "$LAB_DIR"/debs/linux-*
}

fetch_busybox() {
    [ -s "$LAB_DIR/busybox" ] && return 0
    local x=$LAB_DIR/x-busybox
    rm -rf "$x" && mkdir -p "$x"
    dpkg -x "$(download busybox-static bookworm)" "$x"
    cp "$x/bin/busybox" "$LAB_DIR/busybox"
    rm -rf "$x"
}

MODE=${1:-all}
case $MODE in
    all | host-tools) ;;
    *) echo "usage: $0 [all|host-tools]" >&2; exit 2 ;;
esac
install_host_tools
[ "$MODE" = host-tools ] && exit 0
write_apt_config
if [ ! -s "$LAB_DIR/k73/vmlinuz" ] || [ ! -s "$LAB_DIR/k61/vmlinuz" ] || [ ! -s "$LAB_DIR/busybox" ]; then
    log "updating private package lists"
    apt_arm64 apt-get -q update >/dev/null
fi
fetch_busybox
fetch_kernel k73 linux-image-arm64 trixie-backports
fetch_kernel k61 linux-image-arm64 bookworm
log "done: $(cat "$LAB_DIR/k73/version") and $(cat "$LAB_DIR/k61/version")"
