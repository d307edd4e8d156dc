/*
 * Grouping by class: a uthash table from class name to its totals, and
 * for each class (and for all blocks) a table of sizes.
 */
#include "config.h"
#include "heap_classes.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

struct size_entry {
    uint64_t size, count;
    UT_hash_handle hh;
};

struct class_entry {
    const char *name;
    uint64_t count, bytes;
    struct size_entry *sizes;
    UT_hash_handle hh;
};

/* Neighbouring blocks mostly share their size and their site: the last
 * entry found is tried before the table. */
static bool count_size(struct size_entry **table, struct size_entry **last,
                       uint64_t size)
{
    struct size_entry *entry = *last;
    if (!entry || entry->size != size)
        HASH_FIND(hh, *table, &size, sizeof(size), entry);
    if (!entry) {
        entry = calloc(1, sizeof(*entry));
        if (!entry)
            return false;
        entry->size = size;
        HASH_ADD(hh, *table, size, sizeof(entry->size), entry);
    }
    entry->count++;
    *last = entry;
    return true;
}

static int larger_size_first(const void *a, const void *b)
{
    const struct heap_size_count *x = a, *y = b;
    return (x->size < y->size) - (x->size > y->size);
}

/* Moves a size table into a sorted array, freeing the table. */
static bool take_sizes(struct size_entry **table, struct heap_size_count **out,
                       size_t *count)
{
    *count = HASH_COUNT(*table);
    *out = calloc(*count ? *count : 1, sizeof(**out));
    size_t i = 0;
    struct size_entry *entry, *next;
    HASH_ITER(hh, *table, entry, next) {
        if (*out)
            (*out)[i++] = (struct heap_size_count){entry->size, entry->count};
        HASH_DEL(*table, entry);
        free(entry);
    }
    if (!*out)
        return false;
    qsort(*out, *count, sizeof(**out), larger_size_first);
    return true;
}

static struct class_entry *class_of(struct class_entry **table,
                                    const char *name)
{
    struct class_entry *entry;
    HASH_FIND_STR(*table, name, entry);
    if (!entry) {
        entry = calloc(1, sizeof(*entry));
        if (!entry)
            return NULL;
        entry->name = name;
        HASH_ADD_KEYPTR(hh, *table, entry->name, strlen(entry->name), entry);
    }
    return entry;
}

static bool sort_by_bytes;

/* Larger first; ties by name, so the report does not depend on the
 * order blocks were found in. */
static int compare_classes(const void *a, const void *b)
{
    const struct heap_class *x = a, *y = b;
    uint64_t first_x = sort_by_bytes ? x->bytes : x->count,
             first_y = sort_by_bytes ? y->bytes : y->count;
    if (first_x != first_y)
        return first_x < first_y ? 1 : -1;
    return strcmp(x->name, y->name);
}

static int collect(struct heap_classes *classes, struct class_entry **table,
                   bool sort_by_size)
{
    classes->count = HASH_COUNT(*table);
    classes->classes = calloc(classes->count ? classes->count : 1,
                              sizeof(*classes->classes));
    bool ok = classes->classes != NULL;
    size_t i = 0;
    struct class_entry *entry, *next;
    HASH_ITER(hh, *table, entry, next) {
        if (ok) {
            struct heap_class *row = &classes->classes[i++];
            *row = (struct heap_class){entry->name, entry->count, entry->bytes,
                                       NULL, 0};
            ok = take_sizes(&entry->sizes, &row->sizes, &row->size_count);
        }
        HASH_DEL(*table, entry);
        free(entry);
    }
    if (!ok)
        return -1;
    sort_by_bytes = sort_by_size;
    qsort(classes->classes, classes->count, sizeof(*classes->classes),
          compare_classes);
    return 0;
}

int heap_classes_build(struct heap_classes *classes,
                       const struct heap_snapshot *snapshot, uint32_t zone,
                       struct stack_names *names, bool sort_by_size)
{
    memset(classes, 0, sizeof(*classes));
    struct class_entry *table = NULL, *entry = NULL;
    struct size_entry *all_sizes = NULL, *last_size = NULL, *last_class_size = NULL;
    uint32_t last_stack = 0;
    bool ok = true;
    for (size_t i = 0; i < snapshot->block_count && ok; i++) {
        const struct heap_block *block = &snapshot->blocks[i];
        if (zone != UINT32_MAX && block->zone != zone)
            continue;
        if (!entry || block->stack != last_stack) {
            entry = class_of(&table, stack_names_class(names, block->stack));
            last_stack = block->stack;
            last_class_size = NULL;
        }
        ok = entry && count_size(&entry->sizes, &last_class_size, block->size) &&
             count_size(&all_sizes, &last_size, block->size);
        if (ok) {
            entry->count++;
            entry->bytes += block->size;
            classes->blocks++;
            classes->bytes += block->size;
        }
    }
    if (!take_sizes(&all_sizes, &classes->sizes, &classes->size_count))
        ok = false;
    if (collect(classes, &table, sort_by_size) != 0)
        ok = false;
    if (!ok)
        heap_classes_free(classes);
    return ok ? 0 : -1;
}

void heap_classes_free(struct heap_classes *classes)
{
    for (size_t i = 0; classes->classes && i < classes->count; i++)
        free(classes->classes[i].sizes);
    free(classes->classes);
    free(classes->sizes);
    memset(classes, 0, sizeof(*classes));
}
