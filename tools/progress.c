/*
 * The line is written by a SIGALRM handler once a second, from what the
 * work last noted, so long steps with no place to report from (a replay,
 * a sort) still show.  The handler only formats into a local buffer and
 * calls write(2).  SA_RESTART keeps the tools' system calls going.
 */
#include "config.h"
#include "progress.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static const char *volatile progress_tool;
static const char *volatile current_step;
static volatile uint64_t current_done, current_total;
static volatile sig_atomic_t line_shown;

static size_t append(char *buffer, size_t used, size_t size, const char *text)
{
    while (*text && used + 1 < size)
        buffer[used++] = *text++;
    return used;
}

static size_t append_number(char *buffer, size_t used, size_t size,
                            unsigned value)
{
    char digits[12];
    size_t n = 0;
    do
        digits[n++] = (char)('0' + value % 10);
    while ((value /= 10) && n < sizeof(digits));
    while (n && used + 1 < size)
        buffer[used++] = digits[--n];
    return used;
}

static void show_line(int signo)
{
    (void)signo;
    const char *tool = progress_tool, *step = current_step;
    if (!tool || !step)
        return;
    char line[160];
    size_t used = append(line, 0, sizeof(line), "\r\033[K");
    used = append(line, used, sizeof(line), tool);
    used = append(line, used, sizeof(line), ": ");
    used = append(line, used, sizeof(line), step);
    uint64_t total = current_total;
    if (total) {
        used = append(line, used, sizeof(line), ": ");
        used = append_number(line, used, sizeof(line),
                             (unsigned)(current_done * 100 / total));
        used = append(line, used, sizeof(line), "%");
    } else {
        used = append(line, used, sizeof(line), "...");
    }
    int saved = errno;
    (void)!write(STDERR_FILENO, line, used);
    errno = saved;
    line_shown = 1;
}

void progress_begin(const char *tool)
{
    if (!isatty(STDERR_FILENO))
        return;
    progress_tool = tool;
    struct sigaction action = {.sa_handler = show_line, .sa_flags = SA_RESTART};
    sigemptyset(&action.sa_mask);
    sigaction(SIGALRM, &action, NULL);
    struct itimerval every_second = {{1, 0}, {1, 0}};
    setitimer(ITIMER_REAL, &every_second, NULL);
}

void progress_note(const char *what, uint64_t done, uint64_t total)
{
    current_step = what;
    current_done = done;
    current_total = total;
}

void progress_end(void)
{
    if (!progress_tool)
        return;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    current_step = NULL;
    if (line_shown)
        (void)!write(STDERR_FILENO, "\r\033[K", 4);
    line_shown = 0;
}
