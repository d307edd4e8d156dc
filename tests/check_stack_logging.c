/*
 * MallocStackLogging end to end: tests/stacklog_probe runs a scenario
 * with the variables set, keeping its log in a directory of the test's;
 * the log is then read with the tools' reader and what it holds is
 * checked against what the probe printed: events, their order and
 * threads, stacks that lead back to the right function, the log's life
 * cycle, fork, vm events, reaping, and the program's own malloc_logger.
 */
#include "config.h"
#include "test_util.h"
#include "../tools/log_reader.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROBE "tests/stacklog_probe"
#define EVENTS_MAX 4096

static char directory[256];
static char directory_setting[300];

static void make_directory(void)
{
    snprintf(directory, sizeof(directory), "/tmp/md-stacklog-%d", (int)getpid());
    mkdir(directory, 0700);
    snprintf(directory_setting, sizeof(directory_setting),
             "MallocStackLoggingDirectory=%s", directory);
}

/* Files in the test's directory; the name of the last into `name`. */
static unsigned directory_logs(char *name, size_t size)
{
    DIR *dir = opendir(directory);
    unsigned count = 0;
    for (struct dirent *entry; dir && (entry = readdir(dir));)
        if (entry->d_name[0] != '.') {
            count++;
            if (name)
                snprintf(name, size, "%s/%s", directory, entry->d_name);
        }
    if (dir)
        closedir(dir);
    return count;
}

static void clear_directory(void)
{
    DIR *dir = opendir(directory);
    char path[600];
    for (struct dirent *entry; dir && (entry = readdir(dir));)
        if (entry->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", directory, entry->d_name);
            unlink(path);
        }
    if (dir)
        closedir(dir);
}

static void log_path_of(unsigned long pid, char *path, size_t size)
{
    snprintf(path, size, "%s/" MDLOG_FILE_PREFIX "%lu.stacklog_probe"
             MDLOG_FILE_SUFFIX, directory, pid);
}

static struct log_reader *open_log_of(unsigned long pid)
{
    char path[512], message[512];
    log_path_of(pid, path, sizeof(path));
    struct log_reader *reader = log_reader_open(path, message, sizeof(message));
    ck_assert_msg(reader != NULL, "%s", message);
    return reader;
}

static void run_probe(struct probe_run *run, const char *action,
                      const char *mode, const char *extra)
{
    const char *settings[] = {mode, directory_setting,
                              "MallocStackLoggingDontDeleteStackLogFile=1",
                              extra, NULL};
    probe(run, PROBE, action, settings, false);
}

/* ---- exec ---- */

/* exec starts a fresh log.  The old image's log is replaced, unless it
 * was kept on purpose: then the new log takes the next name. */
START_TEST(test_exec_starts_a_fresh_log)
{
    struct probe_run run;
    run_probe(&run, "exec_sites", "MallocStackLogging=full", NULL);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    unsigned long pid = output_value(run.out, "pid");
    ck_assert_uint_eq(directory_logs(NULL, 0), 2);
    char first[600], second[600];
    snprintf(first, sizeof(first), "%s/" MDLOG_FILE_PREFIX "%lu.stacklog_probe"
             MDLOG_FILE_SUFFIX, directory, pid);
    snprintf(second, sizeof(second), "%s/" MDLOG_FILE_PREFIX "%lu.stacklog_probe.2"
             MDLOG_FILE_SUFFIX, directory, pid);
    const char *paths[] = {first, second};
    uint64_t events[2];
    for (int i = 0; i < 2; i++) {
        char message[512];
        struct log_reader *reader = log_reader_open(paths[i], message, sizeof(message));
        ck_assert_msg(reader != NULL, "%s", message);
        events[i] = log_reader_event_count(reader);
        log_reader_close(reader);
    }
    /* The second image ran "sites" as well: more events than the first. */
    ck_assert_uint_gt(events[0], 0);
    ck_assert_uint_gt(events[1], events[0]);
    clear_directory();

    /* Not kept: the new image replaces the old log, and removes its own
     * at exit. */
    const char *settings[] = {"MallocStackLogging=full", directory_setting, NULL};
    probe(&run, PROBE, "exec_sites", settings, false);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    ck_assert_uint_eq(directory_logs(NULL, 0), 0);
}
END_TEST

/* ---- events ---- */

struct events {
    unsigned count;
    struct log_reader_event list[EVENTS_MAX];
};

static int collect(const struct log_reader_event *event, void *context)
{
    struct events *events = context;
    if (events->count < EVENTS_MAX)
        events->list[events->count++] = *event;
    return 0;
}

/* The orders of the walk: never going down, and going up along each
 * thread and along each block's events (threads count their orders
 * apart, so two threads' events may share one). */
static void check_orders(const struct events *events)
{
    for (unsigned i = 1; i < events->count; i++) {
        const struct log_reader_event *event = &events->list[i];
        ck_assert_uint_le(events->list[i - 1].order, event->order);
        for (unsigned j = i; j-- > 0;) {
            const struct log_reader_event *earlier = &events->list[j];
            if (earlier->thread != event->thread &&
                earlier->address != event->address)
                continue;
            ck_assert_msg(earlier->order < event->order,
                          "event %u (thread %u, %#llx) has the order %llu of "
                          "event %u (thread %u, %#llx)", i, event->thread,
                          (unsigned long long)event->address,
                          (unsigned long long)event->order, j, earlier->thread,
                          (unsigned long long)earlier->address);
            break;
        }
    }
}

static struct events *read_events(struct log_reader *reader)
{
    static struct events events;
    events.count = 0;
    ck_assert_int_eq(log_reader_for_each_event(reader, collect, &events), 0);
    check_orders(&events);
    return &events;
}

/* Runs the probe's `action` in full mode, which must exit cleanly: its
 * log, opened into *reader, and its events. */
static struct events *full_probe_events(struct probe_run *run,
                                        const char *action,
                                        struct log_reader **reader)
{
    run_probe(run, action, "MallocStackLogging=full", NULL);
    ck_assert_msg(exited_cleanly(run), "%s", run->err);
    *reader = open_log_of(output_value(run->out, "pid"));
    return read_events(*reader);
}

/* The first event of `kind` at `address` with every flag of `flags`. */
static const struct log_reader_event *
find_event_flagged(const struct events *events, unsigned kind, unsigned flags,
                   unsigned long address)
{
    for (unsigned i = 0; i < events->count; i++)
        if ((events->list[i].type & MDLOG_EVENT_KIND_MASK) == kind &&
            (events->list[i].type & flags) == flags &&
            events->list[i].address == address)
            return &events->list[i];
    return NULL;
}

static const struct log_reader_event *find_event(const struct events *events,
                                                 unsigned kind,
                                                 unsigned long address)
{
    return find_event_flagged(events, kind, 0, address);
}

/* True when a frame of `stack` returns into the function at `function`. */
static bool stack_has_function(struct log_reader *reader, uint32_t stack,
                               unsigned long function)
{
    uint64_t pcs[MDLOG_MAX_FRAMES];
    size_t count = log_reader_stack_frames(reader, stack, pcs, NULL,
                                           MDLOG_MAX_FRAMES);
    for (size_t i = 0; i < count; i++)
        if (pcs[i] > function && pcs[i] - function < 96)
            return true;
    return false;
}

static const struct log_reader_event *
expect_event(struct log_reader *reader, const struct events *events,
             unsigned kind, unsigned long address, unsigned long site)
{
    const struct log_reader_event *event = find_event(events, kind, address);
    ck_assert_msg(event != NULL, "no event %u for %#lx", kind, address);
    if (site)
        ck_assert_msg(stack_has_function(reader, event->stack, site),
                      "the stack of %#lx does not pass through %#lx", address,
                      site);
    return event;
}

START_TEST(test_full_mode_records_events_with_stacks)
{
    struct probe_run run;
    run_probe(&run, "sites", "MallocStackLogging=full", NULL);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    unsigned long pid = output_value(run.out, "pid");
    unsigned long site_a = output_value(run.out, "site_a");
    unsigned long site_b = output_value(run.out, "site_b");
    char path[512], announce[700];
    log_path_of(pid, path, sizeof(path));
    snprintf(announce, sizeof(announce),
             "(%lu) MallocStackLogging: recording malloc stacks to %s (full mode)\n",
             pid, path);
    ck_assert_msg(strstr(run.err, announce), "%s", run.err);

    struct log_reader *reader = open_log_of(pid);
    const struct mdlog_header *header = log_reader_header(reader);
    ck_assert_int_eq(header->mode, MDLOG_MODE_FULL);
    ck_assert_int_eq(header->state, MDLOG_STATE_EXITED);
    ck_assert_int_eq(header->pid, (int)pid);
    struct events *events = read_events(reader);
    ck_assert_uint_eq(header->event_count, log_reader_event_count(reader));

    uint32_t stacks[3];
    const char *line = run.out;
    for (int i = 0; i < 3; i++) {
        line = strstr(line, "\na ") + 1;
        unsigned long address = strtoul(line + 2, NULL, 0);
        const struct log_reader_event *event =
            expect_event(reader, events, MDLOG_EVENT_ALLOC, address, site_a);
        ck_assert_uint_eq(event->size, strtoul(strchr(line + 2, ' '), NULL, 0));
        ck_assert_uint_eq(event->thread, pid);
        uint32_t thread = 0;
        ck_assert(log_reader_stack_thread(reader, event->stack, &thread));
        ck_assert_uint_eq(thread, pid);
        stacks[i] = event->stack;
    }
    /* One call site, one stack. */
    ck_assert_uint_eq(stacks[0], stacks[1]);
    ck_assert_uint_eq(stacks[1], stacks[2]);
    unsigned long b = strtoul(strstr(run.out, "\nb ") + 3, NULL, 0);
    const struct log_reader_event *calloc_event =
        expect_event(reader, events, MDLOG_EVENT_ALLOC, b, site_b);
    ck_assert(calloc_event->type & MDLOG_EVENT_CLEARED);
    ck_assert_uint_ne(calloc_event->stack, stacks[0]);

    unsigned long freed = output_value(run.out, "freed");
    const struct log_reader_event *free_event =
        expect_event(reader, events, MDLOG_EVENT_FREE, freed, 0);
    ck_assert_uint_gt(free_event->order,
                      find_event(events, MDLOG_EVENT_ALLOC, freed)->order);
    log_reader_close(reader);
    clear_directory();
}
END_TEST

/* Stacks taken again are found in the thread's cache without unwinding:
 * a cached stack must never stand in for another one that only differs
 * further out. */
/* Which of `functions` (sorted by address) each frame of `stack` returns
 * into, as a bit set: the nearest one below the frame's address.  The
 * functions are small, so a plain distance would mistake one for the
 * next. */
static unsigned stack_functions(struct log_reader *reader, uint32_t stack,
                                const unsigned long *functions, unsigned count)
{
    uint64_t pcs[MDLOG_MAX_FRAMES];
    size_t frames = log_reader_stack_frames(reader, stack, pcs, NULL,
                                            MDLOG_MAX_FRAMES);
    unsigned found = 0;
    for (size_t i = 0; i < frames; i++) {
        int nearest = -1;
        for (unsigned f = 0; f < count; f++)
            if (functions[f] < pcs[i] &&
                (nearest < 0 || functions[f] > functions[nearest]))
                nearest = (int)f;
        if (nearest >= 0 && pcs[i] - functions[nearest] < 256)
            found |= 1u << nearest;
    }
    return found;
}

static int compare_address(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    return x < y ? -1 : x > y;
}

static unsigned function_bit(const unsigned long *sorted, unsigned count,
                             unsigned long function)
{
    for (unsigned f = 0; f < count; f++)
        if (sorted[f] == function)
            return 1u << f;
    return 0;
}

/* Stacks taken again are found in the thread's cache without unwinding:
 * a cached stack must never stand in for another one that only differs
 * further out. */
