#include "config.h"
#include "enumerate_util.h"

#include <string.h>

void range_batch_init(struct range_batch *batch, task_t task, void *context,
                      vm_range_recorder_t *recorder, unsigned type)
{
    batch->task = task;
    batch->context = context;
    batch->recorder = recorder;
    batch->type = type;
    batch->count = 0;
}

void range_batch_flush(struct range_batch *batch)
{
    if (batch->count)
        batch->recorder(batch->task, batch->context, batch->type,
                        batch->ranges, batch->count);
    batch->count = 0;
}

void range_batch_add(struct range_batch *batch, vm_address_t address,
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

memory_reader_t *enumerate_reader(memory_reader_t *reader)
{
    return reader ? reader : local_reader;
}

kern_return_t enumerate_read_into(memory_reader_t reader, task_t task,
                                  vm_address_t address, size_t size, void *out)
{
    void *local;
    kern_return_t error = reader(task, address, size, &local);
    if (error == KERN_SUCCESS)
        memcpy(out, local, size);
    return error;
}
