/*
 * fib.c - the fib workload: the headline benchmark of work-stealing runtimes (Cilk, Wool, Lace),
 * written with the public task macros as a user would write it.
 */
#include "error.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

static int check_n(unsigned n)
{
    if (n > WORKLOAD_FIB_MAX)
        return workload__fail(EINVAL, "fib(%u) does not fit in 64 bits; n must be 0..%d", n,
                              WORKLOAD_FIB_MAX);
    return 0;
}

/* Every call written as a task; the engine's cutoff decides which run as serial C, and those
 * runs are the baseline's own code, so that they compare like with like with --serial. */
PARENG_TASK_1(uint64_t, fib_task, unsigned, n)
{
    if (PARENG_SERIAL())
        return workload_fib_serial(n);
    if (n <= 2)
        return n != 0;
    PARENG_SPAWN(fib_task, n - 1);
    uint64_t b = PARENG_CALL(fib_task, n - 2);
    uint64_t a = PARENG_SYNC(fib_task);
    return a + b;
}
/* Its result is all it does: a subtree may run on another rank (pareng_mpi_start). */
PARENG_TASK_CROSSES_RANKS(fib_task)

/* Calls below the grain are plain serial C. */
PARENG_TASK_2(uint64_t, fib_grain_task, unsigned, n, unsigned, grain)
{
    if (n < grain)
        return workload_fib_serial(n);
    if (n <= 2)
        return n != 0;
    PARENG_SPAWN(fib_grain_task, n - 1, grain);
    uint64_t b = PARENG_CALL(fib_grain_task, n - 2, grain);
    uint64_t a = PARENG_SYNC(fib_grain_task);
    return a + b;
}
PARENG_TASK_CROSSES_RANKS(fib_grain_task)

/* The IO-bound variant: every leaf first waits latency_ns on an io_uring timeout. The first
 * failed wait is kept in *error (shared memory) and reported by workload_fib_io. */
PARENG_TASK_3(uint64_t, fib_io_task, unsigned, n, uint64_t, latency_ns, _Atomic int *, error)
{
    if (n <= 2) {
        int rc = PARENG_IO_SLEEP(latency_ns);
        int none = 0;
        if (rc < 0)
            atomic_compare_exchange_strong_explicit(error, &none, rc, memory_order_relaxed,
                                                    memory_order_relaxed);
        return n != 0;
    }
    PARENG_SPAWN(fib_io_task, n - 1, latency_ns, error);
    uint64_t b = PARENG_CALL(fib_io_task, n - 2, latency_ns, error);
    uint64_t a = PARENG_SYNC(fib_io_task);
    return a + b;
}

/* fib's cost-model grain. pareng's own runs do not use it: without a grain, the engine's
 * automatic cutoff (engine/cutoff.c) cuts, and needs no model. It is the grain that pareng
 * bench gives the peers under --cutoff auto (they have no automatic cutoff), and the measurement
 * behind workload_fib_serial_seconds.
 *
 * After oracle-guided granularity control (Acar, Chargueraud, Rainey, "Oracle scheduling",
 * PPoPP 2011): a task declares its cost model, the runtime measures the constant on this
 * machine, and runs serially every call predicted to cost less than a target. fib(n) makes
 * about phi^n calls; the target is LEAF_TARGET_NS, which is thousands of times a steal
 * (about a microsecond between processes), so spawns, steals and wake-ups vanish in the
 * total, and still small enough that the last leaves balance two cores to within a few parts
 * per thousand on runs of a second.
 *
 * The constant is measured on one call several times the target (timing noise is then small
 * beside it), after a warm-up, and the leaf size predicted from the model: calls below the
 * grain are serial, so the grain is one more than the smallest n predicted to take the
 * target. Measuring around the target itself instead made the grain of two processes differ
 * by two steps. */
#define LEAF_TARGET_NS 20000.0
#define MEASURED_TARGETS 3 /* the measured call takes at least this many targets */
#define CALIBRATION_REPEATS 3
#define FIRST_CALIBRATED 10 /* so the automatic grain is above 10 */

static _Atomic unsigned calibrated_grain;
/* The measurement behind it: serial fib(measured_n) took measured_ns (written before the
 * grain, which publishes them: release/acquire on calibrated_grain). */
static unsigned measured_n;
static double measured_ns;
static const double phi = 1.6180339887498949;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double serial_fib_ns(unsigned n, int repeats)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < repeats; i++) { /* the fastest: interruptions only add */
        uint64_t t0 = now_ns();
        volatile uint64_t keep = workload_fib_serial(n);
        (void)keep;
        uint64_t t = now_ns() - t0;
        best = t < best ? t : best;
    }
    return (double)best;
}

