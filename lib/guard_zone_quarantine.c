/*
 * The quarantine and the map budget.  Freed blocks wait, inaccessible,
 * in first-in first-out order; the oldest leave when the quarantine holds
 * more address space than its bound, or when the zone needs their
 * mappings for live blocks.  Leaving means being unmapped (after the lock
 * is released) or, for a new block whose mapping has the same size,
 * being revived in place: either way the oldest freed memory is the
 * first to become valid again.
 *
 * maps_held counts two mappings per live block and one per quarantined
 * block.  The kernel may merge neighbouring mappings, so the real count
 * can only be lower.
 */
#include "config.h"
#include "guard_zone.h"

/* Zone lock held. */
static void quarantine_unlink(struct guard_zone *zone,
                              struct guard_zone_block *block)
{
    TAILQ_REMOVE(&zone->quarantine, block, link);
    zone->quarantine_count--;
    zone->quarantine_bytes -= block->mapping_size;
}

/* Zone lock held.  False when the eviction has no room left. */
static bool evict_oldest(struct guard_zone *zone,
                         struct guard_zone_eviction *eviction)
{
    struct guard_zone_block *oldest = TAILQ_FIRST(&zone->quarantine);
    if (!oldest || eviction->count == GUARD_ZONE_EVICT_BATCH)
        return false;
    quarantine_unlink(zone, oldest);
    zone->maps_held--;
    eviction->ranges[eviction->count].mapping = oldest->mapping;
    eviction->ranges[eviction->count].mapping_size = oldest->mapping_size;
    eviction->count++;
    guard_zone_record_delete(zone, oldest);
    return true;
}

static size_t quarantine_limit(const struct guard_zone *zone)
{
    return zone->config.quarantine_bytes ? zone->config.quarantine_bytes
                                         : GUARD_ZONE_DEFAULT_QUARANTINE_BYTES;
}

void guard_zone_quarantine_add(struct guard_zone *zone,
                               struct guard_zone_block *block)
{
    block->state = GUARD_BLOCK_QUARANTINED;
    TAILQ_INSERT_TAIL(&zone->quarantine, block, link);
    zone->quarantine_count++;
    zone->quarantine_bytes += block->mapping_size;
    /* Retired, the block is one mapping. */
    zone->maps_held -= GUARD_ZONE_MAPS_PER_LIVE_BLOCK - 1;
}

bool guard_zone_quarantine_trim(struct guard_zone *zone,
                                struct guard_zone_eviction *eviction)
{
    while (zone->quarantine_bytes > quarantine_limit(zone))
        if (!evict_oldest(zone, eviction))
            return eviction->count == GUARD_ZONE_EVICT_BATCH;
    return false;
}

static bool maps_fit(const struct guard_zone *zone, size_t more)
{
    return zone->maps_held + more <= zone->map_budget;
}

bool guard_zone_reserve_maps(struct guard_zone *zone,
                             struct guard_zone_eviction *eviction)
{
    while (!maps_fit(zone, GUARD_ZONE_MAPS_PER_LIVE_BLOCK) &&
           evict_oldest(zone, eviction))
        ;
    if (!maps_fit(zone, GUARD_ZONE_MAPS_PER_LIVE_BLOCK))
        return false;
    zone->maps_held += GUARD_ZONE_MAPS_PER_LIVE_BLOCK;
    return true;
}

/* Reviving is worth it only when the oldest block would leave soon
 * anyway: for want of mappings, or because the next free of a block
 * this size will push the quarantine past its bound. */
struct guard_zone_block *guard_zone_quarantine_take_reusable(
    struct guard_zone *zone, size_t mapping_size)
{
    struct guard_zone_block *oldest = TAILQ_FIRST(&zone->quarantine);
    if (!oldest || oldest->mapping_size != mapping_size)
        return NULL;
    bool leaving_soon =
        !maps_fit(zone, GUARD_ZONE_MAPS_PER_LIVE_BLOCK) ||
        zone->quarantine_bytes + mapping_size > quarantine_limit(zone);
    if (!leaving_soon || !maps_fit(zone, GUARD_ZONE_MAPS_PER_LIVE_BLOCK - 1))
        return NULL;
    quarantine_unlink(zone, oldest);
    zone->maps_held += GUARD_ZONE_MAPS_PER_LIVE_BLOCK - 1;
    return oldest;
}

void guard_zone_eviction_finish(struct guard_zone_eviction *eviction)
{
    for (unsigned i = 0; i < eviction->count; i++)
        guard_zone_pages_unmap(eviction->ranges[i].mapping,
                               eviction->ranges[i].mapping_size);
    eviction->count = 0;
}
