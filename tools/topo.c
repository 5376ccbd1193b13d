/*
 * topo.c - `pareng topo`: the machine as pareng sees it through hwloc (as lstopo prints it,
 * text only), where a --cores value puts the workers, and whom each worker steals from,
 * nearest first. Everything comes from the plan API; nothing here decides a placement.
 *
 *   pareng topo [-c auto|K|LIST] [--topology FILE.xml] [-j]
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pareng.h"

static const char topo_help[] =
    "usage: pareng topo [-c CORES] [--topology FILE.xml] [-j]\n"
    "\n"
    "Prints the machine as pareng sees it through hwloc, where the workers of a\n"
    "--cores value would run, and whom each worker steals from, nearest first.\n"
    "Nothing is started.\n"
    "\n"
    "options:\n"
    "  -c, --cores auto|K|LIST\n"
    "          the placement to show, as for pareng run: auto (the default), K\n"
    "          workers, or a CPU list (docs/cli.md, \"CPU lists\")\n"
    "      --topology FILE.xml\n"
    "          an hwloc XML file (lstopo --of xml > FILE.xml) instead of this\n"
    "          machine; hwloc's HWLOC_XMLFILE and HWLOC_SYNTHETIC work too\n"
    "  -j, --json\n"
    "          one JSON object on stdout instead of the text\n"
    "  -h, --help\n"
    "          this help\n"
    "\n"
    "--cores overrides PARENG_NUM_WORKERS and PARENG_PLACES. More: docs/cli.md\n"
    "(man pareng).\n";

enum { OPT_TOPOLOGY = 256 };

typedef struct topo_options {
    const char *cores; /* as given, or NULL: the environment's, else auto */
    const char *topology_xml;
    bool json;
} topo_options;

