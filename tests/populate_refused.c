/*
 * Preloaded ahead of the C library by check_stack_logging: madvise
 * refuses MADV_POPULATE_WRITE, with EINVAL as a kernel before 5.14 does,
 * or with ENOSPC as a full file system does when
 * MDTEST_POPULATE_ERROR=ENOSPC.  The first refusal says so on standard
 * error, so that a test knows the refusals were there to be survived.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

int madvise(void *address, size_t length, int advice);

int madvise(void *address, size_t length, int advice)
{
    static int announced;
    if (advice != MADV_POPULATE_WRITE)
        return (int)syscall(SYS_madvise, address, length, advice);
    const char *error = getenv("MDTEST_POPULATE_ERROR");
    if (!__atomic_exchange_n(&announced, 1, __ATOMIC_RELAXED)) {
        static const char note[] = "populate_refused: refused MADV_POPULATE_WRITE\n";
        ssize_t written = write(2, note, sizeof(note) - 1);
        (void)written;
    }
    errno = error && strcmp(error, "ENOSPC") == 0 ? ENOSPC : EINVAL;
    return -1;
}
