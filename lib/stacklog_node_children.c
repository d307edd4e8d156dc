/*
 * A node's children, listed: the node's first_child and each child's
 * next_sibling, in the order the children were added to the index.
 *
 * Looking a frame up in the index costs a cache miss once the tree is
 * big: a path's hash puts it anywhere in the table.  A program that
 * goes down the same calls again (a loop, a recursion taken again)
 * looks its nodes up in about the order they were made, and the list
 * under the parent it has just read leads to them through records made
 * one after the other, which the processor fetches ahead.
 *
 * The index stays the one place where a node is added once: only the
 * thread whose node the index took lists it.  A list is appended to by
 * compare-and-swap on its last link and never shortened, so a thread
 * reading it sees each link either 0 or a complete node.  Only the
 * first CHILDREN_LISTED children of a node are listed: a node with many
 * more (a function that allocates from many places) would make every
 * miss walk a long list; its other children are found in the index.
 * Thread nodes (parent 0) are not listed: each thread finds its own once.
 */
#include "config.h"
#include "stacklog.h"

#define CHILDREN_LISTED 8

uint32_t stacklog_node_children_find(uint32_t parent, uint64_t pc)
{
    if (!parent)
        return 0;
    uint32_t child = __atomic_load_n(&stacklog_node_record(parent)->first_child,
                                     __ATOMIC_ACQUIRE);
    while (child) {
        struct mdlog_stack_node *node = stacklog_node_record(child);
        if (node->pc == pc)
            return child;
        child = __atomic_load_n(&node->next_sibling, __ATOMIC_ACQUIRE);
    }
    return 0;
}

void stacklog_node_children_add(uint32_t parent, uint32_t child)
{
    if (!parent)
        return;
    uint32_t *link = &stacklog_node_record(parent)->first_child;
    for (unsigned listed = 0; listed < CHILDREN_LISTED; listed++) {
        uint32_t next = 0;
        if (__atomic_compare_exchange_n(link, &next, child, false,
                                        __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
            return;
        link = &stacklog_node_record(next)->next_sibling;
    }
}
