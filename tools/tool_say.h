/* The one-line messages the tools' libraries hand back to their callers. */
#ifndef MALLOCDEBUG_TOOL_SAY_H
#define MALLOCDEBUG_TOOL_SAY_H

#include <stddef.h>

/* Formats one message line into `message` (which may be NULL). */
void tool_say(char *message, size_t size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

#endif
