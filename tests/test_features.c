/*
 * test_features.c - what a Cilk, TBB or OpenMP user writes, compiled and run on 1 and 2
 * workers with every granularity: tasks that return nothing, mutually recursive tasks, helpers
 * that spawn with the task's context, the engine inside a task (PARENG_ENGINE, pareng_alloc,
 * nested loops), a pareng_for body that spawns, reductions of a user's struct, arguments
 * behind a pointer to the parent's stack when they do not fit a frame, const-qualified
 * arguments; what tasks print; a flat loop of spawns.
 */
#include "pareng.h"
#include "testing.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const unsigned cutoffs[] = {PARENG_CUTOFF_AUTO, 1, PARENG_CUTOFF_NONE};
#define CUTOFFS (sizeof cutoffs / sizeof cutoffs[0])


/* Runs check(e) on 1 and 2 workers at every cutoff. */
/* Each engine's handle is kept in a global, where pareng_start stores it before it forks the
 * workers: tasks may use it (the engine inside a task, below). */
static pareng_engine *global_engine;

static void on_every_engine(void (*check)(pareng_engine *))
{
    for (unsigned workers = 1; workers <= 2; workers++)
        for (size_t c = 0; c < CUTOFFS; c++) {
            pareng_config cfg;
            pareng_config_default(&cfg);
            cfg.workers = workers;
            cfg.cutoff_depth = cutoffs[c];
            CU_ASSERT_EQUAL_FATAL(pareng_start(&global_engine, &cfg), 0);
            check(global_engine);
            pareng_stop(global_engine);
            global_engine = NULL;
        }
}

/* ---- void tasks: a tree that counts its leaves into the parent's counters --------------- */

PARENG_TASK_2(void, count_leaves, unsigned, depth, _Atomic uint64_t *, leaves)
{
    if (depth == 0) {
        atomic_fetch_add_explicit(leaves, 1, memory_order_relaxed);
        return;
    }
    PARENG_SPAWN(count_leaves, depth - 1, leaves);
    PARENG_CALL(count_leaves, depth - 1, leaves);
    PARENG_SYNC(count_leaves);
}

PARENG_TASK_1(uint64_t, leaves_of, unsigned, depth)
{
    _Atomic uint64_t leaves = 0; /* on this task's stack: its children write it */
    for (int k = 0; k < 6; k++) /* more unsynced spawns than the serial clone's local slots */
        PARENG_SPAWN(count_leaves, depth, &leaves);
    for (int k = 0; k < 6; k++)
        PARENG_SYNC(count_leaves);
    return atomic_load(&leaves);
}

static void check_void_tasks(pareng_engine *e)
{
    uint64_t got = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, leaves_of, &got, 12), 0);
    CU_ASSERT_EQUAL(got, 6u << 12);
    _Atomic uint64_t *shared = pareng_alloc(e, sizeof *shared);
    CU_ASSERT_PTR_NOT_NULL_FATAL(shared);
    atomic_store(shared, 0);
    CU_ASSERT_EQUAL(PARENG_RUN(e, count_leaves, NULL, 10, shared), 0);
    CU_ASSERT_EQUAL(atomic_load(shared), 1u << 10);
    pareng_free(e, shared);
}

static void test_void_tasks(void) { on_every_engine(check_void_tasks); }

/* ---- mutual recursion: a task declared before its definition ------------------------------ */

PARENG_DECLARE_TASK_1(uint64_t, odd_steps, uint64_t, n);

PARENG_TASK_1(uint64_t, even_steps, uint64_t, n)
{
    if (n == 0)
        return 0;
    PARENG_SPAWN(odd_steps, n - 1);
    uint64_t here = n % 3 == 0 ? PARENG_CALL(odd_steps, n / 3) : 0;
    return 1 + here + PARENG_SYNC(odd_steps);
}

PARENG_TASK_1(uint64_t, odd_steps, uint64_t, n)
{
    if (n == 0)
        return 0;
    PARENG_SPAWN(even_steps, n - 1);
    return 2 + PARENG_SYNC(even_steps);
}

static uint64_t even_plain(uint64_t n);
static uint64_t odd_plain(uint64_t n)
{
    return n == 0 ? 0 : 2 + even_plain(n - 1);
}
static uint64_t even_plain(uint64_t n)
{
    return n == 0 ? 0 : 1 + (n % 3 == 0 ? odd_plain(n / 3) : 0) + odd_plain(n - 1);
}

