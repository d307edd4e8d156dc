/*
 * Calls into the dynamic loader: the program's dlclose and
 * dl_iterate_phdr, exported here, and this layer's own walks of the
 * module list.
 *
 * dl_iterate_phdr holds a lock of the loader's while its callback runs,
 * and dlopen and dlclose take it too; the C library does not reset it in
 * a forked child.  A child forked while another thread held it would
 * hang at its first unwind (libunwind looks up unwind tables with
 * dl_iterate_phdr) or module scan.  So every such call passes a gate
 * that a fork closes: the program's calls arriving meanwhile wait for
 * the fork to end (they hold none of this library's locks, so the fork
 * does not wait for them), this layer's walks are skipped, and when a
 * call was in flight as the gate closed the child takes no stacks, and
 * says so, rather than risk the hang.  (Threads unwinding have a gate
 * of their own, stacklog_capture.c; libunwind's walks, made inside a
 * capture, pass only that one.)
 *
 * Inside the program's calls the thread takes no stacks
 * (stacklog_loader_depth): libunwind holds a lock of its own while it
 * walks the modules, so a thread unwinding while it holds the loader's
 * lock could wait for one that waits for it.  The C library frees
 * memory inside dlclose; a program's callback may allocate.
 *
 * dlopen is not exported: the C library finds the library search path
 * of its caller, which a wrapper would replace.  A child tells that a
 * dlopen was under way from the loader's word to debuggers (r_state in
 * _r_debug), which some versions of the C library set before dlopen
 * takes the lock; others (2.36) take it to add the new module before
 * they set r_state, so the child also looks at the lock itself, found
 * at setup as the one mutex of the loader's globals that a
 * dl_iterate_phdr callback holds (find_write_lock): a copy held by
 * another thread is a dlopen that was adding its module at the fork.
 * The C++ runtime's unwinder finds unwind tables with _dl_find_object,
 * which takes no lock, where the C library has it (glibc 2.35 and
 * later).
 */
#include "config.h"
#include "stacklog.h"
#include "stacklog_fast_path.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef int (*iterate_callback)(struct dl_phdr_info *, size_t, void *);
typedef int (*iterate_function)(iterate_callback, void *);
typedef int (*close_function)(void *);

/* The C library's dl_iterate_phdr and dlclose, once found. */
static void *real_dl_iterate_phdr, *real_dlclose;

/* Calls under way, and the gate.  In a child forked while one was under
 * way, this layer's walks stay forbidden. */
static unsigned loader_calls;
static bool loader_gate_closed, loader_busy_at_fork, loader_walks_forbidden;
__thread unsigned stacklog_loader_depth __attribute__((tls_model("initial-exec")));

/* The C library's function `name`, looked up the first time.  The
 * library's constructor looks both up before any stack is taken:
 * looking a symbol up takes the loader's lock, which must not happen
 * inside a capture.  NULL when no object after this library has it. */
static void *real_function(void **found, const char *name)
{
    void *function = __atomic_load_n(found, __ATOMIC_ACQUIRE);
    if (MD_UNLIKELY(!function)) {
        function = dlsym(RTLD_NEXT, name);
        __atomic_store_n(found, function, __ATOMIC_RELEASE);
    }
    return function;
}

/* The loader's lock that dl_iterate_phdr holds while its callback runs,
 * or NULL when it was not found. */
static const pthread_mutex_t *loader_write_lock;

struct lock_search {
    const char *start, *end;
    pid_t self;
    const pthread_mutex_t *found;
    unsigned matches;
};

static bool held_by(const pthread_mutex_t *mutex, pid_t thread)
{
    return mutex->__data.__owner == thread && mutex->__data.__count >= 1;
}

/* Inside the callback, with the lock held: the mutexes of the loader's
 * globals this thread holds.  Called for the first module only. */
static int find_held_mutex(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info, (void)size;
    struct lock_search *search = data;
    for (const char *at = search->start;
         at + sizeof(pthread_mutex_t) <= search->end;
         at += _Alignof(pthread_mutex_t))
        if (held_by((const pthread_mutex_t *)at, search->self)) {
            search->found = (const pthread_mutex_t *)at;
            search->matches++;
        }
    return 1;
}

/* The loader's globals (_rtld_global, the C library's private symbol)
 * are searched for a mutex held inside a dl_iterate_phdr callback and
 * not outside it: exactly one, or none is trusted. */
static void find_write_lock(iterate_function iterate)
{
    Dl_info info;
    const ElfW(Sym) *symbol = NULL;
    void *globals = dlsym(RTLD_DEFAULT, "_rtld_global");
    if (!iterate || !globals ||
        !dladdr1(globals, &info, (void **)&symbol, RTLD_DL_SYMENT) || !symbol)
        return;
    struct lock_search search = {globals, (const char *)globals + symbol->st_size,
                                 (pid_t)syscall(SYS_gettid), NULL, 0};
    iterate(find_held_mutex, &search);
    if (search.matches == 1 && !held_by(search.found, search.self))
        loader_write_lock = search.found;
}

