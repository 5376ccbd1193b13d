/*
 * test_topo_cli.c - `pareng topo` as a user runs it ($PARENG_BIN, through tests/cli_harness.h):
 * the tree, the placement table and the victim lines on synthetic topologies (hwloc reads
 * HWLOC_SYNTHETIC itself, so this machine's shape does not matter), the same through an XML
 * file, --json that parses, PUs this process may not use, and bad input refused with status 2.
 */
#include "cli_harness.h"
#include "pareng.h"

#include <hwloc.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 2 packages x 2 L3 x 4 cores x 2 PUs: 16 cores, 32 PUs, 16 workers by default. */
#define SMALL "package:2 l3:2 core:4 pu:2"
/* 4 packages x 4 L3 x 8 cores x 2 PUs: 128 workers by default. */
#define LARGE "package:4 l3:4 core:8 pu:2"

static void synthetic_begin(const char *description)
{
    setenv("HWLOC_SYNTHETIC", description, 1);
}

static command *synthetic_end(command *c)
{
    unsetenv("HWLOC_SYNTHETIC");
    return c;
}

/* Runs `pareng ARGS...` on a synthetic topology: the child inherits the variable. */
#define RUN_ON(description, ...) \
    (synthetic_begin(description), synthetic_end(RUN(__VA_ARGS__)))

/* Index of the first line of text that is exactly `line`, or -1 (then says what was there). */
static int line_index(const char *text, const char *line)
{
    size_t len = strlen(line);
    int index = 0;
    for (const char *p = text; *p; index++) {
        if (strncmp(p, line, len) == 0 && (p[len] == '\n' || p[len] == '\0'))
            return index;
        const char *next = strchr(p, '\n');
        if (!next)
            break;
        p = next + 1;
    }
    fprintf(stderr, "\nno line '%s' in:\n%.2000s\n", line, text);
    return -1;
}

static bool has_line(const char *text, const char *line)
{
    return line_index(text, line) >= 0;
}

