/*
 * run.c - `pareng run` and `pareng map`: one engine, one workload (fib, its IO-bound variant,
 * UTS, the http load, or a map of fib items), then the result, the time and the workers. It parses,
 * calls the public API (pareng.h) and the workloads (workloads.h), and prints.
 *
 *   pareng run fib N [-c CORES] [--cutoff auto|none|D | -g G] [--serial] [-j] [-s]
 *   pareng run fib N --scale [--burden DUR] [--plot FILE.svg] [-g G] [-c CORES] [-j]
 *   pareng run ... [--trace FILE] [--timeline FILE.svg]
 *   pareng run fib N --io-latency DUR [--io-depth K] [-c CORES] [-j] [-s]
 *   pareng run uts TREE [-c CORES] [--cutoff auto|none|D] [--serial] [-j] [-s]
 *   pareng run http URL [-n N] [--connections C] [--timeout DUR] [--io-depth K] [-c CORES]
 *   pareng map fib N... [-c CORES] [--cutoff auto|none|D | -g G] [--serial] [-j] [-s]
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "pareng.h"
#include "workloads.h"

static const char run_help[] =
    "usage: pareng run fib N [-c CORES] [--cutoff auto|none|D | -g G] [--serial]\n"
    "                        [-j] [-s] [--trace FILE] [--timeline FILE.svg]\n"
    "       pareng run fib N --scale [--burden DUR] [--plot FILE.svg] [-g G]\n"
    "                        [-c CORES] [-j]\n"
    "       pareng run fib N --io-latency DUR [--io-depth K] [-c CORES] [-j] [-s]\n"
    "       pareng run uts TREE [-c CORES] [--cutoff auto|none|D] [--serial] [-j] [-s]\n"
    "                           [--trace FILE] [--timeline FILE.svg]\n"
    "       pareng run http URL [-n N] [--connections C] [--timeout DUR]\n"
    "                           [--io-depth K] [-c CORES] [-j] [-s]\n"
    "                           [--trace FILE] [--timeline FILE.svg]\n"
    "\n"
    "Runs one workload on an engine of worker processes, then prints its result, the\n"
    "wall time of the computation and the workers.\n"
    "\n"
    "workloads:\n"
    "  fib N     fib(N), N from 0 to 93, every call written as a task; the first\n"
    "            line of the output is exactly \"fib(N) = VALUE\"\n"
    "  uts TREE  UTS, the Unbalanced Tree Search benchmark, on one of its sample\n"
    "            trees: T1, T1L, T2, T5 (geometric), T3, T3L (binomial); every node\n"
    "            a task; its node count is checked against the one UTS publishes\n"
    "  http URL  an HTTP/1.1 GET load on http://host[:port][/path] (a host name, an\n"
    "            IPv4 or an [IPv6] address) over keep-alive connections, one task\n"
    "            per connection: requests/s and latency percentiles\n"
    "\n"
    "options:\n"
    "  -c, --cores auto|K|LIST\n"
    "          where the workers run: auto (the default) one per physical core\n"
    "          this process may use; K workers, 1 to 512; LIST one worker per\n"
    "          CPU of a CPU list: 0,2-3 (OS numbers), pu:0-3, core:all, package:0,\n"
    "          numa:1 (docs/cli.md, \"CPU lists\")\n"
    "      --cutoff auto|none|D\n"
    "          (fib, uts) the engine's cutoff: auto (the default) adapts the depth below\n"
    "          which a task runs as plain serial C, with all below it; none makes\n"
    "          every call a task; D is a fixed depth\n"
    "  -g, --grain G\n"
    "          (fib) fib's own grain instead of the engine's cutoff: calls with\n"
    "          n < G run as serial C and every call above them is a task; 0 or\n"
    "          auto: no grain of its own (the default)\n"
    "      --serial\n"
    "          (fib, uts) plain serial C in this process, no engine: the baseline\n"
    "      --io-latency DUR\n"
    "          (fib) every leaf call first waits DUR on an io_uring timeout, and\n"
    "          every other call is a task; DUR is a whole number and ns, us, ms\n"
    "          or s (500us, 1ms, 2s), from 1ns to 3600s\n"
    "      --io-depth K\n"
    "          IO operations (waiting tasks) one worker may have in flight, 1 to\n"
    "          4096; default 256 (twice as many when they all wait over 1 ms\n"
    "          while other tasks could run: docs/io.md)\n"
    "  -n, --requests N\n"
    "          (http) requests in all, 1 to 1000000000; default 1000\n"
    "      --connections C\n"
    "          (http) connections, 1 to N; default 10 (N when N < 10)\n"
    "      --timeout DUR\n"
    "          (http) for each connect and for each response; default 5s\n"
    "  -j, --json\n"
    "          one JSON object on stdout instead of the text\n"
    "  -s, --stats\n"
    "          add a table of each worker's counters (tasks, steals, sleeps, busy\n"
    "          and idle time)\n"
    "      --trace FILE\n"
    "          write what each worker did during the run in the Chrome trace\n"
    "          event format (JSON, for Perfetto or chrome://tracing): spans of\n"
    "          running, stealing, sleeping and waiting on IO, and every steal\n"
    "          with its victim and thief\n"
    "      --timeline FILE.svg\n"
    "          write the same as an SVG picture: workers as rows, time across,\n"
    "          a colour per state\n"
    "      --scale\n"
    "          (fib) measure how parallel the task tree is, as Cilkscale does:\n"
    "          work (T1), span (T-infinity), parallelism, and the speedup\n"
    "          bounds for 1 to the workers of --cores; the tree runs once on one\n"
    "          worker in a slower measuring mode that makes every spawn a task\n"
    "      --burden DUR\n"
    "          (--scale) what a steal costs, added for every spawned task on the\n"
    "          burdened span; default 1us\n"
    "      --plot FILE.svg\n"
    "          (--scale) write an SVG plot of the speedup bounds against workers\n"
    "  -h, --help\n"
    "          this help\n"
    "\n"
    "--cores overrides PARENG_NUM_WORKERS and PARENG_PLACES, --cutoff overrides\n"
    "PARENG_CUTOFF. More: docs/cli.md (man pareng).\n";

static const char map_help[] =
    "usage: pareng map fib N... [-c CORES] [--cutoff auto|none|D | -g G] [--serial]\n"
    "                           [-j] [-s]\n"
    "\n"
    "Computes fib of each N, 0 to 93, each an independent task (items of unequal\n"
    "cost are balanced by stealing), as Python's multiprocessing.Pool().map(fib,\n"
    "[...]); the first line of the output is exactly the list Python prints.\n"
    "\n"
    "options:\n"
    "  -c, --cores auto|K|LIST\n"
    "          where the workers run, as for pareng run: auto (the default), K\n"
    "          workers, or a CPU list\n"
    "      --cutoff auto|none|D\n"
    "          the engine's cutoff, as for pareng run (default auto)\n"
    "  -g, --grain G\n"
    "          fib's own grain instead of the engine's cutoff, as for pareng run;\n"
    "          0 or auto: none of its own (the default)\n"
    "      --serial\n"
    "          plain serial C in this process, no engine: the baseline\n"
    "  -j, --json\n"
    "          one JSON object on stdout instead of the text; its \"n\" and\n"
    "          \"result\" are arrays\n"
    "  -s, --stats\n"
    "          add a table of each worker's counters\n"
    "  -h, --help\n"
    "          this help\n"
    "\n"
    "--cores overrides PARENG_NUM_WORKERS and PARENG_PLACES, --cutoff overrides\n"
    "PARENG_CUTOFF. More: docs/cli.md (man pareng).\n";

/* Options without a short form: vals above any character. */
enum {
    OPT_CUTOFF = 256, OPT_SERIAL, OPT_IO_LATENCY, OPT_IO_DEPTH, OPT_CONNECTIONS, OPT_TIMEOUT,
    OPT_TRACE, OPT_TIMELINE, OPT_SCALE, OPT_BURDEN, OPT_PLOT,
};

