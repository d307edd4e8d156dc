/*
 * heap(1) on a live process with a known heap (tests/heap_target): the
 * counts and bytes of each allocation site, classes named past the C
 * library's strdup, the zones, the size filters of -addresses, --json, a
 * process that allocates all the time, one stopped by job control, one
 * whose main thread ends while it is being stopped, and every bad input
 * the user can give.
 */
#include "config.h"
#include "tool_runner.h"

#include <check.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define HEAP "tools/heap"
#define TARGET "tests/heap_target"

static char directory[] = "/tmp/mallocdebug-heap-XXXXXX";

/* MallocStackLoggingDirectory for the targets: the scratch directory,
 * made by tool_suite_run. */
static const char *directory_setting(void)
{
    static char setting[300];
    snprintf(setting, sizeof(setting), "MallocStackLoggingDirectory=%s", directory);
    return setting;
}

static void start(struct running_target *target, const char *logging,
                  const char *argument)
{
    const char *environment[] = {logging, directory_setting(), NULL};
    ck_assert_msg(target_start(target, logging ? environment : NULL, TARGET,
                               argument, (char *)NULL),
                  "the target did not start: %s", target->output);
}

static void run_heap(struct tool_run *run, struct running_target *target,
                     const char *option, const char *argument)
{
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)target->pid);
    if (argument)
        tool_run(run, HEAP, option, argument, pid, (char *)NULL);
    else if (option)
        tool_run(run, HEAP, option, pid, (char *)NULL);
    else
        tool_run(run, HEAP, pid, (char *)NULL);
}

/* The table row of class `name`: its count and bytes. */
static bool class_row(const char *text, const char *name, unsigned long *count,
                      unsigned long *bytes)
{
    for (const char *line = text; line; line = strchr(line + 1, '\n')) {
        const char *end = strchr(line + 1, '\n');
        const char *found = strstr(line, name);
        if (!found || (end && found > end))
            continue;
        double average;
        if (sscanf(line, " %lu %lu %lf", count, bytes, &average) == 3 &&
            strncmp(found, name, strlen(name)) == 0 &&
            (found[strlen(name)] == '\n' || found[strlen(name)] == '\0'))
            return true;
    }
    return false;
}

START_TEST(test_classes_of_a_lite_logging_process)
{
    struct running_target target;
    start(&target, "MallocStackLogging=lite", NULL);
    unsigned long hundred = target_value(target.output, "hundred_size");
    unsigned long five_thousand = target_value(target.output, "five_thousand_size");
    struct tool_run run;
    run_heap(&run, &target, NULL, NULL);
    ck_assert_msg(run.status == 0, "status %d: %s", run.status, run.err);
    unsigned long count, bytes;
    ck_assert_msg(class_row(run.out, "malloc in allocate_hundreds", &count, &bytes),
                  "%s", run.out);
    ck_assert_uint_eq(count, 10);
    ck_assert_uint_eq(bytes, 10 * hundred);
    ck_assert_msg(class_row(run.out, "malloc in allocate_five_thousands", &count,
                            &bytes), "%s", run.out);
    ck_assert_uint_eq(count, 3);
    ck_assert_uint_eq(bytes, 3 * five_thousand);
    ck_assert_msg(class_row(run.out, "malloc in allocate_large", &count, &bytes),
                  "%s", run.out);
    ck_assert_uint_eq(count, 1);
    ck_assert_uint_ge(bytes, 3u << 20);
    char zone_line[128];
    snprintf(zone_line, sizeof(zone_line), "Zone ProbeZone_0x");
    ck_assert_msg(strstr(run.out, zone_line), "%s", run.out);
    ck_assert_msg(strstr(run.out, "Sizes: 3MB[1]") ||
                  strstr(run.out, "Sizes: 3072KB[1]"), "%s", run.out);
    ck_assert(target_alive(&target));
    ck_assert_int_eq(target_finish(&target), 0);
}
END_TEST

/* strdup's malloc call is in the C library: its copies are named after
 * the target's function that called strdup. */
