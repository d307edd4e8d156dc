/*
 * Runs the corpus: every case under every option set, several processes
 * at a time, each with a clean environment, the library preloaded and a
 * time limit; then classifies how each run ended from its exit status,
 * its report lines and what it printed.
 */
#include "config.h"
#include "corpus.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A hung case is killed by SIGALRM, which survives exec. */
#define RUN_TIME_LIMIT_SECONDS 30
/* Enough for any report; a run that writes more is cut. */
#define CAPTURE_MAX (64 * 1024)
#define JOBS_MAX 16

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool corpus_find_paths(struct corpus_paths *paths)
{
    char here[2048];
    if (!getcwd(here, sizeof(here))) {
        perror("getcwd");
        return false;
    }
    snprintf(paths->buggy, sizeof(paths->buggy), "%s/tests/corpus/buggy", here);
    const char *library = getenv("MALLOCDEBUG_LIB");
    if (library && library[0])
        snprintf(paths->library, sizeof(paths->library), "%s", library);
    else
        snprintf(paths->library, sizeof(paths->library),
                 "%s/lib/.libs/libmallocdebug.so", here);
    if (!is_file(paths->buggy) || !is_file(paths->library)) {
        fprintf(stderr, "corpus: %s or %s is not built (run from the top of "
                        "the build tree, or set MALLOCDEBUG_LIB)\n",
                paths->buggy, paths->library);
        return false;
    }
    return true;
}

/* The whole of what was written to `fd`, NUL-terminated; closes it. */
static char *read_capture(int fd)
{
    off_t length = lseek(fd, 0, SEEK_END);
    size_t size = length > 0 ? (size_t)length : 0;
    if (size > CAPTURE_MAX)
        size = CAPTURE_MAX;
    char *text = malloc(size + 1);
    if (!text) {
        close(fd);
        return NULL;
    }
    ssize_t n = pread(fd, text, size, 0);
    text[n > 0 ? (size_t)n : 0] = '\0';
    close(fd);
    return text;
}

/* An ignored or blocked signal stays so across exec: the cases must die
 * of their faults and of the time limit as any program would.  They must
 * not leave core files in the build tree either. */
