/*
 * The zone API of <malloc/malloc.h>: creating, using, naming, registering
 * and destroying zones, sizes, statistics (exact, in fresh zones),
 * printing, checking, pressure relief and the introspection table of
 * every zone, default and created.
 */
#include "config.h"
#include "test_util.h"

#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define REGION_OF(p) ((uintptr_t)(p) >> 22) /* 4 MiB regions */

static char global_buffer[256];

/* ---- creating and destroying ---- */

START_TEST(test_zones_are_isolated)
{
    malloc_zone_t *z1 = malloc_create_zone(0, 0);
    malloc_zone_t *z2 = malloc_create_zone(0, 0);
    malloc_zone_t *def = malloc_default_zone();
    ck_assert_ptr_nonnull(z1);
    ck_assert_ptr_nonnull(z2);
    ck_assert_ptr_ne(z1, z2);
    ck_assert_ptr_ne(z1, def);
    ck_assert_ptr_null(z1->reserved1);
    ck_assert_ptr_null(z1->reserved2);

    size_t sizes[] = {16, 500, 1024, 2048, 60000, 131072};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        void *a = malloc_zone_malloc(z1, sizes[i]);
        void *b = malloc_zone_malloc(z2, sizes[i]);
        void *c = malloc(sizes[i]);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_ptr_nonnull(c);
        /* Tiny and small blocks of different zones never share a region. */
        ck_assert_msg(REGION_OF(a) != REGION_OF(b) && REGION_OF(a) != REGION_OF(c) &&
                          REGION_OF(b) != REGION_OF(c),
                      "size %zu: %p %p %p share a region", sizes[i], a, b, c);
        ck_assert_ptr_eq(malloc_zone_from_ptr(a), z1);
        ck_assert_ptr_eq(malloc_zone_from_ptr(b), z2);
        ck_assert_ptr_eq(malloc_zone_from_ptr(c), def);
        ck_assert(z1->claimed_address(z1, a));
        ck_assert(!z1->claimed_address(z1, b));
        ck_assert(!z1->claimed_address(z1, c));
        ck_assert(z2->claimed_address(z2, b));
        malloc_zone_free(z1, a);
        malloc_zone_free(z2, b);
        free(c);
    }
    void *la = malloc_zone_malloc(z1, 300000);
    void *lb = malloc_zone_malloc(z2, 300000);
    ck_assert_ptr_eq(malloc_zone_from_ptr(la), z1);
    ck_assert_ptr_eq(malloc_zone_from_ptr(lb), z2);
    ck_assert(z1->claimed_address(z1, (char *)la + 1000));
    ck_assert(!z2->claimed_address(z2, la));
    malloc_zone_free(z1, la);
    malloc_zone_free(z2, lb);
    malloc_destroy_zone(z1);
    malloc_destroy_zone(z2);
}
END_TEST

/* A run of many pages is released; a one-page run then takes its first
 * page.  The other pages are free again and must not be claimed, even
 * though the page map still remembers the longer run. */
START_TEST(test_claimed_address_after_run_release)
{
    malloc_zone_t *zone = malloc_create_zone(0, 0);
    enum { BIG = 120 * 1024, COUNT = 8 };
    void *big[COUNT];
    for (int i = 0; i < COUNT; i++)
        big[i] = malloc_zone_malloc(zone, BIG);
    uintptr_t region = (uintptr_t)big[0] & ~((uintptr_t)(4 << 20) - 1);
    uintptr_t inside_big_run = (uintptr_t)big[COUNT - 1];
    ck_assert(zone->claimed_address(zone, (void *)inside_big_run));
    for (int i = 0; i < COUNT; i++)
        malloc_zone_free(zone, big[i]);
    void *small = malloc_zone_malloc(zone, 2048);
    ck_assert_uint_eq((uintptr_t)small & ~((uintptr_t)(4 << 20) - 1), region);
    ck_assert(zone->claimed_address(zone, small));
    ck_assert_msg(!zone->claimed_address(zone, (void *)inside_big_run),
                  "a free page of a released run is claimed");
    malloc_zone_free(zone, small);
    malloc_destroy_zone(zone);
}
END_TEST

/* A zone layered over others may ask the library about a pointer from
 * its own size(): the library must neither deadlock nor recurse. */
static size_t asks_the_library(malloc_zone_t *zone, const void *pointer)
{
    return malloc_size(pointer);
}

START_TEST(test_foreign_zone_calling_back)
{
    static malloc_introspection_t introspect;
    static malloc_zone_t layered = {.size = asks_the_library,
                                    .introspect = &introspect,
                                    .zone_name = "Layered"};
    static char not_heap[64];
    malloc_zone_register(&layered);
    struct capture capture;
    char text[512];
    capture_begin(&capture);
    free(launder(not_heap + 16));
    size_t size = malloc_size(not_heap);
    capture_end(&capture, text, sizeof(text));
    malloc_zone_unregister(&layered);
    ck_assert_uint_eq(size, 0);
    ck_assert_uint_eq(count_lines_with(text, "pointer being freed was not allocated"), 1);
}
END_TEST

START_TEST(test_zone_from_ptr_is_exact)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    char local[64];
    void *page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(page, MAP_FAILED);
    size_t sizes[] = {16, 48, 1024, 1536, 100000, 200000, 5 * MiB};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *zp = malloc_zone_malloc(z, sizes[i]);
        char *dp = malloc(sizes[i]);
        ck_assert_ptr_eq(malloc_zone_from_ptr(zp), z);
        ck_assert_ptr_eq(malloc_zone_from_ptr(dp), malloc_default_zone());
        /* Interior pointers, first byte to last, name no zone. */
        size_t offsets[] = {1, 8, 16, sizes[i] / 2, sizes[i] - 1};
        for (size_t k = 0; k < 5; k++) {
            ck_assert_msg(malloc_zone_from_ptr(zp + offsets[k]) == NULL,
                          "interior %p+%zu of a %zu block has a zone", (void *)zp,
                          offsets[k], sizes[i]);
            ck_assert_ptr_null(malloc_zone_from_ptr(dp + offsets[k]));
            ck_assert_uint_eq(malloc_size(zp + offsets[k]), 0);
        }
        malloc_zone_free(z, zp);
        free(dp);
        /* A freed block belongs to no one. */
        ck_assert_ptr_null(malloc_zone_from_ptr(zp));
        ck_assert_uint_eq(malloc_size(zp), 0);
    }
    ck_assert_ptr_null(malloc_zone_from_ptr(NULL));
    ck_assert_ptr_null(malloc_zone_from_ptr(local));
    ck_assert_ptr_null(malloc_zone_from_ptr(global_buffer));
    ck_assert_ptr_null(malloc_zone_from_ptr(page));
    ck_assert_ptr_null(malloc_zone_from_ptr((void *)&test_zone_from_ptr_is_exact));
    ck_assert_ptr_null(malloc_zone_from_ptr((void *)0x10));
    ck_assert_ptr_null(malloc_zone_from_ptr((void *)0xffff800000000000UL));
    ck_assert_uint_eq(malloc_size(local), 0);
    ck_assert_uint_eq(malloc_size(page), 0);
    munmap(page, PAGE);
    malloc_destroy_zone(z);
}
END_TEST

