/*
 * test_cli.c - the pareng command as a user runs it: fork + exec of the built binary
 * ($PARENG_BIN), its stdout, stderr and exit status, and what it leaves behind. Results that
 * must be exact, JSON that must parse, bad input that must be refused with status 2 and a
 * one-line message, and failures (a worker killed, the CLI interrupted or killed) that must end
 * promptly with no worker process and no shared-memory segment left. Running the command and
 * looking for leftovers is tests/cli_harness.h's part.
 */
#include "pareng.h"
#include "cli_harness.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long a run may take to notice a dead worker or a signal, and to report it. */
#define FAILURE_REPORT_MS 1500
/* How long workers may outlive a CLI killed by SIGKILL (PR_SET_PDEATHSIG). */
#define ORPHAN_DEATH_MS 1000
/* fib(50) with every call a task takes ~12 s on 2 cores (fib(47), ~3 s, is too close to the
 * time a slow machine needs to start it): the failure tests always end it before it is done. */
#define LONG_RUN_N "50"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* ---- processes, seen through /proc ---------------------------------------------------- */

/* A zombie has ended; only its exit status waits for a parent that may never reap it (a
 * reparented worker whose new parent does not reap). */
static bool process_alive(pid_t pid)
{
    char state = process_state(pid, NULL);
    return state != 0 && state != 'Z' && state != 'X';
}


/* ---- running the CLI ------------------------------------------------------------------- */

static void command_reap(command *c)
{
    if (!c->reaped && waitpid(c->pid, &c->status, 0) == c->pid)
        c->reaped = true;
}

/* A successful text run: exit 0, `fib(N) = RESULT` first, then the time line. */
static void assert_fib_printed(const command *c, const char *n, const char *result)
{
    char expected[128], line[256];
    snprintf(expected, sizeof expected, "fib(%s) = %s", n, result);
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(line_of(c->out, 0, line, sizeof line) && strcmp(line, expected) == 0);
    CU_ASSERT(line_of(c->out, 1, line, sizeof line) && strncmp(line, "time: ", 6) == 0);
    assert_no_leftover(c);
}

/* The number after `key` on the time line ("workers: 2"), or -1. */
static long time_line_value(const command *c, const char *key)
{
    char line[256];
    if (!line_of(c->out, 1, line, sizeof line))
        return -1;
    const char *p = strstr(line, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* Physical cores this process may use, as `--cores auto` counts them: CPUs of the affinity
 * mask whose core has not been seen yet (core_id and package from sysfs). */
static long allowed_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) < 0)
        return -1;
    long seen[CPU_SETSIZE][2], n = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set))
            continue;
        long id[2] = {cpu, 0};
        const char *files[2] = {"core_id", "physical_package_id"};
        for (int k = 0; k < 2; k++) {
            char path[128];
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/%s", cpu,
                     files[k]);
            FILE *f = fopen(path, "re");
            if (f) {
                if (fscanf(f, "%ld", &id[k]) != 1)
                    id[k] = cpu;
                fclose(f);
            }
        }
        bool known = false;
        for (long i = 0; i < n && !known; i++)
            known = seen[i][0] == id[0] && seen[i][1] == id[1];
        if (!known) {
            seen[n][0] = id[0];
            seen[n][1] = id[1];
            n++;
        }
    }
    return n;
}

/* ---- happy path ------------------------------------------------------------------------ */

static void test_fib_35_auto(void)
{
    command *c = RUN("run", "fib", "35", "--cores", "auto");
    assert_fib_printed(c, "35", "9227465");
    /* auto is one worker per core, and never more workers than cores: no warning */
    CU_ASSERT_EQUAL(time_line_value(c, "workers: "), allowed_cores());
    /* The default grain is the engine's automatic cutoff, and the line says how many subtrees
     * it ran as serial C: fib(35) goes deeper than the cutoff starts, so some. */
    CU_ASSERT_PTR_NOT_NULL(strstr(c->out, " serial runs)\n"));
    CU_ASSERT(time_line_value(c, "grain: auto (") > 0);
    CU_ASSERT_EQUAL(count_lines(c->out), 2);
    CU_ASSERT_EQUAL(c->err_len, 0);
    command_free(c);
}

