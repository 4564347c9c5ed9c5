#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Build the disk image that Cloud Hypervisor's integration tests boot
# through the UEFI firmware (aarch64: `--kernel CLOUDHV_EFI.fd`, x86_64:
# `--kernel CLOUDHV.fd`, as test_jammy_ovmf; `--disk path=<image> --disk
# path=<cloud-init seed>`), only from Debian packages of that architecture
# fetched through a private APT configuration that reuses the machine's
# own archive URI (scripts/lib/debian-archive.sh). Nothing is downloaded
# from anywhere else and no image or binary is committed.
#
#   scripts/ch-integration/build-workload.sh [--arch arm64|amd64]
#                                            [--no-install] [--firmware]
#                                            [--workloads DIR] [--refresh]
#
# Result (--arch arm64, the default): .lab/workload/ch-workload-arm64.raw,
# copied (sparse) to $WORKLOADS/<name the aarch64 tests use> (default
# $HOME/workloads/jammy-server-cloudimg-arm64-custom-20220329-0.raw); with
# --firmware also CLOUDHV_EFI.fd (scripts/fullstack/build-firmware.sh,
# cached) next to it.
# --arch amd64 (or x86_64): .lab/workload/ch-workload-amd64.raw, installed
# as $WORKLOADS/jammy-server-cloudimg-amd64-custom-20241017-0.raw (the
# name of CH's x86_64 tests); with --firmware also CLOUDHV.fd
# (build-firmware.sh --arch x86_64: OvmfPkg/CloudHv/CloudHvX64.dsc). Its
# intermediate files live in .lab/workload/amd64/ and its kernel in
# .lab/workload/kernel-<version>-amd64 (version in kernel-amd64.version);
# the arm64 ones (.lab/workload/{root,initrd.img,kernel.version,...}) are
# left alone.
#
# The image (GPT, laid out like an Ubuntu cloud image):
#   partition 15  ESP (FAT32, label UEFI): \EFI\BOOT\BOOTAA64.EFI (arm64)
#                 or \EFI\BOOT\BOOTX64.EFI (amd64) = systemd-boot
#                 (systemd-boot-efi), loader entry -> \vmlinuz (Debian's
#                 kernel, an EFI stub: arm64 Image, amd64 bzImage) +
#                 \initrd.img (busybox, virtio_blk + ext4 modules)
#   partition 1   root (ext4, label cloudimg-rootfs): Debian userland
#                 (busybox-static, bash, openssh-server, sudo, util-linux and
#                 their libraries), busybox init, a NoCloud seed reader that
#                 applies Cloud Hypervisor's user-data and network-config
#                 (scripts/ch-integration/guest/), ssh host keys
# See docs/ch-integration.md for the contract it implements and what it
# does not provide.
#
# Environment: WL_DIR (work and cache directory, default .lab/workload),
# WORKLOAD_ARCH (as --arch), WORKLOADS, WORKLOAD_IMAGE_NAME, WORKLOAD_SUITE
# (userland, default bookworm), WORKLOAD_KERNEL_SUITE (default
# trixie-backports: Linux 7.x; bookworm gives 6.1), WORKLOAD_CMDLINE
# (default root=LABEL=cloudimg-rootfs rw console=hvc0 console=<serial>
# quiet, <serial> ttyAMA0 on arm64, ttyS0 on amd64), WORKLOAD_ROOT_FREE_MB
# (free space in the root file system, default 128),
# WORKLOAD_EXTRA_PACKAGES.
set -euo pipefail