/* Lines `worker N: ...` of the victim section. */
static unsigned victim_lines(const char *text)
{
    unsigned n = 0, worker;
    char colon;
    for (const char *p = text; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        n += sscanf(p, "worker %u%c", &worker, &colon) == 2 && colon == ':';
    return n;
}

/* The placement table: its title, its header, then one row per worker, each checked against
 * the PU, core and package the worker must have (PU P# = PU L# on synthetic topologies). */
static void assert_placement_rows(const command *c, const char *title, unsigned workers,
                                  const unsigned *pu, const unsigned *core,
                                  const unsigned *package, const char *const *shared)
{
    int first = line_index(c->out, title);
    CU_ASSERT_FATAL(first >= 0);
    char line[256];
    CU_ASSERT(line_of(c->out, (unsigned)first + 1, line, sizeof line) &&
              strcmp(line, "worker  PU L#  PU P#  core L#  package L#  shared") == 0);
    for (unsigned w = 0; w < workers; w++) {
        unsigned got[5] = {0};
        char flag[16] = "";
        CU_ASSERT_FATAL(line_of(c->out, (unsigned)first + 2 + w, line, sizeof line));
        bool ok = sscanf(line, "%u %u %u %u %u %15s", &got[0], &got[1], &got[2], &got[3],
                         &got[4], flag) == 6 &&
                  got[0] == w && got[1] == pu[w] && got[2] == pu[w] && got[3] == core[w] &&
                  got[4] == package[w] && strcmp(flag, shared[w]) == 0;
        if (!ok)
            fprintf(stderr, "\nworker %u: row '%s', expected PU %u, core %u, package %u, %s\n",
                    w, line, pu[w], core[w], package[w], shared[w]);
        CU_ASSERT(ok);
    }
}

/* ---- text ------------------------------------------------------------------------------ */

static void test_small_auto(void)
{
    command *c = RUN_ON(SMALL, "topo");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT_EQUAL(c->err_len, 0);
    char line[256];
    CU_ASSERT(line_of(c->out, 0, line, sizeof line) &&
              strcmp(line, "2 packages, 16 cores, 32 PUs (16 cores / 32 PUs allowed)") == 0);
    CU_ASSERT(line_of(c->out, 1, line, sizeof line) && strncmp(line, "not this machine", 16) == 0);
    /* the tree: nesting by two spaces, lstopo's names, sizes in binary units */
    CU_ASSERT(has_line(c->out, "Machine (1GiB total)"));
    CU_ASSERT(has_line(c->out, "  NUMANode L#0 (P#0 1GiB)"));
    CU_ASSERT(has_line(c->out, "  Package L#1 (P#1)"));
    CU_ASSERT(has_line(c->out, "    L3 L#3 (16MiB)"));
    CU_ASSERT(has_line(c->out, "      Core L#5 (P#5)"));
    CU_ASSERT(has_line(c->out, "        PU L#31 (P#31)"));
    /* auto: one worker per core, on its first PU */
    CU_ASSERT(has_line(c->out, "        PU L#0 (P#0)  <- worker 0"));
    CU_ASSERT(has_line(c->out, "        PU L#1 (P#1)"));
    CU_ASSERT(has_line(c->out, "        PU L#30 (P#30)  <- worker 15"));
    CU_ASSERT_PTR_NULL(strstr(c->out, "not allowed"));

    unsigned pu[16], core[16], package[16];
    const char *shared[16];
    for (unsigned w = 0; w < 16; w++) {
        pu[w] = 2 * w;
        core[w] = w;
        package[w] = w / 8;
        shared[w] = "-";
    }
    assert_placement_rows(c, "placement (--cores auto): 16 workers", 16, pu, core, package,
                          shared);

    CU_ASSERT(has_line(c->out, "victims, nearest first:"));
    CU_ASSERT(has_line(c->out,
                       "worker 0: L3: 1 2 3 | package: 4 5 6 7 | machine: 8 9 10 11 12 13 14 15"));
    CU_ASSERT(has_line(c->out, "worker 13: L3: 14 15 12 | package: 8 9 10 11 | machine: 0 1 2 3 4 "
                               "5 6 7"));
    CU_ASSERT_EQUAL(victim_lines(c->out), 16);
    command_free(c);
}

/* `--cores 4` (a count) and `--cores core:0-3` (a list) both take the first four cores. */
static void test_small_four_workers(void)
{
    static const char *const values[] = {"4", "core:0-3"};
    for (unsigned i = 0; i < 2; i++) {
        command *c = RUN_ON(SMALL, "topo", "--cores", values[i]);
        CU_ASSERT(exited_with(c, 0));
        CU_ASSERT_EQUAL(c->err_len, 0);
        CU_ASSERT(has_line(c->out, "2 packages, 16 cores, 32 PUs (16 cores / 32 PUs allowed)"));
        CU_ASSERT(has_line(c->out, "        PU L#6 (P#6)  <- worker 3"));
        CU_ASSERT(has_line(c->out, "        PU L#8 (P#8)"));
        unsigned pu[] = {0, 2, 4, 6}, core[] = {0, 1, 2, 3}, package[] = {0, 0, 0, 0};
        const char *shared[] = {"-", "-", "-", "-"};
        char title[64];
        snprintf(title, sizeof title, "placement (--cores %s): 4 workers", values[i]);
        assert_placement_rows(c, title, 4, pu, core, package, shared);
        CU_ASSERT(has_line(c->out, "worker 0: L3: 1 2 3"));
        CU_ASSERT(has_line(c->out, "worker 3: L3: 0 1 2"));
        CU_ASSERT_EQUAL(victim_lines(c->out), 4);
        command_free(c);
    }
}

/* Workers that share a core (two PUs of core 0) or a PU (more workers than PUs). */
static void test_small_sharing(void)
{
    command *c = RUN_ON(SMALL, "topo", "--cores", "pu:0-1");
    CU_ASSERT(exited_with(c, 0));
    unsigned pu[] = {0, 1}, core[] = {0, 0}, package[] = {0, 0};
    const char *shared[] = {"core", "core"};
    assert_placement_rows(c, "placement (--cores pu:0-1): 2 workers", 2, pu, core, package,
                          shared);
    CU_ASSERT(has_line(c->out, "worker 0: core: 1"));
    CU_ASSERT(has_line(c->out, "worker 1: core: 0"));
    command_free(c);

    /* 40 workers on 32 PUs: one per core, then the second PUs, then each core's first again */
    c = RUN_ON(SMALL, "topo", "--cores", "40");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(has_line(c->out, "        PU L#0 (P#0)  <- workers 0, 32"));
    CU_ASSERT(has_line(c->out, "        PU L#1 (P#1)  <- worker 16"));
    CU_ASSERT(has_line(c->out, "        PU L#16 (P#16)  <- worker 8"));
    CU_ASSERT_EQUAL(victim_lines(c->out), 40);
    const char *row = strstr(c->out, "\n    32      0      0        0           0  PU\n");
    CU_ASSERT_PTR_NOT_NULL(row);
    command_free(c);

    /* one worker steals from nobody */
    c = RUN_ON(SMALL, "topo", "--cores", "1");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(has_line(c->out, "worker 0: none"));
    command_free(c);
}

/* A die (or an hwloc group) has no level of its own: its victims are named package, and
 * still form a group before the rest of the package (they were printed as one). */
static void test_die_victims(void)
{
    command *c = RUN_ON("pack:2 die:2 core:2 pu:1", "topo");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(has_line(c->out, "worker 0: package: 1 | package: 2 3 | machine: 4 5 6 7"));
    CU_ASSERT(has_line(c->out, "worker 6: package: 7 | package: 4 5 | machine: 0 1 2 3"));
    command_free(c);
    c = RUN_ON("group:2 pack:2 core:2 pu:1", "topo");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(has_line(c->out, "worker 0: package: 1 | machine: 2 3 | machine: 4 5 6 7"));
    command_free(c);
}

/* No Core and no Package objects (hwloc-calc calls both types unavailable): each PU is its
 * own core, as for --cores, and no worker has a package (it showed package 0, which
 * --cores package:0 refused). */
static void test_without_packages_or_cores(void)
{
    command *c = RUN_ON("pu:4", "topo");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(has_line(c->out, "4 PUs (4 cores / 4 PUs allowed)"));
    CU_ASSERT(has_line(c->out, "placement (--cores auto): 4 workers"));
    CU_ASSERT(has_line(c->out, "     2      2      2        2           -  -"));
    command_free(c);
    c = RUN_ON("pu:4", "topo", "--json");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(contains(c->out, "{\"worker\":3,\"pu_logical\":3,\"pu_os\":3,\"core\":3,"
                               "\"package\":null,"));
    command_free(c);
    synthetic_begin("pu:4");
    CHECK_BAD_INPUT({{"topo", "--cores", "package:0"}, {"no package objects"}});
    synthetic_end(NULL);
}

static void test_large(void)
{
    command *c = RUN_ON(LARGE, "topo");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT_EQUAL(c->err_len, 0);
    CU_ASSERT(has_line(c->out, "4 packages, 128 cores, 256 PUs (128 cores / 256 PUs allowed)"));
    CU_ASSERT(has_line(c->out, "  Package L#3 (P#3)"));
    CU_ASSERT(has_line(c->out, "    L3 L#15 (16MiB)"));
    CU_ASSERT(has_line(c->out, "        PU L#254 (P#254)  <- worker 127"));
    CU_ASSERT(has_line(c->out, "        PU L#255 (P#255)"));
    CU_ASSERT(has_line(c->out, "placement (--cores auto): 128 workers"));
    CU_ASSERT_EQUAL(victim_lines(c->out), 128);
    /* worker 0: its L3's 7 other cores, its package's 24, the 96 others */
    char expected[1024];
    size_t used = (size_t)snprintf(expected, sizeof expected, "worker 0: L3:");
    for (unsigned w = 1; w < 128; w++)
        used += (size_t)snprintf(expected + used, sizeof expected - used, "%s %u",
                                 w == 8 ? " | package:" : w == 32 ? " | machine:" : "", w);
    CU_ASSERT(has_line(c->out, expected));
    command_free(c);
}

/* ---- JSON ------------------------------------------------------------------------------ */

static unsigned occurrences(const char *text, const char *part)
{
    unsigned n = 0;
    for (const char *p = strstr(text, part); p; p = strstr(p + 1, part))
        n++;
    return n;
}

static void test_json_small(void)
{
    command *c = RUN_ON(SMALL, "topo", "--json");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT_EQUAL(c->err_len, 0);
    CU_ASSERT(is_one_json_object(c->out));
    CU_ASSERT_EQUAL(strncmp(c->out, "{\"topology\":[{\"type\":\"Machine\"", 30), 0);
    CU_ASSERT(json_has(c->out, "\"cores\":16"));
    CU_ASSERT(json_has(c->out, "\"pus\":32"));
    CU_ASSERT(json_has(c->out, "\"this_system\":false"));
    /* machine, NUMA node, 2 packages, 4 L3, 16 cores, 32 PUs */
    CU_ASSERT_EQUAL(occurrences(c->out, "{\"type\":"), 1 + 1 + 2 + 4 + 16 + 32);
    CU_ASSERT(contains(c->out, "{\"type\":\"L3\",\"model\":null,\"nesting\":2,\"logical\":3,"
                               "\"os\":null,\"bytes\":16777216,\"allowed\":true,\"worker\":null}"));
    CU_ASSERT(contains(c->out, "{\"type\":\"PU\",\"model\":null,\"nesting\":4,\"logical\":30,"
                               "\"os\":30,\"bytes\":0,\"allowed\":true,\"worker\":15}"));
    CU_ASSERT(contains(c->out, "{\"type\":\"PU\",\"model\":null,\"nesting\":4,\"logical\":31,"
                               "\"os\":31,\"bytes\":0,\"allowed\":true,\"worker\":null}"));
    /* one object per worker, victims nearest first with their level and group */
    CU_ASSERT_EQUAL(occurrences(c->out, "{\"worker\":15,\"pu_logical\":30,\"pu_os\":30,"
                                        "\"core\":15,\"package\":1,\"shared_core\":false,"
                                        "\"shared_pu\":false,\"victims\":["),
                    1);
    CU_ASSERT(contains(c->out, "{\"worker\":0,\"pu_logical\":0,\"pu_os\":0,\"core\":0,"
                               "\"package\":0,\"shared_core\":false,\"shared_pu\":false,"
                               "\"victims\":[{\"worker\":1,\"level\":\"L3\",\"group\":0},"
                               "{\"worker\":2,\"level\":\"L3\",\"group\":0},"
                               "{\"worker\":3,\"level\":\"L3\",\"group\":0},"
                               "{\"worker\":4,\"level\":\"package\",\"group\":1}"));
    CU_ASSERT(contains(c->out, "{\"worker\":7,\"level\":\"package\",\"group\":1},"
                               "{\"worker\":8,\"level\":\"machine\",\"group\":2}"));
    CU_ASSERT_EQUAL(occurrences(c->out, "\"pu_logical\":"), 16);
    /* each worker has the 15 others as victims */
    CU_ASSERT_EQUAL(occurrences(c->out, "\"level\":"), 16 * 15);
    command_free(c);
}

static void test_json_large_and_this_machine(void)
{
    command *c = RUN_ON(LARGE, "topo", "--json");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(is_one_json_object(c->out));
    CU_ASSERT_EQUAL(occurrences(c->out, "\"pu_logical\":"), 128);
    CU_ASSERT_EQUAL(occurrences(c->out, "\"level\":"), 128 * 127);
    command_free(c);

    c = RUN("topo", "--json");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(is_one_json_object(c->out));
    CU_ASSERT(json_has(c->out, "\"this_system\":true"));
    CU_ASSERT(json_number_of(c->out, "cores") >= 1);
    command_free(c);
}

/* ---- other topologies: XML files, this machine with PUs held back ------------------------ */

/* Writes the synthetic topology `description` (or this machine, for NULL) as hwloc XML. */
static bool export_xml(const char *description, const char *path)
{
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) < 0)
        return false;
    bool ok = (!description || hwloc_topology_set_synthetic(topo, description) == 0) &&
              hwloc_topology_load(topo) == 0 && hwloc_topology_export_xml(topo, path, 0) == 0;
    hwloc_topology_destroy(topo);
    return ok;
}

