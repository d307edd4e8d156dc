/*
 * Events: each thread writes its own chunks, in increasing order, so the
 * log holds one ordered stream per thread.  A walk merges the streams
 * with a min-heap keyed by each stream's next order.
 *
 * Each chunk's count is loaded once, when the walk enters the chunk, so
 * a live writer adding events meanwhile changes nothing in this walk.
 * A writer may take back a thread's last events (when they are compacted
 * away) and write others in their bytes: the chunk's taken_back count
 * tells the walk when that happened while it read.
 *
 * While the process runs, the walk leaves out the events ordered at or
 * above the floor the reader raised when it read the log (before the
 * chunks were counted), so that it sees one moment of the process.
 * Counts loaded one chunk at a time, later and later, would take in a
 * block's reuse by one thread and leave out its free by another, written
 * just after the first count was loaded.  An event that depends on
 * another is recorded after the other was written, so if the other was
 * not there when its chunk was counted, the floor was raised before the
 * event read it, and it is left out too.  (C11's acquire and release
 * alone do not promise that the event's thread sees the raise; the
 * processors do, on x86 and ARMv8, where a store one processor sees is
 * seen by all.)  The exception is the free half
 * of a realloc, mremap or munmap in flight, whose order is taken before
 * the call and which is written after it: its block may then show in
 * both its old owner and its new one.
 *
 * Threads' orders are counted apart and only a block's events, or a
 * region's, are linked: two events that nothing links may share an
 * order, and the walk then takes the earlier stream's first.
 */
#include "config.h"

#include "log_reader_internal.h"

#include <errno.h>
#include <stdlib.h>

struct cursor {
    const struct log_reader *reader;
    const struct log_event_stream *stream;
    size_t next_chunk; /* within the stream */
    const struct mdlog_chunk_header *chunk;
    uint64_t at;    /* the next event's first byte in the chunk */
    uint64_t count; /* where the walk of this chunk ends */
    struct mdlog_event_base base; /* what the next event is written against */
    /* The chunk's taken_back, and its count loaded just after: bytes
     * below that count less MDLOG_EVENT_MAX_SIZE per event taken back
     * since were not rewritten. */
    uint64_t taken_back;
    uint64_t taken_back_count;
    struct log_reader_event event; /* the stream's next event */
};

static bool enter_next_chunk(struct cursor *cursor)
{
    if (cursor->next_chunk == cursor->stream->length)
        return false;
    const struct log_index *index = &cursor->reader->index;
    uint64_t number = index->event_chunks[cursor->stream->start + cursor->next_chunk];
    cursor->next_chunk++;
    cursor->chunk = log_reader_chunk(cursor->reader, number);
    cursor->taken_back = __atomic_load_n(&cursor->chunk->taken_back,
                                         __ATOMIC_ACQUIRE);
    cursor->count = log_reader_count(cursor->chunk,
                                     log_reader_event_capacity(cursor->reader));
    cursor->taken_back_count = cursor->count;
    cursor->at = 0;
    cursor->base = mdlog_event_chunk_base(cursor->chunk->first);
    return true;
}

/* Reads of one event that a writer taking events back may interrupt
 * before the walk leaves the rest of the chunk out: a thread freeing
 * what it just allocated, in a loop, takes one back every few dozen
 * nanoseconds. */
#define READS_WHILE_TAKEN_BACK 8

/* Whether the `length` bytes at the cursor were not rewritten while
 * read, though the writer took events back `taken_back` times in all:
 * each took back at most MDLOG_EVENT_MAX_SIZE bytes from the end, so
 * those far enough below the count loaded with the last taken_back seen
 * stayed. */
static bool stayed(const struct cursor *cursor, unsigned length,
                   uint64_t taken_back)
{
    uint64_t taken = taken_back - cursor->taken_back;
    uint64_t end = cursor->at + (length ? length : MDLOG_EVENT_MAX_SIZE);
    return taken <= cursor->taken_back_count / MDLOG_EVENT_MAX_SIZE &&
           end + MDLOG_EVENT_MAX_SIZE * taken <= cursor->taken_back_count;
}

static void hand_out(struct cursor *cursor, const struct mdlog_event *event)
{
    cursor->event = (struct log_reader_event){
        .order = event->order,
        .address = event->address,
        .size = event->size,
        .stack = event->stack,
        .thread = cursor->chunk->thread,
        .type = event->type,
    };
}

/* Reads the event at the cursor and moves past it; false when there is
 * none to hand out there.  If the writer took events back while it was
 * read, its bytes may have been rewritten under the read: the count is
 * loaded again, and what it still holds read again.  A damaged event
 * ends the walk of its chunk: the events after it cannot be told apart. */
