/*
 * test_ports.c - programs ported literally from threads (the Barcelona OpenMP Tasks Suite,
 * Cilk), as a user ports them, must give the exact answer on any number of workers
 * (docs/memory.md): children that get pointers to their parent's locals (the board of
 * nqueens, the array their counts go to); with PARENG_GLOBALS_SHARED, a global the caller
 * sets after pareng_start and globals that tasks write and the caller reads; by default, the
 * per-process globals that thread code keeps per thread (a table each makes on first use);
 * and Cilk code that leans on the implicit sync at a function's end must be refused loudly.
 */
#include "pareng.h"
#include "testing.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <pthread.h>
#include <pwd.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const unsigned worker_counts[] = {1, 2, 4};
#define WORKER_COUNTS (sizeof worker_counts / sizeof worker_counts[0])


/* ---- BOTS nqueens, as written for OpenMP tasks -------------------------------------------
 * Every child copies the board of its parent (a pointer to the parent's stack) and writes its
 * count into the parent's csols (on the parent's stack too); the parent sums them after the
 * taskwait. */
static int ok(int n, const char *a)
{
    for (int i = 0; i < n; i++) {
        char p = a[i];
        for (int j = i + 1; j < n; j++) {
            char q = a[j];
            if (q == p || q == p - (j - i) || q == p + (j - i))
                return 0;
        }
    }
    return 1;
}

/* Each child gets a pointer to its parent's board, copies it and adds its queen. */
PARENG_TASK_5(int, nqueens_task, int, n, int, j, char *, a, int *, solutions, int, i)
{
    char b[n];
    memcpy(b, a, (size_t)j);
    b[j] = (char)i;
    if (!ok(j + 1, b)) {
        *solutions = 0;
        return 0;
    }
    if (j + 1 == n) {
        *solutions = 1;
        return 0;
    }
    int csols[n];
    memset(csols, 0, sizeof csols);
    for (int k = 0; k < n; k++)
        PARENG_SPAWN(nqueens_task, n, j + 1, b, &csols[k], k);
    for (int k = 0; k < n; k++)
        PARENG_SYNC(nqueens_task);
    int sum = 0;
    for (int k = 0; k < n; k++)
        sum += csols[k];
    *solutions = sum;
    return 0;
}

PARENG_TASK_1(int, find_queens, int, n)
{
    char a[n];
    int csols[n];
    for (int k = 0; k < n; k++)
        PARENG_SPAWN(nqueens_task, n, 0, a, &csols[k], k);
    for (int k = 0; k < n; k++)
        PARENG_SYNC(nqueens_task);
    int total = 0;
    for (int k = 0; k < n; k++)
        total += csols[k];
    return total;
}

static void test_nqueens_board_on_the_parents_stack(void)
{
    static const int known[] = {1, 0, 0, 2, 10, 4, 40, 92, 352, 724, 2680};
    for (size_t w = 0; w < WORKER_COUNTS; w++) {
        for (unsigned cutoff = 0; cutoff < 2; cutoff++) {
            pareng_engine *e =
                testing_start_cutoff(worker_counts[w], cutoff ? PARENG_CUTOFF_NONE : 0);
            for (int n = 1; n <= 11; n++) {
                int got = -1;
                CU_ASSERT_EQUAL(PARENG_RUN(e, find_queens, &got, n), 0);
                if (got != known[n - 1])
                    fprintf(stderr, "\nnqueens(%d) on %u workers: %d\n", n, worker_counts[w],
                            got);
                CU_ASSERT_EQUAL(got, known[n - 1]);
            }
            pareng_stop(e);
        }
    }
}

/* ---- Cilk's implicit sync -----------------------------------------------------------------
 * A Cilk function syncs its children when it returns, and Cilk code leans on that: a tree
 * walk spawns one half, walks the other and returns. Ported literally, the pareng task returns
 * with a spawn it did not sync, which a parallel clone would never run. pareng has no
 * implicit sync; such a task fails the run with a message that names it, on any number of
 * workers and with any cutoff (serial runs included), and so does a task that syncs more than
 * it spawned. */
PARENG_TASK_1(void, walk, unsigned, depth)
{
    if (depth == 0)
        return;
    PARENG_SPAWN(walk, depth - 1); /* cilk_spawn walk(depth - 1); */
    PARENG_CALL(walk, depth - 1);  /* walk(depth - 1); and Cilk's implicit sync */
}

PARENG_TASK_1(int, value_of, int, i) { return i; }

/* A name longer than the message keeps: cut, and said so. */
PARENG_TASK_1(int, a_task_whose_name_is_longer_than_the_room_kept, int, i)
{
    PARENG_SPAWN(value_of, i);
    return i;
}

/* Spawns n children and syncs none: more than a serial run's local slots hold. */
PARENG_TASK_1(int, scatter, int, n)
{
    for (int i = 0; i < n; i++)
        PARENG_SPAWN(value_of, i);
    return n;
}

/* scatter one level down: below a cutoff of 1, in a serial run */
PARENG_TASK_1(int, scatter_below, int, n) { return PARENG_CALL(scatter, n); }

PARENG_TASK_1(int, one_spawn_two_syncs, int, i)
{
    PARENG_SPAWN(value_of, i);
    int a = PARENG_SYNC(value_of);
    return a + PARENG_SYNC(value_of); /* would take its parent's spawn */
}

/* Syncs first, then spawns: its head comes back to where it began, as if balanced. */
PARENG_TASK_1(int, sync_then_spawn, int, i)
{
    int a = PARENG_SYNC(value_of); /* would take its parent's spawn */
    PARENG_SPAWN(value_of, i + 100);
    return a;
}

static void sync_for_the_task(PARENG_CONTEXT_PARAMS, int *sum)
{
    *sum += PARENG_SYNC(value_of);
}

/* Its helper syncs twice for one spawn. */
PARENG_TASK_1(int, helper_syncs_twice, int, i)
{
    int sum = 0;
    PARENG_SPAWN(value_of, i);
    sync_for_the_task(PARENG_CONTEXT, &sum);
    sync_for_the_task(PARENG_CONTEXT, &sum);
    return sum;
}

/* The parent of each of those: one spawn of its own, synced after the child returned. */
PARENG_TASK_2(int, parent_of_extra_syncs, int, i, int, which)
{
    PARENG_SPAWN(value_of, i);
    int r = which == 0   ? PARENG_CALL(one_spawn_two_syncs, i)
            : which == 1 ? PARENG_CALL(sync_then_spawn, i)
                         : PARENG_CALL(helper_syncs_twice, i);
    return r + PARENG_SYNC(value_of);
}

PARENG_TASK_1(long, doubled, long, i)
{
    return 2 * i;
}

/* Syncs in the order of the spawns, as if each sync named its spawn by position: the first
 * sync takes the most recent spawn, doubled's, as value_of's (after `kept` spawns of value_of:
 * with more than 4, the serial clone keeps the results in frames rather than in its slots). */
PARENG_TASK_1(int, synced_in_spawn_order, int, kept)
{
    for (int i = 0; i < kept; i++)
        PARENG_SPAWN(value_of, i);
    PARENG_SPAWN(doubled, kept);
    int sum = 0;
    for (int i = 0; i < kept; i++)
        sum += PARENG_SYNC(value_of);
    return sum + (int)PARENG_SYNC(doubled);
}

/* The root syncs once more than it spawned: there is no parent's child to take. */
PARENG_TASK_1(int, root_syncs_twice, int, i)
{
    PARENG_SPAWN(value_of, i);
    int sum = PARENG_SYNC(value_of);
    return sum + PARENG_SYNC(value_of);
}

PARENG_TASK_1(int, exit_with, int, status)
{
    _exit(status);
}

/* A helper spawns on behalf of its task (PARENG_CONTEXT); whoever syncs, the task's spawns
 * are counted together. */
static void spawn_for_the_task(PARENG_CONTEXT_PARAMS, int from, int to)
{
    for (int i = from; i < to; i++)
        PARENG_SPAWN(value_of, i);
}

PARENG_TASK_2(int, sum_of_helpers_spawns, int, n, int, synced)
{
    spawn_for_the_task(PARENG_CONTEXT, 0, n);
    int sum = 0;
    for (int i = 0; i < synced; i++)
        sum += PARENG_SYNC(value_of);
    return sum;
}

PARENG_TASK_1(int, helpers_spawns_below, int, synced)
{
    PARENG_SPAWN(sum_of_helpers_spawns, 6, synced);
    int here = PARENG_CALL(sum_of_helpers_spawns, 6, synced);
    return here + PARENG_SYNC(sum_of_helpers_spawns);
}

/* A loop body of pareng_for_tasks that spawns a child per index and syncs only the first. */
static void spawn_per_index(PARENG_CONTEXT_PARAMS, void *ctx, size_t begin, size_t end)
{
    (void)ctx;
    for (size_t i = begin; i < end; i++)
        PARENG_SPAWN(value_of, (int)i);
    if (end > begin)
        (void)PARENG_SYNC(value_of);
}