START_TEST(test_callers_at_the_same_depth_get_their_own_stacks)
{
    struct probe_run run;
    struct log_reader *reader;
    struct events *events = full_probe_events(&run, "callers", &reader);
    static const char *const names[] = {"leaf", "caller_a", "caller_b",
                                        "deeper_a", "callers"};
    enum { NAMES = sizeof(names) / sizeof(names[0]) };
    unsigned long functions[NAMES], sorted[NAMES];
    for (unsigned f = 0; f < NAMES; f++)
        sorted[f] = functions[f] = output_value(run.out, names[f]);
    qsort(sorted, NAMES, sizeof(sorted[0]), compare_address);
    const unsigned a = function_bit(sorted, NAMES, functions[1]),
                   b = function_bit(sorted, NAMES, functions[2]),
                   d = function_bit(sorted, NAMES, functions[3]);
    /* The functions each path's stacks pass through, of these three. */
    const unsigned expected[3] = {a, b, a | d};

    uint32_t stack_of[3] = {0, 0, 0};
    unsigned checked = 0;
    for (const char *line = run.out; (line = strstr(line, "\n")) != NULL;) {
        line++;
        const char *paths = "abd";
        const char *path = line[0] && line[1] == ' ' ? strchr(paths, line[0])
                                                      : NULL;
        if (!path)
            continue;
        unsigned which = (unsigned)(path - paths);
        unsigned long address = strtoul(line + 2, NULL, 0);
        const struct log_reader_event *event =
            find_event(events, MDLOG_EVENT_ALLOC, address);
        ck_assert_msg(event != NULL, "no event for %#lx", address);
        unsigned through = stack_functions(reader, event->stack, sorted, NAMES) &
                           (a | b | d);
        ck_assert_msg(through == expected[which],
                      "block %#lx of path %c: its stack passes through %#x, "
                      "expected %#x", address, *path, through, expected[which]);
        if (!stack_of[which])
            stack_of[which] = event->stack;
        ck_assert_uint_eq(event->stack, stack_of[which]);
        checked++;
    }
    ck_assert_uint_eq(checked, 300);
    ck_assert_uint_ne(stack_of[0], stack_of[1]);
    ck_assert_uint_ne(stack_of[0], stack_of[2]);
    ck_assert_uint_ne(stack_of[1], stack_of[2]);
    log_reader_close(reader);
    clear_directory();
}
END_TEST

/* ---- a recursion's stacks, frame by frame ---- */

/* The probe's "recursion": the nodes of a binary recursion in the order
 * their blocks are allocated, each by its path (bit i set when the call
 * at level i went right) and level. */
struct recursion_node {
    unsigned path, level;
};

static unsigned recursion_nodes(struct recursion_node *nodes, unsigned count,
                                unsigned path, unsigned level, unsigned levels)
{
    nodes[count++] = (struct recursion_node){path, level};
    if (level < levels) {
        count = recursion_nodes(nodes, count, path, level + 1, levels);
        count = recursion_nodes(nodes, count, path | 1u << level, level + 1,
                                levels);
    }
    return count;
}

/* What the stacks of one recursion share: the return address after the
 * allocation, after the free (the compiler may give the leaves a call
 * of their own), after a left and a right call, and into the function
 * that started the recursion. */
struct recursion_frames {
    uint64_t allocated, freed[2], left, right, started;
};

static size_t recursion_stack(struct log_reader *reader, uint32_t stack,
                              uint64_t *pcs)
{
    return log_reader_stack_frames(reader, stack, pcs, NULL, MDLOG_MAX_FRAMES);
}

/* The stack of an event of `node`: `innermost`, then a left or a right
 * call for each level above it, innermost first, then `started`. */
static void expect_recursion_stack(struct log_reader *reader, uint32_t stack,
                                   const struct recursion_node *node,
                                   uint64_t innermost,
                                   const struct recursion_frames *frames)
{
    uint64_t pcs[MDLOG_MAX_FRAMES];
    size_t count = recursion_stack(reader, stack, pcs);
    ck_assert_uint_ge(count, node->level + 2);
    ck_assert_uint_eq(pcs[0], innermost);
    for (unsigned k = 1; k <= node->level; k++) {
        bool right = node->path >> (node->level - k) & 1;
        ck_assert_msg(pcs[k] == (right ? frames->right : frames->left),
                      "node %#x at level %u: frame %u returns to %#llx, "
                      "expected the %s call's %#llx", node->path, node->level,
                      k, (unsigned long long)pcs[k], right ? "right" : "left",
                      (unsigned long long)(right ? frames->right : frames->left));
    }
    ck_assert_msg(pcs[node->level + 1] == frames->started,
                  "node %#x at level %u: frame %u returns to %#llx, expected "
                  "the recursion's caller %#llx", node->path, node->level,
                  node->level + 1, (unsigned long long)pcs[node->level + 1],
                  (unsigned long long)frames->started);
}

/* The free of the block the event at `index` allocated. */
static const struct log_reader_event *
free_after(const struct events *events, unsigned index)
{
    for (unsigned i = index + 1; i < events->count; i++)
        if ((events->list[i].type & MDLOG_EVENT_KIND_MASK) == MDLOG_EVENT_FREE &&
            events->list[i].address == events->list[index].address)
            return &events->list[i];
    return NULL;
}

/* Checks `rounds` runs of the recursion from the event at `*at` on (its
 * allocations are those of `size` bytes, in order); `*at` moves past
 * them. */
static void expect_recursion(struct log_reader *reader,
                             const struct events *events, unsigned *at,
                             unsigned size, const struct recursion_node *nodes,
                             unsigned count, unsigned levels, unsigned rounds)
{
    struct recursion_frames frames = {0};
    uint64_t pcs[MDLOG_MAX_FRAMES];
    for (unsigned n = 0; n < count * rounds; (*at)++) {
        ck_assert_uint_lt(*at, events->count);
        const struct log_reader_event *event = &events->list[*at];
        if ((event->type & MDLOG_EVENT_KIND_MASK) != MDLOG_EVENT_ALLOC ||
            event->size != size)
            continue;
        const struct recursion_node *node = &nodes[n++ % count];
        const struct log_reader_event *freed = free_after(events, *at);
        ck_assert_msg(freed != NULL, "no free of %#llx",
                      (unsigned long long)event->address);
        /* The first root and the first leaf show the frames around the
         * recursion, each root the call that started its round, the
         * first left and the first right call the return address of
         * each. */
        uint64_t *free_call = &frames.freed[node->level == levels];
        if (!*free_call) {
            ck_assert_uint_ge(recursion_stack(reader, freed->stack, pcs), 1);
            *free_call = pcs[0];
        }
        if (node->level == 0) {
            ck_assert_uint_ge(recursion_stack(reader, event->stack, pcs), 2);
            frames.started = pcs[1];
            if (n == 1)
                frames.allocated = pcs[0];
        } else {
            uint64_t *call = node->path >> (node->level - 1) & 1
                                 ? &frames.right
                                 : &frames.left;
            ck_assert_uint_ge(recursion_stack(reader, event->stack, pcs), 2);
            if (!*call)
                *call = pcs[1];
        }
        expect_recursion_stack(reader, event->stack, node, frames.allocated,
                               &frames);
        expect_recursion_stack(reader, freed->stack, node, *free_call,
                               &frames);
    }
    ck_assert_uint_ne(frames.left, frames.right);
}

/* Consecutive stacks of a recursion share their outer frames, and the
 * capture finds their new inner frames without unwinding them, from the
 * sizes of the frames it found before: every frame must still be the
 * one the program went through.  Also in the second recursion, whose
 * frames change size from call to call, leaving stale copies of return
 * addresses where a remembered slot was. */
START_TEST(test_a_recursion_gets_the_stacks_of_its_paths)
{
    struct probe_run run;
    /* Every event: a leaf's block, freed right after it was allocated,
     * would be left out, and then its parent's. */
    run_probe(&run, "recursion", "MallocStackLoggingNoCompact=1", NULL);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    struct log_reader *reader = open_log_of(output_value(run.out, "pid"));
    const struct events *events = read_events(reader);
    const unsigned levels = (unsigned)output_value(run.out, "levels");
    const unsigned size = (unsigned)output_value(run.out, "block");
    static struct recursion_node nodes[1u << 10];
    ck_assert_uint_lt(levels, 10);
    const unsigned count = recursion_nodes(nodes, 0, 0, 0, levels);
    unsigned at = 0;
    for (unsigned recursion = 0; recursion < 2; recursion++)
        expect_recursion(reader, events, &at, size, nodes, count, levels, 2);
    log_reader_close(reader);
    clear_directory();
}
END_TEST

/* Stacks longer than a log records keep their innermost
 * MDLOG_MAX_FRAMES frames, however the capture came by them: a block
 * allocated on the way back up a deep recursion, right after a deeper
 * one, gets the same full-length stack each time. */
START_TEST(test_stacks_deeper_than_recorded_keep_their_inner_frames)
{
    struct probe_run run;
    struct log_reader *reader;
    struct events *events = full_probe_events(&run, "deep", &reader);
    static const char *const kinds[2] = {"bottom", "returned"};
    uint32_t stack_of[2] = {0, 0};
    unsigned seen[2] = {0, 0};
    for (const char *line = run.out; (line = strstr(line, "\n")) != NULL;) {
        line++;
        for (unsigned k = 0; k < 2; k++) {
            size_t length = strlen(kinds[k]);
            if (strncmp(line, kinds[k], length) != 0 || line[length] != ' ')
                continue;
            unsigned long address = strtoul(line + length + 1, NULL, 0);
            const struct log_reader_event *event =
                find_event(events, MDLOG_EVENT_ALLOC, address);
            ck_assert_msg(event != NULL, "no event for %#lx", address);
            uint64_t pcs[MDLOG_MAX_FRAMES];
            size_t frames = log_reader_stack_frames(reader, event->stack, pcs,
                                                    NULL, MDLOG_MAX_FRAMES);
            ck_assert_msg(frames == MDLOG_MAX_FRAMES,
                          "%s block %#lx: %zu frames, expected %d", kinds[k],
                          address, frames, MDLOG_MAX_FRAMES);
            if (!stack_of[k])
                stack_of[k] = event->stack;
            ck_assert_uint_eq(event->stack, stack_of[k]);
            seen[k]++;
        }
    }
    ck_assert_uint_eq(seen[0], 4);
    ck_assert_uint_eq(seen[1], 4);
    ck_assert_uint_ne(stack_of[0], stack_of[1]);
    log_reader_close(reader);
    clear_directory();
}
END_TEST

/* A signal handler on its own stack allocates: its stack runs through the
 * handler and the interrupted code, and the same site outside the handler
 * keeps its own stack. */
START_TEST(test_allocation_in_a_signal_handler_on_another_stack)
{
    struct probe_run run;
    struct log_reader *reader;
    struct events *events = full_probe_events(&run, "signals", &reader);
    unsigned long site_a = output_value(run.out, "site_a");
    unsigned long handler = output_value(run.out, "handler");
    unsigned long raiser = output_value(run.out, "raiser");
    unsigned handled = 0, outside = 0;
    for (const char *line = run.out; (line = strstr(line, "\n")) != NULL;) {
        line++;
        bool in_handler = strncmp(line, "handled ", 8) == 0;
        if (!in_handler && strncmp(line, "a ", 2) != 0)
            continue;
        unsigned long address = strtoul(strchr(line, ' ') + 1, NULL, 0);
        const struct log_reader_event *event =
            expect_event(reader, events, MDLOG_EVENT_ALLOC, address, site_a);
        bool through_handler = stack_has_function(reader, event->stack, handler);
        ck_assert_msg(through_handler == in_handler,
                      "block %#lx: handler in its stack %d, expected %d",
                      address, through_handler, in_handler);
        if (in_handler) {
            ck_assert_msg(stack_has_function(reader, event->stack, raiser),
                          "the handler's stack does not reach the code the "
                          "signal interrupted");
            handled++;
        } else {
            outside++;
        }
    }
    ck_assert_uint_eq(handled, 3);
    ck_assert_uint_eq(outside, 6);
    log_reader_close(reader);
    clear_directory();
}
END_TEST

