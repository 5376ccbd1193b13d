/*
 * test_bench.c - `pareng bench` as a user runs it (fork + exec of $PARENG_BIN, through
 * cli_harness.h): the files it writes (JSON fields and their consistency, CSV rows, an SVG with
 * one line per series and the ideal line), --json and "-" for stdout, the peer contract (a
 * stand-in peer that is a shell script, one that fails, one missing), ^C keeping the rows
 * measured, the progress line on a terminal, the spawn micro-benchmark's two figures, and bad
 * input.
 *
 * Timings are benchmark output: they are checked for being numbers in a sane relation (min <=
 * median <= max, speedups > 0), never against a threshold.
 */
#include "cli_harness.h"

#include <dirent.h>
#include <math.h>
#include <pty.h>
#include <sys/stat.h>

/* fib(20), small enough that every command here takes milliseconds. */
#define N "20"
#define FIB_N 6765

static char scratch[64]; /* a directory of this program's own, for the files */

static void scratch_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", scratch, name);
}

/* ---- walking the JSON: the harness's reader skips values; these find them ------------------ */

/* The value of member `key` of the object at p, or NULL. */
static const char *member(const char *object, const char *key)
{
    const char *p = json_space(object);
    if (!p || *p != '{')
        return NULL;
    p = json_space(p + 1);
    while (p && *p == '"') {
        const char *key_end = json_string(p);
        if (!key_end)
            return NULL;
        bool match = (size_t)(key_end - p - 2) == strlen(key) && !strncmp(p + 1, key, strlen(key));
        p = json_space(key_end);
        if (*p++ != ':')
            return NULL;
        p = json_space(p);
        if (match)
            return p;
        p = json_space(json_value(p));
        if (p && *p == ',')
            p = json_space(p + 1);
    }
    return NULL;
}

/* Element k of the array at p, or NULL; *count (when not NULL) gets the array's length. */
static const char *element(const char *array, unsigned k, unsigned *count)
{
    const char *p = json_space(array), *found = NULL;
    if (!p || *p != '[')
        return NULL;
    p = json_space(p + 1);
    unsigned i = 0;
    for (; p && *p && *p != ']'; i++) {
        if (i == k)
            found = p;
        p = json_space(json_value(p));
        if (p && *p == ',')
            p = json_space(p + 1);
    }
    if (count)
        *count = i;
    return found;
}

static double number_member(const char *object, const char *key)
{
    const char *v = member(object, key);
    return v && (*v == '-' || isdigit((unsigned char)*v)) ? strtod(v, NULL) : NAN;
}

static bool string_member_is(const char *object, const char *key, const char *expected)
{
    const char *v = member(object, key);
    size_t len = strlen(expected);
    return v && *v == '"' && strncmp(v + 1, expected, len) == 0 && v[len + 1] == '"';
}

static bool null_member(const char *object, const char *key)
{
    const char *v = member(object, key);
    return v && strncmp(v, "null", 4) == 0;
}

/* The file holds one JSON value and nothing but white space after it. */
static bool one_json_value(const char *text)
{
    const char *end = json_space(json_value(text));
    if (end && *end == '\0')
        return true;
    fprintf(stderr, "\nnot one JSON value: %.400s\n", text);
    return false;
}

/* A row of "results": its name and workers, `runs` times, median within min..max, speedup over
 * serial C > 0. */
static void check_row(const char *row, const char *name, double workers, unsigned runs)
{
    CU_ASSERT(string_member_is(row, "name", name));
    CU_ASSERT_EQUAL(number_member(row, "workers"), workers);
    CU_ASSERT_EQUAL(number_member(row, "runs"), runs);
    unsigned times = 0;
    const char *list = member(row, "times");
    CU_ASSERT_PTR_NOT_NULL(list);
    if (list)
        element(list, 0, &times);
    CU_ASSERT_EQUAL(times, runs);
    double min = number_member(row, "min"), median = number_member(row, "median"),
           max = number_member(row, "max");
    CU_ASSERT(min > 0 && min <= median && median <= max);
    for (unsigned k = 0; list && k < times; k++) {
        double t = strtod(element(list, k, NULL), NULL);
        CU_ASSERT(t >= min && t <= max);
    }
    CU_ASSERT(number_member(row, "stddev") >= 0);
    CU_ASSERT(number_member(row, "speedup_serial") > 0);
    CU_ASSERT(number_member(row, "efficiency") > 0);
}

/* ---- bench fib: the table and the three files ----------------------------------------- */

static void check_json(const char *path)
{
    char *json = harness_read_file(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    CU_ASSERT(one_json_value(json));
    const char *context = member(json, "context"), *results = member(json, "results");
    CU_ASSERT_PTR_NOT_NULL(context);
    CU_ASSERT_PTR_NOT_NULL(results);
    if (!context || !results) {
        free(json);
        return;
    }
    CU_ASSERT_EQUAL(number_member(context, "schema_version"), 3);
    /* the default: pareng's cutoff, auto, and no grain; the peers' grain a number */
    CU_ASSERT(string_member_is(context, "cutoff", "auto"));
    CU_ASSERT(null_member(context, "grain"));
    CU_ASSERT(member(context, "grain_auto") == NULL);
    CU_ASSERT(number_member(context, "peer_grain") > 10);
    CU_ASSERT_EQUAL(number_member(context, "n"), 20);
    CU_ASSERT_EQUAL(number_member(context, "result"), FIB_N);
    CU_ASSERT(number_member(context, "cores") >= 1 && number_member(context, "pus") >= 1);
    const char *strings[] = {"host", "cpu_model", "compiler", "build_flags", "pareng_version",
                             "date"};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        const char *v = member(context, strings[i]);
        CU_ASSERT(v && *v == '"');
    }
    unsigned rows = 0;
    element(results, 0, &rows);
    CU_ASSERT_EQUAL(rows, 3);
    if (rows == 3) {
        const char *serial = element(results, 0, NULL), *one = element(results, 1, NULL),
                   *two = element(results, 2, NULL);
        check_row(serial, "serial", 1, 3);
        check_row(one, "pareng", 1, 3);
        check_row(two, "pareng", 2, 3);
        CU_ASSERT_EQUAL(number_member(serial, "speedup_serial"), 1);
        CU_ASSERT(null_member(serial, "speedup_1") && null_member(serial, "near_steals"));
        CU_ASSERT(null_member(serial, "cutoff") && null_member(serial, "grain"));
        CU_ASSERT_EQUAL(number_member(one, "speedup_1"), 1);
        CU_ASSERT(number_member(two, "speedup_1") > 0);
        for (const char *row = one; row; row = row == one ? two : NULL) {
            CU_ASSERT(null_member(row, "grain"));
            CU_ASSERT(string_member_is(row, "cutoff", "auto"));
            CU_ASSERT(number_member(row, "near_steals") >= 0);
            CU_ASSERT(number_member(row, "far_steals") >= 0);
            double idle = number_member(row, "idle_fraction");
            CU_ASSERT(idle >= 0 && idle <= 1);
        }
    }
    free(json);
}

