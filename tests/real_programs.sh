#!/bin/sh
# Real programs under the library: each workload runs once with the
# system allocator and once with libmallocdebug.so preloaded, and the two
# outputs must be identical byte for byte; the preloaded run must exit
# the same way and print no "malloc: ***" report.  python3, perl and git
# run a third time, preloaded with Guard Malloc (MallocGuardMalloc=1),
# under the same rules.
#
# A case whose program is not installed is skipped; if every case is
# skipped, the script exits 77 (SKIP for automake).
#
# MALLOCDEBUG_LIB names the library; by default the one in the build
# tree, found from the directory `make check` runs the test in.
set -u

lib=${MALLOCDEBUG_LIB:-${abs_top_builddir:-$PWD}/lib/.libs/libmallocdebug.so}
if [ ! -f "$lib" ]; then
    echo "FAIL: the library $lib is not built (set MALLOCDEBUG_LIB)"
    exit 1
fi

# The preloaded runs must really use the library.
if ! LD_PRELOAD="$lib" cat /proc/self/maps | grep -q libmallocdebug; then
    echo "FAIL: LD_PRELOAD=$lib does not load the library"
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mallocdebug-real.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM

passed=0 failed=0 skipped=0
# Malloc* settings of the preloaded run, as NAME=VALUE words.
preload_settings=""

# run_case NAME COMMAND...: runs COMMAND twice (cwd: $work/NAME.plain and
# $work/NAME.preload, both empty) and compares.
run_case() {
    name=$1
    shift
    for mode in plain preload; do
        dir="$work/$name.$mode"
        mkdir -p "$dir"
        if [ "$mode" = preload ]; then
            # shellcheck disable=SC2086
            (cd "$dir" && env $preload_settings LD_PRELOAD="$lib" "$@") \
                >"$work/$name.$mode.out" 2>"$work/$name.$mode.err"
        else
            (cd "$dir" && "$@") >"$work/$name.$mode.out" 2>"$work/$name.$mode.err"
        fi
        echo $? >"$work/$name.$mode.rc"
    done
    problems=""
    if ! cmp -s "$work/$name.plain.rc" "$work/$name.preload.rc"; then
        problems="$problems exit status $(cat "$work/$name.plain.rc") vs $(cat "$work/$name.preload.rc");"
    fi
    if [ "$(cat "$work/$name.plain.rc")" != 0 ]; then
        problems="$problems the plain run failed;"
    fi
    if ! cmp -s "$work/$name.plain.out" "$work/$name.preload.out"; then
        problems="$problems outputs differ;"
    fi
    if [ ! -s "$work/$name.plain.out" ]; then
        problems="$problems no output;"
    fi
    if grep -q 'malloc: \*\*\*' "$work/$name.preload.err"; then
        problems="$problems malloc reports on stderr;"
    fi
    if [ -z "$problems" ]; then
        echo "PASS: $name ($(wc -c <"$work/$name.plain.out") bytes of identical output)"
        passed=$((passed + 1))
    else
        echo "FAIL: $name:$problems"
        echo "--- stderr with the library:"
        head -n 20 "$work/$name.preload.err"
        echo "--- first differences:"
        diff "$work/$name.plain.out" "$work/$name.preload.out" | head -n 20
        failed=$((failed + 1))
    fi
}

# run_case_and_guarded NAME COMMAND...: run_case, then again as
# NAME-guard-malloc with Guard Malloc in the preloaded run.
run_case_and_guarded() {
    run_case "$@"
    name=$1
    shift
    preload_settings="MallocGuardMalloc=1"
    run_case "$name-guard-malloc" "$@"
    preload_settings=""
}

# guard_write OFFSET: under Guard Malloc, python3 writes one byte at
# OFFSET in a 32-byte malloc block; prints the exit status.
guard_write() {
    MallocGuardMalloc=1 LD_PRELOAD="$lib" "$python" -c "
import ctypes
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
block = libc.malloc(32)
ctypes.memset(block + $1, 0, 1)
" >/dev/null 2>&1
    echo $?
}

skip_case() {
    echo "SKIP: $1: $2 is not installed"
    skipped=$((skipped + 1))
}

# ---- python3, with the C allocator underneath everything ----
cat >"$work/workload.py" <<'PY'
import hashlib, json, random

random.seed(20240611)
digest = hashlib.sha256()

# dicts, lists and strings, built and torn down
table = {}
for i in range(150000):
    key = "key-%d-%s" % (i, "x" * (i % 37))
    table[key] = [i, str(i * 3), {"n": i % 101, "s": key[::-1]}]
for i in range(0, 150000, 3):
    del table["key-%d-%s" % (i, "x" * (i % 37))]
digest.update(str(len(table)).encode())

# a json round trip of a nested structure
doc = {"items": [{"id": i, "tags": ["t%d" % (i % 17), "u%d" % (i % 5)],
                  "value": i * 0.5, "name": "item %d" % i}
                 for i in range(40000)]}
