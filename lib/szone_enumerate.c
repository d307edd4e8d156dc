/*
 * The scalable zone's enumerator: walks a zone through a memory_reader_t,
 * so the same code lists the blocks of this process (no reader) or of
 * another one (a reader that copies from it).  Every structure is copied
 * into a local variable as soon as it is read, and every count read from
 * the target is bounded, so a damaged or changing target can make the
 * walk stop early but never run away.
 */
#include "config.h"
#include "enumerate_util.h"
#include "szone.h"

#include <mallocdebug/stack_log.h>

#include <stddef.h>
#include <string.h>

/* 256 GiB of regions of one kind: more means a damaged list. */
#define ENUMERATE_MAX_REGIONS (1u << 16)

/* The types that need a walk of every block. */
#define BLOCK_TYPES (MALLOC_PTR_IN_USE_RANGE_TYPE | MALLOCDEBUG_STACK_ID_RANGE_TYPE)

struct enumeration {
    struct zone_walk common; /* what every zone's walk has */
    size_t block_head; /* canary bytes before tiny and small blocks */
    bool canaries;     /* requested sizes are the blocks' sizes */
};

/* In debug zones the program's block starts after the head canary and,
 * with canaries, its size is the one it asked for. */
static void add_run_block(struct enumeration *walk, const struct szone_run *run,
                          unsigned index, uint32_t requested, uint32_t stack_id)
{
    uintptr_t slot = run->start + (uintptr_t)index * run->block_size;
    size_t size = run->block_size - walk->block_head;
    if (walk->canaries && requested != 0 && requested != REQUESTED_SIZE_FREED_FILL &&
        requested - 1 <= size)
        size = requested - 1;
    zone_walk_add_block(&walk->common, slot + walk->block_head, size, stack_id);
}

#define STATE_CHUNK 256

/* One chunk of a run's metadata, the rows the walk needs. */
struct meta_chunk {
    uint8_t states[STATE_CHUNK];
    uint32_t requested[STATE_CHUNK];
    uint32_t stack_ids[STATE_CHUNK];
};

/* A row of 32-bit values, `count` of them from `first`. */
static kern_return_t read_row_u32(const struct zone_walk *walk,
                                  const uint32_t *row, unsigned first,
                                  unsigned count, uint32_t *out)
{
    return zone_walk_read(walk, (vm_address_t)&row[first],
                          count * sizeof(*out), out);
}

/* The stack ids of `count` log tags from `first`, read a few tags at a
 * time into a buffer of the walk's own. */
static kern_return_t read_stack_ids(const struct zone_walk *walk,
                                    const struct szone_meta_row *meta,
                                    unsigned first, unsigned count,
                                    uint32_t *out)
{
    enum { TAGS_PER_READ = 64 };
    struct szone_log_tag tags[TAGS_PER_READ];
    for (unsigned done = 0; done < count;) {
        unsigned now = count - done < TAGS_PER_READ ? count - done : TAGS_PER_READ;
        kern_return_t error = zone_walk_read(
            walk, (vm_address_t)&meta->log_tag[first + done],
            now * sizeof(tags[0]), tags);
        if (error)
            return error;
        for (unsigned i = 0; i < now; i++)
            out[done + i] = tags[i].stack_id;
        done += now;
    }
    return KERN_SUCCESS;
}

static kern_return_t read_meta_chunk(struct enumeration *walk,
                                     const struct szone_meta_row *meta,
                                     unsigned first, unsigned count,
                                     struct meta_chunk *chunk)
{
    /* A row the walk does not read reads as 0: no requested size (the
     * block's size stands), no stack id. */
    memset(chunk->requested, 0, count * sizeof(chunk->requested[0]));
    memset(chunk->stack_ids, 0, count * sizeof(chunk->stack_ids[0]));
    kern_return_t error = zone_walk_read(&walk->common,
                                         (vm_address_t)&meta->state[first],
                                         count, chunk->states);
    if (!error && walk->canaries)
        error = read_row_u32(&walk->common, meta->requested_size, first,
                             count, chunk->requested);
    if (!error && (walk->common.type_mask & MALLOCDEBUG_STACK_ID_RANGE_TYPE))
        error = read_stack_ids(&walk->common, meta, first, count,
                               chunk->stack_ids);
    return error;
}

/* Reads the run's metadata a chunk at a time: a remote reader may
 * recycle its buffer at the next read.  A run of more blocks than a row
 * holds is damaged: its rows would be read past their end. */
