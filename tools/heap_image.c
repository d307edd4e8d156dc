/*
 * Copying the heap: process_vm_readv with up to IOV_MAX blocks per call,
 * so ten million blocks take ten thousand system calls, not ten million.
 * A call stops at the first block it cannot read; that block is zeroed
 * and the batch goes on after it.
 */
#include "config.h"
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

static void copy_batch(const struct heap_image *image, pid_t pid, size_t first,
                       size_t count)
{
    const struct heap_block *blocks = image->snapshot->blocks;
    struct iovec local[IOV_MAX], remote[IOV_MAX];
    while (count) {
        size_t n = count < IOV_MAX ? count : IOV_MAX, expected = 0;
        for (size_t i = 0; i < n; i++) {
            local[i] = (struct iovec){image->contents + image->offsets[first + i],
                                      blocks[first + i].size};
            remote[i] = (struct iovec){(void *)(uintptr_t)blocks[first + i].address,
                                       blocks[first + i].size};
            expected += blocks[first + i].size;
        }
        ssize_t got = process_vm_readv(pid, local, n, remote, n, 0);
        if (got == (ssize_t)expected) {
            first += n;
            count -= n;
            continue;
        }
        /* Skip the blocks read whole, zero the one that failed. */
        size_t done = 0, bytes = got > 0 ? (size_t)got : 0;
        while (done < n && bytes >= blocks[first + done].size)
            bytes -= blocks[first + done++].size;
        memset(local[done].iov_base, 0, local[done].iov_len);
        first += done + 1;
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
    image->granule_first = malloc(image->granule_count * sizeof(size_t));
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

int heap_image_build(struct heap_image *image, const struct target *target,
                     const struct heap_snapshot *snapshot, char *message,
                     size_t message_size)
{
    memset(image, 0, sizeof(*image));
    image->snapshot = snapshot;
    size_t count = snapshot->block_count;
    image->offsets = malloc((count + 1) * sizeof(*image->offsets));
    image->contents = malloc(snapshot->bytes ? snapshot->bytes : 1);
    if (!image->offsets || !image->contents || build_index(image) != 0) {
        heap_image_free(image);
        snprintf(message, message_size,
                 "out of memory copying the heap (%llu bytes in %zu blocks)",
                 (unsigned long long)snapshot->bytes, count);
        return -1;
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < count; i++) {
        image->offsets[i] = offset;
        offset += snapshot->blocks[i].size;
    }
    image->offsets[count] = offset;
    copy_batch(image, target->pid, 0, count);
    return 0;
}

void heap_image_free(struct heap_image *image)
{
    free(image->contents);
    free(image->offsets);
    free(image->granule_first);
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
