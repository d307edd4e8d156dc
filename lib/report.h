/*
 * Error reports in the macOS form, "prog(pid,0xthread) malloc: *** ...".
 * Formatted into a fixed buffer on the stack and written with write(2):
 * reporting never allocates, so it works with a broken heap.
 */
#ifndef MALLOCDEBUG_REPORT_H
#define MALLOCDEBUG_REPORT_H

#include <stddef.h>
#include <stdint.h>

#define REPORT_LINE_MAX 512

struct report_line {
    char text[REPORT_LINE_MAX];
    size_t length;
};

void report_line_begin(struct report_line *line);
void report_append(struct report_line *line, const char *text);
void report_append_decimal(struct report_line *line, uintmax_t value);
void report_append_hex(struct report_line *line, uintmax_t value);
/* Adds the newline and writes the line to the report stream. */
void report_line_write(struct report_line *line);

/* "*** error for object 0x..: <what>", then the malloc_error_break line
 * and the call to malloc_error_break(). */
void report_pointer_error(const void *pointer, const char *what);
/* "*** <what>", then as above. */
void report_error(const char *what);

#endif
