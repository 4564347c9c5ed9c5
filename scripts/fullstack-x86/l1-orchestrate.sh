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
#   5 two-vcpus  (RAS, 2 vCPUs) two processes pinned to vCPU 0 and 1 consume
#                their own poisoned page at once: both get SIGBUS
#                BUS_MCEERR_AR, one machine check per vCPU, the VM lives
#   6 reboot     (RAS, after 5) a consumed page, then `reboot -f` in the
#                guest: the VMM repairs the page (poison-repaired), the new
#                guest boots and the GPA is usable again
#   7 snapshot-restore  (RAS, async=off) a page the VMM knows is poisoned
#                (early kill) and the guest does not: pause, snapshot, kill,
#                --restore, resume: the restored page is still poisoned
#                (SIGBUS BUS_MCEERR_AR on touch, never zeros)
#   8 drill      (RAS, ch-remote) inject-error type=memory at a guest page:
#                the guest logs it (MCE bank 255 + Memory failure), events,
#                vm.counters; a synchronous drill is refused (400), counts
#                nothing
# Prints "FULLSTACK-X86 RESULT <n> <name> PASS|FAIL|SKIP (...)" per scenario
# and "FULLSTACK-X86 SUMMARY N passed, M failed, K skipped".
set -u
trap '' PIPE
FSD=${FSD:-/fullstack}
W=${W:-/tmp/fs}
CH=$FSD/cloud-hypervisor
CHR=$FSD/ch-remote
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

say() { fsv_say "$@"; }
ev() { fsv_ev "$@"; }
ras_args() { [ "$FSX_RAS" = negative ] || echo "$RAS_FLAG${1:+ $1}"; }

