/*
 * Checking a stack log's header before anything is mapped: the file must
 * be a log, of the version this reader reads, with a layout that keeps
 * every chunk aligned and every later offset inside the file.
 */
#include "log_reader_internal.h"

#include <stddef.h>
#include <string.h>

#define PAGE 4096u
/* Bounds on a sane layout: a header larger than this or chunks outside
 * these sizes are damage, not a choice any writer makes. */
#define HEADER_SIZE_MAX (1u << 20)
#define CHUNK_SIZE_MIN (64u << 10)
#define CHUNK_SIZE_MAX (1u << 30)

#define DAMAGED "the log is damaged; record the program again"

static bool is_log(const struct mdlog_header *header, uint64_t file_size,
                   const char *path, char *message, size_t size)
{
    if (file_size == 0) {
        tool_say(message, size,
                 "%s: empty file, not a mallocdebug stack log; "
                 "pass a file written under MallocStackLogging", path);
        return false;
    }
    if (file_size < MDLOG_MAGIC_SIZE ||
        memcmp(header->magic, MDLOG_MAGIC, MDLOG_MAGIC_SIZE) != 0) {
        tool_say(message, size,
                 "%s: not a mallocdebug stack log (bad magic); "
                 "pass a file written under MallocStackLogging", path);
        return false;
    }
    return true;
}

static bool holds_header(uint64_t file_size, uint64_t needed, const char *path,
                         char *message, size_t size)
{
    if (file_size >= needed)
        return true;
    tool_say(message, size,
             "%s: truncated inside its header (%llu bytes of %llu); "
             "the log is incomplete, use a complete copy",
             path, (unsigned long long)file_size,
             (unsigned long long)needed);
    return false;
}

static bool is_this_version(const struct mdlog_header *header, const char *path,
                            char *message, size_t size)
{
    if (header->version == MDLOG_VERSION)
        return true;
    tool_say(message, size,
             "%s: stack log version %u; this reader reads version %u; "
             "use the mallocdebug tools of the release that wrote it",
             path, header->version, (unsigned)MDLOG_VERSION);
    return false;
}

static bool is_page_multiple_within(uint32_t value, uint32_t low, uint32_t high)
{
    return value % PAGE == 0 && value >= low && value <= high;
}

static bool has_sane_layout(const struct mdlog_header *header, const char *path,
                            char *message, size_t size)
{
    /* The smallest header a page multiple can hold. */
    uint32_t header_min = (sizeof(struct mdlog_header) + PAGE - 1) / PAGE * PAGE;
    if (!is_page_multiple_within(header->header_size, header_min,
                                 HEADER_SIZE_MAX)) {
        tool_say(message, size,
                 "%s: bad header size %u (expected a multiple of %u "
                 "from %u to %u); " DAMAGED,
                 path, header->header_size, PAGE, header_min,
                 HEADER_SIZE_MAX);
        return false;
    }
    if (!is_page_multiple_within(header->chunk_size, CHUNK_SIZE_MIN,
                                 CHUNK_SIZE_MAX)) {
        tool_say(message, size,
                 "%s: bad chunk size %u (expected a multiple of %u "
                 "from 64 KiB to 1 GiB); " DAMAGED,
                 path, header->chunk_size, PAGE);
        return false;
    }
    return true;
}

static bool has_known_mode(const struct mdlog_header *header, const char *path,
                           char *message, size_t size)
{
    if (header->mode >= MDLOG_MODE_LITE && header->mode <= MDLOG_MODE_VM)
        return true;
    tool_say(message, size, "%s: unknown recording mode %u; " DAMAGED,
             path, header->mode);
    return false;
}

bool log_reader_check_header(const struct mdlog_header *header,
                             uint64_t file_size, const char *path,
                             char *message, size_t size)
{
    return is_log(header, file_size, path, message, size) &&
           holds_header(file_size, offsetof(struct mdlog_header, version) +
                                       sizeof(header->version),
                        path, message, size) &&
           is_this_version(header, path, message, size) &&
           holds_header(file_size, sizeof(*header), path, message, size) &&
           has_sane_layout(header, path, message, size) &&
           holds_header(file_size, header->header_size, path, message, size) &&
           has_known_mode(header, path, message, size);
}

uint64_t log_reader_chunks_in_file(const struct mdlog_header *header,
                                   uint64_t file_size)
{
    if (file_size < header->header_size)
        return 0;
    return (file_size - header->header_size) / header->chunk_size;
}
