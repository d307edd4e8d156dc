/*
 * Finding the log of a running process.  The writer keeps its log mapped,
 * so /proc/PID/maps names it wherever MallocStackLoggingDirectory put
 * it; a log in the default directory is the fallback.  Every way this
 * can fail gets a message that says why and what to do.
 */
#include "config.h"

#include "log_reader_internal.h"
#include "target.h"
#include "target_permission.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DELETED_MARK " (deleted)"

/* True when a file name is the log of process `pid`. */
static bool is_log_name(const char *name, pid_t pid)
{
    char prefix[32];
    int prefix_length = snprintf(prefix, sizeof(prefix), MDLOG_FILE_PREFIX "%d.",
                                 (int)pid);
    size_t length = strlen(name), suffix_length = strlen(MDLOG_FILE_SUFFIX);
    return length > (size_t)prefix_length + suffix_length &&
           strncmp(name, prefix, (size_t)prefix_length) == 0 &&
           strcmp(name + length - suffix_length, MDLOG_FILE_SUFFIX) == 0;
}

/* The path at the end of a /proc/PID/maps line, or NULL: the line's sixth
 * field, which runs to the end of the line. */
static char *mapped_path(char *line)
{
    line[strcspn(line, "\n")] = '\0';
    char *at = line;
    for (int field = 0; field < 5; field++) {
        at += strcspn(at, " ");
        at += strspn(at, " ");
    }
    return *at == '/' ? at : NULL;
}

/* Strips the kernel's mark of an unlinked file; true when it was there. */
static bool strip_deleted(char *path)
{
    size_t length = strlen(path), mark = strlen(DELETED_MARK);
    if (length < mark || strcmp(path + length - mark, DELETED_MARK) != 0)
        return false;
    path[length - mark] = '\0';
    return true;
}

struct found_log {
    char path[PATH_MAX];
    bool deleted;
};

static bool find_in_maps(FILE *maps, pid_t pid, struct found_log *found)
{
    char *line = NULL;
    size_t capacity = 0;
    bool matched = false;
    while (!matched && getline(&line, &capacity, maps) > 0) {
        char *path = mapped_path(line);
        if (path == NULL)
            continue;
        bool deleted = strip_deleted(path);
        const char *name = strrchr(path, '/') + 1;
        if (!is_log_name(name, pid) || strlen(path) >= sizeof(found->path))
            continue;
        strcpy(found->path, path);
        found->deleted = deleted;
        matched = true;
    }
    free(line);
    return matched;
}

/* Nanoseconds count: an exec'd image's log and its old image's, kept,
 * are mostly written within the same second. */
static bool older(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec ||
           (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* The newest log of `pid` in `directory`. */
static bool find_in_directory(const char *directory, pid_t pid,
                              struct found_log *found)
{
    DIR *dir = opendir(directory);
    if (dir == NULL)
        return false;
    struct dirent *entry;
    struct timespec newest = {0, 0};
    bool matched = false;
    while ((entry = readdir(dir)) != NULL) {
        char path[PATH_MAX];
        struct stat status;
        if (!is_log_name(entry->d_name, pid) ||
            snprintf(path, sizeof(path), "%s/%s", directory, entry->d_name) >=
                (int)sizeof(path) ||
            stat(path, &status) != 0 ||
            (matched && older(&status.st_mtim, &newest)))
            continue;
        strcpy(found->path, path);
        found->deleted = false;
        newest = status.st_mtim;
        matched = true;
    }
    closedir(dir);
    return matched;
}

static void explain_maps_error(pid_t pid, int error, char *message, size_t size)
{
    if (error == ENOENT || error == ESRCH)
        tool_say(message, size,
                 "no process %d; pass the id of a running process", (int)pid);
    else if (error == EACCES || error == EPERM)
        target_explain_refusal(pid, message, size);
    else
        tool_say(message, size, "cannot read /proc/%d/maps: %s", (int)pid,
                 strerror(error));
}

/* A path in /proc/PID/maps is seen from the process's root, which a
 * chroot or a mount namespace may make different from ours. */
static struct log_reader *open_mapped(pid_t pid, const char *path,
                                      char *message, size_t size)
{
    char rooted[PATH_MAX + 32];
    if (access(path, F_OK) != 0 && errno == ENOENT &&
        snprintf(rooted, sizeof(rooted), "/proc/%d/root%s", (int)pid, path) <
            (int)sizeof(rooted) &&
        access(rooted, F_OK) == 0)
        return log_reader_open(rooted, message, size);
    return log_reader_open(path, message, size);
}

bool log_reader_left_by_pid(const char *spec, char *path, size_t size)
{
    pid_t pid;
    struct found_log found;
    /* A process that runs has its log found through it. */
    if (!target_gone_pid(spec, &pid) ||
        !find_in_directory(MDLOG_DEFAULT_DIRECTORY, pid, &found) ||
        strlen(found.path) >= size)
        return false;
    strcpy(path, found.path);
    return true;
}

static struct log_reader *open_pid(pid_t pid, bool quiet_when_not_recording,
                                   char *message, size_t message_size)
{
    tool_say(message, message_size, "%s", "");
    if (pid <= 0) {
        tool_say(message, message_size,
                 "no process %d; pass the id of a running process", (int)pid);
        return NULL;
    }
    char maps_path[32];
    snprintf(maps_path, sizeof(maps_path), "/proc/%d/maps", (int)pid);
    FILE *maps = fopen(maps_path, "re");
    if (maps == NULL) {
        explain_maps_error(pid, errno, message, message_size);
        return NULL;
    }
    struct found_log found;
    bool mapped = find_in_maps(maps, pid, &found);
    fclose(maps);
    if (mapped && found.deleted) {
        tool_say(message, message_size,
                 "process %d's stack log %s was deleted while the process "
                 "runs, and cannot be opened again; record the program "
                 "again and leave its log in place", (int)pid, found.path);
        return NULL;
    }
    if (mapped)
        return open_mapped(pid, found.path, message, message_size);
    if (find_in_directory(MDLOG_DEFAULT_DIRECTORY, pid, &found))
        return log_reader_open(found.path, message, message_size);
    if (quiet_when_not_recording)
        return NULL;
    tool_say(message, message_size,
             "process %d is not recording stacks: start it with "
             "LD_PRELOAD=libmallocdebug.so and MallocStackLogging=full "
             "(every event, for malloc_history) or =lite (stacks of "
             "live blocks)",
             (int)pid);
    return NULL;
}

struct log_reader *log_reader_open_pid(pid_t pid, char *message,
                                       size_t message_size)
{
    return open_pid(pid, false, message, message_size);
}

struct log_reader *log_reader_open_pid_if_recording(pid_t pid, char *message,
                                                    size_t message_size)
{
    return open_pid(pid, true, message, message_size);
}