static void check_mutual_recursion(pareng_engine *e)
{
    for (uint64_t n = 0; n < 40; n += 7) {
        uint64_t got = 0;
        CU_ASSERT_EQUAL(PARENG_RUN(e, even_steps, &got, n), 0);
        CU_ASSERT_EQUAL(got, even_plain(n));
    }
}

static void test_mutual_recursion(void) { on_every_engine(check_mutual_recursion); }

/* ---- a helper that spawns and syncs for the task that calls it ---------------------------- */

PARENG_TASK_1(uint64_t, fib, unsigned, n)
{
    if (n < 2)
        return n;
    PARENG_SPAWN(fib, n - 1);
    uint64_t b = PARENG_CALL(fib, n - 2);
    return PARENG_SYNC(fib) + b;
}

static uint64_t fib_pair(PARENG_CONTEXT_PARAMS, unsigned n)
{
    PARENG_SPAWN(fib, n);
    uint64_t b = PARENG_CALL(fib, n + 1);
    return PARENG_SYNC(fib) + b; /* fib(n + 2) */
}

PARENG_TASK_1(uint64_t, fib_by_helper, unsigned, n)
{
    PARENG_SPAWN(fib, n);
    uint64_t pair = fib_pair(PARENG_CONTEXT, n);
    return pair + PARENG_SYNC(fib); /* fib(n + 2) + fib(n) */
}

static void check_helper(pareng_engine *e)
{
    uint64_t got = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, fib_by_helper, &got, 20), 0);
    CU_ASSERT_EQUAL(got, 17711u + 6765u);
}

static void test_helper_spawns(void) { on_every_engine(check_helper); }

/* ---- the engine inside a task ------------------------------------------------------------ */


static void square_range(void *ctx, size_t begin, size_t end)
{
    uint64_t *out = ctx;
    for (size_t i = begin; i < end; i++)
        out[i] = (uint64_t)i * i;
}

static pareng_value sum_range(void *ctx, size_t begin, size_t end)
{
    const uint64_t *in = ctx;
    pareng_value v = {.u = 0};
    for (size_t i = begin; i < end; i++)
        v.u += in[i];
    return v;
}

static pareng_value add(pareng_value a, pareng_value b)
{
    return (pareng_value){.u = a.u + b.u};
}

/* Allocates shared memory from the task, fills it with a nested loop, sums it with a nested
 * reduction; also through pareng_for and pareng_reduce, which run in the task. */
PARENG_TASK_2(uint64_t, alloc_and_loop, size_t, n, int, nested_api)
{
    pareng_engine *e = nested_api ? PARENG_ENGINE() : global_engine;
    uint64_t *squares = pareng_alloc(e, n * sizeof *squares);
    if (!squares)
        return 0;
    pareng_value sum = {.u = 0};
    int rc;
    if (nested_api) {
        rc = PARENG_FOR(0, n, 0, square_range, squares);
        rc |= PARENG_REDUCE(0, n, 16, sum_range, add, squares, &sum);
    } else {
        rc = pareng_for(e, 0, n, 0, square_range, squares);
        rc |= pareng_reduce(e, 0, n, 16, sum_range, add, squares, &sum);
    }
    pareng_free(e, squares);
    return rc == 0 ? sum.u : 0;
}

PARENG_TASK_1(int, root_inside, int, unused)
{
    (void)unused;
    uint64_t got;
    return PARENG_RUN(PARENG_ENGINE(), fib, &got, 3);
}

/* An engine of a task's own would fork its workers from the task's stack (the arena's) */
PARENG_TASK_1(int, start_inside, int, unused)
{
    (void)unused;
    pareng_engine *inner = NULL;
    int rc = pareng_start(&inner, NULL);
    return rc == -EPERM && !inner && strstr(pareng_last_error(), "called by a task") ? 1 : rc;
}

static void check_engine_inside(pareng_engine *e)
{
    CU_ASSERT_PTR_EQUAL(e, global_engine);
    const size_t n = 5000;
    const uint64_t want = (uint64_t)(n - 1) * n * (2 * n - 1) / 6;
    for (int nested_api = 0; nested_api < 2; nested_api++) {
        uint64_t got = 0;
        CU_ASSERT_EQUAL(PARENG_RUN(e, alloc_and_loop, &got, n, nested_api), 0);
        CU_ASSERT_EQUAL(got, want);
    }
    int rc = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, root_inside, &rc, 0), 0);
    CU_ASSERT_EQUAL(rc, -EDEADLK);
    CU_ASSERT_EQUAL(PARENG_RUN(e, start_inside, &rc, 0), 0);
    CU_ASSERT_EQUAL(rc, 1);
}

