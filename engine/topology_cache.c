/*
 * topology_cache.c - the per-user cache of this machine's topology and of the plans made on
 * it: where it lives, what it is keyed on, and why a start may trust it.
 *
 * hwloc's discovery of this machine opens some 150 files of /sys and /proc: 1.3 ms of a start
 * here, where loading the same topology from its XML takes 0.13 ms. So topology.c discovers
 * the whole machine once, disallowed CPUs included, and keeps hwloc's XML of it in
 *   $XDG_CACHE_HOME/pareng/topology-HOST.xml   (else ~/.cache/pareng/)
 * Every plan is made on that XML, whether it was just written or not. What this process may
 * use (its cgroup cpuset, its affinity) is always read from the OS at the start, never from the
 * cache (topology.c, load_this_machine_xml), so the cached and the uncached path plan alike
 * by construction. The plans made on the XML are kept in the same file, each under the key of
 * what else it read (topology.c, plan_key: this process's affinity and memory nodes, the
 * configuration's workers and CPU list), the newest first and PLANS_KEPT at most: a start that
 * finds its own loads no topology at all.
 *
 * What the cache holds, the hardware, changes only with a reboot or a CPU hotplug (or an SMT
 * switch, which is one): the key is the boot id, /sys/devices/system/cpu/online, hwloc's
 * version and topology.c's discovery settings, and a start whose key differs discovers anew.
 * Nothing is cached while any HWLOC_* variable other than HWLOC_PLUGINS_BLACKLIST is set (they
 * change what hwloc discovers), nor for a set-user-ID process.
 *
 * Only this user can have written the file: it is read only from a directory this user owns
 * that nobody else may write, only if it is a regular file of this user that nobody else may
 * write, not through a symbolic link, and it carries a checksum of its key and XML, so that a
 * truncated or damaged file is discovered anew rather than half-read. Writes go to a new file
 * renamed into place, so a reader never sees half of one. Any failure of the cache costs only
 * its speed. Where there can be no cache (no home, a directory others may write, HWLOC_*
 * variables) topology.c discovers the machine and plans on that, without the XML.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 4: a plan's package is PARENG_NO_PACKAGE on a machine without packages (it was 0) */
#define CACHE_MAGIC "pareng topology cache 4\n"
/* hwloc's XML of a 4096-PU machine (topology.c's limit) is about 2 MiB */
#define MAX_CACHE_BYTES (16u << 20)
#define KEY_BYTES 512
/* plans of other configurations or affinities kept beside the newest one */
#define PLANS_KEPT 8

extern char **environ;

static int read_small_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    buf[strcspn(buf, "\n")] = 0;
    return 0;
}

static bool hwloc_environment_set(void)
{
    for (char **v = environ; *v; v++)
        if (!strncmp(*v, "HWLOC_", 6) && strncmp(*v, "HWLOC_PLUGINS_BLACKLIST=", 24))
            return true;
    return false;
}

/* The key of this machine's hardware as it is now; false where there is none to trust. */
static bool cache_key(const char *discovery, char *key, size_t size)
{
    char boot[64], online[KEY_BYTES / 2];
    if (getuid() != geteuid() || getgid() != getegid() || hwloc_environment_set() ||
        read_small_file("/proc/sys/kernel/random/boot_id", boot, sizeof boot) < 0 ||
        read_small_file("/sys/devices/system/cpu/online", online, sizeof online) < 0)
        return false;
    int n = snprintf(key, size, "boot %s online %s hwloc %x %s\n", boot, online,
                     hwloc_get_api_version(), discovery);
    return n > 0 && (size_t)n < size;
}

/* FNV-1a's step over 64-bit words, then over the last bytes: catches truncation and damage
 * (each step is a bijection of the sum, so one damaged word always changes it); the file's
 * owner is trusted (above). Words, not bytes: a start sums the whole file, and bytewise that
 * was 20 us of a 10 KB file here, a fifth of the plan's time. */
static uint64_t sum_words(uint64_t h, const char *p, size_t n)
{
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t word;
        memcpy(&word, p, sizeof word);
        h = (h ^ word) * 0x100000001b3ull;
    }
    for (; n; p++, n--)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    return h;
}

uint64_t pareng__topology_cache_sum(const char *key, size_t key_len, const char *body,
                                   size_t body_len)
{
    return sum_words(sum_words(0xcbf29ce484222325ull, key, key_len), body, body_len);
}

