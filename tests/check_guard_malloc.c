/*
 * Guard Malloc (MallocGuardMalloc).  Two kinds of tests:
 *
 *  - faults and options: tests/guard_probe runs with MallocGuardMalloc
 *    and its controls set, makes one bad access, and must die of SIGSEGV
 *    at exactly that address (or survive it, where the options allow);
 *  - the zone itself: this program re-executes itself with
 *    MallocGuardMalloc=1, so that the guard zone is its own default zone,
 *    and checks the zone API, reports, enumeration, the fallback past
 *    the map budget, threads and fork in-process.
 */
#include "config.h"
#include "test_util.h"

#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROBE "tests/guard_probe"
#define PAGE 4096UL
#define ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((uintptr_t)(a) - 1))
#define FREED "pointer being freed was not allocated"
#define REALLOCED "pointer being realloc'd was not allocated"

/* ---- running the probe ---- */

/* Runs the probe with the NULL-terminated `args` and the NULL-terminated
 * "Name=value" `settings` in a clean environment. */
static void run_guard_probe(struct probe_run *run, const char *const *args,
                            const char *const *settings)
{
    probe_with_args(run, PROBE, args, settings, false);
}

static bool killed_by(const struct probe_run *run, int signal)
{
    return WIFSIGNALED(run->status) && WTERMSIG(run->status) == signal;
}

/* The probe died of SIGSEGV, at the address it said it would touch. */
static void assert_faulted_at_expected(const struct probe_run *run)
{
    ck_assert_msg(killed_by(run, SIGSEGV), "no SIGSEGV (status %#x), output:\n%s",
                  run->status, run->out);
    const char *expect = strstr(run->out, "expect ");
    const char *fault = strstr(run->out, "fault ");
    ck_assert_ptr_nonnull(expect);
    ck_assert_ptr_nonnull(fault);
    unsigned long expected = strtoul(expect + 7, NULL, 16);
    unsigned long faulted = strtoul(fault + 6, NULL, 16);
    ck_assert_msg(expected == faulted, "faulted at %#lx, not at %#lx",
                  faulted, expected);
    ck_assert_uint_eq(count_lines_with(run->out, "survived"), 0);
}

static void assert_survived(const struct probe_run *run)
{
    ck_assert_msg(exited_cleanly(run), "status %#x, output:\n%s", run->status,
                  run->out);
    ck_assert_uint_eq(count_lines_with(run->out, "survived"), 1);
    ck_assert_uint_eq(count_lines_with(run->out, "fault "), 0);
}

/* ---- faults ---- */

START_TEST(test_strict_size_overrun_by_one_byte_faults)
{
    static const char *const settings[] = {"MallocGuardMalloc=1",
                                           "MALLOC_STRICT_SIZE=1", NULL};
    static const char *const overrun[] = {"access", "write", "13", "13", NULL};
    static const char *const last[] = {"access", "write", "13", "12", NULL};
    struct probe_run run;
    run_guard_probe(&run, overrun, settings);
    ck_assert_uint_eq(count_lines_with(run.out, "size 13"), 1);
    assert_faulted_at_expected(&run);
    run_guard_probe(&run, last, settings);
    assert_survived(&run);
}
END_TEST

START_TEST(test_overrun_past_the_alignment_faults)
{
    static const char *const settings[] = {"MallocGuardMalloc=1", NULL};
    static const char *const in_slack[] = {"access", "write", "13", "15", NULL};
    static const char *const past[] = {"access", "write", "13", "16", NULL};
    static const char *const big[] = {"access", "write", "100000", "100000", NULL};
    struct probe_run run;
    run_guard_probe(&run, in_slack, settings);
    ck_assert_uint_eq(count_lines_with(run.out, "size 16"), 1);
    assert_survived(&run);
    run_guard_probe(&run, past, settings);
    assert_faulted_at_expected(&run);
    run_guard_probe(&run, big, settings);
    assert_faulted_at_expected(&run);
}
END_TEST

START_TEST(test_the_library_without_guard_malloc_does_not_fault)
{
    static const char *const past[] = {"access", "write", "13", "16", NULL};
    struct probe_run run;
    run_guard_probe(&run, past, NULL);
    assert_survived(&run);
}
END_TEST

START_TEST(test_protect_before_catches_underruns)
{
    static const char *const settings[] = {"MallocGuardMalloc=1",
                                           "MALLOC_PROTECT_BEFORE=1", NULL};
    static const char *const under[] = {"access", "write", "100", "-1", NULL};
    static const char *const over[] = {"access", "write", "100", "112", NULL};
    static const char *const under_by_default[] = {"access", "write", "4000",
                                                   "-1", NULL};
    static const char *const default_settings[] = {"MallocGuardMalloc=1", NULL};
    struct probe_run run;
    run_guard_probe(&run, under, settings);
    assert_faulted_at_expected(&run);
    /* The guard page moved: past the end is no longer caught... */
    run_guard_probe(&run, over, settings);
    assert_survived(&run);
    /* ...and without the option the page before a block is its own. */
    run_guard_probe(&run, under_by_default, default_settings);
    assert_survived(&run);
}
END_TEST

