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

#include <mallocdebug/stack_log.h>

struct guard_walk {
    task_t task;
    memory_reader_t *reader;
    unsigned type_mask;
    struct range_batch in_use;
    struct range_batch stack_ids;
    struct range_batch regions;
};

static void walk_init(struct guard_walk *walk, task_t task, void *context,
                      unsigned type_mask, memory_reader_t *reader,
                      vm_range_recorder_t *recorder)
{
    walk->task = task;
    walk->reader = enumerate_reader(reader);
    walk->type_mask = type_mask;
    range_batch_init(&walk->in_use, task, context, recorder,
                     MALLOC_PTR_IN_USE_RANGE_TYPE);
    range_batch_init(&walk->stack_ids, task, context, recorder,
                     MALLOCDEBUG_STACK_ID_RANGE_TYPE);
    range_batch_init(&walk->regions, task, context, recorder,
                     MALLOC_PTR_REGION_RANGE_TYPE);
}

/* Follows the live list, at most `count` records: a longer list is
 * damaged, or a cycle, and the walk stops there. */
static kern_return_t walk_live(struct guard_walk *walk,
                               const struct guard_zone *zone)
{
    vm_address_t address = (vm_address_t)TAILQ_FIRST(&zone->live);
    size_t data_offset = zone->config.protect_before ? OS_PAGE_SIZE : 0;
    for (size_t n = 0; address; n++) {
        struct guard_zone_block block;
        if (n >= zone->live_count)
            return KERN_FAILURE;
        kern_return_t error = enumerate_read_into(walk->reader, walk->task, address,
                                        sizeof(block), &block);
        if (error)
            return error;
        if (block.state != GUARD_BLOCK_LIVE)
            return KERN_FAILURE;
        if (walk->type_mask & MALLOC_PTR_IN_USE_RANGE_TYPE)
            range_batch_add(&walk->in_use, block.address, block.size);
        if (walk->type_mask & MALLOCDEBUG_STACK_ID_RANGE_TYPE)
            range_batch_add(&walk->stack_ids, block.address, block.stack_id);
        if (walk->type_mask & MALLOC_PTR_REGION_RANGE_TYPE)
            range_batch_add(&walk->regions, block.mapping + data_offset,
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
    struct guard_walk walk;
    struct guard_zone zone;
    walk_init(&walk, task, context, type_mask, reader, recorder);
    kern_return_t error = enumerate_read_into(walk.reader, task, zone_address,
                                    sizeof(zone), &zone);
    if (error)
        return error;
    if (zone.magic != GUARD_ZONE_MAGIC)
        return KERN_INVALID_ARGUMENT;
    if (type_mask & MALLOC_ADMIN_REGION_RANGE_TYPE) {
        vm_range_t admin[] = {
            {zone_address, zone.mapping_size},
            {(vm_address_t)zone.hash, zone.hash_buckets * sizeof(*zone.hash)}};
        recorder(task, context, MALLOC_ADMIN_REGION_RANGE_TYPE, admin, 2);
    }
    error = walk_live(&walk, &zone);
    range_batch_flush(&walk.in_use);
    range_batch_flush(&walk.stack_ids);
    range_batch_flush(&walk.regions);
    if (error)
        return error;
    /* The fallback's blocks are the guard zone's: its own enumerator
     * reads it through the same reader, stack ids included. */
    return szone_enumerator(task, context, type_mask,
                            (vm_address_t)zone.fallback, reader, recorder);
}

