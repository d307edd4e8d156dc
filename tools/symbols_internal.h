/*
 * What the symbol table's files share: the table itself, a log's modules
 * as they are opened one by one, and the caches that make a repeated
 * lookup cost one hash probe.
 */
#ifndef MALLOCDEBUG_SYMBOLS_INTERNAL_H
#define MALLOCDEBUG_SYMBOLS_INTERNAL_H

#include "symbols.h"
#include "tool_say.h"

#include <elfutils/libdwfl.h>

/* Out of memory, a hash table stays as it was and the element is not
 * added (its hh.tbl is NULL): a cache that cannot grow is slower, not
 * fatal. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

/* A module of the log.  Each has its own Dwfl, opened at its first
 * lookup: modules unloaded and loaded again over a process's life may
 * overlap, and the log says which one held each frame. */
enum symbols_module_state {
    SYMBOLS_MODULE_UNOPENED = 0,
    SYMBOLS_MODULE_OPENED, /* named; dwfl_module set when its file
                              is there and is the one recorded */
    SYMBOLS_MODULE_ABSENT, /* the log has no such module */
};

struct symbols_log_module {
    enum symbols_module_state state;
    char *name; /* the path's last component */
    uint64_t load_bias, start, end;
    Dwfl *dwfl;
    Dwfl_Module *dwfl_module;
};

struct symbols_cached_frame;
struct symbols_name;
struct symbols_inlined_chain;

struct symbols {
    /* Opened on a process: its modules, in one Dwfl. */
    Dwfl *process;
    /* Opened on a log: its modules by index, grown as the log grows. */
    const struct log_reader *reader;
    struct symbols_log_module *modules;
    uint32_t module_capacity;

    struct symbols_cached_frame *cache;
    struct symbols_name *names; /* readable names, by raw name */
    struct symbols_inlined_chain *inlined_chains; /* frames point into them */
};

/* symbols_pid.c: the module holding pc in the process. */
bool symbols_pid_lookup(struct symbols *symbols, uint64_t pc,
                        struct symbols_frame *frame);

/* symbols_log.c: the log's module `module` (or the one there at the end
 * of the log, for SYMBOLS_ANY_MODULE). */
bool symbols_log_lookup(struct symbols *symbols, uint64_t pc, uint32_t module,
                        struct symbols_frame *frame);
void symbols_log_close(struct symbols *symbols);

/* symbols_describe.c: function, file and line of return address `pc` in
 * `module`; leaves the frame's fields as they are when unknown. */
void symbols_describe(struct symbols *symbols, Dwfl_Module *module,
                      uint64_t pc, struct symbols_frame *frame);
/* The last component of a path (all of it when it has no '/'). */
const char *symbols_basename(const char *path);

/* symbols_inlined.c: the calls inlined at `call` (a return address less
 * one) into the function holding it; sets frame->inlined and moves the
 * frame's file and line, which are the innermost call's, to the
 * outermost inlined call.  Leaves the frame as it is when nothing is
 * inlined there or the module has no debug information. */
void symbols_describe_inlined(struct symbols *symbols, Dwfl_Module *module,
                              uint64_t call, struct symbols_frame *frame);
void symbols_inlined_free(struct symbols *symbols);

/* symbols_names.c: the readable form of a symbol name (demangled,
 * without a version), `name` itself when it is already readable.  Valid
 * until symbols_names_free. */
const char *symbols_readable_name(struct symbols *symbols, const char *name);
void symbols_names_free(struct symbols *symbols);

/* symbols_cache.c: frames already looked up, by (module, pc). */
bool symbols_cache_get(struct symbols *symbols, uint64_t pc, uint32_t module,
                       struct symbols_frame *frame, bool *found);
void symbols_cache_put(struct symbols *symbols, uint32_t module,
                       const struct symbols_frame *frame, bool found);
void symbols_cache_free(struct symbols *symbols);

#endif
