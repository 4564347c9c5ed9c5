#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Cloud Hypervisor's own integration tests (the RAS tests, `mod ras` of
# cloud-hypervisor/tests/integration.rs, and a launch test booted the same
# way as a control: aarch64_acpi's test_simple_launch_acpi (UEFI firmware),
# x86_64's common_parallel::test_multi_cpu (direct kernel boot)) with CH's
# own test runner (cargo nextest, CH's .config/nextest.toml), on real KVM:
# inside an emulated machine (L1) that runs Debian's Linux with KVM, nested
# in TCG:
#   --arch aarch64 (default): qemu-system-aarch64 -M virt with EL2;
#   --arch x86_64: qemu-system-x86_64 -M q35 -cpu max (AMD SVM with nested
#   paging; kvm-amd), as scripts/lab-x86.sh and the x86 full stack do.
#
#   scripts/ch-integration.sh --ch-src DIR [--arch aarch64|x86_64]
#        [--micro-http DIR] [--filter EXPR] [--retries N] [--timeout S] [--jobs N]
#
# DIR: a Cloud Hypervisor checkout with the RAS series and its tests (read,
# never written: build outputs go to .lab/chint/ (.lab/chint-x86/ for
# x86_64); nothing is downloaded but
# crates, Debian packages and, when missing, cargo-nextest from the crate
# registry). What is built, cached under .lab/:
#   - as CH's CI builds (scripts/run_integration_tests_{aarch64,x86_64}.sh:
#     `cargo build --features mshv --all --release`, then `cargo nextest
#     run -p cloud-hypervisor`), for the --arch target (cross for aarch64)
#     with `--cfg devcli_testenv` (what scripts/dev_cli.sh adds) and
#     statically linked (L1's C library is not the build's):
#     cloud-hypervisor and ch-remote (release, --features mshv),
#     test_infra's ras_guest (release), and the integration test binary
#     (test profile) in a nextest archive;
#   - cargo-nextest: for aarch64 the host's version built for aarch64
#     (`cargo install`); for x86_64 the host's own binary;
#   - the workload (scripts/ch-integration/build-workload.sh --arch) and
#     what boots it: for aarch64 CLOUDHV_EFI.fd
#     (scripts/fullstack/build-firmware.sh), for x86_64 a direct-boot
#     vmlinux-x86_64 (scripts/ch-integration/build-kernel.sh: Debian's
#     kernel needs an initramfs for root=/dev/vda1; and CH's OVMF aborts
#     the emulator of this lab's L1, docs/ch-integration.md);
#   - L1's root file system: an ext4 image (mke2fs -d, no root-only tools)
#     holding Debian bash, dosfstools, mtools (prepare_cloudinit runs
#     mkdosfs and mcopy), busybox, DIR's workspace layout at DIR's own path
#     (test_infra finds the binaries and test_data there, CARGO_MANIFEST_DIR
#     is baked in), $HOME/workloads, nextest and the extracted archive.
# micro_http, a git dependency, comes from --micro-http DIR (a clone holding
# the commit Cargo.lock locks) or cargo's git cache (scripts/lib/ch-series.sh).
#
# Output: one line per test (PASS/FAIL, seconds), then "N passed, M failed";
# exit status 0 when every selected test passed, 1 otherwise, 77 (SKIP) when
# a prerequisite is missing. The serial log of L1 (nextest's whole output,
# with each failed test's stdout/stderr) is .lab/chint/run-<date>.log.
#
# Knobs: --filter (nextest filterset, default the control + test(ras::)),
# --retries (default 0: CH's `integration` profile retries 3 times, which
# would hide a flaky test), --timeout (L1 wall clock, default 7200 s),
# --jobs (nextest --test-threads, default 1: L1 has 2 emulated CPUs).
# Environment: CHINT_DIR (default .lab/chint, .lab/chint-x86 for x86_64),
# L1_MEM (default 4G),
# CHINT_BIN_DIR (take cloud-hypervisor, ch-remote and ras_guest from there
# instead of building them: a rerun after editing only the tests).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CH_SRC= MICRO_HTTP= RETRIES=0 L1_TIMEOUT=7200 JOBS=1 ARCH=aarch64 FILTER=
while [ $# -gt 0 ]; do
    case "$1" in
        --ch-src) CH_SRC=$2; shift ;;
        --arch) ARCH=$2; shift ;;
        --micro-http) MICRO_HTTP=$2; shift ;;
        --filter) FILTER=$2; shift ;;
        --retries) RETRIES=$2; shift ;;
        --timeout) L1_TIMEOUT=$2; shift ;;
        --jobs) JOBS=$2; shift ;;
        -h|--help) awk 'NR > 2 && !/^#/ { exit } NR > 2 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

