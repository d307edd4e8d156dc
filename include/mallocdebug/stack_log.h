/*
 * The stack log: what libmallocdebug.so records under MallocStackLogging
 * and what the heap, leaks and malloc_history tools read.  This header is
 * the whole contract between the two sides; mallocdebug_stack_log(5)
 * describes it for people.  Any change to a structure or a meaning here
 * that a reader sees bumps MDLOG_VERSION; fields marked as the writer's
 * alone, which readers ignore, may change meaning without it.
 *
 * A log is one file, mapped shared by the process that writes it:
 *
 *     offset 0                  struct mdlog_header (MDLOG_HEADER_SIZE bytes)
 *     MDLOG_HEADER_SIZE + k * chunk_size
 *                               chunk k: struct mdlog_chunk_header, then
 *                               records of the chunk's kind
 *
 * The file only grows, a chunk at a time, and nothing in it moves, so a
 * reader can map it while it is written.  Every count a reader relies on
 * is stored after the records it counts (a release store), so a reader
 * that loads the count first never sees a half-written record.
 *
 * All fields are in the writer's byte order (little-endian on the
 * machines the library runs on); integers are naturally aligned.
 */
#ifndef MALLOCDEBUG_STACK_LOG_H
#define MALLOCDEBUG_STACK_LOG_H

#include <stdint.h>

#define MDLOG_MAGIC "MDSTKLOG"          /* 8 bytes, no terminator */
#define MDLOG_MAGIC_SIZE 8
#define MDLOG_VERSION 2
#define MDLOG_HEADER_SIZE 8192u
#define MDLOG_CHUNK_SIZE (1u << 20)
#define MDLOG_EXECUTABLE_MAX 4096

/* The log's file name: MDLOG_FILE_PREFIX "<pid>.<program>" MDLOG_FILE_SUFFIX,
 * in MallocStackLoggingDirectory or MDLOG_DEFAULT_DIRECTORY. */
#define MDLOG_FILE_PREFIX "mallocdebug."
#define MDLOG_FILE_SUFFIX ".stacklog"
#define MDLOG_DEFAULT_DIRECTORY "/dev/shm"

/* What the process records (MallocStackLogging). */
enum mdlog_mode {
    MDLOG_MODE_LITE = 1,   /* stacks of live blocks, no events */
    MDLOG_MODE_FULL = 2,   /* malloc and vm events, every one */
    MDLOG_MODE_MALLOC = 3, /* malloc events only */
    MDLOG_MODE_VM = 4,     /* vm events only */
};

enum mdlog_header_flag {
    /* MallocStackLoggingNoCompact: an allocation freed right after by the
     * same thread is still recorded. */
    MDLOG_FLAG_NO_COMPACT = 1u << 0,
    /* The user asked to keep the log after exit: never reaped. */
    MDLOG_FLAG_KEEP = 1u << 1,
};

enum mdlog_state {
    MDLOG_STATE_RUNNING = 1, /* still written to, or its process died */
    MDLOG_STATE_EXITED = 2,  /* its process exited normally */
};

struct mdlog_header {
    char magic[MDLOG_MAGIC_SIZE];
    uint32_t version;
    uint32_t header_size; /* where chunk 0 starts */
    uint32_t chunk_size;  /* bytes in every chunk, a multiple of 4096 */
    uint32_t mode;        /* enum mdlog_mode */
    uint32_t flags;       /* enum mdlog_header_flag */
    uint32_t state;       /* enum mdlog_state */
    int32_t pid;
    int32_t parent_pid;   /* when the log was started by fork, else 0 */
    uint64_t start_time_sec;  /* CLOCK_REALTIME at start */
    uint64_t start_time_nsec;
    /* Where a tool finds the zones in the process: the addresses of
     * malloc_zones (malloc_zone_t **) and malloc_num_zones (unsigned). */
    uint64_t zone_registry_address;
    uint64_t zone_count_address;
    /* Chunks whose header is complete; the file holds at least
     * header_size + chunk_count * chunk_size bytes. */
    uint64_t chunk_count;
    /* Stack nodes handed out (some may not be written yet). */
    uint64_t node_count;
    /* The next event's order number. */
    uint64_t next_order;
    /* Events recorded, events elided as allocations freed right away,
     * and events that could not be recorded (made while the thread was
     * recording another, from a signal handler or the unwinder, or when
     * the log could not grow).  Exact once state is EXITED; while the
     * process runs they lag by what its threads have not yet added. */
    uint64_t event_count;
    uint64_t compacted_count;
    uint64_t unrecorded_count;
    char executable[MDLOG_EXECUTABLE_MAX]; /* NUL-terminated path */
};

