# SPDX-License-Identifier: Apache-2.0
#
# Shared functions of the QEMU labs (bash; source it). Fetching from the
# Debian archive (through scripts/lib/debian-archive.sh: no host name is
# written anywhere), kernel and module extraction from the .debs,
# initramfs assembly, booting L1 under QEMU with a time limit, and reading
# the verdict a harness prints on the serial console.
#
# Conventions a harness follows (ras_lab, ras_lab_x86):
#   RESULT <scenario> PASS|FAIL|SKIP (...)     one per scenario
#   <N> passed, <M> failed                     the closing line
#   LAB-EXIT <status>                          printed by /init afterwards
#
# Callers may set LAB_LOG_PREFIX (default "lab") for lab_log.

LAB_COMMON_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$LAB_COMMON_DIR/debian-archive.sh"

lab_log() { echo "${LAB_LOG_PREFIX:-lab}: $*" >&2; }

# lab_die WHY: a failure that stops the caller (status 1).
lab_die() {
    echo "${LAB_LOG_PREFIX:-lab}: ERROR: $*" >&2
    exit 1
}

# lab_skip WHY: the suite cannot run here (exit status 77, as scripts/test.sh
# expects).
lab_skip() {
    echo "SKIP: $*"
    exit 77
}

# lab_fetch_failed STATUS WHY: after a fetch (lab_kernel, lab_busybox) that
# returned STATUS: 2, the archive could not be reached or did not have it,
# skips the suite (77); anything else (a module the kernel does not have,
# an extraction or a copy that failed) is an error (1).
lab_fetch_failed() {
    [ "$1" = 2 ] && lab_skip "$2"
    lab_die "$2"
}

# ---- the Debian archive -------------------------------------------------

# lab_apt_config DIR "SUITES": a private APT configuration in DIR (see
# private_apt) for the machine's archive with these suites; prints the
# path to use as APT_CONFIG. Lists are fetched by lab_apt_update.
lab_apt_config() {
    private_apt "$1" "$2" >&2 || return 1
    echo "$1/apt.conf"
}

