/*
 * The size of the frame each return address returns into, learnt from
 * the stacks whose slots the search found (stacklog_stack_slots.c): the
 * distance from a return address's slot to its caller's.  With it the
 * join (stacklog_stack_join.c) steps from the return address into the
 * program to its callers' without unwinding, where a recursion's new
 * frames are all known ones.
 *
 * A function's frame at one of its calls has one size, unless it
 * allocates on the stack (alloca, variable-length arrays) or realigns
 * its frame.  Such a size shows itself by changing: an address found
 * with two sizes is never trusted again, and an address is trusted only
 * once found TRUSTED_AFTER times with the same size.  A size that varies
 * yet came out the same that often can still lead a step astray, to a
 * word that is not a return address; most often the step after it then
 * finds no size, or the walk never lands on a slot of the previous stack
 * that still holds its return address, and the stack is unwound.
 *
 * Where a frame's size changes, the slots found beyond it are suspect
 * too: a frame that grew may leave, where its caller's return address
 * sat before, a stale copy of it, which the stack cache's check and the
 * join would take for the real one.  So a stack through a frame found
 * with two sizes is neither cached nor joined to, and finding a second
 * size clears the thread's stack cache.
 *
 * Each thread has its own table: no lock, and the addresses a thread
 * runs through are the ones it needs.
 */
#include "config.h"
#include "stacklog.h"

#include <string.h>

#define TRUSTED_AFTER 4
/* Entries an address may sit in, from the one its hash picks. */
#define PROBES 4

static unsigned frame_size_home(uintptr_t pc)
{
    return (unsigned)((pc * 0x9e3779b97f4a7c15ULL) >> (64 - FRAME_SIZES_BITS));
}

/* The index of the entry of `pc`, or FRAME_SIZES. */
static unsigned frame_size_index(const struct stacklog_thread *thread,
                                 uintptr_t pc)
{
    const unsigned home = frame_size_home(pc);
    for (unsigned i = 0; i < PROBES; i++)
        if (thread->frame_sizes[(home + i) % FRAME_SIZES].pc == pc)
            return (home + i) % FRAME_SIZES;
    return FRAME_SIZES;
}

uint32_t stacklog_frame_size(const struct stacklog_thread *thread,
                             uintptr_t pc)
{
    const unsigned index = frame_size_index(thread, pc);
    if (index == FRAME_SIZES)
        return 0;
    const struct stacklog_frame_size *entry = &thread->frame_sizes[index];
    return entry->seen >= TRUSTED_AFTER ? entry->size : 0;
}

/* An empty entry among the address's, else the one its hash picks: the
 * older address has to be learnt again. */
static struct stacklog_frame_size *
frame_size_new_entry(struct stacklog_thread *thread, uintptr_t pc)
{
    const unsigned home = frame_size_home(pc);
    for (unsigned i = 0; i < PROBES; i++) {
        struct stacklog_frame_size *entry =
            &thread->frame_sizes[(home + i) % FRAME_SIZES];
        if (entry->pc == 0)
            return entry;
    }
    return &thread->frame_sizes[home];
}

/* False when `pc` has been found with two sizes. */
static bool frame_size_learn(struct stacklog_thread *thread, uintptr_t pc,
                             uintptr_t size)
{
    const unsigned index = frame_size_index(thread, pc);
    if (index == FRAME_SIZES) {
        *frame_size_new_entry(thread, pc) =
            (struct stacklog_frame_size){pc, (uint32_t)size, 1};
        return true;
    }
    struct stacklog_frame_size *entry = &thread->frame_sizes[index];
    if (entry->size == 0)
        return false;
    if (entry->size != size) {
        /* For good.  Cached stacks through it may have been checked
         * against a stale copy of a return address. */
        entry->size = 0;
        stacklog_stack_cache_clear(thread);
        return false;
    }
    if (entry->seen < TRUSTED_AFTER)
        entry->seen++;
    return true;
}

bool stacklog_frame_sizes_learn(struct stacklog_thread *thread,
                                void *const *pcs, const uintptr_t *slots,
                                unsigned from, unsigned count)
{
    bool one_size = true;
    for (unsigned i = from; i + 1 < count; i++) {
        /* The search looks no further than a few pages for a caller's
         * slot; anything else is not a slot it found. */
        if (!slots[i] || slots[i + 1] <= slots[i] ||
            slots[i + 1] - slots[i] > UINT32_MAX)
            continue;
        one_size &= frame_size_learn(thread, (uintptr_t)pcs[i],
                                     slots[i + 1] - slots[i]);
    }
    return one_size;
}

void stacklog_frame_sizes_forget(struct stacklog_thread *thread)
{
    memset(thread->frame_sizes, 0, sizeof(thread->frame_sizes));
}