START_TEST(test_use_after_free_faults)
{
    static const char *const settings[] = {"MallocGuardMalloc=1", NULL};
    static const char *const write_after[] = {"after-free", "write", NULL};
    static const char *const read_after[] = {"after-free", "read", NULL};
    struct probe_run run;
    run_guard_probe(&run, write_after, settings);
    assert_faulted_at_expected(&run);
    run_guard_probe(&run, read_after, settings);
    assert_faulted_at_expected(&run);
}
END_TEST

START_TEST(test_realloc_always_moves_and_stale_pointers_fault)
{
    static const char *const settings[] = {"MallocGuardMalloc=1", NULL};
    static const char *const args[] = {"after-realloc", NULL};
    struct probe_run run;
    run_guard_probe(&run, args, settings);
    ck_assert_uint_eq(count_lines_with(run.out, "moved yes kept 07"), 1);
    assert_faulted_at_expected(&run);
}
END_TEST

START_TEST(test_allow_reads)
{
    static const char *const allow[] = {"MallocGuardMalloc=1",
                                        "MALLOC_ALLOW_READS=1", NULL};
    static const char *const deny[] = {"MallocGuardMalloc=1", NULL};
    static const char *const read_guard[] = {"access", "read", "32", "32", NULL};
    static const char *const write_guard[] = {"access", "write", "32", "32", NULL};
    static const char *const read_freed[] = {"after-free", "read", NULL};
    struct probe_run run;
    run_guard_probe(&run, read_guard, allow);
    assert_survived(&run);
    ck_assert_uint_eq(count_lines_with(run.out, "survived read 00"), 1);
    run_guard_probe(&run, write_guard, allow);
    assert_faulted_at_expected(&run);
    /* Freed blocks stay unreadable. */
    run_guard_probe(&run, read_freed, allow);
    assert_faulted_at_expected(&run);
    run_guard_probe(&run, read_guard, deny);
    assert_faulted_at_expected(&run);
}
END_TEST

/* ---- options ---- */

START_TEST(test_fill_space)
{
    static const char *const fill[] = {"MallocGuardMalloc=1",
                                       "MALLOC_FILL_SPACE=1", NULL};
    static const char *const plain[] = {"MallocGuardMalloc=1", NULL};
    static const char *const args[] = {"fill", NULL};
    struct probe_run run;
    run_guard_probe(&run, args, fill);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.out, "malloc 112 55 55 all\n"
                              "calloc 112 00 00 all\n"
                              "memalign 304 55 55 all\n");
    /* Without it, new blocks hold zeros. */
    run_guard_probe(&run, args, plain);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.out, "malloc 112 00 00 not-all\n"
                              "calloc 112 00 00 all\n"
                              "memalign 304 00 00 not-all\n");
}
END_TEST

START_TEST(test_strict_size_sizes_and_alignment)
{
    static const char *const settings[] = {"MallocGuardMalloc=1",
                                           "MALLOC_STRICT_SIZE=1", NULL};
    static const char *const args[] = {"strict-sizes", NULL};
    struct probe_run run;
    run_guard_probe(&run, args, settings);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.out, "1:1:at-guard 9:9:at-guard 17:17:at-guard "
                              "25:25:at-guard 33:33:at-guard memalign aligned\n");
}
END_TEST

START_TEST(test_quarantine_is_bounded)
{
    /* 300 freed blocks of 4000 bytes: 2.4 MB of pages and guards. */
    static const char *const small[] = {"MallocGuardMalloc=1",
                                        "MALLOC_QUARANTINE_SIZE=1048576", NULL};
    static const char *const by_default[] = {"MallocGuardMalloc=1", NULL};
    static const char *const args[] = {"quarantine", "300", "4000", NULL};
    struct probe_run run;
    run_guard_probe(&run, args, small);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.out, "first unmapped last mapped\n");
    run_guard_probe(&run, args, by_default);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.out, "first mapped last mapped\n");
}
END_TEST

START_TEST(test_bad_frees_are_reported_and_the_program_goes_on)
{
    static const char *const settings[] = {"MallocGuardMalloc=1", NULL};
    static const char *const args[] = {"bad-frees", NULL};
    struct probe_run run;
    run_guard_probe(&run, args, settings);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.out, "realloc null\nwent on\ncheck 1\n");
    ck_assert_uint_eq(count_lines_with(run.err, FREED), 4);
    ck_assert_uint_eq(count_lines_with(run.err, REALLOCED), 1);
    ck_assert_uint_eq(count_lines_with(run.err, "malloc_error_break"), 5);
    ck_assert_uint_eq(count_lines(run.err), 10);
}
END_TEST

