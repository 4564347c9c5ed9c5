# SPDX-License-Identifier: Apache-2.0
#
# Every commit of a vendor-patches series through Cloud Hypervisor's own CI
# checks (bash; source it after scripts/lib/ch-series.sh). Used by
# scripts/verify-series.sh; see docs/series.md.
#
# Per commit, each check records PASS/FAIL/SKIP and its seconds:
#   build-<arch>   `cargo build --locked --bin cloud-hypervisor` (CH's build
#                  job; matrix "ci": each of its debug feature sets for
#                  x86_64), then "the build did not modify any files"
#   clippy-<arch>  CH's quality job: the `args:` of its clippy steps, read
#                  from the checkout's workflow (matrix "core": the kvm, mshv
#                  and default-features steps; "ci": every step the job runs
#                  for that target)
#   test-<arch>    unit tests of the crates the commit touches (--lib --bins
#                  --tests, <crate>/kvm when the crate has it; doc tests on
#                  x86_64); aarch64 under qemu-user
#   fmt            cargo +nightly fmt --all -- --check (and fuzz/), as CH's
#                  formatting job (its .rustfmt.toml needs nightly)
#   gitlint        gitlint --commit <sha> with CH's .gitlint and rules
#   dco            a Signed-off-by line naming the author (CH's dco job)
#   typos          typos (CH's typos config) over the tree
#   reuse          reuse lint
# On the final tree: CH's unit-test suite (scripts/run_unit_tests.sh: cargo
# test --lib --bins and --doc, --release --workspace, RUSTFLAGS --cfg
# devcli_testenv as scripts/dev_cli.sh sets it) per target, compared with
# the same suite on the series base.

CHV_DIR=${CHV_DIR:-$CHS_LAB/verify}
CHV_TYPOS_VERSION=${CHV_TYPOS_VERSION:-1.49.0} # CH's ci.yaml: crate-ci/typos@... # v1.49.0
CHV_ARCHES="x86_64 aarch64"
CHV_CHECKS="build-x86_64 build-aarch64 testbuild-x86_64 clippy-x86_64 clippy-aarch64 test-x86_64 test-aarch64 fmt gitlint dco typos reuse"
CHV_MATRIX=${CHV_MATRIX:-core}
CHV_JOBS=${CHV_JOBS:-}

chv_triple() { if [ "$1" = aarch64 ]; then echo "$CHS_AARCH64"; else echo "$CHS_X86"; fi; }

# ---- reading CH's workflow (pure) -------------------------------------------

