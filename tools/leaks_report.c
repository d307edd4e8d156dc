/*
 * leaks' report.  The default form is the one of macOS's leaks 3.0: the
 * process lines, then for each allocation stack of a root leak the
 * stack ("STACK OF N INSTANCES OF ...") and the trees of those roots, each
 * node as "count (bytes) <class address> [size]" with the block's first
 * bytes after it.  -list gives the classic one entry per leaked block.
 */
#include "config.h"
#include "json_text.h"
#include "leaks_report.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define CONTENT_BYTES 16

struct report {
    FILE *out;
    struct live_process *process;
    const struct heap_snapshot *snapshot;
    const struct heap_image *image;
    const struct leak_forest *forest;
    const struct leaks_options *options;
};

static const struct heap_block *node_block(const struct report *report,
                                           size_t node)
{
    return &report->snapshot->blocks[report->forest->nodes[node].block];
}

static bool tree_excluded(struct live_process *process,
                          const struct heap_snapshot *snapshot,
                          const struct leak_forest *forest,
                          const struct leak_tree *tree,
                          const struct leaks_options *options)
{
    const struct heap_block *block =
        &snapshot->blocks[forest->nodes[tree->root].block];
    for (unsigned i = 0; i < options->exclude_count; i++)
        if (stack_names_has_function(process->names, block->stack,
                                     options->excludes[i]))
            return true;
    return false;
}

void leaks_count(struct live_process *process,
                 const struct heap_snapshot *snapshot,
                 const struct leak_forest *forest,
                 const struct leaks_options *options, struct leaks_result *result)
{
    memset(result, 0, sizeof(*result));
    for (size_t i = 0; i < forest->tree_count; i++) {
        const struct leak_node *root = &forest->nodes[forest->trees[i].root];
        if (tree_excluded(process, snapshot, forest, &forest->trees[i], options)) {
            result->excluded_count += root->count;
            continue;
        }
        result->leak_count += root->count;
        result->leaked_bytes += root->bytes;
    }
}

/* " 0x6c6c6568 0x0000006f 0x00000000 0x00000000  'hello...........'" */
static void format_content(const struct report *report, size_t block_index,
                           char *text, size_t size)
{
    const struct heap_block *block = &report->snapshot->blocks[block_index];
    const unsigned char *bytes = heap_image_bytes(report->image, block_index);
    size_t length = block->size < CONTENT_BYTES ? block->size : CONTENT_BYTES;
    if (!bytes)
        return;
    size_t used = 0;
    for (size_t at = 0; at + 4 <= length && used < size; at += 4) {
        uint32_t word;
        memcpy(&word, bytes + at, sizeof(word));
        used += (size_t)snprintf(text + used, size - used, " 0x%08" PRIx32, word);
    }
    if (used + length + 5 >= size)
        return;
    text[used++] = ' ';
    text[used++] = ' ';
    text[used++] = '\'';
    for (size_t at = 0; at < length; at++)
        text[used++] = isprint(bytes[at]) ? (char)bytes[at] : '.';
    text[used++] = '\'';
    text[used] = '\0';
}

/* "<malloc in caller 0x7f0c1e400000> [48]", or "0x7f0c1e400000 [48]"
 * when the block's stack is unknown. */
static void format_label(const struct report *report, size_t node,
                         char *text, size_t size)
{
    const struct heap_block *block = node_block(report, node);
    const char *class_name = stack_names_class(report->process->names, block->stack);
    if (strcmp(class_name, "non-object") == 0)
        snprintf(text, size, "%#" PRIx64 " [%" PRIu64 "]", block->address,
                 block->size);
    else
        snprintf(text, size, "<%s %#" PRIx64 "> [%" PRIu64 "]", class_name,
                 block->address, block->size);
}

static void print_node_line(const struct report *report, size_t node,
                            unsigned depth, bool tree_root, bool cycle)
{
    const struct leak_node *entry = &report->forest->nodes[node];
    char label[600], content[128] = "";
    format_label(report, node, label, sizeof(label));
    if (entry->cycle_back) {
        fprintf(report->out, "%*sCYCLE BACK TO %s\n", 4 + 3 * depth, "", label);
        return;
    }
    if (!report->options->no_content)
        format_content(report, entry->block, content, sizeof(content));
    fprintf(report->out, "%*s%" PRIu64 " (%" PRIu64 " bytes) %s%s%s\n",
            4 + 3 * depth, "", entry->count, entry->bytes,
            tree_root ? (cycle ? "ROOT CYCLE: " : "ROOT LEAK: ") : "", label,
            content);
}

/* Depth first without recursion: a leaked list a million long is a
 * million deep. */
