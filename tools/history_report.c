/*
 * Printing the history's views.  An event is one line, as macOS's
 * malloc_history writes it:
 *
 *   ALLOC 0x7f..000-0x7f..02f [size=48]: thread_1a2b | _start | main | f
 *
 * with the stack from the outermost frame in.  Groups are
 * "N calls for M bytes: thread_... | frames", the call tree one indented
 * line per frame with the calls and bytes through it.
 */
#include "config.h"
#include "history_report.h"
#include "json_text.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- stacks ---- */

static void print_frame(const char *text, size_t index, void *out)
{
    (void)index;
    fprintf(out, " | %s", text);
}

static void print_frames(const struct history_view *view, uint32_t stack)
{
    if (!stack_names_each_frame(view->names, stack, true, print_frame, view->out))
        fprintf(view->out, " (no stack)");
}

static void json_frame(const char *text, size_t index, void *out)
{
    if (index)
        fputc(',', out);
    json_write_string(out, text);
}

static void json_frames(const struct history_view *view, uint32_t stack)
{
    fprintf(view->out, "\"stack\":[");
    stack_names_each_frame(view->names, stack, true, json_frame, view->out);
    fprintf(view->out, "]");
}

/* ---- events ---- */

static const char *event_name(const struct history_event *event)
{
    unsigned kind = event->type & MDLOG_EVENT_KIND_MASK;
    switch (kind) {
    case MDLOG_EVENT_ALLOC:
        return "ALLOC";
    case MDLOG_EVENT_FREE:
        return "FREE";
    case MDLOG_EVENT_VM_MAP:
        return "VM_ALLOC";
    case MDLOG_EVENT_VM_UNMAP:
        return "VM_DEALLOC";
    default:
        return "EVENT";
    }
}

/* A free is logged without a size: it takes its allocation's. */
static uint64_t event_size(const struct history_view *view,
                           const struct history_event *event)
{
    if (event->size || event->partner == HISTORY_NONE ||
        (event->type & MDLOG_EVENT_KIND_MASK) != MDLOG_EVENT_FREE)
        return event->size;
    size_t count;
    const struct history_event *events = history_events(view->history, &count);
    return event->partner < count ? events[event->partner].size : 0;
}

static void print_event(const struct history_view *view,
                        const struct history_event *event, bool first)
{
    uint64_t size = event_size(view, event);
    if (view->json) {
        fprintf(view->out, "%s{\"event\":\"%s\",\"order\":%" PRIu64
                           ",\"address\":%" PRIu64 ",\"size\":%" PRIu64
                           ",\"thread\":%" PRIu32 ",\"realloc\":%s,",
                first ? "" : ",", event_name(event), event->order,
                event->address, size, event->thread,
                event->type & MDLOG_EVENT_REALLOC ? "true" : "false");
        json_frames(view, event->stack);
        fprintf(view->out, "}");
        return;
    }
    fprintf(view->out, "%s%s %#" PRIx64 "-%#" PRIx64 " [size=%" PRIu64 "]%s: thread_%" PRIx32,
            event_name(event), strlen(event_name(event)) < 5 ? " " : "",
            event->address, event->address + (size ? size - 1 : 0), size,
            event->type & MDLOG_EVENT_REALLOC ? " (realloc)" : "", event->thread);
    print_frames(view, event->stack);
    fputc('\n', view->out);
}

static void print_selection(const struct history_view *view,
                            const struct history_selection *selection,
                            const struct history_event *events, bool *first)
{
    for (size_t i = 0; i < selection->count; i++) {
        print_event(view, &events[selection->events[i]], *first);
        *first = false;
    }
}

int history_report_addresses(const struct history_view *view,
                             const uint64_t *addresses, size_t count)
{
    size_t event_count, vm_count;
    const struct history_event *events = history_events(view->history, &event_count);
    const struct history_event *vm = history_vm_events(view->history, &vm_count);
    if (view->json)
        fprintf(view->out, "{\"addresses\":[");
    for (size_t i = 0; i < count; i++) {
        struct history_selection found = {0}, found_vm = {0};
        if (!history_events_at_address(view->history, addresses[i], &found) ||
            !history_vm_events_at_address(view->history, addresses[i], &found_vm)) {
            history_selection_free(&found);
            return -1;
        }
        bool first = true;
        if (view->json)
            fprintf(view->out, "%s{\"address\":%" PRIu64 ",\"events\":[",
                    i ? "," : "", addresses[i]);
        else
            fprintf(view->out, "%zu event%s for %#" PRIx64 ":\n",
                    found.count + found_vm.count,
                    found.count + found_vm.count == 1 ? "" : "s", addresses[i]);
        print_selection(view, &found, events, &first);
        print_selection(view, &found_vm, vm, &first);
        fprintf(view->out, view->json ? "]}" : "\n");
        history_selection_free(&found);
        history_selection_free(&found_vm);
    }
    if (view->json)
        fprintf(view->out, "]}\n");
    return 0;
}

