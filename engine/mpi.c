/*
 * mpi.c - libpareng-mpi: an engine per rank of an MPI job (pareng_mpi_start, _stats, _stop)
 * and the transport that carries remote.c's messages over MPI. The only file that includes
 * mpi.h; libpareng itself never links MPI.
 *
 * Order is what matters: the workers are forked (pareng_start) before MPI_Init_thread, so no
 * worker ever holds MPI state and no process forks after MPI is up (which RDMA networks do
 * not survive). Only the coordinator calls MPI, from the thread that started the engine:
 * MPI_THREAD_FUNNELED. The messages travel on a duplicate of MPI_COMM_WORLD, so they never
 * meet the program's own, and every send is non-blocking: the coordinator never waits on a
 * peer while its workers may need it.
 */
#include "internal.h"

#include <errno.h>
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TAG 0x7061 /* "pa" */

typedef struct pending_send {
    MPI_Request request;
    pareng__glb_msg msg;
} pending_send;

/* The one MPI engine of this process. */
static struct {
    pareng_engine *engine;
    MPI_Comm comm;
    int rank, ranks;
    bool share_work;
    bool initialized; /* MPI_Init_thread was ours */
    MPI_Request receive;
    pareng__glb_msg received;
    pending_send *sends;
    size_t n_sends;
} job = {.comm = MPI_COMM_NULL, .receive = MPI_REQUEST_NULL};

/* Frees the slots of sends that completed. */
static void reap_sends(void)
{
    size_t kept = 0;
    for (size_t k = 0; k < job.n_sends; k++) {
        int done = 0;
        MPI_Test(&job.sends[k].request, &done, MPI_STATUS_IGNORE);
        if (!done)
            job.sends[kept++] = job.sends[k];
    }
    job.n_sends = kept;
}

static int mpi_send(void *ctx, unsigned to, const pareng__glb_msg *m)
{
    (void)ctx;
    reap_sends();
    pending_send *grown = realloc(job.sends, (job.n_sends + 1) * sizeof *grown);
    if (!grown)
        return pareng__fail(ENOMEM, "out of memory");
    job.sends = grown;
    pending_send *s = &job.sends[job.n_sends];
    s->msg = *m;
    if (MPI_Isend(&s->msg, sizeof s->msg, MPI_BYTE, (int)to, TAG, job.comm, &s->request) !=
        MPI_SUCCESS)
        return pareng__fail(EIO, "MPI_Isend to rank %u failed", to);
    job.n_sends++;
    return 0;
}

static int post_receive(void)
{
    if (MPI_Irecv(&job.received, sizeof job.received, MPI_BYTE, MPI_ANY_SOURCE, TAG, job.comm,
                  &job.receive) != MPI_SUCCESS)
        return pareng__fail(EIO, "MPI_Irecv failed");
    return 0;
}

static int mpi_poll(void *ctx, pareng__glb_msg *m)
{
    (void)ctx;
    int arrived = 0;
    MPI_Status status;
    if (MPI_Test(&job.receive, &arrived, &status) != MPI_SUCCESS)
        return pareng__fail(EIO, "MPI_Test failed");
    if (!arrived)
        return 0;
    int count = 0;
    MPI_Get_count(&status, MPI_BYTE, &count);
    *m = job.received;
    int rc = post_receive();
    if (rc < 0)
        return rc;
    /* The sender's rank is MPI's word, not the message's */
    if (count != (int)sizeof *m || (int)m->from != status.MPI_SOURCE)
        return pareng__fail(EPROTO, "a malformed message from rank %d", status.MPI_SOURCE);
    return 1;
}

/* Under Open MPI's mpirun, unless its user told it to let a job go on when a rank fails. */
static bool open_mpi_ends_the_job_on_failure(void)
{
    const char *policy = getenv("OMPI_MCA_orte_abort_on_non_zero_status");
    return getenv("OMPI_COMM_WORLD_SIZE") && !(policy && strcmp(policy, "0") == 0);
}

