/*
 * A symbol table's lookups and its end: a lookup is answered from the
 * cache when the same (module, pc) was asked before, else by the process
 * or the log the table was opened on.
 */
#include "config.h"

#include "symbols_internal.h"

#include <stdio.h>
#include <stdlib.h>

void symbols_close(struct symbols *symbols)
{
    if (symbols == NULL)
        return;
    symbols_cache_free(symbols);
    symbols_names_free(symbols);
    symbols_inlined_free(symbols);
    symbols_log_close(symbols);
    if (symbols->process != NULL)
        dwfl_end(symbols->process);
    free(symbols);
}

bool symbols_lookup(struct symbols *symbols, uint64_t pc, uint32_t module,
                    struct symbols_frame *frame)
{
    *frame = (struct symbols_frame){.pc = pc};
    /* A return address is never 0, and pc - 1 must stay in the call. */
    if (pc == 0)
        return false;
    /* A process has one map: the module index means nothing there. */
    if (symbols->process != NULL)
        module = SYMBOLS_ANY_MODULE;
    bool found;
    if (symbols_cache_get(symbols, pc, module, frame, &found))
        return found;
    found = symbols->process != NULL
                ? symbols_pid_lookup(symbols, pc, frame)
                : symbols_log_lookup(symbols, pc, module, frame);
    symbols_cache_put(symbols, module, frame, found);
    return found;
}
