/*
 * The replay's live set: the allocation live at each address, in a
 * uthash table whose entries come from slabs (millions of blocks may be
 * live at once).  Every entry a lookup visits is likely a cache miss,
 * so the hash is computed once per operation, the buckets are kept at
 * most half full (tool_hash.h), and the replay fetches the lines an operation will touch a few events ahead
 * (history_lookahead.c).
 */
#include "config.h"

#include "history_internal.h"
#include "tool_hash.h"

#define BLOCKS_PER_SLAB 65536

struct live_block {
    uint64_t address;
    uint32_t event;
    UT_hash_handle hh;
};

void live_set_init(struct live_set *set)
{
    set->table = NULL;
    entry_pool_init(&set->pool, sizeof(struct live_block), BLOCKS_PER_SLAB);
}

void live_set_release(struct live_set *set)
{
    HASH_CLEAR(hh, set->table);
    entry_pool_release(&set->pool);
}

static struct live_block *find(const struct live_set *set, uint64_t address,
                               unsigned hash)
{
    struct live_block *block;
    HASH_FIND_BYHASHVALUE(hh, set->table, &address, sizeof(address), hash,
                          block);
    return block;
}

bool live_set_insert(struct live_set *set, uint64_t address, uint32_t event,
                     uint32_t *replaced)
{
    unsigned hash;
    HASH_VALUE(&address, sizeof(address), hash);
    struct live_block *block = find(set, address, hash);
    if (block != NULL) {
        *replaced = block->event;
        block->event = event;
        return true;
    }
    *replaced = HISTORY_NONE;
    block = entry_pool_take(&set->pool);
    if (block == NULL)
        return false;
    block->address = address;
    block->event = event;
    tool_hash_out_of_memory = false;
    HASH_ADD_BYHASHVALUE(hh, set->table, address, sizeof(block->address), hash,
                         block);
    if (tool_hash_out_of_memory) {
        entry_pool_give_back(&set->pool, block);
        return false;
    }
    tool_hash_keep_sparse(set->table);
    return true;
}

bool live_set_remove(struct live_set *set, uint64_t address, uint32_t *event)
{
    unsigned hash;
    HASH_VALUE(&address, sizeof(address), hash);
    struct live_block *block = find(set, address, hash);
    if (block == NULL)
        return false;
    *event = block->event;
    HASH_DEL(set->table, block);
    entry_pool_give_back(&set->pool, block);
    return true;
}

/* ---- fetching ahead: each step reads only what the step before
 * fetched, so none of them waits for memory ---- */

static UT_hash_bucket *bucket_of(const struct live_set *set, uint64_t address)
{
    unsigned hash;
    HASH_VALUE(&address, sizeof(address), hash);
    UT_hash_table *table = set->table->hh.tbl;
    return &table->buckets[hash & (table->num_buckets - 1)];
}

void live_set_fetch_bucket(const struct live_set *set, uint64_t address)
{
    if (set->table != NULL)
        __builtin_prefetch(bucket_of(set, address));
}

void live_set_fetch_chain(const struct live_set *set, uint64_t address)
{
    if (set->table == NULL)
        return;
    const UT_hash_handle *first = bucket_of(set, address)->hh_head;
    if (first == NULL)
        return;
    /* Both lines of the entry: 8-byte aligned, it spans at most two. */
    const char *entry = (const char *)first - set->table->hh.tbl->hho;
    __builtin_prefetch(entry);
    __builtin_prefetch(entry + sizeof(struct live_block) - 1);
}

uint32_t live_set_fetch_block(const struct live_set *set, uint64_t address)
{
    if (set->table == NULL)
        return HISTORY_NONE;
    unsigned hash;
    HASH_VALUE(&address, sizeof(address), hash);
    const struct live_block *block = find(set, address, hash);
    if (block == NULL)
        return HISTORY_NONE;
    /* What removing it will relink. */
    ptrdiff_t handle = set->table->hh.tbl->hho;
    if (block->hh.prev != NULL)
        __builtin_prefetch((const char *)block->hh.prev + handle);
    if (block->hh.next != NULL)
        __builtin_prefetch((const char *)block->hh.next + handle);
    if (block->hh.hh_prev != NULL)
        __builtin_prefetch(block->hh.hh_prev);
    if (block->hh.hh_next != NULL)
        __builtin_prefetch(block->hh.hh_next);
    return block->event;
}
