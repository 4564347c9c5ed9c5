#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Full-stack lab: a patched Cloud Hypervisor in L1 (emulated arm64 with EL2
# and KVM) boots a real Debian arm64 kernel through CLOUDHV_EFI.fd (UEFI +
# ACPI/HEST) and survives real memory errors injected with
# hwpoison/corrupt-pfn on the host page behind a guest page.
#
#   scripts/fullstack/run.sh [--ch] CLOUD_HYPERVISOR [--ch-remote CH_REMOTE]
#                            [--only "1 2 ..."] [--timeout SECONDS]
#                            [--firmware CLOUDHV_EFI.fd]
#   scripts/fullstack/run.sh --selftest-l1
#       boots L1 without a VMM and checks the host-side poison path only
#       (hostpfn + corrupt-pfn + touch -> BUS_MCEERR_AR); no scenario runs.
#
# Without a Cloud Hypervisor binary: prints "SKIP: no Cloud Hypervisor
# binary" and exits 77 (nothing counted as passed). ch-remote defaults to
# the file named ch-remote next to the cloud-hypervisor binary. The firmware
# is build-firmware.sh's (with our edk2 patches) unless --firmware names one
# (e.g. FW_STOCK=1 build-firmware.sh's CLOUDHV_EFI-stock.fd, the negative
# control of scenario 9).
# Exit: 0 all scenarios passed, 1 a scenario failed or the lab broke, 77 skip.
#
# Inputs are cached under .lab/ (see build-firmware.sh, build-guest.sh,
# inputs.sh); the L1 kernel and busybox are those of scripts/lab.sh when it
# already fetched them. The CH option syntax lives in config.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/common.sh"
. "$FS_ROOT/scripts/lib/fullstack-host.sh"

CH_BIN=
CH_REMOTE=
ONLY=${ONLY:-}
L1_TIMEOUT=${L1_TIMEOUT:-5400}
L1_MEM=${L1_MEM:-3G}
SCEN_NAMES=("1 boot" "2 sync" "3 async" "4 two-vcpus" "5 reboot" "6 snapshot-restore" "7 drill" "8 baseline"
    "9 firmware-memmap" "10 hugetlb" "11 migrate-precopy" "12 migrate-postcopy" "13 no-silent-zero"
    "14 latent-poison" "15 device-io" "16 file-shared-reboot" "17 storm" "18 rasdaemon")
FW=${FIRMWARE:-}

while [ $# -gt 0 ]; do
    fullstack_opt "$@"
    if [ "$FS_SHIFT" -gt 0 ]; then shift "$FS_SHIFT"; continue; fi
    case "$1" in
        --firmware) FW=$2; shift 2 ;;
        --selftest-l1) SELFTEST=1; shift ;;
        -h|--help) sed -n '3,25p' "$0"; exit 0 ;;
        *) fs_die "unknown option $1" ;;
    esac
done

SELFTEST=${SELFTEST:-0}
if [ "$SELFTEST" = 0 ] && { [ -z "$CH_BIN" ] || [ ! -x "$CH_BIN" ]; }; then
    for s in "${SCEN_NAMES[@]}"; do echo "SKIP: scenario $s"; done
    echo "SKIP: no Cloud Hypervisor binary${CH_BIN:+ (not executable: $CH_BIN)}"
    echo "0 passed, 0 failed, ${#SCEN_NAMES[@]} skipped"
    exit 77
fi
if [ -n "$CH_BIN" ]; then
    fullstack_bins
    file -b "$CH_BIN" 2>/dev/null | grep -q 'ARM aarch64' || fs_log "warning: $CH_BIN does not look like an aarch64 binary"
fi

# 1. Inputs: firmware, guest (ESP), L1 kernel + hwpoison module + busybox.
if [ -n "$FW" ]; then
    [ -s "$FW" ] || fs_die "firmware $FW missing"
    FW=$(readlink -f "$FW")
else
    FW=$("$HERE/build-firmware.sh" | tail -n1)
fi
. "$HERE/inputs.sh"
fs_inputs_guest
"$HERE/build-guest.sh"
command -v qemu-system-aarch64 >/dev/null || fs_die "qemu-system-aarch64 missing (scripts/lab/fetch.sh installs it)"

# 2. The L1 initramfs.
L1=$FS_DIR/l1
R=$L1/root
initramfs_skeleton "$R" "$BUSYBOX" "$HERE/l1-init.sh"
mkdir -p "$R"/{proc,sys,dev,tmp,etc,fullstack}
cp "$HERE/l1-orchestrate.sh" "$HERE/l1-prodcases.sh" "$HERE/config.sh" "$R/fullstack/"
cp "$FS_ROOT/scripts/lib/fullstack-vm.sh" "$R/fullstack/fullstack-vm.sh"
[ -n "$CH_BIN" ] && cp "$CH_BIN" "$R/fullstack/cloud-hypervisor"
[ -n "$CH_REMOTE" ] && cp "$CH_REMOTE" "$R/fullstack/ch-remote"
cp "$FW" "$R/fullstack/CLOUDHV_EFI.fd"
cp "$FS_DIR/esp.img" "$R/fullstack/esp.img"
# Scenario 18's guest (rasdaemon), only when it runs.
if [ -s "$FS_DIR/esp-rasd.img" ] && { [ -z "$ONLY" ] || echo " $ONLY " | grep -q " 18 "; }; then
    cp "$FS_DIR/esp-rasd.img" "$R/fullstack/esp-rasd.img"
