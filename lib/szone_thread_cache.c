/*
 * Per-thread caches of free blocks for the default zone: the lock-free
 * fast path.  Each class has a small stack of (block, state byte) pairs;
 * malloc pops, free pushes.  An empty stack is refilled with half its
 * capacity from the runs, a full one gives its older half back, both
 * under the class lock.  Blocks in a cache are marked BLOCK_CACHED, so
 * a double free is caught at once and enumerations see them as free.
 *
 * The cache itself is a mapping of its own, found through initial-exec
 * TLS and returned at thread exit by a pthread key destructor.
 */
#include "config.h"
#include "szone.h"
#include "os_memory.h"
#include "szone_thread_cache.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#define CACHE_MIN_PER_CLASS 2
#define CACHE_BYTES_PER_CLASS (256 * 1024)

__thread struct szone_thread_cache *szone_current_cache
    __attribute__((tls_model("initial-exec")));
enum cache_state { CACHE_NONE, CACHE_BUILDING, CACHE_READY, CACHE_GONE };

static __thread unsigned char current_cache_state
    __attribute__((tls_model("initial-exec")));

uint16_t szone_cache_capacity[SZONE_CLASS_COUNT];
uint32_t szone_cache_offset[SZONE_CLASS_COUNT];
static size_t cache_mapping_size;
static pthread_key_t cache_key;
static bool cache_key_ready;

static void thread_cache_destroy(void *cache);

void szone_thread_cache_setup(void)
{
    uint32_t offset = 0;
    for (unsigned c = 0; c < SZONE_CLASS_COUNT; c++) {
        size_t capacity = CACHE_BYTES_PER_CLASS / szone_class_to_size(c);
        if (capacity > CACHE_MAX_PER_CLASS)
            capacity = CACHE_MAX_PER_CLASS;
        if (capacity < CACHE_MIN_PER_CLASS)
            capacity = CACHE_MIN_PER_CLASS;
        szone_cache_capacity[c] = (uint16_t)capacity;
        szone_cache_offset[c] = offset;
        offset += (uint32_t)capacity;
    }
    cache_mapping_size =
        MD_ALIGN_UP(sizeof(struct szone_thread_cache) +
                        offset * sizeof(struct szone_cache_slot),
                    OS_PAGE_SIZE);
    cache_key_ready = pthread_key_create(&cache_key, thread_cache_destroy) == 0;
}

/* Gives back the `count` oldest blocks of a class.  They leave the cache
 * before they reach their runs: a fork in between then leaks them in the
 * child instead of giving them back twice. */
static void cache_return_oldest(struct szone_thread_cache *cache,
                                unsigned class_index, unsigned count)
{
    struct szone_cache_slot *slots = szone_cache_slots(cache, class_index);
    void *blocks[CACHE_MAX_PER_CLASS];
    for (unsigned i = 0; i < count; i++)
        blocks[i] = slots[i].block;
    unsigned remaining = cache->count[class_index] - count;
    cache->count[class_index] = (uint16_t)remaining;
    memmove(slots, slots + count, remaining * sizeof(*slots));
    szone_class_return_blocks(cache->zone, class_index, blocks, count);
}

static void cache_return_all(struct szone_thread_cache *cache)
{
    for (unsigned c = 0; c < SZONE_CLASS_COUNT; c++)
        if (cache->count[c])
            cache_return_oldest(cache, c, cache->count[c]);
}

static struct szone_thread_cache *thread_cache_create(struct szone *zone)
{
    md_lock(&zone->thread_caches_lock);
    struct szone_thread_cache *cache = LIST_FIRST(&zone->spare_thread_caches);
    if (cache)
        LIST_REMOVE(cache, link);
    md_unlock(&zone->thread_caches_lock);
    if (!cache && !(cache = os_map(cache_mapping_size)))
        return NULL;
    cache->zone = zone;
    md_lock(&zone->thread_caches_lock);
    cache->magazine = zone->next_magazine++ % zone->magazine_count;
    LIST_INSERT_HEAD(&zone->thread_caches, cache, link);
    md_unlock(&zone->thread_caches_lock);
    return cache;
}

