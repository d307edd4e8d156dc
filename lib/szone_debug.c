/*
 * The function table of a debug zone: the scalable zone's own paths,
 * wrapped with what the debugging options ask of each block.
 *
 * - Canaries: a tiny or small block sits SZONE_CANARY_HEAD bytes into
 *   its slot, after a canary, and canary bytes fill the rest of the slot
 *   after the requested size; a large block has its canary before it in
 *   the page before (when that page is not a guard) and after it up to
 *   the end of its pages.  malloc_size is then the requested size, so a
 *   program that writes all of what it is told it has stays in bounds.
 * - Fills: new blocks get the new fill (not calloc's), freed ones the
 *   freed fill, which, when asked, is verified when the block is reused.
 * - Guard pages around large blocks and regions are laid out by the
 *   large and region code from the zone's settings.
 *
 * A block's requested size is recorded out of band (szone.h), stored
 * last when a block is set up and cleared first when it is freed, so the
 * heap check, which runs while other threads use their caches, can tell
 * a block in transition from a damaged one.
 */
#include "config.h"
#include "szone.h"
#include "os_memory.h"
#include "report.h"

#include <errno.h>
#include <string.h>

static bool zone_has(const struct szone *zone, unsigned flag)
{
    return (zone->debug.flags & flag) != 0;
}

static void store_requested(uint32_t *requested, uint32_t value)
{
    __atomic_store_n(requested, value, __ATOMIC_RELEASE);
}

static uint32_t load_requested(const uint32_t *requested)
{
    return __atomic_load_n(requested, __ATOMIC_ACQUIRE);
}

static bool requested_is_size(uint32_t value)
{
    return value != 0 && value != REQUESTED_SIZE_FREED_FILL;
}

/* ---- where a block is ---- */

/* A tiny or small block as the program sees it. */
struct debug_run_block {
    struct szone_run *run;
    unsigned index;
    uintptr_t slot, user, end;
    uint32_t *requested;
};

static struct debug_run_block run_block_at(struct szone *zone,
                                           struct szone_run *run,
                                           unsigned index)
{
    uintptr_t slot = run->start + (uintptr_t)index * run->block_size;
    return (struct debug_run_block){run, index, slot, slot + zone->block_head,
                                    slot + run->block_size,
                                    &run->meta->requested_size[index]};
}

static struct debug_run_block run_block_of_slot(struct szone *zone,
                                                uintptr_t slot)
{
    struct szone_run *run = szone_region_run_of(region_map_lookup(slot), slot);
    return run_block_at(zone, run, (unsigned)szone_run_block_index(run, slot));
}

/* The block the program calls `pointer`: tiny and small blocks start
 * after their head canary. */
static bool debug_find_block(struct szone *zone, const void *pointer,
                             struct szone_block *block)
{
    uintptr_t address = (uintptr_t)pointer;
    if (region_map_lookup(address))
        address -= zone->block_head;
    return szone_find_block(zone, (const void *)address, block);
}

/* What malloc_size says: the requested size with canaries (the rest is
 * canary), else all the block's room. */
static size_t run_block_size(struct szone *zone, const struct debug_run_block *b)
{
    uint32_t requested = load_requested(b->requested);
    if (zone_has(zone, SZONE_DEBUG_CANARIES) && requested_is_size(requested))
        return requested - 1;
    return b->end - b->user;
}

static size_t large_block_size(struct szone *zone,
                               const struct szone_large *large)
{
    size_t requested = __atomic_load_n(&large->requested, __ATOMIC_ACQUIRE);
    if (zone_has(zone, SZONE_DEBUG_CANARIES) && requested)
        return requested - 1;
    return large->size;
}

/* ---- damage ---- */

static struct szone_damage run_block_damage(struct szone *zone,
                                            const struct debug_run_block *b,
                                            uint8_t state, uint32_t requested)
{
    struct szone_damage none = {.kind = DAMAGE_NONE};
    if (state == BLOCK_ALLOCATED && requested_is_size(requested) &&
        zone_has(zone, SZONE_DEBUG_CANARIES))
        return szone_canary_damage(b->slot, b->user, requested - 1, b->end);
    if (state != BLOCK_ALLOCATED && requested == REQUESTED_SIZE_FREED_FILL)
        return szone_freed_fill_damage(b->user, b->end,
                                       (uint8_t)zone->debug.freed_fill);
    return none;
}

static uintptr_t large_head_canary(struct szone *zone, uintptr_t user)
{
    return zone->large_prelude_guarded ? user : user - SZONE_CANARY_HEAD;
}