# lab_apt_update APT_CONF [MAX_AGE_MIN]: apt-get update unless the lists
# are younger than MAX_AGE_MIN minutes (default 720) and were fetched for
# the sources the configuration names now (two callers may share a
# directory with different suites, or one adds deb-src lines: the stamp
# holds a checksum of APT_CONF and the sources beside it).
lab_apt_update() {
    local conf=$1 age=${2:-720} dir stamp sum
    dir=$(dirname "$conf")
    stamp=$dir/.updated
    sum=$(cat "$conf" "$dir"/*.sources "$dir"/sources.d/* 2>/dev/null | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ] && [ -n "$(find "$stamp" -mmin "-$age" 2>/dev/null)" ]; then
        return 0
    fi
    lab_log "updating private package lists ($dir)"
    APT_CONFIG=$conf apt-get -q update >/dev/null || return 1
    echo "$sum" >"$stamp"
}

# lab_install_missing APT_DIR PKG...: installs the host packages a suite
# lacks (bookworm-backports preferred: its qemu-system-x86) through a private APT
# configuration in APT_DIR; nothing to do without PKG. The suite is
# skipped (status 77) when it cannot install them: not root, no apt-get,
# no archive; a failed install stops it (status 1).
lab_install_missing() {
    local dir=$1 conf st=0
    shift
    [ $# -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        lab_skip "missing $* and cannot install them (needs root and apt-get)"
    fi
    conf=$(host_backports_apt "$dir") || lab_skip "no Debian archive URI in $DEBIAN_SOURCES"
    lab_log "installing $* (bookworm-backports preferred)"
    install_from_backports "$conf" "$@" || st=$?
    [ "$st" = 0 ] && return 0
    [ "$st" = 2 ] && lab_skip "cannot reach the Debian archive"
    lab_die "could not install $*"
}

# deb_image_of APT_CONF META SUITE [ARCH]: the versioned kernel image
# package a meta package (linux-image-amd64, linux-image-arm64) depends on
# in SUITE, e.g. linux-image-6.1.0-50-amd64.
deb_image_of() {
    local conf=$1 meta=$2 suite=$3 arch=${4:-amd64}
    APT_CONFIG=$conf apt-cache depends -t "$suite" "$meta:$arch" 2>/dev/null |
        awk -v a=":$arch" '/Depends: linux-image-[0-9]/ { sub(a "$", "", $2); print $2; exit }'
}

# fetch_debs APT_CONF DEST SUITE ARCH PKG...: downloads each package (its
# candidate in SUITE; PKG=VERSION for that version exactly) into DEST
# unless a .deb of it is already there; prints the path of each .deb, one
# a line.
fetch_debs() {
    local conf=$1 dest=$2 suite=$3 arch=$4 pkg name ver d
    shift 4
    mkdir -p "$dest"
    _fd_find() {
        if [ -n "$ver" ]; then
            # Archive file names encode the epoch colon as %3a.
            ls "$dest/${name}_${ver//:/%3a}_$arch.deb" 2>/dev/null || true
        else
            ls "$dest/${name}_"*"_$arch.deb" 2>/dev/null | head -n1 || true
        fi
    }
    for pkg in "$@"; do
        name=${pkg%%=*}
        ver=
        [ "$name" = "$pkg" ] || ver=${pkg#*=}
        d=$(_fd_find)
        if [ -z "$d" ]; then
            (cd "$dest" && APT_CONFIG=$conf apt-get -qq download -t "$suite" "$name:$arch${ver:+=$ver}" >&2) ||
                return 1
            d=$(_fd_find)
            [ -n "$d" ] || return 1
        fi
        echo "$d"
    done
}

# lab_busybox APT_CONF DEST ARCH OUT: OUT, the static busybox of Debian
# bookworm for ARCH (busybox-static; its .deb kept in DEST). Status 2 when
# it cannot be downloaded, 1 when it cannot be unpacked.
lab_busybox() {
    local conf=$1 dest=$2 arch=$3 out=$4 debs x st=0
    debs=$(fetch_debs "$conf" "$dest" bookworm "$arch" busybox-static) || return 2
    x=$(mktemp -d)
    deb_extract $debs "$x" && cp "$x/bin/busybox" "$out" || st=1
    rm -rf "$x"
    return $st
}

# deb_extract DEB... DIR: dpkg -x every DEB into DIR.
deb_extract() {
    local dir=${!#} n=$(($# - 1)) i
    mkdir -p "$dir"
    for ((i = 1; i <= n; i++)); do
        dpkg -x "${!i}" "$dir" || return 1
    done
}

# ---- kernels and modules ------------------------------------------------

# kernel_image ROOT: the kernel image of an unpacked kernel package
# (boot/vmlinuz-* or, in split packages, usr/lib/modules/*/vmlinuz).
kernel_image() {
    find "$1" \( -path '*/boot/vmlinuz-*' -o -path '*/modules/*/vmlinuz' \) -print -quit
}

# module_path ROOT NAME: the file of module NAME (.ko, .ko.xz, .ko.zst;
# '-' and '_' are the same in module names).
module_path() {
    local root=$1 n=$2 alt
    alt=$(echo "$n" | tr '_-' '-_')
    find "$root" -path '*/modules/*' \( -name "$n.ko" -o -name "$n.ko.xz" -o -name "$n.ko.zst" \
        -o -name "$alt.ko" -o -name "$alt.ko.xz" -o -name "$alt.ko.zst" \) -print -quit
}

# module_cat FILE: the module, decompressed, on stdout.
module_cat() {
    case $1 in
        *.xz) xz -dc "$1" ;;
        *.zst) zstd -qdc "$1" ;;
        *) cat "$1" ;;
    esac
}

# module_depends FILE: the modules it needs (its .modinfo "depends="),
# space-separated.
module_depends() {
    module_cat "$1" | tr '\0' '\n' | sed -n 's/^depends=//p' | head -n1 | tr ',' ' '
}

