/*
 * leaks: the blocks a process can no longer reach, and who allocated
 * them, in the formats of macOS's leaks(1).
 *
 *   leaks [options] pid|name
 *   leaks [options] --atExit -- command [args...]
 *
 * Exit status: 0 no leaks, 1 leaks, 2 an error.
 */
#include "config.h"
#include "heap_image.h"
#include "leak_roots.h"
#include "leak_scan.h"
#include "leak_trace.h"
#include "leak_trees.h"
#include "leaks_at_exit.h"
#include "leaks_report.h"
#include "live_process.h"
#include "progress.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct leaks_command {
    struct leaks_options report;
    bool at_exit;
    bool trace;
    uint64_t trace_address;
    char **command;       /* --atExit */
    const char *target;   /* pid or name */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: leaks [-nocontext] [-nostacks] [-nosources] [-quiet] [-list]\n"
            "             [-exclude symbol]... [-traceTree address] [--json] pid|name\n"
            "       leaks [options] --atExit -- command [args...]\n");
}

/* One line on stderr, "leaks: ..."; returns -1 for the caller to pass on. */
__attribute__((format(printf, 1, 2))) static int fail(const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    fprintf(stderr, "leaks: ");
    vfprintf(stderr, format, arguments);
    fprintf(stderr, "\n");
    va_end(arguments);
    return -1;
}

static bool parse_address(const char *text, uint64_t *address)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 0);
    /* strtoull takes "-1" as the highest address. */
    return isxdigit((unsigned char)*text) && !*end && errno == 0 &&
           (*address = value, true);
}

static bool is(const char *argument, const char *a, const char *b)
{
    return strcmp(argument, a) == 0 || (b && strcmp(argument, b) == 0);
}

/* One option at argv[*i]; 0, or -1 after a message. */
static int parse_option(struct leaks_command *command, int argc, char **argv,
                        int *i)
{
    const char *argument = argv[*i];
    struct leaks_options *report = &command->report;
    if (is(argument, "-nocontext", "-noContent"))
        report->no_content = true;
    else if (is(argument, "-nostacks", "-noStacks"))
        report->no_stacks = true;
    else if (is(argument, "-nosources", "-noSources"))
        report->no_sources = true;
    else if (is(argument, "-quiet", "-q"))
        report->quiet = true;
    else if (is(argument, "-list", NULL))
        report->list = true;
    else if (is(argument, "--json", "-json"))
        report->json = true;
    else if (is(argument, "--atExit", "-atExit"))
        command->at_exit = true;
    else if (is(argument, "-exclude", NULL)) {
        if (++*i == argc || report->exclude_count == LEAKS_MAX_EXCLUDES)
            return fail("-exclude needs a function name (at most %d of them)", LEAKS_MAX_EXCLUDES);
        report->excludes[report->exclude_count++] = argv[*i];
    } else if (is(argument, "-traceTree", NULL)) {
        if (++*i == argc || !parse_address(argv[*i], &command->trace_address))
            return fail("-traceTree needs a block address, like 0x7f2a40001000");
        command->trace = true;
    } else if (is(argument, "-h", "--help")) {
        usage(stdout);
        exit(0);
    } else {
        fail("unknown option %s", argument);
        usage(stderr);
        return -1;
    }
    return 0;
}

static int parse_command_line(struct leaks_command *command, int argc, char **argv)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--") != 0; i++)
        if (parse_option(command, argc, argv, &i) != 0)
            return -1;
    if (command->trace && command->report.json)
        return fail("-traceTree prints text only: leave out --json");
    if (command->at_exit) {
        if (i < argc && strcmp(argv[i], "--") == 0)
            i++;
        if (i == argc)
            return fail("--atExit needs a command: leaks --atExit -- ./prog args");
        command->command = argv + i;
        return 0;
    }
    if (i != argc - 1) {
        usage(stderr);
        return -1;
    }
    command->target = argv[i];
    return 0;
}

/* Everything the scan makes, freed together. */
struct leaks_scan_state {
    struct heap_snapshot snapshot;
    struct leak_roots roots;
    struct heap_image image;
    struct leak_scan scan;
};

/* The report shows the leaked blocks' bytes and follows their pointers. */
static int copy_leaked_blocks(struct leaks_scan_state *state,
                              const struct target *target, char *message,
                              size_t message_size)
{
    size_t *leaked = malloc((state->scan.leaked_count + 1) * sizeof(*leaked));
    if (!leaked) {
        snprintf(message, message_size, "out of memory");
        return -1;
    }
    size_t count = 0;
    for (size_t i = 0; i < state->snapshot.block_count; i++)
        if (!state->scan.reach[i].reached)
            leaked[count++] = i;
    int result = heap_image_copy(&state->image, target, leaked, count, message,
                                 message_size);
    free(leaked);
    return result;
}

