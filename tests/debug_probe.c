/*
 * A program for check_debug_zone: started with debugging variables set,
 * it does one thing named by its argument ("name" or "name:n:m") and
 * prints what it saw; the test compares that, the reports and how the
 * program ended with what the options promise.  Some actions damage the
 * heap on purpose.
 */
#include <malloc/malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REGION_SIZE (4UL << 20)

/* Keeps the compiler from reasoning about stores out of bounds. */
static char *hide(void *p)
{
    __asm__ volatile("" : "+r"(p));
    return p;
}

static void show_block(const void *block)
{
    printf("block %p\n", block);
    fflush(stdout);
}

/* malloc_size is the requested size, every byte can be written, blocks
 * stay aligned, and nothing is reported. */
static int sizes(void)
{
    static const size_t list[] = {0, 1, 24, 1000, 1010, 3000, 131032, 200000};
    for (unsigned i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
        char *p = malloc(list[i]);
        memset(p, 0x41, list[i]);
        printf("%zu: size %zu aligned %d\n", list[i], malloc_size(p),
               (int)((uintptr_t)p % 16 == 0));
        free(p);
    }
    unsigned char *zeroed = calloc(100, 3);
    size_t nonzero = 0;
    for (unsigned i = 0; i < 300; i++)
        nonzero += zeroed[i] != 0;
    printf("calloc nonzero %zu\n", nonzero);
    free(zeroed);
    static const size_t alignments[] = {32, 64, 4096, 65536, 262144};
    for (unsigned i = 0; i < sizeof(alignments) / sizeof(alignments[0]); i++) {
        void *p = NULL;
        int error = posix_memalign(&p, alignments[i], 100);
        memset(p, 1, 100);
        printf("align %zu: %d %d size %zu\n", alignments[i], error,
               (int)((uintptr_t)p % alignments[i] == 0), malloc_size(p));
        free(p);
    }
    return 0;
}

/* Stores one byte at `offset` from a block of `size`, then frees it. */
static int store(long size, long offset)
{
    char *p = hide(malloc((size_t)size));
    show_block(p);
    p[offset] = 0x41;
    free(p);
    puts("survived");
    return 0;
}

/* Same, but the damage is found by malloc_zone_check first. */
static int store_then_check(long size, long offset)
{
    char *p = hide(malloc((size_t)size));
    show_block(p);
    p[offset] = 0x41;
    printf("check %d\n", (int)malloc_zone_check(NULL));
    fflush(stdout);
    return 0;
}

/* Writes into a freed block, then takes a block of the same size again:
 * the same one, from this thread's cache. */
static int write_after_free(long size, long offset)
{
    char *p = hide(malloc((size_t)size));
    show_block(p);
    free(p);
    p[offset] = 0x41;
    if (size < 0) /* by the checker rather than on reuse */
        return 0;
    char *again = malloc((size_t)size);
    printf("again %s\n", again == p ? "same" : "other");
    return 0;
}

static int freed_then_check(long size, long offset)
{
    char *p = hide(malloc((size_t)size));
    show_block(p);
    free(p);
    p[offset] = 0x41;
    printf("check %d\n", (int)malloc_zone_check(NULL));
    return 0;
}

/* In place when it fits: the grown part is filled as new, the canary
 * follows the new size; moved otherwise, with the contents. */
static int resize(void)
{
    unsigned char *p = malloc(20);
    memset(p, 0x11, 20);
    unsigned char *grown = realloc(p, 28);
    printf("grow in place %d size %zu tail %02x head %02x\n", grown == p,
           malloc_size(grown), grown[27], grown[0]);
    unsigned char *moved = realloc(grown, 5000);
    size_t kept = 0;
    for (unsigned i = 0; i < 20; i++)
        kept += moved[i] == 0x11;
    printf("moved %d kept %zu size %zu\n", moved != grown, kept,
           malloc_size(moved));
    unsigned char *shrunk = realloc(moved, 4000);
    printf("shrink in place %d size %zu\n", shrunk == moved, malloc_size(shrunk));
    hide(shrunk)[4000] = 0x41;
    show_block(shrunk);
    free(shrunk);
    puts("survived");
    return 0;
}

/* The zone's statistics count requested bytes. */
static int statistics(void)
{
    enum { N = 100 };
    void *blocks[N];
    malloc_statistics_t before, after;
    malloc_zone_statistics(NULL, &before);
    for (int i = 0; i < N; i++)
        blocks[i] = malloc(24);
    malloc_zone_statistics(NULL, &after);
    printf("blocks %u bytes %zu\n", after.blocks_in_use - before.blocks_in_use,
           after.size_in_use - before.size_in_use);
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    return 0;
}

/* Stores at `offset` from a 300000-byte block: past its last page, or
 * before its first. */
static int large_edge(long offset)
{
    char *p = hide(malloc(300000));
    show_block(p);
    p[offset] = 0x41;
    puts("survived");
    return 0;
}

/* Bytes of inaccessible mappings in this process. */
static unsigned long protected_bytes(void)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[512];
    unsigned long total = 0, start, end;
    char perms[8];
    while (maps && fgets(line, sizeof(line), maps))
        if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) == 3 &&
            strcmp(perms, "---p") == 0)
            total += end - start;
    if (maps)
        fclose(maps);
    return total;
}

