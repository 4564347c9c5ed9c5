#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Regenerates vendor-patches/ (the Cloud Hypervisor series) from crates/.
# Usage: scripts/gen-vendor-patches.sh /path/to/cloud-hypervisor
#   The checkout is provided by the user (this script never downloads
#   Cloud Hypervisor); it must contain the base commit named in
#   vendor-patches/BASE and have no uncommitted changes to tracked files.
#   Branch `ras-vendor` is (re)created there: patch 0001 is rebuilt from
#   crates/ras and crates/ras_kvm, patches 0002.. are re-applied on top.
#   scripts/gen-vendor-patches.sh --from-head /path/to/cloud-hypervisor
#   only re-exports the commits above the base (after a manual fix-up).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ $# -eq 2 ] && [ "$1" = "--from-head" ]; then
    exec python3 "$here/gen-vendor-patches.py" gen --from-head "$2"
fi
if [ $# -ne 1 ]; then
    sed -n '4,13p' "$0" >&2
    exit 2
fi
exec python3 "$here/gen-vendor-patches.py" gen "$1"