/* The first line, up to " (": what hwloc shows, without what this process may use. */
static void summary_counts(const command *c, char *counts, size_t size)
{
    char line[256] = "";
    line_of(c->out, 0, line, sizeof line);
    char *open = strstr(line, " (");
    if (open)
        *open = '\0';
    snprintf(counts, size, "%s", line);
}

static void test_topology_xml(void)
{
    char path[] = "/tmp/pareng-topo-test-XXXXXX.xml";
    int fd = mkstemps(path, 4);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);

    CU_ASSERT_FATAL(export_xml("package:2 core:2 pu:2", path));
    command *c = RUN("topo", "--topology", path);
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(has_line(c->out, "2 packages, 4 cores, 8 PUs (4 cores / 8 PUs allowed)"));
    CU_ASSERT(contains(c->out, "\nnot this machine"));
    CU_ASSERT(has_line(c->out, "    Core L#3 (P#3)"));
    CU_ASSERT(has_line(c->out, "      PU L#6 (P#6)  <- worker 3"));
    CU_ASSERT(has_line(c->out, "worker 0: package: 1 | machine: 2 3"));
    command_free(c);

    /* hwloc's own variable names the same file */
    setenv("HWLOC_XMLFILE", path, 1);
    c = RUN("topo", "--cores", "core:2-3");
    unsetenv("HWLOC_XMLFILE");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(has_line(c->out, "2 packages, 4 cores, 8 PUs (4 cores / 8 PUs allowed)"));
    CU_ASSERT(has_line(c->out, "      PU L#6 (P#6)  <- worker 1"));
    command_free(c);

    /* this machine saved as XML: the same machine, but not this system to hwloc */
    CU_ASSERT_FATAL(export_xml(NULL, path));
    command *live = RUN("topo");
    c = RUN("topo", "--topology", path, "--json");
    CU_ASSERT(exited_with(live, 0) && exited_with(c, 0));
    CU_ASSERT(is_one_json_object(c->out));
    CU_ASSERT(json_has(c->out, "\"this_system\":false"));
    command_free(c);
    c = RUN("topo", "--topology", path);
    char live_counts[256], xml_counts[256];
    summary_counts(live, live_counts, sizeof live_counts);
    summary_counts(c, xml_counts, sizeof xml_counts);
    CU_ASSERT_STRING_EQUAL(xml_counts, live_counts);
    command_free(c);
    command_free(live);
    unlink(path);
}

