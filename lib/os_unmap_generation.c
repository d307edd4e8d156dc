/*
 * The unmap generation (os_memory.h) and the ranges of its latest
 * advances.  A thread keeps return-address slots it found on its stack
 * while no unmapping touched the pages it read them from; most
 * unmappings (a program mapping and unmapping files, the library
 * returning a large block) are elsewhere.  So each advance leaves its
 * range in a ring, and a thread catching up with the generation looks
 * only for ranges that meet its own pages; one it can no longer read
 * there (overwritten, or not yet written) counts as meeting them.
 *
 * Each advance is one word: the low bits of its generation and its range
 * in pages, stored at once, so that a reader never pairs one advance's
 * generation with another's range, even when a writer is held up until
 * the ring comes round to its slot again.
 */
#include "config.h"
#include "os_memory.h"

#include <stdint.h>

uint64_t os_unmap_generation_count;

#define RING_SIZE OS_UNMAP_RANGES_KEPT
#define PAGE_SHIFT 12
#define TAG_BITS 8
#define LENGTH_BITS 20
#define START_BITS (64 - TAG_BITS - LENGTH_BITS)
/* A length field of all ones: every address. */
#define LENGTH_EVERYTHING ((UINT64_C(1) << LENGTH_BITS) - 1)

_Static_assert(RING_SIZE < (1u << TAG_BITS),
               "a tag must tell a slot's advances apart");

static uint64_t ring[RING_SIZE];

static uint64_t range_word(uint64_t generation, uintptr_t start, size_t length)
{
    const uint64_t page = UINT64_C(1) << PAGE_SHIFT;
    uint64_t first = start >> PAGE_SHIFT;
    uint64_t end = (uint64_t)start + length;
    uint64_t pages = end < start || end > UINT64_MAX - page
                         ? LENGTH_EVERYTHING
                         : ((end + page - 1) >> PAGE_SHIFT) - first;
    if (first >> START_BITS || pages >= LENGTH_EVERYTHING)
        first = 0, pages = LENGTH_EVERYTHING;
    return first << (TAG_BITS + LENGTH_BITS) | pages << TAG_BITS |
           (generation & ((1u << TAG_BITS) - 1));
}

void os_unmap_generation_advance_range(const void *address, size_t length)
{
    uint64_t generation =
        __atomic_add_fetch(&os_unmap_generation_count, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&ring[generation % RING_SIZE],
                     range_word(generation, (uintptr_t)address, length),
                     __ATOMIC_RELEASE);
}

void os_unmap_generation_advance(void)
{
    os_unmap_generation_advance_range(NULL, SIZE_MAX);
}

bool os_unmap_may_touch(uint64_t generation, uintptr_t low, uintptr_t high)
{
    uint64_t word = __atomic_load_n(&ring[generation % RING_SIZE],
                                    __ATOMIC_ACQUIRE);
    if ((word ^ generation) & ((1u << TAG_BITS) - 1))
        return true;
    uint64_t pages = (word >> TAG_BITS) & LENGTH_EVERYTHING;
    if (pages == LENGTH_EVERYTHING)
        return true;
    uint64_t start = (word >> (TAG_BITS + LENGTH_BITS)) << PAGE_SHIFT;
    uint64_t end = start + (pages << PAGE_SHIFT);
    return start < high && low < end;
}
