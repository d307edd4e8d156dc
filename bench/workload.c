/*
 * Malloc-heavy workloads for comparing allocators.
 *
 *   workload NAME [SCALE]
 *
 * NAME is one of the workloads listed in `workloads[]` below (run with no
 * argument for the list).  SCALE (default 1.0) multiplies the iteration
 * count, so that slow tools (valgrind, perf with call graphs) can run a
 * reduced version: `workload tiny 0.05`.
 *
 * Every workload is deterministic (fixed seeds, no dependence on the
 * addresses the allocator returns or on thread scheduling) and prints
 * only a checksum of the data it wrote into its blocks, so the output
 * must be identical under any correct allocator.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

static double scale = 1.0;

static uint64_t scaled(uint64_t count)
{
    uint64_t n = (uint64_t)((double)count * scale);
    return n ? n : 1;
}

/* xorshift64*: small, fast, good enough for picking sizes and slots. */
struct rng {
    uint64_t state;
};

static void rng_seed(struct rng *r, uint64_t seed)
{
    /* splitmix64 step so that small seeds give unrelated streams */
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    r->state = (z ^ (z >> 31)) | 1;
}

static inline uint64_t rng_next(struct rng *r)
{
    uint64_t x = r->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* Uniform in [lo, hi]. */
static inline size_t rng_range(struct rng *r, size_t lo, size_t hi)
{
    return lo + (size_t)((rng_next(r) >> 16) % (hi - lo + 1));
}

static inline uint64_t mix(uint64_t sum, uint64_t value)
{
    return (sum ^ value) * 0x100000001b3ULL + 0x9e37;
}

static void *xmalloc(size_t size)
{
    void *p = malloc(size);
    if (!p) {
        fprintf(stderr, "workload: out of memory (%zu bytes)\n", size);
        exit(2);
    }
    return p;
}

static void *xrealloc(void *old, size_t size)
{
    void *p = realloc(old, size);
    if (!p) {
        fprintf(stderr, "workload: realloc failed (%zu bytes)\n", size);
        exit(2);
    }
    return p;
}

/* A block of at least 8 bytes stamped at both ends with a tag, which is
 * read back (and checked) before it is freed. */
struct slot {
    unsigned char *p;
    size_t size;
};

static inline void stamp(unsigned char *p, size_t size, uint64_t tag)
{
    memcpy(p, &tag, sizeof tag);
    p[size - 1] = (unsigned char)tag;
}

static inline uint64_t unstamp(const unsigned char *p, size_t size)
{
    uint64_t tag;
    memcpy(&tag, p, sizeof tag);
    if (p[size - 1] != (unsigned char)tag) {
        fprintf(stderr, "workload: block contents damaged\n");
        abort();
    }
    return tag + size;
}

/* Random replacement in a working set of `live` blocks with sizes in
 * [lo, hi]: the churn at the heart of several workloads. */
static uint64_t churn(uint64_t seed, size_t live, uint64_t ops, size_t lo,
                      size_t hi)
{
    struct rng r;
    rng_seed(&r, seed);
    struct slot *slots = calloc(live, sizeof *slots);
    if (!slots)
        exit(2);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < ops; i++) {
        uint64_t x = rng_next(&r);
        struct slot *s = &slots[(x >> 20) % live];
        if (s->p) {
            sum = mix(sum, unstamp(s->p, s->size));
            free(s->p);
        }
        s->size = lo + (size_t)((x >> 4) % (hi - lo + 1));
        s->p = xmalloc(s->size);
        stamp(s->p, s->size, x);
    }
    for (size_t i = 0; i < live; i++)
        if (slots[i].p) {
            sum = mix(sum, unstamp(slots[i].p, slots[i].size));
            free(slots[i].p);
        }
    free(slots);
    return sum;
}

/* ---- (a) tiny churn ----------------------------------------------------- */

static uint64_t w_tiny(void)
{
    return churn(1, 100000, scaled(20000000), 8, 256);
}

/* ---- (a') the same churn on blocks that stay in the caches --------------- */

/* With 1,000 live blocks (about 130 KiB) the program's own accesses hit
 * the caches, so its time is the allocator's: what the allocator and a
 * malloc logger add per call shows undiluted.  In `tiny` two cache
 * misses a turn dominate instead. */
static uint64_t w_hot(void)
{
    return churn(3, 1000, scaled(20000000), 8, 256);
}

/* ---- (b) small/mid churn, 1-64 KiB -------------------------------------- */

/* Every 4 KiB of a block is written, as a program filling its buffers
 * would, so that peak RSS reflects the memory really in use. */