START_TEST(test_allocation_on_a_stack_of_its_own)
{
    struct probe_run run;
    run_probe(&run, "own_stack", "MallocStackLogging=full", NULL);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    if (strstr(run.out, "skipped"))
        return;
    unsigned long pid = output_value(run.out, "pid");
    unsigned long site_a = output_value(run.out, "site_a");
    unsigned long leaf = output_value(run.out, "leaf");
    unsigned long caller = output_value(run.out, "caller");
    struct log_reader *reader = open_log_of(pid);
    struct events *events = read_events(reader);
    unsigned blocks = 0;
    for (const char *line = run.out; (line = strstr(line, "\na ")) != NULL;) {
        line += 3;
        unsigned long address = strtoul(line, NULL, 0);
        const struct log_reader_event *event =
            expect_event(reader, events, MDLOG_EVENT_ALLOC, address, site_a);
        ck_assert_msg(stack_has_function(reader, event->stack, leaf) &&
                          stack_has_function(reader, event->stack, caller),
                      "block %#lx: its stack misses the leaf or the caller "
                      "on the thread's stack", address);
        blocks++;
    }
    ck_assert_uint_eq(blocks, 200);
    log_reader_close(reader);
    clear_directory();
}
END_TEST

/* The pages the slot search found readable above a stack of the
 * program's own belong to another mapping, which the program unmaps
 * between two allocations on that stack: the search must not read them
 * again (it did, and the probe died of SIGSEGV, when only unmappings of
 * the stack's own pages were seen).  Lite mode: full mode's records of
 * the unmapping take a stack, which starts the search afresh. */
START_TEST(test_unmapping_next_to_a_stack)
{
    struct probe_run run;
    run_probe(&run, "neighbour_unmapped", "MallocStackLogging=1", NULL);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    if (strstr(run.out, "skipped"))
        return;
    unsigned blocks = 0;
    for (const char *line = run.out; (line = strstr(line, "\na ")) != NULL;
         line += 3)
        blocks++;
    ck_assert_uint_eq(blocks, 4);
    clear_directory();
}
END_TEST

START_TEST(test_lite_mode_keeps_stacks_without_events)
{
    struct probe_run run;
    run_probe(&run, "sites", "MallocStackLogging=1", NULL);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    ck_assert_msg(strstr(run.err, "(lite mode)\n"), "%s", run.err);
    struct log_reader *reader = open_log_of(output_value(run.out, "pid"));
    ck_assert_int_eq(log_reader_header(reader)->mode, MDLOG_MODE_LITE);
    ck_assert_uint_eq(log_reader_event_count(reader), 0);
    /* Every block's stack was uniqued: the probe's frames are nodes. */
    ck_assert_uint_gt(log_reader_header(reader)->node_count, 8);
    log_reader_close(reader);
    clear_directory();
}
END_TEST

#define NESTED_TEMPORARIES 12 /* as in the probe */

/* The probe's nested temporaries, freed newest first: the newest are
 * taken back, as far back as the writer remembers the thread's events
 * (fewer than 12); from the first it cannot take back on, every
 * allocation and free stays.
 * Returns how many blocks stayed. */
static unsigned check_nested_temporaries(const struct probe_run *run,
                                         const struct events *events)
{
    unsigned recorded_from = NESTED_TEMPORARIES;
    for (unsigned i = 0; i < NESTED_TEMPORARIES; i++) {
        char key[32];
        snprintf(key, sizeof(key), "nested%u", i);
        unsigned long block = output_value(run->out, key);
        unsigned allocations = 0, frees = 0;
        for (unsigned e = 0; e < events->count; e++) {
            unsigned kind = events->list[e].type & MDLOG_EVENT_KIND_MASK;
            if (events->list[e].address != block)
                continue;
            allocations += kind == MDLOG_EVENT_ALLOC &&
                           events->list[e].size == 64 + 16 * i;
            frees += kind == MDLOG_EVENT_FREE;
        }
        ck_assert_msg(allocations == frees && allocations <= 1,
                      "nested block %u: %u allocations, %u frees", i,
                      allocations, frees);
        if (allocations == 0 && recorded_from == NESTED_TEMPORARIES)
            recorded_from = i;
        ck_assert_msg(allocations == (i < recorded_from),
                      "nested block %u recorded after one taken back", i);
    }
    /* More than the writer remembers: some of each. */
    ck_assert_uint_gt(recorded_from, 0);
    ck_assert_uint_lt(recorded_from, NESTED_TEMPORARIES);
    return recorded_from;
}

/* In every zone that keeps stack ids: the default one, a debug zone whose
 * blocks start after a canary, and the guard zone. */
START_TEST(test_compaction_elides_temporary_allocations)
{
    static const char *const zone_settings[] = {NULL, "MallocCanaries=1",
                                                "MallocGuardMalloc=1"};
    struct probe_run run;
    struct log_reader *reader;
    struct events *events;
    for (unsigned z = 0; z < sizeof(zone_settings) / sizeof(*zone_settings);
         z++) {
        run_probe(&run, "compact", "MallocStackLogging=full", zone_settings[z]);
        ck_assert_msg(exited_cleanly(&run), "%s", run.err);
        reader = open_log_of(output_value(run.out, "pid"));
        events = read_events(reader);
        unsigned long temporary = output_value(run.out, "temporary");
        unsigned long large = output_value(run.out, "large");
        unsigned long kept = output_value(run.out, "kept");
        unsigned long site_a = output_value(run.out, "site_a");
        unsigned temporaries_recorded = 0;
        for (unsigned i = 0; i < events->count; i++)
            if ((events->list[i].address == temporary &&
                 events->list[i].size == 40) ||
                (events->list[i].address == large &&
                 events->list[i].size == 100000))
                temporaries_recorded++;
        ck_assert_msg(temporaries_recorded == 0, "with %s", zone_settings[z]);
        expect_event(reader, events, MDLOG_EVENT_ALLOC, kept, site_a);
        ck_assert_uint_ge(log_reader_header(reader)->compacted_count, 4);
        log_reader_close(reader);
        clear_directory();

        run_probe(&run, "compact_nested", "MallocStackLogging=full",
                  zone_settings[z]);
        ck_assert_msg(exited_cleanly(&run), "%s", run.err);
        reader = open_log_of(output_value(run.out, "pid"));
        events = read_events(reader);
        unsigned nested_recorded = check_nested_temporaries(&run, events);
        ck_assert_uint_ge(log_reader_header(reader)->compacted_count,
                          2 * (NESTED_TEMPORARIES - nested_recorded));
        log_reader_close(reader);
        clear_directory();
    }

    run_probe(&run, "compact", "MallocStackLoggingNoCompact=1", NULL);
    ck_assert_msg(strstr(run.err, "(full mode)\n"), "%s", run.err);
    reader = open_log_of(output_value(run.out, "pid"));
    events = read_events(reader);
    unsigned long temporary = output_value(run.out, "temporary");
    unsigned long large = output_value(run.out, "large");
    expect_event(reader, events, MDLOG_EVENT_ALLOC, temporary,
                 output_value(run.out, "site_a"));
    expect_event(reader, events, MDLOG_EVENT_FREE, temporary, 0);
    ck_assert_uint_eq(expect_event(reader, events, MDLOG_EVENT_ALLOC, large,
                                   output_value(run.out, "site_a"))->size,
                      100000);
    expect_event(reader, events, MDLOG_EVENT_FREE, large, 0);
    log_reader_close(reader);
    clear_directory();
}
END_TEST

/* An allocation is taken back only while the block is still that
 * allocation: here another thread freed it and was given it again before
 * this thread freed it, and every one of the four events stays. */
START_TEST(test_compaction_keeps_a_block_another_thread_reused)
{
    struct probe_run run;
    struct log_reader *reader;
    struct events *events = full_probe_events(&run, "round_trip", &reader);
    unsigned long block = output_value(run.out, "block");
    ck_assert_msg(output_value(run.out, "again") == block,
                  "the other thread was given another block: %s", run.out);
    /* From this thread's allocation of the block on: events are in order. */
    unsigned first = 0;
    while (first < events->count &&
           (events->list[first].address != block ||
            !stack_has_function(reader, events->list[first].stack,
                                output_value(run.out, "site_a"))))
        first++;
    ck_assert_uint_lt(first, events->count);
    unsigned allocations = 0, frees = 0, last_kind = 0;
    for (unsigned i = first; i < events->count; i++)
        if (events->list[i].address == block) {
            last_kind = events->list[i].type & MDLOG_EVENT_KIND_MASK;
            allocations += last_kind == MDLOG_EVENT_ALLOC;
            frees += last_kind == MDLOG_EVENT_FREE;
        }
    ck_assert_uint_eq(allocations, 2);
    ck_assert_uint_eq(frees, 2);
    ck_assert_uint_eq(last_kind, MDLOG_EVENT_FREE);
    log_reader_close(reader);
    clear_directory();
}
END_TEST

/* What became of each address in a walk of the log, and the events that
 * a block's history rules out: an allocation of a block in use, a free of
 * a freed one. */
#define BLOCK_STATES (1u << 18)
struct block_history {
    struct block_state {
        uint64_t address;
        unsigned state; /* 0: none yet, else the kind of its last event */
    } *blocks;
    unsigned events, blocks_seen, misordered, first_frees;
};

static struct block_state *block_state_of(struct block_history *history,
                                          uint64_t address)
{
    unsigned at = (unsigned)((address >> 4) * 0x9e3779b1u) % BLOCK_STATES;
    while (history->blocks[at].state && history->blocks[at].address != address)
        at = (at + 1) % BLOCK_STATES;
    ck_assert_uint_lt(history->blocks_seen, BLOCK_STATES / 2);
    history->blocks_seen += !history->blocks[at].state;
    history->blocks[at].address = address;
    return &history->blocks[at];
}

static int follow_block(const struct log_reader_event *event, void *context)
{
    struct block_history *history = context;
    unsigned kind = event->type & MDLOG_EVENT_KIND_MASK;
    if (kind != MDLOG_EVENT_ALLOC && kind != MDLOG_EVENT_FREE)
        return 0;
    struct block_state *block = block_state_of(history, event->address);
    history->events++;
    if (kind == MDLOG_EVENT_FREE && !block->state)
        history->first_frees++; /* allocated before the log began */
    else if (block->state == kind)
        history->misordered++;
    block->state = kind;
    return 0;
}

/* Blocks allocated, freed and reused by threads whose orders drift far
 * apart, in blocks of every kind whose runs and mappings are released
 * and reused: each block's events come out of the walk in the order they
 * happened, an allocation, then its free, then the next allocation. */
START_TEST(test_blocks_that_change_threads_keep_their_order)
{
    struct probe_run run;
    run_probe(&run, "handoff", "MallocStackLogging=full", NULL);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    ck_assert_uint_gt(output_value(run.out, "changed_hands"), 3000);
    struct log_reader *reader = open_log_of(output_value(run.out, "pid"));
    struct block_history history = {
        .blocks = calloc(BLOCK_STATES, sizeof(*history.blocks))};
    ck_assert_ptr_nonnull(history.blocks);
    ck_assert_int_eq(log_reader_for_each_event(reader, follow_block, &history), 0);
    ck_assert_uint_gt(history.events, 10000);
    ck_assert_uint_eq(history.misordered, 0);
    ck_assert_uint_lt(history.first_frees, 16);
    ck_assert_uint_eq(log_reader_header(reader)->unrecorded_count, 0);
    free(history.blocks);
    log_reader_close(reader);
    clear_directory();
}
END_TEST

/* A large block moved by a realloc on a thread whose orders ran far
 * ahead, its old address then mapped for another thread's block: the
 * other thread's allocation comes after the realloc's free half. */
