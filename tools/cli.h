/*
 * cli.h - what the commands of the pareng CLI share (tools/cli.c): exit statuses, messages
 * (every one that echoes a user's text goes through cli_error, which escapes control
 * characters), option parsing over getopt_long, the engine configuration from the environment
 * and the options, JSON strings, and the commands themselves.
 */
#ifndef PARENG_CLI_H
#define PARENG_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "pareng.h"

#define EXIT_RUN_FAILED 1
#define EXIT_BAD_INPUT 2

/* ---- messages --------------------------------------------------------------------------- */

/* text with its control characters escaped as C writes them (\n, \t, \r, \x1b, \x7f...), so
 * that a user's argument cannot move the cursor, clear the terminal or forge a second line;
 * written to f. Bytes from 0x80 up are left alone (UTF-8 names stay readable). */
void cli_escape(FILE *f, const char *text);
/* "pareng: MESSAGE\n" on stderr, the message escaped (cli_escape). Every message of the CLI
 * that may hold a user's text or a library's message (pareng_last_error(), workload_error(),
 * which may quote the user) is printed through it. */
__attribute__((format(printf, 1, 2))) void cli_error(const char *fmt, ...);
/* "pareng: MESSAGE (try 'pareng COMMAND --help')" on stderr, escaped; returns EXIT_BAD_INPUT.
 * The command is the one cli_parse_begin named last (none before). */
__attribute__((format(printf, 1, 2))) int bad_input(const char *fmt, ...);
/* Flushes stdout: 0, or EXIT_RUN_FAILED after saying it could not be written. */
int finish_output(void);

/* ---- parsing ---------------------------------------------------------------------------- */

/* A whole non-negative decimal number up to max, nothing before or after; false otherwise. */
bool parse_unsigned(const char *s, unsigned long max, unsigned long *out);
/* The longest --io-latency and --timeout: beyond it a typo is likelier than a wish. */
#define DURATION_MAX_NS 3600000000000ull
/* A duration: a whole number and a unit, ns, us, ms or s ("500us"), from 1 ns to
 * DURATION_MAX_NS; false otherwise. */
bool parse_duration(const char *s, uint64_t *ns);

/* Options of one command, parsed with getopt_long: short options, --name VALUE and
 * --name=VALUE, unambiguous abbreviations of long names, options after the arguments (GNU
 * permutation) and `--` to end them. */
typedef struct cli_parser {
    const char *command;          /* "run", for messages */
    const char *shorts;           /* getopt's short options ("c:jsh") */
    const struct option *longs;   /* ends with a zeroed entry */
    int argc;
    char **argv;                  /* argv[0] is the command's name */
    char optstring[64];
    int n_positional;             /* the arguments so far, moved to argv[1...] */
} cli_parser;

/* Starts parsing argv (argv[0] the command) for `command`. */
void cli_parse_begin(cli_parser *p, const char *command, const char *shorts,
                     const struct option *longs, int argc, char **argv);
/* The next option's val (its short letter, or the long option's val) with its value in
 * *value (NULL for a flag); -1 when the options are over (cli_positional gives the
 * arguments); -2 after saying why the option is refused (unknown, ambiguous, a value missing
 * or given to a flag): the command returns EXIT_BAD_INPUT. */
int cli_next_option(cli_parser *p, const char **value);
/* The arguments (not options), in order, once cli_next_option returned -1: *count of
 * them, in argv (as long as it lives). */
char **cli_positional(const cli_parser *p, int *count);
/* Prints text (a command's --help) on stdout; returns finish_output(). */
int cli_help(const char *text);

/* ---- the engine's configuration ------------------------------------------------------ */

/* pareng_config_default: the defaults and the PARENG_* environment. 0, or EXIT_BAD_INPUT
 * after printing the library's message, which names the malformed variable. */
int cli_config_default(pareng_config *cfg);
/* --cores TEXT (auto, a count or a CPU list, parsed by the library) into cfg; 0, or
 * EXIT_BAD_INPUT after saying why. */
int cli_set_cores(pareng_config *cfg, const char *cores);
/* --cutoff TEXT (auto, none or a depth, parsed by the library) into cfg; 0, or
 * EXIT_BAD_INPUT after saying why. */
int cli_set_cutoff(pareng_config *cfg, const char *cutoff);
/* --grain TEXT (fib's own: auto, 0, or a number of calls) into *grain (auto: 0); 0, or
 * EXIT_BAD_INPUT after saying why. */
int cli_parse_grain(const char *text, unsigned *grain);
/* What chose the workers of cfg, for messages about the placement: "--cores" when the option
 * was given, else the PARENG_* variable that did, else NULL (auto). */
const char *cli_cores_source(bool cores_given);
/* The cutoff as the output names it: "auto", "none" or the depth. */
void cli_describe_cutoff(unsigned cutoff_depth, char *out, size_t size);

/* ^C and SIGTERM cancel the run in progress (pareng_cancel_on_signal); a command calls this
 * once, before its first engine starts, and ends with cli_interrupted_status(). */
void cli_catch_signals(void);
/* 128 + the signal that interrupted the command, or 0. */
int cli_interrupted_status(void);

/* ---- output ---------------------------------------------------------------------------- */

/* text as a JSON string on f: quotes, backslashes and control characters escaped, bytes that
 * are not UTF-8 replaced by U+FFFD (a CPU model or a host name may hold anything). The one
 * JSON string writer of the tools. */
void json_string(FILE *f, const char *text);

/* "2 packages, 16 cores, 32 PUs" on f: the objects hwloc shows, a kind the topology has none
 * of (a synthetic one may lack packages or cores) left out */
