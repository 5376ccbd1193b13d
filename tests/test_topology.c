/*
 * test_topology.c - placement plans (engine/topology.c) on hwloc synthetic topologies, so that
 * every expected PU, core and victim is known exactly whatever machine runs the tests: which
 * PU each worker gets (auto, by count, by CPU list), what the list parser refuses, and the
 * order in which a worker visits its victims, level by level.
 *
 * A synthetic topology is not "this system", so the plan ignores the test's own CPU binding
 * and cgroup: every PU of the description is allowed. The last suite plans for this machine,
 * through the topology cache, against a fresh discovery of it.
 */
#include "internal.h" /* the cache's checksum, to plant a file that passes it */
#include "pareng.h"
#include "testing.h"

#include <errno.h>
#include <hwloc.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The topology most tests use: 2 packages x 2 L3 x 4 cores x 2 PUs = 16 cores, 32 PUs, each
 * core's PUs consecutive (PU L#2c and L#2c+1 on core c, OS index = logical index). */
#define SMALL_MACHINE "package:2 l3:2 core:4 pu:2"
#define SMALL_CORES 16
#define SMALL_PUS 32

/* 4 packages x 4 L3 x 8 cores x 2 PUs = 128 cores, 256 PUs. */
#define LARGE_MACHINE "package:4 l3:4 core:8 pu:2"
#define LARGE_CORES 128
#define LARGE_PUS 256

enum { LEVEL_CORE, LEVEL_L2, LEVEL_L3, LEVEL_NUMA, LEVEL_PACKAGE, LEVEL_MACHINE };

/* Plans cfg on the synthetic topology `description`. hwloc reads HWLOC_SYNTHETIC when the
 * topology is loaded, that is inside pareng_plan_create, so the variable only needs to live
 * for that call; removing it afterwards keeps it from leaking into the next test. */
static int plan_synthetic(pareng_plan **plan, const char *description, const pareng_config *cfg)
{
    CU_ASSERT_FATAL(setenv("HWLOC_SYNTHETIC", description, 1) == 0);
    int rc = pareng_plan_create(plan, cfg);
    unsetenv("HWLOC_SYNTHETIC");
    return rc;
}

/* The plan of `workers` workers (0 = auto) on `description`; fails the test if refused. */
static pareng_plan *plan_workers(const char *description, unsigned workers)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = workers;
    pareng_plan *plan = NULL;
    int rc = plan_synthetic(&plan, description, &cfg);
    if (rc != 0)
        fprintf(stderr, "\n  plan of %u workers on '%s': %d (%s)\n", workers, description, rc,
                pareng_last_error());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(plan);
    return plan;
}

/* The plan of a CPU list on `description`; fails the test if refused. */
static pareng_plan *plan_cpus(const char *description, const char *cpus)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.cpus = cpus;
    pareng_plan *plan = NULL;
    int rc = plan_synthetic(&plan, description, &cfg);
    if (rc != 0)
        fprintf(stderr, "\n  plan of cpus '%s' on '%s': %d (%s)\n", cpus, description, rc,
                pareng_last_error());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(plan);
    return plan;
}

/* The return code of planning cpus (and workers) on `description`; the plan, should one be
 * made against expectations, is freed. */
static int plan_cpus_rc(const char *description, const char *cpus, unsigned workers)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.cpus = cpus;
    cfg.workers = workers;
    /* Not NULL beforehand, to see that a failure clears it. */
    static char not_a_plan;
    pareng_plan *plan = (pareng_plan *)(void *)&not_a_plan;
    int rc = plan_synthetic(&plan, description, &cfg);
    if (rc < 0) {
        CU_ASSERT_PTR_NULL(plan);
    } else {
        pareng_plan_destroy(plan);
    }
    return rc;
}

static pareng_placement placement_of(const pareng_plan *plan, unsigned worker)
{
    pareng_placement pl;
    memset(&pl, 0xa5, sizeof pl);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_placement(plan, worker, &pl), 0);
    return pl;
}

/* Checks the whole placement of one worker, printing it on a mismatch so that a failure says
 * which worker went where. */
static void expect_placement(const pareng_plan *plan, unsigned worker, unsigned pu_os,
                             unsigned pu_logical, unsigned core_logical,
                             unsigned package_logical, bool shared_core, bool shared_pu)
{
    pareng_placement pl = placement_of(plan, worker);
    bool ok = pl.pu_os == pu_os && pl.pu_logical == pu_logical &&
              pl.core_logical == core_logical && pl.package_logical == package_logical &&
              !!pl.shared_core == shared_core && !!pl.shared_pu == shared_pu;
    if (!ok)
        fprintf(stderr,
                "\n  worker %u: got P#%u L#%u core %u package %u shared core %d pu %d,"
                " expected P#%u L#%u core %u package %u shared core %d pu %d\n",
                worker, pl.pu_os, pl.pu_logical, pl.core_logical, pl.package_logical,
                pl.shared_core, pl.shared_pu, pu_os, pu_logical, core_logical,
                package_logical, shared_core, shared_pu);
    CU_ASSERT(ok);
}

/* Properties every victim list has, whatever the topology: each other worker exactly once,
 * never the worker itself, levels never decreasing, and inside one level the order
 * i+1, i+2, ... wrapping around (so the distance (v - i) mod n strictly increases). */
static void expect_victim_invariants(const pareng_plan *plan, unsigned worker)
{
    unsigned n = pareng_plan_workers(plan);
    unsigned victims[PARENG_MAX_WORKERS], levels[PARENG_MAX_WORKERS];
    bool seen[PARENG_MAX_WORKERS] = {false};
    CU_ASSERT_EQUAL_FATAL(pareng_plan_victims(plan, worker, victims, levels, PARENG_MAX_WORKERS),
                          (int)n - 1);
    bool ok = true;
    for (unsigned k = 0; k + 1 < n; k++) {
        unsigned v = victims[k];
        ok &= v < n && v != worker && !seen[v] && levels[k] <= LEVEL_MACHINE;
        if (v < n)
            seen[v] = true;
        if (k > 0) {
            ok &= levels[k] >= levels[k - 1];
            if (levels[k] == levels[k - 1])
                ok &= (v + n - worker) % n > (victims[k - 1] + n - worker) % n;
        }
    }
    if (!ok)
        fprintf(stderr, "\n  worker %u: victim list breaks an invariant\n", worker);
    CU_ASSERT(ok);
}

/* Checks the exact victims and levels of one worker (printing both lists on a mismatch). */
static void expect_victims(const pareng_plan *plan, unsigned worker, const unsigned *expected,
                           const unsigned *expected_levels, unsigned count)
{
    unsigned victims[PARENG_MAX_WORKERS], levels[PARENG_MAX_WORKERS];
    int n = pareng_plan_victims(plan, worker, victims, levels, PARENG_MAX_WORKERS);
    CU_ASSERT_EQUAL_FATAL(n, (int)count);
    bool ok = memcmp(victims, expected, count * sizeof *victims) == 0 &&
              memcmp(levels, expected_levels, count * sizeof *levels) == 0;
    if (!ok) {
        fprintf(stderr, "\n  worker %u victims (level): got", worker);
        for (unsigned k = 0; k < count; k++)
            fprintf(stderr, " %u(%u)", victims[k], levels[k]);
        fprintf(stderr, "\n  expected");
        for (unsigned k = 0; k < count; k++)
            fprintf(stderr, " %u(%u)", expected[k], expected_levels[k]);
        fprintf(stderr, "\n");
    }
    CU_ASSERT(ok);
}

/* How many of worker's victims are at `level`. */
static unsigned victims_at_level(const pareng_plan *plan, unsigned worker, unsigned level)
{
    unsigned victims[PARENG_MAX_WORKERS], levels[PARENG_MAX_WORKERS];
    int n = pareng_plan_victims(plan, worker, victims, levels, PARENG_MAX_WORKERS);
    CU_ASSERT_FATAL(n >= 0);
    unsigned count = 0;
    for (int k = 0; k < n; k++)
        count += levels[k] == level;
    return count;
}

/* ------------------------------------------------------------------------------------------
 * Placement by count
 * ---------------------------------------------------------------------------------------- */

static void test_auto_is_one_worker_per_core(void)
{
    pareng_plan *plan = plan_workers(SMALL_MACHINE, 0);
    CU_ASSERT_EQUAL(pareng_plan_cores(plan), SMALL_CORES);
    CU_ASSERT_EQUAL(pareng_plan_pus(plan), SMALL_PUS);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), SMALL_CORES);
    /* First PU of each core; cores 0-7 in package 0, 8-15 in package 1. */
    for (unsigned w = 0; w < SMALL_CORES; w++)
        expect_placement(plan, w, 2 * w, 2 * w, w, w / 8, false, false);
    pareng_plan_destroy(plan);
}

static void test_few_workers_are_placed_close(void)
{
    /* Close placement: the first cores in logical order, so all four share L3 L#0. */
    pareng_plan *plan = plan_workers(SMALL_MACHINE, 4);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 4);
    CU_ASSERT_EQUAL(pareng_plan_cores(plan), SMALL_CORES);
    for (unsigned w = 0; w < 4; w++)
        expect_placement(plan, w, 2 * w, 2 * w, w, 0, false, false);
    pareng_plan_destroy(plan);
}

