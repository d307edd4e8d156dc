/*
 * malloc_history: who allocated and freed an address, and where the
 * memory goes, from a process's stack log, in the formats of macOS's
 * malloc_history(1).
 *
 *   malloc_history [--json] pid|name|log address...
 *   malloc_history [--json] pid|name|log -allBySize|-allByCount|-allEvents
 *   malloc_history [--json] pid|name|log -callTree [-invert]
 *   malloc_history [--json] pid|name|log -temporaries
 *   (-highWaterMark: the views of live blocks at the peak, not the end)
 *
 * A running process's log is read while it runs; a log left by a process
 * that has exited is given by its path.  Exit status 0, or 2 on errors.
 */
#include "config.h"
#include "history.h"
#include "history_report.h"
#include "log_reader.h"
#include "progress.h"
#include "stack_names.h"
#include "symbols.h"
#include "target.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ADDRESSES 256

enum view_kind { VIEW_ADDRESSES, VIEW_BY_SIZE, VIEW_BY_COUNT, VIEW_ALL_EVENTS,
                 VIEW_CALL_TREE, VIEW_TEMPORARIES };

struct command {
    enum view_kind view;
    bool view_chosen, invert, high_water_mark, json;
    const char *target;
    uint64_t addresses[MAX_ADDRESSES];
    size_t address_count;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: malloc_history [--json] pid|name|log address...\n"
            "       malloc_history [--json] pid|name|log -allEvents\n"
            "       malloc_history [--json] [-highWaterMark] pid|name|log "
            "-allBySize|-allByCount\n"
            "       malloc_history [--json] [-highWaterMark] pid|name|log "
            "-callTree [-invert]\n"
            "       malloc_history [--json] pid|name|log -temporaries\n");
}

static bool choose(struct command *command, enum view_kind view)
{
    if (command->view_chosen && command->view != view) {
        fprintf(stderr, "malloc_history: give one view (-allBySize, -allByCount, "
                        "-allEvents, -callTree or -temporaries)\n");
        return false;
    }
    command->view = view;
    command->view_chosen = true;
    return true;
}

static bool is(const char *argument, const char *a, const char *b)
{
    return strcmp(argument, a) == 0 || (b && strcmp(argument, b) == 0);
}

static bool parse_option(struct command *command, const char *argument)
{
    if (is(argument, "-allBySize", "-all_by_size"))
        return choose(command, VIEW_BY_SIZE);
    if (is(argument, "-allByCount", "-all_by_count"))
        return choose(command, VIEW_BY_COUNT);
    if (is(argument, "-allEvents", "-all_events"))
        return choose(command, VIEW_ALL_EVENTS);
    if (is(argument, "-callTree", "-call_tree"))
        return choose(command, VIEW_CALL_TREE);
    if (is(argument, "-temporaries", NULL))
        return choose(command, VIEW_TEMPORARIES);
    if (is(argument, "-invert", NULL))
        return command->invert = true;
    if (is(argument, "-highWaterMark", "-high_water_mark"))
        return command->high_water_mark = true;
    if (is(argument, "--json", "-json"))
        return command->json = true;
    if (is(argument, "-h", "--help")) {
        usage(stdout);
        exit(0);
    }
    fprintf(stderr, "malloc_history: unknown option %s\n", argument);
    usage(stderr);
    return false;
}

static bool parse_address(struct command *command, const char *text)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 16);
    if (!*text || *end || errno) {
        fprintf(stderr, "malloc_history: bad address \"%s\": give block "
                        "addresses in hexadecimal, like 0x7f2a40001000\n",
                text);
        return false;
    }
    if (command->address_count == MAX_ADDRESSES) {
        fprintf(stderr, "malloc_history: too many addresses: give at most "
                        "%d at a time\n", MAX_ADDRESSES);
        return false;
    }
    command->addresses[command->address_count++] = value;
    return true;
}

static bool parse_command_line(struct command *command, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') {
            if (!parse_option(command, argv[i]))
                return false;
        } else if (!command->target) {
            command->target = argv[i];
        } else if (!parse_address(command, argv[i])) {
            return false;
        }
    }
    const char *problem = NULL;
    if (!command->target)
        problem = "give a pid, a process name or a log file";
    else if (!command->view_chosen && !command->address_count)
        problem = "give addresses or a view (-allBySize, -allByCount, "
                  "-allEvents, -callTree, -temporaries)";
    else if (command->view_chosen && command->address_count)
        problem = "give addresses or a view, not both";
    else if (command->invert && command->view != VIEW_CALL_TREE)
        problem = "-invert goes with -callTree";
    else if (command->high_water_mark && command->view != VIEW_BY_SIZE &&
             command->view != VIEW_BY_COUNT && command->view != VIEW_CALL_TREE)
        problem = "-highWaterMark goes with -allBySize, -allByCount or -callTree";
    if (problem) {
        fprintf(stderr, "malloc_history: %s\n", problem);
        usage(stderr);
        return false;
    }
    return true;
}