/* ---- Syncs inside the arguments of other operations -----------------------------------
 * A pipeline that spawns each step with the result of the one before
 * (PARENG_SPAWN(step, PARENG_SYNC(step))), calls a step with a sync as its argument, adds two
 * syncs in one expression and gives a sync's result to PARENG_FOR: each sync must be done
 * before the operation around it reads the task's head (with clang, a spawn once took the
 * head from before its argument's sync: wrong numbers, crashes, hangs). A step spawns and
 * calls a part, so that the steps have frames of their own to steal. */
#define STEP_MODULUS 1000003u
static uint64_t part_value(uint64_t x)
{
    return (x * 31 + 7) % STEP_MODULUS;
}

static uint64_t step_value(uint64_t x)
{
    return (part_value(x) * 7 + part_value(x + 1)) % STEP_MODULUS;
}

PARENG_TASK_1(uint64_t, step_part, uint64_t, x)
{
    return part_value(x);
}

PARENG_TASK_1(uint64_t, step, uint64_t, x)
{
    PARENG_SPAWN(step_part, x);
    uint64_t second = PARENG_CALL(step_part, x + 1);
    return (PARENG_SYNC(step_part) * 7 + second) % STEP_MODULUS;
}

static void add_indices(void *ctx, size_t begin, size_t end)
{
    for (size_t i = begin; i < end; i++)
        atomic_fetch_add((_Atomic uint64_t *)ctx, i);
}

PARENG_TASK_1(uint64_t, pipeline, unsigned, steps)
{
    PARENG_SPAWN(step, 1);
    for (unsigned i = 1; i < steps; i++)
        PARENG_SPAWN(step, PARENG_SYNC(step));
    PARENG_SPAWN(step, PARENG_SYNC(step) + 1);
    uint64_t called = PARENG_CALL(step, PARENG_SYNC(step));
    PARENG_SPAWN(step, called);
    PARENG_SPAWN(step, called + 1);
    uint64_t both = PARENG_SYNC(step) + PARENG_SYNC(step);
    _Atomic uint64_t indices = 0;
    PARENG_SPAWN(step, both);
    if (PARENG_FOR(0, PARENG_SYNC(step) % 1000, 7, add_indices, &indices) < 0)
        return 0;
    return both * 1000003u + atomic_load(&indices);
}

static uint64_t pipeline_value(unsigned steps)
{
    uint64_t x = step_value(1);
    for (unsigned i = 1; i < steps; i++)
        x = step_value(x);
    uint64_t called = step_value(step_value(x + 1));
    uint64_t both = step_value(called) + step_value(called + 1), n = step_value(both) % 1000;
    return both * 1000003u + n * (n - 1) / 2;
}

/* The run failed (-ECHILD), with a message that says `said`; the engine is failed for good. */
static void assert_refused(pareng_engine *e, int rc, const char *said, unsigned workers,
                           unsigned cutoff)
{
    CU_ASSERT_EQUAL(rc, -ECHILD);
    if (rc != -ECHILD || !strstr(pareng_last_error(), said))
        fprintf(stderr, "\n%u workers, cutoff %u: rc %d, \"%s\", expected \"%s\"\n", workers,
                cutoff, rc, rc ? pareng_last_error() : "", said);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), said));
    CU_ASSERT(strstr(pareng_last_error(), "no implicit sync") != NULL ||
              strstr(pareng_last_error(), "there was none left") != NULL);
    int got = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, value_of, &got, 1), -EPIPE);
    pareng_stop(e);
}

static const unsigned cutoffs[] = {PARENG_CUTOFF_AUTO, PARENG_CUTOFF_NONE, 1};
#define CUTOFFS (sizeof cutoffs / sizeof cutoffs[0])

static void test_syncs_inside_arguments(void)
{
    const uint64_t want = pipeline_value(200);
    for (size_t w = 0; w < WORKER_COUNTS; w++)
        for (size_t c = 0; c < CUTOFFS; c++) {
            pareng_engine *e = testing_start_cutoff(worker_counts[w], cutoffs[c]);
            for (int run = 0; run < 5; run++) {
                uint64_t got = 0;
                CU_ASSERT_EQUAL(PARENG_RUN(e, pipeline, &got, 200), 0);
                CU_ASSERT_EQUAL(got, want);
            }
            pareng_stop(e);
        }
}

static void test_cilk_implicit_sync_refused(void)
{
    for (size_t w = 0; w < WORKER_COUNTS; w++)
        for (size_t c = 0; c < CUTOFFS; c++) {
            pareng_engine *e = testing_start_cutoff(worker_counts[w], cutoffs[c]);
            assert_refused(e, PARENG_RUN(e, walk, NULL, 12),
                           "task walk returned with 1 spawn not synced", worker_counts[w],
                           cutoffs[c]);
        }
}

static void test_spawns_left_in_a_loop_refused(void)
{
    pareng_engine *long_named = testing_start_cutoff(2, PARENG_CUTOFF_AUTO);
    int v = 0;
    assert_refused(long_named,
                   PARENG_RUN(long_named, a_task_whose_name_is_longer_than_the_room_kept, &v, 1),
                   "task a_task_whose_name_is_lon... returned with 1 spawn not synced", 2,
                   PARENG_CUTOFF_AUTO);
    for (size_t w = 0; w < WORKER_COUNTS; w++)
        for (size_t c = 0; c < CUTOFFS; c++) {
            pareng_engine *e = testing_start_cutoff(worker_counts[w], cutoffs[c]);
            int got = 0;
            assert_refused(e, PARENG_RUN(e, scatter_below, &got, 6),
                           "task scatter returned with 6 spawns not synced", worker_counts[w],
                           cutoffs[c]);
        }
}

/* A task that syncs more than it spawned fails the run: a serial clone's sync with none of its
 * own spawns left is refused before it reads past the task's slots (with a cutoff of 1, the
 * root's children run in serial runs), a parallel clone's when the task ends. A sync before
 * the task's spawn leaves the head where it began, as if balanced: only the serial clone's
 * test at the sync sees it (docs/library.md). */
static void test_more_syncs_than_spawns_refused(void)
{
    for (size_t w = 0; w < WORKER_COUNTS; w++)
        for (size_t c = 0; c < CUTOFFS; c++)
            for (int which = 0; which < 3; which++) {
                if (which == 1 && cutoffs[c] != 1)
                    continue;
                pareng_engine *e = testing_start_cutoff(worker_counts[w], cutoffs[c]);
                int got = 0;
                assert_refused(e, PARENG_RUN(e, parent_of_extra_syncs, &got, 3, which),
                               which == 0   ? "task one_spawn_two_syncs synced more than it"
                               : which == 1 ? "task sync_then_spawn synced more than it"
                                            : "synced more than it spawned",
                               worker_counts[w], cutoffs[c]);
            }
    /* the root's, which took a frame below the deque: a hang, on more than one worker */
    for (size_t w = 0; w < WORKER_COUNTS; w++)
        for (size_t c = 0; c < CUTOFFS; c++) {
            pareng_engine *e = testing_start_cutoff(worker_counts[w], cutoffs[c]);
            int got = 0;
            assert_refused(e, PARENG_RUN(e, root_syncs_twice, &got, 3),
                           "task root_syncs_twice synced more than it spawned",
                           worker_counts[w], cutoffs[c]);
        }
    /* a helper's sync too many, in a serial run, names the helper */
    pareng_engine *e = testing_start_cutoff(1, 1);
    int got = 0;
    assert_refused(e, PARENG_RUN(e, parent_of_extra_syncs, &got, 3, 2),
                   "helper sync_for_the_task synced more than it spawned", 1, 1);
}

/* A sync that names another task than its spawn's fails the run, naming both: it read the
 * other's result as its own, or ran the other's arguments as its own task's. */
static void test_syncs_out_of_order_refused(void)
{
    for (int kept = 1; kept <= 6; kept += 5)
        for (size_t w = 0; w < WORKER_COUNTS; w++)
            for (size_t c = 0; c < CUTOFFS; c++) {
                pareng_engine *e = testing_start_cutoff(worker_counts[w], cutoffs[c]);
                int got = 0;
                int rc = PARENG_RUN(e, synced_in_spawn_order, &got, kept);
                CU_ASSERT_EQUAL(rc, -ECHILD);
                CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(),
                                              "PARENG_SYNC(value_of) in task "
                                              "synced_in_spawn_order took a spawn of doubled"));
                if (rc != -ECHILD)
                    fprintf(stderr, "\n%d kept, %u workers, cutoff %u: rc %d\n", kept,
                            worker_counts[w], cutoffs[c], rc);
                pareng_stop(e);
            }
}

/* A task of the program's that exits with the status pareng uses for an unsynced spawn is
 * reported as any exit. */
static void test_a_tasks_own_exit_status(void)
{
    pareng_engine *e = testing_start_cutoff(2, PARENG_CUTOFF_AUTO);
    int got = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, exit_with, &got, 77), -ECHILD);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "exited unexpectedly with status 77"));
    pareng_stop(e);
}

