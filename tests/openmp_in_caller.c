/*
 * openmp_in_caller.c - a program that ran an OpenMP parallel region before pareng_start, then
 * tasks with parallel regions of their own, then the caller's again. GNU OpenMP's pool of
 * threads does not survive a fork: before pareng_start released it, the tasks' first region
 * waited forever for threads that only the caller had. Exit status 0 when every sum is right.
 */
#include <pareng.h>

#include <omp.h>
#include <stdio.h>

static long sum_below(long n)
{
    long sum = 0;
#pragma omp parallel for reduction(+ : sum) num_threads(2)
    for (long i = 0; i < n; i++)
        sum += i;
    return sum;
}

static int threads_in_region(void)
{
    int threads = 0;
#pragma omp parallel num_threads(2)
#pragma omp single
    threads = omp_get_num_threads();
    return threads;
}

PARENG_TASK_1(long, region, long, n)
{
    return sum_below(n) + 1000000 * threads_in_region();
}

PARENG_TASK_1(long, regions, int, count)
{
    for (int i = 0; i < count; i++)
        PARENG_SPAWN(region, 1000 + i);
    long total = 0;
    for (int i = 0; i < count; i++)
        total += PARENG_SYNC(region);
    return total;
}

int main(void)
{
    int bad = sum_below(1000) != 499500 || threads_in_region() != 2;
    pareng_engine *e;
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 3; /* more than cores: one waits while the others' regions run */
    if (pareng_start(&e, &cfg) < 0) {
        fprintf(stderr, "start: %s\n", pareng_last_error());
        return 2;
    }
    long want = 0;
    for (long i = 0; i < 8; i++)
        want += (1000 + i) * (999 + i) / 2 + 2000000;
    for (int run = 0; run < 2; run++) {
        long got = 0;
        int rc = PARENG_RUN(e, regions, &got, 8);
        if (rc != 0 || got != want) {
            fprintf(stderr, "run %d: rc %d, %ld against %ld %s\n", run, rc, got, want,
                    rc ? pareng_last_error() : "");
            bad = 1;
        }
    }
    pareng_stop(e);
    /* the caller's pool was released, not broken: its next region has its threads again */
    if (sum_below(2000) != 1999000 || threads_in_region() != 2) {
        fprintf(stderr, "the caller's regions after the engine went wrong\n");
        bad = 1;
    }
    return bad;
}
