#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Build CLOUDHV_EFI.fd (Cloud Hypervisor's arm64 UEFI firmware) from Debian's
# edk2 source package. Nothing of edk2 is committed: the source is fetched
# with `apt-get source --download-only` from the archive named in the
# machine's debian.sources, built under .lab/, and cached.
#
#   scripts/fullstack/build-firmware.sh        # -> .lab/fullstack/CLOUDHV_EFI.fd
#   EDK2_VERSION=... scripts/fullstack/build-firmware.sh
#   FW_STOCK=1 scripts/fullstack/build-firmware.sh  # -> CLOUDHV_EFI-stock.fd,
#                                                   # Debian's patches only
#
# The two PCDs make the firmware run the ESP's startup.nsh right away (no
# setup menu, no 5 s shell countdown). ~1 min of build on 2 cores (niced).
#
# Our own edk2 patches (scripts/fullstack/edk2/*.patch, applied in name
# order after Debian's series; only our lines and their context are
# committed): 0001 turns Cloud Hypervisor's /reserved-memory no-map nodes
# (the RAS error sources) into reserved, write-back UEFI memory map entries
# (docs/fullstack.md, "Firmware").
set -euo pipefail
. "$(dirname "$0")/common.sh"

EDK2_VERSION=${EDK2_VERSION:-2025.02-8+deb13u1}
# Bump FW_REV when the build itself changes (flags, PCDs); the patches are
# part of the cache key by their checksum.
FW_REV=2
PATCH_DIR=$(cd "$(dirname "$0")" && pwd)/edk2
if [ "${FW_STOCK:-0}" = 1 ]; then
    PATCHES=()
    OUT=$FS_DIR/CLOUDHV_EFI-stock.fd
else
    PATCHES=("$PATCH_DIR"/*.patch)
    [ -e "${PATCHES[0]}" ] || PATCHES=()
    OUT=$FS_DIR/CLOUDHV_EFI.fd
fi
PATCH_SUM=$(cat /dev/null ${PATCHES[@]+"${PATCHES[@]}"} | sha256sum | cut -c1-16)
FW_KEY="edk2=$EDK2_VERSION rev=$FW_REV patches=${#PATCHES[@]}:$PATCH_SUM"
KEYFILE=${OUT%.fd}.version
SRC=$FS_DIR/edk2-src
JOBS=${JOBS:-$(nproc)}

# One build at a time (a second caller waits and then uses the cache).
mkdir -p "$FS_DIR"
exec 9>"$FS_DIR/.firmware.lock"
flock 9
if [ -s "$OUT" ] && [ "$(cat "$KEYFILE" 2>/dev/null)" = "$FW_KEY" ] && [ "${FORCE:-0}" != 1 ]; then
    fs_log "firmware cached: $OUT ($FW_KEY)"
    echo "$OUT"
    exit 0
fi

fs_need_host uuid-dev acpica-tools gcc-aarch64-linux-gnu make g++ python3 patch xz-utils
fs_apt_config
fs_apt_update

t0=$(date +%s)
mkdir -p "$FS_DIR/edk2-dl"
if ! ls "$FS_DIR"/edk2-dl/edk2_*.orig.tar.* >/dev/null 2>&1; then
    fs_log "apt-get source --download-only edk2=$EDK2_VERSION"
    # The .dsc may fail to download (404) while both tarballs arrive.
    (cd "$FS_DIR/edk2-dl" && fs_apt apt-get -q source --download-only "edk2=$EDK2_VERSION" >&2) || true
fi
orig=$(ls "$FS_DIR"/edk2-dl/edk2_*.orig.tar.* 2>/dev/null | head -n1 || true)
deb=$(ls "$FS_DIR"/edk2-dl/edk2_*.debian.tar.* 2>/dev/null | head -n1 || true)
[ -n "$orig" ] && [ -n "$deb" ] || fs_die "edk2 source tarballs not downloaded (have: $(ls "$FS_DIR/edk2-dl"))"

if [ "$(cat "$SRC/.prepared" 2>/dev/null)" != "$FW_KEY" ]; then
rm -rf "$SRC" && mkdir -p "$SRC"
tar -xf "$orig" -C "$SRC" --strip-components=1
tar -xf "$deb" -C "$SRC"
(
    cd "$SRC"
    while read -r p _; do
        case "$p" in ''|'#'*) continue ;; esac
        patch -s -p1 <"debian/patches/$p"
    done <debian/patches/series
    for p in ${PATCHES[@]+"${PATCHES[@]}"}; do
        fs_log "applying $(basename "$p")"
        patch -s -p1 --fuzz=0 --no-backup-if-mismatch <"$p"
    done
)
echo "$FW_KEY" >"$SRC/.prepared"
fi
fs_log "sources ready ($(basename "$orig"), $(wc -l <"$SRC/debian/patches/series") Debian patches, ${#PATCHES[@]} own)"

(
    cd "$SRC"
    if [ ! -e BaseTools/.built ]; then
        nice -n 10 make -s -j"$JOBS" -C BaseTools >"$FS_DIR/edk2-basetools.log" 2>&1 ||
            { tail -30 "$FS_DIR/edk2-basetools.log" >&2; exit 1; }
        touch BaseTools/.built
    fi
    export WORKSPACE=$SRC PYTHON_COMMAND=${PYTHON_COMMAND:-/usr/bin/python3}
    export GCC_AARCH64_PREFIX=aarch64-linux-gnu-
    set --   # edksetup.sh parses "$@"
    set +eu  # and is not written for -e/-u
    # shellcheck disable=SC1091
    . ./edksetup.sh >/dev/null
    set -eu
    # Debian ships the LTO helper as assembly only.
    if [ -e BaseTools/Bin/GccLto/liblto-aarch64.s ] && [ ! -e BaseTools/Bin/GccLto/liblto-aarch64.a ]; then
        aarch64-linux-gnu-gcc -c -fpic BaseTools/Bin/GccLto/liblto-aarch64.s \
            -o BaseTools/Bin/GccLto/liblto-aarch64.a
    fi
    nice -n 10 build -n "$JOBS" -a AARCH64 -t GCC -p ArmVirtPkg/ArmVirtCloudHv.dsc -b RELEASE \
        --pcd gArmTokenSpaceGuid.PcdUefiShellDefaultBootEnable=TRUE \
        --pcd gEfiShellPkgTokenSpaceGuid.PcdShellDefaultDelay=0 \
        >"$FS_DIR/edk2-build.log" 2>&1 || { tail -40 "$FS_DIR/edk2-build.log" >&2; exit 1; }
)
fd=$(find "$SRC/Build" -path '*RELEASE_GCC*' -name CLOUDHV_EFI.fd | head -n1)
[ -s "$fd" ] || fs_die "CLOUDHV_EFI.fd not produced (see $FS_DIR/edk2-build.log)"
cp "$fd" "$OUT"
t1=$(date +%s)
echo "$FW_KEY" >"$KEYFILE"
fs_log "built $OUT ($(stat -c %s "$OUT") bytes, $FW_KEY) in $((t1 - t0)) s"
# The tree is ~1 GB after a build; keep only the firmware and the tarballs.
[ "${KEEP_SRC:-0}" = 1 ] || rm -rf "$SRC"
echo "$OUT"
