#!/usr/bin/env bash
# Installs what is missing, builds, runs the test suite, then checks that
# the release tarball builds and passes its tests on its own
# (make distcheck).  Works on a fresh Debian 12 machine.  Exits non-zero
# on the first failure, after printing the logs of the tests that failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."

ncpu() {
    nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1
}

# Prints the .log of every test under $1 whose result is not a pass or a
# skip (automake's harness writes one .trs file per test); falls back to
# test-suite.log when no single test is to blame.
print_failed_logs() {
    local dir="$1" trs log found=no
    while IFS= read -r trs; do
        if grep -Eq '^:test-result: (FAIL|ERROR|XPASS)' "$trs"; then
            log="${trs%.trs}.log"
            found=yes
            printf '\n===== %s =====\n' "$log"
            cat "$log" 2>/dev/null || echo "(no log)"
        fi
    done < <(find "$dir" -name '*.trs' -type f 2>/dev/null | sort)
    if [ "$found" = no ]; then
        while IFS= read -r log; do
            printf '\n===== %s =====\n' "$log"
            cat "$log"
        done < <(find "$dir" -name 'test-suite.log' -type f 2>/dev/null)
    fi
}

bash "$here/setup.sh" --no-example

printf '\n==> make check -j%s\n' "$(ncpu)"
if ! make check -j"$(ncpu)"; then
    print_failed_logs .
    echo "test.sh: make check failed" >&2
    exit 1
fi

printf '\n==> make distcheck\n'
if ! make distcheck -j"$(ncpu)"; then
    # On failure automake leaves the unpacked tree behind: show its logs.
    for tree in mallocdebug-*/; do
        [ -d "$tree" ] && print_failed_logs "$tree"
    done
    echo "test.sh: make distcheck failed" >&2
    exit 1
fi

printf '\nAll tests passed, and the distribution tarball builds and tests cleanly.\n'
