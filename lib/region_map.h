/*
 * The map from any address to the region that holds it, shared by all
 * zones: a two-level table indexed by the address's 4 MiB region number.
 * A lookup is two loads and never takes a lock, so free() of any pointer
 * finds its zone in constant time and a foreign pointer is recognised as
 * such.  Regions are aligned to their size, so one entry is one region.
 */
#ifndef MALLOCDEBUG_REGION_MAP_H
#define MALLOCDEBUG_REGION_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REGION_SHIFT 22
#define REGION_SIZE (1UL << REGION_SHIFT)
#define REGION_MAP_ADDRESS_BITS 47
#define REGION_MAP_LEAF_BITS 13
#define REGION_MAP_TOP_BITS                                                    \
    (REGION_MAP_ADDRESS_BITS - REGION_SHIFT - REGION_MAP_LEAF_BITS)

struct szone_region;

extern struct szone_region **region_map_top[1UL << REGION_MAP_TOP_BITS];

static inline struct szone_region *region_map_lookup(uintptr_t address)
{
    uintptr_t top = address >> (REGION_SHIFT + REGION_MAP_LEAF_BITS);
    if (top >= (1UL << REGION_MAP_TOP_BITS))
        return NULL;
    struct szone_region **leaf =
        __atomic_load_n(&region_map_top[top], __ATOMIC_ACQUIRE);
    if (!leaf)
        return NULL;
    uintptr_t index =
        (address >> REGION_SHIFT) & ((1UL << REGION_MAP_LEAF_BITS) - 1);
    return __atomic_load_n(&leaf[index], __ATOMIC_ACQUIRE);
}

/* Records (or, with NULL, forgets) the region at a REGION_SIZE-aligned
 * base.  Returns false when the leaf table could not be mapped. */
bool region_map_set(uintptr_t base, struct szone_region *region);

#endif
