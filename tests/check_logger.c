/*
 * malloc_logger: every allocation event is reported with Apple's argument
 * conventions, whichever entry point made it.
 *
 *   malloc, valloc, memalign: (ALLOCATE|HAS_ZONE, zone, size, 0, result, 0)
 *   calloc: (ALLOCATE|HAS_ZONE|CLEARED, zone, count*size, 0, result, 0)
 *   realloc: (ALLOCATE|DEALLOCATE|HAS_ZONE, zone, old, size, result, 0)
 *   free: (DEALLOCATE|HAS_ZONE, zone, ptr, 0, 0, 0), before the free
 */
#include "config.h"
#include "test_util.h"

#include <check.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define T_ALLOC (MALLOC_LOG_TYPE_ALLOCATE | MALLOC_LOG_TYPE_HAS_ZONE)
#define T_FREE (MALLOC_LOG_TYPE_DEALLOCATE | MALLOC_LOG_TYPE_HAS_ZONE)
#define T_CALLOC (T_ALLOC | MALLOC_LOG_TYPE_CLEARED)
#define T_REALLOC (T_ALLOC | MALLOC_LOG_TYPE_DEALLOCATE)

/* The compiler may assume that malloc, whose declaration carries the
 * malloc attribute, neither reads nor writes this file's variables: make
 * it store them before, and reload them after, the calls being logged. */
#define RELOAD_MEMORY() __asm__ volatile("" ::: "memory")

struct event {
    uint32_t type;
    uintptr_t arg1, arg2, arg3, result;
    uint32_t skip;
    size_t size_at_call; /* malloc_size(arg2) when the event is a free */
};

enum { MAX_EVENTS = 1024 };
static struct event events[MAX_EVENTS];
static unsigned n_events;

static void recording_logger(uint32_t type, uintptr_t arg1, uintptr_t arg2,
                             uintptr_t arg3, uintptr_t result,
                             uint32_t num_hot_frames_to_skip)
{
    if (n_events == MAX_EVENTS)
        return;
    struct event *e = &events[n_events++];
    *e = (struct event){type, arg1, arg2, arg3, result, num_hot_frames_to_skip, 0};
    if (type == T_FREE)
        e->size_at_call = malloc_size((void *)arg2);
}

static void start_logging(void)
{
    n_events = 0;
    malloc_logger = recording_logger;
    RELOAD_MEMORY();
}

static unsigned stop_logging(void)
{
    RELOAD_MEMORY();
    malloc_logger = NULL;
    return n_events;
}

static void assert_event(unsigned i, uint32_t type, malloc_zone_t *zone,
                         uintptr_t arg2, uintptr_t arg3, const void *result)
{
    ck_assert_msg(i < n_events, "event %u missing (%u recorded)", i, n_events);
    const struct event *e = &events[i];
    ck_assert_msg(e->type == type, "event %u: type %u, want %u", i, e->type, type);
    ck_assert_msg(e->arg1 == (uintptr_t)zone, "event %u: zone %#lx, want %p", i,
                  (unsigned long)e->arg1, (void *)zone);
    ck_assert_msg(e->arg2 == arg2, "event %u: arg2 %#lx, want %#lx", i,
                  (unsigned long)e->arg2, (unsigned long)arg2);
    ck_assert_msg(e->arg3 == arg3, "event %u: arg3 %#lx, want %#lx", i,
                  (unsigned long)e->arg3, (unsigned long)arg3);
    ck_assert_msg(e->result == (uintptr_t)result, "event %u: result %#lx, want %p",
                  i, (unsigned long)e->result, result);
    ck_assert_uint_eq(e->skip, 0);
}