static void test_small_and_equals_forms(void)
{
    static const char *const expected[][2] = {{"0", "0"}, {"1", "1"}, {"2", "1"}, {"3", "2"},
                                              {"20", "6765"}};
    for (unsigned i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        command *c = RUN("run", "fib", expected[i][0], "--grain=0", "--cores=2");
        assert_fib_printed(c, expected[i][0], expected[i][1]);
        CU_ASSERT_EQUAL(time_line_value(c, "workers: "), 2);
        CU_ASSERT_EQUAL(time_line_value(c, "grain: "), 0);
        command_free(c);
    }
    /* options before the workload are options too */
    command *c = RUN("run", "--json", "--cores", "1", "fib", "30");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(json_has(c->out, "\"result\":832040"));
    CU_ASSERT(json_has(c->out, "\"workers\":1"));
    assert_no_leftover(c);
    command_free(c);
}

/* The serial runs of --json's stats, all workers together. */
static double serial_runs_of(const char *out, unsigned workers)
{
    const char *stats = strstr(out, "\"stats\":[");
    double runs = 0;
    for (unsigned i = 0; stats && i < workers; i++) {
        char member[32];
        snprintf(member, sizeof member, "{\"worker\":%u,", i);
        const char *entry = strstr(stats, member);
        runs += entry ? json_number_of(entry, "serial_runs") : -1e9;
    }
    return runs;
}

static void test_json(void)
{
    command *c = RUN("run", "fib", "35", "--json");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(is_one_json_object(c->out));
    CU_ASSERT(json_has(c->out, "\"workload\":\"fib\""));
    CU_ASSERT(json_has(c->out, "\"n\":35"));
    CU_ASSERT(json_has(c->out, "\"result\":9227465"));
    double workers = json_number_of(c->out, "workers");
    CU_ASSERT_EQUAL(workers, allowed_cores());
    double seconds = json_number_of(c->out, "seconds");
    CU_ASSERT(seconds >= 0 && seconds < COMMAND_TIMEOUT_MS / 1000.0);
    /* "stats": one object per worker, numbered in order */
    const char *stats = strstr(c->out, "\"stats\":[");
    CU_ASSERT_PTR_NOT_NULL(stats);
    unsigned objects = 0;
    for (const char *p = stats; p && (p = strstr(p, "{\"worker\":")); p++)
        objects++;
    CU_ASSERT_EQUAL(objects, workers);
    double tasks = 0;
    for (unsigned i = 0; stats && i < objects; i++) {
        char member[32];
        snprintf(member, sizeof member, "{\"worker\":%u,", i);
        const char *entry = strstr(stats, member);
        CU_ASSERT_PTR_NOT_NULL(entry);
        if (entry) {
            tasks += json_number_of(entry, "tasks");
            CU_ASSERT(json_number_of(entry, "busy_seconds") >= 0);
        }
    }
    CU_ASSERT(tasks >= 1); /* the root, at least, ran somewhere */
    CU_ASSERT(json_has(c->out, "\"grain\":null,\"grain_auto\":true"));
    CU_ASSERT(serial_runs_of(c->out, (unsigned)workers) > 0);
    CU_ASSERT_EQUAL(c->err_len, 0);
    assert_no_leftover(c);
    command_free(c);

    /* a grain of its own: every spawn above it is a task, nothing is cut */
    c = RUN("run", "fib", "35", "--json", "--grain", "20");
    CU_ASSERT(json_has(c->out, "\"grain\":20,\"grain_auto\":false"));
    CU_ASSERT_EQUAL(serial_runs_of(c->out, (unsigned)json_number_of(c->out, "workers")), 0);
    command_free(c);
}

