/*
 * The uniquing tree: one node per (return address, caller's node), kept
 * in the log's STACKS chunks so that tools read stacks straight from it;
 * stacklog_node_index.c finds a node.  A node's id is taken from the
 * header's node_count; its fields are written before its pc, and the
 * node is complete before the index names it, so neither a thread
 * looking it up nor a reader of the log sees it half-written.  Two
 * threads adding the same node at once: the index keeps one, and the
 * other stays behind, complete but never referred to.  The lock below
 * is only for mapping a new chunk.
 */
#include "config.h"
#include "lock.h"
#include "os_memory.h"
#include "stacklog.h"

#define NODES_PER_CHUNK \
    MDLOG_CHUNK_RECORDS(MDLOG_CHUNK_SIZE, struct mdlog_stack_node)
#define NODE_CHUNKS ((uint64_t)UINT32_MAX / NODES_PER_CHUNK + 1)
static struct mdlog_stack_node **node_chunks; /* records of chunk c */
static md_lock_t nodes_lock = MD_LOCK_INITIALIZER;

bool stacklog_nodes_setup(void)
{
    node_chunks = os_map(NODE_CHUNKS * sizeof(*node_chunks));
    return node_chunks && stacklog_node_index_setup();
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
            __atomic_store_n(&node_chunks[c], records, __ATOMIC_RELEASE);
        }
    }
    md_unlock(&nodes_lock);
    return records;
}

/* The node slot of `id`, its chunk mapped if it was not; NULL if the log
 * cannot grow. */
static struct mdlog_stack_node *node_slot(uint32_t id)
{
    uint64_t c = id / NODES_PER_CHUNK;
    struct mdlog_stack_node *records =
        __atomic_load_n(&node_chunks[c], __ATOMIC_ACQUIRE);
    if (MD_UNLIKELY(!records) && !(records = node_chunk_map(c)))
        return NULL;
    return &records[id % NODES_PER_CHUNK];
}

struct mdlog_stack_node *stacklog_node_record(uint32_t id)
{
    return &node_chunks[id / NODES_PER_CHUNK][id % NODES_PER_CHUNK];
}

static void chunk_count_one(uint32_t id)
{
    struct mdlog_chunk_header *chunk =
        (struct mdlog_chunk_header *)node_chunks[id / NODES_PER_CHUNK] - 1;
    __atomic_fetch_add(&chunk->count, 1, __ATOMIC_RELEASE);
}

uint32_t stacklog_node_record_new(uint32_t parent, uint64_t pc)
{
    uint64_t taken = __atomic_fetch_add(&stacklog_header->node_count, 1,
                                        __ATOMIC_RELAXED);
    if (taken > UINT32_MAX)
        return 0;
    uint32_t id = (uint32_t)taken;
    struct mdlog_stack_node *node = node_slot(id);
    if (!node)
        return 0;
    node->parent = parent;
    node->module = parent ? stacklog_module_of((uintptr_t)pc)
                          : MDLOG_MODULE_THREAD;
    __atomic_store_n(&node->pc, pc, __ATOMIC_RELEASE);
    chunk_count_one(id);
    return id;
}

/* Frames ahead whose index slots are fetched while one is looked up. */
#define PREFETCH_AHEAD 8

/* The node of one frame when it is not listed under its parent: from the
 * index, or new.  The record is made before it is offered to the index,
 * outside the index's count of adders: making it may wait for the module
 * list's lock, and the dynamic loader's, whose holder may be waiting for
 * a growth of the index that waits for the adders. */
static uint32_t node_from_index(uint64_t hash, uint32_t parent, uint64_t pc)
{
    uint32_t id = stacklog_node_index_find(hash, parent, pc);
    if (id)
        return id;
    uint32_t made = stacklog_node_record_new(parent, pc);
    if (!made || !(id = stacklog_node_index_add(hash, parent, pc, made)))
        return 0;
    if (id == made)
        stacklog_node_children_add(parent, made);
    return id;
}

/* Frames from..count, each from its parent's list or else the index,
 * whose slots for the frames ahead are fetched meanwhile. */
static unsigned nodes_find_through_index(uint32_t parent, const uintptr_t *pcs,
                                         unsigned from, unsigned count,
                                         uint32_t *ids, const uint64_t *hashes)
{
    for (unsigned i = from; i < count && i < from + PREFETCH_AHEAD; i++)
        stacklog_node_index_prefetch(hashes[i]);
    for (unsigned i = from; i < count; i++) {
        if (i + PREFETCH_AHEAD < count)
            stacklog_node_index_prefetch(hashes[i + PREFETCH_AHEAD]);
        uint32_t id = i == from ? 0 : stacklog_node_children_find(parent, pcs[i]);
        if (!id && !(id = node_from_index(hashes[i], parent, pcs[i])))
            return i;
        ids[i] = parent = id;
    }
    return count;
}

/* A stack taken again mostly goes down paths taken before: each node is
 * found in its parent's list of children, read in the order the nodes
 * were made, which is often the order they are taken again.  The index
 * is read from the first frame that is not listed on: there every path
 * sits at a random place of a table that outgrows the caches. */
unsigned stacklog_nodes_find(uint32_t parent, uint64_t parent_hash,
                             const uintptr_t *pcs, unsigned count,
                             uint32_t *ids, uint64_t *hashes)
{
    uint64_t hash = parent_hash;
    for (unsigned i = 0; i < count; i++)
        hashes[i] = hash = stacklog_node_hash(hash, pcs[i]);
    for (unsigned i = 0; i < count; i++) {
        uint32_t id = stacklog_node_children_find(parent, pcs[i]);
        if (!id)
            return nodes_find_through_index(parent, pcs, i, count, ids, hashes);
        ids[i] = parent = id;
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

/* The child's copy of the tree was taken while the parent's threads went
 * on adding to it: a list may lead to a node the child did not get, or
 * whose id the child hands out again.  So the child starts its lists
 * anew.  Its index, a copy from the moment of the fork, holds every node
 * made until then. */
void stacklog_nodes_forget_children(void)
{
    uint64_t taken = __atomic_load_n(&stacklog_header->node_count,
                                     __ATOMIC_RELAXED);
    uint64_t chunks = taken / NODES_PER_CHUNK + 1;
    for (uint64_t c = 0; c < chunks && c < NODE_CHUNKS; c++)
        for (uint32_t i = 0; node_chunks[c] && i < NODES_PER_CHUNK; i++) {
            struct mdlog_stack_node *node = &node_chunks[c][i];
            if (node->first_child || node->next_sibling)
                node->first_child = node->next_sibling = 0;
        }
}
