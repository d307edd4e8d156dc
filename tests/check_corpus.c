/*
 * The corpus of buggy programs (tests/corpus/buggy.c), each case under
 * each option set with the library preloaded.  Every run must end as
 * tests/corpus/expected.c says: caught at the instruction, at free, at
 * reuse, by a heap check, exposed, or not caught; a report must name the
 * block the bug is about; and with no options, a bad free is reported
 * once and the program carries on with a sound heap.
 *
 * All runs happen once, in parallel, before the tests; each test then
 * judges a part of them.  Expectations that need a feature the library
 * does not have yet are counted as pending, not checked (see
 * corpus_detect_features).
 */
#include "config.h"
#include "corpus/corpus.h"
#include "test_util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static struct corpus_paths paths;
static struct corpus_run *runs;
static unsigned features_present;

static void print_settings(const struct option_set *set)
{
    fprintf(stderr, "  environment:");
    if (!set->settings[0])
        fprintf(stderr, " (no options)");
    for (unsigned i = 0; set->settings[i]; i++)
        fprintf(stderr, " %s", set->settings[i]);
    fprintf(stderr, "\n");
}

static void print_ending(int status)
{
    if (WIFEXITED(status))
        fprintf(stderr, "  exit status %d\n", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        fprintf(stderr, "  killed by signal %d (%s)\n", WTERMSIG(status),
                strsignal(WTERMSIG(status)));
}

static void print_indented(const char *title, const char *text)
{
    fprintf(stderr, "  %s:%s\n", title, *text ? "" : " (nothing)");
    while (*text) {
        size_t length = strcspn(text, "\n");
        fprintf(stderr, "    %.*s\n", (int)length, text);
        text += length + (text[length] == '\n');
    }
}

/* Case, option set, what was wrong, and everything the run showed. */
static void print_failure(const struct corpus_run *run, const char *what)
{
    fprintf(stderr, "FAIL: %s under %s: %s\n", run->row->case_name,
            option_sets[run->set].name, what);
    print_settings(&option_sets[run->set]);
    print_ending(run->status);
    print_indented("stdout", run->out);
    print_indented("stderr", run->err);
}

static bool is_pending(const struct corpus_run *run)
{
    return (expectation_needs(run->row, run->set) & ~features_present) != 0;
}

/* Whether a report of this run must name the block: every bug but the
 * uninitialised read is about one address. */
static bool must_name_block(const struct corpus_run *run)
{
    bool reported = run->outcome == OUTCOME_FREE ||
                    run->outcome == OUTCOME_REUSE ||
                    run->outcome == OUTCOME_CHECK;
    return reported && run->kind != BUG_UNINITIALISED_READ;
}

/* Compares one run with its expectation; prints what differs. */
static bool run_as_expected(const struct corpus_run *run)
{
    enum outcome expected = run->row->outcome[run->set];
    char what[256];
    if (run->outcome != expected) {
        snprintf(what, sizeof(what), "expected %s, got %s",
                 outcome_name(expected), outcome_name(run->outcome));
        print_failure(run, what);
        return false;
    }
    if (must_name_block(run) && !run->names_block) {
        snprintf(what, sizeof(what), "%s, but no report names block %#llx",
                 outcome_name(expected), (unsigned long long)run->block);
        print_failure(run, what);
        return false;
    }
    return true;
}

START_TEST(test_every_case_has_an_expectation)
{
    char *list = corpus_list_cases(&paths);
    ck_assert_msg(list != NULL, "buggy --list failed");
    size_t listed = 0;
    char *saved;
    for (char *line = strtok_r(list, "\n", &saved); line;
         line = strtok_r(NULL, "\n", &saved), listed++) {
        *strchrnul(line, '\t') = '\0';
        size_t row = 0;
        while (row < expectation_count &&
               strcmp(expectations[row].case_name, line) != 0)
            row++;
        ck_assert_msg(row < expectation_count, "case %s has no expectation", line);
        ck_assert_msg(bug_kind_of(line) != BUG_UNKNOWN,
                      "case %s is of no known kind", line);
    }
    free(list);
    /* Names are unique on both sides, so equal counts mean equal sets. */
    ck_assert_uint_eq(listed, expectation_count);
}
END_TEST

/* One option set per iteration: each of its runs against the table. */
START_TEST(test_option_set)
{
    enum option_set_index set = (enum option_set_index)_i;
    unsigned checked = 0, pending = 0, failed = 0;
    for (size_t row = 0; row < expectation_count; row++) {
        const struct corpus_run *run = corpus_run_at(runs, row, set);
        if (is_pending(run)) {
            pending++;
            continue;
        }
        checked++;
        failed += !run_as_expected(run);
    }
    printf("option set %s: %u runs checked, %u pending\n", option_sets[set].name,
           checked, pending);
    ck_assert_msg(failed == 0, "%u of %u runs under %s are not as expected",
                  failed, checked, option_sets[set].name);
}
END_TEST

/* With no options, a double or invalid free is reported exactly once,
 * and the allocator stays sound: the program carries on, later blocks
 * are distinct and keep their contents (buggy checks), it exits 0. */
START_TEST(test_bad_frees_leave_the_allocator_sound)
{
    unsigned failed = 0;
    for (size_t row = 0; row < expectation_count; row++) {
        const struct corpus_run *run = corpus_run_at(runs, row, SET_NONE);
        if (run->kind != BUG_DOUBLE_FREE && run->kind != BUG_INVALID_FREE)
            continue;
        if (!run->survived) {
            print_failure(run, "did not survive the bad free");
            failed++;
        } else if (run->error_lines != 1 || run->breakpoint_lines != 1) {
            print_failure(run, "not exactly one report of the bad free");
            failed++;
        }
    }
    ck_assert_msg(failed == 0, "%u bad frees damaged the program", failed);
}
END_TEST

/* The table's promise: with the strictest options, every bug is caught,
 * and caught by a report (which run_as_expected makes name the block)
 * wherever it is not caught at the instruction itself. */
START_TEST(test_strictest_catches_everything)
{
    for (size_t row = 0; row < expectation_count; row++)
        ck_assert_msg(expectations[row].outcome[SET_STRICTEST] !=
                          OUTCOME_NOT_CAUGHT,
                      "the table lets %s escape the strictest options",
                      expectations[row].case_name);
}
END_TEST

static void print_pending_features(void)
{
    for (size_t i = 0; i < feature_probe_count; i++) {
        const struct feature_probe *probe = &feature_probes[i];
        if (features_present & probe->feature)
            continue;
        unsigned waiting = 0;
        for (size_t row = 0; row < expectation_count; row++)
            for (unsigned set = 0; set < SET_COUNT; set++)
                waiting += (expectation_needs(&expectations[row], set) &
                            probe->feature) != 0;
        printf("PENDING: %u expectations wait for %s, which changes no "
               "outcome in this build\n",
               waiting, probe->name);
    }
    fflush(stdout);
}

static Suite *corpus_suite(void)
{
    Suite *s = suite_create("corpus");
    TCase *tc = tcase_create("outcomes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_every_case_has_an_expectation);
    tcase_add_loop_test(tc, test_option_set, 0, SET_COUNT);
    tcase_add_test(tc, test_bad_frees_leave_the_allocator_sound);
    tcase_add_test(tc, test_strictest_catches_everything);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (!corpus_find_paths(&paths))
        return EXIT_FAILURE;
    runs = corpus_run_all(&paths);
    if (!runs)
        return EXIT_FAILURE;
    features_present = corpus_detect_features(runs);
    print_pending_features();
    return run_suite(corpus_suite());
}
