/*
 * The scalable zone's function table: each malloc_zone_t entry point
 * picks the tiny/small path (runs and thread caches) or the large path
 * (mappings of their own).  See szone.h for the layout.
 */
#include "config.h"
#include "szone.h"
#include "os_memory.h"
#include "report.h"
#include "szone_thread_cache.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>

bool szone_find_block(struct szone *zone, const void *pointer,
                      struct szone_block *block)
{
    uintptr_t address = (uintptr_t)pointer;
    struct szone_region *region = region_map_lookup(address);
    if (region) {
        struct szone_run *run = szone_region_run_of(region, address);
        long index = szone_run_block_index(run, address);
        if (index < 0 || region->zone != zone)
            return false;
        *block = (struct szone_block){run, &run->meta->state[index], NULL,
                                      run->block_size, (unsigned)index};
        return true;
    }
    struct szone_large *large = szone_large_find(address);
    if (!large || large->zone != zone)
        return false;
    *block = (struct szone_block){NULL, NULL, large, large->size, 0};
    return true;
}

struct szone *szone_large_owner(const void *pointer)
{
    struct szone_large *large = szone_large_find((uintptr_t)pointer);
    return large ? large->zone : NULL;
}

/* The locked path: zones without thread caches, and threads whose cache
 * is not there (yet, or any more). */
void *szone_small_malloc(struct szone *zone, unsigned class_index)
{
    void *block;
    uint8_t *state;
    if (!szone_class_take_blocks(zone, 0, class_index, &block, &state, 1,
                                 BLOCK_ALLOCATED)) {
        errno = ENOMEM;
        return NULL;
    }
    return block;
}

void *szone_class_malloc(struct szone *zone, unsigned class_index)
{
    if (MD_LIKELY(zone->has_thread_caches))
        return szone_thread_cache_malloc(zone, class_index);
    return szone_small_malloc(zone, class_index);
}

static void *szone_malloc(malloc_zone_t *basic, size_t size)
{
    struct szone *zone = szone_from_zone(basic);
    if (MD_LIKELY(size <= SMALL_MAX))
        return szone_class_malloc(zone, szone_size_to_class(size));
    return szone_large_malloc(zone, size, 0, false);
}

static void *szone_calloc(malloc_zone_t *basic, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    if (total > SMALL_MAX)
        return szone_large_malloc(szone_from_zone(basic), total, 0, true);
    void *block = szone_malloc(basic, total);
    if (block)
        memset(block, 0, total);
    return block;
}

static void *szone_memalign(malloc_zone_t *basic, size_t alignment,
                            size_t size)
{
    if (alignment <= TINY_QUANTUM)
        return szone_malloc(basic, size);
    size_t rounded = MD_ALIGN_UP(size ? size : 1, alignment);
    if (rounded < size) {
        errno = ENOMEM;
        return NULL;
    }
    /* A class whose size is a multiple of the alignment yields aligned
     * blocks: runs start on RUN_PAGE_SIZE boundaries. */
    if (rounded <= SMALL_MAX && alignment <= RUN_PAGE_SIZE)
        return szone_malloc(basic, rounded);
    return szone_large_malloc(szone_from_zone(basic), size ? size : 1,
                              alignment, false);
}

static void *szone_valloc(malloc_zone_t *basic, size_t size)
{
    return szone_memalign(basic, OS_PAGE_SIZE, size);
}

/* Takes a block in use away from the program: a tiny or small block goes
 * from ALLOCATED to CACHED ("being freed"), a large one leaves the hash
 * (atomically, under its locks).  False when it was not in use.
 *
 * For tiny and small blocks the test and the store are not one atomic
 * step: an atomic one cost 6% on free-heavy workloads.  Two threads that
 * free one block at the very same moment may then both succeed; the
 * block's state stays sound (every path back to a run wants CACHED, and a
 * cached entry whose block is no longer CACHED is dropped), but the block
 * can be handed out twice before the program's race shows. */
static bool szone_claim_block(struct szone *zone, struct szone_block *block)
{
    if (block->large)
        return szone_large_claim(zone, block->large);
    if (*block->state != BLOCK_ALLOCATED)
        return false;
    *block->state = BLOCK_CACHED;
    return true;
}

