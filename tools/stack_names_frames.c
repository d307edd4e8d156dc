/*
 * A stack's frames as text.  A return address in code the compiler
 * inlined stands for several frames, as debuggers show them: the
 * function holding the code, at the outermost inlined call, then each
 * inlined call, the innermost at the line the return address follows.
 * They share the address, and an inlined call has no offset of its own.
 */
#include "config.h"

#include "stack_names_internal.h"

#include <inttypes.h>
#include <string.h>

size_t stack_names_read(const struct stack_names *names, uint32_t stack,
                        uint64_t *pcs, uint32_t *modules)
{
    if (!names->reader || !stack)
        return 0;
    return log_reader_stack_frames(names->reader, stack, pcs, modules,
                                   MDLOG_MAX_FRAMES);
}

struct stack_part stack_part_of(const struct symbols_frame *frame,
                                unsigned index)
{
    if (index == 0 || index > frame->inlined_count)
        return (struct stack_part){frame->function, frame->file, frame->line,
                                   false};
    const struct symbols_inlined *call =
        &frame->inlined[frame->inlined_count - index];
    return (struct stack_part){call->function, call->file, call->line, true};
}

bool stack_names_look_up(struct stack_names *names, uint64_t pc,
                         uint32_t module, struct symbols_frame *frame)
{
    *frame = (struct symbols_frame){.pc = pc};
    return names->symbols && symbols_lookup(names->symbols, pc, module, frame);
}

static void format_part(const struct symbols_frame *frame, bool known,
                        unsigned index, bool sources, char *text, size_t size)
{
    struct stack_part part = stack_part_of(frame, index);
    const char *module = frame->module ? frame->module : "?";
    if (part.inlined && !part.function)
        part.function = "?";
    if (!known)
        snprintf(text, size, "0x%" PRIx64, frame->pc);
    else if (part.function && part.file && sources)
        snprintf(text, size, "%s  %s:%u", part.function, part.file, part.line);
    else if (part.inlined)
        snprintf(text, size, "%s [inlined]  (%s)", part.function, module);
    else if (part.function)
        snprintf(text, size, "%s + %" PRIu64 "  (%s)", part.function,
                 frame->function_offset, module);
    else
        snprintf(text, size, "%s + 0x%" PRIx64, module, frame->module_offset);
}

unsigned stack_names_frames_at(struct stack_names *names, uint64_t pc,
                               uint32_t module)
{
    struct symbols_frame frame;
    stack_names_look_up(names, pc, module, &frame);
    return 1 + frame.inlined_count;
}

void stack_names_frame(struct stack_names *names, uint64_t pc, uint32_t module,
                       unsigned index, bool sources, char *text, size_t size)
{
    struct symbols_frame frame;
    bool known = stack_names_look_up(names, pc, module, &frame);
    format_part(&frame, known, index, sources, text, size);
}

size_t stack_names_each_frame(struct stack_names *names, uint32_t stack,
                              bool sources, stack_names_visit *visit,
                              void *context)
{
    uint64_t pcs[MDLOG_MAX_FRAMES];
    uint32_t modules[MDLOG_MAX_FRAMES];
    size_t count = stack_names_read(names, stack, pcs, modules), visited = 0;
    for (size_t i = count; i-- > 0;) {
        struct symbols_frame frame;
        bool known = stack_names_look_up(names, pcs[i], modules[i], &frame);
        for (unsigned part = 0; part <= frame.inlined_count; part++) {
            char text[512];
            format_part(&frame, known, part, sources, text, sizeof(text));
            visit(text, visited++, context);
        }
    }
    return visited;
}

static void print_frame_line(FILE *out, size_t number,
                             const struct symbols_frame *frame, bool known,
                             unsigned index, bool sources)
{
    struct stack_part part = stack_part_of(frame, index);
    fprintf(out, "%-3zu %-28s 0x%" PRIx64 " ", number,
            known && frame->module ? frame->module : "???", frame->pc);
    if (part.inlined)
        fprintf(out, "%s [inlined]", part.function ? part.function : "?");
    else if (known && part.function)
        fprintf(out, "%s + %" PRIu64, part.function, frame->function_offset);
    else
        fprintf(out, "0x%" PRIx64, known ? frame->module_offset : frame->pc);
    if (sources && known && part.file)
        fprintf(out, "  %s:%u", part.file, part.line);
    fputc('\n', out);
}

void stack_names_print_frames(struct stack_names *names, FILE *out,
                              uint32_t stack, bool sources)
{
    uint64_t pcs[MDLOG_MAX_FRAMES];
    uint32_t modules[MDLOG_MAX_FRAMES];
    size_t count = stack_names_read(names, stack, pcs, modules), number = 0;
    for (size_t i = 0; i < count; i++)
        number += stack_names_frames_at(names, pcs[i], modules[i]);
    for (size_t i = count; i-- > 0;) {
        struct symbols_frame frame;
        bool known = stack_names_look_up(names, pcs[i], modules[i], &frame);
        for (unsigned part = 0; part <= frame.inlined_count; part++)
            print_frame_line(out, --number, &frame, known, part, sources);
    }
}

/* A C++ name matches with or without its parameters, a C name with or
 * without the compiler's clone suffix (.isra.0). */
static bool is_function(const char *name, const char *function)
{
    size_t length = strlen(function);
    return name && strncmp(name, function, length) == 0 &&
           (name[length] == '\0' || name[length] == '(' || name[length] == '.');
}

bool stack_names_has_function(struct stack_names *names, uint32_t stack,
                              const char *function)
{
    uint64_t pcs[MDLOG_MAX_FRAMES];
    uint32_t modules[MDLOG_MAX_FRAMES];
    size_t count = stack_names_read(names, stack, pcs, modules);
    for (size_t i = 0; i < count; i++) {
        struct symbols_frame frame;
        if (!stack_names_look_up(names, pcs[i], modules[i], &frame))
            continue;
        for (unsigned part = 0; part <= frame.inlined_count; part++)
            if (is_function(stack_part_of(&frame, part).function, function))
                return true;
    }
    return false;
}