START_TEST(test_classes_past_the_c_library)
{
    struct running_target target;
    start(&target, "MallocStackLogging=lite", NULL);
    unsigned long copy = target_value(target.output, "copy_size");
    struct tool_run run;
    run_heap(&run, &target, NULL, NULL);
    ck_assert_msg(run.status == 0, "status %d: %s", run.status, run.err);
    unsigned long count, bytes;
    ck_assert_msg(class_row(run.out, "malloc in copy_name", &count, &bytes),
                  "%s", run.out);
    ck_assert_uint_eq(count, 2);
    ck_assert_uint_eq(bytes, 2 * copy);
    ck_assert_msg(!strstr(run.out, "strdup"), "%s", run.out);
    target_finish(&target);
}
END_TEST

START_TEST(test_zones_option_counts_each_zone)
{
    struct running_target target;
    start(&target, "MallocStackLogging=lite", NULL);
    struct tool_run run;
    run_heap(&run, &target, "-zones", NULL);
    ck_assert_msg(run.status == 0, "%s", run.err);
    const char *zone = strstr(run.out, "Zone ProbeZone_0x");
    ck_assert_ptr_nonnull(zone);
    ck_assert_msg(strstr(zone, ": 4 nodes malloced"), "%s", run.out);
    /* The per-zone table of ProbeZone: its 4 blocks, from main. */
    const char *table = strstr(zone + 1, "Zone ProbeZone_0x");
    ck_assert_msg(table && strstr(table, ": 4 nodes - Sizes: 64[4]"), "%s",
                  run.out);
    target_finish(&target);
}
END_TEST

START_TEST(test_addresses_with_a_size_filter)
{
    struct running_target target;
    start(&target, "MallocStackLogging=lite", NULL);
    struct tool_run run;
    run_heap(&run, &target, "-addresses", "five_thousands[4k-8k]");
    ck_assert_msg(run.status == 0, "%s", run.err);
    unsigned listed = 0;
    for (const char *line = target.output; (line = strstr(line, "five_thousand 0x"));
         line++) {
        char address[40];
        snprintf(address, sizeof(address), "    %#lx (",
                 strtoul(line + strlen("five_thousand "), NULL, 16));
        ck_assert_msg(strstr(run.out, address), "%s missing in %s", address,
                      run.out);
        listed++;
    }
    ck_assert_uint_eq(listed, 3);
    const char *list = strstr(run.out, "Active blocks");
    ck_assert_ptr_nonnull(list);
    unsigned lines = 0;
    for (const char *line = list; (line = strstr(line, "\n    0x")); line++)
        lines++;
    ck_assert_uint_eq(lines, 3);
    /* A filter no block passes lists none. */
    run_heap(&run, &target, "-addresses", "five_thousands[-4k]");
    ck_assert_ptr_null(strstr(run.out, "\n    0x"));
    target_finish(&target);
}
END_TEST

START_TEST(test_json_output)
{
    struct running_target target;
    start(&target, "MallocStackLogging=lite", NULL);
    unsigned long hundred = target_value(target.output, "hundred_size");
    struct tool_run run;
    run_heap(&run, &target, "--json", NULL);
    ck_assert_msg(run.status == 0, "%s", run.err);
    char row[160];
    snprintf(row, sizeof(row),
             "{\"class\":\"malloc in allocate_hundreds\",\"count\":10,"
             "\"bytes\":%lu}", 10 * hundred);
    ck_assert_msg(strstr(run.out, row), "%s", run.out);
    ck_assert_msg(strstr(run.out, "\"name\":\"ProbeZone\""), "%s", run.out);
    ck_assert_int_eq(run.out[0], '{');
    target_finish(&target);
}
END_TEST

START_TEST(test_without_stack_logging_blocks_are_non_objects)
{
    struct running_target target;
    start(&target, NULL, NULL);
    struct tool_run run;
    run_heap(&run, &target, NULL, NULL);
    ck_assert_msg(run.status == 0, "%s", run.err);
    ck_assert_msg(!strstr(run.err, "warning"), "%s", run.err); /* as it should */
    ck_assert_ptr_null(strstr(run.out, "malloc in"));
    unsigned long count, bytes;
    ck_assert_msg(class_row(run.out, "non-object", &count, &bytes), "%s", run.out);
    ck_assert_uint_ge(count, 18);
    target_finish(&target);
}
END_TEST

