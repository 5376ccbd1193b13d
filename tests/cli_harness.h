/*
 * cli_harness.h - running the pareng command as a user runs it, for the CLI test programs:
 * fork + exec of the built binary ($PARENG_BIN) in a process group of its own, its stdout,
 * stderr and exit status, what it leaves behind, a JSON well-formedness reader, and the check
 * that bad input is refused with status 2 and a one-line message.
 *
 * Every command runs in a process group of its own, whose id is its pid: its workers inherit
 * the group, which is how a worker of this test is told apart from anyone else's, even after
 * its parent died and it was reparented.
 */
#ifndef PARENG_CLI_HARNESS_H
#define PARENG_CLI_HARNESS_H

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
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A command that runs longer than this hangs: it is killed and the test fails. */
#define COMMAND_TIMEOUT_MS 20000
/* Output kept per stream: `pareng topo --json` on 128 workers writes about 600 KB. */
#define OUTPUT_MAX (1 << 20)
#define MAX_COMMANDS 1024

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

/* Finds the binary under test; false (after saying so) when $PARENG_BIN does not name it. */
static inline bool harness_find_pareng(void)
{
    pareng_bin = getenv("PARENG_BIN");
    if (pareng_bin && access(pareng_bin, X_OK) == 0)
        return true;
    fprintf(stderr, "PARENG_BIN must name the pareng binary (meson test sets it)\n");
    return false;
}

static inline double now_ms(void)
{
    return (double)testing_now_ns() * 1e-6;
}

/* ---- processes, seen through /proc ---------------------------------------------------- */

/* State letter of a process ('R', 'S', 'Z'...), or 0 when it does not exist; *pgrp gets its
 * process group. */
static inline char process_state(pid_t pid, pid_t *pgrp)
{
    char buf[1024];
    const char *fields = testing_proc_stat((int)pid, buf, sizeof buf);
    char state = 0;
    int ppid = 0, group = 0;
    if (!fields || sscanf(fields, "%c %d %d", &state, &ppid, &group) != 3)
        return 0;
    if (pgrp)
        *pgrp = group;
    return state;
}

/* Live processes in process group pgrp; with `report`, their names go to stderr, to say what
 * was left. */
static inline int live_members_in(pid_t pgrp, bool report)
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

static inline int live_members_of_group(pid_t pgrp)
{
    return live_members_in(pgrp, true);
}

/* ---- running the CLI ------------------------------------------------------------------- */

static inline int pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Starts `pareng ARGS...` (NULL-terminated) with stdout and stderr on pipes, stdin on
 * /dev/null, in a process group of its own. */
static inline __attribute__((sentinel)) command *command_start(const char *first, ...)
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

/* A whole file (up to OUTPUT_MAX bytes), NUL-terminated, to free; or NULL. */
static inline char *harness_read_file(const char *path)
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

/* Reads what is in the pipe now, without blocking (workers may hold its other end open after
 * the CLI ended, so the end of a command is its exit, not the end of its output). */
static inline void drain(int *fd, char *buf, size_t *len)
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
static inline bool command_await(command *c, int timeout_ms, bool keep_zombie)
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

/* Ends a command that did not end by itself: the CLI and every worker of its group. */
static inline void command_kill(command *c)
{
    kill(-c->pid, SIGKILL);
    kill(c->pid, SIGKILL);
    command_await(c, COMMAND_TIMEOUT_MS, false);
}

/* Ends what a command left running (a test reported it already), so that one failure does
 * not leave processes that spoil the tests after it. The group id cannot name anybody else
 * while one of its members lives. */
static inline void kill_leftovers(pid_t pgrp)
{
    if (live_members_in(pgrp, false) > 0)
        kill(-pgrp, SIGKILL);
}

static inline void command_free(command *c)
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

/* Waits up to timeout_ms for `text` to appear on the command's stdout, collecting its output;
 * false if it did not (the command ended, or the time is up). */
static inline bool command_await_output(command *c, const char *text, int timeout_ms)
{
    double deadline = now_ms() + timeout_ms;
    while (!strstr(c->out, text)) {
        int left = (int)(deadline - now_ms());
        if (left <= 0 || c->out_fd < 0)
            return false;
        struct pollfd fds[2] = {{.fd = c->out_fd, .events = POLLIN},
                                {.fd = c->err_fd, .events = POLLIN}};
        if (poll(fds, 2, left) < 0 && errno != EINTR)
            return false;
        drain(&c->out_fd, c->out, &c->out_len);
        drain(&c->err_fd, c->err, &c->err_len);
    }
    return true;
}

/* The soft limit of `resource` lowered to `soft` (the hard one kept): what it was, to put back */
static inline struct rlimit harness_lower_limit(int resource, rlim_t soft)
{
    struct rlimit saved, lowered;
    CU_ASSERT_FATAL(getrlimit(resource, &saved) == 0);
    lowered = (struct rlimit){soft, saved.rlim_max};
    CU_ASSERT_FATAL(setrlimit(resource, &lowered) == 0);
    return saved;
}

