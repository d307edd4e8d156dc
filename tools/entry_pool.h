/*
 * Fixed-size entries for the tools' hash tables, carved from large slabs:
 * a table of millions of entries costs a few hundred allocations, not
 * millions, and freeing the table frees the slabs.  Entries given back
 * are reused before a new slab is taken.
 */
#ifndef MALLOCDEBUG_ENTRY_POOL_H
#define MALLOCDEBUG_ENTRY_POOL_H

#include <stddef.h>

struct entry_pool {
    size_t entry_size;
    size_t per_slab;
    char **slabs;
    size_t slab_count, slab_capacity;
    size_t used_in_last; /* entries handed out from the newest slab */
    void *reusable;      /* entries given back, linked through their start */
};

/* Entries of `entry_size` bytes (at least a pointer's), `per_slab` to a
 * slab. */
void entry_pool_init(struct entry_pool *pool, size_t entry_size,
                     size_t per_slab);
/* A zeroed entry, or NULL when memory ran out. */
void *entry_pool_take(struct entry_pool *pool);
void entry_pool_give_back(struct entry_pool *pool, void *entry);
/* Frees every slab; the pool can be used again. */
void entry_pool_release(struct entry_pool *pool);

#endif