START_TEST(test_destroy_releases_memory)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    enum { N = 12 };
    size_t sizes[N] = {16, 100, 1000, 1024, 2000, 10000, 100000, 131072,
                       200000, 1 * MiB, 3 * MiB + 1, 20 * MiB};
    void *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc_zone_malloc(z, sizes[i]);
        ck_assert_ptr_nonnull(blocks[i]);
        memset(blocks[i], 0x77, sizes[i]);
        ck_assert(page_is_mapped(blocks[i]));
    }
    /* A freed large block sits in the zone's cache: destroy releases it too. */
    void *cached = malloc_zone_malloc(z, 2 * MiB);
    malloc_zone_free(z, cached);
    ck_assert(zone_is_registered(z));
    malloc_destroy_zone(z);
    ck_assert(!zone_is_registered(z));
    for (int i = 0; i < N; i++) {
        ck_assert_msg(!page_is_mapped(blocks[i]),
                      "block %p of %zu bytes still mapped after destroy",
                      blocks[i], sizes[i]);
        ck_assert_msg(!page_is_mapped((char *)blocks[i] + sizes[i] - 1),
                      "end of block %p of %zu bytes still mapped", blocks[i],
                      sizes[i]);
        ck_assert_ptr_null(malloc_zone_from_ptr(blocks[i]));
    }
    ck_assert(!page_is_mapped(cached));
    ck_assert(!page_is_mapped(z));
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
}
END_TEST

START_TEST(test_destroy_many_zones)
{
    for (int round = 0; round < 40; round++) {
        malloc_zone_t *zones[8];
        for (int i = 0; i < 8; i++) {
            zones[i] = malloc_create_zone(0, 0);
            ck_assert_ptr_nonnull(zones[i]);
            for (int k = 0; k < 50; k++)
                ck_assert_ptr_nonnull(malloc_zone_malloc(zones[i], (size_t)(k * 97 + 1)));
        }
        for (int i = 0; i < 8; i++)
            malloc_destroy_zone(zones[i]);
    }
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
    vm_address_t *zones;
    unsigned count;
    ck_assert_int_eq(malloc_get_all_zones(0, NULL, &zones, &count), KERN_SUCCESS);
    ck_assert_uint_eq(count, 1);
    ck_assert_uint_eq(zones[0], (vm_address_t)malloc_default_zone());
}
END_TEST

/* The registry grows past its first capacity and keeps every zone. */
START_TEST(test_many_zones_at_once)
{
    enum { N = 100 };
    malloc_zone_t *zones[N];
    void *blocks[N];
    for (int i = 0; i < N; i++) {
        zones[i] = malloc_create_zone(0, 0);
        ck_assert_ptr_nonnull(zones[i]);
        blocks[i] = malloc_zone_malloc(zones[i], (size_t)(16 + i * 8));
    }
    vm_address_t *all;
    unsigned count;
    ck_assert_int_eq(malloc_get_all_zones(0, NULL, &all, &count), KERN_SUCCESS);
    ck_assert_uint_eq(count, N + 1);
    for (int i = 0; i < N; i++) {
        ck_assert(zone_is_registered(zones[i]));
        ck_assert_ptr_eq(malloc_zone_from_ptr(blocks[i]), zones[i]);
        ck_assert_uint_eq(malloc_size(blocks[i]), malloc_good_size((size_t)(16 + i * 8)));
    }
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
    /* Destroy in an interleaved order. */
    for (int i = 0; i < N; i += 2)
        malloc_destroy_zone(zones[i]);
    for (int i = 1; i < N; i += 2) {
        ck_assert_ptr_eq(malloc_zone_from_ptr(blocks[i]), zones[i]);
        free(blocks[i]);
        malloc_destroy_zone(zones[i]);
    }
    ck_assert_int_eq(malloc_get_all_zones(0, NULL, &all, &count), KERN_SUCCESS);
    ck_assert_uint_eq(count, 1);
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
}
END_TEST

/* ---- allocation functions ---- */

START_TEST(test_zone_allocation_functions)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);

    char *m = malloc_zone_malloc(z, 100);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq((uintptr_t)m & 15, 0);
    ck_assert_uint_eq(malloc_size(m), 112);
    ck_assert_ptr_eq(malloc_zone_from_ptr(m), z);

    for (int round = 0; round < 3; round++) {
        size_t counts[] = {10, 1000, 3000};
        for (int k = 0; k < 3; k++) {
            char *c = malloc_zone_calloc(z, counts[k], 100);
            ck_assert_ptr_nonnull(c);
            ck_assert_ptr_eq(malloc_zone_from_ptr(c), z);
            ck_assert(is_all_zero(c, counts[k] * 100));
            memset(c, 0xff, counts[k] * 100);
            malloc_zone_free(z, c);
        }
    }
    errno = 0;
    ck_assert_ptr_null(malloc_zone_calloc(z, launder_size(SIZE_MAX), 16));
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(malloc_zone_malloc(z, launder_size(SIZE_MAX)));
    ck_assert_int_eq(errno, ENOMEM);

    size_t vsizes[] = {1, 4096, 5000, 200000};
    for (int k = 0; k < 4; k++) {
        void *v = malloc_zone_valloc(z, vsizes[k]);
        ck_assert_ptr_nonnull(v);
        ck_assert_uint_eq((uintptr_t)v & (PAGE - 1), 0);
        ck_assert_ptr_eq(malloc_zone_from_ptr(v), z);
        ck_assert_uint_ge(malloc_size(v), vsizes[k]);
        malloc_zone_free(z, v);
    }

    for (size_t alignment = 8; alignment <= 2 * MiB; alignment <<= 1) {
        void *a = malloc_zone_memalign(z, alignment, 100);
        ck_assert_ptr_nonnull(a);
        ck_assert_uint_eq((uintptr_t)a & (alignment - 1), 0);
        ck_assert_ptr_eq(malloc_zone_from_ptr(a), z);
        ck_assert_uint_ge(malloc_size(a), 100);
        malloc_zone_free(z, a);
    }
    size_t bad_alignments[] = {0, 1, 2, 4, 3, 24, 100};
    for (int k = 0; k < 7; k++) {
        errno = 0;
        ck_assert_ptr_null(malloc_zone_memalign(z, launder_size(bad_alignments[k]), 64));
        ck_assert_int_eq(errno, EINVAL);
    }

    /* realloc stays in the zone across every class. */
    size_t chain[] = {100, 1000, 2000, 130000, 140000, 3 * MiB, 1 * MiB, 100, 10};
    char *r = malloc_zone_realloc(z, NULL, chain[0]);
    ck_assert_ptr_nonnull(r);
    fill_pattern(r, chain[0], 0);
    for (int k = 1; k < 9; k++) {
        r = malloc_zone_realloc(z, r, chain[k]);
        ck_assert_ptr_nonnull(r);
        ck_assert_ptr_eq(malloc_zone_from_ptr(r), z);
        size_t kept = chain[k] < chain[k - 1] ? chain[k] : chain[k - 1];
        ck_assert(check_pattern(r, kept, (unsigned)k - 1));
        fill_pattern(r, chain[k], (unsigned)k);
    }
    /* Plain realloc and free find the zone of a zone's block. */
    r = realloc(r, 5000);
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_eq(malloc_zone_from_ptr(r), z);
    ck_assert(check_pattern(r, 10, 8));
    free(r);
    ck_assert_uint_eq(malloc_size(r), 0);

    malloc_zone_free(z, m);
    ck_assert_uint_eq(malloc_size(m), 0);
    malloc_zone_free(z, NULL);

    /* free_definite_size frees. */
    void *d = malloc_zone_malloc(z, 300);
    z->free_definite_size(z, d, 300);
    ck_assert_uint_eq(malloc_size(d), 0);

    malloc_statistics_t stats;
    malloc_zone_statistics(z, &stats);
    ck_assert_uint_eq(stats.blocks_in_use, 0);
    ck_assert_uint_eq(stats.size_in_use, 0);
    ck_assert_int_eq(malloc_zone_check(z), 1);
    malloc_destroy_zone(z);
}
END_TEST

