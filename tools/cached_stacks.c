/*
 * Finding glibc's cached stacks: the list's head from one dead
 * descriptor, then each stack on the list, checked.
 */
#include "config.h"
#include "cached_stacks.h"
#include "glibc_threads.h"

#include <stdlib.h>
#include <string.h>

/* More nodes than glibc's lists hold in practice (its 40 MiB cache holds
 * 2560 stacks of the smallest size): a ring that has not closed by then
 * is being changed, or is no list. */
#define RING_LIMIT 65536

/* glibc puts a descriptor at the top of its stack, its start rounded
 * down to the alignment of the static TLS: 64 bytes, or more when a
 * module asks it, up to a page here. */
#define TOP_SLACK 4096

static bool read_word(const struct target *target, uint64_t address, uint64_t *word)
{
    return target_read(target, address, word, sizeof(*word));
}

static bool holds_stack_pointer(const struct target *target,
                                const struct process_mapping *mapping)
{
    for (size_t i = 0; i < target->thread_count; i++) {
        uint64_t sp = target->threads[i].registers.rsp;
        if (sp >= mapping->start && sp < mapping->end)
            return true;
    }
    return false;
}

/* Anonymous, readable and writable, right above an inaccessible guard,
 * and no thread running on it. */
static bool is_unused_stack_mapping(const struct target *target,
                                    const struct process_maps *maps,
                                    const struct process_mapping *mapping)
{
    size_t index = (size_t)(mapping - maps->mappings);
    const struct process_mapping *below = index > 0 ? mapping - 1 : NULL;
    return !mapping->path[0] && mapping->readable && mapping->writable &&
           !mapping->shared && below && below->end == mapping->start &&
           !below->path[0] && !below->readable && !below->writable &&
           !holds_stack_pointer(target, mapping);
}

/* A thread control block's first word is its own address. */
static bool is_control_block(const struct target *target, uint64_t address)
{
    uint64_t self;
    return read_word(target, address, &self) && self == address;
}

/* The descriptor at the top of `mapping`, or 0. */
static uint64_t descriptor_at_top(const struct target *target,
                                  const struct glibc_threads *layout,
                                  const struct process_mapping *mapping)
{
    uint64_t tried = 0;
    for (uint64_t align = 64; align <= TOP_SLACK; align *= 2) {
        uint64_t descriptor = (mapping->end - layout->descriptor_size) & ~(align - 1);
        if (descriptor != tried && descriptor >= mapping->start &&
            is_control_block(target, descriptor))
            return descriptor;
        tried = descriptor;
    }
    return 0;
}

/* The head of the list `node` is linked in: the one node of its ring in
 * _rtld_global; 0 when the ring does not close or has no such node. */
static uint64_t list_head(const struct target *target,
                          const struct glibc_threads *layout, uint64_t node)
{
    uint64_t head = 0, at = node;
    for (unsigned steps = 0; steps < RING_LIMIT; steps++) {
        if (at >= layout->rtld_global && at < layout->rtld_global_end) {
            if (head)
                return 0;
            head = at;
        }
        if (!read_word(target, at + layout->next_offset, &at))
            return 0;
        if (at == node)
            return head;
    }
    return 0;
}

/* The cache's head, from the first dead descriptor on a list that is not
 * one of the lists of threads in use; 0 when there is none. */
static uint64_t find_cache_head(const struct target *target,
                                const struct glibc_threads *layout,
                                const struct process_maps *maps)
{
    for (size_t i = 0; i < maps->count; i++) {
        const struct process_mapping *mapping = &maps->mappings[i];
        if (!is_unused_stack_mapping(target, maps, mapping))
            continue;
        uint64_t descriptor = descriptor_at_top(target, layout, mapping);
        uint64_t head = descriptor ? list_head(target, layout,
                                               descriptor + layout->list_offset)
                                   : 0;
        if (head && head != layout->stacks_used && head != layout->stacks_user)
            return head;
    }
    return 0;
}

/* The mapping of a cached descriptor's stack, when it is surely the
 * stack of a thread that is gone; NULL otherwise. */
static const struct process_mapping *dead_stack(const struct target *target,
                                                const struct glibc_threads *layout,
                                                const struct process_maps *maps,
                                                uint64_t descriptor)
{
    int32_t tid;
    if (!target_read(target, descriptor + layout->tid_offset, &tid, sizeof(tid)) ||
        tid > 0 || !is_control_block(target, descriptor))
        return NULL;
    const struct process_mapping *mapping = process_maps_find(maps, descriptor);
    uint64_t top = descriptor + layout->descriptor_size;
    if (!mapping || top > mapping->end || mapping->end - top >= TOP_SLACK ||
        !is_unused_stack_mapping(target, maps, mapping))
        return NULL;
    return mapping;
}

static bool add_stack(struct cached_stacks *found, size_t *capacity,
                      const struct cached_stack *stack)
{
    if (found->count == *capacity) {
        *capacity = *capacity ? *capacity * 2 : 16;
        struct cached_stack *grown = realloc(found->list, *capacity * sizeof(*grown));
        if (!grown)
            return false;
        found->list = grown;
    }
    found->list[found->count++] = *stack;
    return true;
}

/* Each dead stack on the list from `head`.  A list that does not close
 * again at its head gives none. */
static bool walk_cache(struct cached_stacks *found, const struct target *target,
                       const struct glibc_threads *layout,
                       const struct process_maps *maps, uint64_t head)
{
    size_t capacity = 0;
    uint64_t at = head;
    for (unsigned steps = 0; steps < RING_LIMIT; steps++) {
        if (!read_word(target, at + layout->next_offset, &at))
            break;
        if (at == head)
            return true;
        uint64_t descriptor = at - layout->list_offset;
        const struct process_mapping *mapping = dead_stack(target, layout, maps, descriptor);
        struct cached_stack stack = {.dtv_slot = descriptor + layout->dtv_offset};
        if (mapping) {
            stack.start = mapping->start;
            stack.end = mapping->end;
            if (!add_stack(found, &capacity, &stack))
                return false;
        }
    }
    found->count = 0;
    return true;
}

bool cached_stacks_find(struct cached_stacks *found, const struct target *target,
                        const struct process_maps *maps)
{
    memset(found, 0, sizeof(*found));
    struct glibc_threads layout;
    if (!glibc_threads_find(target, &layout))
        return true;
    uint64_t head = find_cache_head(target, &layout, maps);
    return !head || walk_cache(found, target, &layout, maps, head);
}

void cached_stacks_free(struct cached_stacks *found)
{
    free(found->list);
    memset(found, 0, sizeof(*found));
}
