/* Writing JSON strings for the tools' --json output. */
#ifndef MALLOCDEBUG_JSON_TEXT_H
#define MALLOCDEBUG_JSON_TEXT_H

#include <stdio.h>

/* Writes `text` as a JSON string, quotes included; a byte that is not
 * part of a well-formed UTF-8 character is written as U+FFFD. */
void json_write_string(FILE *out, const char *text);

#endif
