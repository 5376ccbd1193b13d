/*
 * test_observe.c - watching engines: pareng_attach's view agrees with pareng_engine_stats and
 * refuses a dead, foreign or garbage target; a trace holds the events the counters count;
 * the measuring mode gives the work and span of trees of known shape.
 */
#include "internal.h" /* the arena's header, to change it as a process posing as an engine */
#include "testing.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A binary tree of depth d: 2^d - 1 tasks, d on every path from the root to a leaf. */
PARENG_TASK_1(uint64_t, tree, unsigned, depth)
{
    if (depth <= 1)
        return 1;
    PARENG_SPAWN(tree, depth - 1);
    PARENG_SPAWN(tree, depth - 1);
    uint64_t a = PARENG_SYNC(tree);
    uint64_t b = PARENG_SYNC(tree);
    return a + b + 1;
}

/* A root that spawns `width` leaves (tree of depth 1) at once: width + 1 tasks, depth 2. */
PARENG_TASK_1(uint64_t, fan, unsigned, width)
{
    for (unsigned i = 0; i < width; i++)
        PARENG_SPAWN(tree, 1);
    uint64_t sum = 1;
    for (unsigned i = 0; i < width; i++)
        sum += PARENG_SYNC(tree);
    return sum;
}

/* Sets *taken: run by the worker that stole it from `held`. */
PARENG_TASK_1(int, take, _Atomic int *, taken)
{
    atomic_store(taken, 1);
    return 1;
}

/* Spawns `take`, then keeps its worker until another worker has run it (at most 10 s): a
 * root that both workers take part in, however late the second one wakes on a busy machine. */
PARENG_TASK_1(int, held, _Atomic int *, taken)
{
    PARENG_SPAWN(take, taken);
    PARENG_SHARE();
    uint64_t t0 = testing_now_ns();
    while (!atomic_load(taken) && testing_now_ns() - t0 < 10000000000u) {
    }
    int stolen = atomic_load(taken);
    return PARENG_SYNC(take) + stolen;
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* Waits (at most 10 s) until every worker of the attached engine sleeps. */
static bool all_asleep(pareng_attached *att, pareng_worker_view *v, unsigned n)
{
    pareng_engine_view engine;
    for (int tries = 0; tries < 1000; tries++) {
        CU_ASSERT_EQUAL_FATAL(pareng_snapshot(att, &engine, v, n), (int)n);
        bool asleep = true;
        for (unsigned i = 0; i < n; i++)
            asleep &= v[i].state == PARENG_STATE_SLEEPING;
        if (asleep)
            return true;
        sleep_ms(10);
    }
    return false;
}

static void test_attached_view_matches_the_engines_own(void)
{
    pareng_engine *e = testing_start_engine(2, 0, 0);
    pareng_engine_ref refs[4];
    CU_ASSERT_EQUAL(pareng_engines_find(getpid(), refs, 4), 1);
    CU_ASSERT_EQUAL(refs[0].pid, getpid());
    CU_ASSERT_STRING_EQUAL(refs[0].segment, pareng_engine_segment(e));
    uint64_t r = 0;
    CU_ASSERT_EQUAL(PARENG_RUN_CUTOFF(e, PARENG_CUTOFF_NONE, tree, &r, 16), 0);
    CU_ASSERT_EQUAL(r, 65535);

    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    pareng_attached *att = NULL;
    CU_ASSERT_EQUAL_FATAL(pareng_attach(&att, pid), 0);
    pareng_worker_view v[2];
    CU_ASSERT_FATAL(all_asleep(att, v, 2));
    pareng_engine_view engine;
    CU_ASSERT_EQUAL(pareng_snapshot(att, &engine, v, 2), 2);
    CU_ASSERT_EQUAL(engine.pid, getpid());
    CU_ASSERT_EQUAL(engine.workers, 2);
    CU_ASSERT_EQUAL(engine.runs, 1);
    CU_ASSERT_FALSE(engine.running);
    CU_ASSERT(engine.run_seconds > 0 && engine.run_seconds < engine.age_seconds);
    CU_ASSERT_PTR_NOT_NULL(strstr(engine.command, "test_observe"));
    uint64_t tasks = 0;
    for (unsigned i = 0; i < 2; i++) {
        pareng_stats own;
        CU_ASSERT_EQUAL(pareng_engine_stats(e, i, &own), 0);
        CU_ASSERT_EQUAL(memcmp(&own, &v[i].stats, sizeof own), 0);
        CU_ASSERT_EQUAL(v[i].pid, pareng_engine_worker_pid(e, i));
        pareng_placement pl;
        pareng_plan_placement(pareng_engine_plan(e), i, &pl);
        CU_ASSERT(v[i].pu_os == -1 || v[i].pu_os == (int)pl.pu_os);
        CU_ASSERT_EQUAL(v[i].shared_frames, 0);
        CU_ASSERT_EQUAL(v[i].io_in_flight, 0);
        CU_ASSERT(v[i].cpu_percent >= 0);
        tasks += own.tasks;
    }
    CU_ASSERT(tasks >= 1); /* the root at least */

    /* The engine stops: the view says so rather than show what it last was. */
    pareng_stop(e);
    CU_ASSERT_EQUAL(pareng_snapshot(att, &engine, v, 2), -ESRCH);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "stopped"));
    pareng_detach(att);
    CU_ASSERT_EQUAL(testing_segments_of(getpid()), 0);
}