static kern_return_t enumerate_run_blocks(struct enumeration *walk,
                                          const struct szone_run *run)
{
    unsigned carved = run->carved <= run->block_count &&
                              run->block_count <= RUN_MAX_BLOCKS
                          ? run->carved
                          : 0;
    for (unsigned first = 0; first < carved; first += STATE_CHUNK) {
        unsigned count = carved - first < STATE_CHUNK ? carved - first
                                                      : STATE_CHUNK;
        struct meta_chunk chunk;
        kern_return_t error = read_meta_chunk(walk, run->meta, first, count,
                                              &chunk);
        if (error)
            return error;
        for (unsigned i = 0; i < count; i++)
            if (chunk.states[i] == BLOCK_ALLOCATED)
                add_run_block(walk, run, first + i, chunk.requested[i],
                              chunk.stack_ids[i]);
    }
    return KERN_SUCCESS;
}

static kern_return_t enumerate_region(struct enumeration *walk,
                                      vm_address_t address,
                                      vm_address_t *next)
{
    /* The header, without the metadata rows. */
    static const size_t header_size = offsetof(struct szone_region, meta);
    struct szone_region *region;
    void *local;
    kern_return_t error = walk->common.reader(walk->common.task, address,
                                              header_size, &local);
    if (error)
        return error;
    region = local;
    *next = (vm_address_t)region->next;
    if (region->magic != SZONE_REGION_MAGIC)
        return KERN_FAILURE;
    uintptr_t base = region->base;
    zone_walk_add_admin(&walk->common, address, sizeof(struct szone_region));
    zone_walk_add_region(&walk->common, base, REGION_SIZE);
    if (!(walk->common.type_mask & BLOCK_TYPES))
        return KERN_SUCCESS;
    for (unsigned page = 0; page < REGION_PAGE_COUNT; page++) {
        struct szone_run run;
        /* Re-read: the reader may have recycled the header's copy. */
        error = zone_walk_read(&walk->common,
                               address + offsetof(struct szone_region, runs) +
                                   page * sizeof(struct szone_run),
                               sizeof(run), &run);
        if (error)
            return error;
        if (run.page_count == 0 || run.start != base + ((uintptr_t)page << RUN_PAGE_SHIFT))
            continue;
        if ((error = enumerate_run_blocks(walk, &run)))
            return error;
    }
    return KERN_SUCCESS;
}

/* At most as many records as the zone's large bytes have pages: a longer
 * list is damaged, or a cycle. */
static kern_return_t enumerate_large(struct enumeration *walk,
                                     vm_address_t address, size_t large_bytes)
{
    size_t limit = large_bytes / 4096;
    for (size_t n = 0; address; n++) {
        if (n >= limit)
            return KERN_FAILURE;
        struct szone_large large;
        kern_return_t error = zone_walk_read(&walk->common, address,
                                             sizeof(large), &large);
        if (error)
            return error;
        size_t size = large.size;
        if (walk->canaries && large.requested && large.requested - 1 <= size)
            size = large.requested - 1;
        zone_walk_add_block(&walk->common, large.address, size,
                            large.log_tag.stack_id);
        zone_walk_add_region(&walk->common, large.address, large.size);
        address = (vm_address_t)LIST_NEXT(&large, zone_link);
    }
    return KERN_SUCCESS;
}

kern_return_t szone_enumerator(task_t task, void *context, unsigned type_mask,
                               vm_address_t zone_address,
                               memory_reader_t reader,
                               vm_range_recorder_t recorder)
{
    struct enumeration walk;
    struct szone zone;
    zone_walk_init(&walk.common, task, context, type_mask, reader, recorder);
    kern_return_t error = zone_walk_read(&walk.common, zone_address,
                                         sizeof(zone), &zone);
    if (error)
        return error;
    if (zone.magic != SZONE_MAGIC)
        return KERN_INVALID_ARGUMENT;
    walk.block_head = zone.block_head < TINY_QUANTUM + 1 ? zone.block_head : 0;
    walk.canaries = zone.debugging &&
                    (zone.debug.flags & SZONE_DEBUG_CANARIES) != 0;
    zone_walk_add_admin(&walk.common, zone_address, zone.mapping_size);
    for (unsigned kind = 0; kind < SZONE_KIND_COUNT && !error; kind++) {
        vm_address_t address = (vm_address_t)zone.regions[kind];
        for (unsigned n = 0; address && !error; n++)
            error = n < ENUMERATE_MAX_REGIONS
                        ? enumerate_region(&walk, address, &address)
                        : KERN_FAILURE; /* a damaged list, or a cycle */
    }
    if (!error)
        error = enumerate_large(&walk, (vm_address_t)LIST_FIRST(&zone.large_blocks),
                                zone.large_bytes);
    /* Freed large blocks kept for reuse are the zone's memory too. */
    for (unsigned i = 0; i < zone.large_cache_count && i < LARGE_CACHE_ENTRIES; i++)
        zone_walk_add_region(&walk.common, zone.large_cache[i].address,
                             zone.large_cache[i].size);
    zone_walk_flush(&walk.common);
    return error;
}
