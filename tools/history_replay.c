/*
 * The replay: one walk over the log's events into the history's arrays,
 * pairing each free with the allocation it ends through the live set,
 * following live bytes to their peak, and marking temporaries.  How the
 * log records each call is told in history.h.
 */
#include "config.h"

#include "history_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

struct replay {
    struct history *history;
    struct live_set live;
    struct temporary_tracker threads;
    struct lookahead queue;
    struct history_level level; /* live now */
    bool out_of_memory;
    bool too_many;
};

/* Walk callbacks stop the walk with this. */
#define STOP 1

static int failed(struct replay *replay, const struct history_event_list *list)
{
    if (list->count == (size_t)HISTORY_NONE)
        replay->too_many = true;
    else
        replay->out_of_memory = true;
    return STOP;
}

/* After the malloc event `index`. */
static void level_moved(struct replay *replay, uint64_t order, uint32_t index)
{
    struct history_summary *summary = &replay->history->summary;
    replay->level.order = order;
    if (replay->level.bytes > summary->peak.bytes) {
        summary->peak = replay->level;
        replay->history->events_through_peak = (size_t)index + 1;
    }
    history_timeline_note(&replay->history->timeline, &replay->level);
}

/* The allocation `ended` stops being live. */
static void block_ended(struct replay *replay, uint32_t ended, uint32_t by)
{
    struct history_event *block = &replay->history->malloc_events.events[ended];
    block->partner = by;
    replay->level.bytes -= block->size;
    replay->level.count--;
}

static int replay_allocation(struct replay *replay,
                             const struct log_reader_event *event)
{
    struct history_event_list *list = &replay->history->malloc_events;
    uint32_t index = history_event_list_append(list, event);
    if (index == HISTORY_NONE)
        return failed(replay, list);
    uint32_t replaced;
    if (!live_set_insert(&replay->live, event->address, index, &replaced) ||
        !temporary_tracker_allocated(&replay->threads, event->thread, index))
        return failed(replay, list);
    struct history_summary *summary = &replay->history->summary;
    summary->allocations++;
    if (replaced != HISTORY_NONE) {
        block_ended(replay, replaced, index);
        list->events[replaced].marks |= HISTORY_MARK_REPLACED;
        summary->replaced++;
    }
    replay->level.bytes += event->size;
    replay->level.count++;
    level_moved(replay, event->order, index);
    return 0;
}

static int replay_free(struct replay *replay,
                       const struct log_reader_event *event)
{
    struct history_event_list *list = &replay->history->malloc_events;
    uint32_t index = history_event_list_append(list, event);
    if (index == HISTORY_NONE)
        return failed(replay, list);
    struct history_summary *summary = &replay->history->summary;
    summary->frees++;
    uint32_t block;
    /* free(NULL) is not logged, but older logs hold a free half of
     * address 0 for a zone's realloc of NULL (history.h): it frees
     * nothing. */
    if (event->address == 0 && (event->type & MDLOG_EVENT_REALLOC)) {
        level_moved(replay, event->order, index);
        return 0;
    }
    if (!live_set_remove(&replay->live, event->address, &block)) {
        list->events[index].marks |= HISTORY_MARK_UNKNOWN_FREE;
        summary->unknown_frees++;
        level_moved(replay, event->order, index);
        return 0;
    }
    list->events[index].partner = block;
    block_ended(replay, block, index);
    /* The freeing thread allocated it last (so it is the allocating
     * thread, and allocated nothing since). */
    if (!(event->type & MDLOG_EVENT_REALLOC) &&
        temporary_tracker_is_last(&replay->threads, event->thread, block)) {
        list->events[block].marks |= HISTORY_MARK_TEMPORARY;
        summary->temporaries++;
    }
    level_moved(replay, event->order, index);
    return 0;
}

static int replay_vm(struct replay *replay, const struct log_reader_event *event)
{
    struct history_event_list *list = &replay->history->vm_events;
    if (history_event_list_append(list, event) == HISTORY_NONE)
        return failed(replay, list);
    replay->history->summary.vm_events++;
    return 0;
}

