/*
 * The scalable zone: the default allocator.
 *
 * Layout.  Tiny and small blocks live in regions: 4 MiB of data aligned
 * to 4 MiB, cut into 64 KiB pages.  A run is one or more consecutive
 * pages holding blocks of one size class.  Everything the zone knows
 * about a region (which pages form which run, which blocks are free, the
 * stack id of each block) sits in the region's descriptor, a separate
 * mapping, so a program that writes past its blocks damages other blocks
 * but never the allocator's view of them.  Large blocks are mappings of
 * their own, recorded in a hash table of descriptors.
 *
 * Fast path.  The default zone gives each thread a cache of free blocks
 * per class: malloc pops, free pushes, neither takes a lock.  Caches are
 * refilled from and flushed to the runs in batches under the class lock.
 */
#ifndef MALLOCDEBUG_SZONE_H
#define MALLOCDEBUG_SZONE_H

#include <malloc/malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "compiler.h"
#include "lock.h"
#include "os_memory.h"
#include "region_map.h"
#include "szone_size_class.h"

#define SZONE_MAGIC 0x737a6f6e65303031ULL /* "szone001" */
#define SZONE_REGION_MAGIC 0x72656769u   /* "regi" */
#define REGION_PAGE_COUNT (REGION_SIZE / RUN_PAGE_SIZE)

/* A block's state in its metadata. */
enum szone_block_state {
    BLOCK_FREE = 0,      /* in its run's free list, or never handed out */
    BLOCK_ALLOCATED = 1, /* owned by the program */
    BLOCK_CACHED = 2,    /* free, in some thread's cache */
};

#define RUN_FREE_LIST_END 0xffffu

/* A block's requested size is kept, in debug zones only, as size + 1:
 * 0 means "not recorded" (never used, or being set up or freed), and
 * this value "free, filled with the zone's freed-block byte". */
#define REQUESTED_SIZE_FREED_FILL UINT32_MAX

/* What the stack logger keeps of each block, side by side so that
 * writing both costs one cache line: the stack that allocated it, and
 * the low 32 bits of its latest event's order (stacklog_orders.h). */
struct szone_log_tag {
    uint32_t stack_id;
    uint32_t order;
};

/*
 * Out-of-band metadata of the blocks of one run, field by field: malloc
 * and free touch only the state byte, so the states of 64 blocks share
 * one cache line.
 */
struct szone_meta_row {
    uint8_t state[RUN_MAX_BLOCKS];       /* enum szone_block_state */
    uint16_t next_free[RUN_MAX_BLOCKS];  /* run-local free list links */
    struct szone_log_tag log_tag[RUN_MAX_BLOCKS]; /* for stack logging */
    uint32_t requested_size[RUN_MAX_BLOCKS]; /* debug zones: see above */
};

struct szone_region;

struct szone_run {
    /* In its class's list of runs with a free block; le_prev is NULL
     * when it is not. */
    LIST_ENTRY(szone_run) partial_link;
    struct szone_region *region;
    uintptr_t start;
    struct szone_meta_row *meta;
    uint64_t size_reciprocal; /* block index = (offset * this) >> 40 */
    uint32_t block_size;
    uint16_t class_index;
    uint16_t page_count;   /* 0: these pages are not a run */
    uint16_t block_count;
    uint16_t carved;       /* blocks below this index have been used */
    uint16_t handed_out;   /* allocated or cached blocks */
    uint16_t free_head;    /* run-local free list, RUN_FREE_LIST_END if empty */
    uint16_t free_count;
    uint8_t magazine;
};

#define RUN_RECIPROCAL_SHIFT 40

struct szone;

struct szone_region {
    uint32_t magic;
    uint8_t kind; /* enum szone_kind */
    struct szone *zone;
    struct szone_region *next;
    uintptr_t base;
    uint64_t used_pages;                      /* bit per page */
    uint64_t dirty_pages; /* free, but resident: szone_dirty_pages.c */
    uint16_t dirty_class[REGION_PAGE_COUNT]; /* the class that left each */
    uint8_t page_run[REGION_PAGE_COUNT];      /* page -> first page of its run */
    struct szone_run runs[REGION_PAGE_COUNT]; /* indexed by first page */
    /* Block metadata, one row per page (a run uses the row of its first
     * page); only the touched part of a row is ever resident. */
    struct szone_meta_row meta[REGION_PAGE_COUNT]
        __attribute__((aligned(RUN_MAX_BLOCKS)));
};

