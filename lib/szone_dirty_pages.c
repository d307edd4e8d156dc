/*
 * Pages of emptied runs, kept resident for a while before they go back
 * to the kernel.
 *
 * Giving each emptied run's pages back at once cost a system call and a
 * TLB flush per 64 KiB, then a page fault per 4 KiB when the program
 * allocated again: a program that builds and frees a large structure in
 * rounds spent as long in the kernel as in its own code.  So an emptied
 * run's pages only leave the run: their region counts them free, and a
 * new run takes them before fresh pages, those its own class left
 * first, since it touches them about as its predecessor did.  They go
 * back to the kernel, a contiguous span per system call,
 *   - as many as the heap is about to take fresh ones (a new run on
 *     pages that were never used or were given back, a new or growing
 *     large block): resident memory does not grow while the heap keeps
 *     pages it does not use, so the peak resident set stays about what
 *     giving pages back at once would have held.  Only about: a run
 *     that takes kept pages may touch more of them than the run that
 *     left them did, and another zone's kept pages stay.  Giving all of
 *     them back at each growth, as an earlier version did, made a churn
 *     of blocks of many sizes fault its pages in again and again: one
 *     class's run emptied while another's grew (bench/README.md, "Small
 *     size classes");
 *   - all of them when a run empties DIRTY_PAGES_KEPT_MS or more after
 *     the last time they all were: a heap that shrank for good returns
 *     its memory, one that grows again at once finds pages that do not
 *     fault.
 * A heap that shrinks and then stays quiet keeps its pages until its
 * next emptied run or malloc_zone_pressure_relief.
 */
#include "config.h"
#include "szone.h"
#include "os_memory.h"

#include <time.h>

#define DIRTY_PAGES_KEPT_MS 1000

/* Written under the region lock, read without it by a large
 * allocation deciding whether to take it: a stale value only delays the
 * purge to the next growth. */
static size_t dirty_bytes(const struct szone *zone)
{
    return __atomic_load_n(&zone->dirty_bytes, __ATOMIC_RELAXED);
}

static void dirty_bytes_add(struct szone *zone, long delta)
{
    __atomic_store_n(&zone->dirty_bytes, zone->dirty_bytes + (size_t)delta,
                     __ATOMIC_RELAXED);
}

/* Milliseconds on a coarse clock (a few milliseconds apart), read from
 * the vDSO without a system call. */
static int64_t coarse_milliseconds(void)
{
    struct timespec now;
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &now) != 0)
        return 0;
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static size_t pages_bytes(uint64_t pages)
{
    return (size_t)__builtin_popcountll(pages) << RUN_PAGE_SHIFT;
}

/* Gives `pages` of the region back to the kernel, a contiguous span per
 * system call, and forgets them.  Region lock held. */
static void region_discard(struct szone *zone, struct szone_region *region,
                           uint64_t pages)
{
    size_t bytes = pages_bytes(pages);
    region->dirty_pages &= ~pages;
    while (pages) {
        unsigned first = (unsigned)__builtin_ctzll(pages);
        uint64_t from_first = pages >> first;
        unsigned count = from_first == ~0ULL
                             ? 64 - first
                             : (unsigned)__builtin_ctzll(~from_first);
        os_discard((void *)(region->base + ((uintptr_t)first << RUN_PAGE_SHIFT)),
                   (size_t)count << RUN_PAGE_SHIFT);
        pages &= count + first >= 64 ? 0 : ~0ULL << (first + count);
    }
    dirty_bytes_add(zone, -(long)bytes);
}

void szone_dirty_pages_setup(struct szone *zone)
{
    zone->dirty_purge_ms = coarse_milliseconds();
}

size_t szone_dirty_pages_purge(struct szone *zone)
{
    size_t purged = zone->dirty_bytes;
    zone->dirty_purge_ms = coarse_milliseconds();
    for (unsigned kind = 0; kind < SZONE_KIND_COUNT; kind++)
        for (struct szone_region *region = zone->regions[kind]; region;
             region = region->next)
            if (region->dirty_pages)
                region_discard(zone, region, region->dirty_pages);
    return purged;
}

void szone_dirty_pages_add(struct szone *zone, struct szone_region *region,
                           uint64_t pages, unsigned class_index)
{
    for (uint64_t rest = pages; rest; rest &= rest - 1)
        region->dirty_class[__builtin_ctzll(rest)] = (uint16_t)class_index;
    region->dirty_pages |= pages;
    dirty_bytes_add(zone, (long)pages_bytes(pages));
    if (coarse_milliseconds() - zone->dirty_purge_ms >= DIRTY_PAGES_KEPT_MS)
        szone_dirty_pages_purge(zone);
}

uint64_t szone_dirty_pages_of_class(const struct szone_region *region,
                                    unsigned class_index)
{
    uint64_t found = 0;
    for (uint64_t rest = region->dirty_pages; rest; rest &= rest - 1) {
        unsigned page = (unsigned)__builtin_ctzll(rest);
        if (region->dirty_class[page] == class_index)
            found |= 1ULL << page;
    }
    return found;
}

void szone_dirty_pages_take(struct szone *zone, struct szone_region *region,
                            uint64_t pages)
{
    uint64_t taken = region->dirty_pages & pages;
    region->dirty_pages &= ~taken;
    dirty_bytes_add(zone, -(long)pages_bytes(taken));
}

size_t szone_dirty_pages_count(const struct szone *zone)
{
    size_t bytes = 0;
    for (unsigned kind = 0; kind < SZONE_KIND_COUNT; kind++)
        for (const struct szone_region *region = zone->regions[kind]; region;
             region = region->next)
            bytes += pages_bytes(region->dirty_pages);
    return bytes;
}

void szone_dirty_pages_before_growth(struct szone *zone, size_t fresh_pages)
{
    for (unsigned kind = 0; kind < SZONE_KIND_COUNT; kind++)
        for (struct szone_region *region = zone->regions[kind]; region;
             region = region->next) {
            if (!fresh_pages || !zone->dirty_bytes)
                return;
            uint64_t chosen = 0;
            for (uint64_t rest = region->dirty_pages; rest && fresh_pages;
                 rest &= rest - 1, fresh_pages--)
                chosen |= rest & -rest;
            if (chosen)
                region_discard(zone, region, chosen);
        }
}

void szone_dirty_pages_before_large_growth(struct szone *zone,
                                          size_t fresh_bytes)
{
    if (!dirty_bytes(zone) || !fresh_bytes)
        return;
    md_lock(&zone->region_lock);
    szone_dirty_pages_before_growth(
        zone, MD_ALIGN_UP(fresh_bytes, RUN_PAGE_SIZE) >> RUN_PAGE_SHIFT);
    md_unlock(&zone->region_lock);
}
