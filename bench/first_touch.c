/*
 * first_touch: what fresh memory costs on this machine, against memory
 * already in use.
 *
 *   first_touch [MIB]
 *
 * Full stack logging writes every event into pages it has never used
 * (6 to 8 bytes an event, so about 60 MiB for `workload tiny 0.25`).  On some
 * virtual machines the first write to a page costs far more than the
 * kernel's own work for it: the hypervisor takes its turn.  This program
 * writes MIB MiB (default 256) twice, in 64 KiB steps as the log's writer
 * does, into a shared file in /dev/shm (as the log: each step allocated
 * with fallocate, then faulted in with MADV_POPULATE_WRITE) and into
 * anonymous memory (faulted in the same way).  It prints, per MiB, the
 * time the first pass spent preparing pages and writing them, the time
 * of the second pass, and what fresh memory alone adds to an event of
 * EVENT_BYTES bytes: (first pass - second pass) * EVENT_BYTES / 2^20.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* About what an event takes in the log (bench/README.md, "Events as
 * differences"). */
#define EVENT_BYTES 8

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#define STEP (64 * 1024)

struct memory {
    const char *name;
    char *base;
    size_t size;
    int fd; /* the file behind it, or -1 */
};

struct pass_time {
    double prepare, write;
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Gives the step at `offset` its pages: false, with a message, when the
 * file system is full or the kernel cannot populate. */
static bool prepare_step(const struct memory *memory, size_t offset)
{
    int error = 0;
    if (memory->fd >= 0 &&
        (error = posix_fallocate(memory->fd, (off_t)offset, STEP)) != 0) {
        fprintf(stderr, "first_touch: %s: cannot allocate %zu MiB: %s\n",
                memory->name, memory->size >> 20, strerror(error));
        return false;
    }
    if (madvise(memory->base + offset, STEP, MADV_POPULATE_WRITE) != 0) {
        fprintf(stderr, "first_touch: %s: MADV_POPULATE_WRITE: %s%s\n",
                memory->name, strerror(errno),
                errno == EINVAL ? " (Linux 5.14 or later is needed)" : "");
        return false;
    }
    return true;
}

static bool write_pass(const struct memory *memory, int byte, bool prepare,
                       struct pass_time *time)
{
    time->prepare = time->write = 0;
    for (size_t offset = 0; offset < memory->size; offset += STEP) {
        double start = now();
        if (prepare && !prepare_step(memory, offset))
            return false;
        double prepared = now();
        memset(memory->base + offset, byte, STEP);
        time->prepare += prepared - start;
        time->write += now() - prepared;
    }
    return true;
}

static bool map_shared_file(struct memory *memory)
{
    char path[64];
    snprintf(path, sizeof(path), "/dev/shm/first_touch.%d", (int)getpid());
    memory->fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (memory->fd < 0) {
        fprintf(stderr, "first_touch: %s: %s\n", path, strerror(errno));
        return false;
    }
    unlink(path);
    if (ftruncate(memory->fd, (off_t)memory->size) != 0 ||
        (memory->base = mmap(NULL, memory->size, PROT_READ | PROT_WRITE,
                             MAP_SHARED, memory->fd, 0)) == MAP_FAILED) {
        fprintf(stderr, "first_touch: %s: %s\n", path, strerror(errno));
        close(memory->fd);
        return false;
    }
    return true;
}

static bool map_anonymous(struct memory *memory)
{
    memory->fd = -1;
    memory->base = mmap(NULL, memory->size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory->base == MAP_FAILED) {
        fprintf(stderr, "first_touch: anonymous memory: %s\n", strerror(errno));
        return false;
    }
    return true;
}

static bool measure(struct memory *memory)
{
    struct pass_time first, again;
    bool done = write_pass(memory, 1, true, &first) &&
                write_pass(memory, 2, false, &again);
    if (done) {
        double mib = (double)memory->size / (1024 * 1024);
        double fresh = first.prepare + first.write, used = again.write;
        printf("%-10s first pass %6.3f ms/MiB (preparing %6.3f, writing %6.3f)"
               "   second pass %6.3f ms/MiB   first/second %5.1f"
               "   fresh memory per %d-byte event %5.1f ns\n",
               memory->name, fresh * 1e3 / mib, first.prepare * 1e3 / mib,
               first.write * 1e3 / mib, used * 1e3 / mib, fresh / used,
               EVENT_BYTES, (fresh - used) / mib * 1e9 * EVENT_BYTES / (1024 * 1024));
    }
    munmap(memory->base, memory->size);
    if (memory->fd >= 0)
        close(memory->fd);
    return done;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long mib = argc > 1 ? strtol(argv[1], &end, 10) : 256;
    if (argc > 2 || (end && (end == argv[1] || *end)) || mib <= 0 ||
        mib > 16384) {
        fprintf(stderr, "usage: first_touch [MIB], MIB from 1 to 16384 "
                        "(default 256)\n");
        return 2;
    }
    size_t size = (size_t)mib * 1024 * 1024;
    struct memory shared = {.name = "/dev/shm", .size = size};
    struct memory anonymous = {.name = "anonymous", .size = size};
    bool ok = map_shared_file(&shared) && measure(&shared);
    ok = map_anonymous(&anonymous) && measure(&anonymous) && ok;
    return ok ? 0 : 1;
}
