/*
 * A process with known leaks and known roots, for leaks(1)'s tests.
 *
 * Kept alive, each only through one kind of root: a global, a pointer
 * into the middle of a block (from a global), another thread's stack,
 * that thread's thread-local storage, the registers of a spinning thread,
 * the vector registers of another (when the processor has AVX2: the
 * upper half of a ymm register; with AVX-512 also a mask register, the
 * upper half of a zmm register and one of zmm16-31), an anonymous mapping and, when $LEAKS_TARGET_PLUGIN names the module
 * built from tests/leaks_plugin.c, that module's global (it is loaded
 * with dlopen).  Leaked: a list of three blocks (one ROOT LEAK tree), two
 * blocks pointing at each other (a ROOT CYCLE), a block whose only
 * pointer is hidden by XOR, a block known only to a thread that has
 * exited (its stack unmapped), a block known only to a thread that was
 * joined (its stack kept mapped in glibc's cache), and a block of a zone
 * of the program's own.
 *
 * Prints "pid N", "kept ADDRESS", "kept_in_register REGISTER ADDRESS" and
 * "leak KIND ADDRESS SIZE" lines, the line the list is allocated on, then
 * "ready"; ends at end of input.
 * With argument "exit" it does not wait: it prints "ready" and returns,
 * for leaks --atExit.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc/malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HIDING_KEY 0x5a5a5a5a5a5a5a5aULL

struct node {
    struct node *next;
    char text[40];
};

/* volatile: stores the compiler would drop, since nothing reads them. */
static void *volatile global_keep;
/* Big enough that its end lies past the file's last page, in the
 * anonymous mapping the kernel adds for the rest of .bss. */
static void *volatile bss_tail[20000];
static char *volatile global_interior;
static __thread void *volatile tls_keep;
static pthread_barrier_t started;
static volatile int stop_spinning;

static void report_leak(const char *kind, void *block)
{
    printf("leak %s %p %zu\n", kind, block, malloc_size(block));
}

__attribute__((noinline)) static struct node *make_leaked_list(void)
{
    struct node *head = NULL;
    for (int i = 0; i < 3; i++) {
        struct node *node = malloc(sizeof(*node)); printf("list_line %d\n", __LINE__);
        node->next = head;
        snprintf(node->text, sizeof(node->text), "leaked node %d", i);
        head = node;
        report_leak("list", node);
    }
    return head;
}

__attribute__((noinline)) static void make_cycle(void)
{
    void **a = malloc(32), **b = malloc(48);
    a[0] = b;
    b[0] = a;
    report_leak("cycle", a);
    report_leak("cycle", b);
}

__attribute__((noinline)) static uintptr_t make_hidden(void)
{
    void *block = malloc(24);
    report_leak("hidden", block);
    return (uintptr_t)block ^ HIDING_KEY;
}

/* Holds a block on its stack and one in its TLS until the end. */
static void *holding_thread(void *unused)
{
    (void)unused;
    void *volatile on_stack = malloc(72);
    tls_keep = malloc(88);
    printf("kept %p\nkept %p\n", on_stack, tls_keep);
    pthread_barrier_wait(&started);
    while (!stop_spinning)
        usleep(1000);
    return NULL;
}

/* Keeps its block's address only in r12, spinning. */
static void *spinning_thread(void *unused)
{
    (void)unused;
    uintptr_t hidden = (uintptr_t)malloc(104) ^ HIDING_KEY;
    printf("kept %p\n", (void *)(hidden ^ HIDING_KEY));
    pthread_barrier_wait(&started);
    __asm__ volatile("mov %0, %%r12\n\t"
                     "xor %1, %%r12\n"
                     "1:\n\t"
                     "pause\n\t"
                     "cmpl $0, %2\n\t"
                     "je 1b\n\t"
                     "xor %%r12, %%r12"
                     :
                     : "r"(hidden), "r"((uintptr_t)HIDING_KEY), "m"(stop_spinning)
                     : "r12", "memory");
    return NULL;
}

