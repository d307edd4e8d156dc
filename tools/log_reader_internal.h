/*
 * What the log reader's files share: the reader itself, the index of its
 * chunks, and the few ways of touching the mapping that are safe while
 * the writer goes on writing.
 */
#ifndef MALLOCDEBUG_LOG_READER_INTERNAL_H
#define MALLOCDEBUG_LOG_READER_INTERNAL_H

#include "log_reader.h"
#include "tool_say.h"

/* A chunk of numbered records (stack nodes, modules): the number of its
 * first record and where it is in the file. */
struct log_chunk_ref {
    uint64_t first;
    uint64_t chunk;
};

/* One thread's event chunks, in file order: a run of event_chunks. */
struct log_event_stream {
    size_t start;
    size_t length;
};

/* Where each kind of record is, built from the chunk headers. */
struct log_index {
    struct log_chunk_ref *stacks; /* sorted by first */
    size_t stack_chunks;
    struct log_chunk_ref *modules; /* sorted by first */
    size_t module_chunks;
    uint64_t *event_chunks; /* chunk numbers, grouped by stream */
    size_t event_chunk_count;
    struct log_event_stream *streams;
    size_t stream_count;
    uint64_t unfinished_chunks; /* kind 0: still being set up */
};

/* What the event chunks hold, event by event as a walk reads them. */
struct log_event_tally {
    uint64_t events, allocations, frees;
    uint64_t damaged; /* bytes from a damaged event to its chunk's end */
};

struct log_reader {
    char *path;
    int fd;
    const unsigned char *map;
    size_t map_size;
    struct mdlog_header header; /* the last copy, checked */
    uint64_t chunks;            /* chunks mapped and indexed */
    bool truncated;
    /* The header says running and its process is there. */
    bool live;
    /* Events at this order or later are left out of walks: the floor the
     * reader raised while its process runs (log_reader_open.c), else
     * none are. */
    uint64_t order_limit;
    struct log_index index;
    /* The last tally of the event chunks, and what their counts were
     * then (log_reader_events.c): a cache, made again when a count
     * changed, since counts that grow in place need no refresh. */
    struct log_event_tally tally;
    uint64_t tally_counts;
    bool tally_known;
};

/* ---- the header (log_reader_header.c) ---- */
/* Checks a header read from a file of `file_size` bytes (`header` holds
 * the file's first bytes, zero past its end).  False with a message when
 * the log cannot be read. */
bool log_reader_check_header(const struct mdlog_header *header,
                             uint64_t file_size, const char *path,
                             char *message, size_t size);
/* Complete chunks in a file of `file_size` bytes. */
uint64_t log_reader_chunks_in_file(const struct mdlog_header *header,
                                   uint64_t file_size);

/* ---- the index (log_reader_index.c) ---- */
/* Reads the headers of the first `chunks` chunks of `reader`'s mapping
 * into `index`.  False with a message when one is impossible. */
bool log_index_build(const struct log_reader *reader, uint64_t chunks,
                     struct log_index *index, char *message, size_t size);
void log_index_free(struct log_index *index);
/* The chunk whose first record is the greatest not above `number`, or
 * NULL. */
const struct log_chunk_ref *log_index_find(const struct log_chunk_ref *refs,
                                           size_t count, uint64_t number);

/* ---- the mapping ---- */
static inline const struct mdlog_chunk_header *
log_reader_chunk(const struct log_reader *reader, uint64_t chunk)
{
    return (const void *)(reader->map + reader->header.header_size +
                          chunk * reader->header.chunk_size);
}

/* The records (or event bytes) after a chunk's header. */
static inline const void *log_reader_records(const struct mdlog_chunk_header *chunk)
{
    return chunk + 1;
}

/* A chunk's count (records, or bytes of events) as published now, never above what it holds.
 * The acquire load orders it before the reads of the records it counts. */
static inline uint64_t log_reader_count(const struct mdlog_chunk_header *chunk,
                                        uint64_t capacity)
{
    uint64_t count = __atomic_load_n(&chunk->count, __ATOMIC_ACQUIRE);
    return count < capacity ? count : capacity;
}

static inline uint64_t log_reader_node_capacity(const struct log_reader *reader)
{
    return MDLOG_CHUNK_RECORDS(reader->header.chunk_size, struct mdlog_stack_node);
}

/* Bytes of events in a chunk. */
static inline uint64_t log_reader_event_capacity(const struct log_reader *reader)
{
    return MDLOG_CHUNK_EVENT_BYTES(reader->header.chunk_size);
}

static inline uint64_t log_reader_module_capacity(const struct log_reader *reader)
{
    return MDLOG_CHUNK_RECORDS(reader->header.chunk_size, struct mdlog_module);
}

#endif
