/*
 * top.c - `pareng top`: the engines of this user as they run, refreshed like top(1). It finds
 * and attaches to them through the library (pareng_engines_find, pareng_attach,
 * pareng_snapshot: read-only, never written), and prints: a curses screen redrawn in place on
 * a terminal, plain lines otherwise, or JSON.
 *
 *   pareng top [PID|SEGMENT] [-d DUR] [-n N] [--once] [-j]
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#ifdef PARENG_HAVE_CURSES
#include <curses.h>
#endif

static const char top_help[] =
    "usage: pareng top [PID|SEGMENT] [-d DUR] [-n N] [--once] [-j]\n"
    "\n"
    "Shows the pareng engines of this user as they run, refreshed like top: per\n"
    "engine its command, run time and totals; per worker its PU and core, what it\n"
    "does now (running, stealing, sleeping, io), tasks/s, steals near and far,\n"
    "failed steal attempts, frames it shares, sleeps, IO in flight and CPU%. It\n"
    "reads the engines' shared memory read-only: they run as fast watched as not.\n"
    "On a terminal the screen is redrawn in place and q quits; otherwise each\n"
    "refresh prints plain lines.\n"
    "\n"
    "arguments:\n"
    "  PID       the engines of that process (its coordinator's pid)\n"
    "  SEGMENT   one engine, as /proc/PID/fd/N (what PARENG_DISPLAY_AFFINITY\n"
    "            prints); without either, every engine of this user\n"
    "\n"
    "options:\n"
    "  -d, --delay DUR\n"
    "          time between refreshes, 10ms to 3600s (ns, us, ms or s); default 1s\n"
    "  -n, --iterations N\n"
    "          stop after N refreshes (default: until q, ^C, or the engine stops)\n"
    "      --once\n"
    "          one refresh: -n 1\n"
    "  -j, --json\n"
    "          each refresh as one JSON object on a line of stdout\n"
    "  -h, --help\n"
    "          this help\n"
    "\n"
    "Rates (tasks/s, CPU%) are over the delay before each refresh: the first one\n"
    "comes one delay after the start (--once too). tasks counts what --stats\n"
    "counts: tasks that left the fast path (the root, stolen, shared or\n"
    "overflowed ones). More: docs/cli.md (man pareng).\n";

#define MIN_DELAY_NS 10000000ull
#define DEFAULT_DELAY_NS 1000000000ull
#define MAX_ENGINES 64

enum { OPT_ONCE = 256 };

/* One engine being watched, and its previous snapshot for the rates. */
typedef struct watched {
    pareng_attached *att;
    char segment[48];
    pareng_engine_view view;
    pareng_worker_view *workers, *before;
    unsigned n_workers;
    uint64_t at_ns, before_ns;
    bool seen; /* found again at this refresh */
} watched;

typedef struct top_state {
    const char *target; /* NULL: every engine of this user */
    int target_pid;     /* the target is a pid: its engines */
    bool json, screen;
    watched engines[MAX_ENGINES];
    unsigned n_engines;
    unsigned refresh;
    /* the screen's lines of this refresh: plain output prints them, curses draws them */
    char **lines;
    unsigned n_lines, cap_lines;
} top_state;

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* ---- finding and sampling ------------------------------------------------------------ */

static void forget(watched *w)
{
    pareng_detach(w->att);
    free(w->workers);
    free(w->before);
    *w = (watched){0};
}

/* Attaches to segment: 0, or pareng_attach's -errno (with the library's message in *why);
 * a segment past MAX_ENGINES is not watched. */
static int watch(top_state *t, const char *segment, char *why, size_t size)
{
    if (t->n_engines == MAX_ENGINES)
        return 0;
    watched *w = &t->engines[t->n_engines];
    *w = (watched){0};
    int rc = pareng_attach(&w->att, segment);
    if (rc < 0) {
        snprintf(why, size, "%s", pareng_last_error());
        return rc;
    }
    snprintf(w->segment, sizeof w->segment, "%s", segment);
    w->seen = true;
    t->n_engines++;
    return 0;
}

