/*
 * peer.h - what the fib peers of `pareng bench --peers` share (C and C++): the command line,
 * the serial leaves, where their threads run, the clock and the one line they print.
 *
 * The contract with pareng bench (tools/bench.c): a peer is an executable
 *
 *     fib-RUNTIME N WORKERS GRAIN
 *
 * that computes fib(N) on WORKERS threads, calls with n < GRAIN as serial C (GRAIN 0: every
 * call a task), and prints one line {"result":R,"seconds":S}, S being the computation alone:
 * its thread pool is created (and pinned) before the clock starts. Exit status 2 for bad
 * arguments, 1 when it cannot run.
 *
 * This header is plain C with C linkage so that the C++ peers can include it: pareng.h uses C11
 * atomics, which C++17 does not have, so peer.c is the only file of a peer that includes it.
 */
#ifndef PARENG_PEER_H
#define PARENG_PEER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct peer_args {
    unsigned n, workers, grain;
} peer_args;

/* Parses `N WORKERS GRAIN`; 0, or the exit status after a one-line message on stderr. */
int peer_parse_args(int argc, char **argv, const char *runtime, peer_args *out);

/* workload_fib_serial: the leaves run the very machine code of pareng's leaves and baseline. */
uint64_t peer_fib_serial(unsigned n);

/* Prepares the placement pareng would give `workers` workers: one per core, close; 0, or -1
 * after saying why. Then each thread pins itself with peer_pin_thread(its index). */
int peer_placement(unsigned workers);
/* Pins the calling thread where pareng pins worker `index` (nothing on a topology that is not
 * this machine's, as pareng does not pin there either). */
void peer_pin_thread(unsigned index);

double peer_seconds(void);

/* The line pareng bench reads; returns the exit status (1 if stdout could not be written). */
int peer_report(uint64_t result, double seconds);

#ifdef __cplusplus
}
#endif
#endif
