#include "config.h"
#include "remote_reader.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

enum { MAX_COPIES = 1 << 16 };
static void *copies[MAX_COPIES];
static unsigned n_copies;
static unsigned failures;

kern_return_t remote_reader(task_t task, vm_address_t address,
                            vm_size_t size, void **local)
{
    if (n_copies == MAX_COPIES)
        return KERN_RESOURCE_SHORTAGE;
    void *buffer = malloc(size ? size : 1);
    if (!buffer)
        return KERN_RESOURCE_SHORTAGE;
    struct iovec here = {buffer, size}, there = {(void *)address, size};
    ssize_t n = process_vm_readv(task, &here, 1, &there, 1, 0);
    if (n < 0 || (size_t)n != size) {
        free(buffer);
        failures++;
        return KERN_INVALID_ADDRESS;
    }
    copies[n_copies++] = buffer;
    *local = buffer;
    return KERN_SUCCESS;
}

void remote_copies_release(void)
{
    for (unsigned i = 0; i < n_copies; i++)
        free(copies[i]);
    n_copies = 0;
}

unsigned remote_reader_failures(void)
{
    return failures;
}

int remote_read_probe(void)
{
    static volatile long secret = 0x5eed;
    int down[2];
    if (pipe(down) != 0)
        return errno;
    pid_t pid = fork();
    if (pid < 0)
        return errno;
    if (pid == 0) {
        char byte;
        close(down[1]);
        alarm(20);
        (void)!read(down[0], &byte, 1);
        _exit(0);
    }
    close(down[0]);
    long value = 0;
    struct iovec here = {&value, sizeof(value)},
                 there = {(void *)&secret, sizeof(secret)};
    int error = 0;
    if (process_vm_readv(pid, &here, 1, &there, 1, 0) != (ssize_t)sizeof(value))
        error = errno;
    else if (value != 0x5eed)
        error = EIO;
    close(down[1]);
    waitpid(pid, NULL, 0);
    return error;
}

bool remote_read_refused(int error)
{
    if (error != EPERM && error != EACCES && error != ENOSYS)
        return false;
    char scope[16] = "absent";
    FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
    if (f) {
        if (!fgets(scope, sizeof(scope), f))
            strcpy(scope, "?");
        scope[strcspn(scope, "\n")] = '\0';
        fclose(f);
    }
    printf("SKIP: process_vm_readv on a child process is refused (%s); "
           "yama ptrace_scope: %s.  Remote enumeration needs ptrace "
           "permission over the target (ptrace_scope <= 1, no seccomp "
           "filter on process_vm_readv, CAP_SYS_PTRACE in containers).\n",
           strerror(error), scope);
    return true;
}
