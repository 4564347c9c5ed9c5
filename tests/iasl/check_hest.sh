#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Independent check of the HEST bytes built by `ras::hest` / `ras::error_source`
# with the ACPICA disassembler (`iasl -d`, Debian package acpica-tools).
#
# 1. `cargo run -p ras_tools --example hest_samples -- DIR` writes sample tables
#    (DIR/*.aml) and damaged tables (DIR/negative/*). The fields each sample
#    must decode to are NOT taken from that program: they are written by
#    hand in tests/iasl/expected/<name>.expect from the documented region
#    layout (a sample without such a file fails).
# 2. Each table is disassembled. A table passes only if
#    - every line iasl prints on stderr is one of its informational lines
#      (anything else, e.g. "Incorrect checksum", fails),
#    - the .dsl has no `****` and no `Unknown` line,
#    - the header is HEST rev 1, its length equals the file size,
#    - every subtable is GHESv2 with the fixed fields we promise (enabled,
#      no related source, 64-bit qword system-memory GAS, notify length 28,
#      read-ack preserve 0xFFFFFFFE / write 1, max raw data = block length,
#      records/sections >= 1),
#    - error source count, source ids, notification types, ESA and read-ack
#      addresses, block lengths and poll intervals equal
#      tests/iasl/expected/<name>.expect.
# 3. Every positive sample must pass and every negative one must fail for
#    the reason listed in NEGATIVES below.
# 4. `rasctl decode` (which refuses what a Linux guest refuses) must accept
#    every sample and give each negative the verdict listed in NEGATIVES.
#
# Exit status: 0 pass, 1 failure, 77 skipped (iasl not installed; printed as
# "SKIP: iasl not installed").
#
# Environment: IASL (default: iasl), CARGO (default: cargo), KEEP=1 keeps the
# work directory.

set -uo pipefail

IASL=${IASL:-iasl}
CARGO=${CARGO:-cargo}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

if ! command -v "$IASL" >/dev/null 2>&1; then
    echo "SKIP: iasl not installed"
    exit 77
fi

EXPECTED="$ROOT/tests/iasl/expected"

# name | base sample | what the iasl check must report | what `rasctl decode`
# must report ("accepted": Linux takes the table as it is).
NEGATIVES=(
    "bad_checksum|x86_nmi_oracle|Incorrect checksum|HEST refused: Bad HEST checksum"
    "truncated_entry|arm64_gpio_1vcpu|ACPI table terminates in the middle|HEST refused: Truncated HEST entry 1 at offset 132: it needs 92 bytes, 84 are left"
    "count_plus_one|arm64_polled_4vcpu|decoded fields differ|HEST refused: HEST error source count 6 but the table holds only 5 entries"
    "changed_notification|arm64_polled_4vcpu|decoded fields differ|accepted"
    "unknown_subtable|arm64_gpio_8vcpu_4k|Unknown HEST subtable type 0x63|has type 99, which Linux does not know"
)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/check_hest.XXXXXX")
if [[ "${KEEP:-0}" != 1 ]]; then
    trap 'rm -rf "$WORK"' EXIT
else
    echo "keeping $WORK"
fi

if ! (cd "$ROOT" && "$CARGO" run -q -p ras_tools --example hest_samples -- "$WORK"); then
    echo "FAIL: could not generate the samples"
    exit 1
fi
if ! (cd "$ROOT" && "$CARGO" build -q -p rasctl); then
    echo "FAIL: could not build rasctl"
    exit 1
fi

# Expands a hand-written .expect file into one "count N" line and one line
# per source: "id notify esa ack len poll" (addresses 0x-prefixed hex).
expand_expect() {
    local a b c d e f g i esa
    while read -r a b c d e f g; do
        case $a in
            '' | '#'*) ;;
            count) echo "count $b" ;;
            each)
                for ((i = b; i <= c; i++)); do
                    esa=$((e + 16 * (i - b)))
                    printf '%d %d %#x %#x %d %d\n' "$i" "$d" "$esa" "$((esa + 8))" "$f" "$g"
                done
                ;;
            *) printf '%d %d %#x %#x %d %d\n' "$a" "$b" "$c" "$d" "$e" "$f" ;;
        esac
    done <"$1"
}