static void test_a_loop_bodys_spawns_refused(void)
{
    pareng_engine *e = testing_start_cutoff(2, PARENG_CUTOFF_AUTO);
    assert_refused(e, pareng_for_tasks(e, 0, 64, 2, spawn_per_index, NULL),
                   "task pareng_for_tasks_body returned with 1 spawn not synced", 2,
                   PARENG_CUTOFF_AUTO);
}

static void test_a_helpers_spawns_are_its_tasks(void)
{
    for (size_t w = 0; w < WORKER_COUNTS; w++)
        for (size_t c = 0; c < CUTOFFS; c++) {
            pareng_engine *e = testing_start_cutoff(worker_counts[w], cutoffs[c]);
            int got = -1;
            CU_ASSERT_EQUAL(PARENG_RUN(e, helpers_spawns_below, &got, 6), 0);
            CU_ASSERT_EQUAL(got, 2 * (0 + 1 + 2 + 3 + 4 + 5));
            assert_refused(e, PARENG_RUN(e, helpers_spawns_below, &got, 4),
                           "task sum_of_helpers_spawns returned with 2 spawns not synced",
                           worker_counts[w], cutoffs[c]);
        }
}

/* ---- globals -------------------------------------------------------------------------- */

static int scale;           /* set by the caller after pareng_start */
static int squares[1000];   /* written by tasks, read by the caller */
static _Atomic long visits; /* counted by tasks */

PARENG_TASK_2(long, fill, int, lo, int, hi)
{
    if (hi - lo <= 8) {
        long sum = 0;
        for (int i = lo; i < hi; i++) {
            squares[i] = scale * i * i;
            sum += scale;
            atomic_fetch_add_explicit(&visits, 1, memory_order_relaxed);
        }
        return sum;
    }
    int mid = lo + (hi - lo) / 2;
    PARENG_SPAWN(fill, lo, mid);
    long right = PARENG_CALL(fill, mid, hi);
    return PARENG_SYNC(fill) + right;
}

static pareng_engine *start_sharing_globals(unsigned workers)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = workers;
    cfg.cutoff_depth = PARENG_CUTOFF_NONE;
    cfg.globals = PARENG_GLOBALS_SHARED;
    return testing_start(&cfg);
}

static void test_globals_are_shared_both_ways(void)
{
    for (size_t w = 0; w < WORKER_COUNTS; w++) {
        pareng_engine *e = start_sharing_globals(worker_counts[w]);
        for (int s = 1; s <= 3; s++) {
            scale = s; /* after pareng_start: every task must see it */
            memset(squares, 0, sizeof squares);
            atomic_store(&visits, 0);
            long sum = 0;
            CU_ASSERT_EQUAL(PARENG_RUN(e, fill, &sum, 0, 1000), 0);
            CU_ASSERT_EQUAL(sum, 1000L * s);
            CU_ASSERT_EQUAL(atomic_load(&visits), 1000);
            int wrong = 0;
            for (int i = 0; i < 1000; i++)
                wrong += squares[i] != s * i * i;
            CU_ASSERT_EQUAL(wrong, 0);
        }
        pareng_stop(e);
    }
}

static void *sleep_for_good(void *unused)
{
    (void)unused;
    for (;;)
        pause();
    return NULL;
}

/* A process that already runs a thread cannot share its globals safely (a write of the thread
 * during the move would be lost): pareng_start refuses, saying why, where the globals once
 * stayed private without a word and the tasks read stale values. In a child of the test, which
 * runs the thread. */
static void test_shared_globals_refused_after_a_thread(void)
{
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, sleep_for_good, NULL) != 0)
            _exit(2);
        pareng_config cfg;
        pareng_config_default(&cfg);
        cfg.workers = 2;
        cfg.globals = PARENG_GLOBALS_SHARED;
        pareng_engine *e = NULL;
        int rc = pareng_start(&e, &cfg);
        _exit(rc == -EBUSY && e == NULL &&
                      strstr(pareng_last_error(), "already runs 2 threads") != NULL
                  ? 0
                  : 1);
    }
    int status;
    CU_ASSERT_EQUAL(waitpid(child, &status, 0), child);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A fork of the program's own after pareng_start: its child gets the globals as they were at
 * its fork, privately, as fork promises; the engine's workers go on sharing them. */
static void test_a_programs_own_fork_keeps_globals_private(void)
{
    pareng_engine *e = start_sharing_globals(2);
    scale = 5;
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) {
        int seen = scale;
        scale = 7; /* the parent must not see it */
        _exit(seen == 5 ? 0 : 1);
    }
    int status;
    CU_ASSERT_EQUAL(waitpid(child, &status, 0), child);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_EQUAL(scale, 5);
    long sum = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, fill, &sum, 0, 1000), 0);
    CU_ASSERT_EQUAL(sum, 5000);
    pareng_stop(e);
}

/* The engine's memory is not forked, and with the globals shared the library's own statics
 * are shared too (linked into the program, as here): a process the caller forked after a run
 * passed the forked-copy check and died of SIGSEGV. Its runs and allocations are refused;
 * its pareng_stop releases its copy alone, and the caller's engine goes on. */
static void test_a_programs_own_fork_cannot_run_a_shared_globals_engine(void)
{
    pareng_engine *e = start_sharing_globals(2);
    long sum = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, fill, &sum, 0, 1000), 0);
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) {
        long got = 0;
        bool refused = PARENG_RUN(e, fill, &got, 0, 1000) == -EPERM &&
                       strstr(pareng_last_error(), "forked") && pareng_alloc(e, 64) == NULL;
        pareng_stop(e);
        _exit(refused ? 0 : 1);
    }
    int status;
    CU_ASSERT_EQUAL(waitpid(child, &status, 0), child);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    scale = 4;
    CU_ASSERT_EQUAL(PARENG_RUN(e, fill, &sum, 0, 1000), 0);
    CU_ASSERT_EQUAL(sum, 4000);
    pareng_stop(e);
}

/* PARENG_GLOBALS_PRIVATE, the default: each of the engine's workers has its own copy of the
 * globals, which follows the caller's at every run, even in a process whose globals other
 * engines share; PARENG_GLOBALS_FORKED keeps each copy as it was at the fork. */
static void test_private_globals_by_default(void)
{
    pareng_engine *shared = start_sharing_globals(2);
    pareng_config cfg;
    pareng_config_default(&cfg);
    CU_ASSERT_EQUAL(cfg.globals, PARENG_GLOBALS_PRIVATE);
    cfg.workers = 2;
    cfg.cutoff_depth = PARENG_CUTOFF_NONE;
    scale = 2;
    memset(squares, 0, sizeof squares);
    pareng_engine *e = testing_start(&cfg);
    cfg.globals = PARENG_GLOBALS_FORKED;
    pareng_engine *forked = testing_start(&cfg);
    scale = 3; /* after their forks: e's tasks see it, forked's do not */
    long sum = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, fill, &sum, 0, 1000), 0);
    CU_ASSERT_EQUAL(sum, 3000);
    CU_ASSERT_EQUAL(PARENG_RUN(forked, fill, &sum, 0, 1000), 0);
    CU_ASSERT_EQUAL(sum, 2000);
    CU_ASSERT_EQUAL(squares[10], 0); /* written in the workers' copies only */
    scale = 5;
    CU_ASSERT_EQUAL(PARENG_RUN(e, fill, &sum, 0, 1000), 0);
    CU_ASSERT_EQUAL(sum, 5000);
    CU_ASSERT_EQUAL(PARENG_RUN(shared, fill, &sum, 0, 1000), 0);
    CU_ASSERT_EQUAL(sum, 5000);
    CU_ASSERT_EQUAL(squares[10], 500);
    scale = 7; /* squares changed too, by the shared engine's tasks: both reach e's */
    CU_ASSERT_EQUAL(PARENG_RUN(e, fill, &sum, 0, 1000), 0);
    CU_ASSERT_EQUAL(sum, 7000);
    CU_ASSERT_EQUAL(squares[10], 500);
    pareng_stop(e);
    pareng_stop(forked);
    pareng_stop(shared);
    cfg.globals = PARENG_GLOBALS_FORKED + 1;
    pareng_engine *bad = NULL;
    CU_ASSERT_EQUAL(pareng_start(&bad, &cfg), -EINVAL);
    CU_ASSERT_PTR_NULL(bad);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "PARENG_GLOBALS_FORKED"));
}

/* ---- globals the caller writes after the start, ported literally -------------------------
 * BOTS's nqueens as a thread program has it: the board's size in a global that main sets
 * after the runtime started, a struct of parameters, and an array of weights; the caller
 * changes all three between runs and posts, and every task of the next one reads the new
 * values, on any number of workers. The C library's variables in the program (environ, which
 * the caller's setenv points into its own heap) stay each worker's. */
extern char **environ;

static int board_size;
static struct {
    int first_row;
    double weight_scale;
} parameters = {0, 1.0};
/* 512 KiB: this program's globals are of more than 64 pages, whose caller reads the pagemap
 * (globals.c), shared pages too once an engine shared them */