/* A process of this user that poses as an engine (here: a real engine's memory, changed from
 * outside under the watcher) must not crash the watcher. Counts raised past the mapping after
 * the attach were read: pareng top wrote past its array, then died of SIGBUS. So was memory
 * shrunk below the mapping: SIGBUS. */
static void test_a_watched_engine_changed_under_the_watcher(void)
{
    int ready[2];
    CU_ASSERT_FATAL(pipe(ready) == 0);
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) {
        alarm(20);
        pareng_config cfg;
        pareng_config_default(&cfg);
        cfg.workers = 2;
        pareng_engine *e = NULL;
        char segment[64] = "";
        if (pareng_start(&e, &cfg) == 0)
            snprintf(segment, sizeof segment, "%s", pareng_engine_segment(e));
        if (write(ready[1], segment, sizeof segment) != (ssize_t)sizeof segment)
            _exit(1);
        pause();
        _exit(0);
    }
    char segment[64] = "";
    bool started = read(ready[0], segment, sizeof segment) == (ssize_t)sizeof segment &&
                   segment[0];
    close(ready[0]);
    close(ready[1]);
    pareng_attached *att = NULL;
    int fd = started ? open(segment, O_RDWR | O_CLOEXEC) : -1;
    if (fd >= 0 && pareng_attach(&att, segment) == 0) {
        static pareng_worker_view v[PARENG_MAX_WORKERS];
        pareng_engine_view engine;
        uint32_t many = PARENG_MAX_WORKERS, lanes = 64;
        CU_ASSERT(pwrite(fd, &many, sizeof many, offsetof(pareng__arena, n_workers)) == 4);
        CU_ASSERT(pwrite(fd, &lanes, sizeof lanes, offsetof(pareng__arena, lanes_per_worker)) ==
                  4);
        CU_ASSERT_EQUAL(pareng_snapshot(att, &engine, v, PARENG_MAX_WORKERS), 2);
        CU_ASSERT_EQUAL(engine.workers, 2);
        /* sealed: a shrink would end the engine and its watchers with SIGBUS */
        CU_ASSERT_EQUAL(ftruncate(fd, 4096), -1);
        CU_ASSERT_EQUAL(errno, EPERM);
        CU_ASSERT_EQUAL(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW), -1); /* nor stop its heap */
        CU_ASSERT_EQUAL(pareng_snapshot(att, &engine, v, PARENG_MAX_WORKERS), 2);
        pareng_detach(att);
    } else {
        CU_FAIL("no engine to watch");
    }
    if (fd >= 0)
        close(fd);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
}