/* Guard pages per large block: the library's own tables are made by a
 * first block, so only the blocks' pages are counted. */
static int guard_pages_per_block(void)
{
    enum { N = 8 };
    void *blocks[N];
    free(malloc(300000));
    unsigned long before = protected_bytes();
    for (int i = 0; i < N; i++)
        blocks[i] = malloc(300000);
    unsigned long after = protected_bytes();
    printf("guard pages per block %lu\n", (after - before) / N / 4096);
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    return 0;
}

/* The same after realloc has moved the block to 400000 bytes. */
static int large_realloc_edge(long offset)
{
    char *p = hide(realloc(malloc(300000), 400000));
    show_block(p);
    p[offset] = 0x41;
    puts("survived");
    return 0;
}

/* Stores just outside the region of a tiny block. */
static int region_edge(long after)
{
    char *p = hide(malloc(24));
    uintptr_t base = (uintptr_t)p & ~(REGION_SIZE - 1);
    char *target = (char *)(after ? base + REGION_SIZE : base - 1);
    *hide(target) = 0x41;
    puts("survived");
    return 0;
}

/* Zones the program creates get the debug behaviours too. */
static int created_zone(void)
{
    malloc_zone_t *zone = malloc_create_zone(0, 0);
    char *p = hide(malloc_zone_malloc(zone, 24));
    show_block(p);
    p[24] = 0x41;
    malloc_zone_free(zone, p);
    puts("survived");
    return 0;
}

static unsigned workers_done;

/* Threads churn blocks (writing every byte they own) while the main
 * thread checks the heap: a block in transition is never damage. */
static void *churn(void *seed_pointer)
{
    uint64_t seed = (uintptr_t)seed_pointer;
    enum { SLOTS = 16 };
    char *slots[SLOTS] = {0};
    for (int i = 0; i < 5000; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned slot = (unsigned)(seed >> 33) % SLOTS;
        /* Mostly big small-class blocks: freeing one fills it for a
         * while, the window in which a check could mistake it. */
        size_t size = (size_t)(seed >> 45) % (i % 97 == 0 ? 300000 : 120000);
        if (slots[slot] && (seed & 1)) {
            slots[slot] = realloc(slots[slot], size);
        } else {
            free(slots[slot]);
            slots[slot] = malloc(size);
        }
        memset(slots[slot], (int)i, size);
    }
    for (unsigned s = 0; s < SLOTS; s++)
        free(slots[s]);
    __atomic_add_fetch(&workers_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static int threads(void)
{
    pthread_t workers[4];
    for (uintptr_t i = 0; i < 4; i++)
        pthread_create(&workers[i], NULL, churn, (void *)(i + 1));
    unsigned checks = 0, failed = 0;
    /* Yielding between checks: a check holds every lock of the zone, and
     * back to back they would starve the workers. */
    for (; checks < 300 && __atomic_load_n(&workers_done, __ATOMIC_ACQUIRE) < 4;
         checks++) {
        failed += !malloc_zone_check(NULL);
        sched_yield();
    }
    for (int i = 0; i < 4; i++)
        pthread_join(workers[i], NULL);
    printf("checks %s failed %u final %d\n", checks > 10 ? "many" : "few", failed,
           (int)malloc_zone_check(NULL));
    return 0;
}

/* A damaged heap found by MallocCheckHeap, after checks that passed. */
static void good_operations(void)
{
    for (int i = 0; i < 5; i++)
        free(malloc(10));
}

static int check_heap(void)
{
    char *p = hide(malloc(24));
    good_operations();
    show_block(p);
    p[24] = 0x41;
    good_operations();
    puts("survived");
    return 0;
}

int main(int argc, char **argv)
{
    char action[64] = "";
    long n = 0, m = 0;
    if (argc > 1 && sscanf(argv[1], "%63[^:]:%ld:%ld", action, &n, &m) < 1)
        return 2;
    if (strcmp(action, "sizes") == 0)
        return sizes();
    if (strcmp(action, "store") == 0)
        return store(n, m);
    if (strcmp(action, "store-check") == 0)
        return store_then_check(n, m);
    if (strcmp(action, "write-after-free") == 0)
        return write_after_free(n, m);
    if (strcmp(action, "freed-check") == 0)
        return freed_then_check(n, m);
    if (strcmp(action, "resize") == 0)
        return resize();
    if (strcmp(action, "statistics") == 0)
        return statistics();
    if (strcmp(action, "large-edge") == 0)
        return large_edge(n);
    if (strcmp(action, "guard-pages") == 0)
        return guard_pages_per_block();
    if (strcmp(action, "large-realloc-edge") == 0)
        return large_realloc_edge(n);
    if (strcmp(action, "region-edge") == 0)
        return region_edge(n);
    if (strcmp(action, "created-zone") == 0)
        return created_zone();
    if (strcmp(action, "threads") == 0)
        return threads();
    if (strcmp(action, "check-heap") == 0)
        return check_heap();
    fprintf(stderr, "debug_probe: unknown action '%s'\n", action);
    return 2;
}
