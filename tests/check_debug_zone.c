/*
 * Debug zones: canaries (MallocCanaries), checked freed fills
 * (MallocScribble, MallocCheckZeroOnFreeCorruption), guard pages
 * (MallocGuardEdges and its switches) and the MallocCheckHeap failure
 * report.  Each test starts debug_probe with the variables set and
 * checks the block it names against the report, and how it ended.
 */
#include "test_util.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#define PROBE "tests/debug_probe"

static const char *const canaries[] = {"MallocCanaries=1",
                                       "MallocCorruptionAbort=0", NULL};
static const char *const canaries_scribble[] = {
    "MallocCanaries=1", "MallocScribble=1", "MallocCorruptionAbort=0", NULL};

/* The address the probe printed as "block 0x...". */
static unsigned long long probe_block(const struct probe_run *run)
{
    const char *line = strstr(run->out, "block 0x");
    unsigned long long address = 0;
    ck_assert_msg(line && sscanf(line, "block %llx", &address) == 1,
                  "no block in: %s", run->out);
    return address;
}

/* stderr holds "<prefix>*** error for object <block>: <what>". */
static void assert_object_report(const struct probe_run *run, const char *what)
{
    char line[512];
    snprintf(line, sizeof(line), "*** error for object %#llx: %s\n",
             probe_block(run), what);
    ck_assert_msg(strstr(run->err, line), "expected \"%s\" in:\n%s", line,
                  run->err);
    ck_assert_uint_eq(count_lines_with(run->err, "*** error for object"), 1);
}

START_TEST(test_sizes_are_requested_sizes)
{
    struct probe_run run;
    probe(&run, PROBE, "sizes", canaries, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.err, "");
    ck_assert_str_eq(run.out,
                     "0: size 0 aligned 1\n1: size 1 aligned 1\n"
                     "24: size 24 aligned 1\n1000: size 1000 aligned 1\n"
                     "1010: size 1010 aligned 1\n3000: size 3000 aligned 1\n"
                     "131032: size 131032 aligned 1\n"
                     "200000: size 200000 aligned 1\ncalloc nonzero 0\n"
                     "align 32: 0 1 size 100\nalign 64: 0 1 size 100\n"
                     "align 4096: 0 1 size 100\nalign 65536: 0 1 size 100\n"
                     "align 262144: 0 1 size 100\n");
}
END_TEST

/* size, offset, report: one byte out of bounds in every size class. */
static const struct {
    const char *action;
    const char *what;
} damage_cases[] = {
    {"store:24:24", "overrun of a 24-byte block: damaged at offset 24 (canary after the block)"},
    {"store:24:31", "overrun of a 24-byte block: damaged at offset 31 (canary after the block)"},
    {"store:24:-1", "underrun of a 24-byte block: damaged at offset -1 (canary before the block)"},
    {"store:0:0", "overrun of a 0-byte block: damaged at offset 0 (canary after the block)"},
    {"store:1000:1000", "overrun of a 1000-byte block: damaged at offset 1000 (canary after the block)"},
    {"store:3000:3000", "overrun of a 3000-byte block: damaged at offset 3000 (canary after the block)"},
    {"store:3000:-16", "underrun of a 3000-byte block: damaged at offset -16 (canary before the block)"},
    {"store:131032:131032", "overrun of a 131032-byte block: damaged at offset 131032 (canary after the block)"},
    {"store:300000:300000", "overrun of a 300000-byte block: damaged at offset 300000 (canary after the block)"},
    {"store:300000:303103", "overrun of a 300000-byte block: damaged at offset 303103 (canary after the block)"},
    {"store:300000:-1", "underrun of a 300000-byte block: damaged at offset -1 (canary before the block)"},
};

START_TEST(test_damage_reported_at_free)
{
    struct probe_run run;
    probe(&run, PROBE, damage_cases[_i].action, canaries, false);
    ck_assert_msg(exited_cleanly(&run), "%s: %s", damage_cases[_i].action, run.err);
    assert_object_report(&run, damage_cases[_i].what);
    ck_assert(strstr(run.out, "survived\n"));
}
END_TEST

START_TEST(test_damage_aborts_by_default)
{
    static const char *const settings[] = {"MallocCanaries=1", NULL};
    struct probe_run run;
    probe(&run, PROBE, "store:24:24", settings, false);
    ck_assert(aborted(&run));
    ck_assert(!strstr(run.out, "survived"));
    assert_object_report(&run, damage_cases[0].what);
}
END_TEST

START_TEST(test_in_bounds_writes_are_not_damage)
{
    struct probe_run run;
    probe(&run, PROBE, "store:24:23", canaries, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.err, "");
}
END_TEST

