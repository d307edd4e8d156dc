/*
 * The orders that raise the floor every thread reads: events about what
 * has no tag, clocks passing a stride, moments, and tags a zone lets go
 * of (stacklog_orders.h).
 */
#include "config.h"
#include "stacklog_orders.h"
#include "szone.h"

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
     * them all, as for a reader (tools/log_reader_open.c). */
    return mdlog_order_moment(&stacklog_header->next_order);
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
    /* Only the tags ahead of the floor matter. */
    uint64_t floor = __atomic_load_n(&stacklog_header->next_order,
                                     __ATOMIC_ACQUIRE);
    int64_t newest = 0;
    for (unsigned i = 0; i < count; i++) {
        int64_t ahead = stacklog_order_ahead(tags[i].order, floor);
        if (ahead > newest)
            newest = ahead;
    }
    if (newest > 0)
        stacklog_order_raise_floor(floor + (uint64_t)newest);
}
