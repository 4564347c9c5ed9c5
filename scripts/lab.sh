#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The arm64 RAS lab, end to end (see docs/lab.md):
#   1. fetch QEMU, two arm64 kernels, busybox from the Debian archive
#      (scripts/lab/fetch.sh; cached under .lab/lab/);
#   2. build the ras_lab harness as a static aarch64 binary;
#   3. build one initramfs per kernel (busybox, harness, hwpoison-inject.ko);
#   4. boot L1 Linux in qemu-system-aarch64 (TCG, EL2) twice, the 7.x kernel
#      (KVM_CAP_ARM_SEA_TO_USER) and bookworm's 6.1 (without it), each running
#      every scenario; the harness runs an L2 bare-metal guest under KVM in L1;
#   5. parse the serial output; exit non-zero if any scenario failed.
#
# Usage: scripts/lab.sh [--ch CLOUD_HYPERVISOR [--ch-remote CH_REMOTE]]
#                      [--ch-src CH_CHECKOUT [--micro-http DIR]]
#                      [all|fetch|build|run|ch-build]
#   --ch: after the embedded lab, run the full-stack scenarios
#   (scripts/fullstack/run.sh) with that patched Cloud Hypervisor binary;
#   without it they print `SKIP: no Cloud Hypervisor binary` and count
#   neither as passed nor as failed.
#   --ch-src: build that binary (and ch-remote) first, static aarch64, from a
#   Cloud Hypervisor git checkout the user gives (only read: a scratch clone
#   under .lab/ch-build/src gets vendor-patches/main/ at its BASE) and use
#   it as --ch; cached per (BASE, patch files). Static x86_64 binaries of
#   the same tree are built too, and the x86 full stack
#   (scripts/fullstack-x86/run.sh) runs them after the arm64 one. --micro-http: a clone of
#   micro-http holding the commit CH's Cargo.lock locks (else cargo's git
#   cache; nothing is downloaded). `ch-build` only builds and checks them
#   (docs/series.md).
#   LAB_SCENARIOS (default all) and LAB_SCENARIOS_61 (default all)
#   choose what each kernel runs; LAB_KERNELS (default "k73 k61");
#   LAB_TIMEOUT per boot in seconds (default 600).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export LAB_DIR=${LAB_DIR:-$ROOT/.lab/lab}
TARGET=aarch64-unknown-linux-gnu
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/h-lab}
LAB_SCENARIOS=${LAB_SCENARIOS:-all}
LAB_SCENARIOS_61=${LAB_SCENARIOS_61:-all}
export LAB_KERNELS=${LAB_KERNELS:-k73 k61}
LAB_TIMEOUT=${LAB_TIMEOUT:-600}
log() { echo "lab: $*" >&2; }
# The kernels scripts/lab/fetch.sh knows (its suite_of): a misspelt one is
# refused here, not reported as "not fetched" (a skip).
for k in $LAB_KERNELS; do
    case $k in
        k73 | k61) ;;
        *) echo "lab: unknown kernel '$k' in LAB_KERNELS (allowed: k73 k61)" >&2; exit 2 ;;
    esac
done
. "$ROOT/scripts/lib/ch-series.sh"
. "$ROOT/scripts/lib/lab-common.sh"

fetch() {
    "$ROOT/scripts/lab/fetch.sh" "$@"
}

build() {
    command -v aarch64-linux-gnu-gcc >/dev/null || fetch host-tools || return 1
    if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
        rustup target add "$TARGET"
    fi
    log "building ras_lab for $TARGET (static)"
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
        RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
        nice cargo build --manifest-path "$ROOT/Cargo.toml" -p ras_lab \
        --target "$TARGET" --release
}

# initramfs KERNEL: its initramfs, or status 1 (run() is called in an
# && list, where `set -e` does not stop a failed step: each is checked).
initramfs() {
    local k=$1 d=$LAB_DIR/initramfs-$1
    initramfs_skeleton "$d" "$LAB_DIR/busybox" "$ROOT/scripts/lab/init.sh" &&
        cp "$CARGO_TARGET_DIR/$TARGET/release/ras_lab" "$d/ras_lab" &&
        cp "$LAB_DIR/$k/modules/hwpoison-inject.ko" "$d/hwpoison-inject.ko" &&
        initramfs_build "$d" "$LAB_DIR/initramfs-$k.cpio.gz" || return 1
    rm -rf "$d"
}

