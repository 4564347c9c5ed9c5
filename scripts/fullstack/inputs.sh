# SPDX-License-Identifier: Apache-2.0
#
# Locate (or fetch) the lab inputs: arm64 kernel, hwpoison-inject.ko and a
# static arm64 busybox. Sourced after common.sh. The embedded lab
# (scripts/lab.sh, scripts/lab/fetch.sh) caches them under .lab/lab or .lab;
# when neither has them, they are downloaded here (Debian packages through
# the private APT config, unpacked with dpkg -x) into $FS_DIR.
#
# Overrides: L1_KERNEL, GUEST_KERNEL, HWPOISON_KO, BUSYBOX.

fs_first_existing() {
    local f
    for f in "$@"; do [ -s "$f" ] && { echo "$f"; return 0; }; done
    return 1
}

# Debian 7.x arm64 kernel from trixie-backports -> $FS_DIR/k73/{vmlinuz,hwpoison-inject.ko}
fs_fetch_kernel() {
    local out=$FS_DIR/k73 x=$FS_DIR/x-k73 img ver
    [ -s "$out/vmlinuz" ] && [ -s "$out/hwpoison-inject.ko" ] && return 0
    fs_apt_config
    fs_apt_update
    img=$(fs_apt apt-cache depends -t trixie-backports linux-image-arm64:arm64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { sub(/:arm64$/, "", $2); print $2; exit }')
    [ -n "$img" ] || fs_die "cannot resolve linux-image-arm64 in trixie-backports"
    ver=${img#linux-image-}; ver=${ver%-unsigned}
    fs_log "fetching kernel $ver"
    rm -rf "$x" && mkdir -p "$x" "$out"
    dpkg -x "$(fs_download_arm64 "$img" trixie-backports)" "$x"
    ls "$x"/boot/vmlinuz-* "$x"/usr/lib/modules/*/vmlinuz >/dev/null 2>&1 ||
        dpkg -x "$(fs_download_arm64 "linux-binary-$ver" trixie-backports)" "$x"
    find "$x" -name 'hwpoison-inject.ko*' | grep -q . ||
        dpkg -x "$(fs_download_arm64 "linux-modules-$ver" trixie-backports)" "$x"
    cp "$(ls "$x"/boot/vmlinuz-* "$x"/usr/lib/modules/*/vmlinuz 2>/dev/null | head -n1)" "$out/vmlinuz"
    local ko
    ko=$(find "$x" -name 'hwpoison-inject.ko*' | head -n1)
    case "$ko" in
        *.xz) xz -dc "$ko" >"$out/hwpoison-inject.ko" ;;
        *.zst) zstd -dc "$ko" >"$out/hwpoison-inject.ko" ;;
        *) cp "$ko" "$out/hwpoison-inject.ko" ;;
    esac
    echo "$ver" >"$out/version"
    rm -rf "$x" "$FS_DIR"/debs/linux-*
}

fs_fetch_busybox() {
    [ -s "$FS_DIR/busybox" ] && return 0
    local x=$FS_DIR/x-busybox
    fs_apt_config
    rm -rf "$x" && mkdir -p "$x"
    dpkg -x "$(fs_download_arm64 busybox-static bookworm)" "$x"
    cp "$x/bin/busybox" "$FS_DIR/busybox"
    rm -rf "$x"
}

fs_inputs_kernel() {
    if [ -z "${L1_KERNEL:-}" ] || [ -z "${HWPOISON_KO:-}" ]; then
        local d
        for d in ${LAB_DIR:+"$LAB_DIR/k73"} "$FS_ROOT/.lab/lab/k73" "$FS_ROOT/.lab/k73" "$FS_DIR/k73"; do
            if [ -s "$d/vmlinuz" ] && [ -s "$d/hwpoison-inject.ko" ]; then
                L1_KERNEL=${L1_KERNEL:-$d/vmlinuz}
                HWPOISON_KO=${HWPOISON_KO:-$d/hwpoison-inject.ko}
                break
            fi
        done
    fi
    if [ -z "${L1_KERNEL:-}" ] || [ -z "${HWPOISON_KO:-}" ]; then
        fs_fetch_kernel
        L1_KERNEL=${L1_KERNEL:-$FS_DIR/k73/vmlinuz}
        HWPOISON_KO=${HWPOISON_KO:-$FS_DIR/k73/hwpoison-inject.ko}
    fi
    GUEST_KERNEL=${GUEST_KERNEL:-$L1_KERNEL}
    export L1_KERNEL HWPOISON_KO GUEST_KERNEL
}

fs_inputs_busybox() {
    if [ -z "${BUSYBOX:-}" ]; then
        BUSYBOX=$(fs_first_existing ${LAB_DIR:+"$LAB_DIR/busybox"} "$FS_ROOT/.lab/lab/busybox" \
            "$FS_ROOT/.lab/busybox" "$FS_DIR/busybox") || {
            fs_fetch_busybox
            BUSYBOX=$FS_DIR/busybox
        }
    fi
    export BUSYBOX
}

fs_inputs_guest() {
    fs_inputs_kernel
    fs_inputs_busybox
}
