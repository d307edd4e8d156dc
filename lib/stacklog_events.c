/*
 * The history: every thread appends its events to EVENTS chunks of its
 * own, so recording takes no lock; only the order number is shared (one
 * atomic add in the header).  A record is written, then the chunk's
 * count is stored with release, so a reader never sees half of one.
 */
#include "config.h"
#include "os_memory.h"
#include "stacklog.h"

uint64_t stacklog_order_next(void)
{
    return __atomic_fetch_add(&stacklog_header->next_order, 1, __ATOMIC_RELAXED);
}

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

void stacklog_event_write(struct stacklog_thread *thread, unsigned type,
                          uintptr_t address, size_t size, uint64_t order,
                          uint32_t stack)
{
    /* A chunk holds orders up to 2^32 past its first: a thread that
     * records little while others record much starts a new one. */
    if (MD_UNLIKELY(thread->used == thread->prepared ||
                    order - thread->chunk->first > UINT32_MAX) &&
        !events_make_room(thread, order)) {
        thread->unrecorded++;
        return;
    }
    struct mdlog_event *event = &thread->events[thread->used];
    event->address = address;
    event->size_and_type = (size & (MDLOG_SIZE_LIMIT - 1)) |
                           (uint64_t)type << MDLOG_TYPE_SHIFT;
    event->stack = stack;
    event->order_offset = (uint32_t)(order - thread->chunk->first);
    thread->used++;
    thread->recorded++;
    __atomic_store_n(&thread->chunk->count, thread->used, __ATOMIC_RELEASE);
}

bool stacklog_event_compact(struct stacklog_thread *thread, uintptr_t address)
{
    if (thread->used == 0)
        return false;
    const struct mdlog_event *last = &thread->events[thread->used - 1];
    unsigned type = MDLOG_EVENT_TYPE(last);
    if (last->address != address ||
        (type & MDLOG_EVENT_KIND_MASK) != MDLOG_EVENT_ALLOC ||
        (type & MDLOG_EVENT_REALLOC))
        return false;
    thread->used--;
    thread->recorded--;
    thread->compacted += 2;
    __atomic_store_n(&thread->chunk->count, thread->used, __ATOMIC_RELEASE);
    return true;
}
