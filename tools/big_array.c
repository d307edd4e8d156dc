#define _GNU_SOURCE
#include "config.h"
#include "big_array.h"

#include <sys/mman.h>

void *big_array_alloc(size_t bytes)
{
    void *array = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (array == MAP_FAILED)
        return NULL;
    madvise(array, bytes ? bytes : 1, MADV_HUGEPAGE);
    return array;
}

void *big_array_resize(void *array, size_t old_bytes, size_t new_bytes)
{
    if (!array)
        return big_array_alloc(new_bytes);
    void *moved = mremap(array, old_bytes ? old_bytes : 1, new_bytes ? new_bytes : 1,
                         MREMAP_MAYMOVE);
    if (moved == MAP_FAILED)
        return NULL;
    madvise(moved, new_bytes ? new_bytes : 1, MADV_HUGEPAGE);
    return moved;
}

void big_array_free(void *array, size_t bytes)
{
    if (array)
        munmap(array, bytes ? bytes : 1);
}
