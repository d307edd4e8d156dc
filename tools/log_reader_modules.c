/*
 * Modules: the executable and libraries the writer saw, by index, and
 * which of them held an address at a given moment.  Modules are handed
 * out as copies made safe to print: a damaged path cannot run past its
 * record.
 */
#include "config.h"

#include "log_reader_internal.h"

#include <string.h>

static const struct mdlog_module *find_module(const struct log_reader *reader,
                                              uint32_t index)
{
    if (index >= MDLOG_MODULE_THREAD)
        return NULL;
    const struct log_chunk_ref *ref = log_index_find(
        reader->index.modules, reader->index.module_chunks, index);
    if (ref == NULL)
        return NULL;
    const struct mdlog_chunk_header *chunk = log_reader_chunk(reader, ref->chunk);
    uint64_t slot = index - ref->first;
    if (slot >= log_reader_count(chunk, log_reader_module_capacity(reader)))
        return NULL;
    const struct mdlog_module *modules = log_reader_records(chunk);
    return &modules[slot];
}

uint32_t log_reader_module_count(const struct log_reader *reader)
{
    uint64_t capacity = log_reader_module_capacity(reader);
    uint64_t end = 0;
    for (size_t i = 0; i < reader->index.module_chunks; i++) {
        const struct log_chunk_ref *ref = &reader->index.modules[i];
        uint64_t chunk_end =
            ref->first + log_reader_count(log_reader_chunk(reader, ref->chunk),
                                          capacity);
        if (chunk_end > end)
            end = chunk_end;
    }
    return end < MDLOG_MODULE_THREAD ? (uint32_t)end : MDLOG_MODULE_THREAD;
}

bool log_reader_module(const struct log_reader *reader, uint32_t index,
                       struct mdlog_module *module)
{
    const struct mdlog_module *record = find_module(reader, index);
    if (record == NULL)
        return false;
    memcpy(module, record, sizeof(*module));
    /* Written when the module goes, long after the record was published. */
    module->unloaded_order =
        __atomic_load_n(&record->unloaded_order, __ATOMIC_ACQUIRE);
    module->path[MDLOG_PATH_MAX - 1] = '\0';
    if (module->build_id_size > MDLOG_BUILD_ID_MAX)
        module->build_id_size = MDLOG_BUILD_ID_MAX;
    return true;
}

static bool was_there(const struct mdlog_module *module, uint64_t pc,
                      uint64_t order)
{
    uint64_t unloaded = __atomic_load_n(&module->unloaded_order, __ATOMIC_ACQUIRE);
    return pc >= module->start && pc < module->end &&
           order >= module->loaded_order && (unloaded == 0 || order < unloaded);
}

uint32_t log_reader_module_for_pc(const struct log_reader *reader, uint64_t pc,
                                  uint64_t order)
{
    uint64_t capacity = log_reader_module_capacity(reader);
    uint32_t found = MDLOG_MODULE_UNKNOWN;
    uint64_t found_loaded = 0;
    /* Modules are few (hundreds): a scan of the records is enough.  Should
     * two claim the address, the one seen last wins. */
    for (size_t i = 0; i < reader->index.module_chunks; i++) {
        const struct log_chunk_ref *ref = &reader->index.modules[i];
        const struct mdlog_chunk_header *chunk = log_reader_chunk(reader, ref->chunk);
        const struct mdlog_module *modules = log_reader_records(chunk);
        uint64_t count = log_reader_count(chunk, capacity);
        for (uint64_t slot = 0; slot < count; slot++) {
            const struct mdlog_module *module = &modules[slot];
            if (ref->first + slot >= MDLOG_MODULE_THREAD || !was_there(module, pc, order) ||
                (found != MDLOG_MODULE_UNKNOWN && module->loaded_order < found_loaded))
                continue;
            found = (uint32_t)(ref->first + slot);
            found_loaded = module->loaded_order;
        }
    }
    return found;
}