static void test_engine_inside_a_task(void) { on_every_engine(check_engine_inside); }

/* A thread that a task starts is in the task's worker: its loops run in it, its root runs
 * are refused. It handed a second root to the engine over the running one: the caller got
 * the thread's result instead of the task's, or both hung. */
typedef struct thread_job {
    pareng_engine *engine;
    uint64_t *squares;
    size_t n;
    int for_rc, run_rc;
    uint64_t sum;
} thread_job;

static void *loop_in_a_thread(void *arg)
{
    thread_job *job = arg;
    job->for_rc = pareng_for(job->engine, 0, job->n, 0, square_range, job->squares);
    pareng_value sum = {.u = 0};
    job->for_rc |= pareng_reduce(job->engine, 0, job->n, 16, sum_range, add, job->squares, &sum);
    job->sum = sum.u;
    uint64_t got;
    job->run_rc = PARENG_RUN(job->engine, fib, &got, 3);
    return NULL;
}

PARENG_TASK_1(uint64_t, start_a_looping_thread, size_t, n)
{
    thread_job job = {.engine = PARENG_ENGINE(), .n = n};
    job.squares = pareng_alloc(job.engine, n * sizeof *job.squares);
    pthread_t thread;
    if (!job.squares || pthread_create(&thread, NULL, loop_in_a_thread, &job) != 0)
        return 0;
    pthread_join(thread, NULL);
    pareng_free(job.engine, job.squares);
    return job.for_rc == 0 && job.run_rc == -EDEADLK ? job.sum : 1;
}

static void check_thread_of_a_task(pareng_engine *e)
{
    const size_t n = 100000;
    const uint64_t want = (uint64_t)(n - 1) * n * (2 * n - 1) / 6;
    for (int round = 0; round < 5; round++) {
        uint64_t got = 0;
        CU_ASSERT_EQUAL(PARENG_RUN(e, start_a_looping_thread, &got, n), 0);
        CU_ASSERT_EQUAL(got, want);
    }
}

static void test_thread_of_a_task(void) { on_every_engine(check_thread_of_a_task); }

/* ---- a pareng_for body that spawns -------------------------------------------------------- */

static void fib_each(PARENG_CONTEXT_PARAMS, void *ctx, size_t begin, size_t end)
{
    uint64_t *out = ctx;
    for (size_t i = begin; i < end; i++) {
        PARENG_SPAWN(fib, (unsigned)(i % 20));
        out[i] = PARENG_SYNC(fib);
    }
}

static uint64_t fib_plain(unsigned n)
{
    return n < 2 ? n : fib_plain(n - 1) + fib_plain(n - 2);
}

static void check_for_tasks(pareng_engine *e)
{
    const size_t n = 300;
    uint64_t *out = pareng_alloc(e, n * sizeof *out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    memset(out, 0xff, n * sizeof *out);
    CU_ASSERT_EQUAL(pareng_for_tasks(e, 0, n, 0, fib_each, out), 0);
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++)
        wrong += out[i] != fib_plain((unsigned)(i % 20));
    CU_ASSERT_EQUAL(wrong, 0);
    pareng_free(e, out);
}

static void test_for_body_spawns(void) { on_every_engine(check_for_tasks); }

/* ---- reductions of a struct -------------------------------------------------------------- */

typedef struct stats {
    double sum, sum_squares;
    uint64_t count, min, max;
} stats;

static void stats_of(void *ctx, size_t begin, size_t end, void *out)
{
    (void)ctx;
    stats *s = out;
    *s = (stats){.min = UINT64_MAX};
    for (size_t i = begin; i < end; i++) {
        uint64_t x = (i * 2654435761u) % 1000;
        s->sum += (double)x;
        s->sum_squares += (double)x * (double)x;
        s->count++;
        s->min = x < s->min ? x : s->min;
        s->max = x > s->max ? x : s->max;
    }
}

static void stats_combine(void *left, const void *right)
{
    stats *l = left;
    const stats *r = right;
    l->sum += r->sum;
    l->sum_squares += r->sum_squares;
    l->count += r->count;
    l->min = r->min < l->min ? r->min : l->min;
    l->max = r->max > l->max ? r->max : l->max;
}

