/*
 * stencil_dot - an HPC-style client of libpareng: shared arrays from pareng_alloc, a 3-point
 * stencil with pareng_for, a dot product with pareng_reduce, each checked against a serial
 * loop. Build it against an installed libpareng:
 *
 *     cc stencil_dot.c $(pkg-config --cflags --libs pareng) -o stencil_dot
 *
 * The arrays must come from pareng_alloc: the workers are processes forked at pareng_start,
 * so memory the caller mallocs or fills afterwards is not what they see.
 */
#include <pareng.h>
#include <stdio.h>
#include <stdlib.h>

#define N 4000000

typedef struct arrays {
    double *x, *y, *smooth;
} arrays;

static void stencil(void *ctx, size_t begin, size_t end)
{
    arrays *a = ctx;
    for (size_t i = begin; i < end; i++) {
        double left = i > 0 ? a->x[i - 1] : a->x[i];
        double right = i + 1 < N ? a->x[i + 1] : a->x[i];
        a->smooth[i] = (left + 2 * a->x[i] + right) / 4;
    }
}

static pareng_value dot(void *ctx, size_t begin, size_t end)
{
    arrays *a = ctx;
    pareng_value sum = {.d = 0};
    for (size_t i = begin; i < end; i++)
        sum.d += a->x[i] * a->y[i];
    return sum;
}

static pareng_value add(pareng_value l, pareng_value r)
{
    return (pareng_value){.d = l.d + r.d};
}

int main(void)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.shared_bytes = 3 * N * sizeof(double) + (1 << 20);
    pareng_engine *e;
    if (pareng_start(&e, &cfg) < 0) {
        fprintf(stderr, "stencil_dot: %s\n", pareng_last_error());
        return 1;
    }
    arrays *a = pareng_alloc(e, sizeof *a);
    a->x = pareng_alloc(e, N * sizeof *a->x);
    a->y = pareng_alloc(e, N * sizeof *a->y);
    a->smooth = pareng_alloc(e, N * sizeof *a->smooth);
    if (!a->x || !a->y || !a->smooth) {
        fprintf(stderr, "stencil_dot: %s\n", pareng_last_error());
        pareng_stop(e);
        return 1;
    }
    /* small integers: every product and partial sum is exact, so any order of the sum gives
     * the same double and the serial loop is a fair check */
    for (size_t i = 0; i < N; i++) {
        a->x[i] = (double)(i % 7);
        a->y[i] = (double)(i % 5);
    }
    pareng_value parallel_dot;
    int rc = pareng_for(e, 0, N, 0, stencil, a);
    if (rc == 0)
        rc = pareng_reduce(e, 0, N, 0, dot, add, a, &parallel_dot);
    if (rc < 0) {
        fprintf(stderr, "stencil_dot: %s\n", pareng_last_error());
        pareng_stop(e);
        return 1;
    }
    double serial_dot = 0;
    size_t wrong = 0;
    for (size_t i = 0; i < N; i++) {
        serial_dot += a->x[i] * a->y[i];
        double left = i > 0 ? a->x[i - 1] : a->x[i], right = i + 1 < N ? a->x[i + 1] : a->x[i];
        wrong += a->smooth[i] != (left + 2 * a->x[i] + right) / 4;
    }
    printf("%u workers: dot %.1f (serial %.1f), stencil: %zu wrong of %d\n",
           pareng_engine_workers(e), parallel_dot.d, serial_dot, wrong, N);
    pareng_stop(e);
    return parallel_dot.d == serial_dot && wrong == 0 ? 0 : 1;
}