/* RUN under a soft limit of RESOURCE, which this process has again once the command started */
#define RUN_LIMITED(RESOURCE, SOFT, ...)                                                      \
    ({                                                                                        \
        struct rlimit harness_saved_ = harness_lower_limit(RESOURCE, SOFT);                  \
        command *harness_c_ = command_start(__VA_ARGS__, (const char *)NULL);                 \
        setrlimit(RESOURCE, &harness_saved_);                                                 \
        command_run(harness_c_);                                                              \
    })

/* Runs `pareng ARGS...` to its end; a command that hangs is killed and fails the test. */
#define RUN(...) command_run(command_start(__VA_ARGS__, (const char *)NULL))
static inline command *command_run(command *c)
{
    if (!command_await(c, COMMAND_TIMEOUT_MS, false)) {
        fprintf(stderr, "\n%s: still running after %d ms, killed\n", c->line, COMMAND_TIMEOUT_MS);
        CU_FAIL("command hangs");
        command_kill(c);
    }
    return c;
}

/* The exit status of `pareng ARGS` started by the shell with its standard descriptors as
 * REDIRECTIONS say (">&-" closes stdout), under `timeout`; -1 when it did not exit. */
static inline int shell_run(const char *args, const char *redirections)
{
    char line[4096];
    snprintf(line, sizeof line, "exec timeout 60 '%s' %s %s", pareng_bin, args, redirections);
    int status = system(line);
    return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* True when the command exited with `code`; says what happened instead otherwise. */
/* Pins this program to its first CPU, keeping its mask in *all for harness_unpin: a CLI started
 * meanwhile inherits the mask, a machine of one core. */
static inline void harness_pin_to_one_cpu(cpu_set_t *all)
{
    cpu_set_t one;
    CU_ASSERT_FATAL(sched_getaffinity(0, sizeof *all, all) == 0);
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE && !CPU_COUNT(&one); cpu++)
        if (CPU_ISSET(cpu, all))
            CPU_SET(cpu, &one);
    CU_ASSERT_FATAL(sched_setaffinity(0, sizeof one, &one) == 0);
}

static inline void harness_unpin(const cpu_set_t *all)
{
    CU_ASSERT_FATAL(sched_setaffinity(0, sizeof *all, all) == 0);
}

static inline bool exited_with(const command *c, int code)
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
static inline bool line_of(const char *text, unsigned k, char *line, size_t size)
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

static inline unsigned count_lines(const char *text)
{
    unsigned n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static inline bool contains(const char *text, const char *part)
{
    if (strstr(text, part))
        return true;
    fprintf(stderr, "\nexpected '%s' in: %s\n", part, text);
    return false;
}

/* The command ended and left no worker process and no segment behind. */
static inline void assert_no_leftover(const command *c)
{
    CU_ASSERT(c->reaped);
    CU_ASSERT_EQUAL(live_members_of_group(c->pid), 0);
    CU_ASSERT_EQUAL(testing_segments_of(c->pid), 0);
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
}

/* ---- a JSON reader, only to tell that the output is one well-formed value ---------------- */

static inline const char *json_value(const char *p);

static inline const char *json_space(const char *p)
{
    while (p && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static inline const char *json_string(const char *p)
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

static inline const char *json_number(const char *p)
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
static inline const char *json_members(const char *p, char close, bool keys)
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

static inline const char *json_value(const char *p)
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
static inline bool json_has(const char *json, const char *member)
{
    for (const char *p = strstr(json, member); p; p = strstr(p + 1, member)) {
        char after = p[strlen(member)];
        if ((p == json || p[-1] == '{' || p[-1] == ',') && (after == ',' || after == '}'))
            return true;
    }
    fprintf(stderr, "\nno member %s in %s\n", member, json);
    return false;
}

/* The output is one line holding one JSON object and nothing else. */
static inline bool is_one_json_object(const char *out)
{
    const char *end = out[0] == '{' ? json_value(out) : NULL;
    if (end && strcmp(end, "\n") == 0 && count_lines(out) == 1)
        return true;
    fprintf(stderr, "\nnot one JSON object on one line: %.300s\n", out);
    return false;
}

/* The number after `"key":`, or -1. */
static inline double json_number_of(const char *json, const char *key)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *p = strstr(json, pattern);
    return p ? strtod(p + strlen(pattern), NULL) : -1;
}

/* ---- bad input ----------------------------------------------------------------------- */

typedef struct bad_case {
    const char *args[8];
    const char *mentions[2]; /* what the message must name */
} bad_case;

/* Status 2, one line on stderr that starts with "pareng: " and names the problem, nothing on
 * stdout (a script must not mistake anything there for a result), nothing started. */
static inline void check_bad_input(const bad_case *cases, size_t n)
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

/* Last: nothing this program started is alive, and no segment of it is in /dev/shm. */
static inline void test_nothing_left(void)
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
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
}

#endif
