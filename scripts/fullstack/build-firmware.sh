#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Build Cloud Hypervisor's UEFI firmware from Debian's edk2 source package:
# CLOUDHV_EFI.fd (arm64, ArmVirtPkg/ArmVirtCloudHv.dsc, the default) or
# CLOUDHV.fd (x86_64, OvmfPkg/CloudHv/CloudHvX64.dsc, what CH's x86_64
# integration tests pass as `--kernel $HOME/workloads/CLOUDHV.fd`).
# Nothing of edk2 is committed: the source is fetched with `apt-get source
# --download-only` from the archive named in the machine's debian.sources,
# built under .lab/, and cached.
#
#   scripts/fullstack/build-firmware.sh        # -> .lab/fullstack/CLOUDHV_EFI.fd
#   scripts/fullstack/build-firmware.sh --arch x86_64   # -> .lab/fullstack/CLOUDHV.fd
#   FW_ARCH=x86_64 scripts/fullstack/build-firmware.sh  # the same
#   EDK2_VERSION=... scripts/fullstack/build-firmware.sh
#   FW_STOCK=1 scripts/fullstack/build-firmware.sh  # -> CLOUDHV_EFI-stock.fd,
#                                                   # Debian's patches only
#                                                   # (x86_64: CLOUDHV-stock.fd)
# The last line of the output is the path of the firmware.
#
# arm64: RELEASE, toolchain tag GCC (cross, gcc-aarch64-linux-gnu); the two
# PCDs make the firmware run the ESP's startup.nsh right away (no setup
# menu, no 5 s shell countdown). ~1 min of build on 2 cores (niced).
# x86_64: RELEASE, toolchain tag GCC5 (what Debian's debian/rules builds
# OVMF with; native gcc, nasm), no extra PCDs: the command of CH's
# docs/uefi.md; 4 MiB (FD_SIZE_IN_KB 4096, the .dsc's default).
#
# Our own edk2 patches (scripts/fullstack/edk2/*.patch, applied in name
# order after Debian's series; only our lines and their context are
# committed): 0001 turns Cloud Hypervisor's /reserved-memory no-map nodes
# (the RAS error sources) into reserved, write-back UEFI memory map entries
# (docs/fullstack.md, "Firmware"). Every patch there so far changes only
# ArmVirtPkg (the arm64 platform: its FDT-based memory map does not exist
# on x86, where CH describes memory through the PVH/E820 tables), so they
# do not apply to x86_64: the x86_64 build applies only the patches that
# touch no ArmVirtPkg file (today none; the cache key counts them).
set -euo pipefail
. "$(dirname "$0")/common.sh"

FW_ARCH=${FW_ARCH:-aarch64}
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) FW_ARCH=$2; shift ;;
        --arch=*) FW_ARCH=${1#--arch=} ;;
        -h|--help) sed -n '3,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) fs_die "unknown option $1" ;;
    esac
    shift
done
EDK2_VERSION=${EDK2_VERSION:-2025.02-8+deb13u1}
# Bump FW_REV when the build itself changes (flags, PCDs); the patches are
# part of the cache key by their checksum.
FW_REV=2
PATCH_DIR=$(cd "$(dirname "$0")" && pwd)/edk2
case "$FW_ARCH" in
    aarch64|arm64)
        FW_ARCH=aarch64 FD_NAME=CLOUDHV_EFI.fd SRC=$FS_DIR/edk2-src ;;
    x86_64|amd64|x64|X64)
        FW_ARCH=x86_64 FD_NAME=CLOUDHV.fd SRC=$FS_DIR/edk2-src-x64 ;;
    *) fs_die "FW_ARCH/--arch: aarch64 or x86_64, not $FW_ARCH" ;;