START_TEST(test_batch_malloc_free)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    size_t sizes[] = {1, 48, 1024, 4000, 131072, 140000};
    for (int k = 0; k < 6; k++) {
        enum { N = 300 };
        void *blocks[N];
        unsigned made = malloc_zone_batch_malloc(z, sizes[k], blocks, N);
        ck_assert_uint_gt(made, 0);
        ck_assert_uint_le(made, N);
        for (unsigned i = 0; i < made; i++) {
            ck_assert_ptr_nonnull(blocks[i]);
            ck_assert_ptr_eq(malloc_zone_from_ptr(blocks[i]), z);
            ck_assert_uint_eq(malloc_size(blocks[i]), malloc_good_size(sizes[k]));
            memset(blocks[i], (int)i, sizes[k]);
            for (unsigned j = 0; j < i; j++)
                ck_assert_ptr_ne(blocks[i], blocks[j]);
        }
        malloc_statistics_t stats;
        malloc_zone_statistics(z, &stats);
        ck_assert_uint_eq(stats.blocks_in_use, made);
        ck_assert_uint_eq(stats.size_in_use, made * malloc_good_size(sizes[k]));
        malloc_zone_batch_free(z, blocks, made);
        malloc_zone_statistics(z, &stats);
        ck_assert_uint_eq(stats.blocks_in_use, 0);
        ck_assert_uint_eq(stats.size_in_use, 0);
    }
    ck_assert_int_eq(malloc_zone_check(z), 1);
    malloc_destroy_zone(z);
}
END_TEST

/* ---- a zone written by the program ---- */

enum { TOY_BLOCKS = 32, TOY_BLOCK_SIZE = 128 };
static _Alignas(16) char toy_arena[TOY_BLOCKS][TOY_BLOCK_SIZE];
static int toy_live[TOY_BLOCKS];
static unsigned toy_frees, toy_mallocs;

static long toy_index(const void *p)
{
    uintptr_t a = (uintptr_t)p, base = (uintptr_t)toy_arena;
    if (a < base || a >= base + sizeof(toy_arena) || (a - base) % TOY_BLOCK_SIZE)
        return -1;
    return (long)((a - base) / TOY_BLOCK_SIZE);
}
static size_t toy_size(malloc_zone_t *zone, const void *p)
{
    long i = toy_index(p);
    return i >= 0 && toy_live[i] ? TOY_BLOCK_SIZE : 0;
}
static void *toy_malloc(malloc_zone_t *zone, size_t size)
{
    if (size > TOY_BLOCK_SIZE)
        return NULL;
    for (int i = 0; i < TOY_BLOCKS; i++)
        if (!toy_live[i]) {
            toy_live[i] = 1;
            toy_mallocs++;
            return toy_arena[i];
        }
    return NULL;
}
static void *toy_calloc(malloc_zone_t *zone, size_t n, size_t size)
{
    void *p = n && size <= TOY_BLOCK_SIZE / n ? toy_malloc(zone, n * size) : NULL;
    if (p)
        memset(p, 0, TOY_BLOCK_SIZE);
    return p;
}
static void *toy_valloc(malloc_zone_t *zone, size_t size) { return NULL; }
static void toy_free(malloc_zone_t *zone, void *p)
{
    long i = toy_index(p);
    if (i >= 0) {
        toy_live[i] = 0;
        toy_frees++;
    }
}
static void *toy_realloc(malloc_zone_t *zone, void *p, size_t size)
{
    return size <= TOY_BLOCK_SIZE ? p : NULL;
}
static void toy_destroy(malloc_zone_t *zone) {}
static size_t toy_good_size(malloc_zone_t *zone, size_t size) { return TOY_BLOCK_SIZE; }
static boolean_t toy_check(malloc_zone_t *zone) { return 1; }
static void toy_print(malloc_zone_t *zone, boolean_t verbose) {}
static void toy_log(malloc_zone_t *zone, void *address) {}
static void toy_lock(malloc_zone_t *zone) {}
static void toy_statistics(malloc_zone_t *zone, malloc_statistics_t *stats)
{
    memset(stats, 0, sizeof(*stats));
    for (int i = 0; i < TOY_BLOCKS; i++)
        if (toy_live[i]) {
            stats->blocks_in_use++;
            stats->size_in_use += TOY_BLOCK_SIZE;
        }
    stats->size_allocated = sizeof(toy_arena);
    stats->max_size_in_use = sizeof(toy_arena);
}
static boolean_t toy_zone_locked(malloc_zone_t *zone) { return 0; }

static malloc_introspection_t toy_introspect = {
    .good_size = toy_good_size,
    .check = toy_check,
    .print = toy_print,
    .log = toy_log,
    .force_lock = toy_lock,
    .force_unlock = toy_lock,
    .statistics = toy_statistics,
    .zone_locked = toy_zone_locked,
};
static malloc_zone_t toy_zone = {
    .size = toy_size,
    .malloc = toy_malloc,
    .calloc = toy_calloc,
    .valloc = toy_valloc,
    .free = toy_free,
    .realloc = toy_realloc,
    .destroy = toy_destroy,
    .zone_name = "ToyZone",
    .introspect = &toy_introspect,
    .version = 4,
};

START_TEST(test_register_unregister)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    ck_assert(zone_is_registered(z));
    ck_assert(zone_is_registered(malloc_default_zone()));
    malloc_zone_unregister(z);
    ck_assert(!zone_is_registered(z));
    malloc_zone_register(z);
    malloc_zone_register(z); /* twice: listed once */
    vm_address_t *zones;
    unsigned count, seen = 0;
    ck_assert_int_eq(malloc_get_all_zones(mach_task_self(), NULL, &zones, &count),
                     KERN_SUCCESS);
    for (unsigned i = 0; i < count; i++)
        seen += zones[i] == (vm_address_t)z;
    ck_assert_uint_eq(seen, 1);
    malloc_destroy_zone(z);
    ck_assert(!zone_is_registered(z));

    /* A zone of the program's own: free() and malloc_size() ask it. */
    malloc_zone_register(&toy_zone);
    ck_assert(zone_is_registered(&toy_zone));
    void *p = malloc_zone_malloc(&toy_zone, 100);
    ck_assert_ptr_eq(p, toy_arena[0]);
    ck_assert_uint_eq(toy_mallocs, 1);
    ck_assert_ptr_eq(malloc_zone_from_ptr(p), &toy_zone);
    ck_assert_uint_eq(malloc_size(p), TOY_BLOCK_SIZE);
    ck_assert_uint_eq(malloc_usable_size(p), TOY_BLOCK_SIZE);
    ck_assert_ptr_null(malloc_zone_from_ptr(toy_arena[1]));
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
    malloc_statistics_t all, toy;
    malloc_zone_statistics(&toy_zone, &toy);
    ck_assert_uint_eq(toy.blocks_in_use, 1);
    malloc_zone_statistics(NULL, &all);
    ck_assert_uint_ge(all.blocks_in_use, 1);
    /* malloc_zone_memalign refuses a zone older than version 5. */
    errno = 0;
    ck_assert_ptr_null(malloc_zone_memalign(&toy_zone, 64, 10));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(scalable_zone_statistics(&toy_zone, &toy, 0), 0);
    free(p);
    ck_assert_uint_eq(toy_frees, 1);
    ck_assert_int_eq(toy_live[0], 0);
    malloc_zone_unregister(&toy_zone);
    ck_assert(!zone_is_registered(&toy_zone));
}
END_TEST

START_TEST(test_zone_names)
{
    ck_assert_str_eq(malloc_get_zone_name(malloc_default_zone()), "DefaultMallocZone");
    ck_assert_str_eq(malloc_default_zone()->zone_name, "DefaultMallocZone");
    malloc_zone_t *z = malloc_create_zone(0, 0);
    char name[32];
    strcpy(name, "my zone");
    malloc_set_zone_name(z, name);
    ck_assert_str_eq(malloc_get_zone_name(z), "my zone");
    ck_assert_ptr_ne(malloc_get_zone_name(z), name); /* copied */
    strcpy(name, "changed");
    ck_assert_str_eq(malloc_get_zone_name(z), "my zone");
    ck_assert_str_eq(z->zone_name, "my zone");
    malloc_set_zone_name(z, "second name");
    ck_assert_str_eq(malloc_get_zone_name(z), "second name");
    malloc_set_zone_name(z, NULL);
    ck_assert_ptr_null(malloc_get_zone_name(z));
    malloc_destroy_zone(z);
}
END_TEST

