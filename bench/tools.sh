#!/usr/bin/env bash
# bench/tools.sh: what the tools cost on a big heap.
#
#   bench/tools.sh [-n REPEAT] [-c COUNT] [-z SIZE] [-b BUILDDIR]
#
# A process holds COUNT blocks of SIZE bytes (default 10,000,000 of 100:
# about 1 GiB), one in a thousand leaked (bench/leaky_heap.c).  Times, as
# the median of REPEAT runs (default 3):
#   leaks -quiet PID      the scan of the live process;
#   leaks PID             the same with the full report (stacks, symbols);
#   heap PID              the heap listed and grouped by allocation site;
#   LeakSanitizer         the same program built with gcc -fsanitize=leak:
#                         its run with leak detection less its run without,
#                         which is the cost of its scan at exit.
# and prints the ratio leaks/LeakSanitizer; then, on the full-mode log of
# the same program (COUNT allocation events):
#   heap LOG, malloc_history LOG -allBySize, malloc_history LOG -callTree.
# The targets: leaks at most 5 s and at most 2x LeakSanitizer; heap and
# malloc_history -allBySize on a log of 10 million events at most 2 s.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
builddir=${BENCH_BUILDDIR:-$(pwd)}
repeat=3 count=10000000 size=100
while getopts n:c:z:b: option; do
    case $option in
        n) repeat=$OPTARG ;;
        c) count=$OPTARG ;;
        z) size=$OPTARG ;;
        b) builddir=$OPTARG ;;
        *) echo "usage: bench/tools.sh [-n REPEAT] [-c COUNT] [-z SIZE] [-b BUILDDIR]" >&2
           exit 2 ;;
    esac
done

die() { echo "tools.sh: $*" >&2; exit 2; }
lib=$builddir/lib/.libs/libmallocdebug.so
for file in "$lib" "$builddir/tools/leaks" "$builddir/tools/heap"; do
    [ -e "$file" ] || die "$file is missing: run make first"
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mallocdebug-tools-bench.XXXXXX")
trap 'rm -rf "$tmp"; kill "${target_pid:-}" 2>/dev/null || true' EXIT
cc=${CC:-gcc}
$cc -O2 -o "$tmp/leaky_heap" "$here/leaky_heap.c" || die "cannot build leaky_heap"
$cc -O2 -fsanitize=leak -o "$tmp/leaky_heap_lsan" "$here/leaky_heap.c" ||
    die "cannot build with -fsanitize=leak (Debian: liblsan0)"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f\n", b - a }'; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# Times a command $repeat times: the median wall seconds.
time_command() {
    for _ in $(seq "$repeat"); do
        local start end
        start=$(now)
        "$@" >/dev/null 2>&1 || [ $? -le 1 ]
        end=$(now)
        elapsed "$start" "$end"
    done | median
}

# The target, alive until its input ends.
mkfifo "$tmp/input"
MallocStackLogging=lite MallocStackLoggingDirectory=$tmp LD_PRELOAD=$lib \
    "$tmp/leaky_heap" "$count" "$size" wait <"$tmp/input" >"$tmp/ready" &
target_pid=$!
exec 3>"$tmp/input"
for _ in $(seq 600); do
    grep -q ready "$tmp/ready" 2>/dev/null && break
    sleep 0.5
done
grep -q ready "$tmp/ready" || die "the target did not get ready"

leaks_quiet=$(time_command "$builddir/tools/leaks" -quiet "$target_pid")
leaks_full=$(time_command "$builddir/tools/leaks" "$target_pid")
heap_time=$(time_command "$builddir/tools/heap" "$target_pid")
leaks_found=$("$builddir/tools/leaks" -quiet "$target_pid" || true)
exec 3>&-
wait "$target_pid" || true
target_pid=

# Logs of full-mode runs, kept: the churn of bench/workload tiny at
# scale 0.25 (about 10 million events, 100,000 blocks live), and the
# leaky heap (COUNT events, every block live at the end: the worst case
# for a replay, whose live set is then as big as the log).
[ -x "$builddir/bench/workload" ] || die "bench/workload is missing: make bench/workload"
log_times() {
    local log
    log=$(ls "$tmp"/mallocdebug.*."$1".stacklog | head -1)
    events=$(( $(stat -c %s "$log") / 24 ))
    heap_log=$(time_command "$builddir/tools/heap" "$log")
    history_size=$(time_command "$builddir/tools/malloc_history" "$log" -allBySize)
    history_tree=$(time_command "$builddir/tools/malloc_history" "$log" -callTree)
    rm -f "$log"
}
MallocStackLogging=full MallocStackLoggingDontDeleteStackLogFile=1 \
    MallocStackLoggingDirectory=$tmp LD_PRELOAD=$lib \
    "$builddir/bench/workload" tiny 0.25 >/dev/null 2>&1
log_times workload
churn_events=$events churn_heap=$heap_log churn_size=$history_size churn_tree=$history_tree
MallocStackLogging=full MallocStackLoggingDontDeleteStackLogFile=1 \
    MallocStackLoggingDirectory=$tmp LD_PRELOAD=$lib \
    "$tmp/leaky_heap" "$count" "$size" exit 2>/dev/null
log_times leaky_heap

lsan_on=$(LSAN_OPTIONS=exitcode=0 time_command "$tmp/leaky_heap_lsan" "$count" "$size" exit)
lsan_off=$(LSAN_OPTIONS=detect_leaks=0 time_command "$tmp/leaky_heap_lsan" "$count" "$size" exit)
lsan_scan=$(elapsed "$lsan_off" "$lsan_on")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", (b > 0 ? a / b : 0) }'; }
printf '# bench/tools.sh: %s blocks of %s bytes, %s runs each, %s\n' \
    "$count" "$size" "$repeat" "$(date -u '+%Y-%m-%d %H:%M UTC')"
printf '# host: %s CPUs, %s\n' "$(nproc)" "$(uname -sr)"
printf '# leaks found: %s\n' "$leaks_found"
printf '| measure | seconds |\n|---|---:|\n'
printf '| leaks -quiet PID | %.2f |\n' "$leaks_quiet"
printf '| leaks PID (full report) | %.2f |\n' "$leaks_full"
printf '| heap PID | %.2f |\n' "$heap_time"
printf '| LeakSanitizer at exit (with - without detection) | %.2f |\n' "$lsan_scan"
printf '| heap LOG, churn (about %s events) | %.2f |\n' "$churn_events" "$churn_heap"
printf '| malloc_history LOG -allBySize, churn | %.2f |\n' "$churn_size"
printf '| malloc_history LOG -callTree, churn | %.2f |\n' "$churn_tree"
printf '| heap LOG, every block live (about %s events) | %.2f |\n' "$events" "$heap_log"
printf '| malloc_history LOG -allBySize, every block live | %.2f |\n' "$history_size"
printf '| malloc_history LOG -callTree, every block live | %.2f |\n' "$history_tree"
printf '| leaks -quiet / LeakSanitizer | %s |\n' "$(ratio "$leaks_quiet" "$lsan_scan")"
printf '| leaks (full) / LeakSanitizer | %s |\n' "$(ratio "$leaks_full" "$lsan_scan")"
