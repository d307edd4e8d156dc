/*
 * Frees of pointers the allocator never handed out, and double frees:
 * each is reported with exactly one macOS-style error line naming the
 * address, followed by the malloc_error_break line; the program goes on
 * and the heap stays intact.
 *
 * This program defines malloc_error_break itself.  The library calls it
 * through the dynamic linker, so this definition interposes on the
 * library's, as a debugger breakpoint would catch it: the calls can be
 * counted.
 */
#include "config.h"
#include "test_util.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile unsigned error_breaks;

void malloc_error_break(void)
{
    error_breaks++;
}

static char global_buffer[256];
static char captured[8192];
static char expected[1024];

#define FREED "pointer being freed was not allocated"
#define REALLOCED "pointer being realloc'd was not allocated"

/* Runs `action` with stderr captured; asserts the output is exactly the
 * two report lines for `pointer` and that malloc_error_break ran once. */
#define ASSERT_REPORTS(pointer, what, action)                                  \
    do {                                                                       \
        struct capture cap_;                                                   \
        unsigned breaks_ = error_breaks;                                       \
        capture_begin(&cap_);                                                  \
        action;                                                                \
        capture_end(&cap_, captured, sizeof(captured));                        \
        expected_pointer_error(expected, sizeof(expected), (pointer), (what)); \
        ck_assert_str_eq(captured, expected);                                  \
        ck_assert_uint_eq(error_breaks - breaks_, 1);                          \
    } while (0)

/* The heap is sound: the check passes and fresh blocks of `size` are
 * distinct, writable and keep their contents. */
static void assert_heap_intact(size_t size)
{
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
    /* Fewer of the huge ones: 200 blocks of 20 MiB would be 4 GiB. */
    enum { MOST = 200 };
    int N = size > MiB ? 8 : MOST;
    unsigned char *blocks[MOST];
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(size);
        ck_assert_ptr_nonnull(blocks[i]);
        fill_pattern(blocks[i], size, (unsigned)i);
    }
    for (int i = 0; i < N; i++) {
        ck_assert_msg(check_pattern(blocks[i], size, (unsigned)i),
                      "block %d of %zu bytes was overwritten", i, size);
        for (int j = 0; j < i; j++)
            ck_assert_msg(blocks[i] != blocks[j], "block %p handed out twice",
                          (void *)blocks[i]);
    }
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
}

START_TEST(test_free_stack_address)
{
    char local[64];
    void *p = launder(local + 16);
    ASSERT_REPORTS(p, FREED, free(p));
    assert_heap_intact(64);
}
END_TEST

START_TEST(test_free_global)
{
    void *p = launder(global_buffer);
    ASSERT_REPORTS(p, FREED, free(p));
    p = launder(global_buffer + 128);
    ASSERT_REPORTS(p, FREED, free(p));
    assert_heap_intact(32);
}
END_TEST

START_TEST(test_free_interior_pointers)
{
    size_t sizes[] = {64, 1024, 4096, 100000, 300000, 3 * MiB};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *block = malloc(sizes[i]);
        fill_pattern(block, sizes[i], 9);
        size_t offsets[] = {16, 32, sizes[i] / 2, 4096};
        for (int k = 0; k < 4; k++) {
            if (offsets[k] >= sizes[i])
                continue;
            void *p = launder(block + offsets[k]);
            ASSERT_REPORTS(p, FREED, free(p));
        }
        /* The block itself is untouched and still allocated. */
        if (sizes[i] <= 128 * KiB)
            ck_assert_uint_eq(malloc_size(block), malloc_good_size(sizes[i]));
        ck_assert_uint_ge(malloc_size(block), sizes[i]);
        ck_assert(check_pattern(block, sizes[i], 9));
        free(block);
        assert_heap_intact(sizes[i] < 200000 ? sizes[i] : 64);
    }
}
END_TEST

START_TEST(test_free_unaligned_pointers)
{
    char *tiny = malloc(48), *small = malloc(5000), *large = malloc(200000);
    void *ps[] = {launder(tiny + 1), launder(tiny + 7), launder(small + 3),
                  launder(large + 1), launder(large + 8)};
    for (int k = 0; k < 5; k++)
        ASSERT_REPORTS(ps[k], FREED, free(ps[k]));
    free(tiny);
    free(small);
    free(large);
    assert_heap_intact(48);
}
END_TEST

START_TEST(test_free_foreign_pointers)
{
    void *page = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(page, MAP_FAILED);
    void *ps[] = {page, (char *)page + 4096, (char *)page + 16, (void *)0x10,
                  (void *)0x1000, (void *)(1UL << 46), (void *)0xffff800000001000UL,
                  (void *)&test_free_foreign_pointers};
    for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
        void *p = launder(ps[k]);
        ASSERT_REPORTS(p, FREED, free(p));
    }
    munmap(page, 2 * 4096);
    assert_heap_intact(100);
}
END_TEST

/* Double frees, in each class, straight away and after other traffic. */
static void double_free(size_t size, bool with_traffic)
{
    char *p = malloc(size);
    ck_assert_ptr_nonnull(p);
    memset(p, 1, size);
    free(p);
    void *others[50] = {0};
    if (with_traffic) {
        /* Other classes only, so that p is not handed out again. */
        for (int i = 0; i < 50; i++)
            others[i] = malloc(size > 4096 ? 40 + (size_t)i : 8192 + (size_t)i * 512);
    }
    void *again = launder(p);
    ASSERT_REPORTS(again, FREED, free(again));
    for (int i = 0; i < 50; i++)
        free(others[i]);
    assert_heap_intact(size);
}

