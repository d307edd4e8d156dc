/*
 * The history: every thread appends its events to EVENTS chunks of its
 * own, so recording takes no lock, and counts its own orders
 * (stacklog_orders.h).  Writing an event is inline, in
 * stacklog_events.h; here is making room for it.
 */
#include "config.h"
#include "os_memory.h"
#include "stacklog_events.h"

/* Memory for MDLOG_EVENT_MAX_SIZE more bytes of the thread's chunk,
 * and somewhat beyond (stacklog_file_back). */
static bool events_prepare(struct stacklog_thread *thread)
{
    const size_t header = sizeof(struct mdlog_chunk_header);
    size_t backed = MD_ALIGN_UP(header + thread->prepared, OS_PAGE_SIZE);
    size_t needed = header + thread->used + MDLOG_EVENT_MAX_SIZE;
    backed = stacklog_file_back(thread->chunk, backed, needed);
    if (!backed)
        return false;
    size_t prepared = backed - header;
    thread->prepared = prepared < thread->capacity ? (uint32_t)prepared
                                                   : thread->capacity;
    return true;
}

/* A new chunk, its first event written against the base of `order`. */
static bool events_next_chunk(struct stacklog_thread *thread, uint64_t order)
{
    stacklog_thread_flush_counts(thread);
    struct mdlog_chunk_header *chunk =
        stacklog_file_new_chunk(MDLOG_CHUNK_EVENTS, thread->tid, order);
    if (!chunk)
        return false;
    thread->chunk = chunk;
    thread->events = (unsigned char *)(chunk + 1);
    thread->used = 0;
    thread->prepared = (uint32_t)(STACKLOG_CHUNK_BACKED_AT_START - sizeof(*chunk));
    thread->capacity = (uint32_t)MDLOG_CHUNK_EVENT_BYTES(MDLOG_CHUNK_SIZE);
    *stacklog_event_mark(thread, thread->newest_mark) =
        (struct stacklog_event_mark){mdlog_event_chunk_base(order), 0, 0};
    thread->marks_retained = 0;
    return true;
}

/* Room for an event of `order`: more of the chunk given memory, or a new
 * chunk.  False when the log cannot grow. */
static bool events_make_room(struct stacklog_thread *thread, uint64_t order)
{
    bool fits = thread->chunk &&
                thread->capacity - thread->used >= MDLOG_EVENT_MAX_SIZE;
    if (!fits && !events_next_chunk(thread, order))
        return false;
    return thread->prepared - thread->used >= MDLOG_EVENT_MAX_SIZE ||
           events_prepare(thread);
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
