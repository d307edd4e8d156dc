/*
 * A program for check_enumerate_stack_ids: started with Malloc* settings,
 * it allocates tiny, small and large blocks from two call sites, and
 * many more of one tiny class (so that a run's metadata is read in more
 * than one chunk), frees one more, and then, as its first argument says,
 *   local  walks its own zones for their blocks and stack ids and prints
 *          what the walk found at each of its blocks, and totals;
 *   wait   prints where its zones and blocks are, then waits until its
 *          stdin is closed, while the test walks it from outside.
 * With "fill" as second argument it first takes enough blocks for Guard
 * Malloc to reach its map budget, so that the sites' blocks come from
 * the guard zone's fallback scalable zone.
 */
#define _GNU_SOURCE
#include "range_list.h"

#include <dlfcn.h>
#include <malloc/malloc.h>
#include <mallocdebug/stack_log.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Two of each kind: tiny, small, large (past 128 KiB), large again. */
#define SITE_BLOCKS 6
static const size_t sizes[SITE_BLOCKS] = {24, 24, 3000, 3000, 200000, 2 << 20};
/* After those, 400 blocks of 48 bytes: two chunks of 256 blocks of one
 * run.  Their sites follow the Thue-Morse sequence, which no shift
 * leaves unchanged, so reading ids at the wrong place in the run shows. */
#define MANY 400
#define MANY_SIZE 48
#define ALL_BLOCKS (2 * SITE_BLOCKS + MANY)
/* In the order they were taken: a0 b0 a1 b1 ..., then the many. */
static void *all_blocks[ALL_BLOCKS];
#define BLOCK(site, i) all_blocks[2 * (i) + (site)]
static void *freed;

static unsigned site_of(unsigned n)
{
    return n < 2 * SITE_BLOCKS ? n % 2 : (unsigned)__builtin_parity(n);
}

/* The asm keeps each call from being a tail call: the site's frame is in
 * the stack. */
__attribute__((noinline)) static void *site_a(size_t size)
{
    void *block = malloc(size);
    __asm__ volatile("" ::: "memory");
    return block;
}

__attribute__((noinline)) static void *site_b(size_t size)
{
    void *block = malloc(size);
    __asm__ volatile("" ::: "memory");
    return block;
}

/* Not inlined: the compiler would make two calls of the loop's one,
 * one per kind of size, each with its own return address. */
__attribute__((noinline)) static size_t size_of(unsigned n)
{
    return n < 2 * SITE_BLOCKS ? sizes[n / 2] : MANY_SIZE;
}

/* Both sites are called from one place (one call instruction), so all
 * blocks of a site share a stack and neighbouring blocks often have
 * different ones. */
__attribute__((noinline)) static void allocate_blocks(void)
{
    static void *(*const sites[2])(size_t) = {site_a, site_b};
    for (unsigned n = 0; n < ALL_BLOCKS; n++)
        all_blocks[n] = sites[site_of(n)](size_of(n));
    freed = malloc(100);
    free(freed);
}

static unsigned long max_map_count(void)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    unsigned long count = 65530;
    if (f) {
        if (fscanf(f, "%lu", &count) != 1)
            count = 65530;
        fclose(f);
    }
    return count;
}

/* Live guarded blocks past the guard zone's map budget (three quarters
 * of vm.max_map_count, two mappings a block), never freed.  False when
 * the limit is so high that this would take too long. */
static bool fill_map_budget(void)
{
    unsigned long limit = max_map_count();
    if (limit > 400000)
        return false;
    size_t count = limit * 3 / 4 / 2 + 64;
    for (size_t i = 0; i < count; i++)
        if (!malloc(16))
            return false;
    return true;
}

/* ---- local: the walk and what it found ---- */

enum { RANGES_MAX = 1 << 17 };
static vm_range_t in_use_store[RANGES_MAX], id_store[RANGES_MAX];
static struct range_list in_use = {in_use_store, RANGES_MAX, 0, 0};
static struct range_list ids = {id_store, RANGES_MAX, 0, 0};
static unsigned other_types;

/* Does not allocate: it runs with the zone locked. */
static void recorder(task_t task, void *context, unsigned type,
                     vm_range_t *ranges, unsigned count)
{
    if (type == MALLOC_PTR_IN_USE_RANGE_TYPE)
        range_list_add(&in_use, ranges, count);
    else if (type == MALLOCDEBUG_STACK_ID_RANGE_TYPE)
        range_list_add(&ids, ranges, count);
    else
        other_types += count;
}

static void walk_zones(void)
{
    vm_address_t *zones = NULL;
    unsigned count = 0, errors = 0;
    if (malloc_get_all_zones(mach_task_self(), NULL, &zones, &count))
        errors++;
    for (unsigned i = 0; i < count; i++) {
        malloc_zone_t *zone = (malloc_zone_t *)zones[i];
        zone->introspect->force_lock(zone);
        errors += zone->introspect->enumerator(
                      mach_task_self(), NULL,
                      MALLOC_PTR_IN_USE_RANGE_TYPE | MALLOCDEBUG_STACK_ID_RANGE_TYPE,
                      zones[i], NULL, recorder) != KERN_SUCCESS;
        zone->introspect->force_unlock(zone);
    }
    range_list_sort(&in_use);
    range_list_sort(&ids);
    printf("zones %u\nerrors %u\n", count, errors);
}