static int weights[1 << 17];
static const char *environ_at_start;
static int variables_made;

PARENG_TASK_4(int, nqueens_sized, int, j, char *, a, int *, solutions, int, i)
{
    char b[board_size];
    memcpy(b, a, (size_t)j);
    b[j] = (char)i;
    *solutions = 0;
    if (!ok(j + 1, b))
        return 0;
    if (j + 1 == board_size) {
        *solutions = 1;
        return 0;
    }
    int csols[board_size];
    for (int k = 0; k < board_size; k++)
        PARENG_SPAWN(nqueens_sized, j + 1, b, &csols[k], k);
    for (int k = 0; k < board_size; k++)
        PARENG_SYNC(nqueens_sized);
    for (int k = 0; k < board_size; k++)
        *solutions += csols[k];
    return 0;
}

/* The solutions with the first queen in row parameters.first_row or below, times the weights
 * and the scale; -1 where the worker's environ is not its own. */
PARENG_TASK_1(double, weighted_queens, int, unused)
{
    (void)unused;
    if (strcmp(environ[0], environ_at_start) != 0 || !getenv("PATH"))
        return -1;
    char a[1];
    int csols[board_size];
    for (int k = 0; k < board_size; k++)
        PARENG_SPAWN(nqueens_sized, 0, a, &csols[k], k);
    for (int k = 0; k < board_size; k++)
        PARENG_SYNC(nqueens_sized);
    double total = 0;
    for (int k = parameters.first_row; k < board_size; k++)
        total += csols[k] * weights[k * 100] * parameters.weight_scale;
    return total;
}

/* The solutions with queens b[0..j) placed, serially. */
static int queens_below(int n, int j, char *b)
{
    if (j == n)
        return 1;
    int count = 0;
    for (int i = 0; i < n; i++) {
        b[j] = (char)i;
        if (ok(j + 1, b))
            count += queens_below(n, j + 1, b);
    }
    return count;
}

static double weighted_queens_expected(void)
{
    double total = 0;
    char b[16];
    for (int k = parameters.first_row; k < board_size; k++) {
        b[0] = (char)k;
        total += queens_below(board_size, 1, b) * weights[k * 100] * parameters.weight_scale;
    }
    return total;
}

static void set_parameters(int round)
{
    board_size = 4 + round % 6;
    parameters.first_row = round % 3;
    parameters.weight_scale = 0.5 * (round + 1);
    for (int i = 0; i < 1 << 17; i++)
        weights[i] = round + i;
    /* environ grows, and moves to what the caller's heap had free at the start */
    for (int i = 0; i < 64; i++) {
        char name[32];
        snprintf(name, sizeof name, "PARENG_TEST_%d", variables_made++);
        setenv(name, "1", 1);
    }
}

typedef struct posting {
    int round, posted, collected, wrong;
    double expected;
} posting;

/* Posts one task a round, and changes the globals between the rounds. */
static int serve_rounds(pareng_engine *e, void *ctx)
{
    posting *p = ctx;
    uint64_t tag;
    double got;
    while (pareng_collect(e, &tag, &got, sizeof got) > 0) {
        p->collected++;
        p->wrong += got != p->expected;
    }
    if (p->collected == p->posted && p->posted < 6) {
        set_parameters(p->round++);
        p->expected = weighted_queens_expected();
        CU_ASSERT_EQUAL(PARENG_POST(e, (uint64_t)p->posted, weighted_queens, 0), 0);
        p->posted++;
    }
    return p->collected < 6;
}

static void test_globals_set_after_the_start(void)
{
    environ_at_start = environ[0];
    for (size_t w = 0; w < WORKER_COUNTS; w++) {
        pareng_engine *e = testing_start_cutoff(worker_counts[w], 0);
        for (int round = 0; round < 8; round++) {
            set_parameters(round);
            double got = 0;
            CU_ASSERT_EQUAL(PARENG_RUN(e, weighted_queens, &got, 0), 0);
            if (got != weighted_queens_expected())
                fprintf(stderr, "\nround %d on %u workers: %g, not %g\n", round,
                        worker_counts[w], got, weighted_queens_expected());
            CU_ASSERT_EQUAL(got, weighted_queens_expected());
        }
        posting p = {.round = 3};
        CU_ASSERT_EQUAL(pareng_serve(e, PARENG_CUTOFF_AUTO, serve_rounds, &p), 0);
        CU_ASSERT_EQUAL(p.collected, 6);
        CU_ASSERT_EQUAL(p.wrong, 0);
        pareng_stop(e);
    }
    while (variables_made > 0) {
        char name[32];
        snprintf(name, sizeof name, "PARENG_TEST_%d", --variables_made);
        unsetenv(name);
    }
}

/* What thread code keeps per thread in a global: a table each thread makes on first use,
 * here each worker. Private globals (the default) give every worker its own, and the answer
 * is exact; shared globals would hand one worker's malloc'd pointer to the others, whose
 * memory at that address holds something else (docs/memory.md, "Globals"). */
static int *memo;

PARENG_TASK_1(long, memo_lookup, int, i)
{
    if (!memo) {
        int *table = malloc(4096 * sizeof *table);
        for (int k = 0; k < 4096; k++)
            table[k] = k;
        memo = table;
    }
    return memo[i % 4096];
}

PARENG_TASK_2(long, memo_sum, int, lo, int, hi)
{
    if (hi - lo <= 64) {
        long sum = 0;
        for (int i = lo; i < hi; i++)
            sum += PARENG_CALL(memo_lookup, i);
        return sum;
    }
    int mid = lo + (hi - lo) / 2;
    PARENG_SPAWN(memo_sum, lo, mid);
    long right = PARENG_CALL(memo_sum, mid, hi);
    return PARENG_SYNC(memo_sum) + right;
}

static void test_per_worker_globals_by_default(void)
{
    long want = 0;
    for (int i = 0; i < 1 << 18; i++)
        want += i % 4096;
    for (size_t w = 0; w < WORKER_COUNTS; w++) {
        pareng_engine *e = testing_start_cutoff(worker_counts[w], PARENG_CUTOFF_NONE);
        for (int run = 0; run < 3; run++) {
            long got = 0;
            CU_ASSERT_EQUAL(PARENG_RUN(e, memo_sum, &got, 0, 1 << 18), 0);
            CU_ASSERT_EQUAL(got, want);
        }
        pareng_stop(e);
    }
}

/* A handle kept in a global, set by pareng_start: the workers have it too (it is stored before
 * their fork), without shared globals. */
static pareng_engine *engine_in_a_global;

PARENG_TASK_1(int, alloc_through_the_global, int, unused)
{
    (void)unused;
    void *p = pareng_alloc(engine_in_a_global, 64);
    int ok = p != NULL && pareng_free(engine_in_a_global, p) == 0;
    return ok;
}

static void test_engine_handle_in_a_global(void)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 2;
    CU_ASSERT_EQUAL_FATAL(pareng_start(&engine_in_a_global, &cfg), 0);
    int ok = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(engine_in_a_global, alloc_through_the_global, &ok, 0), 0);
    CU_ASSERT_EQUAL(ok, 1);
    pareng_stop(engine_in_a_global);
}

/* ---- a task's malloc ---------------------------------------------------------------------
 * Cilk code builds its trees with malloc in the tasks and hands the pointers up; BOTS's
 * sparselu and health allocate in tasks what other tasks then read. Each must give the exact
 * answer on any number of workers, and the caller must read and free what the tasks made. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* A sanitizer's malloc comes first, and a task's malloc is then per worker, as documented:
 * the tests below need the engine's. */
static bool task_malloc_is_shared(void)
{
    CU_ASSERT_EQUAL(pareng_task_malloc_shared(), !SANITIZED);
    if (SANITIZED)
        fprintf(stderr, "(not under a sanitizer) ");
    return !SANITIZED;
}

typedef struct tree_node {
    struct tree_node *left, *right;
    uint64_t label;
} tree_node;

PARENG_TASK_2(tree_node *, build_tree, int, depth, uint64_t, label)
{
    tree_node *n = malloc(sizeof *n);
    if (!n)
        return NULL;
    n->label = label;
    n->left = n->right = NULL;
    if (depth == 0)
        return n;
    PARENG_SPAWN(build_tree, depth - 1, 2 * label);
    n->right = PARENG_CALL(build_tree, depth - 1, 2 * label + 1);
    n->left = PARENG_SYNC(build_tree);
    return n;
}

/* The sum of the labels, or 0 for a node missing (malloc failed). */
PARENG_TASK_2(uint64_t, sum_tree, tree_node *, n, int, depth)
{
    if (!n)
        return 0;
    if (depth == 0)
        return n->label;
    PARENG_SPAWN(sum_tree, n->left, depth - 1);
    uint64_t right = PARENG_CALL(sum_tree, n->right, depth - 1);
    uint64_t left = PARENG_SYNC(sum_tree);
    return left && right ? n->label + left + right : 0;
}

