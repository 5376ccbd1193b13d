/*
 * workloads.h - the built-in workloads of the CLI, the benchmarks and the Python module: fib
 * (CPU-bound, its IO-bound variant, and a map of independent items) and an HTTP load
 * generator. They are written over the public API of libpareng (include/pareng.h) as a user
 * would write them, and are not part of the library: this is a static library of the tree,
 * never installed, as liburing keeps its demos in examples/.
 *
 * Errors: functions return 0 or a negative errno value; workload_error() gives the message of
 * the last failure in this thread, whether the workload refused its input or the engine
 * failed under it.
 */
#ifndef PARENG_WORKLOADS_H
#define PARENG_WORKLOADS_H

#include <stddef.h>
#include <stdint.h>

#include "pareng.h"

/* Message for the last workload call that failed in this thread ("" if none). */
const char *workload_error(void);

/* ---- fib -------------------------------------------------------------------------------- */

/* Largest n whose Fibonacci number fits in 64 bits. */
#define WORKLOAD_FIB_MAX 93

/* fib(n) on the engine. grain 0: every call is written as a task and the engine's cutoff
 * (pareng_config.cutoff_depth: automatic unless configured) decides which run as serial C;
 * grain G > 0: fib's own cutoff, calls with n < G run as serial C and every call above them
 * is a task (the engine's cutoff is not used). -EINVAL for n > WORKLOAD_FIB_MAX, otherwise
 * as PARENG_RUN. */
int workload_fib(pareng_engine *engine, unsigned n, unsigned grain, uint64_t *result);
/* results[k] = fib(ns[k]) for each of count items, each item an independent task (items of
 * unequal cost are balanced by stealing); grain as for workload_fib. The arrays may be
 * anywhere in the caller's memory. -EINVAL if an n is above WORKLOAD_FIB_MAX (nothing runs). */
int workload_fib_map(pareng_engine *engine, const unsigned *ns, size_t count, unsigned grain,
                     uint64_t *results);
/* fib(n) where every leaf call (n <= 2) first waits latency_ns on an io_uring timeout: the
 * IO-bound variant of fib. Needs an engine with io_depth != 0 (-ENOTSUP otherwise). */
int workload_fib_io(pareng_engine *engine, unsigned n, uint64_t latency_ns, uint64_t *result);
/* Plain serial C fib, the baseline the engine is measured against. */
uint64_t workload_fib_serial(unsigned n);
/* fib's cost-model grain on this machine: the grain whose serial calls take about 20 us
 * (measured once per process, about 0.1 ms the first time; docs/design.md, "Granularity of
 * the fib workload"). What runtimes without an automatic cutoff get in pareng bench. */
unsigned workload_fib_model_grain(void);
/* Predicted seconds of workload_fib_serial(n) on this machine, from the measurement behind
 * the model grain (fib(n) makes about phi^n calls): tells a user that fib(93) would run for
 * centuries before it starts. */
double workload_fib_serial_seconds(unsigned n);

/* ---- uts -------------------------------------------------------------------------------- */

/* UTS, the Unbalanced Tree Search benchmark (Olivier et al., LCPC 2006): count the nodes of a
 * tree made on the fly by a splittable SHA-1 random number generator, every node a task. Its
 * trees are the same on every runtime, so the counts check a traversal exactly. */
enum workload_uts_type { WORKLOAD_UTS_BINOMIAL, WORKLOAD_UTS_GEOMETRIC };
/* How a geometric tree's expected branching factor changes with depth (UTS's -a). */
enum workload_uts_shape { WORKLOAD_UTS_LINEAR, WORKLOAD_UTS_EXPDEC, WORKLOAD_UTS_CYCLIC,
                          WORKLOAD_UTS_FIXED };

typedef struct workload_uts_tree {
    const char *name;
    int type;            /* enum workload_uts_type (UTS's -t) */
    int shape;           /* geometric: enum workload_uts_shape (-a) */
    double b0;           /* the root's children (binomial) or expected children (-b) */
    int max_depth;       /* geometric: the depth the shape is scaled to (-d) */
    double q;            /* binomial: the probability that a node has m children (-q) */
    int m;               /* binomial: children of an inner node (-m), at most 100 */
    int seed;            /* the root's seed (-r) */
    uint64_t nodes, leaves; /* the sizes UTS publishes for its sample trees (0: unknown) */
    unsigned depth;
} workload_uts_tree;

typedef struct workload_uts_count {
    uint64_t nodes, leaves, depth;
} workload_uts_count;

/* A node: the state of its random number generator (a SHA-1 digest) and its depth. */
typedef struct workload_uts_node {
    uint8_t state[20];
    uint32_t height;
} workload_uts_node;

/* UTS's sample tree of that name, case-insensitive (T1, T1L, T2, T3, T3L, T5), or NULL. */
const workload_uts_tree *workload_uts_find(const char *name);
/* Every sample tree, *count of them. */
const workload_uts_tree *workload_uts_trees(size_t *count);
/* Counts tree's nodes on the engine: every node a task, the engine's cutoff deciding which run
 * as serial C. -EINVAL for parameters out of range (nothing runs), otherwise as PARENG_RUN. */
int workload_uts(pareng_engine *engine, const workload_uts_tree *tree, workload_uts_count *out);
/* The same in plain serial C: the baseline. 0, or -EINVAL as workload_uts. */
int workload_uts_serial(const workload_uts_tree *tree, workload_uts_count *out);
/* The tree one node at a time, for other runtimes (benchmarks/hpc/uts.c): the root, a node's
 * number of children (none in a tree workload_uts refuses), and its child i. */
workload_uts_node workload_uts_root(const workload_uts_tree *tree);
unsigned workload_uts_children(const workload_uts_tree *tree, const workload_uts_node *node);
workload_uts_node workload_uts_child(const workload_uts_node *node, unsigned i);

/* ---- http ------------------------------------------------------------------------------- */

/* HTTP/1.1 GET load (the http workload, docs/cli.md): `requests` requests over `connections`
 * keep-alive connections spread over the workers. Needs an engine with io_depth != 0. */
typedef struct workload_http_config {
    const char *url;              /* http://host[:port][/path]; host a name or an IPv4/IPv6 address */
    uint64_t requests;            /* in all, >= 1 */
    unsigned connections;         /* >= 1, at most requests */
    uint64_t timeout_ns;          /* connect and per-response timeout; 0 = 5 s */
} workload_http_config;

typedef struct workload_http_result {
    uint64_t requests;            /* responses received completely */
    uint64_t errors;              /* requests that got no complete response */
    uint64_t non_2xx;             /* complete responses whose status was not 2xx */
    uint64_t bytes;               /* response bytes received, headers included */
    double seconds;               /* wall time of the whole load */
    uint64_t latency_ns[4];       /* p50, p90, p99, max of the completed requests */
    char first_error[160];        /* what the first error was ("" if none) */
} workload_http_result;

/* 0 with *out filled (errors counted in it), -EINVAL for a bad URL or counts (nothing sent),
 * -EHOSTUNREACH when the host cannot be resolved, -ENOTSUP when the engine has no IO,
 * otherwise as PARENG_RUN. The load lives in the engine's shared memory: 8 bytes per request
 * (its latency), 256 per connection and a few KiB (-ENOMEM when shared_bytes is too small; the
 * message says how much is needed). */
int workload_http_get(pareng_engine *engine, const workload_http_config *cfg,
                      workload_http_result *out);
/* What workload_http_get checks before it sends anything (the URL, the counts, resolving the
 * host), without an engine: to refuse bad input before starting one. Returns the same. */
int workload_http_check(const workload_http_config *cfg);

#endif