START_TEST(test_an_address_left_by_a_moved_block_keeps_its_order)
{
    struct probe_run run;
    struct log_reader *reader;
    struct events *events = full_probe_events(&run, "large_moved", &reader);
    unsigned long block = output_value(run.out, "block");
    ck_assert_msg(output_value(run.out, "grown") != block &&
                      output_value(run.out, "reusing") == block,
                  "the block did not move, or its address went elsewhere: %s",
                  run.out);
    const struct log_reader_event *freed =
        find_event_flagged(events, MDLOG_EVENT_FREE, MDLOG_EVENT_REALLOC, block);
    ck_assert_ptr_nonnull(freed);
    const struct log_reader_event *reused = NULL;
    for (unsigned i = 0; i < events->count; i++)
        if (events->list[i].type == MDLOG_EVENT_ALLOC &&
            events->list[i].address == block &&
            events->list[i].thread != freed->thread)
            reused = &events->list[i];
    ck_assert_ptr_nonnull(reused);
    ck_assert_uint_gt(reused->order, freed->order);
    log_reader_close(reader);
    clear_directory();
}
END_TEST

START_TEST(test_log_removed_at_exit_kept_after_crash)
{
    struct probe_run run;
    const char *settings[] = {"MallocStackLogging=full", directory_setting, NULL};
    probe(&run, PROBE, "sites", settings, false);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    ck_assert_uint_eq(directory_logs(NULL, 0), 0);

    probe(&run, PROBE, "crash", settings, false);
    ck_assert(aborted(&run));
    char path[512];
    ck_assert_uint_eq(directory_logs(path, sizeof(path)), 1);
    struct log_reader *reader = open_log_of(output_value(run.out, "pid"));
    ck_assert_int_eq(log_reader_header(reader)->state, MDLOG_STATE_RUNNING);
    struct events *events = read_events(reader);
    expect_event(reader, events, MDLOG_EVENT_ALLOC, output_value(run.out, "a"),
                 output_value(run.out, "site_a"));
    log_reader_close(reader);
    clear_directory();
}
END_TEST

START_TEST(test_fork_gives_the_child_its_own_log)
{
    struct probe_run run;
    run_probe(&run, "fork", "MallocStackLogging=full", NULL);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    unsigned long pid = output_value(run.out, "pid");
    unsigned long child = output_value(run.out, "child");
    unsigned long site_a = output_value(run.out, "site_a");
    unsigned long site_b = output_value(run.out, "site_b");

    struct log_reader *reader = open_log_of(child);
    ck_assert_int_eq(log_reader_header(reader)->parent_pid, (int)pid);
    struct events *events = read_events(reader);
    expect_event(reader, events, MDLOG_EVENT_ALLOC, output_value(run.out, "b"),
                 site_b);
    /* The parent's history stays the parent's. */
    ck_assert(!find_event(events, MDLOG_EVENT_ALLOC, output_value(run.out, "a")));
    log_reader_close(reader);

    reader = open_log_of(pid);
    events = read_events(reader);
    expect_event(reader, events, MDLOG_EVENT_ALLOC, output_value(run.out, "a"),
                 site_a);
    expect_event(reader, events, MDLOG_EVENT_ALLOC, output_value(run.out, "c"),
                 site_b);
    log_reader_close(reader);
    clear_directory();
}
END_TEST

struct listed_children {
    unsigned listed;  /* links followed */
    unsigned astray;  /* links to no node of the list's parent */
};

struct module_lists {
    unsigned with_plugin;     /* logs that recorded leaks_plugin.so */
    unsigned unknown_modules; /* nodes naming a module not in the list */
};

/* The module list of the log `reader` reads (at `path`): every module
 * below the count is whole, and every stack node names one of them or a
 * marker.  Counts the logs that recorded the plugin the probe loads. */
static void check_module_list(const struct log_reader *reader,
                              const char *path, struct module_lists *lists)
{
    uint32_t modules = log_reader_module_count(reader);
    bool plugin = false;
    for (uint32_t i = 0; i < modules; i++) {
        struct mdlog_module module;
        ck_assert_msg(log_reader_module(reader, i, &module),
                      "%s: module %u of %u is not there", path, i, modules);
        plugin |= strstr(module.path, "leaks_plugin.so") != NULL;
    }
    lists->with_plugin += plugin;
    uint64_t count = log_reader_header(reader)->node_count;
    for (uint64_t id = 1; id < count && id <= UINT32_MAX; id++) {
        const struct mdlog_stack_node *node = log_reader_node(reader, (uint32_t)id);
        if (node && node->module < MDLOG_MODULE_THREAD && node->module >= modules)
            lists->unknown_modules++;
    }
}

/* The writer's lists of children in the log `reader` reads: each at most
 * 8 long, each link to a whole node of the log whose parent is the
 * list's. */
static void check_listed_children(const struct log_reader *reader,
                                  struct listed_children *lists)
{
    uint64_t count = log_reader_header(reader)->node_count;
    for (uint64_t id = 1; id < count && id <= UINT32_MAX; id++) {
        const struct mdlog_stack_node *node = log_reader_node(reader, (uint32_t)id);
        unsigned length = 0;
        for (uint32_t child = node ? node->first_child : 0; child; length++) {
            const struct mdlog_stack_node *listed =
                child < count ? log_reader_node(reader, child) : NULL;
            lists->listed++;
            if (length == 8 || !listed || listed->parent != id) {
                lists->astray++;
                break;
            }
            child = listed->next_sibling;
        }
    }
}

/* The memory the log at `path` takes, against what its chunks need:
 * a chunk marked unused (a forked child's place for its parent's
 * events) must be a hole after its header.  Returns how many unused
 * chunks the log has. */
static unsigned check_unused_chunks_are_holes(const char *path)
{
    int fd = open(path, O_RDONLY);
    ck_assert_msg(fd >= 0, "%s", path);
    struct mdlog_header header;
    ck_assert_int_eq(pread(fd, &header, sizeof(header), 0), sizeof(header));
    unsigned unused = 0;
    for (uint64_t i = 0; i < header.chunk_count; i++) {
        struct mdlog_chunk_header chunk;
        off_t at = (off_t)(header.header_size + i * (uint64_t)header.chunk_size);
        ck_assert_int_eq(pread(fd, &chunk, sizeof(chunk), at), sizeof(chunk));
        unused += chunk.kind == MDLOG_CHUNK_UNUSED;
    }
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    close(fd);
    /* A page or two of rounding, and one chunk that a thread reserved
     * as the process ended, before counting it. */
    uint64_t needed = header.header_size +
                      (header.chunk_count - unused + 1) * (uint64_t)header.chunk_size +
                      unused * (uint64_t)65536;
    ck_assert_msg((uint64_t)st.st_blocks * 512 <= needed,
                  "%s takes %llu bytes for %llu chunks, %u of them unused",
                  path, (unsigned long long)st.st_blocks * 512,
                  (unsigned long long)header.chunk_count, unused);
    return unused;
}

/* A program's own dl_iterate_phdr holds the loader's lock while its
 * callback runs.  The callback's allocation is recorded without a stack
 * (unwinding there could wait on libunwind's lock held by a thread that
 * waits for the loader's), the same site's allocation outside the walk
 * with one.  A child forked meanwhile must not unwind, which would look
 * its new frame up in the loader and wait forever: it says it records no
 * stacks and exits normally. */
START_TEST(test_allocation_inside_a_module_walk)
{
    struct probe_run run;
    run_probe(&run, "module_walk", "MallocStackLogging=full", NULL);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    int status = (int)output_value(run.out, "child_status");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the child forked during the walk ended with status %#x%s",
                  status, WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL
                              ? " (it hung, and was killed)" : "");
    ck_assert_msg(strstr(run.err, "this child records no stacks") != NULL, "%s",
                  run.err);
    struct log_reader *reader = open_log_of(output_value(run.out, "pid"));
    struct events *events = read_events(reader);
    const struct log_reader_event *inside = expect_event(
        reader, events, MDLOG_EVENT_ALLOC, output_value(run.out, "inside"), 0);
    ck_assert_uint_eq(inside->stack, 0);
    expect_event(reader, events, MDLOG_EVENT_ALLOC,
                 output_value(run.out, "outside"),
                 output_value(run.out, "site_a"));
    log_reader_close(reader);
    clear_directory();
}
END_TEST

/* Forks while other threads allocate: no child hangs or fails (check's
 * timeout catches a hang), and each child made a log of its own.  The
 * threads add to the tree of stacks while each child copies it: the
 * children's lists of children lead nowhere a child did not get.  A
 * thread loads and unloads a module meanwhile: every log's module list
 * is whole and names every module its nodes do.  A child's log takes no
 * memory for its parent's events. */
/* Another thread holds the loader's lock at the fork, inside the C
 * library's dl_iterate_phdr as a dlopen adding its module does: the
 * child, whose first unwind would wait for that lock forever, records no
 * stacks and says so (the test's timeout fails a hang). */
START_TEST(test_fork_while_another_thread_holds_the_loader_lock)
{
    struct probe_run run;
    run_probe(&run, "fork_in_loader_walk", "MallocStackLogging=full", NULL);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    ck_assert_msg(strncmp(run.out, "child exited\n", 13) == 0, "%s", run.out);
    ck_assert_msg(strstr(run.out, "\ncallback child exited\n"), "%s", run.out);
    /* Said by both children. */
    const char *said = ") MallocStackLogging: the process forked while a "
                       "thread was in the dynamic loader: this child records "
                       "no stacks\n";
    const char *first = strstr(run.err, said);
    ck_assert_msg(first && strstr(first + 1, said), "%s", run.err);
    clear_directory();
}
END_TEST

START_TEST(test_fork_while_threads_allocate)
{
    char plugin[PATH_MAX], plugin_setting[PATH_MAX + 32];
    ck_assert_msg(realpath("tests/.libs/leaks_plugin.so", plugin) != NULL,
                  "tests/.libs/leaks_plugin.so: %s", strerror(errno));
    snprintf(plugin_setting, sizeof(plugin_setting), "MDTEST_MODULE_FIRST=%s",
             plugin);
    struct probe_run run;
    run_probe(&run, "fork_stress", "MallocStackLogging=full", plugin_setting);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    ck_assert_uint_eq(output_value(run.out, "children"), 40);
    ck_assert_uint_eq(output_value(run.out, "failed"), 0);
    ck_assert_uint_gt(output_value(run.out, "loads"), 0);
    /* A log for the parent and one for each child, all kept by the
     * setting the children inherit. */
    ck_assert_uint_eq(directory_logs(NULL, 0), 41);
    ck_assert_msg(strstr(run.err, "recording malloc stacks") != NULL, "%s",
                  run.err);
    DIR *dir = opendir(directory);
    ck_assert_ptr_nonnull(dir);
    struct listed_children lists = {0};
    struct module_lists modules = {0};
    unsigned unused = 0;
    char path[600];
    for (struct dirent *entry; (entry = readdir(dir));)
        if (entry->d_name[0] != '.') {
            snprintf(path, sizeof(path), "%s/%s", directory, entry->d_name);
            char message[512];
            struct log_reader *reader =
                log_reader_open(path, message, sizeof(message));
            ck_assert_msg(reader != NULL, "%s", message);
            check_listed_children(reader, &lists);
            check_module_list(reader, path, &modules);
            log_reader_close(reader);
            unused += check_unused_chunks_are_holes(path);
        }
    closedir(dir);
    ck_assert_uint_gt(lists.listed, 41 * 1000);
    ck_assert_uint_eq(lists.astray, 0);
    ck_assert_uint_ge(modules.with_plugin, 1);
    ck_assert_uint_eq(modules.unknown_modules, 0);
    /* Every child had its parent's event chunks to leave out. */
    ck_assert_uint_ge(unused, 40 * 3);
    clear_directory();
}
END_TEST