PARENG_TASK_1(uint64_t, free_tree, tree_node *, n)
{
    if (!n)
        return 0;
    PARENG_SPAWN(free_tree, n->left);
    uint64_t freed = PARENG_CALL(free_tree, n->right);
    freed += PARENG_SYNC(free_tree);
    free(n);
    return freed + 1;
}

static uint64_t sum_in_the_caller(const tree_node *n)
{
    return n ? n->label + sum_in_the_caller(n->left) + sum_in_the_caller(n->right) : 0;
}

static uint64_t free_in_the_caller(tree_node *n)
{
    if (!n)
        return 0;
    uint64_t freed = free_in_the_caller(n->left) + free_in_the_caller(n->right);
    free(n);
    return freed + 1;
}

static void test_a_tree_that_tasks_malloc(void)
{
    if (!task_malloc_is_shared())
        return;
    enum { DEPTH = 14 };
    uint64_t nodes = ((uint64_t)2 << DEPTH) - 1, labels = nodes * (nodes + 1) / 2;
    for (size_t k = 0; k < WORKER_COUNTS; k++)
        for (unsigned cutoff = 0; cutoff < 2; cutoff++) {
            pareng_engine *e = cutoff ? testing_start_cutoff(worker_counts[k], PARENG_CUTOFF_NONE)
                                      : testing_start_engine(worker_counts[k], 0, 0);
            CU_ASSERT_PTR_NOT_NULL_FATAL(e);
            /* Twice: the second tree takes the blocks that the first one's frees gave back,
             * the caller's to the workers that made them. */
            for (int round = 0; round < 2; round++) {
                tree_node *root = NULL;
                uint64_t sum = 0, freed = 0;
                CU_ASSERT_EQUAL(PARENG_RUN(e, build_tree, &root, DEPTH, 1), 0);
                CU_ASSERT_PTR_NOT_NULL_FATAL(root);
                CU_ASSERT_EQUAL(PARENG_RUN(e, sum_tree, &sum, root, DEPTH), 0);
                CU_ASSERT_EQUAL(sum, labels);
                CU_ASSERT_EQUAL(sum_in_the_caller(root), labels);
                /* half freed by tasks, on any worker; the rest by the caller */
                CU_ASSERT_EQUAL(PARENG_RUN(e, free_tree, &freed, root->left), 0);
                freed += free_in_the_caller(root->right);
                root->left = root->right = NULL;
                freed += free_in_the_caller(root);
                CU_ASSERT_EQUAL(freed, nodes);
            }
            pareng_stop(e);
        }
}

typedef struct square_table {
    uint64_t *values;
} square_table;

static void square_each(void *ctx, size_t begin, size_t end)
{
    const square_table *s = ctx;
    for (size_t i = begin; i < end; i++)
        s->values[i] = (uint64_t)i * i;
}

/* A task mallocs an array (and the loop's context), a nested loop fills it on every worker. */
PARENG_TASK_1(uint64_t, sum_of_square_table, size_t, n)
{
    square_table *s = malloc(sizeof *s);
    uint64_t *values = calloc(n, sizeof *values);
    if (!s || !values)
        return 0;
    s->values = values;
    if (pareng_for(PARENG_ENGINE(), 0, n, 1000, square_each, s) < 0)
        return 0;
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += values[i];
    free(values);
    free(s);
    return sum;
}

static void test_a_tasks_array_given_to_a_loop(void)
{
    if (!task_malloc_is_shared())
        return;
    const size_t n = 200000;
    uint64_t expected = 0;
    for (size_t i = 0; i < n; i++)
        expected += (uint64_t)i * i;
    for (size_t k = 0; k < WORKER_COUNTS; k++) {
        pareng_engine *e = testing_start_engine(worker_counts[k], 0, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(e);
        uint64_t sum = 0;
        CU_ASSERT_EQUAL(PARENG_RUN(e, sum_of_square_table, &sum, n), 0);
        CU_ASSERT_EQUAL(sum, expected);
        pareng_stop(e);
    }
}

/* What the C library allocates for a task (strdup, open_memstream's buffer), grown with
 * realloc, and an aligned block: the caller reads them all. */
typedef struct made {
    char *name, *text;
    double *aligned;
    size_t text_size;
} made;

PARENG_TASK_1(made, make_things, int, k)
{
    made m = {0};
    char line[32];
    snprintf(line, sizeof line, "item %d", k);
    m.name = strdup(line);
    if (m.name && (m.name = realloc(m.name, 4096)))
        strcat(m.name, " grown");
    FILE *f = open_memstream(&m.text, &m.text_size);
    if (f) {
        for (int i = 0; i < 1000; i++)
            fprintf(f, "%d,", i);
        fclose(f);
    }
    void *p = NULL;
    if (posix_memalign(&p, 4096, 8 * sizeof(double)) == 0) {
        m.aligned = p;
        for (int i = 0; i < 8; i++)
            m.aligned[i] = k + i / 8.0;
    }
    return m;
}

static void test_what_the_c_library_allocates_in_a_task(void)
{
    if (!task_malloc_is_shared())
        return;
    pareng_engine *e = testing_start_engine(2, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    made m = {0};
    CU_ASSERT_EQUAL(PARENG_RUN(e, make_things, &m, 7), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.name);
    CU_ASSERT_STRING_EQUAL(m.name, "item 7 grown");
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.text);
    CU_ASSERT_EQUAL(strlen(m.text), m.text_size);
    CU_ASSERT_EQUAL(strncmp(m.text, "0,1,2,", 6), 0);
    CU_ASSERT_EQUAL(strcmp(m.text + m.text_size - 4, "999,"), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.aligned);
    CU_ASSERT_EQUAL((uintptr_t)m.aligned % 4096, 0);
    CU_ASSERT_EQUAL(m.aligned[7], 7 + 7 / 8.0);
    /* The caller's realloc of a task's block gives a block of its own, the contents kept. */
    char *name = realloc(m.name, 100000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(name);
    CU_ASSERT_STRING_EQUAL(name, "item 7 grown");
    free(name);
    free(m.text);
    free(m.aligned);
    pareng_stop(e);
}

/* Whether a child of the test that starts an engine and misuses free on its memory (the
 * engine's memory is not in a fork's child: it must make its own) is aborted, saying `says`. */
static bool aborted_saying(void (*misuse)(pareng_engine *), const char *says)
{
    int out[2];
    if (pipe(out) < 0)
        return false;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], STDERR_FILENO);
        close(out[0]);
        pareng_engine *e = testing_start_engine(2, 0, 0);
        if (!e)
            _exit(2);
        misuse(e);
        pareng_stop(e);
        _exit(0);
    }
    close(out[1]);
    char said[512] = "";
    size_t len = 0;
    ssize_t n;
    while ((n = read(out[0], said + len, sizeof said - 1 - len)) > 0)
        len += (size_t)n;
    said[len] = 0;
    close(out[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!strstr(said, says))
        fprintf(stderr, "(said: %s) ", said);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && strstr(said, says);
}

/* pareng_alloc's block goes to pareng_free: free refuses it, as the C library refuses what
 * it did not allocate, rather than take it into a list. */
static void free_a_shared_block(pareng_engine *e)
{
    free(pareng_alloc(e, 1000));
}

static void free_a_tasks_block_twice(pareng_engine *e)
{
    tree_node *leaf = NULL;
    if (PARENG_RUN(e, build_tree, &leaf, 0, 5) < 0 || !leaf)
        _exit(3);
    void *volatile freed = leaf; /* the compiler would see the second free */
    free(leaf);
    free(freed);
}

static void test_free_of_what_malloc_did_not_give(void)
{
    if (!task_malloc_is_shared())
        return;
    CU_ASSERT(aborted_saying(free_a_shared_block, "not a block that malloc returned in a task"));
    CU_ASSERT(aborted_saying(free_a_tasks_block_twice, "a task's block freed already"));
}

/* A fork's child has pointers to what tasks built, not the engine's memory: its free of one
 * does nothing, where the C library's read unmapped memory. The parent's tree is intact. */
