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

lib=${lib:-$builddir/lib/.libs/libmallocdebug.so}
workload=${BENCH_WORKLOAD:-$builddir/bench/workload}
measure=${BENCH_MEASURE:-$builddir/bench/measure}

die() { echo "run.sh: $*" >&2; exit 2; }
case $repeat in '' | *[!0-9]* | 0) die "bad repeat count '$repeat'" ;; esac
[ -f "$lib" ] || die "no library at $lib (run make first, or set BENCH_LIB)"
lib=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")
lib_source=$lib
[ -x "$workload" ] || die "no workload program at $workload (run make bench/workload)"

if [ -x "$measure" ]; then
    timer=measure
elif [ -x /usr/bin/time ]; then
    timer="time"
    echo "run.sh: $measure not built, using /usr/bin/time (10 ms resolution)" >&2
else
    die "neither $measure nor /usr/bin/time is available"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mallocdebug-bench.XXXXXX") || die "mktemp failed"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# Measure one snapshot of the library, even if it is rebuilt meanwhile.
cp "$lib" "$tmp/libmallocdebug.so" || die "cannot copy $lib"
lib=$tmp/libmallocdebug.so

# ---- the benchmarks ---------------------------------------------------------

names=$("$workload" --list | tr '\n' ' ') || die "$workload --list failed"

python=
if command -v python3 >/dev/null 2>&1; then
    # The real interpreter, not a pyenv/asdf shim script.
    python=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))' 2>/dev/null)
fi
[ -n "$python" ] && [ -f "$here/py_workload.py" ] && names="$names python"
command -v perl >/dev/null 2>&1 && names="$names perl"
command -v git >/dev/null 2>&1 && names="$names git-log git-repack"

if [ -n "$only" ]; then
    for n in $only; do
        case " $names " in *" $n "*) ;; *) die "unknown benchmark '$n' (have: $names)" ;; esac
    done
    names=$only
fi

perl_script='
my %h; my $s = 1; my $x = 0;
for my $r (1..2) {
    for my $i (1..300000) {
        $s = ($s * 1103515245 + 12345) % 2147483648;
        my $k = "key" . ($s % 200000);
        $h{$k} .= chr(97 + $s % 26) x (1 + $s % 7);
    }
    my @k = sort keys %h;
    my $t = join(",", map { substr($h{$_}, 0, 3) . length($h{$_}) } @k);
    $x = ($x * 31 + unpack("%32C*", $t) + scalar(@k)) % 4294967296;
    %h = ();
}
print "$x\n";'

# A throw-away repository with deterministic history, made once, under
# the system allocator, outside the measurement.
make_git_repo() {
    local repo=$tmp/git-repo i f
    export GIT_CONFIG_NOSYSTEM=1 HOME=$tmp GIT_PAGER=cat
    export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.org
    export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.org
    git init -q "$repo" || return 1
    for i in $(seq 1 150); do
        for f in $(seq $((i % 7)) 7 60); do
            awk -v i="$i" -v f="$f" 'BEGIN {
                for (l = 0; l < 200; l++)
                    printf "file %d line %d value %d\n", f, l,
                        (l * 7 + f * 13 + (l % 17 == i % 17 ? i : 0)) % 1000 }' \
                >"$repo/f$f.txt"
        done
        git -C "$repo" add -A &&
            GIT_AUTHOR_DATE="@$((1600000000 + i * 60)) +0000" \
            GIT_COMMITTER_DATE="@$((1600000000 + i * 60)) +0000" \
            git -C "$repo" commit -q -m "commit $i" || return 1
    done
    git_repo=$repo
}

# Sets cmd=(...) for benchmark $1.
bench_command() {
    case $1 in
    python) cmd=(env PYTHONMALLOC=malloc PYTHONHASHSEED=0 "$python" "$here/py_workload.py" "$scale") ;;
    perl) cmd=(env PERL_HASH_SEED=0 PERL_PERTURB_KEYS=0 perl -e "$perl_script") ;;
    git-log) cmd=(git -C "$git_repo" log -p --stat --no-color) ;;
    # Delta search over the whole history, threaded; prints nothing.
    git-repack) cmd=(git -C "$git_repo" repack -a -d -f -q --window=100) ;;
    *) cmd=("$workload" "$1" "$scale") ;;
    esac
}

# ---- measuring --------------------------------------------------------------

# run_side SIDE OUTFILE: runs "${cmd[@]}"; appends "time rss" to $tmp/SIDE.res.
failures=0
run_side() {
    local side=$1 out=$2 res=$tmp/res status
    if [ $timer = measure ]; then
        if [ "$side" = lib ]; then
            "$measure" -o "$res" -p "$lib" -- "${cmd[@]}" >"$out" 2>"$tmp/stderr"
        else
            "$measure" -o "$res" -- "${cmd[@]}" >"$out" 2>"$tmp/stderr"
        fi
    else
        if [ "$side" = lib ]; then
            /usr/bin/time -o "$res" -f '%e %M %x' env LD_PRELOAD="$lib" "${cmd[@]}" >"$out" 2>"$tmp/stderr"
        else
            /usr/bin/time -o "$res" -f '%e %M %x' "${cmd[@]}" >"$out" 2>"$tmp/stderr"
        fi
    fi
    status=$?
    if [ $status -ne 0 ] || [ ! -s "$res" ]; then
        echo "FAIL: $name under $side exited with status $status" >&2
        sed 's/^/  | /' "$tmp/stderr" | head -20 >&2
        return 1
    fi
    read -r t m _ <"$res"
    echo "$t $m" >>"$tmp/$side.res"
    [ "${BENCH_VERBOSE:-0}" = 1 ] && printf '  %-10s %-5s %ss %s KiB\n' "$name" "$side" "$t" "$m" >&2
    return 0
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maximum() { sort -g | tail -1; }

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
echo "# mallocdebug benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# host: $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r), $(ldd --version 2>/dev/null | head -1)"
echo "# library: $lib_source ($(date -u -r "$lib_source" '+built %Y-%m-%d %H:%M UTC'), sha1 $(sha1sum <"$lib" | cut -c1-12))"
echo "# $repeat runs per side, alternating; time = median wall seconds, RSS = max peak KiB"

# Fixed cost: a process that makes one allocation.
name=startup
cmd=("$workload" startup)
rm -f "$tmp/glibc.res" "$tmp/lib.res"
if run_side glibc "$tmp/out" && run_side lib "$tmp/out"; then
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
    if [ "${name#git-}" != "$name" ] && [ -z "${git_repo:-}" ]; then
        make_git_repo >/dev/null 2>&1 || { echo "FAIL: could not create the git repository" >&2; failures=$((failures + 1)); continue; }
    fi
    bench_command "$name"
    rm -f "$tmp/glibc.res" "$tmp/lib.res"
    ok=1 reference=
    for rep in $(seq 1 "$repeat"); do
        if [ $((rep % 2)) -eq 1 ]; then order="glibc lib"; else order="lib glibc"; fi
        for side in $order; do
            if ! run_side "$side" "$tmp/out"; then ok=0; break 2; fi
            sum=$(cksum <"$tmp/out")
            if [ -z "$reference" ]; then
                reference=$sum
                cp "$tmp/out" "$tmp/reference"
            elif [ "$sum" != "$reference" ]; then
                echo "FAIL: $name: output under $side (run $rep) differs from the first run's" >&2
                diff "$tmp/reference" "$tmp/out" | head -10 | sed 's/^/  | /' >&2
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
