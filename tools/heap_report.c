/*
 * heap's report.  As macOS's heap: the process, one line per zone, the
 * "All zones" line with the size histogram, then the COUNT BYTES AVG
 * CLASS_NAME table (per zone with -zones), then the blocks -addresses
 * asks for.
 */
#include "config.h"
#include "heap_classes.h"
#include "heap_report.h"
#include "json_text.h"

#include <inttypes.h>
#include <string.h>

int heap_address_pattern_parse(const char *text,
                               struct heap_address_pattern *pattern)
{
    memset(pattern, 0, sizeof(*pattern));
    pattern->active = true;
    if (strlen(text) >= sizeof(pattern->text))
        return -1;
    strcpy(pattern->text, text);
    if (strcmp(text, "all") == 0)
        return 0;
    const char *bracket = strchr(text, '[');
    size_t name_length = bracket ? (size_t)(bracket - text) : strlen(text);
    if (name_length >= sizeof(pattern->class_name))
        return -1;
    memcpy(pattern->class_name, text, name_length);
    if (bracket) {
        if (!size_filter_parse(bracket, &pattern->filter))
            return -1;
        pattern->has_filter = true;
    }
    return name_length || bracket ? 0 : -1;
}

static bool pattern_matches(const struct heap_address_pattern *pattern,
                            const char *class_name, uint64_t size)
{
    return strstr(class_name, pattern->class_name) &&
           (!pattern->has_filter || size_filter_matches(&pattern->filter, size));
}

/* 2048KB, 1.5MB, 300: sizes the way macOS's heap writes them. */
static void format_size(char *text, size_t size, uint64_t bytes)
{
    if (bytes >= (10u << 20) && bytes % (1u << 20) == 0)
        snprintf(text, size, "%" PRIu64 "MB", bytes >> 20);
    else if (bytes >= 1024 && bytes % 1024 == 0)
        snprintf(text, size, "%" PRIu64 "KB", bytes >> 10);
    else if (bytes >= (1u << 20))
        snprintf(text, size, "%.1fMB", bytes / 1048576.0);
    else if (bytes >= 10240)
        snprintf(text, size, "%.1fKB", bytes / 1024.0);
    else
        snprintf(text, size, "%" PRIu64, bytes);
}

static void format_bytes(char *text, size_t size, uint64_t bytes, bool human)
{
    if (human)
        format_size(text, size, bytes);
    else
        snprintf(text, size, "%" PRIu64, bytes);
}

static void print_sizes_line(FILE *out, const struct heap_classes *classes)
{
    fprintf(out, "Sizes:");
    for (size_t i = 0; i < classes->size_count; i++) {
        char size[32];
        format_size(size, sizeof(size), classes->sizes[i].size);
        fprintf(out, " %s[%" PRIu64 "]", size, classes->sizes[i].count);
    }
    fprintf(out, "\n\n");
}

static void print_table(FILE *out, const struct heap_classes *classes,
                        const struct heap_options *options)
{
    fprintf(out, "%8s %10s %9s   %s\n", "COUNT", "BYTES", "AVG", "CLASS_NAME");
    fprintf(out, "%8s %10s %9s   %s\n", "=====", "=====", "===", "==========");
    for (size_t i = 0; i < classes->count; i++) {
        const struct heap_class *row = &classes->classes[i];
        char bytes[32];
        format_bytes(bytes, sizeof(bytes), row->bytes, options->human_readable);
        fprintf(out, "%8" PRIu64 " %10s %9.1f   %s\n", row->count, bytes,
                (double)row->bytes / (double)row->count, row->name);
        for (size_t j = 0; options->show_sizes && j < row->size_count; j++) {
            format_bytes(bytes, sizeof(bytes),
                         row->sizes[j].size * row->sizes[j].count,
                         options->human_readable);
            fprintf(out, "%8" PRIu64 " %10s %9" PRIu64 "     size %" PRIu64 "\n",
                    row->sizes[j].count, bytes, row->sizes[j].size,
                    row->sizes[j].size);
        }
    }
    fprintf(out, "\n");
}

static void print_zone_lines(FILE *out, const struct live_process *process,
                             const struct heap_snapshot *snapshot)
{
    fprintf(out, "Process:         %s [%d]\n\n", process->target.name,
            (int)process->target.pid);
    fprintf(out, "Process %d: %u zone%s\n\n", (int)process->target.pid,
            snapshot->zone_count, snapshot->zone_count == 1 ? "" : "s");
    for (unsigned i = 0; i < snapshot->zone_count; i++) {
        const struct heap_zone *zone = &snapshot->zones[i];
        char bytes[32];
        format_size(bytes, sizeof(bytes), zone->bytes);
        char suffix[32] = "";
        if (zone->address)
            snprintf(suffix, sizeof(suffix), "_%#" PRIx64, zone->address);
        fprintf(out, "Zone %s%s: %zu nodes malloced for %s%s\n",
                zone->name, suffix, zone->block_count, bytes,
                strcmp(zone->kind, "unknown") == 0
                    ? " (a zone of the program's own: its blocks are not "
                      "listed)"
                    : "");
    }
    fprintf(out, "\n");
}

