/*
 * Allocates through a function the compiler inlines into its caller
 * (built with -O2 and debug information), for the tests of inlined
 * frames: run with stack logging, it prints "pid N", the block and the
 * source lines of the inlined malloc call and of the inlined call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int malloc_line, call_line;

static inline __attribute__((always_inline)) void *
inlined_allocation(size_t size)
{
    malloc_line = __LINE__; void *block = malloc(size);
    __asm__ volatile("" ::: "memory"); /* a call, not a jump to malloc */
    return block;
}

__attribute__((noinline, noclone)) static void *
allocate_through_inline(size_t size)
{
    call_line = __LINE__; void *block = inlined_allocation(size);
    __asm__ volatile("" ::: "memory");
    return block;
}

int main(void)
{
    void *block = allocate_through_inline(4242);
    printf("pid %d\nblock %p\nmalloc_line %d\ncall_line %d\n", (int)getpid(),
           block, malloc_line, call_line);
    return 0; /* the block stays: live at the end of the log */
}
