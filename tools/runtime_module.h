/*
 * The modules of the C and C++ runtimes, known by their file names.
 */
#ifndef MALLOCDEBUG_RUNTIME_MODULE_H
#define MALLOCDEBUG_RUNTIME_MODULE_H

#include <stdbool.h>

/* Whether the module whose file is called `name` (no directory) is the
 * C library, the dynamic loader, the C++ standard library or the
 * unwinder they share: libc.so.6, ld-linux-x86-64.so.2, libstdc++.so.6,
 * libc++.so.1, libgcc_s.so.1 and their other versions. */
bool runtime_module(const char *name);

#endif
