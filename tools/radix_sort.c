/*
 * LSD radix sort in 16-bit digits: at most four passes, and a digit that
 * every key shares (the high bits of user-space addresses) costs no
 * pass.  All four histograms are counted in one read of the keys.
 */
#include "config.h"

#include "radix_sort.h"

#include <stdlib.h>
#include <string.h>

#define DIGIT_BITS 16
#define DIGITS (64 / DIGIT_BITS)
#define BUCKETS (1u << DIGIT_BITS)

static unsigned digit_of(uint64_t key, unsigned digit)
{
    return (unsigned)(key >> (digit * DIGIT_BITS)) & (BUCKETS - 1);
}

static void count_digits(const struct radix_pair *pairs, size_t count,
                         size_t (*histograms)[BUCKETS])
{
    for (size_t i = 0; i < count; i++)
        for (unsigned d = 0; d < DIGITS; d++)
            histograms[d][digit_of(pairs[i].key, d)]++;
}

/* Turns counts into starting positions; false when one bucket holds
 * every pair (the pass would change nothing). */
static bool starts_from_counts(size_t *histogram, size_t count)
{
    size_t position = 0;
    for (unsigned b = 0; b < BUCKETS; b++) {
        if (histogram[b] == count)
            return false;
        size_t here = histogram[b];
        histogram[b] = position;
        position += here;
    }
    return true;
}

bool radix_sort_pairs(struct radix_pair *pairs, size_t count)
{
    if (count < 2)
        return true;
    size_t(*histograms)[BUCKETS] = calloc(DIGITS, sizeof(*histograms));
    struct radix_pair *spare = malloc(count * sizeof(*spare));
    if (histograms == NULL || spare == NULL) {
        free(histograms);
        free(spare);
        return false;
    }
    count_digits(pairs, count, histograms);
    struct radix_pair *from = pairs, *to = spare;
    for (unsigned d = 0; d < DIGITS; d++) {
        size_t *next = histograms[d];
        if (!starts_from_counts(next, count))
            continue;
        for (size_t i = 0; i < count; i++)
            to[next[digit_of(from[i].key, d)]++] = from[i];
        struct radix_pair *swap = from;
        from = to;
        to = swap;
    }
    if (from != pairs)
        memcpy(pairs, from, count * sizeof(*pairs));
    free(histograms);
    free(spare);
    return true;
}
