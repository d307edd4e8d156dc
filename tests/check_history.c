/*
 * The history replayed from a stack log (tools/history.h): on logs made
 * by tests/log_builder.c with known events, the live set, the peak,
 * the events at an address, groups by stack, call trees, temporaries,
 * vm regions and bad events; then on real logs of tests/stacklog_probe
 * under MallocStackLogging=full.
 */
#include "config.h"

#include "../tools/history.h"
#include "../tools/log_live_blocks.h"
#include "log_builder.h"
#include "test_util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SMALL LOG_BUILDER_SMALL_CHUNK
#define ALLOC MDLOG_EVENT_ALLOC
#define FREE MDLOG_EVENT_FREE
#define REALLOC MDLOG_EVENT_REALLOC
#define VM_MAP MDLOG_EVENT_VM_MAP
#define VM_UNMAP MDLOG_EVENT_VM_UNMAP

enum { T1 = 101, T2 = 102 };

/* ---- helpers ---- */

struct replayed {
    struct log_reader *reader;
    struct history *history;
    const struct history_event *events;
    size_t count;
};

/* Writes the log to a file, opens it (the mapping outlives the file)
 * and replays it. */
static void replay(struct log_builder *builder, struct replayed *r)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[512], message[512];
    snprintf(path, sizeof(path), "%s/check_history.XXXXXX", base);
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert(log_builder_write(builder, path));
    r->reader = log_reader_open(path, message, sizeof(message));
    ck_assert_msg(r->reader != NULL, "%s", message);
    unlink(path);
    r->history = history_replay(r->reader, message, sizeof(message));
    ck_assert_msg(r->history != NULL, "%s", message);
    ck_assert_str_eq(message, "");
    r->events = history_events(r->history, &r->count);
}

static void finish(struct replayed *r, struct log_builder *builder)
{
    history_free(r->history);
    log_reader_close(r->reader);
    log_builder_destroy(builder);
}

/* The index of the event of `order`; the test fails when there is none. */
static uint32_t index_of(const struct replayed *r, uint64_t order)
{
    for (size_t i = 0; i < r->count; i++)
        if (r->events[i].order == order)
            return (uint32_t)i;
    ck_abort_msg("no event of order %llu", (unsigned long long)order);
    return HISTORY_NONE;
}

/* `selection` holds exactly the events of `orders` (in order). */
static void assert_orders(const struct replayed *r,
                          const struct history_selection *selection,
                          const uint64_t *orders, size_t count)
{
    ck_assert_uint_eq(selection->count, count);
    for (size_t i = 0; i < count; i++)
        ck_assert_uint_eq(r->events[selection->events[i]].order, orders[i]);
}

static uint32_t frame(struct log_builder *builder, uint32_t parent, uint64_t pc)
{
    return log_builder_frame(builder, parent, pc, (uint32_t)(pc >> 12) & 7);
}

/* ---- replay: live set, peak, bad events ---- */

START_TEST(test_live_set_and_peak)
{
    struct log_builder *b = log_builder_create(SMALL, 77);
    uint32_t s1 = frame(b, log_builder_thread_node(b, T1), 0x401000);
    uint32_t s2 = frame(b, s1, 0x402000);
    uint64_t a = log_builder_event(b, T1, ALLOC, 0x1000, 100, s1);
    uint64_t bb = log_builder_event(b, T1, ALLOC, 0x2000, 200, s1);
    uint64_t c = log_builder_event(b, T1, ALLOC | MDLOG_EVENT_CLEARED, 0x3000, 50, s2);
    uint64_t free_b = log_builder_event(b, T1, FREE, 0x2000, 0, s2);
    uint64_t d = log_builder_event(b, T1, ALLOC, 0x4000, 10, s2);
    uint64_t free_a = log_builder_event(b, T1, FREE, 0x1000, 0, s1);
    struct replayed r;
    replay(b, &r);

    const struct history_summary *summary = history_summary(r.history);
    ck_assert_uint_eq(r.count, 6);
    ck_assert_uint_eq(summary->allocations, 4);
    ck_assert_uint_eq(summary->frees, 2);
    ck_assert_uint_eq(summary->unknown_frees, 0);
    ck_assert_uint_eq(summary->peak.order, c);
    ck_assert_uint_eq(summary->peak.bytes, 350);
    ck_assert_uint_eq(summary->peak.count, 3);
    ck_assert_uint_eq(summary->end.order, free_a);
    ck_assert_uint_eq(summary->end.bytes, 60);
    ck_assert_uint_eq(summary->end.count, 2);
    /* Frees and allocations point at each other. */
    ck_assert_uint_eq(r.events[index_of(&r, bb)].partner, index_of(&r, free_b));
    ck_assert_uint_eq(r.events[index_of(&r, free_b)].partner, index_of(&r, bb));
    ck_assert_uint_eq(r.events[index_of(&r, c)].partner, HISTORY_NONE);
    ck_assert_uint_eq(r.events[index_of(&r, c)].type, ALLOC | MDLOG_EVENT_CLEARED);
    ck_assert_uint_eq(r.events[index_of(&r, c)].stack, s2);
    ck_assert_uint_eq(r.events[index_of(&r, c)].thread, T1);

    struct history_selection live;
    ck_assert(history_live_at_end(r.history, &live));
    const uint64_t at_end[] = {c, d};
    assert_orders(&r, &live, at_end, 2);
    history_selection_free(&live);
    ck_assert(history_live_at_peak(r.history, &live));
    const uint64_t at_peak[] = {a, bb, c};
    assert_orders(&r, &live, at_peak, 3);
    history_selection_free(&live);
    ck_assert(history_live_at(r.history, free_b, &live));
    const uint64_t after_free[] = {a, c};
    assert_orders(&r, &live, after_free, 2);
    history_selection_free(&live);

    /* One sample per event, the last at the end. */
    size_t points;
    const struct history_level *timeline = history_timeline(r.history, &points);
    ck_assert_uint_eq(points, 6);
    ck_assert_uint_eq(timeline[2].order, c);
    ck_assert_uint_eq(timeline[2].bytes, 350);
    ck_assert_uint_eq(timeline[3].bytes, 150);
    ck_assert_uint_eq(timeline[5].order, free_a);
    ck_assert_uint_eq(timeline[5].count, 2);
    finish(&r, b);
}
END_TEST

