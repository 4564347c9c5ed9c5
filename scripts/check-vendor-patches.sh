#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# CI check: the crate files carried by vendor-patches/0001-*.patch must equal
# crates/ras and crates/ras_kvm (Cargo.toml after the same rewrite that
# scripts/gen-vendor-patches.sh applies), vendor-patches/series must list
# every patch, and vendor-patches/BASE must name the base. Works from the
# patch files alone: no Cloud Hypervisor source, no network.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec python3 "$here/gen-vendor-patches.py" check
