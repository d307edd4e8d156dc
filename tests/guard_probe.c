/*
 * A program for check_guard_malloc: started with MallocGuardMalloc and
 * its controls set, it does one thing named by its arguments and prints
 * what it saw.  Accesses that should fault print the address they are
 * about to touch ("expect 0x...") and a SIGSEGV handler prints the
 * address that faulted ("fault 0x..."), then lets the signal kill the
 * process, so the test can tell that it died at that very access.
 */
#include <malloc/malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void write_text(const char *text)
{
    size_t left = strlen(text);
    while (left) {
        ssize_t n = write(STDOUT_FILENO, text, left);
        if (n <= 0)
            return;
        text += n;
        left -= (size_t)n;
    }
}

/* Async-signal-safe: formats by hand and writes. */
static void on_fault(int signal, siginfo_t *info, void *context)
{
    char text[40] = "fault 0x";
    char digits[20];
    uintptr_t address = (uintptr_t)info->si_addr;
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[address % 16];
        address /= 16;
    } while (address);
    size_t length = strlen(text);
    while (n > 0)
        text[length++] = digits[--n];
    text[length++] = '\n';
    text[length] = '\0';
    write_text(text);
    /* SA_RESETHAND restored the default action: returning repeats the
     * access, which now kills the process. */
}

static void catch_faults(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigaction(SIGSEGV, &action, NULL);
}

static void expect_fault_at(const volatile unsigned char *address)
{
    printf("expect %p\n", (void *)address);
    fflush(stdout);
}

static void write_byte(volatile unsigned char *address)
{
    expect_fault_at(address);
    *address = 0x42;
    puts("survived");
}

static void read_byte(volatile unsigned char *address)
{
    expect_fault_at(address);
    unsigned value = *address;
    printf("survived read %02x\n", value);
}

/* write|read SIZE OFFSET: one access at OFFSET (may be negative) in a
 * fresh block of SIZE bytes. */
static int access_block(const char *kind, long size, long offset)
{
    volatile unsigned char *block = malloc((size_t)size);
    printf("size %zu\n", malloc_size((void *)block));
    if (strcmp(kind, "write") == 0)
        write_byte(block + offset);
    else
        read_byte(block + offset);
    return 0;
}

/* after-free write|read: touches the first byte of a freed block. */
static int after_free(const char *kind)
{
    volatile unsigned char *block = malloc(100);
    block[0] = 1;
    free((void *)block);
    if (strcmp(kind, "write") == 0)
        write_byte(block);
    else
        read_byte(block);
    return 0;
}

/* A pointer kept across realloc points at the quarantine. */
static int after_realloc(void)
{
    volatile unsigned char *block = malloc(100);
    block[0] = 7;
    volatile unsigned char *moved = realloc((void *)block, 50);
    printf("moved %s kept %02x\n", moved != block ? "yes" : "no", moved[0]);
    read_byte(block);
    return 0;
}

static void show(const char *label, const unsigned char *block, size_t size,
                 unsigned char byte)
{
    size_t same = 0;
    for (size_t i = 0; i < size; i++)
        same += block[i] == byte;
    printf("%s %zu %02x %02x %s\n", label, size, block[0], block[size - 1],
           same == size ? "all" : "not-all");
}

static int fill(void)
{
    unsigned char *fresh = malloc(100);
    show("malloc", fresh, malloc_size(fresh), 0x55);
    unsigned char *cleared = calloc(10, 10);
    show("calloc", cleared, malloc_size(cleared), 0x00);
    unsigned char *aligned = NULL;
    if (posix_memalign((void **)&aligned, 256, 300) != 0)
        return 1;
    show("memalign", aligned, malloc_size(aligned), 0x55);
    free(fresh);
    free(cleared);
    free(aligned);
    return 0;
}

static bool is_mapped(const void *address)
{
    uintptr_t page = (uintptr_t)address & ~(uintptr_t)4095;
    return msync((void *)page, 4096, MS_ASYNC) == 0;
}

/* quarantine COUNT SIZE: frees COUNT blocks of SIZE bytes, oldest first,
 * and tells whether the first and the last freed are still mapped. */
static int quarantine(long count, long size)
{
    void **blocks = calloc((size_t)count, sizeof(void *));
    for (long i = 0; i < count; i++)
        blocks[i] = malloc((size_t)size);
    for (long i = 0; i < count; i++)
        free(blocks[i]);
    printf("first %s last %s\n", is_mapped(blocks[0]) ? "mapped" : "unmapped",
           is_mapped(blocks[count - 1]) ? "mapped" : "unmapped");
    free(blocks);
    return 0;
}

static int bad_frees(void)
{
    char local[32];
    char *block = malloc(64);
    free(block);
    free(block);                          /* double free */
    free(block + 16);                     /* freed interior */
    char *live = malloc(64);
    free(live + 8);                       /* live interior */
    void *stack = local;
    __asm__ volatile("" : "+r"(stack));
    free(stack);                          /* stack */
    void *stale = realloc(block, 10);     /* realloc of a freed block */
    printf("realloc %s\n", stale ? "non-null" : "null");
    live[0] = 1;                          /* untouched, still usable */
    free(live);
    puts("went on");
    printf("check %d\n", malloc_zone_check(NULL));
    return 0;
}

static int strict_sizes(void)
{
    for (size_t size = 1; size <= 33; size += 8) {
        unsigned char *block = malloc(size);
        printf("%zu:%zu:%s ", size, malloc_size(block),
               ((uintptr_t)block + size) % 4096 == 0 ? "at-guard" : "gap");
        free(block);
    }
    unsigned char *aligned = NULL;
    if (posix_memalign((void **)&aligned, 64, 13) != 0)
        return 1;
    printf("memalign %s\n", (uintptr_t)aligned % 64 == 0 ? "aligned" : "unaligned");
    return 0;
}

static int nothing(void)
{
    unsigned char *block = malloc(48);
    show("malloc", block, 48, 0x00);
    puts("ran");
    return 0;
}

int main(int argc, char **argv)
{
    const char *action = argc > 1 ? argv[1] : "";
    catch_faults();
    setvbuf(stdout, NULL, _IONBF, 0);
    if (strcmp(action, "access") == 0 && argc == 5)
        return access_block(argv[2], atol(argv[3]), atol(argv[4]));
    if (strcmp(action, "after-free") == 0 && argc == 3)
        return after_free(argv[2]);
    if (strcmp(action, "after-realloc") == 0)
        return after_realloc();
    if (strcmp(action, "fill") == 0)
        return fill();
    if (strcmp(action, "quarantine") == 0 && argc == 4)
        return quarantine(atol(argv[2]), atol(argv[3]));
    if (strcmp(action, "bad-frees") == 0)
        return bad_frees();
    if (strcmp(action, "strict-sizes") == 0)
        return strict_sizes();
    if (strcmp(action, "nothing") == 0)
        return nothing();
    fprintf(stderr, "guard_probe: unknown action '%s'\n", action);
    return 2;
}
