/*
 * The history of a stack log in full (or malloc, or vm) mode, as
 * malloc_history's reports use it: the log's events replayed once
 * into a compact model, and the questions asked of it (which events
 * touched an address, which blocks were live when, grouped by stack or
 * folded into a call tree, which allocations were freed right away).
 * Nothing here prints or symbolizes: frames are return addresses and
 * module indexes, for the report to name.
 *
 * Events are kept in two arrays in increasing order: the malloc events
 * (allocations and frees, each half of a realloc as its own event, as
 * the log records them) and the vm events (mmap, munmap, and the halves
 * of mremap), which never touch the malloc live set.  Everything else
 * refers to an event by its index in its array.
 *
 * How the log records what the replay reads (lib/stacklog.c):
 *   - malloc, valloc, memalign, posix_memalign, aligned_alloc: one
 *     ALLOC with the size asked for; calloc: the same with
 *     MDLOG_EVENT_CLEARED and count * size;
 *   - free: one FREE of size 0, with the stack of the free;
 *   - realloc of a block: FREE|REALLOC of the old address, then
 *     ALLOC|REALLOC of the new one (maybe the same) with the new size,
 *     both with the realloc's stack.  The free half's order is taken
 *     before the call and left with the old block, so the old block's
 *     next event, on whichever thread, comes after the free half.  realloc(NULL, n) and
 *     malloc_zone_realloc(zone, NULL, n) are logged as a malloc, and
 *     realloc(p, 0) as a free.  A log of an earlier build of the
 *     library may hold, for a zone's realloc of NULL, a free half of
 *     address 0 with a stale order: the replay keeps it, as freeing
 *     nothing;
 *   - mmap: VM_MAP; munmap: VM_UNMAP; mremap: VM_UNMAP|REALLOC of the
 *     old range, then VM_MAP|REALLOC of the new one.
 *
 * Compaction: unless the process ran with MallocStackLoggingNoCompact,
 * a free whose block is the last event its thread recorded (a plain
 * ALLOC, not a realloc's) takes that ALLOC back out of the log and is
 * not written either.  The pair leaves no event at all: only a gap in
 * the order numbers (the allocation's order was used), its stack nodes,
 * and 2 more in the header's compacted_count.  Since the record taken
 * back makes the thread's previous event its last again, nested pairs
 * (allocate A, allocate B, free B, free A) vanish as well.  The replay
 * cannot see these pairs: they never change the live set, but the
 * temporaries view only finds the pairs that survived (see
 * history_temporaries).
 *
 * A history is not safe to use from two threads at once.  What needs
 * only the blocks live at the end finds them without a history
 * (log_live_blocks.h).
 */
#ifndef MALLOCDEBUG_HISTORY_H
#define MALLOCDEBUG_HISTORY_H

#include "log_reader.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct history;

/* No event: an index that is none. */
#define HISTORY_NONE UINT32_MAX

/* What the replay found out about an event. */
enum history_mark {
    /* A free (or realloc's free half) of an address that was not live:
     * the log began after the block was allocated, lost the event, or
     * is damaged.  Counted, then ignored. */
    HISTORY_MARK_UNKNOWN_FREE = 1u << 0,
    /* An allocation ended by a later allocation at its address rather
     * than by a free (a lost free, or a damaged log). */
    HISTORY_MARK_REPLACED = 1u << 1,
    /* An allocation freed (by a plain free) by the thread that made it,
     * before that thread allocated anything else. */
    HISTORY_MARK_TEMPORARY = 1u << 2,
};

struct history_event {
    uint64_t order;
    uint64_t address;
    uint64_t size;   /* as logged: 0 for a free */
    uint32_t stack;  /* stack node id, 0 when none was taken */
    uint32_t thread; /* the recording thread's id */
    /* An allocation: the event that ended it (a free, or a replacing
     * allocation), HISTORY_NONE while it is live at the end.  A free:
     * the allocation it ended, HISTORY_NONE when unknown.  A vm event:
     * HISTORY_NONE. */
    uint32_t partner;
    uint8_t type;  /* enum mdlog_event_kind and MDLOG_EVENT_* flags */
    uint8_t marks; /* enum history_mark */
};

