/*
 * The scalable zone's size classes.  Tiny blocks come in 16-byte steps up
 * to 1 KiB, small blocks in 512-byte steps up to 128 KiB; anything larger
 * is a large block on pages of its own.  Every class size is a multiple
 * of its quantum, so a block whose class size is a multiple of an
 * alignment is aligned to it (runs start on 64 KiB boundaries).
 */
#ifndef MALLOCDEBUG_SZONE_SIZE_CLASS_H
#define MALLOCDEBUG_SZONE_SIZE_CLASS_H

#include <stddef.h>
#include <stdint.h>

#define TINY_QUANTUM 16UL
#define TINY_MAX 1024UL
#define TINY_CLASS_COUNT (TINY_MAX / TINY_QUANTUM)
#define SMALL_QUANTUM 512UL
#define SMALL_MAX (128UL * 1024)
#define SMALL_CLASS_COUNT ((SMALL_MAX - TINY_MAX) / SMALL_QUANTUM)
#define SZONE_CLASS_COUNT (TINY_CLASS_COUNT + SMALL_CLASS_COUNT)

/* A run is one or more 64 KiB pages of a region holding blocks of one
 * class; a region is 64 such pages. */
#define RUN_PAGE_SHIFT 16
#define RUN_PAGE_SIZE (1UL << RUN_PAGE_SHIFT)
#define RUN_MAX_BLOCKS (RUN_PAGE_SIZE / TINY_QUANTUM)

enum szone_kind { SZONE_KIND_TINY, SZONE_KIND_SMALL, SZONE_KIND_COUNT };

static inline unsigned szone_size_to_class(size_t size)
{
    if (size <= TINY_MAX)
        return size ? (unsigned)((size - 1) / TINY_QUANTUM) : 0;
    return (unsigned)(TINY_CLASS_COUNT + (size - TINY_MAX - 1) / SMALL_QUANTUM);
}

static inline size_t szone_class_to_size(unsigned class_index)
{
    if (class_index < TINY_CLASS_COUNT)
        return (class_index + 1) * TINY_QUANTUM;
    return TINY_MAX + (class_index - TINY_CLASS_COUNT + 1) * SMALL_QUANTUM;
}

static inline enum szone_kind szone_class_kind(unsigned class_index)
{
    return class_index < TINY_CLASS_COUNT ? SZONE_KIND_TINY : SZONE_KIND_SMALL;
}

/* Pages of a run of this class: enough for eight blocks, at most 16. */
static inline unsigned szone_class_run_pages(unsigned class_index)
{
    size_t pages = (8 * szone_class_to_size(class_index) + RUN_PAGE_SIZE - 1)
                   >> RUN_PAGE_SHIFT;
    return pages > 16 ? 16 : (unsigned)pages;
}

#endif
