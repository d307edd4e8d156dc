/*
 * Where return addresses sit (lib/stacklog_stack_slots.c), built into
 * this program on its own and run on a stack laid out by hand: the
 * search finds each return address above the one before, stops where
 * the previous one shows up again, takes a known stack's slots only
 * where they still hold this stack's return addresses, and a thread
 * lets go of its cached stacks only when an unmapping met the pages it
 * read them from.
 */
#include "config.h"
#include "../lib/stacklog.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The library walks the modules to find the C library's signal stub;
 * here there is none to find. */
bool stacklog_loader_iterate(int (*callback)(struct dl_phdr_info *, size_t,
                                             void *),
                             void *data)
{
    (void)callback, (void)data;
    return false;
}

enum { WORDS = 1024, CFA = 10 };

/* Return addresses, and where the hand-made stack holds them. */
static const uintptr_t pcs_values[] = {0x400000, 0x401111, 0x402222,
                                       0x403333, 0x404444};
enum { FRAMES = sizeof(pcs_values) / sizeof(pcs_values[0]) };
static const unsigned slot_index[FRAMES] = {0, CFA - 1, 20, 35, 50};

static uintptr_t *stack_words;
static struct stacklog_thread *thread;
static void *pcs[FRAMES];

static void lay_out_stack(void)
{
    for (unsigned i = 0; i < WORDS; i++)
        stack_words[i] = 0x7000 + 8 * i; /* no return address */
    for (unsigned f = 1; f < FRAMES; f++)
        stack_words[slot_index[f]] = pcs_values[f];
}

static void setup(void)
{
    stack_words = aligned_alloc(4096, WORDS * sizeof(uintptr_t));
    thread = calloc(1, sizeof(*thread));
    ck_assert_ptr_nonnull(stack_words);
    ck_assert_ptr_nonnull(thread);
    for (unsigned f = 0; f < FRAMES; f++)
        pcs[f] = (void *)pcs_values[f];
    lay_out_stack();
}

static void teardown(void)
{
    free(stack_words);
    free(thread);
}

static uintptr_t word_at(unsigned index)
{
    return (uintptr_t)&stack_words[index];
}

#if defined(__x86_64__) /* elsewhere the search finds nothing */

static uintptr_t cfa(void)
{
    return (uintptr_t)&stack_words[CFA];
}

/* The search for the first `count` frames, taking `known` slots when
 * given, into slots[]. */
static bool search_frames(uintptr_t *slots, unsigned count,
                          const struct stacklog_known_slots *known)
{
    memset(slots, 0, FRAMES * sizeof(slots[0]));
    return stacklog_stack_slots_find(thread, cfa(), 0, pcs, count, slots,
                                     known);
}

static bool search(uintptr_t *slots,
                   const struct stacklog_known_slots *known)
{
    return search_frames(slots, FRAMES, known);
}

/* Known slots at the words `index` names. */
static void slots_at(uintptr_t *slots, const unsigned *index)
{
    for (unsigned f = 1; f < FRAMES; f++)
        slots[f] = word_at(index[f]);
}

static void assert_slots(const uintptr_t *slots, const unsigned *expected)
{
    for (unsigned f = 1; f < FRAMES; f++)
        ck_assert_msg(slots[f] == word_at(expected[f]),
                      "frame %u: slot %#lx, expected word %u (%#lx)", f,
                      (unsigned long)slots[f], expected[f],
                      (unsigned long)word_at(expected[f]));
}

START_TEST(test_each_return_address_is_found_above_the_one_before)
{
    uintptr_t slots[FRAMES];
    ck_assert(search(slots, NULL));
    assert_slots(slots, slot_index);
}
END_TEST

START_TEST(test_the_previous_return_address_first_ends_the_search)
{
    /* A copy of frame 2's return address between it and frame 3's: the
     * frame cannot be told apart from a stale copy of its caller's. */
    stack_words[28] = pcs_values[2];
    uintptr_t slots[FRAMES];
    ck_assert(!search(slots, NULL));
}
END_TEST

START_TEST(test_known_slots_holding_the_stack_are_taken)
{
    /* A stale copy of frame 3's return address below its slot: the
     * search alone takes it, then meets the real one while looking for
     * frame 4's and gives up.  The known stack's slots from frame 2 out
     * still hold this stack's return addresses, and are taken. */
    stack_words[30] = pcs_values[3];
    uintptr_t slots[FRAMES];
    ck_assert(!search(slots, NULL));
    uintptr_t known_slots[FRAMES];
    slots_at(known_slots, slot_index);
    const struct stacklog_known_slots known = {known_slots, FRAMES, false};
    ck_assert(search(slots, &known));
    assert_slots(slots, slot_index);
}
END_TEST