START_TEST(test_error_abort_aborts_at_the_first_bad_free)
{
    static const char *const error_abort[] = {"MallocGuardMalloc=1",
                                              "MallocErrorAbort=1", NULL};
    static const char *const no_corruption_abort[] = {
        "MallocGuardMalloc=1", "MallocCorruptionAbort=0", NULL};
    static const char *const args[] = {"bad-frees", NULL};
    struct probe_run run;
    run_guard_probe(&run, args, error_abort);
    ck_assert(killed_by(&run, SIGABRT));
    ck_assert_str_eq(run.out, "");
    ck_assert_uint_eq(count_lines_with(run.err, FREED), 1);
    /* A bad free is an error, not corruption: this one goes on. */
    run_guard_probe(&run, args, no_corruption_abort);
    ck_assert(exited_cleanly(&run));
    ck_assert_uint_eq(count_lines_with(run.out, "went on"), 1);
}
END_TEST

START_TEST(test_scribble_gives_way_to_guard_malloc)
{
    static const char *const settings[] = {"MallocGuardMalloc=1",
                                           "MallocScribble=1", NULL};
    static const char *const args[] = {"nothing", NULL};
    struct probe_run run;
    run_guard_probe(&run, args, settings);
    ck_assert(exited_cleanly(&run));
    ck_assert_str_eq(run.out, "malloc 48 00 00 all\nran\n");
    ck_assert_uint_eq(count_lines(run.err), 1);
    ck_assert_uint_eq(count_lines_with(run.err,
                                       "MallocGuardMalloc: MallocScribble, "
                                       "MallocPreScribble, MallocZeroOnFree and "
                                       "MallocCheckZeroOnFreeCorruption are ignored"),
                      1);
}
END_TEST

/* ---- in-process: the guard zone is this program's default zone ---- */

/* The protection of the page holding `address`, from /proc/self/maps
 * ("rw-p", "---p", ...), or "" when it is not mapped. */
static void page_protection(const void *address, char protection[5])
{
    uintptr_t wanted = (uintptr_t)address;
    protection[0] = '\0';
    FILE *maps = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(maps);
    unsigned long start, end;
    char perms[5];
    while (fscanf(maps, "%lx-%lx %4s%*[^\n]", &start, &end, perms) == 3)
        if (wanted >= start && wanted < end) {
            memcpy(protection, perms, 5);
            break;
        }
    fclose(maps);
}

static void assert_page_protection(const void *address, const char *expected)
{
    char protection[5];
    page_protection(address, protection);
    ck_assert_msg(strcmp(protection, expected) == 0, "page of %p is '%s', not '%s'",
                  address, protection, expected);
}

/* A guarded block: writable to its end, inaccessible right after the
 * page its end is on. */
static void assert_guarded(const void *block)
{
    uintptr_t end = (uintptr_t)block + malloc_size(block);
    assert_page_protection((const void *)(end - 1), "rw-p");
    assert_page_protection((const void *)ALIGN_UP(end, PAGE), "---p");
}

START_TEST(test_default_zone_is_the_guard_zone)
{
    malloc_zone_t *zone = malloc_default_zone();
    ck_assert_str_eq(malloc_get_zone_name(zone), "GuardMallocZone");
    void *block = malloc(10);
    ck_assert_ptr_eq(malloc_zone_from_ptr(block), zone);
    ck_assert_uint_eq(malloc_size(block), 16);
    ck_assert_uint_eq(malloc_usable_size(block), 16);
    ck_assert_uint_eq(((uintptr_t)block + 16) % PAGE, 0);
    assert_guarded(block);
    free(block);
    /* Zones the program makes stay scalable zones: their blocks share
     * pages. */
    malloc_zone_t *other = malloc_create_zone(0, 0);
    char *first = malloc_zone_malloc(other, 10);
    char *second = malloc_zone_malloc(other, 10);
    ck_assert_ptr_eq(malloc_zone_from_ptr(first), other);
    ck_assert_uint_eq((uintptr_t)first / PAGE, (uintptr_t)second / PAGE);
    free(first);
    free(second);
    malloc_destroy_zone(other);
}
END_TEST

START_TEST(test_sizes_end_against_the_guard)
{
    static const size_t sizes[] = {0, 1, 15, 16, 17, 100, 4080, 4095, 4096,
                                   4097, 8191, 65536, 200000, 3 * MiB + 5};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t size = sizes[i];
        unsigned char *block = malloc(size);
        size_t expected = size ? ALIGN_UP(size, 16) : 16;
        ck_assert_uint_eq(malloc_size(block), expected);
        ck_assert_uint_eq(malloc_good_size(size), expected);
        ck_assert_uint_eq((uintptr_t)block % 16, 0);
        ck_assert_uint_eq(((uintptr_t)block + expected) % PAGE, 0);
        memset(block, 0x5a, expected);
        assert_guarded(block);
        free(block);
        assert_page_protection(block, "---p");
    }
}
END_TEST

