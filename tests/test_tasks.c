/*
 * test_tasks.c - engines running tasks through the public API: fib exact for 0..35 on 1, 2,
 * 3, 4 and 8 workers (8 on a 2-core machine makes stealing and leapfrogging happen between
 * processes sharing cores), full deques, statistics that must add up, idle workers asleep,
 * failures (a worker killed, a cancelled run) and configuration errors. After each test no
 * worker process and no segment of this process is left.
 */
#include "pareng.h"
#include "testing.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pareng_engine *start_engine(unsigned workers, unsigned deque_capacity)
{
    return testing_start_engine(workers, deque_capacity, 0);
}

static void assert_nothing_left(void)
{
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
    CU_ASSERT_EQUAL(testing_segments_of(getpid()), 0);
}

/* fib(0..35) exact with the engine's cutoff as given and fib's own grain (0: none). */
static void check_fib_range(unsigned workers, unsigned cutoff, unsigned grain)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = workers;
    cfg.cutoff_depth = cutoff;
    pareng_engine *e = testing_start(&cfg);
    for (unsigned n = 0; n <= 35; n++) {
        uint64_t got = 0;
        CU_ASSERT_EQUAL(workload_fib(e, n, grain, &got), 0);
        if (got != workload_fib_serial(n))
            fprintf(stderr, "\nfib(%u) on %u workers, grain %u: %llu\n", n, workers, grain,
                    (unsigned long long)got);
        CU_ASSERT_EQUAL(got, workload_fib_serial(n));
    }
    pareng_stop(e);
    assert_nothing_left();
}

static void test_serial_baseline(void)
{
    static const uint64_t known[] = {0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55};
    for (unsigned n = 0; n < sizeof known / sizeof known[0]; n++)
        CU_ASSERT_EQUAL(workload_fib_serial(n), known[n]);
    CU_ASSERT_EQUAL(workload_fib_serial(35), 9227465u);
}

/* every: every call a task (cutoff none); grain20: fib's own grain; auto: the engine's
 * automatic cutoff */
#define GRANULARITY_every PARENG_CUTOFF_NONE, 0
#define GRANULARITY_grain20 PARENG_CUTOFF_AUTO, 20
#define GRANULARITY_auto PARENG_CUTOFF_AUTO, 0
#define FIB_TEST(W, G)                                                                        \
    static void test_fib_##W##_workers_##G(void) { check_fib_range(W, GRANULARITY_##G); }
#define FIB_TESTS(X)                                                                          \
    X(1, every) X(2, every) X(3, every) X(4, every) X(8, every) X(1, grain20) X(2, grain20)   \
    X(3, grain20) X(4, grain20) X(8, grain20) X(1, auto) X(2, auto) X(3, auto) X(4, auto)      \
    X(8, auto)
FIB_TESTS(FIB_TEST)

/* The prediction behind the CLI's warning agrees with a measurement, and sees fib(93) for
 * what it is. Not in a TSan build: gcc's code for workload_fib_serial there (-O2 with the
 * workloads' inlining parameters) does not take phi^n time: fib(26), 28, 30 and 32 took 10, 14,
 * 30 and 44 us, 1.4 to 2.1 times as long for n + 2 instead of phi^2 = 2.6. The model of an
 * exponential baseline does not describe that build (its prediction came out 2 to 6 times
 * short, and CI failed on it); the release and ASan builds, whose baseline is exponential,
 * run it. */
#if !defined(__SANITIZE_THREAD__)
static void test_serial_time_is_predicted(void)
{
    double best = 1e9;
    for (int i = 0; i < 5; i++) {
        uint64_t t0 = testing_now_ns();
        volatile uint64_t keep = workload_fib_serial(30);
        (void)keep;
        double s = (double)(testing_now_ns() - t0) * 1e-9;
        best = s < best ? s : best;
    }
    double predicted = workload_fib_serial_seconds(30);
    if (predicted < best / 4 || predicted > best * 4)
        fprintf(stderr, "\nfib(30): predicted %.6f s, measured %.6f s\n", predicted, best);
    CU_ASSERT(predicted > best / 4 && predicted < best * 4);
    CU_ASSERT(workload_fib_serial_seconds(31) > predicted);
    CU_ASSERT(workload_fib_serial_seconds(93) > 1e8); /* years */
}
#endif

static void test_fib_94_is_refused(void)
{
    pareng_engine *e = start_engine(2, 0);
    uint64_t got = 0;
    CU_ASSERT_EQUAL(workload_fib(e, 94, 0, &got), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(workload_error(), "64 bits"));
    pareng_stop(e);
    assert_nothing_left();
}

/* Parameters may have any name, even the ones the macros use inside (they are prefixed). */
PARENG_TASK_4(int, names_free, int, w, int, h, int, a, int, out)
{
    if (w == 0)
        return h + a + out;
    PARENG_SPAWN(names_free, w - 1, h, a, out);
    return PARENG_SYNC(names_free) + 1;
}

static void test_parameter_names_are_free(void)
{
    pareng_engine *e = start_engine(2, 0);
    int got = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, names_free, &got, 5, 10, 20, 30), 0);
    CU_ASSERT_EQUAL(got, 65);
    pareng_stop(e);
    assert_nothing_left();
}

/* A loop of spawns deeper than the deque (sum_of_squares, testing.h): spawns past the end run
 * inline, and every sync still gets its own child's result, in order. */
static void test_full_deque_runs_spawns_inline(void)
{
    for (unsigned workers = 1; workers <= 3; workers++) {
        pareng_engine *e = start_engine(workers, 8);
        uint64_t got = 0;
        unsigned count = 1000;
        CU_ASSERT_EQUAL(PARENG_RUN(e, sum_of_squares, &got, count), 0);
        CU_ASSERT_EQUAL(got, (uint64_t)count * (count + 1) * (2 * count + 1) / 6);
        /* deep recursion on the same small deque */
        CU_ASSERT_EQUAL(workload_fib(e, 27, 0, &got), 0);
        CU_ASSERT_EQUAL(got, 196418u);
        uint64_t overflows = 0;
        for (unsigned i = 0; i < workers; i++) {
            pareng_stats s;
            CU_ASSERT_EQUAL(pareng_engine_stats(e, i, &s), 0);
            overflows += s.overflows;
        }
        CU_ASSERT(overflows > 0);
        pareng_stop(e);
    }
    assert_nothing_left();
}

/* How many children of a loop other workers ran (in the arena: every worker writes it). */
typedef struct loop_watch {
    _Atomic uint64_t run_elsewhere;
} loop_watch;

PARENG_TASK_2(uint64_t, watched_child, unsigned, loop_worker, loop_watch *, watch)
{
    if (PARENG_WORKER_INDEX() != loop_worker)
        atomic_fetch_add_explicit(&watch->run_elsewhere, 1, memory_order_relaxed);
    return 1;
}

/* Spawns children 20 us apart, at most `most`, until `wanted` of them ran on other workers,
 * and only then syncs them: returns how many had run elsewhere when it stopped spawning, or
 * UINT64_MAX when a sync got a wrong result. */
PARENG_TASK_3(uint64_t, spawn_until_taken, loop_watch *, watch, unsigned, wanted, unsigned,
              most)
{
    unsigned me = PARENG_WORKER_INDEX(), spawned = 0;
    while (spawned < most &&
           atomic_load_explicit(&watch->run_elsewhere, memory_order_relaxed) < wanted) {
        PARENG_SPAWN(watched_child, me, watch);
        spawned++;
        testing_spin_ns(20000);
    }
    uint64_t taken = atomic_load_explicit(&watch->run_elsewhere, memory_order_relaxed);
    uint64_t results = 0;
    for (unsigned i = 0; i < spawned; i++)
        results += PARENG_SYNC(watched_child);
    return results == spawned ? taken : UINT64_MAX;
}

/* A loop of spawns feeds a thief while it spawns, before its first sync: without that, a
 * thief gets the first child (published) and waits for the loop's end for the others. */
static void test_loop_shares_before_it_syncs(void)
{
    pareng_engine *e = start_engine(2, 0);
    loop_watch *watch = pareng_alloc(e, sizeof *watch);
    CU_ASSERT_PTR_NOT_NULL_FATAL(watch);
    atomic_init(&watch->run_elsewhere, 0);
    uint64_t taken = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, spawn_until_taken, &taken, watch, 8, 100000), 0);
    CU_ASSERT_NOT_EQUAL(taken, UINT64_MAX);
    CU_ASSERT(taken >= 8);
    pareng_stop(e);
    assert_nothing_left();
}