START_TEST(test_known_slots_that_moved_are_not_taken)
{
    /* The known stack had frame 3 at word 40, which no longer holds its
     * return address: the frames outside changed, and are searched. */
    const unsigned moved[FRAMES] = {0, CFA - 1, 20, 40, 50};
    uintptr_t known_slots[FRAMES];
    slots_at(known_slots, moved);
    const struct stacklog_known_slots known = {known_slots, FRAMES, false};
    uintptr_t slots[FRAMES];
    ck_assert(search(slots, &known));
    assert_slots(slots, slot_index);
}
END_TEST

START_TEST(test_known_slots_of_another_depth_are_not_taken)
{
    /* The known stack ended at frame 3 where this one goes on: met at
     * frames 1 to 3 with fewer frames outside, it is not this stack.
     * (Past its end lies a slot holding frame 4's return address, as
     * a stale copy would.) */
    stack_words[70] = pcs_values[4];
    uintptr_t known_slots[FRAMES] = {0, word_at(CFA - 1), word_at(20),
                                     word_at(35), word_at(70)};
    const struct stacklog_known_slots known = {known_slots, FRAMES - 1, false};
    uintptr_t slots[FRAMES];
    ck_assert(search(slots, &known));
    assert_slots(slots, slot_index);
}
END_TEST

START_TEST(test_known_slots_past_a_window_are_taken)
{
    /* A join's window: frames 0 to 3 of the stack, searched with the
     * whole known stack.  A stale copy of frame 3's return address below
     * its slot is what a search takes; the known slot from frame 2 out
     * still holds the stack, and is taken, frames outside the window
     * being more than the window's. */
    stack_words[30] = pcs_values[3];
    uintptr_t known_slots[FRAMES];
    slots_at(known_slots, slot_index);
    uintptr_t slots[FRAMES];
    const struct stacklog_known_slots whole = {known_slots, FRAMES, false};
    ck_assert(search_frames(slots, FRAMES - 1, &whole));
    ck_assert_uint_eq(slots[3], word_at(30)); /* not met: searched */
    const struct stacklog_known_slots window = {known_slots, FRAMES, true};
    ck_assert(search_frames(slots, FRAMES - 1, &window));
    ck_assert_uint_eq(slots[2], word_at(slot_index[2]));
    ck_assert_uint_eq(slots[3], word_at(slot_index[3]));
}
END_TEST

#endif

/* A thread that read slots from [low, high) and cached a stack. */
static void cache_one_stack(uintptr_t low, uintptr_t high)
{
    stacklog_stack_slots_catch_up(thread);
    thread->span_low = low;
    thread->span_high = high;
    thread->cache_key[7] = (struct stacklog_cache_key){word_at(CFA - 1),
                                                       pcs_values[1]};
}

START_TEST(test_an_unmapping_elsewhere_keeps_the_cached_stacks)
{
    cache_one_stack(word_at(0), word_at(WORDS));
    os_unmap_generation_advance_range((void *)(uintptr_t)0x10000, 4096);
    stacklog_stack_slots_catch_up(thread);
    ck_assert_uint_eq(thread->unmaps_seen, os_unmap_generation());
    ck_assert_uint_eq(thread->cache_key[7].slot, word_at(CFA - 1));
    ck_assert_uint_eq(thread->cache_key[7].returns_to, pcs_values[1]);
}
END_TEST

START_TEST(test_an_unmapping_of_the_read_pages_drops_the_cached_stacks)
{
    cache_one_stack(word_at(0), word_at(WORDS));
    os_unmap_generation_advance_range(stack_words, 4096);
    stacklog_stack_slots_catch_up(thread);
    ck_assert_uint_eq(thread->unmaps_seen, os_unmap_generation());
    ck_assert_uint_eq(thread->cache_key[7].slot, 0);
    ck_assert_uint_eq(thread->cache_key[7].returns_to, 0);
}
END_TEST

static Suite *stack_slots_suite(void)
{
    Suite *s = suite_create("stack_slots");
    TCase *tc = tcase_create("slots");
    tcase_add_checked_fixture(tc, setup, teardown);
#if defined(__x86_64__)
    tcase_add_test(tc, test_each_return_address_is_found_above_the_one_before);
    tcase_add_test(tc, test_the_previous_return_address_first_ends_the_search);
    tcase_add_test(tc, test_known_slots_holding_the_stack_are_taken);
    tcase_add_test(tc, test_known_slots_that_moved_are_not_taken);
    tcase_add_test(tc, test_known_slots_of_another_depth_are_not_taken);
    tcase_add_test(tc, test_known_slots_past_a_window_are_taken);
#endif
    tcase_add_test(tc, test_an_unmapping_elsewhere_keeps_the_cached_stacks);
    tcase_add_test(tc, test_an_unmapping_of_the_read_pages_drops_the_cached_stacks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(stack_slots_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
