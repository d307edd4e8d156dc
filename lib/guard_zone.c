/*
 * The guard zone's function table: allocation lays each block out on
 * pages of its own (guard_zone_pages.c), free retires it into the
 * quarantine (guard_zone_quarantine.c), and blocks that the map budget
 * cannot guard come from the fallback scalable zone.  See guard_zone.h.
 */
#include "config.h"
#include "guard_zone.h"
#include "compiler.h"
#include "report.h"
#include "szone.h"

#include <errno.h>
#include <string.h>

#define FREED_NOT_ALLOCATED "pointer being freed was not allocated"
#define REALLOCED_NOT_ALLOCATED "pointer being realloc'd was not allocated"

/* ---- notes to the user, each said once ---- */

static void say_budget_full(struct guard_zone *zone, size_t live)
{
    struct report_line line;
    report_line_begin(&line);
    report_append(&line, "Guard Malloc: ");
    report_append_decimal(&line, live);
    report_append(&line, " guarded blocks are live, close to vm.max_map_count (");
    report_append_decimal(&line, zone->max_map_count);
    report_append(&line, "); new blocks are not guarded until some are freed");
    report_line_write(&line);
}

static void say_kernel_refused(void)
{
    struct report_line line;
    report_line_begin(&line);
    report_append(&line, "Guard Malloc: the kernel refused the mappings of a "
                         "guarded block; such blocks are not guarded");
    report_line_write(&line);
}

/* True the first time it is asked about `flag`.  Read before it is
 * written, so that asking again costs no store to a shared line. */
static bool first_time(bool *flag)
{
    if (__atomic_load_n(flag, __ATOMIC_RELAXED))
        return false;
    return !__atomic_exchange_n(flag, true, __ATOMIC_RELAXED);
}

/* ---- allocation ---- */

/* What malloc_size will answer: the request, at least one byte, rounded
 * to the alignment unless sizes are strict.  0 when it overflows. */
static size_t block_size_for(const struct guard_zone *zone, size_t requested)
{
    size_t size = requested ? requested : 1;
    if (zone->config.strict_size)
        return size;
    size_t rounded = MD_ALIGN_UP(size, GUARD_ZONE_ALIGNMENT);
    return rounded < size ? 0 : rounded;
}

static size_t minimum_alignment(const struct guard_zone *zone)
{
    return zone->config.strict_size ? 1 : GUARD_ZONE_ALIGNMENT;
}

static void fill_new(const struct guard_zone *zone, void *block, size_t size,
                     bool cleared)
{
    if (zone->config.fill_space && !cleared)
        memset(block, GUARD_ZONE_FILL_BYTE, size);
}

static void *from_fallback(struct guard_zone *zone, size_t size,
                           size_t alignment, bool cleared)
{
    malloc_zone_t *fallback = zone->fallback;
    void *block;
    if (cleared)
        block = fallback->calloc(fallback, 1, size);
    else if (alignment > GUARD_ZONE_ALIGNMENT)
        block = fallback->memalign(fallback, alignment, size);
    else
        block = fallback->malloc(fallback, size);
    if (block)
        fill_new(zone, block, fallback->size(fallback, block), cleared);
    return block;
}

/* Zone lock held: a new record, with a live block's mappings reserved
 * and no pages yet.  NULL, with *budget_full set when live blocks fill
 * the map budget, or alone when there is no memory for a record. */
static struct guard_zone_block *reserve_fresh(struct guard_zone *zone,
                                              struct guard_zone_eviction *eviction,
                                              bool *budget_full)
{
    *budget_full = !guard_zone_reserve_maps(zone, eviction);
    if (*budget_full)
        return NULL;
    struct guard_zone_block *block = guard_zone_record_new(zone);
    if (!block) {
        zone->maps_held -= GUARD_ZONE_MAPS_PER_LIVE_BLOCK;
        return NULL;
    }
    block->mapping = 0;
    return block;
}

/* A record for a new guarded block, with its mappings counted: a
 * quarantined one to revive (mapping set) or a fresh one (mapping 0).
 * NULL as for reserve_fresh. */
