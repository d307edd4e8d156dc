#include "config.h"
#include "json_text.h"

#include <stdbool.h>

static bool is_continuation(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

/* The length of the well-formed UTF-8 character at `c` (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF), or 0.  Paths
 * and zone names are bytes; JSON text must be UTF-8. */
static unsigned utf8_length(const unsigned char *c)
{
    unsigned char lead = c[0], second = c[1];
    if (lead < 0x80)
        return 1;
    if (lead >= 0xc2 && lead <= 0xdf)
        return is_continuation(second) ? 2 : 0;
    /* The second byte's range, narrowed for E0, ED, F0 and F4. */
    unsigned char low = 0x80, high = 0xbf;
    unsigned length;
    if (lead >= 0xe0 && lead <= 0xef) {
        length = 3;
        low = lead == 0xe0 ? 0xa0 : 0x80;
        high = lead == 0xed ? 0x9f : 0xbf;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        length = 4;
        low = lead == 0xf0 ? 0x90 : 0x80;
        high = lead == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (second < low || second > high)
        return 0;
    for (unsigned i = 2; i < length; i++)
        if (!is_continuation(c[i]))
            return 0;
    return length;
}

void json_write_string(FILE *out, const char *text)
{
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)text; *c;) {
        unsigned length = utf8_length(c);
        if (*c == '"' || *c == '\\')
            fprintf(out, "\\%c", *c);
        else if (*c < 0x20)
            fprintf(out, "\\u%04x", *c);
        else if (length == 0)
            fputs("\\ufffd", out); /* a byte that is not UTF-8 */
        else
            fwrite(c, 1, length, out);
        c += length ? length : 1;
    }
    fputc('"', out);
}