/* Every frame a thief took (in the idle loop or while leapfrogging) is found stolen by
 * exactly one sync of its owner. */
static void test_stats_add_up(void)
{
    pareng_config cfg; /* every call a task: frames to steal everywhere */
    pareng_config_default(&cfg);
    cfg.workers = 4;
    cfg.cutoff_depth = PARENG_CUTOFF_NONE;
    pareng_engine *e = testing_start(&cfg);
    uint64_t got, taken = 0, found_stolen = 0, tasks = 0, busy = 0;
    /* On 2 cores, 4 workers may not all wake before a short run ends: run until one stole
     * (the counters add up over runs) */
    unsigned runs = 0;
    while (taken == 0 && runs < 50) {
        CU_ASSERT_EQUAL(workload_fib(e, 32, 0, &got), 0);
        CU_ASSERT_EQUAL(got, 2178309u);
        runs++;
        taken = found_stolen = tasks = busy = 0;
        for (unsigned i = 0; i < 4; i++) {
            pareng_stats s;
            CU_ASSERT_EQUAL(pareng_engine_stats(e, i, &s), 0);
            taken += s.steals + s.leapfrogs;
            found_stolen += s.stolen_from;
            tasks += s.tasks;
            busy += s.busy_ns;
        }
    }
    CU_ASSERT_EQUAL(taken, found_stolen);
    CU_ASSERT_EQUAL(tasks, taken + runs); /* the stolen ones and the roots */
    CU_ASSERT(taken > 0);
    CU_ASSERT(busy > 0);
    pareng_stats none;
    CU_ASSERT_EQUAL(pareng_engine_stats(e, 4, &none), -EINVAL);
    pareng_stop(e);

    e = start_engine(1, 0);
    CU_ASSERT_EQUAL(workload_fib(e, 25, 0, &got), 0);
    pareng_stats alone;
    CU_ASSERT_EQUAL(pareng_engine_stats(e, 0, &alone), 0);
    CU_ASSERT_EQUAL(alone.steals + alone.leapfrogs + alone.stolen_from, 0);
    CU_ASSERT_EQUAL(alone.tasks, 1);
    pareng_stop(e);
    assert_nothing_left();
}

PARENG_TASK_2(uint64_t, count_workers_seen, unsigned, depth, unsigned, spin)
{
    if (depth == 0) {
        for (volatile unsigned i = 0; i < spin; i++) {
        }
        return 1ull << PARENG_WORKER_INDEX();
    }
    PARENG_SPAWN(count_workers_seen, depth - 1, spin);
    uint64_t b = PARENG_CALL(count_workers_seen, depth - 1, spin);
    return PARENG_SYNC(count_workers_seen) | b;
}

static void test_work_spreads_to_every_worker(void)
{
    pareng_engine *e = start_engine(4, 0);
    uint64_t seen = 0;
    /* 4096 leaves of ~50 us each: long enough for every sleeper to wake and steal */
    CU_ASSERT_EQUAL(PARENG_RUN(e, count_workers_seen, &seen, 12, 100000), 0);
    CU_ASSERT_EQUAL(seen, 0xfu);
    pareng_stop(e);
    assert_nothing_left();
}

static void test_idle_engine_sleeps(void)
{
    pareng_engine *e = start_engine(2, 0);
    uint64_t got;
    CU_ASSERT_EQUAL(workload_fib(e, 30, 0, &got), 0);
    usleep(200000); /* past the spinning phase */
    int pids[2] = {pareng_engine_worker_pid(e, 0), pareng_engine_worker_pid(e, 1)};
    /* asleep on the futex: at most 2% of a core over that second */
    CU_ASSERT(testing_busiest_share_of_a_second(pids, 2) <= 0.02);
    pareng_stop(e);
    assert_nothing_left();
}

/* An idle engine has no timer: its workers, asleep on the futex, do not run at all until
 * work comes (they used to look every 100 ms), and then wake at once. */
static void test_idle_engine_never_wakes(void)
{
    pareng_engine *e = start_engine(8, 0);
    uint64_t got;
    CU_ASSERT_EQUAL(workload_fib(e, 25, 0, &got), 0);
    int pids[8];
    for (unsigned i = 0; i < 8; i++)
        pids[i] = pareng_engine_worker_pid(e, i);
    /* past the spinning phase, however loaded the machine: every worker asleep */
    unsigned asleep = 0;
    for (int tries = 0; tries < 500 && asleep < 8; tries++) {
        usleep(10000);
        asleep = 0;
        for (unsigned i = 0; i < 8; i++)
            asleep += testing_process_state(pids[i]) == 'S';
    }
    CU_ASSERT_EQUAL_FATAL(asleep, 8);
    CU_ASSERT_EQUAL(testing_most_wakeups_in_a_second(pids, 8), 0);
    CU_ASSERT_EQUAL(workload_fib(e, 25, 0, &got), 0);
    CU_ASSERT_EQUAL(got, 75025u);
    pareng_stop(e);
    assert_nothing_left();
}

static void test_engine_runs_many_roots(void)
{
    pareng_engine *e = start_engine(3, 0);
    for (unsigned round = 0; round < 200; round++) {
        uint64_t got;
        unsigned n = round % 24;
        CU_ASSERT_EQUAL(workload_fib(e, n, round % 3 == 0 ? 0 : 10, &got), 0);
        CU_ASSERT_EQUAL(got, workload_fib_serial(n));
    }
    pareng_stop(e);
    assert_nothing_left();
}

/* pareng_config.after_fork: called once in each worker, with its engine, index and argument
 * (each reports through a pipe the workers inherit; a record is one atomic write); a signal
 * handler it installs stays (the worker reset the caller's handlers before, not after). */
static int fork_reports[2];
static volatile sig_atomic_t usr1_handled;

static void on_usr1(int sig)
{
    (void)sig;
    usr1_handled = 1;
}

PARENG_TASK_1(int, raise_usr1, int, unused)
{
    (void)unused;
    raise(SIGUSR1);
    return usr1_handled;
}

typedef struct fork_report {
    unsigned worker;
    bool arg_ok;
    pareng_engine *engine;
} fork_report;

static void report_fork(pareng_engine *engine, unsigned worker, void *arg)
{
    fork_report r = {worker, arg == fork_reports, engine};
    struct sigaction sa = {.sa_handler = on_usr1};
    sigaction(SIGUSR1, &sa, NULL);
    ssize_t ignored = write(fork_reports[1], &r, sizeof r);
    (void)ignored;
}

static void test_after_fork_runs_in_each_worker(void)
{
    CU_ASSERT_EQUAL_FATAL(pipe(fork_reports), 0);
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 3;
    cfg.after_fork = report_fork;
    cfg.after_fork_arg = fork_reports;
    pareng_engine *e;
    CU_ASSERT_EQUAL_FATAL(pareng_start(&e, &cfg), 0);
    unsigned seen = 0;
    for (int k = 0; k < 3; k++) {
        fork_report r;
        CU_ASSERT_EQUAL_FATAL(read(fork_reports[0], &r, sizeof r), (ssize_t)sizeof r);
        CU_ASSERT(r.arg_ok);
        CU_ASSERT_PTR_EQUAL(r.engine, e);
        CU_ASSERT(r.worker < 3);
        seen |= 1u << r.worker;
    }
    CU_ASSERT_EQUAL(seen, 7u);
    uint64_t got;
    CU_ASSERT_EQUAL(workload_fib(e, 20, 0, &got), 0);
    CU_ASSERT_EQUAL(got, 6765u);
    int handled = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, raise_usr1, &handled, 0), 0);
    CU_ASSERT_EQUAL(handled, 1);
    pareng_stop(e);
    close(fork_reports[0]);
    close(fork_reports[1]);
    assert_nothing_left();
}

/* pareng_reduce_into's map and combine: a sum of the indices, for a reduction that is refused */
static void add_index(void *ctx, size_t begin, size_t end, void *out)
{
    (void)ctx;
    for (size_t i = begin; i < end; i++)
        *(uint64_t *)out += i;
}

static void add_into(void *left, const void *right)
{
    *(uint64_t *)left += *(const uint64_t *)right;
}

