/*
 * Regions of the scalable zone and the pages of their runs.
 *
 * Release policy: a run whose blocks have all come back is returned to
 * its region at once, except the last run of a class when it is a single
 * page, which stays to absorb malloc/free ping-pong.  Its pages go back
 * to the kernel (MADV_DONTNEED) later, in batches
 * (szone_dirty_pages.c); a new run takes such pages first, those of its
 * own class before any others.
 * Empty regions stay mapped, holding no memory once their pages went
 * back, so that a program that allocates again soon does not pay for a
 * new mapping.  pressure_relief
 * releases everything at once: empty runs, kept runs included, their
 * pages, and empty regions (unmapped, all but the last of each kind).
 *
 * Giving pages back lazily (MADV_FREE) was measured and rejected: the
 * pages stay in the resident set until the kernel needs them, and a
 * churn of many size classes then held 1.3 times the memory.
 */
#include "config.h"
#include "szone.h"
#include "os_memory.h"

#include <string.h>

static uint64_t page_mask(unsigned first, unsigned count)
{
    return (count >= 64 ? ~0ULL : ((1ULL << count) - 1)) << first;
}

/* The first of `count` consecutive pages of the region among
 * `candidates`, or -1. */
static int region_find_free_pages(uint64_t candidates, unsigned count)
{
    for (unsigned first = 0; first + count <= REGION_PAGE_COUNT; first++) {
        uint64_t mask = page_mask(first, count);
        if ((candidates & mask) == mask)
            return (int)first;
    }
    return -1;
}

/* Among the region's spans of `count` unused pages, the one with the
 * fewest pages that are not kept resident (*fresh): -1 when there is no
 * span. */
static int region_find_least_fresh_pages(const struct szone_region *region,
                                         unsigned count, unsigned *fresh)
{
    int best = -1;
    for (unsigned first = 0; first + count <= REGION_PAGE_COUNT; first++) {
        uint64_t mask = page_mask(first, count);
        if (region->used_pages & mask)
            continue;
        unsigned span_fresh =
            (unsigned)__builtin_popcountll(mask & ~region->dirty_pages);
        if (best < 0 || span_fresh < *fresh) {
            best = (int)first;
            *fresh = span_fresh;
        }
    }
    return best;
}

/* Region lock held.  Kept pages that the same class left come first:
 * the new run touches them the way the last one did.  Otherwise the
 * unused span that needs the fewest fresh pages, kept pages of other
 * classes counting as resident; *fresh says how many it needs. */
static struct szone_region *region_find_pages(struct szone *zone,
                                              unsigned class_index,
                                              unsigned count, int *first,
                                              unsigned *fresh)
{
    enum szone_kind kind = szone_class_kind(class_index);
    for (struct szone_region *region = zone->regions[kind]; region;
         region = region->next) {
        uint64_t kept = szone_dirty_pages_of_class(region, class_index);
        if (kept && (*first = region_find_free_pages(kept, count)) >= 0) {
            *fresh = 0;
            return region;
        }
    }
    struct szone_region *best = NULL;
    *fresh = count;
    for (struct szone_region *region = zone->regions[kind];
         region && *fresh > 0; region = region->next) {
        unsigned span_fresh = 0;
        int span = region_find_least_fresh_pages(region, count, &span_fresh);
        if (span >= 0 && (!best || span_fresh < *fresh)) {
            best = region;
            *first = span;
            *fresh = span_fresh;
        }
    }
    return best;
}

/* A region's 4 MiB of blocks, with a guard page on each side when the
 * zone asks for them (MallocGuardEdges=all). */
static char *region_map_data(struct szone *zone)
{
    size_t guard = zone->region_guard;
    char *mapping = os_map_aligned_at(REGION_SIZE + 2 * guard, REGION_SIZE,
                                      guard);
    if (!mapping || !guard)
        return mapping;
    os_protect_none(mapping, guard);
    os_protect_none(mapping + guard + REGION_SIZE, guard);
    return mapping + guard;
}

static void region_unmap_data(struct szone *zone, uintptr_t base)
{
    os_unmap((void *)(base - zone->region_guard),
             REGION_SIZE + 2 * zone->region_guard);
}

static struct szone_region *region_create(struct szone *zone,
                                          enum szone_kind kind)
{
    struct szone_region *region = zone->spare_regions;
    if (region)
        zone->spare_regions = region->next;
    else if (!(region = os_map(sizeof(*region))))
        return NULL;
    char *data = region_map_data(zone);
    if (!data) {
        region->next = zone->spare_regions;
        zone->spare_regions = region;
        return NULL;
    }
    region->magic = SZONE_REGION_MAGIC;
    region->kind = (uint8_t)kind;
    region->zone = zone;
    region->base = (uintptr_t)data;
    region->used_pages = 0;
    region->dirty_pages = 0;
    if (!region_map_set(region->base, region)) {
        region_unmap_data(zone, region->base);
        region->next = zone->spare_regions;
        zone->spare_regions = region;
        return NULL;
    }
    region->next = zone->regions[kind];
    zone->regions[kind] = region;
    return region;
}

