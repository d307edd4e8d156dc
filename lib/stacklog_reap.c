/*
 * Reaping: at start, the logs of processes that no longer exist, and
 * those this process wrote before an exec, are removed from the
 * directory the new log goes to, unless
 * MallocStackLoggingNoReaping is set or the log asked to be kept.  The
 * directory is read with getdents64 into a buffer on the stack, since
 * opendir would allocate.
 */
#include "config.h"
#include "options.h"
#include "stacklog.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* The pid in "mallocdebug.<pid>.<program>.stacklog", or 0. */
static pid_t log_name_pid(const char *name)
{
    size_t prefix = strlen(MDLOG_FILE_PREFIX), suffix = strlen(MDLOG_FILE_SUFFIX);
    size_t length = strlen(name);
    if (length <= prefix + suffix || strncmp(name, MDLOG_FILE_PREFIX, prefix) != 0 ||
        strcmp(name + length - suffix, MDLOG_FILE_SUFFIX) != 0)
        return 0;
    char *end;
    long pid = strtol(name + prefix, &end, 10);
    return *end == '.' && pid > 0 && pid <= INT32_MAX ? (pid_t)pid : 0;
}

/* Anything but a regular file with the header's flags is not ours to
 * judge.  Opened without blocking: anyone can leave a FIFO under a log's
 * name in a shared directory, and opening it for reading would wait for
 * a writer forever.  Closes `fd`. */
static bool opened_log_is_kept(int fd)
{
    if (fd < 0)
        return true;
    struct stat status;
    if (fstat(fd, &status) != 0 || !S_ISREG(status.st_mode)) {
        close(fd);
        return true;
    }
    uint32_t flags = 0;
    ssize_t n = pread(fd, &flags, sizeof(flags),
                      offsetof(struct mdlog_header, flags));
    close(fd);
    return n != (ssize_t)sizeof(flags) || (flags & MDLOG_FLAG_KEEP);
}

static bool log_is_kept(int directory, const char *name)
{
    return opened_log_is_kept(openat(
        directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
}

bool stacklog_log_is_kept(const char *path)
{
    return opened_log_is_kept(
        open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
}

/* A log of our own pid was left by this process before an exec. */
static void reap_entry(int directory, const char *name)
{
    pid_t pid = log_name_pid(name);
    if (pid == 0)
        return;
    if (pid != getpid() && (kill(pid, 0) == 0 || errno != ESRCH))
        return;
    if (!log_is_kept(directory, name))
        unlinkat(directory, name, 0);
}

void stacklog_reap(const char *path)
{
    if (malloc_options.stack_logging_no_reaping)
        return;
    int directory = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (directory < 0)
        return;
    char buffer[4096] __attribute__((aligned(8)));
    long n;
    while ((n = syscall(SYS_getdents64, directory, buffer, sizeof(buffer))) > 0)
        for (long at = 0; at < n;) {
            struct linux_dirent64 *entry = (void *)(buffer + at);
            reap_entry(directory, entry->d_name);
            at += entry->d_reclen;
        }
    close(directory);
}
