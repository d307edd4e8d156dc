/*
 * log_stats: the size of stack logs against what they hold.
 *
 *   log_stats FILE...
 *
 * Reads the header of each stack log (include/mallocdebug/stack_log.h)
 * and prints one line per file,
 *
 *   size=<bytes> allocated=<bytes> chunks=<n> events=<n> compacted=<n>
 *   nodes=<n> mode=<name> state=<name> bytes_per_event=<x> file=<path>
 *
 * (on one line; "allocated" is what the file occupies in memory or on
 * disk, less than its size when it is sparse, as a log is where its
 * writer has not reached; bytes_per_event is allocated / events, "n/a"
 * without events), and with more than one file a last line with the
 * sums, "file=(total)".  Exits with 1 if a file is not a readable log
 * of this version, 2 on bad usage.  bench/stacklog.sh uses it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mallocdebug/stack_log.h"

struct totals {
    uint64_t size, allocated, chunks, events, compacted, nodes;
};

static const char *mode_name(uint32_t mode)
{
    switch (mode) {
    case MDLOG_MODE_LITE: return "lite";
    case MDLOG_MODE_FULL: return "full";
    case MDLOG_MODE_MALLOC: return "malloc";
    case MDLOG_MODE_VM: return "vm";
    default: return "unknown";
    }
}

static const char *state_name(uint32_t state)
{
    switch (state) {
    case MDLOG_STATE_RUNNING: return "running";
    case MDLOG_STATE_EXITED: return "exited";
    default: return "unknown";
    }
}

static void print_line(const struct totals *t, const char *mode,
                       const char *state, const char *path)
{
    char per_event[32] = "n/a";
    if (t->events)
        snprintf(per_event, sizeof per_event, "%.2f",
                 (double)t->allocated / (double)t->events);
    printf("size=%" PRIu64 " allocated=%" PRIu64 " chunks=%" PRIu64
           " events=%" PRIu64 " compacted=%" PRIu64 " nodes=%" PRIu64
           " mode=%s state=%s bytes_per_event=%s file=%s\n",
           t->size, t->allocated, t->chunks, t->events, t->compacted,
           t->nodes, mode, state, per_event, path);
}

/* Adds the log at `path` to `sum` and prints its line; 0 on success. */
static int stat_log(const char *path, struct totals *sum)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "log_stats: %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct mdlog_header header;
    struct stat st;
    ssize_t got = pread(fd, &header, sizeof header, 0);
    int saved = errno;
    int stat_failed = fstat(fd, &st);
    close(fd);
    if (got < 0 || stat_failed) {
        fprintf(stderr, "log_stats: %s: %s\n", path,
                strerror(got < 0 ? saved : errno));
        return -1;
    }
    if ((size_t)got < sizeof header ||
        memcmp(header.magic, MDLOG_MAGIC, MDLOG_MAGIC_SIZE) != 0) {
        fprintf(stderr, "log_stats: %s: not a stack log\n", path);
        return -1;
    }
    if (header.version != MDLOG_VERSION) {
        fprintf(stderr, "log_stats: %s: log version %" PRIu32
                ", this program reads version %d\n",
                path, header.version, MDLOG_VERSION);
        return -1;
    }
    uint64_t expected = (uint64_t)header.header_size +
                        header.chunk_count * (uint64_t)header.chunk_size;
    if ((uint64_t)st.st_size < expected)
        fprintf(stderr, "log_stats: %s: %" PRIu64 " bytes, but its header "
                "counts %" PRIu64 " chunks (%" PRIu64 " bytes)\n",
                path, (uint64_t)st.st_size, header.chunk_count, expected);

    struct totals t = {
        .size = (uint64_t)st.st_size,
        .allocated = (uint64_t)st.st_blocks * 512,
        .chunks = header.chunk_count,
        .events = header.event_count,
        .compacted = header.compacted_count,
        .nodes = header.node_count,
    };
    print_line(&t, mode_name(header.mode), state_name(header.state), path);
    sum->size += t.size;
    sum->allocated += t.allocated;
    sum->chunks += t.chunks;
    sum->events += t.events;
    sum->compacted += t.compacted;
    sum->nodes += t.nodes;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: log_stats FILE...\n");
        return 2;
    }
    struct totals sum = {0};
    int status = 0;
    for (int i = 1; i < argc; i++)
        if (stat_log(argv[i], &sum) != 0)
            status = 1;
    if (argc > 2)
        print_line(&sum, "-", "-", "(total)");
    return status;
}