static uint64_t w_mid(void)
{
    struct rng r;
    rng_seed(&r, 2);
    enum { LIVE = 2000 };
    static struct slot slots[LIVE];
    uint64_t sum = 0, ops = scaled(2000000);
    for (uint64_t i = 0; i < ops; i++) {
        uint64_t x = rng_next(&r);
        struct slot *s = &slots[(x >> 20) % LIVE];
        if (s->p) {
            for (size_t off = 2048; off < s->size; off += 4096)
                sum += s->p[off];
            sum = mix(sum, unstamp(s->p, s->size));
            free(s->p);
        }
        s->size = 1024 + (size_t)((x >> 4) % (63 * 1024 + 1));
        s->p = xmalloc(s->size);
        for (size_t off = 2048; off < s->size; off += 4096)
            s->p[off] = (unsigned char)(x >> 8);
        stamp(s->p, s->size, x);
    }
    for (size_t i = 0; i < LIVE; i++)
        if (slots[i].p) {
            sum = mix(sum, unstamp(slots[i].p, slots[i].size));
            free(slots[i].p);
        }
    return sum;
}

/* ---- (c) large blocks, 128 KiB - 4 MiB, every page touched --------------- */

static uint64_t w_large(void)
{
    struct rng r;
    rng_seed(&r, 3);
    enum { LIVE = 8 };
    struct slot slots[LIVE] = { { 0 } };
    uint64_t sum = 0, ops = scaled(10000);
    for (uint64_t i = 0; i < ops; i++) {
        struct slot *s = &slots[rng_next(&r) % LIVE];
        if (s->p) {
            for (size_t off = 0; off < s->size; off += 4096)
                sum = mix(sum, s->p[off]);
            sum = mix(sum, unstamp(s->p, s->size));
            free(s->p);
        }
        s->size = rng_range(&r, 128 * 1024, 4 * 1024 * 1024);
        s->p = xmalloc(s->size);
        uint64_t tag = rng_next(&r);
        for (size_t off = 0; off < s->size; off += 4096)
            s->p[off] = (unsigned char)(tag + off / 4096);
        stamp(s->p, s->size, tag);
    }
    for (int i = 0; i < LIVE; i++)
        if (slots[i].p) {
            sum = mix(sum, unstamp(slots[i].p, slots[i].size));
            free(slots[i].p);
        }
    return sum;
}

/* ---- (d) realloc growth ------------------------------------------------- */

/* Strings grown by +16 bytes up to a random length, and vectors grown by
 * doubling, many at a time so that neighbours compete for room. */
static uint64_t w_realloc(void)
{
    struct rng r;
    rng_seed(&r, 4);
    enum { STRINGS = 64, VECTORS = 16 };
    uint64_t sum = 0, rounds = scaled(700);
    for (uint64_t round = 0; round < rounds; round++) {
        char *str[STRINGS];
        size_t len[STRINGS], target[STRINGS];
        for (int i = 0; i < STRINGS; i++) {
            str[i] = NULL;
            len[i] = 0;
            target[i] = rng_range(&r, 256, 16384);
        }
        /* Interleaved +16 growth. */
        for (int active = STRINGS; active;) {
            active = 0;
            for (int i = 0; i < STRINGS; i++) {
                if (len[i] >= target[i])
                    continue;
                active++;
                str[i] = xrealloc(str[i], len[i] + 16 + 1);
                memset(str[i] + len[i], 'a' + (int)((len[i] / 16) % 26), 16);
                len[i] += 16;
                str[i][len[i]] = '\0';
            }
        }
        for (int i = 0; i < STRINGS; i++) {
            sum = mix(sum, (uint64_t)(unsigned char)str[i][len[i] - 1] + len[i]);
            free(str[i]);
        }
        /* Doubling vectors of 8-byte elements. */
        uint64_t *vec[VECTORS];
        size_t count[VECTORS], cap[VECTORS], want[VECTORS];
        for (int i = 0; i < VECTORS; i++) {
            vec[i] = NULL;
            count[i] = cap[i] = 0;
            want[i] = rng_range(&r, 16, 8192);
        }
        for (int active = VECTORS; active;) {
            active = 0;
            for (int i = 0; i < VECTORS; i++) {
                for (int k = 0; k < 64 && count[i] < want[i]; k++) {
                    if (count[i] == cap[i]) {
                        cap[i] = cap[i] ? cap[i] * 2 : 4;
                        vec[i] = xrealloc(vec[i], cap[i] * sizeof(uint64_t));
                    }
                    vec[i][count[i]] = count[i] * 7 + (uint64_t)i;
                    count[i]++;
                }
                if (count[i] < want[i])
                    active++;
            }
        }
        for (int i = 0; i < VECTORS; i++) {
            sum = mix(sum, vec[i][count[i] - 1] + vec[i][count[i] / 2]);
            free(vec[i]);
        }
    }
    return sum;
}

/* ---- (e) independent threads doing tiny churn --------------------------- */

