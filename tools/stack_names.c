/*
 * Class names of stacks, cached by stack id in a uthash table: a heap
 * holds millions of blocks from a few thousand stacks.
 */
#include "config.h"

#include "runtime_module.h"
#include "stack_names_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

struct named_stack {
    uint32_t stack;
    char *class_name;
    UT_hash_handle hh;
};

struct stack_names *stack_names_open(const struct log_reader *reader,
                                     struct symbols *symbols)
{
    struct stack_names *names = calloc(1, sizeof(*names));
    if (names) {
        names->reader = reader;
        names->symbols = symbols;
    }
    return names;
}

void stack_names_close(struct stack_names *names)
{
    if (!names)
        return;
    struct named_stack *entry, *next;
    HASH_ITER(hh, names->table, entry, next) {
        HASH_DEL(names->table, entry);
        free(entry->class_name);
        free(entry);
    }
    free(names);
}

/* The runtimes' allocating functions (strdup, getline, operator new)
 * allocate for their caller: a class is named after the first frame not
 * known to be in a runtime's module, or the first frame when all are.
 * False when the stack has no frames. */
static bool class_frame(struct stack_names *names, uint32_t stack,
                        struct symbols_frame *frame)
{
    uint64_t pcs[MDLOG_MAX_FRAMES];
    uint32_t modules[MDLOG_MAX_FRAMES];
    size_t count = stack_names_read(names, stack, pcs, modules);
    if (count == 0)
        return false;
    for (size_t i = 0; i < count; i++)
        if (!stack_names_look_up(names, pcs[i], modules[i], frame) ||
            !frame->module || !runtime_module(frame->module))
            return true;
    stack_names_look_up(names, pcs[0], modules[0], frame);
    return true;
}

/* The innermost function with a name: the function that made the call,
 * for code inlined into another. */
static const char *calling_function(const struct symbols_frame *frame)
{
    for (unsigned part = frame->inlined_count + 1; part-- > 0;) {
        const char *function = stack_part_of(frame, part).function;
        if (function)
            return function;
    }
    return NULL;
}

static char *describe_class(struct stack_names *names, uint32_t stack)
{
    struct symbols_frame frame;
    if (!class_frame(names, stack, &frame))
        return strdup("non-object");
    const char *function = calling_function(&frame);
    char text[512];
    if (function)
        snprintf(text, sizeof(text), "malloc in %s", function);
    else if (frame.module)
        snprintf(text, sizeof(text), "malloc in %s + 0x%" PRIx64,
                 frame.module, frame.module_offset);
    else
        snprintf(text, sizeof(text), "malloc in 0x%" PRIx64, frame.pc);
    return strdup(text);
}

const char *stack_names_class(struct stack_names *names, uint32_t stack)
{
    struct named_stack *entry;
    HASH_FIND(hh, names->table, &stack, sizeof(stack), entry);
    if (entry)
        return entry->class_name;
    entry = calloc(1, sizeof(*entry));
    char *name = describe_class(names, stack);
    if (!entry || !name) {
        free(entry);
        free(name);
        return "non-object";
    }
    entry->stack = stack;
    entry->class_name = name;
    HASH_ADD(hh, names->table, stack, sizeof(entry->stack), entry);
    return name;
}
