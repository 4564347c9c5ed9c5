# SPDX-License-Identifier: Apache-2.0
#
# Full-stack scenarios 10-18: the memory-error cases production hosts meet
# (issue 13). Sourced by l1-orchestrate.sh after scenario 8 (busybox sh in
# L1, as root); uses its helpers (vm_start, vm_boot, g, gbg, fsv_poison,
# result, figure, ...). Each scenario prints "FULLSTACK RESULT <n> <name>
# PASS|FAIL|SKIP (evidence)" and one figure line: its time, the VmHWM of
# the VMM before and after, and the RAS events and records it caused.
#
# FS_NEGATIVE="10 11 ..." runs those scenarios with their feature disabled
# (the negative control; each must then FAIL): 10 storm_limit=0 (the VMM
# re-injects forever), 11/12 no --ras (the VMM does not know the pages),
# 14 no --ras, 15 no --ras, 16 no --ras (nothing repairs the file),
# 17 rate_limit=0,storm_limit=0, 18 rasdaemon not started. Scenario 13's
# control is the series commit before "Keep poisoned memory poisoned in a
# restored or migrated VM" (run.sh --ch <that binary> --only 13).
#
#   10 hugetlb            2 MiB hugetlb guest RAM: consumption in a lost huge page
#   11 migrate-precopy    live migration after poison (UNIX socket, precopy)
#   12 migrate-postcopy   the same with memory_mode=postcopy
#   13 no-silent-zero     known, untold poison across snapshot/restore and migration
#   14 latent-poison      the VMM's own copies hit poison it did not know
#   15 device-io          virtio-blk O_DIRECT write from a poisoned buffer
#   16 file-shared-reboot memory zone on a tmpfs file, shared=on: hole punched
#   17 storm              injections and poisoned pages at full speed
#   18 rasdaemon          Debian's rasdaemon in the guest records the errors

