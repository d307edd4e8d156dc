/*
 * What the malloc layer does for the debugging options around each
 * operation: counting operations for MallocCheckHeap*, failing
 * allocations on purpose (MallocFailAfter, MallocFailRate) and filling
 * blocks (MallocScribble, MallocPreScribble, MallocZeroOnFree).  Called
 * only when malloc_options.active is set, so a run without options pays
 * one test of one word per operation.
 */
#ifndef MALLOCDEBUG_MALLOC_DEBUG_H
#define MALLOCDEBUG_MALLOC_DEBUG_H

#include <malloc/malloc.h>
#include <stdbool.h>

#include "options.h"

#define SCRIBBLE_NEW_BYTE 0xaa
#define SCRIBBLE_FREED_BYTE 0x55

/* Counts an allocation; false (errno ENOMEM) when it is to fail. */
bool malloc_debug_allocation_allowed(void);
/* Counts a free. */
void malloc_debug_count_free(void);
/* Fills a new block that calloc did not clear. */
void malloc_debug_fill_new(malloc_zone_t *zone, void *block);
/* Fills a block about to be freed, if it is one in use. */
void malloc_debug_fill_freed(malloc_zone_t *zone, void *block);
/* realloc when blocks are being filled: the same block when it is big
 * enough, else allocate (filled as new), copy, fill the old block as
 * freed and free it. */
void *malloc_debug_realloc(malloc_zone_t *zone, void *block, size_t size);

#endif
