/*
 * The public zone functions of <malloc/malloc.h>.  Functions that take a
 * NULL zone where macOS allows it (check, print, statistics, pressure
 * relief) act on every registered zone.
 */
#include "config.h"
#include "malloc_debug.h"
#include "malloc_layer.h"
#include "os_memory.h"
#include "report.h"
#include "szone.h"
#include "zone_dispatch.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

MD_EXPORT malloc_logger_t *malloc_logger;

MD_EXPORT task_t mach_task_self(void) { return getpid(); }

MD_EXPORT malloc_zone_t *malloc_default_zone(void)
{
    return malloc_layer_zone();
}

MD_EXPORT malloc_zone_t *malloc_create_zone(vm_size_t start_size,
                                            unsigned flags)
{
    malloc_layer_zone();
    /* As on macOS, the program's zones get the debugging options too. */
    struct szone_debug debug;
    malloc_debug_zone_settings(&debug);
    malloc_zone_t *zone = szone_create(false, &debug);
    if (zone && !zone_registry_add(zone)) {
        zone->destroy(zone);
        zone = NULL;
    }
    return zone;
}

MD_EXPORT void malloc_destroy_zone(malloc_zone_t *zone)
{
    if (zone == malloc_layer_zone()) {
        report_error("malloc_destroy_zone: the default zone cannot be destroyed");
        return;
    }
    zone_registry_remove(zone);
    zone->destroy(zone);
}

MD_EXPORT void *malloc_zone_malloc(malloc_zone_t *zone, size_t size)
{
    return dispatch_malloc(zone, size);
}

MD_EXPORT void *malloc_zone_calloc(malloc_zone_t *zone, size_t count,
                                   size_t size)
{
    return dispatch_calloc(zone, count, size);
}

MD_EXPORT void *malloc_zone_valloc(malloc_zone_t *zone, size_t size)
{
    return dispatch_valloc(zone, size);
}

MD_EXPORT void *malloc_zone_realloc(malloc_zone_t *zone, void *pointer,
                                    size_t size)
{
    return dispatch_realloc(zone, pointer, size);
}

MD_EXPORT void *malloc_zone_memalign(malloc_zone_t *zone, size_t alignment,
                                     size_t size)
{
    if (!MD_IS_POWER_OF_TWO(alignment) || alignment < sizeof(void *)) {
        errno = EINVAL;
        return NULL;
    }
    if (zone->version < 5 || !zone->memalign) {
        errno = EINVAL;
        return NULL;
    }
    return dispatch_memalign(zone, alignment, size);
}

MD_EXPORT void malloc_zone_free(malloc_zone_t *zone, void *pointer)
{
    if (pointer)
        dispatch_free(zone, pointer);
}

MD_EXPORT unsigned malloc_zone_batch_malloc(malloc_zone_t *zone, size_t size,
                                            void **results, unsigned count)
{
    if (!zone->batch_malloc)
        return 0;
    unsigned made = zone->batch_malloc(zone, size, results, count);
    for (unsigned i = 0; i < made; i++)
        dispatch_log(LOG_ALLOCATE, zone, size, 0, results[i]);
    return made;
}

MD_EXPORT void malloc_zone_batch_free(malloc_zone_t *zone, void **pointers,
                                      unsigned count)
{
    for (unsigned i = 0; i < count; i++)
        dispatch_log(LOG_DEALLOCATE, zone, (uintptr_t)pointers[i], 0, NULL);
    if (zone->batch_free) {
        zone->batch_free(zone, pointers, count);
        return;
    }
    for (unsigned i = 0; i < count; i++)
        zone->free(zone, pointers[i]);
}

/* Exact: only the start of a block in use names its zone. */
MD_EXPORT malloc_zone_t *malloc_zone_from_ptr(const void *pointer)
{
    if (!pointer)
        return NULL;
    malloc_layer_zone();
    malloc_zone_t *zone = zone_registry_find(pointer);
    return zone && zone->size(zone, pointer) ? zone : NULL;
}

MD_EXPORT void malloc_zone_register(malloc_zone_t *zone)
{
    malloc_layer_zone();
    if (!zone_registry_add(zone))
        report_error("malloc_zone_register: no memory to register the zone");
}

MD_EXPORT void malloc_zone_unregister(malloc_zone_t *zone)
{
    zone_registry_remove(zone);
}

/* Names live in the library's own memory, outside any zone, so renaming
 * neither leaks into nor frees from the program's heap. */
#define ZONE_NAME_MAX 128
static struct os_pool zone_name_pool = {.object_size = ZONE_NAME_MAX};
static md_lock_t zone_name_lock = MD_LOCK_INITIALIZER;

MD_EXPORT void malloc_set_zone_name(malloc_zone_t *zone, const char *name)
{
    char *copy = NULL;
    if (name) {
        md_lock(&zone_name_lock);
        copy = os_pool_alloc(&zone_name_pool);
        md_unlock(&zone_name_lock);
        if (!copy)
            return;
        strncpy(copy, name, ZONE_NAME_MAX - 1);
    }
    zone->zone_name = copy;
}

MD_EXPORT const char *malloc_get_zone_name(malloc_zone_t *zone)
{
    return zone->zone_name;
}

MD_EXPORT size_t malloc_size(const void *pointer)
{
    if (!pointer)
        return 0;
    malloc_zone_t *zone = zone_registry_find(pointer);
    return zone ? zone->size(zone, pointer) : 0;
}

