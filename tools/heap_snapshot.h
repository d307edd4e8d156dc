/*
 * The blocks in use in a stopped target, as its zones' enumerators list
 * them (the same code the library uses on itself, reading the target
 * through process_vm_readv), with the stack each was allocated from when
 * the target logs stacks in lite or full mode.
 */
#ifndef MALLOCDEBUG_HEAP_SNAPSHOT_H
#define MALLOCDEBUG_HEAP_SNAPSHOT_H

#include "target.h"

#include <stddef.h>
#include <stdint.h>

struct heap_block {
    uint64_t address;
    uint64_t size;
    uint32_t stack; /* stack node id in the log, 0 when unknown */
    uint32_t zone;  /* index into heap_snapshot.zones */
};

struct heap_zone {
    uint64_t address;
    char name[64];
    const char *kind;  /* "scalable", "guard", or "unknown" (not listed) */
    size_t block_count;
    uint64_t bytes;
};

struct heap_snapshot {
    struct heap_block *blocks; /* sorted by address (big_array.h) */
    size_t block_count, block_capacity;
    uint64_t bytes;
    struct heap_zone *zones;
    unsigned zone_count;
    /* Mappings the zones use for blocks and for their own records: a leak
     * scan must not take these for roots. */
    struct heap_range {
        uint64_t address, size;
    } *regions;
    size_t region_count;
    /* Of those, the ones blocks are carved from, sorted by address: what
     * a copy of the heap copies. */
    struct heap_range *block_regions;
    size_t block_region_count;
};

/* Lists the blocks of every zone of `target`, which must be stopped. */
int heap_snapshot_take(struct target *target, struct heap_snapshot *snapshot,
                       char *message, size_t message_size);
void heap_snapshot_free(struct heap_snapshot *snapshot);

#endif