static void test_more_workers_than_cores_use_smt_siblings(void)
{
    pareng_plan *plan = plan_workers(SMALL_MACHINE, 20);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 20);
    /* Every core once before any core twice; the cores that get a second worker (0-3) say
     * so, on both of their workers. */
    for (unsigned w = 0; w < SMALL_CORES; w++)
        expect_placement(plan, w, 2 * w, 2 * w, w, w / 8, w < 4, false);
    for (unsigned w = SMALL_CORES; w < 20; w++) {
        unsigned core = w - SMALL_CORES;
        expect_placement(plan, w, 2 * core + 1, 2 * core + 1, core, 0, true, false);
    }
    pareng_plan_destroy(plan);
}

static void test_one_worker_per_pu_shares_every_core(void)
{
    pareng_plan *plan = plan_workers(SMALL_MACHINE, SMALL_PUS);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), SMALL_PUS);
    for (unsigned w = 0; w < SMALL_CORES; w++) {
        expect_placement(plan, w, 2 * w, 2 * w, w, w / 8, true, false);
        expect_placement(plan, SMALL_CORES + w, 2 * w + 1, 2 * w + 1, w, w / 8, true, false);
    }
    pareng_plan_destroy(plan);
}

static void test_more_workers_than_pus_wrap_around(void)
{
    pareng_plan *plan = plan_workers(SMALL_MACHINE, 40);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 40);
    CU_ASSERT_EQUAL(pareng_plan_pus(plan), SMALL_PUS);
    /* The first 32 as with one worker per PU. Past the last PU placement goes on one worker
     * per core, starting again at each core's first PU: the 8 extra land on the first PUs of
     * cores 0-7 (PU L#0, 2, ..., 14), which become shared. */
    for (unsigned w = 0; w < SMALL_CORES; w++) {
        bool pu_twice = w < 8;
        expect_placement(plan, w, 2 * w, 2 * w, w, w / 8, true, pu_twice);
        expect_placement(plan, SMALL_CORES + w, 2 * w + 1, 2 * w + 1, w, w / 8, true, false);
    }
    for (unsigned w = SMALL_PUS; w < 40; w++) {
        unsigned core = w - SMALL_PUS;
        expect_placement(plan, w, 2 * core, 2 * core, core, 0, true, true);
    }
    pareng_plan_destroy(plan);
}

static void test_single_worker_has_no_victims(void)
{
    pareng_plan *plan = plan_workers(SMALL_MACHINE, 1);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 1);
    expect_placement(plan, 0, 0, 0, 0, 0, false, false);
    unsigned victim = 12345;
    CU_ASSERT_EQUAL(pareng_plan_victims(plan, 0, &victim, NULL, 1), 0);
    CU_ASSERT_EQUAL(victim, 12345);
    pareng_plan_destroy(plan);
}

static void test_worker_count_limits(void)
{
    /* PARENG_MAX_WORKERS is allowed even on 32 PUs (each PU 16 times), one more is not. */
    pareng_plan *plan = plan_workers(SMALL_MACHINE, PARENG_MAX_WORKERS);
    CU_ASSERT_EQUAL(pareng_plan_workers(plan), PARENG_MAX_WORKERS);
    expect_placement(plan, PARENG_MAX_WORKERS - 1, SMALL_PUS - 1, SMALL_PUS - 1,
                     SMALL_CORES - 1, 1, true, true);
    expect_victim_invariants(plan, 0);
    pareng_plan_destroy(plan);

    CU_ASSERT_EQUAL(plan_cpus_rc(SMALL_MACHINE, NULL, PARENG_MAX_WORKERS + 1), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "513"));
}

static void test_out_of_range_worker_is_refused(void)
{
    pareng_plan *plan = plan_workers(SMALL_MACHINE, 4);
    pareng_placement pl;
    unsigned victims[4];
    CU_ASSERT_EQUAL(pareng_plan_placement(plan, 4, &pl), -EINVAL);
    CU_ASSERT_EQUAL(pareng_plan_victims(plan, 4, victims, NULL, 4), -EINVAL);
    CU_ASSERT_EQUAL(pareng_plan_victims(plan, UINT32_MAX, victims, NULL, 4), -EINVAL);
    CU_ASSERT_EQUAL(pareng_plan_victim_groups(plan, 4, victims, 4), -EINVAL);
    pareng_plan_destroy(plan);
}

/* ------------------------------------------------------------------------------------------
 * Placement by CPU list
 * ---------------------------------------------------------------------------------------- */

static void test_os_cpu_list(void)
{
    pareng_plan *plan = plan_cpus(SMALL_MACHINE, "0,2-3");
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 3);
    /* P#2 and P#3 are the two PUs of core 1; P#0 is alone on core 0. */
    expect_placement(plan, 0, 0, 0, 0, 0, false, false);
    expect_placement(plan, 1, 2, 2, 1, 0, true, false);
    expect_placement(plan, 2, 3, 3, 1, 0, true, false);
    /* Listing the allowed set does not change what the machine has. */
    CU_ASSERT_EQUAL(pareng_plan_cores(plan), SMALL_CORES);
    CU_ASSERT_EQUAL(pareng_plan_pus(plan), SMALL_PUS);
    pareng_plan_destroy(plan);
}

static void test_cpu_list_keeps_its_order_and_repeats(void)
{
    /* Worker i goes to the i-th entry, in the list's order, and a repeated CPU is a shared
     * PU rather than an error. */
    pareng_plan *plan = plan_cpus(SMALL_MACHINE, "31,16,16");
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 3);
    expect_placement(plan, 0, 31, 31, 15, 1, false, false);
    expect_placement(plan, 1, 16, 16, 8, 1, true, true);
    expect_placement(plan, 2, 16, 16, 8, 1, true, true);
    pareng_plan_destroy(plan);
}

static void test_logical_core_list(void)
{
    pareng_plan *plan = plan_cpus(SMALL_MACHINE, "core:0-3");
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 4);
    for (unsigned w = 0; w < 4; w++)
        expect_placement(plan, w, 2 * w, 2 * w, w, 0, false, false);
    pareng_plan_destroy(plan);

    plan = plan_cpus(SMALL_MACHINE, "core:15,8");
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 2);
    expect_placement(plan, 0, 30, 30, 15, 1, false, false);
    expect_placement(plan, 1, 16, 16, 8, 1, false, false);
    pareng_plan_destroy(plan);
}

static void test_logical_pu_list(void)
{
    pareng_plan *plan = plan_cpus(SMALL_MACHINE, "pu:5,7");
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 2);
    /* PU L#5 and L#7: the second PUs of cores 2 and 3. */
    expect_placement(plan, 0, 5, 5, 2, 0, false, false);
    expect_placement(plan, 1, 7, 7, 3, 0, false, false);
    pareng_plan_destroy(plan);
}

static void test_cpu_list_with_matching_worker_count(void)
{
    CU_ASSERT_EQUAL(plan_cpus_rc(SMALL_MACHINE, "0,2-3", 3), 0);
    CU_ASSERT_EQUAL(plan_cpus_rc(SMALL_MACHINE, "0,2-3", 4), -EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "0,2-3"));
    CU_ASSERT_EQUAL(plan_cpus_rc(SMALL_MACHINE, "core:0-3", 2), -EINVAL);
}

static void test_malformed_cpu_lists_are_refused(void)
{
    static const char *const malformed[] = {
        "", "0,,1", "3-1", "x", "0-", "-1", "0,", ",0", " 0", "0 ", "1-2-3", "0;1", "0x1",
        "core:", "core:x", "core:1-0", "pu:", "pu:0,", "CORE:0", "core0", "sockets:0",
        "99999999999999999999",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
        int rc = plan_cpus_rc(SMALL_MACHINE, malformed[i], 0);
        if (rc != -EINVAL)
            fprintf(stderr, "\n  cpus '%s': %d, expected -EINVAL\n", malformed[i], rc);
        CU_ASSERT_EQUAL(rc, -EINVAL);
    }
}

/* The first PU of each core in [first, last] (SMALL_MACHINE: PU 2c of core c, package c / 8). */
static void expect_first_pus_of_cores(const pareng_plan *plan, unsigned first, unsigned last)
{
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), last - first + 1);
    for (unsigned c = first; c <= last; c++)
        expect_placement(plan, c - first, 2 * c, 2 * c, c, c / 8, false, false);
}

static void test_whole_packages(void)
{
    pareng_plan *plan = plan_cpus(SMALL_MACHINE, "package:1");
    expect_first_pus_of_cores(plan, 8, 15);
    pareng_plan_destroy(plan);
    plan = plan_cpus(SMALL_MACHINE, "socket:0"); /* likwid's and Slurm's word for it */
    expect_first_pus_of_cores(plan, 0, 7);
    pareng_plan_destroy(plan);
    plan = plan_cpus(SMALL_MACHINE, "package:all");
    expect_first_pus_of_cores(plan, 0, 15);
    pareng_plan_destroy(plan);
}