boot() {
    local k=$1 scen=$2 out=$LAB_DIR/serial-$1.log
    log "booting L1 $(cat "$LAB_DIR/$k/version") (scenarios: $scen), serial log $out"
    local t0=$SECONDS
    timeout --foreground -k 10 "$LAB_TIMEOUT" qemu-system-aarch64 \
        -M virt,virtualization=on,gic-version=3 -cpu max -smp 2 -m 2G \
        -nographic -no-reboot -nic none \
        -kernel "$LAB_DIR/$k/vmlinuz" -initrd "$LAB_DIR/initramfs-$k.cpio.gz" \
        -append "console=ttyAMA0 panic=-1 lab.scenarios=$scen" \
        </dev/null 2>&1 | tr -d '\r' | tee "$out" | grep -v '^\[ *[0-9.]*\] ' || true
    log "$k: QEMU finished after $((SECONDS - t0)) s"
}

# verdict <kernel>: 0 when the L1 run finished and reported no failure.
verdict() {
    local out=$LAB_DIR/serial-$1.log line rc
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n1 || true)
    rc=$(sed -n 's/^LAB-EXIT \([0-9]*\)$/\1/p' "$out" | tail -n1)
    if [ -z "$line" ] || [ -z "$rc" ]; then
        echo "$1: no result (L1 did not finish: see $out)"
        return 1
    fi
    echo "$1 ($(cat "$LAB_DIR/$1/version")): $line"
    [ "$rc" = 0 ]
}

run() {
    local k scen fail=0 t0=$SECONDS summary=()
    # A kernel not fetched, or fetched before its modules moved to
    # <kernel>/modules/, is a SKIP naming the step to run, not a cp error
    # halfway through.
    for k in $LAB_KERNELS; do
        [ -s "$LAB_DIR/$k/vmlinuz" ] && [ -s "$LAB_DIR/$k/modules/hwpoison-inject.ko" ] ||
            lab_skip "kernel $k not fetched into $LAB_DIR (run: scripts/lab.sh fetch)"
    done
    [ -s "$LAB_DIR/busybox" ] || lab_skip "busybox not fetched into $LAB_DIR (run: scripts/lab.sh fetch)"
    for k in $LAB_KERNELS; do
        case $k in
            k61) scen=$LAB_SCENARIOS_61 ;;
            *) scen=$LAB_SCENARIOS ;;
        esac
        initramfs "$k" || lab_die "cannot build the initramfs of $k (above)"
        boot "$k" "$scen"
        if s=$(verdict "$k"); then summary+=("PASS $s"); else summary+=("FAIL $s"); fail=1; fi
    done
    echo "=== lab summary ($((SECONDS - t0)) s of QEMU)"
    for k in $LAB_KERNELS; do
        grep -h '^RESULT ' "$LAB_DIR/serial-$k.log" | sed "s/^/  $k /" || true
    done
    # The measured figure: SIGBUS -> next KVM_RUN, as a ratio to a plain
    # KVM_SET_VCPU_EVENTS (wall time means little under TCG).
    for k in $LAB_KERNELS; do
        sed -n 's/^MEASURE .*ratio=\([0-9.]*\)$/\1/p' "$LAB_DIR/serial-$k.log" | sort -n |
            awk -v k="$k" '{ v[NR] = $1 } END { if (NR) printf "  %s measured: SIGBUS -> next KVM_RUN = %.0fx a plain KVM_SET_VCPU_EVENTS (median of %d errors, min %.0fx, max %.0fx)\n", k, v[int((NR + 1) / 2)], NR, v[1], v[NR] }'
    done
    printf '%s\n' "${summary[@]}"
    local np=0 nf=0 p f
    for k in $LAB_KERNELS; do
        read -r p f < <(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$LAB_DIR/serial-$k.log" | tail -n1) || true
        np=$((np + ${p:-0}))
        nf=$((nf + ${f:-0}))
    done
    [ "$fail" = 0 ] || [ "$nf" -gt 0 ] || nf=1 # a boot that did not finish
    echo "$np passed, $nf failed"
    return $fail
}

