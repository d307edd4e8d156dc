/*
 * first_touch: what fresh memory costs on this machine, against memory
 * already in use.
 *
 *   first_touch [MIB]
 *
 * Full stack logging writes every event into pages it has never used
 * (24 bytes an event, so 231 MiB for `workload tiny 0.25`).  On some
 * virtual machines the first write to a page costs far more than the
 * kernel's own work for it: the hypervisor takes its turn.  This program
 * writes MIB MiB (default 256) twice, in 64 KiB steps as the log's writer
 * does, into a shared file mapping in /dev/shm (as the log) and into
 * anonymous memory, after MADV_POPULATE_WRITE for each step, and prints
 * the time per MiB of each pass and their ratio.  The cost per event that
 * fresh memory alone adds to full mode is the first pass's time per MiB
 * times 24 / 2^20.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define STEP (64 * 1024)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Seconds to write `size` bytes in steps, each step prepared first as
 * the log's writer prepares its chunk. */
static double write_pass(char *memory, size_t size, int byte)
{
    double start = now();
    for (size_t offset = 0; offset < size; offset += STEP) {
        madvise(memory + offset, STEP, MADV_POPULATE_WRITE);
        memset(memory + offset, byte, STEP);
    }
    return now() - start;
}

static char *map_shared_file(size_t size)
{
    char path[64];
    snprintf(path, sizeof(path), "/dev/shm/first_touch.%d", (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return MAP_FAILED;
    unlink(path);
    char *memory = MAP_FAILED;
    if (ftruncate(fd, (off_t)size) == 0)
        memory = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return memory;
}

static int measure(const char *name, char *memory, size_t size)
{
    if (memory == MAP_FAILED) {
        perror(name);
        return 1;
    }
    double mib = (double)size / (1024 * 1024);
    double first = write_pass(memory, size, 1);
    double again = write_pass(memory, size, 2);
    printf("%-10s first write %7.3f ms/MiB   rewrite %7.3f ms/MiB   "
           "first/rewrite %6.1f   fresh memory per 24-byte event %5.1f ns\n",
           name, first * 1e3 / mib, again * 1e3 / mib, first / again,
           (first - again) / mib * 1e9 * 24 / (1024 * 1024));
    munmap(memory, size);
    return 0;
}

int main(int argc, char **argv)
{
    long mib = argc > 1 ? strtol(argv[1], NULL, 10) : 256;
    if (mib <= 0 || mib > 16384) {
        fprintf(stderr, "usage: first_touch [MIB], 1 to 16384\n");
        return 2;
    }
    size_t size = (size_t)mib * 1024 * 1024;
    int failed = measure("/dev/shm", map_shared_file(size), size);
    failed |= measure("anonymous",
                      mmap(NULL, size, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                      size);
    return failed;
}
