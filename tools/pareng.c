/*
 * pareng - the command line: parses, calls the public API of libpareng, prints.
 *
 *   pareng run fib N [--cores auto|K|LIST] [--grain G | --io-latency DUR] [--json] [--stats]
 *   pareng run http URL [--requests N] [--connections C] [--timeout DUR] [--cores ...] [--json]
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
#include <unistd.h>

#include "cli.h"
#include "pareng.h"

static const char usage[] =
    "usage: pareng run fib N [--cores auto|K|LIST] [--grain auto|G] [--serial] [--json] [--stats]\n"
    "       pareng run fib N --io-latency DUR [--io-depth K] [--cores auto|K|LIST] [--json]\n"
    "                        [--stats]\n"
    "       pareng run http URL [--requests N] [--connections C] [--timeout DUR] [--io-depth K]\n"
    "                       [--cores auto|K|LIST] [--json] [--stats]\n"
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
    "  --grain auto   the engine cuts: deep calls run as serial C (default; docs/design.md)\n"
    "  --serial       plain serial C in this process, no engine: the baseline\n"
    "  --json         print one JSON object instead of text\n"
    "  --stats        add a per-worker table (tasks, steals, leapfrogs, sleeps, busy/idle)\n"
    "  --io-latency DUR  (run fib) every leaf call first waits DUR on an io_uring timeout;\n"
    "                 every other call is a task. DUR: a whole number and ns, us, ms or s\n"
    "                 (500us, 1ms, 2s), from 1ns to 1h\n"
    "  --io-depth K   IO operations one worker may have in flight, 1 to 4096 (default 256)\n"
    "  run http URL   HTTP/1.1 GET load on http://host[:port][/path] (a name, IPv4 or [IPv6])\n"
    "                 over keep-alive connections: requests/s and latency percentiles\n"
    "  --requests N   requests in all (default 1000)\n"
    "  --connections C  connections spread over the workers (default 10, at most N)\n"
    "  --timeout DUR  for a connect and for each response (default 5s)\n"
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

/* Options that only some workloads take: each one given sets its bit in run_options.given. */
enum workload_option {
    OPT_GRAIN, OPT_SERIAL, OPT_IO_LATENCY, OPT_IO_DEPTH, OPT_REQUESTS, OPT_CONNECTIONS,
    OPT_TIMEOUT,
};
static const char *const workload_option_names[] = {
    "--grain", "--serial", "--io-latency", "--io-depth", "--requests", "--connections",
    "--timeout",
};
#define OPT(k) (1u << (k))
#define HTTP_OPTIONS (OPT(OPT_REQUESTS) | OPT(OPT_CONNECTIONS) | OPT(OPT_TIMEOUT))
#define IO_OPTIONS (OPT(OPT_IO_LATENCY) | OPT(OPT_IO_DEPTH))

/* The most IO operations in flight per worker that pareng_start accepts. */
#define DEFAULT_REQUESTS 1000
#define DEFAULT_CONNECTIONS 10
#define REQUESTS_MAX 1000000000ul
/* The longest --io-latency and --timeout: beyond it a typo is likelier than a wish. */
#define DURATION_MAX_NS 3600000000000ull

