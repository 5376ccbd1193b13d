/*
 * mpi_trees.c - collective runs through libpareng-mpi, as a library user makes them: one
 * engine per rank from pareng_mpi_start(PARENG_MPI_SHARE_WORK), then several runs in a row
 * (fib, a small T1-shaped and a small T3-shaped UTS tree, and a root task of pointers, which
 * every rank runs on its own items), each checked on every rank against the serial answer,
 * and the rank table of pareng_mpi_stats checked on rank 0. Run under mpirun by tests/mpi_jobs.py; usage:
 * mpi_trees WORKERS. Exit status 0 when every rank got every answer right, 1 otherwise (one
 * line per wrong answer on stderr, naming the rank), 2 for a bad argument.
 */
#include "pareng.h"
#include "workloads.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned rank, failures;

static void check(int ok, const char *what, uint64_t got, uint64_t want)
{
    if (ok)
        return;
    failures++;
    fprintf(stderr, "mpi_trees: rank %u: %s: %" PRIu64 ", expected %" PRIu64 "\n", rank, what,
            got, want);
}

static void check_rc(int rc, const char *what)
{
    if (rc == 0)
        return;
    failures++;
    fprintf(stderr, "mpi_trees: rank %u: %s failed: %s\n", rank, what, pareng_last_error());
}

/* Small trees of both UTS shapes, about 65,000 nodes each: T1's (geometric, fixed branching:
 * wide and 7 deep) and T3's (binomial, near critical: 200 children under the root, then
 * chains 208 deep). */
static const workload_uts_tree small_trees[] = {
    {.name = "T1-shaped", .type = WORKLOAD_UTS_GEOMETRIC, .shape = WORKLOAD_UTS_FIXED,
     .b0 = 4, .max_depth = 7, .seed = 19},
    {.name = "T3-shaped", .type = WORKLOAD_UTS_BINOMIAL, .b0 = 200, .q = 0.124875, .m = 8,
     .seed = 3},
};

PARENG_TASK_1(uint64_t, fib, unsigned, n)
{
    if (n < 2)
        return n;
    PARENG_SPAWN(fib, n - 1);
    uint64_t b = PARENG_CALL(fib, n - 2);
    return PARENG_SYNC(fib) + b;
}
PARENG_TASK_CROSSES_RANKS(fib)

/* A task that takes a pointer never leaves its rank (the pointer means nothing elsewhere),
 * and a run whose root it is is every rank's own. The sum of fib(ns[k]) over [begin, end). */
PARENG_TASK_3(uint64_t, sum_fibs, const unsigned *, ns, size_t, begin, size_t, end)
{
    if (end - begin == 1)
        return PARENG_CALL(fib, ns[begin]);
    size_t middle = begin + (end - begin) / 2;
    PARENG_SPAWN(sum_fibs, ns, begin, middle);
    uint64_t right = PARENG_CALL(sum_fibs, ns, middle, end);
    return PARENG_SYNC(sum_fibs) + right;
}

