/*
 * reduce-ratio - pareng_reduce of a compute-bound loop (a harmonic-like sum of sqrt terms over
 * 2e8 indexes) against the same serial loop, medians of alternating runs.
 *
 *   build/benchmarks/reduce-ratio [runs]
 */
#include <math.h>
#include <pareng.h>
#include <stdio.h>
#include <stdlib.h>

#include "timing.h"

#define TERMS 200000000u


static double terms(size_t begin, size_t end)
{
    double sum = 0;
    for (size_t i = begin; i < end; i++)
        sum += 1.0 / sqrt((double)i + 1.0);
    return sum;
}

static pareng_value map(void *ctx, size_t begin, size_t end)
{
    (void)ctx;
    return (pareng_value){.d = terms(begin, end)};
}

static pareng_value add(pareng_value l, pareng_value r)
{
    return (pareng_value){.d = l.d + r.d};
}


int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1 || runs > 100)
        runs = 5;
    pareng_engine *engines[2];
    for (unsigned w = 1; w <= 2; w++) {
        pareng_config cfg;
        pareng_config_default(&cfg);
        cfg.workers = w;
        if (pareng_start(&engines[w - 1], &cfg) < 0) {
            fprintf(stderr, "reduce-ratio: %s\n", pareng_last_error());
            return 1;
        }
    }
    double t[3][100], check[3] = {0};
    for (int r = 0; r < runs; r++) {
        double t0 = bench_seconds();
        check[0] = terms(0, TERMS);
        t[0][r] = bench_seconds() - t0;
        for (unsigned w = 1; w <= 2; w++) {
            pareng_value v;
            t0 = bench_seconds();
            if (pareng_reduce(engines[w - 1], 0, TERMS, 0, map, add, NULL, &v) < 0) {
                fprintf(stderr, "reduce-ratio: %s\n", pareng_last_error());
                return 1;
            }
            t[w][r] = bench_seconds() - t0;
            check[w] = v.d;
        }
    }
    for (unsigned w = 1; w <= 2; w++)
        pareng_stop(engines[w - 1]);
    const char *names[3] = {"serial loop", "pareng_reduce, 1 worker", "pareng_reduce, 2 workers"};
    double serial = bench_median(t[0], runs);
    printf("sum of 1/sqrt(i+1) over %u terms, %d alternating runs, medians\n", TERMS, runs);
    for (int k = 0; k < 3; k++) {
        double median = k ? bench_median(t[k], runs) : serial;
        printf("%-26s %.4f s  / serial %.3f  (sum %.9f)\n", names[k], median, median / serial,
               check[k]);
    }
    return 0;
}
