/*
 * history_bench: how long the history (tools/history.h) takes on a big
 * log: the replay, the live blocks grouped by size, and the call tree,
 * as malloc_history -allBySize and -callTree would run them.
 *
 *   history_bench [-n RUNS] [EVENTS]   a synthetic log of EVENTS events
 *                                      (default 10 000 000), made with
 *                                      tests/log_builder.c
 *   history_bench [-n RUNS] -l LOG     a log written by the library, e.g.
 *                                      of bench/workload under
 *                                      MallocStackLogging=full
 *
 * The synthetic log: 4 threads, 8 000 stacks 12 to 24 frames deep that
 * share their outer frames, a million blocks allocated first, then
 * frees and allocations (some callocs, some reallocs) at random slots
 * with skewed stacks, half of them at the address just freed.  Prints one line per step, in seconds, and the
 * total of replay, grouping and tree.  Not a test: nothing is checked
 * but that each step succeeds.
 */
#include "config.h"

#include "../tests/log_builder.h"
#include "../tools/history.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADS 4
#define OUTER 50        /* outer call paths per thread */
#define INNER 40        /* inner paths under each */
#define SLOTS 1000000   /* blocks live after the first phase */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void die(const char *what)
{
    fprintf(stderr, "history_bench: %s\n", what);
    exit(1);
}

/* Stacks of one thread: OUTER chains of 10 frames from the thread node,
 * each with INNER chains of 2 to 14 more. */
static void build_stacks(struct log_builder *builder, uint32_t thread,
                         uint64_t *seed, uint32_t *stacks)
{
    uint32_t root = log_builder_thread_node(builder, thread);
    for (unsigned o = 0; o < OUTER; o++) {
        uint32_t outer = root;
        for (unsigned depth = 0; depth < 10; depth++)
            outer = log_builder_frame(builder, outer,
                                      0x400000 + 0x40 * (o * 10 + depth), 0);
        for (unsigned i = 0; i < INNER; i++) {
            uint32_t inner = outer;
            unsigned depth = 2 + (unsigned)(next_random(seed) % 13);
            for (unsigned d = 0; d < depth; d++)
                inner = log_builder_frame(builder, inner,
                                          0x7f0000000000 + 0x10 * (next_random(seed) % 4096),
                                          1 + d % 3);
            stacks[o * INNER + i] = inner;
        }
    }
}

/* A stack index skewed towards the first ones, as real programs
 * allocate mostly from a few places. */
static uint32_t pick_stack(const uint32_t *stacks, uint64_t *seed)
{
    uint64_t range = 1 + next_random(seed) % (OUTER * INNER);
    return stacks[next_random(seed) % range];
}

static struct log_builder *build_log(uint64_t events)
{
    struct log_builder *builder = log_builder_create(MDLOG_CHUNK_SIZE, 4242);
    static uint32_t stacks[THREADS][OUTER * INNER];
    uint64_t seed = 7;
    for (uint32_t t = 0; t < THREADS; t++)
        build_stacks(builder, 1000 + t, &seed, stacks[t]);
    uint64_t *slots = calloc(SLOTS, sizeof(*slots));
    if (slots == NULL)
        die("out of memory");
    uint64_t next_address = 0x100000000;
    for (uint64_t made = 0; made < events;) {
        uint32_t t = (uint32_t)(next_random(&seed) % THREADS);
        uint64_t slot = made < SLOTS ? made : next_random(&seed) % SLOTS;
        uint64_t size = 16 + next_random(&seed) % 500;
        uint32_t stack = pick_stack(stacks[t], &seed);
        uint64_t dice = next_random(&seed) % 10;
        /* Half the time the allocator hands the freed address out again. */
        uint64_t address = next_address;
        if (slots[slot] != 0 && dice >= 5)
            address = slots[slot];
        else
            next_address += (size + 31) & ~(uint64_t)15;
        if (slots[slot] != 0 && dice == 0) {
            log_builder_event(builder, 1000 + t, MDLOG_EVENT_FREE | MDLOG_EVENT_REALLOC,
                              slots[slot], 0, stack);
            log_builder_event(builder, 1000 + t, MDLOG_EVENT_ALLOC | MDLOG_EVENT_REALLOC,
                              address, size, stack);
        } else {
            if (slots[slot] != 0)
                log_builder_event(builder, 1000 + t, MDLOG_EVENT_FREE,
                                  slots[slot], 0, stack);
            unsigned type = MDLOG_EVENT_ALLOC | (dice == 1 ? MDLOG_EVENT_CLEARED : 0);
            log_builder_event(builder, 1000 + t, type, address, size, stack);
        }
        made += slots[slot] != 0 ? 2 : 1;
        slots[slot] = address;
    }
    free(slots);
    return builder;
}

static struct log_reader *open_log(const char *path)
{
    char message[512];
    struct log_reader *reader = log_reader_open(path, message, sizeof(message));
    if (reader == NULL)
        die(message);
    return reader;
}

static struct log_reader *synthetic_log(uint64_t events)
{
    double start = now();
    struct log_builder *builder = build_log(events);
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[512];
    snprintf(path, sizeof(path), "%s/history_bench.XXXXXX", base);
    int fd = mkstemp(path);
    if (fd < 0)
        die("cannot make a temporary file (set TMPDIR)");
    close(fd);
    if (!log_builder_write(builder, path))
        die("cannot write the log (set TMPDIR)");
    log_builder_destroy(builder);
    struct log_reader *reader = open_log(path);
    unlink(path);
    printf("log built in %.3f s (not counted)\n", now() - start);
    return reader;
}

/* ---- timing ---- */

