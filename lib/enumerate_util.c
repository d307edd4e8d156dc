#include "config.h"
#include "enumerate_util.h"

#include <mallocdebug/stack_log.h>

#include <string.h>

static void range_batch_init(struct range_batch *batch, task_t task,
                             void *context, vm_range_recorder_t *recorder,
                             unsigned type)
{
    batch->task = task;
    batch->context = context;
    batch->recorder = recorder;
    batch->type = type;
    batch->count = 0;
}

static void range_batch_flush(struct range_batch *batch)
{
    if (batch->count)
        batch->recorder(batch->task, batch->context, batch->type,
                        batch->ranges, batch->count);
    batch->count = 0;
}

static void range_batch_add(struct range_batch *batch, vm_address_t address,
                            vm_size_t size)
{
    if (batch->count == RANGE_BATCH)
        range_batch_flush(batch);
    batch->ranges[batch->count++] = (vm_range_t){address, size};
}

static kern_return_t local_reader(task_t task, vm_address_t address,
                                  vm_size_t size, void **local)
{
    *local = (void *)address;
    return KERN_SUCCESS;
}

void zone_walk_init(struct zone_walk *walk, task_t task, void *context,
                    unsigned type_mask, memory_reader_t *reader,
                    vm_range_recorder_t *recorder)
{
    walk->task = task;
    walk->reader = reader ? reader : local_reader;
    walk->type_mask = type_mask;
    range_batch_init(&walk->in_use, task, context, recorder,
                     MALLOC_PTR_IN_USE_RANGE_TYPE);
    range_batch_init(&walk->stack_ids, task, context, recorder,
                     MALLOCDEBUG_STACK_ID_RANGE_TYPE);
    range_batch_init(&walk->regions, task, context, recorder,
                     MALLOC_PTR_REGION_RANGE_TYPE);
    range_batch_init(&walk->admin, task, context, recorder,
                     MALLOC_ADMIN_REGION_RANGE_TYPE);
}

kern_return_t zone_walk_read(const struct zone_walk *walk, vm_address_t address,
                             size_t size, void *out)
{
    void *local;
    kern_return_t error = walk->reader(walk->task, address, size, &local);
    if (error == KERN_SUCCESS)
        memcpy(out, local, size);
    return error;
}

void zone_walk_add_block(struct zone_walk *walk, vm_address_t address,
                         vm_size_t size, uint32_t stack_id)
{
    if (walk->type_mask & MALLOC_PTR_IN_USE_RANGE_TYPE)
        range_batch_add(&walk->in_use, address, size);
    if (walk->type_mask & MALLOCDEBUG_STACK_ID_RANGE_TYPE)
        range_batch_add(&walk->stack_ids, address, stack_id);
}

void zone_walk_add_region(struct zone_walk *walk, vm_address_t address,
                          vm_size_t size)
{
    if (walk->type_mask & MALLOC_PTR_REGION_RANGE_TYPE)
        range_batch_add(&walk->regions, address, size);
}

void zone_walk_add_admin(struct zone_walk *walk, vm_address_t address,
                         vm_size_t size)
{
    if (walk->type_mask & MALLOC_ADMIN_REGION_RANGE_TYPE)
        range_batch_add(&walk->admin, address, size);
}

void zone_walk_flush(struct zone_walk *walk)
{
    range_batch_flush(&walk->in_use);
    range_batch_flush(&walk->stack_ids);
    range_batch_flush(&walk->regions);
    range_batch_flush(&walk->admin);
}
