/*
 * Introspection of the scalable zone: locks for fork and for tools,
 * statistics (counted through the zone's own enumerator), the
 * consistency check, and the printout.
 */
#include "config.h"
#include "szone.h"
#include "report.h"

#include <stdio.h>
#include <string.h>

void szone_force_lock(malloc_zone_t *basic)
{
    struct szone *zone = szone_from_zone(basic);
    for (unsigned i = 0; i < szone_class_total(zone); i++)
        md_lock(&zone->classes[i].lock);
    md_lock(&zone->region_lock);
    md_lock(&zone->large_lock);
    md_lock(&zone->thread_caches_lock);
}

void szone_force_unlock(malloc_zone_t *basic)
{
    struct szone *zone = szone_from_zone(basic);
    md_unlock(&zone->thread_caches_lock);
    md_unlock(&zone->large_lock);
    md_unlock(&zone->region_lock);
    for (unsigned i = szone_class_total(zone); i-- > 0;)
        md_unlock(&zone->classes[i].lock);
}

static void szone_reinit_lock(malloc_zone_t *basic)
{
    struct szone *zone = szone_from_zone(basic);
    for (unsigned i = 0; i < szone_class_total(zone); i++)
        md_lock_init(&zone->classes[i].lock);
    md_lock_init(&zone->region_lock);
    md_lock_init(&zone->large_lock);
    md_lock_init(&zone->thread_caches_lock);
    szone_thread_cache_after_fork_child(zone);
}

static boolean_t szone_zone_locked(malloc_zone_t *basic)
{
    struct szone *zone = szone_from_zone(basic);
    md_lock_t *zone_locks[] = {&zone->region_lock, &zone->large_lock,
                               &zone->thread_caches_lock};
    for (unsigned i = 0; i < MD_ARRAY_SIZE(zone_locks); i++) {
        if (!md_trylock(zone_locks[i]))
            return 1;
        md_unlock(zone_locks[i]);
    }
    for (unsigned i = 0; i < szone_class_total(zone); i++) {
        if (!md_trylock(&zone->classes[i].lock))
            return 1;
        md_unlock(&zone->classes[i].lock);
    }
    return 0;
}

static size_t szone_good_size(malloc_zone_t *basic, size_t size)
{
    if (size <= SMALL_MAX)
        return szone_class_to_size(szone_size_to_class(size));
    size_t rounded = MD_ALIGN_UP(size, 4096UL);
    return rounded < size ? size : rounded;
}

/* ---- statistics ---- */

struct statistics_count {
    malloc_statistics_t *stats;
    int which; /* -1 for all kinds */
};

/* 0 tiny, 1 small, 2 large, 3 huge, from a block's size. */
static int statistics_kind_of(size_t size)
{
    if (size <= TINY_MAX)
        return 0;
    if (size <= SMALL_MAX)
        return 1;
    return size < LARGE_HUGE_THRESHOLD ? 2 : 3;
}

static void statistics_record(task_t task, void *context, unsigned type,
                              vm_range_t *ranges, unsigned count)
{
    struct statistics_count *counting = context;
    for (unsigned i = 0; i < count; i++) {
        if (counting->which >= 0 &&
            statistics_kind_of(ranges[i].size) != counting->which)
            continue;
        counting->stats->blocks_in_use++;
        counting->stats->size_in_use += ranges[i].size;
    }
}

static void szone_count_in_use(struct szone *zone, malloc_statistics_t *stats,
                               int which)
{
    struct statistics_count counting = {stats, which};
    szone_force_lock(&zone->basic);
    szone_enumerator(0, &counting, MALLOC_PTR_IN_USE_RANGE_TYPE,
                     (vm_address_t)zone, NULL, statistics_record);
    szone_force_unlock(&zone->basic);
}

/* size_allocated is the memory of runs and large blocks; max_size_in_use
 * is the peak of that figure. */
static void szone_statistics(malloc_zone_t *basic, malloc_statistics_t *stats)
{
    struct szone *zone = szone_from_zone(basic);
    memset(stats, 0, sizeof(*stats));
    szone_count_in_use(zone, stats, -1);
    stats->size_allocated = zone->bytes_in_runs + zone->large_bytes;
    stats->max_size_in_use = zone->peak_bytes_in_runs + zone->peak_large_bytes;
}

