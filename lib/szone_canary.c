/*
 * Finding damage in the blocks of a debug zone: canary bytes written
 * around each block and the fill of freed blocks, compared again at
 * free, at realloc, on reuse and by the heap check.
 *
 * A canary byte depends on its address (its low four bits), so a run of
 * equal bytes (a memset) restores at most one in sixteen, and every one
 * has its high bit set and none is 0xAA or 0xFF: zeros, ASCII text and
 * the scribble bytes never match one.
 */
#include "config.h"
#include "szone.h"
#include "report.h"

#include <string.h>

#define CANARY_PERIOD 16

/* Two periods, so that any address's pattern is one contiguous slice. */
static const uint8_t canary_pattern[2 * CANARY_PERIOD] = {
#define CANARY_BYTE(i) (uint8_t)(0x80 | ((0x4b + ((i) % CANARY_PERIOD) * 29) & 0x7f))
    CANARY_BYTE(0),  CANARY_BYTE(1),  CANARY_BYTE(2),  CANARY_BYTE(3),
    CANARY_BYTE(4),  CANARY_BYTE(5),  CANARY_BYTE(6),  CANARY_BYTE(7),
    CANARY_BYTE(8),  CANARY_BYTE(9),  CANARY_BYTE(10), CANARY_BYTE(11),
    CANARY_BYTE(12), CANARY_BYTE(13), CANARY_BYTE(14), CANARY_BYTE(15),
    CANARY_BYTE(16), CANARY_BYTE(17), CANARY_BYTE(18), CANARY_BYTE(19),
    CANARY_BYTE(20), CANARY_BYTE(21), CANARY_BYTE(22), CANARY_BYTE(23),
    CANARY_BYTE(24), CANARY_BYTE(25), CANARY_BYTE(26), CANARY_BYTE(27),
    CANARY_BYTE(28), CANARY_BYTE(29), CANARY_BYTE(30), CANARY_BYTE(31),
#undef CANARY_BYTE
};

static const uint8_t *canary_slice(uintptr_t address, size_t *length,
                                   uintptr_t end)
{
    size_t room = CANARY_PERIOD - (address % CANARY_PERIOD) + CANARY_PERIOD;
    *length = end - address < room ? end - address : room;
    return &canary_pattern[address % CANARY_PERIOD];
}

void szone_canary_fill(uintptr_t from, uintptr_t to)
{
    while (from < to) {
        size_t length;
        const uint8_t *slice = canary_slice(from, &length, to);
        memcpy((void *)from, slice, length);
        from += length;
    }
}

/* The first byte of [from, to) that is not its canary, or 0. */
static uintptr_t canary_first_damage(uintptr_t from, uintptr_t to)
{
    while (from < to) {
        size_t length;
        const uint8_t *slice = canary_slice(from, &length, to);
        if (memcmp((const void *)from, slice, length) != 0)
            for (size_t i = 0;; i++)
                if (((const uint8_t *)from)[i] != slice[i])
                    return from + i;
        from += length;
    }
    return 0;
}

static uint8_t canary_byte(uintptr_t address)
{
    return canary_pattern[address % CANARY_PERIOD];
}

/* The first byte of [from, to) that is not `byte`, or 0. */
static uintptr_t fill_first_difference(uintptr_t from, uintptr_t to,
                                       uint8_t byte)
{
    uint64_t word = 0x0101010101010101ULL * byte;
    for (; from < to && from % 8; from++)
        if (*(const uint8_t *)from != byte)
            return from;
    for (; to - from >= 8; from += 8)
        if (*(const uint64_t *)from != word)
            break;
    for (; from < to; from++)
        if (*(const uint8_t *)from != byte)
            return from;
    return 0;
}

struct szone_damage szone_canary_damage(uintptr_t head, uintptr_t block,
                                        size_t size, uintptr_t end)
{
    struct szone_damage damage = {.kind = DAMAGE_NONE, .block = block,
                                  .size = size};
    uintptr_t bad = canary_first_damage(head, block);
    if (bad)
        damage.kind = DAMAGE_UNDERRUN;
    else if ((bad = canary_first_damage(block + size, end)))
        damage.kind = DAMAGE_OVERRUN;
    if (bad) {
        damage.offset = (long)(bad - block);
        damage.found = *(const uint8_t *)bad;
        damage.expected = canary_byte(bad);
    }
    return damage;
}

struct szone_damage szone_freed_fill_damage(uintptr_t block, uintptr_t end,
                                            uint8_t fill)
{
    struct szone_damage damage = {.kind = DAMAGE_NONE, .block = block,
                                  .size = end - block};
    uintptr_t bad = fill_first_difference(block, end, fill);
    if (bad) {
        damage.kind = DAMAGE_FREED;
        damage.offset = (long)(bad - block);
        damage.found = *(const uint8_t *)bad;
        damage.expected = fill;
    }
    return damage;
}

static void append_offset(struct report_line *line, long offset)
{
    if (offset < 0)
        report_append(line, "-");
    report_append_decimal(line, (uintmax_t)(offset < 0 ? -offset : offset));
}

void szone_damage_describe(const struct szone_damage *damage,
                           struct report_line *line)
{
    if (damage->kind == DAMAGE_FREED) {
        report_append(line, "freed block modified at offset ");
        append_offset(line, damage->offset);
        report_append(line, " (a ");
        report_append_decimal(line, damage->size);
        report_append(line, "-byte block, probably written after being freed)");
        return;
    }
    report_append(line, damage->kind == DAMAGE_UNDERRUN ? "underrun of a "
                                                        : "overrun of a ");
    report_append_decimal(line, damage->size);
    report_append(line, "-byte block: damaged at offset ");
    append_offset(line, damage->offset);
    report_append(line, damage->kind == DAMAGE_UNDERRUN
                            ? " (canary before the block)"
                            : " (canary after the block)");
}

/* As macOS words it, then where and what. */
static void report_freed_damage(const struct szone_damage *damage)
{
    struct report_line lines[2];
    report_line_begin(&lines[0]);
    report_append(&lines[0], "Incorrect checksum for freed object ");
    report_append_hex(&lines[0], damage->block);
    report_append(&lines[0], ": probably modified after being freed.");
    report_line_begin(&lines[1]);
    report_append(&lines[1], "*** the freed ");
    report_append_decimal(&lines[1], damage->size);
    report_append(&lines[1], "-byte block was modified at offset ");
    append_offset(&lines[1], damage->offset);
    report_append(&lines[1], ": ");
    report_append_hex(&lines[1], damage->found);
    report_append(&lines[1], " where ");
    report_append_hex(&lines[1], damage->expected);
    report_append(&lines[1], " was expected");
    report_emit(lines, 2, REPORT_KIND_CORRUPTION);
}

void szone_damage_report(const struct szone_damage *damage)
{
    if (damage->kind == DAMAGE_NONE)
        return;
    if (damage->kind == DAMAGE_FREED) {
        report_freed_damage(damage);
        return;
    }
    struct report_line line;
    report_line_begin(&line);
    report_append(&line, "*** error for object ");
    report_append_hex(&line, damage->block);
    report_append(&line, ": ");
    szone_damage_describe(damage, &line);
    report_emit(&line, 1, REPORT_KIND_CORRUPTION);
}
