/*
 * The logger itself: what each malloc_logger call becomes in each mode,
 * start-up, exit and fork.  See stacklog.h for the rules.
 */
#include "config.h"
#include "guard_zone.h"
#include "options.h"
#include "report.h"
#include "stacklog.h"
#include "stacklog_capture.h"
#include "stacklog_fast_path.h"
#include "szone.h"

#include <unistd.h>

bool stacklog_malloc_enabled;
bool stacklog_vm_enabled;
bool stacklog_free_enabled;
static bool history_malloc; /* malloc events go to the history */
static bool history_vm;     /* vm events go to the history */
bool stacklog_compact;
/* Stacks are taken once libc is up (the library's constructor). */
static bool capture_ready;
bool stacklog_stacks_only;
__thread bool stacklog_busy __attribute__((tls_model("initial-exec")));

/* Whether this process's log stays after it exits: always, or only for
 * the one process leaks --atExit reads (not for the children it forks). */
static bool keep_wanted(void)
{
    const struct malloc_options *o = &malloc_options;
    return o->stack_logging_keep ||
           o->stack_logging_keep_for_pid == (uint64_t)getpid();
}

void stacklog_start(void)
{
    const struct malloc_options *o = &malloc_options;
    unsigned mode = o->stack_logging;
    if (!mode)
        return;
    bool keep = keep_wanted();
    unsigned flags = (o->stack_logging_no_compact ? MDLOG_FLAG_NO_COMPACT : 0) |
                     (keep ? MDLOG_FLAG_KEEP : 0);
    if (!stacklog_nodes_setup() || !stacklog_modules_setup()) {
        report_error("MallocStackLogging: out of memory; stacks are not recorded");
        return;
    }
    if (!stacklog_file_create(mode, flags))
        return;
    stacklog_thread_setup();
    history_malloc = mode == MDLOG_MODE_FULL || mode == MDLOG_MODE_MALLOC;
    history_vm = mode == MDLOG_MODE_FULL || mode == MDLOG_MODE_VM;
    stacklog_compact = !o->stack_logging_no_compact;
    stacklog_malloc_enabled = mode != MDLOG_MODE_VM;
    stacklog_stacks_only = mode == MDLOG_MODE_LITE;
    stacklog_free_enabled = history_malloc;
    stacklog_vm_enabled = history_vm;
    if (history_malloc)
        __atomic_store_n(&szone_log_tags_released, stacklog_order_tags_released,
                         __ATOMIC_RELAXED);
}

void stacklog_constructor(void)
{
    if (!stacklog_header)
        return;
    stacklog_busy_enter(); /* the module scan's own allocations, if any */
    stacklog_loader_setup();
    stacklog_capture_setup();
    stacklog_busy_leave();
    capture_ready = true;
}

__attribute__((destructor)) static void stacklog_destructor(void)
{
    if (!stacklog_header)
        return;
    stacklog_thread_flush_all();
    stacklog_file_exit();
}

/* The capture and the two callers of this are inlined into the logger,
 * whose frame the stack is unwound from (stacklog_capture.h). */
static MD_ALWAYS_INLINE uint32_t
take_stack(struct stacklog_thread *thread, uintptr_t return_slot)
{
    return MD_LIKELY(capture_ready) ? stacklog_capture(thread, return_slot)
                                    : 0;
}

/* The tag of the block the zone has just handed out at `block`, NULL
 * when the zone keeps none. */
static struct szone_log_tag *handout_tag(malloc_zone_t *zone, uintptr_t block)
{
    return szone_is_szone(zone)
               ? szone_log_tag_of_handout(szone_from_zone(zone), (const void *)block)
               : NULL;
}

struct szone_log_tag *stacklog_block_set_stack(malloc_zone_t *zone,
                                               uintptr_t block, uint32_t stack)
{
    struct szone_log_tag *tag = handout_tag(zone, block);
    if (tag)
        __atomic_store_n(&tag->stack_id, stack, __ATOMIC_RELAXED);
    else if (guard_zone_is(zone))
        guard_zone_set_stack_id(zone, (const void *)block, stack);
    return tag;
}

struct szone_log_tag *stacklog_block_tag(malloc_zone_t *zone, uintptr_t block)
{
    return szone_is_szone(zone)
               ? szone_log_tag_of(szone_from_zone(zone), (const void *)block)
               : NULL;
}

uint32_t stacklog_block_stack(malloc_zone_t *zone, uintptr_t block)
{
    if (szone_is_szone(zone))
        return szone_stack_id(szone_from_zone(zone), (const void *)block);
    if (guard_zone_is(zone))
        return guard_zone_stack_id(zone, (const void *)block);
    return 0;
}

static MD_ALWAYS_INLINE void log_free(struct stacklog_thread *thread,
                                      malloc_zone_t *zone, uintptr_t block,
                                      uintptr_t return_slot)
{
    if (!history_malloc)
        return;
    if (stacklog_compact && stacklog_compact_free(thread, zone, block))
        return;
    uint32_t stack = take_stack(thread, return_slot);
    stacklog_event_write(thread, MDLOG_EVENT_FREE, block, 0,
                         stacklog_order_of_tag(thread, stacklog_block_tag(zone, block)),
                         stack);
}