# ---- helpers ----------------------------------------------------------------
# Every RAS event (or those named NAME...) in every event file of this run.
count_ras_events() {
    if [ $# -eq 0 ]; then
        cat "$W"/*/events.json 2>/dev/null | tr -d ' \t\n' | grep -ao '"source":"ras","event":"[a-z-]*"' | grep -c .
    else
        pat=$(echo "$*" | sed 's/ /|/g')
        cat "$W"/*/events.json 2>/dev/null | tr -d ' \t\n' | grep -aoE "\"source\":\"ras\",\"event\":\"($pat)\"" | grep -c .
    fi
}
# The sum of the "count" of every events-suppressed event so far.
suppressed_sum() {
    cat "$W"/*/events.json 2>/dev/null | tr -d ' \t\n' | grep -ao '"event":"events-suppressed","properties":{[^}]*}' |
        sed -n 's/.*"count":"\{0,1\}\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }'
}
# The sum of the current VMM's RAS counters (vm.counters, entry "ras"; the
# closing brace dropped, or the last counter, in the map's order of the
# moment, would not be summed).
ras_counters_sum() {
    "$CHR" --api-socket "$API" counters 2>/dev/null | tr -d ' \n' | grep -o '"ras":{[^}]*}' | tr -d '}' |
        tr ',' '\n' | sed -n 's/.*:\([0-9][0-9]*\)$/\1/p' | awk '{ s += $1 } END { print s + 0 }'
}
has_vm_event() { tr -d ' \t\n' <"${2:-$EVT}" 2>/dev/null | grep -aq "\"source\":\"vm\",\"event\":\"$1\""; }
hwm_of() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null; }
# scen_begin N: start the clock and the event counts of scenario N;
# scen_hwm0: the VmHWM of the current VMM (after its boot); scen_end: the
# figure line (SC_HWM1 may be set when the VMM is gone).
scen_begin() {
    SC_N=$1; SC_T0=$(fsv_now_ms); SC_EV0=$(count_ras_events)
    SC_REC0=$(count_ras_events record-written queued-record-written); SC_HWM0=; SC_HWM1=
}
scen_hwm0() { SC_HWM0=$(hwm_of "$CHPID"); SC_VM0=$VM; }
scen_end() {
    [ -z "$SC_HWM1" ] && SC_HWM1=$(hwm_of "$CHPID")
    figure "scenario $SC_N: time_ms=$(( $(fsv_now_ms) - SC_T0 )) vmm_hwm_kb before=${SC_HWM0:-?}(${SC_VM0:-?}) after=${SC_HWM1:-exited}($VM) ras_events=$(( $(count_ras_events) - SC_EV0 )) records=$(( $(count_ras_events record-written queued-record-written) - SC_REC0 ))"
}
# host_pte GPA: the current VMM's pagemap entry for GPA (rastest hostpte).
host_pte() { "$RT" hostpte "$CHPID" "$1" "$GUEST_RAM_BASE" "$GUEST_MEM_BYTES" ${MEM_FILE:+"$MEM_FILE"}; }
host_peek() { "$RT" peek "$CHPID" "$1" "$GUEST_RAM_BASE" "$GUEST_MEM_BYTES" ${MEM_FILE:+"$MEM_FILE"}; }
# wait_event NAME SECONDS [FILE]: a "vm" or "ras" event NAME appears.
wait_event() {
    n=0
    while ! tr -d ' \t\n' <"${3:-$EVT}" 2>/dev/null | grep -aq "\"event\":\"$1\""; do
        n=$((n + 1)); [ "$n" -le $(($2 * 5)) ] || return 1
        fsv_nap
    done
}
# wait_exit PID SECONDS: the process is gone.
wait_pid_exit() {
    n=0
    while kill -0 "$1" 2>/dev/null; do
        n=$((n + 1)); [ "$n" -le $(($2 * 5)) ] || return 1
        fsv_nap
    done
}
# progress TAG LOG: PROG = the workload's last "alive n=..." count. (g
# must not run in $(...): its command counter would not advance.)
progress() {
    g "tail -n1 $2" >/dev/null
    PROG=$(grep -ao "alive tag=$1 .* n=[0-9]*" "$D/g.out" | tail -n1 | sed 's/.* n=\([0-9]*\).*/\1/')
}
# touch_page TAG PID: SIGUSR1 to the holder TAG (its guest PID: after a
# restore or a migration the serial log is a new file); TOUCHED = its
# outcome (the RASTEST sigbus or read-ok line, "none" without either).
touch_page() {
    g "kill -USR1 $2; sleep 3; echo touched-$1"
    TOUCHED=$(grep -aE "RASTEST (sigbus|read-ok) tag=$1 " "$SER" | rastest_part | tail -n1)
    TOUCHED=${TOUCHED:-none}
}
show_ch_log() { tail -n "${2:-6}" "${1:-$D}/ch.log" 2>/dev/null | sed 's/^/    ch: /'; }

# migrate MODE DEST: migrate the current VM to a new VMM named DEST over a
# UNIX socket (MODE precopy or postcopy). Sets MIG_OK (y/n), MIG_MS,
# MIG_SEND_RC, MIG_RECV_RC, MIG_SRC (the source VMM's state afterwards).
# On success the destination is the current VMM; otherwise the source stays
# current and the destination is stopped.
migrate() {
    mode=$1
    vm_save src
    msock=$W/$2.mig; rm -f "$msock"
    vm_dest "$2"
    vm_save dst
    n=0; while [ ! -S "$API" ] && [ $n -lt 150 ]; do fsv_nap; n=$((n + 1)); done
    "$CHR" --api-socket "$API" receive-migration "receiver_url=unix:$msock,memory_mode=$mode" >"$D/recv.out" 2>&1 &
    rpid=$!
    wait_event migration-receive-ready 30 || ev "destination not ready after 30 s"
    n=0; while [ ! -S "$msock" ] && [ $n -lt 50 ]; do fsv_nap; n=$((n + 1)); done
    t=$(fsv_now_ms)
    "$CHR" --api-socket "$SV_src_API" send-migration "destination_url=unix:$msock,memory_mode=$mode" >"$SV_src_D/send.out" 2>&1
    MIG_SEND_RC=$?
    # send-migration returns once the worker started: wait for its outcome
    # (source events) and for the receiver's answer.
    n=0
    while ! has_vm_event migration-finished "$SV_src_EVT" && ! has_vm_event migration-failed "$SV_src_EVT" &&
        kill -0 "$SV_src_PID" 2>/dev/null && [ $n -lt 1500 ]; do fsv_nap; n=$((n + 1)); done
    n=0; while kill -0 "$rpid" 2>/dev/null && [ $n -lt 300 ]; do fsv_nap; n=$((n + 1)); done
    kill -0 "$rpid" 2>/dev/null && kill "$rpid" 2>/dev/null
    wait "$rpid"; MIG_RECV_RC=$?
    MIG_MS=$(( $(fsv_now_ms) - t ))
    sed 's/^/    send: /' "$SV_src_D/send.out"; sed 's/^/    receive: /' "$D/recv.out"
    src_ev=$(has_vm_event migration-finished "$SV_src_EVT" && echo finished || { has_vm_event migration-failed "$SV_src_EVT" && echo failed || echo none; })
    dst_ev=$(has_vm_event migration-receive-finished && echo finished || { has_vm_event migration-receive-failed && echo failed || echo none; })
    if [ "$src_ev" = finished ]; then
        wait_pid_exit "$SV_src_PID" 30
    fi
    if kill -0 "$SV_src_PID" 2>/dev/null; then MIG_SRC=running; else wait "$SV_src_PID" 2>/dev/null; MIG_SRC="exited($?)"; fi
    ev "migration $mode: send rc=$MIG_SEND_RC receive rc=$MIG_RECV_RC source event=$src_ev destination event=$dst_ev source VMM $MIG_SRC; ${MIG_MS} ms"
    if [ "$src_ev" = finished ] && [ "$dst_ev" = finished ] && [ "$MIG_RECV_RC" = 0 ] && fsv_alive; then
        MIG_OK=y
    else
        MIG_OK=n
        show_ch_log "$SV_src_D" 8 | sed 's/ch:/source ch:/'
        show_ch_log "$D" 8 | sed 's/ch:/destination ch:/'
        fsv_kill
        vm_switch src
        # A failed migration may leave the source paused.
        "$CHR" --api-socket "$API" resume >/dev/null 2>&1
    fi
}

# ---- 10 hugetlb-backed guest RAM -------------------------------------------
if want 10; then
    scen_begin 10
    say "=== VM ras-huge: hugetlb-backed RAM (scenario 10)"
    mkdir -p /dev/hugepages; mount -t hugetlbfs none /dev/hugepages 2>/dev/null
    need=$((GUEST_MEM_BYTES / 2097152 + 4))
    echo "$need" >/proc/sys/vm/nr_hugepages
    got=$(cat /proc/sys/vm/nr_hugepages)
    ev "L1: nr_hugepages=$got (asked $need); $(grep -E '^(HugePages_Total|HugePages_Free|Hugepagesize)' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"
    if [ "$got" -lt $((GUEST_MEM_BYTES / 2097152)) ]; then
        result 10 hugetlb SKIP "L1 could reserve only $got 2 MiB pages"
    else
        # What the L1 kernel tells the VMM: a kprobe on send_sig_mceerr
        # (code, si_addr, si_addr_lsb; its caller in the stack trace).
        echo 'p:rasmce send_sig_mceerr code=%x0:s32 addr=%x1:x64 lsb=%x2:s16' >>"$TRACE/kprobe_events" 2>/dev/null &&
            echo stacktrace >"$TRACE/events/kprobes/rasmce/trigger" && echo 1 >"$TRACE/events/kprobes/rasmce/enable" && : >"$TRACE/trace" ||
            ev "note: no kprobe on send_sig_mceerr (si_addr not measured)"
        opts=early_kill=off
        neg 10 && opts="early_kill=off,storm_limit=0,rate_limit=0"
        MEM_EXTRA=",hugepages=on" vm_start ras-huge "$(ras_args "$opts")"
        if vm_boot; then
            scen_hwm0
            ev "L1 after boot: $(grep -E '^(HugePages_Free|HugePages_Rsvd)' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"
            ev "VMM RAM mapping: $(awk -v kb=$((GUEST_MEM_BYTES / 1024)) '/^[0-9a-f]+-[0-9a-f]+ / { m = $0 } /^Size:/ { s = $2 } /^KernelPageSize:/ { if (s == kb) print m " KernelPageSize=" $2 "kB" }' "/proc/$CHPID/smaps")"
            quiet_console
            gbg "rastest spin w10 0 >/tmp/w10.log 2>&1"
            # One 2 MiB transparent huge page of the guest, all of it the
            # test process's (no other guest process, init included, has a
            # page in the 2 MiB the host loses). Page 1 is touched: not the
            # first 4 KiB of its 2 MiB, the case a 2 MiB record does not
            # cover. The process lives 5 s after its SIGBUS, its other pages
            # its own while the rest of the 2 MiB reaches the guest.
            g "echo always >/sys/kernel/mm/transparent_hugepage/enabled; echo always >/sys/kernel/mm/transparent_hugepage/defrag; echo 1 >/proc/sys/vm/compact_memory; echo thp=\$(cat /sys/kernel/mm/transparent_hugepage/enabled) free=\$(grep MemFree /proc/meminfo)"
            gbg "rastest hold s10 512 0 1 thp"
            fsv_wait_log "RASTEST ready tag=s10 " 60
            thp=$(grep -a "RASTEST thp tag=s10 " "$SER" | rastest_part | tail -n1)
            ev "guest: $thp"
            gpa=$(guest_gpa s10 1)
            va=$(grep -a "RASTEST page tag=s10 .*page=1 " "$SER" | sed 's/.*va=\(0x[0-9a-f]*\).*/\1/')
            hbase=$(printf '0x%x' $(( gpa & ~0x1fffff )))
            ev "guest page s10/1 at GPA $gpa (offset $(printf 0x%x $((gpa & 0x1fffff))) in the 2 MiB at $hbase)"
            progress w10 /tmp/w10.log; w0=$PROG
            if [ -n "$gpa" ] && echo "$thp" | grep -q 'aligned=1 contiguous=512/512' && fsv_poison "$gpa"; then
                hva=$HVA
                t=$(fsv_now_ms)
                g "kill -USR1 $(guest_pid s10); sleep 8; echo after-touch"
                sleep 2
                sig=$(grep -a "RASTEST sigbus tag=s10 " "$SER" | rastest_part | tail -n1)
                readok=$(grep -a "RASTEST read-ok tag=s10 " "$SER" | rastest_part | tail -n1)
                ras_events 12
                nar=$(fsv_count_event sigbus-ar); nrec=$(fsv_count_event record-written)
                stopped=$(fsv_events | grep -a '"event":"vm-stopped"' | head -n1 | sed 's/.*"properties":\(.*\)}$/\1/')
                # The L1 kernel's signals to the VMM.
                if [ -r "$TRACE/trace" ]; then
                    grep -a 'rasmce:' "$TRACE/trace" | head -n 3 | sed 's/^ */    L1 kprobe: /'
                    grep -a -A14 'rasmce:' "$TRACE/trace" | grep -a -m1 -A12 'stack trace' | sed 's/^ */    L1 stack: /' | head -n 12
                    k=$(grep -a 'rasmce:' "$TRACE/trace" | head -n1)
                    kaddr=$(echo "$k" | sed -n 's/.*addr=\(0x[0-9a-f]*\).*/\1/p'); klsb=$(echo "$k" | sed -n 's/.*lsb=\([0-9-]*\).*/\1/p')
                    kcode=$(echo "$k" | sed -n 's/.*code=\([0-9-]*\).*/\1/p')
                    nk=$(grep -ac 'rasmce:' "$TRACE/trace")
                    if [ -n "$kaddr" ]; then
                        hstart=$(( hva & ~0x1fffff ))
                        if [ $((kaddr)) -eq $((hva)) ]; then where="the touched 4 KiB page"
                        elif [ $((kaddr)) -eq "$hstart" ]; then where="the start of the huge page"
                        elif [ $((kaddr & 0xfff)) -eq 0 ]; then where="a 4 KiB page $(printf 0x%x $((kaddr - hstart))) into the huge page, not the touched one: the exact page of the first guest access to the lost 2 MiB (another user of that 2 MiB came first), lsb says 2 MiB are lost"
                        else where="other ($(printf 0x%x $((kaddr - hstart))) into the huge page)"; fi
                        figure "hugetlb_sigbus code=$kcode si_addr=$kaddr si_addr_lsb=$klsb signals=$nk (touched page hva $hva, huge page start $(printf 0x%x "$hstart"): si_addr = $where)"
                    fi
                fi
                if fsv_alive; then
                    progress w10 /tmp/w10.log; w1=$PROG
                    gdmesg_ras
                    # The rest of the 2 MiB reaches the guest a few pages
                    # a record, each after the guest's ack: wait for it.
                    tk=$(fsv_now_ms)
                    while :; do
                        g "rastest kpfrange $(printf 0x%x $((hbase >> 12))) 512"
                        kr=$(grep -a "RASTEST kpfrange " "$SER" | tail -n1 | rastest_part)
                        lost=$(echo "$kr" | sed -n 's/.* hwpoison=\([0-9]*\).*/\1/p')
                        [ "${lost:-0}" -lt 512 ] && [ $(( $(fsv_now_ms) - tk )) -lt 90000 ] && fsv_alive && [ "${G_DEAD:-0}" = 0 ] || break
                        sleep 5
                    done
                    ev "guest kpageflags of the lost 2 MiB: $kr ($(( $(fsv_now_ms) - t )) ms after the touch)"
                    # Linux's memory-failure queue (16 per CPU) drops what
                    # does not fit: the pacing of the rest of the 2 MiB is
                    # what keeps it from overflowing.
                    g "echo RASTEST mfqueue handled=\$(dmesg | grep -ac 'Memory failure: 0x.*: recovery action') overflow=\$(dmesg | grep -ac 'buffer overflow when queuing memory failure')"
                    mfq=$(grep -a "RASTEST mfqueue " "$SER" | tail -n1 | rastest_part)
                    overflow=$(echo "$mfq" | sed -n 's/.* overflow=\([0-9]*\).*/\1/p')
                    figure "hugetlb_guest_mf_queue $mfq"
                else
                    w1=; kr="VMM gone"; lost=; overflow=
                    fsv_wait_exit 5
                    show_ch_log "$D" 8
                    ev "VMM exit status $CH_STATUS"
                fi
                figure "hugetlb_consumption sigbus_ar_events=$nar records=$nrec guest_pages_offlined_of_512=${lost:-?} vm_stopped=${stopped:-no} ($(( $(fsv_now_ms) - t )) ms after the touch)"
                why=
                echo "$sig" | grep -q "code=BUS_MCEERR_AR(4) addr=$va " || why="$why process-not-killed-with-BUS_MCEERR_AR('${sig:-none}'${readok:+ / $readok})"
                fsv_alive || why="$why VMM-gone(${CH_STATUS:-?}${stopped:+, vm-stopped $stopped})"
                [ -n "$w1" ] && [ -n "$w0" ] && [ "$w1" -gt "$w0" ] || why="$why workload-stopped($w0->${w1:-none})"
                [ "${lost:-0}" -eq 512 ] || why="$why guest-offlined-${lost:-?}/512-pages-of-the-lost-2MiB"
                [ "${overflow:-?}" = 0 ] || why="$why guest-memory-failure-queue-overflowed-${overflow:-?}-times"
                echo "$thp" | grep -q 'aligned=1 contiguous=512/512' || why="$why the-guest-did-not-give-the-process-a-whole-2MiB('${thp:-none}')"
                verdict 10 hugetlb "$sig; workload $w0 -> $w1; the guest offlined all 512 pages of the 2 MiB at $hbase; sigbus-ar=$nar records=$nrec" "; sigbus-ar=$nar records=$nrec"
            else
                result 10 hugetlb FAIL "no GPA, no whole 2 MiB in the guest (${thp:-no thp line}) or poisoning failed"
            fi
        else
            result 10 hugetlb FAIL "guest did not boot"
            show_ch_log "$D" 8
        fi
        scen_end
        fsv_stop
        echo 0 >"$TRACE/events/kprobes/rasmce/enable" 2>/dev/null
        echo '-:rasmce' >>"$TRACE/kprobe_events" 2>/dev/null
    fi
    echo 0 >/proc/sys/vm/nr_hugepages
fi

# ---- 11/12 live migration after poison -------------------------------------
# mig_checks TOUCH: what both migrations must show, into $why: the source
# knew both poisoned pages, the workload ran before and after, both pages
# are poisoned at the destination (host PTEs $pa $pb), the guest's touch
# TOUCH was BUS_MCEERR_AR, the destination VMM lives.
mig_checks() {
    why=
    [ "$known" -eq 2 ] || why="$why source-knew-$known/2-pages"
    [ -n "$w0" ] && [ -n "$w2" ] && [ "$w2" -gt "${w1:-0}" ] && [ "${w1:-0}" -ge "$w0" ] || why="$why workload($w0->${w1:-none}->${w2:-none})"
    for p in "$pa" "$pb"; do echo "$p" | grep -q 'present=0 swap=1' || why="$why dest-page-not-poisoned($p)"; done
    echo "$1" | grep -q 'code=BUS_MCEERR_AR' || why="$why touch('$1')"
    fsv_alive || why="$why destination-VMM-gone"
}
if want 11 || want 12; then
    scen_begin 11
    rasm=$(ras_args "$RAS_OPTS")
    { neg 11 || neg 12; } && rasm=
    say "=== VM ras-mig: ${rasm:-no --ras} (scenarios 11, 12)"
    vm_start ras-mig "$rasm"
    if vm_boot && [ -x "$CHR" ]; then
        scen_hwm0
        quiet_console
        gbg "rastest spin w11 0 >/tmp/w11.log 2>&1"
        gbg "rastest hold s11a 1 0"; gbg "rastest hold s11b 1 1"
        fsv_wait_log "RASTEST ready tag=s11a " 60; fsv_wait_log "RASTEST ready tag=s11b " 60
        ga=$(guest_gpa s11a 0); gb=$(guest_gpa s11b 0); pid_s11a=$(guest_pid s11a); pid_s11b=$(guest_pid s11b)
        ev "poisoning s11a GPA $ga and s11b GPA $gb (the VMM learns of both: early kill, action optional)"
        fsv_poison "$ga"; pfa=$PFN; fsv_poison "$gb"; pfb=$PFN
        sleep 4
        known=0
        for x in "$ga" "$gb"; do fsv_has_event page-poisoned "gpa=$x" && known=$((known + 1)); done
        ras_events 8
        g "rastest kpf $(printf 0x%x $((ga >> 12))); rastest kpf $(printf 0x%x $((gb >> 12)))"
        progress w11 /tmp/w11.log; w0=$PROG
        MIG_OK=n
        if want 11; then
            say "--- scenario 11: live migration after poison (precopy, UNIX socket)"
            hwm_src=$(hwm_of "$CHPID")
            migrate precopy ras-mig-d1
            if [ "$MIG_OK" = y ]; then
                progress w11 /tmp/w11.log; w1=$PROG; sleep 3; progress w11 /tmp/w11.log; w2=$PROG
                pa=$(host_pte "$ga"); pb=$(host_pte "$gb")
                ev "destination host page of $ga: $pa"; ev "destination host page of $gb: $pb"
                "$CHR" --api-socket "$API" counters 2>/dev/null | tr -d ' \n' | grep -o '"ras":{[^}]*}' | sed 's/^/    destination counters: /'
                touch_page s11a "$pid_s11a"; ta=$TOUCHED
                ev "guest touch of s11a after the migration: $ta"
                mig_checks "$ta"
                figure "migration precopy: ${MIG_MS} ms for $GUEST_MEM (UNIX socket, in L1); source VmHWM ${hwm_src} kB, destination VmHWM $(hwm_of "$CHPID") kB"
                verdict 11 migrate-precopy "migrated in ${MIG_MS} ms, source VMM $MIG_SRC; poisoned pages left out and kept poisoned at the destination ($(echo "$pa" | sed 's/.*\(present=.*\)/\1/')); workload $w0 -> $w1 -> $w2; touch: $ta"
            else
                result 11 migrate-precopy FAIL "migration failed (send rc=$MIG_SEND_RC receive rc=$MIG_RECV_RC, source VMM $MIG_SRC, alive=$(fsv_alive && echo y || echo n))"
            fi
            scen_end
        fi
        if want 12 && fsv_alive; then
            scen_begin 12
            scen_hwm0
            say "--- scenario 12: live migration after poison (postcopy, UNIX socket)"
            progress w11 /tmp/w11.log; w0=$PROG
            migrate postcopy ras-mig-d2
            if [ "$MIG_OK" = y ]; then
                progress w11 /tmp/w11.log; w1=$PROG; sleep 3; progress w11 /tmp/w11.log; w2=$PROG
                pa=$(host_pte "$ga"); pb=$(host_pte "$gb")
                ev "destination host page of $ga: $pa"; ev "destination host page of $gb: $pb"
                touch_page s11b "$pid_s11b"; tb=$TOUCHED
                ev "guest touch of s11b after the migration: $tb"
                has_vm_event postcopy-migration-completed "$SV_src_EVT" && ev "source event postcopy-migration-completed"
                mig_checks "$tb"
                figure "migration postcopy: ${MIG_MS} ms for $GUEST_MEM (UNIX socket, in L1)"
                verdict 12 migrate-postcopy "migrated in ${MIG_MS} ms, source VMM $MIG_SRC; poisoned pages kept poisoned at the destination; workload $w0 -> $w1 -> $w2; touch: $tb"
            else
                result 12 migrate-postcopy FAIL "migration failed (send rc=$MIG_SEND_RC receive rc=$MIG_RECV_RC, source VMM $MIG_SRC, alive=$(fsv_alive && echo y || echo n))"
            fi
            scen_end
        elif want 12; then
            result 12 migrate-postcopy FAIL "no running VM to migrate"
        fi
        fsv_stop
    else
        for s in 11 12; do want $s && result $s migrate FAIL "$([ -x "$CHR" ] && echo 'guest did not boot' || echo 'no ch-remote binary')"; done
        fsv_stop
    fi
fi

# ---- 13 no silent zero page ------------------------------------------------
# consumed_checks TOUCH GPA WHEN: into $why, unless the guest's touch TOUCH
# was BUS_MCEERR_AR and the current VMM saw GPA consumed (its events
# printed).
consumed_checks() {
    echo "$1" | grep -q 'code=BUS_MCEERR_AR' || why="$why $3-touch('$1')"
    fsv_has_event sigbus-ar "gpa=$2" || fsv_has_event sea-exit "gpa=$2" || why="$why $3-VMM-saw-no-consumption-of-$2"
    ras_events 6
}
if want 13; then
    scen_begin 13
    say "=== VM ras-zero: $(ras_args async=off) (scenario 13: the VMM knows, the guest was not told)"
    vm_start ras-zero "$(ras_args async=off)"
    if vm_boot && [ -x "$CHR" ]; then
        scen_hwm0
        quiet_console
        gbg "rastest hold s13a 1 0"; gbg "rastest hold s13b 1 1"
        fsv_wait_log "RASTEST ready tag=s13a " 60; fsv_wait_log "RASTEST ready tag=s13b " 60
        ga=$(guest_gpa s13a 0); gb=$(guest_gpa s13b 0); pid_s13a=$(guest_pid s13a); pid_s13b=$(guest_pid s13b)
        why=
        fsv_poison "$ga"; sleep 3
        fsv_has_event page-poisoned "gpa=$ga" || why="$why $ga-not-known-to-the-VMM"
        fsv_has_event async-notified && why="$why guest-was-told(async-notified)"
        g "rastest kpf $(printf 0x%x $((ga >> 12)))"
        grep -a "RASTEST kpf pfn=$(printf 0x%x $((ga >> 12))) " "$SER" | tail -n1 | grep -q hwpoison=0 || why="$why guest-offlined-$ga"
        say "--- scenario 13a: snapshot/restore, then the guest touches the page"
        SNAP=$W/snap13; rm -rf "$SNAP"; mkdir -p "$SNAP"
        "$CHR" --api-socket "$API" pause; p_=$?
        "$CHR" --api-socket "$API" snapshot "file://$SNAP" >"$D/snap.out" 2>&1; s_=$?
        sed 's/^/    ch-remote: /' "$D/snap.out"
        # The original VM runs on (13b migrates it, whatever 13a gives).
        "$CHR" --api-socket "$API" resume >/dev/null 2>&1
        vm_save orig
        ta=none
        if [ $s_ -eq 0 ]; then
            vm_restore ras-zero-restored "$SNAP"
            n=0; while [ ! -S "$API" ] && [ $n -lt 150 ]; do fsv_nap; n=$((n + 1)); done
            sleep 2
            "$CHR" --api-socket "$API" resume >"$D/resume.out" 2>&1 || why="$why resume-failed"
            ev "restored VMM's page at $ga: $(host_pte "$ga")"
            touch_page s13a "$pid_s13a"; ta=$TOUCHED
            ev "touch after restore: $ta"
            consumed_checks "$ta" "$ga" after-restore
            fsv_alive || { why="$why restored-VMM-gone"; show_ch_log "$D" 4; }
            fsv_kill
        else
            why="$why snapshot-failed(pause=$p_)"
        fi
        vm_switch orig
        rm -rf "$SNAP"
        say "--- scenario 13b: migration, then the guest touches the page"
        tb=none
        if fsv_alive; then
            fsv_poison "$gb"; sleep 3
            fsv_has_event page-poisoned "gpa=$gb" || why="$why $gb-not-known-to-the-VMM"
            migrate precopy ras-zero-d
            if [ "$MIG_OK" = y ]; then
                ev "destination's page at $gb: $(host_pte "$gb")"
                touch_page s13b "$pid_s13b"; tb=$TOUCHED
                ev "touch after migration: $tb"
                consumed_checks "$tb" "$gb" after-migration
            else
                why="$why migration-failed"
            fi
        else
            why="$why no-VM-to-migrate"
        fi
        fsv_alive || why="$why VMM-gone"
        verdict 13 no-silent-zero "after restore: $ta; after migration: $tb (never zeros)"
        scen_end
        fsv_stop
    else
        result 13 no-silent-zero FAIL "$([ -x "$CHR" ] && echo 'guest did not boot' || echo 'no ch-remote binary')"
        fsv_stop
    fi
fi

# ---- 14 latent poison in the VMM's own copies ------------------------------
if want 14; then
    scen_begin 14
    rasl=$(ras_args early_kill=off); neg 14 && rasl=
    say "=== VM ras-latent: ${rasl:-no --ras} (scenario 14: the VMM does not know the page)"
    vm_start ras-latent "$rasl"
    if vm_boot && [ -x "$CHR" ]; then
        scen_hwm0
        quiet_console
        gbg "rastest spin w14 0 >/tmp/w14.log 2>&1"
        gbg "rastest hold s14a 1 0"; gbg "rastest hold s14b 1 1"
        fsv_wait_log "RASTEST ready tag=s14a " 60; fsv_wait_log "RASTEST ready tag=s14b " 60
        ga=$(guest_gpa s14a 0); gb=$(guest_gpa s14b 0); pid_s14a=$(guest_pid s14a); pid_s14b=$(guest_pid s14b)
        why=; notes=
        fsv_poison "$ga"; sleep 2
        say "--- scenario 14a: snapshot while $ga is poisoned and unknown to the VMM"
        SNAP=$W/snap14; rm -rf "$SNAP"; mkdir -p "$SNAP"
        ev0=$(count_ras_events)
        "$CHR" --api-socket "$API" pause; p_=$?
        t=$(fsv_now_ms)
        "$CHR" --api-socket "$API" snapshot "file://$SNAP" >"$D/snap.out" 2>&1; s_=$?
        ev "snapshot rc=$s_ after $(( $(fsv_now_ms) - t )) ms"
        sed 's/^/    ch-remote: /' "$D/snap.out"; show_ch_log "$D" 4
        ls -la "$SNAP" 2>/dev/null | sed 's/^/    snap: /'
        alive_a=$(fsv_alive && echo y || echo n)
        "$CHR" --api-socket "$API" resume >/dev/null 2>&1
        progress w14 /tmp/w14.log; w0=$PROG; sleep 2; progress w14 /tmp/w14.log; w1=$PROG
        ras_events 6
        marked_a=$(fsv_has_event poison-found "gpa=$ga" && fsv_has_event page-poisoned "gpa=$ga" && echo y || echo n)
        ev "VMM alive: $alive_a; VM runs on: workload $w0 -> $w1; $ga marked and reported: $marked_a; RAS events during the snapshot: $(( $(count_ras_events) - ev0 ))"
        [ "$alive_a" = y ] || why="$why snapshot-killed-the-VMM"
        [ -n "$w1" ] && [ "$w1" -gt "${w0:-0}" ] || why="$why VM-stopped-after-snapshot($w0->${w1:-none})"
        [ "$marked_a" = y ] || why="$why snapshot-did-not-mark-and-report-$ga"
        if [ $s_ -ne 0 ]; then
            grep -aiqE 'poison|memory (failure|error)|hwpoison|0x0*'"${ga#0x}" "$D/snap.out" ||
                notes="$notes snapshot-error-does-not-name-the-poisoned-page('$(tr '\n' ' ' <"$D/snap.out" | cut -c1-160)')"
            # The page is known now: the next snapshot leaves it out.
            say "--- scenario 14a: the snapshot again, $ga now known to the VMM"
            rm -rf "$SNAP"; mkdir -p "$SNAP"
            "$CHR" --api-socket "$API" pause >/dev/null 2>&1
            "$CHR" --api-socket "$API" snapshot "file://$SNAP" >"$D/snap.out" 2>&1; s_=$?
            ev "second snapshot rc=$s_"
            "$CHR" --api-socket "$API" resume >/dev/null 2>&1
            [ $s_ -eq 0 ] || why="$why second-snapshot-failed"
        fi
        if [ $s_ -eq 0 ]; then
            vm_save orig
            vm_restore ras-latent-restored "$SNAP"
            n=0; while [ ! -S "$API" ] && [ $n -lt 150 ]; do fsv_nap; n=$((n + 1)); done
            sleep 2; "$CHR" --api-socket "$API" resume >/dev/null 2>&1
            touch_page s14a "$pid_s14a"; ta=$TOUCHED
            ev "snapshot completed; restored guest's touch of $ga: $ta"
            echo "$ta" | grep -q 'code=BUS_MCEERR_AR' || why="$why restored-touch('$ta')"
            fsv_kill
            vm_switch orig
        fi
        rm -rf "$SNAP"
        say "--- scenario 14b: migration while $gb is poisoned and unknown to the VMM"
        fsv_poison "$gb"; sleep 2
        migrate precopy ras-latent-d
        ras_events 4
        marked_b=$(fsv_has_event poison-found "gpa=$gb" && fsv_has_event page-poisoned "gpa=$gb" && echo y || echo n)
        if [ "$MIG_OK" = y ]; then
            # Completed at once: the destination must know the page.
            [ "$marked_b" = y ] || why="$why migration-did-not-mark-and-report-$gb"
        else
            progress w14 /tmp/w14.log; w0=$PROG; sleep 2; progress w14 /tmp/w14.log; w1=$PROG
            ev "migration failed; source VMM $MIG_SRC; VM runs on: workload $w0 -> $w1; $gb marked and reported: $marked_b"
            fsv_alive || why="$why migration-killed-the-source-VMM($MIG_SRC)"
            [ -n "$w1" ] && [ "$w1" -gt "${w0:-0}" ] || why="$why VM-stopped-after-migration($w0->${w1:-none})"
            [ "$marked_b" = y ] || why="$why migration-did-not-mark-and-report-$gb"
            grep -aiqE 'poison|memory (failure|error)|hwpoison' "$SV_src_D/ch.log" ||
                notes="$notes migration-error-does-not-name-the-poison('$(grep -a 'Migration failed' "$SV_src_D/ch.log" | tail -n1 | cut -c1-200)')"
            if [ "$marked_b" = y ] && fsv_alive; then
                # The page is known now: the next migration leaves it out.
                say "--- scenario 14b: the migration again, $gb now known to the VMM"
                migrate precopy ras-latent-d2
                [ "$MIG_OK" = y ] || why="$why second-migration-failed"
            fi
        fi
        if [ "$MIG_OK" = y ]; then
            touch_page s14b "$pid_s14b"; tb=$TOUCHED
            ev "migration completed; destination guest's touch of $gb: $tb"
            echo "$tb" | grep -q 'code=BUS_MCEERR_AR' || why="$why migrated-touch('$tb')"
        fi
        [ -n "$notes" ] && ev "notes:$notes"
        verdict 14 latent-poison "latent poison met by a snapshot and by a migration: the VMM lived, marked and reported both pages, the VM ran on; the snapshot (rc=$s_) and the migration (ok=$MIG_OK) then completed without them and the restored and migrated guests' touches gave BUS_MCEERR_AR" "${notes:+; notes:$notes}"
        scen_end
        fsv_stop
    else
        result 14 latent-poison FAIL "$([ -x "$CHR" ] && echo 'guest did not boot' || echo 'no ch-remote binary')"
        fsv_stop
    fi
fi

# ---- 15 device emulation reads poison --------------------------------------
if want 15; then
    scen_begin 15
    rasi=$(ras_args early_kill=off); neg 15 && rasi=
    DATA=$W/data15.img; rm -f "$DATA"; dd if=/dev/zero of="$DATA" bs=1M count=16 2>/dev/null
    say "=== VM ras-io: ${rasi:-no --ras} + a virtio-blk data disk (scenario 15)"
    # image_type=raw: an autodetected raw disk refuses writes to sector 0
    # (Cloud Hypervisor's "Disabling sector 0 writes"): the EIO would not
    # be the poison's (seen on 2026-11-30).
    vm_start ras-io "$rasi" --disk "path=$DATA,image_type=raw"
    if vm_boot; then
        scen_hwm0
        quiet_console
        # virtio_blk is a module in Debian's kernel (build-guest.sh puts it
        # in the initramfs); the ESP is vda, the data disk vdb.
        g "insmod /lib/virtio_blk.ko; sleep 2; ls -l /dev/vd*; cat /sys/block/vdb/size 2>/dev/null"
        # Control: the same O_DIRECT write from a healthy buffer succeeds.
        gbg "rastest dio c15 /dev/vdb"
        fsv_wait_log "RASTEST ready tag=c15 " 60
        echo "$((SEQ + 1)) kill -USR1 $(guest_pid c15)" >&3; SEQ=$((SEQ + 1))
        # The whole line: the guest's serial port delivers it a few
        # characters at a time (a read too early once cut it at "rc=4096 e").
        fsv_wait_log "RASTEST dio-result tag=c15 .*dt_us=[0-9]" 60 || true
        sleep 1
        ctl=$(grep -a "RASTEST dio-result tag=c15 " "$SER" | rastest_part | tail -n1)
        ev "control write from a healthy buffer: ${ctl:-no result}"
        gbg "rastest dio s15 /dev/vdb"
        fsv_wait_log "RASTEST ready tag=s15 " 60
        gpa=$(guest_gpa s15 0)
        ev "O_DIRECT buffer at GPA $gpa"
        if [ -n "$gpa" ] && fsv_poison "$gpa"; then
            ev0=$(count_ras_events)
            echo "$((SEQ + 1)) kill -USR1 $(guest_pid s15)" >&3; SEQ=$((SEQ + 1))
            fsv_wait_log "RASTEST dio-result tag=s15 " 60 || true
            sleep 2
            res=$(grep -a "RASTEST dio-result tag=s15 " "$SER" | rastest_part | tail -n1)
            sig=$(grep -a "RASTEST sigbus tag=s15 " "$SER" | rastest_part | tail -n1)
            if fsv_alive; then
                st=alive
                g "dmesg | grep -aiE 'I/O error|blk_update|vdb|critical|hardware error|memory failure' | tail -n 8"
            else
                fsv_wait_exit 5; st="exited($CH_STATUS)"
            fi
            show_ch_log "$D" 8
            ras_events 6
            disk=$(od -An -tx1 -N 16 "$DATA" | tr -s ' ' | sed 's/^ //')
            ev "guest: ${res:-no dio-result}${sig:+ / $sig}; VMM $st; disk bytes 0-15 now: $disk (both buffers hold 0x6b; the control wrote them)"
            # Reported by the device path = the VMM's first event naming the
            # page is `poison-found` (the VMM's own copy found it), not a
            # consumption (sigbus-ar/sea-exit): the dio process exits after
            # its write, the guest frees the buffer and may reuse (and
            # consume) the page right away; that later consumption reports
            # it too but is not the device path's doing.
            first=$(fsv_events | grep -aF "\"gpa\":\"$gpa\"" | head -n1 | sed -n 's/.*"event":"\([a-z-]*\)".*/\1/p')
            case "$first" in
                poison-found) reported=y ;;
                *) reported=n ;;
            esac
            fsv_has_event sigbus-ar "gpa=$gpa" && ev "later: the guest reused and consumed the page (sigbus-ar for $gpa): the first event naming it was '$first'"
            figure "device_io result='${res:-none}' vmm=$st page_reported=$reported ras_events=$(( $(count_ras_events) - ev0 ))"
            ctl_ok=$(echo "$ctl" | grep -q ' rc=4096 errno=0(' && echo y || echo n)
            if [ "$ctl_ok" = y ] && [ "$st" = alive ] && echo "$res" | grep -q 'rc=-1 errno=5(' && fsv_alive && [ "$reported" = y ]; then
                result 15 device-io PASS "control write ok; the write from the poisoned buffer failed with EIO in the guest (${res}); the VMM lives and reported the page"
            elif [ "$ctl_ok" = y ] && [ "$st" = alive ] && echo "$res" | grep -q 'rc=-1 errno=5(' && fsv_alive; then
                result 15 device-io FAIL "partial: control write ok; the write from the poisoned buffer failed with EIO (${res}) and the VMM lives, but the VMM did not report the page from the device path (first event naming $gpa: '${first:-none}')"
            elif [ "$st" = "exited(135)" ] && grep -aqiE 'SIGBUS' "$D/ch.log"; then
                result 15 device-io PASS "acceptable (documented): the device thread consumed the poison, the VMM exited by SIGBUS after the message: $(grep -ai sigbus "$D/ch.log" | tail -n1 | cut -c1-200)"
            else
                result 15 device-io FAIL "control '${ctl:-none}', guest '${res:-no result}', VMM $st, page reported $reported, disk '$disk'"
            fi
        else
            result 15 device-io FAIL "no GPA or poisoning failed"
        fi
        scen_end
        fsv_alive && fsv_stop
    else
        result 15 device-io FAIL "guest did not boot"
        fsv_stop
    fi
    rm -f "$DATA"