/* PUs outside this process's affinity are marked, and no worker goes there. */
static void test_not_allowed(void)
{
    cpu_set_t saved, one;
    CU_ASSERT_FATAL(sched_getaffinity(0, sizeof saved, &saved) == 0);
    if (CPU_COUNT(&saved) < 2) {
        fprintf(stderr, "\nonly one CPU here: PUs held back not tested\n");
        return;
    }
    int kept = 0, held = 0;
    while (!CPU_ISSET(kept, &saved))
        kept++;
    held = kept + 1;
    while (!CPU_ISSET(held, &saved))
        held++;
    CPU_ZERO(&one);
    CPU_SET(kept, &one);
    /* the child inherits the affinity, as it would from taskset */
    CU_ASSERT_FATAL(sched_setaffinity(0, sizeof one, &one) == 0);
    command *c = RUN("topo");
    command *json = RUN("topo", "--json");
    CU_ASSERT_FATAL(sched_setaffinity(0, sizeof saved, &saved) == 0);

    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(contains(c->out, "(1 core / 1 PU allowed)\n"));
    char kept_pu[32], held_pu[32];
    snprintf(kept_pu, sizeof kept_pu, " (P#%d)  <- worker 0\n", kept);
    snprintf(held_pu, sizeof held_pu, " (P#%d)  (not allowed)\n", held);
    CU_ASSERT(contains(c->out, kept_pu));
    CU_ASSERT(contains(c->out, held_pu));
    CU_ASSERT(has_line(c->out, "placement (--cores auto): 1 worker"));
    CU_ASSERT(exited_with(json, 0));
    char held_json[96];
    snprintf(held_json, sizeof held_json,
             "\"os\":%d,\"bytes\":0,\"allowed\":false,\"worker\":null}", held);
    CU_ASSERT(contains(json->out, held_json));
    CU_ASSERT(json_has(json->out, "\"pus\":1"));
    command_free(json);
    command_free(c);
}

