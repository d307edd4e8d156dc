/*
 * macOS's block size filters, as heap -addresses takes them after a class
 * name: "[100]" one size, "[100-200]" a range, "[1k+]" that size and up,
 * "[-512]" up to that size; sizes in bytes, or with a k or m suffix.
 */
#ifndef MALLOCDEBUG_SIZE_FILTER_H
#define MALLOCDEBUG_SIZE_FILTER_H

#include <stdbool.h>
#include <stdint.h>

struct size_filter {
    uint64_t low, high; /* inclusive */
};

/* Parses `text` (from its '[' to the closing ']', nothing after);
 * false when it is not a filter. */
bool size_filter_parse(const char *text, struct size_filter *filter);
bool size_filter_matches(const struct size_filter *filter, uint64_t size);

#endif
