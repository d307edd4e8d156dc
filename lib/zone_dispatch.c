/*
 * The free that a logger sees, out of line.  Inlined into free(), the
 * registers its logging needs were saved and restored on every free,
 * logged or not (bench/README.md, "Full mode inline").
 */
#include "config.h"
#include "zone_dispatch.h"

struct logged_free {
    malloc_zone_t *zone;
    void *pointer;
    uintptr_t return_slot;
};

static void log_free(void *context)
{
    const struct logged_free *logged = context;
    dispatch_log_from(LOG_DEALLOCATE, logged->zone, (uintptr_t)logged->pointer,
                      0, NULL, logged->return_slot);
}

bool dispatch_free_default_zone_logged(struct szone *zone, void *pointer,
                                       unsigned class_index, uint8_t *state,
                                       uintptr_t return_slot)
{
    /* Recorded before the block can be handed out again, and only for a
     * block in use: anything else is the zone's error to report. */
    if (MD_UNLIKELY(*state != BLOCK_ALLOCATED))
        return false;
    dispatch_log_tagged(LOG_DEALLOCATE, &zone->basic, (uintptr_t)pointer, 0,
                        NULL, szone_log_tag_of_state(state), return_slot);
    if (MD_UNLIKELY(!szone_thread_cache_free_in_use(class_index, pointer,
                                                    state)))
        szone_free(&zone->basic, pointer);
    return true;
}

void dispatch_free_logged(malloc_zone_t *zone, void *pointer,
                          uintptr_t return_slot)
{
    if (MD_UNLIKELY(malloc_options.active))
        malloc_debug_count_free();
    struct logged_free logged = {zone, pointer, return_slot};
    /* The default zone finds the block once for both. */
    if (szone_free_announced(zone, pointer, log_free, &logged))
        return;
    /* As dispatch_logs_block: a pointer that is not a block in use is
     * the zone's error to report, not an event. */
    if (zone->size(zone, pointer))
        log_free(&logged);
    zone->free(zone, pointer);
}
