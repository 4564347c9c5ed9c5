#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The Cloud Hypervisor series (vendor-patches/main and vendor-patches/v53.0),
# from one source of truth: see scripts/gen-vendor-patches.py for the
# commands (regen CH, backport CH, export CH [BASE], place N CH, check,
# fix-lock CH [BASE]). CH is a Cloud Hypervisor checkout given by the user;
# nothing is downloaded.
set -euo pipefail
exec python3 "$(cd "$(dirname "$0")" && pwd)/gen-vendor-patches.py" "$@"
