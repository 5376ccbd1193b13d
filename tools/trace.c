/*
 * trace.c - a run's trace (pareng_trace_*) written out for `pareng run --trace` (the Chrome
 * trace event format, which Perfetto and chrome://tracing open) and `--timeline` (an SVG,
 * workers as rows, time across, a colour per state), for run and bench alike.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* The trace buffers come out of the engine's shared memory: this much more of it, taken as
 * the events fill it. */
#define TRACE_BYTES (192ull << 20)
#define DEFAULT_SHARED_BYTES (8ull << 20)

static const char *const state_colours[PARENG_STATES] = {
    "#dddddd", /* starting */
    "#2ca02c", /* running */
    "#ff7f0e", /* stealing */
    "#c6dbef", /* sleeping */
    "#9467bd", /* io */
};

void trace_configure(pareng_config *cfg)
{
    cfg->shared_bytes = (cfg->shared_bytes ? cfg->shared_bytes : DEFAULT_SHARED_BYTES) +
                        TRACE_BYTES + (1u << 20);
}

int trace_start(pareng_engine *e)
{
    size_t events = TRACE_BYTES / pareng_engine_workers(e) / sizeof(pareng_trace_event);
    if (pareng_trace_begin(e, events) < 0) {
        cli_error("cannot trace the run: %s", pareng_last_error());
        return EXIT_RUN_FAILED;
    }
    return 0;
}

/* One span of one state of a worker, clipped to the run. */
typedef void (*span_fn)(void *ctx, unsigned worker, unsigned state, uint64_t from, uint64_t to);

/* Calls each for every span of worker between began and ended, in time order; returns how
 * many events did not fit in the buffers. */
static uint64_t spans(const pareng_engine *e, unsigned worker, uint64_t began, uint64_t ended,
                      span_fn each, void *ctx)
{
    const pareng_trace_event *ev;
    size_t n;
    uint64_t dropped = 0;
    if (pareng_trace_events(e, worker, &ev, &n, &dropped) < 0)
        return 0;
    unsigned state = PARENG_STATES; /* unknown before the first event */
    uint64_t since = began;
    for (size_t k = 0; k <= n; k++) {
        bool last = k == n;
        if (!last && ev[k].kind != PARENG_TRACE_STATE)
            continue;
        uint64_t at = last ? ended : ev[k].ns;
        uint64_t from = since > began ? since : began, to = at < ended ? at : ended;
        if (state < PARENG_STATES && to > from)
            each(ctx, worker, state, from, to);
        if (!last) {
            state = ev[k].value;
            since = at;
        }
    }
    return dropped;
}

static void warn_dropped(const char *option, uint64_t dropped)
{
    if (dropped)
        cli_error("warning: %s: %llu events did not fit in the trace buffers and are missing",
                  option, (unsigned long long)dropped);
}

/* ---- the Chrome trace event format -------------------------------------------------------- */

typedef struct chrome {
    FILE *f;
    uint64_t began;
    int pid;
    bool first;
} chrome;

static void chrome_event_start(chrome *c)
{
    fputs(c->first ? "\n" : ",\n", c->f);
    c->first = false;
}

static void chrome_span(void *ctx, unsigned worker, unsigned state, uint64_t from, uint64_t to)
{
    chrome *c = ctx;
    chrome_event_start(c);
    fprintf(c->f, "{\"name\":\"%s\",\"cat\":\"state\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,"
                  "\"pid\":%d,\"tid\":%u}",
            pareng_state_name(state), (double)(from - c->began) * 1e-3,
            (double)(to - from) * 1e-3, c->pid, worker);
}

void trace_write_chrome(FILE *f, const pareng_engine *e, uint64_t began, uint64_t ended,
                        const char *title)
{
    chrome c = {.f = f, .began = began, .pid = (int)getpid(), .first = true};
    unsigned workers = pareng_engine_workers(e);
    fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", f);
    chrome_event_start(&c);
    fprintf(f, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"args\":{\"name\":", c.pid);
    json_string(f, title);
    fputs("}}", f);
    uint64_t dropped = 0;
    for (unsigned i = 0; i < workers; i++) {
        pareng_placement pl;
        pareng_plan_placement(pareng_engine_plan(e), i, &pl);
        chrome_event_start(&c);
        fprintf(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%u,\"args\":"
                   "{\"name\":\"worker %u (pid %d, PU P#%u)\"}}",
                c.pid, i, i, pareng_engine_worker_pid(e, i), pl.pu_os);
        dropped += spans(e, i, began, ended, chrome_span, &c);
        const pareng_trace_event *ev;
        size_t n;
        pareng_trace_events(e, i, &ev, &n, NULL);
        for (size_t k = 0; k < n; k++) {
            if (ev[k].kind != PARENG_TRACE_STEAL || ev[k].ns < began || ev[k].ns > ended)
                continue;
            chrome_event_start(&c);
            fprintf(f, "{\"name\":\"steal\",\"cat\":\"steal\",\"ph\":\"i\",\"s\":\"t\","
                       "\"ts\":%.3f,\"pid\":%d,\"tid\":%u,\"args\":{\"victim\":%u,"
                       "\"thief\":%u}}",
                    (double)(ev[k].ns - began) * 1e-3, c.pid, i, ev[k].value, i);
        }
    }
    fputs("\n]}\n", f);
    warn_dropped("--trace", dropped);
}

/* ---- the SVG timeline ------------------------------------------------------------------- */

#define COLUMNS 900
#define ROW_HEIGHT 22
#define LEFT 110
#define TOP 60

/* Time in each state per column of one worker's row. */
typedef struct timeline {
    uint64_t began, ended;
    double ns[COLUMNS][PARENG_STATES];
    double total[PARENG_STATES];
} timeline;

