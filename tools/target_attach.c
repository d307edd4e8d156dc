/*
 * Opening a target, and stopping and resuming its threads with ptrace.
 *
 * Threads are seized (PTRACE_SEIZE) rather than attached, so stopping
 * them sends the process no signal, and interrupted (PTRACE_INTERRUPT)
 * until every one has stopped.  When one of them stands in the allocator
 * or a zone lock is held, all resume for a moment and are stopped again.
 * A signal a thread was about to take while stopped is handed back when
 * it resumes.
 *
 * A process stopped by job control reports each thread's stop as a
 * group-stop, and detaching leaves such a thread stopped; resuming it for
 * another try would set the process running, so a stopped process is
 * taken as it is, or refused when it stopped inside the allocator.
 */
#include "config.h"
#include "target.h"
#include "target_permission.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

/* The target a signal that ends the tool must resume. */
static struct target *volatile stopped_target;

static void resume_thread(struct target_thread *thread)
{
    ptrace(PTRACE_DETACH, thread->tid, NULL,
           (void *)(intptr_t)thread->pending_signal);
    thread->pending_signal = 0;
}

/* Only stopped threads can be let go now; the running ones the kernel
 * lets go when this process dies, keeping any signal they stop for. */
static void resume_and_die(int signo)
{
    struct target *target = stopped_target;
    if (target && target->stopped)
        for (size_t i = 0; i < target->thread_count; i++)
            if (target->threads[i].stopped)
                resume_thread(&target->threads[i]);
    signal(signo, SIG_DFL);
    raise(signo);
}

static void catch_ending_signals(void)
{
    static const int ending[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};
    struct sigaction action = {.sa_handler = resume_and_die};
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < sizeof(ending) / sizeof(ending[0]); i++)
        sigaction(ending[i], &action, NULL);
}

/* A number from /proc/PID/status ("Threads:"), or -1. */
static long status_field(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *file = fopen(path, "r");
    long value = -1;
    size_t length = strlen(field);
    while (file && fgets(line, sizeof(line), file))
        if (strncmp(line, field, length) == 0) {
            value = strtol(line + length, NULL, 10);
            break;
        }
    if (file)
        fclose(file);
    return value;
}

/* Whether thread `tid` is gone or exiting (a zombie, or dead). */
static bool thread_exiting(pid_t pid, pid_t tid)
{
    char state = target_thread_state(pid, tid);
    return state == 'Z' || state == 'X';
}

/* The kernel gives a process's memory and mappings through its main
 * thread: once that has ended with other threads running on, nothing of
 * the process can be read. */
static bool main_thread_ended(pid_t pid)
{
    return thread_exiting(pid, pid) && status_field(pid, "Threads:") > 1;
}

static void say_main_thread_ended(pid_t pid, char *message, size_t message_size)
{
    snprintf(message, message_size,
             "the main thread of process %d has ended (pthread_exit) while "
             "its other threads run on: the kernel no longer gives its memory "
             "by its process id, so it cannot be examined", (int)pid);
}

int target_open(struct target *target, pid_t pid, char *message,
                size_t message_size)
{
    memset(target, 0, sizeof(*target));
    target->pid = pid;
    if (kill(pid, 0) != 0 && errno == ESRCH) {
        snprintf(message, message_size, "no process %d", (int)pid);
        return -1;
    }
    if (main_thread_ended(pid)) {
        say_main_thread_ended(pid, message, message_size);
        return -1;
    }
    if (!target_process_name(pid, target->name, sizeof(target->name)))
        snprintf(target->name, sizeof(target->name), "?");
    if (target_library_find(target, message, message_size) != 0)
        return -1;
    unsigned count;
    if (!target_read(target, target->zone_count_address, &count,
                     sizeof(count))) {
        if (errno == EPERM || errno == EACCES)
            target_explain_refusal(pid, message, message_size);
        else
            snprintf(message, message_size, "cannot read process %d: %s",
                     (int)pid, strerror(errno));
        return -1;
    }
    return 0;
}

bool target_read(const struct target *target, uint64_t address, void *out,
                 size_t size)
{
    struct iovec here = {out, size}, there = {(void *)(uintptr_t)address, size};
    ssize_t read = process_vm_readv(target->pid, &here, 1, &there, 1, 0);
    if (read == (ssize_t)size)
        return true;
    if (read >= 0)
        errno = EFAULT;
    return false;
}

void target_read_or_zero(pid_t pid, uint64_t address, void *out, size_t size)
{
    const uint64_t page = 4096;
    for (uint64_t at = 0; at < size;) {
        uint64_t page_end = ((address + at) / page + 1) * page;
        uint64_t length = page_end - (address + at);
        if (length > size - at)
            length = size - at;
        struct iovec here = {(char *)out + at, length};
        struct iovec there = {(void *)(uintptr_t)(address + at), length};
        if (process_vm_readv(pid, &here, 1, &there, 1, 0) != (ssize_t)length)
            memset(here.iov_base, 0, length);
        at += length;
    }
}

