/*
 * The uniquing tree: one node per (return address, caller's node), kept
 * in the log's STACKS chunks so that tools read stacks straight from it.
 * A node is found in its caller's list of children
 * (stacklog_node_children.c) or, when that list is full, in the index
 * (stacklog_node_index.c).  A node's id is taken from the header's
 * node_count; its fields are written before its pc, and the node is
 * complete before a list or the index names it, so neither a thread
 * looking it up nor a reader of the log sees it half-written.  Two
 * threads adding the same node at once (only threads of one id share
 * nodes, and a thread's id is reused only after it ended): the list or
 * the index keeps one, and the other stays behind, complete but never
 * referred to.  The lock below is only for mapping a new chunk.
 */
#include "config.h"
#include "lock.h"
#include "os_memory.h"
#include "stacklog.h"

#include <string.h>

#define NODES_PER_CHUNK \
    MDLOG_CHUNK_RECORDS(MDLOG_CHUNK_SIZE, struct mdlog_stack_node)
#define NODE_CHUNKS ((uint64_t)UINT32_MAX / NODES_PER_CHUNK + 1)
static struct mdlog_stack_node **node_chunks; /* records of chunk c */
/* The bytes of chunk c that have memory (stacklog_file_back). */
static uint32_t *node_chunk_backed;
static md_lock_t nodes_lock = MD_LOCK_INITIALIZER;

bool stacklog_nodes_setup(void)
{
    node_chunks = os_map(NODE_CHUNKS * sizeof(*node_chunks));
    node_chunk_backed = os_map(NODE_CHUNKS * sizeof(*node_chunk_backed));
    return node_chunks && node_chunk_backed && stacklog_node_index_setup();
}

static struct mdlog_stack_node *node_chunk_map(uint64_t c)
{
    md_lock(&nodes_lock);
    struct mdlog_stack_node *records = node_chunks[c];
    if (!records) {
        struct mdlog_chunk_header *chunk = stacklog_file_new_chunk(
            MDLOG_CHUNK_STACKS, 0, c * NODES_PER_CHUNK);
        if (chunk) {
            records = (struct mdlog_stack_node *)(chunk + 1);
            node_chunk_backed[c] = STACKLOG_CHUNK_BACKED_AT_START;
            __atomic_store_n(&node_chunks[c], records, __ATOMIC_RELEASE);
        }
    }
    md_unlock(&nodes_lock);
    return records;
}

/* Memory for chunk c's first `end` bytes.  Ids are handed out in order,
 * so its nodes are written about in order too. */
static bool node_chunk_back(uint64_t c, size_t end)
{
    md_lock(&nodes_lock);
    size_t backed = node_chunk_backed[c];
    if (backed < end) {
        struct mdlog_chunk_header *chunk =
            (struct mdlog_chunk_header *)node_chunks[c] - 1;
        size_t more = stacklog_file_back(chunk, backed, end);
        if (more) {
            backed = more;
            __atomic_store_n(&node_chunk_backed[c], (uint32_t)more,
                             __ATOMIC_RELEASE);
        }
    }
    md_unlock(&nodes_lock);
    return backed >= end;
}

/* The node slot of `id`, its chunk mapped and given memory if it was
 * not; NULL if the log cannot grow. */
static struct mdlog_stack_node *node_slot(uint32_t id)
{
    uint64_t c = id / NODES_PER_CHUNK;
    struct mdlog_stack_node *records =
        __atomic_load_n(&node_chunks[c], __ATOMIC_ACQUIRE);
    if (MD_UNLIKELY(!records) && !(records = node_chunk_map(c)))
        return NULL;
    uint32_t slot = id % NODES_PER_CHUNK;
    size_t end = sizeof(struct mdlog_chunk_header) +
                 (slot + 1) * sizeof(struct mdlog_stack_node);
    if (MD_UNLIKELY(end > __atomic_load_n(&node_chunk_backed[c],
                                          __ATOMIC_ACQUIRE)) &&
        !node_chunk_back(c, end))
        return NULL;
    return &records[slot];
}

struct mdlog_stack_node *stacklog_node_record(uint32_t id)
{
    return &node_chunks[id / NODES_PER_CHUNK][id % NODES_PER_CHUNK];
}

struct mdlog_stack_node *stacklog_node_record_if_mapped(uint32_t id)
{
    struct mdlog_stack_node *records =
        __atomic_load_n(&node_chunks[id / NODES_PER_CHUNK], __ATOMIC_ACQUIRE);
    return records ? &records[id % NODES_PER_CHUNK] : NULL;
}

static void chunk_count_one(uint32_t id)
{
    struct mdlog_chunk_header *chunk =
        (struct mdlog_chunk_header *)node_chunks[id / NODES_PER_CHUNK] - 1;
    __atomic_fetch_add(&chunk->count, 1, __ATOMIC_RELEASE);
}

/* Its links are cleared too: in a forked child, an id handed out again
 * may hold the links of the parent's node. */
uint32_t stacklog_node_record_new(uint32_t parent, uint64_t pc, uint32_t module)
{
    if (!parent)
        module = MDLOG_MODULE_THREAD;
    else if (module == STACKLOG_MODULE_ANY)
        module = stacklog_module_of((uintptr_t)pc);
    if (module == STACKLOG_MODULE_NOT_NOW)
        return 0; /* the stack is taken whole after the fork */
    uint64_t taken = __atomic_fetch_add(&stacklog_header->node_count, 1,
                                        __ATOMIC_RELAXED);
    if (taken > UINT32_MAX)
        return 0;
    uint32_t id = (uint32_t)taken;
    struct mdlog_stack_node *node = node_slot(id);
    if (!node)
        return 0;
    node->parent = parent;
    node->module = module;
    node->first_child = node->next_sibling = 0;
    __atomic_store_n(&node->pc, pc, __ATOMIC_RELEASE);
    chunk_count_one(id);
    return id;
}