static void test_help_names_topo(void)
{
    command *c = RUN("--help");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(contains(c->out, "\n  topo   "));
    command_free(c);
    c = RUN("topo", "--help");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(contains(c->out, "usage: pareng topo [-c CORES] [--topology FILE.xml] [-j]\n"));
    CU_ASSERT(contains(c->out, "  -c, --cores auto|K|LIST\n") &&
              contains(c->out, "      --topology FILE.xml\n") &&
              contains(c->out, "  -j, --json\n") && contains(c->out, "  -h, --help\n"));
    CU_ASSERT_EQUAL(c->err_len, 0);
    command_free(c);
}

/* ---- CPU lists by hwloc type, on a machine of 2 packages of 1 NUMA node, 2 cores, 2 PUs ---- */

#define NUMA "package:2 numa:1 core:2 pu:2"

/* The PUs (L#, = P# on synthetic topologies) of the workers, from --json. */
static unsigned worker_pus(const char *json, unsigned *pus, unsigned max)
{
    unsigned n = 0;
    for (const char *p = strstr(json, "\"pu_logical\":"); p && n < max;
         p = strstr(p + 1, "\"pu_logical\":"))
        pus[n++] = (unsigned)strtoul(p + strlen("\"pu_logical\":"), NULL, 10);
    return n;
}

