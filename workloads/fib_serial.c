/*
 * fib_serial.c - plain serial C fib: the baseline pareng is measured against, and the leaves of
 * the fib tasks below their grain.
 *
 * It has a file of its own so that the compiler cannot inline it into the task bodies of
 * fib.c and specialise a different copy there: a task's serial leaf runs the very machine
 * code that `pareng run fib --serial` times, and ratios compare like with like.
 */
#include "workloads.h"

/* The same base case as the tasks (n <= 2), so both make the same calls. */
uint64_t workload_fib_serial(unsigned n)
{
    if (n <= 2)
        return n != 0;
    return workload_fib_serial(n - 1) + workload_fib_serial(n - 2);
}
