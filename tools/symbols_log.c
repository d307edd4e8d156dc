/*
 * Symbols of a process from its stack log: each module the log recorded
 * is opened from its path at its recorded load bias, the first time one
 * of its frames is looked up, so a report reads only the files its
 * stacks pass through.  A file that is gone, or that is no longer the
 * one the process ran (its build id differs), names its frames with the
 * module and the offset only: symbols from another build would be wrong.
 */
#include "config.h"

#include "symbols_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *debuginfo_path;

/* The file is given at report time; these find its separate debug
 * information (by build id or debug link). */
static const Dwfl_Callbacks file_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};

struct symbols *symbols_open_log(const struct log_reader *reader, char *message,
                                 size_t message_size)
{
    tool_say(message, message_size, "%s", "");
    if (reader == NULL) {
        tool_say(message, message_size,
                 "no stack log to symbolize from; open the log first");
        return NULL;
    }
    struct symbols *symbols = calloc(1, sizeof(*symbols));
    if (symbols == NULL) {
        tool_say(message, message_size,
                 "cannot symbolize %s: out of memory", log_reader_path(reader));
        return NULL;
    }
    symbols->reader = reader;
    return symbols;
}

void symbols_log_close(struct symbols *symbols)
{
    for (uint32_t i = 0; i < symbols->module_capacity; i++) {
        struct symbols_log_module *module = &symbols->modules[i];
        free(module->name);
        if (module->dwfl != NULL)
            dwfl_end(module->dwfl);
    }
    free(symbols->modules);
}

/* Room for module `index`.  Grown on demand, not to the log's count: a
 * live log records modules as it goes, and a damaged one may claim
 * indexes far beyond the modules it holds. */
static bool make_room(struct symbols *symbols, uint32_t index)
{
    if (index < symbols->module_capacity)
        return true;
    uint32_t count = log_reader_module_count(symbols->reader);
    if (index >= count)
        return false;
    uint64_t capacity = (uint64_t)symbols->module_capacity * 2;
    if (capacity <= index)
        capacity = (uint64_t)index + 1;
    if (capacity > count)
        capacity = count;
    struct symbols_log_module *grown =
        realloc(symbols->modules, capacity * sizeof(*grown));
    if (grown == NULL)
        return false;
    memset(grown + symbols->module_capacity, 0,
           (capacity - symbols->module_capacity) * sizeof(*grown));
    symbols->modules = grown;
    symbols->module_capacity = (uint32_t)capacity;
    return true;
}

static bool same_build(Dwfl_Module *dwfl_module, const struct mdlog_module *record)
{
    const unsigned char *bits = NULL;
    GElf_Addr vaddr;
    int size = dwfl_module_build_id(dwfl_module, &bits, &vaddr);
    if (size < 0)
        size = 0;
    return (uint32_t)size == record->build_id_size &&
           (size == 0 || memcmp(bits, record->build_id, (size_t)size) == 0);
}

/* The regular file at `path`, opened without blocking: a log names
 * whatever path it likes, and a FIFO there would wait for a writer. */
static int open_regular_file(const char *path, struct stat *status)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0 && (fstat(fd, status) != 0 || !S_ISREG(status->st_mode))) {
        close(fd);
        return -1;
    }
    return fd;
}

/* After libdwfl refused the module: the descriptor is still ours unless
 * libdwfl closed it (it does for a compressed file it unpacked). */
static void close_if_still_open(int fd, const struct stat *opened)
{
    struct stat now;
    if (fstat(fd, &now) == 0 && now.st_dev == opened->st_dev &&
        now.st_ino == opened->st_ino)
        close(fd);
}

/* The module's file, at the addresses the process had it, when it is
 * there and is the build the process ran. */
static void open_file(struct symbols_log_module *module,
                      const struct mdlog_module *record)
{
    if (record->path[0] == '\0' || (record->flags & MDLOG_MODULE_PATH_TRUNCATED))
        return;
    struct stat file;
    int fd = open_regular_file(record->path, &file);
    if (fd < 0)
        return;
    module->dwfl = dwfl_begin(&file_callbacks);
    if (module->dwfl == NULL) {
        close(fd);
        return;
    }
    dwfl_report_begin(module->dwfl);
    /* add_p_vaddr: base is the load bias, added to the file's addresses.
     * The descriptor is the library's once it reports the module. */
    Dwfl_Module *reported = dwfl_report_elf(module->dwfl, module->name,
                                            record->path, fd,
                                            record->load_bias, true);
    if (reported == NULL)
        close_if_still_open(fd, &file);
    if (dwfl_report_end(module->dwfl, NULL, NULL) == 0 && reported != NULL &&
        same_build(reported, record)) {
        module->dwfl_module = reported;
        return;
    }
    /* Not to be read: let its file go. */
    dwfl_end(module->dwfl);
    module->dwfl = NULL;
}

static struct symbols_log_module *module_at(struct symbols *symbols,
                                            uint32_t index)
{
    if (!make_room(symbols, index))
        return NULL;
    struct symbols_log_module *module = &symbols->modules[index];
    if (module->state != SYMBOLS_MODULE_UNOPENED)
        return module->state == SYMBOLS_MODULE_OPENED ? module : NULL;
    struct mdlog_module record;
    if (!log_reader_module(symbols->reader, index, &record) ||
        (module->name = strdup(symbols_basename(record.path))) == NULL) {
        module->state = SYMBOLS_MODULE_ABSENT;
        return NULL;
    }
    module->load_bias = record.load_bias;
    module->start = record.start;
    module->end = record.end;
    open_file(module, &record);
    module->state = SYMBOLS_MODULE_OPENED;
    return module;
}

bool symbols_log_lookup(struct symbols *symbols, uint64_t pc, uint32_t module,
                        struct symbols_frame *frame)
{
    if (module == SYMBOLS_ANY_MODULE)
        module = log_reader_module_for_pc(symbols->reader, pc - 1, UINT64_MAX);
    struct symbols_log_module *held = module_at(symbols, module);
    if (held == NULL)
        return false;
    frame->module = held->name;
    frame->module_offset = pc - held->load_bias;
    /* Only what the module spans: outside it a symbol table would name
     * whichever symbol happens to be nearest. */
    if (held->dwfl_module != NULL && pc - 1 >= held->start && pc - 1 < held->end)
        symbols_describe(symbols, held->dwfl_module, pc, frame);
    return true;
}
