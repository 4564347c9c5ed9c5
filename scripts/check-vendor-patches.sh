#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# CI check of both Cloud Hypervisor series (vendor-patches/main and
# vendor-patches/v53.0): each lists every patch in order and names its base;
# after each patch, every file it carries verbatim (vendor-patches/
# manifest.toml: the ras crate, hypervisor/src/*/sea.rs, vmm/src/ras/*.rs)
# equals crates/ as committed, the lib.rs module lists included; no patch,
# nor any of vendor-patches/backport/, names the package registry. Works
# from the patch files alone: no Cloud Hypervisor source, no network.
#
# Then the check is shown to fail: on a copy of vendor-patches/ with an
# owned file's line changed in a main/ patch, and with a registry source
# line in a backport patch, `check` must refuse, naming what it found.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
gen="$here/gen-vendor-patches.py"
# VENDOR_PATCHES (another vendor-patches directory) is checked, and copied
# for the self-tests, as by scripts/lib/ch-series.sh.
vp=${VENDOR_PATCHES:-$here/../vendor-patches}
VENDOR_PATCHES=$vp python3 "$gen" check

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# refused WHAT EXPECTED: `check` on $tmp/vp fails and prints EXPECTED.
refused() {
    local out st=0
    out=$(VENDOR_PATCHES=$tmp/vp python3 "$gen" check 2>&1) || st=$?
    if [ "$st" = 0 ] || ! grep -qF -- "$2" <<<"$out"; then
        echo "check-vendor-patches: self-test '$1': check did not refuse it (status $st):"
        echo "$out"
        exit 1
    fi
    echo "self-test: $1 refused ($2)"
}
fresh() { rm -rf "$tmp/vp" && cp -r "$vp" "$tmp/vp"; }

fresh
p=$(ls "$tmp/vp/main/"0001-*.patch)
# The first added doc line of an owned file in commit 1, one word changed.
python3 - "$p" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
i = s.index("\n+//! ") + 1
s = s[:i] + "+//! DRIFT" + s[i + 4:]
open(p, "w").write(s)
PY
refused "an owned file drifted in main/0001" "differs from crates/"

fresh
b=$(ls "$tmp/vp/backport/"*.patch | head -n1)
printf ' source = "registry+%s"\n' "x" >>"$b"
refused "a registry line in backport/$(basename "$b")" "names the package registry"