#define CSV_HEADER                                                                            \
    "name,workers,cutoff,grain,runs,median,min,max,stddev,speedup_serial,speedup_1,efficiency," \
    "near_steals,far_steals,idle_fraction,times"

static void check_csv_text(const char *csv)
{
    char line[4096];
    CU_ASSERT(line_of(csv, 0, line, sizeof line) && strcmp(line, CSV_HEADER) == 0);
    CU_ASSERT_EQUAL(count_lines(csv), 4);
    const char *names[] = {"serial,1,,,3,", "pareng,1,auto,,3,", "pareng,2,auto,,3,"};
    for (unsigned i = 0; i < 3; i++) {
        CU_ASSERT(line_of(csv, i + 1, line, sizeof line) && contains(line, names[i]));
        /* the last field: the three run times */
        const char *times = strrchr(line, ',');
        unsigned separators = 0;
        for (const char *p = times; p && *p; p++)
            separators += *p == ';';
        CU_ASSERT_EQUAL(separators, 2);
    }
}

static void check_csv(const char *path)
{
    char *csv = harness_read_file(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
    check_csv_text(csv);
    free(csv);
}

static unsigned occurrences(const char *text, const char *part)
{
    unsigned n = 0;
    for (const char *p = strstr(text, part); p; p = strstr(p + 1, part))
        n++;
    return n;
}

static void check_svg(const char *path)
{
    char *svg = harness_read_file(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(svg);
    CU_ASSERT(strncmp(svg, "<svg", 4) == 0);
    CU_ASSERT(contains(svg, "xmlns=\"http://www.w3.org/2000/svg\""));
    CU_ASSERT(contains(svg, "<polyline data-series=\"ideal\""));
    CU_ASSERT(contains(svg, "<g data-series=\"pareng\">\n<polyline"));
    CU_ASSERT_EQUAL(occurrences(svg, "<polyline"), 2); /* the ideal line and pareng */
    CU_ASSERT(contains(svg, ">workers</text>") && contains(svg, "speedup over serial C"));
    CU_ASSERT(contains(svg, "</svg>\n"));
    free(svg);
}

static void test_fib_files(void)
{
    char json[96], csv[96], svg[96];
    scratch_path(json, sizeof json, "bench.json");
    scratch_path(csv, sizeof csv, "bench.csv");
    scratch_path(svg, sizeof svg, "bench.svg");
    command *c = RUN("bench", "fib", N, "--runs", "3", "--warmup", "0", "--workers", "1,2",
                     "--export-json", json, "--export-csv", csv, "--plot", svg);
    CU_ASSERT(exited_with(c, 0));
    /* the context first, then one table row per measurement */
    CU_ASSERT(strncmp(c->out, "host:", 5) == 0);
    CU_ASSERT(contains(c->out, "\nCPU:") && contains(c->out, "\nbuild:     pareng "));
    CU_ASSERT(contains(c->out, "\nworkload:  fib(20) = 6765, cutoff auto, 3 runs after 0 "
                               "warm-ups per row; computation time in "));
    CU_ASSERT(contains(c->out, "\nserial        1 ") && contains(c->out, "\npareng        1 ") &&
              contains(c->out, "\npareng        2 "));
    /* stderr is a pipe: no progress line, and warnings are whole lines */
    CU_ASSERT_PTR_NULL(strchr(c->err, '\r'));
    assert_no_leftover(c);
    command_free(c);
    check_json(json);
    check_csv(csv);
    check_svg(svg);
}

/* The context of a topology without packages or cores (HWLOC_SYNTHETIC="pu:4"; hwloc-calc
 * calls both unavailable there): none counted, each PU its own core. It said "0 packages, 0
 * cores, 4 PUs; this process may use 4 cores". */
static void test_context_without_packages_or_cores(void)
{
    setenv("HWLOC_SYNTHETIC", "pu:4", 1);
    command *c = RUN("bench", "fib", "10", "--runs", "1", "--warmup", "0", "--workers", "1");
    unsetenv("HWLOC_SYNTHETIC");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(contains(c->out, "\ntopology:  4 PUs; this process may use 4 cores, 4 PUs\n"));
    command_free(c);
}

/* bench fib N-M: a line per n, and files with a point per n whose results are fib's, whose
 * ratios are the medians' quotients, and a plot with a series per worker count. */
static void test_sweep(void)
{
    char json[96], csv[96], svg[96];
    scratch_path(json, sizeof json, "sweep.json");
    scratch_path(csv, sizeof csv, "sweep.csv");
    scratch_path(svg, sizeof svg, "sweep.svg");
    command *c = RUN("bench", "fib", "10-13", "--runs", "3", "--warmup", "0", "--workers",
                     "1,2", "--export-json", json, "--export-csv", csv, "--plot", svg);
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(contains(c->out, "\nfib(10..13): each runtime's time / serial C's"));
    CU_ASSERT(contains(c->out, "serial C    pareng 1    pareng 2\n"));
    for (unsigned n = 10; n <= 13; n++) {
        char line[16];
        snprintf(line, sizeof line, "\n  %u ", n);
        CU_ASSERT(contains(c->out, line));
    }
    CU_ASSERT(!contains(c->err, "takes only")); /* short runs are the sweep's point */
    assert_no_leftover(c);
    command_free(c);

    char *text = harness_read_file(json);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT(one_json_value(text));
    const char *context = member(text, "context"), *points = member(text, "sweep");
    CU_ASSERT_PTR_NOT_NULL_FATAL(context);
    CU_ASSERT_PTR_NOT_NULL_FATAL(points);
    CU_ASSERT_EQUAL(number_member(context, "n_first"), 10);
    CU_ASSERT_EQUAL(number_member(context, "n_last"), 13);
    unsigned count = 0;
    element(points, 0, &count);
    CU_ASSERT_EQUAL_FATAL(count, 4);
    static const double fib[] = {55, 89, 144, 233};
    for (unsigned k = 0; k < 4; k++) {
        const char *pt = element(points, k, NULL);
        CU_ASSERT_EQUAL(number_member(pt, "n"), 10 + k);
        CU_ASSERT_EQUAL(number_member(pt, "result"), fib[k]);
        double serial = number_member(pt, "serial");
        CU_ASSERT(serial > 0);
        const char *rows = member(pt, "rows");
        unsigned n_rows = 0;
        element(rows, 0, &n_rows);
        CU_ASSERT_EQUAL_FATAL(n_rows, 2);
        for (unsigned r = 0; r < 2; r++) {
            const char *row = element(rows, r, NULL);
            CU_ASSERT(string_member_is(row, "name", "pareng"));
            CU_ASSERT_EQUAL(number_member(row, "workers"), r + 1);
            double median = number_member(row, "median"), ratio = number_member(row, "ratio");
            CU_ASSERT(median > 0 && fabs(ratio - median / serial) <= 1e-6 * ratio);
        }
    }
    free(text);

    text = harness_read_file(csv);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    char line[256];
    CU_ASSERT(line_of(text, 0, line, sizeof line) &&
              strcmp(line, "n,result,serial,name,workers,median,ratio") == 0);
    CU_ASSERT_EQUAL(count_lines(text), 1 + 4 * 2);
    CU_ASSERT(line_of(text, 8, line, sizeof line) && strncmp(line, "13,233,", 7) == 0 &&
              contains(line, ",pareng,2,"));
    free(text);

    text = harness_read_file(svg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT(strncmp(text, "<svg", 4) == 0 && contains(text, "</svg>\n"));
    CU_ASSERT(contains(text, "<g data-series=\"pareng 1\">") &&
              contains(text, "<g data-series=\"pareng 2\">"));
    CU_ASSERT_EQUAL(occurrences(text, "<polyline"), 2);
    CU_ASSERT_EQUAL(occurrences(text, "<circle"), 8);
    CU_ASSERT(contains(text, "serial C's time (ms)"));
    free(text);
}

/* ---- peers: the contract, with stand-ins ---------------------------------------------- */

static void write_script(const char *name, const char *body)
{
    char path[128];
    scratch_path(path, sizeof path, name);
    FILE *f = fopen(path, "we");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    CU_ASSERT(chmod(path, 0755) == 0);
}

static void test_peers(void)
{
    /* openmp answers as the contract says (its arguments checked by the script), tbb fails */
    char peer_env[128], script[512];
    scratch_path(peer_env, sizeof peer_env, "peer-env");
    /* it also writes down its grain and what the CLI left in its environment */
    snprintf(script, sizeof script,
             "[ \"$1 $2\" = \"20 2\" ] || exit 9\n"
             "echo \"${HWLOC_PLUGINS_BLACKLIST-unset}|$3\" > %s\n"
             "echo '{\"result\":6765,\"seconds\":0.000125}'", peer_env);
    write_script("fib-openmp", script);
    write_script("fib-tbb", "echo 'out of luck' >&2; exit 3");
    char json[96];
    scratch_path(json, sizeof json, "peers.json");
    setenv("PARENG_PEERS_DIR", scratch, 1);
    unsetenv("HWLOC_PLUGINS_BLACKLIST");
    command *c = RUN("bench", "fib", N, "--runs", "2", "--workers", "2", "--peers",
                     "--export-json", json);
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(contains(c->err, "peer tbb failed (exit status 3)"));
    CU_ASSERT(contains(c->err, "the peers get grain"));
    CU_ASSERT(contains(c->out, "\nopenmp        2 "));
    assert_no_leftover(c);
    command_free(c);
    /* The CLI, as its own program, skips hwloc's device plugins (its children inherit the
     * variable), and passes the peers fib's model grain under the default cutoff. */
    char *seen = harness_read_file(peer_env);
    CU_ASSERT_PTR_NOT_NULL_FATAL(seen);
    CU_ASSERT(strncmp(seen, "hwloc_pci,hwloc_opencl,hwloc_gl,hwloc_xml_libxml|", 49) == 0);
    CU_ASSERT(atoi(strchr(seen, '|') + 1) > 10);
    free(seen);
    /* a value of the user's, even empty, is kept; --grain G is the peers' grain too, and
     * --cutoff none makes theirs 0 (every call a task) */
    setenv("HWLOC_PLUGINS_BLACKLIST", "", 1);
    c = RUN("bench", "fib", N, "--runs", "1", "--workers", "2", "--peers", "--grain", "7");
    unsetenv("HWLOC_PLUGINS_BLACKLIST");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(contains(c->out, "\nworkload:  fib(20) = 6765, grain 7, "));
    command_free(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(seen = harness_read_file(peer_env));
    CU_ASSERT_STRING_EQUAL(seen, "|7\n");
    free(seen);
    c = RUN("bench", "fib", N, "--runs", "1", "--workers", "2", "--peers", "--cutoff", "none");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(contains(c->out, "\nworkload:  fib(20) = 6765, cutoff none; peers: grain 0, "));
    command_free(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(seen = harness_read_file(peer_env));
    CU_ASSERT(strstr(seen, "|0\n") != NULL);
    free(seen);
    unsetenv("PARENG_PEERS_DIR");

    char *text = harness_read_file(json);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT(one_json_value(text));
    const char *results = member(text, "results");
    unsigned rows = 0;
    element(results, 0, &rows);
    CU_ASSERT_EQUAL(rows, 3); /* serial, pareng, openmp: no half row of tbb */
    const char *openmp = element(results, 2, NULL);
    if (openmp) {
        check_row(openmp, "openmp", 2, 2);
        CU_ASSERT_EQUAL(number_member(openmp, "median"), 0.000125);
        CU_ASSERT(null_member(openmp, "speedup_1")); /* no 1-worker row of openmp */
        CU_ASSERT(null_member(openmp, "near_steals") && null_member(openmp, "idle_fraction"));
    }
    free(text);

    /* nowhere to be found: said once per peer, and the benchmark goes on */
    setenv("PARENG_PEERS_DIR", "/nonexistent-pareng-peers", 1);
    c = RUN("bench", "fib", "10", "--runs", "1", "--workers", "1", "--peers");
    unsetenv("PARENG_PEERS_DIR");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(contains(c->err, "peer openmp not found") && contains(c->err, "peer tbb not found"));
    CU_ASSERT(contains(c->out, "\npareng        1 "));
    command_free(c);
}

/* bench fib on 1 worker with the peer fib-openmp running `script`, which writes a pid and a
 * newline to pid_path: the pid, once written (0 when it was not in time) */
static command *start_bench_with_peer(const char *script, const char *pid_path, pid_t *pid)
{
    unlink(pid_path);
    write_script("fib-openmp", script);
    setenv("PARENG_PEERS_DIR", scratch, 1);
    command *c = command_start("bench", "fib", N, "--runs", "1", "-w", "0", "--workers", "1",
                               "--peers", (const char *)NULL);
    unsetenv("PARENG_PEERS_DIR");
    char *said = NULL;
    for (double deadline = now_ms() + COMMAND_TIMEOUT_MS;
         now_ms() < deadline && !(said && strchr(said, '\n')); usleep(1000)) {
        free(said);
        said = harness_read_file(pid_path);
    }
    *pid = said && strchr(said, '\n') ? (pid_t)atoi(said) : 0;
    free(said);
    return c;
}

/* bench killed while a peer runs (SIGKILL: no handler of bench's runs): the peer dies with it
 * instead of running on, reparented to init. */
static void test_peer_dies_with_bench(void)
{
    char pid_path[96], script[256];
    scratch_path(pid_path, sizeof pid_path, "peer.pid");
    snprintf(script, sizeof script, "echo $$ > %s\nexec sleep 60", pid_path);
    pid_t peer;
    command *c = start_bench_with_peer(script, pid_path, &peer);
    CU_ASSERT(peer > 0);
    if (peer <= 0) {
        command_free(c);
        return;
    }
    CU_ASSERT_EQUAL(kill(c->pid, SIGKILL), 0);
    CU_ASSERT(command_await(c, COMMAND_TIMEOUT_MS, false));
    /* the peer is of bench's process group: the group empties */
    double deadline = now_ms() + COMMAND_TIMEOUT_MS;
    while (now_ms() < deadline && live_members_in(c->pid, false) > 0)
        usleep(1000);
    assert_no_leftover(c);
    command_free(c);
}

/* A peer that leaves a process behind holding its stdout (a helper it started, which outlives
 * it): ^C killed the peer, then waited on the pipe until that process ended (30 s here). It
 * ends the bench at once, status 130. */
static void test_interrupt_with_a_peers_leftover(void)
{
    char pid_path[96], script[320];
    scratch_path(pid_path, sizeof pid_path, "leftover.pid");
    snprintf(script, sizeof script,
             "sleep 30 &\necho $! > %s\necho '{\"result\":%llu,\"seconds\":0.1}'\nwait", pid_path,
             (unsigned long long)FIB_N);
    pid_t leftover;
    command *c = start_bench_with_peer(script, pid_path, &leftover);
    CU_ASSERT(leftover > 0);
    if (leftover <= 0) {
        command_free(c);
        return;
    }
    double sent = now_ms();
    CU_ASSERT_EQUAL(kill(c->pid, SIGINT), 0);
    CU_ASSERT(command_await(c, 10000, false));
    CU_ASSERT(now_ms() - sent < 10000);
    CU_ASSERT(exited_with(c, 130));
    kill(leftover, SIGKILL);
    command_free(c);
}

/* Whether every number in the SVG's tags is finite: what lies between the tags (the title,
 * the host's name) may spell "inf", a coordinate may not. */
static bool svg_numbers_finite(const char *svg)
{
    char *tags = calloc(1, strlen(svg) + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tags);
    size_t n = 0;
    bool in_tag = false;
    for (const char *p = svg; *p; p++) {
        in_tag = *p == '<' || (in_tag && *p != '>');
        if (in_tag)
            tags[n++] = *p;
    }
    bool finite = !strstr(tags, "nan") && !strstr(tags, "inf");
    if (!finite)
        fprintf(stderr, "\nnot a number in the SVG: %s\n", svg);
    free(tags);
    return finite;
}

/* A peer that reports a time of 1e-320 s: its speedups are infinite, the table says "inf",
 * and the plot leaves its points out (they were drawn at cy="-inf"). */
static void test_peer_of_no_time(void)
{
    write_script("fib-openmp", "echo '{\"result\":6765,\"seconds\":1e-320}'");
    char svg_path[96];
    scratch_path(svg_path, sizeof svg_path, "no-time.svg");
    setenv("PARENG_PEERS_DIR", scratch, 1);
    command *c = RUN("bench", "fib", N, "--runs", "1", "-w", "0", "--workers", "1", "--peers",
                     "--plot", svg_path);
    unsetenv("PARENG_PEERS_DIR");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(contains(c->out, "\nopenmp        1 ") && contains(c->out, " inf "));
    command_free(c);
    char *svg = harness_read_file(svg_path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(svg);
    CU_ASSERT(contains(svg, "</svg>\n") && svg_numbers_finite(svg));
    CU_ASSERT(contains(svg, "<title>pareng, 1 worker: "));
    CU_ASSERT(!contains(svg, "<title>openmp, 1 worker: "));
    free(svg);
}

/* On one core the warning says "1 core" (it said "1 cores"): this program is pinned to its
 * first CPU while bench starts, which inherits the mask. */
static void test_more_workers_than_one_core(void)
{
    cpu_set_t all;
    harness_pin_to_one_cpu(&all);
    command *c = RUN("bench", "fib", N, "--runs", "1", "-w", "0", "--workers", "2");
    harness_unpin(&all);
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(contains(c->err, "pareng: warning: 2 workers on 1 core: workers share cores"));
    command_free(c);
}

/* ---- bench spawn ------------------------------------------------------------------------ */

/* The number after `label` at the start of a line of text, or -1. */
static double figure_after(const char *text, const char *label)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\n%s", label);
    const char *p = strstr(text, pattern);
    return p ? strtod(p + strlen(pattern), NULL) : -1;
}

static void test_spawn(void)
{
    command *c = RUN("bench", "spawn", "--runs", "2");
    CU_ASSERT(exited_with(c, 0));
    double spawn_ns = figure_after(c->out, "spawn+sync, not stolen: ");
    double steal_ns = figure_after(c->out, "steal latency: ");
    CU_ASSERT(spawn_ns > 0);
    CU_ASSERT(steal_ns > 0);
    if (!(spawn_ns > 0 && steal_ns > 0))
        fprintf(stderr, "\nbench spawn printed: %s\n", c->out);
    assert_no_leftover(c);
    command_free(c);
}

/* --json: the document of --export-json on stdout, instead of the text; bench spawn too. */
/* The results hold exactly `count` rows, those named as check_row expects them. */
static void check_rows(const char *results, unsigned count, const char *const *names,
                       const unsigned *workers, unsigned runs)
{
    unsigned rows = 0;
    element(results, 0, &rows);
    CU_ASSERT_EQUAL(rows, count);
    for (unsigned i = 0; i < count && rows == count; i++)
        if (names[i])
            check_row(element(results, i, NULL), names[i], workers[i], runs);
}

/* bench uts: the tree's node count in every row, checked; the peer uts-openmp gets
 * `openmp TREE WORKERS DEPTH` (a script here, which checks them), the depth of a fixed
 * --cutoff. */
static void test_uts(void)
{
    write_script("uts-openmp", "[ \"$1 $2 $3 $4\" = \"openmp T1 2 3\" ] || exit 9\n"
                               "echo '{\"result\":4130071,\"seconds\":0.25}'");
    setenv("PARENG_PEERS_DIR", scratch, 1);
    command *c = RUN("bench", "uts", "t1", "--runs", "1", "-w", "0", "--workers", "2",
                     "--cutoff", "3", "--peers", "-j");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(one_json_value(c->out));
    const char *context = member(c->out, "context"), *results = member(c->out, "results");
    CU_ASSERT(context && string_member_is(context, "workload", "uts"));
    CU_ASSERT(context && string_member_is(context, "tree", "T1"));
    CU_ASSERT(context && number_member(context, "result") == 4130071);
    static const char *const names[] = {"serial", "pareng", "openmp"};
    static const unsigned workers[] = {1, 2, 2};
    check_rows(results, 3, names, workers, 1);
    CU_ASSERT(!contains(c->err, "tbb")); /* uts has no tbb peer: not looked for */
    assert_no_leftover(c);
    command_free(c);
    unsetenv("PARENG_PEERS_DIR");
}

static void test_json_on_stdout(void)
{
    command *c = RUN("bench", "fib", N, "--runs", "3", "-w", "0", "--workers", "1-2", "-j");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(one_json_value(c->out));
    CU_ASSERT(strncmp(c->out, "{\"context\":{\"schema_version\":3,", 31) == 0);
    static const char *const names[] = {"serial", NULL, "pareng"}; /* NULL: not checked */
    static const unsigned workers[] = {1, 0, 2};
    check_rows(member(c->out, "results"), 3, names, workers, 3);
    CU_ASSERT_PTR_NULL(strstr(c->out, "host:")); /* no text */
    command_free(c);

    c = RUN("bench", "spawn", "-r", "2", "--json");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(one_json_value(c->out));
    const char *context = member(c->out, "context"), *spawn = member(c->out, "spawn_sync"),
               *steal = member(c->out, "steal_latency");
    CU_ASSERT(context && string_member_is(context, "workload", "spawn"));
    CU_ASSERT(spawn && number_member(spawn, "median") > 0 && number_member(spawn, "pairs") == 1e7);
    unsigned runs = 0;
    if (spawn)
        element(member(spawn, "ns_per_pair"), 0, &runs);
    CU_ASSERT_EQUAL(runs, 2);
    CU_ASSERT(steal && number_member(steal, "trials") > 0 && number_member(steal, "workers") == 2);
    CU_ASSERT(steal && (number_member(steal, "median_ns") > 0 || null_member(steal, "median_ns")));
    CU_ASSERT_PTR_NULL(strstr(c->out, "host:"));
    command_free(c);
}

/* A FILE "-" is stdout, instead of the text, and never a file named "-". */
static void test_dash_is_stdout(void)
{
    char cwd[512], dash[128];
    CU_ASSERT_FATAL(getcwd(cwd, sizeof cwd) != NULL);
    CU_ASSERT_FATAL(chdir(scratch) == 0); /* where a file named "-" would appear */
    scratch_path(dash, sizeof dash, "-");
    command *json = RUN("bench", "fib", N, "--runs", "3", "-w", "0", "--workers", "1,2",
                        "--export-json", "-");
    command *csv = RUN("bench", "fib", N, "--runs", "3", "-w", "0", "--workers", "1,2",
                       "--export-csv", "-");
    command *svg = RUN("bench", "fib", N, "--runs", "1", "--workers", "1", "--plot", "-");
    CU_ASSERT_FATAL(chdir(cwd) == 0);
    CU_ASSERT(exited_with(json, 0) && exited_with(csv, 0) && exited_with(svg, 0));
    CU_ASSERT(one_json_value(json->out));
    CU_ASSERT(member(json->out, "results") != NULL);
    check_csv_text(csv->out);
    CU_ASSERT(strncmp(svg->out, "<svg", 4) == 0 && contains(svg->out, "</svg>\n"));
    CU_ASSERT(access(dash, F_OK) != 0);
    command_free(json);
    command_free(csv);
    command_free(svg);
}

/* ^C during a benchmark: the rows measured so far are kept, printed and written, and the
 * status is 130; the row that was being measured is dropped. */
static void test_interrupt_keeps_rows(void)
{
    char csv_path[128], json_path[128];
    scratch_path(csv_path, sizeof csv_path, "interrupted.csv");
    scratch_path(json_path, sizeof json_path, "interrupted.json");
    /* fib(27) about 0.3 ms: a row of 2000 runs takes about a second here */
    command *c = command_start("bench", "fib", "27", "--runs", "2000", "--workers", "1,2",
                               "--export-csv", csv_path, "--export-json", json_path,
                               (const char *)NULL);
    bool serial_done = command_await_output(c, "\nserial        1 ", COMMAND_TIMEOUT_MS);
    CU_ASSERT(serial_done);
    CU_ASSERT_EQUAL(kill(c->pid, SIGINT), 0);
    bool ended = command_await(c, COMMAND_TIMEOUT_MS, false);
    CU_ASSERT_FATAL(ended);
    CU_ASSERT(exited_with(c, 130));
    CU_ASSERT(contains(c->err, "pareng: bench: interrupted by SIGINT: "));
    /* the rows of the table on stdout are those of the files: serial C at least, never all */
    unsigned printed = 0;
    for (const char *p = strstr(c->out, "\nruntime workers"); p && (p = strchr(p + 1, '\n'));)
        printed += p[1] != '\0';
    CU_ASSERT(printed >= 1 && printed < 3);
    assert_no_leftover(c);
    command_free(c);

    char *csv = harness_read_file(csv_path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
    char line[1 << 16];
    CU_ASSERT(line_of(csv, 0, line, sizeof line) && strcmp(line, CSV_HEADER) == 0);
    CU_ASSERT_EQUAL(count_lines(csv), 1 + printed);
    CU_ASSERT(line_of(csv, 1, line, sizeof line) && strncmp(line, "serial,1,,,2000,", 16) == 0);
    for (unsigned i = 1; i <= printed && line_of(csv, i, line, sizeof line); i++) {
        unsigned separators = 0; /* every row whole: 2000 times */
        for (const char *p = strrchr(line, ','); p && *p; p++)
            separators += *p == ';';
        CU_ASSERT_EQUAL(separators, 1999);
    }
    free(csv);
    char *json = harness_read_file(json_path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    CU_ASSERT(one_json_value(json));
    unsigned rows = 0;
    element(member(json, "results"), 0, &rows);
    CU_ASSERT_EQUAL(rows, printed);
    CU_ASSERT(number_member(member(json, "context"), "result") == 196418);
    free(json);
}

/* Whether pid catches sig (/proc/PID/status, SigCgt) within timeout_ms: a signal sent before
 * would end the CLI by its default action instead. */
static bool await_caught(pid_t pid, int sig, int timeout_ms)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    for (double deadline = now_ms() + timeout_ms; now_ms() < deadline; usleep(1000)) {
        FILE *f = fopen(path, "re");
        unsigned long long caught = 0;
        while (f && fgets(line, sizeof line, f))
            sscanf(line, "SigCgt: %llx", &caught);
        if (f)
            fclose(f);
        if (caught >> (sig - 1) & 1)
            return true;
    }
    return false;
}

/* ^C before any row is measured: status 130, and the plot is a finished picture with no
 * points (its empty axes made a tick step of 0, and the axis was written for ever). */
static void test_interrupt_before_any_row(void)
{
    /* the serial row alone takes seconds: ^C comes inside it */
    command *c = command_start("bench", "fib", "27", "--runs", "20000", "--workers", "1",
                               "--plot", "-", (const char *)NULL);
    CU_ASSERT(await_caught(c->pid, SIGINT, COMMAND_TIMEOUT_MS));
    CU_ASSERT_EQUAL(kill(c->pid, SIGINT), 0);
    bool ended = command_await(c, COMMAND_TIMEOUT_MS, false);
    CU_ASSERT(ended);
    if (!ended) {
        command_free(c); /* killed */
        return;
    }
    CU_ASSERT(exited_with(c, 130));
    CU_ASSERT(contains(c->err, "pareng: bench: interrupted by SIGINT: 0 rows measured, kept"));
    CU_ASSERT(strncmp(c->out, "<svg", 4) == 0 && contains(c->out, "</svg>\n"));
    CU_ASSERT(svg_numbers_finite(c->out));
    assert_no_leftover(c);
    command_free(c);
}

/* SIGTERM while serial C computes fib(60), which takes hours: it ended the bench only when the
 * run did (`timeout 20 pareng bench fib 90` ran on for 10 minutes). Status 143 at once. */
static void test_sigterm_during_a_long_serial_run(void)
{
    command *c = command_start("bench", "fib", "60", "--runs", "1", "--workers", "1",
                               (const char *)NULL);
    CU_ASSERT(await_caught(c->pid, SIGTERM, COMMAND_TIMEOUT_MS));
    usleep(200000); /* inside the serial run */
    double sent = now_ms();
    CU_ASSERT_EQUAL(kill(c->pid, SIGTERM), 0);
    bool ended = command_await(c, 10000, false);
    CU_ASSERT(ended);
    if (!ended) {
        command_free(c); /* killed */
        return;
    }
    CU_ASSERT(now_ms() - sent < 5000);
    CU_ASSERT(exited_with(c, 143));
    CU_ASSERT(contains(c->err, "pareng: bench: interrupted by SIGTERM: 0 rows measured"));
    assert_no_leftover(c);
    command_free(c);
    /* the process that computes dies with the bench, also when nothing could say so */
    c = command_start("bench", "fib", "60", "--runs", "1", "--workers", "1", (const char *)NULL);
    CU_ASSERT(await_caught(c->pid, SIGTERM, COMMAND_TIMEOUT_MS));
    usleep(200000);
    CU_ASSERT_EQUAL(kill(c->pid, SIGKILL), 0);
    CU_ASSERT(command_await(c, 10000, false));
    double deadline = now_ms() + 5000;
    while (live_members_of_group(c->pid) > 0 && now_ms() < deadline)
        usleep(10000);
    CU_ASSERT_EQUAL(live_members_of_group(c->pid), 0);
    command_free(c);
}

/* ^C during bench spawn: status 130 and the line that says so, as for the other workloads
 * (it ended with 130 and said nothing). */
static void test_interrupt_spawn(void)
{
    command *c = command_start("bench", "spawn", "--runs", "100000", (const char *)NULL);
    CU_ASSERT(await_caught(c->pid, SIGINT, COMMAND_TIMEOUT_MS));
    CU_ASSERT_EQUAL(kill(c->pid, SIGINT), 0);
    CU_ASSERT(command_await(c, COMMAND_TIMEOUT_MS, false));
    CU_ASSERT(exited_with(c, 130));
    CU_ASSERT(contains(c->err, "pareng: bench: interrupted by SIGINT: no figure printed"));
    assert_no_leftover(c);
    command_free(c);
}

/* On a terminal, stderr shows what is measured and about how long is left, redrawn in place
 * and cleared at the end; the table on stdout is the same as without it. */
static void test_progress_on_terminal(void)
{
    int master, slave;
    if (openpty(&master, &slave, NULL, NULL, NULL) < 0) {
        fprintf(stderr, "\nno pseudo-terminal here: progress not tested\n");
        return;
    }
    int out[2];
    CU_ASSERT_FATAL(pipe2(out, O_CLOEXEC) == 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        if (dup2(out[1], 1) < 0 || dup2(slave, 2) < 0)
            _exit(126);
        execl(pareng_bin, "pareng", "bench", "fib", "24", "--runs", "400", "--workers", "1",
              (char *)NULL);
        _exit(127);
    }
    close(slave);
    close(out[1]);
    if (n_started < MAX_COMMANDS)
        started[n_started++] = pid;
    char *err = calloc(1, OUTPUT_MAX), *text = calloc(1, OUTPUT_MAX);
    CU_ASSERT_FATAL(err && text);
    size_t err_len = 0, text_len = 0;
    struct pollfd fds[2] = {{.fd = master, .events = POLLIN}, {.fd = out[0], .events = POLLIN}};
    double deadline = now_ms() + COMMAND_TIMEOUT_MS;
    while ((fds[0].fd >= 0 || fds[1].fd >= 0) && now_ms() < deadline) {
        if (poll(fds, 2, 100) < 0 && errno != EINTR)
            break;
        for (int k = 0; k < 2; k++) {
            if (fds[k].fd < 0 || !fds[k].revents)
                continue;
            char *buf = k ? text : err;
            size_t *len = k ? &text_len : &err_len;
            ssize_t n = read(fds[k].fd, buf + *len, OUTPUT_MAX - 1 - *len);
            if (n > 0)
                *len += (size_t)n;
            else /* the end, or EIO once the terminal's last writer is gone */
                fds[k].fd = -1;
        }
    }
    int status = -1;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(master);
    close(out[0]);
    CU_ASSERT(contains(err, "\rmeasuring serial C, "));
    CU_ASSERT(contains(err, "\rmeasuring pareng on 1 worker, run "));
    CU_ASSERT(contains(err, ", run 400/400"));
    CU_ASSERT(contains(err, " s left\x1b[K"));
    /* cleared: the last thing on the terminal is the erased line, or a whole message */
    CU_ASSERT(err_len >= 4 && (strcmp(err + err_len - 4, "\r\x1b[K") == 0 ||
                               err[err_len - 1] == '\n'));
    CU_ASSERT_PTR_NULL(strchr(text, '\r'));
    CU_ASSERT(contains(text, "\nserial        1 ") && contains(text, "\npareng        1 "));
    free(err);
    free(text);
}

/* ---- bad input ------------------------------------------------------------------------ */

static void test_bad_input(void)
{
    CHECK_BAD_INPUT({{"bench"}, {"workload"}},
                    {{"bench", "pi", N}, {"'pi'", "fib, uts, spawn"}},
                    {{"bench", "uts"}, {"uts needs a tree", "T3L"}},
                    {{"bench", "uts", "T4"}, {"no sample tree 'T4'"}},
                    {{"bench", "uts", "T1", "-g", "3"}, {"bench uts does not take --grain"}},
                    {{"bench", "fib"}, {"fib needs N"}},
                    {{"bench", "fib", "94"}, {"94", "64 bits"}},
                    {{"bench", "fib", "x1"}, {"'x1'"}},
                    {{"bench", "fib", "20-18"}, {"'20-18'", "N-M"}},
                    {{"bench", "fib", "20-20"}, {"'20-20'"}},
                    {{"bench", "fib", "-5"}, {"'-5'"}},
                    {{"bench", "fib", "10-94"}, {"94", "64 bits"}},
                    {{"bench", "fib", N, "--runs", "0"}, {"--runs", "'0'"}},
                    {{"bench", "fib", N, "-r", "100001"}, {"--runs", "100000"}},
                    {{"bench", "fib", N, "--warmup", "-1"}, {"--warmup", "'-1'"}},
                    {{"bench", "fib", N, "--runs"}, {"--runs", "needs a value"}},
                    {{"bench", "fib", N, "--export-json"}, {"--export-json", "needs a value"}},
                    {{"bench", "fib", N, "--export"}, {"ambiguous", "--export-json, --export-csv"}},
                    {{"bench", "fib", N, "--json", "x.json"}, {"unexpected argument", "'x.json'"}},
                    {{"bench", "fib", N, "--bogus"}, {"'--bogus'"}},
                    {{"bench", "fib", N, "--grain", "g"}, {"--grain", "'g'"}},
                    {{"bench", "fib", N, "--cutoff", "g"}, {"--cutoff", "'g'"}},
                    {{"bench", "fib", N, "-g", "5", "--cutoff", "4"}, {"--grain 5 and --cutoff"}});
    CHECK_BAD_INPUT({{"bench", "fib", N, "--workers", "0"}, {"--workers", "from 1 to 512"}},
                    {{"bench", "fib", N, "--workers", "1,,2"}, {"'1,,2'"}},
                    {{"bench", "fib", N, "--workers", "1,2,"}, {"'1,2,'"}},
                    {{"bench", "fib", N, "--workers", "3-1"}, {"'3-1'"}},
                    {{"bench", "fib", N, "--workers", "core:0-1"}, {"'core:0-1'"}},
                    {{"bench", "fib", N, "--workers", "513"}, {"from 1 to 512"}},
                    {{"bench", "fib", N, "--cores", "1,2"}, {"--cores", "--workers LIST"}},
                    {{"bench", "fib", N, "35"}, {"'35'"}},
                    {{"bench", "fib", N, "--json", "--export-csv", "-"}, {"only one output",
                                                                         "stdout"}},
                    {{"bench", "fib", N, "--export-json", "-", "--plot", "-"}, {"only one output"}},
                    {{"bench", "spawn", "--export-json", "x.json"}, {"--export-json",
                                                                     "bench spawn"}},
                    {{"bench", "spawn", "--peers"}, {"--peers", "bench spawn"}},
                    {{"bench", "spawn", "--workers", "2"}, {"--workers", "bench spawn"}},
                    {{"bench", "spawn", "--runs", "0"}, {"--runs"}},
                    {{"bench", "spawn", "5"}, {"'5'"}});
}

/* An output file that cannot be written: status 1 before anything ran, one line naming it. */
static void test_unwritable_output(void)
{
    const char *options[] = {"--export-json", "--export-csv", "--plot"};
    for (unsigned i = 0; i < 3; i++) {
        command *c = RUN("bench", "fib", N, "--runs", "1", options[i],
                         "/nonexistent-pareng-dir/out");
        CU_ASSERT(exited_with(c, 1));
        CU_ASSERT(count_lines(c->err) == 1 && strncmp(c->err, "pareng: ", 8) == 0);
        CU_ASSERT(contains(c->err, options[i]) && contains(c->err, "/nonexistent-pareng-dir/out"));
        CU_ASSERT_EQUAL(c->out_len, 0);
        assert_no_leftover(c);
        command_free(c);
    }
}

/* --export-json naming a FIFO that nobody reads blocked the benchmark for ever; it is refused
 * at once. */
static void test_fifo_without_reader(void)
{
    char dir[] = "/tmp/pareng-test-fifo-XXXXXX", fifo[64];
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    snprintf(fifo, sizeof fifo, "%s/figures", dir);
    CU_ASSERT_FATAL(mkfifo(fifo, 0600) == 0);
    command *c = command_start("bench", "fib", N, "--runs", "1", "--export-json", fifo,
                               (const char *)NULL);
    CU_ASSERT(command_await(c, 10000, false));
    CU_ASSERT(exited_with(c, 1));
    CU_ASSERT(contains(c->err, "nobody reads"));
    assert_no_leftover(c);
    command_free(c);
    unlink(fifo);
    rmdir(dir);
}

/* Two outputs naming one file (or two links to it) wrote one over the other, exit 0: the file
 * held neither document. Refused before anything runs, status 2, the file as it was. */
static void test_two_outputs_in_one_file(void)
{
    char dir[] = "/tmp/pareng-test-same-XXXXXX", json[64], second[64];
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    snprintf(json, sizeof json, "%s/one.json", dir);
    snprintf(second, sizeof second, "%s/one-link.json", dir);
    const char *other[][2] = {{"--export-csv", json}, {"--plot", json}, {"--export-csv", second}};
    for (unsigned i = 0; i < 3; i++) {
        unlink(json);
        unlink(second);
        int fd = open(json, O_WRONLY | O_CREAT, 0600);
        CU_ASSERT_FATAL(fd >= 0 && write(fd, "kept", 4) == 4 && close(fd) == 0 &&
                        link(json, second) == 0);
        command *c = RUN("bench", "fib", N, "--runs", "1", "--export-json", json, other[i][0],
                         other[i][1]);
        CU_ASSERT(exited_with(c, 2));
        CU_ASSERT(contains(c->err, "the same file as --export-json") &&
                  contains(c->err, other[i][0]));
        CU_ASSERT_EQUAL(c->out_len, 0);
        char *kept = harness_read_file(json);
        CU_ASSERT(kept && strcmp(kept, "kept") == 0);
        free(kept);
        assert_no_leftover(c);
        command_free(c);
    }
    unlink(json);
    unlink(second);
    rmdir(dir);
}

/* The files in dir, "." and ".." left out */
static unsigned files_in(const char *dir)
{
    DIR *d = opendir(dir);
    unsigned n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d)
        closedir(d);
    return n;
}

/* A run that fails after its outputs were opened (here, its engine does not start) left a new
 * empty file where there was none, and in the same way a benchmark killed after its last row
 * emptied a file it was to replace. It leaves no new file, the old one as it was, nothing
 * written beside it; one that succeeds replaces it, mode kept. */
static void test_failed_run_leaves_outputs_as_they_were(void)
{
    char dir[] = "/tmp/pareng-test-failed-XXXXXX", trace[64], timeline[64];
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    snprintf(trace, sizeof trace, "%s/new.json", dir);
    snprintf(timeline, sizeof timeline, "%s/old.svg", dir);
    int fd = open(timeline, O_WRONLY | O_CREAT, 0640);
    CU_ASSERT_FATAL(fd >= 0 && write(fd, "kept", 4) == 4 && close(fd) == 0);
    setenv("HWLOC_SYNTHETIC", "not a topology", 1);
    command *c = RUN("run", "fib", N, "--trace", trace, "--timeline", timeline);
    unsetenv("HWLOC_SYNTHETIC");
    CU_ASSERT(exited_with(c, 1));
    CU_ASSERT_EQUAL(access(trace, F_OK), -1);
    char *kept = harness_read_file(timeline);
    CU_ASSERT(kept && strcmp(kept, "kept") == 0);
    free(kept);
    CU_ASSERT_EQUAL(files_in(dir), 1);
    assert_no_leftover(c);
    command_free(c);

    c = RUN("run", "fib", N, "--trace", trace, "--timeline", timeline);
    CU_ASSERT(exited_with(c, 0));
    char *doc = harness_read_file(trace);
    CU_ASSERT(doc && doc[0] == '{' && contains(doc, "traceEvents"));
    free(doc);
    char *svg = harness_read_file(timeline);
    CU_ASSERT(svg && contains(svg, "<svg"));
    free(svg);
    struct stat st;
    CU_ASSERT(stat(timeline, &st) == 0 && (st.st_mode & 0777) == 0640);
    CU_ASSERT_EQUAL(files_in(dir), 2);
    assert_no_leftover(c);
    command_free(c);

    /* through a symbolic link: its target replaced, the link kept */
    char link[64];
    snprintf(link, sizeof link, "%s/link.json", dir);
    CU_ASSERT_FATAL(symlink("new.json", link) == 0);
    c = RUN("run", "fib", N, "--trace", link);
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(lstat(link, &st) == 0 && S_ISLNK(st.st_mode));
    doc = harness_read_file(trace);
    CU_ASSERT(doc && contains(doc, "traceEvents"));
    free(doc);
    CU_ASSERT_EQUAL(files_in(dir), 3);
    command_free(c);

    /* an empty name is bad input, said so (it was "cannot write: No such file", status 1) */
    c = RUN("run", "fib", N, "--trace", "");
    CU_ASSERT(exited_with(c, 2));
    CU_ASSERT(contains(c->err, "--trace: an empty FILE name"));
    command_free(c);
    unlink(link);
    unlink(trace);
    unlink(timeline);
    rmdir(dir);
}

/* With stdout closed, the export file was opened as descriptor 1 and got the table before its
 * JSON, exit 0. Writing the table now fails (status 1) and the file holds the JSON alone. */
static void test_closed_stdout_is_not_an_output(void)
{
    char json[128], args[256], err[128];
    snprintf(json, sizeof json, "%s/closed-stdout.json", scratch);
    snprintf(err, sizeof err, ">&- 2>'%s/closed-stdout.err'", scratch);
    snprintf(args, sizeof args, "bench fib %s --runs 3 --warmup 0 --workers 1,2 --export-json '%s'",
             N, json);
    CU_ASSERT_EQUAL(shell_run(args, err), 1);
    char *doc = harness_read_file(json);
    CU_ASSERT(doc && strncmp(doc, "{", 1) == 0 && !contains(doc, "host:"));
    free(doc);
    check_json(json);
    snprintf(err, sizeof err, "%s/closed-stdout.err", scratch);
    char *said = harness_read_file(err);
    CU_ASSERT(said && contains(said, "cannot write the output"));
    free(said);
}

/* An output naming the file stdout is (/dev/stdout, or the file it was redirected to) got the
 * text and the document mixed, exit 0: refused, status 2, like two outputs in one file. */
static void test_an_output_in_stdouts_file_is_refused(void)
{
    const char *outputs[] = {"--export-json /dev/stdout", "--export-csv '%s/stdout.txt'",
                             "--plot '%s/stdout.txt'"};
    for (unsigned i = 0; i < 3; i++) {
        char output[160], args[256], redirections[256];
        snprintf(output, sizeof output, outputs[i], scratch);
        snprintf(args, sizeof args, "bench fib %s --runs 1 --workers 1 %s", N, output);
        snprintf(redirections, sizeof redirections, ">'%s/stdout.txt' 2>'%s/stdout.err'",
                 scratch, scratch);
        CU_ASSERT_EQUAL(shell_run(args, redirections), 2);
        char path[128];
        snprintf(path, sizeof path, "%s/stdout.err", scratch);
        char *said = harness_read_file(path);
        CU_ASSERT(said && contains(said, "the same file as stdout"));
        free(said);
    }
}

/* ---- the scratch directory -------------------------------------------------------------- */

static int make_scratch(void)
{
    snprintf(scratch, sizeof scratch, "/tmp/pareng-test-bench-XXXXXX");
    return mkdtemp(scratch) ? 0 : -1;
}

/* Everything the tests wrote there, whatever it is called, then the directory. */
static int remove_scratch(void)
{
    DIR *d = opendir(scratch);
    for (struct dirent *entry; d && (entry = readdir(d));) {
        if (strcmp(entry->d_name, ".") && strcmp(entry->d_name, "..")) {
            unlinkat(dirfd(d), entry->d_name, 0);
        }
    }
    if (d)
        closedir(d);
    return rmdir(scratch);
}

int main(void)
{
    if (!harness_find_pareng())
        return 99;
    CU_TestInfo happy[] = {
        {"bench fib: table, JSON, CSV, SVG", test_fib_files},
        {"context without packages or cores", test_context_without_packages_or_cores},
        {"bench fib N-M: the curve, JSON, CSV, SVG", test_sweep},
        {"--peers: contract, failing and missing peers", test_peers},
        {"a peer of 0 s: no infinite point in the plot", test_peer_of_no_time},
        {"a peer dies with a killed bench", test_peer_dies_with_bench},
        {"^C with a peer's leftover holding the pipe", test_interrupt_with_a_peers_leftover},
        {"more workers than one core: warning", test_more_workers_than_one_core},
        {"uts: the tree counted, its OpenMP peer", test_uts},
        {"bench spawn: two figures", test_spawn},
        {"--json: the document on stdout", test_json_on_stdout},
        {"FILE -: stdout, no file named -", test_dash_is_stdout},
        {"^C keeps the rows measured, status 130", test_interrupt_keeps_rows},
        {"^C before any row: a plot of no points", test_interrupt_before_any_row},
        {"SIGTERM during a serial run of hours: status 143 at once",
         test_sigterm_during_a_long_serial_run},
        {"^C during bench spawn: said, status 130", test_interrupt_spawn},
        {"progress and time left on a terminal", test_progress_on_terminal},
        {"a closed stdout is no output file", test_closed_stdout_is_not_an_output},
        {"an output in stdout's file refused", test_an_output_in_stdouts_file_is_refused},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo bad[] = {
        {"bad input: status 2", test_bad_input},
        {"unwritable output: status 1", test_unwritable_output},
        {"a FIFO nobody reads: refused, not waited on", test_fifo_without_reader},
        {"two outputs in one file refused", test_two_outputs_in_one_file},
        {"a failed run leaves its outputs as they were; an empty name is refused",
         test_failed_run_leaves_outputs_as_they_were},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo last[] = {
        {"nothing left", test_nothing_left},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {.pName = "bench", .pInitFunc = make_scratch, .pCleanupFunc = remove_scratch,
         .pTests = happy},
        TESTING_SUITE("bad input", bad),
        TESTING_SUITE("leftovers", last),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