/* A row is a whole number of state arrays and starts on a multiple of
 * one (the descriptor is a mapping of its own), so the address of a
 * block's state byte gives its row and its index: the thread cache,
 * which keeps only that address, needs no lookup to reach the rest. */
_Static_assert((RUN_MAX_BLOCKS & (RUN_MAX_BLOCKS - 1)) == 0 &&
                   RUN_MAX_BLOCKS <= OS_PAGE_SIZE &&
                   sizeof(struct szone_meta_row) % RUN_MAX_BLOCKS == 0,
               "a block's state address must give its metadata row");

static inline struct szone_log_tag *szone_log_tag_of_state(uint8_t *state)
{
    uintptr_t index = (uintptr_t)state & (RUN_MAX_BLOCKS - 1);
    struct szone_meta_row *row =
        (struct szone_meta_row *)((uintptr_t)state - index);
    return &row->log_tag[index];
}

/* Large blocks: one mapping each. */
struct szone_large {
    struct szone_large *hash_next;
    LIST_ENTRY(szone_large) zone_link;
    struct szone *zone;
    uintptr_t address;
    size_t size;      /* bytes mapped, a multiple of the page size */
    size_t requested; /* debug zones: the size asked for */
    struct szone_log_tag log_tag;
};

#define LARGE_HUGE_THRESHOLD (16UL * 1024 * 1024)
/* Freed large ranges kept for reuse: at most this many, holding at most
 * LARGE_CACHE_LIVE_FACTOR times the bytes of the zone's live large blocks
 * (but always LARGE_CACHE_FLOOR_BYTES and never LARGE_CACHE_MAX_BYTES).
 * Four times: blocks of 128 KiB to 4 MiB freed and allocated at random
 * faulted 3 times fewer pages than with twice, for 5% more peak memory
 * (bench/README.md, "Large blocks reused in place"). */
#define LARGE_CACHE_ENTRIES 16
#define LARGE_CACHE_LIVE_FACTOR 4
#define LARGE_CACHE_FLOOR_BYTES (4UL * 1024 * 1024)
#define LARGE_CACHE_MAX_BYTES (64UL * 1024 * 1024)

struct szone_large_cache_entry {
    uintptr_t address;
    size_t size;
};

struct szone_class {
    md_lock_t lock;
    LIST_HEAD(, szone_run) partial; /* runs with a free or never-used block */
    uint32_t run_count;
} __attribute__((aligned(MD_CACHE_LINE)));

struct szone_thread_cache;

/*
 * The debug behaviours a zone is created with (see szone_debug.c).  The
 * malloc layer derives them from the options; the zone itself knows
 * nothing of the environment.
 */
enum szone_debug_flag {
    SZONE_DEBUG_CANARIES = 1u << 0,      /* guard bytes around each block */
    SZONE_DEBUG_CHECK_FREED = 1u << 1,   /* freed fill verified on reuse */
    SZONE_DEBUG_GUARD_LARGE = 1u << 2,   /* guard pages around large blocks */
    SZONE_DEBUG_GUARD_REGIONS = 1u << 3, /* guard pages around regions */
    SZONE_DEBUG_NO_PRELUDE = 1u << 4,    /* ...but none before */
    SZONE_DEBUG_NO_POSTLUDE = 1u << 5,   /* ...but none after */
};

struct szone_debug {
    unsigned flags;  /* enum szone_debug_flag */
    int new_fill;    /* byte for new blocks calloc did not clear, or -1 */
    int freed_fill;  /* byte for freed blocks, or -1 */
};

/* Canary bytes before each tiny or small block of a canary zone: 16
 * keeps blocks 16-byte aligned. */
#define SZONE_CANARY_HEAD 16

/* Threads of the default zone are spread over magazines, one per CPU:
 * each has its own runs and class locks, so threads on different cores
 * neither contend for locks nor share metadata cache lines. */
#define SZONE_MAX_MAGAZINES 16

struct szone {
    malloc_zone_t basic; /* first: the public zone is the szone */
    malloc_introspection_t introspect;
    uint64_t magic;
    bool has_thread_caches;
    size_t mapping_size;
    unsigned magazine_count;

    bool debugging;         /* the debug function table is in use */
    struct szone_debug debug;
    size_t block_head;      /* canary bytes before a tiny or small block */
    size_t block_tail_min;  /* canary bytes at least after any block */
    size_t region_guard;    /* guard bytes on each side of a region */
    size_t large_prelude;   /* bytes mapped before a large block */
    size_t large_postlude;  /* bytes mapped after a large block */
    bool large_prelude_guarded; /* the prelude is inaccessible */

