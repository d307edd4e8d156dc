/*
 * The module list: every object the dynamic loader has mapped (the
 * executable, shared libraries, the vdso), with its address range and
 * build id, recorded in MODULES chunks the first time one of its
 * addresses appears in a stack.  A module unloaded later keeps its
 * record, marked with the order of its unloading, so the stacks taken
 * while it was there can still be symbolized.
 *
 * The list is scanned with dl_iterate_phdr, with none of this layer's
 * locks held (the loader's lock comes first); the scan runs again when a
 * stack holds an address of no known module and the loader's counts of
 * loads and unloads have moved since the last scan, and after each of
 * the program's dlclose calls (stacklog_loader.c).  Without that scan, a
 * module loaded where an unloaded one was would be taken for it, its
 * frames named with the other's symbols.  Once a module is found
 * unloaded, frames are told apart by module too (stacklog_node_is).
 * A module the C library unloads itself, without calling dlclose (its
 * name service modules, say), is found gone only at the next scan: one
 * loaded at its addresses before then is taken for it.
 *
 * The loader's own calls, and what a fork does to them, are in
 * stacklog_loader.c.
 */
#include "config.h"
#include "lock.h"
#include "os_memory.h"
#include "stacklog.h"
#include "stacklog_orders.h"

#include <elf.h>
#include <link.h>
#include <string.h>

#define MODULE_ENTRIES_MAX 65536u
#define RECORDS_PER_CHUNK \
    MDLOG_CHUNK_RECORDS(MDLOG_CHUNK_SIZE, struct mdlog_module)

struct module_entry {
    uintptr_t start, end, load_bias;
    struct mdlog_module *record;
    uint64_t seen_generation;
    bool loaded;
};

static md_lock_t modules_lock = MD_LOCK_INITIALIZER;
static struct module_entry *entries;
static uint32_t entry_count;
static struct mdlog_chunk_header *records_chunk;
static size_t records_backed; /* its bytes with memory */
static uint64_t scan_generation;
/* Bumped when a module is marked unloaded: a thread's last module found
 * (module_hint) is good while it has not moved. */
static uint64_t unloads;

/* Most new frames are in the module of the one before: each thread
 * remembers its last module, and finds it again without the lock. */
static __thread struct {
    uintptr_t start, end;
    uint32_t index;
    uint64_t unloads;
} module_hint __attribute__((tls_model("initial-exec")));
static unsigned long long loader_adds, loader_subs;

bool stacklog_modules_setup(void)
{
    entries = os_map(MODULE_ENTRIES_MAX * sizeof(*entries));
    return entries != NULL;
}

struct module_facts {
    uintptr_t start, end;
    const uint8_t *build_id;
    uint32_t build_id_size;
};

/* The GNU build id note, in a PT_NOTE segment. */
static void find_build_id(const struct dl_phdr_info *info,
                          const ElfW(Phdr) *phdr, struct module_facts *facts)
{
    const char *at = (const char *)(info->dlpi_addr + phdr->p_vaddr);
    const char *end = at + phdr->p_memsz;
    while (at + sizeof(ElfW(Nhdr)) <= end) {
        const ElfW(Nhdr) *note = (const ElfW(Nhdr) *)at;
        const char *name = at + sizeof(*note);
        const char *desc = name + MD_ALIGN_UP(note->n_namesz, 4);
        if (desc + note->n_descsz > end)
            return;
        if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 &&
            memcmp(name, "GNU", 4) == 0) {
            facts->build_id = (const uint8_t *)desc;
            facts->build_id_size = note->n_descsz;
            return;
        }
        at = desc + MD_ALIGN_UP(note->n_descsz, 4);
    }
}

static void module_facts_of(const struct dl_phdr_info *info,
                            struct module_facts *facts)
{
    *facts = (struct module_facts){.start = UINTPTR_MAX};
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *phdr = &info->dlpi_phdr[i];
        uintptr_t from = info->dlpi_addr + phdr->p_vaddr;
        if (phdr->p_type == PT_LOAD) {
            if (from < facts->start)
                facts->start = from;
            if (from + phdr->p_memsz > facts->end)
                facts->end = from + phdr->p_memsz;
        } else if (phdr->p_type == PT_NOTE && !facts->build_id) {
            find_build_id(info, phdr, facts);
        }
    }
}

