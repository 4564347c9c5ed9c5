# SPDX-License-Identifier: Apache-2.0
#
# Cloud Hypervisor with the vendor-patches series, from a checkout the user
# gives (bash; source it). Shared by scripts/lab.sh --ch-src (static aarch64
# binaries for the full stack) and scripts/verify-series.sh (every commit of
# a series through CH's own checks). Nothing here downloads source code:
#
#   - the scratch tree is a `git clone --shared` of the user's checkout (the
#     checkout itself is never modified), detached at the series base, with
#     the series applied by `git am` in the order of <series>/series;
#   - git dependencies of Cargo.lock (micro_http) come from a checkout the
#     user names or from cargo's own git cache, copied at the locked commit
#     into a cargo "directory" source under .lab/ and substituted with
#     `cargo --config source...` arguments (source replacement, not [patch]:
#     Cargo.lock is unchanged and --locked keeps working); no file is written
#     into any source tree;
#   - crates of the package registry are fetched by cargo as usual.
#
# Pure functions (no Cloud Hypervisor needed) are tested by
# scripts/test-ch-series.sh.

CHS_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CHS_ROOT=$(cd "$CHS_LIB_DIR/../.." && pwd)
# The series directory (manifest.toml, main/, v53.0/): VENDOR_PATCHES to
# test a series being written elsewhere.
CHS_VP=${VENDOR_PATCHES:-$CHS_ROOT/vendor-patches}
CHS_LAB=${CHS_LAB:-$CHS_ROOT/.lab}
CHS_AARCH64=aarch64-unknown-linux-gnu
CHS_X86=x86_64-unknown-linux-gnu
CHS_QEMU_USER=${CHS_QEMU_USER:-qemu-aarch64-static -L /usr/aarch64-linux-gnu}
# Committer of the scratch commits (authors come from the patches).
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-RAS series}
export GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-ras@example.org}

chs_log() { echo "${CHS_LOG_PREFIX:-ch-series}: $*" >&2; }
chs_die() {
    chs_log "$*"
    exit 1
}
chs_skip() {
    echo "SKIP: $*"
    exit 77
}

# ---- the series (pure) ----------------------------------------------------

# chs_manifest_field SERIES FIELD [MANIFEST]: FIELD (dir, base) of the series
# named SERIES in manifest.toml: SERIES is a table key of [series.*]
# (main, release) or the value of its `dir` (main, v53.0).
chs_manifest_field() {
    python3 - "${3:-$CHS_VP/manifest.toml}" "$1" "$2" <<'PY'
import sys, tomllib
path, name, field = sys.argv[1:]
with open(path, "rb") as f:
    series = tomllib.load(f).get("series", {})
for key, s in series.items():
    if name in (key, s.get("dir")):
        if field == "key":
            print(key)
        elif field in s:
            print(s[field])
        else:
            sys.exit(f"series {name}: no field {field} in {path}")
        sys.exit(0)
sys.exit(f"no series {name} in {path} (known: {', '.join(series)})")
PY
}

# chs_series_dir SERIES: the directory holding its patches, series and BASE.
chs_series_dir() {
    local d
    d=$(chs_manifest_field "$1" dir) || return 1
    echo "$CHS_VP/$d"
}

# chs_series_base SERIES: the base commit (manifest.toml; BASE's first word
# must agree when the file exists).
chs_series_base() {
    local base dir first
    base=$(chs_manifest_field "$1" base) || return 1
    dir=$(chs_series_dir "$1") || return 1
    if [ -f "$dir/BASE" ]; then
        first=$(awk 'NF { print $1; exit }' "$dir/BASE")
        if [ "$first" != "$base" ]; then
            chs_log "$dir/BASE names ${first:-nothing}, manifest.toml $base"
            return 1
        fi
    fi
    echo "$base"
}

# chs_series_list FILE: the patch names of a series file, in order
# (comments and blank lines skipped, surrounding blanks trimmed).
chs_series_list() {
    sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$1"
}

# chs_series_patches DIR: the absolute paths of DIR's patches in the order of
# DIR/series; fails if a listed patch is missing.
chs_series_patches() {
    local dir=$1 p
    [ -f "$dir/series" ] || { chs_log "$dir/series missing"; return 1; }
    for p in $(chs_series_list "$dir/series"); do
        [ -f "$dir/$p" ] || { chs_log "$dir/series lists $p, which is missing"; return 1; }
        echo "$dir/$p"
    done
}