START_TEST(test_threads_record_their_own_events)
{
    struct probe_run run;
    struct log_reader *reader;
    struct events *events = full_probe_events(&run, "threads", &reader);
    unsigned long pid = output_value(run.out, "pid");
    unsigned long site_a = output_value(run.out, "site_a");
    uint32_t threads[8] = {0};
    unsigned thread_count = 0, allocations = 0, frees = 0;
    for (unsigned i = 0; i < events->count; i++) {
        const struct log_reader_event *event = &events->list[i];
        if (event->thread == pid)
            continue;
        unsigned t = 0;
        while (t < thread_count && threads[t] != event->thread)
            t++;
        if (t == thread_count && thread_count < 8)
            threads[thread_count++] = event->thread;
        uint32_t stack_thread = 0;
        ck_assert(log_reader_stack_thread(reader, event->stack, &stack_thread));
        ck_assert_uint_eq(stack_thread, event->thread);
        if ((event->type & MDLOG_EVENT_KIND_MASK) == MDLOG_EVENT_ALLOC &&
            stack_has_function(reader, event->stack, site_a))
            allocations++;
        if ((event->type & MDLOG_EVENT_KIND_MASK) == MDLOG_EVENT_FREE)
            frees++;
    }
    ck_assert_uint_eq(thread_count, 4);
    ck_assert_uint_eq(allocations, 400);
    ck_assert_uint_ge(frees, 200);
    log_reader_close(reader);
    clear_directory();
}
END_TEST

/* Counts an event whose order is not above the one before it. */
static void count_out_of_order(uint64_t order, uint64_t *last_order,
                               unsigned *out_of_order)
{
    if (order <= *last_order)
        (*out_of_order)++;
    *last_order = order;
}

struct long_history {
    struct log_reader *reader;
    unsigned long site_a;
    uint64_t last_order;
    unsigned allocations, frees, out_of_order, wrong_size;
};

static int check_long_history_event(const struct log_reader_event *event,
                                    void *context)
{
    struct long_history *history = context;
    count_out_of_order(event->order, &history->last_order,
                       &history->out_of_order);
    unsigned kind = event->type & MDLOG_EVENT_KIND_MASK;
    if (kind == MDLOG_EVENT_FREE) {
        history->frees++;
    } else if (kind == MDLOG_EVENT_ALLOC &&
               stack_has_function(history->reader, event->stack,
                                  history->site_a)) {
        if (event->size != 1 + history->allocations % 1000)
            history->wrong_size++;
        history->allocations++;
    }
    return 0;
}

/* The bytes the records of the log at `path` need: the header, and in
 * each chunk its header and the records it counts. */
static uint64_t log_bytes_needed(int fd, const struct mdlog_header *header)
{
    uint64_t needed = header->header_size;
    for (uint64_t i = 0; i < header->chunk_count; i++) {
        struct mdlog_chunk_header chunk;
        off_t at = (off_t)(header->header_size + i * (uint64_t)header->chunk_size);
        ck_assert_int_eq(pread(fd, &chunk, sizeof(chunk), at), sizeof(chunk));
        uint64_t record = chunk.kind == MDLOG_CHUNK_STACKS ? sizeof(struct mdlog_stack_node)
                          : chunk.kind == MDLOG_CHUNK_EVENTS ? 1 /* bytes */
                          : chunk.kind == MDLOG_CHUNK_MODULES ? sizeof(struct mdlog_module)
                                                              : 0;
        needed += sizeof(chunk) + chunk.count * record;
    }
    return needed;
}

/* The log at `path` is as long as its chunks, but takes memory only for
 * what they hold: its records, plus what the writer backs ahead of
 * itself (up to 64 KiB a chunk) and a page or two of rounding each. */
static void check_log_memory(const char *path)
{
    int fd = open(path, O_RDONLY);
    ck_assert_msg(fd >= 0, "%s", path);
    struct mdlog_header header;
    ck_assert_int_eq(pread(fd, &header, sizeof(header), 0), sizeof(header));
    uint64_t needed = log_bytes_needed(fd, &header);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    close(fd);
    uint64_t length = header.header_size + header.chunk_count * (uint64_t)header.chunk_size;
    ck_assert_uint_ge((uint64_t)st.st_size, length);
    uint64_t bound = needed + header.chunk_count * (uint64_t)(72 << 10);
    ck_assert_msg((uint64_t)st.st_blocks * 512 <= bound,
                  "%s takes %llu bytes for %llu of records in %llu chunks",
                  path, (unsigned long long)st.st_blocks * 512,
                  (unsigned long long)needed, (unsigned long long)header.chunk_count);
}

static void check_log_memory_of(unsigned long pid)
{
    char path[512];
    log_path_of(pid, path, sizeof(path));
    check_log_memory(path);
}

/* What the "long_history" probe's log holds; its reader stays open. */
static struct long_history read_long_history(const struct probe_run *run)
{
    struct long_history history = {
        .reader = open_log_of(output_value(run->out, "pid")),
        .site_a = output_value(run->out, "site_a")};
    ck_assert_int_eq(log_reader_for_each_event(history.reader,
                                               check_long_history_event,
                                               &history), 0);
    return history;
}

/* All of the probe's 120,000 events, in order, none unrecorded, and the
 * log's memory following its records. */
static void check_whole_long_history(const struct probe_run *run)
{
    ck_assert_msg(exited_cleanly(run), "%s", run->err);
    struct long_history history = read_long_history(run);
    ck_assert_uint_eq(history.allocations, 60000);
    ck_assert_uint_ge(history.frees, 60000);
    ck_assert_uint_eq(history.wrong_size, 0);
    ck_assert_uint_eq(history.out_of_order, 0);
    ck_assert_uint_eq(log_reader_header(history.reader)->unrecorded_count, 0);
    log_reader_close(history.reader);
    check_log_memory_of(output_value(run->out, "pid"));
    clear_directory();
}

/* 120,000 events: the thread's first chunk and the pages prepared ahead
 * of the writer run out many times over, and nothing is lost. */
START_TEST(test_long_history_spans_chunks)
{
    struct probe_run run;
    run_probe(&run, "long_history", "MallocStackLogging=full", NULL);
    check_whole_long_history(&run);
}
END_TEST

/* A program that puts a file of its own on the log's descriptor number
 * (as one that closes every descriptor and opens files does): the log
 * goes on through its own file, and the program's file is left alone. */
START_TEST(test_descriptor_taken_by_the_program)
{
    char file[600], setting[700];
    snprintf(file, sizeof(file), "%s/program_file", directory);
    snprintf(setting, sizeof(setting), "PROBE_FILE=%s", file);
    static unsigned char contents[3 << 20];
    for (size_t i = 0; i < sizeof(contents); i++)
        contents[i] = (unsigned char)(i * 7 + 1);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, contents, sizeof(contents)), (ssize_t)sizeof(contents));
    close(fd);
    struct probe_run run;
    run_probe(&run, "descriptor_replaced", "MallocStackLogging=full", setting);
    static unsigned char after[sizeof(contents) + 1];
    fd = open(file, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ssize_t length = read(fd, after, sizeof(after));
    close(fd);
    unlink(file);
    ck_assert_int_eq(length, (ssize_t)sizeof(contents));
    ck_assert(memcmp(after, contents, sizeof(contents)) == 0);
    /* Kept far from the numbers a program writes to, 0-2 above all. */
    ck_assert_int_ge((long)output_value(run.out, "log_fd"), 100);
    long reopened = (long)output_value(run.out, "reopened_fd");
    ck_assert_int_ge(reopened, 100);
    check_whole_long_history(&run);
}
END_TEST

START_TEST(test_log_memory_follows_what_it_holds)
{
    static const char *const modes[] = {"MallocStackLogging=1",
                                        "MallocStackLogging=full"};
    for (unsigned m = 0; m < 2; m++) {
        struct probe_run run;
        run_probe(&run, "sites", modes[m], NULL);
        ck_assert_msg(exited_cleanly(&run), "%s", run.err);
        check_log_memory_of(output_value(run.out, "pid"));
        clear_directory();
    }
}
END_TEST

/* "LD_PRELOAD=" and the full path of the test shim tests/.libs/`name`. */
static void preload_setting(char *setting, size_t size, const char *name)
{
    char relative[128];
    snprintf(relative, sizeof(relative), "tests/.libs/%s", name);
    char *shim_path = realpath(relative, NULL);
    ck_assert_msg(shim_path != NULL, "%s: %s", relative, strerror(errno));
    snprintf(setting, size, "LD_PRELOAD=%s", shim_path);
    free(shim_path);
}

/* The long history again, with tests/populate_refused.la preloaded:
 * madvise refuses MADV_POPULATE_WRITE with `error`. */
static void run_long_history_refused(struct probe_run *run, const char *error)
{
    char shim[PATH_MAX + 16], error_setting[64];
    preload_setting(shim, sizeof(shim), "populate_refused.so");
    snprintf(error_setting, sizeof(error_setting), "MDTEST_POPULATE_ERROR=%s",
             error);
    const char *settings[] = {"MallocStackLogging=full", directory_setting,
                              "MallocStackLoggingDontDeleteStackLogFile=1",
                              shim, error_setting, NULL};
    probe(run, PROBE, "long_history", settings, false);
    ck_assert_msg(exited_cleanly(run), "%s", run->err);
    ck_assert_msg(strstr(run->err, "populate_refused: refused") != NULL,
                  "the shim was not in the way: %s", run->err);
}

/* A kernel without MADV_POPULATE_WRITE (before 5.14): chunks get their
 * memory with fallocate instead, and nothing is lost. */
START_TEST(test_log_grows_without_populate_write)
{
    struct probe_run run;
    run_long_history_refused(&run, "EINVAL");
    ck_assert_msg(strstr(run.err, "can't grow") == NULL, "%s", run.err);
    check_whole_long_history(&run);
}
END_TEST

/* A file system that fills up: the library says once that the log can't
 * grow, counts what it could not record, and the program runs on; the
 * log holds what was recorded before. */
START_TEST(test_full_file_system_stops_the_log_with_a_message)
{
    struct probe_run run;
    run_long_history_refused(&run, "ENOSPC");
    const char *said = strstr(run.err, "the log can't grow (No space left on device)");
    ck_assert_msg(said != NULL, "%s", run.err);
    ck_assert_msg(strstr(said + 1, "the log can't grow") == NULL,
                  "said more than once: %s", run.err);
    struct long_history history = read_long_history(&run);
    ck_assert_uint_gt(log_reader_header(history.reader)->unrecorded_count, 0);
    ck_assert_uint_lt(history.allocations, 60000);
    ck_assert_uint_eq(history.wrong_size, 0);
    log_reader_close(history.reader);
    clear_directory();
}
END_TEST

/* Runs the probe's `action` with the test shim tests/.libs/`name`
 * preloaded, which must say `note` on standard error: it was in the
 * way. */
static void run_probe_with_shim(struct probe_run *run, const char *action,
                                const char *mode, const char *name,
                                const char *note)
{
    char shim[PATH_MAX + 16];
    preload_setting(shim, sizeof(shim), name);
    run_probe(run, action, mode, shim);
    ck_assert_msg(exited_cleanly(run), "%s", run->err);
    ck_assert_msg(strstr(run->err, note) != NULL,
                  "the shim was not in the way: %s", run->err);
}

/* A child whose log cannot be made (tests/child_log_refused.la refuses
 * it) says so once and runs on unrecorded, to its end: forked from a
 * thread that had recorded, whose ending, which ends the child, finds no
 * log to add its counts to. */
START_TEST(test_a_child_without_a_log_runs_to_its_end)
{
    struct probe_run run;
    run_probe_with_shim(&run, "fork_without_a_log", "MallocStackLogging=full",
                        "child_log_refused.so", "child_log_refused: refused");
    const char *said = strstr(run.err, "can't start a log for the child process");
    ck_assert_msg(said != NULL, "%s", run.err);
    ck_assert_msg(strstr(said + 1, "can't start a log") == NULL, "%s", run.err);
    ck_assert_uint_eq(output_value(run.out, "child_status"), 0);
    clear_directory();
}
END_TEST

