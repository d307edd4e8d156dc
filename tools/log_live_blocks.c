/*
 * The pass that finds the blocks live at a log's end (log_live_blocks.h).
 * Every allocation is appended to one array, in log order; an address
 * table maps each live address to its entry, and a free or a replacing
 * allocation marks the entry dead.  When most entries are dead, the live
 * ones are packed to the front and the table rebuilt: the array stays
 * within about twice the live set, in memory already touched, however
 * long the log.  At the end the live entries are packed, still in log
 * order: for a heap that grew, a few runs of ascending addresses (one
 * per region), which the sort puts in place moving each entry once or
 * twice.
 *
 * With millions of blocks live, each table access misses the cache: the
 * events wait a few turns in a queue while their slot is fetched, and a
 * free's entry is fetched once its slot has arrived, so the misses of
 * many events overlap.
 */
#include "config.h"

#include "address_table.h"
#include "big_array.h"
#include "log_live_blocks.h"
#include "sorted_runs.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define DEAD UINT32_MAX
#define QUEUE 16                /* a power of two */
#define FETCH_ENTRY (QUEUE / 2) /* turns after its slot, a free's entry */
#define MOST_ALLOCATIONS (UINT32_MAX - 1)
#define PACK_FROM 65536 /* entries: below, packing is not worth a pass */

struct live_pass {
    struct address_table table;
    struct log_live_blocks *live;
    struct log_reader_event queue[QUEUE];
    size_t queued; /* events ever queued */
    bool out_of_memory, too_many;
};

static bool is_kind(const struct log_reader_event *event, unsigned kind)
{
    return (event->type & MDLOG_EVENT_KIND_MASK) == kind;
}

static uint64_t block_address(const void *context, uint32_t entry)
{
    const struct log_live_blocks *live = context;
    return live->blocks[entry].address;
}

static bool make_room(struct log_live_blocks *live)
{
    if (live->count < live->capacity)
        return true;
    size_t capacity = live->capacity * 2 + 4096;
    struct heap_block *grown = big_array_resize(
        live->blocks, live->capacity * sizeof(*grown), capacity * sizeof(*grown));
    if (grown == NULL)
        return false;
    live->blocks = grown;
    live->capacity = capacity;
    return true;
}

/* Keeps the live entries, in the order they came. */
static void pack(struct log_live_blocks *live)
{
    size_t kept = 0;
    for (size_t i = 0; i < live->count; i++)
        if (live->blocks[i].zone != DEAD)
            live->blocks[kept++] = live->blocks[i];
    live->count = kept;
}

static void pack_when_mostly_dead(struct live_pass *pass)
{
    struct log_live_blocks *live = pass->live;
    if (live->count < PACK_FROM || live->count < 2 * pass->table.count)
        return;
    pack(live);
    address_table_clear(&pass->table);
    for (uint32_t i = 0; i < live->count; i++) {
        uint32_t previous;
        if (!address_table_put(&pass->table, live->blocks[i].address, i, &previous))
            pass->out_of_memory = true;
    }
}

static void allocated(struct live_pass *pass, const struct log_reader_event *event)
{
    struct log_live_blocks *live = pass->live;
    if (live->count == MOST_ALLOCATIONS) {
        pass->too_many = true;
        return;
    }
    pack_when_mostly_dead(pass);
    uint32_t index = (uint32_t)live->count, previous;
    if (pass->out_of_memory || !make_room(live) ||
        !address_table_put(&pass->table, event->address, index, &previous)) {
        pass->out_of_memory = true;
        return;
    }
    live->blocks[live->count++] =
        (struct heap_block){event->address, event->size, event->stack, 0};
    if (previous != ADDRESS_TABLE_NONE) {
        live->blocks[previous].zone = DEAD;
        live->replaced++;
    }
}

static void freed(struct live_pass *pass, const struct log_reader_event *event)
{
    uint32_t index;
    if (event->address == 0 && (event->type & MDLOG_EVENT_REALLOC))
        return;
    if (address_table_take(&pass->table, event->address, &index))
        pass->live->blocks[index].zone = DEAD;
    else
        pass->live->unknown_frees++;
}

