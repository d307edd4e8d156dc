/*
 * Large blocks: above SMALL_MAX, each block is a mapping of its own.
 * Their records sit in one hash table shared by all zones, keyed by
 * address, so free() finds the owner of any large block in constant
 * time.  Each zone also lists its own, for enumeration and destroy, and
 * keeps a small cache of freed mappings so that a program that frees and
 * reallocates big buffers in a loop does not pay a system call and a
 * round of page faults every time.
 */
#include "config.h"
#include "szone.h"
#include "os_memory.h"
#include "report.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define LARGE_HASH_BITS 16
#define LARGE_HASH_SIZE (1UL << LARGE_HASH_BITS)

static md_lock_t large_hash_lock = MD_LOCK_INITIALIZER;
static struct szone_large **large_hash;
static struct os_pool large_record_pool = {.object_size =
                                               sizeof(struct szone_large)};

static size_t large_hash_index(uintptr_t address)
{
    return (size_t)((address >> 12) * 0x9E3779B97F4A7C15ULL >>
                    (64 - LARGE_HASH_BITS));
}

/* Hash lock held. */
static struct szone_large **large_hash_slot(uintptr_t address)
{
    struct szone_large **slot = &large_hash[large_hash_index(address)];
    while (*slot && (*slot)->address != address)
        slot = &(*slot)->hash_next;
    return slot;
}

struct szone_large *szone_large_find(uintptr_t address)
{
    if (!__atomic_load_n(&large_hash, __ATOMIC_ACQUIRE) ||
        (address & (OS_PAGE_SIZE - 1)))
        return NULL;
    md_lock(&large_hash_lock);
    struct szone_large *block = *large_hash_slot(address);
    md_unlock(&large_hash_lock);
    return block;
}

/* Hash lock held. */
static void large_hash_insert(struct szone_large *block)
{
    struct szone_large **slot = &large_hash[large_hash_index(block->address)];
    block->hash_next = *slot;
    *slot = block;
}

static struct szone_large *large_record_new(struct szone *zone,
                                            uintptr_t address, size_t size)
{
    md_lock(&large_hash_lock);
    if (!large_hash) {
        struct szone_large **table = os_map(LARGE_HASH_SIZE * sizeof(*table));
        __atomic_store_n(&large_hash, table, __ATOMIC_RELEASE);
    }
    struct szone_large *block = large_hash ? os_pool_alloc(&large_record_pool)
                                           : NULL;
    if (block) {
        block->zone = zone;
        block->address = address;
        block->size = size;
        block->log_tag = (struct szone_log_tag){0, 0};
        large_hash_insert(block);
    }
    md_unlock(&large_hash_lock);
    return block;
}

/* Hash lock held.  By identity, not address: once a mapping is back in
 * a cache, another thread may already hold a new record for it. */
static bool large_hash_remove(struct szone_large *block)
{
    struct szone_large **slot = &large_hash[large_hash_index(block->address)];
    while (*slot && *slot != block)
        slot = &(*slot)->hash_next;
    if (!*slot)
        return false;
    *slot = block->hash_next;
    return true;
}

static void zone_count_large_bytes(struct szone *zone, long delta)
{
    szone_count_bytes(&zone->large_bytes, &zone->peak_large_bytes, delta);
}

static void zone_link_large(struct szone *zone, struct szone_large *block)
{
    md_lock(&zone->large_lock);
    LIST_INSERT_HEAD(&zone->large_blocks, block, zone_link);
    zone_count_large_bytes(zone, (long)block->size);
    md_unlock(&zone->large_lock);
}

/* Zone large lock held. */
static void zone_unlink_large(struct szone *zone, struct szone_large *block)
{
    LIST_REMOVE(block, zone_link);
    zone_count_large_bytes(zone, -(long)block->size);
}

/* Debug zones may map a page before a block (a guard, or the home of
 * its head canary) and a guard page after it. */
static bool large_has_edges(const struct szone *zone)
{
    return zone->large_prelude || zone->large_postlude;
}

static void *large_map(struct szone *zone, size_t size, size_t alignment)
{
    size_t before = zone->large_prelude, after = zone->large_postlude;
    size_t total = before + size + after;
    if (total < size || size + alignment < size)
        return NULL;
    char *mapping = alignment <= OS_PAGE_SIZE
                        ? os_map_blocks(total)
                        : os_map_aligned_at(total, alignment, before);
    if (!mapping)
        return NULL;
    if (zone->large_prelude_guarded)
        os_protect_none(mapping, before);
    if (after)
        os_protect_none(mapping + before + size, after);
    return mapping + before;
}

static void large_unmap(struct szone *zone, uintptr_t address, size_t size)
{
    os_unmap((void *)(address - zone->large_prelude),
             zone->large_prelude + size + zone->large_postlude);
}

static void *large_out_of_memory(size_t size)
{
    report_allocation_failure(size);
    errno = ENOMEM;
    return NULL;
}