static int scan_target(struct live_process *process, struct leaks_scan_state *state,
                       char *message, size_t message_size)
{
    struct target *target = &process->target;
    progress_note("listing the heap", 0, 0);
    int result = heap_snapshot_take(target, &state->snapshot, message, message_size);
    if (result == 0)
        result = leak_roots_find(&state->roots, target, &state->snapshot, message,
                                 message_size);
    if (result == 0)
        result = heap_image_build(&state->image, &state->snapshot, message,
                                  message_size);
    progress_note("scanning", 0, 0);
    if (result == 0)
        result = leak_scan_run(&state->scan, &state->image, target, &state->roots,
                               message, message_size);
    if (result == 0)
        result = copy_leaked_blocks(state, target, message, message_size);
    target_resume(target);
    if (process->log) {
        char ignored[256];
        log_reader_refresh(process->log, ignored, sizeof(ignored));
    }
    progress_end();
    return result;
}

static void scan_state_free(struct leaks_scan_state *state)
{
    leak_scan_free(&state->scan);
    heap_image_free(&state->image);
    leak_roots_free(&state->roots);
    heap_snapshot_free(&state->snapshot);
}

/* Reports on a scanned process: the exit status. */
static int report(struct live_process *process, struct leaks_scan_state *state,
                  const struct leaks_command *command)
{
    char message[512] = "";
    if (command->trace) {
        int traced = leak_trace_print(stdout, process, &state->scan, &state->roots,
                                      command->trace_address, message,
                                      sizeof(message));
        if (traced < 0)
            fail("%s", message);
        return traced < 0 ? 2 : traced;
    }
    if (command->report.exclude_count && !process->log)
        fprintf(stderr, "leaks: warning: -exclude needs the allocation stacks, "
                "and process %d records none: nothing is excluded (run it "
                "with MallocStackLogging=1)\n", (int)process->target.pid);
    struct leak_forest forest;
    if (leak_forest_build(&forest, &state->scan) != 0) {
        fail("out of memory arranging the leaks");
        return 2;
    }
    struct leaks_result result;
    leaks_count(process, &state->snapshot, &forest, &command->report, &result);
    leaks_report(stdout, process, &state->snapshot, &state->image, &forest,
                 &command->report, &result);
    leak_forest_free(&forest);
    return result.leak_count ? 1 : 0;
}

static int leaks_of_running_process(const struct leaks_command *command)
{
    char message[512] = "";
    struct live_process process;
    struct leaks_scan_state state = {0};
    int status = 2;
    char left[PATH_MAX];
    /* A running process first: a file of its name may be in the current
     * directory. */
    if (live_process_open(&process, command->target, message, sizeof(message)) != 0) {
        if (target_names_a_log(command->target) &&
            access(command->target, F_OK) != 0)
            fail("%s: no such file, and no running process of that name: "
                 "give the pid or name of a running process, or leaks "
                 "--atExit -- COMMAND to check a program as it exits",
                 command->target);
        else if (target_names_a_log(command->target))
            fail("%s: leaks reads a running process's memory, not a log: "
                 "run heap or malloc_history on the log, or leaks --atExit "
                 "-- COMMAND to check a program as it exits",
                 command->target);
        else if (log_reader_left_by_pid(command->target, left, sizeof(left)))
            fail("%s; leaks reads a running process's memory, but the log "
                 "it left, %s, can be read with heap or malloc_history",
                 message, left);
        else
            fail("%s", message);
        return 2;
    }
    if (target_stop(&process.target, 5000, message, sizeof(message)) == 0 &&
        scan_target(&process, &state, message, sizeof(message)) == 0)
        status = report(&process, &state, command);
    else
        fail("%s", message);
    scan_state_free(&state);
    live_process_close(&process);
    return status;
}

/* A thread killed by the exit while inside the allocator may have left a
 * zone half changed: the scan goes on, with a warning. */
static bool warn_unless_safe(const struct target *target)
{
    if (!target_at_safe_point(target))
        fprintf(stderr, "leaks: warning: process %d exited while a thread was "
                        "inside the allocator; the report may be incomplete\n",
                (int)target->pid);
    return true;
}

static int leaks_at_exit(const struct leaks_command *command)
{
    char message[512] = "";
    struct at_exit_run run;
    if (at_exit_start(&run, command->command, message, sizeof(message)) != 0) {
        fail("%s", message);
        return 2;
    }
    struct live_process process;
    struct leaks_scan_state state = {0};
    int status = 2;
    fflush(stdout);
    if (live_process_open_pid(&process, run.pid, message, sizeof(message)) == 0 &&
        target_adopt_exiting(&process.target, run.pid, message, sizeof(message)) == 0 &&
        warn_unless_safe(&process.target) &&
        scan_target(&process, &state, message, sizeof(message)) == 0)
        status = report(&process, &state, command);
    else
        fail("%s", message);
    if (process.log) {
        char directory[4096];
        snprintf(directory, sizeof(directory), "%s", log_reader_path(process.log));
        char *slash = strrchr(directory, '/');
        if (slash) {
            *slash = '\0';
            at_exit_remove_logs(&run, directory);
        }
    }
    scan_state_free(&state);
    live_process_close(&process);
    at_exit_finish(&run);
    return status;
}

int main(int argc, char **argv)
{
    struct leaks_command command = {0};
    if (parse_command_line(&command, argc, argv) != 0)
        return 2;
    progress_begin("leaks");
    return command.at_exit ? leaks_at_exit(&command)
                           : leaks_of_running_process(&command);
}