START_TEST(test_bad_events_are_counted)
{
    struct log_builder *b = log_builder_create(SMALL, 77);
    uint32_t s = frame(b, log_builder_thread_node(b, T1), 0x401000);
    uint64_t stray = log_builder_event(b, T1, FREE, 0x9000, 0, s);
    uint64_t first = log_builder_event(b, T1, ALLOC, 0x1000, 64, s);
    uint64_t second = log_builder_event(b, T1, ALLOC, 0x1000, 16, s);
    /* No such kind: the rest of its thread's chunk is lost. */
    log_builder_event(b, T2, 7, 0x5000, 8, s);
    uint64_t twice = log_builder_event(b, T1, FREE, 0x1000, 0, s);
    uint64_t again = log_builder_event(b, T1, FREE, 0x1000, 0, s);
    /* A zone's realloc of NULL: its free half frees nothing. */
    uint64_t of_null = log_builder_event(b, T1, FREE | REALLOC, 0, 0, s);
    uint64_t realloced = log_builder_event(b, T1, ALLOC | REALLOC, 0x3000, 8, s);
    struct replayed r;
    replay(b, &r);

    const struct history_summary *summary = history_summary(r.history);
    ck_assert_uint_eq(r.count, 7);
    ck_assert_uint_eq(summary->unknown_frees, 2);
    ck_assert_uint_eq(summary->replaced, 1);
    /* The reader skips the event of no known kind, and says so. */
    ck_assert_uint_gt(log_reader_damaged_bytes(r.reader), 0);
    ck_assert(log_reader_warnings(r.reader) & LOG_READER_DAMAGED_EVENTS);
    ck_assert_uint_eq(summary->end.bytes, 8);
    ck_assert_uint_eq(summary->end.count, 1);
    ck_assert_uint_eq(r.events[index_of(&r, of_null)].marks, 0);
    ck_assert_uint_eq(r.events[index_of(&r, of_null)].partner, HISTORY_NONE);
    ck_assert_uint_eq(r.events[index_of(&r, realloced)].partner, HISTORY_NONE);
    /* The replaced block's bytes left the live set with it. */
    ck_assert_uint_eq(summary->peak.bytes, 64);
    ck_assert_uint_eq(summary->peak.order, first);
    ck_assert(r.events[index_of(&r, stray)].marks & HISTORY_MARK_UNKNOWN_FREE);
    ck_assert(r.events[index_of(&r, again)].marks & HISTORY_MARK_UNKNOWN_FREE);
    ck_assert(!(r.events[index_of(&r, twice)].marks & HISTORY_MARK_UNKNOWN_FREE));
    ck_assert(r.events[index_of(&r, first)].marks & HISTORY_MARK_REPLACED);
    ck_assert_uint_eq(r.events[index_of(&r, first)].partner, index_of(&r, second));
    ck_assert_uint_eq(r.events[index_of(&r, twice)].partner, index_of(&r, second));
    ck_assert_uint_eq(r.events[index_of(&r, again)].partner, HISTORY_NONE);

    struct history_selection live;
    ck_assert(history_live_at(r.history, second, &live));
    const uint64_t after_second[] = {second};
    assert_orders(&r, &live, after_second, 1);
    history_selection_free(&live);
    finish(&r, b);
}
END_TEST

START_TEST(test_realloc_moves_a_block)
{
    struct log_builder *b = log_builder_create(SMALL, 77);
    uint32_t s = frame(b, log_builder_thread_node(b, T1), 0x401000);
    uint64_t a = log_builder_event(b, T1, ALLOC, 0x1000, 64, s);
    uint64_t moved_out = log_builder_event(b, T1, FREE | REALLOC, 0x1000, 0, s);
    uint64_t moved_in = log_builder_event(b, T1, ALLOC | REALLOC, 0x5000, 128, s);
    uint64_t grown_out = log_builder_event(b, T1, FREE | REALLOC, 0x5000, 0, s);
    uint64_t grown_in = log_builder_event(b, T1, ALLOC | REALLOC, 0x5000, 256, s);
    struct replayed r;
    replay(b, &r);

    const struct history_summary *summary = history_summary(r.history);
    ck_assert_uint_eq(summary->end.bytes, 256);
    ck_assert_uint_eq(summary->end.count, 1);
    ck_assert_uint_eq(summary->peak.bytes, 256);
    ck_assert_uint_eq(summary->peak.order, grown_in);
    ck_assert_uint_eq(summary->unknown_frees, 0);
    /* A realloc does not end a temporary. */
    ck_assert_uint_eq(summary->temporaries, 0);
    ck_assert_uint_eq(r.events[index_of(&r, a)].partner, index_of(&r, moved_out));
    ck_assert_uint_eq(r.events[index_of(&r, moved_in)].partner,
                      index_of(&r, grown_out));

    struct history_selection events;
    ck_assert(history_events_at_address(r.history, 0x1000, &events));
    const uint64_t old_place[] = {a, moved_out};
    assert_orders(&r, &events, old_place, 2);
    history_selection_free(&events);
    /* 0x5080 is past the 128-byte block, inside the 256-byte one. */
    ck_assert(history_events_at_address(r.history, 0x5080, &events));
    const uint64_t grown_part[] = {grown_in};
    assert_orders(&r, &events, grown_part, 1);
    history_selection_free(&events);
    ck_assert(history_events_at_address(r.history, 0x5000, &events));
    const uint64_t new_place[] = {moved_in, grown_out, grown_in};
    assert_orders(&r, &events, new_place, 3);
    history_selection_free(&events);
    finish(&r, b);
}
END_TEST

/* ---- events at an address ---- */

START_TEST(test_events_at_interior_addresses)
{
    struct log_builder *b = log_builder_create(SMALL, 77);
    uint32_t s = frame(b, log_builder_thread_node(b, T1), 0x401000);
    uint64_t big = log_builder_event(b, T1, ALLOC, 0x100, 0x100000, s);
    uint64_t wide = log_builder_event(b, T1, ALLOC, 0x201000, 0x100, s);
    uint64_t wide_free = log_builder_event(b, T1, FREE, 0x201000, 0, s);
    uint64_t inner = log_builder_event(b, T1, ALLOC, 0x201080, 0x10, s);
    uint64_t edge = log_builder_event(b, T1, ALLOC, 0x2010f0, 0x20, s);
    uint64_t empty = log_builder_event(b, T1, ALLOC, 0x202000, 0, s);
    uint64_t stray = log_builder_event(b, T1, FREE, 0x203000, 0, s);
    struct replayed r;
    replay(b, &r);

    struct history_selection events;
    ck_assert(history_events_at_address(r.history, 0x201088, &events));
    const uint64_t at_inner[] = {wide, wide_free, inner};
    assert_orders(&r, &events, at_inner, 3);
    history_selection_free(&events);
    ck_assert(history_events_at_address(r.history, 0x2010ff, &events));
    const uint64_t at_edge[] = {wide, wide_free, edge};
    assert_orders(&r, &events, at_edge, 3);
    history_selection_free(&events);
    ck_assert(history_events_at_address(r.history, 0x201100, &events));
    const uint64_t past_wide[] = {edge};
    assert_orders(&r, &events, past_wide, 1);
    history_selection_free(&events);
    ck_assert(history_events_at_address(r.history, 0x80000, &events));
    const uint64_t in_big[] = {big};
    assert_orders(&r, &events, in_big, 1);
    history_selection_free(&events);
    /* A block of size 0 is found at its start only. */
    ck_assert(history_events_at_address(r.history, 0x202000, &events));
    const uint64_t at_empty[] = {empty};
    assert_orders(&r, &events, at_empty, 1);
    history_selection_free(&events);
    ck_assert(history_events_at_address(r.history, 0x202001, &events));
    ck_assert_uint_eq(events.count, 0);
    history_selection_free(&events);
    ck_assert(history_events_at_address(r.history, 0x203000, &events));
    const uint64_t at_stray[] = {stray};
    assert_orders(&r, &events, at_stray, 1);
    history_selection_free(&events);
    ck_assert(history_events_at_address(r.history, 0xff, &events));
    ck_assert_uint_eq(events.count, 0);
    history_selection_free(&events);
    finish(&r, b);
}
END_TEST

/* Many blocks over many buckets of the index, against a plain search of
 * the events this test made. */
struct made {
    uint64_t order, address, size;
    bool allocation;
    uint64_t end_order; /* the free that ended it, or 0 */
};