static struct szone_damage large_damage(struct szone *zone,
                                        const struct szone_large *large,
                                        size_t requested)
{
    struct szone_damage none = {.kind = DAMAGE_NONE};
    if (!requested || !zone_has(zone, SZONE_DEBUG_CANARIES))
        return none;
    return szone_canary_damage(large_head_canary(zone, large->address),
                               large->address, requested - 1,
                               large->address + large->size);
}

/* Other threads may be setting up or freeing blocks through their
 * caches while the check runs.  Damage counts only when it is seen
 * twice, with the block's state and size the same before, between and
 * after: a block that went through a whole free and malloc meanwhile is
 * intact the second time. */
static bool run_block_unchanged(const struct debug_run_block *b,
                                const uint8_t *state, uint8_t state_seen,
                                uint32_t requested_seen)
{
    return __atomic_load_n(state, __ATOMIC_ACQUIRE) == state_seen &&
           load_requested(b->requested) == requested_seen;
}

struct szone_damage szone_debug_run_block_damage(struct szone *zone,
                                                 struct szone_run *run,
                                                 unsigned index)
{
    struct debug_run_block b = run_block_at(zone, run, index);
    const uint8_t *state = &run->meta->state[index];
    uint32_t requested = load_requested(b.requested);
    uint8_t seen = __atomic_load_n(state, __ATOMIC_ACQUIRE);
    struct szone_damage damage = run_block_damage(zone, &b, seen, requested);
    for (unsigned look = 0; look < 2 && damage.kind != DAMAGE_NONE; look++) {
        if (!run_block_unchanged(&b, state, seen, requested))
            damage.kind = DAMAGE_NONE;
        else if (look == 0)
            damage = run_block_damage(zone, &b, seen, requested);
    }
    return damage;
}

/* Large blocks leave the zone's list, which the check holds locked,
 * before they are freed. */
struct szone_damage szone_debug_large_damage(struct szone *zone,
                                             struct szone_large *large)
{
    return large_damage(zone, large,
                        __atomic_load_n(&large->requested, __ATOMIC_ACQUIRE));
}

/* ---- setting blocks up and retiring them ---- */

static void fill_new(struct szone *zone, uintptr_t user, size_t length,
                     bool cleared)
{
    if (cleared)
        memset((void *)user, 0, length);
    else if (zone->debug.new_fill >= 0)
        memset((void *)user, zone->debug.new_fill, length);
}

static void *setup_run_block(struct szone *zone, void *slot, size_t size,
                             bool cleared)
{
    struct debug_run_block b = run_block_of_slot(zone, (uintptr_t)slot);
    if (load_requested(b.requested) == REQUESTED_SIZE_FREED_FILL) {
        struct szone_damage damage = szone_freed_fill_damage(
            b.user, b.end, (uint8_t)zone->debug.freed_fill);
        szone_damage_report(&damage);
    }
    store_requested(b.requested, 0);
    bool canaries = zone_has(zone, SZONE_DEBUG_CANARIES);
    fill_new(zone, b.user, canaries ? size : b.end - b.user, cleared);
    if (canaries) {
        szone_canary_fill(b.slot, b.user);
        szone_canary_fill(b.user + size, b.end);
    }
    store_requested(b.requested, (uint32_t)size + 1);
    return (void *)b.user;
}

static void *setup_large_block(struct szone *zone, void *pointer, size_t size,
                               bool cleared)
{
    uintptr_t user = (uintptr_t)pointer;
    struct szone_large *large = szone_large_find(user);
    bool canaries = zone_has(zone, SZONE_DEBUG_CANARIES);
    if (!cleared)
        fill_new(zone, user, canaries ? size : large->size, false);
    if (canaries) {
        szone_canary_fill(large_head_canary(zone, user), user);
        szone_canary_fill(user + size, user + large->size);
    }
    __atomic_store_n(&large->requested, size + 1, __ATOMIC_RELEASE);
    return pointer;
}

/* The tiny or small class for `need` bytes at `alignment`, or false for
 * a large block.  With a head canary, blocks are 16-byte aligned only. */
static bool debug_run_class(struct szone *zone, size_t need, size_t alignment,
                            unsigned *class_index)
{
    if (need > SMALL_MAX)
        return false;
    if (alignment > TINY_QUANTUM) {
        if (zone->block_head || alignment > RUN_PAGE_SIZE)
            return false;
        need = MD_ALIGN_UP(need, alignment);
        if (need > SMALL_MAX)
            return false;
    }
    *class_index = szone_size_to_class(need);
    return true;
}