START_TEST(test_alignments_up_to_64_kib)
{
    static const size_t sizes[] = {1, 13, 100, 4096, 5000, 70000};
    for (size_t alignment = 8; alignment <= 64 * KiB; alignment *= 2)
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            void *block = NULL;
            ck_assert_int_eq(posix_memalign(&block, alignment, sizes[i]), 0);
            ck_assert_uint_eq((uintptr_t)block % alignment, 0);
            ck_assert_uint_ge(malloc_size(block), sizes[i]);
            memset(block, 1, malloc_size(block));
            assert_guarded(block);
            /* Up to a page, the block's end is within its alignment of
             * the guard; beyond, within a page. */
            uintptr_t end = (uintptr_t)block + sizes[i];
            size_t gap = ALIGN_UP(end, PAGE) - end;
            ck_assert_uint_lt(gap, alignment > 16 ? alignment : 16);
            free(block);
            void *aligned = aligned_alloc(alignment, sizes[i]);
            ck_assert_uint_eq((uintptr_t)aligned % alignment, 0);
            free(aligned);
            void *zone_aligned = malloc_zone_memalign(malloc_default_zone(),
                                                      alignment, sizes[i]);
            ck_assert_uint_eq((uintptr_t)zone_aligned % alignment, 0);
            free(zone_aligned);
        }
    void *page = valloc(10);
    ck_assert_uint_eq((uintptr_t)page % PAGE, 0);
    free(page);
}
END_TEST

START_TEST(test_calloc)
{
    errno = 0;
    ck_assert_ptr_null(calloc(launder_size(SIZE_MAX / 2 + 1), 2));
    ck_assert_int_eq(errno, ENOMEM);
    ck_assert_ptr_null(malloc_zone_calloc(malloc_default_zone(), SIZE_MAX / 8, 16));
    /* Revived quarantined pages read as zero too. */
    for (int round = 0; round < 3; round++) {
        void *blocks[64];
        for (int i = 0; i < 64; i++) {
            blocks[i] = calloc(25, 40);
            ck_assert(is_all_zero(blocks[i], 1000));
            memset(blocks[i], 0xff, 1000);
        }
        for (int i = 0; i < 64; i++)
            free(blocks[i]);
    }
}
END_TEST

START_TEST(test_huge_requests_fail_with_enomem)
{
    struct capture capture;
    char text[2048];
    capture_begin(&capture);
    errno = 0;
    void *block = malloc((size_t)1 << 46);
    int error = errno;
    void *overflow = malloc(launder_size(SIZE_MAX - 10));
    capture_end(&capture, text, sizeof(text));
    ck_assert_ptr_null(block);
    ck_assert_ptr_null(overflow);
    ck_assert_int_eq(error, ENOMEM);
    ck_assert_uint_eq(count_lines_with(text, "can't allocate region of size"), 2);
    ck_assert_uint_eq(count_lines_with(text, "Guard Malloc"), 0);
}
END_TEST

/* A block bigger than the whole quarantine pushes out every older one,
 * however many, and then itself. */
START_TEST(test_quarantine_drains_past_a_big_free)
{
    enum { SMALL = 100 };
    static void *blocks[SMALL];
    for (int i = 0; i < SMALL; i++)
        blocks[i] = malloc(100);
    void *big = malloc(300 * MiB);
    ck_assert_ptr_nonnull(big);
    for (int i = 0; i < SMALL; i++)
        free(blocks[i]);
    ck_assert(page_is_mapped(blocks[0]));
    ck_assert(page_is_mapped(blocks[SMALL - 1]));
    free(big);
    unsigned mapped = 0;
    for (int i = 0; i < SMALL; i++)
        mapped += page_is_mapped(blocks[i]);
    ck_assert_uint_eq(mapped, 0);
    ck_assert(!page_is_mapped(big));
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
}
END_TEST

/* ---- reports ---- */

static char captured[8192];
static char expected[1024];

#define ASSERT_REPORTS(pointer, what, action)                                  \
    do {                                                                       \
        struct capture cap_;                                                   \
        capture_begin(&cap_);                                                  \
        action;                                                                \
        capture_end(&cap_, captured, sizeof(captured));                        \
        expected_pointer_error(expected, sizeof(expected), (pointer), (what)); \
        ck_assert_str_eq(captured, expected);                                  \
    } while (0)

START_TEST(test_bad_frees_report_exactly)
{
    char local[64];
    char *block = malloc(100);
    char *live = malloc(100);
    fill_pattern(live, 100, 3);
    free(block);
    void *again = launder(block);
    ASSERT_REPORTS(again, FREED, free(again));
    void *interior = launder(live + 16);
    ASSERT_REPORTS(interior, FREED, free(interior));
    void *stack = launder(local);
    ASSERT_REPORTS(stack, FREED, free(stack));
    ASSERT_REPORTS(again, FREED, malloc_zone_free(malloc_default_zone(), again));
    void *result = (void *)1;
    errno = 0;
    ASSERT_REPORTS(again, REALLOCED, result = realloc(again, 10));
    ck_assert_ptr_null(result);
    ck_assert_int_eq(errno, EINVAL);
    ASSERT_REPORTS(interior, REALLOCED,
                   result = malloc_zone_realloc(malloc_default_zone(), interior, 10));
    ck_assert_ptr_null(result);
    /* Nothing was damaged. */
    ck_assert(check_pattern(live, 100, 3));
    ck_assert_uint_eq(malloc_size(live), 112);
    ck_assert_uint_eq(malloc_size(block), 0);
    ck_assert_ptr_null(malloc_zone_from_ptr(block));
    ck_assert_ptr_null(malloc_zone_from_ptr(live + 16));
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
    free(live);
}
END_TEST

