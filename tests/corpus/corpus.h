/*
 * The corpus of buggy programs run under sets of options: what each run
 * can end in, the option sets, the table of expected outcomes, and the
 * runner that runs every case under every set and classifies the ends.
 * Shared by the test (tests/check_corpus.c) and the matrix printer
 * (tests/corpus/print_matrix.c), so that both judge runs the same way.
 */
#ifndef MALLOCDEBUG_CORPUS_H
#define MALLOCDEBUG_CORPUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How a run of a buggy program ended, seen from outside. */
enum outcome {
    OUTCOME_NOT_CAUGHT,  /* ran to the end; nothing said */
    OUTCOME_INSTRUCTION, /* SIGSEGV or SIGBUS at the bad access, no report */
    OUTCOME_FREE,        /* reported when the block was freed */
    OUTCOME_REUSE,       /* reported when the freed block was handed out again */
    OUTCOME_CHECK,       /* reported by a periodic heap check */
    OUTCOME_EXPOSED,     /* the uninitialised read saw MallocScribble's 0xaa */
    /* Never expected: each means the library or the corpus misbehaved. */
    OUTCOME_OTHER_REPORT, /* a report, but not one of the kinds above */
    OUTCOME_CRASHED,      /* died, or exited non-zero, without a report */
    OUTCOME_TIMEOUT,
};

/* The kinds of bug, from the case's name. */
enum bug_kind {
    BUG_OVERRUN,
    BUG_UNDERRUN,
    BUG_DOUBLE_FREE,
    BUG_INVALID_FREE,
    BUG_WRITE_AFTER_FREE,
    BUG_UNINITIALISED_READ,
    BUG_UNKNOWN,
};

/* Library features that some expectations rely on, for the expectations
 * to wait for while a feature is not in the library yet. */
enum feature {
    FEATURE_CANARIES = 1u << 0,       /* MallocCanaries */
    FEATURE_FREED_CHECK = 1u << 1,    /* freed blocks checked on reuse */
    FEATURE_GUARD_EDGES = 1u << 2,    /* MallocGuardEdges */
    FEATURE_GUARD_MALLOC = 1u << 3,   /* MallocGuardMalloc */
    FEATURE_STRICT_SIZE = 1u << 4,    /* MALLOC_STRICT_SIZE */
    FEATURE_PROTECT_BEFORE = 1u << 5, /* MALLOC_PROTECT_BEFORE */
};

#define SETTINGS_MAX 6

struct option_set {
    const char *name;
    const char *settings[SETTINGS_MAX]; /* "Name=value", NULL-terminated */
    unsigned guard_features; /* the guard-page features it turns on */
};

enum option_set_index {
    SET_NONE,
    SET_SCRIBBLE,
    SET_CANARIES,
    SET_GUARD_EDGES,
    SET_CHECK_HEAP,
    SET_STRICTEST,
    SET_GUARD_MALLOC,
    SET_GUARD_MALLOC_STRICT,
    SET_GUARD_MALLOC_BEFORE,
    SET_COUNT
};

extern const struct option_set option_sets[SET_COUNT];

struct expectation {
    const char *case_name;
    enum outcome outcome[SET_COUNT]; /* in the order of option_sets */
};

extern const struct expectation expectations[];
extern const size_t expectation_count;

/* How to tell whether a feature is in the library: it is when, on some
 * case of `kind` (BUG_UNKNOWN: any), the outcome under `set` differs
 * from the outcome under `baseline`. */
struct feature_probe {
    enum feature feature;
    const char *name;
    enum option_set_index set, baseline;
    enum bug_kind kind;
};

extern const struct feature_probe feature_probes[];
extern const size_t feature_probe_count;

enum bug_kind bug_kind_of(const char *case_name);
const char *outcome_name(enum outcome outcome);
/* The features without which `expected` (the outcome of case `row`
 * under `set`) cannot happen. */
unsigned expectation_needs(const struct expectation *row, enum option_set_index set);

/* ---- running ---- */

/* One case under one option set, and what came of it. */
struct corpus_run {
    const struct expectation *row;
    enum bug_kind kind;
    enum option_set_index set;

    int status;      /* from waitpid */
    char *out, *err; /* what it wrote (NUL-terminated, possibly cut) */
    bool survived;   /* printed "survived" and exited 0 */
    bool block_known;
    uint64_t block;  /* the address it printed before the bug */
    bool names_block; /* some report line names that address */
    unsigned error_lines, breakpoint_lines;
    enum outcome outcome;

    int pid, out_fd, err_fd; /* while it runs */
};

struct corpus_paths {
    char buggy[4096];   /* the corpus program */
    char library[4096]; /* what it runs with, in LD_PRELOAD */
};

/* The build tree's buggy and library, from the current directory (the
 * top of the build tree under `make check`); MALLOCDEBUG_LIB overrides
 * the library.  False, with a message on stderr, when one is missing. */
bool corpus_find_paths(struct corpus_paths *paths);
/* Every expectation row under every option set, several at a time:
 * returns expectation_count * SET_COUNT runs, row-major. */
struct corpus_run *corpus_run_all(const struct corpus_paths *paths);
struct corpus_run *corpus_run_at(struct corpus_run *runs, size_t row,
                                 enum option_set_index set);
/* The features that change some outcome, per feature_probes. */
unsigned corpus_detect_features(struct corpus_run *runs);
/* `buggy --list`: one "name<TAB>description" line per case; NULL on
 * failure. */
char *corpus_list_cases(const struct corpus_paths *paths);

#endif
