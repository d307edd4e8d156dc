/*
 * Slab-carved entries for hash tables (see entry_pool.h).
 */
#include "config.h"

#include "big_array.h"
#include "entry_pool.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void entry_pool_init(struct entry_pool *pool, size_t entry_size,
                     size_t per_slab)
{
    if (entry_size < sizeof(void *))
        entry_size = sizeof(void *);
    /* Keeps every entry aligned for the 64-bit fields tables hold. */
    entry_size = (entry_size + 7) & ~(size_t)7;
    if (per_slab == 0)
        per_slab = 1;
    /* Fills the slab's last huge page too. */
    per_slab = big_array_rounded(per_slab * entry_size) / entry_size;
    *pool = (struct entry_pool){.entry_size = entry_size,
                                .per_slab = per_slab};
}

static bool add_slab(struct entry_pool *pool)
{
    if (pool->slab_count == pool->slab_capacity) {
        size_t capacity = pool->slab_capacity ? 2 * pool->slab_capacity : 16;
        char **slabs = realloc(pool->slabs, capacity * sizeof(*slabs));
        if (slabs == NULL)
            return false;
        pool->slabs = slabs;
        pool->slab_capacity = capacity;
    }
    /* Not zeroed here: each entry is cleared when taken, so pages of a
     * slab never used are never touched. */
    char *slab = big_array_alloc(pool->per_slab * pool->entry_size);
    if (slab == NULL)
        return false;
    pool->slabs[pool->slab_count++] = slab;
    pool->used_in_last = 0;
    return true;
}

void *entry_pool_take(struct entry_pool *pool)
{
    void *entry = pool->reusable;
    if (entry != NULL) {
        memcpy(&pool->reusable, entry, sizeof(void *));
    } else {
        if ((pool->slab_count == 0 || pool->used_in_last == pool->per_slab) &&
            !add_slab(pool))
            return NULL;
        entry = pool->slabs[pool->slab_count - 1] +
                pool->used_in_last++ * pool->entry_size;
    }
    memset(entry, 0, pool->entry_size);
    return entry;
}

void entry_pool_give_back(struct entry_pool *pool, void *entry)
{
    memcpy(entry, &pool->reusable, sizeof(void *));
    pool->reusable = entry;
}

void entry_pool_release(struct entry_pool *pool)
{
    for (size_t i = 0; i < pool->slab_count; i++)
        big_array_free(pool->slabs[i], pool->per_slab * pool->entry_size);
    free(pool->slabs);
    entry_pool_init(pool, pool->entry_size, pool->per_slab);
}
