/*
 * Joining the previous stack: a capture that the stack cache cannot
 * answer unwinds only the innermost STACK_JOIN_INNER_FRAMES frames.
 * Consecutive stacks of a thread mostly differ in a few inner frames
 * (a recursion going one level down or up, a loop calling one function
 * then another), while unwinding the 20 or 50 frames outside them costs
 * most of a capture on a deep stack.
 *
 * The previous stack is kept with where each of its return addresses
 * sits (stacklog_stack_slots.c).  When the outermost of the new inner
 * frames sits in one of those slots, and that slot and every slot
 * outside it still hold the previous return addresses, an unwinder
 * going on from there would read exactly what it read before: the
 * previous stack's outer frames are the new stack's.  Otherwise the
 * whole stack is unwound.
 *
 * Before unwinding anything, the capture tries to walk to the previous
 * stack instead (stacklog_stack_walk_join): from the return address
 * into the program, each frame's size, learnt from the slots found
 * before (stacklog_frame_sizes.c), leads to its caller's return address,
 * until one sits in a slot of the previous stack and the join's checks
 * hold.  A recursion's new frames are known ones, taken at other depths:
 * in `tree` (bench/workload.c), where no stack is ever taken twice, the
 * walk answered all but about a thousand of its 2.53 M captures.
 */
#include "config.h"
#include "stacklog.h"
#include "stacklog_capture.h"

#include <string.h>

/* A thread whose stacks never join pays a slot search at each capture
 * for nothing: after this many captures in a row without a join, only
 * one in PREPARE_INTERVAL prepares for the next, unless the stack cache
 * wants the slots to remember this stack. */
#define JOIN_MISSES_BEFORE_SPARING 64
#define PREPARE_INTERVAL 64

void stacklog_stack_join_prepare(struct stacklog_thread *thread, uintptr_t cfa,
                                 uintptr_t return_slot, unsigned total)
{
    uint32_t misses = thread->join_misses++;
    const bool previous_known =
        thread->unwound_slots_known &&
        thread->unwound_generation == stacklog_stack_slots_generation();
    thread->unwound_slots_known = false;
    if (misses >= JOIN_MISSES_BEFORE_SPARING &&
        misses % PREPARE_INTERVAL != 0 &&
        !stacklog_stack_cache_will_store(thread))
        return;
    /* A stack that filled the buffer may go on outside it: joined to,
     * it would lose its outer frames to a shallower stack's length. */
    if (total >= sizeof(thread->unwound) / sizeof(thread->unwound[0]))
        return;
    /* The stack outside the frames that changed is most often the
     * previous one: its slots spare the search most of the stack. */
    struct stacklog_known_slots previous = {thread->previous_slot, 0, false};
    if (previous_known) {
        previous.count = thread->unwound_total;
        memcpy(thread->previous_slot, thread->unwound_slot,
               previous.count * sizeof(thread->previous_slot[0]));
    }
    thread->unwound_total = total;
    thread->unwound_generation = stacklog_stack_slots_generation();
    thread->unwound_slots_known = stacklog_stack_slots_find(
        thread, cfa, return_slot, thread->unwound, total, thread->unwound_slot,
        previous_known ? &previous : NULL);
    /* A stack through a frame whose size changes is neither joined to
     * nor cached: its slots may be stale copies. */
    if (thread->unwound_slots_known)
        thread->unwound_slots_known = stacklog_frame_sizes_learn(
            thread, thread->unwound, thread->unwound_slot, 1, total);
}

/* The first of the previous stack's frames whose slot is at or outside
 * `slot`: the frames are in increasing order of their slots, those of
 * the library inside the program's with slot 0. */
