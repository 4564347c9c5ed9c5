#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Every commit of the Cloud Hypervisor series (vendor-patches/) through
# Cloud Hypervisor's own CI checks, on a scratch clone of a checkout the
# user gives (see docs/series.md and scripts/lib/ch-verify.sh).
#
# Usage: scripts/verify-series.sh --ch-src DIR [--micro-http DIR2]
#            [--series main|v53.0|both] [--from N] [--jobs J] [--quick]
#            [--matrix core|ci] [--suite|--no-suite] [--report]
#   --ch-src     Cloud Hypervisor git checkout holding the series base (read
#                only; the scratch tree is .lab/verify/src-<series>)
#   --micro-http clone of micro-http holding the commit CH's Cargo.lock locks
#                (else cargo's git cache; nothing is downloaded)
#   --series     main (default), v53.0 (the release backport), or both
#   --from N     check commits N.. only (the earlier ones are applied)
#   --jobs J     cargo -j J (default: cargo's, the number of CPUs)
#   --quick      per commit only build-aarch64, a build of the tests of
#                the crates it touches (testbuild-x86_64, not run) and the
#                checks that take seconds (fmt, gitlint, dco, typos, reuse);
#                every check on the last commit (its tests: every crate
#                the series touches); no unit-test suite unless --suite
#   --matrix     core (default): CH's kvm, mshv and default-features clippy
#                steps; ci: every clippy and (debug) build step CH's CI runs
#                for the target
#   --report     only print the report of the last run again (no checks)
# Output: a Markdown table per series on stdout and in .lab/verify/<series>.md;
# exit 0 all passed, 1 a check failed, 77 no series to check.
# Environment: VENDOR_PATCHES (another vendor-patches directory),
# VERIFY_SUITE_ARCHES (default "x86_64 aarch64").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CHS_LOG_PREFIX=verify
. "$ROOT/scripts/lib/ch-series.sh"
. "$ROOT/scripts/lib/ch-verify.sh"

usage() {
    sed -n '8,26p' "$0" >&2
    exit 2
}

CH_SRC= SERIES=main FROM=1 QUICK= SUITE= REPORT=
CHV_MICRO_HTTP=
while [ $# -gt 0 ]; do
    case $1 in
        --ch-src) CH_SRC=${2:?}; shift 2 ;;
        --micro-http) CHV_MICRO_HTTP=${2:?}; shift 2 ;;
        --series) SERIES=${2:?}; shift 2 ;;
        --from) FROM=${2:?}; shift 2 ;;
        --jobs) CHV_JOBS=${2:?}; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --matrix) CHV_MATRIX=${2:?}; shift 2 ;;
        --suite) SUITE=1; shift ;;
        --no-suite) SUITE=0; shift ;;
        --report) REPORT=1; shift ;;
        -h | --help) usage ;;
        *) echo "verify: unknown argument $1" >&2; usage ;;
    esac
done
[ -n "$CH_SRC" ] || usage
[ -d "$CH_SRC" ] || chs_skip "no Cloud Hypervisor checkout at $CH_SRC"
case $CHV_MATRIX in core | ci) ;; *) usage ;; esac
[[ $FROM =~ ^[1-9][0-9]*$ ]] || usage
case $SERIES in
    both) SERIES_LIST="main v53.0" ;;
    *) SERIES_LIST=$SERIES ;;
esac
for s in $SERIES_LIST; do
    chs_manifest_field "$s" key >/dev/null || usage
done
if [ "${SUITE:-}" = 0 ] || { [ -n "$QUICK" ] && [ -z "$SUITE" ]; }; then
    CHV_SUITE_ARCHES=
    CHV_SUITE_WHY=$([ -n "$QUICK" ] && echo "--quick" || echo "--no-suite")
else
    CHV_SUITE_ARCHES=${VERIFY_SUITE_ARCHES:-x86_64 aarch64}
fi

if [ -n "$REPORT" ]; then
    rc=0
    for s in $SERIES_LIST; do chv_render "$s" || rc=$?; echo; done
    exit $rc
fi
command -v aarch64-linux-gnu-gcc >/dev/null || chs_skip "no aarch64-linux-gnu-gcc (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)"
chs_rust_target "$CHS_AARCH64"
chv_tools
mkdir -p "$CHV_DIR"

t0=$(date +%s)
rc=0 ran=0
for s in $SERIES_LIST; do
    set +e
    chv_series "$CH_SRC" "$s" "$FROM" "$QUICK"
    r=$?
    set -e
    echo
    case $r in
        0) ran=1 ;;
        77) ;;
        *) ran=1; rc=1 ;;
    esac
done
echo "verify-series: $SERIES_LIST in $(($(date +%s) - t0)) s"
[ $ran = 1 ] || exit 77
exit $rc
