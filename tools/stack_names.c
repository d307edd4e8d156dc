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
                       bool sources, char *text, size_t size)
{
    struct symbols_frame frame;
    if (!names->symbols || !symbols_lookup(names->symbols, pc, module, &frame)) {
        snprintf(text, size, "0x%" PRIx64, pc);
        return;
    }
    if (frame.function && frame.file && sources)
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

static size_t frames_of(struct stack_names *names, uint32_t stack,
                        uint64_t *pcs, uint32_t *modules)
{
    if (!names->reader || !stack)
        return 0;
    return log_reader_stack_frames(names->reader, stack, pcs, modules,
                                   MDLOG_MAX_FRAMES);
}

void stack_names_print_frames(struct stack_names *names, FILE *out,
                              uint32_t stack, bool sources)
{
    uint64_t pcs[MDLOG_MAX_FRAMES];
    uint32_t modules[MDLOG_MAX_FRAMES];
    size_t count = frames_of(names, stack, pcs, modules);
    for (size_t i = count; i-- > 0;) {
        struct symbols_frame frame = {.pc = pcs[i]};
        bool known = names->symbols &&
                     symbols_lookup(names->symbols, pcs[i], modules[i], &frame);
        fprintf(out, "%-3zu %-28s 0x%" PRIx64 " ", i,
                known && frame.module ? frame.module : "???", pcs[i]);
        if (known && frame.function)
            fprintf(out, "%s + %" PRIu64, frame.function, frame.function_offset);
        else
            fprintf(out, "0x%" PRIx64, known ? frame.module_offset : pcs[i]);
        if (sources && known && frame.file)
            fprintf(out, "  %s:%u", frame.file, frame.line);
        fputc('\n', out);
    }
}

bool stack_names_has_function(struct stack_names *names, uint32_t stack,
                              const char *function)
{
    uint64_t pcs[MDLOG_MAX_FRAMES];
    uint32_t modules[MDLOG_MAX_FRAMES];
    size_t count = frames_of(names, stack, pcs, modules);
    for (size_t i = 0; i < count && names->symbols; i++) {
        struct symbols_frame frame;
        size_t length = strlen(function);
        /* A C++ name matches with or without its parameters, a C name
         * with or without the compiler's clone suffix (.isra.0). */
        if (symbols_lookup(names->symbols, pcs[i], modules[i], &frame) &&
            frame.function && strncmp(frame.function, function, length) == 0 &&
            (frame.function[length] == '\0' || frame.function[length] == '(' ||
             frame.function[length] == '.'))
            return true;
    }
    return false;
}