# What differs between the two architectures; everything else is shared.
case "$ARCH" in
    aarch64)
        CONTROL='aarch64_acpi::test_simple_launch_acpi' DEB_ARCH=arm64 QEMU=qemu-system-aarch64
        IMAGE_NAME=jammy-server-cloudimg-arm64-custom-20220329-0.raw
        ELF_PATTERN='ARM aarch64.*statically linked' DEFAULT_DIR=chint
        HOST_PACKAGES="gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
        # KVM is built into Debian's arm64 kernel.
        L1_MODULES="virtio_blk ext4 tun hwpoison_inject" ;;
    x86_64)
        CONTROL='common_parallel::test_multi_cpu' DEB_ARCH=amd64 QEMU=qemu-system-x86_64
        IMAGE_NAME=jammy-server-cloudimg-amd64-custom-20241017-0.raw
        ELF_PATTERN='x86-64.*static' DEFAULT_DIR=chint-x86 HOST_PACKAGES=
        # kvm-amd (with kvm, irqbypass, ccp): nested SVM under TCG.
        L1_MODULES="virtio_blk ext4 tun hwpoison_inject kvm-amd" ;;
    *) echo "--arch: aarch64 or x86_64, not $ARCH" >&2; exit 2 ;;
esac
FILTER=${FILTER:-"test(=$CONTROL) | test(ras::)"}
CHINT_DIR=${CHINT_DIR:-$ROOT/.lab/$DEFAULT_DIR}
mkdir -p "$CHINT_DIR" && CHINT_DIR=$(cd "$CHINT_DIR" && pwd)
export CHS_LAB=$CHINT_DIR CHS_LOG_PREFIX=ch-integration
. "$ROOT/scripts/lib/ch-series.sh"
. "$ROOT/scripts/lib/debian-archive.sh"
. "$ROOT/scripts/lib/debian-rootfs.sh"
LAB_LOG_PREFIX=ch-integration
. "$ROOT/scripts/lib/lab-common.sh"

[ -n "$CH_SRC" ] || lab_skip "no Cloud Hypervisor checkout (--ch-src DIR)"
[ -f "$CH_SRC/cloud-hypervisor/tests/integration.rs" ] && [ -d "$CH_SRC/test_infra" ] ||
    lab_skip "$CH_SRC is not a Cloud Hypervisor checkout with integration tests"
CH_SRC=$(cd "$CH_SRC" && pwd)
grep -q '^mod ras {' "$CH_SRC/cloud-hypervisor/tests/integration.rs" ||
    lab_skip "$CH_SRC has no RAS integration tests (mod ras in cloud-hypervisor/tests/integration.rs)"
command -v "$QEMU" >/dev/null || lab_skip "$QEMU missing (scripts/lab/fetch.sh, scripts/lab-x86.sh fetch install it)"
need_host_packages $HOST_PACKAGES e2fsprogs cpio xz-utils zstd kmod file ||
    lab_skip "cannot install the host tools"
command -v cargo-nextest >/dev/null || lab_skip "cargo-nextest missing on the host (cargo install cargo-nextest --locked)"
case "$ARCH" in aarch64) T=$CHS_AARCH64 ;; x86_64) T=$CHS_X86 ;; esac
mkdir -p "$CHINT_DIR"
exec 8>"$CHINT_DIR/.lock"
flock -n 8 || lab_die "another run holds $CHINT_DIR/.lock"
t_start=$SECONDS

# ---- 1. Build, as CH's CI does, cross and static --------------------------
chs_git_deps "$CH_SRC" "$MICRO_HTTP"
chs_rust_target "$T"
export CARGO_TARGET_DIR=$CHINT_DIR/target
if [ "$ARCH" = aarch64 ]; then
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
fi
# dev_cli.sh adds --cfg devcli_testenv (integration.rs is compiled only
# with it); +crt-static: L1 runs them without a C library of its own.
export RUSTFLAGS="--cfg devcli_testenv -C target-feature=+crt-static"
t0=$SECONDS
REL=$CARGO_TARGET_DIR/$T/release
if [ -n "${CHINT_BIN_DIR:-}" ]; then
    # Binaries built earlier from the same VMM sources: any change in
    # cloud-hypervisor/ (its tests included) reruns its build script
    # (git describe) and relinks it with LTO, ~30 min on a busy machine.
    REL=$(cd "$CHINT_BIN_DIR" && pwd)
    lab_log "using cloud-hypervisor, ch-remote and ras_guest from $REL (CHINT_BIN_DIR): $(ls -l --time-style=+%FT%T "$REL" | awk 'NR > 1 { print $7, $6 }' | tr '\n' ' ')"
