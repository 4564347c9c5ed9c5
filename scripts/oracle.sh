#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The guest oracle: a stock Debian amd64 kernel under QEMU TCG consumes the
# HEST and CPER records that the `ras` engine produces, and the test binary
# `ras_oracle` checks what the guest logs. See docs/oracle.md.
#
#   scripts/oracle.sh            setup (idempotent) + run all scenarios
#   scripts/oracle.sh setup      only install / download / build the guest
#   scripts/oracle.sh run [ARGS] only run (ARGS go to ras_oracle)
#
# Needs root for apt-get (setup). Never uses /dev/kvm (-accel tcg).
# Everything is cached under .lab/oracle/ (gitignored). The package
# installation, downloads and initramfs assembly are the labs' own
# (scripts/lib/lab-common.sh); ras_oracle boots QEMU and reads the verdicts.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LAB_DIR="${ORACLE_LAB:-$ROOT/.lab/oracle}"
# Pinned guest kernel (bookworm). "already poisoned" messages differ between
# 6.1 and 6.12: the scenarios match the 6.1 wording.
KERNEL_PKG="${ORACLE_KERNEL_PKG:-linux-image-6.1.0-50-amd64}"
KERNEL_VER="${ORACLE_KERNEL_VER:-6.1.176-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/h-oracle}"

LAB_LOG_PREFIX=oracle
. "$ROOT/scripts/lib/lab-common.sh"

# Packages come through a private APT configuration: the machine's own
# debian.sources plus bookworm-backports (scripts/lib/debian-archive.sh).
apt_conf() { host_backports_apt "$LAB_DIR/apt"; }

install_host_tools() {
    local need=()
    command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
    command -v cpio >/dev/null || need+=(cpio)
    command -v gcc >/dev/null || need+=(gcc)
    [ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
    lab_install_missing "$LAB_DIR/apt" "${need[@]}"
}

# fetch_guest: $LAB_DIR/kernel/{vmlinuz,config} of the pinned kernel
# (PACKAGE names it: another ORACLE_KERNEL_PKG/_VER fetches again), and
# $LAB_DIR/busybox.
fetch_guest() {
    local conf debs x=$LAB_DIR/x want="$KERNEL_PKG=$KERNEL_VER" have_kernel=
    if [ -s "$LAB_DIR/kernel/vmlinuz" ] && [ "$(cat "$LAB_DIR/kernel/PACKAGE" 2>/dev/null)" = "$want" ]; then
        have_kernel=1
    fi
    if [ -n "$have_kernel" ] && [ -s "$LAB_DIR/busybox" ]; then return 0; fi
    conf=$(apt_conf) || lab_skip "no Debian archive URI in $DEBIAN_SOURCES"
    lab_apt_update "$conf" || lab_skip "cannot reach the Debian archive (apt-get update failed)"
    if [ -z "$have_kernel" ]; then
        lab_log "downloading $KERNEL_PKG $KERNEL_VER"
        debs=$(fetch_debs "$conf" "$LAB_DIR/debs" bookworm amd64 "$want") ||
            lab_die "cannot download $KERNEL_PKG $KERNEL_VER (ORACLE_KERNEL_PKG, ORACLE_KERNEL_VER)"
        rm -rf "$x" "$LAB_DIR/kernel" && mkdir -p "$LAB_DIR/kernel"
        deb_extract $debs "$x"
        cp "$(kernel_image "$x")" "$LAB_DIR/kernel/vmlinuz"
        cp "$x"/boot/config-* "$LAB_DIR/kernel/config"
        echo "$want" >"$LAB_DIR/kernel/PACKAGE"
        rm -rf "$x"
    fi
    if [ ! -s "$LAB_DIR/busybox" ]; then
        lab_log "downloading busybox-static"
        lab_busybox "$conf" "$LAB_DIR/debs" amd64 "$LAB_DIR/busybox" ||
            lab_die "cannot download busybox-static"
    fi
}

# build_initramfs: busybox, /init (tests/oracle/init) and the workload,
# rebuilt when one of them is newer than the archive.
build_initramfs() {
    local src=$ROOT/tests/oracle out=$LAB_DIR/initramfs.cpio.gz d=$LAB_DIR/initramfs
    lab_static_c "$src/workload.c" "$LAB_DIR/workload" || lab_die "cannot build $src/workload.c"
    if [ -e "$out" ] && [ "$out" -nt "$LAB_DIR/workload" ] && [ "$out" -nt "$src/init" ] &&
        [ "$out" -nt "$LAB_DIR/busybox" ]; then
        return 0
    fi
    lab_log "building initramfs"
    initramfs_skeleton "$d" "$LAB_DIR/busybox" "$src/init"
    mkdir -p "$d/proc" "$d/sys" "$d/dev" "$d/tmp"
    mknod "$d/dev/console" c 5 1 2>/dev/null || true
    cp "$LAB_DIR/workload" "$d/bin/workload"
    initramfs_build "$d" "$out"
    rm -rf "$d"
}

cmd_setup() {
    mkdir -p "$LAB_DIR"
    install_host_tools
    fetch_guest
    build_initramfs
    lab_log "building ras_oracle"
    (cd "$ROOT" && nice cargo build -q -p ras_oracle)
}

cmd_run() {
    # timeout signals its whole process group: QEMU goes down with the test.
    timeout "${ORACLE_TIMEOUT:-900}" "$CARGO_TARGET_DIR/debug/ras_oracle" \
        --qemu "$(command -v qemu-system-x86_64)" \
        --kernel "$LAB_DIR/kernel/vmlinuz" \
        --initrd "$LAB_DIR/initramfs.cpio.gz" \
        --work "$LAB_DIR/run" "$@"
}

case "${1:-all}" in
    setup) cmd_setup ;;
    run) shift; cmd_run "$@" ;;
    all) shift || true; cmd_setup; cmd_run "$@" ;;
    *) lab_log "usage: $0 [setup|run|all] [ras_oracle args]"; exit 2 ;;
esac
