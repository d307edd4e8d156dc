/*
 * Blocks grouped by class (allocation site), with their count, bytes and
 * the sizes in each group, for heap's table.
 */
#ifndef MALLOCDEBUG_HEAP_CLASSES_H
#define MALLOCDEBUG_HEAP_CLASSES_H

#include "heap_snapshot.h"
#include "stack_names.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct heap_size_count {
    uint64_t size, count;
};

struct heap_class {
    const char *name;
    uint64_t count, bytes;
    struct heap_size_count *sizes; /* largest size first */
    size_t size_count;
};

struct heap_classes {
    struct heap_class *classes; /* sorted as asked */
    size_t count;
    uint64_t blocks, bytes;
    struct heap_size_count *sizes; /* every block, largest size first */
    size_t size_count;
};

/* Groups the blocks of zone `zone` (UINT32_MAX: of every zone). */
int heap_classes_build(struct heap_classes *classes,
                       const struct heap_snapshot *snapshot, uint32_t zone,
                       struct stack_names *names, bool sort_by_size);
void heap_classes_free(struct heap_classes *classes);

#endif
