#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Full-stack scenarios, run inside L1 (busybox sh, as root, KVM available).
# Layout (made by run.sh): $FSD/cloud-hypervisor, $FSD/ch-remote (optional),
# $FSD/CLOUDHV_EFI.fd, $FSD/esp.img, $FSD/rastest, $FSD/config.sh.
#
# For each scenario: starts Cloud Hypervisor (UEFI + ACPI, serial on a
# FIFO/file, --api-socket, --event-monitor), drives the guest's console
# agent, poisons host pages like hardware would (debugfs
# hwpoison/corrupt-pfn on the host PFN behind a guest page: GPA -> VMM
# virtual address (/proc/PID/maps) -> /proc/PID/pagemap -> PFN), and prints
# "FULLSTACK RESULT <n> <name> PASS|FAIL" with the evidence, then the
# measured figures and "FULLSTACK SUMMARY N passed, M failed".
set -u
# Writes into a VMM's serial FIFO after the VMM died must not kill us.
trap '' PIPE
FSD=${FSD:-/fullstack}
. "$FSD/config.sh"
CH=$FSD/cloud-hypervisor
CHR=$FSD/ch-remote
FW=$FSD/CLOUDHV_EFI.fd
ESP=$FSD/esp.img
RT=$FSD/rastest
W=${W:-/tmp/fs}
ONLY=${ONLY:-}
mkdir -p "$W"
PASSED=0
FAILED=0
SKIPPED=0
FIG=$W/figures
: >"$FIG"

say() { echo "FULLSTACK $*"; }
ev() { echo "    | $*"; }
nap() { sleep 0.2 2>/dev/null || sleep 1; }
now_ms() { "$RT" now; }
figure() { echo "$*" >>"$FIG"; say "FIGURE $*"; }
result() { # n name PASS|FAIL|SKIP why
    case $3 in
        PASS) PASSED=$((PASSED + 1)) ;;
        SKIP) SKIPPED=$((SKIPPED + 1)) ;;
        *) FAILED=$((FAILED + 1)) ;;
    esac
    say "RESULT $1 $2 $3${4:+ ($4)}"
}
# verdict N NAME PASS-TEXT [FAIL-TEXT]: PASS with PASS-TEXT when the checks
# left no reason in $why, else FAIL with the reasons (and FAIL-TEXT).
verdict() {
    if [ -z "$why" ]; then result "$1" "$2" PASS "$3"; else result "$1" "$2" FAIL "failed:$why${4:-}"; fi
}
want() { [ -z "$ONLY" ] || echo " $ONLY " | grep -q " $1 "; }
# neg N: scenario N runs with its feature disabled (FS_NEGATIVE="11 16 ...",
# the negative control: it must then FAIL; each scenario says how).
neg() { echo " ${FS_NEGATIVE:-} " | grep -q " $1 "; }