/* ---- statistics and enumeration ---- */

enum { COUNTED_BLOCKS = 200 };

struct found_ranges {
    unsigned count;
    vm_range_t ranges[4 * COUNTED_BLOCKS + 64];
    size_t regions;
    size_t admin;
};

static void record_ranges(task_t task, void *context, unsigned type,
                          vm_range_t *ranges, unsigned count)
{
    struct found_ranges *found = context;
    for (unsigned i = 0; i < count; i++) {
        if (type == MALLOC_PTR_IN_USE_RANGE_TYPE &&
            found->count < sizeof(found->ranges) / sizeof(found->ranges[0]))
            found->ranges[found->count++] = ranges[i];
        found->regions += type == MALLOC_PTR_REGION_RANGE_TYPE;
        found->admin += type == MALLOC_ADMIN_REGION_RANGE_TYPE;
    }
}

static bool found_range(const struct found_ranges *found, const void *block,
                        size_t size)
{
    unsigned n = 0;
    for (unsigned i = 0; i < found->count; i++)
        n += found->ranges[i].address == (vm_address_t)block &&
             found->ranges[i].size == size;
    return n == 1;
}

/* A reader that copies, as a tool reading another process does.  It
 * runs with the zone locked, so the copies come from a static arena,
 * not from malloc; they live until the test ends. */
static kern_return_t copying_reader(task_t task, vm_address_t address,
                                    vm_size_t size, void **local)
{
    static char arena[8 * MiB] __attribute__((aligned(16)));
    static size_t used;
    size_t rounded = ALIGN_UP(size, 16);
    if (rounded > sizeof(arena) - used)
        return KERN_RESOURCE_SHORTAGE;
    memcpy(arena + used, (void *)address, size);
    *local = arena + used;
    used += rounded;
    return KERN_SUCCESS;
}

static void enumerate_default_zone(struct found_ranges *found,
                                   memory_reader_t *reader)
{
    malloc_zone_t *zone = malloc_default_zone();
    memset(found, 0, sizeof(*found));
    zone->introspect->force_lock(zone);
    kern_return_t error = zone->introspect->enumerator(
        mach_task_self(), found,
        MALLOC_PTR_IN_USE_RANGE_TYPE | MALLOC_PTR_REGION_RANGE_TYPE |
            MALLOC_ADMIN_REGION_RANGE_TYPE,
        (vm_address_t)zone, reader, record_ranges);
    zone->introspect->force_unlock(zone);
    ck_assert_int_eq(error, KERN_SUCCESS);
}

START_TEST(test_statistics_and_enumeration)
{
    static struct found_ranges found;
    static void *blocks[COUNTED_BLOCKS];
    malloc_statistics_t before, during, after;
    malloc_zone_statistics(malloc_default_zone(), &before);
    size_t bytes = 0;
    for (unsigned i = 0; i < COUNTED_BLOCKS; i++) {
        blocks[i] = malloc(1 + i * 37);
        bytes += malloc_size(blocks[i]);
    }
    malloc_zone_statistics(malloc_default_zone(), &during);
    ck_assert_uint_eq(during.blocks_in_use - before.blocks_in_use, COUNTED_BLOCKS);
    ck_assert_uint_eq(during.size_in_use - before.size_in_use, bytes);
    ck_assert_uint_ge(during.size_allocated, during.size_in_use);
    ck_assert_uint_ge(during.max_size_in_use, during.size_allocated);

    memory_reader_t *readers[] = {NULL, copying_reader};
    for (unsigned r = 0; r < 2; r++) {
        enumerate_default_zone(&found, readers[r]);
        ck_assert_uint_eq(found.count, during.blocks_in_use);
        for (unsigned i = 0; i < COUNTED_BLOCKS; i++)
            ck_assert_msg(found_range(&found, blocks[i], malloc_size(blocks[i])),
                          "block %u not enumerated once", i);
        ck_assert_uint_ge(found.regions, COUNTED_BLOCKS);
        ck_assert_uint_ge(found.admin, 2);
    }
    for (unsigned i = 0; i < COUNTED_BLOCKS; i += 2)
        free(blocks[i]);
    enumerate_default_zone(&found, copying_reader);
    for (unsigned i = 0; i < COUNTED_BLOCKS; i++)
        ck_assert(found_range(&found, blocks[i], malloc_size(blocks[i])) == (i % 2 == 1));
    for (unsigned i = 1; i < COUNTED_BLOCKS; i += 2)
        free(blocks[i]);
    malloc_zone_statistics(malloc_default_zone(), &after);
    ck_assert_uint_eq(after.blocks_in_use, before.blocks_in_use);
    ck_assert_uint_eq(after.size_in_use, before.size_in_use);
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
}
END_TEST

/* ---- another process, through process_vm_readv ---- */

static kern_return_t remote_reader(task_t task, vm_address_t address,
                                   vm_size_t size, void **local)
{
    void *buffer = malloc(size ? size : 1);
    struct iovec here = {buffer, size}, there = {(void *)address, size};
    ssize_t n = process_vm_readv(task, &here, 1, &there, 1, 0);
    if (n < 0 || (size_t)n != size) {
        free(buffer);
        return KERN_INVALID_ADDRESS;
    }
    *local = buffer;
    return KERN_SUCCESS;
}

