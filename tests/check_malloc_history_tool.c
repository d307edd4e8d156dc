/*
 * malloc_history(1) on logs kept by tests/stacklog_probe and
 * tests/leaks_target runs whose blocks are known: the events of an
 * address (start or inside), the groups by stack in both orders, the call
 * tree both ways, the high-water mark, the temporaries, JSON, the frames
 * of code inlined into its caller (tests/inline_probe), and the bad
 * inputs.
 */
#include "config.h"
#include "tool_runner.h"

#include <check.h>
#include <fcntl.h>
#include <mallocdebug/stack_log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HISTORY "tools/malloc_history"
#define PROBE "tests/stacklog_probe"

static char directory[] = "/tmp/mallocdebug-history-XXXXXX";

/* Runs `program scenario` with `mode` logging into `directory`, keeping
 * the log; its output into `out`, the log's path into `log`. */
static void record(const char *program, const char *scenario, const char *mode,
                   const char *extra, char *out, size_t out_size, char *log,
                   size_t log_size)
{
    char command[1024];
    snprintf(command, sizeof(command),
             "MallocStackLoggingDirectory=%s MallocStackLoggingDontDeleteStackLogFile=1 "
             "MallocStackLogging=%s %s %s %s 2>/dev/null",
             directory, mode, extra ? extra : "", program, scenario);
    FILE *pipe = popen(command, "r");
    ck_assert_ptr_nonnull(pipe);
    size_t n = fread(out, 1, out_size - 1, pipe);
    out[n] = '\0';
    ck_assert_int_eq(pclose(pipe), 0);
    const char *base = strrchr(program, '/') + 1;
    snprintf(log, log_size, "%s/mallocdebug.%lu.%s.stacklog", directory,
             target_value(out, "pid"), base);
}

/* Whether `text` has a frame of `function` in the probe's source: the
 * path is as the compiler recorded it, relative to where it ran (in a
 * VPATH build, ../../tests/stacklog_probe.c). */
static bool has_probe_frame(const char *text, const char *function)
{
    char frame[64];
    snprintf(frame, sizeof(frame), "| %s  ", function);
    for (const char *at = text; (at = strstr(at, frame)); at++) {
        const char *end = strpbrk(at + 1, "|\n");
        const char *file = strstr(at, "tests/stacklog_probe.c:");
        if (file && (!end || file < end))
            return true;
    }
    return false;
}

static unsigned long nth_value(const char *text, const char *key, unsigned n)
{
    const char *at = text;
    for (unsigned i = 0; i <= n; i++) {
        at = strstr(at, key);
        ck_assert_ptr_nonnull(at);
        at += strlen(key);
    }
    return strtoul(at, NULL, 16);
}

START_TEST(test_events_of_an_address)
{
    char out[4096], log[512];
    record(PROBE, "sites", "full", NULL, out, sizeof(out), log, sizeof(log));
    unsigned long freed = target_value(out, "freed");
    unsigned long kept = nth_value(out, "\na ", 1);
    char address[32], inside[32];
    snprintf(address, sizeof(address), "%#lx", freed);
    snprintf(inside, sizeof(inside), "%#lx", kept + 100);
    struct tool_run run;
    tool_run(&run, HISTORY, log, address, inside, (char *)NULL);
    ck_assert_msg(run.status == 0, "%s", run.err);
    char line[128];
    snprintf(line, sizeof(line), "2 events for %#lx:\nALLOC %#lx-%#lx [size=24]: thread_",
             freed, freed, freed + 23);
    ck_assert_msg(strstr(run.out, line), "no \"%s\" in:\n%s", line, run.out);
    snprintf(line, sizeof(line), "\nFREE  %#lx-%#lx [size=24]: thread_", freed,
             freed + 23);
    ck_assert_msg(strstr(run.out, line), "%s", run.out);
    /* Both through site_a, in the probe's source. */
    ck_assert_msg(has_probe_frame(run.out, "site_a"), "%s", run.out);
    snprintf(line, sizeof(line), "1 event for %#lx:\nALLOC %#lx-%#lx [size=3000]",
             kept + 100, kept, kept + 2999);
    ck_assert_msg(strstr(run.out, line), "%s", run.out);
}
END_TEST

