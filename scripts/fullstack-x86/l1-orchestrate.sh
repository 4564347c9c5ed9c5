#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# x86 full-stack scenarios, run inside L1 (busybox sh, as root, kvm-amd
# loaded, debugfs hwpoison/corrupt-pfn). Layout (made by run.sh):
#   $FSD/cloud-hypervisor  $FSD/ch-remote (optional)  $FSD/rastest
#   $FSD/vmlinuz (the L2 guest kernel, a bzImage)  $FSD/initrd.gz (busybox,
#   rastest, the console agent)  $FSD/fullstack-vm.sh  $FSD/run.env
# The L2 guest boots by direct kernel boot (--kernel/--initramfs/--cmdline)
# with its serial port on the VMM's terminal (--serial tty --console off).
#
# Scenarios (ONLY="1 3" selects some):
#   1 boot       the guest reaches its init; with RAS also the HEST/GHES lines
#   2 consume    (RAS) the guest consumes a poisoned page: only the reading
#                process dies, a second workload and the VMM live on
#   3 baseline   without --ras the same consumption kills the VMM (SIGBUS, 135)
#   4 ao         (RAS) the page is poisoned while nobody reads it: early kill
#                (BUS_MCEERR_AO) -> the guest offlines it; no bad data, VM lives
# Prints "FULLSTACK-X86 RESULT <n> <name> PASS|FAIL|SKIP (...)" per scenario
# and "FULLSTACK-X86 SUMMARY N passed, M failed, K skipped".
set -u
trap '' PIPE
FSD=${FSD:-/fullstack}
W=${W:-/tmp/fs}
CH=$FSD/cloud-hypervisor
RT=$FSD/rastest
FSV_PREFIX=FULLSTACK-X86
ONLY=${ONLY:-}
# RAS: auto (when `cloud-hypervisor --help` lists --ras), off, negative
# (the negative control: scenarios 2 and 4 run on VMs without --ras).
FSX_RAS=${FSX_RAS:-auto}
RAS_FLAG=${RAS_FLAG:---ras}
RAS_OPTS=${RAS_OPTS-}
# The synchronous path (scenario 2): no early kill, so that corrupt-pfn
# raises no BUS_MCEERR_AO and the error is only seen when the guest reads.
RAS_OPTS_SYNC=${RAS_OPTS_SYNC-early_kill=off}
GUEST_MEM=${GUEST_MEM:-256M}
GUEST_MEM_BYTES=${GUEST_MEM_BYTES:-0x10000000}
# x86_64: guest RAM from GPA 0 (below the 32-bit hole: one mapping while
# GUEST_MEM is under 3 GiB).
GUEST_RAM_BASE=${GUEST_RAM_BASE:-0}
GUEST_CPUS=${GUEST_CPUS:-1}
GUEST_CMDLINE=${GUEST_CMDLINE:-console=ttyS0 quiet panic=-1}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-900}
CH_SERIAL=${CH_SERIAL:---serial tty --console off}
export GUEST_RAM_BASE GUEST_MEM_BYTES
. "$FSD/fullstack-vm.sh"
mkdir -p "$W"
PASSED=0 FAILED=0 SKIPPED=0

say() { fsv_say "$@"; }
ev() { fsv_ev "$@"; }
result() { # N NAME PASS|FAIL|SKIP WHY
    case $3 in
        PASS) PASSED=$((PASSED + 1)) ;;
        SKIP) SKIPPED=$((SKIPPED + 1)) ;;
        *) FAILED=$((FAILED + 1)) ;;
    esac
    say "RESULT $1 $2 $3${4:+ ($4)}"
}
want() { [ -z "$ONLY" ] || echo " $ONLY " | grep -q " $1 "; }
ras_args() { [ "$FSX_RAS" = negative ] || echo "$RAS_FLAG${1:+ $1}"; }