static void test_reduce_a_struct(void)
{
    const size_t n = 100000;
    stats want;
    stats_of(NULL, 0, n, &want);
    stats first = {0};
    for (unsigned workers = 1; workers <= 3; workers++) {
        pareng_engine *e = testing_start_cutoff(workers, 0);
        stats got;
        memset(&got, 0, sizeof got);
        CU_ASSERT_EQUAL(pareng_reduce_into(e, 0, n, 0, stats_of, stats_combine, NULL, &got,
                                           sizeof got), 0);
        CU_ASSERT_EQUAL(got.count, want.count);
        CU_ASSERT_EQUAL(got.min, want.min);
        CU_ASSERT_EQUAL(got.max, want.max);
        CU_ASSERT_DOUBLE_EQUAL(got.sum, want.sum, 1e-6);
        if (workers == 1)
            first = got;
        /* the same bits on any number of workers */
        CU_ASSERT_EQUAL(memcmp(&got, &first, sizeof got), 0);
        CU_ASSERT_EQUAL(pareng_reduce_into(e, 0, 0, 0, stats_of, stats_combine, NULL, &got,
                                           sizeof got), -EINVAL);
        pareng_stop(e);
    }
}

/* A result of an over-aligned type (vector registers: __m256d has 32, AVX-512's 64) got
 * buffers aligned to 16 only, and the worker died of SIGSEGV at the first aligned store. */
typedef struct aligned_sum {
    _Alignas(64) uint64_t sum;
    uint64_t misaligned; /* buffers seen off their alignment */
} aligned_sum;

static uint64_t off_alignment(const void *p)
{
    return (uintptr_t)p % _Alignof(aligned_sum) != 0;
}

static void aligned_sum_of(void *ctx, size_t begin, size_t end, void *out)
{
    (void)ctx;
    aligned_sum *r = out;
    *r = (aligned_sum){.sum = 0, .misaligned = off_alignment(out)};
    for (size_t i = begin; i < end; i++)
        r->sum += i;
}

static void aligned_sum_combine(void *left, const void *right)
{
    aligned_sum *l = left;
    const aligned_sum *r = right;
    l->sum += r->sum;
    l->misaligned += r->misaligned + off_alignment(left) + off_alignment(right);
}

static void check_reduce_aligned(pareng_engine *e)
{
    const size_t n = 100000;
    aligned_sum got = {.sum = 1, .misaligned = 1};
    CU_ASSERT_EQUAL(pareng_reduce_into(e, 0, n, 0, aligned_sum_of, aligned_sum_combine, NULL,
                                       &got, sizeof got), 0);
    CU_ASSERT_EQUAL(got.sum, (uint64_t)n * (n - 1) / 2);
    CU_ASSERT_EQUAL(got.misaligned, 0);
}

static void test_reduce_over_aligned(void) { on_every_engine(check_reduce_aligned); }

/* ---- more than a frame holds: a pointer to the parent's stack ---------------------------- */

typedef struct big {
    double v[16]; /* 128 bytes: more than a frame's 48 */
} big;

PARENG_TASK_2(double, sum_big, const big *, in, unsigned, depth)
{
    if (depth == 0) {
        double s = 0;
        for (int i = 0; i < 16; i++)
            s += in->v[i];
        return s;
    }
    big halves[2]; /* each child reads one, through a pointer into this task's stack */
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < 16; i++)
            halves[h].v[i] = in->v[i] / 2;
    PARENG_SPAWN(sum_big, &halves[0], depth - 1);
    double right = PARENG_CALL(sum_big, &halves[1], depth - 1);
    return PARENG_SYNC(sum_big) + right;
}

PARENG_TASK_1(double, sum_big_root, unsigned, depth)
{
    big b;
    for (int i = 0; i < 16; i++)
        b.v[i] = (double)(1 << 20);
    return PARENG_CALL(sum_big, &b, depth);
}

static void check_big_arguments(pareng_engine *e)
{
    double got = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, sum_big_root, &got, 14), 0);
    CU_ASSERT_DOUBLE_EQUAL(got, 16.0 * (1 << 20), 1e-9);
}

static void test_big_arguments_by_pointer(void) { on_every_engine(check_big_arguments); }

/* ---- const-qualified arguments and results, in a frame and spilled ---------------------- */

static const double doubled = 2.0; /* a global: the same in every worker */

/* What a user who marks parameters const writes; the big one is more than a frame holds */
PARENG_TASK_3(double, sum_const, const big, in, const unsigned, depth, const double *const, scale)
{
    if (depth == 0) {
        double s = 0;
        for (int i = 0; i < 16; i++)
            s += in.v[i] * *scale;
        return s;
    }
    big half = in;
    for (int i = 0; i < 16; i++)
        half.v[i] /= 2;
    PARENG_SPAWN(sum_const, half, depth - 1, scale);
    double right = PARENG_CALL(sum_const, half, depth - 1, scale);
    return PARENG_SYNC(sum_const) + right;
}

