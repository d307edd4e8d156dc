/*
 * What the malloc layer does for the debugging options around each
 * operation: counting operations for MallocCheckHeap* and failing
 * allocations on purpose (MallocFailAfter, MallocFailRate).  Called only
 * when malloc_options.active is set, so a run without options pays one
 * test of one word per operation.  What needs the zone's help (fills,
 * canaries, guard pages) the zones do, set up from
 * malloc_debug_zone_settings.
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
/* The debug behaviours scalable zones are created with: fills, canaries
 * and guard pages, as the options ask. */
struct szone_debug;
void malloc_debug_zone_settings(struct szone_debug *debug);

#endif
