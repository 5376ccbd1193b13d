/*
 * timing.h - what the ratio benchmarks share: a monotonic clock in seconds, and the median of
 * a set of times (which it sorts).
 */
#ifndef PARENG_BENCH_TIMING_H
#define PARENG_BENCH_TIMING_H

#include <stdlib.h>
#include <time.h>

static inline double bench_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline int bench_by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double bench_median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, bench_by_value);
    return t[n / 2];
}

#endif