static void run_init(struct szone_run *run, struct szone_region *region,
                     unsigned first_page, unsigned page_count,
                     unsigned class_index)
{
    size_t block_size = szone_class_to_size(class_index);
    memset(run, 0, sizeof(*run));
    run->region = region;
    run->start = region->base + ((uintptr_t)first_page << RUN_PAGE_SHIFT);
    run->meta = &region->meta[first_page];
    run->block_size = (uint32_t)block_size;
    run->size_reciprocal = ((1ULL << RUN_RECIPROCAL_SHIFT) / block_size) + 1;
    run->class_index = (uint16_t)class_index;
    run->page_count = (uint16_t)page_count;
    run->block_count =
        (uint16_t)(((size_t)page_count << RUN_PAGE_SHIFT) / block_size);
    run->free_head = RUN_FREE_LIST_END;
    for (unsigned page = first_page; page < first_page + page_count; page++)
        region->page_run[page] = (uint8_t)first_page;
}

static void zone_count_run_bytes(struct szone *zone, long delta)
{
    szone_count_bytes(&zone->bytes_in_runs, &zone->peak_bytes_in_runs, delta);
}

struct szone_run *szone_region_new_run(struct szone *zone, unsigned magazine,
                                       unsigned class_index)
{
    enum szone_kind kind = szone_class_kind(class_index);
    unsigned pages = szone_class_run_pages(class_index);
    struct szone_run *run = NULL;

    md_lock(&zone->region_lock);
    int first = 0;
    unsigned fresh = 0;
    struct szone_region *region =
        region_find_pages(zone, class_index, pages, &first, &fresh);
    if (!region && (region = region_create(zone, kind)))
        first = 0;
    if (region) {
        uint64_t mask = page_mask((unsigned)first, pages);
        region->used_pages |= mask;
        szone_dirty_pages_take(zone, region, mask);
        szone_dirty_pages_before_growth(zone, fresh);
        run = &region->runs[first];
        run_init(run, region, (unsigned)first, pages, class_index);
        run->magazine = (uint8_t)magazine;
        zone_count_run_bytes(zone, (long)pages << RUN_PAGE_SHIFT);
    }
    md_unlock(&zone->region_lock);
    return run;
}

static void region_unlink(struct szone *zone, struct szone_region *region)
{
    struct szone_region **link = &zone->regions[region->kind];
    while (*link != region)
        link = &(*link)->next;
    *link = region->next;
}

/* Region lock held; the region has no runs. */
static void region_retire(struct szone *zone, struct szone_region *region)
{
    region_unlink(zone, region);
    szone_dirty_pages_take(zone, region, region->dirty_pages);
    region_map_set(region->base, NULL);
    region_unmap_data(zone, region->base);
    os_discard(region, sizeof(*region));
    region->next = zone->spare_regions;
    zone->spare_regions = region;
}

/* Region lock held. */
static void run_release_pages(struct szone *zone, struct szone_run *run)
{
    struct szone_region *region = run->region;
    unsigned first = (unsigned)((run->start - region->base) >> RUN_PAGE_SHIFT);
    size_t bytes = (size_t)run->page_count << RUN_PAGE_SHIFT;
    uint64_t mask = page_mask(first, run->page_count);

    szone_release_log_tags(run->meta->log_tag, run->carved);
    /* The next run here expects never-used blocks to read BLOCK_FREE,
     * with no requested size. */
    memset(run->meta->state, 0, run->carved);
    if (zone->debugging)
        memset(run->meta->requested_size, 0,
               run->carved * sizeof(run->meta->requested_size[0]));
    region->used_pages &= ~mask;
    szone_dirty_pages_add(zone, region, mask, run->class_index);
    memset(run, 0, sizeof(*run));
    zone_count_run_bytes(zone, -(long)bytes);
}

static bool region_is_last_of_kind(struct szone *zone,
                                   const struct szone_region *region)
{
    return zone->regions[region->kind] == region && region->next == NULL;
}

size_t szone_region_release_empty(struct szone *zone)
{
    md_lock(&zone->region_lock);
    size_t given_back = szone_dirty_pages_purge(zone);
    for (unsigned kind = 0; kind < SZONE_KIND_COUNT; kind++) {
        struct szone_region *region = zone->regions[kind], *next;
        for (; region; region = next) {
            next = region->next;
            if (region->used_pages == 0 &&
                !region_is_last_of_kind(zone, region))
                region_retire(zone, region);
        }
    }
    md_unlock(&zone->region_lock);
    return given_back;
}

void szone_region_release_run(struct szone *zone, struct szone_run *run)
{
    md_lock(&zone->region_lock);
    run_release_pages(zone, run);
    md_unlock(&zone->region_lock);
}

void szone_region_destroy_all(struct szone *zone)
{
    for (unsigned kind = 0; kind < SZONE_KIND_COUNT; kind++) {
        struct szone_region *region = zone->regions[kind], *next;
        for (; region; region = next) {
            next = region->next;
            for (unsigned page = 0; page < REGION_PAGE_COUNT; page++)
                if (region->runs[page].page_count)
                    szone_release_log_tags(region->runs[page].meta->log_tag,
                                           region->runs[page].carved);
            region_map_set(region->base, NULL);
            region_unmap_data(zone, region->base);
            os_unmap_table(region, sizeof(*region));
        }
        zone->regions[kind] = NULL;
    }
    struct szone_region *spare = zone->spare_regions, *next;
    for (; spare; spare = next) {
        next = spare->next;
        os_unmap_table(spare, sizeof(*spare));
    }
    zone->spare_regions = NULL;
}
