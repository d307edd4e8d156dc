/*
 * An index from block address to entry, for passes over a log that
 * follow millions of live blocks.  The entries (and their addresses)
 * stay in the caller's array; the table holds, per address, 8 bytes:
 * 32 bits of the address's hash and the entry's number.  Open addressing
 * with linear probing keeps a lookup within one or two cache lines,
 * which can be fetched ahead of time, where a chained table touches a
 * line per entry; the hash bits let a lookup pass over other addresses
 * without reading their entries, and let the table grow or close a gap
 * without reading any.  Deletion shifts the following slots back, so no
 * tombstone ever slows a lookup down.
 */
#ifndef MALLOCDEBUG_ADDRESS_TABLE_H
#define MALLOCDEBUG_ADDRESS_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADDRESS_TABLE_NONE UINT32_MAX

/* The address of entry `entry` in the caller's array. */
typedef uint64_t address_table_address_fn(const void *context, uint32_t entry);

struct address_slot {
    uint32_t hash;
    uint32_t entry_plus_one; /* 0: empty */
};

struct address_table {
    struct address_slot *slots;
    size_t mask;   /* slot count - 1 */
    unsigned bits; /* log2(slot count), at most 32 */
    size_t count;
    address_table_address_fn *address_of;
    const void *context;
};

/* A table that holds `expected` addresses without growing.  False when
 * memory ran out. */
bool address_table_init(struct address_table *table, size_t expected,
                        address_table_address_fn *address_of,
                        const void *context);
void address_table_release(struct address_table *table);
/* Empties the table, keeping its size. */
void address_table_clear(struct address_table *table);

/* Points `address` at `entry`; `*previous` is the entry it pointed at,
 * or ADDRESS_TABLE_NONE.  False when memory ran out (the table is then
 * as it was). */
bool address_table_put(struct address_table *table, uint64_t address,
                       uint32_t entry, uint32_t *previous);

/* Removes `address`: true, with its entry, when it was there. */
bool address_table_take(struct address_table *table, uint64_t address,
                        uint32_t *entry);

/* The entry `address` most likely has (the first with its hash bits),
 * found without reading any entry, for fetching it ahead of time; or
 * ADDRESS_TABLE_NONE. */
uint32_t address_table_guess(const struct address_table *table, uint64_t address);

/* Fibonacci hashing: the product's top bits mix all of an aligned
 * address's bits. */
static inline uint32_t address_table_hash(uint64_t address)
{
    return (uint32_t)((address * 0x9e3779b97f4a7c15ull) >> 32);
}

/* The slot where a search for `hash` starts: its top bits, so slots keep
 * their order when the table doubles and growing writes the new array
 * front to back. */
static inline size_t address_table_home(const struct address_table *table,
                                        uint32_t hash)
{
    return table->bits ? hash >> (32 - table->bits) : 0;
}

/* Starts fetching the line a later put or take of `address` reads. */
static inline void address_table_fetch(const struct address_table *table,
                                       uint64_t address)
{
    __builtin_prefetch(
        &table->slots[address_table_home(table, address_table_hash(address))], 1);
}

#endif
