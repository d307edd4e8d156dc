/*
 * leaks(1) on tests/leaks_target, whose leaks and roots are known: the
 * count and bytes, each leaked block and no kept one, the tree and the
 * cycle, stacks with the right function and line, every option, the
 * root each kept block is reached from (-traceTree), blocks kept only in
 * vector registers, --atExit, and the bad inputs.
 */
#include "config.h"
#include "tool_runner.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#define LEAKS "tools/leaks"
#define TARGET "tests/leaks_target"
#define LEAK_COUNT 9
#define KEPT_COUNT 8
/* Where libtool leaves the module the target loads (see leaks_plugin.c). */
#define PLUGIN "tests/.libs/leaks_plugin.so"

static char directory[] = "/tmp/mallocdebug-leaks-XXXXXX";

/* MallocStackLoggingDirectory for the targets: the scratch directory,
 * made by tool_suite_run. */
static const char *directory_setting(void)
{
    static char setting[300];
    snprintf(setting, sizeof(setting), "MallocStackLoggingDirectory=%s", directory);
    return setting;
}

struct expected {
    unsigned long leaked[16], leaked_sizes[16], kept[16];
    unsigned leaked_count, kept_count;
    unsigned long leaked_bytes;
    unsigned long list_line;
};

static void read_expected(const char *output, struct expected *expected)
{
    memset(expected, 0, sizeof(*expected));
    for (const char *line = output; line; line = strchr(line, '\n')) {
        line += *line == '\n';
        char kind[32];
        unsigned long address, size;
        if (sscanf(line, "leak %31s %lx %lu", kind, &address, &size) == 3 &&
            expected->leaked_count < 16) {
            expected->leaked_sizes[expected->leaked_count] = size;
            expected->leaked[expected->leaked_count++] = address;
            expected->leaked_bytes += size;
        } else if (sscanf(line, "kept %lx", &address) == 1 &&
                   expected->kept_count < 16) {
            expected->kept[expected->kept_count++] = address;
        }
    }
    expected->list_line = target_value(output, "list_line");
}

static void start(struct running_target *target, struct expected *expected)
{
    const char *environment[] = {"MallocStackLogging=lite", directory_setting(),
                                 "LEAKS_TARGET_PLUGIN=" PLUGIN, NULL};
    ck_assert_msg(target_start(target, environment, TARGET, (char *)NULL),
                  "the target did not start: %s", target->output);
    read_expected(target->output, expected);
    ck_assert_uint_eq(expected->leaked_count, LEAK_COUNT);
    ck_assert_uint_eq(expected->kept_count, KEPT_COUNT);
}

static void run_leaks(struct tool_run *run, const struct running_target *target,
                      const char *option, const char *argument)
{
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)target->pid);
    if (argument)
        tool_run(run, LEAKS, option, argument, pid, (char *)NULL);
    else if (option)
        tool_run(run, LEAKS, option, pid, (char *)NULL);
    else
        tool_run(run, LEAKS, pid, (char *)NULL);
}

static bool mentions(const char *text, unsigned long address)
{
    char needle[40];
    snprintf(needle, sizeof(needle), "%#lx", address);
    return strstr(text, needle) != NULL;
}

static void expect_summary(const char *out, pid_t pid, unsigned count,
                           unsigned long bytes)
{
    char line[160];
    snprintf(line, sizeof(line), "Process %d: %u leaks for %lu total leaked bytes.\n",
             (int)pid, count, bytes);
    ck_assert_msg(strstr(out, line), "expected \"%s\" in:\n%s", line, out);
}

START_TEST(test_finds_exactly_the_leaks)
{
    struct running_target target;
    struct expected expected;
    start(&target, &expected);
    struct tool_run run;
    run_leaks(&run, &target, NULL, NULL);
    ck_assert_msg(run.status == 1, "status %d: %s", run.status, run.err);
    expect_summary(run.out, target.pid, LEAK_COUNT, expected.leaked_bytes);
    for (unsigned i = 0; i < expected.leaked_count; i++)
        ck_assert_msg(mentions(run.out, expected.leaked[i]), "leak %#lx missing:\n%s",
                      expected.leaked[i], run.out);
    /* Each kept block is reached through one kind of root only. */
    for (unsigned i = 0; i < expected.kept_count; i++)
        ck_assert_msg(!mentions(run.out, expected.kept[i]),
                      "kept block %#lx reported:\n%s", expected.kept[i], run.out);
    ck_assert(target_alive(&target));
    ck_assert_int_eq(target_finish(&target), 0);
}
END_TEST

