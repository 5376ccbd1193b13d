/*
 * uts.c - UTS, the Unbalanced Tree Search benchmark, on UTS's sample trees (SIZE is a tree's
 * name: T1, T1L, T2, T3, T3L, T5): the serial and pareng versions are the built-in workload's
 * (workloads/uts.c, `pareng run uts`), the OpenMP one BOTS's, over the same node functions.
 * The result is the node count, checked against the size UTS publishes for the tree. Usage
 * and output: hpc.h.
 */

#include "hpc.h"
#include "workloads.h"

static const workload_uts_tree *tree;

static int parse_tree(const char *text, unsigned long *size)
{
    tree = workload_uts_find(text);
    *size = 0;
    return tree ? 0 : -1;
}

#ifdef _OPENMP
static uint64_t uts_openmp(workload_uts_node node, unsigned depth, unsigned cutoff)
{
    unsigned k = workload_uts_children(tree, &node);
    uint64_t nodes = 1;
    if (cutoff && depth >= cutoff) {
        for (unsigned i = 0; i < k; i++)
            nodes += uts_openmp(workload_uts_child(&node, i), depth + 1, 0);
        return nodes;
    }
    uint64_t counts[k > 0 ? k : 1];
    for (unsigned i = 0; i < k; i++) {
        workload_uts_node child = workload_uts_child(&node, i);
#pragma omp task firstprivate(child, i) shared(counts)
        counts[i] = uts_openmp(child, depth + 1, cutoff);
    }
#pragma omp taskwait
    for (unsigned i = 0; i < k; i++)
        nodes += counts[i];
    return nodes;
}
#endif

static void uts_serial_version(hpc_run *run, void *data)
{
    (void)run;
    workload_uts_serial(tree, data); /* the tree was checked when it was named */
}

static int uts_pareng_version(hpc_run *run, void *data)
{
    return workload_uts(run->engine, tree, data);
}

#ifdef _OPENMP
static void uts_openmp_version(hpc_run *run, void *data)
{
    workload_uts_count *count = data;
    count->nodes = uts_openmp(workload_uts_root(tree), 0, run->omp_cutoff);
}
#else
#define uts_openmp_version NULL
#endif

int main(int argc, char **argv)
{
    static const hpc_program program = {
        .name = "uts", .size_meaning = "a sample tree of UTS: T1, T1L, T2, T3, T3L or T5",
        .parse_size = parse_tree, .serial = uts_serial_version, .pareng = uts_pareng_version,
        .openmp = uts_openmp_version};
    hpc_run run;
    int rc = hpc_start(argc, argv, &program, &run);
    if (rc)
        return rc;
    workload_uts_count count = {0};
    double seconds = hpc_time(&run, &program, &count);
    return seconds < 0 ? 1 : hpc_finish(&run, count.nodes, seconds, count.nodes == tree->nodes);
}
