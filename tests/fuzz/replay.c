/*
 * replay.c - the driver of a fuzz target without libFuzzer (any compiler, no sanitizer
 * needed): feeds the target every file of its seed corpus, then a fixed number of
 * deterministic pseudo-random mutations of them, and exits 0 when the target never stopped
 * the process. This makes every target a regression test of the ordinary build (the meson
 * test fuzz-<target>); the libFuzzer build (tests/fuzz/run) explores further.
 *
 *   replay [--mutations N] [--seed S] [--timeout SECONDS] PATH...
 *
 * PATH is a corpus directory (each regular file in it, in name order) or one file (a crash
 * input libFuzzer wrote, say). PARENG_FUZZ_MUTATIONS and PARENG_FUZZ_SEED override the
 * defaults (4000 mutations, seed 1). An input that runs longer than the timeout (default 20 s,
 * as libFuzzer's -timeout; 0: none) fails as a crash does; one that runs longer than 1 s is
 * named on stderr. When the target crashes, the input it was given is
 * written to stderr, escaped, and to the file replay-crash-input in the current directory
 * (run it again: replay replay-crash-input), before the process dies of the same signal.
 */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define INPUT_MAX 65536
#define MAX_SEEDS 4096
#define CRASH_FILE "replay-crash-input"

typedef struct input {
    uint8_t *data;
    size_t size;
} input;

static input seeds[MAX_SEEDS];
static size_t n_seeds;

/* The input being run, for the crash report. */
static const uint8_t *volatile current;
static volatile size_t current_size;
static const char *volatile current_name;
static pid_t main_pid;
/* Inputs that take longer are named on stderr. */
static double slow_s = 1.0;
/* An input that takes longer is a failure (libFuzzer's -timeout), as a crash is. */
static unsigned timeout_s = 20;

static void put(const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* Async-signal-safe: writes the current input as a C string literal, and dies of sig
 * (SIGALRM: the input took too long, and the process aborts). */
static void on_crash(int sig)
{
    static const char hex[] = "0123456789abcdef";
    const char *name = current_name;
    if (getpid() != main_pid) { /* a child the code under test forked: its own business */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    if (sig == SIGALRM) {
        static const char slow[] = "\nreplay: the target took longer than the time limit "
                                   "(--timeout) on ";
        put(slow, sizeof slow - 1);
        sig = SIGABRT;
    } else {
        put("\nreplay: the target crashed on ", 31);
    }
    put(name ? name : "?", name ? strlen(name) : 1);
    put(": \"", 3);
    for (size_t i = 0; current && i < current_size; i++) {
        uint8_t c = current[i];
        char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            put((const char *)&c, 1);
        else
            put(esc, 4);
    }
    put("\"\n", 2);
    int fd = open(CRASH_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        for (size_t at = 0; current && at < current_size;) {
            ssize_t w = write(fd, current + at, current_size - at);
            if (w <= 0)
                break;
            at += (size_t)w;
        }
        close(fd);
        put("replay: the input is in " CRASH_FILE " (the current directory)\n",
            sizeof "replay: the input is in " CRASH_FILE " (the current directory)\n" - 1);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void run(const uint8_t *data, size_t size, const char *name)
{
    current = data;
    current_size = size;
    current_name = name;
    /* libFuzzer's contract: the target gets its own copy, exactly size bytes (an ASan build
     * then catches a read one past the end). */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    if (size)
        memcpy(copy, data, size);
    current = copy;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    alarm(timeout_s);
    LLVMFuzzerTestOneInput(copy, size);
    alarm(0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (s > slow_s) { /* worth knowing: libFuzzer would call it a slow unit */
        fprintf(stderr, "replay: %s took %.2f s: \"", name, s);
        for (size_t i = 0; i < size && i < 200; i++)
            fprintf(stderr, copy[i] >= 0x20 && copy[i] < 0x7f && copy[i] != '"' ? "%c" : "\\x%02x",
                    copy[i]);
        fprintf(stderr, "%s\"\n", size > 200 ? "..." : "");
    }
    free(copy);
    current = NULL;
}

static bool add_file(const char *path)
{
    if (n_seeds == MAX_SEEDS)
        return true;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return false;
    }
    uint8_t *buf = malloc(INPUT_MAX);
    if (!buf)
        abort();
    size_t n = fread(buf, 1, INPUT_MAX, f);
    fclose(f);
    seeds[n_seeds++] = (input){buf, n};
    return true;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir, in name order; false when dir cannot be read. */
static bool add_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return false;
    }
    char *names[MAX_SEEDS];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < MAX_SEEDS)
        if (e->d_name[0] != '.')
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], by_name);
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            ok &= add_file(path);
        free(names[i]);
    }
    return ok;
}

