/*
 * From what the user typed to a pid: a number is a pid; anything else is
 * looked for in every process's executable name, and must match one.
 */
#include "config.h"
#include "target.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool is_number(const char *text)
{
    if (!*text)
        return false;
    for (const char *c = text; *c; c++)
        if (!isdigit((unsigned char)*c))
            return false;
    return true;
}

/* Copies the start of `from` that fits. */
static void copy_truncated(char *to, size_t size, const char *from)
{
    size_t length = strnlen(from, size - 1);
    memcpy(to, from, length);
    to[length] = '\0';
}

bool target_process_name(pid_t pid, char *name, size_t size)
{
    char path[64], target[PATH_MAX];
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
    ssize_t length = readlink(path, target, sizeof(target) - 1);
    if (length > 0) {
        target[length] = '\0';
        const char *base = strrchr(target, '/');
        copy_truncated(name, size, base ? base + 1 : target);
        return true;
    }
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    FILE *file = fopen(path, "r");
    if (!file)
        return false;
    bool ok = fgets(name, (int)size, file) != NULL;
    fclose(file);
    if (ok)
        name[strcspn(name, "\n")] = '\0';
    return ok;
}

/* The pid a number of digits names, when it can be one. */
static bool parse_pid(const char *spec, pid_t *pid)
{
    long value = strtol(spec, NULL, 10);
    if (value <= 0 || value > INT_MAX)
        return false;
    *pid = (pid_t)value;
    return true;
}

static bool no_such_process(pid_t pid)
{
    return kill(pid, 0) != 0 && errno == ESRCH;
}

static int find_by_number(const char *spec, pid_t *pid, char *message,
                          size_t message_size)
{
    if (!parse_pid(spec, pid)) {
        snprintf(message, message_size, "%s is not a valid process id", spec);
        return -1;
    }
    if (no_such_process(*pid)) {
        snprintf(message, message_size,
                 "no process %d: check the pid with ps, or give the "
                 "program's name", (int)*pid);
        return -1;
    }
    if (*pid == getpid()) {
        snprintf(message, message_size,
                 "process %d is this tool itself: give the pid of another "
                 "process", (int)*pid);
        return -1;
    }
    return 0;
}

bool target_gone_pid(const char *spec, pid_t *pid)
{
    return is_number(spec) && parse_pid(spec, pid) && no_such_process(*pid);
}

int target_find(const char *spec, pid_t *pid, char *message,
                size_t message_size)
{
    if (is_number(spec))
        return find_by_number(spec, pid, message, message_size);
    if (!spec[0]) {
        snprintf(message, message_size,
                 "no process given: give a pid or a part of a program's name");
        return -1;
    }
    DIR *proc = opendir("/proc");
    if (!proc) {
        snprintf(message, message_size, "cannot list /proc: %s",
                 strerror(errno));
        return -1;
    }
    pid_t self = getpid(), found = 0;
    char matches[256] = "";
    unsigned match_count = 0;
    for (struct dirent *entry; (entry = readdir(proc)) != NULL;) {
        if (!is_number(entry->d_name))
            continue;
        pid_t candidate = (pid_t)atoi(entry->d_name);
        char name[256];
        if (candidate == self || !target_process_name(candidate, name, sizeof(name)) ||
            !strstr(name, spec))
            continue;
        found = candidate;
        char match[300];
        snprintf(match, sizeof(match), "%s%d (%.200s)",
                 match_count ? ", " : "", (int)candidate, name);
        size_t used = strlen(matches);
        copy_truncated(matches + used, sizeof(matches) - used, match);
        match_count++;
    }
    closedir(proc);
    if (match_count == 1) {
        *pid = found;
        return 0;
    }
    if (match_count == 0)
        snprintf(message, message_size,
                 "no process whose executable name contains \"%s\": check "
                 "the name with ps, or give a pid", spec);
    else
        snprintf(message, message_size,
                 "\"%s\" matches %u processes: %s; give a pid", spec,
                 match_count, matches);
    return -1;
}

bool target_names_a_log(const char *spec)
{
    struct stat status;
    return strchr(spec, '/') ||
           (stat(spec, &status) == 0 && S_ISREG(status.st_mode));
}

char target_thread_state(pid_t pid, pid_t tid)
{
    char path[96], state = 'X';
    snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    FILE *file = fopen(path, "r");
    if (!file)
        return state;
    /* The state follows the command name, which is in parentheses and
     * may hold spaces or parentheses itself. */
    char line[512];
    if (fgets(line, sizeof(line), file)) {
        const char *close = strrchr(line, ')');
        if (close && close[1] == ' ')
            state = close[2];
    }
    fclose(file);
    return state;
}
