/*
 * The index of the uniquing tree (lib/stacklog_node_index.c), built into
 * this program on its own over nodes kept in an array: every node added
 * is found again, and added again gives the node already there, through
 * every growth of the table, whether its caller has a few children
 * (placed near each other) or thousands (most of them placed elsewhere
 * once the caller's neighbourhood is taken).
 */
#include "config.h"
#include "../lib/os_memory.h"
#include "../lib/stacklog.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define NODES_MAX 60000

static struct mdlog_stack_node nodes[NODES_MAX];
static uint64_t node_hashes[NODES_MAX];
static uint32_t node_count = 1; /* id 0 is no node */

/* What the library's node and memory layers give the index. */
struct mdlog_stack_node *stacklog_node_record(uint32_t id)
{
    return &nodes[id];
}

void *os_map(size_t size)
{
    void *memory = mmap(NULL, size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return memory == MAP_FAILED ? NULL : memory;
}

void os_discard(void *address, size_t size)
{
    munmap(address, size);
}

/* A new node (pc, parent), offered to the index: the id it holds. */
static uint32_t add(uint32_t parent, uint64_t pc)
{
    ck_assert_uint_lt(node_count, NODES_MAX);
    uint32_t made = node_count++;
    uint64_t parent_hash = parent ? node_hashes[parent] : 0;
    node_hashes[made] = stacklog_node_hash(parent_hash, pc);
    nodes[made] = (struct mdlog_stack_node){.parent = parent, .pc = pc,
                                            .module = 1};
    return stacklog_node_index_add(parent_hash, node_hashes[made], parent, pc,
                                   STACKLOG_MODULE_ANY, made);
}

static uint32_t find(uint32_t parent, uint64_t pc)
{
    uint64_t parent_hash = parent ? node_hashes[parent] : 0;
    return stacklog_node_index_find(parent_hash,
                                    stacklog_node_hash(parent_hash, pc), parent,
                                    pc, STACKLOG_MODULE_ANY);
}

/* A tree of `callers` callers under one thread, each with `children`
 * return addresses under it, plus one caller with `wide` of them. */
START_TEST(test_every_node_is_found_again_through_growth)
{
    enum { CALLERS = 400, CHILDREN = 40, WIDE = 20000 };
    ck_assert(stacklog_node_index_setup());
    const uint32_t thread = add(0, 4242);
    ck_assert_uint_eq(thread, 1);
    static uint32_t callers[CALLERS], ids[CALLERS][CHILDREN], wide[WIDE];
    for (unsigned c = 0; c < CALLERS; c++)
        callers[c] = add(thread, 0x400000 + 16 * c);
    /* Children taken a caller at a time, as a recursion does, and the
     * wide caller's in between: its neighbourhood overflows early. */
    const uint32_t wide_caller = callers[CALLERS / 2];
    for (unsigned c = 0; c < CALLERS; c++) {
        for (unsigned k = 0; k < CHILDREN; k++)
            ids[c][k] = add(callers[c], 0x500000 + 8 * k);
        for (unsigned w = c * (WIDE / CALLERS); w < (c + 1) * (WIDE / CALLERS); w++)
            wide[w] = add(wide_caller, 0x600000 + 4 * w);
    }
    /* The table grew from 8192 slots past 65536: every node is where
     * the last table puts it. */
    ck_assert_uint_gt(node_count, 32768);
    ck_assert_uint_eq(find(0, 4242), thread);
    for (unsigned c = 0; c < CALLERS; c++) {
        ck_assert_uint_eq(find(thread, 0x400000 + 16 * c), callers[c]);
        for (unsigned k = 0; k < CHILDREN; k++)
            ck_assert_uint_eq(find(callers[c], 0x500000 + 8 * k), ids[c][k]);
    }
    for (unsigned w = 0; w < WIDE; w++)
        ck_assert_uint_eq(find(wide_caller, 0x600000 + 4 * w), wide[w]);
    /* A node offered again is the one already there. */
    uint32_t before = node_count;
    ck_assert_uint_eq(add(wide_caller, 0x600000 + 4 * (WIDE - 1)), wide[WIDE - 1]);
    ck_assert_uint_eq(add(callers[7], 0x500000 + 8 * 3), ids[7][3]);
    ck_assert_uint_eq(node_count, before + 2);
    /* Nodes never added are not found, under any caller. */
    ck_assert_uint_eq(find(wide_caller, 0x600000 + 4 * WIDE), 0);
    ck_assert_uint_eq(find(callers[3], 0x500000 + 8 * CHILDREN), 0);
    ck_assert_uint_eq(find(ids[3][0], 0x500000), 0);
}
END_TEST

static Suite *node_index_suite(void)
{
    Suite *suite = suite_create("node index");
    TCase *tc = tcase_create("index");
    tcase_add_test(tc, test_every_node_is_found_again_through_growth);
    suite_add_tcase(suite, tc);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(node_index_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
