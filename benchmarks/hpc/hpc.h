/*
 * hpc.h - what the programs of benchmarks/hpc share: the command line, the memory their data
 * lives in, the timing of each version, and the one line they print.
 *
 * Each program is written as a user of the installed library writes it (the public API of
 * pareng.h alone, after the papers of BOTS and Cilk-5), in three versions in one source: plain
 * serial C, pareng tasks, and OpenMP tasks (compiled only into PROGRAM-openmp, built among the
 * peers, in benchmarks/peers, with -Dpeers=enabled). The serial version is in both executables
 * and built with the same flags as the others, so that a ratio to it compares like with like.
 * The contract:
 *
 *     PROGRAM serial SIZE
 *     PROGRAM pareng SIZE WORKERS [CUTOFF]     CUTOFF as --cutoff: auto (default), none, D
 *     PROGRAM-openmp openmp SIZE WORKERS [D]   tasks D levels below the root run as serial
 *                                              code (BOTS's manual cutoff); 0 (default): none
 *
 * prints one line {"result":R,"seconds":S}: R a checksum of what was computed (the same in
 * every version, which benchmarks/hpc-ratios and the tests check), S the computation alone
 * (engine start, thread team and input data made before the clock). Exit status 2 for bad
 * arguments, 1 when it cannot run or its own check of the output fails.
 */
#ifndef PARENG_HPC_H
#define PARENG_HPC_H

#include <stddef.h>
#include <stdint.h>

#include "pareng.h"

enum hpc_mode { HPC_SERIAL, HPC_PARENG, HPC_OPENMP };
#define HPC_MAX_BLOCKS 4

typedef struct hpc_run {
    enum hpc_mode mode;
    unsigned long size;
    unsigned workers;
    unsigned omp_cutoff;    /* OpenMP: the depth below which tasks are serial; 0 = none */
    pareng_engine *engine;  /* pareng: started, stopped by hpc_finish */
    void *blocks[HPC_MAX_BLOCKS]; /* hpc_alloc's, freed by hpc_finish */
    unsigned n_blocks;
} hpc_run;

typedef struct hpc_program {
    const char *name;          /* as in the usage line */
    const char *size_meaning;  /* "N, the board's side, 1 to 16" */
    unsigned long min_size, max_size; /* SIZE as a number (no parse_size) */
    /* Bytes of shared memory the pareng version of a size allocates (hpc_alloc); NULL: none. */
    size_t (*shared_bytes)(unsigned long size);
    /* SIZE as a name rather than a number (NULL: a number from min_size to max_size): 0 with
     * *size set, or -1. */
    int (*parse_size)(const char *text, unsigned long *size);
    /* The computation on `data`, in each version: serial C; pareng (PARENG_RUN's status); and
     * OpenMP, called by one thread of a team of run->workers (`omp parallel` + `omp single`),
     * NULL in a build without OpenMP. */
    void (*serial)(hpc_run *run, void *data);
    int (*pareng)(hpc_run *run, void *data);
    void (*openmp)(hpc_run *run, void *data);
} hpc_program;

/* Parses the command line and, for pareng, starts the engine; 0, or the exit status after a
 * one-line message on stderr. */
int hpc_start(int argc, char **argv, const hpc_program *program, hpc_run *run);
/* Memory for the computation's data, zeroed: in the engine's shared memory for pareng (the
 * workers see it at the same address), else the heap; at most HPC_MAX_BLOCKS blocks. Never
 * NULL: a failure exits(1). */
void *hpc_alloc(hpc_run *run, size_t bytes);
/* Runs the program's computation on data in the run's version and returns its seconds (for
 * OpenMP the team is made and pinned where pareng puts its workers before the clock), or -1
 * when the pareng run failed (said on stderr, the engine stopped). */
double hpc_time(hpc_run *run, const hpc_program *program, void *data);
/* Prints the line, stops the engine; returns the exit status. ok false: the program's own
 * check of its output failed (said on stderr, status 1). */
int hpc_finish(hpc_run *run, uint64_t result, double seconds, int ok);

#endif