struct remote_blocks {
    vm_address_t zone;
    vm_range_t live[COUNTED_BLOCKS];
    vm_address_t freed[COUNTED_BLOCKS];
};

static void remote_child(int to_parent, int from_parent)
{
    static struct remote_blocks report;
    static void *blocks[2 * COUNTED_BLOCKS];
    for (unsigned i = 0; i < 2 * COUNTED_BLOCKS; i++)
        blocks[i] = malloc(1 + i * 53);
    for (unsigned i = 0; i < COUNTED_BLOCKS; i++) {
        report.freed[i] = (vm_address_t)blocks[2 * i];
        free(blocks[2 * i]);
        report.live[i] = (vm_range_t){(vm_address_t)blocks[2 * i + 1],
                                      malloc_size(blocks[2 * i + 1])};
    }
    report.zone = (vm_address_t)malloc_default_zone();
    if (write(to_parent, &report, sizeof(report)) != (ssize_t)sizeof(report))
        _exit(2);
    char byte;
    (void)!read(from_parent, &byte, 1);
    _exit(0);
}

START_TEST(test_enumerating_another_process)
{
    int up[2], down[2];
    ck_assert_int_eq(pipe(up), 0);
    ck_assert_int_eq(pipe(down), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        remote_child(up[1], down[0]);
    static struct remote_blocks report;
    static struct found_ranges found;
    size_t got = 0;
    ssize_t n;
    while (got < sizeof(report) &&
           (n = read(up[0], (char *)&report + got, sizeof(report) - got)) > 0)
        got += (size_t)n;
    ck_assert_uint_eq(got, sizeof(report));
    void *probe_copy;
    if (remote_reader(pid, report.zone, 8, &probe_copy) != KERN_SUCCESS) {
        /* The kernel refuses process_vm_readv here (Yama, a container). */
        fprintf(stderr, "check_guard_malloc: process_vm_readv refused, remote "
                        "enumeration not tested\n");
    } else {
        malloc_zone_t *zone = malloc_default_zone();
        kern_return_t error = zone->introspect->enumerator(
            pid, &found, MALLOC_PTR_IN_USE_RANGE_TYPE, report.zone,
            remote_reader, record_ranges);
        ck_assert_int_eq(error, KERN_SUCCESS);
        for (unsigned i = 0; i < COUNTED_BLOCKS; i++) {
            ck_assert(found_range(&found, (void *)report.live[i].address,
                                  report.live[i].size));
            for (unsigned k = 0; k < found.count; k++)
                ck_assert_uint_ne(found.ranges[k].address, report.freed[i]);
        }
    }
    ck_assert_int_eq(write(down[1], "x", 1), 1);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

/* ---- the rest of the zone API ---- */

START_TEST(test_zone_api)
{
    malloc_zone_t *zone = malloc_default_zone();
    ck_assert_uint_eq(zone->version, 10);
    void *results[20];
    ck_assert_uint_eq(malloc_zone_batch_malloc(zone, 40, results, 20), 20);
    for (int i = 0; i < 20; i++) {
        ck_assert_uint_eq(malloc_size(results[i]), 48);
        assert_guarded(results[i]);
    }
    malloc_zone_batch_free(zone, results, 20);
    for (int i = 0; i < 20; i++)
        ck_assert_uint_eq(malloc_size(results[i]), 0);

    char *block = malloc_zone_malloc(zone, 1000);
    ck_assert(zone->claimed_address(zone, block));
    ck_assert(zone->claimed_address(zone, block + 500));
    int local;
    ck_assert(!zone->claimed_address(zone, &local));
    zone->free_definite_size(zone, block, 1000);
    ck_assert_uint_eq(malloc_size(block), 0);
    /* Freed, its pages are still the zone's, in quarantine. */
    ck_assert(zone->claimed_address(zone, block));

    ck_assert(!zone->introspect->zone_locked(zone));
    /* Check's assertions allocate: none while the zone is locked. */
    zone->introspect->force_lock(zone);
    boolean_t locked = zone->introspect->zone_locked(zone);
    zone->introspect->force_unlock(zone);
    ck_assert(locked);
    malloc_zone_pressure_relief(zone, 0);
    malloc_zone_log(zone, NULL);

    struct capture capture;
    capture_begin(&capture);
    malloc_zone_print(zone, 1);
    capture_end(&capture, captured, sizeof(captured));
    ck_assert_uint_eq(count_lines_with(captured, "Guard Malloc zone"), 1);
    ck_assert_uint_eq(count_lines_with(captured, "GuardMallocZone"), 1);
    ck_assert_uint_ge(count_lines_with(captured, "guard page"), 1);

    /* The default zone stays. */
    capture_begin(&capture);
    malloc_destroy_zone(zone);
    capture_end(&capture, captured, sizeof(captured));
    ck_assert_uint_eq(count_lines_with(captured, "cannot be destroyed"), 1);
    void *still = malloc(5);
    ck_assert_ptr_nonnull(still);
    free(still);
}
END_TEST

START_TEST(test_realloc_moves_and_keeps_contents)
{
    size_t sizes[] = {1, 30, 100, 5000, 100, 20000, 3};
    unsigned char *block = malloc(10);
    fill_pattern(block, 10, 1);
    size_t kept = 10;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *moved = realloc(block, sizes[i]);
        ck_assert_ptr_ne(moved, block);
        size_t common = kept < sizes[i] ? kept : sizes[i];
        ck_assert(check_pattern(moved, common, 1));
        fill_pattern(moved, sizes[i], 1);
        kept = sizes[i];
        assert_guarded(moved);
        assert_page_protection(block, "---p");
        block = moved;
    }
    free(block);
    void *fresh = realloc(NULL, 10);
    ck_assert_uint_eq(malloc_size(fresh), 16);
    ck_assert_ptr_null(realloc(fresh, 0));
    ck_assert_uint_eq(malloc_size(fresh), 0);
}
END_TEST

/* ---- past the map budget ---- */

struct block_search {
    vm_address_t wanted;
    unsigned found;
    unsigned in_use;
};

static void search_ranges(task_t task, void *context, unsigned type,
                          vm_range_t *ranges, unsigned count)
{
    struct block_search *search = context;
    search->in_use += count;
    for (unsigned i = 0; i < count; i++)
        search->found += ranges[i].address == search->wanted;
}

static size_t max_map_count(void)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    unsigned long count = 65530;
    if (f) {
        if (fscanf(f, "%lu", &count) != 1)
            count = 65530;
        fclose(f);
    }
    return count;
}

