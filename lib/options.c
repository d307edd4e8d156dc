/*
 * Reading the Malloc* environment variables.  One table names every
 * variable, the kind of value it takes, where it goes and its help line;
 * parsing, warnings and MallocHelp all work from it.  Runs at the first
 * allocation, possibly before libc has finished starting, so it reads
 * `environ` (or /proc/self/environ when that is not set yet) and formats
 * its messages without allocating.
 */
#include "config.h"
#include "options.h"
#include <mallocdebug/stack_log.h>
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

struct malloc_options malloc_options = {
    .corruption_abort = true,
    .log_fd = STDERR_FILENO,
    .check_heap_each = 1000,
    .check_heap_sleep = 100,
    .fail_seed = 1,
};

enum option_kind {
    OPTION_FLAG,           /* bool */
    OPTION_COUNT,          /* uint64_t */
    OPTION_SECONDS,        /* unsigned, 0 to a day */
    OPTION_SIGNED_SECONDS, /* long, minus a day to a day */
    OPTION_REPORT,         /* enum options_report_target */
    OPTION_FILE,           /* int, a descriptor open for appending */
    OPTION_GUARD_EDGES,    /* enum options_guard_edges */
    OPTION_STACK_LOGGING,  /* unsigned, enum mdlog_mode or 0 */
    OPTION_DIRECTORY,      /* char[OPTIONS_DIRECTORY_MAX], an absolute path */
    OPTION_HELP,
};

struct option_spec {
    const char *name;
    enum option_kind kind;
    void *target;
    const char *help;
};