START_TEST(test_groups_and_high_water_mark)
{
    char out[4096], log[512];
    record(PROBE, "sites", "full", NULL, out, sizeof(out), log, sizeof(log));
    struct tool_run end, peak, count;
    tool_run(&end, HISTORY, log, "-allBySize", (char *)NULL);
    ck_assert_msg(end.status == 0, "%s", end.err);
    /* site_a: 3000 and 2 MiB live at the end (the 24 bytes were freed);
     * site_b: two calloc'ed 100-byte blocks, from two call sites (the
     * compiler unrolls the probe's loop); stdout's buffer. */
    ck_assert_msg(strstr(end.out, "live at the end: 5 calls for 2104448 bytes, "
                                  "from 4 stacks"), "%s", end.out);
    const char *a = strstr(end.out, "2 calls for 2100152 bytes: thread_");
    const char *b = strstr(end.out, "1 call for 100 bytes: thread_");
    ck_assert_msg(a && b && a < b, "%s", end.out);
    ck_assert(has_probe_frame(a, "site_a"));
    ck_assert(has_probe_frame(b, "site_b"));
    tool_run(&peak, HISTORY, log, "-highWaterMark", "-allBySize", (char *)NULL);
    ck_assert_msg(strstr(peak.out, "live at the high-water mark: 6 calls for "
                                   "2104472 bytes"), "%s", peak.out);
    ck_assert_msg(strstr(peak.out, "3 calls for 2100176 bytes"), "%s", peak.out);
    tool_run(&count, HISTORY, log, "-all_by_count", (char *)NULL);
    ck_assert_int_eq(count.status, 0);
    /* By count, site_a's two blocks still come first, then the 4 KiB
     * buffer before the 100-byte blocks: ties go by bytes. */
    const char *first = strstr(count.out, "2 calls for 2100152");
    const char *second = strstr(count.out, "1 call for 4096");
    ck_assert_msg(first && second && first < second, "%s", count.out);
}
END_TEST

START_TEST(test_call_tree_both_ways)
{
    char out[8192], log[512];
    record("tests/leaks_target", "exit", "full", NULL, out, sizeof(out), log,
           sizeof(log));
    struct tool_run run;
    tool_run(&run, HISTORY, log, "-callTree", (char *)NULL);
    ck_assert_msg(run.status == 0, "%s", run.err);
    /* The list's three 48-byte blocks, under main, deeper than main. */
    const char *main_line = strstr(run.out, "+ 1 (200 bytes) main");
    const char *list = strstr(run.out, "+ 3 (144 bytes) make_leaked_list");
    ck_assert_msg(main_line && list, "%s", run.out);
    tool_run(&run, HISTORY, log, "-callTree", "-invert", (char *)NULL);
    /* Inverted, the allocating function hangs right under the root. */
    ck_assert_msg(strstr(run.out, "\n      + 3 (144 bytes) make_leaked_list"), "%s",
                  run.out);
}
END_TEST

START_TEST(test_temporaries)
{
    char out[4096], log[512];
    record(PROBE, "compact", "full", "MallocStackLoggingNoCompact=1", out,
           sizeof(out), log, sizeof(log));
    struct tool_run run;
    tool_run(&run, HISTORY, log, "-temporaries", (char *)NULL);
    ck_assert_msg(run.status == 0, "%s", run.err);
    const char *group = strstr(run.out, "1 temporary allocation for 40 bytes: thread_");
    ck_assert_msg(group && strstr(group, "site_a"), "%s", run.out);
    group = strstr(run.out, "1 temporary allocation for 100000 bytes: thread_");
    ck_assert_msg(group && strstr(group, "site_a"), "%s", run.out);
    /* Compacted, the pairs are gone and the report says so. */
    record(PROBE, "compact", "full", NULL, out, sizeof(out), log, sizeof(log));
    tool_run(&run, HISTORY, log, "-temporaries", (char *)NULL);
    ck_assert_msg(strstr(run.out, "the log is compacted: 2 allocate-and-free"), "%s",
                  run.out);
}
END_TEST

