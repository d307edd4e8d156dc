/*
 * The tools' small mechanisms, on inputs whose answers are known:
 * sorting mostly sorted arrays (every shape, against qsort), the size
 * filters of heap -addresses, the index from an address to its block,
 * why the kernel refuses a process: one not dumpable, one another
 * process traces; and JSON strings made of any bytes.
 */
#include "config.h"
#include "heap_image.h"
#include "json_text.h"
#include "size_filter.h"
#include "sorted_runs.h"
#include "log_reader.h"
#include "target.h"
#include "target_permission.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

struct element {
    uint64_t address;
    uint64_t payload;
};

static int compare(const void *a, const void *b)
{
    const struct element *x = a, *y = b;
    return (x->address > y->address) - (x->address < y->address);
}

static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* Sorts `array` both ways and compares, payloads included. */
static void expect_sorted_like_qsort(struct element *array, size_t count)
{
    struct element *expected = malloc(count * sizeof(*expected) + 1);
    memcpy(expected, array, count * sizeof(*array));
    qsort(expected, count, sizeof(*expected), compare);
    ck_assert_int_eq(sort_by_address(array, count, sizeof(*array)), 0);
    for (size_t i = 0; i < count; i++) {
        ck_assert_uint_eq(array[i].address, expected[i].address);
        ck_assert_uint_eq(array[i].payload, expected[i].payload);
    }
    free(expected);
}

START_TEST(test_sort_shapes)
{
    enum { COUNT = 20000 };
    static struct element array[COUNT];
    uint64_t state = 0x9e3779b97f4a7c15ULL;
    for (int shape = 0; shape < 10; shape++) {
        for (size_t i = 0; i < COUNT; i++)
            array[i] = (struct element){(i + 1) * 64, i};
        if (shape == 1) /* a few out of place, at both ends and inside */
            for (size_t i = 0; i < 40; i++)
                array[next_random(&state) % COUNT].address =
                    next_random(&state) % (COUNT * 64) | 1;
        else if (shape == 2) /* descending */
            for (size_t i = 0; i < COUNT; i++)
                array[i].address = (COUNT - i) * 64;
        else if (shape == 3) /* random */
            for (size_t i = 0; i < COUNT; i++)
                array[i].address = next_random(&state);
        else if (shape == 4) /* two interleaved runs: regions, then large */
            for (size_t i = 0; i < COUNT; i++)
                array[i].address = i < COUNT / 2 ? i * 128 : (i - COUNT / 2) * 128 + 64;
        else if (shape == 5) { /* three large blocks before one long run */
            static const uint64_t large[] = {COUNT * 40 + 32, 32, COUNT * 8 + 32};
            for (size_t i = 0; i < 3; i++)
                array[i].address = large[i];
        } else if (shape == 6) /* one long run, then a few strays */
            for (size_t i = COUNT - 5; i < COUNT; i++)
                array[i].address = next_random(&state) % (COUNT * 64) | 1;
        else if (shape == 7 || shape == 8) { /* regions in a shuffled order */
            enum { REGIONS = 40, PER_REGION = COUNT / REGIONS };
            for (size_t i = 0; i < COUNT; i++) {
                size_t region = (i / PER_REGION * 17 + 5) % REGIONS;
                array[i].address = (region * PER_REGION + i % PER_REGION + 1) * 64;
            }
            if (shape == 8) /* one region's end reaches into another's */
                array[3 * PER_REGION - 1].address = 1;
        } else if (shape == 9) { /* regions mapped top down, of uneven sizes */
            size_t placed = 0;
            for (size_t region = 0; placed < COUNT; region++) {
                size_t length = 1 + (region * 37) % 700;
                for (size_t k = 0; k < length && placed < COUNT; k++, placed++)
                    array[placed].address = (uint64_t)(1000 - region) << 24 | (k + 1) * 16;
            }
        }
        expect_sorted_like_qsort(array, COUNT);
    }
    expect_sorted_like_qsort(array, 1);
    expect_sorted_like_qsort(array, 0);
}
END_TEST

