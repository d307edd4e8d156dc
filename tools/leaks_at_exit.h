/*
 * leaks --atExit -- command: runs the command with the library preloaded
 * (and MallocStackLogging=lite unless the environment says otherwise),
 * traced, and hands it over stopped at its exit, its memory intact.
 */
#ifndef MALLOCDEBUG_LEAKS_AT_EXIT_H
#define MALLOCDEBUG_LEAKS_AT_EXIT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct at_exit_run {
    pid_t pid;
    bool log_kept_for_us; /* the log is ours to remove after the scan */
    int exit_status;      /* after at_exit_finish: the command's status */
};

/* Starts `argv` and runs it until it is about to exit.  0 with the
 * process stopped there, or -1 with a message (it did not start, it was
 * killed first). */
int at_exit_start(struct at_exit_run *run, char **argv, char *message,
                  size_t message_size);
/* Removes the logs the run kept for the scan: every log of its pid in
 * `directory` (a wrapper script it ran first leaves one too). */
void at_exit_remove_logs(const struct at_exit_run *run, const char *directory);
/* Lets the stopped process exit and collects its status. */
void at_exit_finish(struct at_exit_run *run);

#endif
