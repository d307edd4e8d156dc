/*
 * Stacks taken again without unwinding.
 *
 * A program that allocates in a loop asks for the same stack over and
 * over.  Unwinding it each time costs a few hundred instructions: cheap
 * alone, but enough to keep the processor from overlapping the program's
 * own cache misses with each other, so a memory-bound program slows down
 * by far more than the unwinding itself takes.
 *
 * So each thread remembers its last few stacks along with where each
 * return address sat on the stack.  When the capture runs again from the
 * same frame address and every one of those slots still holds its return
 * address, the stack is the one remembered: the innermost frame is the
 * same, each caller's return address is the same value at the same place,
 * so an unwinder starting there would read exactly what it read before.
 *
 * The slots are found by scanning up the stack for each return address
 * in turn.  A stale copy of a return address left in a caller's frame
 * could be taken for the real slot, so a stack is only remembered when
 * each return address appears once between its neighbours' slots.
 * Stacks through a signal frame (whose caller's frame may be on another
 * stack) and stacks deeper than STACK_CACHE_FRAMES are not remembered.
 * Unmapping memory forgets everything: a remembered slot could lie in a
 * stack the program freed.
 *
 * The search must never fault.  A return address is not always on the
 * stack above the previous one: code that switches stacks (coroutines)
 * has unwind information leading back to another stack, and the search
 * for such a caller runs on to the top of the current stack, where the
 * next page may be unreadable.  So the search reads only pages it has
 * asked the kernel about; each thread remembers the readable pages
 * around its frames, and unmapping or protecting memory forgets them.
 *
 * Only x86-64, where a call leaves its return address just below the
 * caller's frame address; elsewhere every stack is unwound.
 */
#include "config.h"
#include "os_memory.h"
#include "stacklog.h"

#include <errno.h>
#include <link.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A thread whose stacks keep changing (deep recursion) would pay for a
 * scan at each capture and never use it: after this many captures
 * without a hit, only one in STORE_INTERVAL is remembered. */
#define MISSES_BEFORE_SPARING 64
#define STORE_INTERVAL 64

/* Bytes of a frame the scan looks through for the next return address:
 * a stack with a bigger frame is unwound every time. */
#define SCAN_LIMIT 4096

static uint32_t unmap_generation;

/* The C library's code, where the stub signal handlers return through
 * lives: the only code the search reads. */
static uintptr_t libc_code_start, libc_code_end;

void stacklog_stack_cache_invalidate(void)
{
    __atomic_fetch_add(&unmap_generation, 1, __ATOMIC_RELAXED);
}

static unsigned cache_index(uintptr_t cfa)
{
    return (unsigned)((cfa >> 4) ^ (cfa >> 9)) % STACK_CACHE_ENTRIES;
}

static uint32_t current_generation(void)
{
    return __atomic_load_n(&unmap_generation, __ATOMIC_RELAXED);
}

uint32_t stacklog_stack_cache_find(struct stacklog_thread *thread,
                                   uintptr_t cfa)
{
    unsigned index = cache_index(cfa);
    if (thread->cache_key[index] != cfa ||
        thread->cache_generation[index] != current_generation())
        return 0;
    const struct stacklog_cached_stack *entry = &thread->cache[index];
    for (unsigned i = 0; i < entry->count; i++)
        if (*(const uintptr_t *)entry->slot[i] != entry->value[i])
            return 0;
    thread->cache_misses = 0;
    return entry->stack;
}

#if defined(__x86_64__)

static int find_code_segment(struct dl_phdr_info *info, size_t size,
                             void *unused)
{
    (void)size, (void)unused;
    const uintptr_t inside = (uintptr_t)&sigaction;
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *segment = &info->dlpi_phdr[i];
        if (segment->p_type != PT_LOAD || !(segment->p_flags & PF_X))
            continue;
        uintptr_t start = info->dlpi_addr + segment->p_vaddr;
        if (inside - start < segment->p_memsz) {
            libc_code_start = start;
            libc_code_end = start + segment->p_memsz;
            return 1;
        }
    }
    return 0;
}

void stacklog_stack_cache_setup(void)
{
    dl_iterate_phdr(find_code_segment, NULL);
}

/* The kernel returns from a signal handler through a stub that calls
 * rt_sigreturn: mov $15, %rax; syscall.  The C library provides it. */
static bool is_sigreturn_stub(uintptr_t pc)
{
    static const unsigned char stub[] = {0x48, 0xc7, 0xc0, 0x0f, 0x00,
                                         0x00, 0x00, 0x0f, 0x05};
    if (pc - libc_code_start >= libc_code_end - libc_code_start)
        return false;
    /* The code segment ends on a page boundary at the latest; a stub
     * cannot straddle its end. */
    if (pc + sizeof(stub) > libc_code_end)
        return false;
    const unsigned char *code = (const unsigned char *)pc;
    for (unsigned i = 0; i < sizeof(stub); i++)
        if (code[i] != stub[i])
            return false;
    return true;
}

