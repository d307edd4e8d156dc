#!/usr/bin/env bash
# The cost of the debugging options: each workload runs under the library
# with no option and with one option set, alternating, in the same run,
# and the table gives the option's time and peak-RSS ratios against no
# option.
#
#   bench/options.sh [-n REPEAT] [-s SCALE] [NAME...]
#
# NAMEs are workloads of bench/workload (default: tiny mid tree) or
# "python".  Needs `make` and `make bench/workload bench/measure` first.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh source-path=SCRIPTDIR
. "$here/common.sh"
builddir=${BENCH_BUILDDIR:-$here/..}
repeat=${BENCH_REPEAT:-3}
scale=${BENCH_SCALE:-0.25}
while getopts "n:s:h" opt; do
    case $opt in
    n) repeat=$OPTARG ;;
    s) scale=$OPTARG ;;
    *) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(tiny mid tree)

lib=${BENCH_LIB:-$builddir/lib/.libs/libmallocdebug.so}
workload=$builddir/bench/workload
measure=$builddir/bench/measure
for f in "$lib" "$workload" "$measure"; do
    [ -e "$f" ] || { echo "options.sh: $f is missing: run make and make bench/workload bench/measure" >&2; exit 2; }
done

# name|environment
option_sets=(
    "scribble|MallocScribble=1"
    "prescribble|MallocPreScribble=1"
    "zero-on-free|MallocZeroOnFree=1"
    "check-heap-1000|MallocCheckHeapStart=1 MallocCheckHeapEach=1000 MallocCheckHeapAbort=1"
    "canaries|MallocCanaries=1"
    "guard-edges|MallocGuardEdges=1"
    "guard-edges-all|MallocGuardEdges=all"
    "strictest|MallocScribble=1 MallocCanaries=1 MallocGuardEdges=all"
    "guard-malloc|MallocGuardMalloc=1"
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

command_for() {
    case $1 in
    python) echo "env PYTHONMALLOC=malloc python3 $here/py_workload.py $scale" ;;
    *) echo "$workload $1 $scale" ;;
    esac
}

# Prints "seconds kib" for one run; fails loudly on a bad exit.
run_once() {
    local settings=$1; shift
    # shellcheck disable=SC2086
    env $settings "$measure" -o "$tmp/res" -p "$lib" -- "$@" >"$tmp/out" 2>"$tmp/err" ||
        { echo "options.sh: '$settings $*' failed:" >&2; cat "$tmp/err" >&2; exit 1; }
    read -r seconds kib _ <"$tmp/res"
    echo "$seconds $kib"
}

printf '| %-10s | %-15s | %8s | %8s | %6s | %6s |\n' workload option "none s" "option s" "time x" "RSS x"
printf '|------------|-----------------|---------:|---------:|-------:|-------:|\n'
for name in "${workloads[@]}"; do
    read -r -a cmd <<<"$(command_for "$name")"
    for set in "${option_sets[@]}"; do
        label=${set%%|*}
        settings=${set#*|}
        : >"$tmp/base"; : >"$tmp/opt"
        for ((i = 0; i < repeat; i++)); do
            run_once "" "${cmd[@]}" >>"$tmp/base"
            run_once "$settings" "${cmd[@]}" >>"$tmp/opt"
        done
        bt=$(cut -d' ' -f1 "$tmp/base" | median low); ot=$(cut -d' ' -f1 "$tmp/opt" | median low)
        br=$(cut -d' ' -f2 "$tmp/base" | maximum); orss=$(cut -d' ' -f2 "$tmp/opt" | maximum)
        awk -v w="$name" -v o="$label" -v bt="$bt" -v ot="$ot" -v br="$br" -v orss="$orss" \
            'BEGIN { printf "| %-10s | %-15s | %8.3f | %8.3f | %6.2f | %6.2f |\n", w, o, bt, ot, ot / bt, orss / br }'
    done
done
