/*
 * spill-pile - a deep pile of spilled spawns over a fragmented heap: one task spawns n
 * children whose arguments take more than a frame's 48 bytes (200: each spawn pushes a
 * 256-byte block on its lane's spill stack, pareng.h), then syncs them all; past 16 MiB of
 * blocks (65,536 spawns) the pile outgrows the lane's region of the arena and goes on in the
 * shared heap. Before the runs, the caller leaves `holes` free blocks of 192 bytes (headers
 * included) at the head of the heap's free list, each between two blocks it keeps: what the
 * kept allocations of a program's tasks leave behind, and too small for a spill block (320
 * with its header), so that every first fit walks past them. 3 workers; prints each run's
 * seconds and checks the sum against plain C.
 *
 *   build/benchmarks/spill-pile [n [runs [holes]]]
 */
#include <pareng.h>
#include <stdio.h>
#include <stdlib.h>

#include "timing.h"

#define MAX_RUNS 100

typedef struct wide {
    uint64_t v[25];
} wide;

static wide wide_of(uint64_t i)
{
    wide w;
    for (unsigned k = 0; k < 25; k++)
        w.v[k] = i * (k + 1) + 0x9e3779b97f4a7c15ull;
    return w;
}

/* A child as short as can be: its spawn and its sync are what is timed. */
static uint64_t mix(const wide *w)
{
    return w->v[0] + w->v[24];
}

PARENG_TASK_1(uint64_t, child, wide, w) { return mix(&w); }

PARENG_TASK_1(uint64_t, pile, uint64_t, n)
{
    for (uint64_t i = 0; i < n; i++)
        PARENG_SPAWN(child, wide_of(i));
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += PARENG_SYNC(child);
    return sum;
}

/* The holes: pairs of a block freed and a block kept, freed from the last, so that each free
 * finds its place at the head of the free list at once. */
static int fragment(pareng_engine *e, size_t holes)
{
    void **freed = malloc(holes * sizeof *freed);
    if (!freed)
        return -1;
    size_t k = 0;
    while (k < holes && (freed[k] = pareng_alloc(e, 128)) && pareng_alloc(e, 64))
        k++;
    for (size_t i = k; i-- > 0;)
        pareng_free(e, freed[i]);
    free(freed);
    return k == holes ? 0 : -1;
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 300000;
    int runs = argc > 2 ? atoi(argv[2]) : 3;
    size_t holes = argc > 3 ? strtoull(argv[3], NULL, 10) : 20000;
    if (n < 1 || n > 100000000 || runs < 1 || runs > MAX_RUNS || holes > 10000000) {
        fprintf(stderr, "usage: spill-pile [n (1..10^8) [runs (1..%d) [holes (0..10^7)]]]\n",
                MAX_RUNS);
        return 2;
    }
    uint64_t expected = 0;
    for (uint64_t i = 0; i < n; i++) {
        wide w = wide_of(i);
        expected += mix(&w);
    }
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 3;
    pareng_engine *e;
    if (pareng_start(&e, &cfg) < 0) {
        fprintf(stderr, "spill-pile: %s\n", pareng_last_error());
        return 1;
    }
    if (fragment(e, holes) < 0) {
        fprintf(stderr, "spill-pile: cannot make %zu holes: %s\n", holes, pareng_last_error());
        pareng_stop(e);
        return 1;
    }
    printf("a pile of %llu spilled spawns (256-byte blocks), then their syncs, over %zu holes "
           "in the heap, 3 workers\n", (unsigned long long)n, holes);
    static double t[MAX_RUNS];
    for (int r = 0; r < runs; r++) {
        uint64_t got = 0;
        double t0 = bench_seconds();
        if (PARENG_RUN(e, pile, &got, n) < 0) {
            fprintf(stderr, "spill-pile: %s\n", pareng_last_error());
            pareng_stop(e);
            return 1;
        }
        t[r] = bench_seconds() - t0;
        if (got != expected) {
            fprintf(stderr, "spill-pile: sum %llu, not %llu\n", (unsigned long long)got,
                    (unsigned long long)expected);
            pareng_stop(e);
            return 1;
        }
        printf("run %d: %.3f s\n", r + 1, t[r]);
        fflush(stdout);
    }
    pareng_stop(e);
    printf("median: %.3f s\n", bench_median(t, runs));
    return 0;
}