START_TEST(test_events_at_address_against_a_plain_search)
{
    enum { MADE = 6000, QUERIES = 600 };
    static struct made made[MADE];
    struct log_builder *b = log_builder_create(SMALL, 77);
    uint32_t s = frame(b, log_builder_thread_node(b, T1), 0x401000);
    uint64_t seed = 11, live_slots[64] = {0};
    size_t count = 0;
    while (count < MADE) {
        uint64_t slot = test_random(&seed) % 64;
        if (live_slots[slot]) {
            struct made *block = &made[live_slots[slot] - 1];
            uint64_t order = log_builder_event(b, T1, FREE, block->address, 0, s);
            block->end_order = order;
            made[count++] = (struct made){order, block->address, 0, false, 0};
            live_slots[slot] = 0;
            continue;
        }
        /* Addresses in a small range, so blocks of different times
         * overlap; now and then a large one. */
        uint64_t size = test_random(&seed) % 7 == 0 ? 0x4000 + test_random(&seed) % 0x8000
                                                  : test_random(&seed) % 96;
        uint64_t address = 0x100000 + (test_random(&seed) % 0x4000) * 16;
        bool clash = false;
        for (unsigned i = 0; i < 64; i++)
            clash |= live_slots[i] && made[live_slots[i] - 1].address == address;
        if (clash)
            continue;
        uint64_t order = log_builder_event(b, T1, ALLOC, address, size, s);
        made[count++] = (struct made){order, address, size, true, 0};
        live_slots[slot] = count;
    }
    struct replayed r;
    replay(b, &r);
    ck_assert_uint_eq(r.count, MADE);
    uint64_t *expected = malloc(MADE * sizeof(*expected));
    for (unsigned q = 0; q < QUERIES; q++) {
        uint64_t address = 0x100000 + test_random(&seed) % 0x50000;
        if (q % 3 == 0) /* a block's start */
            address = made[test_random(&seed) % MADE].address;
        size_t n = 0;
        for (size_t i = 0; i < MADE; i++) {
            const struct made *m = &made[i];
            bool holds = m->address == address ||
                         (m->address < address && address - m->address < m->size);
            if (m->allocation && holds) {
                expected[n++] = m->order;
                if (m->end_order)
                    expected[n++] = m->end_order;
            }
        }
        /* The frees were listed after their allocations: put in order. */
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && expected[j - 1] > expected[j]; j--) {
                uint64_t t = expected[j];
                expected[j] = expected[j - 1];
                expected[j - 1] = t;
            }
        struct history_selection events;
        ck_assert(history_events_at_address(r.history, address, &events));
        assert_orders(&r, &events, expected, n);
        history_selection_free(&events);
    }
    free(expected);
    finish(&r, b);
}
END_TEST

/* ---- groups ---- */

START_TEST(test_groups_by_size_and_by_count)
{
    struct log_builder *b = log_builder_create(SMALL, 77);
    uint32_t thread = log_builder_thread_node(b, T1);
    uint32_t s1 = frame(b, thread, 0x401000);
    uint32_t s2 = frame(b, thread, 0x402000);
    uint32_t s3 = frame(b, thread, 0x403000);
    uint32_t s4 = frame(b, thread, 0x404000);
    uint64_t address = 0x10000;
    for (int i = 0; i < 3; i++) {
        log_builder_event(b, T1, ALLOC, address += 0x100, 10, s4);
        log_builder_event(b, T1, ALLOC, address += 0x100, 10, s1);
    }
    log_builder_event(b, T1, ALLOC, address += 0x100, 100, s2);
    log_builder_event(b, T1, ALLOC, address += 0x100, 60, s3);
    log_builder_event(b, T1, ALLOC, address += 0x100, 40, s3);
    /* Freed: not in the live groups. */
    log_builder_event(b, T1, ALLOC, 0x90000, 1000, s2);
    log_builder_event(b, T1, FREE, 0x90000, 0, s2);
    struct replayed r;
    replay(b, &r);

    struct history_selection live;
    ck_assert(history_live_at_end(r.history, &live));
    struct history_groups groups;
    ck_assert(history_group_by_stack(r.history, &live, HISTORY_BY_SIZE, &groups));
    ck_assert_uint_eq(groups.count, 4);
    ck_assert_uint_eq(groups.total_count, 9);
    ck_assert_uint_eq(groups.total_bytes, 260);
    /* s3 and s2 tie on bytes, s3 has more blocks; s1 and s4 tie on
     * both, the lower stack id first. */
    const uint32_t by_size[] = {s3, s2, s1, s4};
    const uint64_t size_counts[] = {2, 1, 3, 3}, size_bytes[] = {100, 100, 30, 30};
    for (int i = 0; i < 4; i++) {
        ck_assert_uint_eq(groups.groups[i].stack, by_size[i]);
        ck_assert_uint_eq(groups.groups[i].count, size_counts[i]);
        ck_assert_uint_eq(groups.groups[i].bytes, size_bytes[i]);
    }
    history_groups_free(&groups);
    ck_assert(history_group_by_stack(r.history, &live, HISTORY_BY_COUNT, &groups));
    const uint32_t by_count[] = {s1, s4, s3, s2};
    for (int i = 0; i < 4; i++)
        ck_assert_uint_eq(groups.groups[i].stack, by_count[i]);
    history_groups_free(&groups);
    history_selection_free(&live);

    /* At the peak the freed block was live. */
    ck_assert(history_live_at_peak(r.history, &live));
    ck_assert(history_group_by_stack(r.history, &live, HISTORY_BY_SIZE, &groups));
    ck_assert_uint_eq(groups.groups[0].stack, s2);
    ck_assert_uint_eq(groups.groups[0].count, 2);
    ck_assert_uint_eq(groups.groups[0].bytes, 1100);
    ck_assert_uint_eq(groups.total_bytes, 1260);
    history_groups_free(&groups);
    history_selection_free(&live);
    finish(&r, b);
}
END_TEST

/* ---- call tree ---- */

/* Two threads; main -> f -> g on both, main -> f -> h and main -> k on
 * the first. */
struct tree_log {
    struct log_builder *builder;
    uint32_t g1, h1, k1, g2;
};

enum { MAIN = 0x401100, F = 0x402200, G = 0x403300, H = 0x404400, K = 0x405500 };

static void build_tree_log(struct tree_log *t)
{
    struct log_builder *b = t->builder = log_builder_create(SMALL, 77);
    uint32_t main1 = frame(b, log_builder_thread_node(b, T1), MAIN);
    uint32_t f1 = frame(b, main1, F);
    t->g1 = frame(b, f1, G);
    t->h1 = frame(b, f1, H);
    t->k1 = frame(b, main1, K);
    uint32_t main2 = frame(b, log_builder_thread_node(b, T2), MAIN);
    t->g2 = frame(b, frame(b, main2, F), G);
    log_builder_event(b, T1, ALLOC, 0x1000, 10, t->g1);
    log_builder_event(b, T1, ALLOC, 0x2000, 10, t->g1);
    log_builder_event(b, T1, ALLOC, 0x3000, 100, t->h1);
    log_builder_event(b, T1, ALLOC, 0x4000, 5, t->k1);
    log_builder_event(b, T2, ALLOC, 0x5000, 30, t->g2);
    log_builder_event(b, T2, ALLOC, 0x6000, 7, 0); /* no stack */
}

/* The node's frame, totals and depth. */
static void assert_node(const struct history_tree *tree, uint32_t node,
                        uint64_t pc, uint64_t count, uint64_t bytes,
                        uint32_t depth)
{
    ck_assert_uint_ne(node, HISTORY_NONE);
    const struct history_tree_node *n = &tree->nodes[node];
    ck_assert_uint_eq(n->pc, pc);
    ck_assert_uint_eq(n->module, (pc >> 12) & 7);
    ck_assert_uint_eq(n->count, count);
    ck_assert_uint_eq(n->bytes, bytes);
    ck_assert_uint_eq(n->depth, depth);
    ck_assert_uint_eq(tree->nodes[n->parent].depth + 1, depth);
}

