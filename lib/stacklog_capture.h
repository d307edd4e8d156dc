/*
 * Taking a stack, inline (stacklog_capture.c for what is not): libunwind's
 * unw_backtrace (local unwinding, its cached fast path), the library's
 * own frames dropped from the inside, then the frames uniqued from the
 * outside in.  Consecutive stacks of a thread
 * share most of their outer frames, so the thread keeps its previous
 * stack with the node of every frame and looks up only the frames that
 * changed.  A stack taken again from the same place is found in the
 * thread's stack cache without unwinding (stacklog_stack_cache.c); any
 * other has only its inner frames unwound when they lead back into the
 * previous stack (stacklog_stack_join.c).
 */
#ifndef MALLOCDEBUG_STACKLOG_CAPTURE_H
#define MALLOCDEBUG_STACKLOG_CAPTURE_H

#include "stacklog.h"
#include "stacklog_stack_cache.h"

#define UNW_LOCAL_ONLY
#include <libunwind.h>

/* The library's code: frames in it are not the program's. */
extern uintptr_t stacklog_library_start, stacklog_library_end;

/* libunwind takes locks of its own (its cache of unwind tables) that no
 * fork handler of ours can take or reset: a child forked while another
 * thread held one would hang in its first unwind.  So a fork closes this
 * gate and waits for the threads inside libunwind to come out; a thread
 * that finds the gate closed takes no stack rather than wait, since it
 * may hold the dynamic loader's lock, which an unwinding thread may be
 * waiting for. */
extern bool stacklog_fork_gate_closed;

static MD_ALWAYS_INLINE bool
stacklog_unwind_enter(struct stacklog_thread *thread)
{
    if (MD_UNLIKELY(stacklog_loader_depth))
        return false; /* inside a call into the loader: stacklog.h */
    __atomic_store_n(&thread->unwinding, true, __ATOMIC_SEQ_CST);
    if (MD_LIKELY(!__atomic_load_n(&stacklog_fork_gate_closed,
                                   __ATOMIC_SEQ_CST)))
        return true;
    __atomic_store_n(&thread->unwinding, false, __ATOMIC_RELEASE);
    return false;
}

static MD_ALWAYS_INLINE void
stacklog_unwind_leave(struct stacklog_thread *thread)
{
    __atomic_store_n(&thread->unwinding, false, __ATOMIC_RELEASE);
}

static MD_ALWAYS_INLINE bool stacklog_in_library(uintptr_t pc)
{
    return pc - stacklog_library_start <
           stacklog_library_end - stacklog_library_start;
}

/* The thread's node: every stack of the thread grows from it. */
static MD_ALWAYS_INLINE uint32_t
stacklog_thread_root(struct stacklog_thread *thread)
{
    if (MD_UNLIKELY(thread->root == 0)) {
        const uintptr_t tid = thread->tid;
        stacklog_nodes_find(0, 0, &tid, 1, &thread->root, &thread->root_hash);
        thread->depth = 0;
    }
    return thread->root;
}

/* Nodes for frames[from..count) (outermost first), the one before
 * `from` being `parent`; the innermost node, or 0. */
uint32_t stacklog_unique_new_frames(struct stacklog_thread *thread,
                                    unsigned from, unsigned count,
                                    uint32_t parent);

/* The thread's stack into thread->unwound, innermost first: its inner
 * frames joined to the previous stack's outer ones when they can be,
 * `*kept` of them, else all of it, unwound from the capture's frame,
 * whose address is `cfa`. */
static MD_ALWAYS_INLINE int stacklog_unwind(struct stacklog_thread *thread,
                                            uintptr_t cfa,
                                            uintptr_t return_slot,
                                            unsigned *kept)
{
    void *inner[STACK_JOIN_INNER_FRAMES];
    if (return_slot) {
        unsigned walked = stacklog_stack_walk_join(thread, cfa, return_slot,
                                                   kept);
        if (walked)
            return (int)walked;
    }
    int count = unw_backtrace(inner, STACK_JOIN_INNER_FRAMES);
    *kept = 0;
    if (count == STACK_JOIN_INNER_FRAMES) {
        unsigned joined = stacklog_stack_join(thread, cfa, return_slot, inner,
                                              kept);
        if (joined)
            return (int)joined;
        count = unw_backtrace(thread->unwound,
                              (int)(sizeof(thread->unwound) /
                                    sizeof(thread->unwound[0])));
    } else {
        for (int i = 0; i < count; i++)
            thread->unwound[i] = inner[i];
    }
    stacklog_stack_join_prepare(thread, cfa, return_slot,
                                (unsigned)(count > 0 ? count : 0));
    return count;
}

/* The calling thread's stack id; 0 when it cannot be taken.
 * `return_slot`, when not 0, is where the return address into the
 * program of the function the program called sits
 * (STACKLOG_RETURN_SLOT): the stack cache is looked up there.  Always
 * inlined, into the logger (stacklog.c): unwinding starts from the frame
 * the capture is in, at `cfa`, and a frame of its own would be one more
 * for libunwind to step through at every capture. */
static MD_ALWAYS_INLINE uint32_t
stacklog_capture(struct stacklog_thread *thread, uintptr_t return_slot)
{
    uint32_t cached;
    stacklog_stack_slots_catch_up(thread);
    if (return_slot && thread->cache_missed_slot != return_slot &&
        (cached = stacklog_stack_cache_find(thread, return_slot)))
        return cached;
    thread->cache_missed_slot = 0;
    const uintptr_t cfa = (uintptr_t)__builtin_dwarf_cfa();
    uint32_t root = stacklog_thread_root(thread);
    if (!root || !stacklog_unwind_enter(thread))
        return 0;
    void **unwound = thread->unwound;
    unsigned kept;
    int total = stacklog_unwind(thread, cfa, return_slot, &kept);
    stacklog_unwind_leave(thread);
    int inner = 0;
    while (inner < total && stacklog_in_library((uintptr_t)unwound[inner]))
        inner++;
    unsigned count = (unsigned)(total - inner);
    const bool truncated = count > MDLOG_MAX_FRAMES;
    if (truncated)
        count = MDLOG_MAX_FRAMES; /* the outermost frames are dropped */
    /* Outermost first; the part equal to the previous stack is kept.
     * The outer frames a join kept are the previous stack's, as its own
     * were, when neither lost any to the frame limit. */
    const uint64_t unloads = stacklog_modules_unloaded();
    if (MD_UNLIKELY(thread->module_unloads != unloads)) {
        thread->module_unloads = unloads;
        thread->depth = 0;
        stacklog_frame_sizes_forget(thread);
    }
    const unsigned previous = thread->depth;
    unsigned same = !truncated && !thread->frames_truncated &&
                            kept <= previous && kept <= count
                        ? kept
                        : 0;
    thread->frames_truncated = truncated;
    for (unsigned i = same; i < count; i++) {
        uintptr_t pc = (uintptr_t)unwound[inner + count - 1 - i];
        if (same == i && i < previous && thread->frames[i] == pc)
            same++;
        else
            thread->frames[i] = pc;
    }
    uint32_t stack;
    if (same == count && count == previous)
        stack = count ? thread->nodes[count - 1] : root;
    else
        stack = stacklog_unique_new_frames(
            thread, same, count, same ? thread->nodes[same - 1] : root);
    stacklog_stack_cache_store(thread, (unsigned)inner, stack);
    return stack;
}

#endif