static void test_killed_worker_fails_the_run(void)
{
    pareng_engine *e = start_engine(2, 0);
    int victim = pareng_engine_worker_pid(e, 1);
    pid_t killer = fork();
    if (killer == 0) {
        usleep(100000);
        kill(victim, SIGKILL);
        _exit(0);
    }
    uint64_t got;
    uint64_t t0 = testing_now_ns();
    int rc = workload_fib(e, 60, 0, &got); /* would run for hours */
    uint64_t took = testing_now_ns() - t0;
    waitpid(killer, NULL, 0);
    CU_ASSERT_EQUAL(rc, -ECHILD);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "worker 1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "SIGKILL"));
    CU_ASSERT(took < 3000000000u);
    /* the workers are gone and the engine refuses more work; its memory goes with
     * pareng_stop (assert_nothing_left) */
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
    CU_ASSERT_EQUAL(workload_fib(e, 10, 0, &got), -EPIPE);
    errno = 0;
    CU_ASSERT_PTR_NULL(pareng_alloc(e, 64));
    CU_ASSERT_EQUAL(errno, EPIPE);
    uint64_t sum;
    CU_ASSERT_EQUAL(pareng_reduce_into(e, 0, 10, 0, add_index, add_into, NULL, &sum, sizeof sum),
                    -EPIPE); /* was -ENOMEM */
    pareng_stop(e);
    assert_nothing_left();
}

/* The caller's globals follow into the workers at each run (PARENG_GLOBALS_PRIVATE, the
 * default; tests/test_ports.c has the literal ports). This program's are of more than 64
 * pages, for this table: the caller reads /proc/self/pagemap to find the pages it may have
 * written, those mapped by it alone, since a fork shares them all with its child. A write
 * before a fork of the program's own, or before another engine's start, is still one that the
 * next run's tasks read. Here, where no engine ever shared the globals (they would be shared
 * pages for good), so that what the pagemap says is used. */
#define LARGE_TABLE (1 << 17)
static int large_table[LARGE_TABLE]; /* 512 KiB */

PARENG_TASK_2(long, sum_of_large_table, int, lo, int, hi)
{
    if (hi - lo <= 4096) {
        long sum = 0;
        for (int i = lo; i < hi; i++)
            sum += large_table[i];
        return sum;
    }
    int mid = lo + (hi - lo) / 2;
    PARENG_SPAWN(sum_of_large_table, lo, mid);
    long right = PARENG_CALL(sum_of_large_table, mid, hi);
    return PARENG_SYNC(sum_of_large_table) + right;
}

static long large_table_sum(pareng_engine *e)
{
    long sum = -1;
    CU_ASSERT_EQUAL(PARENG_RUN(e, sum_of_large_table, &sum, 0, LARGE_TABLE), 0);
    return sum;
}

/* .data the caller never touched before the start (256 KiB: its middle is beyond the pages
 * the kernel maps around a fault of its neighbours): the file's contents, not zeros */
static int initialised[65536] = {[0 ... 65535] = 7};

/* A task's own write to a global, in a worker, of bytes the caller changed before: a later
 * change of the caller's to other bytes of the same line does not undo it (one worker: the
 * same copy every run). */
static struct {
    int caller_set, task_set;
} neighbours;

PARENG_TASK_2(int, read_initialised, int, i, int, set_own)
{
    if (set_own)
        neighbours.task_set = set_own;
    return initialised[i] * 100 + neighbours.task_set * 10 + neighbours.caller_set;
}

static void test_large_globals_followed(void)
{
    pareng_engine *one = testing_start_cutoff(1, 0);
    initialised[32768] = 0;
    int got = -1;
    CU_ASSERT_EQUAL(PARENG_RUN(one, read_initialised, &got, 32768, 0), 0);
    CU_ASSERT_EQUAL(got, 0);
    neighbours.caller_set = 1;
    neighbours.task_set = 3;
    CU_ASSERT_EQUAL(PARENG_RUN(one, read_initialised, &got, 32769, 0), 0);
    CU_ASSERT_EQUAL(got, 731);
    CU_ASSERT_EQUAL(PARENG_RUN(one, read_initialised, &got, 32769, 5), 0);
    CU_ASSERT_EQUAL(got, 751);
    neighbours.caller_set = 2; /* the line changes again: the task's 5 stays */
    CU_ASSERT_EQUAL(PARENG_RUN(one, read_initialised, &got, 32769, 0), 0);
    CU_ASSERT_EQUAL(got, 752);
    pareng_stop(one);

    for (int i = 0; i < LARGE_TABLE; i++)
        large_table[i] = 1;
    pareng_engine *e = testing_start_cutoff(2, 0);
    CU_ASSERT_EQUAL(large_table_sum(e), LARGE_TABLE);
    large_table[1000] = 5;
    CU_ASSERT_EQUAL(large_table_sum(e), LARGE_TABLE + 4);
    large_table[100000] = 7; /* then a fork shares the page again, until the child ends */
    int until_run[2];
    CU_ASSERT_EQUAL_FATAL(pipe(until_run), 0);
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) {
        char byte;
        close(until_run[1]);
        _exit((int)read(until_run[0], &byte, 1));
    }
    close(until_run[0]);
    CU_ASSERT_EQUAL(large_table_sum(e), LARGE_TABLE + 4 + 6);
    close(until_run[1]);
    CU_ASSERT_EQUAL(waitpid(child, NULL, 0), child);
    large_table[50000] = 3; /* and another engine's workers */
    pareng_engine *other = testing_start_cutoff(1, 0);
    CU_ASSERT_EQUAL(large_table_sum(e), LARGE_TABLE + 4 + 6 + 2);
    CU_ASSERT_EQUAL(large_table_sum(other), LARGE_TABLE + 4 + 6 + 2);
    pareng_stop(other);
    memset(large_table, 0, sizeof large_table); /* every page changed */
    CU_ASSERT_EQUAL(large_table_sum(e), 0);
    large_table[LARGE_TABLE - 1] = 9;
    CU_ASSERT_EQUAL(large_table_sum(e), 9);
    pareng_stop(e);
}

/* Serving (pareng_serve): tasks posted one by one, each collected with its tag and its own
 * result; a posted task spawns and syncs as any task (thieves share it). */
PARENG_TASK_1(uint64_t, posted_fib, unsigned, n)
{
    if (n < 12)
        return workload_fib_serial(n);
    PARENG_SPAWN(posted_fib, n - 1);
    uint64_t b = PARENG_CALL(posted_fib, n - 2);
    return PARENG_SYNC(posted_fib) + b;
}

#define SERVE_TASKS 1000
typedef struct serve_state {
    unsigned posted, collected, wrong, refused_when_full;
    bool filled_once;
} serve_state;

static unsigned posted_n(uint64_t tag)
{
    return (unsigned)(tag % 26);
}

static int serve_fibs(pareng_engine *e, void *ctx)
{
    serve_state *st = ctx;
    uint64_t tag, result;
    while (pareng_collect(e, &tag, &result, sizeof result) > 0) {
        st->collected++;
        st->wrong += result != workload_fib_serial(posted_n(tag));
    }
    while (st->posted < SERVE_TASKS) {
        int rc = PARENG_POST(e, st->posted, posted_fib, posted_n(st->posted));
        if (rc == -EAGAIN) {
            /* every slot holds a task: only after the first fill, and only at 256; said (the
             * message was whatever an earlier failure had left) */
            st->refused_when_full += st->posted - st->collected == PARENG_SERVE_SLOTS &&
                                     strstr(pareng_last_error(), "not collected") != NULL;
            break;
        }
        CU_ASSERT_EQUAL(rc, 0);
        st->posted++;
    }
    return st->collected < SERVE_TASKS;
}

static void test_serve_collects_each_posted_task(void)
{
    pareng_engine *e = start_engine(3, 0);
    serve_state st = {0};
    CU_ASSERT_EQUAL(pareng_serve(e, PARENG_CUTOFF_NONE, serve_fibs, &st), 0);
    CU_ASSERT_EQUAL(st.collected, SERVE_TASKS);
    CU_ASSERT_EQUAL(st.wrong, 0);
    CU_ASSERT(st.refused_when_full > 0);
    /* the engine runs roots and serves again after a serve */
    uint64_t got;
    CU_ASSERT_EQUAL(workload_fib(e, 20, 0, &got), 0);
    CU_ASSERT_EQUAL(got, workload_fib_serial(20));
    st = (serve_state){0};
    CU_ASSERT_EQUAL(pareng_serve(e, PARENG_CUTOFF_AUTO, serve_fibs, &st), 0);
    CU_ASSERT_EQUAL(st.wrong, 0);
    pareng_stop(e);
    assert_nothing_left();
}