# vm_start NAME RASARGS: a VM booting $FSD/vmlinuz directly.
vm_start() {
    fsv_dir "$1"
    RAS_ARGS=$2
    # shellcheck disable=SC2086 # CH_SERIAL and RAS_ARGS: several words
    fsv_spawn --kernel "$FSD/vmlinuz" --initramfs "$FSD/initrd.gz" --cmdline "$GUEST_CMDLINE" \
        --memory "size=$GUEST_MEM" --cpus "boot=$GUEST_CPUS" $CH_SERIAL ${CH_EXTRA:-} $RAS_ARGS
}
# vm_up: wait for the agent, quiet the guest console (the scenarios read
# dmesg; printk must not split the agent's lines); records the boot time.
vm_up() {
    fsv_boot "$BOOT_TIMEOUT" || return 1
    say "TIME l2_boot vm=$VM vmm_start_to_init_ms=$BOOT_MS guest_uptime_at_init_s=${GUEST_UPTIME:-?}"
    g "dmesg -n 1; echo console-quiet"
}
# guest_panicked: the serial log shows a guest kernel panic or a second boot.
guest_panicked() {
    grep -aqE 'Kernel panic|Fatal machine check' "$SER" || [ "$(grep -ac 'RASGUEST ready' "$SER")" -gt 1 ]
}
panic_line() { grep -aE 'Kernel panic|Fatal machine check|Machine check: ' "$SER" | head -n 2 | tr -d '\r' | tr '\n' ' '; }
# guest_log PATTERN: the guest's dmesg lines matching PATTERN (grep -E), in
# $D/g.out; status 0 when there is one.
guest_log() {
    g "dmesg | grep -aE '$1' | tail -n 20"
    grep -aqE "$1" "$D/g.out"
}
# alive_count TAG: how many "alive" lines the spinning workload TAG printed.
alive_count() { grep -ac "RASTEST alive tag=$1 " "$SER"; }
# spin_progress TAG: the workload printed new lines over 10 s.
spin_progress() {
    _a=$(alive_count "$1"); sleep 10; [ "$(alive_count "$1")" -gt "$_a" ]
}
host_mf() { dmesg | grep -aE 'Memory failure|cloud-hyperv|Sending SIGBUS' | tail -n 4 | sed 's/^/    host: /'; }
evidence() { # the VMM's log and RAS events, for the record
    tail -n 6 "$D/ch.log" | sed 's/^/    ch: /'
    fsv_events | tail -n 12 | sed 's/^/    event: /'
}

# ---- checks ---------------------------------------------------------------
[ -x "$CH" ] || { say "SKIP: no Cloud Hypervisor binary"; exit 77; }
[ -c /dev/kvm ] || { say "SKIP: /dev/kvm missing in L1"; exit 77; }
[ -e /sys/kernel/debug/hwpoison/corrupt-pfn ] || say "WARN: no /sys/kernel/debug/hwpoison/corrupt-pfn"
say "L1 $(uname -r), $("$CH" --version 2>&1 | head -n1)"
RAS=0
if [ "$FSX_RAS" = negative ]; then
    RAS=1
    say "NOTE: negative control: scenarios 2 and 4 run on VMs without $RAS_FLAG (they must FAIL)"
elif [ "$FSX_RAS" != off ] && "$CH" --help 2>&1 | grep -q -- "$RAS_FLAG"; then RAS=1; fi
if [ "$FSX_RAS" = negative ]; then :
elif [ "$RAS" = 1 ]; then
    say "RAS: $RAS_FLAG listed by --help: scenarios 1, 2, 4 use it"
else
    say "RAS: $([ "$FSX_RAS" = off ] && echo 'turned off (--no-ras)' || echo "$RAS_FLAG not in cloud-hypervisor --help"): scenario 1 boots without it, 2 and 4 SKIP"
fi
no_ras_why="$([ "$FSX_RAS" = off ] && echo 'RAS turned off' || echo "cloud-hypervisor --help does not list $RAS_FLAG")"

