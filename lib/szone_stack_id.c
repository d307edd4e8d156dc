/*
 * The stack id of each block, for stack logging: a row of the run's
 * metadata for tiny and small blocks, a field of the record for large
 * ones.  Written by the logger right after the block was handed out,
 * when no other thread may rightly touch the block; the thread cache
 * says where, for the block it has just handed out.
 */
#include "config.h"
#include "szone.h"
#include "szone_thread_cache.h"

static uint32_t *stack_id_slot(struct szone *zone, const void *pointer)
{
    uintptr_t address = (uintptr_t)pointer;
    struct szone_region *region = region_map_lookup(address);
    if (region) {
        /* Debug zones hand out a block after its head canary. */
        address -= zone->block_head;
        struct szone_run *run = szone_region_run_of(region, address);
        long index = szone_run_block_index(run, address);
        return index < 0 || region->zone != zone ? NULL
                                                 : &run->meta->stack_id[index];
    }
    struct szone_large *large = szone_large_find(address);
    return large && large->zone == zone ? &large->stack_id : NULL;
}

uint32_t szone_stack_id(struct szone *zone, const void *pointer)
{
    const uint32_t *slot = stack_id_slot(zone, pointer);
    return slot ? __atomic_load_n(slot, __ATOMIC_RELAXED) : 0;
}

void szone_set_stack_id(struct szone *zone, const void *pointer, uint32_t id)
{
    /* Debug zones hand out a block after its head canary. */
    uint32_t *slot = szone_thread_cache_take_handout(
        zone, (const char *)pointer - zone->block_head);
    if (!slot)
        slot = stack_id_slot(zone, pointer);
    if (slot)
        __atomic_store_n(slot, id, __ATOMIC_RELAXED);
}