static uint32_t first_child(const struct history_tree *tree, uint32_t node)
{
    return tree->nodes[node].first_child;
}

static uint32_t next(const struct history_tree *tree, uint32_t node)
{
    return tree->nodes[node].next_sibling;
}

static void build_tree(const struct replayed *r, bool inverted,
                       struct history_tree *tree)
{
    struct history_selection live;
    struct history_groups groups;
    ck_assert(history_live_at_end(r->history, &live));
    ck_assert(history_group_by_stack(r->history, &live, HISTORY_BY_COUNT, &groups));
    ck_assert(history_tree_build(r->reader, &groups, inverted, tree));
    history_groups_free(&groups);
    history_selection_free(&live);
    ck_assert_uint_eq(tree->nodes[0].count, 6);
    ck_assert_uint_eq(tree->nodes[0].bytes, 162);
    ck_assert_uint_eq(tree->nodes[0].parent, HISTORY_NONE);
}

START_TEST(test_call_tree_from_the_outermost_caller)
{
    struct tree_log t;
    build_tree_log(&t);
    struct replayed r;
    replay(t.builder, &r);
    struct history_tree tree;
    build_tree(&r, false, &tree);
    /* root, main, f, g, h, k: both threads' stacks meet. */
    ck_assert_uint_eq(tree.count, 6);
    uint32_t main = first_child(&tree, 0);
    assert_node(&tree, main, MAIN, 5, 155, 1);
    ck_assert_uint_eq(next(&tree, main), HISTORY_NONE);
    uint32_t f = first_child(&tree, main);
    assert_node(&tree, f, F, 4, 150, 2);
    uint32_t k = next(&tree, f);
    assert_node(&tree, k, K, 1, 5, 2);
    ck_assert_uint_eq(next(&tree, k), HISTORY_NONE);
    ck_assert_uint_eq(first_child(&tree, k), HISTORY_NONE);
    /* h has more bytes than g, which has more blocks. */
    uint32_t h = first_child(&tree, f);
    assert_node(&tree, h, H, 1, 100, 3);
    uint32_t g = next(&tree, h);
    assert_node(&tree, g, G, 3, 50, 3);
    ck_assert_uint_eq(next(&tree, g), HISTORY_NONE);
    history_tree_free(&tree);
    finish(&r, t.builder);
}
END_TEST

START_TEST(test_call_tree_inverted)
{
    struct tree_log t;
    build_tree_log(&t);
    struct replayed r;
    replay(t.builder, &r);
    struct history_tree tree;
    build_tree(&r, true, &tree);
    /* root; h f main; g f main; k main */
    ck_assert_uint_eq(tree.count, 9);
    uint32_t h = first_child(&tree, 0);
    assert_node(&tree, h, H, 1, 100, 1);
    uint32_t g = next(&tree, h);
    assert_node(&tree, g, G, 3, 50, 1);
    uint32_t k = next(&tree, g);
    assert_node(&tree, k, K, 1, 5, 1);
    ck_assert_uint_eq(next(&tree, k), HISTORY_NONE);
    uint32_t g_f = first_child(&tree, g);
    assert_node(&tree, g_f, F, 3, 50, 2);
    ck_assert_uint_eq(next(&tree, g_f), HISTORY_NONE);
    assert_node(&tree, first_child(&tree, g_f), MAIN, 3, 50, 3);
    uint32_t h_f = first_child(&tree, h);
    assert_node(&tree, h_f, F, 1, 100, 2);
    assert_node(&tree, first_child(&tree, h_f), MAIN, 1, 100, 3);
    uint32_t k_main = first_child(&tree, k);
    assert_node(&tree, k_main, MAIN, 1, 5, 2);
    ck_assert_uint_eq(first_child(&tree, k_main), HISTORY_NONE);
    history_tree_free(&tree);
    finish(&r, t.builder);
}
END_TEST

/* ---- temporaries ---- */

START_TEST(test_temporaries)
{
    struct log_builder *b = log_builder_create(SMALL, 77);
    uint32_t s1 = frame(b, log_builder_thread_node(b, T1), 0x401000);
    uint32_t s2 = frame(b, s1, 0x402000);
    uint32_t s3 = frame(b, log_builder_thread_node(b, T2), 0x403000);
    /* Allocated and freed at once. */
    uint64_t a = log_builder_event(b, T1, ALLOC, 0x1000, 8, s1);
    log_builder_event(b, T1, FREE, 0x1000, 0, s1);
    /* b's thread allocates c before freeing b; c is a temporary. */
    uint64_t bb = log_builder_event(b, T1, ALLOC, 0x2000, 8, s1);
    uint64_t c = log_builder_event(b, T1, ALLOC, 0x3000, 16, s2);
    log_builder_event(b, T1, FREE, 0x3000, 0, s2);
    log_builder_event(b, T1, FREE, 0x2000, 0, s1);
    /* Another thread's allocation in between does not count... */
    uint64_t d = log_builder_event(b, T2, ALLOC, 0x4000, 24, s3);
    uint64_t e = log_builder_event(b, T1, ALLOC, 0x5000, 8, s1);
    log_builder_event(b, T2, FREE, 0x4000, 0, s3);
    /* ...and a free by another thread is no temporary. */
    log_builder_event(b, T2, FREE, 0x5000, 0, s3);
    /* Another free by the same thread in between is allowed. */
    uint64_t f = log_builder_event(b, T1, ALLOC, 0x6000, 8, s1);
    log_builder_event(b, T1, FREE, 0x7000, 0, s1);
    log_builder_event(b, T1, FREE, 0x6000, 0, s1);
    /* Realloc ends no temporary; the block it made can be one. */
    uint64_t g = log_builder_event(b, T1, ALLOC, 0x8000, 8, s2);
    log_builder_event(b, T1, FREE | REALLOC, 0x8000, 0, s2);
    uint64_t g2 = log_builder_event(b, T1, ALLOC | REALLOC, 0x9000, 32, s2);
    log_builder_event(b, T1, FREE, 0x9000, 0, s2);
    size_t size;
    struct mdlog_header *header = (void *)log_builder_bytes(b, &size);
    header->compacted_count = 6;
    struct replayed r;
    replay(b, &r);

    const struct history_summary *summary = history_summary(r.history);
    ck_assert_uint_eq(summary->temporaries, 5);
    ck_assert(summary->compacted);
    ck_assert_uint_eq(summary->elided_pairs, 3);
    struct history_selection temporaries;
    ck_assert(history_temporaries(r.history, &temporaries));
    const uint64_t expected[] = {a, c, d, f, g2};
    assert_orders(&r, &temporaries, expected, 5);
    ck_assert(!(r.events[index_of(&r, bb)].marks & HISTORY_MARK_TEMPORARY));
    ck_assert(!(r.events[index_of(&r, e)].marks & HISTORY_MARK_TEMPORARY));
    ck_assert(!(r.events[index_of(&r, g)].marks & HISTORY_MARK_TEMPORARY));

    struct history_groups groups;
    ck_assert(history_group_by_stack(r.history, &temporaries, HISTORY_BY_COUNT,
                                     &groups));
    ck_assert_uint_eq(groups.count, 3);
    ck_assert_uint_eq(groups.groups[0].stack, s2); /* c and g2 */
    ck_assert_uint_eq(groups.groups[0].count, 2);
    ck_assert_uint_eq(groups.groups[0].bytes, 48);
    ck_assert_uint_eq(groups.groups[1].stack, s1); /* a and f */
    ck_assert_uint_eq(groups.groups[1].bytes, 16);
    ck_assert_uint_eq(groups.groups[2].stack, s3);
    ck_assert_uint_eq(groups.groups[2].count, 1);
    history_groups_free(&groups);
    history_selection_free(&temporaries);
    finish(&r, b);
}
END_TEST

