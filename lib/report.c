#include "config.h"
#include "report.h"
#include "compiler.h"
#include "options.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc/malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* program_invocation_short_name is set by libc's own start-up, which can
 * come after the first allocations; /proc/self/comm is the fallback. */
static const char *report_program_name(void)
{
    static char comm[32];
    if (program_invocation_short_name && program_invocation_short_name[0])
        return program_invocation_short_name;
    if (!comm[0]) {
        int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, comm, sizeof(comm) - 1) : -1;
        if (fd >= 0)
            close(fd);
        if (n <= 0)
            memcpy(comm, "?", 2);
        else
            comm[n - (comm[n - 1] == '\n')] = '\0';
    }
    return comm;
}

void report_append(struct report_line *line, const char *text)
{
    size_t room = sizeof(line->text) - 1 - line->length;
    size_t n = strnlen(text, room);
    memcpy(line->text + line->length, text, n);
    line->length += n;
}

static void report_append_digits(struct report_line *line, uintmax_t value,
                                 unsigned base)
{
    char digits[32];
    size_t n = sizeof(digits) - 1;
    digits[n] = '\0';
    do {
        digits[--n] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value);
    report_append(line, digits + n);
}

void report_append_decimal(struct report_line *line, uintmax_t value)
{
    report_append_digits(line, value, 10);
}

void report_append_hex(struct report_line *line, uintmax_t value)
{
    report_append(line, "0x");
    report_append_digits(line, value, 16);
}

void report_line_begin(struct report_line *line)
{
    line->length = 0;
    report_append(line, report_program_name());
    report_append(line, "(");
    report_append_decimal(line, (uintmax_t)getpid());
    report_append(line, ",");
    report_append_hex(line, (uintmax_t)pthread_self());
    report_append(line, ") malloc: ");
}

void report_line_begin_named(struct report_line *line, const char *who)
{
    line->length = 0;
    report_append(line, report_program_name());
    report_append(line, "(");
    report_append_decimal(line, (uintmax_t)getpid());
    report_append(line, ") ");
    report_append(line, who);
    report_append(line, ": ");
}

void report_check_line_begin(struct report_line *line, const char *zone_name)
{
    report_line_begin(line);
    report_append(line, "*** malloc_zone_check: zone ");
    report_append(line, zone_name ? zone_name : "?");
    report_append(line, ": ");
}

int report_check_failed(const char *zone_name, const char *what,
                        uintptr_t where)
{
    struct report_line line;
    report_check_line_begin(&line, zone_name);
    report_append(&line, what);
    report_append(&line, " at ");
    report_append_hex(&line, where);
    report_line_write(&line);
    return 0;
}

void report_line_write_to(struct report_line *line, int fd)
{
    line->text[line->length++] = '\n';
    int saved_errno = errno;
    const char *p = line->text;
    size_t left = line->length;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        p += n;
        left -= (size_t)n;
    }
    line->length--;
    errno = saved_errno;
}

void report_line_write(struct report_line *line)
{
    report_line_write_to(line, malloc_options.log_fd);
}

static bool report_will_abort(enum report_kind kind)
{
    return malloc_options.error_abort ||
           (kind == REPORT_KIND_CORRUPTION && malloc_options.corruption_abort);
}

void report_sleep(unsigned seconds)
{
    struct timespec left = {.tv_sec = seconds};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

void report_emit(struct report_line *lines, unsigned count,
                 enum report_kind kind)
{
    bool will_abort = report_will_abort(kind);
    enum options_report_target target = malloc_options.report_target;
    bool written = target == OPTIONS_REPORT_STDERR ||
                   (target == OPTIONS_REPORT_CRASH && will_abort);
    struct report_line hint;
    report_line_begin(&hint);
    report_append(&hint, "*** set a breakpoint in malloc_error_break to debug");
    for (unsigned i = 0; written && i < count; i++)
        report_line_write(&lines[i]);
    if (written)
        report_line_write(&hint);
    malloc_error_break();
    if (malloc_options.error_stop)
        kill(getpid(), SIGSTOP);
    if (malloc_options.error_sleep)
        report_sleep(malloc_options.error_sleep);
    if (will_abort)
        abort();
}

void report_pointer_error(const void *pointer, const char *what)
{
    struct report_line line;
    report_line_begin(&line);
    report_append(&line, "*** error for object ");
    report_append_hex(&line, (uintptr_t)pointer);
    report_append(&line, ": ");
    report_append(&line, what);
    report_emit(&line, 1, REPORT_KIND_ERROR);
}

void report_error(const char *what)
{
    struct report_line line;
    report_line_begin(&line);
    report_append(&line, "*** ");
    report_append(&line, what);
    report_emit(&line, 1, REPORT_KIND_ERROR);
}

void report_allocation_failure(size_t size)
{
    struct report_line line;
    report_line_begin(&line);
    report_append(&line, "*** can't allocate region of size ");
    report_append_decimal(&line, size);
    report_emit(&line, 1, REPORT_KIND_ERROR);
}

MD_EXPORT MD_NOINLINE void malloc_error_break(void)
{
    /* Keeps the call from being optimised away: this is where a debugger
     * stops. */
    __asm__ volatile("" ::: "memory");
}
