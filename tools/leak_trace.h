/* leaks -traceTree: how a block that is not leaked is reached. */
#ifndef MALLOCDEBUG_LEAK_TRACE_H
#define MALLOCDEBUG_LEAK_TRACE_H

#include "leak_scan.h"
#include "live_process.h"

#include <stdio.h>

/* Prints the chain of references from a root to the block holding
 * `address`.  Returns 0, 1 when the block is leaked (no chain), or -1
 * with a message when no block holds the address. */
int leak_trace_print(FILE *out, struct live_process *process,
                     const struct leak_scan *scan,
                     const struct leak_roots *roots, uint64_t address,
                     char *message, size_t message_size);

#endif
