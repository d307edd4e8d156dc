/*
 * The index of a log's chunks: which chunks hold which stack nodes and
 * modules, and each thread's event chunks in order.  Every chunk header
 * is read once, into a snapshot, so that a live writer finishing a chunk
 * meanwhile cannot make two passes disagree; whatever a chunk header
 * claims is checked against what the chunk can hold.
 */
#include "config.h"

#include "log_reader_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define DAMAGED "the log is damaged; record the program again"

/* Stack node ids and module indexes are 32-bit numbers; module indexes
 * stop below the MDLOG_MODULE_* markers. */
#define NODE_ID_LIMIT (UINT64_C(1) << 32)
#define MODULE_INDEX_LIMIT ((uint64_t)MDLOG_MODULE_THREAD)

struct chunk_snapshot {
    uint32_t kind;
    uint32_t thread;
    uint64_t first;
    uint64_t count;
};

struct kind_rule {
    const char *units; /* what the count counts */
    uint64_t capacity;
    uint64_t number_limit; /* first + count stays within; 0: not numbered */
};

static bool kind_rule(const struct log_reader *reader, uint32_t kind,
                      struct kind_rule *rule)
{
    switch (kind) {
    case MDLOG_CHUNK_STACKS:
        *rule = (struct kind_rule){"stack node records",
                                   log_reader_node_capacity(reader),
                                   NODE_ID_LIMIT};
        return true;
    case MDLOG_CHUNK_EVENTS:
        *rule = (struct kind_rule){"bytes of events",
                                   log_reader_event_capacity(reader), 0};
        return true;
    case MDLOG_CHUNK_MODULES:
        *rule = (struct kind_rule){"module records",
                                   log_reader_module_capacity(reader),
                                   MODULE_INDEX_LIMIT};
        return true;
    default:
        return false;
    }
}

static void take_snapshot(const struct log_reader *reader, uint64_t number,
                          struct chunk_snapshot *snapshot)
{
    const struct mdlog_chunk_header *chunk = log_reader_chunk(reader, number);
    /* The kind is set last: once it is, the rest of the header is. */
    snapshot->kind = __atomic_load_n(&chunk->kind, __ATOMIC_ACQUIRE);
    snapshot->thread = chunk->thread;
    snapshot->first = chunk->first;
    snapshot->count = __atomic_load_n(&chunk->count, __ATOMIC_ACQUIRE);
}

static bool check_chunk(const struct log_reader *reader, uint64_t number,
                        const struct chunk_snapshot *snapshot, char *message,
                        size_t size)
{
    unsigned long long n = number;
    if (snapshot->kind == 0 || snapshot->kind == MDLOG_CHUNK_UNUSED)
        return true;
    struct kind_rule rule;
    if (!kind_rule(reader, snapshot->kind, &rule)) {
        tool_say(message, size, "%s: chunk %llu has unknown kind %u; " DAMAGED,
                 reader->path, n, snapshot->kind);
        return false;
    }
    if (snapshot->count > rule.capacity) {
        tool_say(message, size,
                 "%s: chunk %llu claims %llu %s but holds at most %llu; "
                 DAMAGED, reader->path, n, (unsigned long long)snapshot->count,
                 rule.units, (unsigned long long)rule.capacity);
        return false;
    }
    if (rule.number_limit != 0 &&
        (snapshot->first >= rule.number_limit ||
         snapshot->count > rule.number_limit - snapshot->first)) {
        tool_say(message, size,
                 "%s: chunk %llu numbers its %s from %llu, beyond "
                 "their range; " DAMAGED, reader->path, n, rule.units,
                 (unsigned long long)snapshot->first);
        return false;
    }
    return true;
}