/* Which engines there are now: new ones attached, stopped ones forgotten. A target that is a
 * segment is attached once. 0, or the exit status after saying why. */
static int find_engines(top_state *t)
{
    char why[PARENG_ERROR_MAX] = "";
    if (t->target && !t->target_pid) {
        int rc = t->n_engines ? 0 : watch(t, t->target, why, sizeof why);
        if (rc == -EINVAL)
            return bad_input("%s", why);
        if (rc < 0) {
            cli_error("top: %s", why);
            return EXIT_RUN_FAILED;
        }
        return 0;
    }
    pareng_engine_ref refs[MAX_ENGINES];
    int n = pareng_engines_find(t->target_pid, refs, MAX_ENGINES);
    /* the process seen at the start has ended since: its engines have stopped, as when it
     * lives on without them */
    if (n == -ESRCH && t->refresh > 0)
        n = 0;
    if (n < 0) {
        cli_error("top: %s", pareng_last_error());
        return EXIT_RUN_FAILED;
    }
    if (n > MAX_ENGINES)
        n = MAX_ENGINES;
    for (unsigned k = 0; k < t->n_engines; k++)
        t->engines[k].seen = false;
    for (int i = 0; i < n; i++) {
        bool known = false;
        for (unsigned k = 0; k < t->n_engines && !known; k++)
            if (strcmp(t->engines[k].segment, refs[i].segment) == 0)
                known = t->engines[k].seen = true;
        /* an engine that stopped in between is simply not shown */
        if (!known)
            watch(t, refs[i].segment, why, sizeof why);
    }
    if (t->target_pid && n == 0 && t->refresh == 0) {
        cli_error("top: process %d runs no pareng engine", t->target_pid);
        return EXIT_RUN_FAILED;
    }
    return 0;
}

/* A snapshot of each engine; those that stopped are forgotten. */
static void sample(top_state *t)
{
    unsigned kept = 0;
    for (unsigned k = 0; k < t->n_engines; k++) {
        watched *w = &t->engines[k];
        bool alive = w->seen || (t->target && !t->target_pid);
        if (alive) {
            pareng_worker_view *swap = w->before;
            w->before = w->workers;
            w->workers = swap;
            w->before_ns = w->at_ns;
            if (!w->workers)
                w->workers = calloc(PARENG_MAX_WORKERS, sizeof *w->workers);
            int n = w->workers ? pareng_snapshot(w->att, &w->view, w->workers,
                                                 PARENG_MAX_WORKERS)
                               : -ENOMEM;
            alive = n > 0;
            w->n_workers = alive ? (unsigned)n : 0;
            w->at_ns = now_ns();
        }
        if (alive)
            t->engines[kept++] = *w;
        else
            forget(w);
    }
    t->n_engines = kept;
    t->refresh++;
}

/* tasks per second of worker i since the previous snapshot (0 for an engine first seen at
 * this one) */
static double tasks_per_second(const watched *w, unsigned i)
{
    if (!w->before || !w->before_ns || w->at_ns <= w->before_ns)
        return 0;
    return (double)(w->workers[i].stats.tasks - w->before[i].stats.tasks) /
           ((double)(w->at_ns - w->before_ns) * 1e-9);
}

static uint64_t far_steals(const pareng_stats *s)
{
    return s->steals + s->leapfrogs - s->near_steals;
}

/* ---- text: plain lines, or the screen's ----------------------------------------------- */

__attribute__((format(printf, 2, 3))) static void line(top_state *t, const char *fmt, ...)
{
    if (t->n_lines == t->cap_lines) {
        unsigned cap = t->cap_lines ? 2 * t->cap_lines : 64;
        char **lines = realloc(t->lines, cap * sizeof *lines);
        if (!lines)
            return;
        t->lines = lines;
        t->cap_lines = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&t->lines[t->n_lines], fmt, ap) >= 0)
        t->n_lines++;
    va_end(ap);
}

static void clear_lines(top_state *t)
{
    for (unsigned k = 0; k < t->n_lines; k++)
        free(t->lines[k]);
    t->n_lines = 0;
}

