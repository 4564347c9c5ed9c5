# SPDX-License-Identifier: Apache-2.0
#
# Driving one Cloud Hypervisor VM from inside L1 (busybox sh: POSIX only;
# source it). What the full-stack orchestrators of both architectures
# share (scripts/fullstack/l1-orchestrate.sh and l1-prodcases.sh, arm64;
# scripts/fullstack-x86/l1-orchestrate.sh, x86_64): the pieces that do not
# depend on the guest's architecture or on how it boots, and the scenarios'
# bookkeeping (result, verdict, want).
#
# The caller sets, before using them:
#   CH   the cloud-hypervisor binary     RT  the rastest binary (pty, hostpfn,
#   W    a scratch directory                 now; tests/fullstack/rastest.c)
#   FSV_PREFIX  the prefix of every line said (default FULLSTACK)
#   GUEST_RAM_BASE GUEST_MEM_BYTES  GPA and size of the VMM's one mapping
#       of guest RAM (rastest hostpfn finds it by its size, or by the path
#       MEM_FILE when guest RAM is a file)
#   ONLY  the scenarios to run ("1 3"; empty: all)
# and may set: FSV_NUDGE=0 (fsv_wait_answer never nudges the guest's serial
# input), FSV_STOP_WAIT (seconds fsv_stop waits for the guest's poweroff,
# 30), HOLD_TIMEOUT (seconds fsv_hold waits for its process, 120).
# and starts a VM with fsv_dir NAME + fsv_spawn CH-ARGS... (which set VM,
# D, SER, EVT, API, CHPID, SEQ). The guest runs the console agent of
# scripts/fullstack/guest-init.sh ("RASGUEST ready", "<id> <cmd>" lines in,
# "RASCMD-END <id> rc=<n>" out).

fsv_say() { echo "${FSV_PREFIX:-FULLSTACK} $*"; }
fsv_ev() { echo "    | $*"; }
fsv_nap() { sleep 0.2 2>/dev/null || sleep 1; }
fsv_now_ms() { "$RT" now; }

# Scenarios' bookkeeping: result N NAME PASS|FAIL|SKIP [WHY] counts (PASSED,
# FAILED, SKIPPED) and says "RESULT N NAME ..."; verdict N NAME PASS-TEXT
# [FAIL-TEXT]: PASS with PASS-TEXT when the checks left no reason in $why,
# else FAIL with the reasons (and FAIL-TEXT); want N: scenario N runs.
PASSED=0 FAILED=0 SKIPPED=0
result() {
    case $3 in
        PASS) PASSED=$((PASSED + 1)) ;;
        SKIP) SKIPPED=$((SKIPPED + 1)) ;;
        *) FAILED=$((FAILED + 1)) ;;
    esac
    fsv_say "RESULT $1 $2 $3${4:+ ($4)}"
}
verdict() {
    if [ -z "$why" ]; then result "$1" "$2" PASS "$3"; else result "$1" "$2" FAIL "failed:$why${4:-}"; fi
}
want() { [ -z "${ONLY:-}" ] || echo " $ONLY " | grep -q " $1 "; }

# fsv_dir NAME: a fresh directory for VM NAME (sets VM, D, SER, EVT, API).
fsv_dir() {
    VM=$1
    G_DEAD=0
    D=$W/$VM
    rm -rf "$D"; mkdir -p "$D"
    SER=$D/serial.log; EVT=$D/events.json; API=$D/api.sock
    mkfifo "$D/in"; : >"$SER"
}

# fsv_spawn CH-ARGS...: start the VMM with its API socket and event monitor
# (sets CHPID, SEQ=0, T_START). Its stdin/stdout on a pseudo-terminal
# (`--serial tty` reads input only from a terminal): output -> $SER, lines
# written to fd 3 -> its input.
fsv_spawn() {
    set -- --api-socket "path=$API" --event-monitor "path=$EVT" "$@"
    echo "$CH $*" >"$D/cmdline"
    fsv_ev "start $VM: cloud-hypervisor $*"
    SEQ=0
    T_START=$(fsv_now_ms)
    "$RT" pty "$SER" "$D/in" "$CH" "$@" 2>"$D/ch.log" &
    CHPID=$!
    exec 3>"$D/in"
}

