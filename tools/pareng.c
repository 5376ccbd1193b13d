/*
 * pareng - the command line: parses, calls the public API of libpareng, prints.
 *
 *   pareng run fib N [--cores auto|K|LIST] [--grain G] [--json] [--stats]
 *   pareng topo [--cores auto|K|LIST] [--topology FILE.xml] [--json]
 *   pareng bench fib N [...] | pareng bench spawn [--runs R]     (tools/bench.c)
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

#include "cli.h"
#include "pareng.h"

static const char usage[] =
    "usage: pareng run fib N [--cores auto|K|LIST] [--grain auto|G] [--serial] [--json] [--stats]\n"
    "       pareng map fib N... [--cores auto|K|LIST] [--grain auto|G] [--json]\n"
    "       pareng topo [--cores auto|K|LIST] [--topology FILE.xml] [--json]\n"
    "       pareng bench fib N [--cores auto|LIST] [--grain auto|G] [--runs R] [--warmup W]\n"
    "                    [--json FILE] [--csv FILE] [--plot FILE.svg] [--peers]\n"
    "       pareng bench spawn [--runs R]\n"
    "       pareng clean\n"
    "       pareng --help | --version\n"
    "\n"
    "  run fib N      compute fib(N), 0 <= N <= 93, with every call above the grain a task\n"
    "  --cores auto   one worker per physical core this process may use (default)\n"
    "  --cores K      K workers (more than the cores is allowed, up to 512)\n"
    "  --cores LIST   one worker pinned on each listed CPU: OS numbers as taskset takes\n"
    "                 them (0,2-3), or hwloc logical locations core:0-3 or pu:0,2\n"
    "  --grain G      calls with n < G run as plain serial C; 0 makes every call a task\n"
    "  --grain auto   the engine chooses (the default; see docs/design.md)\n"
    "  --serial       plain serial C in this process, no engine: the baseline\n"
    "  --json         print one JSON object instead of text\n"
    "  --stats        add a per-worker table (tasks, steals, leapfrogs, sleeps, busy/idle)\n"
    "  map fib N...   fib of each N as an independent task, printed as a Python list\n"
    "  topo           the machine as hwloc shows it, and where --cores puts the workers\n"
    "                 and whom each one steals from, nearest first\n"
    "  --topology F   (topo) an hwloc XML file instead of this machine\n"
    "  bench          timed runs of fib against serial C (and OpenMP, oneTBB with --peers)\n"
    "                 for each worker count of --cores (auto: 1, 2, 4, ... all cores);\n"
    "                 bench spawn: the cost of a spawn+sync and the latency of a steal\n"
    "  clean          remove shared-memory segments left by engines whose owner died\n"
    "\n"
    "See docs/cli.md for the details.\n";

int bad_input(const char *fmt, ...)
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
bool parse_unsigned(const char *s, unsigned long max, unsigned long *out)
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
    bool map;        /* pareng map: many N, a list out */
    const char *workload;
    char **n_texts;  /* the N arguments, pointers into argv */
    int n_count;
    const char *cores;
    unsigned grain;
    bool json, stats, serial;
} run_options;

/* --name VALUE or --name=VALUE; returns the value or NULL (with *missing set). */
const char *option_value(int argc, char **argv, int *i, const char *name, bool *missing)
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

static int parse_run(int argc, char **argv, run_options *o, bool map)
{
    *o = (run_options){.map = map, .cores = "auto", .grain = PARENG_GRAIN_AUTO};
    o->n_texts = calloc(argc > 0 ? (size_t)argc : 1, sizeof *o->n_texts);
    if (!o->n_texts)
        return bad_input("out of memory");
    int positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *value;
        bool missing = false;
        if ((value = option_value(argc, argv, &i, "--cores", &missing))) {
            o->cores = value;
        } else if ((value = option_value(argc, argv, &i, "--grain", &missing))) {
            unsigned long g;
            if (strcmp(value, "auto") == 0)
                g = PARENG_GRAIN_AUTO;
            else if (!parse_unsigned(value, PARENG_GRAIN_AUTO - 1, &g))
                return bad_input("--grain needs auto or a non-negative integer, not '%s'",
                                 value);
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
        } else if (positional++ == 0) {
            o->workload = arg;
        } else if (map || o->n_count == 0) {
            o->n_texts[o->n_count++] = argv[i];
        } else {
            return bad_input("unexpected argument '%s'", arg);
        }
    }
    if (!o->workload)
        return bad_input(map ? "map needs a workload: pareng map fib N..."
                             : "run needs a workload: pareng run fib N");
    if (strcmp(o->workload, "fib") != 0)
        return bad_input("unknown workload '%s' (known: fib)", o->workload);
    if (o->n_count == 0)
        return bad_input("fib needs N, an integer from 0 to %d", PARENG_FIB_MAX);
    return 0;
}