static void print_tree(const struct report *report, const struct leak_tree *tree)
{
    struct pending {
        size_t node;
        unsigned depth;
    } *stack = malloc(report->forest->node_count * sizeof(*stack));
    if (!stack)
        return;
    size_t count = 0;
    stack[count++] = (struct pending){tree->root, 0};
    while (count) {
        struct pending at = stack[--count];
        print_node_line(report, at.node, at.depth, at.node == tree->root,
                        tree->cycle);
        /* Children go on the stack last first, to come out in order. */
        size_t first = count;
        for (size_t child = report->forest->nodes[at.node].first_child;
             child != LEAK_NO_NODE; child = report->forest->nodes[child].next_sibling)
            stack[count++] = (struct pending){child, at.depth + 1};
        for (size_t i = first, j = count; i + 1 < j; i++, j--) {
            struct pending swap = stack[i];
            stack[i] = stack[j - 1];
            stack[j - 1] = swap;
        }
    }
    free(stack);
}

static uint32_t tree_stack(const struct report *report, const struct leak_tree *tree)
{
    return node_block(report, tree->root)->stack;
}

/* Tree indexes ordered by the stack of their root, then by their own
 * order: each stack's trees side by side. */
struct tree_order {
    uint32_t stack;
    size_t tree;
};

static int by_stack_then_tree(const void *a, const void *b)
{
    const struct tree_order *x = a, *y = b;
    if (x->stack != y->stack)
        return x->stack < y->stack ? -1 : 1;
    return (x->tree > y->tree) - (x->tree < y->tree);
}

static void print_stack_header(const struct report *report,
                               const struct leak_tree *tree, uint32_t stack,
                               size_t instances)
{
    const char *class_name = stack_names_class(report->process->names, stack);
    fprintf(report->out, "STACK OF %zu INSTANCE%s OF '%s: <%s>':\n", instances,
            instances == 1 ? "" : "S", tree->cycle ? "ROOT CYCLE" : "ROOT LEAK",
            class_name);
    stack_names_print_frames(report->process->names, report->out, stack,
                             !report->options->no_sources);
    fprintf(report->out, "====\n");
}

/* Trees with the same allocation stack under one STACK OF header, in the
 * order of the largest of each. */
static void print_trees(const struct report *report, bool *shown)
{
    const struct leak_forest *forest = report->forest;
    bool stacks = !report->options->no_stacks && report->process->log;
    struct tree_order *order = malloc((forest->tree_count + 1) * sizeof(*order));
    size_t *position = malloc((forest->tree_count + 1) * sizeof(*position));
    if (!order || !position) {
        free(order);
        free(position);
        return;
    }
    size_t count = 0;
    for (size_t i = 0; i < forest->tree_count; i++)
        if (!shown[i])
            order[count++] = (struct tree_order){
                stacks ? tree_stack(report, &forest->trees[i]) : 0, i};
    qsort(order, count, sizeof(*order), by_stack_then_tree);
    for (size_t k = 0; k < count; k++)
        position[order[k].tree] = k;
    for (size_t i = 0; i < forest->tree_count; i++) {
        if (shown[i])
            continue;
        size_t first = position[i], end = first + 1;
        uint32_t stack = order[first].stack;
        while (stack && end < count && order[end].stack == stack)
            end++;
        if (stack)
            print_stack_header(report, &forest->trees[i], stack, end - first);
        for (size_t k = first; k < end; k++) {
            print_tree(report, &forest->trees[order[k].tree]);
            shown[order[k].tree] = true;
        }
        fprintf(report->out, "\n");
    }
    free(order);
    free(position);
}

static void print_call_frame(const char *text, size_t index, void *out)
{
    fprintf(out, "%s %s", index ? " |" : "", text);
}

static void print_call_stack_line(const struct report *report, uint32_t stack)
{
    if (report->options->no_stacks || !stack || !report->process->log)
        return;
    fprintf(report->out, "\tCall stack:");
    stack_names_each_frame(report->process->names, stack,
                           !report->options->no_sources, print_call_frame,
                           report->out);
    fprintf(report->out, "\n");
}

static int by_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* A tree's nodes are numbered in one run from its root, in the order
 * the walk made them: the run ends at the next root.  `roots` holds
 * every tree's root, sorted. */
static size_t tree_end(const struct leak_forest *forest, const size_t *roots,
                       size_t root)
{
    size_t low = 0, high = forest->tree_count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (roots[middle] <= root)
            low = middle + 1;
        else
            high = middle;
    }
    return low < forest->tree_count ? roots[low] : forest->node_count;
}

static void print_list_entry(const struct report *report, size_t node)
{
    const struct leak_node *entry = &report->forest->nodes[node];
    const struct heap_block *block = node_block(report, node);
    const struct heap_zone *zone = &report->snapshot->zones[block->zone];
    char content[128] = "";
    if (!report->options->no_content)
        format_content(report, entry->block, content, sizeof(content));
    fprintf(report->out, "Leak: %#" PRIx64 "  size=%" PRIu64
                         "  zone: %s_%#" PRIx64 "  %s\n",
            block->address, block->size, zone->name, zone->address,
            stack_names_class(report->process->names, block->stack));
    if (content[0])
        fprintf(report->out, "\t%s\n", content + 1);
    print_call_stack_line(report, block->stack);
}

