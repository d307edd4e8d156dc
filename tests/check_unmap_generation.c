/*
 * The unmap generation's ring of ranges (lib/os_unmap_generation.c),
 * built into this program on its own: an advance meets the ranges it
 * overlaps and no other, an advance for everything (or for a range the
 * ring cannot hold) meets every range, and an advance whose range the
 * ring no longer holds meets everything.
 */
#include "config.h"
#include "../lib/os_memory.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#define PAGE 4096u

START_TEST(test_an_advance_meets_only_what_it_overlaps)
{
    char *base = (char *)(uintptr_t)0x100000;
    uint64_t before = os_unmap_generation();
    os_unmap_generation_advance_range(base + 4 * PAGE, 2 * PAGE);
    uint64_t generation = os_unmap_generation();
    ck_assert_uint_eq(generation, before + 1);
    uintptr_t start = (uintptr_t)base + 4 * PAGE, end = start + 2 * PAGE;
    ck_assert(os_unmap_may_touch(generation, start, end));
    ck_assert(os_unmap_may_touch(generation, start - PAGE, start + 1));
    ck_assert(os_unmap_may_touch(generation, end - 1, end + PAGE));
    ck_assert(os_unmap_may_touch(generation, start - PAGE, end + PAGE));
    /* Touching ends are not overlaps. */
    ck_assert(!os_unmap_may_touch(generation, start - PAGE, start));
    ck_assert(!os_unmap_may_touch(generation, end, end + PAGE));
    ck_assert(!os_unmap_may_touch(generation, 0, PAGE));
}
END_TEST

START_TEST(test_an_advance_for_everything_meets_every_range)
{
    os_unmap_generation_advance();
    uint64_t generation = os_unmap_generation();
    ck_assert(os_unmap_may_touch(generation, 0, 1));
    ck_assert(os_unmap_may_touch(generation, UINTPTR_MAX - PAGE, UINTPTR_MAX));
    /* So does a range the ring's word cannot hold: one running past the
     * end of the address space, one above 2^48, one of 4 GiB or more. */
    os_unmap_generation_advance_range((void *)(UINTPTR_MAX - PAGE + 1), 2 * PAGE);
    ck_assert(os_unmap_may_touch(os_unmap_generation(), 0, PAGE));
    os_unmap_generation_advance_range((void *)(UINT64_C(1) << 48), PAGE);
    ck_assert(os_unmap_may_touch(os_unmap_generation(), 0, PAGE));
    os_unmap_generation_advance_range((void *)(uintptr_t)0x100000,
                                      (size_t)4 << 30);
    ck_assert(os_unmap_may_touch(os_unmap_generation(), UINT64_C(1) << 40,
                                 (UINT64_C(1) << 40) + PAGE));
    /* Just under the limits, the range is kept. */
    os_unmap_generation_advance_range((void *)(uintptr_t)0x100000,
                                      ((size_t)4 << 30) - 2 * PAGE);
    ck_assert(!os_unmap_may_touch(os_unmap_generation(), UINT64_C(1) << 40,
                                  (UINT64_C(1) << 40) + PAGE));
    ck_assert(os_unmap_may_touch(os_unmap_generation(), 0x100000,
                                 0x100000 + PAGE));
}
END_TEST

START_TEST(test_an_advance_the_ring_lost_meets_everything)
{
    os_unmap_generation_advance_range((void *)(uintptr_t)0x200000, PAGE);
    uint64_t lost = os_unmap_generation();
    ck_assert(!os_unmap_may_touch(lost, 0x300000, 0x300000 + PAGE));
    for (unsigned i = 0; i < OS_UNMAP_RANGES_KEPT; i++)
        os_unmap_generation_advance_range((void *)(uintptr_t)0x400000, PAGE);
    ck_assert(os_unmap_may_touch(lost, 0x300000, 0x300000 + PAGE));
    /* Nor is an advance the ring has not been given yet known. */
    ck_assert(os_unmap_may_touch(os_unmap_generation() + 1, 0x300000,
                                 0x300000 + PAGE));
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("unmap_generation");
    TCase *tc = tcase_create("ring");
    tcase_add_test(tc, test_an_advance_meets_only_what_it_overlaps);
    tcase_add_test(tc, test_an_advance_for_everything_meets_every_range);
    tcase_add_test(tc, test_an_advance_the_ring_lost_meets_everything);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
