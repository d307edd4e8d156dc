/*
 * <malloc/malloc.h>: the malloc zone API, source-compatible with macOS.
 *
 * A zone is a malloc_zone_t: a table of function pointers that allocate,
 * free and describe memory, plus a malloc_introspection_t that lets a
 * debugger or another process walk what the zone holds.  Code written
 * against the macOS header compiles unchanged against this one.
 *
 * Mach types become Linux ones: a task is a process id, and
 * mach_task_self() is the calling process.
 */
#ifndef MALLOCDEBUG_MALLOC_MALLOC_H
#define MALLOCDEBUG_MALLOC_MALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Mach types, as Linux types ------------------------------------- */

typedef pid_t task_t;
typedef uintptr_t vm_address_t;
typedef size_t vm_size_t;
typedef int kern_return_t;
typedef int boolean_t;

#ifndef KERN_SUCCESS
#define KERN_SUCCESS 0
#endif
#ifndef KERN_INVALID_ADDRESS
#define KERN_INVALID_ADDRESS 1
#endif
#ifndef KERN_PROTECTION_FAILURE
#define KERN_PROTECTION_FAILURE 2
#endif
#ifndef KERN_NO_SPACE
#define KERN_NO_SPACE 3
#endif
#ifndef KERN_INVALID_ARGUMENT
#define KERN_INVALID_ARGUMENT 4
#endif
#ifndef KERN_FAILURE
#define KERN_FAILURE 5
#endif
#ifndef KERN_RESOURCE_SHORTAGE
#define KERN_RESOURCE_SHORTAGE 6
#endif

/* The calling process, as a task. */
task_t mach_task_self(void);

/* ---- Ranges, readers and recorders ---------------------------------- */

typedef struct _vm_range_t {
    vm_address_t address;
    vm_size_t size;
} vm_range_t;

/* Blocks handed to the program. */
#define MALLOC_PTR_IN_USE_RANGE_TYPE 1
/* Memory the zone obtained from the kernel to carve blocks from. */
#define MALLOC_PTR_REGION_RANGE_TYPE 2
/* The zone's own bookkeeping. */
#define MALLOC_ADMIN_REGION_RANGE_TYPE 4
/* Zone-specific extension bits start here. */
#define MALLOC_ZONE_SPECIFIC_FLAGS 0xff00

/*
 * Copies `size` bytes at `remote_address` of `remote_task` somewhere the
 * caller can read, and stores that place in *local_memory.  The copy
 * must stay valid until the enumeration that asked for it returns.
 */
typedef kern_return_t memory_reader_t(task_t remote_task,
                                      vm_address_t remote_address,
                                      vm_size_t size, void **local_memory);

/* Receives `count` ranges of one `type` found by an enumerator. */
typedef void vm_range_recorder_t(task_t task, void *context, unsigned type,
                                 vm_range_t *ranges, unsigned count);

/* ---- Zones ------------------------------------------------------------ */

struct _malloc_zone_t;
typedef struct malloc_introspection_t malloc_introspection_t;

typedef struct _malloc_zone_t {
    void *reserved1; /* must be NULL, as on macOS */
    void *reserved2; /* must be NULL, as on macOS */
    size_t (*size)(struct _malloc_zone_t *zone, const void *ptr);
    void *(*malloc)(struct _malloc_zone_t *zone, size_t size);
    void *(*calloc)(struct _malloc_zone_t *zone, size_t num_items,
                    size_t size);
    void *(*valloc)(struct _malloc_zone_t *zone, size_t size);
    void (*free)(struct _malloc_zone_t *zone, void *ptr);
    void *(*realloc)(struct _malloc_zone_t *zone, void *ptr, size_t size);
    void (*destroy)(struct _malloc_zone_t *zone);
    const char *zone_name;
    unsigned (*batch_malloc)(struct _malloc_zone_t *zone, size_t size,
                             void **results, unsigned num_requested);
    void (*batch_free)(struct _malloc_zone_t *zone, void **to_be_freed,
                       unsigned num_to_be_freed);
    struct malloc_introspection_t *introspect;
    unsigned version;
    /* version >= 5 */
    void *(*memalign)(struct _malloc_zone_t *zone, size_t alignment,
                      size_t size);
    /* version >= 6 */
    void (*free_definite_size)(struct _malloc_zone_t *zone, void *ptr,
                               size_t size);
    /* version >= 8 */
    size_t (*pressure_relief)(struct _malloc_zone_t *zone, size_t goal);
    /* version >= 10 */
    boolean_t (*claimed_address)(struct _malloc_zone_t *zone, void *ptr);
} malloc_zone_t;

typedef struct malloc_statistics_t {
    unsigned blocks_in_use;
    size_t size_in_use;
    size_t max_size_in_use;
    size_t size_allocated;
} malloc_statistics_t;