static void test_all_cores_and_pus(void)
{
    pareng_plan *plan = plan_cpus(SMALL_MACHINE, "core:all");
    expect_first_pus_of_cores(plan, 0, 15);
    pareng_plan_destroy(plan);
    plan = plan_cpus(SMALL_MACHINE, "pu:all");
    CU_ASSERT_EQUAL(pareng_plan_workers(plan), SMALL_PUS);
    for (unsigned w = 0; w < SMALL_PUS; w++)
        expect_placement(plan, w, w, w, w / 2, w / 16, true, false);
    pareng_plan_destroy(plan);
}

/* 2 packages of 2 NUMA nodes of 2 cores of 2 PUs: NUMA node n holds cores 2n, 2n + 1. */
#define NUMA_MACHINE "package:2 numa:2 core:2 pu:2"

static void test_whole_numa_nodes(void)
{
    pareng_plan *plan = plan_cpus(NUMA_MACHINE, "numa:2");
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 2);
    expect_placement(plan, 0, 8, 8, 4, 1, false, false);
    expect_placement(plan, 1, 10, 10, 5, 1, false, false);
    pareng_plan_destroy(plan);
    plan = plan_cpus(NUMA_MACHINE, "numanode:0-1,node:3");
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 6);
    expect_placement(plan, 5, 14, 14, 7, 1, false, false);
    pareng_plan_destroy(plan);
}

/* Items of several kinds in one list, in order; plain numbers continue the type before them. */
static void test_mixed_items(void)
{
    pareng_plan *plan = plan_cpus(SMALL_MACHINE, "core:3,5,pu:1,7,0");
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 5);
    expect_placement(plan, 0, 6, 6, 3, 0, true, false);
    expect_placement(plan, 1, 10, 10, 5, 0, false, false);
    expect_placement(plan, 2, 1, 1, 0, 0, true, false);
    expect_placement(plan, 3, 7, 7, 3, 0, true, false);
    expect_placement(plan, 4, 0, 0, 0, 0, true, false);
    pareng_plan_destroy(plan);
}

/* What hwloc-calc, taskset or likwid users may try: refused, and the message says why. */
static void test_other_tools_forms_are_refused_by_name(void)
{
    static const struct {
        const char *list, *said;
    } refused[] = {
        {"package:0.core:1", "nested"}, {"0x3", "bitmask"},   {"S0:0-1", "likwid"},
        {"N:0-3", "likwid"},            {"core:even", "even"}, {"pu:odd", "odd"},
        {"~0", "exclusion"},            {"l3:0", "TYPE"},      {"odd", "even and odd"},
        {"even", "even and odd"},
        /* and what the grammar alone said for: a range down, a fraction, a long number */
        {"3-1", "write the smaller number first"}, {"core:1-0", "write the smaller number first"},
        {"1.5", "whole numbers"},                   {"pu:99999999999", "at most 9 digits"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        CU_ASSERT_EQUAL(plan_cpus_rc(SMALL_MACHINE, refused[i].list, 0), -EINVAL);
        if (!strstr(pareng_last_error(), refused[i].said))
            fprintf(stderr, "\n  '%s': %s\n", refused[i].list, pareng_last_error());
        CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), refused[i].said));
    }
}

static void test_whole_objects_beyond_the_machine(void)
{
    CU_ASSERT_EQUAL(plan_cpus_rc(SMALL_MACHINE, "package:2", 0), -ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "package L#2"));
    CU_ASSERT_EQUAL(plan_cpus_rc("core:4 pu:2", "numa:1", 0), -ERANGE);
}

/* A NUMA node or a package smaller than a core (synthetic topologies may split one) gives no
 * worker, one per whole core inside: the message says so, and what to name instead (it said
 * the node was not one this process may use, though all CPUs were). */
static void test_objects_inside_a_core(void)
{
    static const struct {
        const char *topology, *list, *said;
    } split[] = {
        {"core:2 numa:2 pu:2", "numa:1", "numa L#1 holds no whole core, only part of core L#0: "
                                         "name its CPUs (2-3) or the core (core:0)"},
        {"core:2 numa:2 pu:2", "numa:all", "numa L#0 holds no whole core"},
        {"core:2 pack:2 pu:2", "package:3", "package L#3 holds no whole core, only part of "
                                            "core L#1: name its CPUs (6-7) or the core (core:1)"},
    };
    for (size_t i = 0; i < sizeof split / sizeof *split; i++) {
        CU_ASSERT_EQUAL(plan_cpus_rc(split[i].topology, split[i].list, 0), -ERANGE);
        if (!strstr(pareng_last_error(), split[i].said))
            fprintf(stderr, "\n  %s on %s: %s\n", split[i].list, split[i].topology,
                    pareng_last_error());
        CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), split[i].said));
    }
}

/* More cores than PARENG_MAX_WORKERS: auto takes the most it may, never more. */
static void test_more_cores_than_the_most_workers(void)
{
    pareng_plan *plan = plan_workers("package:2 core:300 pu:1", 0);
    CU_ASSERT_EQUAL(pareng_plan_workers(plan), PARENG_MAX_WORKERS);
    CU_ASSERT_EQUAL(pareng_plan_cores(plan), 600);
    pareng_plan_destroy(plan);
    CU_ASSERT_EQUAL(plan_cpus_rc("package:2 core:300 pu:1", "core:all", 0), -EINVAL);
}

static void test_cpus_beyond_the_machine_are_out_of_range(void)
{
    /* OS CPU 99 does not exist: the message names it and the CPUs that do. */
    CU_ASSERT_EQUAL(plan_cpus_rc(SMALL_MACHINE, "99", 0), -ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "99"));
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "0-31"));
    /* The first CPU past the end, inside a range that starts on the machine. */
    CU_ASSERT_EQUAL(plan_cpus_rc(SMALL_MACHINE, "30-32", 0), -ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "32"));
    CU_ASSERT_EQUAL(plan_cpus_rc(SMALL_MACHINE, "core:16", 0), -ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "core"));
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "16"));
    CU_ASSERT_EQUAL(plan_cpus_rc(SMALL_MACHINE, "pu:32", 0), -ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "32"));
    /* The last ones that exist are fine. */
    CU_ASSERT_EQUAL(plan_cpus_rc(SMALL_MACHINE, "31", 0), 0);
    CU_ASSERT_EQUAL(plan_cpus_rc(SMALL_MACHINE, "core:15", 0), 0);
    CU_ASSERT_EQUAL(plan_cpus_rc(SMALL_MACHINE, "pu:31", 0), 0);
}

/* ------------------------------------------------------------------------------------------
 * OS indexes that differ from logical ones
 * ---------------------------------------------------------------------------------------- */

/* Linux's usual numbering on an SMT machine: the first PUs of the 8 cores are P#0-7 and their
 * siblings P#8-15, so core c holds PU L#2c = P#c and PU L#2c+1 = P#c+8. */
#define LINUX_NUMBERED_MACHINE \
    "package:2 core:4 pu:2(indexes=0,8,1,9,2,10,3,11,4,12,5,13,6,14,7,15)"

static void test_os_and_logical_indexes_are_reported_apart(void)
{
    pareng_plan *plan = plan_workers(LINUX_NUMBERED_MACHINE, 10);
    CU_ASSERT_EQUAL(pareng_plan_cores(plan), 8);
    CU_ASSERT_EQUAL(pareng_plan_pus(plan), 16);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 10);
    for (unsigned w = 0; w < 8; w++)
        expect_placement(plan, w, w, 2 * w, w, w / 4, w < 2, false);
    /* The two extra workers are the siblings of cores 0 and 1: P#8 = L#1, P#9 = L#3. */
    expect_placement(plan, 8, 8, 1, 0, 0, true, false);
    expect_placement(plan, 9, 9, 3, 1, 0, true, false);
    pareng_plan_destroy(plan);
}

static void test_cpu_lists_on_permuted_indexes(void)
{
    /* A plain number is an OS index, as taskset means it: P#8 is core 0's second PU. */
    pareng_plan *plan = plan_cpus(LINUX_NUMBERED_MACHINE, "8,1");
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 2);
    expect_placement(plan, 0, 8, 1, 0, 0, false, false);
    expect_placement(plan, 1, 1, 2, 1, 0, false, false);
    pareng_plan_destroy(plan);

    /* "pu:" is logical: L#8 is the first PU of core 4, which the OS calls P#4. */
    plan = plan_cpus(LINUX_NUMBERED_MACHINE, "pu:8,1");
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 2);
    expect_placement(plan, 0, 4, 8, 4, 1, false, false);
    expect_placement(plan, 1, 8, 1, 0, 0, false, false);
    pareng_plan_destroy(plan);

    /* "core:" takes the core's first PU in logical order. */
    plan = plan_cpus(LINUX_NUMBERED_MACHINE, "core:7");
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 1);
    expect_placement(plan, 0, 7, 14, 7, 1, false, false);
    pareng_plan_destroy(plan);

    CU_ASSERT_EQUAL(plan_cpus_rc(LINUX_NUMBERED_MACHINE, "16", 0), -ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "0-15"));
}

