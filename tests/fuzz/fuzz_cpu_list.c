/*
 * fuzz_cpu_list.c - the CPU-list grammar (--cores, PARENG_PLACES, cores=, pareng_config.cpus):
 * the parser alone (pareng__places_parse), pareng_config_set_cores over it, and planning the
 * list on a small synthetic machine (2 packages x 4 cores x 2 PUs, 16 PUs). Nothing may
 * crash; a plan that is made has 1 to PARENG_MAX_WORKERS workers, each on a PU of the
 * machine; set_cores takes a list exactly when the parser does; an error has a message.
 */
#include "fuzz.h"
#include "internal.h"

#include <errno.h>
#include <hwloc.h>
#include <stdbool.h>

#define SYNTHETIC "package:2 numa:1 core:4 pu:2"

typedef struct seen {
    unsigned items;
    unsigned fail_at; /* the callback returns -E2BIG at this item (0: never) */
} seen;

static int check_place(void *ctx, const pareng__place *p)
{
    seen *s = ctx;
    FUZZ_CHECK(p->type >= PARENG__PLACE_OS_CPU && p->type <= PARENG__PLACE_NUMA, "type %d",
               (int)p->type);
    FUZZ_CHECK(!p->all || p->type != PARENG__PLACE_OS_CPU, "'all' of OS CPU numbers");
    FUZZ_CHECK(p->all || (p->first <= p->last && p->last <= 2147483647u), "range %u-%u",
               p->first, p->last);
    return ++s->items == s->fail_at ? -E2BIG : 0;
}

static void check_plan(const pareng_config *cfg, const char *text)
{
    pareng_plan *plan = NULL;
    int rc = pareng_plan_create(&plan, cfg);
    if (rc < 0) {
        FUZZ_CHECK(!plan, "a plan despite %d", rc);
        FUZZ_CHECK(rc == -EINVAL || rc == -ERANGE || rc == -ENOMEM, "'%s': %d", text, rc);
        FUZZ_CHECK(*pareng_last_error(), "'%s': %d without a message", text, rc);
        return;
    }
    unsigned n = pareng_plan_workers(plan), pus = pareng_plan_pus(plan);
    FUZZ_CHECK(n >= 1 && n <= PARENG_MAX_WORKERS, "'%s': %u workers", text, n);
    FUZZ_CHECK(pus == 16 && pareng_plan_cores(plan) == 8, "'%s': %u PUs, %u cores", text, pus,
               pareng_plan_cores(plan));
    FUZZ_CHECK(!cfg->workers || cfg->workers == n, "'%s': %u workers asked for, %u planned",
               text, cfg->workers, n);
    for (unsigned w = 0; w < n; w++) {
        pareng_placement pl;
        FUZZ_CHECK(pareng_plan_placement(plan, w, &pl) == 0, "worker %u", w);
        FUZZ_CHECK(pl.pu_os < pus && pl.pu_logical < pus && pl.core_logical < 8 &&
                       pl.package_logical < 2,
                   "'%s': worker %u on P#%u L#%u core %u package %u", text, w, pl.pu_os,
                   pl.pu_logical, pl.core_logical, pl.package_logical);
    }
    unsigned victims[PARENG_MAX_WORKERS], levels[PARENG_MAX_WORKERS];
    int v = pareng_plan_victims(plan, n - 1, victims, levels, PARENG_MAX_WORKERS);
    FUZZ_CHECK(v == (int)n - 1, "'%s': %d victims of %u workers", text, v, n);
    for (int i = 0; i < v; i++)
        FUZZ_CHECK(victims[i] < n - 1 && levels[i] < 6, "victim %u level %u", victims[i],
                   levels[i]);
    pareng_plan_destroy(plan);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) { /* once: the machine to plan on, and nothing of the caller's environment */
        setenv("HWLOC_SYNTHETIC", SYNTHETIC, 1);
        unsetenv("HWLOC_XMLFILE");
        unsetenv("PARENG_NUM_WORKERS");
        unsetenv("PARENG_PLACES");
        setenv("HWLOC_PLUGINS_BLACKLIST", "hwloc_pci,hwloc_opencl,hwloc_gl,hwloc_xml_libxml", 1);
        /* hwloc loads its components with the first topology and unloads them with the
         * last: one kept for the whole run spares that at every input */
        static hwloc_topology_t kept;
        if (hwloc_topology_init(&kept) < 0)
            abort();
        ready = true;
    }
    if (size > 4096)
        return 0;
    char *text = fuzz_string(data, size);

    /* the parser alone; then a callback's error must come back as it was */
    seen s = {0};
    int parsed = pareng__places_parse(text, check_place, &s);
    FUZZ_CHECK(parsed == 0 || parsed == -EINVAL, "'%s': %d", text, parsed);
    FUZZ_CHECK(parsed == 0 || *pareng_last_error(), "'%s' refused without a message", text);
    FUZZ_CHECK(parsed < 0 || s.items >= 1, "'%s' parsed into no item", text);
    if (parsed == 0) {
        seen stop = {.fail_at = 1 + (unsigned)(size % s.items)};
        int rc = pareng__places_parse(text, check_place, &stop);
        FUZZ_CHECK(rc == -E2BIG && stop.items == stop.fail_at, "'%s': %d after %u items", text,
                   rc, stop.items);
    }

    /* pareng_config_set_cores: auto, a count, or a list exactly when the parser takes it */
    pareng_config cfg;
    memset(&cfg, 0, sizeof cfg);
    int rc = pareng_config_set_cores(&cfg, text);
    bool digits = size > 0 && strlen(text) > 0 && strspn(text, "0123456789") == strlen(text);
    if (strcmp(text, "auto") == 0) {
        FUZZ_CHECK(rc == 0 && cfg.workers == 0 && !cfg.cpus, "auto: %d", rc);
    } else if (digits) {
        FUZZ_CHECK(rc == -EINVAL || (rc == 0 && cfg.workers >= 1 &&
                                     cfg.workers <= PARENG_MAX_WORKERS && !cfg.cpus &&
                                     cfg.workers == strtoul(text, NULL, 10)),
                   "count '%s': %d, %u workers", text, rc, cfg.workers);
    } else {
        FUZZ_CHECK((rc == 0) == (parsed == 0), "'%s': set_cores %d, parser %d", text, rc,
                   parsed);
        FUZZ_CHECK(rc < 0 || (cfg.cpus == text && cfg.workers == 0), "'%s'", text);
    }
    FUZZ_CHECK(rc == 0 || rc == -EINVAL, "'%s': %d", text, rc);

    /* planning: the text as cfg.cpus, and what set_cores made of it */
    pareng_config as_list;
    memset(&as_list, 0, sizeof as_list);
    as_list.cpus = text;
    check_plan(&as_list, text);
    if (rc == 0 && !cfg.cpus && cfg.workers) /* a count: the plan must have that many */
        check_plan(&cfg, text);

    free(text);
    return 0;
}