/* Lock held.  The next record's slot, a new chunk when needed, with
 * memory. */
static struct mdlog_module *record_slot(uint32_t index)
{
    if (!records_chunk || records_chunk->count == RECORDS_PER_CHUNK) {
        struct mdlog_chunk_header *chunk =
            stacklog_file_new_chunk(MDLOG_CHUNK_MODULES, 0, index);
        if (!chunk)
            return NULL;
        records_chunk = chunk;
        records_backed = STACKLOG_CHUNK_BACKED_AT_START;
    }
    size_t end = sizeof(*records_chunk) +
                 (records_chunk->count + 1) * sizeof(struct mdlog_module);
    if (end > records_backed) {
        size_t backed = stacklog_file_back(records_chunk, records_backed, end);
        if (!backed)
            return NULL;
        records_backed = backed;
    }
    return (struct mdlog_module *)(records_chunk + 1) + records_chunk->count;
}

static void record_fill(struct mdlog_module *record,
                        const struct dl_phdr_info *info,
                        const struct module_facts *facts)
{
    const char *path = info->dlpi_name;
    if (!path || !path[0])
        path = stacklog_header->executable;
    record->load_bias = info->dlpi_addr;
    record->start = facts->start;
    record->end = facts->end;
    /* Every event recorded from now on is ordered above the floor. */
    record->loaded_order = __atomic_load_n(&stacklog_header->next_order,
                                           __ATOMIC_ACQUIRE);
    size_t length = strlen(path);
    if (length >= sizeof(record->path)) {
        length = sizeof(record->path) - 1;
        record->flags |= MDLOG_MODULE_PATH_TRUNCATED;
    }
    memcpy(record->path, path, length);
    if (facts->build_id_size <= sizeof(record->build_id)) {
        memcpy(record->build_id, facts->build_id, facts->build_id_size);
        record->build_id_size = facts->build_id_size;
    }
}

/* Lock held. */
static void module_add(const struct dl_phdr_info *info,
                       const struct module_facts *facts)
{
    uint32_t index = entry_count;
    struct mdlog_module *record = index < MODULE_ENTRIES_MAX
                                      ? record_slot(index)
                                      : NULL;
    if (!record)
        return;
    record_fill(record, info, facts);
    __atomic_store_n(&records_chunk->count, records_chunk->count + 1,
                     __ATOMIC_RELEASE);
    entries[index] = (struct module_entry){facts->start, facts->end,
                                           info->dlpi_addr, record,
                                           scan_generation, true};
    entry_count = index + 1;
}

static int scan_module(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uint64_t generation = *(uint64_t *)data;
    struct module_facts facts;
    module_facts_of(info, &facts);
    if (facts.start >= facts.end)
        return 0;
    md_lock(&modules_lock);
    loader_adds = info->dlpi_adds;
    loader_subs = info->dlpi_subs;
    uint32_t i = 0;
    while (i < entry_count &&
           !(entries[i].loaded && entries[i].start == facts.start &&
             entries[i].end == facts.end &&
             entries[i].load_bias == info->dlpi_addr))
        i++;
    if (i < entry_count)
        entries[i].seen_generation = generation;
    else
        module_add(info, &facts);
    md_unlock(&modules_lock);
    return 0;
}

/* Lock held: what the scan `generation` did not see is gone.  The
 * threads then forget the stacks they cached and the frames they may
 * join: the same return addresses may now be another module's. */
static void mark_unloaded(uint64_t generation)
{
    bool marked = false;
    for (uint32_t i = 0; i < entry_count; i++)
        if (entries[i].loaded && entries[i].seen_generation < generation) {
            entries[i].loaded = false;
            __atomic_fetch_add(&unloads, 1, __ATOMIC_RELEASE);
            __atomic_store_n(&entries[i].record->unloaded_order,
                             stacklog_order_moment(), __ATOMIC_RELEASE);
            marked = true;
        }
    if (marked)
        stacklog_stack_slots_invalidate();
}

