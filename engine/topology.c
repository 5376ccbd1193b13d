/*
 * topology.c - what the machine looks like and where workers go, through hwloc: the CPUs this
 * process may use (cgroup cpuset and taskset both), the PU of each worker, and each worker's
 * victims ordered by distance. All of it is a pareng_plan, computed before any fork.
 */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <hwloc.h>
#include <limits.h>
#include <linux/mempolicy.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const level_names[PARENG__LEVELS] = {"core", "L2", "L3", "NUMA", "package",
                                                        "machine"};

const char *pareng_plan_level_name(unsigned level)
{
    return level < PARENG__LEVELS ? level_names[level] : "?";
}

/* What this process may use, as the kernel says now: its affinity (which the kernel keeps
 * inside its cgroup cpuset) and the memory nodes its cpuset allows (get_mempolicy's
 * MPOL_F_MEMS_ALLOWED). */
typedef struct allowed_now {
    cpu_set_t affinity;
    unsigned long mems[1024 / (8 * sizeof(unsigned long))]; /* Linux's most nodes */
} allowed_now;

/* Everything plan_create needs while it works; only the plan survives it. */
typedef struct planner {
    hwloc_topology_t topo;
    hwloc_bitmap_t allowed;
    hwloc_obj_t *pus; /* allowed PUs, logical order */
    unsigned n_pus;
    hwloc_obj_t *cores; /* cores with at least one allowed PU, logical order */
    unsigned n_cores;
    /* pus[core_first[c] .. + core_size[c]) are core c's allowed PUs: logical order is the
     * tree's depth-first order, so a core's PUs are consecutive in it */
    unsigned *core_first, *core_size;
    hwloc_obj_t *chosen; /* the PU of each worker */
    unsigned n_chosen;
    void *scratch; /* distance[n_chosen] while filling the plan */
    /* this machine's cache (topology_cache.c), once read, and its XML if just discovered */
    bool cache_read;
    int cache_state;
    pareng__topology_cache cache;
    char *discovered;
    size_t discovered_len;
    const allowed_now *known_allowed; /* read at this start already, or NULL */
} planner;

/* A PU's core; a topology without cores (some synthetic ones) makes each PU its own core. */
static hwloc_obj_t core_of(hwloc_topology_t topo, hwloc_obj_t pu)
{
    hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu);
    return core ? core : pu;
}

/* The k-th allowed PU (logical order) of allowed core c, or NULL. */
static hwloc_obj_t core_pu(const planner *p, unsigned c, unsigned k)
{
    return k < p->core_size[c] ? p->pus[p->core_first[c] + k] : NULL;
}

/* The k-th allowed PU inside obj, a PU or a core, or NULL. */
static hwloc_obj_t allowed_pu_in(const planner *p, hwloc_obj_t obj, unsigned k)
{
    if (obj->type == HWLOC_OBJ_PU && p->cores[0]->type != HWLOC_OBJ_PU)
        return k == 0 && hwloc_bitmap_isset(p->allowed, obj->os_index) ? obj : NULL;
    unsigned lo = 0, hi = p->n_cores; /* cores are in logical order: bisect */
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (p->cores[mid]->logical_index < obj->logical_index)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->n_cores && p->cores[lo] == obj ? core_pu(p, lo, k) : NULL;
}

/* Every hwloc failure becomes one of the errors pareng_plan_create promises: -ENOENT (no
 * such topology file), -ENOMEM, or -EIO for anything else hwloc refused. */
static int hwloc_failure(const char *what)
{
    int err = errno;
    return pareng__fail(err == ENOENT ? ENOENT : err == ENOMEM ? ENOMEM : EIO, "hwloc: %s: %s",
                        what, err == EINVAL ? "not an hwloc topology" : strerror(err));
}

/* Topologies that are not this machine come from a file or a description anyone can write;
 * hwloc's time to load one grows with the square of its PUs (4096 PUs: 1.4 s here; 262,144:
 * many minutes and gigabytes), and it would open a FIFO or /dev/zero as it opens a file. So a
 * topology file is read here, only from a regular file of at most MAX_TOPOLOGY_BYTES, and
 * either source is refused past MAX_TOPOLOGY_PUS PUs, before hwloc sees it. */
#define MAX_TOPOLOGY_PUS 4096u
#define MAX_TOPOLOGY_BYTES (64u << 20)
#define MAX_OS_INDEX (1u << 20)

/* The count stops at the limit (a product of arities may overflow): not said, as it is not
 * the description's. */
static int too_many_pus(const char *what)
{
    return pareng__fail(EIO, "%s describes more than %u PUs, which pareng plans for at most",
                        what, MAX_TOPOLOGY_PUS);
}