    md_lock_t region_lock; /* regions lists and page bitmaps */
    struct szone_region *regions[SZONE_KIND_COUNT];
    /* Descriptors of unmapped regions, zeroed and kept for reuse: a
     * racing lookup of a stale pointer then finds no run instead of an
     * unmapped page. */
    struct szone_region *spare_regions;
    size_t bytes_in_runs;
    size_t peak_bytes_in_runs;
    size_t dirty_bytes;            /* in free pages still resident */
    int64_t dirty_purge_ms;        /* when they were last given back */

    md_lock_t large_lock; /* this zone's large list and cache */
    LIST_HEAD(, szone_large) large_blocks;
    size_t large_bytes;
    size_t peak_large_bytes;
    unsigned large_cache_count;
    size_t large_cache_bytes;
    struct szone_large_cache_entry large_cache[LARGE_CACHE_ENTRIES];

    md_lock_t thread_caches_lock;
    LIST_HEAD(, szone_thread_cache) thread_caches;
    LIST_HEAD(, szone_thread_cache) spare_thread_caches;
    unsigned next_magazine; /* round robin over new thread caches */

    /* magazine_count * SZONE_CLASS_COUNT, magazine by magazine */
    struct szone_class classes[];
};

static inline struct szone_class *szone_class_of(struct szone *zone,
                                                 unsigned magazine,
                                                 unsigned class_index)
{
    return &zone->classes[magazine * SZONE_CLASS_COUNT + class_index];
}

static inline unsigned szone_class_total(const struct szone *zone)
{
    return zone->magazine_count * SZONE_CLASS_COUNT;
}

/* Adds `delta` to a byte count and keeps its peak. */
static inline void szone_count_bytes(size_t *bytes, size_t *peak, long delta)
{
    *bytes += (size_t)delta;
    if (*bytes > *peak)
        *peak = *bytes;
}

static inline struct szone *szone_from_zone(malloc_zone_t *zone)
{
    return (struct szone *)zone;
}

/* ---- szone.c: the zone and its function table ---- */
/* `debug` NULL: no debug behaviour. */
malloc_zone_t *szone_create(bool with_thread_caches,
                            const struct szone_debug *debug);

/* Inline: the stack logger asks for every allocation. */
static inline bool szone_is_szone(malloc_zone_t *zone)
{
    /* Compare the introspection pointer before reading past the public
     * fields: a zone written by the program is only a malloc_zone_t. */
    return zone && zone->introspect == &((struct szone *)zone)->introspect &&
           ((struct szone *)zone)->magic == SZONE_MAGIC;
}
struct szone *szone_large_owner(const void *address);

/* The zone whose region holds `address`, or whose large block starts at
 * it; NULL for memory of no scalable zone. */
static inline struct szone *szone_owner(const void *address)
{
    struct szone_region *region = region_map_lookup((uintptr_t)address);
    if (MD_LIKELY(region != NULL))
        return region->zone;
    return szone_large_owner(address);
}
/* The locked path, from magazine 0. */
void *szone_small_malloc(struct szone *zone, unsigned class_index);
/* A block of a tiny or small class, by the fastest path the zone has. */
void *szone_class_malloc(struct szone *zone, unsigned class_index);

/* What a pointer is to a zone: a tiny or small block (run, index and
 * state set) or a large one (large set). */
struct szone_block {
    struct szone_run *run;
    uint8_t *state;
    struct szone_large *large;
    size_t size;
    unsigned index;
};

/* True when `pointer` starts a block of `zone`, in any state. */
bool szone_find_block(struct szone *zone, const void *pointer,
                      struct szone_block *block);
static inline bool szone_block_in_use(const struct szone_block *block)
{
    return block->large || *block->state == BLOCK_ALLOCATED;
}
/* Frees a block found in this zone; false when it was not in use. */
bool szone_free_block(struct szone *zone, void *pointer,
                      struct szone_block *block);
/* The plain scalable zone's free (not a debug zone's): the malloc
 * layer takes its fast path only for a zone whose free is still this
 * one (zone_dispatch.h). */
void szone_free(malloc_zone_t *basic, void *pointer);
/* The free of a plain scalable zone (not a debug zone's), calling
 * `announce` first when `pointer` is a block in use: the malloc layer's
 * loggers must record a free before the block can be handed out again,
 * and only for a block in use.  One look at the block serves both.
 * False, doing nothing, when `basic` is not such a zone. */
bool szone_free_announced(malloc_zone_t *basic, void *pointer,
                          void (*announce)(void *context), void *context);