/* A command line may hold anything: control characters become '?' on screen. */
static void printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

static void text_engine(top_state *t, const watched *w)
{
    const pareng_engine_view *v = &w->view;
    char command[sizeof v->command];
    snprintf(command, sizeof command, "%s", v->command);
    printable(command);
    line(t, "engine %d %s: %s", v->pid, v->segment, command);
    pareng_stats sum = {0};
    double rate = 0, cpu = 0;
    for (unsigned i = 0; i < w->n_workers; i++) {
        const pareng_worker_view *x = &w->workers[i];
        sum.tasks += x->stats.tasks;
        sum.steals += x->stats.steals + x->stats.leapfrogs;
        sum.near_steals += x->stats.near_steals;
        sum.steal_fails += x->stats.steal_fails;
        sum.sleeps += x->stats.sleeps;
        rate += tasks_per_second(w, i);
        cpu += x->cpu_percent;
    }
    char run[96];
    if (v->runs == 0)
        snprintf(run, sizeof run, "no run yet");
    else
        snprintf(run, sizeof run, "run %llu %s %.1f s", (unsigned long long)v->runs,
                 v->running ? "running for" : "took", v->run_seconds);
    line(t, "  %u workers%s, up %.1f s, %s; totals: %.0f tasks/s, %llu tasks, %llu steals "
         "(%llu near), %llu failed, %llu sleeps, cpu %.0f%%",
         v->workers, v->io_depth ? " with IO" : "", v->age_seconds, run, rate,
         (unsigned long long)sum.tasks, (unsigned long long)sum.steals,
         (unsigned long long)sum.near_steals, (unsigned long long)sum.steal_fails,
         (unsigned long long)sum.sleeps, cpu);
    line(t, "  %6s %8s %4s %4s %-8s %9s %10s %8s %6s %9s %6s %7s %4s %6s", "worker", "pid", "pu",
         "core", "state", "tasks/s", "tasks", "near", "far", "failed", "shared", "sleeps", "io",
         "cpu%");
    for (unsigned i = 0; i < w->n_workers; i++) {
        const pareng_worker_view *x = &w->workers[i];
        char pu[12] = "-", core[12] = "-";
        if (x->pu_os >= 0) {
            snprintf(pu, sizeof pu, "%d", x->pu_os);
            snprintf(core, sizeof core, "%d", x->core_logical);
        }
        line(t, "  %6u %8d %4s %4s %-8s %9.0f %10llu %8llu %6llu %9llu %6llu %7llu %4llu %6.1f",
             i, x->pid, pu, core, pareng_state_name(x->state), tasks_per_second(w, i),
             (unsigned long long)x->stats.tasks, (unsigned long long)x->stats.near_steals,
             (unsigned long long)far_steals(&x->stats), (unsigned long long)x->stats.steal_fails,
             (unsigned long long)x->shared_frames, (unsigned long long)x->stats.sleeps,
             (unsigned long long)x->io_in_flight, x->cpu_percent);
    }
}

static void text_refresh(top_state *t)
{
    clear_lines(t);
    if (t->n_engines == 0)
        line(t, t->target ? "the engine has stopped" : "no pareng engine of this user runs");
    for (unsigned k = 0; k < t->n_engines; k++)
        text_engine(t, &t->engines[k]);
}

/* ---- JSON ------------------------------------------------------------------------------ */

