/*
 * The test-side stack log builder: appends chunks as records need them,
 * the way the writer does, and keeps the header's counts current.
 */
#include "config.h"

#include "log_builder.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADS_MAX 64
#define NO_CHUNK UINT64_MAX

struct thread_chunk {
    uint32_t thread;
    uint64_t chunk; /* its open event chunk, or NO_CHUNK */
    struct mdlog_event_base base; /* what its next event is written against */
};

struct log_builder {
    unsigned char *bytes;
    size_t size;
    uint32_t chunk_size;
    uint64_t stack_chunk;  /* the open stack chunk, or NO_CHUNK */
    uint64_t module_chunk; /* the open module chunk, or NO_CHUNK */
    uint64_t next_node;
    uint64_t next_module;
    struct thread_chunk threads[THREADS_MAX];
    unsigned thread_count;
};

static void *checked(void *pointer)
{
    if (pointer == NULL) {
        fprintf(stderr, "log_builder: out of memory\n");
        abort();
    }
    return pointer;
}

static struct mdlog_header *header_of(struct log_builder *builder)
{
    return (struct mdlog_header *)builder->bytes;
}

static struct mdlog_chunk_header *chunk_at(struct log_builder *builder,
                                           uint64_t chunk)
{
    return (void *)(builder->bytes + log_builder_chunk_offset(builder, chunk));
}

struct log_builder *log_builder_create(uint32_t chunk_size, int32_t pid)
{
    struct log_builder *builder = checked(calloc(1, sizeof(*builder)));
    builder->chunk_size = chunk_size;
    builder->size = MDLOG_HEADER_SIZE;
    builder->bytes = checked(calloc(1, builder->size));
    builder->stack_chunk = builder->module_chunk = NO_CHUNK;
    builder->next_node = 1; /* node 0 is no stack */
    struct mdlog_header *header = header_of(builder);
    memcpy(header->magic, MDLOG_MAGIC, MDLOG_MAGIC_SIZE);
    header->version = MDLOG_VERSION;
    header->header_size = MDLOG_HEADER_SIZE;
    header->chunk_size = chunk_size;
    header->mode = MDLOG_MODE_FULL;
    header->state = MDLOG_STATE_RUNNING;
    header->pid = pid;
    header->start_time_sec = (uint64_t)time(NULL);
    header->next_order = 1;
    snprintf(header->executable, sizeof(header->executable), "/usr/bin/logged");
    return builder;
}

void log_builder_destroy(struct log_builder *builder)
{
    if (builder == NULL)
        return;
    free(builder->bytes);
    free(builder);
}

size_t log_builder_chunk_offset(const struct log_builder *builder, uint64_t chunk)
{
    return MDLOG_HEADER_SIZE + (size_t)chunk * builder->chunk_size;
}

uint64_t log_builder_chunk_count(const struct log_builder *builder)
{
    return ((const struct mdlog_header *)builder->bytes)->chunk_count;
}

uint64_t log_builder_next_order(const struct log_builder *builder)
{
    return ((const struct mdlog_header *)builder->bytes)->next_order;
}

uint64_t log_builder_add_chunk(struct log_builder *builder, uint32_t kind,
                               uint32_t thread, uint64_t first)
{
    uint64_t chunk = header_of(builder)->chunk_count;
    size_t size = builder->size + builder->chunk_size;
    builder->bytes = checked(realloc(builder->bytes, size));
    memset(builder->bytes + builder->size, 0, builder->chunk_size);
    builder->size = size;
    *chunk_at(builder, chunk) = (struct mdlog_chunk_header){
        .kind = kind, .thread = thread, .first = first};
    header_of(builder)->chunk_count = chunk + 1;
    return chunk;
}

/* The open chunk `*open` of `kind` with room for one more record, or a
 * new one numbering its records from `first`; returns the record's slot. */
static void *next_record(struct log_builder *builder, uint64_t *open,
                         uint32_t kind, uint32_t thread, uint64_t first,
                         size_t record_size)
{
    uint64_t capacity =
        (builder->chunk_size - sizeof(struct mdlog_chunk_header)) / record_size;
    if (*open == NO_CHUNK || chunk_at(builder, *open)->count + 1 > capacity)
        *open = log_builder_add_chunk(builder, kind, thread, first);
    struct mdlog_chunk_header *chunk = chunk_at(builder, *open);
    void *slot = (unsigned char *)(chunk + 1) + chunk->count * record_size;
    chunk->count++;
    return slot;
}

