/*
 * Introspection of the guard zone: statistics, the consistency check,
 * the printout and the locks (the enumerator is in
 * guard_zone_enumerate.c).  The fallback
 * scalable zone is part of the guard zone to the outside: each of these
 * covers its blocks too.
 */
#include "config.h"
#include "enumerate_util.h"
#include "guard_zone.h"
#include "report.h"
#include "szone.h"

#include <mallocdebug/stack_log.h>
#include <stdio.h>
#include <string.h>

/* ---- statistics ---- */

/* size_allocated is the data pages of live blocks (the quarantine holds
 * no memory), max_size_in_use the peak of that figure; each plus the
 * fallback's. */
static void guard_statistics(malloc_zone_t *basic, malloc_statistics_t *stats)
{
    struct guard_zone *zone = guard_zone_from_zone(basic);
    malloc_zone_t *fallback = zone->fallback;
    fallback->introspect->statistics(fallback, stats);
    md_lock(&zone->lock);
    stats->blocks_in_use += (unsigned)zone->live_count;
    stats->size_in_use += zone->live_bytes;
    stats->size_allocated += zone->live_pages_bytes;
    stats->max_size_in_use += zone->peak_pages_bytes;
    md_unlock(&zone->lock);
}

/* ---- check ---- */

static boolean_t check_failed(struct guard_zone *zone, const char *what,
                              uintptr_t where)
{
    return (boolean_t)report_check_failed(zone->basic.zone_name, what, where);
}

struct list_totals {
    size_t count;
    size_t bytes;       /* block sizes (live) or mapping sizes (quarantine) */
    size_t pages_bytes; /* data pages (live) */
};

/* Zone lock held. */
static boolean_t check_live_block(struct guard_zone *zone,
                                  const struct guard_zone_block *block)
{
    size_t data_offset = zone->config.protect_before ? OS_PAGE_SIZE : 0;
    uintptr_t data = block->mapping + data_offset;
    uintptr_t data_end = data + block->mapping_size - OS_PAGE_SIZE;
    if (block->state != GUARD_BLOCK_LIVE)
        return check_failed(zone, "block on the live list is not live",
                            block->address);
    if (block->mapping & (OS_PAGE_SIZE - 1) ||
        block->mapping_size <= OS_PAGE_SIZE || block->address < data ||
        block->size == 0 || block->size > data_end - block->address)
        return check_failed(zone, "block record lies outside its pages",
                            block->address);
    if (guard_zone_find_live(zone, block->address) != block)
        return check_failed(zone, "live block missing from the hash",
                            block->address);
    return 1;
}

/* Zone lock held. */
static boolean_t check_live(struct guard_zone *zone)
{
    struct list_totals totals = {0, 0, 0};
    const struct guard_zone_block *block;
    TAILQ_FOREACH(block, &zone->live, link) {
        if (++totals.count > zone->live_count)
            return check_failed(zone, "live list is longer than its count",
                                block->address);
        if (!check_live_block(zone, block))
            return 0;
        totals.bytes += block->size;
        totals.pages_bytes += block->mapping_size - OS_PAGE_SIZE;
    }
    if (totals.count != zone->live_count || totals.bytes != zone->live_bytes ||
        totals.pages_bytes != zone->live_pages_bytes)
        return check_failed(zone, "live counts disagree with the live list",
                            (uintptr_t)zone);
    return 1;
}

/* Zone lock held. */
static boolean_t check_quarantine(struct guard_zone *zone)
{
    struct list_totals totals = {0, 0, 0};
    const struct guard_zone_block *block;
    TAILQ_FOREACH(block, &zone->quarantine, link) {
        if (++totals.count > zone->quarantine_count)
            return check_failed(zone, "quarantine is longer than its count",
                                block->mapping);
        if (block->state != GUARD_BLOCK_QUARANTINED ||
            guard_zone_find_live(zone, block->address) == block)
            return check_failed(zone, "quarantined block is still live",
                                block->address);
        totals.bytes += block->mapping_size;
    }
    if (totals.count != zone->quarantine_count ||
        totals.bytes != zone->quarantine_bytes)
        return check_failed(zone, "quarantine counts disagree with its list",
                            (uintptr_t)zone);
    return 1;
}

/* Zone lock held. */
static boolean_t check_maps(struct guard_zone *zone)
{
    size_t expected = GUARD_ZONE_MAPS_PER_LIVE_BLOCK *
                          (zone->live_count + zone->in_flight_count) +
                      zone->quarantine_count;
    if (zone->maps_held != expected)
        return check_failed(zone, "mapping count disagrees with the blocks",
                            (uintptr_t)zone);
    if (zone->maps_held > zone->map_budget)
        return check_failed(zone, "more mappings held than the budget allows",
                            (uintptr_t)zone);
    return 1;
}