# ---- one VMM instance -----------------------------------------------------
# vm_dir NAME: a fresh directory for VMM NAME (sets VM, D, SER, EVT, API).
vm_dir() {
    VM=$1
    G_DEAD=0
    D=$W/$VM
    rm -rf "$D"; mkdir -p "$D"
    SER=$D/serial.log; EVT=$D/events.json; API=$D/api.sock
    mkfifo "$D/in"; : >"$SER"
}
# vm_spawn SEQ CH-ARGS...: start the VMM with its API socket, its event
# monitor, CH_EXTRA and CH-ARGS (sets CHPID, SEQ). Its stdin/stdout on a
# pseudo-terminal (--serial tty only reads input from a terminal): output
# -> $SER, lines written to fd 3 -> input.
vm_spawn() {
    SEQ=$1; shift
    # shellcheck disable=SC2086 # CH_EXTRA: extra VMM words (diagnostics, e.g. "--seccomp log")
    set -- --api-socket "path=$API" --event-monitor "path=$EVT" ${CH_EXTRA:-} "$@"
    echo "$CH $*" >"$D/cmdline"
    ev "start $VM: cloud-hypervisor $*"
    "$RT" pty "$SER" "$D/in" "$CH" "$@" 2>"$D/ch.log" &
    CHPID=$!
    exec 3>"$D/in"
}
# vm_start NAME RASARGS|"" [extra CH args]   (sets VM, CHPID, SER, EVT, API)
# RASARGS: "$(ras_args OPTS)" ("--ras" or "--ras OPTS"), "" for no --ras
# MEM_EXTRA: appended to --memory size=... (",hugepages=on"); VM_ESP: the
# boot disk instead of $ESP.
vm_start() {
    ras=$2
    vm_dir "$1"; shift 2
    if [ "$MEM_BACKING" = file ]; then
        # Guest RAM in a named file: the VMM's mapping is found by its path.
        MEM_FILE=$D/guest-ram
        # The VMM maps the file as it is: make it the RAM's size (sparse).
        dd if=/dev/zero of="$MEM_FILE" bs=1 count=0 seek=$((GUEST_MEM_BYTES)) 2>/dev/null
        set -- --memory "size=0,shared=on" --memory-zone "id=ram0,size=$GUEST_MEM,file=$MEM_FILE,shared=on" "$@"
    else
        MEM_FILE=
        set -- --memory "size=$GUEST_MEM${MEM_EXTRA:-}" "$@"
    fi
    # shellcheck disable=SC2086 # CH_SERIAL: two words
    set -- --firmware "$FW" --disk "path=${VM_ESP:-$ESP},readonly=on" --cpus "boot=$GUEST_CPUS" \
        $CH_SERIAL "$@"
    # shellcheck disable=SC2086 # "--ras" or "--ras OPTS": two words
    [ -n "$ras" ] && set -- "$@" $ras
    T_START=$(now_ms)
    vm_spawn 0 "$@"
}
vm_restore() { # NAME SNAPDIR
    vm_dir "$1"
    vm_spawn 100 --restore "source_url=file://$2"
}
# vm_dest NAME: a VMM without a VM, to receive a migration (its serial on
# a pseudo-terminal too: the migrated guest's --serial tty is its stdin).
vm_dest() {
    vm_dir "$1"
    vm_spawn 300
}
# vm_save KEY / vm_switch KEY: remember the current VMM's variables, make a
# remembered VMM the current one again (its serial input on fd 3).
vm_save() {
    eval "SV_${1}_VM=\$VM SV_${1}_D=\$D SV_${1}_SER=\$SER SV_${1}_EVT=\$EVT SV_${1}_API=\$API SV_${1}_PID=\$CHPID SV_${1}_SEQ=\$SEQ SV_${1}_MF=\${MEM_FILE:-}"
}
vm_switch() {
    G_DEAD=0
    eval "VM=\$SV_${1}_VM D=\$SV_${1}_D SER=\$SV_${1}_SER EVT=\$SV_${1}_EVT API=\$SV_${1}_API CHPID=\$SV_${1}_PID SEQ=\$SV_${1}_SEQ MEM_FILE=\$SV_${1}_MF"
    exec 3>"$D/in"
}
alive() { kill -0 "$CHPID" 2>/dev/null; }
# vm_kill: end the current VMM: SIGTERM, then SIGKILL after 10 s (a VMM
# busy in receive-migration never gets to its SIGTERM: seen in scenario 14).
vm_kill() {
    kill "$CHPID" 2>/dev/null
    n=0; while alive && [ $n -lt 50 ]; do nap; n=$((n + 1)); done
    alive && { ev "VMM $VM ignored SIGTERM for 10 s: SIGKILL"; kill -9 "$CHPID" 2>/dev/null; }
    wait "$CHPID" 2>/dev/null; CH_STATUS=$?
}
# wait_log PATTERN SECONDS [FILE]: grep -E in the serial log (or FILE)
wait_log() {
    n=0; f=${3:-$SER}
    while ! grep -aqE -- "$1" "$f" 2>/dev/null; do
        alive || { grep -aqE -- "$1" "$f" 2>/dev/null; return $?; }
        n=$((n + 1)); [ "$n" -le $(($2 * 5)) ] || return 1
        nap
    done
}
vm_boot() { # wait for the agent; sets BOOT_MS
    if wait_log "RASGUEST ready" "$BOOT_TIMEOUT"; then
        BOOT_MS=$(( $(now_ms) - T_START ))
        ev "guest agent up after ${BOOT_MS} ms"
        if [ -n "$ras" ]; then BOOTS_RAS="${BOOTS_RAS:-} $BOOT_MS"; else BOOTS_BASE="${BOOTS_BASE:-} $BOOT_MS"; fi
        return 0
    fi
    ev "guest did not come up; VMM alive: $(alive && echo yes || echo no)"
    tail -n 20 "$SER" | tr -d '\r' | sed 's/^/    serial: /'
    tail -n 20 "$D/ch.log" | sed 's/^/    ch: /'
    return 1
}
# g CMD...: run a shell command in the guest, wait for it, print its output
# (also left in $D/g.out; never call g in $(...): SEQ must advance here)
# After one command timed out the agent is taken as gone (a guest kernel
# oops, a hung guest): the next ones return at once (G_RC=dead) instead of
# waiting their timeout each; vm_start/vm_restore/vm_dest/vm_switch reset it.
g() {
    SEQ=$((SEQ + 1))
    if [ "${G_DEAD:-0}" = 1 ]; then
        G_RC=dead; : >"$D/g.out"; ev "guest agent gone: not sent: $*"
        return 0
    fi
    before=$(wc -l <"$SER")
    echo "$SEQ $*" >&3
    # 180 s: a whole `dmesg` (longer with efi=debug) crosses the emulated
    # serial port in well over a minute when the machine is loaded.
    if wait_log "RASCMD-END $SEQ " "${GTIMEOUT:-180}"; then
        G_RC=$(grep -a "RASCMD-END $SEQ " "$SER" | tail -n1 | sed 's/.*rc=\([0-9]*\).*/\1/')
    else
        G_RC=timeout; G_DEAD=1
        ev "guest agent did not answer command $SEQ in ${GTIMEOUT:-180} s: taken as gone"
    fi
    tail -n +"$((before + 1))" "$SER" | tr -d '\r' | grep -av '^RASCMD-END' | sed 's/^/    guest: /' >"$D/g.out"
    cat "$D/g.out"
    return 0
}
# gbg CMD: start a background command in the guest (no wait)
gbg() { SEQ=$((SEQ + 1)); echo "$SEQ $* &" >&3; }
guest_gpa() { # TAG PAGE -> GPA printed by "rastest hold"
    grep -a "RASTEST page tag=$1 .*page=$2 " "$SER" | tail -n1 | sed 's/.*gpa=\(0x[0-9a-f]*\).*/\1/'
}
# guest_reboot: the guest agent reboots the guest (reboot -f);
# guest_rebooted SEQ: waits (BOOT_TIMEOUT) for the rebooted guest's agent,
# which numbers its commands from SEQ; status 0 when it came back.
guest_reboot() {
    nready=$(grep -ac "RASGUEST ready" "$SER")
    T_START=$(now_ms)
    SEQ=$((SEQ + 1))
    echo "$SEQ reboot -f" >&3
}
guest_rebooted() {
    n=0; while [ "$(grep -ac 'RASGUEST ready' "$SER")" -le "$nready" ] && alive && [ $n -lt $((BOOT_TIMEOUT * 5)) ]; do nap; n=$((n + 1)); done
    [ "$(grep -ac 'RASGUEST ready' "$SER")" -gt "$nready" ] || return 1
    ev "guest rebooted in $(( $(now_ms) - T_START )) ms"
    SEQ=$1
}
# middle_page TAG: of the pages "rastest hold TAG" printed, the GPA nearest
# the middle of guest RAM (the guest kernel's early, top-down allocations
# take the top: after a reboot the guest program can own that GPA again).
middle_page() {
    mid=$((GUEST_RAM_BASE + GUEST_MEM_BYTES / 2)); best=; bestd=
    for p in $(grep -a "RASTEST page tag=$1 " "$SER" | sed 's/.*gpa=\(0x[0-9a-f]*\).*/\1/'); do
        d=$((p - mid)); [ "$d" -lt 0 ] && d=$((-d))
        if [ -z "$bestd" ] || [ "$d" -lt "$bestd" ]; then best=$p; bestd=$d; fi
    done
    echo "$best"
}
guest_pid() { grep -a "RASTEST ready tag=$1 " "$SER" | tail -n1 | sed 's/.*pid=\([0-9]*\).*/\1/'; }
# hold_page TAG PAGES CPU: a guest process TAG holding PAGES pages on CPU;
# sets gpa (its first page's GPA) and pid, and says so.
hold_page() {
    gbg "rastest hold $1 $2 $3"
    wait_log "RASTEST ready tag=$1 " 60
    gpa=$(guest_gpa "$1" 0); pid=$(guest_pid "$1")
    ev "guest page $1/0 at GPA $gpa (pid $pid)"
}
# poison GPA: corrupt-pfn on the host page behind it (sets PFN, HVA)
poison() {
    out=$("$RT" hostpfn "$CHPID" "$1" "$GUEST_RAM_BASE" "$GUEST_MEM_BYTES" ${MEM_FILE:+"$MEM_FILE"})
    ev "$out"
    PFN=$(echo "$out" | sed -n 's/.* pfn=\(0x[0-9a-f]*\).*/\1/p')
    HVA=$(echo "$out" | sed -n 's/.* hva=\(0x[0-9a-f]*\).*/\1/p')
    [ -n "$PFN" ] || return 1
    t=$(now_ms)
    echo "$PFN" >/sys/kernel/debug/hwpoison/corrupt-pfn || return 1
    ev "corrupt-pfn $PFN written ($(( $(now_ms) - t )) ms); host: $(dmesg | grep -a 'emory failure' | tail -n1)"
}
# The vCPU threads' system calls around one error, from the kernel's own
# trace (raw_syscalls and signal_deliver, ftrace): vcpu_trace_on before the
# guest consumes, vcpu_trace_off FILE after; vcpu_trace_figure FILE prints,
# for each SIGBUS the VMM's vCPU threads took, the system calls between the
# end of its handler (rt_sigreturn) and the next KVM_RUN, and the times:
# signal = KVM_RUN returning -EINTR -> handler returned (the kernel's
# delivery, the handler, sigreturn); handling = handler returned -> next
# KVM_RUN (what the VMM does); set_vcpu_events = that ioctl alone
# (KVM_SET_VCPU_EVENTS = _IOW(0xae, 0xa0, 64 bytes) = 0x4040aea0, KVM_RUN =
# _IO(0xae, 0x80)).
# The kernel's trace file system (debugfs is mounted by l1-init.sh); scenario
# 10 uses it too.
TRACE=/sys/kernel/debug/tracing
vcpu_trace_on() {
    [ -d "$TRACE/events/raw_syscalls" ] || { ev "no raw_syscalls trace events in this kernel"; return 1; }
    tids=
    for t in /proc/"$CHPID"/task/*; do
        case $(cat "$t/comm" 2>/dev/null) in vcpu*) tids="$tids ${t##*/}" ;; esac
    done
    [ -n "$tids" ] || { ev "no vCPU threads found"; return 1; }
    echo 0 >"$TRACE/tracing_on"; : >"$TRACE/trace"
    echo 8192 >"$TRACE/buffer_size_kb"
    echo "$tids" >"$TRACE/set_event_pid"
    echo 1 >"$TRACE/events/raw_syscalls/enable"
    echo 1 >"$TRACE/events/signal/signal_deliver/enable"
    echo 1 >"$TRACE/tracing_on"
}
vcpu_trace_off() { # FILE
    echo 0 >"$TRACE/tracing_on"
    echo 0 >"$TRACE/events/raw_syscalls/enable"
    echo 0 >"$TRACE/events/signal/signal_deliver/enable"
    : >"$TRACE/set_event_pid"
    cat "$TRACE/trace" >"$1"
}
# arm64 system call numbers (asm-generic/unistd.h) of what may appear.
vcpu_trace_figure() { # FILE -> "errors=N syscalls=... " lines, one per SIGBUS
    awk '
    BEGIN { split("19 eventfd2 22 epoll_pwait 29 ioctl 63 read 64 write 66 writev 73 ppoll 98 futex 113 clock_gettime 124 sched_yield 131 tgkill 139 rt_sigreturn 172 getpid 178 gettid 215 munmap 222 mmap 233 madvise", a, " ")
            for (i = 1; i < 40; i += 2) name[a[i]] = a[i + 1] }
    function us(t) { return int(t * 1000000 + 0.5) }
    {
        if (!match($0, /[0-9]+\.[0-9]+: (sys_enter|sys_exit|signal_deliver): /)) next
        head = substr($0, 1, RSTART - 1); ev = substr($0, RSTART, RLENGTH); rest = substr($0, RSTART + RLENGTH)
        split(head, h, " "); tid = h[1]; sub(/.*-/, "", tid)
        split(ev, e, ": "); ts = e[1] + 0; kind = e[2]
        if (kind == "sys_exit" && rest ~ /^NR 29 = -4$/) { eintr[tid] = ts; next }
        if (kind == "signal_deliver") {
            if (rest ~ /^sig=7 /) { st[tid] = 1; t0[tid] = eintr[tid] }
            next
        }
        # rt_sigreturn: its exit is traced as "NR -1" (the restored frame).
        if (st[tid] == 1 && kind == "sys_enter" && rest ~ /^NR 139 /) { st[tid] = 3; next }
        if (st[tid] == 3 && kind == "sys_exit") {
            st[tid] = 2; t1[tid] = ts; n[tid] = 0; kinds[tid] = ""; delete cnt; next
        }
        if (st[tid] != 2) next
        split(rest, f, /[ (,)]+/); nr = f[2]; arg1 = f[4]
        if (kind == "sys_enter" && nr == 29 && arg1 == "ae80") {
            errors++
            h_us = us(ts - t1[tid]); calls = ""
            nk = split(kinds[tid], k, " ")
            for (i = 1; i <= nk; i++) calls = calls " " k[i] (cnt[k[i]] > 1 ? "*" cnt[k[i]] : "")
            printf "error=%d tid=%s syscalls=%d [%s ] signal_us=%d handling_us=%d set_vcpu_events_us=%s ratio=%s\n",
                errors, tid, n[tid], calls, us(t1[tid] - t0[tid]), h_us,
                (sev[tid] == "" ? "-" : sev[tid]), (sev[tid] > 0 ? sprintf("%.1f", h_us / sev[tid]) : "-")
            st[tid] = 0; sev[tid] = ""; next
        }
        if (kind == "sys_enter") {
            n[tid]++; c = (nr in name ? name[nr] : "nr" nr) (nr == 29 ? "(" arg1 ")" : "")
            if (!(c in cnt)) kinds[tid] = kinds[tid] " " c
            cnt[c]++
            if (nr == 29 && arg1 == "4040aea0") evt[tid] = ts
        } else if (nr == 29 && evt[tid] != "") { sev[tid] = us(ts - evt[tid]); evt[tid] = "" }
    }' "$1"
}
vmm_mem() { # VmRSS/VmHWM in kB
    RSS=$(awk '/^VmRSS/ {print $2}' "/proc/$CHPID/status" 2>/dev/null)
    HWM=$(awk '/^VmHWM/ {print $2}' "/proc/$CHPID/status" 2>/dev/null)
}
ras_events() { # print the RAS events (evidence), one compact object a line
    ras_event_objs | grep -a '"source":"ras"' | sed 's/^/    event: /' | tail -n "${1:-20}"
}
# has_event NAME: the event monitor wrote {"source": "ras", "event": NAME}
# (pretty-printed JSON, one key a line: match on the file with white space
# removed).
has_event() { tr -d ' \t\n' <"$EVT" 2>/dev/null | grep -aq "\"source\":\"ras\",\"event\":\"$1\""; }
# ras_event_objs: the event file, white space removed, one JSON object a
# line (objects start with {"timestamp"; properties are nested objects).
ras_event_objs() {
    tr -d ' \t\n' <"$EVT" 2>/dev/null | awk '{ gsub(/\}\{"timestamp"/, "}\n{\"timestamp\""); print }'
}
# ras_events_with NAME KEY=VALUE...: the current VMM's RAS events NAME
# whose properties include every "KEY":"VALUE" given (in any order), one a
# line; has_event_with: whether there is one; count_event_with: how many.
ras_events_with() {
    name=$1; shift
    objs=$(ras_event_objs | grep -a "\"source\":\"ras\",\"event\":\"$name\"")
    for kv in "$@"; do
        objs=$(echo "$objs" | grep -aF "\"${kv%%=*}\":\"${kv#*=}\"")
    done
    echo "$objs" | grep -a .
}
has_event_with() { ras_events_with "$@" >/dev/null; }
count_event_with() { ras_events_with "$@" | grep -c .; }
# The RASTEST part of a serial line: the guest kernel's console output can
# land inside a line written by rastest (printk bypasses the tty buffer).
rastest_part() { tr -d '\r' | sed 's/.*\(RASTEST \)/\1/; s/\(dt_us=[0-9]*\).*/\1/'; }
# quiet_console: only emergency messages on the guest console from now on
# (all messages stay in the guest's dmesg, which the scenarios read), so
# that printk cannot split the agent's and rastest's lines.
quiet_console() { g "dmesg -n 1; echo console-quiet"; }
vm_stop() { # graceful: guest poweroff, then VMM exit; sets CH_STATUS
    if alive; then
        echo "$((SEQ + 1)) poweroff -f" >&3
        n=0; while alive && [ $n -lt 100 ]; do nap; n=$((n + 1)); done
    fi
    if alive; then vm_kill; else wait "$CHPID" 2>/dev/null; CH_STATUS=$?; fi
    exec 3>&-
    ev "VMM $VM exit status $CH_STATUS"
}
vm_wait_exit() { # seconds -> CH_STATUS (if it exited)
    n=0; while alive && [ $n -lt $(($1 * 5)) ]; do nap; n=$((n + 1)); done
    if alive; then CH_STATUS=running; return 1; fi
    wait "$CHPID" 2>/dev/null; CH_STATUS=$?
    return 0
}
gdmesg_ras() { g "dmesg | grep -aiE 'hardware error|memory failure|physical_address|section_type|event severity|GHES|HEST|APEI|SIGBUS|error_type|ARM processor' | tail -n 40"; }
# ACPI/APEI errors in a raw guest dmesg (`dmesg -r`, lines "<level>..."):
# messages at level err or worse (0-3) about ACPI/APEI/HEST/GHES, plus
# "ACPI Error"/"ACPI BIOS Error" (ACPICA) at any level.
acpi_errors() {
    grep -aE '<[0-3]>.*(ACPI|APEI|HEST|GHES|Hardware Error)|ACPI (BIOS )?Error|Fatal hardware error' "$1"
}
# Informational APEI lines (printed as notes, not errors), e.g. "GHES:
# Failed to enable APEI firmware first mode." (pr_info: the platform has no
# WHEA _OSC; arm64 guests that take errors through GHES print it too).
acpi_notes() { grep -aE '<[4-7]>.*(APEI|GHES)' "$1"; }

