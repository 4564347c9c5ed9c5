#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The x86 RAS lab, end to end (see docs/lab-x86.md):
#   1. fetch QEMU (qemu-system-x86 from bookworm-backports if missing), two
#      Debian amd64 kernels (bookworm's 6.1 and trixie-backports') with the
#      KVM modules (irqbypass, kvm, ccp, kvm-amd) and hwpoison-inject from
#      the same packages, and busybox-static, all from the Debian archive
#      (scripts/lib/lab-common.sh; cached under .lab/x86/);
#   2. build the ras_lab_x86 harness as a static x86_64 binary;
#   3. per kernel: an initramfs (busybox, harness, modules), then boot L1 in
#      qemu-system-x86_64 -M q35 -cpu max with TCG (never the host's
#      /dev/kvm); L1 loads kvm-amd (nested SVM under emulation) and the
#      harness runs its bare-metal L2 guests under that real KVM;
#   4. print every RESULT line, the timings, and `N passed, M failed`; exit
#      non-zero if a scenario failed or a boot did not finish.
#
# Usage: scripts/lab-x86.sh [all|fetch|build|run]
#   LAB_SCENARIOS    scenarios for every kernel (default all; see
#                    `ras_lab_x86 list`)
#   LAB_KERNELS      suites to take linux-image-amd64 from
#                    (default "bookworm trixie-backports")
#   LAB_TIMEOUT      seconds per boot (default 600)
#   LAB_X86_DIR      cache (default .lab/x86), CARGO_TARGET_DIR (default
#                    target/h-lab-x86)
# Exit status: 0 all passed, 1 a failure, 77 (with a `SKIP: <why>` line)
# when something needed is absent (no QEMU and no way to install it, no
# archive, no KVM in L1).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LAB_DIR=${LAB_X86_DIR:-$ROOT/.lab/x86}
LAB_LOG_PREFIX=lab-x86
. "$ROOT/scripts/lib/lab-common.sh"
TARGET=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/h-lab-x86}
LAB_SCENARIOS=${LAB_SCENARIOS:-all}
LAB_KERNELS=${LAB_KERNELS:-bookworm trixie-backports}
LAB_TIMEOUT=${LAB_TIMEOUT:-600}
SUITES="bookworm bookworm-backports trixie trixie-backports"
# A suite outside SUITES (the private APT configuration's) cannot be
# fetched: refused here, not reported as a download that failed (a skip).
for s in $LAB_KERNELS; do
    case " $SUITES " in
        *" $s "*) ;;
        *) echo "lab-x86: unknown suite '$s' in LAB_KERNELS (allowed: $SUITES)" >&2; exit 2 ;;
    esac
done
# What L1 loads (with their dependencies, from the modules' own
# .modinfo): kvm-amd -> kvm (-> irqbypass), ccp.
MODULES="kvm-amd hwpoison-inject"
HARNESS=$CARGO_TARGET_DIR/$TARGET/release/ras_lab_x86

apt_conf() { lab_apt_config "$LAB_DIR/apt" "$SUITES"; }

install_host_tools() {
    local need=()
    command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
    command -v cpio >/dev/null || need+=(cpio)
    command -v xz >/dev/null || need+=(xz-utils)
    lab_install_missing "$LAB_DIR/apt-host" "${need[@]}"
}

# fetch_kernel SUITE: $LAB_DIR/k-SUITE/{vmlinuz,version,modules/}.
fetch_kernel() {
    local suite=$1 conf
    conf=$(apt_conf)
    lab_kernel "$conf" "$LAB_DIR/debs" "$suite" amd64 "$LAB_DIR/k-$suite" $MODULES ||
        lab_fetch_failed $? "cannot fetch the $suite kernel (above)"
}

fetch_busybox() {
    [ -s "$LAB_DIR/busybox" ] && return 0
    local conf
    conf=$(apt_conf)
    lab_apt_update "$conf" || lab_skip "cannot reach the Debian archive (apt-get update failed)"
    lab_busybox "$conf" "$LAB_DIR/debs" amd64 "$LAB_DIR/busybox" ||
        lab_fetch_failed $? "cannot fetch busybox-static (above)"
}

fetch() {
    mkdir -p "$LAB_DIR"
    install_host_tools
    fetch_busybox
    local s
    for s in $LAB_KERNELS; do fetch_kernel "$s"; done
}

build() {
    command -v cargo >/dev/null || lab_skip "no cargo"
    lab_log "building ras_lab_x86 for $TARGET (static)"
    # --target: RUSTFLAGS then apply to the harness, not to proc macros.
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
        nice cargo build --manifest-path "$ROOT/Cargo.toml" -p ras_lab_x86 \
        --target "$TARGET" --release
    if command -v file >/dev/null && ! file "$HARNESS" | grep -q -E 'statically linked|static-pie linked'; then
        lab_log "warning: $HARNESS is not statically linked"
    fi
}

initramfs() {
    local k=$1 d=$LAB_DIR/initramfs-$1
    # Chained: run() is called in a condition, where set -e does not stop
    # a failed step (a stale initramfs would boot the old harness).
    initramfs_skeleton "$d" "$LAB_DIR/busybox" "$ROOT/scripts/lab/init-x86.sh" &&
        cp "$HARNESS" "$d/ras_lab_x86" &&
        cp -r "$LAB_DIR/k-$k/modules" "$d/modules" &&
        initramfs_build "$d" "$LAB_DIR/initramfs-$k.cpio.gz" || return 1
    rm -rf "$d"
}