struct churn_job {
    uint64_t seed;
    size_t live;
    uint64_t ops;
    uint64_t result;
};

static void *churn_thread(void *arg)
{
    struct churn_job *job = arg;
    job->result = churn(job->seed, job->live, job->ops, 8, 256);
    return NULL;
}

/* `n` threads, each doing 1/`share` of the operations on 1/`share` of
 * the working set: with share == n, the same total work for any thread
 * count. */
static uint64_t threads_churn(int n, int share)
{
    pthread_t tid[16];
    struct churn_job jobs[16];
    for (int i = 0; i < n; i++) {
        jobs[i] = (struct churn_job){ .seed = 100 + (uint64_t)i,
                                      .live = 100000 / (size_t)share,
                                      .ops = scaled(16000000) / (uint64_t)share };
        if (pthread_create(&tid[i], NULL, churn_thread, &jobs[i]) != 0)
            exit(2);
    }
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(tid[i], NULL);
        sum = mix(sum, jobs[i].result);
    }
    return sum;
}

/* One thread doing what each of threads2's does: against it, a cost
 * that grows with threads is told apart from the smaller working set
 * each thread of threads2 has (half of tiny's, so misses fewer). */
static uint64_t w_threads1(void) { return threads_churn(1, 2); }
static uint64_t w_threads2(void) { return threads_churn(2, 2); }
static uint64_t w_threads4(void) { return threads_churn(4, 4); }

/* ---- (f) producer/consumer: every free is a cross-thread free ----------- */

#define QUEUE_SIZE 4096 /* power of two */

struct queue {
    _Alignas(64) atomic_size_t head; /* next slot the consumer reads */
    _Alignas(64) atomic_size_t tail; /* next slot the producer writes */
    _Alignas(64) struct slot items[QUEUE_SIZE];
};

static struct queue queue;
static uint64_t produced_count;

static void *producer(void *arg)
{
    (void)arg;
    struct rng r;
    rng_seed(&r, 6);
    size_t tail = 0;
    for (uint64_t i = 0; i < produced_count; i++) {
        size_t size = rng_range(&r, 16, 512);
        unsigned char *p = xmalloc(size);
        stamp(p, size, i * 31 + size);
        while (tail - atomic_load_explicit(&queue.head, memory_order_acquire) >=
               QUEUE_SIZE)
            sched_yield();
        queue.items[tail % QUEUE_SIZE] = (struct slot){ p, size };
        atomic_store_explicit(&queue.tail, ++tail, memory_order_release);
    }
    return NULL;
}

static uint64_t w_prodcons(void)
{
    produced_count = scaled(5000000);
    pthread_t tid;
    if (pthread_create(&tid, NULL, producer, NULL) != 0)
        exit(2);
    uint64_t sum = 0;
    size_t head = 0;
    for (uint64_t i = 0; i < produced_count; i++) {
        while (atomic_load_explicit(&queue.tail, memory_order_acquire) == head)
            sched_yield();
        struct slot s = queue.items[head % QUEUE_SIZE];
        atomic_store_explicit(&queue.head, ++head, memory_order_release);
        sum = mix(sum, unstamp(s.p, s.size));
        free(s.p);
    }
    pthread_join(tid, NULL);
    return sum;
}

/* ---- (g) binary trees: build 1M nodes, walk, destroy, repeat ------------ */

struct node {
    struct node *left, *right;
    uint64_t value;
};

static struct node *tree_build(struct rng *r, int depth)
{
    struct node *n = xmalloc(sizeof *n);
    n->value = rng_next(r) & 0xffff;
    if (depth > 0) {
        n->left = tree_build(r, depth - 1);
        n->right = tree_build(r, depth - 1);
    } else {
        n->left = n->right = NULL;
    }
    return n;
}

static uint64_t tree_destroy(struct node *n)
{
    if (!n)
        return 0;
    uint64_t sum = n->value + 3 * tree_destroy(n->left) + tree_destroy(n->right);
    free(n);
    return sum;
}

static uint64_t w_tree(void)
{
    struct rng r;
    rng_seed(&r, 7);
    uint64_t sum = 0, rounds = scaled(16);
    for (uint64_t i = 0; i < rounds; i++) {
        /* depth 19: 2^20 - 1 nodes; plus many short-lived small trees, as
         * in the binary-trees benchmark. */
        struct node *big = tree_build(&r, 19);
        for (int k = 0; k < 2000; k++)
            sum = mix(sum, tree_destroy(tree_build(&r, 6)));
        sum = mix(sum, tree_destroy(big));
    }
    return sum;
}

/* ---- (h) larson-like: threads churn arrays that then change hands ------- */

#define LARSON_THREADS 4
#define LARSON_SLOTS 10000

struct larson_array {
    struct rng rng; /* per array, so the data do not depend on scheduling */
    uint64_t sum;
    struct slot slots[LARSON_SLOTS];
};

