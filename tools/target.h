/*
 * The process heap and leaks look at: found by pid or by a unique part of
 * its executable's name, checked to be running libmallocdebug.so, and
 * stopped with ptrace while its heap is read.
 *
 * A target is stopped only at a moment when no thread is inside the
 * library and no zone lock is held, so the zones' structures are whole;
 * when the moment does not come, target_stop gives up with a message.
 * Every thread is resumed by target_resume, by target_close, and by the
 * signals that end a tool (SIGINT, SIGTERM, SIGHUP, SIGQUIT); when the
 * tool dies otherwise, the kernel resumes them.  A process stopped by job
 * control (SIGSTOP, Ctrl-Z) is never set running: it is read if it
 * stopped at a safe moment, refused otherwise, and stays stopped.
 *
 * Functions returning int give 0 on success, or -1 with one line in
 * `message` naming the problem and what to do.
 */
#ifndef MALLOCDEBUG_TARGET_H
#define MALLOCDEBUG_TARGET_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

/* 64-bit words of the vector state past xmm0-15 (target_registers.c). */
#define TARGET_EXTENDED_WORDS 232

/* A stopped thread: its id and registers. */
struct target_thread {
    pid_t tid;
    bool stopped;
    bool job_stopped; /* its process is stopped by job control (SIGSTOP) */
    int pending_signal; /* a signal it was about to take, given back */
    struct user_regs_struct registers;
    struct user_fpregs_struct vector_registers; /* x87, xmm0-15 */
    /* ymm0-15's upper halves, the AVX-512 mask registers k0-7, zmm0-15's
     * upper halves and zmm16-31, in that order; zero where the processor
     * lacks them, they are in their initial state, or the kernel does not
     * give them. */
    uint64_t extended_registers[TARGET_EXTENDED_WORDS];
};

struct target {
    pid_t pid;
    char name[64]; /* the executable's file name */
    /* libmallocdebug.so as the process maps it. */
    char library_path[PATH_MAX];
    uint64_t library_code_start, library_code_end;
    /* Where the zone registry is (malloc_zones, malloc_num_zones), and
     * the list of the library's own mappings (own_mappings.h). */
    uint64_t zones_address, zone_count_address, own_mappings_address;
    bool stopped;
    /* Stopped in its exit (target_adopt_exiting): its one thread's stack
     * holds the frames of exit handlers, dead to the program. */
    bool exiting;
    struct target_thread *threads;
    size_t thread_count;
};

/* Whether a tool's target `spec` names a log file rather than a process:
 * it holds a slash, or names a regular file that exists. */
bool target_names_a_log(const char *spec);

/* `spec` is a pid or a part of an executable's name that only one
 * process (other than this one) matches. */
int target_find(const char *spec, pid_t *pid, char *message,
                size_t message_size);

/* Whether `spec` is a pid that no process has (any more): `*pid`. */
bool target_gone_pid(const char *spec, pid_t *pid);

/* The executable's file name of process `pid` (its command name when the
 * executable cannot be read); false when the process is gone. */
bool target_process_name(pid_t pid, char *name, size_t size);
/* The state letter of thread `tid` of process `pid` (/proc/PID/task/TID/stat:
 * R, S, D, T, t, Z...), 'X' when it is gone. */
char target_thread_state(pid_t pid, pid_t tid);

/* Checks that the process exists, may be read, and runs the library. */
int target_open(struct target *target, pid_t pid, char *message,
                size_t message_size);
void target_close(struct target *target);

/* Stops every thread at a safe moment (see above), for at most
 * `timeout_ms` milliseconds of trying. */
int target_stop(struct target *target, unsigned timeout_ms, char *message,
                size_t message_size);
void target_resume(struct target *target);

/* For a process this tool traces already and that is stopped at its
 * exit (leaks --atExit): takes thread `tid` as the stopped target, with
 * its registers.  The other threads are ending. */
int target_adopt_exiting(struct target *target, pid_t tid, char *message,
                         size_t message_size);

/* Copies `size` bytes at `address` in the target; false when any of them
 * cannot be read. */
bool target_read(const struct target *target, uint64_t address, void *out,
                 size_t size);

/* Copies `size` bytes at `address` in the target a page at a time,
 * zeroing the pages that cannot be read (a guard page among blocks). */
void target_read_or_zero(pid_t pid, uint64_t address, void *out, size_t size);

/* ---- shared by the target files ---- */

/* Finds the library in /proc/PID/maps and the zone registry in its
 * dynamic symbols (target_library.c). */
int target_library_find(struct target *target, char *message,
                        size_t message_size);
/* Whether a mapped file is libmallocdebug.so. */
bool target_is_library_path(const char *path);
/* Reads a stopped thread's registers, all of them the processor has
 * (target_registers.c); false when the thread is gone. */
bool target_read_registers(struct target_thread *thread);
/* Whether a thread is at a point where the heap may be read: not in the
 * library's code, and no zone lock held (target_safe_point.c). */
bool target_at_safe_point(const struct target *target);

#endif
