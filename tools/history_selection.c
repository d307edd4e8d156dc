/*
 * Sets of allocations live at a moment, read off the pairing the replay
 * left: an allocation is live after the event of order P when it came
 * at or before P and what ended it (if anything) came after.  No second
 * replay is needed.
 */
#include "config.h"

#include "history_internal.h"

#include <stdlib.h>

void history_selection_free(struct history_selection *selection)
{
    free(selection->events);
    *selection = (struct history_selection){0};
}

static bool live_after(const struct history_event *events, uint32_t i,
                       uint64_t order)
{
    const struct history_event *event = &events[i];
    if ((event->type & MDLOG_EVENT_KIND_MASK) != MDLOG_EVENT_ALLOC ||
        event->order > order)
        return false;
    return event->partner == HISTORY_NONE ||
           events[event->partner].order > order;
}

bool history_live_at(const struct history *history, uint64_t order,
                     struct history_selection *blocks)
{
    const struct history_event_list *list = &history->malloc_events;
    *blocks = (struct history_selection){0};
    size_t count = 0;
    for (size_t i = 0; i < list->count; i++)
        count += live_after(list->events, (uint32_t)i, order);
    if (count == 0)
        return true;
    blocks->events = malloc(count * sizeof(*blocks->events));
    if (blocks->events == NULL)
        return false;
    for (size_t i = 0; i < list->count && blocks->count < count; i++)
        if (live_after(list->events, (uint32_t)i, order))
            blocks->events[blocks->count++] = (uint32_t)i;
    return true;
}

bool history_live_at_end(const struct history *history,
                         struct history_selection *blocks)
{
    return history_live_at(history, UINT64_MAX, blocks);
}

bool history_live_at_peak(const struct history *history,
                          struct history_selection *blocks)
{
    if (history->summary.peak.bytes == 0) {
        *blocks = (struct history_selection){0};
        return true;
    }
    return history_live_at(history, history->summary.peak.order, blocks);
}
