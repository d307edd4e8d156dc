/*
 * Frames already looked up.  A report asks for the same return addresses
 * over and over (every event of a call site shares its stack), and
 * symbolizing one means searching symbol tables and line programs: each
 * (module, pc) is described once and then found here.
 */
#include "config.h"

#include "symbols_internal.h"

#include <stdlib.h>
#include <string.h>

struct symbols_frame_key {
    uint64_t pc;
    uint32_t module;
    uint32_t zero; /* the key is hashed as bytes: no stray padding */
};

struct symbols_cached_frame {
    struct symbols_frame_key key;
    struct symbols_frame frame;
    bool found;
    UT_hash_handle hh;
};

static struct symbols_frame_key key_of(uint64_t pc, uint32_t module)
{
    struct symbols_frame_key key;
    memset(&key, 0, sizeof(key));
    key.pc = pc;
    key.module = module;
    return key;
}

bool symbols_cache_get(struct symbols *symbols, uint64_t pc, uint32_t module,
                       struct symbols_frame *frame, bool *found)
{
    struct symbols_frame_key key = key_of(pc, module);
    struct symbols_cached_frame *cached;
    HASH_FIND(hh, symbols->cache, &key, sizeof(key), cached);
    if (cached == NULL)
        return false;
    *frame = cached->frame;
    *found = cached->found;
    return true;
}

void symbols_cache_put(struct symbols *symbols, uint32_t module,
                       const struct symbols_frame *frame, bool found)
{
    struct symbols_cached_frame *cached = malloc(sizeof(*cached));
    if (cached == NULL)
        return;
    cached->key = key_of(frame->pc, module);
    cached->frame = *frame;
    cached->found = found;
    HASH_ADD(hh, symbols->cache, key, sizeof(cached->key), cached);
    if (cached->hh.tbl == NULL)
        free(cached);
}

void symbols_cache_free(struct symbols *symbols)
{
    struct symbols_cached_frame *cached, *next;
    HASH_ITER(hh, symbols->cache, cached, next) {
        HASH_DEL(symbols->cache, cached);
        free(cached);
    }
}
