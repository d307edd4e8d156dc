#include "config.h"
#include "malloc_debug.h"
#include "compiler.h"
#include "report.h"
#include "szone.h"

#include <dlfcn.h>
#include <errno.h>
#include <libunwind.h>
#include <string.h>

#include "lock.h"

static uint64_t operation_count;
static uint64_t allocation_count;
static uint64_t last_good_check;
static uint64_t failure_random_state;
static bool check_heap_slept;

/* Where the last check that passed was called from, for the failure
 * report: macOS prints it so that the damage can be looked for between
 * that place and the failing one. */
#define CHECK_STACK_DEPTH 32
static md_lock_t last_good_lock = MD_LOCK_INITIALIZER;
static void *last_good_stack[CHECK_STACK_DEPTH];
static unsigned last_good_depth;
/* Unwinding may allocate (libunwind, the loader): those allocations are
 * not operations to count, nor reasons to check again. */
static __thread bool in_check_heap __attribute__((tls_model("initial-exec")));

/* xorshift64: cheap, and the same sequence for the same MallocFailSeed. */
static uint64_t failure_random(void)
{
    uint64_t x = __atomic_load_n(&failure_random_state, __ATOMIC_RELAXED);
    if (x == 0)
        x = malloc_options.fail_seed ? malloc_options.fail_seed : 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    __atomic_store_n(&failure_random_state, x, __ATOMIC_RELAXED);
    return x;
}

/* Outside any zone lock: the zones were unlocked after the check. */
static void check_heap_record_success(uint64_t operation)
{
    void *frames[CHECK_STACK_DEPTH];
    int depth = unw_backtrace(frames, CHECK_STACK_DEPTH);
    md_lock(&last_good_lock);
    __atomic_store_n(&last_good_check, operation, __ATOMIC_RELAXED);
    last_good_depth = depth > 0 ? (unsigned)depth : 0;
    memcpy(last_good_stack, frames, last_good_depth * sizeof(frames[0]));
    md_unlock(&last_good_lock);
}

/* "  0x... symbol+0x.. (module)", or the bare address. */
static void check_heap_write_frame(void *frame)
{
    struct report_line line;
    Dl_info info;
    report_line_begin(&line);
    report_append(&line, "***   ");
    report_append_hex(&line, (uintptr_t)frame);
    if (dladdr(frame, &info) && info.dli_fname) {
        if (info.dli_sname) {
            report_append(&line, " ");
            report_append(&line, info.dli_sname);
            report_append(&line, "+");
            report_append_hex(&line, (uintptr_t)frame - (uintptr_t)info.dli_saddr);
        }
        report_append(&line, " (");
        report_append(&line, info.dli_fname);
        report_append(&line, ")");
    }
    report_line_write(&line);
}

/* The library's own frames (the check, malloc) say nothing. */
static bool frame_is_ours(void *frame, const void *our_base)
{
    Dl_info info;
    return dladdr(frame, &info) && info.dli_fbase == our_base;
}

static void check_heap_report_last_good_stack(void)
{
    struct report_line line;
    report_line_begin(&line);
    /* Another thread may be recording, or have been when this process
     * was forked: better no stack than a hang. */
    if (!md_trylock(&last_good_lock))
        return;
    if (last_good_depth == 0) {
        report_append(&line, "*** No check had passed before this one");
        report_line_write(&line);
    } else {
        report_append(&line, "*** Stack for the last operation where the heap was still correct (operation #");
        report_append_decimal(&line, last_good_check);
        report_append(&line, "):");
        report_line_write(&line);
        Dl_info ours;
        const void *our_base = dladdr((void *)check_heap_write_frame, &ours)
                                   ? ours.dli_fbase : NULL;
        for (unsigned i = 0; i < last_good_depth; i++)
            if (!frame_is_ours(last_good_stack[i], our_base))
                check_heap_write_frame(last_good_stack[i]);
    }
    md_unlock(&last_good_lock);
}

