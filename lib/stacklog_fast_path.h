/*
 * The stack logger's fast path, inline in the exported functions of the
 * malloc layer.  An allocation whose stack the thread's stack cache
 * knows needs only that lookup and one store into the zone's metadata,
 * plus, in full mode, one record appended to the thread's history; a
 * free in full mode needs the lookup and the record, or less when it
 * takes back the allocation just made.  All of it is done here without
 * a call into the logger: the calls alone (logger, capture, cache, zone
 * lookup, event writer) were as much work as a whole glibc malloc
 * (bench/README.md, "The stack found in malloc itself" and "Full mode
 * inline").  Anything else goes to stacklog_logger.
 */
#ifndef MALLOCDEBUG_STACKLOG_FAST_PATH_H
#define MALLOCDEBUG_STACKLOG_FAST_PATH_H

#include "stacklog.h"
#include "stacklog_events.h"
#include "stacklog_stack_cache.h"
#include "szone_thread_cache.h"

/* Lite mode: a block's stack id is all an allocation records. */
extern bool stacklog_stacks_only;
/* Full and malloc modes: an allocation freed right away leaves no
 * events (not MallocStackLoggingNoCompact). */
extern bool stacklog_compact;
/* The thread is inside the logger (stacklog.c) or changing its history
 * here. */
extern __thread bool stacklog_busy __attribute__((tls_model("initial-exec")));

/* Marks the thread busy while it changes its history, so that a signal
 * handler allocating meanwhile counts its event as unrecorded instead of
 * writing into the middle of ours.  The fences keep the compiler from
 * moving the history's stores out from between the two, or dropping the
 * first store as dead now that no call separates them. */
