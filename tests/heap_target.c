/*
 * A process with a known heap for the tools' tests.  It allocates from
 * three sites, copies its name twice with strdup (whose malloc call is
 * the C library's) and allocates into a zone of its own, prints "pid N",
 * the sizes the zones gave and the addresses of the 5000-byte blocks,
 * then "ready", and waits: each line on stdin is answered "alive", and
 * end of input ends it.  With argument "churn", a thread allocates and frees all along, so
 * a tool must find a moment when no thread is inside the allocator.
 * With "odd_name", its zone's name holds a newline and an escape.
 * With "reallocs", REALLOCATING_THREADS threads each keep KEPT_BLOCKS
 * blocks and reallocate them all along, so that blocks one thread gives
 * back another is handed at once.
 *
 * Lines that ask for more: "lock" takes every lock of its own zone (as
 * if a thread stood inside the allocator) and answers "locked"; "unlock"
 * lets them go and answers "unlocked"; "leave MS" answers "leaving", and
 * the main thread ends MS milliseconds later (pthread_exit), leaving the
 * process to its other threads; "vfork MS" answers "vforking", then the
 * main thread waits in vfork for a child that sleeps MS milliseconds
 * before it exits (no signal, nor a tracer's interrupt, stops it there).
 */
#include <malloc/malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HUNDREDS 10
#define FIVE_THOUSANDS 3
#define ZONE_BLOCKS 4
#define COPIES 2

static void *kept[64];
static unsigned kept_count;

__attribute__((noinline)) static void *allocate_hundreds(void)
{
    void *block = malloc(100);
    __asm__ volatile("" ::: "memory");
    return block;
}

__attribute__((noinline)) static void *allocate_five_thousands(void)
{
    void *block = malloc(5000);
    __asm__ volatile("" ::: "memory");
    return block;
}

__attribute__((noinline)) static void *allocate_large(void)
{
    void *block = calloc(1, 3 << 20);
    __asm__ volatile("" ::: "memory");
    return block;
}

__attribute__((noinline)) static char *copy_name(const char *name)
{
    char *copy = strdup(name);
    __asm__ volatile("" ::: "memory");
    return copy;
}

static volatile int stop_churning;

static void *churn(void *unused)
{
    (void)unused;
    void *blocks[32] = {0};
    for (unsigned i = 0; !stop_churning; i++) {
        free(blocks[i % 32]);
        blocks[i % 32] = malloc(16 + i % 500);
    }
    for (unsigned i = 0; i < 32; i++)
        free(blocks[i]);
    return NULL;
}

#define REALLOCATING_THREADS 4
#define KEPT_BLOCKS 300

__attribute__((noinline)) static void *reallocate_kept(void *block, size_t size)
{
    void *moved = realloc(block, size);
    __asm__ volatile("" ::: "memory");
    return moved;
}

/* Threads that hold all their blocks, before "ready". */
static pthread_barrier_t reallocators_ready;

static void *keep_reallocating(void *unused)
{
    (void)unused;
    void *blocks[KEPT_BLOCKS] = {0};
    for (unsigned i = 0; !stop_churning; i++) {
        void *moved = reallocate_kept(blocks[i % KEPT_BLOCKS], 16 + i % 3000);
        if (moved)
            blocks[i % KEPT_BLOCKS] = moved;
        if (i == KEPT_BLOCKS)
            pthread_barrier_wait(&reallocators_ready);
        /* Paced, so that the log the tools read stays small. */
        if (i % 200 == 0) {
            struct timespec pause = {0, 1000000};
            nanosleep(&pause, NULL);
        }
    }
    for (unsigned i = 0; i < KEPT_BLOCKS; i++)
        free(blocks[i]);
    return NULL;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("pid %d\n", (int)getpid());
    for (int i = 0; i < HUNDREDS; i++)
        kept[kept_count++] = allocate_hundreds();
    printf("hundred_size %zu\n", malloc_size(kept[0]));
    for (int i = 0; i < FIVE_THOUSANDS; i++) {
        kept[kept_count++] = allocate_five_thousands();
        printf("five_thousand %p\n", kept[kept_count - 1]);
    }
    printf("five_thousand_size %zu\n", malloc_size(kept[HUNDREDS]));
    kept[kept_count++] = allocate_large();
    for (int i = 0; i < COPIES; i++)
        kept[kept_count++] = copy_name(argv[0]);
    printf("copy_size %zu\n", malloc_size(kept[kept_count - 1]));
    malloc_zone_t *zone = malloc_create_zone(0, 0);
    bool odd_name = argc > 1 && strcmp(argv[1], "odd_name") == 0;
    malloc_set_zone_name(zone, odd_name ? "Probe\nZone\x1b[31m" : "ProbeZone");
    for (int i = 0; i < ZONE_BLOCKS; i++)
        kept[kept_count++] = malloc_zone_malloc(zone, 64);
    pthread_t thread, reallocating[REALLOCATING_THREADS];
    bool churning = argc > 1 && strcmp(argv[1], "churn") == 0;
    if (churning && pthread_create(&thread, NULL, churn, NULL) != 0)
        return 1;
    unsigned reallocators = argc > 1 && strcmp(argv[1], "reallocs") == 0
                                ? REALLOCATING_THREADS
                                : 0;
    if (reallocators)
        pthread_barrier_init(&reallocators_ready, NULL, reallocators + 1);
    for (unsigned i = 0; i < reallocators; i++)
        if (pthread_create(&reallocating[i], NULL, keep_reallocating, NULL) != 0)
            return 1;
    if (reallocators)
        pthread_barrier_wait(&reallocators_ready);
    printf("kept_blocks %d\n", KEPT_BLOCKS);
    printf("ready\n");
    char line[64];
    while (fgets(line, sizeof(line), stdin)) {
        if (strcmp(line, "lock\n") == 0) {
            zone->introspect->force_lock(zone);
            printf("locked\n");
        } else if (strcmp(line, "unlock\n") == 0) {
            zone->introspect->force_unlock(zone);
            printf("unlocked\n");
        } else if (strncmp(line, "vfork ", 6) == 0) {
            long ms = atol(line + 6);
            printf("vforking\n");
            fflush(stdout);
            if (vfork() == 0) {
                struct timespec pause = {ms / 1000, ms % 1000 * 1000000};
                nanosleep(&pause, NULL);
                _exit(0);
            }
        } else if (strncmp(line, "leave ", 6) == 0) {
            printf("leaving\n");
            usleep((useconds_t)atoi(line + 6) * 1000);
            pthread_exit(NULL);
        } else {
            printf("alive\n");
        }
    }
    stop_churning = 1;
    if (churning)
        pthread_join(thread, NULL);
    for (unsigned i = 0; i < reallocators; i++)
        pthread_join(reallocating[i], NULL);
    return 0;
}
