/*
 * The list of the library's own mappings (its tables, zones, per-thread
 * records), exported as mallocdebug_own_mappings so that leaks can tell
 * them from the program's memory: they hold pointers to blocks, and must
 * not count as roots.  The memory of blocks is reported by the zones'
 * enumerators instead.
 *
 * The layout is read by the tools from another process: it only grows
 * fields at the end.
 */
#ifndef MALLOCDEBUG_OWN_MAPPINGS_H
#define MALLOCDEBUG_OWN_MAPPINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct own_mapping {
    uint64_t address, size;
};

struct own_mappings {
    uint64_t count, capacity;
    struct own_mapping *ranges;
};

#define OWN_MAPPINGS_SYMBOL "mallocdebug_own_mappings"

/* Out of memory, a mapping is simply not listed. */
void own_mappings_add(void *address, size_t size);
void own_mappings_remove(void *address);
void own_mappings_force_lock(void);
void own_mappings_force_unlock(void);
void own_mappings_reinit_lock(void);

#endif
