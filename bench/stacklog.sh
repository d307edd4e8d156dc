#!/usr/bin/env bash
# The cost of MallocStackLogging, against glibc, the library without
# logging, and heaptrack.
#
#   bench/stacklog.sh [-n REPEAT] [-s SCALE] [-b BUILDDIR] [-l LIB] [NAME...]
#
# Runs every benchmark of run.sh (or only the NAMEs given) REPEAT times on
# each of these sides, in the same run, rotating their order in every
# repetition:
#   glibc      the system allocator, nothing preloaded
#   nolog      LD_PRELOAD=libmallocdebug.so
#   lite       the same with MallocStackLogging=lite
#   full       the same with MallocStackLogging=full (compacting, the
#              default); the log is kept and read with bench/log_stats
#   heaptrack  heaptrack -o TMP/ht COMMAND, timed as a whole (with its
#              interpreting and compressing processes); its output file
#              is removed after each run.  Left out if heaptrack is not
#              installed.
# Each logging run gets its own MallocStackLoggingDirectory, removed after
# the run.  The report gives, per benchmark, the median wall time of each
# side and their ratios, the peak RSS ratios, and the memory full mode's
# log takes per recorded event ("n/a" when the library wrote no log): its
# allocated blocks, since pages of its chunks that the writer has not
# reached are holes in the file, which take nothing.  Every
# side's standard output (a checksum) must be the same; a mismatch or a
# failing run is reported and makes the script exit with status 1.
#
# Builds nothing: run `make` and `make bench/workload bench/measure
# bench/log_stats bench/first_touch` first (`make bench-stacklog` does
# both).  When bench/first_touch is built, the report starts with what
# fresh memory costs on the machine, which full mode's ratios depend on.
#
# Environment (the options override it):
#   BENCH_REPEAT     repetitions per side (default 3)
#   BENCH_SCALE      iteration scale for bench/workload and py_workload.py
#                    (default 0.25: heaptrack is slow)
#   BENCH_BUILDDIR, BENCH_LIB, BENCH_WORKLOAD, BENCH_MEASURE, BENCH_ONLY,
#   BENCH_VERBOSE    as for run.sh
#   BENCH_LOG_STATS  default BUILDDIR/bench/log_stats
#   BENCH_HEAPTRACK  the heaptrack command (default: heaptrack in PATH);
#                    "none" leaves heaptrack out
#   BENCH_LOGDIR     where the logging runs' directories are made (default
#                    /dev/shm, the library's own default, else TMPDIR)
#   BENCH_STRICT     if 1, also exit 1 when a target is missed
#
# Targets: on tiny, the most malloc-bound workload, lite <= 3x and full
# <= 4x glibc; on every benchmark, lite and full at least 3x faster than
# heaptrack; on threads2 and threads4, each logging mode's cost (its
# ratio to nolog, so that the allocator's own scaling does not count) at
# most 1.25 times its cost on threads1, one thread doing the job each
# thread of threads2 does (on 2 CPUs, threads4 puts as much work on each
# as threads2): logging must not add contention between threads; full
# mode's log at most 32 bytes per recorded event.
set -u
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repeat=${BENCH_REPEAT:-3}
scale=${BENCH_SCALE:-0.25}
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
log_stats=${BENCH_LOG_STATS:-$builddir/bench/log_stats}
first_touch=$builddir/bench/first_touch
bench_setup

bench_names
bench_select "$only"

sides="glibc nolog lite full"
heaptrack=${BENCH_HEAPTRACK:-heaptrack}
if [ "$heaptrack" = none ]; then
    heaptrack=
    heaptrack_note="left out (BENCH_HEAPTRACK=none)"
elif heaptrack=$(command -v "$heaptrack"); then
    sides="$sides heaptrack"
    heaptrack_note="$heaptrack ($("$heaptrack" --version 2>/dev/null | head -1)); not run on git-repack (it follows only the process it starts)"
else
    heaptrack=
    heaptrack_note="not installed, left out"
fi
if [ ! -x "$log_stats" ]; then
    echo "$bench_prog: $log_stats not built (make bench/log_stats): log sizes will read n/a" >&2
    log_stats=
fi

