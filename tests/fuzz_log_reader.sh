#!/bin/sh
# The reader's fuzz target (tests/fuzz_log_reader.c), built with clang
# under AddressSanitizer and UndefinedBehaviorSanitizer and run for a
# bounded time: FUZZ_SECONDS, 20 by default.  It starts from an empty
# corpus each time, so every run explores afresh; an input that makes the
# reader crash, hang or read out of bounds is saved as
# tests/fuzz-crash-* (or -timeout-*, -leak-*) and fails the test.
# Reproduce with: tests/fuzz_log_reader tests/fuzz-crash-...
#
# Skipped (exit 77) where clang or its libFuzzer runtime is not
# installed (scripts/setup.sh installs both): gcc has no libFuzzer.
set -u

top=${abs_top_builddir:-$PWD}
seconds=${FUZZ_SECONDS:-20}
case $seconds in
'' | *[!0-9]*)
    echo "FAIL: FUZZ_SECONDS=$seconds: give a whole number of seconds, such as 60"
    exit 1
    ;;
esac

if ! command -v clang >/dev/null 2>&1; then
    echo "SKIP: clang is not installed (the Debian package clang)"
    exit 77
fi
probe=$(mktemp -d "${TMPDIR:-/tmp}/fuzz_probe.XXXXXX") || exit 1
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
    >"$probe/probe.c"
if ! clang -fsanitize=fuzzer,address "$probe/probe.c" -o "$probe/probe" 2>"$probe/err"; then
    echo "SKIP: clang cannot build a libFuzzer target (the Debian package libclang-rt-dev):"
    cat "$probe/err"
    rm -rf "$probe"
    exit 77
fi
rm -rf "$probe"

# Built by the same rule as `make fuzz-log-reader`, so the test keeps
# that rule working.
if ! (cd "$top" && ${MAKE:-make} -s fuzz-log-reader); then
    echo "FAIL: make fuzz-log-reader did not build the target"
    exit 1
fi

corpus=$(mktemp -d "${TMPDIR:-/tmp}/fuzz_log_reader.XXXXXX") || exit 1
trap 'rm -rf "$corpus"' EXIT
"$top/tests/fuzz_log_reader" -max_total_time="$seconds" -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$top/tests/fuzz-" "$corpus"
status=$?
if [ "$status" -ne 0 ]; then
    echo "FAIL: the fuzz target found an input the reader mishandles (status $status)"
    exit 1
fi
echo "PASS: $seconds s of fuzzing found nothing"
