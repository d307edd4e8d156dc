/*
 * The history: every thread appends its events to EVENTS chunks of its
 * own, so recording takes no lock, and counts its own orders (see
 * stacklog_events.h).  Writing an event and ordering it are inline, in
 * stacklog_events.h; here is making room for it, and the orders that
 * raise the floor all threads read.
 */
#include "config.h"
#include "os_memory.h"
#include "stacklog_events.h"
#include "szone.h"

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

void stacklog_order_raise_floor(uint64_t order)
{
    uint64_t *floor = &stacklog_header->next_order;
    uint64_t seen = __atomic_load_n(floor, __ATOMIC_RELAXED);
    while (seen < order &&
           !__atomic_compare_exchange_n(floor, &seen, order, true,
                                        __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        ;
}

uint64_t stacklog_order_moment(void)
{
    /* An order is taken up to a stride past the floor a thread last
     * raised it to, which may be a stride behind: twice the stride clears
     * them all (as a reader does, tools/log_reader_open.c). */
    uint64_t *floor = &stacklog_header->next_order;
    uint64_t seen = __atomic_load_n(floor, __ATOMIC_RELAXED), moment;
    do
        moment = seen + 2 * MDLOG_ORDER_STRIDE;
    while (!__atomic_compare_exchange_n(floor, &seen, moment, true,
                                        __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
    return moment;
}

uint64_t stacklog_order_shared(struct stacklog_thread *thread)
{
    uint64_t *floor = &stacklog_header->next_order;
    uint64_t seen = __atomic_load_n(floor, __ATOMIC_RELAXED);
    uint64_t order;
    do
        order = (seen > thread->clock ? seen : thread->clock) + 1;
    while (!__atomic_compare_exchange_n(floor, &seen, order, true,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
    thread->clock = order;
    return order;
}

void stacklog_order_tags_released(const struct szone_log_tag *tags,
                                  unsigned count)
{
    /* Every order is at most a stride past the floor: the tags' 32 bits
     * are read as the floor's neighbours, and only those ahead of it
     * matter. */
    uint64_t floor = __atomic_load_n(&stacklog_header->next_order,
                                     __ATOMIC_ACQUIRE);
    int32_t newest = 0;
    for (unsigned i = 0; i < count; i++) {
        int32_t ahead = (int32_t)(tags[i].order - (uint32_t)floor);
        if (ahead > newest)
            newest = ahead;
    }
    if (newest > 0)
        stacklog_order_raise_floor(floor + (uint64_t)newest);
}
