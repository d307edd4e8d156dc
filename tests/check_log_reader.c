/*
 * The stack log reader (tools/log_reader.h), on logs made by
 * tests/log_builder.c: what it reads back from sound logs, the message it
 * gives for each kind of bad file, truncated and live logs, a seeded
 * mutation fuzzer, and finding the log of a running process.
 */
#include "config.h"

#include "../tools/log_reader.h"
#include "log_builder.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MESSAGE_SIZE 512
#define SMALL LOG_BUILDER_SMALL_CHUNK
#define NODES_PER_CHUNK MDLOG_CHUNK_RECORDS(SMALL, struct mdlog_stack_node)
#define EVENT_BYTES_PER_CHUNK MDLOG_CHUNK_EVENT_BYTES(SMALL)
/* The shortest event: its head and one byte of address. */
#define EVENTS_PER_CHUNK (EVENT_BYTES_PER_CHUNK / MDLOG_EVENT_MIN_SIZE)
#define MODULES_PER_CHUNK MDLOG_CHUNK_RECORDS(SMALL, struct mdlog_module)

/* ---- helpers ---- */

static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static char temp_dir[256];

/* A fresh directory for each test (each runs in its own process). */
static void make_temp_dir(void)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(temp_dir, sizeof(temp_dir), "%s/check_log_reader.XXXXXX", base);
    ck_assert_ptr_nonnull(mkdtemp(temp_dir));
}

static void remove_temp_dir(void)
{
    char command[sizeof(temp_dir) + 16];
    snprintf(command, sizeof(command), "rm -rf '%s'", temp_dir);
    if (system(command) != 0)
        fprintf(stderr, "could not remove %s\n", temp_dir);
}

static const char *temp_file(const char *name)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", temp_dir, name);
    return path;
}

static const char *write_log(struct log_builder *builder, const char *name)
{
    const char *path = temp_file(name);
    ck_assert(log_builder_write(builder, path));
    return path;
}

static struct log_reader *open_ok(const char *path)
{
    char message[MESSAGE_SIZE];
    struct log_reader *reader = log_reader_open(path, message, sizeof(message));
    ck_assert_msg(reader != NULL, "open failed: %s", message);
    ck_assert_str_eq(message, "");
    return reader;
}

/* Opening `path` fails with one line that names the file and holds
 * `expected`. */
static void assert_open_fails(const char *path, const char *expected)
{
    char message[MESSAGE_SIZE];
    struct log_reader *reader = log_reader_open(path, message, sizeof(message));
    ck_assert_msg(reader == NULL, "%s opened; expected \"%s\"", path, expected);
    ck_assert_msg(strstr(message, expected) != NULL, "message \"%s\" lacks \"%s\"",
                  message, expected);
    ck_assert_msg(strncmp(message, path, strlen(path)) == 0,
                  "message \"%s\" does not start with the path", message);
    ck_assert_ptr_null(strchr(message, '\n'));
}

static struct mdlog_header *header_in(unsigned char *bytes)
{
    return (struct mdlog_header *)bytes;
}

static struct mdlog_chunk_header *chunk_in(struct log_builder *builder,
                                           uint64_t chunk)
{
    size_t size;
    unsigned char *bytes = log_builder_bytes(builder, &size);
    return (void *)(bytes + log_builder_chunk_offset(builder, chunk));
}

static void write_bytes(const char *path, const void *bytes, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, bytes, size), (ssize_t)size);
    ck_assert_int_eq(close(fd), 0);
}

/* ---- a sample log ---- */

enum { T1 = 101, T2 = 102, T3 = 103 };

struct sample_stacks {
    uint32_t thread1, main1, f, g, h; /* T1: main -> f -> g, f -> h */
    uint32_t thread2, work2;          /* T2: work */
};

static void build_sample_stacks(struct log_builder *builder,
                                struct sample_stacks *s)
{
    s->thread1 = log_builder_thread_node(builder, T1);
    s->main1 = log_builder_frame(builder, s->thread1, 0x401000, 0);
    s->f = log_builder_frame(builder, s->main1, 0x7f0010, 1);
    s->g = log_builder_frame(builder, s->f, 0x7f0020, 1);
    s->h = log_builder_frame(builder, s->f, 0x7f8030, 2);
    s->thread2 = log_builder_thread_node(builder, T2);
    s->work2 = log_builder_frame(builder, s->thread2, 0x402000, 0);
}

/* ---- stacks ---- */