int history_report_all_events(const struct history_view *view)
{
    size_t event_count, vm_count;
    const struct history_event *events = history_events(view->history, &event_count);
    const struct history_event *vm = history_vm_events(view->history, &vm_count);
    if (view->json)
        fprintf(view->out, "{\"events\":[");
    /* Both lists are in order: merged by order. */
    size_t i = 0, j = 0;
    bool first = true;
    while (i < event_count || j < vm_count) {
        bool take_vm = j < vm_count && (i == event_count || vm[j].order < events[i].order);
        print_event(view, take_vm ? &vm[j++] : &events[i++], first);
        first = false;
    }
    if (view->json)
        fprintf(view->out, "]}\n");
    return 0;
}

/* ---- groups ---- */

/* A compacted log lost the blocks freed right after they were made: the
 * peak it shows may be lower than the process's. */
static void note_compacted_peak(const struct history_view *view)
{
    const struct history_summary *summary = history_summary(view->history);
    if (!view->json && summary->compacted && summary->elided_pairs)
        fprintf(view->out,
                "(the log is compacted: blocks freed right after they were "
                "allocated are not in it, and the real peak may be higher; "
                "run with MallocStackLoggingNoCompact=1 for the exact peak)\n");
}

/* The blocks live at the end (or at the peak), grouped by stack: from
 * the history, or from the live blocks alone when that is all the view
 * was given. */
static bool group_live_blocks(const struct history_view *view, bool at_peak,
                              enum history_group_order order,
                              struct history_groups *groups)
{
    if (view->history == NULL) {
        struct history_grouping *grouping = history_grouping_start();
        const struct log_live_blocks *live = view->live_at_end;
        for (size_t i = 0; i < live->count; i++)
            if (!history_grouping_add(grouping, live->blocks[i].stack,
                                      live->blocks[i].size))
                break;
        return history_grouping_finish(grouping, order, groups);
    }
    if (at_peak)
        note_compacted_peak(view);
    struct history_selection blocks = {0};
    bool found = at_peak ? history_live_at_peak(view->history, &blocks)
                         : history_live_at_end(view->history, &blocks);
    bool grouped = found && history_group_by_stack(view->history, &blocks, order, groups);
    history_selection_free(&blocks);
    return grouped;
}

static void print_group(const struct history_view *view,
                        const struct history_group *group, const char *what,
                        bool first)
{
    uint32_t thread = 0;
    bool has_thread = group->stack &&
                      log_reader_stack_thread(view->reader, group->stack, &thread);
    if (view->json) {
        fprintf(view->out, "%s{\"count\":%" PRIu64 ",\"bytes\":%" PRIu64
                           ",\"thread\":%" PRIu32 ",",
                first ? "" : ",", group->count, group->bytes, thread);
        json_frames(view, group->stack);
        fprintf(view->out, "}");
        return;
    }
    fprintf(view->out, "%" PRIu64 " %s%s for %" PRIu64 " bytes: ", group->count,
            what, group->count == 1 ? "" : "s", group->bytes);
    if (has_thread)
        fprintf(view->out, "thread_%" PRIx32, thread);
    print_frames(view, group->stack);
    fputc('\n', view->out);
}

/* Prints and frees `groups`. */
static void print_groups(const struct history_view *view,
                         struct history_groups *groups, const char *what,
                         const char *title)
{
    if (view->json)
        fprintf(view->out, "{\"view\":\"%s\",\"count\":%" PRIu64 ",\"bytes\":%" PRIu64
                           ",\"groups\":[",
                title, groups->total_count, groups->total_bytes);
    else
        fprintf(view->out, "%s: %" PRIu64 " %s%s for %" PRIu64 " bytes, from %zu stack%s\n\n",
                title, groups->total_count, what, groups->total_count == 1 ? "" : "s",
                groups->total_bytes, groups->count, groups->count == 1 ? "" : "s");
    for (size_t i = 0; i < groups->count; i++)
        print_group(view, &groups->groups[i], what, i == 0);
    fprintf(view->out, view->json ? "]}\n" : "\n");
    history_groups_free(groups);
}

int history_report_groups(const struct history_view *view, bool at_peak,
                          enum history_group_order order)
{
    struct history_groups groups;
    if (!group_live_blocks(view, at_peak, order, &groups))
        return -1;
    print_groups(view, &groups, "call",
                 at_peak ? "live at the high-water mark" : "live at the end");
    return 0;
}

