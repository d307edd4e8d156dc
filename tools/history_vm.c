/*
 * The memory a program mapped itself (MallocStackLogging=vm or full),
 * apart from malloc blocks: mappings are cut and replaced by ranges of
 * pages, so they are kept as a sorted list of disjoint regions rather
 * than blocks at addresses.  Programs map little compared with what they
 * allocate, so the list is plain arrays.
 */
#include "config.h"

#include "history_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct region_list {
    struct history_region *regions;
    size_t count, capacity;
};

struct page_range {
    uint64_t start, end;
};

/* What the kernel maps or unmaps for (address, size): whole pages.  The
 * log does not say the process's page size; the tools run where it ran. */
static struct page_range pages_of(const struct history_event *event)
{
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t start = event->address & ~(page - 1);
    uint64_t end = event->address + event->size;
    if (end < event->address || end > UINT64_MAX - (page - 1))
        end = UINT64_MAX & ~(page - 1);
    else
        end = (end + page - 1) & ~(page - 1);
    return (struct page_range){start, end};
}

/* The first region ending after `address`. */
static size_t first_after(const struct region_list *list, uint64_t address)
{
    size_t low = 0, high = list->count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        const struct history_region *region = &list->regions[middle];
        if (region->address + region->size <= address)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

static bool insert_at(struct region_list *list, size_t at,
                      struct history_region region)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? 2 * list->capacity : 64;
        struct history_region *regions =
            realloc(list->regions, capacity * sizeof(*regions));
        if (regions == NULL)
            return false;
        list->regions = regions;
        list->capacity = capacity;
    }
    memmove(&list->regions[at + 1], &list->regions[at],
            (list->count - at) * sizeof(*list->regions));
    list->regions[at] = region;
    list->count++;
    return true;
}

static void remove_at(struct region_list *list, size_t at)
{
    memmove(&list->regions[at], &list->regions[at + 1],
            (list->count - at - 1) * sizeof(*list->regions));
    list->count--;
}

/* Takes `range` out of every region, keeping what lies on either side. */
static bool cut(struct region_list *list, struct page_range range)
{
    size_t i = first_after(list, range.start);
    while (i < list->count && list->regions[i].address < range.end) {
        struct history_region *region = &list->regions[i];
        uint64_t start = region->address, end = start + region->size;
        bool left = start < range.start, right = end > range.end;
        if (left && right) {
            struct history_region rest = {range.end, end - range.end,
                                          region->event};
            region->size = range.start - start;
            return insert_at(list, i + 1, rest);
        }
        if (left) {
            region->size = range.start - start;
            i++;
        } else if (right) {
            region->address = range.end;
            region->size = end - range.end;
            return true;
        } else {
            remove_at(list, i);
        }
    }
    return true;
}

static bool apply(struct region_list *list, const struct history_event *events,
                  uint32_t index)
{
    const struct history_event *event = &events[index];
    struct page_range range = pages_of(event);
    if (range.end <= range.start)
        return true; /* a size of 0: the call failed */
    if (!cut(list, range))
        return false;
    if ((event->type & MDLOG_EVENT_KIND_MASK) != MDLOG_EVENT_VM_MAP)
        return true;
    struct history_region region = {range.start, range.end - range.start, index};
    return insert_at(list, first_after(list, range.start), region);
}

bool history_vm_regions_at(const struct history *history, uint64_t order,
                           struct history_region **regions, size_t *count)
{
    const struct history_event_list *vm = &history->vm_events;
    struct region_list list = {0};
    for (size_t i = 0; i < vm->count && vm->events[i].order <= order; i++)
        if (!apply(&list, vm->events, (uint32_t)i)) {
            free(list.regions);
            return false;
        }
    *regions = list.regions;
    *count = list.count;
    return true;
}

bool history_vm_events_at_address(const struct history *history,
                                  uint64_t address,
                                  struct history_selection *events)
{
    const struct history_event_list *vm = &history->vm_events;
    *events = (struct history_selection){0};
    for (size_t i = 0; i < vm->count; i++) {
        struct page_range range = pages_of(&vm->events[i]);
        if (address < range.start || address >= range.end)
            continue;
        if (events->count % 16 == 0) {
            uint32_t *grown = realloc(events->events, (events->count + 16) *
                                                          sizeof(*grown));
            if (grown == NULL) {
                history_selection_free(events);
                return false;
            }
            events->events = grown;
        }
        events->events[events->count++] = (uint32_t)i;
    }
    return true;
}