enum mdlog_chunk_kind {
    MDLOG_CHUNK_STACKS = 1,  /* struct mdlog_stack_node[] */
    MDLOG_CHUNK_EVENTS = 2,  /* struct mdlog_event[], of one thread */
    MDLOG_CHUNK_MODULES = 3, /* struct mdlog_module[] */
    MDLOG_CHUNK_UNUSED = 4,  /* dropped (a forked child's copy of its
                                parent's events) */
};

struct mdlog_chunk_header {
    uint32_t kind;   /* enum mdlog_chunk_kind; 0 while being set up */
    uint32_t thread; /* EVENTS: the writing thread's id (gettid) */
    /* STACKS: the id of the chunk's first node; MODULES: the index of
     * its first module; EVENTS: the order its events' offsets count
     * from; else 0. */
    uint64_t first;
    /* EVENTS and MODULES: the records complete at the chunk's start (an
     * extended event is two records).  An EVENTS count may also go down,
     * by the records of the thread's last event, when it is compacted
     * away.  STACKS: nodes written, in no particular
     * order of id; a node is complete when its pc is not 0. */
    uint64_t count;
    /* EVENTS: how many times the writer took its last event back.  It
     * goes up after the count goes down and before the records are
     * written again, so a reader that finds it changed after reading
     * records may have read them while they were rewritten.  Else 0. */
    uint64_t taken_back;
};

/* Records of a type that fit in a chunk of `chunk_size` bytes. */
#define MDLOG_CHUNK_RECORDS(chunk_size, record) \
    (((chunk_size) - sizeof(struct mdlog_chunk_header)) / sizeof(record))

/*
 * Stacks are uniqued in a tree: a node is one frame and its parent is
 * the frame that called it, so a stack id is the id of its innermost
 * node.  Every stack starts from a thread node (module
 * MDLOG_MODULE_THREAD, pc the thread id).  Node 0 is no stack.
 */
#define MDLOG_MODULE_UNKNOWN UINT32_MAX      /* pc in no known module */
#define MDLOG_MODULE_THREAD (UINT32_MAX - 1) /* a thread node */

struct mdlog_stack_node {
    uint64_t pc;     /* a return address; 0 while the node is written */
    uint32_t parent; /* the caller's node, 0 for a thread node */
    uint32_t module; /* index into the module list, or MDLOG_MODULE_* */
    /* The writer's links to find a node's children: one child, and the
     * next child of the same parent; 0 for none.  Readers ignore them. */
    uint32_t first_child;
    uint32_t next_sibling;
};

/* Stack frames recorded at most. */
#define MDLOG_MAX_FRAMES 512

/* An event's kind, in the low bits of its type, and flags above. */
enum mdlog_event_kind {
    MDLOG_EVENT_ALLOC = 1,    /* a block handed to the program */
    MDLOG_EVENT_FREE = 2,     /* a block given back */
    MDLOG_EVENT_VM_MAP = 3,   /* mmap, or the new range of mremap */
    MDLOG_EVENT_VM_UNMAP = 4, /* munmap, or the old range of mremap */
    /* Not an event: the second record of an extended one. */
    MDLOG_EVENT_EXTENSION = 7,
};
#define MDLOG_EVENT_KIND_MASK 0x07u
#define MDLOG_EVENT_CLEARED 0x08u /* calloc: the block was zeroed */
#define MDLOG_EVENT_REALLOC 0x10u /* one half of a realloc (or mremap) */

/*
 * An event of the thread that owns the chunk (mdlog_chunk_header.thread),
 * in 16 bytes.  `packed` holds, from its lowest bit:
 *
 *     bits  0-43  the address shifted right by 4
 *     bits 44-58  the size, or MDLOG_EVENT_SIZE_EXTENDED
 *     bits 59-63  the type: enum mdlog_event_kind and MDLOG_EVENT_* flags
 *
 * An event whose address is not a multiple of 16 or not below 2^48, or
 * whose size is MDLOG_EVENT_SIZE_EXTENDED or more, is extended: its
 * address bits are 0, its size is MDLOG_EVENT_SIZE_EXTENDED, and the
 * next record of the chunk is a struct mdlog_event_extension holding
 * both in full.  A chunk's count never separates the two.
 */
struct mdlog_event {
    uint64_t packed;
    uint32_t stack;        /* stack node id, 0 when none was taken */
    uint32_t order_offset; /* order = chunk's first + this */
};

struct mdlog_event_extension {
    /* The size below MDLOG_EVENT_TYPE_SHIFT, MDLOG_EVENT_EXTENSION above. */
    uint64_t size_and_type;
    uint64_t address;
};

/* Order numbers increase over the whole process: an event's order tells
 * what happened before it in any thread. */
#define MDLOG_EVENT_ADDRESS_SHIFT 4
#define MDLOG_EVENT_ADDRESS_BITS 44
#define MDLOG_EVENT_SIZE_SHIFT 44
#define MDLOG_EVENT_SIZE_EXTENDED 0x7fffu
#define MDLOG_EVENT_TYPE_SHIFT 59
#define MDLOG_EXTENSION_SIZE_LIMIT (UINT64_C(1) << MDLOG_EVENT_TYPE_SHIFT)