/* A process that records stacks but whose log is gone: the report comes
 * without stacks, and says why. */
START_TEST(test_log_deleted_while_the_process_runs)
{
    struct running_target target;
    start(&target, "MallocStackLogging=lite", NULL);
    char command[400];
    snprintf(command, sizeof(command), "rm -f %s/mallocdebug.%d.*.stacklog",
             directory, (int)target.pid);
    ck_assert_int_eq(system(command), 0);
    struct tool_run run;
    run_heap(&run, &target, NULL, NULL);
    ck_assert_msg(run.status == 0, "%s", run.err);
    ck_assert_msg(strstr(run.err, "heap: warning: process "), "%s", run.err);
    ck_assert_msg(strstr(run.err, "was deleted while the process runs"), "%s", run.err);
    ck_assert_msg(strstr(run.err, "; reporting without stacks\n"), "%s", run.err);
    ck_assert_ptr_null(strstr(run.out, "malloc in"));
    target_finish(&target);
}
END_TEST

START_TEST(test_a_process_that_allocates_all_the_time)
{
    struct running_target target;
    start(&target, "MallocStackLogging=lite", "churn");
    for (int round = 0; round < 5; round++) {
        struct tool_run run;
        run_heap(&run, &target, NULL, NULL);
        ck_assert_msg(run.status == 0, "round %d: %s", round, run.err);
        unsigned long count, bytes;
        ck_assert(class_row(run.out, "malloc in allocate_hundreds", &count,
                            &bytes));
        ck_assert_uint_eq(count, 10);
        ck_assert(target_alive(&target));
    }
    ck_assert_int_eq(target_finish(&target), 0);
}
END_TEST

static void expect_error(const struct tool_run *run, const char *words)
{
    ck_assert_msg(run->status == 2, "status %d, stderr: %s", run->status,
                  run->err);
    ck_assert_msg(strncmp(run->err, "heap: ", 6) == 0 && strstr(run->err, words),
                  "expected \"%s\" in: %s", words, run->err);
}

/* The state letter of process `pid` in /proc/PID/stat ('T' when
 * stopped by job control), '?' when it cannot be read. */
static char process_state(pid_t pid)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *file = fopen(path, "r");
    char state = '?';
    if (file && fgets(line, sizeof(line), file)) {
        const char *close = strrchr(line, ')');
        if (close && close[1] == ' ')
            state = close[2];
    }
    if (file)
        fclose(file);
    return state;
}

/* Waits up to a second for the process to reach `state`. */
static bool reaches_state(pid_t pid, char state)
{
    for (int i = 0; i < 100; i++) {
        if (process_state(pid) == state)
            return true;
        usleep(10000);
    }
    return false;
}

/* Stops the target as Ctrl-Z would, and asks it a question it can
 * answer only when it runs. */
static void stop_and_ask(struct running_target *target)
{
    ck_assert_int_eq(kill(target->pid, SIGSTOP), 0);
    ck_assert(reaches_state(target->pid, 'T'));
    ck_assert_int_eq(write(target->to_target, "?\n", 2), 2);
}

/* After the tool: still stopped, the question unanswered; continued, it
 * answers. */
static void expect_still_stopped(struct running_target *target)
{
    ck_assert_msg(reaches_state(target->pid, 'T'), "state %c",
                  process_state(target->pid));
    ck_assert_msg(!target_answers_within(target, 200, "alive\n"),
                  "the stopped process ran");
    ck_assert_int_eq(process_state(target->pid), 'T');
    ck_assert_int_eq(kill(target->pid, SIGCONT), 0);
    ck_assert(target_answers_within(target, 5000, "alive\n"));
}

/* A process stopped by job control is read where it stopped, or refused
 * when it stopped inside the allocator; either way it stays stopped. */
