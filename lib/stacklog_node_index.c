/*
 * The index of the uniquing tree: which node is (return address, caller's
 * node), for the nodes not listed under their caller's node
 * (stacklog_node_children.c lists the first few children of each).  An
 * open-addressing table of 8-byte slots, each a 32-bit tag and the
 * node's id, probed linearly from the slots the tag places it at.  A
 * slot thus holds all a bigger table needs to place it, so growing reads
 * no node.
 *
 * Only the children of callers with more than a few are here, and those
 * are taken together: a recursive function inlined into itself, a
 * function that allocates from dozens of places, each gone through again
 * and again, or for the first time in a row.  So a node's tag is the
 * high bits of its caller's hash followed by bits of its own, and places
 * it within NEIGHBOURHOOD slots of where its caller's bits alone would:
 * the lookups under one caller stay in a few cache lines, where scattered
 * slots cost a cache miss each once the table is big.  A caller with
 * hundreds of children fills its neighbourhood: a node whose first
 * LOCAL_PROBES slots are taken goes where the tag's bits mixed put it,
 * anywhere, so that no probe walks a run as long as the children.  A
 * thread's node, which has no caller, is placed by its own hash.
 *
 * A node's hash is its path's: the caller's hash mixed with the return
 * address (stacklog_node_hash).
 *
 * Lookups take no lock and write nothing.  A slot is written once, from 0
 * to its final value, by compare-and-swap, after the node it names is
 * complete: a lookup that sees the slot sees the node.
 *
 * Adding stays lock-free but for growth.  Adders count themselves in and
 * out of `adding`; the thread that grows the table raises `resizing`,
 * waits for the adders to leave, copies the slots into a table twice the
 * size, publishes it and lowers `resizing`.  An adder that finds
 * `resizing` raised waits for the new table.  The old table's pages are
 * given back: a lookup still reading them reads empty slots, misses, and
 * its thread then looks again in the new table before adding anything.
 */
#include "config.h"
#include "lock.h"
#include "os_memory.h"
#include "stacklog.h"

#include <sched.h>
#include <sys/mman.h>

/* Tables start at 64 KiB and double when more than half full. */
#define INDEX_FIRST_BITS 13
#define INDEX_MAX_BITS 32
/* A tag's low bits are the node's own, the rest its caller's. */
#define TAG_OWN_BITS 12
#define TAG_CALLER_BITS (32 - TAG_OWN_BITS)
/* The slots the children of one caller spread over: 16 cache lines, few
 * enough to stay in the caches, enough for their linear probes to stay
 * short with dozens of children. */
#define NEIGHBOURHOOD 128
/* Slots probed from a node's home before it is looked for elsewhere. */
#define LOCAL_PROBES 32
/* Big tables are looked up at random: fewer TLB misses and faults on
 * huge pages, where the system gives them. */
#define HUGE_PAGE_SIZE (2u << 20)

struct node_index {
    uint64_t *slots;
    uint64_t mask;    /* slot count - 1 */
    unsigned bits;    /* log2(slot count) */
    uint64_t grow_at; /* entries past which the table grows */
};

/* One table per size: the current one is published by pointer, and a
 * table is never reused, so a reader's pointer stays valid. */
static struct node_index tables[INDEX_MAX_BITS + 1];
static struct node_index *current;
static uint64_t entries;
static uint32_t adding;
static bool resizing;
static md_lock_t grow_lock = MD_LOCK_INITIALIZER;

static bool table_make(unsigned bits)
{
    struct node_index *table = &tables[bits];
    uint64_t count = (uint64_t)1 << bits;
    table->slots = os_map(count * sizeof(uint64_t));
    if (!table->slots)
        return false;
    if (count * sizeof(uint64_t) >= HUGE_PAGE_SIZE)
        madvise(table->slots, count * sizeof(uint64_t), MADV_HUGEPAGE);
    table->mask = count - 1;
    table->bits = bits;
    table->grow_at = bits == INDEX_MAX_BITS ? UINT64_MAX : count / 2;
    return true;
}