logroot=${BENCH_LOGDIR:-/dev/shm}
[ -d "$logroot" ] && [ -w "$logroot" ] || logroot=$tmp
logdir=
trap 'rm -rf "$tmp" ${logdir:+"$logdir"}' EXIT
mkdir "$tmp/ht" || die "cannot make $tmp/ht"

bench_header "mallocdebug stack logging benchmark"
echo "# heaptrack: $heaptrack_note"
echo "# $repeat runs per side, order rotated every run; scale $scale; logs in $logroot"
echo "# time = median wall seconds; RSS = max peak KiB; full log = the memory the log takes"
echo "# (its allocated blocks, as du counts them; log file = its length, holes included)"

# ---- one run of one side ----------------------------------------------------

# The benchmark's command without its leading `env VAR=VALUE...`: the
# settings go to the timer's environment instead (cmd_env), so no `env`
# process runs under the allocator or under heaptrack, which would lose
# track of the program after the exec.
split_command() {
    cmd_env=()
    argv=("${cmd[@]}")
    if [ "${argv[0]}" = env ]; then
        argv=("${argv[@]:1}")
        while [ ${#argv[@]} -gt 1 ] && [ "${argv[0]#*=}" != "${argv[0]}" ]; do
            cmd_env+=("${argv[0]}")
            argv=("${argv[@]:1}")
        done
    fi
}

# heaptrack prints three lines before the program runs and a few after it
# ends on standard output: keep only the program's.
strip_heaptrack_output() {
    awk '{ l[NR] = $0 }
    END {
        first = 1
        while (first <= NR && (l[first] ~ /^heaptrack output will be written to / ||
                               l[first] ~ /libheaptrack_preload\.so$/ ||
                               l[first] ~ /^starting application, this might take some time/))
            first++
        last = NR
        for (i = NR; i >= first; i--)
            if (l[i] ~ /^Heaptrack finished! Now run the following/) { last = i - 1; break }
        for (i = first; i <= last; i++) print l[i]
    }' "$tmp/out" >"$tmp/out.program" && mv "$tmp/out.program" "$tmp/out"
}

# Appends "size events compacted nodes" of the logs in $logdir (all of
# them: a program that runs others leaves one per process) to
# $tmp/full.log, or "n/a" when there is none.
record_log_stats() {
    local logs=() line
    if [ -n "$log_stats" ]; then
        shopt -s nullglob
        logs=("$logdir"/mallocdebug.*.stacklog)
        shopt -u nullglob
    fi
    if [ ${#logs[@]} -eq 0 ]; then
        echo "n/a" >>"$tmp/full.log"
        return 0
    fi
    "$log_stats" "${logs[@]}" >"$tmp/log_stats" 2>"$tmp/log_stats.err" ||
        sed "s/^/  $name: /" "$tmp/log_stats.err" >&2
    line=$(tail -1 "$tmp/log_stats")
    awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
           if (f["size"] == "") print "n/a"
           else print f["allocated"], f["events"], f["compacted"], f["nodes"], f["size"] }' <<<"$line" >>"$tmp/full.log"
    [ "${BENCH_VERBOSE:-0}" = 1 ] && sed "s/^/  $name full log: /" "$tmp/log_stats" >&2
    return 0
}

# run_one SIDE: runs the benchmark once on SIDE; 1 on failure.
run_one() {
    local side=$1 status=0
    bench_env=(${cmd_env[@]+"${cmd_env[@]}"})
    case $side in
    glibc) run_side glibc "" "${argv[@]}" || status=1 ;;
    nolog) run_side nolog "$lib" "${argv[@]}" || status=1 ;;
    lite | full)
        logdir=$(mktemp -d "$logroot/mallocdebug-stacklog.XXXXXX") || die "mktemp in $logroot failed"
        bench_env+=(MallocStackLogging="$side" MallocStackLoggingDirectory="$logdir")
        [ "$side" = full ] && bench_env+=(MallocStackLoggingDontDeleteStackLogFile=1)
        run_side "$side" "$lib" "${argv[@]}" || status=1
        [ $status -eq 0 ] && [ "$side" = full ] && record_log_stats
        rm -rf "$logdir"
        logdir=
        ;;
    heaptrack)
        run_side heaptrack "" "$heaptrack" -o "$tmp/ht/ht" "${argv[@]}" || status=1
        rm -f "$tmp/ht/"*
        [ $status -eq 0 ] && strip_heaptrack_output
        ;;
    esac
    bench_env=()
    return $status
}