static void test_attach_refuses_the_dead_and_the_engineless(void)
{
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    CU_ASSERT_FATAL(child > 0);
    waitpid(child, NULL, 0);
    char target[64];
    snprintf(target, sizeof target, "%d", (int)child);
    pareng_attached *att = (pareng_attached *)&target;
    CU_ASSERT_EQUAL(pareng_attach(&att, target), -ESRCH);
    CU_ASSERT_PTR_NULL(att);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "no process"));
    snprintf(target, sizeof target, "/proc/%d/fd/3", (int)child);
    CU_ASSERT_EQUAL(pareng_attach(&att, target), -ESRCH);
    /* this process, no engine */
    snprintf(target, sizeof target, "%d", (int)getpid());
    CU_ASSERT_EQUAL(pareng_attach(&att, target), -ENOENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "runs no pareng engine"));
    snprintf(target, sizeof target, "/proc/%d/fd/999999", (int)getpid());
    CU_ASSERT_EQUAL(pareng_attach(&att, target), -ENOENT);
    /* pids past an int wrapped to another process (4294967297 read as 1) */
    static const char *const malformed[] = {
        "", "abc", "-1", "0", "12x", " 1", "+1", "99999999999", "/tmp", "/proc/x",
        "/proc/1/fd/", "/proc/-1/fd/3", "/proc/0/fd/3", "/proc/ 1/fd/3", "/proc/1/fd/-3",
        "/proc/1/fd/3x", "/proc/99999999999/fd/3", "/proc/4294967297/fd/3",
        "/proc/1/fd/99999999999",
    };
    for (size_t k = 0; k < sizeof malformed / sizeof malformed[0]; k++)
        CU_ASSERT_EQUAL(pareng_attach(&att, malformed[k]), -EINVAL);
}

/* A process of another user: root makes one (uid 65534); others have init. */
static void test_attach_refuses_another_users_engine(void)
{
    pid_t foreign = 1;
    if (geteuid() == 0) {
        int ready[2];
        CU_ASSERT_FATAL(pipe(ready) == 0);
        foreign = fork();
        if (foreign == 0) {
            /* an engine's memory of its own, under the other user */
            if (setgid(65534) < 0 || setuid(65534) < 0)
                _exit(1);
            pareng_engine *e;
            if (pareng_start(&e, NULL) < 0)
                _exit(2);
            ssize_t ignored = write(ready[1], "x", 1);
            (void)ignored;
            pause();
            _exit(0);
        }
        close(ready[1]);
        char c;
        CU_ASSERT_EQUAL_FATAL(read(ready[0], &c, 1), 1);
        close(ready[0]);
    }
    char target[64];
    snprintf(target, sizeof target, "%d", (int)foreign);
    pareng_attached *att = NULL;
    CU_ASSERT_EQUAL(pareng_attach(&att, target), -EACCES);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "another user"));
    snprintf(target, sizeof target, "/proc/%d/fd/3", (int)foreign);
    CU_ASSERT_EQUAL(pareng_attach(&att, target), -EACCES);
    pareng_engine_ref refs[4];
    CU_ASSERT_EQUAL(pareng_engines_find(foreign, refs, 4), -EACCES);
    CU_ASSERT(pareng_engines_find(0, refs, 4) >= 0);
    for (int k = 0; k < pareng_engines_find(0, refs, 4) && k < 4; k++)
        CU_ASSERT_NOT_EQUAL(refs[k].pid, foreign);
    if (foreign != 1) {
        kill(foreign, SIGKILL);
        waitpid(foreign, NULL, 0);
    }
}