void szone_statistics_of_kind(struct szone *zone, malloc_statistics_t *stats,
                              unsigned which)
{
    memset(stats, 0, sizeof(*stats));
    szone_count_in_use(zone, stats, (int)which);
    if (which < 2) {
        for (unsigned i = 0; i < szone_class_total(zone); i++) {
            unsigned c = i % SZONE_CLASS_COUNT;
            if (szone_class_kind(c) == which)
                stats->size_allocated +=
                    (size_t)zone->classes[i].run_count *
                    ((size_t)szone_class_run_pages(c) << RUN_PAGE_SHIFT);
        }
    } else {
        stats->size_allocated = stats->size_in_use;
    }
    stats->max_size_in_use = stats->size_in_use > stats->size_allocated
                                 ? stats->size_in_use
                                 : stats->size_allocated;
}

/* ---- check ---- */

static boolean_t check_failed(struct szone *zone, const char *what,
                              uintptr_t where)
{
    return (boolean_t)report_check_failed(zone->basic.zone_name, what, where);
}

static boolean_t check_failed_damage(struct szone *zone,
                                     const struct szone_damage *damage)
{
    struct report_line line;
    report_check_line_begin(&line, zone->basic.zone_name);
    szone_damage_describe(damage, &line);
    report_append(&line, " at ");
    report_append_hex(&line, damage->block);
    report_line_write(&line);
    return 0;
}

/* Canaries of blocks in use, fills of freed blocks. */
static boolean_t check_run_blocks(struct szone *zone, struct szone_run *run)
{
    for (unsigned i = 0; zone->debugging && i < run->carved; i++) {
        struct szone_damage damage = szone_debug_run_block_damage(zone, run, i);
        if (damage.kind != DAMAGE_NONE)
            return check_failed_damage(zone, &damage);
    }
    return 1;
}

static boolean_t check_run(struct szone *zone, struct szone_run *run)
{
    if (run->block_size != szone_class_to_size(run->class_index) ||
        run->carved > run->block_count || run->free_count > run->carved)
        return check_failed(zone, "run header is inconsistent", run->start);
    unsigned allocated = 0, cached = 0, free_seen = 0;
    for (unsigned i = 0; i < run->carved; i++) {
        uint8_t state = run->meta->state[i];
        allocated += state == BLOCK_ALLOCATED;
        cached += state == BLOCK_CACHED;
        if (state > BLOCK_CACHED)
            return check_failed(zone, "block has an unknown state",
                                run->start + (uintptr_t)i * run->block_size);
    }
    if (allocated + cached != run->handed_out)
        return check_failed(zone, "run's handed-out count disagrees with its blocks",
                            run->start);
    for (unsigned index = run->free_head; index != RUN_FREE_LIST_END;
         index = run->meta->next_free[index]) {
        uintptr_t block = run->start + (uintptr_t)index * run->block_size;
        if (index >= run->carved || ++free_seen > run->free_count)
            return check_failed(zone, "run's free list is broken (out of range or a cycle)",
                                block);
        if (run->meta->state[index] != BLOCK_FREE)
            return check_failed(zone, "block on a free list is not free", block);
    }
    if (free_seen != run->free_count ||
        free_seen + run->handed_out != run->carved)
        return check_failed(zone, "run's free count disagrees with its free list",
                            run->start);
    return check_run_blocks(zone, run);
}

static boolean_t check_region(struct szone *zone, struct szone_region *region)
{
    if (region->magic != SZONE_REGION_MAGIC || region->zone != zone)
        return check_failed(zone, "region descriptor is damaged", region->base);
    if (region_map_lookup(region->base) != region)
        return check_failed(zone, "region map does not point at region",
                            region->base);
    uint64_t pages_in_runs = 0;
    for (unsigned page = 0; page < REGION_PAGE_COUNT; page++) {
        struct szone_run *run = &region->runs[page];
        if (run->page_count == 0 || region->page_run[page] != page)
            continue;
        if (szone_class_kind(run->class_index) != region->kind)
            return check_failed(zone, "run of the wrong kind in region",
                                run->start);
        pages_in_runs |= ((1ULL << run->page_count) - 1) << page;
        if (!check_run(zone, run))
            return 0;
    }
    if (pages_in_runs != region->used_pages)
        return check_failed(zone, "region's page bitmap disagrees with its runs",
                            region->base);
    if (region->dirty_pages & region->used_pages)
        return check_failed(zone, "pages of a run also kept as free pages",
                            region->base);
    return 1;
}

