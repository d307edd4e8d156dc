/*
 * The history's event arrays: one index per event, held in 32 bits.
 */
#include "config.h"

#include "big_array.h"
#include "history_internal.h"

/* Indexes run up to HISTORY_NONE, which names none. */
#define LIST_MAX ((size_t)HISTORY_NONE)

bool history_event_list_reserve(struct history_event_list *list,
                                size_t capacity)
{
    if (capacity > LIST_MAX)
        capacity = LIST_MAX;
    if (capacity <= list->capacity)
        return true;
    struct history_event *events =
        big_array_resize(list->events, list->capacity * sizeof(*events),
                         capacity * sizeof(*events));
    if (events == NULL)
        return false;
    list->events = events;
    list->capacity = capacity;
    return true;
}

uint32_t history_event_list_append(struct history_event_list *list,
                                   const struct log_reader_event *event)
{
    if (list->count == list->capacity &&
        (list->count == LIST_MAX ||
         !history_event_list_reserve(list, list->capacity < 1024
                                               ? 1024
                                               : 2 * list->capacity)))
        return HISTORY_NONE;
    uint32_t index = (uint32_t)list->count++;
    list->events[index] = (struct history_event){
        .order = event->order,
        .address = event->address,
        .size = event->size,
        .stack = event->stack,
        .thread = event->thread,
        .partner = HISTORY_NONE,
        .type = (uint8_t)event->type,
    };
    return index;
}

void history_event_list_free(struct history_event_list *list)
{
    big_array_free(list->events, list->capacity * sizeof(*list->events));
    *list = (struct history_event_list){0};
}

const struct history_event *history_events(const struct history *history,
                                           size_t *count)
{
    *count = history->malloc_events.count;
    return history->malloc_events.events;
}

const struct history_event *history_vm_events(const struct history *history,
                                              size_t *count)
{
    *count = history->vm_events.count;
    return history->vm_events.events;
}
