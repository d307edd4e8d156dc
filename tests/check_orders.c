/*
 * The order of events (lib/stacklog_orders.h and .c), built into this
 * program on its own over a header of its own: threads that count their
 * orders apart still order each block's events, whichever threads make
 * them; 32-bit tags are read right however far the orders have come; and
 * the floor is raised whenever the orders' rules need it.
 */
#include "config.h"
#include "../lib/stacklog_orders.h"
#include "../lib/szone.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#define STRIDE MDLOG_ORDER_STRIDE

/* The log the library would map; the orders read and raise its floor. */
struct mdlog_header *stacklog_header;
static struct mdlog_header header;
static struct stacklog_thread *first, *second;

static void set_up(void)
{
    header = (struct mdlog_header){.next_order = 1};
    stacklog_header = &header;
    first = calloc(1, sizeof(*first));
    second = calloc(1, sizeof(*second));
    ck_assert(first && second);
}

static void tear_down(void)
{
    free(first);
    free(second);
}

static uint64_t floor_now(void)
{
    return header.next_order;
}

/* One thread runs far ahead, then allocates a block; another, far
 * behind, frees it, and the first allocates it again. */
START_TEST(test_a_block_orders_the_threads_it_passes_between)
{
    struct szone_log_tag tag = {0, 0};
    for (unsigned i = 0; i < 5000; i++)
        stacklog_order_after(first, 0);
    uint64_t allocated = stacklog_order_of_block(first, &tag.order);
    ck_assert_uint_eq(allocated, 5002); /* the floor starts at 1 */
    uint64_t freed = stacklog_order_of_block(second, &tag.order);
    ck_assert_uint_gt(freed, allocated);
    for (unsigned i = 0; i < 100; i++) /* the block waits in a cache */
        stacklog_order_after(second, 0);
    uint64_t again = stacklog_order_of_block(first, &tag.order);
    ck_assert_uint_gt(again, freed);
    /* The second thread's own orders still go up. */
    ck_assert_uint_gt(stacklog_order_after(second, 0), second->clock - 1);
}
END_TEST

/* Far from 0, a tag's 32 bits are read against the floor: one a little
 * ahead is ahead, even where the 32 bits wrap; one behind, never
 * written, or more than 2^32 behind is behind. */
START_TEST(test_tags_are_read_against_the_floor)
{
    uint64_t floor = (UINT64_C(5) << 32) - 100; /* low bits about to wrap */
    header.next_order = floor;
    struct szone_log_tag ahead = {0, (uint32_t)(floor + STRIDE + 7)};
    ck_assert_uint_eq(stacklog_order_of_block(first, &ahead.order),
                      floor + STRIDE + 8);
    ck_assert_uint_eq(ahead.order, (uint32_t)(floor + STRIDE + 8));

    floor = (UINT64_C(7) << 32) + (UINT64_C(1) << 31);
    header.next_order = floor;
    struct szone_log_tag never = {0, 0}, behind = {0, (uint32_t)(floor - 50)};
    struct szone_log_tag old = {0, (uint32_t)(floor - (UINT64_C(1) << 32) +
                                              5 * STRIDE)};
    ck_assert_uint_eq(stacklog_order_of_block(second, &never.order), floor + 1);
    ck_assert_uint_eq(stacklog_order_of_block(second, &behind.order), floor + 2);
    ck_assert_uint_eq(stacklog_order_of_block(second, &old.order), floor + 3);
}
END_TEST

/* A clock that passes a multiple of the stride raises the floor, so no
 * order runs far ahead of it. */
START_TEST(test_a_clock_passing_a_stride_raises_the_floor)
{
    first->clock = 3 * STRIDE - 2;
    stacklog_order_after(first, 0);
    ck_assert_uint_eq(floor_now(), 1);
    uint64_t crossing = stacklog_order_after(first, 0);
    ck_assert_uint_eq(crossing, 3 * STRIDE);
    ck_assert_uint_eq(floor_now(), 3 * STRIDE);
    /* Another thread starts above it. */
    ck_assert_uint_eq(stacklog_order_after(second, 0), 3 * STRIDE + 1);
}
END_TEST

/* Events about what has no tag take their orders from the floor, above
 * any thread's clock that took one before. */
START_TEST(test_untagged_events_take_the_floor)
{
    first->clock = 900;
    uint64_t mapped = stacklog_order_shared(first);
    ck_assert_uint_eq(mapped, 901);
    ck_assert_uint_eq(floor_now(), 901);
    ck_assert_uint_eq(stacklog_order_shared(second), 902);
    ck_assert_uint_eq(stacklog_order_after(first, 0), 903);
}
END_TEST

/* Tags a zone lets go of raise the floor to the newest of them; a moment
 * is above every order taken so far. */
START_TEST(test_released_tags_and_moments_raise_the_floor)
{
    header.next_order = 10 * STRIDE;
    struct szone_log_tag tags[] = {
        {1, (uint32_t)(10 * STRIDE + 40)},
        {2, (uint32_t)(10 * STRIDE + 3000)},
        {3, 0},                            /* never written */
        {4, (uint32_t)(10 * STRIDE - 9)}}; /* behind */
    stacklog_order_tags_released(tags, 4);
    ck_assert_uint_eq(floor_now(), 10 * STRIDE + 3000);

    first->clock = floor_now() + STRIDE - 1; /* as far ahead as may be */
    uint64_t moment = stacklog_order_moment();
    ck_assert_uint_gt(moment, first->clock);
    ck_assert_uint_gt(stacklog_order_after(second, 0), moment);
}
END_TEST

static Suite *orders_suite(void)
{
    Suite *suite = suite_create("orders");
    TCase *tc = tcase_create("orders");
    tcase_add_checked_fixture(tc, set_up, tear_down);
    tcase_add_test(tc, test_a_block_orders_the_threads_it_passes_between);
    tcase_add_test(tc, test_tags_are_read_against_the_floor);
    tcase_add_test(tc, test_a_clock_passing_a_stride_raises_the_floor);
    tcase_add_test(tc, test_untagged_events_take_the_floor);
    tcase_add_test(tc, test_released_tags_and_moments_raise_the_floor);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(orders_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
