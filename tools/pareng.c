/*
 * pareng - the command line: parses, calls the public API of libpareng, prints.
 *
 *   pareng run fib N [--cores auto|K|LIST] [--grain G] [--json] [--stats]
 *   pareng clean
 *   pareng --help | --version
 *
 * Exit status: 0 success, 1 the run failed (a worker died, no memory), 2 bad input (nothing
 * was started), 128+signal when interrupted by SIGINT or SIGTERM.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pareng.h"

#define EXIT_RUN_FAILED 1
#define EXIT_BAD_INPUT 2

static const char usage[] =
    "usage: pareng run fib N [--cores auto|K|LIST] [--grain G] [--serial] [--json] [--stats]\n"
    "       pareng clean\n"
    "       pareng --help | --version\n"
    "\n"
    "  run fib N      compute fib(N), 0 <= N <= 93, with every call above the grain a task\n"
    "  --cores auto   one worker per physical core this process may use (default)\n"
    "  --cores K      K workers (more than the cores is allowed, up to 512)\n"
    "  --cores LIST   one worker pinned on each listed CPU: OS numbers as taskset takes\n"
    "                 them (0,2-3), or hwloc logical locations core:0-3 or pu:0,2\n"
    "  --grain G      calls with n < G run as plain serial C; 0 makes every call a task\n"
    "                 (default 20)\n"
    "  --serial       plain serial C in this process, no engine: the baseline\n"
    "  --json         print one JSON object instead of text\n"
    "  --stats        add a per-worker table (tasks, steals, leapfrogs, sleeps, busy/idle)\n"
    "  clean          remove shared-memory segments left by engines whose owner died\n"
    "\n"
    "See docs/cli.md for the details.\n";

static __attribute__((format(printf, 1, 2))) int bad_input(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pareng: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (try 'pareng --help')\n", stderr);
    va_end(ap);
    return EXIT_BAD_INPUT;
}

/* A whole non-negative decimal number, nothing before or after; false otherwise. */
static bool parse_unsigned(const char *s, unsigned long max, unsigned long *out)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || errno == ERANGE || v > max)
        return false;
    *out = v;
    return true;
}

typedef struct run_options {
    const char *workload;
    const char *n_text;
    const char *cores;
    unsigned grain;
    bool json, stats, serial;
} run_options;

/* --name VALUE or --name=VALUE; returns the value or NULL (with *missing set). */
static const char *option_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t len = strlen(name);
    if (strncmp(argv[*i], name, len) == 0 && argv[*i][len] == '=')
        return argv[*i] + len + 1;
    if (strcmp(argv[*i], name) != 0)
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static int parse_run(int argc, char **argv, run_options *o)
{
    *o = (run_options){.cores = "auto", .grain = PARENG_DEFAULT_GRAIN};
    int positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *value;
        bool missing = false;
        if ((value = option_value(argc, argv, &i, "--cores", &missing))) {
            o->cores = value;
        } else if ((value = option_value(argc, argv, &i, "--grain", &missing))) {
            unsigned long g;
            if (!parse_unsigned(value, UINT_MAX, &g))
                return bad_input("--grain needs a non-negative integer, not '%s'", value);
            o->grain = (unsigned)g;
        } else if (missing) {
            return bad_input("option %s needs a value", arg);
        } else if (strcmp(arg, "--json") == 0) {
            o->json = true;
        } else if (strcmp(arg, "--stats") == 0) {
            o->stats = true;
        } else if (strcmp(arg, "--serial") == 0) {
            o->serial = true;
        } else if (arg[0] == '-' && arg[1] != '\0' && (arg[1] < '0' || arg[1] > '9')) {
            return bad_input("unknown option '%s'", arg);
        } else if (positional == 0) {
            o->workload = arg;
            positional++;
        } else if (positional == 1) {
            o->n_text = arg;
            positional++;
        } else {
            return bad_input("unexpected argument '%s'", arg);
        }
    }
    if (!o->workload)
        return bad_input("run needs a workload: pareng run fib N");
    if (strcmp(o->workload, "fib") != 0)
        return bad_input("unknown workload '%s' (known: fib)", o->workload);
    if (!o->n_text)
        return bad_input("fib needs N, an integer from 0 to %d", PARENG_FIB_MAX);
    return 0;
}

/* --cores into the configuration: auto, a count, or a list for the engine to parse. */
static int configure_cores(const char *cores, pareng_config *cfg)
{
    unsigned long k;
    if (strcmp(cores, "auto") == 0)
        return 0;
    if (parse_unsigned(cores, ULONG_MAX, &k)) {
        if (k == 0)
            return bad_input("--cores 0: at least one worker is needed");
        if (k > PARENG_MAX_WORKERS)
            return bad_input("--cores %s: the most is %d workers", cores, PARENG_MAX_WORKERS);
        cfg->workers = (unsigned)k;
        return 0;
    }
    if (!*cores)
        return bad_input("--cores needs auto, a count or a CPU list, not an empty string");
    cfg->cpus = cores;
    return 0;
}

static pareng_engine *running; /* for the signal handler */
static volatile sig_atomic_t interrupted_by;

static void on_signal(int sig)
{
    interrupted_by = sig;
    if (running)
        pareng_cancel(running);
}

