/*
 * Enumerating a target's zones.  The zone registry is read from the
 * target; each zone is recognised by its magic number and walked by the
 * library's own enumerator for its kind, built into the tools, with a
 * reader that copies from the target.  Stack ids arrive as ranges of
 * their own (MALLOCDEBUG_STACK_ID_RANGE_TYPE: the address and the id) and
 * are joined to the blocks by address.
 */
#include "config.h"
#include "guard_zone.h"
#include "big_array.h"
#include "heap_snapshot.h"
#include "sorted_runs.h"
#include "szone.h"

#include <errno.h>
#include <mallocdebug/stack_log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

kern_return_t szone_enumerator(task_t task, void *context, unsigned type_mask,
                               vm_address_t zone_address,
                               memory_reader_t reader,
                               vm_range_recorder_t recorder);
kern_return_t guard_zone_enumerator(task_t task, void *context,
                                    unsigned type_mask,
                                    vm_address_t zone_address,
                                    memory_reader_t reader,
                                    vm_range_recorder_t recorder);

/* ---- the reader: copies that live until the zone's walk ends ---- */

static const struct target *reading;
static void **copies;
static size_t copy_count, copy_capacity;

static kern_return_t target_reader(task_t task, vm_address_t address,
                                   vm_size_t size, void **local)
{
    (void)task;
    if (copy_count == copy_capacity) {
        size_t capacity = copy_capacity ? copy_capacity * 2 : 256;
        void **grown = realloc(copies, capacity * sizeof(*grown));
        if (!grown)
            return KERN_RESOURCE_SHORTAGE;
        copies = grown;
        copy_capacity = capacity;
    }
    void *copy = malloc(size ? size : 1);
    if (!copy)
        return KERN_RESOURCE_SHORTAGE;
    if (!target_read(reading, address, copy, size)) {
        free(copy);
        return KERN_INVALID_ADDRESS;
    }
    copies[copy_count++] = copy;
    *local = copy;
    return KERN_SUCCESS;
}

static void release_copies(void)
{
    for (size_t i = 0; i < copy_count; i++)
        free(copies[i]);
    copy_count = 0;
}

/* ---- collecting ranges ---- */

/* The ranges are handed out as they came. */
_Static_assert(sizeof(struct heap_range) == sizeof(vm_range_t) &&
                   offsetof(struct heap_range, size) == offsetof(vm_range_t, size),
               "heap_range is the enumerators' vm_range_t");

struct range_list {
    vm_range_t *ranges; /* big_array.h */
    size_t count, capacity;
    bool out_of_memory;
};

struct collection {
    struct heap_snapshot *snapshot;
    unsigned zone; /* the zone being enumerated */
    bool out_of_memory;
    struct range_list stack_ids, regions, block_regions;
};

static void range_list_add(struct range_list *list, const vm_range_t *ranges,
                           unsigned count)
{
    if (list->count + count > list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 4096;
        while (capacity < list->count + count)
            capacity *= 2;
        vm_range_t *grown = big_array_resize(list->ranges,
                                             list->capacity * sizeof(*grown),
                                             capacity * sizeof(*grown));
        if (!grown) {
            list->out_of_memory = true;
            return;
        }
        list->ranges = grown;
        list->capacity = capacity;
    }
    memcpy(list->ranges + list->count, ranges, count * sizeof(*ranges));
    list->count += count;
}

static void range_list_free(struct range_list *list)
{
    big_array_free(list->ranges, list->capacity * sizeof(*list->ranges));
    memset(list, 0, sizeof(*list));
}

static void add_blocks(struct collection *collection, const vm_range_t *ranges,
                       unsigned count)
{
    struct heap_snapshot *snapshot = collection->snapshot;
    if (snapshot->block_count + count > snapshot->block_capacity) {
        size_t capacity = snapshot->block_capacity ? snapshot->block_capacity * 2 : 4096;
        while (capacity < snapshot->block_count + count)
            capacity *= 2;
        struct heap_block *grown = big_array_resize(
            snapshot->blocks, snapshot->block_capacity * sizeof(*grown),
            capacity * sizeof(*grown));
        if (!grown) {
            collection->out_of_memory = true;
            return;
        }
        snapshot->blocks = grown;
        snapshot->block_capacity = capacity;
    }
    struct heap_zone *zone = &snapshot->zones[collection->zone];
    for (unsigned i = 0; i < count; i++) {
        snapshot->blocks[snapshot->block_count++] = (struct heap_block){
            .address = ranges[i].address, .size = ranges[i].size,
            .zone = collection->zone};
        zone->block_count++;
        zone->bytes += ranges[i].size;
        snapshot->bytes += ranges[i].size;
    }
}