# What `rasctl decode` says of a table: "accepted" or its error message.
rasctl_verdict() {
    local err
    if err=$(cd "$ROOT" && "$CARGO" run -q -p rasctl -- decode "$1" 2>&1 >/dev/null); then
        echo accepted
    else
        echo "$err"
    fi
}

# Prints the decoded fields of a .dsl as lines:
#   header <signature> <revision> <length-hex>
#   count <hex>
#   entry <id> <notify> <esa> <ack> <len> <poll>   (all hex)
#   bad <reason>
decode_dsl() {
    awk -F' : ' '
    function val(s) { sub(/^ +/, "", s); sub(/ .*/, "", s); return s }
    function bad(msg) { print "bad " msg }
    /^\[/ {
        name = $1; sub(/^\[[^]]*\] */, "", name); sub(/ +$/, "", name)
        v = val($2)
        if (name == "Signature") sig = v
        else if (name == "Revision" && !in_entry) rev = v
        else if (name == "Table Length") tlen = v
        else if (name == "Error Source Count") print "count " v
        else if (name == "Subtable Type") {
            if (in_entry) bad("unterminated subtable before offset " $1)
            in_entry = 1; id = ""; nt = ""; esa = ""; ack = ""; len = ""; poll = ""; raw = ""
            if (v != "000A") bad("subtable type " v)
        }
        else if (name == "Source Id") id = v
        else if (name == "Related Source Id" && v != "FFFF") bad("related source " v)
        else if (name == "Enabled" && v != "01") bad("enabled " v)
        else if (name == "Records To Preallocate" && v ~ /^0+$/) bad("records to preallocate 0")
        else if (name == "Max Sections Per Record" && v ~ /^0+$/) bad("max sections 0")
        else if (name == "Max Raw Data Length") raw = v
        else if (name == "Error Status Address") ctx = "esa"
        else if (name == "Read Ack Register") ctx = "ack"
        else if (name == "Notify") ctx = "notify"
        else if (name == "Space ID" && v != "00") bad("space id " v)
        else if (name == "Bit Width" && v != "40") bad("bit width " v)
        else if (name == "Bit Offset" && v != "00") bad("bit offset " v)
        else if (name == "Encoded Access Width" && v != "04") bad("access width " v)
        else if (name == "Address") { if (ctx == "esa") esa = v; else if (ctx == "ack") ack = v }
        else if (name == "Notify Type") nt = v
        else if (name == "Notify Length" && v != "1C") bad("notify length " v)
        else if (name == "PollInterval") poll = v
        else if (name == "Error Status Block Length") len = v
        else if (name == "Read Ack Preserve" && v != "00000000FFFFFFFE") bad("preserve " v)
        else if (name == "Read Ack Write") {
            if (v != "0000000000000001") bad("write " v)
            if (raw != len) bad("max raw data length " raw " != block length " len)
            print "entry " id " " nt " " esa " " ack " " len " " poll
            in_entry = 0
        }
    }
    END {
        if (in_entry) bad("truncated subtable")
        print "header " sig " " rev " " tlen
    }' "$1"
}

