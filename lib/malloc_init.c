/*
 * Start-up and fork.  The first allocation may come from the dynamic
 * loader before any constructor has run, so the default zone is built on
 * first use, from mappings alone.  Across fork every zone is locked, so
 * the child inherits consistent heaps; the child then re-initialises the
 * locks instead of unlocking what other threads held.
 */
#include "config.h"
#include "malloc_debug.h"
#include "guard_zone.h"
#include "malloc_layer.h"
#include "options.h"
#include "own_mappings.h"
#include "report.h"
#include "stacklog.h"
#include "szone.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <unistd.h>

malloc_zone_t *malloc_layer_default_zone;
static int initialization_started;

static malloc_zone_t *scalable_default_zone_create(void)
{
    struct szone_debug debug;
    malloc_debug_zone_settings(&debug);
    malloc_zone_t *zone = szone_create(true, &debug);
    if (zone)
        zone->zone_name = "DefaultMallocZone";
    return zone;
}

/* MallocGuardMalloc: the guard zone is the default zone; zones the
 * program creates stay scalable zones. */
static malloc_zone_t *guard_malloc_zone_create(void)
{
    const struct malloc_options *o = &malloc_options;
    struct guard_zone_config config = {
        .protect_before = o->guard_protect_before,
        .fill_space = o->guard_fill_space,
        .allow_reads = o->guard_allow_reads,
        .strict_size = o->guard_strict_size,
        .quarantine_bytes = o->guard_quarantine_bytes > SIZE_MAX
                                ? SIZE_MAX
                                : (size_t)o->guard_quarantine_bytes,
    };
    malloc_zone_t *zone = guard_zone_create(&config);
    if (!zone)
        return NULL;
    zone->zone_name = "GuardMallocZone";
    /* Its fallback's blocks are found in the scalable zones' tables,
     * and must be routed to the guard zone. */
    zone_registry_set_delegate(szone_from_zone(guard_zone_fallback(zone)), zone);
    return zone;
}

void malloc_layer_initialize(void)
{
    if (__atomic_exchange_n(&initialization_started, 1, __ATOMIC_ACQ_REL)) {
        while (!__atomic_load_n(&malloc_layer_default_zone, __ATOMIC_ACQUIRE))
            sched_yield();
        return;
    }
    options_read();
    stacklog_start();
    szone_thread_cache_setup();
    malloc_zone_t *zone = malloc_options.guard_malloc ? guard_malloc_zone_create()
                                                      : scalable_default_zone_create();
    if (!zone) {
        report_error("can't allocate the default zone: out of memory");
        _exit(127);
    }
    zone_registry_add(zone);
    __atomic_store_n(&malloc_layer_default_zone, zone, __ATOMIC_RELEASE);
}

static void for_each_zone(void (*action)(malloc_zone_t *zone))
{
    for (unsigned i = 0; i < malloc_num_zones; i++)
        action(malloc_zones[i]);
}

static void zone_lock_for_fork(malloc_zone_t *zone)
{
    if (zone->introspect && zone->introspect->force_lock)
        zone->introspect->force_lock(zone);
}

static void zone_unlock_after_fork(malloc_zone_t *zone)
{
    if (zone->introspect && zone->introspect->force_unlock)
        zone->introspect->force_unlock(zone);
}

static void zone_reinit_after_fork(malloc_zone_t *zone)
{
    if (zone->version >= 9 && zone->introspect && zone->introspect->reinit_lock)
        zone->introspect->reinit_lock(zone);
    else
        zone_unlock_after_fork(zone);
}

static void fork_prepare(void)
{
    stacklog_force_lock();
    zone_registry_force_lock();
    for_each_zone(zone_lock_for_fork);
    szone_large_force_lock();
    own_mappings_force_lock();
}

static void fork_parent(void)
{
    own_mappings_force_unlock();
    szone_large_force_unlock();
    for_each_zone(zone_unlock_after_fork);
    zone_registry_force_unlock();
    stacklog_force_unlock();
}

static void fork_child(void)
{
    own_mappings_reinit_lock();
    szone_large_reinit_lock();
    for_each_zone(zone_reinit_after_fork);
    zone_registry_reinit_lock();
    stacklog_fork_child();
}

__attribute__((constructor)) static void malloc_layer_constructor(void)
{
    malloc_layer_zone();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    stacklog_constructor();
}
