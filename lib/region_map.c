#include "config.h"
#include "region_map.h"
#include "os_memory.h"

struct szone_region **region_map_top[1UL << REGION_MAP_TOP_BITS];

#define REGION_MAP_LEAF_BYTES (sizeof(struct szone_region *) << REGION_MAP_LEAF_BITS)

/* Lock-free so that fork can never catch it half-taken: the loser of a
 * race to install a leaf unmaps its own copy. */
static struct szone_region **region_map_leaf(uintptr_t top)
{
    struct szone_region **leaf =
        __atomic_load_n(&region_map_top[top], __ATOMIC_ACQUIRE);
    if (leaf)
        return leaf;
    struct szone_region **fresh = os_map(REGION_MAP_LEAF_BYTES);
    if (!fresh)
        return NULL;
    struct szone_region **expected = NULL;
    if (__atomic_compare_exchange_n(&region_map_top[top], &expected, fresh,
                                    false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
        return fresh;
    os_unmap_table(fresh, REGION_MAP_LEAF_BYTES);
    return expected;
}

bool region_map_set(uintptr_t base, struct szone_region *region)
{
    uintptr_t top = base >> (REGION_SHIFT + REGION_MAP_LEAF_BITS);
    if (top >= (1UL << REGION_MAP_TOP_BITS))
        return false;
    struct szone_region **leaf = region_map_leaf(top);
    if (!leaf)
        return false;
    uintptr_t index = (base >> REGION_SHIFT) & ((1UL << REGION_MAP_LEAF_BITS) - 1);
    __atomic_store_n(&leaf[index], region, __ATOMIC_RELEASE);
    return true;
}