/* ---- sizes ---- */

START_TEST(test_good_size_table)
{
    static const size_t table[][2] = {
        {0, 16},           {1, 16},           {16, 16},          {17, 32},
        {100, 112},        {1008, 1008},      {1009, 1024},      {1024, 1024},
        {1025, 1536},      {1536, 1536},      {1537, 2048},      {5000, 5120},
        {8192, 8192},      {8193, 9216},      {9216, 9216},      {9217, 10240},
        {16384, 16384},    {16385, 18432},    {65537, 73728},    {114688, 114688},
        {114689, 122880},  {122881, 131072},  {131072, 131072},  {131073, 135168},
        {200000, 200704},  {1048576, 1048576}, {1048577, 1052672},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        ck_assert_msg(malloc_good_size(table[i][0]) == table[i][1],
                      "malloc_good_size(%zu) = %zu, want %zu", table[i][0],
                      malloc_good_size(table[i][0]), table[i][1]);
        malloc_zone_t *def = malloc_default_zone();
        ck_assert_uint_eq(def->introspect->good_size(def, table[i][0]), table[i][1]);
    }
    /* Every tiny and small request gets exactly its good size. */
    malloc_zone_t *z = malloc_create_zone(0, 0);
    for (size_t size = 1; size <= 128 * KiB; size += (size < 2048 ? 1 : 509)) {
        void *p = malloc_zone_malloc(z, size);
        void *q = malloc(size);
        ck_assert_uint_eq(malloc_size(p), malloc_good_size(size));
        ck_assert_uint_eq(malloc_size(q), malloc_good_size(size));
        ck_assert_uint_ge(malloc_good_size(size), size);
        /* 512-byte steps up to 8 KiB, then eight steps per doubling. */
        size_t waste = malloc_good_size(size) - size;
        if (size > 1024)
            ck_assert_msg(waste < (size <= 8 * KiB ? 512 : (size - 1) / 8 + 1),
                          "malloc_good_size(%zu) wastes %zu bytes", size, waste);
        malloc_zone_free(z, p);
        free(q);
    }
    malloc_destroy_zone(z);
    ck_assert_uint_eq(malloc_size(NULL), 0);
    /* Every size up to 128 KiB: classes in order, each its own good size. */
    for (size_t size = 1, last = 0; size <= 128 * KiB; size++) {
        size_t good = malloc_good_size(size);
        ck_assert_msg(good >= size && good >= last && malloc_good_size(good) == good,
                      "malloc_good_size(%zu) = %zu after %zu", size, good, last);
        last = good;
    }
}
END_TEST

/* ---- statistics ---- */

static const size_t stats_sizes[] = {
    1, 16, 17, 100, 1024,              /* tiny */
    1025, 5000, 131072,                /* small */
    131073, 500000, 16 * MiB - 4096,   /* large */
    16 * MiB, 20 * MiB + 1,            /* huge: >= 16 MiB */
};
#define N_STATS (sizeof(stats_sizes) / sizeof(stats_sizes[0]))

static unsigned kind_of(size_t size)
{
    return size <= 1024 ? 0 : size <= 128 * KiB ? 1 : size < 16 * MiB ? 2 : 3;
}

START_TEST(test_statistics_exact)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    malloc_statistics_t stats;
    malloc_zone_statistics(z, &stats);
    ck_assert_uint_eq(stats.blocks_in_use, 0);
    ck_assert_uint_eq(stats.size_in_use, 0);

    enum { COPIES = 3 };
    void *blocks[COPIES][N_STATS];
    unsigned expect_blocks = 0;
    size_t expect_bytes = 0;
    for (int c = 0; c < COPIES; c++)
        for (size_t i = 0; i < N_STATS; i++) {
            blocks[c][i] = malloc_zone_malloc(z, stats_sizes[i]);
            ck_assert_ptr_nonnull(blocks[c][i]);
            expect_blocks++;
            expect_bytes += malloc_good_size(stats_sizes[i]);
        }
    malloc_zone_statistics(z, &stats);
    ck_assert_uint_eq(stats.blocks_in_use, expect_blocks);
    ck_assert_uint_eq(stats.size_in_use, expect_bytes);
    ck_assert_uint_ge(stats.size_allocated, stats.size_in_use);
    ck_assert_uint_ge(stats.max_size_in_use, stats.size_allocated);

    /* Per kind. */
    malloc_statistics_t kinds[4], sum = {0};
    for (unsigned k = 0; k < 4; k++) {
        ck_assert_int_eq(scalable_zone_statistics(z, &kinds[k], k), 1);
        unsigned nb = 0;
        size_t bytes = 0;
        for (size_t i = 0; i < N_STATS; i++)
            if (kind_of(stats_sizes[i]) == k) {
                nb += COPIES;
                bytes += COPIES * malloc_good_size(stats_sizes[i]);
            }
        ck_assert_msg(kinds[k].blocks_in_use == nb,
                      "kind %u: %u blocks, want %u", k, kinds[k].blocks_in_use, nb);
        ck_assert_msg(kinds[k].size_in_use == bytes,
                      "kind %u: %zu bytes, want %zu", k, kinds[k].size_in_use, bytes);
        ck_assert_uint_ge(kinds[k].size_allocated, kinds[k].size_in_use);
        sum.blocks_in_use += kinds[k].blocks_in_use;
        sum.size_in_use += kinds[k].size_in_use;
    }
    ck_assert_uint_eq(sum.blocks_in_use, stats.blocks_in_use);
    ck_assert_uint_eq(sum.size_in_use, stats.size_in_use);
    malloc_statistics_t junk;
    ck_assert_int_eq(scalable_zone_statistics(z, &junk, 4), 0);
    ck_assert_int_eq(scalable_zone_statistics(z, &junk, 100), 0);

    /* Free the middle copy: exactly a third goes away. */
    for (size_t i = 0; i < N_STATS; i++)
        malloc_zone_free(z, blocks[1][i]);
    malloc_zone_statistics(z, &stats);
    ck_assert_uint_eq(stats.blocks_in_use, expect_blocks / 3 * 2);
    ck_assert_uint_eq(stats.size_in_use, expect_bytes / 3 * 2);
    /* The null zone sums all zones. */
    malloc_statistics_t all, def;
    malloc_zone_statistics(malloc_default_zone(), &def);
    malloc_zone_statistics(NULL, &all);
    ck_assert_uint_eq(all.blocks_in_use, def.blocks_in_use + stats.blocks_in_use);
    ck_assert_uint_eq(all.size_in_use, def.size_in_use + stats.size_in_use);

    for (size_t i = 0; i < N_STATS; i++) {
        malloc_zone_free(z, blocks[0][i]);
        malloc_zone_free(z, blocks[2][i]);
    }
    malloc_zone_statistics(z, &stats);
    ck_assert_uint_eq(stats.blocks_in_use, 0);
    ck_assert_uint_eq(stats.size_in_use, 0);
    for (unsigned k = 0; k < 4; k++) {
        ck_assert_int_eq(scalable_zone_statistics(z, &kinds[k], k), 1);
        ck_assert_uint_eq(kinds[k].blocks_in_use, 0);
        ck_assert_uint_eq(kinds[k].size_in_use, 0);
    }
    malloc_destroy_zone(z);
}
END_TEST

/* The default zone counts what the program holds, not what its thread
 * caches hold. */
