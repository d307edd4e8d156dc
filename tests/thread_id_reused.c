/*
 * Preloaded ahead of the library by check_stack_logging: every thread
 * but the main one is given the same id when the library asks the kernel
 * for it (syscall(SYS_gettid)), as if each new thread were given the id
 * of one that ended, as the kernel does once thread ids wrap around.
 * The first such answer says so on standard error, with the id, so that
 * a test knows the ids were there to be shared.  x86-64 only: the other system calls
 * are passed on with the instruction itself, since looking the C
 * library's syscall up could allocate, and the allocator makes system
 * calls of its own.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)

#define SHARED_THREAD_ID 2147418113
#define SAID(x) #x
#define SAY(x) SAID(x)

static long raw_syscall(long number, long a1, long a2, long a3, long a4,
                        long a5, long a6)
{
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    register long r9 __asm__("r9") = a6;
    long result;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(number), "D"(a1), "S"(a2), "d"(a3), "r"(r10),
                       "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return result;
}

long syscall(long number, ...);

long syscall(long number, ...)
{
    va_list arguments;
    va_start(arguments, number);
    long a[6];
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(arguments, long);
    va_end(arguments);
    long result = raw_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
    if (number == SYS_gettid && result != getpid()) {
        static int announced;
        if (!__atomic_exchange_n(&announced, 1, __ATOMIC_RELAXED)) {
            static const char note[] =
                "thread_id_reused " SAY(SHARED_THREAD_ID) "\n";
            ssize_t written = write(2, note, sizeof(note) - 1);
            (void)written;
        }
        return SHARED_THREAD_ID;
    }
    if (result < 0 && result > -4096) {
        errno = (int)-result;
        return -1;
    }
    return result;
}

#endif