struct malloc_introspection_t {
    kern_return_t (*enumerator)(task_t task, void *context,
                                unsigned type_mask, vm_address_t zone_address,
                                memory_reader_t reader,
                                vm_range_recorder_t recorder);
    size_t (*good_size)(malloc_zone_t *zone, size_t size);
    boolean_t (*check)(malloc_zone_t *zone);
    void (*print)(malloc_zone_t *zone, boolean_t verbose);
    void (*log)(malloc_zone_t *zone, void *address);
    void (*force_lock)(malloc_zone_t *zone);
    void (*force_unlock)(malloc_zone_t *zone);
    void (*statistics)(malloc_zone_t *zone, malloc_statistics_t *stats);
    boolean_t (*zone_locked)(malloc_zone_t *zone);
    boolean_t (*enable_discharge_checking)(malloc_zone_t *zone);
    void (*disable_discharge_checking)(malloc_zone_t *zone);
    void (*discharge)(malloc_zone_t *zone, void *memory);
    void *enumerate_discharged_pointers;
    void (*reinit_lock)(malloc_zone_t *zone);
};

/* ---- Zone functions --------------------------------------------------- */

malloc_zone_t *malloc_default_zone(void);
malloc_zone_t *malloc_create_zone(vm_size_t start_size, unsigned flags);
void malloc_destroy_zone(malloc_zone_t *zone);

void *malloc_zone_malloc(malloc_zone_t *zone, size_t size);
void *malloc_zone_calloc(malloc_zone_t *zone, size_t num_items, size_t size);
void *malloc_zone_valloc(malloc_zone_t *zone, size_t size);
void *malloc_zone_realloc(malloc_zone_t *zone, void *ptr, size_t size);
void *malloc_zone_memalign(malloc_zone_t *zone, size_t alignment,
                           size_t size);
void malloc_zone_free(malloc_zone_t *zone, void *ptr);

unsigned malloc_zone_batch_malloc(malloc_zone_t *zone, size_t size,
                                  void **results, unsigned num_requested);
void malloc_zone_batch_free(malloc_zone_t *zone, void **to_be_freed,
                            unsigned num);

malloc_zone_t *malloc_zone_from_ptr(const void *ptr);

void malloc_zone_register(malloc_zone_t *zone);
void malloc_zone_unregister(malloc_zone_t *zone);
void malloc_set_zone_name(malloc_zone_t *zone, const char *name);
const char *malloc_get_zone_name(malloc_zone_t *zone);

size_t malloc_size(const void *ptr);
size_t malloc_good_size(size_t size);

boolean_t malloc_zone_check(malloc_zone_t *zone);
void malloc_zone_print(malloc_zone_t *zone, boolean_t verbose);
void malloc_zone_print_ptr_info(void *ptr);
void malloc_zone_statistics(malloc_zone_t *zone, malloc_statistics_t *stats);
void malloc_zone_log(malloc_zone_t *zone, void *address);
size_t malloc_zone_pressure_relief(malloc_zone_t *zone, size_t goal);

/*
 * Fills *addresses with an array of `*count` zone addresses of `task`.
 * With a NULL reader the task must be the calling process.
 */
kern_return_t malloc_get_all_zones(task_t task, memory_reader_t reader,
                                   vm_address_t **addresses, unsigned *count);

/* Called on every heap error report: set a breakpoint here. */
void malloc_error_break(void);

struct mstats {
    size_t bytes_total;
    size_t chunks_used;
    size_t bytes_used;
    size_t chunks_free;
    size_t bytes_free;
};
struct mstats mstats(void);

/* The old scalable allocator's per-kind statistics: 0 tiny, 1 small,
 * 2 large, 3 huge.  Returns 0 for any other kind or a foreign zone. */
boolean_t scalable_zone_statistics(malloc_zone_t *zone,
                                   malloc_statistics_t *stats, unsigned which);

/* ---- malloc_logger ---------------------------------------------------- */

#define MALLOC_LOG_TYPE_ALLOCATE 2
#define MALLOC_LOG_TYPE_DEALLOCATE 4
#define MALLOC_LOG_TYPE_HAS_ZONE 8
#define MALLOC_LOG_TYPE_CLEARED 64

/*
 * Called after each allocation event.  For malloc, valloc and memalign:
 * (ALLOCATE|HAS_ZONE, zone, size, 0, result, 0); calloc adds CLEARED and
 * passes count*size; free: (DEALLOCATE|HAS_ZONE, zone, ptr, 0, 0, 0);
 * realloc: (ALLOCATE|DEALLOCATE|HAS_ZONE, zone, old, size, result, 0).
 */
typedef void(malloc_logger_t)(uint32_t type, uintptr_t arg1, uintptr_t arg2,
                              uintptr_t arg3, uintptr_t result,
                              uint32_t num_hot_frames_to_skip);
extern malloc_logger_t *malloc_logger;

#ifdef __cplusplus
}
#endif

#endif /* MALLOCDEBUG_MALLOC_MALLOC_H */
