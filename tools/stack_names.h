/*
 * Names for allocation stacks in the tools' reports: the class name of a
 * block ("malloc in caller", as macOS's heap and leaks say, or
 * "non-object" when its stack is unknown), and the frames of a stack as
 * text.  Each stack is described once and remembered.
 */
#ifndef MALLOCDEBUG_STACK_NAMES_H
#define MALLOCDEBUG_STACK_NAMES_H

#include "log_reader.h"
#include "symbols.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct stack_names;

/* Both may be NULL: then every stack is unknown. */
struct stack_names *stack_names_open(const struct log_reader *reader,
                                     struct symbols *symbols);
void stack_names_close(struct stack_names *names);

/* "malloc in <the function that called the allocator>", or "non-object"
 * for stack 0 or a stack that cannot be read.  The function is the first
 * one outside the C and C++ runtimes (runtime_module.h), so that blocks
 * allocated through strdup or operator new are named after the program's
 * code; it is the stack's first when all are in the runtimes.  When the
 * call was inlined, the function is the innermost inlined one, whose
 * code made it.  Valid until close. */
const char *stack_names_class(struct stack_names *names, uint32_t stack);

/* How many frames the return address `pc` stands for: one, and one more
 * for each call inlined where it is (see struct symbols_frame). */
unsigned stack_names_frames_at(struct stack_names *names, uint64_t pc,
                               uint32_t module);

/* The text of frame `index` of those at pc, 0 for the function holding
 * the code and then the calls inlined into it, outermost first:
 * "function  file:line" (when `sources`), "function + offset  (module)",
 * "function [inlined]  (module)" for an inlined call, "module + offset",
 * or the bare address. */
void stack_names_frame(struct stack_names *names, uint64_t pc, uint32_t module,
                       unsigned index, bool sources, char *text, size_t size);

/* Calls `visit` with the text of each frame of `stack` (as
 * stack_names_frame writes it), outermost first, each inlined call a
 * frame of its own, and with the frame's place in that order from 0.
 * Returns how many frames there were. */
typedef void stack_names_visit(const char *text, size_t index, void *context);
size_t stack_names_each_frame(struct stack_names *names, uint32_t stack,
                              bool sources, stack_names_visit *visit,
                              void *context);

/* Prints the frames of `stack`, outermost first, numbered down to 0 as
 * macOS does: "2   prog   0x55d0c0de1234 main + 20  prog.c:12", and an
 * inlined call as a line of its own, with the same address:
 * "1   prog   0x55d0c0de1234 helper [inlined]  prog.c:5".  Source
 * positions only when `sources`. */
void stack_names_print_frames(struct stack_names *names, FILE *out,
                              uint32_t stack, bool sources);

/* Whether a frame of `stack`, inlined calls included, is in function
 * `function`. */
bool stack_names_has_function(struct stack_names *names, uint32_t stack,
                              const char *function);

#endif
