/*
 * mpi_init_first.c - pareng_mpi_start refuses what it cannot do right: unknown flags (before
 * anything starts), a call from a task (-EPERM: a worker has no MPI, and starting one there
 * killed it), a program that initialized MPI itself, whose workers would be forked
 * after MPI_Init (-EALREADY, with a message that says what to do), and a start after MPI
 * was finalized, which cannot start again. `mpi_init_first mixed-flags`: rank 0 passes
 * PARENG_MPI_SHARE_WORK and the others no flag, and every rank's start is refused (-EPROTO),
 * where rank 0 waited in a collective the others never called. `mpi_init_first one-fails`:
 * rank 1's engine cannot start (a deque of 1 frame), and it says why while every other rank's
 * start is refused with -ECONNABORTED, where they waited in MPI_Init. Run under mpirun by
 * tests/mpi_jobs.py; exit status 0 when each was refused as documented, 1 otherwise.
 */
#include "pareng.h"

#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void expect_refusal(const char *what, int rc, int want, pareng_engine *e,
                           const char *message_part)
{
    const char *message = pareng_last_error();
    if (rc == -want && !e && strstr(message, message_part)) {
        printf("%s: refused: %s\n", what, message);
        return;
    }
    failures++;
    fprintf(stderr, "mpi_init_first: %s: returned %d (expected %d), engine %p, message \"%s\" "
            "(expected one with \"%s\")\n", what, rc, -want, (void *)e, message, message_part);
}

/* The rank, read from the launcher's environment (Open MPI's, MPICH's): MPI has not started
 * yet when a rank chooses what it passes; -1 when there is none. */
static int launcher_rank(void)
{
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    if (!rank)
        rank = getenv("PMI_RANK");
    if (!rank)
        fprintf(stderr, "mpi_init_first: no rank in the environment (not under Open MPI's or "
                        "MPICH's launcher)\n");
    return rank ? atoi(rank) : -1;
}

static int start_refused(const char *what, pareng_config *cfg, unsigned flags, int want,
                         const char *message_part)
{
    pareng_engine *e = NULL;
    int rc = pareng_mpi_start(&e, cfg, NULL, NULL, flags);
    expect_refusal(what, rc, want, e, message_part);
    if (rc == 0)
        pareng_mpi_stop(e);
    return failures ? 1 : 0;
}

/* 1 when the start was refused as documented: the worker's message stays in the worker. */
PARENG_TASK_1(int, start_mpi_here, int, unused)
{
    (void)unused;
    pareng_engine *e = NULL;
    int rc = pareng_mpi_start(&e, NULL, NULL, NULL, PARENG_MPI_SHARE_WORK);
    return rc == -EPERM && !e &&
           strstr(pareng_last_error(), "pareng_mpi_start called by a task") != NULL;
}

int main(int argc, char **argv)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 1;
    int rank = argc > 1 ? launcher_rank() : 0;
    if (rank < 0)
        return 1;
    if (argc > 1 && strcmp(argv[1], "mixed-flags") == 0)
        return start_refused("mixed flags", &cfg, rank == 0 ? PARENG_MPI_SHARE_WORK : 0, EPROTO,
                             "different flags");
    if (argc > 1 && strcmp(argv[1], "one-fails") == 0) {
        if (rank != 1)
            return start_refused("another rank failed", &cfg, PARENG_MPI_SHARE_WORK,
                                 ECONNABORTED, "another rank could not start");
        cfg.deque_capacity = 1;
        return start_refused("this rank failed", &cfg, PARENG_MPI_SHARE_WORK, EINVAL,
                             "deque capacity");
    }
    pareng_engine *e = NULL;
    int rc = pareng_start(&e, &cfg);
    int in_task = 0;
    if (rc == 0)
        rc = PARENG_RUN(e, start_mpi_here, &in_task, 0);
    pareng_stop(e);
    e = NULL;
    if (rc < 0 || in_task != 1) {
        fprintf(stderr, "mpi_init_first: the run of a task that starts MPI: %d (%s); the "
                        "task's start refused as documented: %d\n", rc, pareng_last_error(),
                in_task);
        return 1;
    }

    rc = pareng_mpi_start(&e, &cfg, &argc, &argv, 0x80);
    expect_refusal("unknown flags", rc, EINVAL, e, "flags");
    int up = 1;
    MPI_Initialized(&up);
    if (up) {
        failures++;
        fprintf(stderr, "mpi_init_first: a refused pareng_mpi_start left MPI initialized\n");
        return 1;
    }

    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        fprintf(stderr, "mpi_init_first: MPI_Init failed\n");
        return 1;
    }
    rc = pareng_mpi_start(&e, &cfg, NULL, NULL, PARENG_MPI_SHARE_WORK);
    expect_refusal("after MPI_Init", rc, EALREADY, e, "MPI is initialized already");
    MPI_Finalize();
    /* After MPI_Finalize (as after pareng_mpi_stop), which it called "initialized already" */
    rc = pareng_mpi_start(&e, &cfg, NULL, NULL, PARENG_MPI_SHARE_WORK);
    expect_refusal("after MPI_Finalize", rc, EALREADY, e, "MPI was finalized");
    return failures ? 1 : 0;
}