fi
cp "$FS_DIR/rastest" "$R/fullstack/rastest"
cp "$HWPOISON_KO" "$R/fullstack/hwpoison-inject.ko"
{
    printf 'ONLY=%q\nexport SELFTEST=%q\n' "$ONLY" "$SELFTEST"
    # Pass overrides of config.sh (environment) into L1.
    for v in RAS_FLAG RAS_OPTS RAS_OPTS_SYNC INJECT_MEM_ARGS INJECT_ARM_ARGS GUEST_MEM \
        GUEST_MEM_BYTES GUEST_RAM_BASE GUEST_CPUS MEM_BACKING CH_SERIAL BOOT_TIMEOUT BOOT_BENCH \
        RAS_REGION_BASE RAS_REGION_MAX FS_NEGATIVE STORM_OPTS STORM_SECS CH_EXTRA; do
        [ -n "${!v:-}" ] && printf 'export %s=%q\n' "$v" "${!v}"
    done
} >"$R/fullstack/run.env"
chmod 755 "$R/init" "$R/fullstack/"*.sh "$R/fullstack/rastest"
initramfs_build "$R" "$L1/initramfs.cpio.gz"
fs_log "L1 initramfs: $(du -h "$L1/initramfs.cpio.gz" | cut -f1); CH $CH_BIN; ch-remote ${CH_REMOTE:-none}; firmware $FW"

# 3. Boot L1 and run the scenarios.
LOG=$FS_DIR/run-$(date +%Y%m%d-%H%M%S).log
fs_log "booting L1 (log: $LOG, timeout ${L1_TIMEOUT}s)"
set +e
timeout "$L1_TIMEOUT" nice qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu max \
    -smp 2 -m "$L1_MEM" -nographic -no-reboot -nic none \
    -kernel "$L1_KERNEL" -initrd "$L1/initramfs.cpio.gz" \
    -append "console=ttyAMA0 panic=-1 quiet" </dev/null 2>&1 | sed -u 's/\r//g' | tee "$LOG" |
    grep --line-buffered -E '^(FULLSTACK|    )'
qrc=${PIPESTATUS[0]}
set -e
ln -sf "$(basename "$LOG")" "$FS_DIR/run-latest.log"
# File the per-VM logs the orchestrator dumped ("FSLOG <vm>/<file> <line>").
LOGDIR=${LOG%.log}
if grep -q '^FSLOG ' "$LOG"; then
    mkdir -p "$LOGDIR"
    awk -v dir="$LOGDIR" '/^FSLOG / {
        n = $2; gsub(/\//, "-", n); f = dir "/" n; line = $0; sub(/^FSLOG [^ ]+ /, "", line)
        print line > f }' "$LOG"
    fs_log "per-VM logs (guest serial, events, VMM stderr): $LOGDIR"
fi
if [ "$SELFTEST" = 1 ]; then
    n=$(grep -c '^FULLSTACK SELFTEST .*: ok' "$LOG" || true)
    echo "selftest: $n/2 ok (qemu status $qrc)"
    [ "$n" -eq 2 ]
    exit
fi

# 4. Verdict (from the L1 log only).
passed=$(grep -c '^FULLSTACK RESULT [0-9]* [^ ]* PASS' "$LOG" || true)
failed=$(grep -c '^FULLSTACK RESULT [0-9]* [^ ]* FAIL' "$LOG" || true)
skipped=$(grep -c '^FULLSTACK RESULT [0-9]* [^ ]* SKIP' "$LOG" || true)
echo "---- figures ----"
grep '^FULLSTACK FIGURE' "$LOG" | sed 's/^FULLSTACK FIGURE /  /' || echo "  (none)"
echo "---- results ----"
grep '^FULLSTACK RESULT' "$LOG" | sed 's/^FULLSTACK RESULT /  /' || true
if grep -q '^FULLSTACK SKIP' "$LOG"; then
    grep '^FULLSTACK SKIP' "$LOG" | sed 's/^FULLSTACK //'
    exit 77
fi
if ! grep -q '^FULLSTACK SUMMARY' "$LOG"; then
    echo "lab error: no summary from L1 (qemu status $qrc; 124 = timeout); see $LOG"
    failed=$((failed + 1))
fi
echo "$passed passed, $failed failed${skipped:+, $skipped skipped}"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