void *szone_large_malloc(struct szone *zone, size_t size, size_t alignment,
                         bool cleared)
{
    if (size > PTRDIFF_MAX - OS_PAGE_SIZE)
        return large_out_of_memory(size);
    size_t mapped = MD_ALIGN_UP(size, OS_PAGE_SIZE);
    void *address = NULL;
    if (alignment <= OS_PAGE_SIZE && !large_has_edges(zone) &&
        (address = szone_large_cache_take(zone, mapped, &mapped))) {
        if (cleared)
            memset(address, 0, mapped);
    } else {
        szone_dirty_pages_before_large_growth(zone, mapped);
        if (!(address = large_map(zone, mapped, alignment)))
            return large_out_of_memory(mapped);
    }
    struct szone_large *block = large_record_new(zone, (uintptr_t)address,
                                                 mapped);
    if (!block) {
        large_unmap(zone, (uintptr_t)address, mapped);
        errno = ENOMEM;
        return NULL;
    }
    zone_link_large(zone, block);
    return address;
}

/* Under the zone's large lock, so that a check holding force_lock sees
 * a block both in the hash and in the zone's list, or in neither. */
bool szone_large_claim(struct szone *zone, struct szone_large *block)
{
    md_lock(&zone->large_lock);
    md_lock(&large_hash_lock);
    bool claimed = large_hash_remove(block);
    md_unlock(&large_hash_lock);
    if (claimed)
        zone_unlink_large(zone, block);
    md_unlock(&zone->large_lock);
    return claimed;
}

static void large_record_delete(struct szone_large *block)
{
    szone_release_log_tags(&block->log_tag, 1);
    md_lock(&large_hash_lock);
    os_pool_free(&large_record_pool, block);
    md_unlock(&large_hash_lock);
}

/* The record left the hash when the block was claimed, before the
 * mapping can be reused from the cache. */
void szone_large_free(struct szone *zone, struct szone_large *block)
{
    uintptr_t address = block->address;
    size_t size = block->size;
    large_record_delete(block);
    bool cached = false;
    if (!large_has_edges(zone)) {
        md_lock(&zone->large_lock);
        cached = szone_large_cache_put(zone, address, size);
        md_unlock(&zone->large_lock);
    }
    if (!cached)
        large_unmap(zone, address, size);
}

/* A block cut from cached ranges that joined may span several kernel
 * mappings, which mremap refuses to resize: such a block is copied
 * instead. */
static void *large_realloc_by_copy(struct szone *zone,
                                   struct szone_large *block, size_t size)
{
    void *copy = szone_large_malloc(zone, size, 0, false);
    if (!copy)
        return NULL;
    memcpy(copy, (void *)block->address, size < block->size ? size : block->size);
    if (szone_large_claim(zone, block))
        szone_large_free(zone, block);
    return copy;
}

/* Grows or shrinks in place or by moving pages, under the zone's large
 * lock so that a caller holding force_lock sees no block move. */
void *szone_large_realloc(struct szone *zone, struct szone_large *block,
                          size_t size)
{
    if (size > PTRDIFF_MAX - OS_PAGE_SIZE)
        return large_out_of_memory(size);
    size_t mapped = MD_ALIGN_UP(size, OS_PAGE_SIZE);
    int saved_errno = errno;
    if (mapped > block->size) /* read unlocked: only the owner resizes */
        szone_dirty_pages_before_large_growth(zone, mapped - block->size);
    md_lock(&zone->large_lock);
    if (mapped == block->size) {
        md_unlock(&zone->large_lock);
        return (void *)block->address;
    }
    /* mremap would move the block away from its guard pages. */
    if (large_has_edges(zone)) {
        md_unlock(&zone->large_lock);
        return large_realloc_by_copy(zone, block, size);
    }
    /* The block may move: its order is let go of before its old address
     * can be mapped again, by any zone (if it stays, no harm done). */
    szone_release_log_tags(&block->log_tag, 1);
    void *moved = os_syscall_mremap((void *)block->address, block->size, mapped,
                         MREMAP_MAYMOVE, NULL);
    int error = errno;
    if (moved != MAP_FAILED) {
        md_lock(&large_hash_lock);
        large_hash_remove(block);
        block->address = (uintptr_t)moved;
        large_hash_insert(block);
        md_unlock(&large_hash_lock);
        zone_count_large_bytes(zone, (long)mapped - (long)block->size);
        block->size = mapped;
    }
    md_unlock(&zone->large_lock);
    if (moved != MAP_FAILED)
        return moved;
    errno = saved_errno;
    if (error == EFAULT)
        return large_realloc_by_copy(zone, block, size);
    return large_out_of_memory(mapped);
}

void szone_large_destroy_all(struct szone *zone)
{
    szone_large_release_cache(zone);
    struct szone_large *block;
    while ((block = LIST_FIRST(&zone->large_blocks)) != NULL) {
        szone_large_claim(zone, block);
        uintptr_t address = block->address;
        size_t size = block->size;
        large_record_delete(block);
        large_unmap(zone, address, size);
    }
}

void szone_large_force_lock(void) { md_lock(&large_hash_lock); }
void szone_large_force_unlock(void) { md_unlock(&large_hash_lock); }
void szone_large_reinit_lock(void) { md_lock_init(&large_hash_lock); }