START_TEST(test_default_zone_statistics_track_malloc)
{
    malloc_zone_t *def = malloc_default_zone();
    malloc_statistics_t before, during, after;
    enum { N = 2000 };
    static void *blocks[N];
    malloc_zone_statistics(def, &before);
    size_t bytes = 0;
    for (int i = 0; i < N; i++) {
        size_t size = (size_t)(i % 7 == 6 ? 200000 : i % 3 == 2 ? 3000 + i : 1 + i % 1000);
        blocks[i] = malloc(size);
        bytes += malloc_size(blocks[i]);
    }
    malloc_zone_statistics(def, &during);
    ck_assert_uint_eq(during.blocks_in_use, before.blocks_in_use + N);
    ck_assert_uint_eq(during.size_in_use, before.size_in_use + bytes);
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    malloc_zone_statistics(def, &after);
    ck_assert_uint_eq(after.blocks_in_use, before.blocks_in_use);
    ck_assert_uint_eq(after.size_in_use, before.size_in_use);

    struct mstats m = mstats();
    malloc_statistics_t all;
    malloc_zone_statistics(NULL, &all);
    ck_assert_uint_eq(m.chunks_used, all.blocks_in_use);
    ck_assert_uint_eq(m.bytes_used, all.size_in_use);
    ck_assert_uint_eq(m.bytes_total, all.size_allocated);
    ck_assert_uint_eq(m.bytes_free, all.size_allocated - all.size_in_use);
    void *extra[100];
    for (int i = 0; i < 100; i++)
        extra[i] = malloc(64);
    struct mstats m2 = mstats();
    ck_assert_uint_eq(m2.chunks_used, m.chunks_used + 100);
    ck_assert_uint_eq(m2.bytes_used, m.bytes_used + 100 * 64);
    for (int i = 0; i < 100; i++)
        free(extra[i]);
}
END_TEST

/* ---- check, print, log ---- */

START_TEST(test_zone_check)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    ck_assert_int_eq(malloc_zone_check(z), 1);
    void *blocks[500];
    for (int i = 0; i < 500; i++)
        blocks[i] = malloc_zone_malloc(z, (size_t)(i * 301 % 150000 + 1));
    ck_assert_int_eq(malloc_zone_check(z), 1);
    for (int i = 0; i < 500; i += 2)
        malloc_zone_free(z, blocks[i]);
    ck_assert_int_eq(malloc_zone_check(z), 1);
    ck_assert_int_eq(malloc_zone_check(malloc_default_zone()), 1);
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
    malloc_destroy_zone(z);
}
END_TEST

/* Metadata lives out of band: a program that writes over its blocks and
 * the free blocks between them damages data, never the zone's view. */
START_TEST(test_overflow_spares_metadata)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    enum { N = 200 };
    char *blocks[N];
    uintptr_t low = UINTPTR_MAX, high = 0;
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc_zone_malloc(z, 64);
        low = (uintptr_t)blocks[i] < low ? (uintptr_t)blocks[i] : low;
        high = (uintptr_t)blocks[i] + 64 > high ? (uintptr_t)blocks[i] + 64 : high;
    }
    for (int i = 0; i < N; i += 2)
        malloc_zone_free(z, blocks[i]);
    /* All in one run: overwrite the whole span, freed blocks included. */
    ck_assert_uint_lt(high - low, 64 * KiB);
    memset((void *)low, 0xff, high - low);
    ck_assert_int_eq(malloc_zone_check(z), 1);
    malloc_statistics_t stats;
    malloc_zone_statistics(z, &stats);
    ck_assert_uint_eq(stats.blocks_in_use, N / 2);
    ck_assert_uint_eq(stats.size_in_use, N / 2 * 64);
    char *again[N / 2];
    for (int i = 0; i < N / 2; i++) {
        again[i] = malloc_zone_malloc(z, 64);
        for (int k = 1; k < N; k += 2)
            ck_assert_ptr_ne(again[i], blocks[k]);
        for (int k = 0; k < i; k++)
            ck_assert_ptr_ne(again[i], again[k]);
    }
    for (int i = 1; i < N; i += 2)
        malloc_zone_free(z, blocks[i]);
    for (int i = 0; i < N / 2; i++)
        malloc_zone_free(z, again[i]);
    malloc_zone_statistics(z, &stats);
    ck_assert_uint_eq(stats.blocks_in_use, 0);
    ck_assert_int_eq(malloc_zone_check(z), 1);
    malloc_destroy_zone(z);
}
END_TEST

static char captured[1 << 16];

START_TEST(test_zone_print)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    malloc_set_zone_name(z, "PrintMe");
    void *t[3], *s, *l;
    for (int i = 0; i < 3; i++)
        t[i] = malloc_zone_malloc(z, 16);
    s = malloc_zone_malloc(z, 2000);
    l = malloc_zone_malloc(z, 300000);

    struct capture cap;
    capture_begin(&cap);
    malloc_zone_print(z, 0);
    capture_end(&cap, captured, sizeof(captured));
    char header[128];
    snprintf(header, sizeof(header), "Scalable zone %p \"PrintMe\"\n", (void *)z);
    ck_assert_msg(strncmp(captured, header, strlen(header)) == 0,
                  "print output starts with [%s]", captured);
    ck_assert_uint_eq(count_lines(captured), 5);
    ck_assert_uint_eq(count_lines_with(captured, "3 blocks, 48 bytes in use"), 1);
    ck_assert_uint_eq(count_lines_with(captured, "1 blocks, 2048 bytes in use"), 1);
    ck_assert_uint_eq(count_lines_with(captured, "1 blocks, 303104 bytes in use"), 1);
    ck_assert_uint_eq(count_lines_with(captured, "0 blocks, 0 bytes in use"), 1);
    ck_assert(strstr(captured, "tiny") && strstr(captured, "small") &&
              strstr(captured, "large") && strstr(captured, "huge"));

    capture_begin(&cap);
    malloc_zone_print(z, 1);
    capture_end(&cap, captured, sizeof(captured));
    ck_assert(strncmp(captured, header, strlen(header)) == 0);
    ck_assert_uint_gt(count_lines(captured), 5);
    ck_assert_uint_eq(count_lines_with(captured, "16-byte blocks, 3 of"), 1);
    ck_assert_uint_eq(count_lines_with(captured, "2048-byte blocks, 1 of"), 1);

    /* A null zone prints every zone. */
    capture_begin(&cap);
    malloc_zone_print(NULL, 0);
    capture_end(&cap, captured, sizeof(captured));
    ck_assert_ptr_nonnull(strstr(captured, header));
    ck_assert_ptr_nonnull(strstr(captured, "\"DefaultMallocZone\""));
    ck_assert_uint_eq(count_lines_with(captured, "Scalable zone"), 2);

    for (int i = 0; i < 3; i++)
        malloc_zone_free(z, t[i]);
    malloc_zone_free(z, s);
    malloc_zone_free(z, l);
    malloc_destroy_zone(z);
}
END_TEST

START_TEST(test_print_ptr_info)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    malloc_set_zone_name(z, "InfoZone");
    void *blocks[] = {malloc_zone_malloc(z, 100), malloc_zone_malloc(z, 3000),
                      malloc_zone_malloc(z, 400000), malloc(50)};
    malloc_zone_t *owners[] = {z, z, z, malloc_default_zone()};
    char expected[256];
    struct capture cap;
    for (int i = 0; i < 4; i++) {
        capture_begin(&cap);
        malloc_zone_print_ptr_info(blocks[i]);
        capture_end(&cap, captured, sizeof(captured));
        snprintf(expected, sizeof(expected), "%#lx: block of %zu bytes in zone %#lx \"%s\"\n",
                 (unsigned long)blocks[i], malloc_size(blocks[i]),
                 (unsigned long)owners[i], owners[i]->zone_name);
        ck_assert_str_eq(captured, expected);
    }
    char local[16];
    void *nowhere[] = {local, (char *)blocks[0] + 16, global_buffer};
    for (int i = 0; i < 3; i++) {
        capture_begin(&cap);
        malloc_zone_print_ptr_info(nowhere[i]);
        capture_end(&cap, captured, sizeof(captured));
        snprintf(expected, sizeof(expected),
                 "%#lx: not the start of a block in use in any zone\n",
                 (unsigned long)nowhere[i]);
        ck_assert_str_eq(captured, expected);
    }
    free(blocks[3]);
    malloc_destroy_zone(z);
}
END_TEST