static void test_a_forks_free_of_a_tasks_block(void)
{
    if (!task_malloc_is_shared())
        return;
    pareng_engine *e = testing_start_engine(2, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    enum { DEPTH = 8 };
    uint64_t nodes = ((uint64_t)2 << DEPTH) - 1;
    tree_node *root = NULL;
    CU_ASSERT_EQUAL(PARENG_RUN(e, build_tree, &root, DEPTH, 1), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* the C library's again, large ones too (which it maps where it likes) */
        bool fine = true;
        for (size_t size = 32; size <= (8u << 20); size *= 4) {
            char *own = malloc(size);
            fine = fine && own && malloc_usable_size(own) >= size;
            if (own)
                memset(own, 1, size);
            own = realloc(own, 2 * size);
            fine = fine && own && own[size - 1] == 1;
            free(own);
        }
        free(root);
        _exit(fine ? 0 : 1);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_EQUAL(sum_in_the_caller(root), nodes * (nodes + 1) / 2);
    CU_ASSERT_EQUAL(free_in_the_caller(root), nodes);
    pareng_stop(e);
}

/* The caller grows a task's array with realloc and appends to it: the next run's tasks read
 * it all (it stays a block of the engine's heap), even grown past its size class. */
PARENG_TASK_1(uint64_t *, count_up, size_t, n)
{
    uint64_t *a = malloc(n * sizeof *a);
    for (size_t i = 0; a && i < n; i++)
        a[i] = i;
    return a;
}

PARENG_TASK_2(uint64_t, sum_up, const uint64_t *, a, size_t, n)
{
    if (n <= 1024) {
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += a[i];
        return sum;
    }
    PARENG_SPAWN(sum_up, a, n / 2);
    uint64_t right = PARENG_CALL(sum_up, a + n / 2, n - n / 2);
    return right + PARENG_SYNC(sum_up);
}

/* A C++ global a task grew (a std::vector's block) is freed by its destructor after main,
 * once the engine is stopped: that free does nothing, where the C library's read the
 * unmapped heap and the program died (its buffered output lost). Later engines' heaps do not
 * land on a stopped one's range, so such a free never takes their blocks; the last 8 stopped
 * engines' ranges are kept. */
static void test_free_after_the_stop(void)
{
    if (!task_malloc_is_shared())
        return;
    enum { ENGINES = 8 };
    uint64_t *blocks[ENGINES];
    for (int k = 0; k < ENGINES; k++) {
        pareng_engine *e = testing_start_engine(2, 0, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(e);
        blocks[k] = NULL;
        CU_ASSERT_EQUAL(PARENG_RUN(e, count_up, &blocks[k], 1000), 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(blocks[k]);
        for (int j = 0; j < k; j++)
            CU_ASSERT_PTR_NOT_EQUAL(blocks[k], blocks[j]);
        pareng_stop(e);
    }
    for (int k = 0; k < ENGINES; k++)
        free(blocks[k]);
    /* the C library's malloc goes on, large blocks included */
    for (size_t size = 32; size <= (8u << 20); size *= 4) {
        char *own = malloc(size);
        CU_ASSERT_PTR_NOT_NULL_FATAL(own);
        memset(own, 1, size);
        free(own);
    }
}

static void test_the_callers_realloc_of_a_tasks_block(void)
{
    if (!task_malloc_is_shared())
        return;
    pareng_engine *e = testing_start_engine(2, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    const size_t sizes[] = {5000, 100000};
    for (size_t k = 0; k < 2; k++) {
        size_t n = sizes[k], more = 10;
        uint64_t *a = NULL, sum = 0;
        CU_ASSERT_EQUAL(PARENG_RUN(e, count_up, &a, n), 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        a = realloc(a, (n + more) * sizeof *a);
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        for (size_t i = n; i < n + more; i++)
            a[i] = i;
        CU_ASSERT_EQUAL(PARENG_RUN(e, sum_up, &sum, a, n + more), 0);
        CU_ASSERT_EQUAL(sum, (uint64_t)(n + more) * (n + more - 1) / 2);
        free(a);
    }
    pareng_stop(e);
}

/* Short threads that tasks start, each with a malloc: an ended thread's cache serves the next
 * one, so that 2,000 of them fit a heap of 16 MiB (each took a chunk of 64 KiB for good). */
static void *malloc_once(void *unused)
{
    (void)unused;
    char *volatile p = malloc(100);
    if (p)
        p[0] = 1;
    free(p);
    return p;
}

PARENG_TASK_1(int, short_threads, int, count)
{
    for (int i = 0; i < count; i++) {
        pthread_t t;
        void *got = NULL;
        if (pthread_create(&t, NULL, malloc_once, NULL) != 0 || pthread_join(t, &got) != 0 ||
            !got)
            return i;
    }
    return count;
}

static void test_a_tasks_threads_give_their_caches_back(void)
{
    if (!task_malloc_is_shared())
        return;
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 1;
    cfg.shared_bytes = 16u << 20;
    pareng_engine *e = testing_start(&cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    int done = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, short_threads, &done, 2000), 0);
    CU_ASSERT_EQUAL(done, 2000);
    void *room = pareng_alloc(e, 1u << 20);
    CU_ASSERT_PTR_NOT_NULL(room);
    pareng_free(e, room);
    pareng_stop(e);
}

/* A thread of a task forks: the child's malloc is the C library's, its own, and its free of
 * the thread's blocks (the worker's heap, still mapped in the child) does nothing. */
static void *fork_and_allocate(void *unused)
{
    (void)unused;
    char *small = malloc(100), *large = malloc(1u << 20);
    pid_t pid = fork();
    if (pid == 0) {
        char *a = malloc(32), *b = strdup("from the child");
        bool fine = a && b && strcmp(b, "from the child") == 0;
        free(a);
        free(b);
        free(small);
        free(large);
        _exit(fine ? 0 : 1);
    }
    free(small);
    free(large);
    int status = -1;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return (void *)0;
    return (void *)(uintptr_t)(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

PARENG_TASK_1(int, fork_from_a_thread, int, unused)
{
    (void)unused;
    pthread_t t;
    void *fine = NULL;
    if (pthread_create(&t, NULL, fork_and_allocate, NULL) != 0 || pthread_join(t, &fine) != 0)
        return -1;
    return fine != NULL;
}

static void test_a_fork_from_a_tasks_thread(void)
{
    if (!task_malloc_is_shared())
        return;
    pareng_engine *e = testing_start_engine(1, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    int fine = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, fork_from_a_thread, &fine, 0), 0);
    CU_ASSERT_EQUAL(fine, 1);
    pareng_stop(e);
}

/* A worker killed while it held the heap's lock leaves it taken: the caller's free of a task's
 * large block must not wait for it. One task allocates and frees large blocks without end
 * while another crashes its worker; then the caller frees one it got before. */
PARENG_TASK_1(char *, large_block, size_t, size)
{
    char *p = malloc(size);
    if (p)
        memset(p, 7, size);
    return p;
}

/* Keeps 1,000 large blocks of varied sizes and replaces one at a time, for ever: the heap's
 * free list grows long, and its lock is held most of the time. */
PARENG_TASK_1(int, churn_large_blocks, unsigned, seed)
{
    enum { KEPT = 1000 };
    void **kept = calloc(KEPT, sizeof *kept);
    if (!kept)
        return 1;
    for (unsigned s = seed;;) {
        s = s * 1103515245u + 12345u;
        unsigned i = (s >> 8) % KEPT;
        free(kept[i]);
        kept[i] = malloc(33000 + (s >> 12) % 200000);
    }
}

PARENG_TASK_1(int, crash_after, unsigned, us)
{
    usleep(us);
    raise(SIGSEGV);
    return 0;
}

PARENG_TASK_1(int, churn_while_one_crashes, int, unused)
{
    (void)unused;
    for (unsigned k = 0; k < 3; k++)
        PARENG_SPAWN(churn_large_blocks, k + 1);
    int r = PARENG_CALL(crash_after, 200000);
    for (unsigned k = 0; k < 3; k++)
        r += PARENG_SYNC(churn_large_blocks);
    return r;
}

static void test_free_after_a_worker_died(void)
{
    if (!task_malloc_is_shared())
        return;
    for (int round = 0; round < 3; round++) {
        pareng_engine *e = testing_start_engine(4, 0, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(e);
        char *big = NULL;
        CU_ASSERT_EQUAL(PARENG_RUN(e, large_block, &big, (size_t)1 << 20), 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(big);
        CU_ASSERT_EQUAL(big[12345], 7);
        int r = 0;
        CU_ASSERT(PARENG_RUN(e, churn_while_one_crashes, &r, 0) < 0);
        alarm(30); /* a hang ends the test, failed */
        free(big);
        alarm(0);
        pareng_stop(e);
    }
}

/* ---- the caller's memory: read in tasks, refused when written --------------------------
 * BOTS's sparselu and health build their data in main, before the parallel region, and their
 * tasks change it in place; a matrix product writes a result the caller allocated. Each
 * worker has a copy of that memory made at the fork, and a write there reached no other
 * process: the caller read the old values, with exit 0. The copies are read-only in the
 * workers now, and such a write fails the run, naming the write and the memory. */
typedef struct doubles {
    double *x;
    size_t n;
} doubles;

static void fill_with_indexes(void *ctx, size_t begin, size_t end)
{
    const doubles *d = ctx;
    for (size_t i = begin; i < end; i++)
        d->x[i] = (double)i;
}

static pareng_value sum_of(void *ctx, size_t begin, size_t end)
{
    const doubles *d = ctx;
    pareng_value s = {.d = 0};
    for (size_t i = begin; i < end; i++)
        s.d += d->x[i];
    return s;
}

static pareng_value add_sums(pareng_value left, pareng_value right)
{
    return (pareng_value){.d = left.d + right.d};
}

static void *malloc_in_a_thread(void *bytes)
{
    return malloc((size_t)(uintptr_t)bytes);
}

/* Tasks read x (n ones, made before the start) and then try to fill it. */
static void assert_read_then_refused(double *x, size_t n, const char *memory)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 1;
    doubles d = {x, n};
    pareng_engine *e = testing_start_engine(2, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    pareng_value total = {.d = 0};
    CU_ASSERT_EQUAL(pareng_reduce(e, 0, n, 0, sum_of, add_sums, &d, &total), 0);
    CU_ASSERT_EQUAL(total.d, (double)n);
    CU_ASSERT_EQUAL(pareng_for(e, 0, n, 0, fill_with_indexes, &d), -ECHILD);
    const char *why = pareng_last_error();
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "killed by signal 11 (SIGSEGV): a task wrote to 0x"));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, memory));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "pareng_alloc"));
    if (!strstr(why, memory))
        fprintf(stderr, "\n%s\n", why);
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
    pareng_stop(e);
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL_FATAL(x[i], 1);
}

static void test_a_write_into_the_callers_memory_refused(void)
{
    if (!task_malloc_is_shared())
        return;
    double *small = malloc(1000 * sizeof *small);
    CU_ASSERT_PTR_NOT_NULL_FATAL(small);
    assert_read_then_refused(small, 1000, "in the caller's heap");
    free(small);
    /* past glibc's largest mmap threshold (32 MiB): a block mapped for itself */
    size_t large = (size_t)40 << 20;
    double *big = malloc(large);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    assert_read_then_refused(big + (large / sizeof *big) - 4096, 4096,
                             "in a block the caller malloc'd");
    free(big);
    double on_the_stack[512];
    assert_read_then_refused(on_the_stack, 512, "in the caller's stack");
    pthread_t t;
    void *theirs = NULL;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, malloc_in_a_thread,
                                         (void *)(uintptr_t)(1000 * sizeof(double))), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_join(t, &theirs), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(theirs);
    assert_read_then_refused(theirs, 1000, "in the heap of one of the caller's threads");
    free(theirs);
}

/* A copy by the C library's memcpy, called by the program, is the program's write. */
static void copy_indexes(void *ctx, size_t begin, size_t end)
{
    const doubles *d = ctx;
    double row[64];
    for (size_t i = begin; i < end; i += 64) {
        size_t count = end - i < 64 ? end - i : 64;
        for (size_t k = 0; k < count; k++)
            row[k] = (double)(i + k);
        memcpy(d->x + i, row, count * sizeof *row);
    }
}

static void test_a_memcpy_into_the_callers_memory_refused(void)
{
    if (!task_malloc_is_shared())
        return;
    size_t n = 100000;
    double *x = calloc(n, sizeof *x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    doubles d = {x, n};
    pareng_engine *e = testing_start_engine(2, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(pareng_for(e, 0, n, 4096, copy_indexes, &d), -ECHILD);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "a task wrote to 0x"));
    pareng_stop(e);
    CU_ASSERT_EQUAL(x[n - 1], 0);
    free(x);
}

/* A library's write into the caller's memory goes on, and the page is sealed again right after
 * it: the program's own write next to it is refused as any other (it was let through, and
 * lost, while the page stayed open). */
typedef struct keys_and_flag {
    int keys[64];
    int sorted;
} keys_and_flag;

static int ascending(const void *a, const void *b)
{
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

PARENG_TASK_1(int, sort_then_flag, keys_and_flag *, block)
{
    qsort(block->keys, 64, sizeof block->keys[0], ascending);
    block->sorted = 1;
    return 1;
}

/* A buggy task that calls into the caller's heap dies as before (the page is not made
 * writable for a fault of an instruction fetch, which would fault for ever). */
typedef void (*code_fn)(void);

PARENG_TASK_1(int, call_into_the_heap, code_fn, code)
{
    code();
    return 1;
}

static void test_a_pages_library_write_then_the_programs(void)
{
    if (!task_malloc_is_shared())
        return;
    keys_and_flag *block = malloc(sizeof *block);
    CU_ASSERT_PTR_NOT_NULL_FATAL(block);
    for (int i = 0; i < 64; i++)
        block->keys[i] = 64 - i;
    block->sorted = 0;
    pareng_engine *e = testing_start_engine(1, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    int fine = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, sort_then_flag, &fine, block), -ECHILD);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "a task wrote to 0x"));
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "in the caller's heap"));
    pareng_stop(e);
    CU_ASSERT_EQUAL(block->sorted, 0);
    e = testing_start_engine(1, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    alarm(30); /* a worker that faults for ever ends the test, failed */
    CU_ASSERT_EQUAL(PARENG_RUN(e, call_into_the_heap, &fine, (code_fn)(void *)block),
                    -ECHILD);
    alarm(0);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "killed by signal 11 (SIGSEGV)"));
    CU_ASSERT_PTR_NULL(strstr(pareng_last_error(), "a task wrote to"));
    pareng_stop(e);
    free(block);
}

