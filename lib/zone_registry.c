/*
 * The registry of zones, exported as malloc_zones / malloc_num_zones as
 * on macOS so that a tool reading another process can find it.  The
 * array is a mapping that doubles when full; an outgrown array stays
 * mapped, because malloc_get_all_zones hands it out.  Readers in this
 * process take the registry lock, except zone_registry_find's fast path,
 * which never needs the array for the library's scalable zones.  Zones
 * that are not scalable (the guard zone, the program's own) are asked
 * one by one through their size function, which for the guard zone is a
 * hash lookup: the walk is as long as the list of zones, not of blocks.
 * The lock is recursive: a zone written by the program may call back
 * into the library (malloc_size, free) from the functions the registry
 * calls.
 */
#include "config.h"
#include "malloc_layer.h"
#include "lock.h"
#include "os_memory.h"
#include "szone.h"

#include <string.h>

MD_EXPORT malloc_zone_t **malloc_zones;
MD_EXPORT unsigned malloc_num_zones;
static unsigned registry_capacity;
static md_lock_t registry_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

static bool registry_grow(void)
{
    unsigned capacity = registry_capacity ? registry_capacity * 2 : 16;
    malloc_zone_t **zones = os_map(capacity * sizeof(*zones));
    if (!zones)
        return false;
    if (malloc_num_zones)
        memcpy(zones, malloc_zones, malloc_num_zones * sizeof(*zones));
    __atomic_store_n(&malloc_zones, zones, __ATOMIC_RELEASE);
    registry_capacity = capacity;
    return true;
}

bool zone_registry_add(malloc_zone_t *zone)
{
    bool added = true;
    md_lock(&registry_lock);
    for (unsigned i = 0; i < malloc_num_zones; i++)
        if (malloc_zones[i] == zone)
            goto out;
    if (malloc_num_zones == registry_capacity && !registry_grow())
        added = false;
    else
        malloc_zones[malloc_num_zones++] = zone;
out:
    md_unlock(&registry_lock);
    return added;
}

void zone_registry_remove(malloc_zone_t *zone)
{
    md_lock(&registry_lock);
    for (unsigned i = 0; i < malloc_num_zones; i++)
        if (malloc_zones[i] == zone) {
            memmove(&malloc_zones[i], &malloc_zones[i + 1],
                    (malloc_num_zones - i - 1) * sizeof(*malloc_zones));
            malloc_num_zones--;
            break;
        }
    md_unlock(&registry_lock);
}

struct szone *zone_registry_delegate;
malloc_zone_t *zone_registry_delegate_owner;

void zone_registry_set_delegate(struct szone *delegate, malloc_zone_t *owner)
{
    zone_registry_delegate_owner = owner;
    __atomic_store_n(&zone_registry_delegate, delegate, __ATOMIC_RELEASE);
}

/* Set while this thread asks the program's zones: a zone whose size()
 * calls back into malloc_size() or free() must not be asked again. */
static __thread bool asking_foreign_zones
    __attribute__((tls_model("initial-exec")));

/* Zones written by the program: ask each one, as macOS does. */
malloc_zone_t *zone_registry_find_foreign(const void *pointer)
{
    if (asking_foreign_zones)
        return NULL;
    malloc_zone_t *found = NULL;
    md_lock(&registry_lock);
    asking_foreign_zones = true;
    for (unsigned i = 0; i < malloc_num_zones && !found; i++) {
        malloc_zone_t *zone = malloc_zones[i];
        if (!szone_is_szone(zone) && zone->size && zone->size(zone, pointer))
            found = zone;
    }
    asking_foreign_zones = false;
    md_unlock(&registry_lock);
    return found;
}

void zone_registry_for_each(void (*action)(malloc_zone_t *zone, void *context),
                            void *context)
{
    md_lock(&registry_lock);
    for (unsigned i = 0; i < malloc_num_zones; i++)
        action(malloc_zones[i], context);
    md_unlock(&registry_lock);
}

void zone_registry_force_lock(void) { md_lock(&registry_lock); }
void zone_registry_force_unlock(void) { md_unlock(&registry_lock); }

void zone_registry_reinit_lock(void)
{
    pthread_mutexattr_t recursive;
    pthread_mutexattr_init(&recursive);
    pthread_mutexattr_settype(&recursive, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&registry_lock, &recursive);
    pthread_mutexattr_destroy(&recursive);
}
