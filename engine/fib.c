/*
 * fib.c - the fib workload: the headline benchmark of work-stealing runtimes (Cilk, Wool, Lace),
 * written with the public task macros as a user would write it.
 */
#include "internal.h"

#include <errno.h>

/* The serial baseline of docs/performance.md, with the same base case as the tasks below so
 * that both make the same calls. */
uint64_t pareng_fib_serial(unsigned n)
{
    if (n <= 2)
        return n != 0;
    return pareng_fib_serial(n - 1) + pareng_fib_serial(n - 2);
}

/* Every call a task (--grain 0). */
PARENG_TASK_1(uint64_t, fib_task, unsigned, n)
{
    if (n <= 2)
        return n != 0;
    PARENG_SPAWN(fib_task, n - 1);
    uint64_t b = PARENG_CALL(fib_task, n - 2);
    uint64_t a = PARENG_SYNC(fib_task);
    return a + b;
}

/* Calls below the grain are plain serial C. */
PARENG_TASK_2(uint64_t, fib_grain_task, unsigned, n, unsigned, grain)
{
    if (n < grain)
        return pareng_fib_serial(n);
    if (n <= 2)
        return n != 0;
    PARENG_SPAWN(fib_grain_task, n - 1, grain);
    uint64_t b = PARENG_CALL(fib_grain_task, n - 2, grain);
    uint64_t a = PARENG_SYNC(fib_grain_task);
    return a + b;
}

int pareng_fib(pareng_engine *engine, unsigned n, unsigned grain, uint64_t *result)
{
    if (n > PARENG_FIB_MAX)
        return pareng__fail(EINVAL, "fib(%u) does not fit in 64 bits; n must be 0..%d", n,
                            PARENG_FIB_MAX);
    if (grain <= 2)
        return PARENG_RUN(engine, fib_task, result, n);
    return PARENG_RUN(engine, fib_grain_task, result, n, grain);
}
