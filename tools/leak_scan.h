/*
 * The leak scan: conservative marking from the roots through the heap.
 * Any aligned word whose value lies inside a block in use (its first byte
 * or any other) keeps that block, and what the block points to, alive.
 * Blocks no root reaches are the leaks.
 */
#ifndef MALLOCDEBUG_LEAK_SCAN_H
#define MALLOCDEBUG_LEAK_SCAN_H

#include "heap_image.h"
#include "leak_roots.h"
#include "target.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How a block was first reached: from block `index`, or from root
 * `index` when `from_root`. */
struct leak_reach {
    uint32_t index;
    bool from_root;
    bool reached;
};

struct leak_scan {
    const struct heap_image *image;
    struct leak_reach *reach; /* one per block (big_array.h) */
    size_t reach_count;
    size_t leaked_count;
    uint64_t leaked_bytes;
};

int leak_scan_run(struct leak_scan *scan, const struct heap_image *image,
                  const struct target *target, const struct leak_roots *roots,
                  char *message, size_t message_size);
void leak_scan_free(struct leak_scan *scan);

#endif
