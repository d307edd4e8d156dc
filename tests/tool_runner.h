/*
 * Running the tools and their target processes from the Check tests: a
 * target kept alive on a pipe until the test lets it go, and a tool run to
 * its end with what it printed and its exit status.
 */
#ifndef MALLOCDEBUG_TOOL_RUNNER_H
#define MALLOCDEBUG_TOOL_RUNNER_H

#include <check.h>
#include <stdbool.h>
#include <sys/types.h>

struct running_target {
    pid_t pid;
    int to_target, from_target;
    char output[8192]; /* what it printed up to "ready" */
};

/* Starts `program args...` (NULL-terminated) with `environment` settings
 * ("NAME=value", NULL-terminated, may be NULL) added, and waits for its
 * "ready" line; false when it exits first. */
bool target_start(struct running_target *target, const char *const *environment,
                  const char *program, ...);
/* Asks the target to answer, to prove it runs: true when it does. */
bool target_alive(struct running_target *target);
/* Sends `line` and reads one line back: true when it is `answer`. */
bool target_ask(struct running_target *target, const char *line,
                const char *answer);
/* Whether the target prints a line within `timeout_ms` milliseconds, and
 * that line is `answer`. */
bool target_answers_within(struct running_target *target, int timeout_ms,
                           const char *answer);
/* Ends the target (end of input) and returns its exit status, -1 for a
 * signal. */
int target_finish(struct running_target *target);

struct tool_run {
    int status; /* exit status, or -1 for a signal */
    char out[65536], err[4096];
};

/* Runs `program args...` (NULL-terminated; a program without a slash is
 * looked for in PATH) to its end. */
void tool_run(struct tool_run *run, const char *program, ...);
/* The same with the arguments in an array ending with NULL, the first
 * the program. */
void tool_run_argv(struct tool_run *run, char *const *args);
/* The same as user and group nobody (65534), for a test run as root;
 * status 126 when it cannot become nobody. */
void tool_run_as_nobody(struct tool_run *run, const char *program, ...);
/* `run` ran `tool` as nobody on this (root's) test process: it must have
 * refused with status 2 and the exact message naming the owner. */
void tool_expect_refused_to_nobody(const struct tool_run *run, const char *tool);

/* Makes the scratch directory `path` (a mkdtemp template), runs the
 * tests of `tc` (timeout 60 s) in a suite named `name`, removes the
 * directory, and returns main's exit status. */
int tool_suite_run(const char *name, TCase *tc, char *path);

/* The number after "name " in `text` (as the targets print them). */
unsigned long target_value(const char *text, const char *name);

#endif