static bool read_event(struct cursor *cursor)
{
    const unsigned char *bytes = log_reader_records(cursor->chunk);
    for (unsigned reads = 0;; reads++) {
        struct mdlog_event_base base = cursor->base;
        struct mdlog_event event;
        unsigned length = mdlog_event_decode(bytes + cursor->at,
                                             cursor->count - cursor->at,
                                             &base, &event);
        /* After the read; and before the count loaded below. */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        uint64_t taken_back = __atomic_load_n(&cursor->chunk->taken_back,
                                              __ATOMIC_ACQUIRE);
        bool sound = taken_back == cursor->taken_back ||
                     stayed(cursor, length, taken_back);
        if (taken_back != cursor->taken_back) {
            cursor->taken_back = taken_back;
            cursor->taken_back_count = log_reader_count(
                cursor->chunk, log_reader_event_capacity(cursor->reader));
            if (cursor->taken_back_count < cursor->count)
                cursor->count = cursor->taken_back_count;
        }
        if (sound && length != 0) {
            cursor->at += length;
            cursor->base = base;
            hand_out(cursor, &event);
            return true;
        }
        if (sound || cursor->at >= cursor->count ||
            reads == READS_WHILE_TAKEN_BACK) {
            cursor->count = cursor->at;
            return false;
        }
    }
}

/* Moves the cursor to its stream's next event; false at the end. */
static bool advance(struct cursor *cursor)
{
    for (;;) {
        if (cursor->at < cursor->count) {
            if (read_event(cursor) &&
                cursor->event.order < cursor->reader->order_limit)
                return true;
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
    return a->stream < b->stream;
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

static void tally_chunk(const struct log_reader *reader, uint64_t number,
                        struct log_event_tally *tally)
{
    const struct mdlog_chunk_header *chunk = log_reader_chunk(reader, number);
    const unsigned char *bytes = log_reader_records(chunk);
    uint64_t taken_back = __atomic_load_n(&chunk->taken_back, __ATOMIC_ACQUIRE);
    uint64_t count = log_reader_count(chunk, log_reader_event_capacity(reader));
    struct mdlog_event_base base = mdlog_event_chunk_base(chunk->first);
    for (uint64_t at = 0; at < count;) {
        struct mdlog_event event;
        unsigned length = mdlog_event_decode(bytes + at, count - at, &base, &event);
        if (length == 0) {
            /* Not damage when a live writer took events back meanwhile:
             * what it wrote since may end past the count loaded. */
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (__atomic_load_n(&chunk->taken_back, __ATOMIC_ACQUIRE) == taken_back)
                tally->damaged += count - at;
            return;
        }
        at += length;
        if (event.order >= reader->order_limit)
            continue; /* as the walk: after the moment read */
        unsigned kind = event.type & MDLOG_EVENT_KIND_MASK;
        tally->allocations += kind == MDLOG_EVENT_ALLOC;
        tally->frees += kind == MDLOG_EVENT_FREE;
        tally->events++;
    }
}

/* A digest of every event chunk's count and taken_back: it changes
 * whenever a writer adds or takes back events. */
static uint64_t event_counts_digest(const struct log_reader *reader)
{
    uint64_t digest = reader->index.event_chunk_count;
    for (size_t i = 0; i < reader->index.event_chunk_count; i++) {
        const struct mdlog_chunk_header *chunk =
            log_reader_chunk(reader, reader->index.event_chunks[i]);
        digest = (digest ^ __atomic_load_n(&chunk->count, __ATOMIC_ACQUIRE)) *
                 0x100000001b3ULL;
        digest = (digest ^ __atomic_load_n(&chunk->taken_back, __ATOMIC_ACQUIRE)) *
                 0x100000001b3ULL;
    }
    return digest;
}

/* Every tool asks for the counts and the damage, and some for both:
 * each tally reads the whole log, so it is kept while no count changes.
 * The reader is the caller's, not const to it; the cache is no change
 * it can see. */
static struct log_event_tally tally_events(const struct log_reader *reader)
{
    struct log_reader *cache = (struct log_reader *)reader;
    uint64_t counts = event_counts_digest(reader);
    if (reader->tally_known && reader->tally_counts == counts)
        return reader->tally;
    struct log_event_tally tally = {0};
    for (size_t i = 0; i < reader->index.event_chunk_count; i++)
        tally_chunk(reader, reader->index.event_chunks[i], &tally);
    cache->tally = tally;
    cache->tally_counts = counts;
    cache->tally_known = true;
    return tally;
}

void log_reader_count_kinds(const struct log_reader *reader,
                            uint64_t *allocations, uint64_t *frees)
{
    struct log_event_tally tally = tally_events(reader);
    *allocations = tally.allocations;
    *frees = tally.frees;
}

uint64_t log_reader_event_count(const struct log_reader *reader)
{
    return tally_events(reader).events;
}

uint64_t log_reader_damaged_bytes(const struct log_reader *reader)
{
    return tally_events(reader).damaged;
}
