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
 * for stack 0 or a stack that cannot be read.  Valid until close. */
const char *stack_names_class(struct stack_names *names, uint32_t stack);

/* The text of one frame: "function  file:line" (when `sources`),
 * "function + offset  (module)", "module + offset", or the bare address. */
void stack_names_frame(struct stack_names *names, uint64_t pc, uint32_t module,
                       bool sources, char *text, size_t size);

/* Prints the frames of `stack`, outermost first, numbered down to 0 as
 * macOS does: "2   prog   0x55d0c0de1234 main + 20  prog.c:12".  Source
 * positions only when `sources`. */
void stack_names_print_frames(struct stack_names *names, FILE *out,
                              uint32_t stack, bool sources);

/* Whether a frame of `stack` is in function `function`. */
bool stack_names_has_function(struct stack_names *names, uint32_t stack,
                              const char *function);

#endif