enum step_name { REPLAY, LIVE, GROUP, TREE, INVERTED, END, TEMPORARIES,
                 ADDRESS_INDEX, ADDRESSES, STEPS };
static const char *const step_names[STEPS] = {
    "replay", "live at peak", "group by size", "call tree", "inverted tree",
    "live at end", "temporaries", "address index", "10000 addresses"};
/* Counted in the total: what malloc_history -allBySize and -callTree
 * need, on the blocks live at the high-water mark (the most there ever
 * were; the recorded workloads free everything before they exit). */
static const bool counted[STEPS] = {true, true, true, true};

#define RUNS_MAX 20
static double seconds[STEPS][RUNS_MAX];

static double started;

static void step_begin(void)
{
    started = now();
}

static void step_end(enum step_name step, unsigned run, bool ok)
{
    seconds[step][run] = now() - started;
    if (!ok)
        die("out of memory");
}

static void run_reports(struct history *history, const struct log_reader *reader,
                        unsigned run)
{
    struct history_selection live;
    struct history_groups groups;
    struct history_tree tree, inverted;
    step_begin();
    step_end(LIVE, run, history_live_at_peak(history, &live));
    step_begin();
    step_end(GROUP, run, history_group_by_stack(history, &live, HISTORY_BY_SIZE, &groups));
    step_begin();
    step_end(TREE, run, history_tree_build(reader, &groups, false, &tree));
    step_begin();
    step_end(INVERTED, run, history_tree_build(reader, &groups, true, &inverted));
    if (run == 0)
        printf("peak: %zu live blocks, %zu stacks, %zu tree nodes, %zu inverted\n",
               live.count, groups.count, tree.count, inverted.count);
    history_tree_free(&tree);
    history_tree_free(&inverted);
    history_groups_free(&groups);
    history_selection_free(&live);
}

static void run_queries(struct history *history, unsigned run)
{
    struct history_selection selection;
    struct history_groups groups;
    step_begin();
    step_end(END, run, history_live_at_end(history, &selection));
    history_selection_free(&selection);
    step_begin();
    bool ok = history_temporaries(history, &selection) &&
              history_group_by_stack(history, &selection, HISTORY_BY_COUNT, &groups);
    step_end(TEMPORARIES, run, ok);
    history_groups_free(&groups);
    history_selection_free(&selection);
    size_t count;
    const struct history_event *events = history_events(history, &count);
    step_begin();
    ok = history_events_at_address(history, count ? events[0].address : 0, &selection);
    step_end(ADDRESS_INDEX, run, ok);
    history_selection_free(&selection);
    uint64_t seed = 3;
    step_begin();
    for (unsigned i = 0; i < 10000 && count > 0 && ok; i++) {
        const struct history_event *event = &events[next_random(&seed) % count];
        ok = history_events_at_address(history, event->address + event->size / 2,
                                       &selection);
        history_selection_free(&selection);
    }
    step_end(ADDRESSES, run, ok);
}

static void run_once(const struct log_reader *reader, unsigned run)
{
    char message[512];
    step_begin();
    struct history *history = history_replay(reader, message, sizeof(message));
    step_end(REPLAY, run, history != NULL);
    if (run == 0) {
        const struct history_summary *summary = history_summary(history);
        printf("log: %" PRIu64 " allocations, %" PRIu64 " frees, %" PRIu64
               " vm events; peak %" PRIu64 " bytes in %" PRIu64 " blocks\n",
               summary->allocations, summary->frees, summary->vm_events,
               summary->peak.bytes, summary->peak.count);
    }
    run_reports(history, reader, run);
    run_queries(history, run);
    history_free(history);
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, unsigned count)
{
    qsort(values, count, sizeof(*values), by_value);
    return count % 2 ? values[count / 2]
                     : (values[count / 2 - 1] + values[count / 2]) / 2;
}

static void report_row(const char *name, double *values, unsigned runs)
{
    double first = values[0];
    double m = median(values, runs);
    printf("%-22s %8.3f %8.3f %8.3f %8.3f\n", name, first, m, values[0],
           values[runs - 1]);
}

/* One row per step: the first run (the one a tool started afresh
 * pays: the log's pages and fresh memory fault in), the median, the
 * fastest and the slowest. */
static void report(unsigned runs)
{
    double total[RUNS_MAX] = {0};
    for (unsigned r = 0; r < runs; r++)
        for (int step = 0; step < STEPS; step++)
            if (counted[step])
                total[r] += seconds[step][r];
    printf("%-22s %8s %8s %8s %8s\n", "step (seconds)", "first", "median",
           "min", "max");
    for (int step = 0; step < STEPS; step++)
        report_row(step_names[step], seconds[step], runs);
    report_row("total (first four)", total, runs);
}

static void usage(void)
{
    fprintf(stderr, "usage: history_bench [-n RUNS] [EVENTS | -l LOG]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    unsigned runs = 5;
    const char *log = NULL;
    uint64_t events = 10000000;
    int option;
    while ((option = getopt(argc, argv, "n:l:")) != -1) {
        if (option == 'n')
            runs = (unsigned)strtoul(optarg, NULL, 0);
        else if (option == 'l')
            log = optarg;
        else
            usage();
    }
    if (runs == 0 || runs > RUNS_MAX || optind + (log ? 0 : 1) < argc)
        usage();
    if (optind < argc)
        events = strtoull(argv[optind], NULL, 0);
    struct log_reader *reader = log ? open_log(log) : synthetic_log(events);
    for (unsigned run = 0; run < runs; run++)
        run_once(reader, run);
    report(runs);
    log_reader_close(reader);
    return 0;
}
