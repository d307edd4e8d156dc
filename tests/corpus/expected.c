/*
 * The option sets, and what each case of the corpus should come to under
 * each: the one place that says what the library promises to catch.
 *
 * Some outcomes need features that are not in every build of the library
 * (canaries, the freed-block check, guard pages, Guard Malloc).  The
 * runner tells which features are in by comparing outcomes (see
 * feature_probes); an expectation that needs a missing feature is
 * reported as pending instead of being checked.  The table itself says
 * what each option should catch once everything is in.
 */
#include "corpus.h"

#include <string.h>

const struct option_set option_sets[SET_COUNT] = {
    [SET_NONE] = {"none", {NULL}, 0},
    [SET_SCRIBBLE] = {"scribble", {"MallocScribble=1", NULL}, 0},
    [SET_CANARIES] = {"canaries", {"MallocCanaries=1", NULL}, 0},
    [SET_GUARD_EDGES] = {"guard-edges", {"MallocGuardEdges=all", NULL},
                         FEATURE_GUARD_EDGES},
    [SET_CHECK_HEAP] = {"check-heap",
                        {"MallocCanaries=1", "MallocScribble=1",
                         "MallocCheckHeapStart=1", "MallocCheckHeapEach=1",
                         "MallocCheckHeapAbort=1", NULL},
                        0},
    [SET_STRICTEST] = {"strictest",
                       {"MallocScribble=1", "MallocCanaries=1",
                        "MallocGuardEdges=all", "MallocErrorAbort=1", NULL},
                       FEATURE_GUARD_EDGES},
    [SET_GUARD_MALLOC] = {"guard-malloc", {"MallocGuardMalloc=1", NULL},
                          FEATURE_GUARD_MALLOC},
    [SET_GUARD_MALLOC_STRICT] = {"guard-malloc-strict",
                                 {"MallocGuardMalloc=1", "MALLOC_STRICT_SIZE=1",
                                  NULL},
                                 FEATURE_GUARD_MALLOC | FEATURE_STRICT_SIZE},
    [SET_GUARD_MALLOC_BEFORE] = {"guard-malloc-before",
                                 {"MallocGuardMalloc=1",
                                  "MALLOC_PROTECT_BEFORE=1", NULL},
                                 FEATURE_GUARD_MALLOC | FEATURE_PROTECT_BEFORE},
};

const struct feature_probe feature_probes[] = {
    {FEATURE_CANARIES, "MallocCanaries", SET_CANARIES, SET_NONE, BUG_UNKNOWN},
    {FEATURE_FREED_CHECK, "the check of freed blocks (with MallocScribble)",
     SET_SCRIBBLE, SET_NONE, BUG_WRITE_AFTER_FREE},
    {FEATURE_GUARD_EDGES, "MallocGuardEdges", SET_GUARD_EDGES, SET_NONE,
     BUG_UNKNOWN},
    {FEATURE_GUARD_MALLOC, "MallocGuardMalloc", SET_GUARD_MALLOC, SET_NONE,
     BUG_UNKNOWN},
    {FEATURE_STRICT_SIZE, "MALLOC_STRICT_SIZE", SET_GUARD_MALLOC_STRICT,
     SET_GUARD_MALLOC, BUG_UNKNOWN},
    {FEATURE_PROTECT_BEFORE, "MALLOC_PROTECT_BEFORE", SET_GUARD_MALLOC_BEFORE,
     SET_GUARD_MALLOC, BUG_UNKNOWN},
};
const size_t feature_probe_count = sizeof(feature_probes) / sizeof(feature_probes[0]);

#define NO OUTCOME_NOT_CAUGHT
#define INSTR OUTCOME_INSTRUCTION
#define FREE OUTCOME_FREE
#define REUSE OUTCOME_REUSE
#define CHECK OUTCOME_CHECK
#define EXPOSED OUTCOME_EXPOSED

