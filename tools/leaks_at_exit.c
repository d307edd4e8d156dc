/*
 * The command runs as a traced child (PTRACE_TRACEME) with
 * PTRACE_O_TRACEEXIT, so the kernel stops it once its exit has begun but
 * before its memory goes away: after atexit handlers and destructors
 * ran, which is the moment leaks --atExit reports on.  Signals it gets
 * meanwhile are passed on unchanged.
 */
#define _GNU_SOURCE
#include "config.h"
#include "leaks_at_exit.h"

#include <dirent.h>
#include <errno.h>
#include <mallocdebug/stack_log.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MALLOCDEBUG_LIBDIR
#define MALLOCDEBUG_LIBDIR "/usr/local/lib"
#endif

/* The library to preload: $MALLOCDEBUG_LIBRARY, the build tree's when
 * this tool runs from one, else the installed one. */
static void library_path(char *path, size_t size)
{
    const char *chosen = getenv("MALLOCDEBUG_LIBRARY");
    if (chosen && *chosen) {
        snprintf(path, size, "%s", chosen);
        return;
    }
    char self[4096];
    ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (length > 0) {
        self[length] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(path, size, "%s/../lib/.libs/libmallocdebug.so", self);
            if (access(path, R_OK) == 0)
                return;
        }
    }
    snprintf(path, size, "%s/libmallocdebug.so", MALLOCDEBUG_LIBDIR);
}

static int prepare_environment(struct at_exit_run *run, char *message,
                               size_t message_size)
{
    char library[4200], preload[8400];
    library_path(library, sizeof(library));
    if (access(library, R_OK) != 0) {
        snprintf(message, message_size,
                 "cannot find libmallocdebug.so at %s: install mallocdebug, "
                 "or set MALLOCDEBUG_LIBRARY to the library's path", library);
        return -1;
    }
    const char *existing = getenv("LD_PRELOAD");
    snprintf(preload, sizeof(preload), "%s%s%s", library,
             existing && *existing ? " " : "", existing ? existing : "");
    setenv("LD_PRELOAD", preload, 1);
    setenv("MallocStackLogging", "lite", 0);
    run->log_kept_for_us = !getenv("MallocStackLoggingDontDeleteStackLogFile");
    return 0;
}

static void run_child(char **argv, int report_fd, bool keep_log)
{
    if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0 || raise(SIGSTOP) != 0)
        _exit(127);
    /* The log must outlive the exit long enough to be read: this process
     * keeps it (whatever it execs), the ones it starts do not. */
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    if (keep_log)
        setenv("MallocStackLoggingKeepForPid", pid, 1);
    execvp(argv[0], argv);
    int error = errno;
    (void)!write(report_fd, &error, sizeof(error));
    _exit(127);
}

static bool is_exit_stop(int status)
{
    return WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP &&
           (status >> 16) == PTRACE_EVENT_EXIT;
}

/* Runs the traced child until its exit stop; its first SIGSTOP (its own)
 * and the stops at each exec (a wrapper script may exec the real
 * program) are not passed on. */
static int follow_until_exit(struct at_exit_run *run, char *message,
                             size_t message_size)
{
    bool options_set = false;
    for (;;) {
        int status;
        if (waitpid(run->pid, &status, 0) < 0) {
            if (errno == EINTR)
                continue;
            snprintf(message, message_size, "lost the command: %s", strerror(errno));
            return -1;
        }
        if (is_exit_stop(status))
            return 0;
        if (!WIFSTOPPED(status)) {
            snprintf(message, message_size,
                     "the command ended without an exit leaks could stop");
            run->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
            return -1;
        }
        int signo = WSTOPSIG(status);
        if (signo == SIGSTOP && !options_set) {
            ptrace(PTRACE_SETOPTIONS, run->pid, NULL,
                   (void *)(PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC |
                            PTRACE_O_EXITKILL));
            options_set = true;
            signo = 0;
        } else if (signo == SIGTRAP && (status >> 16) == PTRACE_EVENT_EXEC) {
            signo = 0;
        }
        ptrace(PTRACE_CONT, run->pid, NULL, (void *)(intptr_t)signo);
    }
}

int at_exit_start(struct at_exit_run *run, char **argv, char *message,
                  size_t message_size)
{
    memset(run, 0, sizeof(*run));
    if (prepare_environment(run, message, message_size) != 0)
        return -1;
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        snprintf(message, message_size, "cannot start %s: %s", argv[0],
                 strerror(errno));
        return -1;
    }
    run->pid = fork();
    if (run->pid < 0) {
        snprintf(message, message_size, "cannot start %s: %s", argv[0],
                 strerror(errno));
        return -1;
    }
    if (run->pid == 0)
        run_child(argv, report[1], run->log_kept_for_us);
    close(report[1]);
    int result = follow_until_exit(run, message, message_size);
    int error = 0;
    if (read(report[0], &error, sizeof(error)) == (ssize_t)sizeof(error)) {
        snprintf(message, message_size, "cannot run %s: %s", argv[0],
                 strerror(error));
        if (result == 0)
            at_exit_finish(run);
        result = -1;
    }
    close(report[0]);
    return result;
}

void at_exit_finish(struct at_exit_run *run)
{
    ptrace(PTRACE_DETACH, run->pid, NULL, NULL);
    int status;
    while (waitpid(run->pid, &status, 0) < 0 && errno == EINTR)
        continue;
    run->exit_status = WIFEXITED(status) ? WEXITSTATUS(status)
                                         : 128 + WTERMSIG(status);
}

void at_exit_remove_logs(const struct at_exit_run *run, const char *directory)
{
    if (!run->log_kept_for_us)
        return;
    DIR *entries = opendir(directory);
    if (!entries)
        return;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), MDLOG_FILE_PREFIX "%d.", (int)run->pid);
    for (struct dirent *entry; (entry = readdir(entries)) != NULL;) {
        size_t length = strlen(entry->d_name);
        if (strncmp(entry->d_name, prefix, strlen(prefix)) != 0 ||
            length < strlen(MDLOG_FILE_SUFFIX) ||
            strcmp(entry->d_name + length - strlen(MDLOG_FILE_SUFFIX),
                   MDLOG_FILE_SUFFIX) != 0)
            continue;
        char path[4352];
        snprintf(path, sizeof(path), "%s/%s", directory, entry->d_name);
        unlink(path);
    }
    closedir(entries);
}
