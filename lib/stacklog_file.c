/*
 * The log file: created O_EXCL with mode 0600, grown a chunk at a time
 * with fallocate (so a full file system is an error here, never a
 * SIGBUS at a later store), each chunk mapped shared on its own.  Chunks
 * never move: the library keeps pointers into them, and a reader can map
 * the file while it grows.
 */
#include "config.h"
#include "lock.h"
#include "malloc_layer.h"
#include "options.h"
#include "os_memory.h"
#include "report.h"
#include "stacklog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* 2^20 chunks of 1 MiB: a log of a terabyte. */
#define CHUNK_MAP_ENTRIES (1u << 20)

struct mdlog_header *stacklog_header;

static struct {
    md_lock_t lock;
    int fd;
    const char *directory; /* the one the log is in */
    char path[PATH_MAX];
    bool keep;
    bool full_announced;
    /* Where each chunk is mapped in this process. */
    char **chunk_map;
} log_file = {.lock = MD_LOCK_INITIALIZER, .fd = -1};

static off_t chunk_offset(uint64_t index)
{
    return (off_t)(MDLOG_HEADER_SIZE + index * (uint64_t)MDLOG_CHUNK_SIZE);
}

static void say(const char *first, const char *second, const char *third)
{
    struct report_line line;
    report_line_begin_named(&line, "MallocStackLogging");
    report_append(&line, first);
    if (second)
        report_append(&line, second);
    if (third)
        report_append(&line, third);
    report_line_write_to(&line, STDERR_FILENO);
}

/* fallocate where the file system has it, so that a full one says so
 * now; plain growth elsewhere. */
static int reserve(int fd, off_t offset, off_t length)
{
    if (fallocate(fd, 0, offset, length) == 0)
        return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS)
        return errno;
    return ftruncate(fd, offset + length) == 0 ? 0 : errno;
}

static const char *program_name(const char *executable)
{
    const char *slash = strrchr(executable, '/');
    return slash ? slash + 1 : executable;
}

static void append(char *buffer, size_t size, size_t *length, const char *text)
{
    size_t n = strlen(text);
    if (*length + n >= size)
        n = size - 1 - *length;
    memcpy(buffer + *length, text, n);
    *length += n;
    buffer[*length] = '\0';
}

static void append_decimal(char *buffer, size_t size, size_t *length,
                           unsigned long value)
{
    char digits[24];
    int i = (int)sizeof(digits) - 1;
    digits[i] = '\0';
    do
        digits[--i] = (char)('0' + value % 10);
    while ((value /= 10) != 0);
    append(buffer, size, length, digits + i);
}

/* "<directory>/mallocdebug.<pid>.<program>.stacklog" */
static void log_path(const char *directory, const char *executable,
                     char *path, size_t size)
{
    size_t length = 0;
    path[0] = '\0';
    append(path, size, &length, directory);
    append(path, size, &length, "/" MDLOG_FILE_PREFIX);
    append_decimal(path, size, &length, (unsigned long)getpid());
    append(path, size, &length, ".");
    append(path, size, &length, program_name(executable));
    append(path, size, &length, MDLOG_FILE_SUFFIX);
}

/* A file of our pid is left by this process before an exec: the new
 * image starts a fresh log. */
static int create_exclusive(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                  0600);
    if (fd < 0 && errno == EEXIST && unlink(path) == 0)
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                  0600);
    return fd;
}

static void executable_path(char *path, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", path, size - 1);
    path[n > 0 ? n : 0] = '\0';
}

static struct mdlog_header *map_header(int fd)
{
    if (reserve(fd, 0, MDLOG_HEADER_SIZE) != 0)
        return NULL;
    void *header = os_syscall_mmap(NULL, MDLOG_HEADER_SIZE, PROT_READ | PROT_WRITE,
                        MAP_SHARED, fd, 0);
    return header == MAP_FAILED ? NULL : header;
}