/* Asks the kernel whether `page` can be read, without a signal: given an
 * impossible `how`, rt_sigprocmask copies the new mask from the page (a
 * fault there is EFAULT) and then refuses with EINVAL, changing nothing.
 * Every process may make this call, even under a seccomp filter that
 * would kill it for process_vm_readv. */
static bool page_is_readable(uintptr_t page)
{
    return syscall(SYS_rt_sigprocmask, -1, (void *)page, NULL,
                   sizeof(uint64_t)) != 0 &&
           errno == EINVAL;
}

static uintptr_t page_of(uintptr_t address)
{
    return address & ~(uintptr_t)(OS_PAGE_SIZE - 1);
}

/* Starts the thread's readable pages at the page the capture's frame is
 * on, unless they already hold it: the capture runs there, so it is
 * readable. */
static void readable_pages_start(struct stacklog_thread *thread,
                                 uintptr_t cfa, uint32_t generation)
{
    uintptr_t page = page_of(cfa - sizeof(uintptr_t));
    if (thread->readable_generation == generation &&
        page - thread->readable_low <
            thread->readable_high - thread->readable_low)
        return;
    thread->readable_generation = generation;
    thread->readable_low = page;
    thread->readable_high = page + OS_PAGE_SIZE;
}

/* Whether the word at `address`, at or above the readable pages' start,
 * can be read: pages above the known ones are asked about in turn. */
static bool word_is_readable(struct stacklog_thread *thread,
                             uintptr_t address)
{
    while (address >= thread->readable_high) {
        if (!page_is_readable(thread->readable_high))
            return false;
        thread->readable_high += OS_PAGE_SIZE;
    }
    return true;
}

/* The first slot above `from` that holds `value`, or 0 when `previous`
 * (the return address found at `from`) shows up first or the frame is
 * too big or the search reaches a page that cannot be read. */
static uintptr_t scan_for_return_address(struct stacklog_thread *thread,
                                         uintptr_t from, uintptr_t value,
                                         uintptr_t previous)
{
    for (uintptr_t at = from + sizeof(uintptr_t); at <= from + SCAN_LIMIT;
         at += sizeof(uintptr_t)) {
        if (!word_is_readable(thread, at))
            return 0;
        uintptr_t word = *(const uintptr_t *)at;
        if (word == value)
            return at;
        if (word == previous)
            return 0;
    }
    return 0;
}

static bool find_slots(struct stacklog_thread *thread,
                       struct stacklog_cached_stack *entry, uintptr_t cfa,
                       void *const *pcs, unsigned total)
{
    uintptr_t slot = cfa - sizeof(uintptr_t);
    if (*(const uintptr_t *)slot != (uintptr_t)pcs[1])
        return false; /* the capture was inlined: no known first slot */
    entry->slot[0] = slot;
    entry->value[0] = (uintptr_t)pcs[1];
    for (unsigned i = 2; i < total; i++) {
        slot = scan_for_return_address(thread, slot, (uintptr_t)pcs[i],
                                       (uintptr_t)pcs[i - 1]);
        if (!slot)
            return false;
        entry->slot[i - 1] = slot;
        entry->value[i - 1] = (uintptr_t)pcs[i];
    }
    return true;
}

void stacklog_stack_cache_store(struct stacklog_thread *thread, uintptr_t cfa,
                                void *const *pcs, unsigned total,
                                uint32_t stack)
{
    uint32_t misses = thread->cache_misses++;
    if (misses >= MISSES_BEFORE_SPARING && misses % STORE_INTERVAL != 0)
        return;
    if (!stack || total < 2 || total - 1 > STACK_CACHE_FRAMES)
        return;
    for (unsigned i = 1; i < total; i++)
        if (is_sigreturn_stub((uintptr_t)pcs[i]))
            return;
    unsigned index = cache_index(cfa);
    struct stacklog_cached_stack *entry = &thread->cache[index];
    thread->cache_key[index] = 0;
    uint32_t generation = current_generation();
    readable_pages_start(thread, cfa, generation);
    if (!find_slots(thread, entry, cfa, pcs, total))
        return;
    entry->count = total - 1;
    entry->stack = stack;
    thread->cache_generation[index] = generation;
    thread->cache_key[index] = cfa;
}

#else

void stacklog_stack_cache_setup(void)
{
}

void stacklog_stack_cache_store(struct stacklog_thread *thread, uintptr_t cfa,
                                void *const *pcs, unsigned total,
                                uint32_t stack)
{
    (void)thread, (void)cfa, (void)pcs, (void)total, (void)stack;
}

#endif