static void thread_cache_unlink(struct szone_thread_cache *cache)
{
    LIST_REMOVE(cache, link);
    LIST_INSERT_HEAD(&cache->zone->spare_thread_caches, cache, link);
}

static void thread_cache_destroy(void *opaque)
{
    struct szone_thread_cache *cache = opaque;
    szone_current_cache = NULL;
    current_cache_state = CACHE_GONE;
    cache_return_all(cache);
    md_lock(&cache->zone->thread_caches_lock);
    thread_cache_unlink(cache);
    md_unlock(&cache->zone->thread_caches_lock);
}

/* First allocation of a thread, or one made while its cache is being
 * built or after it was torn down: served under the class lock. */
static void *thread_cache_malloc_without(struct szone *zone,
                                         unsigned class_index)
{
    if (current_cache_state == CACHE_NONE && cache_key_ready) {
        current_cache_state = CACHE_BUILDING;
        struct szone_thread_cache *cache = thread_cache_create(zone);
        if (cache) {
            /* pthread_setspecific may allocate: that allocation takes the
             * locked path because the state is still BUILDING. */
            pthread_setspecific(cache_key, cache);
            szone_current_cache = cache;
            current_cache_state = CACHE_READY;
            return szone_thread_cache_malloc(zone, class_index);
        }
        current_cache_state = CACHE_NONE;
    }
    return szone_small_malloc(zone, class_index);
}

static void *cache_refill(struct szone_thread_cache *cache,
                          unsigned class_index)
{
    unsigned want = (szone_cache_capacity[class_index] + 1) / 2;
    void *blocks[CACHE_MAX_PER_CLASS];
    uint8_t *states[CACHE_MAX_PER_CLASS];
    unsigned got = szone_class_take_blocks(cache->zone, cache->magazine,
                                           class_index, blocks, states, want,
                                           BLOCK_CACHED);
    if (got == 0) {
        errno = ENOMEM;
        return NULL;
    }
    struct szone_cache_slot *slots = szone_cache_slots(cache, class_index);
    /* Keep the first block for this call; stack the rest so that the next
     * pops come out in address order. */
    for (unsigned i = 1; i < got; i++) {
        slots[got - 1 - i].block = blocks[i];
        slots[got - 1 - i].state = states[i];
    }
    cache->count[class_index] = (uint16_t)(got - 1);
    return szone_cache_hand_out(cache, blocks[0], states[0]);
}

/* Drops cached entries whose block is no longer BLOCK_CACHED: after two
 * threads freed one block at the same moment, the block sits in two
 * caches, and the first to hand it out (or give it back) makes the other
 * entry stale.  Returns a block in use, or NULL. */
static void *cache_pop_valid(struct szone_thread_cache *cache,
                             unsigned class_index)
{
    struct szone_cache_slot *slots = szone_cache_slots(cache, class_index);
    while (cache->count[class_index] > 0) {
        struct szone_cache_slot *slot = &slots[--cache->count[class_index]];
        if (*slot->state == BLOCK_CACHED)
            return szone_cache_hand_out(cache, slot->block, slot->state);
    }
    return NULL;
}

void *szone_thread_cache_malloc_slow(struct szone *zone, unsigned class_index)
{
    struct szone_thread_cache *cache = szone_current_cache;
    if (!cache)
        return thread_cache_malloc_without(zone, class_index);
    void *block = cache_pop_valid(cache, class_index);
    return block ? block : cache_refill(cache, class_index);
}

void szone_thread_cache_make_room(struct szone_thread_cache *cache,
                                  unsigned class_index)
{
    cache_return_oldest(cache, class_index, cache->count[class_index] / 2);
}

void szone_thread_cache_flush_current(struct szone *zone)
{
    if (szone_current_cache && szone_current_cache->zone == zone)
        cache_return_all(szone_current_cache);
}

/* In the child of fork only the forking thread lives on: the caches of
 * the others go back to the runs.  Locks are already re-initialised. */
void szone_thread_cache_after_fork_child(struct szone *zone)
{
    struct szone_thread_cache *cache = LIST_FIRST(&zone->thread_caches), *next;
    for (; cache; cache = next) {
        next = LIST_NEXT(cache, link);
        if (cache == szone_current_cache)
            continue;
        cache_return_all(cache);
        thread_cache_unlink(cache);
    }
}
