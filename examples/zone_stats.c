/*
 * zone_stats: a tour of the zone API on a realistic little heap.
 *
 * The program builds what a typical C program keeps in memory: a linked
 * list of records, a hash table of strings (in a zone of its own, made
 * with malloc_create_zone), a few buffers big enough to bypass the size
 * classes.  It frees part of all that, then asks the library what is
 * left: per-zone statistics, the scalable zone's per-kind figures, the
 * zones' own printout and a consistency check.  Finally it hands empty
 * memory back to the kernel with malloc_zone_pressure_relief.
 *
 * It links with libmallocdebug, so the plain malloc/free calls below are
 * served by the library's default zone too.
 *
 *   ./examples/zone_stats
 */
#include <malloc/malloc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_LENGTH 5000
#define TABLE_BUCKETS 1024
#define TABLE_WORDS 3000
#define SMALL_BUFFERS 8
#define LARGE_BUFFERS 6

/* ---- a linked list in the default zone ---- */

struct record {
    struct record *next;
    unsigned id;
    double score;
    char label[40];
};

static struct record *list_build(unsigned count)
{
    struct record *head = NULL;
    for (unsigned i = 0; i < count; i++) {
        struct record *r = malloc(sizeof(*r));
        if (!r)
            break;
        r->id = i;
        r->score = i * 0.5;
        snprintf(r->label, sizeof(r->label), "record-%u", i);
        r->next = head;
        head = r;
    }
    return head;
}

/* Frees every other record; returns how many were freed. */
static unsigned list_thin(struct record *head)
{
    unsigned freed = 0;
    for (struct record *r = head; r && r->next; r = r->next) {
        struct record *gone = r->next;
        r->next = gone->next;
        free(gone);
        freed++;
    }
    return freed;
}

static void list_free(struct record *head)
{
    while (head) {
        struct record *next = head->next;
        free(head);
        head = next;
    }
}

/* ---- a hash table of strings in a zone of its own ---- */

struct entry {
    struct entry *next;
    char *key;
    unsigned count;
};

struct table {
    malloc_zone_t *zone;
    struct entry **buckets;
    unsigned used;
};

