/*
 * The malloc layer: the library's only code that knows it replaces the
 * system allocator.  It owns the default zone and the registry of zones,
 * and calls malloc_logger after each operation.
 */
#ifndef MALLOCDEBUG_MALLOC_LAYER_H
#define MALLOCDEBUG_MALLOC_LAYER_H

#include <malloc/malloc.h>
#include <stdbool.h>

#include "compiler.h"
#include "szone.h"

extern malloc_zone_t *malloc_layer_default_zone;

/* The registry, under the names macOS exports it by. */
extern malloc_zone_t **malloc_zones;
extern unsigned malloc_num_zones;

/* Sets the library up on first use; safe before any constructor ran. */
void malloc_layer_initialize(void);

static inline malloc_zone_t *malloc_layer_zone(void)
{
    if (MD_UNLIKELY(!malloc_layer_default_zone))
        malloc_layer_initialize();
    return malloc_layer_default_zone;
}

malloc_zone_t *zone_registry_find_foreign(const void *pointer);

/* An unregistered scalable zone whose blocks belong to another zone (the
 * guard zone's fallback), and that zone; NULL when there is none. */
extern struct szone *zone_registry_delegate;
extern malloc_zone_t *zone_registry_delegate_owner;
void zone_registry_set_delegate(struct szone *delegate, malloc_zone_t *owner);

/* The registered zone that owns `pointer` (a block start or any address
 * inside a zone's regions), or NULL. */
static inline malloc_zone_t *zone_registry_find(const void *pointer)
{
    struct szone *owner = szone_owner(pointer);
    if (MD_LIKELY(owner != NULL)) {
        if (MD_UNLIKELY(owner == __atomic_load_n(&zone_registry_delegate,
                                                 __ATOMIC_ACQUIRE)))
            return zone_registry_delegate_owner;
        return &owner->basic;
    }
    return zone_registry_find_foreign(pointer);
}
bool zone_registry_add(malloc_zone_t *zone);
void zone_registry_remove(malloc_zone_t *zone);
/* Calls `action` on every registered zone, under the registry lock. */
void zone_registry_for_each(void (*action)(malloc_zone_t *zone, void *context),
                            void *context);
void zone_registry_force_lock(void);
void zone_registry_force_unlock(void);
void zone_registry_reinit_lock(void);

#endif
