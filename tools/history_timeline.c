/*
 * Live bytes and blocks over the log, in a fixed number of samples
 * whatever its length: the stride doubles each time the samples fill.
 */
#include "config.h"

#include "history_internal.h"

void history_timeline_start(struct history_timeline *timeline)
{
    timeline->count = 0;
    timeline->stride = 1;
    timeline->seen = 0;
}

/* Keeps the samples at odd positions: those at multiples of the new
 * stride. */
static void halve(struct history_timeline *timeline)
{
    size_t kept = 0;
    for (size_t i = 1; i < timeline->count; i += 2)
        timeline->levels[kept++] = timeline->levels[i];
    timeline->count = kept;
    timeline->stride *= 2;
}

void history_timeline_note(struct history_timeline *timeline,
                           const struct history_level *level)
{
    if (++timeline->seen < timeline->stride)
        return;
    timeline->seen = 0;
    if (timeline->count == HISTORY_TIMELINE_MAX) {
        /* The samples left are at multiples of the doubled stride, and
         * so is the next one: half a stride later than this. */
        halve(timeline);
        timeline->seen = timeline->stride / 2;
        return;
    }
    timeline->levels[timeline->count++] = *level;
}

void history_timeline_finish(struct history_timeline *timeline,
                             const struct history_level *end)
{
    /* Two threads' events may share an order: the end's level is the
     * one after the last of them. */
    if (timeline->count > 0 &&
        timeline->levels[timeline->count - 1].order == end->order) {
        timeline->levels[timeline->count - 1] = *end;
        return;
    }
    if (timeline->count == HISTORY_TIMELINE_MAX)
        timeline->count--;
    timeline->levels[timeline->count++] = *end;
}

const struct history_level *history_timeline(const struct history *history,
                                             size_t *count)
{
    *count = history->timeline.count;
    return history->timeline.levels;
}
