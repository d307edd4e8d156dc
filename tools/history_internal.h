/*
 * What the history's files share: the model itself and the pieces the
 * replay is made of.  Not for the reports: they use history.h.
 */
#ifndef MALLOCDEBUG_HISTORY_INTERNAL_H
#define MALLOCDEBUG_HISTORY_INTERNAL_H

#include "entry_pool.h"
#include "history.h"

/* Events of one kind, in order; indexes stay below HISTORY_NONE. */
struct history_event_list {
    struct history_event *events;
    size_t count, capacity;
};

/* Live bytes and blocks sampled every `stride` malloc events; when the
 * samples fill up, every other one is dropped and the stride doubles. */
struct history_timeline {
    struct history_level levels[HISTORY_TIMELINE_MAX];
    size_t count;
    uint64_t stride;
    uint64_t seen; /* malloc events since the last sample */
};

struct history_address_index;

struct history {
    struct history_event_list malloc_events;
    struct history_event_list vm_events;
    struct history_summary summary;
    struct history_timeline timeline;
    size_t events_through_peak; /* malloc events up to the peak's */
    struct history_address_index *addresses; /* made at the first query */
};

/* Appends `event` (partner HISTORY_NONE, no marks); returns its index,
 * or HISTORY_NONE when memory ran out or the list is full. */
uint32_t history_event_list_append(struct history_event_list *list,
                                   const struct log_reader_event *event);
bool history_event_list_reserve(struct history_event_list *list,
                                size_t capacity);
void history_event_list_free(struct history_event_list *list);

void history_timeline_start(struct history_timeline *timeline);
void history_timeline_note(struct history_timeline *timeline,
                           const struct history_level *level);
/* Makes the last sample the level at the end. */
void history_timeline_finish(struct history_timeline *timeline,
                             const struct history_level *end);

/* ---- the live set: address -> the allocation live there ---- */

struct live_block;
struct live_set {
    struct live_block *table;
    struct entry_pool pool;
};
void live_set_init(struct live_set *set);
void live_set_release(struct live_set *set);
/* Makes `event` the allocation live at `address`; `*replaced` is the one
 * that was live there before, or HISTORY_NONE.  False when memory ran
 * out. */
bool live_set_insert(struct live_set *set, uint64_t address, uint32_t event,
                     uint32_t *replaced);
/* Removes the allocation live at `address` into `*event`; false when
 * none is. */
bool live_set_remove(struct live_set *set, uint64_t address, uint32_t *event);

/* Fetching ahead what an insert or remove of `address` will read, in
 * three steps some events apart: the bucket, the first entry of its
 * chain, then (returning the event of the block live there, or
 * HISTORY_NONE) the entries a removal relinks. */
void live_set_fetch_bucket(const struct live_set *set, uint64_t address);
void live_set_fetch_chain(const struct live_set *set, uint64_t address);
uint32_t live_set_fetch_block(const struct live_set *set, uint64_t address);

/* ---- the replay's queue of events fetched ahead ---- */

#define LOOKAHEAD 16
struct lookahead {
    struct log_reader_event ring[LOOKAHEAD];
    size_t first, count;
    struct log_reader_event due;
};
/* Queues `event` and fetches ahead for the events queued; returns the
 * oldest one once the queue is full (valid until the next call), else
 * NULL. */
const struct log_reader_event *lookahead_push(struct lookahead *queue,
                                              const struct log_reader_event *event,
                                              const struct live_set *live,
                                              const struct history_event_list *list);
/* The events left, oldest first, then NULL. */
const struct log_reader_event *lookahead_drain(struct lookahead *queue);

/* ---- temporaries: each thread's last allocation ---- */

struct thread_last;
struct temporary_tracker {
    struct thread_last *table;
    struct thread_last *recent; /* the last thread looked up */
    struct entry_pool pool;
};
void temporary_tracker_init(struct temporary_tracker *tracker);
void temporary_tracker_release(struct temporary_tracker *tracker);
/* `thread` allocated `event`.  False when memory ran out. */
bool temporary_tracker_allocated(struct temporary_tracker *tracker,
                                 uint32_t thread, uint32_t event);
/* True when `event` is still the last allocation of `thread`. */
bool temporary_tracker_is_last(struct temporary_tracker *tracker,
                               uint32_t thread, uint32_t event);

void history_address_index_free(struct history_address_index *index);

#endif
