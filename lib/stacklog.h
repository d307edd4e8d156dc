/*
 * The stack logger (MallocStackLogging).  A malloc_logger of the
 * library's own, called by the malloc layer next to the program's: it
 * unwinds the calling thread with libunwind, uniques the stack into a
 * tree of frames shared by all threads, stores the stack id in the
 * zone's metadata of the block, and in the modes that keep a history
 * appends the event to the thread's part of the log.
 *
 * The log (include/mallocdebug/stack_log.h) is a file mapped shared, in
 * chunks, so tools can read it while the process runs and after it died.
 *
 * Rules.  Nothing here allocates through malloc, and nothing runs with a
 * zone lock held: the malloc layer calls in after an allocation and
 * before a free.  A thread that is already inside the logger (a signal
 * handler, or libunwind allocating) records its block without a stack.
 * Locks of this layer, always taken in this order: the node index's
 * growth lock (its holder waits only for threads adding to the index,
 * which hold no lock and wait for none while they add), the dynamic
 * loader's (inside dl_iterate_phdr), the module list's, the node
 * chunks', the file's.
 */
#ifndef MALLOCDEBUG_STACKLOG_H
#define MALLOCDEBUG_STACKLOG_H

#include <malloc/malloc.h>
#include <mallocdebug/stack_log.h>
#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "os_memory.h"

/* Malloc events are recorded: blocks get stack ids (all modes but vm). */
extern bool stacklog_malloc_enabled;
/* Frees are recorded (the modes with a malloc history). */
extern bool stacklog_free_enabled;
/* The program's mmap, munmap and mremap calls are recorded. */
extern bool stacklog_vm_enabled;

/* ---- stacklog.c: the logger ---- */
/* Starts logging when the options ask for it; at the first allocation. */
void stacklog_start(void);
/* From the library's constructor: libc is up, stacks may be taken. */
void stacklog_constructor(void);
/* Where the return address into the program sits, expanded in an
 * exported function the program calls (or in code always inlined into
 * one): on x86-64, just below the function's frame address.  0 where
 * that is not known: the stack is then always unwound. */
#if defined(__x86_64__) && !defined(__ILP32__)
#define STACKLOG_RETURN_SLOT() \
    ((uintptr_t)__builtin_dwarf_cfa() - sizeof(uintptr_t))
#else
#define STACKLOG_RETURN_SLOT() ((uintptr_t)0)
#endif
/* With Apple's malloc_logger arguments, but for the last: the exported
 * function's STACKLOG_RETURN_SLOT(), or 0. */
void stacklog_logger(uint32_t type, uintptr_t zone, uintptr_t arg2,
                     uintptr_t arg3, uintptr_t result, uintptr_t return_slot);
/* Lite mode's record: the stack id in the zone's metadata of the block
 * just handed out at `block`.  Returns the block's log tag, or NULL when
 * the zone keeps none (the guard zone, which keeps the stack id in its
 * own table, and zones the program wrote itself, which have no room). */
struct szone_log_tag *stacklog_block_set_stack(malloc_zone_t *zone,
                                               uintptr_t block, uint32_t stack);
/* The stack id the zone holds for the block in use at `block`; 0 when it
 * holds none (a zone the program wrote itself). */
uint32_t stacklog_block_stack(malloc_zone_t *zone, uintptr_t block);
/* Where the zone keeps the logger's tag of the block in use at `block`
 * (its stack id and its latest event's order); NULL when it keeps none:
 * the guard zone, whose table is read under its lock, and zones the
 * program wrote itself. */
struct szone_log_tag *stacklog_block_tag(malloc_zone_t *zone, uintptr_t block);
/* Before a vm call that releases memory: its place in the order, or 0. */
uint64_t stacklog_vm_begin(void);
/* A vm event of the program (enum mdlog_event_kind and flags), with the
 * order from stacklog_vm_begin or 0 for the next one. */
void stacklog_vm_event(unsigned type, uintptr_t address, size_t size,
                       uint64_t order, uintptr_t return_slot);
void stacklog_force_lock(void);
void stacklog_force_unlock(void);
void stacklog_fork_child(void);

/* ---- stacklog_thread.c: each thread's state ---- */
/* A stack the thread took recently, with where its return addresses sit
 * on the stack (see stacklog_stack_cache.c). */