esac
PATCHES=()
if [ "${FW_STOCK:-0}" != 1 ]; then
    for p in "$PATCH_DIR"/*.patch; do
        [ -e "$p" ] || continue
        # ArmVirtPkg-only patches are for the arm64 platform (see above).
        if [ "$FW_ARCH" = x86_64 ] && grep -q '^+++ b/ArmVirtPkg/' "$p"; then continue; fi
        PATCHES+=("$p")
    done
fi
if [ "${FW_STOCK:-0}" = 1 ]; then
    OUT=$FS_DIR/${FD_NAME%.fd}-stock.fd
else
    OUT=$FS_DIR/$FD_NAME
fi
PATCH_SUM=$(cat /dev/null ${PATCHES[@]+"${PATCHES[@]}"} | sha256sum | cut -c1-16)
# (the arm64 key is the one of the single-architecture script: its cache stays valid)
FW_KEY="edk2=$EDK2_VERSION rev=$FW_REV patches=${#PATCHES[@]}:$PATCH_SUM"
[ "$FW_ARCH" = aarch64 ] || FW_KEY="$FW_KEY arch=$FW_ARCH"
KEYFILE=${OUT%.fd}.version
JOBS=${JOBS:-$(nproc)}
if [ "$FW_ARCH" = aarch64 ]; then
    BUILD_LOG=$FS_DIR/edk2-build.log BT_LOG=$FS_DIR/edk2-basetools.log
else
    BUILD_LOG=$FS_DIR/edk2-build-$FW_ARCH.log BT_LOG=$FS_DIR/edk2-basetools-$FW_ARCH.log
fi

# One build at a time (a second caller waits and then uses the cache).
mkdir -p "$FS_DIR"
exec 9>"$FS_DIR/.firmware.lock"
flock 9
if [ -s "$OUT" ] && [ "$(cat "$KEYFILE" 2>/dev/null)" = "$FW_KEY" ] && [ "${FORCE:-0}" != 1 ]; then
    fs_log "firmware cached: $OUT ($FW_KEY)"
    echo "$OUT"
    exit 0
fi

if [ "$FW_ARCH" = aarch64 ]; then
    fs_need_host uuid-dev acpica-tools gcc-aarch64-linux-gnu make g++ python3 patch xz-utils
else
    fs_need_host uuid-dev acpica-tools nasm gcc make g++ python3 patch xz-utils
fi
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
        nice -n 10 make -s -j"$JOBS" -C BaseTools >"$BT_LOG" 2>&1 ||
            { tail -30 "$BT_LOG" >&2; exit 1; }
        touch BaseTools/.built
    fi
    export WORKSPACE=$SRC PYTHON_COMMAND=${PYTHON_COMMAND:-/usr/bin/python3}
    export GCC_AARCH64_PREFIX=aarch64-linux-gnu-
    set --   # edksetup.sh parses "$@"
    set +eu  # and is not written for -e/-u
    # shellcheck disable=SC1091
    . ./edksetup.sh >/dev/null
    set -eu
    if [ "$FW_ARCH" = aarch64 ]; then
        # Debian ships the LTO helper as assembly only.
        if [ -e BaseTools/Bin/GccLto/liblto-aarch64.s ] && [ ! -e BaseTools/Bin/GccLto/liblto-aarch64.a ]; then
            aarch64-linux-gnu-gcc -c -fpic BaseTools/Bin/GccLto/liblto-aarch64.s \
                -o BaseTools/Bin/GccLto/liblto-aarch64.a
        fi
        nice -n 10 build -n "$JOBS" -a AARCH64 -t GCC -p ArmVirtPkg/ArmVirtCloudHv.dsc -b RELEASE \
            --pcd gArmTokenSpaceGuid.PcdUefiShellDefaultBootEnable=TRUE \
            --pcd gEfiShellPkgTokenSpaceGuid.PcdShellDefaultDelay=0 \
            >"$BUILD_LOG" 2>&1 || { tail -40 "$BUILD_LOG" >&2; exit 1; }
    else
        nice -n 10 build -n "$JOBS" -a X64 -t GCC5 -p OvmfPkg/CloudHv/CloudHvX64.dsc -b RELEASE \
            >"$BUILD_LOG" 2>&1 || { tail -40 "$BUILD_LOG" >&2; exit 1; }
    fi
)
fd=$(find "$SRC/Build" -path '*RELEASE_GCC*' -name "$FD_NAME" | head -n1)
[ -n "$fd" ] && [ -s "$fd" ] || fs_die "$FD_NAME not produced (see $BUILD_LOG)"
cp "$fd" "$OUT"
t1=$(date +%s)
echo "$FW_KEY" >"$KEYFILE"
fs_log "built $OUT ($(stat -c %s "$OUT") bytes, $FW_KEY) in $((t1 - t0)) s"
# The tree is ~1 GB after a build; keep only the firmware and the tarballs.
[ "${KEEP_SRC:-0}" = 1 ] || rm -rf "$SRC"
echo "$OUT"