static void record_ranges(task_t task, void *context, unsigned type,
                          vm_range_t *ranges, unsigned count)
{
    (void)task;
    struct collection *collection = context;
    if (type == MALLOC_PTR_IN_USE_RANGE_TYPE)
        add_blocks(collection, ranges, count);
    else if (type == MALLOCDEBUG_STACK_ID_RANGE_TYPE)
        range_list_add(&collection->stack_ids, ranges, count);
    else
        range_list_add(&collection->regions, ranges, count);
    if (type == MALLOC_PTR_REGION_RANGE_TYPE)
        range_list_add(&collection->block_regions, ranges, count);
}

/* A small list, copied out of its big array to be handed over. */
static struct heap_range *copy_ranges(const struct range_list *list)
{
    struct heap_range *copy = malloc((list->count + 1) * sizeof(*copy));
    if (copy && list->count)
        memcpy(copy, list->ranges, list->count * sizeof(*copy));
    return copy;
}

/* ---- zones ---- */

static const char *zone_kind(const struct target *target, uint64_t address)
{
    struct szone szone;
    struct guard_zone guard;
    if (target_read(target, address, &szone, sizeof(szone)) &&
        szone.magic == SZONE_MAGIC)
        return "scalable";
    if (target_read(target, address, &guard, sizeof(guard)) &&
        guard.magic == GUARD_ZONE_MAGIC)
        return "guard";
    return "unknown";
}

