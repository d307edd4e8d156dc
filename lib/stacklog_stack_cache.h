/*
 * The stack cache's lookup (stacklog_stack_cache.c), inline: the malloc
 * layer's fast path runs it in the function the program called.
 */
#ifndef MALLOCDEBUG_STACKLOG_STACK_CACHE_H
#define MALLOCDEBUG_STACKLOG_STACK_CACHE_H

#include "stacklog.h"

/* The set of the stacks whose innermost return address, `returns_to`,
 * sits at `return_slot`.  Fibonacci hashing: the top bits of the
 * product pick it. */
static inline unsigned stacklog_stack_cache_set(uintptr_t return_slot,
                                                uintptr_t returns_to)
{
    return (unsigned)((((return_slot >> 3) ^ returns_to) *
                       0x9e3779b97f4a7c15ULL) >>
                      (64 - STACK_CACHE_SET_BITS));
}

/* The stack of `entry` if its slots still hold its return addresses,
 * else 0; its first slot, the key, was checked with the key.  Two frames
 * a turn, with one branch for both, up to the first difference: a thread
 * recursing at many depths finds the entry of another path there, and
 * often. */
static MD_ALWAYS_INLINE uint32_t
stacklog_cached_stack_if_unchanged(const struct stacklog_cached_stack *entry)
{
    const struct stacklog_cached_frame *frame = &entry->frame[1];
    const struct stacklog_cached_frame *end = &entry->frame[entry->count];
    for (; frame < end; frame += 2)
        if ((*(const uintptr_t *)frame[0].slot ^ frame[0].value) |
            (*(const uintptr_t *)frame[1].slot ^ frame[1].value))
            return 0;
    return entry->stack;
}

/* The id of the cached stack whose innermost return address sits at
 * `return_slot` and which the thread still stands on, or 0.  Nothing is
 * found while the thread lags behind the unmap generation: the capture
 * catches up first (stacklog_stack_slots_catch_up).  A miss is noted in
 * thread->cache_missed_slot: the capture that follows a miss of the
 * malloc layer's fast path does not look again. */
static MD_ALWAYS_INLINE uint32_t
stacklog_stack_cache_find(struct stacklog_thread *thread, uintptr_t return_slot)
{
    if (MD_UNLIKELY(thread->unmaps_seen != stacklog_stack_slots_generation()))
        return 0;
    const uintptr_t returns_to = *(const uintptr_t *)return_slot;
    const unsigned first =
        stacklog_stack_cache_set(return_slot, returns_to) * STACK_CACHE_WAYS;
    const struct stacklog_cache_key *key = &thread->cache_key[first];
    for (unsigned way = 0; way < STACK_CACHE_WAYS; way++) {
        if (key[way].slot != return_slot || key[way].returns_to != returns_to)
            continue;
        uint32_t stack =
            stacklog_cached_stack_if_unchanged(&thread->cache[first + way]);
        if (stack) {
            if (MD_UNLIKELY(thread->cache_misses))
                thread->cache_misses = 0;
            return stack;
        }
    }
    thread->cache_missed_slot = return_slot;
    return 0;
}

#endif