/* ---- vm ---- */

START_TEST(test_vm_regions_apart_from_blocks)
{
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    struct log_builder *b = log_builder_create(SMALL, 77);
    uint32_t s = frame(b, log_builder_thread_node(b, T1), 0x401000);
    const uint64_t one = 0x10000000, two = 0x20000000, three = 0x30000000,
                   four = 0x40000000;
    uint64_t map_one = log_builder_event(b, T1, VM_MAP, one, 4 * page, s);
    uint64_t map_two = log_builder_event(b, T1, VM_MAP, two, page, s);
    uint64_t hole = log_builder_event(b, T1, VM_UNMAP, one + page, page, s);
    log_builder_event(b, T1, ALLOC, 0x1000, 64, s);
    log_builder_event(b, T1, VM_UNMAP | REALLOC, two, page, s);
    log_builder_event(b, T1, VM_MAP | REALLOC, three, 2 * page, s);
    log_builder_event(b, T1, VM_MAP, four, 100, s); /* one page */
    struct replayed r;
    replay(b, &r);

    const struct history_summary *summary = history_summary(r.history);
    ck_assert_uint_eq(summary->vm_events, 6);
    ck_assert_uint_eq(r.count, 1);
    ck_assert_uint_eq(summary->end.count, 1);
    ck_assert_uint_eq(summary->end.bytes, 64);
    size_t vm_count;
    const struct history_event *vm = history_vm_events(r.history, &vm_count);
    ck_assert_uint_eq(vm_count, 6);

    struct history_region *regions;
    size_t count;
    ck_assert(history_vm_regions_at(r.history, UINT64_MAX, &regions, &count));
    const uint64_t starts[] = {one, one + 2 * page, three, four};
    const uint64_t sizes[] = {page, 2 * page, 2 * page, page};
    ck_assert_uint_eq(count, 4);
    for (size_t i = 0; i < count; i++) {
        ck_assert_uint_eq(regions[i].address, starts[i]);
        ck_assert_uint_eq(regions[i].size, sizes[i]);
    }
    ck_assert_uint_eq(vm[regions[0].event].order, map_one);
    ck_assert_uint_eq(vm[regions[1].event].order, map_one);
    free(regions);
    ck_assert(history_vm_regions_at(r.history, map_two, &regions, &count));
    ck_assert_uint_eq(count, 2);
    ck_assert_uint_eq(regions[0].size, 4 * page);
    ck_assert_uint_eq(regions[1].address, two);
    free(regions);

    struct history_selection events;
    ck_assert(history_vm_events_at_address(r.history, one + page + 8, &events));
    ck_assert_uint_eq(events.count, 2);
    ck_assert_uint_eq(vm[events.events[0]].order, map_one);
    ck_assert_uint_eq(vm[events.events[1]].order, hole);
    history_selection_free(&events);
    /* Malloc blocks and mappings do not see each other. */
    ck_assert(history_events_at_address(r.history, one, &events));
    ck_assert_uint_eq(events.count, 0);
    history_selection_free(&events);
    finish(&r, b);
}
END_TEST

START_TEST(test_empty_log)
{
    struct log_builder *b = log_builder_create(SMALL, 77);
    struct replayed r;
    replay(b, &r);
    const struct history_summary *summary = history_summary(r.history);
    ck_assert_uint_eq(r.count, 0);
    ck_assert_uint_eq(summary->peak.bytes, 0);
    size_t points;
    history_timeline(r.history, &points);
    ck_assert_uint_eq(points, 0);
    struct history_selection selection;
    ck_assert(history_live_at_peak(r.history, &selection));
    ck_assert_uint_eq(selection.count, 0);
    ck_assert(history_events_at_address(r.history, 0x1000, &selection));
    ck_assert_uint_eq(selection.count, 0);
    struct history_groups groups;
    ck_assert(history_group_by_stack(r.history, &selection, HISTORY_BY_SIZE, &groups));
    ck_assert_uint_eq(groups.count, 0);
    struct history_tree tree;
    ck_assert(history_tree_build(r.reader, &groups, false, &tree));
    ck_assert_uint_eq(tree.count, 1);
    ck_assert_uint_eq(tree.nodes[0].first_child, HISTORY_NONE);
    history_tree_free(&tree);
    finish(&r, b);
}
END_TEST

/* The timeline keeps at most HISTORY_TIMELINE_MAX points, evenly
 * spaced, whatever the number of events. */
START_TEST(test_timeline_stays_bounded)
{
    enum { EVENTS = 5000 };
    struct log_builder *b = log_builder_create(SMALL, 77);
    uint32_t s = frame(b, log_builder_thread_node(b, T1), 0x401000);
    for (uint64_t i = 0; i < EVENTS; i++)
        log_builder_event(b, T1, ALLOC, 0x1000 + 16 * i, 1, s);
    struct replayed r;
    replay(b, &r);
    size_t points;
    const struct history_level *timeline = history_timeline(r.history, &points);
    /* 5000 events: the samples filled at strides 1, 2 and 4, leaving
     * one every 8 events, the last at event 5000. */
    ck_assert_uint_eq(points, EVENTS / 8);
    for (size_t i = 0; i < points; i++)
        ck_assert_uint_eq(timeline[i].count, 8 * (i + 1));
    ck_assert_uint_eq(timeline[points - 1].order, r.events[EVENTS - 1].order);
    finish(&r, b);
}
END_TEST

/* Two threads' events may share an order: when the last event ties
 * with the last one sampled, the timeline still ends at the end's
 * level. */
START_TEST(test_timeline_ends_after_tied_events)
{
    enum { EVENTS = 4992 }; /* sampled every 8 events, the last one too */
    struct log_builder *b = log_builder_create(SMALL, 77);
    uint32_t s = frame(b, log_builder_thread_node(b, T1), 0x401000);
    uint32_t s2 = frame(b, log_builder_thread_node(b, T2), 0x401000);
    uint64_t last = 0;
    for (uint64_t i = 0; i < EVENTS; i++)
        last = log_builder_event(b, T1, ALLOC, 0x1000 + 16 * i, 1, s);
    size_t size;
    ((struct mdlog_header *)log_builder_bytes(b, &size))->next_order = last;
    ck_assert_uint_eq(log_builder_event(b, T2, ALLOC, 0x900000, 1, s2), last);
    struct replayed r;
    replay(b, &r);
    size_t points;
    const struct history_level *timeline = history_timeline(r.history, &points);
    ck_assert_uint_eq(timeline[points - 1].order, last);
    ck_assert_uint_eq(timeline[points - 1].count, EVENTS + 1);
    ck_assert_uint_eq(history_summary(r.history)->end.count, EVENTS + 1);
    finish(&r, b);
}
END_TEST

/* ---- real logs ---- */

#define PROBE "tests/stacklog_probe"

static char directory[256];
static char directory_setting[300];

static void make_directory(void)
{
    snprintf(directory, sizeof(directory), "/tmp/md-history-%d", (int)getpid());
    mkdir(directory, 0700);
    snprintf(directory_setting, sizeof(directory_setting),
             "MallocStackLoggingDirectory=%s", directory);
}

