/*
 * Sorting by address an array that is mostly sorted already: the zones'
 * enumerators list each region's blocks in address order, region after
 * region, so the array is a few long ascending runs, which merge in a few
 * linear passes.
 */
#ifndef MALLOCDEBUG_SORTED_RUNS_H
#define MALLOCDEBUG_SORTED_RUNS_H

#include <stddef.h>
#include <stdint.h>

/* Sorts `count` elements of `size` bytes whose first field is a uint64_t
 * address, ascending.  Returns -1 when out of memory (the array is then
 * unchanged). */
int sort_by_address(void *array, size_t count, size_t size);

#endif