static unsigned hash_string(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static char *zone_strdup(malloc_zone_t *zone, const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = malloc_zone_malloc(zone, n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}

static int table_init(struct table *t, malloc_zone_t *zone)
{
    t->zone = zone;
    t->used = 0;
    t->buckets = malloc_zone_calloc(zone, TABLE_BUCKETS, sizeof(*t->buckets));
    return t->buckets ? 0 : -1;
}

static void table_add(struct table *t, const char *key)
{
    unsigned b = hash_string(key) % TABLE_BUCKETS;
    for (struct entry *e = t->buckets[b]; e; e = e->next)
        if (strcmp(e->key, key) == 0) {
            e->count++;
            return;
        }
    struct entry *e = malloc_zone_malloc(t->zone, sizeof(*e));
    if (!e)
        return;
    if (!(e->key = zone_strdup(t->zone, key))) {
        malloc_zone_free(t->zone, e);
        return;
    }
    e->count = 1;
    e->next = t->buckets[b];
    t->buckets[b] = e;
    t->used++;
}

/* Removes the entries whose key has an odd hash; returns how many. */
static unsigned table_remove_odd(struct table *t)
{
    unsigned removed = 0;
    for (unsigned b = 0; b < TABLE_BUCKETS; b++) {
        struct entry **link = &t->buckets[b];
        while (*link) {
            struct entry *e = *link;
            if (hash_string(e->key) & 1) {
                *link = e->next;
                malloc_zone_free(t->zone, e->key);
                malloc_zone_free(t->zone, e);
                t->used--;
                removed++;
            } else {
                link = &e->next;
            }
        }
    }
    return removed;
}

/* ---- reporting ---- */

static void print_stats_line(const char *label, const malloc_statistics_t *s)
{
    printf("  %-6s %8u blocks %12zu bytes in use %12zu bytes held\n", label,
           s->blocks_in_use, s->size_in_use, s->size_allocated);
}

static void print_zone(malloc_zone_t *zone)
{
    static const char *const kinds[] = {"tiny", "small", "large", "huge"};
    malloc_statistics_t stats;
    const char *name = malloc_get_zone_name(zone);

    malloc_zone_statistics(zone, &stats);
    printf("zone %p \"%s\" (peak held %zu bytes)\n", (void *)zone,
           name ? name : "", stats.max_size_in_use);
    print_stats_line("all", &stats);
    for (unsigned which = 0; which < 4; which++)
        if (scalable_zone_statistics(zone, &stats, which))
            print_stats_line(kinds[which], &stats);
}

static void print_all_zones(const char *title)
{
    vm_address_t *zones;
    unsigned count;

    printf("\n== %s ==\n", title);
    if (malloc_get_all_zones(mach_task_self(), NULL, &zones, &count) !=
        KERN_SUCCESS) {
        printf("malloc_get_all_zones failed\n");
        return;
    }
    for (unsigned i = 0; i < count; i++)
        print_zone((malloc_zone_t *)zones[i]);
}

int main(void)
{
    static const char *const words[] = {
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
        "hotel", "india", "juliett", "kilo", "lima", "mike", "november"};
    size_t small_sizes[SMALL_BUFFERS], large_sizes[LARGE_BUFFERS];
    void *small_buffers[SMALL_BUFFERS], *large_buffers[LARGE_BUFFERS];
    char key[64];
    int status = 0;

    /* A zone for the table, so that its memory shows up on its own. */
    malloc_zone_t *table_zone = malloc_create_zone(0, 0);
    if (!table_zone) {
        fprintf(stderr, "zone_stats: malloc_create_zone failed\n");
        return 1;
    }
    malloc_set_zone_name(table_zone, "StringTableZone");

    struct record *list = list_build(LIST_LENGTH);

    struct table table;
    if (table_init(&table, table_zone) != 0) {
        fprintf(stderr, "zone_stats: out of memory\n");
        return 1;
    }
    for (unsigned i = 0; i < TABLE_WORDS; i++) {
        snprintf(key, sizeof(key), "%s-%s-%u", words[i % 14],
                 words[(i / 14) % 14], i % 97);
        table_add(&table, key);
    }

    /* Buffers in the small kind (1 KiB to 128 KiB)... */
    for (unsigned i = 0; i < SMALL_BUFFERS; i++) {
        small_sizes[i] = 1500 + i * 9000;
        small_buffers[i] = malloc(small_sizes[i]);
        if (small_buffers[i])
            memset(small_buffers[i], 'x', small_sizes[i]);
    }
    /* ...large ones (mappings of their own), and one huge (16 MiB+). */
    for (unsigned i = 0; i < LARGE_BUFFERS; i++) {
        large_sizes[i] = (i == LARGE_BUFFERS - 1) ? 20u << 20
                                                  : (200u << 10) << i;
        large_buffers[i] = calloc(1, large_sizes[i]);
    }

    printf("allocated: %u list records, %u table entries (%u bytes of "
           "buckets), %d small and %d large buffers\n",
           LIST_LENGTH, table.used,
           (unsigned)(TABLE_BUCKETS * sizeof(*table.buckets)), SMALL_BUFFERS,
           LARGE_BUFFERS);
    printf("a %zu-byte record occupies a %zu-byte block "
           "(malloc_good_size: %zu); its zone is \"%s\"\n",
           sizeof(struct record), malloc_size(list),
           malloc_good_size(sizeof(struct record)),
           malloc_get_zone_name(malloc_zone_from_ptr(list)));
    print_all_zones("after allocating");

    /* Free part of everything. */
    unsigned records_freed = list_thin(list);
    unsigned entries_freed = table_remove_odd(&table);
    for (unsigned i = 0; i < SMALL_BUFFERS; i += 2) {
        free(small_buffers[i]);
        small_buffers[i] = NULL;
    }
    for (unsigned i = 0; i < LARGE_BUFFERS; i += 2) {
        free(large_buffers[i]);
        large_buffers[i] = NULL;
    }
    printf("\nfreed: %u list records, %u table entries, half the buffers\n",
           records_freed, entries_freed);
    print_all_zones("after freeing part of it");

    /* The zones describe themselves (on standard error). */
    printf("\n== malloc_zone_print(NULL, 0) ==\n");
    fflush(stdout);
    malloc_zone_print(NULL, 0);

    if (malloc_zone_check(NULL)) {
        printf("\nmalloc_zone_check(NULL): all zones are consistent\n");
    } else {
        printf("\nmalloc_zone_check(NULL): a zone is damaged\n");
        status = 1;
    }

    /* Tidy up: destroying the zone frees the whole table at once. */
    malloc_destroy_zone(table_zone);
    list_free(list);
    for (unsigned i = 0; i < SMALL_BUFFERS; i++)
        free(small_buffers[i]);
    for (unsigned i = 0; i < LARGE_BUFFERS; i++)
        free(large_buffers[i]);
    /* What remains in use is stdio's buffer for standard output.  The
     * zone still holds runs: freed blocks wait in this thread's cache, and
     * their runs count as busy until the cache gives them back. */
    print_all_zones("after destroying StringTableZone and freeing the rest");

    /* Pressure relief empties this thread's cache, releases every empty
     * run (also the one-page runs the policy keeps) and unmaps the cache
     * of freed large mappings. */
    malloc_statistics_t before, after;
    malloc_zone_statistics(malloc_default_zone(), &before);
    size_t released = malloc_zone_pressure_relief(NULL, 0);
    malloc_zone_statistics(malloc_default_zone(), &after);
    printf("\nmalloc_zone_pressure_relief(NULL, 0) gave back %zu bytes: "
           "the default zone now holds %zu bytes (it held %zu)\n",
           released, after.size_allocated, before.size_allocated);
    return status;
}
