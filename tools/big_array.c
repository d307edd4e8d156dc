/*
 * Big arrays on their own mappings with MADV_HUGEPAGE (see big_array.h).
 * Below BIG_ARRAY_MIN bytes they are plain malloc blocks: a mapping
 * would round them up to 2 MiB of address space.
 */
#define _GNU_SOURCE
#include "config.h"

#include "big_array.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)1 << 21)
#define BIG_ARRAY_MIN HUGE_PAGE

static bool mapped(size_t size)
{
    return size >= BIG_ARRAY_MIN;
}

/* A range of `size` bytes starting on a huge page boundary: only whole,
 * aligned huge pages inside a mapping can be huge. */
static void *map_aligned(size_t size)
{
    size_t padded = size + HUGE_PAGE;
    char *start = mmap(NULL, padded, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (start == MAP_FAILED)
        return NULL;
    char *aligned = (char *)(((uintptr_t)start + HUGE_PAGE - 1) &
                             ~(uintptr_t)(HUGE_PAGE - 1));
    if (aligned > start)
        munmap(start, (size_t)(aligned - start));
    size_t tail = (size_t)(start + padded - (aligned + size));
    if (tail > 0)
        munmap(aligned + size, tail);
    return aligned;
}

static void *map(size_t size)
{
    void *array = map_aligned(size);
    /* Only advice: without transparent huge pages it changes nothing. */
    if (array != NULL)
        madvise(array, size, MADV_HUGEPAGE);
    return array;
}

void *big_array_alloc(size_t size)
{
    return mapped(size) ? map(size) : malloc(size ? size : 1);
}

void *big_array_calloc(size_t size)
{
    return mapped(size) ? map(size) : calloc(1, size ? size : 1);
}

void *big_array_resize(void *array, size_t old_size, size_t new_size)
{
    if (array == NULL)
        return big_array_alloc(new_size);
    if (mapped(old_size) && mapped(new_size)) {
        /* The pages move, uncopied, into a new aligned range. */
        void *resized = map(new_size);
        if (resized == NULL)
            return NULL;
        void *moved = mremap(array, old_size, new_size,
                             MREMAP_MAYMOVE | MREMAP_FIXED, resized);
        if (moved == MAP_FAILED) {
            munmap(resized, new_size);
            return NULL;
        }
        madvise(moved, new_size, MADV_HUGEPAGE);
        return moved;
    }
    if (!mapped(old_size) && !mapped(new_size))
        return realloc(array, new_size ? new_size : 1);
    void *resized = big_array_alloc(new_size);
    if (resized == NULL)
        return NULL;
    memcpy(resized, array, old_size < new_size ? old_size : new_size);
    big_array_free(array, old_size);
    return resized;
}

void big_array_free(void *array, size_t size)
{
    if (array == NULL)
        return;
    if (mapped(size))
        munmap(array, size);
    else
        free(array);
}

size_t big_array_rounded(size_t size)
{
    return mapped(size) ? (size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1) : size;
}
