/*
 * Marking.  Roots are read from the target a megabyte at a time; blocks
 * come from the heap image.  A block is marked when first found and put
 * on a work list, so each block is scanned once however many pointers
 * lead to it.
 */
#include "config.h"
#include "leak_scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROOT_CHUNK (1u << 20)

struct work {
    size_t *blocks;
    size_t count, capacity;
    bool out_of_memory;
};

static void push(struct work *work, size_t block)
{
    if (work->count == work->capacity) {
        size_t capacity = work->capacity ? work->capacity * 2 : 4096;
        size_t *grown = realloc(work->blocks, capacity * sizeof(*grown));
        if (!grown) {
            work->out_of_memory = true;
            return;
        }
        work->blocks = grown;
        work->capacity = capacity;
    }
    work->blocks[work->count++] = block;
}

static void scan_words(struct leak_scan *scan, struct work *work,
                       const unsigned char *bytes, size_t size,
                       struct leak_reach from)
{
    const struct heap_image *image = scan->image;
    for (size_t at = 0; at + sizeof(uint64_t) <= size; at += sizeof(uint64_t)) {
        uint64_t word;
        memcpy(&word, bytes + at, sizeof(word));
        if (word < image->low || word >= image->high)
            continue;
        size_t block = heap_image_block_at(image, word);
        if (block == SIZE_MAX || scan->reach[block].reached)
            continue;
        scan->reach[block] = from;
        push(work, block);
    }
}

static void drain(struct leak_scan *scan, struct work *work)
{
    const struct heap_block *blocks = scan->image->snapshot->blocks;
    while (work->count) {
        size_t block = work->blocks[--work->count];
        struct leak_reach from = {(uint32_t)block, false, true};
        scan_words(scan, work, heap_image_bytes(scan->image, block),
                   blocks[block].size, from);
    }
}

static void scan_root(struct leak_scan *scan, struct work *work,
                      const struct target *target, const struct leak_root *root,
                      size_t index, unsigned char *buffer)
{
    struct leak_reach from = {(uint32_t)index, true, true};
    if (root->kind == LEAK_ROOT_REGISTERS) {
        scan_words(scan, work, (const unsigned char *)root->words,
                   root->word_count * sizeof(uint64_t), from);
        drain(scan, work);
        return;
    }
    uint64_t start = (root->start + 7) & ~(uint64_t)7;
    for (uint64_t at = start; at < root->end; at += ROOT_CHUNK) {
        size_t size = root->end - at < ROOT_CHUNK ? root->end - at : ROOT_CHUNK;
        if (!target_read(target, at, buffer, size))
            continue; /* a page the kernel will not give (a guard page) */
        scan_words(scan, work, buffer, size, from);
        drain(scan, work);
    }
}

int leak_scan_run(struct leak_scan *scan, const struct heap_image *image,
                  const struct target *target, const struct leak_roots *roots,
                  char *message, size_t message_size)
{
    memset(scan, 0, sizeof(*scan));
    scan->image = image;
    size_t count = image->snapshot->block_count;
    scan->reach = calloc(count ? count : 1, sizeof(*scan->reach));
    unsigned char *buffer = malloc(ROOT_CHUNK);
    struct work work = {0};
    if (scan->reach && buffer)
        for (size_t i = 0; i < roots->count && !work.out_of_memory; i++)
            scan_root(scan, &work, target, &roots->roots[i], i, buffer);
    free(buffer);
    free(work.blocks);
    if (!scan->reach || !buffer || work.out_of_memory) {
        leak_scan_free(scan);
        snprintf(message, message_size, "out of memory scanning the heap");
        return -1;
    }
    for (size_t i = 0; i < count; i++)
        if (!scan->reach[i].reached) {
            scan->leaked_count++;
            scan->leaked_bytes += image->snapshot->blocks[i].size;
        }
    return 0;
}

void leak_scan_free(struct leak_scan *scan)
{
    free(scan->reach);
    memset(scan, 0, sizeof(*scan));
}