START_TEST(test_tree_cycle_and_stacks)
{
    struct running_target target;
    struct expected expected;
    start(&target, &expected);
    struct tool_run run;
    run_leaks(&run, &target, NULL, NULL);
    /* The list: its head holds the other two, the second the third. */
    char line[200];
    snprintf(line, sizeof(line), "    3 (%lu bytes) ROOT LEAK: <malloc in make_leaked_list",
             3 * expected.leaked_sizes[0]);
    const char *tree = strstr(run.out, line);
    ck_assert_msg(tree, "no list tree:\n%s", run.out);
    snprintf(line, sizeof(line), "\n       2 (%lu bytes) <malloc in make_leaked_list",
             2 * expected.leaked_sizes[0]);
    ck_assert_msg(strstr(tree, line) == strchr(tree, '\n'), "%s", run.out);
    snprintf(line, sizeof(line), "\n          1 (%lu bytes) <malloc in make_leaked_list",
             expected.leaked_sizes[0]);
    ck_assert_msg(strstr(tree, line), "%s", run.out);
    ck_assert_msg(strstr(tree, "'........leaked n'"), "no content:\n%s", run.out);
    const char *cycle = strstr(run.out, "ROOT CYCLE: <malloc in make_cycle");
    ck_assert_msg(cycle, "%s", run.out);
    ck_assert_msg(strstr(cycle, "CYCLE BACK TO <malloc in make_cycle"), "%s", run.out);
    snprintf(line, sizeof(line), "tests/leaks_target.c:%lu\n", expected.list_line);
    const char *stack = strstr(run.out, "STACK OF 1 INSTANCE OF 'ROOT LEAK: <malloc in make_leaked_list");
    ck_assert_msg(stack && strstr(stack, line) && strstr(stack, line) < tree,
                  "no stack with %s before the tree:\n%s", line, run.out);
    target_finish(&target);
}
END_TEST

static unsigned count_occurrences(const char *text, const char *needle)
{
    unsigned count = 0;
    for (const char *at = text; (at = strstr(at, needle)); at++)
        count++;
    return count;
}

START_TEST(test_report_options)
{
    struct running_target target;
    struct expected expected;
    start(&target, &expected);
    struct tool_run run;
    run_leaks(&run, &target, "-list", NULL);
    ck_assert_int_eq(run.status, 1);
    ck_assert_uint_eq(count_occurrences(run.out, "\nLeak: 0x"), LEAK_COUNT);
    ck_assert_ptr_nonnull(strstr(run.out, "zone: LeakZone_0x"));
    ck_assert_ptr_nonnull(strstr(run.out, "\tCall stack:"));
    run_leaks(&run, &target, "-quiet", NULL);
    ck_assert_int_eq(run.status, 1);
    ck_assert_uint_eq(count_occurrences(run.out, "\n"), 1);
    expect_summary(run.out, target.pid, LEAK_COUNT, expected.leaked_bytes);
    run_leaks(&run, &target, "-nostacks", NULL);
    ck_assert_ptr_null(strstr(run.out, "STACK OF"));
    ck_assert_ptr_nonnull(strstr(run.out, "ROOT LEAK"));
    run_leaks(&run, &target, "-noContent", NULL);
    ck_assert_ptr_null(strstr(run.out, "leaked n"));
    run_leaks(&run, &target, "-nosources", NULL);
    ck_assert_ptr_null(strstr(run.out, "leaks_target.c:"));
    ck_assert_ptr_nonnull(strstr(run.out, "make_leaked_list"));
    run_leaks(&run, &target, "--json", NULL);
    char json[120];
    snprintf(json, sizeof(json), "\"leaks\":%u,\"leaked_bytes\":%lu", LEAK_COUNT,
             expected.leaked_bytes);
    ck_assert_msg(strstr(run.out, json), "%s", run.out);
    ck_assert_uint_eq(count_occurrences(run.out, "\"kind\":\"ROOT CYCLE\""), 1);
    target_finish(&target);
}
END_TEST

