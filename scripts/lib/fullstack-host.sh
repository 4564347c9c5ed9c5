# SPDX-License-Identifier: Apache-2.0
#
# The host side of both full stacks (bash; source it): the options
# scripts/fullstack/run.sh (arm64) and scripts/fullstack-x86/run.sh
# (x86_64) share, and where their binaries come from.

# fullstack_opt ARGS...: when "$1" is one of the options both take (--ch
# BIN, --ch-remote BIN, --only "N ...", --timeout SECONDS, or a word
# without a dash: the cloud-hypervisor binary), sets CH_BIN, CH_REMOTE,
# ONLY or L1_TIMEOUT and FS_SHIFT to the number of words it used (the
# caller shifts them); FS_SHIFT=0 for any other option.
fullstack_opt() {
    FS_SHIFT=2
    case "$1" in
        --ch) CH_BIN=${2:-} ;;
        --ch-remote) CH_REMOTE=${2:-} ;;
        --only) ONLY=$2 ;;
        --timeout) L1_TIMEOUT=$2 ;;
        -*) FS_SHIFT=0 ;;
        *) CH_BIN=$1; FS_SHIFT=1 ;;
    esac
}

# fullstack_bins: CH_BIN made absolute; CH_REMOTE, when none was given, the
# ch-remote next to CH_BIN if there is one.
fullstack_bins() {
    CH_BIN=$(readlink -f "$CH_BIN")
    if [ -z "$CH_REMOTE" ] && [ -x "$(dirname "$CH_BIN")/ch-remote" ]; then
        CH_REMOTE=$(dirname "$CH_BIN")/ch-remote
    fi
}