# ---- scenario 1 (with RAS) and 4: VM ras-a, RAS defaults --------------------
# scenario_boot: the checks of scenario 1 on the current VM.
scenario_boot() {
    say "--- scenario 1: boot ($([ -n "$RAS_ARGS" ] && echo "$RAS_ARGS: HEST + GHES" || echo 'no --ras'))"
    g "uname -r; echo kvm-guest=\$(grep -c hypervisor /proc/cpuinfo) cpus=\$(nproc) acpi-tables: \$(ls /sys/firmware/acpi/tables 2>/dev/null | tr '\n' ' ')"
    kern=$(grep -a -m1 '^    guest: [0-9]' "$D/g.out" | sed 's/^    guest: //')
    if [ -z "$RAS_ARGS" ]; then
        result 1 boot PASS "guest $kern reached its init in ${BOOT_MS} ms (VMM start -> agent), no --ras"
        return
    fi
    g "rastest hest; echo bound=\$(ls /sys/bus/platform/drivers/GHES/ 2>/dev/null | grep -c GHES)"
    nsrc=$(grep -a 'RASTEST hest source=' "$D/g.out" | grep -c .)
    nbound=$(sed -n 's/.*guest: bound=\([0-9][0-9]*\)$/\1/p' "$D/g.out" | tail -n1)
    # drivers/acpi/apei/hest.c acpi_hest_init(); ghes.c ghes_init(): one of
    # "APEI firmware first mode is enabled by APEI bit and WHEA _OSC.",
    # "... by WHEA _OSC.", "... by APEI bit.", "Failed to enable APEI
    # firmware first mode." (no _OSC in the DSDT: pr_info, not an error).
    g "dmesg | grep -aE 'HEST:|GHES:|APEI|ACPI.*Error'"
    cp "$D/g.out" "$D/dmesg-apei.txt"
    hest=$(grep -ac 'HEST: Table parsing has been initialized' "$D/dmesg-apei.txt")
    ghes=$(grep -a -m1 -oE 'GHES: (APEI firmware first mode is enabled[^.]*|Failed to enable APEI firmware first mode)' "$D/dmesg-apei.txt")
    errs=$(grep -acE 'ACPI (BIOS )?Error' "$D/dmesg-apei.txt")
    if [ "$hest" -ge 1 ] && [ -n "$ghes" ] && [ "$nsrc" -ge 1 ] && [ "${nbound:-0}" -eq "$nsrc" ] && [ "$errs" -eq 0 ]; then
        result 1 boot PASS "guest $kern reached its init in ${BOOT_MS} ms; 'HEST: Table parsing has been initialized', '$ghes', HEST sources=$nsrc, GHES bound=$nbound"
    else
        result 1 boot FAIL "hest_line=$hest ghes_line='${ghes:-none}' sources=$nsrc bound=${nbound:-?} acpi_errors=$errs"
    fi
}

