/*
 * heap on a stack log instead of a live process: the blocks the log
 * shows live at its end (full or malloc mode), in the form of a heap
 * snapshot, so the same report applies.  The log does not say which zone
 * each block came from: all are listed in one zone, named for that.
 */
#ifndef MALLOCDEBUG_HEAP_FROM_LOG_H
#define MALLOCDEBUG_HEAP_FROM_LOG_H

#include "heap_snapshot.h"
#include "live_process.h"

#include <stdbool.h>

/* Opens the log at `path` into `process` (no target: pid and name come
 * from the log) and lists its live blocks into `snapshot`.  0, or -1
 * with a message. */
int heap_from_log(const char *path, struct live_process *process,
                  struct heap_snapshot *snapshot, char *message,
                  size_t message_size);

#endif