static const struct option run_options_long[] = {
    {"cores", required_argument, NULL, 'c'},
    {"cutoff", required_argument, NULL, OPT_CUTOFF},
    {"grain", required_argument, NULL, 'g'},
    {"serial", no_argument, NULL, OPT_SERIAL},
    {"io-latency", required_argument, NULL, OPT_IO_LATENCY},
    {"io-depth", required_argument, NULL, OPT_IO_DEPTH},
    {"requests", required_argument, NULL, 'n'},
    {"connections", required_argument, NULL, OPT_CONNECTIONS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"trace", required_argument, NULL, OPT_TRACE},
    {"timeline", required_argument, NULL, OPT_TIMELINE},
    {"scale", no_argument, NULL, OPT_SCALE},
    {"burden", required_argument, NULL, OPT_BURDEN},
    {"plot", required_argument, NULL, OPT_PLOT},
    {"json", no_argument, NULL, 'j'},
    {"stats", no_argument, NULL, 's'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const struct option map_options_long[] = {
    {"cores", required_argument, NULL, 'c'},
    {"cutoff", required_argument, NULL, OPT_CUTOFF},
    {"grain", required_argument, NULL, 'g'},
    {"serial", no_argument, NULL, OPT_SERIAL},
    {"json", no_argument, NULL, 'j'},
    {"stats", no_argument, NULL, 's'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Options that only some workloads take: each one given sets its bit in run_options.given. */
enum workload_option {
    W_GRAIN, W_CUTOFF, W_SERIAL, W_IO_LATENCY, W_IO_DEPTH, W_REQUESTS, W_CONNECTIONS, W_TIMEOUT,
    W_TRACE, W_TIMELINE, W_SCALE, W_BURDEN, W_PLOT,
};
static const char *const workload_option_names[] = {
    "--grain", "--cutoff", "--serial", "--io-latency", "--io-depth", "--requests",
    "--connections", "--timeout", "--trace", "--timeline", "--scale", "--burden", "--plot",
};
#define W(k) (1u << (k))
#define HTTP_OPTIONS (W(W_REQUESTS) | W(W_CONNECTIONS) | W(W_TIMEOUT))

#define SCALE_OPTIONS (W(W_SCALE) | W(W_BURDEN) | W(W_PLOT))
#define TRACE_OPTIONS (W(W_TRACE) | W(W_TIMELINE))

#define DEFAULT_REQUESTS 1000
/* --scale's default burden: about what a steal between processes costs (pareng bench spawn
 * measures it on each machine) */
#define DEFAULT_BURDEN_NS 1000
#define DEFAULT_CONNECTIONS 10
#define REQUESTS_MAX 1000000000ul

typedef struct run_options {
    bool map;        /* pareng map: many N, a list out */
    bool http;       /* run http */
    bool uts;        /* run uts */
    const char *workload;
    char **n_texts;  /* the N arguments (run http: the URL), in argv */
    int n_count;
    const char *cores;  /* as given, or NULL: the environment's, else auto */
    const char *cutoff; /* as given, or NULL */
    unsigned given;     /* W() bits */
    unsigned grain;     /* fib's own grain; 0: none */
    bool json, stats, serial;
    uint64_t io_latency_ns;
    unsigned io_depth;
    uint64_t requests;
    unsigned connections;
    uint64_t timeout_ns;
    bool scale;
    uint64_t burden_ns;
    const char *trace_path, *timeline_path, *plot_path;
} run_options;

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

/* One option's value into o; 0, or the exit status after saying why. */
static int parse_option(run_options *o, int option, const char *value)
{
    unsigned long v;
    switch (option) {
    case 'c':
        o->cores = value;
        return 0;
    case 'j':
        o->json = true;
        return 0;
    case 's':
        o->stats = true;
        return 0;
    case OPT_SERIAL:
        o->serial = true;
        o->given |= W(W_SERIAL);
        return 0;
    case OPT_CUTOFF:
        o->cutoff = value;
        o->given |= W(W_CUTOFF);
        return 0; /* the library parses it (cli_set_cutoff) */
    case 'g':
        o->given |= W(W_GRAIN);
        return cli_parse_grain(value, &o->grain);
    case OPT_TRACE:
    case OPT_TIMELINE:
    case OPT_PLOT: /* files, opened before the engine starts */
        o->given |= W(option == OPT_TRACE ? W_TRACE : option == OPT_TIMELINE ? W_TIMELINE : W_PLOT);
        *(option == OPT_TRACE      ? &o->trace_path
          : option == OPT_TIMELINE ? &o->timeline_path
                                   : &o->plot_path) = value;
        return 0;
    case OPT_SCALE:
        o->given |= W(W_SCALE);
        o->scale = true;
        return 0;
    case OPT_IO_LATENCY:
    case OPT_TIMEOUT:
    case OPT_BURDEN: {
        int k = option == OPT_IO_LATENCY ? W_IO_LATENCY : option == OPT_TIMEOUT ? W_TIMEOUT
                                                                               : W_BURDEN;
        uint64_t *ns = k == W_IO_LATENCY ? &o->io_latency_ns
                       : k == W_TIMEOUT  ? &o->timeout_ns
                                         : &o->burden_ns;
        o->given |= W(k);
        if (!parse_duration(value, ns))
            return bad_input("%s needs a duration from 1ns to 3600s: a whole number and a unit, "
                             "ns, us, ms or s (500us, 2s), not '%s'", workload_option_names[k],
                             value);
        return 0;
    }
    case OPT_IO_DEPTH:
        o->given |= W(W_IO_DEPTH);
        if (!parse_unsigned(value, PARENG_IO_DEPTH_MAX, &v) || v == 0)
            return bad_input("--io-depth needs an integer from 1 to %u, not '%s'",
                             PARENG_IO_DEPTH_MAX, value);
        o->io_depth = (unsigned)v;
        return 0;
    case 'n':
        o->given |= W(W_REQUESTS);
        if (!parse_unsigned(value, REQUESTS_MAX, &v) || v == 0)
            return bad_input("--requests needs an integer from 1 to %lu, not '%s'",
                             REQUESTS_MAX, value);
        o->requests = v;
        return 0;
    default: /* OPT_CONNECTIONS */
        o->given |= W(W_CONNECTIONS);
        if (!parse_unsigned(value, UINT_MAX, &v) || v == 0)
            return bad_input("--connections needs a positive integer, not '%s'", value);
        o->connections = (unsigned)v;
        return 0;
    }
}

#define UTS_TREES "T1, T1L, T2, T3, T3L or T5"

/* The first option of `mask` that was given, or NULL. */
static const char *given_of(const run_options *o, unsigned mask)
{
    for (size_t k = 0; k < sizeof workload_option_names / sizeof workload_option_names[0]; k++)
        if (o->given & mask & W(k))
            return workload_option_names[k];
    return NULL;
}

/* Which workload takes which options, and which of them go together. */
static int check_workload_options(const run_options *o)
{
    const char *wrong;
    if (o->http && (wrong = given_of(o, W(W_GRAIN) | W(W_CUTOFF) | W(W_SERIAL) |
                                            W(W_IO_LATENCY) | SCALE_OPTIONS)))
        return bad_input("run http does not take %s", wrong);
    if (!o->scale && (wrong = given_of(o, W(W_BURDEN) | W(W_PLOT))))
        return bad_input("%s is for --scale", wrong);
    if (o->scale && (wrong = given_of(o, W(W_CUTOFF) | W(W_SERIAL) | W(W_IO_LATENCY) |
                                             TRACE_OPTIONS)))
        return bad_input("--scale and %s do not go together: --scale runs the tree once on one "
                         "worker, every spawn a task, to measure it", wrong);
    if (o->serial && (wrong = given_of(o, TRACE_OPTIONS)))
        return bad_input("--serial and %s do not go together: --serial starts no engine",
                         wrong);
    if (o->uts && (wrong = given_of(o, W(W_GRAIN) | W(W_IO_LATENCY) | W(W_IO_DEPTH) |
                                           SCALE_OPTIONS)))
        return bad_input("run uts does not take %s", wrong);
    if (!o->http && (wrong = given_of(o, HTTP_OPTIONS)))
        return bad_input("run %s does not take %s", o->workload, wrong);
    if (o->grain && o->cutoff)
        return bad_input("--grain %u and --cutoff do not go together: fib's grain replaces the "
                         "engine's cutoff", o->grain);
    if (o->io_latency_ns &&
        (wrong = given_of(o, (o->grain ? W(W_GRAIN) : 0) | W(W_CUTOFF) | W(W_SERIAL))))
        return bad_input("--io-latency and %s do not go together: with IO every call is a "
                         "task, and each leaf waits on the ring", wrong);
    if (!o->http && o->given & W(W_IO_DEPTH) && !o->io_latency_ns)
        return bad_input("--io-depth is for IO work: add --io-latency DUR");
    return 0;
}

/* The options and arguments of run (map false) or map; 0, or the exit status (after the
 * help, -1 - 0: *help is set). */
static int parse_run(int argc, char **argv, run_options *o, bool map, bool *help)
{
    *o = (run_options){.map = map, .requests = DEFAULT_REQUESTS,
                       .connections = DEFAULT_CONNECTIONS, .burden_ns = DEFAULT_BURDEN_NS};
    *help = false;
    cli_parser p;
    cli_parse_begin(&p, map ? "map" : "run", map ? "c:g:jsh" : "c:g:n:jsh",
                    map ? map_options_long : run_options_long, argc, argv);
    const char *value;
    int option, rc;
    while ((option = cli_next_option(&p, &value)) != -1) {
        if (option == -2)
            return EXIT_BAD_INPUT;
        if (option == 'h') {
            *help = true;
            return cli_help(map ? map_help : run_help);
        }
        if ((rc = parse_option(o, option, value)))
            return rc;
    }
    int count;
    char **args = cli_positional(&p, &count);
    if (count == 0)
        return bad_input(map ? "map needs a workload: pareng map fib N..."
                             : "run needs a workload: pareng run fib N, pareng run uts TREE, "
                               "pareng run http URL");
    o->workload = args[0];
    o->n_texts = args + 1;
    o->n_count = count - 1;
    o->http = !map && strcmp(o->workload, "http") == 0;
    o->uts = !map && strcmp(o->workload, "uts") == 0;
    if (!o->http && !o->uts && strcmp(o->workload, "fib") != 0)
        return bad_input("unknown workload '%s' (known: %s)", o->workload,
                         map ? "fib" : "fib, uts, http");
    if (o->n_count == 0)
        return o->http ? bad_input("http needs a URL: pareng run http http://host[:port]/path")
               : o->uts ? bad_input("uts needs a tree: %s", UTS_TREES)
                        : bad_input("fib needs N, an integer from 0 to %d", WORKLOAD_FIB_MAX);
    if (!map && o->n_count > 1)
        return bad_input("unexpected argument '%s'", o->n_texts[1]);
    /* the default never asks for more connections than requests */
    if (o->http && !(o->given & W(W_CONNECTIONS)) && o->connections > o->requests)
        o->connections = (unsigned)o->requests;
    return check_workload_options(o);
}

/* Every N: a whole number from 0 to WORKLOAD_FIB_MAX. */
static int parse_fib_ns(const run_options *o, unsigned *ns)
{
    for (int k = 0; k < o->n_count; k++) {
        unsigned long n;
        if (!parse_unsigned(o->n_texts[k], ULONG_MAX, &n))
            return bad_input("fib needs N, an integer from 0 to %d, not '%s'", WORKLOAD_FIB_MAX,
                             o->n_texts[k]);
        if (n > WORKLOAD_FIB_MAX)
            return bad_input("fib(%lu) does not fit in 64 bits: N must be at most %d", n,
                             WORKLOAD_FIB_MAX);
        ns[k] = (unsigned)n;
    }
    return 0;
}

/* ---- the engine ------------------------------------------------------------------------- */

/* The engine for o: the environment, then --cores and --cutoff over it, and IO for the IO
 * workloads; 0, or the exit status after saying why. */
static int configure(const run_options *o, pareng_config *cfg)
{
    int rc = cli_config_default(cfg);
    if (rc == 0 && o->cores)
        rc = cli_set_cores(cfg, o->cores);
    if (rc == 0 && o->cutoff)
        rc = cli_set_cutoff(cfg, o->cutoff);
    if (rc)
        return rc;
    if (o->http || o->io_latency_ns) {
        cfg->io_depth = o->io_depth ? o->io_depth : PARENG_IO_DEPTH_AUTO;
        /* an IO task may wait anywhere: every spawn is a task (PARENG_CUTOFF is not used) */
        cfg->cutoff_depth = PARENG_CUTOFF_NONE;
    }
    if (o->http) /* what workloads.h says the load takes, on top of the default 8 MiB */
        cfg->shared_bytes = ((size_t)8 << 20) + o->requests * 8 + (size_t)o->connections * 256;
    return 0;
}

/* A placement the library refused: bad input, named after what chose it. */
static int placement_refused(const run_options *o, int rc)
{
    int interrupted = cli_interrupted_status(); /* ^C during the start cancels it */
    if (rc == -ECANCELED && interrupted)
        return interrupted;
    const char *source = cli_cores_source(o->cores != NULL);
    if (rc != -EINVAL && rc != -ERANGE) {
        cli_error("cannot start the engine: %s", pareng_last_error());
        return EXIT_RUN_FAILED;
    }
    if (source)
        return bad_input("%s: %s", source, pareng_last_error());
    return bad_input("%s", pareng_last_error());
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
        cli_error("warning: %u workers on %u core%s: workers share cores", workers, cores,
                  cores == 1 ? "" : "s");
    else if (shared_pu)
        cli_error("warning: the CPU list puts several workers on one CPU");
}

/* Starts the engine of cfg; 0, or the exit status after saying why. */
static int start_engine(const run_options *o, const pareng_config *cfg, pareng_engine **e)
{
    int rc = ranks_start(e, cfg);
    if (rc > 0)
        return rc;
    if (rc < 0)
        return placement_refused(o, rc);
    if (ranks_this() == 0)
        warn_if_sharing(pareng_engine_plan(*e));
    return 0;
}

/* Ends a run whose result was rc: copies the workers' statistics into *stats (to free) and
 * stops the engine before anything is printed, so that a reader that goes away (SIGPIPE)
 * cannot leave workers or a segment behind. 0, or the exit status after saying why: 128 +
 * the signal when ^C or SIGTERM came (nothing printed then). */
static int stop_engine(pareng_engine *e, int rc, pareng_stats **stats)
{
    char failure[PARENG_ERROR_MAX];
    snprintf(failure, sizeof failure, "%s", workload_error());
    unsigned workers = pareng_engine_workers(e);
    *stats = calloc(workers, sizeof **stats);
    for (unsigned i = 0; *stats && i < workers; i++)
        pareng_engine_stats(e, i, &(*stats)[i]);
    ranks_stop(e);
    int interrupted = cli_interrupted_status();
    if (rc < 0 || interrupted) {
        free(*stats);
        *stats = NULL;
        if (interrupted) /* a signal to the whole group may have killed a worker first */
            return interrupted;
        if (rc != -ECANCELED)
            cli_error("run failed: %s", failure);
        return EXIT_RUN_FAILED;
    }
    if (!*stats) {
        cli_error("out of memory");
        return EXIT_RUN_FAILED;
    }
    return 0;
}

/* ---- output ----------------------------------------------------------------------------- */

static void print_stats_json(const pareng_stats *stats, unsigned n, bool io)
{
    printf(",\"stats\":[");
    for (unsigned i = 0; i < n; i++) {
        printf("%s{\"worker\":%u,", i ? "," : "", i);
        json_stats_fields(stdout, &stats[i], io);
        printf("}");
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
    /* A spawn synced inline costs about a nanosecond, and counting it would cost as much:
     * such a run's 63 million tasks must not read as "tasks 1" without a word. */
    printf("tasks and spawns count frames that left the fast path (the root, stolen, shared or "
           "overflowed ones); spawns synced inline, most of them, are not counted\n");
    uint64_t overflows = 0;
    for (unsigned i = 0; i < n; i++)
        overflows += stats[i].overflows;
    if (overflows) /* each ran where it was spawned, in order: that much of the run was serial */
        printf("%llu spawns found their worker's deque full and ran at once, serially "
               "(pareng_config.deque_capacity)\n", (unsigned long long)overflows);
}

/* After "workers: W" under mpirun: the workers are this rank's, and every rank has as many. */
static const char *ranks_of_workers(void)
{
    static char text[48];
    if (ranks_count() < 2)
        return "";
    snprintf(text, sizeof text, " on each of %u ranks", ranks_count());
    return text;
}

/* Subtrees the cutoff ran as serial C, all workers together. */
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

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

/* What a run computed: fib(N) = R, or for map the results as Python prints a list. */
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

/* `"cutoff":...,"grain":...` of a fib run: the engine's cutoff ("auto", "none" or a depth;
 * null when fib's grain replaced it) and fib's grain (null when none). */
static void print_granularity_json(unsigned cutoff_depth, unsigned grain)
{
    char cutoff[16];
    cli_describe_cutoff(cutoff_depth, cutoff, sizeof cutoff);
    if (grain)
        printf(",\"cutoff\":null,\"grain\":%u", grain);
    else if (cutoff_depth == PARENG_CUTOFF_AUTO || cutoff_depth == PARENG_CUTOFF_NONE)
        printf(",\"cutoff\":\"%s\",\"grain\":null", cutoff);
    else
        printf(",\"cutoff\":%s,\"grain\":null", cutoff);
}

static int run_serial(const run_options *o, const unsigned *ns, uint64_t *results)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int k = 0; k < o->n_count; k++)
        results[k] = workload_fib_serial(ns[k]);
    double seconds = seconds_since(&t0);
    if (o->json) {
        printf("{\"workload\":\"fib\",");
        print_results(o, ns, results);
        printf(",\"serial\":true,\"cutoff\":null,\"grain\":null,\"workers\":0,"
               "\"seconds\":%.6f}\n", seconds);
    } else {
        print_results(o, ns, results);
        printf("time: %.6f s, serial C\n", seconds);
    }
    return finish_output();
}

/* ---- --trace and --timeline ------------------------------------------------------------ */

typedef struct run_trace {
    output_file files[2]; /* --trace, --timeline */
    uint64_t began_ns, ended_ns;
} run_trace;

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t); /* the clock of the trace's events */
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Before the engine starts: the files opened (a path that cannot be written fails now, not
 * after the run) and room made for the buffers. 0, or the exit status after saying why. */
static int trace_prepare(const run_options *o, run_trace *t, pareng_config *cfg)
{
    *t = (run_trace){.files = {{"--trace", o->trace_path, NULL, 0},
                               {"--timeline", o->timeline_path, NULL, 0}}};
    /* Under mpirun, rank 0's engine is traced: the ranks would write one file at once */
    if ((!o->trace_path && !o->timeline_path) || ranks_launch_rank() != 0)
        return 0;
    if (is_stdout(o->trace_path) || is_stdout(o->timeline_path))
        return bad_input("--trace and --timeline write files: stdout (-) has the run's output");
    trace_configure(cfg);
    return open_outputs(t->files, 2);
}

static void trace_close(run_trace *t)
{
    for (int k = 0; k < 2; k++)
        close_output(&t->files[k]);
}

/* The engine started: its events are recorded from now on. 0, or the exit status (the
 * engine stopped and the files closed) after saying why. */
static int trace_engine(run_trace *t, pareng_engine *e)
{
    int rc = t->files[0].f || t->files[1].f ? trace_start(e) : 0;
    if (rc) {
        ranks_stop(e);
        trace_close(t);
    }
    t->began_ns = now_ns();
    return rc;
}

/* The run ended with rc and the engine still runs: the files written (when the run
 * succeeded) and closed. 0, or the exit status after saying which could not be written. */
static int trace_finish(run_trace *t, pareng_engine *e, int rc, const char *title)
{
    t->ended_ns = now_ns();
    if (rc == 0 && t->files[0].f)
        trace_write_chrome(t->files[0].f, e, t->began_ns, t->ended_ns, title);
    if (rc == 0 && t->files[1].f)
        trace_write_timeline(t->files[1].f, e, t->began_ns, t->ended_ns, title);
    int status = 0;
    for (int k = 0; k < 2; k++) {
        int closed = close_output(&t->files[k]);
        status = status ? status : closed;
    }
    return status;
}

/* ---- run http --------------------------------------------------------------------------- */

/* pareng run http URL: the load, then requests, errors, requests/s and latency percentiles. */
static int run_http(const run_options *o)
{
    workload_http_config http = {.url = o->n_texts[0], .requests = o->requests,
                                 .connections = o->connections, .timeout_ns = o->timeout_ns};
    pareng_config cfg;
    int rc = configure(o, &cfg);
    if (rc)
        return rc;
    /* A bad URL or count is refused before any worker starts; a host that does not resolve
     * cannot be reached: the run fails. */
    rc = workload_http_check(&http);
    if (rc == -EINVAL)
        return bad_input("%s", workload_error());
    if (rc < 0) {
        cli_error("run failed: %s", workload_error());
        return EXIT_RUN_FAILED;
    }
    run_trace trace;
    if ((rc = trace_prepare(o, &trace, &cfg)))
        return rc;
    cli_catch_signals();
    pareng_engine *e;
    if ((rc = start_engine(o, &cfg, &e))) {
        trace_close(&trace);
        return rc;
    }
    if ((rc = trace_engine(&trace, e)))
        return rc;
    unsigned workers = pareng_engine_workers(e);
    workload_http_result r;
    rc = workload_http_get(e, &http, &r);
    char title[256];
    snprintf(title, sizeof title, "pareng run http, %u workers", workers);
    int traced = trace_finish(&trace, e, rc, title);
    pareng_stats *stats;
    if ((rc = stop_engine(e, rc, &stats)) || (rc = traced)) {
        free(stats);
        return rc;
    }
    if (r.requests == 0) {
        free(stats);
        cli_error("run failed: no request got a response: %s", r.first_error);
        return EXIT_RUN_FAILED;
    }
    double per_second = (double)r.requests / r.seconds;
    static const char *const percentiles[4] = {"p50", "p90", "p99", "max"};
    if (o->json) {
        printf("{\"workload\":\"http\",\"url\":");
        json_string(stdout, http.url);
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
            json_string(stdout, r.first_error);
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
        if (r.errors) {
            /* the server's text may hold anything: escaped as messages are */
            printf("first error: ");
            cli_escape(stdout, r.first_error);
            printf("\n");
        }
        if (o->stats)
            print_stats_table(stats, workers, true);
    }
    free(stats);
    return finish_output();
}

/* ---- run fib --scale -------------------------------------------------------------------- */

/* Speedup bounds on p workers (Cilkscale's): at most min(p, parallelism); at least what a
 * greedy scheduler guarantees with every steal paying the burden, T1 / (T1/p + burdened
 * span). */
static double speedup_at_most(const pareng_scale *s, unsigned p)
{
    double parallelism = (double)s->work_ns / (double)s->span_ns;
    return parallelism < p ? parallelism : p;
}

static double speedup_at_least(const pareng_scale *s, unsigned p)
{
    return (double)s->work_ns / ((double)s->work_ns / p + (double)s->burdened_span_ns);
}

static void write_scale_plot(FILE *f, const pareng_scale *s, unsigned n, unsigned workers)
{
    plot_area p = {.left = 80, .top = 60, .width = 560, .height = 380,
                   .x_max = (workers > 1 ? workers : 2) * 1.05, .x_label = "workers",
                   .y_label = "speedup bound"};
    p.y_max = p.x_max;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"820\" height=\"500\" "
               "viewBox=\"0 0 820 500\" font-family=\"sans-serif\">\n"
               "<rect width=\"820\" height=\"500\" fill=\"#fff\"/>\n"
               "<text x=\"%.1f\" y=\"24\" font-size=\"16\" text-anchor=\"middle\">fib(%u): "
               "speedup bounds (work %.6f s, span %.6f s, parallelism %.1f)</text>\n",
            p.left + p.width / 2, n, (double)s->work_ns * 1e-9, (double)s->span_ns * 1e-9,
            (double)s->work_ns / (double)s->span_ns);
    plot_axes(f, &p);
    fprintf(f, "<polyline data-series=\"ideal\" fill=\"none\" stroke=\"#888\" "
               "stroke-dasharray=\"6 4\" points=\"%.1f,%.1f %.1f,%.1f\"/>\n",
            plot_x(&p, 0), plot_y(&p, 0), plot_x(&p, p.x_max), plot_y(&p, p.x_max));
    legend_entry(f, &p, 0, "#888", "6 4", "ideal (y = x)");
    static const struct { const char *name, *colour, *label; } series[2] = {
        {"at-most", "#1f77b4", "at most (span)"},
        {"at-least", "#d62728", "at least (burdened span)"}};
    for (unsigned k = 0; k < 2; k++) {
        fprintf(f, "<polyline data-series=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                   "points=\"", series[k].name, series[k].colour);
        for (unsigned w = 1; w <= workers; w++)
            fprintf(f, "%.1f,%.1f ", plot_x(&p, w),
                    plot_y(&p, k ? speedup_at_least(s, w) : speedup_at_most(s, w)));
        fputs("\"/>\n", f);
        legend_entry(f, &p, k + 1, series[k].colour, "none", series[k].label);
    }
    fputs("</svg>\n", f);
}

static void print_scale(const run_options *o, const pareng_scale *s, unsigned workers)
{
    double work = (double)s->work_ns * 1e-9, span = (double)s->span_ns * 1e-9;
    double burdened = (double)s->burdened_span_ns * 1e-9;
    if (o->json) {
        printf(",\"scale\":{\"work_seconds\":%.9f,\"span_seconds\":%.9f,\"parallelism\":%.3f,"
               "\"burden_ns\":%llu,\"burdened_span_seconds\":%.9f,"
               "\"burdened_parallelism\":%.3f,\"tasks\":%llu,\"span_tasks\":%llu,\"bounds\":[",
               work, span, work / span, (unsigned long long)o->burden_ns, burdened,
               work / burdened, (unsigned long long)s->tasks, (unsigned long long)s->span_tasks);
        for (unsigned p = 1; p <= workers; p++)
            printf("%s{\"workers\":%u,\"speedup_at_most\":%.3f,\"speedup_at_least\":%.3f}",
                   p > 1 ? "," : "", p, speedup_at_most(s, p), speedup_at_least(s, p));
        printf("]}");
        return;
    }
    char burden[32];
    format_duration(o->burden_ns, burden, sizeof burden);
    printf("work: %.6f s, span: %.6f s, parallelism: %.1f\n", work, span, work / span);
    printf("burdened span: %.6f s (%s a spawned task), burdened parallelism: %.1f\n", burdened,
           burden, work / burdened);
    printf("tasks: %llu, on the span: %llu\n", (unsigned long long)s->tasks,
           (unsigned long long)s->span_tasks);
    printf("%7s %10s %10s\n", "workers", "at most", "at least");
    for (unsigned p = 1; p <= workers; p++)
        printf("%7u %10.2f %10.2f\n", p, speedup_at_most(s, p), speedup_at_least(s, p));
    printf("measured on one worker, every spawn a task: the times include what spawns and "
           "syncs cost\n");
}

/* pareng run fib N --scale: the tree measured on one worker, the bounds for 1 to the workers
 * of cfg. */
static int run_scale(const run_options *o, const pareng_config *cfg, unsigned n,
                     uint64_t *result)
{
    pareng_plan *plan;
    int rc = pareng_plan_create(&plan, cfg);
    if (rc < 0)
        return placement_refused(o, rc);
    unsigned workers = pareng_plan_workers(plan);
    pareng_plan_destroy(plan);
    output_file plot = {"--plot", o->plot_path, NULL, 0};
    if (is_stdout(o->plot_path))
        return bad_input("--plot writes a file: stdout (-) has the run's output");
    if ((rc = open_outputs(&plot, 1)))
        return rc;
    pareng_config one = *cfg;
    one.workers = 1;
    one.cpus = NULL;
    cli_catch_signals();
    pareng_engine *e;
    if ((rc = start_engine(o, &one, &e))) {
        close_output(&plot);
        return rc;
    }
    pareng_scale s = {0};
    rc = pareng_scale_begin(e, o->burden_ns);
    if (rc == 0)
        rc = workload_fib(e, n, o->grain, result);
    if (rc == 0)
        rc = pareng_scale_end(e, &s);
    pareng_stats *stats;
    rc = stop_engine(e, rc, &stats);
    free(stats);
    if (rc) {
        close_output(&plot);
        return rc;
    }
    if (s.span_ns == 0)
        s.span_ns = 1; /* a tree too small for the clock */
    if (s.burdened_span_ns == 0)
        s.burdened_span_ns = 1;
    if (o->json) {
        printf("{\"workload\":\"fib\",");
        print_results(o, &n, result);
        print_granularity_json(PARENG_CUTOFF_NONE, o->grain);
        printf(",\"workers\":%u", workers);
        print_scale(o, &s, workers);
        printf("}\n");
    } else {
        print_results(o, &n, result);
        print_scale(o, &s, workers);
    }
    if (plot.f)
        write_scale_plot(plot.f, &s, n, workers);
    rc = close_output(&plot);
    int written = finish_output();
    return rc ? rc : written;
}

/* ---- run uts ---------------------------------------------------------------------------- */

/* pareng run uts TREE: the tree's node count, checked against the one UTS publishes. */
static int run_uts(const run_options *o)
{
    const workload_uts_tree *tree = workload_uts_find(o->n_texts[0]);
    if (!tree)
        return bad_input("uts: no sample tree '%s' (known: " UTS_TREES ")", o->n_texts[0]);
    pareng_config cfg;
    int rc = configure(o, &cfg);
    if (rc)
        return rc;
    workload_uts_count count;
    struct timespec t0;
    unsigned workers = 0;
    pareng_stats *stats = NULL;
    pareng_engine *e = NULL;
    run_trace trace;
    if (o->serial) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = workload_uts_serial(tree, &count);
    } else {
        if ((rc = trace_prepare(o, &trace, &cfg)))
            return rc;
        cli_catch_signals();
        if ((rc = start_engine(o, &cfg, &e))) {
            trace_close(&trace);
            return rc;
        }
        if ((rc = trace_engine(&trace, e)))
            return rc;
        workers = pareng_engine_workers(e);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = workload_uts(e, tree, &count);
    }
    double seconds = seconds_since(&t0);
    if (!o->serial) {
        char title[256];
        snprintf(title, sizeof title, "pareng run uts %s, %u workers", tree->name, workers);
        int traced = trace_finish(&trace, e, rc, title);
        if ((rc = stop_engine(e, rc, &stats)) || (rc = traced)) {
            free(stats);
            return rc;
        }
    }
    if (rc == 0 && (count.nodes != tree->nodes || count.leaves != tree->leaves ||
                    count.depth != tree->depth)) {
        free(stats);
        cli_error("run failed: uts %s counted %llu nodes, %llu leaves, depth %llu; UTS "
                  "publishes %llu, %llu, %u", tree->name, (unsigned long long)count.nodes,
                  (unsigned long long)count.leaves, (unsigned long long)count.depth,
                  (unsigned long long)tree->nodes, (unsigned long long)tree->leaves,
                  tree->depth);
        return EXIT_RUN_FAILED;
    }
    if (o->json) {
        printf("{\"workload\":\"uts\",\"tree\":\"%s\",\"result\":%llu,\"leaves\":%llu,"
               "\"depth\":%llu", tree->name, (unsigned long long)count.nodes,
               (unsigned long long)count.leaves, (unsigned long long)count.depth);
        if (o->serial) {
            printf(",\"serial\":true,\"cutoff\":null,\"workers\":0,\"seconds\":%.6f}\n",
                   seconds);
        } else {
            char cutoff[16];
            cli_describe_cutoff(cfg.cutoff_depth, cutoff, sizeof cutoff);
            bool named = cfg.cutoff_depth == PARENG_CUTOFF_AUTO ||
                         cfg.cutoff_depth == PARENG_CUTOFF_NONE;
            printf(named ? ",\"cutoff\":\"%s\"" : ",\"cutoff\":%s", cutoff);
            printf(",\"workers\":%u,\"seconds\":%.6f", workers, seconds);
            print_stats_json(stats, workers, false);
            ranks_print_json();
            printf("}\n");
        }
    } else {
        printf("uts(%s) = %llu nodes\n", tree->name, (unsigned long long)count.nodes);
        printf("leaves: %llu, depth: %llu (as UTS publishes)\n",
               (unsigned long long)count.leaves, (unsigned long long)count.depth);
        if (o->serial) {
            printf("time: %.6f s, serial C\n", seconds);
        } else {
            char cutoff[16];
            cli_describe_cutoff(cfg.cutoff_depth, cutoff, sizeof cutoff);
            printf("time: %.6f s, workers: %u%s, cutoff: %s (%llu serial runs)\n", seconds,
                   workers, ranks_of_workers(), cutoff,
                   (unsigned long long)serial_runs(stats, workers));
            if (o->stats) {
                print_stats_table(stats, workers, false);
                ranks_print_table();
            }
        }
    }
    free(stats);
    return finish_output();
}

