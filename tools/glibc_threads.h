/*
 * How glibc keeps its threads in a target: where the lists of thread
 * descriptors (struct pthread) are, and where the fields the leak scan
 * needs lie in a descriptor.
 *
 * Nothing of it is assumed from one glibc version: glibc publishes its
 * own layout for debuggers in the _thread_db_* symbols of libc.so.6 (the
 * ones libthread_db reads), and the lists lie in _rtld_global, the
 * dynamic linker's state, since glibc 2.34.  A process without them
 * (another C library, an older glibc) has no layout.
 */
#ifndef MALLOCDEBUG_GLIBC_THREADS_H
#define MALLOCDEBUG_GLIBC_THREADS_H

#include "target.h"

#include <stdbool.h>
#include <stdint.h>

struct glibc_threads {
    /* _rtld_global, in the target: the heads of glibc's lists of
     * descriptors are in it. */
    uint64_t rtld_global, rtld_global_end;
    /* The heads of the lists of threads not yet joined (or detached and
     * still running): on stacks glibc made, and on the program's own. */
    uint64_t stacks_used, stacks_user;
    /* struct pthread: its size, and the offsets of its link in those
     * lists (a list_t), of its thread id (0 once the thread is gone) and
     * of its pointer to the thread's dynamic TLS vector. */
    uint32_t descriptor_size, list_offset, tid_offset, dtv_offset;
    /* list_t: the offset of its pointer to the next element. */
    uint32_t next_offset;
};

/* False when the process shows no such layout, or it cannot be read. */
bool glibc_threads_find(const struct target *target, struct glibc_threads *found);

#endif
