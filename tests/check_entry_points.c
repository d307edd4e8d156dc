/*
 * The malloc entry points, against glibc's documented semantics: return
 * values, errno, alignment, zeroing, content preservation and usable
 * sizes, across the tiny (<= 1 KiB), small (<= 128 KiB) and large
 * classes.
 */
#include "config.h"
#include "test_util.h"

#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 4096UL

/* Sizes on both sides of every class boundary. */
static const size_t boundary_sizes[] = {
    0,      1,      8,      15,     16,     17,      31,      32,
    100,    1000,   1023,   1024,   1025,   1536,    1537,    4000,
    4096,   5000,   65535,  65536,  100000, 131071,  131072,  131073,
    200000, 262144, 300001, 1048576, 2097153, 4194304, 17 * 1048576,
};
#define N_SIZES (sizeof(boundary_sizes) / sizeof(boundary_sizes[0]))

START_TEST(test_malloc_alignment_and_usable_size)
{
    for (size_t i = 0; i < N_SIZES; i++) {
        size_t size = boundary_sizes[i];
        unsigned char *p = malloc(size);
        ck_assert_msg(p != NULL, "malloc(%zu) failed", size);
        ck_assert_msg(((uintptr_t)p & 15) == 0, "malloc(%zu) = %p not 16-aligned",
                      size, (void *)p);
        ck_assert_msg(malloc_usable_size(p) >= size,
                      "malloc_usable_size(malloc(%zu)) = %zu", size,
                      malloc_usable_size(p));
        /* The whole usable size is ours to write. */
        memset(p, 0x5a, malloc_usable_size(p));
        free(p);
    }
    for (size_t size = 0; size <= 2100; size++) {
        void *p = malloc(size);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p & 15, 0);
        ck_assert_uint_ge(malloc_usable_size(p), size);
        free(p);
    }
    ck_assert_uint_eq(malloc_usable_size(NULL), 0);
}
END_TEST

START_TEST(test_malloc_zero_is_unique)
{
    void *a = malloc(0), *b = malloc(0);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    free(a);
    free(b);
}
END_TEST

static int compare_address(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* Live blocks never overlap, whatever their sizes. */
START_TEST(test_malloc_blocks_do_not_overlap)
{
    enum { N = 6000 };
    static uintptr_t blocks[N][2];
    uint64_t seed = 12345;
    for (unsigned i = 0; i < N; i++) {
        uint64_t r = test_random(&seed);
        size_t size = (r % 100) < 90 ? r % 1025
                      : (r % 100) < 99 ? 1025 + r % (128 * 1024)
                                       : 131073 + r % (1 * MiB);
        void *p = malloc(size);
        ck_assert_ptr_nonnull(p);
        blocks[i][0] = (uintptr_t)p;
        blocks[i][1] = (uintptr_t)p + malloc_usable_size(p);
        ck_assert_uint_ge(blocks[i][1] - blocks[i][0], size);
    }
    qsort(blocks, N, sizeof(blocks[0]), compare_address);
    for (unsigned i = 1; i < N; i++)
        ck_assert_msg(blocks[i - 1][1] <= blocks[i][0],
                      "blocks [%#lx,%#lx) and [%#lx,%#lx) overlap",
                      (unsigned long)blocks[i - 1][0],
                      (unsigned long)blocks[i - 1][1],
                      (unsigned long)blocks[i][0], (unsigned long)blocks[i][1]);
    for (unsigned i = 0; i < N; i++)
        free((void *)blocks[i][0]);
}
END_TEST

START_TEST(test_impossible_sizes_fail_with_enomem)
{
    size_t sizes[] = {SIZE_MAX, SIZE_MAX - 4096, PTRDIFF_MAX,
                      (size_t)PTRDIFF_MAX + 1, PTRDIFF_MAX - 100};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t size = launder_size(sizes[i]);
        errno = 0;
        ck_assert_msg(malloc(size) == NULL, "malloc(%#zx) succeeded", size);
        ck_assert_msg(errno == ENOMEM, "malloc(%#zx): errno %d", size, errno);
        errno = 0;
        ck_assert_ptr_null(valloc(size));
        ck_assert_int_eq(errno, ENOMEM);
        errno = 0;
        ck_assert_ptr_null(memalign(64, size));
        ck_assert_int_eq(errno, ENOMEM);
        errno = 0;
        ck_assert_ptr_null(aligned_alloc(4096, size));
        ck_assert_int_eq(errno, ENOMEM);
        errno = 0;
        ck_assert_ptr_null(pvalloc(size));
        ck_assert_int_eq(errno, ENOMEM);
        errno = 0;
        ck_assert_ptr_null(calloc(1, size));
        ck_assert_int_eq(errno, ENOMEM);
        errno = 0;
        ck_assert_ptr_null(realloc(NULL, size));
        ck_assert_int_eq(errno, ENOMEM);
        void *result = (void *)0x1234;
        ck_assert_int_eq(posix_memalign(&result, 64, size), ENOMEM);
        ck_assert_ptr_eq(result, (void *)0x1234);
    }
}
END_TEST

