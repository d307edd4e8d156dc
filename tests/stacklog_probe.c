/*
 * Runs one stack-logging scenario (argv[1]) under the Malloc* settings
 * check_stack_logging gives it, and prints what the test needs to find
 * in the log: "pid N", the address of each call site's function and the
 * blocks it allocated.
 */
#define _GNU_SOURCE
#include <alloca.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <malloc/malloc.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4 /* Linux 5.7 */
#endif

__attribute__((noinline)) static void *site_a(size_t size)
{
    void *block = malloc(size);
    __asm__ volatile("" ::: "memory");
    return block;
}

__attribute__((noinline)) static void *site_b(size_t size)
{
    void *block = calloc(1, size);
    __asm__ volatile("" ::: "memory");
    return block;
}

static void print_sites(void)
{
    printf("pid %d\nsite_a %p\nsite_b %p\n", (int)getpid(), (void *)site_a,
           (void *)site_b);
}

static int sites(void)
{
    print_sites();
    void *a[3];
    static const size_t sizes[] = {24, 3000, 2 << 20};
    for (int i = 0; i < 3; i++)
        printf("a %p %zu\n", a[i] = site_a(sizes[i]), sizes[i]);
    for (int i = 0; i < 2; i++)
        printf("b %p 100\n", site_b(100));
    free(a[0]);
    printf("freed %p\n", a[0]);
    return 0;
}

/* Two callers with frames of the same size reach one allocating leaf at
 * the same depth, so only the return addresses on the stack tell their
 * stacks apart; a third path reaches caller_a a frame deeper, leaving
 * return addresses behind in the leaf's uninitialised scratch space.
 * The leaf reaches malloc through CHAIN_FRAMES more frames, more than
 * the capture unwinds before it tries to join the previous stack: the
 * paths differ only outside them. */
#define CHAIN_FRAMES 10

__attribute__((noinline)) static void *chain(size_t size, unsigned depth)
{
    void *block = depth ? chain(size, depth - 1) : malloc(size);
    __asm__ volatile("" ::: "memory");
    return block;
}

__attribute__((noinline)) static void *leaf(size_t size)
{
    volatile char scratch[256];
    scratch[size % sizeof(scratch)] = 1;
    void *block = chain(size, CHAIN_FRAMES);
    __asm__ volatile("" ::: "memory");
    return block;
}

__attribute__((noinline)) static void *caller_a(size_t size)
{
    void *block = leaf(size);
    __asm__ volatile("" ::: "memory");
    return block;
}

__attribute__((noinline)) static void *caller_b(size_t size)
{
    void *block = leaf(size);
    __asm__ volatile("nop" ::: "memory"); /* not folded into caller_a */
    return block;
}

__attribute__((noinline)) static void *deeper_a(size_t size)
{
    void *block = caller_a(size);
    __asm__ volatile("" ::: "memory");
    return block;
}

static int callers(void)
{
    printf("pid %d\nleaf %p\ncaller_a %p\ncaller_b %p\ndeeper_a %p\n"
           "callers %p\n",
           (int)getpid(), (void *)leaf, (void *)caller_a, (void *)caller_b,
           (void *)deeper_a, (void *)callers);
    static const unsigned pattern[] = {0, 0, 1, 1, 0, 2, 1, 2, 2, 0, 1};
    for (unsigned i = 0; i < 300; i++) {
        unsigned path = pattern[i % (sizeof(pattern) / sizeof(pattern[0]))];
        void *block = path == 0 ? caller_a(32) : path == 1 ? caller_b(32)
                                                           : deeper_a(32);
        printf("%c %p\n", "abd"[path], block);
    }
    return 0;
}

/* Stacks deeper than the capture unwinds: a block allocated
 * DEEP_RETURN_LEVEL levels above the bottom of a DEEP_LEVELS-deep
 * recursion, right after one allocated at the bottom.  Both stacks are
 * longer than a log records, and the second lies inside the first. */
#define DEEP_LEVELS 700
#define DEEP_RETURN_LEVEL 60

__attribute__((noinline)) static void *recurse(unsigned level)
{
    if (level == 0) {
        printf("bottom %p\n", malloc(16));
        return NULL;
    }
    void *below = recurse(level - 1);
    __asm__ volatile("" ::: "memory");
    if (level == DEEP_RETURN_LEVEL) {
        void *block = malloc(16);
        printf("returned %p\n", block);
        return block;
    }
    return below;
}

static int deep(void)
{
    printf("pid %d\n", (int)getpid());
    for (unsigned i = 0; i < 4; i++)
        recurse(DEEP_LEVELS);
    return 0;
}

/* Threads allocate and free without pause while the main thread forks:
 * each child, whatever lock a thread held at the fork, must allocate,
 * log and exit normally with a log of its own.  One in 64 of their
 * allocations comes from a stack never taken before, so that the threads
 * add to the tree while a child copies it.  Another thread loads the
 * module at $MDTEST_MODULE_FIRST, allocates through it and unloads it,
 * over and over, so that modules are added and found gone while a
 * child copies their list. */
static volatile int stop_churning;
static unsigned module_loads;

