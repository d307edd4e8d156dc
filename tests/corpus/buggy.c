/*
 * The corpus of buggy programs.  `buggy CASE` commits exactly one heap
 * bug, the way a real program would, and then carries on as if nothing
 * had happened: it allocates some more (so that a periodic heap check
 * runs), frees the damaged block, prints "survived" and exits 0.
 * `buggy --list` prints every case with a one-line description.
 *
 * Before the bug it prints "block 0x..." (the address the bug is about)
 * and flushes, so that whoever runs it can tell whether a report names
 * the right block.  The uninitialised reads also print "first word
 * 0x...", what the program read.
 *
 * It is not linked with the library: it runs under LD_PRELOAD, as users'
 * programs do.  It is built with -fno-builtin so that the compiler keeps
 * every malloc, free and memcpy, and it hides its pointers and sizes
 * behind launder() so that even an optimising build cannot prove a bug
 * and drop or rewrite it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TINY_SIZE 24UL
#define SMALL_SIZE 3000UL
#define LARGE_SIZE 300000UL
#define MiB (1024UL * 1024UL)

/* What the bugs write: distinct from the library's fill bytes (0xaa for
 * new blocks, 0x55 for freed ones, 0 for zeroed ones). */
#define BUG_BYTE 0x42
/* What a block held before it was freed, in the uninitialised reads. */
#define STALE_BYTE 0x11

enum write_method {
    BY_STORES, /* a loop of byte stores */
    BY_MEMCPY, /* one call to memcpy */
};

struct bug_case {
    const char *name;
    void (*commit)(const struct bug_case *bug);
    size_t size;   /* of the block the bug is about */
    size_t amount; /* bytes out of bounds, or an offset into the block */
    enum write_method method;
    const char *description;
};

/* Hides where a pointer or a size comes from, so that the compiler can
 * neither warn about the bug nor optimise it away. */
static void *launder(void *pointer)
{
    __asm__ volatile("" : "+r"(pointer));
    return pointer;
}

static size_t launder_size(size_t size)
{
    __asm__ volatile("" : "+r"(size));
    return size;
}

/* The source of the overrunning copies: as big as the largest one. */
static unsigned char copy_source[LARGE_SIZE + MiB];

/* stdout gets a buffer outside the heap: stdio would otherwise malloc one
 * in the middle of the blocks under test, where a bug could damage it. */
static char stdout_buffer[4096];

static void announce(const void *address)
{
    printf("block %p\n", address);
    fflush(stdout);
}

static void survived(void)
{
    puts("survived");
    fflush(stdout);
}

static void *allocate(size_t size)
{
    void *block = malloc(size);
    if (!block) {
        fprintf(stderr, "buggy: malloc(%zu) failed\n", size);
        exit(4);
    }
    return launder(block);
}

static void fill(void *block, size_t size, unsigned seed)
{
    unsigned char *bytes = block;
    for (size_t i = 0; i < size; i++)
        bytes[i] = (unsigned char)(i * 31 + seed);
}

static int holds_fill(const void *block, size_t size, unsigned seed)
{
    const unsigned char *bytes = block;
    for (size_t i = 0; i < size; i++)
        if (bytes[i] != (unsigned char)(i * 31 + seed))
            return 0;
    return 1;
}

#define LATER_BLOCKS 6

/* What the program does after the bug: allocates, uses and frees a few
 * blocks of the same size.  A periodic heap check runs during these
 * calls, and a free block that was damaged may be handed out again.  If
 * the allocator was corrupted (a block handed out twice, or one that is
 * also still in use as `in_use`), the program says so and exits 3. */
static void carry_on(size_t size, const void *in_use)
{
    unsigned char *later[LATER_BLOCKS];
    for (unsigned i = 0; i < LATER_BLOCKS; i++) {
        later[i] = allocate(size);
        fill(later[i], size, i);
    }
    for (unsigned i = 0; i < LATER_BLOCKS; i++) {
        int twice = later[i] == in_use;
        for (unsigned j = 0; j < i; j++)
            twice |= later[i] == later[j];
        if (twice || !holds_fill(later[i], size, i)) {
            printf("heap damaged: block %p %s\n", (void *)later[i],
                   twice ? "handed out twice" : "changed under the program");
            fflush(stdout);
            exit(3);
        }
    }
    for (unsigned i = 0; i < LATER_BLOCKS; i++)
        free(later[i]);
}