static int compare_refs(const void *a, const void *b)
{
    const struct log_chunk_ref *x = a, *y = b;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

/* Sorted chunks of numbered records must not claim the same number. */
static bool check_no_overlap(const struct log_reader *reader,
                             const struct log_chunk_ref *refs, size_t count,
                             const struct chunk_snapshot *snapshots,
                             const char *records, char *message, size_t size)
{
    for (size_t i = 1; i < count; i++) {
        const struct log_chunk_ref *low = &refs[i - 1], *high = &refs[i];
        if (low->first + snapshots[low->chunk].count <= high->first)
            continue;
        tool_say(message, size,
                 "%s: chunks %llu and %llu both hold %s %llu; " DAMAGED,
                 reader->path, (unsigned long long)low->chunk,
                 (unsigned long long)high->chunk, records,
                 (unsigned long long)high->first);
        return false;
    }
    return true;
}

/* Modules are numbered from 0 with no gap wider than a chunk, so that
 * their count, and any walk over their indexes, stays within the file. */
static bool check_dense(const struct log_reader *reader,
                        const struct log_chunk_ref *refs, size_t count,
                        uint64_t capacity, char *message, size_t size)
{
    for (size_t i = 0; i < count; i++) {
        uint64_t limit = i == 0 ? 0 : refs[i - 1].first + capacity;
        if (refs[i].first <= limit)
            continue;
        tool_say(message, size,
                 "%s: chunk %llu numbers its modules from %llu, leaving a "
                 "gap; " DAMAGED, reader->path,
                 (unsigned long long)refs[i].chunk,
                 (unsigned long long)refs[i].first);
        return false;
    }
    return true;
}

struct event_chunk {
    uint32_t thread;
    uint64_t chunk;
};

static int compare_event_chunks(const void *a, const void *b)
{
    const struct event_chunk *x = a, *y = b;
    if (x->thread != y->thread)
        return x->thread < y->thread ? -1 : 1;
    return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

/* Each thread's chunks follow each other in file order: sorting by
 * thread, then by place, gives each thread's stream as one run. */
static bool build_streams(struct log_index *index, struct event_chunk *chunks)
{
    qsort(chunks, index->event_chunk_count, sizeof(*chunks), compare_event_chunks);
    index->streams = calloc(index->event_chunk_count + 1, sizeof(*index->streams));
    if (index->streams == NULL)
        return false;
    for (size_t i = 0; i < index->event_chunk_count; i++) {
        index->event_chunks[i] = chunks[i].chunk;
        if (i == 0 || chunks[i].thread != chunks[i - 1].thread)
            index->streams[index->stream_count++].start = i;
        index->streams[index->stream_count - 1].length++;
    }
    return true;
}

static void count_kinds(const struct chunk_snapshot *snapshots, uint64_t chunks,
                        struct log_index *index)
{
    for (uint64_t i = 0; i < chunks; i++) {
        index->stack_chunks += snapshots[i].kind == MDLOG_CHUNK_STACKS;
        index->module_chunks += snapshots[i].kind == MDLOG_CHUNK_MODULES;
        index->event_chunk_count += snapshots[i].kind == MDLOG_CHUNK_EVENTS;
        index->unfinished_chunks += snapshots[i].kind == 0;
    }
}

static bool allocate(struct log_index *index, struct event_chunk **events)
{
    /* One spare element each: calloc(0) may return NULL. */
    index->stacks = calloc(index->stack_chunks + 1, sizeof(*index->stacks));
    index->modules = calloc(index->module_chunks + 1, sizeof(*index->modules));
    index->event_chunks = calloc(index->event_chunk_count + 1,
                                 sizeof(*index->event_chunks));
    *events = calloc(index->event_chunk_count + 1, sizeof(**events));
    return index->stacks && index->modules && index->event_chunks && *events;
}

static void fill(const struct chunk_snapshot *snapshots, uint64_t chunks,
                 struct log_index *index, struct event_chunk *events)
{
    size_t stacks = 0, modules = 0, event_chunks = 0;
    for (uint64_t i = 0; i < chunks; i++) {
        const struct chunk_snapshot *s = &snapshots[i];
        if (s->kind == MDLOG_CHUNK_STACKS)
            index->stacks[stacks++] = (struct log_chunk_ref){s->first, i};
        else if (s->kind == MDLOG_CHUNK_MODULES)
            index->modules[modules++] = (struct log_chunk_ref){s->first, i};
        else if (s->kind == MDLOG_CHUNK_EVENTS)
            events[event_chunks++] = (struct event_chunk){s->thread, i};
    }
    qsort(index->stacks, stacks, sizeof(*index->stacks), compare_refs);
    qsort(index->modules, modules, sizeof(*index->modules), compare_refs);
}

static bool out_of_memory(const struct log_reader *reader, uint64_t chunks,
                          char *message, size_t size)
{
    tool_say(message, size, "%s: out of memory indexing %llu chunks",
             reader->path, (unsigned long long)chunks);
    return false;
}

static bool index_snapshots(const struct log_reader *reader,
                            const struct chunk_snapshot *snapshots,
                            uint64_t chunks, struct log_index *index,
                            char *message, size_t size)
{
    for (uint64_t i = 0; i < chunks; i++)
        if (!check_chunk(reader, i, &snapshots[i], message, size))
            return false;
    count_kinds(snapshots, chunks, index);
    struct event_chunk *events = NULL;
    bool built = allocate(index, &events);
    if (built) {
        fill(snapshots, chunks, index, events);
        built = build_streams(index, events);
    }
    free(events);
    if (!built)
        return out_of_memory(reader, chunks, message, size);
    return check_no_overlap(reader, index->stacks, index->stack_chunks, snapshots,
                            "stack node", message, size) &&
           check_no_overlap(reader, index->modules, index->module_chunks,
                            snapshots, "module", message, size) &&
           check_dense(reader, index->modules, index->module_chunks,
                       log_reader_module_capacity(reader), message, size);
}

/* The first chunk from `number` on whose header is not in a hole of the
 * file, or `chunks`.  A damaged header may count a million chunks in a
 * file that is nearly all holes: reading each header through the
 * mapping would fault a page in for each, and in /dev/shm give the file
 * memory.  A hole's header reads as zeros, a chunk not yet begun. */
static uint64_t next_chunk_with_data(const struct log_reader *reader,
                                     uint64_t number, uint64_t chunks)
{
    const uint64_t header_size = reader->header.header_size;
    const uint64_t chunk_size = reader->header.chunk_size;
    off_t start = (off_t)(header_size + number * chunk_size);
    off_t data = lseek(reader->fd, start, SEEK_DATA);
    if (data < 0)
        return errno == ENXIO ? chunks : number; /* else: read them all */
    if ((uint64_t)data < (uint64_t)start + sizeof(struct mdlog_chunk_header))
        return number;
    uint64_t next = ((uint64_t)data - header_size) / chunk_size;
    return next < chunks ? next : chunks;
}

bool log_index_build(const struct log_reader *reader, uint64_t chunks,
                     struct log_index *index, char *message, size_t size)
{
    *index = (struct log_index){0};
    struct chunk_snapshot *snapshots = calloc(chunks + 1, sizeof(*snapshots));
    if (snapshots == NULL)
        return out_of_memory(reader, chunks, message, size);
    for (uint64_t i = next_chunk_with_data(reader, 0, chunks); i < chunks;) {
        take_snapshot(reader, i, &snapshots[i]);
        i = next_chunk_with_data(reader, i + 1, chunks);
    }
    bool built = index_snapshots(reader, snapshots, chunks, index, message, size);
    free(snapshots);
    if (!built)
        log_index_free(index);
    return built;
}

void log_index_free(struct log_index *index)
{
    free(index->stacks);
    free(index->modules);
    free(index->event_chunks);
    free(index->streams);
    *index = (struct log_index){0};
}

const struct log_chunk_ref *log_index_find(const struct log_chunk_ref *refs,
                                           size_t count, uint64_t number)
{
    /* Binary search for the last ref whose first is <= number. */
    size_t low = 0, high = count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (refs[middle].first <= number)
            low = middle + 1;
        else
            high = middle;
    }
    return low == 0 ? NULL : &refs[low - 1];
}