static void test_stats_table(void)
{
    command *c = RUN("run", "fib", "30", "--cores", "3", "--stats");
    assert_fib_printed(c, "30", "832040");
    char line[512];
    CU_ASSERT(line_of(c->out, 2, line, sizeof line) && strstr(line, "worker") &&
              strstr(line, "tasks") && strstr(line, "steals") && strstr(line, "idle s"));
    /* the result, the time, the header, then exactly one row per worker */
    CU_ASSERT_EQUAL(count_lines(c->out), 3 + 3);
    unsigned long long tasks = 0;
    for (unsigned i = 0; i < 3; i++) {
        unsigned worker = 99, fields = 0;
        unsigned long long row_tasks = 0;
        CU_ASSERT_FATAL(line_of(c->out, 3 + i, line, sizeof line));
        CU_ASSERT_EQUAL(sscanf(line, "%u %llu", &worker, &row_tasks), 2);
        for (char *tok = strtok(line, " "); tok; tok = strtok(NULL, " "))
            fields++;
        CU_ASSERT_EQUAL(worker, i);
        CU_ASSERT_EQUAL(fields, 14); /* index, 11 counters, busy and idle seconds */
        tasks += row_tasks;
    }
    CU_ASSERT(tasks >= 1);
    command_free(c);
}

static void test_help_and_version(void)
{
    static const char *const help_flags[] = {"--help", "-h"};
    for (unsigned i = 0; i < 2; i++) {
        command *c = RUN(help_flags[i]);
        CU_ASSERT(exited_with(c, 0));
        CU_ASSERT_EQUAL(strncmp(c->out, "usage: pareng run fib N", 23), 0);
        CU_ASSERT(contains(c->out, "--cores") && contains(c->out, "--grain") &&
                  contains(c->out, "--json") && contains(c->out, "clean"));
        CU_ASSERT_EQUAL(c->err_len, 0);
        command_free(c);
    }
    /* after a command too, whatever else is there */
    command *after = RUN("run", "fib", "5", "--help");
    CU_ASSERT(exited_with(after, 0));
    CU_ASSERT_EQUAL(strncmp(after->out, "usage: pareng run fib N", 23), 0);
    command_free(after);
    after = RUN("topo", "-h");
    CU_ASSERT(exited_with(after, 0));
    CU_ASSERT_EQUAL(strncmp(after->out, "usage: pareng", 13), 0);
    command_free(after);
    command *c = RUN("--version");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT_STRING_EQUAL(c->out, "pareng " PARENG_VERSION_STRING "\n");
    CU_ASSERT_STRING_EQUAL(c->out, "pareng 0.1.0\n");
    CU_ASSERT_EQUAL(c->err_len, 0);
    command_free(c);
}

static void test_more_workers_than_cores(void)
{
    long cores = allowed_cores();
    char workers[24], warning[80];
    snprintf(workers, sizeof workers, "%ld", cores + 1);
    command *c = RUN("run", "fib", "35", "--cores", workers);
    assert_fib_printed(c, "35", "9227465");
    CU_ASSERT_EQUAL(time_line_value(c, "workers: "), cores + 1);
    /* allowed, with one warning line that says the workers share cores */
    snprintf(warning, sizeof warning, "%ld workers on %ld cores", cores + 1, cores);
    CU_ASSERT_EQUAL(strncmp(c->err, "pareng: warning: ", 17), 0);
    CU_ASSERT(contains(c->err, warning) && contains(c->err, "share cores"));
    CU_ASSERT_EQUAL(count_lines(c->err), 1);
    command_free(c);
}

static bool cpus_0_and_1_allowed(void)
{
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_ISSET(0, &set) &&
           CPU_ISSET(1, &set) && allowed_cores() >= 2;
}

static void test_cpu_lists(void)
{
    if (!cpus_0_and_1_allowed()) {
        fprintf(stderr, "\nCPUs 0 and 1 (two cores) are not both allowed here: not tested\n");
        return;
    }
    static const struct {
        const char *list;
        long workers;
    } lists[] = {{"0-1", 2}, {"core:0-1", 2}, {"0,1", 2}, {"pu:0-1", 2}, {"1-1", 1}, {"pu:1", 1}};
    for (unsigned i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        command *c = RUN("run", "fib", "35", "--cores", lists[i].list);
        assert_fib_printed(c, "35", "9227465");
        CU_ASSERT_EQUAL(time_line_value(c, "workers: "), lists[i].workers);
        CU_ASSERT_EQUAL(c->err_len, 0);
        command_free(c);
    }
    /* one worker per entry: the same CPU twice is two workers sharing it */
    command *c = RUN("run", "fib", "25", "--cores", "0,0,1");
    assert_fib_printed(c, "25", "75025");
    CU_ASSERT_EQUAL(time_line_value(c, "workers: "), 3);
    command_free(c);
}

