/*
 * testing.h - what every CUnit test program of pareng shares: registering suites, exiting
 * non-zero when an assertion failed, and looking for leftovers (processes, segments).
 */
#ifndef PARENG_TESTING_H
#define PARENG_TESTING_H

#include "pareng.h"
#include "workloads.h"

#include <CUnit/Basic.h>
#include <dirent.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/* CLOCK_MONOTONIC in nanoseconds: the same clock in every process. */
static inline uint64_t testing_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Keeps this CPU busy for `ns` nanoseconds: a task of a known length, whatever the compiler
 * makes of a loop. */
static inline void testing_spin_ns(uint64_t ns)
{
    uint64_t end = testing_now_ns() + ns;
    while (testing_now_ns() < end) {
    }
}

/* CU_basic_run_tests() reports framework errors only; a failed assertion must also make the
 * program fail, so the exit status counts failures. */
static inline int testing_run(CU_SuiteInfo *suites)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 99;
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        fprintf(stderr, "cannot register suites: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 99;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (ran == 0)
        return 99;
    return failures ? 1 : 0;
}

#define TESTING_SUITE(name, tests) \
    {.pName = (name), .pInitFunc = NULL, .pCleanupFunc = NULL, .pSetUpFunc = NULL, \
     .pTearDownFunc = NULL, .pTests = (tests)}

/* Engine memory that process pid still holds: descriptors of, or mappings of, the memfds
 * engines make ("memfd:pareng-arena"). After pareng_stop there must be none; a process that
 * is gone holds none (the kernel frees the memory with it). */
static inline int testing_segments_of(int pid)
{
    char path[64], line[512];
    int n = 0;
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *maps = fopen(path, "re");
    /* One arena may be several mappings in a row (its worker stacks' guard pages split it):
     * count each memfd once, by its inode. */
    unsigned long inode, last_inode = 0;
    while (maps && fgets(line, sizeof line, maps))
        if (strstr(line, "memfd:pareng-arena") &&
            sscanf(line, "%*s %*s %*s %*s %lu", &inode) == 1 && inode != last_inode) {
            n++;
            last_inode = inode;
        }
    if (maps)
        fclose(maps);
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char link[320], target[256];
        snprintf(link, sizeof link, "/proc/%d/fd/%s", pid, e->d_name);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len > 0) {
            target[len] = '\0';
            n += strstr(target, "memfd:pareng-arena") != NULL;
        }
    }
    if (d)
        closedir(d);
    return n;
}

/* What a sandbox does: from now on, in this process and its children, system call nr fails
 * with err (a seccomp filter; call it in a child process, the test program keeps the call).
 * 0, or -1 when the filter cannot be installed. */
static inline int testing_deny_syscall(int nr, int err)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
                   prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) < 0
               ? -1
               : 0;
}

/* Live child processes of pid (read from /proc/<pid>/task/<pid>/children, in the order they
 * were forked); when pids is not NULL the first max of them are stored there. */
static inline int testing_children_of(int pid, int *pids, int max)
{
    char path[96], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", pid, pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    int n = 0;
    for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
        if (pids && n < max)
            pids[n] = atoi(tok);
        n++;
    }
    return n;
}

#ifdef PARENG_H
/* An engine of cfg; the test stops at once if it cannot start. */
static inline pareng_engine *testing_start(const pareng_config *cfg)
{
    pareng_engine *e = NULL;
    int rc = pareng_start(&e, cfg);
    if (rc < 0)
        fprintf(stderr, "pareng_start: %s\n", pareng_last_error());
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(pareng_engine_workers(e), cfg->workers);
    CU_ASSERT_EQUAL(pareng_engine_io_depth(e), cfg->io_depth);
    return e;
}

/* An engine of `workers` workers (deque capacity and IO depth as given, 0 = default). */
static inline pareng_engine *testing_start_engine(unsigned workers, unsigned deque_capacity,
                                                  unsigned io_depth)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = workers;
    cfg.deque_capacity = deque_capacity;
    cfg.io_depth = io_depth;
    return testing_start(&cfg);
}

/* An engine of `workers` workers with the granularity `cutoff` (pareng_config.cutoff_depth). */
static inline pareng_engine *testing_start_cutoff(unsigned workers, unsigned cutoff)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = workers;
    cfg.cutoff_depth = cutoff;
    return testing_start(&cfg);
}