else
    lab_log "building cloud-hypervisor, ch-remote (release, --features mshv) and ras_guest for $T"
    chs_cargo "$CH_SRC" build --locked --release --target "$T" -p cloud-hypervisor --features mshv --bins >&2 ||
        lab_die "cloud-hypervisor build failed"
    chs_cargo "$CH_SRC" build --locked --release --target "$T" -p test_infra --bins >&2 ||
        lab_die "test_infra build failed"
fi
for b in cloud-hypervisor ch-remote ras_guest; do
    file -b "$REL/$b" | grep -qE "$ELF_PATTERN" || lab_die "$REL/$b: not a static $ARCH executable"
done
lab_log "building the integration test binary (test profile) into a nextest archive"
ARCHIVE=$CHINT_DIR/integration.tar.zst
# A target directory of its own: the test profile shares nothing with the
# release build, and the two can then be built at the same time.
# (The --config arguments must follow `nextest archive`.)
(cd "$CH_SRC" && CARGO_TARGET_DIR=$CHINT_DIR/target-test nice cargo nextest archive "${CHS_CARGO_CFG[@]}" \
    --locked --target "$T" -p cloud-hypervisor --test integration --archive-file "$ARCHIVE") >&2 ||
    lab_die "nextest archive failed"
lab_log "built in $((SECONDS - t0)) s"

# cargo-nextest for aarch64: the host's version, static; for x86_64 the
# host's own (L1's Debian C library runs it: rootfs_check_libs below).
NV=$(cargo-nextest --version | awk '{ print $2; exit }')
NX=$CHINT_DIR/nextest-$NV/bin/cargo-nextest
[ "$ARCH" = x86_64 ] && NX=$(command -v cargo-nextest)
if [ ! -x "$NX" ]; then
    lab_log "building cargo-nextest $NV for $T (once)"
    (
        unset CARGO_TARGET_DIR
        cd "$CHINT_DIR"
        nice cargo install --locked cargo-nextest --version "=$NV" --target "$T" \
            --no-default-features --features default-no-update \
            --root "$CHINT_DIR/nextest-$NV" --target-dir "$CHINT_DIR/nextest-target"
    ) >&2 || lab_die "cargo install cargo-nextest failed"
fi

# ---- 2. Workload and firmware ---------------------------------------------
WL_DIR=${WL_DIR:-$ROOT/.lab/workload}
export WL_DIR
WL_IMAGE=$WL_DIR/ch-workload-$DEB_ARCH.raw
[ -s "$WL_IMAGE" ] || "$ROOT/scripts/ch-integration/build-workload.sh" --arch "$DEB_ARCH" --no-install >&2
# aarch64: the tests boot through the UEFI firmware. x86_64: they boot
# directly (direct_kernel_boot_path(), root=/dev/vda1 without an
# initramfs): a kernel with those drivers built in.
case "$ARCH" in
    aarch64)
        BOOT=$("$ROOT/scripts/fullstack/build-firmware.sh" | tail -n1) BOOT_NAME=CLOUDHV_EFI.fd ;;
    x86_64)
        BOOT=$("$ROOT/scripts/ch-integration/build-kernel.sh" | tail -n1) BOOT_NAME=vmlinux-x86_64 ;;
esac
[ -s "$BOOT" ] || lab_die "no $BOOT_NAME"
# L1 runs the guest's kernel (and its modules): build-workload.sh's tree,
# its version in kernel.version (arm64) or kernel-amd64.version.
case "$DEB_ARCH" in arm64) kv_file=kernel.version ;; *) kv_file=kernel-$DEB_ARCH.version ;; esac
KDIR=$WL_DIR/kernel-$(cat "$WL_DIR/$kv_file")
KVER=$(ls "$KDIR/m/lib/modules")

# ---- 3. L1's root file system ---------------------------------------------
APT_DIR=$CHINT_DIR/apt
private_apt "$APT_DIR" "bookworm" || lab_die "no archive URI in $DEBIAN_SOURCES"
if [ ! -e "$APT_DIR/.updated" ]; then
    lab_log "apt-get update (private lists in $APT_DIR)"
    APT_CONFIG="$APT_DIR/apt.conf" apt-get -q update >/dev/null
    touch "$APT_DIR/.updated"
