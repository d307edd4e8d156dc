/*
 * A log reader's life: opening a log file, checking its header, mapping
 * the chunks it lists and indexing them; refreshing a live log as it
 * grows; closing.
 */
#include "config.h"

#include "log_reader_internal.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Without blocking: a FIFO given as the log would otherwise wait for a
 * writer; it is refused as not a regular file (file_size). */
static bool open_file(struct log_reader *reader, char *message, size_t size)
{
    reader->fd = open(reader->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (reader->fd >= 0)
        return true;
    if (errno == ENOENT)
        tool_say(message, size,
                 "%s: no such file; pass the path of a stack log "
                 "(see mallocdebug_stack_log(5))", reader->path);
    else if (errno == EACCES)
        tool_say(message, size,
                 "%s: permission denied; a stack log is readable only by "
                 "the user who recorded it (mode 0600): run as that user "
                 "or as root", reader->path);
    else
        tool_say(message, size, "%s: cannot open: %s", reader->path,
                 strerror(errno));
    return false;
}

static bool file_size(const struct log_reader *reader, uint64_t *size_out,
                      char *message, size_t size)
{
    struct stat status;
    if (fstat(reader->fd, &status) != 0) {
        tool_say(message, size, "%s: cannot stat: %s", reader->path,
                 strerror(errno));
        return false;
    }
    if (!S_ISREG(status.st_mode)) {
        tool_say(message, size,
                 "%s: not a regular file; pass a stack log file",
                 reader->path);
        return false;
    }
    *size_out = (uint64_t)status.st_size;
    return true;
}

/* The header as the file holds it, zero past the file's end. */
static bool read_header(const struct log_reader *reader,
                        struct mdlog_header *header, char *message, size_t size)
{
    memset(header, 0, sizeof(*header));
    size_t done = 0;
    while (done < sizeof(*header)) {
        ssize_t n = pread(reader->fd, (char *)header + done,
                          sizeof(*header) - done, (off_t)done);
        if (n == 0)
            break;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            tool_say(message, size, "%s: cannot read: %s", reader->path,
                     strerror(errno));
            return false;
        }
        done += (size_t)n;
    }
    return true;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static size_t extent(const struct log_reader *reader, uint64_t chunks)
{
    return reader->header.header_size + chunks * reader->header.chunk_size;
}

/* Maps (or maps further) the header and the first `chunks` chunks. */
static bool map_chunks(struct log_reader *reader, uint64_t chunks,
                       char *message, size_t size)
{
    size_t bytes = extent(reader, chunks);
    if (reader->map != NULL && bytes == reader->map_size)
        return true;
    void *map = reader->map == NULL
                    ? mmap(NULL, bytes, PROT_READ, MAP_SHARED, reader->fd, 0)
                    : mremap((void *)reader->map, reader->map_size, bytes,
                             MREMAP_MAYMOVE);
    if (map == MAP_FAILED) {
        tool_say(message, size, "%s: cannot map %zu bytes: %s",
                 reader->path, bytes, strerror(errno));
        return false;
    }
    reader->map = map;
    reader->map_size = bytes;
    return true;
}

static bool process_exists(pid_t pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* Whether process `pid` maps a file with the inode of the one open as
 * `fd`, as the log's writer does all its life; true when its maps cannot
 * be read (another user's process), which leaves the pid alone to tell. */
static bool maps_the_file(pid_t pid, int fd)
{
    struct stat log;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    FILE *maps = fopen(path, "re");
    if (maps == NULL || fstat(fd, &log) != 0) {
        if (maps != NULL)
            fclose(maps);
        return true;
    }
    bool found = false;
    char *line = NULL;
    size_t capacity = 0;
    while (!found && getline(&line, &capacity, maps) > 0) {
        /* By inode alone: on btrfs, and on overlayfs before Linux 6.8, the
         * device the maps name is not the one stat gives for the file. */
        unsigned long long inode;
        found = sscanf(line, "%*x-%*x %*s %*x %*x:%*x %llu", &inode) == 1 &&
                inode == (unsigned long long)log.st_ino;
    }
    free(line);
    fclose(maps);
    return found;
}

/* The header says running, and its process is the one that wrote it,
 * not another that was given its pid after the writer died. */
static bool is_live(const struct log_reader *reader,
                    const struct mdlog_header *header)
{
    return header->state == MDLOG_STATE_RUNNING &&
           process_exists(header->pid) && maps_the_file(header->pid, reader->fd);
}

/*
 * The moment a live log is read at: its order floor raised by twice the
 * stride (see "Orders" in the log's header file), which every event
 * recorded before is below and every event recorded after is above.  It
 * is raised before the chunks are counted, so that an event another
 * event found in the log depends on is found too (log_reader_events.c).
 * UINT64_MAX when the tool may not write the log: its events are then
 * read as each chunk is reached.
 */
static uint64_t raise_floor(const struct log_reader *reader)
{
    struct stat reading, writing;
    int fd = open(reader->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return UINT64_MAX;
    void *page = MAP_FAILED;
    if (fstat(fd, &writing) == 0 && fstat(reader->fd, &reading) == 0 &&
        writing.st_dev == reading.st_dev && writing.st_ino == reading.st_ino)
        page = mmap(NULL, sizeof(struct mdlog_header), PROT_READ | PROT_WRITE,
                    MAP_SHARED, fd, 0);
    close(fd);
    if (page == MAP_FAILED)
        return UINT64_MAX;
    uint64_t limit = mdlog_order_moment(&((struct mdlog_header *)page)->next_order);
    munmap(page, sizeof(struct mdlog_header));
    return limit;
}

/* Keeps `header` and what it implies: the chunks read, whether the file
 * holds all the chunks the header lists, whether its writer runs, and
 * the moment read at. */
static void adopt_header(struct log_reader *reader,
                         const struct mdlog_header *header, uint64_t chunks,
                         uint64_t file_chunks, bool live, uint64_t order_limit)
{
    reader->header = *header;
    reader->header.executable[MDLOG_EXECUTABLE_MAX - 1] = '\0';
    reader->chunks = chunks;
    reader->truncated = header->chunk_count > file_chunks;
    reader->live = live;
    reader->order_limit = live ? order_limit : UINT64_MAX;
}

/* The file's size and its header, checked. */
static bool read_checked_header(struct log_reader *reader, uint64_t *bytes,
                                struct mdlog_header *header, char *message,
                                size_t size)
{
    return file_size(reader, bytes, message, size) &&
           read_header(reader, header, message, size) &&
           log_reader_check_header(header, *bytes, reader->path, message, size);
}

static bool load(struct log_reader *reader, char *message, size_t size)
{
    uint64_t bytes;
    struct mdlog_header header;
    if (!open_file(reader, message, size) ||
        !read_checked_header(reader, &bytes, &header, message, size))
        return false;
    uint64_t order_limit = UINT64_MAX;
    bool live = is_live(reader, &header);
    if (live) {
        /* The moment first, then the chunks it covers. */
        order_limit = raise_floor(reader);
        if (!read_checked_header(reader, &bytes, &header, message, size))
            return false;
    }
    uint64_t file_chunks = log_reader_chunks_in_file(&header, bytes);
    uint64_t chunks = min_u64(header.chunk_count, file_chunks);
    adopt_header(reader, &header, chunks, file_chunks, live, order_limit);
    return map_chunks(reader, chunks, message, size) &&
           log_index_build(reader, chunks, &reader->index, message, size);
}

struct log_reader *log_reader_open(const char *path, char *message,
                                   size_t message_size)
{
    tool_say(message, message_size, "%s", "");
    if (path == NULL || *path == '\0') {
        tool_say(message, message_size,
                 "no stack log named; pass the path of a stack log");
        return NULL;
    }
    struct log_reader *reader = calloc(1, sizeof(*reader));
    if (reader == NULL || (reader->path = strdup(path)) == NULL) {
        free(reader);
        tool_say(message, message_size, "%s: out of memory", path);
        return NULL;
    }
    reader->fd = -1;
    if (!load(reader, message, message_size)) {
        log_reader_close(reader);
        return NULL;
    }
    return reader;
}

void log_reader_close(struct log_reader *reader)
{
    if (reader == NULL)
        return;
    log_index_free(&reader->index);
    if (reader->map != NULL)
        munmap((void *)reader->map, reader->map_size);
    if (reader->fd >= 0)
        close(reader->fd);
    free(reader->path);
    free(reader);
}

/* ---- refreshing ---- */

/* The header as the writer left it now.  Its chunk count is loaded first,
 * with acquire, so the chunk headers it covers are complete. */
static void read_live_header(const struct log_reader *reader,
                             struct mdlog_header *header)
{
    const struct mdlog_header *live = (const void *)reader->map;
    uint64_t chunks = __atomic_load_n(&live->chunk_count, __ATOMIC_ACQUIRE);
    memcpy(header, live, sizeof(*header));
    header->chunk_count = chunks;
}

static bool same_layout(const struct log_reader *reader,
                        const struct mdlog_header *header, char *message,
                        size_t size)
{
    const struct mdlog_header *old = &reader->header;
    if (header->header_size == old->header_size &&
        header->chunk_size == old->chunk_size)
        return true;
    tool_say(message, size,
             "%s: the header changed its layout while the log was read; "
             "the log is damaged; record the program again", reader->path);
    return false;
}

static bool still_holds_map(const struct log_reader *reader, uint64_t bytes,
                            char *message, size_t size)
{
    if (bytes >= reader->map_size)
        return true;
    tool_say(message, size,
             "%s: the file shrank under the reader (%llu bytes, %zu read); "
             "it was truncated or replaced: open it again",
             reader->path, (unsigned long long)bytes, reader->map_size);
    return false;
}

int log_reader_refresh(struct log_reader *reader, char *message,
                       size_t message_size)
{
    tool_say(message, message_size, "%s", "");
    uint64_t bytes;
    struct mdlog_header header;
    if (!file_size(reader, &bytes, message, message_size) ||
        !still_holds_map(reader, bytes, message, message_size))
        return -1;
    uint64_t order_limit = UINT64_MAX;
    read_live_header(reader, &header);
    bool live = is_live(reader, &header);
    if (live) {
        order_limit = raise_floor(reader); /* as in load */
        read_live_header(reader, &header);
    }
    if (!log_reader_check_header(&header, bytes, reader->path, message,
                                 message_size) ||
        !same_layout(reader, &header, message, message_size))
        return -1;
    uint64_t file_chunks = log_reader_chunks_in_file(&header, bytes);
    /* Never fewer chunks than before: the map and the index only grow. */
    uint64_t chunks = min_u64(header.chunk_count, file_chunks);
    if (chunks < reader->chunks)
        chunks = reader->chunks;
    struct log_index index;
    if (!map_chunks(reader, chunks, message, message_size) ||
        !log_index_build(reader, chunks, &index, message, message_size))
        return -1;
    log_index_free(&reader->index);
    reader->index = index;
    reader->tally_known = false;
    bool grew = chunks > reader->chunks;
    adopt_header(reader, &header, chunks, file_chunks, live, order_limit);
    return grew;
}

/* ---- what the reader found ---- */

const struct mdlog_header *log_reader_header(const struct log_reader *reader)
{
    return &reader->header;
}

const char *log_reader_path(const struct log_reader *reader)
{
    return reader->path;
}

uint64_t log_reader_chunk_count(const struct log_reader *reader)
{
    return reader->chunks;
}

/* The warnings found without reading an event. */
static unsigned chunk_warnings(const struct log_reader *reader)
{
    unsigned warnings = 0;
    if (reader->truncated)
        warnings |= LOG_READER_TRUNCATED;
    if (reader->index.unfinished_chunks != 0)
        warnings |= LOG_READER_UNFINISHED_CHUNKS;
    return warnings;
}

unsigned log_reader_warnings(const struct log_reader *reader)
{
    unsigned warnings = chunk_warnings(reader);
    if (log_reader_damaged_bytes(reader) != 0)
        warnings |= LOG_READER_DAMAGED_EVENTS;
    return warnings;
}

/* The warnings about chunks, "" when there are none. */
static size_t chunk_warning_text(const struct log_reader *reader,
                                 unsigned warnings, char *buffer, size_t size)
{
    const char *path = reader->path;
    unsigned long long listed = reader->header.chunk_count;
    unsigned long long read = reader->chunks;
    unsigned long long unfinished = reader->index.unfinished_chunks;
    switch (warnings & (LOG_READER_TRUNCATED | LOG_READER_UNFINISHED_CHUNKS)) {
    case 0:
        return (size_t)snprintf(buffer, size, "%s", "");
    case LOG_READER_TRUNCATED:
        return (size_t)snprintf(buffer, size,
                                "%s: truncated: the header lists %llu chunks, the "
                                "file holds %llu; reading those",
                                path, listed, read);
    case LOG_READER_UNFINISHED_CHUNKS:
        if (!reader->live)
            return (size_t)snprintf(buffer, size,
                                    "%s: %llu chunk%s never finished by the "
                                    "writer (it ended while making %s, or the "
                                    "log is damaged); skipped", path,
                                    unfinished, unfinished == 1 ? "" : "s",
                                    unfinished == 1 ? "it" : "them");
        return (size_t)snprintf(buffer, size,
                                "%s: %llu chunk%s still being set up by the "
                                "writer; skipped", path, unfinished,
                                unfinished == 1 ? "" : "s");
    default:
        return (size_t)snprintf(buffer, size,
                                "%s: truncated: the header lists %llu chunks, the "
                                "file holds %llu; reading those but %llu %s",
                                path, listed, read, unfinished,
                                reader->live ? "still being set up"
                                             : "never finished by the writer");
    }
}

static size_t warning_text(const struct log_reader *reader, unsigned warnings,
                           char *buffer, size_t size)
{
    size_t length = chunk_warning_text(reader, warnings, buffer, size);
    if (!(warnings & LOG_READER_DAMAGED_EVENTS))
        return length;
    unsigned long long damaged = log_reader_damaged_bytes(reader);
    char *end = length < size ? buffer + length : NULL;
    size_t room = length < size ? size - length : 0;
    return length + (size_t)snprintf(end, room,
                                     "%s%s%llu byte%s of damaged events skipped",
                                     length ? "; " : reader->path,
                                     length ? "" : ": ", damaged,
                                     damaged == 1 ? "" : "s");
}

size_t log_reader_warning_text(const struct log_reader *reader, char *buffer,
                               size_t size)
{
    return warning_text(reader, log_reader_warnings(reader), buffer, size);
}

/* "PROGRAM: warning: TEXT" when `warnings` hold one worth saying: chunks
 * being set up are not, while their writer runs. */
static void print_warnings(const struct log_reader *reader, unsigned warnings,
                           FILE *stream, const char *program)
{
    unsigned said = reader->live
                        ? warnings & ~(unsigned)LOG_READER_UNFINISHED_CHUNKS
                        : warnings;
    if (!said)
        return;
    char text[1024];
    warning_text(reader, warnings, text, sizeof(text));
    fprintf(stream, "%s: warning: %s\n", program, text);
}

void log_reader_print_warnings(const struct log_reader *reader, FILE *stream,
                               const char *program)
{
    print_warnings(reader, log_reader_warnings(reader), stream, program);
}

void log_reader_print_chunk_warnings(const struct log_reader *reader,
                                     FILE *stream, const char *program)
{
    print_warnings(reader, chunk_warnings(reader), stream, program);
}