START_TEST(test_exclude)
{
    struct running_target target;
    struct expected expected;
    start(&target, &expected);
    struct tool_run run;
    run_leaks(&run, &target, "-exclude", "make_cycle");
    ck_assert_int_eq(run.status, 1);
    unsigned long cycle_bytes = 0;
    const char *line = strstr(target.output, "leak cycle ");
    for (int i = 0; i < 2 && line; i++, line = strstr(line + 1, "leak cycle "))
        cycle_bytes += strtoul(strchr(line + 11, ' ') + 1, NULL, 10);
    expect_summary(run.out, target.pid, LEAK_COUNT - 2,
                   expected.leaked_bytes - cycle_bytes);
    ck_assert_ptr_nonnull(strstr(run.out, "2 leaks excluded"));
    ck_assert_ptr_null(strstr(run.out, "ROOT CYCLE"));
    /* The compiler may have cloned the function (make_leaked_list.isra.0):
     * its plain name still matches. */
    run_leaks(&run, &target, "-exclude", "make_leaked_list");
    ck_assert_ptr_nonnull(strstr(run.out, "3 leaks excluded"));
    ck_assert_ptr_null(strstr(run.out, "<malloc in make_leaked_list"));
    target_finish(&target);
}
END_TEST

/* Without stack logging there is nothing to match: said, not silently
 * a report that looks filtered. */
START_TEST(test_exclude_without_stacks_is_said)
{
    const char *environment[] = {"LEAKS_TARGET_PLUGIN=" PLUGIN, NULL};
    struct running_target target;
    ck_assert_msg(target_start(&target, environment, TARGET, (char *)NULL),
                  "the target did not start: %s", target.output);
    struct tool_run run;
    run_leaks(&run, &target, "-exclude", "make_cycle");
    ck_assert_int_eq(run.status, 1);
    ck_assert_msg(strstr(run.err, "leaks: warning: -exclude needs the "
                                  "allocation stacks"), "%s", run.err);
    ck_assert_ptr_null(strstr(run.out, "excluded"));
    target_finish(&target);
}
END_TEST

START_TEST(test_trace_tree_names_each_root)
{
    struct running_target target;
    struct expected expected;
    start(&target, &expected);
    /* Each kept block is reached from one kind of root: three globals
     * (one in the part of .bss past the file's last page), the
     * global of a module loaded with dlopen, an anonymous mapping, a
     * thread's stack and TLS, a thread's registers (the threads print in
     * either order). */
    static const char *const kinds[] = {"global data of leaks_target",
                                        "global data of leaks_plugin.so",
                                        "anonymous memory 0x", "stack of thread",
                                        "registers of thread"};
    enum { KINDS = sizeof(kinds) / sizeof(kinds[0]) };
    static const unsigned expected_counts[KINDS] = {3, 1, 1, 2, 1};
    unsigned counts[KINDS] = {0};
    /* Which root each block was traced to, for the message of a count
     * that comes out wrong. */
    char traced[4096] = "";
    for (unsigned i = 0; i < expected.kept_count; i++) {
        char address[32];
        snprintf(address, sizeof(address), "%#lx", expected.kept[i] + 8);
        struct tool_run run;
        run_leaks(&run, &target, "-traceTree", address);
        ck_assert_msg(run.status == 0, "%s: %d %s", address, run.status, run.err);
        unsigned found = 0;
        for (unsigned k = 0; k < KINDS; k++)
            if (strstr(run.out, kinds[k])) {
                counts[k]++, found++;
                size_t used = strlen(traced);
                snprintf(traced + used, sizeof(traced) - used, "%s: %s\n",
                         address, kinds[k]);
            }
        ck_assert_msg(found == 1, "block %s:\n%s", address, run.out);
        snprintf(address, sizeof(address), "%#lx [", expected.kept[i]);
        ck_assert_msg(strstr(run.out, address), "%s", run.out);
    }
    for (unsigned k = 0; k < KINDS; k++)
        ck_assert_msg(counts[k] == expected_counts[k],
                      "%s: %u, expected %u; blocks traced to:\n%s", kinds[k],
                      counts[k], expected_counts[k], traced);
    char address[32];
    snprintf(address, sizeof(address), "%#lx", expected.leaked[0]);
    struct tool_run run;
    run_leaks(&run, &target, "-traceTree", address);
    ck_assert_int_eq(run.status, 1);
    ck_assert_ptr_nonnull(strstr(run.out, "leaked block"));
    target_finish(&target);
}
END_TEST

