# SPDX-License-Identifier: Apache-2.0
#
# Sourced by build-workload.sh and build-kernel.sh: the Debian helpers, the
# work directory (WL_DIR, default .lab/workload) and the private APT
# configuration (scripts/lib/debian-archive.sh) with every suite the
# workload takes packages from. Sets HERE (scripts/ch-integration) and ROOT.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/scripts/lib/debian-archive.sh"
. "$ROOT/scripts/lib/debian-rootfs.sh"

WL_DIR=${WL_DIR:-$ROOT/.lab/workload}
APT_DIR=$WL_DIR/apt

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
