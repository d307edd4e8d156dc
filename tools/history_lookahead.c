/*
 * The replay's queue: events wait LOOKAHEAD turns before they are
 * replayed, and meanwhile the lines their live-set operation will touch
 * are fetched, a step at a time (history_internal.h).  On a big live set
 * every lookup misses the cache several times over, one miss waiting
 * for the other; fetched ahead, the misses of many events overlap.
 * Replaying the events in the same order, only later, changes nothing
 * else.
 */
#include "config.h"

#include "history_internal.h"

/* How many turns after it is queued an event's next line is fetched. */
#define FETCH_CHAIN 5
#define FETCH_BLOCK 10

static bool uses_live_set(const struct log_reader_event *event)
{
    unsigned kind = event->type & MDLOG_EVENT_KIND_MASK;
    return kind == MDLOG_EVENT_ALLOC || kind == MDLOG_EVENT_FREE;
}

static const struct log_reader_event *aged(const struct lookahead *queue,
                                           size_t age)
{
    return &queue->ring[(queue->first + queue->count - 1 - age) % LOOKAHEAD];
}

static void fetch_ahead(const struct lookahead *queue, const struct live_set *live,
                        const struct history_event_list *list)
{
    const struct log_reader_event *event = aged(queue, 0);
    if (uses_live_set(event))
        live_set_fetch_bucket(live, event->address);
    if (queue->count > FETCH_CHAIN &&
        uses_live_set(event = aged(queue, FETCH_CHAIN)))
        live_set_fetch_chain(live, event->address);
    if (queue->count > FETCH_BLOCK &&
        uses_live_set(event = aged(queue, FETCH_BLOCK))) {
        uint32_t block = live_set_fetch_block(live, event->address);
        if (block != HISTORY_NONE && block < list->count)
            __builtin_prefetch(&list->events[block], 1);
    }
}

const struct log_reader_event *lookahead_push(struct lookahead *queue,
                                              const struct log_reader_event *event,
                                              const struct live_set *live,
                                              const struct history_event_list *list)
{
    const struct log_reader_event *due = NULL;
    if (queue->count == LOOKAHEAD) {
        queue->due = queue->ring[queue->first];
        queue->first = (queue->first + 1) % LOOKAHEAD;
        queue->count--;
        due = &queue->due;
    }
    queue->ring[(queue->first + queue->count) % LOOKAHEAD] = *event;
    queue->count++;
    fetch_ahead(queue, live, list);
    return due;
}

const struct log_reader_event *lookahead_drain(struct lookahead *queue)
{
    if (queue->count == 0)
        return NULL;
    queue->due = queue->ring[queue->first];
    queue->first = (queue->first + 1) % LOOKAHEAD;
    queue->count--;
    return &queue->due;
}