START_TEST(test_zone_log)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    void *p = malloc_zone_malloc(z, 40);
    malloc_statistics_t before, after;
    malloc_zone_statistics(z, &before);
    struct capture cap;
    capture_begin(&cap);
    malloc_zone_log(z, p);
    malloc_zone_log(z, NULL);
    malloc_zone_log(malloc_default_zone(), p);
    malloc_zone_log(NULL, p);
    capture_end(&cap, captured, sizeof(captured));
    malloc_zone_statistics(z, &after);
    ck_assert_uint_eq(after.blocks_in_use, before.blocks_in_use);
    ck_assert_uint_eq(after.size_in_use, before.size_in_use);
    ck_assert_uint_eq(malloc_size(p), 48);
    ck_assert_uint_eq(count_lines_with(captured, "malloc: ***"), 0);
    malloc_destroy_zone(z);
}
END_TEST

/* ---- pressure relief ---- */

static bool page_is_resident(const void *address)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned char state = 0;
    void *start = (void *)((uintptr_t)address & ~(uintptr_t)(page - 1));
    ck_assert_int_eq(mincore(start, (size_t)page, &state), 0);
    return state & 1;
}

static double seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* `count` blocks of `size` bytes, each written, as a program building a
 * structure would. */
static void build_blocks(malloc_zone_t *zone, void **blocks, int count,
                         size_t size)
{
    for (int i = 0; i < count; i++) {
        blocks[i] = malloc_zone_malloc(zone, size);
        ck_assert_ptr_nonnull(blocks[i]);
        memset(blocks[i], 0x3c, size);
    }
}

static void free_blocks(malloc_zone_t *zone, void **blocks, int count)
{
    for (int i = 0; i < count; i++)
        malloc_zone_free(zone, blocks[i]);
}

/* Runs that empty keep their pages while the heap does not grow, so a
 * program that frees a structure and builds it again does not fault
 * them in again.  When the heap grows elsewhere, as many kept pages go
 * back as it takes fresh ones: resident memory stays the same.  Kept
 * pages also all go back when a run empties a second after they last
 * all did: the checks of what was kept hold only on a run faster than
 * that. */
START_TEST(test_emptied_runs_keep_their_pages_until_the_heap_grows)
{
    double start = seconds_now();
    malloc_zone_t *z = malloc_create_zone(0, 0);
    enum { BLOCKS = 40000 }; /* 2.5 MB of 64-byte blocks */
    static void *blocks[BLOCKS];
    build_blocks(z, blocks, BLOCKS, 64);
    void *probe = blocks[BLOCKS / 2];
    free_blocks(z, blocks, BLOCKS);
    bool kept = page_is_resident(probe);
    size_t before = resident_bytes();
    build_blocks(z, blocks, BLOCKS, 64);
    size_t after = resident_bytes();
    free_blocks(z, blocks, BLOCKS);
    bool kept_again = page_is_resident(probe);
    if (seconds_now() - start < 0.9) {
        ck_assert_msg(kept, "an emptied run's page went back to the kernel "
                            "at once");
        ck_assert_msg(after < before + MiB,
                      "building the blocks again took %zu more bytes",
                      after - before);
        ck_assert(kept_again);
    }
    void *large = malloc_zone_malloc(z, 8 * MiB);
    ck_assert_ptr_nonnull(large);
    ck_assert_msg(!page_is_resident(probe),
                  "a new 8 MiB large block was mapped while 2.5 MB of "
                  "emptied runs kept their pages");
    ck_assert_int_eq(malloc_zone_check(z), 1);

    /* Again, and this time the heap grows by 1 MiB of small runs, in a
     * region of their own: 1 MiB of the 2.5 MB kept goes back, no more
     * and no less. */
    build_blocks(z, blocks, BLOCKS, 64);
    free_blocks(z, blocks, BLOCKS);
    before = resident_bytes();
    enum { SMALL = 16 }; /* two runs of eight 60 KiB blocks */
    void *small[SMALL];
    build_blocks(z, small, SMALL, 60000);
    after = resident_bytes();
    if (seconds_now() - start < 0.9) {
        long change = (long)after - (long)before;
        ck_assert_msg(change > -(long)MiB / 2 && change < (long)MiB / 2,
                      "growing by 1 MiB of fresh runs changed the resident "
                      "set by %ld bytes with 2.5 MB kept", change);
    }
    free_blocks(z, small, SMALL);
    ck_assert_int_eq(malloc_zone_check(z), 1);
    malloc_destroy_zone(z);
}
END_TEST

static long minor_faults(void)
{
    struct rusage usage;
    ck_assert_int_eq(getrusage(RUSAGE_SELF, &usage), 0);
    return usage.ru_minflt;
}

/* A new run of another class takes the pages an emptied run kept: the
 * blocks of the new class are built without faulting them in. */
START_TEST(test_new_runs_take_pages_that_other_classes_kept)
{
    double start = seconds_now();
    malloc_zone_t *z = malloc_create_zone(0, 0);
    enum { BLOCKS = 40000 }; /* 2.5 MB of 64-byte blocks, then of 48 */
    static void *blocks[BLOCKS];
    build_blocks(z, blocks, BLOCKS, 64);
    free_blocks(z, blocks, BLOCKS);
    long faults_before = minor_faults();
    build_blocks(z, blocks, BLOCKS, 48);
    long faults = minor_faults() - faults_before;
    /* Fresh pages would fault about 470 times (1.9 MB). */
    if (seconds_now() - start < 0.9)
        ck_assert_msg(faults < 150,
                      "building 1.9 MB of 48-byte blocks on pages 64-byte "
                      "blocks kept faulted %ld times", faults);
    free_blocks(z, blocks, BLOCKS);
    ck_assert_int_eq(malloc_zone_check(z), 1);
    malloc_destroy_zone(z);
}
END_TEST

/* A freed large block's pages stay where they are for the next one: a
 * cached range lends its head, two freed ranges that touch join, and
 * the joined range serves a block as big as both without a page fault.
 * calloc's block from the cache reads zero. */
START_TEST(test_large_ranges_are_reused_in_place)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    const size_t whole = 2 * MiB, part = 768 * KiB;
    char *x = malloc_zone_malloc(z, whole);
    ck_assert_ptr_nonnull(x);
    memset(x, 0x11, whole);
    malloc_zone_free(z, x);
    char *head = malloc_zone_malloc(z, part);
    ck_assert_ptr_eq(head, x);
    char *rest = malloc_zone_malloc(z, part); /* the rest, 1.25 MiB, whole */
    ck_assert_ptr_eq(rest, x + part);
    ck_assert_uint_eq(malloc_size(rest), whole - part);
    malloc_zone_free(z, head);
    malloc_zone_free(z, rest);
    long faults_before = minor_faults();
    char *joined = malloc_zone_malloc(z, whole);
    ck_assert_ptr_eq(joined, x);
    memset(joined, 0x22, whole);
    long faults = minor_faults() - faults_before;
    ck_assert_msg(faults < 16, "reusing 2 MiB of cached pages faulted %ld times",
                  faults);
    malloc_zone_free(z, joined);
    unsigned char *zeroed = malloc_zone_calloc(z, 1, whole);
    ck_assert_ptr_eq(zeroed, x);
    for (size_t i = 0; i < whole; i += 4093)
        ck_assert_uint_eq(zeroed[i], 0);
    ck_assert_uint_eq(zeroed[whole - 1], 0);
    malloc_zone_free(z, zeroed);
    ck_assert_int_eq(malloc_zone_check(z), 1);
    malloc_destroy_zone(z);
}
END_TEST

