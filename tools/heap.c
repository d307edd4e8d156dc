/*
 * heap: what a process's heap holds, by zone, by size and by allocation
 * site, in the format of macOS's heap(1).
 *
 *   heap [-s|-sortBySize] [-z|-zones] [-H|-humanReadable] [-showSizes]
 *        [-addresses all|pattern] [--json] pid|name|log
 *
 * A log (a path) is a process's stack log in full mode, possibly left
 * behind by a process that has exited: the blocks live at its end.
 */
#include "config.h"
#include "heap_from_log.h"
#include "heap_report.h"
#include "live_process.h"
#include "progress.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: heap [-s|-sortBySize] [-z|-zones] [-H|-humanReadable] "
            "[-showSizes]\n"
            "            [-addresses all|<class>[size]] [--json] pid|name|log\n");
}

static bool option_is(const char *argument, const char *short_name,
                      const char *long_name)
{
    return (short_name && strcmp(argument, short_name) == 0) ||
           strcmp(argument, long_name) == 0;
}

/* Returns the index of the target argument, or -1 after a message. */
static int parse_options(int argc, char **argv, struct heap_options *options)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *argument = argv[i];
        if (option_is(argument, "-s", "-sortBySize"))
            options->sort_by_size = true;
        else if (option_is(argument, "-z", "-zones"))
            options->by_zone = true;
        else if (option_is(argument, "-H", "-humanReadable"))
            options->human_readable = true;
        else if (option_is(argument, NULL, "-showSizes"))
            options->show_sizes = true;
        else if (option_is(argument, "-json", "--json"))
            options->json = true;
        else if (option_is(argument, "-h", "--help")) {
            usage(stdout);
            exit(0);
        } else if (option_is(argument, NULL, "-addresses")) {
            if (++i == argc) {
                fprintf(stderr, "heap: -addresses needs all or a class "
                                "pattern, like 'malloc in main[1k+]'\n");
                return -1;
            }
            if (heap_address_pattern_parse(argv[i], &options->addresses) != 0) {
                fprintf(stderr, "heap: bad -addresses pattern \"%s\": give "
                                "all, a class name, and/or a size filter "
                                "like [64], [1k-4k], [1m+] or [-512]\n",
                        argv[i]);
                return -1;
            }
        } else {
            fprintf(stderr, "heap: unknown option %s\n", argument);
            usage(stderr);
            return -1;
        }
    }
    if (i != argc - 1) {
        usage(stderr);
        return -1;
    }
    return i;
}

/* A log by its path, the log a process that is gone left, or a running
 * process by pid or name. */
static int open_target(const char *spec, struct live_process *process,
                       struct heap_snapshot *snapshot, char *message,
                       size_t message_size)
{
    memset(snapshot, 0, sizeof(*snapshot));
    char left[PATH_MAX];
    const char *log = target_names_a_log(spec) ? spec : NULL;
    if (!log && log_reader_left_by_pid(spec, left, sizeof(left))) {
        fprintf(stderr, "heap: process %s is gone; reading the log it left, "
                        "%s\n", spec, left);
        log = left;
    }
    progress_begin("heap");
    progress_note("reading", 0, 0);
    int result;
    if (log)
        result = heap_from_log(log, process, snapshot, message, message_size);
    else if ((result = live_process_open(process, spec, message, message_size)) == 0)
        result = live_process_snapshot(process, snapshot, message, message_size);
    progress_end();
    return result;
}

int main(int argc, char **argv)
{
    struct heap_options options = {0};
    int target_index = parse_options(argc, argv, &options);
    if (target_index < 0)
        return 2;
    char message[512] = "";
    struct live_process process;
    struct heap_snapshot snapshot;
    if (open_target(argv[target_index], &process, &snapshot, message,
                    sizeof(message)) != 0) {
        fprintf(stderr, "heap: %s\n", message);
        heap_snapshot_free(&snapshot);
        live_process_close(&process);
        return 2;
    }
    int status = heap_report(stdout, &process, &snapshot, &options) == 0 ? 0 : 2;
    heap_snapshot_free(&snapshot);
    live_process_close(&process);
    return status;
}
