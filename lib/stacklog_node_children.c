/*
 * A node's children, listed: the node's first_child and each child's
 * next_sibling, in the order they were made.  The first CHILDREN_LISTED
 * children of a node are only listed; the index (stacklog_node_index.c)
 * holds the others.
 *
 * Looking a frame up in the index costs a cache miss once the tree is
 * big, unless its caller's other children were just looked up there.
 * A program that goes down the same calls again (a loop, a recursion
 * taken again) looks its nodes up in about the order they were made,
 * and the list under the parent it has just read leads to them through
 * records made one after the other, which the processor fetches
 * ahead.  A new node is most often the child of a node just made, whose
 * list has room: it is listed there and never costs the index a slot or
 * a miss.
 *
 * A list is appended to by compare-and-swap on its last link and never
 * shortened (but in a forked child, below), so a thread reading it sees
 * each link either 0 or a complete node.  A node is in its parent's
 * list or in the index, never both: a thread adds to the index only
 * after reading a full list without the node, and a full list no longer
 * changes.  Only the first few children are listed so that a node with
 * many (a function that allocates from many places) does not make
 * every lookup under it walk a long list.  Thread nodes (parent 0) are
 * not listed: each thread finds its own once, in the index.
 */
#include "config.h"
#include "stacklog.h"

#define CHILDREN_LISTED 8

uint32_t stacklog_node_children_find(uint32_t parent, uint64_t pc,
                                     uint32_t module, bool *room)
{
    *room = parent != 0;
    if (!parent)
        return 0;
    uint32_t child = __atomic_load_n(&stacklog_node_record(parent)->first_child,
                                     __ATOMIC_ACQUIRE);
    for (unsigned listed = 0; child; listed++) {
        struct mdlog_stack_node *node = stacklog_node_record(child);
        if (stacklog_node_is(node, pc, module))
            return child;
        if (listed + 1 == CHILDREN_LISTED)
            *room = false;
        child = __atomic_load_n(&node->next_sibling, __ATOMIC_ACQUIRE);
    }
    return 0;
}

uint32_t stacklog_node_children_add(uint32_t parent, uint32_t made, uint64_t pc,
                                    uint32_t module)
{
    uint32_t *link = &stacklog_node_record(parent)->first_child;
    for (unsigned listed = 0; listed < CHILDREN_LISTED; listed++) {
        uint32_t next = 0;
        if (__atomic_compare_exchange_n(link, &next, made, false,
                                        __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
            return made;
        struct mdlog_stack_node *node = stacklog_node_record(next);
        if (stacklog_node_is(node, pc, module))
            return next; /* another thread listed it first */
        link = &node->next_sibling;
    }
    return 0;
}

/* Whether `child`, linked from the list of `parent` in a forked child's
 * copy of the tree, is a complete node of that list there. */
static bool listed_child_is_sound(uint32_t parent, uint32_t child,
                                  uint64_t count)
{
    const struct mdlog_stack_node *node =
        child < count ? stacklog_node_record_if_mapped(child) : NULL;
    return node && __atomic_load_n(&node->pc, __ATOMIC_ACQUIRE) != 0 &&
           node->parent == parent;
}

/* The child copied the tree while the parent's threads went on adding
 * to it: a list may lead to a node the child did not count (whose id
 * it hands out again, which could close a cycle) or did not get whole.
 * Lists are only appended to, so what comes before such a link is
 * sound; the list of `parent` is cut there.  Nodes cut off are made
 * again if the child takes their stacks; they were the parent's other
 * threads' anyway. */
void stacklog_node_children_repair(uint32_t parent, uint64_t count)
{
    uint32_t *link = &stacklog_node_record(parent)->first_child;
    for (unsigned listed = 0; *link; listed++) {
        if (listed == CHILDREN_LISTED ||
            !listed_child_is_sound(parent, *link, count)) {
            *link = 0;
            return;
        }
        link = &stacklog_node_record(*link)->next_sibling;
    }
}
