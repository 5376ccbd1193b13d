/*
 * fib_openmp.c - the fib peer on OpenMP tasks (libgomp): pareng's fib with `omp task` for the
 * spawn and `omp taskwait` for the sync. See peer.h for the contract.
 */
#include <omp.h>

#include "peer.h"

static uint64_t fib(unsigned n, unsigned grain)
{
    if (n < grain)
        return peer_fib_serial(n);
    if (n <= 2)
        return n != 0;
    uint64_t a, b;
#pragma omp task shared(a) firstprivate(n, grain)
    a = fib(n - 1, grain);
    b = fib(n - 2, grain);
#pragma omp taskwait
    return a + b;
}

int main(int argc, char **argv)
{
    peer_args args;
    int rc = peer_parse_args(argc, argv, "openmp", &args);
    if (rc)
        return rc;
    if (peer_placement(args.workers) < 0)
        return 1;
    omp_set_dynamic(0);
    /* The team is created and pinned here, before the clock: libgomp keeps its threads for
     * the next parallel region of the same size. */
#pragma omp parallel num_threads(args.workers)
    peer_pin_thread((unsigned)omp_get_thread_num());

    uint64_t result = 0;
    double t0 = peer_seconds();
#pragma omp parallel num_threads(args.workers)
#pragma omp single
    result = fib(args.n, args.grain);
    double seconds = peer_seconds() - t0;
    return peer_report(result, seconds);
}
