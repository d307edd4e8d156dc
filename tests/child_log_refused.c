/*
 * Preloaded ahead of the C library by check_stack_logging: a process
 * forked after the first stack log was made cannot make a log of its
 * own.  open refuses to create any further stack log with EACCES, as a
 * log directory turned read-only would, in any process but the one that
 * made the first.  The first refusal says so on standard error, so that
 * a test knows the refusal was there to be survived.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int open(const char *path, int flags, ...);

static pid_t first_logger;

static bool refused(const char *path, int flags)
{
    if (!(flags & O_EXCL) || !strstr(path, ".stacklog"))
        return false;
    pid_t me = (pid_t)syscall(SYS_getpid);
    if (!first_logger)
        first_logger = me;
    return me != first_logger;
}

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list arguments;
        va_start(arguments, flags);
        mode = (mode_t)va_arg(arguments, int);
        va_end(arguments);
    }
    if (refused(path, flags)) {
        static const char note[] = "child_log_refused: refused a child's log\n";
        ssize_t written = write(2, note, sizeof(note) - 1);
        (void)written;
        errno = EACCES;
        return -1;
    }
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}
