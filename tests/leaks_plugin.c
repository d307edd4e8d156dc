/*
 * A module tests/leaks_target loads with dlopen: the block it is given
 * stays alive only through this module's global, so leaks(1) must scan
 * the data of libraries loaded at run time too.  tests/stacklog_probe
 * loads two copies of it, one after the other, and allocates through
 * each: their frames must be told apart in the log.
 */
#include <stdlib.h>

void leaks_plugin_keep(void *block);
void *leaks_plugin_allocate(size_t size);

/* volatile: nothing reads it, and the store must stay. */
static void *volatile plugin_kept;

void leaks_plugin_keep(void *block)
{
    plugin_kept = block;
}

/* Not a tail call: the allocation's stack goes through this module. */
__attribute__((noinline)) void *leaks_plugin_allocate(size_t size)
{
    void *block = malloc(size);
    __asm__ volatile("" : : "r"(block) : "memory");
    return block;
}