/* Every N: a whole number from 0 to PARENG_FIB_MAX. */
static int parse_fib_ns(const run_options *o, unsigned *ns)
{
    for (int k = 0; k < o->n_count; k++) {
        unsigned long n;
        if (!parse_unsigned(o->n_texts[k], ULONG_MAX, &n))
            return bad_input("fib needs N, an integer from 0 to %d, not '%s'", PARENG_FIB_MAX,
                             o->n_texts[k]);
        if (n > PARENG_FIB_MAX)
            return bad_input("fib(%lu) does not fit in 64 bits: N must be at most %d", n,
                             PARENG_FIB_MAX);
        ns[k] = (unsigned)n;
    }
    return 0;
}

/* What a run printed: fib(N) = R, or for map the results as Python prints a list. */
static void print_results(const run_options *o, const unsigned *ns, const uint64_t *results)
{
    if (!o->map) {
        printf(o->json ? "\"n\":%u,\"result\":%llu" : "fib(%u) = %llu\n", ns[0],
               (unsigned long long)results[0]);
        return;
    }
    if (o->json) {
        printf("\"map\":true,\"n\":[");
        for (int k = 0; k < o->n_count; k++)
            printf("%s%u", k ? "," : "", ns[k]);
        printf("],\"result\":");
    }
    printf("[");
    for (int k = 0; k < o->n_count; k++)
        printf("%s%llu", k ? (o->json ? "," : ", ") : "", (unsigned long long)results[k]);
    printf(o->json ? "]" : "]\n");
}

/* --cores into the configuration: auto, a count, or a list for the engine to parse. */
int configure_cores(const char *cores, pareng_config *cfg)
{
    unsigned long k;
    if (strcmp(cores, "auto") == 0)
        return 0;
    if (strspn(cores, "0123456789") == strlen(cores) && *cores &&
        !parse_unsigned(cores, ULONG_MAX, &k))
        return bad_input("--cores %s: the most is %d workers", cores, PARENG_MAX_WORKERS);
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

/* Workers sharing a core (more than the cores) or even a PU (a list naming one twice). */
static void warn_if_sharing(const pareng_plan *plan)
{
    unsigned workers = pareng_plan_workers(plan), cores = pareng_plan_cores(plan);
    bool shared_pu = false;
    for (unsigned i = 0; i < workers; i++) {
        pareng_placement pl;
        pareng_plan_placement(plan, i, &pl);
        shared_pu |= pl.shared_pu != 0;
    }
    if (workers > cores)
        fprintf(stderr, "pareng: warning: %u workers on %u cores: workers share cores\n",
                workers, cores);
    else if (shared_pu)
        fprintf(stderr, "pareng: warning: the CPU list puts several workers on one CPU\n");
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

static void print_stats_json(const pareng_stats *stats, unsigned n)
{
    printf(",\"stats\":[");
    for (unsigned i = 0; i < n; i++) {
        const pareng_stats *s = &stats[i];
        printf("%s{\"worker\":%u", i ? "," : "", i);
#define JSON_FIELD(f) printf(",\"" #f "\":%llu", (unsigned long long)s->f);
        STAT_FIELDS(JSON_FIELD)
#undef JSON_FIELD
        printf(",\"busy_seconds\":%.6f,\"idle_seconds\":%.6f}", (double)s->busy_ns * 1e-9,
               (double)s->idle_ns * 1e-9);
    }
    printf("]");
}

static void print_stats_table(const pareng_stats *stats, unsigned n)
{
    printf("%6s", "worker");
#define HEAD(f) printf(" %12s", #f);
    STAT_FIELDS(HEAD)
#undef HEAD
    printf(" %10s %10s\n", "busy s", "idle s");
    for (unsigned i = 0; i < n; i++) {
        const pareng_stats *s = &stats[i];
        printf("%6u", i);
#define CELL(f) printf(" %12llu", (unsigned long long)s->f);
        STAT_FIELDS(CELL)
#undef CELL
        printf(" %10.6f %10.6f\n", (double)s->busy_ns * 1e-9, (double)s->idle_ns * 1e-9);
    }
}

/* stdout could not be written (a full disk, a closed pipe): say so, and fail. */
int finish_output(void)
{
    if (fflush(stdout) == 0 && !ferror(stdout))
        return 0;
    fprintf(stderr, "pareng: cannot write the output: %s\n", strerror(errno));
    return EXIT_RUN_FAILED;
}

static int run_serial(const run_options *o, const unsigned *ns, uint64_t *results)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int k = 0; k < o->n_count; k++)
        results[k] = pareng_fib_serial(ns[k]);
    double seconds = seconds_since(&t0);
    if (o->json) {
        printf("{\"workload\":\"fib\",");
        print_results(o, ns, results);
        printf(",\"serial\":true,\"workers\":0,\"seconds\":%.6f}\n", seconds);
    } else {
        print_results(o, ns, results);
        printf("time: %.6f s, serial C\n", seconds);
    }
    return finish_output();
}

