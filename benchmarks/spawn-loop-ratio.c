/*
 * spawn-loop-ratio - the flat loop of spawns as a user writes it (one task spawns n children
 * of about a microsecond each from a for loop, then syncs them all), against the same loop as
 * plain serial C in this file, same compiler and flags, on 2 workers: the default
 * configuration, and deques of 16,384 frames (the default of pareng 0.1, which such a loop
 * overflows); medians of alternating runs. Prints the share of spawns that overflowed the
 * deque and ran inline at once (pareng_stats.overflows).
 *
 *   build/benchmarks/spawn-loop-ratio [n [runs]]
 */
#include <pareng.h>
#include <stdio.h>
#include <stdlib.h>

#include "timing.h"

#define MAX_RUNS 100
/* Rounds of work per child: about a microsecond. */
#define ROUNDS 300

/* One child's work, a call in both versions: inlined, gcc runs the serial loop's independent
 * chains side by side in vector registers, which no task version can do, and the ratio would
 * measure that. */
__attribute__((noinline)) static uint64_t work(uint64_t x)
{
    for (int k = 0; k < ROUNDS; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

PARENG_TASK_1(uint64_t, child, uint64_t, i) { return work(i + 1); }

PARENG_TASK_1(uint64_t, loop, uint64_t, n)
{
    for (uint64_t i = 0; i < n; i++)
        PARENG_SPAWN(child, i);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += PARENG_SYNC(child);
    return sum;
}

static uint64_t loop_plain(uint64_t n)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += work(i + 1);
    return sum;
}



static const struct {
    const char *name;
    unsigned deque_capacity;
} configs[] = {
    {"default configuration", 0},
    {"deque of 16384 frames", 16384},
};
#define CONFIGS (sizeof configs / sizeof configs[0])

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    int runs = argc > 2 ? atoi(argv[2]) : 7;
    if (n < 1 || n > 100000000 || runs < 1 || runs > MAX_RUNS) {
        fprintf(stderr, "usage: spawn-loop-ratio [n (1..10^8) [runs (1..%d)]]\n", MAX_RUNS);
        return 2;
    }
    pareng_engine *engines[CONFIGS];
    for (size_t c = 0; c < CONFIGS; c++) {
        pareng_config cfg;
        pareng_config_default(&cfg);
        cfg.workers = 2;
        cfg.deque_capacity = configs[c].deque_capacity;
        if (pareng_start(&engines[c], &cfg) < 0) {
            fprintf(stderr, "spawn-loop-ratio: %s\n", pareng_last_error());
            return 1;
        }
    }
    static double t[CONFIGS + 1][MAX_RUNS];
    for (int r = 0; r < runs; r++) {
        double t0 = bench_seconds();
        uint64_t expected = loop_plain(n);
        t[0][r] = bench_seconds() - t0;
        for (size_t c = 0; c < CONFIGS; c++) {
            uint64_t got = 0;
            t0 = bench_seconds();
            if (PARENG_RUN(engines[c], loop, &got, n) < 0) {
                fprintf(stderr, "spawn-loop-ratio: %s\n", pareng_last_error());
                return 1;
            }
            t[c + 1][r] = bench_seconds() - t0;
            if (got != expected) {
                fprintf(stderr, "spawn-loop-ratio: %s: sum %llu, not %llu\n", configs[c].name,
                        (unsigned long long)got, (unsigned long long)expected);
                return 1;
            }
        }
    }
    printf("a loop of %llu spawns, 2 workers, %d alternating runs, medians\n",
           (unsigned long long)n, runs);
    printf("%-24s %10s %9s %11s %11s\n", "configuration", "median s", "/ serial", "overflowed",
           "steals/run");
    double serial = bench_median(t[0], runs);
    printf("%-24s %10.4f %9.3f\n", "plain serial C", serial, 1.0);
    for (size_t c = 0; c < CONFIGS; c++) {
        uint64_t overflows = 0, steals = 0;
        for (unsigned w = 0; w < 2; w++) {
            pareng_stats s;
            pareng_engine_stats(engines[c], w, &s);
            overflows += s.overflows;
            steals += s.steals;
        }
        pareng_stop(engines[c]);
        double median = bench_median(t[c + 1], runs);
        printf("%-24s %10.4f %9.3f %10.1f%% %11llu\n", configs[c].name, median, median / serial,
               100.0 * (double)overflows / ((double)n * runs),
               (unsigned long long)(steals / (unsigned)runs));
    }
    return 0;
}
