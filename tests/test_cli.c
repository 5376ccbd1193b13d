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
#include "internal.h" /* the header of pareng 0.1's named segments, for test_clean */

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long a run may take to notice a dead worker or a signal, and to report it. */
#define FAILURE_REPORT_MS 1500
/* How long workers may outlive a CLI killed by SIGKILL (PR_SET_PDEATHSIG). */
#define ORPHAN_DEATH_MS 1000
/* fib(50) with every call a task (--cutoff none) takes ~12 s on 2 cores (fib(47), ~3 s, is
 * too close to the time a slow machine needs to start it): the failure tests always end it
 * before it is done. */
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
    /* The default is the engine's automatic cutoff, and the line says how many subtrees it
     * ran as serial C: fib(35) goes deeper than the cutoff starts, so some. */
    CU_ASSERT_PTR_NOT_NULL(strstr(c->out, " serial runs)\n"));
    CU_ASSERT(time_line_value(c, "cutoff: auto (") > 0);
    CU_ASSERT_EQUAL(count_lines(c->out), 2);
    CU_ASSERT_EQUAL(c->err_len, 0);
    command_free(c);
}

static void test_small_and_equals_forms(void)
{
    static const char *const expected[][2] = {{"0", "0"}, {"1", "1"}, {"2", "1"}, {"3", "2"},
                                              {"20", "6765"}};
    for (unsigned i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        command *c = RUN("run", "fib", expected[i][0], "--cutoff=none", "--cores=2");
        assert_fib_printed(c, expected[i][0], expected[i][1]);
        CU_ASSERT_EQUAL(time_line_value(c, "workers: "), 2);
        CU_ASSERT(contains(c->out, ", cutoff: none\n"));
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
    CU_ASSERT(json_has(c->out, "\"cutoff\":\"auto\",\"grain\":null"));
    CU_ASSERT(serial_runs_of(c->out, (unsigned)workers) > 0);
    CU_ASSERT_EQUAL(c->err_len, 0);
    assert_no_leftover(c);
    command_free(c);

    /* a grain of its own: every spawn above it is a task, the engine's cutoff cuts nothing */
    c = RUN("run", "fib", "35", "--json", "--grain", "20");
    CU_ASSERT(is_one_json_object(c->out));
    CU_ASSERT(json_has(c->out, "\"cutoff\":null,\"grain\":20"));
    CU_ASSERT_EQUAL(serial_runs_of(c->out, (unsigned)json_number_of(c->out, "workers")), 0);
    command_free(c);

    /* the cutoff given: a word, or a depth as a number */
    c = RUN("run", "fib", "30", "--json", "--cutoff", "none");
    CU_ASSERT(is_one_json_object(c->out));
    CU_ASSERT(json_has(c->out, "\"cutoff\":\"none\",\"grain\":null"));
    CU_ASSERT_EQUAL(serial_runs_of(c->out, (unsigned)json_number_of(c->out, "workers")), 0);
    command_free(c);
    c = RUN("run", "fib", "30", "--json", "--cutoff", "4");
    CU_ASSERT(is_one_json_object(c->out));
    CU_ASSERT(json_has(c->out, "\"cutoff\":4,\"grain\":null"));
    CU_ASSERT(serial_runs_of(c->out, (unsigned)json_number_of(c->out, "workers")) > 0);
    command_free(c);
}

static void test_stats_table(void)
{
    command *c = RUN("run", "fib", "30", "--cores", "3", "--stats");
    assert_fib_printed(c, "30", "832040");
    char line[512];
    CU_ASSERT(line_of(c->out, 2, line, sizeof line) && strstr(line, "worker") &&
              strstr(line, "tasks") && strstr(line, "steals") && strstr(line, "idle s"));
    /* the result, the time, the header, exactly one row per worker, and what the counts
     * leave out */
    CU_ASSERT_EQUAL(count_lines(c->out), 3 + 3 + 1);
    CU_ASSERT(line_of(c->out, 6, line, sizeof line) && strstr(line, "not counted"));
    unsigned long long tasks = 0;
    for (unsigned i = 0; i < 3; i++) {
        unsigned worker = 99, fields = 0;
        unsigned long long row_tasks = 0;
        CU_ASSERT_FATAL(line_of(c->out, 3 + i, line, sizeof line));
        CU_ASSERT_EQUAL(sscanf(line, "%u %llu", &worker, &row_tasks), 2);
        for (char *tok = strtok(line, " "); tok; tok = strtok(NULL, " "))
            fields++;
        CU_ASSERT_EQUAL(worker, i);
        CU_ASSERT_EQUAL(fields, 15); /* index, 12 counters, busy and idle seconds */
        tasks += row_tasks;
    }
    CU_ASSERT(tasks >= 1);
    command_free(c);
}

/* ---- help: every command's, the same as in docs/cli.md ------------------------------------- */

/* docs/cli.md, from $PARENG_DOCS (tests/meson.build sets it), or NULL after saying why. */
static char *read_cli_doc(void)
{
    const char *dir = getenv("PARENG_DOCS");
    char path[512];
    snprintf(path, sizeof path, "%s/cli.md", dir ? dir : "");
    char *doc = dir ? harness_read_file(path) : NULL;
    if (!doc)
        fprintf(stderr, "\ncannot read %s (PARENG_DOCS must name docs/)\n", path);
    return doc;
}

/* The text of the first ```text block under the line `heading` of the doc, before the next
 * "## " heading: a copy to free, or NULL. */
static char *doc_block(const char *doc, const char *heading)
{
    size_t len = strlen(heading);
    const char *h = doc;
    while ((h = strstr(h, heading)) && !((h == doc || h[-1] == '\n') && h[len] == '\n'))
        h++;
    if (!h) {
        fprintf(stderr, "\ndocs/cli.md has no heading '%s'\n", heading);
        return NULL;
    }
    const char *next = strstr(h + len, "\n## ");
    const char *open = strstr(h + len, "\n```text\n");
    if (!open || (next && open > next)) {
        fprintf(stderr, "\ndocs/cli.md: no ```text block under '%s'\n", heading);
        return NULL;
    }
    open += strlen("\n```text\n");
    const char *close = strstr(open, "\n```\n");
    return close ? strndup(open, (size_t)(close - open) + 1) : NULL;
}

/* The first line where two texts differ, to say where a help and its doc part. */
static void report_difference(const char *what, const char *got, const char *want)
{
    unsigned line = 0;
    while (*got && *got == *want) {
        line += *got == '\n';
        got++, want++;
    }
    fprintf(stderr, "\n%s differs from docs/cli.md at line %u:\n  got:  %.80s\n  want: %.80s\n",
            what, line + 1, got, want);
}

static const struct {
    const char *command; /* NULL: the overview */
    const char *heading;
} help_pages[] = {
    {NULL, "## Commands"},
    {"run", "## `pareng run`"},
    {"map", "## `pareng map`"},
    {"topo", "## `pareng topo`"},
    {"bench", "## `pareng bench`"},
    {"top", "## `pareng top`"},
    {"clean", "## `pareng clean`"},
};

/* The usage forms of text, one a line: each `pareng ...` with its continuation lines joined
 * and its runs of spaces collapsed, from the start of text (less "usage: ") up to its first
 * empty line. Appended to forms. */
static void append_usage_forms(const char *text, char *forms, size_t size)
{
    if (strncmp(text, "usage: ", 7) == 0)
        text += 7;
    size_t used = strlen(forms);
    for (const char *line = text; *line && *line != '\n';) {
        size_t len = strcspn(line, "\n");
        const char *p = line + strspn(line, " ");
        if (used > 0 && used + 1 < size)
            forms[used++] = strncmp(p, "pareng ", 7) == 0 ? '\n' : ' ';
        for (; p < line + len && used + 1 < size; p++)
            if (*p != ' ' || forms[used - 1] != ' ')
                forms[used++] = *p;
        line += len + (line[len] == '\n');
    }
    forms[used] = '\0';
}

/* The synopsis that opens docs/cli.md (and the man page's SYNOPSIS) lists the usage forms of
 * every command's --help, in order, then help's: it had `bench fib N` where --help says
 * N|N-M, and `run http` without --trace and --timeline. */
static void test_synopsis_matches_help(void)
{
    char *doc = read_cli_doc();
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    const char *open = strstr(doc, "```\n"), *close = open ? strstr(open, "\n```\n") : NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(close);
    char *block = strndup(open + 4, (size_t)(close - open - 4) + 1);
    static char synopsis[8192], helps[8192];
    synopsis[0] = helps[0] = '\0';
    append_usage_forms(block, synopsis, sizeof synopsis);
    for (size_t i = 0; i < sizeof help_pages / sizeof help_pages[0]; i++) {
        if (!help_pages[i].command)
            continue;
        command *c = RUN(help_pages[i].command, "--help");
        append_usage_forms(c->out, helps, sizeof helps);
        command_free(c);
    }
    size_t len = strlen(helps);
    bool same = strncmp(synopsis, helps, len) == 0 &&
                strncmp(synopsis + len, "\npareng help ", 13) == 0;
    CU_ASSERT(same);
    if (!same)
        report_difference("the commands' usage", helps, synopsis);
    free(block);
    free(doc);
}

/* `pareng CMD --help`, `-h`, `pareng help CMD` and `pareng --help CMD` print the block of
 * docs/cli.md, on stdout, with status 0; so do `pareng --help`, `-h` and `help` for the
 * overview. */
static void test_help_matches_docs(void)
{
    char *doc = read_cli_doc();
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    for (size_t i = 0; i < sizeof help_pages / sizeof help_pages[0]; i++) {
        const char *cmd = help_pages[i].command;
        char *want = doc_block(doc, help_pages[i].heading);
        CU_ASSERT_PTR_NOT_NULL(want);
        if (!want)
            continue;
        CU_ASSERT(strncmp(want, "usage: pareng ", 14) == 0);
        command *runs[4];
        if (cmd) {
            runs[0] = RUN(cmd, "--help");
            runs[1] = RUN(cmd, "-h");
            runs[2] = RUN("help", cmd);
            runs[3] = RUN("--help", cmd);
        } else {
            runs[0] = RUN("--help");
            runs[1] = RUN("-h");
            runs[2] = RUN("help");
            runs[3] = RUN("help", "help");
        }
        for (int k = 0; k < 4; k++) {
            CU_ASSERT(exited_with(runs[k], 0));
            bool same = strcmp(runs[k]->out, want) == 0;
            CU_ASSERT(same);
            if (!same)
                report_difference(runs[k]->line, runs[k]->out, want);
            CU_ASSERT_EQUAL(runs[k]->err_len, 0);
            command_free(runs[k]);
        }
        free(want);
    }
    free(doc);
    CHECK_BAD_INPUT({{"help", "frobnicate"}, {"'frobnicate'", "run, map"}},
                    {{"help", "run", "map"}, {"one command", "'map'"}});
}

/* Every option a help names is one the command takes, and explains: `pareng CMD OPTION
 * [VALUE] --help` reaches the help (an unknown option would be refused first). */
static void test_help_explains_every_option(void)
{
    static const struct {
        const char *command;
        const char *options[20]; /* "--name" or "--name VALUE" */
    } commands[] = {
        {"run", {"-c 2", "--cores 2", "--cutoff none", "-g 5", "--grain 5", "--serial",
                 "--io-latency 1ms", "--io-depth 4", "-n 5", "--requests 5",
                 "--connections 2", "--timeout 1s", "-j", "--json", "-s", "--stats"}},
        {"map", {"-c 2", "--cores 2", "--cutoff none", "-g 5", "--grain 5", "--serial", "-j",
                 "--json", "-s", "--stats"}},
        {"topo", {"-c 2", "--cores 2", "--topology x.xml", "-j", "--json"}},
        {"bench", {"--workers 1", "--cutoff none", "-g 5", "--grain 5", "-r 3", "--runs 3",
                   "-w 0", "--warmup 0", "--peers", "-j", "--json", "--export-json x",
                   "--export-csv x", "--plot x.svg"}},
        {"clean", {"-j", "--json"}},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        command *help = RUN(commands[i].command, "--help");
        CU_ASSERT(exited_with(help, 0));
        for (size_t k = 0; k < 20 && commands[i].options[k]; k++) {
            char option[64], *value;
            snprintf(option, sizeof option, "%s", commands[i].options[k]);
            value = strchr(option, ' ');
            if (value)
                *value++ = '\0';
            /* named in the help: "-c, --cores", or "      --cutoff" */
            char named[72];
            snprintf(named, sizeof named, option[1] == '-' ? " %s" : " %s, --", option);
            bool explained = contains(help->out, named);
            CU_ASSERT(explained);
            command *c = value ? RUN(commands[i].command, option, value, "--help")
                               : RUN(commands[i].command, option, "--help");
            bool known = exited_with(c, 0) && strcmp(c->out, help->out) == 0;
            CU_ASSERT(known);
            if (!known || !explained)
                fprintf(stderr, "\n%s: option %s\n", commands[i].command, option);
            command_free(c);
        }
        command_free(help);
    }
}

static void test_version(void)
{
    command *c = RUN("--version");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT_STRING_EQUAL(c->out, "pareng " PARENG_VERSION_STRING "\n");
    CU_ASSERT_STRING_EQUAL(c->out, "pareng 0.1.0\n");
    CU_ASSERT_EQUAL(c->err_len, 0);
    command_free(c);
}

/* ---- getopt_long: short options, abbreviations, permutation, -- -------------------------- */

static void test_getopt_features(void)
{
    /* short options, a value attached or apart, flags grouped */
    command *c = RUN("run", "fib", "25", "-c1", "-js");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(is_one_json_object(c->out));
    CU_ASSERT(json_has(c->out, "\"result\":75025"));
    CU_ASSERT(json_has(c->out, "\"workers\":1"));
    CU_ASSERT(contains(c->out, "\"stats\":[{\"worker\":0,"));
    command_free(c);
    /* unambiguous abbreviations, --name=VALUE, options before and after the arguments */
    c = RUN("run", "--cor=1", "fib", "--cu", "none", "25", "--st");
    assert_fib_printed(c, "25", "75025");
    CU_ASSERT_EQUAL(time_line_value(c, "workers: "), 1);
    CU_ASSERT(contains(c->out, ", cutoff: none\n"));
    CU_ASSERT_EQUAL(count_lines(c->out), 2 + 3); /* the --stats table: header, one worker, note */
    command_free(c);
    /* -- ends the options: what follows is an argument */
    c = RUN("map", "-c", "2", "--", "fib", "10", "20");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(contains(c->out, "[55, 6765]\n"));
    command_free(c);
    c = RUN("topo", "--js");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(is_one_json_object(c->out));
    command_free(c);

    CHECK_BAD_INPUT({{"run", "fib", "--", "-5"}, {"fib needs N", "'-5'"}},
                    {{"run", "fib", "20", "--", "--json"}, {"unexpected argument", "'--json'"}},
                    {{"run", "fib", "20", "--c", "1"}, {"'--c' is ambiguous", "--cutoff"}},
                    {{"run", "fib", "20", "--co", "1"}, {"--cores, --connections"}},
                    {{"map", "fib", "20", "--c", "1"}, {"--cores, --cutoff"}},
                    {{"run", "fib", "20", "--json=yes"}, {"--json takes no value", "'yes'"}},
                    {{"run", "fib", "20", "-jx"}, {"unknown option '-x'"}},
                    /* getopt reads "é" byte by byte: the argument is named whole, not the
                     * one before it */
                    {{"run", "fib", "20", "-\u00e9"}, {"unknown option '-\u00e9'"}},
                    {{"run", "fib", "20", "--json", "-j\u00e9"}, {"unknown option '-j\u00e9'"}},
                    {{"run", "fib", "20", "-c"}, {"option --cores needs a value"}},
                    {{"run", "fib", "20", "--cut"}, {"option --cutoff needs a value"}},
                    {{"map", "fib", "20", "--requests", "5"}, {"unknown option '--requests'"}},
                    {{"clean", "--bogus"}, {"'--bogus'", "pareng clean --help"}});
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

/* On one core the warning says "1 core" (it said "1 cores"): this program is pinned to its
 * first CPU while the CLI starts, which inherits the mask. */
static void test_more_workers_than_one_core(void)
{
    cpu_set_t all;
    harness_pin_to_one_cpu(&all);
    command *c = RUN("run", "fib", "20", "--cores", "2");
    harness_unpin(&all);
    assert_fib_printed(c, "20", "6765");
    CU_ASSERT(contains(c->err, "pareng: warning: 2 workers on 1 core: workers share cores"));
    command_free(c);
}

/* With stderr closed, the engine's memory was descriptor 2 and the warning above went over
 * it: the workers exited and the CLI died of SIGSEGV. The run goes on, its answer printed. */
static void test_closed_stderr_is_not_the_engines(void)
{
    char args[96], out[] = "/tmp/pareng-test-closed-XXXXXX", redirections[64];
    int fd = mkstemp(out);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    snprintf(args, sizeof args, "run fib 25 --cores %ld", allowed_cores() + 1);
    snprintf(redirections, sizeof redirections, "2>&- >'%s'", out);
    CU_ASSERT_EQUAL(shell_run(args, redirections), 0);
    char *printed = harness_read_file(out);
    CU_ASSERT(printed && contains(printed, "fib(25) = 75025"));
    free(printed);
    unlink(out);
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

/* fib's own grain: the time line names it; 0 and auto are no grain (the engine's cutoff). */
static void test_grains(void)
{
    static const char *const grains[] = {"1", "2", "3", "25", "36", "1000"};
    for (unsigned i = 0; i < sizeof grains / sizeof grains[0]; i++) {
        command *c = RUN("run", "fib", "35", "--grain", grains[i], "--cores", "2");
        assert_fib_printed(c, "35", "9227465");
        CU_ASSERT_EQUAL(time_line_value(c, "grain: "), atol(grains[i]));
        CU_ASSERT_PTR_NULL(strstr(c->out, "cutoff"));
        command_free(c);
    }
    static const char *const none[] = {"0", "auto"};
    for (unsigned i = 0; i < 2; i++) {
        command *c = RUN("run", "fib", "35", "--grain", none[i], "--cutoff", "3");
        assert_fib_printed(c, "35", "9227465");
        CU_ASSERT(time_line_value(c, "cutoff: 3 (") > 0);
        CU_ASSERT_PTR_NULL(strstr(c->out, "grain"));
        command_free(c);
    }
}

/* The engine's cutoff: auto, none, or a fixed depth; the line says which, and how many
 * subtrees it ran as serial C (none with none). */
static void test_cutoffs(void)
{
    static const struct {
        const char *cutoff, *line;
        bool serial_runs;
    } cutoffs[] = {{"auto", ", cutoff: auto (", true}, {"0", ", cutoff: auto (", true},
                   {"none", ", cutoff: none\n", false}, {"1", ", cutoff: 1 (", true},
                   {"6", ", cutoff: 6 (", true}, {"1000000", ", cutoff: 1000000 (", false}};
    for (unsigned i = 0; i < sizeof cutoffs / sizeof cutoffs[0]; i++) {
        command *c = RUN("run", "fib", "30", "--cutoff", cutoffs[i].cutoff, "-c", "2");
        assert_fib_printed(c, "30", "832040");
        CU_ASSERT(contains(c->out, cutoffs[i].line));
        if (cutoffs[i].serial_runs)
            CU_ASSERT(time_line_value(c, " (") > 0);
        command_free(c);
    }
    CHECK_BAD_INPUT({{"run", "fib", "30", "--cutoff", "deep"}, {"--cutoff", "'deep'"}},
                    {{"run", "fib", "30", "--cutoff", "-1"}, {"--cutoff", "'-1'"}},
                    {{"run", "fib", "30", "--cutoff", "1000001"}, {"--cutoff", "1000000"}},
                    {{"run", "fib", "30", "--cutoff="}, {"--cutoff", "''"}},
                    {{"run", "fib", "30", "--grain", "20", "--cutoff", "auto"},
                     {"--grain 20 and --cutoff", "replaces the engine's cutoff"}},
                    {{"map", "fib", "30", "--cutoff", "5", "-g", "9"}, {"--grain 9 and --cutoff"}});
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

/* pareng run uts: UTS's sample trees, counted exactly on every cutoff and serially. */
static void test_uts(void)
{
    static const char *const cutoffs[] = {"auto", "none", "3"};
    for (unsigned i = 0; i < sizeof cutoffs / sizeof cutoffs[0]; i++) {
        command *c = RUN("run", "uts", "T3", "--cores", "2", "--cutoff", cutoffs[i]);
        CU_ASSERT(exited_with(c, 0));
        CU_ASSERT(strncmp(c->out, "uts(T3) = 4112897 nodes\n"
                                  "leaves: 3599034, depth: 1572 (as UTS publishes)\ntime: ",
                          strlen("uts(T3) = 4112897 nodes\n"
                                 "leaves: 3599034, depth: 1572 (as UTS publishes)\ntime: ")) == 0);
        CU_ASSERT(contains(c->out, " s, workers: 2, cutoff: "));
        command_free(c);
    }
    command *c = RUN("run", "uts", "t1", "--json", "--cores", "2");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(is_one_json_object(c->out));
    CU_ASSERT(json_has(c->out, "\"tree\":\"T1\",\"result\":4130071,\"leaves\":3305118,"
                               "\"depth\":10"));
    CU_ASSERT(json_has(c->out, "\"cutoff\":\"auto\""));
    assert_no_leftover(c);
    command_free(c);
    c = RUN("run", "uts", "T3", "--serial", "--json");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(json_has(c->out, "\"result\":4112897"));
    CU_ASSERT(json_has(c->out, "\"serial\":true"));
    command_free(c);
    /* The serial baseline's recursion is 1,572 levels deep: under `ulimit -s 128` it died of a
     * bare SIGSEGV on the command's own stack */
    c = RUN_LIMITED(RLIMIT_STACK, 128 << 10, "run", "uts", "T3", "--serial");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(contains(c->out, "uts(T3) = 4112897 nodes"));
    command_free(c);
    CHECK_BAD_INPUT({{"run", "uts"}, {"uts needs a tree", "T3L"}},
                    {{"run", "uts", "T9"}, {"no sample tree 'T9'", "T1L"}},
                    {{"run", "uts", "T3", "--grain", "4"}, {"run uts does not take --grain"}},
                    {{"run", "uts", "T3", "-n", "4"}, {"run uts does not take --requests"}},
                    {{"run", "uts", "T3", "T1"}, {"unexpected argument 'T1'"}});
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
    c = RUN("map", "fib", "10", "0", "20", "--json", "--cutoff", "none");
    CU_ASSERT_EQUAL(c->status, 0);
    CU_ASSERT(is_one_json_object(c->out));
    CU_ASSERT(json_has(c->out, "\"n\":[10,0,20]"));
    CU_ASSERT(json_has(c->out, "\"result\":[55,0,6765]"));
    CU_ASSERT(json_has(c->out, "\"cutoff\":\"none\",\"grain\":null"));
    command_free(c);
}

/* ---- bad input ----------------------------------------------------------------------- */

static void test_bad_n(void)
{
    CHECK_BAD_INPUT({{"run", "fib", "-5"}, {"'-5': a negative number", "0 or more"}},
                    {{"run", "fib", "--", "-5"}, {"'-5'", "0 to 93"}},
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
                    {{"clean", "now"}, {"clean", "'now'"}},
                    {{"--version", "now"}, {"'now'"}});
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
    CHECK_BAD_INPUT({{"run", "fib", "35", "--cores", "0"}, {"--cores: 0 workers", "1 to 512"}},
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
                    {{"run", "fib", "35", "--cores", "core:"}, {"--cores", "'core:'"}},
                    {{"run", "fib", "35", "--cores", "pu:x"}, {"--cores", "'pu:x'"}});
}

/* Forms of other tools that the grammar refuses, each with what to write instead. */
static void test_refused_list_forms(void)
{
    CHECK_BAD_INPUT({{"run", "fib", "35", "--cores", "package:0.core:1"},
                     {"'package:0.core:1'", "nested locations"}},
                    {{"run", "fib", "35", "--cores", "0x3"}, {"'0x3'", "bitmasks"}},
                    {{"run", "fib", "35", "--cores", "S0:0-1"}, {"'S0:0-1'", "likwid"}},
                    {{"run", "fib", "35", "--cores", "~0"}, {"'~0'", "exclusions"}},
                    {{"run", "fib", "35", "--cores", "core:even"}, {"'core:even'", "even"}},
                    {{"run", "fib", "35", "--cores", "cpu:0"}, {"'cpu:0'", "TYPE pu, core"}});
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

/* A long value quoted first pushed the reason out of the message (600 digits: only digits);
 * the message now leaves out the value's middle. */
static void test_long_values_keep_the_reason(void)
{
    char digits[601], url[2048];
    memset(digits, '0', sizeof digits - 1);
    digits[sizeof digits - 1] = '\0';
    snprintf(url, sizeof url, "http://%01900d/", 0);
    bad_case cases[] = {
        {{"run", "fib", "5", "--cores", digits}, {"--cores", "1 to 512"}},
        {{"run", "http", url}, {"bad URL 'http://000", "too long"}},
    };
    check_bad_input(cases, sizeof cases / sizeof cases[0]);
}

static void test_bad_grain(void)
{
    CHECK_BAD_INPUT({{"run", "fib", "35", "--grain", "-1"}, {"--grain", "'-1'"}},
                    {{"run", "fib", "35", "-g", "none"}, {"--grain", "'none'"}},
                    {{"run", "fib", "35", "--grain", "abc"}, {"--grain", "'abc'"}},
                    {{"run", "fib", "35", "--grain", "4294967296"},
                     {"from 0 to 4294967295", "'4294967296'"}},
                    {{"run", "fib", "35", "--grain="}, {"--grain", "''"}});
}

/* A user's text with control characters comes back escaped in the message, on one line:
 * the CLI's own messages and the library's, which quote it. */
static void test_control_characters_escaped(void)
{
    CHECK_BAD_INPUT({{"run", "fib", "a\nb\x1b[31m\x01\x7f"}, {"'a\\nb\\x1b[31m\\x01\\x7f'"}},
                    {{"run", "fib", "5", "--cores", "0\n1"}, {"--cores", "'0\\n1'"}},
                    {{"run", "fib", "5", "--cutoff", "\t9"}, {"--cutoff", "'\\t9'"}},
                    {{"run", "fib", "5", "--bo\rgus"}, {"'--bo\\rgus'"}},
                    {{"bogus\x1b]0;owned\x07"}, {"'bogus\\x1b]0;owned\\x07'"}});
    command *c = RUN("run", "fib", "\x1b[2J");
    CU_ASSERT(exited_with(c, 2));
    CU_ASSERT_PTR_NULL(strchr(c->err, '\x1b'));
    CU_ASSERT(contains(c->err, "'\\x1b[2J'"));
    command_free(c);
    /* a malformed PARENG_* variable: the library's message, naming it, escaped */
    setenv("PARENG_CUTOFF", "x\ny", 1);
    c = RUN("run", "fib", "5");
    unsetenv("PARENG_CUTOFF");
    CU_ASSERT(exited_with(c, 2));
    CU_ASSERT_EQUAL(count_lines(c->err), 1);
    CU_ASSERT(contains(c->err, "PARENG_CUTOFF") && contains(c->err, "'x\\ny'"));
    command_free(c);
}

/* ---- the environment ------------------------------------------------------------------- */

static void test_environment_workers(void)
{
    setenv("PARENG_NUM_WORKERS", "3", 1);
    command *env = RUN("run", "fib", "25");
    command *over = RUN("run", "fib", "25", "--cores", "1");
    command *over_auto = RUN("run", "fib", "25", "-c", "auto");
    command *topo = RUN("topo");
    command *bench = RUN("bench", "fib", "15", "--runs", "1", "--warmup", "0", "--workers", "1");
    unsetenv("PARENG_NUM_WORKERS");
    assert_fib_printed(env, "25", "75025");
    CU_ASSERT_EQUAL(time_line_value(env, "workers: "), 3);
    assert_fib_printed(over, "25", "75025");
    CU_ASSERT_EQUAL(time_line_value(over, "workers: "), 1);
    assert_fib_printed(over_auto, "25", "75025");
    CU_ASSERT_EQUAL(time_line_value(over_auto, "workers: "), allowed_cores());
    CU_ASSERT(exited_with(topo, 0));
    CU_ASSERT(contains(topo->out, "\nplacement (PARENG_NUM_WORKERS=3): 3 workers\n"));
    /* bench measures its --workers counts, whatever the variable says */
    CU_ASSERT(exited_with(bench, 0));
    CU_ASSERT(contains(bench->out, "\npareng        1 "));
    CU_ASSERT_PTR_NULL(strstr(bench->out, "\npareng        3 "));
    command_free(env);
    command_free(over);
    command_free(over_auto);
    command_free(topo);
    command_free(bench);

    if (cpus_0_and_1_allowed()) {
        setenv("PARENG_PLACES", "0-1", 1);
        command *places = RUN("run", "fib", "25");
        command *over_places = RUN("run", "fib", "25", "--cores", "1");
        unsetenv("PARENG_PLACES");
        assert_fib_printed(places, "25", "75025");
        CU_ASSERT_EQUAL(time_line_value(places, "workers: "), 2);
        assert_fib_printed(over_places, "25", "75025");
        CU_ASSERT_EQUAL(time_line_value(over_places, "workers: "), 1);
        command_free(places);
        command_free(over_places);
    }
}

static void test_environment_cutoff(void)
{
    setenv("PARENG_CUTOFF", "none", 1);
    command *env = RUN("run", "fib", "25");
    command *over = RUN("run", "fib", "25", "--cutoff", "auto");
    command *grain = RUN("run", "fib", "25", "--grain", "12");
    command *json = RUN("map", "fib", "20", "21", "--json");
    unsetenv("PARENG_CUTOFF");
    assert_fib_printed(env, "25", "75025");
    CU_ASSERT(contains(env->out, ", cutoff: none\n"));
    assert_fib_printed(over, "25", "75025");
    CU_ASSERT(time_line_value(over, "cutoff: auto (") >= 0);
    /* the variable is no --cutoff: fib's grain goes with it, and replaces it */
    assert_fib_printed(grain, "25", "75025");
    CU_ASSERT(contains(grain->out, ", grain: 12\n"));
    CU_ASSERT(exited_with(json, 0));
    CU_ASSERT(json_has(json->out, "\"cutoff\":\"none\",\"grain\":null"));
    command_free(env);
    command_free(over);
    command_free(grain);
    command_free(json);
}

/* A malformed variable is bad input, named, even where an option overrides it, in every
 * command that configures an engine. */
static void test_environment_malformed(void)
{
    setenv("PARENG_CUTOFF", "deep", 1);
    CHECK_BAD_INPUT({{"run", "fib", "25"}, {"PARENG_CUTOFF", "'deep'"}},
                    {{"run", "fib", "25", "--cutoff", "auto"}, {"PARENG_CUTOFF", "'deep'"}},
                    {{"run", "fib", "25", "--serial"}, {"PARENG_CUTOFF"}},
                    {{"map", "fib", "25", "26"}, {"PARENG_CUTOFF"}},
                    {{"topo"}, {"PARENG_CUTOFF"}},
                    {{"bench", "fib", "20"}, {"PARENG_CUTOFF"}},
                    {{"bench", "spawn"}, {"PARENG_CUTOFF"}});
    unsetenv("PARENG_CUTOFF");
    setenv("PARENG_NUM_WORKERS", "0", 1);
    CHECK_BAD_INPUT({{"run", "fib", "25"}, {"PARENG_NUM_WORKERS", "'0'"}},
                    {{"run", "fib", "25", "-c", "1"}, {"PARENG_NUM_WORKERS"}});
    unsetenv("PARENG_NUM_WORKERS");
    setenv("PARENG_PLACES", "0x3", 1);
    CHECK_BAD_INPUT({{"run", "fib", "25"}, {"PARENG_PLACES", "bitmasks"}});
    unsetenv("PARENG_PLACES");
    setenv("PARENG_DISPLAY_AFFINITY", "maybe", 1);
    CHECK_BAD_INPUT({{"run", "fib", "25"}, {"PARENG_DISPLAY_AFFINITY", "'maybe'"}});
    unsetenv("PARENG_DISPLAY_AFFINITY");
}

/* PARENG_DISPLAY_AFFINITY=true: one line per worker on stderr, at the engine's start. */
static void test_display_affinity(void)
{
    static const char *const yes[] = {"true", "1", "ON"};
    for (unsigned i = 0; i < 3; i++) {
        setenv("PARENG_DISPLAY_AFFINITY", yes[i], 1);
        command *c = RUN("run", "fib", "20", "--cores", "2");
        unsetenv("PARENG_DISPLAY_AFFINITY");
        assert_fib_printed(c, "20", "6765");
        CU_ASSERT_EQUAL(count_lines(c->err), 2);
        CU_ASSERT(contains(c->err, " worker 0 pid ") && contains(c->err, " worker 1 pid "));
        char line[256];
        for (unsigned k = 0; k < 2; k++)
            CU_ASSERT(line_of(c->err, k, line, sizeof line) && strncmp(line, "pareng: ", 8) == 0);
        command_free(c);
    }
    setenv("PARENG_DISPLAY_AFFINITY", "false", 1);
    command *c = RUN("run", "fib", "20", "--cores", "2");
    unsetenv("PARENG_DISPLAY_AFFINITY");
    assert_fib_printed(c, "20", "6765");
    CU_ASSERT_EQUAL(c->err_len, 0);
    command_free(c);
}

/* ---- failures -------------------------------------------------------------------------- */

/* Starts a long run on 2 workers and waits until both exist (and the run has begun, so that
 * what follows hits an engine at work); NULL if they never appear. */
static command *start_long_run(pid_t workers[2])
{
    command *c = command_start("run", "fib", LONG_RUN_N, "--cores", "2", "--cutoff", "none",
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

/* SIGTERM while the engine starts (a topology that takes a second to load) was swallowed:
 * the run went on. It now ends the start: status 143, nothing started. */
static void test_sigterm_during_start(void)
{
    /* 4096 PUs in one package: 0.6 s to start on a fast host (2026-12-04; two packages of
     * 1024 cores took over a second on an older one, and 0.27 to 0.38 s here, so the signal
     * came after the start) */
    setenv("HWLOC_SYNTHETIC", "package:1 core:2048 pu:2", 1);
    command *c = command_start("run", "fib", "25", "--cores", "2", (const char *)NULL);
    unsetenv("HWLOC_SYNTHETIC");
    usleep(200000);
    CU_ASSERT_EQUAL(kill(c->pid, SIGTERM), 0);
    CU_ASSERT(command_await(c, COMMAND_TIMEOUT_MS, false));
    CU_ASSERT(exited_with(c, 143));
    CU_ASSERT_PTR_NULL(strstr(c->out, "fib(25)"));
    assert_no_leftover(c);
    command_free(c);
}

/* The CLI killed with SIGKILL: its workers follow it (PR_SET_PDEATHSIG), and nothing of its
 * engine stays: the engine's memory has no name (a memfd), which the kernel frees with the
 * last process that maps it. */
static void test_killed_cli(void)
{
    pid_t workers[2];
    command *c = start_long_run(workers);
    if (!c)
        return;
    double killed_at = now_ms();
    CU_ASSERT_EQUAL(kill(c->pid, SIGKILL), 0);
    bool died = command_await(c, ORPHAN_DEATH_MS, false);
    CU_ASSERT(died);
    if (!died) {
        command_free(c);
        return;
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
    CU_ASSERT(c->reaped && WIFSIGNALED(c->status) && WTERMSIG(c->status) == SIGKILL);
    assert_no_leftover(c);
    command_free(c);

    /* the machine is usable again */
    command *after = RUN("run", "fib", "10");
    assert_fib_printed(after, "10", "55");
    command_free(after);
}

/* `pareng clean` removes the named segments that engines of pareng 0.1 left in /dev/shm when
 * their owner was killed: one is planted here, in that format, owned by a process that is
 * gone; a segment of a live process is left alone. */
static bool plant_segment(const char *path, pid_t owner)
{
    pareng__arena head;
    memset(&head, 0, sizeof head);
    head.magic = PARENG__ARENA_MAGIC;
    head.owner_pid = owner;
    head.owner_start_time = pareng__process_start_time(owner); /* 0 for one that is gone */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write(fd, &head, sizeof head) == (ssize_t)sizeof head;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* One round: plants a stale segment and one of a live process (this one), runs `pareng
 * clean`. Returns false when the round proves nothing because another process swept the stale
 * segment first (other test programs on this machine may run older builds whose every
 * pareng_start sweeps). */
static bool clean_round(void)
{
    pid_t gone = fork();
    CU_ASSERT_FATAL(gone >= 0);
    if (gone == 0)
        _exit(0);
    CU_ASSERT_EQUAL(waitpid(gone, NULL, 0), gone);
    char stale[64], live[64];
    snprintf(stale, sizeof stale, "/dev/shm/pareng-%d-cli-test", (int)gone);
    snprintf(live, sizeof live, "/dev/shm/pareng-%d-cli-test", (int)getpid());
    if (!plant_segment(stale, gone) || !plant_segment(live, getpid())) {
        fprintf(stderr, "\ncannot write in /dev/shm: pareng clean not tested\n");
        unlink(stale);
        unlink(live);
        return true;
    }
    command *c = RUN("clean");
    CU_ASSERT(exited_with(c, 0));
    int removed = -1;
    char plural[4] = "", expected[64] = "";
    if (sscanf(c->out, "removed %d stale segment%1[s]", &removed, plural) >= 1)
        snprintf(expected, sizeof expected, "removed %d stale segment%s\n", removed,
                 removed == 1 ? "" : "s");
    CU_ASSERT_STRING_EQUAL(c->out, expected);
    CU_ASSERT_EQUAL(c->err_len, 0);
    CU_ASSERT(access(stale, F_OK) != 0);
    CU_ASSERT(access(live, F_OK) == 0); /* its owner lives */
    command_free(c);
    unlink(live);
    unlink(stale);
    return removed >= 1; /* ours, and any other stale one of this user */
}

static void test_clean(void)
{
    /* Every round checks the output, that the stale segment went and the live one stayed;
     * that it was this clean that removed it is only known when nobody else swept first. On
     * a machine alone (CI) the first round proves it. */
    bool proved = false;
    for (int round = 0; round < 5 && !proved; round++)
        if (!(proved = clean_round()))
            fprintf(stderr, "\nanother process swept the stale segment first: once more\n");
    if (!proved)
        fprintf(stderr, "\n(note: other processes kept sweeping /dev/shm: that pareng clean "
                        "removes a stale segment itself was not seen)\n");

    command *c = RUN("clean", "--json");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(is_one_json_object(c->out));
    CU_ASSERT(json_number_of(c->out, "removed") >= 0);
    CU_ASSERT(strncmp(c->out, "{\"removed\":", 11) == 0);
    command_free(c);
}

/* Under an MPI launcher pareng run hands itself over to pareng-mpi, found beside it; a pareng
 * with no twin there (built without MPI) says so and exits with 1, having started nothing.
 * The copy lies beside the binary under test (the build tree: /tmp may be another file system,
 * or noexec). */
static void test_launcher_without_mpi_twin(void)
{
    char dir[PATH_MAX], copy[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s.twinless-XXXXXX", pareng_bin);
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(copy, sizeof copy, "%s/pareng", dir);
    int from = open(pareng_bin, O_RDONLY | O_CLOEXEC);
    int to = open(copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
    char block[1 << 16];
    ssize_t n = from >= 0 && to >= 0 ? 1 : -1;
    while (n > 0 && (n = read(from, block, sizeof block)) > 0)
        n = write(to, block, (size_t)n) == n ? n : -1;
    close(from);
    close(to);
    CU_ASSERT_EQUAL(n, 0);
    if (n == 0) {
        const char *bin = pareng_bin;
        pareng_bin = copy;
        setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
        command *c = RUN("run", "fib", "20");
        command *topo = RUN("topo"); /* the other commands do not need the twin */
        unsetenv("OMPI_COMM_WORLD_SIZE");
        pareng_bin = bin;
        CU_ASSERT(exited_with(c, 1));
        CU_ASSERT(contains(c->err, "pareng: started by an MPI launcher, but "));
        CU_ASSERT(contains(c->err, "/pareng-mpi: No such file or directory"));
        CU_ASSERT_EQUAL(count_lines(c->err), 1);
        CU_ASSERT_EQUAL(c->out_len, 0);
        CU_ASSERT(exited_with(topo, 0));
        assert_no_leftover(c);
        command_free(c);
        command_free(topo);
    }
    unlink(copy);
    rmdir(dir);
}

/* `prlimit --fsize=1000000 pareng run fib 30` died of SIGXFSZ (status 153) without a word:
 * the engine's shared memory counts against the limit, and is now refused with a message. */
static void test_file_size_limit(void)
{
    command *c = RUN_LIMITED(RLIMIT_FSIZE, 1000000, "run", "fib", "30");
    CU_ASSERT(exited_with(c, 1));
    CU_ASSERT(contains(c->err, "file-size limit"));
    assert_no_leftover(c);
    command_free(c);
}

/* `ulimit -s 16; pareng run fib 5` died of SIGSEGV in some runs (where the arguments and
 * environment above main left the least of it): refused, said. Here 32 KiB, which the test's
 * own stack, mapped beyond that at its exec, may keep. */
static void test_stack_size_limit(void)
{
    command *c = RUN_LIMITED(RLIMIT_STACK, 32 << 10, "run", "fib", "5");
    CU_ASSERT(exited_with(c, 1));
    CU_ASSERT(contains(c->err, "the stack size limit (ulimit -s) is 32 KiB, less than the 64"));
    assert_no_leftover(c);
    command_free(c);
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
        {"more workers than cores: warning", test_more_workers_than_cores},
        {"more workers than one core: warning", test_more_workers_than_one_core},
        {"closed stderr: the run goes on", test_closed_stderr_is_not_the_engines},
        {"CPU lists", test_cpu_lists},
        {"grains", test_grains},
        {"cutoffs", test_cutoffs},
        {"map: a Python list", test_map_prints_python_list},
        {"--serial", test_serial},
        {"uts: UTS's sample trees, exactly", test_uts},
        {"clean: stale named segments", test_clean},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo options[] = {
        {"--help of every command = docs/cli.md", test_help_matches_docs},
        {"the synopsis = every command's usage", test_synopsis_matches_help},
        {"every option named in a help is taken", test_help_explains_every_option},
        {"--version", test_version},
        {"getopt_long: short, abbreviated, --, permuted", test_getopt_features},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo environment[] = {
        {"PARENG_NUM_WORKERS, PARENG_PLACES; --cores wins", test_environment_workers},
        {"PARENG_CUTOFF; --cutoff wins", test_environment_cutoff},
        {"malformed variables: status 2, named", test_environment_malformed},
        {"PARENG_DISPLAY_AFFINITY", test_display_affinity},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo bad[] = {
        {"bad N", test_bad_n},
        {"unknown workload, option, command", test_unknown_names},
        {"missing workload, N, values", test_missing_parts},
        {"bad worker counts", test_bad_counts},
        {"malformed CPU lists", test_malformed_lists},
        {"refused CPU list forms", test_refused_list_forms},
        {"CPUs outside the allowed set", test_cpus_outside_allowed_set},
        {"bad grain", test_bad_grain},
        {"long values: the reason kept", test_long_values_keep_the_reason},
        {"control characters escaped", test_control_characters_escaped},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo failures[] = {
        {"worker killed: status 1, named", test_killed_worker},
        {"SIGINT: status 130", test_sigint},
        {"SIGTERM: status 143", test_sigterm},
        {"SIGTERM while starting: status 143", test_sigterm_during_start},
        {"CLI killed: workers follow", test_killed_cli},
        {"a file-size limit: said, not SIGXFSZ", test_file_size_limit},
        {"a stack size limit too small is said", test_stack_size_limit},
        {"run under a launcher without pareng-mpi: status 1, said", test_launcher_without_mpi_twin},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo last[] = {
        {"nothing left", test_nothing_left},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("happy path", happy),
        TESTING_SUITE("options and help", options),
        TESTING_SUITE("environment", environment),
        TESTING_SUITE("bad input", bad),
        TESTING_SUITE("failures", failures),
        TESTING_SUITE("leftovers", last),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
