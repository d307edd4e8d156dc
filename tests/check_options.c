/*
 * The Malloc* environment variables.  Each test starts option_probe with
 * some variables set, and checks its output, its reports and how it
 * ended against what the options promise.
 */
#include "test_util.h"

#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROBE "tests/option_probe"

START_TEST(test_help_lists_every_variable)
{
    static const char *const settings[] = {"MallocHelp=1", NULL};
    static const char *const names[] = {
        "MallocScribble", "MallocPreScribble", "MallocZeroOnFree",
        "MallocErrorAbort", "MallocCorruptionAbort", "MallocErrorStop",
        "MallocErrorSleep", "MallocDebugReport", "MallocLogFile",
        "MallocCheckHeapStart", "MallocCheckHeapEach", "MallocCheckHeapSleep",
        "MallocCheckHeapAbort", "MallocFailAfter", "MallocFailRate",
        "MallocFailSeed", "MallocHelp"};
    struct probe_run run;
    probe(&run, PROBE, "nothing", settings, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.out, "ran\n");
    ck_assert_uint_eq(count_lines_with(run.err, "environment variables that can be set"), 1);
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char item[64];
        snprintf(item, sizeof(item), "- %s", names[i]);
        ck_assert_msg(count_lines_with(run.err, item) == 1, "help lacks %s", names[i]);
    }
}
END_TEST

START_TEST(test_malformed_values_warn_once_and_default)
{
    static const char *const settings[] = {
        "MallocScribble=maybe", "MallocCheckHeapEach=ten",
        "MallocDebugReport=loud", "MallocErrorSleep=-4",
        "MallocLogFile=/nonexistent-dir/log", NULL};
    struct probe_run run;
    probe(&run, PROBE, "fill", settings, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_uint_eq(count_lines(run.err), 5);
    ck_assert_uint_eq(count_lines_with(run.err, "MallocScribble=maybe is not valid"), 1);
    ck_assert_uint_eq(count_lines_with(run.err, "MallocCheckHeapEach=ten is not valid"), 1);
    ck_assert_uint_eq(count_lines_with(run.err, "MallocDebugReport=loud is not valid"), 1);
    ck_assert_uint_eq(count_lines_with(run.err, "MallocErrorSleep=-4 is not valid"), 1);
    ck_assert_uint_eq(count_lines_with(run.err, "MallocLogFile=/nonexistent-dir/log is not valid"), 1);
    /* Scribbling stayed off: a fresh block is not filled. */
    ck_assert_uint_eq(count_lines_with(run.out, "malloc aa aa all"), 0);
}
END_TEST

START_TEST(test_scribble)
{
    static const char *const settings[] = {"MallocScribble=1", NULL};
    struct probe_run run;
    probe(&run, PROBE, "fill", settings, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.err, "");
    ck_assert_str_eq(run.out, "malloc aa aa all\n"
                              "calloc 00 00 all\n"
                              "freed 55 55 all\n"
                              "realloc-head 22 22 all\n"
                              "realloc-tail aa aa all\n");
}
END_TEST

START_TEST(test_pre_scribble_leaves_freed_blocks)
{
    static const char *const settings[] = {"MallocPreScribble=YES", NULL};
    struct probe_run run;
    probe(&run, PROBE, "fill", settings, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.out, "malloc aa aa all\n"
                              "calloc 00 00 all\n"
                              "freed 11 11 all\n"
                              "realloc-head 22 22 all\n"
                              "realloc-tail aa aa all\n");
}
END_TEST

START_TEST(test_zero_on_free)
{
    static const char *const settings[] = {"MallocZeroOnFree=1", NULL};
    struct probe_run run;
    probe(&run, PROBE, "fill", settings, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_uint_eq(count_lines_with(run.out, "freed 00 00 all"), 1);
}
END_TEST

START_TEST(test_error_abort)
{
    static const char *const settings[] = {"MallocErrorAbort=1", NULL};
    struct probe_run run;
    probe(&run, PROBE, "double-free", settings, false);
    ck_assert(aborted(&run));
    ck_assert_str_eq(run.out, "");
    ck_assert_uint_eq(count_lines_with(run.err, "pointer being freed was not allocated"), 1);
    ck_assert_uint_eq(count_lines_with(run.err, "malloc_error_break"), 1);
}
END_TEST

START_TEST(test_without_error_abort_the_program_goes_on)
{
    struct probe_run run;
    probe(&run, PROBE, "double-free", NULL, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.out, "went on\n");
    ck_assert_uint_eq(count_lines(run.err), 2);
}
END_TEST

START_TEST(test_debug_report_none_and_crash)
{
    static const char *const none[] = {"MallocDebugReport=none", NULL};
    static const char *const crash[] = {"MallocDebugReport=crash", NULL};
    static const char *const crash_abort[] = {"MallocDebugReport=crash",
                                              "MallocErrorAbort=1", NULL};
    struct probe_run run;
    probe(&run, PROBE, "double-free", none, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.err, "");
    probe(&run, PROBE, "double-free", crash, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.err, "");
    probe(&run, PROBE, "double-free", crash_abort, false);
    ck_assert(aborted(&run));
    ck_assert_uint_eq(count_lines_with(run.err, "pointer being freed was not allocated"), 1);
}
END_TEST

START_TEST(test_log_file)
{
    char path[] = "/tmp/mallocdebug-log-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    char setting[64];
    snprintf(setting, sizeof(setting), "MallocLogFile=%s", path);
    const char *const settings[] = {setting, NULL};
    struct probe_run run;
    probe(&run, PROBE, "double-free", settings, false);
    probe(&run, PROBE, "double-free", settings, false); /* appends */
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.err, "");
    char logged[PROBE_OUTPUT_MAX];
    fd = open(path, O_RDONLY);
    read_fd_into(fd, logged, sizeof(logged));
    close(fd);
    unlink(path);
    ck_assert_uint_eq(count_lines_with(logged, "pointer being freed was not allocated"), 2);
}
END_TEST

START_TEST(test_error_stop)
{
    static const char *const settings[] = {"MallocErrorStop=1", NULL};
    struct probe_run run;
    probe(&run, PROBE, "double-free", settings, true);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.out, "went on\n");
}
END_TEST