static void mpi_abort(void *ctx, const char *message)
{
    (void)ctx;
    fprintf(stderr, "pareng: rank %d of %d: %s; ending the job\n", job.rank, job.ranks,
            message);
    /* The workers are gone already (engine.c ends them when a run fails); the launcher ends
     * the other ranks, whose engines end with their coordinators. Open MPI 4.1's mpirun
     * crashes now and then while it logs an MPI_Abort (one run in five here, leaving its
     * shared memory in /dev/shm: docs/distributed.md, "Failures"), and it ends the job when
     * a rank exits with a failure anyway; every other launcher gets MPI_Abort, the one call
     * that ends a job everywhere. */
    if (open_mpi_ends_the_job_on_failure()) {
        fflush(NULL);
        _exit(1);
    }
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static void finalize(void)
{
    if (job.receive != MPI_REQUEST_NULL) {
        MPI_Cancel(&job.receive);
        MPI_Wait(&job.receive, MPI_STATUS_IGNORE);
    }
    for (size_t k = 0; k < job.n_sends; k++)
        MPI_Wait(&job.sends[k].request, MPI_STATUS_IGNORE);
    free(job.sends);
    job.sends = NULL;
    job.n_sends = 0;
    if (job.comm != MPI_COMM_NULL) {
        /* Messages another rank sent before it saw the end (a refusal racing the STOP):
         * received here, so that none is left in flight at MPI_Finalize. */
        MPI_Barrier(job.comm);
        for (int flag = 1; flag;) {
            MPI_Status status;
            MPI_Iprobe(MPI_ANY_SOURCE, TAG, job.comm, &flag, &status);
            if (flag)
                MPI_Recv(&job.received, sizeof job.received, MPI_BYTE, status.MPI_SOURCE, TAG,
                         job.comm, MPI_STATUS_IGNORE);
        }
        MPI_Comm_free(&job.comm);
    }
    if (job.initialized)
        MPI_Finalize();
    job.initialized = false;
    job.engine = NULL;
}

/* The first of the launchers' variables that is set, as a number; `otherwise` if none is. */
static unsigned env_number(const char *open_mpi, const char *hydra, unsigned otherwise)
{
    const char *v = getenv(open_mpi);
    if (!v)
        v = getenv(hydra);
    return v ? (unsigned)strtoul(v, NULL, 10) : otherwise;
}

static int by_core(const void *a, const void *b)
{
    const pareng_placement *x = a, *y = b;
    return (x->core_logical > y->core_logical) - (x->core_logical < y->core_logical);
}

/* Ranks that share a node and that the launcher left unbound (each may use every CPU) split
 * its cores between them, as `mpirun --map-by slot:PE=n` would have: local rank L of N takes
 * cores [L*C/N, (L+1)*C/N), at least one. Without this, `--cores auto` on N such ranks would
 * start N workers on every core. A rank the launcher bound keeps what it was given. */
static int take_my_share_of_the_node(const pareng_config *cfg)
{
    unsigned local = env_number("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", 0);
    unsigned local_size = env_number("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", 1);
    cpu_set_t allowed;
    if (local_size < 2 || local >= local_size || (cfg && (cfg->cpus || cfg->topology_xml)) ||
        sched_getaffinity(0, sizeof allowed, &allowed) < 0 ||
        CPU_COUNT(&allowed) < sysconf(_SC_NPROCESSORS_ONLN))
        return 0;
    pareng_config whole;
    pareng_config_default(&whole);
    whole.workers = 0; /* one per core: the cores to share */
    whole.cpus = NULL;
    pareng_plan *plan;
    int rc = pareng_plan_create(&plan, &whole);
    if (rc < 0)
        return rc;
    unsigned cores = pareng_plan_workers(plan);
    pareng_placement *at = calloc(cores, sizeof *at);
    if (!at) {
        pareng_plan_destroy(plan);
        return pareng__fail(ENOMEM, "out of memory");
    }
    for (unsigned i = 0; i < cores; i++)
        pareng_plan_placement(plan, i, &at[i]);
    pareng_plan_destroy(plan);
    qsort(at, cores, sizeof *at, by_core);
    unsigned first = local * cores / local_size, end = (local + 1) * cores / local_size;
    if (end <= first) /* more ranks than cores: one each, shared in turn */
        end = first + 1;
    cpu_set_t mine;
    CPU_ZERO(&mine);
    for (unsigned i = first; i < end; i++)
        CPU_SET(at[i].pu_os, &mine);
    free(at);
    if (sched_setaffinity(0, sizeof mine, &mine) < 0)
        return pareng__fail(errno, "sched_setaffinity: %s", strerror(errno));
    return 0;
}

/* Ranks of one node whose workers run on the same CPUs (a launcher that bound several ranks
 * to one package) slow each other down without a word: the lowest of them says so. */
static void warn_if_ranks_share_cpus(const pareng_engine *e)
{
    enum { WORDS = 64 }; /* CPUs 0 .. 4095 */
    unsigned long long mine[WORDS] = {0};
    const pareng_plan *plan = pareng_engine_plan(e);
    for (unsigned i = 0; i < pareng_plan_workers(plan); i++) {
        pareng_placement p;
        if (pareng_plan_placement(plan, i, &p) == 0 && p.pu_os < WORDS * 64)
            mine[p.pu_os / 64] |= 1ull << (p.pu_os % 64);
    }
    MPI_Comm node;
    if (MPI_Comm_split_type(job.comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) !=
        MPI_SUCCESS)
        return;
    int local, local_size;
    MPI_Comm_rank(node, &local);
    MPI_Comm_size(node, &local_size);
    unsigned long long *all = malloc((size_t)local_size * sizeof mine);
    int *world = malloc((size_t)local_size * sizeof *world);
    if (all && world &&
        MPI_Allgather(mine, WORDS, MPI_UNSIGNED_LONG_LONG, all, WORDS, MPI_UNSIGNED_LONG_LONG,
                      node) == MPI_SUCCESS &&
        MPI_Allgather(&job.rank, 1, MPI_INT, world, 1, MPI_INT, node) == MPI_SUCCESS &&
        local == 0) {
        for (int a = 0; a < local_size; a++)
            for (int b = a + 1; b < local_size; b++)
                for (int k = 0; k < WORDS; k++)
                    if (all[(size_t)a * WORDS + k] & all[(size_t)b * WORDS + k]) {
                        fprintf(stderr, "pareng: warning: ranks %d and %d run workers on the "
                                "same CPUs of this node: give each rank its own (mpirun "
                                "--map-by slot:PE=N, or --bind-to none and pareng splits "
                                "the cores)\n", world[a], world[b]);
                        a = b = local_size;
                        break;
                    }
    }
    free(all);
    free(world);
    MPI_Comm_free(&node);
}

static int another_rank_failed(void)
{
    return pareng__fail(ECONNABORTED, "another rank could not start its engine (its message "
                        "says why): no rank starts one");
}

int pareng_mpi_start(pareng_engine **engine, const pareng_config *cfg, int *argc, char ***argv,
                     unsigned flags)
{
    *engine = NULL;
    if (pareng__in_worker()) /* a worker has no MPI of its own, and must not start one */
        return pareng__fail(EPERM, "pareng_mpi_start called by a task: MPI and the engine "
                            "start in the program's own process, before its runs");
    if (job.engine)
        return pareng__fail(EBUSY, "this rank has an MPI engine already: one per process");
    if (flags & ~PARENG_MPI_SHARE_WORK)
        return pareng__fail(EINVAL, "flags %#x: only PARENG_MPI_SHARE_WORK is known", flags);
    int up = 0, over = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&over);
    if (over)
        return pareng__fail(EALREADY, "MPI was finalized in this process (by pareng_mpi_stop, or "
                            "MPI_Finalize), and MPI cannot start again: one MPI engine a process, "
                            "or pareng_start for a local one");
    if (up)
        return pareng__fail(EALREADY, "MPI is initialized already: pareng_mpi_start forks the "
                            "workers first and then initializes MPI, so call it instead of "
                            "MPI_Init");
    int rc = take_my_share_of_the_node(cfg);
    if (rc == 0)
        rc = pareng_start(engine, cfg);
    /* A rank whose engine did not start starts MPI all the same, to tell the others (below),
     * which would wait for it in MPI_Init for ever while it went on without MPI (a local
     * engine instead, or an exit with status 0); alone, it has no one to tell. */
    if (rc < 0 && !pareng_mpi_launched())
        return rc;
    int provided = MPI_THREAD_SINGLE;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        pareng_stop(*engine);
        *engine = NULL;
        return rc < 0 ? rc : pareng__fail(EIO, "MPI_Init_thread failed");
    }
    job.initialized = true;
    job.engine = *engine;
    job.share_work = flags & PARENG_MPI_SHARE_WORK;
    MPI_Comm_dup(MPI_COMM_WORLD, &job.comm);
    MPI_Comm_rank(job.comm, &job.rank);
    MPI_Comm_size(job.comm, &job.ranks);
    if (job.ranks > 1) {
        /* Every rank, whatever its flags and whether its engine started: ranks that differ in
         * them would wait for each other in different collectives (these, a run's, the
         * stop's), for ever. */
        unsigned long long mine[3] = {rc < 0, flags, job.share_work ? pareng__tasks_hash() : 0};
        unsigned long long low[3] = {0, 0, 0}, high[3] = {0, 0, 0};
        MPI_Allreduce(mine, low, 3, MPI_UNSIGNED_LONG_LONG, MPI_MIN, job.comm);
        MPI_Allreduce(mine, high, 3, MPI_UNSIGNED_LONG_LONG, MPI_MAX, job.comm);
        if (rc == 0 && high[0])
            rc = another_rank_failed();
        else if (rc == 0 && low[1] != high[1])
            rc = pareng__fail(EPROTO, "the ranks passed different flags to pareng_mpi_start "
                              "(PARENG_MPI_SHARE_WORK on some, not on others): every rank "
                              "passes the same");
        else if (rc == 0 && low[2] != high[2])
            rc = pareng__fail(EPROTO, "the ranks run different programs (or builds of one): "
                              "a task of one would mean nothing on another");
    }
    if (rc == 0) /* on every rank or none, as are the collectives it makes */
        warn_if_ranks_share_cpus(*engine);
    if (rc == 0 && job.share_work && job.ranks > 1) {
        static const pareng__transport transport = {mpi_send, mpi_poll, mpi_abort, NULL};
        rc = post_receive();
        if (rc == 0)
            rc = pareng__dist_attach(*engine, &transport, (unsigned)job.rank,
                                     (unsigned)job.ranks);
        /* A refusal of this rank's own (an engine with IO) ends every rank's start: the
         * others would go on and wait for this one in their first collective, for ever. */
        int failed_here = rc < 0, failed_anywhere = 0;
        MPI_Allreduce(&failed_here, &failed_anywhere, 1, MPI_INT, MPI_MAX, job.comm);
        if (failed_anywhere && rc == 0)
            rc = another_rank_failed();
    }
    if (rc < 0) {
        char message[PARENG_ERROR_MAX];
        snprintf(message, sizeof message, "%s", pareng_last_error());
        pareng_stop(*engine);
        *engine = NULL;
        finalize();
        return pareng__fail(-rc, "%s", message);
    }
    return 0;
}

unsigned pareng_mpi_rank(const pareng_engine *e)
{
    return e && e == job.engine ? (unsigned)job.rank : 0;
}

unsigned pareng_mpi_ranks(const pareng_engine *e)
{
    return e && e == job.engine ? (unsigned)job.ranks : 1;
}

int pareng_mpi_stats(pareng_engine *e, pareng_rank_stats *rows)
{
    pareng_rank_stats mine;
    pareng__dist_stats(e, &mine);
    if (e != job.engine || !job.share_work || job.ranks == 1) {
        if (rows)
            rows[0] = mine;
        return 0;
    }
    if (MPI_Gather(&mine, sizeof mine, MPI_BYTE, job.rank == 0 ? rows : NULL, sizeof mine,
                   MPI_BYTE, 0, job.comm) != MPI_SUCCESS)
        return pareng__fail(EIO, "MPI_Gather failed");
    return 0;
}

void pareng_mpi_stop(pareng_engine *e)
{
    pareng_stop(e);
    if (e && e == job.engine)
        finalize();
}