fi
S=$CHINT_DIR/l1root
rm -rf "$S" && mkdir -p "$S"
mapfile -t debs < <(rootfs_download "$APT_DIR" "$DEB_ARCH" bookworm busybox-static bash dosfstools mtools)
[ "${#debs[@]}" -gt 0 ] || lab_die "no Debian packages for L1"
rootfs_unpack "$S" "${debs[@]}"
rootfs_merge_usr "$S"
ln -sf busybox "$S/usr/bin/sh"
mkdir -p "$S"/{proc,sys,dev,tmp,run,root/workloads/junit,chint}
# The workspace, at the checkout's own path.
W=$S$CH_SRC
mkdir -p "$W/cloud-hypervisor" "$W/target/$T/release"
cp "$CH_SRC/Cargo.toml" "$W/"
cp "$CH_SRC/cloud-hypervisor/Cargo.toml" "$W/cloud-hypervisor/"
cp -a "$CH_SRC/.config" "$CH_SRC/test_data" "$W/"
cp "$REL/cloud-hypervisor" "$REL/ch-remote" "$REL/ras_guest" "$W/target/$T/release/"
cp "$NX" "$S/chint/cargo-nextest"
cp --sparse=always "$WL_IMAGE" "$S/root/workloads/$IMAGE_NAME"
cp "$BOOT" "$S/root/workloads/$BOOT_NAME"
install -m 755 "$HERE/ch-integration/l1-run.sh" "$S/chint/l1-run.sh"
if [ "$ARCH" = x86_64 ]; then
    # One empty VM held for the whole run: scripts/fullstack-x86/kvmhold.c
    # says why (L1's scheduler is otherwise text-patched at every VM).
    lab_static_c "$ROOT/scripts/fullstack-x86/kvmhold.c" "$CHINT_DIR/kvmhold" ||
        lab_die "cannot build a static kvmhold (gcc, libc6-dev, linux-libc-dev)"
    cp "$CHINT_DIR/kvmhold" "$S/chint/kvmhold"
fi
{
    printf 'WORKSPACE=%q\nTARGET=%q\nFILTER=%q\nRETRIES=%q\nJOBS=%q\n' \
        "$CH_SRC" "$T" "$FILTER" "$RETRIES" "$JOBS"
} >"$S/chint/env"
rootfs_check_libs "$S" || lab_die "L1 root file system: libraries missing"
# The test binary and nextest's metadata, extracted here (fast) rather
# than in L1; nextest then runs from the metadata with path remaps. (After
# the library check: the archive also holds the build host's libstd for
# proc macros, which L1 never loads.)
mkdir -p "$S/chint/archive"
tar --zstd -xf "$ARCHIVE" -C "$S/chint/archive"
IMG=$CHINT_DIR/l1root.img
size_mb=$(( $(du -sm --apparent-size "$S" | cut -f1) + 2048 ))
rm -f "$IMG"
mke2fs -q -t ext4 -L chint-l1 -d "$S" -E root_owner=0:0 "$IMG" "${size_mb}M" >&2 ||
    lab_die "mke2fs failed"
lab_log "L1 root file system: $IMG (${size_mb} MiB, $(du -sm "$IMG" | cut -f1) MiB allocated)"

# L1's initramfs: busybox, the modules for the root disk (virtio_blk, ext4)
# and for the tests (tun: --net tap=; hwpoison_inject: corrupt-pfn; on
# x86_64 kvm-amd).
I=$CHINT_DIR/initramfs
rm -rf "$I" && mkdir -p "$I"/{bin,proc,sys,dev,newroot,modules}
cp "$S/usr/bin/busybox" "$I/bin/busybox"
ln -s busybox "$I/bin/sh"
n=0
for f in $(for m in $L1_MODULES; do
    modprobe -d "$KDIR/m" -S "$KVER" --show-depends "$m"; done |
    awk '$1 == "insmod" && !seen[$2]++ { print $2 }'); do
    n=$((n + 1))
    case "$f" in
        *.xz) xz -dc "$f" >"$I/modules/$(printf %02d "$n")-$(basename "$f" .xz)" ;;
        *) cp "$f" "$I/modules/$(printf %02d "$n")-$(basename "$f")" ;;
    esac
