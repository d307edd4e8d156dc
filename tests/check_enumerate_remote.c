/*
 * Enumerating another process: a fork child allocates a known set of
 * blocks (in a zone of its own and in the default zone), reports their
 * addresses through a pipe and waits; the parent finds the child's zones
 * with malloc_get_all_zones() and walks them with the zones' enumerator
 * through a memory_reader_t built on process_vm_readv.
 *
 * process_vm_readv needs ptrace permission over the child.  When the
 * kernel refuses it (Yama, seccomp, a container), the program says why
 * and exits 77, which automake reports as SKIP.
 */
#include "config.h"
#include "remote_reader.h"
#include "test_util.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the child ---- */

enum { ZONE_BLOCKS = 700, DEFAULT_BLOCKS = 300 };

struct child_report {
    vm_address_t zone;
    vm_address_t default_zone;
    unsigned zone_count, default_count, freed_count;
    vm_range_t zone_blocks[ZONE_BLOCKS];
    vm_range_t default_blocks[DEFAULT_BLOCKS];
    vm_address_t freed[ZONE_BLOCKS + DEFAULT_BLOCKS];
};

static struct child_report report;

static bool write_all(int fd, const void *data, size_t size)
{
    const char *p = data;
    while (size) {
        ssize_t n = write(fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        size -= (size_t)n;
    }
    return true;
}

static bool read_all(int fd, void *data, size_t size)
{
    char *p = data;
    while (size) {
        ssize_t n = read(fd, p, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        size -= (size_t)n;
    }
    return true;
}

static size_t child_size(unsigned i)
{
    static const size_t sizes[] = {1, 16, 40, 100, 777, 1024, 1025, 3000,
                                   50000, 131072, 131073, 400000, 3 * MiB};
    size_t base = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
    /* Large blocks are rarer. */
    if (base > 128 * KiB && i % 5)
        base = 200 + i;
    return base;
}

/* Allocates, frees some, reports, then waits until the parent is done. */
static void child_main(int to_parent, int from_parent)
{
    static void *zone_blocks[ZONE_BLOCKS], *default_blocks[DEFAULT_BLOCKS];
    malloc_zone_t *z = malloc_create_zone(0, 0);
    malloc_set_zone_name(z, "RemoteZone");
    for (unsigned i = 0; i < ZONE_BLOCKS; i++)
        zone_blocks[i] = malloc_zone_malloc(z, child_size(i));
    for (unsigned i = 0; i < DEFAULT_BLOCKS; i++)
        default_blocks[i] = malloc(child_size(i * 7 + 3));
    report.zone = (vm_address_t)z;
    report.default_zone = (vm_address_t)malloc_default_zone();
    for (unsigned i = 0; i < ZONE_BLOCKS; i++) {
        if (i % 4 == 1) {
            report.freed[report.freed_count++] = (vm_address_t)zone_blocks[i];
            malloc_zone_free(z, zone_blocks[i]);
        }
    }
    for (unsigned i = 0; i < DEFAULT_BLOCKS; i++) {
        if (i % 3 == 2) {
            report.freed[report.freed_count++] = (vm_address_t)default_blocks[i];
            free(default_blocks[i]);
        }
    }
    for (unsigned i = 0; i < ZONE_BLOCKS; i++)
        if (i % 4 != 1)
            report.zone_blocks[report.zone_count++] =
                (vm_range_t){(vm_address_t)zone_blocks[i], malloc_size(zone_blocks[i])};
    for (unsigned i = 0; i < DEFAULT_BLOCKS; i++)
        if (i % 3 != 2)
            report.default_blocks[report.default_count++] = (vm_range_t){
                (vm_address_t)default_blocks[i], malloc_size(default_blocks[i])};
    if (!write_all(to_parent, &report, sizeof(report)))
        _exit(2);
    char byte;
    (void)!read(from_parent, &byte, 1);
    _exit(0);
}

struct child {
    pid_t pid;
    int to_child;
};

static struct child start_child(void)
{
    int up[2], down[2];
    ck_assert_int_eq(pipe(up), 0);
    ck_assert_int_eq(pipe(down), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        alarm(60);
        child_main(up[1], down[0]);
    }
    close(up[1]);
    close(down[0]);
    ck_assert_msg(read_all(up[0], &report, sizeof(report)),
                  "the child did not report its blocks");
    close(up[0]);
    return (struct child){pid, down[1]};
}

static void stop_child(struct child *child)
{
    close(child->to_child);
    int status;
    ck_assert_int_eq(waitpid(child->pid, &status, 0), child->pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- the recorder ---- */

enum { MAX_FOUND = 1 << 16 };
static vm_range_t found[MAX_FOUND];
static unsigned n_found, n_other_types;
static task_t recorded_task;

static void recorder(task_t task, void *context, unsigned type,
                     vm_range_t *ranges, unsigned count)
{
    recorded_task = task;
    if (type != MALLOC_PTR_IN_USE_RANGE_TYPE) {
        n_other_types++;
        return;
    }
    for (unsigned i = 0; i < count && n_found < MAX_FOUND; i++)
        found[n_found++] = ranges[i];
}

static int compare_range(const void *a, const void *b)
{
    const vm_range_t *x = a, *y = b;
    return x->address < y->address ? -1 : x->address > y->address;
}

/* The zone's function table and enumerator are at the same addresses in
 * the child, which is a fork of this process. */
static kern_return_t enumerate_remote(pid_t pid, vm_address_t zone, unsigned mask)
{
    n_found = n_other_types = 0;
    malloc_zone_t *local = malloc_default_zone();
    kern_return_t kr = local->introspect->enumerator(pid, NULL, mask, zone,
                                                     remote_reader, recorder);
    qsort(found, n_found, sizeof(found[0]), compare_range);
    return kr;
}

static const vm_range_t *lookup(vm_address_t address)
{
    vm_range_t key = {address, 0};
    return bsearch(&key, found, n_found, sizeof(found[0]), compare_range);
}

START_TEST(test_remote_get_all_zones)
{
    struct child child = start_child();
    vm_address_t *zones = NULL;
    unsigned count = 0;
    kern_return_t kr = malloc_get_all_zones(child.pid, remote_reader, &zones, &count);
    ck_assert_int_eq(kr, KERN_SUCCESS);
    ck_assert_uint_eq(count, 2);
    unsigned seen_zone = 0, seen_default = 0;
    for (unsigned i = 0; i < count; i++) {
        seen_zone += zones[i] == report.zone;
        seen_default += zones[i] == report.default_zone;
    }
    ck_assert_uint_eq(seen_zone, 1);
    ck_assert_uint_eq(seen_default, 1);
    /* The child's zone is not one of ours. */
    ck_assert(!zone_is_registered((malloc_zone_t *)report.zone));
    /* Its name, read through the reader. */
    void *local;
    ck_assert_int_eq(remote_reader(child.pid, report.zone, sizeof(malloc_zone_t), &local),
                     KERN_SUCCESS);
    vm_address_t name_address = (vm_address_t)((malloc_zone_t *)local)->zone_name;
    ck_assert_int_eq(remote_reader(child.pid, name_address, 11, &local), KERN_SUCCESS);
    ck_assert_int_eq(memcmp(local, "RemoteZone", 11), 0);
    remote_copies_release();
    stop_child(&child);
}
END_TEST

START_TEST(test_remote_enumerate_created_zone)
{
    struct child child = start_child();
    ck_assert_int_eq(enumerate_remote(child.pid, report.zone,
                                      MALLOC_PTR_IN_USE_RANGE_TYPE |
                                          MALLOC_PTR_REGION_RANGE_TYPE |
                                          MALLOC_ADMIN_REGION_RANGE_TYPE),
                     KERN_SUCCESS);
    ck_assert_uint_eq(remote_reader_failures(), 0);
    ck_assert_int_eq(recorded_task, child.pid);
    ck_assert_uint_gt(n_other_types, 0);
    /* Exactly the child's blocks. */
    qsort(report.zone_blocks, report.zone_count, sizeof(vm_range_t), compare_range);
    ck_assert_msg(n_found == report.zone_count, "found %u blocks, the child has %u",
                  n_found, report.zone_count);
    for (unsigned i = 0; i < n_found; i++) {
        ck_assert_uint_eq(found[i].address, report.zone_blocks[i].address);
        ck_assert_uint_eq(found[i].size, report.zone_blocks[i].size);
    }
    remote_copies_release();
    stop_child(&child);
}
END_TEST

START_TEST(test_remote_enumerate_default_zone)
{
    struct child child = start_child();
    ck_assert_int_eq(enumerate_remote(child.pid, report.default_zone,
                                      MALLOC_PTR_IN_USE_RANGE_TYPE),
                     KERN_SUCCESS);
    ck_assert_uint_eq(n_other_types, 0);
    for (unsigned i = 0; i < report.default_count; i++) {
        const vm_range_t *hit = lookup(report.default_blocks[i].address);
        ck_assert_msg(hit != NULL, "child block %#lx not found",
                      (unsigned long)report.default_blocks[i].address);
        ck_assert_uint_eq(hit->size, report.default_blocks[i].size);
    }
    /* Blocks the child freed are not in use, in either zone. */
    for (unsigned i = 0; i < report.freed_count; i++)
        ck_assert_msg(lookup(report.freed[i]) == NULL, "freed block %#lx found",
                      (unsigned long)report.freed[i]);
    /* None of the created zone's blocks belongs to the default zone. */
    for (unsigned i = 0; i < report.zone_count; i++)
        ck_assert(lookup(report.zone_blocks[i].address) == NULL);
    remote_copies_release();
    stop_child(&child);
}
END_TEST

START_TEST(test_remote_enumerate_after_child_exit)
{
    struct child child = start_child();
    vm_address_t zone = report.zone;
    pid_t pid = child.pid;
    stop_child(&child);
    /* The process is gone: the reader fails and so does the walk. */
    ck_assert_int_ne(enumerate_remote(pid, zone, MALLOC_PTR_IN_USE_RANGE_TYPE),
                     KERN_SUCCESS);
    ck_assert_uint_eq(n_found, 0);
    remote_copies_release();
}
END_TEST

static Suite *remote_suite(void)
{
    Suite *s = suite_create("enumerate_remote");
    TCase *tc = tcase_create("remote");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_remote_get_all_zones);
    tcase_add_test(tc, test_remote_enumerate_created_zone);
    tcase_add_test(tc, test_remote_enumerate_default_zone);
    tcase_add_test(tc, test_remote_enumerate_after_child_exit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int error = remote_read_probe();
    if (remote_read_refused(error))
        return 77;
    if (error) {
        printf("process_vm_readv probe failed: %s\n", strerror(error));
        return EXIT_FAILURE;
    }
    return run_suite(remote_suite());
}
