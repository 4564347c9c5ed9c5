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

fs_log() { echo "fullstack: $*" >&2; }
fs_die() { echo "fullstack: ERROR: $*" >&2; exit 1; }

. "$FS_ROOT/scripts/lib/debian-archive.sh"

# Private APT config: deb for bookworm/bookworm-backports/trixie/
# trixie-backports (arm64 downloads) and deb-src for trixie (edk2 source).
fs_apt_config() {
    private_apt "$FS_APT" "bookworm bookworm-backports trixie trixie-backports" trixie ||
        fs_die "no archive URI in $DEBIAN_SOURCES"
}
fs_apt() { APT_CONFIG="$FS_APT/apt.conf" "$@"; }
fs_apt_update() {
    if [ ! -e "$FS_APT/.updated" ]; then
        fs_log "apt-get update (private lists in $FS_APT)"
        fs_apt apt-get -q update >/dev/null
        touch "$FS_APT/.updated"
    fi
}

# Host tools (installed with the system's own apt sources).
fs_need_host() {
    local need=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
    done
    [ ${#need[@]} -eq 0 ] && return 0
    fs_log "installing host packages: ${need[*]}"
    [ "$(id -u)" -eq 0 ] || fs_die "need root to install ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
        apt-get -q update >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends "${need[@]}" >/dev/null
    }
}

# fs_download_arm64 <pkg> [suite] -> path of the .deb (cached)
fs_download_arm64() {
    local pkg=$1 suite=${2:-} d
    mkdir -p "$FS_DIR/debs"
    d=$(ls "$FS_DIR/debs/${pkg}_"*_arm64.deb 2>/dev/null | head -n1 || true)
    if [ -z "$d" ]; then
        fs_apt_update
        (cd "$FS_DIR/debs" && fs_apt apt-get -q download ${suite:+-t "$suite"} "$pkg:arm64" >&2)
        d=$(ls "$FS_DIR/debs/${pkg}_"*_arm64.deb | head -n1)
    fi
    echo "$d"
}