# fullstack: the full-stack scenarios with a patched Cloud Hypervisor (the
# arm64 one, and the x86 one when ch_build made x86_64 binaries too), or a
# SKIP line without one. Each prints its own summary line.
fullstack() {
    if [ -z "$CH_BIN" ]; then
        echo "SKIP: no Cloud Hypervisor binary (full-stack scenarios; give one with --ch)"
        return 0
    fi
    local rc=0
    "$ROOT/scripts/fullstack/run.sh" --ch "$CH_BIN" ${CH_REMOTE:+--ch-remote "$CH_REMOTE"} || rc=$?
    if [ -n "$CH_X86_DIR" ]; then
        "$ROOT/scripts/fullstack-x86/run.sh" --ch "$CH_X86_DIR/cloud-hypervisor" \
            --ch-remote "$CH_X86_DIR/ch-remote" || rc=$((rc ? rc : $?))
    fi
    return $rc
}

# ch_build: with --ch-src, the static aarch64 and x86_64 cloud-hypervisor
# and ch-remote of that checkout + vendor-patches/main/
# (scripts/lib/ch-series.sh; a rerun with the same base and patches is
# instant), run once (aarch64 under qemu-user).
ch_build() {
    [ -n "$CH_SRC" ] || return 0
    local d t0=$SECONDS
    fetch host-tools || return 1
    d=$(CHS_LOG_PREFIX=lab chs_build_static "$CH_SRC" "$MICRO_HTTP" main) || return 1
    log "Cloud Hypervisor (aarch64) ready in $((SECONDS - t0)) s: $d"
    CHS_LOG_PREFIX=lab chs_smoke "$d" || return 1
    CH_BIN=$d/cloud-hypervisor
    CH_REMOTE=$d/ch-remote
    t0=$SECONDS
    d=$(CHS_LOG_PREFIX=lab chs_build_static "$CH_SRC" "$MICRO_HTTP" main "$CHS_X86") || return 1
    log "Cloud Hypervisor (x86_64) ready in $((SECONDS - t0)) s: $d"
    CHS_LOG_PREFIX=lab chs_smoke "$d" "$CHS_X86" || return 1
    CH_X86_DIR=$d
}

usage() {
    echo "usage: $0 [--ch CLOUD_HYPERVISOR [--ch-remote CH_REMOTE]] [--ch-src CH_CHECKOUT [--micro-http DIR]] [all|fetch|build|run|ch-build]" >&2
    exit 2
}

CH_BIN= CH_REMOTE= CH_X86_DIR= CH_SRC= MICRO_HTTP= STEP=
while [ $# -gt 0 ]; do
    case $1 in
        --ch) CH_BIN=${2:?--ch needs the path of a cloud-hypervisor binary}; shift 2
              [ -x "$CH_BIN" ] || { echo "lab: $CH_BIN is not an executable" >&2; exit 2; } ;;
        --ch-remote) CH_REMOTE=${2:?--ch-remote needs the path of a ch-remote binary}; shift 2 ;;
        --ch-src) CH_SRC=${2:?--ch-src needs a Cloud Hypervisor git checkout}; shift 2
                  [ -d "$CH_SRC" ] || { echo "lab: $CH_SRC is not a directory" >&2; exit 2; } ;;
        --micro-http) MICRO_HTTP=${2:?--micro-http needs a micro-http git checkout}; shift 2 ;;
        all|fetch|build|run|ch-build) [ -z "$STEP" ] || usage; STEP=$1; shift ;;
        *) usage ;;
    esac
done
[ -z "$CH_SRC" ] || [ -z "$CH_BIN" ] || { echo "lab: --ch and --ch-src exclude each other" >&2; exit 2; }

case ${STEP:-all} in
    fetch) fetch ;;
    build) build && ch_build ;;
    run) ch_build && run && fullstack ;;
    all) fetch && build && ch_build && run && fullstack ;;
    ch-build) [ -n "$CH_SRC" ] || usage; ch_build ;;
esac