/* The C library's state that the caller made before the start is written by the library in
 * tasks, as after any fork: a compiled regex, a thread's cached stack, NSS's, the environment;
 * from a thread that blocks every signal too (libpareng's pthread_sigmask keeps SIGSEGV). */
static regex_t digits;

/* as a thread pool's thread starts: every signal blocked */
static void *use_the_c_librarys_state_with_signals_blocked(void *unused)
{
    (void)unused;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    bool fine = regexec(&digits, "abc 1234", 0, NULL, 0) == 0 && getpwuid(getuid()) &&
                setenv("PARENG_TEST_THREAD", "set by a task's thread", 1) == 0;
    return (void *)(uintptr_t)fine;
}

PARENG_TASK_1(int, use_the_c_librarys_state, int, unused)
{
    (void)unused;
    pthread_t t;
    void *fine = NULL;
    if (pthread_create(&t, NULL, malloc_in_a_thread, (void *)(uintptr_t)64) != 0 ||
        pthread_join(t, &fine) != 0 || !fine)
        return -1;
    free(fine);
    if (regexec(&digits, "abc 1234", 0, NULL, 0) != 0 || regexec(&digits, "abc", 0, NULL, 0) == 0)
        return -2;
    if (!getpwuid(getuid()))
        return -3;
    if (setenv("PARENG_TEST_TASK", "set by a task", 1) != 0 ||
        strcmp(getenv("PARENG_TEST_TASK"), "set by a task") != 0)
        return -4;
    if (pthread_create(&t, NULL, use_the_c_librarys_state_with_signals_blocked, NULL) != 0 ||
        pthread_join(t, &fine) != 0 || !fine)
        return -5;
    return 1;
}

static void test_the_c_librarys_state_in_a_task(void)
{
    if (!task_malloc_is_shared())
        return;
    CU_ASSERT_EQUAL_FATAL(regcomp(&digits, "[0-9]+", REG_EXTENDED | REG_NOSUB), 0);
    pthread_t t;
    void *block = NULL;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, malloc_in_a_thread, (void *)(uintptr_t)64), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_join(t, &block), 0); /* its stack cached for the next */
    free(block);
    CU_ASSERT_PTR_NOT_NULL(getpwuid(getuid()));
    CU_ASSERT_EQUAL(setenv("PARENG_TEST_CALLER", "set by the caller", 1), 0);
    for (unsigned workers = 1; workers <= 2; workers++) {
        pareng_engine *e = testing_start_engine(workers, 0, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(e);
        int fine = 0;
        CU_ASSERT_EQUAL(PARENG_RUN(e, use_the_c_librarys_state, &fine, 0), 0);
        CU_ASSERT_EQUAL(fine, 1);
        pareng_stop(e);
    }
    CU_ASSERT_PTR_NULL(getenv("PARENG_TEST_TASK"));
    regfree(&digits);
}

/* A function the caller calls after pareng_start keeps its locals where the workers' copy of
 * the stack holds the start's own frames: a ctx there is refused before anything runs, and a
 * task that reads such a local another way dies, named, where it read the start's leftovers. */
typedef struct scaled {
    double *x;
    size_t n;
    double scale;
} scaled;

static pareng_value sum_scaled(void *ctx, size_t begin, size_t end)
{
    const scaled *s = ctx;
    pareng_value v = {.d = 0};
    for (size_t i = begin; i < end; i++)
        v.d += s->x[i] * s->scale;
    return v;
}

static void scale_in_place(void *ctx, size_t begin, size_t end)
{
    const scaled *s = ctx;
    for (size_t i = begin; i < end; i++)
        s->x[i] *= s->scale;
}

__attribute__((noinline)) static int reduce_with_a_local_ctx(pareng_engine *e, double *x,
                                                               size_t n, pareng_value *out)
{
    scaled job = {x, n, 2.0};
    return pareng_reduce(e, 0, n, 0, sum_scaled, add_sums, &job, out);
}

__attribute__((noinline)) static int loop_with_a_local_ctx(pareng_engine *e, double *x, size_t n)
{
    scaled job = {x, n, 2.0};
    return pareng_for(e, 0, n, 0, scale_in_place, &job);
}

PARENG_TASK_1(double, first_of, const double *, values)
{
    return values[0];
}

__attribute__((noinline)) static int run_on_a_local_array(pareng_engine *e, double *got)
{
    double values[4096]; /* 32 KiB: its start is pages below pareng_start's frame */
    for (size_t i = 0; i < 4096; i++)
        values[i] = (double)i + 1;
    return PARENG_RUN(e, first_of, got, values);
}

