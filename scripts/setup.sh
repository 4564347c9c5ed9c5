#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Installs what the tests and the labs need on a fresh Debian 12 x86_64
# machine (run as root): host packages, the aarch64 Rust target, and the
# Python packages of the independent checkers (libcper's binding, pytest).
# Only the package registries are used. Idempotent.
set -euo pipefail

log() { printf '[setup] %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: must run as root (apt-get install)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
pkgs=(
    acpica-tools            # iasl: independent HEST checker
    pkg-config libjson-c-dev # build of PyPI cper (libcper)
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross # static aarch64 lab harness
    cpio xz-utils           # initramfs, kernel modules
)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    log "rustup target add aarch64-unknown-linux-gnu"
    rustup target add aarch64-unknown-linux-gnu
fi

if ! python3 -c 'import cper, pytest' 2>/dev/null; then
    log "pip install -r tests/requirements.txt"
    python3 -m pip install -q --disable-pip-version-check -r "$(dirname "$0")/../tests/requirements.txt"
fi
log "done"