START_TEST(test_calloc_overflow)
{
    size_t pairs[][2] = {
        {SIZE_MAX, 2},
        {2, SIZE_MAX},
        {(size_t)1 << 33, (size_t)1 << 33},
        {SIZE_MAX / 3 + 1, 3},
        {65537, SIZE_MAX / 65536},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        errno = 0;
        void *p = calloc(launder_size(pairs[i][0]), launder_size(pairs[i][1]));
        ck_assert_msg(p == NULL, "calloc(%zu, %zu) succeeded", pairs[i][0],
                      pairs[i][1]);
        ck_assert_int_eq(errno, ENOMEM);
    }
}
END_TEST

START_TEST(test_reallocarray)
{
    errno = 0;
    ck_assert_ptr_null(reallocarray(NULL, launder_size(SIZE_MAX), 2));
    ck_assert_int_eq(errno, ENOMEM);

    char *p = reallocarray(NULL, 10, 10);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_ge(malloc_usable_size(p), 100);
    fill_pattern(p, 100, 3);
    /* An overflowing request leaves the block alone. */
    errno = 0;
    ck_assert_ptr_null(reallocarray(p, launder_size((size_t)1 << 40),
                                    launder_size((size_t)1 << 40)));
    ck_assert_int_eq(errno, ENOMEM);
    ck_assert(check_pattern(p, 100, 3));
    ck_assert_uint_ge(malloc_usable_size(p), 100);

    char *q = reallocarray(p, 1000, 20);
    ck_assert_ptr_nonnull(q);
    ck_assert_uint_ge(malloc_usable_size(q), 20000);
    ck_assert(check_pattern(q, 100, 3));
    free(q);
}
END_TEST

START_TEST(test_free_null_and_errno)
{
    errno = 4242;
    free(NULL);
    ck_assert_int_eq(errno, 4242);
    /* glibc >= 2.33: free preserves errno. */
    for (size_t i = 0; i < N_SIZES; i++) {
        void *p = malloc(boundary_sizes[i]);
        ck_assert_ptr_nonnull(p);
        errno = 4242;
        free(p);
        ck_assert_int_eq(errno, 4242);
    }
}
END_TEST

START_TEST(test_realloc_null_is_malloc)
{
    for (size_t i = 0; i < N_SIZES; i++) {
        size_t size = boundary_sizes[i];
        char *p = realloc(NULL, size);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p & 15, 0);
        ck_assert_uint_ge(malloc_usable_size(p), size);
        ck_assert_uint_eq(malloc_size(p), malloc_usable_size(p));
        memset(p, 1, size);
        free(p);
    }
}
END_TEST

START_TEST(test_realloc_zero_frees)
{
    size_t sizes[] = {16, 1000, 5000, 100000, 500000, 20 * MiB};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        void *p = malloc(sizes[i]);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_gt(malloc_size(p), 0);
        ck_assert_ptr_null(realloc(p, 0));
        ck_assert_msg(malloc_size(p) == 0,
                      "realloc(p, 0) of a %zu-byte block did not free it",
                      sizes[i]);
    }
}
END_TEST

