/*
 * The cache of freed large mappings.  A program that frees big buffers
 * and allocates others of other sizes would otherwise pay for fresh
 * pages every time: the kernel's page faults and zeroing, not the
 * system calls, are the cost.  So a new large block is cut from a
 * cached range, whose pages stay where they are: a range of one to two
 * times the size is taken whole, a bigger one lends its head and keeps
 * the rest.  Freed ranges that touch in the address space join into
 * one, which the kernel's habit of placing new mappings side by side
 * makes common: blocks freed together serve a bigger one later.
 *
 * Moving cached pages side by side with mremap to form a block, as an
 * earlier version did, cost more than the page faults it saved on a
 * virtual machine: the moved pages were slow to touch again, and the
 * moves themselves slow (bench/README.md, "Large blocks reused in
 * place").
 *
 * The cache holds at most LARGE_CACHE_ENTRIES ranges and at most
 * LARGE_CACHE_LIVE_FACTOR times the zone's live large bytes (between
 * LARGE_CACHE_FLOOR_BYTES and LARGE_CACHE_MAX_BYTES); the oldest
 * ranges are unmapped first.  pressure_relief empties it.
 */
#include "config.h"
#include "szone.h"
#include "os_memory.h"

#include <string.h>

/* Zone large lock held. */
static struct szone_large_cache_entry cache_remove(struct szone *zone,
                                                   unsigned index)
{
    struct szone_large_cache_entry entry = zone->large_cache[index];
    zone->large_cache_bytes -= entry.size;
    memmove(&zone->large_cache[index], &zone->large_cache[index + 1],
            (--zone->large_cache_count - index) * sizeof(entry));
    return entry;
}

static size_t cache_budget(const struct szone *zone)
{
    size_t budget = zone->large_bytes * LARGE_CACHE_LIVE_FACTOR;
    if (budget < LARGE_CACHE_FLOOR_BYTES)
        budget = LARGE_CACHE_FLOOR_BYTES;
    return budget > LARGE_CACHE_MAX_BYTES ? LARGE_CACHE_MAX_BYTES : budget;
}

/* Zone large lock held.  The cached range that ends at `address` or
 * starts at `end`, or -1. */
static int cache_find_neighbour(const struct szone *zone, uintptr_t address,
                                uintptr_t end)
{
    for (unsigned i = 0; i < zone->large_cache_count; i++) {
        const struct szone_large_cache_entry *entry = &zone->large_cache[i];
        if (entry->address + entry->size == address || entry->address == end)
            return (int)i;
    }
    return -1;
}

bool szone_large_cache_put(struct szone *zone, uintptr_t address, size_t size)
{
    size_t budget = cache_budget(zone);
    if (size > budget)
        return false;
    for (int i; (i = cache_find_neighbour(zone, address, address + size)) >= 0;) {
        struct szone_large_cache_entry neighbour = cache_remove(zone, (unsigned)i);
        if (neighbour.address < address)
            address = neighbour.address;
        size += neighbour.size;
    }
    if (size > budget) { /* joined beyond what the cache may hold */
        os_unmap((void *)address, size);
        return true;
    }
    while (zone->large_cache_count == LARGE_CACHE_ENTRIES ||
           zone->large_cache_bytes + size > budget) {
        struct szone_large_cache_entry oldest = cache_remove(zone, 0);
        os_unmap((void *)oldest.address, oldest.size);
    }
    zone->large_cache[zone->large_cache_count++] =
        (struct szone_large_cache_entry){address, size};
    zone->large_cache_bytes += size;
    return true;
}

/* Zone large lock held.  The smallest range of `size` to twice `size`
 * bytes, or -1. */
static int cache_find_whole_fit(const struct szone *zone, size_t size)
{
    int best = -1;
    for (unsigned i = 0; i < zone->large_cache_count; i++) {
        size_t candidate = zone->large_cache[i].size;
        if (candidate >= size && candidate / 2 <= size &&
            (best < 0 || candidate < zone->large_cache[best].size))
            best = (int)i;
    }
    return best;
}

/* Zone large lock held. */
static unsigned cache_find_largest(const struct szone *zone)
{
    unsigned largest = 0;
    for (unsigned i = 1; i < zone->large_cache_count; i++)
        if (zone->large_cache[i].size > zone->large_cache[largest].size)
            largest = i;
    return largest;
}

void *szone_large_cache_take(struct szone *zone, size_t size, size_t *mapped)
{
    void *block = NULL;
    md_lock(&zone->large_lock);
    int whole = cache_find_whole_fit(zone, size);
    if (whole >= 0) {
        struct szone_large_cache_entry entry = cache_remove(zone, (unsigned)whole);
        block = (void *)entry.address;
        *mapped = entry.size;
    } else if (zone->large_cache_count > 0) {
        /* More than twice too big, if big enough: its head is the block. */
        struct szone_large_cache_entry *largest =
            &zone->large_cache[cache_find_largest(zone)];
        if (largest->size > size) {
            block = (void *)largest->address;
            largest->address += size;
            largest->size -= size;
            zone->large_cache_bytes -= size;
            *mapped = size;
        }
    }
    md_unlock(&zone->large_lock);
    return block;
}

size_t szone_large_release_cache(struct szone *zone)
{
    md_lock(&zone->large_lock);
    size_t released = zone->large_cache_bytes;
    while (zone->large_cache_count > 0) {
        struct szone_large_cache_entry entry = cache_remove(zone, 0);
        os_unmap((void *)entry.address, entry.size);
    }
    md_unlock(&zone->large_lock);
    return released;
}
