/*
 * The unmap generation (os_memory.h) and the ranges of its latest
 * advances.  A thread keeps return-address slots it found on its stack
 * while no unmapping touched the pages it read them from; most
 * unmappings (a program mapping and unmapping files, the library
 * returning a large block) are elsewhere.  So each advance leaves its
 * range in a ring, and a thread catching up with the generation looks
 * only for ranges that meet its own pages; one it can no longer read
 * there (overwritten, or not yet written) counts as meeting them.
 */
#include "config.h"
#include "os_memory.h"

#include <stdint.h>

uint64_t os_unmap_generation_count;

/* The advance to generation g left its range in ring[g % RING_SIZE]; the
 * slot's generation says which one it holds, 0 while it is rewritten. */
#define RING_SIZE OS_UNMAP_RANGES_KEPT
static struct unmapped_range {
    uint64_t generation;
    uintptr_t start, end;
} ring[RING_SIZE];

void os_unmap_generation_advance_range(const void *address, size_t length)
{
    uintptr_t start = (uintptr_t)address;
    uintptr_t end = start + length < start ? UINTPTR_MAX : start + length;
    uint64_t generation =
        __atomic_add_fetch(&os_unmap_generation_count, 1, __ATOMIC_SEQ_CST);
    struct unmapped_range *slot = &ring[generation % RING_SIZE];
    __atomic_store_n(&slot->generation, 0, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&slot->start, start, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->end, end, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->generation, generation, __ATOMIC_RELEASE);
}

void os_unmap_generation_advance(void)
{
    os_unmap_generation_advance_range(NULL, SIZE_MAX);
}

bool os_unmap_may_touch(uint64_t generation, uintptr_t low, uintptr_t high)
{
    const struct unmapped_range *slot = &ring[generation % RING_SIZE];
    if (__atomic_load_n(&slot->generation, __ATOMIC_ACQUIRE) != generation)
        return true;
    uintptr_t start = __atomic_load_n(&slot->start, __ATOMIC_RELAXED);
    uintptr_t end = __atomic_load_n(&slot->end, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__atomic_load_n(&slot->generation, __ATOMIC_RELAXED) != generation)
        return true;
    return start < high && low < end;
}
