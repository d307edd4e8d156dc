/*
 * Why the kernel refused to let this tool read or trace a process,
 * worked out from what anyone may read: /proc/PID/status, the owner of
 * /proc/PID, and Yama's setting.
 *
 * The kernel grants the read right (the maps, process_vm_readv) to the
 * process's own user, and only while the process is dumpable; CAP_SYS_PTRACE
 * overrides both.  Tracing and process_vm_readv also pass through Yama,
 * and tracing fails while another process traces it; reading the maps
 * does neither, so those two reasons are given only when the maps can be
 * read.
 */
#include "config.h"
#include "target_permission.h"
#include "tool_say.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define YAMA_SCOPE_PATH "/proc/sys/kernel/yama/ptrace_scope"
#define NOT_PERMITTED "not permitted to read process %d: "
#define ROOT_OR_CAPABILITY "run as root (or with CAP_SYS_PTRACE)"

struct process_status {
    long real_uid, effective_uid, saved_uid;
    long tracer; /* 0 when none */
};

static bool read_status(pid_t pid, struct process_status *status)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *file = fopen(path, "re");
    if (file == NULL)
        return false;
    int found = 0;
    while (fgets(line, sizeof(line), file))
        if (sscanf(line, "Uid: %ld %ld %ld", &status->real_uid,
                   &status->effective_uid, &status->saved_uid) == 3 ||
            sscanf(line, "TracerPid: %ld", &status->tracer) == 1)
            found++;
    fclose(file);
    return found == 2;
}

/* The process's uid that is not ours, or -1: the kernel wants all three
 * to be ours.  Root is refused for other reasons than the owner. */
static long foreign_uid(const struct process_status *status)
{
    long ours = (long)geteuid();
    if (ours == 0)
        return -1;
    const long uids[] = {status->effective_uid, status->real_uid,
                         status->saved_uid};
    for (size_t i = 0; i < sizeof(uids) / sizeof(uids[0]); i++)
        if (uids[i] != ours)
            return uids[i];
    return -1;
}

/* The files in /proc/PID (not the directory) belong to root, not to the
 * process's user, while the process is not dumpable. */
static bool not_dumpable(pid_t pid, const struct process_status *status)
{
    char path[64];
    struct stat maps;
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    return stat(path, &maps) == 0 && (long)maps.st_uid != status->effective_uid;
}

static bool maps_readable(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* Yama's ptrace_scope, or -1 without Yama. */
static int yama_scope(void)
{
    FILE *file = fopen(YAMA_SCOPE_PATH, "re");
    int scope = -1;
    if (file) {
        if (fscanf(file, "%d", &scope) != 1)
            scope = -1;
        fclose(file);
    }
    return scope;
}

static void say_yama(pid_t pid, int scope, char *message, size_t size)
{
    if (scope == 1)
        tool_say(message, size, NOT_PERMITTED
                 "the kernel's ptrace restrictions (" YAMA_SCOPE_PATH
                 " is 1) let only its ancestors or CAP_SYS_PTRACE read it; "
                 ROOT_OR_CAPABILITY ", set kernel.yama.ptrace_scope to 0, or "
                 "start the program under leaks --atExit", (int)pid);
    else if (scope == 2)
        tool_say(message, size, NOT_PERMITTED
                 "the kernel's ptrace restrictions (" YAMA_SCOPE_PATH
                 " is 2) let only CAP_SYS_PTRACE read it; " ROOT_OR_CAPABILITY,
                 (int)pid);
    else
        tool_say(message, size, NOT_PERMITTED
                 "the kernel's ptrace restrictions (" YAMA_SCOPE_PATH
                 " is %d) let no process read it, root included; restart "
                 "the machine with a lower kernel.yama.ptrace_scope",
                 (int)pid, scope);
}

static void say_forbidden_otherwise(pid_t pid, char *message, size_t size)
{
    tool_say(message, size, NOT_PERMITTED
             "a security module (SELinux, AppArmor), a seccomp filter or a "
             "container forbids it; " ROOT_OR_CAPABILITY " where they allow it",
             (int)pid);
}

void target_explain_refusal(pid_t pid, char *message, size_t message_size)
{
    struct process_status status = {0};
    bool known = read_status(pid, &status);
    long owner = known ? foreign_uid(&status) : -1;
    int scope;
    if (owner >= 0)
        tool_say(message, message_size, NOT_PERMITTED
                 "it belongs to another user (uid %ld); run as that user or "
                 "as root", (int)pid, owner);
    else if (known && not_dumpable(pid, &status))
        tool_say(message, message_size, NOT_PERMITTED
                 "it is not dumpable (a set-user-ID program, or it called "
                 "prctl(PR_SET_DUMPABLE, 0)); " ROOT_OR_CAPABILITY, (int)pid);
    else if (!maps_readable(pid))
        say_forbidden_otherwise(pid, message, message_size);
    else if (status.tracer > 0 && status.tracer != getpid())
        tool_say(message, message_size, NOT_PERMITTED
                 "it is being traced by process %ld (a debugger or strace); "
                 "detach that first", (int)pid, status.tracer);
    else if ((scope = yama_scope()) > 0)
        say_yama(pid, scope, message, message_size);
    else
        say_forbidden_otherwise(pid, message, message_size);
}
