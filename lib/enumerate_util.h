/*
 * What every zone enumerator needs: ranges handed to the recorder in
 * batches, and reads through a memory_reader_t (or straight from this
 * process when there is none).
 */
#ifndef MALLOCDEBUG_ENUMERATE_UTIL_H
#define MALLOCDEBUG_ENUMERATE_UTIL_H

#include <malloc/malloc.h>
#include <stddef.h>

#define RANGE_BATCH 128

struct range_batch {
    task_t task;
    void *context;
    vm_range_recorder_t *recorder;
    unsigned type;
    unsigned count;
    vm_range_t ranges[RANGE_BATCH];
};

void range_batch_init(struct range_batch *batch, task_t task, void *context,
                      vm_range_recorder_t *recorder, unsigned type);
void range_batch_add(struct range_batch *batch, vm_address_t address,
                     vm_size_t size);
void range_batch_flush(struct range_batch *batch);

/* The reader to use: `reader`, or one that reads this process. */
memory_reader_t *enumerate_reader(memory_reader_t *reader);
/* Reads `size` bytes into `out` at once: a reader may recycle its buffer
 * at the next read. */
kern_return_t enumerate_read_into(memory_reader_t reader, task_t task,
                                  vm_address_t address, size_t size,
                                  void *out);

#endif
