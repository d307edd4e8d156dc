#!/bin/sh
# Prints the corpus matrix (bug x option set) in Markdown, for
# tests/corpus/README.md: builds the library, the corpus and the printer
# if needed, then runs every case under every option set.
#
# Usage: tests/corpus/matrix.sh [BUILD_DIR]
# BUILD_DIR is the top of the build tree (where ./configure ran); by
# default the current directory.  MALLOCDEBUG_LIB names another library.
set -eu

build=${1:-.}
if [ ! -f "$build/Makefile" ]; then
    echo "matrix.sh: $build is not a configured build tree (run ./configure)" >&2
    exit 1
fi
cd "$build"
make -s lib/libmallocdebug.la tests/corpus/buggy tests/corpus/print_matrix >&2
exec tests/corpus/print_matrix
