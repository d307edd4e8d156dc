/*
 * Threads and fork.  A stress test where four threads allocate blocks of
 * every class and hand them to each other through a shared array (most
 * frees are cross-thread), ending with a sound heap and the default
 * zone's statistics back at their baseline; fork() while other threads
 * allocate, with a child that must be able to use the heap fully.
 */
#include "config.h"
#include "test_util.h"

#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { THREADS = 4, SLOTS = 4096, OPS_PER_THREAD = 250000 };

/* A block carries its size and a tag in its first 16 bytes, and the tag
 * in its last byte and every 4 KiB, so that overlapping blocks or a
 * block handed out twice are noticed when it is freed. */
struct header {
    size_t size;
    uint64_t tag;
};

static size_t random_size(uint64_t *seed)
{
    uint64_t r = test_random(seed);
    unsigned pick = (unsigned)(r % 1000);
    r >>= 10;
    if (pick < 800)
        return sizeof(struct header) + r % (1024 - sizeof(struct header) + 1);
    if (pick < 990)
        return 1025 + r % (128 * 1024 - 1024);
    return 128 * 1024 + 1 + r % (1 * MiB);
}

static void stamp(unsigned char *block, size_t size, uint64_t tag)
{
    struct header h = {size, tag};
    memcpy(block, &h, sizeof(h));
    for (size_t off = 4096; off < size; off += 4096)
        block[off] = (unsigned char)tag;
    block[size - 1] = (unsigned char)tag;
}

static bool verify(const unsigned char *block)
{
    struct header h;
    memcpy(&h, block, sizeof(h));
    if (h.size < sizeof(h) || h.size > 2 * MiB)
        return false;
    for (size_t off = 4096; off < h.size; off += 4096)
        if (block[off] != (unsigned char)h.tag)
            return false;
    return block[h.size - 1] == (unsigned char)h.tag;
}

static _Atomic(unsigned char *) slots[SLOTS];
static atomic_uint corruptions, failures, cross_frees;
/* The first allocation failure: what was asked and errno. */
static struct {
    atomic_flag taken;
    const char *what;
    size_t size;
    int error;
} first_failure;

static void note_failure(const char *what, size_t size)
{
    int error = errno;
    atomic_fetch_add(&failures, 1);
    if (!atomic_flag_test_and_set(&first_failure.taken)) {
        first_failure.what = what;
        first_failure.size = size;
        first_failure.error = error;
    }
}
static pthread_barrier_t barrier;

struct worker {
    unsigned index;
    unsigned ops;
};

static void take_and_free(unsigned char *old, unsigned self)
{
    if (!old)
        return;
    if (!verify(old))
        atomic_fetch_add(&corruptions, 1);
    uint64_t tag;
    memcpy(&tag, old + sizeof(size_t), sizeof(tag));
    if ((tag >> 56) != self)
        atomic_fetch_add_explicit(&cross_frees, 1, memory_order_relaxed);
    free(old);
}

