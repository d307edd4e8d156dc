/*
 * Building the trees: the pointers between leaked blocks (found by
 * scanning each leaked block once more, into compressed adjacency
 * arrays), then a depth-first walk from each block nothing leaked points
 * to, then from what remains.
 */
#include "config.h"
#include "leak_trees.h"

#include <stdlib.h>
#include <string.h>

struct leak_graph {
    size_t *leaked;        /* block index of each leaked block */
    size_t leaked_count;
    uint32_t *position;    /* block -> position in leaked, UINT32_MAX */
    size_t *edge_start;    /* edges of leaked[i]: edges[edge_start[i]..[i+1]) */
    uint32_t *edges;       /* positions in leaked */
    uint32_t *in_degree;
};

/* Calls `fn` on each leaked block that block `position` points to. */
static void for_each_target(const struct leak_scan *scan,
                            const struct leak_graph *graph, size_t position,
                            void (*fn)(struct leak_graph *, size_t, uint32_t),
                            struct leak_graph *context)
{
    const struct heap_image *image = scan->image;
    size_t block = graph->leaked[position];
    const unsigned char *bytes = heap_image_bytes(image, block);
    uint64_t size = bytes ? image->snapshot->blocks[block].size : 0;
    for (uint64_t at = 0; at + 8 <= size; at += 8) {
        uint64_t word;
        memcpy(&word, bytes + at, sizeof(word));
        size_t target = heap_image_block_at(image, word);
        if (target == SIZE_MAX || graph->position[target] == UINT32_MAX ||
            graph->position[target] == position)
            continue;
        fn(context, position, graph->position[target]);
    }
}

static void count_edge(struct leak_graph *graph, size_t from, uint32_t to)
{
    (void)to;
    graph->edge_start[from + 1]++;
}

static void store_edge(struct leak_graph *graph, size_t from, uint32_t to)
{
    /* edge_start[from] is used as the fill cursor, then restored. */
    graph->edges[graph->edge_start[from]++] = to;
    graph->in_degree[to]++;
}

static int graph_build(struct leak_graph *graph, const struct leak_scan *scan)
{
    const struct heap_snapshot *snapshot = scan->image->snapshot;
    memset(graph, 0, sizeof(*graph));
    graph->leaked = malloc((scan->leaked_count + 1) * sizeof(size_t));
    graph->position = malloc((snapshot->block_count + 1) * sizeof(uint32_t));
    graph->edge_start = calloc(scan->leaked_count + 2, sizeof(size_t));
    graph->in_degree = calloc(scan->leaked_count + 1, sizeof(uint32_t));
    if (!graph->leaked || !graph->position || !graph->edge_start || !graph->in_degree)
        return -1;
    for (size_t i = 0; i < snapshot->block_count; i++) {
        graph->position[i] = UINT32_MAX;
        if (!scan->reach[i].reached) {
            graph->position[i] = (uint32_t)graph->leaked_count;
            graph->leaked[graph->leaked_count++] = i;
        }
    }
    for (size_t i = 0; i < graph->leaked_count; i++)
        for_each_target(scan, graph, i, count_edge, graph);
    for (size_t i = 0; i < graph->leaked_count; i++)
        graph->edge_start[i + 1] += graph->edge_start[i];
    graph->edges = malloc((graph->edge_start[graph->leaked_count] + 1) * sizeof(uint32_t));
    if (!graph->edges)
        return -1;
    for (size_t i = 0; i < graph->leaked_count; i++)
        for_each_target(scan, graph, i, store_edge, graph);
    /* The fill moved each start to the next one's: shift back. */
    for (size_t i = graph->leaked_count; i > 0; i--)
        graph->edge_start[i] = graph->edge_start[i - 1];
    graph->edge_start[0] = 0;
    return 0;
}

static void graph_free(struct leak_graph *graph)
{
    free(graph->leaked);
    free(graph->position);
    free(graph->edge_start);
    free(graph->edges);
    free(graph->in_degree);
}

/* ---- the walk ---- */

struct walk {
    const struct heap_snapshot *snapshot;
    const struct leak_graph *graph;
    struct leak_forest *forest;
    size_t *node_of;   /* position -> node, LEAK_NO_NODE before the walk */
    bool *on_path;
    struct frame {
        size_t position, node, next_edge, last_child;
    } *stack;
    size_t depth;
};