/* Blocks: tiny 24 bytes, small 3000, large 300000 (a multiple of 16, so
 * Guard Malloc ends it right against its guard page; the other two end 8
 * bytes short, in the 16-byte alignment, unless MALLOC_STRICT_SIZE).
 * Overruns write [0, size + n), underruns [-n, size - n).
 *
 * With no options, the 1 MiB overrun of a large block runs past the
 * mappings above the block until it meets a read-only one, so it faults
 * whatever the options (see tests/corpus/README.md).
 *
 * With canaries or guard pages, a freed large block's pages go straight
 * back to the kernel, so a write after free faults; with MallocScribble
 * alone they may wait in the cache of freed mappings, and the write goes
 * unseen.  With guard pages and canaries, a large block's canary before
 * it is its guard page: an underrun faults. */
const struct expectation expectations[] = {
    /*                                none  scribble canaries guard-edges check-heap strictest gm    gm-strict gm-before */
    {"overrun-tiny-1-store",        {NO,  NO,      FREE,    NO,         CHECK,     FREE,     NO,    INSTR,    NO}},
    {"overrun-tiny-8-store",        {NO,  NO,      FREE,    NO,         CHECK,     FREE,     NO,    INSTR,    NO}},
    {"overrun-tiny-32-store",       {NO,  NO,      FREE,    NO,         CHECK,     FREE,     INSTR, INSTR,    NO}},
    {"overrun-tiny-1m-store",       {NO,  NO,      FREE,    NO,         CHECK,     FREE,     INSTR, INSTR,    INSTR}},
    {"overrun-tiny-1-memcpy",       {NO,  NO,      FREE,    NO,         CHECK,     FREE,     NO,    INSTR,    NO}},
    {"overrun-tiny-8-memcpy",       {NO,  NO,      FREE,    NO,         CHECK,     FREE,     NO,    INSTR,    NO}},
    {"overrun-tiny-32-memcpy",      {NO,  NO,      FREE,    NO,         CHECK,     FREE,     INSTR, INSTR,    NO}},
    {"overrun-tiny-1m-memcpy",      {NO,  NO,      FREE,    NO,         CHECK,     FREE,     INSTR, INSTR,    INSTR}},
    {"overrun-small-1-store",       {NO,  NO,      FREE,    NO,         CHECK,     FREE,     NO,    INSTR,    NO}},
    {"overrun-small-8-store",       {NO,  NO,      FREE,    NO,         CHECK,     FREE,     NO,    INSTR,    NO}},
    {"overrun-small-32-store",      {NO,  NO,      FREE,    NO,         CHECK,     FREE,     INSTR, INSTR,    NO}},
    {"overrun-small-1m-store",      {NO,  NO,      FREE,    NO,         CHECK,     FREE,     INSTR, INSTR,    INSTR}},
    {"overrun-small-1-memcpy",      {NO,  NO,      FREE,    NO,         CHECK,     FREE,     NO,    INSTR,    NO}},
    {"overrun-small-8-memcpy",      {NO,  NO,      FREE,    NO,         CHECK,     FREE,     NO,    INSTR,    NO}},
    {"overrun-small-32-memcpy",     {NO,  NO,      FREE,    NO,         CHECK,     FREE,     INSTR, INSTR,    NO}},
    {"overrun-small-1m-memcpy",     {NO,  NO,      FREE,    NO,         CHECK,     FREE,     INSTR, INSTR,    INSTR}},
    {"overrun-large-1-store",       {NO,  NO,      FREE,    NO,         CHECK,     FREE,     INSTR, INSTR,    NO}},
    {"overrun-large-8-store",       {NO,  NO,      FREE,    NO,         CHECK,     FREE,     INSTR, INSTR,    NO}},
    {"overrun-large-32-store",      {NO,  NO,      FREE,    NO,         CHECK,     FREE,     INSTR, INSTR,    NO}},
    {"overrun-large-1m-store",      {INSTR, INSTR, INSTR,   INSTR,      INSTR,     INSTR,    INSTR, INSTR,    INSTR}},
    {"overrun-large-1-memcpy",      {NO,  NO,      FREE,    NO,         CHECK,     FREE,     INSTR, INSTR,    NO}},
    {"overrun-large-8-memcpy",      {NO,  NO,      FREE,    NO,         CHECK,     FREE,     INSTR, INSTR,    NO}},
    {"overrun-large-32-memcpy",     {NO,  NO,      FREE,    NO,         CHECK,     FREE,     INSTR, INSTR,    NO}},
    {"overrun-large-1m-memcpy",     {INSTR, INSTR, INSTR,   INSTR,      INSTR,     INSTR,    INSTR, INSTR,    INSTR}},
    {"underrun-tiny-1-store",       {NO,  NO,      FREE,    NO,         CHECK,     FREE,     NO,    NO,       INSTR}},
    {"underrun-tiny-8-store",       {NO,  NO,      FREE,    NO,         CHECK,     FREE,     NO,    NO,       INSTR}},
    {"underrun-tiny-1-memcpy",      {NO,  NO,      FREE,    NO,         CHECK,     FREE,     NO,    NO,       INSTR}},
    {"underrun-tiny-8-memcpy",      {NO,  NO,      FREE,    NO,         CHECK,     FREE,     NO,    NO,       INSTR}},
    {"underrun-small-1-store",      {NO,  NO,      FREE,    NO,         CHECK,     FREE,     NO,    NO,       INSTR}},
    {"underrun-small-8-store",      {NO,  NO,      FREE,    NO,         CHECK,     FREE,     NO,    NO,       INSTR}},
    {"underrun-small-1-memcpy",     {NO,  NO,      FREE,    NO,         CHECK,     FREE,     NO,    NO,       INSTR}},
    {"underrun-small-8-memcpy",     {NO,  NO,      FREE,    NO,         CHECK,     FREE,     NO,    NO,       INSTR}},
    {"underrun-large-1-store",      {NO, NO, FREE, INSTR, CHECK, INSTR, NO, NO, INSTR}},
    {"underrun-large-8-store",      {NO, NO, FREE, INSTR, CHECK, INSTR, NO, NO, INSTR}},
    {"underrun-large-1-memcpy",     {NO, NO, FREE, INSTR, CHECK, INSTR, NO, NO, INSTR}},
    {"underrun-large-8-memcpy",     {NO, NO, FREE, INSTR, CHECK, INSTR, NO, NO, INSTR}},
    {"double-free-immediate-tiny",  {FREE, FREE,   FREE,    FREE,       FREE,      FREE,     FREE,  FREE,     FREE}},
    {"double-free-immediate-small", {FREE, FREE,   FREE,    FREE,       FREE,      FREE,     FREE,  FREE,     FREE}},
    {"double-free-immediate-large", {FREE, FREE,   FREE,    FREE,       FREE,      FREE,     FREE,  FREE,     FREE}},
    {"double-free-delayed",         {FREE, FREE,   FREE,    FREE,       FREE,      FREE,     FREE,  FREE,     FREE}},
    {"double-free-interleaved",     {FREE, FREE,   FREE,    FREE,       FREE,      FREE,     FREE,  FREE,     FREE}},
    {"double-free-after-reuse",     {FREE, FREE,   FREE,    FREE,       FREE,      FREE,     FREE,  FREE,     FREE}},
    {"free-stack",                  {FREE, FREE,   FREE,    FREE,       FREE,      FREE,     FREE,  FREE,     FREE}},
    {"free-global",                 {FREE, FREE,   FREE,    FREE,       FREE,      FREE,     FREE,  FREE,     FREE}},
    {"free-interior-8",             {FREE, FREE,   FREE,    FREE,       FREE,      FREE,     FREE,  FREE,     FREE}},
    {"free-interior-half",          {FREE, FREE,   FREE,    FREE,       FREE,      FREE,     FREE,  FREE,     FREE}},
    {"free-unaligned",              {FREE, FREE,   FREE,    FREE,       FREE,      FREE,     FREE,  FREE,     FREE}},
    {"free-far",                    {FREE, FREE,   FREE,    FREE,       FREE,      FREE,     FREE,  FREE,     FREE}},
    {"free-far-top",                {FREE, FREE,   FREE,    FREE,       FREE,      FREE,     FREE,  FREE,     FREE}},
    {"write-after-free-tiny-0",     {NO,  REUSE,   NO,      NO,         CHECK,     REUSE,    INSTR, INSTR,    INSTR}},
    {"write-after-free-tiny-8",     {NO,  REUSE,   NO,      NO,         CHECK,     REUSE,    INSTR, INSTR,    INSTR}},
    {"write-after-free-small-0",    {NO,  REUSE,   NO,      NO,         CHECK,     REUSE,    INSTR, INSTR,    INSTR}},
    {"write-after-free-small-8",    {NO,  REUSE,   NO,      NO,         CHECK,     REUSE,    INSTR, INSTR,    INSTR}},
    {"write-after-free-large-0",    {NO, NO, INSTR, INSTR, INSTR, INSTR, INSTR, INSTR, INSTR}},
    {"write-after-free-large-8",    {NO, NO, INSTR, INSTR, INSTR, INSTR, INSTR, INSTR, INSTR}},
    {"uninitialised-tiny",          {NO,  EXPOSED, NO,      NO,         EXPOSED,   EXPOSED,  NO,    NO,       NO}},
    {"uninitialised-small",         {NO,  EXPOSED, NO,      NO,         EXPOSED,   EXPOSED,  NO,    NO,       NO}},
    {"uninitialised-large",         {NO,  EXPOSED, NO,      NO,         EXPOSED,   EXPOSED,  NO,    NO,       NO}},
};
const size_t expectation_count = sizeof(expectations) / sizeof(expectations[0]);

