/*
 * spawnloop.c - a flat loop of spawns: one task spawns SIZE children of about a microsecond
 * each, then syncs them all (what `for (i...) cilk_spawn f(i); cilk_sync;` and a loop of `omp
 * task` write). The result is the sum of the children's results. Usage and output: hpc.h.
 */
#include <stdlib.h>

#include "hpc.h"

/* About a microsecond of dependent multiplies (a 64-bit LCG, Knuth's MMIX constants), the
 * children of the loop: a multiply and an add take 4 cycles, 1.07 us on this project's
 * guest (300 steps took 0.31 us there, a third of the grain). */
#define STEPS 1000

static uint64_t work(uint64_t i)
{
    uint64_t x = i;
    for (int k = 0; k < STEPS; k++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    return x >> 40;
}

static uint64_t loop_serial(uint64_t n)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += work(i);
    return sum;
}

PARENG_TASK_1(uint64_t, item, uint64_t, i)
{
    return work(i);
}

PARENG_TASK_1(uint64_t, loop_task, uint64_t, n)
{
    for (uint64_t i = 0; i < n; i++)
        PARENG_SPAWN(item, i);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += PARENG_SYNC(item);
    return sum;
}

#ifdef _OPENMP
static uint64_t loop_openmp(uint64_t n)
{
    uint64_t *results = malloc(n * sizeof *results);
    if (!results)
        abort();
    for (uint64_t i = 0; i < n; i++) {
#pragma omp task firstprivate(i) shared(results)
        results[i] = work(i);
    }
#pragma omp taskwait
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += results[i];
    free(results);
    return sum;
}
#endif

typedef struct loop_data {
    uint64_t n, sum;
} loop_data;

static void loop_serial_version(hpc_run *run, void *data)
{
    (void)run;
    loop_data *d = data;
    d->sum = loop_serial(d->n);
}

static int loop_pareng_version(hpc_run *run, void *data)
{
    loop_data *d = data;
    return PARENG_RUN(run->engine, loop_task, &d->sum, d->n);
}

#ifdef _OPENMP
static void loop_openmp_version(hpc_run *run, void *data)
{
    (void)run;
    loop_data *d = data;
    d->sum = loop_openmp(d->n);
}
#else
#define loop_openmp_version NULL
#endif

int main(int argc, char **argv)
{
    static const hpc_program program = {
        .name = "spawnloop", .size_meaning = "N, the spawns, 1 to 10^8", .min_size = 1,
        .max_size = 100000000, .serial = loop_serial_version, .pareng = loop_pareng_version,
        .openmp = loop_openmp_version};
    hpc_run run;
    int rc = hpc_start(argc, argv, &program, &run);
    if (rc)
        return rc;
    loop_data d = {.n = run.size};
    double seconds = hpc_time(&run, &program, &d);
    return seconds < 0 ? 1 : hpc_finish(&run, d.sum, seconds, 1);
}