fi

# ---- 16 file-backed shared RAM: hole punched at reboot ---------------------
if want 16; then
    scen_begin 16
    rasf=$(ras_args early_kill=off); neg 16 && rasf=
    say "=== VM ras-file: ${rasf:-no --ras}, guest RAM a shared memory zone on a tmpfs file (scenario 16)"
    MB_SAVED=$MEM_BACKING; MEM_BACKING=file
    vm_start ras-file "$rasf"
    MEM_BACKING=$MB_SAVED
    if vm_boot; then
        scen_hwm0
        quiet_console
        ev "L1: $(df -h /tmp | tail -n1); the file: $(ls -ls "$MEM_FILE")"
        gbg "rastest hold s16 64 0"; fsv_wait_log "RASTEST ready tag=s16 " 60
        gpa=$(middle_page s16)
        off=$(printf '0x%x' $((gpa - GUEST_RAM_BASE)))
        if [ -n "$gpa" ] && fsv_poison "$gpa"; then
            oldpfn=$PFN
            # Consumed (with --ras: the VMM's poison list); without --ras
            # the consumption would kill the VMM: not touched then.
            [ -n "$rasf" ] && g "kill -USR2 $(guest_pid s16); sleep 2"
            b0=$("$RT" fileblk "$MEM_FILE" "$off"); ev "before reboot: $b0"
            ev "rebooting the guest (poisoned GPA $gpa, file offset $off, host PFN $oldpfn)"
            fsv_reboot
            # Right after the repair, before the rebooted guest can touch
            # the page again: is the file's block a hole now?
            n=0; while ! fsv_has_event poison-repaired "gpa=$gpa" && fsv_alive && [ $n -lt 300 ]; do fsv_nap; n=$((n + 1)); done
            b1=$("$RT" fileblk "$MEM_FILE" "$off"); ev "right after the repair event: $b1"
            if guest_rebooted 400; then
                gpfn=$(printf '0x%x' $((gpa >> 12)))
                GTIMEOUT=600 g "rastest kpf $gpfn; rastest hunt $gpa 440; echo hunted"
                hw=$(grep -a "RASTEST kpf pfn=$gpfn " "$SER" | tail -n1 | rastest_part)
                hunt=$(grep -a "RASTEST hunt-" "$SER" | tail -n1 | rastest_part)
                pk=$(host_peek "$gpa"); pt=$(host_pte "$gpa")
                b2=$("$RT" fileblk "$MEM_FILE" "$off")
                ev "after the reboot: $hw; ${hunt:-no hunt line}"; ev "host: $pk"; ev "host: $pt"; ev "file: $b2"
                ras_events 6
                newpfn=$(echo "$pt" | sed -n 's/.* pfn=\(0x[0-9a-f]*\).*/\1/p')
                repaired=$(fsv_has_event poison-repaired "gpa=$gpa" && echo y || echo n)
                why=
                [ "$repaired" = y ] || why="$why no-poison-repaired-event"
                if echo "$b1" | grep -q 'at_offset=hole'; then punched="hole at $off right after the repair"
                elif [ -n "$newpfn" ] && [ "$newpfn" != "$oldpfn" ] && echo "$pt" | grep -q 'host_hwpoison=0'; then punched="the file's page at $off was replaced (PFN $oldpfn -> $newpfn)"
                else punched=; why="$why block-not-punched('$b1')"; fi
                echo "$hw" | grep -q hwpoison=0 || why="$why guest-kpf('$hw')"
                echo "$pk" | grep -q ' ok=1 ' || why="$why host-page-unreadable('$pk')"
                echo "$pt" | grep -q 'present=1 .*host_hwpoison=0' || why="$why host-pte('$pt')"
                fsv_alive || why="$why VMM-gone"
                verdict 16 file-shared-reboot "$punched; $hw; host page readable, not poisoned; ${hunt:-}"
            else
                result 16 file-shared-reboot FAIL "guest did not come back (VMM alive: $(fsv_alive && echo y || echo n))"
                show_ch_log "$D" 8
            fi
        else
            result 16 file-shared-reboot FAIL "no GPA or poisoning failed"
        fi
        scen_end
        fsv_stop
    else
        result 16 file-shared-reboot FAIL "guest did not boot"
        fsv_stop
    fi