START_TEST(test_a_stopped_process_stays_stopped)
{
    struct running_target target;
    start(&target, "MallocStackLogging=lite", NULL);
    stop_and_ask(&target);
    struct tool_run run;
    run_heap(&run, &target, NULL, NULL);
    ck_assert_msg(run.status == 0, "%s", run.err);
    unsigned long count, bytes;
    ck_assert(class_row(run.out, "malloc in allocate_hundreds", &count, &bytes));
    ck_assert_uint_eq(count, 10);
    expect_still_stopped(&target);
    /* Its zone's locks held, as by a thread inside the allocator. */
    ck_assert(target_ask(&target, "lock\n", "locked\n"));
    stop_and_ask(&target);
    run_heap(&run, &target, NULL, NULL);
    expect_error(&run, "is stopped (job control) with a thread inside the allocator");
    char advice[64];
    snprintf(advice, sizeof(advice), "continue it with kill -CONT %d", (int)target.pid);
    ck_assert_msg(strstr(run.err, advice), "%s", run.err);
    expect_still_stopped(&target);
    ck_assert(target_ask(&target, "unlock\n", "unlocked\n"));
    run_heap(&run, &target, NULL, NULL);
    ck_assert_msg(run.status == 0, "%s", run.err);
    ck_assert_int_eq(target_finish(&target), 0);
}
END_TEST

/* The main thread ends (pthread_exit) while heap keeps stopping the
 * threads, waiting for a zone lock to be let go: heap must not wait for
 * it forever (timeout(1) would end it with status 124). */
START_TEST(test_main_thread_ending_while_stopping)
{
    struct running_target target;
    start(&target, "MallocStackLogging=lite", "churn");
    ck_assert(target_ask(&target, "lock\n", "locked\n"));
    ck_assert(target_ask(&target, "leave 300\n", "leaving\n"));
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)target.pid);
    struct tool_run run;
    tool_run(&run, "timeout", "30", HEAP, pid, (char *)NULL);
    kill(target.pid, SIGKILL);
    waitpid(target.pid, NULL, 0);
    close(target.to_target);
    close(target.from_target);
    expect_error(&run, "the main thread of process");
}
END_TEST

/* A thread that no interrupt stops (waiting in vfork for a child that
 * sleeps): heap gives up after its wait with a message, and the target
 * runs on once the child is gone. */
START_TEST(test_thread_that_does_not_stop)
{
    struct running_target target;
    start(&target, "MallocStackLogging=lite", NULL);
    ck_assert(target_ask(&target, "vfork 9000\n", "vforking\n"));
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)target.pid);
    struct tool_run run;
    tool_run(&run, "timeout", "30", HEAP, pid, (char *)NULL);
    expect_error(&run, "did not stop within 5 s");
    ck_assert(target_ask(&target, "?\n", "alive\n"));
    ck_assert_int_eq(target_finish(&target), 0);
}
END_TEST

/* A full-mode log kept by tests/leaks_target, read after it exited. */
START_TEST(test_log_of_an_exited_process)
{
    char command[700], log[512];
    snprintf(command, sizeof(command),
             "MallocStackLoggingDirectory=%s MallocStackLoggingDontDeleteStackLogFile=1 "
             "MallocStackLogging=%%s tests/leaks_target exit 2>/dev/null | "
             "sed -n 's/^pid //p'", directory);
    for (int mode = 0; mode < 2; mode++) {
        char full_command[800];
        snprintf(full_command, sizeof(full_command), command, mode ? "lite" : "full");
        FILE *pipe = popen(full_command, "r");
        ck_assert_ptr_nonnull(pipe);
        unsigned long pid = 0;
        ck_assert_int_eq(fscanf(pipe, "%lu", &pid), 1);
        pclose(pipe);
        snprintf(log, sizeof(log), "%s/mallocdebug.%lu.leaks_target.stacklog",
                 directory, pid);
        struct tool_run run;
        tool_run(&run, HEAP, log, (char *)NULL);
        if (mode == 1) {
            ck_assert_int_eq(run.status, 2);
            ck_assert_msg(strstr(run.err, "recorded in lite mode"), "%s", run.err);
            break;
        }
        ck_assert_msg(run.status == 0, "%s", run.err);
        unsigned long count, bytes;
        ck_assert_msg(class_row(run.out, "malloc in make_leaked_list.isra.0", &count,
                                &bytes) ||
                      class_row(run.out, "malloc in make_leaked_list", &count, &bytes),
                      "%s", run.out);
        ck_assert_uint_eq(count, 3);
        ck_assert_uint_eq(bytes, 3 * 48); /* the sizes asked for */
        ck_assert_msg(strstr(run.out, "Zone AllZonesFromLog: "), "%s", run.out);
    }
}
END_TEST