static void test_cpu_list_types(void)
{
    static const struct {
        const char *cores;
        unsigned workers, pus[8];
    } lists[] = {
        {"package:1", 2, {4, 6}},       /* one worker per core of package 1 */
        {"socket:0", 2, {0, 2}},
        {"package:all", 4, {0, 2, 4, 6}},
        {"numa:0", 2, {0, 2}},
        {"node:1", 2, {4, 6}},
        {"numanode:0-1", 4, {0, 2, 4, 6}},
        {"core:all", 4, {0, 2, 4, 6}},
        {"core:1,3", 2, {2, 6}},        /* plain numbers continue the type */
        {"pu:all", 8, {0, 1, 2, 3, 4, 5, 6, 7}},
        {"pu:5,package:0", 3, {5, 0, 2}},
        {"7,0-1", 3, {7, 0, 1}},       /* OS numbers */
        {"auto", 4, {0, 2, 4, 6}},
        {"3", 3, {0, 2, 4}},           /* a count */
    };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        command *c = RUN_ON(NUMA, "topo", "--cores", lists[i].cores, "--json");
        CU_ASSERT(exited_with(c, 0));
        CU_ASSERT(is_one_json_object(c->out));
        unsigned pus[16];
        unsigned n = worker_pus(c->out, pus, 16);
        bool same = n == lists[i].workers;
        for (unsigned w = 0; same && w < n; w++)
            same = pus[w] == lists[i].pus[w];
        CU_ASSERT(same);
        if (!same)
            fprintf(stderr, "\n--cores %s: %u workers, not the PUs expected\n", lists[i].cores, n);
        command_free(c);
    }
    /* the tree and the table say the same */
    command *c = RUN_ON(NUMA, "topo", "--cores", "package:1");
    CU_ASSERT(exited_with(c, 0));
    CU_ASSERT(has_line(c->out, "placement (--cores package:1): 2 workers"));
    CU_ASSERT(has_line(c->out, "  Package L#1 (P#1)"));
    CU_ASSERT(has_line(c->out, "    NUMANode L#1 (P#1 1GiB)"));
    CU_ASSERT(has_line(c->out, "    Core L#2 (P#2)"));
    CU_ASSERT(has_line(c->out, "      PU L#4 (P#4)  <- worker 0"));
    CU_ASSERT(has_line(c->out, "      PU L#6 (P#6)  <- worker 1"));
    CU_ASSERT(has_line(c->out, "      PU L#0 (P#0)"));
    command_free(c);

    /* and so does the environment, with --cores over it */
    setenv("PARENG_PLACES", "numa:1", 1);
    command *env = RUN_ON(NUMA, "topo");
    command *over = RUN_ON(NUMA, "topo", "--cores", "core:0");
    unsetenv("PARENG_PLACES");
    CU_ASSERT(exited_with(env, 0));
    CU_ASSERT(has_line(env->out, "placement (PARENG_PLACES=numa:1): 2 workers"));
    CU_ASSERT(has_line(env->out, "      PU L#6 (P#6)  <- worker 1"));
    CU_ASSERT(exited_with(over, 0));
    CU_ASSERT(has_line(over->out, "placement (--cores core:0): 1 worker"));
    command_free(env);
    command_free(over);

    synthetic_begin(NUMA);
    CHECK_BAD_INPUT({{"topo", "--cores", "package:2"}, {"package", "2"}},
                    {{"topo", "--cores", "numa:5"}, {"5"}},
                    {{"topo", "--cores", "package:0.core:1"}, {"'package:0.core:1'", "nested"}},
                    {{"topo", "--cores", "0x3"}, {"'0x3'", "bitmasks"}},
                    {{"topo", "--cores", "S0:0-1"}, {"'S0:0-1'", "likwid"}},
                    {{"topo", "--cores", "N:0"}, {"'N:0'", "likwid"}},
                    {{"topo", "--cores", "odd"}, {"'odd'", "even and odd"}});
    synthetic_end(NULL);
    /* a NUMA node inside a core holds no whole core, though every CPU is allowed */
    synthetic_begin("core:2 numa:2 pu:2");
    CHECK_BAD_INPUT({{"topo", "--cores", "numa:1"}, {"numa L#1 holds no whole core", "(2-3)"}});
    synthetic_end(NULL);
}

