/*
 * Prints the corpus matrix in Markdown: one row per case, one column per
 * option set, each cell how the run ended in this build.  Where that
 * differs from the expectation (tests/corpus/expected.c), the cell shows
 * both, "now → expected".  Run from the top of the build tree, as
 * tests/corpus/matrix.sh does.
 */
#include "config.h"
#include "corpus.h"

#include <stdio.h>
#include <stdlib.h>

static const char *cell_word(enum outcome outcome)
{
    return outcome == OUTCOME_NOT_CAUGHT ? "—" : outcome_name(outcome);
}

static void print_header(void)
{
    printf("| case |");
    for (unsigned set = 0; set < SET_COUNT; set++)
        printf(" %s |", option_sets[set].name);
    printf("\n|---|");
    for (unsigned set = 0; set < SET_COUNT; set++)
        printf("---|");
    printf("\n");
}

static void print_row(struct corpus_run *runs, size_t row)
{
    printf("| %s |", expectations[row].case_name);
    for (unsigned set = 0; set < SET_COUNT; set++) {
        enum outcome now = corpus_run_at(runs, row, set)->outcome;
        enum outcome expected = expectations[row].outcome[set];
        if (now == expected)
            printf(" %s |", cell_word(now));
        else
            printf(" %s → %s |", cell_word(now), cell_word(expected));
    }
    printf("\n");
}

/* How many cases each set catches now, and how many it should. */
static void print_totals(struct corpus_run *runs)
{
    printf("| **caught** |");
    for (unsigned set = 0; set < SET_COUNT; set++) {
        unsigned now = 0, expected = 0;
        for (size_t row = 0; row < expectation_count; row++) {
            now += corpus_run_at(runs, row, set)->outcome != OUTCOME_NOT_CAUGHT;
            expected += expectations[row].outcome[set] != OUTCOME_NOT_CAUGHT;
        }
        if (now == expected)
            printf(" %u of %zu |", now, expectation_count);
        else
            printf(" %u → %u of %zu |", now, expected, expectation_count);
    }
    printf("\n");
}

static void print_pending(unsigned present)
{
    unsigned missing = 0;
    for (size_t i = 0; i < feature_probe_count; i++) {
        if (present & feature_probes[i].feature)
            continue;
        printf("%s %s", missing++ ? "," : "\nNot in this build yet (no outcome changes with them):",
               feature_probes[i].name);
    }
    if (missing)
        printf(".\n");
}

int main(void)
{
    struct corpus_paths paths;
    if (!corpus_find_paths(&paths))
        return EXIT_FAILURE;
    struct corpus_run *runs = corpus_run_all(&paths);
    if (!runs)
        return EXIT_FAILURE;
    print_header();
    for (size_t row = 0; row < expectation_count; row++)
        print_row(runs, row);
    print_totals(runs);
    print_pending(corpus_detect_features(runs));
    return EXIT_SUCCESS;
}
