/*
 * The blocks a full-mode log leaves live at its end, found in one pass
 * over its events that keeps nothing else: what heap on a log and
 * malloc_history's views of the end (-allBySize, -allByCount,
 * -callTree) need, at a fraction of the history's memory (history.h
 * keeps every event, for the questions about any point in time).
 *
 * The blocks are the same as history_live_at_end finds: an allocation
 * ends at a free of its address or at a later allocation at its address
 * (a lost free); a free of an address not live is counted and ignored,
 * and a realloc's free half of address 0 frees nothing.
 */
#ifndef MALLOCDEBUG_LOG_LIVE_BLOCKS_H
#define MALLOCDEBUG_LOG_LIVE_BLOCKS_H

#include "heap_snapshot.h"
#include "log_reader.h"

#include <stddef.h>
#include <stdint.h>

struct log_live_blocks {
    /* Sorted by address; zone 0.  A big_array of `capacity` entries. */
    struct heap_block *blocks;
    size_t count, capacity;
    uint64_t bytes;
    uint64_t unknown_frees; /* frees of an address not live */
    uint64_t replaced;      /* allocations ended by another at their address */
};

/* 0, or -1 with one line in `message` (out of memory, or more than
 * 2^32 - 2 allocations). */
int log_live_blocks_find(const struct log_reader *reader,
                         struct log_live_blocks *live, char *message,
                         size_t message_size);
void log_live_blocks_free(struct log_live_blocks *live);

#endif
