#include "config.h"
#include "size_filter.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

/* A size with an optional k or m suffix; the text after it in `end`. */
static bool parse_size(const char *text, uint64_t *size, const char **end)
{
    if (!isdigit((unsigned char)*text))
        return false;
    char *after;
    errno = 0;
    unsigned long long value = strtoull(text, &after, 10);
    if (errno == ERANGE)
        return false;
    unsigned shift = 0;
    if (*after == 'k' || *after == 'K')
        shift = 10, after++;
    else if (*after == 'm' || *after == 'M')
        shift = 20, after++;
    if (value > (UINT64_MAX >> shift))
        return false;
    *size = (uint64_t)value << shift;
    *end = after;
    return true;
}

bool size_filter_parse(const char *text, struct size_filter *filter)
{
    if (*text++ != '[')
        return false;
    uint64_t low = 0, high = UINT64_MAX;
    const char *at = text;
    if (*at == '-') {
        if (!parse_size(at + 1, &high, &at))
            return false;
    } else {
        if (!parse_size(at, &low, &at))
            return false;
        if (*at == '+')
            at++;
        else if (*at == '-') {
            if (!parse_size(at + 1, &high, &at))
                return false;
        } else
            high = low;
    }
    if (at[0] != ']' || at[1] != '\0' || low > high)
        return false;
    filter->low = low;
    filter->high = high;
    return true;
}

bool size_filter_matches(const struct size_filter *filter, uint64_t size)
{
    return size >= filter->low && size <= filter->high;
}
