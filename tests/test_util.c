#include "config.h"
#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

void capture_begin(struct capture *capture)
{
    fflush(stderr);
    capture->mem_fd = memfd_create("stderr-capture", MFD_CLOEXEC);
    if (capture->mem_fd < 0) {
        perror("memfd_create");
        abort();
    }
    capture->saved_fd = dup(STDERR_FILENO);
    if (capture->saved_fd < 0 ||
        dup2(capture->mem_fd, STDERR_FILENO) != STDERR_FILENO) {
        perror("dup2");
        abort();
    }
}

size_t capture_end(struct capture *capture, char *buffer, size_t size)
{
    fflush(stderr);
    dup2(capture->saved_fd, STDERR_FILENO);
    close(capture->saved_fd);
    off_t length = lseek(capture->mem_fd, 0, SEEK_END);
    size_t wanted = length < 0 ? 0 : (size_t)length;
    size_t copy = wanted < size - 1 ? wanted : size - 1;
    ssize_t n = pread(capture->mem_fd, buffer, copy, 0);
    buffer[n > 0 ? (size_t)n : 0] = '\0';
    close(capture->mem_fd);
    return wanted;
}

unsigned count_lines(const char *text)
{
    unsigned n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

unsigned count_lines_with(const char *text, const char *needle)
{
    unsigned n = 0;
    while (*text) {
        const char *end = strchr(text, '\n');
        size_t length = end ? (size_t)(end - text) : strlen(text);
        char line[1024];
        size_t copy = length < sizeof(line) - 1 ? length : sizeof(line) - 1;
        memcpy(line, text, copy);
        line[copy] = '\0';
        if (strstr(line, needle))
            n++;
        text += length + (end != NULL);
    }
    return n;
}

void report_prefix(char *buffer, size_t size)
{
    snprintf(buffer, size, "%s(%d,%#lx) malloc: ",
             program_invocation_short_name, (int)getpid(),
             (unsigned long)pthread_self());
}

void expected_pointer_error(char *buffer, size_t size, const void *pointer,
                            const char *what)
{
    char prefix[256];
    report_prefix(prefix, sizeof(prefix));
    snprintf(buffer, size,
             "%s*** error for object %#lx: %s\n"
             "%s*** set a breakpoint in malloc_error_break to debug\n",
             prefix, (unsigned long)(uintptr_t)pointer, what, prefix);
}

bool page_is_mapped(const void *address)
{
    uintptr_t page = (uintptr_t)address & ~(uintptr_t)4095;
    if (msync((void *)page, 4096, MS_ASYNC) == 0)
        return true;
    return errno != ENOMEM;
}

size_t resident_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (size_t)sysconf(_SC_PAGESIZE);
}

bool zone_is_registered(malloc_zone_t *zone)
{
    vm_address_t *zones = NULL;
    unsigned count = 0;
    if (malloc_get_all_zones(mach_task_self(), NULL, &zones, &count) !=
        KERN_SUCCESS)
        return false;
    for (unsigned i = 0; i < count; i++)
        if (zones[i] == (vm_address_t)zone)
            return true;
    return false;
}

static inline unsigned char pattern_byte(size_t offset, unsigned seed)
{
    return (unsigned char)((offset * 131u + seed * 7u + (offset >> 8)) ^ seed);
}

void fill_pattern(void *block, size_t size, unsigned seed)
{
    unsigned char *p = block;
    for (size_t i = 0; i < size; i++)
        p[i] = pattern_byte(i, seed);
}

bool check_pattern(const void *block, size_t size, unsigned seed)
{
    const unsigned char *p = block;
    for (size_t i = 0; i < size; i++)
        if (p[i] != pattern_byte(i, seed))
            return false;
    return true;
}

bool is_all_zero(const void *block, size_t size)
{
    const unsigned char *p = block;
    for (size_t i = 0; i < size; i++)
        if (p[i])
            return false;
    return true;
}

