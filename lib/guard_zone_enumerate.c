/*
 * The guard zone's enumerator: its live blocks, one mapping each, then the
 * blocks of its fallback scalable zone.  Everything is read through the
 * memory_reader_t, so the tools walk another process's guard zone with
 * the same code.
 */
#include "config.h"
#include "enumerate_util.h"
#include "guard_zone.h"
#include "szone.h"

/* Follows the live list, at most `count` records: a longer list is
 * damaged, or a cycle, and the walk stops there. */
static kern_return_t walk_live(struct zone_walk *walk,
                               const struct guard_zone *zone)
{
    vm_address_t address = (vm_address_t)TAILQ_FIRST(&zone->live);
    size_t data_offset = zone->config.protect_before ? OS_PAGE_SIZE : 0;
    for (size_t n = 0; address; n++) {
        struct guard_zone_block block;
        if (n >= zone->live_count)
            return KERN_FAILURE;
        kern_return_t error = zone_walk_read(walk, address, sizeof(block), &block);
        if (error)
            return error;
        if (block.state != GUARD_BLOCK_LIVE)
            return KERN_FAILURE;
        zone_walk_add_block(walk, block.address, block.size, block.stack_id);
        zone_walk_add_region(walk, block.mapping + data_offset,
                             block.mapping_size - OS_PAGE_SIZE);
        address = (vm_address_t)TAILQ_NEXT(&block, link);
    }
    return KERN_SUCCESS;
}

kern_return_t guard_zone_enumerator(task_t task, void *context,
                                    unsigned type_mask,
                                    vm_address_t zone_address,
                                    memory_reader_t reader,
                                    vm_range_recorder_t recorder)
{
    struct zone_walk walk;
    struct guard_zone zone;
    zone_walk_init(&walk, task, context, type_mask, reader, recorder);
    kern_return_t error = zone_walk_read(&walk, zone_address, sizeof(zone), &zone);
    if (error)
        return error;
    if (zone.magic != GUARD_ZONE_MAGIC)
        return KERN_INVALID_ARGUMENT;
    zone_walk_add_admin(&walk, zone_address, zone.mapping_size);
    zone_walk_add_admin(&walk, (vm_address_t)zone.hash,
                        zone.hash_buckets * sizeof(*zone.hash));
    error = walk_live(&walk, &zone);
    zone_walk_flush(&walk);
    if (error)
        return error;
    /* The fallback's blocks are the guard zone's: its own enumerator
     * reads it through the same reader, stack ids included. */
    return szone_enumerator(task, context, type_mask,
                            (vm_address_t)zone.fallback, reader, recorder);
}