if [ "$RAS" = 1 ] && { want 1 || want 4; }; then
    say "=== VM ras-a: $(ras_args "$RAS_OPTS") (scenarios$(want 1 && echo ' 1')$(want 4 && echo ' 4'))"
    vm_start ras-a "$(ras_args "$RAS_OPTS")"
    if vm_up; then
        want 1 && scenario_boot
        if want 4; then
            say "--- scenario 4: action optional (poisoned while unread -> early kill -> guest offlines it)"
            fsv_hold s4 2 0
            if [ -n "$gpa" ] && fsv_poison "$gpa"; then
                gpfn=$(printf '0x%x' $((gpa >> 12)))
                n=0 mf=0
                while [ $n -lt 12 ] && fsv_alive && ! guest_panicked; do
                    if guest_log "Memory failure: $gpfn"; then mf=1; break; fi
                    sleep 5; n=$((n + 1))
                done
                host_mf
                g "rastest kpf $gpfn"
                off=$(grep -a "RASTEST kpf pfn=$gpfn " "$D/g.out" | tail -n1 | grep -c 'hwpoison=1')
                gsend "kill -USR1 $pid"
                fsv_wait_log "RASTEST (sigbus|read-ok) tag=s4 |Kernel panic" 60 || true
                sleep 2
                guest_panicked && { G_DEAD=1; ev "guest panicked: $(panic_line)"; }
                sig=$(grep -a "RASTEST sigbus tag=s4 " "$SER" | tail -n1 | tr -d '\r' | sed 's/.*\(RASTEST \)/\1/')
                bad=$(grep -a "RASTEST read-ok tag=s4 " "$SER" | grep -cvE 'content=intact')
                g "echo agent-ok"
                evidence
                if fsv_alive; then vmm=y; else fsv_wait_exit 1; vmm="n (status $CH_STATUS)"; fi
                if fsv_alive && ! guest_panicked && [ "$mf" = 1 ] && [ "$bad" -eq 0 ] && [ "$G_RC" = 0 ]; then
                    result 4 ao PASS "guest 'Memory failure: $gpfn' before any read (kpageflags hwpoison=$off); the later read: ${sig:-no SIGBUS, no bad data}; VMM and guest alive"
                else
                    result 4 ao FAIL "vmm_alive=$vmm guest_panic=$(guest_panicked && echo "y: $(panic_line)" || echo n) guest_memory_failure=$mf hwpoison=$off bad_reads=$bad agent=$G_RC"
                fi
            else
                result 4 ao FAIL "no GPA or poisoning failed"
            fi
        fi
        fsv_stop
    else
        want 1 && result 1 boot FAIL "guest did not reach its init in $BOOT_TIMEOUT s ($RAS_FLAG)"
        want 4 && result 4 ao FAIL "guest did not boot"
        fsv_kill
    fi
fi
[ "$RAS" = 1 ] || { want 4 && result 4 ao SKIP "$no_ras_why"; }

# ---- scenario 2: VM ras-s, RAS without early kill ------------------------
if want 2; then
    if [ "$RAS" = 1 ]; then
        say "=== VM ras-s: $(ras_args "$RAS_OPTS_SYNC") (scenario 2)"
        vm_start ras-s "$(ras_args "$RAS_OPTS_SYNC")"
        if vm_up; then
            say "--- scenario 2: consume (the guest reads a poisoned page: machine check -> only that process dies)"
            gbg "rastest spin s2w 100000"
            fsv_wait_log "RASTEST alive tag=s2w " 60 || true
            fsv_hold s2 1 0
            if [ -n "$gpa" ] && fsv_poison "$gpa"; then
                gpfn=$(printf '0x%x' $((gpa >> 12)))
                sleep 2
                alive_after_poison=$(fsv_alive && echo y || echo n)
                # FSX_TRACE=1: the ioctls of the VMM's threads around the error.
                [ "${FSX_TRACE:-0}" = 1 ] && fsv_trace_on
                gsend "kill -USR1 $pid"
                fsv_wait_log "RASTEST (sigbus|read-ok) tag=s2 |Kernel panic" 120 || true
                sleep 3
                [ "${FSX_TRACE:-0}" = 1 ] && fsv_trace_ioctls
                # A guest that panicked (and rebooted: panic=-1) has no agent
                # for these commands: do not wait for it.
                guest_panicked && { G_DEAD=1; ev "guest panicked: $(panic_line)"; }
                sig=$(grep -a "RASTEST sigbus tag=s2 " "$SER" | tail -n1 | tr -d '\r' | sed 's/.*\(RASTEST \)/\1/')
                readok=$(grep -ac "RASTEST read-ok tag=s2 " "$SER")
                if fsv_alive && ! guest_panicked && spin_progress s2w; then spin=y; else spin=n; fi
                g "kill -0 $pid 2>/dev/null && echo reader=alive || echo reader=gone"
                gone=$(grep -ac 'reader=gone' "$D/g.out")
                mce=0; guest_log 'mce: \[Hardware Error\]|Machine check|Memory failure' && mce=1
                mf=$(grep -ac "Memory failure: $gpfn" "$D/g.out")
                host_mf
                evidence
                if fsv_alive; then vmm=y; else fsv_wait_exit 1; vmm="n (status $CH_STATUS)"; fi
                if fsv_alive && ! guest_panicked && [ "$alive_after_poison" = y ] && [ "$spin" = y ] &&
                    [ "$readok" -eq 0 ] && { [ -n "$sig" ] || [ "$gone" = 1 ]; } && [ "$mce" = 1 ]; then
                    result 2 consume PASS "reader ${sig:-killed (no SIGBUS line)}; guest log: $([ "$mf" -ge 1 ] && echo "Memory failure: $gpfn" || echo 'machine check'); second workload and VMM alive"
                else
                    result 2 consume FAIL "vmm_alive=$vmm alive_after_poison=$alive_after_poison guest_panic=$(guest_panicked && echo "y: $(panic_line)" || echo n) workload=$spin reader_sigbus=${sig:+y} reader_gone=$gone read_ok=$readok guest_mce_log=$mce"
                fi
            else
                result 2 consume FAIL "no GPA or poisoning failed"
            fi
            fsv_stop
        else
            result 2 consume FAIL "guest did not boot"
            fsv_kill
        fi
    else
        result 2 consume SKIP "$no_ras_why"
    fi