START_TEST(test_stack_frames_round_trip)
{
    make_temp_dir();
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    struct sample_stacks s;
    build_sample_stacks(builder, &s);
    struct log_reader *reader = open_ok(write_log(builder, "stacks.stacklog"));

    uint64_t pcs[8];
    uint32_t modules[8];
    ck_assert_uint_eq(log_reader_stack_frames(reader, s.g, pcs, modules, 8), 3);
    ck_assert_uint_eq(pcs[0], 0x7f0020);
    ck_assert_uint_eq(pcs[1], 0x7f0010);
    ck_assert_uint_eq(pcs[2], 0x401000);
    ck_assert_uint_eq(modules[0], 1);
    ck_assert_uint_eq(modules[1], 1);
    ck_assert_uint_eq(modules[2], 0);
    ck_assert_uint_eq(log_reader_stack_frames(reader, s.h, pcs, NULL, 8), 3);
    ck_assert_uint_eq(pcs[0], 0x7f8030);
    ck_assert_uint_eq(pcs[1], 0x7f0010);
    /* `max` bounds the frames written. */
    pcs[2] = 0;
    ck_assert_uint_eq(log_reader_stack_frames(reader, s.g, pcs, NULL, 2), 2);
    ck_assert_uint_eq(pcs[2], 0);
    ck_assert_uint_eq(log_reader_stack_frames(reader, s.work2, pcs, modules, 8), 1);
    ck_assert_uint_eq(pcs[0], 0x402000);

    uint32_t thread = 0;
    ck_assert(log_reader_stack_thread(reader, s.g, &thread));
    ck_assert_uint_eq(thread, T1);
    ck_assert(log_reader_stack_thread(reader, s.work2, &thread));
    ck_assert_uint_eq(thread, T2);
    /* A thread node is a stack without frames. */
    ck_assert_uint_eq(log_reader_stack_frames(reader, s.thread2, pcs, NULL, 8), 0);
    ck_assert(log_reader_stack_thread(reader, s.thread2, &thread));
    ck_assert_uint_eq(thread, T2);

    const struct mdlog_stack_node *node = log_reader_node(reader, s.h);
    ck_assert_ptr_nonnull(node);
    ck_assert_uint_eq(node->pc, 0x7f8030);
    ck_assert_uint_eq(node->parent, s.f);
    ck_assert_uint_eq(node->module, 2);
    ck_assert_ptr_null(log_reader_node(reader, 0));
    ck_assert_ptr_null(log_reader_node(reader, s.work2 + 1));
    ck_assert_ptr_null(log_reader_node(reader, UINT32_MAX));
    ck_assert_uint_eq(log_reader_stack_frames(reader, 0, pcs, NULL, 8), 0);
    ck_assert(!log_reader_stack_thread(reader, 0, &thread));
    ck_assert(!log_reader_stack_thread(reader, UINT32_MAX, &thread));
    log_reader_close(reader);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

START_TEST(test_stack_ids_across_chunks)
{
    make_temp_dir();
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    uint32_t thread = log_builder_thread_node(builder, T1);
    uint32_t last = 0;
    /* Three stack chunks' worth of one-frame stacks. */
    for (uint64_t i = 0; i < 2 * NODES_PER_CHUNK + 10; i++)
        last = log_builder_frame(builder, thread, 0x10000 + i, 0);
    struct log_reader *reader = open_ok(write_log(builder, "many.stacklog"));
    ck_assert_uint_eq(log_reader_chunk_count(reader), 3);
    for (uint32_t id = 2; id <= last; id += 97) {
        uint64_t pc;
        ck_assert_uint_eq(log_reader_stack_frames(reader, id, &pc, NULL, 1), 1);
        ck_assert_uint_eq(pc, 0x10000 + id - 2);
    }
    uint64_t pc;
    ck_assert_uint_eq(log_reader_stack_frames(reader, last, &pc, NULL, 1), 1);
    ck_assert_uint_eq(pc, 0x10000 + last - 2);
    ck_assert_ptr_null(log_reader_node(reader, last + 1));
    log_reader_close(reader);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

START_TEST(test_deep_stacks_stop_at_the_frame_limit)
{
    make_temp_dir();
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    uint32_t id = log_builder_thread_node(builder, T1);
    uint32_t at_limit = 0;
    for (unsigned depth = 1; depth <= MDLOG_MAX_FRAMES + 40; depth++) {
        id = log_builder_frame(builder, id, 0x1000 + depth, 0);
        if (depth == MDLOG_MAX_FRAMES)
            at_limit = id;
    }
    struct log_reader *reader = open_ok(write_log(builder, "deep.stacklog"));
    static uint64_t pcs[MDLOG_MAX_FRAMES + 100];
    uint32_t thread;
    ck_assert_uint_eq(log_reader_stack_frames(reader, at_limit, pcs, NULL, 1000),
                      MDLOG_MAX_FRAMES);
    ck_assert_uint_eq(pcs[MDLOG_MAX_FRAMES - 1], 0x1001);
    ck_assert(log_reader_stack_thread(reader, at_limit, &thread));
    ck_assert_uint_eq(thread, T1);
    /* Deeper than any writer records: the frames stop at the limit and
     * the stack leads to no thread within it. */
    ck_assert_uint_eq(log_reader_stack_frames(reader, id, pcs, NULL, 1000),
                      MDLOG_MAX_FRAMES);
    ck_assert_uint_eq(pcs[0], 0x1000 + MDLOG_MAX_FRAMES + 40);
    ck_assert(!log_reader_stack_thread(reader, id, &thread));
    log_reader_close(reader);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

static struct mdlog_stack_node *node_in(struct log_builder *builder, uint32_t id)
{
    /* Every test stack fits in chunk 0, whose slot k is node k. */
    return (struct mdlog_stack_node *)(chunk_in(builder, 0) + 1) + id;
}

START_TEST(test_impossible_links_end_the_walk)
{
    make_temp_dir();
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    struct sample_stacks s;
    build_sample_stacks(builder, &s);
    uint32_t loop = log_builder_frame(builder, s.g, 0x5000, 0);
    uint32_t loop2 = log_builder_frame(builder, loop, 0x5001, 0);
    uint32_t orphan = log_builder_frame(builder, s.g, 0x6000, 0);
    uint32_t unwritten = log_builder_frame(builder, s.g, 0x7000, 0);
    uint32_t adopted = log_builder_thread_node(builder, T3);
    node_in(builder, loop)->parent = loop2; /* a cycle through a later id */
    node_in(builder, s.h)->parent = s.h;    /* its own parent */
    node_in(builder, orphan)->parent = 0;   /* a frame without a caller */
    node_in(builder, unwritten)->pc = 0;    /* still being written */
    node_in(builder, adopted)->parent = s.f; /* a thread node with a parent */
    struct log_reader *reader = open_ok(write_log(builder, "links.stacklog"));
    uint64_t pcs[8];
    uint32_t thread;
    ck_assert_ptr_null(log_reader_node(reader, loop));
    ck_assert_ptr_null(log_reader_node(reader, s.h));
    ck_assert_ptr_null(log_reader_node(reader, orphan));
    ck_assert_ptr_null(log_reader_node(reader, unwritten));
    ck_assert_ptr_null(log_reader_node(reader, adopted));
    /* The walk keeps the frames it could read. */
    ck_assert_uint_eq(log_reader_stack_frames(reader, loop2, pcs, NULL, 8), 1);
    ck_assert_uint_eq(pcs[0], 0x5001);
    ck_assert(!log_reader_stack_thread(reader, loop2, &thread));
    ck_assert_uint_eq(log_reader_stack_frames(reader, s.h, pcs, NULL, 8), 0);
    ck_assert(!log_reader_stack_thread(reader, orphan, &thread));
    ck_assert(!log_reader_stack_thread(reader, adopted, &thread));
    /* The rest of the tree is untouched. */
    ck_assert_uint_eq(log_reader_stack_frames(reader, s.g, pcs, NULL, 8), 3);
    log_reader_close(reader);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

/* ---- events ---- */

struct collected {
    struct log_reader_event *events;
    size_t count;
    size_t capacity;
    size_t stop_after; /* 0: never stop */
};

static int collect(const struct log_reader_event *event, void *context)
{
    struct collected *c = context;
    if (c->count < c->capacity)
        c->events[c->count] = *event;
    c->count++;
    return c->stop_after != 0 && c->count == c->stop_after ? 42 : 0;
}

/* Events around the limits of each field's encoding, each with the
 * bytes it must take (stack 7 costs one byte in the first event of each
 * side, none after; orders are consecutive, so allocations and frees
 * without flags whose fields fit take a one-byte head): written and
 * read back exactly. */
START_TEST(test_events_at_the_encoding_limits)
{
    static const struct {
        uint64_t address, size;
        unsigned type, bytes;
    } cases[] = {
        {0x1000, 0, MDLOG_EVENT_ALLOC, 1 + 2 + 0 + 1},
        {0x1000, 32766, MDLOG_EVENT_ALLOC | MDLOG_EVENT_CLEARED, 2 + 1 + 2},
        {0x1000, 32768, MDLOG_EVENT_ALLOC, 1 + 1 + 2},
        {0x1000, (uint64_t)1 << 40, MDLOG_EVENT_VM_MAP, 2 + 1 + 6},
        {0x10, ((uint64_t)1 << 59) - 1, MDLOG_EVENT_VM_UNMAP | MDLOG_EVENT_REALLOC,
         2 + 2 + 8 + 1},
        {0x10, UINT64_MAX, MDLOG_EVENT_ALLOC, 2 + 1 + 8},
        {((uint64_t)1 << 48) - 16, 8, MDLOG_EVENT_FREE | MDLOG_EVENT_REALLOC, 2 + 6 + 1},
        {(uint64_t)1 << 48, 8, MDLOG_EVENT_FREE, 1 + 1 + 1},
        {(uint64_t)1 << 48, 1u << 24, MDLOG_EVENT_FREE, 2 + 1 + 4},
        /* An address code of 4 bytes is the longest a short head holds. */
        {((uint64_t)1 << 48) + ((uint64_t)1 << 34) - 16, 8, MDLOG_EVENT_ALLOC, 1 + 4 + 1},
        {((uint64_t)1 << 48) + ((uint64_t)1 << 34) - 16 + ((uint64_t)1 << 35), 8,
         MDLOG_EVENT_ALLOC, 2 + 5 + 1},
        {UINT64_MAX - 15, 8, MDLOG_EVENT_ALLOC, 2 + 6 + 1},
        /* Differences that are not multiples of 16 take 8 bytes. */
        {0x1001, 8, MDLOG_EVENT_ALLOC, 2 + 8 + 1},
        {0x1008, 8, MDLOG_EVENT_FREE, 2 + 8 + 1},
        {0x1018, 8, MDLOG_EVENT_FREE, 1 + 1 + 1},
        {0x1008, 8, MDLOG_EVENT_FREE, 1 + 1 + 1},
        {UINT64_MAX, 1, MDLOG_EVENT_FREE, 2 + 8 + 1},
        {0, 1, MDLOG_EVENT_FREE, 2 + 8 + 1},
    };
    enum { CASES = sizeof(cases) / sizeof(cases[0]) };
    make_temp_dir();
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    uint64_t bytes = 0;
    for (unsigned i = 0; i < CASES; i++) {
        log_builder_event(builder, T1, cases[i].type, cases[i].address,
                          cases[i].size, 7);
        bytes += cases[i].bytes;
        ck_assert_msg(chunk_in(builder, 0)->count == bytes,
                      "event %u: %llu bytes in all, expected %llu", i,
                      (unsigned long long)chunk_in(builder, 0)->count,
                      (unsigned long long)bytes);
    }
    struct log_reader *reader = open_ok(write_log(builder, "limits.stacklog"));
    struct log_reader_event got[CASES + 1];
    struct collected c = {got, 0, CASES + 1, 0};
    ck_assert_int_eq(log_reader_for_each_event(reader, collect, &c), 0);
    ck_assert_uint_eq(c.count, CASES);
    ck_assert_uint_eq(log_reader_event_count(reader), CASES);
    for (unsigned i = 0; i < CASES; i++) {
        ck_assert_uint_eq(got[i].address, cases[i].address);
        ck_assert_uint_eq(got[i].size, cases[i].size);
        ck_assert_uint_eq(got[i].type, cases[i].type);
        ck_assert_uint_eq(got[i].stack, 7);
    }
    log_reader_close(reader);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

static uint64_t random_field(uint64_t *seed)
{
    uint64_t value = next_random(seed);
    switch (next_random(seed) % 4) {
    case 0:
        return value;
    case 1:
        return value >> (next_random(seed) % 64);
    case 2:
        return -(value >> (next_random(seed) % 64));
    default:
        return value % 3;
    }
}

static struct mdlog_event random_event(uint64_t *seed)
{
    return (struct mdlog_event){
        .address = random_field(seed),
        .size = random_field(seed),
        .order = random_field(seed),
        .stack = (uint32_t)random_field(seed),
        .type = (MDLOG_EVENT_ALLOC + (unsigned)(next_random(seed) % 4)) |
                (unsigned)(next_random(seed) % 4) << 3};
}

/* An allocation or free close to `base`, as most are: a short head's. */
static struct mdlog_event event_near(const struct mdlog_event_base *base,
                                     uint64_t *seed)
{
    unsigned type = MDLOG_EVENT_ALLOC + (unsigned)(next_random(seed) % 2);
    return (struct mdlog_event){
        .address = base->address + 16 * (next_random(seed) % 4096) - 16 * 2048,
        .size = type == MDLOG_EVENT_ALLOC ? next_random(seed) % 1024 : 0,
        .order = base->order + 1,
        .stack = base->stack[mdlog_event_side(type)] +
                 (uint32_t)(next_random(seed) % 128) - 64,
        .type = type};
}

/* Any event encodes and decodes back to itself against any base, orders
 * going backwards and stack ids wrapping included; no shorter prefix of
 * its bytes decodes.  Half the events are near their base, so that both
 * heads are written. */
START_TEST(test_every_event_decodes_back_exactly)
{
    uint64_t seed = 11;
    unsigned short_heads = 0;
    for (unsigned i = 0; i < 20000; i++) {
        struct mdlog_event allocation = random_event(&seed);
        struct mdlog_event free = random_event(&seed);
        struct mdlog_event_base base = {allocation.address, allocation.order,
                                        {allocation.stack, free.stack}};
        struct mdlog_event event = i % 2 ? event_near(&base, &seed)
                                         : random_event(&seed),
                           decoded;
        struct mdlog_event_base written = base, read = base;
        unsigned char bytes[MDLOG_EVENT_MAX_SIZE];
        unsigned length = mdlog_event_encode(bytes, &written, &event);
        ck_assert_uint_ge(length, MDLOG_EVENT_MIN_SIZE);
        ck_assert_uint_le(length, MDLOG_EVENT_MAX_SIZE);
        short_heads += (bytes[0] & MDLOG_EVENT_KIND_MASK) > MDLOG_EVENT_VM_UNMAP;
        unsigned decoded_prefixes = 0; /* few asserts: each is slow */
        for (unsigned prefix = 0; prefix < length; prefix++)
            decoded_prefixes += mdlog_event_decode(bytes, prefix, &read, &decoded) != 0;
        ck_assert_uint_eq(decoded_prefixes, 0);
        ck_assert_uint_eq(mdlog_event_decode(bytes, sizeof(bytes), &read, &decoded),
                          length);
        ck_assert_uint_eq(decoded.address, event.address);
        ck_assert_uint_eq(decoded.size, event.size);
        ck_assert_uint_eq(decoded.order, event.order);
        ck_assert_uint_eq(decoded.stack, event.stack);
        ck_assert_uint_eq(decoded.type, event.type);
        ck_assert_uint_eq(read.address, written.address);
        ck_assert_uint_eq(read.order, written.order);
        ck_assert_uint_eq(read.stack[0], written.stack[0]);
        ck_assert_uint_eq(read.stack[1], written.stack[1]);
    }
    ck_assert_uint_gt(short_heads, 5000);
}
END_TEST

/* A thread's usual events take a one-byte head, and a stack written
 * against the previous one of its side costs nothing when it repeats:
 * the alternating allocations and frees of a loop take 3 to 5 bytes.
 * Events with flags, an order that jumps or long fields keep the long
 * head. */
START_TEST(test_common_events_take_one_byte_heads)
{
    static const struct {
        struct mdlog_event event;
        unsigned length;
        unsigned code; /* the low 3 bits of the head's first byte */
    } cases[] = {
        /* 2-byte address code (0x1000 >> 4, zigzag), size 24, stack 7 */
        {{0x1000, 24, 100, 7, MDLOG_EVENT_ALLOC}, 1 + 2 + 1 + 1, MDLOG_EVENT_SHORT_ALLOC},
        /* same address; the first free stack: 9 against 0 */
        {{0x1000, 0, 101, 9, MDLOG_EVENT_FREE}, 1 + 1 + 0 + 1, MDLOG_EVENT_SHORT_FREE},
        /* the allocation stack again: written against 7, not 9 */
        {{0x1010, 32, 102, 7, MDLOG_EVENT_ALLOC}, 1 + 1 + 1 + 0, MDLOG_EVENT_SHORT_ALLOC},
        {{0x1010, 0, 103, 9, MDLOG_EVENT_FREE}, 1 + 1 + 0 + 0, MDLOG_EVENT_SHORT_FREE},
        /* a flag: the long head */
        {{0x1020, 32, 104, 7, MDLOG_EVENT_ALLOC | MDLOG_EVENT_CLEARED}, 2 + 1 + 1 + 0, MDLOG_EVENT_ALLOC},
        /* an order 10 past the next: an order code, long head */
        {{0x1020, 0, 115, 9, MDLOG_EVENT_FREE}, 2 + 1 + 0 + 0 + 2, MDLOG_EVENT_FREE},
        /* a 4-byte size */
        {{0x1030, 1u << 24, 116, 7, MDLOG_EVENT_ALLOC}, 2 + 1 + 4 + 0, MDLOG_EVENT_ALLOC},
        /* a stack 200 away: 2 bytes */
        {{0x1030, 0, 117, 209, MDLOG_EVENT_FREE}, 2 + 1 + 0 + 2, MDLOG_EVENT_FREE},
        /* a vm map is on the allocations' side: stack 7 costs nothing */
        {{0x7f0000000000, 4096, 118, 7, MDLOG_EVENT_VM_MAP}, 2 + 6 + 2 + 0, MDLOG_EVENT_VM_MAP},
    };
    const unsigned count = sizeof(cases) / sizeof(cases[0]);
    unsigned char bytes[sizeof(cases) / sizeof(cases[0]) * MDLOG_EVENT_MAX_SIZE];
    struct mdlog_event_base written = mdlog_event_chunk_base(100);
    unsigned end = 0;
    for (unsigned i = 0; i < count; i++) {
        unsigned length = mdlog_event_encode(bytes + end, &written, &cases[i].event);
        ck_assert_msg(length == cases[i].length, "event %u: %u bytes, not %u", i,
                      length, cases[i].length);
        ck_assert_uint_eq(bytes[end] & MDLOG_EVENT_KIND_MASK, cases[i].code);
        end += length;
    }
    struct mdlog_event_base read = mdlog_event_chunk_base(100);
    unsigned at = 0;
    for (unsigned i = 0; i < count; i++) {
        struct mdlog_event decoded;
        unsigned length = mdlog_event_decode(bytes + at, end - at, &read, &decoded);
        ck_assert_uint_eq(length, cases[i].length);
        ck_assert_uint_eq(decoded.address, cases[i].event.address);
        ck_assert_uint_eq(decoded.size, cases[i].event.size);
        ck_assert_uint_eq(decoded.order, cases[i].event.order);
        ck_assert_uint_eq(decoded.stack, cases[i].event.stack);
        ck_assert_uint_eq(decoded.type, cases[i].event.type);
        at += length;
    }
    ck_assert_uint_eq(at, end);
}
END_TEST

/* An event of no kind the format knows ends its chunk's walk: the
 * bytes from it on are skipped, counted and warned of. */
START_TEST(test_damaged_event_bytes_are_skipped_with_a_warning)
{
    make_temp_dir();
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    log_builder_event(builder, T1, MDLOG_EVENT_ALLOC, 0x1000, 8, 0);
    uint64_t second = chunk_in(builder, 0)->count;
    log_builder_event(builder, T1, MDLOG_EVENT_ALLOC, 0x1010, 8, 0);
    log_builder_event(builder, T1, MDLOG_EVENT_FREE, 0x1000, 0, 0);
    /* A second thread's events are read all the same. */
    log_builder_event(builder, T2, MDLOG_EVENT_ALLOC, 0x2000, 8, 0);
    uint64_t count = chunk_in(builder, 0)->count;
    unsigned char *bytes = (unsigned char *)(chunk_in(builder, 0) + 1);
    bytes[second] &= ~MDLOG_EVENT_KIND_MASK; /* kind 0 */
    const char *path = write_log(builder, "damaged.stacklog");
    struct log_reader *reader = open_ok(path);
    struct log_reader_event got[4];
    struct collected c = {got, 0, 4, 0};
    ck_assert_int_eq(log_reader_for_each_event(reader, collect, &c), 0);
    ck_assert_uint_eq(c.count, 2);
    ck_assert_uint_eq(got[0].address, 0x1000);
    ck_assert_uint_eq(got[1].address, 0x2000);
    ck_assert_uint_eq(log_reader_event_count(reader), 2);
    ck_assert_uint_eq(log_reader_damaged_bytes(reader), count - second);
    ck_assert_uint_eq(log_reader_warnings(reader), LOG_READER_DAMAGED_EVENTS);
    char text[MESSAGE_SIZE], expected[MESSAGE_SIZE];
    log_reader_warning_text(reader, text, sizeof(text));
    snprintf(expected, sizeof(expected), "%s: %llu bytes of damaged events skipped",
             path, (unsigned long long)(count - second));
    ck_assert_str_eq(text, expected);
    log_reader_close(reader);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

#define MERGE_EVENTS 10000

START_TEST(test_events_merge_three_threads_in_order)
{
    make_temp_dir();
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    struct sample_stacks s;
    build_sample_stacks(builder, &s);
    static struct log_reader_event expected[MERGE_EVENTS + 1];
    static const uint32_t threads[] = {T1, T2, T3};
    uint64_t seed = 7;
    for (unsigned i = 0; i < MERGE_EVENTS; i++) {
        uint32_t thread = threads[next_random(&seed) % 3];
        unsigned type = i % 2 ? MDLOG_EVENT_FREE : MDLOG_EVENT_ALLOC | MDLOG_EVENT_CLEARED;
        uint64_t order = log_builder_event(builder, thread, type, 0x10000 + i * 16,
                                           i, i % 3 ? s.g : s.work2);
        ck_assert_uint_eq(order, i + 1);
        expected[order] = (struct log_reader_event){
            order, 0x10000 + i * 16, i, i % 3 ? s.g : s.work2, thread, type};
        if (next_random(&seed) % 1000 == 0)
            log_builder_end_event_chunk(builder, thread);
    }
    struct log_reader *reader = open_ok(write_log(builder, "events.stacklog"));
    ck_assert_uint_eq(log_reader_event_count(reader), MERGE_EVENTS);
    /* More event chunks than threads: streams span several chunks. */
    ck_assert_uint_gt(log_reader_chunk_count(reader), 6);
    static struct log_reader_event got[MERGE_EVENTS];
    struct collected c = {got, 0, MERGE_EVENTS, 0};
    ck_assert_int_eq(log_reader_for_each_event(reader, collect, &c), 0);
    ck_assert_uint_eq(c.count, MERGE_EVENTS);
    for (unsigned i = 0; i < MERGE_EVENTS; i++) {
        ck_assert_uint_eq(got[i].order, i + 1);
        ck_assert_mem_eq(&got[i], &expected[i + 1], sizeof(got[i]));
    }
    ck_assert_uint_eq(got[0].type & MDLOG_EVENT_KIND_MASK, MDLOG_EVENT_ALLOC);
    ck_assert_uint_eq(got[0].type & MDLOG_EVENT_CLEARED, MDLOG_EVENT_CLEARED);
    log_reader_close(reader);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

START_TEST(test_event_walk_stops_when_asked)
{
    make_temp_dir();
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    for (unsigned i = 0; i < 300; i++)
        log_builder_event(builder, T1 + i % 3, MDLOG_EVENT_ALLOC, i, 1, 0);
    struct log_reader *reader = open_ok(write_log(builder, "stop.stacklog"));
    struct log_reader_event got[300];
    struct collected c = {got, 0, 300, 100};
    ck_assert_int_eq(log_reader_for_each_event(reader, collect, &c), 42);
    ck_assert_uint_eq(c.count, 100);
    ck_assert_uint_eq(got[99].order, 100);
    log_reader_close(reader);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

START_TEST(test_empty_log)
{
    make_temp_dir();
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    struct log_reader *reader = open_ok(write_log(builder, "empty.stacklog"));
    struct collected c = {NULL, 0, 0, 0};
    ck_assert_int_eq(log_reader_for_each_event(reader, collect, &c), 0);
    ck_assert_uint_eq(c.count, 0);
    ck_assert_uint_eq(log_reader_event_count(reader), 0);
    ck_assert_uint_eq(log_reader_module_count(reader), 0);
    ck_assert_uint_eq(log_reader_chunk_count(reader), 0);
    ck_assert_ptr_null(log_reader_node(reader, 1));
    ck_assert_uint_eq(log_reader_module_for_pc(reader, 0x1000, 1), MDLOG_MODULE_UNKNOWN);
    ck_assert_uint_eq(log_reader_warnings(reader), 0);
    const struct mdlog_header *header = log_reader_header(reader);
    ck_assert_int_eq(header->pid, 4242);
    ck_assert_str_eq(header->executable, "/usr/bin/logged");
    ck_assert_str_eq(log_reader_path(reader), temp_file("empty.stacklog"));
    log_reader_close(reader);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

/* ---- modules ---- */

START_TEST(test_modules_by_index_and_address)
{
    make_temp_dir();
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    ck_assert_uint_eq(log_builder_module(builder, "/usr/bin/logged", 0x400000,
                                         0x500000, 1, 0), 0);
    ck_assert_uint_eq(log_builder_module(builder, "/lib/liba.so", 0x7f0000,
                                         0x7f1000, 5, 50), 1);
    /* Another library loaded later at the same place. */
    ck_assert_uint_eq(log_builder_module(builder, "/lib/libb.so", 0x7f0000,
                                         0x7f2000, 60, 0), 2);
    struct log_reader *reader = open_ok(write_log(builder, "modules.stacklog"));
    ck_assert_uint_eq(log_reader_module_count(reader), 3);
    struct mdlog_module module;
    ck_assert(log_reader_module(reader, 1, &module));
    ck_assert_str_eq(module.path, "/lib/liba.so");
    ck_assert_uint_eq(module.start, 0x7f0000);
    ck_assert_uint_eq(module.end, 0x7f1000);
    ck_assert_uint_eq(module.unloaded_order, 50);
    ck_assert_uint_eq(module.build_id_size, 4);
    ck_assert_uint_eq(module.build_id[0], 0xde);
    ck_assert(!log_reader_module(reader, 3, &module));
    ck_assert(!log_reader_module(reader, MDLOG_MODULE_UNKNOWN, &module));

    ck_assert_uint_eq(log_reader_module_for_pc(reader, 0x400100, 3), 0);
    ck_assert_uint_eq(log_reader_module_for_pc(reader, 0x7f0010, 10), 1);
    ck_assert_uint_eq(log_reader_module_for_pc(reader, 0x7f0010, 55),
                      MDLOG_MODULE_UNKNOWN);
    ck_assert_uint_eq(log_reader_module_for_pc(reader, 0x7f0010, 70), 2);
    ck_assert_uint_eq(log_reader_module_for_pc(reader, 0x7f0010, UINT64_MAX), 2);
    ck_assert_uint_eq(log_reader_module_for_pc(reader, 0x7f1800, 10),
                      MDLOG_MODULE_UNKNOWN);
    ck_assert_uint_eq(log_reader_module_for_pc(reader, 0x7f1800, 70), 2);
    ck_assert_uint_eq(log_reader_module_for_pc(reader, 0x400000, 0),
                      MDLOG_MODULE_UNKNOWN);
    ck_assert_uint_eq(log_reader_module_for_pc(reader, 0x10, 5), MDLOG_MODULE_UNKNOWN);
    log_reader_close(reader);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

START_TEST(test_module_copies_are_safe_to_print)
{
    make_temp_dir();
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    /* Enough modules to need a second chunk; the last one's path fills its
     * field with no terminator, at the very end of the file's records. */
    uint32_t last = 0;
    for (uint64_t i = 0; i <= MODULES_PER_CHUNK; i++)
        last = log_builder_module(builder, "/lib/x.so", 0x1000 * i, 0x1000 * i + 1, 0, 0);
    size_t size;
    unsigned char *bytes = log_builder_bytes(builder, &size);
    struct mdlog_module *record =
        (void *)(bytes + log_builder_chunk_offset(builder, 1) +
                 sizeof(struct mdlog_chunk_header));
    memset(record->path, 'a', sizeof(record->path));
    record->build_id_size = 1000;
    struct log_reader *reader = open_ok(write_log(builder, "paths.stacklog"));
    ck_assert_uint_eq(log_reader_module_count(reader), last + 1);
    struct mdlog_module module;
    ck_assert(log_reader_module(reader, last, &module));
    ck_assert_uint_eq(strlen(module.path), MDLOG_PATH_MAX - 1);
    ck_assert_uint_eq(module.build_id_size, MDLOG_BUILD_ID_MAX);
    ck_assert(log_reader_module(reader, last - 1, &module));
    ck_assert_str_eq(module.path, "/lib/x.so");
    ck_assert_uint_eq(log_reader_module_for_pc(reader, 0x1000 * (uint64_t)last, 9), last);
    log_reader_close(reader);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

/* ---- bad files ---- */

/* A sound log of one stack chunk and one event chunk. */
static struct log_builder *small_log(void)
{
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    struct sample_stacks s;
    build_sample_stacks(builder, &s);
    log_builder_event(builder, T1, MDLOG_EVENT_ALLOC, 0x1000, 16, s.g);
    return builder;
}

struct header_case {
    const char *name;
    const char *expected;
    void (*damage)(struct log_builder *builder, unsigned char *bytes);
    size_t keep; /* bytes of the file kept */
};

#define ALL SIZE_MAX

static void bad_magic(struct log_builder *b, unsigned char *bytes)
{
    bytes[3] ^= 0x20;
}
static void version_4(struct log_builder *b, unsigned char *bytes)
{
    header_in(bytes)->version = 4;
}
static void version_6(struct log_builder *b, unsigned char *bytes)
{
    header_in(bytes)->version = 6;
}
static void header_size_page(struct log_builder *b, unsigned char *bytes)
{
    header_in(bytes)->header_size = 4096;
}
static void header_size_odd(struct log_builder *b, unsigned char *bytes)
{
    header_in(bytes)->header_size = 8193;
}
static void header_size_huge(struct log_builder *b, unsigned char *bytes)
{
    header_in(bytes)->header_size = 1u << 30;
}
static void chunk_size_odd(struct log_builder *b, unsigned char *bytes)
{
    header_in(bytes)->chunk_size = SMALL + 100;
}
static void chunk_size_small(struct log_builder *b, unsigned char *bytes)
{
    header_in(bytes)->chunk_size = 32768;
}
static void chunk_size_huge(struct log_builder *b, unsigned char *bytes)
{
    header_in(bytes)->chunk_size = 1u << 31;
}
static void chunk_size_zero(struct log_builder *b, unsigned char *bytes)
{
    header_in(bytes)->chunk_size = 0;
}
static void header_size_past_end(struct log_builder *b, unsigned char *bytes)
{
    header_in(bytes)->header_size = 16384;
}
static void bad_mode(struct log_builder *b, unsigned char *bytes)
{
    header_in(bytes)->mode = 9;
}
static void bad_kind(struct log_builder *b, unsigned char *bytes)
{
    chunk_in(b, 1)->kind = 7;
}
static void too_many_events(struct log_builder *b, unsigned char *bytes)
{
    chunk_in(b, 1)->count = EVENT_BYTES_PER_CHUNK + 1;
}
static void too_many_nodes(struct log_builder *b, unsigned char *bytes)
{
    chunk_in(b, 0)->count = UINT64_MAX;
}
static void nodes_beyond_ids(struct log_builder *b, unsigned char *bytes)
{
    chunk_in(b, 0)->first = UINT32_MAX;
}
static void overlapping_stacks(struct log_builder *b, unsigned char *bytes)
{
    chunk_in(b, 1)->kind = MDLOG_CHUNK_STACKS;
    chunk_in(b, 1)->first = 3;
}
static void module_gap(struct log_builder *b, unsigned char *bytes)
{
    chunk_in(b, 1)->kind = MDLOG_CHUNK_MODULES;
    chunk_in(b, 1)->count = 0;
    chunk_in(b, 1)->first = 5;
}
static void modules_beyond_indexes(struct log_builder *b, unsigned char *bytes)
{
    chunk_in(b, 1)->kind = MDLOG_CHUNK_MODULES;
    chunk_in(b, 1)->count = 1;
    chunk_in(b, 1)->first = MDLOG_MODULE_THREAD;
}

static const struct header_case header_cases[] = {
    {"bad magic", "not a mallocdebug stack log (bad magic); pass a file written "
                  "under MallocStackLogging", bad_magic, ALL},
    {"empty", "empty file, not a mallocdebug stack log", NULL, 0},
    {"five bytes", "not a mallocdebug stack log (bad magic)", NULL, 5},
    {"magic only", "truncated inside its header (10 bytes of 12)", NULL, 10},
    {"version 4", "stack log version 4; this reader reads version 5; use the "
                  "mallocdebug tools of the release that wrote it", version_4, ALL},
    {"version 6", "stack log version 6; this reader reads version 5", version_6, ALL},
    {"short header", "truncated inside its header (5000 bytes of", NULL, 5000},
    {"header size 4096", "bad header size 4096 (expected a multiple of 4096 from "
                         "8192 to 1048576)", header_size_page, ALL},
    {"header size 8193", "bad header size 8193", header_size_odd, ALL},
    {"header size 1 GiB", "bad header size 1073741824", header_size_huge, ALL},
    {"chunk size odd", "bad chunk size 65636 (expected a multiple of 4096 from "
                       "64 KiB to 1 GiB)", chunk_size_odd, ALL},
    {"chunk size 32 KiB", "bad chunk size 32768", chunk_size_small, ALL},
    {"chunk size 2 GiB", "bad chunk size 2147483648", chunk_size_huge, ALL},
    {"chunk size 0", "bad chunk size 0", chunk_size_zero, ALL},
    {"header past the end", "truncated inside its header (12000 bytes of 16384)",
     header_size_past_end, 12000},
    {"mode", "unknown recording mode 9; the log is damaged", bad_mode, ALL},
    {"chunk kind", "chunk 1 has unknown kind 7; the log is damaged", bad_kind, ALL},
    {"event count", "chunk 1 claims 65505 bytes of events but holds at most 65504",
     too_many_events, ALL},
    {"node count", "chunk 0 claims 18446744073709551615 stack node records",
     too_many_nodes, ALL},
    {"node ids", "chunk 0 numbers its stack node records from 4294967295, beyond "
                 "their range", nodes_beyond_ids, ALL},
    {"overlap", "chunks 0 and 1 both hold stack node 3", overlapping_stacks, ALL},
    {"module gap", "chunk 1 numbers its modules from 5, leaving a gap", module_gap, ALL},
    {"module indexes", "chunk 1 numbers its module records from 4294967294",
     modules_beyond_indexes, ALL},
};

START_TEST(test_bad_headers_get_their_message)
{
    make_temp_dir();
    const struct header_case *c = &header_cases[_i];
    struct log_builder *builder = small_log();
    size_t size;
    unsigned char *bytes = log_builder_bytes(builder, &size);
    if (c->damage != NULL)
        c->damage(builder, bytes);
    size_t keep = c->keep == ALL ? size : c->keep;
    const char *path = temp_file("bad.stacklog");
    write_bytes(path, bytes, keep);
    assert_open_fails(path, c->expected);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

START_TEST(test_files_that_cannot_be_opened)
{
    make_temp_dir();
    char message[MESSAGE_SIZE];
    assert_open_fails(temp_file("missing.stacklog"),
                      "no such file; pass the path of a stack log");
    assert_open_fails(temp_dir, "not a regular file; pass a stack log file");
    /* Refused without waiting for a writer (the test's timeout fails a
     * wait). */
    const char *fifo = temp_file("fifo.stacklog");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    assert_open_fails(fifo, "not a regular file; pass a stack log file");
    unlink(fifo);
    ck_assert_ptr_null(log_reader_open("", message, sizeof(message)));
    ck_assert_str_eq(message, "no stack log named; pass the path of a stack log");
    /* No message buffer, or a tiny one, is fine. */
    ck_assert_ptr_null(log_reader_open(temp_file("missing"), NULL, 0));
    ck_assert_ptr_null(log_reader_open(temp_file("missing"), message, 8));
    ck_assert_uint_eq(strlen(message), 7);
    remove_temp_dir();
}
END_TEST

START_TEST(test_unreadable_file_says_why)
{
    if (geteuid() == 0)
        return; /* root reads any file */
    make_temp_dir();
    struct log_builder *builder = small_log();
    const char *path = write_log(builder, "private.stacklog");
    ck_assert_int_eq(chmod(path, 0), 0);
    assert_open_fails(path, "permission denied; a stack log is readable only by "
                            "the user who recorded it (mode 0600)");
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

/* ---- truncated and unfinished logs ---- */

struct chunk_mix {
    uint64_t events_in_chunk[64];
    uint64_t chunks;
};

/* The events in an EVENTS chunk, decoded one by one. */
static uint64_t events_in(const struct mdlog_chunk_header *chunk)
{
    const unsigned char *bytes = (const void *)(chunk + 1);
    struct mdlog_event_base base = mdlog_event_chunk_base(chunk->first);
    struct mdlog_event event;
    uint64_t events = 0;
    for (uint64_t at = 0; at < chunk->count; events++) {
        unsigned length = mdlog_event_decode(bytes + at, chunk->count - at,
                                             &base, &event);
        ck_assert_uint_ne(length, 0);
        at += length;
    }
    return events;
}

/* Stacks, then events of three threads and modules in between. */
static struct log_builder *mixed_log(struct chunk_mix *mix)
{
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    struct sample_stacks s;
    build_sample_stacks(builder, &s);
    for (unsigned i = 0; i < 3000; i++) {
        /* Every seventh event's address is not 16-aligned: two events
         * of its thread take 8 bytes for the address. */
        uint64_t address = 0x1000 + 16 * i + (i % 7 == 0 ? 8 : 0);
        log_builder_event(builder, T1 + i % 3, MDLOG_EVENT_ALLOC, address, 8, s.g);
        if (i % 700 == 0)
            log_builder_end_event_chunk(builder, T1 + i % 3);
        if (i == 1500)
            log_builder_module(builder, "/lib/late.so", 0x9000, 0xa000, i, 0);
    }
    mix->chunks = log_builder_chunk_count(builder);
    ck_assert_uint_le(mix->chunks, 64);
    for (uint64_t k = 0; k < mix->chunks; k++) {
        struct mdlog_chunk_header *chunk = chunk_in(builder, k);
        mix->events_in_chunk[k] = chunk->kind == MDLOG_CHUNK_EVENTS ? events_in(chunk) : 0;
    }
    return builder;
}

static void assert_reads_chunks(const char *path, uint64_t chunks,
                                const struct chunk_mix *mix)
{
    struct log_reader *reader = open_ok(path);
    uint64_t events = 0;
    for (uint64_t k = 0; k < chunks; k++)
        events += mix->events_in_chunk[k];
    ck_assert_uint_eq(log_reader_chunk_count(reader), chunks);
    ck_assert_uint_eq(log_reader_event_count(reader), events);
    struct collected c = {NULL, 0, 0, 0};
    ck_assert_int_eq(log_reader_for_each_event(reader, collect, &c), 0);
    ck_assert_uint_eq(c.count, events);
    bool truncated = chunks < mix->chunks;
    ck_assert_uint_eq(log_reader_warnings(reader), truncated ? LOG_READER_TRUNCATED : 0);
    char text[MESSAGE_SIZE];
    log_reader_warning_text(reader, text, sizeof(text));
    ck_assert_int_eq(strstr(text, "truncated: the header lists") != NULL, truncated);
    log_reader_close(reader);
}

START_TEST(test_truncated_at_each_chunk_boundary)
{
    make_temp_dir();
    struct chunk_mix mix;
    struct log_builder *builder = mixed_log(&mix);
    ck_assert_uint_ge(mix.chunks, 6);
    size_t size;
    unsigned char *bytes = log_builder_bytes(builder, &size);
    const char *path = temp_file("cut.stacklog");
    for (uint64_t k = 0; k <= mix.chunks; k++) {
        write_bytes(path, bytes, log_builder_chunk_offset(builder, k));
        assert_reads_chunks(path, k, &mix);
    }
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

START_TEST(test_truncated_at_random_offsets)
{
    make_temp_dir();
    struct chunk_mix mix;
    struct log_builder *builder = mixed_log(&mix);
    size_t size;
    unsigned char *bytes = log_builder_bytes(builder, &size);
    const char *path = temp_file("cut.stacklog");
    uint64_t seed = 99;
    for (unsigned i = 0; i < 200; i++) {
        size_t keep = next_random(&seed) % size;
        if (i < 20)
            keep %= MDLOG_HEADER_SIZE; /* some inside the header */
        write_bytes(path, bytes, keep);
        if (keep >= MDLOG_HEADER_SIZE) {
            assert_reads_chunks(path, (keep - MDLOG_HEADER_SIZE) / SMALL, &mix);
            continue;
        }
        assert_open_fails(path, keep == 0                  ? "empty file"
                                : keep < MDLOG_MAGIC_SIZE ? "bad magic"
                                                           : "truncated inside its header");
    }
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

/* Maps the log at `path` as its writer does, for this process to stand
 * in for it; *size is the mapping's. */
static void *map_as_the_writer(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    *size = MDLOG_HEADER_SIZE;
    void *map = mmap(NULL, *size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    ck_assert_ptr_ne(map, MAP_FAILED);
    return map;
}

/* In a new temporary directory, the mixed log with one more chunk that
 * its writer, process `pid`, is still setting up (*pending). */
static struct log_builder *log_with_a_pending_chunk(pid_t pid,
                                                    uint64_t *pending)
{
    make_temp_dir();
    struct chunk_mix mix;
    struct log_builder *builder = mixed_log(&mix);
    *pending = log_builder_add_chunk(builder, 0, T2, 0);
    size_t size;
    header_in(log_builder_bytes(builder, &size))->pid = pid;
    return builder;
}

START_TEST(test_unfinished_chunks_are_skipped)
{
    /* The writer runs (this process stands in for it). */
    uint64_t pending;
    struct log_builder *builder = log_with_a_pending_chunk(getpid(), &pending);
    size_t size, mapped;
    const char *path = write_log(builder, "pending.stacklog");
    void *writer_map = map_as_the_writer(path, &mapped);
    struct log_reader *reader = open_ok(path);
    ck_assert_uint_eq(log_reader_warnings(reader), LOG_READER_UNFINISHED_CHUNKS);
    ck_assert_uint_eq(log_reader_event_count(reader), 3000);
    char text[MESSAGE_SIZE];
    log_reader_warning_text(reader, text, sizeof(text));
    ck_assert_str_eq(strstr(text, ": "), ": 1 chunk still being set up by the "
                                         "writer; skipped");
    /* The writer finishes it: one more event, seen after a refresh. */
    struct mdlog_chunk_header *chunk = chunk_in(builder, pending);
    chunk->kind = MDLOG_CHUNK_EVENTS;
    chunk->first = 3001;
    struct mdlog_event_base base = mdlog_event_chunk_base(chunk->first);
    const struct mdlog_event event = {.address = 0x1000, .size = 16,
                                      .order = 3001, .type = MDLOG_EVENT_ALLOC};
    unsigned char encoded[MDLOG_EVENT_MAX_SIZE];
    chunk->count = mdlog_event_encode(encoded, &base, &event);
    memcpy(chunk + 1, encoded, chunk->count);
    header_in(log_builder_bytes(builder, &size))->next_order = 3002;
    ck_assert(log_builder_write(builder, temp_file("pending.stacklog")));
    char message[MESSAGE_SIZE];
    ck_assert_int_eq(log_reader_refresh(reader, message, sizeof(message)), 0);
    ck_assert_str_eq(message, "");
    ck_assert_uint_eq(log_reader_warnings(reader), 0);
    ck_assert_uint_eq(log_reader_event_count(reader), 3001);
    log_reader_close(reader);
    munmap(writer_map, mapped);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

/* A log that says its process runs, whose pid is now another process's
 * (one that does not map the log): its writer is gone, and the reader
 * leaves the log as it is. */
START_TEST(test_a_pid_given_to_another_process_is_not_the_writer)
{
    uint64_t pending;
    struct log_builder *builder = log_with_a_pending_chunk(getpid(), &pending);
    size_t size;
    uint64_t floor = header_in(log_builder_bytes(builder, &size))->next_order;
    const char *path = write_log(builder, "reused.stacklog");
    struct log_reader *reader = open_ok(path);
    char text[MESSAGE_SIZE];
    log_reader_warning_text(reader, text, sizeof(text));
    ck_assert_ptr_nonnull(strstr(text, "never finished by the writer"));
    log_reader_close(reader);
    size_t mapped;
    const struct mdlog_header *file = map_as_the_writer(path, &mapped);
    ck_assert_uint_eq(file->next_order, floor);
    /* Mapped by its process, it is live, and the reader marks its moment. */
    reader = open_ok(path);
    log_reader_warning_text(reader, text, sizeof(text));
    ck_assert_ptr_nonnull(strstr(text, "still being set up by the writer"));
    ck_assert_uint_eq(file->next_order, floor + 2 * MDLOG_ORDER_STRIDE);
    log_reader_close(reader);
    munmap((void *)file, mapped);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

/* A header counting thousands of chunks in a file of holes (damaged, or
 * made to look so): the holes are not read through the mapping, which
 * in /dev/shm would give the file a page of memory for each. */
START_TEST(test_chunks_in_holes_are_not_touched)
{
    char path[] = "/dev/shm/check_log_reader.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    for (unsigned i = 0; i < 100; i++)
        log_builder_event(builder, T1, MDLOG_EVENT_ALLOC, 0x1000 + 16 * i, 8, 0);
    size_t size;
    unsigned char *bytes = log_builder_bytes(builder, &size);
    const uint64_t claimed = 4096;
    header_in(bytes)->chunk_count = claimed;
    ck_assert_int_eq(write(fd, bytes, size), (ssize_t)size);
    uint64_t length = header_in(bytes)->header_size + claimed * SMALL;
    ck_assert_int_eq(ftruncate(fd, (off_t)length), 0);
    struct stat before, after;
    ck_assert_int_eq(fstat(fd, &before), 0);
    struct log_reader *reader = open_ok(path);
    ck_assert_uint_eq(log_reader_chunk_count(reader), claimed);
    ck_assert_uint_eq(log_reader_event_count(reader), 100);
    ck_assert(log_reader_warnings(reader) & LOG_READER_UNFINISHED_CHUNKS);
    ck_assert_int_eq(fstat(fd, &after), 0);
    log_reader_close(reader);
    close(fd);
    unlink(path);
    log_builder_destroy(builder);
    /* 4096 chunks read would be 4096 pages more. */
    ck_assert_int_le(after.st_blocks - before.st_blocks, 64);
}
END_TEST

/* Above any pid_max Linux allows (2^22): no process has it, ever. */
static pid_t gone_pid(void)
{
    return INT32_MAX - 1;
}

/* A writer that is gone will never finish its chunks: said as such, and
 * printed, which a running writer's are not. */
START_TEST(test_unfinished_chunks_of_a_writer_that_is_gone)
{
    uint64_t pending;
    struct log_builder *builder = log_with_a_pending_chunk(gone_pid(), &pending);
    struct log_reader *reader = open_ok(write_log(builder, "gone.stacklog"));
    ck_assert_uint_eq(log_reader_warnings(reader), LOG_READER_UNFINISHED_CHUNKS);
    char text[MESSAGE_SIZE];
    log_reader_warning_text(reader, text, sizeof(text));
    ck_assert_str_eq(strstr(text, ": "), ": 1 chunk never finished by the writer "
                                         "(it ended while making it, or the log "
                                         "is damaged); skipped");
    char printed[2 * MESSAGE_SIZE] = "";
    FILE *stream = fmemopen(printed, sizeof(printed), "w");
    ck_assert_ptr_nonnull(stream);
    log_reader_print_chunk_warnings(reader, stream, "tool");
    fclose(stream);
    ck_assert_msg(strstr(printed, "tool: warning: ") == printed, "%s", printed);
    ck_assert_uint_eq(log_reader_event_count(reader), 3000);
    log_reader_close(reader);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

/* ---- live logs ---- */

START_TEST(test_refresh_maps_new_chunks)
{
    make_temp_dir();
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    for (unsigned i = 0; i < 100; i++)
        log_builder_event(builder, T1 + i % 2, MDLOG_EVENT_ALLOC, i, 8, 0);
    const char *path = write_log(builder, "live.stacklog");
    struct log_reader *reader = open_ok(path);
    ck_assert_uint_eq(log_reader_chunk_count(reader), 2);
    char message[MESSAGE_SIZE];
    ck_assert_int_eq(log_reader_refresh(reader, message, sizeof(message)), 0);

    /* A third thread starts: its chunk appears after a refresh. */
    for (unsigned i = 0; i < 5000; i++)
        log_builder_event(builder, T1 + i % 3, MDLOG_EVENT_FREE, i, 8, 0);
    ck_assert(log_builder_write(builder, path));
    ck_assert_int_eq(log_reader_refresh(reader, message, sizeof(message)), 1);
    ck_assert_str_eq(message, "");
    ck_assert_uint_eq(log_reader_chunk_count(reader), log_builder_chunk_count(builder));
    ck_assert_uint_eq(log_reader_header(reader)->chunk_count,
                      log_builder_chunk_count(builder));
    ck_assert_uint_eq(log_reader_event_count(reader), 5100);
    struct collected c = {NULL, 0, 0, 0};
    ck_assert_int_eq(log_reader_for_each_event(reader, collect, &c), 0);
    ck_assert_uint_eq(c.count, 5100);
    ck_assert_int_eq(log_reader_refresh(reader, message, sizeof(message)), 0);
    log_reader_close(reader);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

START_TEST(test_unpublished_chunks_wait_for_the_count)
{
    make_temp_dir();
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    log_builder_event(builder, T1, MDLOG_EVENT_ALLOC, 1, 8, 0);
    const char *path = write_log(builder, "live.stacklog");
    struct log_reader *reader = open_ok(path);
    /* The file grows before the header's chunk count does. */
    log_builder_event(builder, T2, MDLOG_EVENT_ALLOC, 2, 8, 0);
    size_t size;
    unsigned char *bytes = log_builder_bytes(builder, &size);
    header_in(bytes)->chunk_count--;
    ck_assert(log_builder_write(builder, path));
    char message[MESSAGE_SIZE];
    ck_assert_int_eq(log_reader_refresh(reader, message, sizeof(message)), 0);
    ck_assert_uint_eq(log_reader_event_count(reader), 1);
    ck_assert_uint_eq(log_reader_warnings(reader), 0);
    header_in(bytes)->chunk_count++;
    ck_assert(log_builder_write(builder, path));
    ck_assert_int_eq(log_reader_refresh(reader, message, sizeof(message)), 1);
    ck_assert_uint_eq(log_reader_event_count(reader), 2);
    log_reader_close(reader);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

START_TEST(test_counts_growing_in_place_are_seen)
{
    make_temp_dir();
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    struct sample_stacks s;
    build_sample_stacks(builder, &s);
    log_builder_event(builder, T1, MDLOG_EVENT_ALLOC, 1, 8, s.g);
    const char *path = write_log(builder, "live.stacklog");
    struct log_reader *reader = open_ok(path);
    ck_assert_ptr_null(log_reader_node(reader, s.work2 + 1));
    ck_assert_uint_eq(log_reader_event_count(reader), 1);
    /* New records in chunks already mapped need no refresh, and counts
     * taken before do not hide them. */
    log_builder_event(builder, T1, MDLOG_EVENT_FREE, 1, 8, s.g);
    uint32_t added = log_builder_frame(builder, s.work2, 0x403000, 0);
    ck_assert(log_builder_write(builder, path));
    ck_assert_uint_eq(log_reader_event_count(reader), 2);
    ck_assert_ptr_nonnull(log_reader_node(reader, added));
    log_reader_close(reader);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

/* What a writer compacting the thread's last event does to its chunk's
 * header while the walk reads it: taken_back goes up, then the count
 * down, then (when `rewritten`) another event fills the same bytes. */
struct compaction {
    int fd;
    off_t header_offset;
    off_t rewrite_offset;
    struct mdlog_chunk_header header;
    unsigned events_back; /* events taken back, one after the other */
    uint64_t bytes_back;  /* the bytes they took */
    unsigned char rewritten[MDLOG_EVENT_MAX_SIZE];
    unsigned rewritten_length; /* 0: none */
    size_t seen;
    uint64_t last_address;
};

static void write_at(int fd, const void *bytes, size_t size, off_t offset)
{
    ck_assert_int_eq(pwrite(fd, bytes, size, offset), (ssize_t)size);
}

static int compact_while_reading(const struct log_reader_event *event,
                                 void *context)
{
    struct compaction *c = context;
    if (c->seen++ == 0) {
        struct mdlog_chunk_header *header = &c->header;
        header->taken_back += c->events_back;
        header->count -= c->bytes_back;
        if (c->rewritten_length) {
            write_at(c->fd, c->rewritten, c->rewritten_length, c->rewrite_offset);
            header->count += c->rewritten_length;
        }
        write_at(c->fd, header, sizeof(*header), c->header_offset);
    }
    c->last_address = event->address;
    return 0;
}

#define COMPACTED_EVENTS 10

/* Ten allocations of one thread, the last `events_back` compacted (and
 * maybe `rewritten` written after them, when its order is not 0) while
 * the walk is at the first: what the walk saw.  With `last_longer`, the
 * last event's address takes 8 bytes. */
static struct compaction walk_while_compacting(unsigned events_back,
                                               bool last_longer,
                                               struct mdlog_event rewritten)
{
    make_temp_dir();
    struct log_builder *builder = log_builder_create(SMALL, 4242);
    uint64_t ends[COMPACTED_EVENTS + 1] = {0};
    struct mdlog_event_base bases[COMPACTED_EVENTS + 1];
    for (unsigned i = 0; i < COMPACTED_EVENTS; i++) {
        uint64_t misaligned = i == COMPACTED_EVENTS - 1 && last_longer ? 8 : 0;
        uint64_t address = 0x1000 + 16 * i + misaligned;
        uint64_t order = log_builder_event(builder, T1, MDLOG_EVENT_ALLOC,
                                           address, 8, 0);
        ends[i + 1] = chunk_in(builder, 0)->count;
        bases[i + 1] = (struct mdlog_event_base){address, order, {0, 0}};
    }
    bases[0] = mdlog_event_chunk_base(chunk_in(builder, 0)->first);
    const char *path = write_log(builder, "compact.stacklog");
    struct log_reader *reader = open_ok(path);
    off_t chunk = (off_t)log_builder_chunk_offset(builder, 0);
    unsigned kept = COMPACTED_EVENTS - events_back;
    struct compaction c = {
        .fd = open(path, O_WRONLY),
        .header_offset = chunk,
        .rewrite_offset = chunk + (off_t)(sizeof(struct mdlog_chunk_header) + ends[kept]),
        .header = *chunk_in(builder, 0),
        .events_back = events_back,
        .bytes_back = ends[COMPACTED_EVENTS] - ends[kept]};
    if (rewritten.order != 0)
        c.rewritten_length = mdlog_event_encode(c.rewritten, &bases[kept], &rewritten);
    ck_assert_int_ge(c.fd, 0);
    ck_assert_int_eq(log_reader_for_each_event(reader, compact_while_reading, &c), 0);
    close(c.fd);
    log_reader_close(reader);
    log_builder_destroy(builder);
    remove_temp_dir();
    return c;
}

START_TEST(test_event_compacted_during_the_walk_is_dropped)
{
    struct compaction c = walk_while_compacting(1, false, (struct mdlog_event){0});
    ck_assert_uint_eq(c.seen, 9);
    ck_assert_uint_eq(c.last_address, 0x1000 + 16 * 8);
    /* A longer event: all its bytes go. */
    c = walk_while_compacting(1, true, (struct mdlog_event){0});
    ck_assert_uint_eq(c.seen, 9);
    ck_assert_uint_eq(c.last_address, 0x1000 + 16 * 8);
    /* Two events taken back, one after the other. */
    c = walk_while_compacting(2, false, (struct mdlog_event){0});
    ck_assert_uint_eq(c.seen, 8);
    ck_assert_uint_eq(c.last_address, 0x1000 + 16 * 7);
}
END_TEST

START_TEST(test_event_rewritten_during_the_walk_is_read_again)
{
    /* As long as the event it replaces (3 bytes). */
    struct mdlog_event other = {.address = 0x1000 + 16 * 10, .size = 32,
                                .order = 10, .type = MDLOG_EVENT_ALLOC};
    struct compaction c = walk_while_compacting(1, false, other);
    ck_assert_uint_eq(c.seen, 10);
    ck_assert_uint_eq(c.last_address, other.address);
    /* Shorter than the one it replaces: the walk must not read what is
     * left of the longer one. */
    c = walk_while_compacting(1, true, other);
    ck_assert_uint_eq(c.seen, 10);
    ck_assert_uint_eq(c.last_address, other.address);
    /* Longer: it ends past the count the walk took, and is left for the
     * next walk, not read as damage. */
    other = (struct mdlog_event){.address = 0x7000, .size = 32, .order = 20,
                                 .type = MDLOG_EVENT_ALLOC};
    c = walk_while_compacting(1, false, other);
    ck_assert_uint_eq(c.seen, 9);
    ck_assert_uint_eq(c.last_address, 0x1000 + 16 * 8);
}
END_TEST

START_TEST(test_refresh_refuses_a_changed_layout)
{
    make_temp_dir();
    struct log_builder *builder = small_log();
    const char *path = write_log(builder, "live.stacklog");
    struct log_reader *reader = open_ok(path);
    size_t size;
    unsigned char *bytes = log_builder_bytes(builder, &size);
    header_in(bytes)->chunk_size = 2 * SMALL;
    ck_assert(log_builder_write(builder, path));
    char message[MESSAGE_SIZE];
    ck_assert_int_eq(log_reader_refresh(reader, message, sizeof(message)), -1);
    ck_assert_ptr_nonnull(strstr(message, "the header changed its layout"));
    /* The reader keeps what it had. */
    ck_assert_uint_eq(log_reader_header(reader)->chunk_size, SMALL);
    ck_assert_uint_eq(log_reader_event_count(reader), 1);
    header_in(bytes)->version = MDLOG_VERSION + 1;
    ck_assert(log_builder_write(builder, path));
    ck_assert_int_eq(log_reader_refresh(reader, message, sizeof(message)), -1);
    ck_assert_ptr_nonnull(strstr(message, "stack log version 6"));
    log_reader_close(reader);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

/* ---- the mutation fuzzer ---- */

#define FUZZ_ITERATIONS 20000
#define FUZZ_RANGES 64

/* Uses every call of the API on `reader`, checking that each answer is
 * within what the file can hold. */
static void exercise(struct log_reader *reader, uint64_t *seed)
{
    const struct mdlog_header *header = log_reader_header(reader);
    ck_assert_uint_lt(strlen(header->executable), MDLOG_EXECUTABLE_MAX);
    uint64_t chunks = log_reader_chunk_count(reader);
    char text[MESSAGE_SIZE];
    log_reader_warning_text(reader, text, sizeof(text));
    ck_assert_ptr_null(strchr(text, '\n'));

    uint64_t events = log_reader_event_count(reader);
    ck_assert_uint_le(events, chunks * EVENTS_PER_CHUNK);
    static struct log_reader_event got[4 * EVENTS_PER_CHUNK];
    struct collected c = {got, 0, 4 * EVENTS_PER_CHUNK, 0};
    ck_assert_int_eq(log_reader_for_each_event(reader, collect, &c), 0);
    ck_assert_uint_eq(c.count, events);

    static uint64_t pcs[MDLOG_MAX_FRAMES + 1];
    static uint32_t modules[MDLOG_MAX_FRAMES + 1];
    uint32_t thread;
    for (size_t i = 0; i < c.count && i < c.capacity; i += 7) {
        size_t frames = log_reader_stack_frames(reader, got[i].stack, pcs, modules,
                                                MDLOG_MAX_FRAMES + 1);
        ck_assert_uint_le(frames, MDLOG_MAX_FRAMES);
        log_reader_stack_thread(reader, got[i].stack, &thread);
    }
    for (unsigned i = 0; i < 32; i++) {
        uint32_t id = i < 16 ? (uint32_t)(next_random(seed) % 400)
                             : (uint32_t)next_random(seed);
        const struct mdlog_stack_node *node = log_reader_node(reader, id);
        if (node != NULL)
            ck_assert(node->pc != 0);
        ck_assert_uint_le(log_reader_stack_frames(reader, id, pcs, NULL, 4), 4);
        log_reader_stack_thread(reader, id, &thread);
    }

    uint32_t module_count = log_reader_module_count(reader);
    ck_assert_uint_le(module_count, chunks * MODULES_PER_CHUNK);
    struct mdlog_module module;
    for (uint32_t i = 0; i < module_count && i < 64; i++)
        if (log_reader_module(reader, i, &module)) {
            ck_assert_uint_lt(strlen(module.path), MDLOG_PATH_MAX);
            ck_assert_uint_le(module.build_id_size, MDLOG_BUILD_ID_MAX);
        }
    for (unsigned i = 0; i < 8; i++) {
        uint32_t found = log_reader_module_for_pc(reader, next_random(seed) % 0x800000,
                                                  next_random(seed) % 64);
        ck_assert(found == MDLOG_MODULE_UNKNOWN || found < module_count);
    }
    char message[MESSAGE_SIZE];
    ck_assert_int_eq(log_reader_refresh(reader, message, sizeof(message)), 0);
}

struct saved_bytes {
    size_t offset;
    unsigned char bytes[8];
    size_t size;
};

static const uint64_t interesting[] = {
    0, 1, 2, 3, 4, 7, 8, 16, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000,
    EVENTS_PER_CHUNK, EVENTS_PER_CHUNK + 1, NODES_PER_CHUNK, NODES_PER_CHUNK + 1,
    MODULES_PER_CHUNK, MODULES_PER_CHUNK + 1, 0x7fffffff, 0x80000000,
    0xfffffffe, 0xffffffff, UINT64_C(1) << 32, UINT64_C(1) << 56,
    UINT64_C(1) << 63, UINT64_MAX - 1, UINT64_MAX};

static uint64_t fuzz_value(uint64_t *seed)
{
    uint64_t pick = next_random(seed) % 4;
    if (pick == 0)
        return next_random(seed);
    if (pick == 1)
        return next_random(seed) % 400; /* a plausible node id or count */
    return interesting[next_random(seed) % (sizeof(interesting) / sizeof(interesting[0]))];
}

static void mutate(unsigned char *map, const struct log_range *ranges,
                   size_t range_count, uint64_t *seed, struct saved_bytes *saved)
{
    const struct log_range *range = &ranges[next_random(seed) % range_count];
    static const size_t widths[] = {1, 2, 4, 8};
    size_t width = widths[next_random(seed) % 4];
    if (range->size < width)
        width = 1;
    size_t offset = range->offset + next_random(seed) % (range->size - width + 1);
    offset -= offset % width; /* fields are naturally aligned */
    saved->offset = offset;
    saved->size = width;
    memcpy(saved->bytes, map + offset, width);
    uint64_t value = fuzz_value(seed);
    if (width == 1 && next_random(seed) % 2)
        value = map[offset] ^ (1u << next_random(seed) % 8); /* a bit flip */
    memcpy(map + offset, &value, width); /* little-endian: the low bytes */
}

/* Makes a node its own ancestor: a parent id at or above its own. */
static void make_cycle(unsigned char *map, struct log_builder *builder,
                       uint64_t *seed, struct saved_bytes *saved)
{
    uint32_t id = 1 + (uint32_t)(next_random(seed) % 60);
    size_t offset = log_builder_chunk_offset(builder, 0) +
                    sizeof(struct mdlog_chunk_header) +
                    id * sizeof(struct mdlog_stack_node) +
                    offsetof(struct mdlog_stack_node, parent);
    saved->offset = offset;
    saved->size = 4;
    memcpy(saved->bytes, map + offset, 4);
    uint32_t parent = id + (uint32_t)(next_random(seed) % 3);
    memcpy(map + offset, &parent, 4);
}

/* True when the log opened (and was exercised). */
static bool open_and_exercise(const char *path, uint64_t *seed)
{
    char message[MESSAGE_SIZE];
    struct log_reader *reader = log_reader_open(path, message, sizeof(message));
    if (reader == NULL) {
        ck_assert_uint_gt(strlen(message), strlen(path) + 2);
        ck_assert_ptr_null(strchr(message, '\n'));
        return false;
    }
    exercise(reader, seed);
    log_reader_close(reader);
    return true;
}

START_TEST(test_mutated_logs_never_crash)
{
    make_temp_dir();
    struct log_builder *builder = log_builder_sample();
    const char *path = write_log(builder, "fuzz.stacklog");
    size_t size;
    const unsigned char *pristine = log_builder_bytes(builder, &size);
    struct log_range ranges[FUZZ_RANGES];
    size_t range_count = log_builder_hot_ranges(builder, ranges, FUZZ_RANGES);
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    unsigned char *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(map, MAP_FAILED);
    uint64_t seed = 20240611;
    unsigned opened = 0;
    for (unsigned i = 0; i < FUZZ_ITERATIONS; i++) {
        struct saved_bytes saved[4];
        unsigned mutations = 1 + (unsigned)(next_random(&seed) % 4);
        for (unsigned m = 0; m < mutations; m++) {
            if (next_random(&seed) % 8 == 0)
                make_cycle(map, builder, &seed, &saved[m]);
            else
                mutate(map, ranges, range_count, &seed, &saved[m]);
        }
        bool cut = next_random(&seed) % 32 == 0;
        if (cut)
            ck_assert_int_eq(ftruncate(fd, (off_t)(next_random(&seed) % size)), 0);
        opened += open_and_exercise(path, &seed);
        if (cut) { /* the cut discarded the tail: put it all back */
            ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
            memcpy(map, pristine, size);
        }
        for (unsigned m = mutations; m-- > 0;)
            memcpy(map + saved[m].offset, saved[m].bytes, saved[m].size);
    }
    ck_assert_mem_eq(map, pristine, size);
    /* Most mutations leave a readable log: the checks above ran. */
    ck_assert_uint_gt(opened, FUZZ_ITERATIONS / 4);
    munmap(map, size);
    close(fd);
    log_builder_destroy(builder);
    remove_temp_dir();
}
END_TEST

/* ---- finding a process's log ---- */

static void assert_pid_fails(pid_t pid, const char *expected)
{
    char message[MESSAGE_SIZE];
    struct log_reader *reader = log_reader_open_pid(pid, message, sizeof(message));
    ck_assert_msg(reader == NULL, "pid %d: opened %s", (int)pid,
                  reader ? log_reader_path(reader) : "");
    ck_assert_msg(strstr(message, expected) != NULL, "message \"%s\" lacks \"%s\"",
                  message, expected);
}

START_TEST(test_open_pid_of_no_process)
{
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    char expected[64];
    snprintf(expected, sizeof(expected), "no process %d; pass the id of a running process",
             (int)child);
    assert_pid_fails(child, expected);
    assert_pid_fails(0, "no process 0");
    assert_pid_fails(-3, "no process -3");
}
END_TEST

START_TEST(test_open_pid_1)
{
    char message[MESSAGE_SIZE];
    ck_assert_ptr_null(log_reader_open_pid(1, message, sizeof(message)));
    FILE *maps = fopen("/proc/1/maps", "r");
    if (maps == NULL && geteuid() != 0) {
        ck_assert_str_eq(message, "not permitted to read process 1: it belongs to "
                                  "another user (uid 0); run as that user or as root");
    } else if (maps == NULL) {
        ck_assert_msg(strstr(message, "not permitted to read process 1: ") == message,
                      "%s", message);
    } else {
        fclose(maps);
        ck_assert_str_eq(message, "process 1 is not recording stacks: start it with "
                                  "LD_PRELOAD=libmallocdebug.so and MallocStackLogging=full "
                                  "(every event, for malloc_history) or =lite (stacks "
                                  "of live blocks)");
    }
}
END_TEST

enum child_plan { MAP_OWN_LOG, MAP_PARENTS_LOG, MAP_AND_DELETE, MAP_NOTHING };

/* A child that maps a log named as the writer names it, in the test's
 * directory; says when it is ready, then waits to be killed. */
static pid_t start_child(enum child_plan plan, char *log_path, size_t size)
{
    int ready[2];
    ck_assert_int_eq(pipe(ready), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        pid_t owner = plan == MAP_PARENTS_LOG ? getppid() : getpid();
        snprintf(log_path, size, "%s/" MDLOG_FILE_PREFIX "%d.check_log_reader"
                 MDLOG_FILE_SUFFIX, temp_dir, (int)owner);
        struct log_builder *builder = small_log();
        if (plan != MAP_NOTHING) {
            int fd = -1;
            if (!log_builder_write(builder, log_path) ||
                (fd = open(log_path, O_RDONLY)) < 0 ||
                mmap(NULL, MDLOG_HEADER_SIZE, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED)
                _exit(2);
            if (plan == MAP_AND_DELETE)
                unlink(log_path);
        }
        if (write(ready[1], "r", 1) != 1)
            _exit(3);
        for (;;)
            pause();
    }
    close(ready[1]);
    char byte;
    ck_assert_int_eq(read(ready[0], &byte, 1), 1);
    close(ready[0]);
    snprintf(log_path, size, "%s/" MDLOG_FILE_PREFIX "%d.check_log_reader"
             MDLOG_FILE_SUFFIX, temp_dir, (int)(plan == MAP_PARENTS_LOG ? getpid() : child));
    return child;
}

static void stop_child(pid_t child)
{
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
}

START_TEST(test_open_pid_finds_the_mapped_log)
{
    make_temp_dir();
    char path[PATH_MAX];
    pid_t child = start_child(MAP_OWN_LOG, path, sizeof(path));
    char message[MESSAGE_SIZE];
    struct log_reader *reader = log_reader_open_pid(child, message, sizeof(message));
    ck_assert_msg(reader != NULL, "%s", message);
    ck_assert_str_eq(log_reader_path(reader), path);
    ck_assert_uint_eq(log_reader_event_count(reader), 1);
    log_reader_close(reader);
    stop_child(child);
    remove_temp_dir();
}
END_TEST

START_TEST(test_open_pid_ignores_other_processes_logs)
{
    make_temp_dir();
    char path[PATH_MAX];
    /* A forked child still maps its parent's log: not its own. */
    pid_t child = start_child(MAP_PARENTS_LOG, path, sizeof(path));
    char expected[MESSAGE_SIZE];
    snprintf(expected, sizeof(expected),
             "process %d is not recording stacks: start it with "
             "LD_PRELOAD=libmallocdebug.so and MallocStackLogging=full (every "
             "event, for malloc_history) or =lite (stacks of live blocks)",
             (int)child);
    char message[MESSAGE_SIZE];
    ck_assert_ptr_null(log_reader_open_pid(child, message, sizeof(message)));
    ck_assert_str_eq(message, expected);
    stop_child(child);
    remove_temp_dir();
}
END_TEST

START_TEST(test_open_pid_of_a_process_without_log)
{
    make_temp_dir();
    char path[PATH_MAX];
    pid_t child = start_child(MAP_NOTHING, path, sizeof(path));
    char expected[MESSAGE_SIZE];
    snprintf(expected, sizeof(expected),
             "process %d is not recording stacks: start it with "
             "LD_PRELOAD=libmallocdebug.so and MallocStackLogging=full (every "
             "event, for malloc_history) or =lite (stacks of live blocks)",
             (int)child);
    char message[MESSAGE_SIZE];
    ck_assert_ptr_null(log_reader_open_pid(child, message, sizeof(message)));
    ck_assert_str_eq(message, expected);
    stop_child(child);
    remove_temp_dir();
}
END_TEST

START_TEST(test_open_pid_deleted_log)
{
    make_temp_dir();
    char path[PATH_MAX];
    pid_t child = start_child(MAP_AND_DELETE, path, sizeof(path));
    char expected[PATH_MAX + 64];
    snprintf(expected, sizeof(expected), "process %d's stack log %s was deleted",
             (int)child, path);
    assert_pid_fails(child, expected);
    stop_child(child);
    remove_temp_dir();
}
END_TEST

START_TEST(test_open_pid_falls_back_to_the_default_directory)
{
    struct stat status;
    if (stat(MDLOG_DEFAULT_DIRECTORY, &status) != 0 || access(MDLOG_DEFAULT_DIRECTORY, W_OK) != 0)
        return; /* nowhere to put the log */
    make_temp_dir();
    char unused[PATH_MAX];
    pid_t child = start_child(MAP_NOTHING, unused, sizeof(unused));
    char path[PATH_MAX];
    snprintf(path, sizeof(path), MDLOG_DEFAULT_DIRECTORY "/" MDLOG_FILE_PREFIX
             "%d.fallback" MDLOG_FILE_SUFFIX, (int)child);
    struct log_builder *builder = small_log();
    ck_assert(log_builder_write(builder, path));
    char message[MESSAGE_SIZE];
    struct log_reader *reader = log_reader_open_pid(child, message, sizeof(message));
    unlink(path);
    ck_assert_msg(reader != NULL, "%s", message);
    ck_assert_str_eq(log_reader_path(reader), path);
    log_reader_close(reader);
    log_builder_destroy(builder);
    stop_child(child);
    remove_temp_dir();
}
END_TEST

static Suite *log_reader_suite(void)
{
    Suite *s = suite_create("log_reader");
    TCase *stacks = tcase_create("stacks");
    tcase_add_test(stacks, test_stack_frames_round_trip);
    tcase_add_test(stacks, test_stack_ids_across_chunks);
    tcase_add_test(stacks, test_deep_stacks_stop_at_the_frame_limit);
    tcase_add_test(stacks, test_impossible_links_end_the_walk);
    suite_add_tcase(s, stacks);

    TCase *events = tcase_create("events and modules");
    tcase_add_test(events, test_events_merge_three_threads_in_order);
    tcase_add_test(events, test_events_at_the_encoding_limits);
    tcase_add_test(events, test_every_event_decodes_back_exactly);
    tcase_add_test(events, test_common_events_take_one_byte_heads);
    tcase_add_test(events, test_damaged_event_bytes_are_skipped_with_a_warning);
    tcase_add_test(events, test_event_walk_stops_when_asked);
    tcase_add_test(events, test_empty_log);
    tcase_add_test(events, test_modules_by_index_and_address);
    tcase_add_test(events, test_module_copies_are_safe_to_print);
    suite_add_tcase(s, events);

    TCase *bad = tcase_create("bad files");
    tcase_add_loop_test(bad, test_bad_headers_get_their_message, 0,
                        sizeof(header_cases) / sizeof(header_cases[0]));
    tcase_add_test(bad, test_files_that_cannot_be_opened);
    tcase_add_test(bad, test_unreadable_file_says_why);
    tcase_add_test(bad, test_truncated_at_each_chunk_boundary);
    tcase_add_test(bad, test_truncated_at_random_offsets);
    tcase_add_test(bad, test_unfinished_chunks_are_skipped);
    tcase_add_test(bad, test_a_pid_given_to_another_process_is_not_the_writer);
    tcase_add_test(bad, test_unfinished_chunks_of_a_writer_that_is_gone);
    tcase_add_test(bad, test_chunks_in_holes_are_not_touched);
    suite_add_tcase(s, bad);

    TCase *live = tcase_create("live logs");
    tcase_add_test(live, test_refresh_maps_new_chunks);
    tcase_add_test(live, test_unpublished_chunks_wait_for_the_count);
    tcase_add_test(live, test_counts_growing_in_place_are_seen);
    tcase_add_test(live, test_event_compacted_during_the_walk_is_dropped);
    tcase_add_test(live, test_event_rewritten_during_the_walk_is_read_again);
    tcase_add_test(live, test_refresh_refuses_a_changed_layout);
    suite_add_tcase(s, live);

    TCase *fuzz = tcase_create("fuzz");
    tcase_set_timeout(fuzz, 60);
    tcase_add_test(fuzz, test_mutated_logs_never_crash);
    suite_add_tcase(s, fuzz);

    TCase *pid = tcase_create("processes");
    tcase_add_test(pid, test_open_pid_of_no_process);
    tcase_add_test(pid, test_open_pid_1);
    tcase_add_test(pid, test_open_pid_finds_the_mapped_log);
    tcase_add_test(pid, test_open_pid_ignores_other_processes_logs);
    tcase_add_test(pid, test_open_pid_of_a_process_without_log);
    tcase_add_test(pid, test_open_pid_deleted_log);
    tcase_add_test(pid, test_open_pid_falls_back_to_the_default_directory);
    suite_add_tcase(s, pid);
    return s;
}

int main(void)
{
    SRunner *runner = srunner_create(log_reader_suite());
    srunner_set_fork_status(runner, getenv("CK_FORK") && strcmp(getenv("CK_FORK"), "no") == 0 ? CK_NOFORK : CK_FORK);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