#define STACK_CACHE_SET_BITS 8
#define STACK_CACHE_SETS (1u << STACK_CACHE_SET_BITS)
#define STACK_CACHE_WAYS 4
#define STACK_CACHE_ENTRIES (STACK_CACHE_SETS * STACK_CACHE_WAYS)
#define STACK_CACHE_FRAMES 48
/* Side by side: a check reads both at once. */
struct stacklog_cached_frame {
    uintptr_t slot;  /* where a return address sat on the stack */
    uintptr_t value; /* and the return address */
};
struct stacklog_cached_stack {
    uint32_t stack;
    uint32_t count; /* frames, at most STACK_CACHE_FRAMES - 1 */
    /* frame[count] repeats the last frame: the frames are checked two
     * at a time. */
    struct stacklog_cached_frame frame[STACK_CACHE_FRAMES];
};

/* Where the return address into the program sat on the stack when a
 * stack was cached, 0 for none, and that return address: with it, the
 * ways of a set are told apart without reading their entries. */
struct stacklog_cache_key {
    uintptr_t slot;
    uintptr_t returns_to;
};
_Static_assert(sizeof(struct stacklog_cache_key) * STACK_CACHE_WAYS == 64,
               "a set's keys fill one cache line");

/* The size of the frame a return address returns into, as the stack
 * search found it (stacklog_frame_sizes.c). */
#define FRAME_SIZES_BITS 10
#define FRAME_SIZES (1u << FRAME_SIZES_BITS)
struct stacklog_frame_size {
    uintptr_t pc;  /* the return address; 0 for an empty entry */
    uint32_t size; /* bytes from its slot to the caller's; 0: not one size */
    uint32_t seen; /* times found that size */
};

/* What the writer keeps of a recent event (stacklog_events.h). */
#define STACKLOG_EVENT_MARKS 8
struct stacklog_event_mark {
    struct mdlog_event_base base; /* the event's address, order, stack */
    uint32_t end;                 /* where it ends in the chunk */
    uint32_t type;                /* 0: the chunk's start, no event */
};

struct stacklog_thread {
    struct stacklog_thread *next_spare;
    struct stacklog_thread *next_live, *previous_live;
    uint32_t tid;
    uint32_t root; /* the thread's node, 0 until made */
    uint64_t root_hash;
    /* In libunwind, which a fork must not cut short (see
     * stacklog_capture.c). */
    bool unwinding;
    /* Events: the thread's current chunk. */
    struct mdlog_chunk_header *chunk;
    unsigned char *events;
    /* Bytes written, bytes that have memory and are faulted in, bytes
     * the chunk holds.  An event is written where MDLOG_EVENT_MAX_SIZE
     * bytes are prepared, whatever its own length. */
    uint32_t used, prepared, capacity;
    /* The latest events of the chunk, in a ring: the next one is written
     * against the newest, and the newest may be taken back. */
    struct stacklog_event_mark event_marks[STACKLOG_EVENT_MARKS];
    uint32_t newest_mark;    /* its index in the ring, counted up */
    uint32_t marks_retained; /* events of the chunk that can be taken back */
    uint64_t realloc_order; /* from stacklog_realloc_begin */
    uint64_t clock; /* the order of its latest event (stacklog_orders.h) */
    /* Counts not yet added to the header. */
    uint64_t recorded, compacted, unrecorded;
    /* The key of each cached stack, the ways of a set side by side in
     * one cache line.  Every key is good while the thread is caught up
     * with the unmap generation (unmaps_seen below); catching up clears
     * them all when an unmapping met the pages they were read from. */
    struct stacklog_cache_key cache_key[STACK_CACHE_ENTRIES]
        __attribute__((aligned(64)));
    /* The way of each set that the next stack stored there replaces. */
    uint8_t cache_next_way[STACK_CACHE_SETS];
    /* Captures since the cache last found a stack. */
    uint32_t cache_misses;
    /* Where the cache last failed to find a stack, until the capture
     * that follows (stacklog_stack_cache_find). */
    uintptr_t cache_missed_slot;
    /* Pages [readable_low, readable_high) around the capture's frame,
     * checked readable while the unmap generation was
     * readable_generation: the slot search reads nothing else. */
    uint64_t readable_generation;
    uintptr_t readable_low, readable_high;
    /* The unmap generation the thread last caught up with, and
     * [span_low, span_high), every page it read slots from since an
     * unmapping last met them (stacklog_stack_slots_catch_up). */
    uint64_t unmaps_seen;
    uintptr_t span_low, span_high;
    /* Whether unwound_slot[] holds where each of unwound[1..unwound_total)
     * sits on the stack (while the unmap generation is
     * unwound_generation), and captures since joining it last failed. */
    bool unwound_slots_known;
    uint32_t unwound_total;
    uint64_t unwound_generation;
    uint32_t join_misses;
    /* The previous stack, outermost frame first, and the node of each
     * of its frames with its hash: the next stack shares most of it,
     * unless a module was unloaded since (module_unloads), when the same
     * addresses may be another module's. */
    uint32_t depth;
    bool frames_truncated; /* its outermost frames were dropped */
    uint64_t module_unloads;
    uintptr_t frames[MDLOG_MAX_FRAMES];
    uint32_t nodes[MDLOG_MAX_FRAMES];
    uint64_t hashes[MDLOG_MAX_FRAMES];
    /* What unwinding writes, innermost first, library frames included. */
    void *unwound[MDLOG_MAX_FRAMES + 32];
    uintptr_t unwound_slot[MDLOG_MAX_FRAMES + 32];
    /* The previous stack's slots while the next one's are found. */
    uintptr_t previous_slot[MDLOG_MAX_FRAMES + 32];
    struct stacklog_cached_stack cache[STACK_CACHE_ENTRIES];
    /* Frame sizes, while no module was unloaded since module_unloads. */
    struct stacklog_frame_size frame_sizes[FRAME_SIZES];
};

