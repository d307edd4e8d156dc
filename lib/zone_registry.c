/*
 * The registry of zones, exported as malloc_zones / malloc_num_zones as
 * on macOS so that a tool reading another process can find it.  The
 * array is a mapping that doubles when full; readers in this process
 * take the registry lock, except zone_registry_find's fast path, which
 * never needs the array for the library's own zones.
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
static md_lock_t registry_lock = MD_LOCK_INITIALIZER;

static bool registry_grow(void)
{
    unsigned capacity = registry_capacity ? registry_capacity * 2 : 16;
    malloc_zone_t **zones = os_map(capacity * sizeof(*zones));
    if (!zones)
        return false;
    if (malloc_num_zones)
        memcpy(zones, malloc_zones, malloc_num_zones * sizeof(*zones));
    malloc_zone_t **old = malloc_zones;
    unsigned old_capacity = registry_capacity;
    __atomic_store_n(&malloc_zones, zones, __ATOMIC_RELEASE);
    registry_capacity = capacity;
    if (old)
        os_unmap(old, old_capacity * sizeof(*old));
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

/* Zones written by the program: ask each one, as macOS does. */
malloc_zone_t *zone_registry_find_foreign(const void *pointer)
{
    malloc_zone_t *found = NULL;
    md_lock(&registry_lock);
    for (unsigned i = 0; i < malloc_num_zones && !found; i++) {
        malloc_zone_t *zone = malloc_zones[i];
        if (!szone_is_szone(zone) && zone->size && zone->size(zone, pointer))
            found = zone;
    }
    md_unlock(&registry_lock);
    return found;
}

void zone_registry_force_lock(void) { md_lock(&registry_lock); }
void zone_registry_force_unlock(void) { md_unlock(&registry_lock); }
void zone_registry_reinit_lock(void) { md_lock_init(&registry_lock); }