static void test_grains(void)
{
    static const char *const grains[] = {"0", "1", "2", "3", "25", "36", "1000"};
    for (unsigned i = 0; i < sizeof grains / sizeof grains[0]; i++) {
        command *c = RUN("run", "fib", "35", "--grain", grains[i], "--cores", "2");
        assert_fib_printed(c, "35", "9227465");
        CU_ASSERT_EQUAL(time_line_value(c, "grain: "), atol(grains[i]));
        command_free(c);
    }
}

/* The baseline: plain serial C in the CLI itself, the same results. */
static void test_serial(void)
{
    command *c = RUN("run", "fib", "30", "--serial");
    assert_fib_printed(c, "30", "832040");
    char line[256];
    CU_ASSERT(line_of(c->out, 1, line, sizeof line) && strstr(line, "serial C"));
    CU_ASSERT_EQUAL(count_lines(c->out), 2);
    command_free(c);

    c = RUN("run", "fib", "30", "--serial", "--json");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(is_one_json_object(c->out));
    CU_ASSERT(json_has(c->out, "\"result\":832040"));
    CU_ASSERT(json_has(c->out, "\"serial\":true"));
    CU_ASSERT(json_has(c->out, "\"workers\":0"));
    assert_no_leftover(c);
    command_free(c);
}

/* pareng map: the list exactly as Python prints it, then the time line; --json has both. */
static void test_map_prints_python_list(void)
{
    command *c = RUN("map", "fib", "30", "29", "28", "27", "26", "25", "--cores", "2");
    CU_ASSERT_EQUAL(c->status, 0);
    char line[256];
    CU_ASSERT(line_of(c->out, 0, line, sizeof line) &&
              strcmp(line, "[832040, 514229, 317811, 196418, 121393, 75025]") == 0);
    CU_ASSERT(line_of(c->out, 1, line, sizeof line) && strncmp(line, "time: ", 6) == 0);
    assert_no_leftover(c);
    command_free(c);
    c = RUN("map", "fib", "10", "0", "20", "--json", "--grain", "0");
    CU_ASSERT_EQUAL(c->status, 0);
    CU_ASSERT(is_one_json_object(c->out));
    CU_ASSERT(json_has(c->out, "\"n\":[10,0,20]"));
    CU_ASSERT(json_has(c->out, "\"result\":[55,0,6765]"));
    command_free(c);
}

/* ---- bad input ----------------------------------------------------------------------- */

static void test_bad_n(void)
{
    CHECK_BAD_INPUT({{"run", "fib", "-5"}, {"'-5'", "0 to 93"}},
                    {{"run", "fib", "abc"}, {"'abc'"}},
                    {{"run", "fib", "35x"}, {"'35x'"}},
                    {{"run", "fib", ""}, {"''"}},
                    {{"run", "fib", "+5"}, {"'+5'"}},
                    {{"run", "fib", " 5"}, {"' 5'"}},
                    {{"run", "fib", "94"}, {"94", "64 bits"}},
                    {{"run", "fib", "18446744073709551616"}, {"18446744073709551616"}},
                    {{"run", "fib", "35", "36"}, {"'36'"}},
                    {{"map", "fib", "30", "94"}, {"94", "64 bits"}},
                    {{"map", "fib", "30", "x1"}, {"'x1'"}},
                    {{"map", "fib"}, {"fib needs N"}},
                    {{"map", "pi", "3"}, {"'pi'"}},
                    {{"map"}, {"workload"}});
}

static void test_unknown_names(void)
{
    CHECK_BAD_INPUT({{"run", "pi", "35"}, {"'pi'", "fib"}},
                    {{"run", "fib", "35", "--bogus"}, {"'--bogus'"}},
                    {{"run", "fib", "35", "-x"}, {"'-x'"}},
                    {{"frobnicate"}, {"'frobnicate'"}},
                    {{"clean", "now"}, {"clean"}});
}