/* realloc keeps the contents while the block moves tiny -> small ->
 * large -> small -> tiny, growing and shrinking. */
START_TEST(test_realloc_preserves_contents)
{
    static const size_t chain[] = {
        10,      500,    1024, 1025,   1500,     100000, 131072, 131073,
        200000,  3 * MiB, 150000, 140000, 131072, 100000, 2000,  1025,
        1024,    1000,   16,    8,      1,        700,   70000,  6 * MiB,
        5 * MiB, 64,
    };
    unsigned char *p = malloc(chain[0]);
    ck_assert_ptr_nonnull(p);
    fill_pattern(p, chain[0], 0);
    for (size_t i = 1; i < sizeof(chain) / sizeof(chain[0]); i++) {
        size_t old = chain[i - 1], size = chain[i];
        unsigned char *q = realloc(p, size);
        ck_assert_msg(q != NULL, "realloc %zu -> %zu failed", old, size);
        ck_assert_uint_eq((uintptr_t)q & 15, 0);
        ck_assert_uint_ge(malloc_usable_size(q), size);
        ck_assert_msg(check_pattern(q, old < size ? old : size, (unsigned)i - 1),
                      "realloc %zu -> %zu lost the contents", old, size);
        fill_pattern(q, size, (unsigned)i);
        p = q;
    }
    free(p);
}
END_TEST

/* Growing a block one byte at a time keeps every byte. */
START_TEST(test_realloc_byte_by_byte)
{
    unsigned char *p = NULL;
    for (size_t size = 1; size <= 140000; size += (size < 3000 ? 1 : 997)) {
        unsigned char *q = realloc(p, size);
        ck_assert_ptr_nonnull(q);
        q[size - 1] = (unsigned char)(size * 7);
        p = q;
    }
    size_t size = 1;
    for (; size <= 140000; size += (size < 3000 ? 1 : 997))
        ck_assert_msg(p[size - 1] == (unsigned char)(size * 7),
                      "byte %zu lost", size - 1);
    free(p);
}
END_TEST

/* Large blocks made after other large blocks were freed (whatever the
 * allocator does with the freed mappings) grow and shrink like any other. */
START_TEST(test_realloc_large_after_frees)
{
    char *a = malloc(1 * MiB), *b = malloc(1 * MiB);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    memset(a, 1, 1 * MiB);
    memset(b, 2, 1 * MiB);
    free(a);
    free(b);
    char *c = malloc(3 * MiB / 2);
    ck_assert_ptr_nonnull(c);
    fill_pattern(c, 3 * MiB / 2, 1);
    errno = 0;
    char *d = realloc(c, 3 * MiB);
    ck_assert_msg(d != NULL, "realloc(%p, 3 MiB) of a 1.5 MiB block failed: %s",
                  (void *)c, strerror(errno));
    ck_assert(check_pattern(d, 3 * MiB / 2, 1));
    fill_pattern(d, 3 * MiB, 2);
    char *e = realloc(d, 1 * MiB + 12345);
    ck_assert_ptr_nonnull(e);
    ck_assert(check_pattern(e, 1 * MiB + 12345, 2));
    free(e);
}
END_TEST

/* A deterministic mix of large frees, mallocs and reallocs. */
START_TEST(test_large_malloc_realloc_free_mix)
{
    enum { N = 24 };
    char *blocks[N] = {0};
    size_t sizes[N] = {0};
    uint64_t seed = 77;
    for (unsigned op = 0; op < 3000; op++) {
        unsigned i = (unsigned)(test_random(&seed) % N);
        size_t size = 129 * KiB + test_random(&seed) % (3 * MiB);
        if (!blocks[i]) {
            blocks[i] = malloc(size);
            ck_assert_ptr_nonnull(blocks[i]);
            sizes[i] = size;
            memset(blocks[i], (int)i, size);
        } else if (op % 3) {
            ck_assert(blocks[i][0] == (char)i && blocks[i][sizes[i] - 1] == (char)i);
            errno = 0;
            char *moved = realloc(blocks[i], size);
            ck_assert_msg(moved != NULL, "op %u: realloc %zu -> %zu failed: %s", op,
                          sizes[i], size, strerror(errno));
            size_t kept = size < sizes[i] ? size : sizes[i];
            ck_assert(moved[0] == (char)i && moved[kept - 1] == (char)i &&
                      moved[kept / 2] == (char)i);
            memset(moved, (int)i, size);
            blocks[i] = moved;
            sizes[i] = size;
        } else {
            free(blocks[i]);
            blocks[i] = NULL;
        }
    }
    for (unsigned i = 0; i < N; i++)
        free(blocks[i]);
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
}
END_TEST

