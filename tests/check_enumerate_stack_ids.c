/*
 * The enumerators' stack ids (MALLOCDEBUG_STACK_ID_RANGE_TYPE): every
 * block in use has exactly one stack-id range, at the address of its
 * in-use range, holding its allocation stack id.  tests/enumerate_probe
 * runs with MallocStackLogging (which is read at the first allocation,
 * so it must be set before the process starts), allocates tiny, small
 * and large blocks from two call sites, and is walked twice: by itself
 * (no reader) and from this process through process_vm_readv.  Blocks
 * of one site must share a non-zero id, the two sites' ids must differ,
 * and without stack logging every id is 0; in the scalable zone, with
 * canaries, under Guard Malloc and in the guard zone's fallback.
 *
 * When the kernel refuses process_vm_readv on a child, the remote tests
 * are left out and the program exits 77 (SKIP) after the local ones.
 */
#define _GNU_SOURCE
#include "config.h"
#include "range_list.h"
#include "remote_reader.h"
#include "test_util.h"

#include <check.h>
#include <dirent.h>
#include <dlfcn.h>
#include <mallocdebug/stack_log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROBE "tests/enumerate_probe"
#define SITE_BLOCKS 6 /* as in enumerate_probe.c */
#define MANY 400      /* the same: of one tiny class, from both sites */
#define PAGE 4096UL

/* ---- the probe's log directory: its log must be gone at its exit ---- */

static char directory[64];
static char directory_setting[128];