static struct guard_zone_block *
take_record(struct guard_zone *zone, const struct guard_zone_layout *layout,
            struct guard_zone_eviction *eviction, bool *budget_full)
{
    struct guard_zone_block *block = NULL;
    md_lock(&zone->lock);
    /* A mapping keeps its address: only layouts that do not depend on
     * it can be revived. */
    if (layout->alignment == OS_PAGE_SIZE)
        block = guard_zone_quarantine_take_reusable(zone, layout->mapping_size);
    if (!block)
        block = reserve_fresh(zone, eviction, budget_full);
    zone->in_flight_count += block != NULL;
    size_t live = zone->live_count;
    md_unlock(&zone->lock);
    if (*budget_full && first_time(&zone->budget_full_announced))
        say_budget_full(zone, live);
    return block;
}

static void drop_record(struct guard_zone *zone, struct guard_zone_block *block)
{
    md_lock(&zone->lock);
    zone->in_flight_count--;
    zone->maps_held -= GUARD_ZONE_MAPS_PER_LIVE_BLOCK;
    guard_zone_record_delete(zone, block);
    md_unlock(&zone->lock);
}

/* Gives the record its pages: the revived mapping when the kernel lets
 * it become a block again, else a new one.  False when refused. */
static bool map_block(struct guard_zone *zone, struct guard_zone_block *block,
                      const struct guard_zone_layout *layout)
{
    uintptr_t mapping = block->mapping;
    if (mapping && !guard_zone_pages_revive(&zone->config, mapping, layout)) {
        guard_zone_pages_unmap(mapping, layout->mapping_size);
        mapping = 0;
    }
    if (!mapping)
        mapping = guard_zone_pages_map(&zone->config, layout);
    block->mapping = mapping;
    block->mapping_size = layout->mapping_size;
    block->address = mapping + layout->data_offset + layout->block_offset;
    return mapping != 0;
}

static void *out_of_memory(size_t size)
{
    report_allocation_failure(size);
    errno = ENOMEM;
    return NULL;
}

static void *guard_allocate(struct guard_zone *zone, size_t requested,
                            size_t alignment, bool cleared)
{
    size_t size = block_size_for(zone, requested);
    struct guard_zone_layout layout;
    if (size == 0 || !guard_zone_layout_for(&zone->config, size, alignment,
                                            &layout))
        return out_of_memory(requested);
    struct guard_zone_eviction eviction = {.count = 0};
    bool budget_full = false;
    struct guard_zone_block *block = take_record(zone, &layout, &eviction,
                                                 &budget_full);
    guard_zone_eviction_finish(&eviction);
    if (budget_full)
        return from_fallback(zone, requested, alignment, cleared);
    if (!block)
        return out_of_memory(requested);
    if (!map_block(zone, block, &layout)) {
        drop_record(zone, block);
        /* The program's own mappings may have used up what the kernel
         * allows: a fallback block keeps it running.  When that fails
         * too, the fallback has said why. */
        void *unguarded = from_fallback(zone, requested, alignment, cleared);
        if (unguarded && first_time(&zone->refusal_announced))
            say_kernel_refused();
        return unguarded;
    }
    block->size = size;
    fill_new(zone, (void *)block->address, size, cleared);
    md_lock(&zone->lock);
    zone->in_flight_count--;
    guard_zone_publish(zone, block);
    md_unlock(&zone->lock);
    return (void *)block->address;
}

static void *guard_malloc(malloc_zone_t *basic, size_t size)
{
    struct guard_zone *zone = guard_zone_from_zone(basic);
    return guard_allocate(zone, size, minimum_alignment(zone), false);
}

static void *guard_calloc(malloc_zone_t *basic, size_t count, size_t size)
{
    struct guard_zone *zone = guard_zone_from_zone(basic);
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    /* Fresh and revived pages alike read as zero. */
    return guard_allocate(zone, total, minimum_alignment(zone), true);
}

static void *guard_memalign(malloc_zone_t *basic, size_t alignment,
                            size_t size)
{
    struct guard_zone *zone = guard_zone_from_zone(basic);
    if (!MD_IS_POWER_OF_TWO(alignment)) {
        errno = EINVAL;
        return NULL;
    }
    if (alignment < minimum_alignment(zone))
        alignment = minimum_alignment(zone);
    return guard_allocate(zone, size, alignment, false);
}

static void *guard_valloc(malloc_zone_t *basic, size_t size)
{
    return guard_memalign(basic, OS_PAGE_SIZE, size);
}

static unsigned guard_batch_malloc(malloc_zone_t *basic, size_t size,
                                   void **results, unsigned count)
{
    unsigned made = 0;
    while (made < count && (results[made] = guard_malloc(basic, size)))
        made++;
    return made;
}