static void json_refresh(const top_state *t)
{
    printf("{\"engines\":[");
    for (unsigned k = 0; k < t->n_engines; k++) {
        const watched *w = &t->engines[k];
        const pareng_engine_view *v = &w->view;
        printf("%s{\"pid\":%d,\"segment\":", k ? "," : "", v->pid);
        json_string(stdout, v->segment);
        printf(",\"command\":");
        json_string(stdout, v->command);
        printf(",\"workers\":%u,\"io_depth\":%u,\"age_seconds\":%.3f,\"runs\":%llu,"
               "\"running\":%s,\"run_seconds\":%.6f,\"worker_stats\":[",
               v->workers, v->io_depth, v->age_seconds, (unsigned long long)v->runs,
               v->running ? "true" : "false", v->run_seconds);
        for (unsigned i = 0; i < w->n_workers; i++) {
            const pareng_worker_view *x = &w->workers[i];
            printf("%s{\"worker\":%u,\"pid\":%d,\"pu\":", i ? "," : "", i, x->pid);
            if (x->pu_os >= 0)
                printf("%d,\"core\":%d", x->pu_os, x->core_logical);
            else
                printf("null,\"core\":null");
            printf(",\"state\":\"%s\",", pareng_state_name(x->state));
            json_stats_fields(stdout, &x->stats, v->io_depth != 0);
            printf(",\"far_steals\":%llu,\"tasks_per_second\":%.1f,\"shared_frames\":%llu,"
                   "\"io_in_flight\":%llu,\"cpu_percent\":%.1f}",
                   (unsigned long long)far_steals(&x->stats), tasks_per_second(w, i),
                   (unsigned long long)x->shared_frames, (unsigned long long)x->io_in_flight,
                   x->cpu_percent);
        }
        printf("]}");
    }
    printf("]}\n");
}

/* ---- the screen -------------------------------------------------------------------------- */

#ifdef PARENG_HAVE_CURSES
static SCREEN *screen;

/* The screen on this terminal: false when curses does not know it (TERM unset or unknown),
 * and top prints plain lines. */
static bool screen_open(void)
{
    screen = newterm(NULL, stdout, stdin);
    if (!screen)
        return false;
    cbreak();
    noecho();
    curs_set(0);
    keypad(stdscr, TRUE);
    return true;
}

static void screen_close(void)
{
    endwin();
    delscreen(screen);
}

static void screen_draw(const top_state *t, uint64_t delay_ns)
{
    erase();
    time_t now = time(NULL);
    char clock[16];
    strftime(clock, sizeof clock, "%H:%M:%S", localtime(&now));
    mvprintw(0, 0, "pareng top - %s, %u engine%s, every %.3g s; q quits", clock, t->n_engines,
             t->n_engines == 1 ? "" : "s", (double)delay_ns * 1e-9);
    int rows = LINES, cols = COLS;
    for (unsigned k = 0; k < t->n_lines && (int)k + 2 < rows; k++) {
        bool header = strncmp(t->lines[k], "engine ", 7) == 0;
        if (header)
            attron(A_BOLD);
        mvaddnstr((int)k + 2, 0, t->lines[k], cols);
        if (header)
            attroff(A_BOLD);
    }
    refresh();
}

/* Waits delay_ns for a key: true when it was q (or a signal came). */
static bool screen_wait(uint64_t delay_ns)
{
    uint64_t until = now_ns() + delay_ns;
    for (;;) {
        uint64_t now = now_ns();
        if (stop_signal)
            return true;
        if (now >= until)
            return false;
        uint64_t left_ms = (until - now) / 1000000u;
        timeout(left_ms > INT_MAX ? INT_MAX : (int)left_ms + 1);
        int c = getch();
        if (c == 'q' || c == 'Q')
            return true;
    }
}

#else
/* Built without curses (meson setup -Dcurses=disabled): plain lines on a terminal too. */
static bool screen_open(void) { return false; }
static void screen_close(void) {}
static void screen_draw(const top_state *t, uint64_t delay_ns) { (void)t, (void)delay_ns; }
static bool screen_wait(uint64_t delay_ns) { return (void)delay_ns, true; }
#endif

static void plain_wait(uint64_t delay_ns)
{
    struct timespec d = {(time_t)(delay_ns / 1000000000u), (long)(delay_ns % 1000000000u)};
    while (!stop_signal && nanosleep(&d, &d) < 0 && errno == EINTR) {
    }
}

/* One delay between two snapshots: true when the screen's keys asked to quit */
static bool wait_a_delay(const top_state *t, uint64_t delay_ns)
{
    if (t->screen)
        return screen_wait(delay_ns);
    plain_wait(delay_ns);
    return false;
}

/* ---- the command ------------------------------------------------------------------------- */

typedef struct top_options {
    const char *target;
    uint64_t delay_ns;
    unsigned long iterations; /* 0: no limit */
    bool json;
} top_options;