static struct target_thread *find_thread(struct target *target, pid_t tid)
{
    for (size_t i = 0; i < target->thread_count; i++)
        if (target->threads[i].tid == tid)
            return &target->threads[i];
    return NULL;
}

/* Whether `status` is a group-stop: with PTRACE_SEIZE, a stop event
 * carrying a stop signal rather than SIGTRAP. */
static bool is_group_stop(int status)
{
    int signo = WSTOPSIG(status);
    return (status >> 16) == PTRACE_EVENT_STOP &&
           (signo == SIGSTOP || signo == SIGTSTP || signo == SIGTTIN ||
            signo == SIGTTOU);
}

/* Waits until `thread` stops; false when it is gone.  waitpid is asked
 * without blocking: a thread-group leader that has exited is a zombie
 * that waitpid does not report while other threads live, and those are
 * being stopped here, so a blocking wait on it would never return. */
static long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000 +
           (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* How long a thread may take to stop once interrupted.  A thread
 * waiting in the kernel where no signal reaches it (the parent of a
 * vfork child that has not called exec yet) stops only when it leaves. */
#define STOP_WAIT_MS 5000

enum stop_result { THREAD_STOPPED, THREAD_GONE, THREAD_STUCK };

static enum stop_result wait_for_stop(const struct target *target,
                                      struct target_thread *thread,
                                      const struct timespec *since)
{
    int status;
    for (unsigned pause_us = 10;; pause_us = pause_us < 1000 ? pause_us * 2 : pause_us) {
        pid_t found = waitpid(thread->tid, &status, __WALL | WNOHANG);
        if (found < 0 && errno == EINTR)
            continue;
        if (found < 0)
            return THREAD_GONE;
        if (found > 0)
            break;
        if (thread_exiting(target->pid, thread->tid)) {
            /* Reaps it, unless it leads the group. */
            waitpid(thread->tid, &status, __WALL | WNOHANG);
            return THREAD_GONE;
        }
        if (elapsed_ms(since) > STOP_WAIT_MS)
            return THREAD_STUCK;
        nanosleep(&(struct timespec){0, (long)pause_us * 1000}, NULL);
    }
    if (!WIFSTOPPED(status))
        return THREAD_GONE; /* it exited */
    /* Seized without options, every stop but the interrupt's and the
     * group-stop's is a signal the thread was about to take, SIGTRAP
     * included. */
    thread->job_stopped = is_group_stop(status);
    if ((status >> 16) != PTRACE_EVENT_STOP)
        thread->pending_signal = WSTOPSIG(status);
    return target_read_registers(thread) ? THREAD_STOPPED : THREAD_GONE;
}

static void forget_thread(struct target *target, size_t index)
{
    target->threads[index] = target->threads[--target->thread_count];
}

/* Seizes the threads not seized yet; returns how many were new, or -1
 * with errno. */
static int seize_new_threads(struct target *target)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)target->pid);
    DIR *tasks = opendir(path);
    if (!tasks)
        return -1;
    int added = 0, error = 0;
    for (struct dirent *entry; (entry = readdir(tasks)) != NULL;) {
        pid_t tid = (pid_t)atoi(entry->d_name);
        if (tid <= 0 || find_thread(target, tid))
            continue;
        if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) != 0) {
            /* ESRCH: it has just exited; EPERM also comes for a thread
             * that is exiting. */
            if (errno != ESRCH && !(errno == EPERM && thread_exiting(target->pid, tid)))
                error = errno;
            continue;
        }
        struct target_thread *grown = realloc(
            target->threads, (target->thread_count + 1) * sizeof(*grown));
        if (!grown) {
            ptrace(PTRACE_DETACH, tid, NULL, NULL);
            error = ENOMEM;
            break;
        }
        target->threads = grown;
        grown[target->thread_count++] = (struct target_thread){.tid = tid};
        added++;
    }
    closedir(tasks);
    if (error) {
        errno = error;
        return -1;
    }
    return added;
}

/* Interrupts every seized thread still running and waits until each
 * has stopped; returns a thread that did not, or 0. */
static pid_t stop_all(struct target *target)
{
    for (size_t i = 0; i < target->thread_count; i++)
        if (!target->threads[i].stopped)
            ptrace(PTRACE_INTERRUPT, target->threads[i].tid, NULL, NULL);
    struct timespec since;
    clock_gettime(CLOCK_MONOTONIC, &since);
    pid_t stuck = 0;
    for (size_t i = 0; i < target->thread_count;) {
        struct target_thread *thread = &target->threads[i];
        enum stop_result result =
            thread->stopped ? THREAD_STOPPED : wait_for_stop(target, thread, &since);
        if (result == THREAD_GONE) {
            forget_thread(target, i);
            continue;
        }
        thread->stopped = result == THREAD_STOPPED;
        if (result == THREAD_STUCK)
            stuck = thread->tid;
        i++;
    }
    return stuck;
}