/* ---- szone_debug.c: the function table of debug zones ---- */
void szone_debug_setup(struct szone *zone, const struct szone_debug *debug);
/* For the heap check, locks held: the damage of the block at `index` of
 * `run`, or of a large block; kind DAMAGE_NONE when intact. */
struct szone_damage;
struct szone_damage szone_debug_run_block_damage(struct szone *zone,
                                                 struct szone_run *run,
                                                 unsigned index);
struct szone_damage szone_debug_large_damage(struct szone *zone,
                                             struct szone_large *large);

/* ---- szone_canary.c: finding damage ---- */
/* The first damage found in a block. */
struct szone_damage {
    enum { DAMAGE_NONE, DAMAGE_OVERRUN, DAMAGE_UNDERRUN, DAMAGE_FREED } kind;
    uintptr_t block; /* the address the program knows */
    size_t size;     /* requested size; usable size for a freed block */
    long offset;     /* of the first bad byte, from the block's start */
    uint8_t found, expected;
};
void szone_canary_fill(uintptr_t from, uintptr_t to);
/* Canaries in [head, block) and [block + size, end). */
struct szone_damage szone_canary_damage(uintptr_t head, uintptr_t block,
                                        size_t size, uintptr_t end);
/* A freed block [block, end) that should hold `fill` throughout. */
struct szone_damage szone_freed_fill_damage(uintptr_t block, uintptr_t end,
                                            uint8_t fill);
struct report_line;
/* Appends "overrun of a N-byte block: damaged at offset K (...)". */
void szone_damage_describe(const struct szone_damage *damage,
                           struct report_line *line);
/* Reports damage found at free, realloc or reuse, as heap corruption. */
void szone_damage_report(const struct szone_damage *damage);

/* ---- szone_region.c: regions and the pages of runs ---- */
struct szone_run *szone_region_new_run(struct szone *zone, unsigned magazine,
                                       unsigned class_index);
void szone_region_release_run(struct szone *zone, struct szone_run *run);
/* For pressure relief: gives back every emptied run's pages and unmaps
 * the empty regions but the last of a kind; the bytes given back. */
size_t szone_region_release_empty(struct szone *zone);
void szone_region_destroy_all(struct szone *zone);

/* ---- szone_dirty_pages.c: emptied runs' pages, given back in batches ---- */
/* Region lock held for all but the last two. */
/* `pages` of `region`, just left by a run of `class_index`, still
 * resident. */
void szone_dirty_pages_add(struct szone *zone, struct szone_region *region,
                           uint64_t pages, unsigned class_index);
/* The region's kept pages that a run of `class_index` left. */
uint64_t szone_dirty_pages_of_class(const struct szone_region *region,
                                    unsigned class_index);
/* `pages` taken by a new run, or unmapped with their region. */
void szone_dirty_pages_take(struct szone *zone, struct szone_region *region,
                            uint64_t pages);
/* Gives every such page back to the kernel; the bytes given back. */
size_t szone_dirty_pages_purge(struct szone *zone);
/* The bytes the regions' bitmaps hold, for the heap check. */
size_t szone_dirty_pages_count(const struct szone *zone);
/* The heap is about to touch `fresh_pages` pages that are not resident:
 * gives back as many kept pages, lowest first, so that resident memory
 * does not grow while the heap still keeps pages it does not use. */
void szone_dirty_pages_before_growth(struct szone *zone, size_t fresh_pages);
/* The same before a large block maps or grows by `fresh_bytes`, taking
 * the region lock only when there is something to give back. */
void szone_dirty_pages_before_large_growth(struct szone *zone,
                                          size_t fresh_bytes);
/* A new zone: its first emptied runs are kept too. */
void szone_dirty_pages_setup(struct szone *zone);

static inline struct szone_run *szone_region_run_of(struct szone_region *region,
                                                    uintptr_t address)
{
    unsigned page = (unsigned)((address - region->base) >> RUN_PAGE_SHIFT);
    return &region->runs[region->page_run[page]];
}

/* Index of the block at `address` in its run, or -1 when `address` is
 * not the start of one of the run's carved blocks. */
static inline long szone_run_block_index(const struct szone_run *run,
                                         uintptr_t address)
{
    if (run->page_count == 0 || address < run->start)
        return -1;
    uintptr_t offset = address - run->start;
    uintptr_t index = (offset * run->size_reciprocal) >> RUN_RECIPROCAL_SHIFT;
    if (index >= run->carved || index * run->block_size != offset)
        return -1;
    return (long)index;
}

/* The state byte of the tiny or small block that starts at `address`
 * in `region`, and its class; NULL when no block starts there. */