fi

# ---- 17 storm ----------------------------------------------------------------
if want 17; then
    scen_begin 17
    STORM_OPTS=${STORM_OPTS:-storm_limit=4,rate_limit=8,storm_window_ms=1000}
    neg 17 && STORM_OPTS="storm_limit=0,rate_limit=0"
    STORM_SECS=${STORM_SECS:-10}
    say "=== VM ras-storm: $(ras_args "$STORM_OPTS") (scenario 17)"
    vm_start ras-storm "$(ras_args "$STORM_OPTS")"
    if vm_boot && [ -x "$CHR" ]; then
        scen_hwm0
        quiet_console
        gbg "rastest hold s17 300 0"; fsv_wait_log "RASTEST ready tag=s17 " 90
        gbg "rastest hold s17i 1 1"; fsv_wait_log "RASTEST ready tag=s17i " 60
        grep -a "RASTEST page tag=s17 " "$SER" | rastest_part | sed 's/.*gpa=\(0x[0-9a-f]*\).*/\1/' >"$D/gpas"
        "$RT" hostpfns "$CHPID" "$GUEST_RAM_BASE" "$GUEST_MEM_BYTES" <"$D/gpas" >"$D/pfns" 2>"$D/pfns.err"
        cat "$D/pfns.err" | sed 's/^/    /'
        head -n 16 "$D/pfns" >"$D/pfns.spread"; tail -n +17 "$D/pfns" >"$D/pfns.storm"
        why=
        say "--- scenario 17a: errors spread out in time (16 pages, at most 2 a second)"
        "$RT" poisonloop "$D/pfns.spread" 2 16 "$CHPID" | sed 's/^/    L1: /'
        sleep 3
        nao=$(fsv_count_event sigbus-ao)
        ev "spread: sigbus-ao events $nao, page-poisoned $(fsv_count_event page-poisoned), vm-stopped $(fsv_count_event vm-stopped)"
        fsv_alive || why="$why spread-errors-stopped-the-VM"
        fsv_has_event vm-stopped && why="$why vm-stopped-by-spread-errors"
        say "--- scenario 17b: injected errors as fast as the API takes them, ${STORM_SECS} s"
        gi=$(guest_gpa s17i 0)
        hwm_a=$(hwm_of "$CHPID"); evsz_a=$(wc -c <"$EVT"); log_a=$(wc -l <"$D/ch.log")
        ev0=$(count_ras_events); sup0=$(suppressed_sum); cnt0=$(ras_counters_sum); sup_ev0=$(count_ras_events events-suppressed)
        body="{\"type\":\"memory\",\"source\":\"async\",\"severity\":\"corrected\",\"gpa\":$((gi))}"
        "$RT" api "$API" 0 "$STORM_SECS" PUT vm.inject-error "$body" >"$D/api.out" 2>&1
        sed 's/^/    L1: /' "$D/api.out"
        # One more error after the window: the VMM publishes the count
        # of what it left out when it next publishes.
        sleep 2
        "$RT" api "$API" 1 5 PUT vm.inject-error "$body" >/dev/null 2>&1
        sleep 1
        hwm_b=$(hwm_of "$CHPID"); evsz_b=$(wc -c <"$EVT"); log_b=$(wc -l <"$D/ch.log")
        api=$(grep -a 'RASTEST api sent=' "$D/api.out" | tail -n1)
        rate=$(echo "$api" | sed -n 's/.*rate_per_s=\([0-9.]*\).*/\1/p'); okn=$(echo "$api" | sed -n 's/.* ok=\([0-9]*\).*/\1/p')
        # Accounting: every event is counted (vm.counters); the event
        # monitor gets a share plus "events-suppressed" with the number
        # left out: published + suppressed = counted.
        pub=$(( $(count_ras_events) - ev0 - ($(count_ras_events events-suppressed) - ${sup_ev0:-0}) ))
        sup=$(( $(suppressed_sum) - sup0 )); cnt=$(( $(ras_counters_sum) - cnt0 ))
        nsup=$(count_ras_events events-suppressed)
        "$CHR" --api-socket "$API" counters 2>/dev/null | tr -d ' \n' | grep -o '"ras":{[^}]*}' | sed 's/^/    counters: /'
        warn=$(grep -ac 'events left out' "$D/ch.log")
        figure "storm_injection answered=${okn:-0} rate_per_s=${rate:-0} over ${STORM_SECS} s; events counted=$cnt published=$pub suppressed=$sup (events-suppressed events: $nsup, VMM log warnings: $warn); event file +$((evsz_b - evsz_a)) bytes; VMM log +$((log_b - log_a)) lines; VmHWM ${hwm_a} -> ${hwm_b} kB (+$((hwm_b - hwm_a)) kB)"
        [ -n "$okn" ] && [ "$okn" -gt 0 ] || why="$why no-injection-answered"
        [ $((hwm_b - hwm_a)) -lt 1024 ] || why="$why VmHWM-grew-$((hwm_b - hwm_a))kB"
        fsv_alive || why="$why VMM-gone-after-injections"
        fsv_has_event vm-stopped && why="$why injections-stopped-the-VM"
        # Rate-limited with a count: at the measured rate the monitor must
        # not get every event, and what it left out must be accounted for.
        if [ "$cnt" -gt 0 ] && [ "$pub" -ge "$cnt" ] && [ "$(awk "BEGIN{print (${rate:-0} > 64)}")" = 1 ]; then
            why="$why events-not-rate-limited(published-$pub-of-$cnt)"
        fi
        [ $((pub + sup)) -eq "$cnt" ] || why="$why events-unaccounted(published-$pub+suppressed-$sup!=counted-$cnt)"
        say "--- scenario 17c: poisoned pages at full speed (limit: $STORM_OPTS)"
        hwm_c=$(hwm_of "$CHPID")
        ( while kill -0 "$CHPID" 2>/dev/null; do hwm_of "$CHPID" >"$D/hwm.last"; sleep 0.1 2>/dev/null || sleep 1; done ) &
        smp=$!
        "$RT" poisonloop "$D/pfns.storm" 0 64 "$CHPID" >"$D/storm.out" 2>&1
        sed 's/^/    L1: /' "$D/storm.out"
        fsv_wait_exit 20
        kill "$smp" 2>/dev/null; wait "$smp" 2>/dev/null
        hwm_d=$(cat "$D/hwm.last" 2>/dev/null)
        SC_HWM1=$hwm_d
        prate=$(sed -n 's/.*rate_per_s=\([0-9.]*\).*/\1/p' "$D/storm.out")
        stop=$(fsv_events | grep -a '"event":"vm-stopped"' | head -n1 | sed 's/.*"properties":\(.*\)}$/\1/')
        ras_events 4
        show_ch_log "$D" 6
        ev "VMM after the storm: ${CH_STATUS:-running}; vm-stopped: ${stop:-none}"
        figure "storm_poison rate_per_s=${prate:-?} ($(sed -n 's/.*written=\([0-9]*\).*/\1/p' "$D/storm.out") corrupt-pfn writes); sigbus_ao=$(fsv_count_event sigbus-ao) page_poisoned=$(fsv_count_event page-poisoned); VmHWM ${hwm_c} -> ${hwm_d:-?} kB"
        [ -n "$stop" ] || why="$why no-vm-stopped-event"
        # A clean stop: the VMM exits by itself (not killed by a signal).
        case "${CH_STATUS:-running}" in
            running) why="$why VMM-still-running" ;;
            *) [ "$CH_STATUS" -lt 128 ] || why="$why VMM-killed-by-signal-$((CH_STATUS - 128))" ;;
        esac
        grep -aqiE 'panick|SIGSEGV|SIGABRT' "$D/ch.log" && why="$why crash-in-VMM-log"
        [ -n "$hwm_d" ] && [ $((hwm_d - hwm_c)) -lt 1024 ] || why="$why VmHWM-grew-during-poison-storm(${hwm_c}->${hwm_d:-?})"
        verdict 17 storm "spread errors: VM ran on ($nao sigbus-ao); ${okn} injections at ${rate}/s, VmHWM +$((hwm_b - hwm_a)) kB; poison storm at ${prate}/s: vm-stopped $stop, VMM exit status $CH_STATUS"
        scen_end
        fsv_alive && fsv_stop
    else
        result 17 storm FAIL "$([ -x "$CHR" ] && echo 'guest did not boot' || echo 'no ch-remote binary')"
        fsv_stop
    fi