static boolean_t check_classes(struct szone *zone)
{
    for (unsigned i = 0; i < szone_class_total(zone); i++) {
        unsigned n = 0;
        struct szone_run *run;
        LIST_FOREACH(run, &zone->classes[i].partial, partial_link) {
            if (run->class_index != i % SZONE_CLASS_COUNT ||
                run->magazine != i / SZONE_CLASS_COUNT ||
                ++n > zone->classes[i].run_count)
                return check_failed(zone, "class's run list is broken",
                                    run->start);
        }
    }
    return 1;
}

static boolean_t szone_check(malloc_zone_t *basic)
{
    struct szone *zone = szone_from_zone(basic);
    boolean_t ok = 1;
    szone_force_lock(basic);
    for (unsigned kind = 0; kind < SZONE_KIND_COUNT && ok; kind++)
        for (struct szone_region *region = zone->regions[kind]; region && ok;
             region = region->next)
            ok = check_region(zone, region);
    if (ok)
        ok = check_classes(zone);
    if (ok && szone_dirty_pages_count(zone) != zone->dirty_bytes)
        ok = check_failed(zone, "kept page count disagrees with the regions",
                          (uintptr_t)zone);
    size_t large_bytes = 0;
    struct szone_large *large;
    LIST_FOREACH(large, &zone->large_blocks, zone_link) {
        if (!ok)
            break;
        large_bytes += large->size;
        if (large->zone != zone || (large->address & 4095) ||
            *large->zone_link.le_prev != large) {
            ok = check_failed(zone, "large block record is damaged",
                              large->address);
        } else if (zone->debugging) {
            struct szone_damage damage = szone_debug_large_damage(zone, large);
            if (damage.kind != DAMAGE_NONE)
                ok = check_failed_damage(zone, &damage);
        }
    }
    if (ok && large_bytes != zone->large_bytes)
        ok = check_failed(zone, "large byte count disagrees with the blocks",
                          (uintptr_t)zone);
    /* The hash lock nests inside the zone locks, as across fork. */
    LIST_FOREACH(large, &zone->large_blocks, zone_link)
        if (ok && szone_large_find(large->address) != large)
            ok = check_failed(zone, "large block missing from the hash",
                              large->address);
    szone_force_unlock(basic);
    return ok;
}

/* ---- print ---- */

static void print_line(const char *text)
{
    struct report_line line = {.length = 0};
    report_append(&line, text);
    report_line_write(&line);
}

static void print_kind(struct szone *zone, unsigned which, const char *label)
{
    malloc_statistics_t stats;
    szone_statistics_of_kind(zone, &stats, which);
    char text[160];
    snprintf(text, sizeof(text), "  %-6s %u blocks, %zu bytes in use, %zu bytes held",
             label, stats.blocks_in_use, stats.size_in_use,
             stats.size_allocated);
    print_line(text);
}

static void print_runs(struct szone *zone)
{
    char text[200];
    for (unsigned kind = 0; kind < SZONE_KIND_COUNT; kind++)
        for (struct szone_region *region = zone->regions[kind]; region;
             region = region->next)
            for (unsigned page = 0; page < REGION_PAGE_COUNT; page++) {
                const struct szone_run *run = &region->runs[page];
                if (run->page_count == 0 || region->page_run[page] != page)
                    continue;
                snprintf(text, sizeof(text),
                         "    run %#lx: %u-byte blocks, %u of %u handed out, %u free listed",
                         (unsigned long)run->start, run->block_size,
                         run->handed_out, run->block_count, run->free_count);
                print_line(text);
            }
}

static void szone_print(malloc_zone_t *basic, boolean_t verbose)
{
    struct szone *zone = szone_from_zone(basic);
    char text[160];
    snprintf(text, sizeof(text), "Scalable zone %p \"%s\"", (void *)zone,
             basic->zone_name ? basic->zone_name : "");
    print_line(text);
    print_kind(zone, 0, "tiny");
    print_kind(zone, 1, "small");
    print_kind(zone, 2, "large");
    print_kind(zone, 3, "huge");
    if (verbose) {
        szone_force_lock(basic);
        print_runs(zone);
        szone_force_unlock(basic);
    }
}

static void szone_log(malloc_zone_t *zone, void *address) {}

const malloc_introspection_t szone_introspection = {
    .enumerator = szone_enumerator,
    .good_size = szone_good_size,
    .check = szone_check,
    .print = szone_print,
    .log = szone_log,
    .force_lock = szone_force_lock,
    .force_unlock = szone_force_unlock,
    .statistics = szone_statistics,
    .zone_locked = szone_zone_locked,
    .reinit_lock = szone_reinit_lock,
};