/* The XML of `path` into *xml (to free), checked as above; 0 or -errno with a message. */
static int read_topology_file(const char *path, char **xml, size_t *len)
{
    *xml = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return pareng__fail(errno == ENOENT ? ENOENT : EIO, "topology file %s: %s", path,
                            strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0)
        rc = pareng__fail(EIO, "topology file %s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = pareng__fail(EIO, "topology file %s is not a regular file", path);
    else if (st.st_size > MAX_TOPOLOGY_BYTES)
        rc = pareng__fail(EIO, "topology file %s has %lld bytes; the most is %u", path,
                          (long long)st.st_size, MAX_TOPOLOGY_BYTES);
    else if (!(*xml = malloc((size_t)st.st_size + 1)))
        rc = pareng__fail(ENOMEM, "out of memory");
    ssize_t n = rc ? 0 : read(fd, *xml, (size_t)st.st_size);
    close(fd);
    if (!rc && n < 0)
        rc = pareng__fail(EIO, "topology file %s: %s", path, strerror(errno));
    if (rc) {
        free(*xml);
        *xml = NULL;
        return rc;
    }
    (*xml)[n] = '\0';
    *len = (size_t)n + 1; /* hwloc counts the final NUL */
    if (memchr(*xml, '\0', (size_t)n)) { /* the checks below would stop at it, hwloc not */
        free(*xml);
        *xml = NULL;
        return pareng__fail(EIO, "topology file %s holds a NUL byte: not an XML topology", path);
    }
    uint64_t pus = 0;
    for (const char *at = *xml; (at = strstr(at, "type=")); at++)
        pus += strncmp(at + 5, "\"PU\"", 4) == 0 || strncmp(at + 5, "'PU'", 4) == 0;
    /* hwloc sizes its bitmaps by the largest OS index: os_index="4000000000" takes a GB */
    for (const char *at = *xml; (at = strstr(at, "os_index=")); at++)
        if (strtoull(at + 10, NULL, 10) > MAX_OS_INDEX) {
            free(*xml);
            *xml = NULL;
            return pareng__fail(EIO, "topology file %s has an os_index above %u", path,
                                MAX_OS_INDEX);
        }
    if (pus > MAX_TOPOLOGY_PUS) {
        free(*xml);
        *xml = NULL;
        char what[PATH_MAX + 16];
        snprintf(what, sizeof what, "topology file %s", path);
        return too_many_pus(what);
    }
    return 0;
}

/* The PUs of an hwloc synthetic description: the product of its levels' arities, scanned as
 * hwloc scans them (found by tests/fuzz): a number is read as strtoul reads it (blanks, signs,
 * 0x and 0 prefixes) and the scan goes on right after it, so levels may be glued together
 * ("core:2pu:4"); a type name is skipped up to the next ':'; memory levels in brackets and
 * attributes in parentheses add none. Past the limit it stops counting. */
static uint64_t synthetic_pus(const char *description)
{
    uint64_t pus = 1;
    for (const char *s = description; *s && pus <= MAX_TOPOLOGY_PUS;) {
        if (isspace((unsigned char)*s)) {
            s++;
            continue;
        }
        if (*s == '[' || *s == '(') {
            const char *close = strchr(s, *s == '[' ? ']' : ')');
            if (!close)
                break;
            s = close + 1;
            continue;
        }
        char *end;
        unsigned long long arity = strtoull(s, &end, 0);
        if (end != s) {
            pus = arity > MAX_TOPOLOGY_PUS ? MAX_TOPOLOGY_PUS + 1 : pus * arity;
            s = end;
            continue;
        }
        const char *colon = strchr(s, ':');
        if (!colon)
            break;
        s = colon + 1;
    }
    return pus;
}

/* hwloc's XML reader crashes on some malformed files (found by tests/fuzz): a file is first
 * loaded in a child process, and refused if that child dies, so that bad input costs the
 * caller an error, never its life. */
#define XML_TRIAL_SECONDS 10

static int try_xml_in_a_child(const char *path, const char *xml, size_t len)
{
    /* every signal blocked across the fork, as for workers: the caller's handlers (Python's
     * writes to a wakeup descriptor it shares) must not run in the child */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t child = fork();
    if (child < 0) {
        int err = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return pareng__fail(err, "cannot fork to check topology file %s: %s", path,
                            strerror(err));
    }
    if (child == 0) {
        for (int sig = 1; sig < NSIG; sig++)
            if (sig != SIGKILL && sig != SIGSTOP)
                signal(sig, SIG_DFL);
        /* the caller's crash handlers (a sanitizer's, a crash reporter's) may exit instead of
         * dying: here a crash must be a death by signal */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        alarm(XML_TRIAL_SECONDS);
        hwloc_topology_t trial;
        _exit(hwloc_topology_init(&trial) == 0 &&
                      hwloc_topology_set_xmlbuffer(trial, xml, (int)len) == 0 &&
                      hwloc_topology_load(trial) == 0
                  ? 0
                  : 1);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    int status = 0;
    pid_t reaped;
    while ((reaped = waitpid(child, &status, 0)) < 0 && errno == EINTR) {
    }
    if (reaped < 0) /* SIGCHLD ignored: the kernel reaped it, and its end is unknown */
        return pareng__fail(EIO, "topology file %s: cannot learn whether hwloc reads it safely "
                            "(SIGCHLD is ignored): refused", path);
    if (WIFSIGNALED(status))
        return pareng__fail(EIO, "topology file %s: hwloc %s reading it (signal %d): refused",
                            path, WTERMSIG(status) == SIGALRM ? "takes too long" : "crashes",
                            WTERMSIG(status));
    if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
        return pareng__fail(EIO, "topology file %s: hwloc crashes reading it: refused", path);
    return 0; /* a plain refusal (1) is hwloc's to say, in the caller */
}

/* Points the topology at its source: cfg's XML file, else hwloc's HWLOC_XMLFILE or
 * HWLOC_SYNTHETIC (given explicitly, so that hwloc reads nothing we have not checked), else
 * says that it is this machine. */
static int choose_topology_source(planner *p, const pareng_config *cfg, bool *this_machine)
{
    const char *path = cfg->topology_xml ? cfg->topology_xml : getenv("HWLOC_XMLFILE");
    const char *synthetic = getenv("HWLOC_SYNTHETIC");
    if (path) {
        char *xml;
        size_t len = 0;
        int rc = read_topology_file(path, &xml, &len);
        if (rc < 0)
            return rc;
        char what[PATH_MAX + 32];
        snprintf(what, sizeof what, "topology file %s", path);
        rc = try_xml_in_a_child(path, xml, len);
        if (rc == 0 && hwloc_topology_set_xmlbuffer(p->topo, xml, (int)len) < 0)
            rc = hwloc_failure(what);
        free(xml);
        return rc;
    }
    if (synthetic) {
        uint64_t pus = synthetic_pus(synthetic);
        if (pus > MAX_TOPOLOGY_PUS)
            return too_many_pus("HWLOC_SYNTHETIC");
        /* (indexes=...) names OS indexes, which size hwloc's bitmaps as in an XML file */
        for (const char *at = synthetic; (at = strstr(at, "indexes=")); at++)
            for (const char *n = at + 8; *n && *n != ')'; n++)
                if (isdigit((unsigned char)*n) && (n == at + 8 || !isdigit((unsigned char)n[-1])) &&
                    strtoull(n, NULL, 10) > MAX_OS_INDEX)
                    return pareng__fail(EIO, "HWLOC_SYNTHETIC names an OS index above %u",
                                        MAX_OS_INDEX);
        if (hwloc_topology_set_synthetic(p->topo, synthetic) < 0)
            return hwloc_failure("HWLOC_SYNTHETIC");
        return 0;
    }
    *this_machine = true;
    return 0;
}

/* hwloc loads its plugins (dlopen: 3 ms here) when a process's first topology is initialised
 * and unloads them when its last is destroyed, so a program that starts engines one after the
 * other (pareng.fib in a Python loop) would pay for them at every start. One topology that is
 * initialised once and never loaded nor destroyed keeps them: only the first start pays. */
static pthread_once_t plugins_kept = PTHREAD_ONCE_INIT;
static hwloc_topology_t plugin_keeper; /* reachable for the life of the process, on purpose */

static void keep_hwloc_plugins(void)
{
    if (hwloc_topology_init(&plugin_keeper) < 0)
        plugin_keeper = NULL; /* then each start loads them, as before */
}

/* Only what placement and victim order read: no L1 or instruction caches, no I/O or Misc
 * objects, no distances, memory attributes or CPU kinds (10 to 15% of the load here). A change
 * here changes DISCOVERY, so that cached topologies of the old settings are discovered anew. */
#define DISCOVERY "filters 1"
#define DISCOVERY_FLAGS                                                                        \
    (HWLOC_TOPOLOGY_FLAG_NO_DISTANCES | HWLOC_TOPOLOGY_FLAG_NO_MEMATTRS |                       \
     HWLOC_TOPOLOGY_FLAG_NO_CPUKINDS)

static void keep_only_what_placement_reads(hwloc_topology_t topo)
{
    hwloc_topology_set_type_filter(topo, HWLOC_OBJ_L1CACHE, HWLOC_TYPE_FILTER_KEEP_NONE);
    hwloc_topology_set_icache_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_NONE);
    hwloc_topology_set_io_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_NONE);
    hwloc_topology_set_type_filter(topo, HWLOC_OBJ_MISC, HWLOC_TYPE_FILTER_KEEP_NONE);
}