static void *loading_thread(void *unused)
{
    (void)unused;
    const char *path = getenv("MDTEST_MODULE_FIRST");
    while (path && !stop_churning) {
        void *module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        void *(*allocate)(size_t) =
            module ? (void *(*)(size_t))dlsym(module, "leaks_plugin_allocate")
                   : NULL;
        if (allocate)
            free(allocate(40));
        if (module)
            dlclose(module);
        if (!allocate)
            break;
        __atomic_fetch_add(&module_loads, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

#define CHURN_PATH_LEVELS 5

__attribute__((noinline)) static void *fan_out(unsigned path, unsigned level,
                                               unsigned levels);

static void *churning_block(unsigned i)
{
    if (i % 64 == 0)
        return fan_out(i * 2654435761u >> 12, 0, CHURN_PATH_LEVELS);
    return i % 3 ? caller_a(16 + i % 200) : caller_b(5000);
}

/* Each fork lets every churning thread allocate this many times more,
 * and waits until each has made CHURN_BEFORE_FORK of them: the threads
 * are in the middle of allocating (and unwinding) when the child is
 * forked, and the parent's log has the same size however long the forks
 * take on a loaded machine. */
#define CHURN_PER_FORK 20000
#define CHURN_BEFORE_FORK 1000
#define CHURNING_THREADS 3
static unsigned forks_begun;
static unsigned churned[CHURNING_THREADS];

static void *churning_thread(void *number)
{
    unsigned *progress = &churned[(uintptr_t)number];
    void *kept[64] = {0};
    for (unsigned i = 0; !stop_churning;) {
        if (i >= __atomic_load_n(&forks_begun, __ATOMIC_RELAXED) * CHURN_PER_FORK) {
            sched_yield();
            continue;
        }
        free(kept[i % 64]);
        kept[i % 64] = churning_block(i);
        __atomic_store_n(progress, ++i, __ATOMIC_RELAXED);
    }
    for (unsigned i = 0; i < 64; i++)
        free(kept[i]);
    return NULL;
}

/* A thread inside the C library's own dl_iterate_phdr (not the
 * library's export, whose calls a fork waits for), as a dlopen adding
 * its module is: it holds the loader's lock at the fork. */
typedef int (*iterate_function)(int (*)(struct dl_phdr_info *, size_t, void *),
                                void *);
static sem_t walk_entered, walk_may_leave;

static int walk_held(struct dl_phdr_info *info, size_t size, void *unused)
{
    (void)info, (void)size, (void)unused;
    sem_post(&walk_entered);
    while (sem_wait(&walk_may_leave) != 0)
        ;
    return 1;
}

static void *holding_walk_thread(void *iterate)
{
    ((iterate_function)iterate)(walk_held, NULL);
    return NULL;
}

/* Forks from inside a walk, as a program's callback may. */
static pid_t forked_in_callback = -1;
static int fork_inside(struct dl_phdr_info *info, size_t size, void *unused)
{
    (void)info, (void)size, (void)unused;
    forked_in_callback = fork();
    return 1;
}

/* Each allocation would take a stack, and unwinding looks the modules
 * up under the loader's lock. */
static void allocate_in_child(void)
{
    for (int i = 0; i < 100; i++)
        free(caller_b(24 + i));
    _exit(0);
}

static bool child_exited(pid_t child)
{
    int status = 0;
    return child > 0 && waitpid(child, &status, 0) == child &&
           WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int fork_in_loader_walk(void)
{
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    void *iterate = libc ? dlsym(libc, "dl_iterate_phdr") : NULL;
    pthread_t walker;
    if (!iterate || sem_init(&walk_entered, 0, 0) || sem_init(&walk_may_leave, 0, 0) ||
        pthread_create(&walker, NULL, holding_walk_thread, iterate))
        return 1;
    while (sem_wait(&walk_entered) != 0)
        ;
    pid_t child = fork();
    if (child == 0)
        allocate_in_child(); /* the walker holds the lock in the parent */
    bool exited = child_exited(child);
    sem_post(&walk_may_leave);
    pthread_join(walker, NULL);
    printf("child %s\n", exited ? "exited" : "failed");
    /* The child's copy of the lock stays held when it leaves the
     * callback: its thread is not the owner the lock names. */
    dl_iterate_phdr(fork_inside, NULL);
    if (forked_in_callback == 0)
        allocate_in_child();
    printf("callback child %s\n",
           child_exited(forked_in_callback) ? "exited" : "failed");
    return 0;
}

static int fork_stress(void)
{
    printf("pid %d\n", (int)getpid());
    pthread_t threads[CHURNING_THREADS], loader;
    for (uintptr_t i = 0; i < CHURNING_THREADS; i++)
        if (pthread_create(&threads[i], NULL, churning_thread, (void *)i))
            return 1;
    if (pthread_create(&loader, NULL, loading_thread, NULL))
        return 1;
    int failed = 0;
    for (unsigned round = 0; round < 40; round++) {
        __atomic_store_n(&forks_begun, round + 1, __ATOMIC_RELAXED);
        for (unsigned t = 0; t < CHURNING_THREADS; t++)
            while (__atomic_load_n(&churned[t], __ATOMIC_RELAXED) <
                   round * CHURN_PER_FORK + CHURN_BEFORE_FORK)
                sched_yield();
        pid_t child = fork();
        if (child == 0) {
            void *blocks[100];
            for (int i = 0; i < 100; i++)
                blocks[i] = caller_b(24 + i);
            for (int i = 0; i < 100; i++)
                free(blocks[i]);
            /* Not exit(): the C library's lock of its exit handlers is
             * not reset in a child, and the loading thread's dlclose may
             * have held it at the fork (__cxa_finalize). */
            _exit(0);
        }
        int status = 0;
        if (child < 0 || waitpid(child, &status, 0) != child ||
            !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed++;
    }
    stop_churning = 1;
    for (unsigned i = 0; i < CHURNING_THREADS; i++)
        pthread_join(threads[i], NULL);
    pthread_join(loader, NULL);
    printf("children 40\nfailed %d\nloads %u\n", failed,
           __atomic_load_n(&module_loads, __ATOMIC_RELAXED));
    return 0;
}

/* A block allocated in a signal handler running on its own stack, between
 * allocations from the same site outside it. */
static void *handler_block;

__attribute__((noinline)) static void allocating_handler(int signo)
{
    (void)signo;
    handler_block = site_a(48);
}

__attribute__((noinline)) static void raise_signal(void)
{
    raise(SIGUSR1);
    __asm__ volatile("" ::: "memory");
}

static int signals(void)
{
    print_sites();
    printf("handler %p\nraiser %p\n", (void *)allocating_handler,
           (void *)raise_signal);
    static char alternate[1 << 16];
    stack_t stack = {.ss_sp = alternate, .ss_size = sizeof(alternate)};
    struct sigaction action = {.sa_handler = allocating_handler,
                               .sa_flags = SA_ONSTACK};
    if (sigaltstack(&stack, NULL) || sigaction(SIGUSR1, &action, NULL))
        return 1;
    for (int round = 0; round < 3; round++) {
        printf("a %p 48\n", site_a(48));
        raise_signal();
        printf("handled %p\n", handler_block);
        printf("a %p 48\n", site_a(48));
    }
    return 0;
}

/* A timer whose handler maps and unmaps a page interrupts a loop of
 * callocs and frees from one site each, whose stacks the stack cache
 * knows: a handler that writes its events while the loop's are half
 * written must not take their place. */
#define INTERRUPTED_ROUNDS 200000
#define INTERRUPTED_CALLS 300

static volatile sig_atomic_t timer_calls;

static void mapping_handler(int signo)
{
    (void)signo;
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page != MAP_FAILED)
        munmap(page, 4096);
    timer_calls++;
}

__attribute__((noinline)) static void free_site(void *block)
{
    free(block);
    __asm__ volatile("" ::: "memory");
}

/* One-shot, armed again by the loop once the handler has run: a handler
 * slower than the period (libunwind is slow through some frames, such
 * as the dynamic linker's) must not leave the loop no time to run. */
static bool arm_timer(void)
{
    struct itimerval once = {{0, 0}, {0, 50}};
    return setitimer(ITIMER_REAL, &once, NULL) == 0;
}

static int interrupted(void)
{
    print_sites();
    printf("free_site %p\n", (void *)free_site);
    struct sigaction action = {.sa_handler = mapping_handler,
                               .sa_flags = SA_RESTART};
    if (sigaction(SIGALRM, &action, NULL) || !arm_timer())
        return 1;
    /* Enough interruptions to land in the fast path's few instructions
     * many times over, however the machine schedules the timer. */
    sig_atomic_t handled = 0;
    unsigned rounds = 0;
    while (rounds < INTERRUPTED_ROUNDS ||
           (timer_calls < INTERRUPTED_CALLS && rounds < 50 * INTERRUPTED_ROUNDS)) {
        free_site(site_b(40));
        rounds++;
        sig_atomic_t calls = timer_calls; /* before the timer can fire */
        if (calls != handled && arm_timer())
            handled = calls;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("rounds %u\ntimer_calls %d\n", rounds, (int)timer_calls);
    return 0;
}

/* A block allocated by this thread, freed and allocated again by another
 * thread, and freed here: this thread's last event is still the first
 * allocation, which is not the block's any more. */
static sem_t handed_over, handed_back;
static void *handed_block;

static void *allocate_again(void *unused)
{
    (void)unused;
    free(malloc(40)); /* the thread's cache, which keeps what it frees */
    sem_wait(&handed_over);
    free(handed_block);
    handed_block = malloc(40);
    sem_post(&handed_back);
    return NULL;
}

static int round_trip(void)
{
    print_sites();
    pthread_t other;
    if (sem_init(&handed_over, 0, 0) || sem_init(&handed_back, 0, 0) ||
        pthread_create(&other, NULL, allocate_again, NULL))
        return 1;
    void *block = site_a(40);
    handed_block = block;
    sem_post(&handed_over);
    sem_wait(&handed_back);
    void *again = handed_block;
    free(again);
    pthread_join(other, NULL);
    printf("block %p\nagain %p\n", block, again);
    return 0;
}

/* Blocks that change hands: threads take the blocks other threads left
 * in shared boxes, at random, and free them or realloc them and put them
 * back, or put new ones in empty boxes, so that blocks are allocated,
 * freed and reused by different threads.  The threads wait for each other
 * every HANDOFF_STEP rounds, so that they take turns however they are
 * scheduled.  Each thread also frees what it has just allocated, more
 * often the higher its number, so that the threads' orders drift far
 * apart.  Sizes span tiny, small and large blocks, and a phase frees
 * everything before the sizes change, so that runs and large mappings
 * are released and their addresses reused. */
#define HANDOFF_THREADS 4
#define HANDOFF_BOXES 64
#define HANDOFF_ROUNDS 3000
#define HANDOFF_STEP 100

struct handoff_box {
    pthread_mutex_t lock;
    void *block;
    unsigned owner; /* the thread that put it there */
};

static struct handoff_box handoff_boxes[HANDOFF_BOXES];
static pthread_barrier_t handoff_phase;
static unsigned long handoff_changed_hands;

static size_t handoff_size(unsigned phase, uint64_t *seed)
{
    static const size_t sizes[2][4] = {{24, 40, 600, 200000},
                                       {56, 72, 1500, 300000}};
    *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return sizes[phase][(*seed >> 33) % 4];
}

static void handoff_round(unsigned self, unsigned phase, uint64_t *seed)
{
    for (unsigned i = 0; i < self * 8; i++)
        free(malloc(handoff_size(phase, seed)));
    struct handoff_box *box = &handoff_boxes[(*seed >> 40) % HANDOFF_BOXES];
    pthread_mutex_lock(&box->lock);
    if (!box->block) {
        box->block = malloc(handoff_size(phase, seed));
        box->owner = self;
    } else if (box->owner != self) {
        __atomic_fetch_add(&handoff_changed_hands, 1, __ATOMIC_RELAXED);
        if ((*seed >> 20) & 1) {
            box->block = realloc(box->block, handoff_size(phase, seed));
            box->owner = self;
        } else {
            free(box->block);
            box->block = NULL;
        }
    }
    pthread_mutex_unlock(&box->lock);
}

static void *handoff_thread(void *argument)
{
    unsigned self = (unsigned)(uintptr_t)argument;
    uint64_t seed = 1000 + self;
    for (unsigned phase = 0; phase < 2; phase++) {
        for (unsigned round = 1; round <= HANDOFF_ROUNDS; round++) {
            handoff_round(self, phase, &seed);
            if (round % HANDOFF_STEP == 0)
                pthread_barrier_wait(&handoff_phase);
        }
        pthread_barrier_wait(&handoff_phase);
        /* Everything freed, by whichever thread takes the box. */
        for (unsigned i = self; i < HANDOFF_BOXES; i += HANDOFF_THREADS) {
            free(handoff_boxes[i].block);
            handoff_boxes[i].block = NULL;
        }
        pthread_barrier_wait(&handoff_phase);
    }
    return NULL;
}

static int handoff(void)
{
    pthread_t threads[HANDOFF_THREADS];
    print_sites();
    for (unsigned i = 0; i < HANDOFF_BOXES; i++)
        pthread_mutex_init(&handoff_boxes[i].lock, NULL);
    if (pthread_barrier_init(&handoff_phase, NULL, HANDOFF_THREADS))
        return 1;
    for (unsigned i = 0; i < HANDOFF_THREADS; i++)
        if (pthread_create(&threads[i], NULL, handoff_thread, (void *)(uintptr_t)i))
            return 1;
    for (unsigned i = 0; i < HANDOFF_THREADS; i++)
        pthread_join(threads[i], NULL);
    printf("changed_hands %lu\n", handoff_changed_hands);
    return 0;
}

/* A large block moved by realloc on a thread whose orders ran far
 * ahead, and its old address given to another thread's new block. */
static sem_t moved, reused;
static void *reusing_block;

static void *reuse_moved_address(void *unused)
{
    (void)unused;
    sem_wait(&moved);
    reusing_block = malloc(300000);
    sem_post(&reused);
    return NULL;
}

static int large_moved(void)
{
    print_sites();
    pthread_t other;
    if (sem_init(&moved, 0, 0) || sem_init(&reused, 0, 0) ||
        pthread_create(&other, NULL, reuse_moved_address, NULL))
        return 1;
    for (unsigned i = 0; i < 300000; i++) /* each taken back, but ordered */
        free(malloc(16));
    void *block = malloc(300000);
    void *grown = realloc(block, 3000000);
    sem_post(&moved);
    sem_wait(&reused);
    pthread_join(other, NULL);
    printf("block %p\ngrown %p\nreusing %p\n", block, grown, reusing_block);
    return 0;
}

#define NESTED_TEMPORARIES 12

static int compact(void)
{
    print_sites();
    void *temporary = site_a(40);
    free(temporary);
    /* A longer event (its size takes three bytes) is taken back too. */
    void *large = site_a(100000);
    free(large);
    printf("temporary %p\nlarge %p\nkept %p\n", temporary, large, site_a(50));
    return 0;
}

/* Blocks freed newest first: each free finds its allocation the thread's
 * last event, as far back as the writer remembers. */
static int compact_nested(void)
{
    print_sites();
    void *nested[NESTED_TEMPORARIES];
    for (unsigned i = 0; i < NESTED_TEMPORARIES; i++)
        nested[i] = site_a(64 + 16 * i);
    for (unsigned i = NESTED_TEMPORARIES; i-- > 0;)
        free(nested[i]);
    for (unsigned i = 0; i < NESTED_TEMPORARIES; i++)
        printf("nested%u %p\n", i, nested[i]);
    return 0;
}

static int forking(void)
{
    print_sites();
    printf("a %p\n", site_a(24));
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        printf("child %d\nb %p\n", (int)getpid(), site_b(24));
        return 0;
    }
    int status;
    waitpid(child, &status, 0);
    printf("c %p\n", site_b(48));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

#define THREADS 4
#define PER_THREAD 100

static void *thread_main(void *unused)
{
    (void)unused;
    void *blocks[PER_THREAD];
    for (int i = 0; i < PER_THREAD; i++)
        blocks[i] = site_a(16 + i);
    for (int i = 0; i < PER_THREAD; i += 2)
        free(blocks[i]);
    return NULL;
}

static int threads(void)
{
    print_sites();
    pthread_t ids[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&ids[i], NULL, thread_main, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(ids[i], NULL);
    return 0;
}

/* A thread that records, then forks a child that gets no log of its own
 * (tests/child_log_refused.la): in the child, that thread is the only
 * one, and when it ends, ending the child, it has no log to add its
 * counts to. */
static void *fork_from_a_thread(void *unused)
{
    (void)unused;
    free(site_a(16));
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        free(site_b(24));
        return NULL;
    }
    int status;
    waitpid(child, &status, 0);
    printf("child_status %d\n",
           WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return NULL;
}

static int fork_without_a_log(void)
{
    pthread_t id;
    if (pthread_create(&id, NULL, fork_from_a_thread, NULL) != 0)
        return 1;
    pthread_join(id, NULL);
    return 0;
}

static int vm(void)
{
    print_sites();
    char *region = mmap(NULL, 65536, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *grown = mremap(region, 65536, 131072, MREMAP_MAYMOVE);
    printf("mapped %p\ngrown %p\n", (void *)region, (void *)grown);
    /* Refused (misaligned): nothing is unmapped, nothing recorded. */
    if (munmap(grown + 1, 4096) == 0)
        return 1;
    munmap(grown, 131072);
    /* The old range stays mapped: a new mapping only. */
    char *kept = mmap(NULL, 65536, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *copy = mremap(kept, 65536, 65536, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    printf("kept %p\ncopy %p\n", (void *)kept,
           copy == MAP_FAILED ? NULL : (void *)copy);
    printf("a %p\n", site_a(24));
    return 0;
}

/* One call site grows a block 16 bytes at a time: after the first, its
 * stack is in the thread's stack cache, and a realloc that moves records
 * both halves on the fast path. */
__attribute__((noinline)) static void *grow(void *block, size_t size)
{
    void *result = realloc(block, size);
    __asm__ volatile("" ::: "memory");
    return result;
}

static int reallocs(void)
{
    print_sites();
    printf("grow %p\n", (void *)grow);
    void *block = NULL;
    for (size_t size = 16; size <= 4096; size += 16)
        if (!(block = grow(block, size)))
            return 1;
    free(block);
    return 0;
}

/* A zone written by the program whose realloc reallocs another block
 * through malloc before it resizes its own in place: a realloc inside a
 * realloc, as a signal handler's would be. */
static void *nested_block;

static size_t nesting_size(malloc_zone_t *zone, const void *pointer)
{
    (void)zone;
    return malloc_size(pointer);
}

static void *nesting_realloc(malloc_zone_t *zone, void *pointer, size_t size)
{
    (void)zone;
    nested_block = realloc(nested_block, 4096);
    return size <= malloc_size(pointer) ? pointer : NULL;
}

static int nested_realloc(void)
{
    print_sites();
    malloc_zone_t zone = {.size = nesting_size, .realloc = nesting_realloc,
                          .zone_name = "nesting"};
    void *block = site_a(200);
    nested_block = malloc(24);
    printf("block %p\nnested %p\n", block, nested_block);
    void *same = malloc_zone_realloc(&zone, block, 100);
    printf("moved %p\nsame %p\n", nested_block, same);
    return same == block ? 0 : 1;
}

/* A zone's realloc of NULL allocates. */
static int realloc_null(void)
{
    print_sites();
    printf("block %p\n", malloc_zone_realloc(malloc_default_zone(), NULL, 48));
    return 0;
}

/* 4 threads at once each take FAN_OUT_SITES^PATH_LEVELS different
 * stacks, twice: a tree of calls whose leaves allocate, in which each
 * call has FAN_OUT_SITES call sites under it, more children than the
 * writer lists under a node (8).  The others are found through the node
 * index, which they outgrow twice while the threads add to it.  The
 * code around each call differs, so that the compiler keeps the calls
 * apart. */
#define FAN_OUT_SITES 16
#define PATH_LEVELS 3
#define PATHS (FAN_OUT_SITES * FAN_OUT_SITES * FAN_OUT_SITES)
#define PATH_THREADS 4

static inline __attribute__((always_inline)) void *
fan_out_below(unsigned path, unsigned level, unsigned levels)
{
    return level + 1 == levels ? site_a(16)
                               : fan_out(path / FAN_OUT_SITES, level + 1, levels);
}

#define FAN_OUT(k)                                                       \
    case k:                                                              \
        __asm__ volatile(".rept " #k "+1\n\tnop\n\t.endr" ::: "memory"); \
        block = fan_out_below(path, level, levels);                      \
        __asm__ volatile(".rept " #k "+1\n\tnop\n\t.endr" ::: "memory"); \
        break;

/* The block of `path` from a tree of calls `levels` deep. */
__attribute__((noinline)) static void *fan_out(unsigned path, unsigned level,
                                               unsigned levels)
{
    void *block = NULL;
    switch (path % FAN_OUT_SITES) {
        FAN_OUT(0) FAN_OUT(1) FAN_OUT(2) FAN_OUT(3) FAN_OUT(4) FAN_OUT(5)
        FAN_OUT(6) FAN_OUT(7) FAN_OUT(8) FAN_OUT(9) FAN_OUT(10) FAN_OUT(11)
        FAN_OUT(12) FAN_OUT(13) FAN_OUT(14) FAN_OUT(15)
    }
    return block;
}

/* The threads start together, so that they often make the same node at
 * the same time. */
static pthread_barrier_t paths_start;

static void *take_paths(void *unused)
{
    (void)unused;
    static __thread void *blocks[PATHS];
    pthread_barrier_wait(&paths_start);
    for (int round = 0; round < 2; round++) {
        for (unsigned path = 0; path < PATHS; path++)
            blocks[path] = fan_out(path, 0, PATH_LEVELS);
        for (unsigned path = 0; path < PATHS; path++)
            free(blocks[path]);
    }
    return NULL;
}

static int paths(void)
{
    print_sites();
    printf("fan_out %p\n", (void *)fan_out);
    pthread_t ids[PATH_THREADS];
    pthread_barrier_init(&paths_start, NULL, PATH_THREADS);
    for (int i = 0; i < PATH_THREADS; i++)
        pthread_create(&ids[i], NULL, take_paths, NULL);
    for (int i = 0; i < PATH_THREADS; i++)
        pthread_join(ids[i], NULL);
    return 0;
}

/* A binary recursion RECURSION_LEVELS deep, every call of which
 * allocates a block of RECURSION_BLOCK bytes on its way in and frees it
 * on its way out: the stacks of each block's two events spell the left
 * and right calls down to it, and consecutive stacks share most of
 * their frames.  Then the same again with frames whose size follows
 * the path (a buffer on the stack). */
#define RECURSION_LEVELS 7
#define RECURSION_BLOCK 333

static inline __attribute__((always_inline)) void
recursion_node(unsigned path, unsigned level,
               void (*descend)(unsigned path, unsigned level))
{
    void *block = malloc(RECURSION_BLOCK);
    if (level < RECURSION_LEVELS) {
        descend(path, level + 1);
        __asm__ volatile("" ::: "memory");
        descend(path | 1u << level, level + 1);
        __asm__ volatile("" ::: "memory");
    }
    free(block);
    __asm__ volatile("" ::: "memory"); /* not a tail call */
}

__attribute__((noinline)) static void descend(unsigned path, unsigned level)
{
    recursion_node(path, level, descend);
}

__attribute__((noinline)) static void descend_varying(unsigned path,
                                                      unsigned level)
{
    size_t size = 16 * (1 + (path * 7 + level) % 11);
    char *buffer = alloca(size);
    memset(buffer, 0, size);
    __asm__ volatile("" : : "r"(buffer) : "memory");
    recursion_node(path, level, descend_varying);
}

static int recursion(void)
{
    print_sites();
    printf("levels %d\nblock %d\n", RECURSION_LEVELS, RECURSION_BLOCK);
    for (int round = 0; round < 2; round++)
        descend(0, 0);
    for (int round = 0; round < 2; round++)
        descend_varying(0, 0);
    return 0;
}

/* Two threads one after the other, the first far ahead in its events:
 * under tests/thread_id_reused.la they share a thread id, and the
 * second's blocks (of a size the first never took) have no earlier
 * events to follow. */
#define AHEAD_EVENTS 2000
#define BEHIND_BLOCKS 10

static void *run_ahead(void *unused)
{
    (void)unused;
    for (int i = 0; i < AHEAD_EVENTS / 2; i++)
        free(site_a(64));
    return NULL;
}

static void *come_behind(void *unused)
{
    (void)unused;
    static void *blocks[BEHIND_BLOCKS];
    for (int i = 0; i < BEHIND_BLOCKS; i++)
        blocks[i] = site_b(5000);
    for (int i = 0; i < BEHIND_BLOCKS; i++)
        free(blocks[i]);
    return NULL;
}

static int reused_thread_id(void)
{
    print_sites();
    void *(*const runs[])(void *) = {run_ahead, come_behind};
    for (int i = 0; i < 2; i++) {
        pthread_t id;
        pthread_create(&id, NULL, runs[i], NULL);
        pthread_join(id, NULL);
    }
    printf("events %d\n", AHEAD_EVENTS + 2 * BEHIND_BLOCKS);
    return 0;
}

/* More events than one thread's log chunk holds. */
#define LONG_HISTORY_BLOCKS 60000

static int long_history(void)
{
    print_sites();
    static void *blocks[LONG_HISTORY_BLOCKS];
    for (int i = 0; i < LONG_HISTORY_BLOCKS; i++)
        blocks[i] = site_a(1 + i % 1000);
    for (int i = 0; i < LONG_HISTORY_BLOCKS; i++)
        free(blocks[i]);
    return 0;
}

/* The log's descriptor, found among the process's open files. */
static int log_descriptor_number(void)
{
    for (int fd = 0; fd < 1024; fd++) {
        char link[64], target[4096];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        const size_t suffix = strlen(".stacklog");
        if ((size_t)n > suffix && strcmp(target + n - suffix, ".stacklog") == 0)
            return fd;
    }
    return -1;
}

/* Puts the file named by PROBE_FILE on the log's descriptor number, as a
 * program that closes every descriptor it did not open and then opens
 * its own does, and then records the long history.  Standard input is
 * closed first: the log, opened again, must not take its number. */
static int descriptor_replaced(void)
{
    int log = log_descriptor_number();
    const char *path = getenv("PROBE_FILE");
    int own = path ? open(path, O_RDWR) : -1;
    if (log < 0 || own < 0 || dup2(own, log) != log)
        return 1;
    close(own);
    close(STDIN_FILENO);
    int status = long_history();
    /* Printed last: stdout's buffer is the first allocation of main. */
    printf("log_fd %d\nreopened_fd %d\n", log, log_descriptor_number());
    return status;
}

static int crash(void)
{
    print_sites();
    printf("a %p\n", site_a(24));
    fflush(stdout);
    abort();
}

/* ---- malloc_logger conformance: the calls, without addresses ---- */

#define CALLS_MAX 64
static struct call {
    uint32_t type;
    uintptr_t arg2, arg3;
    bool has_result;
} calls[CALLS_MAX];
static unsigned call_count;

static void recording_logger(uint32_t type, uintptr_t arg1, uintptr_t arg2,
                             uintptr_t arg3, uintptr_t result, uint32_t skip)
{
    (void)arg1;
    (void)skip;
    if (call_count < CALLS_MAX)
        calls[call_count++] = (struct call){type, arg2, arg3, result != 0};
}

static int logger(void)
{
    malloc_zone_t *zone = malloc_default_zone();
    void *batch[3];
    malloc_logger = recording_logger;
    void *a = malloc(10), *b = calloc(2, 8), *c = valloc(10);
    void *z = malloc_zone_malloc(zone, 70);
    unsigned made = malloc_zone_batch_malloc(zone, 32, batch, 3);
    a = realloc(a, 100);
    free(a);
    free(b);
    free(c);
    malloc_zone_free(zone, z);
    malloc_zone_batch_free(zone, batch, made);
    malloc_logger = NULL;
    for (unsigned i = 0; i < call_count; i++) {
        bool frees = calls[i].type & MALLOC_LOG_TYPE_DEALLOCATE;
        bool allocates = calls[i].type & MALLOC_LOG_TYPE_ALLOCATE;
        /* A freed pointer is an address: only its presence is stable. */
        printf("type %u arg2 %lu arg3 %lu result %d\n", calls[i].type,
               frees ? (unsigned long)(calls[i].arg2 != 0)
                     : (unsigned long)calls[i].arg2,
               allocates && frees ? (unsigned long)calls[i].arg3 : 0UL,
               calls[i].has_result);
    }
    return 0;
}

/* Code that runs on a stack of its own, as coroutine libraries do: the
 * switch's unwind information leads the unwinder back to the caller's
 * frames on the thread's stack, so no return address of theirs is on the
 * new stack, and right above the new stack's top is an unreadable page.
 * A search for those return addresses must not run off the top. */
#if defined(__x86_64__)
void call_on_stack(void (*function)(void), void *stack_top);
__asm__(".text\n"
        ".globl call_on_stack\n"
        ".type call_on_stack, @function\n"
        "call_on_stack:\n"
        "    .cfi_startproc\n"
        "    push %rbp\n"
        "    .cfi_def_cfa_offset 16\n"
        "    .cfi_offset %rbp, -16\n"
        "    mov %rsp, %rbp\n"
        "    .cfi_def_cfa_register %rbp\n"
        "    mov %rsi, %rsp\n"
        "    call *%rdi\n"
        "    mov %rbp, %rsp\n"
        "    pop %rbp\n"
        "    .cfi_def_cfa %rsp, 8\n"
        "    ret\n"
        "    .cfi_endproc\n"
        ".size call_on_stack, .-call_on_stack\n");

enum { OWN_STACK = 64 << 10, OWN_STACK_ROUNDS = 200 };
static void *own_stack_blocks[OWN_STACK_ROUNDS];

__attribute__((noinline)) static void own_stack_leaf(void)
{
    static unsigned round;
    own_stack_blocks[round++] = site_a(64);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void own_stack_caller(char *top)
{
    for (unsigned i = 0; i < OWN_STACK_ROUNDS; i++)
        call_on_stack(own_stack_leaf, top);
    __asm__ volatile("" ::: "memory");
}

static int own_stack(void)
{
    print_sites();
    printf("leaf %p\ncaller %p\n", (void *)own_stack_leaf,
           (void *)own_stack_caller);
    long page = sysconf(_SC_PAGESIZE);
    char *stack = mmap(NULL, OWN_STACK + page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED ||
        mprotect(stack + OWN_STACK, page, PROT_NONE) != 0)
        return 1;
    /* The library's mprotect fails as the system call does. */
    errno = 0;
    if (mprotect(stack + 1, page, PROT_READ) != -1 || errno != EINVAL)
        return 1;
    own_stack_caller(stack + OWN_STACK);
    for (unsigned i = 0; i < OWN_STACK_ROUNDS; i++)
        printf("a %p\n", own_stack_blocks[i]);
    return 0;
}

/* The same code on a stack whose top is followed by readable memory of
 * another mapping: the search for the caller's return address reads on
 * into it, and the thread remembers those pages as readable.  The other
 * mapping is then unmapped, and the search must not read it again.
 * Unmapping memory elsewhere, meanwhile, changes nothing. */
enum { NEIGHBOUR_ROUNDS = 2 };
static void *neighbour_blocks[2 * NEIGHBOUR_ROUNDS];
static unsigned neighbour_count;

__attribute__((noinline)) static void neighbour_leaf(void)
{
    neighbour_blocks[neighbour_count++] = site_a(80);
    __asm__ volatile("" ::: "memory");
}

static void unmap_elsewhere(void)
{
    void *elsewhere = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (elsewhere != MAP_FAILED)
        munmap(elsewhere, 4096);
}

static int neighbour_unmapped(void)
{
    print_sites();
    long page = sysconf(_SC_PAGESIZE);
    char *stack = mmap(NULL, OWN_STACK + page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED)
        return 1;
    for (unsigned i = 0; i < NEIGHBOUR_ROUNDS; i++) {
        call_on_stack(neighbour_leaf, stack + OWN_STACK);
        unmap_elsewhere();
    }
    munmap(stack + OWN_STACK, (size_t)page);
    for (unsigned i = 0; i < NEIGHBOUR_ROUNDS; i++)
        call_on_stack(neighbour_leaf, stack + OWN_STACK);
    for (unsigned i = 0; i < neighbour_count; i++)
        printf("a %p\n", neighbour_blocks[i]);
    return 0;
}
#else
static int own_stack(void)
{
    printf("skipped: x86-64 only\n");
    return 0;
}

static int neighbour_unmapped(void)
{
    printf("skipped: x86-64 only\n");
    return 0;
}
#endif

/* Loads the module at $MDTEST_MODULE_FIRST, allocates 101 bytes
 * through it and unloads it, then the same with $MDTEST_MODULE_SECOND
 * (a copy of the first, which the loader puts where the first was) and
 * 102 bytes. */
static int modules(void)
{
    printf("pid %d\n", (int)getpid());
    static const char *const variables[] = {"MDTEST_MODULE_FIRST",
                                            "MDTEST_MODULE_SECOND"};
    void *blocks[2];
    for (unsigned i = 0; i < 2; i++) {
        const char *path = getenv(variables[i]);
        void *module = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
        if (!module) {
            fprintf(stderr, "stacklog_probe: %s\n", path ? dlerror() : "no path");
            return 1;
        }
        void *(*allocate)(size_t) =
            (void *(*)(size_t))dlsym(module, "leaks_plugin_allocate");
        if (!allocate)
            return 1;
        blocks[i] = allocate(101 + i);
        printf("module%u %p\n", i + 1, (void *)allocate);
        dlclose(module);
    }
    free(blocks[0]);
    free(blocks[1]);
    return 0;
}

/* A thread walks the module list with dl_iterate_phdr and allocates in
 * its callback, as a program listing its modules may; while it is there
 * the main thread forks, and the child allocates from a function the
 * process never allocated from before, which a stack can only be taken
 * of by looking its module up in the loader.  Then the main thread
 * allocates from the callback's site (site_a) outside any walk. */
static int walk_stage; /* 1: the walker is in its callback; 2: forked */
static void *walk_block;

__attribute__((noinline)) static void *forked_site(size_t size)
{
    void *block = malloc(size);
    __asm__ volatile("" ::: "memory");
    return block;
}

static int allocating_callback(struct dl_phdr_info *info, size_t size,
                               void *data)
{
    (void)info, (void)size, (void)data;
    walk_block = site_a(72);
    __atomic_store_n(&walk_stage, 1, __ATOMIC_RELEASE);
    while (__atomic_load_n(&walk_stage, __ATOMIC_ACQUIRE) != 2)
        sched_yield();
    return 1;
}

static void *walking_thread(void *unused)
{
    (void)unused;
    dl_iterate_phdr(allocating_callback, NULL);
    return NULL;
}

static int module_walk(void)
{
    print_sites();
    pthread_t walker;
    if (pthread_create(&walker, NULL, walking_thread, NULL))
        return 1;
    while (__atomic_load_n(&walk_stage, __ATOMIC_ACQUIRE) != 1)
        sched_yield();
    pid_t child = fork();
    if (child == 0) {
        free(forked_site(88));
        exit(0);
    }
    __atomic_store_n(&walk_stage, 2, __ATOMIC_RELEASE);
    pthread_join(walker, NULL);
    /* A child that hangs (with its signals blocked, as libunwind has
     * them while it looks a frame up) is killed after 20 seconds. */
    int status = -1;
    for (unsigned waited = 0; child > 0 && waited < 2000; waited++) {
        if (waitpid(child, &status, WNOHANG) == child)
            break;
        if (waited == 1999) {
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
        }
        usleep(10000);
    }
    void *outside = site_a(72);
    printf("child %d\nchild_status %d\ninside %p\noutside %p\n", (int)child,
           status, walk_block, outside);
    free(walk_block);
    free(outside);
    return 0;
}

/* Allocates, then runs the probe again in this process: "sites". */
static int exec_sites(void)
{
    void *before = site_a(40);
    printf("pid %d\nbefore %p\n", (int)getpid(), before);
    execl("/proc/self/exe", "stacklog_probe", "sites", (char *)NULL);
    return 1;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(void);
    } scenarios[] = {{"sites", sites},     {"compact", compact},
                   {"compact_nested", compact_nested},
                     {"fork", forking},    {"threads", threads},
                     {"fork_without_a_log", fork_without_a_log},
                     {"vm", vm},           {"crash", crash},
                     {"logger", logger},   {"callers", callers},
                     {"signals", signals}, {"fork_stress", fork_stress},
                     {"fork_in_loader_walk", fork_in_loader_walk},
                     {"exec_sites", exec_sites},
                     {"own_stack", own_stack}, {"realloc_null", realloc_null},
                     {"reallocs", reallocs},
                     {"nested_realloc", nested_realloc},
                     {"long_history", long_history}, {"paths", paths},
                     {"recursion", recursion},
                     {"reused_thread_id", reused_thread_id},
                     {"deep", deep}, {"interrupted", interrupted},
                     {"round_trip", round_trip}, {"handoff", handoff},
                     {"large_moved", large_moved},
                     {"modules", modules},
                     {"module_walk", module_walk},
                     {"neighbour_unmapped", neighbour_unmapped},
                     {"descriptor_replaced", descriptor_replaced}};
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (unsigned i = 0; argc > 1 && i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        if (strcmp(argv[1], scenarios[i].name) == 0)
            return scenarios[i].run();
    fprintf(stderr, "usage: stacklog_probe sites|compact|compact_nested|fork|threads|vm|crash|logger|callers|signals|fork_stress|fork_in_loader_walk|exec_sites|own_stack|realloc_null|reallocs|nested_realloc|long_history|paths|recursion|reused_thread_id|deep|interrupted|round_trip|handoff|large_moved|modules|module_walk|neighbour_unmapped|descriptor_replaced\n");
    return 2;
}