static void header_init(struct mdlog_header *header, unsigned mode,
                        unsigned flags, const char *executable)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    header->version = MDLOG_VERSION;
    header->header_size = MDLOG_HEADER_SIZE;
    header->chunk_size = MDLOG_CHUNK_SIZE;
    header->mode = mode;
    header->flags = flags;
    header->state = MDLOG_STATE_RUNNING;
    header->pid = getpid();
    header->start_time_sec = (uint64_t)now.tv_sec;
    header->start_time_nsec = (uint64_t)now.tv_nsec;
    header->zone_registry_address = (uint64_t)(uintptr_t)&malloc_zones;
    header->zone_count_address = (uint64_t)(uintptr_t)&malloc_num_zones;
    header->node_count = 1; /* node 0 is no stack */
    header->next_order = 1;
    size_t length = strnlen(executable, sizeof(header->executable) - 1);
    memcpy(header->executable, executable, length);
    /* Last: a reader takes a file without the magic as not yet a log. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy(header->magic, MDLOG_MAGIC, MDLOG_MAGIC_SIZE);
}

static int open_in(const char *directory, const char *executable)
{
    log_file.directory = directory;
    log_path(directory, executable, log_file.path, sizeof(log_file.path));
    return create_exclusive(log_file.path);
}

/* MallocStackLoggingDirectory if it works, else the default, else /tmp. */
static int open_log(const char *executable)
{
    const char *asked = malloc_options.stack_logging_directory;
    int fd = -1;
    if (asked[0]) {
        fd = open_in(asked, executable);
        if (fd < 0)
            say("can't create a log in ", asked,
                ": not a writable directory; using " MDLOG_DEFAULT_DIRECTORY);
    }
    if (fd < 0) {
        stacklog_reap(MDLOG_DEFAULT_DIRECTORY);
        fd = open_in(MDLOG_DEFAULT_DIRECTORY, executable);
    }
    if (fd < 0) {
        stacklog_reap("/tmp");
        fd = open_in("/tmp", executable);
    }
    return fd;
}

static const char *mode_name(unsigned mode)
{
    switch (mode) {
    case MDLOG_MODE_LITE:
        return "lite mode";
    case MDLOG_MODE_MALLOC:
        return "malloc mode";
    case MDLOG_MODE_VM:
        return "vm mode";
    default:
        return "full mode";
    }
}

static void announce(unsigned mode)
{
    struct report_line line;
    report_line_begin_named(&line, "MallocStackLogging");
    report_append(&line, "recording malloc stacks to ");
    report_append(&line, log_file.path);
    report_append(&line, " (");
    report_append(&line, mode_name(mode));
    report_append(&line, ")");
    report_line_write_to(&line, STDERR_FILENO);
}

bool stacklog_file_create(unsigned mode, unsigned flags)
{
    static char executable[MDLOG_EXECUTABLE_MAX];
    executable_path(executable, sizeof(executable));
    if (malloc_options.stack_logging_directory[0])
        stacklog_reap(malloc_options.stack_logging_directory);
    log_file.chunk_map = os_map(CHUNK_MAP_ENTRIES * sizeof(char *));
    int fd = log_file.chunk_map ? open_log(executable) : -1;
    struct mdlog_header *header = fd >= 0 ? map_header(fd) : NULL;
    if (!header) {
        if (fd >= 0) {
            unlink(log_file.path);
            close(fd);
        }
        say("can't create a stack log (", strerror(errno),
            "); stacks are not recorded");
        return false;
    }
    log_file.fd = fd;
    log_file.keep = (flags & MDLOG_FLAG_KEEP) != 0;
    header_init(header, mode, flags, executable);
    stacklog_header = header;
    announce(mode);
    return true;
}

static struct mdlog_chunk_header *map_chunk(uint64_t index, void *fixed)
{
    void *chunk = os_syscall_mmap(fixed, MDLOG_CHUNK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_SHARED | (fixed ? MAP_FIXED : 0), log_file.fd,
                       chunk_offset(index));
    return chunk == MAP_FAILED ? NULL : chunk;
}

static void say_full(int error)
{
    if (log_file.full_announced)
        return;
    log_file.full_announced = true;
    say("the log can't grow (", strerror(error),
        "): later events are counted as unrecorded");
}