# boot KERNEL: one L1 boot running the scenarios; sets BOOT_S.
BOOT_S=0
boot() {
    local k=$1 out=$LAB_DIR/serial-$1.log t0
    lab_log "booting L1 $(cat "$LAB_DIR/k-$k/version") ($k; scenarios: $LAB_SCENARIOS), serial log $out"
    t0=$(date +%s.%N)
    qemu_boot "$LAB_TIMEOUT" "$out" qemu-system-x86_64 \
        -accel tcg -M q35 -cpu max -smp 2 -m 2G \
        -nographic -no-reboot -nic none \
        -kernel "$LAB_DIR/k-$k/vmlinuz" -initrd "$LAB_DIR/initramfs-$k.cpio.gz" \
        -append "console=ttyS0 panic=-1 quiet lab.scenarios=$LAB_SCENARIOS"
    BOOT_S=$(echo "$(date +%s.%N) $t0" | awk '{ printf "%.1f", $1 - $2 }')
    lab_log "$k: QEMU finished after $BOOT_S s"
}

# timings KERNEL QEMU_S: one line of measured times.
timings() {
    local log=$LAB_DIR/serial-$1.log init end scen
    init=$(sed -n 's/^LAB-TIME init_uptime_s=\([0-9.]*\).*/\1/p' "$log" | head -n1)
    end=$(sed -n 's/^LAB-TIME end_uptime_s=\([0-9.]*\).*/\1/p' "$log" | head -n1)
    scen=$(sed -n 's/^TIME scenarios_total_s=\([0-9.]*\).*/\1/p' "$log" | head -n1)
    echo "$2 ${init:-?} ${end:-?} ${scen:-?}" | awk -v k="$1" '{
        boot = ($2 == "?" || $3 == "?") ? "?" : sprintf("%.1f", $1 - ($3 - $2));
        printf "  %s time: QEMU %s s in all; L1 boot to /init %s s (kernel uptime at /init %s s); scenarios %s s\n", k, $1, boot, $2, $4 }'
}

run() {
    local k fail=0 skip=0 t0=$SECONDS summary=() times=() rc line
    [ -x "$HARNESS" ] || lab_skip "no harness at $HARNESS (run: scripts/lab-x86.sh build)"
    [ -s "$LAB_DIR/busybox" ] || lab_skip "nothing fetched (run: scripts/lab-x86.sh fetch)"
    command -v qemu-system-x86_64 >/dev/null || lab_skip "no qemu-system-x86_64 (run: scripts/lab-x86.sh fetch)"
    for k in $LAB_KERNELS; do
        [ -s "$LAB_DIR/k-$k/vmlinuz" ] || lab_skip "kernel $k not fetched (run: scripts/lab-x86.sh fetch)"
        initramfs "$k" || lab_die "cannot build the initramfs of $k (above)"
        boot "$k"
        times+=("$(timings "$k" "$BOOT_S")")
        local out=$LAB_DIR/serial-$k.log
        if ! rc=$(lab_exit_status "$out") || ! line=$(verdict_line "$out"); then
            if [ "${rc:-}" = 77 ]; then
                summary+=("SKIP $k ($(cat "$LAB_DIR/k-$k/version")): $(grep -a -m1 -o 'SKIP: .*' "$out")")
                skip=$((skip + 1))
            else
                summary+=("FAIL $k: no result (L1 did not finish: see $out)")
                fail=1
            fi
            continue
        fi
        if [ "$rc" = 0 ]; then
            summary+=("PASS $k ($(cat "$LAB_DIR/k-$k/version")): $line")
        else
            summary+=("FAIL $k ($(cat "$LAB_DIR/k-$k/version")): $line")
            fail=1
        fi
    done
    echo "=== x86 lab summary ($((SECONDS - t0)) s for $(echo $LAB_KERNELS | wc -w) boots)"
    for k in $LAB_KERNELS; do
        result_lines "$LAB_DIR/serial-$k.log" "  $k "
    done
    printf '%s\n' "${times[@]}"
    grep -a -h '^MEASURE ' "$LAB_DIR"/serial-*.log | sed 's/^/  /' || true
    printf '%s\n' "${summary[@]}"
    local np=0 nf=0 p f
    for k in $LAB_KERNELS; do
        read -r p f < <(verdict_counts "$LAB_DIR/serial-$k.log")
        np=$((np + p))
        nf=$((nf + f))
    done
    [ "$fail" = 0 ] || [ "$nf" -gt 0 ] || nf=1 # a boot that did not finish
    echo "$np passed, $nf failed"
    if [ "$fail" = 0 ] && [ "$skip" -gt 0 ] && [ "$np" = 0 ]; then
        echo "SKIP: no kernel could run the scenarios"
        return 77
    fi
    return $fail
}

T_START=$SECONDS
case ${1:-all} in
    fetch) fetch ;;
    build) build ;;
    run) run ;;
    all)
        fetch
        build
        rc=0
        run || rc=$?
        echo "lab-x86: whole run (fetch, build, boots) $((SECONDS - T_START)) s"
        exit $rc
        ;;
    *) echo "usage: $0 [all|fetch|build|run]" >&2; exit 2 ;;
esac