START_TEST(test_json)
{
    char out[4096], log[512];
    record(PROBE, "sites", "full", NULL, out, sizeof(out), log, sizeof(log));
    char address[32];
    snprintf(address, sizeof(address), "%#lx", target_value(out, "freed"));
    struct tool_run run;
    tool_run(&run, HISTORY, "--json", log, address, (char *)NULL);
    ck_assert_int_eq(run.status, 0);
    char expected[128];
    snprintf(expected, sizeof(expected),
             "{\"event\":\"FREE\",\"order\":");
    ck_assert_msg(strstr(run.out, expected), "%s", run.out);
    snprintf(expected, sizeof(expected), "\"address\":%lu,\"size\":24",
             target_value(out, "freed"));
    ck_assert_msg(strstr(run.out, expected), "%s", run.out);
    tool_run(&run, HISTORY, "--json", log, "-allBySize", (char *)NULL);
    ck_assert_msg(strstr(run.out, "\"count\":5,\"bytes\":2104448,\"groups\":"
                                  "[{\"count\":2,\"bytes\":2100152"), "%s", run.out);
}
END_TEST

/* The frames of tests/inline_probe's block as malloc_history writes them:
 * the function the allocation was inlined into, at the inlined call,
 * then the inlined function, at its malloc call.  The source path is the
 * one the compiler recorded, found before "inline_probe.c:". */
static void inlined_frames(const char *text, const char *out, char *caller,
                           char *inlined, size_t size)
{
    const char *at = strstr(text, "allocate_through_inline  ");
    ck_assert_msg(at != NULL, "%s", text);
    at += strlen("allocate_through_inline  ");
    const char *file = strstr(at, "inline_probe.c:");
    ck_assert_ptr_nonnull(file);
    int directory_length = (int)(file - at);
    snprintf(caller, size, "allocate_through_inline  %.*sinline_probe.c:%lu",
             directory_length, at, target_value(out, "call_line"));
    snprintf(inlined, size, "inlined_allocation  %.*sinline_probe.c:%lu",
             directory_length, at, target_value(out, "malloc_line"));
}

/* The tree line holding `frame`, and how far it is indented. */
static const char *tree_line(const char *text, const char *frame, int *indent)
{
    const char *at = strstr(text, frame);
    ck_assert_msg(at != NULL, "no \"%s\" in:\n%s", frame, text);
    const char *start = at;
    while (start > text && start[-1] != '\n')
        start--;
    *indent = (int)strspn(start, " ");
    return at;
}

START_TEST(test_inlined_calls_are_frames)
{
    char out[4096], log[512];
    record("tests/inline_probe", "run", "full", NULL, out, sizeof(out), log,
           sizeof(log));
    char address[32];
    snprintf(address, sizeof(address), "%#lx", target_value(out, "block"));
    struct tool_run run;
    tool_run(&run, HISTORY, log, address, (char *)NULL);
    ck_assert_msg(run.status == 0, "%s", run.err);
    char caller[300], inlined[300], expected[700];
    inlined_frames(run.out, out, caller, inlined, sizeof(caller));
    snprintf(expected, sizeof(expected), "| %s | %s\n", caller, inlined);
    ck_assert_msg(strstr(run.out, expected), "no \"%s\" in:\n%s", expected,
                  run.out);

    tool_run(&run, HISTORY, "--json", log, address, (char *)NULL);
    snprintf(expected, sizeof(expected), "\"%s\",\"%s\"]", caller, inlined);
    ck_assert_msg(strstr(run.out, expected), "no \"%s\" in:\n%s", expected,
                  run.out);

    /* In the call tree, a level each: the inlined function called from
     * its caller, or inverted, its caller under it, and main under that. */
    int outer, inner, main_indent;
    tool_run(&run, HISTORY, log, "-callTree", (char *)NULL);
    const char *from = tree_line(run.out, caller, &outer);
    tree_line(from, inlined, &inner);
    ck_assert_msg(inner == outer + 2, "%s", run.out);
    tool_run(&run, HISTORY, log, "-callTree", "-invert", (char *)NULL);
    from = tree_line(run.out, inlined, &inner);
    ck_assert_msg(inner == 6, "%s", run.out); /* right under the root */
    from = tree_line(from, caller, &outer);
    ck_assert_msg(outer == 8, "%s", run.out);
    tree_line(from, "bytes) main  ", &main_indent);
    ck_assert_msg(main_indent == 10, "%s", run.out);
}
END_TEST

static void expect_error(const struct tool_run *run, const char *words)
{
    ck_assert_msg(run->status == 2, "status %d: %s", run->status, run->err);
    ck_assert_msg(strstr(run->err, words), "expected \"%s\" in: %s", words, run->err);
}