START_TEST(test_pressure_relief_created_zone)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    enum { LARGE = 16, TINY = 20000 };
    void *large[LARGE];
    static void *tiny[TINY];
    for (int i = 0; i < LARGE; i++) {
        large[i] = malloc_zone_malloc(z, 2 * MiB);
        memset(large[i], 0x3c, 2 * MiB);
    }
    for (int i = 0; i < TINY; i++) {
        tiny[i] = malloc_zone_malloc(z, 64);
        memset(tiny[i], 0x3c, 64);
    }
    size_t rss_full = resident_bytes();
    for (int i = 0; i < LARGE; i++)
        malloc_zone_free(z, large[i]);
    for (int i = 0; i < TINY; i++)
        malloc_zone_free(z, tiny[i]);
    size_t released = malloc_zone_pressure_relief(z, 0);
    size_t rss_relieved = resident_bytes();
    /* Whatever the caches kept (policy), relief returns it, and in the
     * end the memory is back with the kernel. */
    ck_assert_msg(released > 0, "pressure relief released %zu bytes", released);
    ck_assert_msg(rss_relieved + 24 * MiB <= rss_full,
                  "RSS %zu -> %zu after relief", rss_full, rss_relieved);
    /* Nothing left to give back: a second call reports nothing. */
    size_t second = malloc_zone_pressure_relief(z, 0);
    ck_assert_msg(second == 0,
                  "a second pressure relief, with nothing freed since the first, "
                  "claims %zu more bytes (the first claimed %zu)", second, released);
    /* The zone still works. */
    void *p = malloc_zone_malloc(z, 64), *q = malloc_zone_malloc(z, 2 * MiB);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(q);
    memset(q, 1, 2 * MiB);
    ck_assert_int_eq(malloc_zone_check(z), 1);
    malloc_destroy_zone(z);
}
END_TEST

START_TEST(test_pressure_relief_default_zone)
{
    enum { LARGE = 12 };
    void *large[LARGE];
    for (int i = 0; i < LARGE; i++) {
        large[i] = malloc(1 * MiB + 4096 * (size_t)i);
        memset(large[i], 0x3c, 1 * MiB);
    }
    void *small[400];
    for (int i = 0; i < 400; i++)
        small[i] = malloc(8000);
    size_t rss_full = resident_bytes();
    for (int i = 0; i < LARGE; i++)
        free(large[i]);
    for (int i = 0; i < 400; i++)
        free(small[i]);
    size_t released = malloc_zone_pressure_relief(malloc_default_zone(), 0);
    ck_assert_msg(released > 0, "released %zu", released);
    ck_assert_uint_le(resident_bytes() + 8 * MiB, rss_full);
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
    /* The null zone relieves every zone. */
    void *again = malloc(3 * MiB), *tiny = malloc(16);
    free(again);
    free(tiny);
    /* (No assertion in between: Check's passing assertions allocate.) */
    size_t first = malloc_zone_pressure_relief(NULL, 0);
    size_t second = malloc_zone_pressure_relief(NULL, 0);
    ck_assert_uint_gt(first, 0);
    ck_assert_msg(second == 0,
                  "a second pressure relief, with nothing freed since the first, "
                  "claims %zu more bytes (the first claimed %zu)", second, first);
    void *p = malloc(100);
    ck_assert_ptr_nonnull(p);
    free(p);
}
END_TEST

/* ---- registry and process-wide functions ---- */

START_TEST(test_get_all_zones_local)
{
    vm_address_t *zones;
    unsigned count;
    ck_assert_int_eq(malloc_get_all_zones(0, NULL, &zones, &count), KERN_SUCCESS);
    ck_assert_uint_eq(count, 1);
    ck_assert_uint_eq(zones[0], (vm_address_t)malloc_default_zone());
    malloc_zone_t *a = malloc_create_zone(0, 0), *b = malloc_create_zone(0, 0);
    ck_assert_int_eq(malloc_get_all_zones(mach_task_self(), NULL, &zones, &count),
                     KERN_SUCCESS);
    ck_assert_uint_eq(count, 3);
    int seen_default = 0, seen_a = 0, seen_b = 0;
    for (unsigned i = 0; i < count; i++) {
        seen_default += zones[i] == (vm_address_t)malloc_default_zone();
        seen_a += zones[i] == (vm_address_t)a;
        seen_b += zones[i] == (vm_address_t)b;
    }
    ck_assert(seen_default == 1 && seen_a == 1 && seen_b == 1);
    malloc_destroy_zone(a);
    ck_assert_int_eq(malloc_get_all_zones(getpid(), NULL, &zones, &count), KERN_SUCCESS);
    ck_assert_uint_eq(count, 2);
    malloc_destroy_zone(b);
    /* Another process needs a reader. */
    ck_assert_int_ne(malloc_get_all_zones(getppid(), NULL, &zones, &count), KERN_SUCCESS);
}
END_TEST

START_TEST(test_process_functions)
{
    ck_assert_int_eq(mach_task_self(), getpid());
    malloc_zone_t *def = malloc_default_zone();
    ck_assert_ptr_nonnull(def);
    ck_assert_ptr_eq(malloc_default_zone(), def);
    ck_assert_str_eq(malloc_get_zone_name(def), "DefaultMallocZone");
    ck_assert_uint_ge(def->version, 9);
    ck_assert_ptr_nonnull(def->introspect);
    ck_assert_ptr_nonnull(def->introspect->enumerator);
    ck_assert_ptr_nonnull(def->memalign);
    ck_assert_ptr_nonnull(def->pressure_relief);
    /* malloc_error_break exists, is callable and does nothing visible. */
    struct capture cap;
    capture_begin(&cap);
    malloc_error_break();
    capture_end(&cap, captured, sizeof(captured));
    ck_assert_str_eq(captured, "");
    /* The default zone cannot be destroyed: an error, and it still works. */
    capture_begin(&cap);
    malloc_destroy_zone(def);
    capture_end(&cap, captured, sizeof(captured));
    ck_assert_uint_eq(count_lines(captured), 2);
    ck_assert_uint_eq(count_lines_with(captured, "malloc: ***"), 2);
    ck_assert_uint_eq(count_lines_with(captured, "default zone cannot be destroyed"), 1);
    ck_assert_uint_eq(count_lines_with(captured, "set a breakpoint in malloc_error_break"), 1);
    ck_assert(zone_is_registered(def));
    void *p = malloc(10);
    ck_assert_ptr_eq(malloc_zone_from_ptr(p), def);
    free(p);
}
END_TEST

/* ---- introspection, on the default zone and on a created one ---- */

struct lock_probe {
    malloc_zone_t *zone;
    sem_t go, done;
    int quit;
    boolean_t locked;
};

static void *lock_probe_thread(void *opaque)
{
    struct lock_probe *probe = opaque;
    for (;;) {
        while (sem_wait(&probe->go) != 0)
            ;
        if (probe->quit)
            break;
        probe->locked = probe->zone->introspect->zone_locked(probe->zone);
        sem_post(&probe->done);
    }
    return NULL;
}

/* zone_locked as another thread sees it; allocates nothing. */
static boolean_t probe_locked(struct lock_probe *probe, malloc_zone_t *zone)
{
    probe->zone = zone;
    sem_post(&probe->go);
    while (sem_wait(&probe->done) != 0)
        ;
    return probe->locked;
}