fi

# ---- scenario 3 (and 1 without RAS): VM base, no --ras --------------------
if want 3 || { [ "$RAS" = 0 ] && want 1; }; then
    say "=== VM base: no $RAS_FLAG (scenarios$([ "$RAS" = 0 ] && want 1 && echo ' 1')$(want 3 && echo ' 3'))"
    vm_start base ""
    if vm_up; then
        [ "$RAS" = 0 ] && want 1 && scenario_boot
        if want 3; then
            say "--- scenario 3: baseline consumption without $RAS_FLAG"
            fsv_hold s3 1 0
            if [ -n "$gpa" ] && fsv_poison "$gpa"; then
                # No early kill by default: the VMM survives the poisoning;
                # the death counted is the guest's consumption.
                sleep 2
                alive_after_poison=$(fsv_alive && echo y || echo n)
                gsend "kill -USR1 $pid"
                fsv_wait_exit 120 || true
                touched=$(grep -ac "RASTEST touch tag=s3 " "$SER")
                readok=$(grep -ac "RASTEST read-ok tag=s3 " "$SER")
                tail -n 4 "$SER" | tr -d '\r' | sed 's/^/    serial: /'
                tail -n 3 "$D/ch.log" | sed 's/^/    ch: /'
                host_mf
                ev "VMM status after the guest read the poisoned page: $CH_STATUS (135 = killed by SIGBUS)"
                if [ "$CH_STATUS" = 135 ] && [ "$alive_after_poison" = y ] && [ "$touched" -ge 1 ] && [ "$readok" -eq 0 ]; then
                    result 3 baseline PASS "without $RAS_FLAG the VMM survives the poisoning and is killed by SIGBUS (status 135) when the guest reads the page"
                else
                    result 3 baseline FAIL "VMM status $CH_STATUS (expected 135, SIGBUS), alive after poisoning=$alive_after_poison, guest touch lines=$touched, read-ok lines=$readok"
                fi
            else
                result 3 baseline FAIL "no GPA or poisoning failed"
            fi
        fi
        fsv_alive && fsv_stop
    else
        [ "$RAS" = 0 ] && want 1 && result 1 boot FAIL "guest did not reach its init in $BOOT_TIMEOUT s"
        want 3 && result 3 baseline FAIL "guest did not boot"
        fsv_kill
    fi
fi

# ---- per-VM logs for run.sh ("FSLOG <vm>/<file> <line>") -------------------
for d in "$W"/*/; do
    vm=$(basename "$d")
    for f in cmdline serial.log events.json ch.log; do
        [ -s "$d$f" ] || continue
        tr -d '\r' <"$d$f" | tail -n 3000 | sed "s|^|FSLOG $vm/$f |"
    done
done
say "SUMMARY $PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