/* Runs a probe scenario with `mode` and replays its log. */
static void replay_probe(struct probe_run *run, const char *scenario,
                         const char *mode, struct replayed *r)
{
    const char *settings[] = {mode, directory_setting,
                              "MallocStackLoggingDontDeleteStackLogFile=1", NULL};
    probe(run, PROBE, scenario, settings, false);
    ck_assert_msg(exited_cleanly(run), "%s", run->err);
    char path[600], message[512];
    snprintf(path, sizeof(path), "%s/" MDLOG_FILE_PREFIX "%lu.stacklog_probe"
             MDLOG_FILE_SUFFIX, directory, output_value(run->out, "pid"));
    r->reader = log_reader_open(path, message, sizeof(message));
    ck_assert_msg(r->reader != NULL, "%s", message);
    unlink(path);
    r->history = history_replay(r->reader, message, sizeof(message));
    ck_assert_msg(r->history != NULL, "%s", message);
    r->events = history_events(r->history, &r->count);
}

static void finish_probe(struct replayed *r)
{
    history_free(r->history);
    log_reader_close(r->reader);
}

/* True when a frame of `stack` returns into the function at `function`. */
static bool passes_through(const struct log_reader *reader, uint32_t stack,
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

/* The live block at `address`, or NULL. */
static const struct history_event *live_block_at(const struct replayed *r,
                                                 const struct history_selection *live,
                                                 unsigned long address)
{
    for (size_t i = 0; i < live->count; i++)
        if (r->events[live->events[i]].address == address)
            return &r->events[live->events[i]];
    return NULL;
}

START_TEST(test_probe_sites_live_set)
{
    struct probe_run run;
    struct replayed r;
    replay_probe(&run, "sites", "MallocStackLogging=full", &r);
    unsigned long site_a = output_value(run.out, "site_a");
    unsigned long site_b = output_value(run.out, "site_b");
    unsigned long freed = output_value(run.out, "freed");
    struct history_selection live;
    ck_assert(history_live_at_end(r.history, &live));
    ck_assert_uint_eq(live.count, history_summary(r.history)->end.count);

    /* Every block the probe printed, but the one it freed, is live with
     * its size; the live blocks from its two sites are just those. */
    unsigned expected = 0;
    uint64_t expected_bytes = 0;
    for (const char *line = run.out; (line = strchr(line, '\n')) != NULL;) {
        line++;
        if ((line[0] != 'a' && line[0] != 'b') || line[1] != ' ')
            continue;
        char *rest;
        unsigned long address = strtoul(line + 2, &rest, 0);
        unsigned long size = strtoul(rest, NULL, 0);
        const struct history_event *block = live_block_at(&r, &live, address);
        if (address == freed) {
            ck_assert_ptr_null(block);
            continue;
        }
        ck_assert_msg(block != NULL, "%#lx is not live", address);
        ck_assert_uint_eq(block->size, size);
        ck_assert(passes_through(r.reader, block->stack,
                                 line[0] == 'a' ? site_a : site_b));
        expected++;
        expected_bytes += size;
    }
    ck_assert_uint_eq(expected, 4);
    unsigned from_sites = 0;
    uint64_t site_bytes = 0;
    for (size_t i = 0; i < live.count; i++) {
        const struct history_event *block = &r.events[live.events[i]];
        if (passes_through(r.reader, block->stack, site_a) ||
            passes_through(r.reader, block->stack, site_b)) {
            from_sites++;
            site_bytes += block->size;
        }
    }
    ck_assert_uint_eq(from_sites, expected);
    ck_assert_uint_eq(site_bytes, expected_bytes);

    /* The freed block's history: allocated at site_a, then freed. */
    struct history_selection events;
    ck_assert(history_events_at_address(r.history, freed, &events));
    bool found = false;
    for (size_t i = 0; i < events.count; i++) {
        const struct history_event *event = &r.events[events.events[i]];
        if ((event->type & MDLOG_EVENT_KIND_MASK) != ALLOC || event->size != 24 ||
            !passes_through(r.reader, event->stack, site_a))
            continue;
        ck_assert(!found);
        found = true;
        ck_assert_uint_ne(event->partner, HISTORY_NONE);
        ck_assert_uint_eq(r.events[event->partner].type, FREE);
        ck_assert_uint_eq(r.events[event->partner].address, freed);
        ck_assert_uint_lt(i + 1, events.count);
        ck_assert_uint_eq(events.events[i + 1], event->partner);
    }
    ck_assert(found);
    history_selection_free(&events);
    history_selection_free(&live);
    finish_probe(&r);
}
END_TEST

/* Four threads each allocate 100 blocks of 16 + i bytes at one site and
 * free the even ones: each thread leaves one stack's 50 blocks, of
 * 17 + 19 + ... + 115 = 3300 bytes. */
START_TEST(test_probe_threads_groups)
{
    struct probe_run run;
    struct replayed r;
    replay_probe(&run, "threads", "MallocStackLogging=full", &r);
    unsigned long site_a = output_value(run.out, "site_a");
    struct history_selection live;
    struct history_groups groups;
    ck_assert(history_live_at_end(r.history, &live));
    ck_assert(history_group_by_stack(r.history, &live, HISTORY_BY_SIZE, &groups));
    unsigned site_groups = 0;
    for (size_t i = 0; i < groups.count; i++) {
        if (!passes_through(r.reader, groups.groups[i].stack, site_a))
            continue;
        site_groups++;
        ck_assert_uint_eq(groups.groups[i].count, 50);
        ck_assert_uint_eq(groups.groups[i].bytes, 3300);
    }
    ck_assert_uint_eq(site_groups, 4);
    /* Folded either way, the four threads' stacks meet at the site: its
     * frame (and thread_main's, which may pass for it: it is laid out
     * just after) is one node with all 200 blocks, not four of 50. */
    for (int inverted = 0; inverted < 2; inverted++) {
        struct history_tree tree;
        ck_assert(history_tree_build(r.reader, &groups, inverted, &tree));
        ck_assert_uint_eq(tree.nodes[0].count, groups.total_count);
        ck_assert_uint_eq(tree.nodes[0].bytes, groups.total_bytes);
        unsigned at_site = 0;
        for (size_t i = 1; i < tree.count; i++)
            if (tree.nodes[i].pc > site_a && tree.nodes[i].pc - site_a < 96) {
                at_site++;
                ck_assert_uint_eq(tree.nodes[i].count, 200);
                ck_assert_uint_eq(tree.nodes[i].bytes, 13200);
            }
        ck_assert_uint_ge(at_site, 1);
        history_tree_free(&tree);
    }
    history_groups_free(&groups);
    history_selection_free(&live);
    finish_probe(&r);
}
END_TEST

static bool has_temporary_at(const struct replayed *r, unsigned long address)
{
    struct history_selection temporaries;
    ck_assert(history_temporaries(r->history, &temporaries));
    bool found = false;
    for (size_t i = 0; i < temporaries.count; i++)
        found |= r->events[temporaries.events[i]].address == address &&
                 r->events[temporaries.events[i]].size == 40;
    history_selection_free(&temporaries);
    return found;
}

/* The probe allocates 40 bytes and frees them at once. */
START_TEST(test_probe_temporaries_and_compaction)
{
    struct probe_run run;
    struct replayed r;
    replay_probe(&run, "compact", "MallocStackLoggingNoCompact=1", &r);
    ck_assert(!history_summary(r.history)->compacted);
    ck_assert(has_temporary_at(&r, output_value(run.out, "temporary")));
    finish_probe(&r);

    replay_probe(&run, "compact", "MallocStackLogging=full", &r);
    const struct history_summary *summary = history_summary(r.history);
    ck_assert(summary->compacted);
    ck_assert_uint_ge(summary->elided_pairs, 1);
    ck_assert(!has_temporary_at(&r, output_value(run.out, "temporary")));
    finish_probe(&r);
}
END_TEST

/* The probe maps 64 KiB, grows it to 128 KiB with mremap (maybe
 * elsewhere) and unmaps it. */
START_TEST(test_probe_vm_regions)
{
    struct probe_run run;
    struct replayed r;
    replay_probe(&run, "vm", "MallocStackLogging=full", &r);
    unsigned long mapped = output_value(run.out, "mapped");
    unsigned long grown = output_value(run.out, "grown");
    size_t count;
    const struct history_event *vm = history_vm_events(r.history, &count);
    uint64_t grown_order = 0;
    for (size_t i = 0; i < count; i++)
        if (vm[i].address == grown && vm[i].type == (VM_MAP | REALLOC))
            grown_order = vm[i].order;
    ck_assert_uint_ne(grown_order, 0);

    struct history_region *regions;
    size_t region_count;
    ck_assert(history_vm_regions_at(r.history, grown_order, &regions, &region_count));
    bool found = false;
    for (size_t i = 0; i < region_count; i++)
        if (regions[i].address == grown) {
            found = true;
            ck_assert_uint_eq(regions[i].size, 131072);
            ck_assert_uint_eq(vm[regions[i].event].order, grown_order);
        }
    ck_assert(found);
    free(regions);
    ck_assert(history_vm_regions_at(r.history, UINT64_MAX, &regions, &region_count));
    for (size_t i = 0; i < region_count; i++)
        ck_assert(grown < regions[i].address ||
                  grown >= regions[i].address + regions[i].size);
    free(regions);

    struct history_selection events;
    ck_assert(history_vm_events_at_address(r.history, mapped, &events));
    bool mapping = false, moving = false;
    for (size_t i = 0; i < events.count; i++) {
        const struct history_event *event = &vm[events.events[i]];
        mapping |= event->type == VM_MAP && event->address == mapped &&
                   event->size == 65536;
        moving |= event->type == (VM_UNMAP | REALLOC) && event->address == mapped;
    }
    ck_assert(mapping && moving);
    history_selection_free(&events);
    /* Its malloc blocks are elsewhere. */
    ck_assert(history_events_at_address(r.history, grown, &events));
    ck_assert_uint_eq(events.count, 0);
    history_selection_free(&events);
    finish_probe(&r);
}
END_TEST

/* ---- the live blocks alone (tools/log_live_blocks.h) ---- */

/* The blocks log_live_blocks_find gives are exactly the history's live
 * set at the end: same addresses, sizes and stacks, sorted by address,
 * with the same counts of unknown frees and replaced blocks. */
struct expected_block {
    uint64_t address;
    const struct history_event *event;
};

static int by_address(const void *a, const void *b)
{
    const struct expected_block *x = a, *y = b;
    return (x->address > y->address) - (x->address < y->address);
}

static void assert_same_live_blocks(const struct replayed *r)
{
    char message[512] = "";
    struct log_live_blocks live;
    ck_assert_msg(log_live_blocks_find(r->reader, &live, message, sizeof(message)) == 0,
                  "%s", message);
    struct history_selection selection;
    ck_assert(history_live_at_end(r->history, &selection));
    ck_assert_uint_eq(live.count, selection.count);
    struct expected_block *expected = malloc((selection.count + 1) * sizeof(*expected));
    ck_assert_ptr_nonnull(expected);
    uint64_t bytes = 0;
    for (size_t i = 0; i < selection.count; i++) {
        const struct history_event *event = &r->events[selection.events[i]];
        expected[i] = (struct expected_block){event->address, event};
        bytes += event->size;
    }
    qsort(expected, selection.count, sizeof(*expected), by_address);
    ck_assert_uint_eq(live.bytes, bytes);
    for (size_t i = 0; i < live.count; i++) {
        const struct heap_block *block = &live.blocks[i];
        ck_assert_uint_eq(block->address, expected[i].address);
        ck_assert_uint_eq(block->size, expected[i].event->size);
        ck_assert_uint_eq(block->stack, expected[i].event->stack);
        ck_assert_uint_eq(block->zone, 0);
    }
    const struct history_summary *summary = history_summary(r->history);
    ck_assert_uint_eq(live.unknown_frees, summary->unknown_frees);
    ck_assert_uint_eq(live.replaced, summary->replaced);
    free(expected);
    history_selection_free(&selection);
    log_live_blocks_free(&live);
}

START_TEST(test_live_blocks_of_known_events)
{
    struct log_builder *b = log_builder_create(SMALL, 78);
    uint32_t s1 = frame(b, log_builder_thread_node(b, T1), 0x401000);
    uint32_t s2 = frame(b, log_builder_thread_node(b, T2), 0x402000);
    log_builder_event(b, T1, ALLOC, 0x5000, 100, s1);
    log_builder_event(b, T2, ALLOC, 0x3000, 30, s2);
    log_builder_event(b, T1, FREE, 0x9000, 0, s1);             /* unknown */
    log_builder_event(b, T2, ALLOC, 0x5000, 50, s2);           /* replaces */
    log_builder_event(b, T1, FREE | REALLOC, 0, 0, s1);        /* frees nothing */
    log_builder_event(b, T1, ALLOC | REALLOC, 0x7000, 70, s1);
    log_builder_event(b, T1, FREE | REALLOC, 0x3000, 0, s1);   /* moves */
    log_builder_event(b, T1, ALLOC | REALLOC, 0x1000, 60, s1);
    log_builder_event(b, T2, VM_MAP, 0x20000, 4096, s2);       /* not a block */
    struct replayed r;
    replay(b, &r);
    uint64_t allocations, frees;
    log_reader_count_kinds(r.reader, &allocations, &frees);
    ck_assert_uint_eq(allocations, 5);
    ck_assert_uint_eq(frees, 3);
    struct log_live_blocks live;
    char message[512];
    ck_assert_int_eq(log_live_blocks_find(r.reader, &live, message, sizeof(message)), 0);
    ck_assert_uint_eq(live.count, 3);
    const uint64_t addresses[] = {0x1000, 0x5000, 0x7000}, sizes[] = {60, 50, 70};
    const uint32_t stacks[] = {s1, s2, s1};
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(live.blocks[i].address, addresses[i]);
        ck_assert_uint_eq(live.blocks[i].size, sizes[i]);
        ck_assert_uint_eq(live.blocks[i].stack, stacks[i]);
    }
    ck_assert_uint_eq(live.bytes, 180);
    ck_assert_uint_eq(live.unknown_frees, 1);
    ck_assert_uint_eq(live.replaced, 1);
    log_live_blocks_free(&live);
    assert_same_live_blocks(&r);
    finish(&r, b);
}
END_TEST

