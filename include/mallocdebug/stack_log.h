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

#include <stdbool.h>
#include <stdint.h>

#define MDLOG_MAGIC "MDSTKLOG"          /* 8 bytes, no terminator */
#define MDLOG_MAGIC_SIZE 8
#define MDLOG_VERSION 5
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
    /* The order floor: every event recorded after it was raised takes a
     * higher order (see "Orders" below). */
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
    MDLOG_CHUNK_EVENTS = 2,  /* one thread's events, encoded (below) */
    MDLOG_CHUNK_MODULES = 3, /* struct mdlog_module[] */
    MDLOG_CHUNK_UNUSED = 4,  /* dropped (a forked child's copy of its
                                parent's events) */
};

struct mdlog_chunk_header {
    uint32_t kind;   /* enum mdlog_chunk_kind; 0 while being set up */
    uint32_t thread; /* EVENTS: the writing thread's id (gettid) */
    /* STACKS: the id of the chunk's first node; MODULES: the index of
     * its first module; EVENTS: the order its first event is written
     * against, plus one (mdlog_event_chunk_base); else 0. */
    uint64_t first;
    /* MODULES: the records complete at the chunk's start.  EVENTS: the
     * bytes of the whole events at its start; it may also go down, by
     * the thread's last event, when that is compacted away.  STACKS:
     * nodes written, in no particular order of id; a node is complete
     * when its pc is not 0. */
    uint64_t count;
    /* EVENTS: how many times the writer took its last event back.  It
     * goes up after the count goes down and before the bytes are
     * written again, so a reader that finds it changed after reading
     * events may have read them while they were rewritten.  Else 0. */
    uint64_t taken_back;
};

/* Records of a type that fit in a chunk of `chunk_size` bytes. */
#define MDLOG_CHUNK_RECORDS(chunk_size, record) \
    (((chunk_size) - sizeof(struct mdlog_chunk_header)) / sizeof(record))
/* Bytes of events a chunk of `chunk_size` bytes holds. */
#define MDLOG_CHUNK_EVENT_BYTES(chunk_size) \
    ((chunk_size) - sizeof(struct mdlog_chunk_header))

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
};
#define MDLOG_EVENT_KIND_MASK 0x07u
#define MDLOG_EVENT_CLEARED 0x08u /* calloc: the block was zeroed */
#define MDLOG_EVENT_REALLOC 0x10u /* one half of a realloc (or mremap) */
#define MDLOG_EVENT_TYPE_MASK 0x1fu

/*
 * Events.  An EVENTS chunk holds its thread's events as a stream of
 * bytes, each event written as its difference from the ones before it in
 * the chunk: consecutive events of a thread mostly have nearby
 * addresses, consecutive order numbers, and the stack of the thread's
 * previous allocation (or free), so an event takes 3 to 6 bytes where
 * its fields take 28.  The first event of a chunk is written against
 * address 0, stacks 0 and order `first - 1`.  An event is, in this
 * order:
 *
 *     head     1 or 2 bytes; the low 3 bits of the first tell which.
 *              Kinds 1-4 (enum mdlog_event_kind) start a long head,
 *              2 bytes:
 *                bits  0-4   the type: enum mdlog_event_kind and flags
 *                bits  5-7   the address code's length less one (1-8)
 *                bits  8-11  the size's length (0-8)
 *                bits 12-14  the stack code's length (0-4)
 *                bit  15     an order code follows
 *              Codes 5 and 6 (MDLOG_EVENT_SHORT_ALLOC, _FREE) start a
 *              short head, 1 byte, for the most common events: an
 *              allocation or a free without flags whose order is the
 *              previous one plus one:
 *                bits  3-4   the address code's length less one (1-4)
 *                bits  5-6   the size's length (0-3)
 *                bit  7      the stack code's length (0-1)
 *     address  mdlog_event_address_code(address - previous address)
 *     size     the block's size (0 for a free)
 *     stack    mdlog_zigzag32(stack - previous stack of the same side):
 *              allocations and vm maps are written against the stack of
 *              the chunk's previous allocation or vm map, frees and vm
 *              unmaps against the previous free's or unmap's
 *              (mdlog_event_side); stack ids are 32-bit, their
 *              difference taken modulo 2^32
 *     order    when bit 15 of a long head is set: one byte, the code's
 *              length (1-8), then mdlog_zigzag64(order - previous order
 *              - 1); otherwise the order is the previous one plus one
 *
 * Each number is stored little-endian in the length given, its high zero
 * bytes left out; length 0 is the number 0.  An event is never split
 * across chunks.
 *
 * Orders.  Each thread's events have increasing orders, and so do the
 * events of each block (and of each vm region) whichever threads made
 * them: a block carries the order of its latest event in the zone's
 * metadata, and the thread that records its next event orders it after.
 * Events that nothing links may share an order, and their orders tell
 * only roughly which came first.  The header's next_order is a floor
 * under every later event's order: events about what carries no order
 * (vm regions, blocks of zones without room for one) raise it to take
 * theirs; each thread raises it whenever its order passes a multiple of
 * MDLOG_ORDER_STRIDE, so that no order runs more than MDLOG_ORDER_STRIDE
 * past it; and a reader of a running process may raise it by twice that
 * (atomically, never lowering it) to tell the events recorded after that
 * moment, whose orders are above the new floor, from those before, whose
 * orders are below it.
 */
