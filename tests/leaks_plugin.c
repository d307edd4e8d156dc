/*
 * A module tests/leaks_target loads with dlopen: the block it is given
 * stays alive only through this module's global, so leaks(1) must scan
 * the data of libraries loaded at run time too.
 */
void leaks_plugin_keep(void *block);

/* volatile: nothing reads it, and the store must stay. */
static void *volatile plugin_kept;

void leaks_plugin_keep(void *block)
{
    plugin_kept = block;
}