static void *debug_allocate(struct szone *zone, size_t size, size_t alignment,
                            bool cleared)
{
    size_t need;
    if (__builtin_add_overflow(size, zone->block_head + zone->block_tail_min,
                               &need) ||
        need > PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    unsigned class_index;
    if (debug_run_class(zone, need, alignment, &class_index)) {
        void *slot = szone_class_malloc(zone, class_index);
        return slot ? setup_run_block(zone, slot, size, cleared) : NULL;
    }
    size_t large_need = size + zone->block_tail_min;
    void *user = szone_large_malloc(zone, large_need ? large_need : 1,
                                    alignment, cleared);
    return user ? setup_large_block(zone, user, size, cleared) : NULL;
}

/* Reports damage found in a block the program hands back. */
static void verify_in_use(struct szone *zone, const struct szone_block *block)
{
    struct szone_damage damage;
    if (block->large) {
        damage = szone_debug_large_damage(zone, block->large);
    } else {
        struct debug_run_block b = run_block_at(zone, block->run, block->index);
        damage = run_block_damage(zone, &b, BLOCK_ALLOCATED,
                                  load_requested(b.requested));
    }
    szone_damage_report(&damage);
}

static void retire_run_block(struct szone *zone, const struct szone_block *block)
{
    struct debug_run_block b = run_block_at(zone, block->run, block->index);
    store_requested(b.requested, 0);
    if (zone->debug.freed_fill < 0)
        return;
    memset((void *)b.user, zone->debug.freed_fill, b.end - b.user);
    if (zone_has(zone, SZONE_DEBUG_CHECK_FREED))
        store_requested(b.requested, REQUESTED_SIZE_FREED_FILL);
}

static void free_found_block(struct szone *zone, void *pointer,
                             struct szone_block *block)
{
    verify_in_use(zone, block);
    void *start = pointer;
    if (block->large) {
        __atomic_store_n(&block->large->requested, 0, __ATOMIC_RELEASE);
    } else {
        retire_run_block(zone, block);
        start = (char *)pointer - zone->block_head;
    }
    if (!szone_free_block(zone, start, block))
        report_pointer_error(pointer, "pointer being freed was not allocated");
}

/* ---- the function table ---- */

static void *debug_malloc(malloc_zone_t *basic, size_t size)
{
    return debug_allocate(szone_from_zone(basic), size, 0, false);
}

static void *debug_calloc(malloc_zone_t *basic, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return debug_allocate(szone_from_zone(basic), total, 0, true);
}

static void *debug_memalign(malloc_zone_t *basic, size_t alignment,
                            size_t size)
{
    return debug_allocate(szone_from_zone(basic), size,
                          alignment <= TINY_QUANTUM ? 0 : alignment, false);
}

static void *debug_valloc(malloc_zone_t *basic, size_t size)
{
    return debug_memalign(basic, OS_PAGE_SIZE, size);
}

static void debug_free(malloc_zone_t *basic, void *pointer)
{
    struct szone *zone = szone_from_zone(basic);
    struct szone_block block;
    if (!pointer)
        return;
    if (!debug_find_block(zone, pointer, &block) || !szone_block_in_use(&block)) {
        report_pointer_error(pointer, "pointer being freed was not allocated");
        return;
    }
    free_found_block(zone, pointer, &block);
}

static void debug_free_definite_size(malloc_zone_t *basic, void *pointer,
                                     size_t size)
{
    debug_free(basic, pointer);
}

static size_t debug_block_size(struct szone *zone,
                               const struct szone_block *block)
{
    if (block->large)
        return large_block_size(zone, block->large);
    struct debug_run_block b = run_block_at(zone, block->run, block->index);
    return run_block_size(zone, &b);
}

static size_t debug_size(malloc_zone_t *basic, const void *pointer)
{
    struct szone *zone = szone_from_zone(basic);
    struct szone_block block;
    if (!debug_find_block(zone, pointer, &block) || !szone_block_in_use(&block))
        return 0;
    return debug_block_size(zone, &block);
}

/* Keeps the block when the new size still uses at least half of its
 * room: the grown part gets the new fill, the canary moves. */
static bool resize_in_place(struct szone *zone, const struct szone_block *block,
                            uintptr_t user, size_t old_size, size_t size)
{
    size_t need = size + zone->block_head + zone->block_tail_min;
    if (need < size || need > block->size || need < block->size / 2 ||
        (block->large != NULL) != (need > SMALL_MAX))
        return false;
    bool canaries = zone_has(zone, SZONE_DEBUG_CANARIES);
    if (block->large) {
        __atomic_store_n(&block->large->requested, 0, __ATOMIC_RELEASE);
        if (size > old_size)
            fill_new(zone, user + old_size, size - old_size, false);
        if (canaries)
            szone_canary_fill(user + size, user + block->size);
        __atomic_store_n(&block->large->requested, size + 1, __ATOMIC_RELEASE);
        return true;
    }
    struct debug_run_block b = run_block_at(zone, block->run, block->index);
    store_requested(b.requested, 0);
    if (size > old_size)
        fill_new(zone, user + old_size, size - old_size, false);
    if (canaries)
        szone_canary_fill(user + size, b.end);
    store_requested(b.requested, (uint32_t)size + 1);
    return true;
}

static void *debug_realloc(malloc_zone_t *basic, void *pointer, size_t size)
{
    struct szone *zone = szone_from_zone(basic);
    struct szone_block block;
    if (!pointer)
        return debug_allocate(zone, size, 0, false);
    if (!debug_find_block(zone, pointer, &block) || !szone_block_in_use(&block)) {
        report_pointer_error(pointer, "pointer being realloc'd was not allocated");
        errno = EINVAL;
        return NULL;
    }
    verify_in_use(zone, &block);
    size_t old_size = debug_block_size(zone, &block);
    if (resize_in_place(zone, &block, (uintptr_t)pointer, old_size, size))
        return pointer;
    void *moved = debug_allocate(zone, size, 0, false);
    if (!moved)
        return NULL;
    memcpy(moved, pointer, size < old_size ? size : old_size);
    free_found_block(zone, pointer, &block);
    return moved;
}

static unsigned debug_batch_malloc(malloc_zone_t *basic, size_t size,
                                   void **results, unsigned count)
{
    unsigned made = 0;
    while (made < count && (results[made] = debug_malloc(basic, size)))
        made++;
    return made;
}

static void debug_batch_free(malloc_zone_t *basic, void **pointers,
                             unsigned count)
{
    for (unsigned i = 0; i < count; i++)
        debug_free(basic, pointers[i]);
}

/* Guard pages and canaries change the layout: set before the zone's
 * first block. */
static void setup_layout(struct szone *zone)
{
    unsigned flags = zone->debug.flags;
    bool guard_large = flags & (SZONE_DEBUG_GUARD_LARGE | SZONE_DEBUG_GUARD_REGIONS);
    bool guard_before = guard_large && !(flags & SZONE_DEBUG_NO_PRELUDE);
    bool guard_after = guard_large && !(flags & SZONE_DEBUG_NO_POSTLUDE);
    if (flags & SZONE_DEBUG_CANARIES) {
        zone->block_head = SZONE_CANARY_HEAD;
        zone->block_tail_min = 1;
    }
    zone->large_prelude_guarded = guard_before;
    zone->large_prelude = guard_before || (flags & SZONE_DEBUG_CANARIES)
                              ? OS_PAGE_SIZE : 0;
    zone->large_postlude = guard_after ? OS_PAGE_SIZE : 0;
    zone->region_guard = (flags & SZONE_DEBUG_GUARD_REGIONS) ? OS_PAGE_SIZE : 0;
}

/* Guard pages alone need only the layout: the plain paths serve them. */
static bool debug_needs_own_paths(const struct szone_debug *debug)
{
    return (debug->flags & SZONE_DEBUG_CANARIES) || debug->new_fill >= 0 ||
           debug->freed_fill >= 0;
}

void szone_debug_setup(struct szone *zone, const struct szone_debug *debug)
{
    zone->debug = *debug;
    if (zone->debug.freed_fill < 0)
        zone->debug.flags &= ~SZONE_DEBUG_CHECK_FREED;
    setup_layout(zone);
    if (!debug_needs_own_paths(debug))
        return;
    zone->debugging = true;
    malloc_zone_t *basic = &zone->basic;
    basic->size = debug_size;
    basic->malloc = debug_malloc;
    basic->calloc = debug_calloc;
    basic->valloc = debug_valloc;
    basic->free = debug_free;
    basic->realloc = debug_realloc;
    basic->batch_malloc = debug_batch_malloc;
    basic->batch_free = debug_batch_free;
    basic->memalign = debug_memalign;
    basic->free_definite_size = debug_free_definite_size;
}