unsigned workload_fib_model_grain(void)
{
    unsigned grain = atomic_load_explicit(&calibrated_grain, memory_order_acquire);
    if (grain)
        return grain;
    serial_fib_ns(FIRST_CALIBRATED + 10, 1); /* warm-up: caches, branch predictors, clock */
    unsigned n = FIRST_CALIBRATED;
    while (serial_fib_ns(n, 1) < MEASURED_TARGETS * LEAF_TARGET_NS && n < WORKLOAD_FIB_MAX)
        n++;
    double t = serial_fib_ns(n, CALIBRATION_REPEATS);
    /* t(k) = t(n) / phi^(n - k): the smallest k with t(k) >= target */
    unsigned steps = (unsigned)floor(log(t / LEAF_TARGET_NS) / log(phi));
    unsigned leaf = n > FIRST_CALIBRATED + steps ? n - steps : FIRST_CALIBRATED;
    grain = leaf + 1;
    measured_n = n;
    measured_ns = t;
    atomic_store_explicit(&calibrated_grain, grain, memory_order_release);
    return grain;
}

double workload_fib_serial_seconds(unsigned n)
{
    workload_fib_model_grain();
    return measured_ns * pow(phi, (double)n - (double)measured_n) * 1e-9;
}

int workload_fib(pareng_engine *engine, unsigned n, unsigned grain, uint64_t *result)
{
    workload__begin();
    int rc = check_n(n);
    if (rc < 0)
        return rc;
    if (grain == 0)
        return PARENG_RUN(engine, fib_task, result, n);
    /* fib's own grain replaces the engine's cutoff: every call above it is a task */
    if (grain <= 2)
        return PARENG_RUN_CUTOFF(engine, PARENG_CUTOFF_NONE, fib_task, result, n);
    return PARENG_RUN_CUTOFF(engine, PARENG_CUTOFF_NONE, fib_grain_task, result, n, grain);
}

int workload_fib_io(pareng_engine *engine, unsigned n, uint64_t latency_ns, uint64_t *result)
{
    workload__begin();
    int rc = check_n(n);
    if (rc < 0)
        return rc;
    if (!pareng_engine_io_depth(engine))
        return workload__fail(ENOTSUP, "fib with IO latency needs an engine started with io_depth");
    _Atomic int *error = pareng_alloc(engine, sizeof *error);
    if (!error)
        return -ENOMEM;
    atomic_init(error, 0);
    rc = PARENG_RUN_CUTOFF(engine, PARENG_CUTOFF_NONE, fib_io_task, result, n, latency_ns, error);
    int io_error = atomic_load_explicit(error, memory_order_relaxed);
    pareng_free(engine, (void *)error);
    if (rc == 0 && io_error)
        rc = workload__fail(-io_error, "a leaf's io_uring timeout failed: %s",
                            strerror(-io_error));
    return rc;
}

/* The items of workload_fib_map, in shared memory: workers write results the caller reads. */
typedef struct fib_items {
    uint64_t *results;
    const unsigned *ns;
    unsigned grain;
} fib_items;

/* Items split in halves like a loop, so that a thief takes half of what is left. */
PARENG_TASK_3(int, fib_items_task, size_t, begin, size_t, end, const fib_items *, items)
{
    if (end - begin == 1) {
        unsigned n = items->ns[begin];
        items->results[begin] = items->grain <= 2 ? PARENG_CALL(fib_task, n)
                                                  : PARENG_CALL(fib_grain_task, n, items->grain);
        return 0;
    }
    size_t mid = begin + (end - begin) / 2;
    PARENG_SPAWN(fib_items_task, mid, end, items);
    PARENG_CALL(fib_items_task, begin, mid, items);
    return PARENG_SYNC(fib_items_task);
}

int workload_fib_map(pareng_engine *engine, const unsigned *ns, size_t count, unsigned grain,
                     uint64_t *results)
{
    workload__begin();
    for (size_t k = 0; k < count; k++)
        if (check_n(ns[k]) < 0)
            return -EINVAL;
    if (count == 0)
        return 0;
    /* The caller's arrays are not visible to workers forked before they were filled. */
    fib_items *items = pareng_alloc(engine, sizeof *items + count * (sizeof *results + sizeof *ns));
    if (!items)
        return -ENOMEM;
    uint64_t *shared_results = (uint64_t *)(void *)(items + 1);
    unsigned *shared_ns = (unsigned *)(void *)(shared_results + count);
    memcpy(shared_ns, ns, count * sizeof *ns);
    *items = (fib_items){.results = shared_results, .ns = shared_ns, .grain = grain};
    int ignored;
    /* grain 0: every call a task, cut by the engine; else fib's grain, every call above it a
     * task */
    int rc = grain == 0 ? PARENG_RUN(engine, fib_items_task, &ignored, 0, count, items)
                        : PARENG_RUN_CUTOFF(engine, PARENG_CUTOFF_NONE, fib_items_task, &ignored,
                                            0, count, items);
    if (rc == 0)
        memcpy(results, shared_results, count * sizeof *results);
    pareng_free(engine, items);
    return rc;
}