/* Posts and collects from several threads at once, while a serve collects too: every tag
 * comes back once, with its own task's result, where two posters took the same inbox slot
 * (a task lost: its tag never came back, and the serve waited for ever) and two collectors the
 * same result (a tag twice), and a result came with a tag another post was writing. */
static uint64_t scramble(uint64_t x)
{
    return x * 0x9E3779B97F4A7C15u ^ (x >> 7);
}

PARENG_TASK_1(uint64_t, scrambled, uint64_t, x)
{
    return scramble(x);
}

#define THREADED_POSTERS 4
#define THREADED_POSTS 3000
#define THREADED_TOTAL (THREADED_POSTERS * THREADED_POSTS)
/* No tag collected for this long: one is lost. Trivial tasks on a loaded machine come back in
 * milliseconds, so a slow machine does not reach it. */
#define THREADED_STALL_NS (30 * 1000000000ull)

typedef struct threaded_serve {
    pareng_engine *engine;
    _Atomic unsigned seen[THREADED_TOTAL];
    _Atomic unsigned collected, wrong, unknown, post_errors;
    _Atomic bool give_up;
    uint64_t last_progress_ns;
    unsigned last_collected;
    bool stalled;
} threaded_serve;

typedef struct poster {
    threaded_serve *ts;
    unsigned first_tag;
} poster;

static void threaded_take(threaded_serve *ts)
{
    uint64_t tag, result;
    while (pareng_collect(ts->engine, &tag, &result, sizeof result) > 0) {
        if (tag >= THREADED_TOTAL) {
            atomic_fetch_add(&ts->unknown, 1);
            continue;
        }
        atomic_fetch_add(&ts->seen[tag], 1);
        atomic_fetch_add(&ts->wrong, result != scramble(tag));
        atomic_fetch_add(&ts->collected, 1);
    }
}

static void *post_from_a_thread(void *arg)
{
    poster *p = arg;
    threaded_serve *ts = p->ts;
    for (unsigned i = 0; i < THREADED_POSTS && !atomic_load(&ts->give_up);) {
        uint64_t tag = p->first_tag + i;
        int rc = PARENG_POST(ts->engine, tag, scrambled, tag);
        if (rc == 0) {
            i++;
        } else if (rc == -EAGAIN) { /* every slot taken: this thread collects too */
            threaded_take(ts);
            sched_yield();
        } else {
            atomic_fetch_add(&ts->post_errors, 1);
            break;
        }
    }
    pareng_serve_wake(ts->engine);
    return NULL;
}

static int serve_threaded(pareng_engine *e, void *ctx)
{
    (void)e;
    threaded_serve *ts = ctx;
    threaded_take(ts);
    unsigned collected = atomic_load(&ts->collected);
    uint64_t now = testing_now_ns();
    if (collected != ts->last_collected || !ts->last_progress_ns) {
        ts->last_collected = collected;
        ts->last_progress_ns = now;
    } else if (now - ts->last_progress_ns > THREADED_STALL_NS) {
        ts->stalled = true;
        return 0;
    }
    return collected < THREADED_TOTAL;
}

static void test_post_and_collect_from_threads(void)
{
    pareng_engine *e = start_engine(2, 0);
    threaded_serve *ts = calloc(1, sizeof *ts);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ts);
    ts->engine = e;
    pthread_t threads[THREADED_POSTERS];
    poster posters[THREADED_POSTERS];
    for (unsigned t = 0; t < THREADED_POSTERS; t++) {
        posters[t] = (poster){ts, t * THREADED_POSTS};
        CU_ASSERT_EQUAL_FATAL(
            pthread_create(&threads[t], NULL, post_from_a_thread, &posters[t]), 0);
    }
    CU_ASSERT_EQUAL(pareng_serve(e, PARENG_CUTOFF_NONE, serve_threaded, ts), 0);
    atomic_store(&ts->give_up, true);
    for (unsigned t = 0; t < THREADED_POSTERS; t++)
        pthread_join(threads[t], NULL);
    CU_ASSERT_FALSE(ts->stalled);
    CU_ASSERT_EQUAL(atomic_load(&ts->post_errors), 0);
    CU_ASSERT_EQUAL(atomic_load(&ts->unknown), 0);
    CU_ASSERT_EQUAL(atomic_load(&ts->wrong), 0);
    CU_ASSERT_EQUAL(atomic_load(&ts->collected), THREADED_TOTAL);
    unsigned not_once = 0;
    for (unsigned tag = 0; tag < THREADED_TOTAL; tag++)
        not_once += atomic_load(&ts->seen[tag]) != 1;
    CU_ASSERT_EQUAL(not_once, 0);
    if (ts->stalled || not_once || atomic_load(&ts->wrong))
        fprintf(stderr, "\n%u of %u collected, %u wrong, %u tags not once%s\n",
                atomic_load(&ts->collected), THREADED_TOTAL, atomic_load(&ts->wrong), not_once,
                ts->stalled ? ", stalled" : "");
    free(ts);
    pareng_stop(e);
    assert_nothing_left();
}

/* Posts a task that would run for hours and one that finishes at once, never collected. */
static int serve_forever(pareng_engine *e, void *ctx)
{
    unsigned *posted = ctx;
    if (!*posted)
        *posted = (PARENG_POST(e, 0, posted_fib, 70) == 0) +
                  (PARENG_POST(e, 1, posted_fib, 10) == 0);
    return 1;
}

static void test_killed_worker_fails_the_serve(void)
{
    pareng_engine *e = start_engine(2, 0);
    int victim = pareng_engine_worker_pid(e, 0);
    pid_t killer = fork();
    if (killer == 0) {
        usleep(100000);
        kill(victim, SIGKILL);
        _exit(0);
    }
    unsigned posted = 0;
    int rc = pareng_serve(e, PARENG_CUTOFF_NONE, serve_forever, &posted);
    waitpid(killer, NULL, 0);
    CU_ASSERT_EQUAL(posted, 2);
    CU_ASSERT_EQUAL(rc, -ECHILD);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "SIGKILL"));
    CU_ASSERT_EQUAL(PARENG_POST(e, 1, posted_fib, 3), -EPIPE);
    /* A result finished before the failure may still be collected (the short task's, unless
     * the killed worker held it), and then the collect says the engine failed, instead of
     * "none finished yet" for ever. */
    uint64_t tag = 0, result = 0;
    int collected = 0, got;
    while ((got = pareng_collect(e, &tag, &result, sizeof result)) == 1) {
        CU_ASSERT(tag == 1 && result == 55);
        collected++;
    }
    CU_ASSERT(collected <= 1);
    CU_ASSERT_EQUAL(got, -EPIPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "failed earlier"));
    pareng_stop(e);
    assert_nothing_left();
}

/* pareng_stop from a serve's callback: the serve ends, cancelled, and the engine stops when it
 * returns (it was freed under the serve: a use after free). */
static int serve_then_stop(pareng_engine *e, void *ctx)
{
    unsigned *rounds = ctx;
    if (++*rounds == 1)
        return PARENG_POST(e, 0, posted_fib, 70) == 0 ? 1 : -EIO; /* would run for hours */
    pareng_stop(e);
    return 1;
}

/* A task that posts or collects: refused, where its post ran under another tag */
PARENG_TASK_1(int, post_from_a_task, int, unused)
{
    (void)unused;
    uint64_t tag, result;
    int posted = PARENG_POST(PARENG_ENGINE(), 999, posted_fib, 10);
    int collected = pareng_collect(PARENG_ENGINE(), &tag, &result, sizeof result);
    return posted == -EDEADLK && collected == -EDEADLK ? 1 : 0;
}

static int serve_failing(pareng_engine *e, void *ctx)
{
    (void)e;
    (void)ctx;
    return -EIO;
}

