/*
 * Sets of allocations live at a moment, read off the pairing the replay
 * left: an allocation is live after the event of order P when it came
 * at or before P and what ended it (if anything) came after.  Events
 * are in order in their array, and what ends a block always comes after
 * it there, so positions stand for orders: one sequential pass, no
 * second replay.
 */
#include "config.h"

#include "history_internal.h"

#include <stdlib.h>

void history_selection_free(struct history_selection *selection)
{
    free(selection->events);
    *selection = (struct history_selection){0};
}

/* How many events came at or before `order`: orders increase along the
 * array (in a damaged log with orders out of place, the moment is
 * wherever this search lands). */
static size_t events_through(const struct history_event_list *list,
                             uint64_t order)
{
    size_t low = 0, high = list->count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (list->events[middle].order <= order)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

bool history_live_at(const struct history *history, uint64_t order,
                     struct history_selection *blocks)
{
    const struct history_event_list *list = &history->malloc_events;
    *blocks = (struct history_selection){0};
    size_t through = events_through(list, order);
    size_t most = history->summary.allocations < through
                      ? history->summary.allocations
                      : through;
    if (most == 0)
        return true;
    /* Room for the most there can be; pages never written cost
     * nothing. */
    blocks->events = malloc(most * sizeof(*blocks->events));
    if (blocks->events == NULL)
        return false;
    for (size_t i = 0; i < through; i++) {
        const struct history_event *event = &list->events[i];
        if ((event->type & MDLOG_EVENT_KIND_MASK) == MDLOG_EVENT_ALLOC &&
            (event->partner == HISTORY_NONE || event->partner >= through))
            blocks->events[blocks->count++] = (uint32_t)i;
    }
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
