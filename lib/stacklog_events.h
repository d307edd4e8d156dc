/*
 * Appending an event to the thread's history (stacklog_events.c),
 * inline: in full mode the malloc layer's fast path writes its event
 * without a call, as lite mode's stores its stack id.
 */
#ifndef MALLOCDEBUG_STACKLOG_EVENTS_H
#define MALLOCDEBUG_STACKLOG_EVENTS_H

#include "stacklog.h"
#include "stacklog_orders.h"

static MD_ALWAYS_INLINE struct stacklog_event_mark *
stacklog_event_mark(struct stacklog_thread *thread, uint32_t index)
{
    return &thread->event_marks[index % STACKLOG_EVENT_MARKS];
}

/* The order for an event that took `order` before its call: a thread's
 * events are written in increasing order, as readers merge them, so an
 * order taken before events the thread wrote since (a realloc's free
 * half or a munmap's, with a signal handler's allocations, or a program
 * zone's, made inside the call) gives way to the next one. */
static MD_ALWAYS_INLINE uint64_t
stacklog_order_taken_before(struct stacklog_thread *thread, uint64_t order)
{
    if (MD_UNLIKELY(order <= stacklog_event_mark(thread, thread->newest_mark)
                                 ->base.order))
        return stacklog_order_after(thread, 0);
    return order;
}

/* Writes an event at thread->used, which has MDLOG_EVENT_MAX_SIZE bytes
 * prepared, against the thread's newest, then publishes it: the chunk's
 * count is stored with release, so a reader never sees half of one. */
static MD_ALWAYS_INLINE void
stacklog_event_store(struct stacklog_thread *thread, unsigned type,
                     uintptr_t address, size_t size, uint64_t order,
                     uint32_t stack)
{
    const uint32_t index = thread->newest_mark + 1;
    struct stacklog_event_mark *mark = stacklog_event_mark(thread, index);
    struct mdlog_event_base base = stacklog_event_mark(thread, index - 1)->base;
    const struct mdlog_event event = {address, size, order, stack, type};
    thread->used += mdlog_event_encode(thread->events + thread->used, &base,
                                       &event);
    *mark = (struct stacklog_event_mark){base, thread->used, type};
    thread->newest_mark = index;
    /* The oldest mark in the ring is what the oldest retained event was
     * written against. */
    thread->marks_retained += thread->marks_retained < STACKLOG_EVENT_MARKS - 1;
    thread->recorded++;
    __atomic_store_n(&thread->chunk->count, thread->used, __ATOMIC_RELEASE);
}

/* The same when the event's bytes are not faulted in yet, or when the
 * event needs a new chunk (stacklog_events.c). */
void stacklog_event_write_slow(struct stacklog_thread *thread, unsigned type,
                               uintptr_t address, size_t size, uint64_t order,
                               uint32_t stack);

/* Appends an event (enum mdlog_event_kind and flags) to the thread's
 * chunk; counted as unrecorded when the log cannot grow. */
static MD_ALWAYS_INLINE void
stacklog_event_write(struct stacklog_thread *thread, unsigned type,
                     uintptr_t address, size_t size, uint64_t order,
                     uint32_t stack)
{
    if (MD_UNLIKELY(thread->prepared - thread->used < MDLOG_EVENT_MAX_SIZE))
        stacklog_event_write_slow(thread, type, address, size, order, stack);
    else
        stacklog_event_store(thread, type, address, size, order, stack);
}

/* Whether an event of `type` is one a free may take back: an allocation,
 * not a realloc's half. */
static MD_ALWAYS_INLINE bool stacklog_event_type_takes_back(unsigned type)
{
    return (type & (MDLOG_EVENT_KIND_MASK | MDLOG_EVENT_REALLOC)) ==
           MDLOG_EVENT_ALLOC;
}

/* The thread's last event when it is the allocation of the block at
 * `address` (not a realloc's) and can be taken back, else NULL. */
static MD_ALWAYS_INLINE const struct stacklog_event_mark *
stacklog_event_last_allocation(struct stacklog_thread *thread,
                               uintptr_t address)
{
    const struct stacklog_event_mark *last =
        stacklog_event_mark(thread, thread->newest_mark);
    if (thread->marks_retained && last->base.address == address &&
        stacklog_event_type_takes_back(last->type))
        return last;
    return NULL;
}

/* Takes back the thread's last event, an allocation freed right away:
 * neither is recorded, both are counted as compacted. */
static MD_ALWAYS_INLINE void
stacklog_event_take_back(struct stacklog_thread *thread)
{
    struct mdlog_chunk_header *chunk = thread->chunk;
    thread->newest_mark--;
    thread->marks_retained--;
    thread->used = stacklog_event_mark(thread, thread->newest_mark)->end;
    thread->recorded--;
    thread->compacted += 2;
    /* The count goes down before taken_back goes up, and both before the
     * bytes are written again (see mdlog_chunk_header): a reader that
     * sees the new taken_back sees the lower count. */
    __atomic_store_n(&chunk->count, thread->used, __ATOMIC_RELEASE);
    __atomic_store_n(&chunk->taken_back, chunk->taken_back + 1,
                     __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

#endif