void stacklog_loader_setup(void)
{
    find_write_lock((iterate_function)real_function(&real_dl_iterate_phdr,
                                                    "dl_iterate_phdr"));
    real_function(&real_dlclose, "dlclose");
}

/* False, counting nothing, when a fork closed the gate. */
static bool gate_enter(void)
{
    __atomic_fetch_add(&loader_calls, 1, __ATOMIC_SEQ_CST);
    if (MD_LIKELY(!__atomic_load_n(&loader_gate_closed, __ATOMIC_SEQ_CST)))
        return true;
    __atomic_fetch_sub(&loader_calls, 1, __ATOMIC_RELEASE);
    return false;
}

static void gate_leave(void)
{
    __atomic_fetch_sub(&loader_calls, 1, __ATOMIC_RELEASE);
}

/* The program's calls wait for the gate to open.  One made inside
 * another (a callback's, a destructor's that dlclose runs) is counted
 * with it. */
static void program_call_enter(void)
{
    if (stacklog_loader_depth++ > 0)
        return;
    while (!gate_enter())
        while (__atomic_load_n(&loader_gate_closed, __ATOMIC_ACQUIRE))
            sched_yield();
}

static void program_call_leave(void)
{
    if (--stacklog_loader_depth == 0)
        gate_leave();
}

bool stacklog_loader_iterate(iterate_callback callback, void *data)
{
    /* Found in the constructor, or not at all: no lookup here. */
    iterate_function iterate = (iterate_function)__atomic_load_n(
        &real_dl_iterate_phdr, __ATOMIC_ACQUIRE);
    if (!iterate || loader_walks_forbidden || !gate_enter())
        return false;
    iterate(callback, data);
    gate_leave();
    return true;
}

MD_EXPORT int dl_iterate_phdr(iterate_callback callback, void *data)
{
    iterate_function iterate = (iterate_function)real_function(
        &real_dl_iterate_phdr, "dl_iterate_phdr");
    if (MD_UNLIKELY(!iterate))
        return 0; /* no loader after this library: no module to list */
    /* libunwind's walks inside a capture, and this layer's own. */
    if (!stacklog_header || stacklog_is_busy())
        return iterate(callback, data);
    program_call_enter();
    int result = iterate(callback, data);
    program_call_leave();
    return result;
}

MD_EXPORT int dlclose(void *handle)
{
    close_function close = (close_function)real_function(&real_dlclose,
                                                         "dlclose");
    if (MD_UNLIKELY(!close))
        return -1; /* no dlclose after this library: none to call */
    program_call_enter();
    int result = close(handle);
    program_call_leave();
    /* Busy, as the logger is, around the scan's locks: a signal
     * handler's allocation meanwhile must not wait for them. */
    if (result == 0 && stacklog_header && !stacklog_is_busy()) {
        stacklog_busy_enter();
        stacklog_modules_rescan();
        stacklog_busy_leave();
    }
    return result;
}

void stacklog_loader_stop_for_fork(void)
{
    __atomic_store_n(&loader_gate_closed, true, __ATOMIC_SEQ_CST);
    /* A destructor that forks from within its dlclose holds only locks
     * the C library resets in the child.  (A callback that forks holds
     * the lock dl_iterate_phdr took, which the child can never release:
     * its thread has another id.  stacklog_loader_was_busy sees that.) */
    loader_busy_at_fork = __atomic_load_n(&loader_calls, __ATOMIC_SEQ_CST) >
                          (stacklog_loader_depth ? 1u : 0u);
}

void stacklog_loader_resume_after_fork(void)
{
    __atomic_store_n(&loader_gate_closed, false, __ATOMIC_RELEASE);
}

/* In the child, the loader's own word too: dlopen and dlclose mark the
 * list of modules as changing (r_state) before they take the lock, and
 * dlopen is not gated. */
bool stacklog_loader_was_busy(void)
{
    if (loader_busy_at_fork || _r_debug.r_state != RT_CONSISTENT)
        return true;
    /* Held by anyone, even the forking thread inside a callback: the
     * child's thread has another id, so the unlock on the way out of the
     * callback fails and the lock stays held.  The lock word is taken
     * before the owner is written, and the owner cleared before it is
     * released: either one set means held. */
    const pthread_mutex_t *lock = loader_write_lock;
    return lock && (lock->__data.__lock != 0 || lock->__data.__owner != 0);
}

/* The calls under way but the thread's own were the parent's other
 * threads'. */
void stacklog_loader_fork_child(void)
{
    loader_calls = stacklog_loader_depth ? 1 : 0;
    loader_walks_forbidden = stacklog_loader_was_busy();
    stacklog_loader_resume_after_fork();
}
