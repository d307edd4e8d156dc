/*
 * malloc_history's views of a replayed history, in macOS's formats or
 * JSON: the events of addresses, every event, the allocations grouped by
 * stack, the call tree, the temporaries.
 */
#ifndef MALLOCDEBUG_HISTORY_REPORT_H
#define MALLOCDEBUG_HISTORY_REPORT_H

#include "history.h"
#include "log_live_blocks.h"
#include "log_reader.h"
#include "stack_names.h"

#include <stdbool.h>
#include <stdio.h>

struct history_view {
    FILE *out;
    /* NULL for the views of the end (groups and call tree, not at the
     * peak), which then read only the live blocks. */
    struct history *history;
    const struct log_live_blocks *live_at_end;
    const struct log_reader *reader;
    struct stack_names *names;
    bool json;
};

/* Each returns 0, or -1 when memory ran out. */
int history_report_addresses(const struct history_view *view,
                             const uint64_t *addresses, size_t count);
int history_report_all_events(const struct history_view *view);
/* Live allocations (at the end, or at the high-water mark) grouped by
 * stack, by size or by count. */
int history_report_groups(const struct history_view *view, bool at_peak,
                          enum history_group_order order);
int history_report_call_tree(const struct history_view *view, bool at_peak,
                             bool inverted);
int history_report_temporaries(const struct history_view *view);

#endif