static int parse_top(int argc, char **argv, top_options *o, bool *help)
{
    static const struct option longs[] = {
        {"delay", required_argument, NULL, 'd'},
        {"iterations", required_argument, NULL, 'n'},
        {"once", no_argument, NULL, OPT_ONCE},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (top_options){.delay_ns = DEFAULT_DELAY_NS};
    *help = false;
    cli_parser p;
    cli_parse_begin(&p, "top", "d:n:jh", longs, argc, argv);
    const char *value;
    int option;
    while ((option = cli_next_option(&p, &value)) != -1) {
        switch (option) {
        case -2:
            return EXIT_BAD_INPUT;
        case 'h':
            *help = true;
            return cli_help(top_help);
        case 'd':
            if (!parse_duration(value, &o->delay_ns) || o->delay_ns < MIN_DELAY_NS)
                return bad_input("--delay needs a duration from 10ms to 3600s (500ms, 2s), not "
                                 "'%s'", value);
            break;
        case 'n':
            if (!parse_unsigned(value, UINT_MAX, &o->iterations) || o->iterations == 0)
                return bad_input("--iterations needs a positive integer, not '%s'", value);
            break;
        case OPT_ONCE:
            o->iterations = 1;
            break;
        default: /* 'j' */
            o->json = true;
        }
    }
    int count;
    char **args = cli_positional(&p, &count);
    if (count > 1)
        return bad_input("unexpected argument '%s': top watches one process or one engine, "
                         "or all", args[1]);
    o->target = count ? args[0] : NULL;
    return 0;
}

int command_top(int argc, char **argv)
{
    top_options o;
    bool help;
    int rc = parse_top(argc, argv, &o, &help);
    if (rc || help)
        return rc;
    top_state t = {.target = o.target, .json = o.json};
    if (o.target && strncmp(o.target, "/proc/", 6) != 0) {
        unsigned long pid;
        if (!parse_unsigned(o.target, INT_MAX, &pid) || pid == 0)
            return bad_input("top needs a process id or an engine's segment (/proc/PID/fd/N), "
                             "not '%s'", o.target);
        t.target_pid = (int)pid;
        /* the process must exist and be this user's: said before anything is drawn */
        pareng_engine_ref ref;
        if (pareng_engines_find(t.target_pid, &ref, 1) < 0) {
            cli_error("top: %s", pareng_last_error());
            return EXIT_RUN_FAILED;
        }
    }
    t.screen = !o.json && o.iterations != 1 && isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: waits end at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if ((rc = find_engines(&t)))
        return rc;
    t.screen = t.screen && screen_open();
    /* A first snapshot, one delay before the first refresh: every refresh shows the rates
     * of the delay before it, as vmstat's and top's later lines do (a refresh at once would
     * have nothing to measure them against: --once showed 0 tasks/s) */
    sample(&t);
    if (t.screen)
        screen_draw(&t, o.delay_ns);
    bool quit = wait_a_delay(&t, o.delay_ns);
    for (unsigned long n = 0; !stop_signal && !quit; n++) {
        if ((rc = find_engines(&t)))
            break;
        sample(&t);
        bool last = o.iterations && n + 1 == o.iterations;
        bool gone = t.target && t.n_engines == 0;
        if (t.json) {
            json_refresh(&t);
        } else {
            text_refresh(&t);
            if (t.screen) {
                screen_draw(&t, o.delay_ns);
            } else {
                for (unsigned k = 0; k < t.n_lines; k++)
                    puts(t.lines[k]);
                if (!last)
                    putchar('\n');
            }
        }
        if (!t.screen && (rc = finish_output()))
            break;
        if (last || gone)
            break;
        if (wait_a_delay(&t, o.delay_ns))
            break;
    }
    if (t.screen)
        screen_close();
    clear_lines(&t);
    free(t.lines);
    for (unsigned k = 0; k < t.n_engines; k++)
        forget(&t.engines[k]);
    if (stop_signal)
        return 128 + stop_signal;
    return rc ? rc : finish_output();
}
