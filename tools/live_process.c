#include "config.h"
#include "live_process.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int live_process_open(struct live_process *process, const char *spec,
                      char *message, size_t message_size)
{
    memset(process, 0, sizeof(*process));
    pid_t pid;
    if (target_find(spec, &pid, message, message_size) != 0)
        return -1;
    return live_process_open_pid(process, pid, message, message_size);
}

int live_process_open_pid(struct live_process *process, pid_t pid,
                          char *message, size_t message_size)
{
    memset(process, 0, sizeof(*process));
    if (target_open(&process->target, pid, message, message_size) != 0)
        return -1;
    /* No log is not an error: the process runs without stack logging,
     * and its blocks have no stacks.  A log that cannot be read is said,
     * since the report then lacks the stacks the user asked for. */
    char ignored[256], why[512];
    process->log = log_reader_open_pid_if_recording(pid, why, sizeof(why));
    if (!process->log && why[0])
        fprintf(stderr, "%s: warning: %s; reporting without stacks\n",
                program_invocation_short_name, why);
    if (process->log) {
        log_reader_print_chunk_warnings(process->log, stderr,
                                        program_invocation_short_name);
        process->symbols = symbols_open_log(process->log, ignored,
                                            sizeof(ignored));
    }
    process->names = stack_names_open(process->log, process->symbols);
    if (!process->names) {
        snprintf(message, message_size, "out of memory");
        live_process_close(process);
        return -1;
    }
    return 0;
}

void live_process_close(struct live_process *process)
{
    stack_names_close(process->names);
    if (process->symbols)
        symbols_close(process->symbols);
    if (process->log)
        log_reader_close(process->log);
    target_close(&process->target);
    memset(process, 0, sizeof(*process));
}

/* How long a process may stay inside the allocator before the tools give
 * up: a thread stopped in a debugger with a zone lock held. */
#define SAFE_POINT_TIMEOUT_MS 5000

int live_process_snapshot(struct live_process *process,
                          struct heap_snapshot *snapshot, char *message,
                          size_t message_size)
{
    if (target_stop(&process->target, SAFE_POINT_TIMEOUT_MS, message,
                    message_size) != 0)
        return -1;
    int result = heap_snapshot_take(&process->target, snapshot, message,
                                    message_size);
    target_resume(&process->target);
    if (result == 0 && process->log) {
        char ignored[256];
        log_reader_refresh(process->log, ignored, sizeof(ignored));
    }
    return result;
}