# Self-test of the host-side poison path (no VMM: rastest stands in for
# it). Not a scenario: prints SELFTEST lines only.
if [ "${SELFTEST:-0}" = 1 ]; then
    D=$W/selftest; mkdir -p "$D"; SER=$D/out.log; : >"$SER"
    "$RT" hold st 37 0 >"$SER" 2>&1 &
    CHPID=$!
    wait_log "RASTEST ready tag=st " 20
    va0=$(grep -a "RASTEST page tag=st .*page=0 " "$SER" | sed 's/.*va=\(0x[0-9a-f]*\).*/\1/')
    va5=$(grep -a "RASTEST page tag=st .*page=5 " "$SER" | sed 's/.*va=\(0x[0-9a-f]*\).*/\1/')
    own=$(grep -a "RASTEST page tag=st .*page=5 " "$SER" | sed 's/.*gpa=\(0x[0-9a-f]*\).*/\1/')
    ev "own pagemap: page 5 va $va5 physical $own"
    out=$("$RT" hostpfn "$CHPID" "$va5" "$va0" $((37 * 4096)))
    ev "$out"
    PFN=$(echo "$out" | sed -n 's/.* pfn=\(0x[0-9a-f]*\).*/\1/p')
    if [ -n "$PFN" ] && [ $((PFN * 4096)) -eq $((own)) ]; then say "SELFTEST hostpfn matches the process's own pagemap: ok"; else say "SELFTEST hostpfn: FAIL"; fi
    # Touch page 5 after poisoning it: the reader of page 0 is fine, page 5
    # is read by SIGUSR2 (all pages).
    t=$(now_ms); echo "$PFN" >/sys/kernel/debug/hwpoison/corrupt-pfn; r=$?
    ev "corrupt-pfn $PFN: rc $r in $(( $(now_ms) - t )) ms; $(dmesg | grep -a 'emory failure' | tail -n 2 | tr '\n' ' ')"
    kill -USR1 "$CHPID"; sleep 1; kill -USR2 "$CHPID"; sleep 1
    tr -d '\r' <"$SER" | grep -aE 'touch|read-ok|sigbus' | sed 's/^/    rastest: /'
    if grep -aq "RASTEST sigbus tag=st .*code=BUS_MCEERR_AR.*addr=$va5 lsb=12" "$SER"; then
        say "SELFTEST corrupt-pfn then touch -> SIGBUS BUS_MCEERR_AR at the page, lsb 12: ok"
    else
        say "SELFTEST poison path: FAIL"
    fi
    exit 0