/* The block under test between two others of the same size, as in any
 * program that has data of its own: out-of-bounds writes land in the
 * heap, not in whatever memory happens to border a lone block. */
struct neighbourhood {
    unsigned char *before, *victim, *after;
};

static struct neighbourhood allocate_neighbourhood(size_t size)
{
    struct neighbourhood n;
    n.before = allocate(size);
    n.victim = allocate(size);
    n.after = allocate(size);
    fill(n.before, size, 1);
    fill(n.victim, size, 2);
    fill(n.after, size, 3);
    return n;
}

static void free_neighbourhood(struct neighbourhood *n)
{
    free(n->victim); /* first: the damaged block is the one to report */
    free(n->before);
    free(n->after);
}

/* Writes `length` bytes from `start`, by a loop of byte stores or by one
 * memcpy. */
static void write_bytes(unsigned char *start, size_t length,
                        enum write_method method)
{
    if (method == BY_MEMCPY) {
        memset(copy_source, BUG_BYTE, length);
        memcpy(launder(start), copy_source, launder_size(length));
        return;
    }
    volatile unsigned char *out = launder(start);
    for (size_t i = 0; i < launder_size(length); i++)
        out[i] = BUG_BYTE;
}

/* A loop or a copy that runs `amount` bytes too far: [0, size + amount). */
static void commit_overrun(const struct bug_case *bug)
{
    struct neighbourhood n = allocate_neighbourhood(bug->size);
    announce(n.victim);
    write_bytes(n.victim, bug->size + bug->amount, bug->method);
    carry_on(bug->size, n.victim);
    free_neighbourhood(&n);
    survived();
}

/* A loop or a copy that starts `amount` bytes too early:
 * [-amount, size - amount). */
static void commit_underrun(const struct bug_case *bug)
{
    struct neighbourhood n = allocate_neighbourhood(bug->size);
    announce(n.victim);
    write_bytes(n.victim - launder_size(bug->amount), bug->size, bug->method);
    carry_on(bug->size, n.victim);
    free_neighbourhood(&n);
    survived();
}

static void commit_double_free_immediate(const struct bug_case *bug)
{
    unsigned char *block = allocate(bug->size);
    fill(block, bug->size, 1);
    announce(block);
    free(block);
    free(block);
    carry_on(bug->size, NULL);
    survived();
}

/* The second free comes after unrelated work, in other size classes so
 * that the freed block is not handed out again meanwhile. */
static void commit_double_free_delayed(const struct bug_case *bug)
{
    unsigned char *block = allocate(bug->size);
    fill(block, bug->size, 1);
    free(block);
    void *work[20];
    for (unsigned i = 0; i < 20; i++) {
        work[i] = allocate(200 + i * 40);
        fill(work[i], 200 + i * 40, i);
    }
    for (unsigned i = 0; i < 20; i += 2)
        free(work[i]);
    announce(block);
    free(block);
    carry_on(bug->size, NULL);
    for (unsigned i = 1; i < 20; i += 2)
        free(work[i]);
    survived();
}

/* free(a), free(b), free(a): the pattern that defeats allocators which
 * only compare with the last block freed. */
static void commit_double_free_interleaved(const struct bug_case *bug)
{
    unsigned char *a = allocate(bug->size), *b = allocate(bug->size);
    fill(a, bug->size, 1);
    fill(b, bug->size, 2);
    announce(a);
    free(a);
    free(b);
    free(a);
    carry_on(bug->size, NULL);
    survived();
}

/* free(a); b = malloc(same size), most likely a again; free(a) then frees
 * b's block, and free(b) is the double free.  Whichever of the two frees
 * is reported, it names the same address. */
static void commit_double_free_after_reuse(const struct bug_case *bug)
{
    unsigned char *a = allocate(bug->size);
    fill(a, bug->size, 1);
    free(a);
    unsigned char *b = allocate(bug->size);
    fill(b, bug->size, 2);
    announce(a);
    free(a);
    free(b);
    carry_on(bug->size, NULL);
    survived();
}

/* Frees `pointer`, which no allocator handed out. */
static void free_invalid(void *pointer)
{
    announce(pointer);
    free(launder(pointer));
}