START_TEST(test_more_live_blocks_than_the_map_budget)
{
    size_t limit = max_map_count();
    if (limit > 400000) {
        fprintf(stderr, "check_guard_malloc: vm.max_map_count is %zu, too "
                        "many blocks to reach its budget; not tested\n", limit);
        return;
    }
    /* Two mappings per live block, a budget of three quarters. */
    size_t count = limit * 3 / 4 / 2 + 2000;
    unsigned char **blocks = malloc(count * sizeof(*blocks));
    struct capture capture;
    char text[2048];
    capture_begin(&capture);
    for (size_t i = 0; i < count; i++) {
        blocks[i] = malloc(24);
        ck_assert_ptr_nonnull(blocks[i]);
        memset(blocks[i], (int)(i & 0xff), 24);
    }
    capture_end(&capture, text, sizeof(text));
    ck_assert_uint_eq(count_lines(text), 1);
    char needle[128];
    snprintf(needle, sizeof(needle), "close to vm.max_map_count (%zu); new "
             "blocks are not guarded until some are freed", limit);
    ck_assert_msg(count_lines_with(text, needle) == 1, "said: %s", text);
    ck_assert_uint_eq(count_lines_with(text, ") malloc: Guard Malloc: "), 1);

    /* The last blocks are unguarded (their neighbours are blocks, not
     * guard pages), yet the guard zone's. */
    malloc_zone_t *zone = malloc_default_zone();
    unsigned char *last = blocks[count - 1];
    ck_assert_ptr_eq(malloc_zone_from_ptr(last), zone);
    ck_assert_uint_ge(malloc_size(last), 24);
    assert_page_protection(last + malloc_size(last), "rw-p");
    ck_assert_uint_eq((uintptr_t)blocks[count - 2] / PAGE, (uintptr_t)last / PAGE);
    malloc_statistics_t stats;
    malloc_zone_statistics(zone, &stats);
    ck_assert_uint_ge(stats.blocks_in_use, count);
    ck_assert_int_eq(malloc_zone_check(zone), 1);
    struct block_search search = {(vm_address_t)last, 0, 0};
    zone->introspect->force_lock(zone);
    kern_return_t error = zone->introspect->enumerator(
        mach_task_self(), &search, MALLOC_PTR_IN_USE_RANGE_TYPE,
        (vm_address_t)zone, copying_reader, search_ranges);
    zone->introspect->force_unlock(zone);
    ck_assert_int_eq(error, KERN_SUCCESS);
    ck_assert_uint_eq(search.found, 1);
    ck_assert_uint_eq(search.in_use, stats.blocks_in_use);

    /* realloc moves blocks across the two kinds. */
    unsigned char *moved = realloc(last, 40);
    ck_assert_ptr_ne(moved, last);
    ck_assert_uint_eq(moved[23], (count - 1) & 0xff);
    blocks[count - 1] = moved;

    capture_begin(&capture);
    for (size_t i = 0; i < count; i++) {
        ck_assert_uint_eq(blocks[i][0], i & 0xff);
        free(blocks[i]);
    }
    capture_end(&capture, text, sizeof(text));
    ck_assert_str_eq(text, "");
    free(blocks);
    ck_assert_int_eq(malloc_zone_check(zone), 1);
    /* With the blocks freed, new ones are guarded again. */
    void *guarded = malloc(24);
    assert_guarded(guarded);
    free(guarded);
}
END_TEST

/* ---- threads and fork ---- */