static void child_reset_process(void)
{
    static const int deadly[] = {SIGSEGV, SIGBUS, SIGABRT, SIGALRM};
    for (size_t i = 0; i < sizeof(deadly) / sizeof(deadly[0]); i++)
        signal(deadly[i], SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
}

static void child_exec(const struct corpus_paths *paths, const char *argument,
                       const struct option_set *set, int out_fd, int err_fd)
{
    static char path_setting[] = "PATH=/usr/bin:/bin";
    char preload[4200];
    snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", paths->library);
    char *env[SETTINGS_MAX + 3];
    unsigned n = 0;
    env[n++] = path_setting;
    env[n++] = preload;
    for (unsigned i = 0; set->settings[i]; i++)
        env[n++] = (char *)set->settings[i];
    env[n] = NULL;
    char *args[] = {(char *)paths->buggy, (char *)argument, NULL};
    if (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(err_fd, STDERR_FILENO) < 0)
        _exit(126);
    child_reset_process();
    alarm(RUN_TIME_LIMIT_SECONDS);
    execve(paths->buggy, args, env);
    _exit(127);
}

/* Starts `buggy argument` under `set`, its output going to two memory
 * files; sets run->pid, run->out_fd and run->err_fd. */
static bool run_start(struct corpus_run *run, const struct corpus_paths *paths,
                      const char *argument, const struct option_set *set)
{
    run->out_fd = memfd_create("corpus-stdout", MFD_CLOEXEC);
    run->err_fd = memfd_create("corpus-stderr", MFD_CLOEXEC);
    if (run->out_fd < 0 || run->err_fd < 0) {
        perror("memfd_create");
        return false;
    }
    fflush(NULL);
    run->pid = fork();
    if (run->pid < 0) {
        perror("fork");
        return false;
    }
    if (run->pid == 0)
        child_exec(paths, argument, set, run->out_fd, run->err_fd);
    return true;
}

/* The text after "prog(pid,0xthread) malloc: " in a report line, or NULL
 * when the line is not a report. */
static const char *report_message(const char *line)
{
    const char *mark = strstr(line, ") malloc: ");
    return mark ? mark + strlen(") malloc: ") : NULL;
}

static bool starts_with(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

/* What a report line says about the run: the outcome it stands for, or
 * OUTCOME_NOT_CAUGHT for the lines that only follow a report. */
static enum outcome report_outcome(const char *message)
{
    static const char *const follow_ups[] = {
        "*** set a breakpoint in malloc_error_break",
        "*** Recommend using 'MallocCheckHeapStart=",
        "*** the freed ",
        "*** MallocCheckHeap: heap corruption",
    };
    for (size_t i = 0; i < sizeof(follow_ups) / sizeof(follow_ups[0]); i++)
        if (starts_with(message, follow_ups[i]))
            return OUTCOME_NOT_CAUGHT;
    if (starts_with(message, "*** malloc_zone_check:") ||
        starts_with(message, "*** MallocCheckHeap: FAILED"))
        return OUTCOME_CHECK;
    if (starts_with(message, "Incorrect checksum for freed object"))
        return OUTCOME_REUSE;
    if (starts_with(message, "*** error for object"))
        return OUTCOME_FREE;
    return OUTCOME_OTHER_REPORT;
}

/* True when one of the hexadecimal numbers in `message` is `address`. */
static bool message_names(const char *message, uint64_t address)
{
    for (const char *p = strstr(message, "0x"); p; p = strstr(p + 2, "0x")) {
        char *end;
        unsigned long long value = strtoull(p, &end, 16);
        if (end > p + 2 && value == address)
            return true;
    }
    return false;
}

/* Goes through the report lines: the first one that tells an outcome
 * decides it; also counts lines and looks for the block's address. */
static enum outcome scan_reports(struct corpus_run *run)
{
    enum outcome first = OUTCOME_NOT_CAUGHT;
    char *saved, *copy = strdup(run->err);
    if (!copy) {
        fprintf(stderr, "corpus: out of memory\n");
        exit(EXIT_FAILURE);
    }
    for (char *line = strtok_r(copy, "\n", &saved); line;
         line = strtok_r(NULL, "\n", &saved)) {
        const char *message = report_message(line);
        if (!message)
            continue;
        enum outcome said = report_outcome(message);
        if (first == OUTCOME_NOT_CAUGHT)
            first = said;
        run->error_lines += starts_with(message, "*** error for object");
        run->breakpoint_lines +=
            starts_with(message, "*** set a breakpoint in malloc_error_break");
        if (run->block_known && message_names(message, run->block))
            run->names_block = true;
    }
    free(copy);
    return first;
}

/* The rest of the first line of `text` that starts with `prefix`, or
 * NULL. */
static const char *line_after(const char *text, const char *prefix)
{
    size_t length = strlen(prefix);
    for (const char *p = strstr(text, prefix); p; p = strstr(p + 1, prefix))
        if (p == text || p[-1] == '\n')
            return p + length;
    return NULL;
}

static void scan_output(struct corpus_run *run)
{
    const char *block = line_after(run->out, "block 0x");
    if (block) {
        run->block = strtoull(block, NULL, 16);
        run->block_known = true;
    }
    const char *last_words = line_after(run->out, "survived");
    run->survived = last_words && (*last_words == '\n' || !*last_words) &&
                    WIFEXITED(run->status) && WEXITSTATUS(run->status) == 0;
}

static bool read_scribbled_word(const struct corpus_run *run)
{
    const char *word = line_after(run->out, "first word 0x");
    return word && strtoull(word, NULL, 16) == 0xaaaaaaaaaaaaaaaaULL;
}

static enum outcome classify(struct corpus_run *run)
{
    scan_output(run);
    enum outcome reported = scan_reports(run);
    if (reported != OUTCOME_NOT_CAUGHT)
        return reported;
    if (WIFSIGNALED(run->status)) {
        int signal_number = WTERMSIG(run->status);
        if (signal_number == SIGSEGV || signal_number == SIGBUS)
            return OUTCOME_INSTRUCTION;
        return signal_number == SIGALRM ? OUTCOME_TIMEOUT : OUTCOME_CRASHED;
    }
    if (!run->survived)
        return OUTCOME_CRASHED;
    if (run->kind == BUG_UNINITIALISED_READ && read_scribbled_word(run))
        return OUTCOME_EXPOSED;
    return OUTCOME_NOT_CAUGHT;
}

static void run_finish(struct corpus_run *run, int status)
{
    run->status = status;
    run->out = read_capture(run->out_fd);
    run->err = read_capture(run->err_fd);
    if (!run->out || !run->err) {
        fprintf(stderr, "corpus: out of memory\n");
        exit(EXIT_FAILURE);
    }
    run->outcome = classify(run);
    run->pid = 0;
}

static unsigned job_count(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long jobs = cpus > 0 ? 2 * cpus : 4;
    return (unsigned)(jobs > JOBS_MAX ? JOBS_MAX : jobs);
}

static struct corpus_run *find_running(struct corpus_run *runs, size_t count,
                                       pid_t pid)
{
    for (size_t i = 0; i < count; i++)
        if (runs[i].pid == pid)
            return &runs[i];
    return NULL;
}

struct corpus_run *corpus_run_all(const struct corpus_paths *paths)
{
    size_t count = expectation_count * SET_COUNT;
    struct corpus_run *runs = calloc(count, sizeof(*runs));
    if (!runs)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        runs[i].row = &expectations[i / SET_COUNT];
        runs[i].kind = bug_kind_of(runs[i].row->case_name);
        runs[i].set = (enum option_set_index)(i % SET_COUNT);
    }
    unsigned jobs = job_count(), running = 0;
    size_t next = 0;
    while (next < count || running > 0) {
        while (running < jobs && next < count) {
            struct corpus_run *run = &runs[next++];
            if (!run_start(run, paths, run->row->case_name,
                           &option_sets[run->set]))
                exit(EXIT_FAILURE);
            running++;
        }
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0 && errno == EINTR)
            continue;
        struct corpus_run *done = pid > 0 ? find_running(runs, count, pid) : NULL;
        if (!done) {
            perror("corpus: waitpid");
            exit(EXIT_FAILURE);
        }
        run_finish(done, status);
        running--;
    }
    return runs;
}