MD_EXPORT size_t malloc_good_size(size_t size)
{
    malloc_zone_t *zone = malloc_layer_zone();
    return zone->introspect->good_size(zone, size);
}

static void check_one_zone(malloc_zone_t *zone, void *all_ok)
{
    if (!zone->introspect->check(zone))
        *(boolean_t *)all_ok = 0;
}

MD_EXPORT boolean_t malloc_zone_check(malloc_zone_t *zone)
{
    malloc_layer_zone();
    if (zone)
        return zone->introspect->check(zone);
    boolean_t ok = 1;
    zone_registry_for_each(check_one_zone, &ok);
    return ok;
}

static void print_one_zone(malloc_zone_t *zone, void *verbose)
{
    zone->introspect->print(zone, *(boolean_t *)verbose);
}

MD_EXPORT void malloc_zone_print(malloc_zone_t *zone, boolean_t verbose)
{
    malloc_layer_zone();
    if (zone)
        zone->introspect->print(zone, verbose);
    else
        zone_registry_for_each(print_one_zone, &verbose);
}

MD_EXPORT void malloc_zone_print_ptr_info(void *pointer)
{
    malloc_zone_t *zone = pointer ? zone_registry_find(pointer) : NULL;
    size_t size = zone ? zone->size(zone, pointer) : 0;
    struct report_line line = {.length = 0};
    report_append_hex(&line, (uintptr_t)pointer);
    if (size) {
        report_append(&line, ": block of ");
        report_append_decimal(&line, size);
        report_append(&line, " bytes in zone ");
        report_append_hex(&line, (uintptr_t)zone);
        report_append(&line, " \"");
        report_append(&line, zone->zone_name ? zone->zone_name : "");
        report_append(&line, "\"");
    } else {
        report_append(&line, ": not the start of a block in use in any zone");
    }
    report_line_write(&line);
}

static void add_zone_statistics(malloc_zone_t *zone, void *total)
{
    malloc_statistics_t one, *stats = total;
    zone->introspect->statistics(zone, &one);
    stats->blocks_in_use += one.blocks_in_use;
    stats->size_in_use += one.size_in_use;
    stats->max_size_in_use += one.max_size_in_use;
    stats->size_allocated += one.size_allocated;
}

MD_EXPORT void malloc_zone_statistics(malloc_zone_t *zone,
                                      malloc_statistics_t *stats)
{
    malloc_layer_zone();
    if (zone) {
        zone->introspect->statistics(zone, stats);
        return;
    }
    memset(stats, 0, sizeof(*stats));
    zone_registry_for_each(add_zone_statistics, stats);
}

MD_EXPORT void malloc_zone_log(malloc_zone_t *zone, void *address)
{
    if (zone && zone->introspect->log)
        zone->introspect->log(zone, address);
}

struct relief {
    size_t goal;
    size_t released;
};

static void relieve_one_zone(malloc_zone_t *zone, void *context)
{
    struct relief *relief = context;
    relief->released += malloc_zone_pressure_relief(zone, relief->goal);
}

MD_EXPORT size_t malloc_zone_pressure_relief(malloc_zone_t *zone, size_t goal)
{
    malloc_layer_zone();
    if (zone)
        return zone->version >= 8 && zone->pressure_relief
                   ? zone->pressure_relief(zone, goal)
                   : 0;
    struct relief relief = {goal, 0};
    zone_registry_for_each(relieve_one_zone, &relief);
    return relief.released;
}

/* With a reader, the registry is read at this library's own addresses:
 * right for a process that maps it at the same place (a fork child);
 * other tools find the registry through the target's symbol table. */
MD_EXPORT kern_return_t malloc_get_all_zones(task_t task,
                                             memory_reader_t reader,
                                             vm_address_t **addresses,
                                             unsigned *count)
{
    malloc_layer_zone();
    if (!reader) {
        if (task != 0 && task != getpid())
            return KERN_INVALID_ARGUMENT;
        *addresses = (vm_address_t *)malloc_zones;
        *count = malloc_num_zones;
        return KERN_SUCCESS;
    }
    void *local;
    kern_return_t error = reader(task, (vm_address_t)&malloc_num_zones,
                                 sizeof(unsigned), &local);
    if (error)
        return error;
    unsigned remote_count = *(unsigned *)local;
    if ((error = reader(task, (vm_address_t)&malloc_zones, sizeof(void *),
                        &local)))
        return error;
    vm_address_t remote_array = *(vm_address_t *)local;
    if ((error = reader(task, remote_array,
                        remote_count * sizeof(vm_address_t), &local)))
        return error;
    *addresses = local;
    *count = remote_count;
    return KERN_SUCCESS;
}

MD_EXPORT struct mstats mstats(void)
{
    malloc_statistics_t stats;
    malloc_zone_statistics(NULL, &stats);
    return (struct mstats){
        .bytes_total = stats.size_allocated,
        .chunks_used = stats.blocks_in_use,
        .bytes_used = stats.size_in_use,
        .chunks_free = 0,
        .bytes_free = stats.size_allocated - stats.size_in_use,
    };
}

MD_EXPORT boolean_t scalable_zone_statistics(malloc_zone_t *zone,
                                             malloc_statistics_t *stats,
                                             unsigned which)
{
    if (!szone_is_szone(zone) || which > 3)
        return 0;
    szone_statistics_of_kind(szone_from_zone(zone), stats, which);
    return 1;
}