static void test_os_indexes_with_holes(void)
{
    /* Only even OS numbers exist: P#1 is out of range although there are 8 PUs. */
    const char *even_machine = "core:4 pu:2(indexes=0,2,4,6,8,10,12,14)";
    CU_ASSERT_EQUAL(plan_cpus_rc(even_machine, "1", 0), -ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "CPU 1 "));
    pareng_plan *plan = plan_cpus(even_machine, "14,2");
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 2);
    /* a machine of no packages */
    expect_placement(plan, 0, 14, 7, 3, PARENG_NO_PACKAGE, false, false);
    expect_placement(plan, 1, 2, 1, 0, PARENG_NO_PACKAGE, false, false);
    pareng_plan_destroy(plan);

    plan = plan_workers(even_machine, 0);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 4);
    for (unsigned w = 0; w < 4; w++)
        expect_placement(plan, w, 4 * w, 2 * w, w, PARENG_NO_PACKAGE, false, false);
    pareng_plan_destroy(plan);
}

/* ------------------------------------------------------------------------------------------
 * Victim order
 * ---------------------------------------------------------------------------------------- */

static void test_victims_by_l3_package_machine(void)
{
    pareng_plan *plan = plan_workers(SMALL_MACHINE, 0);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), SMALL_CORES);
    /* No cache level between core and L3 in this description: L3 first, then the package,
     * then the other package. */
    static const unsigned victims_of_0[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const unsigned levels_of_0[] = {2, 2, 2, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5};
    expect_victims(plan, 0, victims_of_0, levels_of_0, 15);
    /* Worker 9 (package 1, L3 L#2 = cores 8-11): each group starts after 9 and wraps. */
    static const unsigned victims_of_9[] = {10, 11, 8, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7};
    static const unsigned levels_of_9[] = {2, 2, 2, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5};
    expect_victims(plan, 9, victims_of_9, levels_of_9, 15);
    /* Worker 6 (package 0, L3 L#1 = cores 4-7): its package's other L3 wraps too. */
    static const unsigned victims_of_6[] = {7, 4, 5, 0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15};
    static const unsigned levels_of_6[] = {2, 2, 2, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5};
    expect_victims(plan, 6, victims_of_6, levels_of_6, 15);
    for (unsigned w = 0; w < SMALL_CORES; w++)
        expect_victim_invariants(plan, w);
    pareng_plan_destroy(plan);
}

/* Dies and groups, which have no level of their own: a victim of the same die is of the same
 * package, and is labelled so (it was labelled "machine", farther than the package), and
 * still comes first, in a group of its own. */
static void test_victims_in_a_die_are_of_the_package(void)
{
    static const char *const descriptions[] = {"pack:2 die:2 core:2 pu:1",
                                               "pack:2 group:2 core:2 pu:1"};
    for (size_t k = 0; k < sizeof descriptions / sizeof *descriptions; k++) {
        pareng_plan *plan = plan_workers(descriptions[k], 0);
        CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 8);
        static const unsigned victims_of_0[] = {1, 2, 3, 4, 5, 6, 7};
        static const unsigned levels_of_0[] = {4, 4, 4, 5, 5, 5, 5};
        expect_victims(plan, 0, victims_of_0, levels_of_0, 7);
        /* the die first, then the package from 2 upwards: two groups of one level (the
         * invariants' one order per level does not hold here) */
        static const unsigned victims_of_1[] = {0, 2, 3, 4, 5, 6, 7};
        expect_victims(plan, 1, victims_of_1, levels_of_0, 7);
        static const unsigned victims_of_6[] = {7, 4, 5, 0, 1, 2, 3};
        expect_victims(plan, 6, victims_of_6, levels_of_0, 7);
        /* the groups tell the die's from the package's (pareng topo merged them) */
        unsigned groups[7];
        static const unsigned groups_of_0[] = {0, 1, 1, 2, 2, 2, 2};
        CU_ASSERT_EQUAL(pareng_plan_victim_groups(plan, 0, groups, 7), 7);
        CU_ASSERT_EQUAL(memcmp(groups, groups_of_0, sizeof groups), 0);
        pareng_plan_destroy(plan);
    }
}

static void test_victims_smt_sibling_first(void)
{
    pareng_plan *plan = plan_workers(SMALL_MACHINE, 20);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 20);
    /* Worker 16 is core 0's second PU. */
    static const unsigned victims_of_0[] = {16, 1, 2, 3, 17, 18, 19, 4, 5, 6,
                                            7,  8, 9, 10, 11, 12, 13, 14, 15};
    static const unsigned levels_of_0[] = {0, 2, 2, 2, 2, 2, 2, 4, 4, 4,
                                           4, 5, 5, 5, 5, 5, 5, 5, 5};
    expect_victims(plan, 0, victims_of_0, levels_of_0, 19);
    /* Worker 17 (core 1's second PU): sibling 1, then from 18 upwards and round. */
    static const unsigned victims_of_17[] = {1, 18, 19, 0, 2, 3, 16, 4, 5, 6,
                                             7, 8,  9,  10, 11, 12, 13, 14, 15};
    static const unsigned levels_of_17[] = {0, 2, 2, 2, 2, 2, 2, 4, 4, 4,
                                            4, 5, 5, 5, 5, 5, 5, 5, 5};
    expect_victims(plan, 17, victims_of_17, levels_of_17, 19);
    /* Worker 5 has its core alone: no level-0 victim; its package's other L3 holds cores
     * 0-3 with both their PUs taken (workers 0-3 and 16-19). */
    CU_ASSERT_EQUAL(victims_at_level(plan, 5, LEVEL_CORE), 0);
    CU_ASSERT_EQUAL(victims_at_level(plan, 5, LEVEL_L3), 3);
    CU_ASSERT_EQUAL(victims_at_level(plan, 5, LEVEL_PACKAGE), 8);
    CU_ASSERT_EQUAL(victims_at_level(plan, 5, LEVEL_MACHINE), 8);
    for (unsigned w = 0; w < 20; w++)
        expect_victim_invariants(plan, w);
    pareng_plan_destroy(plan);
}

static void test_victims_shared_l2(void)
{
    /* L2 shared by pairs of cores: 2 packages x 2 L3 x 2 L2 x 2 cores x 2 PUs. */
    pareng_plan *plan = plan_workers("package:2 l3:2 l2:2 core:2 pu:2", 0);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 16);
    static const unsigned victims_of_0[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const unsigned levels_of_0[] = {1, 2, 2, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5};
    expect_victims(plan, 0, victims_of_0, levels_of_0, 15);
    /* Worker 10 (L2 with 11, L3 with 8-11, package 1 = 8-15). */
    static const unsigned victims_of_10[] = {11, 8, 9, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7};
    static const unsigned levels_of_10[] = {1, 2, 2, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5};
    expect_victims(plan, 10, victims_of_10, levels_of_10, 15);
    for (unsigned w = 0; w < 16; w++)
        expect_victim_invariants(plan, w);
    pareng_plan_destroy(plan);
}

static void test_victims_numa_node(void)
{
    /* hwloc 2 attaches each NUMA node to a Group holding two L3s: per package 2 NUMA nodes x
     * 2 L3 x 2 cores, so a core has 1 L3 neighbour, 2 more in its node, 4 more in its
     * package. */
    pareng_plan *plan = plan_workers("package:2 numa:2 l3:2 core:2 pu:1", 0);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 16);
    CU_ASSERT_EQUAL(pareng_plan_pus(plan), 16);
    static const unsigned victims_of_0[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static const unsigned levels_of_0[] = {2, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5};
    expect_victims(plan, 0, victims_of_0, levels_of_0, 15);
    /* Worker 13: L3 with 12, NUMA node with 14-15, package with 8-11. */
    static const unsigned victims_of_13[] = {12, 14, 15, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5, 6, 7};
    static const unsigned levels_of_13[] = {2, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5};
    expect_victims(plan, 13, victims_of_13, levels_of_13, 15);
    for (unsigned w = 0; w < 16; w++)
        expect_victim_invariants(plan, w);
    pareng_plan_destroy(plan);
}

static void test_victims_numa_node_spanning_packages(void)
{
    /* Some VMs put one NUMA node over several packages: the same package is then nearer than
     * the same NUMA node, so it comes first although its level number is higher. */
    pareng_plan *plan = plan_workers("numa:2 package:2 core:2 pu:1", 0);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 8);
    static const unsigned victims_of_0[] = {1, 2, 3, 4, 5, 6, 7};
    static const unsigned levels_of_0[] = {LEVEL_PACKAGE, LEVEL_NUMA, LEVEL_NUMA, LEVEL_MACHINE,
                                           LEVEL_MACHINE, LEVEL_MACHINE, LEVEL_MACHINE};
    expect_victims(plan, 0, victims_of_0, levels_of_0, 7);
    static const unsigned victims_of_6[] = {7, 4, 5, 0, 1, 2, 3};
    static const unsigned levels_of_6[] = {LEVEL_PACKAGE, LEVEL_NUMA, LEVEL_NUMA, LEVEL_MACHINE,
                                           LEVEL_MACHINE, LEVEL_MACHINE, LEVEL_MACHINE};
    expect_victims(plan, 6, victims_of_6, levels_of_6, 7);
    pareng_plan_destroy(plan);
}

