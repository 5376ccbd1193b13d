/*
 * hpc.c - the parts of the benchmarks/hpc programs that are not about their algorithm (hpc.h).
 */
#include "hpc.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "peer.h"

static int parse_number(const char *text, unsigned long min, unsigned long max,
                        unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end || errno == ERANGE || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int usage(const hpc_program *p)
{
    fprintf(stderr,
            "usage: %s serial SIZE | pareng SIZE WORKERS [auto|none|D] | openmp SIZE WORKERS "
            "[D]\n  SIZE: %s; WORKERS 1 to %d\n",
            p->name, p->size_meaning, PARENG_MAX_WORKERS);
    return 2;
}

static int start_engine(const hpc_program *p, hpc_run *run, const char *cutoff)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = run->workers;
    cfg.shared_bytes = p->shared_bytes ? p->shared_bytes(run->size) + (1u << 20) : 0;
    if (cutoff && pareng_config_set_cutoff(&cfg, cutoff) < 0) {
        fprintf(stderr, "%s: %s\n", p->name, pareng_last_error());
        return 2;
    }
    if (pareng_start(&run->engine, &cfg) < 0) {
        fprintf(stderr, "%s: %s\n", p->name, pareng_last_error());
        return 1;
    }
    return 0;
}

int hpc_start(int argc, char **argv, const hpc_program *p, hpc_run *run)
{
    *run = (hpc_run){.workers = 1};
    if (argc < 3)
        return usage(p);
    const char *mode = argv[1];
    if (strcmp(mode, "serial") == 0 && argc == 3)
        run->mode = HPC_SERIAL;
    else if (strcmp(mode, "pareng") == 0 && (argc == 4 || argc == 5))
        run->mode = HPC_PARENG;
    else if (strcmp(mode, "openmp") == 0 && (argc == 4 || argc == 5))
        run->mode = HPC_OPENMP;
    else
        return usage(p);
    unsigned long workers = 1, depth = 0;
    if ((p->parse_size ? p->parse_size(argv[2], &run->size)
                       : parse_number(argv[2], p->min_size, p->max_size, &run->size)) < 0 ||
        (argc >= 4 && parse_number(argv[3], 1, PARENG_MAX_WORKERS, &workers) < 0) ||
        (run->mode == HPC_OPENMP && argc == 5 && parse_number(argv[4], 0, 1000000, &depth) < 0))
        return usage(p);
    run->workers = (unsigned)workers;
    run->omp_cutoff = (unsigned)depth;
#ifndef _OPENMP
    if (run->mode == HPC_OPENMP) {
        fprintf(stderr, "%s: built without OpenMP: run %s-openmp (meson -Dpeers=enabled)\n",
                p->name, p->name);
        return 2;
    }
#endif
    return run->mode == HPC_PARENG ? start_engine(p, run, argc == 5 ? argv[4] : NULL) : 0;
}

void *hpc_alloc(hpc_run *run, size_t bytes)
{
    if (run->n_blocks == HPC_MAX_BLOCKS) {
        fprintf(stderr, "hpc_alloc: more than %d blocks\n", HPC_MAX_BLOCKS);
        exit(1);
    }
    void *p = run->engine ? pareng_alloc(run->engine, bytes) : calloc(1, bytes);
    if (!p) {
        fprintf(stderr, "no memory for %zu bytes: %s\n", bytes,
                run->engine ? pareng_last_error() : strerror(ENOMEM));
        exit(1);
    }
    if (run->engine)
        memset(p, 0, bytes);
    return run->blocks[run->n_blocks++] = p;
}

/* Frees the data and stops the engine. */
static void release(hpc_run *run)
{
    while (run->n_blocks)
        if (run->engine)
            pareng_free(run->engine, run->blocks[--run->n_blocks]);
        else
            free(run->blocks[--run->n_blocks]);
    if (run->engine)
        pareng_stop(run->engine);
    run->engine = NULL;
}

#ifdef _OPENMP
static void run_openmp(hpc_run *run, const hpc_program *p, void *data)
{
#pragma omp parallel num_threads(run->workers)
#pragma omp single
    p->openmp(run, data);
}

/* The threads go where pareng puts its workers (one per core, close). */
static void pin_openmp_threads(hpc_run *run)
{
    if (peer_placement(run->workers) < 0)
        exit(1);
    omp_set_dynamic(0);
    /* The team is made and pinned before the clock: libgomp keeps it for the next region of
     * the same size. */
#pragma omp parallel num_threads(run->workers)
    peer_pin_thread((unsigned)omp_get_thread_num());
}
#endif

double hpc_time(hpc_run *run, const hpc_program *p, void *data)
{
    int rc = 0;
#ifdef _OPENMP
    if (run->mode == HPC_OPENMP)
        pin_openmp_threads(run);
#endif
    double t0 = peer_seconds();
    if (run->mode == HPC_SERIAL)
        p->serial(run, data);
    else if (run->mode == HPC_PARENG)
        rc = p->pareng(run, data);
#ifdef _OPENMP
    else
        run_openmp(run, p, data);
#endif
    double seconds = peer_seconds() - t0;
    if (rc) {
        fprintf(stderr, "%s: the run failed (%d): %s\n", p->name, rc, pareng_last_error());
        release(run);
        return -1;
    }
    return seconds;
}

int hpc_finish(hpc_run *run, uint64_t result, double seconds, int ok)
{
    release(run);
    if (!ok) {
        fprintf(stderr, "the output failed its check (result %llu)\n",
                (unsigned long long)result);
        return 1;
    }
    return peer_report(result, seconds);
}

