/*
 * The guard zone's system calls: laying a block out on its pages,
 * mapping it with its guard page, retiring it into the quarantine and
 * reviving a quarantined mapping for a new block.
 *
 * A new mapping starts with the guard's protection everywhere (PROT_NONE,
 * or PROT_READ with allow_reads) and only its data pages are then made
 * writable.  Private mappings are charged against overcommit when they
 * become writable, so an impossible request fails here with ENOMEM, and
 * the guard page is never charged.
 */
#include "config.h"
#include "guard_zone.h"
#include "compiler.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

/* Far above any mapping the kernel grants, and low enough that adding an
 * alignment and a few pages cannot overflow. */
#define GUARD_ZONE_MAX_REQUEST ((size_t)PTRDIFF_MAX / 4)

bool guard_zone_layout_for(const struct guard_zone_config *config,
                           size_t size, size_t alignment,
                           struct guard_zone_layout *layout)
{
    if (size > GUARD_ZONE_MAX_REQUEST || alignment > GUARD_ZONE_MAX_REQUEST)
        return false;
    /* Up to a page, an alignment is met by where the block sits in its
     * pages; beyond, the data pages themselves must start aligned, and
     * the block starts with them. */
    bool page_aligned_data = alignment > OS_PAGE_SIZE;
    size_t span = page_aligned_data ? size : MD_ALIGN_UP(size, alignment);
    layout->data_size = MD_ALIGN_UP(span, OS_PAGE_SIZE);
    layout->mapping_size = layout->data_size + OS_PAGE_SIZE;
    layout->alignment = page_aligned_data ? alignment : OS_PAGE_SIZE;
    if (config->protect_before) {
        layout->data_offset = OS_PAGE_SIZE;
        layout->block_offset = 0;
    } else {
        layout->data_offset = 0;
        layout->block_offset = page_aligned_data ? 0 : layout->data_size - span;
    }
    return true;
}

static int guard_protection(const struct guard_zone_config *config)
{
    return config->allow_reads ? PROT_READ : PROT_NONE;
}

/* Reserves `span` bytes with the guard's protection and keeps the part
 * of `layout->mapping_size` bytes whose data pages start aligned. */
static uintptr_t map_aligned_span(const struct guard_zone_config *config,
                                  const struct guard_zone_layout *layout)
{
    size_t extra = layout->alignment - OS_PAGE_SIZE;
    size_t span = layout->mapping_size + extra;
    char *raw = os_syscall_mmap(NULL, span, guard_protection(config),
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return 0;
    uintptr_t start = (uintptr_t)raw;
    uintptr_t data = MD_ALIGN_UP(start + layout->data_offset, layout->alignment);
    uintptr_t mapping = data - layout->data_offset;
    uintptr_t end = mapping + layout->mapping_size;
    if (mapping > start)
        os_syscall_munmap(raw, mapping - start);
    if (start + span > end)
        os_syscall_munmap((void *)end, start + span - end);
    return mapping;
}

uintptr_t guard_zone_pages_map(const struct guard_zone_config *config,
                               const struct guard_zone_layout *layout)
{
    uintptr_t mapping;
    if (layout->alignment > OS_PAGE_SIZE) {
        mapping = map_aligned_span(config, layout);
    } else {
        void *raw = os_syscall_mmap(NULL, layout->mapping_size, guard_protection(config),
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        mapping = raw == MAP_FAILED ? 0 : (uintptr_t)raw;
    }
    if (!mapping)
        return 0;
    if (mprotect((void *)(mapping + layout->data_offset), layout->data_size,
                 PROT_READ | PROT_WRITE) != 0) {
        os_syscall_munmap((void *)mapping, layout->mapping_size);
        return 0;
    }
    return mapping;
}

bool guard_zone_pages_revive(const struct guard_zone_config *config,
                             uintptr_t mapping,
                             const struct guard_zone_layout *layout)
{
    if (mprotect((void *)(mapping + layout->data_offset), layout->data_size,
                 PROT_READ | PROT_WRITE) != 0)
        return false;
    if (config->allow_reads) {
        uintptr_t guard = layout->data_offset ? mapping
                                              : mapping + layout->data_size;
        if (mprotect((void *)guard, OS_PAGE_SIZE, PROT_READ) != 0) {
            mprotect((void *)(mapping + layout->data_offset), layout->data_size,
                     PROT_NONE);
            return false;
        }
    }
    return true;
}

/* A new PROT_NONE mapping laid over the old one, rather than mprotect
 * and MADV_DONTNEED: the kernel drops the pages all the same, in one
 * call, and the range becomes one mapping.  mprotect alone would leave
 * two, because data pages once written keep an anon_vma that the
 * never-touched guard page lacks, and such neighbours are not merged. */
void guard_zone_pages_retire(uintptr_t mapping, size_t mapping_size)
{
    void *replaced = os_syscall_mmap((void *)mapping, mapping_size, PROT_NONE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (replaced == MAP_FAILED) {
        /* Out of mappings or memory for the new one: the old one stays,
         * inaccessible and emptied, at the cost of a second mapping. */
        mprotect((void *)mapping, mapping_size, PROT_NONE);
        madvise((void *)mapping, mapping_size, MADV_DONTNEED);
    }
}

void guard_zone_pages_unmap(uintptr_t mapping, size_t mapping_size)
{
    os_syscall_munmap((void *)mapping, mapping_size);
}

size_t guard_zone_read_max_map_count(void)
{
    char text[32];
    int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return GUARD_ZONE_DEFAULT_MAX_MAP_COUNT;
    ssize_t length = read(fd, text, sizeof(text) - 1);
    close(fd);
    size_t count = 0;
    for (ssize_t i = 0; i < length && text[i] >= '0' && text[i] <= '9'; i++) {
        if (count > SIZE_MAX / 10 - 10)
            break;
        count = count * 10 + (size_t)(text[i] - '0');
    }
    return count ? count : GUARD_ZONE_DEFAULT_MAX_MAP_COUNT;
}
