/*
 * Big arrays on their own mappings with MADV_HUGEPAGE (see big_array.h).
 * Below BIG_ARRAY_MIN bytes they are plain malloc blocks: a mapping
 * would round them up to 2 MiB of address space.
 */
#define _GNU_SOURCE
#include "config.h"

#include "big_array.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define BIG_ARRAY_MIN ((size_t)1 << 21)

static bool mapped(size_t size)
{
    return size >= BIG_ARRAY_MIN;
}

static void *map(size_t size)
{
    void *array = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (array == MAP_FAILED)
        return NULL;
    /* Only advice: without transparent huge pages it changes nothing. */
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
        void *moved = mremap(array, old_size, new_size, MREMAP_MAYMOVE);
        if (moved == MAP_FAILED)
            return NULL;
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
