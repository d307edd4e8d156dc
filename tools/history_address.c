/*
 * The events of the blocks at an address (malloc_history PID ADDRESS),
 * for many addresses: the allocations are sorted by address once, and a
 * tree of the highest end address over buckets of them finds every
 * block holding an address without walking back over all the blocks
 * below it (one large block would otherwise make every walk long).
 */
#include "config.h"

#include "history_internal.h"
#include "radix_sort.h"

#include <stdlib.h>

#define BUCKET 16

struct history_address_index {
    struct radix_pair *blocks; /* address -> allocation, by address */
    uint64_t *ends;            /* one past each block's last byte */
    size_t count;
    uint64_t *tree; /* node n covers nodes 2n, 2n+1; leaf b at leaves + b */
    size_t leaves;
    struct radix_pair *unknown_frees; /* address -> free, by address */
    size_t unknown_count;
};

void history_address_index_free(struct history_address_index *index)
{
    if (index == NULL)
        return;
    free(index->blocks);
    free(index->ends);
    free(index->tree);
    free(index->unknown_frees);
    free(index);
}

/* A block of size 0 holds its own address, so that it is found there. */
static uint64_t block_end(const struct history_event *event)
{
    uint64_t size = event->size ? event->size : 1;
    return event->address > UINT64_MAX - size ? UINT64_MAX
                                              : event->address + size;
}

static bool is_allocation(const struct history_event *event)
{
    return (event->type & MDLOG_EVENT_KIND_MASK) == MDLOG_EVENT_ALLOC;
}

static bool collect_pairs(const struct history_event_list *list,
                          struct history_address_index *index)
{
    size_t frees = 0;
    for (size_t i = 0; i < list->count; i++)
        if (is_allocation(&list->events[i]))
            index->count++;
        else if (list->events[i].marks & HISTORY_MARK_UNKNOWN_FREE)
            frees++;
    index->blocks = malloc((index->count + 1) * sizeof(*index->blocks));
    index->unknown_frees = malloc((frees + 1) * sizeof(*index->unknown_frees));
    if (index->blocks == NULL || index->unknown_frees == NULL)
        return false;
    size_t blocks = 0;
    for (size_t i = 0; i < list->count; i++) {
        const struct history_event *event = &list->events[i];
        struct radix_pair pair = {event->address, (uint32_t)i};
        if (is_allocation(event))
            index->blocks[blocks++] = pair;
        else if (event->marks & HISTORY_MARK_UNKNOWN_FREE)
            index->unknown_frees[index->unknown_count++] = pair;
    }
    return radix_sort_pairs(index->blocks, index->count) &&
           radix_sort_pairs(index->unknown_frees, index->unknown_count);
}

static uint64_t max64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static bool build_tree(const struct history_event_list *list,
                       struct history_address_index *index)
{
    index->ends = malloc((index->count + 1) * sizeof(*index->ends));
    size_t buckets = (index->count + BUCKET - 1) / BUCKET;
    for (index->leaves = 1; index->leaves < buckets;)
        index->leaves *= 2;
    index->tree = calloc(2 * index->leaves, sizeof(*index->tree));
    if (index->ends == NULL || index->tree == NULL)
        return false;
    for (size_t i = 0; i < index->count; i++) {
        index->ends[i] = block_end(&list->events[index->blocks[i].value]);
        uint64_t *leaf = &index->tree[index->leaves + i / BUCKET];
        *leaf = max64(*leaf, index->ends[i]);
    }
    for (size_t node = index->leaves - 1; node >= 1; node--)
        index->tree[node] = max64(index->tree[2 * node], index->tree[2 * node + 1]);
    return true;
}

static struct history_address_index *build_index(const struct history *history)
{
    struct history_address_index *index = calloc(1, sizeof(*index));
    if (index == NULL)
        return NULL;
    if (!collect_pairs(&history->malloc_events, index) ||
        !build_tree(&history->malloc_events, index)) {
        history_address_index_free(index);
        return NULL;
    }
    return index;
}

/* The first pair whose key is above `key` (or, `inclusive`, not below). */
static size_t search(const struct radix_pair *pairs, size_t count, uint64_t key,
                     bool inclusive)
{
    size_t low = 0, high = count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (pairs[middle].key < key || (!inclusive && pairs[middle].key == key))
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

struct found {
    uint32_t *events;
    size_t count, capacity;
    bool out_of_memory;
};

static void add(struct found *found, uint32_t event)
{
    if (found->count == found->capacity) {
        size_t capacity = found->capacity ? 2 * found->capacity : 16;
        uint32_t *events = realloc(found->events, capacity * sizeof(*events));
        if (events == NULL) {
            found->out_of_memory = true;
            return;
        }
        found->events = events;
        found->capacity = capacity;
    }
    found->events[found->count++] = event;
}

/* A block holding the address: its allocation, and the free that ended
 * it (a replacing allocation is found for itself, if it holds the
 * address too). */
static void add_block(const struct history_event_list *list,
                      struct found *found, uint32_t allocation)
{
    add(found, allocation);
    uint32_t end = list->events[allocation].partner;
    if (end != HISTORY_NONE && !is_allocation(&list->events[end]))
        add(found, end);
}

struct query {
    const struct history_event_list *list;
    const struct history_address_index *index;
    uint64_t address;
    size_t below; /* blocks [0, below) start at or before the address */
    struct found *found;
};

static void scan_bucket(const struct query *query, size_t bucket)
{
    size_t first = bucket * BUCKET;
    size_t last = first + BUCKET < query->below ? first + BUCKET : query->below;
    for (size_t i = first; i < last; i++)
        if (query->index->ends[i] > query->address)
            add_block(query->list, query->found, query->index->blocks[i].value);
}

/* Visits the subtrees that cover blocks starting at or before the
 * address and end after it. */
static void descend(const struct query *query, size_t node, size_t first_bucket,
                    size_t buckets)
{
    if (first_bucket * BUCKET >= query->below ||
        query->index->tree[node] <= query->address)
        return;
    if (node >= query->index->leaves) {
        scan_bucket(query, first_bucket);
        return;
    }
    descend(query, 2 * node, first_bucket, buckets / 2);
    descend(query, 2 * node + 1, first_bucket + buckets / 2, buckets / 2);
}

static int by_index(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

bool history_events_at_address(struct history *history, uint64_t address,
                               struct history_selection *events)
{
    *events = (struct history_selection){0};
    if (history->addresses == NULL &&
        (history->addresses = build_index(history)) == NULL)
        return false;
    const struct history_address_index *index = history->addresses;
    struct found found = {0};
    struct query query = {
        .list = &history->malloc_events,
        .index = index,
        .address = address,
        .below = search(index->blocks, index->count, address, false),
        .found = &found,
    };
    if (index->count > 0)
        descend(&query, 1, 0, index->leaves);
    for (size_t i = search(index->unknown_frees, index->unknown_count, address,
                           true);
         i < index->unknown_count && index->unknown_frees[i].key == address; i++)
        add(&found, index->unknown_frees[i].value);
    if (found.out_of_memory) {
        free(found.events);
        return false;
    }
    if (found.count > 1)
        qsort(found.events, found.count, sizeof(*found.events), by_index);
    events->events = found.events;
    events->count = found.count;
    return true;
}