static void test_victims_numa_node_inside_l3(void)
{
    /* "numa:2 l3:1" makes each NUMA node one L3's: NUMA adds nothing to L3, so no victim is
     * ever level 3. */
    pareng_plan *plan = plan_workers("package:2 numa:2 l3:1 core:4 pu:1", 0);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 16);
    CU_ASSERT_EQUAL(victims_at_level(plan, 0, LEVEL_L3), 3);
    CU_ASSERT_EQUAL(victims_at_level(plan, 0, LEVEL_NUMA), 0);
    CU_ASSERT_EQUAL(victims_at_level(plan, 0, LEVEL_PACKAGE), 4);
    CU_ASSERT_EQUAL(victims_at_level(plan, 0, LEVEL_MACHINE), 8);
    pareng_plan_destroy(plan);
}

static void test_victims_without_cores(void)
{
    /* No Core objects at all: each PU counts as its own core (and reports its PU index as
     * the core's), so 8 workers and no level-0 victims. */
    pareng_plan *plan = plan_workers("package:2 pu:4", 0);
    CU_ASSERT_EQUAL(pareng_plan_cores(plan), 8);
    CU_ASSERT_EQUAL(pareng_plan_pus(plan), 8);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 8);
    for (unsigned w = 0; w < 8; w++)
        expect_placement(plan, w, w, w, w, w / 4, false, false);
    static const unsigned victims_of_5[] = {6, 7, 4, 0, 1, 2, 3};
    static const unsigned levels_of_5[] = {4, 4, 4, 5, 5, 5, 5};
    expect_victims(plan, 5, victims_of_5, levels_of_5, 7);
    pareng_plan_destroy(plan);
}

/* Nor packages: a worker has none (it had package 0, which package:0 refuses). */
static void test_placement_without_packages(void)
{
    pareng_plan *plan = plan_workers("pu:4", 0);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 4);
    for (unsigned w = 0; w < 4; w++)
        expect_placement(plan, w, w, w, w, PARENG_NO_PACKAGE, false, false);
    pareng_plan_destroy(plan);
    CU_ASSERT_EQUAL(plan_cpus_rc("pu:4", "package:0", 0), -ERANGE);
    CU_ASSERT_EQUAL(plan_cpus_rc("pu:4", "core:3", 0), 0);
}

static void test_victims_respect_max_and_null_levels(void)
{
    pareng_plan *plan = plan_workers(SMALL_MACHINE, 0);
    /* max smaller than the list: the first max entries, the full count returned, nothing
     * written past them. */
    unsigned victims[6] = {99, 99, 99, 99, 99, 99}, levels[6] = {99, 99, 99, 99, 99, 99};
    CU_ASSERT_EQUAL(pareng_plan_victims(plan, 9, victims, levels, 4), 15);
    static const unsigned first_victims[] = {10, 11, 8, 12, 99, 99};
    static const unsigned first_levels[] = {2, 2, 2, 4, 99, 99};
    CU_ASSERT_EQUAL(memcmp(victims, first_victims, sizeof victims), 0);
    CU_ASSERT_EQUAL(memcmp(levels, first_levels, sizeof levels), 0);
    /* levels may be NULL. */
    unsigned all[15];
    CU_ASSERT_EQUAL(pareng_plan_victims(plan, 9, all, NULL, 15), 15);
    CU_ASSERT_EQUAL(all[0], 10);
    CU_ASSERT_EQUAL(all[14], 7);
    /* max 0: only the count. */
    CU_ASSERT_EQUAL(pareng_plan_victims(plan, 9, NULL, NULL, 0), 15);
    unsigned groups[6] = {99, 99, 99, 99, 99, 99};
    CU_ASSERT_EQUAL(pareng_plan_victim_groups(plan, 9, groups, 4), 15);
    static const unsigned first_groups[] = {0, 0, 0, 1, 99, 99};
    CU_ASSERT_EQUAL(memcmp(groups, first_groups, sizeof groups), 0);
    CU_ASSERT_EQUAL(pareng_plan_victim_groups(plan, 9, NULL, 0), 15);
    pareng_plan_destroy(plan);
}

/* ------------------------------------------------------------------------------------------
 * A large machine
 * ---------------------------------------------------------------------------------------- */

static void test_large_machine_auto(void)
{
    pareng_plan *plan = plan_workers(LARGE_MACHINE, 0);
    CU_ASSERT_EQUAL(pareng_plan_cores(plan), LARGE_CORES);
    CU_ASSERT_EQUAL(pareng_plan_pus(plan), LARGE_PUS);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), LARGE_CORES);
    /* 32 cores per package. */
    expect_placement(plan, 0, 0, 0, 0, 0, false, false);
    expect_placement(plan, 31, 62, 62, 31, 0, false, false);
    expect_placement(plan, 32, 64, 64, 32, 1, false, false);
    expect_placement(plan, 77, 154, 154, 77, 2, false, false);
    expect_placement(plan, 127, 254, 254, 127, 3, false, false);
    /* Every worker: 7 others in its L3, 24 more in its package, 96 elsewhere. */
    for (unsigned w = 0; w < LARGE_CORES; w++) {
        expect_victim_invariants(plan, w);
        CU_ASSERT_EQUAL(victims_at_level(plan, w, LEVEL_CORE), 0);
        CU_ASSERT_EQUAL(victims_at_level(plan, w, LEVEL_L2), 0);
        CU_ASSERT_EQUAL(victims_at_level(plan, w, LEVEL_L3), 7);
        CU_ASSERT_EQUAL(victims_at_level(plan, w, LEVEL_NUMA), 0);
        CU_ASSERT_EQUAL(victims_at_level(plan, w, LEVEL_PACKAGE), 24);
        CU_ASSERT_EQUAL(victims_at_level(plan, w, LEVEL_MACHINE), 96);
    }
    /* Worker 100 (package 3 = 96-127, L3 = 96-103): its first and last victims. */
    unsigned victims[LARGE_CORES - 1], levels[LARGE_CORES - 1];
    CU_ASSERT_EQUAL_FATAL(pareng_plan_victims(plan, 100, victims, levels, LARGE_CORES - 1),
                          LARGE_CORES - 1);
    static const unsigned first_victims[] = {101, 102, 103, 96, 97, 98, 99, 104};
    static const unsigned first_levels[] = {2, 2, 2, 2, 2, 2, 2, 4};
    CU_ASSERT_EQUAL(memcmp(victims, first_victims, sizeof first_victims), 0);
    CU_ASSERT_EQUAL(memcmp(levels, first_levels, sizeof first_levels), 0);
    /* The package level is 104-127 (96-103 being the L3's), then the other packages from 0
     * (the first after 127, wrapping) to 95. */
    CU_ASSERT_EQUAL(victims[7 + 24 - 1], 127);
    CU_ASSERT_EQUAL(levels[7 + 24 - 1], LEVEL_PACKAGE);
    CU_ASSERT_EQUAL(victims[7 + 24], 0);
    CU_ASSERT_EQUAL(levels[7 + 24], LEVEL_MACHINE);
    CU_ASSERT_EQUAL(victims[LARGE_CORES - 2], 95);
    pareng_plan_destroy(plan);
}

static void test_large_machine_every_pu(void)
{
    pareng_plan *plan = plan_workers(LARGE_MACHINE, LARGE_PUS);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), LARGE_PUS);
    expect_placement(plan, 127, 254, 254, 127, 3, true, false);
    expect_placement(plan, 128, 1, 1, 0, 0, true, false);
    expect_placement(plan, 255, 255, 255, 127, 3, true, false);
    /* Sibling first, then 14 in the L3 (7 cores x 2 PUs), 48 in the package, 192 elsewhere. */
    unsigned victims[LARGE_PUS - 1], levels[LARGE_PUS - 1];
    CU_ASSERT_EQUAL_FATAL(pareng_plan_victims(plan, 0, victims, levels, LARGE_PUS - 1),
                          LARGE_PUS - 1);
    CU_ASSERT_EQUAL(victims[0], 128);
    CU_ASSERT_EQUAL(levels[0], LEVEL_CORE);
    CU_ASSERT_EQUAL(victims_at_level(plan, 0, LEVEL_CORE), 1);
    CU_ASSERT_EQUAL(victims_at_level(plan, 0, LEVEL_L3), 14);
    CU_ASSERT_EQUAL(victims_at_level(plan, 0, LEVEL_PACKAGE), 48);
    CU_ASSERT_EQUAL(victims_at_level(plan, 0, LEVEL_MACHINE), 192);
    expect_victim_invariants(plan, 0);
    expect_victim_invariants(plan, 200);
    pareng_plan_destroy(plan);
}

/* ------------------------------------------------------------------------------------------
 * XML topologies and level names
 * ---------------------------------------------------------------------------------------- */

/* Writes the synthetic topology `description` as an hwloc XML file (what `lstopo --input
 * description file.xml` does, without needing lstopo) into path, a mkstemp template. */
static void write_synthetic_xml(const char *description, char *path)
{
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    hwloc_topology_t topo;
    CU_ASSERT_FATAL(hwloc_topology_init(&topo) == 0);
    CU_ASSERT_FATAL(hwloc_topology_set_synthetic(topo, description) == 0);
    CU_ASSERT_FATAL(hwloc_topology_load(topo) == 0);
    CU_ASSERT_FATAL(hwloc_topology_export_xml(topo, path, 0) == 0);
    hwloc_topology_destroy(topo);
}

