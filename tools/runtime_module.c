/*
 * The runtimes' modules by the start of their file names: a library's
 * name stays while its version and the directory it is installed in
 * change from one system to the next, and the name is all that is left
 * of a module whose file is gone.
 */
#include "config.h"

#include "runtime_module.h"

#include <string.h>

static const char *const runtime_prefixes[] = {
    "libc.",      /* glibc's libc.so.6, musl's libc.musl-x86_64.so.1 */
    "libc-",      /* glibc before 2.34: libc-2.31.so */
    "ld-",        /* ld-linux-x86-64.so.2, ld-musl-x86_64.so.1, ld-2.31.so */
    "ld.so",
    "ld64.so",    /* the loader on ppc64 and s390x */
    "libstdc++.",
    "libc++",     /* LLVM's libc++.so.1 and libc++abi.so.1 */
    "libgcc_s.",
};

#define PREFIX_COUNT (sizeof(runtime_prefixes) / sizeof(runtime_prefixes[0]))

bool runtime_module(const char *name)
{
    for (size_t i = 0; i < PREFIX_COUNT; i++)
        if (strncmp(name, runtime_prefixes[i], strlen(runtime_prefixes[i])) == 0)
            return true;
    return false;
}