enum bug_kind bug_kind_of(const char *case_name)
{
    static const struct {
        const char *prefix;
        enum bug_kind kind;
    } prefixes[] = {
        {"overrun-", BUG_OVERRUN},
        {"underrun-", BUG_UNDERRUN},
        {"double-free-", BUG_DOUBLE_FREE},
        {"free-", BUG_INVALID_FREE},
        {"write-after-free-", BUG_WRITE_AFTER_FREE},
        {"uninitialised-", BUG_UNINITIALISED_READ},
    };
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(case_name, prefixes[i].prefix, strlen(prefixes[i].prefix)) == 0)
            return prefixes[i].kind;
    return BUG_UNKNOWN;
}

const char *outcome_name(enum outcome outcome)
{
    switch (outcome) {
    case OUTCOME_NOT_CAUGHT:
        return "not caught";
    case OUTCOME_INSTRUCTION:
        return "instruction";
    case OUTCOME_FREE:
        return "free";
    case OUTCOME_REUSE:
        return "reuse";
    case OUTCOME_CHECK:
        return "check";
    case OUTCOME_EXPOSED:
        return "exposed";
    case OUTCOME_OTHER_REPORT:
        return "another report";
    case OUTCOME_CRASHED:
        return "crashed";
    case OUTCOME_TIMEOUT:
        return "timed out";
    }
    return "?";
}

/* Bad frees are reported by the allocator itself, and uninitialised
 * reads exposed by MallocScribble: both are in every build.  Damage to
 * block edges is reported through canaries, damage to freed blocks
 * through the freed-block check, and a fault at the instruction needs
 * the set's guard pages, unless the case faults without any option. */
unsigned expectation_needs(const struct expectation *row, enum option_set_index set)
{
    enum bug_kind kind = bug_kind_of(row->case_name);
    switch (row->outcome[set]) {
    case OUTCOME_FREE:
    case OUTCOME_CHECK:
        if (kind == BUG_OVERRUN || kind == BUG_UNDERRUN)
            return FEATURE_CANARIES;
        return kind == BUG_WRITE_AFTER_FREE ? FEATURE_FREED_CHECK : 0;
    case OUTCOME_REUSE:
        return FEATURE_FREED_CHECK;
    case OUTCOME_INSTRUCTION:
        if (row->outcome[SET_NONE] == OUTCOME_INSTRUCTION)
            return 0;
        return option_sets[set].guard_features;
    default:
        return 0;
    }
}
