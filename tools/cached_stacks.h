/*
 * The stacks of ended threads that glibc keeps for reuse.
 *
 * When a thread that pthread_create gave a stack of glibc's own is
 * joined, or ends detached, glibc does not unmap its stack: it keeps it
 * in a cache (up to 40 MiB) for the next thread.  Such a stack still
 * holds the frames, the descriptor and the static thread-local storage
 * of a thread that is gone: stale pointers, which would hide leaks if
 * the stack were scanned as memory.  Once a new thread is given the
 * stack, its stack pointer is in it and it is that thread's stack again.
 *
 * The stacks are taken from glibc's own list, whose layout glibc
 * publishes (glibc_threads.h).  The list's head is not published: it is
 * found as the one node in _rtld_global of the ring that a dead
 * descriptor, at the top of a stack-shaped mapping, is linked in, when
 * that is neither of the lists of threads in use.  A stack on the list
 * is taken only when it is surely a dead thread's stack:
 *  - its thread id is 0 or less, as glibc itself asks before it reuses a
 *    stack: the kernel clears it when the thread is gone, pthread_join
 *    then sets it to -1;
 *  - its descriptor is a thread control block (its first word points to
 *    itself, as the x86-64 ABI has it);
 *  - its mapping is anonymous, readable and writable, right above an
 *    inaccessible one (the guard), with the descriptor at its top, and
 *    no thread's stack pointer in it.
 * Left as ordinary memory, and so scanned: a cached stack made without
 * a guard (a guard size of 0) or whose mapping the kernel merged with a
 * neighbouring one, every stack while glibc is changing the list, and
 * all of them in a process without the layout (another C library, glibc
 * before 2.34).  A thread that ended but is not joined yet is not in the
 * cache: its stack, which holds the value it returned, is scanned.
 */
#ifndef MALLOCDEBUG_CACHED_STACKS_H
#define MALLOCDEBUG_CACHED_STACKS_H

#include "process_maps.h"
#include "target.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cached_stack {
    uint64_t start, end; /* the stack's mapping: stack, TLS, descriptor */
    /* Where the descriptor points to the thread's TLS vector, a block
     * glibc allocated and frees when the stack is reused or unmapped. */
    uint64_t dtv_slot;
};

struct cached_stacks {
    struct cached_stack *list;
    size_t count;
};

/* Fills `found` (empty when there is no such stack); false only when out
 * of memory. */
bool cached_stacks_find(struct cached_stacks *found, const struct target *target,
                        const struct process_maps *maps);
void cached_stacks_free(struct cached_stacks *found);

#endif
