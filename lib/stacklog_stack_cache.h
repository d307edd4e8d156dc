/*
 * The stack cache's lookup (stacklog_stack_cache.c), inline: the malloc
 * layer's fast path runs it in the function the program called.
 */
#ifndef MALLOCDEBUG_STACKLOG_STACK_CACHE_H
#define MALLOCDEBUG_STACKLOG_STACK_CACHE_H

#include "stacklog.h"

/* Fibonacci hashing: the top 6 bits of the product pick one of 64 sets. */
_Static_assert(STACK_CACHE_SETS == 64, "the set hash takes 6 bits");
static inline unsigned stacklog_stack_cache_set(uintptr_t return_slot)
{
    return (unsigned)(((return_slot >> 3) * 0x9e3779b97f4a7c15ULL) >> 58);
}

/* The stack of `entry` if its slots still hold its return addresses,
 * else 0; its first slot, the key, was checked with the key.  The first
 * difference ends the check: a thread recursing at many depths finds
 * the entry of another path there, and often. */
static MD_ALWAYS_INLINE uint32_t
stacklog_cached_stack_if_unchanged(const struct stacklog_cached_stack *entry)
{
    for (unsigned i = 1; i < entry->count; i++)
        if (*(const uintptr_t *)entry->frame[i].slot != entry->frame[i].value)
            return 0;
    return entry->stack;
}

/* The id of the cached stack whose innermost return address sits at
 * `return_slot` and which the thread still stands on, or 0. */
static MD_ALWAYS_INLINE uint32_t
stacklog_stack_cache_find(struct stacklog_thread *thread, uintptr_t return_slot)
{
    const unsigned first = stacklog_stack_cache_set(return_slot) *
                           STACK_CACHE_WAYS;
    const uint64_t generation = stacklog_stack_slots_generation();
    const uintptr_t returns_to = *(const uintptr_t *)return_slot;
    for (unsigned index = first; index < first + STACK_CACHE_WAYS; index++) {
        if (thread->cache_key[index] != return_slot ||
            thread->cache_return[index] != returns_to ||
            thread->cache_generation[index] != generation)
            continue;
        uint32_t stack = stacklog_cached_stack_if_unchanged(&thread->cache[index]);
        if (stack) {
            if (MD_UNLIKELY(thread->cache_misses))
                thread->cache_misses = 0;
            return stack;
        }
    }
    return 0;
}

#endif