#define MDLOG_ORDER_STRIDE (UINT64_C(1) << 20)

/* Raises the floor at `floor` (a header's next_order, mapped shared) by
 * twice the stride, past every order taken so far, and returns the new
 * floor: the moment that orders below were taken before and orders at or
 * above it after.  For the writer and for readers of a running process. */
static inline uint64_t mdlog_order_moment(uint64_t *floor)
{
    uint64_t seen = __atomic_load_n(floor, __ATOMIC_ACQUIRE), moment;
    do
        moment = seen + 2 * MDLOG_ORDER_STRIDE;
    while (!__atomic_compare_exchange_n(floor, &seen, moment, true,
                                        __ATOMIC_SEQ_CST, __ATOMIC_ACQUIRE));
    return moment;
}
#define MDLOG_EVENT_HEAD_SIZE 2
#define MDLOG_EVENT_SHORT_HEAD_SIZE 1
/* A short head's code is its event's kind plus this. */
#define MDLOG_EVENT_SHORT_OFFSET 4u
#define MDLOG_EVENT_SHORT_ALLOC (MDLOG_EVENT_ALLOC + MDLOG_EVENT_SHORT_OFFSET)
#define MDLOG_EVENT_SHORT_FREE (MDLOG_EVENT_FREE + MDLOG_EVENT_SHORT_OFFSET)
#define MDLOG_EVENT_SHORT_ADDRESS_LENGTH_SHIFT 3
#define MDLOG_EVENT_SHORT_SIZE_LENGTH_SHIFT 5
#define MDLOG_EVENT_SHORT_STACK_LENGTH_SHIFT 7
#define MDLOG_EVENT_ADDRESS_LENGTH_SHIFT 5
#define MDLOG_EVENT_SIZE_LENGTH_SHIFT 8
#define MDLOG_EVENT_STACK_LENGTH_SHIFT 12
#define MDLOG_EVENT_HAS_ORDER 0x8000u
/* The longest event: 2 + 8 + 8 + 4 + 1 + 8 bytes; the shortest, a short
 * head and one address byte. */
#define MDLOG_EVENT_MAX_SIZE 31u
#define MDLOG_EVENT_MIN_SIZE 2u

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the stack log's event encoding is written for little-endian machines"
#endif

/* The two sides of an event's stack code (mdlog_event_side). */
enum mdlog_event_side {
    MDLOG_EVENT_SIDE_ALLOCATION = 0, /* allocations and vm maps */
    MDLOG_EVENT_SIDE_FREE = 1,       /* frees and vm unmaps */
};

/* What an event is written against: the previous event of its chunk,
 * and the previous stack of each side. */
