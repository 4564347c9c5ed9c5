#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# x86_64 full stack (docs/fullstack-x86.md): a static x86_64 Cloud
# Hypervisor inside L1 (Debian amd64 Linux with kvm-amd, nested SVM,
# booted in qemu-system-x86_64 -M q35 -cpu max under TCG, as
# scripts/lab-x86.sh does: never the host's /dev/kvm) runs a Linux L2
# guest by direct kernel boot and meets real poisoned pages
# (hwpoison/corrupt-pfn on the host page behind a guest page).
#
#   scripts/fullstack-x86/run.sh --ch CLOUD_HYPERVISOR [--ch-remote CH_REMOTE]
#       [--only "1 3"] [--timeout SECONDS] [--no-ras] [--ras-opts OPTS]
#       [--ras-sync-opts OPTS] [--suite SUITE]
#
#   --only         scenarios to run (default all: 1 boot, 2 consume,
#                  3 baseline, 4 ao, 5 two-vcpus, 6 reboot,
#                  7 snapshot-restore, 8 drill; 7 and 8 need ch-remote)
#   --timeout      seconds for the whole L1 boot (default 3600)
#   --no-ras       never pass --ras (scenario 1 boots without it; 2, 4-8 SKIP);
#                  by default --ras is used when `cloud-hypervisor --help`
#                  lists it (--ras is accepted and means that default)
#   --negative     negative control: scenarios 2 and 4-8 run, but their VMs
#                  get no --ras (with a VMM that recovers nothing they must
#                  FAIL; scenario 1 then boots without --ras)
#   --ras-opts     options after --ras for scenarios 1, 4 and 8 (default
#                  none: a bare --ras; 7 always uses --ras async=off)
#   --ras-sync-opts  the same for scenarios 2, 5 and 6 (default
#                  early_kill=off)
#   --suite        Debian suite of the L1 and L2 kernel (default
#                  trixie-backports; bookworm works too)
# Environment: FSX_DIR (cache, default .lab/fullstack-x86), LAB_X86_DIR
# (scripts/lab-x86.sh's cache, default .lab/x86), L1_MEM (3G), GUEST_MEM /
# GUEST_MEM_BYTES (256M / 0x10000000), GUEST_CPUS (1; scenarios 5 and 6
# always 2), GUEST_CMDLINE,
# BOOT_TIMEOUT (seconds for one L2 boot, 900), CH_EXTRA (extra VMM words,
# e.g. "--seccomp log"), FSX_TRACE=1 (scenario 2 prints the ioctls the
# VMM's threads issue around the error, from the L1 kernel's trace).
#
# Prints the evidence, one "RESULT <n> <name> PASS|FAIL|SKIP (...)" per
# scenario and "FULLSTACK-X86 SUMMARY N passed, M failed, K skipped".
# Exit: 0 all run scenarios passed, 1 a failure, 77 with "SKIP: <why>" when
# it cannot run here (no binary, no QEMU or archive, no KVM in L1).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAB_LOG_PREFIX=fullstack-x86
. "$ROOT/scripts/lib/lab-common.sh"
. "$ROOT/scripts/lib/fullstack-host.sh"

CH_BIN= CH_REMOTE= ONLY=${ONLY:-} L1_TIMEOUT=${L1_TIMEOUT:-3600} FSX_RAS=auto
SUITE=${FSX_SUITE:-trixie-backports}
FSX_DIR=${FSX_DIR:-$ROOT/.lab/fullstack-x86}
LAB_X86=${LAB_X86_DIR:-$ROOT/.lab/x86}
L1_MEM=${L1_MEM:-3G}
SCENARIOS=("1 boot" "2 consume" "3 baseline" "4 ao" "5 two-vcpus" "6 reboot" "7 snapshot-restore" "8 drill")

while [ $# -gt 0 ]; do
    fullstack_opt "$@"
    if [ "$FS_SHIFT" -gt 0 ]; then shift "$FS_SHIFT"; continue; fi
    case "$1" in
        --ras) FSX_RAS=auto; shift ;;
        --no-ras) FSX_RAS=off; shift ;;
        --negative) FSX_RAS=negative; shift ;;
        --ras-opts) export RAS_OPTS=$2; shift 2 ;;
        --ras-sync-opts) export RAS_OPTS_SYNC=$2; shift 2 ;;
        --suite) SUITE=$2; shift 2 ;;
        -h|--help) sed -n '3,42p' "$0"; exit 0 ;;
        *) lab_die "unknown option $1" ;;
    esac
done

