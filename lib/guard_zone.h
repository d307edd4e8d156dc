/*
 * The guard zone (Guard Malloc): every block on pages of its own, its end
 * against an inaccessible guard page (or, with protect_before, its start
 * just after one), so that an overrun faults at the instruction that
 * makes it.  A freed block's pages become inaccessible and wait in a
 * quarantine, so a use after free faults too; oldest first, they leave it
 * (unmapped, or revived in place for a new block of the same size) when
 * the quarantine passes its bound in bytes or its mappings are needed.
 *
 * Metadata.  What the zone knows about a block (where it is, its size,
 * its pages) is a record in the library's own memory, found through a
 * hash keyed by the block's address: the program's pages hold nothing but
 * its data, so no overrun or stale write can mislead the zone.
 *
 * Mappings.  The kernel limits a process to vm.max_map_count mappings; a
 * live block costs two (its data and its guard), a quarantined one one
 * (it is retired as a single inaccessible mapping).
 * The zone counts what it holds and keeps below a budget (three quarters
 * of the limit): it shrinks the quarantine first, and when its live
 * blocks alone fill the budget it serves new blocks from a fallback
 * scalable zone until some are freed.  The fallback's blocks are the
 * guard zone's to the program: malloc_size, free and malloc_zone_from_ptr
 * find them through it.
 *
 * Locking.  One lock guards the records, the hash, the lists and the
 * counts.  System calls that change a block's pages run outside it, on
 * records no other thread can reach at that moment (claimed from the
 * hash, or not yet published).
 */
#ifndef MALLOCDEBUG_GUARD_ZONE_H
#define MALLOCDEBUG_GUARD_ZONE_H

#include <malloc/malloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "lock.h"
#include "os_memory.h"

#define GUARD_ZONE_MAGIC 0x67756172647a6e31ULL /* "guardzn1" */
#define GUARD_ZONE_DEFAULT_QUARANTINE_BYTES (256UL * 1024 * 1024)
/* The kernel's default vm.max_map_count, for when it cannot be read. */
#define GUARD_ZONE_DEFAULT_MAX_MAP_COUNT 65530UL
/* Mappings a live block costs: its data pages and its guard page. */
#define GUARD_ZONE_MAPS_PER_LIVE_BLOCK 2
/* Blocks are aligned to this unless strict_size asks for exact ends. */
#define GUARD_ZONE_ALIGNMENT 16UL

/* What the zone is asked to do; the malloc layer fills it from the
 * options, the zone reads no environment. */
struct guard_zone_config {
    bool protect_before; /* the guard page before each block, not after */
    bool fill_space;     /* fill new blocks (not calloc's) with 0x55 */
    bool allow_reads;    /* guard pages readable, not writable */
    bool strict_size;    /* blocks end exactly at the guard: alignment 1 */
    size_t quarantine_bytes; /* 0: GUARD_ZONE_DEFAULT_QUARANTINE_BYTES */
};

#define GUARD_ZONE_FILL_BYTE 0x55

enum guard_zone_block_state {
    GUARD_BLOCK_LIVE = 1,        /* the program's, in the hash */
    GUARD_BLOCK_QUARANTINED = 2, /* freed, its pages inaccessible */
};

struct guard_zone_block {
    struct guard_zone_block *hash_next;
    TAILQ_ENTRY(guard_zone_block) link; /* the live list or the quarantine */
    uintptr_t address;   /* what the program was given */
    size_t size;         /* what malloc_size answers */
    uintptr_t mapping;   /* the block's pages and its guard page */
    size_t mapping_size;
    uint32_t state;      /* enum guard_zone_block_state */
    uint32_t stack_id;   /* allocation stack, for stack logging */
};

TAILQ_HEAD(guard_zone_block_list, guard_zone_block);

struct guard_zone {
    malloc_zone_t basic; /* first: the public zone is the guard zone */
    malloc_introspection_t introspect;
    uint64_t magic;
    struct guard_zone_config config;
    size_t mapping_size; /* of this structure */

    md_lock_t lock;
    struct guard_zone_block **hash; /* live blocks by address */
    size_t hash_buckets;            /* a power of two */
    struct os_pool records;

    struct guard_zone_block_list live;
    size_t live_count;
    size_t live_bytes;       /* sum of the live blocks' sizes */
    size_t live_pages_bytes; /* their data pages, guards excluded */
    size_t peak_pages_bytes;

    struct guard_zone_block_list quarantine; /* oldest first */
    size_t quarantine_count;
    size_t quarantine_bytes; /* address space, guards included */

    /* Blocks a thread holds outside both lists, with a live block's
     * mappings: being mapped before they are published, or claimed by a
     * free and not yet quarantined. */
    size_t in_flight_count;

    size_t max_map_count; /* vm.max_map_count when the zone was made */
    size_t map_budget;    /* the most mappings the zone lets itself hold */
    size_t maps_held;     /* by live, in-flight and quarantined blocks */

    /* The scalable zone that serves blocks past the map budget; its
     * blocks are the guard zone's to the program.  Not registered. */
    malloc_zone_t *fallback;
    bool budget_full_announced;
    bool refusal_announced;
};

static inline struct guard_zone *guard_zone_from_zone(malloc_zone_t *zone)
{
    return (struct guard_zone *)zone;
}

