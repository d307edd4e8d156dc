#define _GNU_SOURCE
#include "config.h"
#include "tool_runner.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS 32

static void collect_args(const char *first, va_list list, char **args)
{
    unsigned n = 0;
    args[n++] = (char *)first;
    for (const char *arg; n < MAX_ARGS - 1 && (arg = va_arg(list, const char *));)
        args[n++] = (char *)arg;
    args[n] = NULL;
}

/* Reads a line into `line`; false at end of input. */
static bool read_line(int fd, char *line, size_t size)
{
    size_t used = 0;
    while (used + 1 < size) {
        char c;
        if (read(fd, &c, 1) != 1)
            break;
        line[used++] = c;
        if (c == '\n')
            break;
    }
    line[used] = '\0';
    return used > 0;
}

bool target_start(struct running_target *target, const char *const *environment,
                  const char *program, ...)
{
    char *args[MAX_ARGS];
    va_list list;
    va_start(list, program);
    collect_args(program, list, args);
    va_end(list);
    int down[2], up[2];
    if (pipe(down) != 0 || pipe(up) != 0)
        return false;
    target->pid = fork();
    if (target->pid == 0) {
        dup2(down[0], 0);
        dup2(up[1], 1);
        close(down[1]);
        close(up[0]);
        for (unsigned i = 0; environment && environment[i]; i++)
            putenv((char *)environment[i]);
        execv(program, args);
        _exit(127);
    }
    close(down[0]);
    close(up[1]);
    target->to_target = down[1];
    target->from_target = up[0];
    target->output[0] = '\0';
    char line[512];
    while (read_line(target->from_target, line, sizeof(line))) {
        if (strcmp(line, "ready\n") == 0)
            return true;
        strncat(target->output, line,
                sizeof(target->output) - strlen(target->output) - 1);
    }
    return false;
}

bool target_ask(struct running_target *target, const char *line,
                const char *answer)
{
    char reply[256];
    return write(target->to_target, line, strlen(line)) == (ssize_t)strlen(line) &&
           read_line(target->from_target, reply, sizeof(reply)) &&
           strcmp(reply, answer) == 0;
}

bool target_alive(struct running_target *target)
{
    return target_ask(target, "?\n", "alive\n");
}

bool target_answers_within(struct running_target *target, int timeout_ms,
                           const char *answer)
{
    struct pollfd ready = {.fd = target->from_target, .events = POLLIN};
    char reply[256];
    return poll(&ready, 1, timeout_ms) == 1 &&
           read_line(target->from_target, reply, sizeof(reply)) &&
           strcmp(reply, answer) == 0;
}

int target_finish(struct running_target *target)
{
    close(target->to_target);
    int status;
    waitpid(target->pid, &status, 0);
    close(target->from_target);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void read_all(int fd, char *buffer, size_t size)
{
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, buffer, size - 1);
    buffer[n > 0 ? n : 0] = '\0';
    close(fd);
}

#define NOBODY 65534

static bool become_nobody(void)
{
    return setgroups(0, NULL) == 0 && setresgid(NOBODY, NOBODY, NOBODY) == 0 &&
           setresuid(NOBODY, NOBODY, NOBODY) == 0;
}

static void run_args(struct tool_run *run, bool as_nobody, char *const *args)
{
    const char *program = args[0];
    int out = memfd_create("out", 0), err = memfd_create("err", 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out, 1);
        dup2(err, 2);
        if (as_nobody && !become_nobody())
            _exit(126);
        execvp(program, args);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    run->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    read_all(out, run->out, sizeof(run->out));
    read_all(err, run->err, sizeof(run->err));
}

static void run_listed(struct tool_run *run, bool as_nobody,
                       const char *program, va_list list)
{
    char *args[MAX_ARGS];
    collect_args(program, list, args);
    run_args(run, as_nobody, args);
}

void tool_run_argv(struct tool_run *run, char *const *args)
{
    run_args(run, false, args);
}

void tool_run(struct tool_run *run, const char *program, ...)
{
    va_list list;
    va_start(list, program);
    run_listed(run, false, program, list);
    va_end(list);
}

void tool_run_as_nobody(struct tool_run *run, const char *program, ...)
{
    va_list list;
    va_start(list, program);
    run_listed(run, true, program, list);
    va_end(list);
}

void tool_expect_refused_to_nobody(const struct tool_run *run, const char *tool)
{
    char expected[200];
    snprintf(expected, sizeof(expected),
             "%s: not permitted to read process %d: it belongs to another "
             "user (uid 0); run as that user or as root\n", tool, (int)getpid());
    ck_assert_int_eq(run->status, 2);
    ck_assert_str_eq(run->err, expected);
}

unsigned long target_value(const char *text, const char *name)
{
    char key[64];
    snprintf(key, sizeof(key), "%s ", name);
    for (const char *line = text; line; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (strncmp(line, key, strlen(key)) == 0)
            return strtoul(line + strlen(key), NULL, 0);
    }
    return 0;
}

int tool_suite_run(const char *name, TCase *tc, char *path)
{
    if (!mkdtemp(path)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    Suite *suite = suite_create(name);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    char command[400];
    snprintf(command, sizeof(command), "rm -rf '%s'", path);
    if (system(command) != 0)
        failed++;
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
