/*
 * mpi_init_first.c - pareng_mpi_start refuses what it cannot do right: unknown flags (before
 * anything starts), and a program that initialized MPI itself, whose workers would be forked
 * after MPI_Init (-EALREADY, with a message that says what to do), and a start after MPI
 * was finalized, which cannot start again. Run under mpirun by tests/mpi_jobs.py; exit status
 * 0 when each was refused as documented, 1 otherwise.
 */
#include "pareng.h"

#include <errno.h>
#include <mpi.h>
#include <stdio.h>
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

int main(int argc, char **argv)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 1;
    pareng_engine *e = NULL;

    int rc = pareng_mpi_start(&e, &cfg, &argc, &argv, 0x80);
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
