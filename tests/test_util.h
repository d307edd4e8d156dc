/*
 * Helpers shared by the Check test programs: capturing what the library
 * writes to stderr, the exact macOS-style report lines, memory probes and
 * a small deterministic random generator.  None of them allocates while a
 * capture is open, except where noted.
 */
#ifndef MALLOCDEBUG_TEST_UTIL_H
#define MALLOCDEBUG_TEST_UTIL_H

#include <check.h>
#include <malloc/malloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KiB (1024UL)
#define MiB (1024UL * 1024UL)

/* Hides a pointer's origin from the compiler, so that freeing a stack or
 * global address compiles without -Wfree-nonheap-object. */
static inline void *launder(void *p)
{
    __asm__ volatile("" : "+r"(p));
    return p;
}

static inline size_t launder_size(size_t n)
{
    __asm__ volatile("" : "+r"(n));
    return n;
}

/* ---- stderr capture ---- */
struct capture {
    int saved_fd;
    int mem_fd;
};
/* Redirects file descriptor 2 into an in-memory file. */
void capture_begin(struct capture *capture);
/* Restores fd 2 and copies what was written (NUL-terminated, truncated to
 * size - 1).  Returns the full length written. */
size_t capture_end(struct capture *capture, char *buffer, size_t size);
/* Lines in a NUL-terminated text (each ending with '\n'). */
unsigned count_lines(const char *text);
/* Lines containing `needle`. */
unsigned count_lines_with(const char *text, const char *needle);

/* ---- report lines ---- */
/* "prog(pid,0xthread) malloc: " as the library prints it for this thread. */
void report_prefix(char *buffer, size_t size);
/* The two lines of a pointer error: the error line and the
 * malloc_error_break hint, each ending with '\n'. */
void expected_pointer_error(char *buffer, size_t size, const void *pointer,
                            const char *what);

/* ---- memory probes ---- */
/* True when the page holding `address` is mapped (msync does not fail
 * with ENOMEM). */
bool page_is_mapped(const void *address);
/* Resident set size of this process, in bytes (from /proc/self/statm). */
size_t resident_bytes(void);
/* True when `zone` is in malloc_get_all_zones() of this process. */
bool zone_is_registered(malloc_zone_t *zone);
/* Fills / checks `size` bytes with a pattern that depends on `seed` and
 * on each byte's offset. */
void fill_pattern(void *block, size_t size, unsigned seed);
bool check_pattern(const void *block, size_t size, unsigned seed);
bool is_all_zero(const void *block, size_t size);

/* ---- random numbers (xorshift64*) ---- */
static inline uint64_t test_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* ---- helper programs run with Malloc* settings ---- */
#define PROBE_OUTPUT_MAX 16384

struct probe_run {
    char out[PROBE_OUTPUT_MAX];
    char err[PROBE_OUTPUT_MAX];
    int status; /* from waitpid */
};

/* Runs `program action` with the NULL-terminated "Name=value" settings
 * added to a clean environment, collecting its output.  When
 * `stop_expected`, the program must stop itself once; it is then
 * continued. */
void probe(struct probe_run *run, const char *program, const char *action,
           const char *const *settings, bool stop_expected);
/* The same with up to six arguments, a NULL-terminated list. */
void probe_with_args(struct probe_run *run, const char *program,
                     const char *const *args, const char *const *settings,
                     bool stop_expected);
/* A helper program left running: started like probe_with_args, its
 * stdout is read until a line equal to `until` (or its end) into `out`,
 * and it runs until probe_finish closes its stdin. */
struct probe_session {
    pid_t pid;
    int to_child;       /* its stdin */
    int from_child;     /* its stdout */
    int err_from_child; /* its stderr */
    char out[PROBE_OUTPUT_MAX];
};
void probe_start(struct probe_session *session, const char *program,
                 const char *const *args, const char *const *settings,
                 const char *until);
/* Closes its stdin, collects the rest of its output and waits for it. */
void probe_finish(struct probe_session *session, struct probe_run *run);
/* The number after "key " at the start of a line of `out`; the test
 * fails when there is none. */
unsigned long output_value(const char *out, const char *key);
bool exited_cleanly(const struct probe_run *run);
/* Reads a descriptor to its end into a NUL-terminated buffer. */
void read_fd_into(int fd, char *buffer, size_t size);
bool aborted(const struct probe_run *run);
/* Killed by SIGSEGV or SIGBUS. */
bool faulted(const struct probe_run *run);

/* Runs a suite, each test in a child process; EXIT_SUCCESS when all pass. */
int run_suite(Suite *suite);

#endif
