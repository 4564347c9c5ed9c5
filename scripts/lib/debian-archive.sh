# SPDX-License-Identifier: Apache-2.0
#
# The Debian archive, as this machine knows it: the URI and keyring are
# read at run time from its /etc/apt/sources.list.d/debian.sources (no host
# name is written into any file of this repository), and a private APT
# configuration adds suites and the arm64 architecture without touching
# the system's. Sourced by scripts/lab/fetch.sh, scripts/oracle.sh and
# scripts/fullstack/common.sh (bash).

DEBIAN_SOURCES=${LAB_SYS_SOURCES:-/etc/apt/sources.list.d/debian.sources}

# The first URI of the stanza serving the main archive (its Suites line
# names a release, not only <release>-security).
archive_uri() {
    awk '
        /^[[:space:]]*$/ { if (uri != "" && main) { print uri; exit } uri=""; main=0; next }
        /^URIs:/ { uri=$2 }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i !~ /-security$/) main=1 }
        END { if (uri != "" && main) print uri }
    ' "$DEBIAN_SOURCES" | head -n1
}

# The keyring of the first stanza.
archive_keyring() { awk '/^Signed-By:/ { print $2; exit }' "$DEBIAN_SOURCES"; }

# archive_stanza TYPE "SUITES": one deb822 stanza on the machine's archive.
archive_stanza() {
    local uri
    uri=$(archive_uri)
    [ -n "$uri" ] || { echo "no archive URI in $DEBIAN_SOURCES" >&2; return 1; }
    printf 'Types: %s\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' \
        "$1" "$uri" "$2" "$(archive_keyring)"
}

# private_apt DIR "DEB_SUITES" ["DEB_SRC_SUITES"]: writes DIR/private.sources
# and DIR/apt.conf (amd64 + arm64, lists and archives under DIR, default
# release bookworm). Use with APT_CONFIG=DIR/apt.conf.
private_apt() {
    local dir=$1
    mkdir -p "$dir"/{lists/partial,archives/partial,none.d}
    {
        archive_stanza deb "$2" || return 1
        if [ -n "${3:-}" ]; then
            echo
            archive_stanza deb-src "$3" || return 1
        fi
    } >"$dir/private.sources"
    cat >"$dir/apt.conf" <<CONF
APT::Architectures { "amd64"; "arm64"; };
APT::Architecture "amd64";
Dir::Etc::SourceList "$dir/private.sources";
Dir::Etc::SourceParts "$dir/none.d";
Dir::State::Lists "$dir/lists";
Dir::Cache::Archives "$dir/archives";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT::Default-Release "bookworm";
APT::Sandbox::User "root";
CONF
}

# host_backports_apt DIR: an APT configuration in DIR for installing host
# tools: the machine's own sources plus bookworm-backports (QEMU 10 there;
# bookworm's 7.2 conflicts with the backported qemu-utils some images
# carry), lists under DIR. Prints the path to use as APT_CONFIG; status 1
# when the machine's sources name no archive.
host_backports_apt() {
    local dir=$1
    mkdir -p "$dir/sources.d" "$dir/lists/partial"
    [ -r "$DEBIAN_SOURCES" ] || return 1
    cp "$DEBIAN_SOURCES" "$dir/sources.d/system.sources"
    archive_stanza deb bookworm-backports >"$dir/sources.d/backports.sources" || return 1
    cat >"$dir/apt.conf" <<CONF
Dir::Etc::SourceParts "$dir/sources.d";
Dir::State::Lists "$dir/lists";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
    echo "$dir/apt.conf"
}

# install_from_backports CONF PKG...: apt-get update, then install PKG
# (bookworm-backports preferred) with APT_CONFIG=CONF, three tries: another
# dpkg run on the machine may hold its lock for a while. Status 2 when the
# archive cannot be reached, 1 when the install failed.
install_from_backports() {
    local conf=$1 try
    shift
    APT_CONFIG=$conf apt-get -q update >/dev/null || return 2
    for try in 1 2 3; do
        if DEBIAN_FRONTEND=noninteractive APT_CONFIG=$conf apt-get -q -y \
            -o DPkg::Lock::Timeout=120 install --no-install-recommends \
            -t bookworm-backports "$@" >/dev/null; then
            return 0
        fi
        echo "apt-get install failed (attempt $try), retrying" >&2
        sleep 5
    done
    return 1
}
