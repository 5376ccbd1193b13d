/*
 * peer.c - the parts of the fib peers that are not about their runtime (see peer.h).
 */
#include "peer.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pareng.h"
#include "workloads.h"

static int parse_number(const char *text, unsigned long max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end || errno == ERANGE || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int peer_parse_args(int argc, char **argv, const char *runtime, peer_args *out)
{
    if (argc != 4 || parse_number(argv[1], WORKLOAD_FIB_MAX, &out->n) < 0 ||
        parse_number(argv[2], PARENG_MAX_WORKERS, &out->workers) < 0 || out->workers == 0 ||
        parse_number(argv[3], UINT_MAX, &out->grain) < 0) {
        fprintf(stderr, "usage: fib-%s N WORKERS GRAIN (0 <= N <= %d, 1 <= WORKERS <= %d, "
                        "GRAIN >= 0: calls with n < GRAIN are serial)\n",
                runtime, WORKLOAD_FIB_MAX, PARENG_MAX_WORKERS);
        return 2;
    }
    return 0;
}

uint64_t peer_fib_serial(unsigned n)
{
    return workload_fib_serial(n);
}

/* OS numbers of the PUs, one per worker; empty (no pinning) on a foreign topology. */
static unsigned *placement;
static unsigned placed;

int peer_placement(unsigned workers)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = workers;
    pareng_plan *plan;
    if (pareng_plan_create(&plan, &cfg) < 0) {
        fprintf(stderr, "fib peer: placement of %u workers: %s\n", workers, pareng_last_error());
        return -1;
    }
    placement = calloc(workers, sizeof *placement);
    if (!placement) {
        pareng_plan_destroy(plan);
        fprintf(stderr, "fib peer: out of memory\n");
        return -1;
    }
    if (pareng_plan_is_this_system(plan)) {
        for (unsigned i = 0; i < workers; i++) {
            pareng_placement where;
            pareng_plan_placement(plan, i, &where);
            placement[i] = where.pu_os;
        }
        placed = workers;
    }
    pareng_plan_destroy(plan);
    return 0;
}

void peer_pin_thread(unsigned index)
{
    if (index >= placed)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(placement[index], &set);
    sched_setaffinity(0, sizeof set, &set); /* 0: the calling thread */
}

double peer_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int peer_report(uint64_t result, double seconds)
{
    printf("{\"result\":%llu,\"seconds\":%.9f}\n", (unsigned long long)result, seconds);
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}
