/*
 * Each thread's logging state: its current event chunk, its counts,
 * the stack it recorded last and its stack cache.  About 800 KiB, most
 * of it the cache, whose pages are touched only as its entries are used;
 * so it is a mapping of its own found through an initial-exec TLS
 * pointer (a thread with a small stack must not pay for it), recycled
 * through a spare list when the thread exits (a pthread key
 * destructor).
 */
#include "config.h"
#include "lock.h"
#include "os_memory.h"
#include "stacklog.h"
#include "stacklog_orders.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

__thread struct stacklog_thread *stacklog_current_thread
    __attribute__((tls_model("initial-exec")));
static __thread bool thread_exited __attribute__((tls_model("initial-exec")));

static pthread_key_t thread_key;
static bool thread_key_ready;
static md_lock_t spare_lock = MD_LOCK_INITIALIZER;
static struct stacklog_thread *spare_threads;
static struct stacklog_thread *live_threads;

#define THREAD_MAPPING_SIZE \
    MD_ALIGN_UP(sizeof(struct stacklog_thread), OS_PAGE_SIZE)

void stacklog_thread_flush_counts(struct stacklog_thread *thread)
{
    struct mdlog_header *header = stacklog_header;
    /* None in a forked child that could not make its log, whose threads
     * still end through here. */
    if (!header)
        return;
    __atomic_fetch_add(&header->event_count, thread->recorded, __ATOMIC_RELAXED);
    __atomic_fetch_add(&header->compacted_count, thread->compacted,
                       __ATOMIC_RELAXED);
    __atomic_fetch_add(&header->unrecorded_count, thread->unrecorded,
                       __ATOMIC_RELAXED);
    thread->recorded = thread->compacted = thread->unrecorded = 0;
}

/* Spare lock held. */
static void unlink_live(struct stacklog_thread *thread)
{
    if (thread->previous_live)
        thread->previous_live->next_live = thread->next_live;
    else
        live_threads = thread->next_live;
    if (thread->next_live)
        thread->next_live->previous_live = thread->previous_live;
}

/* Other threads may still be recording: their counts are added as they
 * stand, and what they add later is lost from the header only. */
void stacklog_thread_flush_all(void)
{
    md_lock(&spare_lock);
    for (struct stacklog_thread *t = live_threads; t; t = t->next_live)
        stacklog_thread_flush_counts(t);
    md_unlock(&spare_lock);
}

static void thread_destroy(void *opaque)
{
    struct stacklog_thread *thread = opaque;
    stacklog_current_thread = NULL;
    thread_exited = true;
    /* A thread given the same id later continues this one's stream in
     * the log: its orders must start above this one's. */
    if (thread->clock && stacklog_header)
        stacklog_order_raise_floor(thread->clock);
    md_lock(&spare_lock);
    stacklog_thread_flush_counts(thread);
    unlink_live(thread);
    thread->next_spare = spare_threads;
    spare_threads = thread;
    md_unlock(&spare_lock);
}

void stacklog_thread_setup(void)
{
    thread_key_ready = pthread_key_create(&thread_key, thread_destroy) == 0;
}

static struct stacklog_thread *thread_create(void)
{
    md_lock(&spare_lock);
    struct stacklog_thread *thread = spare_threads;
    if (thread)
        spare_threads = thread->next_spare;
    md_unlock(&spare_lock);
    if (!thread && !(thread = os_map(THREAD_MAPPING_SIZE)))
        return NULL;
    /* The recycled one's unwound frames need no clearing. */
    memset(thread, 0, offsetof(struct stacklog_thread, frames));
    thread->tid = (uint32_t)syscall(SYS_gettid);
    md_lock(&spare_lock);
    thread->next_live = live_threads;
    if (live_threads)
        live_threads->previous_live = thread;
    live_threads = thread;
    md_unlock(&spare_lock);
    return thread;
}

/* NULL for a thread that allocates in TLS destructors run after ours:
 * its state is gone, and those few events are counted as unrecorded. */
struct stacklog_thread *stacklog_thread_make_current(void)
{
    struct stacklog_thread *thread;
    if (thread_exited || !(thread = thread_create()))
        return NULL;
    stacklog_current_thread = thread;
    if (thread_key_ready)
        pthread_setspecific(thread_key, thread);
    return thread;
}

/* Fork's prepare handler: threads that entered libunwind leave it; the
 * gate in stacklog_capture.c keeps others from entering. */
void stacklog_thread_wait_for_unwinds(void)
{
    md_lock(&spare_lock);
    for (struct stacklog_thread *t = live_threads; t; t = t->next_live)
        while (t != stacklog_current_thread && /* a handler that forks */
               __atomic_load_n(&t->unwinding, __ATOMIC_SEQ_CST))
            sched_yield();
    md_unlock(&spare_lock);
}

/* The other threads' states are left where they are: they belonged to
 * threads the child does not have. */
void stacklog_thread_fork_child(void)
{
    md_lock_init(&spare_lock);
    live_threads = NULL;
    struct stacklog_thread *thread = stacklog_current_thread;
    if (!thread)
        return;
    /* Its chunk is the parent's; its node and stack hang off the
     * parent's thread id. */
    memset(thread, 0, offsetof(struct stacklog_thread, frames));
    thread->tid = (uint32_t)syscall(SYS_gettid);
    live_threads = thread;
}