static void check_heap_report_failure(uint64_t operation)
{
    struct report_line lines[2];
    report_line_begin(&lines[0]);
    report_append(&lines[0], "*** MallocCheckHeap: FAILED check at operation #");
    report_append_decimal(&lines[0], operation);
    uint64_t last_good = __atomic_load_n(&last_good_check, __ATOMIC_RELAXED);
    /* Another thread may have passed a later check meanwhile. */
    uint64_t start = last_good && last_good < operation ? last_good : 1;
    uint64_t each = malloc_options.check_heap_each / 10;
    report_line_begin(&lines[1]);
    report_append(&lines[1], "*** Recommend using 'MallocCheckHeapStart=");
    report_append_decimal(&lines[1], start);
    report_append(&lines[1], " MallocCheckHeapEach=");
    report_append_decimal(&lines[1], each ? each : 1);
    report_append(&lines[1], "' to narrow down the failure");
    report_line_write(&lines[0]);
    check_heap_report_last_good_stack();
    report_line_write(&lines[1]);
}

/* macOS's order: abort if asked, else sleep for a debugger (a negative
 * MallocCheckHeapSleep sleeps the first time only), then go on. */
static void check_heap_conclude(void)
{
    if (malloc_options.check_heap_abort) {
        struct report_line line;
        report_line_begin(&line);
        report_append(&line, "*** MallocCheckHeap: heap corruption");
        report_emit(&line, 1, REPORT_KIND_CORRUPTION);
        return;
    }
    long sleep_seconds = malloc_options.check_heap_sleep;
    if (sleep_seconds < 0 && check_heap_slept)
        return;
    if (sleep_seconds != 0) {
        check_heap_slept = true;
        report_sleep((unsigned)(sleep_seconds < 0 ? -sleep_seconds
                                                  : sleep_seconds));
    }
}

static void count_operation(void)
{
    if (!(malloc_options.active & OPTIONS_ACTIVE_CHECK_HEAP) || in_check_heap)
        return;
    uint64_t operation =
        __atomic_add_fetch(&operation_count, 1, __ATOMIC_RELAXED);
    uint64_t start = malloc_options.check_heap_start;
    if (operation < start ||
        (operation - start) % malloc_options.check_heap_each != 0)
        return;
    int saved_errno = errno;
    in_check_heap = true;
    if (malloc_zone_check(NULL)) {
        check_heap_record_success(operation);
    } else {
        check_heap_report_failure(operation);
        check_heap_conclude();
    }
    in_check_heap = false;
    errno = saved_errno;
}

bool malloc_debug_allocation_allowed(void)
{
    count_operation();
    if (!(malloc_options.active & OPTIONS_ACTIVE_FAILURES))
        return true;
    uint64_t n = __atomic_add_fetch(&allocation_count, 1, __ATOMIC_RELAXED);
    bool fail = (malloc_options.fail_after && n > malloc_options.fail_after) ||
                (malloc_options.fail_rate &&
                 failure_random() % malloc_options.fail_rate == 0);
    if (fail)
        errno = ENOMEM;
    return !fail;
}

void malloc_debug_count_free(void)
{
    count_operation();
}

void malloc_debug_zone_settings(struct szone_debug *debug)
{
    const struct malloc_options *o = &malloc_options;
    *debug = (struct szone_debug){.flags = 0, .new_fill = -1, .freed_fill = -1};
    if (o->scribble || o->pre_scribble)
        debug->new_fill = SCRIBBLE_NEW_BYTE;
    if (o->zero_on_free)
        debug->freed_fill = 0;
    if (o->scribble) {
        debug->freed_fill = SCRIBBLE_FREED_BYTE;
        debug->flags |= SZONE_DEBUG_CHECK_FREED;
    }
    if (o->zero_on_free && o->check_zero_on_free)
        debug->flags |= SZONE_DEBUG_CHECK_FREED;
    if (o->canaries)
        debug->flags |= SZONE_DEBUG_CANARIES;
    if (o->guard_edges == OPTIONS_GUARD_EDGES_LARGE)
        debug->flags |= SZONE_DEBUG_GUARD_LARGE;
    if (o->guard_edges == OPTIONS_GUARD_EDGES_ALL)
        debug->flags |= SZONE_DEBUG_GUARD_LARGE | SZONE_DEBUG_GUARD_REGIONS;
    if (o->no_protect_prelude)
        debug->flags |= SZONE_DEBUG_NO_PRELUDE;
    if (o->no_protect_postlude)
        debug->flags |= SZONE_DEBUG_NO_POSTLUDE;
}
