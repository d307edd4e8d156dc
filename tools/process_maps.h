/* A process's mappings, as /proc/PID/maps lists them. */
#ifndef MALLOCDEBUG_PROCESS_MAPS_H
#define MALLOCDEBUG_PROCESS_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct process_mapping {
    uint64_t start, end, offset;
    bool readable, writable, executable, shared;
    char *path; /* "" for anonymous memory; [stack], [heap]... as listed */
};

struct process_maps {
    struct process_mapping *mappings; /* in address order */
    size_t count;
};

/* 0, or -1 with errno (ENOENT: no such process; EACCES: not allowed). */
int process_maps_read(pid_t pid, struct process_maps *maps);
void process_maps_free(struct process_maps *maps);

/* The mapping holding `address`, or NULL. */
const struct process_mapping *process_maps_find(const struct process_maps *maps,
                                                uint64_t address);

#endif