fsv_alive() { kill -0 "$CHPID" 2>/dev/null; }

# fsv_wait_log PATTERN SECONDS [FILE]: grep -E in the serial log (or FILE)
# until it matches (0), the time passes or the VMM is gone (1).
fsv_wait_log() {
    _n=0; _f=${3:-$SER}
    while ! grep -aqE -- "$1" "$_f" 2>/dev/null; do
        fsv_alive || { grep -aqE -- "$1" "$_f" 2>/dev/null; return $?; }
        _n=$((_n + 1)); [ "$_n" -le $(($2 * 5)) ] || return 1
        fsv_nap
    done
}

# fsv_boot SECONDS: wait for the guest's agent; sets BOOT_MS (VMM start ->
# "RASGUEST ready") and GUEST_UPTIME (the guest kernel's uptime then).
fsv_boot() {
    if fsv_wait_log "RASGUEST ready" "$1"; then
        BOOT_MS=$(( $(fsv_now_ms) - T_START ))
        GUEST_UPTIME=$(grep -a -m1 'RASGUEST ready' "$SER" | sed -n 's/.*uptime=\([0-9.]*\).*/\1/p')
        fsv_ev "guest agent up after ${BOOT_MS} ms (guest uptime ${GUEST_UPTIME:-?} s)"
        return 0
    fi
    fsv_ev "guest did not come up in $1 s; VMM alive: $(fsv_alive && echo yes || echo no)"
    tail -n 30 "$SER" | tr -d '\r' | sed 's/^/    serial: /'
    tail -n 20 "$D/ch.log" | sed 's/^/    ch: /'
    return 1
}

# fsv_wait_answer SEQ SECONDS: wait for "RASCMD-END SEQ"; every 10 s
# without it, an empty line to the agent (which ignores it): a guest's 8250
# driver can leave its transmitter idle with output queued when the
# kernel's own console writes (machine-check messages) cut into it; the
# interrupt of received input restarts it.
fsv_wait_answer() {
    _left=$2
    while [ "$_left" -gt 0 ]; do
        _s=10; [ "$_left" -lt 10 ] && _s=$_left
        # rc= and a digit: the line can stop short of its status when the
        # transmitter stalls (below), and the nudge then brings the rest.
        fsv_wait_log "RASCMD-END $1 rc=[0-9]" "$_s" && return 0
        fsv_alive || return 1
        _left=$((_left - _s))
        [ "$_left" -gt 0 ] && [ "${FSV_NUDGE:-1}" != 0 ] &&
            { echo >&3; fsv_ev "no answer to command $1 yet: nudged the guest's serial input"; }
    done
    return 1
}
# g CMD...: run a shell command in the guest, wait for it (GTIMEOUT, 180 s)
# and print its output (also left in $D/g.out; sets G_RC). Never call it in
# $(...): SEQ must advance in this shell. After one time-out the agent is
# taken as gone and the next calls return at once (G_RC=dead).
g() {
    SEQ=$((SEQ + 1))
    if [ "${G_DEAD:-0}" = 1 ]; then
        G_RC=dead; : >"$D/g.out"; fsv_ev "guest agent gone: not sent: $*"
        return 0
    fi
    _before=$(wc -l <"$SER")
    echo "$SEQ $*" >&3
    if fsv_wait_answer "$SEQ" "${GTIMEOUT:-180}"; then
        G_RC=$(grep -a "RASCMD-END $SEQ " "$SER" | tail -n1 | sed 's/.*rc=\([0-9]*\).*/\1/')
    else
        G_RC=timeout; G_DEAD=1
        if fsv_alive; then
            fsv_ev "guest agent did not answer command $SEQ in ${GTIMEOUT:-180} s: taken as gone"
        else
            fsv_ev "VMM gone: command $SEQ not answered"
        fi
    fi
    tail -n +"$((_before + 1))" "$SER" | tr -d '\r' | grep -av '^RASCMD-END' | sed 's/^/    guest: /' >"$D/g.out"
    cat "$D/g.out"
    return 0
}
# gbg CMD: start a background command in the guest (no wait).
gbg() { SEQ=$((SEQ + 1)); echo "$SEQ $* &" >&3; }
# gsend CMD: send a command without waiting for its end (the guest may die).
gsend() { SEQ=$((SEQ + 1)); echo "$SEQ $*" >&3; }