/* ---- free ---- */

/* Puts a retired block in the quarantine, then brings the quarantine
 * back within its bound, unmapping in batches without the lock. */
static void quarantine(struct guard_zone *zone, struct guard_zone_block *block)
{
    struct guard_zone_eviction eviction = {.count = 0};
    bool over_bound;
    md_lock(&zone->lock);
    zone->in_flight_count--;
    guard_zone_quarantine_add(zone, block);
    do {
        over_bound = guard_zone_quarantine_trim(zone, &eviction);
        md_unlock(&zone->lock);
        guard_zone_eviction_finish(&eviction);
        if (over_bound)
            md_lock(&zone->lock);
    } while (over_bound);
}

/* Retires a live block of this zone into the quarantine; false when
 * `address` is not one. */
static bool release_guarded(struct guard_zone *zone, uintptr_t address)
{
    md_lock(&zone->lock);
    struct guard_zone_block *block = guard_zone_find_live(zone, address);
    if (block) {
        guard_zone_claim(zone, block);
        zone->in_flight_count++;
    }
    md_unlock(&zone->lock);
    if (!block)
        return false;
    /* Claimed: no other thread can reach the block while its pages
     * change. */
    guard_zone_pages_retire(block->mapping, block->mapping_size);
    quarantine(zone, block);
    return true;
}

/* Frees a block of this zone, guarded or from the fallback; false when
 * `pointer` is neither. */
static bool release_block(struct guard_zone *zone, void *pointer)
{
    if (release_guarded(zone, (uintptr_t)pointer))
        return true;
    malloc_zone_t *fallback = zone->fallback;
    if (!fallback->size(fallback, pointer))
        return false;
    fallback->free(fallback, pointer);
    return true;
}

static void guard_free(malloc_zone_t *basic, void *pointer)
{
    if (pointer && !release_block(guard_zone_from_zone(basic), pointer))
        report_pointer_error(pointer, FREED_NOT_ALLOCATED);
}

static void guard_free_definite_size(malloc_zone_t *basic, void *pointer,
                                     size_t size)
{
    guard_free(basic, pointer);
}

static void guard_batch_free(malloc_zone_t *basic, void **pointers,
                             unsigned count)
{
    for (unsigned i = 0; i < count; i++)
        guard_free(basic, pointers[i]);
}

/* ---- size and realloc ---- */

bool guard_zone_is(malloc_zone_t *zone)
{
    return zone && zone->introspect == &guard_zone_from_zone(zone)->introspect &&
           guard_zone_from_zone(zone)->magic == GUARD_ZONE_MAGIC;
}

void guard_zone_set_stack_id(malloc_zone_t *basic, const void *pointer,
                             uint32_t id)
{
    struct guard_zone *zone = guard_zone_from_zone(basic);
    md_lock(&zone->lock);
    struct guard_zone_block *block = guard_zone_find_live(zone,
                                                          (uintptr_t)pointer);
    if (block)
        block->stack_id = id;
    md_unlock(&zone->lock);
    if (!block)
        szone_set_stack_id(szone_from_zone(zone->fallback), pointer, id);
}

/* A copy of the record of the live block at `pointer`, taken under the
 * lock; false when the block is not one of the zone's own pages (it may
 * be its fallback's). */
static bool guard_zone_live_copy(struct guard_zone *zone, const void *pointer,
                                 struct guard_zone_block *copy)
{
    md_lock(&zone->lock);
    const struct guard_zone_block *block =
        guard_zone_find_live(zone, (uintptr_t)pointer);
    if (block)
        *copy = *block;
    md_unlock(&zone->lock);
    return block != NULL;
}

uint32_t guard_zone_stack_id(malloc_zone_t *basic, const void *pointer)
{
    struct guard_zone *zone = guard_zone_from_zone(basic);
    struct guard_zone_block block;
    return guard_zone_live_copy(zone, pointer, &block)
               ? block.stack_id
               : szone_stack_id(szone_from_zone(zone->fallback), pointer);
}

static size_t guard_size(malloc_zone_t *basic, const void *pointer)
{
    struct guard_zone *zone = guard_zone_from_zone(basic);
    struct guard_zone_block block;
    return guard_zone_live_copy(zone, pointer, &block)
               ? block.size
               : zone->fallback->size(zone->fallback, pointer);
}

