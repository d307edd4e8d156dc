/*
 * Finding the roots: the target's mappings, less what is not the
 * program's own memory, cut into the ranges that remain.
 */
#include "config.h"
#include "cached_stacks.h"
#include "leak_roots.h"
#include "own_mappings.h"
#include "process_maps.h"

#include <errno.h>
#include <mallocdebug/stack_log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Below the stack pointer, the x86-64 ABI lets a function keep data it
 * still uses without moving the pointer. */
#define RED_ZONE 128

struct interval {
    uint64_t start, end;
};

struct intervals {
    struct interval *list;
    size_t count, capacity;
};

static bool intervals_add(struct intervals *set, uint64_t start, uint64_t end)
{
    if (start >= end)
        return true;
    if (set->count == set->capacity) {
        size_t capacity = set->capacity ? set->capacity * 2 : 256;
        struct interval *grown = realloc(set->list, capacity * sizeof(*grown));
        if (!grown)
            return false;
        set->list = grown;
        set->capacity = capacity;
    }
    set->list[set->count++] = (struct interval){start, end};
    return true;
}

static int by_start(const void *a, const void *b)
{
    const struct interval *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

static bool add_root(struct leak_roots *roots, size_t *capacity,
                     const struct leak_root *root)
{
    if (roots->count == *capacity) {
        *capacity = *capacity ? *capacity * 2 : 64;
        struct leak_root *grown = realloc(roots->roots, *capacity * sizeof(*grown));
        if (!grown)
            return false;
        roots->roots = grown;
    }
    roots->roots[roots->count++] = *root;
    return true;
}

static bool is_stack_log(const char *path)
{
    const char *base = strrchr(path, '/');
    size_t length = strlen(path);
    return base && strncmp(base + 1, MDLOG_FILE_PREFIX, strlen(MDLOG_FILE_PREFIX)) == 0 &&
           length > strlen(MDLOG_FILE_SUFFIX) &&
           strcmp(path + length - strlen(MDLOG_FILE_SUFFIX), MDLOG_FILE_SUFFIX) == 0;
}

static bool is_kernel_page(const char *path)
{
    return strcmp(path, "[vvar]") == 0 || strcmp(path, "[vdso]") == 0 ||
           strcmp(path, "[vsyscall]") == 0 || strcmp(path, "[vvar_vclock]") == 0;
}

/* The library's own mappings, as it lists them for the tools. */
static bool exclude_own_mappings(struct intervals *excluded,
                                 const struct target *target)
{
    struct own_mappings list;
    if (!target_read(target, target->own_mappings_address, &list, sizeof(list)))
        return false;
    if (!list.count || list.count > list.capacity || list.count > (1u << 24))
        return list.count == 0;
    struct own_mapping *ranges = malloc(list.count * sizeof(*ranges));
    bool ok = ranges && target_read(target, (uint64_t)(uintptr_t)list.ranges,
                                    ranges, list.count * sizeof(*ranges));
    for (uint64_t i = 0; ok && i < list.count; i++)
        ok = intervals_add(excluded, ranges[i].address,
                           ranges[i].address + ranges[i].size);
    free(ranges);
    return ok;
}

/* The heap's memory, the library and its .bss (the anonymous mapping
 * right after its file), the log, the kernel's pages. */
static bool exclude_not_program(struct intervals *excluded,
                                const struct process_maps *maps,
                                const struct heap_snapshot *snapshot)
{
    bool ok = true;
    for (size_t i = 0; i < snapshot->region_count && ok; i++)
        ok = intervals_add(excluded, snapshot->regions[i].address,
                           snapshot->regions[i].address + snapshot->regions[i].size);
    for (size_t i = 0; i < maps->count && ok; i++) {
        const struct process_mapping *mapping = &maps->mappings[i];
        bool library = target_is_library_path(mapping->path);
        bool library_bss = !mapping->path[0] && i > 0 &&
                           target_is_library_path(maps->mappings[i - 1].path) &&
                           maps->mappings[i - 1].end == mapping->start;
        if (library || library_bss || is_stack_log(mapping->path) ||
            is_kernel_page(mapping->path))
            ok = intervals_add(excluded, mapping->start, mapping->end);
    }
    return ok;
}

/* Every word of the thread's registers; false when out of memory. */
static bool copy_registers(struct leak_root *root,
                           const struct target_thread *thread)
{
    const size_t general = sizeof(thread->registers),
                 vector = sizeof(thread->vector_registers),
                 extended = sizeof(thread->extended_registers);
    root->words = malloc(general + vector + extended);
    if (!root->words)
        return false;
    unsigned char *out = (unsigned char *)root->words;
    memcpy(out, &thread->registers, general);
    memcpy(out + general, &thread->vector_registers, vector);
    memcpy(out + general + vector, thread->extended_registers, extended);
    root->word_count = (unsigned)((general + vector + extended) / sizeof(uint64_t));
    return true;
}

/* Each thread's registers, and its stack from the stack pointer up; the
 * stack's mapping is then kept out of the other roots.  A process stopped
 * in its exit has one thread left, running exit handlers below frames
 * that have returned: its stack and registers hold only stale copies of
 * pointers the program dropped, so they are no roots then (main has
 * returned or called exit; what it still needs is in its globals). */
static bool add_thread_roots(struct leak_roots *roots, size_t *capacity,
                             struct intervals *excluded,
                             const struct target *target,
                             const struct process_maps *maps)
{
    for (size_t i = 0; i < target->thread_count; i++) {
        const struct target_thread *thread = &target->threads[i];
        uint64_t sp = thread->registers.rsp;
        const struct process_mapping *stack = process_maps_find(maps, sp);
        if (target->exiting) {
            if (stack && !intervals_add(excluded, stack->start, stack->end))
                return false;
            continue;
        }
        struct leak_root root = {.kind = LEAK_ROOT_REGISTERS, .thread = thread->tid};
        if (!copy_registers(&root, thread))
            return false;
        if (!add_root(roots, capacity, &root)) {
            free(root.words);
            return false;
        }
        if (!stack)
            continue;
        root = (struct leak_root){.kind = LEAK_ROOT_STACK, .thread = thread->tid,
                                  .start = sp - RED_ZONE < stack->start ? stack->start
                                                                        : sp - RED_ZONE,
                                  .end = stack->end};
        if (!add_root(roots, capacity, &root) ||
            !intervals_add(excluded, stack->start, stack->end))
            return false;
    }
    return true;
}

/* The stacks glibc keeps after their threads ended hold only what those
 * threads left (cached_stacks.h): not roots.  Each one's pointer to its
 * TLS vector is: glibc still owns that block, and frees it when it
 * reuses or unmaps the stack. */
static bool exclude_cached_stacks(struct leak_roots *roots, size_t *capacity,
                                  struct intervals *excluded,
                                  const struct target *target,
                                  const struct process_maps *maps)
{
    struct cached_stacks cached;
    bool ok = cached_stacks_find(&cached, target, maps);
    for (size_t i = 0; ok && i < cached.count; i++) {
        const struct cached_stack *stack = &cached.list[i];
        struct leak_root root = {.kind = LEAK_ROOT_CACHED_STACK_DTV,
                                 .start = stack->dtv_slot,
                                 .end = stack->dtv_slot + sizeof(uint64_t)};
        ok = intervals_add(excluded, stack->start, stack->end) &&
             add_root(roots, capacity, &root);
    }
    cached_stacks_free(&cached);
    return ok;
}

static void name_root(struct leak_root *root, const char *path)
{
    const char *base = strrchr(path, '/');
    if (path[0] && path[0] != '[') {
        root->kind = LEAK_ROOT_MODULE_DATA;
        snprintf(root->name, sizeof(root->name), "%s", base ? base + 1 : path);
    } else {
        root->kind = LEAK_ROOT_ANONYMOUS;
        snprintf(root->name, sizeof(root->name), "%s", path);
    }
}

/* The path a mapping's memory is named by: an anonymous mapping right
 * after the executable's last mapping is its .bss, where it outgrew the
 * file's last page.  (After a library's, it may as well be memory the
 * program mapped there: anonymous mappings are made next to libraries.)
 * The executable's mappings come first. */
static const char *owner_path(const struct process_maps *maps, size_t i)
{
    const struct process_mapping *mapping = &maps->mappings[i];
    if (mapping->path[0] || i == 0)
        return mapping->path;
    const struct process_mapping *before = &maps->mappings[i - 1];
    const char *executable = maps->mappings[0].path;
    return executable[0] && executable[0] != '[' &&
                   strcmp(before->path, executable) == 0 &&
                   before->end == mapping->start
               ? executable
               : mapping->path;
}

static bool add_piece(struct leak_roots *roots, size_t *capacity,
                      const char *path, uint64_t start, uint64_t end)
{
    struct leak_root root = {.start = start, .end = end};
    name_root(&root, path);
    return add_root(roots, capacity, &root);
}

/* The writable mappings, less the excluded intervals (sorted by start). */
static bool add_memory_roots(struct leak_roots *roots, size_t *capacity,
                             const struct intervals *excluded,
                             const struct process_maps *maps)
{
    size_t first = 0;
    for (size_t i = 0; i < maps->count; i++) {
        const struct process_mapping *mapping = &maps->mappings[i];
        if (!mapping->readable || !mapping->writable)
            continue;
        const char *path = owner_path(maps, i);
        uint64_t at = mapping->start;
        while (first < excluded->count && excluded->list[first].end <= at)
            first++;
        for (size_t j = first; j < excluded->count &&
                               excluded->list[j].start < mapping->end && at < mapping->end;
             j++) {
            const struct interval *cut = &excluded->list[j];
            if (cut->end <= at)
                continue;
            if (cut->start > at && !add_piece(roots, capacity, path, at, cut->start))
                return false;
            at = cut->end;
        }
        if (at < mapping->end && !add_piece(roots, capacity, path, at, mapping->end))
            return false;
    }
    return true;
}

int leak_roots_find(struct leak_roots *roots, const struct target *target,
                    const struct heap_snapshot *snapshot, char *message,
                    size_t message_size)
{
    memset(roots, 0, sizeof(*roots));
    struct process_maps maps;
    if (process_maps_read(target->pid, &maps) != 0) {
        snprintf(message, message_size, "cannot read /proc/%d/maps: %s",
                 (int)target->pid, strerror(errno));
        return -1;
    }
    struct intervals excluded = {0};
    size_t capacity = 0;
    bool ok = exclude_not_program(&excluded, &maps, snapshot) &&
              exclude_own_mappings(&excluded, target) &&
              add_thread_roots(roots, &capacity, &excluded, target, &maps) &&
              exclude_cached_stacks(roots, &capacity, &excluded, target, &maps);
    if (ok) {
        qsort(excluded.list, excluded.count, sizeof(*excluded.list), by_start);
        ok = add_memory_roots(roots, &capacity, &excluded, &maps);
    }
    free(excluded.list);
    process_maps_free(&maps);
    if (!ok) {
        leak_roots_free(roots);
        snprintf(message, message_size,
                 "cannot list the roots of process %d (out of memory, or the "
                 "library's records could not be read)", (int)target->pid);
        return -1;
    }
    return 0;
}

void leak_roots_free(struct leak_roots *roots)
{
    for (size_t i = 0; i < roots->count; i++)
        free(roots->roots[i].words);
    free(roots->roots);
    memset(roots, 0, sizeof(*roots));
}

void leak_root_describe(const struct leak_root *root, char *text, size_t size)
{
    switch (root->kind) {
    case LEAK_ROOT_MODULE_DATA:
        snprintf(text, size, "global data of %s", root->name);
        break;
    case LEAK_ROOT_ANONYMOUS:
        snprintf(text, size, "%s memory %#llx-%#llx",
                 root->name[0] ? root->name : "anonymous",
                 (unsigned long long)root->start, (unsigned long long)root->end);
        break;
    case LEAK_ROOT_STACK:
        snprintf(text, size, "stack of thread %d", (int)root->thread);
        break;
    case LEAK_ROOT_REGISTERS:
        snprintf(text, size, "registers of thread %d", (int)root->thread);
        break;
    case LEAK_ROOT_CACHED_STACK_DTV:
        snprintf(text, size, "TLS vector of an ended thread, from %#llx",
                 (unsigned long long)root->start);
        break;
    }
}