static uint32_t add_node(struct log_builder *builder,
                         struct mdlog_stack_node node)
{
    uint64_t capacity = MDLOG_CHUNK_RECORDS(builder->chunk_size,
                                            struct mdlog_stack_node);
    /* Chunk k holds ids k * capacity on, slot 0 of chunk 0 unused. */
    if (builder->stack_chunk == NO_CHUNK) {
        builder->stack_chunk = log_builder_add_chunk(builder, MDLOG_CHUNK_STACKS, 0, 0);
        chunk_at(builder, builder->stack_chunk)->count = 1;
    }
    uint64_t id = builder->next_node++;
    struct mdlog_stack_node *slot = next_record(
        builder, &builder->stack_chunk, MDLOG_CHUNK_STACKS, 0,
        id / capacity * capacity, sizeof(node));
    *slot = node;
    header_of(builder)->node_count = builder->next_node;
    return (uint32_t)id;
}

uint32_t log_builder_thread_node(struct log_builder *builder, uint32_t thread)
{
    return add_node(builder, (struct mdlog_stack_node){
                                 .pc = thread, .module = MDLOG_MODULE_THREAD});
}

uint32_t log_builder_frame(struct log_builder *builder, uint32_t parent,
                           uint64_t pc, uint32_t module)
{
    return add_node(builder, (struct mdlog_stack_node){
                                 .pc = pc, .parent = parent, .module = module});
}

static struct thread_chunk *thread_chunk(struct log_builder *builder,
                                         uint32_t thread)
{
    for (unsigned i = 0; i < builder->thread_count; i++)
        if (builder->threads[i].thread == thread)
            return &builder->threads[i];
    if (builder->thread_count == THREADS_MAX) {
        fprintf(stderr, "log_builder: more than %d threads\n", THREADS_MAX);
        abort();
    }
    struct thread_chunk *added = &builder->threads[builder->thread_count++];
    *added = (struct thread_chunk){.thread = thread, .chunk = NO_CHUNK};
    return added;
}

uint64_t log_builder_event(struct log_builder *builder, uint32_t thread,
                           unsigned type, uint64_t address, uint64_t size,
                           uint32_t stack)
{
    struct thread_chunk *open = thread_chunk(builder, thread);
    uint64_t order = header_of(builder)->next_order++;
    const struct mdlog_event event = {address, size, order, stack, type};
    uint64_t capacity = MDLOG_CHUNK_EVENT_BYTES(builder->chunk_size);
    /* As the writer does: an event goes where MDLOG_EVENT_MAX_SIZE bytes
     * are left, else into a new chunk, written against its first order. */
    if (open->chunk == NO_CHUNK ||
        capacity - chunk_at(builder, open->chunk)->count < MDLOG_EVENT_MAX_SIZE) {
        open->chunk = log_builder_add_chunk(builder, MDLOG_CHUNK_EVENTS, thread,
                                            order);
        open->base = mdlog_event_chunk_base(order);
    }
    unsigned char encoded[MDLOG_EVENT_MAX_SIZE];
    unsigned length = mdlog_event_encode(encoded, &open->base, &event);
    struct mdlog_chunk_header *chunk = chunk_at(builder, open->chunk);
    memcpy((unsigned char *)(chunk + 1) + chunk->count, encoded, length);
    chunk->count += length;
    header_of(builder)->event_count++;
    return order;
}

void log_builder_end_event_chunk(struct log_builder *builder, uint32_t thread)
{
    thread_chunk(builder, thread)->chunk = NO_CHUNK;
}

uint32_t log_builder_module_record(struct log_builder *builder,
                                   const struct mdlog_module *record)
{
    uint64_t capacity = MDLOG_CHUNK_RECORDS(builder->chunk_size, struct mdlog_module);
    uint64_t index = builder->next_module++;
    struct mdlog_module *module = next_record(
        builder, &builder->module_chunk, MDLOG_CHUNK_MODULES, 0,
        index / capacity * capacity, sizeof(*module));
    *module = *record;
    return (uint32_t)index;
}