/* Tasks more than one test program runs: `count` spawns before the first sync, then each
 * sync must get its own spawn's result (0 when one did not). */
PARENG_TASK_1(uint64_t, square, uint64_t, x)
{
    return x * x;
}

PARENG_TASK_1(uint64_t, sum_of_squares, unsigned, count)
{
    for (unsigned i = 1; i <= count; i++)
        PARENG_SPAWN(square, i);
    uint64_t sum = 0;
    for (unsigned i = count; i >= 1; i--) {
        uint64_t sq = PARENG_SYNC(square);
        if (sq != (uint64_t)i * i)
            return 0; /* a sync got another spawn's result */
        sum += sq;
    }
    return sum;
}

/* A recursion as deep as `depth` calls (pass UINT_MAX: until the stack runs out), each call
 * holding `bytes` of its own, written from its low end first: the buffer is volatile and read
 * after the call returns, so the compiler can neither drop it nor make the call a jump. 1 KiB
 * is less than any guard below a task stack, so one of its stores lands there; 64 KiB steps
 * over a page. */
__attribute__((noinline)) static unsigned testing_descend_by(unsigned depth, size_t bytes)
{
    volatile unsigned char frame[bytes];
    frame[0] = (unsigned char)depth;
    frame[bytes - 1] = (unsigned char)depth;
    if (depth == 0)
        return 0;
    return testing_descend_by(depth - 1, bytes) + frame[0] + frame[bytes - 1];
}

static inline unsigned testing_descend(unsigned depth)
{
    return testing_descend_by(depth, 1024);
}

PARENG_TASK_1(unsigned, overflow_the_stack, unsigned, depth)
{
    return testing_descend(depth);
}

PARENG_TASK_1(unsigned, overflow_the_stack_by_64_kib, unsigned, depth)
{
    return testing_descend_by(depth, 64u << 10);
}
#endif

/* The fields of /proc/<pid>/stat from the state letter on, read into buf; NULL when the
 * process does not exist. (The command name before them may hold spaces and parentheses: the
 * fields follow the last ')'.) */
static inline const char *testing_proc_stat(int pid, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p + 2 : NULL;
}

/* The state letter of /proc/<pid>/stat ('R', 'S', 'Z', ...), or 0. */
static inline char testing_process_state(int pid)
{
    char buf[1024];
    const char *fields = testing_proc_stat(pid, buf, sizeof buf);
    return fields ? fields[0] : 0;
}

/* Context switches of a process so far (voluntary + involuntary): a process asleep with no
 * timeout makes none. */
static inline unsigned long testing_context_switches(int pid)
{
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "re");
    unsigned long total = 0, n;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "voluntary_ctxt_switches: %lu", &n) == 1 ||
            sscanf(line, "nonvoluntary_ctxt_switches: %lu", &n) == 1)
            total += n;
    if (f)
        fclose(f);
    return total;
}

/* The most that counter(pid) grew, over one second, among the n processes. */
static inline unsigned long testing_most_growth_in_a_second(const int *pids, unsigned n,
                                                            unsigned long (*counter)(int))
{
    unsigned long before[64], most = 0;
    for (unsigned i = 0; i < n && i < 64; i++)
        before[i] = counter(pids[i]);
    sleep(1);
    for (unsigned i = 0; i < n && i < 64; i++) {
        unsigned long grew = counter(pids[i]) - before[i];
        most = grew > most ? grew : most;
    }
    return most;
}

/* Over a second, how many times did the busiest of these processes run at all? */
static inline unsigned long testing_most_wakeups_in_a_second(const int *pids, unsigned n)
{
    return testing_most_growth_in_a_second(pids, n, testing_context_switches);
}

/* utime + stime of a process, in clock ticks. */
static inline unsigned long testing_cpu_ticks(int pid)
{
    char buf[1024];
    const char *fields = testing_proc_stat(pid, buf, sizeof buf);
    unsigned long utime = 0, stime = 0;
    if (fields)
        sscanf(fields, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime);
    return utime + stime;
}

/* The most CPU time any of the n processes used during one second, as a share of a core. */
static inline double testing_busiest_share_of_a_second(const int *pids, unsigned n)
{
    return (double)testing_most_growth_in_a_second(pids, n, testing_cpu_ticks) /
           (double)sysconf(_SC_CLK_TCK);
}

#endif