static void test_serve_callbacks_misuse(void)
{
    pareng_engine *e = start_engine(2, 0);
    unsigned rounds = 0;
    CU_ASSERT_EQUAL(pareng_serve(e, PARENG_CUTOFF_NONE, serve_then_stop, &rounds), -ECANCELED);
    CU_ASSERT_EQUAL(rounds, 2);
    assert_nothing_left(); /* stopped: no worker, no memory */

    e = start_engine(2, 0);
    int ok = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, post_from_a_task, &ok, 0), 0);
    CU_ASSERT_EQUAL(ok, 1);
    /* a callback that fails ends the engine, and later calls say why */
    CU_ASSERT_EQUAL(pareng_serve(e, PARENG_CUTOFF_NONE, serve_failing, NULL), -EIO);
    uint64_t got;
    CU_ASSERT_EQUAL(workload_fib(e, 10, 0, &got), -EPIPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "failed earlier: the serve callback failed"));
    pareng_stop(e);
    assert_nothing_left();
}

/* A task whose arguments exceed a frame (spilled when spawned) is refused by PARENG_POST, and
 * the serve goes on. */
typedef struct wide {
    uint64_t word[8];
} wide;

PARENG_TASK_1(uint64_t, wide_sum, wide, w)
{
    uint64_t sum = 0;
    for (unsigned k = 0; k < 8; k++)
        sum += w.word[k];
    return sum;
}

static void test_post_refuses_data_past_a_frame(void)
{
    pareng_engine *e = start_engine(2, 0);
    wide w = {{1, 2, 3, 4, 5, 6, 7, 8}};
    CU_ASSERT_EQUAL(PARENG_POST(e, 0, wide_sum, w), -EINVAL);
    uint64_t tag;
    CU_ASSERT_EQUAL(pareng_collect(e, &tag, &w, sizeof w), -EINVAL); /* not "none finished" */
    serve_state st = {0};
    CU_ASSERT_EQUAL(pareng_serve(e, PARENG_CUTOFF_NONE, serve_fibs, &st), 0);
    CU_ASSERT_EQUAL(st.wrong, 0);
    pareng_stop(e);
    assert_nothing_left();
}

/* An IO engine's fibers never take posted tasks: refused, not left waiting (where io_uring
 * is available; test_io says when it is not). */
static void test_io_engine_refuses_to_serve(void)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 1;
    cfg.io_depth = 4;
    pareng_engine *e;
    if (pareng_start(&e, &cfg) < 0)
        return;
    unsigned posted = 0;
    CU_ASSERT_EQUAL(pareng_serve(e, PARENG_CUTOFF_NONE, serve_forever, &posted), -EOPNOTSUPP);
    CU_ASSERT_EQUAL(PARENG_POST(e, 0, posted_fib, 3), -EOPNOTSUPP);
    uint64_t tag, result;
    CU_ASSERT_EQUAL(pareng_collect(e, &tag, &result, sizeof result), -EOPNOTSUPP);
    CU_ASSERT_EQUAL(posted, 0);
    pareng_stop(e);
    assert_nothing_left();
}

static pareng_engine *to_cancel;
static void cancel_on_alarm(int sig)
{
    (void)sig;
    pareng_cancel(to_cancel);
}

static void test_cancel_from_a_signal_handler(void)
{
    pareng_engine *e = start_engine(2, 0);
    to_cancel = e;
    struct sigaction sa = {.sa_handler = cancel_on_alarm}, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, &old);
    alarm(1);
    uint64_t got;
    CU_ASSERT_EQUAL(workload_fib(e, 60, 0, &got), -ECANCELED);
    sigaction(SIGALRM, &old, NULL);
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
    pareng_stop(e);
    assert_nothing_left();
}

/* A search that ends when a task finds what it looks for, as TBB's cancel_group_execution or
 * OpenMP's cancel do: the SEARCH_FOUND_AT-th leaf to start, of a tree that would spin for
 * SEARCH_LEAVES * SEARCH_LEAF_NS (20 s of CPU), calls pareng_cancel, or pareng_stop, which a
 * task cannot stop the engine with and ends the run by instead. The run returns -ECANCELED,
 * said to be a task's, with most of the tree undone (it went on to the end: the cancel was
 * kept in the worker's copy of the handle; a task's pareng_stop unmapped the engine under
 * the task, which died of SIGSEGV). */
#define SEARCH_DEPTH 10
#define SEARCH_LEAVES (1u << SEARCH_DEPTH)
#define SEARCH_LEAF_NS 20000000u
#define SEARCH_FOUND_AT 8

typedef struct search_progress {
    _Atomic unsigned started, done;
} search_progress;

/* Set by pareng_start before it forks the workers: tasks may use it (library.md) */
static pareng_engine *searched;
/* Set by the program after pareng_start: the workers' copy follows (PARENG_GLOBALS_PRIVATE),
 * or stays NULL (PARENG_GLOBALS_FORKED) */
static pareng_engine *searched_set_late;

typedef enum ending { CANCEL, STOP, CANCEL_WITH_LATE_GLOBAL, CANCEL_WITH_FORKED_GLOBAL } ending;

PARENG_TASK_3(unsigned, search, unsigned, depth, int, how, search_progress *, progress)
{
    if (depth == 0) {
        if (atomic_fetch_add(&progress->started, 1) == SEARCH_FOUND_AT) {
            if (how == STOP)
                pareng_stop(searched);
            else if (how == CANCEL_WITH_LATE_GLOBAL) {
                void *block = pareng_alloc(searched_set_late, 64);
                if (block && pareng_free(searched_set_late, block) == 0)
                    pareng_cancel(searched_set_late);
            } else if (how == CANCEL_WITH_FORKED_GLOBAL) {
                void *block = pareng_alloc(searched_set_late, 64); /* refused, saying why */
                if (!block && errno == EINVAL && strstr(pareng_last_error(), "PARENG_ENGINE()"))
                    pareng_cancel(searched_set_late);
            } else
                pareng_cancel(PARENG_ENGINE());
            return 1;
        }
        testing_spin_ns(SEARCH_LEAF_NS);
        atomic_fetch_add(&progress->done, 1);
        return 0;
    }
    PARENG_SPAWN(search, depth - 1, how, progress);
    unsigned found = PARENG_CALL(search, depth - 1, how, progress);
    return found + PARENG_SYNC(search);
}

static void check_a_task_ends_the_run(ending how, const char *said)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 2;
    if (how == CANCEL_WITH_FORKED_GLOBAL)
        cfg.globals = PARENG_GLOBALS_FORKED;
    CU_ASSERT_EQUAL_FATAL(pareng_start(&searched, &cfg), 0);
    searched_set_late = searched;
    search_progress *progress = pareng_alloc(searched, sizeof *progress);
    CU_ASSERT_PTR_NOT_NULL_FATAL(progress);
    atomic_store(&progress->started, 0);
    atomic_store(&progress->done, 0);
    unsigned found = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(searched, search, &found, SEARCH_DEPTH, (int)how, progress),
                    -ECANCELED);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), said));
    unsigned done = atomic_load(&progress->done);
    if (done >= SEARCH_LEAVES / 2)
        fprintf(stderr, "\n  %u of %u leaves done after the cancel\n", done, SEARCH_LEAVES);
    CU_ASSERT(done < SEARCH_LEAVES / 2);
    /* as after the caller's cancel: workers gone at once, the engine failed, saying why */
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
    uint64_t got;
    CU_ASSERT_EQUAL(workload_fib(searched, 10, 0, &got), -EPIPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), said));
    pareng_stop(searched);
    searched = searched_set_late = NULL;
    assert_nothing_left();
}

static void test_cancel_from_a_task(void)
{
    check_a_task_ends_the_run(CANCEL, "run cancelled by a task (pareng_cancel)");
    check_a_task_ends_the_run(STOP, "run cancelled by a task's pareng_stop");
    /* a handle the program stored after the start: the workers' copy follows it, and the
     * task allocates and cancels through it */
    check_a_task_ends_the_run(CANCEL_WITH_LATE_GLOBAL, "run cancelled by a task (pareng_cancel)");
    /* the same with PARENG_GLOBALS_FORKED: NULL in the workers, refused by pareng_alloc with a
     * message that names PARENG_ENGINE(), and the task's own engine to pareng_cancel */
    check_a_task_ends_the_run(CANCEL_WITH_FORKED_GLOBAL,
                              "run cancelled by a task (pareng_cancel)");
}

/* A posted task that cancels and returns at once, while the serve's callback is still at work:
 * the callback collects its result and ends the serve, and the cancel is still that serve's
 * (-ECANCELED), not left over to cancel the next run (which it did: the serve returned 0 and
 * the next run -ECANCELED at its start). */
