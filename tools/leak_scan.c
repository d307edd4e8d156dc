/*
 * Marking, without copying the heap.  Blocks are read only once, when
 * their turn to be scanned comes, into one window buffer that is used
 * again and again: a gigabyte of heap is read through it, never held.
 *
 * The scan goes in waves over the blocks marked and not yet scanned, in
 * address order.  Each wave fills the window with runs of such blocks
 * (neighbours less than a page apart are read as one span, with what lies
 * between), reads it with one process_vm_readv, and scans the blocks in
 * it.  A block a scanned block points to is scanned at once when its
 * bytes are in the window already (a list allocated in one go is followed
 * to its end in one read); otherwise the next wave, or a later window of
 * this one, takes it.  Each wave only looks at the index range where
 * marked blocks wait.
 */
#include "config.h"
#include "big_array.h"
#include "leak_scan.h"
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

#define ROOT_CHUNK (1u << 20)
#define WINDOW_BYTES (8u << 20)
/* Blocks closer than this are read as one span, gap included. */
#define SPAN_GAP 4096

struct span {
    uint64_t address, size, offset; /* in the target; offset in the buffer */
};

struct window {
    unsigned char *buffer;
    struct span spans[IOV_MAX];
    size_t span_count;
    uint64_t used;
};

struct marking {
    struct leak_scan *scan;
    const struct heap_block *blocks;
    bool *scanned;
    size_t pending_low, pending_high; /* marked, unscanned blocks lie here */
    struct window window;
    size_t *in_window; /* blocks marked while their bytes are in the window */
    size_t in_window_count, in_window_capacity;
    bool out_of_memory;
};

static void note_pending(struct marking *marking, size_t block)
{
    if (block < marking->pending_low)
        marking->pending_low = block;
    if (block > marking->pending_high || marking->pending_high == SIZE_MAX)
        marking->pending_high = block;
}

/* The bytes of `block` when the window holds them, else NULL. */
static const unsigned char *window_bytes(const struct window *window,
                                         const struct heap_block *block)
{
    size_t low = 0, high = window->span_count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (window->spans[middle].address <= block->address)
            low = middle + 1;
        else
            high = middle;
    }
    if (low == 0)
        return NULL;
    const struct span *span = &window->spans[low - 1];
    if (block->address + block->size > span->address + span->size)
        return NULL;
    return window->buffer + span->offset + (block->address - span->address);
}

static void push_in_window(struct marking *marking, size_t block)
{
    if (marking->in_window_count == marking->in_window_capacity) {
        size_t capacity = marking->in_window_capacity ? marking->in_window_capacity * 2
                                                      : 4096;
        size_t *grown = realloc(marking->in_window, capacity * sizeof(*grown));
        if (!grown) {
            marking->out_of_memory = true;
            note_pending(marking, block); /* a later wave takes it */
            return;
        }
        marking->in_window = grown;
        marking->in_window_capacity = capacity;
    }
    marking->in_window[marking->in_window_count++] = block;
}

static void mark(struct marking *marking, size_t block, struct leak_reach from)
{
    marking->scan->reach[block] = from;
    if (marking->window.span_count &&
        window_bytes(&marking->window, &marking->blocks[block]))
        push_in_window(marking, block);
    else
        note_pending(marking, block);
}

static void scan_words(struct marking *marking, const unsigned char *bytes,
                       size_t size, struct leak_reach from)
{
    const struct heap_image *image = marking->scan->image;
    for (size_t at = 0; at + sizeof(uint64_t) <= size; at += sizeof(uint64_t)) {
        uint64_t word;
        memcpy(&word, bytes + at, sizeof(word));
        if (word < image->low || word >= image->high)
            continue;
        size_t block = heap_image_block_at(image, word);
        if (block != SIZE_MAX && !marking->scan->reach[block].reached)
            mark(marking, block, from);
    }
}

static void scan_block(struct marking *marking, size_t block,
                       const unsigned char *bytes)
{
    marking->scanned[block] = true;
    struct leak_reach from = {(uint32_t)block, false, true};
    scan_words(marking, bytes, marking->blocks[block].size, from);
    while (marking->in_window_count) {
        size_t next = marking->in_window[--marking->in_window_count];
        if (marking->scanned[next])
            continue;
        marking->scanned[next] = true;
        from.index = (uint32_t)next;
        scan_words(marking, window_bytes(&marking->window, &marking->blocks[next]),
                   marking->blocks[next].size, from);
    }
}

/* Reads the window's spans; a span the kernel will not give in one piece
 * is read a page at a time, zero where it fails. */
static void window_read(struct window *window, pid_t pid)
{
    struct iovec local[IOV_MAX], remote[IOV_MAX];
    for (size_t i = 0; i < window->span_count; i++) {
        local[i] = (struct iovec){window->buffer + window->spans[i].offset,
                                  window->spans[i].size};
        remote[i] = (struct iovec){(void *)(uintptr_t)window->spans[i].address,
                                   window->spans[i].size};
    }
    if (process_vm_readv(pid, local, window->span_count, remote,
                         window->span_count, 0) == (ssize_t)window->used)
        return;
    for (size_t i = 0; i < window->span_count; i++)
        target_read_or_zero(pid, window->spans[i].address, local[i].iov_base,
                            window->spans[i].size);
}

static bool waiting(const struct marking *marking, size_t block)
{
    return marking->scan->reach[block].reached && !marking->scanned[block];
}