/* Live malloc bytes and blocks just after the event of `order`. */
struct history_level {
    uint64_t order;
    uint64_t bytes;
    uint64_t count;
};

struct history_summary {
    uint64_t allocations;   /* ALLOC events, realloc halves included */
    uint64_t frees;         /* FREE events, realloc halves included */
    uint64_t vm_events;
    uint64_t unknown_frees; /* frees marked HISTORY_MARK_UNKNOWN_FREE */
    uint64_t replaced;      /* allocations marked HISTORY_MARK_REPLACED */
    uint64_t temporaries;   /* allocations marked HISTORY_MARK_TEMPORARY */
    /* The most live bytes, at the first event that reached them; all
     * zero when no block was ever live. */
    struct history_level peak;
    struct history_level end; /* after the last event */
    /* Compaction (see above): whether the log was compacted, and how
     * many allocate-and-free pairs its header says were taken out. */
    bool compacted;
    uint64_t elided_pairs;
};

/* ---- the replay (history_replay.c) ---- */

/* Walks the log's events once.  On failure (out of memory, more than
 * 2^32 - 2 events of one kind) returns NULL and writes one line into
 * `message`: what is wrong and what to do.  Bad events are counted in
 * the summary, never fatal.  The history keeps no pointer to the
 * reader. */
struct history *history_replay(const struct log_reader *reader, char *message,
                               size_t message_size);
void history_free(struct history *history);

const struct history_summary *history_summary(const struct history *history);
const struct history_event *history_events(const struct history *history,
                                           size_t *count);
const struct history_event *history_vm_events(const struct history *history,
                                              size_t *count);

/* Live bytes and blocks over the whole log, at most
 * HISTORY_TIMELINE_MAX points evenly spaced in malloc events, the last
 * one at the last event. */
#define HISTORY_TIMELINE_MAX 1024
const struct history_level *history_timeline(const struct history *history,
                                             size_t *count);

/* ---- sets of events (history_selection.c) ---- */

/* Indexes into history_events (or history_vm_events), increasing. */
struct history_selection {
    uint32_t *events;
    size_t count;
};
void history_selection_free(struct history_selection *selection);

/* The allocations live just after the event of `order`: once the
 * events are replayed up to the first of a later order (UINT64_MAX: at
 * the end).  At the end and at the high-water mark (the event that
 * reached the peak) they are also found without a search.  False when
 * memory ran out. */
bool history_live_at(const struct history *history, uint64_t order,
                     struct history_selection *blocks);
bool history_live_at_end(const struct history *history,
                         struct history_selection *blocks);
bool history_live_at_peak(const struct history *history,
                          struct history_selection *blocks);

/* ---- events at an address (history_address.c) ---- */

/* The malloc events of every block that starts at `address` or holds it
 * ([address, address + size), a block of size 0 only at its start):
 * its allocation and the free that ended it; and frees of `address`
 * itself that ended no known block.  In order.  The first call indexes
 * the allocations by address; later ones take O(log n) plus the events
 * found.  False when memory ran out. */
bool history_events_at_address(struct history *history, uint64_t address,
                               struct history_selection *events);

/* ---- groups by stack (history_groups.c) ---- */

enum history_group_order {
    HISTORY_BY_SIZE,  /* bytes, then count, descending (-allBySize) */
    HISTORY_BY_COUNT, /* count, then bytes, descending (-allByCount) */
};

/* Allocations with one stack id.  Ties in the order are broken by the
 * stack id, ascending. */
struct history_group {
    uint32_t stack;
    uint64_t count;
    uint64_t bytes;
};

struct history_groups {
    struct history_group *groups;
    size_t count;
    uint64_t total_count, total_bytes;
};