extern __thread struct stacklog_thread *stacklog_current_thread
    __attribute__((tls_model("initial-exec")));
/* Makes the calling thread's state; NULL when out of memory or when the
 * thread's state is gone (it is exiting). */
struct stacklog_thread *stacklog_thread_make_current(void);

/* The calling thread's state, made on first use.  Inline: every logged
 * allocation asks. */
static inline struct stacklog_thread *stacklog_thread_current(void)
{
    struct stacklog_thread *thread = stacklog_current_thread;
    return MD_LIKELY(thread != NULL) ? thread : stacklog_thread_make_current();
}
void stacklog_thread_setup(void);
/* Adds a thread's counts to the header. */
void stacklog_thread_flush_counts(struct stacklog_thread *thread);
/* At exit: every thread's counts. */
void stacklog_thread_flush_all(void);
/* After fork, in the child: the surviving thread starts over. */
void stacklog_thread_fork_child(void);
/* Waits until no thread is unwinding. */
void stacklog_thread_wait_for_unwinds(void);

/* ---- stacklog_capture.c: unwinding and uniquing a stack ---- */
/* (The capture itself is inline, in stacklog_capture.h.)  The library's
 * code: frames in it are not the program's. */
void stacklog_capture_setup(void);
/* Around fork: no thread is in libunwind while the process forks. */
void stacklog_capture_stop_for_fork(void);
void stacklog_capture_resume_after_fork(void);

/* ---- stacklog_stack_cache.c: stacks taken again without unwinding ---- */
/* (The lookup is inline, in stacklog_stack_cache.h.)  Remembers `stack`,
 * the one in thread->unwound from its frame `first` (the program's
 * innermost) outwards, when where its return addresses sit is known. */
void stacklog_stack_cache_store(struct stacklog_thread *thread,
                                unsigned first, uint32_t stack);
/* Forgets every cached stack. */
void stacklog_stack_cache_clear(struct stacklog_thread *thread);
/* Whether the next store will remember its stack (a thread whose stacks
 * keep changing stores only now and then): the capture then needs the
 * slots of the stack it unwinds. */
bool stacklog_stack_cache_will_store(const struct stacklog_thread *thread);

/* ---- stacklog_stack_join.c: unwinding only what changed ---- */
/* Frames the capture unwinds before joining the previous stack: up to
 * 3 of the library's (the logger, dispatch_free_default_zone_logged,
 * free) and 4 of the program's.  A recursion's stacks mostly differ in
 * 1 or 2 frames, but an interpreter's in more: with room for 2 of the
 * program's frames after free's, Python's full mode took 7% more
 * instructions (bench/README.md, "The join's window, again"). */
#define STACK_JOIN_INNER_FRAMES 7
/* The thread's stack taken from the frame at `cfa` (`return_slot` as for
 * stacklog_capture): `inner` holds its
 * STACK_JOIN_INNER_FRAMES innermost frames, just unwound.  When the
 * outermost of them sits where it sat in the previous stack
 * (thread->unwound) and the frames outside it are unchanged, the
 * previous stack's outer frames are joined to them in thread->unwound:
 * the total frames, `*kept` of them the previous stack's.  0 when they
 * cannot be. */
unsigned stacklog_stack_join(struct stacklog_thread *thread, uintptr_t cfa,
                             uintptr_t return_slot, void *const *inner,
                             unsigned *kept);