/* A log cut short is read as far as it goes, and the tool says so. */
START_TEST(test_truncated_log_is_read_with_a_warning)
{
    char out[4096], log[512];
    record(PROBE, "sites", "full", NULL, out, sizeof(out), log, sizeof(log));
    int fd = open(log, O_RDWR);
    ck_assert_int_ge(fd, 0);
    struct mdlog_header header;
    ck_assert_int_eq(pread(fd, &header, sizeof(header), 0), sizeof(header));
    ck_assert_uint_ge(header.chunk_count, 2);
    off_t cut = (off_t)(header.header_size +
                        (header.chunk_count - 1) * (uint64_t)header.chunk_size);
    ck_assert_int_eq(ftruncate(fd, cut), 0);
    close(fd);
    struct tool_run run;
    tool_run(&run, HISTORY, log, "-allEvents", (char *)NULL);
    ck_assert_msg(run.status == 0, "%s", run.err);
    char line[700];
    snprintf(line, sizeof(line),
             "malloc_history: warning: %s: truncated: the header lists %llu "
             "chunks, the file holds %llu; reading those\n",
             log, (unsigned long long)header.chunk_count,
             (unsigned long long)header.chunk_count - 1);
    ck_assert_msg(strstr(run.err, line), "no \"%s\" in:\n%s", line, run.err);
}
END_TEST

/* Copies `from` to `to`. */
static void copy_file(const char *from, const char *to)
{
    char command[1200];
    snprintf(command, sizeof(command), "cp '%s' '%s'", from, to);
    ck_assert_int_eq(system(command), 0);
}

/* A process that is gone, named by its pid: its log in the default
 * directory is read (the probe's log, recorded elsewhere, is put there
 * under its name), and leaks, which needs the process, names the log. */
START_TEST(test_pid_of_a_process_that_is_gone)
{
    char out[4096], log[512], left[512];
    record(PROBE, "sites", "full", NULL, out, sizeof(out), log, sizeof(log));
    char pid[32];
    snprintf(pid, sizeof(pid), "%lu", target_value(out, "pid"));
    snprintf(left, sizeof(left), "%s/mallocdebug.%s.stacklog_probe.stacklog",
             MDLOG_DEFAULT_DIRECTORY, pid);
    copy_file(log, left);
    struct tool_run history, heap, leaks, leaks_of_log;
    tool_run(&history, HISTORY, pid, "-allBySize", (char *)NULL);
    tool_run(&heap, "tools/heap", pid, (char *)NULL);
    tool_run(&leaks, "tools/leaks", pid, (char *)NULL);
    tool_run(&leaks_of_log, "tools/leaks", left, (char *)NULL);
    unlink(left);
    char gone[700];
    snprintf(gone, sizeof(gone), "process %s is gone; reading the log it left, %s\n",
             pid, left);
    ck_assert_msg(history.status == 0, "%s", history.err);
    ck_assert_msg(strstr(history.err, gone), "%s", history.err);
    ck_assert_msg(has_probe_frame(history.out, "site_a"), "%s", history.out);
    ck_assert_msg(heap.status == 0, "%s", heap.err);
    ck_assert_msg(strstr(heap.err, gone), "%s", heap.err);
    expect_error(&leaks, "leaks reads a running process's memory, but the log it left");
    ck_assert_msg(strstr(leaks.err, left), "%s", leaks.err);
    expect_error(&leaks_of_log, "leaks reads a running process's memory, not a log");
    struct tool_run leaks_of_nothing;
    tool_run(&leaks_of_nothing, "tools/leaks", left, (char *)NULL);
    expect_error(&leaks_of_nothing, "no such file, and no running process of that name");
}
END_TEST

/* Threads that reallocate all the time, a block one gives back handed
 * to another at once: each reading of the running process is of one
 * moment, in which every thread holds its blocks (but the one it may be
 * reallocating).  Counts loaded chunk by chunk used to take in a block's
 * reuse without its free, and a thread lost hundreds of its blocks. */
