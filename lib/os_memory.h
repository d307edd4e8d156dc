/*
 * Memory straight from the kernel.  Everything the library keeps for
 * itself (zones, region descriptors, thread caches, large-block records)
 * lives in such mappings, never in memory the program can allocate.
 */
#ifndef MALLOCDEBUG_OS_MEMORY_H
#define MALLOCDEBUG_OS_MEMORY_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>

#define OS_PAGE_SIZE 4096UL

/* The system calls themselves.  The library exports mmap, munmap and
 * mremap to record the program's own mappings (stacklog_vm.c); its own
 * mappings must not go through them.  os_syscall_mmap names anonymous
 * mappings OS_MAPPING_NAME (where the kernel can): it is for the
 * library's own memory; the program's mappings are made unnamed. */
#define OS_MAPPING_NAME "mallocdebug"
void *os_syscall_mmap(void *address, size_t length, int protection, int flags,
                      int fd, off_t offset);
void *os_syscall_mmap_unnamed(void *address, size_t length, int protection,
                              int flags, int fd, off_t offset);
int os_syscall_munmap(void *address, size_t length);
void *os_syscall_mremap(void *old_address, size_t old_size, size_t new_size,
                        int flags, void *new_address);
/* Advanced by every unmapping, move or replacing of a mapping made
 * through the calls above: the library's own, and the program's
 * munmap, mremap and mmap, which the library exports (a block the
 * program used as a stack and freed, for instance).  Memory found
 * readable before may be gone since.  Also advanced by hand when pages
 * lose their read access.  Not seen: mappings the C library removes
 * inside itself (the stacks of threads that ended) and raw system
 * calls.  64 bits, so that it never comes back to a value a thread
 * remembers.  The latest advances keep their ranges
 * (os_unmap_generation.c). */
extern uint64_t os_unmap_generation_count;
static inline uint64_t os_unmap_generation(void)
{
    return __atomic_load_n(&os_unmap_generation_count, __ATOMIC_RELAXED);
}
/* For every mapping: a module unloaded, say. */
void os_unmap_generation_advance(void);
/* For the pages of [address, address + length). */
void os_unmap_generation_advance_range(const void *address, size_t length);
/* How many of the latest advances keep their range. */
#define OS_UNMAP_RANGES_KEPT 64
/* Whether the advance to `generation`, one of the latest
 * OS_UNMAP_RANGES_KEPT, may have touched [low, high): true when its
 * range is no longer known. */
bool os_unmap_may_touch(uint64_t generation, uintptr_t low, uintptr_t high);

/* Zero-filled read-write pages for the library's own sparse tables, or
 * NULL, between two guard pages.  Not charged against overcommit until
 * touched.  Given back with os_unmap_table. */
void *os_map(size_t size);
void os_unmap_table(void *address, size_t size);
/* Pages for the program's blocks, charged against overcommit as glibc's
 * are, so an impossible request fails here with ENOMEM instead of
 * succeeding and getting the process killed later. */
void *os_map_blocks(size_t size);
/* As os_map_blocks, at an address that is a multiple of `alignment`. */
void *os_map_aligned(size_t size, size_t alignment);
/* As os_map_aligned, with `offset` bytes before the aligned address:
 * room for a guard page in front. */
void *os_map_aligned_at(size_t size, size_t alignment, size_t offset);
/* Makes pages inaccessible: guard pages. */
void os_protect_none(void *address, size_t size);
void os_unmap(void *address, size_t size);
/* Gives the pages back; they read as zero when touched again. */
void os_discard(void *address, size_t size);
/* Faults in the pages of [address, address + size), about to be
 * written, in one system call rather than one fault each; in a shared
 * file mapping, also gives the file's holes there memory.  0, or the
 * error: EINVAL on kernels before 5.14, which cannot, and EFAULT or
 * ENOMEM when there is no memory to give (where a store would have
 * raised SIGBUS).  errno is left as it was. */
int os_populate_write(void *address, size_t size);

/*
 * A pool of fixed-size records carved from mappings, for the library's
 * own small bookkeeping objects.  Not thread-safe: callers hold a lock.
 */
struct os_pool {
    size_t object_size;
    void *free_list;
    char *bump;
    char *bump_end;
};
void *os_pool_alloc(struct os_pool *pool);
void os_pool_free(struct os_pool *pool, void *object);

#endif