/* A memfd named as an engine's, sealed against shrinking as an engine's is */
static int posing_memfd(void)
{
    int fd = memfd_create("pareng-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
    return fd;
}

/* What is not an engine's memory, or not of this version, is refused before anything in it is
 * believed: a memfd of the same name full of junk, one with the magic but another layout, one
 * that may shrink under the watcher (which a process posing as an engine did, for a SIGBUS), a
 * plain file, a FIFO (whose open waited for a writer). */
static void test_attach_refuses_garbage(void)
{
    int junk = posing_memfd();
    static char bytes[1 << 20]; /* more than an arena's header (the inbox is 32 KiB of it) */
    for (size_t k = 0; k < sizeof bytes; k++)
        bytes[k] = (char)(k * 131 + 7);
    CU_ASSERT_EQUAL(write(junk, bytes, sizeof bytes), (ssize_t)sizeof bytes);
    int other_layout = posing_memfd();
    uint64_t magic = 0x676e657261706170ull;
    uint32_t layout = 1;
    memcpy(bytes, &magic, sizeof magic);
    memcpy(bytes + sizeof magic, &layout, sizeof layout);
    CU_ASSERT_EQUAL(write(other_layout, bytes, sizeof bytes), (ssize_t)sizeof bytes);
    int small = posing_memfd();
    CU_ASSERT_EQUAL(write(small, bytes, 16), 16);
    int unsealed = memfd_create("pareng-arena", MFD_CLOEXEC);
    CU_ASSERT_EQUAL(write(unsealed, bytes, sizeof bytes), (ssize_t)sizeof bytes);
    char fifo_path[] = "/tmp/pareng-test-fifo-XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(fifo_path) != NULL);
    char fifo_file[64];
    snprintf(fifo_file, sizeof fifo_file, "%s/fifo", fifo_path);
    CU_ASSERT_FATAL(mkfifo(fifo_file, 0600) == 0);
    int fifo = open(fifo_file, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* no writer */
    int not_ours = memfd_create("something-else", MFD_CLOEXEC);
    CU_ASSERT_EQUAL(write(not_ours, bytes, sizeof bytes), (ssize_t)sizeof bytes);
    struct {
        int fd;
        const char *says;
    } cases[] = {{junk, "no magic"},  {other_layout, "layout"}, {small, "too small"},
                 {unsealed, "not sealed against shrinking"}, {not_ours, "not a pareng"},
                 {STDIN_FILENO, "not a pareng"}, {fifo, "not a pareng"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char target[64];
        snprintf(target, sizeof target, "/proc/%d/fd/%d", (int)getpid(), cases[k].fd);
        pareng_attached *att = NULL;
        CU_ASSERT_EQUAL(pareng_attach(&att, target), -EPROTO);
        CU_ASSERT_PTR_NULL(att);
        if (!strstr(pareng_last_error(), cases[k].says))
            fprintf(stderr, "case %zu: %s\n", k, pareng_last_error());
        CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), cases[k].says));
    }
    pareng_engine_ref refs[4];
    CU_ASSERT_EQUAL(pareng_engines_find(getpid(), refs, 4), 0); /* none of them is listed */
    close(junk);
    close(other_layout);
    close(small);
    close(unsealed);
    close(not_ours);
    close(fifo);
    unlink(fifo_file);
    rmdir(fifo_path);
}

/* A trace of runs: per worker, states in time order; one steal event per steal the counters
 * count; then off again. */
static void test_trace_holds_what_the_counters_count(void)
{
    pareng_engine *e = testing_start_engine(2, 0, 0);
    CU_ASSERT_EQUAL(pareng_trace_begin(e, 1u << 16), 0);
    CU_ASSERT_EQUAL(pareng_trace_begin(e, 1u << 16), -EBUSY);
    uint64_t r = 0;
    CU_ASSERT_EQUAL(PARENG_RUN_CUTOFF(e, PARENG_CUTOFF_NONE, tree, &r, 18), 0);
    CU_ASSERT_EQUAL(r, (1u << 18) - 1);
    _Atomic int *taken = pareng_alloc(e, sizeof *taken);
    CU_ASSERT_FATAL(taken != NULL);
    atomic_store(taken, 0);
    int both = 0;
    CU_ASSERT_EQUAL(PARENG_RUN_CUTOFF(e, PARENG_CUTOFF_NONE, held, &both, taken), 0);
    CU_ASSERT_EQUAL(both, 2); /* so each worker's trace holds a run */
    CU_ASSERT_EQUAL(pareng_free(e, taken), 0);
    pareng_attached *att;
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    CU_ASSERT_EQUAL_FATAL(pareng_attach(&att, pid), 0);
    pareng_worker_view v[2];
    CU_ASSERT(all_asleep(att, v, 2)); /* the counters and the trace stand still */
    pareng_detach(att);
    unsigned running = 0;
    for (unsigned i = 0; i < 2; i++) {
        const pareng_trace_event *ev;
        size_t n;
        uint64_t dropped = 1;
        CU_ASSERT_EQUAL_FATAL(pareng_trace_events(e, i, &ev, &n, &dropped), 0);
        CU_ASSERT_EQUAL(dropped, 0);
        pareng_stats s;
        pareng_engine_stats(e, i, &s);
        uint64_t steals = 0;
        for (size_t k = 0; k < n; k++) {
            CU_ASSERT(k == 0 || ev[k].ns >= ev[k - 1].ns);
            if (ev[k].kind == PARENG_TRACE_STEAL) {
                steals++;
                CU_ASSERT(ev[k].value < 2);
            } else {
                CU_ASSERT_EQUAL(ev[k].kind, PARENG_TRACE_STATE);
                CU_ASSERT(ev[k].value < PARENG_STATES);
                running += ev[k].value == PARENG_STATE_RUNNING;
            }
        }
        CU_ASSERT_EQUAL(steals, s.steals + s.leapfrogs);
        CU_ASSERT(n > 0);
    }
    CU_ASSERT(running >= 1);
    CU_ASSERT_EQUAL(pareng_trace_events(e, 2, NULL, NULL, NULL), -EINVAL);
    pareng_trace_end(e);
    const pareng_trace_event *ev;
    size_t n;
    CU_ASSERT_EQUAL(pareng_trace_events(e, 0, &ev, &n, NULL), -EINVAL);
    CU_ASSERT_EQUAL(pareng_trace_begin(e, 0), -EINVAL);
    CU_ASSERT_EQUAL(pareng_trace_begin(e, (size_t)1 << 40), -ENOMEM);
    pareng_stop(e);
}

