/*
 * Reports in the macOS form, "prog(pid,0xthread) malloc: *** ...".
 * Formatted into a fixed buffer on the stack and written with write(2):
 * reporting never allocates, so it works with a broken heap.  Where a
 * report goes, and what happens after it (malloc_error_break, then stop,
 * sleep or abort), follows the Malloc* options.
 */
#ifndef MALLOCDEBUG_REPORT_H
#define MALLOCDEBUG_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPORT_LINE_MAX 512

struct report_line {
    char text[REPORT_LINE_MAX];
    size_t length;
};

/* Starts a line with "prog(pid,0xthread) malloc: ". */
void report_line_begin(struct report_line *line);
void report_append(struct report_line *line, const char *text);
void report_append_decimal(struct report_line *line, uintmax_t value);
void report_append_hex(struct report_line *line, uintmax_t value);
/* Starts a line with "prog(pid) <who>: ", for messages that are not
 * errors of the program. */
void report_line_begin_named(struct report_line *line, const char *who);
/* Starts a line with "*** malloc_zone_check: zone NAME: ", for the
 * zones' consistency checks. */
void report_check_line_begin(struct report_line *line, const char *zone_name);
/* Reports a failed check, "WHAT at 0xWHERE", as one such line; returns
 * 0, what the zone's check then returns. */
int report_check_failed(const char *zone_name, const char *what,
                        uintptr_t where);
/* Adds the newline and writes the line to the report stream (stderr or
 * MallocLogFile), or to `fd`. */
void report_line_write(struct report_line *line);
void report_line_write_to(struct report_line *line, int fd);

enum report_kind {
    REPORT_KIND_ERROR,      /* a misuse: bad free, failed allocation */
    REPORT_KIND_CORRUPTION, /* the heap is damaged */
};

/* "*** error for object 0x..: <what>", then the malloc_error_break line,
 * the call to malloc_error_break() and what the options ask for. */
void report_pointer_error(const void *pointer, const char *what);
/* "*** <what>", then as above. */
void report_error(const char *what);
/* Writes a report made of `count` lines, then concludes it as above. */
void report_emit(struct report_line *lines, unsigned count,
                 enum report_kind kind);
/* Sleeps that many seconds, across signals, without allocating. */
void report_sleep(unsigned seconds);
/* "*** can't allocate region of size N", as an error. */
void report_allocation_failure(size_t size);

#endif
