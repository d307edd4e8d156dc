/*
 * The log file: created O_EXCL with mode 0600, grown a chunk at a time,
 * each chunk mapped shared on its own.  Chunks never move: the library
 * keeps pointers into them, and a reader can map the file while it grows.
 *
 * A chunk's pages get memory only as its writer reaches them
 * (stacklog_file_back): a thread, a stack table or a module list that
 * records little takes little, where whole chunks took a megabyte each.
 * Every page gets its memory before its first store, so a full file
 * system is an error there, never a SIGBUS at the store.
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
#include <stddef.h>
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
    /* The file the log is: see log_descriptor. */
    dev_t device;
    ino_t inode;
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

void stacklog_say(const char *first, const char *second, const char *third)
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
 * now; elsewhere the file is made long enough (never shorter). */
static int reserve(int fd, off_t offset, off_t length)
{
    if (fallocate(fd, 0, offset, length) == 0)
        return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS)
        return errno;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return errno;
    if (st.st_size >= offset + length)
        return 0;
    return ftruncate(fd, offset + length) == 0 ? 0 : errno;
}

static bool is_the_log(int fd)
{
    struct stat status;
    return fd >= 0 && fstat(fd, &status) == 0 &&
           status.st_dev == log_file.device && status.st_ino == log_file.inode;
}

static void remember_the_log(int fd)
{
    struct stat status;
    if (fstat(fd, &status) == 0) {
        log_file.device = status.st_dev;
        log_file.inode = status.st_ino;
    }
}

static const char *program_name(const char *executable)
{
    const char *slash = strrchr(executable, '/');
    return slash ? slash + 1 : executable;
}

static void append_bytes(char *buffer, size_t size, size_t *length,
                         const char *text, size_t n)
{
    size_t room = size - 1 - *length;
    if (n > room)
        n = room;
    memcpy(buffer + *length, text, n);
    *length += n;
    buffer[*length] = '\0';
}

static void append(char *buffer, size_t size, size_t *length, const char *text)
{
    append_bytes(buffer, size, length, text, strlen(text));
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

/* How much of the program's name `name` goes into a log name whose
 * other parts take `fixed` bytes of the file name and `directory` bytes
 * before it, in a path of `size` bytes: all of it when it fits, else as
 * much as does, not cutting a UTF-8 character in two. */
static size_t program_name_kept(const char *name, size_t fixed,
                                size_t directory, size_t size)
{
    size_t kept = strlen(name);
    size_t room_in_name = NAME_MAX > fixed ? NAME_MAX - fixed : 0;
    size_t room_in_path = size > directory + fixed + 1
                              ? size - 1 - directory - fixed
                              : 0;
    if (kept > room_in_name)
        kept = room_in_name;
    if (kept > room_in_path)
        kept = room_in_path;
    while (kept > 0 && name[kept] && ((unsigned char)name[kept] & 0xc0) == 0x80)
        kept--;
    return kept;
}

/* "<directory>/mallocdebug.<pid>.<program>.stacklog", or with
 * ".<instance>" after the program when instance > 1; a program name too
 * long for a file name or a path is cut.  False, with errno
 * ENAMETOOLONG, when the directory leaves no room for any of it (an
 * unknown program's name is empty). */
static bool log_path(const char *directory, const char *executable,
                     unsigned instance, char *path, size_t size)
{
    char head[48], tail[48];
    size_t head_length = 0, tail_length = 0;
    head[0] = tail[0] = '\0';
    append(head, sizeof(head), &head_length, "/" MDLOG_FILE_PREFIX);
    append_decimal(head, sizeof(head), &head_length, (unsigned long)getpid());
    append(head, sizeof(head), &head_length, ".");
    if (instance > 1) {
        append(tail, sizeof(tail), &tail_length, ".");
        append_decimal(tail, sizeof(tail), &tail_length, instance);
    }
    append(tail, sizeof(tail), &tail_length, MDLOG_FILE_SUFFIX);
    const char *name = program_name(executable);
    /* The slash is the directory's, not the file name's. */
    size_t kept = program_name_kept(name, head_length - 1 + tail_length,
                                    strlen(directory) + 1, size);
    if (kept == 0 && name[0]) {
        errno = ENAMETOOLONG;
        return false;
    }
    size_t length = 0;
    path[0] = '\0';
    append(path, size, &length, directory);
    append(path, size, &length, head);
    append_bytes(path, size, &length, name, kept);
    append(path, size, &length, tail);
    return true;
}

/* The log's descriptors are kept at or above this number: a program
 * started with 0, 1 or 2 closed, or one that closed them later, would
 * otherwise have the log on a number it writes its output to, over the
 * log's header. */
#define LOG_DESCRIPTOR_FLOOR 100

/* `fd` moved up to LOG_DESCRIPTOR_FLOOR or above, or at least above 2;
 * -1 with errno set when neither can be done (`fd` is then closed). */
static int descriptor_moved_up(int fd)
{
    if (fd < 0)
        return fd;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, LOG_DESCRIPTOR_FLOOR);
    if (high < 0)
        high = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    if (high < 0 && fd > STDERR_FILENO)
        return fd;
    int error = errno;
    close(fd);
    errno = error;
    return high;
}

