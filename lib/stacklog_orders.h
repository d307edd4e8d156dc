/*
 * The order of events (stacklog_orders.c for what is not inline): the
 * malloc layer's fast path orders its events without a call.
 */
#ifndef MALLOCDEBUG_STACKLOG_ORDERS_H
#define MALLOCDEBUG_STACKLOG_ORDERS_H

#include "stacklog.h"

/*
 * Orders.  Each thread counts its own (thread->clock), and a block
 * carries the order of its latest event in its log tag, so that the
 * thread that frees or reuses it next counts on from there: a block's
 * events are in order whichever threads made them, and no cache line is
 * written by every thread on every event.  The header's next_order is
 * a floor that every event reads: events about what has no tag (vm
 * regions, blocks of other zones) raise it to take their order, so they
 * are in order too; each thread raises it whenever its clock passes a
 * multiple of MDLOG_ORDER_STRIDE, so that no clock runs far ahead of it,
 * and to its clock when it exits, for a later thread of the same id;
 * a zone letting go of tags has it raised past their orders; and a tool
 * reading the log while the process runs, or a module found unloaded,
 * raises it past every clock, to tell the events made after from those
 * made before.
 */

/* The floor raised to at least `order`. */
void stacklog_order_raise_floor(uint64_t order);

/* The least order the thread's next event may take. */
static MD_ALWAYS_INLINE uint64_t
stacklog_order_least(const struct stacklog_thread *thread)
{
    /* Acquire: after whatever gave the thread the block it records, so a
     * floor raised before the block's previous event was written is
     * seen (log_reader_events.c relies on it). */
    uint64_t floor = __atomic_load_n(&stacklog_header->next_order,
                                     __ATOMIC_ACQUIRE);
    return (thread->clock > floor ? thread->clock : floor) + 1;
}

/* Makes `order` the thread's clock, the floor raised first when the
 * clock passes a multiple of the stride.  So a clock is never a stride
 * past the floor it last raised, and an order being taken never two
 * strides past the floor; the stride is large enough for the raises to
 * be rare. */
static MD_ALWAYS_INLINE uint64_t
stacklog_order_take(struct stacklog_thread *thread, uint64_t order)
{
    if (MD_UNLIKELY((order ^ thread->clock) >= MDLOG_ORDER_STRIDE))
        stacklog_order_raise_floor(order);
    thread->clock = order;
    return order;
}

/* The thread's next order for an event that must come after `seen` (0
 * for none). */
static MD_ALWAYS_INLINE uint64_t
stacklog_order_after(struct stacklog_thread *thread, uint64_t seen)
{
    uint64_t least = stacklog_order_least(thread);
    return stacklog_order_take(thread, seen >= least ? seen + 1 : least);
}

/* How far the order whose low 32 bits are `tag_order` is at or above
 * `base`, or -1 when it is below.  No order runs more than two strides
 * past the floor (see stacklog_order_take), so a tag more than four
 * ahead holds an old order read modulo 2^32, or was never written:
 * below. */
static MD_ALWAYS_INLINE int64_t stacklog_order_ahead(uint32_t tag_order,
                                                     uint64_t base)
{
    uint32_t ahead = tag_order - (uint32_t)base;
    return ahead <= 4 * MDLOG_ORDER_STRIDE ? (int64_t)ahead : -1;
}

/* The next order for an event of the block whose tag holds `*tag_order`,
 * which then holds it. */
static MD_ALWAYS_INLINE uint64_t
stacklog_order_of_block(struct stacklog_thread *thread, uint32_t *tag_order)
{
    uint64_t least = stacklog_order_least(thread);
    int64_t ahead = stacklog_order_ahead(
        __atomic_load_n(tag_order, __ATOMIC_RELAXED), least);
    uint64_t order = ahead >= 0 ? least + (uint64_t)ahead + 1 : least;
    __atomic_store_n(tag_order, (uint32_t)order, __ATOMIC_RELAXED);
    return stacklog_order_take(thread, order);
}

/* The floor raised past every order taken so far, which are then below
 * it, as every order taken later is above it; returns the new floor. */
uint64_t stacklog_order_moment(void);

/* The zone's hook (szone_log_tags_released): the floor raised past the
 * orders of blocks whose tags are gone, so that the next block at one of
 * their addresses has its events ordered after theirs. */
struct szone_log_tag;
void stacklog_order_tags_released(const struct szone_log_tag *tags,
                                  unsigned count);

/* The thread's next order for an event about something without a tag:
 * the floor is raised to it, so that whichever thread records the next
 * event about the same thing orders it after. */
uint64_t stacklog_order_shared(struct stacklog_thread *thread);

#endif
