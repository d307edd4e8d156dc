/*
 * Stacks: nodes of the uniquing tree by id, and a stack's frames from its
 * innermost node up to its thread node.  The writer gives every parent a
 * smaller id than its child, so a walk that insists on that always ends,
 * whatever a damaged log links to what.
 */
#include "config.h"

#include "log_reader_internal.h"

static const struct mdlog_stack_node *find_node(const struct log_reader *reader,
                                                uint32_t id)
{
    if (id == 0) /* no stack */
        return NULL;
    const struct log_chunk_ref *ref = log_index_find(
        reader->index.stacks, reader->index.stack_chunks, id);
    if (ref == NULL)
        return NULL;
    const struct mdlog_chunk_header *chunk = log_reader_chunk(reader, ref->chunk);
    /* A stack chunk's count is how many of its nodes are written, not
     * where they are: ids are handed out to threads that write them in
     * any order.  A slot is a node once its pc is set (read_node). */
    uint64_t slot = id - ref->first;
    const struct mdlog_header *live = (const struct mdlog_header *)reader->map;
    if (slot >= log_reader_node_capacity(reader) ||
        id >= __atomic_load_n(&live->node_count, __ATOMIC_ACQUIRE))
        return NULL;
    const struct mdlog_stack_node *nodes = log_reader_records(chunk);
    return &nodes[slot];
}

static bool links_are_possible(const struct mdlog_stack_node *node, uint32_t id)
{
    if (node->module == MDLOG_MODULE_THREAD)
        return node->parent == 0;
    return node->parent != 0 && node->parent < id;
}

/* Copies node `id` when it is written and its links are possible.  The
 * copy is what callers walk on, so a writer changing the node meanwhile
 * cannot turn a checked link into a loop. */
static bool read_node(const struct log_reader *reader, uint32_t id,
                      struct mdlog_stack_node *copy)
{
    const struct mdlog_stack_node *node = find_node(reader, id);
    if (node == NULL)
        return false;
    /* The pc is stored last: once it is set the rest of the node is. */
    copy->pc = __atomic_load_n(&node->pc, __ATOMIC_ACQUIRE);
    copy->parent = node->parent;
    copy->module = node->module;
    return copy->pc != 0 && links_are_possible(copy, id);
}

const struct mdlog_stack_node *log_reader_node(const struct log_reader *reader,
                                               uint32_t id)
{
    struct mdlog_stack_node copy;
    return read_node(reader, id, &copy) ? find_node(reader, id) : NULL;
}

size_t log_reader_stack_frames(const struct log_reader *reader, uint32_t stack,
                               uint64_t *pcs, uint32_t *modules, size_t max)
{
    size_t limit = max < MDLOG_MAX_FRAMES ? max : MDLOG_MAX_FRAMES;
    size_t frames = 0;
    struct mdlog_stack_node node;
    uint32_t id = stack;
    while (frames < limit && read_node(reader, id, &node) &&
           node.module != MDLOG_MODULE_THREAD) {
        pcs[frames] = node.pc;
        if (modules != NULL)
            modules[frames] = node.module;
        frames++;
        id = node.parent; /* checked: smaller than id */
    }
    return frames;
}

bool log_reader_stack_thread(const struct log_reader *reader, uint32_t stack,
                             uint32_t *thread)
{
    struct mdlog_stack_node node;
    uint32_t id = stack;
    /* At most MDLOG_MAX_FRAMES frames, then the thread node. */
    for (unsigned steps = 0; steps <= MDLOG_MAX_FRAMES; steps++) {
        if (!read_node(reader, id, &node))
            return false;
        if (node.module == MDLOG_MODULE_THREAD) {
            if (node.pc > UINT32_MAX)
                return false;
            *thread = (uint32_t)node.pc;
            return true;
        }
        id = node.parent;
    }
    return false;
}