. "$(dirname "$0")/workload-common.sh"
SUITE=${WORKLOAD_SUITE:-bookworm}
KSUITE=${WORKLOAD_KERNEL_SUITE:-trixie-backports}
WORKLOADS=${WORKLOADS:-$HOME/workloads}
ROOT_FREE_MB=${WORKLOAD_ROOT_FREE_MB:-128}
ARCH=${WORKLOAD_ARCH:-arm64}
# The userland: what the tests call over ssh (sudo, dmesg, lscpu, ...), an
# ssh server and client (scp), bash (user-data's notify script writes to
# /dev/tcp).
PACKAGES="busybox-static bash openssh-server openssh-client sudo util-linux procps ${WORKLOAD_EXTRA_PACKAGES:-}"
# Packages of the closure that only serve dpkg/debconf maintainer scripts,
# which never run here (the image is assembled, not installed).
DROP_RE='^(adduser|debconf|dpkg|perl|perl-base|perl-modules-.*|libperl.*|lib.*-perl|usrmerge|ucf|init-system-helpers|runit-helper|lsb-base|sensible-utils|passwd|libsemanage.*|libsepol2|mawk|tar|sysvinit-utils|debianutils|libpam-runtime)$'
# Modules: in the initramfs (to reach the root file system), loaded by the
# root file system's init before `booted` (network, seed) and after it
# (rng, power button, vsock, balloon, virtio-mem, pmem).
MODULES_INITRD="virtio_pci virtio_blk ext4"   # virtio_pci: built in since 6.x, a module in 6.1
MODULES_EARLY="virtio_net vfat nls_cp437 nls_ascii"
MODULES_LATE="nls_iso8859-1 nls_utf8 virtio_rng evdev vmw_vsock_virtio_transport virtio_balloon virtio_mem virtio_pmem nd_pmem"

INSTALL=1 FIRMWARE=0 REFRESH=0
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) ARCH=$2; shift ;;
        --arch=*) ARCH=${1#--arch=} ;;
        --no-install) INSTALL=0 ;;
        --firmware) FIRMWARE=1 ;;
        --workloads) WORKLOADS=$2; shift ;;
        --refresh) REFRESH=1 ;;
        -h|--help) sed -n '3,51p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
# Per architecture: the Debian kernel meta-package, systemd-boot's file and
# its removable-media name, the serial console of CH's VMs (PL011 on
# arm64, 8250 ttyS0 on x86), the file name the tests expect, the firmware.
# B holds the intermediate files: the arm64 ones stay where they always
# were (scripts/ch-integration.sh and boot-workload.sh read
# $WL_DIR/kernel.version and $WL_DIR/root), the amd64 ones in $WL_DIR/amd64.
case "$ARCH" in
    arm64|aarch64)
        ARCH=arm64 KPKG=linux-image-arm64 SDBOOT=systemd-bootaa64.efi BOOTEFI=BOOTAA64.EFI SERIAL=ttyAMA0
        DEF_IMAGE_NAME=jammy-server-cloudimg-arm64-custom-20220329-0.raw FW_NAME=CLOUDHV_EFI.fd FW_ARCH=aarch64
        B=$WL_DIR KVER_FILE=$WL_DIR/kernel.version ;;
    amd64|x86_64)
        ARCH=amd64 KPKG=linux-image-amd64 SDBOOT=systemd-bootx64.efi BOOTEFI=BOOTX64.EFI SERIAL=ttyS0
        DEF_IMAGE_NAME=jammy-server-cloudimg-amd64-custom-20241017-0.raw FW_NAME=CLOUDHV.fd FW_ARCH=x86_64
        B=$WL_DIR/amd64 KVER_FILE=$WL_DIR/kernel-amd64.version
        # the ACPI power button (PNP0C0C, CH's GED and QEMU's fixed
        # button) is a module in Debian's amd64 kernel, built in on arm64
        MODULES_LATE="$MODULES_LATE button" ;;
    *) echo "--arch: arm64 or amd64, not $ARCH" >&2; exit 2 ;;
esac
IMAGE_NAME=${WORKLOAD_IMAGE_NAME:-$DEF_IMAGE_NAME}
CMDLINE=${WORKLOAD_CMDLINE:-root=LABEL=cloudimg-rootfs rw console=hvc0 console=$SERIAL quiet}

log() { echo "build-workload: $*" >&2; }
die() { echo "build-workload: ERROR: $*" >&2; exit 1; }
t0=$(date +%s)

need_host_packages dosfstools mtools kmod e2fsprogs cpio gzip xz-utils openssl openssh-client python3 binutils
mkdir -p "$WL_DIR" "$B"
exec 9>"$WL_DIR/.lock"
flock 9