/* A log file by its path, or the log of a running process. */
static struct log_reader *open_log(const char *target, char *message,
                                   size_t message_size)
{
    struct log_reader *reader = NULL;
    pid_t pid;
    char left[PATH_MAX];
    if (target_names_a_log(target)) {
        reader = log_reader_open(target, message, message_size);
    } else if (log_reader_left_by_pid(target, left, sizeof(left))) {
        fprintf(stderr, "malloc_history: process %s is gone; reading the log "
                        "it left, %s\n", target, left);
        reader = log_reader_open(left, message, message_size);
    } else if (target_find(target, &pid, message, message_size) == 0)
        reader = log_reader_open_pid(pid, message, message_size);
    if (reader)
        log_reader_print_warnings(reader, stderr, "malloc_history");
    return reader;
}

static bool has_events(const struct log_reader *reader)
{
    const struct mdlog_header *header = log_reader_header(reader);
    if (header->mode != MDLOG_MODE_LITE)
        return true;
    fprintf(stderr, "malloc_history: %s was recorded in lite mode, which keeps "
                    "only the stacks of live blocks, no history: run the "
                    "program with MallocStackLogging=full (for live blocks "
                    "by stack, use heap)\n", log_reader_path(reader));
    return false;
}

static int run_view(const struct command *command, const struct history_view *view)
{
    switch (command->view) {
    case VIEW_ADDRESSES:
        return history_report_addresses(view, command->addresses,
                                        command->address_count);
    case VIEW_BY_SIZE:
        return history_report_groups(view, command->high_water_mark, HISTORY_BY_SIZE);
    case VIEW_BY_COUNT:
        return history_report_groups(view, command->high_water_mark, HISTORY_BY_COUNT);
    case VIEW_ALL_EVENTS:
        return history_report_all_events(view);
    case VIEW_CALL_TREE:
        return history_report_call_tree(view, command->high_water_mark,
                                        command->invert);
    case VIEW_TEMPORARIES:
        return history_report_temporaries(view);
    }
    return -1;
}

/* The groups and the call tree of the end need only the blocks live
 * then, which a pass that keeps no history finds in a fraction of the
 * time and memory. */
static bool needs_history(const struct command *command)
{
    bool view_of_end = command->view == VIEW_BY_SIZE ||
                       command->view == VIEW_BY_COUNT ||
                       command->view == VIEW_CALL_TREE;
    return !view_of_end || command->high_water_mark;
}

/* Replays what the view needs: the history, or the live blocks. */
static bool replay(const struct command *command, const struct log_reader *reader,
                   struct history **history, struct log_live_blocks *live,
                   char *message, size_t message_size)
{
    if (needs_history(command))
        return (*history = history_replay(reader, message, message_size)) != NULL;
    return log_live_blocks_find(reader, live, message, message_size) == 0;
}

int main(int argc, char **argv)
{
    struct command command = {0};
    if (!parse_command_line(&command, argc, argv))
        return 2;
    char message[512] = "";
    struct log_reader *reader = open_log(command.target, message, sizeof(message));
    if (!reader) {
        fprintf(stderr, "malloc_history: %s\n", message);
        return 2;
    }
    int status = 2;
    struct history *history = NULL;
    struct log_live_blocks live = {0};
    bool replayed = false;
    struct symbols *symbols = NULL;
    struct stack_names *names = NULL;
    progress_begin("malloc_history");
    progress_note("replaying the log", 0, 0);
    if (has_events(reader))
        replayed = replay(&command, reader, &history, &live, message, sizeof(message));
    progress_end();
    if (replayed) {
        symbols = symbols_open_log(reader, message, sizeof(message));
        names = stack_names_open(reader, symbols);
        struct history_view view = {stdout, history, &live, reader, names,
                                    command.json};
        status = names && run_view(&command, &view) == 0 ? 0 : 2;
        if (status)
            fprintf(stderr, "malloc_history: out of memory\n");
    } else if (message[0]) {
        fprintf(stderr, "malloc_history: %s\n", message);
    }
    stack_names_close(names);
    if (symbols)
        symbols_close(symbols);
    if (history)
        history_free(history);
    log_live_blocks_free(&live);
    log_reader_close(reader);
    return status;
}