/* A const result kept by a serial run in its local slots and, past them, in frames. gcc's
 * -Wextra warns of it as of any C function's const result (C++ does not): told not to here. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-qualifiers"
PARENG_TASK_1(const uint64_t, const_tree, const unsigned, depth)
{
    if (depth == 0)
        return 1;
    for (int i = 0; i < 8; i++)
        PARENG_SPAWN(const_tree, depth - 1);
    uint64_t leaves = 0;
    for (int i = 0; i < 8; i++)
        leaves += PARENG_SYNC(const_tree);
    return leaves;
}
#pragma GCC diagnostic pop

static void check_const_arguments(pareng_engine *e)
{
    uint64_t leaves = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, const_tree, &leaves, 5), 0);
    CU_ASSERT_EQUAL(leaves, 8 * 8 * 8 * 8 * 8);

    big b;
    for (int i = 0; i < 16; i++)
        b.v[i] = (double)(i << 20);
    double got = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, sum_const, &got, b, 12, &doubled), 0);
    CU_ASSERT_DOUBLE_EQUAL(got, 2 * 120.0 * (1 << 20), 1e-6);
}

static void test_const_arguments(void) { on_every_engine(check_const_arguments); }

/* ---- what tasks print with stdio --------------------------------------------------------- */

#define PRINTED_LEAVES 600

PARENG_TASK_2(int, print_leaves, int, first, int, n)
{
    if (n > 1) {
        PARENG_SPAWN(print_leaves, first, n / 2);
        int right = PARENG_CALL(print_leaves, first + n / 2, n - n / 2);
        return PARENG_SYNC(print_leaves) + right;
    }
    testing_spin_ns(2000); /* long enough to be stolen */
    printf("leaf %d of the tree\n", first);
    return 1;
}

/* A line of the file is a leaf's line, whole: *leaf is which. */
static bool leaf_line(const char *line, int *leaf)
{
    char expected[64];
    return sscanf(line, "leaf %d", leaf) == 1 && *leaf >= 0 && *leaf < PRINTED_LEAVES &&
           snprintf(expected, sizeof expected, "leaf %d of the tree\n", *leaf) > 0 &&
           strcmp(line, expected) == 0;
}

/* Into a file, as a batch job's output goes: each line a task printed is there once and whole
 * by the time the run returns, what the caller printed before the start once, and the
 * caller's lines and the tasks' in the program's order. (Each worker's copy of the caller's
 * buffer printed it again, tasks' lines were lost in the workers' buffers at stop, 4 KiB
 * blocks of different workers split lines, and what the caller printed between the start
 * and a run came out after the run's lines.) */
/* stdout into a new file, buffered as a program's stdout into a file is (CUnit makes it
 * unbuffered): the file; *saved what stdout was, for stdout_back. */
static FILE *stdout_to_a_file(int *saved)
{
    FILE *file = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(file);
    fflush(stdout);
    *saved = dup(1);
    CU_ASSERT_FATAL(*saved >= 0 && dup2(fileno(file), 1) == 1);
    static char buffer[BUFSIZ];
    setvbuf(stdout, buffer, _IOFBF, sizeof buffer);
    return file;
}

static void stdout_back(int saved)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    dup2(saved, 1);
    close(saved);
}

static void check_task_output(unsigned workers)
{
    int saved;
    FILE *file = stdout_to_a_file(&saved);
    printf("before the start\n");
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = workers;
    cfg.cutoff_depth = PARENG_CUTOFF_NONE;
    pareng_engine *e = NULL;
    int started = pareng_start(&e, &cfg), leaves = 0, rc = -1;
    printf("before the run\n");
    if (started == 0)
        rc = PARENG_RUN(e, print_leaves, &leaves, 0, PRINTED_LEAVES);
    printf("after the run\n");
    fflush(stdout);
    off_t at_return = lseek(fileno(file), 0, SEEK_END);
    if (started == 0)
        pareng_stop(e);
    stdout_back(saved);
    CU_ASSERT_EQUAL_FATAL(started, 0);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(leaves, PRINTED_LEAVES);
    CU_ASSERT_EQUAL(lseek(fileno(file), 0, SEEK_END), at_return); /* nothing came later */
    rewind(file);
    static unsigned char seen[PRINTED_LEAVES];
    memset(seen, 0, sizeof seen);
    unsigned lines = 0, leaves_seen = 0, twice = 0, other = 0;
    char line[64];
    int leaf;
    for (; fgets(line, sizeof line, file); lines++) {
        if (leaf_line(line, &leaf))
            leaves_seen += seen[leaf]++ == 0, twice += seen[leaf] > 1;
        else
            other += strcmp(line, lines == 0   ? "before the start\n"
                                  : lines == 1 ? "before the run\n"
                                               : "after the run\n") != 0 ||
                     (lines > 1 && lines != PRINTED_LEAVES + 2);
    }
    fclose(file);
    CU_ASSERT_EQUAL(lines, PRINTED_LEAVES + 3);
    CU_ASSERT_EQUAL(leaves_seen, PRINTED_LEAVES);
    CU_ASSERT_EQUAL(twice, 0);
    CU_ASSERT_EQUAL(other, 0);
}

