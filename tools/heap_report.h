/*
 * heap's report: nodes and bytes per zone, the size histogram, and the
 * table of classes (allocation sites), as text or JSON.
 */
#ifndef MALLOCDEBUG_HEAP_REPORT_H
#define MALLOCDEBUG_HEAP_REPORT_H

#include "heap_snapshot.h"
#include "live_process.h"
#include "size_filter.h"

#include <stdbool.h>
#include <stdio.h>

/* -addresses: "all", or a part of a class name and/or a size filter. */
struct heap_address_pattern {
    bool active;
    char text[300];       /* as given */
    char class_name[256]; /* "" matches every class */
    bool has_filter;
    struct size_filter filter;
};

struct heap_options {
    bool sort_by_size, by_zone, human_readable, show_sizes, json;
    struct heap_address_pattern addresses;
};

int heap_address_pattern_parse(const char *text,
                               struct heap_address_pattern *pattern);

int heap_report(FILE *out, struct live_process *process,
                const struct heap_snapshot *snapshot,
                const struct heap_options *options);

#endif