static void test_topology_xml(void)
{
    char path[] = "/tmp/pareng-test-topology-XXXXXX";
    write_synthetic_xml(LINUX_NUMBERED_MACHINE, path);
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.topology_xml = path;
    cfg.workers = 10;
    pareng_plan *plan = NULL;
    /* The explicit file wins over HWLOC_SYNTHETIC, which names another machine here. */
    int rc = plan_synthetic(&plan, SMALL_MACHINE, &cfg);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(pareng_plan_cores(plan), 8);
    CU_ASSERT_EQUAL(pareng_plan_pus(plan), 16);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(plan), 10);
    expect_placement(plan, 7, 7, 14, 7, 1, false, false);
    expect_placement(plan, 9, 9, 3, 1, 0, true, false);
    static const unsigned victims_of_9[] = {1, 0, 2, 3, 8, 4, 5, 6, 7};
    static const unsigned levels_of_9[] = {0, 4, 4, 4, 4, 5, 5, 5, 5};
    expect_victims(plan, 9, victims_of_9, levels_of_9, 9);
    pareng_plan_destroy(plan);

    cfg.workers = 0;
    cfg.cpus = "15";
    CU_ASSERT_EQUAL(pareng_plan_create(&plan, &cfg), 0);
    expect_placement(plan, 0, 15, 15, 7, 1, false, false);
    pareng_plan_destroy(plan);
    unlink(path);

    /* A file that does not exist (any more) is refused, named, and told apart from a bad
     * CPU list; so is a file that is not a topology. */
    cfg.cpus = NULL;
    CU_ASSERT_EQUAL(pareng_plan_create(&plan, &cfg), -ENOENT);
    CU_ASSERT_PTR_NULL(plan);
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), path));
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "No such file"));
    FILE *garbage = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(garbage);
    fputs("not a topology\n", garbage);
    fclose(garbage);
    CU_ASSERT_EQUAL(pareng_plan_create(&plan, &cfg), -EIO);
    CU_ASSERT_PTR_NULL(plan);
    unlink(path);
}

/* ---- this machine, through the per-user cache (engine/topology_cache.c) ------------------ */

/* Each test gets a cache directory of its own (XDG_CACHE_HOME), removed afterwards. */
static char cache_home[64];
static char cache_file[256];

static void cache_begin(void)
{
    snprintf(cache_home, sizeof cache_home, "/tmp/pareng-test-cache-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(cache_home));
    setenv("XDG_CACHE_HOME", cache_home, 1);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    for (char *c = host; *c; c++)
        if (*c == '/' || *c == '.')
            *c = '_';
    snprintf(cache_file, sizeof cache_file, "%s/pareng/topology-%s.xml", cache_home,
             host[0] ? host : "unknown");
}

static void cache_end(void)
{
    char command[128];
    snprintf(command, sizeof command, "rm -rf %s", cache_home);
    CU_ASSERT_EQUAL(system(command), 0);
    unsetenv("XDG_CACHE_HOME");
}

static pareng_plan *plan_this_machine(unsigned char cache, unsigned workers)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.topology_cache = cache;
    cfg.workers = workers;
    pareng_plan *plan = NULL;
    CU_ASSERT_EQUAL_FATAL(pareng_plan_create(&plan, &cfg), 0);
    CU_ASSERT_TRUE(pareng_plan_is_this_system(plan));
    return plan;
}

/* The same workers on the same PUs with the same victims: what a start does with a plan. */
static void expect_same_plan(const pareng_plan *a, const pareng_plan *b)
{
    CU_ASSERT_EQUAL_FATAL(pareng_plan_workers(a), pareng_plan_workers(b));
    CU_ASSERT_EQUAL(pareng_plan_cores(a), pareng_plan_cores(b));
    CU_ASSERT_EQUAL(pareng_plan_pus(a), pareng_plan_pus(b));
    unsigned n = pareng_plan_workers(a);
    for (unsigned w = 0; w < n; w++) {
        pareng_placement pa = placement_of(a, w), pb = placement_of(b, w);
        CU_ASSERT_EQUAL(memcmp(&pa, &pb, sizeof pa), 0);
        unsigned va[PARENG_MAX_WORKERS], vb[PARENG_MAX_WORKERS], la[PARENG_MAX_WORKERS],
            lb[PARENG_MAX_WORKERS];
        CU_ASSERT_EQUAL(pareng_plan_victims(a, w, va, la, PARENG_MAX_WORKERS),
                        pareng_plan_victims(b, w, vb, lb, PARENG_MAX_WORKERS));
        CU_ASSERT_EQUAL(memcmp(va, vb, (n - 1) * sizeof *va), 0);
        CU_ASSERT_EQUAL(memcmp(la, lb, (n - 1) * sizeof *la), 0);
    }
}

static ino_t cache_inode(void)
{
    struct stat st;
    return stat(cache_file, &st) == 0 ? st.st_ino : 0;
}

/* The first plan writes the cache (this user's, nobody else's); the next ones read it without
 * writing; every one of them equals the plan of a fresh discovery, however many workers. */
static void test_cache_is_written_then_read(void)
{
    cache_begin();
    pareng_plan *fresh = plan_this_machine(PARENG_TOPOLOGY_CACHE_OFF, 0);
    CU_ASSERT_EQUAL(cache_inode(), 0); /* off: nothing written */
    pareng_plan *first = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 0);
    ino_t written = cache_inode();
    CU_ASSERT_NOT_EQUAL_FATAL(written, 0);
    struct stat st;
    CU_ASSERT_EQUAL(stat(cache_file, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(st.st_uid, geteuid());
    char dir[300];
    snprintf(dir, sizeof dir, "%s/pareng", cache_home);
    CU_ASSERT_EQUAL(stat(dir, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);
    pareng_plan *cached = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 0);
    CU_ASSERT_EQUAL(cache_inode(), written); /* read, not written again */
    expect_same_plan(fresh, first);
    expect_same_plan(fresh, cached);
    pareng_plan_destroy(fresh);
    pareng_plan_destroy(first);
    pareng_plan_destroy(cached);
    fresh = plan_this_machine(PARENG_TOPOLOGY_CACHE_OFF, 5);
    cached = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 5);
    expect_same_plan(fresh, cached);
    pareng_plan_destroy(fresh);
    pareng_plan_destroy(cached);
    cache_end();
}

static void replace_in_cache(const char *from, const char *to)
{
    FILE *f = fopen(cache_file, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static char text[4 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *at = strstr(text, from);
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    CU_ASSERT_EQUAL_FATAL(strlen(from), strlen(to));
    memcpy(at, to, strlen(to));
    f = fopen(cache_file, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fwrite(text, 1, n, f);
    fclose(f);
}

/* A cache of other hardware (another boot, other online CPUs: here its key is edited) or a
 * damaged one (a changed byte, a truncated file) is not read: the machine is discovered
 * anew and the cache rewritten, and the plan is right. */
static void test_stale_or_damaged_cache_is_discovered_anew(void)
{
    static const struct {
        const char *from, *to;
    } edits[] = {{"online ", "online-"}, {"boot ", "boot-"}, {"hwloc ", "hwloc-"},
                 {"type=\"PU\"", "type=\"XU\""}, {"sum ", "sum-"}};
    cache_begin();
    pareng_plan *fresh = plan_this_machine(PARENG_TOPOLOGY_CACHE_OFF, 0);
    pareng_plan_destroy(plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 0));
    for (size_t k = 0; k <= sizeof edits / sizeof edits[0]; k++) {
        if (k < sizeof edits / sizeof edits[0]) {
            replace_in_cache(edits[k].from, edits[k].to);
        } else {
            CU_ASSERT_EQUAL(truncate(cache_file, 100), 0);
        }
        ino_t damaged = cache_inode();
        pareng_plan *plan = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 0);
        expect_same_plan(fresh, plan);
        pareng_plan_destroy(plan);
        CU_ASSERT_NOT_EQUAL(cache_inode(), damaged); /* rewritten */
        pareng_plan *again = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 0);
        ino_t rewritten = cache_inode();
        expect_same_plan(fresh, again);
        pareng_plan_destroy(again);
        CU_ASSERT_EQUAL(cache_inode(), rewritten); /* and read again */
    }
    pareng_plan_destroy(fresh);
    cache_end();
}

/* What this process may use is read at every start, never from the cache: a cache written
 * with both CPUs allowed, read by a process bound to one, plans for that one. */
static void test_cache_never_widens_the_allowed_cpus(void)
{
    cache_begin();
    pareng_plan_destroy(plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 0));
    CU_ASSERT_NOT_EQUAL(cache_inode(), 0);
    cpu_set_t before;
    CU_ASSERT_EQUAL_FATAL(sched_getaffinity(0, sizeof before, &before), 0);
    int last = -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &before))
            last = c;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(last, &one);
    CU_ASSERT_EQUAL_FATAL(sched_setaffinity(0, sizeof one, &one), 0);
    pareng_plan *fresh = plan_this_machine(PARENG_TOPOLOGY_CACHE_OFF, 0);
    pareng_plan *cached = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 0);
    sched_setaffinity(0, sizeof before, &before);
    CU_ASSERT_EQUAL(pareng_plan_workers(cached), 1);
    CU_ASSERT_EQUAL(placement_of(cached, 0).pu_os, (unsigned)last);
    expect_same_plan(fresh, cached);
    pareng_plan_destroy(fresh);
    pareng_plan_destroy(cached);
    cache_end();
}

