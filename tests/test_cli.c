/*
 * test_cli.c - the pareng command as a user runs it: fork + exec of the built binary
 * ($PARENG_BIN), its stdout, stderr and exit status, and what it leaves behind. Results that
 * must be exact, JSON that must parse, bad input that must be refused with status 2 and a
 * one-line message, and failures (a worker killed, the CLI interrupted or killed) that must end
 * promptly with no worker process and no shared-memory segment left.
 *
 * Every command runs in a process group of its own, whose id is its pid: its workers inherit
 * the group, which is how a worker of this test is told apart from anyone else's, even after
 * its parent died and it was reparented.
 */
#include "pareng.h"
#include "testing.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A command that runs longer than this hangs: it is killed and the test fails. */
#define COMMAND_TIMEOUT_MS 20000
/* How long a run may take to notice a dead worker or a signal, and to report it. */
#define FAILURE_REPORT_MS 1500
/* How long workers may outlive a CLI killed by SIGKILL (PR_SET_PDEATHSIG). */
#define ORPHAN_DEATH_MS 1000
/* fib(50) with every call a task takes ~12 s on 2 cores (fib(47), ~3 s, is too close to the
 * time a slow machine needs to start it): the failure tests always end it before it is done. */
#define LONG_RUN_N "50"
#define OUTPUT_MAX 65536
#define MAX_COMMANDS 256

typedef struct command {
    char line[512]; /* "pareng run fib 35 ...", for messages */
    pid_t pid;
    int pidfd, out_fd, err_fd;
    char out[OUTPUT_MAX], err[OUTPUT_MAX];
    size_t out_len, err_len;
    bool reaped;
    int status; /* from waitpid once reaped */
} command;

/* Every pid (= process group) this program started, for the final leftover check. */
static pid_t started[MAX_COMMANDS];
static unsigned n_started;
static const char *pareng_bin;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* ---- processes, seen through /proc ---------------------------------------------------- */

/* State letter of a process ('R', 'S', 'Z'...), or 0 when it does not exist; *pgrp gets its
 * process group. */
static char process_state(pid_t pid, pid_t *pgrp)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command name may hold spaces and parentheses: the fields follow the last ')' */
    char *p = strrchr(buf, ')');
    char state = 0;
    int ppid = 0, group = 0;
    if (!p || sscanf(p + 2, "%c %d %d", &state, &ppid, &group) != 3)
        return 0;
    if (pgrp)
        *pgrp = group;
    return state;
}

/* A zombie has ended; only its exit status waits for a parent that may never reap it (a
 * reparented worker whose new parent does not reap). */
static bool process_alive(pid_t pid)
{
    char state = process_state(pid, NULL);
    return state != 0 && state != 'Z' && state != 'X';
}

/* Live processes in process group pgrp; with `report`, their names go to stderr, to say what
 * was left. */
static int live_members_in(pid_t pgrp, bool report)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid_t pid = (pid_t)atoi(e->d_name), group = 0;
        char state = process_state(pid, &group);
        if (group != pgrp || state == 0 || state == 'Z' || state == 'X')
            continue;
        n++;
        if (!report)
            continue;
        char path[64], name[64] = "?";
        snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
        FILE *f = fopen(path, "re");
        if (f) {
            if (fgets(name, sizeof name, f))
                name[strcspn(name, "\n")] = '\0';
            fclose(f);
        }
        fprintf(stderr, "\nleft alive: pid %d (%s, state %c) of group %d\n", (int)pid, name,
                state, (int)pgrp);
    }
    if (d)
        closedir(d);
    return n;
}

static int live_members_of_group(pid_t pgrp)
{
    return live_members_in(pgrp, true);
}

/* Pids of the children of pid, in the order they were forked (the kernel appends). */
static int children_of(pid_t pid, pid_t *pids, int max)
{
    char path[96], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    int n = 0;
    for (char *tok = strtok(buf, " \n"); tok && n < max; tok = strtok(NULL, " \n"))
        pids[n++] = (pid_t)atoi(tok);
    return n;
}

/* ---- running the CLI ------------------------------------------------------------------- */

static int pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Starts `pareng ARGS...` (NULL-terminated) with stdout and stderr on pipes, stdin on
 * /dev/null, in a process group of its own. */
