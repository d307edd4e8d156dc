/*
 * Sets of allocations live at a moment, read off the pairing the replay
 * left: an allocation is live after the first N events when it is one
 * of them and what ended it (if anything) is not.  What ends a block
 * always comes after it in the array, so that is one sequential pass,
 * with no second replay.
 */
#include "config.h"

#include "history_internal.h"

#include <stdlib.h>

void history_selection_free(struct history_selection *selection)
{
    free(selection->events);
    *selection = (struct history_selection){0};
}

/* The events before the first one after `order`.  Orders increase
 * along the array, but not strictly everywhere: older logs give the free
 * half of a zone's realloc of NULL a stale order (history.h), so a
 * binary search could land past an earlier event. */
static size_t events_through(const struct history_event_list *list,
                             uint64_t order)
{
    size_t through = 0;
    while (through < list->count && list->events[through].order <= order)
        through++;
    return through;
}

static bool live_after(const struct history *history, size_t through,
                       struct history_selection *blocks)
{
    const struct history_event_list *list = &history->malloc_events;
    *blocks = (struct history_selection){0};
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

bool history_live_at(const struct history *history, uint64_t order,
                     struct history_selection *blocks)
{
    return live_after(history, events_through(&history->malloc_events, order),
                      blocks);
}

bool history_live_at_end(const struct history *history,
                         struct history_selection *blocks)
{
    return live_after(history, history->malloc_events.count, blocks);
}

bool history_live_at_peak(const struct history *history,
                          struct history_selection *blocks)
{
    return live_after(history, history->events_through_peak, blocks);
}
