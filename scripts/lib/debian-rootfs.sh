# SPDX-License-Identifier: Apache-2.0
#
# A root file system tree from Debian binary packages of a foreign
# architecture, without running any of their maintainer scripts, without
# root-only tools (chroot, loop devices) and without emulation: apt computes
# the dependency closure against an empty package database, `apt-get
# install --download-only` fetches it through a private APT configuration
# (scripts/lib/debian-archive.sh: the archive URI comes from the machine's
# own apt sources), and each .deb is unpacked with dpkg-deb + tar.
# Sourced (bash). Functions take the private APT directory written by
# `private_apt` as their first argument.

# need_host_packages PKG...: install missing host packages with the
# system's own apt sources (root only).
need_host_packages() {
    local need=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
    done
    [ ${#need[@]} -eq 0 ] && return 0
    echo "installing host packages: ${need[*]}" >&2
    [ "$(id -u)" -eq 0 ] || { echo "need root to install ${need[*]}" >&2; return 1; }
    DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=120 \
        install --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
        apt-get -q update >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=120 \
            install --no-install-recommends "${need[@]}" >/dev/null
    }
}

# rootfs_apt APTDIR ARCH ARGS...: apt-get with the private configuration,
# ARCH as the only (native) architecture and an empty dpkg database, so
# that the whole dependency closure is selected, not just what the build
# machine lacks.
rootfs_apt() {
    local dir=$1 arch=$2
    shift 2
    mkdir -p "$dir/rootfs-state"
    [ -e "$dir/rootfs-state/status" ] || : >"$dir/rootfs-state/status"
    APT_CONFIG="$dir/apt.conf" "$@" \
        -o APT::Architecture="$arch" -o APT::Architectures::="$arch" \
        -o Dir::State::status="$dir/rootfs-state/status" \
        -o Debug::NoLocking=1
}

# rootfs_closure APTDIR ARCH SUITE PKG...: prints "name version arch" for
# every package of the dependency closure (Depends and Pre-Depends, no
# Recommends) of PKG... in SUITE.
rootfs_closure() {
    local dir=$1 arch=$2 suite=$3
    shift 3
    rootfs_apt "$dir" "$arch" apt-get -q -s -y --no-install-recommends -t "$suite" install "$@" |
        sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*\[\([^]]*\)\]).*/\1 \2 \3/p'
}

# rootfs_download APTDIR ARCH SUITE PKG...: downloads the closure into
# APTDIR/archives (cached) and prints the path of each .deb.
rootfs_download() {
    local dir=$1 arch=$2 suite=$3
    shift 3
    local list
    list=$(rootfs_closure "$dir" "$arch" "$suite" "$@")
    [ -n "$list" ] || { echo "rootfs: empty closure for $*" >&2; return 1; }
    rootfs_apt "$dir" "$arch" apt-get -q -y --no-install-recommends -t "$suite" \
        --download-only install "$@" >/dev/null
    local name ver a f
    while read -r name ver a; do
        # Archive file names encode the epoch colon as %3a.
        f=$dir/archives/${name}_${ver//:/%3a}_${a}.deb
        [ -s "$f" ] || { echo "rootfs: $f missing after download" >&2; return 1; }
        echo "$f"
    done <<<"$list"
}

# rootfs_unpack ROOT DEB...: unpacks the data part of each package into
# ROOT (owners and modes kept), without documentation, manuals and
# translations.
rootfs_unpack() {
    local root=$1 deb
    shift
    mkdir -p "$root"
    for deb in "$@"; do
        # As root, tar keeps the packages' owners and modes (setuid sudo).
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$root" \
            --exclude='./usr/share/doc/*' --exclude='./usr/share/man/*' \
            --exclude='./usr/share/info/*' --exclude='./usr/share/locale/*' \
            --exclude='./usr/share/lintian/*' --exclude='./usr/share/bug/*'
    done
}

# rootfs_merge_usr ROOT: /bin, /sbin and /lib become links into /usr (the
# layout of an installed Debian 12 or later system; packages of bookworm
# still ship files under /bin and /lib).
rootfs_merge_usr() {
    local root=$1 d
    for d in bin sbin lib; do
        if [ -d "$root/$d" ] && [ ! -L "$root/$d" ]; then
            mkdir -p "$root/usr/$d"
            cp -a "$root/$d/." "$root/usr/$d/"
            rm -rf "${root:?}/$d"
        fi
        [ -e "$root/$d" ] || ln -s "usr/$d" "$root/$d"
    done
}

# rootfs_check_libs ROOT: every ELF file's interpreter and NEEDED shared
# libraries are present in ROOT (searched in its RUNPATH/RPATH and the
# standard library directories). Prints what is missing; fails if anything
# is.
rootfs_check_libs() {
    local root=$1
    python3 - "$root" <<'PY'
import os, subprocess, sys
root = sys.argv[1]
# the dynamic loader's default directories (any Debian multiarch triplet)
std = ["/usr/lib", "/lib"] + [os.path.join(b, d) for b in ("/usr/lib", "/lib")
                              for d in os.listdir(os.path.join(root, b.lstrip("/")))
                              if d.endswith("-linux-gnu") and os.path.isdir(os.path.join(root, b.lstrip("/"), d))]
def exists(p):
    # resolve inside root (links are absolute or relative to the root tree)
    seen = 0
    cur = p
    while seen < 40:
        full = os.path.join(root, cur.lstrip("/"))
        if os.path.islink(full):
            t = os.readlink(full)
            cur = t if t.startswith("/") else os.path.join(os.path.dirname(cur), t)
            cur = os.path.normpath(cur)
            seen += 1
            continue
        return os.path.exists(full)
    return False
missing = []
checked = 0
for dp, dn, fn in os.walk(root):
    for f in fn:
        p = os.path.join(dp, f)
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        try:
            with open(p, "rb") as fh:
                if fh.read(4) != b"\x7fELF":
                    continue
        except OSError:
            continue
        if p.endswith(".ko"):
            continue
        out = subprocess.run(["readelf", "-d", "-l", "-W", p], capture_output=True, text=True).stdout
        rel = "/" + os.path.relpath(p, root)
        checked += 1
        paths = []
        needed = []
        for line in out.splitlines():
            if "Requesting program interpreter:" in line:
                interp = line.split(":", 1)[1].strip().rstrip("]")
                if not exists(interp):
                    missing.append(f"{rel}: interpreter {interp}")
            elif "(NEEDED)" in line:
                needed.append(line.split("[", 1)[1].split("]", 1)[0])
            elif "(RUNPATH)" in line or "(RPATH)" in line:
                for d in line.split("[", 1)[1].split("]", 1)[0].split(":"):
                    paths.append(d.replace("$ORIGIN", os.path.dirname(rel)))
        for n in needed:
            if not any(exists(os.path.join(d, n)) for d in paths + std):
                missing.append(f"{rel}: {n}")
for m in missing:
    print("rootfs: missing library:", m, file=sys.stderr)
print(f"rootfs: {checked} ELF files checked, {len(missing)} missing libraries", file=sys.stderr)
sys.exit(1 if missing else 0)
PY
}
