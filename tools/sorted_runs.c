/*
 * Sorting an array of a few ascending runs.  The usual shapes:
 *  - one long run (a zone's regions) and a few elements out of place
 *    (its large blocks): those are taken out, sorted, and merged back
 *    from the end, moving the long run once, in place;
 *  - runs that do not interleave (blocks listed region by region, or
 *    allocated region after region, the regions in any order): the runs
 *    are sorted by their first address and each is copied once; when
 *    they come in descending order, as regions that the kernel maps top
 *    down do, they are put in place by reversing the array and then each
 *    run, with no copy.
 * Anything else gets a natural merge sort: neighbouring runs merged
 * pairwise until one is left.
 */
#include "config.h"
#include "sorted_runs.h"
#include "big_array.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static uint64_t address_at(const char *array, size_t size, size_t index)
{
    uint64_t address;
    memcpy(&address, array + index * size, sizeof(address));
    return address;
}

/* Where the ascending run starting at `start` ends. */
static size_t run_end(const char *array, size_t size, size_t count, size_t start)
{
    size_t end = start + 1;
    while (end < count && address_at(array, size, end - 1) <= address_at(array, size, end))
        end++;
    return end;
}

/* Merges from[a, b) and from[b, c) into to[a, c). */
static void merge(const char *from, char *to, size_t size, size_t a, size_t b,
                  size_t c)
{
    size_t i = a, j = b, k = a;
    while (i < b && j < c)
        if (address_at(from, size, j) < address_at(from, size, i))
            memcpy(to + k++ * size, from + j++ * size, size);
        else
            memcpy(to + k++ * size, from + i++ * size, size);
    memcpy(to + k * size, from + i * size, (b - i) * size);
    k += b - i;
    memcpy(to + k * size, from + j * size, (c - j) * size);
}

/* One pass: every pair of neighbouring runs merged.  Returns whether the
 * array was one run already. */
static bool merge_pass(const char *from, char *to, size_t size, size_t count)
{
    size_t start = 0, runs = 0;
    while (start < count) {
        size_t middle = run_end(from, size, count, start);
        size_t end = middle < count ? run_end(from, size, count, middle) : middle;
        merge(from, to, size, start, middle, end);
        runs += middle < count ? 2 : 1;
        start = end;
    }
    return runs <= 1;
}

static int by_leading_address(const void *a, const void *b)
{
    uint64_t x, y;
    memcpy(&x, a, sizeof(x));
    memcpy(&y, b, sizeof(y));
    return (x > y) - (x < y);
}

/* The longest run: [*start, *end). */
static void longest_run(const char *array, size_t size, size_t count,
                        size_t *start, size_t *end)
{
    *start = *end = 0;
    for (size_t at = 0; at < count;) {
        size_t stop = run_end(array, size, count, at);
        if (stop - at > *end - *start)
            *start = at, *end = stop;
        at = stop;
    }
}