/* Blocks grouped one at a time, from any source: start, add each block,
 * then finish, which also frees the grouping.  An add that runs out of
 * memory returns false, and so do the adds after it and the finish; a
 * NULL grouping, from a start that failed, does the same. */
struct history_grouping;
struct history_grouping *history_grouping_start(void);
bool history_grouping_add(struct history_grouping *grouping, uint32_t stack,
                          uint64_t size);
bool history_grouping_finish(struct history_grouping *grouping,
                             enum history_group_order order,
                             struct history_groups *groups);

/* Groups the allocations `blocks` (indexes into history_events) by
 * stack id.  False when memory ran out. */
bool history_group_by_stack(const struct history *history,
                            const struct history_selection *blocks,
                            enum history_group_order order,
                            struct history_groups *groups);
void history_groups_free(struct history_groups *groups);

/* ---- temporaries (history_temporaries.c) ---- */

/* The allocations marked HISTORY_MARK_TEMPORARY: freed by their own
 * thread with a plain free before it allocated again (a realloc's
 * allocation half counts as an allocation; a realloc does not end a
 * temporary).  Group them with HISTORY_BY_COUNT for the places to cut
 * allocations first.
 *
 * In a compacted log (history_summary's `compacted`) this sees only the
 * pairs compaction left: those where the thread recorded some other
 * event between the allocation and its free (a free of another block,
 * an mmap or munmap) or where the allocation was a realloc's.  The
 * pairs with nothing in between, nested ones included, were taken out
 * of the log; `elided_pairs` counts them, but their stacks and sizes
 * are gone.  Run with MallocStackLoggingNoCompact=1 to see them all. */
bool history_temporaries(const struct history *history,
                         struct history_selection *blocks);

/* ---- call tree (history_calltree.c) ---- */

struct history_tree_node {
    uint64_t pc;     /* a return address; 0 for the root */
    uint64_t count;  /* blocks allocated through this frame */
    uint64_t bytes;
    uint32_t module; /* as in the stack node; MDLOG_MODULE_UNKNOWN at the root */
    uint32_t parent; /* HISTORY_NONE for the root */
    uint32_t first_child;  /* the child with most bytes, or HISTORY_NONE */
    uint32_t next_sibling; /* the next with fewer (or equal) bytes */
    uint32_t depth;        /* 0 for the root */
};

/* Node 0 is the root, with every block; a node's children are the
 * frames called from it (or, inverted, that called it), sorted by bytes
 * then count descending, then pc and module ascending.  Blocks with no
 * stack count only at the root; a stack whose nodes cannot be read
 * hangs what could be read from the root. */
struct history_tree {
    struct history_tree_node *nodes;
    size_t count;
};

/* Folds `groups` (from history_group_by_stack, in any order) into a
 * tree of frames: from the outermost caller down to the frame that
 * allocated, or with `inverted` from the allocating frame out to the
 * outermost caller.  Stacks are read from `reader`, the log the history
 * was replayed from.  False when memory ran out. */
bool history_tree_build(const struct log_reader *reader,
                        const struct history_groups *groups, bool inverted,
                        struct history_tree *tree);
void history_tree_free(struct history_tree *tree);

/* ---- vm regions (history_vm.c) ---- */

/* A range mapped by the program, in whole pages of this machine's size
 * (the kernel rounds what mmap and munmap are given). */
struct history_region {
    uint64_t address;
    uint64_t size;
    uint32_t event; /* the vm event that mapped it */
};

/* The regions mapped just after the event of `order` (UINT64_MAX: at
 * the end), by address, as the vm events left them: a munmap or mremap
 * cuts whatever it covers, an mmap replaces what it covers.  Mappings
 * made before the log began are not known.  False when memory ran out;
 * free `*regions` with free(). */
bool history_vm_regions_at(const struct history *history, uint64_t order,
                           struct history_region **regions, size_t *count);

/* The vm events whose range (rounded to pages) holds `address`, in
 * order, as indexes into history_vm_events. */
bool history_vm_events_at_address(const struct history *history,
                                  uint64_t address,
                                  struct history_selection *events);

#endif
