/*
 * uthash as the tools use it: keys are small fixed-size integers and
 * structures (addresses, ids), for which uthash's default byte-wise hash
 * is slow and its OOM exit is wrong (a tool reports and stops instead).
 * Include this instead of <uthash.h>; after an HASH_ADD, a true
 * tool_hash_out_of_memory says the entry was not added.
 *
 * Tables of millions of entries are bound by cache misses, one per
 * entry a lookup visits; uthash lets a chain reach about ten entries
 * before it doubles its buckets.  tool_hash_keep_sparse, called after
 * each add, doubles them once the table is half full instead.
 */
#ifndef MALLOCDEBUG_TOOL_HASH_H
#define MALLOCDEBUG_TOOL_HASH_H

#include "big_array.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Multiplies each 64-bit word in, folding the high bits down, so keys
 * whose low bits are all alike (16-byte aligned addresses) still spread
 * over the buckets that uthash picks by the low bits. */
static inline unsigned tool_hash_bytes(const void *key, size_t length)
{
    const unsigned char *bytes = key;
    uint64_t hash = length;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        hash = (hash ^ word) * UINT64_C(0x9E3779B97F4A7C15);
        hash ^= hash >> 29;
        bytes += 8;
        length -= 8;
    }
    if (length >= 4) {
        uint32_t word;
        memcpy(&word, bytes, 4);
        hash = (hash ^ word) * UINT64_C(0x9E3779B97F4A7C15);
        hash ^= hash >> 29;
        bytes += 4;
        length -= 4;
    }
    while (length-- > 0)
        hash = (hash ^ *bytes++) * UINT64_C(0x100000001B3);
    return (unsigned)(hash ^ (hash >> 32));
}

/* Set by uthash when a bucket array could not be allocated; the table
 * is left as it was before the add.  The tools are single-threaded. */
static bool tool_hash_out_of_memory __attribute__((unused));

#define HASH_FUNCTION(keyptr, keylen, hashv) \
    ((hashv) = tool_hash_bytes((keyptr), (keylen)))
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(object) \
    do {                            \
        (void)(object);             \
        tool_hash_out_of_memory = true; \
    } while (0)

/* Bucket arrays of big tables get huge pages too. */
#define uthash_malloc(size) big_array_alloc(size)
#define uthash_free(pointer, size) big_array_free((pointer), (size))

#include <uthash.h>

/* For tables whose handle is named hh.  A failed doubling leaves the
 * table as it was: only slower. */
#define tool_hash_keep_sparse(head)                                      \
    do {                                                                 \
        UT_hash_table *sparse_table_ = (head)->hh.tbl;                   \
        if (sparse_table_->num_items > sparse_table_->num_buckets / 2 && \
            !sparse_table_->noexpand) {                                  \
            int sparse_failed_ = 0;                                      \
            HASH_EXPAND_BUCKETS(&(head)->hh, sparse_table_, sparse_failed_); \
            (void)sparse_failed_;                                        \
        }                                                                \
    } while (0)

#endif