int history_report_temporaries(const struct history_view *view)
{
    struct history_selection blocks = {0};
    if (!history_temporaries(view->history, &blocks))
        return -1;
    const struct history_summary *summary = history_summary(view->history);
    if (!view->json && summary->compacted && summary->elided_pairs)
        fprintf(view->out,
                "(the log is compacted: %" PRIu64 " allocate-and-free pair%s with "
                "nothing in between %s not recorded; run with "
                "MallocStackLoggingNoCompact=1 to see them)\n",
                summary->elided_pairs, summary->elided_pairs == 1 ? "" : "s",
                summary->elided_pairs == 1 ? "was" : "were");
    struct history_groups groups;
    bool grouped = history_group_by_stack(view->history, &blocks, HISTORY_BY_COUNT,
                                          &groups);
    history_selection_free(&blocks);
    if (!grouped)
        return -1;
    print_groups(view, &groups, "temporary allocation", "temporaries");
    return 0;
}

/* ---- the call tree ---- */

static void print_tree_line(const struct history_view *view,
                            const struct history_tree_node *node,
                            uint32_t depth, const char *frame, bool first)
{
    if (view->json) {
        fprintf(view->out, "%s{\"depth\":%" PRIu32 ",\"count\":%" PRIu64
                           ",\"bytes\":%" PRIu64 ",\"frame\":",
                first ? "" : ",", depth, node->count, node->bytes);
        json_write_string(view->out, frame);
        fprintf(view->out, "}");
        return;
    }
    fprintf(view->out, "%*s%s%" PRIu64 " (%" PRIu64 " bytes) %s\n",
            2 * (int)depth + 4, "", depth ? "+ " : "", node->count,
            node->bytes, frame);
}

/* A node's frames, a line each, each a level deeper than the one before:
 * the function, then the calls inlined into it, or innermost first in
 * the inverted tree.  Returns how many lines. */
static uint32_t print_tree_node(const struct history_view *view,
                                const struct history_tree_node *node,
                                bool inverted, uint32_t depth, bool *first)
{
    if (!node->depth) {
        print_tree_line(view, node, 0, "ROOT", *first);
        *first = false;
        return 1;
    }
    unsigned frames = stack_names_frames_at(view->names, node->pc, node->module);
    for (unsigned i = 0; i < frames; i++) {
        char frame[512];
        stack_names_frame(view->names, node->pc, node->module,
                          inverted ? frames - 1 - i : i, true, frame,
                          sizeof(frame));
        print_tree_line(view, node, depth + i, frame, *first);
        *first = false;
    }
    return frames;
}

struct tree_place {
    uint32_t node;
    uint32_t depth; /* as printed: inlined calls add levels */
};

/* Depth first, children in the tree's order, without recursion. */
static int print_tree(const struct history_view *view,
                      const struct history_tree *tree, bool inverted)
{
    struct tree_place *stack = malloc((tree->count + 1) * sizeof(*stack));
    if (!stack)
        return -1;
    size_t depth = 0;
    bool first = true;
    stack[depth++] = (struct tree_place){0, 0};
    while (depth) {
        struct tree_place at = stack[--depth];
        uint32_t below = at.depth + print_tree_node(view, &tree->nodes[at.node],
                                                    inverted, at.depth, &first);
        size_t from = depth;
        for (uint32_t child = tree->nodes[at.node].first_child;
             child != HISTORY_NONE; child = tree->nodes[child].next_sibling)
            stack[depth++] = (struct tree_place){child, below};
        for (size_t i = from, j = depth; i + 1 < j; i++, j--) {
            struct tree_place swap = stack[i];
            stack[i] = stack[j - 1];
            stack[j - 1] = swap;
        }
    }
    free(stack);
    return 0;
}

int history_report_call_tree(const struct history_view *view, bool at_peak,
                             bool inverted)
{
    struct history_groups groups;
    struct history_tree tree;
    if (!group_live_blocks(view, at_peak, HISTORY_BY_SIZE, &groups))
        return -1;
    bool ok = history_tree_build(view->reader, &groups, inverted, &tree);
    history_groups_free(&groups);
    if (!ok)
        return -1;
    if (view->json)
        fprintf(view->out, "{\"view\":\"call tree\",\"inverted\":%s,\"nodes\":[",
                inverted ? "true" : "false");
    else
        fprintf(view->out, "Call graph (%s, %s):\n",
                at_peak ? "live at the high-water mark" : "live at the end",
                inverted ? "inverted: allocating frames first" : "callers first");
    int result = print_tree(view, &tree, inverted);
    fprintf(view->out, view->json ? "]}\n" : "\n");
    history_tree_free(&tree);
    return result;
}
