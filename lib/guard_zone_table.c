/*
 * The guard zone's records: one per block, from a pool in the library's
 * own mappings, and a hash of the live ones keyed by the block's address.
 * The table doubles when it holds more blocks than buckets, so a lookup
 * stays constant time however many blocks are live.  Every function here
 * runs with the zone lock held.
 */
#include "config.h"
#include "guard_zone.h"
#include "compiler.h"

#define GUARD_ZONE_FIRST_BUCKETS 4096UL

/* Blocks start 16-byte aligned unless strict_size says otherwise, so
 * the low bits carry little; Fibonacci hashing mixes the rest. */
static size_t bucket_of(const struct guard_zone *zone, uintptr_t address)
{
    unsigned bits = (unsigned)__builtin_ctzl(zone->hash_buckets);
    return (size_t)(((uint64_t)address * 0x9E3779B97F4A7C15ULL) >> (64 - bits));
}

bool guard_zone_table_init(struct guard_zone *zone)
{
    zone->hash = os_map(GUARD_ZONE_FIRST_BUCKETS * sizeof(*zone->hash));
    zone->hash_buckets = zone->hash ? GUARD_ZONE_FIRST_BUCKETS : 0;
    return zone->hash != NULL;
}

static void hash_insert(struct guard_zone *zone, struct guard_zone_block *block)
{
    struct guard_zone_block **slot = &zone->hash[bucket_of(zone, block->address)];
    block->hash_next = *slot;
    *slot = block;
}

/* When the new table cannot be mapped the old one stays: chains grow
 * longer, lookups stay correct. */
static void hash_grow(struct guard_zone *zone)
{
    size_t old_buckets = zone->hash_buckets;
    struct guard_zone_block **old = zone->hash;
    struct guard_zone_block **table = os_map(2 * old_buckets * sizeof(*table));
    if (!table)
        return;
    zone->hash = table;
    zone->hash_buckets = 2 * old_buckets;
    for (size_t i = 0; i < old_buckets; i++) {
        struct guard_zone_block *block = old[i];
        while (block) {
            struct guard_zone_block *next = block->hash_next;
            hash_insert(zone, block);
            block = next;
        }
    }
    os_unmap_table(old, old_buckets * sizeof(*old));
}

struct guard_zone_block *guard_zone_record_new(struct guard_zone *zone)
{
    return os_pool_alloc(&zone->records);
}

void guard_zone_record_delete(struct guard_zone *zone,
                              struct guard_zone_block *block)
{
    block->state = 0;
    os_pool_free(&zone->records, block);
}

struct guard_zone_block *guard_zone_find_live(struct guard_zone *zone,
                                              uintptr_t address)
{
    struct guard_zone_block *block = zone->hash[bucket_of(zone, address)];
    while (block && block->address != address)
        block = block->hash_next;
    return block;
}

void guard_zone_publish(struct guard_zone *zone, struct guard_zone_block *block)
{
    if (zone->live_count >= zone->hash_buckets)
        hash_grow(zone);
    block->state = GUARD_BLOCK_LIVE;
    hash_insert(zone, block);
    TAILQ_INSERT_TAIL(&zone->live, block, link);
    zone->live_count++;
    zone->live_bytes += block->size;
    zone->live_pages_bytes += block->mapping_size - OS_PAGE_SIZE;
    if (zone->live_pages_bytes > zone->peak_pages_bytes)
        zone->peak_pages_bytes = zone->live_pages_bytes;
}

void guard_zone_claim(struct guard_zone *zone, struct guard_zone_block *block)
{
    struct guard_zone_block **slot = &zone->hash[bucket_of(zone, block->address)];
    while (*slot != block)
        slot = &(*slot)->hash_next;
    *slot = block->hash_next;
    TAILQ_REMOVE(&zone->live, block, link);
    zone->live_count--;
    zone->live_bytes -= block->size;
    zone->live_pages_bytes -= block->mapping_size - OS_PAGE_SIZE;
    block->state = 0;
}
