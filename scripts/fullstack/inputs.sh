# SPDX-License-Identifier: Apache-2.0
#
# Locate (or fetch) the inputs the full stack shares with the arm64 lab:
# the 7.x arm64 kernel with its modules (hwpoison-inject for L1,
# virtio_blk for the guest) and a static arm64 busybox. The lab's fetcher
# (scripts/lab/fetch.sh) is the one way they are obtained: its cache
# (.lab/lab, or $LAB_DIR) is used when it has them, otherwise it fetches
# them into $FS_DIR. Sourced after common.sh.
#
# Overrides: L1_KERNEL, HWPOISON_KO, BUSYBOX (then nothing is fetched),
# GUEST_KERNEL (default L1_KERNEL).

# fs_lab_inputs: FS_LAB := the first cache with the k73 kernel, its
# modules and busybox; fetched into $FS_DIR when none has them (the
# fetcher's status when it cannot: 77 with its SKIP line, or 1).
fs_lab_inputs() {
    local d st=0
    for d in ${LAB_DIR:+"$LAB_DIR"} "$FS_ROOT/.lab/lab" "$FS_DIR"; do
        if [ -s "$d/k73/vmlinuz" ] && [ -s "$d/k73/modules/hwpoison-inject.ko" ] &&
            [ -s "$d/k73/modules/virtio_blk.ko" ] && [ -s "$d/busybox" ]; then
            FS_LAB=$d
            return 0
        fi
    done
    fs_log "fetching the lab's arm64 kernel and busybox into $FS_DIR"
    LAB_DIR=$FS_DIR LAB_KERNELS=k73 "$FS_ROOT/scripts/lab/fetch.sh" || st=$?
    [ "$st" = 0 ] || exit "$st"
    FS_LAB=$FS_DIR
}

fs_inputs_guest() {
    if [ -z "${L1_KERNEL:-}" ] || [ -z "${HWPOISON_KO:-}" ] || [ -z "${BUSYBOX:-}" ]; then
        fs_lab_inputs
        L1_KERNEL=${L1_KERNEL:-$FS_LAB/k73/vmlinuz}
        HWPOISON_KO=${HWPOISON_KO:-$FS_LAB/k73/modules/hwpoison-inject.ko}
        BUSYBOX=${BUSYBOX:-$FS_LAB/busybox}
    fi
    GUEST_KERNEL=${GUEST_KERNEL:-$L1_KERNEL}
    export L1_KERNEL HWPOISON_KO GUEST_KERNEL BUSYBOX
}