/* " N" at *p, inside end: a number in decimal as written by snprintf's %zu, and *p past it. */
static bool take_number(const char **p, const char *end, size_t *n)
{
    const char *q = *p;
    if (q == end || *q++ != ' ' || q == end || *q < '0' || *q > '9')
        return false;
    size_t v = 0;
    for (; q < end && *q >= '0' && *q <= '9'; q++) {
        if (v > (SIZE_MAX - 9) / 10)
            return false;
        v = v * 10 + (size_t)(*q - '0');
    }
    *n = v;
    *p = q;
    return true;
}

/* One "WORD N [M]\n" line of the body at *at, inside end; false if there is none. */
static bool take_line(const char **at, const char *end, const char *word, size_t *n, size_t *m)
{
    size_t word_len = strlen(word);
    const char *p = *at;
    if ((size_t)(end - p) < word_len || memcmp(p, word, word_len) != 0)
        return false;
    p += word_len;
    if (!take_number(&p, end, n) || (m && !take_number(&p, end, m)) || p == end || *p != '\n')
        return false;
    *at = p + 1;
    return true;
}

/* A directory of this user's that nobody else may write, or -1; made first if create and
 * there is none (asked only then: a start finds it there). */
static int open_private_dir(int at, const char *name, bool create)
{
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create && (mkdirat(at, name, 0700) == 0 || errno == EEXIST))
        fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022))) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* The cache's directory (created if need be) and the file's name in it; -1 if none. */
static int open_cache_dir(char *name, size_t size)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) < 0 || !host[0])
        snprintf(host, sizeof host, "unknown");
    for (char *c = host; *c; c++)
        if (*c == '/' || *c == '.')
            *c = '_';
    snprintf(name, size, "topology-%s.xml", host);
    int base;
    if (xdg && xdg[0] == '/') {
        base = open(xdg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } else if (home && home[0] == '/') {
        int h = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        base = h < 0 ? -1 : open_private_dir(h, ".cache", true);
        if (h >= 0)
            close(h);
    } else {
        return -1;
    }
    if (base < 0)
        return -1;
    int dir = open_private_dir(base, "pareng", true);
    close(base);
    return dir;
}

int pareng__topology_cache_read(const char *discovery, pareng__topology_cache *c)
{
    char key[KEY_BYTES], name[300];
    *c = (pareng__topology_cache){0};
    if (!cache_key(discovery, key, sizeof key))
        return PARENG__NO_TOPOLOGY_CACHE;
    int dir = open_cache_dir(name, sizeof name);
    if (dir < 0)
        return PARENG__NO_TOPOLOGY_CACHE;
    int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    close(dir);
    if (fd < 0)
        return PARENG__TOPOLOGY_CACHE_MISS;
    struct stat st;
    char *text = NULL;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
              !(st.st_mode & 022) && st.st_size > 0 && st.st_size <= MAX_CACHE_BYTES &&
              (text = malloc((size_t)st.st_size)) &&
              read(fd, text, (size_t)st.st_size) == st.st_size;
    close(fd);
    /* magic, key line, "sum %016llx\n", then the body: "xml N\n", the XML, and the plans */
    size_t magic = strlen(CACHE_MAGIC), klen = strlen(key);
    const size_t sum_line = 4 + 16 + 1;
    ok = ok && (size_t)st.st_size > magic + klen + sum_line &&
         !memcmp(text, CACHE_MAGIC, magic) && !memcmp(text + magic, key, klen);
    if (ok) {
        const char *sum = text + magic + klen, *body = sum + sum_line, *end = text + st.st_size;
        char want[sum_line + 1];
        snprintf(want, sizeof want, "sum %016llx\n",
                 (unsigned long long)pareng__topology_cache_sum(key, klen, body,
                                                                    (size_t)(end - body)));
        size_t xml_len;
        if (!memcmp(sum, want, sum_line) && take_line(&body, end, "xml", &xml_len, NULL) &&
            xml_len > 0 && xml_len <= (size_t)(end - body) && body[xml_len - 1] == 0) {
            *c = (pareng__topology_cache){.text = text, .xml = body, .xml_len = xml_len,
                                          .plans = body + xml_len,
                                          .plans_len = (size_t)(end - body) - xml_len};
            return PARENG__TOPOLOGY_CACHE_HIT;
        }
    }
    free(text);
    return PARENG__TOPOLOGY_CACHE_MISS;
}

/* Calls each(key, key_len, plan, plan_len) for every plan of c, in the file's order, until it
 * returns true; what it returned. */