void cli_print_machine_counts(FILE *f, unsigned packages, unsigned cores, unsigned pus);

/* The counters of pareng_stats as --stats shows them (busy and idle time apart) */
#define STAT_FIELDS(X)                                                                        \
    X(tasks) X(spawns) X(steals) X(steal_fails) X(leapfrogs) X(stolen_from) X(shares)         \
    X(overflows) X(sleeps) X(near_steals) X(serial_runs) X(splits)
/* shown for IO engines only: CPU engines have none */
#define IO_STAT_FIELDS(X) X(io_ops) X(io_peak) X(io_suspends)
/* "tasks":N,...,"busy_seconds":S,"idle_seconds":S (the IO fields when io) on f */
void json_stats_fields(FILE *f, const pareng_stats *s, bool io);

/* ---- output files ---------------------------------------------------------------------- */

/* A file an option names (--plot FILE, --trace FILE, ...); path "-" is stdout. */
typedef struct output_file {
    const char *option, *path;
    FILE *f;
    int pending; /* its entry among the files not yet written whole, + 1 (cli.c) */
} output_file;

bool is_stdout(const char *path);
/* Opens every file of files that has a path, before anything runs: 0, or EXIT_RUN_FAILED
 * after saying which cannot be written (those opened are closed again). A regular file that
 * exists is written beside it and renamed over it when closed; one that did not exist is
 * removed unless it was written whole; either way at the latest when the program exits. */
int open_outputs(output_file *files, size_t n);
/* Closes one (not stdout): in place when it was written, or left as it was (or not there) when
 * nothing was: 0, or EXIT_RUN_FAILED after saying it could not be written. */
int close_output(output_file *file);
/* text inside an SVG element, XML-escaped, control characters left out */
void svg_text(FILE *f, const char *s);

/* A tick step of 1, 2 or 5 times a power of ten giving at most max_ticks ticks over range
 * (at least `least`); positive and finite whatever the range, 1 for an empty one */
double tick_step(double range, unsigned max_ticks, double least);

/* A plot against workers or a time (bench --plot, run --scale --plot): the plotting area
 * inside the picture, the axes' ranges and names. */
typedef struct plot_area {
    double left, top, width, height; /* pixels */
    double x_min, x_max, y_max;      /* workers (or log10 of milliseconds), speedup or ratio */
    bool log_x;                      /* x is a decade exponent: ticks at 10^k */
    const char *x_label, *y_label;
} plot_area;
double plot_x(const plot_area *p, double x);
double plot_y(const plot_area *p, double speedup);
/* Whether (x, y) lands at finite coordinates: a figure that is no number or infinite (a peer
 * that reports 0 s) has no place on the plot, and an SVG reader refuses "nan" and "inf". */
bool plottable(const plot_area *p, double x, double y);
/* The axes, their ticks and labels */
void plot_axes(FILE *f, const plot_area *p);
/* Entry k of the legend, right of the plot: a line sample and its name. */
void legend_entry(FILE *f, const plot_area *p, unsigned k, const char *colour, const char *dash,
                  const char *label);

/* ---- traces (tools/trace.c): --trace and --timeline ------------------------------------- */

/* Room in cfg's shared memory for the trace buffers (before pareng_start). */
void trace_configure(pareng_config *cfg);
/* Starts recording e's events: 0, or EXIT_RUN_FAILED after saying why. */
int trace_start(pareng_engine *e);
/* What was recorded between began_ns and ended_ns (CLOCK_MONOTONIC), as the Chrome trace event
 * format (JSON) or as an SVG timeline; title names the run. */
void trace_write_chrome(FILE *f, const pareng_engine *e, uint64_t began_ns, uint64_t ended_ns,
                        const char *title);
void trace_write_timeline(FILE *f, const pareng_engine *e, uint64_t began_ns, uint64_t ended_ns,
                          const char *title);

/* ---- commands ------------------------------------------------------------------------- */

/* argv[0] is the command's name: "run", "map", ... */
/* ---- ranks.c: pareng run under mpirun ---- */
/* Started by an MPI launcher, pareng run and map replace themselves by pareng-mpi, the twin
 * that links MPI, with the same arguments: returns 0 where there is nothing to hand over (no
 * launcher, or this is the twin), or an exit status after saying why it could not. */
int ranks_hand_over_to_mpi(char **argv);
/* pareng_start, or this rank's engine when an MPI launcher started the process: 0, -errno
 * (pareng_last_error says why), or an exit status after saying why itself. */
int ranks_start(pareng_engine **e, const pareng_config *cfg);
/* Under an MPI launcher, every rank but 0 writes nothing on stdout: 0, or an exit status. */
int ranks_quiet_but_the_first(void);
/* pareng_stop, or (MPI) gather each rank's figures at rank 0, stop, finalize MPI. */
void ranks_stop(pareng_engine *e);
unsigned ranks_count(void); /* 1 without MPI */
/* The rank the launcher gave this process, known before the engine starts (0 without one). */
unsigned ranks_launch_rank(void);
unsigned ranks_this(void);
/* With several ranks: their rows, as JSON members or as a table (rank 0). */
void ranks_print_json(void);
void ranks_print_table(void);

int command_run(int argc, char **argv);   /* pareng run fib N | run http URL (tools/run.c) */
int command_map(int argc, char **argv);   /* pareng map fib N... (tools/run.c) */
int command_topo(int argc, char **argv);  /* pareng topo (tools/topo.c) */
int command_bench(int argc, char **argv); /* pareng bench fib N | bench spawn (tools/bench.c) */
int command_top(int argc, char **argv);   /* pareng top [PID] (tools/top.c) */

#endif