static int replay_one(struct replay *replay, const struct log_reader_event *event)
{
    switch (event->type & MDLOG_EVENT_KIND_MASK) {
    case MDLOG_EVENT_ALLOC:
        return replay_allocation(replay, event);
    case MDLOG_EVENT_FREE:
        return replay_free(replay, event);
    case MDLOG_EVENT_VM_MAP:
    case MDLOG_EVENT_VM_UNMAP:
        return replay_vm(replay, event);
    default: /* the reader hands out no other kind */
        return 0;
    }
}

static int replay_event(const struct log_reader_event *event, void *context)
{
    struct replay *replay = context;
    const struct log_reader_event *due =
        lookahead_push(&replay->queue, event, &replay->live,
                       &replay->history->malloc_events);
    return due != NULL ? replay_one(replay, due) : 0;
}

static int replay_rest(struct replay *replay)
{
    int stopped = 0;
    for (const struct log_reader_event *due;
         stopped == 0 && (due = lookahead_drain(&replay->queue)) != NULL;)
        stopped = replay_one(replay, due);
    return stopped;
}

static void say(char *message, size_t message_size, const char *text,
                uint64_t events)
{
    if (message != NULL && message_size > 0)
        snprintf(message, message_size, text, events);
}

static struct history *replay_failed(struct replay *replay, char *message,
                                     size_t message_size, uint64_t events)
{
    if (replay->too_many)
        say(message, message_size,
            "the log holds more events of one kind than can be replayed "
            "(%" PRIu64 " in all, at most 4294967294 each): record a "
            "shorter run", events);
    else
        say(message, message_size,
            "out of memory replaying the log's %" PRIu64 " events: free "
            "memory or record a shorter run", events);
    history_free(replay->history);
    return NULL;
}

static void summarize_log(struct history_summary *summary,
                          const struct mdlog_header *header)
{
    summary->compacted = !(header->flags & MDLOG_FLAG_NO_COMPACT);
    summary->elided_pairs = header->compacted_count / 2;
}

struct history *history_replay(const struct log_reader *reader, char *message,
                               size_t message_size)
{
    if (message != NULL && message_size > 0)
        message[0] = '\0';
    uint64_t events = log_reader_event_count(reader);
    struct replay replay = {.history = calloc(1, sizeof(struct history))};
    if (replay.history == NULL) {
        say(message, message_size, "out of memory replaying the log's %"
            PRIu64 " events: free memory or record a shorter run", events);
        return NULL;
    }
    history_timeline_start(&replay.history->timeline);
    /* Nearly every event of a full log is a malloc event.  Unused room
     * is never touched, so costs no memory. */
    if (!history_event_list_reserve(&replay.history->malloc_events, events)) {
        replay.out_of_memory = true;
        return replay_failed(&replay, message, message_size, events);
    }
    live_set_init(&replay.live);
    temporary_tracker_init(&replay.threads);
    int walked = log_reader_for_each_event(reader, replay_event, &replay);
    if (walked == 0)
        walked = replay_rest(&replay);
    live_set_release(&replay.live);
    temporary_tracker_release(&replay.threads);
    if (walked == -1)
        replay.out_of_memory = true;
    if (replay.out_of_memory || replay.too_many)
        return replay_failed(&replay, message, message_size, events);
    struct history *history = replay.history;
    history->summary.end = replay.level;
    if (history->malloc_events.count > 0)
        history_timeline_finish(&history->timeline, &replay.level);
    summarize_log(&history->summary, log_reader_header(reader));
    return history;
}

void history_free(struct history *history)
{
    if (history == NULL)
        return;
    history_event_list_free(&history->malloc_events);
    history_event_list_free(&history->vm_events);
    history_address_index_free(history->addresses);
    free(history);
}

const struct history_summary *history_summary(const struct history *history)
{
    return &history->summary;
}