START_TEST(test_check_finds_damage)
{
    struct probe_run run;
    probe(&run, PROBE, "store-check:3000:3001", canaries, false);
    ck_assert(exited_cleanly(&run));
    char line[512];
    snprintf(line, sizeof(line),
             "*** malloc_zone_check: zone DefaultMallocZone: overrun of a "
             "3000-byte block: damaged at offset 3001 (canary after the block) at %#llx\n",
             probe_block(&run));
    ck_assert_msg(strstr(run.err, line), "%s", run.err);
    ck_assert(strstr(run.out, "check 0\n"));
}
END_TEST

START_TEST(test_write_after_free_found_on_reuse)
{
    struct probe_run run;
    probe(&run, PROBE, "write-after-free:24:8", canaries_scribble, false);
    ck_assert(exited_cleanly(&run));
    ck_assert(strstr(run.out, "again same\n"));
    char line[512];
    snprintf(line, sizeof(line),
             "Incorrect checksum for freed object %#llx: probably modified after being freed.\n",
             probe_block(&run));
    ck_assert_msg(strstr(run.err, line), "%s", run.err);
    ck_assert(strstr(run.err, "*** the freed 32-byte block was modified at offset 8: 0x41 where 0x55 was expected\n"));
}
END_TEST

START_TEST(test_write_after_free_without_canaries)
{
    static const char *const scribble[] = {"MallocScribble=1",
                                           "MallocCorruptionAbort=0", NULL};
    struct probe_run run;
    probe(&run, PROBE, "write-after-free:3000:0", scribble, false);
    ck_assert(exited_cleanly(&run));
    ck_assert(strstr(run.err, "*** the freed 3072-byte block was modified at offset 0: 0x41 where 0x55 was expected\n"));
}
END_TEST

START_TEST(test_check_finds_write_after_free)
{
    struct probe_run run;
    probe(&run, PROBE, "freed-check:48:47", canaries_scribble, false);
    ck_assert(exited_cleanly(&run));
    ck_assert(strstr(run.out, "check 0\n"));
    char line[512];
    snprintf(line, sizeof(line),
             "freed block modified at offset 47 (a 64-byte block, probably "
             "written after being freed) at %#llx\n", probe_block(&run));
    ck_assert_msg(strstr(run.err, line), "%s", run.err);
}
END_TEST

START_TEST(test_zero_on_free_corruption)
{
    static const char *const checked[] = {"MallocZeroOnFree=1",
                                          "MallocCheckZeroOnFreeCorruption=1",
                                          "MallocCorruptionAbort=0", NULL};
    static const char *const unchecked[] = {"MallocZeroOnFree=1", NULL};
    struct probe_run run;
    probe(&run, PROBE, "write-after-free:64:3", checked, false);
    ck_assert(exited_cleanly(&run));
    ck_assert(strstr(run.err, "*** the freed 64-byte block was modified at offset 3: 0x41 where 0x0 was expected\n"));
    probe(&run, PROBE, "write-after-free:64:3", unchecked, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.err, "");
}
END_TEST