bool stacklog_node_index_setup(void)
{
    if (!table_make(INDEX_FIRST_BITS))
        return false;
    current = &tables[INDEX_FIRST_BITS];
    return true;
}

/* The node's tag: its caller's high bits, then its own (see above). */
static uint32_t node_tag(uint32_t parent, uint64_t parent_hash, uint64_t hash)
{
    const uint32_t own_mask = (1u << TAG_OWN_BITS) - 1;
    if (!parent)
        return (uint32_t)(hash >> 32);
    return ((uint32_t)(parent_hash >> 32) & ~own_mask) |
           ((uint32_t)(hash >> 32) & own_mask);
}

/* Where the node of `tag` is looked for first: among its caller's
 * children.  A table bigger than the caller's bits can tell apart has
 * the node's own bits spread them further. */
static uint64_t tag_home(const struct node_index *table, uint32_t tag)
{
    uint64_t home = table->bits <= TAG_CALLER_BITS
                        ? (uint64_t)(tag >> TAG_OWN_BITS) >>
                              (TAG_CALLER_BITS - table->bits)
                        : (uint64_t)tag >> (32 - table->bits);
    return (home + (tag & (NEIGHBOURHOOD - 1))) & table->mask;
}

/* Where it is looked for when the LOCAL_PROBES slots from its home are
 * all taken by others: anywhere, as the tag's bits mixed place it. */
static uint64_t tag_elsewhere(const struct node_index *table, uint32_t tag)
{
    uint32_t mixed = tag * 0x9e3779b1u; /* a bijection of 32-bit numbers */
    return ((uint64_t)mixed >> (32 - table->bits)) & table->mask;
}

static uint64_t slot_value(uint32_t tag, uint32_t id)
{
    return (uint64_t)tag << 32 | id;
}

static bool slot_is(uint64_t slot, uint32_t tag, uint32_t parent, uint64_t pc,
                    uint32_t module)
{
    if ((uint32_t)(slot >> 32) != tag)
        return false;
    const struct mdlog_stack_node *node = stacklog_node_record((uint32_t)slot);
    return stacklog_node_is(node, pc, module) && node->parent == parent;
}

/* Linear probing from `at` for at most `limit` slots: the slot holding
 * the node or the first empty one, or NULL. */
static uint64_t *probe_from(const struct node_index *table, uint64_t at,
                            uint64_t limit, uint32_t tag, uint32_t parent,
                            uint64_t pc, uint32_t module, uint64_t *seen)
{
    for (uint64_t tried = 0; tried < limit; tried++) {
        uint64_t *slot = &table->slots[at];
        *seen = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
        if (*seen == 0 || slot_is(*seen, tag, parent, pc, module))
            return slot;
        at = (at + 1) & table->mask;
    }
    return NULL;
}

/* The slot holding the node, or the empty slot where it would go; NULL
 * when the table is full (it could not grow).  A node goes near its
 * home when one of the LOCAL_PROBES slots there was empty, else
 * elsewhere; slots are never emptied, so a lookup that finds those
 * slots all taken knows to look elsewhere too. */
static uint64_t *probe(const struct node_index *table, uint32_t tag,
                       uint32_t parent, uint64_t pc, uint32_t module,
                       uint64_t *seen)
{
    uint64_t *slot = probe_from(table, tag_home(table, tag), LOCAL_PROBES, tag,
                                parent, pc, module, seen);
    return slot ? slot
                : probe_from(table, tag_elsewhere(table, tag), table->mask + 1,
                             tag, parent, pc, module, seen);
}

uint32_t stacklog_node_index_find(uint64_t parent_hash, uint64_t hash,
                                  uint32_t parent, uint64_t pc, uint32_t module)
{
    const struct node_index *table = __atomic_load_n(&current, __ATOMIC_ACQUIRE);
    uint64_t seen;
    return probe(table, node_tag(parent, parent_hash, hash), parent, pc,
                 module, &seen)
               ? (uint32_t)seen
               : 0;
}