/* splitmix64: a fixed sequence for a fixed seed, on every machine. */
static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static size_t below(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

/* Pieces the parsers care about: separators, numbers at their limits, keywords. */
static const char *const tokens[] = {
    ",", "-", ":", ".", " ", "\t", "\r\n", "\n", "\r\n\r\n", "0", "1", "9", "4294967295",
    "4294967296", "999999999", "18446744073709551616", "-1", "0x", "all", "auto", "none",
    "pu:", "core:", "package:", "numa:", "node:", "socket:", "ns", "us", "ms", "s", "h",
    "http://", "[", "]", "[::1]", ":65535", ":65536", "/", "?", "#", "@", "%",
    "HTTP/1.1 200 OK\r\n", "Content-Length: ", "Transfer-Encoding: chunked\r\n",
    "Connection: close\r\n", "ffffffffffffffff", ";ext", "<", ">", "/>", "\"", "=",
    "<object type=\"PU\" os_index=\"0\"/>", "</object>", "type=\"Core\"", "cpuset=\"0x1\"",
    "l3:", "group:", "[numa]", "pu:0", "core:4", "package:64", "\0"};

/* One mutation of in into out (at most INPUT_MAX bytes): 1 to 4 edits. */
static size_t mutate(const input *in, uint8_t *out)
{
    size_t n = in->size < INPUT_MAX ? in->size : INPUT_MAX;
    memcpy(out, in->data, n);
    for (size_t edits = 1 + below(4); edits > 0; edits--) {
        size_t at = below(n + 1);
        switch (below(8)) {
        case 0: /* flip a bit */
            if (n)
                out[below(n)] ^= (uint8_t)(1u << below(8));
            break;
        case 1: /* a random byte */
            if (n)
                out[below(n)] = (uint8_t)rnd();
            break;
        case 2: { /* delete a run */
            size_t len = below(n - at + 1) % 8 + 1;
            len = len > n - at ? n - at : len;
            memmove(out + at, out + at + len, n - at - len);
            n -= len;
            break;
        }
        case 3:
        case 4: { /* insert a token */
            const char *t = tokens[below(sizeof tokens / sizeof tokens[0])];
            size_t len = *t ? strlen(t) : 1;
            if (n + len <= INPUT_MAX) {
                memmove(out + at + len, out + at, n - at);
                memcpy(out + at, t, len);
                n += len;
            }
            break;
        }
        case 5: { /* duplicate a run */
            size_t len = below(n - at + 1) % 64;
            if (n + len <= INPUT_MAX) {
                memmove(out + at + len, out + at, n - at);
                memcpy(out + at, out + at + len, len);
                n += len;
            }
            break;
        }
        case 6: /* cut the end */
            n = at;
            break;
        default: { /* splice in a piece of another seed */
            const input *o = &seeds[below(n_seeds)];
            size_t from = below(o->size + 1), len = below(o->size - from + 1);
            if (n + len <= INPUT_MAX) {
                memmove(out + at + len, out + at, n - at);
                memcpy(out + at, o->data + from, len);
                n += len;
            }
            break;
        }
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *env = getenv("PARENG_FUZZ_MUTATIONS");
    unsigned long mutations = env ? strtoul(env, NULL, 10) : 4000;
    env = getenv("PARENG_FUZZ_SEED");
    rng_state = env ? strtoull(env, NULL, 10) : 1;
    int first = 1;
    for (; first + 1 < argc && argv[first][0] == '-'; first += 2) {
        if (strcmp(argv[first], "--mutations") == 0)
            mutations = strtoul(argv[first + 1], NULL, 10);
        else if (strcmp(argv[first], "--seed") == 0)
            rng_state = strtoull(argv[first + 1], NULL, 10);
        else if (strcmp(argv[first], "--timeout") == 0)
            timeout_s = (unsigned)strtoul(argv[first + 1], NULL, 10);
        else
            break;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: %s [--mutations N] [--seed S] [--timeout SECONDS] "
                "CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    for (int i = first; i < argc; i++) {
        struct stat st;
        bool ok = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode) ? add_dir(argv[i])
                                                                 : add_file(argv[i]);
        if (!ok)
            return 2;
    }
    if (n_seeds == 0) {
        fprintf(stderr, "replay: no seeds in the corpus\n");
        return 2;
    }
    main_pid = getpid();
    signal(SIGABRT, on_crash);
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGFPE, on_crash);
    signal(SIGILL, on_crash);
    signal(SIGALRM, on_crash);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < n_seeds; i++)
        run(seeds[i].data, seeds[i].size, "a seed");
    uint8_t *buf = malloc(INPUT_MAX);
    if (!buf)
        abort();
    for (unsigned long m = 0; m < mutations; m++) {
        size_t n = mutate(&seeds[m % n_seeds], buf);
        run(buf, n, "a mutation");
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("replay: %zu seeds and %lu mutations, no failure, %.2f s\n", n_seeds, mutations,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    free(buf);
    for (size_t i = 0; i < n_seeds; i++)
        free(seeds[i].data);
    return 0;
}