# fsv_hold TAG PAGES CPU: a guest process TAG ("rastest hold") holding
# PAGES pages; sets gpa (its first page's GPA) and pid.
fsv_hold() {
    gbg "rastest hold $1 $2 $3"
    fsv_wait_log "RASTEST ready tag=$1 " "${HOLD_TIMEOUT:-120}"
    gpa=$(grep -a "RASTEST page tag=$1 .*page=0 " "$SER" | tail -n1 | sed 's/.*gpa=\(0x[0-9a-f]*\).*/\1/')
    pid=$(grep -a "RASTEST ready tag=$1 " "$SER" | tail -n1 | sed 's/.*pid=\([0-9]*\).*/\1/')
    fsv_ev "guest page $1/0 at GPA ${gpa:-?} (pid ${pid:-?})"
}

# fsv_poison GPA: debugfs hwpoison/corrupt-pfn on the host page behind GPA
# (GPA -> the VMM's address through its mapping of guest RAM, or of the
# file MEM_FILE -> its /proc/PID/pagemap -> PFN); sets PFN, HVA.
fsv_poison() {
    _out=$("$RT" hostpfn "$CHPID" "$1" "$GUEST_RAM_BASE" "$GUEST_MEM_BYTES" ${MEM_FILE:+"$MEM_FILE"})
    fsv_ev "$_out"
    PFN=$(echo "$_out" | sed -n 's/.* pfn=\(0x[0-9a-f]*\).*/\1/p')
    HVA=$(echo "$_out" | sed -n 's/.* hva=\(0x[0-9a-f]*\).*/\1/p')
    [ -n "$PFN" ] || return 1
    _t=$(fsv_now_ms)
    echo "$PFN" >/sys/kernel/debug/hwpoison/corrupt-pfn || return 1
    fsv_ev "corrupt-pfn $PFN written ($(( $(fsv_now_ms) - _t )) ms); host: $(dmesg | grep -a 'emory failure' | tail -n1)"
}

# fsv_kill: end the VMM: SIGTERM, SIGKILL after 10 s; sets CH_STATUS.
fsv_kill() {
    kill "$CHPID" 2>/dev/null
    _n=0; while fsv_alive && [ $_n -lt 50 ]; do fsv_nap; _n=$((_n + 1)); done
    fsv_alive && { fsv_ev "VMM $VM ignored SIGTERM for 10 s: SIGKILL"; kill -9 "$CHPID" 2>/dev/null; }
    fsv_reap
}
# fsv_reap: wait for the exited VMM once (sets CH_STATUS; a second call
# keeps the status the first one got).
fsv_reap() {
    [ "${FSV_REAPED:-}" = "$CHPID" ] && return 0
    wait "$CHPID" 2>/dev/null; CH_STATUS=$?
    FSV_REAPED=$CHPID
}
# fsv_stop: guest poweroff, then the VMM's exit (or, after FSV_STOP_WAIT
# seconds, fsv_kill); sets CH_STATUS.
fsv_stop() {
    if fsv_alive; then
        echo "$((SEQ + 1)) poweroff -f" >&3
        _n=0; while fsv_alive && [ $_n -lt $((${FSV_STOP_WAIT:-30} * 5)) ]; do fsv_nap; _n=$((_n + 1)); done
    fi
    if fsv_alive; then fsv_kill; else fsv_reap; fi
    exec 3>&-
    fsv_ev "VMM $VM exit status $CH_STATUS"
}
# fsv_wait_exit SECONDS: wait for the VMM to exit; sets CH_STATUS (or
# "running", status 1).
fsv_wait_exit() {
    _n=0; while fsv_alive && [ $_n -lt $(($1 * 5)) ]; do fsv_nap; _n=$((_n + 1)); done
    if fsv_alive; then CH_STATUS=running; return 1; fi
    fsv_reap
    return 0
}

