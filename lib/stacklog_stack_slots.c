/*
 * Where a stack's return addresses sit on the stack, found without
 * unwinding, so that a later capture can tell, by reading those words
 * again, that the frames are still the same (stacklog_stack_cache.c,
 * stacklog_stack_join.c).
 *
 * Each return address is searched for by scanning up the stack from the
 * slot of the one before, from the return address into the program,
 * whose slot the exported function the program called knows (the
 * library's own frames inside it are not searched).  A stale copy of a
 * return address left in a caller's frame could be taken for the real
 * slot, so a search fails when the previous return address shows up
 * again first.  That does not
 * rule out a stale copy of the searched-for address alone, left below
 * its real slot by an earlier, deeper call through the same call site.
 * A wrong slot is then trusted, and if every slot outside it also still
 * holds what the earlier stack left there, a capture is given the
 * earlier stack's outer frames: callers the thread had a moment before,
 * never a fault.  Telling the real slot apart would take the frame's
 * unwind rule, the very work the cache and the join save.  A frame
 * whose size changes from call to call leaves such copies most often;
 * once one is found with two sizes, stacks through it are neither
 * cached nor joined to (stacklog_frame_sizes.c).  Stacks
 * through a signal frame (whose caller's frame may be on another stack)
 * are refused.  Unmapping memory, by the program or by the library (a
 * block the program used as a stack and freed), makes the slots found
 * before suspect if it met the pages they were read from: they could lie
 * in the memory that went away (os_unmap_generation).  Each thread keeps
 * the span of pages it read, and lets go of its findings only when an
 * unmapping meets it; a program mapping and unmapping files keeps them.
 *
 * The search must never fault.  A return address is not always on the
 * stack above the previous one: code that switches stacks (coroutines)
 * has unwind information leading back to another stack, and the search
 * for such a caller runs on to the top of the current stack, where the
 * next page may be unreadable.  So the search reads only pages it has
 * asked the kernel about; each thread remembers the readable pages
 * around its frames, and unmapping or protecting memory among them
 * forgets them.
 *
 * Only x86-64, where a call leaves its return address just below the
 * caller's frame address; elsewhere nothing is found and every stack is
 * unwound.
 */
#include "config.h"
#include "os_memory.h"
#include "stacklog.h"

#include <errno.h>
#include <link.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Bytes of a frame the scan looks through for the next return address:
 * a stack with a bigger frame is unwound every time. */
#define SCAN_LIMIT 4096

void stacklog_stack_slots_invalidate(void)
{
    os_unmap_generation_advance();
}

static bool unmaps_met_span(const struct stacklog_thread *thread,
                            uint64_t unmaps)
{
    if (unmaps - thread->unmaps_seen > OS_UNMAP_RANGES_KEPT)
        return true;
    for (uint64_t g = thread->unmaps_seen + 1; g <= unmaps; g++)
        if (os_unmap_may_touch(g, thread->span_low, thread->span_high))
            return true;
    return false;
}

/* Found at `generation` or since, and still good at `unmaps`. */
static void bring_forward(uint64_t *generation, uint64_t seen, uint64_t unmaps)
{
    if (*generation >= seen && *generation < unmaps)
        *generation = unmaps;
}

void stacklog_stack_slots_catch_up(struct stacklog_thread *thread)
{
    const uint64_t unmaps = os_unmap_generation();
    const uint64_t seen = thread->unmaps_seen;
    if (MD_LIKELY(unmaps == seen))
        return;
    bool met = unmaps_met_span(thread, unmaps);
    thread->unmaps_seen = unmaps;
    if (met) {
        thread->span_low = thread->span_high = 0;
        stacklog_stack_cache_clear(thread);
        return;
    }
    bring_forward(&thread->readable_generation, seen, unmaps);
    bring_forward(&thread->unwound_generation, seen, unmaps);
}

#if defined(__x86_64__)

/* The C library's code, where the stub signal handlers return through
 * lives: the only code the search reads. */
static uintptr_t libc_code_start, libc_code_end;

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

void stacklog_stack_slots_setup(void)
{
    stacklog_loader_iterate(find_code_segment, NULL);
}

