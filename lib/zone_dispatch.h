/*
 * Calls into a zone through its function pointers, followed (or, for a
 * free, preceded) by the malloc_logger call with Apple's arguments.
 * Both the zone API and the malloc entry points go through here, so a
 * program that replaces a zone's functions, or installs a logger, sees
 * every operation whichever way it was made.
 */
#ifndef MALLOCDEBUG_ZONE_DISPATCH_H
#define MALLOCDEBUG_ZONE_DISPATCH_H

#include <errno.h>
#include <malloc/malloc.h>

#include "compiler.h"
#include "malloc_debug.h"
#include "stacklog_fast_path.h"

#define LOG_ALLOCATE (MALLOC_LOG_TYPE_ALLOCATE | MALLOC_LOG_TYPE_HAS_ZONE)
#define LOG_DEALLOCATE (MALLOC_LOG_TYPE_DEALLOCATE | MALLOC_LOG_TYPE_HAS_ZONE)

/* The functions here are always inlined into the exported ones, whose
 * return address the stack logger's cache is looked up by. */
#define DISPATCH_INLINE static MD_ALWAYS_INLINE

/* The stack logger first, then the program's logger.  `return_slot` is
 * the exported function's STACKLOG_RETURN_SLOT(); `tag`, for a free, the
 * block's log tag when the caller has found it, else NULL. */
DISPATCH_INLINE void dispatch_log_tagged(uint32_t type, malloc_zone_t *zone,
                                         uintptr_t arg2, uintptr_t arg3,
                                         void *result, struct szone_log_tag *tag,
                                         uintptr_t return_slot)
{
    if (MD_UNLIKELY(stacklog_malloc_enabled))
        stacklog_record_tagged(type, zone, arg2, arg3, (uintptr_t)result, tag,
                               return_slot);
    malloc_logger_t *logger = malloc_logger;
    if (MD_UNLIKELY(logger != NULL))
        logger(type, (uintptr_t)zone, arg2, arg3, (uintptr_t)result, 0);
}

DISPATCH_INLINE void dispatch_log_from(uint32_t type, malloc_zone_t *zone,
                                       uintptr_t arg2, uintptr_t arg3,
                                       void *result, uintptr_t return_slot)
{
    dispatch_log_tagged(type, zone, arg2, arg3, result, NULL, return_slot);
}

DISPATCH_INLINE void dispatch_log(uint32_t type, malloc_zone_t *zone,
                                  uintptr_t arg2, uintptr_t arg3, void *result)
{
    dispatch_log_from(type, zone, arg2, arg3, result, STACKLOG_RETURN_SLOT());
}

/* A logger sees frees: the program's, or full stack logging (lite mode
 * does not record them). */
DISPATCH_INLINE bool dispatch_frees_logged(void)
{
    return MD_UNLIKELY(malloc_logger != NULL || stacklog_free_enabled);
}

/* Frees and reallocs of a pointer that is not a block in use are errors
 * the zone reports; as on macOS, they are not logged as events.  Only a
 * logger that sees frees needs the check. */
DISPATCH_INLINE bool dispatch_logs_block(malloc_zone_t *zone, void *pointer)
{
    return dispatch_frees_logged() && zone->size(zone, pointer);
}

/* A zone written by the program may fail without setting errno. */
DISPATCH_INLINE void *dispatch_result(void *result)
{
    if (MD_UNLIKELY(!result) && errno != ENOMEM && errno != EINVAL)
        errno = ENOMEM;
    return result;
}

/* With debugging options on: false when this allocation is to fail. */
DISPATCH_INLINE bool dispatch_allowed(void)
{
    return MD_LIKELY(!malloc_options.active) ||
           malloc_debug_allocation_allowed();
}

DISPATCH_INLINE void *dispatch_malloc(malloc_zone_t *zone, size_t size)
{
    void *result = dispatch_allowed() ? zone->malloc(zone, size)
                                      : NULL;
    dispatch_log(LOG_ALLOCATE, zone, size, 0, result);
    return dispatch_result(result);
}

DISPATCH_INLINE void *dispatch_calloc(malloc_zone_t *zone, size_t count,
                                      size_t size)
{
    void *result = dispatch_allowed() ? zone->calloc(zone, count, size) : NULL;
    dispatch_log(LOG_ALLOCATE | MALLOC_LOG_TYPE_CLEARED, zone, count * size,
                 0, result);
    return dispatch_result(result);
}