/* The same with a cgroup cpuset, which hwloc reads (not the affinity): where this test may
 * make one (root, cgroup v1's cpuset hierarchy), a process confined to the last CPU plans for
 * it alone from a cache written for the whole machine; and a cache written by that confined
 * process gives the whole machine again to one that is not. Skipped elsewhere, saying so. */
static void test_cache_never_widens_a_cgroup_cpuset(void)
{
    char group[128], path[192];
    snprintf(group, sizeof group, "/sys/fs/cgroup/cpuset/pareng-test-%d", (int)getpid());
    if (mkdir(group, 0755) < 0) {
        printf("\n    skipped: cannot make a cgroup v1 cpuset here (%s)\n", strerror(errno));
        return;
    }
    cache_begin();
    pareng_plan *whole = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 0);
    unsigned pus = pareng_plan_pus(whole);
    pareng_plan_destroy(whole);
    pid_t child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) {
        char value[32];
        snprintf(value, sizeof value, "%u", pus - 1);
        snprintf(path, sizeof path, "%s/cpuset.cpus", group);
        FILE *f = fopen(path, "w");
        bool ok = f && fputs(value, f) >= 0 && fclose(f) == 0;
        snprintf(path, sizeof path, "%s/cpuset.mems", group);
        ok = ok && (f = fopen(path, "w")) && fputs("0", f) >= 0 && fclose(f) == 0;
        snprintf(path, sizeof path, "%s/tasks", group);
        ok = ok && (f = fopen(path, "w")) && fprintf(f, "%d", (int)getpid()) > 0 &&
             fclose(f) == 0;
        if (!ok)
            _exit(2);
        pareng_plan *fresh = plan_this_machine(PARENG_TOPOLOGY_CACHE_OFF, 0);
        pareng_plan *cached = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 0);
        expect_same_plan(fresh, cached);
        bool confined = pareng_plan_pus(cached) == 1;
        pareng_plan_destroy(cached);
        unlink(cache_file); /* written anew from in here */
        cached = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 0);
        expect_same_plan(fresh, cached);
        _exit(CU_get_number_of_failures() == 0 && confined && pareng_plan_pus(cached) == 1 &&
                      access(cache_file, F_OK) == 0
                  ? 0
                  : 1);
    }
    int status;
    CU_ASSERT_EQUAL(waitpid(child, &status, 0), child);
    CU_ASSERT(WIFEXITED(status));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
        printf("\n    skipped: cannot confine a process to a cgroup cpuset here\n");
    else {
        CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
        pareng_plan *fresh = plan_this_machine(PARENG_TOPOLOGY_CACHE_OFF, 0);
        pareng_plan *cached = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 0);
        CU_ASSERT_EQUAL(pareng_plan_pus(cached), pus);
        expect_same_plan(fresh, cached);
        pareng_plan_destroy(fresh);
        pareng_plan_destroy(cached);
    }
    CU_ASSERT_EQUAL(rmdir(group), 0);
    cache_end();
}

/* Files another user could have planted, or written: a symbolic link is never followed (its
 * target stays as it is), a directory or file others may write is neither read nor written;
 * the plan is right in every case. So is a cache while HWLOC_* variables change hwloc's
 * discovery: then none is read or written. */
static void test_planted_cache_files_are_ignored(void)
{
    cache_begin();
    pareng_plan *fresh = plan_this_machine(PARENG_TOPOLOGY_CACHE_OFF, 0);
    char dir[300], target[300];
    snprintf(dir, sizeof dir, "%s/pareng", cache_home);
    snprintf(target, sizeof target, "%s/target", cache_home);
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    FILE *f = fopen(target, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("untouched\n", f);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(symlink(target, cache_file), 0);
    pareng_plan *plan = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 0);
    expect_same_plan(fresh, plan);
    pareng_plan_destroy(plan);
    char text[32] = "";
    f = fopen(target, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL(fgets(text, sizeof text, f));
    fclose(f);
    CU_ASSERT_STRING_EQUAL(text, "untouched\n");
    struct stat st;
    CU_ASSERT_EQUAL(lstat(cache_file, &st), 0);
    CU_ASSERT_FALSE(S_ISLNK(st.st_mode)); /* replaced by a file of its own */

    CU_ASSERT_EQUAL(chmod(cache_file, 0666), 0); /* others may write it: not read */
    ino_t writable = cache_inode();
    plan = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 0);
    expect_same_plan(fresh, plan);
    pareng_plan_destroy(plan);
    CU_ASSERT_NOT_EQUAL(cache_inode(), writable);

    unlink(cache_file);
    CU_ASSERT_EQUAL(chmod(dir, 0777), 0); /* others may write the directory: not used */
    plan = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 0);
    expect_same_plan(fresh, plan);
    pareng_plan_destroy(plan);
    CU_ASSERT_EQUAL(cache_inode(), 0);
    CU_ASSERT_EQUAL(chmod(dir, 0700), 0);

    setenv("HWLOC_HIDE_ERRORS", "1", 1); /* any HWLOC_* but the plugin list */
    plan = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 0);
    unsetenv("HWLOC_HIDE_ERRORS");
    expect_same_plan(fresh, plan);
    pareng_plan_destroy(plan);
    CU_ASSERT_EQUAL(cache_inode(), 0);
    pareng_plan_destroy(fresh);
    cache_end();
}

/* pareng_plan_topology's objects, field by field */
static void expect_same_topology(const pareng_plan *a, const pareng_plan *b)
{
    int n = pareng_plan_topology(a, NULL, 0);
    CU_ASSERT_FATAL(n > 0);
    CU_ASSERT_EQUAL_FATAL(pareng_plan_topology(b, NULL, 0), n);
    pareng_topo_object *x = calloc((size_t)n, sizeof *x), *y = calloc((size_t)n, sizeof *y);
    CU_ASSERT_FATAL(x && y);
    CU_ASSERT_EQUAL(pareng_plan_topology(a, x, (unsigned)n), n);
    CU_ASSERT_EQUAL(pareng_plan_topology(b, y, (unsigned)n), n);
    for (int i = 0; i < n; i++) {
        CU_ASSERT_STRING_EQUAL(x[i].type, y[i].type);
        CU_ASSERT_STRING_EQUAL(x[i].model, y[i].model);
        CU_ASSERT_EQUAL(x[i].nesting, y[i].nesting);
        CU_ASSERT_EQUAL(x[i].logical, y[i].logical);
        CU_ASSERT_EQUAL(x[i].os, y[i].os);
        CU_ASSERT_EQUAL(x[i].bytes, y[i].bytes);
        CU_ASSERT_EQUAL(x[i].allowed, y[i].allowed);
        CU_ASSERT_EQUAL(x[i].worker, y[i].worker);
    }
    free(x);
    free(y);
}

static size_t read_cache(char *text, size_t size)
{
    FILE *f = fopen(cache_file, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    size_t n = fread(text, 1, size, f);
    fclose(f);
    return n;
}

static unsigned plans_in_cache(void)
{
    static char text[1 << 20];
    size_t n = read_cache(text, sizeof text);
    unsigned count = 0;
    for (const char *at = text; (at = memmem(at, n - (size_t)(at - text), "workers ", 8)); at++)
        count++;
    return count;
}

/* The plans made on the cached XML are kept with it, each under its key: a start with the
 * same configuration finds its plan there (the file is not written again), one with another
 * configuration adds its own, the newest 8 are kept, and every one of them equals a fresh
 * plan, and so does the topology of a kept plan, loaded when it is asked for. */
static void test_plans_are_kept_with_the_topology(void)
{
    cache_begin();
    for (unsigned workers = 0; workers <= 12; workers++) {
        pareng_plan *fresh = plan_this_machine(PARENG_TOPOLOGY_CACHE_OFF, workers);
        pareng_plan *first = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, workers);
        ino_t written = cache_inode();
        CU_ASSERT_NOT_EQUAL(written, 0);
        pareng_plan *kept = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, workers);
        CU_ASSERT_EQUAL(cache_inode(), written);
        expect_same_plan(fresh, first);
        expect_same_plan(fresh, kept);
        expect_same_topology(fresh, kept);
        pareng_plan_destroy(fresh);
        pareng_plan_destroy(first);
        pareng_plan_destroy(kept);
        CU_ASSERT_EQUAL(plans_in_cache(), workers < 8 ? workers + 1 : 8);
    }
    cache_end();
}

/* The cache's text written back with the checksum its edited text has, as a planted file would
 * be (the key line ends at the second newline, the sum line at the third). */
