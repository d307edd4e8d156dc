/*
 * When the heap of a stopped target may be read: no thread is running
 * the library's code, and no lock of any zone is held.  A lock held with
 * no thread in the library means a thread was stopped in a system call or
 * a C library function the allocator called (mmap, memcpy) halfway
 * through changing the zone.  Stopped threads waiting for a lock are in
 * the C library too, and the lock's holder is caught by one test or the
 * other.
 */
#include "config.h"
#include "guard_zone.h"
#include "szone.h"
#include "target.h"

#include <stdlib.h>

/* glibc's mutex: the lock word is not 0 while it is held. */
static bool mutex_held(const pthread_mutex_t *mutex)
{
    return mutex->__data.__lock != 0;
}

static bool szone_locked(const struct target *target, uint64_t address)
{
    struct szone zone;
    if (!target_read(target, address, &zone, sizeof(zone)) ||
        zone.magic != SZONE_MAGIC)
        return false; /* not a zone whose locks this tool knows */
    if (mutex_held(&zone.region_lock) || mutex_held(&zone.large_lock) ||
        mutex_held(&zone.thread_caches_lock))
        return true;
    unsigned count = szone_class_total(&zone);
    if (count > 4096)
        return false; /* damaged: the enumerator will say so */
    struct szone_class *classes = calloc(count ? count : 1, sizeof(*classes));
    bool locked = false;
    if (classes &&
        target_read(target, address + offsetof(struct szone, classes),
                    classes, count * sizeof(*classes)))
        for (unsigned i = 0; i < count && !locked; i++)
            locked = mutex_held(&classes[i].lock);
    free(classes);
    return locked;
}

static bool zone_locked(const struct target *target, uint64_t address)
{
    struct guard_zone guard;
    if (target_read(target, address, &guard, sizeof(guard)) &&
        guard.magic == GUARD_ZONE_MAGIC)
        return mutex_held(&guard.lock) ||
               szone_locked(target, (uint64_t)(uintptr_t)guard.fallback);
    return szone_locked(target, address);
}

static bool any_zone_locked(const struct target *target)
{
    uint64_t zones;
    unsigned count;
    if (!target_read(target, target->zones_address, &zones, sizeof(zones)) ||
        !target_read(target, target->zone_count_address, &count,
                     sizeof(count)))
        return false;
    for (unsigned i = 0; i < count && i < 1024; i++) {
        uint64_t zone;
        if (target_read(target, zones + i * sizeof(zone), &zone,
                        sizeof(zone)) &&
            zone_locked(target, zone))
            return true;
    }
    return false;
}

bool target_at_safe_point(const struct target *target)
{
    for (size_t i = 0; i < target->thread_count; i++) {
        uint64_t pc = target->threads[i].registers.rip;
        if (pc - target->library_code_start <
            target->library_code_end - target->library_code_start)
            return false;
    }
    return !any_zone_locked(target);
}
