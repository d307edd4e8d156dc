/*
 * Reading another process for the enumerator tests: a memory_reader_t
 * built on process_vm_readv, and the check that the kernel lets this
 * process read a child of its own at all.
 */
#ifndef MALLOCDEBUG_REMOTE_READER_H
#define MALLOCDEBUG_REMOTE_READER_H

#include <malloc/malloc.h>
#include <stdbool.h>

/* Copies into buffers that stay until remote_copies_release: the
 * enumerator may keep using a copy until it returns. */
kern_return_t remote_reader(task_t task, vm_address_t address,
                            vm_size_t size, void **local);
void remote_copies_release(void);
/* Reads that failed since the program started. */
unsigned remote_reader_failures(void);

/* 0 when process_vm_readv may read a child of this process, else the
 * errno it failed with. */
int remote_read_probe(void);
/* When `error` says the kernel refuses such reads, prints why on stdout
 * and returns true: the caller should skip (exit 77). */
bool remote_read_refused(int error);

#endif