struct mdlog_event_base {
    uint64_t address;
    uint64_t order;
    uint32_t stack[2]; /* indexed by enum mdlog_event_side */
};

/* An event, its fields in full. */
struct mdlog_event {
    uint64_t address;
    uint64_t size;
    uint64_t order;
    uint32_t stack; /* stack node id, 0 when none was taken */
    uint32_t type;  /* enum mdlog_event_kind and MDLOG_EVENT_* flags */
};

static inline struct mdlog_event_base mdlog_event_chunk_base(uint64_t first)
{
    struct mdlog_event_base base = {0, first - 1, {0, 0}};
    return base;
}

/* The side of an event's type, or of a short head's code: the kinds that
 * end a block or a range are even. */
static inline unsigned mdlog_event_side(unsigned type)
{
    return (type & 1) ^ 1;
}

/* Signed differences as small unsigned numbers: 0, -1, 1, -2, 2... */
static inline uint64_t mdlog_zigzag64(uint64_t difference)
{
    return difference << 1 ^ (uint64_t)((int64_t)difference >> 63);
}

static inline uint64_t mdlog_unzigzag64(uint64_t code)
{
    return code >> 1 ^ (0 - (code & 1));
}

static inline uint32_t mdlog_zigzag32(uint32_t difference)
{
    return difference << 1 ^ (uint32_t)((int32_t)difference >> 31);
}

static inline uint32_t mdlog_unzigzag32(uint32_t code)
{
    return code >> 1 ^ (0 - (code & 1));
}

/*
 * An address difference as a small number when it is a multiple of 16,
 * as block addresses are: the difference shifted right by 4 (keeping its
 * sign), with its low 4 bits placed in bits 59-62, which the shift left
 * equal to the sign.  Any other difference has those bits differ from
 * the sign and takes 8 bytes, but is written exactly all the same.
 */
static inline uint64_t mdlog_event_address_code(uint64_t difference)
{
    uint64_t shifted = (uint64_t)((int64_t)difference >> 4);
    return mdlog_zigzag64(shifted ^ (difference & 15) << 59);
}

static inline uint64_t mdlog_event_address_difference(uint64_t code)
{
    uint64_t shifted = mdlog_unzigzag64(code);
    uint64_t sign = (uint64_t)((int64_t)shifted >> 63);
    uint64_t low = ((shifted ^ sign) >> 59) & 15;
    return (shifted ^ low << 59) << 4 | low;
}

/* Bytes that hold `value` without its high zero bytes.  Without a
 * branch: the writer's lengths are as often 0 as not. */
static inline unsigned mdlog_number_length(uint64_t value)
{
    unsigned highest_bit = (unsigned)__builtin_clzll(value | 1) ^ 63;
    return ((highest_bit + 8) >> 3) - (value == 0);
}

/* Stores `value` at `out` as 8 bytes; the writer keeps only the first
 * mdlog_number_length(value) of them. */
static inline void mdlog_store_number(unsigned char *out, uint64_t value)
{
    __builtin_memcpy(out, &value, sizeof(value));
}

/*
 * The encoder.  Every field is stored in full, 8 bytes, and the next one
 * written over its high bytes, so `out` must have MDLOG_EVENT_MAX_SIZE
 * bytes of room whatever the event's length; the bytes past the event
 * are left undefined.  Always inlined: the writer calls it on its
 * allocation fast path.
 */

/* The codes of an event's fields against its base. */
struct mdlog_event_codes {
    uint64_t address;
    uint64_t order;
    uint32_t stack;
};

/* The event with a short head whose `codes` allow one: its head's
 * lengths alone are worked out. */
