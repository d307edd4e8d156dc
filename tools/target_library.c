/*
 * Where libmallocdebug.so is in the target: its code (a thread running
 * there is inside the allocator), the zone registry it exports
 * (malloc_zones, malloc_num_zones) and the list of its own mappings,
 * found in the file's dynamic symbols and moved by the address the
 * library was loaded at.
 */
#include "config.h"
#include "own_mappings.h"
#include "process_maps.h"
#include "target.h"
#include "target_permission.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LIBRARY_NAME "libmallocdebug.so"

bool target_is_library_path(const char *path)
{
    const char *base = strrchr(path, '/');
    return base && strncmp(base + 1, LIBRARY_NAME, strlen(LIBRARY_NAME)) == 0;
}

/* Reads the library's mappings: its code range, its path, and where its
 * first page (file offset 0) is, from which its load bias follows. */
static int read_maps(struct target *target, uint64_t *first_page,
                     char *message, size_t message_size)
{
    struct process_maps maps;
    if (process_maps_read(target->pid, &maps) != 0) {
        if (errno == EACCES || errno == EPERM)
            target_explain_refusal(target->pid, message, message_size);
        else
            snprintf(message, message_size, "cannot read /proc/%d/maps: %s",
                     (int)target->pid, strerror(errno));
        return -1;
    }
    *first_page = 0;
    for (size_t i = 0; i < maps.count; i++) {
        const struct process_mapping *mapping = &maps.mappings[i];
        if (!target_is_library_path(mapping->path))
            continue;
        snprintf(target->library_path, sizeof(target->library_path), "%s",
                 mapping->path);
        if (mapping->offset == 0 && !*first_page)
            *first_page = mapping->start;
        if (mapping->executable) {
            target->library_code_start = mapping->start;
            target->library_code_end = mapping->end;
        }
    }
    bool no_memory = maps.count == 0;
    process_maps_free(&maps);
    if (no_memory && target_thread_state(target->pid, target->pid) == 'Z') {
        snprintf(message, message_size,
                 "process %d (%s) has exited and waits for its parent to "
                 "collect it (a zombie): its memory is gone; read the log "
                 "it left with heap or malloc_history, if it recorded stacks",
                 (int)target->pid, target->name);
        return -1;
    }
    if (!*first_page || !target->library_code_end) {
        snprintf(message, message_size,
                 "process %d (%s) is not running libmallocdebug.so: start "
                 "it with LD_PRELOAD=/path/to/libmallocdebug.so, or run it "
                 "under leaks --atExit -- command",
                 (int)target->pid, target->name);
        return -1;
    }
    return 0;
}

/* The lowest address the file's segments ask for: the load bias is the
 * first page's address minus this. */
static bool lowest_load_address(Elf *elf, uint64_t *lowest)
{
    size_t count;
    if (elf_getphdrnum(elf, &count) != 0)
        return false;
    bool found = false;
    for (size_t i = 0; i < count; i++) {
        GElf_Phdr header;
        if (!gelf_getphdr(elf, (int)i, &header) || header.p_type != PT_LOAD)
            continue;
        uint64_t page = header.p_vaddr & ~(uint64_t)(header.p_align ? header.p_align - 1 : 0);
        if (!found || page < *lowest)
            *lowest = page;
        found = true;
    }
    return found;
}

struct registry_symbols {
    uint64_t zones, count, own_mappings;
};

static void find_registry_symbols(Elf *elf, struct registry_symbols *found)
{
    for (Elf_Scn *section = NULL; (section = elf_nextscn(elf, section));) {
        GElf_Shdr header;
        if (!gelf_getshdr(section, &header) || header.sh_type != SHT_DYNSYM ||
            !header.sh_entsize)
            continue;
        Elf_Data *data = elf_getdata(section, NULL);
        size_t symbols = header.sh_size / header.sh_entsize;
        for (size_t i = 0; data && i < symbols; i++) {
            GElf_Sym symbol;
            if (!gelf_getsym(data, (int)i, &symbol) || !symbol.st_value)
                continue;
            const char *name = elf_strptr(elf, header.sh_link, symbol.st_name);
            if (!name)
                continue;
            if (strcmp(name, "malloc_zones") == 0)
                found->zones = symbol.st_value;
            else if (strcmp(name, "malloc_num_zones") == 0)
                found->count = symbol.st_value;
            else if (strcmp(name, OWN_MAPPINGS_SYMBOL) == 0)
                found->own_mappings = symbol.st_value;
        }
    }
}

/* The file as the target sees it: through /proc/PID/root, so a process
 * in another mount namespace is read right. */
static int open_library_file(const struct target *target)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "/proc/%d/root%s", (int)target->pid,
             target->library_path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd >= 0 ? fd : open(target->library_path, O_RDONLY | O_CLOEXEC);
}

int target_library_find(struct target *target, char *message,
                        size_t message_size)
{
    uint64_t first_page;
    if (read_maps(target, &first_page, message, message_size) != 0)
        return -1;
    elf_version(EV_CURRENT);
    int fd = open_library_file(target);
    Elf *elf = fd >= 0 ? elf_begin(fd, ELF_C_READ, NULL) : NULL;
    uint64_t lowest = 0;
    struct registry_symbols found = {0, 0, 0};
    if (elf && lowest_load_address(elf, &lowest))
        find_registry_symbols(elf, &found);
    if (elf)
        elf_end(elf);
    if (fd >= 0)
        close(fd);
    if (!found.zones || !found.count || !found.own_mappings) {
        snprintf(message, message_size,
                 "cannot find the zone registry of process %d in %s (the "
                 "file is gone or was replaced since the process started): "
                 "restart the process", (int)target->pid,
                 target->library_path);
        return -1;
    }
    uint64_t bias = first_page - lowest;
    target->zones_address = bias + found.zones;
    target->zone_count_address = bias + found.count;
    target->own_mappings_address = bias + found.own_mappings;
    return 0;
}
