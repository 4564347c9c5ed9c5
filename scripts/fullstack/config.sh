# SPDX-License-Identifier: Apache-2.0
#
# The one place for the Cloud Hypervisor command-line syntax the full-stack
# scenarios depend on. Sourced by run.sh on the host and copied into the L1
# initramfs for the orchestrator (busybox sh: keep it POSIX).
#
# The syntax comes from the vendor-patches series (docs/ras.md there):
#  - `--ras` alone enables RAS with all defaults (sea_sources=per_vcpu,
#    async=gpio, early_kill=on, ...); `--ras key=value,...` changes some
#    (keys: sea_sources, async, poll_interval_ms, queue_depth, block_size,
#    no_gpa, storm_limit, storm_window_ms, rate_limit, early_kill=on|off,
#    max_poisoned; crates/ras/src/config.rs). In this file an option set
#    is a word: RAS_DEFAULTS ("defaults") stands for the bare flag, ""
#    for no RAS at all; ras_args turns it into the VMM's arguments.
#  - RAS_OPTS_SYNC turns off the early-kill prctl, so a page poisoned with
#    corrupt-pfn raises no BUS_MCEERR_AO in the VMM and is only seen when the
#    guest consumes it: that exercises the synchronous (SEA) path.
#  - `ch-remote --api-socket S inject-error <options>`: the option string
#    of crates/ras/src/inject.rs (InjectRequest::SYNTAX); @GPA@ is replaced
#    by a guest physical address.
#  - Events: event-monitor JSON lines with "source":"ras" and the event
#    names of crates/ras/src/event.rs (sea-exit, sigbus-ar, sigbus-ao,
#    record-written, abort-injected, async-notified, page-poisoned, ...).
#  - Guest RAM on aarch64 starts at GPA 0x4000_0000 (arch/src/aarch64
#    layout.rs RAM_START) and is one anonymous mapping of GUEST_MEM bytes in
#    the VMM when no memory zone is given.

RAS_FLAG=${RAS_FLAG:---ras}
RAS_DEFAULTS=defaults
RAS_OPTS=${RAS_OPTS:-$RAS_DEFAULTS}
RAS_OPTS_SYNC=${RAS_OPTS_SYNC:-early_kill=off}
INJECT_MEM_ARGS=${INJECT_MEM_ARGS:-type=memory,gpa=@GPA@,severity=recoverable}
INJECT_ARM_ARGS=${INJECT_ARM_ARGS:-type=arm-processor,arm_error=cache,severity=corrected}

# ras_args OPTS: the Cloud Hypervisor arguments for option set OPTS (one a
# line; nothing for "").
ras_args() {
    case $1 in
        "") ;;
        "$RAS_DEFAULTS") echo "$RAS_FLAG" ;;
        *) echo "$RAS_FLAG" && echo "$1" ;;
    esac
}

GUEST_MEM=${GUEST_MEM:-512M}
GUEST_MEM_BYTES=${GUEST_MEM_BYTES:-0x20000000}
GUEST_RAM_BASE=${GUEST_RAM_BASE:-0x40000000}
GUEST_CPUS=${GUEST_CPUS:-2}
# Guest RAM: "anon" (the VMM's anonymous mapping, found by its size) or
# "file" (--memory size=0,shared=on + --memory-zone file=<tmpfs file>,
# found by its path).
MEM_BACKING=${MEM_BACKING:-anon}
# Serial: the VMM's stdin/stdout, a pseudo-terminal made by `rastest pty`
# (Cloud Hypervisor reads serial input only when stdin is a terminal).
CH_SERIAL=${CH_SERIAL:---serial tty --console off}
# Extra boots (pairs with and without --ras) for the boot-time figure.
BOOT_BENCH=${BOOT_BENCH:-0}
# Seconds to wait for the guest's agent after the VMM starts.
BOOT_TIMEOUT=${BOOT_TIMEOUT:-240}
