#!/usr/bin/env bash
# Installs what mallocdebug needs on Debian 12, builds it, and runs the
# bundled example.
#
#   scripts/setup.sh                 install, build, find the leak of examples/leaky
#   scripts/setup.sh --no-example    install and build only (scripts/test.sh)
#
# Only packages that are missing are installed, so a second run installs
# nothing.  Not root?  The packages are installed with sudo.
set -euo pipefail

run_example=yes
for arg in "$@"; do
    case "$arg" in
    --no-example) run_example=no ;;
    -h | --help)
        sed -n '2,9s/^# \{0,1\}//p' "$0"
        exit 0
        ;;
    *)
        echo "setup.sh: unknown option '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Build: compiler, autotools, pkg-config and the libraries configure checks.
# Tests: python3, perl and git, and clang with its libFuzzer runtime for
# the reader's fuzz target.  Benchmarks: time.
packages=(
    build-essential autoconf automake libtool pkg-config
    check libunwind-dev uthash-dev libdw-dev libelf-dev
    python3 perl git
    time
    clang libclang-rt-dev
)

step() { printf '\n==> %s\n' "$*"; }

ncpu() {
    nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1
}

# Runs a command as root: directly, or through sudo (never prompting
# when there is no terminal to answer on, as in CI).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        if [ -t 0 ]; then
            sudo "$@"
        else
            sudo -n "$@"
        fi
    else
        echo "setup.sh: not root and sudo is not installed; as root, run:" >&2
        echo "  $*" >&2
        return 1
    fi
}

install_missing_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "setup.sh: dpkg-query not found; this is not Debian, so install the" >&2
        echo "equivalents of these packages yourself: ${packages[*]}" >&2
        return 0
    fi
    local missing=() pkg
    for pkg in "${packages[@]}"; do
        if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "all ${#packages[@]} packages are installed"
        return 0
    fi
    echo "missing: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}"
}

step "packages"
install_missing_packages

step "autoreconf -fi"
mkdir -p m4 # aclocal warns when the macro directory does not exist yet
autoreconf -fi

step "./configure --enable-werror"
./configure --enable-werror

step "make -j$(ncpu)"
make -j"$(ncpu)"

if [ "$run_example" = yes ]; then
    # The example leaks on purpose: leaks exits with 1 when it finds
    # leaks, 0 when there are none, above 1 on an error.
    step "tools/leaks --atExit -- ./examples/leaky"
    status=0
    tools/leaks --atExit -- ./examples/leaky || status=$?
    if [ "$status" -ne 1 ]; then
        echo "setup.sh: leaks should have found the example's leak (exit status $status)" >&2
        exit 1
    fi
    echo
    echo "Built.  Next: scripts/test.sh runs the test suite and make distcheck."
fi
