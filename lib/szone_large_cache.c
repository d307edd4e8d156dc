/*
 * The cache of freed large mappings.  A program that frees big buffers
 * and allocates others of other sizes would otherwise pay for fresh
 * pages every time: the kernel's page faults and zeroing, not the
 * system calls, are the cost.  So a new large block is assembled from
 * cached mappings: one that fits is taken whole; otherwise pieces are
 * moved side by side with mremap, which moves pages without copying or
 * faulting them, and only what is still missing is fresh memory.
 *
 * The cache holds at most LARGE_CACHE_ENTRIES mappings and at most
 * LARGE_CACHE_LIVE_FACTOR times the zone's live large bytes (between
 * LARGE_CACHE_FLOOR_BYTES and LARGE_CACHE_MAX_BYTES); the oldest
 * mappings are unmapped first.  pressure_relief empties it.
 */
#include "config.h"
#include "szone.h"
#include "os_memory.h"

#include <string.h>
#include <sys/mman.h>

/* Zone large lock held. */
static struct szone_large_cache_entry cache_remove(struct szone *zone,
                                                   unsigned index)
{
    struct szone_large_cache_entry entry = zone->large_cache[index];
    zone->large_cache_bytes -= entry.size;
    memmove(&zone->large_cache[index], &zone->large_cache[index + 1],
            (--zone->large_cache_count - index) * sizeof(entry));
    return entry;
}

static size_t cache_budget(const struct szone *zone)
{
    size_t budget = zone->large_bytes * LARGE_CACHE_LIVE_FACTOR;
    if (budget < LARGE_CACHE_FLOOR_BYTES)
        budget = LARGE_CACHE_FLOOR_BYTES;
    return budget > LARGE_CACHE_MAX_BYTES ? LARGE_CACHE_MAX_BYTES : budget;
}

bool szone_large_cache_put(struct szone *zone, uintptr_t address, size_t size)
{
    size_t budget = cache_budget(zone);
    if (size > budget)
        return false;
    while (zone->large_cache_count == LARGE_CACHE_ENTRIES ||
           zone->large_cache_bytes + size > budget) {
        struct szone_large_cache_entry oldest = cache_remove(zone, 0);
        os_unmap((void *)oldest.address, oldest.size);
    }
    zone->large_cache[zone->large_cache_count++] =
        (struct szone_large_cache_entry){address, size};
    zone->large_cache_bytes += size;
    return true;
}

static void cache_put_or_unmap(struct szone *zone, uintptr_t address,
                               size_t size)
{
    md_lock(&zone->large_lock);
    bool cached = szone_large_cache_put(zone, address, size);
    md_unlock(&zone->large_lock);
    if (!cached)
        os_unmap((void *)address, size);
}

/* Zone large lock held.  The smallest mapping of `size` to twice `size`
 * bytes, or -1. */
static int cache_find_whole_fit(const struct szone *zone, size_t size)
{
    int best = -1;
    for (unsigned i = 0; i < zone->large_cache_count; i++) {
        size_t candidate = zone->large_cache[i].size;
        if (candidate >= size && candidate / 2 <= size &&
            (best < 0 || candidate < zone->large_cache[best].size))
            best = (int)i;
    }
    return best;
}

/* Zone large lock held. */
static unsigned cache_find_largest(const struct szone *zone)
{
    unsigned largest = 0;
    for (unsigned i = 1; i < zone->large_cache_count; i++)
        if (zone->large_cache[i].size > zone->large_cache[largest].size)
            largest = i;
    return largest;
}

/* Moves the pieces into one new mapping of `size` bytes, fresh pages at
 * the end; what a piece has beyond the block goes back to the cache. */
static void *cache_assemble(struct szone *zone,
                            struct szone_large_cache_entry *pieces,
                            unsigned count, size_t size, size_t *dirty)
{
    char *block = os_syscall_mmap(NULL, size, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    size_t filled = 0;
    unsigned used = 0;
    if (block == MAP_FAILED)
        block = NULL;
    for (; block && used < count && filled < size; used++) {
        size_t take = pieces[used].size < size - filled ? pieces[used].size
                                                        : size - filled;
        if (os_syscall_mremap((void *)pieces[used].address, take, take,
                   MREMAP_MAYMOVE | MREMAP_FIXED, block + filled) == MAP_FAILED)
            break;
        if (pieces[used].size > take)
            cache_put_or_unmap(zone, pieces[used].address + take,
                               pieces[used].size - take);
        filled += take;
    }
    for (unsigned i = used; i < count; i++)
        cache_put_or_unmap(zone, pieces[i].address, pieces[i].size);
    if (block && filled < size &&
        os_syscall_mmap(block + filled, size - filled, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
        os_unmap(block, size);
        block = NULL;
    }
    *dirty = filled;
    return block;
}

void *szone_large_cache_take(struct szone *zone, size_t size, size_t *mapped,
                             size_t *dirty)
{
    struct szone_large_cache_entry pieces[LARGE_CACHE_ENTRIES];
    unsigned count = 0;
    size_t gathered = 0;
    md_lock(&zone->large_lock);
    int whole = cache_find_whole_fit(zone, size);
    if (whole >= 0) {
        pieces[0] = cache_remove(zone, (unsigned)whole);
        md_unlock(&zone->large_lock);
        *mapped = *dirty = pieces[0].size;
        return (void *)pieces[0].address;
    }
    while (gathered < size && zone->large_cache_count > 0) {
        pieces[count] = cache_remove(zone, cache_find_largest(zone));
        gathered += pieces[count++].size;
    }
    md_unlock(&zone->large_lock);
    if (count == 0)
        return NULL;
    if (pieces[0].size >= size) {
        /* One piece more than twice too big: its head is the block. */
        cache_put_or_unmap(zone, pieces[0].address + size,
                           pieces[0].size - size);
        *mapped = *dirty = size;
        return (void *)pieces[0].address;
    }
    *mapped = size;
    return cache_assemble(zone, pieces, count, size, dirty);
}

size_t szone_large_release_cache(struct szone *zone)
{
    md_lock(&zone->large_lock);
    size_t released = zone->large_cache_bytes;
    while (zone->large_cache_count > 0) {
        struct szone_large_cache_entry entry = cache_remove(zone, 0);
        os_unmap((void *)entry.address, entry.size);
    }
    md_unlock(&zone->large_lock);
    return released;
}
