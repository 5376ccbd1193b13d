/*
 * fib-serial-cost - nanoseconds per call of the serial baseline, workload_fib_serial(n), for each
 * n from 18 to 42: the cost of a serial leaf depends on where the recursion is entered (see
 * docs/performance.md), and every runtime whose leaves call serial fib inherits it.
 *
 *   build/benchmarks/fib-serial-cost
 */
#include <pareng.h>
#include <workloads.h>
#include <stdio.h>
#include <time.h>

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(void)
{
    for (unsigned n = 18; n <= 42; n++) {
        /* about 2^30 calls' worth for small n, one call from 30 on; the fastest of 3 */
        unsigned repeats = n < 30 ? 1u << (30 - n) : 1;
        double best = 1e9;
        for (int attempt = 0; attempt < 3; attempt++) {
            uint64_t sum = 0;
            double t0 = seconds();
            for (unsigned i = 0; i < repeats; i++)
                sum += workload_fib_serial(n);
            __asm__ volatile("" : : "r"(sum)); /* the result is used: no call is left out */
            double per_run = (seconds() - t0) / repeats;
            best = per_run < best ? per_run : best;
        }
        double calls = 2.0 * (double)workload_fib_serial(n) - 1; /* base case n <= 2 */
        printf("fib(%u): %.3f ns per call\n", n, best / calls * 1e9);
    }
    return 0;
}
