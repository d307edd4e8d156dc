/*
 * Class names of stacks, cached by stack id in a uthash table: a heap
 * holds millions of blocks from a few thousand stacks.
 */
#include "config.h"
#include "stack_names.h"

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

struct stack_names {
    const struct log_reader *reader;
    struct symbols *symbols;
    struct named_stack *table;
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

void stack_names_frame(struct stack_names *names, uint64_t pc, uint32_t module,
                       char *text, size_t size)
{
    struct symbols_frame frame;
    if (!names->symbols || !symbols_lookup(names->symbols, pc, module, &frame)) {
        snprintf(text, size, "0x%" PRIx64, pc);
        return;
    }
    if (frame.function && frame.file)
        snprintf(text, size, "%s  %s:%u", frame.function, frame.file,
                 frame.line);
    else if (frame.function)
        snprintf(text, size, "%s + %" PRIu64 "  (%s)", frame.function,
                 frame.function_offset, frame.module ? frame.module : "?");
    else
        snprintf(text, size, "%s + 0x%" PRIx64,
                 frame.module ? frame.module : "?", frame.module_offset);
}

static char *describe_class(struct stack_names *names, uint32_t stack)
{
    uint64_t pc;
    uint32_t module;
    if (!names->reader || !stack ||
        log_reader_stack_frames(names->reader, stack, &pc, &module, 1) != 1)
        return strdup("non-object");
    struct symbols_frame frame;
    char text[512];
    if (names->symbols && symbols_lookup(names->symbols, pc, module, &frame) &&
        frame.function)
        snprintf(text, sizeof(text), "malloc in %s", frame.function);
    else if (names->symbols && frame.module)
        snprintf(text, sizeof(text), "malloc in %s + 0x%" PRIx64,
                 frame.module, frame.module_offset);
    else
        snprintf(text, sizeof(text), "malloc in 0x%" PRIx64, pc);
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
