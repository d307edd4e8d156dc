/*
 * Progress on stderr for work that takes more than a second, when stderr
 * is a terminal: one line rewritten in place every second ("leaks:
 * scanning the heap: 45%"), erased when the work is done.  Nothing is
 * written otherwise, so scripts and logs see only the report.  It uses
 * SIGALRM and the real-time interval timer.
 */
#ifndef MALLOCDEBUG_PROGRESS_H
#define MALLOCDEBUG_PROGRESS_H

#include <stdint.h>

/* `tool` prefixes every line ("leaks"). */
void progress_begin(const char *tool);
/* `done` of `total` (total 0: no percentage) of the step `what`. */
void progress_note(const char *what, uint64_t done, uint64_t total);
void progress_end(void);

#endif