static void test_missing_parts(void)
{
    CHECK_BAD_INPUT({{NULL}, {"command"}},
                    {{"run"}, {"workload"}},
                    {{"run", "fib"}, {"fib needs N"}},
                    {{"run", "fib", "35", "--cores"}, {"--cores", "needs a value"}},
                    {{"run", "fib", "35", "--grain"}, {"--grain", "needs a value"}});
}

static void test_bad_counts(void)
{
    CHECK_BAD_INPUT({{"run", "fib", "35", "--cores", "0"}, {"--cores 0", "at least one"}},
                    {{"run", "fib", "35", "--cores", "513"}, {"513", "512"}},
                    {{"run", "fib", "35", "--cores", "4294967297"}, {"4294967297", "512"}},
                    {{"run", "fib", "35", "--cores", ""}, {"--cores", "empty"}},
                    {{"run", "fib", "35", "--cores="}, {"--cores", "empty"}});
}

static void test_malformed_lists(void)
{
    CHECK_BAD_INPUT({{"run", "fib", "35", "--cores", "0,,1"}, {"--cores", "'0,,1'"}},
                    {{"run", "fib", "35", "--cores", "1-0"}, {"--cores", "'1-0'"}},
                    {{"run", "fib", "35", "--cores", "0-"}, {"--cores", "'0-'"}},
                    {{"run", "fib", "35", "--cores", "a,b"}, {"--cores", "'a,b'"}},
                    {{"run", "fib", "35", "--cores", "1,"}, {"--cores", "'1,'"}},
                    {{"run", "fib", "35", "--cores", "-1"}, {"--cores", "'-1'"}},
                    {{"run", "fib", "35", "--cores", "core:"}, {"--cores", "empty core list"}},
                    {{"run", "fib", "35", "--cores", "pu:x"}, {"--cores", "'x'"}});
}

/* A CPU number that is not in this process's allowed set: 57 on this 2-CPU machine, the next
 * one outside the set on a bigger one. */
static int cpu_outside_allowed_set(void)
{
    cpu_set_t set;
    int cpu = 57;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        while (cpu < CPU_SETSIZE - 1 && CPU_ISSET(cpu, &set))
            cpu++;
    return cpu;
}

static void test_cpus_outside_allowed_set(void)
{
    cpu_set_t set;
    CU_ASSERT_FATAL(sched_getaffinity(0, sizeof set, &set) == 0);
    int first = 0;
    while (!CPU_ISSET(first, &set))
        first++;
    int outside = cpu_outside_allowed_set();
    /* no core has a logical index as high as the number of CPUs */
    long n_cpus = sysconf(_SC_NPROCESSORS_CONF);
    char list[32], named[32], core_list[32], core_named[32];
    snprintf(list, sizeof list, "%d,%d", first, outside);
    snprintf(named, sizeof named, "%d", outside);
    snprintf(core_list, sizeof core_list, "core:%ld", n_cpus <= 9 ? 9 : n_cpus);
    snprintf(core_named, sizeof core_named, "%ld", n_cpus <= 9 ? 9 : n_cpus);
    bad_case cases[] = {
        {{"run", "fib", "35", "--cores", list}, {"--cores", named}},
        {{"run", "fib", "35", "--cores", core_list}, {"core", core_named}},
        {{"run", "fib", "35", "--cores", "pu:4095"}, {"pu", "4095"}},
    };
    check_bad_input(cases, sizeof cases / sizeof cases[0]);
}

static void test_bad_grain(void)
{
    CHECK_BAD_INPUT({{"run", "fib", "35", "--grain", "-1"}, {"--grain", "'-1'"}},
                    {{"run", "fib", "35", "--grain", "abc"}, {"--grain", "'abc'"}},
                    {{"run", "fib", "35", "--grain", "4294967296"}, {"--grain", "4294967296"}},
                    {{"run", "fib", "35", "--grain="}, {"--grain", "''"}});
}

/* ---- failures -------------------------------------------------------------------------- */