static void adding_enter(void)
{
    for (;;) {
        __atomic_fetch_add(&adding, 1, __ATOMIC_SEQ_CST);
        if (!__atomic_load_n(&resizing, __ATOMIC_SEQ_CST))
            return;
        __atomic_fetch_sub(&adding, 1, __ATOMIC_RELEASE);
        while (__atomic_load_n(&resizing, __ATOMIC_ACQUIRE))
            sched_yield();
    }
}

static void adding_leave(void)
{
    __atomic_fetch_sub(&adding, 1, __ATOMIC_RELEASE);
}

/* The first empty slot of at most `limit` from `at`, or NULL. */
static uint64_t *empty_from(struct node_index *table, uint64_t at,
                            uint64_t limit)
{
    for (uint64_t tried = 0; tried < limit; tried++) {
        if (!table->slots[at])
            return &table->slots[at];
        at = (at + 1) & table->mask;
    }
    return NULL;
}

/* Into a table no one else sees yet, where probe() looks for it. */
static void table_put(struct node_index *table, uint64_t value)
{
    const uint32_t tag = (uint32_t)(value >> 32);
    uint64_t *slot = empty_from(table, tag_home(table, tag), LOCAL_PROBES);
    if (!slot)
        slot = empty_from(table, tag_elsewhere(table, tag), table->mask + 1);
    *slot = value;
}

static void table_copy(struct node_index *to, const struct node_index *from)
{
    for (uint64_t i = 0; i <= from->mask; i++) {
        uint64_t value = from->slots[i];
        if (value)
            table_put(to, value);
    }
}

static void grow(const struct node_index *full)
{
    md_lock(&grow_lock);
    struct node_index *table = current;
    if (table != full || __atomic_load_n(&entries, __ATOMIC_RELAXED) <=
                             __atomic_load_n(&table->grow_at, __ATOMIC_RELAXED)) {
        md_unlock(&grow_lock);
        return;
    }
    unsigned bits = table->bits + 1;
    if (!table_make(bits)) {
        /* Fuller and slower, still correct. */
        __atomic_store_n(&table->grow_at, UINT64_MAX, __ATOMIC_RELAXED);
        md_unlock(&grow_lock);
        return;
    }
    __atomic_store_n(&resizing, true, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&adding, __ATOMIC_SEQ_CST))
        sched_yield();
    table_copy(&tables[bits], table);
    __atomic_store_n(&current, &tables[bits], __ATOMIC_RELEASE);
    __atomic_store_n(&resizing, false, __ATOMIC_RELEASE);
    os_discard(table->slots, (table->mask + 1) * sizeof(uint64_t));
    md_unlock(&grow_lock);
}

uint32_t stacklog_node_index_add(uint64_t parent_hash, uint64_t hash,
                                 uint32_t parent, uint64_t pc, uint32_t module,
                                 uint32_t made)
{
    const uint32_t tag = node_tag(parent, parent_hash, hash);
    adding_enter();
    struct node_index *table = __atomic_load_n(&current, __ATOMIC_ACQUIRE);
    uint32_t id = 0;
    uint64_t seen, *slot;
    while ((slot = probe(table, tag, parent, pc, module, &seen)) != NULL) {
        if (seen) {
            id = (uint32_t)seen; /* another thread added it first */
            break;
        }
        if (__atomic_compare_exchange_n(slot, &seen, slot_value(tag, made),
                                        false, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED)) {
            id = made;
            __atomic_fetch_add(&entries, 1, __ATOMIC_RELAXED);
            break;
        }
        /* Another thread took the slot: probe again. */
    }
    adding_leave();
    if (__atomic_load_n(&entries, __ATOMIC_RELAXED) >
        __atomic_load_n(&table->grow_at, __ATOMIC_RELAXED))
        grow(table);
    return id;
}

void stacklog_node_index_force_lock(void)
{
    md_lock(&grow_lock);
}

void stacklog_node_index_force_unlock(void)
{
    md_unlock(&grow_lock);
}

/* The threads counted in `adding` are not in the child. */
void stacklog_node_index_fork_child(void)
{
    md_lock_init(&grow_lock);
    adding = 0;
}
