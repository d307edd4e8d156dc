/*
 * The introspection enumerator, in this process (no reader): it reports
 * exactly the blocks in use, with their sizes, plus the zone's regions
 * and its own bookkeeping, each under the type the mask asked for.
 */
#include "config.h"
#include "test_util.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_RANGES = 20000 };

struct collected {
    unsigned calls;
    unsigned bad_type;
    unsigned count[8];
    vm_range_t ranges[3][MAX_RANGES]; /* in use, region, admin */
};

static struct collected found;

static int type_slot(unsigned type)
{
    switch (type) {
    case MALLOC_PTR_IN_USE_RANGE_TYPE: return 0;
    case MALLOC_PTR_REGION_RANGE_TYPE: return 1;
    case MALLOC_ADMIN_REGION_RANGE_TYPE: return 2;
    default: return -1;
    }
}

/* Records without allocating: it may run while the zone is locked. */
static void recorder(task_t task, void *context, unsigned type,
                     vm_range_t *ranges, unsigned count)
{
    struct collected *c = context;
    c->calls++;
    int slot = type_slot(type);
    if (slot < 0) {
        c->bad_type++;
        return;
    }
    for (unsigned i = 0; i < count && c->count[slot] < MAX_RANGES; i++)
        c->ranges[slot][c->count[slot]++] = ranges[i];
}

static kern_return_t enumerate(malloc_zone_t *zone, unsigned mask)
{
    memset(&found, 0, sizeof(found));
    zone->introspect->force_lock(zone);
    kern_return_t kr = zone->introspect->enumerator(
        mach_task_self(), &found, mask, (vm_address_t)zone, NULL, recorder);
    zone->introspect->force_unlock(zone);
    return kr;
}

static int compare_range(const void *a, const void *b)
{
    const vm_range_t *x = a, *y = b;
    return x->address < y->address ? -1 : x->address > y->address;
}

/* The in-use ranges are exactly `blocks` (NULL entries skipped), each
 * with its malloc_size. */
static void assert_in_use_exactly(void **blocks, unsigned n)
{
    static vm_range_t want[MAX_RANGES];
    unsigned w = 0;
    for (unsigned i = 0; i < n; i++)
        if (blocks[i])
            want[w++] = (vm_range_t){(vm_address_t)blocks[i], malloc_size(blocks[i])};
    qsort(want, w, sizeof(want[0]), compare_range);
    vm_range_t *got = found.ranges[0];
    qsort(got, found.count[0], sizeof(got[0]), compare_range);
    ck_assert_msg(found.count[0] == w, "enumerated %u blocks in use, want %u",
                  found.count[0], w);
    for (unsigned i = 0; i < w; i++) {
        ck_assert_msg(got[i].address == want[i].address,
                      "block %u: enumerated %#lx, want %#lx", i,
                      (unsigned long)got[i].address, (unsigned long)want[i].address);
        ck_assert_msg(got[i].size == want[i].size,
                      "block %#lx: enumerated size %zu, want %zu",
                      (unsigned long)got[i].address, got[i].size, want[i].size);
    }
}

static bool inside_some(const vm_range_t *ranges, unsigned n, vm_address_t a,
                        vm_size_t size)
{
    for (unsigned i = 0; i < n; i++)
        if (a >= ranges[i].address && a + size <= ranges[i].address + ranges[i].size)
            return true;
    return false;
}

static const size_t mix_sizes[] = {1,    16,    17,    64,     500,    1000,
                                   1024, 1025,  2000,  30000,  131072, 131073,
                                   300000, 2 * MiB, 17 * MiB};
#define N_MIX (sizeof(mix_sizes) / sizeof(mix_sizes[0]))