# module_closure ROOT NAME...: NAME and everything it depends on, in load
# order (dependencies first), one a line.
module_closure() {
    local root=$1 n f d
    shift
    declare -A seen=()
    local order=()
    _mc_visit() {
        local m=$1 f d
        [ -n "${seen[$m]:-}" ] && return 0
        seen[$m]=1
        f=$(module_path "$root" "$m")
        [ -n "$f" ] || { lab_log "module $m not found under $root"; return 1; }
        for d in $(module_depends "$f"); do
            _mc_visit "$d" || return 1
        done
        order+=("$m")
    }
    for n in "$@"; do
        _mc_visit "$n" || return 1
    done
    printf '%s\n' "${order[@]}"
}

# modules_install ROOT OUTDIR NAME...: the closure of NAME... as
# uncompressed OUTDIR/<name>.ko, and OUTDIR/modules.order (load order).
modules_install() {
    local root=$1 out=$2 m list
    shift 2
    mkdir -p "$out"
    list=$(module_closure "$root" "$@") || return 1
    : >"$out/modules.order"
    for m in $list; do
        module_cat "$(module_path "$root" "$m")" >"$out/$m.ko" || return 1
        echo "$m" >>"$out/modules.order"
    done
}

# lab_kernel APT_CONF DEBS SUITE ARCH OUT MODULE...: the kernel that
# linux-image-ARCH depends on in SUITE, as OUT/vmlinuz, OUT/version (its
# ABI, e.g. 6.1.0-50-amd64) and the closure of MODULE... in OUT/modules
# (modules_install). Split packages (7.x: vmlinuz in linux-binary-<ver>,
# modules in linux-modules-<ver>) are followed. Nothing to do when OUT has
# them all already (then without touching the network; a change of
# MODULE... fetches again). Package lists are updated as lab_apt_update
# does. The .debs pass through DEBS and are removed (the modules package
# is ~100 MB). On failure the reason is logged and OUT is as it was; the
# status is 2 when the archive cannot be reached or lacks a package, 1
# for anything else (a module the kernel does not have, a failed
# extraction or copy): see lab_fetch_failed.
lab_kernel() {
    local conf=$1 debs=$2 suite=$3 arch=$4 out=$5 img ver x o files st=0
    shift 5
    _lk_has() {
        local m
        [ -s "$out/vmlinuz" ] && [ -s "$out/version" ] && [ -e "$out/modules/modules.order" ] || return 1
        for m in "$@"; do [ -s "$out/modules/$m.ko" ] || return 1; done
    }
    _lk_has "$@" && return 0
    lab_apt_update "$conf" || { lab_log "cannot reach the Debian archive (apt-get update failed)"; return 2; }
    img=$(deb_image_of "$conf" "linux-image-$arch" "$suite" "$arch")
    [ -n "$img" ] || { lab_log "no linux-image-$arch in $suite"; return 2; }
    ver=${img#linux-image-}
    ver=${ver%-unsigned}
    lab_log "$suite: $img ($ver)"
    # Unpacked in X, assembled in O next to OUT, which O replaces only
    # when everything is there.
    mkdir -p "$(dirname "$out")"
    x=$(mktemp -d "$out.x-XXXXXX")
    o=$(mktemp -d "$out.new-XXXXXX") && chmod 755 "$o"
    _lk_unpack() {
        files=$(fetch_debs "$conf" "$debs" "$suite" "$arch" "$1") || { lab_log "cannot download $1"; return 2; }
        deb_extract $files "$x" || { lab_log "cannot unpack $1"; return 1; }
    }
    # Split packages (7.x) leave the module tree (<modules>/<ver>/kernel/)
    # to linux-modules-<ver>; a module missing from a whole tree is named
    # by modules_install, not hidden behind a download error.
    _lk_module_tree() {
        [ -n "$(find "$x" -path '*/modules/*' -name kernel -type d -print -quit)" ]
    }
    _lk_unpack "$img" || st=$?
    if [ $st = 0 ] && [ -z "$(kernel_image "$x")" ]; then
        _lk_unpack "linux-binary-$ver" || st=$?
    fi
    if [ $st = 0 ] && [ $# -gt 0 ] && ! _lk_module_tree; then
        _lk_unpack "linux-modules-$ver" || st=$?
    fi
    if [ $st = 0 ]; then
        cp "$(kernel_image "$x")" "$o/vmlinuz" &&
            modules_install "$x" "$o/modules" "$@" &&
            echo "$ver" >"$o/version" &&
            rm -rf "$out" && mv "$o" "$out" || st=1
    fi
    rm -rf "$x" "$o" "$debs"/linux-*
    [ $st = 0 ] || return $st
    lab_log "$suite: $ver, modules $(tr '\n' ' ' <"$out/modules/modules.order")"
}

# ---- initramfs, boot, verdict -------------------------------------------

# initramfs_build DIR OUT: a newc cpio of DIR (sorted, owned by root),
# gzip -1, written to OUT. DIR should hold /init, /bin/busybox and a
# /bin/sh link to it (initramfs_skeleton).
initramfs_build() {
    local dir=$1 out=$2
    [ -x "$dir/init" ] || { lab_log "initramfs_build: $dir/init missing"; return 1; }
    (cd "$dir" && find . | LC_ALL=C sort | cpio -o -H newc --quiet --owner 0:0) | gzip -1 >"$out.tmp" &&
        mv "$out.tmp" "$out"
}

# initramfs_skeleton DIR BUSYBOX INIT: a fresh DIR with /bin/busybox,
# /bin/sh -> busybox, INIT as /init and the labs' shared init functions
# (scripts/lab/init-common.sh) as /lib/lab-init.sh.
initramfs_skeleton() {
    local dir=$1
    rm -rf "$dir" && mkdir -p "$dir/bin" "$dir/lib" &&
        cp "$2" "$dir/bin/busybox" &&
        ln -s busybox "$dir/bin/sh" &&
        install -m 0755 "$3" "$dir/init" &&
        install -m 0644 "$LAB_COMMON_DIR/../lab/init-common.sh" "$dir/lib/lab-init.sh"
}

# qemu_boot TIMEOUT LOG QEMU ARG...: runs QEMU with a time limit, serial
# output (carriage returns removed) to LOG and to stdout without the
# kernel's own "[ time ] ..." lines. Prints nothing else; returns 0.
qemu_boot() {
    local limit=$1 log=$2
    shift 2
    timeout --foreground -k 10 "$limit" "$@" </dev/null 2>&1 | tr -d '\r' | tee "$log" |
        grep -a -v '^\[ *[0-9.]*\] ' || true
}

# verdict_line LOG: the harness's closing "N passed, M failed" line, or
# status 1 when the log has none.
verdict_line() {
    local line
    line=$(grep -a -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n1 || true)
    [ -n "$line" ] || return 1
    echo "$line"
}

# lab_exit_status LOG: the status /init printed after the harness
# ("LAB-EXIT <n>"), or status 1 when missing.
lab_exit_status() {
    local rc
    rc=$(sed -n 's/^LAB-EXIT \([0-9]*\)$/\1/p' "$1" | tail -n1)
    [ -n "$rc" ] || return 1
    echo "$rc"
}

# result_lines LOG [PREFIX]: the RESULT lines, each prefixed.
result_lines() {
    grep -a -h '^RESULT ' "$1" | sed "s/^/${2:-}/" || true
}

# verdict_counts LOG: "<passed> <failed>" from the closing line (0 0 when
# missing).
verdict_counts() {
    local p f
    read -r p f < <(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$1" | tail -n1) || true
    echo "${p:-0} ${f:-0}"
}

# lab_static_c SRC OUT: OUT, a static, stripped build of the C program SRC
# for the host's architecture (gcc, libc6-dev), rebuilt when SRC is newer.
# Fails (and leaves OUT alone) when it cannot build it.
lab_static_c() {
    local src=$1 out=$2
    [ -x "$out" ] && [ ! "$src" -nt "$out" ] && return 0
    command -v gcc >/dev/null || return 1
    gcc -static -O2 -Wall -Wextra -o "$out.tmp" "$src" && strip "$out.tmp" && mv "$out.tmp" "$out"
}