/* Lines of 20,000 bytes, longer than a stream's usual buffer (a worker's wrote them in 4 or
 * 8 KiB pieces, amid other workers' pieces), reach a file whole. */
#define LONG_LINES 64
#define LONG_LINE_BYTES 20000

/* Line k: its number, then letters */
static void long_line(int k, char *line)
{
    int at = snprintf(line, 16, "%d ", k);
    for (int i = at; i < LONG_LINE_BYTES; i++)
        line[i] = (char)('a' + (k + i) % 26);
    line[LONG_LINE_BYTES] = '\n';
    line[LONG_LINE_BYTES + 1] = '\0';
}

PARENG_TASK_2(int, print_long_lines, int, first, int, n)
{
    if (n > 1) {
        PARENG_SPAWN(print_long_lines, first, n / 2);
        int right = PARENG_CALL(print_long_lines, first + n / 2, n - n / 2);
        return PARENG_SYNC(print_long_lines) + right;
    }
    static char line[LONG_LINE_BYTES + 2];
    long_line(first, line);
    testing_spin_ns(20000);
    return fputs(line, stdout) >= 0;
}

static void test_long_task_lines(void)
{
    int saved;
    FILE *file = stdout_to_a_file(&saved);
    pareng_engine *e = testing_start_cutoff(4, PARENG_CUTOFF_NONE);
    int printed = 0, rc = e ? PARENG_RUN(e, print_long_lines, &printed, 0, LONG_LINES) : -1;
    pareng_stop(e);
    stdout_back(saved);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(printed, LONG_LINES);
    rewind(file);
    static char got[LONG_LINE_BYTES + 64], expected[LONG_LINE_BYTES + 2];
    static unsigned char seen[LONG_LINES];
    memset(seen, 0, sizeof seen);
    unsigned lines = 0, whole = 0;
    for (int k; fgets(got, sizeof got, file); lines++)
        if (sscanf(got, "%d", &k) == 1 && k >= 0 && k < LONG_LINES) {
            long_line(k, expected);
            whole += strcmp(got, expected) == 0 && !seen[k]++;
        }
    fclose(file);
    CU_ASSERT_EQUAL(lines, LONG_LINES);
    CU_ASSERT_EQUAL(whole, LONG_LINES);
}

static void test_task_output(void)
{
    for (unsigned workers = 1; workers <= 3; workers++)
        check_task_output(workers);
}

typedef struct stream_holder {
    FILE *stream;
    _Atomic pid_t tid;
    int go_on; /* the read end of a pipe: a byte there lets the thread go on */
} stream_holder;

static void *read_a_line(void *arg)
{
    stream_holder *h = arg;
    atomic_store(&h->tid, gettid());
    char line[64];
    return fgets(line, sizeof line, h->stream);
}

static void *hold_the_stream(void *arg)
{
    stream_holder *h = arg;
    flockfile(h->stream); /* as a thread that prints a record of several calls */
    atomic_store(&h->tid, gettid());
    char byte;
    bool told = read(h->go_on, &byte, 1) == 1; /* blocked here, the stream's lock held */
    funlockfile(h->stream);
    return told ? h : NULL;
}

/* Until the thread sleeps in a system call (its read of an empty pipe), or 10 s */
static bool blocked_in_read(stream_holder *h)
{
    for (int looks = 0; looks < 10000; looks++) {
        char path[64], stat[256] = "";
        pid_t tid = atomic_load(&h->tid);
        snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
        FILE *f = tid ? fopen(path, "re") : NULL;
        if (f) {
            size_t n = fread(stat, 1, sizeof stat - 1, f);
            stat[n] = '\0';
            fclose(f);
            const char *state = strrchr(stat, ')');
            if (state && state[1] == ' ' && state[2] == 'S')
                return true;
        }
        testing_spin_ns(1000 * 1000);
    }
    return false;
}