static boolean_t guard_check(malloc_zone_t *basic)
{
    struct guard_zone *zone = guard_zone_from_zone(basic);
    md_lock(&zone->lock);
    boolean_t ok = zone->magic == GUARD_ZONE_MAGIC
                       ? check_live(zone) && check_quarantine(zone) &&
                             check_maps(zone)
                       : check_failed(zone, "zone header is damaged",
                                      (uintptr_t)zone);
    md_unlock(&zone->lock);
    malloc_zone_t *fallback = zone->fallback;
    return ok && fallback->introspect->check(fallback);
}

/* ---- print ---- */

static void print_line(const char *text)
{
    struct report_line line = {.length = 0};
    report_append(&line, text);
    report_line_write(&line);
}

/* Zone lock held. */
static void print_blocks(struct guard_zone *zone)
{
    char text[200];
    size_t data_offset = zone->config.protect_before ? OS_PAGE_SIZE : 0;
    const struct guard_zone_block *block;
    TAILQ_FOREACH(block, &zone->live, link) {
        uintptr_t guard = data_offset ? block->mapping
                                      : block->mapping + block->mapping_size -
                                            OS_PAGE_SIZE;
        snprintf(text, sizeof(text),
                 "    block %#lx: %zu bytes, pages %#lx-%#lx, guard page %#lx",
                 (unsigned long)block->address, block->size,
                 (unsigned long)(block->mapping + data_offset),
                 (unsigned long)(block->mapping + data_offset +
                                 block->mapping_size - OS_PAGE_SIZE),
                 (unsigned long)guard);
        print_line(text);
    }
}

static void guard_print(malloc_zone_t *basic, boolean_t verbose)
{
    struct guard_zone *zone = guard_zone_from_zone(basic);
    char text[300];
    md_lock(&zone->lock);
    snprintf(text, sizeof(text),
             "Guard Malloc zone %p \"%s\": %zu blocks, %zu bytes in use; "
             "%zu freed blocks in quarantine (%zu bytes of address space); "
             "%zu of %zu mappings (vm.max_map_count %zu)",
             (void *)zone, basic->zone_name ? basic->zone_name : "",
             zone->live_count, zone->live_bytes, zone->quarantine_count,
             zone->quarantine_bytes, zone->maps_held, zone->map_budget,
             zone->max_map_count);
    print_line(text);
    if (verbose)
        print_blocks(zone);
    md_unlock(&zone->lock);
    malloc_zone_t *fallback = zone->fallback;
    fallback->introspect->print(fallback, verbose);
}

/* ---- the rest ---- */

static size_t guard_good_size(malloc_zone_t *basic, size_t size)
{
    struct guard_zone *zone = guard_zone_from_zone(basic);
    size_t at_least_one = size ? size : 1;
    if (zone->config.strict_size)
        return at_least_one;
    size_t rounded = MD_ALIGN_UP(at_least_one, GUARD_ZONE_ALIGNMENT);
    return rounded < size ? size : rounded;
}

static void guard_log(malloc_zone_t *basic, void *address) {}

/* The zone's lock, then the fallback's: the order every path keeps. */
static void guard_force_lock(malloc_zone_t *basic)
{
    struct guard_zone *zone = guard_zone_from_zone(basic);
    md_lock(&zone->lock);
    zone->fallback->introspect->force_lock(zone->fallback);
}

static void guard_force_unlock(malloc_zone_t *basic)
{
    struct guard_zone *zone = guard_zone_from_zone(basic);
    zone->fallback->introspect->force_unlock(zone->fallback);
    md_unlock(&zone->lock);
}

static void guard_reinit_lock(malloc_zone_t *basic)
{
    struct guard_zone *zone = guard_zone_from_zone(basic);
    md_lock_init(&zone->lock);
    zone->fallback->introspect->reinit_lock(zone->fallback);
}

static boolean_t guard_zone_locked(malloc_zone_t *basic)
{
    struct guard_zone *zone = guard_zone_from_zone(basic);
    if (!md_trylock(&zone->lock))
        return 1;
    md_unlock(&zone->lock);
    return zone->fallback->introspect->zone_locked(zone->fallback);
}

const malloc_introspection_t guard_zone_introspection = {
    .enumerator = guard_zone_enumerator,
    .good_size = guard_good_size,
    .check = guard_check,
    .print = guard_print,
    .log = guard_log,
    .force_lock = guard_force_lock,
    .force_unlock = guard_force_unlock,
    .statistics = guard_statistics,
    .zone_locked = guard_zone_locked,
    .reinit_lock = guard_reinit_lock,
};
