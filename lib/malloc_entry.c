/*
 * The allocation functions every program calls, with glibc's documented
 * semantics, served by the default zone through its function pointers
 * (so the classic technique of replacing default_zone->malloc works),
 * and free() of any pointer routed to the zone that owns it.
 */
#include "config.h"
#include "malloc_layer.h"
#include "report.h"
#include "zone_dispatch.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <malloc.h>

#define PAGE_SIZE_BYTES 4096UL

MD_EXPORT void *malloc(size_t size)
{
    return dispatch_malloc(malloc_layer_zone(), size);
}

MD_EXPORT void *calloc(size_t count, size_t size)
{
    return dispatch_calloc(malloc_layer_zone(), count, size);
}

MD_EXPORT void free(void *pointer)
{
    if (!pointer)
        return;
    if (MD_LIKELY(dispatch_free_default_zone(pointer, STACKLOG_RETURN_SLOT())))
        return;
    malloc_zone_t *zone = zone_registry_find(pointer);
    if (MD_UNLIKELY(!zone)) {
        report_pointer_error(pointer, "pointer being freed was not allocated");
        return;
    }
    dispatch_free(zone, pointer);
}

/* glibc's realloc(p, 0) frees p and returns NULL. */
MD_EXPORT void *realloc(void *pointer, size_t size)
{
    if (!pointer)
        return malloc(size);
    if (size == 0) {
        free(pointer);
        return NULL;
    }
    malloc_zone_t *zone = zone_registry_find(pointer);
    if (MD_UNLIKELY(!zone)) {
        report_pointer_error(pointer,
                             "pointer being realloc'd was not allocated");
        errno = EINVAL;
        return NULL;
    }
    return dispatch_realloc(zone, pointer, size);
}

MD_EXPORT void *reallocarray(void *pointer, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(pointer, total);
}

/* Inlined: the stack logger looks its cache up by the exported
 * function's return address (STACKLOG_RETURN_SLOT). */
static MD_ALWAYS_INLINE void *aligned_or_einval(size_t alignment, size_t size)
{
    if (!MD_IS_POWER_OF_TWO(alignment)) {
        errno = EINVAL;
        return NULL;
    }
    return dispatch_memalign(malloc_layer_zone(), alignment, size);
}

MD_EXPORT int posix_memalign(void **result, size_t alignment, size_t size)
{
    if (!MD_IS_POWER_OF_TWO(alignment) || alignment % sizeof(void *) != 0)
        return EINVAL;
    int saved_errno = errno;
    void *block = dispatch_memalign(malloc_layer_zone(), alignment, size);
    errno = saved_errno;
    if (!block)
        return ENOMEM;
    *result = block;
    return 0;
}

MD_EXPORT void *aligned_alloc(size_t alignment, size_t size)
{
    return aligned_or_einval(alignment, size);
}

/* memalign(0, n) is malloc(n), as in glibc. */
MD_EXPORT void *memalign(size_t alignment, size_t size)
{
    return aligned_or_einval(alignment ? alignment : 1, size);
}

MD_EXPORT void *valloc(size_t size)
{
    return dispatch_valloc(malloc_layer_zone(), size);
}

MD_EXPORT void *pvalloc(size_t size)
{
    size_t rounded = MD_ALIGN_UP(size ? size : 1, PAGE_SIZE_BYTES);
    if (rounded < size) {
        errno = ENOMEM;
        return NULL;
    }
    return dispatch_valloc(malloc_layer_zone(), rounded);
}

MD_EXPORT size_t malloc_usable_size(void *pointer)
{
    if (!pointer)
        return 0;
    malloc_zone_t *zone = zone_registry_find(pointer);
    return zone ? zone->size(zone, pointer) : 0;
}
