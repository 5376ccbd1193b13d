/*
 * matmul.c - C += A B for N x N matrices of doubles by quadrants (Cilk-5's matmul): each
 * product of halves is 8 products of quarters, the 4 that write different quadrants of C in
 * parallel, then the other 4. A BLOCK x BLOCK product is a plain triple loop. Every element of
 * C sums its terms in the same order whatever runs in parallel, so the result is the same bit
 * for bit; the inputs are small integers, so it is exact too, and the program checks sampled
 * elements against their dot products. N is a power of two, BLOCK or more. Every version
 * multiplies its BLOCK x BLOCK blocks with the one copy of block_product, never inlined: where
 * each version inlined its own copy, gcc laid out the same loop differently in each (this
 * file's serial version took 0.34 s where the OpenMP one's serial part took 0.24 s, and the
 * engine's clones of the task differed by 7 %), and the ratios measured that layout, not the
 * runtimes (docs/performance.md, 2026-12-05). Usage and output: hpc.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "hpc.h"

#define BLOCK 32

typedef struct quad {
    const double *a, *b;
    double *c;
} quad;

static __attribute__((noinline)) void block_product(const double *a, const double *b, double *c,
                                                    size_t ld)
{
    for (size_t i = 0; i < BLOCK; i++)
        for (size_t k = 0; k < BLOCK; k++) {
            double aik = a[i * ld + k];
            for (size_t j = 0; j < BLOCK; j++)
                c[i * ld + j] += aik * b[k * ld + j];
        }
}

/* The 8 products of quarters of c += a b, n the side of a quarter: 4 per phase. */
static void quarters(const double *a, const double *b, double *c, size_t n, size_t ld,
                     quad q[2][4])
{
    const double *a11 = a, *a12 = a + n, *a21 = a + n * ld, *a22 = a + n * ld + n;
    const double *b11 = b, *b12 = b + n, *b21 = b + n * ld, *b22 = b + n * ld + n;
    double *c11 = c, *c12 = c + n, *c21 = c + n * ld, *c22 = c + n * ld + n;
    quad first[4] = {{a11, b11, c11}, {a11, b12, c12}, {a21, b11, c21}, {a21, b12, c22}};
    quad second[4] = {{a12, b21, c11}, {a12, b22, c12}, {a22, b21, c21}, {a22, b22, c22}};
    for (int k = 0; k < 4; k++) {
        q[0][k] = first[k];
        q[1][k] = second[k];
    }
}

static void matmul_serial(const double *a, const double *b, double *c, size_t n, size_t ld)
{
    if (n <= BLOCK) {
        block_product(a, b, c, ld);
        return;
    }
    quad q[2][4];
    quarters(a, b, c, n / 2, ld, q);
    for (int phase = 0; phase < 2; phase++)
        for (int k = 0; k < 4; k++)
            matmul_serial(q[phase][k].a, q[phase][k].b, q[phase][k].c, n / 2, ld);
}

PARENG_TASK_5(int, matmul_task, const double *, a, const double *, b, double *, c, size_t, n,
              size_t, ld)
{
    if (n <= BLOCK) {
        block_product(a, b, c, ld);
        return 0;
    }
    quad q[2][4];
    quarters(a, b, c, n / 2, ld, q);
    for (int phase = 0; phase < 2; phase++) {
        for (int k = 0; k < 3; k++)
            PARENG_SPAWN(matmul_task, q[phase][k].a, q[phase][k].b, q[phase][k].c, n / 2, ld);
        PARENG_CALL(matmul_task, q[phase][3].a, q[phase][3].b, q[phase][3].c, n / 2, ld);
        for (int k = 0; k < 3; k++)
            PARENG_SYNC(matmul_task);
    }
    return 0;
}

#ifdef _OPENMP
static void matmul_openmp(const double *a, const double *b, double *c, size_t n, size_t ld,
                          unsigned depth, unsigned cutoff)
{
    if (n <= BLOCK || (cutoff && depth >= cutoff)) {
        matmul_serial(a, b, c, n, ld);
        return;
    }
    quad q[2][4];
    quarters(a, b, c, n / 2, ld, q);
    for (int phase = 0; phase < 2; phase++) {
        for (int k = 0; k < 4; k++) {
#pragma omp task firstprivate(k, phase) shared(q)
            matmul_openmp(q[phase][k].a, q[phase][k].b, q[phase][k].c, n / 2, ld, depth + 1,
                          cutoff);
        }
#pragma omp taskwait
    }
}
#endif

typedef struct matmul_data {
    const double *a, *b;
    double *c;
    size_t n;
} matmul_data;

static void matmul_serial_version(hpc_run *run, void *data)
{
    (void)run;
    matmul_data *d = data;
    matmul_serial(d->a, d->b, d->c, d->n, d->n);
}

static int matmul_pareng_version(hpc_run *run, void *data)
{
    matmul_data *d = data;
    return PARENG_RUN(run->engine, matmul_task, NULL, d->a, d->b, d->c, d->n, d->n);
}

#ifdef _OPENMP
static void matmul_openmp_version(hpc_run *run, void *data)
{
    matmul_data *d = data;
    matmul_openmp(d->a, d->b, d->c, d->n, d->n, 0, run->omp_cutoff);
}
#else
#define matmul_openmp_version NULL
#endif

/* A power of two from BLOCK to 8192. */
static int parse_side(const char *text, unsigned long *n)
{
    char *end;
    errno = 0;
    *n = strtoul(text, &end, 10);
    return text[0] >= '1' && text[0] <= '9' && !*end && errno == 0 && *n >= BLOCK &&
                   *n <= 8192 && (*n & (*n - 1)) == 0
               ? 0
               : -1;
}

static size_t shared_bytes(unsigned long n)
{
    return 3 * (n * n * sizeof(double) + 256);
}

int main(int argc, char **argv)
{
    static const hpc_program program = {
        .name = "matmul", .size_meaning = "N, the side, a power of two from 32 to 8192",
        .shared_bytes = shared_bytes, .parse_size = parse_side, .serial = matmul_serial_version,
        .pareng = matmul_pareng_version, .openmp = matmul_openmp_version};
    hpc_run run;
    int rc = hpc_start(argc, argv, &program, &run);
    if (rc)
        return rc;
    size_t n = run.size;
    double *a = hpc_alloc(&run, n * n * sizeof *a), *b = hpc_alloc(&run, n * n * sizeof *b);
    double *c = hpc_alloc(&run, n * n * sizeof *c);
    for (size_t i = 0; i < n * n; i++) {
        a[i] = (double)((i * 7 + 3) % 9) - 4;
        b[i] = (double)((i * 5 + 1) % 7) - 3;
    }
    matmul_data d = {a, b, c, n};
    double seconds = hpc_time(&run, &program, &d);
    if (seconds < 0)
        return 1;
    bool ok = true;
    for (size_t s = 0; s < 64; s++) {
        size_t i = (s * 37) % n, j = (s * 101 + 5) % n;
        double dot = 0;
        for (size_t k = 0; k < n; k++)
            dot += a[i * n + k] * b[k * n + j];
        ok &= dot == c[i * n + j];
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < n * n; i++)
        sum = sum * 31 + (uint64_t)(int64_t)c[i];
    return hpc_finish(&run, sum, seconds, ok);
}