static void runs(pareng_engine *e)
{
    /* Rank 0's arguments start the tree: the others pass nonsense and must get its answer */
    uint64_t got = 0;
    check_rc(PARENG_RUN(e, fib, &got, rank == 0 ? 30u : rank), "PARENG_RUN(fib)");
    check(got == workload_fib_serial(30), "fib(30), every rank's own argument but rank 0's "
          "ignored", got, workload_fib_serial(30));

    for (unsigned n = 24; n <= 32; n += 4) {
        got = 0;
        check_rc(workload_fib(e, n, 0, &got), "workload_fib");
        check(got == workload_fib_serial(n), "workload_fib", got, workload_fib_serial(n));
    }

    for (size_t k = 0; k < sizeof small_trees / sizeof small_trees[0]; k++) {
        const workload_uts_tree *tree = &small_trees[k];
        workload_uts_count want, count = {0};
        if (workload_uts_serial(tree, &want) < 0) {
            check_rc(-1, "workload_uts_serial");
            continue;
        }
        check_rc(workload_uts(e, tree, &count), tree->name);
        char what[80];
        snprintf(what, sizeof what, "%s nodes", tree->name);
        check(count.nodes == want.nodes, what, count.nodes, want.nodes);
        snprintf(what, sizeof what, "%s leaves", tree->name);
        check(count.leaves == want.leaves, what, count.leaves, want.leaves);
        snprintf(what, sizeof what, "%s depth", tree->name);
        check(count.depth == want.depth, what, count.depth, want.depth);
        if (rank == 0)
            printf("%s: %" PRIu64 " nodes, %" PRIu64 " leaves, depth %" PRIu64 "\n", tree->name,
                   want.nodes, want.leaves, want.depth);
    }

    /* Each rank's own items, different on each, in its own engine's memory: the run is not
     * shared, and each rank gets the sum of its own */
    static const unsigned items[] = {25, 22, 27, 20, 26, 24};
    const size_t n_items = sizeof items / sizeof items[0];
    unsigned *ns = pareng_alloc(e, sizeof items);
    if (!ns) {
        check_rc(-1, "pareng_alloc");
        return;
    }
    uint64_t want = 0;
    for (size_t k = 0; k < n_items; k++) {
        ns[k] = items[k] + rank % 4;
        want += workload_fib_serial(ns[k]);
    }
    got = 0;
    check_rc(PARENG_RUN(e, sum_fibs, &got, ns, (size_t)0, n_items), "PARENG_RUN(sum_fibs)");
    check(got == want, "this rank's own sum of fibs under a root task of pointers", got, want);
    pareng_free(e, ns);
}

/* On rank 0: one row per rank, and every frame one rank sent another received. */
static void check_stats(pareng_engine *e, unsigned ranks)
{
    pareng_rank_stats *rows = calloc(ranks, sizeof *rows);
    if (!rows) {
        check_rc(-1, "calloc");
        return;
    }
    check_rc(pareng_mpi_stats(e, rows), "pareng_mpi_stats");
    if (rank == 0) {
        uint64_t sent = 0, received = 0, tasks = 0;
        for (unsigned r = 0; r < ranks; r++) {
            sent += rows[r].tasks_sent;
            received += rows[r].tasks_received;
            tasks += rows[r].tasks;
        }
        /* Rank 0 ends each run that crossed ranks with a stop to every other rank (fib's
         * first, at least); another rank sends only when it went hungry before the stop came,
         * which a short run on a loaded machine may not give it. */
        check(ranks == 1 || rows[0].messages >= ranks - 1, "messages of rank 0",
              rows[0].messages, ranks - 1);
        check(sent == received, "frames received by all ranks", received, sent);
        check(tasks > 0, "tasks run by all ranks", tasks, 1);
        printf("%u ranks: %" PRIu64 " tasks, %" PRIu64 " crossed ranks\n", ranks, tasks, sent);
    }
    free(rows);
}

int main(int argc, char **argv)
{
    char *end = NULL;
    unsigned long workers = argc == 2 ? strtoul(argv[1], &end, 10) : 0;
    if (!end || *end || workers < 1 || workers > 64) {
        fprintf(stderr, "usage: mpi_trees WORKERS (1 to 64), run under mpirun\n");
        return 2;
    }
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = (unsigned)workers;
    pareng_engine *e;
    if (pareng_mpi_start(&e, &cfg, &argc, &argv, PARENG_MPI_SHARE_WORK) < 0) {
        fprintf(stderr, "mpi_trees: pareng_mpi_start: %s\n", pareng_last_error());
        return 1;
    }
    rank = pareng_mpi_rank(e);
    unsigned ranks = pareng_mpi_ranks(e);

    /* One MPI engine per process: a second start is refused and leaves the first alone */
    pareng_engine *second = e;
    int rc = pareng_mpi_start(&second, &cfg, NULL, NULL, PARENG_MPI_SHARE_WORK);
    check(rc == -EBUSY && !second, "a second pareng_mpi_start", (uint64_t)-rc, EBUSY);

    runs(e);
    check_stats(e, ranks);
    pareng_mpi_stop(e);
    if (rank == 0 && !failures)
        printf("every answer right on %u ranks of %lu workers\n", ranks, workers);
    return failures ? 1 : 0;
}
