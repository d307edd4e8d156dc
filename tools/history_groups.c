/*
 * Blocks grouped by identical stack id (-allBySize, -allByCount).  A
 * stack id names one whole stack, its thread included, so a group is
 * one call path of one thread.
 */
#include "config.h"

#include "history_internal.h"
#include "tool_hash.h"

#include <stdlib.h>

#define GROUPS_PER_SLAB 4096

struct group_entry {
    uint32_t stack;
    uint64_t count, bytes;
    UT_hash_handle hh;
};

struct history_grouping {
    struct group_entry *table;
    struct group_entry *recent; /* blocks in a row often share a stack */
    struct entry_pool pool;
    uint64_t total_count, total_bytes;
    bool out_of_memory; /* an add failed: finishing fails */
};

static struct group_entry *group_of(struct history_grouping *grouping, uint32_t stack)
{
    if (grouping->recent != NULL && grouping->recent->stack == stack)
        return grouping->recent;
    struct group_entry *group;
    HASH_FIND(hh, grouping->table, &stack, sizeof(stack), group);
    if (group == NULL) {
        if ((group = entry_pool_take(&grouping->pool)) == NULL)
            return NULL;
        group->stack = stack;
        tool_hash_out_of_memory = false;
        HASH_ADD(hh, grouping->table, stack, sizeof(group->stack), group);
        if (tool_hash_out_of_memory)
            return NULL;
        tool_hash_keep_sparse(grouping->table);
    }
    return grouping->recent = group;
}

static int compare_stacks(const struct history_group *a,
                          const struct history_group *b)
{
    return (a->stack > b->stack) - (a->stack < b->stack);
}

static int descending(uint64_t a, uint64_t b)
{
    return (a < b) - (a > b);
}

static int by_size(const void *x, const void *y)
{
    const struct history_group *a = x, *b = y;
    int c = descending(a->bytes, b->bytes);
    if (c == 0)
        c = descending(a->count, b->count);
    return c ? c : compare_stacks(a, b);
}

static int by_count(const void *x, const void *y)
{
    const struct history_group *a = x, *b = y;
    int c = descending(a->count, b->count);
    if (c == 0)
        c = descending(a->bytes, b->bytes);
    return c ? c : compare_stacks(a, b);
}

static bool list_groups(const struct history_grouping *grouping,
                        enum history_group_order order,
                        struct history_groups *groups)
{
    size_t count = HASH_COUNT(grouping->table);
    if (count == 0)
        return true;
    groups->groups = malloc(count * sizeof(*groups->groups));
    if (groups->groups == NULL)
        return false;
    for (const struct group_entry *entry = grouping->table; entry != NULL;
         entry = entry->hh.next)
        groups->groups[groups->count++] = (struct history_group){
            entry->stack, entry->count, entry->bytes};
    qsort(groups->groups, groups->count, sizeof(*groups->groups),
          order == HISTORY_BY_COUNT ? by_count : by_size);
    return true;
}

struct history_grouping *history_grouping_start(void)
{
    struct history_grouping *grouping = calloc(1, sizeof(*grouping));
    if (grouping != NULL)
        entry_pool_init(&grouping->pool, sizeof(struct group_entry),
                        GROUPS_PER_SLAB);
    return grouping;
}

bool history_grouping_add(struct history_grouping *grouping, uint32_t stack,
                          uint64_t size)
{
    if (grouping == NULL || grouping->out_of_memory)
        return false;
    struct group_entry *group = group_of(grouping, stack);
    if (group == NULL) {
        grouping->out_of_memory = true;
        return false;
    }
    group->count++;
    group->bytes += size;
    grouping->total_count++;
    grouping->total_bytes += size;
    return true;
}

bool history_grouping_finish(struct history_grouping *grouping,
                             enum history_group_order order,
                             struct history_groups *groups)
{
    *groups = (struct history_groups){0};
    bool done = grouping != NULL && !grouping->out_of_memory &&
                list_groups(grouping, order, groups);
    if (done) {
        groups->total_count = grouping->total_count;
        groups->total_bytes = grouping->total_bytes;
    } else {
        history_groups_free(groups);
    }
    if (grouping != NULL) {
        HASH_CLEAR(hh, grouping->table);
        entry_pool_release(&grouping->pool);
        free(grouping);
    }
    return done;
}

bool history_group_by_stack(const struct history *history,
                            const struct history_selection *blocks,
                            enum history_group_order order,
                            struct history_groups *groups)
{
    struct history_grouping *grouping = history_grouping_start();
    const struct history_event *events = history->malloc_events.events;
    for (size_t i = 0; i < blocks->count; i++) {
        const struct history_event *block = &events[blocks->events[i]];
        if (!history_grouping_add(grouping, block->stack, block->size))
            break;
    }
    return history_grouping_finish(grouping, order, groups);
}

void history_groups_free(struct history_groups *groups)
{
    free(groups->groups);
    *groups = (struct history_groups){0};
}
