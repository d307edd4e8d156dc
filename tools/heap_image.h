/*
 * A stopped target's heap as the leak scan and its report see it: a quick
 * way from any address to the block holding it, and copies of the bytes
 * of the blocks asked for (the leaked ones, which the report shows and
 * arranges into trees).
 */
#ifndef MALLOCDEBUG_HEAP_IMAGE_H
#define MALLOCDEBUG_HEAP_IMAGE_H

#include "heap_snapshot.h"
#include "target.h"

#include <stddef.h>
#include <stdint.h>

#define HEAP_IMAGE_NOT_COPIED UINT64_MAX

struct heap_image {
    const struct heap_snapshot *snapshot;
    /* The index: for each granule of [low, high), the first block that
     * ends after the granule's start. */
    uint64_t low, high;
    unsigned granule_shift;
    size_t *granule_first;
    size_t granule_count;
    /* Copied blocks: block i's bytes at contents + offsets[i], or
     * offsets[i] == HEAP_IMAGE_NOT_COPIED. */
    unsigned char *contents;
    uint64_t contents_size;
    uint64_t *offsets;
};

/* Builds the index over `snapshot`'s blocks; nothing is copied yet. */
int heap_image_build(struct heap_image *image,
                     const struct heap_snapshot *snapshot, char *message,
                     size_t message_size);
/* Copies the blocks listed in `blocks` out of `target`, in place of any
 * earlier copy; a block that cannot be read is taken as zeros. */
int heap_image_copy(struct heap_image *image, const struct target *target,
                    const size_t *blocks, size_t count, char *message,
                    size_t message_size);
void heap_image_free(struct heap_image *image);

/* The index of the block holding `address` (its first to last byte), or
 * SIZE_MAX. */
size_t heap_image_block_at(const struct heap_image *image, uint64_t address);

/* The copy of `block`, or NULL when it was not copied. */
static inline const unsigned char *heap_image_bytes(const struct heap_image *image,
                                                   size_t block)
{
    if (!image->offsets || image->offsets[block] == HEAP_IMAGE_NOT_COPIED)
        return NULL;
    return image->contents + image->offsets[block];
}

#endif
