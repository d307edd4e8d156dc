/*
 * Symbol names made readable: C++ names demangled, and the version a
 * symbol table may add to a name ("fopen@@GLIBC_2.2.5") dropped, since
 * it names the interface, not the function.  elfutils has no demangler;
 * libstdc++'s __cxa_demangle is the one every system with gcc already
 * has, and it is reached through its C ABI.  Each name is made readable
 * once: the many return addresses of one function share the result.
 */
#include "config.h"

#include "symbols_internal.h"

#include <stdlib.h>
#include <string.h>

/* libstdc++'s, declared in <cxxabi.h>, which is C++ only. */
char *__cxa_demangle(const char *mangled, char *buffer, size_t *length,
                     int *status);

struct symbols_name {
    const char *readable; /* malloc'd by __cxa_demangle, or `mangled` */
    UT_hash_handle hh;
    char mangled[]; /* the name without its version */
};

/* The Itanium C++ ABI's prefix of a mangled name. */
static bool is_mangled(const char *name)
{
    return name[0] == '_' && name[1] == 'Z';
}

static struct symbols_name *make_readable(const char *name, size_t length)
{
    struct symbols_name *entry = malloc(sizeof(*entry) + length + 1);
    if (entry == NULL)
        return NULL;
    memcpy(entry->mangled, name, length);
    entry->mangled[length] = '\0';
    int status = -1;
    char *readable = is_mangled(entry->mangled)
                         ? __cxa_demangle(entry->mangled, NULL, NULL, &status)
                         : NULL;
    /* Not every "_Z" name is C++ (a C function may be called so): such a
     * name stays as it is. */
    entry->readable = status == 0 && readable != NULL ? readable : entry->mangled;
    if (entry->readable != readable)
        free(readable);
    return entry;
}

static void free_entry(struct symbols_name *entry)
{
    if (entry->readable != entry->mangled)
        free((char *)entry->readable);
    free(entry);
}

const char *symbols_readable_name(struct symbols *symbols, const char *name)
{
    const char *version = strchr(name, '@');
    if (!is_mangled(name) && version == NULL)
        return name;
    size_t length = version != NULL ? (size_t)(version - name) : strlen(name);
    if (length == 0)
        return name;
    struct symbols_name *entry;
    HASH_FIND(hh, symbols->names, name, length, entry);
    if (entry != NULL)
        return entry->readable;
    entry = make_readable(name, length);
    if (entry == NULL)
        return name;
    HASH_ADD_KEYPTR(hh, symbols->names, entry->mangled, length, entry);
    if (entry->hh.tbl == NULL) {
        free_entry(entry);
        return name;
    }
    return entry->readable;
}

void symbols_names_free(struct symbols *symbols)
{
    struct symbols_name *entry, *next;
    HASH_ITER(hh, symbols->names, entry, next) {
        HASH_DEL(symbols->names, entry);
        free_entry(entry);
    }
}