/* Fills the window with waiting blocks from `first` up to `last`; returns
 * the index after the last one taken. */
static size_t window_fill(struct marking *marking, size_t first, size_t last)
{
    struct window *window = &marking->window;
    window->span_count = 0;
    window->used = 0;
    size_t i = first;
    for (; i <= last; i++) {
        if (!waiting(marking, i))
            continue;
        const struct heap_block *block = &marking->blocks[i];
        struct span *span = window->span_count ? &window->spans[window->span_count - 1]
                                                : NULL;
        uint64_t span_end = span ? span->address + span->size : 0;
        if (span && block->address >= span_end &&
            block->address - span_end < SPAN_GAP) {
            uint64_t grow = block->address + block->size - span_end;
            if (window->used + grow > WINDOW_BYTES)
                break;
            span->size += grow;
            window->used += grow;
            continue;
        }
        if (window->span_count == IOV_MAX ||
            (window->used + block->size > WINDOW_BYTES && window->used))
            break;
        window->spans[window->span_count++] =
            (struct span){block->address, block->size, window->used};
        window->used += block->size;
        if (window->used > WINDOW_BYTES)
            return i + 1; /* one block bigger than the window, alone */
    }
    return i;
}

/* A block bigger than the window gets a buffer of its own. */
static bool window_reserve(struct window *window, uint64_t *capacity)
{
    if (window->used <= *capacity)
        return true;
    unsigned char *bigger = big_array_resize(window->buffer, *capacity, window->used);
    if (!bigger)
        return false;
    window->buffer = bigger;
    *capacity = window->used;
    return true;
}

static void wave(struct marking *marking, pid_t pid, uint64_t *capacity)
{
    size_t first = marking->pending_low, last = marking->pending_high;
    marking->pending_low = SIZE_MAX;
    marking->pending_high = SIZE_MAX;
    for (size_t at = first; at <= last && !marking->out_of_memory;) {
        progress_note("scanning the heap", at, marking->scan->reach_count);
        size_t next = window_fill(marking, at, last);
        if (!window_reserve(&marking->window, capacity)) {
            marking->out_of_memory = true;
            break;
        }
        window_read(&marking->window, pid);
        for (size_t i = at; i < next; i++)
            if (waiting(marking, i)) {
                const unsigned char *bytes =
                    window_bytes(&marking->window, &marking->blocks[i]);
                if (bytes)
                    scan_block(marking, i, bytes);
            }
        marking->window.span_count = 0;
        at = next;
    }
}

static void scan_root(struct marking *marking, const struct target *target,
                      const struct leak_root *root, size_t index,
                      unsigned char *buffer)
{
    struct leak_reach from = {(uint32_t)index, true, true};
    if (root->kind == LEAK_ROOT_REGISTERS) {
        scan_words(marking, (const unsigned char *)root->words,
                   root->word_count * sizeof(uint64_t), from);
        return;
    }
    uint64_t start = (root->start + 7) & ~(uint64_t)7;
    for (uint64_t at = start; at < root->end; at += ROOT_CHUNK) {
        size_t size = root->end - at < ROOT_CHUNK ? root->end - at : ROOT_CHUNK;
        if (target_read(target, at, buffer, size))
            scan_words(marking, buffer, size, from);
        /* else a page the kernel will not give (a guard page) */
    }
}

static void count_leaks(struct leak_scan *scan)
{
    const struct heap_snapshot *snapshot = scan->image->snapshot;
    for (size_t i = 0; i < snapshot->block_count; i++)
        if (!scan->reach[i].reached) {
            scan->leaked_count++;
            scan->leaked_bytes += snapshot->blocks[i].size;
        }
}

int leak_scan_run(struct leak_scan *scan, const struct heap_image *image,
                  const struct target *target, const struct leak_roots *roots,
                  char *message, size_t message_size)
{
    memset(scan, 0, sizeof(*scan));
    scan->image = image;
    size_t count = image->snapshot->block_count;
    scan->reach = big_array_calloc(count * sizeof(*scan->reach));
    scan->reach_count = count;
    struct marking marking = {.scan = scan, .blocks = image->snapshot->blocks,
                              .pending_low = SIZE_MAX, .pending_high = SIZE_MAX};
    marking.scanned = big_array_calloc(count * sizeof(bool));
    uint64_t capacity = WINDOW_BYTES;
    marking.window.buffer = big_array_alloc(capacity);
    unsigned char *buffer = malloc(ROOT_CHUNK);
    bool ok = scan->reach && marking.scanned && marking.window.buffer && buffer;
    for (size_t i = 0; ok && i < roots->count; i++)
        scan_root(&marking, target, &roots->roots[i], i, buffer);
    while (ok && marking.pending_low != SIZE_MAX && !marking.out_of_memory)
        wave(&marking, target->pid, &capacity);
    ok = ok && !marking.out_of_memory;
    free(buffer);
    free(marking.in_window);
    big_array_free(marking.window.buffer, capacity);
    big_array_free(marking.scanned, count * sizeof(bool));
    if (!ok) {
        leak_scan_free(scan);
        snprintf(message, message_size, "out of memory scanning the heap");
        return -1;
    }
    count_leaks(scan);
    return 0;
}

void leak_scan_free(struct leak_scan *scan)
{
    big_array_free(scan->reach, scan->reach_count * sizeof(*scan->reach));
    memset(scan, 0, sizeof(*scan));
}