static void write_cache_summed(char *text, size_t n)
{
    char *key = strchr(text, '\n') + 1, *sum = strchr(key, '\n') + 1;
    char *body = strchr(sum, '\n') + 1;
    char sum_line[32];
    snprintf(sum_line, sizeof sum_line, "sum %016llx\n",
             (unsigned long long)pareng__topology_cache_sum(key, (size_t)(sum - key), body,
                                                            (size_t)(text + n - body)));
    memcpy(sum, sum_line, strlen(sum_line));
    FILE *f = fopen(cache_file, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fwrite(text, 1, n, f);
    fclose(f);
}

/* A kept plan is this user's and checksummed, and still checked before it is used: one whose
 * worker sits on a CPU this process may not use, or robs itself, with a valid checksum, is made
 * anew (and the file rewritten), and the plan is right. */
static void test_implausible_kept_plans_are_made_anew(void)
{
    cache_begin();
    pareng_plan *fresh = plan_this_machine(PARENG_TOPOLOGY_CACHE_OFF, 2);
    for (int edit = 0; edit < 2; edit++) {
        pareng_plan_destroy(plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 2));
        static char text[1 << 20];
        size_t n = read_cache(text, sizeof text);
        char *body = strchr(strchr(strchr(text, '\n') + 1, '\n') + 1, '\n') + 1;
        char *record = memmem(text, n, "workers 2 cpus - pareng ", 24), *line = record;
        CU_ASSERT_PTR_NOT_NULL_FATAL(record);
        while (line > body && memcmp(line, "plan ", 5)) /* its "plan KEY_LEN PLAN_LEN" line */
            line--;
        size_t key_len = 0, plan_len = 0;
        CU_ASSERT_EQUAL_FATAL(sscanf(line, "plan %zu %zu", &key_len, &plan_len), 2);
        char *head = record + key_len; /* the plan: 4 uint32_t, the placements, the victims */
        unsigned bad = edit == 0 ? 999 : 0; /* a PU outside the affinity; worker 0 as its own victim */
        size_t offset = edit == 0 ? 16 : 16 + 2 * sizeof(pareng_placement);
        CU_ASSERT_FATAL(offset + sizeof bad <= plan_len);
        memcpy(head + offset, &bad, sizeof bad);
        write_cache_summed(text, n);
        ino_t planted = cache_inode();
        pareng_plan *plan = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, 2);
        expect_same_plan(fresh, plan);
        pareng_plan_destroy(plan);
        CU_ASSERT_NOT_EQUAL(cache_inode(), planted);
    }
    pareng_plan_destroy(fresh);
    cache_end();
}

/* The plan for `workers` from the cache that a plan for `written_for` workers wrote and `edit`
 * changed (returning the text's new length), its checksum made valid again, as a planted file
 * would be: the same as a fresh plan, and the file rewritten. */
static void expect_a_planted_cache_planned_anew(unsigned written_for, unsigned workers,
                                               size_t (*edit)(char *text, size_t n))
{
    cache_begin();
    pareng_plan *fresh = plan_this_machine(PARENG_TOPOLOGY_CACHE_OFF, workers);
    pareng_plan_destroy(plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, written_for));
    static char text[1 << 20];
    size_t n = edit(text, read_cache(text, sizeof text));
    write_cache_summed(text, n);
    ino_t planted = cache_inode();
    pareng_plan *plan = plan_this_machine(PARENG_TOPOLOGY_CACHE_AUTO, workers);
    CU_ASSERT_PTR_NOT_NULL(plan);
    if (plan) {
        CU_ASSERT_EQUAL(pareng_plan_workers(plan), pareng_plan_workers(fresh));
        expect_same_plan(fresh, plan);
    }
    pareng_plan_destroy(plan);
    CU_ASSERT_NOT_EQUAL(cache_inode(), planted);
    pareng_plan_destroy(fresh);
    cache_end();
}

/* The 1-worker plan's key made the 2-worker one's. */
static size_t keep_under_another_request(char *text, size_t n)
{
    char *key = memmem(text, n, "workers 1 cpus - pareng ", 24);
    CU_ASSERT_PTR_NOT_NULL_FATAL(key);
    key[8] = '2';
    return n;
}

/* A root element hwloc refuses, and no kept plan (the records follow the XML), so that the
 * plan must come from the topology. */
static size_t break_the_xml(char *text, size_t n)
{
    char *root = memmem(text, n, "<topology", 9);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    memcpy(root, "<topolxgy", 9);
    char *end = memmem(text, n, "</topology>", 11);
    CU_ASSERT_PTR_NOT_NULL_FATAL(end);
    char *plans = memmem(end, (size_t)(text + n - end), "plan ", 5);
    return plans ? (size_t)(plans - text) : n;
}

/* A kept plan under another request's key (a 1-worker plan kept as the plan for 2 workers)
 * was used as it was: `-c 2` ran 1 worker. Its worker count is checked against the
 * request's. */
static void test_a_kept_plan_for_another_request_is_made_anew(void)
{
    expect_a_planted_cache_planned_anew(1, 2, keep_under_another_request);
}

/* XML that hwloc will not load: the start failed with hwloc's error, which did not name the
 * cache, until the file was deleted. The machine is discovered instead. */
static void test_a_cache_hwloc_cannot_load_is_discovered_anew(void)
{
    expect_a_planted_cache_planned_anew(0, 0, break_the_xml);
}

static void test_level_names(void)
{
    static const char *const names[] = {"core", "L2", "L3", "NUMA", "package", "machine"};
    for (unsigned level = 0; level < 6; level++)
        CU_ASSERT_STRING_EQUAL(pareng_plan_level_name(level), names[level]);
    CU_ASSERT_STRING_EQUAL(pareng_plan_level_name(6), "?");
    CU_ASSERT_STRING_EQUAL(pareng_plan_level_name(UINT32_MAX), "?");
}

int main(void)
{
    CU_TestInfo by_count[] = {
        {"auto: one worker per core, first PU", test_auto_is_one_worker_per_core},
        {"4 workers: first 4 cores", test_few_workers_are_placed_close},
        {"20 workers: SMT siblings after every core", test_more_workers_than_cores_use_smt_siblings},
        {"32 workers: every PU once", test_one_worker_per_pu_shares_every_core},
        {"40 workers: wrap around the PUs", test_more_workers_than_pus_wrap_around},
        {"1 worker: no victims", test_single_worker_has_no_victims},
        {"worker count limits", test_worker_count_limits},
        {"out-of-range worker refused", test_out_of_range_worker_is_refused},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo by_list[] = {
        {"OS CPU list", test_os_cpu_list},
        {"list order and repeats", test_cpu_list_keeps_its_order_and_repeats},
        {"core: list", test_logical_core_list},
        {"pu: list", test_logical_pu_list},
        {"workers must match the list", test_cpu_list_with_matching_worker_count},
        {"malformed lists: -EINVAL", test_malformed_cpu_lists_are_refused},
        {"CPUs beyond the machine: -ERANGE", test_cpus_beyond_the_machine_are_out_of_range},
        {"package:N, socket:N, package:all", test_whole_packages},
        {"core:all, pu:all", test_all_cores_and_pus},
        {"numa:N", test_whole_numa_nodes},
        {"mixed items", test_mixed_items},
        {"hwloc-calc, taskset, likwid forms refused by name", test_other_tools_forms_are_refused_by_name},
        {"whole objects beyond the machine: -ERANGE", test_whole_objects_beyond_the_machine},
        {"more cores than the most workers", test_more_cores_than_the_most_workers},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo os_indexes[] = {
        {"OS and logical indexes apart", test_os_and_logical_indexes_are_reported_apart},
        {"lists on permuted indexes", test_cpu_lists_on_permuted_indexes},
        {"OS indexes with holes", test_os_indexes_with_holes},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo victims[] = {
        {"L3, package, machine", test_victims_by_l3_package_machine},
        {"SMT sibling first", test_victims_smt_sibling_first},
        {"shared L2", test_victims_shared_l2},
        {"NUMA node", test_victims_numa_node},
        {"NUMA node inside an L3", test_victims_numa_node_inside_l3},
        {"NUMA node spanning packages", test_victims_numa_node_spanning_packages},
        {"topology without cores", test_victims_without_cores},
        {"topology without packages", test_placement_without_packages},
        {"NUMA nodes and packages inside a core", test_objects_inside_a_core},
        {"max and NULL levels", test_victims_respect_max_and_null_levels},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo large[] = {
        {"128 cores auto", test_large_machine_auto},
        {"256 workers, every PU", test_large_machine_every_pu},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo misc[] = {
        {"topology_xml", test_topology_xml},
        {"level names", test_level_names},
        {"victims in a die or group are of the package", test_victims_in_a_die_are_of_the_package},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo cache[] = {
        {"written, then read", test_cache_is_written_then_read},
        {"stale or damaged: discovered anew", test_stale_or_damaged_cache_is_discovered_anew},
        {"never widens the allowed CPUs", test_cache_never_widens_the_allowed_cpus},
        {"never widens a cgroup cpuset", test_cache_never_widens_a_cgroup_cpuset},
        {"planted files ignored", test_planted_cache_files_are_ignored},
        {"plans kept with the topology", test_plans_are_kept_with_the_topology},
        {"a kept plan for another request made anew",
         test_a_kept_plan_for_another_request_is_made_anew},
        {"a cache hwloc cannot load: discovered anew",
         test_a_cache_hwloc_cannot_load_is_discovered_anew},
        {"implausible kept plans made anew", test_implausible_kept_plans_are_made_anew},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("placement by count", by_count),
        TESTING_SUITE("placement by CPU list", by_list),
        TESTING_SUITE("OS vs logical indexes", os_indexes),
        TESTING_SUITE("victim order", victims),
        TESTING_SUITE("large machine", large),
        TESTING_SUITE("XML and names", misc),
        TESTING_SUITE("this machine's cached topology", cache),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
