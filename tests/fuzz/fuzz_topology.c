/*
 * fuzz_topology.c - topology input that is not this machine: an hwloc XML file
 * (pareng_config.topology_xml, --topology) when the input starts with '<' (after
 * whitespace), else an HWLOC_SYNTHETIC description ("package:2 core:4 pu:2"). Either goes
 * through pareng_plan_create with automatic placement, and a plan that is made is walked
 * whole (placements, victims, the object list that `pareng topo` prints). Nothing may crash
 * or hang; a plan has 1 to PARENG_MAX_WORKERS workers, one per allowed core up to that
 * limit, on PUs of the topology, which has at most 4096 PUs (the engine refuses larger
 * topologies before hwloc loads them: its time grows with their square); a refusal is
 * -ENOENT, -EIO, -EINVAL or -ENOMEM with a message. hwloc reads XML with its built-in parser,
 * as the CLI has it (libxml2's plugin blacklisted). Keep inputs small (libFuzzer's -max_len
 * 4096; tests/fuzz/run does).
 *
 * hwloc's own crashes are the engine's to survive: hwloc 2.9.0 (Debian 12) dies of SIGSEGV
 * loading an XML in which an object has a cpuset but no complete_cpuset (open-mpi/hwloc#783,
 * seed xml-no-complete-cpuset), and the engine loads a topology file in a child process
 * first, refusing it if that child dies.
 */
#include "fuzz.h"
#include "internal.h"

#include <errno.h>
#include <hwloc.h>
#include <stdbool.h>
#include <unistd.h>

/* engine/topology.c's limit (MAX_TOPOLOGY_PUS there) */
#define MAX_TOPOLOGY_PUS 4096u

/* The inputs' file: unlinked as soon as it is made and named through /proc/self/fd, so that
 * nothing is left in TMPDIR however the fuzzer ends (a finding ends it with _exit). */
static char xml_path[64] = "";

static void setup(void)
{
    unsetenv("HWLOC_SYNTHETIC");
    unsetenv("HWLOC_XMLFILE");
    unsetenv("PARENG_NUM_WORKERS");
    unsetenv("PARENG_PLACES");
    setenv("HWLOC_PLUGINS_BLACKLIST", "hwloc_pci,hwloc_opencl,hwloc_gl,hwloc_xml_libxml", 1);
    setenv("HWLOC_HIDE_ERRORS", "1", 1); /* its banners about invalid input, at every input */
    /* hwloc loads its components with the first topology and unloads them with the last:
     * one topology kept for the whole run spares that at every input */
    static hwloc_topology_t kept;
    if (hwloc_topology_init(&kept) < 0)
        abort();
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char made[64];
    snprintf(made, sizeof made, "%.40s/pareng-fuzz-XXXXXX", dir);
    int fd = mkstemp(made);
    if (fd < 0) {
        perror("mkstemp");
        abort();
    }
    unlink(made);
    snprintf(xml_path, sizeof xml_path, "/proc/self/fd/%d", fd);
}