/* A thread given the id of one that ended (tests/thread_id_reused.la
 * gives every thread but the main one the same id): the reader makes one
 * stream of the two threads' events, and the second's must come after
 * the first's, though the first ran far ahead and the second's blocks
 * have no earlier events to follow.  read_events checks the order. */
START_TEST(test_a_thread_given_an_ended_ones_id_comes_after_it)
{
#if defined(__x86_64__)
    struct probe_run run;
    run_probe_with_shim(&run, "reused_thread_id",
                        "MallocStackLoggingNoCompact=1", "thread_id_reused.so",
                        "thread_id_reused ");
    const unsigned long id = output_value(run.err, "thread_id_reused");
    struct log_reader *reader = open_log_of(output_value(run.out, "pid"));
    const struct events *events = read_events(reader);
    unsigned shared = 0;
    for (unsigned i = 0; i < events->count; i++)
        shared += events->list[i].thread == id;
    ck_assert_uint_eq(shared, output_value(run.out, "events"));
    log_reader_close(reader);
    clear_directory();
#endif
}
END_TEST

/* ---- modules ---- */

static void copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY);
    ck_assert_msg(in >= 0, "%s: %s", from, strerror(errno));
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0700);
    ck_assert_msg(out >= 0, "%s: %s", to, strerror(errno));
    char buffer[65536];
    for (ssize_t got; (got = read(in, buffer, sizeof(buffer))) > 0;)
        ck_assert_int_eq(write(out, buffer, (size_t)got), got);
    close(in);
    close(out);
}

/* Whether a frame of `stack` lies in a module whose path ends with
 * `name`; *unloaded_order is then that module's. */
static bool stack_runs_through(const struct log_reader *reader, uint32_t stack,
                               const char *name, uint64_t *unloaded_order)
{
    uint64_t pcs[MDLOG_MAX_FRAMES];
    uint32_t modules[MDLOG_MAX_FRAMES];
    size_t count = log_reader_stack_frames(reader, stack, pcs, modules,
                                           MDLOG_MAX_FRAMES);
    for (size_t i = 0; i < count; i++) {
        struct mdlog_module module;
        if (modules[i] >= MDLOG_MODULE_THREAD ||
            !log_reader_module(reader, modules[i], &module))
            continue;
        size_t length = strlen(module.path), wanted = strlen(name);
        if (length >= wanted && strcmp(module.path + length - wanted, name) == 0) {
            *unloaded_order = module.unloaded_order;
            return true;
        }
    }
    return false;
}

/* A module unloaded, then a copy of it loaded at the same addresses: the
 * stack taken through each names its own module (so each is symbolized
 * from its own file after the process is gone), and the first is marked
 * unloaded before the second's allocation. */
START_TEST(test_module_loaded_where_another_was_is_its_own)
{
    char modules_directory[128], first[256], second[256];
    char first_setting[300], second_setting[300];
    snprintf(modules_directory, sizeof(modules_directory), "/tmp/md-modules-%d",
             (int)getpid());
    ck_assert_int_eq(mkdir(modules_directory, 0700), 0);
    snprintf(first, sizeof(first), "%s/first_plugin.so", modules_directory);
    snprintf(second, sizeof(second), "%s/second_plugin.so", modules_directory);
    copy_file("tests/.libs/leaks_plugin.so", first);
    copy_file("tests/.libs/leaks_plugin.so", second);
    snprintf(first_setting, sizeof(first_setting), "MDTEST_MODULE_FIRST=%s", first);
    snprintf(second_setting, sizeof(second_setting), "MDTEST_MODULE_SECOND=%s",
             second);
    const char *settings[] = {"MallocStackLogging=full", directory_setting,
                              "MallocStackLoggingDontDeleteStackLogFile=1",
                              first_setting, second_setting, NULL};
    struct probe_run run;
    probe(&run, PROBE, "modules", settings, false);
    unlink(first);
    unlink(second);
    rmdir(modules_directory);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    /* Else the loader put the copy elsewhere, and nothing is tested. */
    ck_assert_uint_eq(output_value(run.out, "module1"),
                      output_value(run.out, "module2"));
    struct log_reader *reader = open_log_of(output_value(run.out, "pid"));
    struct events *events = read_events(reader);
    unsigned found = 0;
    uint64_t first_unloaded = 0, second_unloaded = 0, second_order = 0;
    for (unsigned i = 0; i < events->count; i++) {
        const struct log_reader_event *event = &events->list[i];
        if ((event->type & MDLOG_EVENT_KIND_MASK) != MDLOG_EVENT_ALLOC)
            continue;
        if (event->size == 101) {
            found++;
            ck_assert_msg(stack_runs_through(reader, event->stack,
                                             "/first_plugin.so", &first_unloaded),
                          "the first module's allocation is not through it");
        } else if (event->size == 102) {
            found++;
            second_order = event->order;
            ck_assert_msg(stack_runs_through(reader, event->stack,
                                             "/second_plugin.so", &second_unloaded),
                          "the second module's allocation is named by another "
                          "module");
        }
    }
    ck_assert_uint_eq(found, 2);
    ck_assert_uint_ne(first_unloaded, 0);
    ck_assert_uint_le(first_unloaded, second_order);
    ck_assert_uint_ne(second_unloaded, 0);
    log_reader_close(reader);
    clear_directory();
}
END_TEST

/* What the "interrupted" probe's log holds. */
struct interrupted_history {
    struct log_reader *reader;
    unsigned long site_b, free_site;
    uint64_t last_order;
    uint64_t allocated; /* the loop's block not yet freed, or 0 */
    unsigned allocations, frees, vm_events, torn, strays, out_of_order;
};

static int check_interrupted_event(const struct log_reader_event *event,
                                   void *context)
{
    struct interrupted_history *history = context;
    count_out_of_order(event->order, &history->last_order,
                       &history->out_of_order);
    unsigned kind = event->type & MDLOG_EVENT_KIND_MASK;
    if (kind == MDLOG_EVENT_VM_MAP || kind == MDLOG_EVENT_VM_UNMAP) {
        history->vm_events++;
        history->torn += event->size != 4096;
    } else if (kind == MDLOG_EVENT_ALLOC && event->size == 40) {
        history->allocations++;
        history->torn += !(event->type & MDLOG_EVENT_CLEARED) ||
                         !stack_has_function(history->reader, event->stack,
                                             history->site_b) ||
                         history->allocated != 0;
        history->allocated = event->address;
    } else if (kind == MDLOG_EVENT_FREE &&
               stack_has_function(history->reader, event->stack,
                                  history->free_site)) {
        /* The loop frees what it has just allocated. */
        history->frees++;
        history->torn += event->address != history->allocated;
        history->allocated = 0;
    } else {
        history->strays++; /* the probe's own output buffer, and torn ones */
    }
    return 0;
}

static struct interrupted_history read_interrupted(const struct probe_run *run)
{
    ck_assert_msg(exited_cleanly(run), "%s", run->err);
    struct interrupted_history history = {
        .reader = open_log_of(output_value(run->out, "pid")),
        .site_b = output_value(run->out, "site_b"),
        .free_site = output_value(run->out, "free_site")};
    ck_assert_int_eq(log_reader_for_each_event(history.reader,
                                               check_interrupted_event,
                                               &history), 0);
    ck_assert_uint_eq(history.torn, 0);
    ck_assert_uint_eq(history.out_of_order, 0);
    ck_assert_uint_lt(history.strays, 16);
    /* The handler's mappings made while the thread was recording are
     * counted as unrecorded, but for those made while it was in the
     * unwinder, which cannot be told from the unwinder's own. */
    unsigned long timer_calls = output_value(run->out, "timer_calls");
    ck_assert_uint_ge(timer_calls, 300);
    ck_assert_uint_gt(history.vm_events, 0);
    ck_assert_uint_le(history.vm_events +
                          log_reader_header(history.reader)->unrecorded_count,
                      2 * timer_calls);
    return history;
}

/* A signal handler that records events (here vm ones) while the thread is
 * writing its own, in the inline fast path or in the logger, leaves every
 * record whole: nothing of the loop is lost, nothing is torn, and the
 * allocations freed right away are taken back exactly. */
START_TEST(test_signal_handler_events_leave_the_history_whole)
{
    struct probe_run run;
    run_probe(&run, "interrupted", "MallocStackLoggingNoCompact=1", NULL);
    struct interrupted_history history = read_interrupted(&run);
    unsigned long rounds = output_value(run.out, "rounds");
    ck_assert_uint_eq(history.allocations, rounds);
    ck_assert_uint_eq(history.frees, rounds);
    log_reader_close(history.reader);
    clear_directory();

    run_probe(&run, "interrupted", "MallocStackLogging=full", NULL);
    history = read_interrupted(&run);
    rounds = output_value(run.out, "rounds");
    ck_assert_uint_eq(history.allocations, history.frees);
    ck_assert_uint_eq(2 * history.allocations +
                          log_reader_header(history.reader)->compacted_count,
                      2 * rounds);
    log_reader_close(history.reader);
    clear_directory();
}
END_TEST

#define PATHS 4096
#define PATH_THREADS 4

struct path_stacks {
    struct log_reader *reader;
    unsigned long site_a;
    uint32_t thread[PATH_THREADS];
    unsigned count[PATH_THREADS];
    uint32_t stack[PATH_THREADS][2 * PATHS];
    unsigned strangers;
};

static int collect_path_stack(const struct log_reader_event *event,
                              void *context)
{
    struct path_stacks *paths = context;
    if ((event->type & MDLOG_EVENT_KIND_MASK) != MDLOG_EVENT_ALLOC ||
        !stack_has_function(paths->reader, event->stack, paths->site_a))
        return 0;
    unsigned t = 0;
    while (t < PATH_THREADS && paths->thread[t] &&
           paths->thread[t] != event->thread)
        t++;
    if (t == PATH_THREADS || paths->count[t] == 2 * PATHS) {
        paths->strangers++;
        return 0;
    }
    paths->thread[t] = event->thread;
    paths->stack[t][paths->count[t]++] = event->stack;
    return 0;
}

static int compare_uint32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static unsigned distinct_stacks(const uint32_t *stacks, unsigned count)
{
    static uint32_t sorted[PATHS];
    memcpy(sorted, stacks, count * sizeof(*sorted));
    qsort(sorted, count, sizeof(*sorted), compare_uint32);
    unsigned distinct = 0;
    for (unsigned i = 0; i < count; i++)
        distinct += i == 0 || sorted[i] != sorted[i - 1];
    return distinct;
}

struct node_key {
    uint64_t pc;
    uint32_t parent, id;
};

static int compare_node_key(const void *a, const void *b)
{
    const struct node_key *x = a, *y = b;
    if (x->parent != y->parent)
        return (x->parent > y->parent) - (x->parent < y->parent);
    if (x->pc != y->pc)
        return (x->pc > y->pc) - (x->pc < y->pc);
    return (x->id > y->id) - (x->id < y->id);
}

/* keys[0..count) sorted, each node once; the new count. */
static unsigned unique_keys(struct node_key *keys, unsigned count)
{
    qsort(keys, count, sizeof(*keys), compare_node_key);
    unsigned kept = 0;
    for (unsigned i = 0; i < count; i++)
        if (kept == 0 || keys[i].id != keys[kept - 1].id)
            keys[kept++] = keys[i];
    return kept;
}

/* Adds to keys[count..] the children the writer listed under each node
 * of keys[0..count); the new count. */