static void test_locals_made_after_the_start_refused(void)
{
    /* started here, not in a helper: the functions below are called from this frame */
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 2;
    pareng_engine *e;
    CU_ASSERT_EQUAL_FATAL(pareng_start(&e, &cfg), 0);
    size_t n = 1000;
    double *x = pareng_alloc(e, n * sizeof *x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    for (size_t i = 0; i < n; i++)
        x[i] = 1;
    pareng_value sum = {.d = -1};
    CU_ASSERT_EQUAL(reduce_with_a_local_ctx(e, x, n, &sum), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "pareng_reduce: ctx (0x"));
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "a local variable of a function called "
                                                       "after pareng_start"));
    CU_ASSERT_EQUAL(sum.d, -1);
    CU_ASSERT_EQUAL(loop_with_a_local_ctx(e, x, n), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "pareng_for: ctx (0x"));
    CU_ASSERT_EQUAL(x[0], 1);
    /* the engine runs on, with the ctx where the fix puts it */
    scaled *job = pareng_alloc(e, sizeof *job);
    CU_ASSERT_PTR_NOT_NULL_FATAL(job);
    *job = (scaled){x, n, 2.0};
    CU_ASSERT_EQUAL(pareng_reduce(e, 0, n, 0, sum_scaled, add_sums, job, &sum), 0);
    CU_ASSERT_EQUAL(sum.d, 2.0 * (double)n);
    if (task_malloc_is_shared()) {
        double got = 0;
        CU_ASSERT_EQUAL(run_on_a_local_array(e, &got), -ECHILD);
        const char *why = pareng_last_error();
        CU_ASSERT_PTR_NOT_NULL(strstr(why, "a task used 0x"));
        CU_ASSERT_PTR_NOT_NULL(strstr(why, "below the function that called pareng_start"));
        CU_ASSERT_EQUAL(got, 0);
    }
    pareng_stop(e);
}

/* libpareng's pthread_sigmask and sigprocmask, in the caller: the C library's behaviour, its
 * own two signals never blocked, errors as it returns them. */
static void test_signal_masks_as_the_c_librarys(void)
{
    sigset_t all, before, now;
    sigfillset(&all);
    CU_ASSERT_EQUAL(pthread_sigmask(SIG_SETMASK, NULL, &before), 0);
    CU_ASSERT_EQUAL(pthread_sigmask(99, &all, NULL), EINVAL);
    errno = 0;
    CU_ASSERT_EQUAL(sigprocmask(99, &all, NULL), -1);
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_EQUAL(pthread_sigmask(SIG_BLOCK, &all, NULL), 0);
    CU_ASSERT_EQUAL(sigprocmask(SIG_SETMASK, NULL, &now), 0);
    CU_ASSERT(sigismember(&now, SIGINT));
    CU_ASSERT(sigismember(&now, SIGSEGV)); /* no engine sealed this process */
    CU_ASSERT(sigismember(&now, SIGRTMIN));
    CU_ASSERT(!sigismember(&now, SIGKILL));
    CU_ASSERT_EQUAL(sigprocmask(SIG_SETMASK, &before, NULL), 0);
    CU_ASSERT_EQUAL(pthread_sigmask(SIG_SETMASK, NULL, &now), 0);
    CU_ASSERT_EQUAL(sigismember(&now, SIGINT), sigismember(&before, SIGINT));
}

/* What a program that wants per-worker scratch asks for: the copies stay writable, and the
 * caller's stays as it was. */
static void test_writable_copies_when_asked(void)
{
    size_t n = 1000;
    double *x = malloc(n * sizeof *x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    for (size_t i = 0; i < n; i++)
        x[i] = -1;
    doubles d = {x, n};
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 2;
    cfg.caller_memory = 2;
    pareng_engine *e;
    CU_ASSERT_EQUAL(pareng_start(&e, &cfg), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "caller_memory 2 is neither"));
    cfg.caller_memory = PARENG_CALLER_MEMORY_WRITABLE;
    e = testing_start(&cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(pareng_for(e, 0, n, 0, fill_with_indexes, &d), 0);
    pareng_stop(e);
    CU_ASSERT_EQUAL(x[n - 1], -1);
    free(x);
}

/* What the C library writes for a task in the caller's heap stays writable: a stream the
 * caller opened (the task's lines reach the file when its worker ends), and a task's free
 * and realloc of the caller's blocks (a new block; the caller's stays its own). */
PARENG_TASK_3(int, log_and_grow, FILE *, log, char *, callers, int, line)
{
    fprintf(log, "line %d from a task\n", line);
    char *grown = realloc(callers, 1 << 16);
    if (!grown || strcmp(grown, "the caller's") != 0)
        return -1;
    grown[1000] = 1;
    free(grown);
    return 1;
}

static void test_a_callers_stream_and_blocks_in_a_task(void)
{
    if (!task_malloc_is_shared())
        return;
    char path[] = "/tmp/pareng-test-log-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    FILE *log = fdopen(fd, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    fprintf(log, "from the caller\n");
    char *callers = strdup("the caller's");
    pareng_engine *e = testing_start_engine(1, 0, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    int fine = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, log_and_grow, &fine, log, callers, 7), 0);
    CU_ASSERT_EQUAL(fine, 1);
    pareng_stop(e);
    CU_ASSERT_STRING_EQUAL(callers, "the caller's");
    free(callers);
    fclose(log);
    char got[200] = {0};
    FILE *in = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    CU_ASSERT(fread(got, 1, sizeof got - 1, in) > 0);
    fclose(in);
    unlink(path);
    CU_ASSERT_PTR_NOT_NULL(strstr(got, "from the caller\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(got, "line 7 from a task\n"));
}

int main(void)
{
    CU_TestInfo ports[] = {
        {"nqueens (BOTS): board on the parent's stack", test_nqueens_board_on_the_parents_stack},
        {"shared globals: set after start, written by tasks", test_globals_are_shared_both_ways},
        {"a program's own fork: globals private", test_a_programs_own_fork_keeps_globals_private},
        {"shared globals refused once a thread runs", test_shared_globals_refused_after_a_thread},
        {"a program's own fork cannot run the engine",
         test_a_programs_own_fork_cannot_run_a_shared_globals_engine},
        {"PARENG_GLOBALS_PRIVATE by default: a copy per worker, following the caller's",
         test_private_globals_by_default},
        {"globals set after the start: read by the next run's tasks and posts",
         test_globals_set_after_the_start},
        {"by default a table made on first use is per worker", test_per_worker_globals_by_default},
        {"an engine handle in a global", test_engine_handle_in_a_global},
        {"syncs inside a spawn's, a call's, a loop's arguments", test_syncs_inside_arguments},
        {"Cilk's implicit sync, ported literally: refused", test_cilk_implicit_sync_refused},
        {"spawns a loop leaves unsynced: refused", test_spawns_left_in_a_loop_refused},
        {"more syncs than spawns: refused", test_more_syncs_than_spawns_refused},
        {"syncs in the order of the spawns: refused", test_syncs_out_of_order_refused},
        {"a task's own exit status 77", test_a_tasks_own_exit_status},
        {"a helper's spawns are its task's", test_a_helpers_spawns_are_its_tasks},
        {"a pareng_for_tasks body's unsynced spawns: refused", test_a_loop_bodys_spawns_refused},
        {"a tree that tasks malloc: read and freed anywhere", test_a_tree_that_tasks_malloc},
        {"a task's malloc'd array given to a nested loop", test_a_tasks_array_given_to_a_loop},
        {"what the C library allocates in a task", test_what_the_c_library_allocates_in_a_task},
        {"free of what a task's malloc did not give: refused",
         test_free_of_what_malloc_did_not_give},
        {"a fork's free of a task's block does nothing", test_a_forks_free_of_a_tasks_block},
        {"a fork from a task's thread mallocs its own", test_a_fork_from_a_tasks_thread},
        {"the caller's realloc of a task's block stays shared",
         test_the_callers_realloc_of_a_tasks_block},
        {"the caller's free of a task's block after the stop does nothing",
         test_free_after_the_stop},
        {"a task's short threads give their caches back", test_a_tasks_threads_give_their_caches_back},
        {"the caller's free after a worker died holding the heap",
         test_free_after_a_worker_died},
        {"a write into the caller's memory: refused, named",
         test_a_write_into_the_callers_memory_refused},
        {"a memcpy into the caller's memory: refused", test_a_memcpy_into_the_callers_memory_refused},
        {"the C library's state in a task", test_the_c_librarys_state_in_a_task},
        {"a library's write, then the program's on its page",
         test_a_pages_library_write_then_the_programs},
        {"locals made after the start: refused", test_locals_made_after_the_start_refused},
        {"the caller's memory writable when asked", test_writable_copies_when_asked},
        {"signal masks as the C library's", test_signal_masks_as_the_c_librarys},
        {"a caller's stream and blocks in a task", test_a_callers_stream_and_blocks_in_a_task},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("literal ports", ports),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