# vm_start NAME RASARGS [CPUS]: a VM booting $FSD/vmlinuz directly
# (GUEST_CPUS vCPUs unless CPUS is given).
vm_start() {
    fsv_dir "$1"
    RAS_ARGS=$2
    # shellcheck disable=SC2086 # CH_SERIAL and RAS_ARGS: several words
    fsv_spawn --kernel "$FSD/vmlinuz" --initramfs "$FSD/initrd.gz" --cmdline "$GUEST_CMDLINE" \
        --memory "size=$GUEST_MEM" --cpus "boot=${3:-$GUEST_CPUS}" $CH_SERIAL ${CH_EXTRA:-} $RAS_ARGS
}
# vm_restore NAME SNAPDIR: a VMM restoring the snapshot in SNAPDIR (the VM
# comes up paused; its serial on a new pseudo-terminal, the agent's input).
vm_restore() {
    fsv_dir "$1"
    # shellcheck disable=SC2086 # CH_EXTRA: several words
    fsv_spawn ${CH_EXTRA:-} --restore "source_url=file://$2"
}
# ras_counters: the current VMM's RAS counters (vm.counters, entry "ras"),
# "name=value" words in name order; empty without ch-remote or answer.
ras_counters() {
    "$CHR" --api-socket "$API" counters 2>/dev/null | tr -d ' \t\n' | grep -o '"ras":{[^}]*}' |
        sed 's/^"ras":{//; s/}$//' | tr ',' '\n' | tr -d '"' | sed 's/:/=/' | sort | tr '\n' ' '
}
counter_sum() { echo "$1" | tr ' ' '\n' | sed -n 's/.*=\([0-9][0-9]*\)$/\1/p' | awk '{ s += $1 } END { print s + 0 }'; }
# rastest_part: the RASTEST part of a serial line (the guest kernel's
# console output can land inside a line rastest writes).
# counter_changes BEFORE AFTER: "name a->b" for each counter that changed.
counter_changes() {
    for _c in $2; do
        _k=${_c%%=*}; _b=$(echo " $1 " | sed -n "s/.* $_k=\([0-9]*\) .*/\1/p")
        [ "${_b:-?}" = "${_c#*=}" ] || printf '%s %s->%s ' "$_k" "${_b:-?}" "${_c#*=}"
    done
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
    say "NOTE: negative control: scenarios 2 and 4-8 run on VMs without $RAS_FLAG (they must FAIL)"
elif [ "$FSX_RAS" != off ] && "$CH" --help 2>&1 | grep -q -- "$RAS_FLAG"; then RAS=1; fi
if [ "$FSX_RAS" = negative ]; then :
elif [ "$RAS" = 1 ]; then
    say "RAS: $RAS_FLAG listed by --help: scenarios 1, 2, 4-8 use it"
else
    say "RAS: $([ "$FSX_RAS" = off ] && echo 'turned off (--no-ras)' || echo "$RAS_FLAG not in cloud-hypervisor --help"): scenario 1 boots without it, 2 and 4-8 SKIP"
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

# scenario_drill: the checks of scenario 8 on the current VM (ras-a: the
# asynchronous source on GPIO). Scenario 4 may have run in it: what is new
# is counted.
scenario_drill() {
    say "--- scenario 8: drill (ch-remote inject-error type=memory; a synchronous request is refused)"
    fsv_hold s8 1 0
    if [ -z "$gpa" ]; then result 8 drill FAIL "no GPA"; return; fi
    gpfn=$(printf '0x%x' $((gpa >> 12)))
    g "dmesg | grep -acE 'Bank 255'; dmesg | grep -ac 'Memory failure: $gpfn:'"
    b0=$(grep -a '^    guest: [0-9][0-9]*$' "$D/g.out" | head -n1 | sed 's/.*: //')
    c0=$(ras_counters); e0=$(fsv_events | grep -c .)
    ev "ras counters before: ${c0:-none}"
    ev "ch-remote inject-error type=memory,gpa=$gpa"
    "$CHR" --api-socket "$API" inject-error "type=memory,gpa=$gpa" >"$D/inject-async.out" 2>&1; ra=$?
    sed 's/^/    ch-remote: /' "$D/inject-async.out"
    n=0 mf=0
    while [ $n -lt 12 ] && fsv_alive && ! guest_panicked; do
        if guest_log "Memory failure: $gpfn"; then mf=1; break; fi
        sleep 5; n=$((n + 1))
    done
    g "dmesg | grep -acE 'Bank 255'; dmesg | grep -aE 'mce: |Memory failure' | tail -n 8"
    b1=$(grep -a '^    guest: [0-9][0-9]*$' "$D/g.out" | head -n1 | sed 's/.*: //')
    addr=$(grep -ac "ADDR ${gpa#0x} " "$D/g.out")
    g "rastest kpf $gpfn"
    off=$(grep -a "RASTEST kpf pfn=$gpfn " "$D/g.out" | tail -n1 | grep -c 'hwpoison=1')
    c1=$(ras_counters); e1=$(fsv_events | grep -c .)
    ev "ras counters after the drill: ${c1:-none}"
    fsv_events | tail -n $((e1 - e0)) | sed 's/^/    event: /'
    # The answer lists the events the error caused.
    ans=$(grep -aoE '(inject-requested|record-written|async-notified)' "$D/inject-async.out" | sort -u | tr '\n' ' ')
    inj=$(fsv_count_event inject-requested)
    rec=$(fsv_count_event record-written gpa="$gpa")
    # The synchronous request (docs/ras.md: source=sync,vcpu=N): refused
    # with 400 on x86_64 (no synchronous source), nothing counted.
    ev "ch-remote inject-error type=memory,gpa=$gpa,source=sync,vcpu=0"
    "$CHR" --api-socket "$API" inject-error "type=memory,gpa=$gpa,source=sync,vcpu=0" >"$D/inject-sync.out" 2>&1; rs=$?
    sed 's/^/    ch-remote: /' "$D/inject-sync.out"
    # The same on the HTTP API, for its status code.
    "$RT" api "$API" 1 10 PUT vm.inject-error "{\"type\":\"memory\",\"source\":\"sync\",\"vcpu\":0,\"gpa\":$((gpa))}" >"$D/inject-sync-http.out" 2>&1
    sed 's/^/    http: /' "$D/inject-sync-http.out"
    st=$(sed -n 's/.*first-refusal status=\([0-9]*\).*/\1/p' "$D/inject-sync-http.out" | head -n1)
    sleep 2
    c2=$(ras_counters); e2=$(fsv_events | grep -c .)
    ev "ras counters after the synchronous requests: ${c2:-none}"
    why=
    [ "$ra" = 0 ] || why="$why async-rc=$ra"
    [ -n "$ans" ] || why="$why answer-lists-no-event"
    [ "$mf" = 1 ] || why="$why guest-no-'Memory failure: $gpfn'"
    [ "${b1:-0}" -gt "${b0:-0}" ] || why="$why guest-no-new-'Bank 255'-line($b0->$b1)"
    [ "$inj" -ge 1 ] && [ "$rec" -ge 1 ] || why="$why events(inject-requested=$inj,record-written-gpa=$rec)"
    [ -n "$c1" ] && [ "$(counter_sum "$c1")" -gt "$(counter_sum "$c0")" ] || why="$why counters-unchanged-by-drill"
    [ "$rs" != 0 ] || why="$why sync-accepted(ch-remote-rc=0)"
    [ "$st" = 400 ] || why="$why sync-http-status=${st:-none}"
    [ "$c2" = "$c1" ] || why="$why sync-changed-counters"
    [ "$e2" = "$e1" ] || why="$why sync-published-events($e1->$e2)"
    fsv_alive && ! guest_panicked || why="$why vmm-or-guest-dead"
    verdict 8 drill "async: ch-remote rc 0, answer lists ${ans% }; guest 'Memory failure: $gpfn' + $((b1 - b0)) new 'Bank 255' line(s) (ADDR line: $addr, kpageflags hwpoison=$off); counters $(counter_changes "$c0" "$c1" | sed "s/ $//"); sync: ch-remote rc $rs, HTTP $st, counters and events unchanged"
}

# scenario_reboot: scenario 6 on the current VM (RAS without early kill):
# a page consumed, `reboot -f`, then the same GPA in the new guest.
scenario_reboot() {
    say "--- scenario 6: reboot after a consumption, the same GPA used again"
    # Of 64 pages, the one nearest the middle of guest RAM: the
    # rebooted kernel's early (top-down) allocations take the top,
    # so a guest program can own that GPA again.
    gbg "rastest hold s6 64 0"
    fsv_wait_log "RASTEST ready tag=s6 " 120 || true
    pid=$(grep -a "RASTEST ready tag=s6 " "$SER" | tail -n1 | sed 's/.*pid=\([0-9]*\).*/\1/')
    mid=$((GUEST_RAM_BASE + GUEST_MEM_BYTES / 2)); gpa= bestd=
    for p in $(grep -a "RASTEST page tag=s6 " "$SER" | rastest_part | sed -n 's/.*gpa=\(0x[0-9a-f]*\).*/\1/p'); do
        dd_=$((p - mid)); [ "$dd_" -lt 0 ] && dd_=$((-dd_))
        if [ -z "$bestd" ] || [ "$dd_" -lt "$bestd" ]; then gpa=$p; bestd=$dd_; fi
    done
    fsv_ev "guest page s6 nearest the middle of RAM: GPA ${gpa:-?} (pid ${pid:-?})"
    if [ -n "$gpa" ] && fsv_poison "$gpa"; then
        gpfn=$(printf '0x%x' $((gpa >> 12)))
        # The process reads every page: consumption on the poisoned one.
        g "kill -USR2 $pid; sleep 3; echo consumed"
        sig=$(grep -a "RASTEST sigbus tag=s6 " "$SER" | rastest_part | tail -n1)
        consumed=$(fsv_has_event sigbus-ar "gpa=$gpa" && echo y || echo n)
        fsv_ev "before the reboot: ${sig:-no SIGBUS line}; sigbus-ar gpa=$gpa: $consumed"
        fsv_reboot
        if fsv_rebooted 300; then
            g "dmesg -n 1; echo console-quiet"
            GTIMEOUT=600 g "rastest kpf $gpfn; rastest hunt $gpa 150; echo hunt-done"
            hw=$(grep -a "RASTEST kpf pfn=$gpfn " "$D/g.out" | rastest_part | tail -n1)
            hunt=$(grep -a "RASTEST hunt-" "$D/g.out" | rastest_part | tail -n1)
            # The host page behind the GPA: readable through the
            # VMM's /proc/PID/mem (EIO if still poisoned), then a
            # present page without hwpoison.
            peek=$("$RT" peek "$CHPID" "$gpa" "$GUEST_RAM_BASE" "$GUEST_MEM_BYTES")
            pte=$("$RT" hostpte "$CHPID" "$gpa" "$GUEST_RAM_BASE" "$GUEST_MEM_BYTES")
            ev "host: $peek"; ev "host: $pte"
            evidence
            repaired=$(fsv_has_event poison-repaired "gpa=$gpa" && echo y || echo n)
            after=$(fsv_events | awk -v g="\"gpa\":\"$gpa\"" '/"event":"poison-repaired"/ && index($0, g) { seen = 1; next } seen && /"event":"sigbus-ar"/ && index($0, g) { n++ } END { print n + 0 }')
            flags=$(echo "$hw" | sed -n 's/.* flags=\(0x[0-9a-f]*\).*/\1/p')
            if echo "$hunt" | grep -q hunt-ok; then use="$hunt"
            elif [ -n "$flags" ] && [ $(( (flags >> 10) & 1 )) -eq 1 ]; then use="free in the guest's buddy allocator (flags $flags; ${hunt:-no hunt line})"
            elif [ -n "$flags" ]; then use="held by the guest kernel (flags $flags, not buddy; ${hunt:-no hunt line})"
            else use=; fi
            why=
            [ "$consumed" = y ] || why="$why no-consumption-before-reboot('${sig:-none}')"
            [ "$repaired" = y ] || why="$why no-poison-repaired(gpa=$gpa)"
            echo "$hw" | grep -q hwpoison=0 || why="$why guest-kpf('${hw:-none}')"
            [ -n "$use" ] || why="$why gpa-use-unknown"
            echo "$peek" | grep -q ' ok=1' || why="$why host-page-unreadable('$peek')"
            echo "$pte" | grep -q 'present=1 .*host_hwpoison=0' || why="$why host-pte('$pte')"
            [ "$after" -eq 0 ] || why="$why consumptions-after-reboot=$after"
            grep -aqE 'Kernel panic|Fatal machine check' "$SER" && why="$why guest-panic($(panic_line))"
            [ "$G_RC" = 0 ] || why="$why agent=$G_RC"
            fsv_alive || why="$why vmm-dead"
            verdict 6 reboot "before: ${sig:-killed}; guest rebooted in ${BOOT_MS} ms; poison-repaired gpa=$gpa; $hw; GPA $use; host page readable, not poisoned ($(echo "$pte" | sed 's/.*\(pfn=[^ ]*\).*/\1/'))"
        else
            tail -n 20 "$SER" | tr -d '\r' | sed 's/^/    serial: /'
            evidence
            if fsv_alive; then vmm=y; else fsv_wait_exit 1; vmm="n (status $CH_STATUS)"; fi
            result 6 reboot FAIL "guest did not come back (VMM alive: $vmm; before the reboot: ${sig:-no SIGBUS line}, sigbus-ar: $consumed)"
        fi
    else
        result 6 reboot FAIL "no GPA or poisoning failed"
    fi
}

if [ "$RAS" = 1 ] && { want 1 || want 4 || want 8; }; then
    say "=== VM ras-a: $(ras_args "$RAS_OPTS") (scenarios$(want 1 && echo ' 1')$(want 4 && echo ' 4')$(want 8 && echo ' 8'))"
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
        if want 8; then
            if [ -x "$CHR" ]; then
                scenario_drill
            else
                result 8 drill SKIP "no ch-remote binary (give --ch-remote)"
            fi
        fi
        fsv_stop
    else
        want 1 && result 1 boot FAIL "guest did not reach its init in $BOOT_TIMEOUT s ($RAS_FLAG)"
        want 4 && result 4 ao FAIL "guest did not boot"
        want 8 && result 8 drill FAIL "guest did not boot"
        fsv_kill
    fi
fi
[ "$RAS" = 1 ] || { want 4 && result 4 ao SKIP "$no_ras_why"; want 8 && result 8 drill SKIP "$no_ras_why"; }

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

# ---- scenarios 5 and 6: VM ras-2, 2 vCPUs, RAS without early kill ----------
if want 5 || want 6; then
    if [ "$RAS" = 1 ]; then
        say "=== VM ras-2: $(ras_args "$RAS_OPTS_SYNC"), 2 vCPUs (scenarios$(want 5 && echo ' 5')$(want 6 && echo ' 6'))"
        vm_start ras-2 "$(ras_args "$RAS_OPTS_SYNC")" 2
        if vm_up; then
            if want 5; then
                say "--- scenario 5: two processes on two vCPUs consume their own poisoned page at once"
                gbg "rastest spin s5w 100000"
                fsv_wait_log "RASTEST alive tag=s5w " 60 || true
                fsv_hold s5a 1 0; ga=$gpa; pa=$pid
                fsv_hold s5b 1 1; gb=$gpa; pb=$pid
                if [ -n "$ga" ] && [ -n "$gb" ] && [ "$ga" != "$gb" ] && fsv_poison "$ga" && fsv_poison "$gb"; then
                    sleep 2
                    alive_after_poison=$(fsv_alive && echo y || echo n)
                    # One kill(1) signals both: the two reads start together.
                    g "kill -USR1 $pa $pb; sleep 4; echo still-here"
                    guest_panicked && { G_DEAD=1; ev "guest panicked: $(panic_line)"; }
                    if fsv_alive && ! guest_panicked && spin_progress s5w; then spin=y; else spin=n; fi
                    guest_log 'mce: \[Hardware Error\]|Memory failure' || true
                    cp "$D/g.out" "$D/dmesg-s5.txt"
                    g "echo vm-lives"
                    lives=$(tr -d '\r' <"$SER" | grep -c 'vm-lives$')
                    evidence
                    why= sigs=
                    for x in a b; do
                        if [ $x = a ]; then gpa=$ga; pid=$pa; cpu=0; else gpa=$gb; pid=$pb; cpu=1; fi
                        fsv_toucher_checks "s5$x" "$cpu" "$gpa" "$pid" "$D/dmesg-s5.txt"
                        sigs="$sigs${sigs:+ | }${sig:-none}"
                        fsv_has_event sigbus-ar "gpa=$gpa" "vcpu=$cpu" || why="$why s5$x-no-sigbus-ar(gpa=$gpa,vcpu=$cpu)"
                        fsv_has_event abort-injected "vcpu=$cpu" || why="$why s5$x-no-abort-injected(vcpu=$cpu)"
                    done
                    nab=$(fsv_count_event abort-injected)
                    [ "$nab" -eq 2 ] || why="$why abort-injected-events=$nab(not-2)"
                    [ "$alive_after_poison" = y ] || why="$why vmm-died-at-poisoning"
                    [ "$spin" = y ] || why="$why workload-stopped"
                    [ "$lives" -ge 1 ] || why="$why guest-not-answering"
                    guest_panicked && why="$why guest-panic($(panic_line))"
                    if fsv_alive; then :; else fsv_wait_exit 1; why="$why vmm-dead(status-$CH_STATUS)"; fi
                    verdict 5 two-vcpus "$sigs; guest killed both (Memory failure lines for $ga $gb); events sigbus-ar + abort-injected for vcpu 0 and 1 ($nab abort-injected); workload and VMM alive"
                else
                    result 5 two-vcpus FAIL "no GPA, same GPA twice ($ga $gb) or poisoning failed"
                fi
            fi
            if want 6; then
                if ! fsv_alive || guest_panicked; then
                    # Scenario 5 left no running guest: a fresh VM for 6.
                    ev "VM ras-2 not running after scenario 5 (VMM alive: $(fsv_alive && echo y || echo n)): a new VM for scenario 6"
                    if fsv_alive; then fsv_stop; else fsv_wait_exit 1; exec 3>&-; fi
                    vm_start ras-2b "$(ras_args "$RAS_OPTS_SYNC")" 2
                    vm_up || G_DEAD=1
                fi
                if [ "$G_DEAD" = 1 ]; then result 6 reboot FAIL "guest did not boot"; else scenario_reboot; fi
            fi
            fsv_stop
        else
            want 5 && result 5 two-vcpus FAIL "guest did not boot"
            want 6 && result 6 reboot FAIL "guest did not boot"
            fsv_kill
        fi
    else
        want 5 && result 5 two-vcpus SKIP "$no_ras_why"
        want 6 && result 6 reboot SKIP "$no_ras_why"
    fi
fi

# ---- scenario 7: VM ras-snap, RAS with async=off ---------------------------
if want 7; then
    if [ "$RAS" = 1 ] && [ -x "$CHR" ]; then
        say "=== VM ras-snap: $(ras_args async=off) (scenario 7: the VMM knows the page, the guest was not told)"
        vm_start ras-snap "$(ras_args async=off)"
        if vm_up; then
            say "--- scenario 7: snapshot and restore with a poisoned page"
            fsv_hold s7 1 0
            why=
            if [ -n "$gpa" ] && fsv_poison "$gpa"; then
                gpfn=$(printf '0x%x' $((gpa >> 12))); s7pid=$pid; s7gpa=$gpa
                va=$(grep -a "RASTEST page tag=s7 " "$SER" | rastest_part | tail -n1 | sed -n 's/.* va=\(0x[0-9a-f]*\).*/\1/p')
                sleep 3
                fsv_has_event page-poisoned "gpa=$gpa" || why="$why $gpa-not-known-to-the-VMM"
                fsv_has_event async-notified && why="$why guest-was-told(async-notified)"
                g "rastest kpf $gpfn"
                grep -a "RASTEST kpf pfn=$gpfn " "$D/g.out" | tail -n1 | grep -q hwpoison=0 || why="$why guest-offlined-$gpfn"
                fsv_events | sed 's/^/    event: /'
                SNAP=$W/snap7; rm -rf "$SNAP"; mkdir -p "$SNAP"
                "$CHR" --api-socket "$API" pause >"$D/pause.out" 2>&1; p_=$?
                "$CHR" --api-socket "$API" snapshot "file://$SNAP" >"$D/snap.out" 2>&1; s_=$?
                sed 's/^/    ch-remote: /' "$D/pause.out" "$D/snap.out"
                ls -la "$SNAP" | sed 's/^/    snap: /'
                fsv_kill; exec 3>&-
                tail -n 4 "$D/ch.log" | sed 's/^/    ch: /'
                touched=none
                if [ "$p_" = 0 ] && [ "$s_" = 0 ]; then
                    vm_restore ras-snap-restored "$SNAP"
                    n=0; while [ ! -S "$API" ] && fsv_alive && [ $n -lt 150 ]; do fsv_nap; n=$((n + 1)); done
                    sleep 2
                    "$CHR" --api-socket "$API" resume >"$D/resume.out" 2>&1; r_=$?
                    sed 's/^/    ch-remote: /' "$D/resume.out"
                    [ "$r_" = 0 ] || why="$why resume-rc=$r_"
                    ev "restored VMM's page at $gpa: $("$RT" hostpte "$CHPID" "$gpa" "$GUEST_RAM_BASE" "$GUEST_MEM_BYTES")"
                    g "echo restored-guest-runs"
                    grep -aq 'restored-guest-runs' "$D/g.out" || why="$why restored-guest-silent"
                    g "kill -USR1 $s7pid; sleep 3; echo touched-s7"
                    touched=$(grep -aE "RASTEST (sigbus|read-ok) tag=s7 " "$SER" | rastest_part | tail -n1)
                    touched=${touched:-none}
                    ev "touch after restore: $touched"
                    g "dmesg | grep -aE 'mce: |Memory failure' | tail -n 6; rastest spin r7 2"
                    ran=$(grep -ac "RASTEST done tag=r7" "$SER")
                    evidence
                    echo "$touched" | grep -q "code=BUS_MCEERR_AR(4) addr=$va " || why="$why touch-after-restore('$touched')"
                    grep -aq "RASTEST read-ok tag=s7 " "$SER" && why="$why read-ok-after-restore"
                    fsv_has_event sigbus-ar "gpa=$gpa" || why="$why restored-VMM-saw-no-consumption-of-$gpa"
                    [ "$ran" -ge 1 ] || why="$why restored-guest-did-not-run-on"
                    guest_panicked && why="$why guest-panic($(panic_line))"
                    fsv_alive || { fsv_wait_exit 1; why="$why restored-VMM-dead(status-$CH_STATUS)"; tail -n 6 "$D/ch.log" | sed 's/^/    ch: /'; }
                else
                    why="$why pause-rc=$p_ snapshot-rc=$s_"
                fi
                verdict 7 snapshot-restore "$s7gpa known poisoned to the VMM (page-poisoned, guest not told); pause/snapshot/kill/restore/resume ok; after restore: $touched; restored guest runs on"
            else
                result 7 snapshot-restore FAIL "no GPA or poisoning failed"
            fi
            fsv_alive && fsv_stop
        else
            result 7 snapshot-restore FAIL "guest did not boot"
            fsv_kill
        fi
    elif [ "$RAS" = 1 ]; then
        result 7 snapshot-restore SKIP "no ch-remote binary (give --ch-remote)"
    else
        result 7 snapshot-restore SKIP "$no_ras_why"
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
            if fsv_baseline s3 120; then
                result 3 baseline PASS "without $RAS_FLAG the VMM survives the poisoning and is killed by SIGBUS (status 135) when the guest reads the page"
            else
                result 3 baseline FAIL "$FSV_BASELINE"
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
