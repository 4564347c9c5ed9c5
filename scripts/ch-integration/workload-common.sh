# SPDX-License-Identifier: Apache-2.0
#
# Sourced by build-workload.sh and build-kernel.sh: the Debian helpers, the
# work directory (WL_DIR, default .lab/workload), the private APT
# configuration (scripts/lib/debian-archive.sh) with every suite the
# workload takes packages from, and a .deb download for the caller's ARCH
# (arm64 or amd64). Sets HERE (scripts/ch-integration) and ROOT.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/scripts/lib/debian-archive.sh"
. "$ROOT/scripts/lib/debian-rootfs.sh"

WL_DIR=${WL_DIR:-$ROOT/.lab/workload}
APT_DIR=$WL_DIR/apt

# first PATH...: the first PATH that exists.
first() { local f; for f in "$@"; do [ -e "$f" ] && { echo "$f"; return 0; }; done; return 1; }

# aptc CMD...: an apt command on the private configuration for $ARCH.
aptc() { rootfs_apt "$APT_DIR" "$ARCH" "$@"; }

# download PKG [SUITE]: the path of PKG's .deb for $ARCH (or _all) at the
# candidate version of SUITE (default $SUITE) in $APT_DIR/archives,
# downloaded when it is not there yet; fails when SUITE has no PKG.
download() {
    local pkg=$1 suite=${2:-$SUITE} ver f
    ver=$(aptc apt-cache policy -t "$suite" "$pkg" | awk '/Candidate:/ { print $2 }')
    [ -n "$ver" ] && [ "$ver" != "(none)" ] || return 1
    local base=$APT_DIR/archives/${pkg}_${ver//:/%3a}
    f=$(first "${base}_$ARCH.deb" "${base}_all.deb") || {
        (cd "$APT_DIR/archives" && aptc apt-get -q download -t "$suite" "$pkg=$ver" >&2)
        f=$(first "${base}_$ARCH.deb" "${base}_all.deb")
    }
    echo "$f"
}

# wl_apt [REFRESH]: the private APT configuration, its lists fetched once
# (again when REFRESH is 1). Fails without an archive URI on the machine.
wl_apt() {
    private_apt "$APT_DIR" "bookworm bookworm-backports trixie trixie-backports" || return 1
    if [ ! -e "$APT_DIR/.updated" ] || [ "${1:-0}" = 1 ]; then
        echo "workload: apt-get update (private lists in $APT_DIR)" >&2
        APT_CONFIG="$APT_DIR/apt.conf" apt-get -q update >/dev/null
        touch "$APT_DIR/.updated"
    fi
}
