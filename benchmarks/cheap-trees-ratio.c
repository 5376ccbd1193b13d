/*
 * cheap-trees-ratio - trees whose nodes cost next to nothing and spawn their children in a
 * loop, as a user writes them, against the same trees as plain serial C in this file (same
 * compiler, same flags): UTS's binomial shape with one splitmix64 round a node instead of a
 * SHA-1 (the root has 2,000 children, every other node 8 with probability 0.124875, so that
 * most subtrees are leaves and one spine holds most of the tree), or a complete binary tree
 * whose two children come from a loop. The automatic cutoff, every spawn a task and a fixed
 * cutoff of 4, on 1 and 2 workers; each run on a fresh engine, so that what the automatic
 * cutoff learns is part of its time; medians of alternating runs (docs/performance.md,
 * "short calls weighed against every spawn a task").
 *
 *   build/benchmarks/cheap-trees-ratio [binomial SEED | binary DEPTH] [runs]
 */
#include <pareng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timing.h"

#define MAX_RUNS 100
#define ROOT_CHILDREN 2000u
#define CHILDREN 8u

/* A node's number below 2^64 * 0.124875 gives it children. */
static const uint64_t HAS_CHILDREN = (uint64_t)(0.124875 * 18446744073709551616.0);

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static unsigned binomial_children(uint64_t node, int root)
{
    return root ? ROOT_CHILDREN : mix(node) < HAS_CHILDREN ? CHILDREN : 0;
}

/* The number of nodes of the subtree. */
static uint64_t binomial_plain(uint64_t node, int root)
{
    unsigned children = binomial_children(node, root);
    uint64_t nodes = 1;
    for (unsigned i = 0; i < children; i++)
        nodes += binomial_plain(mix(node + i + 1), 0);
    return nodes;
}

PARENG_TASK_2(uint64_t, binomial, uint64_t, node, int, root)
{
    unsigned children = binomial_children(node, root);
    for (unsigned i = 0; i < children; i++)
        PARENG_SPAWN(binomial, mix(node + i + 1), 0);
    uint64_t nodes = 1;
    for (unsigned i = 0; i < children; i++)
        nodes += PARENG_SYNC(binomial);
    return nodes;
}

/* The number of leaves whose number is odd. */
static uint64_t binary_plain(uint64_t node, unsigned depth)
{
    if (depth == 0)
        return mix(node) & 1;
    uint64_t odd = 0;
    for (unsigned i = 0; i < 2; i++)
        odd += binary_plain(mix(node + i), depth - 1);
    return odd;
}

PARENG_TASK_2(uint64_t, binary, uint64_t, node, unsigned, depth)
{
    if (depth == 0)
        return mix(node) & 1;
    for (unsigned i = 0; i < 2; i++)
        PARENG_SPAWN(binary, mix(node + i), depth - 1);
    uint64_t odd = 0;
    for (unsigned i = 0; i < 2; i++)
        odd += PARENG_SYNC(binary);
    return odd;
}

static const struct {
    const char *name;
    unsigned workers, cutoff;
} configs[] = {
    {"automatic cutoff, 1 worker", 1, PARENG_CUTOFF_AUTO},
    {"every spawn a task, 1 worker", 1, PARENG_CUTOFF_NONE},
    {"cutoff 4, 1 worker", 1, 4},
    {"automatic cutoff, 2 workers", 2, PARENG_CUTOFF_AUTO},
    {"every spawn a task, 2 workers", 2, PARENG_CUTOFF_NONE},
    {"cutoff 4, 2 workers", 2, 4},
};
#define CONFIGS (sizeof configs / sizeof configs[0])

/* One run of the tree on a fresh engine of configuration c: its seconds, or < 0. */
static double run_once(size_t c, int binomial_tree, uint64_t arg, uint64_t *got)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = configs[c].workers;
    cfg.cutoff_depth = configs[c].cutoff;
    pareng_engine *e;
    if (pareng_start(&e, &cfg) < 0)
        return -1;
    double t0 = bench_seconds();
    int rc = binomial_tree ? PARENG_RUN(e, binomial, got, arg, 1)
                           : PARENG_RUN(e, binary, got, 1, (unsigned)arg);
    double took = bench_seconds() - t0;
    pareng_stop(e);
    return rc < 0 ? -1 : took;
}

int main(int argc, char **argv)
{
    int binomial_tree = argc < 2 || strcmp(argv[1], "binary") != 0;
    uint64_t arg = argc > 2 ? strtoull(argv[2], NULL, 10) : binomial_tree ? 910685 : 24;
    int runs = argc > 3 ? atoi(argv[3]) : 7;
    if ((argc > 1 && strcmp(argv[1], "binomial") != 0 && binomial_tree) ||
        (!binomial_tree && (arg < 1 || arg > 30)) || runs < 1 || runs > MAX_RUNS) {
        fprintf(stderr, "usage: cheap-trees-ratio [binomial SEED | binary DEPTH (1..30)] "
                        "[runs (1..%d)]\n", MAX_RUNS);
        return 2;
    }
    static double t[CONFIGS + 1][MAX_RUNS];
    uint64_t expected = 0;
    for (int r = 0; r < runs; r++) {
        double t0 = bench_seconds();
        expected = binomial_tree ? binomial_plain(arg, 1) : binary_plain(1, (unsigned)arg);
        t[0][r] = bench_seconds() - t0;
        for (size_t c = 0; c < CONFIGS; c++) {
            uint64_t got = 0;
            t[c + 1][r] = run_once(c, binomial_tree, arg, &got);
            if (t[c + 1][r] < 0) {
                fprintf(stderr, "cheap-trees-ratio: %s\n", pareng_last_error());
                return 1;
            }
            if (got != expected) {
                fprintf(stderr, "cheap-trees-ratio: %s: %llu, not %llu\n", configs[c].name,
                        (unsigned long long)got, (unsigned long long)expected);
                return 1;
            }
        }
    }
    printf("%s %llu (%llu %s), %d alternating runs, medians\n",
           binomial_tree ? "binomial tree, seed" : "binary tree, depth", (unsigned long long)arg,
           (unsigned long long)expected, binomial_tree ? "nodes" : "odd leaves", runs);
    printf("%-32s %10s %9s\n", "configuration", "median s", "/ serial");
    double serial = bench_median(t[0], runs);
    printf("%-32s %10.4f %9.3f\n", "plain serial C", serial, 1.0);
    for (size_t c = 0; c < CONFIGS; c++) {
        double median = bench_median(t[c + 1], runs);
        printf("%-32s %10.4f %9.3f\n", configs[c].name, median, median / serial);
    }
    return 0;
}
