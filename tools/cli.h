/*
 * cli.h - what the commands of the pareng CLI share (pareng.c, topo.c): exit statuses and the
 * option, --cores and output helpers of tools/pareng.c.
 */
#ifndef PARENG_CLI_H
#define PARENG_CLI_H

#include <stdbool.h>

#include "pareng.h"

#define EXIT_RUN_FAILED 1
#define EXIT_BAD_INPUT 2

/* "pareng: MESSAGE (try 'pareng --help')" on stderr; returns EXIT_BAD_INPUT. */
__attribute__((format(printf, 1, 2))) int bad_input(const char *fmt, ...);
/* --name VALUE or --name=VALUE at argv[*i]; returns the value or NULL (with *missing set). */
const char *option_value(int argc, char **argv, int *i, const char *name, bool *missing);
/* A whole non-negative decimal number up to max, nothing before or after; false otherwise. */
bool parse_unsigned(const char *s, unsigned long max, unsigned long *out);
/* --cores auto|K|LIST into cfg; 0, or EXIT_BAD_INPUT after saying why. */
int configure_cores(const char *cores, pareng_config *cfg);
/* Flushes stdout: 0, or EXIT_RUN_FAILED after saying it could not be written. */
int finish_output(void);

/* pareng topo [--cores auto|K|LIST] [--topology FILE.xml] [--json] (tools/topo.c) */
int command_topo(int argc, char **argv);
/* pareng bench fib N [...] | pareng bench spawn [--runs R] (tools/bench.c) */
int command_bench(int argc, char **argv);

#endif