struct mdlog_chunk_header *stacklog_file_new_chunk(uint32_t kind,
                                                   uint32_t thread,
                                                   uint64_t first)
{
    md_lock(&log_file.lock);
    struct mdlog_header *header = stacklog_header;
    uint64_t index = header->chunk_count;
    struct mdlog_chunk_header *chunk = NULL;
    int error = index < CHUNK_MAP_ENTRIES
                    ? reserve(log_file.fd, chunk_offset(index), MDLOG_CHUNK_SIZE)
                    : EFBIG;
    if (error == 0 && !(chunk = map_chunk(index, NULL)))
        error = errno;
    if (chunk) {
        chunk->thread = thread;
        chunk->first = first;
        __atomic_store_n(&chunk->kind, kind, __ATOMIC_RELEASE);
        log_file.chunk_map[index] = (char *)chunk;
        __atomic_store_n(&header->chunk_count, index + 1, __ATOMIC_RELEASE);
    } else {
        say_full(error);
    }
    md_unlock(&log_file.lock);
    return chunk;
}

void stacklog_file_exit(void)
{
    struct mdlog_header *header = stacklog_header;
    if (!header)
        return;
    __atomic_store_n(&header->state, MDLOG_STATE_EXITED, __ATOMIC_RELEASE);
    if (!log_file.keep)
        unlink(log_file.path);
}

void stacklog_file_force_lock(void)
{
    md_lock(&log_file.lock);
}

void stacklog_file_force_unlock(void)
{
    md_unlock(&log_file.lock);
}

/* The child's copy of one chunk, mapped where the parent's was: the
 * library's pointers into stacks and modules stay valid.  Event chunks
 * are the parent's history, and are left out: only their header is
 * written, and the rest of each stays a hole in the file. */
static bool fork_copy_chunk(int fd, uint64_t index)
{
    struct mdlog_chunk_header *chunk = (void *)log_file.chunk_map[index];
    uint32_t kind = chunk ? chunk->kind : MDLOG_CHUNK_UNUSED;
    if (kind == MDLOG_CHUNK_STACKS || kind == MDLOG_CHUNK_MODULES) {
        if (pwrite(fd, chunk, MDLOG_CHUNK_SIZE, chunk_offset(index)) !=
            (ssize_t)MDLOG_CHUNK_SIZE)
            return false;
        return map_chunk(index, chunk) != NULL;
    }
    struct mdlog_chunk_header unused = {.kind = MDLOG_CHUNK_UNUSED};
    if (pwrite(fd, &unused, sizeof(unused), chunk_offset(index)) !=
        (ssize_t)sizeof(unused))
        return false;
    if (chunk)
        os_syscall_munmap(chunk, MDLOG_CHUNK_SIZE);
    log_file.chunk_map[index] = NULL;
    return true;
}

static void fork_reset_header(struct mdlog_header *header, pid_t parent)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    header->pid = getpid();
    header->parent_pid = parent;
    header->state = MDLOG_STATE_RUNNING;
    header->start_time_sec = (uint64_t)now.tv_sec;
    header->start_time_nsec = (uint64_t)now.tv_nsec;
    header->event_count = header->compacted_count = 0;
    header->unrecorded_count = 0;
}

bool stacklog_file_fork_child(bool keep)
{
    struct mdlog_header *header = stacklog_header;
    pid_t parent = header->pid;
    int parent_fd = log_file.fd;
    md_lock_init(&log_file.lock);
    int fd = open_in(log_file.directory, header->executable);
    close(parent_fd);
    uint64_t count = header->chunk_count;
    /* The parent's length, so that every chunk keeps its offset, but
     * memory only for what is written: a child must not take as much
     * as a parent that logged gigabytes of events before it forked. */
    bool ok = fd >= 0 && ftruncate(fd, chunk_offset(count)) == 0 &&
              reserve(fd, 0, MDLOG_HEADER_SIZE) == 0 &&
              pwrite(fd, header, MDLOG_HEADER_SIZE, 0) == MDLOG_HEADER_SIZE;
    log_file.fd = fd;
    for (uint64_t i = 0; ok && i < count; i++)
        ok = fork_copy_chunk(fd, i);
    ok = ok && os_syscall_mmap(header, MDLOG_HEADER_SIZE, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_FIXED, fd, 0) != MAP_FAILED;
    if (!ok) {
        if (fd >= 0)
            unlink(log_file.path);
        say("can't start a log for the child process (", strerror(errno),
            "); its stacks are not recorded");
        return false;
    }
    fork_reset_header(header, parent);
    log_file.keep = keep;
    if (keep)
        header->flags |= MDLOG_FLAG_KEEP;
    else
        header->flags &= ~(uint32_t)MDLOG_FLAG_KEEP;
    return true;
}
