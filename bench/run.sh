#!/usr/bin/env bash
# Benchmark libmallocdebug.so against the system allocator (glibc).
#
#   bench/run.sh [-n REPEAT] [-s SCALE] [-b BUILDDIR] [-l LIB] [NAME...]
#
# Runs every benchmark (or only the NAMEs given) REPEAT times under glibc
# and under LD_PRELOAD=libmallocdebug.so, alternating the order in every
# repetition, and prints the median wall time and the largest peak RSS of
# each side with their ratios (library / glibc), then the geometric means.
# The two sides' outputs must be identical; a mismatch or a failing run is
# reported loudly and makes the script exit with status 1.
#
# Builds nothing: run `make` first (`make bench` does both).
#
# Environment (the options override it):
#   BENCH_REPEAT    repetitions per side (default 5)
#   BENCH_SCALE     iteration scale for bench/workload and py_workload.py (1)
#   BENCH_BUILDDIR  build tree (default: the directory above this script)
#   BENCH_LIB       the library (default BUILDDIR/lib/.libs/libmallocdebug.so)
#   BENCH_WORKLOAD  default BUILDDIR/bench/workload
#   BENCH_MEASURE   default BUILDDIR/bench/measure; /usr/bin/time if missing
#   BENCH_ONLY      space-separated benchmark names, like NAME...
#   BENCH_STRICT    if 1, also exit 1 when a project target is missed
#   BENCH_VERBOSE   if 1, print every run's time and peak RSS
#
# Targets: geometric-mean time ratio <= 1.0, no benchmark above 1.3x time,
# peak RSS <= 1.25x glibc.
set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repeat=${BENCH_REPEAT:-5}
scale=${BENCH_SCALE:-1}
builddir=${BENCH_BUILDDIR:-$here/..}
lib=${BENCH_LIB:-}
only=${BENCH_ONLY:-}

# shellcheck source=common.sh source-path=SCRIPTDIR
. "$here/common.sh"

usage() {
    sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//'
    exit 2
}

while getopts "n:s:b:l:h" opt; do
    case $opt in
    n) repeat=$OPTARG ;;
    s) scale=$OPTARG ;;
    b) builddir=$OPTARG ;;
    l) lib=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] && only="$*"

bench_paths
bench_setup

bench_names
bench_select "$only"

bench_header "mallocdebug benchmark"
echo "# $repeat runs per side, alternating; time = median wall seconds, RSS = max peak KiB"

failures=0

# Fixed cost: a process that makes one allocation.
name=startup
cmd=("$workload" startup)
rm -f "$tmp/glibc.res" "$tmp/lib.res"
if run_side glibc "" "${cmd[@]}" && run_side lib "$lib" "${cmd[@]}"; then
    read -r gt gm <"$tmp/glibc.res"
    read -r lt lm <"$tmp/lib.res"
    echo "# startup (one malloc): glibc ${gt}s ${gm} KiB, mallocdebug ${lt}s ${lm} KiB"
else
    failures=$((failures + 1))
fi
echo

rows=$tmp/rows
: >"$rows"
for name in $names; do
    bench_prepare "$name" || { failures=$((failures + 1)); continue; }
    bench_command "$name"
    rm -f "$tmp/glibc.res" "$tmp/lib.res"
    ok=1 reference=
    for rep in $(seq 1 "$repeat"); do
        if [ $((rep % 2)) -eq 1 ]; then order="glibc lib"; else order="lib glibc"; fi
        for side in $order; do
            if [ "$side" = lib ]; then preload=$lib; else preload=; fi
            if ! run_side "$side" "$preload" "${cmd[@]}" || ! check_output "$side" "$rep"; then
                ok=0
                break 2
            fi
        done
    done
    if [ $ok -eq 0 ]; then
        failures=$((failures + 1))
        printf '%s FAILED\n' "$name" >>"$rows"
        printf '%-10s FAILED\n' "$name" >&2
        continue
    fi
    gt=$(cut -d' ' -f1 "$tmp/glibc.res" | median)
    lt=$(cut -d' ' -f1 "$tmp/lib.res" | median)
    gm=$(cut -d' ' -f2 "$tmp/glibc.res" | maximum)
    lm=$(cut -d' ' -f2 "$tmp/lib.res" | maximum)
    echo "$name $gt $lt $gm $lm" >>"$rows"
    printf '%-10s done (glibc %.3fs, mallocdebug %.3fs)\n' "$name" "$gt" "$lt" >&2
done

awk -v strict="${BENCH_STRICT:-0}" '
function fmt_kib(k) { return k >= 10240 ? sprintf("%.1f MiB", k / 1024) : sprintf("%d KiB", k) }
BEGIN {
    printf "| %-10s | %9s | %11s | %6s | %10s | %13s | %6s | %-9s |\n",
        "benchmark", "glibc s", "mallocdbg s", "time x", "glibc RSS", "mallocdbg RSS", "RSS x", "flags"
    printf "|------------|----------:|------------:|-------:|-----------:|--------------:|-------:|-----------|\n"
}
$2 == "FAILED" {
    printf "| %-10s | %9s | %11s | %6s | %10s | %13s | %6s | %-9s |\n", $1, "-", "-", "-", "-", "-", "-", "FAILED"
    next
}
{
    tr = $3 / ($2 > 0 ? $2 : 1e-9); mr = $5 / ($4 > 0 ? $4 : 1)
    flags = ""
    if (tr > 1.3) { flags = flags "SLOW "; slow++ }
    if (mr > 1.25) { flags = flags "RSS"; fat++ }
    printf "| %-10s | %9.3f | %11.3f | %6.2f | %10s | %13s | %6.2f | %-9s |\n",
        $1, $2, $3, tr, fmt_kib($4), fmt_kib($5), mr, flags
    lt += log(tr); lm += log(mr); n++
}
END {
    if (n == 0) exit 1
    gt = exp(lt / n); gm = exp(lm / n)
    printf "\ngeometric mean over %d benchmarks: time ratio %.3f, peak RSS ratio %.3f\n", n, gt, gm
    printf "targets: time geomean <= 1.00 %s; no benchmark > 1.30x time %s (%d over); RSS <= 1.25x %s (%d over)\n",
        gt <= 1.0 ? "MET" : "MISSED", slow ? "MISSED" : "MET", slow,
        fat ? "MISSED" : "MET", fat
    if (strict == 1 && (gt > 1.0 || slow || fat)) exit 3
}' "$rows"
status=$?

if [ $failures -gt 0 ]; then
    echo
    echo "*** $failures benchmark(s) FAILED: crash or output mismatch between glibc and mallocdebug ***" >&2
    exit 1
fi
[ $status -eq 3 ] && exit 1
exit $status