# chs_cache_key BASE PATCH...: the key of a build: sha256 of the base and of
# each patch's name and content, in order (first 16 hex digits).
chs_cache_key() {
    local base=$1 p
    shift
    {
        echo "base $base"
        for p in "$@"; do
            echo "patch $(basename "$p") $(sha256sum <"$p" | cut -c1-64)"
        done
    } | sha256sum | cut -c1-16
}

# chs_lock_git_sources LOCK: one line "NAME URL QUERY REV" per package of a
# Cargo.lock whose source is a git repository (QUERY: branch=..., rev=...,
# tag=... or empty).
chs_lock_git_sources() {
    awk '
        /^\[\[package\]\]/ { name = "" }
        /^name = / { name = $3; gsub(/"/, "", name) }
        /^source = "git\+/ {
            s = $3; gsub(/"/, "", s); sub(/^git\+/, "", s)
            rev = s; sub(/^[^#]*#/, "", rev); sub(/#.*$/, "", s)
            q = ""
            if (index(s, "?")) { q = s; sub(/^[^?]*\?/, "", q); sub(/\?.*$/, "", s) }
            print name, s, (q == "" ? "-" : q), rev
        }
    ' "$1"
}

# chs_source_config NAME URL QUERY DIR: the `cargo --config` arguments (one a
# line) replacing git source URL(+QUERY) with the directory source DIR.
chs_source_config() {
    local n=$1 url=$2 q=$3 dir=$4 k v
    echo "--config"
    echo "source.chs-git-$n.git=\"$url\""
    if [ "$q" != - ]; then
        k=${q%%=*}
        v=${q#*=}
        echo "--config"
        echo "source.chs-git-$n.$k=\"$v\""
    fi
    echo "--config"
    echo "source.chs-git-$n.replace-with=\"chs-vendor-$n\""
    echo "--config"
    echo "source.chs-vendor-$n.directory=\"$dir\""
}

# chs_config_source_clash SRC URL: the cargo configuration file, in SRC or a
# directory above it (cargo reads them all), whose [source.*] tables already
# name the git source URL: cargo refuses a second definition of a source
# ("Sources are not allowed to be defined multiple times"). Prints the file;
# status 1 when there is none.
chs_config_source_clash() {
    local d url=$2 f
    d=$(cd "$1" && pwd) || return 1
    while :; do
        for f in "$d/.cargo/config.toml" "$d/.cargo/config"; do
            if [ -f "$f" ] && grep -q '^[[:space:]]*\[source\.' "$f" && grep -qF "$url" "$f"; then
                echo "$f"
                return 0
            fi
        done
        [ "$d" = / ] && return 1
        d=$(dirname "$d")
    done
}

# chs_package_name CARGO_TOML: the name in its [package] section.
chs_package_name() {
    awk '/^\[package\]/ { p = 1; next } /^\[/ { p = 0 }
         p && /^name *= */ { sub(/^name *= */, ""); gsub(/"/, ""); print; exit }' "$1"
}

# chs_crate_dir TREE FILE: the directory (relative to TREE) of the crate
# holding FILE (a path relative to TREE): the nearest Cargo.toml with a
# [package] section, not above TREE; nothing for files outside any crate or
# in CH's separate fuzz/ workspace.
chs_crate_dir() {
    local tree=$1 d
    d=$(dirname "$2")
    case $2 in fuzz/*) return 0 ;; esac
    while :; do
        if [ -f "$tree/$d/Cargo.toml" ] && grep -q '^\[package\]' "$tree/$d/Cargo.toml"; then
            echo "$d"
            return 0
        fi
        [ "$d" = . ] && return 0
        d=$(dirname "$d")
    done
}

# chs_crate_of TREE FILE: the package name of the crate holding FILE.
chs_crate_of() {
    local d
    d=$(chs_crate_dir "$1" "$2")
    [ -z "$d" ] || chs_package_name "$1/$d/Cargo.toml"
}

# chs_test_counts LOG: "PASSED FAILED IGNORED" summed over the libtest
# "test result:" lines of LOG.
chs_test_counts() {
    awk '/^test result: / {
            for (i = 1; i <= NF; i++) {
                v = $(i - 1) + 0
                if ($i ~ /^passed/) p += v
                else if ($i ~ /^failed/) f += v
                else if ($i ~ /^ignored/) g += v
            }
        } END { printf "%d %d %d\n", p, f, g }' "$1"
}

# chs_test_by_crate LOG: "CRATE KIND PASSED FAILED IGNORED" per test binary
# of a cargo test log (KIND: unit, doc, or the test target's name).
chs_test_by_crate() {
    awk '
        /^ *Running unittests / { c = $NF; sub(/^\(/, "", c); sub(/\)$/, "", c); n = split(c, a, "/")
                                  c = a[n]; sub(/-[0-9a-f]+$/, "", c); k = "unit"; next }
        /^ *Running tests\// { t = $2; sub(/^tests\//, "", t); sub(/\.rs$/, "", t)
                               c = $NF; sub(/^\(/, "", c); sub(/\)$/, "", c); n = split(c, a, "/")
                               c = a[n]; sub(/-[0-9a-f]+$/, "", c); k = "test:" t; next }
        /^ *Doc-tests / { c = $2; k = "doc"; next }
        /^test result: / {
            p = f = g = 0
            for (i = 1; i <= NF; i++) {
                v = $(i - 1) + 0
                if ($i ~ /^passed/) p = v; else if ($i ~ /^failed/) f = v; else if ($i ~ /^ignored/) g = v
            }
            print c, k, p, f, g
        }' "$1"
}

# chs_failed_tests LOG: the names of failed tests (sorted, unique).
chs_failed_tests() {
    sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$1" | sort -u
}

# ---- scratch tree -----------------------------------------------------------

# chs_check_checkout DIR COMMIT: DIR is a git repository holding COMMIT.
chs_check_checkout() {
    local dir=$1 c=$2
    git -C "$dir" rev-parse --git-dir >/dev/null 2>&1 ||
        chs_die "$dir is not a git checkout of Cloud Hypervisor"
    git -C "$dir" cat-file -e "$c^{commit}" 2>/dev/null ||
        chs_die "$dir has no commit $c (the series base): fetch Cloud Hypervisor into it (git -C $dir fetch <its remote>)"
}

# chs_scratch DIR SRC BASE: SRC becomes a clean tree of BASE, a `git clone
# --shared` of DIR (reused when it is already one). DIR is only read.
chs_scratch() {
    local dir src=$2 base=$3 origin
    dir=$(cd "$1" && pwd)
    chs_check_checkout "$dir" "$base"
    origin=$(git -C "$src" config --get chs.origin 2>/dev/null || true)
    if [ "$origin" != "$dir" ] || ! git -C "$src" cat-file -e "$base^{commit}" 2>/dev/null; then
        rm -rf "$src"
        mkdir -p "$(dirname "$src")"
        chs_log "scratch tree: git clone --shared $dir $src"
        git -c init.defaultBranch=scratch clone -q --shared --no-checkout "$dir" "$src" || chs_die "git clone --shared $dir failed"
        git -C "$src" config chs.origin "$dir"
        git -C "$src" config gc.auto 0
    fi
    git -C "$src" am --abort >/dev/null 2>&1 || true
    git -C "$src" checkout -q -f --detach "$base" || chs_die "cannot check out $base in $src"
    git -C "$src" clean -q -fdx || chs_die "git clean failed in $src"
}

# chs_apply SRC PATCH...: git am each patch (committer date = author date, so
# the commits are the same on every run). On failure the am is aborted.
chs_apply() {
    local src=$1 p
    shift
    for p in "$@"; do
        if ! git -C "$src" am -q --committer-date-is-author-date "$p" >"$src.am.log" 2>&1; then
            cat "$src.am.log" >&2
            git -C "$src" am --abort >/dev/null 2>&1 || true
            chs_die "$(basename "$p") does not apply on $(git -C "$src" rev-parse --short HEAD) in $src"
        fi
    done
    rm -f "$src.am.log"
}

# ---- git dependencies, offline ------------------------------------------------

# chs_git_db_for URL REV: a repository of cargo's git cache
# ($CARGO_HOME/git/db/<name>-<hash>) for URL that has commit REV.
chs_git_db_for() {
    local name db
    name=$(basename "${1%.git}")
    for db in "${CARGO_HOME:-$HOME/.cargo}"/git/db/"$name"-*/; do
        [ -d "$db" ] || continue
        if git -C "$db" cat-file -e "$2^{commit}" 2>/dev/null; then
            echo "${db%/}"
            return 0
        fi
    done
    return 1
}

# chs_git_deps SRC USER_MICRO_HTTP: for every git dependency of SRC/Cargo.lock,
# a copy of the locked commit under $CHS_LAB/ch-deps (from the user's
# micro-http checkout for micro_http, else from cargo's git cache); sets the
# array CHS_CARGO_CFG to the `cargo --config` arguments substituting them.
chs_git_deps() {
    local src=$1 user=${2:-} name url q rev dest from line crate
    CHS_CARGO_CFG=()
    while read -r name url q rev; do
        [ -n "$name" ] || continue
        if from=$(chs_config_source_clash "$src" "$url"); then
            chs_die "$from already defines a source for $name ($url), which these scripts replace themselves: cargo refuses two definitions; move that file aside for this run"
        fi
        dest=$CHS_LAB/ch-deps/$name-${rev:0:12}
        if [ "$name" = micro_http ] && [ -n "$user" ] &&
            ! git -C "$user" rev-parse --git-dir >/dev/null 2>&1; then
            # A plain copy of the crate (e.g. a `cargo vendor` directory):
            # used as it is (its commit cannot be checked), copied each time.
            crate=$user
            [ -f "$crate/Cargo.toml" ] || crate=$user/$name
            [ "$(chs_package_name "$crate/Cargo.toml" 2>/dev/null)" = "$name" ] ||
                chs_die "--micro-http $user: neither a git clone nor a copy of the $name crate"
            chs_log "$name: $user is not a git clone: using its files as they are (Cargo.lock locks $rev)"
            dest=$CHS_LAB/ch-deps/$name-plain
            rm -rf "$dest" && mkdir -p "$dest/$name"
            (cd "$crate" && tar -c --exclude=./.git --exclude=./target .) | tar -x -C "$dest/$name" ||
                chs_die "cannot copy $crate"
            echo '{"files":{},"package":null}' >"$dest/$name/.cargo-checksum.json"
        elif [ ! -e "$dest/.chs-ok" ]; then
            if [ "$name" = micro_http ] && [ -n "$user" ]; then
                git -C "$user" cat-file -e "$rev^{commit}" 2>/dev/null ||
                    chs_die "--micro-http $user has no commit $rev (the one Cargo.lock locks): git -C $user fetch"
                from=$user
            elif from=$(chs_git_db_for "$url" "$rev"); then
                :
            else
                chs_die "$name is a git dependency (Cargo.lock: $url${q:+ $q} at $rev) and is not available offline: give a clone of its repository holding that commit with --micro-http DIR, or let cargo fetch it once into its git cache (${CARGO_HOME:-$HOME/.cargo}/git/db)"
            fi
            chs_log "$name: $rev from $from"
            rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/$name"
            git -C "$from" archive --format=tar "$rev" | tar -x -C "$dest.tmp/$name" ||
                chs_die "cannot copy $name $rev out of $from"
            echo '{"files":{},"package":null}' >"$dest.tmp/$name/.cargo-checksum.json"
            touch "$dest.tmp/.chs-ok"
            rm -rf "$dest" && mv "$dest.tmp" "$dest"
        fi
        while IFS= read -r line; do CHS_CARGO_CFG+=("$line"); done \
            < <(chs_source_config "$name" "$url" "$q" "$dest")
    done < <(chs_lock_git_sources "$src/Cargo.lock")
}

# chs_cargo SRC SUBCOMMAND ARG...: cargo in SRC, niced, with the git
# substitutions (and inside the command prefix CHS_WRAP, an array, when
# set). The --config arguments follow the subcommand: cargo does not hand
# the ones before it to external subcommands (clippy).
chs_cargo() {
    local src=$1 sub=$2
    shift 2
    (cd "$src" && "${CHS_WRAP[@]}" nice cargo "$sub" "${CHS_CARGO_CFG[@]}" "$@")
}
CHS_WRAP=()

# ---- toolchain ---------------------------------------------------------------

chs_rust_target() {
    if ! rustup target list --installed 2>/dev/null | grep -qx "$1"; then
        rustup target add "$1" >&2
    fi
}

# chs_target_env TARGET: the environment (NAME=VALUE lines) for building for
# TARGET from x86_64: cross linker and qemu-user test runner for aarch64.
chs_target_env() {
    if [ "$1" = "$CHS_AARCH64" ]; then
        echo "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc"
        # A test binary gets 15 minutes: one of Cloud Hypervisor's
        # virtio_devices test binaries sleeps forever under qemu-user (seen
        # 2026-11-30, no CPU time after an hour); it must fail, not stall.
        echo "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=timeout 900 $CHS_QEMU_USER"
    fi
}

# ---- static binaries (scripts/lab.sh --ch-src) -------------------------------

# chs_build_static DIR USER_MICRO_HTTP SERIES [TARGET]: static cloud-hypervisor
# and ch-remote of DIR + the series for TARGET ($CHS_AARCH64 by default, or
# $CHS_X86); prints the directory holding them. Cached under
# $CHS_LAB/ch-build/bin/<key> for aarch64, <key>.x86_64 for x86_64 (key:
# base + patch files).
chs_build_static() {
    local dir=$1 mh=${2:-} series=${3:-main} target=${4:-$CHS_AARCH64} sdir base key out src t0
    local -a patches
    sdir=$(chs_series_dir "$series") || chs_die "no series $series"
    base=$(chs_series_base "$series") || chs_die "series $series: no base"
    mapfile -t patches < <(chs_series_patches "$sdir") || true
    [ "${#patches[@]}" -gt 0 ] || chs_die "no patches in $sdir/series"
    key=$(chs_cache_key "$base" "${patches[@]}")
    case $target in
        "$CHS_AARCH64") out=$CHS_LAB/ch-build/bin/$key ;;
        "$CHS_X86") out=$CHS_LAB/ch-build/bin/$key.x86_64 ;;
        *) chs_die "no static build for $target" ;;
    esac
    if [ -x "$out/cloud-hypervisor" ] && [ -x "$out/ch-remote" ]; then
        chs_log "cached build $key (base ${base:0:12}, ${#patches[@]} patches): $out"
        echo "$out"
        return 0
    fi
    src=$CHS_LAB/ch-build/src
    t0=$SECONDS
    chs_scratch "$dir" "$src" "$base"
    chs_log "applying ${#patches[@]} patches of $sdir onto ${base:0:12}"
    chs_apply "$src" "${patches[@]}"
    chs_git_deps "$src" "$mh"
    chs_rust_target "$target"
    chs_log "building static cloud-hypervisor + ch-remote for $target (release, default features)"
    # As CH's release job builds its binaries (--release, default
    # features), with glibc's static runtime instead of musl (the lab's
    # toolchain) and, for aarch64, the Debian cross linker.
    (
        export CARGO_TARGET_DIR=$CHS_LAB/ch-build/target
        export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
        export RUSTFLAGS="${CHS_RUSTFLAGS:-} -C target-feature=+crt-static"
        chs_cargo "$src" build --locked --release --target "$target" \
            --bin cloud-hypervisor --bin ch-remote
    ) >&2 || chs_die "build failed (tree: $src)"
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    cp "$CHS_LAB/ch-build/target/$target/release/cloud-hypervisor" \
        "$CHS_LAB/ch-build/target/$target/release/ch-remote" "$out.tmp/"
    {
        echo "base $base"
        echo "head $(git -C "$src" rev-parse HEAD)"
        echo "patches ${#patches[@]} ($sdir)"
        echo "rustc $(rustc -V)"
        echo "built $(date -u +%FT%TZ) in $((SECONDS - t0)) s"
    } >"$out.tmp/info"
    rm -rf "$out" && mv "$out.tmp" "$out"
    chs_log "built in $((SECONDS - t0)) s: $out"
    echo "$out"
}

# chs_smoke BINDIR [TARGET]: the binaries are static executables for TARGET
# ($CHS_AARCH64 by default: run under qemu-user here; $CHS_X86: run as they
# are, they touch no KVM) that run: --version of both, and whether --help
# lists --ras.
chs_smoke() {
    local d=$1 target=${2:-$CHS_AARCH64} q v r h run pattern
    case $target in
        "$CHS_AARCH64") run=$CHS_QEMU_USER pattern='ARM aarch64.*statically linked' ;;
        "$CHS_X86") run= pattern='x86-64.*static' ;;
        *) chs_log "no smoke test for $target"; return 1 ;;
    esac
    file -b "$d/cloud-hypervisor" | grep -q "$pattern" ||
        { chs_log "not a static $target executable: $(file -b "$d/cloud-hypervisor")"; return 1; }
    if [ -n "$run" ]; then
        read -r q _ <<<"$run"
        if ! command -v "$q" >/dev/null; then
            chs_log "no $q: not running the binaries"
            return 0
        fi
    fi
    v=$($run "$d/cloud-hypervisor" --version) || return 1
    v=${v%%$'\n'*}
    r=$($run "$d/ch-remote" --version) || return 1
    chs_log "runs${run:+ under qemu-user}: $v; $r"
    # The whole help first: grep -q would close the pipe early.
    h=$($run "$d/cloud-hypervisor" --help) || return 1
    if grep -q -- '--ras' <<<"$h"; then
        chs_log "cloud-hypervisor --help lists --ras"
    else
        chs_log "cloud-hypervisor --help does not list --ras"
        return 1
    fi
}
