#!/bin/sh
# leaks --atExit over the project's own programs: those that free or keep
# everything they allocate must exit 0 with "0 leaks", and those with
# known leaks must exit 1 with their exact count and bytes.  The programs
# under tests/ and examples/ are libtool wrapper scripts: leaks follows
# their exec into the real program.  The stack logs the runs make must
# all be gone afterwards.
#
# Skipped (exit 77) where the kernel forbids ptrace altogether.
#
# The programs and tools are those of the build tree, found from the
# directory `make check` runs the test in.
set -u

top=${abs_top_builddir:-$PWD}
leaks=$top/tools/leaks
plugin=$top/tests/.libs/leaks_plugin.so
for built in "$leaks" "$plugin"; do
    if [ ! -f "$built" ]; then
        echo "FAIL: $built is not built (run make check)"
        exit 1
    fi
done

scope=/proc/sys/kernel/yama/ptrace_scope
if [ -r "$scope" ] && [ "$(cat "$scope")" = 3 ]; then
    echo "SKIP: $scope is 3: no process may be traced, so leaks --atExit cannot run"
    exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mallocdebug-leaks-at-exit.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM
mkdir "$work/logs"
MallocStackLoggingDirectory=$work/logs
LEAKS_TARGET_PLUGIN=$plugin
export MallocStackLoggingDirectory LEAKS_TARGET_PLUGIN

passed=0 failed=0
# Malloc* settings of the runs, as NAME=VALUE words.
settings=""

# run_case STATUS SUMMARY COMMAND...: runs leaks -quiet --atExit on
# COMMAND (a program of the build tree and its arguments, standard input
# closed) and expects exit status STATUS and the line
# "Process PID: SUMMARY".
run_case() {
    expected_status=$1 expected_summary=$2
    shift 2
    name="$*"
    program=$1
    shift
    # shellcheck disable=SC2086
    env $settings "$leaks" -quiet --atExit -- "$top/$program" "$@" \
        </dev/null >"$work/out" 2>"$work/err"
    status=$?
    summary=$(sed -n 's/^Process [0-9][0-9]*: \([0-9][0-9]* leaks\{0,1\} for .*\)$/\1/p' \
        "$work/out")
    if [ "$status" = "$expected_status" ] && [ "$summary" = "$expected_summary" ]; then
        echo "PASS: $name${settings:+ ($settings)}: $summary"
        passed=$((passed + 1))
    else
        echo "FAIL: $name${settings:+ ($settings)}: exit status $status, expected $expected_status;" \
            "summary '$summary', expected '$expected_summary'"
        echo "--- output:"
        head -n 40 "$work/out"
        echo "--- stderr:"
        grep -v 'MallocStackLogging: recording' "$work/err" | head -n 20
        failed=$((failed + 1))
    fi
}

no_leaks="0 leaks for 0 total leaked bytes."

# ---- free or keep everything they allocate ----
run_case 0 "$no_leaks" examples/zone_stats
settings=MallocGuardMalloc=1
run_case 0 "$no_leaks" examples/zone_stats
settings=""
# Keeps its blocks in a global array, and ends at end of input.
run_case 0 "$no_leaks" tests/heap_target
for action in fill fail check-heap nothing; do
    run_case 0 "$no_leaks" tests/option_probe "$action"
done
# own_stack keeps its blocks in a static array; fork_stress's threads and
# children free theirs.
for scenario in logger own_stack fork_stress; do
    run_case 0 "$no_leaks" tests/stacklog_probe "$scenario"
done
run_case 0 "$no_leaks" tests/guard_probe fill
run_case 0 "$no_leaks" tests/enumerate_probe local

# ---- known leaks; sizes are the library's blocks (16-byte steps) ----
# Its list (3 x 48), cycle (32 + 48), hidden (32), exited thread's (64),
# joined thread's (80) and zone's (64) blocks; the module's block is kept.
run_case 1 "9 leaks for 464 total leaked bytes." tests/leaks_target exit
# The stack-logging scenarios never free what they print for the log's
# tests: compact's 50-byte block, vm's 24-byte one, callers' 300 of 32.
run_case 1 "1 leak for 64 total leaked bytes." tests/stacklog_probe compact
run_case 1 "1 leak for 32 total leaked bytes." tests/stacklog_probe vm
run_case 1 "300 leaks for 9600 total leaked bytes." tests/stacklog_probe callers
# It never frees the 48-byte block it shows.
run_case 1 "1 leak for 48 total leaked bytes." tests/guard_probe nothing
# The README's example: the lost list of settings, its names and values.
# At exit the exiting thread's stack is no root (it holds exit handlers'
# frames over dead ones, where strtol once saved the list's head).
run_case 1 "9 leaks for 192 total leaked bytes." examples/leaky
# sites never frees three of its blocks (2 MiB among them) nor site_b's.
run_case 1 "4 leaks for 2100448 total leaked bytes." tests/stacklog_probe sites
# Each of its 4 threads keeps 50 blocks (17 to 115 bytes) only in an
# array on its stack, and is joined: glibc keeps the stack for reuse, and
# such a stack is no root.
run_case 1 "200 leaks for 14848 total leaked bytes." tests/stacklog_probe threads

if [ -n "$(ls -A "$work/logs")" ]; then
    echo "FAIL: stack logs left behind:"
    ls "$work/logs"
    failed=$((failed + 1))
fi

echo "leaks_at_exit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