fi

# ---- 18 rasdaemon in the guest ---------------------------------------------
if want 18; then
    scen_begin 18
    if [ ! -s "$FSD/esp-rasd.img" ]; then
        result 18 rasdaemon SKIP "no esp-rasd.img (build-guest.sh could not build the rasdaemon guest)"
    else
        say "=== VM ras-rasd: $(ras_args "$RAS_OPTS"), guest with Debian's rasdaemon (scenario 18)"
        VM_ESP=$FSD/esp-rasd.img vm_start ras-rasd "$(ras_args "$RAS_OPTS")"
        if vm_boot && [ -x "$CHR" ]; then
            scen_hwm0
            quiet_console
            if neg 18; then
                ev "negative control: rasdaemon not started"
            else
                # rasdaemon opens its database well after it enabled the
                # events (slow under nested TCG; 8 s and even 90 s after its
                # start it had no tables in two runs of 2026-11-30, and its
                # stderr never says "Listening to events"): wait until the
                # database holds data (up to 240 s), then 5 s more.
                GTIMEOUT=400 g "mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; mkdir -p /var/lib/rasdaemon /run; rasdaemon --version; (rasdaemon --foreground --record >/tmp/rasd.log 2>&1 &); i=0; while [ ! -s /var/lib/rasdaemon/ras-mc_event.db ] && [ \$i -lt 240 ]; do sleep 1; i=\$((i+1)); done; sleep 5; echo rasd-db-waited=\$i; ls -l /var/lib/rasdaemon/; cat /tmp/rasd.log | head -n 40"
            fi
            # rasdaemon's state before any error: its database exists.
            rasd_w=$(sed -n 's/.*rasd-db-waited=\([0-9]*\).*/\1/p' "$D/g.out" | tail -n1)
            if [ -n "$rasd_w" ] && [ "$rasd_w" -lt 240 ]; then rasd_ready=y; else rasd_ready=n; fi
            gbg "rastest hold s18 2 0"; fsv_wait_log "RASTEST ready tag=s18 " 60
            g1=$(guest_gpa s18 0); g2=$(guest_gpa s18 1)
            # (1) a real poisoned page (early kill -> async source), (2) an
            # operator-injected memory error at another page.
            fsv_poison "$g1"; sleep 4
            args=$(echo "$INJECT_MEM_ARGS" | sed "s/@GPA@/$g2/g")
            "$CHR" --api-socket "$API" inject-error "$args" >"$D/inject.out" 2>&1; ri=$?
            ev "inject-error $args: rc $ri"
            sleep 6
            GTIMEOUT=300 g "tail -n 15 /tmp/rasd.log; echo ---; ras-mc-ctl --errors 2>&1 | head -n 40; echo ---; ras-mc-ctl --summary 2>&1 | head -n 20"
            cp "$D/g.out" "$D/rasmcctl.txt"
            why=
            for x in "$g1" "$g2"; do
                pfn=$(printf '0x%x' $((x >> 12)))
                # memory_failure_event: "pfn=0x..."; mc_event: "addr N" (decimal)
                if grep -aiqE "pfn=(0x)?0*${pfn#0x}([^0-9a-f]|$)|addr (0x0*${x#0x}|$((x)))([^0-9a-f]|$)" "$D/rasmcctl.txt"; then
                    ev "ras-mc-ctl lists the error at $x (pfn $pfn)"
                else
                    why="$why $x-not-listed"
                fi
            done
            fsv_alive || why="$why VMM-gone"
            neg 18 || [ "$rasd_ready" = y ] || why="$why (rasdaemon-had-no-database-240-s-after-its-start)"
            verdict 18 rasdaemon "ras-mc-ctl --errors lists the poisoned page $g1 and the injected error at $g2 by address"
        else
            result 18 rasdaemon FAIL "$([ -x "$CHR" ] && echo 'guest did not boot' || echo 'no ch-remote binary')"
        fi
        scen_end
        fsv_stop
    fi
fi
