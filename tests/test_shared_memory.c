/*
 * test_shared_memory.c - pareng_alloc's heap growing on demand: far past its first 8 MiB from
 * the caller and from tasks on several workers, every block written in one process and read
 * in others; and its refusals, a message and NULL rather than a crash: an explicit
 * shared_bytes, the file-size limit, an address-space limit.
 */
#include "pareng.h"
#include "testing.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define MIB ((size_t)1 << 20)

static pareng_engine *engine_of(unsigned workers, size_t shared_bytes)
{
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = workers;
    cfg.shared_bytes = shared_bytes;
    cfg.cutoff_depth = PARENG_CUTOFF_NONE;
    return testing_start(&cfg);
}

/* ---- the caller allocates, the workers write, the caller reads ------------------------ */

typedef struct blocks {
    uint64_t *block[8];
    size_t words;
} blocks;

static void fill(void *ctx, size_t begin, size_t end)
{
    blocks *b = ctx;
    for (size_t i = begin; i < end; i++)
        for (unsigned k = 0; k < 8; k++)
            b->block[k][i] = i * 8 + k;
}

static void test_grows_from_the_caller(void)
{
    pareng_engine *e = engine_of(3, 0);
    blocks *b = pareng_alloc(e, sizeof *b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    b->words = 24 * MIB / sizeof(uint64_t); /* 8 blocks of 24 MiB: 192 MiB */
    for (unsigned k = 0; k < 8; k++) {
        b->block[k] = pareng_alloc(e, b->words * sizeof(uint64_t));
        CU_ASSERT_PTR_NOT_NULL_FATAL(b->block[k]);
    }
    CU_ASSERT_EQUAL(pareng_for(e, 0, b->words, 0, fill, b), 0);
    size_t wrong = 0;
    for (unsigned k = 0; k < 8; k++)
        for (size_t i = 0; i < b->words; i++)
            wrong += b->block[k][i] != i * 8 + k;
    CU_ASSERT_EQUAL(wrong, 0);
    for (unsigned k = 0; k < 8; k++)
        CU_ASSERT_EQUAL(pareng_free(e, b->block[k]), 0);
    CU_ASSERT_EQUAL(pareng_free(e, b), 0);
    /* everything merged again, the grown part included */
    void *all = pareng_alloc(e, 190 * MIB);
    CU_ASSERT_PTR_NOT_NULL(all);
    pareng_free(e, all);
    pareng_stop(e);
    CU_ASSERT_EQUAL(testing_children_of(getpid(), NULL, 0), 0);
    CU_ASSERT_EQUAL(testing_segments_of(getpid()), 0);
}

/* ---- tasks allocate on their workers, other tasks read ------------------------------- */

#define LEAVES 64
#define LEAF_BYTES (4 * MIB) /* 64 leaves: 256 MiB, 32 times the first 8 MiB */

typedef struct table {
    uint64_t *block[LEAVES];
    unsigned worker[LEAVES];
} table;

PARENG_TASK_3(unsigned, allocate, unsigned, first, unsigned, count, table *, t)
{
    if (count > 1) {
        PARENG_SPAWN(allocate, first, count / 2, t);
        unsigned right = PARENG_CALL(allocate, first + count / 2, count - count / 2, t);
        return PARENG_SYNC(allocate) + right;
    }
    uint64_t *p = pareng_alloc(PARENG_ENGINE(), LEAF_BYTES);
    if (!p)
        return 0;
    for (size_t i = 0; i < LEAF_BYTES / sizeof *p; i++)
        p[i] = (uint64_t)first << 32 | i;
    t->block[first] = p;
    t->worker[first] = PARENG_WORKER_INDEX();
    return 1;
}

/* Leaf k reads block LEAVES - 1 - k, which another leaf wrote, most likely on another worker;
 * then frees it, from this one. */
PARENG_TASK_3(unsigned, check_and_free, unsigned, first, unsigned, count, table *, t)
{
    if (count > 1) {
        PARENG_SPAWN(check_and_free, first, count / 2, t);
        unsigned right = PARENG_CALL(check_and_free, first + count / 2, count - count / 2, t);
        return PARENG_SYNC(check_and_free) + right;
    }
    unsigned k = LEAVES - 1 - first;
    const uint64_t *p = t->block[k];
    for (size_t i = 0; i < LEAF_BYTES / sizeof *p; i++)
        if (p[i] != ((uint64_t)k << 32 | i))
            return 0;
    return pareng_free(PARENG_ENGINE(), t->block[k]) == 0;
}

static void test_grows_from_tasks(void)
{
    pareng_engine *e = engine_of(4, 0);
    table *t = pareng_alloc(e, sizeof *t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    unsigned made = 0, checked = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, allocate, &made, 0, LEAVES, t), 0);
    CU_ASSERT_EQUAL(made, LEAVES);
    bool on[4] = {false};
    unsigned workers = 0;
    for (unsigned k = 0; k < LEAVES && made == LEAVES; k++) {
        workers += t->worker[k] < 4 && !on[t->worker[k]];
        on[t->worker[k] % 4] = true;
        /* the caller reads what the workers wrote */
        CU_ASSERT_EQUAL(t->block[k][LEAF_BYTES / sizeof(uint64_t) - 1],
                        (uint64_t)k << 32 | (LEAF_BYTES / sizeof(uint64_t) - 1));
    }
    CU_ASSERT(workers >= 2); /* the heap grew from more than one process */
    CU_ASSERT_EQUAL(PARENG_RUN(e, check_and_free, &checked, 0, LEAVES, t), 0);
    CU_ASSERT_EQUAL(checked, LEAVES);
    pareng_free(e, t);
    pareng_stop(e);
}