/* 0, or the exit status (also after --help: *help set). */
static int parse_topo(int argc, char **argv, topo_options *o, bool *help)
{
    static const struct option longs[] = {
        {"cores", required_argument, NULL, 'c'},
        {"topology", required_argument, NULL, OPT_TOPOLOGY},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (topo_options){0};
    *help = false;
    cli_parser p;
    cli_parse_begin(&p, "topo", "c:jh", longs, argc, argv);
    const char *value;
    int option;
    while ((option = cli_next_option(&p, &value)) != -1) {
        switch (option) {
        case -2:
            return EXIT_BAD_INPUT;
        case 'h':
            *help = true;
            return cli_help(topo_help);
        case 'c':
            o->cores = value;
            break;
        case 'j':
            o->json = true;
            break;
        default: /* OPT_TOPOLOGY */
            if (!*value)
                return bad_input("--topology needs an hwloc XML file, not an empty string");
            o->topology_xml = value;
        }
    }
    int count;
    char **args = cli_positional(&p, &count);
    if (count > 0)
        return bad_input("topo takes no argument, not '%s'", args[0]);
    return 0;
}

/* The plan of the options. On failure says why and returns the exit status: a topology that
 * cannot be loaded or a --cores that does not fit it is bad input. */
static int create_plan(const topo_options *o, pareng_plan **plan)
{
    pareng_config cfg;
    int rc = cli_config_default(&cfg);
    if (rc == 0 && o->cores)
        rc = cli_set_cores(&cfg, o->cores);
    if (rc)
        return rc;
    cfg.topology_xml = o->topology_xml;
    /* The machine as it is now, as lstopo shows it: memory sizes change (a balloon driver),
     * and the cache keeps only what placement depends on in step with the machine. */
    cfg.topology_cache = PARENG_TOPOLOGY_CACHE_OFF;
    rc = pareng_plan_create(plan, &cfg);
    if (rc == 0)
        return 0;
    bool bad_cores = rc == -EINVAL || rc == -ERANGE, bad_topology = rc == -ENOENT || rc == -EIO;
    const char *source = cli_cores_source(o->cores != NULL);
    if (bad_cores && source)
        return bad_input("%s: %s", source, pareng_last_error());
    /* a file that cannot be loaded: named, if the library's message does not */
    if (bad_topology && o->topology_xml && !strstr(pareng_last_error(), o->topology_xml))
        return bad_input("--topology %s: %s", o->topology_xml, pareng_last_error());
    if (bad_cores || bad_topology)
        return bad_input("%s", pareng_last_error());
    cli_error("%s", pareng_last_error());
    return EXIT_RUN_FAILED;
}

/* What the plan holds, copied out once for both output formats. */
typedef struct topo_view {
    const pareng_plan *plan;
    pareng_topo_object *objects;
    unsigned n_objects;
    pareng_placement *placements;
    unsigned n_workers;
    unsigned *victims, *levels, *groups; /* scratch for one worker's victims: n_workers each */
} topo_view;

static void view_free(topo_view *v)
{
    free(v->objects);
    free(v->placements);
    free(v->victims);
    free(v->levels);
    free(v->groups);
}

static int view_load(topo_view *v, const pareng_plan *plan)
{
    *v = (topo_view){.plan = plan, .n_workers = pareng_plan_workers(plan)};
    int n = pareng_plan_topology(plan, NULL, 0);
    if (n < 0) {
        cli_error("%s", pareng_last_error());
        return EXIT_RUN_FAILED;
    }
    v->n_objects = (unsigned)n;
    v->objects = calloc(v->n_objects ? v->n_objects : 1, sizeof *v->objects);
    v->placements = calloc(v->n_workers, sizeof *v->placements);
    v->victims = calloc(v->n_workers, sizeof *v->victims);
    v->levels = calloc(v->n_workers, sizeof *v->levels);
    v->groups = calloc(v->n_workers, sizeof *v->groups);
    if (!v->objects || !v->placements || !v->victims || !v->levels || !v->groups) {
        view_free(v);
        cli_error("out of memory");
        return EXIT_RUN_FAILED;
    }
    pareng_plan_topology(plan, v->objects, v->n_objects);
    for (unsigned w = 0; w < v->n_workers; w++)
        pareng_plan_placement(plan, w, &v->placements[w]);
    return 0;
}

/* Victims of worker w into v->victims, v->levels and v->groups; returns how many. */
static unsigned view_victims(topo_view *v, unsigned w)
{
    int n = pareng_plan_victims(v->plan, w, v->victims, v->levels, v->n_workers);
    if (n < 0 || pareng_plan_victim_groups(v->plan, w, v->groups, v->n_workers) < 0)
        return 0;
    return (unsigned)n;
}

/* ---- text ----------------------------------------------------------------------------- */

/* As lstopo does, the largest unit that gives the size exactly in at most four digits (16MiB,
 * 1280KiB); past that (a NUMA node's memory), one decimal in the largest unit that is not
 * above the size (4.3GiB). */
static void format_size(uint64_t bytes, char *text, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    unsigned top = sizeof units / sizeof units[0] - 1, u = top;
    while (u > 0 && (bytes >> (10 * u) == 0 || bytes % (UINT64_C(1) << (10 * u)) != 0))
        u--;
    if (bytes >> (10 * u) < 10000) {
        snprintf(text, size, "%llu%s", (unsigned long long)(bytes >> (10 * u)), units[u]);
        return;
    }
    for (u = top; bytes >> (10 * u) == 0; u--) {
    }
    snprintf(text, size, "%.1f%s", (double)bytes / (double)(UINT64_C(1) << (10 * u)), units[u]);
}

static bool is_type(const pareng_topo_object *o, const char *type)
{
    return strcmp(o->type, type) == 0;
}

/* hwloc names caches L1d, L2, L3...: their OS index means nothing to a user, so lstopo does
 * not show it, and neither do we. */
static bool is_cache(const pareng_topo_object *o)
{
    return o->type[0] == 'L' && isdigit((unsigned char)o->type[1]);
}

static unsigned count_type(const topo_view *v, const char *type)
{
    unsigned n = 0;
    for (unsigned i = 0; i < v->n_objects; i++)
        n += is_type(&v->objects[i], type);
    return n;
}

static const char *plural(unsigned n)
{
    return n == 1 ? "" : "s";
}

/* "2 packages, 16 cores, 32 PUs (16 cores / 32 PUs allowed)": what hwloc shows, then what this
 * process may use (where the topology has no cores, each PU is one). */
static void print_summary(const topo_view *v)
{
    unsigned allowed_cores = pareng_plan_cores(v->plan), allowed_pus = pareng_plan_pus(v->plan);
    cli_print_machine_counts(stdout, count_type(v, "Package"), count_type(v, "Core"),
                             count_type(v, "PU"));
    printf(" (%u core%s / %u PU%s allowed)\n", allowed_cores, plural(allowed_cores),
           allowed_pus, plural(allowed_pus));
    if (!pareng_plan_is_this_system(v->plan))
        printf("not this machine (HWLOC_SYNTHETIC, HWLOC_XMLFILE or --topology): an engine "
               "would run unpinned\n");
}

/* "  <- worker 3", or "  <- workers 3, 35" when workers share the PU. */
static void print_workers_on(const topo_view *v, const pareng_topo_object *pu)
{
    unsigned found = 0;
    for (unsigned w = 0; w < v->n_workers; w++) {
        if (v->placements[w].pu_logical != pu->logical)
            continue;
        if (found++ == 0)
            printf("  <- worker%s %u", v->placements[w].shared_pu ? "s" : "", w);
        else
            printf(", %u", w);
    }
}

/* Opens the parenthesis of an object's attributes before the first, separates the others. */
static void attribute_separator(bool *opened)
{
    fputs(*opened ? " " : " (", stdout);
    *opened = true;
}

/* One object as lstopo writes it, indented by nesting: `Core L#1 (P#1)`,
 * `NUMANode L#0 (P#0 4.3GiB)`, `L3 L#0 (16MiB)`, `Package L#0 (P#0 "AMD EPYC")`; the machine,
 * the root, as `Machine (4.3GiB total)`. */
static void print_object(const topo_view *v, const pareng_topo_object *o, uint64_t memory)
{
    bool root = o->nesting == 0, opened = false;
    uint64_t bytes = root ? memory : o->bytes;
    printf("%*s%s", (int)(2 * o->nesting), "", o->type);
    if (!root)
        printf(" L#%u", o->logical);
    if (o->os >= 0 && !is_cache(o) && !root) {
        attribute_separator(&opened);
        printf("P#%d", o->os);
    }
    if (bytes) {
        char size[32];
        format_size(bytes, size, sizeof size);
        attribute_separator(&opened);
        printf("%s%s", size, root ? " total" : "");
    }
    if (o->model[0]) {
        attribute_separator(&opened);
        putchar('"'); /* from the machine or an XML file: it may hold anything */
        cli_escape(stdout, o->model);
        putchar('"');
    }
    if (opened)
        putchar(')');
    if (!o->allowed)
        printf("  (not allowed)");
    if (is_type(o, "PU"))
        print_workers_on(v, o);
    putchar('\n');
}

static void print_tree(const topo_view *v)
{
    /* the machine's memory is its NUMA nodes' (hwloc 2 gives the machine none of its own) */
    uint64_t memory = 0;
    for (unsigned i = 0; i < v->n_objects; i++)
        if (is_type(&v->objects[i], "NUMANode"))
            memory += v->objects[i].bytes;
    for (unsigned i = 0; i < v->n_objects; i++)
        print_object(v, &v->objects[i], memory);
}

/* "placement (--cores 4): 4 workers", or what else chose them: "PARENG_NUM_WORKERS=4". */
static void print_placement_table(const topo_view *v, const topo_options *o)
{
    const char *source = cli_cores_source(o->cores != NULL);
    printf("placement (");
    if (!source) {
        printf("--cores auto");
    } else if (o->cores) {
        printf("--cores ");
        cli_escape(stdout, o->cores);
    } else {
        printf("%s=", source);
        cli_escape(stdout, getenv(source));
    }
    printf("): %u worker%s\n", v->n_workers, plural(v->n_workers));
    printf("%6s %6s %6s %8s %11s  %s\n", "worker", "PU L#", "PU P#", "core L#", "package L#",
           "shared");
    for (unsigned w = 0; w < v->n_workers; w++) {
        const pareng_placement *p = &v->placements[w];
        /* a worker that shares its PU shares its core too: the narrower is the news */
        const char *shared = p->shared_pu ? "PU" : p->shared_core ? "core" : "-";
        char package[16] = "-";
        if (p->package_logical != PARENG_NO_PACKAGE)
            snprintf(package, sizeof package, "%u", p->package_logical);
        printf("%6u %6u %6u %8u %11s  %s\n", w, p->pu_logical, p->pu_os, p->core_logical,
               package, shared);
    }
}

/* `worker 0: L3: 1 2 3 | package: 4 5 6 7 | machine: 8 9`: each group of equally near victims,
 * named by what they share with the worker (`package: 1 | package: 2 3`: a die, then the rest
 * of its package). */
static void print_victim_lines(topo_view *v)
{
    printf("victims, nearest first:\n");
    for (unsigned w = 0; w < v->n_workers; w++) {
        unsigned n = view_victims(v, w);
        printf("worker %u:", w);
        if (n == 0)
            printf(" none");
        for (unsigned i = 0; i < n; i++) {
            if (i == 0 || v->groups[i] != v->groups[i - 1])
                printf("%s %s:", i ? " |" : "", pareng_plan_level_name(v->levels[i]));
            printf(" %u", v->victims[i]);
        }
        putchar('\n');
    }
}

static void print_text(topo_view *v, const topo_options *o)
{
    print_summary(v);
    putchar('\n');
    print_tree(v);
    putchar('\n');
    print_placement_table(v, o);
    putchar('\n');
    print_victim_lines(v);
}

/* ---- JSON ----------------------------------------------------------------------------- */

static const char *json_bool(int b)
{
    return b ? "true" : "false";
}

/* Absent values (no OS index, no worker, no model) are null. */
static void print_json_index(int index)
{
    if (index < 0)
        printf("null");
    else
        printf("%d", index);
}

static void print_json_object(const pareng_topo_object *o)
{
    printf("{\"type\":");
    json_string(stdout, o->type);
    printf(",\"model\":");
    if (o->model[0])
        json_string(stdout, o->model);
    else
        printf("null");
    printf(",\"nesting\":%u,\"logical\":%u,\"os\":", o->nesting, o->logical);
    print_json_index(o->os);
    printf(",\"bytes\":%llu,\"allowed\":%s,\"worker\":", (unsigned long long)o->bytes,
           json_bool(o->allowed));
    print_json_index(o->worker);
    putchar('}');
}

static void print_json_worker(topo_view *v, unsigned w)
{
    const pareng_placement *p = &v->placements[w];
    printf("{\"worker\":%u,\"pu_logical\":%u,\"pu_os\":%u,\"core\":%u,\"package\":", w,
           p->pu_logical, p->pu_os, p->core_logical);
    print_json_index(p->package_logical == PARENG_NO_PACKAGE ? -1 : (int)p->package_logical);
    printf(",\"shared_core\":%s,\"shared_pu\":%s,\"victims\":[", json_bool(p->shared_core),
           json_bool(p->shared_pu));
    unsigned n = view_victims(v, w);
    for (unsigned i = 0; i < n; i++)
        printf("%s{\"worker\":%u,\"level\":\"%s\",\"group\":%u}", i ? "," : "",
               v->victims[i], pareng_plan_level_name(v->levels[i]), v->groups[i]);
    printf("]}");
}

static void print_json(topo_view *v)
{
    printf("{\"topology\":[");
    for (unsigned i = 0; i < v->n_objects; i++) {
        if (i)
            putchar(',');
        print_json_object(&v->objects[i]);
    }
    printf("],\"workers\":[");
    for (unsigned w = 0; w < v->n_workers; w++) {
        if (w)
            putchar(',');
        print_json_worker(v, w);
    }
    printf("],\"cores\":%u,\"pus\":%u,\"this_system\":%s}\n", pareng_plan_cores(v->plan),
           pareng_plan_pus(v->plan), json_bool(pareng_plan_is_this_system(v->plan)));
}

int command_topo(int argc, char **argv)
{
    topo_options o;
    bool help;
    int rc = parse_topo(argc, argv, &o, &help);
    if (rc || help)
        return rc;
    pareng_plan *plan;
    if ((rc = create_plan(&o, &plan)))
        return rc;
    topo_view v;
    rc = view_load(&v, plan);
    if (rc == 0) {
        if (o.json)
            print_json(&v);
        else
            print_text(&v, &o);
        view_free(&v);
        rc = finish_output();
    }
    pareng_plan_destroy(plan);
    return rc;
}