/* Each block's address, hidden, to be shown only in a register. */
static uintptr_t hidden_block(const char *register_name)
{
    void *block = malloc(112);
    printf("kept_in_register %s %p\n", register_name, block);
    return (uintptr_t)block ^ HIDING_KEY;
}

/* Keeps a block's address only in ymm8's upper half (its lower half
 * zero), spinning. */
__attribute__((target("avx2"))) static void spin_holding_ymm(void)
{
    uintptr_t hidden = hidden_block("ymm8");
    pthread_barrier_wait(&started);
    __asm__ volatile("mov %0, %%rax\n\t"
                     "xor %1, %%rax\n\t"
                     "vmovq %%rax, %%xmm9\n\t"
                     "vpxor %%xmm8, %%xmm8, %%xmm8\n\t"
                     "vinserti128 $1, %%xmm9, %%ymm8, %%ymm8\n\t"
                     "vpxor %%xmm9, %%xmm9, %%xmm9\n\t"
                     "xor %%rax, %%rax\n"
                     "1:\n\t"
                     "pause\n\t"
                     "cmpl $0, %2\n\t"
                     "je 1b\n\t"
                     "vpxor %%xmm8, %%xmm8, %%xmm8"
                     :
                     : "m"(hidden), "r"((uintptr_t)HIDING_KEY), "m"(stop_spinning)
                     : "rax", "xmm8", "xmm9", "memory");
}

/* As above, and three more blocks: one in mask register k1, one in bits
 * 256-319 of zmm10 (the rest zero), one in zmm24. */
__attribute__((target("avx2,avx512f,avx512bw"))) static void spin_holding_zmm(void)
{
    uintptr_t hidden[4] = {hidden_block("ymm8"), hidden_block("k1"),
                           hidden_block("zmm10"), hidden_block("zmm24")};
    pthread_barrier_wait(&started);
    __asm__ volatile("mov %0, %%rax\n\t"
                     "xor %4, %%rax\n\t"
                     "vmovq %%rax, %%xmm9\n\t"
                     "vpxor %%xmm8, %%xmm8, %%xmm8\n\t"
                     "vinserti128 $1, %%xmm9, %%ymm8, %%ymm8\n\t"
                     "mov %1, %%rax\n\t"
                     "xor %4, %%rax\n\t"
                     "kmovq %%rax, %%k1\n\t"
                     "mov %2, %%rax\n\t"
                     "xor %4, %%rax\n\t"
                     "vmovq %%rax, %%xmm9\n\t"
                     "vpxor %%xmm10, %%xmm10, %%xmm10\n\t"
                     "vinserti64x4 $1, %%ymm9, %%zmm10, %%zmm10\n\t"
                     "mov %3, %%rax\n\t"
                     "xor %4, %%rax\n\t"
                     "vmovq %%rax, %%xmm24\n\t"
                     "vpxor %%xmm9, %%xmm9, %%xmm9\n\t"
                     "xor %%rax, %%rax\n"
                     "1:\n\t"
                     "pause\n\t"
                     "cmpl $0, %5\n\t"
                     "je 1b\n\t"
                     "vpxor %%xmm8, %%xmm8, %%xmm8\n\t"
                     "vpxord %%xmm24, %%xmm24, %%xmm24\n\t"
                     "vpxor %%xmm10, %%xmm10, %%xmm10\n\t"
                     "kxorq %%k1, %%k1, %%k1"
                     :
                     : "m"(hidden[0]), "m"(hidden[1]), "m"(hidden[2]),
                       "m"(hidden[3]), "r"((uintptr_t)HIDING_KEY),
                       "m"(stop_spinning)
                     : "rax", "xmm8", "xmm9", "xmm10", "xmm24", "k1", "memory");
}

