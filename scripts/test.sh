#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs every test suite of the project and ends with one line
# `suites: N passed, M failed, K skipped`.
#
#   scripts/test.sh            all suites (what CI runs, via .ci/run)
#   scripts/test.sh --quick    host-only suites (no QEMU labs)
#   scripts/test.sh --strict   a skipped suite counts as failed (CI)
#
# A suite exits 0 (pass), 77 (skipped: it printed `SKIP: <why>`), or
# anything else (fail). Each suite's own output is kept in
# target/test-logs/<suite>.log and its last lines are shown.
set -uo pipefail

cd "$(dirname "$0")/.."
quick=0
strict=0
for a in "$@"; do
    case "$a" in
    --quick) quick=1 ;;
    --strict) strict=1 ;;
    *) echo "usage: $0 [--quick] [--strict]" >&2; exit 2 ;;
    esac
done

logs=target/test-logs
mkdir -p "$logs"
passed=0 failed=0 skipped=0
failed_names=() skipped_names=()

run_suite() {
    local name=$1; shift
    local log="$logs/$name.log" start rc
    start=$(date +%s)
    printf '=== %s: %s\n' "$name" "$*"
    "$@" >"$log" 2>&1
    rc=$?
    tail -n "${TAIL_LINES:-12}" "$log" | sed 's/^/    /'
    local took=$(( $(date +%s) - start ))
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1)); printf -- '--- %s: PASS (%ss)\n' "$name" "$took"
    elif [ $rc -eq 77 ]; then
        skipped=$((skipped + 1)); skipped_names+=("$name")
        printf -- '--- %s: SKIP (%ss): %s\n' "$name" "$took" "$(grep -m1 -o 'SKIP: .*' "$log")"
    else
        failed=$((failed + 1)); failed_names+=("$name")
        printf -- '--- %s: FAIL (exit %s, %ss), full log: %s\n' "$name" "$rc" "$took" "$log"
    fi
}

# 1. Style, as Cloud Hypervisor checks it (nightly rustfmt for its import
#    grouping when available) and clippy with the workspace lints.
fmt_check() {
    if cargo +nightly --version >/dev/null 2>&1; then
        cargo +nightly fmt --all -- --check
    else
        cargo fmt --all -- --check
    fi
}
run_suite fmt fmt_check
run_suite clippy cargo clippy --workspace --all-targets --locked -- -D warnings
run_suite clippy-aarch64 cargo clippy --workspace --all-targets --locked \
    --target aarch64-unknown-linux-gnu -- -D warnings

# 2. Unit, property and integration tests of the workspace (host).
run_suite cargo-test cargo test --workspace --locked

# 3. Independent readers of our bytes.
run_suite iasl-hest tests/iasl/check_hest.sh
run_suite libcper python3 -m pytest -q tests/libcper

# 4. The Cloud Hypervisor series carries exactly this repository's crates;
#    the pure logic of the series build/verify library (no CH checkout).
run_suite vendor-patches scripts/check-vendor-patches.sh
run_suite ch-series scripts/test-ch-series.sh

# 5. Real guests and real KVM (QEMU under emulation).
if [ $quick -eq 0 ]; then
    run_suite oracle scripts/oracle.sh
    run_suite lab scripts/lab.sh
    # Real x86 KVM nested in emulation (docs/lab-x86.md): ~25 s with its
    # cache, ~2 min from nothing.
    run_suite lab-x86 scripts/lab-x86.sh
fi

echo
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
[ ${#skipped_names[@]} -gt 0 ] && echo "skipped: ${skipped_names[*]}"
echo "suites: $passed passed, $failed failed, $skipped skipped"
if [ $failed -gt 0 ] || { [ $strict -eq 1 ] && [ $skipped -gt 0 ]; }; then
    exit 1
fi
exit 0