done
cat >"$I/init" <<'EOF'
#!/bin/sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
for m in /modules/*.ko; do /bin/busybox insmod "$m" || echo "CHINT insmod $m failed"; done
n=0
while [ ! -b /dev/vda ] && [ "$n" -lt 100 ]; do /bin/busybox sleep 0.1; n=$((n + 1)); done
/bin/busybox mount -t ext4 /dev/vda /newroot || { echo "CHINT cannot mount the root disk"; /bin/busybox poweroff -f; }
/bin/busybox umount /proc /sys
/bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /chint/l1-run.sh
EOF
chmod 755 "$I/init"
(cd "$I" && find . | LC_ALL=C sort | cpio -o -H newc --quiet --owner 0:0) | gzip -1 >"$CHINT_DIR/initramfs.gz"

# ---- 4. Run ------------------------------------------------------------------
LOG=$CHINT_DIR/run-$(date +%Y%m%d-%H%M%S).log
lab_log "L1: Linux $KVER, 2 CPUs, ${L1_MEM:-4G}; guest: $BOOT_NAME ($(cat "${BOOT%.fd}.version")), workload kernel $(cat "$WL_DIR/$kv_file"); log $LOG"
lab_log "tests: $FILTER"
t1=$SECONDS
set +e
case "$ARCH" in
    aarch64) machine=(-M virt,virtualization=on,gic-version=3 -cpu max) console=ttyAMA0 ;;
    x86_64) machine=(-accel tcg -M q35 -cpu max) console=ttyS0 ;;
esac
timeout "$L1_TIMEOUT" nice "$QEMU" "${machine[@]}" \
    -smp 2 -m "${L1_MEM:-4G}" -nographic -no-reboot -nic none \
    -kernel "$KDIR/vmlinuz" -initrd "$CHINT_DIR/initramfs.gz" \
    -drive if=none,id=root,format=raw,file="$IMG" -device virtio-blk-pci,drive=root \
    -append "console=$console panic=-1 quiet" </dev/null 2>&1 | sed -u 's/\r//g' >"$LOG"
qrc=${PIPESTATUS[0]}
set -e
ln -sf "$(basename "$LOG")" "$CHINT_DIR/run-latest.log"
l1_s=$((SECONDS - t1))

# ---- 5. Results ----------------------------------------------------------------
# nextest: "        PASS [  12.345s] (1/3) cloud-hypervisor::integration ras::test_x"
# (also FAIL, TIMEOUT, SIGSEGV...; "TRY n" before a retry's status).
# The last status of each test wins (a retry's "TRY n PASS" after a FAIL).
passed=0 failed=0
while read -r st t name; do
    case "$st" in PASS|FLAKY) passed=$((passed + 1)); r=PASS ;; *) failed=$((failed + 1)); r="FAIL ($st)" ;; esac
    printf 'RESULT %-50s %-16s %8ss\n' "$name" "$r" "$t"
done < <(sed 's/\x1b\[[0-9;]*[A-Za-z]/\n/g' "$LOG" | awk '
    # A status line (a progress bar may follow on the same line):
    #   "        PASS [  12.345s] cloud-hypervisor::integration ras::test_x"
    {
        f = 1
        if ($1 == "TRY") f = 3
        if ($f !~ /^(PASS|FLAKY|FAIL|TIMEOUT|SIG[A-Z]+|ABORT|LEAK)$/) next
        # "[  12.345s]" splits into "[" and "12.345s]", "[1234.567s]" does not
        t = $(f + 1); if (t !~ /^\[/) next
        sub(/^\[/, "", t); i = f + 2; if (t == "") { t = $(f + 2); i = f + 3 }
        sub(/s\]$/, "", t)
        # the binary id (crate::binary), then the test name
        if ($i !~ /::/) next
        name = $(i + 1)
        if (name !~ /::/) next
        st[name] = $f; secs[name] = t
        if (!(name in order)) { order[name] = ++n; names[n] = name }
    }
    END { for (i = 1; i <= n; i++) print st[names[i]], secs[names[i]], names[i] }
')
grep -E '^ *Summary \[' "$LOG" | sed 's/^ */nextest: /' || true
echo "L1: $(grep -a -m1 'CHINT L1 up' "$LOG" | sed 's/^.*CHINT //')"
echo "times: build+image $((t1 - t_start)) s, L1 run $l1_s s (qemu status $qrc; 124 = timeout)"
if ! grep -q '^CHINT NEXTEST-EXIT' "$LOG"; then
    echo "no end of run from L1 (see $LOG)"
    failed=$((failed + 1))
fi
[ $((passed + failed)) -gt 0 ] || { echo "no test ran (see $LOG)"; failed=1; }
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
