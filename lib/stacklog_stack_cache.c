/*
 * Stacks taken again without unwinding.
 *
 * A program that allocates in a loop asks for the same stack over and
 * over.  Unwinding it each time costs a few hundred instructions: cheap
 * alone, but enough to keep the processor from overlapping the program's
 * own cache misses with each other, so a memory-bound program slows down
 * by far more than the unwinding itself takes.
 *
 * So each thread remembers its recent stacks, the program's frames only,
 * along with where each return address sat on the stack
 * (stacklog_stack_slots.c).  A stack is looked for by where the return
 * address into the program sits, which the exported function the
 * program called knows without unwinding (STACKLOG_RETURN_SLOT).  When
 * every one of the remembered slots still holds its return address, the
 * stack is the one remembered: the innermost return address is the same,
 * so the caller's frame is laid out as before and its own return address
 * is where it was, and so on outwards; an unwinder would read exactly
 * what it read before.  Stacks deeper than STACK_CACHE_FRAMES are not
 * remembered.
 *
 * The lookup is inline (stacklog_stack_cache.h): lite mode runs it in
 * malloc itself (stacklog_fast_path.h).  Four stacks are remembered
 * for each of STACK_CACHE_SETS sets of places.  An interpreter allocates
 * at many depths, and at one depth from several call paths (its object
 * allocator called by different handlers): with 8 places, one per
 * depth, Python found 49% of its stacks here; with 64 sets of two, 97%.
 * Its frees come at one depth from more paths still (each type's
 * deallocator): in full mode it unwound 1.07 M times with two stacks a
 * set, 132 K times with four.  A program with many call sites wants
 * more sets: with 256 rather than 64, git log spent 20% fewer
 * instructions on logging in full mode, 18% fewer in lite mode; Python
 * as many.
 *
 * The set is picked by the place and the return address found there
 * together, not by the place alone: the paths that reach one place are
 * mostly different callers of one function (a deallocator called by
 * each type's, a wrapper around malloc), and by the place alone they all
 * fell into one set of four and pushed each other out.  Picked by both,
 * Python's full mode unwound 14.6 K times rather than 316 K, its frees
 * missing 3.8 K times rather than 185 K (py_workload.py 0.25).
 */
#include "config.h"
#include "stacklog.h"
#include "stacklog_stack_cache.h"

#include <string.h>

/* A thread whose stacks keep changing (deep recursion) would fill the
 * cache at each capture and never use it: after this many captures
 * without a hit, only one in STORE_INTERVAL is remembered. */
#define MISSES_BEFORE_SPARING 64
#define STORE_INTERVAL 64

void stacklog_stack_cache_clear(struct stacklog_thread *thread)
{
    memset(thread->cache_key, 0, sizeof(thread->cache_key));
}

bool stacklog_stack_cache_will_store(const struct stacklog_thread *thread)
{
    uint32_t misses = thread->cache_misses;
    return misses < MISSES_BEFORE_SPARING || misses % STORE_INTERVAL == 0;
}

void stacklog_stack_cache_store(struct stacklog_thread *thread,
                                unsigned first, uint32_t stack)
{
    bool wanted = stacklog_stack_cache_will_store(thread);
    thread->cache_misses++;
    if (!wanted)
        return;
    unsigned total = thread->unwound_total;
    /* The slots must have been found since the thread last caught up:
     * the keys are good for as long as it stays caught up. */
    if (!stack || !thread->unwound_slots_known ||
        thread->unwound_generation != thread->unmaps_seen || first == 0 ||
        first >= total || total - first >= STACK_CACHE_FRAMES)
        return;
    /* The ways of a set are replaced in turn. */
    const uintptr_t return_slot = thread->unwound_slot[first];
    const unsigned set = stacklog_stack_cache_set(
        return_slot, (uintptr_t)thread->unwound[first]);
    const unsigned way = thread->cache_next_way[set];
    thread->cache_next_way[set] = (uint8_t)((way + 1) % STACK_CACHE_WAYS);
    const unsigned index = set * STACK_CACHE_WAYS + way;
    struct stacklog_cached_stack *entry = &thread->cache[index];
    for (unsigned i = first; i < total; i++) {
        entry->frame[i - first].slot = thread->unwound_slot[i];
        entry->frame[i - first].value = (uintptr_t)thread->unwound[i];
    }
    entry->count = total - first;
    entry->frame[entry->count] = entry->frame[entry->count - 1];
    entry->stack = stack;
    thread->cache_key[index] = (struct stacklog_cache_key){
        return_slot, (uintptr_t)thread->unwound[first]};
}