START_TEST(test_realloc_moves_the_canary)
{
    struct probe_run run;
    probe(&run, PROBE, "resize", canaries_scribble, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_msg(strstr(run.out, "grow in place 1 size 28 tail aa head 11\n"
                                  "moved 1 kept 20 size 5000\n"
                                  "shrink in place 1 size 4000\n"), "%s", run.out);
    assert_object_report(&run, "overrun of a 4000-byte block: damaged at offset 4000 (canary after the block)");
}
END_TEST

START_TEST(test_statistics_count_requested_bytes)
{
    struct probe_run run;
    probe(&run, PROBE, "statistics", canaries, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.out, "blocks 100 bytes 2400\n");
}
END_TEST

START_TEST(test_created_zones_are_debug_zones)
{
    struct probe_run run;
    probe(&run, PROBE, "created-zone", canaries, false);
    ck_assert(exited_cleanly(&run));
    assert_object_report(&run, damage_cases[0].what);
}
END_TEST

START_TEST(test_checks_race_with_threads_without_false_damage)
{
    struct probe_run run;
    probe(&run, PROBE, "threads", canaries_scribble, false);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    ck_assert_str_eq(run.out, "checks many failed 0 final 1\n");
    ck_assert_str_eq(run.err, "");
}
END_TEST

/* ---- guard pages ---- */

static const struct {
    const char *action;
    const char *settings[4];
    bool faults;
} guard_cases[] = {
    {"large-edge:303104", {"MallocGuardEdges=1"}, true},
    {"large-edge:-1", {"MallocGuardEdges=1"}, true},
    {"large-edge:303104", {"MallocGuardEdges=1", "MallocCanaries=1"}, true},
    {"large-edge:-1", {"MallocGuardEdges=1", "MallocCanaries=1"}, true},
    {"large-edge:-1", {"MallocGuardEdges=1", "MallocDoNotProtectPostlude=1"}, true},
    {"large-realloc-edge:401408", {"MallocGuardEdges=1"}, true},
    {"large-realloc-edge:-1", {"MallocGuardEdges=1"}, true},
    {"large-realloc-edge:401408", {"MallocGuardEdges=1", "MallocCanaries=1"}, true},
    {"large-realloc-edge:401407", {"MallocGuardEdges=1"}, false},
    {"region-edge:0", {"MallocGuardEdges=all"}, true},
    {"region-edge:1", {"MallocGuardEdges=all"}, true},
};

START_TEST(test_guard_pages)
{
    struct probe_run run;
    probe(&run, PROBE, guard_cases[_i].action, guard_cases[_i].settings, false);
    if (guard_cases[_i].faults)
        ck_assert_msg(faulted(&run), "case %d did not fault: %s", _i, run.out);
    else
        ck_assert_msg(exited_cleanly(&run) && strstr(run.out, "survived"),
                      "case %d: %s", _i, run.err);
}
END_TEST

/* What is beyond a block without its guard page depends on the mapping
 * next to it: the switches are checked by counting guard pages. */
static const struct {
    const char *settings[4];
    const char *expected;
} guard_page_counts[] = {
    {{"MallocGuardEdges=1"}, "guard pages per block 2\n"},
    {{"MallocGuardEdges=1", "MallocDoNotProtectPrelude=1"}, "guard pages per block 1\n"},
    {{"MallocGuardEdges=1", "MallocDoNotProtectPostlude=1"}, "guard pages per block 1\n"},
    {{"MallocGuardEdges=1", "MallocDoNotProtectPrelude=1",
      "MallocDoNotProtectPostlude=1"}, "guard pages per block 0\n"},
    {{"MallocCanaries=1"}, "guard pages per block 0\n"},
};

START_TEST(test_guard_page_switches)
{
    struct probe_run run;
    probe(&run, PROBE, "guard-pages", guard_page_counts[_i].settings, false);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.out, guard_page_counts[_i].expected);
}
END_TEST

START_TEST(test_check_heap_failure_shows_last_good_stack)
{
    static const char *const settings[] = {
        "MallocCanaries=1", "MallocCheckHeapStart=1", "MallocCheckHeapEach=1",
        "MallocCheckHeapAbort=1", NULL};
    struct probe_run run;
    probe(&run, PROBE, "check-heap", settings, false);
    ck_assert(aborted(&run));
    ck_assert(!strstr(run.out, "survived"));
    const char *failed = strstr(run.err, "*** MallocCheckHeap: FAILED check at operation #");
    const char *stack = strstr(run.err, "*** Stack for the last operation where the heap was still correct (operation #");
    const char *frame = strstr(run.err, "***   0x");
    const char *recommend = strstr(run.err, "*** Recommend using 'MallocCheckHeapStart=");
    ck_assert_msg(failed && stack && frame && recommend, "%s", run.err);
    ck_assert(failed < stack && stack < frame && frame < recommend);
    /* The program's frames, not the library's. */
    ck_assert(strstr(frame, "debug_probe)"));
    ck_assert(!strstr(run.err, "libmallocdebug"));
}
END_TEST

static Suite *debug_zone_suite(void)
{
    Suite *s = suite_create("debug zone");
    TCase *tc = tcase_create("canaries");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sizes_are_requested_sizes);
    tcase_add_loop_test(tc, test_damage_reported_at_free, 0,
                        (int)(sizeof(damage_cases) / sizeof(damage_cases[0])));
    tcase_add_test(tc, test_damage_aborts_by_default);
    tcase_add_test(tc, test_in_bounds_writes_are_not_damage);
    tcase_add_test(tc, test_check_finds_damage);
    tcase_add_test(tc, test_realloc_moves_the_canary);
    tcase_add_test(tc, test_statistics_count_requested_bytes);
    tcase_add_test(tc, test_created_zones_are_debug_zones);
    tcase_add_test(tc, test_checks_race_with_threads_without_false_damage);
    suite_add_tcase(s, tc);
    tc = tcase_create("freed fills");
    tcase_add_test(tc, test_write_after_free_found_on_reuse);
    tcase_add_test(tc, test_write_after_free_without_canaries);
    tcase_add_test(tc, test_check_finds_write_after_free);
    tcase_add_test(tc, test_zero_on_free_corruption);
    suite_add_tcase(s, tc);
    tc = tcase_create("guard pages and heap checks");
    tcase_add_loop_test(tc, test_guard_pages, 0,
                        (int)(sizeof(guard_cases) / sizeof(guard_cases[0])));
    tcase_add_loop_test(tc, test_guard_page_switches, 0,
                        (int)(sizeof(guard_page_counts) / sizeof(guard_page_counts[0])));
    tcase_add_test(tc, test_check_heap_failure_shows_last_good_stack);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(debug_zone_suite());
}