/* The whole of this machine, CPUs this process may not use included, as hwloc's XML, from the
 * cache (topology_cache.c), or discovered (then written with the plan): 0. 1 where there can
 * be no cache: then the caller discovers the machine itself. */
static int this_machine_as_xml(planner *p, const char **xml, size_t *len)
{
    if (!p->cache_read) {
        p->cache_state = pareng__topology_cache_read(DISCOVERY, &p->cache);
        p->cache_read = true;
    }
    if (p->cache_state == PARENG__TOPOLOGY_CACHE_HIT) {
        *xml = p->cache.xml;
        *len = p->cache.xml_len;
        return 0;
    }
    if (p->cache_state == PARENG__NO_TOPOLOGY_CACHE)
        return 1;
    hwloc_topology_t whole;
    if (hwloc_topology_init(&whole) < 0)
        return hwloc_failure("cannot initialise a topology");
    keep_only_what_placement_reads(whole);
    hwloc_topology_set_flags(whole, DISCOVERY_FLAGS | HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED);
    char *exported = NULL;
    int exported_len = 0, rc = 0;
    if (hwloc_topology_load(whole) < 0)
        rc = hwloc_failure("cannot load the topology");
    else if (hwloc_topology_export_xmlbuffer(whole, &exported, &exported_len, 0) < 0)
        rc = hwloc_failure("cannot export the topology");
    else if (!(p->discovered = malloc((size_t)exported_len)))
        rc = pareng__fail(ENOMEM, "out of memory");
    if (rc == 0) {
        /* hwloc counts the final NUL in the length */
        memcpy(p->discovered, exported, (size_t)exported_len);
        *xml = p->discovered;
        *len = p->discovered_len = (size_t)exported_len;
    }
    if (exported)
        hwloc_free_xmlbuffer(whole, exported);
    hwloc_topology_destroy(whole);
    return rc;
}

static bool read_allowed_now(allowed_now *now)
{
    memset(now, 0, sizeof *now);
    return sched_getaffinity(0, sizeof now->affinity, &now->affinity) == 0 &&
           syscall(SYS_get_mempolicy, NULL, now->mems, 8 * sizeof now->mems, NULL,
                   MPOL_F_MEMS_ALLOWED) == 0;
}

/* Whether this process may use every PU and every NUMA node of the topology just loaded:
 * `known`, or read now when the start has not read it yet. */
static bool nothing_disallowed(hwloc_topology_t topo, const allowed_now *known)
{
    allowed_now read;
    if (!known && !read_allowed_now(&read))
        return false;
    const allowed_now *now = known ? known : &read;
    hwloc_const_bitmap_t pus = hwloc_topology_get_topology_cpuset(topo);
    if (hwloc_bitmap_weight(pus) != CPU_COUNT(&now->affinity))
        return false;
    unsigned i;
    hwloc_bitmap_foreach_begin(i, pus) {
        if (i >= CPU_SETSIZE || !CPU_ISSET(i, &now->affinity))
            return false;
    }
    hwloc_bitmap_foreach_end();
    const unsigned word = 8 * sizeof *now->mems;
    hwloc_bitmap_foreach_begin(i, hwloc_topology_get_topology_nodeset(topo)) {
        if (i >= 8 * sizeof now->mems || !(now->mems[i / word] >> (i % word) & 1))
            return false;
    }
    hwloc_bitmap_foreach_end();
    return true;
}

/* This machine from its XML, cached or just discovered, so that both plan alike. What this
 * process may use is never taken from the cache. Most processes may use the whole machine:
 * then the XML with every PU and node kept is what hwloc's THISSYSTEM_ALLOWED_RESOURCES would
 * give, and the cgroup's files need not be read (/proc/mounts, /proc/self/cpuset, cpuset.cpus,
 * cpuset.mems: half of the plan here). Otherwise the XML is loaded again with them read. */
static int load_xml(hwloc_topology_t topo, const char *xml, size_t len, unsigned long flags)
{
    hwloc_topology_set_flags(topo, DISCOVERY_FLAGS | HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM | flags);
    if (hwloc_topology_set_xmlbuffer(topo, xml, (int)len) < 0)
        return hwloc_failure("cannot read the topology's XML");
    return hwloc_topology_load(topo) < 0 ? hwloc_failure("cannot load the topology") : 0;
}

/* p's topology emptied again, filtered as placement reads it, for another load. */
static int topology_anew(planner *p)
{
    if (p->topo)
        hwloc_topology_destroy(p->topo);
    if (hwloc_topology_init(&p->topo) < 0)
        return p->topo = NULL, hwloc_failure("cannot initialise a topology");
    keep_only_what_placement_reads(p->topo);
    return 0;
}

static int load_this_machine_xml(planner *p, const char *xml, size_t len)
{
    int rc = load_xml(p->topo, xml, len, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED);
    if (rc < 0)
        return rc;
    /* The XML's own allowed sets are those of the process that discovered it: all, now */
    if (nothing_disallowed(p->topo, p->known_allowed))
        return hwloc_topology_allow(p->topo, NULL, NULL, HWLOC_ALLOW_FLAG_ALL) < 0
                   ? hwloc_failure("cannot allow the whole topology")
                   : 0;
    rc = topology_anew(p);
    return rc < 0 ? rc
                  : load_xml(p->topo, xml, len, HWLOC_TOPOLOGY_FLAG_THISSYSTEM_ALLOWED_RESOURCES);
}

