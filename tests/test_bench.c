/*
 * test_bench.c - `pareng bench` as a user runs it (fork + exec of $PARENG_BIN, through
 * cli_harness.h): the files it writes (JSON fields and their consistency, CSV rows, an SVG with
 * one line per series and the ideal line), the peer contract (a stand-in peer that is a shell
 * script, one that fails, one missing), the spawn micro-benchmark's two figures, and bad input.
 *
 * Timings are benchmark output: they are checked for being numbers in a sane relation (min <=
 * median <= max, speedups > 0), never against a threshold.
 */
#include "cli_harness.h"

#include <sys/stat.h>

/* fib(20), small enough that every command here takes milliseconds. */
#define N "20"
#define FIB_N 6765

static char scratch[64]; /* a directory of this program's own, for the files */

static void scratch_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", scratch, name);
}

/* A whole file, NUL-terminated, or NULL. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *text = calloc(1, OUTPUT_MAX);
    size_t len = text ? fread(text, 1, OUTPUT_MAX - 1, f) : 0;
    fclose(f);
    if (text)
        text[len] = '\0';
    return text;
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
    char *json = read_file(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    CU_ASSERT(one_json_value(json));
    const char *context = member(json, "context"), *results = member(json, "results");
    CU_ASSERT_PTR_NOT_NULL(context);
    CU_ASSERT_PTR_NOT_NULL(results);
    if (!context || !results) {
        free(json);
        return;
    }
    CU_ASSERT_EQUAL(number_member(context, "schema_version"), 2);
    /* the default grain: pareng's is its own cutoff (no number), the peers' a number */
    CU_ASSERT(null_member(context, "grain"));
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
        CU_ASSERT_EQUAL(number_member(one, "speedup_1"), 1);
        CU_ASSERT(number_member(two, "speedup_1") > 0);
        for (const char *row = one; row; row = row == one ? two : NULL) {
            CU_ASSERT(null_member(row, "grain"));
            CU_ASSERT(number_member(row, "near_steals") >= 0);
            CU_ASSERT(number_member(row, "far_steals") >= 0);
            double idle = number_member(row, "idle_fraction");
            CU_ASSERT(idle >= 0 && idle <= 1);
        }
    }
    free(json);
}