static inline __attribute__((always_inline)) unsigned
mdlog_event_encode_short(unsigned char *out, const struct mdlog_event *event,
                         const struct mdlog_event_codes *codes)
{
    unsigned address_length = mdlog_number_length(codes->address | 1);
    unsigned size_length = mdlog_number_length(event->size);
    out[0] = (unsigned char)((event->type + MDLOG_EVENT_SHORT_OFFSET) |
                             (address_length - 1)
                                 << MDLOG_EVENT_SHORT_ADDRESS_LENGTH_SHIFT |
                             size_length << MDLOG_EVENT_SHORT_SIZE_LENGTH_SHIFT |
                             (codes->stack != 0)
                                 << MDLOG_EVENT_SHORT_STACK_LENGTH_SHIFT);
    unsigned at = MDLOG_EVENT_SHORT_HEAD_SIZE;
    mdlog_store_number(out + at, codes->address);
    at += address_length;
    mdlog_store_number(out + at, event->size);
    at += size_length;
    out[at] = (unsigned char)codes->stack;
    return at + (codes->stack != 0);
}

/* Any event with a long head, without a branch. */
static inline __attribute__((always_inline)) unsigned
mdlog_event_encode_long(unsigned char *out, const struct mdlog_event *event,
                        const struct mdlog_event_codes *codes)
{
    unsigned address_length = mdlog_number_length(codes->address | 1);
    unsigned size_length = mdlog_number_length(event->size);
    unsigned stack_length = mdlog_number_length(codes->stack);
    unsigned order_length = mdlog_number_length(codes->order);
    unsigned head =
        (event->type & MDLOG_EVENT_TYPE_MASK) |
        (address_length - 1) << MDLOG_EVENT_ADDRESS_LENGTH_SHIFT |
        size_length << MDLOG_EVENT_SIZE_LENGTH_SHIFT |
        stack_length << MDLOG_EVENT_STACK_LENGTH_SHIFT |
        (order_length != 0) * MDLOG_EVENT_HAS_ORDER;
    out[0] = (unsigned char)head;
    out[1] = (unsigned char)(head >> 8);
    unsigned at = MDLOG_EVENT_HEAD_SIZE;
    mdlog_store_number(out + at, codes->address);
    at += address_length;
    mdlog_store_number(out + at, event->size);
    at += size_length;
    __builtin_memcpy(out + at, &codes->stack, sizeof(codes->stack));
    at += stack_length;
    out[at] = (unsigned char)order_length;
    mdlog_store_number(out + at + 1, codes->order);
    return at + order_length + (order_length != 0);
}

/* Writes `event`, whose kind is one of enum mdlog_event_kind, at `out`
 * against `*base`, which becomes the event.  Returns the event's length.
 * Most events take a short head: an allocation or free without flags
 * (type 1 or 2) whose address code takes at most 4 bytes, its size at
 * most 3 and its stack code at most 1, and whose order follows the
 * previous one.  One branch tells, and spares them the long head's
 * work. */
static inline __attribute__((always_inline)) unsigned
mdlog_event_encode(unsigned char *out, struct mdlog_event_base *base,
                   const struct mdlog_event *event)
{
    const unsigned side = mdlog_event_side(event->type);
    const struct mdlog_event_codes codes = {
        mdlog_event_address_code(event->address - base->address),
        mdlog_zigzag64(event->order - base->order - 1),
        mdlog_zigzag32(event->stack - base->stack[side]),
    };
    const uint64_t beyond_short =
        (uint64_t)((event->type - MDLOG_EVENT_ALLOC) >> 1) |
        codes.address >> 32 | event->size >> 24 | codes.stack >> 8 |
        codes.order;
    base->address = event->address;
    base->order = event->order;
    base->stack[side] = event->stack;
    if (beyond_short == 0)
        return mdlog_event_encode_short(out, event, &codes);
    return mdlog_event_encode_long(out, event, &codes);
}

/* The `length`-byte number at `in`. */
static inline uint64_t mdlog_load_number(const unsigned char *in,
                                         unsigned length)
{
    uint64_t value = 0;
    for (unsigned i = length; i-- > 0;)
        value = value << 8 | in[i];
    return value;
}

/* What an event's head says. */
struct mdlog_event_head {
    unsigned type;
    unsigned size; /* the head's own length */
    unsigned address_length, size_length, stack_length;
    bool has_order;
};