START_TEST(test_enumerate_created_zone_exact)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    enum { N = 1500 };
    static void *blocks[N];
    for (unsigned i = 0; i < N; i++) {
        /* Mostly tiny and small, a few large. */
        size_t size = i % 100 == 99 ? mix_sizes[i / 100 % N_MIX]
                                    : mix_sizes[i % 11] + i % 7;
        blocks[i] = malloc_zone_malloc(z, size);
        ck_assert_ptr_nonnull(blocks[i]);
    }
    ck_assert_int_eq(enumerate(z, MALLOC_PTR_IN_USE_RANGE_TYPE |
                                      MALLOC_PTR_REGION_RANGE_TYPE |
                                      MALLOC_ADMIN_REGION_RANGE_TYPE),
                     KERN_SUCCESS);
    ck_assert_uint_eq(found.bad_type, 0);
    assert_in_use_exactly(blocks, N);

    /* Free every third block and some whole runs' worth. */
    for (unsigned i = 0; i < N; i += 3) {
        malloc_zone_free(z, blocks[i]);
        blocks[i] = NULL;
    }
    for (unsigned i = 400; i < 700; i++) {
        malloc_zone_free(z, blocks[i]);
        blocks[i] = NULL;
    }
    ck_assert_int_eq(enumerate(z, MALLOC_PTR_IN_USE_RANGE_TYPE |
                                      MALLOC_PTR_REGION_RANGE_TYPE |
                                      MALLOC_ADMIN_REGION_RANGE_TYPE),
                     KERN_SUCCESS);
    assert_in_use_exactly(blocks, N);

    /* Every block lies in a reported region; the zone itself is admin. */
    ck_assert_uint_gt(found.count[1], 0);
    ck_assert_uint_gt(found.count[2], 0);
    for (unsigned i = 0; i < found.count[0]; i++)
        ck_assert_msg(inside_some(found.ranges[1], found.count[1],
                                  found.ranges[0][i].address, found.ranges[0][i].size),
                      "block %#lx is in no region range",
                      (unsigned long)found.ranges[0][i].address);
    ck_assert(inside_some(found.ranges[2], found.count[2], (vm_address_t)z,
                          sizeof(malloc_zone_t)));
    /* Admin ranges are not regions of blocks. */
    for (unsigned i = 0; i < found.count[0]; i++)
        ck_assert(!inside_some(found.ranges[2], found.count[2],
                               found.ranges[0][i].address, 1));

    /* A mask of one type gets that type alone. */
    ck_assert_int_eq(enumerate(z, MALLOC_PTR_IN_USE_RANGE_TYPE), KERN_SUCCESS);
    assert_in_use_exactly(blocks, N);
    ck_assert_uint_eq(found.count[1] + found.count[2], 0);
    ck_assert_int_eq(enumerate(z, MALLOC_PTR_REGION_RANGE_TYPE), KERN_SUCCESS);
    ck_assert_uint_eq(found.count[0] + found.count[2], 0);
    ck_assert_uint_gt(found.count[1], 0);
    ck_assert_int_eq(enumerate(z, MALLOC_ADMIN_REGION_RANGE_TYPE), KERN_SUCCESS);
    ck_assert_uint_eq(found.count[0] + found.count[1], 0);
    ck_assert_uint_gt(found.count[2], 0);

    for (unsigned i = 0; i < N; i++)
        malloc_zone_free(z, blocks[i]);
    ck_assert_int_eq(enumerate(z, MALLOC_PTR_IN_USE_RANGE_TYPE), KERN_SUCCESS);
    ck_assert_uint_eq(found.count[0], 0);
    malloc_destroy_zone(z);
}
END_TEST

START_TEST(test_enumerate_empty_zone)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    ck_assert_int_eq(enumerate(z, 7), KERN_SUCCESS);
    ck_assert_uint_eq(found.count[0], 0);
    ck_assert(inside_some(found.ranges[2], found.count[2], (vm_address_t)z,
                          sizeof(malloc_zone_t)));
    ck_assert_int_eq(enumerate(z, 0), KERN_SUCCESS);
    ck_assert_uint_eq(found.count[0] + found.count[1] + found.count[2], 0);
    malloc_destroy_zone(z);
}
END_TEST

