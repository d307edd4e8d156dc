/*
 * The fast path of the default zone: per-thread stacks of free blocks.
 * Inline here so that malloc and free reach them without a call; the
 * slow paths (first use, refill, overflow) live in szone_thread_cache.c.
 */
#ifndef MALLOCDEBUG_SZONE_THREAD_CACHE_H
#define MALLOCDEBUG_SZONE_THREAD_CACHE_H

#include "szone.h"

#define CACHE_MAX_PER_CLASS 64

struct szone_cache_slot {
    void *block;
    uint8_t *state;
};

struct szone_thread_cache {
    LIST_ENTRY(szone_thread_cache) link; /* in the zone's live or spare list */
    struct szone *zone;
    unsigned magazine;
    /* The block handed out last, with its state byte: the stack logger
     * records the block's stack right after, without looking it up. */
    void *handout;
    uint8_t *handout_state;
    uint16_t count[SZONE_CLASS_COUNT];
    struct szone_cache_slot slots[];
};

extern __thread struct szone_thread_cache *szone_current_cache
    __attribute__((tls_model("initial-exec")));
extern uint16_t szone_cache_capacity[SZONE_CLASS_COUNT];
extern uint32_t szone_cache_offset[SZONE_CLASS_COUNT];

void *szone_thread_cache_malloc_slow(struct szone *zone, unsigned class_index);
void szone_thread_cache_make_room(struct szone_thread_cache *cache,
                                  unsigned class_index);

static inline struct szone_cache_slot *
szone_cache_slots(struct szone_thread_cache *cache, unsigned class_index)
{
    return &cache->slots[szone_cache_offset[class_index]];
}

/* Hands `block` out of the cache, remembering it for the stack logger. */
static inline void *szone_cache_hand_out(struct szone_thread_cache *cache,
                                         void *block, uint8_t *state)
{
    *state = BLOCK_ALLOCATED;
    cache->handout = block;
    cache->handout_state = state;
    return block;
}

static inline void *szone_thread_cache_malloc(struct szone *zone,
                                              unsigned class_index)
{
    struct szone_thread_cache *cache = szone_current_cache;
    unsigned count;
    if (MD_UNLIKELY(!cache || (count = cache->count[class_index]) == 0))
        return szone_thread_cache_malloc_slow(zone, class_index);
    struct szone_cache_slot *slot =
        &szone_cache_slots(cache, class_index)[count - 1];
    if (MD_UNLIKELY(*slot->state != BLOCK_CACHED))
        return szone_thread_cache_malloc_slow(zone, class_index);
    cache->count[class_index] = (uint16_t)(count - 1);
    return szone_cache_hand_out(cache, slot->block, slot->state);
}

/* The stack id slot of `block` when it is the block the calling
 * thread's cache of `zone` handed out last, else NULL.  The handout is
 * forgotten either way: it is only good for the allocation just made,
 * since a block freed since may have come back in another carving. */
static inline struct szone_log_tag *
szone_thread_cache_take_handout(struct szone *zone, const void *block)
{
    struct szone_thread_cache *cache = szone_current_cache;
    if (!cache)
        return NULL;
    bool latest = cache->handout == block && cache->zone == zone;
    cache->handout = NULL;
    return latest ? szone_log_tag_of_state(cache->handout_state) : NULL;
}

/* Pushes a block marked BLOCK_CACHED onto its class's stack, which has
 * room for it. */
static inline void szone_cache_push(struct szone_thread_cache *cache,
                                    unsigned class_index, void *block,
                                    uint8_t *state)
{
    /* Freed, the block may come back in another carving of its run. */
    if (MD_UNLIKELY(cache->handout == block))
        cache->handout = NULL;
    unsigned count = cache->count[class_index];
    struct szone_cache_slot *slot = &szone_cache_slots(cache, class_index)[count];
    slot->block = block;
    slot->state = state;
    cache->count[class_index] = (uint16_t)(count + 1);
}

/* Stacks a block already marked BLOCK_CACHED (see szone_claim_block).
 * False when the thread has no cache: the caller frees the slow way. */
static inline bool szone_thread_cache_free(unsigned class_index, void *block,
                                           uint8_t *state)
{
    struct szone_thread_cache *cache = szone_current_cache;
    if (MD_UNLIKELY(!cache))
        return false;
    if (MD_UNLIKELY(cache->count[class_index] ==
                    szone_cache_capacity[class_index]))
        szone_thread_cache_make_room(cache, class_index);
    szone_cache_push(cache, class_index, block, state);
    return true;
}

/* The whole free of a tiny or small block in use, whose state byte is
 * `state`, when the calling thread's cache has room for it: no lock and
 * no call.  False, with nothing changed, when the thread has no cache or
 * no room, or the block is not in use: the zone's full path takes it
 * from there, and reports the error. */
static inline bool szone_thread_cache_free_in_use(unsigned class_index,
                                                  void *block, uint8_t *state)
{
    struct szone_thread_cache *cache = szone_current_cache;
    if (MD_UNLIKELY(!cache ||
                    cache->count[class_index] ==
                        szone_cache_capacity[class_index] ||
                    *state != BLOCK_ALLOCATED))
        return false;
    *state = BLOCK_CACHED;
    szone_cache_push(cache, class_index, block, state);
    return true;
}

#endif