static int read_loader_counts(struct dl_phdr_info *info, size_t size,
                              void *data)
{
    (void)size;
    unsigned long long *counts = data;
    counts[0] = info->dlpi_adds;
    counts[1] = info->dlpi_subs;
    return 1;
}

static void modules_scan(void)
{
    md_lock(&modules_lock);
    uint64_t generation = ++scan_generation;
    md_unlock(&modules_lock);
    bool scanned = stacklog_loader_iterate(scan_module, &generation);
    md_lock(&modules_lock);
    if (scanned && generation == scan_generation)
        mark_unloaded(generation);
    md_unlock(&modules_lock);
}

enum loader_look { LOADER_SAME, LOADER_CHANGED, LOADER_OUT_OF_REACH };

static enum loader_look loader_changed(void)
{
    unsigned long long counts[2] = {0, 0};
    if (!stacklog_loader_iterate(read_loader_counts, counts))
        return LOADER_OUT_OF_REACH;
    md_lock(&modules_lock);
    bool changed = entry_count == 0 || counts[0] != loader_adds ||
                   counts[1] != loader_subs;
    md_unlock(&modules_lock);
    return changed ? LOADER_CHANGED : LOADER_SAME;
}

static uint32_t loaded_module_of(uintptr_t pc)
{
    md_lock(&modules_lock);
    uint32_t found = MDLOG_MODULE_UNKNOWN;
    for (uint32_t i = 0; i < entry_count && found == MDLOG_MODULE_UNKNOWN; i++)
        if (entries[i].loaded && pc - entries[i].start <
                                     entries[i].end - entries[i].start)
            found = i;
    md_unlock(&modules_lock);
    return found;
}

uint32_t stacklog_module_of(uintptr_t pc)
{
    uint64_t unloaded = __atomic_load_n(&unloads, __ATOMIC_ACQUIRE);
    if (pc - module_hint.start < module_hint.end - module_hint.start &&
        module_hint.unloads == unloaded)
        return module_hint.index;
    uint32_t found = loaded_module_of(pc);
    if (found == MDLOG_MODULE_UNKNOWN) {
        enum loader_look look = loader_changed();
        if (look == LOADER_OUT_OF_REACH)
            return STACKLOG_MODULE_NOT_NOW;
        if (look == LOADER_CHANGED) {
            modules_scan();
            found = loaded_module_of(pc);
        }
    }
    if (found != MDLOG_MODULE_UNKNOWN) {
        md_lock(&modules_lock);
        module_hint.start = entries[found].start;
        module_hint.end = entries[found].end;
        md_unlock(&modules_lock);
        module_hint.index = found;
        module_hint.unloads = unloaded;
    }
    return found;
}

uint32_t stacklog_modules_count(void)
{
    md_lock(&modules_lock);
    uint32_t count = entry_count;
    md_unlock(&modules_lock);
    return count;
}

uint64_t stacklog_modules_unloaded(void)
{
    return __atomic_load_n(&unloads, __ATOMIC_ACQUIRE);
}

/* A dlclose that only dropped a reference leaves the loader's counts as
 * they were, and costs no scan. */
void stacklog_modules_rescan(void)
{
    if (entries && loader_changed() == LOADER_CHANGED)
        modules_scan();
}

bool stacklog_module_range(uintptr_t address, uintptr_t *start, uintptr_t *end)
{
    uint32_t index = stacklog_module_of(address);
    if (index >= STACKLOG_MODULE_NOT_NOW)
        return false;
    md_lock(&modules_lock);
    *start = entries[index].start;
    *end = entries[index].end;
    md_unlock(&modules_lock);
    return true;
}

void stacklog_modules_force_lock(void)
{
    md_lock(&modules_lock);
}

void stacklog_modules_force_unlock(void)
{
    md_unlock(&modules_lock);
}

void stacklog_modules_reinit_lock(void)
{
    md_lock_init(&modules_lock);
}

/* The child's copy of the module chunk may hold records the parent added
 * after the fork: its count says the child's, so that the child's next
 * module goes where its index says. */
void stacklog_modules_fork_child(void)
{
    if (records_chunk)
        __atomic_store_n(&records_chunk->count,
                         entry_count - records_chunk->first, __ATOMIC_RELEASE);
}