static void install_signal_handlers(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

#define STAT_FIELDS(X)                                                                        \
    X(tasks) X(spawns) X(steals) X(steal_fails) X(leapfrogs) X(stolen_from) X(shares)         \
    X(overflows) X(sleeps) X(near_steals)

static void print_stats_json(pareng_engine *e)
{
    unsigned n = pareng_engine_workers(e);
    printf(",\"stats\":[");
    for (unsigned i = 0; i < n; i++) {
        pareng_stats s;
        pareng_engine_stats(e, i, &s);
        printf("%s{\"worker\":%u", i ? "," : "", i);
#define JSON_FIELD(f) printf(",\"" #f "\":%llu", (unsigned long long)s.f);
        STAT_FIELDS(JSON_FIELD)
#undef JSON_FIELD
        printf(",\"busy_seconds\":%.6f,\"idle_seconds\":%.6f}", (double)s.busy_ns * 1e-9,
               (double)s.idle_ns * 1e-9);
    }
    printf("]");
}

static void print_stats_table(pareng_engine *e)
{
    unsigned n = pareng_engine_workers(e);
    printf("%6s", "worker");
#define HEAD(f) printf(" %12s", #f);
    STAT_FIELDS(HEAD)
#undef HEAD
    printf(" %10s %10s\n", "busy s", "idle s");
    for (unsigned i = 0; i < n; i++) {
        pareng_stats s;
        pareng_engine_stats(e, i, &s);
        printf("%6u", i);
#define CELL(f) printf(" %12llu", (unsigned long long)s.f);
        STAT_FIELDS(CELL)
#undef CELL
        printf(" %10.6f %10.6f\n", (double)s.busy_ns * 1e-9, (double)s.idle_ns * 1e-9);
    }
}

static int run_serial(unsigned n, bool json)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t result = pareng_fib_serial(n);
    double seconds = seconds_since(&t0);
    if (json)
        printf("{\"workload\":\"fib\",\"n\":%u,\"result\":%llu,\"serial\":true,\"workers\":0,"
               "\"seconds\":%.6f}\n",
               n, (unsigned long long)result, seconds);
    else
        printf("fib(%u) = %llu\ntime: %.6f s, serial C\n", n, (unsigned long long)result,
               seconds);
    return 0;
}

static int command_run(int argc, char **argv)
{
    run_options o;
    int rc = parse_run(argc, argv, &o);
    if (rc)
        return rc;
    unsigned long n;
    if (!parse_unsigned(o.n_text, ULONG_MAX, &n))
        return bad_input("fib needs N, an integer from 0 to %d, not '%s'", PARENG_FIB_MAX,
                         o.n_text);
    if (n > PARENG_FIB_MAX)
        return bad_input("fib(%lu) does not fit in 64 bits: N must be at most %d", n,
                         PARENG_FIB_MAX);
    pareng_config cfg;
    pareng_config_default(&cfg);
    if ((rc = configure_cores(o.cores, &cfg)))
        return rc;
    if (o.serial)
        return run_serial((unsigned)n, o.json);

    install_signal_handlers();
    pareng_engine *e;
    rc = pareng_start(&e, &cfg);
    if (rc < 0) {
        bool bad = rc == -EINVAL || rc == -ERANGE;
        fprintf(stderr, "pareng: %s%s\n", bad ? "--cores: " : "", pareng_last_error());
        return bad ? EXIT_BAD_INPUT : EXIT_RUN_FAILED;
    }
    unsigned workers = pareng_engine_workers(e);
    const pareng_plan *plan = pareng_engine_plan(e);
    if (workers > pareng_plan_cores(plan))
        fprintf(stderr, "pareng: warning: %u workers on %u cores: workers share cores\n", workers,
                pareng_plan_cores(plan));

    running = e;
    if (interrupted_by)
        pareng_cancel(e);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t result = 0;
    rc = pareng_fib(e, (unsigned)n, o.grain, &result);
    double seconds = seconds_since(&t0);
    if (rc < 0) {
        if (rc != -ECANCELED)
            fprintf(stderr, "pareng: run failed: %s\n", pareng_last_error());
        pareng_stop(e);
        running = NULL;
        return interrupted_by ? 128 + interrupted_by : EXIT_RUN_FAILED;
    }
    if (o.json) {
        printf("{\"workload\":\"fib\",\"n\":%lu,\"result\":%llu,\"grain\":%u,\"workers\":%u,"
               "\"seconds\":%.6f",
               n, (unsigned long long)result, o.grain, workers, seconds);
        print_stats_json(e);
        printf("}\n");
    } else {
        printf("fib(%lu) = %llu\n", n, (unsigned long long)result);
        printf("time: %.6f s, workers: %u, grain: %u\n", seconds, workers, o.grain);
        if (o.stats)
            print_stats_table(e);
    }
    running = NULL;
    pareng_stop(e);
    return 0;
}

static int command_clean(int argc, char **argv)
{
    (void)argv;
    if (argc > 0)
        return bad_input("clean takes no arguments");
    int removed = pareng_clean();
    if (removed < 0) {
        fprintf(stderr, "pareng: clean: %s\n", pareng_last_error());
        return EXIT_RUN_FAILED;
    }
    printf("removed %d stale segment%s\n", removed, removed == 1 ? "" : "s");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return bad_input("a command is needed");
    const char *command = argv[1];
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(command, "--version") == 0) {
        printf("pareng %s\n", pareng_version());
        return 0;
    }
    if (strcmp(command, "run") == 0)
        return command_run(argc - 2, argv + 2);
    if (strcmp(command, "clean") == 0)
        return command_clean(argc - 2, argv + 2);
    return bad_input("unknown command '%s'", command);
}
