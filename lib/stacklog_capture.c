/*
 * Taking a stack: what is not inline in stacklog_capture.h, which says
 * how.
 */
#include "config.h"
#include "stacklog_capture.h"

uintptr_t stacklog_library_start, stacklog_library_end;
bool stacklog_fork_gate_closed;

void stacklog_capture_stop_for_fork(void)
{
    __atomic_store_n(&stacklog_fork_gate_closed, true, __ATOMIC_SEQ_CST);
    stacklog_thread_wait_for_unwinds();
}

void stacklog_capture_resume_after_fork(void)
{
    __atomic_store_n(&stacklog_fork_gate_closed, false, __ATOMIC_RELEASE);
}

void stacklog_capture_setup(void)
{
    stacklog_module_range((uintptr_t)&stacklog_capture_setup,
                          &stacklog_library_start, &stacklog_library_end);
    stacklog_stack_slots_setup();
}

uint32_t stacklog_unique_new_frames(struct stacklog_thread *thread,
                                    unsigned from, unsigned count,
                                    uint32_t parent)
{
    uint64_t parent_hash = from ? thread->hashes[from - 1] : thread->root_hash;
    unsigned found = stacklog_nodes_find(parent, parent_hash,
                                         &thread->frames[from], count - from,
                                         &thread->nodes[from],
                                         &thread->hashes[from]);
    thread->depth = from + found; /* what is known stays reusable */
    return found == count - from ? (count ? thread->nodes[count - 1] : parent)
                                 : 0;
}