/* Starts a long run on 2 workers and waits until both exist (and the run has begun, so that
 * what follows hits an engine at work); NULL if they never appear. */
static command *start_long_run(pid_t workers[2])
{
    command *c = command_start("run", "fib", LONG_RUN_N, "--cores", "2", "--grain", "0",
                               (const char *)NULL);
    double deadline = now_ms() + COMMAND_TIMEOUT_MS;
    while (testing_children_of(c->pid, workers, 2) < 2 && now_ms() < deadline)
        sleep_ms(2);
    if (testing_children_of(c->pid, workers, 2) < 2) {
        fprintf(stderr, "\n%s: no 2 workers after %d ms\n", c->line, COMMAND_TIMEOUT_MS);
        CU_FAIL("workers did not start");
        command_free(c);
        return NULL;
    }
    sleep_ms(200);
    return c;
}

/* The CLI must report within FAILURE_REPORT_MS of `why`; a late one is killed and fails. */
static void await_prompt_exit(command *c, const char *why)
{
    double t0 = now_ms();
    bool prompt = command_await(c, FAILURE_REPORT_MS, false);
    CU_ASSERT(prompt);
    if (!prompt) {
        fprintf(stderr, "\n%s: still running %d ms after %s\n", c->line, FAILURE_REPORT_MS, why);
        command_kill(c);
    } else if (now_ms() - t0 > FAILURE_REPORT_MS / 2) {
        fprintf(stderr, "\n(note: %s took %.0f ms to end after %s)\n", c->line, now_ms() - t0,
                why);
    }
}

static void assert_workers_gone(const pid_t workers[2])
{
    for (int i = 0; i < 2; i++)
        if (process_alive(workers[i])) {
            fprintf(stderr, "\nworker pid %d still alive\n", (int)workers[i]);
            CU_FAIL("a worker outlived the CLI");
        }
}

static void test_killed_worker(void)
{
    pid_t workers[2];
    command *c = start_long_run(workers);
    if (!c)
        return;
    /* workers[1] is worker 1: the kernel lists children in the order they were forked */
    CU_ASSERT_EQUAL(kill(workers[1], SIGKILL), 0);
    await_prompt_exit(c, "its worker 1 was killed");
    CU_ASSERT(exited_with(c, 1));
    char expected[160];
    snprintf(expected, sizeof expected,
             "pareng: run failed: worker 1 (pid %d) was killed by signal 9 (SIGKILL)\n",
             (int)workers[1]);
    CU_ASSERT(contains(c->err, expected));
    CU_ASSERT_EQUAL(count_lines(c->err), 1);
    CU_ASSERT_EQUAL(c->out_len, 0);
    assert_workers_gone(workers);
    assert_no_leftover(c);
    command_free(c);
}

/* SIGINT and SIGTERM cancel the run: status 128 + the signal, no result, no error line
 * about workers (they were stopped on purpose), everything cleaned up. */
static void check_interrupted(int sig)
{
    pid_t workers[2];
    command *c = start_long_run(workers);
    if (!c)
        return;
    CU_ASSERT_EQUAL(kill(c->pid, sig), 0);
    await_prompt_exit(c, sigabbrev_np(sig));
    CU_ASSERT(exited_with(c, 128 + sig));
    CU_ASSERT_EQUAL(c->out_len, 0);
    CU_ASSERT_PTR_NULL(strstr(c->err, "run failed"));
    assert_workers_gone(workers);
    assert_no_leftover(c);
    command_free(c);
}

static void test_sigint(void)
{
    check_interrupted(SIGINT);
}

static void test_sigterm(void)
{
    check_interrupted(SIGTERM);
}

/* One round of the CLI killed with SIGKILL: its workers follow it (PR_SET_PDEATHSIG), its
 * segment stays until `pareng clean`. Returns false when the round says nothing because
 * another process removed the stale segment first (any pareng_start() on this machine
 * sweeps stale segments, and other test runs may be starting engines right now). */
