/*
 * globals-follow - what following the caller's globals costs a run (docs/performance.md,
 * "Globals that follow the caller"): a program whose globals hold a static array of 256 MiB,
 * of which it fills MIB MiB, and a counter it changes before every run of a tiny root.
 *
 *   globals-follow MIB WHEN MODE
 *     WHEN  before: the array filled before pareng_start; after: after it (every page the
 *           caller's own since)
 *     MODE  private (PARENG_GLOBALS_PRIVATE, the default) or forked (PARENG_GLOBALS_FORKED)
 *
 * Prints the start's time and the median, p10 and p90 of 201 runs there and back, each after
 * the counter changed; exits 1 if a task read a stale counter where it must not.
 */
#include "timing.h"

#include <pareng.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define ARRAY_MIB 256
#define RUNS 201

static double array[(size_t)ARRAY_MIB << 17];
static long counter;

PARENG_TASK_1(long, read_counter, int, i)
{
    return counter + (long)array[i];
}

static void fill(size_t mib)
{
    for (size_t i = 0; i < (mib << 17); i++)
        array[i] = 1;
}

int main(int argc, char **argv)
{
    size_t mib = argc == 4 ? strtoul(argv[1], NULL, 10) : ARRAY_MIB + 1;
    if (mib > ARRAY_MIB || (strcmp(argv[2], "before") && strcmp(argv[2], "after")) ||
        (strcmp(argv[3], "private") && strcmp(argv[3], "forked"))) {
        fprintf(stderr, "usage: globals-follow MIB(0-%d) before|after private|forked\n",
                ARRAY_MIB);
        return 2;
    }
    bool after = strcmp(argv[2], "after") == 0, forked = strcmp(argv[3], "forked") == 0;
    if (!after)
        fill(mib);
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 2;
    cfg.globals = forked ? PARENG_GLOBALS_FORKED : PARENG_GLOBALS_PRIVATE;
    double t0 = bench_seconds() * 1e6;
    pareng_engine *e;
    if (pareng_start(&e, &cfg) < 0) {
        fprintf(stderr, "%s\n", pareng_last_error());
        return 1;
    }
    double started = bench_seconds() * 1e6 - t0;
    if (after)
        fill(mib);
    double times[RUNS];
    long stale = 0;
    for (int r = 0; r < RUNS; r++) {
        counter = r + 1;
        long got = 0;
        t0 = bench_seconds() * 1e6;
        if (PARENG_RUN(e, read_counter, &got, 0) < 0) {
            fprintf(stderr, "%s\n", pareng_last_error());
            return 1;
        }
        times[r] = bench_seconds() * 1e6 - t0;
        stale += got != counter + (mib ? 1 : 0);
    }
    pareng_stop(e);
    qsort(times, RUNS, sizeof *times, bench_by_value);
    printf("%zu MiB filled %s the start, %s: start %.2f ms; run median %.1f us, p10 %.1f, p90 "
           "%.1f; %ld stale\n", mib, after ? "after" : "before", argv[3], started / 1e3,
           times[RUNS / 2], times[RUNS / 10], times[RUNS * 9 / 10], stale);
    return !forked && stale != 0;
}