# fsv_baseline TAG SECONDS: without --ras, a guest process holds a page
# (fsv_hold TAG), its host page is poisoned (fsv_poison), then the process
# reads it (SIGUSR1): the VMM must have survived the poisoning and then die
# of SIGBUS (status 135) within SECONDS, the process having touched the
# page and read nothing. Status 0 when so; FSV_BASELINE says what was seen.
fsv_baseline() {
    fsv_hold "$1" 1 0
    if [ -z "$gpa" ] || ! fsv_poison "$gpa"; then
        FSV_BASELINE="no GPA or poisoning failed"
        return 1
    fi
    # No early kill by default: the VMM survives the poisoning; the death
    # counted is the guest's consumption.
    sleep 2
    _alive=$(fsv_alive && echo y || echo n)
    gsend "kill -USR1 $pid"
    fsv_wait_exit "$2" || true
    _touched=$(grep -ac "RASTEST touch tag=$1 " "$SER")
    _readok=$(grep -ac "RASTEST read-ok tag=$1 " "$SER")
    tail -n 6 "$SER" | tr -d '\r' | sed 's/^/    serial: /'
    tail -n 4 "$D/ch.log" | sed 's/^/    ch: /'
    dmesg | grep -aE 'Memory failure|cloud-hyperv|Sending SIGBUS' | tail -n 4 | sed 's/^/    host: /'
    fsv_ev "VMM status after the guest read the poisoned page: $CH_STATUS (135 = killed by SIGBUS)"
    FSV_BASELINE="VMM status $CH_STATUS (expected 135, SIGBUS), alive after poisoning=$_alive, guest touch lines=$_touched, read-ok lines=$_readok"
    [ "$CH_STATUS" = 135 ] && [ "$_alive" = y ] && [ "$_touched" -ge 1 ] && [ "$_readok" -eq 0 ]
}

# fsv_events: the event monitor's RAS events, one compact object a line.
fsv_events() {
    tr -d ' \t\n' <"$EVT" 2>/dev/null | awk '{ gsub(/\}\{"timestamp"/, "}\n{\"timestamp\""); print }' |
        grep -a '"source":"ras"'
}

# Diagnostics: the ioctls the VMM's threads issue around an error, from the
# kernel's own trace (raw_syscalls sys_enter, ioctl = 16 on x86_64, 29 on
# arm64: FSV_IOCTL_NR). fsv_trace_on before, fsv_trace_ioctls after: one
# line per distinct (thread name, ioctl request), with its count.
FSV_TRACE=/sys/kernel/debug/tracing
fsv_trace_on() {
    [ -d "$FSV_TRACE/events/raw_syscalls" ] || { fsv_ev "no raw_syscalls trace events in this kernel"; return 1; }
    _tids=$(ls /proc/"$CHPID"/task 2>/dev/null | tr '\n' ' ')
    echo 0 >"$FSV_TRACE/tracing_on"; : >"$FSV_TRACE/trace"
    echo 4096 >"$FSV_TRACE/buffer_size_kb"
    echo "$_tids" >"$FSV_TRACE/set_event_pid"
    echo "id == ${FSV_IOCTL_NR:-16}" >"$FSV_TRACE/events/raw_syscalls/sys_enter/filter"
    echo 1 >"$FSV_TRACE/events/raw_syscalls/sys_enter/enable"
    echo 1 >"$FSV_TRACE/tracing_on"
}
fsv_trace_ioctls() {
    echo 0 >"$FSV_TRACE/tracing_on"
    echo 0 >"$FSV_TRACE/events/raw_syscalls/sys_enter/enable"
    echo 0 >"$FSV_TRACE/events/raw_syscalls/sys_enter/filter"
    : >"$FSV_TRACE/set_event_pid"
    # "  vcpu0-123  [000] .....  12.3: sys_enter: NR 16 (b, ae80, 0, ...)"
    sed -n 's/^ *\(.*\)-[0-9]* *\[.*sys_enter: NR [0-9]* ([0-9a-f]*, \([0-9a-f]*\),.*/\1 ioctl=0x\2/p' "$FSV_TRACE/trace" |
        sort | uniq -c | sed 's/^ */    ioctls: /'
}