static bool killed_cli_round(void)
{
    pid_t workers[2];
    command *c = start_long_run(workers);
    if (!c)
        return true;
    double killed_at = now_ms();
    CU_ASSERT_EQUAL(kill(c->pid, SIGKILL), 0);
    /* Not reaped yet: while the CLI is a zombie its pid still names it, so nobody takes its
     * segment for stale while the workers are checked. */
    bool died = command_await(c, ORPHAN_DEATH_MS, true);
    CU_ASSERT(died);
    if (!died) {
        command_free(c);
        return true;
    }
    bool orphans = true;
    while (orphans && now_ms() - killed_at < ORPHAN_DEATH_MS) {
        orphans = process_alive(workers[0]) || process_alive(workers[1]);
        if (orphans)
            sleep_ms(2);
    }
    if (orphans)
        fprintf(stderr, "\nworkers %d, %d still alive %d ms after their CLI was killed\n",
                (int)workers[0], (int)workers[1], ORPHAN_DEATH_MS);
    CU_ASSERT(!orphans);
    CU_ASSERT_EQUAL(live_members_of_group(c->pid), 0);
    CU_ASSERT_EQUAL(testing_segments_of(c->pid), 1);

    command_reap(c);
    CU_ASSERT(c->reaped && WIFSIGNALED(c->status) && WTERMSIG(c->status) == SIGKILL);
    command *clean = RUN("clean");
    bool said = false;
    int removed = -1;
    char plural[4] = "";
    CU_ASSERT(exited_with(clean, 0));
    if (sscanf(clean->out, "removed %d stale segment%1[s]", &removed, plural) >= 1) {
        char expected[64];
        snprintf(expected, sizeof expected, "removed %d stale segment%s\n", removed,
                 removed == 1 ? "" : "s");
        said = strcmp(clean->out, expected) == 0;
    }
    if (!said)
        fprintf(stderr, "\npareng clean said: %s\n", clean->out);
    CU_ASSERT(said);
    CU_ASSERT_EQUAL(clean->err_len, 0);
    bool gone = testing_segments_of(c->pid) == 0;
    CU_ASSERT(gone);
    command_free(clean);
    bool interfered = removed == 0 && gone;
    if (!interfered)
        /* ours, and any other stale one on this machine */
        CU_ASSERT(removed >= 1);
    command_free(c);

    /* the machine is usable again */
    command *after = RUN("run", "fib", "10");
    assert_fib_printed(after, "10", "55");
    command_free(after);
    return !interfered;
}

static void test_killed_cli(void)
{
    for (int round = 0; round < 3; round++) {
        if (killed_cli_round())
            return;
        fprintf(stderr, "\nanother process swept the stale segment first: once more\n");
    }
    CU_FAIL("pareng clean never found the stale segment (3 rounds)");
}

int main(void)
{
    if (!harness_find_pareng())
        return 99;
    CU_TestInfo happy[] = {
        {"fib 35 --cores auto", test_fib_35_auto},
        {"small n, --opt=value forms", test_small_and_equals_forms},
        {"--json: one object, stats per worker", test_json},
        {"--stats: one row per worker", test_stats_table},
        {"--help, --version", test_help_and_version},
        {"more workers than cores: warning", test_more_workers_than_cores},
        {"CPU lists", test_cpu_lists},
        {"grains", test_grains},
        {"map: a Python list", test_map_prints_python_list},
        {"--serial", test_serial},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo bad[] = {
        {"bad N", test_bad_n},
        {"unknown workload, option, command", test_unknown_names},
        {"missing workload, N, values", test_missing_parts},
        {"bad worker counts", test_bad_counts},
        {"malformed CPU lists", test_malformed_lists},
        {"CPUs outside the allowed set", test_cpus_outside_allowed_set},
        {"bad grain", test_bad_grain},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo failures[] = {
        {"worker killed: status 1, named", test_killed_worker},
        {"SIGINT: status 130", test_sigint},
        {"SIGTERM: status 143", test_sigterm},
        {"CLI killed: workers follow, clean", test_killed_cli},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo last[] = {
        {"nothing left", test_nothing_left},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("happy path", happy),
        TESTING_SUITE("bad input", bad),
        TESTING_SUITE("failures", failures),
        TESTING_SUITE("leftovers", last),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
