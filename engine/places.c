/*
 * places.c - the CPU-list grammar of --cores, PARENG_PLACES, Python's cores= and
 * pareng_config.cpus (pareng.h, pareng_config_set_cores): one parser, which config.c runs to
 * check a list's form and topology.c runs to resolve it on a topology.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    enum pareng__place_type type;
} type_names[] = {
    {"pu", PARENG__PLACE_PU},         {"core", PARENG__PLACE_CORE},
    {"package", PARENG__PLACE_PACKAGE}, {"socket", PARENG__PLACE_PACKAGE},
    {"numa", PARENG__PLACE_NUMA},     {"numanode", PARENG__PLACE_NUMA},
    {"node", PARENG__PLACE_NUMA},
};

const char *pareng__place_type_name(enum pareng__place_type type)
{
    for (size_t k = 0; k < sizeof type_names / sizeof type_names[0]; k++)
        if (type_names[k].type == type)
            return type_names[k].name;
    return "CPU";
}

static bool ends_with(const char *item, size_t len, const char *suffix)
{
    size_t suffix_len = strlen(suffix);
    return len >= suffix_len && strncmp(item + len - suffix_len, suffix, suffix_len) == 0;
}

/* What a user coming from hwloc-calc, taskset or likwid may try, and why it is refused;
 * range_why: what parse_range found wrong in an item whose TYPE (if any) is known, or NULL. */
static int refuse(const char *text, const char *item, size_t len, const char *range_why)
{
    const char *dot = memchr(item, '.', len);
    const char *why = "an item is N, N-M, or TYPE:all|N|N-M with TYPE pu, core, package "
                      "(socket) or numa (numanode, node), numbers of at most 9 digits";
    if (dot && memchr(dot, ':', len - (size_t)(dot - item)))
        why = "nested locations (package:0.core:1) are not accepted: name the cores "
              "(core:N-M) or the whole package";
    else if (range_why)
        why = range_why;
    else if (len > 1 && item[0] == '0' && (item[1] == 'x' || item[1] == 'X'))
        why = "bitmasks (0x3) are not accepted: list the CPUs (0,1)";
    else if (item[0] == '~')
        why = "exclusions (~) are not accepted: list what to use";
    else if (ends_with(item, len, "even") || ends_with(item, len, "odd"))
        why = "even and odd are not accepted: list the indexes";
    else if (len >= 2 && memchr(item, ':', len) && strchr("SNMCD", item[0]) &&
             (item[1] == ':' || (item[1] >= '0' && item[1] <= '9')))
        why = "likwid's domain prefixes (S0:, N:, M0:) are not accepted: use package:N, "
              "numa:N or OS CPU numbers";
    return pareng__fail(EINVAL, "CPU list '%s': '%.*s': %s", text, (int)len, item, why);
}

/* "N" or "N-M" of len bytes at s into *first, *last; false if it is not that, and in *why
 * what was wrong where it can say (a range that goes down, a fraction), else NULL. */
static bool parse_range(const char *s, size_t len, unsigned *first, unsigned *last,
                        const char **why)
{
    *why = memchr(s, '.', len) ? "CPUs are counted in whole numbers" : NULL;
    char buf[32];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *dash = strchr(buf, '-');
    if (dash)
        *dash = '\0';
    const char *parts[2] = {buf, dash ? dash + 1 : buf};
    unsigned long v[2];
    for (int k = 0; k < 2; k++) {
        size_t digits = strspn(parts[k], "0123456789");
        if (digits == 0 || parts[k][digits] != '\0' || digits > 9)
            return false;
        v[k] = strtoul(parts[k], NULL, 10);
    }
    if (v[1] < v[0]) {
        *why = "a range N-M goes up (M at least N): write the smaller number first";
        return false;
    }
    if (v[1] > INT_MAX)
        return false;
    *first = (unsigned)v[0];
    *last = (unsigned)v[1];
    return true;
}

int pareng__places_parse(const char *text, pareng__place_fn each, void *ctx)
{
    if (!text || !*text)
        return pareng__fail(EINVAL, "empty CPU list");
    enum pareng__place_type type = PARENG__PLACE_OS_CPU;
    for (const char *s = text;;) {
        size_t len = strcspn(s, ",");
        if (len == 0)
            return pareng__fail(EINVAL, "CPU list '%s' has an empty item", text);
        const char *spec = s;
        size_t spec_len = len;
        const char *colon = memchr(s, ':', len);
        if (colon) {
            size_t name_len = (size_t)(colon - s);
            size_t k = 0;
            while (k < sizeof type_names / sizeof type_names[0] &&
                   (strlen(type_names[k].name) != name_len ||
                    strncmp(type_names[k].name, s, name_len) != 0))
                k++;
            if (k == sizeof type_names / sizeof type_names[0])
                return refuse(text, s, len, NULL);
            type = type_names[k].type;
            spec = colon + 1;
            spec_len = len - name_len - 1;
        }
        pareng__place place = {.type = type};
        const char *why;
        if (colon && spec_len == 3 && strncmp(spec, "all", 3) == 0)
            place.all = true;
        else if (!parse_range(spec, spec_len, &place.first, &place.last, &why))
            return refuse(text, s, len, why);
        int rc = each ? each(ctx, &place) : 0;
        if (rc < 0)
            return rc;
        if (s[len] == '\0')
            return 0;
        s += len + 1;
    }
}