struct corpus_run *corpus_run_at(struct corpus_run *runs, size_t row,
                                 enum option_set_index set)
{
    return &runs[row * SET_COUNT + set];
}

static bool probe_sees_feature(struct corpus_run *runs,
                               const struct feature_probe *probe)
{
    for (size_t row = 0; row < expectation_count; row++) {
        if (probe->kind != BUG_UNKNOWN &&
            bug_kind_of(expectations[row].case_name) != probe->kind)
            continue;
        if (corpus_run_at(runs, row, probe->set)->outcome !=
            corpus_run_at(runs, row, probe->baseline)->outcome)
            return true;
    }
    return false;
}

unsigned corpus_detect_features(struct corpus_run *runs)
{
    unsigned present = 0;
    for (size_t i = 0; i < feature_probe_count; i++)
        if (probe_sees_feature(runs, &feature_probes[i]))
            present |= feature_probes[i].feature;
    return present;
}

char *corpus_list_cases(const struct corpus_paths *paths)
{
    struct corpus_run listing = {.row = NULL};
    if (!run_start(&listing, paths, "--list", &option_sets[SET_NONE]))
        return NULL;
    int status;
    while (waitpid(listing.pid, &status, 0) < 0)
        if (errno != EINTR)
            return NULL;
    char *list = read_capture(listing.out_fd);
    free(read_capture(listing.err_fd));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        free(list);
        return NULL;
    }
    return list;
}
