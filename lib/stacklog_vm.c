/*
 * MallocStackLogging=vm (and full): the memory the program maps itself.
 * mmap, munmap and mremap are exported here and make the system call
 * directly.  The library's own mappings (zones, tables, the log) do not
 * come through here (os_memory.c), and mappings made by the unwinder
 * while a thread records an event are not recorded.  A range given back
 * takes its place in the order before the call, and is recorded after it
 * when the call succeeded, so that the order is right when another
 * thread is handed the same addresses at once.
 *
 * Whatever the mode, memory taken away makes the threads forget their
 * cached stacks and the stack pages they know readable: one of them may
 * have stood on a stack the program just took away.  The system calls of
 * os_memory.c see to that for munmap, mremap and mmap over an existing
 * mapping; mprotect without read access is exported for that alone.
 */
#define _GNU_SOURCE
#include "config.h"
#include "os_memory.h"
#include "stacklog.h"

#include <stdarg.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Linux 5.7; older C library headers lack it. */
#ifdef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP_FLAG MREMAP_DONTUNMAP
#else
#define MREMAP_DONTUNMAP_FLAG 4
#endif

static bool recorded(void)
{
    return MD_UNLIKELY(stacklog_vm_enabled);
}

MD_EXPORT void *mmap(void *address, size_t length, int protection, int flags,
                     int fd, off_t offset)
{
    void *result = os_syscall_mmap_unnamed(address, length, protection, flags,
                                           fd, offset);
    if (result != MAP_FAILED && recorded())
        stacklog_vm_event(MDLOG_EVENT_VM_MAP, (uintptr_t)result, length, 0,
                          STACKLOG_RETURN_SLOT());
    return result;
}

MD_EXPORT void *mmap64(void *address, size_t length, int protection, int flags,
                       int fd, off_t offset)
    __attribute__((alias("mmap")));

MD_EXPORT int munmap(void *address, size_t length)
{
    bool logged = recorded();
    uint64_t order = logged ? stacklog_vm_begin() : 0;
    int result = os_syscall_munmap(address, length);
    /* A refused munmap (a misaligned address, a length of 0) unmapped
     * nothing. */
    if (logged && result == 0)
        stacklog_vm_event(MDLOG_EVENT_VM_UNMAP, (uintptr_t)address, length,
                          order, STACKLOG_RETURN_SLOT());
    return result;
}

MD_EXPORT int mprotect(void *address, size_t length, int protection)
{
    if (!(protection & PROT_READ))
        os_unmap_generation_advance_range(address, length);
    return (int)syscall(SYS_mprotect, address, length, protection);
}

MD_EXPORT void *mremap(void *old_address, size_t old_size, size_t new_size,
                       int flags, ...)
{
    void *new_address = NULL;
    if (flags & MREMAP_FIXED) {
        va_list arguments;
        va_start(arguments, flags);
        new_address = va_arg(arguments, void *);
        va_end(arguments);
    }
    bool logged = recorded();
    uint64_t order = logged ? stacklog_vm_begin() : 0;
    void *result = os_syscall_mremap(old_address, old_size, new_size, flags,
                                     new_address);
    if (!logged || result == MAP_FAILED)
        return result;
    /* MREMAP_DONTUNMAP, and a size of 0 (a second mapping of shared
     * memory), leave the old range mapped: only a new mapping is made,
     * ordered after the call, as mmap's are (its range may have been
     * given back by another thread since `order` was taken). */
    if ((flags & MREMAP_DONTUNMAP_FLAG) || old_size == 0) {
        stacklog_vm_event(MDLOG_EVENT_VM_MAP, (uintptr_t)result, new_size, 0,
                          STACKLOG_RETURN_SLOT());
        return result;
    }
    stacklog_vm_event(MDLOG_EVENT_VM_UNMAP | MDLOG_EVENT_REALLOC,
                      (uintptr_t)old_address, old_size, order,
                      STACKLOG_RETURN_SLOT());
    stacklog_vm_event(MDLOG_EVENT_VM_MAP | MDLOG_EVENT_REALLOC,
                      (uintptr_t)result, new_size, 0, STACKLOG_RETURN_SLOT());
    return result;
}
