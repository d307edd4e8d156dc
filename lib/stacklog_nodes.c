/*
 * The uniquing tree: one node per (return address, caller's node), kept
 * in the log's STACKS chunks so that tools read stacks straight from it.
 * A lock-free hash finds a node: bucket heads live in the library's own
 * memory, each node links to the next of its bucket.  Nodes are only
 * ever added, at the head of their bucket, by compare-and-swap, so a
 * lookup needs no lock; the lock below is only for mapping a new chunk.
 *
 * A node's id is taken from the header's node_count; its fields are
 * written before its pc, and its pc before it is linked in, so neither a
 * thread walking a bucket nor a reader of the log sees it half-written.
 * Two threads adding the same node at once: the loser finds the
 * winner's in the entries that beat it, and its own node stays behind,
 * complete but never referred to.
 */
#include "config.h"
#include "lock.h"
#include "os_memory.h"
#include "stacklog.h"

#define NODES_PER_CHUNK \
    MDLOG_CHUNK_RECORDS(MDLOG_CHUNK_SIZE, struct mdlog_stack_node)
#define NODE_CHUNKS ((uint64_t)UINT32_MAX / NODES_PER_CHUNK + 1)
#define BUCKET_BITS 20
#define BUCKET_COUNT (1u << BUCKET_BITS)

static uint32_t *buckets;
static struct mdlog_stack_node **node_chunks; /* records of chunk c */
static md_lock_t nodes_lock = MD_LOCK_INITIALIZER;

bool stacklog_nodes_setup(void)
{
    buckets = os_map(BUCKET_COUNT * sizeof(*buckets));
    node_chunks = os_map(NODE_CHUNKS * sizeof(*node_chunks));
    return buckets && node_chunks;
}

static uint32_t bucket_of(uint32_t parent, uint64_t pc)
{
    uint64_t h = pc * 0x9e3779b97f4a7c15ULL ^ (uint64_t)parent * 0xc2b2ae3d27d4eb4fULL;
    return (uint32_t)((h ^ (h >> 29)) >> (64 - BUCKET_BITS)) & (BUCKET_COUNT - 1);
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

/* Written nodes only: a bucket links to nothing else. */
static struct mdlog_stack_node *node_at(uint32_t id)
{
    return &node_chunks[id / NODES_PER_CHUNK][id % NODES_PER_CHUNK];
}

/* The node in the chain from `from` down to (not including) `until`. */
static uint32_t chain_find(uint32_t from, uint32_t until, uint32_t parent,
                           uint64_t pc)
{
    for (uint32_t id = from; id != until;) {
        struct mdlog_stack_node *node = node_at(id);
        if (node->pc == pc && node->parent == parent)
            return id;
        id = node->next;
    }
    return 0;
}

static void chunk_count_one(uint32_t id)
{
    struct mdlog_chunk_header *chunk =
        (struct mdlog_chunk_header *)node_chunks[id / NODES_PER_CHUNK] - 1;
    __atomic_fetch_add(&chunk->count, 1, __ATOMIC_RELEASE);
}

static uint32_t node_add(uint32_t *bucket, uint32_t head, uint32_t parent,
                         uint64_t pc)
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
    for (;;) {
        node->next = head;
        uint32_t seen = head;
        if (__atomic_compare_exchange_n(bucket, &head, id, false,
                                        __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
            return id;
        uint32_t winner = chain_find(head, seen, parent, pc);
        if (winner)
            return winner;
    }
}

uint32_t stacklog_node(uint32_t parent, uint64_t pc)
{
    uint32_t *bucket = &buckets[bucket_of(parent, pc)];
    uint32_t head = __atomic_load_n(bucket, __ATOMIC_ACQUIRE);
    uint32_t found = chain_find(head, 0, parent, pc);
    return found ? found : node_add(bucket, head, parent, pc);
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
