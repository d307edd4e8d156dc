/*
 * What a module's symbol table and debug information say of a return
 * address.  The call that a return address follows ends at pc - 1, and
 * that is the address described: pc itself may already be the next
 * function (after a call to a function that never returns) or the next
 * source line.  Code inlined there gives a frame for each inlined call
 * (symbols_inlined.c).  Symbols and DWARF are read by libdwfl on first
 * use, so a module's debug information is loaded only when one of its
 * frames is looked up.
 */
#include "config.h"

#include "symbols_internal.h"

#include <string.h>

const char *symbols_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

static void describe_function(struct symbols *symbols, Dwfl_Module *module,
                              uint64_t call, struct symbols_frame *frame)
{
    GElf_Off offset = 0;
    GElf_Sym symbol;
    const char *name =
        dwfl_module_addrinfo(module, call, &offset, &symbol, NULL, NULL, NULL);
    if (name == NULL || name[0] == '\0')
        return;
    frame->function = symbols_readable_name(symbols, name);
    frame->function_offset = offset + (frame->pc - call);
}

static void describe_line(Dwfl_Module *module, uint64_t call,
                          struct symbols_frame *frame)
{
    Dwfl_Line *line = dwfl_module_getsrc(module, call);
    if (line == NULL)
        return;
    int number = 0;
    const char *file = dwfl_lineinfo(line, NULL, &number, NULL, NULL, NULL);
    if (file == NULL || number <= 0)
        return;
    frame->file = file;
    frame->line = (unsigned)number;
}

void symbols_describe(struct symbols *symbols, Dwfl_Module *module,
                      uint64_t pc, struct symbols_frame *frame)
{
    uint64_t call = pc - 1;
    describe_function(symbols, module, call, frame);
    describe_line(module, call, frame);
    symbols_describe_inlined(symbols, module, call, frame);
}
