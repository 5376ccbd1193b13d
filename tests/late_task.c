/*
 * late_task.c - a library with a task of its own and a loop body, which
 * tests/late_task_refused.c opens with dlopen after pareng_start (refused) and before it
 * (they run).
 */
#include <pareng.h>

PARENG_TASK_1(uint64_t, triangle, uint64_t, n)
{
    if (n < 2)
        return n;
    PARENG_SPAWN(triangle, n - 1);
    return PARENG_SYNC(triangle) + n;
}

__attribute__((visibility("default"))) int late_triangle(pareng_engine *e, uint64_t n,
                                                         uint64_t *out)
{
    return PARENG_RUN(e, triangle, out, n);
}

/* pareng_for's body: each element its index */
__attribute__((visibility("default"))) void late_body(void *ctx, size_t begin, size_t end)
{
    uint64_t *x = ctx;
    for (size_t i = begin; i < end; i++)
        x[i] = i;
}
