/*
 * The history: every thread appends its events to EVENTS chunks of its
 * own, so recording takes no lock; only the order number is shared (one
 * atomic add in the header).  Writing a record is inline, in
 * stacklog_events.h; here are making room for it and the events that
 * take two records.
 */
#include "config.h"
#include "os_memory.h"
#include "stacklog_events.h"

/* Memory for the thread's chunk up to `records` more records, and
 * somewhat beyond (stacklog_file_back). */
static bool events_prepare(struct stacklog_thread *thread, uint32_t records)
{
    const size_t header = sizeof(struct mdlog_chunk_header);
    const size_t record = sizeof(struct mdlog_event);
    size_t backed = MD_ALIGN_UP(header + thread->prepared * record, OS_PAGE_SIZE);
    size_t needed = header + (thread->used + records) * record;
    backed = stacklog_file_back(thread->chunk, backed, needed);
    if (!backed)
        return false;
    uint32_t prepared = (uint32_t)((backed - header) / record);
    thread->prepared = prepared < thread->capacity ? prepared : thread->capacity;
    return true;
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
    thread->prepared = (uint32_t)((STACKLOG_CHUNK_BACKED_AT_START - sizeof(*chunk)) /
                                  sizeof(struct mdlog_event));
    thread->capacity = (uint32_t)MDLOG_CHUNK_RECORDS(MDLOG_CHUNK_SIZE,
                                                     struct mdlog_event);
    return true;
}

/* Room for `records` more records of an event of `order`: more of the
 * chunk given memory, or a new chunk.  False when the log cannot grow. */
static bool events_make_room(struct stacklog_thread *thread, uint64_t order,
                             uint32_t records)
{
    bool fits = thread->chunk && thread->capacity - thread->used >= records &&
                order - thread->chunk->first <= UINT32_MAX;
    if (!fits && !events_next_chunk(thread, order))
        return false;
    return thread->prepared - thread->used >= records ||
           events_prepare(thread, records);
}

/* An event that does not fit in one record: the record says so, and the
 * extension after it holds the address and size. */
static void events_store_extended(struct stacklog_thread *thread,
                                  unsigned type, uintptr_t address,
                                  size_t size, uint64_t order, uint32_t stack)
{
    struct mdlog_event *event = &thread->events[thread->used];
    event->packed = mdlog_event_pack(type, 0, MDLOG_EVENT_SIZE_EXTENDED);
    event->stack = stack;
    event->order_offset = (uint32_t)(order - thread->chunk->first);
    struct mdlog_event_extension *extension = (void *)(event + 1);
    extension->size_and_type =
        ((uint64_t)size & (MDLOG_EXTENSION_SIZE_LIMIT - 1)) |
        (uint64_t)MDLOG_EVENT_EXTENSION << MDLOG_EVENT_TYPE_SHIFT;
    extension->address = address;
    thread->used += 2;
    thread->recorded++;
    __atomic_store_n(&thread->chunk->count, thread->used, __ATOMIC_RELEASE);
}

void stacklog_event_write_slow(struct stacklog_thread *thread, unsigned type,
                               uintptr_t address, size_t size, uint64_t order,
                               uint32_t stack)
{
    bool fits = mdlog_event_fits(address, size);
    if (!events_make_room(thread, order, fits ? 1 : 2)) {
        thread->unrecorded++;
        return;
    }
    if (fits)
        stacklog_event_store(thread, type, address, size, order, stack);
    else
        events_store_extended(thread, type, address, size, order, stack);
}

const struct mdlog_event *
stacklog_event_last_extended_allocation(const struct stacklog_thread *thread,
                                        uintptr_t address)
{
    if (thread->used < 2)
        return NULL;
    const struct mdlog_event *last = &thread->events[thread->used - 2];
    const struct mdlog_event_extension *extension = (const void *)(last + 1);
    if (extension->address != address ||
        !stacklog_event_type_takes_back(MDLOG_EVENT_TYPE(last)))
        return NULL;
    return last;
}
