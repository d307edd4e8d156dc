/*
 * A log's live blocks as a heap snapshot of one zone: the blocks live at
 * its end (log_live_blocks.h), sorted by address as the enumerators'
 * snapshots are.
 */
#include "config.h"
#include "heap_from_log.h"
#include "log_live_blocks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void name_process(struct live_process *process,
                         const struct mdlog_header *header)
{
    process->target.pid = header->pid;
    const char *base = strrchr(header->executable, '/');
    snprintf(process->target.name, sizeof(process->target.name), "%.63s",
             base ? base + 1 : header->executable);
}

static int fill_snapshot(struct heap_snapshot *snapshot,
                         const struct log_reader *reader, char *message,
                         size_t message_size)
{
    struct log_live_blocks live;
    if (log_live_blocks_find(reader, &live, message, message_size) != 0)
        return -1;
    snapshot->zones = calloc(1, sizeof(*snapshot->zones));
    if (!snapshot->zones) {
        log_live_blocks_free(&live);
        snprintf(message, message_size, "out of memory listing the log's blocks");
        return -1;
    }
    snapshot->blocks = live.blocks;
    snapshot->block_count = live.count;
    snapshot->block_capacity = live.capacity;
    snapshot->bytes = live.bytes;
    struct heap_zone *zone = &snapshot->zones[0];
    snprintf(zone->name, sizeof(zone->name), "AllZonesFromLog");
    zone->kind = "log";
    zone->block_count = live.count;
    zone->bytes = live.bytes;
    snapshot->zone_count = 1;
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
    log_reader_print_warnings(process->log, stderr, program_invocation_short_name);
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
    int result = fill_snapshot(snapshot, process->log, message, message_size);
    char ignored[256];
    process->symbols = symbols_open_log(process->log, ignored, sizeof(ignored));
    process->names = stack_names_open(process->log, process->symbols);
    if (result == 0 && !process->names) {
        snprintf(message, message_size, "out of memory");
        result = -1;
    }
    return result;
}
