/*
 * Events: each thread writes its own chunks, in increasing order, so the
 * log holds one ordered stream per thread.  A walk merges the streams
 * with a min-heap keyed by each stream's next order.
 *
 * Each chunk's count is loaded once, when the walk enters the chunk, so
 * a live writer adding events meanwhile changes nothing in this walk.
 * The one record a writer may take back is a thread's last event (when
 * it is compacted away): that one is read twice around a second load of
 * the count, and dropped unless it stayed put.
 */
#include "config.h"

#include "log_reader_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct cursor {
    const struct log_reader *reader;
    const struct log_event_stream *stream;
    size_t next_chunk; /* within the stream */
    const struct mdlog_chunk_header *chunk;
    uint64_t slot;
    uint64_t count;
    struct mdlog_event record;     /* the stream's next event... */
    struct log_reader_event event; /* ...as handed out */
};

static bool enter_next_chunk(struct cursor *cursor)
{
    if (cursor->next_chunk == cursor->stream->length)
        return false;
    const struct log_index *index = &cursor->reader->index;
    uint64_t number = index->event_chunks[cursor->stream->start + cursor->next_chunk];
    cursor->next_chunk++;
    cursor->chunk = log_reader_chunk(cursor->reader, number);
    cursor->count = log_reader_count(cursor->chunk,
                                     log_reader_event_capacity(cursor->reader));
    cursor->slot = 0;
    return true;
}

/* The last event of the count loaded may be compacted away, and its slot
 * reused, while it is read: keep it only if it is still counted and
 * reads the same again. */
static bool stayed_put(const struct cursor *cursor, const struct mdlog_event *record)
{
    uint64_t count = __atomic_load_n(&cursor->chunk->count, __ATOMIC_ACQUIRE);
    struct mdlog_event again;
    memcpy(&again, record, sizeof(again));
    return count >= cursor->count &&
           memcmp(&again, &cursor->record, sizeof(again)) == 0;
}

static void decode(struct cursor *cursor)
{
    const struct mdlog_event *record = &cursor->record;
    cursor->event = (struct log_reader_event){
        .order = MDLOG_EVENT_ORDER(cursor->chunk, record),
        .address = record->address,
        .size = MDLOG_EVENT_SIZE(record),
        .stack = record->stack,
        .thread = cursor->chunk->thread,
        .type = MDLOG_EVENT_TYPE(record),
    };
}

/* Moves the cursor to its stream's next event; false at the end. */
static bool advance(struct cursor *cursor)
{
    for (;;) {
        if (cursor->slot < cursor->count) {
            const struct mdlog_event *records = log_reader_records(cursor->chunk);
            const struct mdlog_event *record = &records[cursor->slot++];
            memcpy(&cursor->record, record, sizeof(cursor->record));
            if (cursor->slot < cursor->count || stayed_put(cursor, record)) {
                decode(cursor);
                return true;
            }
            continue;
        }
        if (!enter_next_chunk(cursor))
            return false;
    }
}

/* ---- the heap of cursors ---- */

static bool comes_before(const struct cursor *a, const struct cursor *b)
{
    uint64_t x = a->event.order, y = b->event.order;
    if (x != y)
        return x < y;
    return a->stream < b->stream; /* ties only in damaged logs */
}

static void swap(struct cursor *a, struct cursor *b)
{
    struct cursor t = *a;
    *a = *b;
    *b = t;
}

static void sift_down(struct cursor *heap, size_t size, size_t at)
{
    for (;;) {
        size_t smallest = at, left = 2 * at + 1, right = left + 1;
        if (left < size && comes_before(&heap[left], &heap[smallest]))
            smallest = left;
        if (right < size && comes_before(&heap[right], &heap[smallest]))
            smallest = right;
        if (smallest == at)
            return;
        swap(&heap[at], &heap[smallest]);
        at = smallest;
    }
}

/* Places a cursor at every stream's first event; returns how many
 * streams have one. */
static size_t start_cursors(const struct log_reader *reader, struct cursor *heap)
{
    size_t size = 0;
    for (size_t i = 0; i < reader->index.stream_count; i++) {
        heap[size] = (struct cursor){.reader = reader,
                                     .stream = &reader->index.streams[i]};
        if (advance(&heap[size]))
            size++;
    }
    for (size_t i = size / 2; i-- > 0;)
        sift_down(heap, size, i);
    return size;
}

int log_reader_for_each_event(const struct log_reader *reader,
                              log_reader_event_fn *fn, void *context)
{
    struct cursor *heap = calloc(reader->index.stream_count + 1, sizeof(*heap));
    if (heap == NULL) {
        errno = ENOMEM;
        return -1;
    }
    size_t size = start_cursors(reader, heap);
    int stopped = 0;
    while (size > 0 && stopped == 0) {
        stopped = fn(&heap[0].event, context);
        if (!advance(&heap[0]))
            heap[0] = heap[--size];
        sift_down(heap, size, 0);
    }
    free(heap);
    return stopped;
}

void log_reader_count_kinds(const struct log_reader *reader,
                            uint64_t *allocations, uint64_t *frees)
{
    uint64_t capacity = log_reader_event_capacity(reader);
    *allocations = *frees = 0;
    for (size_t i = 0; i < reader->index.event_chunk_count; i++) {
        const struct mdlog_chunk_header *chunk =
            log_reader_chunk(reader, reader->index.event_chunks[i]);
        const struct mdlog_event *records = log_reader_records(chunk);
        uint64_t count = log_reader_count(chunk, capacity);
        for (uint64_t j = 0; j < count; j++) {
            unsigned kind = MDLOG_EVENT_KIND(&records[j]);
            *allocations += kind == MDLOG_EVENT_ALLOC;
            *frees += kind == MDLOG_EVENT_FREE;
        }
    }
}

uint64_t log_reader_event_count(const struct log_reader *reader)
{
    uint64_t capacity = log_reader_event_capacity(reader);
    uint64_t total = 0;
    for (size_t i = 0; i < reader->index.event_chunk_count; i++)
        total += log_reader_count(
            log_reader_chunk(reader, reader->index.event_chunks[i]), capacity);
    return total;
}