static MD_ALWAYS_INLINE void stacklog_busy_enter(void)
{
    __atomic_store_n(&stacklog_busy, true, __ATOMIC_RELAXED);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static MD_ALWAYS_INLINE void stacklog_busy_leave(void)
{
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    __atomic_store_n(&stacklog_busy, false, __ATOMIC_RELAXED);
}

/* Relaxed atomic: read by a signal handler that may have interrupted the
 * thread between the two. */
static MD_ALWAYS_INLINE bool stacklog_is_busy(void)
{
    return __atomic_load_n(&stacklog_busy, __ATOMIC_RELAXED);
}

/* The thread's next order for an event of the block with `tag`, or, when
 * its zone keeps none, one ordered through the floor. */
static MD_ALWAYS_INLINE uint64_t
stacklog_order_of_tag(struct stacklog_thread *thread, struct szone_log_tag *tag)
{
    return tag ? stacklog_order_of_block(thread, &tag->order)
               : stacklog_order_shared(thread);
}

/* True when `block` is the block the thread's cache of the zone has just
 * handed out (the default zone, without debug canaries) and its stack
 * was found in the stack cache and recorded: the stack id in the
 * block's metadata and, but in lite mode, the allocation event. */
static MD_ALWAYS_INLINE bool
stacklog_allocation_fast(struct stacklog_thread *thread, uint32_t type,
                         malloc_zone_t *zone, uintptr_t size, uintptr_t block,
                         uintptr_t return_slot)
{
    /* Not marked busy: a signal handler that allocates meanwhile stores
     * nothing into the cache, since a stack through a signal frame is
     * never cached (one returning through the C library's restorer; a
     * handler installed with a restorer of its own is not recognised). */
    uint32_t stack = stacklog_stack_cache_find(thread, return_slot);
    if (!stack)
        return false; /* the logger takes the handout */
    /* Not a szone unless its thread cache says so: nothing is read
     * through `zone` here. */
    struct szone_log_tag *tag = szone_thread_cache_take_handout(
        (struct szone *)zone, (const void *)block);
    if (!tag)
        return false;
    __atomic_store_n(&tag->stack_id, stack, __ATOMIC_RELAXED);
    if (stacklog_stacks_only)
        return true;
    unsigned cleared = type & MALLOC_LOG_TYPE_CLEARED ? MDLOG_EVENT_CLEARED : 0;
    stacklog_busy_enter();
    stacklog_event_write(thread, MDLOG_EVENT_ALLOC | cleared, block, size,
                         stacklog_order_of_block(thread, &tag->order), stack);
    stacklog_busy_leave();
    return true;
}

/* The two events of a realloc that moved or resized `old` to `block`,
 * whose tag is `tag`: the free with the place in the order taken before
 * the realloc (stacklog_realloc_begin), then the allocation.  The thread
 * is busy. */
static MD_ALWAYS_INLINE void
stacklog_realloc_events(struct stacklog_thread *thread, uintptr_t old,
                        uintptr_t size, uintptr_t block,
                        struct szone_log_tag *tag, uint32_t stack)
{
    stacklog_event_write(thread, MDLOG_EVENT_FREE | MDLOG_EVENT_REALLOC, old,
                         0, stacklog_order_taken_before(thread, thread->realloc_order),
                         stack);
    stacklog_event_write(thread, MDLOG_EVENT_ALLOC | MDLOG_EVENT_REALLOC,
                         block, size, stacklog_order_of_tag(thread, tag), stack);
}

/* In full and malloc modes, a realloc of `old` to `block` of `size` with
 * a stack the stack cache knows: the stack id stored as an allocation on
 * the fast path does when the block moved to the thread cache's handout,
 * else (grown in place, mostly) through the zone, and the realloc's two
 * events.  False when the stack is not known: the logger takes it. */
static MD_ALWAYS_INLINE bool
stacklog_realloc_fast(struct stacklog_thread *thread, malloc_zone_t *zone,
                      uintptr_t old, uintptr_t size, uintptr_t block,
                      uintptr_t return_slot)
{
    uint32_t stack = stacklog_stack_cache_find(thread, return_slot);
    if (!stack)
        return false;
    struct szone_log_tag *tag = szone_thread_cache_take_handout(
        (struct szone *)zone, (const void *)block);
    if (tag)
        __atomic_store_n(&tag->stack_id, stack, __ATOMIC_RELAXED);
    else
        tag = stacklog_block_set_stack(zone, block, stack);
    stacklog_busy_enter();
    stacklog_realloc_events(thread, old, size, block, tag, stack);
    stacklog_busy_leave();
    return true;
}

/* Before a realloc of the block in use at `old`, in the modes that
 * record frees: the free half's place in the order, taken now and left
 * in the block's tag, before the block can be reused by another thread.
 * A realloc made meanwhile on the thread (one inside a program zone's
 * realloc) records its events first; this realloc's free half then
 * takes the next place when it is written (stacklog_order_taken_before). */
void stacklog_realloc_begin_slow(malloc_zone_t *zone, uintptr_t old);
static MD_ALWAYS_INLINE void stacklog_realloc_begin(malloc_zone_t *zone,
                                                    uintptr_t old)
{
    struct stacklog_thread *thread = stacklog_current_thread;
    if (MD_LIKELY(thread && !stacklog_is_busy())) {
        /* Busy: a signal handler's event would take the thread's clock
         * from under it. */
        stacklog_busy_enter();
        thread->realloc_order =
            stacklog_order_of_tag(thread, stacklog_block_tag(zone, old));
        stacklog_busy_leave();
    } else {
        stacklog_realloc_begin_slow(zone, old);
    }
}

/* Takes back the allocation of `block` when it is the thread's last
 * event and the block is still that allocation: another thread may have
 * freed it and been given it again since.  The block's stack id tells:
 * every stack starts at its thread's node, so the other thread's
 * allocation has a stack of its own.  Not for blocks whose zone keeps no
 * stack id, nor for allocations recorded without a stack.  The thread
 * is busy. */
static MD_ALWAYS_INLINE bool
stacklog_compact_free(struct stacklog_thread *thread, malloc_zone_t *zone,
                      uintptr_t block)
{
    const struct stacklog_event_mark *last =
        stacklog_event_last_allocation(thread, block);
    if (MD_LIKELY(!last))
        return false;
    const uint32_t stack = last->base.stack[MDLOG_EVENT_SIDE_ALLOCATION];
    if (!stack || stacklog_block_stack(zone, block) != stack)
        return false;
    stacklog_event_take_back(thread);
    return true;
}

/* True when the free of `block` is recorded: nothing to record in lite
 * mode, the allocation taken back, or the free event written with a
 * stack the stack cache knows.  `tag` is the block's log tag, or NULL
 * for it to be looked up. */
static MD_ALWAYS_INLINE bool
stacklog_free_fast(struct stacklog_thread *thread, malloc_zone_t *zone,
                   uintptr_t block, struct szone_log_tag *tag,
                   uintptr_t return_slot)
{
    if (stacklog_stacks_only)
        return true;
    bool recorded = true;
    stacklog_busy_enter();
    if (!stacklog_compact || !stacklog_compact_free(thread, zone, block)) {
        uint32_t stack = stacklog_stack_cache_find(thread, return_slot);
        if (stack)
            stacklog_event_write(
                thread, MDLOG_EVENT_FREE, block, 0,
                stacklog_order_of_tag(thread, tag ? tag : stacklog_block_tag(zone, block)),
                stack);
        else
            recorded = false;
    }
    stacklog_busy_leave();
    return recorded;
}

/* The stack logger's part of a malloc_logger call; `return_slot` is the
 * exported function's STACKLOG_RETURN_SLOT().  For a free, `tag` may be
 * the block's log tag, when the caller has found it. */
static MD_ALWAYS_INLINE void
stacklog_record_tagged(uint32_t type, malloc_zone_t *zone, uintptr_t arg2,
                       uintptr_t arg3, uintptr_t result,
                       struct szone_log_tag *tag, uintptr_t return_slot)
{
    struct stacklog_thread *thread = stacklog_current_thread;
    if (MD_LIKELY(thread && !stacklog_is_busy() && return_slot)) {
        if (!(type & MALLOC_LOG_TYPE_ALLOCATE)) {
            if (stacklog_free_fast(thread, zone, arg2, tag, return_slot))
                return;
        } else if (result && (stacklog_stacks_only ||
                              !(type & MALLOC_LOG_TYPE_DEALLOCATE))) {
            if (stacklog_allocation_fast(thread, type, zone, arg2, result,
                                         return_slot))
                return;
        } else if (result) {
            if (stacklog_realloc_fast(thread, zone, arg2, arg3, result,
                                      return_slot))
                return;
        }
    }
    stacklog_logger(type, (uintptr_t)zone, arg2, arg3, result, return_slot);
}

static MD_ALWAYS_INLINE void
stacklog_record(uint32_t type, malloc_zone_t *zone, uintptr_t arg2,
                uintptr_t arg3, uintptr_t result, uintptr_t return_slot)
{
    stacklog_record_tagged(type, zone, arg2, arg3, result, NULL, return_slot);
}

#endif