static unsigned add_listed_children(struct node_key *keys, unsigned count,
                                    unsigned max, struct log_reader *reader)
{
    unsigned total = count;
    for (unsigned i = 0; i < count; i++) {
        const struct mdlog_stack_node *node = log_reader_node(reader, keys[i].id);
        for (uint32_t child = node->first_child; child && total < max;) {
            const struct mdlog_stack_node *listed = log_reader_node(reader, child);
            ck_assert_ptr_nonnull(listed);
            ck_assert_uint_eq(listed->parent, keys[i].id);
            keys[total++] = (struct node_key){listed->pc, listed->parent, child};
            child = listed->next_sibling;
        }
    }
    return total;
}

/* Nodes the stacks lead through, or that the writer listed as a child of
 * one of those, that have the same caller and return address as another
 * one. */
static unsigned duplicate_nodes(const struct path_stacks *paths)
{
    enum { KEYS_MAX = PATH_THREADS * PATHS * 40 };
    static struct node_key keys[KEYS_MAX];
    unsigned count = 0;
    for (unsigned t = 0; t < PATH_THREADS; t++)
        for (unsigned i = 0; i < PATHS; i++)
            for (uint32_t id = paths->stack[t][i]; id && count < KEYS_MAX;) {
                const struct mdlog_stack_node *node =
                    log_reader_node(paths->reader, id);
                ck_assert_ptr_nonnull(node);
                keys[count++] = (struct node_key){node->pc, node->parent, id};
                id = node->parent;
            }
    ck_assert_uint_lt(count, KEYS_MAX);
    count = add_listed_children(keys, unique_keys(keys, count), KEYS_MAX,
                                paths->reader);
    ck_assert_uint_lt(count, KEYS_MAX);
    qsort(keys, count, sizeof(*keys), compare_node_key);
    unsigned duplicates = 0;
    for (unsigned i = 1; i < count; i++)
        duplicates += keys[i].parent == keys[i - 1].parent &&
                      keys[i].pc == keys[i - 1].pc &&
                      keys[i].id != keys[i - 1].id;
    return duplicates;
}

/* Where the paths of thread 0 part, from the outside in: how many
 * different return addresses the first frame that differs has, all of
 * them in the probe's fan_out function.  Its caller's node has that
 * many children. */
#define FAN_OUT_SITES 16

static unsigned fan_out_sites(const struct path_stacks *paths,
                              unsigned long fan_out)
{
    static uint64_t pcs[PATHS][MDLOG_MAX_FRAMES];
    static size_t frames[PATHS];
    for (unsigned i = 0; i < PATHS; i++)
        frames[i] = log_reader_stack_frames(paths->reader, paths->stack[0][i],
                                            pcs[i], NULL, MDLOG_MAX_FRAMES);
    for (size_t outer = 1; outer <= frames[0]; outer++) {
        uint64_t seen[FAN_OUT_SITES + 1];
        unsigned count = 0;
        for (unsigned i = 0; i < PATHS && count <= FAN_OUT_SITES; i++) {
            ck_assert_uint_ge(frames[i], outer);
            uint64_t pc = pcs[i][frames[i] - outer];
            unsigned known = 0;
            while (known < count && seen[known] != pc)
                known++;
            if (known == count)
                seen[count++] = pc;
        }
        if (count == 1)
            continue;
        for (unsigned k = 0; k < count; k++)
            ck_assert_msg(seen[k] > fan_out && seen[k] - fan_out < 1024,
                          "the paths part at %#lx, outside fan_out (%#lx)",
                          (unsigned long)seen[k], fan_out);
        return count;
    }
    return 1;
}

/* Four threads take 4096 stacks each, twice, all at once, while the
 * node index grows under them: every path gets one stack id, the same
 * both times, and no node is made twice, neither in a list nor in the
 * index.  Each call on the paths has 16 call sites under it, more
 * children than the writer lists under a node: the others are found
 * through the index. */
START_TEST(test_stacks_stay_unique_while_the_index_grows)
{
    struct probe_run run;
    run_probe(&run, "paths", "MallocStackLogging=full", NULL);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    unsigned long pid = output_value(run.out, "pid");
    static struct path_stacks paths;
    memset(&paths, 0, sizeof(paths));
    paths.reader = open_log_of(pid);
    paths.site_a = output_value(run.out, "site_a");
    ck_assert_int_eq(log_reader_for_each_event(paths.reader,
                                               collect_path_stack, &paths), 0);
    ck_assert_uint_eq(paths.strangers, 0);
    for (unsigned t = 0; t < PATH_THREADS; t++) {
        ck_assert_uint_eq(paths.count[t], 2 * PATHS);
        for (unsigned path = 0; path < PATHS; path++)
            ck_assert_uint_eq(paths.stack[t][path], paths.stack[t][PATHS + path]);
        ck_assert_uint_eq(distinct_stacks(paths.stack[t], PATHS), PATHS);
    }
    ck_assert_uint_eq(duplicate_nodes(&paths), 0);
    ck_assert_uint_eq(fan_out_sites(&paths, output_value(run.out, "fan_out")),
                      FAN_OUT_SITES);
    log_reader_close(paths.reader);
    clear_directory();
}
END_TEST

static void expect_vm_events(const char *mode, bool vm, bool malloc_events)
{
    struct probe_run run;
    run_probe(&run, "vm", mode, NULL);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    struct log_reader *reader = open_log_of(output_value(run.out, "pid"));
    struct events *events = read_events(reader);
    unsigned long mapped = output_value(run.out, "mapped");
    unsigned long grown = output_value(run.out, "grown");
    const struct log_reader_event *map =
        find_event(events, MDLOG_EVENT_VM_MAP, mapped);
    const struct log_reader_event *unmap =
        find_event(events, MDLOG_EVENT_VM_UNMAP, grown);
    ck_assert_msg((map != NULL) == vm, "%s", mode);
    ck_assert((unmap != NULL) == vm);
    if (vm) {
        ck_assert_uint_eq(map->size, 65536);
        ck_assert_uint_eq(unmap->size, 131072);
        ck_assert_uint_lt(map->order, unmap->order);
        const struct log_reader_event *moved =
            find_event(events, MDLOG_EVENT_VM_MAP, grown);
        ck_assert(moved && (moved->type & MDLOG_EVENT_REALLOC));
        ck_assert_ptr_null(find_event(events, MDLOG_EVENT_VM_UNMAP, grown + 1));
        /* The old range's last event is its mapping (its address may
         * be `mapped`'s, given back by the mremap above). */
        unsigned long kept = output_value(run.out, "kept");
        unsigned long copy = output_value(run.out, "copy");
        const struct log_reader_event *last_at_kept = NULL;
        for (unsigned i = 0; i < events->count; i++)
            if (events->list[i].address == kept)
                last_at_kept = &events->list[i];
        ck_assert(last_at_kept &&
                  (last_at_kept->type & MDLOG_EVENT_KIND_MASK) == MDLOG_EVENT_VM_MAP);
        const struct log_reader_event *copied =
            find_event(events, MDLOG_EVENT_VM_MAP, copy);
        /* 0 when the kernel has no MREMAP_DONTUNMAP (before 5.7). */
        ck_assert(!copy || (copied && copied->size == 65536 &&
                            !(copied->type & MDLOG_EVENT_REALLOC)));
    }
    ck_assert((find_event(events, MDLOG_EVENT_ALLOC,
                          output_value(run.out, "a")) != NULL) == malloc_events);
    log_reader_close(reader);
    clear_directory();
}

START_TEST(test_vm_events_follow_the_mode)
{
    expect_vm_events("MallocStackLogging=full", true, true);
    expect_vm_events("MallocStackLogging=vm", true, false);
    expect_vm_events("MallocStackLogging=malloc", false, true);
}
END_TEST

/* malloc_zone_realloc(zone, NULL, n) is logged as the allocation it is,
 * with no free half. */
START_TEST(test_zone_realloc_of_null_is_an_allocation)
{
    struct probe_run run;
    struct log_reader *reader;
    struct events *events = full_probe_events(&run, "realloc_null", &reader);
    const struct log_reader_event *made =
        find_event(events, MDLOG_EVENT_ALLOC, output_value(run.out, "block"));
    ck_assert(made != NULL);
    ck_assert_uint_eq(made->size, 48);
    ck_assert_uint_eq(made->type, MDLOG_EVENT_ALLOC);
    ck_assert_ptr_null(find_event(events, MDLOG_EVENT_FREE, 0));
    log_reader_close(reader);
    clear_directory();
}
END_TEST

/* Each realloc that frees a block is its two halves, the free before the
 * allocation, both with the stack of the call, in the fast path's order
 * as in the logger's. */
START_TEST(test_reallocs_record_both_halves)
{
    struct probe_run run;
    struct log_reader *reader;
    struct events *events = full_probe_events(&run, "reallocs", &reader);
    unsigned long grow = output_value(run.out, "grow");
    uint64_t current = 0, size = 16;
    unsigned halves = 0;
    for (unsigned i = 0; i < events->count; i++) {
        const struct log_reader_event *event = &events->list[i];
        unsigned kind = event->type & MDLOG_EVENT_KIND_MASK;
        if (!stack_has_function(reader, event->stack, grow))
            continue;
        if (!(event->type & MDLOG_EVENT_REALLOC)) {
            /* realloc(NULL, 16) is an allocation. */
            ck_assert_uint_eq(kind, MDLOG_EVENT_ALLOC);
            ck_assert_uint_eq(event->size, 16);
            current = event->address;
            continue;
        }
        if (halves++ % 2 == 0) {
            ck_assert_uint_eq(kind, MDLOG_EVENT_FREE);
            ck_assert_uint_eq(event->address, current);
        } else {
            ck_assert_uint_eq(kind, MDLOG_EVENT_ALLOC);
            ck_assert_uint_eq(event->size, size += 16);
            ck_assert_uint_eq(event->stack, events->list[i - 1].stack);
            current = event->address;
        }
    }
    ck_assert_uint_eq(halves, 2 * 255);
    ck_assert_uint_eq(size, 4096);
    expect_event(reader, events, MDLOG_EVENT_FREE, current, 0);
    log_reader_close(reader);
    clear_directory();
}
END_TEST

static const struct log_reader_event *
find_realloc_half(const struct events *events, unsigned kind,
                  unsigned long address)
{
    return find_event_flagged(events, kind, MDLOG_EVENT_REALLOC, address);
}

/* A realloc made inside another (here by a zone the program wrote,
 * inside its realloc; a signal handler's would be the same) records its
 * events first, and the outer one's two halves come after them: the
 * thread's events are written in increasing order, no two share one
 * (read_events checks the walk), and each realloc's halves stay in
 * theirs. */
START_TEST(test_realloc_inside_a_realloc_is_recorded_in_order)
{
    struct probe_run run;
    struct log_reader *reader;
    struct events *events = full_probe_events(&run, "nested_realloc", &reader);
    const struct log_reader_event *outer_free = find_realloc_half(
        events, MDLOG_EVENT_FREE, output_value(run.out, "block"));
    const struct log_reader_event *outer_allocation = find_realloc_half(
        events, MDLOG_EVENT_ALLOC, output_value(run.out, "same"));
    const struct log_reader_event *inner_free = find_realloc_half(
        events, MDLOG_EVENT_FREE, output_value(run.out, "nested"));
    const struct log_reader_event *inner_allocation = find_realloc_half(
        events, MDLOG_EVENT_ALLOC, output_value(run.out, "moved"));
    ck_assert(outer_free && outer_allocation && inner_free && inner_allocation);
    ck_assert_uint_lt(inner_free->order, inner_allocation->order);
    ck_assert_uint_lt(inner_allocation->order, outer_free->order);
    ck_assert_uint_lt(outer_free->order, outer_allocation->order);
    log_reader_close(reader);
    clear_directory();
}
END_TEST

/* ---- reaping and the directory ---- */

static pid_t dead_pid(void)
{
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0);
    return child;
}