static void commit_free_stack(const struct bug_case *bug)
{
    char buffer[64];
    memset(buffer, 1, sizeof(buffer));
    free_invalid(buffer);
    carry_on(bug->size, NULL);
    survived();
}

static char global_buffer[64];

static void commit_free_global(const struct bug_case *bug)
{
    free_invalid(global_buffer);
    carry_on(bug->size, NULL);
    survived();
}

/* A pointer `amount` bytes into a block (amount 0: half way). */
static void commit_free_interior(const struct bug_case *bug)
{
    unsigned char *block = allocate(bug->size);
    fill(block, bug->size, 1);
    free_invalid(block + (bug->amount ? bug->amount : bug->size / 2));
    carry_on(bug->size, block);
    free(block);
    survived();
}

static void commit_free_far(const struct bug_case *bug)
{
    free_invalid((void *)(uintptr_t)bug->amount);
    carry_on(TINY_SIZE, NULL);
    survived();
}

/* Stores one byte `amount` bytes into a block after freeing it, then
 * allocates the same size, which likely hands the block out again. */
static void commit_write_after_free(const struct bug_case *bug)
{
    unsigned char *block = allocate(bug->size);
    fill(block, bug->size, 1);
    announce(block);
    free(block);
    volatile unsigned char *stale = launder(block);
    stale[bug->amount] = BUG_BYTE;
    unsigned char *again = allocate(bug->size);
    fill(again, bug->size, 2);
    carry_on(bug->size, again);
    free(again);
    survived();
}

/* Reads a fresh block before writing it.  The block's memory held other
 * data a moment ago, as in a program that has been running a while. */
static void commit_uninitialised_read(const struct bug_case *bug)
{
    unsigned char *old = allocate(bug->size);
    memset(old, STALE_BYTE, bug->size);
    free(old);
    unsigned char *block = allocate(bug->size);
    announce(block);
    uint64_t first_word;
    memcpy(&first_word, launder(block), sizeof(first_word));
    printf("first word 0x%016llx\n", (unsigned long long)first_word);
    free(block);
    survived();
}

#define FAR_LOW 0x10000000000UL
#define FAR_TOP ((uintptr_t)-4096 & ~(uintptr_t)15)

/* The table's families.  `how` names the method in the case name;
 * `doer` says it in the description ("byte stores run ..."). */
#define OVERRUN(class, size, amount, amount_name, amount_text, how, doer, method) \
    {"overrun-" class "-" amount_name "-" how, commit_overrun, size, amount,    \
     method, doer " " amount_text " past the end of a " class " block"}
#define OVERRUNS(class, size, how, doer, method)                          \
    OVERRUN(class, size, 1, "1", "1 byte", how, doer, method),            \
        OVERRUN(class, size, 8, "8", "8 bytes", how, doer, method),       \
        OVERRUN(class, size, 32, "32", "32 bytes", how, doer, method),    \
        OVERRUN(class, size, MiB, "1m", "1 MiB", how, doer, method)
#define UNDERRUN(class, size, amount, amount_name, amount_text, how, doer,   \
                 method)                                                     \
    {"underrun-" class "-" amount_name "-" how, commit_underrun, size,       \
     amount, method, doer " from " amount_text " before a " class " block"}
#define UNDERRUNS(class, size, how, doer, method)                   \
    UNDERRUN(class, size, 1, "1", "1 byte", how, doer, method),     \
        UNDERRUN(class, size, 8, "8", "8 bytes", how, doer, method)
