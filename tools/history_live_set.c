/*
 * The replay's live set: the allocation live at each address, in a
 * uthash table whose entries come from slabs (millions of blocks may be
 * live at once).
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

static struct live_block *find(struct live_set *set, uint64_t address)
{
    struct live_block *block;
    HASH_FIND(hh, set->table, &address, sizeof(address), block);
    return block;
}

bool live_set_insert(struct live_set *set, uint64_t address, uint32_t event,
                     uint32_t *replaced)
{
    struct live_block *block = find(set, address);
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
    HASH_ADD(hh, set->table, address, sizeof(block->address), block);
    if (tool_hash_out_of_memory) {
        entry_pool_give_back(&set->pool, block);
        return false;
    }
    return true;
}

bool live_set_remove(struct live_set *set, uint64_t address, uint32_t *event)
{
    struct live_block *block = find(set, address);
    if (block == NULL)
        return false;
    *event = block->event;
    HASH_DEL(set->table, block);
    entry_pool_give_back(&set->pool, block);
    return true;
}