typedef struct run_options {
    bool map;        /* pareng map: many N, a list out */
    const char *workload;
    bool http;       /* run http */
    char **n_texts;  /* the N arguments (run http: the URL), pointers into argv */
    int n_count;
    const char *cores;
    unsigned given;  /* OPT() bits */
    unsigned grain;
    bool json, stats, serial;
    uint64_t io_latency_ns;
    unsigned io_depth;
    uint64_t requests;
    unsigned connections;
    uint64_t timeout_ns;
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

/* A duration: a whole number and a unit, ns, us, ms or s ("500us"), from 1 ns to
 * DURATION_MAX_NS; false otherwise. */
static bool parse_duration(const char *s, uint64_t *ns)
{
    static const struct { const char *name; uint64_t ns; } units[] = {
        {"ns", 1}, {"us", 1000}, {"ms", 1000000}, {"s", 1000000000}};
    size_t digits = strspn(s, "0123456789");
    if (digits == 0 || digits > 13) /* 13 digits hold DURATION_MAX_NS in ns */
        return false;
    uint64_t count = strtoull(s, NULL, 10);
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
        if (strcmp(s + digits, units[k].name) == 0) {
            if (count == 0 || count > DURATION_MAX_NS / units[k].ns)
                return false;
            *ns = count * units[k].ns;
            return true;
        }
    return false;
}

/* The option at argv[*i] that takes a value, with its value in *value: its index, or -1
 * (*missing set when the value is missing). */
static int workload_option_at(int argc, char **argv, int *i, const char **value, bool *missing)
{
    for (int k = 0; k < (int)(sizeof workload_option_names / sizeof workload_option_names[0]);
         k++)
        if (k != OPT_SERIAL &&
            ((*value = option_value(argc, argv, i, workload_option_names[k], missing)) ||
             *missing))
            return k;
    return -1;
}

/* One workload option's value into o; 0, or the exit status after saying why. */
static int parse_workload_option(run_options *o, int k, const char *value)
{
    unsigned long v;
    o->given |= OPT(k);
    if (k == OPT_GRAIN) {
        if (strcmp(value, "auto") == 0)
            v = PARENG_GRAIN_AUTO;
        else if (!parse_unsigned(value, PARENG_GRAIN_AUTO - 1, &v))
            return bad_input("--grain needs auto or a non-negative integer, not '%s'", value);
        o->grain = (unsigned)v;
    } else if (k == OPT_IO_LATENCY || k == OPT_TIMEOUT) {
        if (!parse_duration(value, k == OPT_IO_LATENCY ? &o->io_latency_ns : &o->timeout_ns))
            return bad_input("%s needs a duration from 1ns to 1h: a whole number and a unit, "
                             "ns, us, ms or s (500us, 2s), not '%s'", workload_option_names[k],
                             value);
    } else if (k == OPT_IO_DEPTH) {
        if (!parse_unsigned(value, PARENG_IO_DEPTH_MAX, &v) || v == 0)
            return bad_input("--io-depth needs an integer from 1 to %u, not '%s'", PARENG_IO_DEPTH_MAX,
                             value);
        o->io_depth = (unsigned)v;
    } else if (k == OPT_REQUESTS) {
        if (!parse_unsigned(value, REQUESTS_MAX, &v) || v == 0)
            return bad_input("--requests needs an integer from 1 to %lu, not '%s'",
                             REQUESTS_MAX, value);
        o->requests = v;
    } else { /* OPT_CONNECTIONS */
        if (!parse_unsigned(value, UINT_MAX, &v) || v == 0)
            return bad_input("--connections needs a positive integer, not '%s'", value);
        o->connections = (unsigned)v;
    }
    return 0;
}

/* The first option of `mask` that was given, or NULL. */
static const char *given_of(const run_options *o, unsigned mask)
{
    for (size_t k = 0; k < sizeof workload_option_names / sizeof workload_option_names[0]; k++)
        if (o->given & mask & OPT(k))
            return workload_option_names[k];
    return NULL;
}

/* Which workload takes which options, and which of them go together. */
static int check_workload_options(const run_options *o)
{
    unsigned refused = o->map    ? IO_OPTIONS | HTTP_OPTIONS
                       : o->http ? OPT(OPT_GRAIN) | OPT(OPT_SERIAL) | OPT(OPT_IO_LATENCY)
                                 : HTTP_OPTIONS;
    const char *command = o->map ? "map fib" : o->http ? "run http" : "run fib";
    const char *wrong = given_of(o, refused);
    if (wrong)
        return bad_input("%s does not take %s", command, wrong);
    if (o->given & OPT(OPT_IO_LATENCY) && (wrong = given_of(o, OPT(OPT_GRAIN) | OPT(OPT_SERIAL))))
        return bad_input("--io-latency and %s do not go together: with IO every call is a task, "
                         "and each leaf waits on the ring", wrong);
    if (!o->http && o->given & OPT(OPT_IO_DEPTH) && !(o->given & OPT(OPT_IO_LATENCY)))
        return bad_input("--io-depth is for IO work: add --io-latency DUR");
    return 0;
}

static int parse_run(int argc, char **argv, run_options *o, bool map)
{
    *o = (run_options){.map = map, .cores = "auto", .grain = PARENG_GRAIN_AUTO,
                       .requests = DEFAULT_REQUESTS, .connections = DEFAULT_CONNECTIONS};
    o->n_texts = calloc(argc > 0 ? (size_t)argc : 1, sizeof *o->n_texts);
    if (!o->n_texts)
        return bad_input("out of memory");
    int positional = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *value;
        bool missing = false;
        int option = workload_option_at(argc, argv, &i, &value, &missing);
        if (option >= 0 && !missing) {
            int rc = parse_workload_option(o, option, value);
            if (rc)
                return rc;
        } else if (!missing && (value = option_value(argc, argv, &i, "--cores", &missing))) {
            o->cores = value;
        } else if (missing) {
            return bad_input("option %s needs a value", arg);
        } else if (strcmp(arg, "--json") == 0) {
            o->json = true;
        } else if (strcmp(arg, "--stats") == 0) {
            o->stats = true;
        } else if (strcmp(arg, "--serial") == 0) {
            o->serial = true;
            o->given |= OPT(OPT_SERIAL);
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
                             : "run needs a workload: pareng run fib N, pareng run http URL");
    o->http = !map && strcmp(o->workload, "http") == 0;
    if (!o->http && strcmp(o->workload, "fib") != 0)
        return bad_input("unknown workload '%s' (known: %s)", o->workload,
                         map ? "fib" : "fib, http");
    if (o->n_count == 0)
        return o->http ? bad_input("http needs a URL: pareng run http http://host[:port]/path")
                       : bad_input("fib needs N, an integer from 0 to %d", PARENG_FIB_MAX);
    /* the default never asks for more connections than requests */
    if (o->http && !(o->given & OPT(OPT_CONNECTIONS)) && o->connections > o->requests)
        o->connections = (unsigned)o->requests;
    return check_workload_options(o);
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
    X(overflows) X(sleeps) X(near_steals) X(serial_runs)
/* shown for IO runs only: CPU runs have none */
#define IO_STAT_FIELDS(X) X(io_ops) X(io_peak) X(io_suspends)

static void print_stats_json(const pareng_stats *stats, unsigned n, bool io)
{
    printf(",\"stats\":[");
    for (unsigned i = 0; i < n; i++) {
        const pareng_stats *s = &stats[i];
        printf("%s{\"worker\":%u", i ? "," : "", i);
#define JSON_FIELD(f) printf(",\"" #f "\":%llu", (unsigned long long)s->f);
        STAT_FIELDS(JSON_FIELD)
        if (io) {
            IO_STAT_FIELDS(JSON_FIELD)
        }
#undef JSON_FIELD
        printf(",\"busy_seconds\":%.6f,\"idle_seconds\":%.6f}", (double)s->busy_ns * 1e-9,
               (double)s->idle_ns * 1e-9);
    }
    printf("]");
}

static void print_stats_table(const pareng_stats *stats, unsigned n, bool io)
{
    printf("%6s", "worker");
#define HEAD(f) printf(" %12s", #f);
    STAT_FIELDS(HEAD)
    if (io) {
        IO_STAT_FIELDS(HEAD)
    }
#undef HEAD
    printf(" %10s %10s\n", "busy s", "idle s");
    for (unsigned i = 0; i < n; i++) {
        const pareng_stats *s = &stats[i];
        printf("%6u", i);
#define CELL(f) printf(" %12llu", (unsigned long long)s->f);
        STAT_FIELDS(CELL)
        if (io) {
            IO_STAT_FIELDS(CELL)
        }
#undef CELL
        printf(" %10.6f %10.6f\n", (double)s->busy_ns * 1e-9, (double)s->idle_ns * 1e-9);
    }
}

/* Subtrees the automatic cutoff ran as serial C, all workers together. */
static uint64_t serial_runs(const pareng_stats *stats, unsigned n)
{
    uint64_t runs = 0;
    for (unsigned i = 0; i < n; i++)
        runs += stats[i].serial_runs;
    return runs;
}

/* The most IO operations one worker had in flight at once (the workers' peaks may fall at
 * different moments, so their sum would overstate what was ever in flight together). */
static uint64_t io_peak(const pareng_stats *stats, unsigned n)
{
    uint64_t peak = 0;
    for (unsigned i = 0; i < n; i++)
        peak = stats[i].io_peak > peak ? stats[i].io_peak : peak;
    return peak;
}

/* ns in the largest unit that divides it: 1500000 is "1500us". */
static void format_duration(uint64_t ns, char *out, size_t size)
{
    static const struct { const char *name; uint64_t ns; } units[] = {
        {"s", 1000000000}, {"ms", 1000000}, {"us", 1000}, {"ns", 1}};
    size_t k = 0;
    while (ns % units[k].ns)
        k++;
    snprintf(out, size, "%llu%s", (unsigned long long)(ns / units[k].ns), units[k].name);
}

/* text as a JSON string: quotes, backslashes and control characters escaped */
static void print_json_string(const char *text)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    putchar('"');
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

/* The engine for o: --cores, and IO for the IO workloads; 0, or the exit status after saying
 * why. */
static int configure(const run_options *o, pareng_config *cfg)
{
    pareng_config_default(cfg);
    if (o->http || o->io_latency_ns)
        cfg->io_depth = o->io_depth ? o->io_depth : PARENG_IO_DEPTH_AUTO;
    if (o->http) /* what pareng.h says the load takes, on top of the default 8 MiB */
        cfg->shared_bytes = ((size_t)8 << 20) + o->requests * 8 + (size_t)o->connections * 256;
    return configure_cores(o->cores, cfg);
}

/* Starts the engine of cfg with the signal handlers in place; 0, or the exit status after
 * saying why. */
static int start_engine(const pareng_config *cfg, pareng_engine **e)
{
    install_signal_handlers();
    int rc = pareng_start(e, cfg);
    if (rc < 0) {
        bool bad = rc == -EINVAL || rc == -ERANGE;
        fprintf(stderr, "pareng: %s%s\n", bad ? "--cores: " : "", pareng_last_error());
        return bad ? EXIT_BAD_INPUT : EXIT_RUN_FAILED;
    }
    warn_if_sharing(pareng_engine_plan(*e));
    running = *e;
    if (interrupted_by)
        pareng_cancel(*e);
    return 0;
}

/* Ends a run whose result was rc: copies the workers' statistics into *stats (to free) and
 * stops the engine before anything is printed, so that a reader that goes away (SIGPIPE)
 * cannot leave workers or a segment behind. 0, or the exit status after saying why. */
static int stop_engine(pareng_engine *e, int rc, pareng_stats **stats)
{
    unsigned workers = pareng_engine_workers(e);
    *stats = calloc(workers, sizeof **stats);
    for (unsigned i = 0; *stats && i < workers; i++)
        pareng_engine_stats(e, i, &(*stats)[i]);
    char failure[256];
    snprintf(failure, sizeof failure, "%s", pareng_last_error());
    running = NULL; /* the handler must not touch an engine being stopped */
    pareng_stop(e);
    if (rc < 0) {
        free(*stats);
        if (interrupted_by) /* a signal to the whole group may have killed a worker first */
            return 128 + interrupted_by;
        if (rc != -ECANCELED)
            fprintf(stderr, "pareng: run failed: %s\n", failure);
        return EXIT_RUN_FAILED;
    }
    if (!*stats) {
        fprintf(stderr, "pareng: out of memory\n");
        return EXIT_RUN_FAILED;
    }
    return 0;
}

/* pareng run http URL: the load, then requests, errors, requests/s and latency percentiles. */
static int run_http(const run_options *o)
{
    pareng_http_config http = {.url = o->n_texts[0], .requests = o->requests,
                               .connections = o->connections, .timeout_ns = o->timeout_ns};
    /* A bad URL or count is refused before any worker starts; a host that does not resolve
     * cannot be reached: the run fails. */
    int rc = pareng_http_check(&http);
    if (rc == -EINVAL)
        return bad_input("%s", pareng_last_error());
    if (rc < 0) {
        fprintf(stderr, "pareng: run failed: %s\n", pareng_last_error());
        return EXIT_RUN_FAILED;
    }
    pareng_config cfg;
    pareng_engine *e;
    if ((rc = configure(o, &cfg)) || (rc = start_engine(&cfg, &e)))
        return rc;
    unsigned workers = pareng_engine_workers(e);
    pareng_http_result r;
    rc = pareng_http_get(e, &http, &r);
    pareng_stats *stats;
    if ((rc = stop_engine(e, rc, &stats)))
        return rc;
    if (r.requests == 0) {
        free(stats);
        fprintf(stderr, "pareng: run failed: no request got a response: %s\n", r.first_error);
        return EXIT_RUN_FAILED;
    }
    double per_second = (double)r.requests / r.seconds;
    static const char *const percentiles[4] = {"p50", "p90", "p99", "max"};
    if (o->json) {
        printf("{\"workload\":\"http\",\"url\":");
        print_json_string(http.url);
        printf(",\"requests\":%llu,\"errors\":%llu,\"non_2xx\":%llu,\"bytes\":%llu,"
               "\"connections\":%u,\"workers\":%u,\"io_depth\":%u,\"seconds\":%.6f,"
               "\"requests_per_second\":%.1f,\"latency_ns\":{",
               (unsigned long long)r.requests, (unsigned long long)r.errors,
               (unsigned long long)r.non_2xx, (unsigned long long)r.bytes, http.connections,
               workers, cfg.io_depth, r.seconds, per_second);
        for (int k = 0; k < 4; k++)
            printf("%s\"%s\":%llu", k ? "," : "", percentiles[k],
                   (unsigned long long)r.latency_ns[k]);
        printf("},\"first_error\":");
        if (r.errors)
            print_json_string(r.first_error);
        else
            printf("null");
        print_stats_json(stats, workers, true);
        printf("}\n");
    } else {
        printf("requests: %llu, errors: %llu, non-2xx: %llu, bytes: %llu\n",
               (unsigned long long)r.requests, (unsigned long long)r.errors,
               (unsigned long long)r.non_2xx, (unsigned long long)r.bytes);
        printf("time: %.6f s, requests/s: %.1f, workers: %u, connections: %u\n", r.seconds,
               per_second, workers, http.connections);
        printf("latency:");
        for (int k = 0; k < 4; k++)
            printf("%s %s %.3f ms", k ? "," : "", percentiles[k], (double)r.latency_ns[k] * 1e-6);
        printf("\n");
        if (r.errors)
            printf("first error: %s\n", r.first_error);
        if (o->stats)
            print_stats_table(stats, workers, true);
    }
    free(stats);
    return finish_output();
}

static int compute(const run_options *o, const unsigned *ns, uint64_t *results);

/* pareng run fib N and pareng map fib N...: one engine, one computation, then the output. */
static int command_run(int argc, char **argv, bool map)
{
    run_options o;
    int rc = parse_run(argc, argv, &o, map);
    if (!rc && o.http) {
        rc = run_http(&o);
        free(o.n_texts);
        return rc;
    }
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

/* fib(93) is accepted, and would run for centuries: a person at a terminal is told before it
 * starts (scripts, whose stderr is no terminal, are not). */
static void warn_if_long(const unsigned *ns, size_t count, unsigned workers)
{
    if (!isatty(STDERR_FILENO))
        return;
    double serial = 0;
    for (size_t k = 0; k < count; k++)
        serial += pareng_fib_serial_seconds(ns[k]);
    double best = serial / workers;
    if (best < 60)
        return;
    static const struct { const char *unit; double seconds; } units[] = {
        {"years", 365.25 * 86400}, {"days", 86400}, {"hours", 3600}, {"minutes", 60}};
    size_t u = 0;
    while (best < units[u].seconds)
        u++;
    fprintf(stderr, "pareng: this will take at least %.3g %s on %u workers here; ^C stops it\n",
            best / units[u].seconds, units[u].unit, workers);
}

static int compute(const run_options *o, const unsigned *ns, uint64_t *results)
{
    pareng_config cfg;
    int rc = configure(o, &cfg);
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

    pareng_engine *e;
    if ((rc = start_engine(&cfg, &e)))
        return rc;
    unsigned workers = pareng_engine_workers(e);
    if (!o->io_latency_ns)
        warn_if_long(ns, (size_t)o->n_count, workers);
    bool auto_grain = o->grain == PARENG_GRAIN_AUTO;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (o->io_latency_ns)
        rc = pareng_fib_io(e, ns[0], o->io_latency_ns, results);
    else if (o->map)
        rc = pareng_fib_map(e, ns, (size_t)o->n_count, o->grain, results);
    else
        rc = pareng_fib(e, ns[0], o->grain, results);
    double seconds = seconds_since(&t0);
    pareng_stats *stats;
    if ((rc = stop_engine(e, rc, &stats)))
        return rc;
    bool io = o->io_latency_ns != 0;
    if (o->json) {
        printf("{\"workload\":\"fib\",");
        print_results(o, ns, results);
        if (io)
            printf(",\"io_latency_ns\":%llu,\"io_depth\":%u,\"io_peak\":%llu",
                   (unsigned long long)o->io_latency_ns, cfg.io_depth,
                   (unsigned long long)io_peak(stats, workers));
        else if (auto_grain)
            printf(",\"grain\":null,\"grain_auto\":true");
        else
            printf(",\"grain\":%u,\"grain_auto\":false", o->grain);
        printf(",\"workers\":%u,\"seconds\":%.6f", workers, seconds);
        print_stats_json(stats, workers, io);
        printf("}\n");
    } else {
        print_results(o, ns, results);
        printf("time: %.6f s, workers: %u, ", seconds, workers);
        if (io) {
            char latency[32];
            format_duration(o->io_latency_ns, latency, sizeof latency);
            printf("io latency: %s, io peak: %llu in flight on one worker\n", latency,
                   (unsigned long long)io_peak(stats, workers));
        } else if (auto_grain)
            printf("grain: auto (%llu serial runs)\n",
                   (unsigned long long)serial_runs(stats, workers));
        else
            printf("grain: %u\n", o->grain);
        if (o->stats)
            print_stats_table(stats, workers, io);
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
    /* Help wherever it is asked for, as git does: `pareng run fib --help` too. */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return finish_output();
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
