#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Cloud Hypervisor's own aarch64 integration tests (the RAS tests, `mod ras`
# of cloud-hypervisor/tests/integration.rs, and aarch64_acpi's
# test_simple_launch_acpi as a control) with CH's own test runner (cargo
# nextest, CH's .config/nextest.toml), on real KVM: inside the lab's L1,
# an emulated arm64 machine with EL2 (qemu-system-aarch64 TCG) running
# Debian's arm64 Linux with KVM.
#
#   scripts/ch-integration.sh --ch-src DIR [--micro-http DIR] [--filter EXPR]
#        [--retries N] [--timeout S] [--jobs N]
#
# DIR: a Cloud Hypervisor checkout with the RAS series and its tests (read,
# never written: build outputs go to .lab/chint/; nothing is downloaded but
# crates, Debian packages and, when missing, cargo-nextest from the crate
# registry). What is built, cached under .lab/:
#   - as CH's CI builds (scripts/run_integration_tests_aarch64.sh: `cargo
#     build --features mshv --all --release`, then `cargo nextest run -p
#     cloud-hypervisor`), cross-built for aarch64-unknown-linux-gnu with
#     `--cfg devcli_testenv` (what scripts/dev_cli.sh adds) and statically
#     linked (L1 has no glibc of its own): cloud-hypervisor and ch-remote
#     (release, --features mshv), test_infra's ras_guest (release), and the
#     integration test binary (test profile) in a nextest archive;
#   - cargo-nextest for aarch64, the host's version (`cargo install`);
#   - the workload (scripts/ch-integration/build-workload.sh) and
#     CLOUDHV_EFI.fd (scripts/fullstack/build-firmware.sh);
#   - L1's root file system: an ext4 image (mke2fs -d, no root-only tools)
#     holding Debian arm64 bash, dosfstools, mtools (prepare_cloudinit runs
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
# Environment: CHINT_DIR (default .lab/chint), L1_MEM (default 4G),
# CHINT_BIN_DIR (take cloud-hypervisor, ch-remote and ras_guest from there
# instead of building them: a rerun after editing only the tests).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CHINT_DIR=${CHINT_DIR:-$ROOT/.lab/chint}
mkdir -p "$CHINT_DIR" && CHINT_DIR=$(cd "$CHINT_DIR" && pwd)
export CHS_LAB=$CHINT_DIR CHS_LOG_PREFIX=ch-integration
. "$ROOT/scripts/lib/ch-series.sh"
. "$ROOT/scripts/lib/debian-archive.sh"
. "$ROOT/scripts/lib/debian-rootfs.sh"
LAB_LOG_PREFIX=ch-integration
. "$ROOT/scripts/lib/lab-common.sh"

CH_SRC= MICRO_HTTP= RETRIES=0 L1_TIMEOUT=7200 JOBS=1
FILTER='test(=aarch64_acpi::test_simple_launch_acpi) | test(ras::)'
while [ $# -gt 0 ]; do
    case "$1" in
        --ch-src) CH_SRC=$2; shift ;;
        --micro-http) MICRO_HTTP=$2; shift ;;
        --filter) FILTER=$2; shift ;;
        --retries) RETRIES=$2; shift ;;
        --timeout) L1_TIMEOUT=$2; shift ;;
        --jobs) JOBS=$2; shift ;;
        -h|--help) sed -n '3,45p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

[ -n "$CH_SRC" ] || lab_skip "no Cloud Hypervisor checkout (--ch-src DIR)"
[ -f "$CH_SRC/cloud-hypervisor/tests/integration.rs" ] && [ -d "$CH_SRC/test_infra" ] ||
    lab_skip "$CH_SRC is not a Cloud Hypervisor checkout with integration tests"
CH_SRC=$(cd "$CH_SRC" && pwd)
grep -q '^mod ras {' "$CH_SRC/cloud-hypervisor/tests/integration.rs" ||
    lab_skip "$CH_SRC has no RAS integration tests (mod ras in cloud-hypervisor/tests/integration.rs)"
command -v qemu-system-aarch64 >/dev/null || lab_skip "qemu-system-aarch64 missing (scripts/lab/fetch.sh installs it)"
need_host_packages gcc-aarch64-linux-gnu libc6-dev-arm64-cross e2fsprogs cpio xz-utils zstd kmod ||
    lab_skip "cannot install the host tools"
command -v cargo-nextest >/dev/null || lab_skip "cargo-nextest missing on the host (cargo install cargo-nextest --locked)"
T=$CHS_AARCH64
mkdir -p "$CHINT_DIR"
exec 8>"$CHINT_DIR/.lock"
flock -n 8 || lab_die "another run holds $CHINT_DIR/.lock"
t_start=$SECONDS

# ---- 1. Build, as CH's CI does, cross and static --------------------------
chs_git_deps "$CH_SRC" "$MICRO_HTTP"
chs_rust_target "$T"
export CARGO_TARGET_DIR=$CHINT_DIR/target
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
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
    file -b "$REL/$b" | grep -q 'ARM aarch64.*statically linked' || lab_die "$REL/$b: not a static aarch64 executable"
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