#define O (&malloc_options)
static const struct option_spec option_specs[] = {
    {"MallocHelp", OPTION_HELP, NULL,
     "print this list of variables"},
    {"MallocScribble", OPTION_FLAG, &O->scribble,
     "fill new blocks with 0xAA (not calloc's) and freed blocks with 0x55"},
    {"MallocPreScribble", OPTION_FLAG, &O->pre_scribble,
     "fill new blocks with 0xAA (not calloc's)"},
    {"MallocZeroOnFree", OPTION_FLAG, &O->zero_on_free,
     "fill freed blocks with zeros"},
    {"MallocCheckZeroOnFreeCorruption", OPTION_FLAG, &O->check_zero_on_free,
     "with MallocZeroOnFree, check that freed blocks are still zero when reused"},
    {"MallocCanaries", OPTION_FLAG, &O->canaries,
     "(extension) guard bytes before and after every block, checked at free, "
     "realloc and heap checks"},
    {"MallocGuardEdges", OPTION_GUARD_EDGES, &O->guard_edges,
     "1|all: an inaccessible page before and after each large block "
     "(all: and each region)"},
    {"MallocDoNotProtectPrelude", OPTION_FLAG, &O->no_protect_prelude,
     "with MallocGuardEdges, no guard page before"},
    {"MallocDoNotProtectPostlude", OPTION_FLAG, &O->no_protect_postlude,
     "with MallocGuardEdges, no guard page after"},
    {"MallocGuardMalloc", OPTION_FLAG, &O->guard_malloc,
     "(extension) Guard Malloc: every block against an inaccessible page, "
     "freed memory inaccessible"},
    {"MALLOC_PROTECT_BEFORE", OPTION_FLAG, &O->guard_protect_before,
     "Guard Malloc: the inaccessible page before each block, not after"},
    {"MALLOC_FILL_SPACE", OPTION_FLAG, &O->guard_fill_space,
     "Guard Malloc: fill new blocks with 0x55"},
    {"MALLOC_ALLOW_READS", OPTION_FLAG, &O->guard_allow_reads,
     "Guard Malloc: the guard pages may be read, not written"},
    {"MALLOC_STRICT_SIZE", OPTION_FLAG, &O->guard_strict_size,
     "Guard Malloc: end blocks exactly against the guard page (no alignment)"},
    {"MALLOC_QUARANTINE_SIZE", OPTION_COUNT, &O->guard_quarantine_bytes,
     "<bytes>: (extension) Guard Malloc: freed bytes kept inaccessible "
     "before reuse (default 256 MiB)"},
    {"MallocErrorAbort", OPTION_FLAG, &O->error_abort,
     "abort() after reporting any error, such as a bad free"},
    {"MallocCorruptionAbort", OPTION_FLAG, &O->corruption_abort,
     "abort() after reporting heap corruption (default 1; 0 to go on)"},
    {"MallocErrorStop", OPTION_FLAG, &O->error_stop,
     "stop the process with SIGSTOP after a report, for a debugger"},
    {"MallocErrorSleep", OPTION_SECONDS, &O->error_sleep,
     "<s>: sleep s seconds after a report, for a debugger"},
    {"MallocDebugReport", OPTION_REPORT, &O->report_target,
     "stderr|none|crash: where reports go (crash: only before an abort)"},
    {"MallocLogFile", OPTION_FILE, &O->log_fd,
     "<file>: append reports to file instead of stderr"},
    {"MallocCheckHeapStart", OPTION_COUNT, &O->check_heap_start,
     "<n>: check every zone's heap from the n-th operation on"},
    {"MallocCheckHeapEach", OPTION_COUNT, &O->check_heap_each,
     "<n>: then check again every n operations (default 1000)"},
    {"MallocCheckHeapSleep", OPTION_SIGNED_SECONDS, &O->check_heap_sleep,
     "<s>: sleep s seconds when a check fails (default 100; negative: "
     "only the first time)"},
    {"MallocCheckHeapAbort", OPTION_FLAG, &O->check_heap_abort,
     "abort() when a check fails, instead of sleeping"},
    {"MallocStackLogging", OPTION_STACK_LOGGING, &O->stack_logging,
     "record the stack of every block: lite (or 1) for live blocks only, "
     "full for every malloc and vm event, malloc or vm for those events "
     "only (0 turns it off)"},
    {"MallocStackLoggingNoCompact", OPTION_FLAG, &O->stack_logging_no_compact,
     "full stack logging that keeps allocations freed right away"},
    {"MallocStackLoggingDirectory", OPTION_DIRECTORY,
     O->stack_logging_directory,
     "<directory> where stack logs go (default " MDLOG_DEFAULT_DIRECTORY ")"},
    {"MallocStackLoggingNoReaping", OPTION_FLAG, &O->stack_logging_no_reaping,
     "keep the stack logs of processes that no longer exist"},
    {"MallocStackLoggingDontDeleteStackLogFile", OPTION_FLAG,
     &O->stack_logging_keep,
     "(extension) keep this process's stack log when it exits"},
    {"MallocStackLoggingKeepForPid", OPTION_COUNT,
     &O->stack_logging_keep_for_pid,
     "<pid>: (extension) keep the stack log of that process only (leaks --atExit sets it)"},
    {"MallocFailAfter", OPTION_COUNT, &O->fail_after,
     "<n>: (extension) every allocation after the n-th fails with ENOMEM"},
    {"MallocFailRate", OPTION_COUNT, &O->fail_rate,
     "<n>: (extension) one allocation in n, at random, fails with ENOMEM"},
    {"MallocFailSeed", OPTION_COUNT, &O->fail_seed,
     "<n>: (extension) seed of MallocFailRate's choices (default 1)"},
};
#undef O

/* "prog(pid,0xthread) malloc: " then the pieces, on stderr: options are
 * read before the report stream is known. */
static void options_say(const char *first, const char *second,
                        const char *third, const char *fourth)
{
    struct report_line line;
    report_line_begin(&line);
    const char *pieces[] = {first, second, third, fourth};
    for (unsigned i = 0; i < 4; i++)
        if (pieces[i])
            report_append(&line, pieces[i]);
    report_line_write_to(&line, STDERR_FILENO);
}

static void options_warn(const struct option_spec *spec, const char *value,
                         const char *expected)
{
    struct report_line line;
    report_line_begin(&line);
    report_append(&line, spec->name);
    report_append(&line, "=");
    report_append(&line, value);
    report_append(&line, " is not valid (");
    report_append(&line, expected);
    report_append(&line, "); using the default");
    report_line_write_to(&line, STDERR_FILENO);
}