static bool has_avx512(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

static void *vector_thread(void *unused)
{
    (void)unused;
    if (has_avx512())
        spin_holding_zmm();
    else
        spin_holding_ymm();
    return NULL;
}

/* A thread on a stack of our own, unmapped after it ends: the block only
 * its stack knew is leaked. */
static void *forgetting_thread(void *unused)
{
    (void)unused;
    void *volatile on_stack = malloc(56);
    report_leak("exited", on_stack);
    return NULL;
}

/* A joinable thread on a stack glibc makes: once joined, the stack
 * stays mapped, whole, in glibc's cache of stacks for later threads.  Its
 * block is known only to that dead stack, so it is leaked. */
static void *cached_thread(void *unused)
{
    (void)unused;
    void *volatile on_stack = malloc(80);
    report_leak("cached", on_stack);
    return NULL;
}

/* After the other threads have started, so that none of them is given
 * the cached stack. */
static void run_cached_thread(void)
{
    pthread_t thread;
    pthread_create(&thread, NULL, cached_thread, NULL);
    pthread_join(thread, NULL);
}

/* Stack below main's frame keeps stale copies of the leaked blocks'
 * addresses, left by the calls that made them; the calls main makes next
 * (fgets, read) reuse that stack without writing every slot, and a
 * conservative scan would take such a copy for a live pointer.  Zeroing
 * it keeps the test about the roots it means to test. */
__attribute__((noinline)) static void scrub_stack(void)
{
    volatile char dead[64 << 10];
    memset((char *)dead, 0, sizeof(dead));
    __asm__ volatile("" ::: "memory");
}

static void run_forgetting_thread(void)
{
    size_t size = 256 << 10;
    void *stack = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_attr_t attributes;
    pthread_t thread;
    pthread_attr_init(&attributes);
    pthread_attr_setstack(&attributes, stack, size);
    pthread_create(&thread, &attributes, forgetting_thread, NULL);
    pthread_join(thread, NULL);
    munmap(stack, size);
}

/* Gives a block to the module, whose global is then its only root;
 * false when the module cannot be loaded. */
__attribute__((noinline)) static bool keep_in_plugin(const char *path)
{
    void *module = dlopen(path, RTLD_NOW);
    void (*keep)(void *) =
        module ? (void (*)(void *))dlsym(module, "leaks_plugin_keep") : NULL;
    if (!keep) {
        fprintf(stderr, "leaks_target: cannot use the module %s: %s\n", path,
                dlerror());
        return false;
    }
    void *block = malloc(136);
    keep(block);
    printf("kept %p\n", block);
    return true;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    bool at_exit = argc > 1 && strcmp(argv[1], "exit") == 0;
    printf("pid %d\n", (int)getpid());
    global_keep = malloc(200);
    global_interior = (char *)malloc(300) + 150;
    printf("kept %p\nkept %p\n", global_keep, global_interior - 150);
    bss_tail[19999] = malloc(140);
    printf("kept %p\n", bss_tail[19999]);
    void **area = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    area[100] = malloc(120);
    printf("kept %p\n", area[100]);
    const char *plugin = getenv("LEAKS_TARGET_PLUGIN");
    if (plugin && !keep_in_plugin(plugin))
        return 1;
    make_leaked_list();
    make_cycle();
    volatile uintptr_t hidden = make_hidden();
    (void)hidden;
    run_forgetting_thread();
    malloc_zone_t *zone = malloc_create_zone(0, 0);
    malloc_set_zone_name(zone, "LeakZone");
    report_leak("zone", malloc_zone_malloc(zone, 64));
    pthread_t threads[3];
    bool vector = !at_exit && __builtin_cpu_supports("avx2");
    pthread_barrier_init(&started, NULL, at_exit ? 1 : 3 + vector);
    if (!at_exit) {
        pthread_create(&threads[0], NULL, holding_thread, NULL);
        pthread_create(&threads[1], NULL, spinning_thread, NULL);
    }
    if (vector)
        pthread_create(&threads[2], NULL, vector_thread, NULL);
    pthread_barrier_wait(&started);
    run_cached_thread();
    scrub_stack();
    printf("ready\n");
    if (at_exit)
        return 0;
    char line[64];
    while (fgets(line, sizeof(line), stdin))
        printf("alive\n");
    stop_spinning = 1;
    pthread_join(threads[0], NULL);
    pthread_join(threads[1], NULL);
    if (vector)
        pthread_join(threads[2], NULL);
    return 0;
}