START_TEST(test_size_filters)
{
    struct size_filter filter;
    ck_assert(size_filter_parse("[100]", &filter));
    ck_assert(size_filter_matches(&filter, 100));
    ck_assert(!size_filter_matches(&filter, 101));
    ck_assert(size_filter_parse("[1k-4k]", &filter));
    ck_assert_uint_eq(filter.low, 1024);
    ck_assert_uint_eq(filter.high, 4096);
    ck_assert(size_filter_parse("[2m+]", &filter));
    ck_assert_uint_eq(filter.low, 2u << 20);
    ck_assert_uint_eq(filter.high, UINT64_MAX);
    ck_assert(size_filter_parse("[-512]", &filter));
    ck_assert_uint_eq(filter.low, 0);
    ck_assert_uint_eq(filter.high, 512);
    static const char *const bad[] = {"100", "[", "[]", "[5-1]", "[1x]",
                                      "[1-2]x", "[-]", "[k]", "[1--2]",
                                      "[99999999999999999999999]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!size_filter_parse(bad[i], &filter), "%s accepted", bad[i]);
}
END_TEST

START_TEST(test_block_index)
{
    /* Blocks of growing sizes with gaps, spread wide enough to need
     * several granules, one far away. */
    enum { COUNT = 5000 };
    static struct heap_block blocks[COUNT];
    uint64_t address = 0x10000000;
    for (size_t i = 0; i < COUNT; i++) {
        uint64_t size = 16 + (i % 37) * 16;
        blocks[i] = (struct heap_block){address, size, 0, 0};
        address += size + (i % 5 == 0 ? 4096 : 0);
    }
    blocks[COUNT - 1].address = 0x7f0000000000ULL;
    struct heap_snapshot snapshot = {.blocks = blocks, .block_count = COUNT};
    struct heap_image image;
    char message[256];
    ck_assert_int_eq(heap_image_build(&image, &snapshot, message, sizeof(message)), 0);
    for (size_t i = 0; i < COUNT; i++) {
        const struct heap_block *block = &blocks[i];
        ck_assert_uint_eq(heap_image_block_at(&image, block->address), i);
        ck_assert_uint_eq(heap_image_block_at(&image, block->address + block->size - 1), i);
        if (i + 1 < COUNT && blocks[i + 1].address > block->address + block->size)
            ck_assert_uint_eq(heap_image_block_at(&image, block->address + block->size),
                              SIZE_MAX);
    }
    ck_assert_uint_eq(heap_image_block_at(&image, 0x1000), SIZE_MAX);
    ck_assert_uint_eq(heap_image_block_at(&image, 0x7f0000100000ULL), SIZE_MAX);
    heap_image_free(&image);
}
END_TEST

/* Reading across a readable page and an unreadable one, from an address
 * inside the first: the readable bytes come, the others are zeros. */
START_TEST(test_read_or_zero)
{
    char *pages = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(pages, MAP_FAILED);
    memset(pages, 'a', 3 * 4096);
    ck_assert_int_eq(mprotect(pages + 4096, 4096, PROT_NONE), 0);
    static char out[6000];
    memset(out, 'x', sizeof(out));
    target_read_or_zero(getpid(), (uint64_t)(uintptr_t)(pages + 100), out, 5000);
    for (size_t i = 0; i < 5000; i++)
        ck_assert_msg(out[i] == (i < 4096 - 100 ? 'a' : 0), "byte %zu: %d", i, out[i]);
    ck_assert_int_eq(out[5000], 'x');
    munmap(pages, 3 * 4096);
}
END_TEST

/* A child that runs `prepare` (which returns whether it worked), says
 * so on a pipe and waits to be killed; the answer in `*prepared`. */
static pid_t start_child(bool (*prepare)(pid_t), pid_t argument,
                         bool *prepared)
{
    int ready[2];
    ck_assert_int_eq(pipe(ready), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        char answer = prepare(argument);
        if (write(ready[1], &answer, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    char answer = 0;
    ck_assert_int_eq(read(ready[0], &answer, 1), 1);
    close(ready[0]);
    close(ready[1]);
    *prepared = answer;
    return child;
}

static void end_child(pid_t child)
{
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
}

static bool do_nothing(pid_t unused)
{
    (void)unused;
    return true;
}

static bool become_undumpable(pid_t unused)
{
    (void)unused;
    return prctl(PR_SET_DUMPABLE, 0) == 0;
}

static bool seize(pid_t target)
{
    return ptrace(PTRACE_SEIZE, target, NULL, NULL) == 0;
}

/* Root may read any process: as root, the test reads as nobody.  The
 * refusal is the reader's own, and comes out as the explanation. */
START_TEST(test_refusal_of_a_process_not_dumpable)
{
    if (geteuid() == 0)
        ck_assert_int_eq(setresuid(65534, 65534, 65534), 0);
    bool prepared;
    pid_t child = start_child(become_undumpable, 0, &prepared);
    char message[512], expected[512];
    struct log_reader *reader = log_reader_open_pid(child, message, sizeof(message));
    end_child(child);
    ck_assert(prepared);
    ck_assert_ptr_null(reader);
    snprintf(expected, sizeof(expected),
             "not permitted to read process %d: it is not dumpable (a "
             "set-user-ID program, or it called prctl(PR_SET_DUMPABLE, 0)); "
             "run as root (or with CAP_SYS_PTRACE)", (int)child);
    ck_assert_str_eq(message, expected);
}
END_TEST

/* A process that a sibling traces: tracing it again is refused. */
START_TEST(test_refusal_names_the_tracer)
{
    bool prepared, seized;
    pid_t target = start_child(do_nothing, 0, &prepared);
    pid_t tracer = start_child(seize, target, &seized);
    bool refused = ptrace(PTRACE_SEIZE, target, NULL, NULL) != 0;
    char message[512], expected[512];
    target_explain_refusal(target, message, sizeof(message));
    end_child(tracer);
    end_child(target);
    if (!seized) /* Yama lets no sibling trace it */
        return;
    ck_assert(refused);
    snprintf(expected, sizeof(expected),
             "not permitted to read process %d: it is being traced by "
             "process %d (a debugger or strace); detach that first",
             (int)target, (int)tracer);
    ck_assert_str_eq(message, expected);
}
END_TEST

static void expect_json(const char *text, const char *expected)
{
    char buffer[256];
    FILE *out = fmemopen(buffer, sizeof(buffer), "w");
    ck_assert_ptr_nonnull(out);
    json_write_string(out, text);
    ck_assert_int_eq(fputc('\0', out), 0);
    fclose(out);
    ck_assert_str_eq(buffer, expected);
}

/* Paths and zone names are bytes: what is not UTF-8 becomes U+FFFD, so
 * that the output stays JSON; well-formed characters pass unchanged. */
START_TEST(test_json_strings_of_any_bytes)
{
    expect_json("say \"hi\" \\ \n", "\"say \\\"hi\\\" \\\\ \\u000a\"");
    expect_json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    expect_json("a\xff" "b", "\"a\\ufffdb\"");
    /* Overlong, a surrogate, past U+10FFFF, cut short at the end. */
    expect_json("\xc0\x80", "\"\\ufffd\\ufffd\"");
    expect_json("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
    expect_json("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    expect_json("x\xe2\x82", "\"x\\ufffd\\ufffd\"");
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("tools core");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_sort_shapes);
    tcase_add_test(tc, test_size_filters);
    tcase_add_test(tc, test_block_index);
    tcase_add_test(tc, test_read_or_zero);
    tcase_add_test(tc, test_json_strings_of_any_bytes);
    suite_add_tcase(suite, tc);
    TCase *permission = tcase_create("permission");
    tcase_add_test(permission, test_refusal_of_a_process_not_dumpable);
    tcase_add_test(permission, test_refusal_names_the_tracer);
    suite_add_tcase(suite, permission);
    SRunner *runner = srunner_create(suite);
    /* A test that gives up root must not take the others with it. */
    srunner_set_fork_status(runner, CK_FORK);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