static bool parse_flag(const char *value, bool *flag)
{
    static const char *const yes[] = {"", "1", "YES", "yes", "Y", "y", "true"};
    static const char *const no[] = {"0", "NO", "no", "N", "n", "false"};
    for (unsigned i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (strcmp(value, yes[i]) == 0)
            return *flag = true;
    for (unsigned i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (strcmp(value, no[i]) == 0)
            return !(*flag = false);
    return false;
}

static bool parse_number(const char *value, bool allow_negative, long long *number)
{
    if (!*value || (*value == '-' && !allow_negative))
        return false;
    char *end;
    errno = 0;
    *number = strtoll(value, &end, 10);
    return errno == 0 && *end == '\0' && end != value;
}

/* MallocStackLogging=0 was given: MallocStackLoggingNoCompact does not
 * turn logging on then. */
static bool stack_logging_turned_off;

/* As macOS: lite, malloc and vm by name; 1 is lite; 0 (an addition)
 * turns logging off; any other value asks for everything, said once: a
 * mistyped "lite" would otherwise cost full mode's time silently. */
static bool parse_stack_logging(const char *value, unsigned *mode)
{
    static const struct {
        const char *name;
        unsigned mode;
    } names[] = {{"0", 0},
                 {"1", MDLOG_MODE_LITE},
                 {"lite", MDLOG_MODE_LITE},
                 {"malloc", MDLOG_MODE_MALLOC},
                 {"vm", MDLOG_MODE_VM},
                 {"full", MDLOG_MODE_FULL}};
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(value, names[i].name) == 0) {
            *mode = names[i].mode;
            stack_logging_turned_off = *mode == 0;
            return true;
        }
    options_say("MallocStackLogging=", value,
                ": not a mode (1, lite, full, malloc, vm, or 0 for off); "
                "recording every event (full mode), as for any other value",
                NULL);
    *mode = MDLOG_MODE_FULL;
    stack_logging_turned_off = false;
    return true;
}

static void options_print_help(void)
{
    options_say("environment variables that can be set for debug:", NULL, NULL,
                NULL);
    for (unsigned i = 0; i < sizeof(option_specs) / sizeof(option_specs[0]); i++)
        options_say("- ", option_specs[i].name,
                    option_specs[i].help[0] == '<' ? " " : ": ",
                    option_specs[i].help);
}

#define SECONDS_MAX 86400

/* False when the value does not fit the option: the default stays. */
static bool option_set(const struct option_spec *spec, const char *value)
{
    long long number;
    bool flag;
    switch (spec->kind) {
    case OPTION_HELP:
        options_print_help();
        return true;
    case OPTION_FLAG:
        if (!parse_flag(value, &flag))
            return false;
        *(bool *)spec->target = flag;
        return true;
    case OPTION_COUNT:
        if (!parse_number(value, false, &number))
            return false;
        *(uint64_t *)spec->target = (uint64_t)number;
        return true;
    case OPTION_SECONDS:
        if (!parse_number(value, false, &number) || number > SECONDS_MAX)
            return false;
        *(unsigned *)spec->target = (unsigned)number;
        return true;
    case OPTION_SIGNED_SECONDS:
        if (!parse_number(value, true, &number) || number > SECONDS_MAX ||
            number < -SECONDS_MAX)
            return false;
        *(long *)spec->target = (long)number;
        return true;
    case OPTION_REPORT: {
        static const char *const targets[] = {"stderr", "none", "crash"};
        for (unsigned i = 0; i < 3; i++)
            if (strcmp(value, targets[i]) == 0) {
                *(enum options_report_target *)spec->target = i;
                return true;
            }
        return false;
    }
    case OPTION_GUARD_EDGES:
        if (strcmp(value, "all") == 0) {
            *(enum options_guard_edges *)spec->target = OPTIONS_GUARD_EDGES_ALL;
            return true;
        }
        if (!parse_flag(value, &flag))
            return false;
        *(enum options_guard_edges *)spec->target =
            flag ? OPTIONS_GUARD_EDGES_LARGE : OPTIONS_GUARD_EDGES_NONE;
        return true;
    case OPTION_STACK_LOGGING:
        return parse_stack_logging(value, spec->target);
    case OPTION_DIRECTORY:
        if (value[0] != '/' || strlen(value) >= OPTIONS_DIRECTORY_MAX)
            return false;
        strcpy(spec->target, value);
        return true;
    case OPTION_FILE: {
        int fd = open(value, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
            return false;
        *(int *)spec->target = fd;
        return true;
    }
    }
    return false;
}

static const char *option_expected(enum option_kind kind)
{
    switch (kind) {
    case OPTION_FLAG:
        return "expected 0 or 1";
    case OPTION_COUNT:
        return "expected a whole number";
    case OPTION_SECONDS:
        return "expected a number of seconds up to 86400";
    case OPTION_SIGNED_SECONDS:
        return "expected a number of seconds from -86400 to 86400";
    case OPTION_REPORT:
        return "expected stderr, none or crash";
    case OPTION_GUARD_EDGES:
        return "expected 0, 1 or all";
    case OPTION_STACK_LOGGING:
        return "";
    case OPTION_DIRECTORY:
        return "expected an absolute path shorter than 3968 bytes";
    case OPTION_FILE:
        return "cannot open that file for appending; reports go to stderr";
    case OPTION_HELP:
        break;
    }
    return "";
}

static void option_apply(const char *entry)
{
    for (unsigned i = 0; i < sizeof(option_specs) / sizeof(option_specs[0]); i++) {
        size_t length = strlen(option_specs[i].name);
        if (strncmp(entry, option_specs[i].name, length) == 0 &&
            entry[length] == '=') {
            const char *value = entry + length + 1;
            if (!option_set(&option_specs[i], value))
                options_warn(&option_specs[i], value,
                             option_expected(option_specs[i].kind));
            return;
        }
    }
}

/* Ours: the Malloc* variables and libgmalloc's MALLOC_* controls (the
 * table tells which; glibc's own MALLOC_* variables are left alone). */
static bool option_candidate(const char *entry)
{
    return strncmp(entry, "Malloc", 6) == 0 || strncmp(entry, "MALLOC_", 7) == 0;
}

/* The environment as NUL-separated entries, for when libc has not set
 * `environ` yet. */
static char proc_environ[128 * 1024];

static void options_read_proc_environ(void)
{
    int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t total = 0, n;
    while (total < (ssize_t)sizeof(proc_environ) - 1 &&
           (n = read(fd, proc_environ + total,
                     sizeof(proc_environ) - 1 - (size_t)total)) > 0)
        total += n;
    close(fd);
    for (char *entry = proc_environ; entry < proc_environ + total;
         entry += strlen(entry) + 1)
        if (option_candidate(entry))
            option_apply(entry);
}

/* Guard Malloc's rules win over the scalable zones' fills: its freed
 * blocks are inaccessible, so there is nothing to fill or check, and
 * MALLOC_FILL_SPACE fills its new blocks instead.  Saying so beats
 * silently filling only the blocks of zones the program creates. */
static void options_settle_guard_malloc(void)
{
    struct malloc_options *o = &malloc_options;
    if (!o->guard_malloc ||
        !(o->scribble || o->pre_scribble || o->zero_on_free ||
          o->check_zero_on_free))
        return;
    o->scribble = o->pre_scribble = false;
    o->zero_on_free = o->check_zero_on_free = false;
    options_say("MallocGuardMalloc: MallocScribble, MallocPreScribble, "
                "MallocZeroOnFree and MallocCheckZeroOnFreeCorruption are "
                "ignored", NULL, NULL, NULL);
}

static void options_summarize(void)
{
    struct malloc_options *o = &malloc_options;
    options_settle_guard_malloc();
    if (o->check_heap_start) {
        o->active |= OPTIONS_ACTIVE_CHECK_HEAP;
        if (o->check_heap_each == 0)
            o->check_heap_each = 1000;
    }
    if (o->fail_after || o->fail_rate)
        o->active |= OPTIONS_ACTIVE_FAILURES;
    /* NoCompact asks for the whole history, as on macOS, unless logging
     * was turned off. */
    if (o->stack_logging_no_compact && !stack_logging_turned_off &&
        (o->stack_logging == 0 || o->stack_logging == MDLOG_MODE_LITE)) {
        if (o->stack_logging == MDLOG_MODE_LITE)
            options_say("MallocStackLoggingNoCompact: records every event: "
                        "full mode rather than lite", NULL, NULL, NULL);
        o->stack_logging = MDLOG_MODE_FULL;
    }
}

void options_read(void)
{
    if (getauxval(AT_SECURE))
        return;
    extern char **environ;
    int saved_errno = errno;
    if (environ) {
        for (char **entry = environ; *entry; entry++)
            if (option_candidate(*entry))
                option_apply(*entry);
    } else {
        options_read_proc_environ();
    }
    options_summarize();
    errno = saved_errno;
}
