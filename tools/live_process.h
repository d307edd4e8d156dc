/*
 * What heap and leaks open for a process given on the command line: the
 * target, its stack log when it keeps one, and the names of its stacks.
 */
#ifndef MALLOCDEBUG_LIVE_PROCESS_H
#define MALLOCDEBUG_LIVE_PROCESS_H

#include "heap_snapshot.h"
#include "log_reader.h"
#include "stack_names.h"
#include "symbols.h"
#include "target.h"

struct live_process {
    struct target target;
    struct log_reader *log;   /* NULL when the process logs no stacks */
    struct symbols *symbols;  /* NULL without a log */
    struct stack_names *names;
};

/* `spec` is a pid or part of a name (target_find).  0, or -1 with a
 * message. */
int live_process_open(struct live_process *process, const char *spec,
                      char *message, size_t message_size);
/* The same for a pid already known (and possibly traced by this tool). */
int live_process_open_pid(struct live_process *process, pid_t pid,
                          char *message, size_t message_size);
void live_process_close(struct live_process *process);

/* Stops the process at a safe moment, lists its heap, resumes it, and
 * brings the log up to the moment of the listing. */
int live_process_snapshot(struct live_process *process,
                          struct heap_snapshot *snapshot, char *message,
                          size_t message_size);

#endif
