#include "config.h"
#include "range_list.h"

#include <stdlib.h>

void range_list_add(struct range_list *list, const vm_range_t *ranges,
                    unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        if (list->count == list->capacity)
            list->dropped++;
        else
            list->ranges[list->count++] = ranges[i];
    }
}

static int compare_address(const void *a, const void *b)
{
    const vm_range_t *x = a, *y = b;
    return x->address < y->address ? -1 : x->address > y->address;
}

void range_list_sort(struct range_list *list)
{
    qsort(list->ranges, list->count, sizeof(list->ranges[0]), compare_address);
}

/* The first range at or after `address`. */
static unsigned lower_bound(const struct range_list *list, vm_address_t address)
{
    unsigned low = 0, high = list->count;
    while (low < high) {
        unsigned middle = low + (high - low) / 2;
        if (list->ranges[middle].address < address)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

unsigned range_list_at(const struct range_list *list, vm_address_t address,
                       vm_size_t *size)
{
    unsigned first = lower_bound(list, address), n = 0;
    while (first + n < list->count && list->ranges[first + n].address == address)
        n++;
    *size = n ? list->ranges[first].size : 0;
    return n;
}

unsigned range_list_paired(const struct range_list *list,
                           const struct range_list *other)
{
    unsigned paired = 0;
    vm_size_t size;
    for (unsigned i = 0; i < list->count; i++)
        paired += range_list_at(other, list->ranges[i].address, &size) == 1;
    return paired;
}
