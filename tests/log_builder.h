/*
 * A stack log made in memory, exactly as include/mallocdebug/stack_log.h
 * lays it out, for testing the reader without the library's writer:
 * stack nodes in stack chunks, each thread's events in its own chunks
 * (interleaved in the file as threads take turns), modules in a module
 * chunk, and a header that counts them all.
 */
#ifndef MALLOCDEBUG_LOG_BUILDER_H
#define MALLOCDEBUG_LOG_BUILDER_H

#include <mallocdebug/stack_log.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_BUILDER_SMALL_CHUNK (64u << 10)

struct log_builder;

/* A log of `chunk_size`-byte chunks written by process `pid`, in full
 * mode. */
struct log_builder *log_builder_create(uint32_t chunk_size, int32_t pid);
void log_builder_destroy(struct log_builder *builder);

/* A small log with every kind of chunk: three threads' stacks, four
 * modules, 300 events of all kinds interleaved over several chunks. */
struct log_builder *log_builder_sample(void);

/* Stack nodes; each returns the new node's id.  Ids start at 1. */
uint32_t log_builder_thread_node(struct log_builder *builder, uint32_t thread);
uint32_t log_builder_frame(struct log_builder *builder, uint32_t parent,
                           uint64_t pc, uint32_t module);

/* An event of `type` (kind and flags) by `thread`; returns its order. */
uint64_t log_builder_event(struct log_builder *builder, uint32_t thread,
                           unsigned type, uint64_t address, uint64_t size,
                           uint32_t stack);
/* The thread's next event starts a new chunk. */
void log_builder_end_event_chunk(struct log_builder *builder, uint32_t thread);

/* A module loaded at `start` (its load bias too), with the build id
 * de ad be ef; returns its index. */
uint32_t log_builder_module(struct log_builder *builder, const char *path,
                            uint64_t start, uint64_t end, uint64_t loaded_order,
                            uint64_t unloaded_order);
/* A module recorded exactly as `record` says; returns its index. */
uint32_t log_builder_module_record(struct log_builder *builder,
                                   const struct mdlog_module *record);

/* A chunk of `kind` with no records; returns its number. */
uint64_t log_builder_add_chunk(struct log_builder *builder, uint32_t kind,
                               uint32_t thread, uint64_t first);

/* The next event's order (what a module seen now records). */
uint64_t log_builder_next_order(const struct log_builder *builder);
uint64_t log_builder_chunk_count(const struct log_builder *builder);

/* The log's bytes, its header up to date.  Valid until the next change;
 * a test may damage them. */
unsigned char *log_builder_bytes(struct log_builder *builder, size_t *size);
size_t log_builder_chunk_offset(const struct log_builder *builder,
                                uint64_t chunk);
/* Writes the log to `path` (replacing it); false on error. */
bool log_builder_write(struct log_builder *builder, const char *path);

/* The parts of the log a reader interprets (the header's fields, the
 * chunk headers, the records in use), for damaging it where it hurts. */
struct log_range {
    size_t offset;
    size_t size;
};
size_t log_builder_hot_ranges(struct log_builder *builder,
                              struct log_range *ranges, size_t max);

#endif