static void *stress_thread(void *opaque)
{
    struct worker *w = opaque;
    uint64_t seed = 0x9e3779b97f4a7c15ULL * (w->index + 1);
    /* Warm up (the thread cache and anything libc keeps per thread) before
     * the baseline is taken. */
    free(malloc(16));
    pthread_barrier_wait(&barrier); /* 1: baseline taken after this */
    pthread_barrier_wait(&barrier); /* 2: go */
    for (unsigned op = 0; op < w->ops; op++) {
        uint64_t r = test_random(&seed);
        unsigned slot = (unsigned)(r % SLOTS);
        unsigned kind = (unsigned)((r >> 20) % 16);
        if (kind == 0) {
            /* realloc a block taken out of the array, then put it back */
            unsigned char *old = atomic_exchange(&slots[slot], NULL);
            if (!old)
                continue;
            if (!verify(old))
                atomic_fetch_add(&corruptions, 1);
            size_t size = random_size(&seed);
            struct header h;
            memcpy(&h, old, sizeof(h));
            unsigned char *moved = realloc(old, size);
            if (!moved) {
                note_failure("realloc", size);
                free(old);
                continue;
            }
            struct header after;
            memcpy(&after, moved, sizeof(after));
            if (after.size != h.size || after.tag != h.tag)
                atomic_fetch_add(&corruptions, 1);
            stamp(moved, size, ((uint64_t)w->index << 56) | op);
            take_and_free(atomic_exchange(&slots[slot], moved), w->index);
        } else if (kind <= 9) {
            size_t size = random_size(&seed);
            unsigned char *block = kind == 1 ? calloc(1, size) : malloc(size);
            if (!block) {
                note_failure(kind == 1 ? "calloc" : "malloc", size);
                continue;
            }
            if (kind == 1 && (block[0] || block[size - 1] || block[size / 2]))
                atomic_fetch_add(&corruptions, 1);
            stamp(block, size, ((uint64_t)w->index << 56) | op);
            take_and_free(atomic_exchange(&slots[slot], block), w->index);
        } else {
            take_and_free(atomic_exchange(&slots[slot], NULL), w->index);
        }
    }
    pthread_barrier_wait(&barrier); /* 3: everyone done with the ops */
    pthread_barrier_wait(&barrier); /* 3b: main measured the busy heap */
    for (unsigned i = w->index; i < SLOTS; i += THREADS)
        take_and_free(atomic_exchange(&slots[i], NULL), w->index);
    pthread_barrier_wait(&barrier); /* 4: all freed; main measures */
    pthread_barrier_wait(&barrier); /* 5: exit */
    return NULL;
}

START_TEST(test_cross_thread_stress)
{
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    ck_assert_int_eq(pthread_barrier_init(&barrier, NULL, THREADS + 1), 0);
    for (unsigned i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){i, OPS_PER_THREAD};
        ck_assert_int_eq(pthread_create(&threads[i], NULL, stress_thread, &workers[i]), 0);
    }
    malloc_zone_t *def = malloc_default_zone();
    malloc_statistics_t baseline, end;
    pthread_barrier_wait(&barrier); /* 1 */
    malloc_zone_statistics(def, &baseline);
    pthread_barrier_wait(&barrier); /* 2 */
    pthread_barrier_wait(&barrier); /* 3 */
    malloc_statistics_t busy;
    malloc_zone_statistics(def, &busy);
    pthread_barrier_wait(&barrier); /* 3b */
    pthread_barrier_wait(&barrier); /* 4 */
    malloc_zone_statistics(def, &end);
    boolean_t heap_ok = malloc_zone_check(NULL);
    pthread_barrier_wait(&barrier); /* 5 */
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&barrier);

    unsigned n_corruptions = atomic_load(&corruptions);
    unsigned n_failures = atomic_load(&failures);
    unsigned n_cross = atomic_load(&cross_frees);
    ck_assert_msg(n_corruptions == 0, "%u blocks were damaged or handed out twice",
                  n_corruptions);
    ck_assert_msg(n_failures == 0,
                  "%u allocations failed; the first: %s(%zu), errno %d (%s)",
                  n_failures, first_failure.what, first_failure.size,
                  first_failure.error, strerror(first_failure.error));
    ck_assert_msg(n_cross > 10000, "only %u cross-thread frees", n_cross);
    ck_assert_uint_gt(busy.blocks_in_use, baseline.blocks_in_use);
    ck_assert_int_eq(heap_ok, 1);
    ck_assert_msg(end.blocks_in_use == baseline.blocks_in_use,
                  "blocks in use: %u at start, %u after everything was freed",
                  baseline.blocks_in_use, end.blocks_in_use);
    ck_assert_msg(end.size_in_use == baseline.size_in_use,
                  "bytes in use: %zu at start, %zu after everything was freed",
                  baseline.size_in_use, end.size_in_use);
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
}
END_TEST

/* Short-lived threads: their caches go back when they exit, and blocks
 * they leave behind are freed by others. */
static void *short_thread(void *opaque)
{
    void **keep = opaque;
    void *local[64];
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 64; i++)
            local[i] = malloc((size_t)(16 + i * 37 + round));
        for (int i = 0; i < 64; i++)
            free(local[i]);
    }
    for (int i = 0; i < 16; i++)
        keep[i] = malloc((size_t)(24 + i * 300));
    return NULL;
}

