/*
 * short-jobs - where the time of a short job goes, in one process (docs/performance.md, "Short
 * jobs"):
 *
 *   short-jobs start [ROUNDS]      pareng_plan_create alone, then pareng_start (its own plan
 *                                  included), one fib(1) root, pareng_stop: means of ROUNDS
 *   short-jobs handover GAP_US     a warm 2-worker engine: sleep GAP_US, then time one fib(1)
 *                                  root there and back; median, p10, p90 of 201
 *   short-jobs idle WORKERS SEC    an engine idle for SEC seconds: its workers' CPU time
 *                                  (utime + stime, /proc/PID/stat), then one root's time
 *   short-jobs fork [ROUNDS]       the floor under a start: fork, _exit and waitpid of this
 *                                  process (it links libpareng); means
 *
 * Only the public API; PARENG_TOPOLOGY_CACHE=false in the environment measures the start
 * without the topology cache.
 */
#include <pareng.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

PARENG_TASK_1(uint64_t, one, unsigned, n)
{
    return n;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

static pareng_engine *start(unsigned workers)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = workers;
    pareng_engine *e;
    if (pareng_start(&e, &cfg) < 0) {
        fprintf(stderr, "short-jobs: %s\n", pareng_last_error());
        exit(1);
    }
    return e;
}

static void root(pareng_engine *e)
{
    uint64_t out = 0;
    if (PARENG_RUN(e, one, &out, 1) < 0 || out != 1) {
        fprintf(stderr, "short-jobs: run failed: %s\n", pareng_last_error());
        exit(1);
    }
}

static void measure_start(unsigned rounds)
{
    double plan = 0, started = 0, ran = 0, stopped = 0;
    for (unsigned i = 0; i < rounds; i++) {
        double t0 = now_us();
        pareng_plan *p;
        if (pareng_plan_create(&p, NULL) < 0) {
            fprintf(stderr, "short-jobs: %s\n", pareng_last_error());
            exit(1);
        }
        pareng_plan_destroy(p);
        double t1 = now_us();
        pareng_engine *e = start(0);
        double t2 = now_us();
        root(e);
        double t3 = now_us();
        pareng_stop(e);
        double t4 = now_us();
        plan += t1 - t0, started += t2 - t1, ran += t3 - t2, stopped += t4 - t3;
    }
    printf("means of %u rounds: plan %.3f ms, start %.3f ms (its plan included), first root "
           "%.3f ms, stop %.3f ms\n",
           rounds, plan / rounds / 1e3, started / rounds / 1e3, ran / rounds / 1e3,
           stopped / rounds / 1e3);
}

static void measure_handover(unsigned gap_us)
{
    enum { RUNS = 201 };
    pareng_engine *e = start(2);
    double times[RUNS];
    for (unsigned i = 0; i < RUNS; i++) {
        if (gap_us)
            usleep(gap_us);
        double t0 = now_us();
        root(e);
        times[i] = now_us() - t0;
    }
    pareng_stop(e);
    qsort(times, RUNS, sizeof *times, compare_double);
    printf("after %u us idle: root there and back, median %.1f us, p10 %.1f, p90 %.1f (%d "
           "runs)\n",
           gap_us, times[RUNS / 2], times[RUNS / 10], times[RUNS * 9 / 10], RUNS);
}

static long cpu_ticks(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *after = strrchr(buf, ')');
    unsigned long user = 0, system = 0;
    if (!after || sscanf(after + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &user,
                         &system) != 2)
        return -1;
    return (long)(user + system);
}

static void measure_idle(unsigned workers, unsigned seconds)
{
    pareng_engine *e = start(workers);
    root(e);
    long before = 0, after = 0;
    for (unsigned i = 0; i < workers; i++)
        before += cpu_ticks(pareng_engine_worker_pid(e, i));
    sleep(seconds);
    for (unsigned i = 0; i < workers; i++)
        after += cpu_ticks(pareng_engine_worker_pid(e, i));
    double t0 = now_us();
    root(e);
    double woke = now_us() - t0;
    pareng_stop(e);
    long hz = sysconf(_SC_CLK_TCK);
    printf("%u idle workers, %u s: %ld clock ticks (%ld a second) = %.3f%% of one core; then "
           "one root there and back in %.0f us\n",
           workers, seconds, after - before, hz,
           100.0 * (double)(after - before) / (double)hz / seconds, woke);
}

static void measure_fork(unsigned rounds)
{
    double forked = 0, reaped = 0;
    for (unsigned i = 0; i < rounds; i++) {
        double t0 = now_us();
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        double t1 = now_us();
        waitpid(pid, NULL, 0);
        forked += t1 - t0, reaped += now_us() - t1;
    }
    printf("means of %u rounds: fork %.3f ms, _exit + waitpid %.3f ms\n", rounds,
           forked / rounds / 1e3, reaped / rounds / 1e3);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    unsigned a = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 0;
    unsigned b = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 0;
    if (!strcmp(what, "start"))
        measure_start(a ? a : 200);
    else if (!strcmp(what, "handover"))
        measure_handover(a);
    else if (!strcmp(what, "idle") && a)
        measure_idle(a, b ? b : 10);
    else if (!strcmp(what, "fork"))
        measure_fork(a ? a : 200);
    else {
        fprintf(stderr, "usage: short-jobs start [ROUNDS] | handover GAP_US | idle WORKERS "
                        "[SECONDS] | fork [ROUNDS]\n");
        return 2;
    }
    return 0;
}