/* The kernel returns from a signal handler through a stub that calls
 * rt_sigreturn: mov $15, %rax; syscall.  The C library provides it. */
static bool libc_code_is_sigreturn_stub(uintptr_t pc)
{
    static const unsigned char stub[] = {0x48, 0xc7, 0xc0, 0x0f, 0x00,
                                         0x00, 0x00, 0x0f, 0x05};
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

/* Inline: every frame searched for is asked, most of them outside the
 * C library. */
static inline bool is_sigreturn_stub(uintptr_t pc)
{
    return pc - libc_code_start < libc_code_end - libc_code_start &&
           libc_code_is_sigreturn_stub(pc);
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

/* Slots are read from the readable pages: they join the span. */
static void span_take_readable_pages(struct stacklog_thread *thread)
{
    if (thread->span_high == 0 || thread->readable_low < thread->span_low)
        thread->span_low = thread->readable_low;
    if (thread->readable_high > thread->span_high)
        thread->span_high = thread->readable_high;
}

/* Starts the thread's readable pages at the page the capture's frame is
 * on, unless they already hold it: the capture runs there, so it is
 * readable. */
static void readable_pages_start(struct stacklog_thread *thread,
                                 uintptr_t cfa, uint64_t generation)
{
    uintptr_t page = page_of(cfa - sizeof(uintptr_t));
    if (thread->readable_generation == generation &&
        page - thread->readable_low <
            thread->readable_high - thread->readable_low)
        return;
    thread->readable_generation = generation;
    thread->readable_low = page;
    thread->readable_high = page + OS_PAGE_SIZE;
    span_take_readable_pages(thread);
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
        span_take_readable_pages(thread);
    }
    return true;
}

bool stacklog_stack_slots_readable(struct stacklog_thread *thread,
                                   uintptr_t cfa, uintptr_t address)
{
    readable_pages_start(thread, cfa, stacklog_stack_slots_generation());
    return address >= thread->readable_low &&
           word_is_readable(thread, address);
}

/* The first slot above `from` that holds `value`, or 0 when `previous`
 * (the return address found at `from`) shows up first or the frame is
 * too big or the search reaches a page that cannot be read. */
static uintptr_t scan_for_return_address(struct stacklog_thread *thread,
                                         uintptr_t from, uintptr_t value,
                                         uintptr_t previous)
{
    const uintptr_t last = from + SCAN_LIMIT;
    uintptr_t at = from + sizeof(uintptr_t);
    while (at <= last) {
        if (!word_is_readable(thread, at))
            return 0;
        /* Words below readable_high need no more asking. */
        uintptr_t end = thread->readable_high - sizeof(uintptr_t);
        if (end > last)
            end = last;
        for (; at <= end; at += sizeof(uintptr_t)) {
            uintptr_t word = *(const uintptr_t *)at;
            if (word == value)
                return at;
            if (word == previous)
                return 0;
        }
    }
    return 0;
}

/* The index of the return address into the program among pcs[1..count),
 * whose slot the exported function the program called knows: the frames
 * inside it are the library's own.  0 when it is not among them. */
static unsigned first_program_frame(uintptr_t return_slot, void *const *pcs,
                                    unsigned count)
{
    if (!return_slot)
        return 0;
    const uintptr_t returns_to = *(const uintptr_t *)return_slot;
    for (unsigned i = 1; i < count; i++)
        if ((uintptr_t)pcs[i] == returns_to)
            return i;
    return 0;
}

enum known_slots_outcome { KNOWN_TAKEN, KNOWN_NOT_MET, KNOWN_DIFFERENT };

/* When slots[i] is one of the known slots, and as many known slots lie
 * outside it as frames outside pcs[i] (at least as many when pcs are the
 * innermost frames only), still holding pcs[i+1..count): those slots,
 * into slots[i+1..count).  The search that found them took each for the
 * first copy of its return address above the slot before, as this one
 * would: the frames are the same, laid out as they were.
 * KNOWN_DIFFERENT when the frames outside differ from what the slots
 * hold (the stack changed there) or one is a signal frame's.  `*at`
 * walks the known slots up with slots[i]. */
static enum known_slots_outcome
take_known_slots(const struct stacklog_known_slots *known, unsigned *at,
                 unsigned i, void *const *pcs, unsigned count,
                 uintptr_t *slots)
{
    unsigned j = *at;
    while (j < known->count && known->slot[j] < slots[i])
        j++;
    *at = j;
    /* The same slot with another number of frames outside it is another
     * function's frame where one of the known ones was; for the innermost
     * frames only, the frames outside them are not known yet, and the
     * caller compares them. */
    if (j == known->count || known->slot[j] != slots[i] ||
        (known->pcs_are_inner ? known->count - j < count - i
                              : known->count - j != count - i))
        return KNOWN_NOT_MET;
    for (unsigned k = 1; k < count - i; k++)
        if (*(const uintptr_t *)known->slot[j + k] != (uintptr_t)pcs[i + k] ||
            is_sigreturn_stub((uintptr_t)pcs[i + k]))
            return KNOWN_DIFFERENT;
    memcpy(&slots[i + 1], &known->slot[j + 1],
           (count - i - 1) * sizeof(slots[0]));
    return KNOWN_TAKEN;
}

/* Where pcs[1..count), unwound from the frame at `cfa`, sit on the
 * stack, into slots[1..count); false when one of them cannot be told
 * apart or the stack goes through a signal frame.  The library's own
 * frames inside `return_slot` get slot 0: the cache and the join look
 * only at the program's, and a search through the library's frames
 * would meet stale copies of its return addresses (spill slots a path
 * did not write) and fail, or take one for a real slot. */
bool stacklog_stack_slots_find(struct stacklog_thread *thread, uintptr_t cfa,
                               uintptr_t return_slot, void *const *pcs,
                               unsigned count, uintptr_t *slots,
                               const struct stacklog_known_slots *known)
{
    readable_pages_start(thread, cfa, stacklog_stack_slots_generation());
    unsigned next = first_program_frame(return_slot, pcs, count);
    uintptr_t slot;
    if (next) {
        for (unsigned i = 1; i < next; i++)
            slots[i] = 0;
        slot = return_slot;
    } else {
        slot = cfa - sizeof(uintptr_t);
        if (count < 2 || *(const uintptr_t *)slot != (uintptr_t)pcs[1])
            return false; /* the capture was inlined: no known first slot */
        next = 1;
    }
    /* Frames are checked as they come, searched for or taken from the
     * known slots. */
    for (unsigned i = 1; i <= next; i++)
        if (is_sigreturn_stub((uintptr_t)pcs[i]))
            return false;
    slots[next] = slot;
    unsigned known_at = 1;
    for (unsigned i = next;; i++) {
        if (known) {
            enum known_slots_outcome outcome =
                take_known_slots(known, &known_at, i, pcs, count, slots);
            if (outcome == KNOWN_TAKEN)
                return true;
            /* Not tried again: each try would read every frame outside. */
            if (outcome == KNOWN_DIFFERENT)
                known = NULL;
        }
        if (i + 1 == count)
            return true;
        if (is_sigreturn_stub((uintptr_t)pcs[i + 1]))
            return false;
        slot = scan_for_return_address(thread, slot, (uintptr_t)pcs[i + 1],
                                       (uintptr_t)pcs[i]);
        if (!slot)
            return false;
        slots[i + 1] = slot;
    }
}

#else

void stacklog_stack_slots_setup(void)
{
}

bool stacklog_stack_slots_readable(struct stacklog_thread *thread,
                                   uintptr_t cfa, uintptr_t address)
{
    (void)thread, (void)cfa, (void)address;
    return false;
}

bool stacklog_stack_slots_find(struct stacklog_thread *thread, uintptr_t cfa,
                               uintptr_t return_slot, void *const *pcs,
                               unsigned count, uintptr_t *slots,
                               const struct stacklog_known_slots *known)
{
    (void)thread, (void)cfa, (void)return_slot, (void)pcs, (void)count,
        (void)slots, (void)known;
    return false;
}

#endif
