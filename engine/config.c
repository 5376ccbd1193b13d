/*
 * config.c - pareng_config: its defaults, the PARENG_* environment variables that every
 * program linking libpareng honours (as OpenMP programs honour OMP_*), and the text forms of
 * its fields that the CLI, the environment and Python share (--cores, --cutoff).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A whole decimal number from least to most, nothing before or after. */
static bool parse_count(const char *s, unsigned long least, unsigned long most,
                        unsigned long *out)
{
    size_t digits = strspn(s, "0123456789");
    if (digits == 0 || s[digits] != '\0' || digits > 10)
        return false;
    unsigned long v = strtoul(s, NULL, 10);
    if (v < least || v > most)
        return false;
    *out = v;
    return true;
}

static int refuse_no_config(void)
{
    return pareng__fail(EINVAL, "no configuration (NULL)");
}

int pareng_config_set_cores(pareng_config *cfg, const char *cores)
{
    unsigned long k;
    if (!cfg)
        return refuse_no_config();
    if (!cores)
        return pareng__fail(EINVAL, "no cores given: auto, a worker count or a CPU list");
    if (strcmp(cores, "auto") == 0) {
        cfg->workers = 0;
        cfg->cpus = NULL;
        return 0;
    }
    if (*cores && strspn(cores, "0123456789") == strlen(cores)) {
        if (!parse_count(cores, 1, PARENG_MAX_WORKERS, &k))
            return pareng__fail(EINVAL, "%s workers: a worker count is 1 to %d", cores,
                                PARENG_MAX_WORKERS);
        cfg->workers = (unsigned)k;
        cfg->cpus = NULL;
        return 0;
    }
    int rc = pareng__places_parse(cores, NULL, NULL);
    if (rc < 0)
        return rc;
    cfg->workers = 0;
    cfg->cpus = cores;
    return 0;
}

int pareng_config_set_cutoff(pareng_config *cfg, const char *cutoff)
{
    unsigned long depth;
    if (!cfg)
        return refuse_no_config();
    if (cutoff && (strcmp(cutoff, "auto") == 0 || strcmp(cutoff, "0") == 0))
        cfg->cutoff_depth = PARENG_CUTOFF_AUTO;
    else if (cutoff && strcmp(cutoff, "none") == 0)
        cfg->cutoff_depth = PARENG_CUTOFF_NONE;
    else if (cutoff && parse_count(cutoff, 1, PARENG__CUTOFF_DEPTH_MAX, &depth))
        cfg->cutoff_depth = (unsigned)depth;
    else
        return pareng__fail(EINVAL, "cutoff '%s': auto, none (every spawn a task) or a depth "
                            "from 1 to %u", cutoff ? cutoff : "", PARENG__CUTOFF_DEPTH_MAX);
    return 0;
}

/* OpenMP's boolean spellings, any case. */
static int parse_boolean(const char *s, unsigned *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"}, *const no[] = {"false", "0",
                                                                                "no", "off"};
    for (size_t k = 0; k < 4; k++) {
        if (strcasecmp(s, yes[k]) == 0)
            return *out = 1, 0;
        if (strcasecmp(s, no[k]) == 0)
            return *out = 0, 0;
    }
    return -EINVAL;
}

/* The message of the parse that just failed, as the variable's. */
static int fail_in_variable(const char *variable)
{
    char why[PARENG_ERROR_MAX];
    strncpy(why, pareng_last_error(), sizeof why - 1);
    why[sizeof why - 1] = '\0';
    return pareng__fail(EINVAL, "%s: %s", variable, why);
}

/* The variables, each read into its field: 0, or -EINVAL with a message naming it (the field
 * untouched). */