static void timeline_span(void *ctx, unsigned worker, unsigned state, uint64_t from, uint64_t to)
{
    (void)worker;
    timeline *t = ctx;
    double per_column = (double)(t->ended - t->began) / COLUMNS;
    double a = (double)(from - t->began), b = (double)(to - t->began);
    for (unsigned col = (unsigned)(a / per_column); col < COLUMNS && col * per_column < b;
         col++) {
        double lo = fmax(a, col * per_column), hi = fmin(b, (col + 1) * per_column);
        t->ns[col][state] += hi - lo;
    }
    t->total[state] += b - a;
}

/* Each column is drawn in the state its worker spent most of it in; runs of equal columns are
 * one rectangle. */
static void timeline_row(FILE *f, const timeline *t, unsigned worker)
{
    double y = TOP + worker * ROW_HEIGHT;
    int run_state = -1;
    unsigned run_start = 0;
    for (unsigned col = 0; col <= COLUMNS; col++) {
        int best = -1;
        double most = 0;
        for (unsigned s = 0; col < COLUMNS && s < PARENG_STATES; s++)
            if (t->ns[col][s] > most)
                most = t->ns[col][s], best = (int)s;
        if (best == run_state)
            continue;
        if (run_state >= 0)
            fprintf(f, "<rect x=\"%u\" y=\"%.0f\" width=\"%u\" height=\"%d\" fill=\"%s\">"
                       "<title>worker %u: %s</title></rect>\n",
                    LEFT + run_start, y, col - run_start, ROW_HEIGHT - 4,
                    state_colours[run_state], worker, pareng_state_name((unsigned)run_state));
        run_state = best;
        run_start = col;
    }
}

void trace_write_timeline(FILE *f, const pareng_engine *e, uint64_t began, uint64_t ended,
                          const char *title)
{
    unsigned workers = pareng_engine_workers(e);
    timeline *t = malloc(sizeof *t);
    if (!t) {
        cli_error("--timeline: out of memory");
        return;
    }
    if (ended <= began)
        ended = began + 1;
    double seconds = (double)(ended - began) * 1e-9;
    unsigned width = LEFT + COLUMNS + 190, height = TOP + workers * ROW_HEIGHT + 70;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" height=\"%u\" "
               "viewBox=\"0 0 %u %u\" font-family=\"sans-serif\">\n"
               "<rect width=\"%u\" height=\"%u\" fill=\"#fff\"/>\n"
               "<text x=\"%u\" y=\"24\" font-size=\"16\" text-anchor=\"middle\">",
            width, height, width, height, width, height, LEFT + COLUMNS / 2);
    svg_text(f, title);
    fprintf(f, "</text>\n<text x=\"%u\" y=\"44\" font-size=\"11\" text-anchor=\"middle\" "
               "fill=\"#555\">%u workers, %.6f s; each column in the state its worker spent "
               "most of it in</text>\n",
            LEFT + COLUMNS / 2, workers, seconds);
    uint64_t dropped = 0;
    for (unsigned i = 0; i < workers; i++) {
        memset(t, 0, sizeof *t);
        t->began = began;
        t->ended = ended;
        dropped += spans(e, i, began, ended, timeline_span, t);
        double y = TOP + i * ROW_HEIGHT;
        fprintf(f, "<g data-worker=\"%u\">\n<text x=\"%d\" y=\"%.0f\" font-size=\"12\" "
                   "text-anchor=\"end\">worker %u</text>\n",
                i, LEFT - 8, y + 13, i);
        timeline_row(f, t, i);
        double all = 0;
        for (unsigned s = 0; s < PARENG_STATES; s++)
            all += t->total[s];
        fprintf(f, "<text x=\"%d\" y=\"%.0f\" font-size=\"11\">", LEFT + COLUMNS + 8, y + 13);
        for (unsigned s = 1; s < PARENG_STATES && all > 0; s++)
            if (t->total[s] > 0)
                fprintf(f, "%s %.0f%% ", pareng_state_name(s), 100 * t->total[s] / all);
        fputs("</text>\n</g>\n", f);
    }
    free(t);
    /* the time axis, in milliseconds */
    double axis_y = TOP + workers * ROW_HEIGHT + 4, ms = seconds * 1e3;
    double step = tick_step(ms, 8, 0);
    fprintf(f, "<line x1=\"%d\" y1=\"%.0f\" x2=\"%d\" y2=\"%.0f\" stroke=\"#000\"/>\n", LEFT,
            axis_y, LEFT + COLUMNS, axis_y);
    for (double x = 0; x <= ms * (1 + 1e-9); x += step)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#000\"/>"
                   "<text x=\"%.1f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"middle\">%g"
                   "</text>\n",
                LEFT + x / ms * COLUMNS, axis_y, LEFT + x / ms * COLUMNS, axis_y + 5,
                LEFT + x / ms * COLUMNS, axis_y + 18, x);
    fprintf(f, "<text x=\"%d\" y=\"%.0f\" font-size=\"12\" text-anchor=\"middle\">ms since the "
               "run began</text>\n",
            LEFT + COLUMNS / 2, axis_y + 34);
    for (unsigned s = 1; s < PARENG_STATES; s++)
        fprintf(f, "<rect x=\"%u\" y=\"%.0f\" width=\"14\" height=\"14\" fill=\"%s\"/>"
                   "<text x=\"%u\" y=\"%.0f\" font-size=\"12\">%s</text>\n",
                LEFT + (s - 1) * 110, axis_y + 44, state_colours[s], LEFT + (s - 1) * 110 + 20,
                axis_y + 56, pareng_state_name(s));
    fputs("</svg>\n", f);
    warn_dropped("--timeline", dropped);
}
