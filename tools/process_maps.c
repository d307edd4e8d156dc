#include "config.h"
#include "process_maps.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool parse_line(char *line, struct process_mapping *mapping)
{
    char permissions[8];
    int name_at = 0;
    if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %*s %*s %n",
               &mapping->start, &mapping->end, permissions, &mapping->offset,
               &name_at) < 4 ||
        !name_at)
        return false;
    char *name = line + name_at;
    name[strcspn(name, "\n")] = '\0';
    mapping->readable = permissions[0] == 'r';
    mapping->writable = permissions[1] == 'w';
    mapping->executable = permissions[2] == 'x';
    mapping->shared = permissions[3] == 's';
    mapping->path = strdup(name);
    return mapping->path != NULL;
}

int process_maps_read(pid_t pid, struct process_maps *maps)
{
    memset(maps, 0, sizeof(*maps));
    char path[64], line[4096 + 128];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    FILE *file = fopen(path, "r");
    if (!file)
        return -1;
    size_t capacity = 0;
    int result = 0;
    while (result == 0 && fgets(line, sizeof(line), file)) {
        if (maps->count == capacity) {
            capacity = capacity ? capacity * 2 : 256;
            struct process_mapping *grown =
                realloc(maps->mappings, capacity * sizeof(*grown));
            if (!grown) {
                errno = ENOMEM;
                result = -1;
                break;
            }
            maps->mappings = grown;
        }
        if (parse_line(line, &maps->mappings[maps->count]))
            maps->count++;
    }
    fclose(file);
    if (result != 0)
        process_maps_free(maps);
    return result;
}

void process_maps_free(struct process_maps *maps)
{
    for (size_t i = 0; i < maps->count; i++)
        free(maps->mappings[i].path);
    free(maps->mappings);
    memset(maps, 0, sizeof(*maps));
}

const struct process_mapping *process_maps_find(const struct process_maps *maps,
                                                uint64_t address)
{
    size_t low = 0, high = maps->count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (maps->mappings[middle].end <= address)
            low = middle + 1;
        else
            high = middle;
    }
    if (low < maps->count && maps->mappings[low].start <= address)
        return &maps->mappings[low];
    return NULL;
}
