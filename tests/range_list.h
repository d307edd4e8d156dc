/*
 * Ranges an enumerator reported, kept in a fixed array (a recorder may
 * run with the zone locked, so it must not allocate), sorted and looked
 * up by address.  Shared by enumerate_probe and the tests that walk it
 * from outside.
 */
#ifndef MALLOCDEBUG_RANGE_LIST_H
#define MALLOCDEBUG_RANGE_LIST_H

#include <malloc/malloc.h>

struct range_list {
    vm_range_t *ranges;
    unsigned capacity;
    unsigned count;
    unsigned dropped; /* past the capacity */
};

void range_list_add(struct range_list *list, const vm_range_t *ranges,
                    unsigned count);
void range_list_sort(struct range_list *list);
/* In a sorted list: the ranges at `address`, and the size of the first
 * in *size (0 when none). */
unsigned range_list_at(const struct range_list *list, vm_address_t address,
                       vm_size_t *size);
/* In sorted lists: the ranges of `list` with exactly one range of
 * `other` at their address. */
unsigned range_list_paired(const struct range_list *list,
                           const struct range_list *other);

#endif
