/*
 * The leaks arranged as macOS's leaks shows them: a ROOT LEAK is a leaked
 * block no other leaked block points to, with the leaked blocks it holds
 * below it; what is left after those are leaked blocks that only point
 * at each other, shown from one of them as a ROOT CYCLE, with a CYCLE
 * BACK TO line where a pointer leads back up the path.  Each node knows
 * how many blocks and bytes its subtree holds.
 */
#ifndef MALLOCDEBUG_LEAK_TREES_H
#define MALLOCDEBUG_LEAK_TREES_H

#include "leak_scan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEAK_NO_NODE SIZE_MAX

struct leak_node {
    size_t block;           /* index into the snapshot */
    size_t first_child, next_sibling;
    bool cycle_back;        /* a CYCLE BACK TO line, not a block of its own */
    uint64_t count, bytes;  /* this node and everything below it */
};

struct leak_tree {
    size_t root;  /* node index */
    bool cycle;
};

struct leak_forest {
    struct leak_node *nodes;
    size_t node_count;
    struct leak_tree *trees; /* largest first */
    size_t tree_count;
};

int leak_forest_build(struct leak_forest *forest, const struct leak_scan *scan);
void leak_forest_free(struct leak_forest *forest);

#endif