static void read_zone_name(const struct target *target, uint64_t address,
                           char *name, size_t size)
{
    malloc_zone_t zone;
    snprintf(name, size, "zone %#llx", (unsigned long long)address);
    if (!target_read(target, address, &zone, sizeof(zone)) || !zone.zone_name)
        return;
    char text[64] = "";
    /* The name may end before 64 bytes with unreadable memory after it:
     * read it in small steps. */
    for (size_t at = 0; at + 8 <= sizeof(text) - 1; at += 8)
        if (!target_read(target, (uint64_t)(uintptr_t)zone.zone_name + at,
                         text + at, 8) || memchr(text + at, 0, 8))
            break;
    text[sizeof(text) - 1] = '\0';
    /* A control character (a newline, an escape) would break the
     * report's lines, or write to the terminal. */
    for (char *c = text; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    if (text[0])
        snprintf(name, size, "%s", text);
}

static int enumerate_zone(struct target *target, uint64_t address,
                          const char *kind, struct collection *collection)
{
    const unsigned types = MALLOC_PTR_IN_USE_RANGE_TYPE |
                           MALLOCDEBUG_STACK_ID_RANGE_TYPE |
                           MALLOC_PTR_REGION_RANGE_TYPE |
                           MALLOC_ADMIN_REGION_RANGE_TYPE;
    reading = target;
    kern_return_t error = KERN_SUCCESS;
    if (strcmp(kind, "scalable") == 0)
        error = szone_enumerator(target->pid, collection, types,
                                 (vm_address_t)address, target_reader,
                                 record_ranges);
    else if (strcmp(kind, "guard") == 0)
        error = guard_zone_enumerator(target->pid, collection, types,
                                      (vm_address_t)address, target_reader,
                                      record_ranges);
    release_copies();
    return error == KERN_SUCCESS ? 0 : -1;
}

/* ---- joining ---- */

static int by_address(const void *a, const void *b)
{
    const vm_range_t *x = a, *y = b;
    return (x->address > y->address) - (x->address < y->address);
}

static void join_stack_ids(struct heap_snapshot *snapshot,
                           struct range_list *stack_ids)
{
    if (sort_by_address(stack_ids->ranges, stack_ids->count, sizeof(vm_range_t)) != 0)
        qsort(stack_ids->ranges, stack_ids->count, sizeof(vm_range_t), by_address);
    size_t j = 0;
    for (size_t i = 0; i < snapshot->block_count; i++) {
        struct heap_block *block = &snapshot->blocks[i];
        while (j < stack_ids->count &&
               stack_ids->ranges[j].address < block->address)
            j++;
        if (j < stack_ids->count &&
            stack_ids->ranges[j].address == block->address)
            block->stack = (uint32_t)stack_ids->ranges[j].size;
    }
}

static int read_registry(struct target *target, uint64_t **zones,
                         unsigned *count, char *message, size_t message_size)
{
    uint64_t array;
    if (!target_read(target, target->zones_address, &array, sizeof(array)) ||
        !target_read(target, target->zone_count_address, count,
                     sizeof(*count)) ||
        *count > 4096) {
        snprintf(message, message_size,
                 "cannot read the zone registry of process %d", (int)target->pid);
        return -1;
    }
    *zones = calloc(*count ? *count : 1, sizeof(**zones));
    if (!*zones || !target_read(target, array, *zones, *count * sizeof(**zones))) {
        free(*zones);
        snprintf(message, message_size,
                 "cannot read the zone list of process %d", (int)target->pid);
        return -1;
    }
    return 0;
}

static bool collection_failed(const struct collection *collection)
{
    return collection->out_of_memory || collection->stack_ids.out_of_memory ||
           collection->regions.out_of_memory ||
           collection->block_regions.out_of_memory;
}

/* Sorts the blocks, joins their stack ids, hands over the regions. */
static int finish(struct heap_snapshot *snapshot, struct collection *collection)
{
    if (sort_by_address(snapshot->blocks, snapshot->block_count,
                        sizeof(*snapshot->blocks)) != 0 ||
        sort_by_address(collection->stack_ids.ranges, collection->stack_ids.count,
                        sizeof(vm_range_t)) != 0)
        return -1;
    join_stack_ids(snapshot, &collection->stack_ids);
    qsort(collection->block_regions.ranges, collection->block_regions.count,
          sizeof(vm_range_t), by_address);
    snapshot->regions = copy_ranges(&collection->regions);
    snapshot->region_count = collection->regions.count;
    snapshot->block_regions = copy_ranges(&collection->block_regions);
    snapshot->block_region_count = collection->block_regions.count;
    return snapshot->regions && snapshot->block_regions ? 0 : -1;
}

int heap_snapshot_take(struct target *target, struct heap_snapshot *snapshot,
                       char *message, size_t message_size)
{
    memset(snapshot, 0, sizeof(*snapshot));
    message[0] = '\0';
    uint64_t *zones;
    unsigned count;
    if (read_registry(target, &zones, &count, message, message_size) != 0)
        return -1;
    snapshot->zones = calloc(count ? count : 1, sizeof(*snapshot->zones));
    struct collection collection = {.snapshot = snapshot};
    int result = snapshot->zones ? 0 : -1;
    for (unsigned i = 0; i < count && result == 0; i++) {
        struct heap_zone *zone = &snapshot->zones[snapshot->zone_count++];
        zone->address = zones[i];
        zone->kind = zone_kind(target, zones[i]);
        read_zone_name(target, zones[i], zone->name, sizeof(zone->name));
        collection.zone = i;
        if (enumerate_zone(target, zones[i], zone->kind, &collection) != 0) {
            snprintf(message, message_size,
                     "the enumerator of zone %s in process %d failed: its "
                     "records are damaged (run the program with "
                     "MallocCheckHeapStart=1 to find where)",
                     zone->name, (int)target->pid);
            result = -1;
        }
    }
    free(zones);
    if (result == 0 && (collection_failed(&collection) ||
                        finish(snapshot, &collection) != 0))
        result = -1;
    if (result != 0 && !message[0])
        snprintf(message, message_size, "out of memory listing the heap");
    range_list_free(&collection.stack_ids);
    range_list_free(&collection.regions);
    range_list_free(&collection.block_regions);
    if (result != 0)
        heap_snapshot_free(snapshot);
    return result;
}

void heap_snapshot_free(struct heap_snapshot *snapshot)
{
    big_array_free(snapshot->blocks, snapshot->block_capacity * sizeof(*snapshot->blocks));
    free(snapshot->zones);
    free(snapshot->regions);
    free(snapshot->block_regions);
    memset(snapshot, 0, sizeof(*snapshot));
}
