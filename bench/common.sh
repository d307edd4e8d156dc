# bench/common.sh: what run.sh, options.sh and stacklog.sh share.  It is
# sourced, never run, by bash scripts that set `here` (this directory)
# first.  It defines functions and a few variables and runs nothing.
#
# Variables the functions read, set by the caller or by the functions
# named in brackets:
#   builddir, lib, workload, measure   paths (bench_paths)
#   repeat, scale                      the -n and -s options
#   tmp                                the scratch directory (bench_setup)
#   timer                              "measure" or "time" (bench_setup)
#   names, python                      benchmarks and python3 (bench_names)
#   git_repo                           the test repository (make_git_repo)
#   name, cmd                          the benchmark being run (bench_command)
#   bench_env                          VAR=VALUE words for the next runs

# The variables above are the calling script's; perl_script is perl.
# shellcheck shell=bash disable=SC2154,SC2034,SC2016

# The script's name, for messages.
bench_prog=${0##*/}

die() { echo "$bench_prog: $*" >&2; exit 2; }

# Fills in the paths the options and BENCH_* variables left unset.
bench_paths() {
    lib=${lib:-$builddir/lib/.libs/libmallocdebug.so}
    workload=${BENCH_WORKLOAD:-$builddir/bench/workload}
    measure=${BENCH_MEASURE:-$builddir/bench/measure}
}

# Checks the inputs, picks the timer, makes $tmp (removed at exit) and
# copies the library into it, so a rebuild during the run cannot mix two
# versions: afterwards $lib is the copy and $lib_source the original.
bench_setup() {
    case $repeat in '' | *[!0-9]* | 0) die "bad repeat count '$repeat'" ;; esac
    [ -f "$lib" ] || die "no library at $lib (run make first, or set BENCH_LIB)"
    lib=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")
    lib_source=$lib
    [ -x "$workload" ] || die "no workload program at $workload (run make bench/workload)"

    if [ -x "$measure" ]; then
        timer=measure
    elif [ -x /usr/bin/time ]; then
        timer="time"
        echo "$bench_prog: $measure not built, using /usr/bin/time (10 ms resolution)" >&2
    else
        die "neither $measure nor /usr/bin/time is available"
    fi

    tmp=$(mktemp -d "${TMPDIR:-/tmp}/mallocdebug-bench.XXXXXX") || die "mktemp failed"
    trap 'rm -rf "$tmp"' EXIT
    trap 'exit 130' INT TERM

    cp "$lib" "$tmp/libmallocdebug.so" || die "cannot copy $lib"
    lib=$tmp/libmallocdebug.so
}

# Sets $names to the benchmarks that can run here: the workloads of
# bench/workload, then python, perl and git-log/git-repack if installed;
# and $python to the real python3 (or "").
bench_names() {
    names=$("$workload" --list | tr '\n' ' ') || die "$workload --list failed"
    python=
    if command -v python3 >/dev/null 2>&1; then
        # The real interpreter, not a pyenv/asdf shim script.
        python=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))' 2>/dev/null)
    fi
    if [ -n "$python" ] && [ -f "$here/py_workload.py" ]; then names="$names python"; fi
    if command -v perl >/dev/null 2>&1; then names="$names perl"; fi
    if command -v git >/dev/null 2>&1; then names="$names git-log git-repack"; fi
    return 0
}

# bench_select ONLY: when ONLY is not empty, checks that every name in it
# is in $names (dies otherwise) and sets $names to it.
bench_select() {
    local n
    [ -n "$1" ] || return 0
    for n in $1; do
        case " $names " in *" $n "*) ;; *) die "unknown benchmark '$n' (have: $names)" ;; esac
    done
    names=$1
}

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

# Makes the git repository the first time a git benchmark needs it.
bench_prepare() {
    if [ "${1#git-}" != "$1" ] && [ -z "${git_repo:-}" ]; then
        make_git_repo >/dev/null 2>&1 || { echo "FAIL: could not create the git repository" >&2; return 1; }
    fi
    return 0
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

bench_env=()

# bench_run RESFILE PRELOAD COMMAND...: runs COMMAND with LD_PRELOAD=PRELOAD
# (nothing preloaded when PRELOAD is empty) set in the command only, with
# the bench_env settings in its environment, and writes "seconds KiB
# status" to RESFILE.  Returns the command's status.
bench_run() {
    local res=$1 preload=$2
    local -a pre=()
    shift 2
    if [ ${#bench_env[@]} -gt 0 ]; then pre=(env "${bench_env[@]}"); fi
    if [ "$timer" = measure ]; then
        if [ -n "$preload" ]; then
            ${pre[@]+"${pre[@]}"} "$measure" -o "$res" -p "$preload" -- "$@"
        else
            ${pre[@]+"${pre[@]}"} "$measure" -o "$res" -- "$@"
        fi
    else
        if [ -n "$preload" ]; then
            ${pre[@]+"${pre[@]}"} /usr/bin/time -o "$res" -f '%e %M %x' env LD_PRELOAD="$preload" "$@"
        else
            ${pre[@]+"${pre[@]}"} /usr/bin/time -o "$res" -f '%e %M %x' "$@"
        fi
    fi
}

# run_side SIDE PRELOAD COMMAND...: runs COMMAND once (see bench_run),
# its standard output in $tmp/out, and appends "seconds KiB" to
# $tmp/SIDE.res.  A failure is reported, with the command's standard
# error, and returns 1.
run_side() {
    local side=$1 preload=$2 res=$tmp/res status t m
    shift 2
    rm -f "$res"
    bench_run "$res" "$preload" "$@" >"$tmp/out" 2>"$tmp/stderr"
    status=$?
    if [ $status -ne 0 ] || [ ! -s "$res" ]; then
        echo "FAIL: $name under $side exited with status $status" >&2
        sed 's/^/  | /' "$tmp/stderr" | head -20 >&2
        return 1
    fi
    read -r t m _ <"$res"
    echo "$t $m" >>"$tmp/$side.res"
    if [ "${BENCH_VERBOSE:-0}" = 1 ]; then printf '  %-10s %-5s %ss %s KiB\n' "$name" "$side" "$t" "$m" >&2; fi
    return 0
}

# check_output SIDE REP: the first output of a benchmark ($tmp/out, with
# reference="" before it) becomes the reference; every later one must be
# the same.  A difference is shown and returns 1.
check_output() {
    local sum
    sum=$(cksum <"$tmp/out")
    if [ -z "$reference" ]; then
        reference=$sum
        cp "$tmp/out" "$tmp/reference"
    elif [ "$sum" != "$reference" ]; then
        echo "FAIL: $name: output under $1 (run $2) differs from the first run's" >&2
        diff "$tmp/reference" "$tmp/out" | head -10 | sed 's/^/  | /' >&2
        return 1
    fi
    return 0
}

# median [low]: the median of the numbers on standard input; of an even
# count, the mean of the middle two, or with "low" the lower one.
# shellcheck disable=SC2120
median() {
    sort -g | awk -v low="${1:-}" '{ v[NR] = $1 }
        END { if (NR % 2 || low == "low") print v[int((NR + 1) / 2)]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
maximum() { sort -g | tail -1; }

# bench_header TITLE: the first lines of a report (time, host, library).
bench_header() {
    local cpu
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
    echo "# $1, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "# host: $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r), $(ldd --version 2>/dev/null | head -1)"
    echo "# library: $lib_source ($(date -u -r "$lib_source" '+built %Y-%m-%d %H:%M UTC'), sha1 $(sha1sum <"$lib" | cut -c1-12))"
}