enum { THREADS = 4, THREAD_SLOTS = 64, THREAD_ROUNDS = 4000 };

static void *churn(void *argument)
{
    uint64_t seed = (uintptr_t)argument * 7919 + 1;
    unsigned char *slots[THREAD_SLOTS] = {0};
    size_t sizes[THREAD_SLOTS] = {0};
    for (unsigned round = 0; round < THREAD_ROUNDS; round++) {
        unsigned i = (unsigned)(test_random(&seed) % THREAD_SLOTS);
        if (slots[i] && !check_pattern(slots[i], sizes[i], i))
            return (void *)1;
        size_t size = 1 + test_random(&seed) % 3000;
        if (slots[i] && round % 3 == 0) {
            slots[i] = realloc(slots[i], size);
            if (!check_pattern(slots[i], size < sizes[i] ? size : sizes[i], i))
                return (void *)1;
        } else {
            free(slots[i]);
            slots[i] = malloc(size);
        }
        sizes[i] = size;
        fill_pattern(slots[i], size, i);
    }
    for (unsigned i = 0; i < THREAD_SLOTS; i++)
        free(slots[i]);
    return NULL;
}

START_TEST(test_threads)
{
    pthread_t threads[THREADS];
    for (uintptr_t t = 0; t < THREADS; t++)
        ck_assert_int_eq(pthread_create(&threads[t], NULL, churn, (void *)t), 0);
    for (unsigned t = 0; t < THREADS; t++) {
        void *result;
        pthread_join(threads[t], &result);
        ck_assert_ptr_null(result);
    }
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
}
END_TEST

static void *allocate_forever(void *stop)
{
    while (!__atomic_load_n((int *)stop, __ATOMIC_RELAXED))
        free(malloc(100));
    return NULL;
}

START_TEST(test_fork_while_another_thread_allocates)
{
    int stop = 0;
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, allocate_forever, &stop), 0);
    for (int i = 0; i < 20; i++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            void *blocks[50];
            for (int k = 0; k < 50; k++)
                blocks[k] = malloc(10 + (size_t)k);
            for (int k = 0; k < 50; k++)
                free(blocks[k]);
            _exit(malloc_zone_check(NULL) ? 0 : 3);
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    pthread_join(thread, NULL);
}
END_TEST

static Suite *guard_malloc_suite(void)
{
    Suite *s = suite_create("guard_malloc");
    TCase *faults = tcase_create("faults");
    tcase_set_timeout(faults, 60);
    tcase_add_test(faults, test_strict_size_overrun_by_one_byte_faults);
    tcase_add_test(faults, test_overrun_past_the_alignment_faults);
    tcase_add_test(faults, test_the_library_without_guard_malloc_does_not_fault);
    tcase_add_test(faults, test_protect_before_catches_underruns);
    tcase_add_test(faults, test_use_after_free_faults);
    tcase_add_test(faults, test_realloc_always_moves_and_stale_pointers_fault);
    tcase_add_test(faults, test_allow_reads);
    suite_add_tcase(s, faults);

    TCase *options = tcase_create("options");
    tcase_set_timeout(options, 60);
    tcase_add_test(options, test_fill_space);
    tcase_add_test(options, test_strict_size_sizes_and_alignment);
    tcase_add_test(options, test_quarantine_is_bounded);
    tcase_add_test(options, test_bad_frees_are_reported_and_the_program_goes_on);
    tcase_add_test(options, test_error_abort_aborts_at_the_first_bad_free);
    tcase_add_test(options, test_scribble_gives_way_to_guard_malloc);
    suite_add_tcase(s, options);

    TCase *zone = tcase_create("zone");
    tcase_set_timeout(zone, 120);
    tcase_add_test(zone, test_default_zone_is_the_guard_zone);
    tcase_add_test(zone, test_sizes_end_against_the_guard);
    tcase_add_test(zone, test_alignments_up_to_64_kib);
    tcase_add_test(zone, test_calloc);
    tcase_add_test(zone, test_huge_requests_fail_with_enomem);
    tcase_add_test(zone, test_quarantine_drains_past_a_big_free);
    tcase_add_test(zone, test_bad_frees_report_exactly);
    tcase_add_test(zone, test_statistics_and_enumeration);
    tcase_add_test(zone, test_enumerating_another_process);
    tcase_add_test(zone, test_zone_api);
    tcase_add_test(zone, test_realloc_moves_and_keeps_contents);
    tcase_add_test(zone, test_more_live_blocks_than_the_map_budget);
    tcase_add_test(zone, test_threads);
    tcase_add_test(zone, test_fork_while_another_thread_allocates);
    suite_add_tcase(s, zone);
    return s;
}

int main(int argc, char **argv)
{
    /* The options are read at the first allocation: the guard zone can
     * only be this program's default zone if it starts with them. */
    if (!getenv("MallocGuardMalloc")) {
        setenv("MallocGuardMalloc", "1", 1);
        execv("/proc/self/exe", argv);
        perror("check_guard_malloc: re-executing itself");
        return EXIT_FAILURE;
    }
    return run_suite(guard_malloc_suite());
}