/* The cache's XML that hwloc would not load (damaged inside a right checksum): a cache costs
 * only its speed, so the machine is discovered, and the cache written again with it. */
static int load_discovered_instead(planner *p)
{
    p->cache_state = PARENG__TOPOLOGY_CACHE_MISS;
    const char *xml;
    size_t len;
    int rc = topology_anew(p);
    if (rc == 0)
        rc = this_machine_as_xml(p, &xml, &len);
    return rc == 0 ? load_this_machine_xml(p, xml, len) : rc;
}

static int load_topology(planner *p, const pareng_config *cfg)
{
    pthread_once(&plugins_kept, keep_hwloc_plugins);
    /* Errors of the topology itself are -ENOENT or -EIO (hwloc_failure), so that callers can
     * tell them from a bad CPU list (-EINVAL, -ERANGE). */
    if (hwloc_topology_init(&p->topo) < 0)
        return p->topo = NULL, hwloc_failure("cannot initialise a topology");
    bool this_machine = false;
    int rc = choose_topology_source(p, cfg, &this_machine);
    if (rc < 0)
        return rc;
    keep_only_what_placement_reads(p->topo);
    const char *xml = NULL;
    size_t len = 0;
    if (this_machine && cfg->topology_cache != PARENG_TOPOLOGY_CACHE_OFF &&
        (rc = this_machine_as_xml(p, &xml, &len)) == 0) {
        rc = load_this_machine_xml(p, xml, len);
        if (rc < 0 && p->cache_state == PARENG__TOPOLOGY_CACHE_HIT)
            rc = load_discovered_instead(p);
    } else if (rc >= 0) { /* 1: no cache, this machine discovered directly */
        hwloc_topology_set_flags(p->topo, DISCOVERY_FLAGS);
        rc = hwloc_topology_load(p->topo) < 0 ? hwloc_failure("cannot load the topology") : 0;
    }
    if (rc < 0)
        return rc;
    /* what the checks before the load could not see (an XML spelled otherwise) */
    int n = hwloc_get_nbobjs_by_type(p->topo, HWLOC_OBJ_PU);
    if (n > (int)MAX_TOPOLOGY_PUS)
        return too_many_pus("the topology");
    p->allowed = hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(p->topo));
    if (!p->allowed)
        return pareng__fail(ENOMEM, "out of memory");
    /* hwloc already removed what the cgroup cpuset forbids; taskset's mask is this thread's
     * binding, which only means something on the real machine. */
    if (hwloc_topology_is_thissystem(p->topo)) {
        hwloc_bitmap_t bound = hwloc_bitmap_alloc();
        if (bound && hwloc_get_cpubind(p->topo, bound, HWLOC_CPUBIND_THREAD) == 0)
            hwloc_bitmap_and(p->allowed, p->allowed, bound);
        hwloc_bitmap_free(bound);
    }

    p->pus = calloc(n > 0 ? n : 1, sizeof *p->pus);
    p->cores = calloc(n > 0 ? n : 1, sizeof *p->cores);
    p->core_first = calloc(n > 0 ? n : 1, sizeof *p->core_first);
    p->core_size = calloc(n > 0 ? n : 1, sizeof *p->core_size);
    if (!p->pus || !p->cores || !p->core_first || !p->core_size)
        return pareng__fail(ENOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        hwloc_obj_t pu = hwloc_get_obj_by_type(p->topo, HWLOC_OBJ_PU, i);
        if (!hwloc_bitmap_isset(p->allowed, pu->os_index))
            continue;
        hwloc_obj_t core = core_of(p->topo, pu);
        if (p->n_cores == 0 || p->cores[p->n_cores - 1] != core) {
            p->core_first[p->n_cores] = p->n_pus;
            p->cores[p->n_cores++] = core;
        }
        p->core_size[p->n_cores - 1]++;
        p->pus[p->n_pus++] = pu;
    }
    if (p->n_pus == 0)
        return pareng__fail(EINVAL, "no CPU is available to this process");
    return 0;
}

static int allowed_error(planner *p, const char *what, unsigned v)
{
    char *list = NULL;
    hwloc_bitmap_list_asprintf(&list, p->allowed);
    int rc = pareng__fail(ERANGE, "%s %u is not one this process may use (allowed CPUs: %s)",
                          what, v, list ? list : "?");
    free(list);
    return rc;
}

static int choose(planner *p, hwloc_obj_t pu)
{
    if (p->n_chosen == PARENG_MAX_WORKERS)
        return pareng__fail(EINVAL, "the CPU list names more than %d workers", PARENG_MAX_WORKERS);
    p->chosen[p->n_chosen++] = pu;
    return 0;
}

/* One worker per allowed core inside obj, in logical order (its first allowed PU). */
static int choose_cores_in(planner *p, hwloc_obj_t obj)
{
    for (unsigned c = 0; c < p->n_cores; c++)
        if (hwloc_bitmap_isincluded(p->cores[c]->cpuset, obj->cpuset)) {
            int rc = choose(p, core_pu(p, c, 0));
            if (rc < 0)
                return rc;
        }
    return 0;
}

/* obj (a package or a NUMA node) gave no worker: none of its PUs is allowed, or it holds no
 * whole core, only part of one (a synthetic topology may split a core between NUMA nodes).
 * -ERANGE saying which, or 0 for `all`, which skips what this process may not use. */
static int nothing_inside(planner *p, const char *name, hwloc_obj_t obj, bool all)
{
    hwloc_bitmap_t inside = hwloc_bitmap_alloc();
    if (!inside)
        return pareng__fail(ENOMEM, "out of memory");
    hwloc_bitmap_and(inside, obj->cpuset, p->allowed);
    int rc = 0;
    if (hwloc_bitmap_iszero(inside)) {
        rc = all ? 0 : allowed_error(p, name, obj->logical_index);
    } else {
        hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(p->topo,
                                                      (unsigned)hwloc_bitmap_first(inside));
        unsigned core = core_of(p->topo, pu)->logical_index;
        char *cpus = NULL;
        hwloc_bitmap_list_asprintf(&cpus, inside);
        rc = pareng__fail(ERANGE, "%s L#%u holds no whole core, only part of core L#%u: name "
                          "its CPUs (%s) or the core (core:%u)", name, obj->logical_index, core,
                          cpus ? cpus : "?", core);
        free(cpus);
    }
    hwloc_bitmap_free(inside);
    return rc;
}

