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

int main(int argc, char **argv)
{
    static const hpc_program program = {
        .name = "integrate", .size_meaning = "X, the interval [0, X], 1 to 1000", .min_size = 1,
        .max_size = 1000};
    hpc_run run;
    int rc = hpc_start(argc, argv, &program, &run);
    if (rc)
        return rc;
    double x2 = (double)run.size, y1 = f(0), y2 = f(x2), area = (y1 + y2) / 2 * x2, result = 0;
    hpc_pin_openmp_threads(&run);
    double t0 = hpc_seconds();
    if (run.mode == HPC_SERIAL) {
        result = integrate_serial(0, y1, x2, y2, area);
    } else if (run.mode == HPC_PARENG) {
        rc = PARENG_RUN(run.engine, integrate, &result, 0, y1, x2, y2, area);
        if (rc)
            return hpc_failed(&run, rc);
    } else {
#ifdef _OPENMP
#pragma omp parallel num_threads(run.workers)
#pragma omp single
        result = integrate_openmp(0, y1, x2, y2, area, 0, run.omp_cutoff);
#endif
    }
    double seconds = hpc_seconds() - t0;
    uint64_t bits;
    memcpy(&bits, &result, sizeof bits);
    return hpc_finish(&run, bits, seconds, isfinite(result));
}
