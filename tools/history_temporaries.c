/*
 * Temporaries: allocations freed by their own thread before it
 * allocated again.  During the replay each thread's last allocation is
 * tracked (threads are few; consecutive events are mostly one thread's);
 * the replay marks the allocations, and the view collects the marks.
 */
#include "config.h"

#include "history_internal.h"
#include "tool_hash.h"

#include <stdlib.h>

#define THREADS_PER_SLAB 256

struct thread_last {
    uint32_t thread;
    uint32_t event; /* its last allocation */
    UT_hash_handle hh;
};

void temporary_tracker_init(struct temporary_tracker *tracker)
{
    tracker->table = tracker->recent = NULL;
    entry_pool_init(&tracker->pool, sizeof(struct thread_last),
                    THREADS_PER_SLAB);
}

void temporary_tracker_release(struct temporary_tracker *tracker)
{
    HASH_CLEAR(hh, tracker->table);
    entry_pool_release(&tracker->pool);
    tracker->recent = NULL;
}

static struct thread_last *find(struct temporary_tracker *tracker,
                                uint32_t thread)
{
    if (tracker->recent != NULL && tracker->recent->thread == thread)
        return tracker->recent;
    struct thread_last *last;
    HASH_FIND(hh, tracker->table, &thread, sizeof(thread), last);
    if (last != NULL)
        tracker->recent = last;
    return last;
}

bool temporary_tracker_allocated(struct temporary_tracker *tracker,
                                 uint32_t thread, uint32_t event)
{
    struct thread_last *last = find(tracker, thread);
    if (last == NULL) {
        last = entry_pool_take(&tracker->pool);
        if (last == NULL)
            return false;
        last->thread = thread;
        tool_hash_out_of_memory = false;
        HASH_ADD(hh, tracker->table, thread, sizeof(last->thread), last);
        if (tool_hash_out_of_memory) {
            entry_pool_give_back(&tracker->pool, last);
            return false;
        }
        tracker->recent = last;
    }
    last->event = event;
    return true;
}

bool temporary_tracker_is_last(struct temporary_tracker *tracker,
                               uint32_t thread, uint32_t event)
{
    const struct thread_last *last = find(tracker, thread);
    return last != NULL && last->event == event;
}

bool history_temporaries(const struct history *history,
                         struct history_selection *blocks)
{
    const struct history_event_list *list = &history->malloc_events;
    *blocks = (struct history_selection){0};
    size_t count = history->summary.temporaries;
    if (count == 0)
        return true;
    blocks->events = malloc(count * sizeof(*blocks->events));
    if (blocks->events == NULL)
        return false;
    for (size_t i = 0; i < list->count && blocks->count < count; i++)
        if (list->events[i].marks & HISTORY_MARK_TEMPORARY)
            blocks->events[blocks->count++] = (uint32_t)i;
    return true;
}
