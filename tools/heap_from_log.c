/*
 * The live blocks at the end of a log, from the history's replay: each
 * allocation with no free after it.  They come out in event order and
 * are sorted by address, as the enumerators' snapshots are.
 */
#include "config.h"
#include "big_array.h"
#include "heap_from_log.h"
#include "history.h"
#include "sorted_runs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool heap_target_is_log(const char *spec)
{
    struct stat status;
    return strchr(spec, '/') ||
           (stat(spec, &status) == 0 && S_ISREG(status.st_mode));
}

static void name_process(struct live_process *process,
                         const struct mdlog_header *header)
{
    process->target.pid = header->pid;
    const char *base = strrchr(header->executable, '/');
    snprintf(process->target.name, sizeof(process->target.name), "%.63s",
             base ? base + 1 : header->executable);
}

static int fill_snapshot(struct heap_snapshot *snapshot, struct history *history,
                         char *message, size_t message_size)
{
    struct history_selection live = {0};
    size_t event_count;
    const struct history_event *events = history_events(history, &event_count);
    snapshot->zones = calloc(1, sizeof(*snapshot->zones));
    if (!history_live_at_end(history, &live) || !snapshot->zones ||
        !(snapshot->blocks = big_array_alloc((live.count + 1) * sizeof(*snapshot->blocks)))) {
        history_selection_free(&live);
        snprintf(message, message_size, "out of memory listing the log's blocks");
        return -1;
    }
    snapshot->block_capacity = live.count + 1;
    struct heap_zone *zone = &snapshot->zones[0];
    snprintf(zone->name, sizeof(zone->name), "AllZonesFromLog");
    zone->kind = "log";
    snapshot->zone_count = 1;
    for (size_t i = 0; i < live.count; i++) {
        const struct history_event *event = &events[live.events[i]];
        snapshot->blocks[snapshot->block_count++] = (struct heap_block){
            event->address, event->size, event->stack, 0};
        snapshot->bytes += event->size;
    }
    zone->block_count = snapshot->block_count;
    zone->bytes = snapshot->bytes;
    history_selection_free(&live);
    if (sort_by_address(snapshot->blocks, snapshot->block_count,
                        sizeof(*snapshot->blocks)) != 0) {
        snprintf(message, message_size, "out of memory sorting the log's blocks");
        return -1;
    }
    return 0;
}

int heap_from_log(const char *path, struct live_process *process,
                  struct heap_snapshot *snapshot, char *message,
                  size_t message_size)
{
    memset(process, 0, sizeof(*process));
    memset(snapshot, 0, sizeof(*snapshot));
    process->log = log_reader_open(path, message, message_size);
    if (!process->log)
        return -1;
    const struct mdlog_header *header = log_reader_header(process->log);
    name_process(process, header);
    if (header->mode != MDLOG_MODE_FULL && header->mode != MDLOG_MODE_MALLOC) {
        snprintf(message, message_size,
                 "%s has no allocation history (recorded in %s mode): heap "
                 "on a log needs MallocStackLogging=full; for a running "
                 "process give its pid", path,
                 header->mode == MDLOG_MODE_LITE ? "lite" : "vm");
        return -1;
    }
    struct history *history = history_replay(process->log, message, message_size);
    if (!history)
        return -1;
    int result = fill_snapshot(snapshot, history, message, message_size);
    history_free(history);
    char ignored[256];
    process->symbols = symbols_open_log(process->log, ignored, sizeof(ignored));
    process->names = stack_names_open(process->log, process->symbols);
    if (result == 0 && !process->names) {
        snprintf(message, message_size, "out of memory");
        result = -1;
    }
    return result;
}