/* ---- bad input ------------------------------------------------------------------------- */

static void test_bad_options(void)
{
    CHECK_BAD_INPUT({{"topo", "--cores", "0"}, {"--cores: 0 workers", "1 to 512"}},
                    {{"topo", "--cores", "513"}, {"513", "512"}},
                    {{"topo", "--cores", ""}, {"--cores", "empty"}},
                    {{"topo", "--cores", "0,,1"}, {"--cores", "'0,,1'"}},
                    {{"topo", "--cores", "core:4095"}, {"--cores", "4095"}},
                    {{"topo", "--cores"}, {"--cores", "needs a value"}},
                    {{"topo", "--json", "--topology"}, {"--topology", "needs a value"}},
                    {{"topo", "--topology="}, {"--topology", "empty"}},
                    {{"topo", "--bogus"}, {"'--bogus'"}},
                    {{"topo", "-x"}, {"'-x'"}},
                    {{"topo", "--json=1"}, {"--json takes no value"}},
                    {{"topo", "--t"}, {"--topology needs a value"}},
                    {{"topo", "now"}, {"'now'"}});
}

/* A list that names more cores than the synthetic topology has. */
static void test_bad_cores_on_synthetic(void)
{
    synthetic_begin(SMALL);
    CHECK_BAD_INPUT({{"topo", "--cores", "core:16"}, {"--cores", "16"}},
                    {{"topo", "--cores", "pu:32"}, {"--cores", "32"}});
    synthetic_end(NULL);
}

/* A file that is missing or is not XML is the topology's fault, whatever --cores says. */
static void test_bad_topology_files(void)
{
    char garbage[] = "/tmp/pareng-topo-test-XXXXXX.xml";
    int fd = mkstemps(garbage, 4);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT(write(fd, "not xml\n", 8) == 8);
    close(fd);
    const char *missing = "/nonexistent/pareng-topology.xml";
    bad_case cases[] = {
        {{"topo", "--topology", missing}, {missing}},
        {{"topo", "--topology", garbage, "--json"}, {garbage}},
    };
    check_bad_input(cases, sizeof cases / sizeof cases[0]);
    command *c = RUN("topo", "--topology", missing, "--cores", "2");
    CU_ASSERT(exited_with(c, 2));
    CU_ASSERT(contains(c->err, missing));
    CU_ASSERT_PTR_NULL(strstr(c->err, "--cores"));
    command_free(c);
    unlink(garbage);
}

int main(void)
{
    if (!harness_find_pareng())
        return 99;
    CU_TestInfo text[] = {
        {"synthetic, auto: tree, placement, victims", test_small_auto},
        {"--cores 4 and --cores core:0-3", test_small_four_workers},
        {"shared cores and PUs", test_small_sharing},
        {"a die's victims, then its package's", test_die_victims},
        {"no packages, no cores", test_without_packages_or_cores},
        {"128 workers", test_large},
        {"--help names topo", test_help_names_topo},
        {"CPU lists by type: package, numa, core, pu", test_cpu_list_types},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo json[] = {
        {"--json on a synthetic topology", test_json_small},
        {"--json: 128 workers, this machine", test_json_large_and_this_machine},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo other[] = {
        {"--topology FILE.xml, HWLOC_XMLFILE", test_topology_xml},
        {"PUs not allowed", test_not_allowed},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo bad[] = {
        {"bad options", test_bad_options},
        {"--cores beyond a synthetic topology", test_bad_cores_on_synthetic},
        {"missing or broken topology files", test_bad_topology_files},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo last[] = {
        {"nothing left", test_nothing_left},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("text", text),
        TESTING_SUITE("json", json),
        TESTING_SUITE("other topologies", other),
        TESTING_SUITE("bad input", bad),
        TESTING_SUITE("leftovers", last),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