static MD_ALWAYS_INLINE void
log_allocation(struct stacklog_thread *thread, uint32_t type,
               malloc_zone_t *zone, uintptr_t arg2, uintptr_t arg3,
               uintptr_t result, uintptr_t return_slot)
{
    uint32_t stack = take_stack(thread, return_slot);
    struct szone_log_tag *tag = stacklog_block_set_stack(zone, result, stack);
    if (!history_malloc)
        return;
    if (type & MALLOC_LOG_TYPE_DEALLOCATE) { /* realloc(arg2, arg3) */
        stacklog_realloc_events(thread, arg2, arg3, result, tag, stack);
        return;
    }
    unsigned cleared = type & MALLOC_LOG_TYPE_CLEARED ? MDLOG_EVENT_CLEARED : 0;
    stacklog_event_write(thread, MDLOG_EVENT_ALLOC | cleared, result, arg2,
                         stacklog_order_of_tag(thread, tag), stack);
}

static void count_unrecorded(void)
{
    __atomic_fetch_add(&stacklog_header->unrecorded_count, 1, __ATOMIC_RELAXED);
}

/* A call made while the thread is already in the logger, or with no
 * state: the block gets no stack, and the event is counted. */
static void log_unrecorded(uint32_t type, malloc_zone_t *zone, uintptr_t result)
{
    if ((type & MALLOC_LOG_TYPE_ALLOCATE) && result)
        stacklog_block_set_stack(zone, result, 0);
    if (history_malloc)
        count_unrecorded();
}

void stacklog_logger(uint32_t type, uintptr_t zone, uintptr_t arg2,
                     uintptr_t arg3, uintptr_t result, uintptr_t return_slot)
{
    if (MD_UNLIKELY(stacklog_is_busy())) {
        log_unrecorded(type, (malloc_zone_t *)zone, result);
        return;
    }
    /* Busy before the thread's state is made, which takes a lock that a
     * signal handler allocating meanwhile would wait for forever. */
    stacklog_busy_enter();
    struct stacklog_thread *thread = stacklog_thread_current();
    if (!thread)
        log_unrecorded(type, (malloc_zone_t *)zone, result);
    else if (!(type & MALLOC_LOG_TYPE_ALLOCATE))
        log_free(thread, (malloc_zone_t *)zone, arg2, return_slot);
    else if (result)
        log_allocation(thread, type, (malloc_zone_t *)zone, arg2, arg3, result,
                       return_slot);
    stacklog_busy_leave();
}

void stacklog_realloc_begin_slow(malloc_zone_t *zone, uintptr_t old)
{
    struct stacklog_thread *thread;
    if (!history_malloc || stacklog_is_busy())
        return;
    stacklog_busy_enter(); /* as in stacklog_logger */
    if ((thread = stacklog_thread_current()))
        thread->realloc_order =
            stacklog_order_of_tag(thread, stacklog_block_tag(zone, old));
    stacklog_busy_leave();
}

uint64_t stacklog_vm_begin(void)
{
    struct stacklog_thread *thread;
    uint64_t order = 0;
    if (!history_vm || stacklog_is_busy())
        return 0;
    stacklog_busy_enter(); /* as in stacklog_logger */
    if ((thread = stacklog_thread_current()))
        order = stacklog_order_shared(thread);
    stacklog_busy_leave();
    return order;
}

void stacklog_vm_event(unsigned type, uintptr_t address, size_t size,
                       uint64_t order, uintptr_t return_slot)
{
    struct stacklog_thread *thread;
    if (!history_vm)
        return;
    if (stacklog_is_busy()) {
        /* A signal handler's mapping is counted as unrecorded; the
         * unwinder's own (libunwind maps its memory pools) are not the
         * program's, and go uncounted.  A thread whose state is being
         * made is not unwinding. */
        thread = stacklog_current_thread;
        if (!thread || !__atomic_load_n(&thread->unwinding, __ATOMIC_RELAXED))
            count_unrecorded();
        return;
    }
    stacklog_busy_enter();
    if ((thread = stacklog_thread_current()))
        stacklog_event_write(thread, type, address, size,
                             order ? stacklog_order_taken_before(thread, order)
                                   : stacklog_order_shared(thread),
                             take_stack(thread, return_slot));
    stacklog_busy_leave();
}

/* Fork: the child must not find a lock of this layer held by a thread
 * that is not there, nor write to its parent's log. */
void stacklog_force_lock(void)
{
    if (!stacklog_header)
        return;
    stacklog_loader_stop_for_fork();
    stacklog_capture_stop_for_fork();
    stacklog_node_index_force_lock();
    stacklog_modules_force_lock();
    stacklog_nodes_force_lock();
    stacklog_file_force_lock();
}

void stacklog_force_unlock(void)
{
    if (!stacklog_header)
        return;
    stacklog_file_force_unlock();
    stacklog_nodes_force_unlock();
    stacklog_modules_force_unlock();
    stacklog_node_index_force_unlock();
    stacklog_capture_resume_after_fork();
    stacklog_loader_resume_after_fork();
}

void stacklog_fork_child(void)
{
    if (!stacklog_header)
        return;
    stacklog_loader_fork_child();
    /* The loader's lock may be held for good (by a thread the child does
     * not have, or in a callback the child leaves): unwinding or scanning
     * the modules could wait for it forever. */
    if (stacklog_loader_was_busy())
        stacklog_say("the process forked while a thread was in the dynamic "
                     "loader: this child records no stacks", NULL, NULL);
    else
        stacklog_capture_resume_after_fork();
    stacklog_modules_reinit_lock();
    stacklog_nodes_reinit_lock();
    stacklog_node_index_fork_child();
    stacklog_thread_fork_child();
    if (!stacklog_file_fork_child(keep_wanted())) {
        stacklog_malloc_enabled = stacklog_vm_enabled = false;
        stacklog_free_enabled = stacklog_stacks_only = false;
        history_malloc = history_vm = false;
        szone_log_tags_released = NULL;
        stacklog_header = NULL;
        return;
    }
    stacklog_nodes_fork_child();
    stacklog_modules_fork_child();
}