PARENG_TASK_1(uint64_t, found_and_cancels, uint64_t, x)
{
    pareng_cancel(PARENG_ENGINE());
    return x + 1;
}

static int serve_until_found(pareng_engine *e, void *ctx)
{
    int *posted = ctx;
    if (!*posted) {
        *posted = PARENG_POST(e, 7, found_and_cancels, 41) == 0;
        usleep(200000); /* the callback's own work, long beside the task's: it cancels now */
    }
    uint64_t tag, result;
    return pareng_collect(e, &tag, &result, sizeof result) == 1 ? 0 : 1;
}

static void test_cancel_as_the_serve_ends(void)
{
    pareng_engine *e = start_engine(2, 0);
    int posted = 0;
    CU_ASSERT_EQUAL(pareng_serve(e, PARENG_CUTOFF_NONE, serve_until_found, &posted), -ECANCELED);
    CU_ASSERT_EQUAL(posted, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "run cancelled by a task"));
    uint64_t got;
    CU_ASSERT_EQUAL(workload_fib(e, 10, 0, &got), -EPIPE);
    pareng_stop(e);
    assert_nothing_left();
}

/* pareng_cancel_on_signal, in a child process of its own (the handler is for the life of a
 * process): the signal cancels the run, the program's own handler still runs, the signal is
 * remembered and cancels the next run until cleared, and an ignored signal stays ignored. The
 * child's exit status is the number of the first check that failed. */
static volatile sig_atomic_t program_handler_calls;
static void program_handler(int sig)
{
    (void)sig;
    program_handler_calls++;
}

/* An engine of `workers`, or NULL (no CUnit assertion: this runs in a child process). */
static pareng_engine *child_engine(unsigned workers)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = workers;
    pareng_engine *e = NULL;
    return pareng_start(&e, &cfg) == 0 ? e : NULL;
}

static int cancel_on_signal_checks(void)
{
    signal(SIGALRM, program_handler);
    if (pareng_cancel_on_signal(SIGALRM) != 0 || pareng_cancel_on_signal(SIGALRM) != 0)
        return 1;
    if (pareng_cancel_on_signal(SIGKILL) != -EINVAL || pareng_cancel_on_signal(0) != -EINVAL)
        return 2;
    pareng_engine *e = child_engine(2);
    if (!e)
        return 3;
    alarm(1);
    uint64_t got;
    if (workload_fib(e, 60, 0, &got) != -ECANCELED)
        return 4;
    if (pareng_cancel_signal(0) != SIGALRM || program_handler_calls != 1)
        return 5;
    pareng_stop(e);
    /* a signal remembered cancels the next start (and run) at once */
    pareng_engine *refused = NULL;
    pareng_config cfg;
    pareng_config_default(&cfg);
    if (pareng_start(&refused, &cfg) != -ECANCELED || refused ||
        !strstr(pareng_last_error(), "SIGALRM"))
        return 6;
    if (pareng_cancel_signal(1) != SIGALRM || pareng_cancel_signal(0) != 0)
        return 7;
    e = child_engine(2);
    if (!e || workload_fib(e, 20, 0, &got) != 0 || got != 6765)
        return 8;
    pareng_stop(e);
    signal(SIGUSR1, SIG_IGN); /* nohup's choice is kept */
    struct sigaction now;
    if (pareng_cancel_on_signal(SIGUSR1) != 0 || sigaction(SIGUSR1, NULL, &now) != 0 ||
        now.sa_handler != SIG_IGN)
        return 9;
    return 0;
}

static void test_cancel_on_signal(void)
{
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0)
        _exit(cancel_on_signal_checks());
    int status;
    CU_ASSERT_EQUAL(waitpid(child, &status, 0), child);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "\n  cancel_on_signal: check %d failed (status %#x)\n",
                WIFEXITED(status) ? WEXITSTATUS(status) : -1, status);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_nothing_left();
}

/* PARENG_DISPLAY_AFFINITY's lines, one a worker, from a child whose stderr is a file. */
static void test_display_affinity(void)
{
    FILE *out = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) {
        dup2(fileno(out), STDERR_FILENO);
        pareng_config cfg;
        pareng_config_default(&cfg);
        cfg.workers = 3;
        cfg.display_affinity = 1;
        pareng_engine *e;
        if (pareng_start(&e, &cfg) < 0)
            _exit(1);
        pareng_stop(e);
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    rewind(out);
    char line[256];
    unsigned lines = 0;
    while (fgets(line, sizeof line, out)) {
        char expected[32];
        snprintf(expected, sizeof expected, "worker %u pid ", lines);
        CU_ASSERT_PTR_NOT_NULL(strstr(line, expected));
        CU_ASSERT_PTR_NOT_NULL(strstr(line, "bound to PU P#"));
        lines++;
    }
    CU_ASSERT_EQUAL(lines, 3);
    fclose(out);
}

/* Each worker may run on its planned PU and nowhere else: the kernel's mask of the worker
 * process, read from /proc, is exactly that PU (3 workers on this machine's CPUs, so some
 * share). */
static void test_workers_are_pinned_to_their_pu(void)
{
    pareng_engine *e = start_engine(3, 0);
    const pareng_plan *plan = pareng_engine_plan(e);
    for (unsigned i = 0; i < 3; i++) {
        pareng_placement pl;
        CU_ASSERT_EQUAL_FATAL(pareng_plan_placement(plan, i, &pl), 0);
        char path[64], line[256], expected[64];
        snprintf(path, sizeof path, "/proc/%d/status", pareng_engine_worker_pid(e, i));
        snprintf(expected, sizeof expected, "Cpus_allowed_list:\t%u\n", pl.pu_os);
        FILE *f = fopen(path, "r");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        bool found = false;
        while (fgets(line, sizeof line, f))
            found |= strcmp(line, expected) == 0;
        fclose(f);
        CU_ASSERT(found);
    }
    pareng_stop(e);
}

/* A worker that cannot be pinned (a seccomp policy that denies sched_setaffinity) fails the
 * start (pareng_start waits for every worker to be set up) with a message that says so,
 * rather than running somewhere else unsaid. */
static int unpinnable_run(void)
{
    if (testing_deny_syscall(__NR_sched_setaffinity, EPERM) < 0)
        return 10;
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 2;
    pareng_engine *e = NULL;
    int rc = pareng_start(&e, &cfg);
    bool said = strstr(pareng_last_error(), "could not be pinned") != NULL;
    return rc == -ECHILD && said && !e ? 0 : 1;
}

static void test_unpinnable_worker_fails_the_run(void)
{
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0)
        _exit(unpinnable_run());
    int status;
    CU_ASSERT_EQUAL(waitpid(child, &status, 0), child);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_nothing_left();
}

/* The workers of an engine started after another do not map the first one's memory, which
 * therefore goes when the first one stops (a fork used to copy every earlier mapping). */
static void test_later_workers_do_not_hold_earlier_engines(void)
{
    pareng_engine *first = start_engine(1, 0);
    pareng_engine *second = start_engine(2, 0);
    /* their own arena: one mapping and its descriptor (which a worker extends when its
     * pareng_alloc grows the heap), once they have set up (they close what they inherited
     * after the fork, while pareng_start returns) */
    for (unsigned i = 0; i < 2; i++) {
        int pid = pareng_engine_worker_pid(second, i), held = -1;
        for (int tries = 0; tries < 200 && held != 2; tries++) {
            held = testing_segments_of(pid);
            if (held != 2)
                usleep(10000);
        }
        CU_ASSERT_EQUAL(held, 2);
    }
    pareng_stop(first);
    uint64_t got = 0;
    CU_ASSERT_EQUAL(workload_fib(second, 20, 0, &got), 0);
    CU_ASSERT_EQUAL(got, 6765u);
    pareng_stop(second);
    assert_nothing_left();
}

/* A tool of the same user attaches to a running engine's memory through
 * pareng_engine_segment (the arena has no name); the path goes with the engine. */