START_TEST(test_error_sleep)
{
    static const char *const settings[] = {"MallocErrorSleep=1", NULL};
    struct timespec before, after;
    struct probe_run run;
    clock_gettime(CLOCK_MONOTONIC, &before);
    probe(&run, PROBE, "double-free", settings, false);
    clock_gettime(CLOCK_MONOTONIC, &after);
    ck_assert(exited_cleanly(&run));
    double waited = (double)(after.tv_sec - before.tv_sec) +
                    (after.tv_nsec - before.tv_nsec) / 1e9;
    ck_assert_msg(waited >= 0.95, "slept only %.2f s", waited);
}
END_TEST

START_TEST(test_fail_after)
{
    static const char *const never[] = {"MallocFailAfter=100000", NULL};
    static const char *const soon[] = {"MallocFailAfter=1", NULL};
    struct probe_run run;
    probe(&run, PROBE, "fail", never, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_uint_eq(count_lines_with(run.out, "ok 200 failed 0 bad-errno 0"), 1);
    probe(&run, PROBE, "fail", soon, false);
    ck_assert(exited_cleanly(&run));
    unsigned ok = 99, failed = 0, bad = 99;
    ck_assert_int_eq(sscanf(run.out, "ok %u failed %u bad-errno %u", &ok, &failed, &bad), 3);
    ck_assert_uint_le(ok, 1);
    ck_assert_uint_eq(ok + failed, 200);
    ck_assert_uint_eq(bad, 0);
}
END_TEST

START_TEST(test_fail_rate_is_reproducible)
{
    static const char *const seed_a[] = {"MallocFailRate=10", "MallocFailSeed=7", NULL};
    static const char *const seed_b[] = {"MallocFailRate=10", "MallocFailSeed=8", NULL};
    struct probe_run first, second, other;
    probe(&first, PROBE, "fail", seed_a, false);
    probe(&second, PROBE, "fail", seed_a, false);
    probe(&other, PROBE, "fail", seed_b, false);
    ck_assert(exited_cleanly(&first));
    unsigned ok, failed, bad;
    ck_assert_int_eq(sscanf(first.out, "ok %u failed %u bad-errno %u", &ok, &failed, &bad), 3);
    ck_assert_uint_ge(failed, 5);   /* about one in ten of 200 */
    ck_assert_uint_le(failed, 45);
    ck_assert_uint_eq(bad, 0);
    ck_assert_str_eq(first.out, second.out);
    ck_assert_str_ne(first.out, other.out);
}
END_TEST

START_TEST(test_out_of_memory_report)
{
    static const char *const abort_on_error[] = {"MallocErrorAbort=1", NULL};
    struct probe_run run;
    probe(&run, PROBE, "huge", NULL, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.out, "null errno=ENOMEM\n");
    ck_assert_uint_eq(count_lines_with(run.err, "*** can't allocate region of size 70368744177664"), 1);
    probe(&run, PROBE, "huge", abort_on_error, false);
    ck_assert(aborted(&run));
}
END_TEST

START_TEST(test_check_heap_reports_failure_and_goes_on)
{
    static const char *const settings[] = {
        "MallocCheckHeapStart=5", "MallocCheckHeapEach=10",
        "MallocCheckHeapSleep=0", NULL};
    struct probe_run run;
    probe(&run, PROBE, "check-heap", settings, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.out, "went on\n");
    ck_assert_uint_ge(count_lines_with(run.err, "*** MallocCheckHeap: FAILED check at operation #"), 1);
    ck_assert_uint_ge(count_lines_with(run.err, "*** Recommend using 'MallocCheckHeapStart="), 1);
}
END_TEST

START_TEST(test_check_heap_abort)
{
    static const char *const settings[] = {
        "MallocCheckHeapStart=1", "MallocCheckHeapEach=1",
        "MallocCheckHeapAbort=1", NULL};
    struct probe_run run;
    probe(&run, PROBE, "check-heap", settings, false);
    ck_assert(aborted(&run));
    ck_assert_str_eq(run.out, "");
    ck_assert_uint_eq(count_lines_with(run.err, "FAILED check at operation #"), 1);
}
END_TEST

START_TEST(test_check_heap_passes_on_a_sound_heap)
{
    static const char *const settings[] = {
        "MallocCheckHeapStart=1", "MallocCheckHeapEach=1",
        "MallocCheckHeapAbort=1", NULL};
    struct probe_run run;
    probe(&run, PROBE, "fill", settings, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.err, "");
}
END_TEST

static Suite *options_suite(void)
{
    Suite *s = suite_create("options");
    TCase *tc = tcase_create("environment");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_help_lists_every_variable);
    tcase_add_test(tc, test_malformed_values_warn_once_and_default);
    tcase_add_test(tc, test_scribble);
    tcase_add_test(tc, test_pre_scribble_leaves_freed_blocks);
    tcase_add_test(tc, test_zero_on_free);
    tcase_add_test(tc, test_error_abort);
    tcase_add_test(tc, test_without_error_abort_the_program_goes_on);
    tcase_add_test(tc, test_debug_report_none_and_crash);
    tcase_add_test(tc, test_log_file);
    tcase_add_test(tc, test_error_stop);
    tcase_add_test(tc, test_error_sleep);
    tcase_add_test(tc, test_fail_after);
    tcase_add_test(tc, test_fail_rate_is_reproducible);
    tcase_add_test(tc, test_out_of_memory_report);
    tcase_add_test(tc, test_check_heap_reports_failure_and_goes_on);
    tcase_add_test(tc, test_check_heap_abort);
    tcase_add_test(tc, test_check_heap_passes_on_a_sound_heap);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(options_suite());
}