static unsigned previous_frame_from(const struct stacklog_thread *thread,
                                    uintptr_t slot)
{
    unsigned low = 1, high = thread->unwound_total;
    while (low < high) {
        unsigned middle = low + (high - low) / 2;
        if (thread->unwound_slot[middle] < slot)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

/* The frame of the previous stack whose slot is `slot`, or 0. */
static unsigned previous_frame_at(const struct stacklog_thread *thread,
                                  uintptr_t slot)
{
    unsigned low = previous_frame_from(thread, slot);
    return low < thread->unwound_total && thread->unwound_slot[low] == slot
               ? low
               : 0;
}

static bool previous_frames_unchanged(const struct stacklog_thread *thread,
                                      unsigned from)
{
    for (unsigned i = from; i < thread->unwound_total; i++)
        if (*(const uintptr_t *)thread->unwound_slot[i] !=
            (uintptr_t)thread->unwound[i])
            return false;
    return true;
}

/* thread->unwound becomes inner[0..count) followed by the previous
 * stack's frames outside `joined`, with their slots. */
static unsigned join_frames(struct stacklog_thread *thread, void *const *inner,
                            const uintptr_t *slots, unsigned count,
                            unsigned joined)
{
    unsigned outer = thread->unwound_total - joined - 1;
    if (count + outer > sizeof(thread->unwound) / sizeof(thread->unwound[0]))
        return 0;
    memmove(&thread->unwound[count], &thread->unwound[joined + 1],
            outer * sizeof(thread->unwound[0]));
    memmove(&thread->unwound_slot[count], &thread->unwound_slot[joined + 1],
            outer * sizeof(thread->unwound_slot[0]));
    memcpy(thread->unwound, inner, count * sizeof(thread->unwound[0]));
    memcpy(&thread->unwound_slot[1], &slots[1],
           (count - 1) * sizeof(thread->unwound_slot[0]));
    thread->unwound_total = count + outer;
    return count + outer;
}

unsigned stacklog_stack_join(struct stacklog_thread *thread, uintptr_t cfa,
                             uintptr_t return_slot, void *const *inner,
                             unsigned *kept)
{
    const unsigned count = STACK_JOIN_INNER_FRAMES;
    uintptr_t slots[STACK_JOIN_INNER_FRAMES];
    /* Where the window meets the previous stack, its slots are taken. */
    const struct stacklog_known_slots previous = {thread->unwound_slot,
                                                  thread->unwound_total, true};
    if (!thread->unwound_slots_known ||
        thread->unwound_generation != stacklog_stack_slots_generation() ||
        !stacklog_stack_slots_find(thread, cfa, return_slot, inner, count,
                                   slots, &previous))
        return 0;
    /* The return address must be the same too: the unwinder's next step
     * depends on the code it returns to. */
    unsigned joined = previous_frame_at(thread, slots[count - 1]);
    if (!joined || thread->unwound[joined] != inner[count - 1] ||
        !previous_frames_unchanged(thread, joined + 1) ||
        !stacklog_frame_sizes_learn(thread, inner, slots, 1, count))
        return 0;
    unsigned total = join_frames(thread, inner, slots, count, joined);
    if (!total)
        return 0;
    thread->join_misses = 0;
    *kept = total - count;
    return total;
}

/* Frames the walk steps through before it gives up. */
#define WALK_FRAMES 16

/* thread->unwound becomes a frame standing for the library's, then
 * pcs[0..count) at slots[0..count), then the previous stack's frames
 * from `joined` outwards, with their slots. */
static unsigned walk_frames(struct stacklog_thread *thread,
                            const uintptr_t *pcs, const uintptr_t *slots,
                            unsigned count, unsigned joined)
{
    const unsigned outer = thread->unwound_total - joined;
    const unsigned total = 1 + count + outer;
    if (total > sizeof(thread->unwound) / sizeof(thread->unwound[0]))
        return 0;
    memmove(&thread->unwound[1 + count], &thread->unwound[joined],
            outer * sizeof(thread->unwound[0]));
    memmove(&thread->unwound_slot[1 + count], &thread->unwound_slot[joined],
            outer * sizeof(thread->unwound_slot[0]));
    /* The capture counts the frames inside the program's as the
     * library's, and looks no further at them. */
    thread->unwound[0] = (void *)stacklog_library_start;
    thread->unwound_slot[0] = 0;
    for (unsigned i = 0; i < count; i++) {
        thread->unwound[1 + i] = (void *)pcs[i];
        thread->unwound_slot[1 + i] = slots[i];
    }
    thread->unwound_total = total;
    return total;
}

unsigned stacklog_stack_walk_join(struct stacklog_thread *thread,
                                  uintptr_t cfa, uintptr_t return_slot,
                                  unsigned *kept)
{
    const unsigned total = thread->unwound_total;
    /* Every slot the walk reads lies between the return address into the
     * program and the previous stack's outermost one: on another stack
     * altogether, that span may not be readable. */
    if (!thread->unwound_slots_known || total < 2 ||
        thread->unwound_generation != stacklog_stack_slots_generation() ||
        thread->module_unloads != stacklog_modules_unloaded() ||
        return_slot > thread->unwound_slot[total - 1] ||
        !stacklog_stack_slots_readable(thread, cfa,
                                       thread->unwound_slot[total - 1]))
        return 0;
    uintptr_t pcs[WALK_FRAMES], slots[WALK_FRAMES];
    uintptr_t slot = return_slot;
    unsigned joined = previous_frame_from(thread, slot);
    for (unsigned count = 0;; count++) {
        while (joined < total && thread->unwound_slot[joined] < slot)
            joined++;
        if (joined == total)
            return 0; /* past the previous stack */
        const uintptr_t pc = *(const uintptr_t *)slot;
        if (thread->unwound_slot[joined] == slot &&
            (uintptr_t)thread->unwound[joined] == pc &&
            previous_frames_unchanged(thread, joined + 1)) {
            unsigned walked = walk_frames(thread, pcs, slots, count, joined);
            if (!walked)
                return 0;
            thread->join_misses = 0;
            *kept = walked - 1 - count;
            return walked;
        }
        const uint32_t size = stacklog_frame_size(thread, pc);
        if (count == WALK_FRAMES || !size)
            return 0;
        pcs[count] = pc;
        slots[count] = slot;
        slot += size;
    }
}
