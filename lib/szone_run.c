/*
 * Runs: the blocks of one size class carved from region pages, and the
 * lists that let a class find a run with a free block in constant time.
 * A run's free list is threaded through the out-of-band metadata, never
 * through the blocks themselves.
 */
#include "config.h"
#include "szone.h"
#include "report.h"

static bool run_on_partial_list(const struct szone_run *run)
{
    return run->partial_link.le_prev != NULL;
}

static void class_link_run(struct szone_class *class, struct szone_run *run)
{
    LIST_INSERT_HEAD(&class->partial, run, partial_link);
}

static void class_unlink_run(struct szone_class *class, struct szone_run *run)
{
    LIST_REMOVE(run, partial_link);
    run->partial_link.le_prev = NULL;
}

static void run_hand_out(struct szone_run *run, unsigned index,
                         enum szone_block_state state, void **block,
                         uint8_t **block_state)
{
    run->meta->state[index] = (uint8_t)state;
    *block = (void *)(run->start + (uintptr_t)index * run->block_size);
    *block_state = &run->meta->state[index];
}

/* Freed blocks first, so that never-used pages stay untouched. */
static unsigned run_take(struct szone_run *run, void **blocks,
                         uint8_t **states, unsigned count,
                         enum szone_block_state state)
{
    unsigned taken = 0;
    for (; taken < count && run->free_head != RUN_FREE_LIST_END; taken++) {
        unsigned index = run->free_head;
        run->free_head = run->meta->next_free[index];
        run->free_count--;
        run_hand_out(run, index, state, &blocks[taken], &states[taken]);
    }
    for (; taken < count && run->carved < run->block_count; taken++)
        run_hand_out(run, run->carved++, state, &blocks[taken], &states[taken]);
    run->handed_out = (uint16_t)(run->handed_out + taken);
    return taken;
}

static bool run_is_exhausted(const struct szone_run *run)
{
    return run->free_count == 0 && run->carved == run->block_count;
}

unsigned szone_class_take_blocks(struct szone *zone, unsigned magazine,
                                 unsigned class_index, void **blocks,
                                 uint8_t **states,
                                 unsigned count, enum szone_block_state state)
{
    struct szone_class *class = szone_class_of(zone, magazine, class_index);
    unsigned taken = 0;
    md_lock(&class->lock);
    while (taken < count) {
        struct szone_run *run = LIST_FIRST(&class->partial);
        if (!run) {
            run = szone_region_new_run(zone, magazine, class_index);
            if (!run)
                break; /* reported below, once the lock is released */
            class->run_count++;
            class_link_run(class, run);
        }
        taken += run_take(run, blocks + taken, states + taken, count - taken,
                          state);
        if (run_is_exhausted(run))
            class_unlink_run(class, run);
    }
    md_unlock(&class->lock);
    if (taken == 0)
        report_allocation_failure(REGION_SIZE);
    return taken;
}

/* The last run of a class stays when it is one page: see szone_region.c. */
static bool class_should_release(const struct szone_class *class,
                                 const struct szone_run *run)
{
    return class->run_count > 1 || run->page_count > 1;
}

static void class_release_run(struct szone *zone, struct szone_class *class,
                              struct szone_run *run)
{
    class_unlink_run(class, run);
    class->run_count--;
    szone_region_release_run(zone, run);
}

/* Class lock held. */
static void run_take_back(struct szone *zone, struct szone_class *class,
                          struct szone_run *run, unsigned index)
{
    uint8_t *state = &run->meta->state[index];
    if (*state != BLOCK_CACHED)
        return; /* every block comes back claimed: see szone_claim_block */
    *state = BLOCK_FREE;
    run->meta->next_free[index] = run->free_head;
    run->free_head = (uint16_t)index;
    run->free_count++;
    run->handed_out--;
    if (!run_on_partial_list(run))
        class_link_run(class, run);
    if (run->handed_out == 0 && class_should_release(class, run))
        class_release_run(zone, class, run);
}

/* Blocks of one batch mostly share a magazine: its lock is kept until a
 * block of another one comes. */
void szone_class_return_blocks(struct szone *zone, unsigned class_index,
                               void *const *blocks, unsigned count)
{
    struct szone_class *locked = NULL;
    for (unsigned i = 0; i < count; i++) {
        uintptr_t address = (uintptr_t)blocks[i];
        struct szone_run *run =
            szone_region_run_of(region_map_lookup(address), address);
        struct szone_class *class = szone_class_of(zone, run->magazine,
                                                   class_index);
        if (class != locked) {
            if (locked)
                md_unlock(&locked->lock);
            md_lock(&class->lock);
            locked = class;
        }
        run_take_back(zone, class, run,
                      (unsigned)szone_run_block_index(run, address));
    }
    if (locked)
        md_unlock(&locked->lock);
}

void szone_release_empty_runs(struct szone *zone)
{
    for (unsigned i = 0; i < szone_class_total(zone); i++) {
        struct szone_class *class = &zone->classes[i];
        md_lock(&class->lock);
        struct szone_run *run = LIST_FIRST(&class->partial), *next;
        for (; run; run = next) {
            next = LIST_NEXT(run, partial_link);
            if (run->handed_out == 0)
                class_release_run(zone, class, run);
        }
        md_unlock(&class->lock);
    }
}