text = json.dumps(doc, sort_keys=True)
back = json.loads(text)
assert back == doc
digest.update(text.encode())

# sorting 200k items, strings and tuples
words = ["".join(random.choice("abcdefghij") for _ in range(random.randint(1, 12)))
         for _ in range(200000)]
words.sort()
digest.update("\n".join(words[::997]).encode())
pairs = sorted((w[::-1], len(w), i) for i, w in enumerate(words))
digest.update(repr(pairs[::1999]).encode())

# bytes, bytearrays and big joins
blob = bytearray()
for i in range(20000):
    blob += bytes([(i * 7) & 255]) * (i % 300)
digest.update(blob)
print(len(table), len(text), len(words), len(blob))
print(digest.hexdigest())
PY

python=$(command -v python3 2>/dev/null || true)
if [ -n "$python" ]; then
    # Resolve wrappers (pyenv shims) to the interpreter itself.
    python=$("$python" -c 'import sys; print(sys.executable)' 2>/dev/null || echo "$python")
    # The guarded runs must really use the guard zone: the last byte of
    # a block can be written, the next one is on the guard page.
    inside=$(guard_write 31) past=$(guard_write 32)
    if [ "$inside" != 0 ] || [ "$past" != 139 ]; then
        echo "FAIL: MallocGuardMalloc=1 does not guard blocks (write inside: status $inside, past the end: $past, expected 0 and 139)"
        exit 1
    fi
    run_case_and_guarded python env PYTHONMALLOC=malloc PYTHONHASHSEED=0 "$python" "$work/workload.py"
else
    skip_case python python3
fi

# ---- perl: hashes and regular expressions ----
if command -v perl >/dev/null 2>&1; then
    run_case_and_guarded perl perl -e '
        my %h; my @keep;
        for my $i (1 .. 200000) {
            my $k = join("-", "k", $i, ("ab" x ($i % 23)));
            $h{$k} = [$i, $i * 2, "v$i"];
            push @keep, $k if $i % 7 == 0;
        }
        delete $h{$_} for grep { /-(\d*[05])-/ } keys %h;
        my $text = join(" ", map { "w" . ($_ * 7919 % 100003) } 1 .. 100000);
        my $n = () = $text =~ /w(\d+)3\b/g;
        (my $t2 = $text) =~ s/w(\d)(\d*)/$2$1/g;
        my %count; $count{length $_}++ for split / /, $t2;
        my $sum = 0; $sum += $_->[1] for values %h;
        print scalar(keys %h), " $n $sum ", scalar(@keep), "\n";
        print join(",", map { "$_=$count{$_}" } sort { $a <=> $b } keys %count), "\n";
        print join(",", (sort @keep)[0 .. 20]), "\n";
    '
else
    skip_case perl perl
fi

# ---- bash: strings and arrays ----
if command -v bash >/dev/null 2>&1; then
    run_case bash bash -c '
        declare -a list; declare -A map; s=""
        for ((i = 0; i < 20000; i++)); do
            list+=("item$i")
            map["k$((i % 997))"]+="$i,"
            s+="${i: -1}"
        done
        for ((i = 0; i < 20000; i += 3)); do unset "list[$i]"; done
        joined="${list[*]}"
        upper="${joined^^}"
        replaced="${upper//ITEM/I}"
        echo "${#list[@]} ${#joined} ${#replaced} ${#s} ${#map[@]}"
        echo "${map[k5]:0:80}"
        echo "${replaced:1000:120}"
        printf "%s\n" "${!map[@]}" | sort | head -n 5
    '
else
    skip_case bash bash
fi

# ---- git: a repository with a few hundred files ----
if command -v git >/dev/null 2>&1; then
    cat >"$work/git.sh" <<'GIT'
set -e
export HOME="$PWD/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="$PWD/home/.gitconfig"
export GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=tester@example.org
export GIT_COMMITTER_NAME=Tester GIT_COMMITTER_EMAIL=tester@example.org
export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
export LC_ALL=C TZ=UTC
mkdir -p home repo
cd repo
git init -q -b main . 2>/dev/null || git init -q .
git config gc.auto 0
for c in 1 2 3 4; do
    i=0
    while [ $i -lt 100 ]; do
        d="dir$((i % 10))"
        mkdir -p "$d"
        j=0
        while [ $j -lt $((i % 13 + c)) ]; do
            echo "file $i line $j commit $c"
            j=$((j + 1))
        done >"$d/file$i.txt"
        i=$((i + 1))
    done
    git add -A
    git commit -q -m "commit $c"
done
git log --stat --format='%H %s'
git gc --quiet
git fsck --full --no-progress 2>&1
git count-objects -v | grep -v -e size -e prune
git ls-files | wc -l
GIT
    run_case_and_guarded git sh "$work/git.sh"
else
    skip_case git git
fi

echo "real programs: $passed passed, $failed failed, $skipped skipped"
if [ "$failed" -gt 0 ]; then
    exit 1
fi
if [ "$passed" -eq 0 ]; then
    exit 77
fi
exit 0