static size_t add_node(struct walk *walk, size_t position, bool cycle_back,
                       size_t parent, size_t *last_child)
{
    size_t index = walk->forest->node_count++;
    uint64_t size = walk->snapshot->blocks[walk->graph->leaked[position]].size;
    walk->forest->nodes[index] = (struct leak_node){
        .block = walk->graph->leaked[position], .first_child = LEAK_NO_NODE,
        .next_sibling = LEAK_NO_NODE, .cycle_back = cycle_back,
        .count = cycle_back ? 0 : 1, .bytes = cycle_back ? 0 : size};
    if (parent != LEAK_NO_NODE) {
        if (*last_child == LEAK_NO_NODE)
            walk->forest->nodes[parent].first_child = index;
        else
            walk->forest->nodes[*last_child].next_sibling = index;
        *last_child = index;
    }
    return index;
}

static void enter(struct walk *walk, size_t position, size_t parent,
                  size_t *parent_last_child)
{
    size_t node = add_node(walk, position, false, parent, parent_last_child);
    walk->node_of[position] = node;
    walk->on_path[position] = true;
    walk->stack[walk->depth++] = (struct frame){position, node,
                                                walk->graph->edge_start[position],
                                                LEAK_NO_NODE};
}

static size_t walk_tree(struct walk *walk, size_t start)
{
    const struct leak_graph *graph = walk->graph;
    enter(walk, start, LEAK_NO_NODE, NULL);
    size_t root = walk->stack[0].node;
    while (walk->depth) {
        struct frame *frame = &walk->stack[walk->depth - 1];
        if (frame->next_edge == graph->edge_start[frame->position + 1]) {
            walk->on_path[frame->position] = false;
            walk->depth--;
            if (walk->depth) {
                struct leak_node *parent = &walk->forest->nodes[walk->stack[walk->depth - 1].node];
                parent->count += walk->forest->nodes[frame->node].count;
                parent->bytes += walk->forest->nodes[frame->node].bytes;
            }
            continue;
        }
        uint32_t next = graph->edges[frame->next_edge++];
        if (walk->node_of[next] == LEAK_NO_NODE)
            enter(walk, next, frame->node, &frame->last_child);
        else if (walk->on_path[next])
            add_node(walk, next, true, frame->node, &frame->last_child);
    }
    return root;
}

static int larger_tree_first(const void *a, const void *b, void *context)
{
    const struct leak_forest *forest = context;
    const struct leak_tree *x = a, *y = b;
    const struct leak_node *p = &forest->nodes[x->root], *q = &forest->nodes[y->root];
    if (p->bytes != q->bytes)
        return p->bytes < q->bytes ? 1 : -1;
    return (p->block > q->block) - (p->block < q->block);
}

static int walk_all(struct walk *walk)
{
    const struct leak_graph *graph = walk->graph;
    struct leak_forest *forest = walk->forest;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < graph->leaked_count; i++) {
            if (walk->node_of[i] != LEAK_NO_NODE ||
                (pass == 0 && graph->in_degree[i] != 0))
                continue;
            size_t root = walk_tree(walk, i);
            forest->trees[forest->tree_count++] = (struct leak_tree){root, pass == 1};
        }
    qsort_r(forest->trees, forest->tree_count, sizeof(*forest->trees),
            larger_tree_first, forest);
    return 0;
}

int leak_forest_build(struct leak_forest *forest, const struct leak_scan *scan)
{
    memset(forest, 0, sizeof(*forest));
    struct leak_graph graph;
    int result = graph_build(&graph, scan);
    size_t leaked = graph.leaked_count;
    /* Each block once, plus one CYCLE BACK TO line per edge at most. */
    size_t edge_count = result == 0 ? graph.edge_start[leaked] : 0;
    struct walk walk = {.snapshot = scan->image->snapshot, .graph = &graph,
                        .forest = forest};
    if (result == 0) {
        forest->nodes = malloc((leaked + edge_count + 1) * sizeof(*forest->nodes));
        forest->trees = malloc((leaked + 1) * sizeof(*forest->trees));
        walk.node_of = malloc((leaked + 1) * sizeof(size_t));
        walk.on_path = calloc(leaked + 1, sizeof(bool));
        walk.stack = malloc((leaked + 1) * sizeof(*walk.stack));
        if (!forest->nodes || !forest->trees || !walk.node_of || !walk.on_path ||
            !walk.stack)
            result = -1;
    }
    if (result == 0) {
        for (size_t i = 0; i < leaked; i++)
            walk.node_of[i] = LEAK_NO_NODE;
        result = walk_all(&walk);
    }
    free(walk.node_of);
    free(walk.on_path);
    free(walk.stack);
    graph_free(&graph);
    if (result != 0)
        leak_forest_free(forest);
    return result;
}

void leak_forest_free(struct leak_forest *forest)
{
    free(forest->nodes);
    free(forest->trees);
    memset(forest, 0, sizeof(*forest));
}
