/*
 * Reading a stack log (include/mallocdebug/stack_log.h), the record that
 * libmallocdebug.so writes under MallocStackLogging, for the heap, leaks
 * and malloc_history tools.
 *
 * The reader maps the log read-only and shared, so a log still being
 * written can be read, and refreshed as it grows.  Everything it takes
 * from the file is checked before use: a damaged or hostile file gives a
 * message or missing records, never a crash or an endless loop.
 *
 * A reader is not safe to use from two threads at once.  Pointers it
 * returns into the log (log_reader_node) stay valid until the next
 * log_reader_refresh or log_reader_close.
 */
#ifndef MALLOCDEBUG_LOG_READER_H
#define MALLOCDEBUG_LOG_READER_H

#include <mallocdebug/stack_log.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct log_reader;

/* ---- opening ---- */

/* Opens and checks the log at `path`.  On failure returns NULL and writes
 * one line (no newline) into `message`: what is wrong and what to do.
 * On success `message` is set to "".  `message` may be NULL. */
struct log_reader *log_reader_open(const char *path, char *message,
                                   size_t message_size);

/* Opens the log of the running process `pid`: the file it maps whose name
 * is MDLOG_FILE_PREFIX "<pid>." ... MDLOG_FILE_SUFFIX, wherever it is,
 * else such a file in MDLOG_DEFAULT_DIRECTORY. */
struct log_reader *log_reader_open_pid(pid_t pid, char *message,
                                       size_t message_size);

/* The same, but NULL with an empty message when the process records no
 * stacks: for a tool that does without them. */
struct log_reader *log_reader_open_pid_if_recording(pid_t pid, char *message,
                                                    size_t message_size);

/* When `spec` is the id of a process that no longer runs, and it left a
 * log in MDLOG_DEFAULT_DIRECTORY (it crashed, or kept its log), the
 * newest such log's path, into `path`. */
bool log_reader_left_by_pid(const char *spec, char *path, size_t size);

void log_reader_close(struct log_reader *reader);

/* Takes in what a live log wrote since the last open or refresh.
 * Returns 1 when new chunks were mapped, 0 when none, or -1 with a
 * message when the log can no longer be read (the reader then keeps what
 * it had, except after "the file shrank": a file cut short under its
 * mapping faults when read, so close the reader).  Invalidates pointers
 * into the log. */
int log_reader_refresh(struct log_reader *reader, char *message,
                       size_t message_size);

/* A copy of the header taken at the last open or refresh; `executable`
 * is NUL-terminated, `chunk_count` is what the header said. */
const struct mdlog_header *log_reader_header(const struct log_reader *reader);
const char *log_reader_path(const struct log_reader *reader);

/* Why a log may hold less than its header promises. */
enum log_reader_warning {
    /* The file ends before the last chunk the header lists (a copy cut
     * short, a full disk): only the complete chunks are read. */
    LOG_READER_TRUNCATED = 1u << 0,
    /* Chunks whose header the writer had not finished: skipped until a
     * refresh finds them finished. */
    LOG_READER_UNFINISHED_CHUNKS = 1u << 1,
    /* An event chunk whose bytes stop making whole events of a kind the
     * format knows: its events from there on are skipped by walks and
     * counts. */
    LOG_READER_DAMAGED_EVENTS = 1u << 2,
};
unsigned log_reader_warnings(const struct log_reader *reader);
/* One line describing the warnings, "" when there are none.  Returns the
 * length of the full line (as snprintf does). */
size_t log_reader_warning_text(const struct log_reader *reader, char *buffer,
                               size_t size);
/* "PROGRAM: warning: TEXT" on `stream` when the log holds less than it
 * should (truncated, chunks its writer never finished, or damaged
 * events); nothing for chunks a running writer is still setting up. */
void log_reader_print_warnings(const struct log_reader *reader, FILE *stream,
                               const char *program);
/* The same for a tool that reads no events: they are not looked at (a
 * running process's log may hold billions of them). */
void log_reader_print_chunk_warnings(const struct log_reader *reader,
                                     FILE *stream, const char *program);

/* Chunks read (complete, published and within the file). */
uint64_t log_reader_chunk_count(const struct log_reader *reader);

/* ---- stacks ---- */

/* The stack node `id`, or NULL when there is no such node, it is not
 * written yet, or its links are impossible (a frame whose parent is 0 or
 * not smaller than its own id, a thread node with a parent). */
const struct mdlog_stack_node *log_reader_node(const struct log_reader *reader,
                                               uint32_t id);

/* The frames of stack `stack`, innermost first, without its thread node:
 * their return addresses into `pcs` and, unless it is NULL, their module
 * indexes into `modules`.  Writes at most `max` and MDLOG_MAX_FRAMES
 * frames and stops early at a node that cannot be read.  Returns how many
 * it wrote. */
size_t log_reader_stack_frames(const struct log_reader *reader, uint32_t stack,
                               uint64_t *pcs, uint32_t *modules, size_t max);

/* The id of the thread that took stack `stack`, from its thread node.
 * False when the stack does not lead to a readable thread node. */
bool log_reader_stack_thread(const struct log_reader *reader, uint32_t stack,
                             uint32_t *thread);

/* ---- events ---- */

/* An event as the walk hands it out: the record, with the order and
 * thread its chunk gives it. */
struct log_reader_event {
    uint64_t order;
    uint64_t address;
    uint64_t size;
    uint32_t stack;  /* stack node id, 0 when none */
    uint32_t thread; /* the recording thread's id */
    unsigned type;   /* enum mdlog_event_kind and MDLOG_EVENT_* flags */
};

/* Called with each event; a non-zero return stops the walk. */
typedef int log_reader_event_fn(const struct log_reader_event *event,
                                void *context);

/* Calls `fn` on every event recorded, in increasing order.  Returns 0
 * after the last one, the callback's value when it stopped the walk, or
 * -1 (errno ENOMEM) when memory for the walk ran out. */
int log_reader_for_each_event(const struct log_reader *reader,
                              log_reader_event_fn *fn, void *context);

/* Events recorded in the chunks read. */
uint64_t log_reader_event_count(const struct log_reader *reader);
/* Bytes of events skipped as damaged (LOG_READER_DAMAGED_EVENTS): from
 * a damaged event to the end of its chunk. */
uint64_t log_reader_damaged_bytes(const struct log_reader *reader);

/* How many of those are allocations and frees (realloc halves
 * included), counted chunk by chunk without ordering them: a quick look
 * for sizing what a walk will build. */
void log_reader_count_kinds(const struct log_reader *reader,
                            uint64_t *allocations, uint64_t *frees);

/* ---- modules ---- */

/* One more than the highest module index recorded. */
uint32_t log_reader_module_count(const struct log_reader *reader);

/* Copies module `index` into `module`, its path NUL-terminated and its
 * build id size at most MDLOG_BUILD_ID_MAX.  False when there is none. */
bool log_reader_module(const struct log_reader *reader, uint32_t index,
                       struct mdlog_module *module);

/* The index of the module that held address `pc` when the event of order
 * `order` was recorded (UINT64_MAX: the module there now), or
 * MDLOG_MODULE_UNKNOWN.  A stack node's own `module` field says this for
 * its frame; this is for addresses found elsewhere. */
uint32_t log_reader_module_for_pc(const struct log_reader *reader, uint64_t pc,
                                  uint64_t order);

#endif
