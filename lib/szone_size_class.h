/*
 * The scalable zone's size classes.  Tiny blocks come in 16-byte steps up
 * to 1 KiB.  Small blocks come in 512-byte steps up to 8 KiB, then in
 * eight steps per doubling up to 128 KiB (9 KiB, 10 KiB, ..., 16 KiB,
 * 18 KiB, ..., 112 KiB, 128 KiB); anything larger is a large block on
 * pages of its own.  Every class size is a multiple of its quantum, so a
 * block whose class size is a multiple of an alignment is aligned to it
 * (runs start on 64 KiB boundaries).
 *
 * Why the steps widen: each class has runs of its own, at least eight
 * blocks each.  With 512-byte steps all the way, a program whose blocks
 * spread over 1-64 KiB kept 126 classes' partial runs: 1.6 times glibc's
 * resident memory, and runs emptying and refilling in one class while
 * another grew.  Steps of an eighth of the size waste at most 12.5% of a
 * block and share runs among eight times the sizes (bench/README.md,
 * "Small size classes").
 */
#ifndef MALLOCDEBUG_SZONE_SIZE_CLASS_H
#define MALLOCDEBUG_SZONE_SIZE_CLASS_H

#include <stddef.h>
#include <stdint.h>

#define TINY_QUANTUM 16UL
#define TINY_MAX 1024UL
#define TINY_CLASS_COUNT (TINY_MAX / TINY_QUANTUM)
#define SMALL_QUANTUM 512UL
#define SMALL_MAX_SHIFT 17
#define SMALL_MAX (1UL << SMALL_MAX_SHIFT)
/* 512-byte steps up to 2^SMALL_FINE_SHIFT, then 2^SMALL_STEP_BITS steps
 * per doubling. */
#define SMALL_FINE_SHIFT 13
#define SMALL_FINE_CLASS_COUNT \
    (((1UL << SMALL_FINE_SHIFT) - TINY_MAX) / SMALL_QUANTUM)
#define SMALL_STEP_BITS 3
#define SMALL_CLASS_COUNT                                  \
    (SMALL_FINE_CLASS_COUNT +                              \
     ((SMALL_MAX_SHIFT - SMALL_FINE_SHIFT) << SMALL_STEP_BITS))
#define SZONE_CLASS_COUNT (TINY_CLASS_COUNT + SMALL_CLASS_COUNT)

/* A run is one or more 64 KiB pages of a region holding blocks of one
 * class; a region is 64 such pages. */
#define RUN_PAGE_SHIFT 16
#define RUN_PAGE_SIZE (1UL << RUN_PAGE_SHIFT)
#define RUN_MAX_BLOCKS (RUN_PAGE_SIZE / TINY_QUANTUM)

enum szone_kind { SZONE_KIND_TINY, SZONE_KIND_SMALL, SZONE_KIND_COUNT };

#define SMALL_FIRST_WIDE_CLASS (TINY_CLASS_COUNT + SMALL_FINE_CLASS_COUNT)

static inline unsigned szone_size_to_class(size_t size)
{
    if (size <= TINY_MAX)
        return size ? (unsigned)((size - 1) / TINY_QUANTUM) : 0;
    if (size <= (1UL << SMALL_FINE_SHIFT))
        return (unsigned)(TINY_CLASS_COUNT + (size - TINY_MAX - 1) / SMALL_QUANTUM);
    /* size - 1 lies in [2^doubling, 2^(doubling + 1)). */
    unsigned doubling = 63 - (unsigned)__builtin_clzll(size - 1);
    unsigned step = (unsigned)((size - 1) >> (doubling - SMALL_STEP_BITS)) &
                    ((1u << SMALL_STEP_BITS) - 1);
    return SMALL_FIRST_WIDE_CLASS +
           ((doubling - SMALL_FINE_SHIFT) << SMALL_STEP_BITS) + step;
}

static inline size_t szone_class_to_size(unsigned class_index)
{
    if (class_index < TINY_CLASS_COUNT)
        return (class_index + 1) * TINY_QUANTUM;
    if (class_index < SMALL_FIRST_WIDE_CLASS)
        return TINY_MAX + (class_index - TINY_CLASS_COUNT + 1) * SMALL_QUANTUM;
    unsigned wide = class_index - SMALL_FIRST_WIDE_CLASS;
    unsigned doubling = SMALL_FINE_SHIFT + (wide >> SMALL_STEP_BITS);
    size_t step = wide & ((1u << SMALL_STEP_BITS) - 1);
    return ((size_t)1 << doubling) +
           ((step + 1) << (doubling - SMALL_STEP_BITS));
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
