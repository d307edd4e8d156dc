/*
 * The registry of the library's own mappings.  It changes only when a
 * table or record pool is mapped or unmapped, never on the allocation
 * fast path, so one lock and a linear search are enough.  The array grows
 * by doubling into a fresh mapping of its own (not listed: it holds
 * addresses of mappings, not of blocks).
 */
#include "config.h"
#include "compiler.h"
#include "lock.h"
#include "os_memory.h"
#include "own_mappings.h"

#include <string.h>
#include <sys/mman.h>

MD_EXPORT struct own_mappings mallocdebug_own_mappings;

static md_lock_t registry_lock = MD_LOCK_INITIALIZER;

static bool grow(struct own_mappings *list)
{
    uint64_t capacity = list->capacity ? list->capacity * 2 : 256;
    struct own_mapping *ranges = os_syscall_mmap(
        NULL, capacity * sizeof(*ranges), PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ranges == MAP_FAILED)
        return false;
    struct own_mapping *old = list->ranges;
    if (old)
        memcpy(ranges, old, list->count * sizeof(*ranges));
    /* A tool reads capacity and ranges of a stopped process: both are
     * consistent whenever no thread is in here. */
    list->ranges = ranges;
    uint64_t old_capacity = list->capacity;
    list->capacity = capacity;
    if (old)
        os_syscall_munmap(old, old_capacity * sizeof(*old));
    return true;
}

void own_mappings_add(void *address, size_t size)
{
    struct own_mappings *list = &mallocdebug_own_mappings;
    md_lock(&registry_lock);
    if (list->count < list->capacity || grow(list))
        list->ranges[list->count++] =
            (struct own_mapping){(uintptr_t)address, size};
    md_unlock(&registry_lock);
}

void own_mappings_remove(void *address)
{
    struct own_mappings *list = &mallocdebug_own_mappings;
    md_lock(&registry_lock);
    for (uint64_t i = 0; i < list->count; i++)
        if (list->ranges[i].address == (uintptr_t)address) {
            list->ranges[i] = list->ranges[--list->count];
            break;
        }
    md_unlock(&registry_lock);
}

void own_mappings_force_lock(void)
{
    md_lock(&registry_lock);
}

void own_mappings_force_unlock(void)
{
    md_unlock(&registry_lock);
}

void own_mappings_reinit_lock(void)
{
    md_lock_init(&registry_lock);
}
