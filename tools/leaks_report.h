/*
 * leaks' report, in the formats of macOS's leaks: the trees (default),
 * one line per leak (-list), the summary alone (-quiet), or JSON.
 */
#ifndef MALLOCDEBUG_LEAKS_REPORT_H
#define MALLOCDEBUG_LEAKS_REPORT_H

#include "leak_trees.h"
#include "live_process.h"

#include <stdbool.h>
#include <stdio.h>

#define LEAKS_MAX_EXCLUDES 32

struct leaks_options {
    bool no_content, no_stacks, no_sources, quiet, list, json;
    const char *excludes[LEAKS_MAX_EXCLUDES];
    unsigned exclude_count;
};

struct leaks_result {
    size_t leak_count;
    uint64_t leaked_bytes;
    size_t excluded_count;
};

/* What leaks found, after -exclude: the counts decide the exit status. */
void leaks_count(struct live_process *process,
                 const struct heap_snapshot *snapshot,
                 const struct leak_forest *forest,
                 const struct leaks_options *options, struct leaks_result *result);

void leaks_report(FILE *out, struct live_process *process,
                  const struct heap_snapshot *snapshot,
                  const struct heap_image *image,
                  const struct leak_forest *forest,
                  const struct leaks_options *options,
                  const struct leaks_result *result);

#endif