static void make_directory(void)
{
    snprintf(directory, sizeof(directory), "/tmp/md-enum-ids-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(directory));
    snprintf(directory_setting, sizeof(directory_setting),
             "MallocStackLoggingDirectory=%s", directory);
}

/* The directory is empty (the probe removed its log), then removed. */
static void remove_directory(void)
{
    DIR *dir = opendir(directory);
    ck_assert_ptr_nonnull(dir);
    unsigned left = 0;
    for (struct dirent *entry; (entry = readdir(dir));)
        left += entry->d_name[0] != '.';
    closedir(dir);
    ck_assert_msg(left == 0, "%u files left in %s", left, directory);
    ck_assert_int_eq(rmdir(directory), 0);
}

/* ---- the settings of each case ---- */

enum mode { MODE_SCALABLE, MODE_CANARIES, MODE_GUARD, MODE_FALLBACK };

struct variant {
    enum mode mode;
    bool logging;
};

static void variant_settings(const struct variant *variant,
                             const char **settings)
{
    unsigned n = 0;
    if (variant->logging) {
        settings[n++] = "MallocStackLogging=1";
        settings[n++] = directory_setting;
    }
    if (variant->mode == MODE_CANARIES)
        settings[n++] = "MallocCanaries=1";
    if (variant->mode == MODE_GUARD || variant->mode == MODE_FALLBACK)
        settings[n++] = "MallocGuardMalloc=1";
    settings[n] = NULL;
}

/* ---- what was found at the probe's blocks ---- */

struct site_block {
    unsigned long address, size; /* as the probe has them */
    unsigned in_use_hits, id_hits;
    unsigned long in_use_size, id;
};

struct sites {
    struct site_block block[2][SITE_BLOCKS];
    unsigned long many[MANY];
    unsigned many_site[MANY];
    unsigned many_count;
    unsigned long freed;
    unsigned freed_in_use_hits, freed_id_hits;
};

/* Reads "a|b index address size [in_use_hits in_use_size id_hits id]"
 * lines and the "freed address [hits hits]" line. */
static void parse_sites(const char *out, struct sites *sites)
{
    memset(sites, 0, sizeof(*sites));
    unsigned seen = 0;
    for (const char *line = out; line; line = strchr(line, '\n')) {
        line += *line == '\n';
        char site;
        unsigned index;
        struct site_block b = {0};
        if (sscanf(line, "%c %u %lx %lu %u %lu %u %lu", &site, &index,
                   &b.address, &b.size, &b.in_use_hits, &b.in_use_size,
                   &b.id_hits, &b.id) >= 4 &&
            (site == 'a' || site == 'b') && index < SITE_BLOCKS) {
            sites->block[site == 'b'][index] = b;
            seen++;
        }
        unsigned long address;
        if (sscanf(line, "m %c %lx", &site, &address) == 2 &&
            (site == 'a' || site == 'b') && sites->many_count < MANY) {
            sites->many_site[sites->many_count] = site == 'b';
            sites->many[sites->many_count++] = address;
        }
        if (strncmp(line, "freed ", 6) == 0)
            sscanf(line + 6, "%lx %u %u", &sites->freed,
                   &sites->freed_in_use_hits, &sites->freed_id_hits);
    }
    ck_assert_msg(seen == 2 * SITE_BLOCKS && sites->freed,
                  "not every block in:\n%s", out);
}

/* For a walk made here: what the lists hold at each block. */
static void look_up_sites(struct sites *sites, const struct range_list *in_use,
                          const struct range_list *ids)
{
    vm_size_t size;
    for (unsigned s = 0; s < 2; s++)
        for (unsigned i = 0; i < SITE_BLOCKS; i++) {
            struct site_block *b = &sites->block[s][i];
            b->in_use_hits = range_list_at(in_use, b->address, &size);
            b->in_use_size = size;
            b->id_hits = range_list_at(ids, b->address, &size);
            b->id = size;
        }
    sites->freed_in_use_hits = range_list_at(in_use, sites->freed, &size);
    ck_assert_uint_eq(sites->many_count, MANY);
    sites->freed_id_hits = range_list_at(ids, sites->freed, &size);
}

/* One in-use range at the block's own address with its malloc_size, one
 * stack-id range there; nothing at the freed block. */
static void assert_blocks_found(const struct sites *sites)
{
    for (unsigned s = 0; s < 2; s++)
        for (unsigned i = 0; i < SITE_BLOCKS; i++) {
            const struct site_block *b = &sites->block[s][i];
            ck_assert_msg(b->in_use_hits == 1 && b->id_hits == 1,
                          "block %c%u %#lx: %u in-use ranges, %u stack ids",
                          "ab"[s], i, b->address, b->in_use_hits, b->id_hits);
            ck_assert_uint_eq(b->in_use_size, b->size);
        }
    ck_assert_uint_eq(sites->freed_in_use_hits, 0);
    ck_assert_uint_eq(sites->freed_id_hits, 0);
}

/* One non-zero id per site, different between the sites; or all 0. */
static void assert_site_ids(const struct sites *sites, bool logging)
{
    unsigned long a = sites->block[0][0].id, b = sites->block[1][0].id;
    if (logging) {
        ck_assert_uint_ne(a, 0);
        ck_assert_uint_ne(b, 0);
        ck_assert_uint_ne(a, b);
    } else {
        ck_assert_uint_eq(a, 0);
        ck_assert_uint_eq(b, 0);
    }
    for (unsigned i = 0; i < SITE_BLOCKS; i++) {
        ck_assert_msg(sites->block[0][i].id == a, "block a%u: id %lu, a0 has %lu",
                      i, sites->block[0][i].id, a);
        ck_assert_msg(sites->block[1][i].id == b, "block b%u: id %lu, b0 has %lu",
                      i, sites->block[1][i].id, b);
    }
}

/* The blocks came from where the mode sends them. */
static void assert_blocks_placed(const struct sites *sites, enum mode mode)
{
    for (unsigned s = 0; s < 2; s++) {
        const struct site_block *b = sites->block[s];
        switch (mode) {
        case MODE_SCALABLE: /* the tiny class of 32 bytes */
            ck_assert_uint_eq(b[0].size, 32);
            break;
        case MODE_CANARIES: /* the requested size, after a 16-byte canary */
            ck_assert_uint_eq(b[0].size, 24);
            ck_assert_uint_eq(b[0].address % 16, 0);
            break;
        case MODE_GUARD: /* every block ends at its guard page */
            for (unsigned i = 0; i < SITE_BLOCKS; i++)
                ck_assert_msg((b[i].address + b[i].size) % PAGE == 0,
                              "block %c%u %#lx+%lu is not guarded", "ab"[s], i,
                              b[i].address, b[i].size);
            break;
        case MODE_FALLBACK: /* two tiny blocks on one page: unguarded */
            ck_assert_uint_eq(b[0].address / PAGE, b[1].address / PAGE);
            break;
        }
    }
}

static void assert_sites(const struct sites *sites,
                         const struct variant *variant)
{
    assert_blocks_found(sites);
    assert_site_ids(sites, variant->logging);
    assert_blocks_placed(sites, variant->mode);
}

/* ---- local: the probe walks itself ---- */

static const struct variant local_variants[] = {
    {MODE_SCALABLE, true}, {MODE_CANARIES, true}, {MODE_GUARD, true},
    {MODE_SCALABLE, false}, {MODE_CANARIES, false}, {MODE_GUARD, false},
};

/* Every in-use range has exactly one stack-id range at its address and
 * every stack-id range one in-use range: the two lists pair up. */
static void assert_local_totals(const char *out, bool logging)
{
    unsigned long in_use = output_value(out, "in_use");
    ck_assert_uint_eq(output_value(out, "errors"), 0);
    ck_assert_uint_ge(output_value(out, "zones"), 1);
    ck_assert_uint_ge(in_use, 2 * SITE_BLOCKS + MANY);
    ck_assert_uint_eq(output_value(out, "stack_ids"), in_use);
    ck_assert_uint_eq(output_value(out, "paired"), in_use);
    ck_assert_uint_eq(output_value(out, "reverse"), in_use);
    ck_assert_uint_eq(output_value(out, "other"), 0);
    ck_assert_uint_eq(output_value(out, "dropped"), 0);
    if (logging)
        ck_assert_uint_ge(output_value(out, "nonzero"), 2 * SITE_BLOCKS + MANY);
    else
        ck_assert_uint_eq(output_value(out, "nonzero"), 0);
    /* Each of the many blocks once, with its site's id. */
    ck_assert_uint_eq(output_value(out, "many"), MANY);
    ck_assert_uint_eq(output_value(out, "many_matching"), MANY);
}

/* False when the probe could not reach the map budget in reasonable
 * time, and said so. */
static bool run_local(const struct variant *variant, struct probe_run *run)
{
    const char *settings[8];
    const char *const args[] = {"local",
                                variant->mode == MODE_FALLBACK ? "fill" : NULL,
                                NULL};
    make_directory();
    variant_settings(variant, settings);
    probe_with_args(run, PROBE, args, settings, false);
    ck_assert_msg(exited_cleanly(run), "%s%s", run->out, run->err);
    remove_directory();
    if (strstr(run->out, "fill skipped")) {
        fprintf(stderr, "check_enumerate_stack_ids: %s", strstr(run->out, "fill"));
        return false;
    }
    return true;
}

START_TEST(test_local_stack_ids)
{
    const struct variant *variant = &local_variants[_i];
    struct probe_run run;
    struct sites sites;
    run_local(variant, &run);
    assert_local_totals(run.out, variant->logging);
    parse_sites(run.out, &sites);
    assert_sites(&sites, variant);
}
END_TEST

/* Past Guard Malloc's map budget the blocks come from its fallback
 * scalable zone, which the guard zone's enumerator walks too. */
START_TEST(test_local_stack_ids_in_guard_fallback)
{
    static const struct variant variant = {MODE_FALLBACK, true};
    struct probe_run run;
    struct sites sites;
    if (!run_local(&variant, &run))
        return;
    assert_local_totals(run.out, true);
    parse_sites(run.out, &sites);
    assert_sites(&sites, &variant);
}
END_TEST

/* ---- in this process: the bit alone, and without it ---- */

struct two_lists {
    struct range_list in_use, ids;
    unsigned other;
};

static void collect(task_t task, void *context, unsigned type,
                    vm_range_t *ranges, unsigned count)
{
    struct two_lists *lists = context;
    if (type == MALLOC_PTR_IN_USE_RANGE_TYPE)
        range_list_add(&lists->in_use, ranges, count);
    else if (type == MALLOCDEBUG_STACK_ID_RANGE_TYPE)
        range_list_add(&lists->ids, ranges, count);
    else
        lists->other += count;
}

enum { LIST_MAX = 4096 };

static void walk_here(malloc_zone_t *zone, unsigned mask,
                      struct two_lists *lists)
{
    static vm_range_t in_use[LIST_MAX], ids[LIST_MAX];
    *lists = (struct two_lists){{in_use, LIST_MAX, 0, 0}, {ids, LIST_MAX, 0, 0}, 0};
    zone->introspect->force_lock(zone);
    kern_return_t kr = zone->introspect->enumerator(
        mach_task_self(), lists, mask, (vm_address_t)zone, NULL, collect);
    zone->introspect->force_unlock(zone);
    ck_assert_int_eq(kr, KERN_SUCCESS);
    range_list_sort(&lists->in_use);
    range_list_sort(&lists->ids);
}

/* This process logs no stacks: its blocks' ids are 0, reported for the
 * bit alone, and not at all without it. */
START_TEST(test_here_bit_alone_and_without)
{
    static const size_t sizes[] = {1, 24, 1000, 3000, 131072, 200000, 2 * MiB};
    enum { N = sizeof(sizes) / sizeof(sizes[0]), PER = 40 };
    static void *blocks[N * PER];
    malloc_zone_t *zone = malloc_create_zone(0, 0);
    for (unsigned i = 0; i < N * PER; i++)
        blocks[i] = malloc_zone_malloc(zone, sizes[i % N]);
    for (unsigned i = 0; i < N * PER; i += 3)
        malloc_zone_free(zone, blocks[i]);
    struct two_lists lists;
    walk_here(zone, MALLOCDEBUG_STACK_ID_RANGE_TYPE, &lists);
    ck_assert_uint_eq(lists.in_use.count + lists.other, 0);
    ck_assert_uint_eq(lists.ids.count, N * PER - (N * PER + 2) / 3);
    for (unsigned i = 0; i < N * PER; i++) {
        vm_size_t id;
        ck_assert_uint_eq(range_list_at(&lists.ids, (vm_address_t)blocks[i], &id),
                          i % 3 != 0);
        ck_assert_uint_eq(id, 0);
    }
    walk_here(zone, MALLOC_PTR_IN_USE_RANGE_TYPE | MALLOC_PTR_REGION_RANGE_TYPE,
              &lists);
    ck_assert_uint_eq(lists.ids.count, 0);
    ck_assert_uint_eq(lists.in_use.count, N * PER - (N * PER + 2) / 3);
    ck_assert_uint_gt(lists.other, 0);
    for (unsigned i = 0; i < N * PER; i++)
        if (i % 3)
            malloc_zone_free(zone, blocks[i]);
    malloc_destroy_zone(zone);
}
END_TEST

/* Each of the many blocks is in use once, with its site's id. */
static void assert_many_remote(const struct sites *sites,
                               const struct two_lists *lists)
{
    for (unsigned i = 0; i < MANY; i++) {
        vm_size_t size, id;
        vm_address_t address = sites->many[i];
        unsigned s = sites->many_site[i];
        ck_assert_uint_eq(range_list_at(&lists->in_use, address, &size), 1);
        ck_assert_uint_eq(range_list_at(&lists->ids, address, &id), 1);
        ck_assert_msg(id == sites->block[s][0].id,
                      "block %#lx of site %c: id %lu, want %lu",
                      (unsigned long)address, "ab"[s], (unsigned long)id,
                      sites->block[s][0].id);
    }
}

/* ---- remote: this process walks the probe ---- */

static const struct variant remote_variants[] = {
    {MODE_SCALABLE, true}, {MODE_CANARIES, true}, {MODE_GUARD, true},
    {MODE_SCALABLE, false}, {MODE_GUARD, false},
};

typedef kern_return_t enumerator_t(task_t task, void *context,
                                   unsigned type_mask,
                                   vm_address_t zone_address,
                                   memory_reader_t reader,
                                   vm_range_recorder_t recorder);

/* Where this process has the library: the child's enumerators are at
 * the same offsets in it (the same file, mapped elsewhere). */
static uintptr_t library_base(void)
{
    Dl_info info;
    ck_assert(dladdr((void *)(uintptr_t)malloc_default_zone()->introspect->enumerator,
                     &info));
    return (uintptr_t)info.dli_fbase;
}

/* Walks every zone the probe listed ("zone address offset" lines). */
static void walk_remote(pid_t pid, const char *out, struct two_lists *lists)
{
    enum { REMOTE_MAX = 1 << 14 };
    static vm_range_t in_use[REMOTE_MAX], ids[REMOTE_MAX];
    *lists = (struct two_lists){{in_use, REMOTE_MAX, 0, 0},
                                {ids, REMOTE_MAX, 0, 0}, 0};
    uintptr_t base = library_base();
    unsigned zones = 0;
    for (const char *line = strstr(out, "\nzone "); line;
         line = strstr(line + 1, "\nzone ")) {
        unsigned long zone, offset;
        ck_assert_int_eq(sscanf(line, "\nzone %lx %lx", &zone, &offset), 2);
        enumerator_t *enumerator = (enumerator_t *)(base + offset);
        kern_return_t kr = enumerator(pid, lists,
                                      MALLOC_PTR_IN_USE_RANGE_TYPE |
                                          MALLOCDEBUG_STACK_ID_RANGE_TYPE,
                                      zone, remote_reader, collect);
        ck_assert_msg(kr == KERN_SUCCESS, "zone %#lx: error %d", zone, kr);
        zones++;
    }
    remote_copies_release();
    ck_assert_uint_eq(zones, output_value(out, "zones"));
    ck_assert_uint_ge(zones, 1);
    range_list_sort(&lists->in_use);
    range_list_sort(&lists->ids);
}

static void assert_remote_totals(const struct two_lists *lists, bool logging)
{
    unsigned in_use = lists->in_use.count, nonzero = 0;
    ck_assert_uint_eq(lists->in_use.dropped + lists->ids.dropped, 0);
    ck_assert_uint_eq(lists->other, 0);
    ck_assert_uint_ge(in_use, 2 * SITE_BLOCKS + MANY);
    ck_assert_uint_eq(lists->ids.count, in_use);
    ck_assert_uint_eq(range_list_paired(&lists->in_use, &lists->ids), in_use);
    ck_assert_uint_eq(range_list_paired(&lists->ids, &lists->in_use), in_use);
    for (unsigned i = 0; i < lists->ids.count; i++)
        nonzero += lists->ids.ranges[i].size != 0;
    if (logging)
        ck_assert_uint_ge(nonzero, 2 * SITE_BLOCKS + MANY);
    else
        ck_assert_uint_eq(nonzero, 0);
}

START_TEST(test_remote_stack_ids)
{
    const struct variant *variant = &remote_variants[_i];
    const char *settings[8];
    const char *const args[] = {"wait", NULL};
    static struct probe_session session;
    struct probe_run run;
    struct two_lists lists;
    struct sites sites;
    make_directory();
    variant_settings(variant, settings);
    probe_start(&session, PROBE, args, settings, "ready");
    pid_t pid = (pid_t)output_value(session.out, "pid");
    ck_assert_int_eq(pid, session.pid);
    walk_remote(pid, session.out, &lists);
    parse_sites(session.out, &sites);
    probe_finish(&session, &run);
    ck_assert_msg(exited_cleanly(&run), "%s", run.err);
    remove_directory();
    assert_remote_totals(&lists, variant->logging);
    look_up_sites(&sites, &lists.in_use, &lists.ids);
    assert_sites(&sites, variant);
    assert_many_remote(&sites, &lists);
}
END_TEST

#define COUNT(array) (int)(sizeof(array) / sizeof((array)[0]))

static Suite *stack_id_suite(bool remote)
{
    Suite *s = suite_create("enumerate_stack_ids");
    TCase *local = tcase_create("local");
    tcase_set_timeout(local, 120);
    tcase_add_loop_test(local, test_local_stack_ids, 0, COUNT(local_variants));
    tcase_add_test(local, test_local_stack_ids_in_guard_fallback);
    tcase_add_test(local, test_here_bit_alone_and_without);
    suite_add_tcase(s, local);
    if (remote) {
        TCase *tc = tcase_create("remote");
        tcase_set_timeout(tc, 60);
        tcase_add_loop_test(tc, test_remote_stack_ids, 0, COUNT(remote_variants));
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    int error = remote_read_probe();
    bool refused = remote_read_refused(error);
    if (error && !refused) {
        printf("process_vm_readv probe failed: %s\n", strerror(error));
        return EXIT_FAILURE;
    }
    int status = run_suite(stack_id_suite(!refused));
    return status == EXIT_SUCCESS && refused ? 77 : status;
}
