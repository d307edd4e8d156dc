/*
 * What the stack logger keeps of each block (struct szone_log_tag): a
 * row of the run's metadata for tiny and small blocks, a field of the
 * record for large ones.  Its stack id is written by the logger right
 * after the block was handed out, when no other thread may rightly touch
 * the block; the thread cache says where, for the block it has just
 * handed out.
 */
#include "config.h"
#include "szone.h"
#include "szone_thread_cache.h"

void (*szone_log_tags_released)(const struct szone_log_tag *tags,
                                unsigned count);

struct szone_log_tag *szone_log_tag_of(struct szone *zone, const void *pointer)
{
    uintptr_t address = (uintptr_t)pointer;
    struct szone_region *region = region_map_lookup(address);
    if (region) {
        /* Debug zones hand out a block after its head canary. */
        address -= zone->block_head;
        struct szone_run *run = szone_region_run_of(region, address);
        long index = szone_run_block_index(run, address);
        return index < 0 || region->zone != zone ? NULL
                                                 : &run->meta->log_tag[index];
    }
    struct szone_large *large = szone_large_find(address);
    return large && large->zone == zone ? &large->log_tag : NULL;
}

struct szone_log_tag *szone_log_tag_of_handout(struct szone *zone,
                                               const void *pointer)
{
    /* Debug zones hand out a block after its head canary. */
    struct szone_log_tag *tag = szone_thread_cache_take_handout(
        zone, (const char *)pointer - zone->block_head);
    return tag ? tag : szone_log_tag_of(zone, pointer);
}

uint32_t szone_stack_id(struct szone *zone, const void *pointer)
{
    const struct szone_log_tag *tag = szone_log_tag_of(zone, pointer);
    return tag ? __atomic_load_n(&tag->stack_id, __ATOMIC_RELAXED) : 0;
}

void szone_set_stack_id(struct szone *zone, const void *pointer, uint32_t id)
{
    struct szone_log_tag *tag = szone_log_tag_of_handout(zone, pointer);
    if (tag)
        __atomic_store_n(&tag->stack_id, id, __ATOMIC_RELAXED);
}
