/*
 * What the files of stack_names share: the table, a stack's return
 * addresses, and the frames one return address stands for.
 */
#ifndef MALLOCDEBUG_STACK_NAMES_INTERNAL_H
#define MALLOCDEBUG_STACK_NAMES_INTERNAL_H

#include "stack_names.h"

struct named_stack;

struct stack_names {
    const struct log_reader *reader;
    struct symbols *symbols;
    struct named_stack *table;
};

/* The return addresses of `stack` and their modules, innermost first
 * (MDLOG_MAX_FRAMES of room); 0 when there is no reader or stack. */
size_t stack_names_read(const struct stack_names *names, uint32_t stack,
                        uint64_t *pcs, uint32_t *modules);

/* symbols_lookup when there is a symbol table.  The frame is filled
 * either way: unknown, it holds pc only. */
bool stack_names_look_up(struct stack_names *names, uint64_t pc,
                         uint32_t module, struct symbols_frame *frame);

/* One of the frames a return address stands for. */
struct stack_part {
    const char *function; /* NULL when unknown */
    const char *file;     /* NULL when unknown */
    unsigned line;
    bool inlined; /* an inlined call: no code, so no offset, of its own */
};

/* Frame `index` at frame->pc, numbered as for stack_names_frame: 0 is
 * the function holding the code, frame->inlined_count the innermost
 * inlined call. */
struct stack_part stack_part_of(const struct symbols_frame *frame,
                                unsigned index);

#endif