static __attribute__((sentinel)) command *command_start(const char *first, ...)
{
    const char *argv[32] = {"pareng"};
    int argc = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *arg = first; arg && argc < 31; arg = va_arg(ap, const char *))
        argv[argc++] = arg;
    va_end(ap);
    argv[argc] = NULL;

    command *c = calloc(1, sizeof *c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    size_t used = 0;
    for (int i = 0; i < argc && used < sizeof c->line; i++)
        used += (size_t)snprintf(c->line + used, sizeof c->line - used, i ? " '%s'" : "%s",
                                 argv[i]);

    int out[2], err[2];
    CU_ASSERT_FATAL(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        /* the CLI starts as a shell would start it: default signal mask, default SIGPIPE */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
            _exit(126);
        execv(pareng_bin, (char *const *)argv);
        _exit(127);
    }
    /* both sides set the group, so that it is set before either goes on */
    setpgid(pid, pid);
    close(out[1]);
    close(err[1]);
    c->pid = pid;
    c->out_fd = out[0];
    c->err_fd = err[0];
    fcntl(c->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(c->err_fd, F_SETFL, O_NONBLOCK);
    c->pidfd = pidfd_open(pid);
    CU_ASSERT_FATAL(c->pidfd >= 0);
    if (n_started < MAX_COMMANDS)
        started[n_started++] = pid;
    return c;
}

/* Reads what is in the pipe now, without blocking (workers may hold its other end open after
 * the CLI ended, so the end of a command is its exit, not the end of its output). */
static void drain(int *fd, char *buf, size_t *len)
{
    while (*fd >= 0) {
        char chunk[4096];
        ssize_t n = read(*fd, chunk, sizeof chunk);
        if (n > 0) {
            size_t keep = (size_t)n < OUTPUT_MAX - 1 - *len ? (size_t)n : OUTPUT_MAX - 1 - *len;
            memcpy(buf + *len, chunk, keep);
            *len += keep;
            buf[*len] = '\0';
        } else if (n == 0) {
            close(*fd);
            *fd = -1;
        } else if (errno != EINTR) {
            return;
        }
    }
}

/* Waits up to timeout_ms for the CLI process to end, collecting its output, and reaps it
 * unless keep_zombie (then its pid, and with it its segment's owner, stays in /proc). False
 * if it is still running. */
static bool command_await(command *c, int timeout_ms, bool keep_zombie)
{
    double deadline = now_ms() + timeout_ms;
    bool ended = false;
    while (!ended) {
        int left = (int)(deadline - now_ms());
        if (left < 0)
            return false;
        struct pollfd fds[3] = {{.fd = c->pidfd, .events = POLLIN},
                                {.fd = c->out_fd, .events = POLLIN},
                                {.fd = c->err_fd, .events = POLLIN}};
        if (poll(fds, 3, left) < 0 && errno != EINTR)
            return false;
        ended = fds[0].revents != 0;
        drain(&c->out_fd, c->out, &c->out_len);
        drain(&c->err_fd, c->err, &c->err_len);
    }
    if (!keep_zombie) {
        CU_ASSERT_EQUAL(waitpid(c->pid, &c->status, 0), c->pid);
        c->reaped = true;
    }
    return true;
}

static void command_reap(command *c)
{
    if (!c->reaped && waitpid(c->pid, &c->status, 0) == c->pid)
        c->reaped = true;
}

/* Ends a command that did not end by itself: the CLI and every worker of its group. */
static void command_kill(command *c)
{
    kill(-c->pid, SIGKILL);
    kill(c->pid, SIGKILL);
    command_await(c, COMMAND_TIMEOUT_MS, false);
}

/* Ends what a command left running (a test reported it already), so that one failure does
 * not leave processes that spoil the tests after it. The group id cannot name anybody else
 * while one of its members lives. */
static void kill_leftovers(pid_t pgrp)
{
    if (live_members_in(pgrp, false) > 0)
        kill(-pgrp, SIGKILL);
}

static void command_free(command *c)
{
    if (!c)
        return;
    if (!c->reaped)
        command_kill(c);
    kill_leftovers(c->pid);
    if (c->out_fd >= 0)
        close(c->out_fd);
    if (c->err_fd >= 0)
        close(c->err_fd);
    close(c->pidfd);
    free(c);
}

/* Runs `pareng ARGS...` to its end; a command that hangs is killed and fails the test. */
#define RUN(...) command_run(command_start(__VA_ARGS__, (const char *)NULL))
static command *command_run(command *c)
{
    if (!command_await(c, COMMAND_TIMEOUT_MS, false)) {
        fprintf(stderr, "\n%s: still running after %d ms, killed\n", c->line, COMMAND_TIMEOUT_MS);
        CU_FAIL("command hangs");
        command_kill(c);
    }
    return c;
}

/* True when the command exited with `code`; says what happened instead otherwise. */
static bool exited_with(const command *c, int code)
{
    if (c->reaped && WIFEXITED(c->status) && WEXITSTATUS(c->status) == code)
        return true;
    if (!c->reaped)
        fprintf(stderr, "\n%s: not ended\n", c->line);
    else if (WIFSIGNALED(c->status))
        fprintf(stderr, "\n%s: killed by signal %d, expected exit %d\n", c->line,
                WTERMSIG(c->status), code);
    else
        fprintf(stderr, "\n%s: exit %d, expected %d\n", c->line, WEXITSTATUS(c->status), code);
    fprintf(stderr, "stdout: %s\nstderr: %s\n", c->out, c->err);
    return false;
}

/* Line k (0-based) of text, without its newline; false if text has fewer lines. */
static bool line_of(const char *text, unsigned k, char *line, size_t size)
{
    for (; k > 0; k--) {
        text = strchr(text, '\n');
        if (!text)
            return false;
        text++;
    }
    if (!*text)
        return false;
    size_t len = strcspn(text, "\n");
    snprintf(line, size, "%.*s", (int)len, text);
    return true;
}

static unsigned count_lines(const char *text)
{
    unsigned n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static bool contains(const char *text, const char *part)
{
    if (strstr(text, part))
        return true;
    fprintf(stderr, "\nexpected '%s' in: %s\n", part, text);
    return false;
}

/* The command ended and left no worker process and no segment behind. */
static void assert_no_leftover(const command *c)
{
    CU_ASSERT(c->reaped);
    CU_ASSERT_EQUAL(live_members_of_group(c->pid), 0);
    CU_ASSERT_EQUAL(testing_segments_of(c->pid), 0);
    CU_ASSERT_EQUAL(testing_children_of(getpid()), 0);
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

/* ---- a JSON reader, only to tell that the output is one well-formed value ---------------- */

static const char *json_value(const char *p);

static const char *json_space(const char *p)
{
    while (p && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    for (; *p != '"'; p++) {
        if ((unsigned char)*p < 0x20)
            return NULL; /* control characters, the end of the text included */
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (!isxdigit((unsigned char)p[i]))
                        return NULL;
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
    }
    return p + 1;
}

static const char *json_number(const char *p)
{
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (isdigit((unsigned char)*p))
        while (isdigit((unsigned char)*p))
            p++;
    else
        return NULL;
    if (*p == '.') {
        if (!isdigit((unsigned char)*++p))
            return NULL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return NULL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return p;
}

/* Members of an object (key: value) or elements of an array, up to the closing bracket. */
static const char *json_members(const char *p, char close, bool keys)
{
    p = json_space(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (keys) {
            p = json_space(json_string(json_space(p)));
            if (!p || *p++ != ':')
                return NULL;
        }
        p = json_space(json_value(p));
        if (!p)
            return NULL;
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

static const char *json_value(const char *p)
{
    p = json_space(p);
    if (!p)
        return NULL;
    switch (*p) {
    case '{':
        return json_members(p, '}', true);
    case '[':
        return json_members(p, ']', false);
    case '"':
        return json_string(p);
    case 't':
        return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
        return json_number(p);
    }
}

/* A member `"key":value` written exactly so, the value ending at ',' or '}'. */
static bool json_has(const char *json, const char *member)
{
    for (const char *p = strstr(json, member); p; p = strstr(p + 1, member)) {
        char after = p[strlen(member)];
        if ((p == json || p[-1] == '{' || p[-1] == ',') && (after == ',' || after == '}'))
            return true;
    }
    fprintf(stderr, "\nno member %s in %s\n", member, json);
    return false;
}

/* The number after `"key":`, or -1. */
static double json_number_of(const char *json, const char *key)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *p = strstr(json, pattern);
    return p ? strtod(p + strlen(pattern), NULL) : -1;
}

/* ---- happy path ------------------------------------------------------------------------ */

static void test_fib_35_auto(void)
{
    command *c = RUN("run", "fib", "35", "--cores", "auto");
    assert_fib_printed(c, "35", "9227465");
    /* auto is one worker per core, and never more workers than cores: no warning */
    CU_ASSERT_EQUAL(time_line_value(c, "workers: "), allowed_cores());
    /* the default grain is the engine's choice, and the line says which it chose */
    CU_ASSERT_PTR_NOT_NULL(strstr(c->out, "grain: auto ("));
    CU_ASSERT_EQUAL(time_line_value(c, "grain: auto ("), pareng_fib_auto_grain());
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

static void test_json(void)
{
    command *c = RUN("run", "fib", "35", "--json");
    CU_ASSERT(exited_with(c, 0));
    /* one line, holding one JSON object and nothing else */
    CU_ASSERT_EQUAL(count_lines(c->out), 1);
    const char *end = c->out[0] == '{' ? json_value(c->out) : NULL;
    CU_ASSERT(end && strcmp(end, "\n") == 0);
    if (!end)
        fprintf(stderr, "\nnot one JSON object: %s\n", c->out);
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
    CU_ASSERT_EQUAL(c->err_len, 0);
    assert_no_leftover(c);
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
        CU_ASSERT_EQUAL(fields, 13); /* index, 10 counters, busy and idle seconds */
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
    const char *end = c->out[0] == '{' ? json_value(c->out) : NULL;
    CU_ASSERT(end && strcmp(end, "\n") == 0);
    CU_ASSERT(json_has(c->out, "\"result\":832040"));
    CU_ASSERT(json_has(c->out, "\"serial\":true"));
    CU_ASSERT(json_has(c->out, "\"workers\":0"));
    assert_no_leftover(c);
    command_free(c);
}

/* ---- bad input ----------------------------------------------------------------------- */

typedef struct bad_case {
    const char *args[8];
    const char *mentions[2]; /* what the message must name */
} bad_case;

/* Status 2, one line on stderr that starts with "pareng: " and names the problem, nothing on
 * stdout (a script must not mistake anything there for a result), nothing started. */
static void check_bad_input(const bad_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *const *a = cases[i].args;
        command *c = RUN(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
        bool ok = exited_with(c, 2);
        CU_ASSERT(ok);
        bool one_line = count_lines(c->err) == 1 && c->err[c->err_len - 1] == '\n' &&
                        strncmp(c->err, "pareng: ", 8) == 0;
        CU_ASSERT(one_line);
        for (unsigned k = 0; k < 2; k++)
            if (cases[i].mentions[k]) {
                bool named = contains(c->err, cases[i].mentions[k]);
                CU_ASSERT(named);
                ok = ok && named;
            }
        CU_ASSERT_EQUAL(c->out_len, 0);
        if (!ok || !one_line || c->out_len)
            fprintf(stderr, "\nbad input case: %s\n", c->line);
        assert_no_leftover(c);
        command_free(c);
    }
}

#define CHECK_BAD_INPUT(...)                                                                  \
    do {                                                                                      \
        static const bad_case cases[] = {__VA_ARGS__};                                        \
        check_bad_input(cases, sizeof cases / sizeof cases[0]);                               \
    } while (0)

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
                    {{"run", "fib", "35", "36"}, {"'36'"}});
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
    while (children_of(c->pid, workers, 2) < 2 && now_ms() < deadline)
        sleep_ms(2);
    if (children_of(c->pid, workers, 2) < 2) {
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

/* Last: nothing this program started is alive, and no segment of it is in /dev/shm. */
static void test_nothing_left(void)
{
    CU_ASSERT(n_started > 0 && n_started < MAX_COMMANDS);
    int alive = 0, segments = 0;
    for (unsigned i = 0; i < n_started; i++) {
        int n = live_members_of_group(started[i]);
        if (n)
            kill(-started[i], SIGKILL);
        alive += n;
        int s = testing_segments_of(started[i]);
        if (s)
            fprintf(stderr, "\n/dev/shm/pareng-%d-*: %d left\n", (int)started[i], s);
        segments += s;
    }
    CU_ASSERT_EQUAL(alive, 0);
    CU_ASSERT_EQUAL(segments, 0);
    CU_ASSERT_EQUAL(testing_children_of(getpid()), 0);
}

int main(void)
{
    pareng_bin = getenv("PARENG_BIN");
    if (!pareng_bin || access(pareng_bin, X_OK) != 0) {
        fprintf(stderr, "PARENG_BIN must name the pareng binary (meson test sets it)\n");
        return 99;
    }
    CU_TestInfo happy[] = {
        {"fib 35 --cores auto", test_fib_35_auto},
        {"small n, --opt=value forms", test_small_and_equals_forms},
        {"--json: one object, stats per worker", test_json},
        {"--stats: one row per worker", test_stats_table},
        {"--help, --version", test_help_and_version},
        {"more workers than cores: warning", test_more_workers_than_cores},
        {"CPU lists", test_cpu_lists},
        {"grains", test_grains},
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