/* Each size class separately, with a freed block in the middle. */
START_TEST(test_enumerate_every_class)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    enum { PER = 3 };
    static void *blocks[400 * PER];
    unsigned n = 0;
    for (size_t size = 16; size <= 1024; size += 16)
        for (int k = 0; k < PER; k++)
            blocks[n++] = malloc_zone_malloc(z, size);
    for (size_t size = 1536; size <= 128 * KiB; size += 512)
        for (int k = 0; k < PER; k++)
            blocks[n++] = malloc_zone_malloc(z, size);
    for (unsigned i = 1; i < n; i += PER) {
        malloc_zone_free(z, blocks[i]);
        blocks[i] = NULL;
    }
    ck_assert_int_eq(enumerate(z, MALLOC_PTR_IN_USE_RANGE_TYPE), KERN_SUCCESS);
    assert_in_use_exactly(blocks, n);
    for (unsigned i = 0; i < n; i++)
        malloc_zone_free(z, blocks[i]);
    malloc_destroy_zone(z);
}
END_TEST

/* The default zone: the program's blocks are found, freed ones (which
 * sit in the thread cache) are not. */
START_TEST(test_enumerate_default_zone)
{
    malloc_zone_t *def = malloc_default_zone();
    enum { N = 600 };
    static void *blocks[N];
    for (unsigned i = 0; i < N; i++)
        blocks[i] = malloc(mix_sizes[i % N_MIX] + i % 5);
    for (unsigned i = 0; i < N; i += 4)
        free(blocks[i]);
    ck_assert_int_eq(enumerate(def, MALLOC_PTR_IN_USE_RANGE_TYPE), KERN_SUCCESS);
    vm_range_t *got = found.ranges[0];
    unsigned n = found.count[0];
    qsort(got, n, sizeof(got[0]), compare_range);
    malloc_statistics_t stats;
    malloc_zone_statistics(def, &stats);
    ck_assert_uint_eq(n, stats.blocks_in_use);
    for (unsigned i = 0; i < N; i++) {
        vm_range_t key = {(vm_address_t)blocks[i], 0};
        vm_range_t *hit = bsearch(&key, got, n, sizeof(got[0]), compare_range);
        if (i % 4 == 0) {
            ck_assert_msg(hit == NULL, "freed block %p enumerated", blocks[i]);
        } else {
            ck_assert_msg(hit != NULL, "block %p not enumerated", blocks[i]);
            ck_assert_uint_eq(hit->size, malloc_size(blocks[i]));
        }
    }
    for (unsigned i = 0; i < N; i++)
        if (i % 4)
            free(blocks[i]);
}
END_TEST

static kern_return_t failing_reader(task_t task, vm_address_t address,
                                    vm_size_t size, void **local)
{
    return KERN_INVALID_ADDRESS;
}

static kern_return_t identity_reader(task_t task, vm_address_t address,
                                     vm_size_t size, void **local)
{
    *local = (void *)address;
    return KERN_SUCCESS;
}

START_TEST(test_enumerate_errors_and_readers)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    void *p = malloc_zone_malloc(z, 100);
    memset(&found, 0, sizeof(found));
    ck_assert_int_ne(z->introspect->enumerator(getpid(), &found, 7, (vm_address_t)z,
                                               failing_reader, recorder),
                     KERN_SUCCESS);
    ck_assert_uint_eq(found.count[0], 0);
    /* Not a zone. */
    static char not_a_zone[8192];
    memset(&found, 0, sizeof(found));
    ck_assert_int_ne(z->introspect->enumerator(getpid(), &found, 7,
                                               (vm_address_t)not_a_zone, NULL,
                                               recorder),
                     KERN_SUCCESS);
    ck_assert_uint_eq(found.count[0], 0);
    /* A reader that hands out the memory itself gives the same answer. */
    memset(&found, 0, sizeof(found));
    ck_assert_int_eq(z->introspect->enumerator(getpid(), &found, 1, (vm_address_t)z,
                                               identity_reader, recorder),
                     KERN_SUCCESS);
    assert_in_use_exactly(&p, 1);
    malloc_zone_free(z, p);
    malloc_destroy_zone(z);
}
END_TEST

static Suite *enumerate_suite(void)
{
    Suite *s = suite_create("enumerate");
    TCase *tc = tcase_create("local");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_enumerate_created_zone_exact);
    tcase_add_test(tc, test_enumerate_empty_zone);
    tcase_add_test(tc, test_enumerate_every_class);
    tcase_add_test(tc, test_enumerate_default_zone);
    tcase_add_test(tc, test_enumerate_errors_and_readers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(enumerate_suite());
}