/* ---- guard_zone.c: the zone and its function table ---- */
malloc_zone_t *guard_zone_create(const struct guard_zone_config *config);
/* The scalable zone that serves the guard zone's blocks past its map
 * budget: its blocks belong to the guard zone. */
malloc_zone_t *guard_zone_fallback(malloc_zone_t *zone);

/* True for a guard zone (checked through its introspection first). */
bool guard_zone_is(malloc_zone_t *zone);
/* Records the allocation stack of a block, guarded or from the fallback. */
void guard_zone_set_stack_id(malloc_zone_t *zone, const void *pointer,
                             uint32_t id);
/* The allocation stack recorded for a block in use, or 0. */
uint32_t guard_zone_stack_id(malloc_zone_t *zone, const void *pointer);

/* ---- guard_zone_table.c: block records and the hash of live blocks;
 * all with the zone lock held ---- */
/* Maps the first hash table; false when out of memory. */
bool guard_zone_table_init(struct guard_zone *zone);
struct guard_zone_block *guard_zone_record_new(struct guard_zone *zone);
void guard_zone_record_delete(struct guard_zone *zone,
                              struct guard_zone_block *block);
/* The live block that starts at `address`, or NULL. */
struct guard_zone_block *guard_zone_find_live(struct guard_zone *zone,
                                              uintptr_t address);
/* Publishes a mapped block: into the hash and the live list. */
void guard_zone_publish(struct guard_zone *zone,
                        struct guard_zone_block *block);
/* Takes a live block away from the program (out of the hash and the
 * live list): after this, no other thread can free or find it. */
void guard_zone_claim(struct guard_zone *zone, struct guard_zone_block *block);

/* ---- guard_zone_pages.c: the system calls on a block's pages ---- */
/* Where a block of `size` bytes (already rounded to what malloc_size
 * will answer) aligned to `alignment` goes in its mapping. */
struct guard_zone_layout {
    size_t mapping_size; /* data pages and the guard page */
    size_t data_offset;  /* of the data pages in the mapping */
    size_t data_size;
    size_t block_offset; /* of the block in the data pages */
    size_t alignment;    /* above a page: the data must start aligned */
};
/* False when the request is too large to lay out. */
bool guard_zone_layout_for(const struct guard_zone_config *config,
                           size_t size, size_t alignment,
                           struct guard_zone_layout *layout);
/* Maps a new block laid out as `layout`; its pages read as zero.
 * Returns the mapping's start, or 0 when the kernel refuses. */
uintptr_t guard_zone_pages_map(const struct guard_zone_config *config,
                               const struct guard_zone_layout *layout);
/* Makes a quarantined mapping of the same layout a fresh block again
 * (its pages were discarded, so they read as zero).  False when the
 * kernel refuses; the mapping is then left as it was. */
bool guard_zone_pages_revive(const struct guard_zone_config *config,
                             uintptr_t mapping,
                             const struct guard_zone_layout *layout);
/* Makes a freed block's whole mapping inaccessible, one mapping with
 * no pages, keeping the address range reserved. */
void guard_zone_pages_retire(uintptr_t mapping, size_t mapping_size);
void guard_zone_pages_unmap(uintptr_t mapping, size_t mapping_size);
/* vm.max_map_count, read with open/read (no stdio, no allocation). */
size_t guard_zone_read_max_map_count(void);

/* ---- guard_zone_quarantine.c: the FIFO of freed blocks and the map
 * budget ---- */
/* Up to this many mappings leave the quarantine per lock hold. */
#define GUARD_ZONE_EVICT_BATCH 16
struct guard_zone_eviction {
    unsigned count;
    struct {
        uintptr_t mapping;
        size_t mapping_size;
    } ranges[GUARD_ZONE_EVICT_BATCH];
};
/* Zone lock held: appends a retired block to the quarantine. */
void guard_zone_quarantine_add(struct guard_zone *zone,
                               struct guard_zone_block *block);
/* Zone lock held: takes the oldest blocks out while the quarantine is
 * over its bound in bytes; their ranges go into `eviction`, to be
 * unmapped once the lock is released.  True when the eviction filled up
 * before the quarantine was back within its bound. */
bool guard_zone_quarantine_trim(struct guard_zone *zone,
                                struct guard_zone_eviction *eviction);
/* Zone lock held: reserves the mappings of one new live block, taking
 * quarantined blocks out as needed.  False when live blocks alone fill
 * the budget. */
bool guard_zone_reserve_maps(struct guard_zone *zone,
                             struct guard_zone_eviction *eviction);
/* Zone lock held: the oldest quarantined block, taken out of the
 * quarantine, when its mapping has the size `mapping_size` and it would
 * soon leave anyway (so that it can be revived instead of unmapped);
 * else NULL.  Its mappings are then counted as a live block's. */
struct guard_zone_block *guard_zone_quarantine_take_reusable(
    struct guard_zone *zone, size_t mapping_size);
/* Unmaps what an eviction collected.  Zone lock not held. */
void guard_zone_eviction_finish(struct guard_zone_eviction *eviction);

/* ---- guard_zone_introspect.c ---- */
extern const malloc_introspection_t guard_zone_introspection;
kern_return_t guard_zone_enumerator(task_t task, void *context,
                                    unsigned type_mask,
                                    vm_address_t zone_address,
                                    memory_reader_t reader,
                                    vm_range_recorder_t recorder);

#endif
