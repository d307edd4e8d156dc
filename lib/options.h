/*
 * The debugging options, read once from the Malloc* environment
 * variables when the library starts.  Every layer reads them; only
 * options.c writes them.  All are ignored in secure-execution
 * (setuid, setgid, file capabilities) processes.
 */
#ifndef MALLOCDEBUG_OPTIONS_H
#define MALLOCDEBUG_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

enum options_guard_edges {
    OPTIONS_GUARD_EDGES_NONE,
    OPTIONS_GUARD_EDGES_LARGE, /* MallocGuardEdges=1: around large blocks */
    OPTIONS_GUARD_EDGES_ALL,   /* MallocGuardEdges=all: and around regions */
};

enum options_report_target {
    OPTIONS_REPORT_STDERR, /* reports go to stderr or MallocLogFile */
    OPTIONS_REPORT_NONE,   /* reports are discarded */
    OPTIONS_REPORT_CRASH,  /* reports are written only before an abort */
};

/* MallocStackLogging: off (0), or what the log records, numbered as
 * enum mdlog_mode in <mallocdebug/stack_log.h>. */
#define OPTIONS_DIRECTORY_MAX 3968

struct malloc_options {
    /* Non-zero when any option changes what malloc or free does, so the
     * malloc layer tests one word on its fast path. */
    unsigned active;

    bool scribble;     /* MallocScribble: 0xAA into new, 0x55 into freed */
    bool pre_scribble; /* MallocPreScribble: 0xAA into new blocks only */
    bool zero_on_free; /* MallocZeroOnFree */
    bool check_zero_on_free; /* MallocCheckZeroOnFreeCorruption */
    bool canaries;     /* MallocCanaries: guard bytes around each block */
    enum options_guard_edges guard_edges; /* MallocGuardEdges */
    bool no_protect_prelude;  /* MallocDoNotProtectPrelude */
    bool no_protect_postlude; /* MallocDoNotProtectPostlude */

    /* Guard Malloc (MallocGuardMalloc) and its libgmalloc controls. */
    bool guard_malloc;
    bool guard_protect_before; /* MALLOC_PROTECT_BEFORE */
    bool guard_fill_space;     /* MALLOC_FILL_SPACE */
    bool guard_allow_reads;    /* MALLOC_ALLOW_READS */
    bool guard_strict_size;    /* MALLOC_STRICT_SIZE */
    uint64_t guard_quarantine_bytes; /* MALLOC_QUARANTINE_SIZE, 0: default */

    bool error_abort;       /* MallocErrorAbort */
    bool corruption_abort;  /* MallocCorruptionAbort, on by default */
    bool error_stop;        /* MallocErrorStop: SIGSTOP after a report */
    unsigned error_sleep;   /* MallocErrorSleep: seconds after a report */
    enum options_report_target report_target; /* MallocDebugReport */
    int log_fd;             /* MallocLogFile, else stderr */

    uint64_t check_heap_start; /* MallocCheckHeapStart, 0 when off */
    uint64_t check_heap_each;  /* MallocCheckHeapEach, default 1000 */
    long check_heap_sleep;     /* MallocCheckHeapSleep, default 100 */
    bool check_heap_abort;     /* MallocCheckHeapAbort */

    unsigned stack_logging;        /* MallocStackLogging, enum mdlog_mode */
    bool stack_logging_no_compact; /* MallocStackLoggingNoCompact */
    bool stack_logging_no_reaping; /* MallocStackLoggingNoReaping */
    bool stack_logging_keep;       /* MallocStackLoggingDontDeleteStackLogFile */
    uint64_t stack_logging_keep_for_pid; /* MallocStackLoggingKeepForPid */
    /* MallocStackLoggingDirectory, "" for the default. */
    char stack_logging_directory[OPTIONS_DIRECTORY_MAX];

    uint64_t fail_after; /* MallocFailAfter: later allocations fail */
    uint64_t fail_rate;  /* MallocFailRate: one allocation in N fails */
    uint64_t fail_seed;  /* MallocFailSeed */
};

#define OPTIONS_ACTIVE_CHECK_HEAP 2u /* periodic heap checks */
#define OPTIONS_ACTIVE_FAILURES 4u   /* injected allocation failures */

extern struct malloc_options malloc_options;

/* Reads the environment; warns about malformed values on stderr. */
void options_read(void);

#endif
