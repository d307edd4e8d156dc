/*
 * A copy of every block in use of a stopped target, and a quick way from
 * any address to the block that holds it: what a leak scan needs to
 * follow pointers from block to block without asking the kernel each
 * time.
 */
#ifndef MALLOCDEBUG_HEAP_IMAGE_H
#define MALLOCDEBUG_HEAP_IMAGE_H

#include "heap_snapshot.h"
#include "target.h"

#include <stddef.h>
#include <stdint.h>

struct heap_image {
    const struct heap_snapshot *snapshot;
    unsigned char *contents; /* the blocks' bytes, one after another */
    uint64_t *offsets;       /* block i's bytes: contents + offsets[i] */
    /* The index: for each granule of [low, high), the first block that
     * ends after the granule's start. */
    uint64_t low, high;
    unsigned granule_shift;
    size_t *granule_first;
    size_t granule_count;
};

/* Copies the blocks of `snapshot` out of `target`.  A block that cannot
 * be read is taken as zeros. */
int heap_image_build(struct heap_image *image, const struct target *target,
                     const struct heap_snapshot *snapshot, char *message,
                     size_t message_size);
void heap_image_free(struct heap_image *image);

/* The index of the block holding `address` (its first to last byte), or
 * SIZE_MAX. */
size_t heap_image_block_at(const struct heap_image *image, uint64_t address);

static inline const unsigned char *heap_image_bytes(const struct heap_image *image,
                                                   size_t block)
{
    return image->contents + image->offsets[block];
}

#endif
