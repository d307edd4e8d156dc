#include "config.h"
#include "os_memory.h"
#include "compiler.h"
#include "own_mappings.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

/* Cleared when the kernel cannot name mappings (before Linux 5.17, or
 * built without CONFIG_ANON_VMA_NAME): no use asking again. */
static bool kernel_names_mappings = true;

/* The library's anonymous mappings show as [anon:mallocdebug] in
 * /proc/PID/maps: leaks then knows them for the allocator's own memory,
 * which holds no roots, and a user reading the maps sees whose they are. */
static void name_mapping(void *address, size_t length)
{
    if (!__atomic_load_n(&kernel_names_mappings, __ATOMIC_RELAXED))
        return;
    if (syscall(SYS_prctl, PR_SET_VMA, PR_SET_VMA_ANON_NAME, address, length,
                OS_MAPPING_NAME) != 0)
        __atomic_store_n(&kernel_names_mappings, false, __ATOMIC_RELAXED);
}

void *os_syscall_mmap_unnamed(void *address, size_t length, int protection,
                              int flags, int fd, off_t offset)
{
    if (flags & MAP_FIXED)
        os_unmap_generation_advance_range(address, length);
    return (void *)syscall(SYS_mmap, address, length, protection, flags, fd,
                           offset);
}

void *os_syscall_mmap(void *address, size_t length, int protection, int flags,
                      int fd, off_t offset)
{
    void *result = os_syscall_mmap_unnamed(address, length, protection, flags,
                                           fd, offset);
    if (result != MAP_FAILED && (flags & MAP_ANONYMOUS))
        name_mapping(result, length);
    return result;
}

int os_syscall_munmap(void *address, size_t length)
{
    os_unmap_generation_advance_range(address, length);
    return (int)syscall(SYS_munmap, address, length);
}

void *os_syscall_mremap(void *old_address, size_t old_size, size_t new_size,
                        int flags, void *new_address)
{
    os_unmap_generation_advance_range(old_address, old_size);
    if (flags & MREMAP_FIXED)
        os_unmap_generation_advance_range(new_address, new_size);
    return (void *)syscall(SYS_mremap, old_address, old_size, new_size, flags,
                           new_address);
}

void os_protect_none(void *address, size_t size)
{
    /* Not through the exported mprotect, which would empty every
     * thread's stack cache for the library's own guard pages. */
    syscall(SYS_mprotect, address, size, PROT_NONE);
}

static void *os_map_with(void *hint, size_t size, int flags)
{
    void *p = os_syscall_mmap(hint, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* An inaccessible page on each side: a program that runs off the end of
 * a block mapped next to the library's tables faults there instead of
 * rewriting them. */
void *os_map(size_t size)
{
    size_t total = size + 2 * OS_PAGE_SIZE;
    if (total < size)
        return NULL;
    char *mapping = os_map_with(NULL, total, MAP_NORESERVE);
    if (!mapping)
        return NULL;
    os_protect_none(mapping, OS_PAGE_SIZE);
    os_protect_none(mapping + OS_PAGE_SIZE + MD_ALIGN_UP(size, OS_PAGE_SIZE),
                    OS_PAGE_SIZE);
    own_mappings_add(mapping + OS_PAGE_SIZE, MD_ALIGN_UP(size, OS_PAGE_SIZE));
    return mapping + OS_PAGE_SIZE;
}

void os_unmap_table(void *address, size_t size)
{
    own_mappings_remove(address);
    os_syscall_munmap((char *)address - OS_PAGE_SIZE,
           MD_ALIGN_UP(size, OS_PAGE_SIZE) + 2 * OS_PAGE_SIZE);
}

void *os_map_blocks(size_t size)
{
    return os_map_with(NULL, size, 0);
}

/* Where the last aligned mapping ended: the next one usually fits there
 * already aligned, which saves the over-map-and-trim dance. */
static uintptr_t next_aligned_hint;

void *os_map_aligned_at(size_t size, size_t alignment, size_t offset)
{
    void *hint = (void *)__atomic_load_n(&next_aligned_hint, __ATOMIC_RELAXED);
    void *p = os_map_with(hint, size, 0);
    if (!p)
        return NULL;
    if ((((uintptr_t)p + offset) & (alignment - 1)) != 0) {
        os_syscall_munmap(p, size);
        size_t span = size + alignment;
        if (span < size)
            return NULL;
        /* Reserve the span without charging it; only the kept part is
         * made accessible and charged. */
        char *raw = os_syscall_mmap(NULL, span, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (raw == MAP_FAILED)
            return NULL;
        char *start = (char *)MD_ALIGN_UP((uintptr_t)raw + offset, alignment) -
                      offset;
        if (start > raw)
            os_syscall_munmap(raw, (size_t)(start - raw));
        char *end = start + size;
        if (raw + span > end)
            os_syscall_munmap(end, (size_t)(raw + span - end));
        p = os_syscall_mmap(start, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p == MAP_FAILED) {
            os_syscall_munmap(start, size);
            return NULL;
        }
    }
    __atomic_store_n(&next_aligned_hint, (uintptr_t)p + size, __ATOMIC_RELAXED);
    return p;
}

void *os_map_aligned(size_t size, size_t alignment)
{
    return os_map_aligned_at(size, alignment, 0);
}

void os_unmap(void *address, size_t size)
{
    os_syscall_munmap(address, size);
}

void os_discard(void *address, size_t size)
{
    madvise(address, size, MADV_DONTNEED);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

int os_populate_write(void *address, size_t size)
{
    uintptr_t start = (uintptr_t)address & ~(OS_PAGE_SIZE - 1);
    uintptr_t end = ((uintptr_t)address + size + OS_PAGE_SIZE - 1) &
                    ~(OS_PAGE_SIZE - 1);
    int saved = errno; /* a malloc that succeeds leaves errno alone */
    int error = madvise((void *)start, end - start, MADV_POPULATE_WRITE) == 0
                    ? 0
                    : errno;
    errno = saved;
    return error;
}

#define OS_POOL_CHUNK (64 * 1024)

void *os_pool_alloc(struct os_pool *pool)
{
    if (pool->free_list) {
        void *object = pool->free_list;
        pool->free_list = *(void **)object;
        memset(object, 0, pool->object_size);
        return object;
    }
    if ((size_t)(pool->bump_end - pool->bump) < pool->object_size) {
        char *chunk = os_map(OS_POOL_CHUNK);
        if (!chunk)
            return NULL;
        pool->bump = chunk;
        pool->bump_end = chunk + OS_POOL_CHUNK;
    }
    void *object = pool->bump;
    pool->bump += pool->object_size;
    return object;
}

void os_pool_free(struct os_pool *pool, void *object)
{
    *(void **)object = pool->free_list;
    pool->free_list = object;
}