# ---- the benchmarks ---------------------------------------------------------

failures=0

# Fixed cost: a process that makes one allocation.
name=startup
cmd=("$workload" startup)
split_command
line="# startup (one malloc):"
for side in $sides; do
    rm -f "$tmp/$side.res" "$tmp/full.log"
    if run_one "$side"; then
        read -r t m <"$tmp/$side.res"
        line="$line $side ${t}s ${m} KiB,"
    else
        failures=$((failures + 1))
    fi
done
echo "${line%,}"
# What fresh memory costs here: full mode writes its log into it, so
# its ratios depend on it (see bench/README.md, "Where full mode's time
# goes").
if [ -x "$first_touch" ]; then
    "$first_touch" 64 2>&1 | sed -n 's/^\/dev\/shm *\(.*\)/# fresh memory in \/dev\/shm (first_touch 64): \1/p'
fi
echo

rows=$tmp/rows
: >"$rows"
for name in $names; do
    bench_prepare "$name" || { failures=$((failures + 1)); continue; }
    bench_command "$name"
    if [ "$name" = perl ]; then
        # heaptrack records the command line in its line-based data,
        # which a newline in an argument breaks: give perl a file.
        printf '%s\n' "$perl_script" >"$tmp/workload.pl"
        cmd=(env PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0 perl "$tmp/workload.pl")
    fi
    split_command
    read -r -a side_list <<<"$sides"
    if [ "$name" = git-repack ]; then
        # heaptrack follows only the process it starts, and git repack
        # leaves the work to a child (git pack-objects).
        read -r -a side_list <<<"${sides% heaptrack}"
    fi
    nsides=${#side_list[@]}
    for side in $sides; do rm -f "$tmp/$side.res"; done
    rm -f "$tmp/full.log"
    ok=1 reference=
    for rep in $(seq 1 "$repeat"); do
        # Rotate: over the runs every side takes every place in the order.
        off=$(((rep - 1) % nsides))
        order="${side_list[*]:off} ${side_list[*]:0:off}"
        for side in $order; do
            if ! run_one "$side" || ! check_output "$side" "$rep"; then
                ok=0
                break 2
            fi
        done
    done
    if [ $ok -eq 0 ]; then
        failures=$((failures + 1))
        echo "$name FAILED" >>"$rows"
        printf '%-10s FAILED\n' "$name" >&2
        continue
    fi
    row=$name
    for side in glibc nolog lite full heaptrack; do
        if [ -s "$tmp/$side.res" ]; then
            row="$row $(cut -d' ' -f1 "$tmp/$side.res" | median) $(cut -d' ' -f2 "$tmp/$side.res" | maximum)"
        else
            row="$row - -"
        fi
    done
    # Full mode's log: the median memory, counts and length over the runs.
    if [ -s "$tmp/full.log" ] && ! grep -q 'n/a' "$tmp/full.log"; then
        for f in 1 2 3 4 5; do row="$row $(cut -d' ' -f$f "$tmp/full.log" | median)"; done
    else
        row="$row n/a n/a n/a n/a n/a"
    fi
    echo "$row" >>"$rows"
    printf '%-10s done (glibc %.3fs, lite %.3fs, full %.3fs%s)\n' "$name" \
        "$(cut -d' ' -f1 "$tmp/glibc.res" | median)" "$(cut -d' ' -f1 "$tmp/lite.res" | median)" \
        "$(cut -d' ' -f1 "$tmp/full.res" | median)" \
        "$([ -s "$tmp/heaptrack.res" ] && printf ', heaptrack %.3fs' "$(cut -d' ' -f1 "$tmp/heaptrack.res" | median)")" >&2
done

# rows: name, then time and RSS of glibc nolog lite full heaptrack ("-"
# when not run), then full log memory, events, compacted, nodes and file
# length ("n/a").
awk -v strict="${BENCH_STRICT:-0}" '
function fmt_kib(k) { return k >= 10240 ? sprintf("%.1f MiB", k / 1024) : sprintf("%d KiB", k) }
function fmt_bytes(b) {
    return b >= 10485760 ? sprintf("%.1f MiB", b / 1048576) : b >= 10240 ? sprintf("%d KiB", b / 1024) : sprintf("%d B", b)
}
function div(a, b) { return a / (b > 0 ? b : 1e-9) }
function ratio(a, b) { return (a == "-" || b == "-") ? "-" : sprintf("%.2f", div(a, b)) }
function result(miss, na) { return na ? "n/a" : miss ? "MISSED" : "MET" }
$2 == "FAILED" { failed[++nfailed] = $1; next }
{
    n++; bench[n] = $1
    gt[n] = $2; gm[n] = $3; nt[n] = $4; nm[n] = $5; lt[n] = $6; lm[n] = $7
    ft[n] = $8; fm[n] = $9; ht[n] = $10; hm[n] = $11
    size[n] = $12; events[n] = $13; compacted[n] = $14; nodes[n] = $15; filelen[n] = $16
    row[$1] = n
}
END {
    if (n == 0 && nfailed == 0) exit 1
    printf "| %-10s | %7s | %7s | %7s | %7s | %8s | %10s | %10s | %10s | %10s | %9s | %9s | %10s | %-9s |\n",
        "benchmark", "glibc s", "nolog s", "lite s", "full s", "htrack s", "lite/glibc", "full/glibc",
        "lite/nolog", "full/nolog", "ht/lite", "ht/full", "ht/glibc", "flags"
    printf "|------------|--------:|--------:|--------:|--------:|---------:|-----------:|-----------:|-----------:|-----------:|----------:|----------:|-----------:|-----------|\n"
    for (i = 1; i <= n; i++) {
        flags = ""
        if (ratio(ht[i], lt[i]) != "-" && div(ht[i], lt[i]) < 3) flags = flags "HT-LITE "
        if (ratio(ht[i], ft[i]) != "-" && div(ht[i], ft[i]) < 3) flags = flags "HT-FULL "
        if (bench[i] == "tiny" && div(lt[i], gt[i]) > 3) flags = flags "LITE "
        if (bench[i] == "tiny" && div(ft[i], gt[i]) > 4) flags = flags "FULL "
        if (size[i] != "n/a" && events[i] > 0 && size[i] / events[i] > 32) flags = flags "LOG"
        sub(/ $/, "", flags)
        printf "| %-10s | %7.3f | %7.3f | %7.3f | %7.3f | %8s | %10s | %10s | %10s | %10s | %9s | %9s | %10s | %-9s |\n",
            bench[i], gt[i], nt[i], lt[i], ft[i], ht[i] == "-" ? "-" : sprintf("%.3f", ht[i]),
            ratio(lt[i], gt[i]), ratio(ft[i], gt[i]), ratio(lt[i], nt[i]), ratio(ft[i], nt[i]),
            ratio(ht[i], lt[i]), ratio(ht[i], ft[i]), ratio(ht[i], gt[i]), flags
    }
    for (i = 1; i <= nfailed; i++)
        printf "| %-10s | %7s | %7s | %7s | %7s | %8s | %10s | %10s | %10s | %10s | %9s | %9s | %10s | %-9s |\n",
            failed[i], "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "FAILED"

    printf "\n| %-10s | %10s | %7s | %7s | %7s | %7s | %10s | %10s | %10s | %9s | %9s | %9s | %8s |\n",
        "benchmark", "glibc RSS", "nolog x", "lite x", "full x", "htrack x", "full log", "log file",
        "events", "compacted", "nodes", "B/event", "B/op"
    printf "|------------|-----------:|--------:|--------:|--------:|---------:|-----------:|-----------:|-----------:|----------:|----------:|----------:|---------:|\n"
    for (i = 1; i <= n; i++) {
        if (size[i] == "n/a") {
            logsz = "n/a"; logfile = "n/a"; ev = "n/a"; cp = "n/a"; nd = "n/a"; bpe = "n/a"; bpo = "n/a"
        } else {
            logsz = fmt_bytes(size[i]); logfile = fmt_bytes(filelen[i])
            ev = events[i]; cp = compacted[i]; nd = nodes[i]
            bpe = events[i] > 0 ? sprintf("%.2f", size[i] / events[i]) : "n/a"
            bpo = events[i] + compacted[i] > 0 ? sprintf("%.2f", size[i] / (events[i] + compacted[i])) : "n/a"
        }
        printf "| %-10s | %10s | %7s | %7s | %7s | %8s | %10s | %10s | %10s | %9s | %9s | %9s | %8s |\n",
            bench[i], fmt_kib(gm[i]), ratio(nm[i], gm[i]), ratio(lm[i], gm[i]), ratio(fm[i], gm[i]),
            ratio(hm[i], gm[i]), logsz, logfile, ev, cp, nd, bpe, bpo
    }

    # ---- targets ----
    missed = 0
    print "\ntargets:"
    i = row["tiny"]
    if (i) {
        r = div(lt[i], gt[i]); m = r > 3
        printf "  tiny: lite <= 3.00x glibc: %s (%.2fx)\n", result(m, 0), r; missed += m
        r = div(ft[i], gt[i]); m = r > 4
        printf "  tiny: full <= 4.00x glibc: %s (%.2fx)\n", result(m, 0), r; missed += m
    } else {
        print "  tiny: lite <= 3.00x, full <= 4.00x glibc: n/a (no tiny result)"
    }
    split("lite full", modes, " ")
    for (k = 1; k <= 2; k++) {
        mode = modes[k]; worst = ""; over = ""; nh = 0
        for (i = 1; i <= n; i++) {
            if (ht[i] == "-") continue
            t = mode == "lite" ? lt[i] : ft[i]
            r = div(ht[i], t); nh++
            if (worst == "" || r < worst) { worst = r; worst_name = bench[i] }
            if (r < 3) over = over " " bench[i]
        }
        if (nh == 0) {
            printf "  heaptrack >= 3x slower than %s on every benchmark: n/a (heaptrack not run)\n", mode
        } else {
            printf "  heaptrack >= 3x slower than %s on every benchmark: %s (lowest %.2fx, %s)%s\n",
                mode, result(over != "", 0), worst, worst_name, over != "" ? "; below 3x:" over : ""
            missed += over != ""
        }
    }
    for (k = 1; k <= 2; k++) {
        mode = modes[k]
        a = row["threads1"]; b = row["threads2"]; c = row["threads4"]
        if (!a || (!b && !c)) {
            printf "  threads scaling, %s/nolog: n/a (needs threads1 and threads2 or threads4)\n", mode
            continue
        }
        # The cost of logging alone: against the library without it.
        base = div(mode == "lite" ? lt[a] : ft[a], nt[a])
        line = ""; m = 0
        if (b) { r2 = div(mode == "lite" ? lt[b] : ft[b], nt[b]); line = line sprintf("threads2 %.2fx, ", r2); m += r2 > 1.25 * base }
        if (c) { r4 = div(mode == "lite" ? lt[c] : ft[c], nt[c]); line = line sprintf("threads4 %.2fx, ", r4); m += r4 > 1.25 * base }
        if (b && c) line = line sprintf("threads4/threads2 %.2f, ", div(r4, r2))
        printf "  threads scaling, %s/nolog: %sthreads1 %.2fx; each <= 1.25 x threads1: %s\n", mode, line, base, result(m, 0)
        missed += m > 0
    }
    worst = ""; over = ""
    for (i = 1; i <= n; i++) {
        if (size[i] == "n/a" || events[i] <= 0) continue
        r = size[i] / events[i]
        if (worst == "" || r > worst) { worst = r; worst_name = bench[i] }
        if (r > 32) over = over " " bench[i]
    }
    if (worst == "")
        print "  full log <= 32 bytes per recorded event: n/a (no log found: the library wrote none)"
    else {
        printf "  full log <= 32 bytes per recorded event: %s (highest %.2f, %s)%s\n",
            result(over != "", 0), worst, worst_name, over != "" ? "; above:" over : ""
        missed += over != ""
    }
    printf "%d target(s) missed\n", missed
    if (strict == 1 && missed) exit 3
}' "$rows"
status=$?

if [ $failures -gt 0 ]; then
    echo
    echo "*** $failures benchmark(s) FAILED: crash or output mismatch between the sides ***" >&2
    exit 1
fi
[ $status -eq 3 ] && exit 1
exit $status
