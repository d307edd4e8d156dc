/*
 * Appending an event to the thread's history (stacklog_events.c),
 * inline: in full mode the malloc layer's fast path writes its event
 * without a call, as lite mode's stores its stack id.
 */
#ifndef MALLOCDEBUG_STACKLOG_EVENTS_H
#define MALLOCDEBUG_STACKLOG_EVENTS_H

#include "stacklog.h"

/* The next place in the order of all threads' events. */
static inline uint64_t stacklog_order_next(void)
{
    return __atomic_fetch_add(&stacklog_header->next_order, 1,
                              __ATOMIC_RELAXED);
}

/* Writes the record of an event that fits in one (mdlog_event_fits) at
 * thread->used, which is prepared, then publishes it: the chunk's count
 * is stored with release, so a reader never sees half of one. */
static MD_ALWAYS_INLINE void
stacklog_event_store(struct stacklog_thread *thread, unsigned type,
                     uintptr_t address, size_t size, uint64_t order,
                     uint32_t stack)
{
    struct mdlog_event *event = &thread->events[thread->used];
    event->packed = mdlog_event_pack(type, address, size);
    event->stack = stack;
    event->order_offset = (uint32_t)(order - thread->chunk->first);
    thread->used++;
    thread->recorded++;
    __atomic_store_n(&thread->chunk->count, thread->used, __ATOMIC_RELEASE);
}

/* The same for an event that needs two records, when the records' pages
 * are not faulted in yet, or when the event needs a new chunk
 * (stacklog_events.c). */
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
    /* A chunk holds orders up to 2^32 past its first: a thread that
     * records little while others record much starts a new one. */
    if (MD_UNLIKELY(thread->used == thread->prepared ||
                    order - thread->chunk->first > UINT32_MAX ||
                    !mdlog_event_fits(address, size)))
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

/* The thread's last event when it is an extended allocation of the block
 * at `address`, else NULL (stacklog_events.c). */
const struct mdlog_event *
stacklog_event_last_extended_allocation(const struct stacklog_thread *thread,
                                        uintptr_t address);

/* The thread's last event when it is the allocation of the block at
 * `address` (not a realloc's), else NULL. */
static MD_ALWAYS_INLINE const struct mdlog_event *
stacklog_event_last_allocation(const struct stacklog_thread *thread,
                               uintptr_t address)
{
    if (thread->used == 0)
        return NULL;
    const struct mdlog_event *last = &thread->events[thread->used - 1];
    uint64_t packed = last->packed;
    unsigned type = (unsigned)(packed >> MDLOG_EVENT_TYPE_SHIFT);
    /* An address that does not fit never equals a record's bits. */
    if ((packed & ((UINT64_C(1) << MDLOG_EVENT_ADDRESS_BITS) - 1)) ==
            mdlog_event_address_bits(address) &&
        stacklog_event_type_takes_back(type))
        return last;
    if (MD_UNLIKELY(type == MDLOG_EVENT_EXTENSION))
        return stacklog_event_last_extended_allocation(thread, address);
    return NULL;
}

/* Takes back `last`, the thread's last event, an allocation freed right
 * away: neither is recorded, both are counted as compacted. */
static MD_ALWAYS_INLINE void
stacklog_event_take_back(struct stacklog_thread *thread,
                         const struct mdlog_event *last)
{
    struct mdlog_chunk_header *chunk = thread->chunk;
    thread->used = (uint32_t)(last - thread->events);
    thread->recorded--;
    thread->compacted += 2;
    /* The count goes down before taken_back goes up, and both before the
     * records are written again (see mdlog_chunk_header): a reader that
     * sees the new taken_back sees the lower count. */
    __atomic_store_n(&chunk->count, thread->used, __ATOMIC_RELEASE);
    __atomic_store_n(&chunk->taken_back, chunk->taken_back + 1,
                     __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

#endif