if [ -z "$CH_BIN" ] || [ ! -x "$CH_BIN" ]; then
    for s in "${SCENARIOS[@]}"; do echo "RESULT $s SKIP (no Cloud Hypervisor binary)"; done
    echo "FULLSTACK-X86 SUMMARY 0 passed, 0 failed, ${#SCENARIOS[@]} skipped"
    lab_skip "no Cloud Hypervisor binary${CH_BIN:+ (not executable: $CH_BIN)} (give --ch BIN)"
fi
fullstack_bins
if command -v file >/dev/null; then
    file -b "$CH_BIN" | grep -q 'x86-64' || lab_die "$CH_BIN is not an x86_64 binary"
    file -b "$CH_BIN" | grep -qE 'statically linked|static-pie linked' ||
        lab_log "warning: $CH_BIN is not statically linked (L1 has no shared libraries)"
fi
case $ONLY in *[!0-9\ ]*) lab_die "--only takes scenario numbers (1-8), e.g. --only \"1 3\"" ;; esac

# 1. QEMU, the Debian amd64 kernel with kvm-amd + hwpoison-inject, busybox:
# scripts/lab-x86.sh's own fetch (its cache, .lab/x86; exits 77 with a
# SKIP line when it cannot).
T0=$SECONDS
rc=0
LAB_KERNELS=$SUITE LAB_X86_DIR=$LAB_X86 "$ROOT/scripts/lab-x86.sh" fetch || rc=$?
[ "$rc" = 0 ] || exit "$rc"
K=$LAB_X86/k-$SUITE
BUSYBOX=$LAB_X86/busybox
[ -s "$K/vmlinuz" ] && [ -s "$K/modules/modules.order" ] && [ -s "$BUSYBOX" ] ||
    lab_skip "scripts/lab-x86.sh fetch left no kernel for $SUITE in $K"
mkdir -p "$FSX_DIR"

# 2. rastest (tests/fullstack/rastest.c: the guest workload and the L1
# helpers), static x86_64.
RT=$FSX_DIR/rastest
lab_static_c "$ROOT/tests/fullstack/rastest.c" "$RT" ||
    lab_skip "cannot build a static rastest (apt-get install gcc libc6-dev)"

# kvmhold (scripts/fullstack-x86/kvmhold.c): one empty KVM VM held open in
# L1 for the whole run, so that the scenarios' VMs do not toggle the
# kernel's preempt-notifier static key (text patching of __schedule).
KH=$FSX_DIR/kvmhold
lab_static_c "$HERE/kvmhold.c" "$KH" ||
    lab_skip "cannot build a static kvmhold (apt-get install gcc libc6-dev linux-libc-dev)"

# 3. The L2 guest's initramfs: busybox, rastest, the console agent of the
# arm64 full stack (scripts/fullstack/guest-init.sh, architecture-neutral).
G=$FSX_DIR/guest
initramfs_skeleton "$G" "$BUSYBOX" "$ROOT/scripts/fullstack/guest-init.sh"
mkdir -p "$G"/{sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root}
install -m 0755 "$RT" "$G/bin/rastest"
initramfs_build "$G" "$FSX_DIR/initrd.gz"
rm -rf "$G"

# 4. The L1 initramfs.
R=$FSX_DIR/l1
initramfs_skeleton "$R" "$BUSYBOX" "$HERE/l1-init.sh"
mkdir -p "$R"/{proc,sys,dev,tmp,fullstack}
cp -r "$K/modules" "$R/modules"
install -m 0755 "$HERE/l1-orchestrate.sh" "$CH_BIN" "$RT" "$KH" "$R/fullstack/"
[ "$(basename "$CH_BIN")" = cloud-hypervisor ] || mv "$R/fullstack/$(basename "$CH_BIN")" "$R/fullstack/cloud-hypervisor"
[ -n "$CH_REMOTE" ] && install -m 0755 "$CH_REMOTE" "$R/fullstack/ch-remote"
install -m 0644 "$ROOT/scripts/lib/fullstack-vm.sh" "$R/fullstack/fullstack-vm.sh"
cp "$K/vmlinuz" "$R/fullstack/vmlinuz"
cp "$FSX_DIR/initrd.gz" "$R/fullstack/initrd.gz"
{
    printf 'ONLY=%q\nexport FSX_RAS=%q\n' "$ONLY" "$FSX_RAS"
    for v in RAS_FLAG RAS_OPTS RAS_OPTS_SYNC GUEST_MEM GUEST_MEM_BYTES GUEST_CPUS GUEST_CMDLINE \
        BOOT_TIMEOUT CH_SERIAL CH_EXTRA FSX_TRACE; do
        [ -n "${!v+x}" ] && printf 'export %s=%q\n' "$v" "${!v}"
    done
} >"$R/fullstack/run.env"
initramfs_build "$R" "$FSX_DIR/l1.cpio.gz"
rm -rf "$R"
lab_log "L1 initramfs $(du -h "$FSX_DIR/l1.cpio.gz" | cut -f1); kernel $(cat "$K/version") (L1 and L2); CH $CH_BIN; ch-remote ${CH_REMOTE:-none}; inputs ready after $((SECONDS - T0)) s"