static int create_exclusive(const char *path)
{
    int made = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                    0600);
    if (made < 0)
        return made;
    int fd = descriptor_moved_up(made);
    if (fd < 0) {
        int error = errno;
        unlink(path); /* made, but with no descriptor left to keep it on */
        errno = error;
    }
    return fd;
}

/* A file of the name is one this process left before an exec (or a
 * process of the same pid long gone): replaced, unless it was kept on
 * purpose, when the new log takes the next instance's name. */
#define LOG_INSTANCES_MAX 99
static int create_log(const char *directory, const char *executable)
{
    for (unsigned instance = 1; instance <= LOG_INSTANCES_MAX; instance++) {
        if (!log_path(directory, executable, instance, log_file.path,
                      sizeof(log_file.path)))
            return -1;
        int fd = create_exclusive(log_file.path);
        if (fd >= 0 || errno != EEXIST)
            return fd;
        if (!stacklog_log_is_kept(log_file.path) && unlink(log_file.path) == 0) {
            fd = create_exclusive(log_file.path);
            if (fd >= 0 || errno != EEXIST)
                return fd; /* else made again meanwhile: the next name */
        }
    }
    return -1;
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
    return create_log(directory, executable);
}

static void say_directory_refused(const char *directory, int error)
{
    struct report_line line;
    report_line_begin_named(&line, "MallocStackLogging");
    report_append(&line, "can't create a log in ");
    report_append(&line, directory);
    report_append(&line, " (");
    report_append(&line, strerror(error));
    report_append(&line, "); using " MDLOG_DEFAULT_DIRECTORY);
    report_line_write_to(&line, STDERR_FILENO);
}

/* MallocStackLoggingDirectory if it works, else the default, else /tmp. */
static int open_log(const char *executable)
{
    const char *asked = malloc_options.stack_logging_directory;
    int fd = -1;
    if (asked[0]) {
        fd = open_in(asked, executable);
        if (fd < 0)
            say_directory_refused(asked, errno);
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
        stacklog_say("can't create a stack log (", strerror(errno),
            "); stacks are not recorded");
        return false;
    }
    log_file.fd = fd;
    remember_the_log(fd);
    log_file.keep = (flags & MDLOG_FLAG_KEEP) != 0;
    header_init(header, mode, flags, executable);
    stacklog_header = header;
    announce(mode);
    return true;
}

static struct mdlog_chunk_header *map_chunk(int fd, uint64_t index, void *fixed)
{
    void *chunk = os_syscall_mmap(fixed, MDLOG_CHUNK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_SHARED | (fixed ? MAP_FIXED : 0), fd,
                       chunk_offset(index));
    return chunk == MAP_FAILED ? NULL : chunk;
}

static void say_full(int error)
{
    if (log_file.full_announced)
        return;
    log_file.full_announced = true;
    stacklog_say("the log can't grow (", strerror(error),
        "): later events are counted as unrecorded");
}