bool szone_free_block(struct szone *zone, void *pointer,
                             struct szone_block *block)
{
    if (MD_UNLIKELY(!szone_claim_block(zone, block)))
        return false;
    if (block->large) {
        szone_large_free(zone, block->large);
        return true;
    }
    unsigned class_index = block->run->class_index;
    if (!zone->has_thread_caches ||
        !szone_thread_cache_free(class_index, pointer, block->state))
        szone_class_return_blocks(zone, class_index, &pointer, 1);
    return true;
}

/* The free of a block found, `announce` called first if it is in use. */
static void free_found_block(struct szone *zone, void *pointer,
                             void (*announce)(void *context), void *context)
{
    struct szone_block block;
    bool found = szone_find_block(zone, pointer, &block);
    if (announce && found && szone_block_in_use(&block))
        announce(context);
    if (MD_UNLIKELY(!found || !szone_free_block(zone, pointer, &block)))
        report_pointer_error(pointer, "pointer being freed was not allocated");
}

/* The free of `pointer`, `announce` called first if it is a block in
 * use.  A tiny or small block in use goes straight to the thread's cache
 * when there is room; anything else takes the full path.  Inlined into
 * both callers: szone_free's NULL folds the announcement away. */
static MD_ALWAYS_INLINE void free_pointer(struct szone *zone, void *pointer,
                                          void (*announce)(void *context),
                                          void *context)
{
    if (!pointer)
        return;
    const uintptr_t address = (uintptr_t)pointer;
    struct szone_region *region = region_map_lookup(address);
    unsigned class_index;
    uint8_t *state;
    if (MD_LIKELY(region && region->zone == zone && zone->has_thread_caches) &&
        (state = szone_region_block_state(region, address, &class_index)) &&
        *state == BLOCK_ALLOCATED) {
        if (announce)
            announce(context);
        /* Checked again: the announcement may have let a signal handler
         * in. */
        if (MD_LIKELY(szone_thread_cache_free_in_use(class_index, pointer,
                                                     state)))
            return;
        free_found_block(zone, pointer, NULL, NULL);
        return;
    }
    free_found_block(zone, pointer, announce, context);
}

void szone_free(malloc_zone_t *basic, void *pointer)
{
    free_pointer(szone_from_zone(basic), pointer, NULL, NULL);
}

bool szone_free_announced(malloc_zone_t *basic, void *pointer,
                          void (*announce)(void *context), void *context)
{
    if (basic->free != szone_free)
        return false;
    free_pointer(szone_from_zone(basic), pointer, announce, context);
    return true;
}

static void szone_free_definite_size(malloc_zone_t *basic, void *pointer,
                                     size_t size)
{
    szone_free(basic, pointer);
}

/* A tiny or small block is kept when the new size still uses at least
 * half of it. */
static bool szone_realloc_fits_in_place(size_t block_size, size_t size)
{
    return size <= block_size && size >= block_size / 2;
}

/* Size classes cannot grow in place, so a growing tiny or small block
 * moves with a quarter more room: a buffer grown a few bytes at a time
 * then moves a logarithmic number of times, not once per call. */
static size_t szone_realloc_target(size_t block_size, size_t size)
{
    if (size <= block_size || size > SMALL_MAX)
        return size;
    size_t roomy = size + size / 4;
    return roomy > SMALL_MAX ? SMALL_MAX : roomy;
}

static void *szone_realloc(malloc_zone_t *basic, void *pointer, size_t size)
{
    struct szone *zone = szone_from_zone(basic);
    struct szone_block block;
    if (!pointer)
        return szone_malloc(basic, size);
    if (!szone_find_block(zone, pointer, &block) ||
        !szone_block_in_use(&block)) {
        report_pointer_error(pointer,
                             "pointer being realloc'd was not allocated");
        errno = EINVAL;
        return NULL;
    }
    if (block.large && size > SMALL_MAX)
        return szone_large_realloc(zone, block.large, size);
    if (!block.large && szone_realloc_fits_in_place(block.size, size))
        return pointer;
    void *moved = szone_malloc(basic, szone_realloc_target(block.size, size));
    if (!moved)
        return NULL;
    memcpy(moved, pointer, size < block.size ? size : block.size);
    if (!szone_free_block(zone, pointer, &block))
        report_pointer_error(pointer, "pointer being realloc'd was freed meanwhile");
    return moved;
}

static size_t szone_size(malloc_zone_t *basic, const void *pointer)
{
    struct szone_block block;
    if (!szone_find_block(szone_from_zone(basic), pointer, &block) ||
        !szone_block_in_use(&block))
        return 0;
    return block.size;
}