# cargo-nextest for aarch64: the host's version, static.
NV=$(cargo-nextest --version | awk '{ print $2; exit }')
NX=$CHINT_DIR/nextest-$NV/bin/cargo-nextest
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
IMAGE_NAME=jammy-server-cloudimg-arm64-custom-20220329-0.raw
[ -s "$WL_DIR/ch-workload-arm64.raw" ] || "$ROOT/scripts/ch-integration/build-workload.sh" --no-install >&2
FW=$("$ROOT/scripts/fullstack/build-firmware.sh" | tail -n1)
KDIR=$WL_DIR/kernel-$(cat "$WL_DIR/kernel.version")
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
mapfile -t debs < <(rootfs_download "$APT_DIR" arm64 bookworm busybox-static bash dosfstools mtools)
[ "${#debs[@]}" -gt 0 ] || lab_die "no Debian packages for L1"
rootfs_unpack "$S" "${debs[@]}"
rootfs_merge_usr "$S"
ln -sf busybox "$S/usr/bin/sh"
mkdir -p "$S"/{proc,sys,dev,tmp,run,root/workloads/junit,chint}
rootfs_check_libs "$S" || lab_die "L1 root file system: libraries missing"
# The workspace, at the checkout's own path.
W=$S$CH_SRC
mkdir -p "$W/cloud-hypervisor" "$W/target/$T/release"
cp "$CH_SRC/Cargo.toml" "$W/"
cp "$CH_SRC/cloud-hypervisor/Cargo.toml" "$W/cloud-hypervisor/"
cp -a "$CH_SRC/.config" "$CH_SRC/test_data" "$W/"
cp "$REL/cloud-hypervisor" "$REL/ch-remote" "$REL/ras_guest" "$W/target/$T/release/"
# The test binary and nextest's metadata, extracted here (fast) rather
# than in L1; nextest then runs from the metadata with path remaps.
mkdir -p "$S/chint/archive"
tar --zstd -xf "$ARCHIVE" -C "$S/chint/archive"
cp "$NX" "$S/chint/cargo-nextest"
cp --sparse=always "$WL_DIR/ch-workload-arm64.raw" "$S/root/workloads/$IMAGE_NAME"
cp "$FW" "$S/root/workloads/CLOUDHV_EFI.fd"
install -m 755 "$HERE/ch-integration/l1-run.sh" "$S/chint/l1-run.sh"
{
    printf 'WORKSPACE=%q\nTARGET=%q\nFILTER=%q\nRETRIES=%q\nJOBS=%q\n' \
        "$CH_SRC" "$T" "$FILTER" "$RETRIES" "$JOBS"
} >"$S/chint/env"
IMG=$CHINT_DIR/l1root.img
size_mb=$(( $(du -sm --apparent-size "$S" | cut -f1) + 2048 ))
rm -f "$IMG"
mke2fs -q -t ext4 -L chint-l1 -d "$S" -E root_owner=0:0 "$IMG" "${size_mb}M" >&2 ||
    lab_die "mke2fs failed"
lab_log "L1 root file system: $IMG (${size_mb} MiB, $(du -sm "$IMG" | cut -f1) MiB allocated)"

# L1's initramfs: busybox, the modules for the root disk (virtio_blk, ext4)
# and for the tests (tun: --net tap=; hwpoison_inject: corrupt-pfn).
I=$CHINT_DIR/initramfs
rm -rf "$I" && mkdir -p "$I"/{bin,proc,sys,dev,newroot,modules}
cp "$S/usr/bin/busybox" "$I/bin/busybox"
ln -s busybox "$I/bin/sh"
n=0
for f in $(for m in virtio_blk ext4 tun hwpoison_inject; do
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
lab_log "L1: Linux $KVER, 2 CPUs, ${L1_MEM:-4G}; guest: Linux $(cat "$WL_DIR/kernel.version"); firmware $FW; log $LOG"
lab_log "tests: $FILTER"
t1=$SECONDS
set +e
timeout "$L1_TIMEOUT" nice qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu max \
    -smp 2 -m "${L1_MEM:-4G}" -nographic -no-reboot -nic none \
    -kernel "$KDIR/vmlinuz" -initrd "$CHINT_DIR/initramfs.gz" \
    -drive if=none,id=root,format=raw,file="$IMG" -device virtio-blk-pci,drive=root \
    -append "console=ttyAMA0 panic=-1 quiet" </dev/null 2>&1 | sed -u 's/\r//g' >"$LOG"
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
echo "L1: $(grep -m1 '^CHINT L1 up' "$LOG" | sed 's/^CHINT //')"
echo "times: build+image $((t1 - t_start)) s, L1 run $l1_s s (qemu status $qrc; 124 = timeout)"
if ! grep -q '^CHINT NEXTEST-EXIT' "$LOG"; then
    echo "no end of run from L1 (see $LOG)"
    failed=$((failed + 1))
fi
[ $((passed + failed)) -gt 0 ] || { echo "no test ran (see $LOG)"; failed=1; }
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