static void test_tools_attach_through_the_coordinator(void)
{
    pareng_engine *e = start_engine(2, 0);
    char path[64];
    snprintf(path, sizeof path, "%s", pareng_engine_segment(e));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CU_ASSERT_FATAL(fd >= 0);
    uint64_t magic = 0;
    uint32_t layout[3] = {0};
    CU_ASSERT_EQUAL(pread(fd, &magic, sizeof magic, 0), (ssize_t)sizeof magic);
    CU_ASSERT_EQUAL(pread(fd, layout, sizeof layout, sizeof magic), (ssize_t)sizeof layout);
    CU_ASSERT_EQUAL(magic, 0x676e657261706170ull); /* "papareng" */
    CU_ASSERT_EQUAL(layout[1], 2);                 /* n_workers */
    close(fd);
    CU_ASSERT_EQUAL(testing_segments_of(getpid()), 2); /* the descriptor and the mapping */
    pareng_stop(e);
    CU_ASSERT(access(path, F_OK) != 0);
    assert_nothing_left();
}

static void test_bad_configuration_starts_nothing(void)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    pareng_engine *e = (pareng_engine *)&cfg;
    cfg.workers = PARENG_MAX_WORKERS + 1;
    CU_ASSERT_EQUAL(pareng_start(&e, &cfg), -EINVAL);
    CU_ASSERT_PTR_NULL(e);
    pareng_config_default(&cfg);
    cfg.deque_capacity = 1;
    CU_ASSERT_EQUAL(pareng_start(&e, &cfg), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "capacity"));
    pareng_config_default(&cfg);
    cfg.cpus = "0,,1";
    CU_ASSERT_EQUAL(pareng_start(&e, &cfg), -EINVAL);
    cfg.cpus = "4095";
    CU_ASSERT_EQUAL(pareng_start(&e, &cfg), -ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "4095"));
    assert_nothing_left();
}

/* ---- shared memory and data-parallel loops ----------------------------------------------- */

typedef struct squares {
    uint64_t *out;
} squares;

static void fill_squares(void *ctx, size_t begin, size_t end)
{
    squares *sq = ctx;
    for (size_t i = begin; i < end; i++)
        sq->out[i] = (uint64_t)i * i;
}

/* pareng_for's pieces, counted where every worker adds */
static void count_piece(void *ctx, size_t begin, size_t end)
{
    (void)begin;
    (void)end;
    atomic_fetch_add_explicit((_Atomic unsigned *)ctx, 1, memory_order_relaxed);
}

/* The automatic grain gives 8 to 16 pieces per worker: its grain, rounded down, had the halves
 * of 1,000 indexes on 2 workers one over it (125 -> 63 > 62), and 24 pieces. */
static void test_automatic_grain_pieces(void)
{
    pareng_engine *e = start_engine(2, 0);
    _Atomic unsigned *pieces = pareng_alloc(e, sizeof *pieces);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pieces);
    size_t sizes[] = {1000, 1001, 1024, 1 << 20, 16, 5};
    unsigned expected[] = {16, 16, 16, 16, 16, 5};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        atomic_store(pieces, 0);
        CU_ASSERT_EQUAL(pareng_for(e, 0, sizes[k], 0, count_piece, (void *)pieces), 0);
        CU_ASSERT_EQUAL(atomic_load(pieces), expected[k]);
    }
    pareng_stop(e);
    assert_nothing_left();
}

static void test_alloc_is_shared_and_reused(void)
{
    pareng_engine *e = start_engine(3, 0);
    size_t n = 1000000;
    squares *sq = pareng_alloc(e, sizeof *sq);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sq);
    CU_ASSERT_EQUAL((uintptr_t)sq % 64, 0);
    sq->out = pareng_alloc(e, n * sizeof *sq->out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sq->out);
    /* filled by the workers, read here: the memory is the same in every process */
    CU_ASSERT_EQUAL(pareng_for(e, 0, n, 0, fill_squares, sq), 0);
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++)
        wrong += sq->out[i] != (uint64_t)i * i;
    CU_ASSERT_EQUAL(wrong, 0);
    /* freed blocks coalesce: after freeing everything the whole heap is one block again */
    pareng_free(e, sq->out);
    pareng_free(e, sq);
    void *big = pareng_alloc(e, 7u << 20);
    CU_ASSERT_PTR_NOT_NULL(big);
    void *more = pareng_alloc(e, 2u << 20); /* past the first 8 MiB: the heap grows */
    CU_ASSERT_PTR_NOT_NULL(more);
    pareng_free(e, more);
    pareng_free(e, big);
    pareng_free(e, NULL);
    pareng_stop(e);
    assert_nothing_left();
}

static pareng_value sum_u64(void *ctx, size_t begin, size_t end)
{
    (void)ctx;
    pareng_value v = {.u = 0};
    for (size_t i = begin; i < end; i++)
        v.u += i;
    return v;
}

static pareng_value add_u64(pareng_value a, pareng_value b)
{
    return (pareng_value){.u = a.u + b.u};
}

static pareng_value harmonic(void *ctx, size_t begin, size_t end)
{
    (void)ctx;
    pareng_value v = {.d = 0};
    for (size_t i = begin; i < end; i++)
        v.d += 1.0 / (double)(i + 1);
    return v;
}

static pareng_value add_double(pareng_value a, pareng_value b)
{
    return (pareng_value){.d = a.d + b.d};
}

/* The same tree as pareng_reduce, serially: what a reproducible reduction must equal. */
static double harmonic_tree(size_t begin, size_t end, size_t grain)
{
    if (end - begin <= grain)
        return harmonic(NULL, begin, end).d;
    size_t mid = begin + (end - begin) / 2;
    return harmonic_tree(begin, mid, grain) + harmonic_tree(mid, end, grain);
}

static void test_reduce_is_exact_and_reproducible(void)
{
    size_t n = 3000017;
    double expected = harmonic_tree(0, n, n / 1024);
    for (unsigned workers = 1; workers <= 8; workers += workers < 3 ? 2 : 5) { /* 1, 3, 8 */
        pareng_engine *e = start_engine(workers, 0);
        pareng_value v;
        CU_ASSERT_EQUAL(pareng_reduce(e, 0, n, 0, sum_u64, add_u64, NULL, &v), 0);
        CU_ASSERT_EQUAL(v.u, (uint64_t)n * (n - 1) / 2);
        CU_ASSERT_EQUAL(pareng_reduce(e, 0, n, 0, harmonic, add_double, NULL, &v), 0);
        CU_ASSERT(memcmp(&v.d, &expected, sizeof expected) == 0); /* bit for bit */
        CU_ASSERT_EQUAL(pareng_reduce(e, 5, 5, 0, harmonic, add_double, NULL, &v), -EINVAL);
        pareng_stop(e);
    }
    assert_nothing_left();
}

static pareng_value sum_doubles(void *ctx, size_t begin, size_t end)
{
    const double *x = ctx;
    pareng_value v = {.d = 0};
    for (size_t i = begin; i < end; i++)
        v.d += x[i];
    return v;
}

/* Memory the caller malloc'd after pareng_start, for tasks to read, filled after the start:
 * the workers do not have it. A block of its own mapping is not mapped there; a block from the
 * heap's top, free at the start, was the workers' copy of free memory, and a run read zeros
 * with exit status 0. Both fail cleanly now, naming the memory; a bad pointer reads as any. */
static void assert_read_of_later_memory_refused(pareng_engine *e, const double *x, size_t n)
{
    pareng_value v;
    CU_ASSERT_EQUAL(pareng_reduce(e, 0, n, 0, sum_doubles, add_double, (void *)x, &v), -ECHILD);
    const char *why = pareng_last_error();
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "killed by signal 11 (SIGSEGV): a task used 0x"));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "workers have the caller's memory as it was at the "
                                       "start, when that data did not exist"));
    CU_ASSERT_PTR_NULL(strstr(why, "overflow"));
}

/* A block from the heap's top, free at the start and within the heap the workers have: the
 * heap is grown with room to spare first, and blocks are taken until one lies a page past
 * where the top began (the free chunks before it are taken first). */
