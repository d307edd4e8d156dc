/*
 * The stack logger's fast path, inline in the exported functions of the
 * malloc layer.  In lite mode an allocation whose stack the thread's
 * stack cache knows needs only that lookup and one store into the
 * zone's metadata, done here without a call into the logger: the calls
 * alone (logger, capture, cache, zone lookup) were as much work as a
 * whole glibc malloc (bench/README.md, "The stack found in malloc
 * itself").
 */
#ifndef MALLOCDEBUG_STACKLOG_FAST_PATH_H
#define MALLOCDEBUG_STACKLOG_FAST_PATH_H

#include "stacklog.h"
#include "stacklog_stack_cache.h"
#include "szone_thread_cache.h"

/* Lite mode: a block's stack id is all an allocation records. */
extern bool stacklog_stacks_only;
/* The thread is inside the logger (stacklog.c). */
extern __thread bool stacklog_busy __attribute__((tls_model("initial-exec")));

/* True when `block` is the block the thread's cache of the zone has just
 * handed out (the default zone, without debug canaries) and its stack
 * was found in the stack cache and recorded. */
static MD_ALWAYS_INLINE bool
stacklog_block_stack_fast(malloc_zone_t *zone, uintptr_t block,
                          uintptr_t return_slot)
{
    struct stacklog_thread *thread = stacklog_current_thread;
    if (!thread || stacklog_busy || !return_slot)
        return false;
    /* Not marked busy: a signal handler that allocates meanwhile stores
     * nothing into the cache, since a stack through a signal frame is
     * never cached (one returning through the C library's restorer; a
     * handler installed with a restorer of its own is not recognised). */
    uint32_t stack = stacklog_stack_cache_find(thread, return_slot);
    if (!stack)
        return false; /* the logger takes the handout */
    /* Not a szone unless its thread cache says so: nothing is read
     * through `zone` here. */
    uint32_t *slot = szone_thread_cache_take_handout((struct szone *)zone,
                                                     (const void *)block);
    if (!slot)
        return false;
    __atomic_store_n(slot, stack, __ATOMIC_RELAXED);
    return true;
}

/* The stack logger's part of a malloc_logger call; `return_slot` is the
 * exported function's STACKLOG_RETURN_SLOT(). */
static MD_ALWAYS_INLINE void
stacklog_record(uint32_t type, malloc_zone_t *zone, uintptr_t arg2,
                uintptr_t arg3, uintptr_t result, uintptr_t return_slot)
{
    if (stacklog_stacks_only && (type & MALLOC_LOG_TYPE_ALLOCATE) && result &&
        stacklog_block_stack_fast(zone, result, return_slot))
        return;
    stacklog_logger(type, (uintptr_t)zone, arg2, arg3, result, return_slot);
}

#endif