int run_suite(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_set_fork_status(runner, CK_FORK);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- helper programs ---- */

void read_fd_into(int fd, char *buffer, size_t size)
{
    size_t used = 0;
    ssize_t n;
    while (used < size - 1 && (n = read(fd, buffer + used, size - 1 - used)) > 0)
        used += (size_t)n;
    buffer[used] = '\0';
}

/* In the child: runs `program args` with the settings added to a clean
 * environment. */
static void exec_probe(const char *program, const char *const *args,
                       const char *const *settings)
{
    char *env[16];
    unsigned n = 0;
    static char path[] = "PATH=/usr/bin:/bin";
    env[n++] = path;
    for (unsigned i = 0; settings && settings[i] && n < 15; i++)
        env[n++] = (char *)settings[i];
    env[n] = NULL;
    char *argv[8];
    unsigned a = 0;
    argv[a++] = (char *)program;
    for (unsigned i = 0; args[i] && a < 7; i++)
        argv[a++] = (char *)args[i];
    argv[a] = NULL;
    execve(program, argv, env);
    _exit(127);
}

void probe_with_args(struct probe_run *run, const char *program,
                     const char *const *args, const char *const *settings,
                     bool stop_expected)
{
    int out_pipe[2], err_pipe[2];
    ck_assert_int_eq(pipe(out_pipe), 0);
    ck_assert_int_eq(pipe(err_pipe), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        close(out_pipe[0]);
        close(err_pipe[0]);
        exec_probe(program, args, settings);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);
    if (stop_expected) {
        int status;
        ck_assert_int_eq(waitpid(pid, &status, WUNTRACED), pid);
        ck_assert_msg(WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP,
                      "MallocErrorStop did not stop the process");
        kill(pid, SIGCONT);
    }
    read_fd_into(out_pipe[0], run->out, sizeof(run->out));
    read_fd_into(err_pipe[0], run->err, sizeof(run->err));
    close(out_pipe[0]);
    close(err_pipe[0]);
    ck_assert_int_eq(waitpid(pid, &run->status, 0), pid);
}

/* True when `text` ends with the whole line `line` and its newline. */
static bool ends_with_line(const char *text, size_t length, const char *line)
{
    size_t want = strlen(line);
    if (length < want + 1 || text[length - 1] != '\n')
        return false;
    const char *start = text + length - 1 - want;
    return memcmp(start, line, want) == 0 && (start == text || start[-1] == '\n');
}

/* Reads the session's stdout until the line `line`, or its end: the
 * program then waits, so nothing follows the line yet. */
static void read_until_line(struct probe_session *session, const char *line)
{
    size_t used = 0;
    ssize_t n;
    session->out[0] = '\0';
    while (used < sizeof(session->out) - 1 &&
           (n = read(session->from_child, session->out + used,
                     sizeof(session->out) - 1 - used)) > 0) {
        used += (size_t)n;
        session->out[used] = '\0';
        if (ends_with_line(session->out, used, line))
            return;
    }
}

void probe_start(struct probe_session *session, const char *program,
                 const char *const *args, const char *const *settings,
                 const char *until)
{
    int in_pipe[2], out_pipe[2], err_pipe[2];
    ck_assert_int_eq(pipe(in_pipe), 0);
    ck_assert_int_eq(pipe(out_pipe), 0);
    ck_assert_int_eq(pipe(err_pipe), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(in_pipe[0], 0);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        close(in_pipe[1]);
        close(out_pipe[0]);
        close(err_pipe[0]);
        exec_probe(program, args, settings);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    session->pid = pid;
    session->to_child = in_pipe[1];
    session->from_child = out_pipe[0];
    session->err_from_child = err_pipe[0];
    read_until_line(session, until);
}

void probe_finish(struct probe_session *session, struct probe_run *run)
{
    close(session->to_child);
    read_fd_into(session->from_child, run->out, sizeof(run->out));
    read_fd_into(session->err_from_child, run->err, sizeof(run->err));
    close(session->from_child);
    close(session->err_from_child);
    ck_assert_int_eq(waitpid(session->pid, &run->status, 0), session->pid);
}

unsigned long output_value(const char *out, const char *key)
{
    char pattern[64];
    snprintf(pattern, sizeof(pattern), "%s ", key);
    for (const char *line = out; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (strncmp(line, pattern, strlen(pattern)) == 0)
            return strtoul(line + strlen(pattern), NULL, 0);
    }
    ck_abort_msg("no '%s' in the probe's output:\n%s", key, out);
    return 0;
}

void probe(struct probe_run *run, const char *program, const char *action,
           const char *const *settings, bool stop_expected)
{
    const char *const args[] = {action, NULL};
    probe_with_args(run, program, args, settings, stop_expected);
}

bool exited_cleanly(const struct probe_run *run)
{
    return WIFEXITED(run->status) && WEXITSTATUS(run->status) == 0;
}

bool aborted(const struct probe_run *run)
{
    return WIFSIGNALED(run->status) && WTERMSIG(run->status) == SIGABRT;
}

bool faulted(const struct probe_run *run)
{
    return WIFSIGNALED(run->status) &&
           (WTERMSIG(run->status) == SIGSEGV || WTERMSIG(run->status) == SIGBUS);
}
