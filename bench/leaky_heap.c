/*
 * A heap for timing leaks: `leaky_heap COUNT SIZE wait|exit` allocates
 * COUNT blocks of SIZE bytes, kept in a table (itself a block) except one
 * in a thousand, which is leaked.  "wait" prints "ready" and waits for
 * end of input, for leaks PID; "exit" returns at once, for a scan at exit
 * (LeakSanitizer, leaks --atExit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: leaky_heap COUNT SIZE wait|exit\n");
        return 2;
    }
    size_t count = strtoul(argv[1], NULL, 10), size = strtoul(argv[2], NULL, 10);
    /* The table stays reachable to the end, from this global. */
    static void **volatile keep;
    void **table = keep = malloc(count * sizeof(*table));
    if (!table)
        return 1;
    for (size_t i = 0; i < count; i++) {
        char *block = malloc(size);
        if (!block)
            return 1;
        memset(block, (int)(i & 0x7f), size);
        /* Every 64th block also points to the next one: some depth. */
        if (i % 64 == 1)
            memcpy(block, &table[i - 1], sizeof(void *));
        table[i] = i % 1000 == 999 ? NULL : block;
    }
    if (strcmp(argv[3], "wait") == 0) {
        printf("ready\n");
        fflush(stdout);
        char line[16];
        while (fgets(line, sizeof(line), stdin))
            continue;
    }
    return 0;
}