START_TEST(test_log_malloc_and_free)
{
    malloc_zone_t *def = malloc_default_zone();
    size_t sizes[] = {0, 1, 100, 1024, 5000, 131073, 3 * MiB};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        start_logging();
        void *p = malloc(sizes[i]);
        ck_assert_uint_eq(stop_logging(), 1);
        assert_event(0, T_ALLOC, def, sizes[i], 0, p);

        start_logging();
        free(p);
        ck_assert_uint_eq(stop_logging(), 1);
        assert_event(0, T_FREE, def, (uintptr_t)p, 0, NULL);
        /* Logged before the block is freed. */
        ck_assert_msg(events[0].size_at_call == malloc_good_size(sizes[i]) ||
                          (sizes[i] > 128 * KiB &&
                           events[0].size_at_call >= malloc_good_size(sizes[i])),
                      "free of a %zu block logged with malloc_size %zu", sizes[i],
                      events[0].size_at_call);
        ck_assert_uint_eq(malloc_size(p), 0);
    }
    /* free(NULL) logs nothing. */
    start_logging();
    free(NULL);
    ck_assert_uint_eq(stop_logging(), 0);
}
END_TEST

START_TEST(test_log_calloc)
{
    malloc_zone_t *def = malloc_default_zone();
    size_t pairs[][2] = {{1, 1}, {3, 40}, {100, 100}, {1, 200000}, {40, 3}};
    for (size_t i = 0; i < 5; i++) {
        start_logging();
        void *p = calloc(pairs[i][0], pairs[i][1]);
        ck_assert_uint_eq(stop_logging(), 1);
        assert_event(0, T_CALLOC, def, pairs[i][0] * pairs[i][1], 0, p);
        ck_assert_uint_eq(events[0].type, 74);
        free(p);
    }
}
END_TEST

START_TEST(test_log_realloc)
{
    malloc_zone_t *def = malloc_default_zone();
    void *p = malloc(100);
    size_t sizes[] = {50, 2000, 200000, 300000, 10};
    for (size_t i = 0; i < 5; i++) {
        start_logging();
        void *q = realloc(p, sizes[i]);
        ck_assert_uint_eq(stop_logging(), 1);
        assert_event(0, T_REALLOC, def, (uintptr_t)p, sizes[i], q);
        ck_assert_uint_eq(events[0].type, 14);
        p = q;
    }
    free(p);
}
END_TEST

START_TEST(test_log_aligned_entry_points)
{
    malloc_zone_t *def = malloc_default_zone();
    start_logging();
    void *v = valloc(100);
    void *m = memalign(64, 200);
    void *a = aligned_alloc(256, 512);
    void *pm = NULL;
    int error = posix_memalign(&pm, 128, 300);
    void *pv = pvalloc(100);
    ck_assert_uint_eq(stop_logging(), 5);
    ck_assert_int_eq(error, 0);
    assert_event(0, T_ALLOC, def, 100, 0, v);
    assert_event(1, T_ALLOC, def, 200, 0, m);
    assert_event(2, T_ALLOC, def, 512, 0, a);
    assert_event(3, T_ALLOC, def, 300, 0, pm);
    ck_assert_uint_eq(events[4].type, T_ALLOC);
    ck_assert_uint_eq(events[4].result, (uintptr_t)pv);
    ck_assert_uint_ge(events[4].arg2, 100);
    start_logging();
    free(v);
    free(m);
    free(a);
    free(pm);
    free(pv);
    ck_assert_uint_eq(stop_logging(), 5);
    assert_event(0, T_FREE, def, (uintptr_t)v, 0, NULL);
    assert_event(4, T_FREE, def, (uintptr_t)pv, 0, NULL);
}
END_TEST

