/*
 * The block index, and copies of chosen blocks: process_vm_readv with up
 * to IOV_MAX blocks per call, so a hundred thousand blocks take a hundred
 * system calls.  A call stops at the first block it cannot read; that one
 * is read a page at a time, zeroing what fails, and the rest go on.
 */
#include "config.h"
#include "big_array.h"
#include "heap_image.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* Most granules of the index hold few blocks; it stays under this many
 * entries, so a heap spread over a huge range gets coarser granules. */
#define MAX_GRANULES (16u << 20)


struct piece {
    uint64_t address, size, offset; /* in the target, and in the copy */
};

static void copy_pieces(unsigned char *contents, pid_t pid,
                        const struct piece *pieces, size_t count)
{
    struct iovec local[IOV_MAX], remote[IOV_MAX];
    while (count) {
        size_t n = count < IOV_MAX ? count : IOV_MAX;
        uint64_t expected = 0;
        for (size_t i = 0; i < n; i++) {
            local[i] = (struct iovec){contents + pieces[i].offset, pieces[i].size};
            remote[i] = (struct iovec){(void *)(uintptr_t)pieces[i].address,
                                       pieces[i].size};
            expected += pieces[i].size;
        }
        ssize_t got = process_vm_readv(pid, local, n, remote, n, 0);
        if (got == (ssize_t)expected) {
            pieces += n;
            count -= n;
            continue;
        }
        /* Skip the pieces read whole; read the one that failed by pages. */
        size_t done = 0;
        uint64_t bytes = got > 0 ? (uint64_t)got : 0;
        while (done < n && bytes >= pieces[done].size)
            bytes -= pieces[done++].size;
        target_read_or_zero(pid, pieces[done].address,
                            contents + pieces[done].offset, pieces[done].size);
        pieces += done + 1;
        count -= done + 1;
    }
}

static int build_index(struct heap_image *image)
{
    const struct heap_snapshot *snapshot = image->snapshot;
    if (!snapshot->block_count)
        return 0;
    const struct heap_block *last = &snapshot->blocks[snapshot->block_count - 1];
    image->low = snapshot->blocks[0].address;
    image->high = last->address + last->size;
    image->granule_shift = 12;
    while (((image->high - image->low) >> image->granule_shift) >= MAX_GRANULES)
        image->granule_shift++;
    image->granule_count = ((image->high - image->low) >> image->granule_shift) + 1;
    image->granule_first = big_array_alloc(image->granule_count * sizeof(size_t));
    if (!image->granule_first)
        return -1;
    size_t block = 0;
    for (size_t g = 0; g < image->granule_count; g++) {
        uint64_t start = image->low + ((uint64_t)g << image->granule_shift);
        while (block < snapshot->block_count &&
               snapshot->blocks[block].address + snapshot->blocks[block].size <= start)
            block++;
        image->granule_first[g] = block;
    }
    return 0;
}

int heap_image_build(struct heap_image *image,
                     const struct heap_snapshot *snapshot, char *message,
                     size_t message_size)
{
    memset(image, 0, sizeof(*image));
    image->snapshot = snapshot;
    if (build_index(image) != 0) {
        snprintf(message, message_size,
                 "out of memory indexing the heap (%zu blocks)",
                 snapshot->block_count);
        return -1;
    }
    return 0;
}

int heap_image_copy(struct heap_image *image, const struct target *target,
                    const size_t *blocks, size_t count, char *message,
                    size_t message_size)
{
    const struct heap_snapshot *snapshot = image->snapshot;
    size_t offsets_bytes = (snapshot->block_count + 1) * sizeof(*image->offsets);
    struct piece *pieces = malloc((count + 1) * sizeof(*pieces));
    if (!image->offsets)
        image->offsets = big_array_alloc(offsets_bytes);
    /* Every block HEAP_IMAGE_NOT_COPIED: a new copy replaces the last. */
    if (image->offsets)
        memset(image->offsets, 0xff, offsets_bytes);
    uint64_t size = 0;
    for (size_t i = 0; pieces && i < count; i++) {
        const struct heap_block *block = &snapshot->blocks[blocks[i]];
        pieces[i] = (struct piece){block->address, block->size, size};
        size += block->size;
    }
    unsigned char *contents = pieces && image->offsets ? big_array_alloc(size) : NULL;
    if (!contents) {
        free(pieces);
        snprintf(message, message_size,
                 "out of memory copying %zu blocks of the heap", count);
        return -1;
    }
    copy_pieces(contents, target->pid, pieces, count);
    for (size_t i = 0; i < count; i++)
        image->offsets[blocks[i]] = pieces[i].offset;
    free(pieces);
    big_array_free(image->contents, image->contents_size);
    image->contents = contents;
    image->contents_size = size;
    return 0;
}

void heap_image_free(struct heap_image *image)
{
    big_array_free(image->contents, image->contents_size);
    if (image->snapshot)
        big_array_free(image->offsets, (image->snapshot->block_count + 1) *
                                           sizeof(*image->offsets));
    big_array_free(image->granule_first, image->granule_count * sizeof(size_t));
    memset(image, 0, sizeof(*image));
}

size_t heap_image_block_at(const struct heap_image *image, uint64_t address)
{
    if (address < image->low || address >= image->high)
        return SIZE_MAX;
    size_t granule = (size_t)((address - image->low) >> image->granule_shift);
    const struct heap_block *blocks = image->snapshot->blocks;
    /* The holder, if any, is the last block starting at or before
     * address, at or after the granule's first. */
    size_t low = image->granule_first[granule];
    size_t high = granule + 1 < image->granule_count
                      ? image->granule_first[granule + 1] + 1
                      : image->snapshot->block_count;
    if (high > image->snapshot->block_count)
        high = image->snapshot->block_count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (blocks[middle].address <= address)
            low = middle + 1;
        else
            high = middle;
    }
    if (low == 0)
        return SIZE_MAX;
    const struct heap_block *block = &blocks[low - 1];
    return address - block->address < block->size ? low - 1 : SIZE_MAX;
}
