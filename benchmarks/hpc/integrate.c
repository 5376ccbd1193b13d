/*
 * integrate.c - adaptive quadrature (Cilk-5's integrate): the trapezoid rule on an interval
 * and on its two halves; where they differ by more than EPSILON, both halves are refined, in
 * parallel. Cilk-5 integrates a cubic, whose tree is nearly balanced; this integrand, sin(x^2)
 * over [0, SIZE], oscillates faster and faster, so the tree is shallow at the left and ever
 * deeper to the right: irregular, and its shape is not known in advance. The result is the
 * integral's bits (the halves are always added in the same order, so every version gives the
 * same double). Usage and output: hpc.h.
 */
#include <math.h>
#include <string.h>

#include "hpc.h"

#define EPSILON 1e-12

static double f(double x)
{
    return sin(x * x);
}

/* The two halves of [x1, x2] under the trapezoid rule; *refine when they differ from the
 * whole `area` by EPSILON or more. */
typedef struct halves {
    double x0, y0, left, right;
} halves;

static halves split(double x1, double y1, double x2, double y2)
{
    halves h;
    double half = (x2 - x1) / 2;
    h.x0 = x1 + half;
    h.y0 = f(h.x0);
    h.left = (y1 + h.y0) / 2 * half;
    h.right = (h.y0 + y2) / 2 * half;
    return h;
}

static int fine(const halves *h, double area)
{
    return fabs(h->left + h->right - area) < EPSILON;
}

static double integrate_serial(double x1, double y1, double x2, double y2, double area)
{
    halves h = split(x1, y1, x2, y2);
    if (fine(&h, area))
        return h.left + h.right;
    double left = integrate_serial(x1, y1, h.x0, h.y0, h.left);
    double right = integrate_serial(h.x0, h.y0, x2, y2, h.right);
    return left + right;
}

PARENG_TASK_5(double, integrate, double, x1, double, y1, double, x2, double, y2, double, area)
{
    halves h = split(x1, y1, x2, y2);
    if (fine(&h, area))
        return h.left + h.right;
    PARENG_SPAWN(integrate, x1, y1, h.x0, h.y0, h.left);
    double right = PARENG_CALL(integrate, h.x0, h.y0, x2, y2, h.right);
    double left = PARENG_SYNC(integrate);
    return left + right;
}

#ifdef _OPENMP
static double integrate_openmp(double x1, double y1, double x2, double y2, double area,
                               unsigned depth, unsigned cutoff)
{
    if (cutoff && depth >= cutoff)
        return integrate_serial(x1, y1, x2, y2, area);
    halves h = split(x1, y1, x2, y2);
    if (fine(&h, area))
        return h.left + h.right;
    double left;
#pragma omp task shared(left)
    left = integrate_openmp(x1, y1, h.x0, h.y0, h.left, depth + 1, cutoff);
    double right = integrate_openmp(h.x0, h.y0, x2, y2, h.right, depth + 1, cutoff);
#pragma omp taskwait
    return left + right;
}
#endif

typedef struct integrate_data {
    double x2, y1, y2, area, result;
} integrate_data;

static void integrate_serial_version(hpc_run *run, void *data)
{
    (void)run;
    integrate_data *d = data;
    d->result = integrate_serial(0, d->y1, d->x2, d->y2, d->area);
}

static int integrate_pareng_version(hpc_run *run, void *data)
{
    integrate_data *d = data;
    return PARENG_RUN(run->engine, integrate, &d->result, 0, d->y1, d->x2, d->y2, d->area);
}

#ifdef _OPENMP
static void integrate_openmp_version(hpc_run *run, void *data)
{
    integrate_data *d = data;
    d->result = integrate_openmp(0, d->y1, d->x2, d->y2, d->area, 0, run->omp_cutoff);
}
#else
#define integrate_openmp_version NULL
#endif

int main(int argc, char **argv)
{
    static const hpc_program program = {
        .name = "integrate", .size_meaning = "X, the interval [0, X], 1 to 1000", .min_size = 1,
        .max_size = 1000, .serial = integrate_serial_version,
        .pareng = integrate_pareng_version, .openmp = integrate_openmp_version};
    hpc_run run;
    int rc = hpc_start(argc, argv, &program, &run);
    if (rc)
        return rc;
    integrate_data d = {.x2 = (double)run.size, .y1 = f(0)};
    d.y2 = f(d.x2);
    d.area = (d.y1 + d.y2) / 2 * d.x2;
    double seconds = hpc_time(&run, &program, &d);
    if (seconds < 0)
        return 1;
    uint64_t bits;
    memcpy(&bits, &d.result, sizeof bits);
    return hpc_finish(&run, bits, seconds, isfinite(d.result));
}