START_TEST(test_log_zone_functions)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    start_logging();
    void *m = malloc_zone_malloc(z, 40);
    void *c = malloc_zone_calloc(z, 7, 9);
    void *v = malloc_zone_valloc(z, 5000);
    void *a = malloc_zone_memalign(z, 1024, 100);
    void *r = malloc_zone_realloc(z, m, 4000);
    malloc_zone_free(z, c);
    free(v); /* plain free finds the zone */
    /* As on macOS, a realloc of NULL through the zone API is a realloc. */
    void *n = malloc_zone_realloc(z, NULL, 24);
    ck_assert_uint_eq(stop_logging(), 8);
    assert_event(0, T_ALLOC, z, 40, 0, m);
    assert_event(1, T_CALLOC, z, 63, 0, c);
    assert_event(2, T_ALLOC, z, 5000, 0, v);
    assert_event(3, T_ALLOC, z, 100, 0, a);
    assert_event(4, T_REALLOC, z, (uintptr_t)m, 4000, r);
    assert_event(5, T_FREE, z, (uintptr_t)c, 0, NULL);
    ck_assert_uint_eq(events[5].size_at_call, 64);
    assert_event(6, T_FREE, z, (uintptr_t)v, 0, NULL);
    ck_assert_uint_eq(events[6].size_at_call, 8192);
    assert_event(7, T_REALLOC, z, 0, 24, n);
    malloc_zone_free(z, n);

    /* Batch malloc: one event per block; batch free likewise. */
    void *batch[20];
    start_logging();
    unsigned made = malloc_zone_batch_malloc(z, 96, batch, 20);
    /* Check's passing assertions allocate: none while logging. */
    unsigned logged = stop_logging();
    ck_assert_uint_gt(made, 0);
    ck_assert_uint_eq(logged, made);
    for (unsigned i = 0; i < made; i++)
        assert_event(i, T_ALLOC, z, 96, 0, batch[i]);
    start_logging();
    malloc_zone_batch_free(z, batch, made);
    ck_assert_uint_eq(stop_logging(), made);
    for (unsigned i = 0; i < made; i++) {
        assert_event(i, T_FREE, z, (uintptr_t)batch[i], 0, NULL);
        ck_assert_uint_eq(events[i].size_at_call, 96);
    }
    malloc_zone_free(z, a);
    malloc_zone_free(z, r);
    malloc_destroy_zone(z);
}
END_TEST

/* A logger that allocates must not recurse forever: the library calls it
 * after the operation, and the logger's own allocations are logged too. */
static unsigned nested_calls;
static int in_logger;
static void allocating_logger(uint32_t type, uintptr_t arg1, uintptr_t arg2,
                              uintptr_t arg3, uintptr_t result, uint32_t skip)
{
    nested_calls++;
    if (in_logger)
        return;
    in_logger = 1;
    RELOAD_MEMORY(); /* the store must happen before malloc runs */
    free(malloc(32));
    RELOAD_MEMORY();
    in_logger = 0;
}

/* As on macOS, a free or realloc the zone rejects is an error, not an
 * event: it is reported and not logged. */
START_TEST(test_rejected_frees_are_not_logged)
{
    struct capture capture;
    char text[1024];
    char *block = malloc(40);
    free(block);
    capture_begin(&capture);
    start_logging();
    free(block);                       /* double free */
    char *other = malloc(64);
    free(other + 16);                  /* interior pointer */
    void *moved = realloc(block, 100); /* realloc of a freed block */
    unsigned logged = stop_logging();
    capture_end(&capture, text, sizeof(text));
    ck_assert_ptr_null(moved);
    ck_assert_uint_eq(count_lines_with(text, "not allocated"), 3);
    /* Only the malloc of `other` was an event. */
    ck_assert_uint_eq(logged, 1);
    assert_event(0, T_ALLOC, malloc_default_zone(), 64, 0, other);
    free(other);
}
END_TEST

START_TEST(test_logger_may_allocate)
{
    nested_calls = 0;
    malloc_logger = allocating_logger;
    void *p = malloc(10);
    free(p);
    RELOAD_MEMORY();
    malloc_logger = NULL;
    /* malloc (+ its logger's malloc and free), free (+ the same) */
    ck_assert_uint_eq(nested_calls, 6);
}
END_TEST

static Suite *logger_suite(void)
{
    Suite *s = suite_create("malloc_logger");
    TCase *tc = tcase_create("events");
    tcase_add_test(tc, test_log_malloc_and_free);
    tcase_add_test(tc, test_log_calloc);
    tcase_add_test(tc, test_log_realloc);
    tcase_add_test(tc, test_log_aligned_entry_points);
    tcase_add_test(tc, test_log_zone_functions);
    tcase_add_test(tc, test_logger_may_allocate);
    tcase_add_test(tc, test_rejected_frees_are_not_logged);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(logger_suite());
}
