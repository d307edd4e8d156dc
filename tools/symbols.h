/*
 * Turning return addresses into function, file and line, with elfutils,
 * for the reports of heap, leaks and malloc_history.
 *
 * A symbol table is opened either on a live process (its modules as
 * /proc/PID/maps shows them now) or on a stack log (the module list the
 * log recorded, so a process that is gone can still be symbolized, and a
 * module unloaded since still names its frames).  Either way a module
 * whose file is gone or changed (another build id) still gives its name
 * and the offset in it.
 */
#ifndef MALLOCDEBUG_SYMBOLS_H
#define MALLOCDEBUG_SYMBOLS_H

#include "log_reader.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct symbols;

/* On failure these return NULL and write one line into `message`: what
 * is wrong and what to do.  `message` may be NULL. */
struct symbols *symbols_open_pid(pid_t pid, char *message,
                                 size_t message_size);
/* The reader must stay open while the table is in use. */
struct symbols *symbols_open_log(const struct log_reader *reader,
                                 char *message, size_t message_size);
void symbols_close(struct symbols *symbols);

/* Pass as `module` when the log gives no module for the address (and
 * always for a table opened on a pid). */
#define SYMBOLS_ANY_MODULE UINT32_MAX

/* A call the compiler inlined: the function called, and where in it the
 * code at the frame's pc comes from. */
struct symbols_inlined {
    const char *function; /* demangled; NULL when unknown */
    const char *file;     /* as symbols_frame's; NULL when unknown */
    unsigned line;        /* 0 when unknown */
};

struct symbols_frame {
    uint64_t pc;
    const char *function;     /* demangled, without a symbol version;
                                 NULL when unknown */
    uint64_t function_offset; /* pc - the function's start */
    const char *module;       /* the module's file name, no directory;
                                 NULL when no module holds pc */
    uint64_t module_offset;   /* pc - the module's load bias: the address
                                 in the module's file, as addr2line -e
                                 takes it (for a shared library or a PIE,
                                 pc - where it is loaded) */
    const char *file;         /* source file, as the debug information
                                 names it (absolute, or relative to where
                                 it was compiled); NULL when unknown */
    unsigned line;            /* 0 when unknown */
    /* When the code at pc was inlined into `function`: the inlined calls,
     * innermost first.  inlined[0] is the function the code is from, at
     * the line of the call before pc; each next one is the function the
     * one before was inlined into, at that inlined call; `file` and
     * `line` above are then the outermost inlined call, in `function`.
     * Debuggers show each of them as a frame of its own.  NULL and 0 when
     * the code is `function`'s own. */
    const struct symbols_inlined *inlined;
    unsigned inlined_count;
};

/* Describes the return address `pc`, found in the log's module `module`
 * (log_reader_stack_frames gives it) or SYMBOLS_ANY_MODULE.  Since pc is
 * a return address, file and line are those of the call before it.
 * Always fills `frame`, with NULL and 0 for what is unknown; returns
 * false when not even the module is known.  The strings stay valid until
 * symbols_close. */
bool symbols_lookup(struct symbols *symbols, uint64_t pc, uint32_t module,
                    struct symbols_frame *frame);

#endif
