/*
 * glibc's thread layout, read from the symbols glibc exports for
 * debuggers: found in the target's libc.so.6 and ld.so with libdwfl,
 * then read from the target's memory.
 */
#include "config.h"
#include "glibc_threads.h"

#include <elfutils/libdwfl.h>
#include <string.h>

/* A field as glibc describes it for libthread_db: its size in bits, the
 * number of elements, and its offset in its structure. */
struct field_description {
    uint32_t bits, count, offset;
};

enum wanted_symbol {
    PTHREAD_SIZE,
    PTHREAD_LIST,
    PTHREAD_TID,
    PTHREAD_DTV,
    LIST_NEXT,
    STACKS_USED,
    STACKS_USER,
    RTLD_GLOBAL,
    WANTED_COUNT
};

static const char *const wanted_names[WANTED_COUNT] = {
    [PTHREAD_SIZE] = "_thread_db_sizeof_pthread",
    [PTHREAD_LIST] = "_thread_db_pthread_list",
    [PTHREAD_TID] = "_thread_db_pthread_tid",
    [PTHREAD_DTV] = "_thread_db_pthread_dtvp",
    [LIST_NEXT] = "_thread_db_list_t_next",
    [STACKS_USED] = "_thread_db_rtld_global__dl_stack_used",
    [STACKS_USER] = "_thread_db_rtld_global__dl_stack_user",
    [RTLD_GLOBAL] = "_rtld_global",
};

struct found_symbols {
    uint64_t address[WANTED_COUNT], size[WANTED_COUNT];
};

/* The dynamic symbols hold all of them (libthread_db finds them there in
 * a stripped glibc): no need to look for separate debugging files. */
static int no_debuginfo(Dwfl_Module *module, void **userdata, const char *name,
                        Dwarf_Addr start, const char *file, const char *link,
                        GElf_Word crc, char **debuginfo_name)
{
    (void)module, (void)userdata, (void)name, (void)start, (void)file;
    (void)link, (void)crc, (void)debuginfo_name;
    return -1;
}

static char *debuginfo_path;

static const Dwfl_Callbacks process_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = no_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

/* libc.so.6 and the dynamic linker, by the names glibc gives them. */
static bool is_glibc_module(const char *name)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    return strncmp(base, "libc.so", 7) == 0 || strncmp(base, "ld-linux", 8) == 0;
}

static void note_symbol(struct found_symbols *found, const char *name,
                        uint64_t address, uint64_t size)
{
    for (int i = 0; i < WANTED_COUNT; i++)
        if (strcmp(name, wanted_names[i]) == 0) {
            found->address[i] = address;
            found->size[i] = size;
        }
}

static int search_module(Dwfl_Module *module, void **userdata, const char *name,
                         Dwarf_Addr start, void *context)
{
    (void)userdata, (void)start;
    if (!name || !is_glibc_module(name))
        return DWARF_CB_OK;
    int count = dwfl_module_getsymtab(module);
    for (int i = 0; i < count; i++) {
        GElf_Sym symbol;
        GElf_Addr address;
        GElf_Word section;
        const char *symbol_name =
            dwfl_module_getsym_info(module, i, &symbol, &address, &section, NULL, NULL);
        if (symbol_name && section != SHN_UNDEF && address)
            note_symbol(context, symbol_name, address, symbol.st_size);
    }
    return DWARF_CB_OK;
}

static bool find_symbols(pid_t pid, struct found_symbols *found)
{
    memset(found, 0, sizeof(*found));
    Dwfl *dwfl = dwfl_begin(&process_callbacks);
    if (!dwfl)
        return false;
    dwfl_report_begin(dwfl);
    bool ok = dwfl_linux_proc_report(dwfl, pid) == 0 &&
              dwfl_report_end(dwfl, NULL, NULL) == 0;
    if (ok)
        dwfl_getmodules(dwfl, search_module, found, 0);
    dwfl_end(dwfl);
    for (int i = 0; ok && i < WANTED_COUNT; i++)
        ok = found->address[i] != 0;
    return ok;
}

/* A field of `bits` bits, one element of it. */
static bool read_field(const struct target *target, const struct found_symbols *found,
                       enum wanted_symbol which, uint32_t bits, uint32_t *offset)
{
    struct field_description field;
    if (!target_read(target, found->address[which], &field, sizeof(field)) ||
        field.bits != bits || field.count != 1)
        return false;
    *offset = field.offset;
    return true;
}

/* The offsets must fit in what they are offsets into. */
static bool plausible(const struct glibc_threads *layout)
{
    uint64_t size = layout->descriptor_size;
    return size >= 64 && size <= (1u << 16) && layout->list_offset + 16 <= size &&
           layout->tid_offset + 4 <= size && layout->dtv_offset + 8 <= size &&
           layout->next_offset <= 8 &&
           layout->stacks_used + 16 <= layout->rtld_global_end &&
           layout->stacks_user + 16 <= layout->rtld_global_end;
}

bool glibc_threads_find(const struct target *target, struct glibc_threads *layout)
{
    memset(layout, 0, sizeof(*layout));
    struct found_symbols found;
    if (!find_symbols(target->pid, &found))
        return false;
    uint32_t used = 0, user = 0, pointer_bits = 8 * sizeof(uint64_t);
    bool ok = target_read(target, found.address[PTHREAD_SIZE], &layout->descriptor_size,
                          sizeof(layout->descriptor_size)) &&
              read_field(target, &found, PTHREAD_LIST, 2 * pointer_bits,
                         &layout->list_offset) &&
              read_field(target, &found, PTHREAD_TID, 32, &layout->tid_offset) &&
              read_field(target, &found, PTHREAD_DTV, pointer_bits, &layout->dtv_offset) &&
              read_field(target, &found, LIST_NEXT, pointer_bits, &layout->next_offset) &&
              read_field(target, &found, STACKS_USED, 2 * pointer_bits, &used) &&
              read_field(target, &found, STACKS_USER, 2 * pointer_bits, &user);
    layout->rtld_global = found.address[RTLD_GLOBAL];
    layout->rtld_global_end = layout->rtld_global + found.size[RTLD_GLOBAL];
    layout->stacks_used = layout->rtld_global + used;
    layout->stacks_user = layout->rtld_global + user;
    return ok && plausible(layout);
}