static pareng_scale measure_tree(pareng_engine *e, uint64_t burden_ns, bool fan_out,
                                 unsigned n, uint64_t expect)
{
    pareng_scale s = {0};
    uint64_t r = 0;
    CU_ASSERT_EQUAL(pareng_scale_begin(e, burden_ns), 0);
    int rc = fan_out ? PARENG_RUN(e, fan, &r, n) : PARENG_RUN(e, tree, &r, n);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(r, expect);
    CU_ASSERT_EQUAL(pareng_scale_end(e, &s), 0);
    CU_ASSERT(s.work_ns >= s.span_ns);
    CU_ASSERT(s.burdened_span_ns >= s.span_ns);
    return s;
}

/* The measuring mode counts every task of a tree of known shape, and its depth; the cutoff of
 * the engine (automatic here) does not hide any. */
static void test_scale_counts_tasks_and_depth(void)
{
    pareng_engine *e = testing_start_engine(1, 0, 0);
    for (unsigned d = 1; d <= 14; d++) {
        pareng_scale s = measure_tree(e, 0, false, d, (1u << d) - 1);
        CU_ASSERT_EQUAL(s.tasks, (1u << d) - 1);
        CU_ASSERT_EQUAL(s.span_tasks, d);
    }
    pareng_scale s = measure_tree(e, 0, true, 1000, 1001);
    CU_ASSERT_EQUAL(s.tasks, 1001);
    CU_ASSERT_EQUAL(s.span_tasks, 2);
    /* every path of the binary tree of depth 4 has 3 spawned tasks, each burdened */
    s = measure_tree(e, 1000000, false, 4, 15);
    CU_ASSERT(s.burdened_span_ns >= 3000000);
    CU_ASSERT(s.burdened_span_ns < s.span_ns + 3000000 + 100000000);
    /* the work of a wide tree is spread: its span is a small part of it */
    s = measure_tree(e, 0, true, 20000, 20001);
    CU_ASSERT(s.span_ns < s.work_ns);
    /* back to normal runs, and nothing to report */
    uint64_t r = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, tree, &r, 10), 0);
    CU_ASSERT_EQUAL(r, 1023);
    CU_ASSERT_EQUAL(pareng_scale_end(e, &s), -EINVAL);
    pareng_stop(e);
    /* one worker, no IO */
    e = testing_start_engine(2, 0, 0);
    CU_ASSERT_EQUAL(pareng_scale_begin(e, 0), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "one worker"));
    pareng_stop(e);
}

int main(void)
{
    CU_TestInfo observe[] = {
        {"attached view = the engine's own counters", test_attached_view_matches_the_engines_own},
        {"attach refuses the dead and the engineless",
         test_attach_refuses_the_dead_and_the_engineless},
        {"attach refuses another user's engine", test_attach_refuses_another_users_engine},
        {"attach refuses garbage", test_attach_refuses_garbage},
        {"an engine changed under the watcher", test_a_watched_engine_changed_under_the_watcher},
        {"a trace holds what the counters count", test_trace_holds_what_the_counters_count},
        {"scale: tasks and depth of known trees", test_scale_counts_tasks_and_depth},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("observe", observe),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
