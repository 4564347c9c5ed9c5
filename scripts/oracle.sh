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
# Everything is cached under .lab/oracle/ (gitignored).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LAB="${ORACLE_LAB:-$ROOT/.lab/oracle}"
# Pinned guest kernel (bookworm). "already poisoned" messages differ between
# 6.1 and 6.12: the scenarios match the 6.1 wording.
KERNEL_PKG="${ORACLE_KERNEL_PKG:-linux-image-6.1.0-50-amd64}"
KERNEL_VER="${ORACLE_KERNEL_VER:-6.1.176-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/h-oracle}"

log() { printf 'oracle.sh: %s\n' "$*" >&2; }

. "$ROOT/scripts/lib/debian-archive.sh"

# Packages come through a private APT configuration: the machine's own
# debian.sources plus bookworm-backports (scripts/lib/debian-archive.sh).
setup_packages() {
	local conf
	conf=$(host_backports_apt "$LAB/apt") || { log "no Debian archive URI in $DEBIAN_SOURCES"; return 1; }
	APT_OPTS=(-c "$conf")
	local need=()
	command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
	command -v cpio >/dev/null || need+=(cpio)
	command -v gcc >/dev/null || need+=(gcc libc6-dev)
	[[ -e /usr/lib/x86_64-linux-gnu/libc.a ]] || need+=(libc6-dev)
	# The lists are updated once: by the install when there is one (it
	# updates first), else here; the kernel downloads below read them.
	if ((${#need[@]})); then
		log "installing ${need[*]} (qemu-system-x86 from bookworm-backports)"
		install_from_backports "$conf" "${need[@]}" || { log "could not install ${need[*]}"; return 1; }
		touch "$LAB/apt/.updated"
	elif [[ ! -e "$LAB/apt/.updated" ]]; then
		log "apt-get update"
		apt-get "${APT_OPTS[@]}" update -qq
		touch "$LAB/apt/.updated"
	fi
	mkdir -p "$LAB/debs"
	if [[ ! -e "$LAB/kernel/vmlinuz" ]]; then
		log "downloading $KERNEL_PKG"
		(cd "$LAB/debs" && apt-get "${APT_OPTS[@]}" download -qq "$KERNEL_PKG=$KERNEL_VER")
		rm -rf "$LAB/kernel.x" && mkdir -p "$LAB/kernel.x" "$LAB/kernel"
		dpkg -x "$LAB"/debs/"${KERNEL_PKG}"_*.deb "$LAB/kernel.x"
		cp "$LAB"/kernel.x/boot/vmlinuz-* "$LAB/kernel/vmlinuz"
		cp "$LAB"/kernel.x/boot/config-* "$LAB/kernel/config"
		rm -rf "$LAB/kernel.x"
		echo "$KERNEL_PKG" >"$LAB/kernel/PACKAGE"
	fi
	if [[ ! -e "$LAB/busybox" ]]; then
		log "downloading busybox-static"
		(cd "$LAB/debs" && apt-get "${APT_OPTS[@]}" download -qq busybox-static)
		rm -rf "$LAB/bb.x" && mkdir -p "$LAB/bb.x"
		dpkg -x "$LAB"/debs/busybox-static_*.deb "$LAB/bb.x"
		cp "$LAB/bb.x/bin/busybox" "$LAB/busybox"
		rm -rf "$LAB/bb.x"
	fi
}

setup_initramfs() {
	local src="$ROOT/tests/oracle"
	local out="$LAB/initramfs.cpio.gz"
	if [[ -e "$out" && "$out" -nt "$src/workload.c" && "$out" -nt "$src/init" && "$out" -nt "$LAB/busybox" ]]; then
		return 0
	fi
	log "building initramfs"
	local d="$LAB/initramfs"
	rm -rf "$d" && mkdir -p "$d"/{bin,sbin,proc,sys,dev,tmp}
	cp "$LAB/busybox" "$d/bin/busybox"
	ln -s busybox "$d/bin/sh"
	mknod "$d/dev/console" c 5 1 2>/dev/null || true
	gcc -static -O2 -Wall -o "$d/bin/workload" "$src/workload.c"
	cp "$src/init" "$d/init"
	chmod +x "$d/init"
	(cd "$d" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
	mv "$out.tmp" "$out"
}

cmd_setup() {
	mkdir -p "$LAB"
	setup_packages
	setup_initramfs
	log "building ras_oracle"
	(cd "$ROOT" && nice cargo build -q -p ras_oracle)
}

cmd_run() {
	# timeout signals its whole process group: QEMU goes down with the test.
	timeout "${ORACLE_TIMEOUT:-900}" "$CARGO_TARGET_DIR/debug/ras_oracle" \
		--qemu "$(command -v qemu-system-x86_64)" \
		--kernel "$LAB/kernel/vmlinuz" \
		--initrd "$LAB/initramfs.cpio.gz" \
		--work "$LAB/run" "$@"
}

case "${1:-all}" in
setup) cmd_setup ;;
run) shift; cmd_run "$@" ;;
all) shift || true; cmd_setup; cmd_run "$@" ;;
*) log "usage: $0 [setup|run|all] [ras_oracle args]"; exit 2 ;;
esac