# fsv_events_with NAME KEY=VALUE...: the RAS events NAME whose properties
# include every "KEY":"VALUE" given, one a line; fsv_has_event: whether
# there is one; fsv_count_event: how many.
fsv_events_with() {
    _name=$1; shift
    _objs=$(fsv_events | grep -a "\"event\":\"$_name\"")
    for _kv in "$@"; do
        _objs=$(echo "$_objs" | grep -aF "\"${_kv%%=*}\":\"${_kv#*=}\"")
    done
    echo "$_objs" | grep -a .
}
fsv_has_event() { fsv_events_with "$@" >/dev/null; }
fsv_count_event() { fsv_events_with "$@" | grep -c .; }

# fsv_reboot: the guest reboots itself (`reboot -f` through the agent);
# fsv_rebooted SECONDS: wait for the next "RASGUEST ready" (0) or not (1);
# the agent is taken as alive again.
fsv_reboot() {
    FSV_NREADY=$(grep -ac "RASGUEST ready" "$SER")
    T_START=$(fsv_now_ms)
    gsend "reboot -f"
}
fsv_rebooted() {
    _n=0
    while [ "$(grep -ac 'RASGUEST ready' "$SER")" -le "$FSV_NREADY" ] && fsv_alive && [ $_n -lt $(($1 * 5)) ]; do
        fsv_nap; _n=$((_n + 1))
    done
    [ "$(grep -ac 'RASGUEST ready' "$SER")" -gt "$FSV_NREADY" ] || return 1
    BOOT_MS=$(( $(fsv_now_ms) - T_START )); G_DEAD=0
    fsv_ev "guest rebooted: agent up again after ${BOOT_MS} ms"
}

# rastest_part: the RASTEST part of serial lines (the guest kernel's
# console output or an escape may precede it; what follows dt_us is cut).
rastest_part() { tr -d '\r' | sed 's/.*\(RASTEST \)/\1/; s/\(dt_us=[0-9]*\).*/\1/'; }

# fsv_user_lines: the lines of $SER as the guest's programs wrote them. The
# kernel prints to the same serial port, and a message (from its
# "[  12.345678] " stamp to the end of the line) can cut into a program's
# line: such messages are taken out and the program's line joined again
# (the x86 guest's machine-check report does, at the moment the process
# that consumed the poison prints its SIGBUS).
fsv_user_lines() {
    tr -d '\r' <"$SER" | awk '{
        i = match($0, /\[ *[0-9]+\.[0-9]+\] /)
        if (i) { pend = pend substr($0, 1, i - 1); next }
        print pend $0; pend = ""
    }'
}

# fsv_toucher_checks TAG CPU GPA PID DMESG: one of the two touchers of the
# two-vCPU scenario, from its RASTEST lines in $SER and the guest's kernel
# log DMESG. Sets va (its page), touch and sig (its lines), gpfn; appends
# to why each check that fails: the touch ran on vCPU CPU, the process got
# BUS_MCEERR_AR at its page with lsb 12, it never read the page, and the
# guest logged killing PID for the page frame of GPA.
fsv_toucher_checks() {
    local tag=$1 cpu=$2 gpa=$3 pid=$4 dmesg=$5
    gpfn=$(printf '0x%x' $((gpa >> 12)))
    va=$(fsv_user_lines | grep -a "RASTEST page tag=$tag " | rastest_part | tail -n1 | sed -n 's/.* va=\(0x[0-9a-f]*\).*/\1/p')
    touch=$(fsv_user_lines | grep -a "RASTEST touch tag=$tag " | rastest_part | tail -n1)
    sig=$(fsv_user_lines | grep -a "RASTEST sigbus tag=$tag " | rastest_part | tail -n1)
    echo "$touch" | grep -q " cpu=$cpu " || why="$why $tag-touch-not-on-cpu$cpu('$touch')"
    echo "$sig" | grep -q "code=BUS_MCEERR_AR(4) addr=$va lsb=12 " || why="$why $tag-sigbus('${sig:-none}',va=$va)"
    fsv_user_lines | grep -aq "RASTEST read-ok tag=$tag " && why="$why $tag-read-ok"
    grep -aqE "Memory failure: $gpfn: (Sending SIGBUS|Killing) .*$pid" "$dmesg" || why="$why $tag-guest-kill-not-logged"
}
