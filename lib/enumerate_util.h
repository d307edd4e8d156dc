/*
 * What every zone enumerator needs: a walk that reads through a
 * memory_reader_t (or straight from this process when there is none) and
 * hands the ranges the caller asked for to the recorder in batches.
 */
#ifndef MALLOCDEBUG_ENUMERATE_UTIL_H
#define MALLOCDEBUG_ENUMERATE_UTIL_H

#include <malloc/malloc.h>
#include <stddef.h>
#include <stdint.h>

#define RANGE_BATCH 128

struct range_batch {
    task_t task;
    void *context;
    vm_range_recorder_t *recorder;
    unsigned type;
    unsigned count;
    vm_range_t ranges[RANGE_BATCH];
};

/* A walk of one zone: the enumerator's arguments, and a batch for each
 * kind of range a zone reports. */
struct zone_walk {
    task_t task;
    memory_reader_t *reader;
    unsigned type_mask;
    struct range_batch in_use;
    struct range_batch stack_ids;
    struct range_batch regions;
    struct range_batch admin;
};

void zone_walk_init(struct zone_walk *walk, task_t task, void *context,
                    unsigned type_mask, memory_reader_t *reader,
                    vm_range_recorder_t *recorder);
/* Copies `size` bytes at `address` into `out` at once: a reader may
 * recycle its buffer at the next read. */
kern_return_t zone_walk_read(const struct zone_walk *walk, vm_address_t address,
                             size_t size, void *out);
/* A block in use: its range, and its stack id at the same address. */
void zone_walk_add_block(struct zone_walk *walk, vm_address_t address,
                         vm_size_t size, uint32_t stack_id);
/* Memory the zone holds blocks in, and memory of its own bookkeeping;
 * each only when the caller asked for it. */
void zone_walk_add_region(struct zone_walk *walk, vm_address_t address,
                          vm_size_t size);
void zone_walk_add_admin(struct zone_walk *walk, vm_address_t address,
                         vm_size_t size);
/* Hands the ranges still batched to the recorder. */
void zone_walk_flush(struct zone_walk *walk);

#endif
