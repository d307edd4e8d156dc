/*
 * history_bench: how long the history (tools/history.h) takes on a big
 * log: the replay, the live blocks grouped by size, and the call tree,
 * as malloc_history -allBySize and -callTree would run them.
 *
 *   history_bench [EVENTS]    a synthetic log of EVENTS events (default
 *                             10 000 000), made with tests/log_builder.c
 *   history_bench -l LOG      a log written by the library, e.g. of
 *                             bench/workload under MallocStackLogging=full
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
    printf("build log            %8.3f s (not counted)\n", now() - start);
    return reader;
}

struct step {
    double started;
};

static void step_begin(struct step *step)
{
    step->started = now();
}

static double step_end(struct step *step, const char *name, bool ok)
{
    double seconds = now() - step->started;
    if (!ok)
        die("out of memory");
    printf("%-20s %8.3f s\n", name, seconds);
    return seconds;
}

static double measure_reports(struct history *history,
                              const struct log_reader *reader)
{
    struct step step;
    struct history_selection live;
    struct history_groups groups;
    struct history_tree tree, inverted;
    double total = 0;
    step_begin(&step);
    total += step_end(&step, "live at end", history_live_at_end(history, &live));
    step_begin(&step);
    total += step_end(&step, "group by size",
                      history_group_by_stack(history, &live, HISTORY_BY_SIZE, &groups));
    step_begin(&step);
    total += step_end(&step, "call tree", history_tree_build(reader, &groups, false, &tree));
    printf("  %zu blocks, %zu stacks, %zu tree nodes\n", live.count,
           groups.count, tree.count);
    step_begin(&step);
    step_end(&step, "inverted tree", history_tree_build(reader, &groups, true, &inverted));
    history_tree_free(&tree);
    history_tree_free(&inverted);
    history_groups_free(&groups);
    history_selection_free(&live);
    return total;
}

static void measure_queries(struct history *history)
{
    struct step step;
    struct history_selection selection;
    struct history_groups groups;
    step_begin(&step);
    step_end(&step, "live at peak", history_live_at_peak(history, &selection));
    history_selection_free(&selection);
    step_begin(&step);
    bool ok = history_temporaries(history, &selection) &&
              history_group_by_stack(history, &selection, HISTORY_BY_COUNT, &groups);
    step_end(&step, "temporaries", ok);
    history_groups_free(&groups);
    history_selection_free(&selection);
    size_t count;
    const struct history_event *events = history_events(history, &count);
    step_begin(&step);
    ok = history_events_at_address(history, count ? events[0].address : 0, &selection);
    step_end(&step, "address index", ok);
    history_selection_free(&selection);
    uint64_t seed = 3, found = 0;
    step_begin(&step);
    for (unsigned i = 0; i < 10000 && count > 0 && ok; i++) {
        const struct history_event *event = &events[next_random(&seed) % count];
        ok = history_events_at_address(history, event->address + event->size / 2,
                                       &selection);
        found += selection.count;
        history_selection_free(&selection);
    }
    step_end(&step, "10000 addresses", ok);
    printf("  %" PRIu64 " events found\n", found);
}

int main(int argc, char **argv)
{
    struct log_reader *reader;
    if (argc == 3 && strcmp(argv[1], "-l") == 0)
        reader = open_log(argv[2]);
    else if (argc <= 2)
        reader = synthetic_log(argc == 2 ? strtoull(argv[1], NULL, 0) : 10000000);
    else {
        fprintf(stderr, "usage: history_bench [EVENTS] | history_bench -l LOG\n");
        return 2;
    }
    char message[512];
    struct step step;
    step_begin(&step);
    struct history *history = history_replay(reader, message, sizeof(message));
    if (history == NULL)
        die(message);
    double total = step_end(&step, "replay", true);
    const struct history_summary *summary = history_summary(history);
    printf("  %" PRIu64 " allocations, %" PRIu64 " frees, %" PRIu64
           " vm events, peak %" PRIu64 " bytes in %" PRIu64 " blocks\n",
           summary->allocations, summary->frees, summary->vm_events,
           summary->peak.bytes, summary->peak.count);
    total += measure_reports(history, reader);
    printf("%-20s %8.3f s (replay, live, group by size, call tree)\n", "total",
           total);
    measure_queries(history);
    history_free(history);
    log_reader_close(reader);
    return 0;
}
