/*
 * The free that a logger sees, out of line.  Inlined into free(), the
 * registers its logging needs were saved and restored on every free,
 * logged or not (bench/README.md, "Full mode inline").
 */
#include "config.h"
#include "szone.h"
#include "zone_dispatch.h"

/* A szone's free with a logger: one lookup of the block serves both the
 * check that it is in use and the free, where zone->size and zone->free
 * found it once each (a fifth of a logged free's instructions). */
static void szone_free_logged(malloc_zone_t *zone, void *pointer,
                              uintptr_t return_slot)
{
    struct szone *szone = szone_from_zone(zone);
    struct szone_block block;
    bool found = szone_find_block(szone, pointer, &block);
    if (found && szone_block_in_use(&block))
        dispatch_log_from(LOG_DEALLOCATE, zone, (uintptr_t)pointer, 0, NULL,
                          return_slot);
    if (MD_UNLIKELY(malloc_options.active))
        malloc_debug_count_free();
    szone_free_found(szone, pointer, &block, found);
}

void dispatch_free_logged(malloc_zone_t *zone, void *pointer,
                          uintptr_t return_slot)
{
    if (pointer && szone_is_szone(zone) && zone->free == szone_free) {
        szone_free_logged(zone, pointer, return_slot);
        return;
    }
    /* As dispatch_logs_block: a pointer that is not a block in use is
     * the zone's error to report, not an event. */
    if (zone->size(zone, pointer))
        dispatch_log_from(LOG_DEALLOCATE, zone, (uintptr_t)pointer, 0, NULL,
                          return_slot);
    if (MD_UNLIKELY(malloc_options.active))
        malloc_debug_count_free();
    zone->free(zone, pointer);
}