START_TEST(test_posix_memalign_einval)
{
    size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 48, 100, 4097, (SIZE_MAX >> 1) + 3};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        void *result = (void *)0x1234;
        errno = 777;
        int error = posix_memalign(&result, launder_size(bad[i]), 64);
        ck_assert_msg(error == EINVAL, "posix_memalign(alignment %zu) = %d",
                      bad[i], error);
        ck_assert_ptr_eq(result, (void *)0x1234);
        ck_assert_int_eq(errno, 777); /* the error is returned, not set */
    }
}
END_TEST

START_TEST(test_aligned_alloc_memalign_einval)
{
    size_t bad[] = {0, 3, 12, 24, 100, 4097, 3 * 4096};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        ck_assert_ptr_null(aligned_alloc(launder_size(bad[i]), 64));
        ck_assert_msg(errno == EINVAL, "aligned_alloc(%zu): errno %d", bad[i],
                      errno);
        if (bad[i] == 0)
            continue; /* memalign(0, n) is malloc(n) in glibc */
        errno = 0;
        ck_assert_ptr_null(memalign(launder_size(bad[i]), 64));
        ck_assert_msg(errno == EINVAL, "memalign(%zu): errno %d", bad[i], errno);
    }
    void *p = memalign(0, 100);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_ge(malloc_usable_size(p), 100);
    free(p);
}
END_TEST

static const size_t aligned_sizes[] = {
    1,     8,      16,     100,    1000,   1024,   1025,    3000,
    4096,  5000,   65536,  100000, 131072, 131073, 300000,  2 * MiB + 1,
};

/* Every power of two from 8 to 1 MiB, every class, three entry points. */
/* Zero bytes at alignments beyond a run page take the large path. */
START_TEST(test_aligned_zero_size)
{
    size_t alignments[] = {64 * KiB, 128 * KiB, MiB, 4 * MiB};
    for (size_t i = 0; i < sizeof(alignments) / sizeof(alignments[0]); i++) {
        size_t a = alignments[i];
        void *p = NULL;
        ck_assert_int_eq(posix_memalign(&p, a, 0), 0);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % a, 0);
        free(p);
        errno = 0;
        p = aligned_alloc(a, 0);
        ck_assert_msg(p != NULL, "aligned_alloc(%zu, 0) failed: errno %d", a, errno);
        ck_assert_uint_eq((uintptr_t)p % a, 0);
        free(p);
        p = memalign(a, 0);
        ck_assert_ptr_nonnull(p);
        free(p);
    }
}
END_TEST

START_TEST(test_alignment_honoured)
{
    for (size_t alignment = 8; alignment <= 1 * MiB; alignment <<= 1) {
        for (size_t i = 0; i < sizeof(aligned_sizes) / sizeof(aligned_sizes[0]);
             i++) {
            size_t size = aligned_sizes[i];
            void *blocks[3] = {NULL, NULL, NULL};
            ck_assert_int_eq(posix_memalign(&blocks[0], alignment, size), 0);
            blocks[1] = aligned_alloc(alignment, size);
            blocks[2] = memalign(alignment, size);
            for (int k = 0; k < 3; k++) {
                ck_assert_msg(blocks[k] != NULL, "entry %d: %zu aligned %zu failed",
                              k, size, alignment);
                ck_assert_msg(((uintptr_t)blocks[k] & (alignment - 1)) == 0,
                              "entry %d: %p for %zu bytes not aligned to %zu", k,
                              blocks[k], size, alignment);
                ck_assert_msg(((uintptr_t)blocks[k] & 15) == 0,
                              "entry %d: %p not 16-aligned", k, blocks[k]);
                ck_assert_msg(malloc_usable_size(blocks[k]) >= size,
                              "entry %d: usable %zu < %zu (alignment %zu)", k,
                              malloc_usable_size(blocks[k]), size, alignment);
                memset(blocks[k], 0xa5, size);
            }
            for (int k = 0; k < 3; k++)
                free(blocks[k]);
        }
    }
}
END_TEST

