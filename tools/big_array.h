/*
 * Arrays of hundreds of megabytes (a log's events, hash table entries,
 * sort buffers), mapped directly and backed by huge pages where the
 * kernel allows: the history reads and writes them at random, and with
 * 4 KiB pages every access would also miss the TLB and every first
 * touch fault.  Small arrays come from malloc as usual.
 */
#ifndef MALLOCDEBUG_BIG_ARRAY_H
#define MALLOCDEBUG_BIG_ARRAY_H

#include <stddef.h>

/* `size` bytes, not zeroed (but fresh mappings read as zero), or NULL. */
void *big_array_alloc(size_t size);
/* Zeroed. */
void *big_array_calloc(size_t size);
/* Moves the array to `new_size` bytes, keeping its content; NULL (and
 * the array as it was) when memory ran out. */
void *big_array_resize(void *array, size_t old_size, size_t new_size);
void big_array_free(void *array, size_t size);
/* `size` rounded up to what its mapping holds anyway (whole huge
 * pages), for arrays that can use the room. */
size_t big_array_rounded(size_t size);

#endif
