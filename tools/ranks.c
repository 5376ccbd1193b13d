/*
 * ranks.c - pareng run under mpirun. It is built twice: into `pareng`, which carries the
 * engine and links no MPI (statically where the build can, for its start-up: docs/performance.md,
 * Short jobs) and, started by an MPI launcher, hands itself over to its twin before it reads
 * anything; and into that twin, `pareng-mpi` (PARENG_CLI_MPI), the same CLI linked with
 * engine/mpi.c and MPI, which starts this rank's engine. Rank 0 prints; the others print only
 * errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "pareng.h"

static unsigned n_ranks = 1, this_rank;
static pareng_rank_stats *rows;

/* What the launchers set (Open MPI's mpirun; MPICH's Hydra and srun; PMIx) */
static const char *const launch_ranks[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
static const char *const launch_sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};

/* A launcher's number, as pareng_mpi_launched reads it (strtol: a size above 1 is a job) */
static long launch_value(const char *name)
{
    const char *v = getenv(name);
    return v ? strtol(v, NULL, 10) : 0;
}

/* The launcher whose job this is, as pareng_mpi_launched finds it: its index in the tables
 * above, or -1 when none started this process */
static int launcher(void)
{
    for (int k = 0; k < 3; k++)
        if (launch_value(launch_sizes[k]) > 1)
            return k;
    return -1;
}

/* stdout as it was before quiet_stdout made it /dev/null, or -1 */
static int loud_stdout = -1;

/* stdout to /dev/null, what it was kept: 0, or EXIT_RUN_FAILED after saying why */
static int quiet_stdout(void)
{
    if (loud_stdout >= 0)
        return 0;
    fflush(stdout);
    loud_stdout = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (!freopen("/dev/null", "w", stdout)) {
        cli_error("/dev/null: %s", strerror(errno));
        return EXIT_RUN_FAILED;
    }
    return 0;
}

#ifdef PARENG_CLI_MPI

int ranks_hand_over_to_mpi(char **argv)
{
    (void)argv; /* this is the program that runs ranks */
    return 0;
}

int ranks_start(pareng_engine **e, const pareng_config *cfg)
{
    if (!pareng_mpi_launched())
        return pareng_start(e, cfg);
    int rc = pareng_mpi_start(e, cfg, NULL, NULL, PARENG_MPI_SHARE_WORK);
    if (rc < 0)
        return rc;
    this_rank = pareng_mpi_rank(*e);
    n_ranks = pareng_mpi_ranks(*e);
    /* The launcher's size must be MPI's: stray variables in a shell that no launcher started
     * (MPI starts one rank) had that rank take itself for another and print nothing, with
     * exit status 0. Every rank of a real job sees the same size, and so decides alike: none
     * waits in a collective for one that left. */
    int k = launcher(); /* one: pareng_mpi_launched() */
    if (k >= 0 && launch_value(launch_sizes[k]) != (long)n_ranks) {
        fprintf(stderr, "pareng: the environment says a job of %ld ranks (%s), but MPI "
                "started %u: unset the MPI launcher's variables, or start the job with its "
                "launcher (mpirun)\n", launch_value(launch_sizes[k]), launch_sizes[k], n_ranks);
        pareng_mpi_stop(*e);
        *e = NULL;
        return EXIT_BAD_INPUT;
    }
    /* Who prints is MPI's rank 0, whatever the variables said before MPI could; the stdout of
     * before is not kept past that (a worker forked later would hold it) */
    if (this_rank != 0 && (rc = quiet_stdout()) != 0) {
        pareng_mpi_stop(*e);
        *e = NULL;
        return rc;
    }
    if (this_rank == 0 && loud_stdout >= 0) {
        fflush(stdout);
        dup2(loud_stdout, STDOUT_FILENO);
        setvbuf(stdout, NULL, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF, BUFSIZ);
    }
    if (loud_stdout >= 0)
        close(loud_stdout);
    loud_stdout = -1;
    return 0;
}

