# SPDX-License-Identifier: Apache-2.0
#
# The one place for the Cloud Hypervisor command-line syntax the full-stack
# scenarios depend on. Sourced by run.sh on the host and copied into the L1
# initramfs for the orchestrator (busybox sh: keep it POSIX).
#
# The syntax comes from the Cloud Hypervisor series (docs/ras.md there):
#  - `--ras [options]`: a bare `--ras` turns RAS on with all defaults
#    (sea_sources=per_vcpu, async=gpio, early_kill=on, ...); options are
#    the string parsed by crates/ras/src/config.rs (RasConfig::SYNTAX). The
#    old `--ras on` no longer parses.
#  - RAS_OPTS_SYNC turns off the early-kill prctl, so a page poisoned with
#    corrupt-pfn raises no BUS_MCEERR_AO in the VMM and is only seen when the
#    guest consumes it: that exercises the synchronous (SEA) path.
#  - `ch-remote --api-socket S inject-error <options>`: the option string
#    of crates/ras/src/inject.rs (InjectRequest::SYNTAX); @GPA@ is replaced
#    by a guest physical address.
#  - Events: event-monitor JSON lines with "source":"ras" and the event
#    names of crates/ras/src/event.rs (sea-exit, sigbus-ar, sigbus-ao, poison-found,
#    record-written, abort-injected, async-notified, page-poisoned, ...).
#  - Guest RAM on aarch64 starts at GPA 0x4000_0000 (arch/src/aarch64
#    layout.rs RAM_START) and is one anonymous mapping of GUEST_MEM bytes in
#    the VMM when no memory zone is given.

RAS_FLAG=${RAS_FLAG:---ras}
# Empty: a bare `--ras` (the defaults).
RAS_OPTS=${RAS_OPTS-}
RAS_OPTS_SYNC=${RAS_OPTS_SYNC-early_kill=off}
# ras_args OPTS: the VMM's RAS arguments, "--ras" or "--ras OPTS".
ras_args() { echo "$RAS_FLAG${1:+ $1}"; }
INJECT_MEM_ARGS=${INJECT_MEM_ARGS:-type=memory,gpa=@GPA@,severity=recoverable}
INJECT_ARM_ARGS=${INJECT_ARM_ARGS:-type=arm_processor,arm_error=cache,severity=corrected}

# The RAS error-source region (arch/src/aarch64/layout.rs RAS_REGION_START,
# RAS_REGION_SIZE: the most it may take; its size is a multiple of 64 KiB).
RAS_REGION_BASE=${RAS_REGION_BASE:-0x400000}
RAS_REGION_MAX=${RAS_REGION_MAX:-0x2000000}

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
