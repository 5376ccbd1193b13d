/*
 * test_io_cli.c - `pareng run fib N --io-latency DUR` as a user runs it: exact results, every
 * leaf waiting once on the ring, the waits overlapping (the run takes far less than the sum of
 * its waits, and more than one of them), the IO figures of --json and --stats, and bad
 * durations and option mixes refused with status 2 before anything starts.
 */
#include "pareng.h"
#include "cli_harness.h"

/* fib(n) for n >= 1 makes fib(n) leaf calls (n <= 2): L(1) = L(2) = 1, L(n) = L(n-1) + L(n-2). */
static double leaves(unsigned n)
{
    return (double)workload_fib_serial(n);
}

static void test_exact_results(void)
{
    static const char *const expected[][2] = {{"0", "0"}, {"1", "1"}, {"2", "1"}, {"3", "2"},
                                              {"10", "55"}, {"16", "987"}};
    for (unsigned i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        command *c = RUN("run", "fib", expected[i][0], "--io-latency", "1ms");
        char want[64], line[256];
        snprintf(want, sizeof want, "fib(%s) = %s", expected[i][0], expected[i][1]);
        CU_ASSERT(exited_with(c, 0));
        CU_ASSERT(line_of(c->out, 0, line, sizeof line) && strcmp(line, want) == 0);
        CU_ASSERT(line_of(c->out, 1, line, sizeof line) && strncmp(line, "time: ", 6) == 0 &&
                  strstr(line, "io latency: 1ms, io peak: ") &&
                  strstr(line, " in flight on one worker"));
        CU_ASSERT_EQUAL(count_lines(c->out), 2);
        CU_ASSERT_EQUAL(c->err_len, 0);
        assert_no_leftover(c);
        command_free(c);
    }
}

/* The IO figures summed over the workers of a --json run. */
static double sum_over_workers(const char *json, const char *key)
{
    double sum = 0;
    const char *stats = strstr(json, "\"stats\":[");
    for (const char *p = stats; p && (p = strstr(p, "{\"worker\":")); p++)
        sum += json_number_of(p, key);
    return sum;
}

static void test_waits_overlap(void)
{
    /* 610 leaves of 10 ms: 6.1 s one after the other */
    command *c = RUN("run", "fib", "15", "--io-latency", "10ms", "--json");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(is_one_json_object(c->out));
    CU_ASSERT(json_has(c->out, "\"result\":610"));
    CU_ASSERT(json_has(c->out, "\"io_latency_ns\":10000000"));
    CU_ASSERT(json_has(c->out, "\"io_depth\":256"));
    double seconds = json_number_of(c->out, "seconds");
    CU_ASSERT(seconds >= 0.010 && seconds < 0.5 * leaves(15) * 0.010);
    /* every leaf waited exactly once, and many waits were in flight together */
    CU_ASSERT_EQUAL(sum_over_workers(c->out, "io_ops"), leaves(15));
    double peak = json_number_of(c->out, "io_peak");
    CU_ASSERT(peak >= 2 && peak <= leaves(15));
    CU_ASSERT(contains(c->out, "\"io_suspends\":"));
    /* an IO engine makes every call a task: cutoff none, no grain */
    CU_ASSERT(json_has(c->out, "\"cutoff\":\"none\",\"grain\":null"));
    assert_no_leftover(c);
    command_free(c);
}

static void test_depth_and_stats(void)
{
    /* one worker that may have one IO in flight still gets every leaf right */
    command *c = RUN("run", "fib", "12", "--io-latency", "100us", "--io-depth", "1", "--cores",
                     "1", "--stats");
    char line[512];
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(line_of(c->out, 0, line, sizeof line) && strcmp(line, "fib(12) = 144") == 0);
    CU_ASSERT(line_of(c->out, 1, line, sizeof line) && strstr(line, "workers: 1, io latency: "
                                                                    "100us"));
    CU_ASSERT(line_of(c->out, 2, line, sizeof line) && strstr(line, "io_ops") &&
              strstr(line, "io_peak") && strstr(line, "io_suspends"));
    CU_ASSERT_EQUAL(count_lines(c->out), 5); /* result, time, header, one worker, note */
    assert_no_leftover(c);
    command_free(c);
    /* without --io-latency, the table has no IO columns */
    c = RUN("run", "fib", "12", "--stats");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(line_of(c->out, 2, line, sizeof line) && !strstr(line, "io_ops"));
    command_free(c);
}