void ranks_stop(pareng_engine *e)
{
    if (!pareng_mpi_launched()) {
        pareng_stop(e);
        return;
    }
    free(rows);
    rows = calloc(n_ranks, sizeof *rows);
    /* Collective: every rank gives its row, rank 0 keeps them all */
    if (!rows || pareng_mpi_stats(e, rows) < 0) {
        free(rows);
        rows = NULL;
    }
    pareng_mpi_stop(e);
}

#else

#define TWIN "pareng-mpi"

/* The twin is installed beside pareng (tools/ in the build tree, the bin directory, a wheel's
 * scripts): found there by path, never through PATH, which could give another version's. */
int ranks_hand_over_to_mpi(char **argv)
{
    if (!pareng_mpi_launched())
        return 0;
    char path[PATH_MAX + sizeof TWIN];
    ssize_t n = readlink("/proc/self/exe", path, PATH_MAX);
    char *slash = n > 0 && n < PATH_MAX ? memrchr(path, '/', (size_t)n) : NULL;
    if (slash) {
        memcpy(slash + 1, TWIN, sizeof TWIN);
        execv(path, argv);
    } else {
        errno = n < 0 ? errno : ENAMETOOLONG; /* a cut-off path names another directory */
    }
    cli_error("started by an MPI launcher, but %s: %s (this pareng was built without MPI? "
              "meson setup -Dmpi=enabled)", slash ? path : "/proc/self/exe", strerror(errno));
    return EXIT_RUN_FAILED;
}

int ranks_start(pareng_engine **e, const pareng_config *cfg)
{
    return pareng_start(e, cfg);
}

void ranks_stop(pareng_engine *e)
{
    pareng_stop(e);
}

#endif

int ranks_quiet_but_the_first(void)
{
    /* One answer for the job (the other ranks' results are rank 0's, or their own equal
     * ones with --serial); errors still go to stderr. What the launcher said is checked
     * against MPI's rank once MPI runs (ranks_start). */
    return ranks_launch_rank() != 0 ? quiet_stdout() : 0;
}

unsigned ranks_launch_rank(void)
{
    int k = launcher();
    long rank = k < 0 ? 0 : launch_value(launch_ranks[k]);
    return rank > 0 && rank <= INT_MAX ? (unsigned)rank : 0;
}

unsigned ranks_count(void) { return n_ranks; }
unsigned ranks_this(void) { return this_rank; }

#define RANK_FIELDS(X)                                                                        \
    X(tasks) X(tasks_sent) X(tasks_received) X(steal_requests) X(steals_refused)              \
    X(lifeline_pushes) X(messages) X(bytes)

void ranks_print_json(void)
{
    if (n_ranks < 2)
        return;
    printf(",\"ranks\":%u", n_ranks);
    if (!rows)
        return;
    printf(",\"rank_stats\":[");
    for (unsigned r = 0; r < n_ranks; r++) {
        const pareng_rank_stats *s = &rows[r];
        printf("%s{\"rank\":%u", r ? "," : "", r);
#define FIELD(f) printf(",\"" #f "\":%llu", (unsigned long long)s->f);
        RANK_FIELDS(FIELD)
#undef FIELD
        printf(",\"busy_s\":%.6f,\"idle_s\":%.6f,\"coordinator_cpu_s\":%.6f}",
               (double)s->busy_ns * 1e-9, (double)s->idle_ns * 1e-9,
               (double)s->coordinator_cpu_ns * 1e-9);
    }
    printf("]");
}

void ranks_print_table(void)
{
    if (n_ranks < 2 || !rows)
        return;
    printf("%6s", "rank");
#define HEAD(f) printf(" %15s", #f);
    RANK_FIELDS(HEAD)
#undef HEAD
    printf(" %10s %10s %10s\n", "busy s", "idle s", "coord. s");
    for (unsigned r = 0; r < n_ranks; r++) {
        const pareng_rank_stats *s = &rows[r];
        printf("%6u", r);
#define CELL(f) printf(" %15llu", (unsigned long long)s->f);
        RANK_FIELDS(CELL)
#undef CELL
        printf(" %10.6f %10.6f %10.6f\n", (double)s->busy_ns * 1e-9, (double)s->idle_ns * 1e-9,
               (double)s->coordinator_cpu_ns * 1e-9);
    }
}
