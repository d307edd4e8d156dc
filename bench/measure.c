/*
 * measure: run a command and report its wall time and peak RSS.
 *
 *   measure [-p PRELOAD] [-o FILE] [--] COMMAND [ARG...]
 *
 * Runs COMMAND (searched in PATH) with its standard streams inherited,
 * with LD_PRELOAD=PRELOAD set in the child only when -p is given (so
 * measure itself never runs on the allocator under test), waits for it
 * with wait4, and writes one line
 *
 *   <wall seconds> <peak RSS in KiB> <exit status>
 *
 * to FILE (default: standard error).  The exit status is the command's,
 * or 128+N when it was killed by signal N; measure exits with it too.
 * The peak RSS is ru_maxrss of the child and the descendants it waited
 * for, as /usr/bin/time -f %M reports it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void usage(void)
{
    fprintf(stderr,
            "usage: measure [-p PRELOAD] [-o FILE] [--] COMMAND [ARG...]\n");
    exit(125);
}

int main(int argc, char **argv)
{
    const char *preload = NULL, *output = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc) {
            preload = argv[++i];
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            output = argv[++i];
        } else if (argv[i][0] == '-') {
            usage();
        } else {
            break;
        }
    }
    if (i >= argc)
        usage();

    FILE *out = stderr;
    if (output && !(out = fopen(output, "w"))) {
        fprintf(stderr, "measure: %s: %s\n", output, strerror(errno));
        return 125;
    }

    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "measure: fork: %s\n", strerror(errno));
        return 125;
    }
    if (pid == 0) {
        if (preload && setenv("LD_PRELOAD", preload, 1) != 0)
            _exit(125);
        execvp(argv[i], &argv[i]);
        fprintf(stderr, "measure: %s: %s\n", argv[i], strerror(errno));
        _exit(127);
    }

    int status;
    struct rusage usage;
    pid_t waited;
    while ((waited = wait4(pid, &status, 0, &usage)) < 0 && errno == EINTR)
        ;
    clock_gettime(CLOCK_MONOTONIC, &end);
    if (waited < 0) {
        fprintf(stderr, "measure: wait4: %s\n", strerror(errno));
        return 125;
    }
    double wall = (double)(end.tv_sec - start.tv_sec) +
                  (double)(end.tv_nsec - start.tv_nsec) / 1e9;
    int code = WIFEXITED(status)     ? WEXITSTATUS(status)
               : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                     : 125;
    fprintf(out, "%.6f %ld %d\n", wall, usage.ru_maxrss, code);
    if (out != stderr && fclose(out) != 0)
        return 125;
    return code;
}