/* A start and a run while another thread of the caller's holds a stream's lock */
static void start_and_run_beside(void *(*thread)(void *), stream_holder *h, int go_on_writer)
{
    pthread_t other;
    CU_ASSERT_FATAL(pthread_create(&other, NULL, thread, h) == 0);
    CU_ASSERT(blocked_in_read(h));
    unsigned alarm_before = alarm(60); /* a hang fails the test, not the suite's timeout */
    pareng_engine *e = NULL;
    uint64_t leaves = 0;
    CU_ASSERT_EQUAL_FATAL(pareng_start(&e, NULL), 0);
    CU_ASSERT_EQUAL(PARENG_RUN(e, const_tree, &leaves, 2), 0);
    CU_ASSERT_EQUAL(leaves, 64);
    pareng_stop(e);
    alarm(alarm_before);
    CU_ASSERT(write(go_on_writer, "go on\n", 6) == 6);
    void *got = NULL;
    pthread_join(other, &got);
    CU_ASSERT_PTR_NOT_NULL(got);
}

static char dprinted[1 << 16];
static atomic_bool stop_printing;

static void *dprintf_until_told(void *unused)
{
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    while (fd >= 0 && !atomic_load(&stop_printing))
        dprintf(fd, "%s%s", dprinted, dprinted);
    if (fd >= 0)
        close(fd);
    return unused;
}

static void nothing_to_do(void *ctx, size_t begin, size_t end)
{
    (void)ctx, (void)begin, (void)end;
}

/* dprintf lists a stream of its own while it writes, on its thread's stack, with no lock
 * (_IO_USER_LOCK): a run's flush that tried to lock it crashed the caller (NULL). A race:
 * within 50,000 loops it did. */
static void test_runs_beside_dprintf(void)
{
    memset(dprinted, 'x', sizeof dprinted - 1);
    pareng_engine *e = NULL;
    CU_ASSERT_EQUAL_FATAL(pareng_start(&e, NULL), 0);
    atomic_store(&stop_printing, false);
    pthread_t printer;
    CU_ASSERT_FATAL(pthread_create(&printer, NULL, dprintf_until_told, NULL) == 0);
    int rc = 0;
    for (int loop = 0; loop < 100000 && rc == 0; loop++)
        rc = pareng_for(e, 0, 2, 0, nothing_to_do, NULL);
    CU_ASSERT_EQUAL(rc, 0);
    atomic_store(&stop_printing, true);
    pthread_join(printer, NULL);
    pareng_stop(e);
}

/* Another thread of the caller's waits in fgets on a stream, holding its lock, as a program
 * reading commands does; another holds the lock of a stream with output pending, as one
 * printing a record does: the start and runs go on (fflush(NULL) waited for every stream's
 * lock, and waiting for a busy one under glibc's list lock could deadlock with its holder's
 * next fopen). */
static void test_streams_of_other_threads(void)
{
    int ends[2];
    CU_ASSERT_FATAL(pipe(ends) == 0);
    stream_holder reader = {.stream = fdopen(ends[0], "r")};
    CU_ASSERT_PTR_NOT_NULL_FATAL(reader.stream);
    start_and_run_beside(read_a_line, &reader, ends[1]);
    fclose(reader.stream);
    close(ends[1]);

    CU_ASSERT_FATAL(pipe(ends) == 0);
    stream_holder printer = {.stream = tmpfile(), .go_on = ends[0]};
    CU_ASSERT_PTR_NOT_NULL_FATAL(printer.stream);
    CU_ASSERT(fputs("pending\n", printer.stream) >= 0); /* in its buffer: to be flushed */
    start_and_run_beside(hold_the_stream, &printer, ends[1]);
    fclose(printer.stream);
    close(ends[0]);
    close(ends[1]);
}

/* ---- a flat loop of spawns, past the end of small deques ----------------------------------- */

PARENG_TASK_1(uint64_t, squared, uint64_t, i) { return i * i; }

PARENG_TASK_1(uint64_t, loop_of_spawns, uint64_t, n)
{
    for (uint64_t i = 0; i < n; i++)
        PARENG_SPAWN(squared, i);
    uint64_t sum = 0;
    for (uint64_t i = n; i > 0; i--)
        sum += (i - 1) * PARENG_SYNC(squared); /* each result where it belongs */
    return sum;
}