static void continue_all(struct target *target)
{
    for (size_t i = 0; i < target->thread_count; i++) {
        struct target_thread *thread = &target->threads[i];
        ptrace(PTRACE_CONT, thread->tid, NULL,
               (void *)(intptr_t)thread->pending_signal);
        thread->pending_signal = 0;
        thread->stopped = false;
    }
}

/* Seizes and stops every thread, also those started meanwhile: done
 * when a listing made while every known thread was stopped finds no new
 * one (a running thread could start one behind a listing). */
static int stop_every_thread(struct target *target, pid_t *stuck)
{
    for (;;) {
        if ((*stuck = stop_all(target)) != 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        int added = seize_new_threads(target);
        if (added <= 0)
            return added;
    }
}

/* Whether the process is stopped by job control: it would not leave the
 * allocator before it is continued, and this tool must not continue it. */
static bool job_stopped(const struct target *target)
{
    for (size_t i = 0; i < target->thread_count; i++)
        if (target->threads[i].job_stopped)
            return true;
    return false;
}

int target_stop(struct target *target, unsigned timeout_ms, char *message,
                size_t message_size)
{
    stopped_target = target;
    catch_ending_signals();
    target->stopped = true;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (unsigned pause_us = 50;; pause_us = pause_us < 20000 ? pause_us * 2 : pause_us) {
        pid_t stuck = 0;
        if (stop_every_thread(target, &stuck) != 0) {
            int error = errno;
            if (!stuck)
                stop_all(target); /* only stopped threads can be let go */
            target_resume(target);
            if (stuck)
                snprintf(message, message_size,
                         "thread %d of process %d did not stop within %d s: it "
                         "waits in the kernel where no signal reaches it (for "
                         "example for a vfork child that has not called exec "
                         "yet); try again when it has gone on",
                         (int)stuck, (int)target->pid, STOP_WAIT_MS / 1000);
            else if (error == EPERM)
                target_explain_refusal(target->pid, message, message_size);
            else
                snprintf(message, message_size, "cannot stop process %d: %s",
                         (int)target->pid, strerror(error));
            return -1;
        }
        if (target->thread_count == 0) {
            target_resume(target);
            snprintf(message, message_size, "process %d has exited",
                     (int)target->pid);
            return -1;
        }
        if (!find_thread(target, target->pid)) {
            target_resume(target);
            say_main_thread_ended(target->pid, message, message_size);
            return -1;
        }
        if (target_at_safe_point(target))
            return 0;
        if (job_stopped(target)) {
            target_resume(target);
            snprintf(message, message_size,
                     "process %d is stopped (job control) with a thread "
                     "inside the allocator, where it cannot be read: continue "
                     "it with kill -CONT %d and try again",
                     (int)target->pid, (int)target->pid);
            return -1;
        }
        if (elapsed_ms(&start) > (long)timeout_ms)
            break;
        continue_all(target);
        nanosleep(&(struct timespec){0, (long)pause_us * 1000}, NULL);
    }
    target_resume(target);
    snprintf(message, message_size,
             "process %d stayed inside the allocator for %u ms (a thread "
             "holds a zone lock, perhaps stopped in a debugger): try again",
             (int)target->pid, timeout_ms);
    return -1;
}

void target_resume(struct target *target)
{
    if (!target->stopped)
        return;
    for (size_t i = 0; i < target->thread_count; i++)
        resume_thread(&target->threads[i]);
    target->stopped = false;
    target->thread_count = 0;
    stopped_target = NULL;
}

void target_close(struct target *target)
{
    target_resume(target);
    free(target->threads);
    target->threads = NULL;
}

int target_adopt_exiting(struct target *target, pid_t tid, char *message,
                         size_t message_size)
{
    target->threads = calloc(1, sizeof(*target->threads));
    if (!target->threads) {
        snprintf(message, message_size, "out of memory");
        return -1;
    }
    struct target_thread *thread = &target->threads[0];
    thread->tid = tid;
    thread->stopped = true;
    if (!target_read_registers(thread)) {
        snprintf(message, message_size,
                 "cannot read the registers of process %d at its exit: %s",
                 (int)tid, strerror(errno));
        return -1;
    }
    target->thread_count = 1;
    target->stopped = true;
    target->exiting = true;
    stopped_target = target;
    catch_ending_signals();
    return 0;
}