static void check_csv(const char *path)
{
    char *csv = read_file(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(csv);
    char line[4096];
    CU_ASSERT(line_of(csv, 0, line, sizeof line) &&
              strncmp(line, "name,workers,grain,runs,median,min,max,", 39) == 0);
    CU_ASSERT_EQUAL(count_lines(csv), 4);
    const char *names[] = {"serial,1,", "pareng,1,", "pareng,2,"};
    for (unsigned i = 0; i < 3; i++) {
        CU_ASSERT(line_of(csv, i + 1, line, sizeof line) && contains(line, names[i]));
        /* the last field: the three run times */
        const char *times = strrchr(line, ',');
        unsigned separators = 0;
        for (const char *p = times; p && *p; p++)
            separators += *p == ';';
        CU_ASSERT_EQUAL(separators, 2);
    }
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
    char *svg = read_file(path);
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
    command *c = RUN("bench", "fib", N, "--runs", "3", "--warmup", "0", "--cores", "1,2",
                     "--json", json, "--csv", csv, "--plot", svg);
    CU_ASSERT(exited_with(c, 0));
    /* the context first, then one table row per measurement */
    CU_ASSERT(strncmp(c->out, "host:", 5) == 0);
    CU_ASSERT(contains(c->out, "\nCPU:") && contains(c->out, "\nbuild:     pareng "));
    CU_ASSERT(contains(c->out, "fib(20) = 6765"));
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
    write_script("fib-openmp", "[ \"$1 $2\" = \"20 2\" ] || exit 9\n"
                               "echo '{\"result\":6765,\"seconds\":0.000125}'");
    write_script("fib-tbb", "echo 'out of luck' >&2; exit 3");
    char json[96];
    scratch_path(json, sizeof json, "peers.json");
    setenv("PARENG_PEERS_DIR", scratch, 1);
    command *c = RUN("bench", "fib", N, "--runs", "2", "--cores", "2", "--peers", "--json", json);
    unsetenv("PARENG_PEERS_DIR");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(contains(c->err, "peer tbb failed (exit status 3)"));
    CU_ASSERT(contains(c->err, "the peers get grain"));
    CU_ASSERT(contains(c->out, "\nopenmp        2 "));
    assert_no_leftover(c);
    command_free(c);

    char *text = read_file(json);
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
    c = RUN("bench", "fib", "10", "--runs", "1", "--cores", "1", "--peers");
    unsetenv("PARENG_PEERS_DIR");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(contains(c->err, "peer openmp not found") && contains(c->err, "peer tbb not found"));
    CU_ASSERT(contains(c->out, "\npareng        1 "));
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

/* ---- bad input ------------------------------------------------------------------------ */

static void test_bad_input(void)
{
    CHECK_BAD_INPUT({{"bench"}, {"workload"}},
                    {{"bench", "pi", N}, {"'pi'", "fib, spawn"}},
                    {{"bench", "fib"}, {"fib needs N"}},
                    {{"bench", "fib", "94"}, {"94", "64 bits"}},
                    {{"bench", "fib", "x1"}, {"'x1'"}},
                    {{"bench", "fib", N, "--runs", "0"}, {"--runs", "'0'"}},
                    {{"bench", "fib", N, "--warmup", "-1"}, {"--warmup", "'-1'"}},
                    {{"bench", "fib", N, "--runs"}, {"--runs", "needs a value"}},
                    {{"bench", "fib", N, "--json"}, {"--json", "needs a value"}},
                    {{"bench", "fib", N, "--bogus"}, {"'--bogus'"}},
                    {{"bench", "fib", N, "--grain", "g"}, {"--grain", "'g'"}});
    CHECK_BAD_INPUT({{"bench", "fib", N, "--cores", "0"}, {"--cores", "from 1 to 512"}},
                    {{"bench", "fib", N, "--cores", "1,,2"}, {"'1,,2'"}},
                    {{"bench", "fib", N, "--cores", "1,2,"}, {"'1,2,'"}},
                    {{"bench", "fib", N, "--cores", "3-1"}, {"'3-1'"}},
                    {{"bench", "fib", N, "--cores", "core:0-1"}, {"'core:0-1'"}},
                    {{"bench", "fib", N, "--cores", "513"}, {"from 1 to 512"}},
                    {{"bench", "fib", N, "35"}, {"'35'"}},
                    {{"bench", "spawn", "--json", "x.json"}, {"--json", "bench spawn"}},
                    {{"bench", "spawn", "--peers"}, {"--peers", "bench spawn"}},
                    {{"bench", "spawn", "--runs", "0"}, {"--runs"}},
                    {{"bench", "spawn", "5"}, {"'5'"}});
}

/* An output file that cannot be written: status 1 before anything ran, one line naming it. */
static void test_unwritable_output(void)
{
    const char *options[] = {"--json", "--csv", "--plot"};
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

/* ---- the scratch directory -------------------------------------------------------------- */

static int make_scratch(void)
{
    snprintf(scratch, sizeof scratch, "/tmp/pareng-test-bench-XXXXXX");
    return mkdtemp(scratch) ? 0 : -1;
}

static int remove_scratch(void)
{
    const char *names[] = {"bench.json", "bench.csv", "bench.svg", "peers.json", "fib-openmp",
                           "fib-tbb"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[128];
        scratch_path(path, sizeof path, names[i]);
        unlink(path);
    }
    return rmdir(scratch);
}

int main(void)
{
    if (!harness_find_pareng())
        return 99;
    CU_TestInfo happy[] = {
        {"bench fib: table, JSON, CSV, SVG", test_fib_files},
        {"--peers: contract, failing and missing peers", test_peers},
        {"bench spawn: two figures", test_spawn},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo bad[] = {
        {"bad input: status 2", test_bad_input},
        {"unwritable output: status 1", test_unwritable_output},
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
