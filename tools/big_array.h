/*
 * Memory for the tools' arrays of millions of entries (blocks, stack
 * ids, the heap's copy): mapped directly, in huge pages where the kernel
 * allows, and grown with mremap.  Faulting such arrays in 4 KiB at a
 * time costs more than filling them; growing one by realloc copies it.
 */
#ifndef MALLOCDEBUG_BIG_ARRAY_H
#define MALLOCDEBUG_BIG_ARRAY_H

#include <stddef.h>

/* Zero-filled; NULL when out of memory. */
void *big_array_alloc(size_t bytes);
/* NULL when out of memory, the array then being unchanged. */
void *big_array_resize(void *array, size_t old_bytes, size_t new_bytes);
void big_array_free(void *array, size_t bytes);

#endif