/* Reads the head at `in`, of which `available` bytes may be read;
 * false when they do not hold one this version knows. */
static inline bool mdlog_event_head_decode(const unsigned char *in,
                                           uint64_t available,
                                           struct mdlog_event_head *head)
{
    if (available < MDLOG_EVENT_SHORT_HEAD_SIZE)
        return false;
    unsigned code = in[0] & MDLOG_EVENT_KIND_MASK;
    if (code == MDLOG_EVENT_SHORT_ALLOC || code == MDLOG_EVENT_SHORT_FREE) {
        unsigned bits = in[0];
        head->type = code - MDLOG_EVENT_SHORT_OFFSET;
        head->size = MDLOG_EVENT_SHORT_HEAD_SIZE;
        head->address_length = (bits >> MDLOG_EVENT_SHORT_ADDRESS_LENGTH_SHIFT & 3) + 1;
        head->size_length = bits >> MDLOG_EVENT_SHORT_SIZE_LENGTH_SHIFT & 3;
        head->stack_length = bits >> MDLOG_EVENT_SHORT_STACK_LENGTH_SHIFT;
        head->has_order = false;
        return true;
    }
    if (available < MDLOG_EVENT_HEAD_SIZE || code < MDLOG_EVENT_ALLOC ||
        code > MDLOG_EVENT_VM_UNMAP)
        return false;
    unsigned bits = in[0] | (unsigned)in[1] << 8;
    head->type = bits & MDLOG_EVENT_TYPE_MASK;
    head->size = MDLOG_EVENT_HEAD_SIZE;
    head->address_length = (bits >> MDLOG_EVENT_ADDRESS_LENGTH_SHIFT & 7) + 1;
    head->size_length = bits >> MDLOG_EVENT_SIZE_LENGTH_SHIFT & 15;
    head->stack_length = bits >> MDLOG_EVENT_STACK_LENGTH_SHIFT & 7;
    head->has_order = (bits & MDLOG_EVENT_HAS_ORDER) != 0;
    return head->size_length <= 8 && head->stack_length <= 4;
}

/*
 * Reads the event at `in`, of which `available` bytes may be read,
 * against `*base`, which becomes the event.  Returns the event's
 * length, or 0, changing nothing, when those bytes do not hold a whole
 * event the format knows (a damaged log: a newer format would have a
 * newer version).
 */
static inline unsigned mdlog_event_decode(const unsigned char *in,
                                          uint64_t available,
                                          struct mdlog_event_base *base,
                                          struct mdlog_event *event)
{
    struct mdlog_event_head head;
    if (!mdlog_event_head_decode(in, available, &head))
        return 0;
    unsigned length = head.size + head.address_length + head.size_length +
                      head.stack_length;
    if (length > available)
        return 0;
    unsigned order_length = 0;
    if (head.has_order) {
        if (length + 1 > available)
            return 0;
        order_length = in[length];
        if (order_length < 1 || order_length > 8 ||
            length + 1 + order_length > available)
            return 0;
    }
    unsigned at = head.size;
    uint64_t address = mdlog_load_number(in + at, head.address_length);
    at += head.address_length;
    event->size = mdlog_load_number(in + at, head.size_length);
    at += head.size_length;
    uint32_t stack = (uint32_t)mdlog_load_number(in + at, head.stack_length);
    at += head.stack_length;
    uint64_t order = order_length ? mdlog_load_number(in + at + 1, order_length)
                                  : 0;
    at += order_length + (order_length != 0);
    const unsigned side = mdlog_event_side(head.type);
    event->type = head.type;
    event->address = base->address + mdlog_event_address_difference(address);
    event->stack = base->stack[side] + mdlog_unzigzag32(stack);
    event->order = base->order + 1 + mdlog_unzigzag64(order);
    base->address = event->address;
    base->order = event->order;
    base->stack[side] = event->stack;
    return at;
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
    uint64_t loaded_order;   /* the order floor when it was seen */
    uint64_t unloaded_order; /* the floor raised past every order taken
                                when it was found gone; 0 while loaded */
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
