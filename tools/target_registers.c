/*
 * Reading a stopped thread's registers.  Beyond the general registers
 * and xmm0-15, a program may keep a pointer in the rest of the vector
 * state: the upper halves of the ymm registers (AVX), the AVX-512 mask
 * registers, the upper halves of zmm0-15 and all of zmm16-31.  The kernel
 * gives those in the XSAVE area (PTRACE_GETREGSET, NT_X86_XSTATE), in its
 * standard layout, where the processor says (CPUID leaf 0xD) at which
 * offset each part lies.
 */
#include "config.h"
#include "target.h"

#include <cpuid.h>
#include <elf.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

enum {
    YMM_HI128_SIZE = 16 * 16, /* ymm0-15, bits 128-255 */
    OPMASK_SIZE = 8 * 8,      /* k0-7 */
    ZMM_HI256_SIZE = 16 * 32, /* zmm0-15, bits 256-511 */
    HI16_ZMM_SIZE = 16 * 64,  /* zmm16-31 */
};
_Static_assert(YMM_HI128_SIZE + OPMASK_SIZE + ZMM_HI256_SIZE + HI16_ZMM_SIZE ==
                   TARGET_EXTENDED_WORDS * sizeof(uint64_t),
               "the extended registers fill target_thread's array");

/* The XSAVE components read, as the processor numbers them, each with
 * its architectural size, in the order they are copied. */
static const struct {
    unsigned component, size;
} extended_parts[] = {
    {2, YMM_HI128_SIZE},
    {5, OPMASK_SIZE},
    {6, ZMM_HI256_SIZE},
    {7, HI16_ZMM_SIZE},
};
enum { PART_COUNT = sizeof(extended_parts) / sizeof(extended_parts[0]) };

/* The legacy region (512 bytes) comes first; the XSAVE header follows it,
 * beginning with XSTATE_BV: a bit set for each component not in its
 * initial state (zero, for these, holding no pointer). */
#define XSTATE_BV_OFFSET 512
#define XSAVE_AREA_SIZE 4096

/* Where each part lies in the area: 0 when the processor lacks it. */
static unsigned part_offsets[PART_COUNT];

static void find_part_offsets(void)
{
    static bool found;
    if (found)
        return;
    found = true;
    if (__get_cpuid_max(0, NULL) < 0xD)
        return;
    for (unsigned i = 0; i < PART_COUNT; i++) {
        unsigned size, offset, unused_ecx, unused_edx;
        __cpuid_count(0xD, extended_parts[i].component, size, offset,
                      unused_ecx, unused_edx);
        if (size == extended_parts[i].size &&
            offset + size <= XSAVE_AREA_SIZE && offset >= XSTATE_BV_OFFSET + 64)
            part_offsets[i] = offset;
    }
}

/* Fills thread->extended_registers; zero where the kernel gives no XSAVE
 * area, the processor lacks a part, or a part is in its initial state. */
static void read_extended(struct target_thread *thread)
{
    memset(thread->extended_registers, 0, sizeof(thread->extended_registers));
    find_part_offsets();
    uint64_t area[XSAVE_AREA_SIZE / sizeof(uint64_t)];
    struct iovec vector = {area, sizeof(area)};
    if (ptrace(PTRACE_GETREGSET, thread->tid, (void *)NT_X86_XSTATE, &vector) != 0 ||
        vector.iov_len < XSTATE_BV_OFFSET + sizeof(uint64_t))
        return;
    uint64_t in_use = area[XSTATE_BV_OFFSET / sizeof(uint64_t)];
    unsigned char *out = (unsigned char *)thread->extended_registers;
    for (unsigned i = 0; i < PART_COUNT; i++) {
        unsigned offset = part_offsets[i], size = extended_parts[i].size;
        if (offset && offset + size <= vector.iov_len &&
            (in_use & (1ull << extended_parts[i].component)))
            memcpy(out, (const unsigned char *)area + offset, size);
        out += size;
    }
}

bool target_read_registers(struct target_thread *thread)
{
    if (ptrace(PTRACE_GETREGS, thread->tid, NULL, &thread->registers) != 0 ||
        ptrace(PTRACE_GETFPREGS, thread->tid, NULL, &thread->vector_registers) != 0)
        return false;
    read_extended(thread);
    return true;
}