/* Finds where each of thread->unwound[1..total), unwound from the frame
 * at `cfa`, sits on the stack, for the next capture to join. */
void stacklog_stack_join_prepare(struct stacklog_thread *thread, uintptr_t cfa,
                                 uintptr_t return_slot, unsigned total);

/* The previous stack (thread->unwound) with new inner frames found
 * without unwinding: from `return_slot`, which the capture's frame at
 * `cfa` is inside, each frame's known size leads to its caller's return
 * address, until one sits where it sat in the previous stack and the
 * frames outside it are unchanged.  The total frames, `*kept` of them
 * the previous stack's, or 0. */
unsigned stacklog_stack_walk_join(struct stacklog_thread *thread,
                                  uintptr_t cfa, uintptr_t return_slot,
                                  unsigned *kept);

/* ---- stacklog_frame_sizes.c: what the stack search learnt ---- */
/* Learns the size of the frame of each of pcs[from..count - 1) from
 * where its return address and its caller's sit (slots[], 0 for
 * unknown).  False when one of them has been found with another size
 * before: its caller's slot may hold a stale copy of a return address
 * the next time, and slots found beyond it are not to be trusted. */
bool stacklog_frame_sizes_learn(struct stacklog_thread *thread,
                                void *const *pcs, const uintptr_t *slots,
                                unsigned from, unsigned count);
/* The size of the frame `pc` returns into, when it was always found the
 * same; else 0. */
uint32_t stacklog_frame_size(const struct stacklog_thread *thread,
                             uintptr_t pc);
/* Forgets them all: a module was unloaded, its addresses may be
 * another's. */
void stacklog_frame_sizes_forget(struct stacklog_thread *thread);

/* ---- stacklog_stack_slots.c: where return addresses sit ---- */
/* Slots an earlier search found, slot[1..count) in increasing order, at
 * the unmap generation of now. */
struct stacklog_known_slots {
    const uintptr_t *slot;
    unsigned count;
    /* The pcs searched for are the innermost frames of a longer stack
     * (a join's window): known slots may go on past them. */
    bool pcs_are_inner;
};
/* Where pcs[1..count), unwound from the capture's frame at `cfa` (pcs[0]
 * being the capture's own pc), sit on the stack, into slots[1..count);
 * false when they cannot be told apart.  `return_slot`, when not 0, is
 * known to hold the return address into the program (stacklog_capture).
 * `known`, when not NULL, may spare the search the frames it shares with
 * them. */
bool stacklog_stack_slots_find(struct stacklog_thread *thread, uintptr_t cfa,
                               uintptr_t return_slot, void *const *pcs,
                               unsigned count, uintptr_t *slots,
                               const struct stacklog_known_slots *known);
/* Whether the word at `address`, above the capture's frame at `cfa`, can
 * be read; the thread's readable pages grow to it. */
bool stacklog_stack_slots_readable(struct stacklog_thread *thread,
                                   uintptr_t cfa, uintptr_t address);
/* Changes whenever memory is unmapped or made unreadable: slots found
 * before may lie in it.  Inline: read at every capture. */
static inline uint64_t stacklog_stack_slots_generation(void)
{
    return os_unmap_generation();
}
/* What the thread found on its stack at an earlier generation (cached
 * stacks, readable pages, the previous stack's slots) is given the
 * current one when the unmappings since then met none of the pages it
 * read; else it stays behind, and is found again. */
void stacklog_stack_slots_catch_up(struct stacklog_thread *thread);
/* Leaves every thread's findings behind. */
void stacklog_stack_slots_invalidate(void);
/* Finds the C library's code, where signal handlers return through. */
void stacklog_stack_slots_setup(void);

/* ---- stacklog_nodes.c: the uniquing tree ---- */
bool stacklog_nodes_setup(void);
/* A node's hash: its caller's mixed with its return address, so the
 * hashes of a stack's frames follow from the return addresses alone.
 * A thread's node (parent 0, pc the thread id) starts from 0. */
static inline uint64_t stacklog_node_hash(uint64_t parent_hash, uint64_t pc)
{
    uint64_t h = (pc ^ parent_hash) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 32);
}
/* The nodes of frames pcs[0..count) (outermost first), pcs[0] called
 * from `parent` whose hash is `parent_hash`, added when new: their ids
 * and hashes.  Returns how many were found; fewer than `count` when
 * the log cannot grow.  A thread's node has parent 0 and pc its id. */
