/*
 * Sorting millions of (64-bit key, 32-bit value) pairs by key, stably:
 * an LSD radix sort, linear in the pairs where a comparison sort is not.
 */
#ifndef MALLOCDEBUG_RADIX_SORT_H
#define MALLOCDEBUG_RADIX_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct radix_pair {
    uint64_t key;
    uint32_t value;
};

/* Sorts `pairs` by key; pairs with equal keys keep their order.  False
 * (and `pairs` as they were) when memory ran out. */
bool radix_sort_pairs(struct radix_pair *pairs, size_t count);

#endif