START_TEST(test_short_lived_threads)
{
    enum { ROUNDS = 25, PER_ROUND = 8 };
    static void *kept[PER_ROUND][16];
    malloc_statistics_t baseline, end;
    /* Small stacks, so that glibc's stack cache (40 MiB) keeps them all
     * with their TLS blocks: thread creation then allocates nothing new
     * after the first round, which runs before the baseline. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * KiB);
    for (int round = 0; round <= ROUNDS; round++) {
        if (round == 1)
            malloc_zone_statistics(malloc_default_zone(), &baseline);
        pthread_t t[PER_ROUND];
        for (int i = 0; i < PER_ROUND; i++)
            ck_assert_int_eq(pthread_create(&t[i], &attr, short_thread, kept[i]), 0);
        for (int i = 0; i < PER_ROUND; i++)
            pthread_join(t[i], NULL);
        for (int i = 0; i < PER_ROUND; i++)
            for (int k = 0; k < 16; k++) {
                ck_assert_ptr_nonnull(kept[i][k]);
                free(kept[i][k]);
            }
    }
    pthread_attr_destroy(&attr);
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
    malloc_zone_statistics(malloc_default_zone(), &end);
    ck_assert_uint_eq(end.blocks_in_use, baseline.blocks_in_use);
    ck_assert_uint_eq(end.size_in_use, baseline.size_in_use);
}
END_TEST

/* A thread-specific destructor that runs after the library's own (its
 * key is created later) still allocates and frees normally, and what it
 * keeps can be freed by another thread. */
static pthread_key_t late_key;
static void *late_kept[64];
static atomic_uint late_ok;

static void late_destructor(void *value)
{
    unsigned slot = (unsigned)(uintptr_t)value - 1;
    for (int i = 0; i < 200; i++) {
        char *p = malloc((size_t)(8 + i * 13));
        if (!p)
            return;
        memset(p, i, (size_t)(8 + i * 13));
        free(p);
    }
    late_kept[slot] = malloc(100);
    if (late_kept[slot])
        atomic_fetch_add(&late_ok, 1);
}

static void *late_thread(void *opaque)
{
    free(malloc(40)); /* the thread has a cache */
    void *held = malloc(5000);
    pthread_setspecific(late_key, opaque);
    free(held);
    return NULL;
}

START_TEST(test_allocation_in_late_thread_destructors)
{
    free(malloc(1)); /* the library is set up: its key comes first */
    ck_assert_int_eq(pthread_key_create(&late_key, late_destructor), 0);
    for (uintptr_t i = 0; i < 64; i++) {
        pthread_t t;
        ck_assert_int_eq(pthread_create(&t, NULL, late_thread, (void *)(i + 1)), 0);
        pthread_join(t, NULL);
    }
    ck_assert_uint_eq(atomic_load(&late_ok), 64);
    for (int i = 0; i < 64; i++) {
        ck_assert_uint_eq(malloc_size(late_kept[i]), 112);
        free(late_kept[i]);
    }
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
}
END_TEST

/* ---- fork while other threads allocate ---- */

static atomic_int stop_allocating;

static void *busy_thread(void *opaque)
{
    uint64_t seed = (uintptr_t)opaque * 7919 + 1;
    void *held[64] = {0};
    while (!atomic_load_explicit(&stop_allocating, memory_order_relaxed)) {
        unsigned i = (unsigned)(test_random(&seed) % 64);
        free(held[i]);
        held[i] = malloc(random_size(&seed));
        if (held[i])
            memset(held[i], 0x5c, 16);
    }
    for (int i = 0; i < 64; i++)
        free(held[i]);
    return NULL;
}

static void *child_thread(void *opaque)
{
    uint64_t seed = (uintptr_t)opaque + 99;
    void *held[128] = {0};
    for (int op = 0; op < 40000; op++) {
        unsigned i = (unsigned)(test_random(&seed) % 128);
        free(held[i]);
        held[i] = malloc(random_size(&seed));
        if (!held[i])
            return (void *)1;
        stamp(held[i], malloc_usable_size(held[i]), (uint64_t)op);
    }
    for (int i = 0; i < 128; i++) {
        if (!verify(held[i]))
            return (void *)2;
        free(held[i]);
    }
    return NULL;
}

/* Exit codes: 0 ok, others say what failed. */
static int fork_child_body(void)
{
    alarm(60); /* a deadlock kills the child, and the parent notices */
    if (malloc_zone_check(NULL) != 1)
        return 10;
    uint64_t seed = 4242;
    static void *held[1024];
    for (int op = 0; op < 100000; op++) {
        unsigned i = (unsigned)(test_random(&seed) % 1024);
        free(held[i]);
        size_t size = random_size(&seed);
        held[i] = op % 3 ? malloc(size) : calloc(1, size);
        if (!held[i])
            return 11;
        stamp(held[i], size, (uint64_t)op);
    }
    malloc_zone_t *z = malloc_create_zone(0, 0);
    for (int i = 0; i < 1000; i++)
        if (!malloc_zone_malloc(z, (size_t)(i * 131 % 200000 + 1)))
            return 12;
    pthread_t threads[3];
    for (uintptr_t i = 0; i < 3; i++)
        if (pthread_create(&threads[i], NULL, child_thread, (void *)i) != 0)
            return 13;
    for (int i = 0; i < 3; i++) {
        void *result;
        pthread_join(threads[i], &result);
        if (result)
            return 14;
    }
    for (int i = 0; i < 1024; i++) {
        if (!verify(held[i]))
            return 15;
        free(held[i]);
    }
    if (malloc_zone_check(NULL) != 1)
        return 16;
    malloc_destroy_zone(z);
    if (malloc_zone_check(NULL) != 1)
        return 17;
    return 0;
}

START_TEST(test_fork_while_threads_allocate)
{
    enum { BUSY = 3, FORKS = 12 };
    pthread_t threads[BUSY];
    atomic_store(&stop_allocating, 0);
    for (uintptr_t i = 0; i < BUSY; i++)
        ck_assert_int_eq(pthread_create(&threads[i], NULL, busy_thread, (void *)i), 0);
    int statuses[FORKS];
    for (int k = 0; k < FORKS; k++) {
        usleep(10000); /* let the threads get going; not a timing assertion */
        pid_t pid = fork();
        if (pid == 0)
            _exit(fork_child_body());
        ck_assert_int_gt(pid, 0);
        ck_assert_int_eq(waitpid(pid, &statuses[k], 0), pid);
    }
    atomic_store(&stop_allocating, 1);
    for (int i = 0; i < BUSY; i++)
        pthread_join(threads[i], NULL);
    for (int k = 0; k < FORKS; k++) {
        ck_assert_msg(WIFEXITED(statuses[k]),
                      "fork %d: child killed by signal %d%s", k,
                      WTERMSIG(statuses[k]),
                      WTERMSIG(statuses[k]) == SIGALRM ? " (deadlock?)" : "");
        ck_assert_msg(WEXITSTATUS(statuses[k]) == 0, "fork %d: child exit %d", k,
                      WEXITSTATUS(statuses[k]));
    }
    ck_assert_int_eq(malloc_zone_check(NULL), 1);
}
END_TEST

/* A child of a child: fork handlers leave the heap usable across
 * generations. */
START_TEST(test_nested_fork)
{
    void *before = malloc(1000);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(30);
        free(before);
        pid_t grandchild = fork();
        if (grandchild == 0)
            _exit(fork_child_body());
        int status;
        if (waitpid(grandchild, &status, 0) != grandchild || !WIFEXITED(status))
            _exit(90);
        if (WEXITSTATUS(status))
            _exit(WEXITSTATUS(status));
        _exit(fork_child_body());
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    ck_assert_uint_eq(malloc_size(before), malloc_good_size(1000));
    free(before);
}
END_TEST

static Suite *threads_suite(void)
{
    Suite *s = suite_create("threads_fork");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, test_cross_thread_stress);
    tcase_add_test(tc, test_short_lived_threads);
    tcase_add_test(tc, test_allocation_in_late_thread_destructors);
    tcase_add_test(tc, test_fork_while_threads_allocate);
    tcase_add_test(tc, test_nested_fork);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(threads_suite());
}