static void test_flat_loop_exact_past_the_deque(void)
{
    const uint64_t n = 50000;
    uint64_t want = 0;
    for (uint64_t i = 0; i < n; i++)
        want += i * i * i;
    static const unsigned capacities[] = {8, 1024, 0};
    for (size_t k = 0; k < sizeof capacities / sizeof capacities[0]; k++)
        for (size_t c = 0; c < CUTOFFS; c++) {
            pareng_config cfg;
            pareng_config_default(&cfg);
            cfg.workers = 3;
            cfg.cutoff_depth = cutoffs[c];
            cfg.deque_capacity = capacities[k];
            pareng_engine *e = testing_start(&cfg);
            uint64_t got = 0, overflows = 0;
            CU_ASSERT_EQUAL(PARENG_RUN(e, loop_of_spawns, &got, n), 0);
            CU_ASSERT_EQUAL(got, want);
            for (unsigned w = 0; w < 3; w++) {
                pareng_stats st;
                CU_ASSERT_EQUAL(pareng_engine_stats(e, w, &st), 0);
                overflows += st.overflows;
            }
            /* the default deque holds the loop; a small one does not, and says so */
            CU_ASSERT(capacities[k] ? overflows > 0 : overflows == 0);
            pareng_stop(e);
        }
}

/* ---- PARENG_SHARE: spawns made stealable before a long stretch without syncs ------------ */

/* The parent spawns 64 children, shares, then waits without a spawn or a sync until the other
 * worker has run at least half of them. Without the share only what the deque published at once
 * (its first frame, or the few a quick thief saw) is stealable: the rest is shared lazily, at
 * the parent's next spawn or sync, and the wait runs out (checked: it does). */
#define SHARED_CHILDREN 64

PARENG_TASK_2(int, count_if_elsewhere, _Atomic int *, elsewhere, unsigned, parent_worker)
{
    if (PARENG_WORKER_INDEX() != parent_worker)
        atomic_fetch_add(elsewhere, 1);
    return 0;
}

PARENG_TASK_1(int, share_then_wait, int, share)
{
    _Atomic int elsewhere = 0;
    for (int k = 0; k < SHARED_CHILDREN; k++)
        PARENG_SPAWN(count_if_elsewhere, &elsewhere, PARENG_WORKER_INDEX());
    if (share)
        PARENG_SHARE();
    uint64_t start = testing_now_ns();
    int seen = 0;
    do
        seen = atomic_load(&elsewhere);
    while (seen < SHARED_CHILDREN / 2 && testing_now_ns() - start < 2000000000u);
    for (int k = 0; k < SHARED_CHILDREN; k++)
        PARENG_SYNC(count_if_elsewhere);
    return seen;
}

static void test_share_before_a_long_stretch(void)
{
    pareng_engine *e = testing_start_cutoff(2, PARENG_CUTOFF_NONE);
    int seen = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, share_then_wait, &seen, 1), 0);
    CU_ASSERT(seen >= SHARED_CHILDREN / 2); /* the other worker ran them during the wait */
    pareng_stop(e);
}

int main(void)
{
    CU_TestInfo features[] = {
        {"tasks that return nothing", test_void_tasks},
        {"mutually recursive tasks (PARENG_DECLARE_TASK)", test_mutual_recursion},
        {"a helper spawns with the task's context", test_helper_spawns},
        {"the engine inside a task", test_engine_inside_a_task},
        {"a thread a task starts: loops in it, runs refused", test_thread_of_a_task},
        {"a pareng_for body that spawns", test_for_body_spawns},
        {"pareng_reduce_into: a struct, same bits", test_reduce_a_struct},
        {"pareng_reduce_into: an over-aligned result", test_reduce_over_aligned},
        {"arguments of 128 bytes through the parent's stack", test_big_arguments_by_pointer},
        {"const-qualified arguments and results, in a frame and spilled", test_const_arguments},
        {"lines of 20,000 bytes that tasks print reach a file whole", test_long_task_lines},
        {"what tasks print reaches a file whole, once, before the run returns, in order with "
         "the caller's", test_task_output},
        {"another thread waiting in fgets on a stream does not hold up a start or a run",
         test_streams_of_other_threads},
        {"runs beside a thread's dprintf", test_runs_beside_dprintf},
        {"a flat loop of spawns past the deque's end: exact", test_flat_loop_exact_past_the_deque},
        {"PARENG_SHARE: the other worker runs the spawns during a long stretch", test_share_before_a_long_stretch},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("task features", features),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
