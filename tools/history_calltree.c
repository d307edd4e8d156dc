/*
 * The call tree (-callTree): groups of blocks folded into a tree of
 * frames, keyed by return address and module (the report names them).
 *
 * Stack ids share their outer frames: a stack node's parent is its
 * caller's node.  So from the outermost caller down, the tree node of a
 * stack node is the child, for its frame, of its parent's tree node,
 * and each stack node is looked at once however many stacks pass
 * through it (a table remembers the tree node of every stack node
 * seen).  Stacks of different threads start from different thread
 * nodes but meet in the tree.  Blocks are counted at their innermost
 * frame, then added up towards the root.
 *
 * Inverted, the tree starts from the allocating frame, where stacks
 * share nothing in the log: each group's stack is read whole and its
 * blocks counted along the path.
 */
#include "config.h"

#include "history_internal.h"
#include "tool_hash.h"

#include <stdlib.h>

#define ENTRIES_PER_SLAB 16384

/* No padding: keys are compared as bytes. */
struct child_key {
    uint64_t pc;
    uint32_t parent;
    uint32_t module;
};

struct child_entry {
    struct child_key key;
    uint32_t node;
    UT_hash_handle hh;
};

struct memo_entry {
    uint32_t stack_node;
    uint32_t tree_node;
    UT_hash_handle hh;
};

struct frame {
    uint32_t stack_node;
    uint32_t module;
    uint64_t pc;
};

struct builder {
    const struct log_reader *reader;
    struct history_tree *tree;
    size_t capacity;
    struct child_entry *children;
    struct entry_pool child_pool;
    struct memo_entry *memo;
    struct entry_pool memo_pool;
    struct frame *path; /* stack nodes not yet in the tree */
    size_t path_capacity;
};

static uint32_t add_node(struct builder *builder, uint32_t parent, uint64_t pc,
                         uint32_t module)
{
    struct history_tree *tree = builder->tree;
    if (tree->count == builder->capacity) {
        size_t capacity = builder->capacity ? 2 * builder->capacity : 1024;
        struct history_tree_node *nodes =
            capacity < HISTORY_NONE
                ? realloc(tree->nodes, capacity * sizeof(*nodes))
                : NULL;
        if (nodes == NULL)
            return HISTORY_NONE;
        tree->nodes = nodes;
        builder->capacity = capacity;
    }
    uint32_t index = (uint32_t)tree->count++;
    tree->nodes[index] = (struct history_tree_node){
        .pc = pc,
        .module = module,
        .parent = parent,
        .first_child = HISTORY_NONE,
        .next_sibling = HISTORY_NONE,
        .depth = parent == HISTORY_NONE ? 0 : tree->nodes[parent].depth + 1,
    };
    return index;
}

/* The child of `parent` for a frame, made when there is none yet. */
static uint32_t child(struct builder *builder, uint32_t parent, uint64_t pc,
                      uint32_t module)
{
    struct child_key key = {.pc = pc, .parent = parent, .module = module};
    struct child_entry *entry;
    HASH_FIND(hh, builder->children, &key, sizeof(key), entry);
    if (entry != NULL)
        return entry->node;
    if ((entry = entry_pool_take(&builder->child_pool)) == NULL)
        return HISTORY_NONE;
    entry->key = key;
    entry->node = add_node(builder, parent, pc, module);
    if (entry->node == HISTORY_NONE)
        return HISTORY_NONE;
    tool_hash_out_of_memory = false;
    HASH_ADD(hh, builder->children, key, sizeof(entry->key), entry);
    if (tool_hash_out_of_memory)
        return HISTORY_NONE;
    tool_hash_keep_sparse(builder->children);
    return entry->node;
}

static uint32_t remembered(struct builder *builder, uint32_t stack_node)
{
    struct memo_entry *entry;
    HASH_FIND(hh, builder->memo, &stack_node, sizeof(stack_node), entry);
    return entry ? entry->tree_node : HISTORY_NONE;
}

static bool remember(struct builder *builder, uint32_t stack_node,
                     uint32_t tree_node)
{
    struct memo_entry *entry = entry_pool_take(&builder->memo_pool);
    if (entry == NULL)
        return false;
    entry->stack_node = stack_node;
    entry->tree_node = tree_node;
    tool_hash_out_of_memory = false;
    HASH_ADD(hh, builder->memo, stack_node, sizeof(entry->stack_node), entry);
    if (tool_hash_out_of_memory)
        return false;
    tool_hash_keep_sparse(builder->memo);
    return true;
}

static bool push_frame(struct builder *builder, size_t depth,
                       struct frame frame)
{
    if (depth == builder->path_capacity) {
        size_t capacity = depth ? 2 * depth : 64;
        struct frame *path = realloc(builder->path, capacity * sizeof(*path));
        if (path == NULL)
            return false;
        builder->path = path;
        builder->path_capacity = capacity;
    }
    builder->path[depth] = frame;
    return true;
}

/* Walks out from `stack` to a stack node already in the tree, or its
 * thread node (the root), or a node that cannot be read (the root as
 * well); then makes the tree nodes of the frames passed, outermost
 * first.  Returns the tree node of `stack`. */