START_TEST(test_double_free_immediate)
{
    size_t sizes[] = {16, 100, 1024, 1025, 60000, 131072, 131073, 2 * MiB, 20 * MiB};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        double_free(sizes[i], false);
}
END_TEST

START_TEST(test_double_free_after_traffic)
{
    size_t sizes[] = {16, 100, 1024, 1025, 60000, 131072, 131073, 2 * MiB, 20 * MiB};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        double_free(sizes[i], true);
}
END_TEST

static int compare_pointer(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* Freeing the same block many times, with a full thread cache in
 * between, never hands it out twice. */
START_TEST(test_double_free_does_not_duplicate)
{
    for (int round = 0; round < 5; round++) {
        void *victim = malloc(64);
        free(victim);
        void *again = launder(victim);
        ASSERT_REPORTS(again, FREED, free(again));
        ASSERT_REPORTS(again, FREED, free(again));
    }
    enum { N = 5000 };
    static void *blocks[N];
    for (int i = 0; i < N; i++)
        blocks[i] = malloc(64);
    static void *sorted[N];
    memcpy(sorted, blocks, sizeof(blocks));
    qsort(sorted, N, sizeof(sorted[0]), compare_pointer);
    for (int i = 1; i < N; i++)
        ck_assert_msg(sorted[i - 1] != sorted[i], "block %p handed out twice",
                      sorted[i]);
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    assert_heap_intact(64);
}
END_TEST

START_TEST(test_created_zone_bad_frees)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    malloc_zone_t *other = malloc_create_zone(0, 0);
    char *p = malloc_zone_malloc(z, 200);
    char *big = malloc_zone_malloc(z, 500000);
    void *interior = launder(p + 16);
    ASSERT_REPORTS(interior, FREED, malloc_zone_free(z, interior));
    ASSERT_REPORTS(interior, FREED, free(interior));
    /* A block freed through a zone that does not own it. */
    ASSERT_REPORTS(p, FREED, malloc_zone_free(other, p));
    ASSERT_REPORTS(big, FREED, malloc_zone_free(other, big));
    ck_assert_uint_eq(malloc_size(p), 208);
    malloc_zone_free(z, p);
    void *again = launder(p);
    ASSERT_REPORTS(again, FREED, malloc_zone_free(z, again));
    ASSERT_REPORTS(again, FREED, free(again));
    malloc_zone_free(z, big);
    again = launder(big);
    ASSERT_REPORTS(again, FREED, malloc_zone_free(z, again));
    char local[8];
    void *stack = launder(local);
    ASSERT_REPORTS(stack, FREED, malloc_zone_free(z, stack));
    ck_assert_int_eq(malloc_zone_check(z), 1);
    malloc_statistics_t stats;
    malloc_zone_statistics(z, &stats);
    ck_assert_uint_eq(stats.blocks_in_use, 0);
    malloc_destroy_zone(z);
    malloc_destroy_zone(other);
    assert_heap_intact(200);
}
END_TEST

START_TEST(test_realloc_not_allocated)
{
    char local[64];
    void *stack = launder(local);
    void *result = (void *)1;
    ASSERT_REPORTS(stack, REALLOCED, result = realloc(stack, 100));
    ck_assert_ptr_null(result);
    void *global = launder(global_buffer);
    ASSERT_REPORTS(global, REALLOCED, result = realloc(global, 10));
    ck_assert_ptr_null(result);

    size_t sizes[] = {32, 5000, 300000};
    for (int i = 0; i < 3; i++) {
        char *block = malloc(sizes[i]);
        void *interior = launder(block + 16);
        ASSERT_REPORTS(interior, REALLOCED, result = realloc(interior, 64));
        ck_assert_ptr_null(result);
        free(block);
        void *freed = launder(block);
        ASSERT_REPORTS(freed, REALLOCED, result = realloc(freed, 64));
        ck_assert_ptr_null(result);
    }
    malloc_zone_t *z = malloc_create_zone(0, 0);
    ASSERT_REPORTS(stack, REALLOCED, result = malloc_zone_realloc(z, stack, 10));
    ck_assert_ptr_null(result);
    malloc_destroy_zone(z);
    assert_heap_intact(64);
}
END_TEST

/* The reports go out without allocating: they work with a logger that
 * counts allocations. */
static unsigned logged;
static void counting_logger(uint32_t type, uintptr_t a1, uintptr_t a2, uintptr_t a3,
                            uintptr_t result, uint32_t skip)
{
    logged++;
}

START_TEST(test_report_does_not_allocate)
{
    char local[16];
    void *p = launder(local);
    logged = 0;
    ASSERT_REPORTS(p, FREED,
                   (malloc_logger = counting_logger, free(p), malloc_logger = NULL));
    __asm__ volatile("" ::: "memory");
    ck_assert_uint_eq(logged, 0);
}
END_TEST

static Suite *bad_free_suite(void)
{
    Suite *s = suite_create("bad_free");
    TCase *tc = tcase_create("reports");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_free_stack_address);
    tcase_add_test(tc, test_free_global);
    tcase_add_test(tc, test_free_interior_pointers);
    tcase_add_test(tc, test_free_unaligned_pointers);
    tcase_add_test(tc, test_free_foreign_pointers);
    tcase_add_test(tc, test_double_free_immediate);
    tcase_add_test(tc, test_double_free_after_traffic);
    tcase_add_test(tc, test_double_free_does_not_duplicate);
    tcase_add_test(tc, test_created_zone_bad_frees);
    tcase_add_test(tc, test_realloc_not_allocated);
    tcase_add_test(tc, test_report_does_not_allocate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(bad_free_suite());
}