START_TEST(test_a_running_process_is_read_at_one_moment)
{
    char setting[200];
    snprintf(setting, sizeof(setting), "MallocStackLoggingDirectory=%s", directory);
    const char *environment[] = {"MallocStackLogging=full", setting, NULL};
    struct running_target target;
    ck_assert_msg(target_start(&target, environment, "tests/heap_target",
                               "reallocs", (char *)NULL),
                  "the target did not start: %s", target.output);
    const char *kept_line = strstr(target.output, "kept_blocks ");
    ck_assert_ptr_nonnull(kept_line);
    unsigned long kept = strtoul(kept_line + strlen("kept_blocks "), NULL, 10);
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)target.pid);
    for (int round = 0; round < 8; round++) {
        struct tool_run run;
        tool_run(&run, HISTORY, pid, "-allByCount", (char *)NULL);
        ck_assert_msg(run.status == 0, "%s", run.err);
        unsigned threads = 0;
        for (const char *line = run.out; (line = strstr(line, "\n")); line++) {
            const char *end = strchr(line + 1, '\n');
            const char *site = strstr(line + 1, "reallocate_kept");
            if (!site || (end && site > end))
                continue;
            unsigned long count = strtoul(line + 1, NULL, 10);
            ck_assert_msg(count + 1 >= kept && count <= kept,
                          "round %d: a thread holds %lu blocks, not %lu:\n%.1500s",
                          round, count, kept, run.out);
            threads++;
        }
        ck_assert_msg(threads == 4, "round %d: %u threads\n%.1500s", round,
                      threads, run.out);
        usleep(200000);
    }
    ck_assert_int_eq(target_finish(&target), 0);
}
END_TEST

START_TEST(test_bad_inputs)
{
    char out[4096], log[512];
    record(PROBE, "sites", "lite", NULL, out, sizeof(out), log, sizeof(log));
    struct tool_run run;
    tool_run(&run, HISTORY, log, "-allBySize", (char *)NULL);
    expect_error(&run, "recorded in lite mode");
    record(PROBE, "sites", "full", NULL, out, sizeof(out), log, sizeof(log));
    tool_run(&run, HISTORY, log, "0xnothex", (char *)NULL);
    expect_error(&run, "bad address \"0xnothex\"");
    static char many[257][20];
    char *arguments[260] = {(char *)HISTORY, log};
    for (int i = 0; i < 257; i++) {
        snprintf(many[i], sizeof(many[i]), "%#x", 0x1000 + 16 * i);
        arguments[2 + i] = many[i];
    }
    tool_run_argv(&run, arguments);
    expect_error(&run, "too many addresses: give at most 256 at a time");
    tool_run(&run, HISTORY, log, "-allBySize", "-callTree", (char *)NULL);
    expect_error(&run, "give one view");
    tool_run(&run, HISTORY, log, "-allBySize", "-invert", (char *)NULL);
    expect_error(&run, "-invert goes with -callTree");
    tool_run(&run, HISTORY, log, "-allEvents", "-highWaterMark", (char *)NULL);
    expect_error(&run, "-highWaterMark goes with");
    tool_run(&run, HISTORY, "/nonexistent/mallocdebug.1.x.stacklog", "-allEvents",
             (char *)NULL);
    expect_error(&run, "/nonexistent/mallocdebug.1.x.stacklog");
    tool_run(&run, HISTORY, "2147483600", "-allEvents", (char *)NULL);
    expect_error(&run, "no process 2147483600");
    tool_run(&run, HISTORY, log, (char *)NULL);
    expect_error(&run, "give addresses or a view");
    /* Another user's process: as root, look at this one as nobody. */
    if (getuid() == 0) {
        char pid[32];
        snprintf(pid, sizeof(pid), "%d", (int)getpid());
        tool_run_as_nobody(&run, HISTORY, pid, "-allEvents", (char *)NULL);
        tool_expect_refused_to_nobody(&run, "malloc_history");
    }
}
END_TEST

int main(void)
{
    TCase *tc = tcase_create("malloc_history");
    tcase_add_test(tc, test_events_of_an_address);
    tcase_add_test(tc, test_groups_and_high_water_mark);
    tcase_add_test(tc, test_call_tree_both_ways);
    tcase_add_test(tc, test_temporaries);
    tcase_add_test(tc, test_json);
    tcase_add_test(tc, test_inlined_calls_are_frames);
    tcase_add_test(tc, test_truncated_log_is_read_with_a_warning);
    tcase_add_test(tc, test_pid_of_a_process_that_is_gone);
    tcase_add_test(tc, test_a_running_process_is_read_at_one_moment);
    tcase_add_test(tc, test_bad_inputs);
    return tool_suite_run("malloc_history tool", tc, directory);
}