/* The node of a frame that is not listed under its parent, whose list
 * is full: from the index, or new.  The record is made before it is
 * offered to the index, outside the index's count of adders: making it
 * may wait for the module list's lock, and the dynamic loader's, whose
 * holder may be waiting for a growth of the index that waits for the
 * adders. */
static uint32_t node_from_index(uint64_t parent_hash, uint64_t hash,
                                uint32_t parent, uint64_t pc, uint32_t module)
{
    uint32_t id = stacklog_node_index_find(parent_hash, hash, parent, pc, module);
    if (id)
        return id;
    uint32_t made = stacklog_node_record_new(parent, pc, module);
    return made ? stacklog_node_index_add(parent_hash, hash, parent, pc, module,
                                          made)
                : 0;
}

/* A new node under a parent whose list had room: listed there, or, if
 * the list filled up meanwhile, offered to the index. */
static uint32_t node_listed_new(uint64_t parent_hash, uint64_t hash,
                                uint32_t parent, uint64_t pc, uint32_t module)
{
    uint32_t made = stacklog_node_record_new(parent, pc, module);
    if (!made)
        return 0;
    uint32_t id = stacklog_node_children_add(parent, made, pc, module);
    if (id)
        return id;
    id = stacklog_node_index_find(parent_hash, hash, parent, pc, module);
    return id ? id
              : stacklog_node_index_add(parent_hash, hash, parent, pc, module,
                                        made);
}

/* A stack taken again mostly goes down paths taken before: each node is
 * found in its parent's list of children, read in the order the nodes
 * were made, which is often the order they are taken again.  A new
 * stack's new frames are mostly the children of nodes just made, and
 * are listed there. */
unsigned stacklog_nodes_find(uint32_t parent, uint64_t parent_hash,
                             const uintptr_t *pcs, unsigned count,
                             uint32_t *ids, uint64_t *hashes)
{
    const bool by_module = parent && stacklog_modules_unloaded();
    for (unsigned i = 0; i < count; i++) {
        const uint64_t hash = hashes[i] = stacklog_node_hash(parent_hash, pcs[i]);
        uint32_t module = by_module ? stacklog_module_of(pcs[i])
                                    : STACKLOG_MODULE_ANY;
        if (module == STACKLOG_MODULE_NOT_NOW)
            return i;
        bool room;
        uint32_t id = stacklog_node_children_find(parent, pcs[i], module, &room);
        if (!id)
            id = room ? node_listed_new(parent_hash, hash, parent, pcs[i], module)
                      : node_from_index(parent_hash, hash, parent, pcs[i], module);
        if (!id)
            return i;
        ids[i] = parent = id;
        parent_hash = hash;
    }
    return count;
}

void stacklog_nodes_force_lock(void)
{
    md_lock(&nodes_lock);
}

void stacklog_nodes_force_unlock(void)
{
    md_unlock(&nodes_lock);
}

void stacklog_nodes_reinit_lock(void)
{
    md_lock_init(&nodes_lock);
}

/* One chunk of the child's copy: nodes from the parent's later ids
 * cleared (the child hands those ids out again, and counts them then),
 * the count made the nodes the child has, its lists cut where they lead
 * astray.  A node the parent made after the fork may name a module the
 * parent found after it, which the child does not have (`modules` is
 * how many it has): there its frame is in no module the child knows. */
static void fork_child_chunk(uint64_t c, uint64_t count, uint32_t modules)
{
    struct mdlog_stack_node *records = node_chunks[c];
    struct mdlog_chunk_header *chunk = (struct mdlog_chunk_header *)records - 1;
    uint64_t first = c * NODES_PER_CHUNK;
    uint64_t slots = count > first ? count - first : 0;
    if (slots > NODES_PER_CHUNK)
        slots = NODES_PER_CHUNK;
    /* The copy holds the pages of the child's nodes, with memory
     * (stacklog_file_fork_child); past its last node, the parent's later
     * ones are cleared. */
    size_t kept = stacklog_fork_kept_stack_bytes(first, count);
    size_t used = sizeof(*chunk) + slots * sizeof(*records);
    memset((char *)chunk + used, 0, kept - used);
    node_chunk_backed[c] = (uint32_t)kept;
    uint32_t written = 0;
    for (uint32_t i = 0; i < slots; i++) {
        uint64_t id = first + i;
        if (!__atomic_load_n(&records[i].pc, __ATOMIC_ACQUIRE))
            continue;
        written++;
        if (records[i].module < MDLOG_MODULE_THREAD && records[i].module >= modules)
            records[i].module = MDLOG_MODULE_UNKNOWN;
        if (id)
            stacklog_node_children_repair((uint32_t)id, count);
    }
    __atomic_store_n(&chunk->count, written, __ATOMIC_RELEASE);
}

/* The child's copy of the tree was taken while the parent's threads
 * went on adding to it, after the header that counts its nodes (written
 * with the count taken for the copy).  Its index, a copy from the moment
 * of the fork, names only nodes made until then, which the copy holds
 * whole. */
void stacklog_nodes_fork_child(void)
{
    uint64_t count = __atomic_load_n(&stacklog_header->node_count,
                                     __ATOMIC_RELAXED);
    uint32_t modules = stacklog_modules_count();
    for (uint64_t c = 0; c < NODE_CHUNKS; c++)
        if (node_chunks[c])
            fork_child_chunk(c, count, modules);
}