/* The log's descriptor, or -1 with errno set.  The program may have
 * closed it (close_range, closefrom) and opened a file of its own on the
 * same number, or put one there with dup2: growing the log through that
 * number would truncate and overwrite the program's file.  So the
 * descriptor is checked to be the log's file before each use; when it
 * is not, the number is left to whoever has it now and the log is
 * opened again by its path.  Lock held. */
static int log_descriptor(void)
{
    if (MD_LIKELY(is_the_log(log_file.fd)))
        return log_file.fd;
    int fd = descriptor_moved_up(
        open(log_file.path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (fd >= 0 && !is_the_log(fd)) {
        close(fd); /* another file made under the log's name */
        fd = -1;
        errno = ENOENT;
    }
    log_file.fd = fd;
    if (fd < 0 && !log_file.full_announced) {
        log_file.full_announced = true;
        stacklog_say("the program closed the log's file, which can't be "
            "opened again (", strerror(errno),
            "): later events are counted as unrecorded");
    }
    return fd;
}

/* The file covers chunk `index`, whose first page has memory (for its
 * header): the rest of the chunk is a hole until it is backed. */
static int grow_for_chunk(int fd, uint64_t index)
{
    if (index >= CHUNK_MAP_ENTRIES)
        return EFBIG;
    if (ftruncate(fd, chunk_offset(index + 1)) != 0)
        return errno;
    return reserve(fd, chunk_offset(index), STACKLOG_CHUNK_BACKED_AT_START);
}

struct mdlog_chunk_header *stacklog_file_new_chunk(uint32_t kind,
                                                   uint32_t thread,
                                                   uint64_t first)
{
    md_lock(&log_file.lock);
    struct mdlog_header *header = stacklog_header;
    uint64_t index = header->chunk_count;
    struct mdlog_chunk_header *chunk = NULL;
    int fd = log_descriptor();
    int error = fd < 0 ? errno : grow_for_chunk(fd, index);
    if (error == 0 && !(chunk = map_chunk(fd, index, NULL)))
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

/* Where the file system cannot populate a mapping: memory for the file's
 * range under [from, to) of `chunk`, found among the chunks mapped. */
static int back_by_fallocate(const struct mdlog_chunk_header *chunk,
                             size_t from, size_t to)
{
    md_lock(&log_file.lock);
    int error = EINVAL;
    uint64_t count = stacklog_header->chunk_count;
    int fd = log_descriptor();
    for (uint64_t i = 0; fd >= 0 && i < count; i++)
        if (log_file.chunk_map[i] == (const char *)chunk) {
            error = reserve(fd, chunk_offset(i) + (off_t)from,
                            (off_t)(to - from));
            break;
        }
    if (fd < 0)
        error = errno;
    md_unlock(&log_file.lock);
    return error;
}

/* Backing a page at a time would cost a system call every few records:
 * a chunk is backed ahead by half what it has, up to this much, which
 * also faults the pages in (a third of full mode's time on a malloc-bound
 * program was page faults, one every page of events). */
#define BACK_AHEAD_MAX (64u << 10)

size_t stacklog_file_back(struct mdlog_chunk_header *chunk, size_t backed,
                          size_t needed)
{
    size_t ahead = backed / 2;
    if (ahead < OS_PAGE_SIZE)
        ahead = OS_PAGE_SIZE;
    if (ahead > BACK_AHEAD_MAX)
        ahead = BACK_AHEAD_MAX;
    size_t target = needed > backed + ahead ? needed : backed + ahead;
    target = MD_ALIGN_UP(target, OS_PAGE_SIZE);
    if (target > MDLOG_CHUNK_SIZE)
        target = MDLOG_CHUNK_SIZE;
    int error = os_populate_write((char *)chunk + backed, target - backed);
    if (error == EINVAL)
        error = back_by_fallocate(chunk, backed, target);
    if (error == 0)
        return target;
    md_lock(&log_file.lock);
    say_full(error);
    md_unlock(&log_file.lock);
    return 0;
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

/* Copies the data of the parent's file in [offset, offset + size), read
 * from its mapping at `mapped`: the holes stay holes, and are not read
 * (reading a hole through a shared mapping would give it memory). */
static bool fork_copy_data(int parent_fd, int fd, const char *mapped,
                           off_t offset, size_t size)
{
    off_t end = offset + (off_t)size, data = offset;
    while ((data = lseek(parent_fd, data, SEEK_DATA)) >= 0 && data < end) {
        off_t hole = lseek(parent_fd, data, SEEK_HOLE);
        if (hole < 0 || hole > end)
            hole = end;
        size_t length = (size_t)(hole - data);
        if (pwrite(fd, mapped + (data - offset), length, data) != (ssize_t)length)
            return false;
        data = hole;
    }
    return data >= 0 || errno == ENXIO;
}

/* The child's copy of one chunk, mapped where the parent's was: the
 * library's pointers into stacks and modules stay valid.  Of a stack
 * chunk, only the part holding the child's `nodes` is kept, with memory
 * for all of it (the parent may give memory to the last of those nodes
 * after the fork).  Event chunks are the parent's history, and are left
 * out: only their header is written, and the rest of each stays a hole
 * in the file. */
static bool fork_copy_chunk(int parent_fd, int fd, uint64_t index,
                            uint64_t nodes)
{
    struct mdlog_chunk_header *chunk = (void *)log_file.chunk_map[index];
    uint32_t kind = chunk ? chunk->kind : MDLOG_CHUNK_UNUSED;
    if (kind == MDLOG_CHUNK_STACKS || kind == MDLOG_CHUNK_MODULES) {
        size_t kept = kind == MDLOG_CHUNK_STACKS
                          ? stacklog_fork_kept_stack_bytes(chunk->first, nodes)
                          : MDLOG_CHUNK_SIZE;
        if (!fork_copy_data(parent_fd, fd, (const char *)chunk,
                            chunk_offset(index), kept))
            return false;
        if (kind == MDLOG_CHUNK_STACKS &&
            reserve(fd, chunk_offset(index), (off_t)kept) != 0)
            return false;
        return map_chunk(fd, index, chunk) != NULL;
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
    int parent_fd = log_descriptor();
    md_lock_init(&log_file.lock);
    int fd = parent_fd < 0 ? -1 : open_in(log_file.directory, header->executable);
    /* The parent's threads go on adding chunks and nodes: the child
     * keeps those counted now, and its header says so. */
    uint64_t count = __atomic_load_n(&header->chunk_count, __ATOMIC_ACQUIRE);
    uint64_t nodes = __atomic_load_n(&header->node_count, __ATOMIC_ACQUIRE);
    /* The parent's length, so that every chunk keeps its offset, but
     * memory only for what is written: a child must not take as much
     * as a parent that logged gigabytes of events before it forked. */
    bool ok = fd >= 0 && ftruncate(fd, chunk_offset(count)) == 0 &&
              reserve(fd, 0, MDLOG_HEADER_SIZE) == 0 &&
              pwrite(fd, header, MDLOG_HEADER_SIZE, 0) == MDLOG_HEADER_SIZE &&
              pwrite(fd, &nodes, sizeof(nodes),
                     offsetof(struct mdlog_header, node_count)) ==
                  (ssize_t)sizeof(nodes) &&
              pwrite(fd, &count, sizeof(count),
                     offsetof(struct mdlog_header, chunk_count)) ==
                  (ssize_t)sizeof(count);
    log_file.fd = fd;
    if (fd >= 0)
        remember_the_log(fd);
    for (uint64_t i = 0; ok && i < count; i++)
        ok = fork_copy_chunk(parent_fd, fd, i, nodes);
    if (parent_fd >= 0)
        close(parent_fd);
    ok = ok && os_syscall_mmap(header, MDLOG_HEADER_SIZE, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_FIXED, fd, 0) != MAP_FAILED;
    if (!ok) {
        if (fd >= 0)
            unlink(log_file.path);
        stacklog_say("can't start a log for the child process (", strerror(errno),
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