/* Many aligned blocks alive together are all aligned and disjoint. */
START_TEST(test_alignment_many_live)
{
    enum { N = 300 };
    static uintptr_t blocks[N][2];
    for (size_t alignment = 32; alignment <= 64 * KiB; alignment <<= 1) {
        for (unsigned i = 0; i < N; i++) {
            size_t size = 1 + (i * 37) % 3000;
            void *p = aligned_alloc(alignment, size);
            ck_assert_ptr_nonnull(p);
            ck_assert_uint_eq((uintptr_t)p & (alignment - 1), 0);
            blocks[i][0] = (uintptr_t)p;
            blocks[i][1] = (uintptr_t)p + size;
        }
        qsort(blocks, N, sizeof(blocks[0]), compare_address);
        for (unsigned i = 1; i < N; i++)
            ck_assert_uint_le(blocks[i - 1][1], blocks[i][0]);
        for (unsigned i = 0; i < N; i++)
            free((void *)blocks[i][0]);
    }
}
END_TEST

START_TEST(test_valloc_pvalloc)
{
    long page = sysconf(_SC_PAGESIZE);
    ck_assert_int_eq(page, (long)PAGE);
    size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 10000, 131072, 200000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t size = sizes[i];
        void *v = valloc(size);
        ck_assert_ptr_nonnull(v);
        ck_assert_uint_eq((uintptr_t)v & (PAGE - 1), 0);
        ck_assert_uint_ge(malloc_usable_size(v), size);
        free(v);

        size_t rounded = size ? (size + PAGE - 1) & ~(PAGE - 1) : PAGE;
        void *pv = pvalloc(size);
        ck_assert_ptr_nonnull(pv);
        ck_assert_uint_eq((uintptr_t)pv & (PAGE - 1), 0);
        ck_assert_msg(malloc_usable_size(pv) >= rounded,
                      "pvalloc(%zu): usable %zu < %zu", size,
                      malloc_usable_size(pv), rounded);
        memset(pv, 0x11, rounded);
        free(pv);
    }
}
END_TEST

/* calloc returns zeros even from blocks that were dirtied and freed. */
static void calloc_after_dirty(size_t size, unsigned rounds, unsigned count)
{
    void **blocks = malloc(count * sizeof(void *));
    ck_assert_ptr_nonnull(blocks);
    for (unsigned round = 0; round < rounds; round++) {
        for (unsigned i = 0; i < count; i++) {
            blocks[i] = malloc(size);
            ck_assert_ptr_nonnull(blocks[i]);
            memset(blocks[i], 0xdb, malloc_usable_size(blocks[i]));
        }
        for (unsigned i = 0; i < count; i++)
            free(blocks[i]);
        for (unsigned i = 0; i < count; i++) {
            /* Alternate the count and size split of the same total. */
            blocks[i] = i & 1 ? calloc(size / 8, 8) : calloc(1, size);
            ck_assert_ptr_nonnull(blocks[i]);
            ck_assert_msg(is_all_zero(blocks[i], size),
                          "calloc(%zu) returned dirty memory (round %u)", size,
                          round);
            memset(blocks[i], 0xdb, size);
        }
        for (unsigned i = 0; i < count; i++)
            free(blocks[i]);
    }
    free(blocks);
}

