/*
 * ranks.c - pareng run under mpirun: this rank's engine from libpareng-run-mpi (libpareng-mpi
 * built as a module over the engine this program carries), which is loaded (dlopen) only when
 * an MPI launcher started the process, so that every other run maps no MPI library and starts
 * as fast as before. Rank 0 prints; the others print only errors.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "pareng.h"

#define MODULE "libpareng-run-mpi.so"

static struct {
    int (*start)(pareng_engine **, const pareng_config *, int *, char ***, unsigned);
    unsigned (*rank)(const pareng_engine *);
    unsigned (*ranks)(const pareng_engine *);
    int (*stats)(pareng_engine *, pareng_rank_stats *);
    void (*stop)(pareng_engine *);
} mpi;
static unsigned n_ranks = 1, this_rank;
static pareng_rank_stats *rows;

/* dir/MODULE, if there is such a file and it loads */
static void *open_in(const char *dir, size_t len)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%.*s/" MODULE, (int)len, dir);
    return access(path, F_OK) == 0 ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
}

/* The module where the dynamic linker would have found it through a run path: first in
 * LD_LIBRARY_PATH, then in this pareng's build tree (tools/pareng beside engine/), then where
 * it was installed, then wherever the linker looks. Found by path, not by the program's run
 * path: that would make the loader search it for every library of every start (60 failed
 * opens here, for libc and libm), MPI or not. */
static void *open_module(void)
{
    void *lib = NULL;
    for (const char *dir = getenv("LD_LIBRARY_PATH"); dir && *dir && !lib;) {
        size_t len = strcspn(dir, ":;");
        lib = len ? open_in(dir, len) : NULL;
        dir += len + (dir[len] != 0);
    }
    char self[PATH_MAX];
    ssize_t n = lib ? 0 : readlink("/proc/self/exe", self, sizeof self - 1);
    char *slash = n > 0 ? memrchr(self, '/', (size_t)n) : NULL;
    if (slash) {
        snprintf(slash, sizeof self - (size_t)(slash - self), "/../engine");
        lib = open_in(self, strlen(self));
    }
    if (!lib)
        lib = open_in(PARENG_MODULE_DIR, strlen(PARENG_MODULE_DIR));
    return lib ? lib : dlopen(MODULE, RTLD_NOW | RTLD_LOCAL);
}

static bool load_mpi(void)
{
    void *lib = open_module();
    if (!lib) {
        cli_error("started by an MPI launcher, but libpareng-run-mpi cannot be loaded (%s): "
                  "this pareng was built without MPI (meson setup -Dmpi=enabled)", dlerror());
        return false;
    }
    *(void **)&mpi.start = dlsym(lib, "pareng_mpi_start");
    *(void **)&mpi.rank = dlsym(lib, "pareng_mpi_rank");
    *(void **)&mpi.ranks = dlsym(lib, "pareng_mpi_ranks");
    *(void **)&mpi.stats = dlsym(lib, "pareng_mpi_stats");
    *(void **)&mpi.stop = dlsym(lib, "pareng_mpi_stop");
    if (!mpi.start || !mpi.rank || !mpi.ranks || !mpi.stats || !mpi.stop) {
        cli_error("libpareng-run-mpi lacks pareng_mpi_*: another version than this pareng's");
        return false;
    }
    return true;
}

int ranks_start(pareng_engine **e, const pareng_config *cfg)
{
    if (!pareng_mpi_launched())
        return pareng_start(e, cfg);
    if (!load_mpi())
        return EXIT_RUN_FAILED;
    int rc = mpi.start(e, cfg, NULL, NULL, PARENG_MPI_SHARE_WORK);
    if (rc < 0)
        return rc;
    this_rank = mpi.rank(*e);
    n_ranks = mpi.ranks(*e);
    return 0;
}

int ranks_quiet_but_the_first(void)
{
    /* One answer for the job (the other ranks' results are rank 0's, or their own equal
     * ones with --serial); errors still go to stderr. */
    if (ranks_launch_rank() != 0 && !freopen("/dev/null", "w", stdout)) {
        cli_error("/dev/null: %s", strerror(errno));
        return EXIT_RUN_FAILED;
    }
    return 0;
}

void ranks_stop(pareng_engine *e)
{
    if (!mpi.stop) {
        pareng_stop(e);
        return;
    }
    free(rows);
    rows = calloc(n_ranks, sizeof *rows);
    /* Collective: every rank gives its row, rank 0 keeps them all */
    if (!rows || mpi.stats(e, rows) < 0) {
        free(rows);
        rows = NULL;
    }
    mpi.stop(e);
}

unsigned ranks_launch_rank(void)
{
    if (!pareng_mpi_launched())
        return 0;
    static const char *const ranks[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
    for (size_t k = 0; k < sizeof ranks / sizeof ranks[0]; k++) {
        const char *v = getenv(ranks[k]);
        if (v)
            return (unsigned)strtoul(v, NULL, 10);
    }
    return 0;
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
