/*
 * The free that a logger sees, out of line.  Inlined into free(), the
 * registers its logging needs were saved and restored on every free,
 * logged or not (bench/README.md, "Full mode inline").
 */
#include "config.h"
#include "zone_dispatch.h"

void dispatch_free_logged(malloc_zone_t *zone, void *pointer,
                          uintptr_t return_slot)
{
    /* As dispatch_logs_block: a pointer that is not a block in use is
     * the zone's error to report, not an event. */
    if (zone->size(zone, pointer))
        dispatch_log_from(LOG_DEALLOCATE, zone, (uintptr_t)pointer, 0, NULL,
                          return_slot);
    if (MD_UNLIKELY(malloc_options.active))
        malloc_debug_count_free();
    zone->free(zone, pointer);
}