static inline uint8_t *szone_region_block_state(struct szone_region *region,
                                                uintptr_t address,
                                                unsigned *class_index)
{
    struct szone_run *run = szone_region_run_of(region, address);
    long index = szone_run_block_index(run, address);
    if (MD_UNLIKELY(index < 0))
        return NULL;
    *class_index = run->class_index;
    return &run->meta->state[index];
}

/* ---- szone_run.c: moving blocks between runs and their users ---- */
/* Takes up to `count` blocks of a class, marks them `state`, stores them
 * and their state bytes.  Takes the class lock.  Returns how many. */
unsigned szone_class_take_blocks(struct szone *zone, unsigned magazine,
                                 unsigned class_index,
                                 void **blocks, uint8_t **states,
                                 unsigned count, enum szone_block_state state);
/* Returns blocks of one class, all marked BLOCK_CACHED, to their runs,
 * each under the lock of its run's magazine. */
void szone_class_return_blocks(struct szone *zone, unsigned class_index,
                               void *const *blocks, unsigned count);
/* Releases every run with no block handed out, including those the
 * policy keeps.  Takes the class locks. */
void szone_release_empty_runs(struct szone *zone);

/* ---- szone_thread_cache.c (fast paths in szone_thread_cache.h) ---- */
void szone_thread_cache_flush_current(struct szone *zone);
void szone_thread_cache_setup(void);
void szone_thread_cache_after_fork_child(struct szone *zone);

/* ---- szone_large.c ---- */
void *szone_large_malloc(struct szone *zone, size_t size, size_t alignment,
                         bool cleared);
struct szone_large *szone_large_find(uintptr_t address);
/* Takes a large block out of the hash and its zone's list; false when
 * another thread did. */
bool szone_large_claim(struct szone *zone, struct szone_large *block);
/* Frees a claimed large block. */
void szone_large_free(struct szone *zone, struct szone_large *block);
void *szone_large_realloc(struct szone *zone, struct szone_large *block,
                          size_t size);

/* ---- szone_large_cache.c ---- */
/* A cached range of at least `size` bytes, or NULL; its pages may hold
 * old data.  Stores its length in *mapped. */
void *szone_large_cache_take(struct szone *zone, size_t size, size_t *mapped);
/* Zone large lock held.  False when the mapping is not kept. */
bool szone_large_cache_put(struct szone *zone, uintptr_t address, size_t size);
size_t szone_large_release_cache(struct szone *zone);
void szone_large_destroy_all(struct szone *zone);
void szone_large_force_lock(void);
void szone_large_force_unlock(void);
void szone_large_reinit_lock(void);

/* ---- szone_stack_id.c ---- */
/* Called with the log tags of blocks that are gone for good (their run's
 * pages released, a large block's record dropped), before anything can
 * reuse their addresses: the stack logger keeps what it needs of their
 * orders.  NULL while nothing logs. */
extern void (*szone_log_tags_released)(const struct szone_log_tag *tags,
                                       unsigned count);
static inline void szone_release_log_tags(const struct szone_log_tag *tags,
                                          unsigned count)
{
    void (*released)(const struct szone_log_tag *, unsigned) =
        __atomic_load_n(&szone_log_tags_released, __ATOMIC_RELAXED);
    if (released && count)
        released(tags, count);
}
/* The stack logger's tag of the block in use at `pointer`, or NULL when
 * it is not one of the zone's blocks. */
struct szone_log_tag *szone_log_tag_of(struct szone *zone, const void *pointer);
/* The same for a block the zone has just handed out, found through the
 * thread cache when it handed it out. */
struct szone_log_tag *szone_log_tag_of_handout(struct szone *zone,
                                               const void *pointer);
/* Records the allocation stack of the block the program calls `pointer`,
 * which the zone has just handed out. */
void szone_set_stack_id(struct szone *zone, const void *pointer, uint32_t id);
/* The allocation stack recorded for the block in use at `pointer`, or 0. */
uint32_t szone_stack_id(struct szone *zone, const void *pointer);

/* ---- szone_introspect.c ---- */
extern const malloc_introspection_t szone_introspection;
void szone_force_lock(malloc_zone_t *zone);
void szone_force_unlock(malloc_zone_t *zone);
void szone_statistics_of_kind(struct szone *zone, malloc_statistics_t *stats,
                              unsigned which);

/* ---- szone_enumerate.c ---- */
kern_return_t szone_enumerator(task_t task, void *context, unsigned type_mask,
                               vm_address_t zone_address,
                               memory_reader_t reader,
                               vm_range_recorder_t recorder);

#endif