/* Always a new block, as libgmalloc does: the old one goes to the
 * quarantine, so a pointer kept across the realloc faults. */
static void *guard_realloc(malloc_zone_t *basic, void *pointer, size_t size)
{
    struct guard_zone *zone = guard_zone_from_zone(basic);
    if (!pointer)
        return guard_malloc(basic, size);
    size_t old_size = guard_size(basic, pointer);
    if (old_size == 0) {
        report_pointer_error(pointer, REALLOCED_NOT_ALLOCATED);
        errno = EINVAL;
        return NULL;
    }
    void *moved = guard_malloc(basic, size);
    if (!moved)
        return NULL;
    memcpy(moved, pointer, size < old_size ? size : old_size);
    if (!release_block(zone, pointer))
        report_pointer_error(pointer, "pointer being realloc'd was freed meanwhile");
    return moved;
}

/* ---- the rest of the table ---- */

static size_t guard_pressure_relief(malloc_zone_t *basic, size_t goal)
{
    /* The quarantine holds address space but no memory: only the
     * fallback has pages to give back. */
    malloc_zone_t *fallback = guard_zone_from_zone(basic)->fallback;
    return fallback->pressure_relief(fallback, goal);
}

static bool range_holds(const struct guard_zone_block_list *list,
                        uintptr_t address)
{
    const struct guard_zone_block *block;
    TAILQ_FOREACH(block, list, link)
        if (address - block->mapping < block->mapping_size)
            return true;
    return false;
}

/* Any address in a live or quarantined block's pages, guard included.
 * Linear in the blocks: tools ask this rarely, free never does. */
static boolean_t guard_claimed_address(malloc_zone_t *basic, void *pointer)
{
    struct guard_zone *zone = guard_zone_from_zone(basic);
    uintptr_t address = (uintptr_t)pointer;
    md_lock(&zone->lock);
    bool claimed = range_holds(&zone->live, address) ||
                   range_holds(&zone->quarantine, address);
    md_unlock(&zone->lock);
    if (claimed)
        return 1;
    malloc_zone_t *fallback = zone->fallback;
    return fallback->claimed_address(fallback, pointer);
}

/* The guard zone is only ever the default zone, which stays. */
static void guard_destroy(malloc_zone_t *basic)
{
    report_error("the default zone cannot be destroyed");
}

malloc_zone_t *guard_zone_fallback(malloc_zone_t *basic)
{
    return guard_zone_from_zone(basic)->fallback;
}

static void guard_zone_set_functions(struct guard_zone *zone)
{
    zone->introspect = guard_zone_introspection;
    malloc_zone_t *basic = &zone->basic;
    basic->size = guard_size;
    basic->malloc = guard_malloc;
    basic->calloc = guard_calloc;
    basic->valloc = guard_valloc;
    basic->free = guard_free;
    basic->realloc = guard_realloc;
    basic->destroy = guard_destroy;
    basic->batch_malloc = guard_batch_malloc;
    basic->batch_free = guard_batch_free;
    basic->introspect = &zone->introspect;
    basic->version = 10;
    basic->memalign = guard_memalign;
    basic->free_definite_size = guard_free_definite_size;
    basic->pressure_relief = guard_pressure_relief;
    basic->claimed_address = guard_claimed_address;
}

malloc_zone_t *guard_zone_create(const struct guard_zone_config *config)
{
    size_t mapping_size = MD_ALIGN_UP(sizeof(struct guard_zone), OS_PAGE_SIZE);
    struct guard_zone *zone = os_map(mapping_size);
    if (!zone)
        return NULL;
    zone->fallback = szone_create(false, NULL);
    if (!zone->fallback || !guard_zone_table_init(zone)) {
        if (zone->fallback)
            zone->fallback->destroy(zone->fallback);
        os_unmap_table(zone, mapping_size);
        return NULL;
    }
    zone->fallback->zone_name = "GuardMallocFallbackZone";
    zone->magic = GUARD_ZONE_MAGIC;
    zone->config = *config;
    zone->mapping_size = mapping_size;
    md_lock_init(&zone->lock);
    zone->records.object_size = sizeof(struct guard_zone_block);
    TAILQ_INIT(&zone->live);
    TAILQ_INIT(&zone->quarantine);
    zone->max_map_count = guard_zone_read_max_map_count();
    zone->map_budget = zone->max_map_count / 4 * 3;
    guard_zone_set_functions(zone);
    return &zone->basic;
}