unsigned stacklog_nodes_find(uint32_t parent, uint64_t parent_hash,
                             const uintptr_t *pcs, unsigned count,
                             uint32_t *ids, uint64_t *hashes);
/* A node already made; only its child links change after that. */
struct mdlog_stack_node *stacklog_node_record(uint32_t id);
/* The same, or NULL if the chunk of `id` is not mapped. */
struct mdlog_stack_node *stacklog_node_record_if_mapped(uint32_t id);
/* A frame's node is told by its pc and parent, and by its module once a
 * module was unloaded: another may then be loaded at the same addresses.
 * Until then frames are looked up with this for their module, which
 * matches any. */
#define STACKLOG_MODULE_ANY (MDLOG_MODULE_THREAD - 1)
static inline bool stacklog_node_is(const struct mdlog_stack_node *node,
                                    uint64_t pc, uint32_t module)
{
    return node->pc == pc &&
           (module == STACKLOG_MODULE_ANY || node->module == module);
}
/* A new node's record, neither listed nor in the index yet: its id, 0
 * when the log cannot grow or the frame's module cannot be told while a
 * fork is under way.  `module` is the frame's, or STACKLOG_MODULE_ANY to
 * look it up. */
uint32_t stacklog_node_record_new(uint32_t parent, uint64_t pc, uint32_t module);
void stacklog_nodes_force_lock(void);
void stacklog_nodes_force_unlock(void);
void stacklog_nodes_reinit_lock(void);
/* In a forked child, once it has its own copy of the log. */
void stacklog_nodes_fork_child(void);

/* ---- stacklog_node_index.c: finding a node ---- */
bool stacklog_node_index_setup(void);
/* The node (pc, parent) of `module` (stacklog_node_is) of hash `hash`,
 * its parent's hash being `parent_hash`, or 0 if it is not there. */
uint32_t stacklog_node_index_find(uint64_t parent_hash, uint64_t hash,
                                  uint32_t parent, uint64_t pc, uint32_t module);
/* Adds `made`, a complete node (pc, parent) of hash `hash` under a parent
 * of hash `parent_hash`, unless another thread added one of `module`
 * first: the node the index holds.  0 when the table is full and could
 * not grow. */
uint32_t stacklog_node_index_add(uint64_t parent_hash, uint64_t hash,
                                 uint32_t parent, uint64_t pc, uint32_t module,
                                 uint32_t made);
void stacklog_node_index_force_lock(void);
void stacklog_node_index_force_unlock(void);
void stacklog_node_index_fork_child(void);

/* ---- stacklog_node_children.c: a node's children, listed ---- */
/* The child of `parent` at `pc` of `module` (stacklog_node_is) when it
 * is listed; else 0, and *room says whether the list can take another
 * child (if not, the child may be in the index). */
uint32_t stacklog_node_children_find(uint32_t parent, uint64_t pc,
                                     uint32_t module, bool *room);
/* Lists `made`, a complete new node at `pc` of `module`, under `parent`:
 * `made`, or the node another thread listed first; 0 if the list is
 * full. */
uint32_t stacklog_node_children_add(uint32_t parent, uint32_t made, uint64_t pc,
                                    uint32_t module);
/* In a forked child: cuts the list of `parent` where it leads to a node
 * that is not a whole one of the child's `count`. */
void stacklog_node_children_repair(uint32_t parent, uint64_t count);

/* ---- stacklog_events.c: the history (inline, in stacklog_events.h) ---- */

/* ---- stacklog_modules.c: the module list ---- */
bool stacklog_modules_setup(void);
/* The module holding `pc`, recorded when first seen, or
 * MDLOG_MODULE_UNKNOWN; STACKLOG_MODULE_NOT_NOW when the module list
 * would have to be scanned while a fork is under way (a node made with
 * "unknown" then would stay so, and be cached). */
#define STACKLOG_MODULE_NOT_NOW (STACKLOG_MODULE_ANY - 1)
uint32_t stacklog_module_of(uintptr_t pc);
/* How many modules the list holds. */
uint32_t stacklog_modules_count(void);
/* How many modules were found unloaded so far. */
uint64_t stacklog_modules_unloaded(void);
/* After the program's dlclose: scans the list again if the loader's
 * counts moved, finding the modules unloaded. */
void stacklog_modules_rescan(void);
/* The loaded range of the module holding `address`; false if none. */
bool stacklog_module_range(uintptr_t address, uintptr_t *start, uintptr_t *end);
void stacklog_modules_force_lock(void);
void stacklog_modules_force_unlock(void);
void stacklog_modules_reinit_lock(void);
/* In a forked child, once it has its own copy of the log. */
void stacklog_modules_fork_child(void);