static hwloc_obj_type_t hwloc_type_of(const planner *p, enum pareng__place_type type)
{
    switch (type) {
    case PARENG__PLACE_CORE: /* without Core objects each PU is its own core, as everywhere */
        return hwloc_get_nbobjs_by_type(p->topo, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE
                                                                     : HWLOC_OBJ_PU;
    case PARENG__PLACE_PACKAGE:
        return HWLOC_OBJ_PACKAGE;
    case PARENG__PLACE_NUMA:
        return HWLOC_OBJ_NUMANODE;
    default:
        return HWLOC_OBJ_PU;
    }
}

/* One item of the CPU list (places.c) on this topology. */
static int choose_place(void *ctx, const pareng__place *place)
{
    planner *p = ctx;
    const char *name = pareng__place_type_name(place->type);
    if (place->type == PARENG__PLACE_OS_CPU) {
        for (unsigned v = place->first; v <= place->last; v++) {
            hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(p->topo, v);
            if (!pu || !hwloc_bitmap_isset(p->allowed, v))
                return allowed_error(p, "CPU", v);
            int rc = choose(p, pu);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    hwloc_obj_type_t type = hwloc_type_of(p, place->type);
    int count = hwloc_get_nbobjs_by_type(p->topo, type);
    if (count <= 0)
        return pareng__fail(ERANGE, "this machine's topology has no %s objects", name);
    unsigned first = place->all ? 0 : place->first, last = place->all ? (unsigned)count - 1
                                                                        : place->last;
    for (unsigned v = first; v <= last; v++) {
        hwloc_obj_t obj = hwloc_get_obj_by_type(p->topo, type, v);
        if (!obj)
            return pareng__fail(ERANGE, "there is no %s L#%u on this machine (it has %d)", name,
                                v, count);
        int rc;
        if (type == HWLOC_OBJ_PU || type == HWLOC_OBJ_CORE) {
            hwloc_obj_t pu = allowed_pu_in(p, obj, 0);
            if (!pu && place->all)
                continue; /* all = all that this process may use */
            rc = pu ? choose(p, pu) : allowed_error(p, name, v);
        } else {
            unsigned before = p->n_chosen;
            rc = choose_cores_in(p, obj);
            if (rc == 0 && p->n_chosen == before)
                rc = nothing_inside(p, name, obj, place->all);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* K workers, close: one per core in logical order, then the cores' second PUs (SMT), and so
 * on; once a core's PUs are all used, its next round starts again at its first PU. */
static void choose_count(planner *p, unsigned k)
{
    k = k < PARENG_MAX_WORKERS ? k : PARENG_MAX_WORKERS; /* a machine of more cores than that */
    unsigned most = 1; /* the most allowed PUs of any core */
    for (unsigned c = 0; c < p->n_cores; c++)
        most = p->core_size[c] > most ? p->core_size[c] : most;
    for (unsigned round = 0; p->n_chosen < k; round++)
        for (unsigned c = 0; c < p->n_cores && p->n_chosen < k; c++) {
            hwloc_obj_t pu = core_pu(p, c, round);
            if (!pu && round >= most) /* every PU of every core has a worker: wrap */
                for (unsigned r = round % most; !pu; r = (r + most - 1) % most)
                    pu = core_pu(p, c, r);
            if (pu)
                p->chosen[p->n_chosen++] = pu;
        }
}

/* What two workers' PUs share, nearest first: the first common ancestor in hwloc's tree. Its
 * depth orders the victims (deeper is nearer); its kind names the level. NUMA nodes are memory
 * children of some CPU-side object in hwloc 2, so "same NUMA node" is a common ancestor that
 * carries one, wherever it sits (above packages in some VMs, below an L3 with sub-NUMA
 * clustering). */
typedef struct distance {
    int depth;      /* of the common ancestor */
    unsigned level; /* 0 core, 1 L2, 2 L3, 3 NUMA, 4 package, 5 machine */
} distance;

/* The level that names what lies under `o`: its own, or for a kind without a name of its own
 * (a die, a group, an L4) the nearest named one above it, which everything under `o` shares
 * too (two cores of one die are of one package). */
static unsigned level_of(hwloc_obj_t o)
{
    for (; o->parent; o = o->parent) /* the root is the machine */
        switch (o->type) {
        case HWLOC_OBJ_PU:
        case HWLOC_OBJ_CORE:
        case HWLOC_OBJ_L1CACHE:
            return 0;
        case HWLOC_OBJ_L2CACHE:
            return 1;
        case HWLOC_OBJ_L3CACHE:
            return 2;
        case HWLOC_OBJ_PACKAGE:
            return 4;
        default:
            if (o->memory_arity > 0)
                return 3;
            break;
        }
    return 5;
}

static distance distance_between(hwloc_topology_t topo, hwloc_obj_t a, hwloc_obj_t b)
{
    hwloc_obj_t common = hwloc_get_common_ancestor_obj(topo, a, b);
    distance d = {.depth = common->depth, .level = level_of(common)};
    if (core_of(topo, a) == core_of(topo, b)) /* the same PU is no nearer than its core */
        d = (distance){.depth = core_of(topo, a)->depth, .level = 0};
    return d;
}

/* The plan's arrays for n workers (each worker's victims: m = n - 1, or 1 for one worker) */
static int allocate_plan(pareng_plan *plan, unsigned n)
{
    unsigned m = n > 1 ? n - 1 : 1;
    plan->n_workers = n;
    plan->placement = calloc(n, sizeof *plan->placement);
    plan->victims = calloc((size_t)n * m, sizeof *plan->victims);
    plan->victim_levels = calloc((size_t)n * m, sizeof *plan->victim_levels);
    plan->victim_groups = calloc((size_t)n * m, sizeof *plan->victim_groups);
    plan->near = calloc((size_t)n * n, sizeof *plan->near);
    return plan->placement && plan->victims && plan->victim_levels && plan->victim_groups &&
                   plan->near
               ? 0
               : pareng__fail(ENOMEM, "out of memory");
}

static int fill_plan(pareng_plan *plan, planner *p)
{
    unsigned n = p->n_chosen, m = n > 1 ? n - 1 : 1;
    plan->n_cores = p->n_cores;
    plan->n_pus = p->n_pus;
    plan->this_system = hwloc_topology_is_thissystem(p->topo);
    plan->oversubscribed = n > p->n_cores;
    p->scratch = calloc(n, sizeof(distance));
    if (allocate_plan(plan, n) < 0 || !p->scratch)
        return pareng__fail(ENOMEM, "out of memory");
    for (unsigned i = 0; i < n; i++) {
        hwloc_obj_t pu = p->chosen[i], core = core_of(p->topo, pu);
        hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(p->topo, HWLOC_OBJ_PACKAGE, pu);
        pareng_placement *pl = &plan->placement[i];
        pl->pu_os = pu->os_index;
        pl->pu_logical = pu->logical_index;
        pl->core_logical = core->logical_index;
        pl->package_logical = pkg ? pkg->logical_index : PARENG_NO_PACKAGE;
        for (unsigned j = 0; j < n; j++) {
            if (j == i)
                continue;
            pl->shared_pu |= p->chosen[j] == pu;
            pl->shared_core |= core_of(p->topo, p->chosen[j]) == core;
        }
        /* Victims nearest first (deepest common ancestor), and inside a group of equal
         * distance from i+1 upwards (wrapping): a fixed order the tests can check; the worker
         * starts each group at a random member at run time. */
        unsigned *v = plan->victims + (size_t)i * m, *lv = plan->victim_levels + (size_t)i * m;
        unsigned *gv = plan->victim_groups + (size_t)i * m;
        distance *dist = p->scratch;
        int deepest = 0;
        for (unsigned j = 0; j < n; j++) {
            dist[j] = distance_between(p->topo, pu, p->chosen[j]);
            if (j != i && dist[j].depth > deepest)
                deepest = dist[j].depth;
        }
        unsigned count = 0;
        for (unsigned j = 0; j < n; j++)
            plan->near[(size_t)i * n + j] = dist[j].level <= 2;
        for (int depth = deepest; depth >= 0; depth--)
            for (unsigned step = 1; step < n; step++) {
                unsigned j = (i + step) % n;
                if (dist[j].depth == depth) {
                    v[count] = j;
                    lv[count] = dist[j].level;
                    gv[count++] = (unsigned)(deepest - depth);
                }
            }
    }
    plan->topology = p->topo;
    plan->allowed = p->allowed;
    p->topo = NULL;
    p->allowed = NULL;
    return 0;
}

/* ---- plans kept in this machine's cache (topology_cache.c) ----
 * A plan of this machine depends on its XML, which the cache holds, and on nothing else but
 * what this process may use now (read from the kernel at every start, as for the XML) and the
 * configuration's workers and CPU list: that is its key. A start that finds it there makes no
 * topology at all (0.27 ms of the CLI's start here, most of the plan); the topology is loaded
 * only if asked for (pareng_plan_topology). The cache is this user's and checksummed; a plan
 * read from it is still checked against what it claims before a worker is pinned by it. */
#define PLAN_KEY_BYTES 2048

static bool plan_key(const pareng_config *cfg, const allowed_now *now, char *key, size_t size)
{
    if (cfg->cpus && strchr(cfg->cpus, '\n'))
        return false;
    /* the library's version too: another version's plan may mean something else */
    int n = snprintf(key, size, "workers %u cpus %s pareng %s affinity ", cfg->workers,
                     cfg->cpus ? cfg->cpus : "-", pareng_version());
    const unsigned char *bytes[2] = {(const unsigned char *)&now->affinity,
                                     (const unsigned char *)now->mems};
    const size_t sizes[2] = {sizeof now->affinity, sizeof now->mems};
    static const char hex[] = "0123456789abcdef";
    for (int k = 0; k < 2 && n > 0; k++) {
        if ((size_t)n + 2 * sizes[k] + sizeof " mems " >= size)
            return false;
        for (size_t i = 0; i < sizes[k]; i++) { /* 512 snprintf calls took 30 us */
            key[n++] = hex[bytes[k][i] >> 4];
            key[n++] = hex[bytes[k][i] & 15];
        }
        n += snprintf(key + n, size - (size_t)n, k ? "" : " mems ");
    }
    return n > 0;
}

typedef struct plan_record {
    uint32_t n_workers, n_cores, n_pus, oversubscribed;
} plan_record;

/* The record's parts, in order: the head, then each array of the plan */
static size_t record_parts(pareng_plan *plan, unsigned n, void **parts, size_t *sizes)
{
    size_t m = n > 1 ? n - 1 : 1;
    void *p[] = {plan->placement, plan->victims, plan->victim_levels, plan->victim_groups,
                 plan->near};
    size_t z[] = {n * sizeof *plan->placement, n * m * sizeof *plan->victims,
                  n * m * sizeof *plan->victim_levels, n * m * sizeof *plan->victim_groups,
                  (size_t)n * n * sizeof *plan->near};
    size_t total = sizeof(plan_record);
    for (int i = 0; i < 5; i++) {
        parts[i] = p[i];
        sizes[i] = z[i];
        total += z[i];
    }
    return total;
}

static void *plan_to_record(pareng_plan *plan, size_t *len)
{
    void *parts[5];
    size_t sizes[5];
    *len = record_parts(plan, plan->n_workers, parts, sizes);
    char *record = malloc(*len), *at = record;
    if (!record)
        return NULL;
    plan_record head = {plan->n_workers, plan->n_cores, plan->n_pus, plan->oversubscribed};
    memcpy(at, &head, sizeof head);
    at += sizeof head;
    for (int i = 0; i < 5; i++) {
        memcpy(at, parts[i], sizes[i]);
        at += sizes[i];
    }
    return record;
}

/* Each worker's placement and victims as fill_plan makes them: its PU one this process may use,
 * its victims every other worker once, nearest first, and levels and flags in their ranges
 * (the flags of type bool are checked as bytes, before they are copied) */
static bool plausible(const pareng_plan *plan, const allowed_now *now)
{
    unsigned n = plan->n_workers, m = n > 1 ? n - 1 : 1;
    if (plan->n_cores == 0 || plan->n_pus < plan->n_cores ||
        plan->oversubscribed != (n > plan->n_cores))
        return false;
    for (unsigned i = 0; i < n; i++) {
        const pareng_placement *pl = &plan->placement[i];
        if (pl->pu_os >= CPU_SETSIZE || !CPU_ISSET(pl->pu_os, &now->affinity) ||
            (unsigned)pl->shared_core > 1 || (unsigned)pl->shared_pu > 1)
            return false;
        bool seen[PARENG_MAX_WORKERS] = {false};
        for (unsigned k = 0; k < n - 1; k++) {
            unsigned v = plan->victims[(size_t)i * m + k];
            const unsigned *group = &plan->victim_groups[(size_t)i * m + k];
            if (v >= n || v == i || seen[v] ||
                plan->victim_levels[(size_t)i * m + k] >= PARENG__LEVELS ||
                (k > 0 && group[0] < group[-1])) /* nearest first */
                return false;
            seen[v] = true;
        }
    }
    return true;
}

static bool plan_from_record(pareng_plan *plan, const void *record, size_t len,
                             const allowed_now *now, unsigned workers_asked)
{
    plan_record head;
    if (len < sizeof head)
        return false;
    memcpy(&head, record, sizeof head);
    void *parts[5];
    size_t sizes[5];
    if (head.n_workers == 0 || head.n_workers > PARENG_MAX_WORKERS ||
        (workers_asked && head.n_workers != workers_asked) ||
        allocate_plan(plan, head.n_workers) < 0 ||
        record_parts(plan, head.n_workers, parts, sizes) != len)
        return false;
    const unsigned char *at = (const unsigned char *)record + sizeof head;
    for (size_t i = 0; i < sizes[4]; i++) /* near[], the last part */
        if (at[len - sizeof head - sizes[4] + i] > 1)
            return false;
    for (int i = 0; i < 5; i++) {
        memcpy(parts[i], at, sizes[i]);
        at += sizes[i];
    }
    if (head.oversubscribed > 1)
        return false;
    plan->n_cores = head.n_cores;
    plan->n_pus = head.n_pus;
    plan->oversubscribed = head.oversubscribed;
    plan->this_system = true;
    return plausible(plan, now);
}

static void planner_free(planner *p)
{
    if (p->topo)
        hwloc_topology_destroy(p->topo);
    hwloc_bitmap_free(p->allowed);
    free(p->pus);
    free(p->cores);
    free(p->core_first);
    free(p->core_size);
    free(p->chosen);
    free(p->scratch);
    free(p->discovered);
    pareng__topology_cache_free(&p->cache);
}

static int plan_with_hwloc(pareng_plan *plan, planner *p, const pareng_config *cfg)
{
    p->chosen = calloc(PARENG_MAX_WORKERS, sizeof *p->chosen);
    int rc = !p->chosen ? pareng__fail(ENOMEM, "out of memory") : load_topology(p, cfg);
    if (rc == 0 && cfg->cpus) {
        rc = pareng__places_parse(cfg->cpus, choose_place, p);
        if (rc == 0 && p->n_chosen == 0)
            rc = pareng__fail(ERANGE, "the CPU list '%s' names no CPU this process may use",
                              cfg->cpus);
        if (rc == 0 && cfg->workers && cfg->workers != p->n_chosen)
            rc = pareng__fail(EINVAL, "%u workers asked for but the CPU list '%s' names %u",
                              cfg->workers, cfg->cpus, p->n_chosen);
    } else if (rc == 0) {
        choose_count(p, cfg->workers ? cfg->workers : p->n_cores);
    }
    return rc == 0 ? fill_plan(plan, p) : rc;
}

int pareng_plan_create(pareng_plan **out, const pareng_config *cfg)
{
    *out = NULL;
    pareng_config defaults;
    if (!cfg) {
        pareng_config_default(&defaults);
        cfg = &defaults;
    }
    if (pareng__config_check(cfg) < 0)
        return -EINVAL;
    if (cfg->workers > PARENG_MAX_WORKERS)
        return pareng__fail(EINVAL, "%u workers asked for; the most is %d", cfg->workers,
                            PARENG_MAX_WORKERS);
    planner p = {0};
    pareng_plan *plan = calloc(1, sizeof *plan);
    if (!plan)
        return pareng__fail(ENOMEM, "out of memory");
    allowed_now now;
    char key[PLAN_KEY_BYTES];
    if (!cfg->topology_xml && cfg->topology_cache != PARENG_TOPOLOGY_CACHE_OFF &&
        read_allowed_now(&now))
        p.known_allowed = &now;
    bool keyed = p.known_allowed && plan_key(cfg, &now, key, sizeof key);
    if (keyed) {
        p.cache_state = pareng__topology_cache_read(DISCOVERY, &p.cache);
        p.cache_read = true;
    }
    size_t len = 0;
    const void *kept = keyed ? pareng__topology_cache_plan(&p.cache, key, &len) : NULL;
    int rc = 0;
    if (!kept || !plan_from_record(plan, kept, len, &now, cfg->workers)) {
        pareng_plan_destroy(plan);
        plan = calloc(1, sizeof *plan);
        rc = plan ? plan_with_hwloc(plan, &p, cfg) : pareng__fail(ENOMEM, "out of memory");
        /* the topology's XML as the cache has it, or just discovered, and this plan of it */
        const char *xml = p.discovered ? p.discovered : p.cache.xml;
        size_t xml_len = p.discovered ? p.discovered_len : p.cache.xml_len;
        void *record = rc == 0 && keyed ? plan_to_record(plan, &len) : NULL;
        if (rc == 0 && xml && (record || p.discovered))
            pareng__topology_cache_write(DISCOVERY, xml, xml_len, &p.cache,
                                         record ? key : NULL, record, len);
        free(record);
    }
    planner_free(&p);
    if (rc < 0) {
        pareng_plan_destroy(plan);
        return rc;
    }
    *out = plan;
    return 0;
}

void pareng_plan_destroy(pareng_plan *plan)
{
    if (!plan)
        return;
    if (plan->topology)
        hwloc_topology_destroy(plan->topology);
    hwloc_bitmap_free(plan->allowed);
    free(plan->placement);
    free(plan->victims);
    free(plan->victim_levels);
    free(plan->victim_groups);
    free(plan->near);
    free(plan);
}

unsigned pareng_plan_workers(const pareng_plan *plan) { return plan->n_workers; }
unsigned pareng_plan_cores(const pareng_plan *plan) { return plan->n_cores; }
unsigned pareng_plan_pus(const pareng_plan *plan) { return plan->n_pus; }

static int check_worker(const pareng_plan *plan, unsigned worker)
{
    return worker < plan->n_workers ? 0
                                    : pareng__fail(EINVAL, "no worker %u (the plan has %u)",
                                                   worker, plan->n_workers);
}

/* Worker's row of one of the plan's victim tables (n_workers rows of n_workers - 1). */
static const unsigned *victim_row(const pareng_plan *plan, const unsigned *table,
                                  unsigned worker)
{
    unsigned m = plan->n_workers - 1;
    return table + (size_t)worker * (m ? m : 1);
}

int pareng_plan_placement(const pareng_plan *plan, unsigned worker, pareng_placement *out)
{
    int rc = check_worker(plan, worker);
    if (rc < 0)
        return rc;
    *out = plan->placement[worker];
    return 0;
}

int pareng_plan_victims(const pareng_plan *plan, unsigned worker, unsigned *victims,
                        unsigned *levels, unsigned max)
{
    int rc = check_worker(plan, worker);
    if (rc < 0)
        return rc;
    const unsigned *row = victim_row(plan, plan->victims, worker);
    const unsigned *level_row = victim_row(plan, plan->victim_levels, worker);
    unsigned m = plan->n_workers - 1;
    for (unsigned i = 0; i < m && i < max; i++) {
        victims[i] = row[i];
        if (levels)
            levels[i] = level_row[i];
    }
    return (int)m;
}

int pareng_plan_victim_groups(const pareng_plan *plan, unsigned worker, unsigned *groups,
                              unsigned max)
{
    int rc = check_worker(plan, worker);
    if (rc < 0)
        return rc;
    /* the plan numbers a group by its distance, with gaps where no victim is: counted here */
    const unsigned *row = victim_row(plan, plan->victim_groups, worker);
    unsigned m = plan->n_workers - 1, group = 0;
    for (unsigned i = 0; i < m && i < max; i++) {
        group += i > 0 && row[i] != row[i - 1];
        groups[i] = group;
    }
    return (int)m;
}

/* In a worker just forked, so nothing that may allocate: the caller may have had threads, one
 * of which held an allocator's lock at the fork (hwloc's process binding lists the threads
 * with opendir, and its thread binding allocates the kernel's mask: a worker of a Python
 * caller hung there under AddressSanitizer, whose allocator has no fork handlers). The worker
 * has one thread, so binding it is binding the process: sched_setaffinity with a mask on the
 * stack. */
int pareng__plan_bind(const pareng_plan *plan, unsigned worker)
{
    if (!plan->this_system)
        return 0;
    unsigned pu = plan->placement[worker].pu_os;
    enum { BITS = 8 * sizeof(unsigned long) };
    unsigned long mask[pu / BITS + 1];
    memset(mask, 0, sizeof mask);
    mask[pu / BITS] = 1ul << (pu % BITS);
    if (syscall(SYS_sched_setaffinity, 0, sizeof mask, mask) < 0)
        return pareng__fail(errno, "cannot bind a worker to PU P#%u: %s", pu, strerror(errno));
    return 0;
}

int pareng_plan_is_this_system(const pareng_plan *plan)
{
    return plan->this_system;
}

static bool listed_type(hwloc_obj_t obj)
{
    switch (obj->type) {
    case HWLOC_OBJ_MACHINE:
    case HWLOC_OBJ_GROUP:
    case HWLOC_OBJ_PACKAGE:
    case HWLOC_OBJ_DIE:
    case HWLOC_OBJ_NUMANODE:
    case HWLOC_OBJ_L3CACHE:
    case HWLOC_OBJ_L2CACHE:
    case HWLOC_OBJ_CORE:
    case HWLOC_OBJ_PU:
        return true;
    default:
        return false;
    }
}

typedef struct topo_walk {
    const pareng_plan *plan;
    hwloc_const_bitmap_t allowed;
    pareng_topo_object *out;
    unsigned max, count;
} topo_walk;

static void walk_object(topo_walk *t, hwloc_obj_t obj, unsigned nesting)
{
    if (listed_type(obj)) {
        if (t->count < t->max) {
            pareng_topo_object *o = &t->out[t->count];
            memset(o, 0, sizeof *o);
            hwloc_obj_type_snprintf(o->type, sizeof o->type, obj, 0);
            const char *model = hwloc_obj_get_info_by_name(obj, "CPUModel");
            if (model && obj->type == HWLOC_OBJ_PACKAGE)
                snprintf(o->model, sizeof o->model, "%s", model);
            o->nesting = nesting;
            o->logical = obj->logical_index;
            o->os = obj->os_index == HWLOC_UNKNOWN_INDEX ? -1 : (int)obj->os_index;
            o->bytes = obj->type == HWLOC_OBJ_NUMANODE ? obj->attr->numanode.local_memory
                       : hwloc_obj_type_is_cache(obj->type) ? obj->attr->cache.size
                                                            : 0;
            o->allowed = obj->cpuset ? hwloc_bitmap_intersects(obj->cpuset, t->allowed)
                                     : hwloc_bitmap_intersects(obj->parent->cpuset, t->allowed);
            o->worker = -1;
            for (unsigned w = 0; obj->type == HWLOC_OBJ_PU && w < t->plan->n_workers; w++)
                if (t->plan->placement[w].pu_logical == obj->logical_index) {
                    o->worker = (int)w;
                    break;
                }
        }
        t->count++;
        nesting++;
    }
    for (hwloc_obj_t m = obj->memory_first_child; m; m = m->next_sibling)
        walk_object(t, m, nesting);
    for (hwloc_obj_t c = obj->first_child; c; c = c->next_sibling)
        walk_object(t, c, nesting);
}

/* A plan from the cache has no topology until one is asked for: this machine's, loaded as for
 * a plan (what this process may use included), once. */
static int load_plan_topology(pareng_plan *plan)
{
    static pthread_mutex_t loading = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&loading);
    int rc = 0;
    if (!plan->topology) {
        pareng_config cfg;
        pareng_config_default(&cfg);
        planner p = {0};
        rc = load_topology(&p, &cfg);
        if (rc == 0) {
            plan->topology = p.topo;
            plan->allowed = p.allowed;
            p.topo = NULL;
            p.allowed = NULL;
        }
        planner_free(&p);
    }
    pthread_mutex_unlock(&loading);
    return rc;
}

int pareng_plan_topology(const pareng_plan *plan, pareng_topo_object *out, unsigned max)
{
    /* the plan's own lazily loaded topology, not what the caller sees of the plan */
    int rc = plan->topology ? 0 : load_plan_topology((pareng_plan *)plan);
    if (rc < 0)
        return rc;
    topo_walk t = {.plan = plan, .allowed = plan->allowed, .out = out, .max = max};
    walk_object(&t, hwloc_get_root_obj((hwloc_topology_t)plan->topology), 0);
    return (int)t.count;
}
