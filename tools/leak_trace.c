/*
 * The scan remembers, for each block, what first reached it: another
 * block or a root.  Following that back from a block gives one path from
 * a root, printed from the root down.
 */
#include "config.h"
#include "leak_trace.h"

#include <inttypes.h>
#include <stdlib.h>

static void print_block(FILE *out, struct live_process *process,
                        const struct heap_block *block, unsigned depth)
{
    fprintf(out, "%*s%#" PRIx64 " [%" PRIu64 "] %s\n", 2 + 3 * depth, "",
            block->address, block->size,
            stack_names_class(process->names, block->stack));
}

int leak_trace_print(FILE *out, struct live_process *process,
                     const struct leak_scan *scan,
                     const struct leak_roots *roots, uint64_t address,
                     char *message, size_t message_size)
{
    const struct heap_image *image = scan->image;
    size_t block = heap_image_block_at(image, address);
    if (block == SIZE_MAX) {
        snprintf(message, message_size,
                 "%#" PRIx64 " is not in a block in use in process %d",
                 address, (int)process->target.pid);
        return -1;
    }
    const struct heap_block *blocks = image->snapshot->blocks;
    if (!scan->reach[block].reached) {
        fprintf(out, "%#" PRIx64 " is in a leaked block: no root reaches it\n",
                address);
        print_block(out, process, &blocks[block], 0);
        return 1;
    }
    size_t length = 0, *path = malloc((image->snapshot->block_count + 1) * sizeof(*path));
    if (!path) {
        snprintf(message, message_size, "out of memory");
        return -1;
    }
    size_t at = block;
    for (; !scan->reach[at].from_root && length <= image->snapshot->block_count;
         at = scan->reach[at].index)
        path[length++] = at;
    path[length++] = at;
    char root[256];
    leak_root_describe(&roots->roots[scan->reach[at].index], root, sizeof(root));
    fprintf(out, "Tracing references to %#" PRIx64 ":\n  %s\n", address, root);
    for (size_t i = length; i-- > 0;)
        print_block(out, process, &blocks[path[i]], (unsigned)(length - i));
    free(path);
    return 0;
}