START_TEST(test_calloc_zeroes_reused_tiny)
{
    calloc_after_dirty(24, 4, 500);
    calloc_after_dirty(1000, 4, 200);
    calloc_after_dirty(1024, 4, 200);
}
END_TEST

START_TEST(test_calloc_zeroes_reused_small)
{
    calloc_after_dirty(2048, 4, 100);
    calloc_after_dirty(100000, 3, 20);
    calloc_after_dirty(131072, 3, 10);
}
END_TEST

START_TEST(test_calloc_zeroes_reused_large)
{
    calloc_after_dirty(131080, 3, 8);
    calloc_after_dirty(1 * MiB, 3, 8);
    calloc_after_dirty(3 * MiB + 8, 2, 4);
}
END_TEST

/* A shrunk large block, freed and reused by calloc, is zero too. */
START_TEST(test_calloc_after_large_realloc)
{
    for (int round = 0; round < 4; round++) {
        unsigned char *p = malloc(2 * MiB);
        ck_assert_ptr_nonnull(p);
        memset(p, 0xee, 2 * MiB);
        p = realloc(p, 1 * MiB + 4096);
        ck_assert_ptr_nonnull(p);
        p = realloc(p, 3 * MiB);
        ck_assert_ptr_nonnull(p);
        memset(p, 0xee, 3 * MiB);
        free(p);
        unsigned char *q = calloc(1, 3 * MiB);
        ck_assert_ptr_nonnull(q);
        ck_assert(is_all_zero(q, 3 * MiB));
        free(q);
        q = calloc(1, 2 * MiB + 100);
        ck_assert_ptr_nonnull(q);
        ck_assert(is_all_zero(q, 2 * MiB + 100));
        free(q);
    }
}
END_TEST

START_TEST(test_usable_size_and_malloc_size_agree)
{
    for (size_t i = 0; i < N_SIZES; i++) {
        void *p = malloc(boundary_sizes[i]);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(malloc_usable_size(p), malloc_size(p));
        /* Tiny and small blocks are exactly their class size; a large
         * block may come from a cached, slightly bigger mapping. */
        if (boundary_sizes[i] <= 128 * KiB)
            ck_assert_uint_eq(malloc_usable_size(p),
                              malloc_good_size(boundary_sizes[i]));
        else
            ck_assert_uint_ge(malloc_usable_size(p),
                              malloc_good_size(boundary_sizes[i]));
        free(p);
    }
}
END_TEST

static Suite *entry_points_suite(void)
{
    Suite *s = suite_create("entry_points");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_malloc_alignment_and_usable_size);
    tcase_add_test(tc, test_malloc_zero_is_unique);
    tcase_add_test(tc, test_malloc_blocks_do_not_overlap);
    tcase_add_test(tc, test_impossible_sizes_fail_with_enomem);
    tcase_add_test(tc, test_calloc_overflow);
    tcase_add_test(tc, test_reallocarray);
    tcase_add_test(tc, test_free_null_and_errno);
    tcase_add_test(tc, test_realloc_null_is_malloc);
    tcase_add_test(tc, test_realloc_zero_frees);
    tcase_add_test(tc, test_realloc_preserves_contents);
    tcase_add_test(tc, test_realloc_byte_by_byte);
    tcase_add_test(tc, test_realloc_large_after_frees);
    tcase_add_test(tc, test_large_malloc_realloc_free_mix);
    tcase_add_test(tc, test_posix_memalign_einval);
    tcase_add_test(tc, test_aligned_alloc_memalign_einval);
    tcase_add_test(tc, test_alignment_honoured);
    tcase_add_test(tc, test_alignment_many_live);
    tcase_add_test(tc, test_aligned_zero_size);
    tcase_add_test(tc, test_valloc_pvalloc);
    tcase_add_test(tc, test_calloc_zeroes_reused_tiny);
    tcase_add_test(tc, test_calloc_zeroes_reused_small);
    tcase_add_test(tc, test_calloc_zeroes_reused_large);
    tcase_add_test(tc, test_calloc_after_large_realloc);
    tcase_add_test(tc, test_usable_size_and_malloc_size_agree);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(entry_points_suite());
}