static uint32_t tree_node_of(struct builder *builder, uint32_t stack)
{
    size_t depth = 0;
    uint32_t at = 0;
    for (uint32_t id = stack; id != 0;) {
        uint32_t known = remembered(builder, id);
        if (known != HISTORY_NONE) {
            at = known;
            break;
        }
        const struct mdlog_stack_node *node = log_reader_node(builder->reader, id);
        if (node == NULL || node->module == MDLOG_MODULE_THREAD)
            break;
        if (!push_frame(builder, depth++, (struct frame){id, node->module, node->pc}))
            return HISTORY_NONE;
        id = node->parent;
    }
    while (depth-- > 0) {
        const struct frame *frame = &builder->path[depth];
        at = child(builder, at, frame->pc, frame->module);
        if (at == HISTORY_NONE || !remember(builder, frame->stack_node, at))
            return HISTORY_NONE;
    }
    return at;
}

static void add_group(struct history_tree_node *node, const struct history_group *group)
{
    node->count += group->count;
    node->bytes += group->bytes;
}

static bool fold_outermost_first(struct builder *builder,
                                 const struct history_groups *groups)
{
    struct history_tree_node *nodes;
    for (size_t i = 0; i < groups->count; i++) {
        uint32_t at = tree_node_of(builder, groups->groups[i].stack);
        if (at == HISTORY_NONE)
            return false;
        add_group(&builder->tree->nodes[at], &groups->groups[i]);
    }
    /* Parents come before their children. */
    nodes = builder->tree->nodes;
    for (size_t i = builder->tree->count; i-- > 1;) {
        nodes[nodes[i].parent].count += nodes[i].count;
        nodes[nodes[i].parent].bytes += nodes[i].bytes;
    }
    return true;
}

static bool fold_innermost_first(struct builder *builder,
                                 const struct history_groups *groups)
{
    uint64_t pcs[MDLOG_MAX_FRAMES];
    uint32_t modules[MDLOG_MAX_FRAMES];
    for (size_t i = 0; i < groups->count; i++) {
        const struct history_group *group = &groups->groups[i];
        size_t frames = log_reader_stack_frames(builder->reader, group->stack,
                                                pcs, modules, MDLOG_MAX_FRAMES);
        add_group(&builder->tree->nodes[0], group);
        uint32_t at = 0;
        for (size_t f = 0; f < frames; f++) {
            if ((at = child(builder, at, pcs[f], modules[f])) == HISTORY_NONE)
                return false;
            add_group(&builder->tree->nodes[at], group);
        }
    }
    return true;
}

/* ---- children in order ---- */

static int compare_u64(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

static int sibling_order(const void *x, const void *y, void *context)
{
    const struct history_tree_node *nodes = context;
    const struct history_tree_node *a = &nodes[*(const uint32_t *)x];
    const struct history_tree_node *b = &nodes[*(const uint32_t *)y];
    int c = compare_u64(a->parent, b->parent);
    if (c == 0)
        c = compare_u64(b->bytes, a->bytes);
    if (c == 0)
        c = compare_u64(b->count, a->count);
    if (c == 0)
        c = compare_u64(a->pc, b->pc);
    return c ? c : compare_u64(a->module, b->module);
}

static bool link_children(struct history_tree *tree)
{
    if (tree->count < 2)
        return true;
    size_t count = tree->count - 1;
    uint32_t *order = malloc(count * sizeof(*order));
    if (order == NULL)
        return false;
    for (size_t i = 0; i < count; i++)
        order[i] = (uint32_t)(i + 1);
    qsort_r(order, count, sizeof(*order), sibling_order, tree->nodes);
    for (size_t i = count; i-- > 0;) {
        struct history_tree_node *node = &tree->nodes[order[i]];
        struct history_tree_node *parent = &tree->nodes[node->parent];
        node->next_sibling = parent->first_child;
        parent->first_child = order[i];
    }
    free(order);
    return true;
}

bool history_tree_build(const struct log_reader *reader,
                        const struct history_groups *groups, bool inverted,
                        struct history_tree *tree)
{
    *tree = (struct history_tree){0};
    struct builder builder = {.reader = reader, .tree = tree};
    entry_pool_init(&builder.child_pool, sizeof(struct child_entry),
                    ENTRIES_PER_SLAB);
    entry_pool_init(&builder.memo_pool, sizeof(struct memo_entry),
                    ENTRIES_PER_SLAB);
    bool built = add_node(&builder, HISTORY_NONE, 0, MDLOG_MODULE_UNKNOWN) == 0 &&
                 (inverted ? fold_innermost_first(&builder, groups)
                           : fold_outermost_first(&builder, groups)) &&
                 link_children(tree);
    HASH_CLEAR(hh, builder.children);
    HASH_CLEAR(hh, builder.memo);
    entry_pool_release(&builder.child_pool);
    entry_pool_release(&builder.memo_pool);
    free(builder.path);
    if (!built)
        history_tree_free(tree);
    return built;
}

void history_tree_free(struct history_tree *tree)
{
    free(tree->nodes);
    *tree = (struct history_tree){0};
}