static void assert_read_of_the_heaps_top_refused(void)
{
    mallopt(M_TOP_PAD, 1 << 20);
    void *volatile pad = malloc(64 << 10); /* volatile: gcc drops a malloc freed unused */
    free(pad);
    pareng_engine *e = start_engine(2, 0);
    uintptr_t heap_end = (uintptr_t)sbrk(0), top = heap_end - mallinfo2().keepcost;
    double *blocks[512];
    unsigned taken = 0;
    while (taken < 512 && (blocks[taken] = malloc(1024 * sizeof(double))) &&
           (uintptr_t)blocks[taken++] < top + 2 * (uintptr_t)sysconf(_SC_PAGESIZE)) {
    }
    double *later = taken ? blocks[taken - 1] : NULL;
    bool in_the_top = later && (uintptr_t)later > top && (uintptr_t)(later + 1024) < heap_end;
    CU_ASSERT(in_the_top);
    if (in_the_top) {
        for (size_t i = 0; i < 1024; i++)
            later[i] = 1;
        assert_read_of_later_memory_refused(e, later, 1024);
        CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "in the caller's heap where it had "
                                                           "nothing at pareng_start"));
    }
    while (taken)
        free(blocks[--taken]);
    pareng_stop(e);
    /* glibc's default pad (its mmap threshold stays where it is now, no longer moved by the
     * blocks freed: as it was at the process's start) */
    mallopt(M_TOP_PAD, 128 << 10);
}

static void test_private_memory_mistake_fails_cleanly(void)
{
    pareng_engine *e = start_engine(2, 0);
    /* 4 MiB: malloc maps it, absent in the workers; or, once glibc raised its threshold for
     * mapping (blocks of earlier tests freed), from the heap's top or past it */
    size_t n = 1u << 19;
    double *x = malloc(n * sizeof *x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    for (size_t i = 0; i < n; i++)
        x[i] = 1;
    assert_read_of_later_memory_refused(e, x, n);
    const char *said = pareng_last_error();
    CU_ASSERT(strstr(said, "memory the caller has and the workers do not") ||
              strstr(said, "in the caller's heap where it had nothing at pareng_start"));
    free(x);
    pareng_stop(e);
    if (pareng_task_malloc_shared()) /* else nothing is sealed (under a sanitizer) */
        assert_read_of_the_heaps_top_refused();
    e = start_engine(2, 0);
    pareng_value v;
    CU_ASSERT_EQUAL(pareng_reduce(e, 0, 8, 0, sum_doubles, add_double, (void *)64, &v), -ECHILD);
    const char *why = pareng_last_error();
    CU_ASSERT(strlen(why) >= 9 && strcmp(why + strlen(why) - 9, "(SIGSEGV)") == 0);
    pareng_stop(e);
    /* the fix: the same array from pareng_alloc */
    e = start_engine(2, 0);
    x = pareng_alloc(e, n * sizeof *x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    for (size_t i = 0; i < n; i++)
        x[i] = 1;
    CU_ASSERT_EQUAL(pareng_reduce(e, 0, n, 0, sum_doubles, add_double, x, &v), 0);
    CU_ASSERT_EQUAL(v.d, (double)n);
    pareng_stop(e);
    assert_nothing_left();
}

/* A task that recurses until its stack runs out hits the guard page below it: the run fails
 * as after any crash, and the message says it was the stack, how large it is and what sizes
 * it, where it said only SIGSEGV. */
static void test_stack_overflow_is_named(void)
{
    pareng_engine *e = start_engine(2, 0);
    unsigned got = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, overflow_the_stack, &got, UINT_MAX), -ECHILD);
    const char *why = pareng_last_error();
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "killed by signal 11 (SIGSEGV): task stack overflow"));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "ulimit -s"));
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
    CU_ASSERT_EQUAL(PARENG_RUN(e, overflow_the_stack, &got, 10), -EPIPE);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "task stack overflow"));
    pareng_stop(e);
    /* a recursion that fits runs as ever */
    e = start_engine(2, 0);
    CU_ASSERT_EQUAL(PARENG_RUN(e, overflow_the_stack, &got, 1000), 0);
    CU_ASSERT_EQUAL(got, testing_descend(1000));
    pareng_stop(e);
    /* frames of 64 KiB, each written from its low end first: named too, where a guard of a
     * page let them step over it into the next worker's stack */
    e = start_engine(2, 0);
    CU_ASSERT_EQUAL(PARENG_RUN(e, overflow_the_stack_by_64_kib, &got, UINT_MAX), -ECHILD);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "task stack overflow"));
    pareng_stop(e);
    assert_nothing_left();
}

static void test_fib_map_matches_serial(void)
{
    pareng_engine *e = start_engine(2, 0);
    const unsigned ns[] = {30, 29, 28, 27, 26, 25, 3, 0, 1, 2, 31};
    size_t count = sizeof ns / sizeof ns[0];
    uint64_t got[sizeof ns / sizeof ns[0]];
    for (unsigned grain = 0; grain <= 20; grain += 20) {
        memset(got, 0, sizeof got);
        CU_ASSERT_EQUAL(workload_fib_map(e, ns, count, grain, got), 0);
        for (size_t k = 0; k < count; k++)
            CU_ASSERT_EQUAL(got[k], workload_fib_serial(ns[k]));
    }
    CU_ASSERT_EQUAL(workload_fib_map(e, ns, 0, 0, got), 0);
    const unsigned too_big[] = {10, 94};
    CU_ASSERT_EQUAL(workload_fib_map(e, too_big, 2, 0, got), -EINVAL);
    pareng_stop(e);
    assert_nothing_left();
}

int main(void)
{
#define FIB_INFO(W, G) {"fib(0..35), " #W " workers, " #G, test_fib_##W##_workers_##G},
    CU_TestInfo fib[] = {
        {"serial baseline", test_serial_baseline},
#if !defined(__SANITIZE_THREAD__)
        {"serial time predicted (fib(93): centuries)", test_serial_time_is_predicted},
#endif
        FIB_TESTS(FIB_INFO)
        {"fib(94) does not fit 64 bits: refused", test_fib_94_is_refused},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo engine[] = {
        {"full deque: spawns run inline", test_full_deque_runs_spawns_inline},
        {"task parameters may use any name", test_parameter_names_are_free},
        {"a loop of spawns is shared before it syncs", test_loop_shares_before_it_syncs},
        {"stats add up", test_stats_add_up},
        {"work reaches every worker", test_work_spreads_to_every_worker},
        {"idle engine sleeps", test_idle_engine_sleeps},
        {"idle engine never wakes", test_idle_engine_never_wakes},
        {"one engine, many roots", test_engine_runs_many_roots},
        {"globals of 768 KiB followed: untouched .data, forks, a task's own writes",
         test_large_globals_followed},
        {"after_fork runs in each worker; a handler it installs stays", test_after_fork_runs_in_each_worker},
        {"killed worker fails the run", test_killed_worker_fails_the_run},
        {"pareng_serve: each posted task collected", test_serve_collects_each_posted_task},
        {"post and collect from several threads at once", test_post_and_collect_from_threads},
        {"killed worker fails the serve", test_killed_worker_fails_the_serve},
        {"serve: stop from the callback, posts from a task, a failed callback", test_serve_callbacks_misuse},
        {"an IO engine refuses to serve", test_io_engine_refuses_to_serve},
        {"PARENG_POST refuses data past a frame", test_post_refuses_data_past_a_frame},
        {"pareng_cancel from a signal handler", test_cancel_from_a_signal_handler},
        {"pareng_cancel or pareng_stop from a task ends the run", test_cancel_from_a_task},
        {"a task's cancel as the serve ends is the serve's", test_cancel_as_the_serve_ends},
        {"pareng_cancel_on_signal", test_cancel_on_signal},
        {"PARENG_DISPLAY_AFFINITY", test_display_affinity},
        {"workers are pinned to their PU", test_workers_are_pinned_to_their_pu},
        {"a worker that cannot be pinned fails the run", test_unpinnable_worker_fails_the_run},
        {"bad configuration starts nothing", test_bad_configuration_starts_nothing},
        {"tools attach through the coordinator", test_tools_attach_through_the_coordinator},
        {"later workers do not hold earlier engines", test_later_workers_do_not_hold_earlier_engines},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo parallel[] = {
        {"pareng_alloc: shared, coalesced, grown", test_alloc_is_shared_and_reused},
        {"pareng_for's automatic grain: 8 to 16 pieces a worker", test_automatic_grain_pieces},
        {"pareng_reduce: exact, same bits on 1/3/8 workers", test_reduce_is_exact_and_reproducible},
        {"workload_fib_map: every item exact", test_fib_map_matches_serial},
        {"private memory mistake fails cleanly", test_private_memory_mistake_fails_cleanly},
        {"a task stack overflow is named", test_stack_overflow_is_named},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("fib", fib),
        TESTING_SUITE("engine", engine),
        TESTING_SUITE("data-parallel", parallel),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
