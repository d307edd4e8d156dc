/*
 * The history: every thread appends its events to EVENTS chunks of its
 * own, so recording takes no lock; only the order number is shared (one
 * atomic add in the header).  Writing a record is inline, in
 * stacklog_events.h; here is making room for it.
 */
#include "config.h"
#include "os_memory.h"
#include "stacklog_events.h"

/* Pages of a chunk are faulted in this many records at a time, ahead of
 * the writer: one system call instead of a page fault every 170 events,
 * which cost a third of full mode's time on a malloc-bound program.  Not
 * the whole chunk at once: a thread that records little keeps little. */
#define EVENTS_PREPARED_AT_ONCE (64 * 1024 / sizeof(struct mdlog_event))

static void events_prepare_more(struct stacklog_thread *thread)
{
    uint32_t more = thread->capacity - thread->prepared;
    if (more > EVENTS_PREPARED_AT_ONCE)
        more = EVENTS_PREPARED_AT_ONCE;
    os_prefault_write(&thread->events[thread->prepared],
                      more * sizeof(struct mdlog_event));
    thread->prepared += more;
}

static bool events_next_chunk(struct stacklog_thread *thread, uint64_t order)
{
    stacklog_thread_flush_counts(thread);
    struct mdlog_chunk_header *chunk =
        stacklog_file_new_chunk(MDLOG_CHUNK_EVENTS, thread->tid, order);
    if (!chunk)
        return false;
    thread->chunk = chunk;
    thread->events = (struct mdlog_event *)(chunk + 1);
    thread->used = 0;
    thread->prepared = 0;
    thread->capacity = (uint32_t)MDLOG_CHUNK_RECORDS(MDLOG_CHUNK_SIZE,
                                                     struct mdlog_event);
    return true;
}

/* Room for one more event of `order`: more of the chunk prepared, or a
 * new chunk.  False when the log cannot grow. */
static bool events_make_room(struct stacklog_thread *thread, uint64_t order)
{
    bool fits = thread->chunk && thread->used < thread->capacity &&
                order - thread->chunk->first <= UINT32_MAX;
    if (!fits && !events_next_chunk(thread, order))
        return false;
    if (thread->used == thread->prepared)
        events_prepare_more(thread);
    return true;
}

void stacklog_event_write_slow(struct stacklog_thread *thread, unsigned type,
                               uintptr_t address, size_t size, uint64_t order,
                               uint32_t stack)
{
    if (!events_make_room(thread, order)) {
        thread->unrecorded++;
        return;
    }
    stacklog_event_store(thread, type, address, size, order, stack);
}
