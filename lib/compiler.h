/* Attributes and small helpers every file of the library uses. */
#ifndef MALLOCDEBUG_COMPILER_H
#define MALLOCDEBUG_COMPILER_H

#define MD_EXPORT __attribute__((visibility("default")))
#define MD_LIKELY(x) __builtin_expect(!!(x), 1)
#define MD_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MD_NOINLINE __attribute__((noinline))
#define MD_ALWAYS_INLINE inline __attribute__((always_inline))
#define MD_UNUSED __attribute__((unused))
#define MD_CACHE_LINE 64

#define MD_ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))
#define MD_IS_POWER_OF_TWO(x) ((x) != 0 && ((x) & ((x) - 1)) == 0)
#define MD_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