/* Random work over many threads and addresses, enough blocks live at
 * once that the pass's table grows twice and its slots wrap around,
 * checked against the history's replay. */
START_TEST(test_live_blocks_against_the_history)
{
    struct log_builder *b = log_builder_create(SMALL, 79);
    enum { THREADS = 4, SLOTS = 200000, STEPS = 500000 };
    uint32_t stacks[THREADS][8];
    for (uint32_t t = 0; t < THREADS; t++)
        for (int k = 0; k < 8; k++)
            stacks[t][k] = frame(b, log_builder_thread_node(b, T1 + t),
                                 0x401000 + 0x10 * (uint64_t)k);
    unsigned char *live = calloc(SLOTS, 1);
    ck_assert_ptr_nonnull(live);
    uint64_t seed = 12345;
    for (int step = 0; step < STEPS; step++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t random = (uint32_t)(seed >> 33);
        uint32_t slot = random % SLOTS, thread = (random >> 20) % THREADS;
        uint32_t stack = stacks[thread][(random >> 8) % 8];
        uint64_t address = 0x7f0000000000ull + 48 * (uint64_t)slot;
        unsigned what = (random >> 24) % 16;
        if (what == 0) { /* a lost free: allocated again in place */
            log_builder_event(b, T1 + thread, ALLOC, address, 16 + random % 64, stack);
            live[slot] = 1;
        } else if (what == 1) { /* a free nobody allocated */
            log_builder_event(b, T1 + thread, FREE, address + 8, 0, stack);
        } else if (live[slot] && what < 7) {
            log_builder_event(b, T1 + thread, FREE, address, 0, stack);
            live[slot] = 0;
        } else if (live[slot] && what < 9) {
            uint32_t other = (slot + 1 + random % 97) % SLOTS;
            if (live[other])
                continue;
            log_builder_event(b, T1 + thread, FREE | REALLOC, address, 0, stack);
            log_builder_event(b, T1 + thread, ALLOC | REALLOC,
                              0x7f0000000000ull + 48 * (uint64_t)other, 40, stack);
            live[slot] = 0;
            live[other] = 1;
        } else if (!live[slot]) {
            log_builder_event(b, T1 + thread, ALLOC, address, 1 + random % 48, stack);
            live[slot] = 1;
        }
    }
    /* Most blocks freed, then more allocated: most of the pass's entries
     * are dead by then, so it packs them and rebuilds its index. */
    size_t kept = 0;
    for (uint32_t slot = 0; slot < SLOTS; slot++)
        if (live[slot] && slot % 8 != 0)
            log_builder_event(b, T1 + slot % THREADS, FREE,
                              0x7f0000000000ull + 48 * (uint64_t)slot, 0,
                              stacks[slot % THREADS][0]);
        else if (live[slot])
            kept++;
    for (uint32_t i = 0; i < 70000; i++)
        log_builder_event(b, T2, ALLOC, 0x7e0000000000ull + 32 * (uint64_t)i, 24,
                          stacks[1][i % 8]);
    /* Blocks from before the packing, found again through the index. */
    for (uint32_t slot = 0; slot < SLOTS; slot += 16)
        if (live[slot]) {
            log_builder_event(b, T1, FREE, 0x7f0000000000ull + 48 * (uint64_t)slot,
                              0, stacks[0][0]);
            kept--;
        }
    free(live);
    struct replayed r;
    replay(b, &r);
    ck_assert_uint_gt(history_summary(r.history)->peak.count, 2 * 49152);
    ck_assert_uint_eq(history_summary(r.history)->end.count, kept + 70000);
    assert_same_live_blocks(&r);
    finish(&r, b);
}
END_TEST