/* The first index in array[0, n) whose address is above `address`. */
static size_t upper_bound(const char *array, size_t size, size_t n,
                          uint64_t address)
{
    size_t low = 0, high = n;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (address_at(array, size, middle) <= address)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

/* Sorts when all but one run are few; false when the array is not of
 * that shape (or memory ran out). */
static bool sort_few_out_of_place(char *array, size_t count, size_t size)
{
    size_t start, end;
    longest_run(array, size, count, &start, &end);
    size_t rest = count - (end - start);
    if (rest > count / 16 + 1)
        return false;
    char *others = malloc(rest * size + 1);
    if (!others)
        return false;
    memcpy(others, array, start * size);
    memcpy(others + start * size, array + end * size, (count - end) * size);
    qsort(others, rest, size, by_leading_address);
    memmove(array, array + start * size, (end - start) * size);
    /* Merge from the end: the long run is array[0, kept). */
    size_t kept = end - start, to = count;
    for (size_t j = rest; j-- > 0;) {
        size_t from = upper_bound(array, size, kept, address_at(others, size, j));
        size_t moved = kept - from;
        to -= moved;
        memmove(array + to * size, array + from * size, moved * size);
        kept = from;
        memcpy(array + --to * size, others + j * size, size);
    }
    free(others);
    return true;
}

struct run {
    size_t start, end;
    uint64_t first, last; /* addresses */
};

static int by_first_address(const void *a, const void *b)
{
    const struct run *x = a, *y = b;
    return (x->first > y->first) - (x->first < y->first);
}

/* The runs, when there are at most `most`; NULL otherwise (or when
 * memory ran out). */
static struct run *list_runs(const char *array, size_t count, size_t size,
                             size_t most, size_t *run_count)
{
    struct run *runs = malloc(most * sizeof(*runs));
    *run_count = 0;
    for (size_t at = 0; runs && at < count;) {
        if (*run_count == most) {
            free(runs);
            return NULL;
        }
        size_t end = run_end(array, size, count, at);
        runs[(*run_count)++] = (struct run){at, end, address_at(array, size, at),
                                            address_at(array, size, end - 1)};
        at = end;
    }
    return runs;
}

static void reverse(char *array, size_t size, size_t start, size_t end)
{
    char swap[64];
    for (size_t i = start, j = end; i + 1 < j; i++, j--)
        for (size_t done = 0; done < size; done += sizeof(swap)) {
            size_t piece = size - done < sizeof(swap) ? size - done : sizeof(swap);
            char *a = array + i * size + done, *b = array + (j - 1) * size + done;
            memcpy(swap, a, piece);
            memcpy(a, b, piece);
            memcpy(b, swap, piece);
        }
}

static bool descending_and_apart(const struct run *runs, size_t run_count)
{
    for (size_t i = 1; i < run_count; i++)
        if (runs[i].last >= runs[i - 1].first)
            return false;
    return true;
}

/* Sorts when the runs are few and do not interleave: 1 when sorted, 0
 * when not of that shape, -1 when out of memory. */
static int sort_disjoint_runs(char *array, size_t count, size_t size)
{
    size_t run_count;
    struct run *runs = list_runs(array, count, size, count / 64 + 2, &run_count);
    if (runs == NULL)
        return 0;
    if (descending_and_apart(runs, run_count)) {
        /* Run [start, end) lands, reversed, at [count - end, count - start). */
        reverse(array, size, 0, count);
        for (size_t i = 0; i < run_count; i++)
            reverse(array, size, count - runs[i].end, count - runs[i].start);
        free(runs);
        return 1;
    }
    qsort(runs, run_count, sizeof(*runs), by_first_address);
    bool disjoint = true;
    for (size_t i = 1; i < run_count && disjoint; i++)
        disjoint = runs[i - 1].last <= runs[i].first;
    char *sorted = disjoint ? big_array_alloc(count * size) : NULL;
    if (sorted != NULL) {
        size_t placed = 0;
        for (size_t i = 0; i < run_count; i++) {
            size_t length = runs[i].end - runs[i].start;
            memcpy(sorted + placed * size, array + runs[i].start * size, length * size);
            placed += length;
        }
        memcpy(array, sorted, count * size);
        big_array_free(sorted, count * size);
    }
    free(runs);
    return !disjoint ? 0 : sorted != NULL ? 1 : -1;
}

int sort_by_address(void *array, size_t count, size_t size)
{
    if (count < 2 || run_end(array, size, count, 0) == count)
        return 0;
    if (sort_few_out_of_place(array, count, size))
        return 0;
    int placed = sort_disjoint_runs(array, count, size);
    if (placed != 0)
        return placed == 1 ? 0 : -1;
    char *other = big_array_alloc(count * size);
    if (!other)
        return -1;
    char *from = array, *to = other;
    for (;;) {
        bool done = merge_pass(from, to, size, count);
        char *swap = from;
        from = to;
        to = swap;
        if (done || run_end(from, size, count, 0) == count)
            break;
    }
    if (from != array)
        memcpy(array, from, count * size);
    big_array_free(other, count * size);
    return 0;
}