static unsigned szone_batch_malloc(malloc_zone_t *basic, size_t size,
                                   void **results, unsigned count)
{
    unsigned made = 0;
    while (made < count && (results[made] = szone_malloc(basic, size)))
        made++;
    return made;
}

static void szone_batch_free(malloc_zone_t *basic, void **pointers,
                             unsigned count)
{
    for (unsigned i = 0; i < count; i++)
        szone_free(basic, pointers[i]);
}

static size_t szone_pressure_relief(malloc_zone_t *basic, size_t goal)
{
    struct szone *zone = szone_from_zone(basic);
    szone_thread_cache_flush_current(zone);
    /* The empty regions that go hold no memory once their pages went
     * back. */
    szone_release_empty_runs(zone);
    return szone_region_release_empty(zone) + szone_large_release_cache(zone);
}

static boolean_t szone_claimed_address(malloc_zone_t *basic, void *pointer)
{
    struct szone *zone = szone_from_zone(basic);
    uintptr_t address = (uintptr_t)pointer;
    struct szone_region *region = region_map_lookup(address);
    if (region) {
        const struct szone_run *run = szone_region_run_of(region, address);
        return region->zone == zone && run->page_count != 0 &&
               address - run->start < (uintptr_t)run->page_count << RUN_PAGE_SHIFT;
    }
    boolean_t claimed = 0;
    md_lock(&zone->large_lock);
    struct szone_large *large;
    LIST_FOREACH(large, &zone->large_blocks, zone_link)
        if ((claimed = address - large->address < large->size))
            break;
    md_unlock(&zone->large_lock);
    return claimed;
}

static void szone_destroy(malloc_zone_t *basic)
{
    struct szone *zone = szone_from_zone(basic);
    if (zone->has_thread_caches) {
        report_error("the default zone cannot be destroyed");
        return;
    }
    szone_region_destroy_all(zone);
    szone_large_destroy_all(zone);
    zone->magic = 0;
    os_unmap_table(zone, zone->mapping_size);
}

/* CPUs this process may run on; sched_getaffinity allocates nothing,
 * unlike sysconf, which reads /sys through opendir. */
static unsigned szone_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return 1;
    int count = CPU_COUNT(&set);
    return count < 1 ? 1 : (unsigned)count;
}

malloc_zone_t *szone_create(bool with_thread_caches,
                            const struct szone_debug *debug)
{
    unsigned magazines = with_thread_caches ? szone_cpu_count() : 1;
    if (magazines > SZONE_MAX_MAGAZINES)
        magazines = SZONE_MAX_MAGAZINES;
    size_t mapping_size =
        MD_ALIGN_UP(sizeof(struct szone) +
                        magazines * SZONE_CLASS_COUNT * sizeof(struct szone_class),
                    OS_PAGE_SIZE);
    struct szone *zone = os_map(mapping_size);
    if (!zone)
        return NULL;
    zone->magic = SZONE_MAGIC;
    zone->mapping_size = mapping_size;
    zone->has_thread_caches = with_thread_caches;
    zone->magazine_count = magazines;
    szone_dirty_pages_setup(zone);
    zone->debug = (struct szone_debug){.flags = 0, .new_fill = -1, .freed_fill = -1};
    for (unsigned i = 0; i < szone_class_total(zone); i++)
        md_lock_init(&zone->classes[i].lock);
    md_lock_init(&zone->region_lock);
    md_lock_init(&zone->large_lock);
    md_lock_init(&zone->thread_caches_lock);

    zone->introspect = szone_introspection;
    malloc_zone_t *basic = &zone->basic;
    basic->size = szone_size;
    basic->malloc = szone_malloc;
    basic->calloc = szone_calloc;
    basic->valloc = szone_valloc;
    basic->free = szone_free;
    basic->realloc = szone_realloc;
    basic->destroy = szone_destroy;
    basic->batch_malloc = szone_batch_malloc;
    basic->batch_free = szone_batch_free;
    basic->introspect = &zone->introspect;
    basic->version = 10;
    basic->memalign = szone_memalign;
    basic->free_definite_size = szone_free_definite_size;
    basic->pressure_relief = szone_pressure_relief;
    basic->claimed_address = szone_claimed_address;
    if (debug)
        szone_debug_setup(zone, debug);
    return basic;
}