/* The address space the process maps now, from /proc/self/statm. */
static uint64_t mapped_bytes(void)
{
    FILE *file = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (!file || fscanf(file, "%lu", &pages) != 1)
        pages = 0;
    if (file)
        fclose(file);
    return (uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* A long log whose blocks are freed soon after they are allocated needs
 * memory for its few live blocks only, not for every event it holds: the
 * pass must not ask for address space as big as the log, which a limit
 * on it (or the kernel's overcommit check, for a log bigger than memory)
 * refuses. */
START_TEST(test_live_blocks_of_a_long_churning_log_fit_in_little_memory)
{
    enum { PAIRS = 1000000, SLOTS = 1000 };
    struct log_builder *b = log_builder_create(LOG_BUILDER_SMALL_CHUNK * 16, 80);
    uint32_t stack = frame(b, log_builder_thread_node(b, T1), 0x401000);
    for (uint32_t i = 0; i < PAIRS; i++) {
        uint64_t address = 0x7f0000000000ull + 64 * (uint64_t)(i % SLOTS);
        log_builder_event(b, T1, ALLOC, address, 32, stack);
        if (i + SLOTS / 2 < PAIRS) /* the last ones stay live */
            log_builder_event(b, T1, FREE, address, 0, stack);
    }
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[512];
    snprintf(path, sizeof(path), "%s/check_history.XXXXXX", base);
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert(log_builder_write(b, path));
    log_builder_destroy(b);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        char message[512];
        struct log_reader *reader = log_reader_open(path, message, sizeof(message));
        if (!reader)
            _exit(3);
        /* Far less than the 48 MB that a block for each event takes. */
        uint64_t limit = mapped_bytes() + 24 * MiB;
        struct rlimit address_space = {limit, limit};
        if (setrlimit(RLIMIT_AS, &address_space) != 0)
            _exit(4);
        struct log_live_blocks live;
        if (log_live_blocks_find(reader, &live, message, sizeof(message)) != 0) {
            fprintf(stderr, "%s\n", message);
            _exit(1);
        }
        bool right = live.count == SLOTS / 2 && live.bytes == 32 * SLOTS / 2 &&
                     live.blocks[0].address == 0x7f0000000000ull + 64 * (SLOTS / 2);
        _exit(right ? 0 : 2);
    }
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    unlink(path);
    ck_assert(WIFEXITED(status));
    ck_assert_msg(WEXITSTATUS(status) == 0,
                  "the pass on a log of %d events, at most %d blocks live, "
                  "exited %d under a limit on its address space",
                  2 * PAIRS - SLOTS / 2, SLOTS / 2, WEXITSTATUS(status));
}
END_TEST

static Suite *history_suite(void)
{
    Suite *s = suite_create("history");
    TCase *built = tcase_create("built logs");
    tcase_set_timeout(built, 60);
    tcase_add_test(built, test_live_set_and_peak);
    tcase_add_test(built, test_bad_events_are_counted);
    tcase_add_test(built, test_realloc_moves_a_block);
    tcase_add_test(built, test_events_at_interior_addresses);
    tcase_add_test(built, test_events_at_address_against_a_plain_search);
    tcase_add_test(built, test_groups_by_size_and_by_count);
    tcase_add_test(built, test_call_tree_from_the_outermost_caller);
    tcase_add_test(built, test_call_tree_inverted);
    tcase_add_test(built, test_temporaries);
    tcase_add_test(built, test_vm_regions_apart_from_blocks);
    tcase_add_test(built, test_empty_log);
    tcase_add_test(built, test_timeline_stays_bounded);
    tcase_add_test(built, test_timeline_ends_after_tied_events);
    tcase_add_test(built, test_live_blocks_of_known_events);
    tcase_add_test(built, test_live_blocks_against_the_history);
    tcase_add_test(built, test_live_blocks_of_a_long_churning_log_fit_in_little_memory);
    suite_add_tcase(s, built);
    TCase *real = tcase_create("real logs");
    tcase_set_timeout(real, 60);
    tcase_add_test(real, test_probe_sites_live_set);
    tcase_add_test(real, test_probe_threads_groups);
    tcase_add_test(real, test_probe_temporaries_and_compaction);
    tcase_add_test(real, test_probe_vm_regions);
    suite_add_tcase(s, real);
    return s;
}

int main(void)
{
    make_directory();
    int status = run_suite(history_suite());
    rmdir(directory);
    return status;
}
