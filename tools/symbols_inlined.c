/*
 * Calls the compiler inlined.  Code inlined into a function belongs to
 * that function in the symbol table, and the line table gives only its
 * innermost source line; the debug information's scopes at the address
 * tell the rest.  Between the address and the DW_TAG_subprogram holding
 * it, each DW_TAG_inlined_subroutine is one inlined call: its abstract
 * origin names the function inlined, and its DW_AT_call_file and
 * DW_AT_call_line are where the call was written, in the function it was
 * inlined into.
 */
#include "config.h"

#include "symbols_internal.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <limits.h>
#include <stdlib.h>

/* The calls of one frame, allocated once and kept until the table is
 * closed: the frames handed out, and the cache, point into them. */
struct symbols_inlined_chain {
    struct symbols_inlined_chain *next;
    struct symbols_inlined calls[];
};

static bool is_function(Dwarf_Die *scope)
{
    return dwarf_tag(scope) == DW_TAG_subprogram;
}

static bool is_inlined_call(Dwarf_Die *scope)
{
    return dwarf_tag(scope) == DW_TAG_inlined_subroutine;
}

/* Scopes come innermost first; those past the function holding the code
 * (a nested function's parent, the unit) are not calls. */
static unsigned count_inlined_calls(Dwarf_Die *scopes, int count)
{
    unsigned calls = 0;
    for (int i = 0; i < count && !is_function(&scopes[i]); i++)
        calls += is_inlined_call(&scopes[i]);
    return calls;
}

/* The attribute on the call, or on the function declaration it points
 * to (its abstract origin, and that one's specification). */
static const char *integrated_string(Dwarf_Die *scope, unsigned name)
{
    Dwarf_Attribute attribute;
    return dwarf_formstring(dwarf_attr_integrate(scope, name, &attribute));
}

/* The linkage name first, demangled, so that a C++ function reads as its
 * symbol-table name does ("ns::f(int)", not "f"). */
static const char *inlined_function(struct symbols *symbols, Dwarf_Die *scope)
{
    const char *name = integrated_string(scope, DW_AT_linkage_name);
    if (name == NULL)
        name = integrated_string(scope, DW_AT_MIPS_linkage_name);
    if (name == NULL)
        name = integrated_string(scope, DW_AT_name);
    return name != NULL ? symbols_readable_name(symbols, name) : NULL;
}

static bool unsigned_attribute(Dwarf_Die *scope, unsigned name, Dwarf_Word *value)
{
    Dwarf_Attribute attribute;
    return dwarf_formudata(dwarf_attr(scope, name, &attribute), value) == 0;
}

/* Where the inlined call was written; both unknown unless both are
 * known, as for a line-table position. */
static void call_site(Dwarf_Die *scope, const char **file, unsigned *line)
{
    *file = NULL;
    *line = 0;
    Dwarf_Word number, index;
    Dwarf_Die unit;
    Dwarf_Files *files;
    size_t file_count;
    if (!unsigned_attribute(scope, DW_AT_call_line, &number) || number == 0 ||
        number > UINT_MAX || !unsigned_attribute(scope, DW_AT_call_file, &index) ||
        dwarf_diecu(scope, &unit, NULL, NULL) == NULL ||
        dwarf_getsrcfiles(&unit, &files, &file_count) != 0 || index >= file_count)
        return;
    *file = dwarf_filesrc(files, index, NULL, NULL);
    if (*file != NULL)
        *line = (unsigned)number;
}

/* Each call takes the position found so far (the line table's for the
 * innermost), then hands on its own call site to the next one out. */
static void fill_chain(struct symbols *symbols, struct symbols_inlined_chain *chain,
                       Dwarf_Die *scopes, int count, struct symbols_frame *frame)
{
    const char *file = frame->file;
    unsigned line = frame->line, filled = 0;
    for (int i = 0; i < count && !is_function(&scopes[i]); i++) {
        if (!is_inlined_call(&scopes[i]))
            continue;
        chain->calls[filled++] = (struct symbols_inlined){
            .function = inlined_function(symbols, &scopes[i]),
            .file = file,
            .line = line,
        };
        call_site(&scopes[i], &file, &line);
    }
    frame->file = file;
    frame->line = line;
    frame->inlined = chain->calls;
    frame->inlined_count = filled;
}

void symbols_describe_inlined(struct symbols *symbols, Dwfl_Module *module,
                              uint64_t call, struct symbols_frame *frame)
{
    Dwarf_Addr bias = 0;
    Dwarf_Die *unit = dwfl_module_addrdie(module, call, &bias);
    Dwarf_Die *scopes = NULL;
    int count = unit != NULL ? dwarf_getscopes(unit, call - bias, &scopes) : -1;
    unsigned calls = count > 0 ? count_inlined_calls(scopes, count) : 0;
    struct symbols_inlined_chain *chain =
        calls > 0 ? malloc(sizeof(*chain) + calls * sizeof(chain->calls[0]))
                  : NULL;
    if (chain != NULL) {
        fill_chain(symbols, chain, scopes, count, frame);
        chain->next = symbols->inlined_chains;
        symbols->inlined_chains = chain;
    }
    free(scopes);
}

void symbols_inlined_free(struct symbols *symbols)
{
    while (symbols->inlined_chains != NULL) {
        struct symbols_inlined_chain *chain = symbols->inlined_chains;
        symbols->inlined_chains = chain->next;
        free(chain);
    }
}