/* -list: "Leak: 0x... size=N zone: NAME  class", content, call stack. */
static void print_list(const struct report *report, const bool *shown)
{
    const struct leak_forest *forest = report->forest;
    size_t *roots = malloc((forest->tree_count + 1) * sizeof(*roots));
    if (!roots)
        return;
    for (size_t i = 0; i < forest->tree_count; i++)
        roots[i] = forest->trees[i].root;
    qsort(roots, forest->tree_count, sizeof(*roots), by_size);
    for (size_t i = 0; i < forest->tree_count; i++) {
        if (shown[i])
            continue;
        size_t root = forest->trees[i].root, end = tree_end(forest, roots, root);
        for (size_t node = root; node < end; node++)
            if (!forest->nodes[node].cycle_back)
                print_list_entry(report, node);
    }
    free(roots);
}

static void json_tree(const struct report *report, size_t node)
{
    const struct leak_node *entry = &report->forest->nodes[node];
    const struct heap_block *block = node_block(report, node);
    fprintf(report->out, "{\"address\":%" PRIu64 ",\"size\":%" PRIu64
                         ",\"count\":%" PRIu64 ",\"bytes\":%" PRIu64
                         ",\"cycle_back\":%s,\"class\":",
            block->address, block->size, entry->count, entry->bytes,
            entry->cycle_back ? "true" : "false");
    json_write_string(report->out,
                      stack_names_class(report->process->names, block->stack));
    fprintf(report->out, ",\"children\":[");
    for (size_t child = entry->first_child; child != LEAK_NO_NODE;
         child = report->forest->nodes[child].next_sibling) {
        json_tree(report, child);
        if (report->forest->nodes[child].next_sibling != LEAK_NO_NODE)
            fputc(',', report->out);
    }
    fprintf(report->out, "]}");
}

static void print_json(const struct report *report, const struct leaks_result *result,
                       const bool *excluded)
{
    fprintf(report->out, "{\"pid\":%d,\"process\":", (int)report->process->target.pid);
    json_write_string(report->out, report->process->target.name);
    fprintf(report->out, ",\"nodes\":%zu,\"bytes\":%" PRIu64 ",\"leaks\":%zu"
                         ",\"leaked_bytes\":%" PRIu64 ",\"excluded\":%zu,\"trees\":[",
            report->snapshot->block_count, report->snapshot->bytes,
            result->leak_count, result->leaked_bytes, result->excluded_count);
    bool first = true;
    for (size_t i = 0; i < report->forest->tree_count; i++) {
        if (excluded[i])
            continue;
        fprintf(report->out, "%s{\"kind\":\"%s\",\"root\":", first ? "" : ",",
                report->forest->trees[i].cycle ? "ROOT CYCLE" : "ROOT LEAK");
        /* Deep trees nest deeply: fine for JSON readers with no limit. */
        json_tree(report, report->forest->trees[i].root);
        fprintf(report->out, "}");
        first = false;
    }
    fprintf(report->out, "]}\n");
}

static void print_summary(const struct report *report,
                          const struct leaks_result *result)
{
    int pid = (int)report->process->target.pid;
    if (!report->options->quiet) {
        fprintf(report->out, "leaks Report Version: 3.0\n");
        fprintf(report->out, "Process %d: %zu nodes malloced for %" PRIu64 " KB\n",
                pid, report->snapshot->block_count,
                (report->snapshot->bytes + 1023) / 1024);
    }
    fprintf(report->out, "Process %d: %zu leak%s for %" PRIu64
                         " total leaked bytes.\n",
            pid, result->leak_count, result->leak_count == 1 ? "" : "s",
            result->leaked_bytes);
    if (result->excluded_count && !report->options->quiet)
        fprintf(report->out, "Process %d: %zu leaks excluded (not printed)\n",
                pid, result->excluded_count);
    if (!report->options->quiet)
        fprintf(report->out, "\n");
}

void leaks_report(FILE *out, struct live_process *process,
                  const struct heap_snapshot *snapshot,
                  const struct heap_image *image,
                  const struct leak_forest *forest,
                  const struct leaks_options *options,
                  const struct leaks_result *result)
{
    struct report report = {out, process, snapshot, image, forest, options};
    /* Excluded trees count as shown, so nothing prints them. */
    bool *shown = calloc(forest->tree_count + 1, sizeof(bool));
    if (!shown)
        return;
    for (size_t i = 0; i < forest->tree_count; i++)
        shown[i] = tree_excluded(process, snapshot, forest, &forest->trees[i], options);
    if (options->json)
        print_json(&report, result, shown);
    else {
        print_summary(&report, result);
        if (options->list && !options->quiet)
            print_list(&report, shown);
        else if (!options->quiet)
            print_trees(&report, shown);
    }
    free(shown);
}