/* ---- refusals ---------------------------------------------------------------------------- */

PARENG_TASK_1(int, allocate_in_task, size_t, bytes)
{
    void *p = pareng_alloc(PARENG_ENGINE(), bytes);
    if (!p)
        return strstr(pareng_last_error(), "shared memory") ? -1 : -2;
    pareng_free(PARENG_ENGINE(), p);
    return 1;
}

/* An explicit shared_bytes is the most the heap takes, as before it grew. */
static void test_explicit_shared_bytes_is_a_limit(void)
{
    pareng_engine *e = engine_of(2, 16 * MIB);
    void *p = pareng_alloc(e, 12 * MIB);
    CU_ASSERT_PTR_NOT_NULL(p);
    CU_ASSERT_PTR_NULL(pareng_alloc(e, 8 * MIB));
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "shared_bytes"));
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "16777216"));
    int got = 0;
    CU_ASSERT_EQUAL(PARENG_RUN(e, allocate_in_task, &got, 8 * MIB), 0);
    CU_ASSERT_EQUAL(got, -1);
    pareng_free(e, p);
    CU_ASSERT_EQUAL(PARENG_RUN(e, allocate_in_task, &got, 15 * MIB), 0);
    CU_ASSERT_EQUAL(got, 1);
    /* the automatic bound: the machine's memory and swap, never more */
    pareng_stop(e);
    e = engine_of(1, 0);
    CU_ASSERT_PTR_NULL(pareng_alloc(e, (size_t)1 << 41));
    CU_ASSERT_PTR_NOT_NULL(strstr(pareng_last_error(), "may grow to"));
    pareng_stop(e);
}

static pid_t fork_child_of_the_test(void)
{
    pid_t pid = fork();
    if (pid == 0)
        prctl(PR_SET_PDEATHSIG, SIGKILL);
    return pid;
}

/* Runs check() in a child under an alarm: its exit status (0 = passed), or 100 + the signal
 * that ended it (SIGXFSZ: a growth past the file-size limit). */
static int in_child(int (*check)(void))
{
    pid_t child = fork_child_of_the_test();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) {
        alarm(60);
        _exit(check());
    }
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

static off_t arena_file_size(pareng_engine *e)
{
    struct stat st;
    return stat(pareng_engine_segment(e), &st) == 0 ? st.st_size : -1;
}

/* The limit is set before the start, as ulimit -f would (the workers inherit it), with room
 * for the engine and 24 MiB more. */
static int grow_under_a_file_size_limit(void)
{
    pareng_engine *e = engine_of(2, 0);
    off_t started = arena_file_size(e);
    pareng_stop(e);
    struct rlimit fsize = {(rlim_t)started + 24 * MIB, (rlim_t)started + 24 * MIB};
    if (started < 0 || setrlimit(RLIMIT_FSIZE, &fsize) < 0)
        return 2;
    e = engine_of(2, 0);
    void *within = pareng_alloc(e, 16 * MIB);
    if (!within)
        return 3;
    if (pareng_alloc(e, 64 * MIB) || !strstr(pareng_last_error(), "file-size limit"))
        return 4;
    int got = 0;
    if (PARENG_RUN(e, allocate_in_task, &got, 64 * MIB) != 0 || got != -1)
        return 5;
    pareng_free(e, within);
    if (PARENG_RUN(e, allocate_in_task, &got, 16 * MIB) != 0 || got != 1)
        return 6;
    pareng_stop(e);
    return 0;
}

static void test_file_size_limit_on_growth(void)
{
    CU_ASSERT_EQUAL(in_child(grow_under_a_file_size_limit), 0);
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
/* shared_bytes 0 under ulimit -v: the reserve shrinks to what the address space allows, and
 * the heap refuses past it with a message. */
static int grow_under_an_address_space_limit(void)
{
    struct rlimit as = {1u << 30, 1u << 30};
    if (setrlimit(RLIMIT_AS, &as) < 0)
        return 2;
    pareng_config cfg;
    pareng_config_default(&cfg);
    cfg.workers = 1;
    pareng_engine *e = NULL;
    if (pareng_start(&e, &cfg) < 0)
        return 3;
    void *p = pareng_alloc(e, 32 * MIB);
    if (!p)
        return 4;
    memset(p, 1, 32 * MIB);
    if (pareng_alloc(e, (size_t)1 << 30) || !strstr(pareng_last_error(), "may grow to"))
        return 5;
    pareng_stop(e);
    return 0;
}
#endif

static void test_address_space_limit_on_growth(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    fprintf(stderr, "(not under a sanitizer: its shadow memory needs terabytes) ");
#else
    CU_ASSERT_EQUAL(in_child(grow_under_an_address_space_limit), 0);
#endif
}

int main(void)
{
    CU_TestInfo growth[] = {
        {"the caller grows the heap to 192 MiB; workers write it", test_grows_from_the_caller},
        {"tasks on several workers grow it to 256 MiB; others read", test_grows_from_tasks},
        {"an explicit shared_bytes is a limit", test_explicit_shared_bytes_is_a_limit},
        {"the file-size limit: refused with a message", test_file_size_limit_on_growth},
        {"an address-space limit: refused with a message", test_address_space_limit_on_growth},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        TESTING_SUITE("shared memory that grows", growth),
        CU_SUITE_INFO_NULL,
    };
    return testing_run(suites);
}