static void plant_log(pid_t pid, uint32_t flags, char *path, size_t size)
{
    snprintf(path, size, "%s/" MDLOG_FILE_PREFIX "%d.gone" MDLOG_FILE_SUFFIX,
             directory, (int)pid);
    struct mdlog_header header = {.version = MDLOG_VERSION, .flags = flags};
    memcpy(header.magic, MDLOG_MAGIC, MDLOG_MAGIC_SIZE);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, &header, sizeof(header)), (ssize_t)sizeof(header));
    close(fd);
}

START_TEST(test_logs_of_dead_processes_are_reaped)
{
    struct probe_run run;
    char planted[512];
    const char *settings[] = {"MallocStackLogging=1", directory_setting, NULL};
    plant_log(dead_pid(), 0, planted, sizeof(planted));
    probe(&run, PROBE, "sites", settings, false);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    ck_assert_int_ne(access(planted, F_OK), 0);

    plant_log(dead_pid(), MDLOG_FLAG_KEEP, planted, sizeof(planted));
    probe(&run, PROBE, "sites", settings, false);
    ck_assert_int_eq(access(planted, F_OK), 0);
    unlink(planted);

    const char *no_reaping[] = {"MallocStackLogging=1", directory_setting,
                                "MallocStackLoggingNoReaping=1", NULL};
    plant_log(dead_pid(), 0, planted, sizeof(planted));
    probe(&run, PROBE, "sites", no_reaping, false);
    ck_assert_int_eq(access(planted, F_OK), 0);
    /* A live process's log is never touched. */
    plant_log(getpid(), 0, planted, sizeof(planted));
    probe(&run, PROBE, "sites", settings, false);
    ck_assert_int_eq(access(planted, F_OK), 0);
    clear_directory();
}
END_TEST

/* Opening a FIFO for reading waits for a writer: the reaping must not
 * (the test's timeout fails it if it does). */
START_TEST(test_fifo_named_like_a_log_is_left_alone)
{
    struct probe_run run;
    char fifo[512];
    snprintf(fifo, sizeof(fifo), "%s/" MDLOG_FILE_PREFIX "%d.fifo" MDLOG_FILE_SUFFIX,
             directory, (int)dead_pid());
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    const char *settings[] = {"MallocStackLogging=1", directory_setting, NULL};
    probe(&run, PROBE, "sites", settings, false);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    ck_assert_int_eq(access(fifo, F_OK), 0); /* not a log: not ours */
    unlink(fifo);
    clear_directory();
}
END_TEST

/* The mode the start line names, or NULL when logging did not start. */
static const char *started_mode(const char *err)
{
    if (!strstr(err, ") MallocStackLogging: recording malloc stacks to "))
        return NULL;
    return strstr(err, "(lite mode)\n") ? "lite" : strstr(err, "(full mode)\n") ? "full" : "?";
}

/* Any value but the mode names means full mode, as on macOS, and is
 * said; 0 stays off even with NoCompact, which otherwise turns lite into
 * full, saying so. */
START_TEST(test_mode_values)
{
    struct probe_run run;
    const char *other[] = {"MallocStackLogging=Lite", directory_setting, NULL};
    probe(&run, PROBE, "sites", other, false);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    ck_assert_msg(strstr(run.err, " malloc: MallocStackLogging=Lite: not a mode "
                                  "(1, lite, full, malloc, vm, or 0 for off); "
                                  "recording every event (full mode)"),
                  "%s", run.err);
    ck_assert_str_eq(started_mode(run.err), "full");

    const char *off[] = {"MallocStackLogging=0", "MallocStackLoggingNoCompact=1",
                         directory_setting, NULL};
    probe(&run, PROBE, "sites", off, false);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    ck_assert_msg(started_mode(run.err) == NULL, "%s", run.err);

    const char *lite[] = {"MallocStackLogging=lite", "MallocStackLoggingNoCompact=1",
                          directory_setting, NULL};
    probe(&run, PROBE, "sites", lite, false);
    ck_assert_msg(strstr(run.err, " malloc: MallocStackLoggingNoCompact: records "
                                  "every event: full mode rather than lite\n"),
                  "%s", run.err);
    ck_assert_str_eq(started_mode(run.err), "full");

    const char *alone[] = {"MallocStackLoggingNoCompact=1", directory_setting, NULL};
    probe(&run, PROBE, "sites", alone, false);
    ck_assert_str_eq(started_mode(run.err), "full");
    ck_assert_msg(!strstr(run.err, "rather than lite"), "%s", run.err);
    const char *one[] = {"MallocStackLogging=1", directory_setting, NULL};
    probe(&run, PROBE, "sites", one, false);
    ck_assert_str_eq(started_mode(run.err), "lite");
    ck_assert_msg(!strstr(run.err, "not a mode"), "%s", run.err);
    clear_directory();
}
END_TEST

START_TEST(test_unwritable_directory_falls_back)
{
    struct probe_run run;
    const char *settings[] = {"MallocStackLogging=1",
                              "MallocStackLoggingDirectory=/nonexistent/logs",
                              NULL};
    probe(&run, PROBE, "sites", settings, false);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    ck_assert_msg(strstr(run.err, ") MallocStackLogging: can't create a log in "
                                  "/nonexistent/logs (No such file or directory); "
                                  "using /dev/shm\n"),
                  "%s", run.err);
    char expected[256];
    snprintf(expected, sizeof(expected),
             "recording malloc stacks to /dev/shm/" MDLOG_FILE_PREFIX "%lu.",
             output_value(run.out, "pid"));
    ck_assert_msg(strstr(run.err, expected), "%s", run.err);

    const char *relative[] = {"MallocStackLogging=1",
                              "MallocStackLoggingDirectory=logs", NULL};
    probe(&run, PROBE, "sites", relative, false);
    ck_assert_msg(strstr(run.err, "MallocStackLoggingDirectory"), "%s", run.err);
    ck_assert_msg(strstr(run.err, "expected an absolute path"), "%s", run.err);
}
END_TEST

/* A program whose name would make the log's file name longer than a
 * file name may be: the name is cut, the log made all the same. */
START_TEST(test_long_program_name_is_cut_in_the_log_name)
{
    char program[PATH_MAX], libraries[PATH_MAX + 32];
    char name[241];
    memset(name, 'x', 240);
    name[240] = '\0';
    snprintf(program, sizeof(program), "%s/%s", directory, name);
    copy_file("tests/.libs/stacklog_probe", program);
    ck_assert_int_eq(chmod(program, 0700), 0);
    char *libs = realpath("lib/.libs", NULL);
    ck_assert_ptr_nonnull(libs);
    snprintf(libraries, sizeof(libraries), "LD_LIBRARY_PATH=%s", libs);
    free(libs);
    const char *settings[] = {"MallocStackLogging=1", directory_setting,
                              "MallocStackLoggingDontDeleteStackLogFile=1",
                              libraries, NULL};
    struct probe_run run;
    probe(&run, program, "sites", settings, false);
    unlink(program);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    char path[PATH_MAX];
    ck_assert_uint_eq(directory_logs(path, sizeof(path)), 1);
    const char *log = strrchr(path, '/') + 1;
    char start[64];
    snprintf(start, sizeof(start), MDLOG_FILE_PREFIX "%lu.xxx",
             output_value(run.out, "pid"));
    ck_assert_uint_eq(strlen(log), NAME_MAX);
    ck_assert_msg(strncmp(log, start, strlen(start)) == 0, "%s", log);
    ck_assert_str_eq(log + NAME_MAX - strlen(MDLOG_FILE_SUFFIX), MDLOG_FILE_SUFFIX);
    clear_directory();
}
END_TEST

START_TEST(test_program_logger_sees_the_same_calls)
{
    struct probe_run plain, lite, full;
    const char *none[] = {NULL};
    probe(&plain, PROBE, "logger", none, false);
    ck_assert_msg(exited_cleanly(&plain), "%s", plain.err);
    run_probe(&lite, "logger", "MallocStackLogging=lite", NULL);
    run_probe(&full, "logger", "MallocStackLogging=full", NULL);
    /* malloc, calloc, valloc, zone malloc, 3 batch, realloc, 7 frees */
    ck_assert_uint_eq(count_lines(plain.out), 15);
    ck_assert_msg(strstr(plain.out, "type 10 arg2 10 arg3 0 result 1\n"), "%s",
                  plain.out);
    ck_assert_msg(strstr(plain.out, "type 74 arg2 16 arg3 0 result 1\n"), "%s",
                  plain.out);
    ck_assert_msg(strstr(plain.out, "type 14 arg2 1 arg3 100 result 1\n"), "%s",
                  plain.out);
    ck_assert_str_eq(lite.out, plain.out);
    ck_assert_str_eq(full.out, plain.out);
    clear_directory();
}
END_TEST

static Suite *stack_logging_suite(void)
{
    Suite *s = suite_create("stack_logging");
    TCase *tc = tcase_create("log");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_full_mode_records_events_with_stacks);
    tcase_add_test(tc, test_callers_at_the_same_depth_get_their_own_stacks);
    tcase_add_test(tc, test_stacks_deeper_than_recorded_keep_their_inner_frames);
    tcase_add_test(tc, test_a_recursion_gets_the_stacks_of_its_paths);
    tcase_add_test(tc, test_allocation_in_a_signal_handler_on_another_stack);
    tcase_add_test(tc, test_allocation_on_a_stack_of_its_own);
    tcase_add_test(tc, test_unmapping_next_to_a_stack);
    tcase_add_test(tc, test_lite_mode_keeps_stacks_without_events);
    tcase_add_test(tc, test_compaction_elides_temporary_allocations);
    tcase_add_test(tc, test_compaction_keeps_a_block_another_thread_reused);
    tcase_add_test(tc, test_blocks_that_change_threads_keep_their_order);
    tcase_add_test(tc, test_an_address_left_by_a_moved_block_keeps_its_order);
    tcase_add_test(tc, test_log_removed_at_exit_kept_after_crash);
    tcase_add_test(tc, test_fork_gives_the_child_its_own_log);
    tcase_add_test(tc, test_exec_starts_a_fresh_log);
    tcase_add_test(tc, test_fork_while_threads_allocate);
    tcase_add_test(tc, test_fork_while_another_thread_holds_the_loader_lock);
    tcase_add_test(tc, test_allocation_inside_a_module_walk);
    tcase_add_test(tc, test_threads_record_their_own_events);
    tcase_add_test(tc, test_long_history_spans_chunks);
    tcase_add_test(tc, test_log_memory_follows_what_it_holds);
    tcase_add_test(tc, test_descriptor_taken_by_the_program);
    tcase_add_test(tc, test_log_grows_without_populate_write);
    tcase_add_test(tc, test_full_file_system_stops_the_log_with_a_message);
    tcase_add_test(tc, test_a_child_without_a_log_runs_to_its_end);
    tcase_add_test(tc, test_a_thread_given_an_ended_ones_id_comes_after_it);
    tcase_add_test(tc, test_module_loaded_where_another_was_is_its_own);
    tcase_add_test(tc, test_signal_handler_events_leave_the_history_whole);
    tcase_add_test(tc, test_stacks_stay_unique_while_the_index_grows);
    tcase_add_test(tc, test_vm_events_follow_the_mode);
    tcase_add_test(tc, test_zone_realloc_of_null_is_an_allocation);
    tcase_add_test(tc, test_reallocs_record_both_halves);
    tcase_add_test(tc, test_realloc_inside_a_realloc_is_recorded_in_order);
    tcase_add_test(tc, test_logs_of_dead_processes_are_reaped);
    tcase_add_test(tc, test_fifo_named_like_a_log_is_left_alone);
    tcase_add_test(tc, test_mode_values);
    tcase_add_test(tc, test_unwritable_directory_falls_back);
    tcase_add_test(tc, test_long_program_name_is_cut_in_the_log_name);
    tcase_add_test(tc, test_program_logger_sees_the_same_calls);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    make_directory();
    int status = run_suite(stack_logging_suite());
    clear_directory();
    rmdir(directory);
    return status;
}