/* The blocks the target keeps only in vector registers, from its
 * "kept_in_register REGISTER ADDRESS" lines. */
static unsigned read_kept_in_registers(const char *output, unsigned long *kept,
                                       unsigned capacity)
{
    unsigned count = 0;
    for (const char *line = strstr(output, "kept_in_register "); line && count < capacity;
         line = strstr(line + 1, "kept_in_register ")) {
        char name[16];
        if (sscanf(line, "kept_in_register %15s %lx", name, &kept[count]) == 2)
            count++;
    }
    return count;
}

/* A pointer kept only in the upper half of a ymm register (and, with
 * AVX-512, in a mask register, a zmm register's upper half and zmm24)
 * keeps its block. */
START_TEST(test_vector_registers_are_roots)
{
    if (!__builtin_cpu_supports("avx2")) {
        fprintf(stderr, "no AVX2: vector registers not tested\n");
        return;
    }
    struct running_target target;
    struct expected expected;
    start(&target, &expected);
    unsigned long kept[8];
    unsigned count = read_kept_in_registers(target.output, kept, 8);
    bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    ck_assert_uint_eq(count, avx512 ? 4 : 1);
    struct tool_run run;
    run_leaks(&run, &target, NULL, NULL);
    ck_assert_msg(run.status == 1, "status %d: %s", run.status, run.err);
    for (unsigned i = 0; i < count; i++) {
        ck_assert_msg(!mentions(run.out, kept[i]),
                      "block %#lx, kept in a register, reported as a leak", kept[i]);
        char address[32];
        snprintf(address, sizeof(address), "%#lx", kept[i] + 8);
        run_leaks(&run, &target, "-traceTree", address);
        ck_assert_msg(run.status == 0, "%s: %d %s", address, run.status, run.err);
        ck_assert_msg(strstr(run.out, "\n  registers of thread "), "%s", run.out);
        snprintf(address, sizeof(address), "%#lx [", kept[i]);
        ck_assert_msg(strstr(run.out, address), "%s", run.out);
    }
    target_finish(&target);
}
END_TEST

START_TEST(test_at_exit)
{
    struct tool_run run;
    setenv("MallocStackLoggingDirectory", directory, 1);
    setenv("LEAKS_TARGET_PLUGIN", PLUGIN, 1);
    tool_run(&run, LEAKS, "--atExit", "--", TARGET, "exit", (char *)NULL);
    unsetenv("LEAKS_TARGET_PLUGIN");
    ck_assert_msg(run.status == 1, "status %d: %s", run.status, run.err);
    struct expected expected;
    read_expected(run.out, &expected);
    ck_assert_uint_eq(expected.leaked_count, LEAK_COUNT);
    const char *report = strstr(run.out, "leaks Report");
    ck_assert_msg(report, "%s", run.out);
    for (unsigned i = 0; i < expected.leaked_count; i++)
        ck_assert_msg(mentions(report, expected.leaked[i]), "%s", run.out);
    /* Without its threads, the target keeps its globals', its mapping's
     * and the module's blocks to the end. */
    ck_assert_uint_eq(expected.kept_count, KEPT_COUNT - 3);
    for (unsigned i = 0; i < expected.kept_count; i++)
        ck_assert_msg(!mentions(report, expected.kept[i]), "kept block %#lx reported:\n%s",
                      expected.kept[i], run.out);
    char line[160];
    snprintf(line, sizeof(line), ": %u leaks for %lu total leaked bytes.\n",
             LEAK_COUNT, expected.leaked_bytes);
    ck_assert_msg(strstr(run.out, line), "%s", run.out);
    ck_assert_ptr_nonnull(strstr(run.out, "make_leaked_list"));
    /* The log kept for the scan is gone afterwards. */
    char command[400];
    snprintf(command, sizeof(command), "ls %s | grep -q leaks_target", directory);
    ck_assert_int_ne(system(command), 0);
}
END_TEST