static void print_totals(void)
{
    unsigned nonzero = 0;
    for (unsigned i = 0; i < ids.count; i++)
        nonzero += ids.ranges[i].size != 0;
    printf("in_use %u\nstack_ids %u\npaired %u\nreverse %u\nnonzero %u\n"
           "other %u\ndropped %u\n",
           in_use.count, ids.count, range_list_paired(&in_use, &ids),
           range_list_paired(&ids, &in_use), nonzero, other_types,
           in_use.dropped + ids.dropped);
}

/* "site index address malloc_size", then the in-use ranges found at the
 * address and the first one's size, the stack-id ranges and the first
 * one's id. */
static void print_found(char site, unsigned index, const void *block)
{
    vm_size_t size, id;
    unsigned in_use_hits = range_list_at(&in_use, (vm_address_t)block, &size);
    unsigned id_hits = range_list_at(&ids, (vm_address_t)block, &id);
    printf("%c %u %#lx %zu %u %lu %u %lu\n", site, index,
           (unsigned long)(uintptr_t)block, malloc_size(block), in_use_hits,
           (unsigned long)size, id_hits, (unsigned long)id);
}

/* The many blocks found once, each with its site's id. */
static void print_many(void)
{
    unsigned matching = 0;
    vm_size_t size, site_id[2], id;
    for (unsigned site = 0; site < 2; site++)
        range_list_at(&ids, (vm_address_t)BLOCK(site, 0), &site_id[site]);
    for (unsigned n = 2 * SITE_BLOCKS; n < ALL_BLOCKS; n++)
        matching += range_list_at(&in_use, (vm_address_t)all_blocks[n], &size) == 1 &&
                    range_list_at(&ids, (vm_address_t)all_blocks[n], &id) == 1 &&
                    id == site_id[site_of(n)];
    printf("many %u\nmany_matching %u\n", MANY, matching);
}

static int local(void)
{
    walk_zones();
    print_totals();
    print_many();
    for (unsigned site = 0; site < 2; site++)
        for (unsigned i = 0; i < SITE_BLOCKS; i++)
            print_found(site ? 'b' : 'a', i, BLOCK(site, i));
    vm_size_t size, id;
    printf("freed %#lx %u %u\n", (unsigned long)(uintptr_t)freed,
           range_list_at(&in_use, (vm_address_t)freed, &size),
           range_list_at(&ids, (vm_address_t)freed, &id));
    return 0;
}

/* ---- wait: where things are, for a walk from outside ---- */

/* Each zone with its enumerator's offset in the library, which the test
 * maps into its own copy of the library. */
static void print_zones(void)
{
    vm_address_t *zones = NULL;
    unsigned count = 0;
    if (malloc_get_all_zones(mach_task_self(), NULL, &zones, &count))
        count = 0;
    printf("zones %u\n", count);
    for (unsigned i = 0; i < count; i++) {
        uintptr_t enumerator =
            (uintptr_t)((malloc_zone_t *)zones[i])->introspect->enumerator;
        Dl_info info;
        if (!dladdr((void *)enumerator, &info))
            info.dli_fbase = NULL;
        printf("zone %#lx %#lx\n", (unsigned long)zones[i],
               (unsigned long)(enumerator - (uintptr_t)info.dli_fbase));
    }
}

static int wait_for_walk(void)
{
    print_zones();
    for (unsigned site = 0; site < 2; site++)
        for (unsigned i = 0; i < SITE_BLOCKS; i++)
            printf("%c %u %#lx %zu\n", site ? 'b' : 'a', i,
                   (unsigned long)(uintptr_t)BLOCK(site, i),
                   malloc_size(BLOCK(site, i)));
    for (unsigned n = 2 * SITE_BLOCKS; n < ALL_BLOCKS; n++)
        printf("m %c %#lx\n", "ab"[site_of(n)],
               (unsigned long)(uintptr_t)all_blocks[n]);
    printf("freed %#lx\nready\n", (unsigned long)(uintptr_t)freed);
    fflush(stdout);
    char byte;
    while (read(STDIN_FILENO, &byte, 1) > 0)
        continue;
    return 0;
}

int main(int argc, char **argv)
{
    /* The stdout buffer, before the blocks: nothing is allocated between
     * them and the walk. */
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    printf("pid %d\n", (int)getpid());
    bool fill = argc > 2 && strcmp(argv[2], "fill") == 0;
    if (fill && !fill_map_budget()) {
        printf("fill skipped: vm.max_map_count is %lu\n", max_map_count());
        return 0;
    }
    allocate_blocks();
    if (argc > 1 && strcmp(argv[1], "local") == 0)
        return local();
    if (argc > 1 && strcmp(argv[1], "wait") == 0)
        return wait_for_walk();
    fprintf(stderr, "usage: enumerate_probe local|wait [fill]\n");
    return 2;
}