static int compute(const run_options *o, const unsigned *ns, uint64_t *results);

/* pareng run fib N and pareng map fib N...: one engine, one computation, then the output. */
static int command_run(int argc, char **argv, bool map)
{
    run_options o;
    int rc = parse_run(argc, argv, &o, map);
    unsigned *ns = rc ? NULL : calloc((size_t)o.n_count, sizeof *ns);
    uint64_t *results = rc ? NULL : calloc((size_t)o.n_count, sizeof *results);
    if (!rc && (!ns || !results))
        rc = bad_input("out of memory");
    if (!rc)
        rc = parse_fib_ns(&o, ns);
    if (!rc)
        rc = compute(&o, ns, results);
    free(ns);
    free(results);
    free(o.n_texts);
    return rc;
}

static int compute(const run_options *o, const unsigned *ns, uint64_t *results)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    int rc = configure_cores(o->cores, &cfg);
    if (rc)
        return rc;
    if (o->serial) {
        /* the configuration is not used, but a wrong list is still wrong */
        pareng_plan *plan = NULL;
        if (cfg.cpus && (rc = pareng_plan_create(&plan, &cfg)) < 0) {
            fprintf(stderr, "pareng: --cores: %s\n", pareng_last_error());
            return EXIT_BAD_INPUT;
        }
        pareng_plan_destroy(plan);
        return run_serial(o, ns, results);
    }

    install_signal_handlers();
    pareng_engine *e;
    rc = pareng_start(&e, &cfg);
    if (rc < 0) {
        bool bad = rc == -EINVAL || rc == -ERANGE;
        fprintf(stderr, "pareng: %s%s\n", bad ? "--cores: " : "", pareng_last_error());
        return bad ? EXIT_BAD_INPUT : EXIT_RUN_FAILED;
    }
    unsigned workers = pareng_engine_workers(e);
    warn_if_sharing(pareng_engine_plan(e));

    running = e;
    if (interrupted_by)
        pareng_cancel(e);
    /* Like the engine's start, the one-time measurement behind --grain auto is not part of
     * the computation's time. */
    unsigned grain = o->grain == PARENG_GRAIN_AUTO ? pareng_fib_auto_grain() : o->grain;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = o->map ? pareng_fib_map(e, ns, (size_t)o->n_count, grain, results)
                : pareng_fib(e, ns[0], grain, results);
    double seconds = seconds_since(&t0);
    /* Everything the output needs is copied out before the engine stops, and the engine stops
     * before anything is printed: a reader that goes away (SIGPIPE) cannot leave workers or a
     * segment behind. */
    pareng_stats *stats = calloc(workers, sizeof *stats);
    for (unsigned i = 0; stats && i < workers; i++)
        pareng_engine_stats(e, i, &stats[i]);
    char failure[256];
    snprintf(failure, sizeof failure, "%s", pareng_last_error());
    running = NULL; /* the handler must not touch an engine being stopped */
    pareng_stop(e);
    if (rc < 0) {
        free(stats);
        if (interrupted_by) /* a signal to the whole group may have killed a worker first */
            return 128 + interrupted_by;
        if (rc != -ECANCELED)
            fprintf(stderr, "pareng: run failed: %s\n", failure);
        return EXIT_RUN_FAILED;
    }
    if (!stats) {
        fprintf(stderr, "pareng: out of memory\n");
        return EXIT_RUN_FAILED;
    }
    if (o->json) {
        printf("{\"workload\":\"fib\",");
        print_results(o, ns, results);
        printf(",\"grain\":%u,\"grain_auto\":%s,\"workers\":%u,\"seconds\":%.6f", grain,
               o->grain == PARENG_GRAIN_AUTO ? "true" : "false", workers, seconds);
        print_stats_json(stats, workers);
        printf("}\n");
    } else {
        print_results(o, ns, results);
        printf("time: %.6f s, workers: %u, grain: ", seconds, workers);
        if (o->grain == PARENG_GRAIN_AUTO)
            printf("auto (%u)\n", grain);
        else
            printf("%u\n", grain);
        if (o->stats)
            print_stats_table(stats, workers);
    }
    free(stats);
    return finish_output();
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
    return finish_output();
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
        return command_run(argc - 2, argv + 2, false);
    if (strcmp(command, "map") == 0)
        return command_run(argc - 2, argv + 2, true);
    if (strcmp(command, "topo") == 0)
        return command_topo(argc - 2, argv + 2);
    if (strcmp(command, "bench") == 0)
        return command_bench(argc - 2, argv + 2);
    if (strcmp(command, "clean") == 0)
        return command_clean(argc - 2, argv + 2);
    return bad_input("unknown command '%s'", command);
}
