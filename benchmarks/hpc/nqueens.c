/*
 * nqueens.c - the N queens problem: how many ways N queens fit on an N x N board with no two
 * attacking each other, by trying every safe square of each row in turn (BOTS's nqueens).
 * Each child gets its board by value: the pareng task's frame carries it, an OpenMP task
 * copies it (firstprivate). Below its cutoff each version runs the serial C, which changes
 * one board in place (BOTS's manual cutoff; pareng's cutoff is the engine's, PARENG_SERIAL()).
 * Usage and output: hpc.h; the count is checked against the known one.
 */
#include "hpc.h"

#define MAX_N 16

typedef struct board {
    signed char q[MAX_N]; /* q[row] = column */
} board;

/* Solutions for N = 0..16 (OEIS A000170). */
static const uint64_t known[MAX_N + 1] = {1,     1,      0,       0,       2,        10,
                                          4,     40,     92,      352,     724,      2680,
                                          14200, 73712,  365596,  2279184, 14772512};

/* Does the queen of the last of the first `rows` rows attack none above it? */
static int safe(const board *b, int rows)
{
    int last = rows - 1, c = b->q[last];
    for (int r = 0; r < last; r++) {
        int d = b->q[r] - c;
        if (d == 0 || d == last - r || d == r - last)
            return 0;
    }
    return 1;
}

static uint64_t queens_serial(board *b, int n, int row)
{
    if (row == n)
        return 1;
    uint64_t count = 0;
    for (int c = 0; c < n; c++) {
        b->q[row] = (signed char)c;
        if (safe(b, row + 1))
            count += queens_serial(b, n, row + 1);
    }
    return count;
}

/* Where the engine's cutoff makes this call serial C, the serial code itself: the task's own
 * recursion, run serially, keeps each child's count until the sum and copies the board at
 * each call, and took 1.12 to 1.19 times queens_serial on one worker. */
PARENG_TASK_3(uint64_t, queens, board, b, int, n, int, row)
{
    if (PARENG_SERIAL())
        return queens_serial(&b, n, row);
    if (row == n)
        return 1;
    int spawned = 0;
    for (int c = 0; c < n; c++) {
        b.q[row] = (signed char)c;
        if (safe(&b, row + 1)) {
            PARENG_SPAWN(queens, b, n, row + 1);
            spawned++;
        }
    }
    uint64_t count = 0;
    while (spawned--)
        count += PARENG_SYNC(queens);
    return count;
}

#ifdef _OPENMP
static uint64_t queens_openmp(board b, int n, int row, unsigned depth, unsigned cutoff)
{
    if (cutoff && depth >= cutoff)
        return queens_serial(&b, n, row);
    if (row == n)
        return 1;
    uint64_t counts[MAX_N] = {0};
    for (int c = 0; c < n; c++) {
        b.q[row] = (signed char)c;
        if (safe(&b, row + 1)) {
#pragma omp task firstprivate(b, c) shared(counts)
            counts[c] = queens_openmp(b, n, row + 1, depth + 1, cutoff);
        }
    }
#pragma omp taskwait
    uint64_t count = 0;
    for (int c = 0; c < n; c++)
        count += counts[c];
    return count;
}
#endif

typedef struct queens_data {
    int n;
    uint64_t count;
} queens_data;

static void queens_serial_version(hpc_run *run, void *data)
{
    (void)run;
    queens_data *d = data;
    board b = {{0}};
    d->count = queens_serial(&b, d->n, 0);
}

static int queens_pareng_version(hpc_run *run, void *data)
{
    queens_data *d = data;
    board b = {{0}};
    return PARENG_RUN(run->engine, queens, &d->count, b, d->n, 0);
}

#ifdef _OPENMP
static void queens_openmp_version(hpc_run *run, void *data)
{
    queens_data *d = data;
    board b = {{0}};
    d->count = queens_openmp(b, d->n, 0, 0, run->omp_cutoff);
}
#else
#define queens_openmp_version NULL
#endif

int main(int argc, char **argv)
{
    static const hpc_program program = {
        .name = "nqueens", .size_meaning = "N, the board's side, 1 to 16", .min_size = 1,
        .max_size = MAX_N, .serial = queens_serial_version, .pareng = queens_pareng_version,
        .openmp = queens_openmp_version};
    hpc_run run;
    int rc = hpc_start(argc, argv, &program, &run);
    if (rc)
        return rc;
    queens_data d = {.n = (int)run.size};
    double seconds = hpc_time(&run, &program, &d);
    return seconds < 0 ? 1 : hpc_finish(&run, d.count, seconds, d.count == known[d.n]);
}