/* A zone name with control characters does not break the report's lines
 * nor reach the terminal. */
START_TEST(test_zone_name_with_control_characters)
{
    struct running_target target;
    start(&target, NULL, "odd_name");
    struct tool_run run;
    run_heap(&run, &target, NULL, NULL);
    ck_assert_msg(run.status == 0, "%s", run.err);
    ck_assert_msg(strstr(run.out, "Zone Probe?Zone?[31m_0x"), "%s", run.out);
    ck_assert_ptr_null(strchr(run.out, '\x1b'));
    target_finish(&target);
}
END_TEST

/* A process that has exited but that its parent has not collected: its
 * memory is gone, and the message says so rather than that it never ran
 * the library. */
START_TEST(test_a_zombie_is_called_one)
{
    struct running_target target;
    start(&target, "MallocStackLogging=lite", NULL);
    ck_assert_int_eq(kill(target.pid, SIGKILL), 0);
    ck_assert(reaches_state(target.pid, 'Z'));
    struct tool_run run;
    run_heap(&run, &target, NULL, NULL);
    expect_error(&run, "has exited and waits for its parent to collect it (a zombie)");
    target_finish(&target);
}
END_TEST

START_TEST(test_bad_inputs)
{
    struct tool_run run;
    tool_run(&run, HEAP, "2147483600", (char *)NULL);
    expect_error(&run, "no process 2147483600");
    tool_run(&run, HEAP, "no-such-program-name-here", (char *)NULL);
    expect_error(&run, "no process whose executable name contains");
    tool_run(&run, HEAP, "", (char *)NULL);
    expect_error(&run, "no process given: give a pid or a part of a program's name");
    tool_run(&run, "sh", "-c", "exec " HEAP " $$", (char *)NULL);
    expect_error(&run, "is this tool itself: give the pid of another process");
    tool_run(&run, HEAP, "-bogus", "1", (char *)NULL);
    expect_error(&run, "unknown option -bogus");
    tool_run(&run, HEAP, "-addresses", "[5-1]", "1", (char *)NULL);
    expect_error(&run, "bad -addresses pattern");
    tool_run(&run, HEAP, (char *)NULL);
    ck_assert_int_eq(run.status, 2);
    ck_assert_ptr_nonnull(strstr(run.err, "usage: heap"));
    /* A process without the library. */
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)child);
    tool_run(&run, HEAP, pid, (char *)NULL);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    expect_error(&run, "is not running libmallocdebug.so");
    ck_assert_ptr_nonnull(strstr(run.err, "LD_PRELOAD"));
    /* Another user's process: as root, look at this one as nobody. */
    if (getuid() == 0) {
        snprintf(pid, sizeof(pid), "%d", (int)getpid());
        tool_run_as_nobody(&run, HEAP, pid, (char *)NULL);
        tool_expect_refused_to_nobody(&run, "heap");
    }
}
END_TEST

int main(void)
{
    TCase *tc = tcase_create("heap");
    tcase_add_test(tc, test_classes_of_a_lite_logging_process);
    tcase_add_test(tc, test_classes_past_the_c_library);
    tcase_add_test(tc, test_zones_option_counts_each_zone);
    tcase_add_test(tc, test_addresses_with_a_size_filter);
    tcase_add_test(tc, test_json_output);
    tcase_add_test(tc, test_without_stack_logging_blocks_are_non_objects);
    tcase_add_test(tc, test_log_deleted_while_the_process_runs);
    tcase_add_test(tc, test_a_zombie_is_called_one);
    tcase_add_test(tc, test_zone_name_with_control_characters);
    tcase_add_test(tc, test_a_process_that_allocates_all_the_time);
    tcase_add_test(tc, test_a_stopped_process_stays_stopped);
    tcase_add_test(tc, test_main_thread_ending_while_stopping);
    tcase_add_test(tc, test_thread_that_does_not_stop);
    tcase_add_test(tc, test_log_of_an_exited_process);
    tcase_add_test(tc, test_bad_inputs);
    return tool_suite_run("heap tool", tc, directory);
}