static void check_plan(const pareng_plan *plan, const char *what)
{
    unsigned n = pareng_plan_workers(plan), cores = pareng_plan_cores(plan);
    unsigned pus = pareng_plan_pus(plan);
    FUZZ_CHECK(n >= 1 && n <= PARENG_MAX_WORKERS, "%s: %u workers", what, n);
    FUZZ_CHECK(cores >= 1 && pus >= cores, "%s: %u cores, %u PUs", what, cores, pus);
    FUZZ_CHECK(n == (cores < PARENG_MAX_WORKERS ? cores : PARENG_MAX_WORKERS),
               "%s: %u workers on %u cores", what, n, cores);
    FUZZ_CHECK(!pareng_plan_is_this_system(plan), "%s: planned as this machine", what);
    static unsigned victims[PARENG_MAX_WORKERS], levels[PARENG_MAX_WORKERS];
    for (unsigned w = 0; w < n; w++) {
        pareng_placement pl;
        FUZZ_CHECK(pareng_plan_placement(plan, w, &pl) == 0, "%s: worker %u", what, w);
        FUZZ_CHECK(!pl.shared_pu && !pl.shared_core, "%s: worker %u shares its core", what, w);
        int v = pareng_plan_victims(plan, w, victims, levels, PARENG_MAX_WORKERS);
        FUZZ_CHECK(v == (int)n - 1, "%s: %d victims of %u workers", what, v, n);
        for (int i = 0; i < v; i++)
            FUZZ_CHECK(victims[i] < n && victims[i] != w && levels[i] < 6,
                       "%s: victim %u (level %u) of worker %u", what, victims[i], levels[i], w);
    }
    int count = pareng_plan_topology(plan, NULL, 0);
    FUZZ_CHECK(count >= 1 + (int)pus, "%s: %d objects for %u PUs", what, count, pus);
    pareng_topo_object *objects = calloc((size_t)count, sizeof *objects);
    if (!objects)
        abort();
    FUZZ_CHECK(pareng_plan_topology(plan, objects, (unsigned)count) == count, "%s", what);
    unsigned with_worker = 0, pu_objects = 0;
    for (int i = 0; i < count; i++) {
        pu_objects += strcmp(objects[i].type, "PU") == 0;
        FUZZ_CHECK(memchr(objects[i].type, '\0', sizeof objects[i].type) &&
                       memchr(objects[i].model, '\0', sizeof objects[i].model),
                   "%s: object %d's names not terminated", what, i);
        FUZZ_CHECK(i == 0 ? objects[i].nesting == 0 : objects[i].nesting >= 1 &&
                                                          objects[i].nesting <=
                                                              objects[i - 1].nesting + 1,
                   "%s: object %d nested at %u after %u", what, i, objects[i].nesting,
                   i ? objects[i - 1].nesting : 0);
        with_worker += objects[i].worker >= 0;
    }
    /* at least one PU per worker: an XML may give two PUs the same OS index, and the list
     * finds a worker's PU by its OS index */
    FUZZ_CHECK(with_worker >= n, "%s: %u PUs with a worker, %u workers", what, with_worker, n);
    /* engine/topology.c refuses a topology of more PUs before hwloc loads it (hwloc's time
     * grows with their square) */
    FUZZ_CHECK(pu_objects <= MAX_TOPOLOGY_PUS, "%s: a plan of %u PUs; the most is %u", what,
               pu_objects, MAX_TOPOLOGY_PUS);
    free(objects);
}

static void plan(const pareng_config *cfg, const char *what)
{
    pareng_plan *p = NULL;
    int rc = pareng_plan_create(&p, cfg);
    if (rc < 0) {
        FUZZ_CHECK(!p, "%s: a plan despite %d", what, rc);
        FUZZ_CHECK(rc == -ENOENT || rc == -EIO || rc == -EINVAL || rc == -ENOMEM, "%s: %d", what,
                   rc);
        FUZZ_CHECK(*pareng_last_error(), "%s: %d without a message", what, rc);
        return;
    }
    check_plan(p, what);
    pareng_plan_destroy(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    if (size > 65536)
        return 0;
    size_t ws = 0;
    while (ws < size && (data[ws] == ' ' || data[ws] == '\t' || data[ws] == '\n' ||
                         data[ws] == '\r'))
        ws++;
    pareng_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (ws < size && data[ws] == '<') {
        FILE *f = fopen(xml_path, "wb");
        if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
            perror(xml_path);
            abort();
        }
        cfg.topology_xml = xml_path;
        plan(&cfg, "XML");
    } else {
        /* putenv of one buffer: setenv would keep a copy of every value ever set */
        static char variable[sizeof "HWLOC_SYNTHETIC=" + 65536];
        char *text = fuzz_string(data, size);
        snprintf(variable, sizeof variable, "HWLOC_SYNTHETIC=%s", text);
        if (putenv(variable) != 0)
            abort();
        plan(&cfg, text);
        unsetenv("HWLOC_SYNTHETIC");
        free(text);
    }
    return 0;
}