/* ---- stacklog_loader.c: calls into the dynamic loader ---- */
/* Finds the C library's dl_iterate_phdr and dlclose, before any stack
 * is taken. */
void stacklog_loader_setup(void);
/* The thread's calls into the loader under way (the program's dlclose
 * and dl_iterate_phdr): it takes no stacks meanwhile.  The C library
 * frees memory inside dlclose, and a program's dl_iterate_phdr callback
 * may allocate, holding the loader's lock that dl_iterate_phdr takes;
 * libunwind takes a lock of its own before it calls dl_iterate_phdr, so
 * a thread unwinding there would wait for a thread that waits for it. */
extern __thread unsigned stacklog_loader_depth
    __attribute__((tls_model("initial-exec")));
struct dl_phdr_info;
/* The layer's own walk of the modules: false, having walked none, while
 * a fork is under way or in a child forked during a call into the
 * loader. */
bool stacklog_loader_iterate(int (*callback)(struct dl_phdr_info *, size_t,
                                             void *),
                             void *data);
/* Fork: closes the loader gate and notes whether a call into the loader
 * was under way; opens it again. */
void stacklog_loader_stop_for_fork(void);
void stacklog_loader_resume_after_fork(void);
/* In the child: opens the gate, and forbids walks if a call into the
 * loader was under way at the fork. */
void stacklog_loader_fork_child(void);
/* In the child: whether a call into the loader was under way at the
 * fork, so that the loader's lock may be held for good. */
bool stacklog_loader_was_busy(void);

/* ---- stacklog_file.c: the file and its chunks ---- */
/* One line on standard error, "prog(pid) MallocStackLogging: ...", made
 * of up to three pieces (NULL for none), without allocating. */
void stacklog_say(const char *first, const char *second, const char *third);
/* Creates the log (reaping old ones first), says where it records;
 * false, having said why, when it cannot. */
bool stacklog_file_create(unsigned mode, unsigned flags);
extern struct mdlog_header *stacklog_header;
/* A new chunk of `kind`, its header filled in and published; NULL when
 * the log cannot grow (said once).  Its first
 * STACKLOG_CHUNK_BACKED_AT_START bytes have memory. */
struct mdlog_chunk_header *stacklog_file_new_chunk(uint32_t kind,
                                                   uint32_t thread,
                                                   uint64_t first);
#define STACKLOG_CHUNK_BACKED_AT_START OS_PAGE_SIZE
/* Gives memory to more of `chunk`, whose first `backed` bytes (a page
 * multiple) have it, so that at least its first `needed` do; records may
 * be stored there without a fault that could fail.  Returns the bytes
 * backed now, or 0 when the log cannot grow (said once).  Callers
 * backing one chunk hold its writer's lock, or are its thread. */
size_t stacklog_file_back(struct mdlog_chunk_header *chunk, size_t backed,
                          size_t needed);
/* At normal exit: marks the log EXITED, removes it unless it is kept. */
void stacklog_file_exit(void);
void stacklog_file_force_lock(void);
void stacklog_file_force_unlock(void);
/* In a fork child: a log of its own holding the parent's stacks and
 * modules at their old addresses; false (logging stops) on failure. */
bool stacklog_file_fork_child(bool keep);
/* In a fork child, the bytes of the STACKS chunk whose first node is
 * `first` that it keeps: whole pages holding the nodes below `count`,
 * the child's node_count.  They have memory in the child's file, and
 * the rest of the chunk is a hole: the parent's nodes made later are
 * not the child's. */
static inline size_t stacklog_fork_kept_stack_bytes(uint64_t first,
                                                    uint64_t count)
{
    uint64_t nodes = count > first ? count - first : 0;
    uint64_t bytes = sizeof(struct mdlog_chunk_header) +
                     nodes * sizeof(struct mdlog_stack_node);
    if (bytes > MDLOG_CHUNK_SIZE)
        bytes = MDLOG_CHUNK_SIZE;
    return (size_t)MD_ALIGN_UP(bytes, OS_PAGE_SIZE);
}

/* ---- stacklog_reap.c: logs of processes that are gone ---- */
void stacklog_reap(const char *directory);
/* Whether the file at `path` is a log its process asked to keep, or
 * anything not to be removed (not a regular file, not readable). */
bool stacklog_log_is_kept(const char *path);

#endif
