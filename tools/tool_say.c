#include "config.h"
#include "tool_say.h"

#include <stdarg.h>
#include <stdio.h>

void tool_say(char *message, size_t size, const char *format, ...)
{
    if (message == NULL || size == 0)
        return;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, size, format, arguments);
    va_end(arguments);
}
