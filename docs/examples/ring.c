/*
 * ring - the PyPar ring on pareng: every rank of an MPI job runs its own engine on its own
 * piece of work (fib of a number that depends on the rank), and the ranks pass a growing
 * message round the ring: rank 0 sends "P0" to rank 1, each rank appends "P<rank>" and sends
 * it on, and rank 0 receives the whole message, "P0P1P2...", and prints it with every
 * rank's result. Build it against an installed libpareng-mpi and run it:
 *
 *     mpicc ring.c $(pkg-config --cflags --libs pareng-mpi) -o ring
 *     mpirun -np 3 ./ring
 *
 * pareng_mpi_start forks the rank's workers before it initializes MPI (a process must not
 * fork once MPI is up), so the program calls it instead of MPI_Init, and pareng_mpi_stop
 * instead of MPI_Finalize. Without PARENG_MPI_SHARE_WORK each rank's runs are its own, and
 * MPI_COMM_WORLD is the program's to use from the thread that started the engine.
 */
#include <mpi.h>
#include <pareng.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RING_TAG 1

PARENG_TASK_1(uint64_t, fib, unsigned, n)
{
    if (n < 2)
        return n;
    PARENG_SPAWN(fib, n - 1);
    uint64_t b = PARENG_CALL(fib, n - 2);
    return PARENG_SYNC(fib) + b;
}

/* This rank's piece of work: a different size on each rank */
static unsigned work_of(unsigned rank)
{
    return 25 + rank % 8;
}

int main(int argc, char **argv)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    pareng_engine *e;
    if (pareng_mpi_start(&e, &cfg, &argc, &argv, 0) < 0) {
        fprintf(stderr, "ring: %s\n", pareng_last_error());
        return 1;
    }
    unsigned rank = pareng_mpi_rank(e), ranks = pareng_mpi_ranks(e);

    uint64_t result = 0;
    if (PARENG_RUN(e, fib, &result, work_of(rank)) < 0) {
        fprintf(stderr, "ring: rank %u: %s\n", rank, pareng_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }

    /* The ring: "P<rank>" is at most 11 characters */
    int size = (int)ranks * 11 + 1;
    char *message = calloc((size_t)size, 1);
    uint64_t *results = calloc(ranks, sizeof *results);
    if (!message || !results) {
        fprintf(stderr, "ring: rank %u: out of memory\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int next = (int)((rank + 1) % ranks), previous = (int)((rank + ranks - 1) % ranks);
    if (rank != 0)
        MPI_Recv(message, size, MPI_CHAR, previous, RING_TAG, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
    size_t used = strlen(message);
    snprintf(message + used, (size_t)size - used, "P%u", rank);
    if (ranks > 1) {
        MPI_Send(message, (int)strlen(message) + 1, MPI_CHAR, next, RING_TAG, MPI_COMM_WORLD);
        if (rank == 0)
            MPI_Recv(message, size, MPI_CHAR, previous, RING_TAG, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
    }

    /* Every rank's result to rank 0, which prints them with the message */
    MPI_Gather(&result, 1, MPI_UINT64_T, results, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        printf("ring of %u ranks: %s\n", ranks, message);
        for (unsigned r = 0; r < ranks; r++)
            printf("rank %u: fib(%u) = %llu\n", r, work_of(r), (unsigned long long)results[r]);
    }
    free(message);
    free(results);
    pareng_mpi_stop(e);
    return 0;
}
