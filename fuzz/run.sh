#!/bin/sh
# Runs one fuzz target with its seed corpora: fuzz/run.sh TARGET [SECONDS] [cargo fuzz options].
# New inputs go to fuzz/corpus/TARGET (not kept in git); crashes to fuzz/artifacts/TARGET.
# The machine's stable toolchain takes cargo-fuzz's -Z flags with RUSTC_BOOTSTRAP=1.
set -eu
target=$1
seconds=${2:-600}
shift $(( $# < 2 ? $# : 2 ))
here=$(cd "$(dirname "$0")" && pwd)
data=$here/../tests/data
case $target in
    domain_xml) seeds="$data/domains/valid $data/domains/odd" ;;
    snapshot_xml) seeds="$here/seeds/snapshot_xml $data/domains/valid" ;;
    diskspec) seeds=$here/seeds/diskspec ;;
    vmx) seeds=$data/vmx ;;
    vmsd) seeds=$data/vmx/vmsd ;;
    vmdk_descriptor) seeds=$here/seeds/vmdk_descriptor ;;
    xl_cfg) seeds=$here/seeds/xl_cfg ;;
    xl_diskspec) seeds=$here/seeds/xl_diskspec ;;
    *) echo "unknown target $target; targets: $(ls "$here/fuzz_targets" | sed 's/\.rs$//' | tr '\n' ' ')" >&2; exit 2 ;;
esac
mkdir -p "$here/corpus/$target"
cd "$here"
# shellcheck disable=SC2086 # $seeds is a list of folders
RUSTC_BOOTSTRAP=1 exec cargo fuzz run "$@" "$target" "corpus/$target" $seeds -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