fi

[ -x "$CH" ] || { say "SKIP: no Cloud Hypervisor binary"; exit 77; }
[ -e /sys/kernel/debug/hwpoison/corrupt-pfn ] || say "WARN: no /sys/kernel/debug/hwpoison/corrupt-pfn"
say "L1 $(uname -r), $("$CH" --version 2>&1 | head -n1)"
[ -n "${CH_EXTRA:-}" ] && say "NOTE: diagnostic run, every VMM started with the extra arguments: $CH_EXTRA"

# ---- 1 boot + 3 asynchronous + 7 operator drill (--ras defaults) ----------
if want 1 || want 3 || want 7 || want 9; then
    say "=== VM ras-a: $(ras_args "$RAS_OPTS") (scenarios 1, 3, 7, 9)"
    vm_start ras-a "$(ras_args "$RAS_OPTS")"
    if vm_boot; then
        BOOT_RAS=$BOOT_MS; vmm_mem; RSS_RAS=$RSS; HWM_RAS=$HWM
        if want 1; then
            say "--- scenario 1: boot (HEST parsed, SEA + async sources registered)"
            g "rastest hest; ls -l /sys/bus/platform/drivers/GHES/; dmesg | grep -aiE 'HEST|GHES|APEI|ACPI.*Error'"
            g "dmesg -r" >/dev/null; cp "$D/g.out" "$D/dmesg-boot.txt"
            nsrc=$(grep -a 'RASTEST hest source=' "$SER" | grep -c .)
            nsea=$(grep -a 'RASTEST hest source=' "$SER" | grep -c 'notify=8(SEA)')
            nasync=$((nsrc - nsea))
            g "echo bound=\$(ls /sys/bus/platform/drivers/GHES/ | grep -c GHES)"
            nbound=$(sed -n 's/.*guest: bound=\([0-9][0-9]*\)$/\1/p' "$D/g.out" | tail -n1)
            errs=$(acpi_errors "$D/dmesg-boot.txt")
            [ -n "$errs" ] && echo "$errs" | sed 's/^/    acpi-error: /'
            acpi_notes "$D/dmesg-boot.txt" | sed 's/^/    note (info level, not an error): /'
            if grep -aq "HEST: Table parsing has been initialized" "$D/dmesg-boot.txt" && [ "$nsea" -ge 1 ] &&
                [ "$nasync" -ge 1 ] && [ "${nbound:-0}" -eq "$nsrc" ] && [ -z "$errs" ]; then
                result 1 boot PASS "sources=$nsrc sea=$nsea async=$nasync bound=$nbound"
            else
                result 1 boot FAIL "sources=$nsrc sea=$nsea async=$nasync bound=${nbound:-?} acpi_errors=$(echo "$errs" | grep -c .)"
            fi
        fi
        if want 3; then
            say "--- scenario 3: asynchronous (poisoned, not yet touched -> async source -> guest offlines)"
            hold_page s3 2 1
            if [ -n "$gpa" ] && poison "$gpa"; then
                gpfn=$(printf '0x%x' $((gpa >> 12)))
                wait_log "Memory failure: $gpfn" 10 || true
                sleep 3
                gdmesg_ras
                g "rastest kpf $gpfn"
                off=$(grep -a "RASTEST kpf pfn=$gpfn " "$SER" | tail -n1 | grep -c 'hwpoison=1')
                g "kill -USR1 $pid; sleep 2"
                ras_events
                got=$(grep -a "RASTEST sigbus tag=s3 " "$SER" | tail -n1)
                if [ "$off" = 1 ] && alive && has_event async-notified; then
                    result 3 async PASS "guest page $gpfn offlined before use (kpageflags hwpoison=1); later touch: ${got:-no SIGBUS}"
                else
                    result 3 async FAIL "hwpoison=$off alive=$(alive && echo y || echo n) async-notified=$(has_event async-notified && echo y || echo n) record-written=$(has_event record-written && echo y || echo n)"
                fi
            else
                result 3 async FAIL "no GPA or poisoning failed"
            fi
        fi
        if want 7; then
            say "--- scenario 7: operator drill (ch-remote inject-error)"
            if [ -x "$CHR" ]; then
                gbg "rastest hold s7 1 0"
                wait_log "RASTEST ready tag=s7 " 60
                gpa=$(guest_gpa s7 0)
                mem_args=$(echo "$INJECT_MEM_ARGS" | sed "s/@GPA@/$gpa/g")
                # Scenario 3 ran in this VM: count what is new.
                g "dmesg" >/dev/null; cp "$D/g.out" "$D/dmesg-before-drill.txt"
                mem0=$(grep -aic 'section_type: memory error' "$D/dmesg-before-drill.txt")
                arm0=$(grep -aic 'section_type: ARM processor error' "$D/dmesg-before-drill.txt")
                inj0=$(ras_event_objs | grep -ac '"source":"ras","event":"inject-requested"')
                ev "ch-remote inject-error $mem_args"
                "$CHR" --api-socket "$API" inject-error $mem_args >"$D/inject-mem.out" 2>&1; rm_=$?
                sed 's/^/    ch-remote: /' "$D/inject-mem.out"
                sleep 3
                ev "ch-remote inject-error $INJECT_ARM_ARGS"
                "$CHR" --api-socket "$API" inject-error $INJECT_ARM_ARGS >"$D/inject-arm.out" 2>&1; ra_=$?
                sed 's/^/    ch-remote: /' "$D/inject-arm.out"
                sleep 3
                g "dmesg" >/dev/null; cp "$D/g.out" "$D/dmesg-drill.txt"
                grep -aiE 'hardware error|section_type|physical_address|error_type|severity' "$D/dmesg-drill.txt" | tail -n 30
                ras_events 10
                memok=$(( $(grep -aic 'section_type: memory error' "$D/dmesg-drill.txt") - mem0 ))
                armok=$(( $(grep -aic 'section_type: ARM processor error' "$D/dmesg-drill.txt") - arm0 ))
                pa_ok=$(grep -aic "physical_address: 0x0*${gpa#0x}" "$D/dmesg-drill.txt")
                injok=$(( $(ras_event_objs | grep -ac '"source":"ras","event":"inject-requested"') - inj0 ))
                if [ $rm_ -eq 0 ] && [ $ra_ -eq 0 ] && [ "$memok" -ge 1 ] && [ "$armok" -ge 1 ] &&
                    [ "$pa_ok" -ge 1 ] && [ "$injok" -eq 2 ] && alive; then
                    result 7 drill PASS "new in the guest log: $memok memory error(s) at $gpa, $armok ARM processor error(s); inject-requested events: $injok"
                else
                    result 7 drill FAIL "ch-remote rc mem=$rm_ arm=$ra_, new guest memory sections=$memok (PA $gpa logged: $pa_ok) arm sections=$armok inject-requested=$injok"
                fi
            else
                result 7 drill FAIL "no ch-remote binary given"
            fi
        fi
        # Last in this VM: it unbinds and binds the GHES devices again.
        if want 9; then
            say "--- scenario 9: firmware memory map (RAS error sources: reserved, write-back; GHES mapped cacheable)"
            # The guest kernel runs with efi=debug (UEFI memory map in dmesg)
            # and a boot-time kprobe on __ioremap_prot (build-guest.sh).
            g "rastest hest"; cp "$D/g.out" "$D/hest.txt"
            g "dmesg | grep -aE 'efi: |HEST: '" >/dev/null; cp "$D/g.out" "$D/dmesg-fw.txt"
            # (a) the UEFI memory map entry at the region's base
            #     (efi=debug: "[Reserved |...|WB|...] range=[0x...400000-0x...]")
            ent=$(grep -a 'efi: ' "$D/dmesg-fw.txt" | grep -aE "0x0*${RAS_REGION_BASE#0x}-0x[0-9a-f]+" | head -n1 | sed 's/^ *guest: //')
            ev "memory map entry: ${ent:-none}"
            end=$(echo "$ent" | sed -n "s/.*0x0*${RAS_REGION_BASE#0x}-\(0x[0-9a-f]*\).*/\1/p")
            why=
            if [ -z "$end" ]; then
                why="$why no-memory-map-entry-at-$RAS_REGION_BASE"
                size=0
            else
                size=$((end + 1 - RAS_REGION_BASE))
                echo "$ent" | grep -q '\[Reserved' || why="$why entry-not-Reserved"
                echo "$ent" | grep -q '|WB|' || why="$why entry-without-WB"
                [ $((size % 0x10000)) -eq 0 ] && [ "$size" -le $((RAS_REGION_MAX)) ] ||
                    why="$why size=$(printf 0x%x "$size")"
            fi
            # ...and it covers every GHES register the HEST names
            nregs=0
            for a in $(grep -a 'RASTEST hest source=' "$D/hest.txt" | sed -n 's/.* esa=\(0x[0-9a-f]*\) ack=\(0x[0-9a-f]*\).*/\1 \2/p'); do
                [ "$((a))" -eq 0 ] && continue
                nregs=$((nregs + 1))
                if [ -z "$end" ] || [ $((a)) -lt $((RAS_REGION_BASE)) ] || [ $((a + 8)) -gt $((end + 1)) ]; then
                    why="$why register-$a-outside-entry"
                fi
            done
            [ "$nregs" -ge 2 ] || why="$why no-GHES-registers-in-HEST"
            # (b) how the guest maps the GHES registers. GHES binds at
            #     boot before any tracing can be set up, so: a kprobe on
            #     __ioremap_prot recording (phys, size, prot), then unbind
            #     and bind every GHES device again; ghes_probe -> ghes_new
            #     -> apei_map_generic_address -> acpi_os_ioremap maps the
            #     registers anew. AttrIndx (prot bits 4:2) 0 is MT_NORMAL
            #     (write-back); the kernel keeps MT_NORMAL at index 0.
            g "mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; cd /sys/kernel/tracing && echo 'p:ghesmap __ioremap_prot phys=\$arg1:x64 size=\$arg2:x64 prot=\$arg3:x64' >>kprobe_events && echo stacktrace >events/kprobes/ghesmap/trigger && echo 1 >events/kprobes/ghesmap/enable && echo probe-set; cd /; grep -aE 'phys=0x000000000(0[4-9a-f]|1[0-9a-f]|2[0-3])[0-9a-f]{5} ' /proc/vmallocinfo; for d in /sys/bus/platform/drivers/GHES/GHES.*; do echo \${d##*/} >/sys/bus/platform/drivers/GHES/unbind; done; ls /sys/bus/platform/devices | grep GHES | while read n; do echo \$n >/sys/bus/platform/drivers/GHES/bind; done; echo 0 >/sys/kernel/tracing/events/kprobes/ghesmap/enable; grep -a 'ghesmap:' /sys/kernel/tracing/trace | grep -c .; grep -av '^#' /sys/kernel/tracing/trace | head -n 200; grep -aE 'phys=0x000000000(0[4-9a-f]|1[0-9a-f]|2[0-3])[0-9a-f]{5} ' /proc/vmallocinfo; grep -a '^ *00400000-' /proc/iomem"
            cp "$D/g.out" "$D/maps.txt"
            ntrace=$(sed -n 's/^ *guest: \([0-9][0-9]*\)$/\1/p' "$D/maps.txt" | head -n1)
            nmap=0; attrs=
            for p in $(grep -a 'ghesmap:' "$D/maps.txt" | grep -aE ' phys=0x([4-9a-f][0-9a-f]{5}|1[0-9a-f]{6}|2[0-3][0-9a-f]{5}) ' | sed -n 's/.* phys=\(0x[0-9a-f]*\) .* prot=\(0x[0-9a-f]*\).*/\1:\2/p'); do
                a=${p%%:*}; prot=${p#*:}
                [ -n "$end" ] && { [ $((a)) -lt $((RAS_REGION_BASE)) ] || [ $((a)) -gt $((end)) ]; } && continue
                idx=$(( (prot >> 2) & 7 ))
                nmap=$((nmap + 1)); attrs="$attrs $a:AttrIndx=$idx"
                [ "$idx" -eq 0 ] || why="$why mapped-$a-AttrIndx$idx(not-MT_NORMAL)"
            done
            if [ "${ntrace:-0}" -eq 0 ]; then
                ev "note: no __ioremap_prot trace in the guest (kprobe_event unsupported?): mapping attributes not checked"
            elif [ "$nmap" -eq 0 ]; then
                why="$why no-GHES-mapping-traced"
            fi
            # (c) the HEST is parsed and every source bound
            nsrc=$(grep -a 'RASTEST hest source=' "$D/hest.txt" | grep -c .)
            g "echo bound=\$(ls /sys/bus/platform/drivers/GHES/ | grep -c GHES)"
            nbound=$(sed -n 's/.*guest: bound=\([0-9][0-9]*\)$/\1/p' "$D/g.out" | tail -n1)
            grep -aq "HEST: Table parsing has been initialized" "$D/dmesg-fw.txt" || why="$why HEST-not-initialized"
            [ "$nsrc" -ge 1 ] && [ "${nbound:-0}" -eq "$nsrc" ] || why="$why bound=${nbound:-?}/sources=$nsrc"
            # Context: with FEAT_S2FWB the host forces write-back at stage 2
            # whatever the guest maps; without it a Device mapping bypasses
            # the cache (emulation models no cache either way).
            ev "host (L1) FEAT_S2FWB: $(dmesg | grep -ai 'Stage-2 Force Write-Back' | head -n1 | grep . || echo 'not reported by the L1 kernel')"
            verdict 9 firmware-memmap "Reserved+WB entry $RAS_REGION_BASE-$end (size $(printf 0x%x "$size")) covers $nregs GHES registers; guest mappings:${attrs:- not traced}; HEST parsed, $nbound/$nsrc GHES bound"
        fi
        vm_stop
    else
        BOOT_RAS=
        for s in 1 3 7 9; do want $s && result $s boot-ras-a FAIL "guest did not boot"; done
        vm_stop
    fi
fi

# ---- 2 synchronous + 4 two vCPUs + 5 reboot (--ras, no early kill) --------
if want 2 || want 4 || want 5; then
    say "=== VM ras-s: $(ras_args "$RAS_OPTS_SYNC") (scenarios 2, 4, 5)"
    vm_start ras-s "$(ras_args "$RAS_OPTS_SYNC")"
    if vm_boot; then
        quiet_console
        if want 2; then
            say "--- scenario 2: synchronous recovery (guest process consumes a poisoned page)"
            gbg "rastest spin w2 0 >/tmp/w2.log 2>&1"
            hold_page s2 1 0
            if [ -n "$gpa" ] && poison "$gpa"; then
                S2GPA=$gpa
                gpfn=$(printf '0x%x' $((gpa >> 12)))
                vcpu_trace_on || ev "no system call trace"
                g "kill -USR1 $pid; sleep 3; tail -n 2 /tmp/w2.log; pidof rastest"
                vcpu_trace_off "$D/syscalls.trace"
                vcpu_trace_figure "$D/syscalls.trace" >"$D/syscalls.txt"
                ev "vCPU threads ($tids): $(grep -vc '^#' "$D/syscalls.trace") trace lines, $(grep -c 'sig=7 ' "$D/syscalls.trace") SIGBUS delivered"
                [ -s "$D/syscalls.txt" ] || grep -v '^#' "$D/syscalls.trace" | grep -a -B3 -A12 'sig=7 ' | head -n 40 | sed 's/^/    trace: /'
                while read -r line; do
                    figure "vcpu_thread_$line (kernel trace of the vCPU threads; syscalls between the SIGBUS handler's return and the next KVM_RUN)"
                done <"$D/syscalls.txt"
                gdmesg_ras
                ras_events
                sig=$(grep -a "RASTEST sigbus tag=s2 " "$SER" | tail -n1)
                dt=$(echo "$sig" | sed -n 's/.*dt_us=\([0-9]*\).*/\1/p')
                g "tail -n1 /tmp/w2.log"
                w2a=$(grep -ao 'n=[0-9]*' "$D/g.out" | tail -n1)
                sleep 2
                g "tail -n1 /tmp/w2.log"
                w2b=$(grep -ao 'n=[0-9]*' "$D/g.out" | tail -n1)
                ev "second workload progress: $w2a -> $w2b"
                g "dmesg" >/dev/null; cp "$D/g.out" "$D/dmesg-s2.txt"
                pa_ok=$(grep -aic "physical_address: 0x0*${gpa#0x}" "$D/dmesg-s2.txt")
                kill_ok=$(grep -aE "Memory failure: $gpfn: (Sending SIGBUS|Killing) .*$pid" "$D/dmesg-s2.txt" | grep -c .)
                [ -n "$dt" ] && figure "sigbus_latency_us=$dt (guest: touch of poisoned page -> SIGBUS handler, CLOCK_MONOTONIC in L2)"
                # The vCPU thread's bound per error: the injection ioctl and at
                # most one more system call (the most the trace shows; not
                # checked, and said so, when the kernel has no trace).
                nsys=$(sed -n 's/.* syscalls=\([0-9]*\) .*/\1/p' "$D/syscalls.txt" | sort -n | tail -n1)
                if echo "$sig" | grep -q 'code=BUS_MCEERR_AR' && [ "$pa_ok" -ge 1 ] && [ "$kill_ok" -ge 1 ] &&
                    [ -n "$w2b" ] && [ "$w2a" != "$w2b" ] && alive && { has_event sigbus-ar || has_event sea-exit; } &&
                    has_event record-written && has_event abort-injected && [ "${nsys:-0}" -le 2 ]; then
                    result 2 sync PASS "$sig; guest logged PA $gpa; second workload $w2a -> $w2b; events sigbus-ar|sea-exit, record-written, abort-injected; vCPU thread system calls per error: ${nsys:-not traced}"
                else
                    result 2 sync FAIL "sigbus='${sig:-none}' pa_logged=$pa_ok kill_logged=$kill_ok w2=$w2a->$w2b vcpu-syscalls=${nsys:-not-traced}(at most 2) alive=$(alive && echo y || echo n) sigbus-ar=$(has_event sigbus-ar && echo y || echo n) sea-exit=$(has_event sea-exit && echo y || echo n) record-written=$(has_event record-written && echo y || echo n) abort-injected=$(has_event abort-injected && echo y || echo n)"
                fi
            else
                result 2 sync FAIL "no GPA or poisoning failed"
            fi
        fi
        if want 4 && alive; then
            say "--- scenario 4: two processes on two vCPUs consume two poisoned pages at once"
            gbg "rastest hold s4a 1 0"
            gbg "rastest hold s4b 1 1"
            wait_log "RASTEST ready tag=s4b " 60; wait_log "RASTEST ready tag=s4a " 60
            ga=$(guest_gpa s4a 0); gb=$(guest_gpa s4b 0); pa=$(guest_pid s4a); pb=$(guest_pid s4b)
            ev "s4a GPA $ga pid $pa (cpu0), s4b GPA $gb pid $pb (cpu1)"
            grep -a 'RASTEST page tag=s4' "$SER" | rastest_part | sed 's/^/    guest: /'
            if [ -n "$ga" ] && [ -n "$gb" ] && [ "$ga" != "$gb" ] && poison "$ga" && poison "$gb"; then
                # One kill(1) signals both: the two touches start together.
                g "kill -USR1 $pa $pb; sleep 4; echo still-here"
                gdmesg_ras
                g "dmesg" >/dev/null; cp "$D/g.out" "$D/dmesg-s4.txt"
                ras_events
                g "echo vm-lives"
                lives=$(tr -d '\r' <"$SER" | grep -c '^vm-lives$')
                why=
                for x in a b; do
                    if [ $x = a ]; then gpa=$ga; pid=$pa; cpu=0; else gpa=$gb; pid=$pb; cpu=1; fi
                    gpfn=$(printf '0x%x' $((gpa >> 12)))
                    va=$(grep -a "RASTEST page tag=s4$x " "$SER" | rastest_part | tail -n1 | sed -n 's/.* va=\(0x[0-9a-f]*\).*/\1/p')
                    touch=$(grep -a "RASTEST touch tag=s4$x " "$SER" | rastest_part | tail -n1)
                    sig=$(grep -a "RASTEST sigbus tag=s4$x " "$SER" | rastest_part | tail -n1)
                    eval "sig_$x=\$sig"
                    dt=$(echo "$sig" | sed -n 's/.*dt_us=\([0-9]*\).*/\1/p'); eval "dt_$x=\$dt"
                    # Each check appends its name to why when it fails.
                    echo "$touch" | grep -q " cpu=$cpu " || why="$why s4$x-touch-not-on-cpu$cpu('$touch')"
                    echo "$sig" | grep -q "code=BUS_MCEERR_AR(4) addr=$va lsb=12 " ||
                        why="$why s4$x-sigbus('${sig:-none}',va=$va)"
                    grep -aqi "physical_address: 0x0*${gpa#0x}\$" "$D/dmesg-s4.txt" || why="$why s4$x-guest-pa-not-logged"
                    grep -aqE "Memory failure: $gpfn: (Sending SIGBUS|Killing) .*$pid" "$D/dmesg-s4.txt" ||
                        why="$why s4$x-guest-kill-not-logged"
                    { has_event_with sigbus-ar "gpa=$gpa" "vcpu=$cpu" || has_event_with sea-exit "gpa=$gpa" "vcpu=$cpu"; } ||
                        why="$why s4$x-no-sigbus-ar/sea-exit(gpa=$gpa,vcpu=$cpu)"
                    has_event_with record-written "gpa=$gpa" || why="$why s4$x-no-record-written(gpa=$gpa)"
                    has_event_with abort-injected "vcpu=$cpu" || why="$why s4$x-no-abort-injected(vcpu=$cpu)"
                done
                alive || why="$why vmm-dead"
                [ "$lives" -ge 1 ] || why="$why guest-not-answering"
                [ -n "${dt_a:-}" ] && [ -n "${dt_b:-}" ] &&
                    figure "two_vcpu_sigbus_latency_us cpu0=$dt_a cpu1=$dt_b (guest: touch -> SIGBUS handler, both touches started by one kill)"
                verdict 4 two-vcpus "$sig_a | $sig_b; guest logged PAs $ga $gb; events sigbus-ar|sea-exit + record-written + abort-injected for vcpu 0 and 1"
            else
                result 4 two-vcpus FAIL "no GPA, same GPA twice ($ga $gb) or poisoning failed"
            fi
        elif want 4; then
            result 4 two-vcpus FAIL "VMM not running after scenario 2"
        fi
        if want 5 && alive; then
            say "--- scenario 5: reboot after poison, same GPA used again"
            # A page of its own, the one nearest the middle of guest RAM:
            # after the reboot the guest program must own that GPA again,
            # and the kernel's early (top-down) allocations take the top.
            gbg "rastest hold s5 64 0"; wait_log "RASTEST ready tag=s5 " 60
            gpa=$(middle_page s5)
            if [ -n "$gpa" ] && poison "$gpa"; then
                # Consumed (sync path): the page is in the VMM's poison list.
                g "kill -USR2 $(guest_pid s5); sleep 2"
            fi
            ev "rebooting the guest (poisoned GPA $gpa)"
            guest_reboot
            if guest_rebooted 200; then
                gpfn=$(printf '0x%x' $((gpa >> 12)))
                GTIMEOUT=600 g "rastest kpf $gpfn; rastest hunt $gpa 440; dmesg | grep -aiE 'hardware error|memory failure' | tail -n 5; echo dmesg-checked"
                hunt=$(grep -a "RASTEST hunt-" "$SER" | tail -n1)
                hw=$(grep -a "RASTEST kpf pfn=$gpfn " "$SER" | tail -n1)
                ras_events 5
                # Anonymous RAM is fresh after any reboot: the VMM must also
                # have taken the page out of its poison list (and repaired it).
                repaired=$(has_event_with poison-repaired "gpa=$gpa" && echo y || echo n)
                # Deterministic proof that the GPA is usable again (the
                # hunt alone is not: the rebooted kernel may hold the page,
                # e.g. in the page cache of the initramfs, and the hunt can
                # never own it). (a) The guest does not consider it bad:
                # kpageflags hwpoison=0 (and its flags tell whether the
                # kernel holds it: not buddy). (b) The host page behind it
                # is readable: L1 reads it through /proc/PID/mem (EIO if
                # it were still poisoned), and its pagemap entry is then a
                # present page without hwpoison. (c) No consumption was
                # reported since the reboot. The hunt owning the page and
                # writing it is printed as extra evidence when it happens.
                peek=$("$RT" peek "$CHPID" "$gpa" "$GUEST_RAM_BASE" "$GUEST_MEM_BYTES")
                pte=$("$RT" hostpte "$CHPID" "$gpa" "$GUEST_RAM_BASE" "$GUEST_MEM_BYTES")
                ev "host: $peek"; ev "host: $pte"
                flags=$(echo "$hw" | sed -n 's/.* flags=\(0x[0-9a-f]*\).*/\1/p')
                if echo "$hunt" | grep -q hunt-ok; then use="$hunt"
                elif [ -n "$flags" ] && [ $(( (flags >> 10) & 1 )) -eq 1 ]; then use="free in the guest's buddy allocator (flags $flags; ${hunt:-no hunt line})"
                elif [ -n "$flags" ]; then use="held by the guest kernel (flags $flags, not buddy; ${hunt:-no hunt line})"
                else use=; fi
                after_ev=$(ras_event_objs | awk -v g="\"gpa\":\"$gpa\"" '/"event":"poison-repaired"/ && index($0, g) { seen = 1; next } seen && /"event":"(sigbus-ar|sea-exit)"/ && index($0, g) { n++ } END { print n + 0 }')
                if echo "$hw" | grep -q hwpoison=0 && [ -n "$use" ] && echo "$peek" | grep -q ' ok=1 ' &&
                    echo "$pte" | grep -q 'present=1 .*host_hwpoison=0' && [ "$after_ev" -eq 0 ] &&
                    [ "$repaired" = y ] && alive; then
                    result 5 reboot PASS "$hw; GPA $use; host page readable and not poisoned ($(echo "$pte" | sed 's/.*\(pfn=[^ ]*\).*/\1/')); poison-repaired gpa=$gpa"
                else
                    result 5 reboot FAIL "kpf='${hw:-none}' use='${use:-unknown}' peek='$peek' pte='$pte' consumptions-after-reboot=$after_ev hunt='${hunt:-none}' poison-repaired=$repaired alive=$(alive && echo y || echo n)"
                fi
            else
                result 5 reboot FAIL "guest did not come back (VMM alive: $(alive && echo y || echo n))"
                tail -n 20 "$SER" | tr -d '\r' | sed 's/^/    serial: /'
            fi
        elif want 5; then
            result 5 reboot FAIL "VMM not running"
        fi
        vm_stop
        tail -n 5 "$D/ch.log" | sed 's/^/    ch: /'
    else
        for s in 2 4 5; do want $s && result $s boot-ras-s FAIL "guest did not boot"; done
        vm_stop
    fi
fi

# ---- 6 snapshot and restore after poison ---------------------------------
if want 6; then
    say "=== VM ras-snap: $(ras_args "$RAS_OPTS") (scenario 6)"
    vm_start ras-snap "$(ras_args "$RAS_OPTS")"
    if vm_boot && [ -x "$CHR" ]; then
        say "--- scenario 6: snapshot and restore after poison"
        gbg "rastest hold s6 2 0"
        wait_log "RASTEST ready tag=s6 " 60
        gpa=$(guest_gpa s6 0)
        poison "$gpa"; sleep 3
        SNAP=$W/snap; rm -rf "$SNAP"; mkdir -p "$SNAP"
        "$CHR" --api-socket "$API" pause; p_=$?
        "$CHR" --api-socket "$API" snapshot "file://$SNAP" >"$D/snap.out" 2>&1; s_=$?
        sed 's/^/    ch-remote: /' "$D/snap.out"; ls -la "$SNAP" | sed 's/^/    snap: /'
        ras_events 10
        vm_kill; exec 3>&-
      if [ $s_ -ne 0 ]; then
        r_=skipped; ok=0
        ev "snapshot failed: restore not attempted"
      else
        vm_restore ras-restored "$SNAP"
        n=0; while [ ! -S "$API" ] && [ $n -lt 150 ]; do nap; n=$((n + 1)); done
        sleep 2
        "$CHR" --api-socket "$API" resume >"$D/resume.out" 2>&1; r_=$?
        sed 's/^/    ch-remote: /' "$D/resume.out"
        g "echo restored-guest-runs; rastest spin r6 2"
        ok=$(grep -ac "RASTEST done tag=r6" "$SER")
        tail -n 5 "$D/ch.log" | sed 's/^/    ch: /'
      fi
        if [ $p_ -eq 0 ] && [ $s_ -eq 0 ] && [ "$r_" = 0 ] && [ "$ok" -ge 1 ] && alive; then
            result 6 snapshot-restore PASS "pause/snapshot/restore/resume ok, restored guest runs"
        else
            result 6 snapshot-restore FAIL "pause=$p_ snapshot=$s_ resume=$r_ guest-ran=$ok alive=$(alive && echo y || echo n)"
        fi
        vm_stop
    else
        result 6 snapshot-restore FAIL "$([ -x "$CHR" ] && echo 'guest did not boot' || echo 'no ch-remote binary')"
        vm_stop
    fi
fi

# ---- 8 baseline without --ras ---------------------------------------------
if want 8; then
    say "=== VM base: no $RAS_FLAG (scenario 8 + baseline figures)"
    vm_start base ""
    if vm_boot; then
        BOOT_BASE=$BOOT_MS; vmm_mem; RSS_BASE=$RSS; HWM_BASE=$HWM
        say "--- scenario 8: baseline consumption without $RAS_FLAG"
        hold_page s8 1 0
        if [ -n "$gpa" ] && poison "$gpa"; then
            # The VMM must survive the poisoning itself (no early kill by
            # default): the death counted here is the guest's consumption.
            sleep 2
            alive_after_poison=$(alive && echo y || echo n)
            echo "$((SEQ + 1)) kill -USR1 $pid" >&3; SEQ=$((SEQ + 1))
            vm_wait_exit 30
            touched=$(grep -a "RASTEST touch tag=s8 " "$SER" | grep -c .)
            readok=$(grep -a "RASTEST read-ok tag=s8 " "$SER" | grep -c .)
            tail -n 8 "$SER" | tr -d '\r' | sed 's/^/    serial: /'
            tail -n 5 "$D/ch.log" | sed 's/^/    ch: /'
            dmesg | grep -aE 'Memory failure|cloud-hyperv' | tail -n 3 | sed 's/^/    host: /'
            ev "VMM status after the guest consumed the poisoned page: $CH_STATUS (135 = killed by SIGBUS)"
            if [ "$CH_STATUS" = 135 ] && [ "$alive_after_poison" = y ] && [ "$touched" -ge 1 ] && [ "$readok" -eq 0 ]; then
                result 8 baseline PASS "recorded: without $RAS_FLAG the VMM survives the poisoning and is killed by SIGBUS (status 135) when the guest touches the page"
            else
                result 8 baseline FAIL "recorded: VMM status $CH_STATUS (expected today: 135, SIGBUS), alive after poisoning=$alive_after_poison, guest touch lines=$touched, read-ok lines=$readok"
            fi
        else
            result 8 baseline FAIL "no GPA or poisoning failed"
        fi
        alive && vm_stop
    else
        result 8 baseline FAIL "guest did not boot"
        vm_stop
    fi
fi

# ---- 10-18: the production cases (issue 13) --------------------------------
. "$FSD/l1-prodcases.sh"

# ---- optional extra boots for the boot-time / memory figures -------------
i=0
while [ "$i" -lt "${BOOT_BENCH:-0}" ]; do
    i=$((i + 1))
    for mode in ras base; do
        if [ $mode = ras ]; then vm_start "bench-ras-$i" "$(ras_args "$RAS_OPTS")"; else vm_start "bench-base-$i" ""; fi
        if vm_boot; then
            vmm_mem
            if [ $mode = ras ]; then RSSS_RAS="${RSSS_RAS:-} $RSS"; else RSSS_BASE="${RSSS_BASE:-} $RSS"; fi
        fi
        vm_stop
    done
done
[ -n "${RSSS_RAS:-}" ] && figure "bench vmm_rss_kb ras [$RSSS_RAS ] noras [$RSSS_BASE ]"

# ---- logs: every VM's serial log, events, VMM stderr (run.sh files them) ---
for d in "$W"/*/; do
    vm=$(basename "$d")
    for f in cmdline serial.log events.json ch.log; do
        [ -s "$d$f" ] || continue
        # Large files (the storm's events) keep their head and tail: the
        # L1 console is slow.
        nl=$(wc -l <"$d$f")
        if [ "$nl" -gt 4000 ]; then
            { head -n 2000 "$d$f"; echo "[... $((nl - 4000)) lines left out ...]"; tail -n 2000 "$d$f"; } | tr -d '\r' | sed "s|^|FSLOG $vm/$f |"
        else
            tr -d '\r' <"$d$f" | sed "s|^|FSLOG $vm/$f |"
        fi
    done
done

# Diagnostic runs with "--seccomp log": what the filters would have refused.
if echo " ${CH_EXTRA:-} " | grep -q -- '--seccomp log'; then
    dmesg | grep -aE 'type=1326|seccomp' | tail -n 30 | sed 's/^/    L1 seccomp-log: /'
fi

# ---- figures -------------------------------------------------------------
min_of() { echo "$*" | tr ' ' '\n' | grep . | sort -n | head -n1; }
if [ -n "${BOOTS_RAS:-}" ] && [ -n "${BOOTS_BASE:-}" ]; then
    br=$(min_of $BOOTS_RAS); bb=$(min_of $BOOTS_BASE)
    figure "boot_ms_ras=$br boot_ms_noras=$bb ratio=$(awk "BEGIN{printf \"%.3f\", $br/$bb}") (fastest VMM start -> guest agent, UEFI+ACPI, same L1 run; all boots: ras [$BOOTS_RAS ] noras [$BOOTS_BASE ])"
fi
[ -n "${RSS_RAS:-}" ] && figure "vmm_rss_kb_ras=$RSS_RAS vmm_hwm_kb_ras=$HWM_RAS"
[ -n "${RSS_BASE:-}" ] && figure "vmm_rss_kb_noras=$RSS_BASE vmm_hwm_kb_noras=$HWM_BASE"
say "SUMMARY $PASSED passed, $FAILED failed${SKIPPED:+, $SKIPPED skipped}"
[ "$FAILED" -eq 0 ]