#define MDLOG_EVENT_TYPE(event) ((unsigned)((event)->packed >> MDLOG_EVENT_TYPE_SHIFT))
#define MDLOG_EVENT_KIND(event) (MDLOG_EVENT_TYPE(event) & MDLOG_EVENT_KIND_MASK)
#define MDLOG_EVENT_SIZE(event) \
    ((unsigned)((event)->packed >> MDLOG_EVENT_SIZE_SHIFT) & MDLOG_EVENT_SIZE_EXTENDED)
#define MDLOG_EVENT_IS_EXTENDED(event) \
    (MDLOG_EVENT_SIZE(event) == MDLOG_EVENT_SIZE_EXTENDED)
#define MDLOG_EVENT_ADDRESS(event)                                          \
    (((event)->packed & ((UINT64_C(1) << MDLOG_EVENT_ADDRESS_BITS) - 1))   \
     << MDLOG_EVENT_ADDRESS_SHIFT)
#define MDLOG_EVENT_ORDER(chunk, event) ((chunk)->first + (event)->order_offset)
#define MDLOG_EXTENSION_TYPE(extension) \
    ((unsigned)((extension)->size_and_type >> MDLOG_EVENT_TYPE_SHIFT))
#define MDLOG_EXTENSION_SIZE(extension) \
    ((extension)->size_and_type & (MDLOG_EXTENSION_SIZE_LIMIT - 1))

/* An address rotated right by 4 bits: below 2^44 exactly when the
 * address is a multiple of 16 below 2^48, and then the record's address
 * bits.  One rotation both tests and packs the address. */
static inline uint64_t mdlog_event_address_bits(uint64_t address)
{
    return address >> MDLOG_EVENT_ADDRESS_SHIFT |
           address << (64 - MDLOG_EVENT_ADDRESS_SHIFT);
}

/* Whether an event of `address` and `size` fits in one record. */
static inline int mdlog_event_fits(uint64_t address, uint64_t size)
{
    return mdlog_event_address_bits(address) <
               (UINT64_C(1) << MDLOG_EVENT_ADDRESS_BITS) &&
           size < MDLOG_EVENT_SIZE_EXTENDED;
}

/* The packed word of an event that fits; of an extended one when given
 * address 0 and size MDLOG_EVENT_SIZE_EXTENDED. */
static inline uint64_t mdlog_event_pack(unsigned type, uint64_t address,
                                        uint64_t size)
{
    return mdlog_event_address_bits(address) |
           size << MDLOG_EVENT_SIZE_SHIFT |
           (uint64_t)type << MDLOG_EVENT_TYPE_SHIFT;
}

/* A loaded module (the executable, a shared library, the vdso), recorded
 * when it is first seen, so stacks can be symbolized after the process
 * is gone. */
#define MDLOG_PATH_MAX 944
#define MDLOG_BUILD_ID_MAX 32

enum mdlog_module_flag {
    MDLOG_MODULE_PATH_TRUNCATED = 1u << 0,
};

struct mdlog_module {
    uint64_t load_bias;      /* added to the file's addresses (dlpi_addr) */
    uint64_t start;          /* the lowest address of its loaded segments */
    uint64_t end;            /* one past the highest */
    uint64_t loaded_order;   /* the next event order when it was seen */
    uint64_t unloaded_order; /* the same when it was gone; 0 while loaded */
    uint32_t flags;          /* enum mdlog_module_flag */
    uint32_t build_id_size;  /* 0 when it has none */
    uint8_t build_id[MDLOG_BUILD_ID_MAX];
    char path[MDLOG_PATH_MAX]; /* NUL-terminated; "" for the executable
                                  when its path is unknown */
};

/* The layout is part of the format: these sizes are checked at build
 * time on both sides. */
_Static_assert(sizeof(struct mdlog_header) <= MDLOG_HEADER_SIZE, "header");
_Static_assert(sizeof(struct mdlog_chunk_header) == 32, "chunk header");
_Static_assert(sizeof(struct mdlog_stack_node) == 24, "stack node");
_Static_assert(sizeof(struct mdlog_event) == 16, "event");
_Static_assert(sizeof(struct mdlog_event_extension) == 16, "event extension");
_Static_assert(sizeof(struct mdlog_module) == 1024, "module");

/*
 * An extension of the zone enumerators: with this bit in the type mask,
 * a mallocdebug zone also reports, for every block in use, a range whose
 * address is the block's and whose size is its allocation stack id
 * (0 when none was recorded).  This is how tools learn lite mode's
 * stacks, which live only in the zones' metadata.
 */
#define MALLOCDEBUG_STACK_ID_RANGE_TYPE 0x100u

#endif