/* ---- run fib, map fib ------------------------------------------------------------------- */

/* fib(93) is accepted, and would run for centuries: a person at a terminal is told before it
 * starts (scripts, whose stderr is no terminal, are not). */
static void warn_if_long(const unsigned *ns, size_t count, unsigned workers)
{
    if (!isatty(STDERR_FILENO))
        return;
    double serial = 0;
    for (size_t k = 0; k < count; k++)
        serial += workload_fib_serial_seconds(ns[k]);
    double best = serial / workers;
    if (best < 60)
        return;
    static const struct { const char *unit; double seconds; } units[] = {
        {"years", 365.25 * 86400}, {"days", 86400}, {"hours", 3600}, {"minutes", 60}};
    size_t u = 0;
    while (best < units[u].seconds)
        u++;
    cli_error("this will take at least %.3g %s on %u workers here; ^C stops it",
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
        if (cfg.cpus && (rc = pareng_plan_create(&plan, &cfg)) < 0)
            return placement_refused(o, rc);
        pareng_plan_destroy(plan);
        /* no engine, nothing to clean up: ^C ends it at once, by default */
        return run_serial(o, ns, results);
    }

    if (o->scale && pareng_mpi_launched())
        return bad_input("--scale measures one engine's tree: run it without mpirun");
    if (o->scale)
        return run_scale(o, &cfg, ns[0], results);
    run_trace trace;
    if ((rc = trace_prepare(o, &trace, &cfg)))
        return rc;
    cli_catch_signals();
    pareng_engine *e;
    if ((rc = start_engine(o, &cfg, &e))) {
        trace_close(&trace);
        return rc;
    }
    if ((rc = trace_engine(&trace, e)))
        return rc;
    unsigned workers = pareng_engine_workers(e);
    bool io = o->io_latency_ns != 0;
    if (!io)
        warn_if_long(ns, (size_t)o->n_count, workers);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (io)
        rc = workload_fib_io(e, ns[0], o->io_latency_ns, results);
    else if (o->map)
        rc = workload_fib_map(e, ns, (size_t)o->n_count, o->grain, results);
    else
        rc = workload_fib(e, ns[0], o->grain, results);
    double seconds = seconds_since(&t0);
    char title[256];
    snprintf(title, sizeof title, "pareng %s fib %s%s, %u workers", o->map ? "map" : "run",
             o->n_texts[0], o->n_count > 1 ? " ..." : "", workers);
    int traced = trace_finish(&trace, e, rc, title);
    pareng_stats *stats;
    if ((rc = stop_engine(e, rc, &stats)) || (rc = traced)) {
        free(stats);
        return rc;
    }
    if (o->json) {
        printf("{\"workload\":\"fib\",");
        print_results(o, ns, results);
        print_granularity_json(cfg.cutoff_depth, io ? 0 : o->grain);
        if (io)
            printf(",\"io_latency_ns\":%llu,\"io_depth\":%u,\"io_peak\":%llu",
                   (unsigned long long)o->io_latency_ns, cfg.io_depth,
                   (unsigned long long)io_peak(stats, workers));
        printf(",\"workers\":%u,\"seconds\":%.6f", workers, seconds);
        print_stats_json(stats, workers, io);
        ranks_print_json();
        printf("}\n");
    } else {
        print_results(o, ns, results);
        printf("time: %.6f s, workers: %u%s, ", seconds, workers, ranks_of_workers());
        char cutoff[16];
        cli_describe_cutoff(cfg.cutoff_depth, cutoff, sizeof cutoff);
        if (io) {
            char latency[32];
            format_duration(o->io_latency_ns, latency, sizeof latency);
            printf("io latency: %s, io peak: %llu in flight on one worker\n", latency,
                   (unsigned long long)io_peak(stats, workers));
        } else if (o->grain) {
            printf("grain: %u\n", o->grain);
        } else if (cfg.cutoff_depth == PARENG_CUTOFF_NONE) {
            printf("cutoff: none\n");
        } else {
            printf("cutoff: %s (%llu serial runs)\n", cutoff,
                   (unsigned long long)serial_runs(stats, workers));
        }
        if (o->stats) {
            print_stats_table(stats, workers, io);
            ranks_print_table();
        }
    }
    free(stats);
    return finish_output();
}

/* pareng run fib N, run http URL and map fib N...: one engine, one computation, then the
 * output. */
static int run_or_map(int argc, char **argv, bool map)
{
    run_options o;
    bool help;
    int rc = parse_run(argc, argv, &o, map, &help);
    if (rc || help || (rc = ranks_quiet_but_the_first()))
        return rc;
    if (o.http)
        return run_http(&o);
    if (o.uts)
        return run_uts(&o);
    unsigned *ns = calloc((size_t)o.n_count, sizeof *ns);
    uint64_t *results = calloc((size_t)o.n_count, sizeof *results);
    if (!ns || !results)
        rc = bad_input("out of memory");
    if (!rc)
        rc = parse_fib_ns(&o, ns);
    if (!rc)
        rc = compute(&o, ns, results);
    free(ns);
    free(results);
    return rc;
}

int command_run(int argc, char **argv)
{
    return run_or_map(argc, argv, false);
}

int command_map(int argc, char **argv)
{
    return run_or_map(argc, argv, true);
}