static void test_bad_durations(void)
{
    CHECK_BAD_INPUT({{"run", "fib", "10", "--io-latency", "-1ms"}, {"--io-latency", "'-1ms'"}},
                    {{"run", "fib", "10", "--io-latency", "5"}, {"'5'", "ns, us, ms or s"}},
                    {{"run", "fib", "10", "--io-latency", "1.5ms"}, {"'1.5ms'"}},
                    {{"run", "fib", "10", "--io-latency", "0ms"}, {"'0ms'", "from 1ns to 3600s"}},
                    {{"run", "fib", "10", "--io-latency", "2min"}, {"'2min'"}},
                    {{"run", "fib", "10", "--io-latency", "1MS"}, {"'1MS'"}},
                    {{"run", "fib", "10", "--io-latency", "ms"}, {"'ms'"}},
                    {{"run", "fib", "10", "--io-latency", ""}, {"''"}},
                    {{"run", "fib", "10", "--io-latency", " 1ms"}, {"' 1ms'"}},
                    {{"run", "fib", "10", "--io-latency", "3601s"}, {"'3601s'", "3600s"}},
                    {{"run", "fib", "10", "--io-latency", "99999999999999999999s"},
                     {"'99999999999999999999s'"}},
                    {{"run", "fib", "10", "--io-latency"}, {"--io-latency", "needs a value"}});
}

static void test_bad_mixes(void)
{
    CHECK_BAD_INPUT({{"run", "fib", "10", "--io-latency", "1ms", "--grain", "5"},
                     {"--io-latency and --grain"}},
                    {{"run", "fib", "10", "--io-latency", "1ms", "--cutoff", "none"},
                     {"--io-latency and --cutoff"}},
                    {{"run", "fib", "10", "--serial", "--io-latency", "1ms"},
                     {"--io-latency and --serial"}},
                    {{"run", "fib", "10", "--io-depth", "8"}, {"--io-depth", "--io-latency"}},
                    {{"run", "fib", "10", "--io-latency", "1ms", "--io-depth", "0"},
                     {"--io-depth", "'0'"}},
                    {{"run", "fib", "10", "--io-latency", "1ms", "--io-depth", "4097"},
                     {"--io-depth", "4096"}},
                    {{"run", "fib", "94", "--io-latency", "1ms"}, {"94", "64 bits"}},
                    {{"map", "fib", "10", "11", "--io-latency", "1ms"},
                     {"unknown option '--io-latency'", "pareng map --help"}},
                    {{"run", "fib", "10", "--io-lat", "1ms", "--io"}, {"ambiguous",
                                                                    "--io-latency, --io-depth"}});
    /* --grain 0 is no grain: it goes with IO */
    command *c = RUN("run", "fib", "10", "--io-latency", "1ms", "--grain", "0");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(contains(c->out, "fib(10) = 55\n"));
    command_free(c);
}

int main(void)
{
    if (!harness_find_pareng())
        return 99;
    CU_TestInfo happy[] = {
        {"exact results, text output", test_exact_results},
        {"waits overlap; --json IO figures", test_waits_overlap},
        {"--io-depth 1 on one worker; --stats", test_depth_and_stats},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo bad[] = {
        {"bad durations", test_bad_durations},
        {"options that do not go together", test_bad_mixes},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo last[] = {
        {"nothing left", test_nothing_left},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("happy path", happy),
        TESTING_SUITE("bad input", bad),
        TESTING_SUITE("leftovers", last),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