uint32_t log_builder_module(struct log_builder *builder, const char *path,
                            uint64_t start, uint64_t end, uint64_t loaded_order,
                            uint64_t unloaded_order)
{
    struct mdlog_module module = {.load_bias = start,
                                  .start = start,
                                  .end = end,
                                  .loaded_order = loaded_order,
                                  .unloaded_order = unloaded_order,
                                  .build_id_size = 4,
                                  .build_id = {0xde, 0xad, 0xbe, 0xef}};
    snprintf(module.path, sizeof(module.path), "%s", path);
    return log_builder_module_record(builder, &module);
}

unsigned char *log_builder_bytes(struct log_builder *builder, size_t *size)
{
    *size = builder->size;
    return builder->bytes;
}

bool log_builder_write(struct log_builder *builder, const char *path)
{
    /* Rewritten in place, not truncated first: a reader that maps the
     * file sees it change as a live log does. */
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    size_t done = 0;
    while (done < builder->size) {
        ssize_t n = pwrite(fd, builder->bytes + done, builder->size - done,
                           (off_t)done);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    bool written = done == builder->size && ftruncate(fd, (off_t)done) == 0;
    return close(fd) == 0 && written;
}

static size_t record_size(uint32_t kind)
{
    switch (kind) {
    case MDLOG_CHUNK_STACKS:
        return sizeof(struct mdlog_stack_node);
    case MDLOG_CHUNK_EVENTS:
        return 1; /* counted in bytes */
    case MDLOG_CHUNK_MODULES:
        return sizeof(struct mdlog_module);
    default:
        return 0;
    }
}

size_t log_builder_hot_ranges(struct log_builder *builder,
                              struct log_range *ranges, size_t max)
{
    size_t count = 0;
    /* The header's fields before the executable's path. */
    if (count < max)
        ranges[count++] = (struct log_range){0, offsetof(struct mdlog_header, executable)};
    for (uint64_t i = 0; i < header_of(builder)->chunk_count && count < max; i++) {
        struct mdlog_chunk_header *chunk = chunk_at(builder, i);
        size_t offset = log_builder_chunk_offset(builder, i);
        ranges[count++] = (struct log_range){offset, sizeof(*chunk)};
        size_t used = chunk->count * record_size(chunk->kind);
        if (used != 0 && count < max)
            ranges[count++] = (struct log_range){offset + sizeof(*chunk), used};
    }
    return count;
}

/* Deterministic numbers for the sample (xorshift64*). */
static uint64_t sample_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

struct log_builder *log_builder_sample(void)
{
    struct log_builder *builder = log_builder_create(LOG_BUILDER_SMALL_CHUNK, 4242);
    uint64_t seed = 3;
    uint32_t stacks[60];
    unsigned stack_count = 0;
    for (uint32_t thread = 101; thread <= 103; thread++) {
        uint32_t id = log_builder_thread_node(builder, thread);
        for (unsigned depth = 0; depth < 20; depth++) {
            uint64_t pc = 0x400000 + sample_random(&seed) % 0x300000;
            id = log_builder_frame(builder, id, pc, depth % 4);
            stacks[stack_count++] = id;
        }
    }
    log_builder_module(builder, "/usr/bin/logged", 0x400000, 0x500000, 1, 0);
    log_builder_module(builder, "/lib/a.so", 0x500000, 0x600000, 1, 40);
    log_builder_module(builder, "/lib/b.so", 0x600000, 0x700000, 20, 0);
    log_builder_module(builder, "/lib/c.so", 0x500000, 0x580000, 41, 0);
    for (unsigned i = 0; i < 300; i++) {
        uint32_t thread = 101 + (uint32_t)(sample_random(&seed) % 3);
        /* Some events have an address that is not a multiple of 16, or
         * a size of more bytes: their encoding is longer. */
        uint64_t address = 0x10000 + 16 * i + (i % 25 == 24 ? 8 : 0);
        uint64_t size = i % 10 == 9 ? (uint64_t)1 << 20 | i : i;
        log_builder_event(builder, thread, 1 + i % 4, address, size,
                          stacks[sample_random(&seed) % stack_count]);
        if (i % 60 == 59)
            log_builder_end_event_chunk(builder, thread);
    }
    return builder;
}