static struct larson_array larson_arrays[LARSON_THREADS];
static pthread_barrier_t larson_barrier;
static uint64_t larson_rounds, larson_ops;

static void *larson_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (uint64_t round = 0; round < larson_rounds; round++) {
        /* Each round a thread works on another thread's array, so most
         * of its frees are of blocks another thread allocated. */
        struct larson_array *a =
            &larson_arrays[(t + round) % LARSON_THREADS];
        for (uint64_t i = 0; i < larson_ops; i++) {
            uint64_t x = rng_next(&a->rng);
            struct slot *s = &a->slots[(x >> 20) % LARSON_SLOTS];
            if (s->p) {
                a->sum = mix(a->sum, unstamp(s->p, s->size));
                free(s->p);
            }
            s->size = 8 + (size_t)((x >> 4) % 500);
            s->p = xmalloc(s->size);
            stamp(s->p, s->size, x);
        }
        pthread_barrier_wait(&larson_barrier);
    }
    return NULL;
}

static uint64_t w_larson(void)
{
    larson_rounds = 40;
    larson_ops = scaled(12000000) / (larson_rounds * LARSON_THREADS);
    for (int i = 0; i < LARSON_THREADS; i++)
        rng_seed(&larson_arrays[i].rng, 80 + (uint64_t)i);
    pthread_barrier_init(&larson_barrier, NULL, LARSON_THREADS);
    pthread_t tid[LARSON_THREADS];
    for (int i = 0; i < LARSON_THREADS; i++)
        if (pthread_create(&tid[i], NULL, larson_thread, (void *)(intptr_t)i))
            exit(2);
    for (int i = 0; i < LARSON_THREADS; i++)
        pthread_join(tid[i], NULL);
    pthread_barrier_destroy(&larson_barrier);
    uint64_t sum = 0;
    for (int i = 0; i < LARSON_THREADS; i++) {
        struct larson_array *a = &larson_arrays[i];
        for (int k = 0; k < LARSON_SLOTS; k++)
            if (a->slots[k].p) {
                a->sum = mix(a->sum, unstamp(a->slots[k].p, a->slots[k].size));
                free(a->slots[k].p);
            }
        sum = mix(sum, a->sum);
    }
    return sum;
}

/* ---- driver ------------------------------------------------------------- */

static const struct {
    const char *name;
    uint64_t (*run)(void);
    const char *what;
} workloads[] = {
    { "tiny", w_tiny, "8-256 B random churn, 100k live blocks, 20M ops" },
    { "hot", w_hot, "8-256 B random churn, 1k live blocks (cached), 20M ops" },
    { "mid", w_mid, "1-64 KiB random churn, 2000 live blocks, pages touched, 2M ops" },
    { "large", w_large, "128 KiB-4 MiB blocks, every page touched, 10k ops" },
    { "realloc", w_realloc, "strings grown by +16 B, vectors by doubling" },
    { "threads1", w_threads1, "1 thread doing one of threads2's jobs (50k live, 8M ops)" },
    { "threads2", w_threads2, "2 threads, independent tiny churn, 16M ops total" },
    { "threads4", w_threads4, "4 threads, independent tiny churn, 16M ops total" },
    { "prodcons", w_prodcons, "one thread allocates, another frees, 5M blocks" },
    { "tree", w_tree, "binary trees of 1M nodes built and destroyed" },
    { "larson", w_larson, "4 threads churn arrays that change hands each round" },
};

#define WORKLOAD_COUNT (sizeof workloads / sizeof workloads[0])

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s WORKLOAD [SCALE] | --list | startup\n"
                        "workloads:\n", argv[0]);
        for (size_t i = 0; i < WORKLOAD_COUNT; i++)
            fprintf(stderr, "  %-10s %s\n", workloads[i].name, workloads[i].what);
        return 2;
    }
    if (argc == 3) {
        scale = strtod(argv[2], NULL);
        if (!(scale > 0)) {
            fprintf(stderr, "workload: bad scale '%s'\n", argv[2]);
            return 2;
        }
    }
    if (strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < WORKLOAD_COUNT; i++)
            printf("%s\n", workloads[i].name);
        return 0;
    }
    if (strcmp(argv[1], "startup") == 0) {
        /* Not a benchmark: the fixed cost of a process that allocates. */
        void *volatile p = xmalloc(16);
        free(p);
        printf("%016llx\n", 0ULL);
        return 0;
    }
    for (size_t i = 0; i < WORKLOAD_COUNT; i++)
        if (strcmp(argv[1], workloads[i].name) == 0) {
            printf("%016llx\n", (unsigned long long)workloads[i].run());
            return 0;
        }
    fprintf(stderr, "workload: unknown workload '%s'\n", argv[1]);
    return 2;
}