static void introspect_zone(malloc_zone_t *zone)
{
    malloc_introspection_t *in = zone->introspect;
    ck_assert_ptr_nonnull(in);
    ck_assert_uint_eq(in->good_size(zone, 1), 16);
    ck_assert_uint_eq(in->good_size(zone, 1025), 1536);
    ck_assert_uint_eq(in->good_size(zone, 200000), 200704);
    ck_assert_int_eq(in->check(zone), 1);

    void *p = malloc_zone_malloc(zone, 24);
    malloc_statistics_t stats;
    in->statistics(zone, &stats);
    ck_assert_uint_ge(stats.blocks_in_use, 1);
    ck_assert_uint_ge(stats.size_in_use, 32);

    struct capture cap;
    capture_begin(&cap);
    in->print(zone, 0);
    capture_end(&cap, captured, sizeof(captured));
    char header[160];
    snprintf(header, sizeof(header), "Scalable zone %p \"%s\"\n", (void *)zone,
             zone->zone_name ? zone->zone_name : "");
    ck_assert(strncmp(captured, header, strlen(header)) == 0);

    struct lock_probe probe = {.zone = zone};
    sem_init(&probe.go, 0, 0);
    sem_init(&probe.done, 0, 0);
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, lock_probe_thread, &probe), 0);

    boolean_t unlocked_before = probe_locked(&probe, zone);
    in->force_lock(zone);
    boolean_t while_locked = probe_locked(&probe, zone);
    in->force_unlock(zone);
    boolean_t unlocked_after = probe_locked(&probe, zone);
    /* Re-initialising a force-locked zone's locks leaves it usable, as in a
     * fork child. */
    in->force_lock(zone);
    in->reinit_lock(zone);
    boolean_t after_reinit = probe_locked(&probe, zone);
    probe.quit = 1;
    sem_post(&probe.go);
    pthread_join(thread, NULL);

    ck_assert_int_eq(unlocked_before, 0);
    ck_assert_int_eq(while_locked, 1);
    ck_assert_int_eq(unlocked_after, 0);
    ck_assert_int_eq(after_reinit, 0);
    void *q = malloc_zone_malloc(zone, 5000);
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(in->check(zone), 1);
    malloc_zone_free(zone, q);
    malloc_zone_free(zone, p);
    ck_assert_int_eq(in->check(zone), 1);
}

START_TEST(test_introspection_default_zone)
{
    introspect_zone(malloc_default_zone());
}
END_TEST

START_TEST(test_introspection_created_zone)
{
    malloc_zone_t *z = malloc_create_zone(0, 0);
    malloc_set_zone_name(z, "Introspected");
    introspect_zone(z);
    malloc_destroy_zone(z);
}
END_TEST

/* Replacing the default zone's malloc: the classic interception. */
static void *(*saved_malloc)(malloc_zone_t *, size_t);
static unsigned intercepted;
static size_t intercepted_size;

static void *counting_malloc(malloc_zone_t *zone, size_t size)
{
    intercepted++;
    intercepted_size = size;
    return saved_malloc(zone, size);
}

START_TEST(test_intercept_default_zone_malloc)
{
    malloc_zone_t *def = malloc_default_zone();
    uintptr_t page = (uintptr_t)def & ~(PAGE - 1);
    ck_assert_int_eq(mprotect((void *)page, PAGE, PROT_READ | PROT_WRITE), 0);
    saved_malloc = def->malloc;
    def->malloc = counting_malloc;
    void *p = malloc(333);
    unsigned after_malloc = intercepted;
    size_t seen = intercepted_size;
    void *q = malloc_zone_malloc(def, 77);
    unsigned after_zone_malloc = intercepted;
    def->malloc = saved_malloc;
    void *r = malloc(10);
    __asm__ volatile("" ::: "memory"); /* malloc may have changed our counters */
    ck_assert_uint_eq(after_malloc, 1);
    ck_assert_uint_eq(seen, 333);
    ck_assert_uint_eq(after_zone_malloc, 2);
    ck_assert_uint_eq(intercepted, 2);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(malloc_size(p), 336);
    ck_assert_ptr_eq(malloc_zone_from_ptr(q), def);
    free(p);
    free(q);
    free(r);
}
END_TEST

/* Replacing the default zone's free: free() of a tiny, a small and a
 * large block goes through the replacement, even though free() has a
 * path of its own for the default zone's blocks. */
static void (*saved_free)(malloc_zone_t *, void *);
static void *intercepted_free;

static void counting_free(malloc_zone_t *zone, void *pointer)
{
    intercepted++;
    intercepted_free = pointer;
    saved_free(zone, pointer);
}

START_TEST(test_intercept_default_zone_free)
{
    static const size_t sizes[] = {24, 5000, 300000};
    malloc_zone_t *def = malloc_default_zone();
    uintptr_t page = (uintptr_t)def & ~(PAGE - 1);
    ck_assert_int_eq(mprotect((void *)page, PAGE, PROT_READ | PROT_WRITE), 0);
    for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        void *p = malloc(sizes[i]);
        ck_assert_ptr_nonnull(p);
        intercepted = 0;
        saved_free = def->free;
        def->free = counting_free;
        /* The compiler takes free() for the C library's, which leaves
         * the counters alone: they are read and written around it. */
        __asm__ volatile("" ::: "memory");
        free(p);
        __asm__ volatile("" ::: "memory");
        unsigned calls = intercepted;
        void *seen = intercepted_free;
        def->free = saved_free;
        ck_assert_msg(calls == 1, "free of %zu bytes: %u calls", sizes[i], calls);
        ck_assert_ptr_eq(seen, p);
        ck_assert_uint_eq(malloc_size(p), 0); /* and it was freed */
    }
}
END_TEST

static Suite *zone_api_suite(void)
{
    Suite *s = suite_create("zone_api");
    TCase *tc = tcase_create("zones");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_zones_are_isolated);
    tcase_add_test(tc, test_zone_from_ptr_is_exact);
    tcase_add_test(tc, test_claimed_address_after_run_release);
    tcase_add_test(tc, test_foreign_zone_calling_back);
    tcase_add_test(tc, test_destroy_releases_memory);
    tcase_add_test(tc, test_destroy_many_zones);
    tcase_add_test(tc, test_many_zones_at_once);
    tcase_add_test(tc, test_zone_allocation_functions);
    tcase_add_test(tc, test_batch_malloc_free);
    tcase_add_test(tc, test_register_unregister);
    tcase_add_test(tc, test_zone_names);
    tcase_add_test(tc, test_good_size_table);
    tcase_add_test(tc, test_get_all_zones_local);
    tcase_add_test(tc, test_process_functions);
    suite_add_tcase(s, tc);

    tc = tcase_create("introspection");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_statistics_exact);
    tcase_add_test(tc, test_default_zone_statistics_track_malloc);
    tcase_add_test(tc, test_zone_check);
    tcase_add_test(tc, test_overflow_spares_metadata);
    tcase_add_test(tc, test_zone_print);
    tcase_add_test(tc, test_print_ptr_info);
    tcase_add_test(tc, test_zone_log);
    tcase_add_test(tc, test_pressure_relief_created_zone);
    tcase_add_test(tc, test_emptied_runs_keep_their_pages_until_the_heap_grows);
    tcase_add_test(tc, test_new_runs_take_pages_that_other_classes_kept);
    tcase_add_test(tc, test_large_ranges_are_reused_in_place);
    tcase_add_test(tc, test_pressure_relief_default_zone);
    tcase_add_test(tc, test_introspection_default_zone);
    tcase_add_test(tc, test_introspection_created_zone);
    tcase_add_test(tc, test_intercept_default_zone_malloc);
    tcase_add_test(tc, test_intercept_default_zone_free);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(zone_api_suite());
}
