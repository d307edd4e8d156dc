/*
 * A libFuzzer target for the stack log reader (`make fuzz-log-reader`,
 * then tests/fuzz_log_reader [corpus directory]).
 *
 * An input that starts with the log's magic is a whole log file.  Any
 * other input is a list of patches on a sound sample log (from
 * tests/log_builder.c), so the fuzzer spends its time past the header
 * checks: each 16-byte patch picks a part the reader interprets (a header
 * field, a chunk header, records in use), a place in it, a width and a
 * value, or cuts the file short.
 *
 * The reader must never crash, hang or read out of bounds (AddressSanitizer
 * watches), and every answer it gives must be within what the file holds.
 */
#include "config.h"

#include "../tools/log_reader.h"
#include "log_builder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RANGES_MAX 64
#define EVENTS_PER_CHUNK \
    (MDLOG_CHUNK_EVENT_BYTES(LOG_BUILDER_SMALL_CHUNK) / MDLOG_EVENT_MIN_SIZE)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(condition)                                                  \
    do {                                                                    \
        if (!(condition)) {                                                 \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #condition); \
            abort();                                                        \
        }                                                                   \
    } while (0)

struct patch {
    uint32_t where; /* range, then width in bits 24-25, cut in bit 31 */
    uint32_t offset;
    uint64_t value;
};

static struct log_builder *sample;
static struct log_range ranges[RANGES_MAX];
static size_t range_count;
static unsigned char *scratch;
static int log_fd = -1;
static char log_path[64];

static void set_up(void)
{
    sample = log_builder_sample();
    range_count = log_builder_hot_ranges(sample, ranges, RANGES_MAX);
    size_t size;
    log_builder_bytes(sample, &size);
    scratch = malloc(size);
    log_fd = memfd_create("fuzz.stacklog", 0);
    REQUIRE(scratch != NULL && log_fd >= 0);
    snprintf(log_path, sizeof(log_path), "/proc/self/fd/%d", log_fd);
}

/* Applies the patches to a copy of the sample; returns the size kept. */
static size_t patch_sample(const uint8_t *data, size_t size)
{
    size_t log_size;
    memcpy(scratch, log_builder_bytes(sample, &log_size), log_size);
    size_t keep = log_size;
    for (; size >= sizeof(struct patch); data += sizeof(struct patch),
                                         size -= sizeof(struct patch)) {
        struct patch patch;
        memcpy(&patch, data, sizeof(patch));
        if (patch.where & 0x80000000u) {
            keep = patch.offset % log_size;
            continue;
        }
        const struct log_range *range = &ranges[(patch.where & 0xffff) % range_count];
        size_t width = (size_t)1 << ((patch.where >> 24) & 3);
        if (width > range->size)
            width = 1;
        size_t offset = range->offset + patch.offset % (range->size - width + 1);
        offset -= offset % width;
        memcpy(scratch + offset, &patch.value, width);
    }
    return keep;
}

static void store(const void *bytes, size_t size)
{
    REQUIRE(ftruncate(log_fd, 0) == 0);
    REQUIRE(size == 0 || pwrite(log_fd, bytes, size, 0) == (ssize_t)size);
}

static int count_event(const struct log_reader_event *event, void *context)
{
    const struct log_reader *reader = ((void **)context)[0];
    uint64_t *count = ((void **)context)[1];
    uint64_t pcs[MDLOG_MAX_FRAMES + 8];
    uint32_t modules[MDLOG_MAX_FRAMES + 8];
    REQUIRE(log_reader_stack_frames(reader, event->stack, pcs, modules,
                                    MDLOG_MAX_FRAMES + 8) <= MDLOG_MAX_FRAMES);
    uint32_t thread;
    log_reader_stack_thread(reader, event->stack, &thread);
    (*count)++;
    return 0;
}

static void exercise(struct log_reader *reader)
{
    REQUIRE(strlen(log_reader_header(reader)->executable) < MDLOG_EXECUTABLE_MAX);
    char text[512];
    log_reader_warning_text(reader, text, sizeof(text));
    uint64_t chunks = log_reader_chunk_count(reader);
    uint64_t events = log_reader_event_count(reader), delivered = 0;
    REQUIRE(events <= chunks * EVENTS_PER_CHUNK);
    void *context[] = {reader, &delivered};
    REQUIRE(log_reader_for_each_event(reader, count_event, context) == 0);
    REQUIRE(delivered == events);
    uint64_t pcs[4];
    for (uint32_t id = 0; id < 80; id++) {
        const struct mdlog_stack_node *node = log_reader_node(reader, id);
        REQUIRE(node == NULL || node->pc != 0);
        REQUIRE(log_reader_stack_frames(reader, id, pcs, NULL, 4) <= 4);
    }
    uint32_t module_count = log_reader_module_count(reader);
    struct mdlog_module module;
    for (uint32_t i = 0; i < module_count && i < 16; i++)
        if (log_reader_module(reader, i, &module))
            REQUIRE(strlen(module.path) < MDLOG_PATH_MAX);
    for (uint64_t pc = 0x3f0000; pc < 0x720000; pc += 0x10000) {
        uint32_t found = log_reader_module_for_pc(reader, pc, pc % 64);
        REQUIRE(found == MDLOG_MODULE_UNKNOWN || found < module_count);
    }
    REQUIRE(log_reader_refresh(reader, NULL, 0) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sample == NULL)
        set_up();
    if (size >= MDLOG_MAGIC_SIZE && memcmp(data, MDLOG_MAGIC, MDLOG_MAGIC_SIZE) == 0)
        store(data, size);
    else
        store(scratch, patch_sample(data, size));
    char message[512];
    struct log_reader *reader = log_reader_open(log_path, message, sizeof(message));
    if (reader == NULL) {
        REQUIRE(message[0] != '\0' && strchr(message, '\n') == NULL);
        return 0;
    }
    exercise(reader);
    log_reader_close(reader);
    return 0;
}