#define WRITE_AFTER_FREE(class, size, offset)                               \
    {"write-after-free-" class "-" #offset, commit_write_after_free, size,  \
     offset, BY_STORES,                                                     \
     "stores a byte at offset " #offset " of a freed " class " block"}

static const struct bug_case bug_cases[] = {
    OVERRUNS("tiny", TINY_SIZE, "store", "byte stores run", BY_STORES),
    OVERRUNS("tiny", TINY_SIZE, "memcpy", "a memcpy runs", BY_MEMCPY),
    OVERRUNS("small", SMALL_SIZE, "store", "byte stores run", BY_STORES),
    OVERRUNS("small", SMALL_SIZE, "memcpy", "a memcpy runs", BY_MEMCPY),
    OVERRUNS("large", LARGE_SIZE, "store", "byte stores run", BY_STORES),
    OVERRUNS("large", LARGE_SIZE, "memcpy", "a memcpy runs", BY_MEMCPY),
    UNDERRUNS("tiny", TINY_SIZE, "store", "byte stores run", BY_STORES),
    UNDERRUNS("tiny", TINY_SIZE, "memcpy", "a memcpy runs", BY_MEMCPY),
    UNDERRUNS("small", SMALL_SIZE, "store", "byte stores run", BY_STORES),
    UNDERRUNS("small", SMALL_SIZE, "memcpy", "a memcpy runs", BY_MEMCPY),
    UNDERRUNS("large", LARGE_SIZE, "store", "byte stores run", BY_STORES),
    UNDERRUNS("large", LARGE_SIZE, "memcpy", "a memcpy runs", BY_MEMCPY),
    {"double-free-immediate-tiny", commit_double_free_immediate, TINY_SIZE, 0,
     BY_STORES, "frees a tiny block twice in a row"},
    {"double-free-immediate-small", commit_double_free_immediate, SMALL_SIZE,
     0, BY_STORES, "frees a small block twice in a row"},
    {"double-free-immediate-large", commit_double_free_immediate, LARGE_SIZE,
     0, BY_STORES, "frees a large block twice in a row"},
    {"double-free-delayed", commit_double_free_delayed, TINY_SIZE, 0,
     BY_STORES, "frees a tiny block again after other allocations"},
    {"double-free-interleaved", commit_double_free_interleaved, TINY_SIZE, 0,
     BY_STORES, "free(a), free(b), free(a) on tiny blocks"},
    {"double-free-after-reuse", commit_double_free_after_reuse, TINY_SIZE, 0,
     BY_STORES,
     "free(a), b = malloc of the same size, free(a), free(b) (tiny)"},
    {"free-stack", commit_free_stack, TINY_SIZE, 0, BY_STORES,
     "frees the address of a local array"},
    {"free-global", commit_free_global, TINY_SIZE, 0, BY_STORES,
     "frees the address of a global array"},
    {"free-interior-8", commit_free_interior, TINY_SIZE, 8, BY_STORES,
     "frees a pointer 8 bytes into a tiny block"},
    {"free-interior-half", commit_free_interior, LARGE_SIZE, 0, BY_STORES,
     "frees a pointer half way into a large block"},
    {"free-unaligned", commit_free_interior, SMALL_SIZE, 1, BY_STORES,
     "frees a pointer 1 byte into a small block"},
    {"free-far", commit_free_far, 0, FAR_LOW, BY_STORES,
     "frees 0x10000000000, far from any mapping"},
    {"free-far-top", commit_free_far, 0, FAR_TOP, BY_STORES,
     "frees 0xfffffffffffff000, the start of the last page of the address space"},
    WRITE_AFTER_FREE("tiny", TINY_SIZE, 0),
    WRITE_AFTER_FREE("tiny", TINY_SIZE, 8),
    WRITE_AFTER_FREE("small", SMALL_SIZE, 0),
    WRITE_AFTER_FREE("small", SMALL_SIZE, 8),
    WRITE_AFTER_FREE("large", LARGE_SIZE, 0),
    WRITE_AFTER_FREE("large", LARGE_SIZE, 8),
    {"uninitialised-tiny", commit_uninitialised_read, TINY_SIZE, 0, BY_STORES,
     "reads the first word of a new tiny block before writing it"},
    {"uninitialised-small", commit_uninitialised_read, SMALL_SIZE, 0,
     BY_STORES, "reads the first word of a new small block before writing it"},
    {"uninitialised-large", commit_uninitialised_read, LARGE_SIZE, 0,
     BY_STORES, "reads the first word of a new large block before writing it"},
};

#define CASE_COUNT (sizeof(bug_cases) / sizeof(bug_cases[0]))

int main(int argc, char **argv)
{
    setvbuf(stdout, stdout_buffer, _IOFBF, sizeof(stdout_buffer));
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < CASE_COUNT; i++)
            printf("%s\t%s\n", bug_cases[i].name, bug_cases[i].description);
        return 0;
    }
    for (size_t i = 0; argc == 2 && i < CASE_COUNT; i++)
        if (strcmp(argv[1], bug_cases[i].name) == 0) {
            bug_cases[i].commit(&bug_cases[i]);
            return 0;
        }
    fprintf(stderr, "usage: buggy CASE | --list (see buggy --list)\n");
    return 2;
}