static void replay(struct live_pass *pass, const struct log_reader_event *event)
{
    if (is_kind(event, MDLOG_EVENT_ALLOC))
        allocated(pass, event);
    else if (is_kind(event, MDLOG_EVENT_FREE))
        freed(pass, event);
}

static void fetch_entry(const struct live_pass *pass,
                        const struct log_reader_event *event)
{
    if (!is_kind(event, MDLOG_EVENT_FREE))
        return;
    uint32_t index = address_table_guess(&pass->table, event->address);
    if (index != ADDRESS_TABLE_NONE)
        __builtin_prefetch(&pass->live->blocks[index], 1);
}

static int queue_event(const struct log_reader_event *event, void *context)
{
    struct live_pass *pass = context;
    if (pass->queued >= QUEUE)
        replay(pass, &pass->queue[pass->queued % QUEUE]);
    pass->queue[pass->queued % QUEUE] = *event;
    address_table_fetch(&pass->table, event->address);
    if (pass->queued >= FETCH_ENTRY)
        fetch_entry(pass, &pass->queue[(pass->queued - FETCH_ENTRY) % QUEUE]);
    pass->queued++;
    return pass->out_of_memory || pass->too_many;
}

static void drain(struct live_pass *pass)
{
    size_t first = pass->queued > QUEUE ? pass->queued - QUEUE : 0;
    for (size_t i = first; i < pass->queued && !pass->out_of_memory &&
                           !pass->too_many; i++)
        replay(pass, &pass->queue[i % QUEUE]);
}

static int failed(struct live_pass *pass, char *message, size_t message_size,
                  uint64_t events)
{
    if (pass->too_many)
        snprintf(message, message_size,
                 "the log holds more allocations than can be followed "
                 "(at most 4294967294): record a shorter run");
    else
        snprintf(message, message_size,
                 "out of memory following the live blocks of the log's %"
                 PRIu64 " events: free memory or record a shorter run", events);
    log_live_blocks_free(pass->live);
    return -1;
}

int log_live_blocks_find(const struct log_reader *reader,
                         struct log_live_blocks *live, char *message,
                         size_t message_size)
{
    memset(live, 0, sizeof(*live));
    uint64_t events = log_reader_event_count(reader);
    struct live_pass pass = {.live = live};
    /* Sized for the blocks the counts leave live at the end: a heap that
     * only grew needs no table but its last, which saves building and
     * zeroing the smaller ones; a churning log starts small. */
    uint64_t allocations, frees;
    log_reader_count_kinds(reader, &allocations, &frees);
    size_t expected = allocations > frees ? (size_t)(allocations - frees) : 0;
    /* Room for those blocks and for a churning log's dead entries until
     * the first packing; make_room adds more when needed.  Room for every
     * event would be address space as big as the log, which a limit on
     * it, or the kernel's overcommit check for a log bigger than memory,
     * refuses. */
    live->capacity = (expected + PACK_FROM < events ? expected + PACK_FROM : events) + 1;
    live->blocks = big_array_alloc(live->capacity * sizeof(*live->blocks));
    if (live->blocks == NULL || !address_table_init(&pass.table, expected, block_address, live)) {
        live->capacity = live->blocks ? live->capacity : 0;
        pass.out_of_memory = true;
        return failed(&pass, message, message_size, events);
    }
    if (log_reader_for_each_event(reader, queue_event, &pass) == -1)
        pass.out_of_memory = true;
    drain(&pass);
    address_table_release(&pass.table);
    if (pass.out_of_memory || pass.too_many)
        return failed(&pass, message, message_size, events);
    pack(live);
    for (size_t i = 0; i < live->count; i++)
        live->bytes += live->blocks[i].size;
    if (sort_by_address(live->blocks, live->count, sizeof(*live->blocks)) != 0) {
        pass.out_of_memory = true;
        return failed(&pass, message, message_size, events);
    }
    return 0;
}

void log_live_blocks_free(struct log_live_blocks *live)
{
    big_array_free(live->blocks, live->capacity * sizeof(*live->blocks));
    memset(live, 0, sizeof(*live));
}
