# SPDX-License-Identifier: Apache-2.0
#
# Shared helpers of the full-stack lab (sourced, not run). Everything comes
# from the Debian archive: the archive URI is read at run time from the
# machine's /etc/apt/sources.list.d/debian.sources (no host name is written
# into any file of this repository); extra suites go into a private APT
# configuration under $FS_DIR/apt.

FS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# scripts/lab.sh exports LAB_DIR=.lab/lab: the full-stack cache stays in
# .lab/fullstack whoever calls.
FS_DIR=${FS_DIR:-$FS_ROOT/.lab/fullstack}
FS_APT=$FS_DIR/apt

LAB_LOG_PREFIX=fullstack
fs_log() { echo "fullstack: $*" >&2; }
fs_die() { echo "fullstack: ERROR: $*" >&2; exit 1; }

. "$FS_ROOT/scripts/lib/lab-common.sh"
. "$FS_ROOT/scripts/lib/debian-rootfs.sh"

# Private APT config: deb for bookworm/bookworm-backports/trixie/
# trixie-backports (arm64 downloads) and deb-src for trixie (edk2 source).
fs_apt_config() {
    private_apt "$FS_APT" "bookworm bookworm-backports trixie trixie-backports" trixie ||
        fs_die "no archive URI in $DEBIAN_SOURCES"
}
fs_apt() { APT_CONFIG="$FS_APT/apt.conf" "$@"; }
fs_apt_update() {
    lab_apt_update "$FS_APT/apt.conf" || fs_die "cannot reach the Debian archive (apt-get update failed)"
}

# Host tools (installed with the system's own apt sources).
fs_need_host() { need_host_packages "$@" || fs_die "cannot install $*"; }