# Checks one table; prints the reasons it fails, returns 0 if it passes.
check_one() {
    local aml=$1 expect=$2 dir base dsl errs=0
    dir=$(dirname "$aml"); base=$(basename "$aml" .aml); dsl="$dir/$base.dsl"
    rm -f "$dsl"
    (cd "$dir" && "$IASL" -d "$base.aml" >"$base.stdout" 2>"$base.stderr")
    if [[ ! -s "$dsl" ]]; then
        echo "    no .dsl produced"; return 1
    fi
    local unexpected
    unexpected=$(grep -v -E '^(File appears to be binary: found [0-9]+ non-ASCII characters, disassembling|Binary file appears to be a valid ACPI table, disassembling|Input file .*, Length 0x[0-9A-F]+ \([0-9]+\) bytes|ACPI: HEST 0x[0-9A-F]+ [0-9A-F]+ \(v01 .*\)|Acpi Data Table \[HEST\] decoded|Formatted output: .*|)$' "$dir/$base.stderr")
    if [[ -n "$unexpected" ]]; then
        echo "    iasl stderr: $unexpected"; errs=1
    fi
    if grep -n -E '\*\*\*\*|Unknown' "$dsl" | head -3 | sed 's/^/    dsl: /' | grep .; then
        errs=1
    fi

    local decoded
    decoded=$(decode_dsl "$dsl")
    if grep '^bad ' <<<"$decoded" | sed 's/^/    /' | grep .; then
        errs=1
    fi
    local sig rev tlen
    read -r _ sig rev tlen < <(grep '^header ' <<<"$decoded")
    if [[ "$sig" != '"HEST"' || "$rev" != 01 ]]; then
        echo "    header: signature $sig revision $rev"; errs=1
    fi
    local size
    size=$(stat -c %s "$aml")
    if [[ -z "$tlen" ]] || (( 16#$tlen != size )); then
        echo "    table length ${tlen:-?} != file size $size"; errs=1
    fi

    # Normalize the decoded fields into the .expect format.
    local got="$dir/$base.got"
    {
        local c
        c=$(awk '/^count /{print $2}' <<<"$decoded")
        echo "count $(( 16#${c:-0} ))"
        while read -r _ id nt esa ack len poll; do
            printf '%d %d %#x %#x %d %d\n' "0x$id" "0x$nt" "0x$esa" "0x$ack" "0x$len" "0x$poll"
        done < <(grep '^entry ' <<<"$decoded")
    } >"$got" 2>/dev/null
    if ! diff -u "$expect" "$got" >"$dir/$base.diff"; then
        echo "    decoded fields differ from the request:"
        head -n 12 "$dir/$base.diff" | sed 's/^/      /'
        errs=1
    fi
    return $errs
}

status=0
npos=0
for aml in "$WORK"/*.aml; do
    name=$(basename "$aml" .aml)
    npos=$((npos + 1))
    if [[ ! -f "$EXPECTED/$name.expect" ]]; then
        echo "FAIL $name: no hand-written tests/iasl/expected/$name.expect"; status=1
        continue
    fi
    expand_expect "$EXPECTED/$name.expect" >"$WORK/$name.want"
    verdict=$(rasctl_verdict "$aml")
    if out=$(check_one "$aml" "$WORK/$name.want") && [[ $verdict == accepted ]]; then
        echo "ok   $name"
    else
        echo "FAIL $name"; echo "$out"; echo "    rasctl decode: $verdict"; status=1
    fi
done
for f in "$EXPECTED"/*.expect; do
    name=$(basename "$f" .expect)
    if [[ ! -f "$WORK/$name.aml" ]]; then
        echo "FAIL $name: expected/$name.expect has no sample"; status=1
    fi
done
nneg=0
for row in "${NEGATIVES[@]}"; do
    IFS='|' read -r name base iasl_says rasctl_says <<<"$row"
    aml="$WORK/negative/$name.aml"
    nneg=$((nneg + 1))
    if [[ ! -f "$aml" ]]; then
        echo "FAIL negative/$name: not generated"; status=1
        continue
    fi
    expand_expect "$EXPECTED/$base.expect" >"$WORK/negative/$name.want"
    verdict=$(rasctl_verdict "$aml")
    if out=$(check_one "$aml" "$WORK/negative/$name.want"); then
        echo "FAIL negative/$name: damaged table was accepted"; status=1
    elif ! grep -qF -- "$iasl_says" <<<"$out"; then
        echo "FAIL negative/$name: rejected, but not for \"$iasl_says\":"; echo "$out"; status=1
    elif ! grep -qF -- "$rasctl_says" <<<"$verdict"; then
        echo "FAIL negative/$name: rasctl decode said \"$verdict\", not \"$rasctl_says\""; status=1
    else
        echo "ok   negative/$name rejected: $(echo "$out" | head -n 1 | sed 's/^ *//'); rasctl: ${verdict#rasctl: *: }"
    fi
done
for aml in "$WORK"/negative/*.aml; do
    name=$(basename "$aml" .aml)
    if ! printf '%s\n' "${NEGATIVES[@]}" | grep -q "^$name|"; then
        echo "FAIL negative/$name: not listed in NEGATIVES"; status=1
    fi
done
if (( npos < 5 || nneg < 5 )); then
    echo "FAIL: expected at least 5 samples and 5 negatives, got $npos and $nneg"
    status=1
fi
if (( status == 0 )); then
    echo "PASS: $npos HEST samples decoded by $("$IASL" -v 2>/dev/null | grep -o 'version [0-9]*' | head -n 1), $nneg damaged tables rejected"
fi
exit $status