static void print_addresses(FILE *out, const struct heap_snapshot *snapshot,
                            struct stack_names *names,
                            const struct heap_address_pattern *pattern)
{
    fprintf(out, "Active blocks in all zones that match pattern '%s':\n",
            pattern->text);
    for (size_t i = 0; i < snapshot->block_count; i++) {
        const struct heap_block *block = &snapshot->blocks[i];
        const char *class_name = stack_names_class(names, block->stack);
        if (pattern_matches(pattern, class_name, block->size))
            fprintf(out, "    %#" PRIx64 " (%" PRIu64 " bytes) %s\n",
                    block->address, block->size, class_name);
    }
    fprintf(out, "\n");
}

static int print_text(FILE *out, struct live_process *process,
                      const struct heap_snapshot *snapshot,
                      const struct heap_options *options)
{
    print_zone_lines(out, process, snapshot);
    struct heap_classes classes;
    for (unsigned zone = 0; options->by_zone && zone < snapshot->zone_count; zone++) {
        if (heap_classes_build(&classes, snapshot, zone, process->names,
                               options->sort_by_size) != 0)
            return -1;
        fprintf(out, "Zone %s_%#" PRIx64 ": %" PRIu64 " nodes - ",
                snapshot->zones[zone].name, snapshot->zones[zone].address,
                classes.blocks);
        print_sizes_line(out, &classes);
        print_table(out, &classes, options);
        heap_classes_free(&classes);
    }
    if (heap_classes_build(&classes, snapshot, UINT32_MAX, process->names,
                           options->sort_by_size) != 0)
        return -1;
    fprintf(out, "All zones: %" PRIu64 " nodes malloced - ", classes.blocks);
    print_sizes_line(out, &classes);
    print_table(out, &classes, options);
    heap_classes_free(&classes);
    return 0;
}

static void json_classes(FILE *out, const struct heap_classes *classes)
{
    fprintf(out, "\"nodes\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"sizes\":[",
            classes->blocks, classes->bytes);
    for (size_t i = 0; i < classes->size_count; i++)
        fprintf(out, "%s{\"size\":%" PRIu64 ",\"count\":%" PRIu64 "}",
                i ? "," : "", classes->sizes[i].size, classes->sizes[i].count);
    fprintf(out, "],\"classes\":[");
    for (size_t i = 0; i < classes->count; i++) {
        const struct heap_class *row = &classes->classes[i];
        fprintf(out, "%s{\"class\":", i ? "," : "");
        json_write_string(out, row->name);
        fprintf(out, ",\"count\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
                row->count, row->bytes);
    }
    fprintf(out, "]");
}

static void json_addresses(FILE *out, const struct heap_snapshot *snapshot,
                           struct stack_names *names,
                           const struct heap_address_pattern *pattern)
{
    fprintf(out, ",\"blocks\":[");
    bool first = true;
    for (size_t i = 0; i < snapshot->block_count; i++) {
        const struct heap_block *block = &snapshot->blocks[i];
        const char *class_name = stack_names_class(names, block->stack);
        if (!pattern_matches(pattern, class_name, block->size))
            continue;
        fprintf(out, "%s{\"address\":%" PRIu64 ",\"size\":%" PRIu64
                     ",\"zone\":%" PRIu32 ",\"class\":",
                first ? "" : ",", block->address, block->size, block->zone);
        json_write_string(out, class_name);
        fprintf(out, "}");
        first = false;
    }
    fprintf(out, "]");
}

static int print_json(FILE *out, struct live_process *process,
                      const struct heap_snapshot *snapshot,
                      const struct heap_options *options)
{
    fprintf(out, "{\"pid\":%d,\"process\":", (int)process->target.pid);
    json_write_string(out, process->target.name);
    fprintf(out, ",\"zones\":[");
    struct heap_classes classes;
    for (unsigned zone = 0; zone < snapshot->zone_count; zone++) {
        fprintf(out, "%s{\"name\":", zone ? "," : "");
        json_write_string(out, snapshot->zones[zone].name);
        fprintf(out, ",\"address\":%" PRIu64 ",\"kind\":\"%s\",",
                snapshot->zones[zone].address, snapshot->zones[zone].kind);
        if (heap_classes_build(&classes, snapshot, zone, process->names,
                               options->sort_by_size) != 0)
            return -1;
        json_classes(out, &classes);
        heap_classes_free(&classes);
        fprintf(out, "}");
    }
    fprintf(out, "],");
    if (heap_classes_build(&classes, snapshot, UINT32_MAX, process->names,
                           options->sort_by_size) != 0)
        return -1;
    json_classes(out, &classes);
    heap_classes_free(&classes);
    if (options->addresses.active)
        json_addresses(out, snapshot, process->names, &options->addresses);
    fprintf(out, "}\n");
    return 0;
}

int heap_report(FILE *out, struct live_process *process,
                const struct heap_snapshot *snapshot,
                const struct heap_options *options)
{
    if (options->json)
        return print_json(out, process, snapshot, options);
    if (print_text(out, process, snapshot, options) != 0)
        return -1;
    if (options->addresses.active)
        print_addresses(out, snapshot, process->names, &options->addresses);
    return 0;
}