static bool each_plan(const pareng__topology_cache *c,
                      bool (*each)(void *, const char *, size_t, const char *, size_t), void *ctx)
{
    const char *at = c->plans, *end = c->plans + c->plans_len;
    size_t klen, plen;
    while (at < end && take_line(&at, end, "plan", &klen, &plen) &&
           klen <= (size_t)(end - at) && plen <= (size_t)(end - at) - klen) {
        if (each(ctx, at, klen, at + klen, plen))
            return true;
        at += klen + plen;
    }
    return false;
}

typedef struct plan_lookup {
    const char *key;
    const char *plan;
    size_t len;
} plan_lookup;

static bool is_the_plan(void *ctx, const char *key, size_t klen, const char *plan, size_t plen)
{
    plan_lookup *l = ctx;
    if (klen != strlen(l->key) || memcmp(key, l->key, klen))
        return false;
    l->plan = plan;
    l->len = plen;
    return true;
}

const void *pareng__topology_cache_plan(const pareng__topology_cache *c, const char *key,
                                        size_t *len)
{
    plan_lookup l = {.key = key};
    if (!c->text || !each_plan(c, is_the_plan, &l))
        return NULL;
    *len = l.len;
    return l.plan;
}

/* The body being written: plans appended up to PLANS_KEPT, none twice under one key */
typedef struct body {
    char *text;
    size_t len, size;
    const char *keys[PLANS_KEPT];
    size_t key_lens[PLANS_KEPT];
    unsigned plans;
    bool failed;
} body;

static void append(body *b, const void *data, size_t len)
{
    if (b->failed || len > MAX_CACHE_BYTES || b->len + len > MAX_CACHE_BYTES) {
        b->failed = true;
        return;
    }
    if (b->len + len > b->size) {
        size_t size = 2 * (b->len + len);
        char *text = realloc(b->text, size);
        if (!text) {
            b->failed = true;
            return;
        }
        b->text = text;
        b->size = size;
    }
    memcpy(b->text + b->len, data, len);
    b->len += len;
}

static bool append_plan(void *ctx, const char *key, size_t klen, const char *plan, size_t plen)
{
    body *b = ctx;
    for (unsigned i = 0; i < b->plans; i++)
        if (b->key_lens[i] == klen && !memcmp(b->keys[i], key, klen))
            return false;
    char line[64];
    int n = snprintf(line, sizeof line, "plan %zu %zu\n", klen, plen);
    if (b->len + (size_t)n + klen + plen > MAX_CACHE_BYTES) /* a huge machine's: not kept */
        return false;
    append(b, line, (size_t)n);
    append(b, key, klen);
    append(b, plan, plen);
    b->keys[b->plans] = key;
    b->key_lens[b->plans] = klen;
    return ++b->plans == PLANS_KEPT;
}

void pareng__topology_cache_write(const char *discovery, const char *xml, size_t len,
                                  const pareng__topology_cache *c, const char *plan_key,
                                  const void *plan, size_t plan_len)
{
    char key[KEY_BYTES], name[300], temp[340];
    if (len > MAX_CACHE_BYTES / 2 || !cache_key(discovery, key, sizeof key))
        return;
    body b = {0};
    char line[64];
    int n = snprintf(line, sizeof line, "xml %zu\n", len);
    append(&b, line, (size_t)n);
    append(&b, xml, len);
    if (plan_key)
        append_plan(&b, plan_key, strlen(plan_key), plan, plan_len);
    if (c && c->text) /* the plans of other keys, newest first, so the oldest go */
        each_plan(c, append_plan, &b);
    int dir = b.failed ? -1 : open_cache_dir(name, sizeof name);
    if (dir < 0) {
        free(b.text);
        return;
    }
    snprintf(temp, sizeof temp, ".%s.%d", name, (int)getpid());
    int fd = openat(dir, temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        size_t klen = strlen(key);
        char head[sizeof CACHE_MAGIC + KEY_BYTES + 32];
        int hlen = snprintf(head, sizeof head, "%s%ssum %016llx\n", CACHE_MAGIC, key,
                            (unsigned long long)pareng__topology_cache_sum(key, klen, b.text, b.len));
        bool written = write(fd, head, (size_t)hlen) == hlen &&
                       write(fd, b.text, b.len) == (ssize_t)b.len;
        if (close(fd) < 0 || !written || renameat(dir, temp, dir, name) < 0)
            unlinkat(dir, temp, 0);
    }
    close(dir);
    free(b.text);
}

void pareng__topology_cache_free(pareng__topology_cache *c)
{
    free(c->text);
    *c = (pareng__topology_cache){0};
}