# ---- 1. APT ------------------------------------------------------------------
wl_apt "$REFRESH" || die "no archive URI in $DEBIAN_SOURCES"

# ---- 2. Kernel -------------------------------------------------------------
kimg=$(aptc apt-cache depends -t "$KSUITE" "$KPKG" 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kimg" ] || die "cannot resolve $KPKG in $KSUITE"
KVER=${kimg#linux-image-}
KVER=${KVER%-unsigned}
KDIR=$WL_DIR/kernel-$KVER
if [ ! -e "$KDIR/.done" ]; then
    log "kernel $KVER from $KSUITE"
    rm -rf "$KDIR" && mkdir -p "$KDIR/x"
    dpkg-deb -x "$(download "$kimg" "$KSUITE")" "$KDIR/x"
    # Linux 7.x splits the image: vmlinuz in linux-binary-*, modules in
    # linux-modules-*; 6.1 has both in the image package.
    if ! first "$KDIR"/x/boot/vmlinuz-* "$KDIR"/x/usr/lib/modules/*/vmlinuz >/dev/null; then
        dpkg-deb -x "$(download "linux-binary-$KVER" "$KSUITE")" "$KDIR/x"
    fi
    mdir=$(first "$KDIR/x/lib/modules/$KVER" "$KDIR/x/usr/lib/modules/$KVER" || true)
    if [ -z "$mdir" ] || [ ! -d "$mdir/kernel" ]; then
        dpkg-deb -x "$(download "linux-modules-$KVER" "$KSUITE")" "$KDIR/x"
    fi
    # modules.builtin, modules.order (depmod) and config: in the image
    # package (6.1) or in linux-base-<ver> (7.x, which also has all dtbs).
    if ! first "$KDIR/x/lib/modules/$KVER/modules.builtin" "$KDIR/x/usr/lib/modules/$KVER/modules.builtin" >/dev/null; then
        dpkg-deb --fsys-tarfile "$(download "linux-base-$KVER" "$KSUITE")" |
            tar -x -C "$KDIR/x" --wildcards '*/modules.builtin*' '*/modules.order' '*/config'
    fi
    vmlinuz=$(first "$KDIR"/x/boot/vmlinuz-* "$KDIR"/x/usr/lib/modules/*/vmlinuz) || die "no vmlinuz in the kernel packages"
    # The ESP gets the EFI stub itself (a gzip'ed Image is unpacked).
    if [ "$(head -c2 "$vmlinuz" | od -An -tx1 | tr -d ' ')" = 1f8b ]; then
        gzip -dc "$vmlinuz" >"$KDIR/vmlinuz"
    else
        cp "$vmlinuz" "$KDIR/vmlinuz"
    fi
    [ "$(head -c2 "$KDIR/vmlinuz")" = MZ ] || die "$vmlinuz is not an EFI stub (no MZ header)"
    # One module tree, /lib/modules/<ver>, for depmod and modprobe.
    mkdir -p "$KDIR/m/lib/modules"
    mv "$(first "$KDIR/x/usr/lib/modules/$KVER" "$KDIR/x/lib/modules/$KVER")" "$KDIR/m/lib/modules/"
    depmod -b "$KDIR/m" "$KVER"
    rm -rf "$KDIR/x"
    touch "$KDIR/.done"
fi
echo "$KVER" >"$KVER_FILE"
# modfiles MOD...: the module files (relative to lib/modules/<ver>) of MOD
# and their dependencies, dependencies first, builtins left out.
modfiles() {
    local m
    for m in "$@"; do
        modprobe -d "$KDIR/m" -S "$KVER" --show-depends "$m" ||
            die "module $m not in kernel $KVER"
    done | awk '$1 == "insmod" { print $2 }' | sed "s|^$KDIR/m/lib/modules/$KVER/||" | awk '!seen[$0]++'
}
# copy_modules DEST_MODDIR FILE...: decompressed copies (.ko)
copy_modules() {
    local dest=$1 f out
    shift
    for f in "$@"; do
        out=$dest/${f%.xz}
        out=${out%.zst}
        mkdir -p "$(dirname "$out")"
        case "$f" in
            *.xz) xz -dc "$KDIR/m/lib/modules/$KVER/$f" >"$out" ;;
            *.zst) zstd -qdc "$KDIR/m/lib/modules/$KVER/$f" >"$out" ;;
            *) cp "$KDIR/m/lib/modules/$KVER/$f" "$out" ;;
        esac
    done
}
ko_name() { local f=${1%.xz}; f=${f%.zst}; echo "$f"; }

# ---- 3. Userland -------------------------------------------------------------
log "userland: $PACKAGES ($SUITE, $ARCH)"
mapfile -t debs < <(rootfs_download "$APT_DIR" "$ARCH" "$SUITE" $PACKAGES)
keep=() dropped=()
for d in "${debs[@]}"; do
    n=$(basename "$d"); n=${n%%_*}
    if [[ $n =~ $DROP_RE ]]; then dropped+=("$n"); else keep+=("$d"); fi
done
R=$B/root
rm -rf "$R"
rootfs_unpack "$R" "${keep[@]}"
rootfs_merge_usr "$R"
mkdir -p "$R"/{proc,sys,dev,run,tmp,root,home,mnt,var/log,var/tmp,etc/sudoers.d,etc/ssh/sshd_config.d,etc/ch-workload}
chmod 1777 "$R/tmp" "$R/var/tmp"
chmod 700 "$R/root"
ln -sfn /run "$R/var/run"
ln -sfn /run/lock "$R/var/lock"
ln -sfn /proc/self/mounts "$R/etc/mtab"
{
    echo "# Debian $ARCH packages in the image (suite $SUITE; kernel $KVER from $KSUITE)"
    for d in "${keep[@]}"; do basename "$d" .deb; done
    echo "# in the closure, not unpacked (maintainer-script tooling): ${dropped[*]}"
} >"$B/packages.txt"

# busybox: one link per applet, where Debian has no real program of that
# name; the names come from the binary's applet table (it cannot run here).
bb=$R/usr/bin/busybox
[ -x "$bb" ] || die "no busybox in the root file system"
python3 - "$bb" >"$B/busybox-applets" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
i = data.find(b"\0[\0[[\0")
if i < 0:
    sys.exit("busybox: applet table not found")
for n in data[i + 1:].split(b"\0"):
    if not n or not all(32 < c < 127 for c in n):
        break
    print(n.decode())
PY
sbin_applets=" init getty modprobe insmod rmmod lsmod depmod poweroff reboot halt switch_root acpid udhcpc ip ifconfig route mdev "
while read -r a; do
    [ "$a" = busybox ] && continue
    case "$sbin_applets" in *" $a "*) d=usr/sbin ;; *) d=usr/bin ;; esac
    have() { [ -e "$1" ] || [ -L "$1" ]; }
    have "$R/usr/bin/$a" || have "$R/usr/sbin/$a" || ln -s /usr/bin/busybox "$R/$d/$a"
done <"$B/busybox-applets"

# ---- 4. Configuration ------------------------------------------------------
G=$HERE/guest
install -m 755 "$G/rc" "$G/shutdown" "$G/console-getty" "$G/udhcpc.script" "$R/etc/ch-workload/"
install -m 644 "$G/user-data.awk" "$G/network-config.awk" "$R/etc/ch-workload/"
install -m 755 "$G/systemctl" "$R/usr/bin/systemctl"
cat >"$R/etc/inittab" <<'EOF'
# busybox init (ch-workload)
::sysinit:/etc/ch-workload/rc
::respawn:/etc/ch-workload/console-getty
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/ch-workload/shutdown
EOF
nologin=/usr/sbin/nologin
[ -e "$R$nologin" ] || nologin=/bin/false
cat >"$R/etc/passwd" <<EOF
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:$nologin
sshd:x:100:65534::/run/sshd:$nologin
nobody:x:65534:65534:nobody:/nonexistent:$nologin
EOF
cat >"$R/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
adm:x:4:
tty:x:5:
disk:x:6:
sudo:x:27:
shadow:x:42:
users:x:100:
nogroup:x:65534:
EOF
cat >"$R/etc/shadow" <<'EOF'
root:*:19000:0:99999:7:::
daemon:*:19000:0:99999:7:::
sshd:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
EOF
chown 0:42 "$R/etc/shadow"
chmod 640 "$R/etc/shadow"
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' >"$R/etc/nsswitch.conf"
echo cloud >"$R/etc/hostname"
: >"$R/etc/resolv.conf"
printf 'LABEL=cloudimg-rootfs\t/\text4\tdefaults\t0 1\n' >"$R/etc/fstab"
: >"$R/etc/motd"
# Password of the fallback user (only when the VM has no seed): cloud123.
openssl passwd -6 cloud123 >"$R/etc/ch-workload/fallback-passwd-hash"
chmod 600 "$R/etc/ch-workload/fallback-passwd-hash"

# What Debian's maintainer scripts would have put in /etc.
cp "$R/usr/share/openssh/sshd_config" "$R/etc/ssh/sshd_config"
[ -e "$R/usr/share/base-files/profile" ] && cp "$R/usr/share/base-files/profile" "$R/etc/profile"
[ -e "$R/usr/share/base-files/dot.bashrc" ] && cp "$R/usr/share/base-files/dot.bashrc" "$R/root/.bashrc"

# sshd: no PAM (the password is checked against /etc/shadow), host keys
# made once per build directory (kept across rebuilds), cloud-init's
# 50-cloud-init.conf decides PasswordAuthentication (ssh_pwauth), as on an
# Ubuntu cloud image whose own default is "no".
KEYS=$WL_DIR/ssh-host-keys
mkdir -p "$KEYS"
for t in ed25519 ecdsa rsa; do
    [ -s "$KEYS/ssh_host_${t}_key" ] || ssh-keygen -q -t "$t" -N '' -C "root@ch-workload" -f "$KEYS/ssh_host_${t}_key"
    install -m 600 "$KEYS/ssh_host_${t}_key" "$R/etc/ssh/"
    install -m 644 "$KEYS/ssh_host_${t}_key.pub" "$R/etc/ssh/"
done
cat >"$R/etc/ssh/sshd_config.d/10-ch-workload.conf" <<'EOF'
# ch-workload: no PAM stack in the image; passwords are checked in /etc/shadow.
UsePAM no
KbdInteractiveAuthentication no
PrintMotd no
UseDNS no
# The PATH an Ubuntu guest gives ssh sessions (through /etc/environment).
SetEnv PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EOF
echo "PasswordAuthentication no" >"$R/etc/ssh/sshd_config.d/60-cloudimg-settings.conf"

# sudo: its PAM service without Debian's pam-auth-update files.
mkdir -p "$R/etc/pam.d"
for s in sudo sudo-i other; do
    printf 'auth\trequired\tpam_unix.so\naccount\trequired\tpam_unix.so\nsession\trequired\tpam_permit.so\n' >"$R/etc/pam.d/$s"
done
grep -q '^@includedir /etc/sudoers.d' "$R/etc/sudoers" || die "/etc/sudoers does not include /etc/sudoers.d"

# Power button: busybox acpid runs /etc/acpi/PWRF/00000080.
mkdir -p "$R/etc/acpi/PWRF"
printf '#!/bin/sh\nexec /sbin/poweroff\n' >"$R/etc/acpi/PWRF/00000080"
chmod 755 "$R/etc/acpi/PWRF/00000080"

# Kernel modules of the root file system (a modules.dep for modprobe; the
# boot loads the list in dependency order).
mapfile -t initrd_mods < <(modfiles $MODULES_INITRD)
mapfile -t early_mods < <(modfiles $MODULES_EARLY)
mapfile -t late_mods < <(modfiles $MODULES_LATE)
root_mods=("${early_mods[@]}" "${late_mods[@]}")
MD=$R/usr/lib/modules/$KVER
mkdir -p "$MD"
copy_modules "$MD" "${initrd_mods[@]}" "${root_mods[@]}"
for f in modules.builtin modules.builtin.modinfo modules.order; do
    [ -e "$KDIR/m/lib/modules/$KVER/$f" ] && cp "$KDIR/m/lib/modules/$KVER/$f" "$MD/"
done
depmod -b "$R" "$KVER"
modnames() { # the names of module files not in the initramfs
    local f m
    for f in "$@"; do
        m=$(basename "$(ko_name "$f")" .ko)
        printf '%s\n' "${initrd_mods[@]}" | grep -q "/$m.ko" || echo "$m"
    done
}
modnames "${early_mods[@]}" >"$R/etc/ch-workload/modules"
modnames "${late_mods[@]}" | grep -vxF -f "$R/etc/ch-workload/modules" >"$R/etc/ch-workload/modules.late" || true

# Every program finds its libraries.
rootfs_check_libs "$R"

# ---- 5. initramfs ----------------------------------------------------------
I=$B/initramfs
rm -rf "$I" && mkdir -p "$I"/{bin,proc,sys,dev,etc,newroot,lib/modules}
cp "$bb" "$I/bin/busybox"
ln -s busybox "$I/bin/sh"
install -m 755 "$G/initramfs-init" "$I/init"
copy_modules "$I/lib/modules" "${initrd_mods[@]}"
for f in "${initrd_mods[@]}"; do ko_name "$f"; done >"$I/etc/modules.load"
(cd "$I" && find . | LC_ALL=C sort | cpio -o -H newc --quiet --owner 0:0) | gzip -9n >"$B/initrd.img"

# ---- 6. ESP ------------------------------------------------------------------
sdboot_deb=$(download systemd-boot-efi "$SUITE") || die "systemd-boot-efi not found in $SUITE"
E=$B/esp
rm -rf "$E" && mkdir -p "$E/x" "$E/EFI/BOOT" "$E/loader/entries"
dpkg-deb -x "$sdboot_deb" "$E/x"
cp "$E/x/usr/lib/systemd/boot/efi/$SDBOOT" "$E/EFI/BOOT/$BOOTEFI"
rm -rf "$E/x"
printf 'default ch-workload.conf\ntimeout 0\neditor no\nauto-entries no\nauto-firmware no\n' >"$E/loader/loader.conf"
printf 'title Debian %s (ch-workload, Linux %s)\nlinux /vmlinuz\ninitrd /initrd.img\noptions %s\n' \
    "$ARCH" "$KVER" "$CMDLINE" >"$E/loader/entries/ch-workload.conf"
cp "$KDIR/vmlinuz" "$E/vmlinuz"
cp "$B/initrd.img" "$E/initrd.img"

# ---- 7. Disk image -----------------------------------------------------------
esp_mb=$(( $(du -sm "$E" | cut -f1) + 8 ))
[ "$esp_mb" -ge 64 ] || esp_mb=64      # FAT32 needs >= 65525 clusters
root_mb=$(( $(du -sm --apparent-size "$R" | cut -f1) * 12 / 10 + ROOT_FREE_MB ))
rm -f "$B/esp.vfat" "$B/root.ext4"
mkfs.vfat -F 32 -n UEFI -i 0c4e5350 -C "$B/esp.vfat" $((esp_mb * 1024)) >/dev/null
mmd -i "$B/esp.vfat" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
mcopy -i "$B/esp.vfat" "$E/EFI/BOOT/$BOOTEFI" ::/EFI/BOOT/
mcopy -i "$B/esp.vfat" "$E/loader/loader.conf" ::/loader/
mcopy -i "$B/esp.vfat" "$E/loader/entries/ch-workload.conf" ::/loader/entries/
mcopy -i "$B/esp.vfat" "$E/vmlinuz" "$E/initrd.img" ::/
mke2fs -q -t ext4 -L cloudimg-rootfs -m 0 -E root_owner=0:0 -d "$R" "$B/root.ext4" "${root_mb}M" >/dev/null
IMG=$WL_DIR/ch-workload-$ARCH.raw
python3 - "$IMG.tmp" "$B/esp.vfat" "$B/root.ext4" <<'PY'
# GPT: partition 15 = ESP at 1 MiB, partition 1 = root after it (the
# numbering of Ubuntu's cloud images), protective MBR, backup GPT. Holes
# stay holes.
import os, struct, sys, uuid, zlib
out, esp, root = sys.argv[1:4]
S = 512
MiB = 1 << 20
esp_sz, root_sz = os.path.getsize(esp), os.path.getsize(root)
esp_start = MiB
root_start = esp_start + (esp_sz + MiB - 1) // MiB * MiB
end = root_start + (root_sz + MiB - 1) // MiB * MiB + MiB
total = end // S
ns = uuid.UUID("6f0e3c9a-2a57-4c55-9a4a-63682d776c64")
def guid(name): return uuid.uuid5(ns, name).bytes_le
ESP_T = uuid.UUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B").bytes_le
LINUX_T = uuid.UUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4").bytes_le
entries = bytearray(128 * 128)
def entry(idx, tguid, pguid, first, last, name):
    e = struct.pack("<16s16sQQQ72s", tguid, pguid, first, last, 0, name.encode("utf-16-le"))
    entries[(idx - 1) * 128:idx * 128] = e
entry(15, ESP_T, guid("esp"), esp_start // S, esp_start // S + esp_sz // S - 1, "UEFI")
entry(1, LINUX_T, guid("root"), root_start // S, root_start // S + root_sz // S - 1, "cloudimg-rootfs")
ecrc = zlib.crc32(entries)
def header(current, backup, entries_lba):
    h = struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x10000, 92, 0, 0, current, backup,
                    34, total - 34, guid("disk"), entries_lba, 128, 128, ecrc)
    h = h[:16] + struct.pack("<I", zlib.crc32(h)) + h[20:]
    return h + bytes(S - len(h))
mbr = bytearray(S)
mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1, min(total - 1, 0xFFFFFFFF))
mbr[510:512] = b"\x55\xaa"
with open(out, "wb") as f:
    f.truncate(end)
    f.write(mbr)
    f.write(header(1, total - 1, 2))
    f.write(entries)
    f.seek((total - 33) * S); f.write(entries)
    f.seek((total - 1) * S); f.write(header(total - 1, 1, total - 33))
    for src, off in ((esp, esp_start), (root, root_start)):
        with open(src, "rb") as g:
            pos = 0
            while True:
                b = g.read(MiB)
                if not b:
                    break
                if b.count(0) != len(b):
                    f.seek(off + pos); f.write(b)
                pos += len(b)
PY
mv "$IMG.tmp" "$IMG"
rm -f "$B/esp.vfat" "$B/root.ext4"
{
    echo "image: $IMG"
    echo "kernel: $KVER ($KSUITE), cmdline: $CMDLINE"
    echo "userland: $SUITE, $(grep -vc '^#' "$B/packages.txt") packages"
    echo "esp: ${esp_mb} MiB, root: ${root_mb} MiB ($(du -sm --apparent-size "$R" | cut -f1) MiB used)"
    echo "initrd: $(stat -c %s "$B/initrd.img") bytes, modules: $MODULES_INITRD (+ deps)"
    echo "root modules: $(tr '\n' ' ' <"$R/etc/ch-workload/modules")+ later: $(tr '\n' ' ' <"$R/etc/ch-workload/modules.late")"
    echo "image: $(stat -c %s "$IMG") bytes apparent, $(du -k "$IMG" | cut -f1) KiB allocated"
} >"$B/manifest.txt"
cat "$B/manifest.txt" >&2

# ---- 8. Install under $WORKLOADS -----------------------------------------------
if [ "$INSTALL" = 1 ]; then
    mkdir -p "$WORKLOADS"
    cp --sparse=always "$IMG" "$WORKLOADS/$IMAGE_NAME.tmp"
    mv "$WORKLOADS/$IMAGE_NAME.tmp" "$WORKLOADS/$IMAGE_NAME"
    log "installed $WORKLOADS/$IMAGE_NAME"
    if [ "$FIRMWARE" = 1 ]; then
        fw=$(FW_ARCH=$FW_ARCH "$ROOT/scripts/fullstack/build-firmware.sh" | tail -n1)
        cp "$fw" "$WORKLOADS/$FW_NAME"
        log "installed $WORKLOADS/$FW_NAME (from $fw)"
    fi
fi
log "done in $(( $(date +%s) - t0 )) s"
echo "$IMG"
