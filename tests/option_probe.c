/*
 * A program for check_options: started with Malloc* variables set, it
 * does one thing named by its argument and prints what it saw, so the
 * test can compare that with what the options promise.
 */
#include <errno.h>
#include <malloc/malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile unsigned char sink;

/* The first and last bytes of a block, and whether all are `byte`. */
static void show(const char *label, const unsigned char *block, size_t size,
                 unsigned char byte)
{
    size_t same = 0;
    for (size_t i = 0; i < size; i++)
        same += block[i] == byte;
    printf("%s %02x %02x %s\n", label, block[0], block[size - 1],
           same == size ? "all" : "not-all");
}

static int fill(void)
{
    unsigned char *fresh = malloc(48);
    show("malloc", fresh, 48, 0xaa);
    unsigned char *cleared = calloc(6, 8);
    show("calloc", cleared, 48, 0x00);
    memset(fresh, 0x11, 48);
    free(fresh);
    /* Still in this thread's cache: reading it shows the freed fill. */
    show("freed", fresh, 48, fresh[0]);
    unsigned char *grown = malloc(32);
    memset(grown, 0x22, 32);
    grown = realloc(grown, 400);
    show("realloc-head", grown, 32, 0x22);
    show("realloc-tail", grown + 32, 368, 0xaa);
    free(grown);
    free(cleared);
    return 0;
}

static int double_free(void)
{
    void *block = malloc(24);
    free(block);
    free(block);
    puts("went on");
    return 0;
}

static int fail(void)
{
    unsigned ok = 0, failed = 0, bad_errno = 0;
    char pattern[201] = {0};
    for (int i = 0; i < 200; i++) {
        errno = 0;
        void *block = malloc(16);
        pattern[i] = block ? '.' : 'x';
        ok += block != NULL;
        failed += block == NULL;
        bad_errno += block == NULL && errno != ENOMEM;
        free(block);
    }
    printf("ok %u failed %u bad-errno %u\n%s\n", ok, failed, bad_errno, pattern);
    return 0;
}

static int huge(void)
{
    errno = 0;
    void *block = malloc((size_t)1 << 46);
    printf("%s errno=%s\n", block ? "allocated" : "null",
           errno == ENOMEM ? "ENOMEM" : "other");
    return 0;
}

/* A zone that owns nothing and whose check always fails, so that
 * MallocCheckHeap has something to find without damaging the real heap. */
static boolean_t failing_check(malloc_zone_t *zone) { return 0; }
static size_t owns_nothing(malloc_zone_t *zone, const void *pointer) { return 0; }

static int check_heap(void)
{
    static malloc_introspection_t introspect = {.check = failing_check};
    static malloc_zone_t broken = {.size = owns_nothing,
                                   .zone_name = "BrokenZone",
                                   .introspect = &introspect,
                                   .version = 10};
    malloc_zone_register(&broken);
    for (int i = 0; i < 50; i++)
        free(malloc(8));
    malloc_zone_unregister(&broken);
    puts("went on");
    return 0;
}

int main(int argc, char **argv)
{
    const char *action = argc > 1 ? argv[1] : "";
    if (strcmp(action, "fill") == 0)
        return fill();
    if (strcmp(action, "double-free") == 0)
        return double_free();
    if (strcmp(action, "fail") == 0)
        return fail();
    if (strcmp(action, "huge") == 0)
        return huge();
    if (strcmp(action, "check-heap") == 0)
        return check_heap();
    if (strcmp(action, "nothing") == 0)
        return puts("ran") < 0;
    fprintf(stderr, "option_probe: unknown action '%s'\n", action);
    return 2;
}