DISPATCH_INLINE void *dispatch_valloc(malloc_zone_t *zone, size_t size)
{
    void *result = dispatch_allowed() ? zone->valloc(zone, size)
                                      : NULL;
    dispatch_log(LOG_ALLOCATE, zone, size, 0, result);
    return dispatch_result(result);
}

DISPATCH_INLINE void *dispatch_memalign(malloc_zone_t *zone,
                                        size_t alignment, size_t size)
{
    void *result = dispatch_allowed() ? zone->memalign(zone, alignment, size)
                                      : NULL;
    dispatch_log(LOG_ALLOCATE, zone, size, 0, result);
    return dispatch_result(result);
}

DISPATCH_INLINE void *dispatch_realloc(malloc_zone_t *zone, void *pointer,
                                       size_t size)
{
    bool logged = dispatch_logs_block(zone, pointer);
    if (logged && stacklog_free_enabled)
        stacklog_realloc_begin(zone, (uintptr_t)pointer);
    void *result = dispatch_allowed() ? zone->realloc(zone, pointer, size)
                                      : NULL;
    if (logged) {
        dispatch_log(LOG_ALLOCATE | MALLOC_LOG_TYPE_DEALLOCATE, zone,
                     (uintptr_t)pointer, size, result);
        return dispatch_result(result);
    }
    /* No block was freed (a realloc of NULL, or lite mode, which does
     * not look): to the stack log, an allocation of `size`; to the
     * program's logger, a realloc of NULL is the realloc it is on macOS
     * (malloc_zone_realloc: realloc() makes it a malloc). */
    if (MD_UNLIKELY(stacklog_malloc_enabled) && result)
        stacklog_record(LOG_ALLOCATE, zone, size, 0, (uintptr_t)result,
                        STACKLOG_RETURN_SLOT());
    malloc_logger_t *logger = malloc_logger;
    if (MD_UNLIKELY(logger != NULL) && !pointer)
        logger(LOG_ALLOCATE | MALLOC_LOG_TYPE_DEALLOCATE, (uintptr_t)zone, 0,
               size, (uintptr_t)result, 0);
    return dispatch_result(result);
}

/* dispatch_free_default_zone's logged part, out of line: the stack
 * logger's fast path would take registers from every free. */
bool dispatch_free_default_zone_logged(struct szone *zone, void *pointer,
                                       unsigned class_index, uint8_t *state,
                                       uintptr_t return_slot);

/* The free of `pointer` made here, without a call into the zone, when
 * it is a block in use of the default zone (the only zone with thread
 * caches; the guard zone's delegate has none) whose free is still its
 * own, and only the stack logger watches frees, if anything does (no
 * program logger, no debugging option counting them): one look at the
 * region map, the stack logger's record first when it wants frees, then
 * the block into the thread's cache, or, when that has no room, the
 * zone's own free.  False, with nothing done, for the full path to take;
 * `return_slot` is the exported function's STACKLOG_RETURN_SLOT(). */
DISPATCH_INLINE bool dispatch_free_default_zone(void *pointer,
                                                uintptr_t return_slot)
{
    if (MD_UNLIKELY(malloc_logger != NULL || malloc_options.active))
        return false;
    struct szone_region *region = region_map_lookup((uintptr_t)pointer);
    if (MD_UNLIKELY(region == NULL))
        return false;
    struct szone *zone = region->zone;
    unsigned class_index;
    uint8_t *state;
    if (!zone->has_thread_caches || zone->basic.free != szone_free ||
        !(state = szone_region_block_state(region, (uintptr_t)pointer,
                                           &class_index)))
        return false;
    if (MD_UNLIKELY(stacklog_free_enabled))
        return dispatch_free_default_zone_logged(zone, pointer, class_index,
                                                 state, return_slot);
    return szone_thread_cache_free_in_use(class_index, pointer, state);
}

/* A free that a logger sees (zone_dispatch.c). */
void dispatch_free_logged(malloc_zone_t *zone, void *pointer,
                          uintptr_t return_slot);

DISPATCH_INLINE void dispatch_free(malloc_zone_t *zone, void *pointer)
{
    if (dispatch_frees_logged()) {
        dispatch_free_logged(zone, pointer, STACKLOG_RETURN_SLOT());
        return;
    }
    if (MD_UNLIKELY(malloc_options.active))
        malloc_debug_count_free();
    zone->free(zone, pointer);
}

#endif