# chv_ci_steps WORKFLOW... : one line per cargo step of CH's CI workflows,
# "JOB<TAB>ONLY_TARGET<TAB>NAME<TAB>ARGS": clippy steps (command: clippy,
# args: ...) and build steps (run: cargo build ...); ONLY_TARGET is the
# target the step's `if:` restricts it to, or "-".
chv_ci_steps() {
    awk '
        function flush() {
            if (name != "" && args != "") printf "%s\t%s\t%s\t%s\n", job, (only == "" ? "-" : only), name, args
            name = ""; args = ""; only = ""; cmd = ""
        }
        /^  [A-Za-z0-9_-]+:[[:space:]]*$/ { flush(); job = $1; sub(/:$/, "", job); next }
        /^      - name: / { flush(); name = $0; sub(/^      - name: /, "", name); next }
        /^        if: .*matrix\.target == / {
            only = $0; sub(/.*matrix\.target == .\x27?/, "", only); sub(/[\x27"].*/, "", only); next }
        /^          command: clippy/ { cmd = "clippy"; next }
        /^          args: / { if (cmd == "clippy") { args = $0; sub(/^ *args: /, "", args); args = "clippy " args }; next }
        /^        run: cargo build / { args = $0; sub(/^ *run: cargo /, "", args); next }
        END { flush() }
    ' "$@"
}

# chv_step_selected MATRIX JOB NAME ARGS: 0 if the step is part of the matrix
# ("core": Clippy (kvm), Clippy (mshv), Clippy (default features), Build
# (default features); "ci": all but release builds).
chv_step_selected() {
    local m=$1 job=$2 name=$3 args=$4
    case $args in *--release*) return 1 ;; esac
    [ "$m" = ci ] && return 0
    case $name in
        "Clippy (kvm)" | "Clippy (mshv)" | "Clippy (default features)" | "Build (default features)") return 0 ;;
    esac
    return 1
}

# chv_steps TREE KIND ARCH: the cargo argument lines (target substituted) of
# the selected KIND (clippy|build) steps for ARCH. CH's build job builds
# x86_64 only; for aarch64 its default-features step is used as well.
chv_steps() {
    local tree=$1 kind=$2 arch=$3 triple job only name args
    triple=$(chv_triple "$arch")
    local -a wf
    mapfile -t wf < <(ls "$tree"/.github/workflows/*.y*ml 2>/dev/null)
    [ "${#wf[@]}" -gt 0 ] || return 0
    while IFS=$'\t' read -r job only name args; do
        case $args in "$kind "*) ;; *) continue ;; esac
        # Clippy steps of the quality job, builds of the build job (not
        # riscv64, not the integration jobs' release builds).
        case $kind:$job in clippy:quality | build:build) ;; *) continue ;; esac
        [ "$only" = - ] || [ "$only" = "$triple" ] || continue
        if [ "$kind" = build ] && [ "$arch" = aarch64 ] && [ "$name" != "Build (default features)" ]; then
            continue
        fi
        chv_step_selected "$CHV_MATRIX" "$job" "$name" "$args" || continue
        args=${args//\$\{\{ matrix.target \}\}/$triple}
        echo "$args"
    done < <(chv_ci_steps "${wf[@]}")
}

# ---- tools ---------------------------------------------------------------------

# chv_tools: gitlint and reuse (a venv under .lab, from the Python package
# registry) and typos-cli (cargo install under .lab) when missing.
chv_tools() {
    local venv=$CHS_LAB/venv tools=$CHS_LAB/tools
    if command -v gitlint >/dev/null && command -v reuse >/dev/null; then
        CHV_GITLINT=$(command -v gitlint) CHV_REUSE=$(command -v reuse)
    else
        if [ ! -x "$venv/bin/gitlint" ] || [ ! -x "$venv/bin/reuse" ]; then
            chs_log "installing gitlint and reuse into $venv"
            python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q gitlint reuse >&2 ||
                chs_log "could not install gitlint/reuse (their checks will SKIP)"
        fi
        CHV_GITLINT=$venv/bin/gitlint CHV_REUSE=$venv/bin/reuse
    fi
    if command -v typos >/dev/null; then
        CHV_TYPOS=$(command -v typos)
    else
        CHV_TYPOS=$tools/bin/typos
        if [ ! -x "$CHV_TYPOS" ]; then
            chs_log "installing typos-cli $CHV_TYPOS_VERSION into $tools (cargo install)"
            nice cargo install -q --locked --root "$tools" typos-cli --version "$CHV_TYPOS_VERSION" >&2 ||
                chs_log "could not install typos-cli (its check will SKIP)"
        fi
    fi
    if cargo +nightly fmt --version >/dev/null 2>&1; then
        CHV_FMT=(cargo +nightly fmt)
    else
        CHV_FMT=()
    fi
}

# ---- one check -------------------------------------------------------------------

# cargo ARGS may end in "-- -D warnings": -j goes before "--".
chv_cargo() {
    local arch=$1
    shift
    local -a pre=() post=()
    local seen=0 a
    for a in "$@"; do
        if [ $seen = 0 ] && [ "$a" = -- ]; then seen=1; fi
        if [ $seen = 0 ]; then pre+=("$a"); else post+=("$a"); fi
    done
    (
        export CARGO_TARGET_DIR=$CHV_DIR/target-$arch
        while IFS= read -r kv; do export "${kv?}"; done < <(chs_target_env "$(chv_triple "$arch")")
        chs_cargo "$CHV_TREE" "${pre[@]}" ${CHV_JOBS:+-j "$CHV_JOBS"} "${post[@]}"
    )
}

check_build() {
    local arch=$1 line rc=0 n=0
    while IFS= read -r line; do
        n=$((n + 1))
        # shellcheck disable=SC2086 # the workflow's arguments, split as CI's shell does
        eval "set -- $line"
        echo "### cargo $* --target $(chv_triple "$arch")"
        chv_cargo "$arch" "$@" --target "$(chv_triple "$arch")" || { rc=1; echo "FAILED: cargo $*"; }
    done < <(chv_steps "$CHV_TREE" build "$arch")
    [ $n -gt 0 ] || { echo "SKIP: no build step found in .github/workflows"; return 77; }
    if [ -n "$(git -C "$CHV_TREE" status --porcelain)" ]; then
        echo "FAILED: the build modified files:"
        git -C "$CHV_TREE" status --porcelain
        rc=1
    fi
    return $rc
}

check_clippy() {
    local arch=$1 line rc=0 n=0 triple
    triple=$(chv_triple "$arch")
    while IFS= read -r line; do
        n=$((n + 1))
        eval "set -- $line"
        case " $* " in *" --target="*) ;; *) set -- "$1" --target "$triple" "${@:2}" ;; esac
        echo "### cargo $*"
        chv_cargo "$arch" "$@" || { rc=1; echo "FAILED: cargo $*"; }
    done < <(chv_steps "$CHV_TREE" clippy "$arch")
    [ $n -gt 0 ] || { echo "SKIP: no clippy step found in .github/workflows"; return 77; }
    return $rc
}

# chv_touched_crates TREE SHA: "NAME DIR" of the packages whose files SHA
# changes (with CHV_TEST_SINCE=BASE: that BASE..SHA changes).
chv_touched_crates() {
    local f d
    if [ -n "${CHV_TEST_SINCE:-}" ]; then
        git -C "$1" diff --name-only "$CHV_TEST_SINCE" "$2"
    else
        git -C "$1" diff-tree --no-commit-id --name-only -r "$2"
    fi | while IFS= read -r f; do
        d=$(chs_crate_dir "$1" "$f")
        [ -z "$d" ] || echo "$(chs_package_name "$1/$d/Cargo.toml") $d"
    done | sort -u
}

# check_test ARCH [no-run]: the tests of the crates the commit touches
# (with no-run: compiled only).
check_test() {
    local arch=$1 mode=${2:-run} triple c d feats=() pkgs=() crates=() rc=0
    triple=$(chv_triple "$arch")
    while read -r c d; do
        crates+=("$c")
        pkgs+=(-p "$c")
        # CH's suite enables kvm through cloud-hypervisor's default features.
        if grep -q '^kvm *=' "$CHV_TREE/$d/Cargo.toml"; then feats+=("$c/kvm"); fi
    done < <(chv_touched_crates "$CHV_TREE" "$CHV_SHA")
    [ "${#crates[@]}" -gt 0 ] || { echo "SKIP: the commit touches no crate"; return 77; }
    local fa=()
    [ "${#feats[@]}" -eq 0 ] || fa=(--features "$(IFS=,; echo "${feats[*]}")")
    echo "### crates: ${crates[*]}"
    if [ "$mode" = no-run ]; then
        chv_cargo "$arch" test --locked --target "$triple" "${pkgs[@]}" "${fa[@]}" \
            --lib --bins --tests --no-run
        return
    fi
    chv_cargo "$arch" test --locked --target "$triple" "${pkgs[@]}" "${fa[@]}" \
        --lib --bins --tests --no-fail-fast || rc=1
    if [ "$arch" = x86_64 ]; then
        chv_cargo "$arch" test --locked --target "$triple" "${pkgs[@]}" "${fa[@]}" --doc --no-fail-fast ||
            rc=1
    fi
    echo "### counts (passed failed ignored): $(chs_test_counts "$CHV_LOG")"
    return $rc
}

# check_testbuild ARCH: the tests of the crates the commit touches compile
# (check_test without running them): what --quick checks on each commit,
# so that no commit's tests lean on a later one.
check_testbuild() { check_test "$1" no-run; }

check_fmt() {
    [ "${#CHV_FMT[@]}" -gt 0 ] || { echo "SKIP: no nightly rustfmt (rustup component add rustfmt --toolchain nightly)"; return 77; }
    local rc=0
    (cd "$CHV_TREE" && "${CHV_FMT[@]}" --all -- --check) || rc=1
    if [ -f "$CHV_TREE/fuzz/Cargo.toml" ]; then
        (cd "$CHV_TREE" && "${CHV_FMT[@]}" --all --manifest-path fuzz/Cargo.toml -- --check) || rc=1
    fi
    return $rc
}

check_gitlint() {
    [ -x "$CHV_GITLINT" ] || { echo "SKIP: no gitlint"; return 77; }
    [ -f "$CHV_TREE/.gitlint" ] || { echo "SKIP: no .gitlint in the checkout"; return 77; }
    (cd "$CHV_TREE" && "$CHV_GITLINT" --commit "$CHV_SHA")
}

# CH's dco job (dco-check): a Signed-off-by line naming the author. The
# series is written unsigned on purpose (CONTRIBUTING.md: the human who
# submits it certifies it, `git rebase --signoff`): a commit with no
# Signed-off-by at all SKIPs saying so; one naming someone else FAILs.
check_dco() {
    local a msg
    a=$(git -C "$CHV_TREE" log -1 --format='%an <%ae>' "$CHV_SHA")
    msg=$(git -C "$CHV_TREE" log -1 --format=%B "$CHV_SHA")
    if grep -qxF "Signed-off-by: $a" <<<"$msg"; then
        echo "Signed-off-by: $a"
    elif ! grep -q '^Signed-off-by:' <<<"$msg"; then
        echo "SKIP: not signed off yet: the human submitter adds their Signed-off-by"
        return 77
    else
        echo "no 'Signed-off-by: $a' line"
        return 1
    fi
}

check_typos() {
    [ -x "$CHV_TYPOS" ] || { echo "SKIP: no typos"; return 77; }
    (cd "$CHV_TREE" && "$CHV_TYPOS" --version && "$CHV_TYPOS")
}

check_reuse() {
    [ -x "$CHV_REUSE" ] || { echo "SKIP: no reuse"; return 77; }
    (cd "$CHV_TREE" && "$CHV_REUSE" lint)
}

# chv_check N CHECK: runs one check on the checked-out commit, appends
# "N<TAB>CHECK<TAB>STATUS<TAB>SECONDS" to $CHV_TSV.
chv_check() {
    local n=$1 check=$2 t0 rc st fn arg
    CHV_LOG=$CHV_LOGS/$(printf %02d "$n")-$check.log
    fn=check_${check%%-*}
    arg=${check#*-}
    [ "$arg" = "$check" ] && arg=
    t0=$(date +%s)
    rc=0
    ($fn $arg) >"$CHV_LOG" 2>&1 || rc=$?
    case $rc in 0) st=PASS ;; 77) st=SKIP ;; *) st=FAIL ;; esac
    printf '%s\t%s\t%s\t%s\n' "$n" "$check" "$st" "$(($(date +%s) - t0))" >>"$CHV_TSV"
    chs_log "$(printf %02d "$n") $check: $st ($(($(date +%s) - t0)) s)$([ $st != FAIL ] || echo ", log $CHV_LOG")"
}

# ---- the final-tree suite -------------------------------------------------------

# chv_suite ARCH LOG: CH's unit-test suite on the checked-out tree. CH runs
# it in a container with CAP_NET_ADMIN and --cfg devcli_testenv (tap device
# tests); here it runs, as root, in a network namespace of its own (unshare
# --net, loopback up) so that those tests never touch the host's network,
# with the crates fetched beforehand and cargo --offline. Without unshare
# the tap tests are left out (no devcli_testenv).
chv_suite() {
    local arch=$1 log=$2 triple rc=0 rf=${RUSTFLAGS:-} off=()
    triple=$(chv_triple "$arch")
    local -a CHS_WRAP=()
    {
        echo "### $(git -C "$CHV_TREE" rev-parse HEAD) $(rustc -V)"
        if [ "$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then
            chs_cargo "$CHV_TREE" fetch --locked || rc=1
            CHS_WRAP=(unshare --net -- sh -c 'ip link set lo up 2>/dev/null; exec "$@"' sh)
            rf="$rf --cfg devcli_testenv"
            off=(--offline)
            echo "### in a network namespace of its own, --cfg devcli_testenv"
        else
            echo "### no network namespace (not root or no unshare): without --cfg devcli_testenv"
        fi
        RUSTFLAGS=$rf RUST_BACKTRACE=1 chv_cargo "$arch" test "${off[@]}" --locked --lib --bins \
            --target "$triple" --release --workspace --no-fail-fast || rc=1
        RUSTFLAGS=$rf RUST_BACKTRACE=1 chv_cargo "$arch" test "${off[@]}" --locked --doc \
            --target "$triple" --release --workspace --no-fail-fast || rc=1
        echo "### exit $rc"
    } >"$log" 2>&1
    return $rc
}

# chv_suite_cached ARCH COMMIT: the suite's log for COMMIT (run once per
# commit, toolchain and target; kept under $CHV_DIR/suite).
chv_suite_cached() {
    local arch=$1 c=$2 log t0
    log=$CHV_DIR/suite/$c-$arch-$(rustc -V | awk '{ print $2 }').log
    if [ ! -f "$log" ] || ! grep -q '^### exit ' "$log"; then
        mkdir -p "$CHV_DIR/suite"
        git -C "$CHV_TREE" checkout -q -f --detach "$c"
        t0=$(date +%s)
        chs_log "unit-test suite ($arch) on ${c:0:12}, log $log"
        chv_suite "$arch" "$log.tmp" || true
        echo "### seconds $(($(date +%s) - t0))" >>"$log.tmp"
        mv "$log.tmp" "$log"
    fi
    echo "$log"
}

# chv_suite_report BASELOG FINALLOG ARCH OUT: appends the Markdown rows of
# the comparison to OUT and a note to OUT.notes; status 1 when a test fails
# only with the series or the series does not compile.
chv_suite_report() {
    local b=$1 f=$2 arch=$3 out=$4 bp bf bi fp ff fi_ new both
    read -r bp bf bi < <(chs_test_counts "$b")
    read -r fp ff fi_ < <(chs_test_counts "$f")
    {
        echo "| $arch | base | $bp | $bf | $bi | $(sed -n 's/^### seconds //p' "$b") |"
        echo "| $arch | series | $fp | $ff | $fi_ | $(sed -n 's/^### seconds //p' "$f") |"
    } >>"$out"
    new=$(comm -13 <(chs_failed_tests "$b") <(chs_failed_tests "$f") | paste -sd ' ')
    both=$(comm -12 <(chs_failed_tests "$b") <(chs_failed_tests "$f") | paste -sd ' ')
    echo "- $arch: failing only with the series: ${new:-none}; failing on base and series: ${both:-none}$(grep -q '^error: could not compile' "$f" && echo "; the series does NOT compile (see $f)")" >>"$out.notes"
    [ -z "$new" ] && ! grep -q '^error: could not compile' "$f"
}

# ---- one series ---------------------------------------------------------------------

# chv_table SERIES: the Markdown table of $CHV_TSV.
chv_table() {
    local n subj
    printf '| # | commit |'
    for c in $CHV_CHECKS; do printf ' %s |' "$c"; done
    printf '\n|---|---|'
    for c in $CHV_CHECKS; do printf -- '---|'; done
    echo
    for ((n = 1; n <= CHV_N; n++)); do
        grep -q "^$n	" "$CHV_TSV" || continue
        subj=$(git -C "$CHV_TREE" log -1 --format=%s "${CHV_SHAS[$n]}")
        [ ${#subj} -le 48 ] || subj="${subj:0:47}…"
        printf '| %d | %s %s |' "$n" "${CHV_SHAS[$n]:0:9}" "${subj//|/\\|}"
        for c in $CHV_CHECKS; do
            awk -F'\t' -v n="$n" -v c="$c" '$1 == n && $2 == c { printf " %s %ss |", $3, $4; f = 1 } END { if (!f) printf " - |" }' "$CHV_TSV"
        done
        echo
    done
}

# chv_series DIR SERIES FROM QUICK: verifies one series; status 1 when a
# check failed, 77 when the series does not exist.
chv_series() {
    local dir=$1 series=$2 from=$3 quick=$4 sdir base key n t0 fail=0 arch checks
    local -a patches
    t0=$(date +%s)
    sdir=$(chs_series_dir "$series") || return 1
    if [ ! -f "$sdir/series" ]; then
        echo "SKIP: series $series: $sdir/series does not exist yet"
        return 77
    fi
    base=$(chs_series_base "$series") || return 1
    mapfile -t patches < <(chs_series_patches "$sdir")
    [ "${#patches[@]}" -gt 0 ] || { chs_log "no patches in $sdir/series"; return 1; }
    CHV_TREE=$CHV_DIR/src-$(basename "$sdir")
    CHV_LOGS=$CHV_DIR/logs/$(basename "$sdir")
    CHV_TSV=$CHV_DIR/$(basename "$sdir").tsv
    rm -rf "$CHV_LOGS" && mkdir -p "$CHV_LOGS"
    : >"$CHV_TSV"
    chs_scratch "$dir" "$CHV_TREE" "$base"
    chs_apply "$CHV_TREE" "${patches[@]}"
    chs_git_deps "$CHV_TREE" "$CHV_MICRO_HTTP"
    CHV_N=${#patches[@]}
    CHV_SHAS=()
    mapfile -t -O 1 CHV_SHAS < <(git -C "$CHV_TREE" rev-list --reverse "$base..HEAD")
    chs_log "series $series: $CHV_N commits on ${base:0:12} (key $(chs_cache_key "$base" "${patches[@]}")), matrix $CHV_MATRIX${quick:+, quick}"
    for ((n = from; n <= CHV_N; n++)); do
        CHV_SHA=${CHV_SHAS[$n]}
        git -C "$CHV_TREE" checkout -q -f --detach "$CHV_SHA"
        CHV_TEST_SINCE=
        if [ "$n" -lt "$CHV_N" ] && [ -n "$quick" ]; then
            # the build and every check that takes seconds
            checks="build-aarch64 testbuild-x86_64 fmt gitlint dco typos reuse"
        else
            # test-x86_64 compiles what testbuild-x86_64 would.
            checks=${CHV_CHECKS/testbuild-x86_64 /}
            # --quick tests once, on the last commit: every crate the
            # series touches.
            [ -z "$quick" ] || CHV_TEST_SINCE=$base
        fi
        for c in $checks; do chv_check "$n" "$c"; done
    done
    # The whole unit-test suite, final tree vs. base (logs kept by commit).
    for arch in $CHV_SUITE_ARCHES; do
        if [ "$arch" = aarch64 ] && ! command -v "${CHS_QEMU_USER%% *}" >/dev/null; then
            continue
        fi
        chv_suite_cached "$arch" "${CHV_SHAS[$CHV_N]}" >/dev/null
        chv_suite_cached "$arch" "$base" >/dev/null
    done
    git -C "$CHV_TREE" checkout -q -f --detach "${CHV_SHAS[$CHV_N]}"
    printf 'matrix=%s\nquick=%s\nsuite=%s\nsuite_why=%s\nseconds=%s\n' "$CHV_MATRIX" "$quick" \
        "$CHV_SUITE_ARCHES" "${CHV_SUITE_WHY:-}" "$(($(date +%s) - t0))" >"$CHV_DIR/$(basename "$sdir").state"
    chv_render "$series"
}

# chv_norm_failed LOG: the failed tests of LOG without doc tests' line
# numbers (a commit that edits the file moves them).
chv_norm_failed() {
    chs_failed_tests "$1" | sed 's/ (line [0-9]*)$//' | sort -u
}

# chv_render SERIES: the Markdown report of the last run of SERIES (from
# .lab/verify: its table, check logs, suite logs and state), on stdout and
# in .lab/verify/<series>.md; status 1 when a check failed. A failed
# test-<arch> check whose failing tests all fail in the base's suite too
# (this machine's KVM, say) is shown as KNOWN and does not count.
chv_render() {
    local series=$1 sdir base name out suite fail=0 arch n c st sec log bl rustv
    local matrix quick suite_arches suite_why seconds
    sdir=$(chs_series_dir "$series") || return 1
    base=$(chs_series_base "$series") || return 1
    name=$(basename "$sdir")
    CHV_TREE=$CHV_DIR/src-$name
    CHV_LOGS=$CHV_DIR/logs/$name
    CHV_TSV=$CHV_DIR/$name.tsv
    [ -f "$CHV_DIR/$name.state" ] || { chs_log "no run of series $series in $CHV_DIR"; return 1; }
    matrix=$(sed -n 's/^matrix=//p' "$CHV_DIR/$name.state")
    quick=$(sed -n 's/^quick=//p' "$CHV_DIR/$name.state")
    suite_arches=$(sed -n 's/^suite=//p' "$CHV_DIR/$name.state")
    suite_why=$(sed -n 's/^suite_why=//p' "$CHV_DIR/$name.state")
    seconds=$(sed -n 's/^seconds=//p' "$CHV_DIR/$name.state")
    CHV_SHAS=()
    mapfile -t -O 1 CHV_SHAS < <(git -C "$CHV_TREE" rev-list --reverse "$base..HEAD")
    CHV_N=$((${#CHV_SHAS[@]}))
    rustv=$(rustc -V | awk '{ print $2 }')
    # Reclassify test failures the base shares.
    local tsv=$CHV_TSV.render
    : >"$tsv"
    while IFS=$'\t' read -r n c st sec; do
        if [ "$st" = FAIL ] && [ "${c%%-*}" = test ]; then
            arch=${c#test-}
            log=$CHV_LOGS/$(printf %02d "$n")-$c.log
            bl=$CHV_DIR/suite/$base-$arch-$rustv.log
            if [ -f "$bl" ] && [ -n "$(chv_norm_failed "$log")" ] &&
                ! grep -q '^error: could not compile' "$log" &&
                [ -z "$(comm -23 <(chv_norm_failed "$log") <(chv_norm_failed "$bl"))" ]; then
                st=KNOWN
            fi
        fi
        printf '%s\t%s\t%s\t%s\n' "$n" "$c" "$st" "$sec" >>"$tsv"
    done <"$CHV_TSV"
    grep -q '	FAIL	' "$tsv" && fail=1
    out=$CHV_DIR/$name.md
    suite=$CHV_DIR/$name.suite
    : >"$suite" && : >"$suite.notes"
    for arch in $suite_arches; do
        local bl2=$CHV_DIR/suite/$base-$arch-$rustv.log fl=$CHV_DIR/suite/${CHV_SHAS[$CHV_N]}-$arch-$rustv.log
        if [ -f "$bl2" ] && [ -f "$fl" ]; then
            chv_suite_report "$bl2" "$fl" "$arch" "$suite" || fail=1
        else
            echo "- $arch: not run (no qemu-user or interrupted)" >>"$suite.notes"
        fi
    done
    {
        echo "## Series $series ($CHV_N commits on ${base:0:12})"
        echo
        echo "Checks: matrix \`$matrix\`${quick:+, --quick (per commit: build-aarch64, testbuild-x86_64, fmt, gitlint, dco, typos, reuse; everything on the last, its tests for every crate the series touches)}; logs in \`${CHV_LOGS#"$CHS_ROOT"/}/\`; clippy steps:"
        for arch in $CHV_ARCHES; do
            echo "- $arch: $(CHV_MATRIX=$matrix chv_steps "$CHV_TREE" clippy "$arch" | sed -e 's/^clippy //' -e 's/ -- -D warnings$//' -e 's/.*--features "\([^"]*\)".*/\1/' -e 's/^--.*/default/' | paste -sd ';' | sed 's/;/; /g')"
        done
        echo
        CHV_TSV=$tsv chv_table
        echo
        echo "KNOWN: the check failed, but every failing test fails in the base's suite too (environment)."
        echo
        if [ -s "$suite" ]; then
            echo "CH unit-test suite (cargo test --lib --bins + --doc, --release --workspace), final tree vs. base:"
            echo
            echo "| target | tree | passed | failed | ignored | seconds |"
            echo "|---|---|---|---|---|---|"
            cat "$suite"
            echo
        else
            echo "CH unit-test suite: not run (${suite_why:-no target selected})"
        fi
        cat "$suite.notes"
        echo
        echo "Total: ${seconds:-?} s; result: $([ $fail = 0 ] && echo PASS || echo FAIL)"
    } >"$out"
    cat "$out"
    return $fail
}