static int read_workers(pareng_config *cfg)
{
    const char *v = getenv("PARENG_NUM_WORKERS");
    unsigned long k;
    if (!v)
        return 0;
    if (!parse_count(v, 1, PARENG_MAX_WORKERS, &k))
        return pareng__fail(EINVAL, "PARENG_NUM_WORKERS='%s': a worker count from 1 to %d", v,
                            PARENG_MAX_WORKERS);
    cfg->workers = (unsigned)k;
    return 0;
}

static int read_places(pareng_config *cfg)
{
    const char *v = getenv("PARENG_PLACES");
    if (!v)
        return 0;
    if (pareng__places_parse(v, NULL, NULL) < 0)
        return fail_in_variable("PARENG_PLACES");
    cfg->cpus = v;
    return 0;
}

static int read_cutoff(pareng_config *cfg)
{
    const char *v = getenv("PARENG_CUTOFF");
    return v && pareng_config_set_cutoff(cfg, v) < 0 ? fail_in_variable("PARENG_CUTOFF") : 0;
}

static int read_affinity(pareng_config *cfg)
{
    const char *v = getenv("PARENG_DISPLAY_AFFINITY");
    return v && parse_boolean(v, &cfg->display_affinity) < 0
               ? pareng__fail(EINVAL, "PARENG_DISPLAY_AFFINITY='%s': true or false", v)
               : 0;
}

static int read_topology_cache(pareng_config *cfg)
{
    const char *v = getenv("PARENG_TOPOLOGY_CACHE");
    unsigned use = 1;
    if (v && parse_boolean(v, &use) < 0)
        return pareng__fail(EINVAL, "PARENG_TOPOLOGY_CACHE='%s': true or false", v);
    cfg->topology_cache = use ? PARENG_TOPOLOGY_CACHE_AUTO : PARENG_TOPOLOGY_CACHE_OFF;
    return 0;
}

/* Each variable, the field it fills, and whether the field still holds what the variable
 * would have set: a malformed variable is refused at start only while the caller has not
 * set that field itself (the caller wins, as an OpenMP call beats OMP_*). */
static bool workers_unset(const pareng_config *cfg) { return !cfg->workers && !cfg->cpus; }
static bool cutoff_unset(const pareng_config *cfg) { return !cfg->cutoff_depth; }
static bool affinity_unset(const pareng_config *cfg) { return !cfg->display_affinity; }
static bool topology_cache_unset(const pareng_config *cfg) { return !cfg->topology_cache; }

static const struct {
    int (*read)(pareng_config *);
    bool (*unset)(const pareng_config *);
} variables[] = {
    {read_workers, workers_unset},
    {read_places, workers_unset},
    {read_cutoff, cutoff_unset},
    {read_affinity, affinity_unset},
    {read_topology_cache, topology_cache_unset},
};

int pareng_config_default(pareng_config *cfg)
{
    if (!cfg)
        return refuse_no_config();
    memset(cfg, 0, sizeof *cfg);
    int first = 0;
    for (unsigned k = 0; k < sizeof variables / sizeof variables[0]; k++) {
        int rc = variables[k].read(cfg);
        if (rc < 0)
            cfg->pareng__bad_environment |= (unsigned char)(1u << k);
        first = first ? first : rc;
    }
    if (first) /* the message of the first malformed variable */
        for (unsigned k = 0; k < sizeof variables / sizeof variables[0]; k++)
            if (cfg->pareng__bad_environment & (1u << k)) {
                pareng_config scratch = {0};
                return variables[k].read(&scratch);
            }
    return 0;
}

int pareng__config_check(const pareng_config *cfg)
{
    for (unsigned k = 0; k < sizeof variables / sizeof variables[0]; k++)
        if ((cfg->pareng__bad_environment & (1u << k)) && variables[k].unset(cfg)) {
            pareng_config scratch = {0};
            int rc = variables[k].read(&scratch); /* the message again, for this caller */
            return rc < 0 ? rc : pareng__fail(EINVAL, "a PARENG_* variable was malformed when "
                                                       "this configuration was made");
        }
    return 0;
}
