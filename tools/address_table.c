/*
 * The address index (address_table.h).  The table doubles when three
 * quarters full: linear probing stays short below that, and 8-byte slots
 * keep eight to a cache line.
 */
#include "config.h"

#include "address_table.h"
#include "big_array.h"

#include <string.h>

#define FIRST_BITS 16
#define MOST_BITS 32

static size_t slot_count(const struct address_table *table)
{
    return table->mask + 1;
}

static bool make_slots(struct address_table *table, unsigned bits)
{
    struct address_slot *slots = big_array_calloc(sizeof(*slots) << bits);
    if (slots == NULL)
        return false;
    table->slots = slots;
    table->mask = ((size_t)1 << bits) - 1;
    table->bits = bits;
    return true;
}

static bool over_three_quarters(size_t count, size_t slots)
{
    return count * 4 > slots * 3;
}

bool address_table_init(struct address_table *table, size_t expected,
                        address_table_address_fn *address_of,
                        const void *context)
{
    *table = (struct address_table){.address_of = address_of, .context = context};
    unsigned bits = FIRST_BITS;
    while (bits < MOST_BITS && over_three_quarters(expected, (size_t)1 << bits))
        bits++;
    return make_slots(table, bits);
}

void address_table_release(struct address_table *table)
{
    if (table->slots != NULL)
        big_array_free(table->slots, slot_count(table) * sizeof(*table->slots));
    table->slots = NULL;
    table->count = 0;
}

void address_table_clear(struct address_table *table)
{
    memset(table->slots, 0, slot_count(table) * sizeof(*table->slots));
    table->count = 0;
}

/* The slot holding `address`, or the empty slot that ends its search. */
static struct address_slot *search(const struct address_table *table,
                                   uint64_t address, uint32_t hash)
{
    size_t at = address_table_home(table, hash);
    for (;; at = (at + 1) & table->mask) {
        const struct address_slot *slot = &table->slots[at];
        if (slot->entry_plus_one == 0 ||
            (slot->hash == hash &&
             table->address_of(table->context, slot->entry_plus_one - 1) == address))
            return &table->slots[at];
    }
}

static struct address_slot *free_slot(const struct address_table *table,
                                      uint32_t hash)
{
    size_t at = address_table_home(table, hash);
    while (table->slots[at].entry_plus_one != 0)
        at = (at + 1) & table->mask;
    return &table->slots[at];
}

static bool grow(struct address_table *table)
{
    struct address_table old = *table;
    if (old.bits == MOST_BITS || !make_slots(table, old.bits + 1))
        return false;
    for (size_t i = 0; i < slot_count(&old); i++)
        if (old.slots[i].entry_plus_one != 0)
            *free_slot(table, old.slots[i].hash) = old.slots[i];
    big_array_free(old.slots, slot_count(&old) * sizeof(*old.slots));
    return true;
}

bool address_table_put(struct address_table *table, uint64_t address,
                       uint32_t entry, uint32_t *previous)
{
    *previous = ADDRESS_TABLE_NONE;
    if (over_three_quarters(table->count + 1, slot_count(table)) && !grow(table))
        return false;
    uint32_t hash = address_table_hash(address);
    struct address_slot *slot = search(table, address, hash);
    if (slot->entry_plus_one != 0)
        *previous = slot->entry_plus_one - 1;
    else
        table->count++;
    *slot = (struct address_slot){hash, entry + 1};
    return true;
}

uint32_t address_table_guess(const struct address_table *table, uint64_t address)
{
    uint32_t hash = address_table_hash(address);
    size_t at = address_table_home(table, hash);
    for (; table->slots[at].entry_plus_one != 0; at = (at + 1) & table->mask)
        if (table->slots[at].hash == hash)
            return table->slots[at].entry_plus_one - 1;
    return ADDRESS_TABLE_NONE;
}

/* Empties `hole` and moves back each following slot of the run whose
 * search passes over it, so every search still finds its address. */
static void close_hole(struct address_table *table, size_t hole)
{
    for (size_t at = (hole + 1) & table->mask; table->slots[at].entry_plus_one != 0;
         at = (at + 1) & table->mask) {
        size_t home = address_table_home(table, table->slots[at].hash);
        /* It stays when its home is in (hole, at]. */
        if (((home - hole - 1) & table->mask) >= ((at - hole) & table->mask)) {
            table->slots[hole] = table->slots[at];
            hole = at;
        }
    }
    table->slots[hole] = (struct address_slot){0, 0};
}

bool address_table_take(struct address_table *table, uint64_t address,
                        uint32_t *entry)
{
    struct address_slot *slot = search(table, address, address_table_hash(address));
    if (slot->entry_plus_one == 0)
        return false;
    *entry = slot->entry_plus_one - 1;
    table->count--;
    close_hole(table, (size_t)(slot - table->slots));
    return true;
}