static void expect_error(const struct tool_run *run, const char *words)
{
    ck_assert_msg(run->status == 2, "status %d, stderr: %s", run->status, run->err);
    ck_assert_msg(strncmp(run->err, "leaks: ", 7) == 0 && strstr(run->err, words),
                  "expected \"%s\" in: %s", words, run->err);
}

START_TEST(test_bad_inputs)
{
    struct tool_run run;
    tool_run(&run, LEAKS, "2147483600", (char *)NULL);
    expect_error(&run, "no process 2147483600");
    tool_run(&run, LEAKS, "-traceTree", "banana", "1", (char *)NULL);
    expect_error(&run, "-traceTree needs a block address");
    tool_run(&run, LEAKS, "-traceTree", "-1", "1", (char *)NULL);
    expect_error(&run, "-traceTree needs a block address");
    tool_run(&run, LEAKS, "--json", "-traceTree", "0x1000", "1", (char *)NULL);
    expect_error(&run, "-traceTree prints text only: leave out --json");
    tool_run(&run, LEAKS, "-what", "1", (char *)NULL);
    expect_error(&run, "unknown option -what");
    tool_run(&run, LEAKS, "--atExit", "--", (char *)NULL);
    expect_error(&run, "--atExit needs a command");
    tool_run(&run, LEAKS, "--atExit", "--", "/nonexistent/program", (char *)NULL);
    expect_error(&run, "cannot run /nonexistent/program");
    struct running_target target;
    struct expected expected;
    start(&target, &expected);
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)target.pid);
    tool_run(&run, LEAKS, "-traceTree", "0x10", pid, (char *)NULL);
    expect_error(&run, "0x10 is not in a block in use");
    /* A process another tracer holds. */
    ck_assert_int_eq(ptrace(PTRACE_SEIZE, target.pid, NULL, NULL), 0);
    tool_run(&run, LEAKS, pid, (char *)NULL);
    char tracer[200];
    snprintf(tracer, sizeof(tracer),
             "not permitted to read process %d: it is being traced by "
             "process %d (a debugger or strace); detach that first\n",
             (int)target.pid, (int)getpid());
    expect_error(&run, tracer);
    /* Only a stopped tracee can be let go. */
    ck_assert_int_eq(ptrace(PTRACE_INTERRUPT, target.pid, NULL, NULL), 0);
    int status;
    ck_assert_int_eq(waitpid(target.pid, &status, __WALL), target.pid);
    ck_assert_int_eq(ptrace(PTRACE_DETACH, target.pid, NULL, NULL), 0);
    ck_assert(target_alive(&target));
    target_finish(&target);
    /* --atExit without a library to preload. */
    setenv("MALLOCDEBUG_LIBRARY", "/nonexistent/libmallocdebug.so", 1);
    tool_run(&run, LEAKS, "--atExit", "--", TARGET, "exit", (char *)NULL);
    unsetenv("MALLOCDEBUG_LIBRARY");
    expect_error(&run, "set MALLOCDEBUG_LIBRARY");
}
END_TEST

int main(void)
{
    TCase *tc = tcase_create("leaks");
    tcase_add_test(tc, test_finds_exactly_the_leaks);
    tcase_add_test(tc, test_tree_cycle_and_stacks);
    tcase_add_test(tc, test_report_options);
    tcase_add_test(tc, test_exclude);
    tcase_add_test(tc, test_exclude_without_stacks_is_said);
    tcase_add_test(tc, test_trace_tree_names_each_root);
    tcase_add_test(tc, test_vector_registers_are_roots);
    tcase_add_test(tc, test_at_exit);
    tcase_add_test(tc, test_bad_inputs);
    return tool_suite_run("leaks tool", tc, directory);
}
