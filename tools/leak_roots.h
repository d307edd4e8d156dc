/*
 * Where a leak scan starts: every place of a stopped target that may hold
 * a pointer the program can still use.
 *
 * - the writable data of every loaded module, and writable anonymous
 *   memory (the .bss, the main thread's TLS, memory the program mapped
 *   itself);
 * - each thread's stack from its stack pointer (less the 128-byte red
 *   zone below it) up, which also covers the thread's TLS and
 *   descriptor, kept at the top of a thread's stack;
 * - each thread's registers: general purpose, and the whole vector
 *   state the processor has (xmm, ymm and zmm, AVX-512's mask registers;
 *   target_registers.c).
 *
 * Left out: the heap's own memory (its blocks are scanned when reached),
 * the library's own mappings and data, the stack log, the kernel's pages
 * ([vvar], [vdso], [vsyscall]), and the stacks glibc keeps for reuse
 * after their threads ended (cached_stacks.h): their frames, descriptor
 * and static TLS are a dead thread's.  Of such a stack, only the
 * descriptor's pointer to the thread's TLS vector is a root, since glibc
 * still owns that block.
 */
#ifndef MALLOCDEBUG_LEAK_ROOTS_H
#define MALLOCDEBUG_LEAK_ROOTS_H

#include "heap_snapshot.h"
#include "target.h"

#include <stddef.h>
#include <stdint.h>

enum leak_root_kind {
    LEAK_ROOT_MODULE_DATA,
    LEAK_ROOT_ANONYMOUS,
    LEAK_ROOT_STACK,
    LEAK_ROOT_REGISTERS,
    LEAK_ROOT_CACHED_STACK_DTV,
};

struct leak_root {
    enum leak_root_kind kind;
    uint64_t start, end;       /* in the target; registers: 0, 0;
                                  a cached stack's TLS vector: the word
                                  pointing to it */
    pid_t thread;              /* stacks and registers */
    char name[128];            /* module file name, for module data */
    /* Registers are copied here (allocated), not read from the target. */
    uint64_t *words;
    unsigned word_count;
};

struct leak_roots {
    struct leak_root *roots;
    size_t count;
};

int leak_roots_find(struct leak_roots *roots, const struct target *target,
                    const struct heap_snapshot *snapshot, char *message,
                    size_t message_size);
void leak_roots_free(struct leak_roots *roots);

/* "global data of prog", "stack of thread 1234"... */
void leak_root_describe(const struct leak_root *root, char *text, size_t size);

#endif
