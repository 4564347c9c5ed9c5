#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# CI check of both Cloud Hypervisor series (vendor-patches/main and
# vendor-patches/v53.0): each lists every patch in order and names its base;
# after each patch, every file it carries verbatim (vendor-patches/
# manifest.toml: the ras crate, hypervisor/src/*/sea.rs, vmm/src/ras/*.rs)
# equals crates/ as committed, the lib.rs module lists included; no patch
# names the package registry. Works from the patch files alone: no Cloud
# Hypervisor source, no network.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec python3 "$here/gen-vendor-patches.py" check
