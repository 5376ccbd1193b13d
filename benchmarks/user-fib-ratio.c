/*
 * user-fib-ratio - fib written as a user writes it, with PARENG_TASK and no cutoff, against the
 * same fib as plain serial C in this file (same compiler, same flags): the automatic cutoff
 * (pareng_config.cutoff_depth = PARENG_CUTOFF_AUTO, the default) and every spawn a task
 * (PARENG_CUTOFF_NONE), on 1 and 2 workers; medians of alternating runs.
 *
 *   build/benchmarks/user-fib-ratio [n [runs]]
 *
 * Both fibs pass n through an empty asm statement. Without it gcc proves the serial clone of
 * the task free of side effects and merges the identical calls its recursive inlining
 * uncovers, which turns the exponential tree into a few thousand calls and the ratio into
 * nonsense; plain C is not merged that way, because gcc rewrites it as a loop first.
 */
#include <pareng.h>
#include <stdio.h>
#include <stdlib.h>

#include "timing.h"

#define MAX_RUNS 100

#define OPAQUE(x) __asm__ volatile("" : "+r"(x))

static uint64_t fib_plain(unsigned n)
{
    OPAQUE(n);
    if (n < 2)
        return n;
    return fib_plain(n - 1) + fib_plain(n - 2);
}

PARENG_TASK_1(uint64_t, fib, unsigned, n)
{
    OPAQUE(n);
    if (n < 2)
        return n;
    PARENG_SPAWN(fib, n - 1);
    uint64_t b = PARENG_CALL(fib, n - 2);
    uint64_t a = PARENG_SYNC(fib);
    return a + b;
}



static const struct {
    const char *name;
    unsigned workers, cutoff;
} configs[] = {
    {"automatic cutoff, 1 worker", 1, PARENG_CUTOFF_AUTO},
    {"automatic cutoff, 2 workers", 2, PARENG_CUTOFF_AUTO},
    {"every spawn a task, 1 worker", 1, PARENG_CUTOFF_NONE},
    {"every spawn a task, 2 workers", 2, PARENG_CUTOFF_NONE},
};
#define CONFIGS (sizeof configs / sizeof configs[0])

int main(int argc, char **argv)
{
    unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 40;
    int runs = argc > 2 ? atoi(argv[2]) : 7;
    if (n > 50 || runs < 1 || runs > MAX_RUNS) {
        fprintf(stderr, "usage: user-fib-ratio [n (0..50) [runs (1..%d)]]\n", MAX_RUNS);
        return 2;
    }
    pareng_engine *engines[CONFIGS];
    for (size_t c = 0; c < CONFIGS; c++) {
        pareng_config cfg;
        pareng_config_default(&cfg);
        cfg.workers = configs[c].workers;
        cfg.cutoff_depth = configs[c].cutoff;
        if (pareng_start(&engines[c], &cfg) < 0) {
            fprintf(stderr, "user-fib-ratio: %s\n", pareng_last_error());
            return 1;
        }
    }
    static double t[CONFIGS + 1][MAX_RUNS];
    uint64_t serial_runs[CONFIGS] = {0};
    for (int r = 0; r < runs; r++) {
        double t0 = bench_seconds();
        uint64_t expected = fib_plain(n);
        t[0][r] = bench_seconds() - t0;
        for (size_t c = 0; c < CONFIGS; c++) {
            uint64_t got = 0;
            t0 = bench_seconds();
            if (PARENG_RUN(engines[c], fib, &got, n) < 0) {
                fprintf(stderr, "user-fib-ratio: %s\n", pareng_last_error());
                return 1;
            }
            t[c + 1][r] = bench_seconds() - t0;
            if (got != expected) {
                fprintf(stderr, "user-fib-ratio: %s: fib(%u) = %llu, not %llu\n",
                        configs[c].name, n, (unsigned long long)got,
                        (unsigned long long)expected);
                return 1;
            }
        }
    }
    for (size_t c = 0; c < CONFIGS; c++) {
        for (unsigned w = 0; w < configs[c].workers; w++) {
            pareng_stats s;
            pareng_engine_stats(engines[c], w, &s);
            serial_runs[c] += s.serial_runs;
        }
        pareng_stop(engines[c]);
    }
    printf("user-written fib(%u) (PARENG_TASK, no cutoff), %d alternating runs, medians\n", n,
           runs);
    printf("%-32s %10s %9s %14s\n", "configuration", "median s", "/ serial", "serial runs/run");
    double serial = bench_median(t[0], runs);
    printf("%-32s %10.4f %9.3f\n", "plain serial C", serial, 1.0);
    for (size_t c = 0; c < CONFIGS; c++) {
        double median = bench_median(t[c + 1], runs);
        printf("%-32s %10.4f %9.3f %14llu\n", configs[c].name, median, median / serial,
               (unsigned long long)(serial_runs[c] / (unsigned)runs));
    }
    return 0;
}