# 5. Boot L1 (TCG, as scripts/lab-x86.sh) and run the scenarios.
command -v qemu-system-x86_64 >/dev/null || lab_skip "no qemu-system-x86_64"
LOG=$FSX_DIR/run-$(date +%Y%m%d-%H%M%S).log
lab_log "booting L1 (log: $LOG, timeout ${L1_TIMEOUT} s, scenarios: ${ONLY:-all})"
t_q=$EPOCHREALTIME
L1_UP_S=
set +e
timeout --foreground -k 10 "$L1_TIMEOUT" nice qemu-system-x86_64 \
    -accel tcg -M q35 -cpu max -smp 2 -m "$L1_MEM" \
    -nographic -no-reboot -nic none \
    -kernel "$K/vmlinuz" -initrd "$FSX_DIR/l1.cpio.gz" \
    -append "console=ttyS0 panic=-1 quiet" </dev/null 2>&1 | sed -u 's/\r//g' | {
    while IFS= read -r line; do
        # The firmware's and kernel's console escapes can precede a line.
        case $line in FULLSTACK-X86*) ;; *FULLSTACK-X86*) line=FULLSTACK-X86${line#*FULLSTACK-X86} ;; esac
        printf '%s\n' "$line" >>"$LOG"
        case $line in
            "FULLSTACK-X86 L1 up"*)
                echo "FULLSTACK-X86 TIME host_qemu_start_to_l1_init_s=$(echo "$EPOCHREALTIME $t_q" | awk '{ printf "%.1f", $1 - $2 }')" | tee -a "$LOG" ;;
        esac
        case $line in FULLSTACK-X86*|"    "*) printf '%s\n' "$line" ;; esac
    done
}
qrc=${PIPESTATUS[0]}
set -e
QEMU_S=$(echo "$EPOCHREALTIME $t_q" | awk '{ printf "%.1f", $1 - $2 }')
ln -sf "$(basename "$LOG")" "$FSX_DIR/run-latest.log"
LOGDIR=${LOG%.log}
if grep -q '^FSLOG ' "$LOG"; then
    mkdir -p "$LOGDIR"
    awk -v dir="$LOGDIR" '/^FSLOG / {
        n = $2; gsub(/\//, "-", n); line = $0; sub(/^FSLOG [^ ]+ /, "", line)
        print line > (dir "/" n) }' "$LOG"
    lab_log "per-VM logs (guest serial, events, VMM stderr): $LOGDIR"
fi

# 6. Verdict, from the L1 log.
echo "---- times ----"
grep -a '^FULLSTACK-X86 TIME' "$LOG" | sed 's/^FULLSTACK-X86 TIME /  /' || true
echo "  qemu_total_s=$QEMU_S (status $qrc; 124 = timeout)"
echo "---- results ----"
if grep -aq '^FULLSTACK-X86 SKIP' "$LOG"; then
    grep -a -m1 '^FULLSTACK-X86 SKIP' "$LOG" | sed 's/^FULLSTACK-X86 //'
    exit 77
fi
grep -a '^FULLSTACK-X86 RESULT' "$LOG" | sed 's/^FULLSTACK-X86 //' | sort -n -k2 || true
passed=$(grep -ac '^FULLSTACK-X86 RESULT [0-9]* [^ ]* PASS' "$LOG" || true)
failed=$(grep -ac '^FULLSTACK-X86 RESULT [0-9]* [^ ]* FAIL' "$LOG" || true)
skipped=$(grep -ac '^FULLSTACK-X86 RESULT [0-9]* [^ ]* SKIP' "$LOG" || true)
if ! grep -aq '^FULLSTACK-X86 SUMMARY' "$LOG"; then
    echo "lab error: no summary from L1 (qemu status $qrc; 124 = timeout); see $LOG"
    failed=$((failed + 1))
fi
echo "FULLSTACK-X86 SUMMARY $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || exit 1
[ "$passed" -gt 0 ] || { echo "SKIP: every scenario skipped"; exit 77; }
exit 0
